// Unit tests of the keybindings' `when` clauses (package.json): which key goes to which command in which context.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8"));

/** Evaluates the subset of VS Code's when-clause syntax the extension uses: terms joined by &&, each `key`,
 * `!key` or `key == value`; a key not in the context is unset (false). */
function holds(when, context) {
  return when.split("&&").every((raw) => {
    const term = raw.trim();
    const eq = term.match(/^([\w.]+)\s*==\s*(\S+)$/);
    if (eq) {
      return String(context[eq[1]]) === eq[2];
    }
    assert.match(term, /^!?[\w.]+$/, `a when term the test does not read: ${term}`);
    return term.startsWith("!") ? !context[term.slice(1)] : Boolean(context[term]);
  });
}

/** The extension command the key runs in the context, if any. */
function commandFor(key, context) {
  const bindings = pkg.contributes.keybindings.filter((b) => b.key === key && holds(b.when ?? "", context));
  assert.ok(bindings.length <= 1, `${key} goes to several commands: ${bindings.map((b) => b.command)}`);
  return bindings[0]?.command;
}

/** Focus in a Python file's editor, with a next edit shown (the context key is global). */
const NEXT_EDIT_SHOWN = { editorTextFocus: true, editorLangId: "python", "tact.nextEditVisible": true };

test("Tab applies and Escape dismisses a next edit shown in the Python editor that has focus", () => {
  assert.equal(commandFor("tab", NEXT_EDIT_SHOWN), "tact.applyNextEdit");
  assert.equal(commandFor("escape", NEXT_EDIT_SHOWN), "tact.dismissNextEdit");
  assert.equal(commandFor("tab", { ...NEXT_EDIT_SHOWN, inlineSuggestionVisible: true }), undefined); // the ghost text's
});

test("Tab moves focus in tab focus mode (Ctrl+M), as for VS Code's own inline edits", () => {
  assert.equal(commandFor("tab", { ...NEXT_EDIT_SHOWN, editorTabMovesFocus: true }), undefined);
});

test("another editor widget with focus keeps Tab and Escape (the edit is in the Python editor)", () => {
  for (const editorLangId of ["scminput", "plaintext", "markdown"]) {
    // the commit message box, a comment or chat input: editorTextFocus, but not the edit's editor
    assert.equal(commandFor("tab", { ...NEXT_EDIT_SHOWN, editorLangId }), undefined, editorLangId);
    assert.equal(commandFor("escape", { ...NEXT_EDIT_SHOWN, editorLangId }), undefined, editorLangId);
  }
});

test("Ctrl+Right moves by word with a screen reader, as VS Code's own accept-next-word binding leaves it", () => {
  const ghost = { editorTextFocus: true, inlineSuggestionVisible: true, "tact.inferLifecycle": true };
  assert.equal(commandFor("ctrl+right", ghost), "tact.acceptNextWordOfSuggestion");
  assert.equal(commandFor("ctrl+right", { ...ghost, accessibilityModeEnabled: true }), undefined);
});

test("Escape closes the completion widget first when it is open over the ghost text, as VS Code's own binding does", () => {
  const ghost = { editorTextFocus: true, inlineSuggestionVisible: true, "tact.inferLifecycle": true };
  assert.equal(commandFor("escape", ghost), "tact.dismissSuggestion");
  assert.equal(commandFor("escape", { ...ghost, suggestWidgetVisible: true }), undefined); // VS Code hides the widget
});

test("with a screen reader, Tab indents: the next edit's hint is a decoration a screen reader never reads", () => {
  // as Ctrl+Right above: the key is left to VS Code under accessibilityModeEnabled (the command stays in the palette)
  assert.equal(commandFor("tab", { ...NEXT_EDIT_SHOWN, accessibilityModeEnabled: true }), undefined);
});

test("Escape with a selection, or with the problem (F8) widget open, is VS Code's, not a dismissal of the next edit", () => {
  assert.equal(commandFor("escape", { ...NEXT_EDIT_SHOWN, editorHasSelection: true }), undefined); // cancelSelection
  assert.equal(commandFor("escape", { ...NEXT_EDIT_SHOWN, markersNavigationVisible: true }), undefined); // closeMarkersNavigation
});
