// Unit tests of the documents the extension serves (src/selector.ts), matched as VS Code matches a selector of
// language-and-scheme filters (languages.match: every field a filter sets must equal the document's).
import assert from "node:assert/strict";
import { test } from "node:test";
import { importStubbed } from "./stubbedBundle.mjs";

const { SELECTOR } = await importStubbed("selector", {});

function served(languageId, uri) {
  const scheme = uri.slice(0, uri.indexOf(":"));
  return SELECTOR.some((filter) => (filter.language ?? languageId) === languageId && (filter.scheme ?? scheme) === scheme);
}

test("Python files, unsaved Python buffers and a notebook's Python code cells are served", () => {
  assert.equal(served("python", "file:///project/sample.py"), true);
  assert.equal(served("python", "untitled:Untitled-1"), true);
  assert.equal(served("python", "vscode-notebook-cell:/project/analysis.ipynb#W1sZmlsZQ%3D%3D"), true);
});

test("a notebook's Markdown cells, other languages and other schemes (a diff's git side) are not", () => {
  assert.equal(served("markdown", "vscode-notebook-cell:/project/analysis.ipynb#W2sZmlsZQ%3D%3D"), false);
  assert.equal(served("javascript", "file:///project/app.js"), false);
  assert.equal(served("python", "git:/project/sample.py"), false);
});
