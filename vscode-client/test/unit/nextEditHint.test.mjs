// Unit tests of the next edit's hint, preview and hover (src/nextEditHint.ts, compiled to out/unit by `npm test`):
// among them the text the server sends for an inserted line, and new text the hover's markdown must not garble.
import assert from "node:assert/strict";
import { test } from "node:test";
import { hintText, hoverMarkdown, offScreenHintText, outOfViewHintText, previewOf } from "../../out/unit/nextEditHint.mjs";

test("the hint says replace or insert, the new text and the keys", () => {
  assert.equal(hintText("tokens", true), "→ tokens   Tab to apply · Esc to dismiss");
  assert.equal(hintText("x = 1", false), "+ x = 1   Tab to apply · Esc to dismiss");
  assert.equal(previewOf(""), "(delete)");
});

test("an edit in a cell out of view names the cell (1-based) and where Tab goes", () => {
  assert.equal(outOfViewHintText("items", true, 40), "→ items in cell 40   Tab to apply there · Esc to dismiss");
  assert.equal(outOfViewHintText("", true, undefined), "→ (delete) in another cell   Tab to apply there · Esc to dismiss");
});

test("an edit off screen in the same document names its line (1-based) and where Tab goes", () => {
  assert.equal(offScreenHintText("total", true, 120), "→ total at line 120   Tab to apply there · Esc to dismiss");
  assert.equal(offScreenHintText("x = 1\n", false, 7), "+ x = 1 at line 7   Tab to apply there · Esc to dismiss");
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

test("an inserted line with its line break shows as one line, whichever end the break is at", () => {
  assert.equal(previewOf("x = 1\n"), "x = 1"); // not "x = 1 … (+1 lines)": no second line follows
  assert.equal(previewOf("x = 1\r\n"), "x = 1");
  assert.equal(previewOf("c = 3\n    "), "c = 3"); // the indentation is the next line's, already there
  assert.equal(previewOf("\nx = 1"), "x = 1"); // at the end of the last line: not an empty preview
  assert.equal(hintText("\nbar(x)", false), "+ bar(x)   Tab to apply · Esc to dismiss");
});

test("lines inside the new text still count, blank ones too, and a blank line is named", () => {
  assert.equal(previewOf("a = 1\n\nb = 2\n"), "a = 1 … (+2 lines)");
  assert.equal(previewOf("\n"), "(blank line)");
  assert.equal(previewOf("\r\n\r\n"), "(2 blank lines)");
});

test("the hover names a deletion and keeps the new text's lines and backticks in a code block", () => {
  assert.equal(hoverMarkdown(""), "Tact: delete"); // not "replace with ``"
  assert.equal(hoverMarkdown("a = 1\r\nb = 2"), "Tact: replace with\n\n```python\na = 1\nb = 2\n```");
  const docstring = '"""Use ```x``` here."""'; // a fence of three would end at the text's own
  assert.equal(hoverMarkdown(docstring), `Tact: replace with\n\n\`\`\`\`python\n${docstring}\n\`\`\`\``);
});
