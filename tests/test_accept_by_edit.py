"""A classic completion accepted by a client that never runs the item's command (Emacs's eglot): the edit that writes
the item is its acceptance. Before, the next request superseded it, logged rejected, and the gate learnt a rejection."""

from __future__ import annotations

import sqlite3

from telemetry.lsp_client import LspClient, change_at
from tests.lsp_support import model_under_test, server_command, wait_for_rows

URI = "file:///project/accept.py"
TEXT = "import os\n\n\ndef read_lines(path):\n    with open(path) as f:\n        return f.\n"
LINE, CHARACTER = 5, len("        return f.")


def _start(tmp_path):
    db = tmp_path / "telemetry.sqlite3"
    client = LspClient(server_command(model_under_test(), db))
    client.initialize({"stopThreshold": 1.01, "acceptanceGate": False})
    client.did_open(URI, TEXT)
    return client, db


def _complete(client, character: int = CHARACTER) -> list[dict]:
    return client.request("textDocument/completion", {
        "textDocument": {"uri": URI}, "position": {"line": LINE, "character": character},
        "context": {"triggerKind": 1}}, timeout=120)["items"]


def _item(client) -> tuple[dict, str]:
    """The classic item at the cursor, and the suggestion it writes after the word before the cursor."""
    items = _complete(client)
    assert items and len(items[0]["command"]["arguments"][0]) > 0
    edit = items[0]["textEdit"]
    return items[0], edit["newText"][CHARACTER - edit["range"]["start"]["character"]:]


def _type_by_hand(client, suggestion: str) -> int:
    """Type ``suggestion`` at the cursor a character at a time, as a programmer types; the next version to send."""
    for k, ch in enumerate(suggestion):
        client.did_change(URI, 2 + k, [change_at(LINE, CHARACTER + k, ch)])
    return 2 + len(suggestion)


def _ended_unaccepted(db) -> None:
    """Once the session ended: the first suggestion's outcome is not an acceptance."""
    wait_for_rows(db, "SELECT 1 FROM sessions WHERE ended_at IS NOT NULL")
    assert _outcomes(db)[0] != ("accepted",)


def _outcomes(db):
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT outcome FROM suggestions WHERE kind = 'completion' ORDER BY requested_at").fetchall()


def test_an_edit_that_writes_the_item_accepts_it_once(tmp_path):
    client, db = _start(tmp_path)
    try:
        item, suggestion = _item(client)
        assert len(suggestion) >= 2, suggestion
        edit = item["textEdit"]
        client.did_change(URI, 2, [{"range": edit["range"], "text": edit["newText"]}])  # as eglot applies it
        status = client.request("tact/status")
        assert (status["acceptanceGate"]["userAccepted"], status["acceptanceGate"]["userRejected"]) == (1, 0)
        # a client that runs the command too (Neovim, VS Code) does so after the edit: counted once
        client.request("workspace/executeCommand", {"command": "tact.acceptSuggestion",
                                                   "arguments": item["command"]["arguments"]})
        _complete(client, CHARACTER + len(suggestion))
        status = client.request("tact/status")
        assert status["acceptanceGate"]["userAccepted"] == 1
    finally:
        client.shutdown()
    assert _outcomes(db)[0] == ("accepted",)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM suggestion_events WHERE type = 'suggestion_accepted'").fetchone() == (1,)


def test_typing_the_suggestion_by_hand_is_no_acceptance(tmp_path):
    client, db = _start(tmp_path)
    try:
        _, suggestion = _item(client)
        _type_by_hand(client, suggestion)
        assert client.request("tact/status")["acceptanceGate"]["userAccepted"] == 0
    finally:
        client.shutdown()
    _ended_unaccepted(db)


def test_a_whole_text_change_is_no_acceptance(tmp_path):
    """A client that sends the whole text at each keystroke (no range) inserts it all every time: typing the
    suggestion by hand read as its acceptance at the last character."""
    client, db = _start(tmp_path)
    try:
        _, suggestion = _item(client)
        lines = TEXT.split("\n")
        for k in range(1, len(suggestion) + 1):
            typed = lines[:LINE] + [lines[LINE] + suggestion[:k]] + lines[LINE + 1:]
            client.did_change(URI, 1 + k, [{"text": "\n".join(typed)}])
        status = client.request("tact/status")
        assert status["acceptanceGate"]["userAccepted"] == 0
    finally:
        client.shutdown()


def test_an_edit_after_an_item_typed_by_hand_is_no_acceptance(tmp_path):
    """Typed out a character at a time, the item read as accepted at the next change inserting as much anywhere:
    Enter with its indent at the end of the line, or a paste on the line below. Only changes inside the item's edit
    count."""
    client, db = _start(tmp_path)
    try:
        _, suggestion = _item(client)
        version = _type_by_hand(client, suggestion)
        end = CHARACTER + len(suggestion)
        client.did_change(URI, version, [change_at(LINE, end, "\n" + " " * max(8, len(suggestion)))])
        client.did_change(URI, version + 1, [change_at(LINE + 2, 0, "print(read_lines('x'))  # " + suggestion + "\n")])
        assert client.request("tact/status")["acceptanceGate"]["userAccepted"] == 0
    finally:
        client.shutdown()
    _ended_unaccepted(db)
