"""Synthetic telemetry databases for report and replay-input tests: written through the real store, no server."""

from __future__ import annotations

import math
import queue
import random
import re
import sqlite3
from pathlib import Path

import telemetry.schema as schema
from telemetry import (
    DocumentOpened,
    EditEvent,
    SessionEnded,
    SessionStarted,
    SuggestionAccepted,
    SuggestionCancelled,
    SuggestionGated,
    SuggestionGenerated,
    SuggestionRejected,
    SuggestionRequested,
    SuggestionShown,
    TelemetryStore,
)
from telemetry.lsp_client import LspClient
from telemetry.simulate import NEXT_EDIT

# A notebook as VS Code names it and its cells' documents, for the notebook telemetry and replay tests.
NOTEBOOK = "file:///w/nb.ipynb"
CELL1 = "vscode-notebook-cell:/w/nb.ipynb#W0sZmlsZQ%3D%3D"
CELL2 = "vscode-notebook-cell:/w/nb.ipynb#W1sZmlsZQ%3D%3D"
CELL3 = "vscode-notebook-cell:/w/nb.ipynb#W2sZmlsZQ%3D%3D"
JUPYTER = "jupyter-notebook"



class ListStore:
    """A telemetry store that keeps the events in memory, for service tests without a database."""

    def __init__(self) -> None:
        self.events: list = []

    def record(self, event) -> bool:
        self.events.append(event)
        return True

    def close(self) -> None:
        pass


def write_synthetic_db(path: Path, *, seed: int = 0, requests: int = 300, minutes: float = 10.0,
                       policy: str = "speculative", threshold: float = 0.3, skip_rate: float = 0.15,
                       crashed: bool = False, session_id: str | None = None) -> str:
    """One session of ``requests`` suggestion lifecycles spread over ``minutes``, with stage-1 skips, stage-2
    scores (acceptance more likely at high scores), latencies and layer counts. Returns the session id.
    ``crashed`` leaves out the end of the session, as a server that died would."""
    rng = random.Random(seed)
    sid = session_id or f"synthetic{seed:04d}"
    t0 = 1_700_000_000.0 + seed * 10_000
    uri = "file:///synthetic/a.py"
    with TelemetryStore(path) as store:
        store.record(SessionStarted(sid, "synthetic", "1", "0.1.0", {"decodingPolicy": policy},
                                    {"completion": {"model": "synthetic", "modelDir": "/nonexistent"}}, ts=t0))
        store.record(DocumentOpened(sid, uri, 1, "python", "", ts=t0))
        for i in range(requests):
            ts = t0 + 60.0 * minutes * (i + rng.random()) / requests
            s = f"{sid}-{i:05d}"
            store.record(SuggestionRequested(sid, s, "completion", uri, i + 1, 0, i, ts=ts))
            store.record(EditEvent(sid, uri, i + 2, 0, i, 0, i, "", "x", ts - 0.1, ts=ts - 0.05))
            if rng.random() < skip_rate:
                store.record(SuggestionGated(sid, s, 1, "skip", rng.random() * 0.1, 0.05, "gate-1", ts=ts))
                continue
            store.record(SuggestionGated(sid, s, 1, "generate", 0.5, 0.05, "gate-1", ts=ts))
            if rng.random() < 0.05:
                store.record(SuggestionCancelled(sid, s, "superseded", ts=ts + 0.01))
                continue
            latency = rng.lognormvariate(math.log(40 if policy == "full" else 25), 0.35)
            layers = 4.0 if policy == "full" else rng.uniform(1.5, 4.0)
            text = "x" * rng.randint(3, 30)
            store.record(SuggestionGenerated(sid, s, text, "synthetic", policy, latency, len(text) // 3, layers,
                                             "stop", {"mean_logprob": -rng.random() * 3}, ts=ts + latency / 1000))
            quality = rng.random()
            score = min(1.0, max(0.0, quality + rng.gauss(0, 0.2)))
            show = score >= threshold
            store.record(SuggestionGated(sid, s, 2, "show" if show else "hide", score, threshold, "gate-2",
                                         ts=ts + latency / 1000))
            if not show:
                continue
            store.record(SuggestionShown(sid, s, ts=ts + 0.05))
            if rng.random() < quality * 0.8:
                store.record(SuggestionAccepted(sid, s, len(text), False, ts=ts + 0.5))
            else:
                store.record(SuggestionRejected(sid, s, "typedOver", ts=ts + 0.3))
        if not crashed:
            store.record(SessionEnded(sid, "shutdown", ts=t0 + 60.0 * minutes + 1))
    return sid


def write_version_1_db(path: Path) -> None:
    """A database as schema version 1 made it (its DDL, stamped 1), holding one session and one document."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
        conn.executescript(schema._V1)
        conn.execute("INSERT INTO sessions (id, started_at, client_name) VALUES ('old', 1.0, 'vscode')")
        conn.execute("INSERT INTO documents (seq, session_id, uri, version, language_id, ts, kind, text)"
                     " VALUES (1, 'old', 'file:///a.py', 1, 'python', 1.0, 'open', 'x = 1\n')")
        conn.commit()
    finally:
        conn.close()


class CountingBreaks:
    """Stands in for ``telemetry.text``'s line-break pattern and counts the characters its scans read: work per
    edit counted, not timed."""

    def __init__(self, pattern: re.Pattern[str]) -> None:
        self.pattern = pattern
        self.scanned = 0

    def finditer(self, text: str, *args: int):
        self.scanned += len(text)
        return self.pattern.finditer(text, *args)

    def search(self, text: str, *args: int):
        self.scanned += len(text) - (args[0] if args else 0)  # an upper bound: it stops at the first break
        return self.pattern.search(text, *args)


class WireClient(LspClient):
    """An LspClient whose messages are kept (``sent``: (method, params)) instead of sent, for driving a replay without
    a server: ``tact/nextEdit`` is answered with ``edits``, every other request with no items."""

    def __init__(self, edits: list[dict] | None = None) -> None:
        self.sent: list[tuple[str, dict]] = []
        self.edits = edits or []

    def _send(self, message: dict) -> None:
        self.sent.append((message["method"], message["params"]))

    def request_async(self, method, params=None):
        self._send({"method": method, "params": params})
        answer: queue.Queue = queue.Queue()
        answer.put({"result": {"edits": self.edits} if method == NEXT_EDIT else {"items": []}})
        return 0, answer
