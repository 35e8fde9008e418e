"""A next edit's accept heard before the change that applies it is watched once that change comes. eglot sends the
code action's command at once and the didChange with its next flush (about 0.5 s later): the document did not hold
the text at the accept, so the accept was never watched (an undo after it stayed accepted, and it had no kept
figure)."""

from __future__ import annotations

import sqlite3

from telemetry.lsp_client import LspClient, change_at
from tests.lsp_support import server_command, wait_for_rows

URI = "file:///project/area.py"
TEXT = "def area(width, height):\n    return width * height\n"


def _session(tmp_path, *, undo: bool, pieces: bool = False) -> tuple[str, tuple]:
    db = tmp_path / "t.sqlite3"
    client = LspClient(server_command(tmp_path / "no-model", db))
    client.initialize({"acceptanceGate": False, "nextEditPredictor": "heuristic"})
    client.did_open(URI, TEXT)
    try:
        client.did_change(URI, 2, [change_at(0, 9, "size", 0, 14)])  # `width` renamed `size` in the signature
        [offered] = client.next_edit(URI, 2, 0, 13)
        start, end = offered["range"]["start"], offered["range"]["end"]
        assert (start["line"], offered["newText"]) == (1, "size"), offered
        line, character = start["line"], start["character"]
        # eglot's order: the command first, the change that applied the edit after it
        client.request("workspace/executeCommand", {"command": "tact.acceptNextEdit", "arguments": [offered["id"]]})
        client.did_change(URI, 3, [change_at(line, character, "size", end["line"], end["character"])])
        if undo and pieces:  # eglot's undo, in one message: `s` deleted, `w` typed, `ze` deleted, `dth` typed
            client.did_change(URI, 4, [change_at(line, character, "", line, character + 1),
                                       change_at(line, character, "w"),
                                       change_at(line, character + 2, "", line, character + 4),
                                       change_at(line, character + 2, "dth")])
        elif undo:  # the old name written back over the new
            client.did_change(URI, 4, [change_at(line, character, "width", line, character + 4)])
        client.request("tact/status")
    finally:
        client.shutdown()
    wait_for_rows(db, "SELECT 1 FROM sessions WHERE ended_at IS NOT NULL")
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT outcome, undone_at IS NOT NULL, accepted_length, kept_length FROM suggestions"
                           " WHERE id = ?", [offered["id"]]).fetchone()
    return offered["id"], row


def test_an_accept_heard_before_its_change_and_undone_is_taken_back(tmp_path):
    for name, pieces in (("whole", False), ("pieces", True)):
        (tmp_path / name).mkdir()
        _, row = _session(tmp_path / name, undo=True, pieces=pieces)
        assert row[:2] == ("accepted", 1), name


def test_an_accept_heard_before_its_change_and_kept_has_its_kept_figure(tmp_path):
    _, row = _session(tmp_path, undo=False)
    assert row == ("accepted", 0, 4, 4)


def test_an_undo_and_a_redo_in_several_changes_are_read_from_the_text_after_them():
    """The watch alone: a span followed through the pieces, then compared with the document after the message."""
    from lsp_server.services.documents import AppliedEdit
    from lsp_server.services.ledger import UNDONE
    from lsp_server.services.positions import Position
    from lsp_server.services.undo_watch import ACCEPTED_AGAIN, UndoWatch

    def edit(text: str, start: int, end: int, new: str) -> AppliedEdit:
        return AppliedEdit(start, end, Position(0, 0), Position(0, 0), text[start:end], new)

    after = TEXT.replace("width *", "size *")
    at = after.index("size *")
    watch = UndoWatch()
    assert watch.accepted(URI, "n1", after, at, "size", replaced="width")
    step = after[:at] + "w" + after[at + 1:]
    undone = step[:at + 2] + "dth" + step[at + 4:]
    assert undone == TEXT
    assert watch.changed(URI, [edit(after, at, at + 1, "w"), edit(step, at + 2, at + 4, "dth")], undone) == \
        [("n1", UNDONE, None)]
    back = TEXT[:at] + "s" + TEXT[at + 1:]
    redone = back[:at + 2] + "ze" + back[at + 5:]
    assert redone == after
    assert watch.changed(URI, [edit(TEXT, at, at + 1, "s"), edit(back, at + 2, at + 5, "ze")], redone) == \
        [("n1", ACCEPTED_AGAIN, None)]
    # eglot's pieces: each deletion and insertion a change of its own, an insertion at the span's start among them
    gone = after[:at] + after[at + 1:]
    step = gone[:at] + "w" + gone[at:]
    cut = step[:at + 2] + step[at + 4:]
    assert cut[:at + 2] + "dth" + cut[at + 2:] == TEXT
    assert watch.changed(URI, [edit(after, at, at + 1, ""), edit(gone, at, at, "w"), edit(step, at + 2, at + 4, ""),
                               edit(cut, at + 2, at + 2, "dth")], TEXT) == [("n1", UNDONE, None)]
    # typing inside a kept accept is neither
    fresh = UndoWatch()
    assert fresh.accepted(URI, "n2", after, at, "size", replaced="width")
    typed = after[:at + 2] + "x" + after[at + 2:]
    assert fresh.changed(URI, [edit(after, at + 2, at + 2, "x")], typed) == []
