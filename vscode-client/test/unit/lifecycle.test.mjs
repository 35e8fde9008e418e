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
