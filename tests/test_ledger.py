"""The suggestion ledger: what the editor was handed, and what ends it."""

from __future__ import annotations

from lsp_server.services.ledger import IssuedSuggestion, SuggestionLedger


def _issue(ledger: SuggestionLedger, sid: str, kind: str, uri: str) -> None:
    ledger.issue(IssuedSuggestion(sid, kind, uri, 1, "text"))


def test_closing_a_document_rejects_what_is_still_open_in_it_and_nothing_else():
    """A suggestion on screen when its document closed stayed open for good: no client ends it then (VS Code's
    proposed API may send no end of lifetime), so the gate never counted that rejection and telemetry left it
    without an outcome."""
    ledger, heard = SuggestionLedger(), []
    ledger.listeners.append(lambda sid, outcome: heard.append((sid, outcome)))
    _issue(ledger, "done", "completion", "file:///a.py")
    ledger.resolve("done", "accepted")
    _issue(ledger, "other", "completion", "file:///b.py")
    _issue(ledger, "edit", "next_edit", "file:///a.py")
    _issue(ledger, "open", "completion", "file:///a.py")  # after the accepted one: the document's open completion
    heard.clear()
    assert sorted(e.id for e in ledger.close_document("file:///a.py")) == ["edit", "open"]
    assert sorted(heard) == [("edit", "rejected"), ("open", "rejected")]
    assert ledger.get("open").outcome == "rejected" and ledger.get("done").outcome == "accepted"
    assert ledger.get("other").outcome is None
    assert ledger.close_document("file:///a.py") == []  # once
    told = len(heard)
    _issue(ledger, "again", "completion", "file:///a.py")  # reopened: a new suggestion supersedes nothing
    assert len(heard) == told and ledger.get("again").outcome is None


def test_a_ledger_tells_the_ids_it_issued_from_another_ledgers_even_once_evicted():
    ledger, other = SuggestionLedger(capacity=2), SuggestionLedger()
    ids = [ledger.new_id() for _ in range(3)]
    for sid in ids:
        ledger.issue(IssuedSuggestion(sid, "completion", "file:///a.py", 1, "x"))
    assert ledger.get(ids[0]) is None  # evicted
    assert all(ledger.issued_here(sid) for sid in ids) and len(set(ids)) == 3
    assert not ledger.issued_here(other.new_id()) and not ledger.issued_here("made-up") and not ledger.issued_here("")
    assert not ledger.issued_here(ids[0] + "0")  # the prefix alone is not enough
