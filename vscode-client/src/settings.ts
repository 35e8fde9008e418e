// Settings: the `tact` section of the VS Code configuration. The server's settings and their defaults are
// declared in package.json (they mirror lsp_server/config.py, which a test checks); a few keys only
// concern the extension and are never sent to the server.
import * as vscode from "vscode";
import { resolveInterpreter } from "./server";
import { pathSetting } from "./settingValues";

export const SECTION = "tact";

/** Keys the extension uses itself; every other `tact.*` key is a server setting. */
export const EXTENSION_ONLY_KEYS = new Set(["pythonPath", "trace.server"]);

/** Server settings that only take effect in a new server process: changing them restarts it. Others go to
 * the running server as workspace/didChangeConfiguration. */
export const RESTART_KEYS = [
  "pythonPath",
  "modelPath",
  "telemetry",
  "telemetryDatabase",
  "telemetryRetentionDays", // old sessions are removed when the server opens the database
  "nextEdit", // the server advertises next edit (experimental.tact.nextEdit) only when it initializes
];

/** The server settings' names, from the extension's own package.json. */
export function serverSettingKeys(packageJSON: any): string[] {
  const props = packageJSON?.contributes?.configuration?.properties ?? {};
  return Object.keys(props)
    .filter((k) => k.startsWith(SECTION + "."))
    .map((k) => k.slice(SECTION.length + 1))
    .filter((k) => !EXTENSION_ONLY_KEYS.has(k));
}

/** The server settings as a plain camelCase object (what initializationOptions carry). */
export function serverSettings(packageJSON: any, scope?: vscode.ConfigurationScope): Record<string, unknown> {
  const config = vscode.workspace.getConfiguration(SECTION, scope);
  const out: Record<string, unknown> = {};
  for (const key of serverSettingKeys(packageJSON)) {
    const value = config.get(key);
    if (value !== undefined) {
      out[key] = value;
    }
  }
  return out;
}

/** The folder the server runs in: the first workspace folder, when it is on disk. */
export function workspaceDir(): string | undefined {
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
  return folder?.scheme === "file" ? folder.fsPath : undefined;
}

/** The Python interpreter that runs the server. */
export function pythonPath(): string {
  const home = process.env.HOME ?? process.env.USERPROFILE;
  const own = ownPythonPath();
  if (own) {
    return resolveInterpreter(own, workspaceDir(), home);
  }
  const python = pathSetting(vscode.workspace.getConfiguration("python").get<unknown>("defaultInterpreterPath"));
  if (python && python !== "python") {
    return resolveInterpreter(python, workspaceDir(), home);
  }
  return process.platform === "win32" ? "python" : "python3";
}

function ownPythonPath(): string {
  return pathSetting(vscode.workspace.getConfiguration(SECTION).get<unknown>("pythonPath"));
}

export function needsRestart(event: vscode.ConfigurationChangeEvent): boolean {
  return (
    RESTART_KEYS.some((key) => event.affectsConfiguration(`${SECTION}.${key}`)) ||
    // the interpreter in use when tact.pythonPath is empty
    (event.affectsConfiguration("python.defaultInterpreterPath") && !ownPythonPath())
  );
}
