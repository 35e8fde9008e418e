"""A completion request against shutdown and errors at each stage: every request ends once in telemetry, and every
future it waits on resolves (in-process, with a fake code model)."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from concurrent.futures import wait
from types import SimpleNamespace

import pytest

from lsp_server.config import Settings
from lsp_server.features.suggest import suggest
from lsp_server.services.gate import AcceptanceGate
from lsp_server.services.positions import Position
from lsp_server.services.scheduler import Cancelled, InferenceScheduler
from tests.test_acceptance_gate import URI, FakeService, _model, _pipeline
from tests.test_debounce import _debounced, _events


def test_a_debounced_request_whose_wait_ended_behind_another_job_is_logged_cancelled_at_shutdown():
    """The wait ended while the worker ran another job, so the rest of the request was queued behind it; shutdown
    dropped the queued rest and only resolved its future: the request was left requested, with no end logged."""
    pipe, store, service, settings = _debounced(max_ms=50)
    sched = pipe.scheduler
    submit, submitted, rest_queued = sched._pool.submit, [], threading.Event()

    def spy(fn):  # the request, the other job, then the request's rest when its wait ends
        submitted.append(fn)
        if len(submitted) == 3:
            rest_queued.set()
        return submit(fn)

    sched._pool.submit = spy
    pending = pipe.request(URI, Position(3, 12), "automatic", settings)
    started, release = threading.Event(), threading.Event()
    other, _ = sched.submit(None, lambda token: started.set() or release.wait(10))
    try:
        assert started.wait(10) and rest_queued.wait(10)
        assert _events(store, pending.suggestion_id) == [("Requested", None), ("Gated", 1)]
        sched.shutdown()
    finally:
        release.set()
    with pytest.raises(Cancelled) as err:
        pending.future.result(timeout=10)
    assert err.value.reason == "shutdown" and service.calls == 0
    assert _events(store, pending.suggestion_id) == [("Requested", None), ("Gated", 1), ("Cancelled", "shutdown")]
    assert other.result(timeout=10) is True


class Interrupted(BaseException):
    """An error that is not an Exception, as a library may raise (asyncio.CancelledError is one too)."""


@pytest.mark.parametrize("debounce_ms", [0, 50])
def test_a_model_raising_a_base_exception_fails_the_request_which_is_answered_and_the_worker_goes_on(debounce_ms):
    """Only Exceptions were logged as failed: the request was left requested with no end, and the error went up
    through suggest() to pygls, whose handler catches Exceptions alone, so the editor's request was never answered."""
    if debounce_ms:
        pipe, store, service, settings = _debounced(max_ms=debounce_ms)
    else:
        service = FakeService()
        pipe, store = _pipeline(AcceptanceGate(_model(0.9, 0.95)), service)
        settings = Settings()
    ls = SimpleNamespace(completions=SimpleNamespace(degraded=False), pipeline=pipe, settings=settings,
                         recorder=pipe.recorder)
    complete = service.complete

    def interrupted(*args):
        raise Interrupted("decoder torn down")

    service.complete = interrupted
    queued = []
    request = pipe.request
    pipe.request = lambda *args: queued.append(request(*args)) or queued[-1]
    try:
        assert asyncio.run(suggest(ls, URI, 3, 12, "automatic")) is None
        events = _events(store, queued[0].suggestion_id)
        assert events[0] == ("Requested", None) and events[-1] == ("Failed", None)
        assert [e.error for e in store.events if type(e).__name__ == "SuggestionFailed"] == [
            "Interrupted: decoder torn down"]
        service.complete = complete
        found = asyncio.run(suggest(ls, URI, 3, 12, "invoked"))
        assert found is not None and found[1].text == "x + 1"
    finally:
        pipe.scheduler.shutdown()


def test_jobs_shutdown_dropped_before_they_ran_count_as_done_for_wait():
    """Shutdown cancelled their futures without notifying waiters, as an executor does: concurrent.futures.wait
    (and as_completed) never counted them done, so a caller waiting on them without a timeout waited forever."""
    sched = InferenceScheduler()
    started, release = threading.Event(), threading.Event()
    running, _ = sched.submit(None, lambda token: (started.set(), release.wait(10), "ran")[2])
    assert started.wait(10)
    queued = [sched.submit(key, lambda token: "ran after shutdown")[0] for key in ("a", "b", None)]
    sched.shutdown()
    release.set()
    done, not_done = wait(queued, timeout=5)
    assert not not_done and all(future.cancelled() for future in done)
    assert running.result(timeout=10) == "ran"
