"""Giving the heap that requests free back to the system.

Requests allocate and free their buffers outside Python (onnxruntime runs without its memory arena: one arena per
graph cost ~200 MB), and glibc keeps freed heap pages mapped. The server's RSS grew from 244 to 291 MB
over 4,000 requests, towards the 300 MB target, and a day of typing would pass it; ``malloc_trim`` hands those
pages back in a few milliseconds. Elsewhere than glibc (macOS, musl) there is nothing to call and nothing is done.
"""

from __future__ import annotations

import ctypes
import logging
import threading
import time
from typing import Callable

log = logging.getLogger("tact.memory")

TRIM_EVERY_S = 5.0  # at most one trim this often: a trim costs 1-9 ms, and the heap refills within seconds of typing


def glibc_malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError, TypeError):  # TypeError: Windows takes no None
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


class HeapTrimmer:
    """Calls ``trim`` after a request at most every ``every_s`` seconds (it runs on the thread that finished the
    request, after its answer is on its way)."""

    def __init__(self, every_s: float = TRIM_EVERY_S, trim: Callable[[int], int] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._trim = trim if trim is not None else glibc_malloc_trim()
        self._every_s = every_s
        self._clock = clock
        self._last = clock()
        self._lock = threading.Lock()
        self.trims = 0

    @property
    def available(self) -> bool:
        return self._trim is not None

    def after_request(self) -> bool:
        """Trim when the last trim is ``every_s`` old; whether it did."""
        if self._trim is None:
            return False
        with self._lock:
            now = self._clock()
            if now - self._last < self._every_s:
                return False
            self._last = now
        try:
            self._trim(0)
        except Exception:  # never let housekeeping break serving
            log.warning("malloc_trim failed; not trying again", exc_info=True)
            self._trim = None
            return False
        self.trims += 1
        return True
