import threading
import time

import pytest

from lsp_server.services.ledger import IssuedSuggestion, SuggestionLedger
from lsp_server.services.scheduler import Cancelled, InferenceScheduler


def test_newer_job_for_the_same_key_cancels_the_older_one():
    sched = InferenceScheduler()
    started = threading.Event()
    seen = []

    def slow(token):
        started.set()
        for _ in range(200):
            if token.cancelled:
                raise Cancelled(token.reason)
            time.sleep(0.005)
        return "slow done"

    f1, t1 = sched.submit("doc", slow)
    assert started.wait(2)
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


def test_ledger_supersedes_unresolved_suggestions_of_a_document():
    ledger = SuggestionLedger(capacity=3)
    assert ledger.issue(IssuedSuggestion("a", "completion", "u", 1, "x")) is None
    assert ledger.issue(IssuedSuggestion("b", "completion", "u", 2, "y")) == "a"
    ledger.resolve("b", "accepted")
    assert ledger.issue(IssuedSuggestion("c", "completion", "u", 3, "z")) is None  # b was resolved
    assert ledger.issue(IssuedSuggestion("d", "completion", "other", 1, "w")) is None
    ledger.issue(IssuedSuggestion("e", "completion", "other", 2, "v"))
    assert ledger.get("a") is None and ledger.get("e") is not None  # bounded
