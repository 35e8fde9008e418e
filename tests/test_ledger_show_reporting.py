"""A client that reports what it shows: a suggestion a newer answer replaced unseen is cancelled, not the user's
rejection, and one still on screen stays open until the user decides or another is shown in its place."""

from __future__ import annotations

import sys

from lsp_server.services.ledger import Ended, IssuedSuggestion, SuggestionLedger
from telemetry.lsp_client import LspClient, change_at
from telemetry.reader import decided_outcomes, open_readonly
from telemetry.simulate import (ACCELERATED_DEFAULTS, DID_PARTIALLY_ACCEPT, DID_REJECT, DID_SHOW, require_ready,
                                server_command, wait_ready)

URI = "file:///a.py"


def _issue(ledger: SuggestionLedger, sid: str, uri: str = URI):
    return ledger.issue(IssuedSuggestion(sid, "completion", uri, 1, "x"))


def test_without_shows_reported_a_newer_answer_rejects_the_one_before():
    ledger = SuggestionLedger()
    told = []
    ledger.listeners.append(lambda sid, outcome: told.append((sid, outcome)))
    assert _issue(ledger, "a") is None
    assert _issue(ledger, "b") == Ended("a", "rejected")
    assert told == [("a", "rejected")]


def test_with_shows_reported_an_unseen_one_is_cancelled_and_a_shown_one_stays_open():
    ledger = SuggestionLedger()
    told = []
    ledger.listeners.append(lambda sid, outcome: told.append((sid, outcome)))
    _issue(ledger, "a")
    assert ledger.mark_shown("a") is None
    assert _issue(ledger, "b") is None  # a is on screen still: not ended
    assert ledger.get("a").outcome is None
    assert _issue(ledger, "c") == Ended("b", "cancelled")  # b was never shown
    assert told == [("b", "cancelled")]
    assert ledger.resolve("a", "partially_accepted") is not None  # the user goes on accepting a
    assert ledger.mark_shown("c") == "a"  # c took a's place on screen
    assert ledger.get("a").outcome == "rejected" and told[-1] == ("a", "rejected")
    assert [e.id for e in ledger.close_document(URI)] == ["c"]
    assert ledger.mark_shown("c") is None  # nothing left on screen to replace


def test_shows_are_reported_per_kind_and_only_by_the_client():
    """A next edit the server records shown for a code action, or the client's show of a next edit, says nothing of
    whether it reports the completions it shows: taken so, every completion typed through was logged cancelled, and
    the gate learned no rejection."""
    ledger = SuggestionLedger()
    ledger.issue(IssuedSuggestion("n1", "next_edit", URI, 1, "x"))
    ledger.mark_shown("n1", reported=False)
    _issue(ledger, "a")
    assert _issue(ledger, "b") == Ended("a", "rejected")
    ledger.mark_shown("n1")  # the client reports next edits' shows
    assert _issue(ledger, "c") == Ended("b", "rejected")  # not completions'
    assert ledger.issue(IssuedSuggestion("n2", "next_edit", URI, 2, "y")) is None  # n1 was shown: still on screen


def test_a_next_edit_answered_in_another_cell_ends_the_asking_cell_s_by_the_same_rule():
    ledger = SuggestionLedger()
    ledger.issue(IssuedSuggestion("n0", "next_edit", "cell:2", 1, "x"))
    ledger.mark_shown("n0")
    ledger.issue(IssuedSuggestion("n1", "next_edit", URI, 1, "x"))
    assert ledger.supersede("next_edit", URI) == Ended("n1", "cancelled")  # never shown
    ledger.issue(IssuedSuggestion("n2", "next_edit", URI, 2, "x"))
    ledger.mark_shown("n2")
    assert ledger.supersede("next_edit", URI) is None and ledger.get("n2").outcome is None  # on screen: stays open
    assert ledger.supersede("next_edit", URI) is None


def test_a_document_closed_ends_the_one_on_screen_too():
    ledger = SuggestionLedger()
    _issue(ledger, "a")
    ledger.mark_shown("a")
    _issue(ledger, "b")
    assert sorted(e.id for e in ledger.close_document(URI)) == ["a", "b"]
    assert _issue(ledger, "c", "file:///other.py") is None


def test_the_server_records_unseen_answers_cancelled_and_keeps_the_one_on_screen_open(tiny_lm_dir, tmp_path):
    """VS Code's flow: a suggestion shown, a word of it accepted, the next answer never shown (VS Code keeps the first
    on screen), another word accepted, then Escape."""
    db = tmp_path / "vs.sqlite3"
    uri = "file:///w/a.py"
    with LspClient(server_command(sys.executable, str(tiny_lm_dir), str(db))) as client:
        client.initialize({**ACCELERATED_DEFAULTS, "acceptanceGate": False, "stopThreshold": 1.01, "maxNewTokens": 8},
                          client_name="vscode")
        require_ready(wait_ready(client))
        client.did_open(uri, "import os\n\n\ndef main():\n    ", 1, "python")
        first = client.inline_completion(uri, 4, 4)
        assert first
        shown = first[0]["command"]["arguments"][0]
        client.notify(DID_SHOW, {"id": shown})
        client.notify(DID_PARTIALLY_ACCEPT, {"id": shown, "acceptedLength": 1})
        unseen = []
        for n, ch in enumerate("print(os.getcwd())"):
            client.did_change(uri, 2 + n, [change_at(4, 4 + n, ch)])
            items = client.inline_completion(uri, 4, 5 + n)
            if items:
                unseen.append(items[0]["command"]["arguments"][0])
        client.notify(DID_PARTIALLY_ACCEPT, {"id": shown, "acceptedLength": 2})
        client.notify(DID_REJECT, {"id": shown, "reason": "dismissed"})
        client.shutdown()
    assert len(unseen) >= 2
    conn = open_readonly(db)
    try:
        rows = dict(conn.execute("SELECT id, outcome || ':' || COALESCE(reject_reason, '') FROM suggestions"))
        cancelled = dict(conn.execute("SELECT suggestion_id, json_extract(payload, '$.reason') FROM suggestion_events"
                                      " WHERE type = 'suggestion_cancelled'"))
        decided = decided_outcomes(conn)
    finally:
        conn.close()
    assert rows[shown].startswith("partially_accepted")  # not ended by the answers it was on screen through
    for sid in unseen[:-1]:  # each but the last was replaced by a newer answer, unseen
        assert rows[sid].startswith("cancelled") and cancelled[sid] == "superseded"
    assert (decided["accepted"], decided["rejected"]) == (1, 0)  # the unseen ones are no one's rejections
