// Unit tests of text in markdown (src/markdown.ts, compiled to out/unit by `npm test`).
import assert from "node:assert/strict";
import { test } from "node:test";
import { codeBlock, markdownCell, markdownText } from "../../out/unit/markdown.mjs";

test("code spans are kept as written, whatever they hold; the text around them is escaped", () => {
  assert.equal(markdownText("run `tact train lm` in __pycache__/"), "run `tact train lm` in \\_\\_pycache\\_\\_/");
  assert.equal(markdownText("``a ` b`` and *c*"), "``a ` b`` and \\*c\\*"); // a longer run holds a backtick
  assert.equal(markdownText("`a`` b` c"), "`a`` b` c"); // a run of another length does not close a span
});

test("a backtick run with no closing run of its length is text", () => {
  assert.equal(markdownText("it's `open"), "it's \\`open");
  assert.equal(markdownText("``a` `b"), "\\`\\`a` `b"); // "` `" is a span; "``" is text
  assert.equal(markdownText("no `closing`` here"), "no \\`closing\\`\\` here");
});

test("line breaks are spaces; block markers, HTML, entities and theme icons are text", () => {
  assert.equal(markdownText("a\n\n    b\r\n# c"), "a      b \\# c");
  assert.equal(markdownText("- 1. <b>&amp; $(error)"), "\\- 1\\. \\<b\\>\\&amp; \\$\\(error\\)");
  assert.equal(markdownText("C:\\models\\lm"), "C:\\\\models\\\\lm");
});

test("a cell escapes its pipes, in a code span too", () => {
  assert.equal(markdownCell("a | b `c|d`"), "a \\| b `c\\|d`");
});

test("a code block's fence is longer than any backtick run in its text", () => {
  assert.equal(codeBlock("x = 1", "python"), "```python\nx = 1\n```");
  assert.equal(codeBlock("s = '````'"), "`````\ns = '````'\n`````");
});
