"""Emacs + eglot in batch mode: a raw textDocument/completion through eglot's connection, then
`completion-at-point`, the path a user takes (eglot's capf inserts the item's textEdit)."""

from __future__ import annotations

import json

import pytest

from tests.editors.support import (
    EDITOR_SAMPLE,
    SCRIPTS,
    TYPED,
    assert_server_clean,
    emacs,
    prepare,
    replay_edits,
    run_editor,
    word_before,
)
from tests.lsp_support import wait_for_rows

pytestmark = pytest.mark.editor


def test_emacs_eglot_completion_from_the_model(tmp_path, record_property):
    editor = emacs()
    record_property("editor", f"emacs {'.'.join(map(str, editor.version))} ({editor.binary})")
    run = prepare(tmp_path)
    result = run_editor(run, [editor.binary, "-Q", "--batch", "-l", str(SCRIPTS / "eglot.el")],
                        {"typed": TYPED}, record_property)
    why = run.describe()
    typed_line, position = result["typed_line"], result["position"]
    assert result["before"] == EDITOR_SAMPLE, why
    assert typed_line == EDITOR_SAMPLE.splitlines()[-1] + TYPED, why
    assert position == {"line": len(EDITOR_SAMPLE.splitlines()) - 1, "character": len(typed_line)}, why
    assert result["uri"] == run.file.as_uri(), why

    # the raw request: one item with the model's suggestion and the accept command
    raw = result["raw"]
    items = raw["items"] if isinstance(raw, dict) else raw
    assert items, f"the server answered with no completion item\n{why}"
    item = items[0]
    word = word_before(typed_line)
    new_text = item["textEdit"]["newText"]
    assert item["label"].strip(), why
    assert word == TYPED and new_text.startswith(word) and new_text[len(word):].strip(), why
    assert item["textEdit"]["range"] == {"start": {"line": position["line"], "character": position["character"] - len(word)},
                                         "end": position}, why
    assert item["command"]["command"] == "tact.acceptSuggestion", why
    raw_id = item["command"]["arguments"][0]

    # telemetry: both requests (raw, then completion-at-point's own), in order, at the cursor
    requested = wait_for_rows(run.db, "select suggestion_id, payload from suggestion_events "
                                      "where type = 'suggestion_requested' order by ts, seq", want=2)
    assert len(requested) == 2 and requested[0][0] == raw_id, f"{requested}\n{why}"
    for _, payload in requested:
        p = json.loads(payload)
        assert (p["kind"], p["uri"], p["line"], p["character"]) == \
            ("completion", result["uri"], position["line"], position["character"]), p
    capf_id = requested[1][0]
    generated = wait_for_rows(run.db, "select text from suggestions where id = ? and generated_at is not null",
                              (capf_id,))
    assert generated and generated[0][0].strip(), f"completion-at-point's request generated nothing\n{why}"

    # completion-at-point inserted that suggestion at the cursor, and the edit reached the server
    assert result["capf_returned"] is True, why
    assert result["capf_line"] == typed_line + generated[0][0], why
    assert result["after"] == EDITOR_SAMPLE[:-1] + TYPED + generated[0][0] + "\n", why
    assert_server_clean(run, result)  # eglot kills the server after `exit': no exit code to check
    opened = wait_for_rows(run.db, "select text, language_id from documents where uri = ? and kind = 'open'",
                           (result["uri"],))
    assert opened == [(EDITOR_SAMPLE, "python")], f"{opened}\n{why}"
    edits = wait_for_rows(run.db, "select start_line, start_character, end_line, end_character, inserted_text "
                                  "from edits where uri = ? order by ts, seq", (result["uri"],))
    assert edits, f"no edits rows\n{why}"
    assert replay_edits(EDITOR_SAMPLE, edits) == result["after"], edits
    sessions = wait_for_rows(run.db, "select end_reason from sessions where end_reason is not null")
    assert sessions == [("shutdown",)], sessions
    # eglot never runs the item's command: the edit that wrote the suggestion is its acceptance (it was logged
    # superseded, a rejection the gate learnt, when the next request came)
    assert len(new_text) >= 2, new_text  # an item writing one character cannot be told from typing it
    outcome = wait_for_rows(run.db, "select outcome from suggestions where id = ? and outcome is not null", (capf_id,))
    assert outcome == [("accepted",)], f"{outcome}\n{why}"


def test_emacs_eglot_undo_after_an_accept_takes_it_back(tmp_path, record_property):
    """The item completion-at-point wrote (its acceptance: eglot runs no command), then undone: taken back, kept in
    the suggestion's history and counted no acceptance."""
    editor = emacs()
    run = prepare(tmp_path)
    result = run_editor(run, [editor.binary, "-Q", "--batch", "-l", str(SCRIPTS / "eglot.el")],
                        {"typed": TYPED, "undo": True}, record_property)
    why = run.describe()
    assert result["capf_returned"] is True, why
    assert result["after"] == EDITOR_SAMPLE[:-1] + TYPED + "\n", why  # the item's insertion undone, the typing kept
    assert_server_clean(run, result)
    requested = wait_for_rows(run.db, "select suggestion_id from suggestion_events "
                                      "where type = 'suggestion_requested' order by ts, seq", want=2)
    rows = wait_for_rows(run.db, "select outcome, undone_at is not null from suggestions where id = ? "
                                 "and outcome is not null", (requested[1][0],))
    assert rows == [("accepted", 1)], f"{rows}\n{why}"
