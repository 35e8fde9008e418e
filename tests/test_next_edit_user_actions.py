"""Next edits against the real server, following what the user did: an accepted edit undone at once, a rename typed
in two steps, an edit dismissed."""

from __future__ import annotations

import time

from telemetry.lsp_client import LspClient, change_at
from tests.lsp_support import server_command

URI = "file:///project/area.py"
TEXT = "def area(width, height):\n    check(width)\n    return width * height\n"


def _client(tmp_path, text: str = TEXT, **settings) -> LspClient:
    client = LspClient(server_command(tmp_path / "no-model", tmp_path / "t.sqlite3"))
    client.initialize({"acceptanceGate": False, **settings})
    client.did_open(URI, text)
    return client


def _edits(client: LspClient, version: int, line: int, character: int) -> list[dict]:
    return client.next_edit(URI, version, line, character)


def test_an_accepted_next_edit_undone_at_once_is_not_offered_again(tmp_path):
    """Ctrl+Z within the grouping window after Tab: the applied edit and its undo were one edit that changed
    nothing, so the history lost both and the edit just undone was offered again at once."""
    client = _client(tmp_path, "def area(width, height):\n    return width * height\n")
    try:
        client.did_change(URI, 2, [change_at(0, 9, "w", 0, 14)])  # `width` renamed `w` in the signature
        [offered] = _edits(client, 2, 0, 10)
        start, end = offered["range"]["start"], offered["range"]["end"]
        assert (start["line"], offered["newText"]) == (1, "w")
        client.notify("tact/didShowNextEdit", {"id": offered["id"]})
        client.did_change(URI, 3, [change_at(start["line"], start["character"], "w", end["line"], end["character"])])
        client.request("workspace/executeCommand", {"command": "tact.acceptNextEdit", "arguments": [offered["id"]]})
        time.sleep(0.3)  # Ctrl+Z, well inside the window of 1 s
        client.did_change(URI, 4, [change_at(1, start["character"], "width", 1, start["character"] + 1)])
        again = _edits(client, 4, 1, start["character"] + 5)
        assert not any(e["range"]["start"]["line"] == 1 and e["newText"] == "w" for e in again), again
    finally:
        client.shutdown()


def test_a_rename_typed_after_a_pause_is_carried_on_as_a_rename(tmp_path):
    """The old name selected and deleted, a pause longer than the grouping window, the new name typed: two edits,
    and the older one, generalised alone, offered to delete the name at its next use (`check()`)."""
    client = _client(tmp_path, editCoalesceMs=100)
    try:
        client.did_change(URI, 2, [change_at(0, 9, "", 0, 14)])  # `width` deleted
        time.sleep(0.5)
        for i, ch in enumerate("size"):
            client.did_change(URI, 3 + i, [change_at(0, 9 + i, ch)])
        [offered] = _edits(client, 6, 0, 13)
        assert offered["range"]["start"]["line"] == 1 and offered["newText"] == "size", offered
    finally:
        client.shutdown()


def test_a_dismissed_next_edit_is_not_offered_again_while_its_line_stays_as_it_was(tmp_path):
    """Escape on a next edit, then typing elsewhere: the editor asks again at each change, and the same edit came
    back every time (four dismissals of one edit in a row)."""
    client = _client(tmp_path, TEXT + "\n# notes\n")
    try:
        client.did_change(URI, 2, [change_at(0, 9, "w", 0, 14)])
        [dismissed] = _edits(client, 2, 0, 10)
        client.notify("tact/didShowNextEdit", {"id": dismissed["id"]})
        client.notify("tact/didRejectNextEdit", {"id": dismissed["id"], "reason": "dismissed"})
        same = (dismissed["range"], dismissed["newText"])
        for version, ch in enumerate(" todo", start=3):  # typed in the comment below
            client.did_change(URI, version, [change_at(4, 7 + version - 3, ch)])
            assert all((e["range"], e["newText"]) != same for e in _edits(client, version, 4, 8 + version - 3))
        # an edit ignored (not dismissed) is offered again: only Escape says no
        other = "file:///project/other.py"
        client.did_open(other, TEXT + "\n# notes\n")
        client.did_change(other, 2, [change_at(0, 9, "w", 0, 14)])
        [ignored] = client.next_edit(other, 2, 0, 10)
        client.notify("tact/didShowNextEdit", {"id": ignored["id"]})
        client.notify("tact/didRejectNextEdit", {"id": ignored["id"], "reason": "ignored"})
        client.did_change(other, 3, [change_at(4, 7, "!")])
        again = client.next_edit(other, 3, 4, 8)
        assert [(e["range"], e["newText"]) for e in again] == [(ignored["range"], ignored["newText"])]
    finally:
        client.shutdown()


def test_a_dismissed_edit_leaves_the_same_change_at_another_use_offered(tmp_path):
    """Dismissing `check(w)` in one function is no answer about the same change in another one."""
    text = ("def area(width, height):\n    check(width)\n    return width * height\n\n\n"
            "def perimeter(width, height):\n    check(width)\n    return 2 * (width + height)\n")
    client = _client(tmp_path, text)
    try:
        client.did_change(URI, 2, [change_at(0, 9, "w", 0, 14)])
        [first] = _edits(client, 2, 0, 10)
        assert first["range"]["start"]["line"] == 1
        client.notify("tact/didShowNextEdit", {"id": first["id"]})
        client.notify("tact/didRejectNextEdit", {"id": first["id"], "reason": "dismissed"})
        client.did_change(URI, 3, [change_at(5, 14, "w", 5, 19)])  # the same rename in perimeter()
        again = _edits(client, 3, 5, 15)
        assert [(e["range"]["start"]["line"], e["newText"]) for e in again] == [(6, "w")]
    finally:
        client.shutdown()


def test_a_line_deleted_and_another_typed_in_its_place_stay_two_edits(tmp_path):
    """Only a name deleted and the text typed where it was are one replacement: a whole line deleted and, seconds
    later, another line typed there offered to turn another function's line into the new one."""
    text = ("def f(x):\n    debug(x)\n    return x\n\n\ndef g(x):\n    debug(x)\n    return x\n")
    client = _client(tmp_path, text, editCoalesceMs=100)
    try:
        client.did_change(URI, 2, [change_at(1, 0, "", 2, 0)])  # `    debug(x)` deleted
        time.sleep(0.5)
        client.did_change(URI, 3, [change_at(1, 0, "    y = x\n")])
        edits = _edits(client, 3, 1, 9)
        assert not any(e["newText"].strip() == "y = x" for e in edits), edits
    finally:
        client.shutdown()
