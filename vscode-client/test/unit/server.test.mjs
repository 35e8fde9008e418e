// Unit tests of the interpreter setting's resolution and of stopping the server (src/server.ts, compiled to
// out/unit by `npm test`).
import assert from "node:assert/strict";
import { test } from "node:test";
import { resolveInterpreter, stopServer } from "../../out/unit/server.mjs";

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

/** A language client as vscode-languageclient 10 behaves: stop() throws while it starts (shutdown(): "Client is
 * not running and can't be stopped"), start() while starting returns the start under way, and a crashed server
 * is restarted on its own (the client starting again). */
class FakeClient {
  constructor(state) {
    this.state = state;
    this.stops = 0;
    this.starting = undefined;
  }
  isRunning() {
    return this.state === "running";
  }
  needsStop() {
    return this.state === "starting" || this.state === "running";
  }
  crashAndRestart() {
    this.state = "starting";
    const starting = {};
    starting.promise = new Promise((resolve, reject) => Object.assign(starting, { resolve, reject }));
    this.starting = starting;
  }
  start() {
    return this.state === "starting" ? this.starting.promise : Promise.resolve();
  }
  async stop() {
    if (this.state === "stopped" || this.state === "initial") {
      return;
    }
    if (this.state !== "running") {
      throw new Error(`Client is not running and can't be stopped. It's current state is: ${this.state}`);
    }
    this.stops += 1;
    this.state = "stopped";
  }
}

test("a client restarting a crashed server is stopped once that server runs, not left running unowned", async () => {
  const client = new FakeClient("running");
  client.crashAndRestart();
  await assert.rejects(client.stop(5000), /can't be stopped/); // what a plain stop() does (the server ran on)
  const stopping = stopServer(client, 5000);
  await Promise.resolve();
  assert.equal(client.stops, 0); // still starting: stopping waits
  client.state = "running";
  client.starting.resolve();
  await stopping;
  assert.equal(client.state, "stopped");
  assert.equal(client.stops, 1);
});

test("a running client is stopped; a stopped one or one whose start failed has nothing to stop", async () => {
  const running = new FakeClient("running");
  await stopServer(running, 5000);
  assert.equal(running.stops, 1);
  for (const state of ["stopped", "startFailed"]) {
    const client = new FakeClient(state);
    await stopServer(client, 5000); // no "can't be stopped" error to log
    assert.equal(client.stops, 0);
  }
  const failing = new FakeClient("running");
  failing.crashAndRestart();
  const stopping = stopServer(failing, 5000);
  failing.state = "startFailed";
  failing.starting.reject(new Error("the server exited"));
  await stopping; // the failed start is the client's to report
  assert.equal(failing.stops, 0);
});
