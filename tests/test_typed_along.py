"""A completion the user goes on typing, in a client that asks again at each keystroke and reports no shows (Neovim):
the newer answer carries the user's decision. Before, each keystroke's answer rejected the one before as superseded:
typing two characters of a suggestion and accepting the rest read as two rejections and one accept, in the report
and in the gate's running counts."""

from __future__ import annotations

import json
import sqlite3
import time

from lsp_server.cli import main
from telemetry.lsp_client import change_at
from tests.lsp_support import wait_for_rows
# a classic completion in a client that runs no item command and reports no shows, as the accept-by-edit tests start it
from tests.test_accept_by_edit import CHARACTER, LINE, URI, _start


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


def _then_nothing(tmp_path, typed: str) -> list[tuple]:
    """Ask, type ``typed`` (or the suggestion's first character), ask again where Stop hides every suggestion:
    the first suggestion's row once the session ended."""
    client, db = _start(tmp_path)
    try:
        first, _ = _suggestion(client, CHARACTER)
        client.did_change(URI, 2, [change_at(LINE, CHARACTER, typed or first[0])])
        client.notify("workspace/didChangeConfiguration", {"settings": {"tact": {
            "stopThreshold": 0.0, "acceptanceGate": False}}})
        deadline = time.time() + 10
        while client.request("tact/status")["settings"]["stopThreshold"] != 0.0 and time.time() < deadline:
            time.sleep(0.05)
        items = client.request("textDocument/completion", {
            "textDocument": {"uri": URI}, "position": {"line": LINE, "character": CHARACTER + 1},
            "context": {"triggerKind": 1}}, timeout=120)["items"]
        assert items == []
    finally:
        client.shutdown()
    return _rows(db)


def test_a_suggestion_typed_over_ends_rejected_when_the_next_request_answers_nothing(tmp_path):
    """Neovim's menu closes when the next answer is empty: left open, the suggestion typed over ended cancelled with
    the session (`sessionEnded`) and was not counted shown, where one ended by a newer suggestion counted a
    rejection."""
    assert _then_nothing(tmp_path, "Z")[0] == ("rejected", "superseded", None)


def test_a_suggestion_typed_along_with_nothing_after_it_ends_undecided(tmp_path):
    """With nothing newer to carry the decision (the menu closed, the user typed on by hand), cancelling it
    `typedAlong` left a suggestion the user saw out of every count: it ends as VS Code ends one typed out by hand,
    rejected `ignored` (shown, not accepted, no rejection the gate counts)."""
    assert _then_nothing(tmp_path, "")[0] == ("rejected", "ignored", None)


def test_how_much_of_the_open_suggestion_was_typed_is_read_from_the_document():
    """All of it typed is no typing along (VS Code's `ignored`: typed out by hand), and a cursor moved over text that
    was there already is no typing at all."""
    from lsp_server.services.documents import DocumentStore
    from lsp_server.services.ledger import TYPED_PART, TYPED_WHOLE, IssuedSuggestion, SuggestionLedger
    from lsp_server.services.pipeline import typed_along
    from lsp_server.services.positions import Position, Range

    store, ledger = DocumentStore(), SuggestionLedger()
    doc = store.open(URI, "python", 1, "x = f(a, b)\n")
    ledger.issue(IssuedSuggestion("s1", "completion", URI, 1, "a, b)", start=(0, 6)))
    assert typed_along(ledger, doc, URI, Position(0, 8)) == ""  # the cursor moved right over "a,"
    store.change(URI, 2, [(Range(Position(0, 6), Position(0, 11)), "")])  # "x = f(": then "a, b)" typed
    for n, ch in enumerate("a, b)"):
        store.change(URI, 3 + n, [(Range(Position(0, 6 + n), Position(0, 6 + n)), ch)])
    assert typed_along(ledger, doc, URI, Position(0, 8)) == TYPED_PART
    assert typed_along(ledger, doc, URI, Position(0, 11)) == TYPED_WHOLE
    assert typed_along(ledger, doc, URI, Position(0, 5)) == ""  # before its start


def test_a_same_settings_replay_ends_a_suggestion_typed_over_as_its_recording_did(tmp_path, capsys):
    """The replay's client reported every answer shown, so the server took it for a client that reports shows and
    left the suggestion typed over open to the session's end (cancelled, counted shown) where the recording of a
    client that reports none had it rejected `superseded` by the empty answer after it."""
    recorded = _then_nothing(tmp_path, "Z")
    assert recorded[0] == ("rejected", "superseded", None)
    out = tmp_path / "replay.sqlite3"
    capsys.readouterr()
    assert main(["replay", str(tmp_path / "telemetry.sqlite3"), "-o", str(out), "--json"]) == 0
    with sqlite3.connect(out) as conn:
        replayed = conn.execute("SELECT outcome, reject_reason, shown_at FROM suggestions WHERE kind = 'completion'"
                                " ORDER BY requested_at").fetchall()
    assert replayed[0] == ("rejected", "superseded", None), replayed
