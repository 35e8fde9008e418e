// Unit tests of the suggestion lifecycle inference (src/lifecycle.ts, compiled to out/unit by `npm test`).
import assert from "node:assert/strict";
import { test } from "node:test";
import { END_ACCEPTED, END_IGNORED, END_REJECTED, reasonForEndOfLife, SuggestionTracker } from "../../out/unit/lifecycle.mjs";

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
  assert.deepEqual(t.onChange({ offset: 4, length: 0, text: "total" }, true), { kind: "partiallyAccepted", acceptedLength: 5 });
  assert.deepEqual(t.onChange({ offset: 9, length: 0, text: " = " }, true), { kind: "partiallyAccepted", acceptedLength: 8 });
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
  assert.deepEqual(t.onChange({ offset: 4, length: 0, text: "total" }, true), { kind: "partiallyAccepted", acceptedLength: 5 });
  assert.deepEqual(t.onChange({ offset: 4, length: 5, text: "total = sum(values)" }, true), { kind: "completed" });
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
