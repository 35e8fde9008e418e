// Building the telemetry report (telemetry.report, the code behind `tact report`) with the server's interpreter, with
// no dependency on VS Code (unit-tested on its own). report.ts shows the result.
import { execFile } from "node:child_process";

const BUILD = [
  "import json, sys",
  "from telemetry.report import report",
  "r = report(sys.argv[1], sys.argv[2])",
  "sys.stdout.write(json.dumps({'html': r['html'], 'partial': r.get('partial', False)}))",
].join("\n");

export interface BuiltReport {
  html: string; // path of index.html
  partial: boolean;
}

/** Runs in the server's folder (cwd, the first workspace folder): the database path the server reports is the one it
 * was given, relative to that folder when tact.telemetryDatabase is relative, and Tact may be importable from there
 * only, as checkPython allows. */
export function buildReport(python: string, database: string, outDir: string, cwd: string | undefined, timeoutMs = 120000): Promise<BuiltReport> {
  return new Promise((resolve, reject) => {
    execFile(python, ["-c", BUILD, database, outDir], { cwd, timeout: timeoutMs, maxBuffer: 4 << 20 }, (error, stdout, stderr) => {
      if (error?.killed) {
        // not the error itself: its message quotes the whole command, the script included
        reject(new Error(`the report builder did not finish within ${Math.round(timeoutMs / 1000)} s`));
        return;
      }
      if (error) {
        const last = stderr.trim().split("\n").pop() || String(error);
        reject(new Error(last));
        return;
      }
      try {
        resolve(JSON.parse(stdout) as BuiltReport);
      } catch {
        reject(new Error(`unexpected output from the report builder: ${stdout.slice(0, 200)}`));
      }
    });
  });
}
