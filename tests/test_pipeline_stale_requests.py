"""The completion request path, a seventh look (2026-12-06): each test failed on the code before its fix."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import sqlite3
import threading
import time

import pytest

from lsp_server.config import Settings
from lsp_server.services.gate import AcceptanceGate
from lsp_server.services.ledger import IssuedSuggestion, SuggestionLedger
from lsp_server.services.positions import Position
from lsp_server.services.scheduler import Cancelled
from tests.test_acceptance_gate import URI, FakeService, _model, _pipeline


def _events(store, suggestion_id: str) -> list[tuple[str, object]]:
    return [(type(e).__name__.removeprefix("Suggestion"), getattr(e, "reason", getattr(e, "stage", None)))
            for e in store.events if getattr(e, "suggestion_id", None) == suggestion_id]


def _wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_a_request_whose_document_closed_while_it_waited_calls_no_model():
    """The job compared the version of a document object that closing leaves as it was: a request queued (or waiting
    out its debounce) when its document closed called the model and logged a generation."""
    service = FakeService()
    pipe, store = _pipeline(AcceptanceGate(), service)  # no acceptance model: the gate is off
    release = threading.Event()
    pipe.scheduler.submit("another document", lambda token: release.wait(10))  # the worker is busy
    pending = pipe.request(URI, Position(3, 12), "invoked", Settings())
    pipe.documents.close(URI)
    release.set()
    with pytest.raises(Cancelled):
        pending.future.result(timeout=30)
    assert service.calls == 0
    assert _events(store, pending.suggestion_id) == [("Requested", None), ("Cancelled", "stale")]

    service = FakeService()
    pipe, store = _pipeline(AcceptanceGate(_model(0.12, 0.95)), service)  # a low stage-1 score: debounced
    pending = pipe.request(URI, Position(3, 12), "automatic",
                           dataclasses.replace(Settings(), acceptance_debounce_max_ms=300))
    _wait_for(lambda: ("Gated", 1) in _events(store, pending.suggestion_id))
    pipe.documents.close(URI)  # during the debounce
    with pytest.raises(Cancelled):
        pending.future.result(timeout=30)
    assert service.calls == 0
    pipe.scheduler.shutdown()


def test_a_request_superseded_while_the_gate_started_logs_no_decision():
    """It was scored and logged with a stage-1 decision after its token was cancelled, and ended as skipped."""
    service = FakeService()
    gate = AcceptanceGate(_model(0.01, 0.9), will_start=True)  # the server's gate before `initialized` starts it
    pipe, store = _pipeline(gate, service)
    settings = dataclasses.replace(Settings(), acceptance_skip_uncertainty=0.2)
    first = pipe.request(URI, Position(3, 12), "automatic", settings)
    _wait_for(lambda: ("Requested", None) in _events(store, first.suggestion_id))  # waiting for the gate
    second = pipe.request(URI, Position(3, 12), "automatic", settings)  # a newer keystroke
    gate._started.set()  # the gate's start finishes
    with pytest.raises(Cancelled):
        first.future.result(timeout=30)
    second.future.result(timeout=30)
    assert _events(store, first.suggestion_id) == [("Requested", None), ("Cancelled", "superseded")]
    pipe.scheduler.shutdown()


def test_a_gate_that_fails_leaves_requests_ungated_with_one_warning(caplog):
    """Any exception in a stage failed the request, invoked ones too: no suggestion at all, on every request."""

    class BrokenGate(AcceptanceGate):
        def before(self, *args, **kwargs):
            raise TypeError("unsupported operand")

    service = FakeService()
    pipe, store = _pipeline(BrokenGate(_model(0.5, 0.9)), service)
    with caplog.at_level(logging.WARNING, logger="tact.pipeline"):
        for trigger in ("invoked", "automatic"):
            pending = pipe.request(URI, Position(3, 12), trigger, Settings())
            assert pending.future.result(timeout=30).text == "x + 1"  # generated and shown
            assert [kind for kind, _ in _events(store, pending.suggestion_id)] == ["Requested", "Generated"]
    assert service.calls == 2 and pipe.counts["gate_failed"] == 2
    assert [r.getMessage() for r in caplog.records].count(
        "acceptance gate: stage 1 failed; this request and any other that fails so go on ungated") == 1
    pipe.scheduler.shutdown()


def test_a_damaged_outcome_time_in_telemetry_is_no_last_outcome(tmp_path):
    """SQLite keeps text in a REAL column and sorts it above every number: the damaged row was read as the latest
    outcome, and its time, a string, failed stage 1 of every request that followed."""
    from telemetry import SuggestionAccepted, SuggestionRejected, open_store
    from telemetry.reader import decided_outcomes

    db = tmp_path / "telemetry.sqlite3"
    with open_store(db) as store:
        store.record(SuggestionAccepted("s", "a", 3, False, ts=1000.0))
        store.record(SuggestionRejected("s", "b", "typedOver", ts=2000.0))
    conn = sqlite3.connect(db)
    conn.execute("UPDATE suggestions SET outcome_at = 'damaged' WHERE id = 'b'")
    conn.commit()
    seen = decided_outcomes(conn)
    conn.close()
    assert (seen["accepted"], seen["rejected"]) == (1, 1)  # still counted
    assert (seen["last_outcome"], seen["last_outcome_at"]) == ("accepted", 1000.0)  # the latest with a time

    gate = AcceptanceGate(_model(0.5, 0.9))
    gate.seed({"accepted": 0, "rejected": 1, "last_outcome": "rejected", "last_outcome_at": "damaged"})
    assert gate.history.rejected == 1 and gate.history.last_outcome_ts is None
    pipe, _ = _pipeline(gate, FakeService())
    assert pipe.request(URI, Position(3, 12), "invoked", Settings()).future.result(timeout=30).text == "x + 1"
    pipe.scheduler.shutdown()


def test_a_superseded_next_edit_that_was_the_oldest_is_not_counted_as_a_completion():
    """The ledger evicted over its capacity before telling its listeners, so the superseded suggestion was gone when
    the server asked its kind, and an unknown one counts as a completion: the gate counted a rejection."""
    from lsp_server.server import TactServer

    server = TactServer()
    try:
        server.ledger = ledger = SuggestionLedger(capacity=3)
        ledger.listeners.append(server._completion_outcome)
        ledger.issue(IssuedSuggestion("ne1", "next_edit", "file:///a.py", 1, "x"))  # the oldest, unresolved
        for n in range(2):
            ledger.issue(IssuedSuggestion(f"c{n}", "completion", f"file:///b{n}.py", 1, "y"))
        assert ledger.issue(IssuedSuggestion("ne2", "next_edit", "file:///a.py", 2, "z")).outcome == "rejected"
        assert (server.gate.history.accepted, server.gate.history.rejected) == (0, 0)
        assert ledger.get("ne1") is None and len(ledger._items) == 3  # evicted after the listeners heard
    finally:
        server.scheduler.shutdown()


def test_over_tcp_a_request_is_served_for_the_version_it_was_made_for():
    """pygls handles the messages of one TCP read without yielding: a didChange read with a completion request was
    applied before the request's handler started, which then read the request's position in the newer text."""
    from pygls.io_ import run_async

    from lsp_server.server import YieldingReader, create_server

    server = create_server()
    server.protocol._initialize_received = True  # as after initialize, which these messages come after
    seen = []

    def request(uri, position, trigger, settings, selected=None):
        doc = server.documents.get(uri)
        seen.append((doc.version, doc.text.split("\n")[position.line]))
        return None

    server.pipeline.request = request

    class Sink:
        def write(self, data) -> None:
            pass

        def close(self) -> None:
            pass

    server.protocol.set_writer(Sink())

    def message(body: dict) -> bytes:
        data = json.dumps({"jsonrpc": "2.0", **body}).encode()
        return b"Content-Length: %d\r\n\r\n" % len(data) + data

    uri = "file:///w/a.py"
    data = b"".join([
        message({"method": "textDocument/didOpen", "params": {"textDocument": {
            "uri": uri, "languageId": "python", "version": 1, "text": "x = foo\n"}}}),
        message({"id": 1, "method": "textDocument/inlineCompletion", "params": {
            "textDocument": {"uri": uri}, "position": {"line": 0, "character": 7}, "context": {"triggerKind": 2}}}),
        message({"method": "textDocument/didChange", "params": {"textDocument": {"uri": uri, "version": 2},
                 "contentChanges": [{"range": {"start": {"line": 0, "character": 0},
                                               "end": {"line": 0, "character": 0}}, "text": "import os\n"}]}}),
    ])

    async def serve() -> None:
        reader = asyncio.StreamReader()
        reader.feed_data(data)  # one read holds all three
        reader.feed_eof()
        await run_async(stop_event=threading.Event(), reader=YieldingReader(reader), protocol=server.protocol)
        await asyncio.sleep(0.2)

    try:
        asyncio.run(serve())
    finally:
        server.scheduler.shutdown()
    assert seen == [(1, "x = foo")]
