// "Tact: Open Latest Report": the report built from the database the running server writes (reportBuilder.ts),
// shown in a webview.
import * as vscode from "vscode";

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
