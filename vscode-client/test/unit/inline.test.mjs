// Unit tests of the inline-completion provider's event reporting (src/inline.ts), bundled here with small stand-ins
// for the vscode module and vscode-languageclient (they only run inside VS Code).
import assert from "node:assert/strict";
import { test } from "node:test";
import { importStubbed, offsetDocument } from "./stubbedBundle.mjs";

const stubs = {
  vscode: `
    const h = new Proxy({}, { get: (_, key) => globalThis.__vscodeStub[key] });
    export const EndOfLine = { LF: 1, CRLF: 2 };
    export const InlineCompletionTriggerKind = { Invoke: 0, Automatic: 1 };
    export const TextDocumentChangeReason = { Undo: 1, Redo: 2 };
    export class Range { constructor(start, end) { this.start = start; this.end = end; } }
    export const languages = { registerInlineCompletionItemProvider: (...args) => h.register(...args) };
    export const commands = {
      registerCommand: (name, fn) => { h.commands.set(name, fn); return { dispose() {} }; },
      executeCommand: (name, ...args) => h.execute(name, ...args),
    };
    const listen = (name) => (fn) => { h.listeners[name] = fn; return { dispose() {} }; };
    export const workspace = { onDidChangeTextDocument: listen("change"), onDidCloseTextDocument: listen("close") };
    export const window = {
      onDidChangeTextEditorSelection: listen("selection"),
      onDidChangeActiveTextEditor: listen("editor"),
      get activeTextEditor() { return h.activeTextEditor; },
    };
  `,
  "vscode-languageclient/node": `export const InlineCompletionRequest = { type: "textDocument/inlineCompletion" };`,
};

const { InlineSuggestions } = await importStubbed("inline", stubs);

/** A VS Code stand-in: one document (text) whose positions are plain offsets, with the proposed API granted or not. */
function setup({ proposed = true, text = "" } = {}) {
  const h = {
    commands: new Map(),
    listeners: {},
    provider: undefined,
    onExecute: undefined,
    register(selector, provider, metadata) {
      if (metadata !== undefined && !proposed) {
        throw new Error("proposal not enabled");
      }
      h.provider = provider;
      return { dispose() {} };
    },
    async execute(name) {
      h.onExecute?.(name);
    },
  };
  globalThis.__vscodeStub = h;
  const document = offsetDocument(text);
  h.activeTextEditor = { document };
  const sent = [];
  const run = { remember() {}, issued: () => true, client: undefined };
  let answer = [];
  run.client = {
    code2ProtocolConverter: { asInlineCompletionParams: () => ({}) },
    sendRequest: async () => ({ items: [] }),
    protocol2CodeConverter: { asInlineCompletionResult: async () => answer },
  };
  const access = {
    run: () => run,
    enabled: () => true,
    notifications: { send: (issuer, method, params) => sent.push({ method, params }) },
  };
  const inline = new InlineSuggestions(access, [], { onActivity() {}, onAccepted() {} }, () => {});
  inline.register();
  const token = { isCancellationRequested: false };
  return {
    h,
    document,
    sent,
    inline,
    access,
    run,
    /** Asks the provider at ``offset`` of ``doc`` (the active editor's document unless said); the server answers
     * ``items`` ({id, text, start}). */
    async fetch(offset, items, context = {}, doc = document) {
      answer = items.map(({ id, text, start }) => ({
        insertText: text,
        range: start === undefined ? undefined : { start, end: offset },
        command: { command: "tact.acceptSuggestion", arguments: [id] },
      }));
      return h.provider.provideInlineCompletionItems(doc, offset, { triggerKind: 1, ...context }, token);
    },
    change(offset, length, text, reason) {
      document.version += 1;
      document.text = document.text.slice(0, offset) + text + document.text.slice(offset + length);
      h.listeners.change({ document, reason, contentChanges: [{ rangeOffset: offset, rangeLength: length, text }] });
    },
  };
}

test("proposed API: a partial accept through the extension's next-word command is sent with VS Code's length", async () => {
  const s = setup();
  const [item] = await s.fetch(4, [{ id: "s1", text: "total = sum(values)" }]);
  s.h.provider.handleDidShowCompletionItem(item);
  s.h.onExecute = (name) => {
    if (name === "editor.action.inlineSuggest.acceptNextWord") {
      s.change(4, 0, "total");
    }
  };
  await s.h.commands.get("tact.acceptNextWordOfSuggestion")();
  s.h.provider.handleDidPartiallyAcceptCompletionItem(item, 5);
  s.h.provider.handleDidPartiallyAcceptCompletionItem(item, { kind: 1, acceptedLength: 5 });
  assert.deepEqual(s.sent.filter((e) => e.method === "tact/didPartiallyAcceptCompletion").map((e) => e.params), [
    { id: "s1", acceptedLength: 5 },
  ]);
});

test("proposed API: accepting only the completion widget's entry an item extends is no partial accept of the suggestion", async () => {
  const s = setup();
  // "jo" typed at 10-12, the widget's entry "join" selected: the item replaces the entry's range with "join" + suggestion
  const selectedCompletionInfo = { range: { start: 10, end: 12 }, text: "join" };
  const [item] = await s.fetch(12, [{ id: "s1", text: "join(parts)", start: 10 }], { selectedCompletionInfo });
  s.h.provider.handleDidShowCompletionItem(item);
  // Enter on the widget's entry: VS Code reports the entry's length (the text in the item's range plus the item's rest)
  s.h.provider.handleDidPartiallyAcceptCompletionItem(item, 2);
  s.h.provider.handleDidPartiallyAcceptCompletionItem(item, { kind: 3, acceptedLength: 4 });
  assert.deepEqual(s.sent.filter((e) => e.method === "tact/didPartiallyAcceptCompletion"), []);
  // a next word after it accepts suggestion text: counted over the item, as the server expects
  s.h.provider.handleDidPartiallyAcceptCompletionItem(item, { kind: 1, acceptedLength: 5 });
  assert.deepEqual(s.sent.filter((e) => e.method === "tact/didPartiallyAcceptCompletion").map((e) => e.params), [
    { id: "s1", acceptedLength: 5 },
  ]);
});

test("an answer from a server run that ended while it was computed is not shown", async () => {
  const s = setup();
  s.run.client.sendRequest = async () => {
    s.access.run = () => undefined; // the server stopped (or restarted) meanwhile
    return { items: [] };
  };
  const shown = await s.fetch(4, [{ id: "s1", text: "total = sum(values)" }]);
  assert.equal(shown, undefined);
});

/** "s.jo" typed, the completion widget open with its entry "join" selected over "jo" (offsets 2-4). */
const JOIN_ENTRY = { range: { start: 2, end: 4 }, text: "join" };
const sentMethods = (s) => s.sent.map((e) => [e.method, e.params]);

test("without the proposed API, ghost text extending the completion widget's entry is shown and followed through the entry's acceptance to Tab", async () => {
  const s = setup({ proposed: false, text: "s.jo" });
  // the server's item replaces the entry's range with the entry and the suggestion
  await s.fetch(4, [{ id: "s1", text: "join(parts)", start: 2 }], { selectedCompletionInfo: JOIN_ENTRY });
  assert.deepEqual(sentMethods(s), [["tact/didShowCompletion", { id: "s1" }]]);
  s.change(2, 2, "join"); // Tab or Enter in the widget inserts the entry; the ghost text goes on after it
  s.change(2, 4, "join(parts)"); // Tab on the ghost text: the item's grown range gets the whole text
  assert.equal(s.inline.accepted("s1"), true); // the item's command
  assert.deepEqual(sentMethods(s), [["tact/didShowCompletion", { id: "s1" }]]); // neither rejected nor partly accepted
  assert.equal(s.inline.counters.accepted, 1);
  assert.equal(s.inline.counters.rejected, 0);
});

test("without the proposed API, an item that does not extend the widget's entry is not shown, and the entry's answer supersedes the suggestion before it", async () => {
  const s = setup({ proposed: false, text: "s.jo" });
  await s.fetch(4, [{ id: "s1", text: "in(x)" }]); // no widget yet: shown
  await s.fetch(4, [{ id: "s2", text: "json.dumps(x)", start: 2 }], { selectedCompletionInfo: JOIN_ENTRY });
  assert.deepEqual(sentMethods(s), [
    ["tact/didShowCompletion", { id: "s1" }],
    ["tact/didRejectCompletion", { id: "s1", reason: "superseded" }],
  ]);
});

test("without the proposed API, accepting words of ghost text over the widget's entry counts only what goes past the entry", async () => {
  const s = setup({ proposed: false, text: "s.jo" });
  await s.fetch(4, [{ id: "s1", text: "join(parts)", start: 2 }], { selectedCompletionInfo: JOIN_ENTRY });
  const words = ["in", "(parts"];
  s.h.onExecute = (name) => {
    if (name === "editor.action.inlineSuggest.acceptNextWord") {
      const word = words.shift();
      s.change(s.document.text.length, 0, word);
    }
  };
  await s.h.commands.get("tact.acceptNextWordOfSuggestion")(); // "in": the rest of the entry, none of the suggestion
  await s.h.commands.get("tact.acceptNextWordOfSuggestion")();
  assert.deepEqual(s.sent.filter((e) => e.method === "tact/didPartiallyAcceptCompletion").map((e) => e.params), [
    { id: "s1", acceptedLength: 10 }, // counted over the item, as the server expects ("join(parts" of "join(parts)")
  ]);
});

test("without the proposed API, an item over the widget's entry that starts at the cursor is not followed: accepting the entry is no typing over it", async () => {
  const s = setup({ proposed: false, text: "s.jo" });
  // VS Code shows it ("in(parts)" extends "join" once "jo" is left out), but the entry's acceptance rewrites "jo",
  // before the item's start, which the tracker cannot tell from typing over it
  await s.fetch(4, [{ id: "s1", text: "in(parts)", start: 4 }], { selectedCompletionInfo: JOIN_ENTRY });
  s.change(2, 2, "join");
  assert.deepEqual(sentMethods(s), []);
});

/** The extension's wiring of a server run around the provider: a client whose notifications take a while to be
 * written (so a stop's flush leaves a window), its run in ServerRuns, the events through IssuerNotifications, and a
 * restart's first step (closeRun, then the client stopped: runs.end()). sent has every event the server got. */
async function withRuns(s) {
  const { closeRun, IssuerNotifications, ServerRuns } = await import("../../out/unit/issuer.mjs");
  const runs = new ServerRuns();
  const requests = [];
  const client = {
    ...s.run.client,
    running: true,
    isRunning() {
      return this.running;
    },
    async sendNotification(method, params) {
      await new Promise((resolve) => setTimeout(resolve, 5));
      s.sent.push({ method, params });
    },
    /** The inline completion request: answered when the test says (answer()). */
    sendRequest: () => new Promise((resolve) => requests.push(() => resolve({ items: [] }))),
  };
  runs.changed(client, true);
  const notifications = new IssuerNotifications(() => runs.current(), () => {});
  s.access.run = () => runs.issuing();
  s.access.notifications = notifications;
  return {
    runs,
    answer: () => requests.shift()(),
    /** A restart's stop: the run closes, its outcomes are written, then its client stops. */
    async stop() {
      await closeRun(runs, [s.inline], notifications);
      client.running = false;
      runs.end();
    },
  };
}

/** The ids reported shown that never got an outcome (accepted, rejected). */
function withoutOutcome(s) {
  const shown = s.sent.filter((e) => e.method === "tact/didShowCompletion").map((e) => e.params.id);
  const ended = new Set(s.sent.filter((e) => e.method === "tact/didRejectCompletion").map((e) => e.params.id));
  return shown.filter((id) => !ended.has(id));
}

test("without the proposed API, an answer that arrives while a restart writes the last outcomes is not shown: every suggestion shown gets its outcome", async () => {
  const s = setup({ proposed: false, text: "tot" });
  const r = await withRuns(s);
  const first = s.fetch(3, [{ id: "s1", text: "al = 0" }]);
  r.answer();
  await first; // s1 shown
  const second = s.fetch(3, [{ id: "s2", text: "al = 1" }], { triggerKind: 0 });
  const stopping = r.stop(); // s1 rejected; its notification takes a few ms to be written
  r.answer(); // s2's answer arrives meanwhile
  assert.equal(await second, undefined);
  await stopping;
  assert.deepEqual(withoutOutcome(s), []);
  assert.deepEqual(sentMethods(s), [
    ["tact/didShowCompletion", { id: "s1" }],
    ["tact/didRejectCompletion", { id: "s1", reason: "ignored" }],
  ]);
});

test("proposed API: an item VS Code shows while a restart writes the last outcomes is not reported shown, and a partial accept after an outcome is not sent", async () => {
  const s = setup({ proposed: true, text: "tot" });
  const r = await withRuns(s);
  const first = s.fetch(3, [{ id: "s1", text: "al = sum(values)" }]);
  r.answer();
  const [item1] = await first;
  s.h.provider.handleDidShowCompletionItem(item1);
  const second = s.fetch(3, [{ id: "s2", text: "al = 1" }], { triggerKind: 0 });
  r.answer();
  const [item2] = await second; // answered before the restart, shown by VS Code only after it began
  const stopping = r.stop();
  s.h.provider.handleDidShowCompletionItem(item2);
  s.h.provider.handleDidPartiallyAcceptCompletionItem(item1, { kind: 1, acceptedLength: 3 });
  assert.equal(s.inline.accepted("s2"), false); // Tab on it: not the closing server's to record
  await stopping;
  assert.deepEqual(withoutOutcome(s), []);
  assert.deepEqual(sentMethods(s), [
    ["tact/didShowCompletion", { id: "s1" }],
    ["tact/didRejectCompletion", { id: "s1", reason: "ignored" }],
  ]);
  assert.equal(s.inline.counters.shown, 1);
});

test("an answer that arrives after suggestions were turned off is not shown", async () => {
  const s = setup({ proposed: false, text: "tot" });
  let on = true;
  s.access.enabled = () => on;
  s.run.client.sendRequest = async () => {
    on = false; // tact.enable turned off while the server computed it
    s.inline.endAll("ignored");
    return { items: [] };
  };
  assert.equal(await s.fetch(3, [{ id: "s1", text: "al = 0" }]), undefined);
  assert.deepEqual(sentMethods(s), []);
});

test("without the proposed API, an answer for an editor without focus does not supersede the suggestion on screen in the active editor", async () => {
  const s = setup({ proposed: false, text: "tot" });
  await s.fetch(3, [{ id: "s1", text: "al = 0" }]); // on screen in the active editor
  // another file's editor, without focus: its ghost text stays there with editor.inlineSuggest.keepOnBlur
  const other = offsetDocument("pri", "file:///b.py");
  await s.fetch(3, [{ id: "s2", text: "nt(x)" }], {}, other);
  assert.deepEqual(sentMethods(s), [["tact/didShowCompletion", { id: "s1" }]]);
  s.change(3, 0, "a"); // typing on through s1 (a character a change) is still followed, and Escape ends it
  s.change(4, 0, "l");
  await s.h.commands.get("tact.dismissSuggestion")();
  assert.deepEqual(sentMethods(s), [
    ["tact/didShowCompletion", { id: "s1" }],
    ["tact/didRejectCompletion", { id: "s1", reason: "dismissed" }],
  ]);
});

test("a suggestion whose document closes gets no outcome from the extension (the server ends it) and counts as rejected", async () => {
  // without the proposed API: shown, then its document closes; a restart's endAll later sends nothing for it
  const s = setup({ proposed: false, text: "tot" });
  await s.fetch(3, [{ id: "s1", text: "al = 0" }]);
  s.h.listeners.close?.(s.document);
  s.inline.endAll("ignored");
  assert.deepEqual(sentMethods(s), [["tact/didShowCompletion", { id: "s1" }]]);
  assert.equal(s.inline.counters.rejected, 1);
  // one typed to its end by hand, its document closed before Tab's accept could come: not settled as ignored
  const t = setup({ proposed: false, text: "tot" });
  await t.fetch(3, [{ id: "s2", text: "al" }]);
  t.change(3, 0, "al");
  t.h.listeners.close?.(t.document);
  await new Promise((resolve) => setTimeout(resolve, 1100)); // past the wait for the accept command
  assert.deepEqual(sentMethods(t), [["tact/didShowCompletion", { id: "s2" }]]);
  // with the proposed API: VS Code ends the item's lifetime after the close
  const p = setup({ proposed: true, text: "tot" });
  const [item] = await p.fetch(3, [{ id: "s3", text: "al = 0" }]);
  p.h.provider.handleDidShowCompletionItem(item);
  p.h.listeners.close?.(p.document);
  p.h.provider.handleEndOfLifetime(item, { kind: 2 }); // Ignored
  assert.deepEqual(sentMethods(p), [["tact/didShowCompletion", { id: "s3" }]]);
  assert.equal(p.inline.counters.rejected, 1);
});

test("another editor taking focus ends the ghost text as ignored in both lifecycle modes, not as a rejection", async () => {
  const inferred = setup({ proposed: false, text: "tot" });
  await inferred.fetch(3, [{ id: "s1", text: "al = 0" }]);
  inferred.h.listeners.editor();
  const proposed = setup({ proposed: true, text: "tot" });
  const [item] = await proposed.fetch(3, [{ id: "s1", text: "al = 0" }]);
  proposed.h.provider.handleDidShowCompletionItem(item);
  proposed.h.listeners.editor();
  proposed.h.provider.handleEndOfLifetime(item, { kind: 2 }); // VS Code's blur stops it, with no detail
  const reasons = (s) => sentMethods(s).filter(([method]) => method === "tact/didRejectCompletion").map(([, p]) => p.reason);
  assert.deepEqual(reasons(inferred), ["ignored"]);
  assert.deepEqual(reasons(proposed), ["ignored"]);
});

test("without the proposed API, a word accepted through VS Code's own Accept Word (hover toolbar, palette) is a partial accept, and the suggestion VS Code keeps on screen is neither rejected before its accept nor replaced by one never shown", async () => {
  const s = setup({ proposed: false, text: "tot" });
  await s.fetch(3, [{ id: "s1", text: "al = sum(values)" }]); // s1 on screen
  // the toolbar's "Accept Word" runs editor.action.inlineSuggest.acceptNextWord itself: VS Code inserts "al" in one
  // change; the extension's tact.acceptNextWordOfSuggestion did not run
  s.change(3, 0, "al");
  // VS Code's next fetch keeps s1 on screen (a partial accept's fetch, however it was invoked); the server answers anew
  await s.fetch(5, [{ id: "s2", text: " = sum(values)" }]);
  s.change(3, 2, "al = sum(values)"); // Tab on s1: its grown range gets its whole text, then its command runs
  assert.equal(s.inline.accepted("s1"), true);
  const sent = sentMethods(s);
  assert.deepEqual(sent.filter(([m, p]) => m === "tact/didRejectCompletion" && p.id === "s1"), [], "s1 rejected, then accepted");
  assert.deepEqual(sent.filter(([m, p]) => m === "tact/didShowCompletion" && p.id === "s2"), [], "s2 reported shown, never on screen");
  assert.deepEqual(sent.filter(([m]) => m === "tact/didPartiallyAcceptCompletion").map(([, p]) => p), [{ id: "s1", acceptedLength: 2 }]);
});

test("without the proposed API, typing a character at a time and a pair the editor closes stay typing, not partial accepts", async () => {
  const s = setup({ proposed: false, text: "print" });
  await s.fetch(5, [{ id: "s1", text: "(total, 1)" }]);
  s.change(5, 0, "()"); // the opener typed, its closer auto-inserted after the cursor
  s.change(6, 0, "t");
  s.change(7, 0, "o");
  assert.deepEqual(sentMethods(s), [["tact/didShowCompletion", { id: "s1" }]]); // followed, nothing else said
  s.change(8, 0, "tal"); // three characters at once: VS Code's own accept (or a paste of the suggestion's text)
  assert.deepEqual(sentMethods(s).slice(1), [["tact/didPartiallyAcceptCompletion", { id: "s1", acceptedLength: 6 }]]);
});
