// Unit tests of the next edit's hint (src/nextEditHint.ts, compiled to out/unit by `npm test`).
import assert from "node:assert/strict";
import { test } from "node:test";
import { hintText, previewOf } from "../../out/unit/nextEditHint.mjs";

test("the hint says replace or insert, the new text and the keys", () => {
  assert.equal(hintText("tokens", true), "→ tokens   Tab to apply · Esc to dismiss");
  assert.equal(hintText("x = 1", false), "+ x = 1   Tab to apply · Esc to dismiss");
  assert.equal(previewOf(""), "(delete)");
});

test("a long first line is shortened without splitting a character made of two UTF-16 units", () => {
  const line = "x".repeat(56) + "🍰" + "y".repeat(10); // the emoji's halves are units 57 and 58
  const preview = previewOf(line);
  assert.equal(preview, "x".repeat(56) + "…");
  assert.ok(preview.isWellFormed(), "a lone surrogate would show as a replacement character");
  assert.equal(previewOf("z".repeat(70)), "z".repeat(57) + "…");
});

test("the lines after the first are counted, whatever the document's line breaks", () => {
  assert.equal(previewOf("a = 1\nb = 2"), "a = 1 … (+1 lines)");
  assert.equal(previewOf("a = 1\r\nb = 2\r\nc = 3"), "a = 1 … (+2 lines)"); // CRLF: no "\r" in the hint
});
