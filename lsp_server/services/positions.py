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


# Line starts are kept in blocks of about this many, so that an edit rebuilds one block and moves
# each later block by one addition instead of moving every later line start.
_CHUNK = 1024


class LineIndex:
    """Line-start table of one text, for O(log n) position <-> offset conversions.

    The starts are held in blocks: a start of block ``b`` is ``_shifts[b] + _blocks[b][i]``,
    ``_bases[b]`` is its first start and ``_lines[b]`` that start's line number. An edit adds
    to the shift of each later block instead of to each later start. An index never changes
    once built (snapshots read it from other threads); :meth:`replaced` shares the blocks an
    edit leaves alone.
    """

    __slots__ = ("text", "_bases", "_shifts", "_lines", "_blocks", "_count", "_flat")

    def __init__(self, text: str) -> None:
        self.text = text
        flat = line_starts(text)
        self._lines = list(range(0, len(flat), _CHUNK))
        self._bases = flat[::_CHUNK]
        self._shifts = [0] * len(self._lines)
        self._blocks = [flat[i : i + _CHUNK] for i in self._lines]
        self._count = len(flat)
        self._flat: list[int] | None = None

    @classmethod
    def _of(cls, text: str, bases: list[int], shifts: list[int], lines: list[int], blocks: list[list[int]],
            count: int) -> "LineIndex":
        idx = cls.__new__(cls)
        idx.text, idx._bases, idx._shifts, idx._lines, idx._blocks = text, bases, shifts, lines, blocks
        idx._count, idx._flat = count, None
        return idx

    @property
    def starts(self) -> list[int]:
        """Every line start, as one list (built on first use: O(lines))."""
        flat = self._flat
        if flat is None:
            flat = []
            for shift, block in zip(self._shifts, self._blocks):
                flat.extend(map(shift.__add__, block) if shift else block)
            self._flat = flat
        return flat

    @property
    def line_count(self) -> int:
        return self._count

    def _rank(self, offset: int, right: bool) -> int:
        """How many line starts are ``< offset`` (``<=`` when ``right``), as bisect counts them."""
        bases = self._bases
        b = (bisect_right(bases, offset) if right else bisect_left(bases, offset)) - 1
        if b < 0:
            return 0
        rel = offset - self._shifts[b]
        block = self._blocks[b]
        return self._lines[b] + (bisect_right(block, rel) if right else bisect_left(block, rel))

    def line_bounds(self, line: int) -> tuple[int, int]:
        """``(start, end)`` str offsets of ``line``'s content, line break excluded."""
        b = bisect_right(self._lines, line) - 1
        shift, block, i = self._shifts[b], self._blocks[b], line - self._lines[b]
        start = shift + block[i]
        if i + 1 < len(block):
            nxt = shift + block[i + 1]
        elif b + 1 < len(self._bases):
            nxt = self._bases[b + 1]
        else:
            return start, len(self.text)
        return start, nxt - _break_len(self.text, nxt, start)

    def line_text(self, line: int) -> str:
        start, end = self.line_bounds(line)
        return self.text[start:end]

    def offset_at(self, position: Position, *, clamp: bool = True) -> int:
        line, character = position.line, position.character
        if line < 0 or character < 0:
            if not clamp:
                raise PositionError(f"negative position {position} is not valid")
            line, character = max(line, 0), max(character, 0)
        if line >= self._count:
            if not clamp:
                raise PositionError(
                    f"line {line} is past the end of the document ({self._count} lines, last is {self._count - 1})"
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
        line = self._rank(offset, True) - 1
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

        Rescans only the inserted text and its two neighbours, rebuilds the one or two blocks
        the edit touches and moves the base of each later block: O(edit + block + blocks),
        not O(lines), so a keystroke in a 1M-line file stays cheap. Handles ``\\r\\n`` pairs
        that the edit splits or joins.
        """
        if new_text is None:
            new_text = self.text[:start] + inserted + self.text[end:]
        delta = len(inserted) - (end - start)
        bases, shifts, lines, blocks = self._bases, self._shifts, self._lines, self._blocks
        # Line starts before ``lo`` depend only on unchanged text before the edit (0 is always one).
        lo = max(start, 1)
        keep = self._rank(lo, False)
        # A start k depends on text[k-1] and text[k]; rescan k in [lo, start+len(inserted)].
        hi = start + len(inserted)
        scanned = [m.end() for m in _BREAK.finditer(new_text, lo - 1, min(hi + 1, len(new_text))) if lo <= m.end() <= hi]
        # Old starts k >= end + 1 depend only on unchanged text at/after ``end``; they move by ``delta``.
        tail = self._rank(end + 1, False)
        count = keep + len(scanned) + self._count - tail
        # Block bl holds the last start kept, block br the first start of the tail (if any); the
        # new block takes bl's shift.
        bl = bisect_right(lines, keep - 1) - 1
        shift = shifts[bl]
        block = blocks[bl][: keep - lines[bl]]
        if scanned:
            block += map((-shift).__add__, scanned) if shift else scanned
        if tail < self._count:
            br = bisect_right(lines, tail) - 1
            rest = blocks[br][tail - lines[br] :]
            move = shifts[br] + delta - shift
            block += map(move.__add__, rest) if move else rest
        else:
            br = len(blocks) - 1
        first_line = lines[bl]
        new_shifts, new_lines, new_blocks = shifts[:bl], lines[:bl], blocks[:bl]
        size = _CHUNK
        if len(block) < size // 4 and new_blocks:  # too small: join the block before
            prev = new_shifts.pop()
            block = new_blocks.pop() + (list(map((shift - prev).__add__, block)) if shift != prev else block)
            shift, first_line = prev, new_lines.pop()
        if len(block) < size // 4 and br + 1 < len(blocks):  # still too small: join the block after
            br += 1
            move = shifts[br] + delta - shift
            block += map(move.__add__, blocks[br]) if move else blocks[br]
        # A big paste is cut into blocks of ``size`` to ``2 * size - 1`` starts.
        pieces = max(len(block) // size, 1) if len(block) > 2 * size else 1
        for p in range(pieces):
            new_shifts.append(shift)
            new_lines.append(first_line + p * size)
            new_blocks.append(block[p * size : (p + 1) * size] if p + 1 < pieces else block[p * size :] if p else block)
        new_bases = bases[: len(new_blocks) - pieces]
        new_bases += (shift + part[0] for part in new_blocks[-pieces:])
        moved = count - self._count
        later = br + 1
        new_bases += map(delta.__add__, bases[later:]) if delta else bases[later:]
        new_shifts += map(delta.__add__, shifts[later:]) if delta else shifts[later:]
        new_lines += map(moved.__add__, lines[later:]) if moved else lines[later:]
        new_blocks += blocks[later:]
        return LineIndex._of(new_text, new_bases, new_shifts, new_lines, new_blocks, count)


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

