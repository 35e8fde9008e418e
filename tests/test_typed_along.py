"""A completion the user goes on typing, in a client that asks again at each keystroke and reports no shows (Neovim):
the newer answer carries the user's decision. Before, each keystroke's answer rejected the one before as superseded:
typing two characters of a suggestion and accepting the rest read as two rejections and one accept, in the report
and in the gate's running counts."""

from __future__ import annotations

import json
import sqlite3

from lsp_server.cli import main
from telemetry.lsp_client import LspClient, change_at
from tests.lsp_support import model_under_test, server_command, wait_for_rows

URI = "file:///project/along.py"
TEXT = "import os\n\n\ndef read_lines(path):\n    with open(path) as f:\n        return f.\n"
LINE, CHARACTER = 5, len("        return f.")


def _start(tmp_path):
    db = tmp_path / "telemetry.sqlite3"
    client = LspClient(server_command(model_under_test(), db))
    client.initialize({"stopThreshold": 1.01, "acceptanceGate": False})
    client.did_open(URI, TEXT)
    return client, db


def _suggestion(client, character: int) -> tuple[str, list]:
    """(the text the classic item writes after the cursor at ``character``, its command's arguments)."""
    items = client.request("textDocument/completion", {
        "textDocument": {"uri": URI}, "position": {"line": LINE, "character": character},
        "context": {"triggerKind": 1}}, timeout=120)["items"]
    assert items, "no completion"
    edit = items[0]["textEdit"]
    return edit["newText"][character - edit["range"]["start"]["character"]:], items[0]["command"]["arguments"]


def _rows(db) -> list[tuple]:
    wait_for_rows(db, "SELECT 1 FROM sessions WHERE ended_at IS NOT NULL")
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT s.outcome, s.reject_reason, (SELECT json_extract(e.payload, '$.reason') FROM suggestion_events e"
            " WHERE e.suggestion_id = s.id AND e.type = 'suggestion_cancelled') FROM suggestions s"
            " WHERE s.kind = 'completion' ORDER BY s.requested_at").fetchall()


def _typed_along_then_accepted(tmp_path):
    """Type the suggestion's first character, ask again, accept the newer one: (database, the two texts)."""
    client, db = _start(tmp_path)
    try:
        first, _ = _suggestion(client, CHARACTER)
        assert len(first) >= 2, first
        client.did_change(URI, 2, [change_at(LINE, CHARACTER, first[0])])
        second, arguments = _suggestion(client, CHARACTER + 1)
        client.request("workspace/executeCommand", {"command": "tact.acceptSuggestion", "arguments": arguments})
        gate = client.request("tact/status")["acceptanceGate"]
        assert (gate["userAccepted"], gate["userRejected"]) == (1, 0)
    finally:
        client.shutdown()
    return db, first, second


def test_a_suggestion_typed_along_is_no_rejection(tmp_path):
    db, first, second = _typed_along_then_accepted(tmp_path)
    assert _rows(db) == [("cancelled", None, "typedAlong"), ("accepted", None, None)], (first, second)


def test_the_report_counts_a_suggestion_typed_along_and_accepted_once(tmp_path, capsys):
    db, _, _ = _typed_along_then_accepted(tmp_path)
    capsys.readouterr()
    assert main(["report", str(db), "-o", str(tmp_path / "r"), "--json"]) == 0
    (summary,) = json.loads(capsys.readouterr().out)["summaries"]
    assert (summary["shown"], summary["accepted"]) == (1, 1)


def test_typing_something_else_still_rejects_it(tmp_path):
    """The rule is the text typed: a character the suggestion does not start with turns it down, as before."""
    client, db = _start(tmp_path)
    try:
        first, _ = _suggestion(client, CHARACTER)
        other = "Z" if not first.startswith("Z") else "Q"
        client.did_change(URI, 2, [change_at(LINE, CHARACTER, other)])
        _suggestion(client, CHARACTER + 1)
        assert client.request("tact/status")["acceptanceGate"]["userRejected"] == 1
    finally:
        client.shutdown()
    assert _rows(db)[0] == ("rejected", "superseded", None)


def test_a_replay_shows_a_suggestion_typed_along_once(tmp_path, capsys):
    """Judged on its own, the suggestion typed along replayed as a second one shown: the replay read 2 shown where
    its recording had 1."""
    db, _, _ = _typed_along_then_accepted(tmp_path)
    capsys.readouterr()
    assert main(["replay", str(db), "-o", str(tmp_path / "replay.sqlite3"), "--json"]) == 0
    (session,) = json.loads(capsys.readouterr().out)["sessions"]
    assert (session["suggestions"], session["accepted"], session["rejected"]) == (1, 1, 0)
    assert session["by_basis"] == {"unshown": 1, "logged": 1}
