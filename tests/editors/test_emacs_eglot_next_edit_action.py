"""Emacs + eglot in batch mode: rename a parameter, then at its next use run `eglot-code-actions' for Tact's
next-edit kind, as a key bound to it would (no Tact code in the editor): eglot applies the edit and sends the
command, and the server logs the edit accepted."""

from __future__ import annotations

import pytest

from lsp_server.protocol import NEXT_EDIT_ACTION_KIND
from tests.editors.support import INIT_OPTIONS, SCRIPTS, assert_server_clean, emacs, prepare, replay_edits, run_editor
from tests.lsp_support import wait_for_rows

pytestmark = pytest.mark.editor

# The heuristic predictor (repeat the last replacement at its next occurrence): the test is about the editor.
OPTIONS = {"tact": {**INIT_OPTIONS["tact"], "nextEditPredictor": "heuristic"}}
TEXT = 'def area(width, height):\n    label = "café 🍰"; check(label, width)\n    return width * height\n'


def test_emacs_eglot_applies_the_next_edit_code_action(tmp_path, record_property):
    editor = emacs()
    record_property("editor", f"emacs {'.'.join(map(str, editor.version))} ({editor.binary})")
    run = prepare(tmp_path, TEXT)
    config = {"init_options": OPTIONS, "kind": NEXT_EDIT_ACTION_KIND,
              "rename": {"line": 0, "start_col": 9, "end_col": 14, "text": "w"},  # def area(w, height):
              "cursor": {"line": 1, "col": 4}}
    result = run_editor(run, [editor.binary, "-Q", "--batch", "-l", str(SCRIPTS / "eglot_next_edit_action.el")],
                        config, record_property)
    why = run.describe()
    assert result["before"] == TEXT and result["renamed"] == TEXT.replace("width", "w", 1), why

    # eglot read one action, Tact's, and ran its command after applying its edit
    [action] = result["offered"]
    assert action["title"] == "Tact: next edit — replace `width` with `w` (line 2)", why
    assert action["kind"] == NEXT_EDIT_ACTION_KIND, why
    assert "documentChanges" in action["edit"], why  # eglot applies versioned edits
    suggestion_id = action["command"]["arguments"][0]
    assert result["executed"] == [{"command": "tact.acceptNextEdit", "arguments": [suggestion_id]}], why
    assert result["after"] == TEXT.replace("width", "w", 2), why
    assert_server_clean(run, result)  # eglot kills the server after `exit': no exit code to check

    # eglot gives no trigger kind: asked for by the user, so logged shown, then accepted
    rows = wait_for_rows(run.db, "select kind, outcome, shown_at is not null, text from suggestions where id = ? "
                                 "and outcome = 'accepted'", (suggestion_id,))
    assert rows == [("next_edit", "accepted", 1, "w")], f"{rows}\n{why}"
    edits = wait_for_rows(run.db, "select start_line, start_character, end_line, end_character, inserted_text "
                                  "from edits where uri = ? order by ts, seq", (result["uri"],), want=2)
    assert replay_edits(TEXT, edits) == result["after"], edits
