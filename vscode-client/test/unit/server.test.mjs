// Unit tests of the interpreter setting's resolution, of stopping the server and of the order of starts, restarts
// and stops (src/server.ts, compiled to out/unit by `npm test`).
import assert from "node:assert/strict";
import { test } from "node:test";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { checkPython, resolveInterpreter, serverLogLine, ServerControl, startServer, stopServer } from "../../out/unit/server.mjs";

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
  /** Kills the server process of a start given up on: the client's start fails once it sees the process end
   * (unless killEndsStart is false: a process that did not die). */
  abandon() {
    this.abandons = (this.abandons ?? 0) + 1;
    if (this.state === "starting" && this.killEndsStart !== false) {
      this.state = "startFailed";
      this.starting.reject(new Error("Pending response rejected since connection got disposed"));
    }
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

test("a client restarting a crashed server that never answers initialize is given up on, not waited for forever", { timeout: 2000 }, async () => {
  const client = new FakeClient("running");
  client.crashAndRestart(); // the new server process never answers initialize
  await stopServer(client, 5000, 50);
  assert.equal(client.abandons, 1);
  assert.equal(client.state, "startFailed");
  assert.equal(client.stops, 0);
});

const ACCEPT = "tact.acceptSuggestion";

/** VS Code's command registry: registering a name that exists throws, as vscode.commands.registerCommand does. */
class Commands {
  constructor() {
    this.owners = new Map();
    this.errors = [];
  }
  register(name, owner) {
    if (this.owners.has(name)) {
      throw new Error(`command '${name}' already exists`);
    }
    this.owners.set(name, owner);
  }
  unregister(owner) {
    for (const [name, o] of this.owners) {
      if (o === owner) {
        this.owners.delete(name);
      }
    }
  }
}

/** A client whose server advertises tact.acceptSuggestion: it registers the command each time it gets to running
 * (its start, or its own restart of a crashed server) and unregisters it when the server stops or dies; a failed
 * registration fails that start. run() is the server answering initialize. */
class RegisteringClient extends FakeClient {
  constructor(commands) {
    super("initial");
    this.commands = commands;
  }
  start() {
    if (this.state !== "starting") {
      this.crashAndRestart(); // a first start: starting, as after a crash
    }
    return this.starting.promise;
  }
  run() {
    try {
      this.commands.register(ACCEPT, this);
    } catch (error) {
      this.commands.errors.push(error.message);
      this.state = "startFailed";
      this.starting.reject(error);
      return;
    }
    this.state = "running";
    this.starting.resolve();
  }
  crash() {
    this.commands.unregister(this);
    this.crashAndRestart();
  }
  async stop(timeoutMs) {
    await super.stop(timeoutMs);
    this.commands.unregister(this);
  }
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

async function until(condition) {
  for (let i = 0; i < 100 && !condition(); i++) {
    await tick();
  }
  assert.ok(condition(), String(condition));
}

/** The extension's steps on fake clients, with the steps logged in order; a start not answered within
 * startTimeoutMs is given up on. */
function control(startTimeoutMs = 60000) {
  const commands = new Commands();
  const clients = [];
  const steps = [];
  let client;
  const server = new ServerControl({
    start: async () => {
      steps.push("start");
      client = new RegisteringClient(commands);
      clients.push(client);
      await startServer(client, startTimeoutMs).catch(() => undefined);
    },
    endOutcomes: async () => {
      steps.push(client?.isRunning() ? "endOutcomes (running)" : "endOutcomes");
    },
    stop: async () => {
      steps.push("stop");
      const stopping = client;
      client = undefined;
      if (stopping) {
        await stopServer(stopping, 5000, startTimeoutMs);
      }
    },
  });
  return { server, commands, clients, steps };
}

test("a second restart while the client restarts its crashed server waits for that client to stop: no clash on the accept command", async () => {
  const { server, commands, clients } = control();
  void server.start();
  await until(() => clients.length === 1);
  clients[0].run();
  clients[0].crash(); // the client restarts the server on its own
  const first = server.restart(); // waits for the crashed server's restart to stop it
  await tick();
  const second = server.restart(); // settings changed meanwhile
  await tick();
  assert.equal(clients.length, 1, "a new client started while the old one still restarts its server");
  clients[0].run(); // the old client's server is back and registers the command again
  await until(() => clients.length === 2);
  clients[1].run();
  await first;
  await until(() => clients.length === 3);
  clients[2].run();
  await second;
  assert.deepEqual(commands.errors, []);
  assert.deepEqual(clients.map((c) => c.state), ["stopped", "stopped", "running"]);
  assert.equal(commands.owners.get(ACCEPT), clients[2]);
});

test("restarts asked for before the queued one begins are one restart; one asked for after it begins is another", async () => {
  const { server, clients } = control();
  void server.start();
  await until(() => clients.length === 1);
  clients[0].run();
  const restarts = [server.restart(), server.restart(), server.restart()];
  await until(() => clients.length === 2);
  clients[1].run();
  await Promise.all(restarts);
  assert.equal(clients.length, 2);
  const later = server.restart();
  await until(() => clients.length === 3);
  clients[2].run();
  await later;
  assert.deepEqual(clients.map((c) => c.state), ["stopped", "stopped", "running"]);
});

test("a restart ends the outcomes while the server that issued them runs, then stops it, then starts the next", async () => {
  const { server, clients, steps } = control();
  void server.start();
  await until(() => clients.length === 1);
  clients[0].run();
  const restarting = server.restart();
  await until(() => clients.length === 2);
  clients[1].run();
  await restarting;
  assert.deepEqual(steps, ["start", "endOutcomes (running)", "stop", "start"]);
});

test("dispose during a start stops that server once it runs, and nothing starts after it", async () => {
  const { server, clients, steps } = control();
  void server.start();
  await until(() => clients.length === 1);
  const disposing = server.dispose();
  const restarting = server.restart(); // a settings change that raced the deactivation
  clients[0].run();
  await disposing;
  await restarting;
  assert.equal(server.disposed, true);
  assert.equal(clients.length, 1);
  assert.equal(clients[0].state, "stopped");
  assert.deepEqual(steps.filter((s) => s === "start"), ["start"]);
});

test("a server that never answers initialize is given up on: the restart queued behind its start runs", { timeout: 2000 }, async () => {
  const { server, commands, clients, steps } = control(50);
  const starting = server.start();
  await until(() => clients.length === 1);
  const restarting = server.restart(); // the user restarts it: queued behind the start
  await starting; // given up on after 50 ms
  assert.equal(clients[0].abandons, 1);
  assert.equal(clients[0].state, "startFailed");
  await until(() => clients.length === 2);
  clients[1].run();
  await restarting;
  assert.deepEqual(steps, ["start", "endOutcomes", "stop", "start"]);
  assert.equal(commands.owners.get(ACCEPT), clients[1]);
});

test("a start given up on rejects saying so, after its start ends or a while after the kill if it does not", { timeout: 2000 }, async () => {
  const client = new RegisteringClient(new Commands());
  await assert.rejects(startServer(client, 20), /the server did not answer initialize within 0\.02 s/);
  assert.equal(client.state, "startFailed");
  const unkillable = new RegisteringClient(new Commands());
  unkillable.killEndsStart = false;
  await assert.rejects(startServer(unkillable, 20, 20), /did not answer initialize/);
  assert.equal(unkillable.abandons, 1);
});

test("a start that is answered, or fails, in time is the client's start", async () => {
  const commands = new Commands();
  const client = new RegisteringClient(commands);
  const starting = startServer(client, 1000);
  client.run();
  await starting;
  assert.equal(client.isRunning(), true);
  assert.equal(client.abandons, undefined);
  const clash = new RegisteringClient(commands);
  const failing = startServer(clash, 1000);
  clash.run(); // its registration fails: the start fails with the client's error
  await assert.rejects(failing, /already exists/);
  assert.equal(clash.abandons, undefined);
});

test("a Python that fails without a word is reported with its error, not an empty reason", async () => {
  const check = await checkPython("false");
  assert.equal(check.ok, false);
  assert.match(check.problem, /^"false" cannot import Tact: \S/);
});

const CHECKOUT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

test("an interpreter that imports lsp_server from a checkout but lacks the server's modules is told so, not started", async () => {
  // the checkout's own lsp_server/__init__.py, with one module no interpreter has among those the server needs
  const dir = mkdtempSync(path.join(tmpdir(), "tact-probe-"));
  mkdirSync(path.join(dir, "lsp_server"));
  const init = readFileSync(path.join(CHECKOUT, "lsp_server", "__init__.py"), "utf8");
  assert.match(init, /SERVE_MODULES = \(/);
  writeFileSync(path.join(dir, "lsp_server", "__init__.py"), init.replace("SERVE_MODULES = (", 'SERVE_MODULES = ("tact_module_not_installed", '));
  const check = await checkPython("python3", dir);
  assert.equal(check.ok, false);
  assert.match(check.problem, /^Tact's dependencies are not installed in "python3" \(no tact_module_not_installed(, |;)/);
  assert.match(check.problem, /python3 -m pip install -e <your Tact checkout>/);
});

test("the checkout's own environment passes the check, with Tact's version", async () => {
  const check = await checkPython(path.join(CHECKOUT, ".venv", "bin", "python"), CHECKOUT);
  assert.equal(check.ok, true, check.problem);
  assert.match(check.version, /^\d+\.\d+\.\d+/);
});

test("a server log line goes to the output channel at the level it names", () => {
  assert.deepEqual(serverLogLine("2026-12-06 14:24:09,123 WARNING tact: Tact is running without a model", "info"),
    { level: "warn", text: "tact: Tact is running without a model" });
  assert.deepEqual(serverLogLine("2026-12-06 14:24:09,123 INFO tact: serving", "error"), { level: "info", text: "tact: serving" });
  assert.deepEqual(serverLogLine("2026-12-06 14:24:09,123 DEBUG tact.ledger: x", "info").level, "debug");
  assert.deepEqual(serverLogLine("2026-12-06 14:24:09,123 CRITICAL tact: y", "info").level, "error");
  // a traceback's lines keep the level of the record they belong to
  assert.deepEqual(serverLogLine("Traceback (most recent call last):", "error"), { level: "error", text: "Traceback (most recent call last):" });
  assert.deepEqual(serverLogLine("  File \"x.py\", line 1", "warn").level, "warn");
});
