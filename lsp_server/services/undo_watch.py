"""Accepted suggestions taken back: an accept the user undid (Ctrl+Z, ``u``) or deleted soon after.

Without this an accept undone at once counted accepted with all its characters saved, and the acceptance gate's running
rate learnt it as a yes. What the editor sends for an undo differs (VS Code one change, Neovim its smallest diff of the
lines, Emacs one change per undo record), so the test is on the text, not the change: after an accept the watch keeps
the document's text as the accept left it, and a later text is the accept taken back when it is that text with the
accept's own change reversed (an undo; the user may have typed more and undone that first), or with a block removed
that holds all of the accepted text (selected and deleted, its line deleted, or Neovim's undo of the insert that typed
a word and accepted the rest). Edits elsewhere in between make neither true: an accept kept and edited around is not
undone, nor one of which only the last characters were deleted.

The watch knows the accept's own change as the last one-change message of the document before the accept was recorded
(an editor inserts the suggestion and then runs its command; eglot's accept is told by the inserting edit itself).
Pygls-free; the text sync adapter calls it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable

from lsp_server.services.positions import Position
from telemetry.text import chars_in_units

# How long an accept stays watched: an undo comes within seconds; the bound keeps the texts held few and short-lived.
UNDO_WINDOW_S = 60.0
# Accepts watched at once in one document (the newest kept): accepting several and undoing each in turn is told.
MAX_WATCHED_PER_DOCUMENT = 4


@dataclass(frozen=True)
class Change:
    """A document's last change, as applied: ``removed`` replaced by ``inserted`` at ``start`` (an offset in the text
    before it, which is also where ``inserted`` starts after it)."""

    start: int
    removed: str
    inserted: str


@dataclass(frozen=True)
class _Watch:
    suggestion_id: str
    after: str  # the document's text as the accept left it
    begin: int  # where the accepted text starts in ``after``
    end: int  # where it ends
    undo: str | None  # ``after`` with the accept's own change reversed, where it is known
    until: float


class UndoWatch:
    """Per document, the accepts of the last ``UNDO_WINDOW_S`` seconds, and the last change each document had."""

    def __init__(self, window_s: float = UNDO_WINDOW_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self.clock = clock
        self._watches: dict[str, list[_Watch]] = {}
        self._last: dict[str, Change | None] = {}
        self._lock = threading.Lock()

    def changed(self, uri: str, text: str, changes: list[Change]) -> list[str]:
        """``uri``'s text is now ``text`` after one message's ``changes``: the ids of the watched accepts it takes
        back, no longer watched (each is told once)."""
        with self._lock:
            self._last[uri] = changes[0] if len(changes) == 1 else None
            watches = self._watches.get(uri)
            if not watches:
                return []
            now = self.clock()
            kept, undone = [], []
            for w in watches:
                if now > w.until:
                    continue
                if _taken_back(w, text):
                    undone.append(w.suggestion_id)
                else:
                    kept.append(w)
            if kept:
                self._watches[uri] = kept
            else:
                del self._watches[uri]
            return undone

    def accepted(self, uri: str, suggestion_id: str, text: str, begin: int, accepted: str) -> bool:
        """Watch the accept of ``suggestion_id``, whose ``accepted`` text the document ``text`` holds at ``begin``
        (an offset); whether it does (a text moved or changed since is not watched)."""
        if not accepted or not text.startswith(accepted, begin):
            return False
        end = begin + len(accepted)
        with self._lock:
            earlier = [w for w in self._watches.get(uri, []) if w.suggestion_id == suggestion_id]
            last = self._last.get(uri)
            undo = None
            if earlier:  # accepted a word at a time: the first word's reversal takes it all back
                undo = earlier[0].undo
            elif last is not None:
                inserted_end = last.start + len(last.inserted)
                # the change that wrote the accepted text's end (it may also have rewritten what was typed of it)
                if last.start <= end <= inserted_end and last.start < end and text.startswith(last.inserted, last.start):
                    undo = text[:last.start] + last.removed + text[inserted_end:]
            watches = [w for w in self._watches.get(uri, []) if w.suggestion_id != suggestion_id]
            watches.append(_Watch(suggestion_id, text, begin, end, undo, self.clock() + self.window_s))
            self._watches[uri] = watches[-MAX_WATCHED_PER_DOCUMENT:]
        return True

    def forget(self, uri: str) -> None:
        """``uri`` closed: nothing of it is watched."""
        with self._lock:
            self._watches.pop(uri, None)
            self._last.pop(uri, None)

    def watched(self, uri: str) -> list[str]:
        """The ids watched in ``uri`` (for tests and status)."""
        with self._lock:
            return [w.suggestion_id for w in self._watches.get(uri, [])]


def _taken_back(w: _Watch, text: str) -> bool:
    """Whether ``text`` is ``w``'s accept reversed, or ``w.after`` with a block removed that holds all the accepted
    text (the accepted text selected and deleted, its line deleted, or Neovim's undo of the whole insert that typed a
    word and accepted the rest). Lengths first, so that a keystroke costs no comparison of the whole text."""
    if w.undo is not None and len(text) == len(w.undo) and text == w.undo:
        return True
    after = w.after
    if len(text) > len(after) - (w.end - w.begin):  # it did not lose as much as the accepted text
        return False
    a = min(_common_prefix(text, after), w.begin)  # the block removed starts here, at the latest
    rest = len(text) - a
    return len(after) - rest >= w.end and after.endswith(text[a:])


def _common_prefix(x: str, y: str) -> int:
    """How many first characters ``x`` and ``y`` share (slices compared by halves: C speed, not a loop in Python)."""
    lo, hi = 0, min(len(x), len(y))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if x.startswith(y[lo:mid], lo):
            lo = mid
        else:
            hi = mid - 1
    return lo


def watch_accept(watch: UndoWatch, documents, item, units: int | None = None) -> bool:
    """Watch the accept of ``item`` (an ``IssuedSuggestion`` whose text starts at ``item.start``): all of its text, or
    its first ``units`` UTF-16 units (a partial accept); ``documents``: the open documents. Whether it is watched: not
    where its start is unknown (after a selected completion entry), or the document no longer holds the text there."""
    doc = documents.get(item.uri)
    if doc is None or item.start is None:
        return False
    _, index = doc.indexed_snapshot()
    text = index.text
    begin = index.offset_at(Position(*item.start))
    accepted = item.text if units is None else item.text[:chars_in_units(item.text, units)]
    if "\r\n" in text and not text.startswith(accepted, begin):  # a CRLF document holds its line breaks so
        accepted = accepted.replace("\n", "\r\n")
    return watch.accepted(item.uri, item.id, text, begin, accepted)
