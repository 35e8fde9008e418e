"""What a long session leaves behind in the server: nothing per keystroke."""

from __future__ import annotations

import json
import logging
import platform
import sys
import threading
import time

import pytest

from lsp_server.server import create_server
from lsp_server.services.memory import HeapTrimmer, glibc_malloc_trim
from lsp_server.services.scheduler import Cancelled, Deferred, InferenceScheduler


def _send(protocol, message: dict) -> None:
    """One message as pygls reads it off the wire: decoded with the protocol's hook, then handled."""
    protocol.handle_message(json.loads(json.dumps({"jsonrpc": "2.0", **message}), object_hook=protocol.structure_message))


def test_text_sync_notifications_leave_no_future_behind(tmp_path):
    """pygls 2.1 kept every notification's future (one per didChange) for as long as the server ran."""
    server = create_server(model_path=str(tmp_path / "no-model"), database=str(tmp_path / "t.sqlite3"))
    server.protocol._initialize_received = True  # as after initialize, which these messages come after
    protocol = server.protocol
    uri = "file:///soak.py"
    _send(protocol, {"method": "textDocument/didOpen",
                     "params": {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": "x = 1\n"}}})
    for version in range(2, 302):
        _send(protocol, {"method": "textDocument/didChange",
                         "params": {"textDocument": {"uri": uri, "version": version},
                                    "contentChanges": [{"range": {"start": {"line": 1, "character": 0},
                                                                  "end": {"line": 1, "character": 0}}, "text": "y"}]}})
    assert server.documents.get(uri).text == "x = 1\n" + "y" * 300  # the handlers ran
    _send(protocol, {"method": "textDocument/didClose", "params": {"textDocument": {"uri": uri}}})
    assert server.documents.get(uri) is None
    assert len(protocol._request_futures) == 0


def test_heap_trimmer_trims_at_most_once_a_period():
    calls, now = [], [100.0]
    trimmer = HeapTrimmer(every_s=5.0, trim=lambda pad: calls.append(pad) or 1, clock=lambda: now[0])
    assert not trimmer.after_request()  # the server just started: nothing freed to give back yet
    now[0] += 5.0
    assert trimmer.after_request() and calls == [0]
    now[0] += 4.9
    assert not trimmer.after_request()
    now[0] += 0.2
    assert trimmer.after_request() and trimmer.trims == 2


def test_heap_trimmer_that_fails_stops_trying_and_serving_goes_on():
    now = [0.0]

    def broken(pad):
        raise OSError("no")

    trimmer = HeapTrimmer(every_s=1.0, trim=broken, clock=lambda: now[0])
    now[0] = 2.0
    assert not trimmer.after_request() and not trimmer.available
    now[0] = 4.0
    assert not trimmer.after_request()


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                    reason="malloc_trim is glibc's; elsewhere HeapTrimmer does nothing (the tests above)")
def test_glibc_trim_is_found_on_glibc_linux_and_runs():
    trim = glibc_malloc_trim()
    assert trim is not None
    assert trim(0) in (0, 1)  # 1: memory was released, 0: none was


def test_scheduler_calls_its_hook_after_each_job_that_ends():
    ended = []
    scheduler = InferenceScheduler(after_job=lambda: ended.append(threading.current_thread().name))
    try:
        ok, _ = scheduler.submit("a", lambda token: 1)
        assert ok.result(5) == 1

        def fails(token):
            raise ValueError("job failed")

        bad, _ = scheduler.submit("b", fails)
        try:
            bad.result(5)
        except ValueError:
            pass
        deferred, _ = scheduler.submit("c", lambda token: Deferred(0.01, lambda t: 2))
        assert deferred.result(5) == 2
        for _ in range(100):  # the hook runs after the future resolves
            if len(ended) == 3:
                break
            time.sleep(0.01)
        assert len(ended) == 3 and all(name.startswith("tact-inference") for name in ended)  # a deferred job once
    finally:
        scheduler.shutdown()


def test_scheduler_hook_that_raises_is_logged_and_fails_no_job(caplog):
    def hook():
        raise RuntimeError("housekeeping broke")

    scheduler = InferenceScheduler(after_job=hook)
    try:
        with caplog.at_level(logging.WARNING, logger="tact.scheduler"):
            first, _ = scheduler.submit("a", lambda token: "one")
            second, _ = scheduler.submit("b", lambda token: "two")
            assert (first.result(5), second.result(5)) == ("one", "two")
            for _ in range(100):  # the hook runs after each future resolves
                if len([r for r in caplog.records if "after-job hook failed" in r.getMessage()]) == 2:
                    break
                time.sleep(0.01)
        assert len([r for r in caplog.records if "after-job hook failed" in r.getMessage()]) == 2
    finally:
        scheduler.shutdown()


def test_scheduler_hook_never_runs_on_the_thread_that_cancels_a_deferred_job():
    """A newer keystroke cancels a debounced job on the event loop's thread, and its rest ends there: a trim of the
    heap there would hold up the loop."""
    threads = []
    scheduler = InferenceScheduler(after_job=lambda: threads.append(threading.current_thread().name))
    try:
        waiting, _ = scheduler.submit("doc", lambda token: Deferred(30, lambda t: t.check()))
        time.sleep(0.1)  # the worker has run the job's first step: it waits out its Deferred
        newer, _ = scheduler.submit("doc", lambda token: "newer")  # cancels the first here, on this thread
        started = time.monotonic()
        with pytest.raises(Cancelled, match="superseded"):  # at once: not the 30 s its Deferred waits
            waiting.result(5)
        assert time.monotonic() - started < 4
        assert newer.result(5) == "newer"
        for _ in range(100):
            if threads:
                break
            time.sleep(0.01)
        time.sleep(0.05)
        assert threads and all(name.startswith("tact-inference") for name in threads), threads
    finally:
        scheduler.shutdown()
