"""An accepted suggestion the user takes back soon after (Ctrl+Z, or its text deleted whole) is no acceptance: before,
it counted accepted with all its characters saved, and the gate's running rate learnt a yes from it."""

from __future__ import annotations

import json
import sqlite3
import sys
from contextlib import contextmanager

from lsp_server.cli import main
from lsp_server.services.ledger import UNDONE
from lsp_server.services.documents import AppliedEdit
from lsp_server.services.positions import Position
from lsp_server.services.undo_watch import ACCEPTED_AGAIN, UndoWatch
from telemetry.lsp_client import LspClient, change_at
from telemetry.reader import decided_outcomes, open_readonly
from telemetry.schema import SCHEMA_VERSION
from telemetry.simulate import ACCELERATED_DEFAULTS, DID_PARTIALLY_ACCEPT, DID_SHOW, require_ready, server_command, \
    wait_ready
from tests.lsp_support import wait_for_rows
from tests.test_accept_by_edit import URI as EGLOT_URI
from tests.test_accept_by_edit import _item, _start

URI = "file:///w/a.py"
BEFORE = "import os\n\n\ndef main():\n    pr\n"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _edit(text: str, start: int, end: int, new: str) -> AppliedEdit:
    """[start, end) of ``text`` replaced by ``new``, as the document store applies it (positions unread here)."""
    return AppliedEdit(start, end, Position(0, 0), Position(0, 0), text[start:end], new)


def _change(watch: UndoWatch, text: str, start: int, end: int, new: str) -> tuple[str, list[tuple[str, str]]]:
    """``text`` with [start, end) replaced by ``new``, as one didChange: (the new text, what the watch tells of
    which suggestions)."""
    told = watch.changed(URI, [_edit(text, start, end, new)])
    return text[:start] + new + text[end:], [(sid, what) for sid, what, _ in told]


def _accepted(watch: UndoWatch, start: int, end: int, new: str, begin: int, accepted: str,
              text: str = BEFORE) -> str:
    """The editor writes ``new`` over [start, end) of ``text`` and the accept of ``accepted`` at ``begin`` is
    recorded; the text after it."""
    after, told = _change(watch, text, start, end, new)
    assert told == []
    assert watch.accepted(URI, "s1", after, begin, accepted)
    return after


AT = BEFORE.index("pr\n") + 2  # the suggestion starts after "pr", typed before it came
UNDONE_ = [("s1", UNDONE)]


def test_an_undo_of_the_accept_takes_it_back_and_a_redo_accepts_it_again():
    watch = UndoWatch()
    after = _accepted(watch, AT, AT, "int(os.getcwd())", AT, "int(os.getcwd())")
    text, told = _change(watch, after, AT, AT + len("int(os.getcwd())"), "")
    assert told == UNDONE_ and text == BEFORE
    assert _change(watch, text, AT, AT, "int(os.getcwd())")[1] == [("s1", ACCEPTED_AGAIN)]  # Ctrl+Shift+Z


def test_an_accept_over_what_was_typed_of_it_is_taken_back_by_its_own_undo():
    """VS Code writes the whole item over the typed part ("pr" -> "print(...)"); its undo writes "pr" back."""
    watch = UndoWatch()
    begin = AT - 2
    after = _accepted(watch, begin, AT, "print(os.getcwd())", begin, "print(os.getcwd())")
    assert _change(watch, after, begin, begin + len("print(os.getcwd())"), "pr") == (BEFORE, UNDONE_)


def test_the_accepted_text_deleted_or_cut_is_taken_back_and_pasted_is_accepted_again():
    watch = UndoWatch()
    after = _accepted(watch, AT, AT, "int(x)", AT, "int(x)")
    typed, told = _change(watch, after, AT + 6, AT + 6, "  # y")  # typed on after it
    assert told == []
    text, told = _change(watch, typed, AT - 6, AT + 6, "")  # the line's text cut: `    print(x)` gone
    assert told == UNDONE_
    assert _change(watch, text, 0, 0, "    print(x)\n")[1] == [("s1", ACCEPTED_AGAIN)]  # pasted above


def test_backspacing_the_end_of_an_accept_or_editing_around_it_is_no_undo_but_deleting_all_of_it_is():
    watch = UndoWatch()
    text = _accepted(watch, AT, AT, "int(os.getcwd())", AT, "int(os.getcwd())")
    end = AT + len("int(os.getcwd())")
    for k in range(1, 4):  # three characters of its end, one at a time
        text, told = _change(watch, text, end - k, end - k + 1, "")
        assert told == []
    text, told = _change(watch, text, 0, 0, "# top\n")  # an edit above it
    assert told == []
    begin, left = AT + len("# top\n"), len("int(os.getcwd")
    for k in range(left - 1):  # the rest backspaced, one at a time
        text, told = _change(watch, text, begin + left - 1 - k, begin + left - k, "")
        assert told == []
    assert _change(watch, text, begin, begin + 1, "")[1] == UNDONE_  # its last character


def test_neovims_undo_of_the_whole_insert_takes_it_back():
    """In Neovim typing `pr`, accepting `int(x)` with <C-y>, typing on and leaving insert mode is one undo block:
    `u` removes all of it."""
    watch = UndoWatch()
    after = _accepted(watch, AT, AT, "int(x)", AT, "int(x)")
    on, told = _change(watch, after, AT + 6, AT + 6, "  # here")
    assert told == []
    assert _change(watch, on, AT - 2, AT + len("int(x)  # here"), "")[1] == UNDONE_


def test_its_line_deleted_takes_it_back_and_a_block_that_leaves_some_of_it_or_the_same_text_elsewhere_does_not():
    """A block deleted below that ends with the same text leaves a document equal to one without the accepted text:
    read from the texts, it was taken back."""
    line = BEFORE.index("    pr\n")
    text = BEFORE + "\n\ndef other():\n    print(x)\n"
    for start, end, told in ((line, AT + len("int(x)\n"), UNDONE_),  # `dd`: the line and its break
                             (line, AT + 3, []),  # up to the middle of it
                             (AT + 1, AT + len("int(x)\n"), []),  # from the middle of it
                             (len(BEFORE) + 6, len(text) + 6, [])):  # the function below, which ends the same way
        watch = UndoWatch()
        after = _accepted(watch, AT, AT, "int(x)", AT, "int(x)", text)
        assert _change(watch, after, start, end, "")[1] == told, (start, end)


def test_a_line_rewritten_with_the_accepted_text_in_it_keeps_it():
    watch = UndoWatch()
    after = _accepted(watch, AT, AT, "int(x)", AT, "int(x)")
    line = BEFORE.index("    pr\n")
    text, told = _change(watch, after, line, AT + 6, "        print(x)")  # re-indented in one change
    assert told == []
    assert _change(watch, text, AT + 4 - 2, AT + 4 + 6, "")[1] == UNDONE_  # where it went, then deleted


def test_an_accept_is_watched_for_the_window_only():
    clock = Clock()
    watch = UndoWatch(window_s=60, clock=clock)
    after = _accepted(watch, AT, AT, "int(x)", AT, "int(x)")
    clock.now = 61
    assert _change(watch, after, AT, AT + 6, "")[1] == []
    assert watch.watched(URI) == []


def test_an_accept_a_word_at_a_time_is_taken_back_only_when_all_of_it_is():
    watch = UndoWatch()
    first = _accepted(watch, AT, AT, "int(", AT, "int(")
    second, told = _change(watch, first, AT + 4, AT + 4, "os")
    assert told == []
    assert watch.accepted(URI, "s1", second, AT, "int(os", units=6)
    text, told = _change(watch, second, AT + 4, AT + 6, "")  # the last word undone: the first kept
    assert told == [] and text == first
    assert watch.changed(URI, [_edit(text, AT, AT + 4, "")]) == [("s1", UNDONE, 6)]  # its accepted length told


@contextmanager
def _vscode(tiny_lm_dir, db, text: str):
    """The real server on the tiny model, started by a client named as VS Code, with ``text`` open at ``URI``."""
    with LspClient(server_command(sys.executable, str(tiny_lm_dir), str(db))) as client:
        client.initialize({**ACCELERATED_DEFAULTS, "acceptanceGate": False, "stopThreshold": 1.01, "maxNewTokens": 8},
                          client_name="vscode")
        require_ready(wait_ready(client))
        client.did_open(URI, text, 1, "python")
        yield client


def _vscode_session(tiny_lm_dir, db, *, undo: bool):
    """VS Code's flow: a suggestion shown and accepted (the editor writes it, then runs its command), then undone
    (the editor writes back what it replaced) or kept; returns (the gate's counts, the suggestion's id, its text)."""
    with _vscode(tiny_lm_dir, db, BEFORE) as client:
        items = client.inline_completion(URI, 4, 6)
        assert items and items[0]["insertText"], items
        item = items[0]
        sid = item["command"]["arguments"][0]
        client.notify(DID_SHOW, {"id": sid})
        rng = item["range"]
        line = BEFORE.splitlines()[4]
        replaced = line[rng["start"]["character"]:rng["end"]["character"]]
        client.did_change(URI, 2, [{"range": rng, "text": item["insertText"]}])
        client.request("workspace/executeCommand", {"command": "tact.acceptSuggestion", "arguments": [sid]})
        if undo:
            end = {"line": 4, "character": rng["start"]["character"] + len(item["insertText"])}
            client.did_change(URI, 3, [{"range": {"start": rng["start"], "end": end}, "text": replaced}])
        gate = client.request("tact/status")["acceptanceGate"]
        client.shutdown()
    return (gate["userAccepted"], gate["userRejected"]), sid, item["insertText"]


def test_an_accept_undone_in_the_editor_counts_no_acceptance_anywhere(tiny_lm_dir, tmp_path, capsys):
    db = tmp_path / "vs.sqlite3"
    counts, sid, _ = _vscode_session(tiny_lm_dir, db, undo=True)
    assert counts == (0, 1)  # the gate's running rate: a rejection, not an acceptance
    conn = open_readonly(db)
    try:
        outcome, undone_at = conn.execute("SELECT outcome, undone_at FROM suggestions WHERE id = ?", [sid]).fetchone()
        events = [t for (t,) in conn.execute("SELECT type FROM suggestion_events WHERE suggestion_id = ? ORDER BY seq",
                                             [sid])]
        decided = decided_outcomes(conn)
    finally:
        conn.close()
    assert outcome == "accepted" and undone_at is not None  # its history kept
    assert events[-2:] == ["suggestion_accepted", "suggestion_undone"]
    assert (decided["accepted"], decided["rejected"], decided["last_outcome"]) == (0, 1, "rejected")  # a later prior
    assert main(["report", str(db), "--output", str(tmp_path / "r"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)["summaries"][0]
    assert (summary["shown"], summary["accepted"], summary["undone"], summary["chars_saved"]) == (1, 0, 1, 0)


def test_an_accept_kept_still_counts(tiny_lm_dir, tmp_path, capsys):
    db = tmp_path / "vs.sqlite3"
    counts, sid, text = _vscode_session(tiny_lm_dir, db, undo=False)
    assert counts == (1, 0)
    assert main(["report", str(db), "--output", str(tmp_path / "r"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)["summaries"][0]
    assert (summary["accepted"], summary["undone"]) == (1, 0) and summary["chars_saved"] > 0


def test_a_partial_accept_undone_is_taken_back(tiny_lm_dir, tmp_path):
    db = tmp_path / "vs.sqlite3"
    with _vscode(tiny_lm_dir, db, "import os\n\n\ndef main():\n    ") as client:
        items = client.inline_completion(URI, 4, 4)
        assert items and len(items[0]["insertText"]) >= 2
        sid, text = items[0]["command"]["arguments"][0], items[0]["insertText"]
        client.notify(DID_SHOW, {"id": sid})
        client.did_change(URI, 2, [change_at(4, 4, text[:2])])  # the first word, as VS Code writes it
        client.notify(DID_PARTIALLY_ACCEPT, {"id": sid, "acceptedLength": 2})
        client.did_change(URI, 3, [{"range": {"start": {"line": 4, "character": 4},
                                              "end": {"line": 4, "character": 6}}, "text": ""}])  # Ctrl+Z
        gate = client.request("tact/status")["acceptanceGate"]
        client.shutdown()
    assert (gate["userAccepted"], gate["userRejected"]) == (0, 1)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT outcome, undone_at IS NOT NULL FROM suggestions WHERE id = ?",
                            [sid]).fetchone() == ("partially_accepted", 1)


def test_an_item_accepted_by_its_edit_and_undone_with_the_default_model(tmp_path):
    """Emacs's eglot runs no command: the edit that writes the item accepts it, and the edit that removes it (undo)
    takes it back. The shipped default model answers."""
    client, db = _start(tmp_path)
    try:
        item, suggestion = _item(client)
        edit = item["textEdit"]
        client.did_change(EGLOT_URI, 2, [{"range": edit["range"], "text": edit["newText"]}])
        start = edit["range"]["start"]
        end = {"line": start["line"], "character": start["character"] + len(edit["newText"])}
        old_word = "f."[: edit["range"]["end"]["character"] - start["character"]]
        client.did_change(EGLOT_URI, 3, [{"range": {"start": start, "end": end}, "text": old_word}])
        status = client.request("tact/status")
        assert (status["acceptanceGate"]["userAccepted"], status["acceptanceGate"]["userRejected"]) == (0, 1)
    finally:
        client.shutdown()
    wait_for_rows(db, "SELECT 1 FROM sessions WHERE ended_at IS NOT NULL")
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT outcome, undone_at IS NOT NULL FROM suggestions WHERE kind = 'completion'"
                            " ORDER BY requested_at LIMIT 1").fetchone() == ("accepted", 1), suggestion


def test_a_version_2_database_gains_the_column_and_keeps_its_rows(tmp_path):
    from sqlite_utils import Database

    from telemetry.schema import MIGRATIONS, migrate

    path = tmp_path / "v2.sqlite3"
    db = Database(sqlite3.connect(path))
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute("INSERT INTO meta (key, value) VALUES ('schema_version', '0')")
    for step in MIGRATIONS[:2]:
        step(db)
    db.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    db.execute("INSERT INTO suggestions (id, session_id, outcome) VALUES ('a', 's', 'accepted')")
    db.conn.commit()
    assert migrate(db) == SCHEMA_VERSION >= 3
    assert db.execute("SELECT id, outcome, undone_at FROM suggestions").fetchall() == [("a", "accepted", None)]
    db.conn.close()


def test_a_same_settings_replay_takes_the_accept_back_as_recorded(tiny_lm_dir, tmp_path, capsys):
    """The accept's insertion and its undo, typed within the grouping window, are one edit that changes nothing, not
    recorded: the replay accepted the suggestion and counted its characters saved. It now says the recording took it
    back (tact/replayUndone)."""
    db = tmp_path / "vs.sqlite3"
    _vscode_session(tiny_lm_dir, db, undo=True)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT 1 FROM edits").fetchall() == []  # no edit shows the accept or its undo
    out = tmp_path / "replay.sqlite3"
    capsys.readouterr()
    assert main(["replay", str(db), "-o", str(out), "--model", str(tiny_lm_dir), "--json"]) == 0
    (session,) = json.loads(capsys.readouterr().out)["sessions"]
    assert (session["suggestions"], session["accepted"], session["rejected"], session["chars_saved"]) == (1, 0, 1, 0)
    with sqlite3.connect(out) as conn:
        assert conn.execute("SELECT outcome, undone_at IS NOT NULL FROM suggestions").fetchall() == [("accepted", 1)]
