"""Accepted suggestions taken back: an accept the user undid (Ctrl+Z, ``u``) or deleted soon after.

Without this an accept undone at once counted accepted with all its characters saved, and the acceptance gate's running
rate learnt a yes from it. After an accept the watch follows where the accepted text is through the document's changes
(each change as the document store applied it, ``AppliedEdit``). The accept is taken back when one change
removes all of what is left of it without writing it again (VS Code's undo, which writes back what was typed of it;
Neovim's ``u``, which removes the whole insert; the text selected and deleted, or cut), or when its last characters
are deleted one by one. A change that writes the accepted text again whole while it is taken back (a redo, the cut
pasted) makes it accepted again. Deleting some of it, editing inside it or around it is neither. Texts are never
compared whole: the cost is the changes' own, and what a watch holds is the accepted text.

An accept not taken back is kept, and how much of it is measured as well: a watch holds where each run of the
accepted text still is (``_Watch.pieces``), moved through the same changes. Characters of it deleted or written over
are lost, text typed inside it is not counted, so what an accept saved is what survived it, not all it wrote. When a
watch ends (its window passed, seen at the document's next change; its document closed; the server's end; a newer
accept pushed it out) its figures wait in ``ended`` as a ``Kept``; one taken back has none (it saved nothing).

The text sync adapter calls ``changed`` for every didChange and ``forget`` at a close, the server's end calls
``end``; the accept feedback calls ``watch_accept``. Pygls-free.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

from lsp_server.services.documents import AppliedEdit
from lsp_server.services.ledger import UNDONE
from lsp_server.services.positions import Position
from telemetry.text import chars_in_units, utf16_len

# How long an accept stays watched: an undo comes within seconds; the bound keeps the watches few and short-lived.
UNDO_WINDOW_S = 60.0
# Accepts watched at once in one document (the newest kept): accepting several and undoing each in turn is told.
MAX_WATCHED_PER_DOCUMENT = 4
# What ``changed`` tells of a watched accept: taken back (the ledger's outcome ``UNDONE``), or written again.
ACCEPTED_AGAIN = "acceptedAgain"
# How long a next edit's accept heard before the change that applies it waits for that change: eglot sends the
# command at once and the didChange with its next flush (about 0.5 s later), so such accepts were never watched.
AWAIT_S = 5.0


class Kept(NamedTuple):
    """What survived of an accept when its watch ended, in UTF-16 units as accepted lengths are counted (a CRLF
    document's line break counts one, as in the suggestion's text)."""

    suggestion_id: str
    kept: int  # units of the accepted text still in the document
    accepted: int  # units accepted


@dataclass
class _Watch:
    suggestion_id: str
    accepted: str  # the accepted text, as the document held it
    begin: int  # where what is left of it starts in the document now
    end: int  # and ends
    units: int | None  # a partial accept's UTF-16 length (None: the whole suggestion)
    until: float
    undone: bool = False
    crlf: bool = False  # ``accepted`` holds the suggestion's line breaks as the document's "\r\n"
    # a next edit's: what its range held before it (its undo writes that back, which may hold ``accepted``: `width`
    # renamed `w`); None for a completion, whose undo removes it
    replaced: str | None = None
    # the runs of ``accepted`` still in the document, in order, each (where it starts there, where it starts in
    # ``accepted``, its length): what ``begin``..``end`` holds less what was typed inside it
    pieces: list[tuple[int, int, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._whole_at(self.begin)

    def _whole_at(self, begin: int) -> None:
        """All of the accepted text is at ``begin`` (its accept, or written again whole)."""
        self.begin, self.end, self.pieces = begin, begin + len(self.accepted), [(begin, 0, len(self.accepted))]

    def units_of(self, start: int, length: int) -> int:
        """UTF-16 units of ``accepted[start:start + length]``, a document's "\r\n" counted as the "\n" accepted."""
        units = utf16_len(self.accepted[start:start + length])
        if self.crlf:
            units -= self.accepted.count("\r\n", start, start + length + 1)
        return units

    def kept(self) -> Kept:
        return Kept(self.suggestion_id, sum(self.units_of(at, n) for _, at, n in self.pieces),
                    self.units_of(0, len(self.accepted)))

    def follow(self, change: AppliedEdit) -> str | None:
        """Move the span through ``change``; ``UNDONE`` or ``ACCEPTED_AGAIN`` where it says so, else None."""
        start, removed_end, inserted = change.start_offset, change.end_offset, change.inserted_text
        delta = len(inserted) - len(change.removed_text)
        if self.replaced is not None:  # a next edit: its undo and redo swap what it replaced and its text in place
            if self._swaps(change, self.replaced if self.undone else self.accepted,
                           self.accepted if self.undone else self.replaced):
                self.undone = not self.undone
                if not self.undone:
                    self._whole_at(self.begin)
                    return ACCEPTED_AGAIN
                self.end = self.begin + len(self.replaced)
                return UNDONE
            if self.undone:  # what it replaced is back: followed as it moves, written over it is a redo
                if removed_end <= self.begin and (start < self.begin or not change.removed_text):
                    self.begin, self.end = self.begin + delta, self.end + delta
                return None
        if self.undone:
            at = inserted.find(self.accepted)
            if at < 0:
                return None
            self._whole_at(start + at)
            self.undone = False
            return ACCEPTED_AGAIN
        self._follow_pieces(change)
        # before it (or typed at its start)
        if removed_end <= self.begin and (start < self.begin or not change.removed_text):
            self.begin += delta
            self.end += delta
        elif start >= self.end:  # after it
            return None
        elif start <= self.begin and removed_end >= self.end:  # all of what is left of it, replaced
            at = inserted.find(self.accepted)
            if at >= 0:  # written again in the same change (a line re-indented, a block re-pasted): kept
                self._whole_at(start + at)
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

    def swapped_in(self, text: str, lo: int, hi: int) -> None:
        """A next edit's undo or redo made of several changes (``_swaps`` reads one), read from the document ``text``
        after them: ``lo``..``hi``, its span and the changes that touched it, holds what it replaced, or its text."""
        if self.replaced is None or self.replaced == self.accepted:
            return
        if not self.undone and text[lo:hi] == self.replaced:
            self.undone, self.begin, self.end = True, lo, lo + len(self.replaced)
        elif self.undone and text[lo:hi] == self.accepted:
            self.undone = False
            self._whole_at(lo)

    def _swaps(self, change: AppliedEdit, old: str, new: str) -> bool:
        """Whether ``change`` turns the ``old`` that ``begin``..``end`` holds into ``new``, leaving what it touched
        around it as it was: an undo as VS Code sends it (the range), as Neovim does (the least that changed: `w`
        back to `width` is `idth` written after it) or as whole lines."""
        start, stop, removed = change.start_offset, change.end_offset, change.removed_text
        if self.end - self.begin != len(old) or stop < self.begin or start > self.end:
            return False
        lead = removed[:max(0, self.begin - start)]  # what the change removed before it, and after it
        trail = removed[len(removed) - (stop - self.end):] if stop > self.end else ""
        head = old[:max(0, start - self.begin)]  # what of it the change left before it, and after it
        tail = old[stop - self.begin:] if stop < self.end else ""
        return head + change.inserted_text + tail == lead + new + trail

    def _follow_pieces(self, change: AppliedEdit) -> None:
        """Move the runs of accepted text through ``change``: what it removes of them is lost, what it inserts is not
        theirs. The ends it leaves as they were are not counted changed (an editor that sends a whole line for a
        word rewritten in it): only ``removed`` between them is replaced."""
        if not self.pieces:
            return
        removed, inserted = change.removed_text, change.inserted_text
        same = min(len(removed), len(inserted))
        head = tail = 0
        if same:  # compared no further than the runs reach: past them the ends change nothing
            reach = self.pieces[-1][0] + self.pieces[-1][2] - change.start_offset
            head = _same_for(removed, inserted, min(same, max(0, reach)))
            reach = change.end_offset - self.pieces[0][0]
            tail = _same_for(removed[::-1], inserted[::-1], min(same - head, max(0, reach)))
        start, end = change.start_offset + head, change.end_offset - tail
        delta = len(inserted) - len(removed)
        if start == end and not delta:  # nothing changed
            return
        pieces = []
        for at, offset, length in self.pieces:
            if at + length <= start:  # before the change
                pieces.append((at, offset, length))
            elif at >= end:  # after it (or typed at its start)
                pieces.append((at + delta, offset, length))
            else:  # what of it is outside the change stays
                if at < start:
                    pieces.append((at, offset, start - at))
                if end < at + length:
                    pieces.append((end + delta, offset + end - at, at + length - end))
        self.pieces = pieces


def _same_for(a: str, b: str, limit: int) -> int:
    """How many of the first ``limit`` characters of ``a`` and ``b`` are the same before they differ: compared a block
    at a time (a whole text sent again for a keystroke costs a copy of it, not a loop over it)."""
    n, step = 0, 64
    while n < limit:
        k = min(step, limit - n)
        if a[n:n + k] != b[n:n + k]:
            lo, hi = n, n + k  # the same up to lo; they differ before hi
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if a[lo:mid] == b[lo:mid]:
                    lo = mid
                else:
                    hi = mid
            return lo
        n, step = n + k, step * 2
    return limit


class UndoWatch:
    """Per document, the accepts of the last ``UNDO_WINDOW_S`` seconds; ``ended``: what was kept of those no longer
    watched."""

    def __init__(self, window_s: float = UNDO_WINDOW_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self.clock = clock
        self._watches: dict[str, list[_Watch]] = {}
        self._ended: list[Kept] = []
        # per document, accepts whose text it does not hold yet: (the item, its partial length, until when)
        self._awaiting: dict[str, list[tuple[object, int | None, float]]] = {}
        self._lock = threading.Lock()

    def changed(self, uri: str, changes: list[AppliedEdit],
                text: str | None = None) -> list[tuple[str, str, int | None]]:
        """``uri`` changed by one message's ``changes``, in the order applied: ``(id, UNDONE | ACCEPTED_AGAIN, the
        accept's UTF-16 length, None for a whole one)`` for each watched accept they take back or write again. The
        watches whose window passed end first (``ended``): what they kept is what the document held before it.
        ``text``: the document after the message, where a next edit's undo or redo in several changes is read
        (eglot's `replace-buffer-contents` sends `size` back to `width` as `s` -> `w` and `ze` -> `dth`)."""
        with self._lock:
            watches = self._watches.get(uri)
            if not watches:
                return []
            now = self.clock()
            self._end([w for w in watches if now > w.until])
            watches[:] = [w for w in watches if now <= w.until]
            was = [w.undone for w in watches]
            # each watch's span and the changes touching it, together: an insertion at either end counts in
            regions = [[w.begin, w.end, False] for w in watches]
            for change in changes:
                start, stop = change.start_offset, change.end_offset
                delta = len(change.inserted_text) - len(change.removed_text)
                for w, region in zip(watches, regions):
                    lo, hi, _ = region
                    if stop < lo or (stop == lo and start < lo):  # before it
                        region[0], region[1] = lo + delta, hi + delta
                    elif start <= hi:
                        region[:] = [min(lo, start), max(hi, stop) + delta, True]
                    w.follow(change)
            if text is not None:
                for w, undone, (lo, hi, touched) in zip(watches, was, regions):
                    if touched and w.undone == undone:
                        w.swapped_in(text, lo, hi)
            if not watches:
                del self._watches[uri]
            # what one message did, from its first change to its last (Emacs's undo of an eglot item removes the
            # item, writes the text it replaced back and removes that again, in one message)
            return [(w.suggestion_id, UNDONE if w.undone else ACCEPTED_AGAIN, w.units)
                    for w, undone in zip(watches, was) if w.undone != undone]

    def accepted(self, uri: str, suggestion_id: str, text: str, begin: int, accepted: str,
                 units: int | None = None, crlf: bool = False, replaced: str | None = None) -> bool:
        """Watch the accept of ``suggestion_id``, whose ``accepted`` text the document ``text`` holds at ``begin`` (an
        offset; ``units``: a partial accept's length; ``crlf``: its line breaks are the document's "\r\n", the
        suggestion's "\n"; ``replaced``: what a next edit's range held before it); whether it does (a text moved or
        changed since is not watched). A later accept of the same suggestion (the next word of it) replaces its
        watch; the oldest beyond ``MAX_WATCHED_PER_DOCUMENT`` ends."""
        if not accepted or not text.startswith(accepted, begin):
            return False
        with self._lock:
            watches = [w for w in self._watches.get(uri, []) if w.suggestion_id != suggestion_id]
            watches.append(_Watch(suggestion_id, accepted, begin, begin + len(accepted), units,
                                  self.clock() + self.window_s, crlf=crlf, replaced=replaced))
            self._end(watches[:-MAX_WATCHED_PER_DOCUMENT])
            self._watches[uri] = watches[-MAX_WATCHED_PER_DOCUMENT:]
        return True

    def await_text(self, uri: str, item, units: int | None, until: float | None = None) -> None:
        """Wait for the change that writes ``item``'s accepted text (``awaited``), until ``until`` (default
        ``AWAIT_S`` from now); the newest ``MAX_WATCHED_PER_DOCUMENT`` wait."""
        with self._lock:
            waiting = [w for w in self._awaiting.get(uri, []) if w[0].id != item.id]
            waiting.append((item, units, self.clock() + AWAIT_S if until is None else until))
            self._awaiting[uri] = waiting[-MAX_WATCHED_PER_DOCUMENT:]

    def awaited(self, uri: str) -> list[tuple[object, int | None, float]]:
        """``uri`` changed: the accepts waiting for their text there whose time has not passed, (item, units, until)
        each, no longer waiting (`watch_accept` again watches each, or has it wait on)."""
        with self._lock:
            if uri not in self._awaiting:
                return []
            now = self.clock()
            return [w for w in self._awaiting.pop(uri) if now <= w[2]]

    def forget(self, uri: str) -> list[Kept]:
        """``uri`` closed: nothing of it is watched; returns ``ended``, its watches' figures with them."""
        with self._lock:
            self._end(self._watches.pop(uri, []))
            self._awaiting.pop(uri, None)
        return self.ended()

    def end(self) -> list[Kept]:
        """The server ends: nothing is watched; returns ``ended``, every watch's figures with them."""
        with self._lock:
            for watches in self._watches.values():
                self._end(watches)
            self._watches.clear()
            self._awaiting.clear()
        return self.ended()

    def ended(self) -> list[Kept]:
        """What was kept of the accepts whose watch ended since the last call, in the order they ended; those taken
        back are not among them."""
        with self._lock:
            ended, self._ended = self._ended, []
        return ended

    def _end(self, watches: list[_Watch]) -> None:
        self._ended.extend(w.kept() for w in watches if not w.undone)

    def watched(self, uri: str) -> list[str]:
        """The ids watched in ``uri`` (for tests and status)."""
        with self._lock:
            return [w.suggestion_id for w in self._watches.get(uri, [])]


def watch_accept(watch: UndoWatch, documents, item, units: int | None = None, until: float | None = None) -> bool:
    """Watch the accept of ``item`` (an ``IssuedSuggestion`` whose text starts at ``item.start``): all of its text, or
    its first ``units`` UTF-16 units (a partial accept); ``documents``: the open documents. Whether it is watched: not
    where its start is unknown (after a selected completion entry), or the document no longer holds the text there.
    A next edit whose range still holds what it replaces (the accept heard before the change that applies it) waits
    for that change (`UndoWatch.await_text`, until ``until``)."""
    doc = documents.get(item.uri)
    if doc is None or item.start is None:
        return False
    _, index = doc.indexed_snapshot()
    text = index.text
    begin = index.offset_at(Position(*item.start))
    accepted = item.text if units is None else item.text[:chars_in_units(item.text, units)]
    crlf = "\r\n" in text and "\n" in accepted and not text.startswith(accepted, begin)
    if crlf:  # a CRLF document holds its line breaks so
        accepted = accepted.replace("\n", "\r\n")
    # what a next edit replaced was read from the document, line breaks and all
    replaced = item.replaced
    if replaced and replaced != accepted and text.startswith(replaced, begin):
        # not applied yet (`width` still there for `w`, which it starts with: watched, it was taken for applied)
        watch.await_text(item.uri, item, units, until)
        return False
    if watch.accepted(item.uri, item.id, text, begin, accepted, units, crlf, replaced):
        return True
    if replaced == "":  # an insertion not written yet
        watch.await_text(item.uri, item, units, until)
    return False
