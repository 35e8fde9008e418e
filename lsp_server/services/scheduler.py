"""The inference executor: one worker thread of our own, latest request per document wins.

pygls reads stdin on its own pool; inference must not compete with it, and a burst of keystrokes
must cost one inference, not fifty. Each job gets a CancelToken that the token loop polls, so
cancellation stops generation mid-way, not only before it starts.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, TypeVar

T = TypeVar("T")


class Cancelled(Exception):
    """The job was cancelled before or while running; `reason` says by whom."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class CancelToken:
    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""

    def cancel(self, reason: str) -> None:
        if not self._event.is_set():
            self.reason = reason
            self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise Cancelled(self.reason)

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``, waking as soon as the token is cancelled; True when cancelled."""
        return self._event.wait(seconds)


class InferenceScheduler:
    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tact-inference")
        self._latest: dict[str, CancelToken] = {}
        self._lock = threading.Lock()

    def submit(self, key: str | None, job: Callable[[CancelToken], T]) -> tuple[Future, CancelToken]:
        """Queue job; a newer job with the same key cancels this one ("superseded")."""
        token = CancelToken()
        if key is not None:
            with self._lock:
                older = self._latest.get(key)
                if older is not None:
                    older.cancel("superseded")
                self._latest[key] = token

        def run() -> T:
            try:
                return job(token)  # the job checks the token first: it may want to log why it skips
            finally:
                if key is not None:
                    with self._lock:
                        if self._latest.get(key) is token:
                            del self._latest[key]

        return self._pool.submit(run), token

    def shutdown(self) -> None:
        with self._lock:
            for token in self._latest.values():
                token.cancel("shutdown")
        self._pool.shutdown(wait=False, cancel_futures=True)
