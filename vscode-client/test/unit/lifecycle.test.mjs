// Unit tests of the suggestion lifecycle inference (src/lifecycle.ts, compiled to out/unit by `npm test`).
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  END_ACCEPTED,
  END_IGNORED,
  END_REJECTED,
  extendsEntry,
  partialAcceptLength,
  reasonForEndOfLife,
  SuggestionTracker,
} from "../../out/unit/lifecycle.mjs";

test("typing the suggestion's next characters follows it; the rest of it completes it", () => {
  const t = new SuggestionTracker("s1", "foo(bar)", 10, 10);
  assert.deepEqual(t.onChange({ offset: 10, length: 0, text: "f" }), { kind: "typedThrough" });
  assert.equal(t.expectedCursor, 11);
  assert.deepEqual(t.onCursor(11), { kind: "unchanged" });
  assert.deepEqual(t.onChange({ offset: 11, length: 0, text: "oo(bar)" }), { kind: "completed" });
  assert.equal(t.resolved, true);
});

test("a keystroke that disagrees is typedOver, once", () => {
  const t = new SuggestionTracker("s1", "foo", 10, 10);
  assert.deepEqual(t.onChange({ offset: 10, length: 0, text: "x" }), { kind: "rejected", reason: "typedOver" });
  assert.deepEqual(t.onChange({ offset: 11, length: 0, text: "y" }), { kind: "unchanged" });
  assert.equal(t.inferred, "typedOver");
});

test("deleting at the cursor is typedOver", () => {
  const t = new SuggestionTracker("s1", "foo", 10, 10);
  assert.deepEqual(t.onChange({ offset: 9, length: 1, text: "" }), { kind: "rejected", reason: "typedOver" });
});

test("moving the cursor away is cursorMoved", () => {
  const t = new SuggestionTracker("s1", "foo", 10, 10);
  assert.deepEqual(t.onCursor(3), { kind: "rejected", reason: "cursorMoved" });
});

test("a change before the suggestion only shifts it", () => {
  const t = new SuggestionTracker("s1", "foo", 10, 10);
  assert.deepEqual(t.onChange({ offset: 0, length: 0, text: "ab" }), { kind: "unchanged" });
  assert.equal(t.expectedCursor, 12);
  assert.deepEqual(t.onChange({ offset: 12, length: 0, text: "fo" }), { kind: "typedThrough" });
});

test("accept next word reports the cumulative accepted length", () => {
  const t = new SuggestionTracker("s1", "total = sum(values)", 4, 4);
  assert.deepEqual(t.onChange({ offset: 4, length: 0, text: "total" }, "partialAccept"), { kind: "partiallyAccepted", acceptedLength: 5 });
  assert.deepEqual(t.onChange({ offset: 9, length: 0, text: " = " }, "partialAccept"), { kind: "partiallyAccepted", acceptedLength: 8 });
});

test("a range that starts before the cursor counts what is already typed", () => {
  const t = new SuggestionTracker("s1", "values)", 10, 13); // "val" typed before the request
  assert.equal(t.consumed, 3);
  assert.deepEqual(t.onCursor(13), { kind: "unchanged" });
  assert.deepEqual(t.onChange({ offset: 13, length: 0, text: "ues)" }), { kind: "completed" });
});

test("end-of-lifetime reasons from the proposed API", () => {
  assert.equal(reasonForEndOfLife({ kind: END_ACCEPTED }, undefined), null);
  assert.equal(reasonForEndOfLife({ kind: END_REJECTED }, undefined), "dismissed");
  assert.equal(reasonForEndOfLife({ kind: END_IGNORED, supersededBy: {}, userTypingDisagreed: false }, undefined), "superseded");
  assert.equal(reasonForEndOfLife({ kind: END_IGNORED, userTypingDisagreed: true }, undefined), "typedOver");
  assert.equal(reasonForEndOfLife({ kind: END_IGNORED, userTypingDisagreed: false }, "cursorMoved"), "cursorMoved");
  assert.equal(reasonForEndOfLife({ kind: END_IGNORED, userTypingDisagreed: false }, undefined), "ignored");
});

test("Tab after typing through replaces the grown range with the whole text: completed, not typedOver", () => {
  const t = new SuggestionTracker("s1", "foo(bar)", 10, 10);
  assert.deepEqual(t.onChange({ offset: 10, length: 0, text: "f" }), { kind: "typedThrough" });
  // VS Code grew the item's range over "f"; accepting replaces [10, 11) with the whole text
  assert.deepEqual(t.onChange({ offset: 10, length: 1, text: "foo(bar)" }), { kind: "completed" });
  assert.equal(t.inferred, undefined);
});

test("the last word of a word-by-word accept replaces the accepted words with the whole text: completed", () => {
  const t = new SuggestionTracker("s1", "total = sum(values)", 4, 4);
  assert.deepEqual(t.onChange({ offset: 4, length: 0, text: "total" }, "partialAccept"), { kind: "partiallyAccepted", acceptedLength: 5 });
  assert.deepEqual(t.onChange({ offset: 4, length: 5, text: "total = sum(values)" }, "partialAccept"), { kind: "completed" });
});

test("Tab on a range that started before the cursor completes it", () => {
  const t = new SuggestionTracker("s1", "values)", 10, 13); // "val" typed before the request
  assert.deepEqual(t.onChange({ offset: 10, length: 3, text: "values)" }), { kind: "completed" });
});

test("replacing the typed-through text with something that does not continue the suggestion is typedOver", () => {
  const t = new SuggestionTracker("s1", "foo(bar)", 10, 10);
  t.onChange({ offset: 10, length: 0, text: "fo" });
  assert.deepEqual(t.onChange({ offset: 10, length: 2, text: "fox" }), { kind: "rejected", reason: "typedOver" });
  const u = new SuggestionTracker("s2", "foo(bar)", 10, 10);
  u.onChange({ offset: 10, length: 0, text: "fo" });
  assert.deepEqual(u.onChange({ offset: 10, length: 1, text: "foo(bar)" }), { kind: "rejected", reason: "typedOver" }); // not up to the cursor
  const v = new SuggestionTracker("s3", "foo(bar)", 10, 10);
  v.onChange({ offset: 10, length: 0, text: "fo" });
  assert.deepEqual(v.onChange({ offset: 10, length: 2, text: "Foo(bar)" }), { kind: "rejected", reason: "typedOver" });
});

test("typed to the end by hand with no accept after it settles as ignored, once", () => {
  const t = new SuggestionTracker("s1", "foo", 10, 10);
  assert.deepEqual(t.onChange({ offset: 10, length: 0, text: "foo" }), { kind: "completed" });
  assert.deepEqual(t.settle(), { kind: "rejected", reason: "ignored" });
  assert.equal(t.inferred, "ignored");
  assert.deepEqual(t.settle(), { kind: "unchanged" });
});

test("typed to the end then accepted (Tab's command): settling reports nothing", () => {
  const t = new SuggestionTracker("s1", "foo", 10, 10);
  t.onChange({ offset: 10, length: 0, text: "f" });
  assert.deepEqual(t.onChange({ offset: 10, length: 1, text: "foo" }), { kind: "completed" });
  t.accept();
  assert.deepEqual(t.settle(), { kind: "unchanged" });
  const open = new SuggestionTracker("s2", "foo", 10, 10); // never completed: nothing to settle
  assert.deepEqual(open.settle(), { kind: "unchanged" });
});

// A CRLF document: the suggestion's text comes with "\n" breaks; VS Code inserts it with the document's "\r\n"
// (its text buffer rewrites every edit's line breaks), and Enter types "\r\n" plus the indentation.

test("a two-line suggestion typed through by hand in a CRLF document completes and settles as ignored", () => {
  const t = new SuggestionTracker("s1", "if x:\n    y = 1", 10, 10, "\r\n");
  assert.deepEqual(t.onChange({ offset: 10, length: 0, text: "if x:" }), { kind: "typedThrough" });
  assert.deepEqual(t.onCursor(15), { kind: "unchanged" });
  assert.deepEqual(t.onChange({ offset: 15, length: 0, text: "\r\n    " }), { kind: "typedThrough" }); // Enter, auto-indented
  assert.deepEqual(t.onCursor(21), { kind: "unchanged" });
  assert.deepEqual(t.onChange({ offset: 21, length: 0, text: "y = " }), { kind: "typedThrough" });
  assert.deepEqual(t.onCursor(25), { kind: "unchanged" });
  assert.deepEqual(t.onChange({ offset: 25, length: 0, text: "1" }), { kind: "completed" });
  assert.deepEqual(t.settle(), { kind: "rejected", reason: "ignored" });
});

test("Tab on a CRLF multi-line suggestion after some typing replaces the range with the CRLF text: completed", () => {
  const t = new SuggestionTracker("s1", "if x:\n    y = 1\nz", 10, 10, "\r\n");
  t.onChange({ offset: 10, length: 0, text: "if x:" });
  assert.deepEqual(t.onChange({ offset: 15, length: 0, text: "\r\n    y" }), { kind: "typedThrough" });
  assert.deepEqual(t.onChange({ offset: 10, length: 12, text: "if x:\r\n    y = 1\r\nz" }), { kind: "completed" });
  assert.equal(t.inferred, undefined);
  t.accept();
  assert.deepEqual(t.settle(), { kind: "unchanged" });
});

test("a partial accept across a CRLF break reports the accepted length in the suggestion's own text", () => {
  const t = new SuggestionTracker("s1", "a = 1\nb = 2", 10, 10, "\r\n");
  assert.deepEqual(t.onChange({ offset: 10, length: 0, text: "a = 1\r\n" }, "partialAccept"), { kind: "partiallyAccepted", acceptedLength: 6 });
  assert.equal(t.expectedCursor, 17);
  assert.deepEqual(t.onCursor(17), { kind: "unchanged" });
  assert.deepEqual(t.onChange({ offset: 17, length: 0, text: "b" }, "partialAccept"), { kind: "partiallyAccepted", acceptedLength: 7 });
  assert.equal(t.acceptedLength, 7);
  assert.deepEqual(t.onChange({ offset: 10, length: 8, text: "a = 1\r\nb = 2" }, "partialAccept"), { kind: "completed" });
});

// Auto-closed pairs: typing an opener inserts the pair with the cursor between; typing the closer over the
// inserted one replaces it, or only moves the cursor.

test("an auto-closed bracket, the argument typed and the closer stepped over follow the suggestion to completed", () => {
  const t = new SuggestionTracker("s1", "f(x) + 1", 10, 10);
  t.onChange({ offset: 10, length: 0, text: "f" });
  assert.deepEqual(t.onChange({ offset: 11, length: 0, text: "()" }), { kind: "typedThrough" });
  assert.deepEqual(t.onCursor(12), { kind: "unchanged" }); // between the pair
  assert.deepEqual(t.onChange({ offset: 12, length: 0, text: "x" }), { kind: "typedThrough" });
  assert.deepEqual(t.onCursor(13), { kind: "unchanged" });
  assert.deepEqual(t.onCursor(14), { kind: "typedThrough" }); // over the inserted ")"
  assert.deepEqual(t.onChange({ offset: 14, length: 0, text: " + 1" }), { kind: "completed" });
  assert.deepEqual(t.settle(), { kind: "rejected", reason: "ignored" });
  // the same with the closer typed over as a one-character replacement
  const u = new SuggestionTracker("s2", "f(x) + 1", 10, 10);
  u.onChange({ offset: 10, length: 0, text: "f" });
  u.onChange({ offset: 11, length: 0, text: "()" });
  u.onChange({ offset: 12, length: 0, text: "x" });
  assert.deepEqual(u.onChange({ offset: 13, length: 1, text: ")" }), { kind: "typedThrough" });
  assert.deepEqual(u.onCursor(14), { kind: "unchanged" });
  assert.deepEqual(u.onChange({ offset: 14, length: 0, text: " + 1" }), { kind: "completed" });
});

test("an auto-closed quote pair follows the suggestion; nested pairs too", () => {
  const t = new SuggestionTracker("s1", 'x = "a" + y', 10, 10);
  t.onChange({ offset: 10, length: 0, text: "x = " });
  assert.deepEqual(t.onChange({ offset: 14, length: 0, text: '""' }), { kind: "typedThrough" });
  assert.deepEqual(t.onCursor(15), { kind: "unchanged" });
  assert.deepEqual(t.onChange({ offset: 15, length: 0, text: "a" }), { kind: "typedThrough" });
  assert.deepEqual(t.onChange({ offset: 16, length: 1, text: '"' }), { kind: "typedThrough" });
  assert.deepEqual(t.onCursor(17), { kind: "unchanged" });
  assert.deepEqual(t.onChange({ offset: 17, length: 0, text: " + y" }), { kind: "completed" });
  const u = new SuggestionTracker("s2", "print('hi') + 1", 0, 0);
  u.onChange({ offset: 0, length: 0, text: "print" });
  u.onChange({ offset: 5, length: 0, text: "()" });
  assert.deepEqual(u.onChange({ offset: 6, length: 0, text: "''" }), { kind: "typedThrough" });
  u.onChange({ offset: 7, length: 0, text: "hi" });
  assert.deepEqual(u.onCursor(10), { kind: "typedThrough" }); // over "'"
  assert.deepEqual(u.onCursor(11), { kind: "typedThrough" }); // over ")"
  assert.deepEqual(u.onChange({ offset: 11, length: 0, text: " + 1" }), { kind: "completed" });
});

test("the suggestion's whole text in the document with its closer auto-inserted is completed", () => {
  const t = new SuggestionTracker("s1", "f(x)", 10, 10);
  t.onChange({ offset: 10, length: 0, text: "f" });
  t.onChange({ offset: 11, length: 0, text: "()" });
  assert.deepEqual(t.onChange({ offset: 12, length: 0, text: "x" }), { kind: "completed" });
  assert.deepEqual(t.onCursor(14), { kind: "unchanged" }); // resolved: stepping over ")" changes nothing
});

test("an auto-closed pair whose closer comes later in the suggestion waits for it; stepping over it early is typedOver", () => {
  const t = new SuggestionTracker("s1", "f(x, y)", 10, 10);
  t.onChange({ offset: 10, length: 0, text: "f" });
  t.onChange({ offset: 11, length: 0, text: "()" });
  assert.deepEqual(t.onChange({ offset: 12, length: 0, text: "x, y" }), { kind: "completed" });
  const u = new SuggestionTracker("s2", "f(x, y)", 10, 10);
  u.onChange({ offset: 10, length: 0, text: "f" });
  u.onChange({ offset: 11, length: 0, text: "()" });
  u.onChange({ offset: 12, length: 0, text: "x" });
  assert.deepEqual(u.onCursor(14), { kind: "rejected", reason: "typedOver" }); // ")" where the suggestion has ","
  const v = new SuggestionTracker("s3", "f(x, y)", 10, 10);
  v.onChange({ offset: 10, length: 0, text: "f" });
  v.onChange({ offset: 11, length: 0, text: "()" });
  v.onChange({ offset: 12, length: 0, text: "x" });
  assert.deepEqual(v.onChange({ offset: 13, length: 1, text: ")" }), { kind: "rejected", reason: "typedOver" });
});

test("an auto-closed pair whose opener disagrees with the suggestion is typedOver, inside a followed pair too", () => {
  const t = new SuggestionTracker("s1", "f(x)", 10, 10);
  t.onChange({ offset: 10, length: 0, text: "f" });
  assert.deepEqual(t.onChange({ offset: 11, length: 0, text: "[]" }), { kind: "rejected", reason: "typedOver" });
  const u = new SuggestionTracker("s2", "'a'", 10, 10);
  assert.deepEqual(u.onChange({ offset: 10, length: 0, text: '""' }), { kind: "rejected", reason: "typedOver" });
  const v = new SuggestionTracker("s3", "f(x[0])", 10, 10);
  v.onChange({ offset: 10, length: 0, text: "f" });
  assert.deepEqual(v.onChange({ offset: 11, length: 0, text: "()" }), { kind: "typedThrough" });
  v.onChange({ offset: 12, length: 0, text: "x" });
  assert.deepEqual(v.onChange({ offset: 13, length: 0, text: "()" }), { kind: "rejected", reason: "typedOver" });
});

test("Tab after an auto-closed pair replaces the range with or without the closer: completed", () => {
  const t = new SuggestionTracker("s1", "f(x) + 1", 10, 10);
  t.onChange({ offset: 10, length: 0, text: "f" });
  t.onChange({ offset: 11, length: 0, text: "()" });
  assert.deepEqual(t.onChange({ offset: 10, length: 3, text: "f(x) + 1" }), { kind: "completed" }); // over "f()"
  const u = new SuggestionTracker("s2", "f(x) + 1", 10, 10);
  u.onChange({ offset: 10, length: 0, text: "f" });
  u.onChange({ offset: 11, length: 0, text: "()" });
  assert.deepEqual(u.onChange({ offset: 10, length: 2, text: "f(x) + 1" }), { kind: "completed" }); // over "f(", ")" left after
});

test("deleting an auto-closed pair (backspace between it) is typedOver", () => {
  const t = new SuggestionTracker("s1", "f(x)", 10, 10);
  t.onChange({ offset: 10, length: 0, text: "f" });
  t.onChange({ offset: 11, length: 0, text: "()" });
  assert.deepEqual(t.onChange({ offset: 11, length: 2, text: "" }), { kind: "rejected", reason: "typedOver" });
});

test("a closer inserted alone after its opener (an input method's auto-close) waits after the cursor", () => {
  const t = new SuggestionTracker("s1", "x = 'a' + y", 10, 10);
  t.onChange({ offset: 10, length: 0, text: "x = '" });
  assert.deepEqual(t.onChange({ offset: 15, length: 0, text: "'" }), { kind: "unchanged" }); // the cursor stays before it
  assert.deepEqual(t.onCursor(15), { kind: "unchanged" });
  assert.deepEqual(t.onChange({ offset: 15, length: 0, text: "a" }), { kind: "typedThrough" });
  assert.deepEqual(t.onCursor(17), { kind: "typedThrough" });
  // typed by hand instead (the cursor after it): the document disagrees with the suggestion
  const u = new SuggestionTracker("s2", "x = 'a' + y", 10, 10);
  u.onChange({ offset: 10, length: 0, text: "x = '" });
  u.onChange({ offset: 15, length: 0, text: "'" });
  assert.deepEqual(u.onCursor(16), { kind: "rejected", reason: "typedOver" });
});

// Undo and redo: VS Code keeps the suggestion on screen while it still fits, and its next fetch keeps it there
// (InlineCompletionsModel's preserveCurrentCompletion), so Tab accepts it.

test("an undo of characters typed through still follows the suggestion, which Tab then accepts", () => {
  const t = new SuggestionTracker("s1", "print(x)", 10, 10);
  t.onChange({ offset: 10, length: 0, text: "pri" });
  assert.deepEqual(t.onChange({ offset: 10, length: 3, text: "" }, "undo"), { kind: "undone" });
  assert.equal(t.expectedCursor, 10);
  assert.deepEqual(t.onCursor(10), { kind: "unchanged" });
  assert.equal(t.inferred, undefined);
  assert.deepEqual(t.onChange({ offset: 10, length: 0, text: "print(x)" }), { kind: "completed" }); // Tab
  // an auto-closed pair undone with the opener
  const u = new SuggestionTracker("s2", "f(x)", 10, 10);
  u.onChange({ offset: 10, length: 0, text: "f" });
  u.onChange({ offset: 11, length: 0, text: "()" });
  assert.deepEqual(u.onChange({ offset: 11, length: 2, text: "" }, "undo"), { kind: "undone" });
  assert.deepEqual(u.onChange({ offset: 11, length: 0, text: "(x)" }), { kind: "completed" });
});

test("an undo that leaves text the suggestion does not have, or a Backspace, is typedOver", () => {
  const t = new SuggestionTracker("s1", "print(x)", 10, 10);
  t.onChange({ offset: 10, length: 0, text: "pri" });
  assert.deepEqual(t.onChange({ offset: 10, length: 3, text: "pa" }, "undo"), { kind: "rejected", reason: "typedOver" });
  const u = new SuggestionTracker("s2", "print(x)", 10, 10);
  u.onChange({ offset: 10, length: 0, text: "pri" });
  assert.deepEqual(u.onChange({ offset: 12, length: 1, text: "" }), { kind: "rejected", reason: "typedOver" });
});

test("the answer fetched after an undo, a redo or a partial accept does not replace the suggestion on screen, once", () => {
  const t = new SuggestionTracker("s1", "print(x)", 10, 10);
  const answer = new SuggestionTracker("s2", "int(x)", 12, 12);
  t.onChange({ offset: 10, length: 0, text: "pr" }, "redo");
  assert.equal(t.replacedBy(answer, true), false);
  assert.equal(t.replacedBy(answer, true), true); // a later fetch at this version replaces it as usual
  t.onChange({ offset: 10, length: 2, text: "" }, "undo");
  assert.equal(t.replacedBy(answer, false), true); // an explicit request replaces it
  t.onChange({ offset: 10, length: 0, text: "p" }, "partialAccept");
  assert.equal(t.replacedBy(answer, true), false);
  t.onChange({ offset: 11, length: 0, text: "r" }); // typing: its fetch's answer replaces it
  assert.equal(t.replacedBy(answer, true), true);
  t.onChange({ offset: 10, length: 2, text: "" }, "undo");
  assert.equal(t.replacedBy(new SuggestionTracker("s3", "print(x)", 10, 10), true), true); // the same edit takes its place
  t.onChange({ offset: 10, length: 0, text: "pr" }, "redo");
  assert.deepEqual(t.onCursor(3), { kind: "rejected", reason: "cursorMoved" });
  assert.equal(t.replacedBy(answer, true), true); // ended: nothing on screen to keep
});

test("a partial accept's length is PartialAcceptInfo's acceptedLength, never the bare number VS Code also passes", () => {
  // a suggest-widget item accepted into the suggestion: VS Code passes the item's own length (3), then the info (5)
  assert.equal(partialAcceptLength(3), undefined);
  assert.equal(partialAcceptLength({ kind: 2, acceptedLength: 5 }), 5);
  assert.equal(partialAcceptLength({ kind: 0 }), undefined);
  assert.equal(partialAcceptLength(null), undefined);
  // the completion widget's entry accepted (PartialAcceptTriggerKind.Suggest): none of the suggestion, though VS Code
  // counts the entry's text (a fuzzy match: "jn" typed, entry "join", 5)
  assert.equal(partialAcceptLength({ kind: 3, acceptedLength: 5 }), undefined);
});

test("an entry accepted in replace mode over the rest of a word follows the suggestion whose range covers it", () => {
  // "s.jo|text": the widget's entry "join" replaces [2, 8), and so does the server's item "join(parts)"; the
  // acceptance replaced text past the cursor, and the suggestion was reported typed over, then accepted by Tab
  const t = new SuggestionTracker("s1", "join(parts)", 2, 4, "\n", 8);
  assert.deepEqual(t.onChange({ offset: 2, length: 6, text: "join" }), { kind: "typedThrough" });
  assert.deepEqual(t.onChange({ offset: 6, length: 0, text: "(" }), { kind: "typedThrough" });
  // without the range past the cursor, a change there disagrees as before
  const plain = new SuggestionTracker("s2", "join(parts)", 2, 4);
  assert.deepEqual(plain.onChange({ offset: 2, length: 6, text: "join" }), { kind: "rejected", reason: "typedOver" });
  // the covered text is the item's once: after it is replaced, a change past the cursor disagrees again
  const once = new SuggestionTracker("s3", "join(parts)", 2, 4, "\n", 8);
  once.onChange({ offset: 2, length: 6, text: "join" });
  assert.deepEqual(once.onChange({ offset: 6, length: 2, text: "(p" }), { kind: "rejected", reason: "typedOver" });
});

test("over the completion widget's entry, VS Code shows only an item that extends it, the text both repeat taken off", () => {
  const doc = "s.jo = 1";
  const read = (start, end) => doc.slice(start, end);
  const entry = { start: 2, end: 4, text: "join" }; // "jo" typed, the entry "join" selected
  assert.equal(extendsEntry({ start: 2, end: 4, text: "join(parts)" }, entry, read), true); // the entry's range
  assert.equal(extendsEntry({ start: 4, end: 4, text: "in(parts)" }, entry, read), true); // at the cursor, "jo" left out
  assert.equal(extendsEntry({ start: 4, end: 4, text: "(parts)" }, entry, read), false); // after "jo", not "join"
  assert.equal(extendsEntry({ start: 2, end: 4, text: "json" }, entry, read), false);
  assert.equal(extendsEntry({ start: 3, end: 4, text: "oin()" }, entry, read), true); // from inside what both repeat
  // the entry replaces past the cursor (" = 1" up to 8): an item that stops at the cursor does not extend it
  assert.equal(extendsEntry({ start: 2, end: 4, text: "join(parts)" }, { start: 2, end: 8, text: "join" }, read), false);
  assert.equal(extendsEntry({ start: 2, end: 8, text: "join(parts)" }, { start: 2, end: 8, text: "join" }, read), true);
});

test("the text an entry repeats is found across a CRLF document's line break", () => {
  const doc = "if a:\r\n    pa";
  const read = (start, end) => doc.slice(start, end);
  const entry = { start: 5, end: 13, text: "\n    pass" }; // an entry spanning the break ("\n", as VS Code gives it)
  const atCursor = { start: 13, end: 13, text: "ss  # done" };
  assert.equal(extendsEntry(atCursor, entry, read, "\r\n"), true);
  assert.equal(extendsEntry(atCursor, entry, read, "\n"), false); // read as an LF document, nothing is repeated
});
