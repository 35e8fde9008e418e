"""LSP positions on plain strings, for replay: zero-based lines split on ``\\n``, ``\\r\\n`` and ``\\r``,
characters in UTF-16 code units. Small and self-contained (``telemetry`` does not import the server).
"""

from __future__ import annotations

import re
from bisect import bisect_right

_BREAK = re.compile(r"\r\n|\r|\n")


def utf16_len(s: str) -> int:
    if s.isascii():
        return len(s)
    return len(s.encode("utf-16-le", "surrogatepass")) // 2


def line_starts(text: str) -> list[int]:
    return [0, *(m.end() for m in _BREAK.finditer(text))]


def _line_end(text: str, start: int) -> int:
    m = _BREAK.search(text, start)
    return m.start() if m else len(text)


def offset_at(text: str, line: int, character: int, starts: list[int] | None = None) -> int:
    """The str index of an LSP position, clamped into the document (past the end of a line: its end)."""
    starts = starts if starts is not None else line_starts(text)
    if line < 0:
        return 0
    if line >= len(starts):
        return len(text)
    begin = starts[line]
    end = _line_end(text, begin)
    return begin + chars_in_units(text[begin:end], character)


def chars_in_units(s: str, units: int) -> int:
    """How many characters of ``s`` fit in its first ``units`` UTF-16 code units (clamped to 0..len(s))."""
    if s.isascii():
        return max(0, min(units, len(s)))
    seen = 0
    for i, ch in enumerate(s):
        seen += 2 if ord(ch) > 0xFFFF else 1
        if seen > units:
            return i
    return len(s)


def position_at(text: str, offset: int, starts: list[int] | None = None) -> tuple[int, int]:
    """The LSP position of a str index (clamped into the document)."""
    starts = starts if starts is not None else line_starts(text)
    offset = max(0, min(offset, len(text)))
    line = bisect_right(starts, offset) - 1
    # An offset between the \r and \n of a CRLF belongs to the line the \r ends.
    if line > 0 and offset == starts[line] and text[offset - 1 : offset + 1] == "\r\n":
        line -= 1
    return line, utf16_len(text[starts[line] : offset])


def advance(line: int, character: int, inserted: str) -> tuple[int, int]:
    """The position reached after writing ``inserted`` at (line, character)."""
    last = None
    lines = 0
    for m in _BREAK.finditer(inserted):
        lines += 1
        last = m
    if last is None:
        return line, character + utf16_len(inserted)
    return line + lines, utf16_len(inserted[last.end() :])


def line_count(text: str) -> int:
    """How many lines ``text`` has as an editor shows them (LSP's breaks: CRLF, CR, LF), not counting the empty one
    after a final break; ``str.splitlines`` also breaks at form feeds and other separators, which no editor does."""
    starts = line_starts(text)
    return len(starts) - (starts[-1] == len(text))


def line_breaks(text: str) -> int:
    """How many line breaks ``text`` holds, counted as LSP counts them (CRLF, CR and LF: one each)."""
    return len(line_starts(text)) - 1


def line_suffix(text: str, offset: int) -> str:
    """The rest of the line after ``offset`` (line break excluded)."""
    return text[offset : _line_end(text, offset)]


def diff(old: str, new: str, hints: tuple[int, ...] = ()) -> tuple[int, int, str] | None:
    """One change turning ``old`` into ``new``: (start, end, inserted) with start/end str indices in ``old``.

    The change is as small as possible; where it could sit in several places (typing ``a`` next to
    an ``a``), the first hint (a cursor offset) that keeps it as small is used, so the change lands
    where the typing happened. None when the texts are equal.
    """
    if old == new:
        return None
    n = min(len(old), len(new))
    p = 0
    while p < n and old[p] == new[p]:
        p += 1

    def at(start: int) -> tuple[int, int, str]:
        limit = min(len(old), len(new)) - start
        q = 0
        while q < limit and old[len(old) - 1 - q] == new[len(new) - 1 - q]:
            q += 1
        return start, len(old) - q, new[start : len(new) - q]

    best = at(p)
    size = (best[1] - best[0]) + len(best[2])
    for hint in hints:
        if 0 <= hint < p:
            cand = at(hint)
            if (cand[1] - cand[0]) + len(cand[2]) == size:
                return cand
    return best


def _without_break(line: str) -> str:
    if line.endswith("\r\n"):
        return line[:-2]
    return line[:-1] if line.endswith(("\r", "\n")) else line


class SplitText:
    """A text held as its lines, each with its break, so that a run of LSP changes costs the lines each touches
    rather than a scan of the whole text per change (``line_starts`` for every change of a 100 kB document). The
    result is the one ``offset_at`` gives change by change: positions clamped alike, CRLF one break."""

    def __init__(self, text: str) -> None:
        starts = line_starts(text)
        self._lines = [text[a:b] for a, b in zip(starts, [*starts[1:], len(text)])]  # the last holds no break

    def _locate(self, line: int, character: int) -> tuple[int, int]:
        """(line index, str index in that line) of an LSP position, as ``offset_at`` clamps it."""
        if line < 0:
            return 0, 0
        if line >= len(self._lines):
            return len(self._lines) - 1, len(self._lines[-1])
        return line, chars_in_units(_without_break(self._lines[line]), character)

    def replace(self, start_line: int, start_character: int, end_line: int, end_character: int,
                inserted: str) -> None:
        """Replace the range (an end before the start: an empty range at the start) by ``inserted``."""
        first, a = self._locate(start_line, start_character)
        last, b = self._locate(end_line, end_character)
        if (last, b) < (first, a):
            last, b = first, a
        lines = self._lines
        chunk = lines[first][:a] + inserted + lines[last][b:]
        # A lone CR that now meets an LF (or an LF that now meets a CR) makes one CRLF break: the neighbour joins in.
        if first > 0 and chunk.startswith("\n") and lines[first - 1].endswith("\r"):
            first -= 1
            chunk = lines[first] + chunk
        if last + 1 < len(lines) and chunk.endswith("\r") and lines[last + 1].startswith("\n"):
            last += 1
            chunk += lines[last]
        starts = line_starts(chunk)
        pieces = [chunk[p:q] for p, q in zip(starts, [*starts[1:], len(chunk)])]
        if last + 1 < len(lines):
            pieces.pop()  # the chunk ends with a break: the empty line after it is the next line's start
        lines[first:last + 1] = pieces

    def text(self) -> str:
        return "".join(self._lines)
