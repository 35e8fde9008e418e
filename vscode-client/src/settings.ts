// Settings: the `tact` section of the VS Code configuration. The server's settings and their defaults are
// declared in package.json (they mirror lsp_server/config.py, which a test checks); a few keys only
// concern the extension and are never sent to the server.
import { isDeepStrictEqual } from "node:util";
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

/** The Python extension's interpreter setting, which tact.pythonPath falls back to. */
const PYTHON_INTERPRETER = "python.defaultInterpreterPath";

/** The settings whose values are remembered, by full name: the machine-overridable ones (package.json's "scope"),
 * and the Python extension's interpreter, which a server start reads as well. */
export function rememberedSettingNames(packageJSON: any): string[] {
  const props: Record<string, { scope?: unknown }> = packageJSON?.contributes?.configuration?.properties ?? {};
  const names = Object.keys(props).filter((name) => name.startsWith(SECTION + ".") && props[name]?.scope === "machine-overridable");
  return [...names, PYTHON_INTERPRETER];
}

/** Each remembered setting's value (by full name) as last seen: at activation, or at the last change event that
 * affected it. A remote window stops seeing machine-overridable user settings after the first change in its Settings
 * editor, with no change event for them: read from then on, each gave its default, and a server started later (a
 * restart, whatever asked for it) ran `python3` instead of the configured interpreter, with the shipped models and
 * the default telemetry database. */
const remembered = new Map<string, unknown>();

/** Remembers the values of the remembered settings as they read now: all of them at activation (no event), else
 * those the change event affects (a change the window told of is the user's, a return to the default too). */
export function rememberSettings(packageJSON: any, event?: vscode.ConfigurationChangeEvent): void {
  for (const name of rememberedSettingNames(packageJSON)) {
    if (!event || event.affectsConfiguration(name)) {
      const { config, key } = configurationOf(name);
      remembered.set(name, config.get<unknown>(key));
    }
  }
}

/** A setting's section's configuration, and the setting's key in it (its name: `section.key`). */
function configurationOf(name: string): { config: vscode.WorkspaceConfiguration; key: string } {
  const dot = name.indexOf(".");
  return { config: vscode.workspace.getConfiguration(name.slice(0, dot)), key: name.slice(dot + 1) };
}

/** The remembered value used instead of a setting's value as config reads it, if any: where the setting reads its
 * default (or nothing) while its remembered value is another, no change event having told of the change. */
function rememberedInstead(config: vscode.WorkspaceConfiguration, name: string, key: string): { value: unknown } | undefined {
  if (!remembered.has(name)) {
    return undefined;
  }
  const defaultValue = config.inspect<unknown>(key)?.defaultValue;
  const isDefault = (value: unknown) => value === undefined || isDeepStrictEqual(value, defaultValue);
  const last = remembered.get(name);
  return isDefault(config.get<unknown>(key)) && !isDefault(last) ? { value: last } : undefined;
}

/** A setting's value as the extension uses it: as config reads it, or its remembered value (rememberedInstead). */
function settingValue(config: vscode.WorkspaceConfiguration, section: string, key: string): unknown {
  const instead = rememberedInstead(config, `${section}.${key}`, key);
  return instead ? instead.value : config.get<unknown>(key);
}

/** The server settings whose remembered value is used instead of the value read now, by key (camelCase). */
export function rememberedInUse(): Record<string, unknown> {
  const config = vscode.workspace.getConfiguration(SECTION);
  const out: Record<string, unknown> = {};
  for (const name of remembered.keys()) {
    const key = name.slice(SECTION.length + 1);
    const instead = name.startsWith(SECTION + ".") && !EXTENSION_ONLY_KEYS.has(key) ? rememberedInstead(config, name, key) : undefined;
    if (instead) {
      out[key] = instead.value;
    }
  }
  return out;
}

/** The tact section as the language client read it for the server (a workspace/configuration answer), with the
 * remembered values used instead of what it read (rememberedInUse). */
export function withRemembered(values: unknown): unknown {
  if (typeof values !== "object" || values === null || Array.isArray(values)) {
    return values;
  }
  const instead = rememberedInUse();
  return Object.keys(instead).length > 0 ? { ...values, ...instead } : values;
}

/** The server settings as a plain camelCase object (what initializationOptions carry), remembered values used
 * instead of defaults the window reads without a change event (rememberedInstead). */
export function serverSettings(packageJSON: any, scope?: vscode.ConfigurationScope): Record<string, unknown> {
  const config = vscode.workspace.getConfiguration(SECTION, scope);
  const out: Record<string, unknown> = {};
  for (const key of serverSettingKeys(packageJSON)) {
    const value = settingValue(config, SECTION, key);
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
  const { config, key } = configurationOf(PYTHON_INTERPRETER);
  const python = pathSetting(settingValue(config, "python", key));
  if (python && python !== "python") {
    return resolveInterpreter(python, workspaceDir(), home);
  }
  return process.platform === "win32" ? "python" : "python3";
}

function ownPythonPath(): string {
  return pathSetting(settingValue(vscode.workspace.getConfiguration(SECTION), SECTION, "pythonPath"));
}

export function needsRestart(event: vscode.ConfigurationChangeEvent): boolean {
  return (
    RESTART_KEYS.some((key) => event.affectsConfiguration(`${SECTION}.${key}`)) ||
    // the interpreter in use when tact.pythonPath is empty
    (event.affectsConfiguration(PYTHON_INTERPRETER) && !ownPythonPath())
  );
}
