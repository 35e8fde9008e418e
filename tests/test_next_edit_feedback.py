"""The feedback handlers of both kinds (tact/didShowNextEdit, tact/didRejectNextEdit, tact.acceptNextEdit; and
tact/didShowCompletion, tact/didPartiallyAcceptCompletion, tact/didRejectCompletion, tact.acceptSuggestion) with a
fake server: which ids they resolve and what they log."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from pygls.exceptions import JsonRpcInvalidParams

from lsp_server.features import commands, feedback, next_edit
from lsp_server.protocol import (COMMAND_ACCEPT_NEXT_EDIT, COMMAND_ACCEPT_SUGGESTION, DID_PARTIALLY_ACCEPT_COMPLETION,
                                 DID_REJECT_COMPLETION, DID_REJECT_NEXT_EDIT, DID_SHOW_COMPLETION, DID_SHOW_NEXT_EDIT)
from lsp_server.services.documents import DocumentStore
from lsp_server.services.ledger import IssuedSuggestion, SuggestionLedger
from lsp_server.services.next_edit import NextEditService
from lsp_server.services.recorder import SessionRecorder
from lsp_server.services.undo_watch import UndoWatch
from lsp_server.services.scheduler import InferenceScheduler
from tests.telemetry_fakes import ListStore

URI = "file:///project/shapes.py"


def _server():
    """The handlers, and a server holding a completion ``c1`` and a next edit ``n1``, whose ledger outcomes a
    listener hears (as the acceptance gate does in the real server)."""
    handlers: dict = {}
    register = lambda name, options=None: lambda fn: handlers.setdefault(name, fn)  # noqa: E731
    for module in (next_edit, feedback, commands):
        module.register(SimpleNamespace(feature=register, command=register))
    store, ledger = ListStore(), SuggestionLedger()
    ledger.issue(IssuedSuggestion("c1", "completion", URI, 2, "idth)"))
    ledger.issue(IssuedSuggestion("n1", "next_edit", URI, 2, "w"))
    heard: list[tuple[str, str]] = []
    ledger.listeners.append(lambda sid, outcome: heard.append((sid, outcome)))
    recorder = SessionRecorder(store)
    next_edits = NextEditService(InferenceScheduler(), ledger, recorder)
    return handlers, SimpleNamespace(ledger=ledger, recorder=recorder, documents=DocumentStore(),
                                     next_edits=next_edits, undo_watch=UndoWatch()), store, heard


def _feedback(store) -> list[tuple[str, str]]:
    return [(type(e).__name__, e.suggestion_id) for e in store.events
            if type(e).__name__ in ("SuggestionShown", "SuggestionAccepted", "SuggestionRejected")]


def test_a_completions_id_sent_as_a_next_edits_is_ignored():
    """tact.acceptNextEdit with a completion's id resolved the completion as accepted: the acceptance gate learnt
    an acceptance the user never made, and telemetry counted the completion accepted (a rejection likewise)."""
    handlers, ls, store, heard = _server()
    assert handlers[COMMAND_ACCEPT_NEXT_EDIT](ls, "c1") is False
    handlers[DID_SHOW_NEXT_EDIT](ls, {"id": "c1"})
    handlers[DID_REJECT_NEXT_EDIT](ls, {"id": "c1", "reason": "dismissed"})
    assert heard == [] and _feedback(store) == []
    completion = ls.ledger.get("c1")
    assert completion.outcome is None and not completion.shown
    # the next edit's own feedback goes through
    handlers[DID_SHOW_NEXT_EDIT](ls, {"id": "n1"})
    assert handlers[COMMAND_ACCEPT_NEXT_EDIT](ls, "n1") is True
    assert heard == [("n1", "accepted")]
    assert _feedback(store) == [("SuggestionShown", "n1"), ("SuggestionAccepted", "n1")]


def test_feedback_for_an_id_the_server_does_not_hold_is_still_logged():
    """The ledger is bounded: an id it issued and no longer holds is logged, as for completions. One it never issued
    (an earlier server's, still on screen when this one started) is not."""
    handlers, ls, store, heard = _server()
    gone, gone2 = ls.ledger.new_id(), ls.ledger.new_id()  # issued, then evicted: the ledger holds neither
    assert handlers[COMMAND_ACCEPT_NEXT_EDIT](ls, gone) is True
    handlers[DID_REJECT_NEXT_EDIT](ls, {"id": gone2, "reason": "dismissed"})
    assert _feedback(store) == [("SuggestionAccepted", gone), ("SuggestionRejected", gone2)]
    assert heard == []  # nothing to resolve
    earlier = SuggestionLedger().new_id()
    assert handlers[COMMAND_ACCEPT_NEXT_EDIT](ls, earlier) is False
    handlers[DID_REJECT_NEXT_EDIT](ls, {"id": earlier, "reason": "dismissed"})
    handlers[DID_SHOW_NEXT_EDIT](ls, {"id": "never-issued"})
    assert len(_feedback(store)) == 2 and heard == []
    for bad in [(), (5,), ("",)]:  # no id: the client's mistake, answered Invalid params, nothing logged
        with pytest.raises(JsonRpcInvalidParams):
            handlers[COMMAND_ACCEPT_NEXT_EDIT](ls, *bad)
    assert len(_feedback(store)) == 2


def test_a_next_edits_id_sent_as_a_completions_is_ignored():
    """The reverse: tact.acceptSuggestion, tact/didShowCompletion, tact/didPartiallyAcceptCompletion and
    tact/didRejectCompletion with a next edit's id resolved the next edit (telemetry counted it accepted)."""
    handlers, ls, store, heard = _server()
    assert handlers[COMMAND_ACCEPT_SUGGESTION](ls, "n1") is False
    handlers[DID_SHOW_COMPLETION](ls, {"id": "n1"})
    handlers[DID_PARTIALLY_ACCEPT_COMPLETION](ls, {"id": "n1", "acceptedLength": 1})
    handlers[DID_REJECT_COMPLETION](ls, {"id": "n1", "reason": "dismissed"})
    assert heard == [] and _feedback(store) == []
    assert ls.ledger.get("n1").outcome is None and not ls.ledger.get("n1").shown
    handlers[DID_SHOW_COMPLETION](ls, {"id": "c1"})
    assert handlers[COMMAND_ACCEPT_SUGGESTION](ls, "c1") is True
    assert heard == [("c1", "accepted")]
    assert _feedback(store) == [("SuggestionShown", "c1"), ("SuggestionAccepted", "c1")]
