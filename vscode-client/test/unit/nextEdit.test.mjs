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
    export class WorkspaceEdit {
      constructor() { this.replaced = []; }
      replace(uri, range, newText) { this.replaced.push({ uri: uri.toString(), range, newText }); }
    }
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
    export const workspace = {
      onDidChangeTextDocument: listen("change"),
      applyEdit: (edit) => h.applyWorkspaceEdit(edit),
    };
    export const window = {
      createTextEditorDecorationType: () => ({ dispose() {} }),
      onDidChangeActiveTextEditor: listen("editor"),
      get activeTextEditor() { return h.activeTextEditor; },
      get visibleTextEditors() { return h.visibleTextEditors ?? [h.activeTextEditor]; },
      showTextDocument: (document, options) => h.showTextDocument(document, options),
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

/** An editor stand-in on document; the decorations set on it are in decorated (the latest per type, by order set). */
function stubEditor(document, edits = []) {
  return {
    document,
    selection: { active: 0 },
    visibleRanges: [{ contains: () => true }], // the whole document on screen
    decorated: [],
    setDecorations(type, ranges) {
      this.decorated.push(ranges);
    },
    revealRange() {},
    edit(build) {
      build({ replace() {} });
      return new Promise((resolve) => edits.push(resolve));
    },
  };
}

const EDIT = { id: "e1", range: { start: 8, end: 11 }, newText: "new" };

/** One editor on "new = 1\nold" (at uri) whose server predicts renaming `old` to `new` (or answers answer); what the
 * server got is in sent, the tact/nextEdit requests' params in requests. The editor applies an edit when the test
 * says (applyEdit()). */
function setup({ uri = "file:///a.py", answer = { edits: [EDIT] } } = {}) {
  const h = { commands: new Map(), listeners: {} };
  globalThis.__vscodeStub = h;
  const sent = [];
  const edits = [];
  const requests = [];
  const document = offsetDocument("new = 1\nold", uri);
  const editor = stubEditor(document, edits);
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
        requests.push(params);
        return answer;
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
    requests,
    editor,
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

test("a next edit off screen is said at the cursor too, with its line, or Tab applied an edit never seen", async () => {
  const at = (offset, line) => Object.assign(new Number(offset), { line }); // an offset that knows its line
  const answer = { edits: [{ id: "e1", range: { start: at(8, 1), end: at(11, 1) }, newText: "new" }] };
  const s = setup({ answer });
  s.editor.visibleRanges = [{ contains: () => false }];
  s.editor.document.lineAt = () => ({ range: { end: 7 } });
  s.nextEdits.requestSoon("file:///a.py");
  await wait(80);
  const hints = s.editor.decorated.at(-1).map((d) => d.renderOptions.after.contentText);
  assert.deepEqual(hints, ["→ new   Tab to apply · Esc to dismiss", "→ new at line 2   Tab to apply there · Esc to dismiss"]);

  const onScreen = setup();
  onScreen.nextEdits.requestSoon("file:///a.py");
  await wait(80);
  assert.equal(onScreen.editor.decorated.at(-1).length, 1);
});

const CELL = "vscode-notebook-cell:/nb.ipynb#W1sZmlsZQ%3D%3D";
const CELL_BELOW = "vscode-notebook-cell:/nb.ipynb#W2sZmlsZQ%3D%3D";

/** The active cell (CELL) and the cell below it (CELL_BELOW, at version 3, holding "x = old"), both visible; the
 * server predicts `old` renamed to `new` in the cell below. Workspace edits go to applied; showTextDocument to shown. */
function setupCells({ version = 3, visible = true } = {}) {
  const answer = { edits: [{ id: "e2", range: { start: 4, end: 7 }, newText: "new", textDocument: { uri: CELL_BELOW, version: 3 } }] };
  const s = setup({ uri: CELL, answer });
  const below = stubEditor({ ...offsetDocument("x = old", CELL_BELOW), version });
  s.below = below;
  s.h.visibleTextEditors = visible ? [s.editor, below] : [s.editor];
  s.applied = [];
  s.shown = [];
  s.h.applyWorkspaceEdit = async (edit) => {
    s.applied.push(...edit.replaced);
    below.document.version += 1;
    return true;
  };
  s.h.showTextDocument = async (document, options) => {
    s.shown.push({ uri: document.uri.toString(), options });
    below.selection = options.selection;
    s.h.activeTextEditor = below;
    s.h.listeners.editor?.(below);
    return below;
  };
  return s;
}

const lastDecorations = (editor) => editor.decorated.slice(-2);

test("a next edit is asked for in other cells from a notebook cell, not from a file", async () => {
  const file = setup();
  file.nextEdits.requestSoon("file:///a.py");
  await wait(80);
  assert.equal(file.requests.length, 1);
  assert.equal("otherCells" in file.requests[0], false);

  const cell = setup({ uri: CELL });
  cell.nextEdits.requestSoon(CELL);
  await wait(80);
  assert.equal(cell.requests.length, 1);
  assert.equal(cell.requests[0].otherCells, true);
  assert.equal(cell.requests[0].textDocument.uri, CELL);
});

test("a next edit in the cell below is shown in that cell's editor", async () => {
  const s = setupCells();
  s.nextEdits.requestSoon(CELL);
  await wait(80);
  assert.deepEqual(s.sent, [{ method: "tact/didShowNextEdit", id: "e2" }]);
  const [removed, inserted] = lastDecorations(s.below);
  assert.deepEqual(removed.map((d) => d.range), [{ start: 4, end: 7 }]);
  assert.equal(inserted.length, 1);
  assert.equal(s.editor.decorated.length, 0, "nothing is shown in the active cell");
});

test("a next edit in a cell with no visible editor, or one at another version, is not shown", async () => {
  for (const s of [setupCells({ visible: false }), setupCells({ version: 4 })]) {
    s.nextEdits.requestSoon(CELL);
    await wait(80);
    assert.deepEqual(s.sent, []);
    assert.equal(s.below.decorated.length, 0);
    await s.h.commands.get("tact.applyNextEdit")(); // Tab finds nothing to apply
    assert.deepEqual(s.applied, []);
  }
});

test("Tab applies a next edit in the cell below to that cell, moves there and accepts it", async () => {
  const s = setupCells();
  s.nextEdits.requestSoon(CELL);
  await wait(80);
  await s.h.commands.get("tact.applyNextEdit")();
  assert.deepEqual(s.applied, [{ uri: CELL_BELOW, range: { start: 4, end: 7 }, newText: "new" }]);
  assert.equal(s.shown.length, 1);
  assert.equal(s.shown[0].uri, CELL_BELOW);
  assert.equal(s.shown[0].options.selection.active, 7);
  await wait(5);
  assert.deepEqual(s.sent.at(-1), { method: "workspace/executeCommand", command: "tact.acceptNextEdit", arguments: ["e2"] });
  assert.equal(s.sent.filter((m) => m.method === "tact/didRejectNextEdit").length, 0);
});

test("Tab after the cell below changed does not apply the edit there: it is ignored", async () => {
  const s = setupCells();
  s.nextEdits.requestSoon(CELL);
  await wait(80);
  s.below.document.version += 1; // changed without an event reaching the extension yet
  await s.h.commands.get("tact.applyNextEdit")();
  await wait(5);
  assert.deepEqual(s.applied, []);
  assert.deepEqual(s.sent.at(-1), { method: "tact/didRejectNextEdit", id: "e2", reason: "ignored" });
});

test("typing in the cell below, or in the active cell, ends a next edit shown in the cell below", async () => {
  for (const typedIn of ["below", "editor"]) {
    const s = setupCells();
    s.nextEdits.requestSoon(CELL);
    await wait(80);
    s.h.listeners.change({ document: s[typedIn].document, contentChanges: [{}] });
    await wait(5);
    assert.deepEqual(s.sent.at(-1), { method: "tact/didRejectNextEdit", id: "e2", reason: "typedOver" }, typedIn);
  }
});
