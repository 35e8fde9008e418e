"""The non-neural next-edit baseline: repeat the last replacement at its next occurrence.

From the last edit of the history it takes the smallest change (``old`` -> ``new``, widened to whole
identifiers), finds the next occurrence of ``old`` in the current text outside the lines just edited
(after the cursor first, then wrapping to the top) and predicts the same replacement on that line.
Multi-line changes are repeated as whole blocks. It never predicts an edit that undoes the last one,
nor one that changes nothing, and returns None when nothing applies.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Iterator, Sequence

from models.next_edit.examples import Edit, Example, TextLines, lines_of

_WORD = re.compile(r"\w")


def _is_word(ch: str) -> bool:
    return bool(_WORD.match(ch))


def _pattern(old: str) -> _Whole:
    """``old`` as a whole: not preceded by a word character when it starts with one, nor followed by one when it
    ends with one. Each end is guarded on its own: guarded only when both were, "f(x)" matched inside "ff(x)"."""
    return _Whole(old)


_REREAD = 8  # `_Whole`: how many times over the text `str.find` may compare again before the regex takes over


class _Match:
    """One occurrence found by `_Whole` (the parts of a regex match its callers use)."""

    __slots__ = ("string", "_start", "_end")

    def __init__(self, string: str, start: int, end: int) -> None:
        self.string, self._start, self._end = string, start, end

    def start(self) -> int:
        return self._start

    def end(self) -> int:
        return self._end

    def span(self) -> tuple[int, int]:
        return self._start, self._end

    def group(self, index: int = 0) -> str:
        if index != 0:
            raise IndexError("no such group")
        return self.string[self._start:self._end]


class _Whole:
    """The occurrences of ``old`` as a whole, found as the regex ``(?<!\\w)old(?!\\w)`` (each guard only where that
    end of ``old`` is a word character) finds them: leftmost first, not overlapping. Built on `str.find`: compiling
    that regex costs time in the length of ``old`` (a second for an identifier of a megabyte)."""

    __slots__ = ("old", "head", "tail", "_lead", "_regex")

    def __init__(self, old: str) -> None:
        self.old = old
        self.head = _is_word(old[0])  # an empty ``old`` raises IndexError, as the regex's construction did
        self.tail = _is_word(old[-1])
        self._lead = -1  # the length of the run of word characters ``old`` starts with, once needed
        self._regex: re.Pattern | None = None

    def _run_end(self, text: str, i: int) -> int:
        """Where the run of word characters through ``i`` ends, ``old`` occurring at ``i`` and starting with a
        word character: where the run ``old`` starts with ends, unless that is all of ``old``."""
        if self._lead < 0:
            self._lead = _WORDS.match(self.old).end()
        n = len(self.old)
        return i + self._lead if self._lead < n else _WORDS.match(text, i + n).end()

    def _find(self, text: str, pos: int) -> int:
        """Where the first occurrence at or after ``pos`` starts, or -1."""
        old, head, tail = self.old, self.head, self.tail
        n, size = len(old), len(text)
        budget = _REREAD * size + 65536  # characters `str.find` may compare again before the regex takes over
        while True:
            i = text.find(old, pos)
            if i < 0:
                return -1
            if head and i > 0 and _is_word(text[i - 1]):
                # inside a run of word characters: an occurrence starts where a run does, after this one
                pos = self._run_end(text, i)
            elif tail and i + n < size and _is_word(text[i + n]):
                # with the head guarded too, the next occurrence starts after this run of word characters
                pos = self._run_end(text, i) if head else i + 1
            else:
                return i
            budget -= max(0, i + n - pos)
            if budget < 0:
                # a long ``old`` overlapping itself all along the text (a periodic run of a minified line): each
                # `str.find` compares it again, where the regex's search carries its progress over
                if self._regex is None:
                    guard_head, guard_tail = ("(?<!\\w)" if head else ""), ("(?!\\w)" if tail else "")
                    self._regex = re.compile(guard_head + re.escape(old) + guard_tail)
                m = self._regex.search(text, pos)
                return -1 if m is None else m.start()

    def search(self, text: str, pos: int = 0) -> _Match | None:
        i = self._find(text, max(pos, 0))  # a guard still looks at the character before ``pos``
        return None if i < 0 else _Match(text, i, i + len(self.old))

    def finditer(self, text: str):
        n = len(self.old)
        i = self._find(text, 0)
        while i >= 0:
            yield _Match(text, i, i + n)
            i = self._find(text, i + n)

    def sub(self, repl, text: str) -> str:
        """``text`` with every occurrence replaced by ``repl(match)`` (a function, as `re.sub` calls one)."""
        if not callable(repl):
            raise TypeError("repl must be a function")
        out, last = [], 0
        for m in self.finditer(text):
            out.append(text[last:m._start])
            out.append(repl(m))
            last = m._end
        if not out:
            return text
        out.append(text[last:])
        return "".join(out)


def common_ends(a: Sequence, b: Sequence) -> tuple[int, int]:
    """(p, s): the lengths of the common prefix and (not overlapping it) the common suffix of a and b:
    characters of two strings, or lines of two lists of lines (b[p:len(b) - s] replaced a[p:len(a) - s])."""
    n, la, lb = min(len(a), len(b)), len(a), len(b)
    # Galloping over slices (compared at C speed) rather than item by item: an edit on a line of a few hundred
    # kilobytes (a data table) cost a Python step per character, several times a request.
    p, k = 0, 1
    while k:
        if p + k <= n and a[p:p + k] == b[p:p + k]:
            p, k = p + k, k * 2
        else:
            k //= 2
    s, k = 0, 1
    while k:
        if s + k <= n - p and a[la - s - k:la - s] == b[lb - s - k:lb - s]:
            s, k = s + k, k * 2
        else:
            k //= 2
    return p, s


def widen_to_identifiers(a: str, b: str, p: int, s: int) -> tuple[int, int]:
    """Shrink the common ends (p, s) of a and b so a change that touches an identifier takes all of it
    ("width" -> "w", not "idth" -> "")."""
    def touches(i: int, j: int) -> bool:  # the changed spans a[p:len(a)-s], b[p:len(b)-s] at index i / j
        return (len(a) - s > p and _is_word(a[i])) or (len(b) - s > p and _is_word(b[j]))

    # Once a step is taken the change touches the identifier, so each end moves over its whole run of word
    # characters at once (a character at a time, a change inside a 300 kB hex string took seconds).
    if p > 0 and _is_word(a[p - 1]) and touches(p, p):
        p = _word_run_start(a, p)
    if s > 0 and _is_word(a[len(a) - s]) and touches(len(a) - s - 1, len(b) - s - 1):
        s = len(a) - _WORDS.match(a, len(a) - s).end()
    return p, s


_WORDS = re.compile(r"\w*")


def _word_run_start(text: str, end: int) -> int:
    """Where the run of word characters that ends at ``end`` starts (read backwards in growing chunks)."""
    k = 64
    while True:
        lo = max(0, end - k)
        n = _WORDS.match(text[lo:end][::-1]).end()
        if n < end - lo or lo == 0:
            return end - n
        k *= 2


def replacement(last: Edit) -> tuple[str, str] | None:
    """(old, new) for the last edit: the differing middle, widened to whole identifiers. A block of
    several lines that is one token substitution throughout gives that substitution."""
    a, b = last.original, last.updated
    la, lb = a.splitlines(keepends=True), b.splitlines(keepends=True)
    if len(la) > 1 and len(la) == len(lb):
        changed = [(x, y) for x, y in zip(la, lb) if x != y]
        if changed:
            first = replacement(Edit(0, 1, *changed[0]))
            if first is not None and "\n" not in first[0] and _pattern(first[0]).sub(lambda _m: first[1], a) == b:
                return first
    p, s = common_ends(a, b)
    if "\n" in a[p:len(a) - s] or "\n" in b[p:len(b) - s]:
        return (a, b) if a else None  # a block change: repeat the whole block
    p, s = widen_to_identifiers(a, b, p, s)
    old, new = a[p:len(a) - s], b[p:len(b) - s]
    if not old.strip():
        # a pure insertion: anchor it on the next non-blank character when that is punctuation
        # (e.g. ", x" before ")"), else on the identifier before it (e.g. "x" -> "x, y")
        rest = a[len(a) - s:] if s else ""
        anchor = rest.lstrip(" \t")[:1]
        q = p
        while q > 0 and _is_word(a[q - 1]):
            q -= 1
        if anchor and anchor != "\n" and not _is_word(anchor):
            gap = rest[:len(rest) - len(rest.lstrip(" \t"))]
            # a string's prefix (`f`, `r`, `b` glued to its quote) takes the punctuation before the quote too: on the
            # quote alone it went before every quote of the next line (`log(f"middlef")`); other text (`, end=""`
            # before a call's `)`) follows whatever comes before it, so it keeps the right anchor alone
            glued = not gap and anchor in "\"'`" and bool(new) and all(map(_is_word, new))
            left = a[p - 1] if glued and p > 0 and not _is_word(a[p - 1]) and not a[p - 1].isspace() else ""
            old, new = left + old + gap + anchor, left + new + gap + anchor
        elif q < p:
            old, new = a[q:p] + old, a[q:p] + new
        else:
            return None
    if old == new:
        return None
    return old, new


def punctuation_insertion(old: str, new: str) -> bool:
    """Whether (old, new) puts text beside punctuation alone (`)` -> `, y)`): a line holding that punctuation several
    times takes it once, as the edit did, not at each (`print(len(items, y), y)`)."""
    p, s = common_ends(old, new)
    return p + s >= len(old) and not any(map(_is_word, old))


def last_on_each_line(text: str, found: list) -> list:
    """Of the matches ``found`` in ``text`` (in order), the last on each of its lines: text put before a closer goes to
    the outermost call of a line (`print(len(items), end="")`), as a statement's last argument is most often added."""
    return [m for m, after in zip(found, found[1:] + [None]) if after is None or "\n" in text[m.start():after.start()]]


def done_there(line: str, at: int, new: str, within: int) -> bool:
    """Whether the old text at ``at`` of ``line`` already stands inside the ``new`` text it becomes (``within``: its
    place there, -1 when it has none): an insertion generalised as `path` -> `path, sep` found its own line, which
    still holds `path`, and offered `path, sep, sep`; a keyword argument added to every call offered it again at the
    calls that had it."""
    return within >= 0 and at >= within and line.startswith(new, at - within)


class BaselinePredictor:
    """``predict(example) -> Edit | None`` using only the history and the current text."""

    name = "baseline"

    def predict(self, example: Example) -> Edit | None:
        return self.predict_next(example.history, example.current)

    def predict_next(self, history: list[Edit], current: str, lines: TextLines | None = None) -> Edit | None:
        """The last replacement repeated at its next occurrence in ``current`` (after the edited lines,
        then wrapping to the top), or None. ``lines``: ``current``'s lines, read instead of splitting it (``current``
        is then read through them only); the rows that hold the old text are then found by searching their text
        (at C speed: ``current``, or the document an LF view reads), the others never read."""
        if not history:
            return None
        last = history[-1]
        rep = replacement(last)
        if rep is None:
            return None
        old, new = rep
        rows = lines_of(current) if lines is None else lines
        edited_lo = last.start_line
        edited_hi = last.start_line + max(1, len(lines_of(last.updated)))
        spans = ((edited_hi, len(rows)), (0, min(edited_lo, len(rows))))  # the rows searched, in this order
        if "\n" in old:
            if lines is None:
                order = _rows(spans)
            elif not lines.text_has_cr:
                order = _rows_found(lines, spans, lambda at: lines.text.find(old, at))
            else:  # the block's breaks may be CRLF or CR in the text searched: its longest line is searched instead
                order = _block_rows_found(lines, spans, old)
            at_end = unterminated_end(rows, old)
            if at_end is not None:  # the text's last lines, found by no search for the block
                order = itertools.chain(order, [len(rows) - len(lines_of(old))])
            return self._block(rows, order, old, new, last, at_end)
        pattern = _pattern(old)

        def find(at: int) -> int:
            found = pattern.search(lines.text, at)
            return -1 if found is None else found.start()

        order = _rows(spans) if lines is None else _rows_found(lines, spans, find)
        multi = len(lines_of(last.original)) > 1  # the last edit spanned lines: so may the next
        within = new.find(old)
        once = punctuation_insertion(old, new)
        for row in order:
            line = rows[row]
            if not pattern.search(line):
                continue
            end = row + 1
            while multi and end < len(rows) and pattern.search(rows[end]) and not edited_lo <= end < edited_hi:
                end += 1
            block = "".join(rows[row:end])
            found = [m for m in pattern.finditer(block) if not done_there(block, m.start(), new, within)]
            if once:
                found = last_on_each_line(block, found)
            if not found:
                continue
            new_line = _substitute(block, found, new)
            cand = Edit(row, end, block, new_line)
            if new_line != line and not _undoes(cand, last):
                return cand
        return None

    def _block(self, lines: list[str] | TextLines, order: Iterable[int], old: str, new: str, last: Edit,
               at_end: str | None) -> Edit | None:
        """The first row of ``order`` where the block ``old`` stands (``at_end``: `unterminated_end` of it)."""
        n = len(lines_of(old))
        for row in order:
            if "".join(lines[row:row + n]) == old:
                cand = Edit(row, row + n, old, new)
            elif at_end is not None and row == len(lines) - n:
                cand = Edit(row, row + n, at_end, new[:-1] if new.endswith("\n") else new)
            else:
                continue
            if not _undoes(cand, last):
                return cand
        return None


def unterminated_end(lines: list[str] | TextLines, block: str) -> str | None:
    """The text's last lines where they are ``block`` but for its final line break, which the text's last line
    lacks (a line deleted again there was never offered), else None."""
    n = len(lines_of(block))
    if not block.endswith("\n") or not 0 < n <= len(lines) or lines[len(lines) - 1].endswith(("\n", "\r")):
        return None
    tail = "".join(lines[len(lines) - n:])
    return tail if tail + "\n" == block else None


def _substitute(line: str, found: list, new: str) -> str:
    """``line`` with the matches ``found`` (in order) replaced by ``new``."""
    out, last = [], 0
    for m in found:
        out += [line[last:m.start()], new]
        last = m.end()
    return "".join(out) + line[last:]


def _rows(spans: tuple[tuple[int, int], ...]) -> Iterator[int]:
    """Every row of the spans ([lo, hi) each), in order."""
    for lo, hi in spans:
        yield from range(lo, hi)


def _rows_found(lines: TextLines, spans: tuple[tuple[int, int], ...], find: Callable[[int], int],
               below: int = 0) -> Iterator[int]:
    """The rows of the spans, in order, that ``find(offset)`` (the next place in ``lines.text`` at or after
    ``offset`` where the old text starts, or -1) lands on, ``below`` rows up: `_rows` less the rows on which the
    old text does not start, which are passed over by the search instead of being read one by one. The old text
    holds no line break (or starts a block of lines at a row's start), so a row it starts on is the row ``find``
    lands on (``below``: the text searched is the block's line that many rows below its first)."""
    for lo, hi in spans:
        row = lo
        while row < hi and row + below <= len(lines):
            at = find(lines.start(row + below))
            if at < 0:
                break
            row = lines.line_at(at) - below
            if row >= hi:
                break
            yield row
            row += 1


def _block_rows_found(lines: TextLines, spans: tuple[tuple[int, int], ...], block: str) -> Iterator[int]:
    """`_rows_found` for a block of lines ``block`` (line breaks LF) in a text whose breaks may be CRLF or CR:
    the rows ``below`` which its longest line, less its break, is found (a text holding no line break lies where
    it lies in the LF view). Rows the block starts on are among them, in order; every row when all its lines are
    blank."""
    body = lines_of(block)
    below = max(range(len(body)), key=lambda k: len(body[k].rstrip("\n")))
    needle = body[below].rstrip("\n")
    if not needle:
        return _rows(spans)
    return _rows_found(lines, spans, lambda at: lines.text.find(needle, at), below)


def _undoes(pred: Edit, last: Edit) -> bool:
    """``pred`` takes ``last`` back: the same lines, where ``last`` left them (where it is known). The same swap
    elsewhere (`True` to `False` in one class, then `False` to `True` in the next) is no undo: it was never offered."""
    return (pred.original == last.updated and pred.updated == last.original
            and (last.start_line < 0 or pred.start_line == last.start_line))
