// Unit tests of the interpreter setting's resolution (src/server.ts, compiled to out/unit by `npm test`).
import assert from "node:assert/strict";
import { test } from "node:test";
import { resolveInterpreter } from "../../out/unit/server.mjs";

test("${workspaceFolder} is the first workspace folder", () => {
  assert.equal(resolveInterpreter("${workspaceFolder}/.venv/bin/python", "/work/project", "/home/u"), "/work/project/.venv/bin/python");
});

test("a relative path is resolved against the workspace folder, where the server runs", () => {
  assert.equal(resolveInterpreter(".venv/bin/python", "/work/project", "/home/u"), "/work/project/.venv/bin/python");
  assert.equal(resolveInterpreter("../tact/.venv/bin/python", "/work/project", "/home/u"), "/work/tact/.venv/bin/python");
});

test("~ is the home directory", () => {
  assert.equal(resolveInterpreter("~/venvs/tact/bin/python", "/work/project", "/home/u"), "/home/u/venvs/tact/bin/python");
});

test("a bare name is left to PATH, an absolute path and a path without a folder to resolve against as they are", () => {
  assert.equal(resolveInterpreter("python3", "/work/project", "/home/u"), "python3");
  assert.equal(resolveInterpreter(" /usr/bin/python3 ", "/work/project", "/home/u"), "/usr/bin/python3");
  assert.equal(resolveInterpreter(".venv/bin/python", undefined, "/home/u"), ".venv/bin/python");
});
