"""The acceptance gate's debounce waits off the one inference worker: other jobs run meanwhile, and the request ends
as it did when it slept there (superseded, cancelled by the editor, stale, shut down, or generated at its time)."""

from __future__ import annotations

import dataclasses
import time

import pytest

from lsp_server.config import Settings
from lsp_server.services.gate import AcceptanceGate
from lsp_server.services.positions import Position
from lsp_server.services.scheduler import Cancelled
from tests.test_acceptance_gate import TEXT, URI, FakeService, _model, _pipeline

OTHER = "file:///w/b.py"


def _debounced(max_ms: int = 600_000):
    """A pipeline whose gate debounces automatic requests (stage 1 below the base rate) and shows what it generates."""
    service = FakeService()
    pipe, store = _pipeline(AcceptanceGate(_model(0.12, 0.95)), service)
    pipe.documents.open(OTHER, "python", 1, TEXT)
    pipe.recorder.document_opened(OTHER, 1, "python", TEXT)
    return pipe, store, service, dataclasses.replace(Settings(), acceptance_debounce_max_ms=max_ms)


def _events(store, suggestion_id):
    return [(type(e).__name__[len("Suggestion"):], getattr(e, "reason", getattr(e, "stage", None)))
            for e in store.events if getattr(e, "suggestion_id", None) == suggestion_id]


def _in_debounce(store, pending):
    """Once stage 1 is logged the job is in its debounce (it has nothing else to do before the model)."""
    deadline = time.monotonic() + 60
    while ("Gated", 1) not in _events(store, pending.suggestion_id) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert ("Gated", 1) in _events(store, pending.suggestion_id)
    debounce = [e.details["debounce_ms"] for e in store.events
                if getattr(e, "suggestion_id", None) == pending.suggestion_id and getattr(e, "stage", 0) == 1]
    assert debounce[0] > 1000


def test_another_document_is_completed_while_a_request_waits_out_its_debounce():
    """The debounce slept on the worker, so an invoked completion in another document (or a next edit) waited
    for it to end; now it runs meanwhile, and the debounced request still has not called the model."""
    pipe, store, service, settings = _debounced()
    try:
        waiting = pipe.request(URI, Position(3, 12), "automatic", settings)
        _in_debounce(store, waiting)
        other = pipe.request(OTHER, Position(3, 12), "invoked", settings)
        assert other.future.result(timeout=10).text == "x + 1"
        # a next edit's job, on the key the next-edit service uses, sees no model call made for the waiting request
        job, _ = pipe.scheduler.submit(f"next_edit:{URI}", lambda token: service.calls)
        assert job.result(timeout=10) == 1
        assert not waiting.future.done() and service.calls == 1
        assert _events(store, waiting.suggestion_id) == [("Requested", None), ("Gated", 1)]

        newer = pipe.request(URI, Position(3, 12), "invoked", settings)  # a keystroke: the waiting one is superseded
        with pytest.raises(Cancelled) as err:
            waiting.future.result(timeout=10)
        assert err.value.reason == "superseded"
        assert newer.future.result(timeout=10).text == "x + 1" and service.calls == 2
        assert _events(store, waiting.suggestion_id) == [("Requested", None), ("Gated", 1), ("Cancelled", "superseded")]
        order = [(type(e).__name__, getattr(e, "suggestion_id", None)) for e in store.events]
        assert (order.index(("SuggestionCancelled", waiting.suggestion_id))
                < order.index(("SuggestionRequested", newer.suggestion_id)))  # ended before the newer one started
    finally:
        pipe.scheduler.shutdown()


def test_a_request_the_editor_cancels_during_its_debounce_ends_at_once_without_the_model():
    pipe, store, service, settings = _debounced()
    try:
        waiting = pipe.request(URI, Position(3, 12), "automatic", settings)
        _in_debounce(store, waiting)
        waiting.abandon(pipe.recorder, "client")
        with pytest.raises(Cancelled) as err:
            waiting.future.result(timeout=10)
        assert err.value.reason == "client" and service.calls == 0
        assert _events(store, waiting.suggestion_id) == [("Requested", None), ("Gated", 1), ("Cancelled", "client")]
    finally:
        pipe.scheduler.shutdown()


def test_shutdown_during_a_debounce_cancels_the_request_and_its_future_resolves():
    pipe, store, service, settings = _debounced()
    waiting = pipe.request(URI, Position(3, 12), "automatic", settings)
    _in_debounce(store, waiting)
    pipe.scheduler.shutdown()
    with pytest.raises(Cancelled) as err:
        waiting.future.result(timeout=10)
    assert err.value.reason == "shutdown" and service.calls == 0
    assert _events(store, waiting.suggestion_id) == [("Requested", None), ("Gated", 1), ("Cancelled", "shutdown")]


def test_a_document_changed_during_the_debounce_is_stale_when_it_ends():
    pipe, store, service, settings = _debounced(max_ms=50)
    before = pipe.gate.before

    def before_then_typed(*args, **kwargs):
        decision = before(*args, **kwargs)
        pipe.documents.change(URI, 2, [(None, "# typed\n" + TEXT)])  # typed during the wait, no new request
        return decision

    pipe.gate.before = before_then_typed
    pending = pipe.request(URI, Position(3, 12), "automatic", settings)
    with pytest.raises(Cancelled) as err:
        pending.future.result(timeout=10)
    assert err.value.reason == "stale" and service.calls == 0
    assert [e.details["debounce_ms"] for e in store.events if getattr(e, "stage", 0) == 1][0] > 0
    assert _events(store, pending.suggestion_id) == [("Requested", None), ("Gated", 1), ("Cancelled", "stale")]
    pipe.scheduler.shutdown()


def test_a_debounced_request_is_generated_when_its_wait_ends_and_timed_by_its_request():
    """After the wait the model runs, stage 2 decides, and the gate's time for the suggestion is still the one read
    at the request (a replay pins that clock): the continuation does not read the clock again."""
    pipe, store, service, settings = _debounced(max_ms=50)
    reads = []
    pipe.gate.clock = lambda: reads.append(1000.0 + len(reads)) or reads[-1]
    pending = pipe.request(URI, Position(3, 12), "automatic", settings)
    suggestion = pending.future.result(timeout=10)
    assert suggestion.text == "x + 1" and service.calls == 1
    assert 0 < [e.details["debounce_ms"] for e in store.events if getattr(e, "stage", 0) == 1][0] <= 50
    assert _events(store, pending.suggestion_id) == [("Requested", None), ("Gated", 1), ("Generated", None),
                                                     ("Gated", 2)]
    assert reads == [1000.0] and pending.times["requested"] == 1000.0
    assert pipe.issue(pending, suggestion, URI)
    assert reads == [1000.0]  # "shown" at the request's time too
    pipe.scheduler.shutdown()
