// Unit tests of the settings the extension reads for a server's start and sends it (src/settings.ts), bundled here
// with a small stand-in for the vscode module (it only runs inside VS Code).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { importStubbed } from "./stubbedBundle.mjs";

const stubs = {
  vscode: `
    const h = new Proxy({}, { get: (_, key) => globalThis.__vscodeStub[key] });
    export const workspace = {
      getConfiguration: (section) => h.configuration(section),
      get workspaceFolders() { return undefined; },
    };
  `,
};

const settings = await importStubbed("settings", stubs);
const packageJSON = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8"));
const properties = packageJSON.contributes.configuration.properties;

/** A VS Code stand-in whose configuration reads user (full name -> value) over the declared defaults (package.json's,
 * and the Python extension's python.defaultInterpreterPath). */
function setup(user) {
  const defaults = { "python.defaultInterpreterPath": "python" };
  for (const [name, property] of Object.entries(properties)) {
    defaults[name] = property.default;
  }
  globalThis.__vscodeStub = {
    configuration(section) {
      const name = (key) => (section ? `${section}.${key}` : key);
      return {
        get: (key) => (name(key) in user ? user[name(key)] : defaults[name(key)]),
        inspect: (key) => ({ key: name(key), defaultValue: defaults[name(key)], globalValue: user[name(key)] }),
      };
    },
  };
  return user;
}

/** A change event for the settings named (full names). */
const changed = (...names) => ({ affectsConfiguration: (section) => names.some((n) => n === section || n.startsWith(section + ".")) });

test("a workspace's settings may name the interpreter the extension runs: it is not run in untrusted workspaces", () => {
  // the default for an extension with a main entry, declared (with its reason) so that no later change relaxes it
  const trust = packageJSON.capabilities?.untrustedWorkspaces;
  assert.equal(trust?.supported, false);
  assert.equal(packageJSON.contributes.configuration.properties["tact.pythonPath"].scope, "machine-overridable");
  assert.match(trust.description, /tact\.pythonPath/);
});

test("the remembered settings are package.json's machine-overridable ones and the Python extension's interpreter", () => {
  const names = settings.rememberedSettingNames(packageJSON);
  for (const name of ["tact.pythonPath", "tact.modelPath", "tact.telemetryDatabase", "tact.telemetryRetentionDays", "python.defaultInterpreterPath"]) {
    assert.ok(names.includes(name), name);
  }
  assert.ok(!names.includes("tact.maxNewTokens"));
});

test("a machine-overridable setting the window stops seeing without a change event keeps its value for the next start and the server", () => {
  const user = setup({
    "tact.pythonPath": "/opt/tact/.venv/bin/python",
    "tact.telemetryDatabase": "/data/tact.sqlite3",
    "tact.telemetryRetentionDays": 0,
    "tact.maxNewTokens": 32,
  });
  settings.rememberSettings(packageJSON); // activation
  // a remote window, after a change in the Settings editor: machine-overridable user settings read as their defaults,
  // with no change event for them (the event tells of the setting changed)
  delete user["tact.pythonPath"];
  delete user["tact.telemetryDatabase"];
  delete user["tact.telemetryRetentionDays"];
  user["tact.maxNewTokens"] = 40;
  settings.rememberSettings(packageJSON, changed("tact.maxNewTokens"));
  assert.equal(settings.pythonPath(), "/opt/tact/.venv/bin/python"); // not python3
  const initializationOptions = settings.serverSettings(packageJSON);
  assert.equal(initializationOptions.telemetryDatabase, "/data/tact.sqlite3");
  assert.equal(initializationOptions.telemetryRetentionDays, 0);
  assert.equal(initializationOptions.maxNewTokens, 40);
  assert.equal(initializationOptions.pythonPath, undefined); // the extension's own
  // what the server pulls at `initialized` (workspace/configuration) and a push carry the same values
  assert.deepEqual(settings.rememberedInUse(), { telemetryDatabase: "/data/tact.sqlite3", telemetryRetentionDays: 0 });
  assert.deepEqual(settings.withRemembered({ telemetryDatabase: "", telemetryRetentionDays: 90, maxNewTokens: 40 }), {
    telemetryDatabase: "/data/tact.sqlite3",
    telemetryRetentionDays: 0,
    maxNewTokens: 40,
  });
});

test("a change the window tells of is taken as it reads: a setting reset to its default is the default from then on", () => {
  const user = setup({ "tact.pythonPath": "/opt/tact/.venv/bin/python", "tact.modelPath": "/models/tact" });
  settings.rememberSettings(packageJSON);
  delete user["tact.pythonPath"];
  delete user["tact.modelPath"];
  settings.rememberSettings(packageJSON, changed("tact.pythonPath", "tact.modelPath"));
  assert.equal(settings.pythonPath(), "python3");
  assert.equal(settings.serverSettings(packageJSON).modelPath, "");
  assert.deepEqual(settings.rememberedInUse(), {});
  const values = { modelPath: "" };
  assert.equal(settings.withRemembered(values), values);
});

test("python.defaultInterpreterPath, which an empty tact.pythonPath falls back to, is remembered too", () => {
  const user = setup({ "python.defaultInterpreterPath": "/usr/local/bin/python3.12" });
  settings.rememberSettings(packageJSON);
  delete user["python.defaultInterpreterPath"];
  assert.equal(settings.pythonPath(), "/usr/local/bin/python3.12");
});
