"""Suggestions the server has handed out, so feedback (shown, accepted, rejected) can find them.

Bounded: old entries fall out; feedback for an unknown id is still logged, just not cross-checked.
Listeners (e.g. the acceptance gate) hear every outcome of a known suggestion: ``(id, outcome)``.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

log = logging.getLogger("tact.ledger")


@dataclass
class IssuedSuggestion:
    id: str
    kind: str  # completion | next_edit
    uri: str
    version: int
    text: str
    shown: bool = False
    outcome: str | None = None  # accepted | partially_accepted | rejected
    # UTF-16 units of the selected completion entry the editor's item carries before the suggestion's own text
    # (SelectedCompletion): a partial accept's length counts them, the suggestion does not hold them
    selected_units: int = 0
    # What a classic completion item's edit writes: (line, character, text) from the start of its range. A client
    # that never runs the item's command (Emacs's eglot) is known to have accepted it by an edit that writes it.
    item_edit: tuple[int, int, str] | None = None


class SuggestionLedger:
    def __init__(self, capacity: int = 2000) -> None:
        self._items: OrderedDict[str, IssuedSuggestion] = OrderedDict()
        self._open_by_uri: dict[tuple[str, str], str] = {}  # (kind, uri) -> newest unresolved id
        self._capacity = capacity
        self._lock = threading.Lock()
        self.listeners: list[Callable[[str, str], None]] = []  # called with (suggestion id, outcome)

    def _tell(self, suggestion_id: str, outcome: str) -> None:
        for listener in self.listeners:
            try:
                listener(suggestion_id, outcome)
            except Exception:  # a listener must never break feedback handling
                log.warning("outcome listener failed", exc_info=True)

    @staticmethod
    def new_id() -> str:
        return uuid.uuid4().hex[:16]

    def issue(self, item: IssuedSuggestion) -> str | None:
        """Register a suggestion returned to the editor; returns the id of the unresolved one it supersedes."""
        with self._lock:
            older = self._open_by_uri.get((item.kind, item.uri))
            superseded = None
            if older is not None and older in self._items and self._items[older].outcome is None:
                self._items[older].outcome = "rejected"
                superseded = older
            self._items[item.id] = item
            self._open_by_uri[(item.kind, item.uri)] = item.id
        if superseded:
            self._tell(superseded, "rejected")
        with self._lock:  # after the listeners, which look the superseded one up (its kind): it may be the oldest
            while len(self._items) > self._capacity:
                self._items.popitem(last=False)
        return superseded

    def close_document(self, uri: str) -> list[str]:
        """The document closed: its suggestions still open (one per kind) are rejected, as a newer one rejects them;
        returns their ids. No client ends a suggestion whose document went away, so they stayed open for good."""
        with self._lock:
            closed = []
            for key in [k for k in self._open_by_uri if k[1] == uri]:
                sid = self._open_by_uri.pop(key)
                if sid in self._items and self._items[sid].outcome is None:
                    self._items[sid].outcome = "rejected"
                    closed.append(sid)
        for sid in closed:
            self._tell(sid, "rejected")
        return closed

    def get(self, suggestion_id: str) -> IssuedSuggestion | None:
        return self._items.get(suggestion_id)

    def open_item(self, kind: str, uri: str) -> IssuedSuggestion | None:
        """The newest suggestion of ``kind`` in ``uri`` that nothing has resolved yet, if any."""
        with self._lock:
            item = self._items.get(self._open_by_uri.get((kind, uri), ""))
            return item if item is not None and item.outcome is None else None

    def resolve(self, suggestion_id: str, outcome: str) -> IssuedSuggestion | None:
        with self._lock:
            item = self._items.get(suggestion_id)
            if item is not None and outcome != "partially_accepted":
                item.outcome = outcome
        if item is not None:
            self._tell(suggestion_id, outcome)
        return item

    def mark_shown(self, suggestion_id: str) -> IssuedSuggestion | None:
        item = self._items.get(suggestion_id)
        if item is not None:
            item.shown = True
        return item
