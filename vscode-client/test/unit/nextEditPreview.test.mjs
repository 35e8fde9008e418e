// Unit tests of a next edit's preview and hover (src/nextEditHint.ts, compiled to out/unit by `npm test`): the text
// the server sends for an inserted line, and new text the hover's markdown must not garble.
import assert from "node:assert/strict";
import { test } from "node:test";
import * as hint from "../../out/unit/nextEditHint.mjs";

test("an inserted line with its line break shows as one line, whichever end the break is at", () => {
  assert.equal(hint.previewOf("x = 1\n"), "x = 1"); // not "x = 1 … (+1 lines)": no second line follows
  assert.equal(hint.previewOf("x = 1\r\n"), "x = 1");
  assert.equal(hint.previewOf("c = 3\n    "), "c = 3"); // the indentation is the next line's, already there
  assert.equal(hint.previewOf("\nx = 1"), "x = 1"); // at the end of the last line: not an empty preview
  assert.equal(hint.hintText("\nbar(x)", false), "+ bar(x)   Tab to apply · Esc to dismiss");
});

test("lines inside the new text still count, blank ones too, and a blank line is named", () => {
  assert.equal(hint.previewOf("a = 1\n\nb = 2\n"), "a = 1 … (+2 lines)");
  assert.equal(hint.previewOf("\n"), "(blank line)");
  assert.equal(hint.previewOf("\r\n\r\n"), "(2 blank lines)");
  assert.equal(hint.previewOf(""), "(delete)");
});

test("the hover names a deletion and keeps the new text's lines and backticks in a code block", () => {
  assert.equal(hint.hoverMarkdown(""), "Tact: delete"); // not "replace with ``"
  assert.equal(hint.hoverMarkdown("a = 1\r\nb = 2"), "Tact: replace with\n\n```python\na = 1\nb = 2\n```");
  const docstring = '"""Use ```x``` here."""'; // a fence of three would end at the text's own
  assert.equal(hint.hoverMarkdown(docstring), `Tact: replace with\n\n\`\`\`\`python\n${docstring}\n\`\`\`\``);
});
