"""LSP positions on plain strings, for replay: zero-based lines split on ``\\n``, ``\\r\\n`` and ``\\r``,
characters in UTF-16 code units. Small and self-contained (``telemetry`` does not import the server).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from itertools import accumulate, chain
from typing import Any

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


def _agree_from(old: Any, new: Any, start: int, limit: int) -> int:
    """Where ``old`` and ``new`` (str, ``SplitText`` or ``EditedText``) first differ at or after ``start``, or
    ``limit``; read in doubling slices, so it costs about the agreeing run and not a character-by-character loop."""
    p, size = start, 64
    while p < limit:
        q = min(limit, p + size)
        a, b = old[p:q], new[p:q]
        if a != b:
            k = 0
            while a[k] == b[k]:
                k += 1
            return p + k
        p, size = q, size * 2
    return limit


def _agree_back(old: Any, new: Any, start: int, limit: int) -> int:
    """How many characters ``old`` and ``new`` share at their ends, counting on from ``start`` known alike, at most
    ``limit``."""
    q, size, lo, ln = start, 64, len(old), len(new)
    while q < limit:
        r = min(limit, q + size)
        a, b = old[lo - r:lo - q], new[ln - r:ln - q]
        if a != b:
            k = 0
            while a[-1 - k] == b[-1 - k]:
                k += 1
            return q + k
        q, size = r, size * 2
    return limit


def same_text(old: Any, new: Any, same_start: int = 0, same_end: int = 0) -> bool:
    """Whether two texts are equal, reading only what lies between their first ``same_start`` and last
    ``same_end`` characters, which the caller knows agree (replay compares versions of one large document)."""
    if len(old) != len(new):
        return False
    n = len(old)
    same_start, same_end = max(0, min(same_start, n)), max(0, min(same_end, n))
    return same_start + same_end >= n or old[same_start:n - same_end] == new[same_start:n - same_end]


def diff(old: Any, new: Any, hints: tuple[int, ...] = (), same_start: int = 0,
         same_end: int = 0) -> tuple[int, int, str] | None:
    """One change turning ``old`` into ``new``: (start, end, inserted) with start/end str indices in ``old``.

    The change is as small as possible; where it could sit in several places (typing ``a`` next to
    an ``a``), the first hint (a cursor offset) that keeps it as small is used, so the change lands
    where the typing happened. None when the texts are equal. The texts are str, ``SplitText`` or ``EditedText``;
    a caller that knows their first ``same_start`` and last ``same_end`` characters agree passes them, and only
    the rest is read (versions of one large document differ in a few places).
    """
    n = min(len(old), len(new))
    p = _agree_from(old, new, max(0, min(same_start, n)), n)
    if p == n and len(old) == len(new):
        return None

    def kept(start: int) -> int:
        limit = n - start
        return _agree_back(old, new, max(0, min(same_end, limit)), limit)

    q = kept(p)
    best = (p, len(old) - q, new[p:len(new) - q])
    size = (best[1] - best[0]) + len(best[2])
    for hint in hints:
        if 0 <= hint < p:
            q = kept(hint)
            if (len(old) - q - hint) + (len(new) - q - hint) == size:
                return hint, len(old) - q, new[hint:len(new) - q]
    return best


def _without_break(line: str) -> str:
    if line.endswith("\r\n"):
        return line[:-2]
    return line[:-1] if line.endswith(("\r", "\n")) else line


def _split_lines(text: str) -> list[str]:
    """``text`` as its lines, each with its break (the last holds none and may be empty)."""
    starts = line_starts(text)
    return [text[a:b] for a, b in zip(starts, [*starts[1:], len(text)])]


class SplitText:
    """A text held as its lines, each with its break, so that a run of LSP changes costs the lines each touches
    rather than a scan of the whole text per change (``line_starts`` for every change of a 100 kB document). The
    result is the one ``offset_at`` gives change by change: positions clamped alike, CRLF one break.

    The lines are kept in blocks with their offsets, so str offsets and LSP positions convert both ways, and
    slices read, in the block's lines and not the whole text: replay rebuilds a long session on a large file
    change by change (``offset_at``, ``position_at``, ``splice`` and ``text[a:b]`` answer as on the str)."""

    BLOCK = 256  # lines a block holds; a block is split once it holds twice as many

    def __init__(self, text: str = "") -> None:
        lines = _split_lines(text)
        self._blocks = [lines[i:i + self.BLOCK] for i in range(0, len(lines), self.BLOCK)]
        self._starts = [[0, *accumulate(map(len, block))] for block in self._blocks]  # line offsets in the block
        self._index()

    def _index(self) -> None:
        """Each block's first line and first offset, with the totals at the end."""
        self._first_line = [0, *accumulate(map(len, self._blocks))]
        self._first_offset = [0, *accumulate(starts[-1] for starts in self._starts)]

    def __len__(self) -> int:
        return self._first_offset[-1]

    @property
    def line_total(self) -> int:
        """The lines ``line_starts`` finds: one more than the breaks (the last may be empty)."""
        return self._first_line[-1]

    def _line(self, line: int) -> tuple[int, int]:
        """(block, index in it) of a line index in range."""
        block = bisect_right(self._first_line, line, 0, len(self._blocks)) - 1
        return block, line - self._first_line[block]

    def _at_offset(self, offset: int) -> tuple[int, int, int]:
        """(block, index in it, the line's start) of the line holding a str offset in range (its start included)."""
        block = bisect_right(self._first_offset, offset, 0, len(self._blocks)) - 1
        base = self._first_offset[block]
        starts = self._starts[block]
        i = min(bisect_right(starts, offset - base) - 1, len(starts) - 2)
        return block, i, base + starts[i]

    def offset_at(self, line: int, character: int) -> int:
        """``offset_at`` on the text: the str index of an LSP position, clamped alike."""
        if line < 0:
            return 0
        if line >= self.line_total:
            return len(self)
        block, i = self._line(line)
        begin = self._first_offset[block] + self._starts[block][i]
        return begin + chars_in_units(_without_break(self._blocks[block][i]), character)

    def position_at(self, offset: int) -> tuple[int, int]:
        """``position_at`` on the text: the LSP position of a str index (clamped into the text)."""
        offset = max(0, min(offset, len(self)))
        block, i, begin = self._at_offset(offset)
        return self._first_line[block] + i, utf16_len(self._blocks[block][i][:offset - begin])

    def line_suffix(self, offset: int) -> str:
        """``line_suffix`` on the text: the rest of the line after ``offset`` (line break excluded)."""
        offset = max(0, min(offset, len(self)))
        block, i, begin = self._at_offset(offset)
        return _without_break(self._blocks[block][i])[offset - begin:]

    def __getitem__(self, key: slice) -> str:
        """``text[a:b]``, reading only the lines it spans (slices only, as on a str)."""
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError("SplitText reads slices only")
        a, b, _ = key.indices(len(self))
        if b <= a:
            return ""
        block, i, begin = self._at_offset(a)
        parts, reach = [], begin
        while reach < b:
            line = self._blocks[block][i]
            parts.append(line)
            reach += len(line)
            i += 1
            if i == len(self._blocks[block]):
                block, i = block + 1, 0
        return "".join(parts)[a - begin:b - begin]

    def replace(self, start_line: int, start_character: int, end_line: int, end_character: int,
                inserted: str) -> None:
        """Replace the range of LSP positions, clamped as ``offset_at`` clamps them (an end before the start: an
        empty range at the start), by ``inserted``."""
        self.splice(self.offset_at(start_line, start_character), self.offset_at(end_line, end_character), inserted)

    def splice(self, start: int, end: int, inserted: str) -> None:
        """``text[:start] + inserted + text[end:]``, for str offsets ``start <= end`` (clamped into the text)."""
        start = max(0, min(start, len(self)))
        end = max(start, min(end, len(self)))
        first_block, first_i, first_begin = self._at_offset(start)
        last_block, last_i, last_begin = self._at_offset(end)
        self._replace_lines(self._first_line[first_block] + first_i, start - first_begin,
                            self._first_line[last_block] + last_i, end - last_begin, inserted)

    def _replace_lines(self, first: int, a: int, last: int, b: int, inserted: str) -> None:
        """Replace from index ``a`` of line ``first`` to index ``b`` of line ``last``; the blocks those lines and
        their neighbours lie in are split into lines again, the others keep theirs."""
        lo_block = self._line(max(0, first - 1))[0]
        hi_block = self._line(min(self.line_total - 1, last + 1))[0]
        base = self._first_line[lo_block]
        lines = list(chain.from_iterable(self._blocks[lo_block:hi_block + 1]))
        first, last = first - base, last - base
        chunk = lines[first][:a] + inserted + lines[last][b:]
        # A lone CR that now meets an LF (or an LF that now meets a CR) makes one CRLF break: the neighbour joins in.
        if first > 0 and chunk.startswith("\n") and lines[first - 1].endswith("\r"):
            first -= 1
            chunk = lines[first] + chunk
        if last + 1 < len(lines) and chunk.endswith("\r") and lines[last + 1].startswith("\n"):
            last += 1
            chunk += lines[last]
        pieces = _split_lines(chunk)
        if last + 1 < len(lines):
            pieces.pop()  # the chunk ends with a break: the empty line after it is the next line's start
        lines[first:last + 1] = pieces
        size = len(lines) if len(lines) <= 2 * self.BLOCK else self.BLOCK
        blocks = [lines[i:i + size] for i in range(0, len(lines), size)]
        self._blocks[lo_block:hi_block + 1] = blocks
        self._starts[lo_block:hi_block + 1] = [[0, *accumulate(map(len, block))] for block in blocks]
        self._index()

    def text(self) -> str:
        return "".join(chain.from_iterable(self._blocks))


def _break_count(text: str) -> int:
    """``line_breaks`` of ``text`` counted with ``str.count``: no object per break."""
    lf = text.count("\n")
    cr = text.count("\r")
    return lf + cr - text.count("\r\n") if cr else lf


def _cut(text: str, size: int) -> list[str]:
    """``text`` cut into pieces of about ``size`` characters, never between the CR and the LF of a break."""
    pieces, start = [], 0
    while start < len(text):
        end = min(len(text), start + size)
        if text[end - 1] == "\r" and text[end:end + 1] == "\n":
            end += 1
        pieces.append(text[start:end])
        start = end
    return pieces


class _PrefixSums:
    """The sums of a list's prefixes, kept as its values change one at a time (a Fenwick tree): a change and a lookup
    cost the log of the list's length, where summing it again cost all of it."""

    def __init__(self, values: list[int]) -> None:
        tree = [0, *values]
        for i in range(1, len(tree)):
            if (up := i + (i & -i)) < len(tree):
                tree[up] += tree[i]
        self._tree = tree
        self.total = sum(values)

    def add(self, index: int, delta: int) -> None:
        self.total += delta
        i = index + 1
        while i < len(self._tree):
            self._tree[i] += delta
            i += i & -i

    def before(self, index: int) -> int:
        """The sum of the values before ``index``."""
        total, i = 0, index
        while i > 0:
            total += self._tree[i]
            i &= i - 1
        return total

    def reach(self, target: int) -> int:
        """The most leading values whose sum is at most ``target`` (the values are never negative)."""
        pos, step = 0, 1 << (len(self._tree) - 1).bit_length()
        while step:
            if pos + step < len(self._tree) and self._tree[pos + step] <= target:
                pos += step
                target -= self._tree[pos]
            step >>= 1
        return pos


class ChunkedText:
    """A text held as chunks of about ``CHUNK`` characters, each with its line breaks counted, for a text that many
    changes reach over a long time (an open document, while the store keeps it). ``SplitText`` holds a str and an int
    for every line: a file of short lines took about ten times its size. Here a change splits into lines only the
    chunks it reaches, at most ``SPLIT_CHUNKS`` at a time, and finds them through running sums of the chunks' lengths
    and breaks: it costs a chunk or two and the log of their number, and the text is held about once. The result is
    the one ``offset_at`` gives change by change, as ``SplitText``'s."""

    CHUNK = 1 << 14  # characters a chunk is cut to; one grown past twice as many is cut again
    SPLIT_CHUNKS = 16  # chunks held split into lines at once; past that, all are joined again (``settle``)

    def __init__(self, text: str = "") -> None:
        self._chunks: list[str | SplitText] = _cut(text, self.CHUNK)
        self._lengths = [len(chunk) for chunk in self._chunks]
        self._breaks = [_break_count(chunk) for chunk in self._chunks]
        self._split = 0  # chunks held as a SplitText
        self._index()

    def _index(self) -> None:
        """The running sums again, after chunks came or went."""
        self._offsets, self._break_sums = _PrefixSums(self._lengths), _PrefixSums(self._breaks)

    def __len__(self) -> int:
        return self._offsets.total

    @property
    def line_total(self) -> int:
        """The lines ``line_starts`` finds: one more than the breaks (the last may be empty)."""
        return self._break_sums.total + 1

    def text(self) -> str:
        return "".join(chunk if isinstance(chunk, str) else chunk.text() for chunk in self._chunks)

    def settle(self) -> None:
        """Join the chunks split into lines again: they hold an object per line."""
        if self._split:
            self._chunks = [chunk if isinstance(chunk, str) else chunk.text() for chunk in self._chunks]
            self._split = 0

    def _split_chunk(self, k: int) -> SplitText:
        chunk = self._chunks[k]
        if isinstance(chunk, SplitText):
            return chunk
        if self._split >= self.SPLIT_CHUNKS:
            self.settle()
        split = self._chunks[k] = SplitText(chunk)
        self._split += 1
        return split

    def _chunk_at(self, offset: int) -> int:
        """The chunk holding a str offset in range (the last chunk for the text's end)."""
        return min(self._offsets.reach(offset), len(self._chunks) - 1)

    def offset_at(self, line: int, character: int) -> int:
        """``offset_at`` on the text: the str index of an LSP position, clamped alike."""
        if line < 0 or not self._chunks:
            return 0
        if line >= self.line_total:
            return len(self)
        begin = 0
        if line > 0:
            k = self._break_sums.reach(line - 1)  # the chunk holding the break before the line
            before = self._break_sums.before(k)
            begin = self._offsets.before(k) + self._split_chunk(k).offset_at(line - before, 0)
        return begin + chars_in_units(self._line_head(begin, character), character)

    def _line_head(self, begin: int, limit: int) -> str:
        """The line starting at ``begin``, break excluded, up to ``limit`` characters: a line can run on over chunks."""
        parts, got = [], 0
        k = self._chunk_at(begin)
        local = begin - self._offsets.before(k)
        while k < len(self._chunks) and got < limit:
            chunk = self._chunks[k]
            rest = (chunk.line_suffix(local) if isinstance(chunk, SplitText)
                    else chunk[local:_line_end(chunk, local)])
            parts.append(rest[:limit - got])
            got += len(parts[-1])
            if local + len(rest) < len(chunk):  # a break ends it in this chunk
                break
            k, local = k + 1, 0
        return "".join(parts)

    def replace(self, start_line: int, start_character: int, end_line: int, end_character: int,
                inserted: str) -> None:
        """``SplitText.replace``: the range of LSP positions, clamped as ``offset_at`` clamps them, by ``inserted``."""
        self.splice(self.offset_at(start_line, start_character), self.offset_at(end_line, end_character), inserted)

    def splice(self, start: int, end: int, inserted: str) -> None:
        """``text[:start] + inserted + text[end:]``, for str offsets ``start <= end`` (clamped into the text)."""
        if not isinstance(inserted, str):
            raise TypeError("inserted text must be a str")
        start = max(0, min(start, len(self)))
        end = max(start, min(end, len(self)))
        if not self._chunks:
            self._put(0, 0, _cut(inserted, self.CHUNK))
            return
        i = self._chunk_at(start)
        j = max(i, self._chunk_at(end - 1)) if end > start else i  # the chunk the end is in or at the end of
        a, b = start - self._offsets.before(i), end - self._offsets.before(j)
        if i == j:
            split = self._split_chunk(i)
            split.splice(a, b, inserted)
            self._put(i, i + 1, [split] if len(split) <= 2 * self.CHUNK else _cut(split.text(), self.CHUNK))
        else:
            first, last = self._chunks[i], self._chunks[j]
            self._put(i, j + 1, _cut(first[0:a] + inserted + last[b:len(last)], self.CHUNK))

    def _put(self, lo: int, hi: int, pieces: list[str | SplitText]) -> None:
        """Chunks ``lo`` to ``hi`` replaced by ``pieces`` (empty ones left out), the breaks at both seams kept whole."""
        pieces = [piece for piece in pieces if len(piece)]
        self._split += (sum(isinstance(piece, SplitText) for piece in pieces)
                        - sum(isinstance(chunk, SplitText) for chunk in self._chunks[lo:hi]))
        if len(pieces) == hi - lo:  # as many chunks as before: the sums change in place
            self._chunks[lo:hi] = pieces
            for k in range(lo, hi):
                self._recount(k)
        else:
            self._chunks[lo:hi] = pieces
            self._lengths[lo:hi] = [len(piece) for piece in pieces]
            self._breaks[lo:hi] = [self._count(piece) for piece in pieces]
            self._index()
        if pieces:
            self._mend(lo + len(pieces) - 1)
        self._mend(lo - 1)

    def _count(self, chunk: str | SplitText) -> int:
        return chunk.line_total - 1 if isinstance(chunk, SplitText) else _break_count(chunk)

    def _recount(self, k: int) -> None:
        """The length and breaks of chunk ``k`` as it is now, in the sums."""
        length, breaks = len(self._chunks[k]), self._count(self._chunks[k])
        self._offsets.add(k, length - self._lengths[k])
        self._break_sums.add(k, breaks - self._breaks[k])
        self._lengths[k], self._breaks[k] = length, breaks

    def _mend(self, k: int) -> None:
        """A CR at the end of chunk ``k`` and an LF at the start of the next make one break: the LF joins chunk ``k``,
        so that each chunk's lines are the text's."""
        if not (0 <= k < len(self._chunks) - 1):
            return
        left, right = self._chunks[k], self._chunks[k + 1]
        if left[len(left) - 1:len(left)] != "\r" or right[0:1] != "\n":
            return
        if isinstance(left, SplitText):
            left.splice(len(left), len(left), "\n")
        else:
            self._chunks[k] = left + "\n"
        if isinstance(right, SplitText):
            right.splice(0, 1, "")
        else:
            self._chunks[k + 1] = right = right[1:]
        self._recount(k)
        if len(right):
            self._recount(k + 1)
        else:
            del self._chunks[k + 1], self._lengths[k + 1], self._breaks[k + 1]
            self._split -= isinstance(right, SplitText)
            self._index()


class EditedText:
    """``base`` (a str or a ``SplitText``) with ``base[start:end]`` replaced by ``inserted``, read through slices
    without copying ``base``: replay compares and diffs versions of one document that differ in a few places."""

    def __init__(self, base: Any, start: int, end: int, inserted: str) -> None:
        self.base, self.start, self.end, self.inserted = base, start, end, inserted

    def __len__(self) -> int:
        return len(self.base) - (self.end - self.start) + len(self.inserted)

    def __getitem__(self, key: slice) -> str:
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError("EditedText reads slices only")
        a, b, _ = key.indices(len(self))
        if b <= a:
            return ""
        start, after = self.start, self.start + len(self.inserted)
        shift = self.end - after
        head = self.base[a:b if b < start else start] if a < start else ""
        middle = self.inserted[max(a, start) - start:min(b, after) - start] if a < after and b > start else ""
        tail = self.base[max(a, after) + shift:b + shift] if b > after else ""
        return head + middle + tail

    def text(self) -> str:
        return self[0:len(self)]
