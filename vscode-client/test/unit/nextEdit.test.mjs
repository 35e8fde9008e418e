// Unit tests of next edits' outcomes (src/nextEdit.ts), bundled here with small stand-ins for the vscode module and
// vscode-languageclient (they only run inside VS Code), with the real server runs (src/issuer.ts).
import assert from "node:assert/strict";
import { test } from "node:test";
import { importStubbed, offsetDocument } from "./stubbedBundle.mjs";

const stubs = {
  vscode: `
    const h = new Proxy({}, { get: (_, key) => globalThis.__vscodeStub[key] });
    export const EndOfLine = { LF: 1, CRLF: 2 };
    export const OverviewRulerLane = { Right: 4 };
    export const TextEditorRevealType = { InCenterIfOutsideViewport: 2 };
    export class ThemeColor { constructor(id) { this.id = id; } }
    export class MarkdownString { constructor(value) { this.value = value; } }
    export class Range { constructor(start, end) { this.start = start; this.end = end; } }
    export class Selection extends Range { constructor(anchor, active) { super(anchor, active); this.active = active; } }
    export class CancellationTokenSource {
      constructor() { this.token = { isCancellationRequested: false }; }
      cancel() { this.token.isCancellationRequested = true; }
      dispose() {}
    }
    export const languages = { match: () => 1 };
    export const commands = {
      registerCommand: (name, fn) => { h.commands.set(name, fn); return { dispose() {} }; },
      executeCommand: async () => undefined,
    };
    const listen = (name) => (fn) => { h.listeners[name] = fn; return { dispose() {} }; };
    export const workspace = { onDidChangeTextDocument: listen("change") };
    export const window = {
      createTextEditorDecorationType: () => ({ dispose() {} }),
      onDidChangeActiveTextEditor: listen("editor"),
      get activeTextEditor() { return h.activeTextEditor; },
      get visibleTextEditors() { return [h.activeTextEditor]; },
    };
  `,
  "vscode-languageclient/node": `
    export const ErrorCodes = { MethodNotFound: -32601 };
    export const ExecuteCommandRequest = { method: "workspace/executeCommand", type: "workspace/executeCommand" };
    export class ResponseError extends Error { constructor(code, message) { super(message); this.code = code; } }
  `,
};

const { NextEdits } = await importStubbed("nextEdit", stubs);
const { closeRun, IssuerNotifications, ServerRuns } = await import("../../out/unit/issuer.mjs");

const wait = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** One editor on "new = 1\nold" whose server predicts renaming `old` to `new`; what the server got is in sent. The
 * editor applies an edit when the test says (applyEdit()). */
function setup() {
  const h = { commands: new Map(), listeners: {} };
  globalThis.__vscodeStub = h;
  const sent = [];
  const edits = [];
  const document = offsetDocument("new = 1\nold");
  const editor = {
    document,
    selection: { active: 0 },
    setDecorations() {},
    revealRange() {},
    edit(build) {
      build({ replace() {} });
      return new Promise((resolve) => edits.push(resolve));
    },
  };
  h.activeTextEditor = editor;
  const client = {
    running: true,
    isRunning() {
      return this.running;
    },
    initializeResult: { capabilities: { experimental: { tact: { nextEdit: true } } } },
    code2ProtocolConverter: { asUri: (uri) => uri.toString(), asPosition: (p) => p },
    protocol2CodeConverter: { asRange: (r) => ({ start: r.start, end: r.end }) },
    async sendRequest(method, params) {
      if (method === "tact/nextEdit") {
        return { edits: [{ id: "e1", range: { start: 8, end: 11 }, newText: "new" }] };
      }
      await wait(1);
      sent.push({ method, ...params });
      return null;
    },
    async sendNotification(method, params) {
      await wait(1);
      sent.push({ method, ...params });
    },
  };
  const runs = new ServerRuns();
  runs.changed(client, true);
  const notifications = new IssuerNotifications(() => runs.current(), () => {});
  const access = { run: () => runs.issuing(), enabled: () => true, notifications };
  const nextEdits = new NextEdits(access, [], () => {});
  nextEdits.register();
  return {
    h,
    sent,
    nextEdits,
    applyEdit: (applied) => edits.shift()(applied),
    /** A restart's stop: the run closes, its outcomes are written, then its client stops. */
    async stop() {
      await closeRun(runs, [nextEdits], notifications);
      client.running = false;
      runs.end();
    },
  };
}

test("a next edit applied (Tab) just before a restart gets its accept, sent before the server stops", async () => {
  const s = setup();
  s.nextEdits.requestSoon("file:///a.py");
  await wait(80);
  assert.deepEqual(s.sent, [{ method: "tact/didShowNextEdit", id: "e1" }]);
  const applying = s.h.commands.get("tact.applyNextEdit")(); // the editor takes a moment to apply it
  const stopping = s.stop(); // a restart meanwhile: nothing is on screen for endAll to end
  await wait(5);
  s.applyEdit(true);
  await applying;
  await stopping;
  assert.deepEqual(s.sent.at(-1), { method: "workspace/executeCommand", command: "tact.acceptNextEdit", arguments: ["e1"] });
});

test("a next edit the editor refuses to apply just before a restart is rejected before the server stops", async () => {
  const s = setup();
  s.nextEdits.requestSoon("file:///a.py");
  await wait(80);
  const applying = s.h.commands.get("tact.applyNextEdit")();
  const stopping = s.stop();
  await wait(5);
  s.applyEdit(false);
  await applying;
  await stopping;
  assert.deepEqual(s.sent.at(-1), { method: "tact/didRejectNextEdit", id: "e1", reason: "ignored" });
});
