"""LSP positions (line, UTF-16 code unit) <-> Python ``str`` indices.

LSP counts ``character`` in UTF-16 code units: a character outside the Basic Multilingual
Plane (an emoji, some CJK extension ideographs) counts 2, everything else 1. Python indexes
strings by code point. This module converts between the two, splitting lines on ``\\n``,
``\\r\\n`` and ``\\r`` as LSP defines.

Plain Python: no pygls, no lsprotocol. ``Position``/``Range`` are frozen dataclasses that
callers convert to and from protocol types at the edge.

For repeated conversions on the same text use :class:`LineIndex` (a table of line starts,
kept up to date incrementally by :meth:`LineIndex.replaced`); the module-level functions
scan only as far as the line they need.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass

# The primitives are shared with telemetry (which replays edits and may not import the server).
from telemetry.text import advance as text_advance
from telemetry.text import line_starts, utf16_len

__all__ = [
    "Position",
    "Range",
    "PositionError",
    "LineIndex",
    "utf16_len",
    "offset_at",
    "position_at",
    "is_valid",
    "advance",
    "line_starts",
]

_BREAK = re.compile(r"\r\n|\r|\n")


class PositionError(ValueError):
    """A position outside the document (raised only when clamping is off)."""


@dataclass(frozen=True, order=True)
class Position:
    """Zero-based line and UTF-16 code-unit column, as in LSP."""

    line: int
    character: int

    def __str__(self) -> str:
        return f"{self.line}:{self.character}"


@dataclass(frozen=True)
class Range:
    """Half-open range ``[start, end)`` between two positions."""

    start: Position
    end: Position

    @classmethod
    def of(cls, start_line: int, start_char: int, end_line: int, end_char: int) -> "Range":
        return cls(Position(start_line, start_char), Position(end_line, end_char))

    @property
    def is_empty(self) -> bool:
        return self.start == self.end

    def __str__(self) -> str:
        return f"{self.start}-{self.end}"


def _index_for_units(line: str, units: int) -> int:
    """Largest str index ``i`` into ``line`` with ``utf16_len(line[:i]) <= units``.

    A column in the middle of a surrogate pair rounds down to the start of that character.
    C-speed slices only: O(len) work in O(log len) Python steps, fine on a 5 MB line.
    """
    if units <= 0:
        return 0
    seg = line[:units]
    if utf16_len(seg) == len(seg):  # no astral characters in reach: units == chars
        return len(seg)
    i, rem, n = 0, units, len(line)
    while rem > 0 and i < n:
        k = max(rem // 2, 1)  # k chars are at most 2k <= rem units (or k == 1)
        chunk = line[i : i + k]
        u = utf16_len(chunk)
        if u > rem:  # k == 1 and an astral char straddles the column: round down
            break
        i += len(chunk)
        rem -= u
    return i


def _break_len(text: str, line_end_with_break: int, line_start: int) -> int:
    """Length of the line break that ends just before ``line_end_with_break``."""
    if line_end_with_break >= 2 and text[line_end_with_break - 2 : line_end_with_break] == "\r\n":
        return 2 if line_end_with_break - 2 >= line_start else 1
    return 1


class LineIndex:
    """Line-start table of one text, for O(log n) position <-> offset conversions."""

    __slots__ = ("text", "starts")

    def __init__(self, text: str, starts: list[int] | None = None) -> None:
        self.text = text
        self.starts = starts if starts is not None else line_starts(text)

    @property
    def line_count(self) -> int:
        return len(self.starts)

    def line_bounds(self, line: int) -> tuple[int, int]:
        """``(start, end)`` str offsets of ``line``'s content, line break excluded."""
        start = self.starts[line]
        if line + 1 < len(self.starts):
            nxt = self.starts[line + 1]
            end = nxt - _break_len(self.text, nxt, start)
        else:
            end = len(self.text)
        return start, end

    def line_text(self, line: int) -> str:
        start, end = self.line_bounds(line)
        return self.text[start:end]

    def offset_at(self, position: Position, *, clamp: bool = True) -> int:
        line, character = position.line, position.character
        if line < 0 or character < 0:
            if not clamp:
                raise PositionError(f"negative position {position} is not valid")
            line, character = max(line, 0), max(character, 0)
        if line >= len(self.starts):
            if not clamp:
                raise PositionError(
                    f"line {line} is past the end of the document ({len(self.starts)} lines, last is {len(self.starts) - 1})"
                )
            return len(self.text)
        start, end = self.line_bounds(line)
        # Every character is at least one code unit: no more than ``character`` chars matter.
        content = self.text[start : min(end, start + character)]
        idx = _index_for_units(content, character)
        if not clamp and start + idx == end and utf16_len(content) < character:
            raise PositionError(
                f"character {character} is past the end of line {line} "
                f"(which has {utf16_len(content)} UTF-16 code units)"
            )
        return start + idx

    def position_at(self, offset: int) -> Position:
        offset = min(max(offset, 0), len(self.text))
        line = bisect_right(self.starts, offset) - 1
        start, end = self.line_bounds(line)
        return Position(line, utf16_len(self.text[start : min(offset, end)]))

    def is_valid(self, position: Position) -> bool:
        try:
            self.offset_at(position, clamp=False)
        except PositionError:
            return False
        return True

    def replaced(self, start: int, end: int, inserted: str, new_text: str | None = None) -> "LineIndex":
        """Index of the text with ``text[start:end]`` replaced by ``inserted``.

        O(number of lines) list work plus a rescan of only the inserted text and its two
        neighbours, so a keystroke in a 5 MB file stays cheap. Handles ``\\r\\n`` pairs that
        the edit splits or joins.
        """
        if new_text is None:
            new_text = self.text[:start] + inserted + self.text[end:]
        old = self.starts
        delta = len(inserted) - (end - start)
        # Line starts strictly before ``start`` depend only on unchanged text before it.
        keep = old[: bisect_left(old, max(start, 1))]
        # A start k depends on text[k-1] and text[k]; rescan k in [start, start+len(inserted)].
        lo = max(start, 1)
        hi = start + len(inserted)
        scanned = [m.end() for m in _BREAK.finditer(new_text, lo - 1, min(hi + 1, len(new_text))) if lo <= m.end() <= hi]
        # Old starts k >= end + 1 depend only on unchanged text at/after ``end``.
        tail_from = bisect_left(old, end + 1)
        tail = [k + delta for k in old[tail_from:]] if delta else old[tail_from:]
        return LineIndex(new_text, keep + scanned + tail)


def _scan_line(text: str, line: int) -> tuple[int, int, int]:
    """(start, end, count) for ``line`` without indexing the whole text.

    ``count`` is the number of lines seen (exact when ``line`` is past the end).
    Stops scanning at the requested line, so the cost is O(offset of that line).
    """
    start, n = 0, 0
    if line > 0:
        for m in _BREAK.finditer(text):
            n += 1
            start = m.end()
            if n == line:
                break
        else:
            return len(text), len(text), n + 1
    m = _BREAK.search(text, start)
    end = m.start() if m else len(text)
    return start, end, n + 1


def offset_at(text: str, position: Position, *, clamp: bool = True, index: LineIndex | None = None) -> int:
    """Python str index of ``position`` in ``text``.

    ``clamp=True``: a line past the end gives the end of the document, a character past the
    end of a line gives the end of that line (before its break), negatives give 0.
    ``clamp=False``: raise :class:`PositionError` instead. A column inside a surrogate pair
    rounds down to the start of that character in both modes.
    """
    if index is not None:
        return index.offset_at(position, clamp=clamp)
    line, character = position.line, position.character
    if line < 0 or character < 0:
        if not clamp:
            raise PositionError(f"negative position {position} is not valid")
        line, character = max(line, 0), max(character, 0)
    start, end, count = _scan_line(text, line)
    if count <= line:
        if not clamp:
            raise PositionError(f"line {line} is past the end of the document ({count} lines, last is {count - 1})")
        return len(text)
    content = text[start:end]
    idx = _index_for_units(content, character)
    if not clamp and idx == len(content) and utf16_len(content) < character:
        raise PositionError(
            f"character {character} is past the end of line {line} (which has {utf16_len(content)} UTF-16 code units)"
        )
    return start + idx


def position_at(text: str, offset: int, *, index: LineIndex | None = None) -> Position:
    """LSP position of str index ``offset`` (clamped to the text). Inside a ``\\r\\n`` pair
    the column is the end of the line's content."""
    if index is not None:
        return index.position_at(offset)
    offset = min(max(offset, 0), len(text))
    line, start = 0, 0
    for m in _BREAK.finditer(text, 0, offset):
        line += 1
        start = m.end()
    # A "\r" right before offset followed by "\n" at offset is a CRLF being split: the
    # finditer above (bounded at offset) saw a lone "\r"; undo that.
    if offset < len(text) and start == offset and offset > 0 and text[offset - 1] == "\r" and text[offset] == "\n":
        prev = text.rfind("\n", 0, offset - 1)
        prev_r = text.rfind("\r", 0, offset - 1)
        start = max(prev, prev_r) + 1
        line -= 1
        return Position(line, utf16_len(text[start : offset - 1]))
    return Position(line, utf16_len(text[start:offset]))


def is_valid(text: str, position: Position) -> bool:
    """True when ``position`` is inside the document (end of a line and end of text included)."""
    try:
        offset_at(text, position, clamp=False)
    except PositionError:
        return False
    return True


def advance(start: Position, text: str) -> Position:
    """Position reached after ``text`` is written starting at ``start``."""
    return Position(*text_advance(start.line, start.character, text))

