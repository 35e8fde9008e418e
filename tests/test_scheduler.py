import threading
import time

import pytest

from lsp_server.services.ledger import IssuedSuggestion, SuggestionLedger
from lsp_server.services.scheduler import Cancelled, Deferred, InferenceScheduler


def test_newer_job_for_the_same_key_cancels_the_older_one():
    sched = InferenceScheduler()
    started = threading.Event()
    seen = []

    def slow(token):
        started.set()
        for _ in range(2000):  # until cancelled: a busy machine may take a while to submit the next job
            if token.cancelled:
                raise Cancelled(token.reason)
            time.sleep(0.005)
        return "slow done"

    f1, t1 = sched.submit("doc", slow)
    assert started.wait(30)
    f2, _ = sched.submit("doc", lambda token: seen.append(token.reason) or "fast")
    with pytest.raises(Cancelled) as err:
        f1.result(timeout=5)
    assert err.value.reason == "superseded" and t1.cancelled
    assert f2.result(timeout=5) == "fast" and seen == [""]
    sched.shutdown()


def test_other_documents_are_not_cancelled():
    sched = InferenceScheduler()
    f1, t1 = sched.submit("a", lambda token: (time.sleep(0.05), token.cancelled)[1])
    f2, _ = sched.submit("b", lambda token: token.cancelled)
    assert f1.result(timeout=5) is False and f2.result(timeout=5) is False
    sched.shutdown()


def test_jobs_run_on_one_thread_of_our_own():
    sched = InferenceScheduler()
    names = {sched.submit(None, lambda token: threading.current_thread().name)[0].result(timeout=5) for _ in range(5)}
    assert len(names) == 1 and next(iter(names)).startswith("tact-inference")
    sched.shutdown()


def test_a_deferred_job_goes_on_with_its_rest_on_the_worker_when_its_time_comes():
    sched = InferenceScheduler()
    seen = []

    def rest(token):
        token.check()
        seen.append(threading.current_thread().name)
        return "rest done"

    future, _ = sched.submit("doc", lambda token: Deferred(0.01, rest))
    assert future.result(timeout=5) == "rest done"
    assert len(seen) == 1 and seen[0].startswith("tact-inference")
    sched.shutdown()


def test_a_deferred_job_leaves_the_worker_to_others_and_a_newer_job_ends_it_before_starting():
    """While a job waits out a Deferred the worker runs other jobs; a newer job with its key ends it (its rest sees
    the cancellation) before the newer one starts, as when the wait slept on the worker."""
    sched = InferenceScheduler()
    order = []

    def rest(token):
        if token.cancelled:
            order.append(f"rest {token.reason}")
        token.check()
        order.append("rest ran")

    waiting, _ = sched.submit("doc", lambda token: Deferred(600, rest))
    other, _ = sched.submit("other", lambda token: order.append("other") or "other done")
    assert other.result(timeout=5) == "other done" and not waiting.done()
    newer, _ = sched.submit("doc", lambda token: order.append("newer") or "newer done")
    with pytest.raises(Cancelled) as err:
        waiting.result(timeout=5)
    assert err.value.reason == "superseded"
    assert newer.result(timeout=5) == "newer done"
    assert order == ["other", "rest superseded", "newer"]
    sched.shutdown()


def test_shutdown_ends_deferred_jobs_keyed_or_not_and_none_runs_on():
    sched = InferenceScheduler()
    ran = []

    def rest(token):
        token.check()
        ran.append(token)

    keyed, _ = sched.submit("doc", lambda token: Deferred(600, rest))
    keyless, _ = sched.submit(None, lambda token: Deferred(600, rest))  # no newer job could ever end this one
    assert sched.submit(None, lambda token: "after both deferred")[0].result(timeout=5) == "after both deferred"
    sched.shutdown()
    for future in (keyed, keyless):
        with pytest.raises(Cancelled) as err:
            future.result(timeout=5)
        assert err.value.reason == "shutdown"
    assert ran == []


def test_a_job_that_defers_after_shutdown_ends_instead_of_waiting():
    sched = InferenceScheduler()
    started, release = threading.Event(), threading.Event()

    def job(token):
        started.set()
        release.wait(5)
        return Deferred(600, lambda token: token.check() or "ran after shutdown")

    future, _ = sched.submit(None, job)  # no key: shutdown does not cancel it while it runs
    assert started.wait(5)
    sched.shutdown()
    release.set()
    with pytest.raises(Cancelled) as err:
        future.result(timeout=5)
    assert err.value.reason == "shutdown"


def test_ledger_supersedes_unresolved_suggestions_of_a_document():
    ledger = SuggestionLedger(capacity=3)
    assert ledger.issue(IssuedSuggestion("a", "completion", "u", 1, "x")) is None
    assert ledger.issue(IssuedSuggestion("b", "completion", "u", 2, "y"))[:2] == ("a", "rejected")
    ledger.resolve("b", "accepted")
    assert ledger.issue(IssuedSuggestion("c", "completion", "u", 3, "z")) is None  # b was resolved
    assert ledger.issue(IssuedSuggestion("d", "completion", "other", 1, "w")) is None
    ledger.issue(IssuedSuggestion("e", "completion", "other", 2, "v"))
    assert ledger.get("a") is None and ledger.get("e") is not None  # bounded
