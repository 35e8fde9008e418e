"""Candidate next edits generalised from the edit history, and the features the edit ranker scores.

Most next edits that can be guessed at all repeat something the programmer just did somewhere else:
the same substitution at another use, the same text added before the same punctuation on a sibling
line, the same block inserted after a matching line, the same lines deleted again. Each history edit
(the last ``MAX_HISTORY``) is generalised in several ways and every place in the current text where a
generalisation applies gives a candidate; `models.next_edit.ranker` picks one (or none) of them.

Generators (``GENERATORS``):

- ``substitute_all`` / ``substitute_one``: the edit's smallest change (`baseline.replacement`, whole
  identifiers) on every line holding its old text, all occurrences on the line / one of several;
- ``block``: a multi-line change repeated where its original block occurs again;
- ``context``: a one-line change (text inserted, deleted or replaced between the same characters) made
  where the same characters surround the same old text: the whole rest of the line on one side, or
  the 3 / 1 nearest characters on both sides;
- ``repeat`` / ``delete``: the whole edit again where its original lines occur again;
- ``insert``: inserted lines inserted again next to a line equal to one beside the first insertion (not
  right beside an identical block: that would stutter).

Candidates that change nothing, undo the last edit, write a history edit's text again beside it or make a change
the programmer took back are dropped; two candidates leaving the same text are one (the first generator in
``GENERATORS`` order, the most recent edit, keeps it). `breaks_code` tells the ranker which of its best candidates
would leave the code around them failing to parse, ``misplaced`` which put an argument into another function's
call than the history did (`mark_misplaced_arguments`) or a renamed name's change inside a longer name, or insert
lines of blanks alone.
"""

from __future__ import annotations

import functools
import keyword
import math
import re
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field

from models import syntax
from models.next_edit.baseline import (BaselinePredictor, _is_word, _pattern, _substitute, _undoes, common_ends,
                                      done_there, punctuation_insertion, replacement, unterminated_end,
                                      widen_to_identifiers)
from models.next_edit.examples import Edit, TextLines, apply_all, apply_edit, lines_of, runs_between, written

MAX_HISTORY = 8  # history edits generalised, most recent last
MAX_CANDIDATES = 400  # kept per request, nearest the cursor first (in the baseline's search order)
MAX_LINE_CHARS = 400  # longer lines are skipped (minified or generated text)
SEARCH_LINES = 1500  # lines searched on each side of the cursor (a long file costs no more than a 3,000-line one)

GENERATORS = ("substitute_all", "substitute_one", "block", "context", "repeat", "delete", "insert")
CONTEXT_CHARS = (3, 1)  # nearest characters that must surround a one-line change's old text
CALL_LINES = 10  # lines above a candidate's searched for the call whose arguments it adds to (`argument_site`)
SYNTAX_LINES = 25  # lines parsed on each side of a candidate at most (`breaks_code`), to the statements around it
PYTHON_SUFFIXES = (".py", ".pyi", ".pyw")

_TOKEN = re.compile(r"\w+|[^\w\s]")
_FIRST_TOKEN = re.compile(r"\s*(\w+|\S)")


@dataclass
class Candidate:
    edit: Edit
    key: tuple  # the edit without the unchanged lines at its ends: equal keys leave equal texts
    generator: str
    age: int  # which history edit it generalises: 0 = the last one
    source: str  # the line (or block) that edit changed, to compare the candidate's line with
    occurrences: int = 1  # of the old text on the candidate's line
    context: tuple[int, int] = (0, 0)  # characters matched left / right of the old text (context generator)
    ways: int = 1  # how many generalisations gave the same text
    features: list[float] = field(default_factory=list)
    # never the answer: its change put where the history's does not go (an argument, `mark_misplaced_arguments`; a
    # rename inside a longer name, `_inside_longer_name`), or lines of blanks alone inserted
    misplaced: bool = False


FEATURE_NAMES = [f"generator_{g}" for g in GENERATORS] + [
    "age", "context_left", "context_right", "log_distance", "after_cursor", "on_cursor_line", "order_rank",
    "log_group_size", "is_baseline", "similarity", "same_indent", "same_first_token", "log_size", "ways",
    "occurrences", "log_lines", "history_length", "near_last_edit", "line_rank", "age_rank",
    "similarity_to_last_edit", "indent_change", "same_scope_as_last_edit", "same_top_level_as_last_edit",
]

_SCOPE = re.compile(r"\s*(?:async\s+)?(?:def|class)\b")


def enclosing_scopes(lines: list[str] | TextLines, first: int = 0,
                     end: int | None = None) -> tuple[list[int], list[int]]:
    """Per line of ``lines[first:end]``: the line of the innermost ``def``/``class`` holding it (a header holds
    itself: a renamed parameter's uses share its scope) and of the top-level statement it belongs to (-1 for
    none), by indentation: blank lines and comments belong to what is open. The scan starts at the last
    top-level line at or above ``first``, so a request in a huge file reads its window, not the whole file
    (``lines`` may be a `TextLines`: the lines scanned are read as slices)."""
    end = len(lines) if end is None else min(end, len(lines))
    begin = _top_level_above(lines, min(first, max(end - 1, 0)))
    inner, top = [], []
    stack: list[tuple[int, int]] = []  # (indent, line) of the open def/class headers
    top_line = -1
    for row, line in enumerate(lines[begin:end], begin):
        body = line.strip()
        if body and not body.startswith("#"):
            ind = _indent(line)
            while stack and stack[-1][0] >= ind:
                stack.pop()
            if ind == 0:
                top_line = row
            if _SCOPE.match(line):
                stack.append((ind, row))
        if row >= first:
            inner.append(stack[-1][1] if stack else -1)
            top.append(top_line)
    return inner, top


def _top_level_above(lines: list[str] | TextLines, row: int, chunk: int = 256) -> int:
    """The last row at or above ``row`` holding a top-level line, else 0 (row 0 itself is not read). The rows are
    read ``chunk`` at a time, upwards: a line read from a `TextLines` one by one costs a search of its index."""
    while row > 0:
        low = max(row - chunk, 0)
        block = lines[low + 1:row + 1]  # rows (low, row]
        for k in range(len(block) - 1, -1, -1):
            if _top_level(block[k]):
                return low + 1 + k
        row = low
    return 0


def _top_level(line: str) -> bool:
    """A statement at indentation 0: nothing above it is still open."""
    return bool(line.strip()) and not line[:1].isspace() and not line.lstrip().startswith("#")


def _indent(s: str) -> int:
    return len(s) - len(s.lstrip(" \t"))


def _first_token(s: str) -> str:
    m = _FIRST_TOKEN.match(s)
    return m.group(1) if m else ""


def _similarity(ta: set[str], tb: set[str]) -> float:
    """Jaccard similarity of two lines' token sets (identifiers and punctuation, `_line_facts`)."""
    if not ta and not tb:
        return 1.0
    shared = len(ta & tb)  # iterates the smaller set; a union would copy a long line's set per candidate
    return shared / (len(ta) + len(tb) - shared)


def _line_facts(s: str) -> tuple[set[str], int, str]:
    """(token set, indentation, first token) of a line. `featurize` memoises it per request: every candidate is
    compared with its history edit's line and the last edit's line, so a long one (a data table) was tokenised
    once per candidate (a rename in a 130 kB line's comment took 13 s a request)."""
    return set(_TOKEN.findall(s)), _indent(s), _first_token(s)


def _changed_line_pairs(edit: Edit) -> list[tuple[str, str]]:
    """(old line, new line) for the lines an edit changed, when it kept its number of lines."""
    a, b = lines_of(edit.original), lines_of(edit.updated)
    return [(x, y) for x, y in zip(a, b) if x != y] if len(a) == len(b) else []


def edit_key(edit: Edit) -> tuple:
    """(start line, end line, new lines) once the lines the edit leaves as they were are dropped from
    both ends: two edits of one text with equal keys leave equal texts (without building them)."""
    a, b = lines_of(edit.original), lines_of(edit.updated)
    if b and not b[-1].endswith("\n") and a and a[-1].endswith("\n"):
        b[-1] += "\n"  # apply_edit ends a shorter last line with the newline it replaces
    head, tail = common_ends(a, b)  # in whole lines
    return (edit.start_line + head, edit.end_line - tail, "".join(b[head:len(b) - tail]))


class _Collector:
    """Candidates by key: the first way to a text keeps it, later ones count in its ``ways``."""

    def __init__(self, last: Edit | None, lines: list[str] | TextLines, recent: list[Edit] | None = None,
                 refused: list[Edit] | tuple = ()) -> None:
        """``recent``: the history edits generalised, oldest first (``last`` alone when None); ``refused``: edits
        the programmer took back (`prompt.taken_back`), whose change is offered nowhere again."""
        self.last = last
        self.lines = lines
        self.found: dict[tuple, Candidate] = {}
        self.written = _written_rows(recent if recent is not None else [last] if last is not None else [])
        self.refused = {rep for e in refused if (rep := replacement(e)) is not None}
        self.undo: Edit | None = None  # the last edit undone, as an edit of ``lines``, when it fits them
        if last is not None:
            end = last.start_line + len(lines_of(last.updated))
            if end <= len(lines) and "".join(lines[last.start_line:end]) == last.updated:
                undo = Edit(last.start_line, end, last.updated, last.original)
                self.undo_growth = len(written(lines, undo)) - len(undo.original)
                # the lines it changes alone (the same text left): a last edit sent as one change over the whole
                # file (a formatter's, Neovim's `:%s`) made every comparison read the file, seconds a request
                start, stop, updated = edit_key(undo)
                self.undo = Edit(start, stop, "".join(lines[start:stop]), updated)

    def add(self, edit: Edit, generator: str, age: int, source: str, **extra) -> tuple | None:
        """Add ``edit``; its key, or None when it is dropped (it changes nothing or undoes the last edit)."""
        key = edit_key(edit)
        if key[0] == key[1] and not key[2]:
            return None  # changes nothing
        if self.last is not None and (_undoes(edit, self.last) or self._restores(edit)):
            return None
        if self._again(edit) or _stutters(edit) or (self.refused and replacement(edit) in self.refused):
            return None
        seen = self.found.get(key)
        if seen is not None:
            seen.ways += 1
            return key
        self.found[key] = Candidate(edit, key, generator, age, source, **extra)
        if not edit.original and not edit.updated.strip() and edit.updated.strip("\r\n"):
            # lines of blanks alone (Neovim's `o` sends its new line's indent as an edit of its own): scored with the
            # others, as in training, never the answer
            self.found[key].misplaced = True
        return key

    def _again(self, edit: Edit) -> bool:
        """Whether ``edit`` writes a history edit's text once more right beside it on the one line it wrote (the same
        characters put in place of the same ones, where they start or end, the line still holding them): `from os
        import path, sep` offered `, sep` again, `x  # noqa` another `  # noqa`. Any recent edit, not the last alone:
        `s` typed after `item` in a signature and the uses renamed after it, `items` -> `itemss` was offered there,
        its anchor being the rest of the line. The same change elsewhere on the line (the second use of a name renamed
        once) is another edit."""
        if edit.end_line - edit.start_line != 1 or edit.start_line not in self.written:
            return False
        at, removed, inserted = _change(edit.original, edit.updated)
        return bool(inserted) and any((removed, inserted) == (was_removed, was_inserted)
                                      and at in (was_at, was_at + len(was_inserted))
                                      and edit.original.startswith(was_inserted, was_at)
                                      for was_at, was_removed, was_inserted in self.written[edit.start_line])

    def _restores(self, edit: Edit) -> bool:
        """Whether ``edit`` leaves the text the last edit changed, though its blocks are not the last edit's swapped
        (the last edit also rewrote unchanged lines around its change): comparing the blocks alone let such an
        undo through, and the ranker chose it. Only an edit that overlaps or touches the lines the last edit wrote
        and grows the text by as much as the undo is compared, on the lines from the first either edit touches
        to the last (elsewhere only a run of repeated lines could give the same text)."""
        u = self.undo
        if u is None or edit.start_line > u.end_line or edit.end_line < u.start_line \
                or len(written(self.lines, edit)) - len(edit.original) != self.undo_growth:
            return False
        lo, hi = min(edit.start_line, u.start_line), max(edit.end_line, u.end_line)

        def span(e: Edit) -> Iterator[str]:
            yield from _line_chunks(self.lines, lo, e.start_line)
            yield written(self.lines, e)
            yield from _line_chunks(self.lines, e.end_line, hi)

        return _same_text(span(edit), span(u))


def _written_rows(recent: list[Edit]) -> dict[int, list[tuple[int, str, str]]]:
    """For each row of the current text still holding the one line a recent edit wrote (its row followed through the
    later edits' added and removed lines; a later edit of that line alone keeps it): (offset, removed, inserted) of
    that edit's change (`_change`)."""
    out: dict[int, list[tuple[int, str, str]]] = {}
    sizes = [len(lines_of(h.updated)) for h in recent]  # each edit split once (a formatter's spans the file)
    for i, h in enumerate(recent):
        if sizes[i] != 1 or len(lines_of(h.original)) > 1:
            continue
        row: int | None = h.start_line
        for later, size in zip(recent[i + 1:], sizes[i + 1:]):
            if later.end_line <= row:
                row += size - (later.end_line - later.start_line)
            elif later.start_line <= row < later.end_line and not (later.end_line - later.start_line == size == 1):
                row = None  # rewritten with other lines
                break
        if row is not None and row >= 0:
            out.setdefault(row, []).append(_change(h.original, h.updated))
    return out


def _stutters(edit: Edit) -> bool:
    """Whether ``edit`` puts a list item on one line right beside a copy of itself: once every call had `, color='r'`,
    the calls that had it were offered it again, and accepted in turn wrote `color='r', color='r'`. Only an item (text
    with a word, starting or ending with a separator) counts: `.parent` put after `.parent`, a `0` beside a `0`
    (`100` -> `1000`) or an indentation deepened is an edit."""
    if edit.end_line - edit.start_line != 1 or len(lines_of(edit.updated)) != 1:
        return False
    at, removed, inserted = _change(edit.original, edit.updated)
    item = inserted.strip()
    if removed or not item or not (item[0] in _SEPARATORS or item[-1] in _SEPARATORS) or not re.search(r"\w", item):
        return False
    line = edit.original
    return line.startswith(inserted, at) or (at >= len(inserted) and line.startswith(inserted, at - len(inserted)))


_SEPARATORS = ",;"  # what a list item starts or ends with


def _line_chunks(lines: list[str] | TextLines, start: int, stop: int) -> Iterator[str]:
    """Lines ``start`` to ``stop`` end to end, in pieces of doubling size: read only as far as a comparison goes."""
    step = 1
    while start < stop:
        end = min(stop, start + step)
        yield "".join(lines[start:end])
        start, step = end, step * 2


def _same_text(one: Iterator[str], other: Iterator[str]) -> bool:
    """Whether two texts given in pieces are one, read until they first differ: a candidate compared with a last
    edit over the whole file (a formatter's, Neovim's `:%s`) joined every line between them, seconds a request."""
    a: str | None = ""
    b: str | None = ""
    while True:
        if a == "":
            a = next(one, None)
        if b == "":
            b = next(other, None)
        if a is None or b is None:
            return (a or "") == (b or "") == "" and not any(one) and not any(other)
        n = min(len(a), len(b))
        if a[:n] != b[:n]:
            return False
        a, b = a[n:], b[n:]


def generate(history: list[Edit], current: str, original: str | None = None,
             cursor_line: int | None = None, lines: TextLines | None = None,
             refused: list[Edit] | tuple = ()) -> list[Candidate]:
    """Every candidate for the text ``current`` left by ``history`` (each edit applying to the text the
    one before it left; ``original``, the text before the first, lets insertions find their neighbours
    exactly, else they are found by undoing the later edits), within ``SEARCH_LINES`` of ``cursor_line``
    when it is given. ``lines``: ``current``'s lines, read instead of splitting it (``current`` is then read
    through them only): the rows searched are read once as one slice, and without ``original`` the texts before
    the edits are rebuilt as line tables (`_lines_before`), so a request costs its window and its edits, not the
    file's length. ``refused``: edits taken back (`prompt.taken_back`), whose change no candidate makes."""
    table = lines_of(current) if lines is None else lines
    n = len(table)
    lo, hi = (0, n) if cursor_line is None else (max(0, cursor_line - SEARCH_LINES), min(n, cursor_line + SEARCH_LINES))
    rows = range(lo, hi)
    edge = max(lo - 1, 0)
    near = table[edge:max(edge, min(n, hi + 1))]  # the rows searched and one on each side (insertions read them)
    searched = near[lo - edge:lo - edge + len(rows)]  # lines[row] for row in rows
    recent = history[-MAX_HISTORY:]
    out = _Collector(history[-1] if history else None, table, recent, refused)
    context = _ContextSearch(out, list(zip(rows, searched)))
    if lines is None or original is not None:
        texts_before = _texts_before(history, current, original, len(recent))

        def lines_before(i: int) -> list[str] | None:
            """The lines of the text the ``i``-th recent edit applied to, None where it cannot be rebuilt."""
            return None if texts_before[i] is None else lines_of(texts_before[i])
    else:
        lines_before = _lines_before(recent, current, table).__getitem__
    for i, h in enumerate(recent):
        age = len(recent) - 1 - i
        h_lines = lines_of(h.original)
        source = h_lines[0] if h_lines else (lines_of(h.updated) or [""])[0]
        rep = replacement(h)
        if rep is not None and "\n" not in rep[0]:
            pattern = _pattern(rep[0])
            within = rep[1].find(rep[0])  # where the old text lies in the new one (an insertion beside it), if it does
            once = punctuation_insertion(*rep)
            for row, line in zip(rows, searched):
                if len(line) > MAX_LINE_CHARS or rep[0] not in line:
                    continue
                matches = list(pattern.finditer(line))
                found = [m for m in matches if not done_there(line, m.start(), rep[1], within)]
                if not found:
                    continue
                # an occurrence that has the change already stays as it is; text put beside punctuation alone goes in
                # at one occurrence (substitute_one), not at every quote or bracket of the line
                if not (once and len(found) > 1):
                    substituted = (_substitute(line, found, rep[1]) if len(found) < len(matches) else
                                   pattern.sub(lambda _m, new=rep[1]: new, line))
                    out.add(Edit(row, row + 1, line, substituted), "substitute_all", age, source,
                            occurrences=len(found))
                if len(found) > 1:
                    for m in found:
                        out.add(Edit(row, row + 1, line, line[:m.start()] + rep[1] + line[m.end():]), "substitute_one",
                                age, source, occurrences=len(found))
        elif rep is not None:
            block = lines_of(rep[0])
            k = len(block)
            for row, line in zip(range(lo, min(hi, n - k + 1)), searched):
                if line == block[0] and "".join(table[row:row + k]) == rep[0]:
                    out.add(Edit(row, row + k, rep[0], rep[1]), "block", age, source)
        for old_line, new_line in _changed_line_pairs(h):
            context.add(old_line, new_line, age)
        if h.original:
            k = len(h_lines)
            for row, line in zip(range(lo, min(hi, n - k + 1)), searched):
                if line == h_lines[0] and "".join(table[row:row + k]) == h.original:
                    out.add(Edit(row, row + k, h.original, h.updated), "repeat" if h.updated else "delete", age, source)
            if lo <= n - k < hi and (at_end := unterminated_end(table, h.original)) is not None:
                out.add(Edit(n - k, n, at_end, h.updated[:-1] if h.updated.endswith("\n") else h.updated),
                        "repeat" if h.updated else "delete", age, source)
        elif h.updated and (before := lines_before(i)) is not None:
            above = before[h.start_line - 1].strip() if 0 < h.start_line <= len(before) else ""
            below = before[h.start_line].strip() if h.start_line < len(before) else ""
            block = lines_of(h.updated)
            k = len(block)
            for row in range(lo, hi + 1):
                if not ((above and row > 0 and near[row - 1 - edge].strip() == above)
                        or (below and row < n and near[row - edge].strip() == below)):
                    continue
                if table[max(0, row - k):row] == block or table[row:row + k] == block:
                    continue  # the same lines again right beside themselves: a stutter, not an edit
                out.add(Edit(row, row, "", h.updated), "insert", age, source)
    context.settle()
    mark_misplaced_arguments(out.found, recent, table)
    return list(out.found.values())


def _change(before: str, after: str) -> tuple[int, str, str]:
    """Where ``after`` differs from ``before`` and how: (offset, removed, inserted), the common ends left out."""
    head, tail = common_ends(before, after)
    return head, before[head:len(before) - tail], after[head:len(after) - tail]


def _texts_before(history: list[Edit], current: str, original: str | None, recent: int) -> list[str | None]:
    """The text each of the last ``recent`` history edits applied to (None where it cannot be rebuilt)."""
    start = len(history) - recent
    if original is not None:
        out, text = [], apply_all(original, history[:start])
        for h in history[start:]:
            out.append(text)
            text = apply_edit(text, h)
        return out
    out: list[str | None] = []
    text: str | None = current
    for h in reversed(history[start:]):  # undo from the current text
        if text is not None:
            undo = Edit(h.start_line, h.start_line + len(lines_of(h.updated)), h.updated, h.original)
            try:
                text = apply_edit(text, undo)
            except ValueError:
                text = None
        out.append(text)
    return out[::-1]


_BRACKET = re.compile(r"[][(){}]")
_DEFINING = ("def", "function", "fn", "func", "fun", "sub")  # a definition's keyword before its name
_NO_CALL = frozenset({"if", "elif", "while", "for", "switch", "return", "and", "or", "not", "in", "is", "with",
                      "assert", "yield", "await", "catch", "except", "lambda", "else", "match", "case", "function",
                      "fn", "func"})


def argument_site(edit: Edit, lines: list[str] | TextLines | None = None) -> tuple[str, tuple[str, str, bool]] | None:
    """(the argument, (name, what it is called on, whether a definition)) of an edit that puts one argument into the
    parentheses of a call or a definition: text with a word put in on one line as a list item (`, width` before `)`
    or `,`, `ctx, ` after `(`, anything into `()`); the name is "" in brackets that are no call's (a tuple, a
    condition, a list) and in a string; None for any other edit. ``lines``: the text's, where a call opened up to
    ``CALL_LINES`` lines above the edit's line is found (the name is "" where none is; without them, None where no
    call opens on its line)."""
    if edit.end_line - edit.start_line != 1 or "\n" in edit.updated[:-1]:
        return None
    at, removed, inserted = _change(edit.original, edit.updated)
    return None if removed else _site(edit.original, at, inserted, edit.start_line, lines)


def _site(line: str, at: int, inserted: str, row: int, lines: list[str] | TextLines | None):
    """`argument_site` of ``inserted`` put at ``at`` of ``line``, row ``row`` of ``lines``."""
    item = inserted.strip()
    if not item or not any(map(_is_word, item)):
        return None
    before, after = line[:at].rstrip()[-1:], line[at:].lstrip()[:1]
    if not ((item[0] == "," and after and after in ",)" and before != "(")
            or (item[-1] == "," and before and before in "(,") or (before == "(" and after == ")")):
        return None  # `, width` put into `()` is no item either: `(, width)`
    blank = _blank_strings(line)
    if 0 < at < len(blank) and blank[at - 1] == blank[at] == "\0":
        return inserted, ("", "", False)  # inside a string
    depth = 0
    first = row
    while True:
        for k in reversed([m.start() for m in _BRACKET.finditer(blank, 0, at)]):
            if blank[k] in ")]}":
                depth += 1
            elif depth:
                depth -= 1
            else:
                called = _called(blank, k) if blank[k] == "(" else None
                if called is None:
                    return inserted, ("", "", False)  # a list, a tuple, a condition's parentheses: no function's
                name, qualifier, start = called
                head = blank[:start].rstrip()
                defined = not qualifier and head.endswith(_DEFINING) and head.rsplit(None, 1)[-1] in _DEFINING
                return inserted, (name, qualifier, defined)
        row -= 1
        if lines is None or row < max(first - CALL_LINES, 0) or row >= len(lines):
            return (inserted, ("", "", False)) if lines is not None else None  # in no bracket near
        blank = _blank_strings(lines[row])
        at = len(blank)


def _blank_strings(line: str) -> str:
    """``line`` with its one-line strings' characters NULs: their brackets and commas are no code."""
    if '"' not in line and "'" not in line and "`" not in line:
        return line
    return _STRING.sub(lambda m: "\0" * len(m.group()), line)


def _name_start(text: str, end: int) -> int:
    """Where the name ending at ``end`` of ``text`` starts (``end`` when none does)."""
    k = end
    while k and (_is_word(text[k - 1]) or text[k - 1] == "$"):
        k -= 1
    return k


def _called(text: str, k: int) -> tuple[str, str, int] | None:
    """(name, what it is called on, where that starts) of the call whose `(` is at ``k`` of ``text``: `obj.name(`,
    `mod::name(`, `f().name(` (called on "."), a Rust macro `name!(`; None where no name is called."""
    end = len(text[:k].rstrip())
    if end and text[end - 1] == "!":
        end = len(text[:end - 1].rstrip())
    start = _name_start(text, end)
    name = text[start:end]
    if not name or name[0].isdigit() or name in _NO_CALL:
        return None
    q = start
    while True:
        rest = text[:q].rstrip()
        sep = next((sep for sep in (".", "::", "->") if rest.endswith(sep)), None)
        if sep is None:
            break
        left = rest[:len(rest) - len(sep)].rstrip()
        part = _name_start(left, len(left))
        if part == len(left):
            q = len(rest) - len(sep)  # called on a call's result or an index
            break
        q = part
    return name, re.sub(r"\s+", "", text[q:start]), q


def mark_misplaced_arguments(found: dict[tuple, Candidate], recent: list[Edit], lines: list[str] | TextLines) -> None:
    """Mark ``misplaced`` the candidates of ``found`` that put an argument the history put into calls of one function
    into another function's parentheses (the ranker passes over them): `, width` added to `def draw(...)` and to one
    `draw(...)` call went on to `log(a, width)`, to `print(sum(total), width)` on a line the user had edited otherwise,
    Go's `, 2` to `fmt.Println(a, 2)`. Another function's call takes it only where the history put it into one call
    alone (or into calls of several functions: a parameter passed on), no call or definition of those functions is a
    candidate for it, and the call is on the same object or module (`requests.get` -> `requests.post`, `foo(x)` ->
    `bar(a)`); another definition only where the history put it into definitions of two names or more (a parameter
    threaded through sibling functions one by one) or into one with the same parameters (`pairwise(src)` given `end`,
    then `pairwise_iter(src)`): `stacklevel=3` added to `warn_if_markup_looks_like_xml(cls, markup)` went on to
    `feed(self, markup)` and every other method of the file (an overload or override of the same name is no other
    definition); a tuple, a condition, a string or the end of a name (`()` -> `(ctx)`, anchored on the `)`, gave
    `f(selfctx)`) never. Between a definition and a call only a name goes: `width=1` put into `def draw` was offered
    at `draw(b, "blue", width=1)`, Go's `width int` at `draw(a, "red", 2, width int)`."""
    sites: dict[str, list[tuple[str, str, bool]]] = {}
    signatures: dict[str, set[str]] = {}  # the parameters of the definitions the history put each argument into
    for h in recent:
        if (site := argument_site(h)) is not None:
            sites.setdefault(site[0], []).append(site[1])
            if site[1][2]:
                signatures.setdefault(site[0], set()).add(_parameters(h.original, _change(h.original, h.updated)[0]))
    if not sites:
        return
    names = {arg: {name for name, _, _ in where} for arg, where in sites.items()}
    sizes = {len(arg) for arg in sites}
    putting = []  # the candidates that put one of the arguments in: (candidate, offset, argument)
    for c in found.values():
        e = c.edit
        if e.end_line - e.start_line != 1 or len(e.updated) - len(e.original) not in sizes or "\n" in e.updated[:-1]:
            continue
        at, removed, inserted = _change(e.original, e.updated)
        if not removed and inserted in sites:
            putting.append((c, at, inserted))
    if not putting:
        return
    # the rows holding one of the names, where a call of one of those functions may open: a candidate with none of
    # them within CALL_LINES above it is in another function's call (its site is read only where that matters)
    every = set().union(*names.values())
    read: set[int] = set()
    for c, _, _ in putting:
        read.update(range(max(c.edit.start_line - CALL_LINES, 0), min(c.edit.start_line + 1, len(lines))))
    holding = sorted(row for row in read if any(name in lines[row] for name in every))
    near, far = [], []
    for item in putting:
        row = item[0].edit.start_line
        k = bisect_right(holding, row)
        (near if k and holding[k - 1] >= row - CALL_LINES else far).append(item)
    own = set()  # arguments their functions' places take
    sited = []
    for c, at, inserted in near:
        site = _site(c.edit.original, at, inserted, c.edit.start_line, lines)
        if _misplaced_item(site, sites):
            c.misplaced = True
        elif site[1][0] in names[inserted]:
            own.add(inserted)
        else:
            sited.append((c, site))
    for c, at, inserted in far:
        where = sites[inserted]
        if inserted in own or (len(where) > 1 and len(names[inserted]) == 1):
            c.misplaced = True
            continue
        site = _site(c.edit.original, at, inserted, c.edit.start_line, lines)
        if _misplaced_item(site, sites):
            c.misplaced = True
        else:
            sited.append((c, site))
    for c, (arg, (name, qualifier, is_def)) in sited:
        where = sites[arg]
        c.misplaced = c.misplaced or (len(where) > 1 and len(names[arg]) == 1) or arg in own or not name \
            or (qualifier, is_def) not in {(q, d) for _, q, d in where} \
            or (is_def and len({n for n, _, d in where if d}) < 2
                and _parameters(c.edit.original, _change(c.edit.original, c.edit.updated)[0])
                not in signatures.get(arg, ()))


def _parameters(line: str, at: int) -> str:
    """The text between the brackets around offset ``at`` of ``line`` (the line's ends where they are on other lines),
    blanks left out: a definition's parameters before one is added, to tell a sibling of the same signature."""
    blank = _blank_strings(line)
    depth, start = 0, 0
    for k in range(at - 1, -1, -1):
        if blank[k] in ")]}":
            depth += 1
        elif blank[k] in "([{":
            if not depth:
                start = k + 1
                break
            depth -= 1
    depth, end = 0, len(line)
    for k in range(at, len(line)):
        if blank[k] in "([{":
            depth += 1
        elif blank[k] in ")]}":
            if not depth:
                end = k
                break
            depth -= 1
    return "".join(line[start:end].split())


def _misplaced_item(site, sites: dict[str, list[tuple[str, str, bool]]]) -> bool:
    """Whether ``site`` (`argument_site`) is no list item (`()` -> `(ctx)`, anchored on the `)`, gave `f(selfctx)`),
    or a parameter's default or type put into a call, a value into a definition: only a name is both."""
    if site is None:
        return True
    arg, (_, _, is_def) = site
    return is_def not in {d for _, _, d in sites[arg]} and not arg.strip(" \t,").isidentifier()


_ENDS_LINE = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"  # a line `str.splitlines` splits after these


def _lines_before(recent: list[Edit], current: str, lines: TextLines | list[str]) -> list[_EditedLines | list[str] | None]:
    """`_texts_before` (without ``original``) as the lines of each text (`lines_of`), undone from ``lines``, the
    current text's: each undo replaces a run of lines in an `_EditedLines`, which costs the edit, not the text.
    Splitting the undone text again gives those lines unless a line break joins across an undo's ends (a CR
    before an LF, or an unterminated last line); then the texts are rebuilt whole, as `_texts_before` does, from
    the text ``lines`` make (`TextLines.joined`: an LF view's is built only then; ``current`` for a list)."""
    out: list[_EditedLines | list[str] | None] = []
    text: _EditedLines | None = _EditedLines([(lines, 0, len(lines))])
    for h in reversed(recent):
        if text is not None:
            undo = Edit(h.start_line, h.start_line + len(lines_of(h.updated)), h.updated, h.original)
            s, t = undo.start_line, undo.end_line
            if not (0 <= s <= t <= len(text)) or "".join(text[s:t]) != undo.original:
                text = None  # where `apply_edit` raises ValueError
            else:
                new = lines_of(written(text, undo))
                left, right = text[s - 1] if s else None, text[t] if t < len(text) else None
                seams = [(left, new[0]), (new[-1], right)] if new else [(left, right)]
                if any(a is not None and b is not None and _joined(a, b) for a, b in seams):
                    whole = _texts_before(recent, current if isinstance(lines, list) else lines.joined(), None,
                                          len(recent))
                    return [None if before is None else lines_of(before) for before in whole]
                text = text.replaced(s, t, new)
        out.append(text)
    return out[::-1]


def _joined(left: str, right: str) -> bool:
    """Whether line ``left`` followed by line ``right`` splits as other lines: ``left`` has no line break, or
    ends in a CR that ``right``'s LF would make one CRLF."""
    return left[-1] not in _ENDS_LINE or (left[-1] == "\r" and right[0] == "\n")


class _EditedLines:
    """A text's lines as runs of a `TextLines` table's rows and of new lines (each run: a sequence and the
    [start, end) of it kept), so that replacing lines copies the runs' bounds, not the text. Reads as a list of
    lines does (an int, negative from the end, or a slice)."""

    def __init__(self, runs: list[tuple]) -> None:
        self.runs = runs
        self.size = sum(b - a for _, a, b in runs)

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, key):
        if isinstance(key, slice):
            span = range(self.size)[key]
            if span.step != 1:
                return [self[i] for i in span]
            return self._lines(span.start, span.stop) if span else []
        i = range(self.size)[key]  # an IndexError past the end, as a list's
        for seq, a, b in self.runs:
            if i < b - a:
                return seq[a + i]
            i -= b - a
        raise IndexError(key)

    def _lines(self, lo: int, hi: int) -> list[str]:
        """Lines [lo, hi), ``lo <= hi`` within the text."""
        out: list[str] = []
        for seq, a, b in runs_between(self.runs, lo, hi):
            out.extend(seq[a:b])
        return out

    def replaced(self, s: int, t: int, new: list[str]) -> "_EditedLines":
        """These lines with lines [s, t) replaced by ``new``."""
        runs = list(runs_between(self.runs, 0, s))
        if new:
            runs.append((new, 0, len(new)))
        runs.extend(runs_between(self.runs, t, self.size))
        return _EditedLines(runs)


def _inside_longer_name(line: str, at: int, name: str) -> bool:
    """Whether ``line`` holds ``name`` at ``at`` as part of a longer name: a rename of `width` made at `bandwidth`
    (the same characters around the change) wrote `bandwide`. Another name there (`get_y` for a change made in
    `get_x`) is a match of the change's context like any other."""
    if not name or at < 0 or not line.startswith(name, at):
        return False
    return ((_is_word(name[0]) and at > 0 and _is_word(line[at - 1]))
            or (_is_word(name[-1]) and at + len(name) < len(line) and _is_word(line[at + len(name)])))


class _ContextSearch:
    """The ``context`` generator over one request's rows. A history edit that changed many lines (an argument
    added to every call in a block, a block reindented, a file reformatted) gave one search of every row per line
    it changed, and most of those searches were the same one (the same change between the same characters),
    each adding every match again: a 400-line edit took seconds a request. A search already made is now only
    counted, and `settle` adds the count to its candidates' ``ways`` (what searching again did), and the
    whole-rest-of-line contexts read only the rows that start (end) with the same ``AFFIX`` characters.
    Candidates, their order within a row (candidates are ranked by row) and their counts are the ones the
    row-by-row search gave."""

    AFFIX = 8

    def __init__(self, out: _Collector, rows: list[tuple[int, str]]) -> None:
        """``rows``: (row, its line) for each row searched."""
        self.out = out
        self.rows = [(row, line) for row, line in rows if len(line) <= MAX_LINE_CHARS]  # longer lines are skipped
        self.done: dict[tuple, tuple[list[tuple], list[int]]] = {}  # a search -> (its candidates' keys, [repeats])
        self.heads: dict[str, list[tuple[int, str]]] | None = None
        self.tails: dict[str, list[tuple[int, str]]] | None = None

    def settle(self) -> None:
        """Count the repeated searches in their candidates' ``ways``."""
        for added, (repeats,) in self.done.values():
            if repeats:
                for key in added:
                    self.out.found[key].ways += repeats

    def _rows_by(self, ends: str) -> dict[str, list[tuple[int, str]]]:
        index: dict[str, list[tuple[int, str]]] = {}
        for row, line in self.rows:
            index.setdefault(line[:self.AFFIX] if ends == "head" else line[-self.AFFIX:], []).append((row, line))
        return index

    def _rows_starting(self, prefix: str) -> list[tuple[int, str]]:
        if len(prefix) < self.AFFIX:
            return self.rows
        if self.heads is None:
            self.heads = self._rows_by("head")
        return self.heads.get(prefix[:self.AFFIX], [])

    def _rows_ending(self, suffix: str) -> list[tuple[int, str]]:
        if len(suffix) < self.AFFIX:
            return self.rows
        if self.tails is None:
            self.tails = self._rows_by("tail")
        return self.tails.get(suffix[-self.AFFIX:], [])

    def add(self, old_line: str, new_line: str, age: int) -> None:
        """The candidates of one changed line: within a row, the whole-right, whole-left, then nearest-character
        contexts, as before (searching one context over all rows, then the next, keeps that order on each row, and
        a candidate's key names its row, so no other candidate can come first to it)."""
        p, s = common_ends(old_line, new_line)
        old, new = old_line[p:len(old_line) - s], new_line[p:len(new_line) - s]
        left, right = old_line[:p], old_line[len(old_line) - s:]
        wp, ws = widen_to_identifiers(old_line, new_line, p, s)
        name = (old_line[wp:len(old_line) - ws], p - wp)  # the whole names the change touched, where it starts in them
        if right.strip():  # a context of blanks alone says nothing
            self._search(("right", old, new, right, name), old_line, age)
        if left.strip():
            self._search(("left", old, new, left, name), old_line, age)
        for chars in CONTEXT_CHARS:
            lc, rc = left[-chars:], right[:chars]
            if (lc + old).strip():
                self._search(("near", old, new, lc, rc, name), old_line, age)

    def _search(self, search: tuple, old_line: str, age: int) -> None:
        done = self.done.get(search)
        if done is not None:
            done[1][0] += 1
            return
        added: list[tuple] = []
        self.done[search] = (added, [0])
        kind, old, new = search[:3]
        name, name_at = search[-1]

        def add(row: int, line: str, k: int, context: tuple[int, int]) -> None:
            known = len(self.out.found)
            key = self.out.add(Edit(row, row + 1, line, line[:k] + new + line[k + len(old):]), "context", age,
                               old_line, context=context)
            if key is not None:
                added.append(key)
                if len(self.out.found) > known and _inside_longer_name(line, k - name_at, name):
                    self.out.found[key].misplaced = True  # scored with the others, as in training, never offered

        if kind == "right":
            whole_right = search[3]
            for row, line in self._rows_ending(old + whole_right):
                if line.endswith(old + whole_right):
                    add(row, line, len(line) - len(whole_right) - len(old), (0, len(whole_right)))
        elif kind == "left":
            whole_left = search[3]
            for row, line in self._rows_starting(whole_left + old):
                if line.startswith(whole_left + old):
                    add(row, line, len(whole_left), (len(whole_left), 0))
        else:
            lc, rc = search[3], search[4]
            needle = lc + old
            for row, line in self.rows:
                at = line.find(needle)
                while at >= 0:
                    k = at + len(lc)
                    if line.startswith(rc, k + len(old)):
                        add(row, line, k, (len(lc), len(rc)))
                    at = line.find(needle, at + 1)


def featurize(candidates: list[Candidate], history: list[Edit], current: str, cursor_line: int,
              baseline: Edit | None, lines: TextLines | None = None) -> list[Candidate]:
    """Fill each candidate's ``features`` (``FEATURE_NAMES``) and keep the ``MAX_CANDIDATES`` nearest
    the cursor in the baseline's search order (after the cursor, then from the top). ``lines``: ``current``'s
    lines, read instead of splitting it."""
    current_lines = lines_of(current) if lines is None else lines
    n_lines = len(current_lines)
    baseline_key = edit_key(baseline) if baseline is not None else None
    last = history[-1] if history else None

    def order(c: Candidate) -> tuple[int, int]:
        row = c.edit.start_line
        return (0, row - cursor_line) if row > cursor_line else (1, row)

    ranked = sorted(candidates, key=order)[:MAX_CANDIDATES]
    groups: dict[tuple[str, int], int] = {}  # (generator, age) -> candidates so far, then in all
    group_rank = []  # each candidate's place in its group, in search order
    for c in ranked:
        key = (c.generator, c.age)
        group_rank.append(groups.get(key, 0))
        groups[key] = group_rank[-1] + 1
    line_rank: dict[int, int] = {}  # each candidate line's place among the candidate lines, in search order
    for c in ranked:
        line_rank.setdefault(c.edit.start_line, len(line_rank))
    age_rank = {age: k for k, age in enumerate(sorted({c.age for c in ranked}))}  # 0: the latest edit with any
    last_line = (lines_of(last.updated) or lines_of(last.original) or [""])[0] if last is not None else ""
    last_row = last.start_line if last is not None else -1

    def clamp(row: int) -> int:  # an insertion at the end reads the last line's scope
        return min(max(row, 0), max(n_lines - 1, 0))

    rows = [clamp(c.edit.start_line) for c in ranked] + ([clamp(last_row)] if last is not None else [])
    first = min(rows, default=0)  # scopes are read for these rows only
    inner, top = enclosing_scopes(current_lines, first, max(rows, default=-1) + 1)

    def scope_of(scopes: list[int], row: int) -> int:
        return scopes[clamp(row) - first] if scopes else -1

    last_inner = scope_of(inner, last_row) if last is not None else None
    last_top = scope_of(top, last_row) if last is not None else None
    facts = functools.cache(_line_facts)  # this request's lines only
    last_tokens = facts(last_line)[0]
    # the lines the last edit wrote: counted once, not per candidate (a whole-file change was split 400 times)
    last_end = last.start_line + len(lines_of(last.updated)) if last is not None else None
    for c, rank in zip(ranked, group_rank):
        e = c.edit
        line = lines_of(e.original)[0] if e.original else (current_lines[e.start_line] if e.start_line < n_lines else "")
        tokens, indent, first_token = facts(line)
        source_tokens, source_indent, source_first_token = facts(c.source)
        distance = e.start_line - cursor_line
        near_last = last is not None and last.start_line - 1 <= e.start_line <= last_end
        c.features = [float(c.generator == g) for g in GENERATORS] + [
            float(c.age), float(c.context[0]), float(c.context[1]), math.log1p(abs(distance)), float(distance > 0),
            float(distance == 0), float(rank), math.log1p(groups[(c.generator, c.age)]), float(c.key == baseline_key),
            _similarity(tokens, source_tokens), float(indent == source_indent),
            float(first_token == source_first_token), math.log1p(len(e.original) + len(e.updated)),
            float(c.ways), float(c.occurrences), math.log1p(n_lines), float(len(history)), float(near_last),
            float(line_rank[e.start_line]), float(age_rank[c.age]), _similarity(tokens, last_tokens),
            float(abs(indent - source_indent)),
            float(scope_of(inner, e.start_line) == last_inner), float(scope_of(top, e.start_line) == last_top),
        ]
    return ranked


def featurized(history: list[Edit], current: str, cursor_line: int, original: str | None = None,
               lines: TextLines | None = None, refused: list[Edit] | tuple = ()) -> list[Candidate]:
    """The candidates the ranker scores, with their features: one path for training and serving (``lines``:
    ``current``'s lines, which a request reads from the document's line index instead of splitting the text;
    ``refused``: `generate`'s)."""
    baseline = BaselinePredictor().predict_next(history, current, lines)
    return featurize(generate(history, current, original, cursor_line, lines, refused), history, current, cursor_line,
                     baseline, lines)


_STATEMENT_GOES_ON = re.compile(r"[)\]}]|(?:else|elif|except|finally)\b")  # a top-level line that ends no statement
_STRING = re.compile(r"""'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*"|`(?:[^`\\\n]|\\.)*`""")
_BRACKET_PAIRS = {")": "(", "]": "[", "}": "{"}
_COMMENT_OPENER = re.compile(r"//|#(?=\s|$)")  # a line comment's start in most languages (not `#include`, `#x`)


def is_python(path: str = "", language_id: str = "") -> bool:
    """Whether a document is Python code: its language id when there is one, else its path (none: Python)."""
    if language_id:
        return syntax.is_python(language_id)
    return not path or path.lower().endswith(PYTHON_SUFFIXES)


def breaks_code(edit: Edit, lines: list[str] | TextLines, python: bool = True) -> bool:
    """Whether ``edit`` (of the text whose lines are ``lines``) makes the code around it fail to parse where it parsed
    before: a change repeated where only part of it fits (`os.environ["PORT")` after `[` -> `.get(` and `]` -> `)`),
    an argument added to every call going on into the `def` (`width=1, 2`), a trailing comment put mid-line
    (`def f(width  # done, height):`, and `total = width  # done * height`, which parses, the comment having
    swallowed code). Python is parsed with tree-sitter, from the top-level statement above the edit to the one after
    it (at most ``SYNTAX_LINES`` each side); other languages, or no grammar, compare the brackets of the edited lines
    and their lists with an empty first item (`func main(, width int)`), and look for a comment opener put before
    code."""
    at, removed, inserted = _change(edit.original, edit.updated)
    if not python or not syntax.available():
        return (_bracket_trouble(edit.updated) > _bracket_trouble(edit.original)
                or _empty_first_items(edit.updated) > _empty_first_items(edit.original)
                or (_between_code(edit.updated, at, at + len(inserted))
                    and _COMMENT_OPENER.search(_STRING.sub("", inserted)) is not None))
    if removed.isidentifier() and inserted.isidentifier() and not keyword.iskeyword(inserted):
        return False  # a name for a name
    n = len(lines)
    s, e = min(edit.start_line, n), min(edit.end_line, n)
    above = lines[max(s - SYNTAX_LINES, 0):min(s + 1, n)]
    lo = max(s - SYNTAX_LINES, 0) + _statement_start(above)
    below = lines[e:min(e + SYNTAX_LINES, n)]
    hi = e + next((k for k, line in enumerate(below) if _starts_statement(line)), len(below))
    head, tail = "".join(lines[lo:s]), "".join(lines[e:hi])
    after = head + edit.updated + tail
    tree = syntax.parse(after)
    if not tree.root_node.has_error and not _comment_swallows(tree, after, len(head) + at, inserted):
        return False  # the usual answer, read from one parse
    return not syntax.has_error(head + edit.original + tail)  # it parsed before: the edit is to blame


def _between_code(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` has something other than blanks both before it and after it on its lines: a
    comment put there ends code and swallows more (put before a line's whole code, it comments the line out)."""
    line_start, line_end = text.rfind("\n", 0, start) + 1, text.find("\n", end)
    return bool(text[line_start:start].strip()) and bool(text[end:len(text) if line_end < 0 else line_end].strip())


def _comment_swallows(tree, text: str, start: int, inserted: str) -> bool:
    """Whether a comment starting in ``inserted`` (put at ``start`` of ``text``, parsed as ``tree``) runs on over
    code that was already on the line, after code."""
    if "#" not in inserted or not _between_code(text, start, start + len(inserted)):
        return False
    root = tree.root_node
    for k, ch in enumerate(inserted):
        if ch == "#":
            b = len(text[:start + k].encode("utf-8", "surrogatepass"))
            node = root.descendant_for_byte_range(b, b + 1)
            if node is not None and node.type == "comment" and node.start_byte == b:
                return True
    return False


def _starts_statement(line: str) -> bool:
    return _top_level(line) and not _STATEMENT_GOES_ON.match(line)


def _statement_start(above: list[str]) -> int:
    """Where in ``above`` (the lines above an edit's and its first) to start parsing: the last line starting a
    top-level statement, else the first of the least indented code lines (most likely a statement's start)."""
    for k in range(len(above) - 1, -1, -1):
        if _starts_statement(above[k]):
            return k
    code = [(_indent(line), k) for k, line in enumerate(above) if line.strip() and not line.lstrip().startswith("#")]
    return min(code)[1] if code else 0


_EMPTY_FIRST_ITEM = re.compile(r"\(\s*,")


def _empty_first_items(text: str) -> int:
    """Parentheses of ``text`` (strings read as items) whose first item is empty, `(, width int)`: an argument put after
    the last one went into parentheses holding none (Go's `func main()`), an error in every language."""
    return len(_EMPTY_FIRST_ITEM.findall(_STRING.sub("s", text)))  # a string is an item


def _bracket_trouble(text: str) -> int:
    """Brackets of ``text`` (its strings left out) that close nothing, close another kind or stay open."""
    stack: list[str] = []
    trouble = 0
    for ch in _STRING.sub("", text):
        if ch in "([{":
            stack.append(ch)
        elif ch in _BRACKET_PAIRS:
            if stack and stack[-1] == _BRACKET_PAIRS[ch]:
                stack.pop()
            else:
                trouble += 1
    return trouble + len(stack)
