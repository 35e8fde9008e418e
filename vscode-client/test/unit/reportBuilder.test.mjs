// Unit tests of building the report with the server's interpreter (src/reportBuilder.ts, compiled to out/unit by
// `npm test`). The interpreter is a real Python with a stand-in `telemetry.report` in the workspace folder.
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { buildReport } from "../../out/unit/reportBuilder.mjs";

const PYTHON = process.platform === "win32" ? "python" : "python3";

/** A workspace folder holding a `telemetry` package whose report() answers with where the database it was given is. */
function workspace() {
  const folder = realpathSync(mkdtempSync(path.join(tmpdir(), "tact-report-")));
  mkdirSync(path.join(folder, "telemetry"));
  writeFileSync(path.join(folder, "telemetry", "__init__.py"), "");
  writeFileSync(
    path.join(folder, "telemetry", "report.py"),
    "import os\n\ndef report(database, out):\n    return {'html': os.path.abspath(database), 'partial': False}\n",
  );
  return folder;
}

test("the report is built in the server's folder: a relative database is the one the server writes, Tact importable from there", async () => {
  const folder = workspace();
  try {
    const built = await buildReport(PYTHON, "telemetry.sqlite3", path.join(folder, "out"), folder);
    assert.equal(built.html, path.join(folder, "telemetry.sqlite3"));
    assert.equal(built.partial, false);
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
});

test("a failed build says the builder's last error line", async () => {
  const folder = workspace();
  try {
    writeFileSync(path.join(folder, "telemetry", "report.py"), "def report(database, out):\n    raise ValueError('no sessions in ' + database)\n");
    await assert.rejects(buildReport(PYTHON, "t.sqlite3", path.join(folder, "out"), folder), /ValueError: no sessions in t\.sqlite3/);
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
});

test("a build that runs past its time says so, not the command it ran", async () => {
  const folder = workspace();
  try {
    writeFileSync(path.join(folder, "telemetry", "report.py"), "import time\n\ndef report(database, out):\n    time.sleep(30)\n");
    const error = await buildReport(PYTHON, "t.sqlite3", path.join(folder, "out"), folder, 1000).then(() => undefined, (e) => e);
    assert.match(error.message, /^the report builder did not finish within 1 s$/);
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
});
