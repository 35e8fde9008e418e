"""An accepted suggestion the user takes back soon after (Ctrl+Z, or its text deleted whole) is no acceptance: before,
it counted accepted with all its characters saved, and the gate's running rate learnt a yes from it."""

from __future__ import annotations

import json
import sqlite3
import sys
from contextlib import contextmanager

from lsp_server.cli import main
from lsp_server.services.undo_watch import Change, UndoWatch
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


def _apply(text: str, start: int, end: int, new: str) -> tuple[str, list[Change]]:
    return text[:start] + new + text[end:], [Change(start, text[start:end], new)]


def _accepted(watch: UndoWatch, text: str, start: int, end: int, new: str, begin: int, accepted: str) -> str:
    """The editor writes ``new`` over [start, end) and the accept of ``accepted`` at ``begin`` is recorded."""
    after, changes = _apply(text, start, end, new)
    assert watch.changed(URI, after, changes) == []
    assert watch.accepted(URI, "s1", after, begin, accepted)
    return after


def test_an_undo_of_the_accept_takes_it_back():
    watch = UndoWatch()
    at = BEFORE.index("pr\n") + 2  # the suggestion starts after "pr", typed before it came
    _accepted(watch, BEFORE, at, at, "int(os.getcwd())", at, "int(os.getcwd())")
    assert watch.changed(URI, BEFORE, [Change(at, "int(os.getcwd())", "")]) == ["s1"]
    assert watch.watched(URI) == []


def test_an_accept_over_what_was_typed_of_it_is_taken_back_by_its_own_undo():
    """VS Code writes the whole item over the typed part ("pr" -> "print(...)"); its undo leaves "pr"."""
    watch = UndoWatch()
    begin = BEFORE.index("pr\n")
    after = _accepted(watch, BEFORE, begin, begin + 2, "print(os.getcwd())", begin, "print(os.getcwd())")
    assert "print(os.getcwd())" in after
    assert watch.changed(URI, BEFORE, [Change(begin, "print(os.getcwd())", "pr")]) == ["s1"]


def test_the_accepted_text_deleted_whole_is_taken_back():
    watch = UndoWatch()
    begin = BEFORE.index("pr\n") + 2
    after = _accepted(watch, BEFORE, begin, begin, "int(x)", begin, "int(x)")
    typed, changes = _apply(after, begin + len("int(x)"), begin + len("int(x)"), "  # y")  # typed on after it
    assert watch.changed(URI, typed, changes) == []
    undone, changes = _apply(typed, begin + len("int(x)"), begin + len("int(x)  # y"), "")  # that undone first
    assert watch.changed(URI, undone, changes) == []
    deleted, changes = _apply(undone, begin, begin + len("int(x)"), "")  # then the accepted text selected, deleted
    assert watch.changed(URI, deleted, changes) == ["s1"]


def test_backspacing_the_end_of_an_accept_or_editing_around_it_is_no_undo():
    watch = UndoWatch()
    begin = BEFORE.index("pr\n") + 2
    after = _accepted(watch, BEFORE, begin, begin, "int(os.getcwd())", begin, "int(os.getcwd())")
    end = begin + len("int(os.getcwd())")
    text = after
    for k in range(1, 4):  # three characters of its end, one at a time
        text, changes = _apply(text, end - k, end - k + 1, "")
        assert watch.changed(URI, text, changes) == []
    text, changes = _apply(text, 0, 0, "# top\n")  # an edit above, then the rest of it deleted: not its undo
    assert watch.changed(URI, text, changes) == []
    assert watch.watched(URI) == ["s1"]


def test_neovims_undo_of_the_whole_insert_takes_it_back():
    """In Neovim typing `pr`, accepting `int(x)` with <C-y>, typing on and leaving insert mode is one undo block:
    `u` removes all of it."""
    watch = UndoWatch()
    begin = BEFORE.index("pr\n") + 2
    after = _accepted(watch, BEFORE, begin, begin, "int(x)", begin, "int(x)")
    on, changes = _apply(after, begin + 6, begin + 6, "  # here")
    assert watch.changed(URI, on, changes) == []
    undone, changes = _apply(on, begin - 2, begin + len("int(x)  # here"), "")
    assert watch.changed(URI, undone, changes) == ["s1"]


def test_its_line_deleted_takes_it_back_and_a_block_missing_part_of_it_does_not():
    begin = BEFORE.index("pr\n") + 2
    line = BEFORE.index("    pr\n")
    for start, end, told in ((line, begin + len("int(x)\n"), ["s1"]),  # `dd`: the line and its break
                             (line, begin + 3, []),  # up to the middle of it
                             (begin + 1, begin + len("int(x)\n"), [])):  # from the middle of it
        watch = UndoWatch()
        after = _accepted(watch, BEFORE, begin, begin, "int(x)", begin, "int(x)")
        text, changes = _apply(after, start, end, "")
        assert watch.changed(URI, text, changes) == told, (start, end)


def test_an_accept_is_watched_for_the_window_only():
    clock = Clock()
    watch = UndoWatch(window_s=60, clock=clock)
    begin = BEFORE.index("pr\n") + 2
    _accepted(watch, BEFORE, begin, begin, "int(x)", begin, "int(x)")
    clock.now = 61
    assert watch.changed(URI, BEFORE, [Change(begin, "int(x)", "")]) == []
    assert watch.watched(URI) == []


def test_an_accept_a_word_at_a_time_is_taken_back_only_when_all_of_it_is():
    watch = UndoWatch()
    begin = BEFORE.index("pr\n") + 2
    first = _accepted(watch, BEFORE, begin, begin, "int(", begin, "int(")
    second, changes = _apply(first, begin + 4, begin + 4, "os")
    assert watch.changed(URI, second, changes) == []
    assert watch.accepted(URI, "s1", second, begin, "int(os")
    assert watch.changed(URI, first, [Change(begin + 4, "os", "")]) == []  # the last word undone: the first kept
    assert watch.changed(URI, BEFORE, [Change(begin, "int(", "")]) == ["s1"]


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
    assert migrate(db) == SCHEMA_VERSION == 3
    assert db.execute("SELECT id, outcome, undone_at FROM suggestions").fetchall() == [("a", "accepted", None)]
    db.conn.close()


def test_a_same_settings_replay_takes_the_accept_back_as_recorded(tiny_lm_dir, tmp_path, capsys):
    """The accept's insertion and its undo, typed within the grouping window, were one edit that changed nothing and
    was dropped: the replay accepted the suggestion and counted its characters saved."""
    db = tmp_path / "vs.sqlite3"
    _vscode_session(tiny_lm_dir, db, undo=True)
    with sqlite3.connect(db) as conn:
        assert len(conn.execute("SELECT 1 FROM edits").fetchall()) == 2  # the accept's insertion, its undo
    out = tmp_path / "replay.sqlite3"
    capsys.readouterr()
    assert main(["replay", str(db), "-o", str(out), "--model", str(tiny_lm_dir), "--json"]) == 0
    (session,) = json.loads(capsys.readouterr().out)["sessions"]
    assert (session["suggestions"], session["accepted"], session["rejected"], session["chars_saved"]) == (1, 0, 1, 0)
    with sqlite3.connect(out) as conn:
        assert conn.execute("SELECT outcome, undone_at IS NOT NULL FROM suggestions").fetchall() == [("accepted", 1)]
