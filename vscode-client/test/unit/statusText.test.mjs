// Unit tests of the status bar tooltip's text (src/statusText.ts, compiled to out/unit by `npm test`).
import assert from "node:assert/strict";
import { test } from "node:test";
import { tooltipMarkdown } from "../../out/unit/statusText.mjs";

function tooltip(facts) {
  return tooltipMarkdown({
    state: "running",
    problem: "",
    status: undefined,
    on: true,
    model: "",
    policy: "",
    p50: undefined,
    hidden: undefined,
    counters: { shown: 0, accepted: 0, rejected: 0, latenciesMs: [] },
    ...facts,
  });
}

/** The tooltip's line that starts with prefix. */
function line(md, prefix) {
  return md.split("\n").find((l) => l.startsWith(prefix));
}

test("the server's reasons keep their code spans, and markdown outside them shows as the text it is", () => {
  const reason = "no model in __pycache__/ (run `tact train lm`, then *restart*) <see [docs](x)>";
  const md = tooltip({ status: { degraded: true, reason } });
  assert.equal(
    line(md, "No suggestions: "),
    "No suggestions: no model in \\_\\_pycache\\_\\_/ \\(run `tact train lm`, then \\*restart\\*\\) \\<see \\[docs\\]\\(x\\)\\>",
  );
});

test("a problem with a code span keeps it; a lone backtick and a theme icon are text", () => {
  const problem = 'Tact is not installed in "/opt/py_env/bin/python" (install it there: `python -m pip install -e <checkout>`)';
  const md = tooltip({ state: "failed", problem });
  assert.equal(
    line(md, "Server failed: "),
    'Server failed: Tact is not installed in "/opt/py\\_env/bin/python" \\(install it there: `python -m pip install -e <checkout>`\\)',
  );
  assert.equal(line(tooltip({ state: "stopped", problem: "a ` and $(error)" }), "Server stopped: "), "Server stopped: a \\` and \\$\\(error\\)");
});

test("a reason in the table is escaped too, its pipes and line breaks kept inside the cell", () => {
  const md = tooltip({ status: { telemetryReason: "telemetry off: `tact.telemetry` is false | see\n__init__.py" } });
  assert.equal(line(md, "| telemetry database |"), "| telemetry database | telemetry off: `tact.telemetry` is false \\| see \\_\\_init\\_\\_\\.py |");
  const named = tooltip({ model: "lm_v2", status: { modelDir: "/models/__lm__/lm_v2" } });
  assert.equal(line(named, "| model |"), "| model | lm\\_v2 \\(/models/\\_\\_lm\\_\\_/lm\\_v2\\) |");
});
