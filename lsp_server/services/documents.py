"""Open documents, incremental changes, and each document's coalesced edit history.

Plain Python (no pygls, no lsprotocol): the LSP feature layer converts protocol types to
:class:`~lsp_server.services.positions.Range` and calls :class:`DocumentStore`.

Edit history: the editor sends one ``didChange`` per keystroke. :class:`EditHistory` merges
keystrokes that continue one another within a time window into one human-sized
:class:`EditRecord` (typing a word, backspacing over it, retyping), and says when a record is
*finalized* so the server can log it once, as a whole. Keystrokes are grouped by the store's
``clock``, which a replay pins to its recording's timeline; the times logged stay the wall clock's.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Iterable

from models.next_edit.baseline import common_ends
from telemetry.text import line_breaks

from .positions import LineIndex, Position, PositionError, Range, advance

__all__ = [
    "AppliedEdit",
    "ChangeResult",
    "Document",
    "DocumentError",
    "DocumentStore",
    "EditHistory",
    "EditRecord",
    "StaleVersionError",
    "UnknownDocumentError",
]


class DocumentError(Exception):
    """Base class of the errors a change can be refused with."""


class UnknownDocumentError(DocumentError, KeyError):
    """A change or close for a URI that was never opened (or is already closed)."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else "unknown document"


class StaleVersionError(DocumentError):
    """A change whose version is not newer than the document's; nothing was applied."""


@dataclass(frozen=True)
class AppliedEdit:
    """One change as applied: offsets and positions are in the text *before* the change."""

    start_offset: int
    end_offset: int
    start: Position
    end: Position
    removed_text: str
    inserted_text: str
    adjusted: str | None = None  # how a range outside the document was brought into it (None: it fitted)


@dataclass(frozen=True)
class EditRecord:
    """One human-sized edit: ``removed_text`` between ``start`` and ``end`` of the document as
    it was before the edit began was replaced by ``inserted_text``.

    ``version`` is the document version after the edit's last keystroke; ``ts_start`` and
    ``ts_end`` are the times (seconds) of its first and last keystrokes.
    """

    uri: str
    version: int
    start: Position
    end: Position
    removed_text: str
    inserted_text: str
    ts_start: float
    ts_end: float
    keystrokes: int

    @property
    def inserted_end(self) -> Position:
        """Where the inserted text ends, in the document after the edit."""
        return advance(self.start, self.inserted_text)

    @property
    def size(self) -> int:
        return len(self.removed_text) + len(self.inserted_text)

    def summary(self) -> dict:
        """Telemetry-safe description (no source text)."""
        return {
            "version": self.version,
            "start_line": self.start.line,
            "start_character": self.start.character,
            "end_line": self.end.line,
            "end_character": self.end.character,
            "removed_chars": len(self.removed_text),
            "inserted_chars": len(self.inserted_text),
            "removed_lines": line_breaks(self.removed_text),
            "inserted_lines": line_breaks(self.inserted_text),
            "duration_s": round(self.ts_end - self.ts_start, 3),
            "keystrokes": self.keystrokes,
        }


class _State:
    """Immutable (version, index-with-text) pair: swapped in one assignment, read in one."""

    __slots__ = ("version", "index")

    def __init__(self, version: int, index: LineIndex) -> None:
        self.version = version
        self.index = index


def _apply(index: LineIndex, rng: Range | None, new_text: str) -> tuple[LineIndex, AppliedEdit]:
    """Pure: the index after the change, and what the change did.

    A range outside the document is clamped into it and a reversed one is turned round, as the text
    documents of vscode-languageserver (which most language servers use) do: the client applied the change
    to its own text, and a change dropped here would leave every later change applying to text the client no
    longer has. ``adjusted`` says what was done, for a warning."""
    text = index.text
    if rng is None:
        return _whole_text_applied(index, new_text)
    try:  # each position is found once on a keystroke's path; only one outside the text is found again
        s, e = index.offset_at(rng.start, clamp=False), index.offset_at(rng.end, clamp=False)
        adjusted = None
    except PositionError:
        s, e = index.offset_at(rng.start), index.offset_at(rng.end)  # clamped into the text
        adjusted = f"range {rng} is outside the document: clamped to {index.position_at(s)}-{index.position_at(e)}"
    if e < s:
        s, e = e, s
        adjusted = f"range {rng} ends before it starts: turned round" if adjusted is None else adjusted + ", turned round"
    new_index = index.replaced(s, e, new_text, text[:s] + new_text + text[e:])
    return new_index, _applied(index, rng, s, e, new_text, adjusted)


def _whole_text_applied(index: LineIndex, new_text: str) -> tuple[LineIndex, AppliedEdit]:
    """A change with no range (the whole text sent: Vim's ALE does so at every keystroke) as the range that changed:
    taken as the replacement of the whole document, it broke the edit being typed at each keystroke, stored the file
    twice in the edit stream per keystroke and left next edits no history. Where the text changed is the span between
    the longest common start and end (in a run of one character, typing there reads as typing at its end); a span
    end between a CR and its LF moves out of the pair, where no LSP position is."""
    text = index.text
    head, tail = common_ends(text, new_text)
    s, e = head, len(text) - tail
    if 0 < s < len(text) and text[s - 1] == "\r" and text[s] == "\n":
        s -= 1  # the CR is in both texts' common start
    if 0 < e < len(text) and text[e - 1] == "\r" and text[e] == "\n":
        e += 1  # the LF is in both texts' common end
    inserted = new_text[s:len(new_text) - (len(text) - e)]
    applied = AppliedEdit(s, e, index.position_at(s), index.position_at(e), text[s:e], inserted)
    return index.replaced(s, e, inserted, new_text), applied


def _applied(index: LineIndex, rng: Range, s: int, e: int, new_text: str, adjusted: str | None = None) -> AppliedEdit:
    """What a change of ``index``'s text between offsets ``s`` and ``e`` did. Positions as sent may point inside a
    surrogate pair or outside the text; the normalised ones are reported."""
    start_pos = rng.start if rng.start.character == 0 and adjusted is None else index.position_at(s)
    end_pos = index.position_at(e) if e != s else start_pos
    return AppliedEdit(s, e, start_pos, end_pos, index.text[s:e], new_text, adjusted=adjusted)


# Changes in one message from which they are applied in one pass where they can be: each rebuilt the whole text, so
# a replace-all of thousands of places in a large file (one didChange) held the event loop for tens of seconds.
BATCH_CHANGES = 32


def _apply_descending(index: LineIndex, changes: list[tuple[Range | None, str]]
                      ) -> tuple[LineIndex, list[AppliedEdit]] | None:
    """``changes`` applied in one pass where each lies before the one before it (VS Code's order for one edit at many
    places), so that every range reads the same in the text as it is and as the earlier changes left it: what
    applying them one by one gives, text and AppliedEdits alike. None where they are not so (the caller applies them
    one by one), or a range needs clamping or turning round (``_apply`` says so)."""
    text = index.text
    found: list[tuple[int, int, Range, str]] = []
    bound = len(text)
    for rng, new_text in changes:
        if rng is None:
            return None
        try:
            s, e = index.offset_at(rng.start, clamp=False), index.offset_at(rng.end, clamp=False)
        except PositionError:
            return None
        if e < s or e > bound:
            return None
        found.append((s, e, rng, new_text))
        bound = s
    pieces: list[str] = []
    cursor = len(text)
    applied: list[AppliedEdit] = []
    for s, e, rng, new_text in found:
        pieces += [text[e:cursor], new_text]
        cursor = s
        applied.append(_applied(index, rng, s, e, new_text))
    pieces.append(text[:cursor])
    return LineIndex("".join(reversed(pieces))), applied


def _apply_ascending(index: LineIndex, changes: list[tuple[Range | None, str]]
                     ) -> tuple[LineIndex, list[AppliedEdit]] | None:
    """``changes`` applied in one pass where each starts at or after the end of the text the one before it wrote
    (Helix's order for an edit at many cursors: each range in the text the earlier changes left), giving what
    applying them one by one gives, text and AppliedEdits alike. Past the last change, the text as it is and the text
    the changes left are the same, so a position there maps back by line and column arithmetic, without the text
    the changes left being built. None where the changes are not so (the caller applies them one by one), a range
    needs clamping or turning round, a change writes a CR, or a CR before a change meets an LF it writes or leaves
    after it (they join into one line break, which the arithmetic would not see)."""
    text = index.text
    pieces: list[str] = []  # the text the changes leave, up to ``last_end``
    applied: list[AppliedEdit] = []
    written_end = Position(0, 0)  # where the last change's text ends, in the text the changes left so far
    original_end = Position(0, 0)  # the same place in the text as it is
    last_end, shift = 0, 0  # offset where the last change ended in ``text``; the changes' growth so far
    char_before_last_end = ""  # the character before last_end in the text the changes left

    def back(p: Position) -> Position:  # a position at or after written_end, in ``text``
        if p.line == written_end.line:
            return Position(original_end.line, original_end.character + p.character - written_end.character)
        return Position(p.line - written_end.line + original_end.line, p.character)

    def forward(p: Position) -> Position:  # the inverse: a position at or after original_end, as the changes left it
        if p.line == original_end.line:
            return Position(written_end.line, written_end.character + p.character - original_end.character)
        return Position(p.line - original_end.line + written_end.line, p.character)

    for rng, new_text in changes:
        if rng is None or "\r" in new_text:
            return None
        start, end = (rng.start.line, rng.start.character), (rng.end.line, rng.end.character)
        if start < (written_end.line, written_end.character) or end < start:
            return None
        try:
            s, e = index.offset_at(back(rng.start), clamp=False), index.offset_at(back(rng.end), clamp=False)
        except PositionError:
            return None
        if e < s or s < last_end:
            return None
        before = text[s - 1:s] if s > last_end or not applied else char_before_last_end
        if before == "\r" and (new_text or text[e:e + 1])[:1] == "\n":
            return None  # the CR before it and an LF after it join into one line break
        char_before_last_end = new_text[-1] if new_text else before
        start_pos = forward(index.position_at(s))
        end_pos = forward(index.position_at(e)) if e != s else start_pos
        applied.append(AppliedEdit(s + shift, e + shift, start_pos, end_pos, text[s:e], new_text))
        pieces += [text[last_end:s], new_text]
        written_end, original_end = advance(start_pos, new_text), index.position_at(e)
        last_end, shift = e, shift + len(new_text) - (e - s)
    pieces.append(text[last_end:])
    return LineIndex("".join(pieces)), applied


_BINARY_SAMPLE = 8192
_TEXT_CONTROLS = frozenset("\t\n\r\f\v\x1b")
# What no text holds much of: the control characters other than those, C1 controls and U+FFFD (bytes that were not
# UTF-8). One regex scan: a generator over the sample took 0.28 ms a request on large files, the text new each keystroke.
_BINARY_CHARS = re.compile("[" + "".join(re.escape(chr(c)) for c in range(0x20) if chr(c) not in _TEXT_CONTROLS)
                           + "\x7f-\x9f\ufffd]")


class Document:
    """One open text document. Mutations go through :class:`DocumentStore` (which holds the
    lock); reads from other threads should use :meth:`snapshot`."""

    def __init__(self, uri: str, language_id: str, version: int, text: str) -> None:
        self.uri = uri
        self.language_id = language_id
        self._state = _State(version, LineIndex(text))
        self._binary: tuple[str, bool] | None = None
        self.history = EditHistory(uri)

    # -- reading --------------------------------------------------------------------------
    @property
    def version(self) -> int:
        return self._state.version

    @property
    def text(self) -> str:
        return self._state.index.text

    @property
    def index(self) -> LineIndex:
        return self._state.index

    @property
    def line_count(self) -> int:
        return self._state.index.line_count

    def snapshot(self) -> tuple[int, str]:
        """``(version, text)`` read consistently (one attribute read)."""
        st = self._state
        return st.version, st.index.text

    def indexed_snapshot(self) -> tuple[int, LineIndex]:
        """``(version, index)`` read consistently; ``index.text`` is that version's text."""
        st = self._state
        return st.version, st.index

    def line(self, n: int) -> str:
        return self._state.index.line_text(n)

    def offset_at(self, position: Position, *, clamp: bool = True) -> int:
        return self._state.index.offset_at(position, clamp=clamp)

    def position_at(self, offset: int) -> Position:
        return self._state.index.position_at(offset)

    @property
    def is_binary(self) -> bool:
        """NUL bytes present, or the start of the text is mostly control/replacement chars.

        Cached per text object; the NUL search is a C-speed scan.
        """
        text = self.text
        cached = self._binary
        if cached is not None and cached[0] is text:
            return cached[1]
        result = _looks_binary(text)
        self._binary = (text, result)
        return result

    # -- writing --------------------------------------------------------------------------
    def apply_change(self, range: Range | None, new_text: str) -> AppliedEdit:  # noqa: A002 - LSP name
        """Apply one change (``None`` range: replace everything). The version is unchanged;
        :meth:`DocumentStore.change` sets it. A range outside the document is clamped into it
        (``AppliedEdit.adjusted`` says how)."""
        new_index, applied = _apply(self._state.index, range, new_text)
        self._state = _State(self._state.version, new_index)
        return applied

    def _commit(self, version: int, index: LineIndex) -> None:
        self._state = _State(version, index)

    def __repr__(self) -> str:
        return f"Document({self.uri!r}, {self.language_id!r}, version={self.version}, chars={len(self.text)})"


def _looks_binary(text: str) -> bool:
    if "\x00" in text:
        return True
    sample = text[:_BINARY_SAMPLE]
    if not sample:
        return False
    return len(_BINARY_CHARS.findall(sample)) > 0.3 * len(sample)


class _Pending:
    """The edit being built; offsets are in the *current* document."""

    __slots__ = ("version", "start", "start_offset", "removed", "inserted", "ts_start", "ts_end", "keystrokes",
                 "last_at")

    def __init__(self, version: int, applied: AppliedEdit, now: float, at: float) -> None:
        self.version = version
        self.start = applied.start
        self.start_offset = applied.start_offset
        self.removed = applied.removed_text
        self.inserted = applied.inserted_text
        self.ts_start = now
        self.ts_end = now
        self.keystrokes = 1
        self.last_at = at  # the latest keystroke by the grouping clock (``now`` but in a replay)

    @property
    def tip(self) -> int:
        """Offset, in the current document, where the inserted text ends."""
        return self.start_offset + len(self.inserted)

    def absorb(self, version: int, applied: AppliedEdit, now: float, at: float, start_pos: Position) -> bool:
        """Merge ``applied`` when it continues this edit at its tip; False if it does not."""
        s, e = applied.start_offset, applied.end_offset
        a, b = self.start_offset, self.tip
        if s == b:
            # Typing at the tip (or forward-deleting past it): text after b is original.
            self.inserted += applied.inserted_text
            self.removed += applied.removed_text
        elif e == b and s < b:
            # Backspacing (or replacing backwards) from the tip.
            if s >= a:
                self.inserted = self.inserted[: s - a] + applied.inserted_text
            else:  # past the start of this edit, into original text
                self.removed = applied.removed_text[: a - s] + self.removed
                self.inserted = applied.inserted_text
                self.start_offset = s
                self.start = start_pos
        else:
            return False
        self.version = version
        self.ts_end = max(self.ts_end, now)
        self.last_at = max(self.last_at, at)
        self.keystrokes += 1
        return True

    def record(self, uri: str) -> EditRecord:
        return EditRecord(
            uri=uri,
            version=self.version,
            start=self.start,
            end=advance(self.start, self.removed),
            removed_text=self.removed,
            inserted_text=self.inserted,
            ts_start=self.ts_start,
            ts_end=self.ts_end,
            keystrokes=self.keystrokes,
        )

    @property
    def is_noop(self) -> bool:
        return self.removed == self.inserted


class EditHistory:
    """Coalesced edit history of one document, bounded in count and in characters.

    Keystrokes continue the pending edit when they arrive within ``coalesce_s`` of its last
    keystroke and touch its tip: typing where the previous insertion ended (newlines
    included), backspacing from there (also past its start, into older text), forward-delete
    from there, and typing after backspacing. Anything else or a pause longer than
    ``coalesce_s`` finalizes the pending edit (a change sent as the whole text counts by the span it changed). Time
    here is the grouping clock
    (``at``), which is the logged time (``now``) except in a replay, where it is the recording's.

    Finalized edits that changed nothing (typed then backspaced away) are dropped.
    """

    def __init__(self, uri: str, *, coalesce_s: float = 1.0, max_edits: int = 256, max_chars: int = 200_000) -> None:
        self.uri = uri
        self.coalesce_s = coalesce_s
        self.max_edits = max_edits
        self.max_chars = max_chars
        self._done: deque[EditRecord] = deque()
        self._chars = 0
        self._pending: _Pending | None = None
        self.dropped = 0  # finished edits evicted to respect the bounds

    # -- writing --------------------------------------------------------------------------
    def push(self, version: int, applied: AppliedEdit, now: float | None = None,
             at: float | None = None) -> list[EditRecord]:
        """Record one applied change; returns the edits this push finalized (oldest first).

        ``now`` is the keystroke time in seconds (default ``time.time()``), ``at`` its time by the grouping clock
        (default ``now``). A change that changes nothing (an empty edit) is no edit and does not break the pending
        edit; within the window it keeps it open, as a keystroke does.
        """
        now = time.time() if now is None else now
        at = now if at is None else at
        finalized: list[EditRecord] = []
        p = self._pending
        if applied.removed_text == applied.inserted_text:
            if p is not None and at - p.last_at <= self.coalesce_s:
                p.last_at = at  # still typing: the edit stays open (a replay sends such changes for keystrokes that
                # cancelled out, which kept the recording's edit open)
            return finalized
        if p is not None and at - p.last_at <= self.coalesce_s and p.absorb(version, applied, now, at, applied.start):
            return finalized
        finalized.extend(self._finalize())
        self._pending = _Pending(version, applied, now, at)
        return finalized

    def flush(self) -> list[EditRecord]:
        """Finalize the pending edit now (on close, before next-edit prediction)."""
        return self._finalize()

    def expire(self, now: float | None = None) -> list[EditRecord]:
        """Finalize the pending edit if it has been idle longer than ``coalesce_s`` (timer); ``now`` by the
        grouping clock."""
        now = time.time() if now is None else now
        p = self._pending
        if p is not None and now - p.last_at > self.coalesce_s:
            return self._finalize()
        return []

    def _finalize(self) -> list[EditRecord]:
        p = self._pending
        self._pending = None
        if p is None or p.is_noop:
            return []
        rec = p.record(self.uri)
        self._store(rec)
        return [rec]

    def _store(self, rec: EditRecord) -> None:
        self._done.append(rec)
        self._chars += rec.size
        while self._done and (len(self._done) > self.max_edits or self._chars > self.max_chars):
            old = self._done.popleft()
            self._chars -= old.size
            self.dropped += 1

    # -- reading --------------------------------------------------------------------------
    @property
    def pending(self) -> EditRecord | None:
        p = self._pending
        return None if p is None or p.is_noop else p.record(self.uri)

    @property
    def stored_chars(self) -> int:
        return self._chars

    def __len__(self) -> int:
        return len(self._done)

    def recent(self, n: int | None = None) -> list[EditRecord]:
        """The last ``n`` edits, oldest first, the pending one (if any) last."""
        out = list(self._done)
        pending = self.pending
        if pending is not None:
            out.append(pending)
        if n is not None:
            out = out[-n:] if n > 0 else []
        return out


@dataclass
class ChangeResult:
    """What one ``didChange`` did."""

    document: Document
    version: int
    applied: list[AppliedEdit] = field(default_factory=list)
    finalized: list[EditRecord] = field(default_factory=list)

    @property
    def adjusted(self) -> list[str]:
        """What was done to changes whose range did not fit the document (for a warning)."""
        return [a.adjusted for a in self.applied if a.adjusted]


class DocumentStore:
    """Open documents by URI (any scheme: ``file:``, ``untitled:``, ...).

    All mutations hold one lock; a change batch is atomic: either every change in it
    applies and the version moves, or nothing does.

    ``clock`` is what "now" is for grouping keystrokes into edits: the wall clock, except that the server
    makes it the acceptance gate's, which a replay pins to the time each change was recorded (an accelerated
    replay sends keystrokes typed seconds apart within milliseconds, and they became one edit). Edits are
    recorded at wall-clock times, or at ``clock``'s with ``records_by_clock`` (a simulation's timeline).
    """

    def __init__(self, *, coalesce_s: float = 1.0, max_edits: int = 256, max_chars: int = 200_000) -> None:
        self.coalesce_s = coalesce_s
        self.max_edits = max_edits
        self.max_chars = max_chars
        self._docs: dict[str, Document] = {}
        self._lock = threading.RLock()
        self.clock = time.time
        self.records_by_clock = False  # a simulation's session: edits are recorded at ``clock``'s times too

    @classmethod
    def from_settings(cls, settings) -> "DocumentStore":
        return cls(coalesce_s=max(0, int(getattr(settings, "edit_coalesce_ms", 1000))) / 1000.0)

    def set_coalesce(self, seconds: float) -> None:
        """The edit window for the documents opened from now on and for those open already (each keeps its own)."""
        with self._lock:
            self.coalesce_s = seconds
            for doc in self._docs.values():
                doc.history.coalesce_s = seconds

    def open(self, uri: str, language_id: str, version: int, text: str) -> Document:
        """Open (or re-open, replacing) a document. A re-open loses its pending edit; use
        :meth:`close` first to finalize it."""
        doc = Document(uri, language_id, version, text)
        doc.history = EditHistory(uri, coalesce_s=self.coalesce_s, max_edits=self.max_edits, max_chars=self.max_chars)
        with self._lock:
            self._docs[uri] = doc
        return doc

    def get(self, uri: str) -> Document | None:
        return self._docs.get(uri)

    def __contains__(self, uri: str) -> bool:
        return uri in self._docs

    def __len__(self) -> int:
        return len(self._docs)

    def uris(self) -> list[str]:
        with self._lock:
            return list(self._docs)

    def change(
        self,
        uri: str,
        version: int,
        changes: Iterable[tuple[Range | None, str]],
        now: float | None = None,
    ) -> ChangeResult:
        """Apply ``changes`` in order and move to ``version``. ``now`` is when they arrived (default: the wall
        clock, with ``clock`` grouping them into edits; a given ``now`` does both).

        Raises :class:`UnknownDocumentError` or :class:`StaleVersionError` (version not newer), and
        then leaves the document exactly as it was. A range outside the document as it is when that
        change applies is clamped into it (``AppliedEdit.adjusted``; ``ChangeResult.adjusted``).
        """
        at = now
        if now is None:
            at = self.clock()
            now = at if self.records_by_clock else time.time()
        with self._lock:
            doc = self._docs.get(uri)
            if doc is None:
                raise UnknownDocumentError(f"document {uri!r} is not open")
            if version <= doc.version:
                raise StaleVersionError(
                    f"change for {uri!r} has version {version}, not newer than the current {doc.version}"
                )
            index = doc.index
            changes = list(changes)
            batched = None
            if len(changes) >= BATCH_CHANGES:  # VS Code's order (bottom up), else Helix's (top down)
                batched = _apply_descending(index, changes) or _apply_ascending(index, changes)
            if batched is not None:
                index, applied = batched
            else:
                applied: list[AppliedEdit] = []
                for rng, new_text in changes:
                    index, a = _apply(index, rng, new_text)
                    applied.append(a)
            doc._commit(version, index)
            finalized: list[EditRecord] = []
            for a in applied:
                finalized.extend(doc.history.push(version, a, now, at))
            return ChangeResult(doc, version, applied, finalized)

    def flush(self, uri: str) -> list[EditRecord]:
        """Finalize ``uri``'s pending edit (before a next-edit request)."""
        with self._lock:
            doc = self._docs.get(uri)
            return doc.history.flush() if doc is not None else []

    def expire(self, now: float | None = None) -> list[EditRecord]:
        """Finalize every pending edit idle longer than the window (call from a timer); ``now`` by ``clock``."""
        now = self.clock() if now is None else now
        with self._lock:
            out: list[EditRecord] = []
            for doc in self._docs.values():
                out.extend(doc.history.expire(now))
            return out

    def close(self, uri: str) -> list[EditRecord]:
        """Forget ``uri``; returns its finalized pending edit. Unknown URIs return []."""
        with self._lock:
            doc = self._docs.pop(uri, None)
            return doc.history.flush() if doc is not None else []
