// Unit tests of server runs: a suggestion's events and accept go to the run that issued it (src/issuer.ts,
// compiled to out/unit by `npm test`).
import assert from "node:assert/strict";
import { test } from "node:test";
import { closeRun, IssuerNotifications, ServerRuns } from "../../out/unit/issuer.mjs";

/** A language client as vscode-languageclient 10 behaves across a crash: the same object stops (its server
 * died) and starts again with a new server process. Each process's notifications are kept apart. */
class FakeClient {
  constructor() {
    this.state = "stopped";
    this.processes = [];
  }
  isRunning() {
    return this.state === "running";
  }
  startProcess() {
    this.processes.push([]);
    this.state = "running";
  }
  crash() {
    this.state = "stopped";
  }
  async sendNotification(method, params) {
    this.processes.at(-1).push({ method, ...params });
  }
  async sendRequest(method, params) {
    this.processes.at(-1).push({ method, ...params });
  }
}

/** The extension's wiring: the client's state changes make the runs; the notifications go through them. */
function wired() {
  const client = new FakeClient();
  const runs = new ServerRuns();
  const logged = [];
  const notifications = new IssuerNotifications(() => runs.current(), (m) => logged.push(m));
  const start = () => {
    client.startProcess();
    runs.changed(client, true);
  };
  const crash = () => {
    client.crash();
    runs.changed(client, false);
  };
  return { client, runs, notifications, logged, start, crash };
}

test("after the client restarts a crashed server, events of a suggestion made before the crash do not reach the new server", async () => {
  const { client, runs, notifications, logged, start, crash } = wired();
  start();
  const issuer = runs.current();
  notifications.send(issuer, "tact/didShowCompletion", { id: "a1" });
  crash();
  start(); // the same client object, a new server process
  assert.equal(runs.current()?.client, client);
  notifications.send(issuer, "tact/didRejectCompletion", { id: "a1", reason: "typedOver" });
  notifications.send(issuer, "tact/didPartiallyAcceptCompletion", { id: "a1", acceptedLength: 3 });
  const newer = runs.current();
  notifications.send(newer, "tact/didShowCompletion", { id: "b1" });
  await notifications.flush();
  assert.deepEqual(client.processes, [
    [{ method: "tact/didShowCompletion", id: "a1" }],
    [{ method: "tact/didShowCompletion", id: "b1" }],
  ]);
  assert.equal(logged.length, 2); // dropped, and said so in the log
});

test("ghost text from before a crash-restart or a restart is not the new server's to accept", () => {
  const { client, runs, start, crash } = wired();
  start();
  runs.current().remember("a1");
  assert.equal(runs.current().issued("a1"), true);
  crash();
  assert.equal(runs.current(), undefined); // no server: nothing to accept into
  start();
  assert.equal(runs.current().issued("a1"), false);
  runs.current().remember("b1");
  runs.end(); // the extension stops the client (a restart): the next one never issued b1
  assert.equal(runs.current(), undefined);
  client.startProcess();
  runs.changed(client, true);
  assert.equal(runs.current().issued("b1"), false);
});

test("a run remembers its recent suggestions only", () => {
  const { runs, start } = wired();
  start();
  const run = runs.current();
  for (let i = 0; i < 1001; i++) {
    run.remember(`s${i}`);
  }
  assert.equal(run.issued("s0"), false);
  assert.equal(run.issued("s1"), true);
  assert.equal(run.issued("s1000"), true);
});

test("a closing run issues nothing more but gets the events of what it issued until its client stops, a crash-restart meanwhile included", async () => {
  const { client, runs, notifications, start, crash } = wired();
  start();
  const issuer = runs.current();
  assert.equal(runs.issuing(), issuer);
  await closeRun(runs, [{ endAll: (reason) => notifications.send(issuer, "tact/didRejectCompletion", { id: "a1", reason }) }], notifications);
  assert.equal(runs.issuing(), undefined); // no new suggestion, no accept
  assert.equal(runs.current(), issuer); // its outcomes still go to it
  crash();
  start(); // the client restarts its server before the extension stops it: still closed
  assert.equal(runs.issuing(), undefined);
  runs.end(); // stopped; the next client's run issues again
  client.startProcess();
  runs.changed(client, true);
  assert.equal(runs.issuing(), runs.current());
  assert.deepEqual(client.processes[0], [{ method: "tact/didRejectCompletion", id: "a1", reason: "ignored" }]);
});

test("closeRun waits for the outcomes still being decided and for the requests handed to the client", async () => {
  const { client, runs, notifications, start } = wired();
  start();
  const issuer = runs.current();
  let decide;
  const surface = {
    endAll() {},
    settled: () => new Promise((resolve) => (decide = resolve)),
  };
  const closing = closeRun(runs, [surface], notifications);
  let closed = false;
  void closing.then(() => (closed = true));
  await new Promise((resolve) => setTimeout(resolve, 5));
  assert.equal(closed, false); // an edit being applied: its accept is yet to be sent
  notifications.request(issuer, "workspace/executeCommand", { command: "tact.acceptNextEdit", arguments: ["e1"] });
  decide();
  await closing;
  assert.deepEqual(client.processes[0], [{ method: "workspace/executeCommand", command: "tact.acceptNextEdit", arguments: ["e1"] }]);
});

test("a stop waits a bounded time for an accept a hung server never answers", async () => {
  // Tab on a next edit, then Restart Server because the server hangs: the accept request is never answered
  const client = { isRunning: () => true, sendNotification: async () => {}, sendRequest: () => new Promise(() => {}) };
  const runs = new ServerRuns();
  runs.changed(client, true);
  const notifications = new IssuerNotifications(() => runs.current(), () => {});
  notifications.request(runs.current(), "workspace/executeCommand", { command: "tact.acceptNextEdit", arguments: ["e1"] });
  const outcome = await Promise.race([
    notifications.flush(50).then(() => "flushed"),
    new Promise((resolve) => setTimeout(() => resolve("waiting"), 2000)),
  ]);
  assert.equal(outcome, "flushed");
});
