"""An accepted next edit the user takes back at once (Ctrl+Z) is no acceptance, as for completions: before, only
completions' accepts were watched, and an undone next edit counted accepted in the database and the report."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from lsp_server.services.documents import AppliedEdit
from lsp_server.services.ledger import UNDONE
from lsp_server.services.positions import Position
from lsp_server.services.undo_watch import ACCEPTED_AGAIN, UndoWatch
from telemetry.lsp_client import LspClient, change_at
from telemetry.report import load
from tests.lsp_support import server_command, wait_for_rows

URI = "file:///project/area.py"
TEXT = "def area(width, height):\n    return width * height\n"


def _edit(text: str, start: int, end: int, new: str) -> AppliedEdit:
    return AppliedEdit(start, end, Position(0, 0), Position(0, 0), text[start:end], new)


def _renamed() -> tuple[UndoWatch, int, str]:
    """A watch of the next edit that renamed the second `width` of ``TEXT`` `w`: (it, where, the text after it)."""
    watch = UndoWatch()
    at = TEXT.index("width *")
    after = TEXT[:at] + "w" + TEXT[at + 5:]
    assert watch.accepted(URI, "n1", after, at, "w", replaced="width")
    return watch, at, after


def test_a_rename_to_a_shorter_name_undone_is_taken_back_though_the_old_name_holds_the_new():
    """`width` -> `w` accepted; the undo writes `width` back, which holds `w`: read as the accept written again."""
    watch, at, after = _renamed()
    assert watch.changed(URI, [_edit(after, at, at + 1, "width")]) == [("n1", UNDONE, None)]
    assert watch.changed(URI, [_edit(TEXT, at, at + 5, "w")]) == [("n1", ACCEPTED_AGAIN, None)]  # redo


def test_an_undo_sent_as_whole_lines_is_taken_back_and_typing_the_new_name_elsewhere_is_no_redo():
    """An editor that sends the changed lines whole; a `w` typed elsewhere after the undo writes nothing again."""
    watch, at, after = _renamed()
    line = TEXT.index("    return")
    end = after.index("\n", line) + 1
    assert watch.changed(URI, [_edit(after, line, end, TEXT[line:TEXT.index("\n", line) + 1])]) == \
        [("n1", UNDONE, None)]
    assert watch.changed(URI, [_edit(TEXT, 0, 0, "w")]) == []  # typed above
    moved = "w" + TEXT
    assert watch.changed(URI, [_edit(moved, at + 1, at + 6, "w")]) == [("n1", ACCEPTED_AGAIN, None)]  # redo


def test_an_undo_sent_as_the_least_that_changed_is_taken_back_and_typing_after_it_is_not():
    """Neovim sends what changed and no more: `w` back to `width` is `idth` written after the `w`."""
    watch, at, after = _renamed()
    assert watch.changed(URI, [_edit(after, at + 1, at + 1, "i")]) == []  # typed on after it
    typed = after[:at + 1] + "i" + after[at + 1:]
    assert watch.changed(URI, [_edit(typed, at + 1, at + 2, "")]) == []  # and deleted again
    assert watch.changed(URI, [_edit(after, at + 1, at + 1, "idth")]) == [("n1", UNDONE, None)]
    assert watch.changed(URI, [_edit(TEXT, at + 1, at + 5, "")]) == [("n1", ACCEPTED_AGAIN, None)]  # redo


def test_a_line_rewritten_around_a_short_accept_still_keeps_it():
    """Only the replaced text written back is an undo: a rewrite of the line that keeps the accepted text is not."""
    watch, at, after = _renamed()
    assert watch.changed(URI, [_edit(after, at, at + 1, "w2")]) == []


def _session(tmp_path, *, undo: bool, redo: bool = False) -> tuple[str, sqlite3.Connection]:
    db = tmp_path / "t.sqlite3"
    client = LspClient(server_command(tmp_path / "no-model", db))
    client.initialize({"acceptanceGate": False})
    client.did_open(URI, TEXT)
    try:
        client.did_change(URI, 2, [change_at(0, 9, "w", 0, 14)])  # `width` renamed `w` in the signature
        [offered] = client.next_edit(URI, 2, 0, 10)
        start, end = offered["range"]["start"], offered["range"]["end"]
        assert (start["line"], offered["newText"]) == (1, "w"), offered
        client.notify("tact/didShowNextEdit", {"id": offered["id"]})
        line, character = start["line"], start["character"]
        client.did_change(URI, 3, [change_at(line, character, "w", end["line"], end["character"])])  # applied
        client.request("workspace/executeCommand", {"command": "tact.acceptNextEdit", "arguments": [offered["id"]]})
        if undo:  # Ctrl+Z: the old name written back over the new
            client.did_change(URI, 4, [change_at(line, character, "width", line, character + 1)])
        if redo:
            client.did_change(URI, 5, [change_at(line, character, "w", line, character + 5)])
        client.request("tact/status")
    finally:
        client.shutdown()
    wait_for_rows(db, "SELECT 1 FROM sessions WHERE ended_at IS NOT NULL")
    return offered["id"], sqlite3.connect(db)


def _reported_accepts(db: Path) -> int:
    """The next edits in files the report counts accepted."""
    return load(db, "t").files_vs_notebook_cells()["next_edit"]["files"]["accepted"]


def test_an_accepted_next_edit_undone_is_taken_back_in_the_database_and_the_report(tmp_path):
    sid, conn = _session(tmp_path, undo=True)
    with conn:
        row = conn.execute("SELECT kind, outcome, undone_at IS NOT NULL FROM suggestions WHERE id = ?", [sid]).fetchone()
        events = [t for (t,) in conn.execute("SELECT type FROM suggestion_events WHERE suggestion_id = ? ORDER BY seq",
                                             [sid])]
    conn.close()
    assert row == ("next_edit", "accepted", 1)
    assert events[-2:] == ["suggestion_accepted", "suggestion_undone"]
    assert _reported_accepts(tmp_path / "t.sqlite3") == 0


def test_an_accepted_next_edit_kept_or_written_again_stays_accepted(tmp_path):
    for name, undo, redo in (("kept", False, False), ("redone", True, True)):
        out = tmp_path / name
        out.mkdir()
        sid, conn = _session(out, undo=undo, redo=redo)
        with conn:
            row = conn.execute("SELECT outcome, undone_at FROM suggestions WHERE id = ?", [sid]).fetchone()
        conn.close()
        assert row == ("accepted", None), (name, row)
        assert _reported_accepts(out / "t.sqlite3") == 1, name
