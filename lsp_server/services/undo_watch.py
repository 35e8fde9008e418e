"""Accepted suggestions taken back: an accept the user undid (Ctrl+Z, ``u``) or deleted soon after.

Without this an accept undone at once counted accepted with all its characters saved, and the acceptance gate's running
rate learnt a yes from it. After an accept the watch follows where the accepted text is through the document's changes
(each change as the document store applied it, ``AppliedEdit``). The accept is taken back when one change
removes all of what is left of it without writing it again (VS Code's undo, which writes back what was typed of it;
Neovim's ``u``, which removes the whole insert; the text selected and deleted, or cut), or when its last characters
are deleted one by one. A change that writes the accepted text again whole while it is taken back (a redo, the cut
pasted) makes it accepted again. Deleting some of it, editing inside it or around it is neither. Texts are never
compared whole: the cost is the changes' own, and what a watch holds is the accepted text.

The text sync adapter calls ``changed`` for every didChange; the accept feedback calls ``watch_accept``. Pygls-free.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable

from lsp_server.services.documents import AppliedEdit
from lsp_server.services.ledger import UNDONE
from lsp_server.services.positions import Position
from telemetry.text import chars_in_units

# How long an accept stays watched: an undo comes within seconds; the bound keeps the watches few and short-lived.
UNDO_WINDOW_S = 60.0
# Accepts watched at once in one document (the newest kept): accepting several and undoing each in turn is told.
MAX_WATCHED_PER_DOCUMENT = 4
# What ``changed`` tells of a watched accept: taken back (the ledger's outcome ``UNDONE``), or written again.
ACCEPTED_AGAIN = "acceptedAgain"


@dataclass
class _Watch:
    suggestion_id: str
    accepted: str  # the accepted text, as the document held it
    begin: int  # where what is left of it starts in the document now
    end: int  # and ends
    units: int | None  # a partial accept's UTF-16 length (None: the whole suggestion)
    until: float
    undone: bool = False

    def follow(self, change: AppliedEdit) -> str | None:
        """Move the span through ``change``; ``UNDONE`` or ``ACCEPTED_AGAIN`` where it says so, else None."""
        start, removed_end, inserted = change.start_offset, change.end_offset, change.inserted_text
        delta = len(inserted) - len(change.removed_text)
        if self.undone:
            at = inserted.find(self.accepted)
            if at < 0:
                return None
            self.begin, self.end, self.undone = start + at, start + at + len(self.accepted), False
            return ACCEPTED_AGAIN
        # before it (or typed at its start)
        if removed_end <= self.begin and (start < self.begin or not change.removed_text):
            self.begin += delta
            self.end += delta
        elif start >= self.end:  # after it
            return None
        elif start <= self.begin and removed_end >= self.end:  # all of what is left of it, replaced
            at = inserted.find(self.accepted)
            if at >= 0:  # written again in the same change (a line re-indented, a block re-pasted): kept
                self.begin, self.end = start + at, start + at + len(self.accepted)
                return None
            self.undone = True
            return UNDONE
        elif self.begin <= start and removed_end <= self.end:  # inside it
            self.end += delta
        elif start < self.begin:  # its start removed
            self.begin, self.end = start + len(inserted), self.end + delta
        else:  # its end removed
            self.end = start
        if self.end <= self.begin:  # its last characters deleted
            self.undone = True
            return UNDONE
        return None


class UndoWatch:
    """Per document, the accepts of the last ``UNDO_WINDOW_S`` seconds."""

    def __init__(self, window_s: float = UNDO_WINDOW_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self.clock = clock
        self._watches: dict[str, list[_Watch]] = {}
        self._lock = threading.Lock()

    def changed(self, uri: str, changes: list[AppliedEdit]) -> list[tuple[str, str, int | None]]:
        """``uri`` changed by one message's ``changes``, in the order applied: ``(id, UNDONE | ACCEPTED_AGAIN, the
        accept's UTF-16 length, None for a whole one)`` for each watched accept they take back or write again."""
        with self._lock:
            watches = self._watches.get(uri)
            if not watches:
                return []
            now = self.clock()
            watches[:] = [w for w in watches if now <= w.until]
            was = [w.undone for w in watches]
            for change in changes:
                for w in watches:
                    w.follow(change)
            if not watches:
                del self._watches[uri]
            # what one message did, from its first change to its last (Emacs's undo of an eglot item removes the
            # item, writes the text it replaced back and removes that again, in one message)
            return [(w.suggestion_id, UNDONE if w.undone else ACCEPTED_AGAIN, w.units)
                    for w, undone in zip(watches, was) if w.undone != undone]

    def accepted(self, uri: str, suggestion_id: str, text: str, begin: int, accepted: str,
                 units: int | None = None) -> bool:
        """Watch the accept of ``suggestion_id``, whose ``accepted`` text the document ``text`` holds at ``begin`` (an
        offset; ``units``: a partial accept's length); whether it does (a text moved or changed since is not watched).
        A later accept of the same suggestion (the next word of it) replaces its watch."""
        if not accepted or not text.startswith(accepted, begin):
            return False
        with self._lock:
            watches = [w for w in self._watches.get(uri, []) if w.suggestion_id != suggestion_id]
            watches.append(_Watch(suggestion_id, accepted, begin, begin + len(accepted), units,
                                  self.clock() + self.window_s))
            self._watches[uri] = watches[-MAX_WATCHED_PER_DOCUMENT:]
        return True

    def forget(self, uri: str) -> None:
        """``uri`` closed: nothing of it is watched."""
        with self._lock:
            self._watches.pop(uri, None)

    def watched(self, uri: str) -> list[str]:
        """The ids watched in ``uri`` (for tests and status)."""
        with self._lock:
            return [w.suggestion_id for w in self._watches.get(uri, [])]


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
    return watch.accepted(item.uri, item.id, text, begin, accepted, units)
