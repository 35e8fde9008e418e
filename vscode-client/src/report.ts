// "Tact: Open Latest Report": build the telemetry report (telemetry.report, the code behind `tact report`)
// from the database the running server writes, and show it in a webview.
import { execFile } from "node:child_process";
import * as vscode from "vscode";

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

export function buildReport(python: string, database: string, outDir: string): Promise<BuiltReport> {
  return new Promise((resolve, reject) => {
    execFile(python, ["-c", BUILD, database, outDir], { timeout: 120000, maxBuffer: 4 << 20 }, (error, stdout, stderr) => {
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

let panel: vscode.WebviewPanel | undefined;

/** Show index.html in a webview; its plots (relative <img src>) are rewritten to webview URIs. */
export async function showReport(htmlPath: string): Promise<void> {
  const page = vscode.Uri.file(htmlPath);
  const folder = vscode.Uri.joinPath(page, "..");
  if (!panel) {
    panel = vscode.window.createWebviewPanel("tact.report", "Tact Report", vscode.ViewColumn.Active, {
      enableScripts: false,
      localResourceRoots: [folder],
    });
    panel.onDidDispose(() => (panel = undefined));
  } else {
    panel.webview.options = { enableScripts: false, localResourceRoots: [folder] };
    panel.reveal(vscode.ViewColumn.Active);
  }
  const webview = panel.webview;
  const raw = new TextDecoder().decode(await vscode.workspace.fs.readFile(page));
  // relative plot paths (no scheme, not absolute) become webview URIs
  const html = raw.replace(/(<img\b[^>]*?\bsrc=)(["'])([^"'/:][^"':]*)\2/g, (_m, head: string, quote: string, src: string) =>
    head + quote + webview.asWebviewUri(vscode.Uri.joinPath(folder, src)).toString() + quote,
  );
  const csp = `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src ${webview.cspSource}; style-src 'unsafe-inline';">`;
  webview.html = html.includes("<head>") ? html.replace("<head>", "<head>" + csp) : csp + html;
}
