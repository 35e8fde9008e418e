"""The inference executor: one worker thread of our own, latest request per document wins.

pygls reads stdin on its own pool; inference must not compete with it, and a burst of keystrokes
must cost one inference, not fifty. Each job gets a CancelToken that the token loop polls, so
cancellation stops generation mid-way, not only before it starts. A job that has to wait (the
acceptance gate's debounce) returns a Deferred instead of sleeping, so the worker serves other
jobs meanwhile.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

T = TypeVar("T")
log = logging.getLogger("tact.scheduler")


class Cancelled(Exception):
    """The job was cancelled before or while running; `reason` says by whom."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class CancelToken:
    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], None]] = []
        self.reason = ""

    def cancel(self, reason: str) -> None:
        with self._lock:
            if self._event.is_set():
                return
            self.reason = reason
            self._event.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()

    def on_cancel(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` on the cancelling thread when the token is cancelled (now, if it already is)."""
        with self._lock:
            if not self._event.is_set():
                self._callbacks.append(callback)
                return
        callback()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise Cancelled(self.reason)

    def wait(self, ready: Callable[[float], bool], timeout: float, step: float = 0.05) -> bool:
        """Call ``ready(step)``, a wait of at most ``step`` seconds for something (a model's load), until it gives
        True or ``timeout`` seconds pass; raises Cancelled once the token is: a request superseded while it waited
        held the one worker to the wait's end, then was logged failed."""
        end = time.monotonic() + timeout
        while True:
            self.check()
            ready_now = ready(max(0.0, min(step, end - time.monotonic())))
            self.check()  # cancelled during the last step: it ends here whatever the wait found
            if ready_now:
                return True
            if time.monotonic() >= end:
                return False


@dataclass(frozen=True)
class Deferred:
    """What a job returns to go on with ``rest`` after ``seconds``, the worker free meanwhile; the job's future
    resolves to what ``rest`` returns. A cancellation ends the wait at once: ``rest`` then runs on the cancelling
    thread, so a superseded job ends before its successor starts, as when it slept on the worker. ``rest`` checks
    the token first, as every job does (it may want to log why it stops)."""

    seconds: float
    rest: Callable[[CancelToken], Any]


class InferenceScheduler:
    def __init__(self, after_job: Callable[[], Any] | None = None) -> None:
        """``after_job``: called on the worker when a job has ended there and its future is resolved (housekeeping
        such as giving freed heap back, out of the request's own time); never on a thread that cancelled a deferred
        job, such as the event loop's."""
        self._after_job = after_job
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tact-inference")
        self._latest: dict[str, CancelToken] = {}
        self._deferred: set[CancelToken] = set()  # jobs waiting out a Deferred, keyed or not: shutdown cancels them
        self._closed = False
        self._lock = threading.Lock()

    def submit(self, key: str | None, job: Callable[[CancelToken], T]) -> tuple[Future, CancelToken]:
        """Queue job; a newer job with the same key cancels this one ("superseded")."""
        token = CancelToken()
        older = None
        if key is not None:
            with self._lock:
                older = self._latest.get(key)
                self._latest[key] = token
        if older is not None:
            older.cancel("superseded")  # outside the lock: a deferred job's rest runs here
        future: Future = Future()
        self._queue(key, token, job, future, first=True)
        return future, token

    def _queue(self, key: str | None, token: CancelToken, step: Callable[[CancelToken], Any], future: Future,
               first: bool) -> None:
        """Run one step of a job on the worker (``first``: the job itself, else the rest of a Deferred)."""

        def run() -> None:
            if first and not future.set_running_or_notify_cancel():
                self._forget(key, token)
                return
            self._step(key, token, step, future)
            if future.done():  # the job ended here (not deferred): housekeeping, on the worker only
                self._ended()

        def dropped(queued: Future) -> None:  # shutdown cancelled it before it ran
            if queued.cancelled():
                if first:
                    self._forget(key, token)
                    future.cancel()
                    future.set_running_or_notify_cancel()  # as an executor does: else wait() never counts it done
                else:
                    self._shut_out(key, token, step, future)

        try:
            queued = self._pool.submit(run)
        except RuntimeError:  # shut down between a Deferred's timer and this
            if first:
                raise
            self._shut_out(key, token, step, future)
            return
        queued.add_done_callback(dropped)

    def _shut_out(self, key: str | None, token: CancelToken, step: Callable[[CancelToken], Any],
                  future: Future) -> None:
        """The rest of a Deferred whose wait had ended, shut out of the worker by shutdown: it runs here, its token
        cancelled, and ends as on any cancellation. Resolving the future alone skipped the rest, and with it the
        job's record of why it stopped (a debounced request was left requested, never ended). It may run under the
        pool's shutdown lock: a rest must not submit, as none should once its token is cancelled."""
        token.cancel("shutdown")
        self._step(key, token, step, future)

    def _step(self, key: str | None, token: CancelToken, step: Callable[[CancelToken], Any], future: Future) -> None:
        try:
            result = step(token)  # the job checks the token first: it may want to log why it skips
        except BaseException as exc:
            self._forget(key, token)
            future.set_exception(exc)
            return
        if isinstance(result, Deferred):
            self._defer(key, token, result, future)
        else:
            self._forget(key, token)
            future.set_result(result)

    def _ended(self) -> None:
        if self._after_job is not None:
            try:
                self._after_job()
            except Exception:  # housekeeping never fails a job (its future is resolved already)
                log.warning("after-job hook failed", exc_info=True)

    def _defer(self, key: str | None, token: CancelToken, deferred: Deferred, future: Future) -> None:
        """Go on with ``deferred.rest`` on the worker when its time comes, or at once where the token is cancelled."""
        claimed = threading.Lock()  # the timer and a cancellation may both come: the rest runs once

        def due() -> None:
            if claimed.acquire(blocking=False):
                timer.cancel()
                self._queue(key, token, deferred.rest, future, first=False)

        def cancelled() -> None:
            if claimed.acquire(blocking=False):
                timer.cancel()
                self._step(key, token, deferred.rest, future)

        with self._lock:
            closed = self._closed
            if not closed:
                self._deferred.add(token)
        if closed:
            token.cancel("shutdown")  # no step runs after shutdown: the rest runs now and sees why
        timer = threading.Timer(max(deferred.seconds, 0.0), due)
        timer.daemon = True
        timer.start()
        token.on_cancel(cancelled)

    def cancel(self, key: str, reason: str) -> None:
        """Cancel the newest job with ``key``, queued, waiting or running (its document changed or closed: its answer
        would be dropped, and the one worker would finish it before any other document's request)."""
        with self._lock:
            token = self._latest.get(key)
        if token is not None:
            token.cancel(reason)  # outside the lock, as in `submit`

    def _forget(self, key: str | None, token: CancelToken) -> None:
        """The job ended: a newer one with its key is no longer to cancel it."""
        with self._lock:
            self._deferred.discard(token)
            if key is not None and self._latest.get(key) is token:
                del self._latest[key]

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
            tokens = [*self._latest.values(), *self._deferred]
        for token in tokens:
            token.cancel("shutdown")  # a deferred job ends here, its future resolved: it never runs again
        self._pool.shutdown(wait=False, cancel_futures=True)
