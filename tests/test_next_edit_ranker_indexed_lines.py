"""A ranker request reads the lines near its edits through the document's line index: on a 200,000-line file
`generate` split the whole text and rebuilt it once per history edit (`_texts_before`), and `featurize` and the
baseline split it again. The former functions are kept here as the reference: with or without the lines, the
candidates, their features and the answers are the ones they gave, so training and evaluation are unchanged."""

from __future__ import annotations

import functools
import math
import random

import numpy as np
import pytest

from lsp_server.services.next_edit import _IndexedLines
from lsp_server.services.positions import LineIndex, Position
from models.next_edit import candidates as candidates_module
from models.next_edit.baseline import (_pattern, _substitute, common_ends, done_there, punctuation_insertion,
                                      replacement, unterminated_end)
from models.next_edit.candidates import (_SCOPE, CONTEXT_CHARS, GENERATORS, Candidate, _changed_line_pairs,
                                         _Collector, _EditedLines, _indent, _line_facts, _lines_before, _similarity,
                                         _top_level, edit_key, enclosing_scopes, featurized, generate)
from models.next_edit.examples import Edit, apply_all, apply_edit, lines_of
from models.next_edit.model import predict_with
from models.next_edit.prompt import lf_view, taken_back, without_undone
from models.next_edit.ranker import load_ranker
from tests.next_edit_support import big_edited_document, ranker_choice, rows_read, splits_recorded
from tests.test_next_edit_indexed_lines import (URI, _breaks, _plain, _random_history, _random_text, _service,
                                                reference_predict_next)


# The former implementations, as they were (the module's limits read at call time, so a test can narrow them).

def reference_enclosing_scopes(lines: list[str], first: int = 0, end: int | None = None) -> tuple[list[int], list[int]]:
    """Per line of ``lines[first:end]``: the line of the innermost ``def``/``class`` holding it (a header holds
    itself: a renamed parameter's uses share its scope) and of the top-level statement it belongs to (-1 for
    none), by indentation: blank lines and comments belong to what is open. The scan starts at the last
    top-level line at or above ``first``, so a request in a huge file reads its window, not the whole file."""
    end = len(lines) if end is None else min(end, len(lines))
    begin = min(first, max(end - 1, 0))
    while begin > 0 and not _top_level(lines[begin]):
        begin -= 1
    inner, top = [], []
    stack: list[tuple[int, int]] = []  # (indent, line) of the open def/class headers
    top_line = -1
    for row in range(begin, end):
        line = lines[row]
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



def reference_generate(history: list[Edit], current: str, original: str | None = None,
             cursor_line: int | None = None, refused: list[Edit] | tuple = ()) -> list[Candidate]:
    """Every candidate for the text ``current`` left by ``history`` (each edit applying to the text the
    one before it left; ``original``, the text before the first, lets insertions find their neighbours
    exactly, else they are found by undoing the later edits), within ``candidates_module.SEARCH_LINES`` of ``cursor_line``
    when it is given."""
    lines = lines_of(current)
    n = len(lines)
    lo, hi = (0, n) if cursor_line is None else (max(0, cursor_line - candidates_module.SEARCH_LINES), min(n, cursor_line + candidates_module.SEARCH_LINES))
    rows = range(lo, hi)
    recent = history[-candidates_module.MAX_HISTORY:]
    # what is kept follows the module's rules
    out = _Collector(history[-1] if history else None, lines, recent, refused)
    context = ReferenceContextSearch(out, lines, rows)
    texts_before = reference_texts_before(history, current, original, len(recent))
    for i, h in enumerate(recent):
        age = len(recent) - 1 - i
        h_lines = lines_of(h.original)
        source = h_lines[0] if h_lines else (lines_of(h.updated) or [""])[0]
        rep = replacement(h)
        if rep is not None and "\n" not in rep[0]:
            pattern = _pattern(rep[0])
            within = rep[1].find(rep[0])  # since: an occurrence that has the change already is not one to change
            for row in rows:
                line = lines[row]
                if len(line) > candidates_module.MAX_LINE_CHARS or rep[0] not in line:
                    continue
                matches = list(pattern.finditer(line))
                found = [m for m in matches if not done_there(line, m.start(), rep[1], within)]
                if not found:
                    continue
                if not (punctuation_insertion(*rep) and len(found) > 1):  # since: beside punctuation alone, once
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
            for row in range(lo, min(hi, n - k + 1)):
                if lines[row] == block[0] and "".join(lines[row:row + k]) == rep[0]:
                    out.add(Edit(row, row + k, rep[0], rep[1]), "block", age, source)
        for old_line, new_line in _changed_line_pairs(h):
            context.add(old_line, new_line, age)
        if h.original:
            k = len(h_lines)
            for row in range(lo, min(hi, n - k + 1)):
                if lines[row] == h_lines[0] and "".join(lines[row:row + k]) == h.original:
                    out.add(Edit(row, row + k, h.original, h.updated), "repeat" if h.updated else "delete", age, source)
            # since: the text's last lines without their final line break
            if lo <= n - k < hi and (at_end := unterminated_end(lines, h.original)) is not None:
                out.add(Edit(n - k, n, at_end, h.updated[:-1] if h.updated.endswith("\n") else h.updated),
                        "repeat" if h.updated else "delete", age, source)
        elif h.updated and texts_before[i] is not None:
            before = lines_of(texts_before[i])
            above = before[h.start_line - 1].strip() if 0 < h.start_line <= len(before) else ""
            below = before[h.start_line].strip() if h.start_line < len(before) else ""
            block = lines_of(h.updated)
            k = len(block)
            for row in range(lo, hi + 1):
                if not ((above and row > 0 and lines[row - 1].strip() == above)
                        or (below and row < n and lines[row].strip() == below)):
                    continue
                if lines[max(0, row - k):row] == block or lines[row:row + k] == block:
                    continue  # the same lines again right beside themselves: a stutter, not an edit
                out.add(Edit(row, row, "", h.updated), "insert", age, source)
    context.settle()
    return list(out.found.values())


def reference_texts_before(history: list[Edit], current: str, original: str | None, recent: int) -> list[str | None]:
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


class ReferenceContextSearch:
    """The ``context`` generator over one request's rows. A history edit that changed many lines (an argument
    added to every call in a block, a block reindented, a file reformatted) gave one search of every row per line
    it changed, and most of those searches were the same one (the same change between the same characters),
    each adding every match again: a 400-line edit took seconds a request. A search already made is now only
    counted, and `settle` adds the count to its candidates' ``ways`` (what searching again did), and the
    whole-rest-of-line contexts read only the rows that start (end) with the same ``AFFIX`` characters.
    Candidates, their order within a row (candidates are ranked by row) and their counts are the ones the
    row-by-row search gave."""

    AFFIX = 8

    def __init__(self, out: _Collector, lines: list[str], rows: range) -> None:
        self.out, self.lines = out, lines
        self.rows = [row for row in rows if len(lines[row]) <= candidates_module.MAX_LINE_CHARS]  # longer lines are skipped
        self.done: dict[tuple, tuple[list[tuple], list[int]]] = {}  # a search -> (its candidates' keys, [repeats])
        self.heads: dict[str, list[int]] | None = None
        self.tails: dict[str, list[int]] | None = None

    def settle(self) -> None:
        """Count the repeated searches in their candidates' ``ways``."""
        for added, (repeats,) in self.done.values():
            if repeats:
                for key in added:
                    self.out.found[key].ways += repeats

    def _rows_by(self, ends: str) -> dict[str, list[int]]:
        index: dict[str, list[int]] = {}
        for row in self.rows:
            line = self.lines[row]
            index.setdefault(line[:self.AFFIX] if ends == "head" else line[-self.AFFIX:], []).append(row)
        return index

    def _rows_starting(self, prefix: str) -> list[int]:
        if len(prefix) < self.AFFIX:
            return self.rows
        if self.heads is None:
            self.heads = self._rows_by("head")
        return self.heads.get(prefix[:self.AFFIX], [])

    def _rows_ending(self, suffix: str) -> list[int]:
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
        if right.strip():  # a context of blanks alone says nothing
            self._search(("right", old, new, right), old_line, age)
        if left.strip():
            self._search(("left", old, new, left), old_line, age)
        for chars in CONTEXT_CHARS:
            lc, rc = left[-chars:], right[:chars]
            if (lc + old).strip():
                self._search(("near", old, new, lc, rc), old_line, age)

    def _search(self, search: tuple, old_line: str, age: int) -> None:
        done = self.done.get(search)
        if done is not None:
            done[1][0] += 1
            return
        added: list[tuple] = []
        self.done[search] = (added, [0])
        kind, old, new = search[:3]
        lines = self.lines

        def add(row: int, line: str, k: int, context: tuple[int, int]) -> None:
            key = self.out.add(Edit(row, row + 1, line, line[:k] + new + line[k + len(old):]), "context", age,
                               old_line, context=context)
            if key is not None:
                added.append(key)

        if kind == "right":
            whole_right = search[3]
            for row in self._rows_ending(old + whole_right):
                line = lines[row]
                if line.endswith(old + whole_right):
                    add(row, line, len(line) - len(whole_right) - len(old), (0, len(whole_right)))
        elif kind == "left":
            whole_left = search[3]
            for row in self._rows_starting(whole_left + old):
                line = lines[row]
                if line.startswith(whole_left + old):
                    add(row, line, len(whole_left), (len(whole_left), 0))
        else:
            lc, rc = search[3], search[4]
            needle = lc + old
            for row in self.rows:
                line = lines[row]
                at = line.find(needle)
                while at >= 0:
                    k = at + len(lc)
                    if line.startswith(rc, k + len(old)):
                        add(row, line, k, (len(lc), len(rc)))
                    at = line.find(needle, at + 1)


def reference_featurize(candidates: list[Candidate], history: list[Edit], current: str, cursor_line: int,
              baseline: Edit | None) -> list[Candidate]:
    """Fill each candidate's ``features`` (``FEATURE_NAMES``) and keep the ``candidates_module.MAX_CANDIDATES`` nearest
    the cursor in the baseline's search order (after the cursor, then from the top)."""
    current_lines = lines_of(current)
    n_lines = len(current_lines)
    baseline_key = edit_key(baseline) if baseline is not None else None
    last = history[-1] if history else None

    def order(c: Candidate) -> tuple[int, int]:
        row = c.edit.start_line
        return (0, row - cursor_line) if row > cursor_line else (1, row)

    ranked = sorted(candidates, key=order)[:candidates_module.MAX_CANDIDATES]
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
    inner, top = reference_enclosing_scopes(current_lines, first, max(rows, default=-1) + 1)

    def scope_of(scopes: list[int], row: int) -> int:
        return scopes[clamp(row) - first] if scopes else -1

    last_inner = scope_of(inner, last_row) if last is not None else None
    last_top = scope_of(top, last_row) if last is not None else None
    facts = functools.cache(_line_facts)  # this request's lines only
    last_tokens = facts(last_line)[0]
    for c, rank in zip(ranked, group_rank):
        e = c.edit
        line = lines_of(e.original)[0] if e.original else (current_lines[e.start_line] if e.start_line < n_lines else "")
        tokens, indent, first_token = facts(line)
        source_tokens, source_indent, source_first_token = facts(c.source)
        distance = e.start_line - cursor_line
        near_last = last is not None and last.start_line - 1 <= e.start_line <= last.start_line + len(lines_of(last.updated))
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


def reference_featurized(history: list[Edit], current: str, cursor_line: int, original: str | None = None,
                         refused: list[Edit] | tuple = ()) -> list[Candidate]:
    """The candidates the ranker scores, with their features: one path for training and serving. Those today's rules
    mark ``misplaced`` (scored, never the answer) are marked so here too: the reference is the former generation."""
    baseline = reference_predict_next(history, current)
    found = reference_featurize(reference_generate(history, current, original, cursor_line, refused), history, current,
                                cursor_line, baseline)
    misplaced = {c.key for c in generate(history, current, original, cursor_line, refused=refused) if c.misplaced}
    for c in found:
        c.misplaced = c.key in misplaced
    return found


def _repeating_text(rng: random.Random, breaks: list[str]) -> str:
    """Lines drawn from a few random ones, so that edits find their lines again (and insertions their
    neighbours) many times."""
    pool = [line.rstrip("\r\n") for line in lines_of(_random_text(rng, 5, ["\n"], 0.0))] or ["x"]
    text = "".join(rng.choice(pool) + rng.choice(breaks) for _ in range(rng.randint(5, 40)))
    return text.rstrip("\r\n") if rng.random() < 0.2 else text


def _outcome(function, *args) -> list[Candidate] | type:
    """What ``function(*args)`` returns, or ValueError when it raises one."""
    try:
        return function(*args)
    except ValueError:
        return ValueError


def _same_candidates(got: list[Candidate] | type, want: list[Candidate] | type) -> bool:
    if got is ValueError or want is ValueError:
        return got is want
    fields = ("edit", "key", "generator", "age", "source", "occurrences", "context", "ways", "features")
    return [[getattr(c, f) for f in fields] for c in got] == [[getattr(c, f) for f in fields] for c in want]


_PIECES = ["a", "b\n", "\r", "\n", "\r\n", "c\r", "\nd", "\x0c", "é😀"]


def _claimed_history(rng: random.Random, current: str, size: int) -> list[Edit]:
    """Edits that each undo from ``current`` (their updated blocks are its lines), though their original blocks are
    random: ends that a CR, an LF or no line break at all join to the neighbouring lines once undone (a history the
    server's own never is, which the lines must still follow)."""
    claims, text = [], current
    for _ in range(size):
        have = lines_of(text)
        s = rng.randint(0, len(have))
        t = min(len(have), s + rng.choice([0, 0, 1, 2]))
        original = "".join(rng.choice(_PIECES) for _ in range(rng.randint(0, 3)))
        claim = Edit(s, s + len(lines_of(original)), original, "".join(have[s:t]))
        undo = Edit(s, t, claim.updated, original)
        try:
            text = apply_edit(text, undo)
        except ValueError:
            break
        claims.append(claim)
    return claims[::-1] or [Edit(0, 0, "", "")]


def _broken(rng: random.Random, history: list[Edit]) -> list[Edit]:
    """``history`` with one edit's updated block changed, so that undoing it from the current text fails."""
    k = rng.randrange(len(history))
    e = history[k]
    return history[:k] + [Edit(e.start_line, e.end_line, e.original, e.updated + "zz\n")] + history[k + 1:]


def test_edited_lines_read_as_the_list_they_stand_for():
    rng = random.Random(4)
    for _ in range(2000):
        base = [f"{i}\n" for i in range(rng.randint(0, 12))]
        lines, want = _EditedLines([(base, 0, len(base))]), list(base)
        for _ in range(rng.randint(0, 5)):
            s = rng.randint(0, len(want))
            t = rng.randint(s, len(want))
            new = [f"n{rng.randint(0, 99)}\n" for _ in range(rng.randint(0, 3))]
            lines, want = lines.replaced(s, t, new), want[:s] + new + want[t:]
        assert len(lines) == len(want) and lines[:] == want
        assert [lines[i] for i in range(-len(want), len(want))] == want + want
        for _ in range(5):
            a, b = rng.randint(-3, len(want) + 3), rng.randint(-3, len(want) + 3)
            assert lines[a:b] == want[a:b] and lines[a:b:2] == want[a:b:2]
        with pytest.raises(IndexError):
            lines[len(want)]


def test_the_lines_before_each_edit_are_those_of_the_texts_rebuilt_whole():
    """`_lines_before` against the former `_texts_before` on random histories (some that no longer apply): every
    kind of line break, breaks only Python counts, no final break; the texts are also rebuilt whole where a break
    joins across an undo's ends, and both ways are taken."""
    rng = random.Random(5)
    ways = {"runs": 0, "rebuilt": 0, "none": 0}
    for case in range(4000):
        breaks = _breaks(rng)
        original = _random_text(rng, rng.randint(0, 25), breaks, rng.choice([0.0, 0.0, 0.1]))
        history, current = _random_history(rng, original, rng.randint(1, 6), breaks)
        if rng.random() < 0.2:
            history = _broken(rng, history)
        elif rng.random() < 0.4:
            history = _claimed_history(rng, current, rng.randint(1, 6))
        want = [None if t is None else lines_of(t) for t in reference_texts_before(history, current, None,
                                                                                    len(history))]
        tables = [lines_of(current)] + ([_IndexedLines(LineIndex(current))] if current and _plain(current) else [])
        for table in tables:
            got = _lines_before(history, current, table)
            assert [None if g is None else list(g[:]) for g in got] == want, (case, current, history)
            for g in got:
                ways["none" if g is None else "runs" if isinstance(g, _EditedLines) else "rebuilt"] += 1
    assert min(ways.values()) > 300, ways


def test_candidates_and_features_with_or_without_the_lines_are_the_former_ones(monkeypatch):
    """Thousands of seeded random histories (LF, CRLF, CR, mixed, form feeds, emoji, no final break, histories
    that no longer apply, search windows narrowed so that rows fall outside): `generate` and `featurized` without
    the lines (training, evaluation) give exactly the former candidates and features, with or without the original
    text, and with the index's lines (requests) the same again."""
    rng = random.Random(20261207)
    counts = {"with_lines": 0, "windowed": 0, "candidates": 0, "inserts": 0, "featurized": 0}
    for case in range(3000):
        window = rng.choice([1500, 1500, 1, 3, 8])
        monkeypatch.setattr(candidates_module, "SEARCH_LINES", window)
        breaks = _breaks(rng)
        original = _repeating_text(rng, breaks) if rng.random() < 0.5 else \
            _random_text(rng, rng.randint(0, 30), breaks, rng.choice([0.0, 0.0, 0.1]))
        history, current = _random_history(rng, original, rng.randint(1, 9), breaks)
        if rng.random() < 0.1:
            history = _broken(rng, history)
        elif rng.random() < 0.2:
            history = _claimed_history(rng, current, rng.randint(1, 9))
        n = len(lines_of(current))
        cursor = rng.randint(-2, n + 2)
        lines = _IndexedLines(LineIndex(current)) if current and _plain(current) else None
        counts["with_lines"] += lines is not None
        counts["windowed"] += window < n
        for given in (None, original):  # a claimed history does not apply to the original: both raise
            want = _outcome(reference_generate, history, current, given, cursor)
            assert _same_candidates(_outcome(generate, history, current, given, cursor), want), (case, current)
            if lines is not None:
                assert _same_candidates(_outcome(generate, history, current, given, cursor, lines), want), case
        want = reference_generate(history, current)
        assert _same_candidates(generate(history, current), want), (case, current, history)
        counts["candidates"] += len(want)
        counts["inserts"] += sum(c.generator == "insert" for c in want)
        want = reference_featurized(history, current, cursor)
        assert _same_candidates(featurized(history, current, cursor), want), (case, current, history)
        if lines is not None:
            assert _same_candidates(featurized(history, current, cursor, lines=lines), want), (case, current)
        counts["featurized"] += len(want)
    assert counts["with_lines"] > 1500 and counts["windowed"] > 800, counts
    assert counts["candidates"] > 15000 and counts["inserts"] > 1000 and counts["featurized"] > 8000, counts


def _python_text(rng: random.Random) -> str:
    """Python-shaped lines: headers, bodies at several indents, comments, blank lines, long indented runs."""
    out = []
    for _ in range(rng.randint(0, 40)):
        kind = rng.random()
        indent = "    " * rng.randint(0, 3)
        if kind < 0.15:
            out.append(f"{indent}{rng.choice(['def', 'class', 'async def'])} f():\n")
        elif kind < 0.25:
            out.append(rng.choice(["\n", "  \n", "# c\n", "    # c\n"]))
        elif kind < 0.3:
            out.extend(f"        x{i} = 1\n" for i in range(rng.randint(200, 700)))  # past a 256-row chunk
        else:
            out.append(f"{indent}x = {rng.randint(0, 9)}\n")
    return "".join(out)


def test_scopes_read_through_the_lines_are_the_former_ones():
    rng = random.Random(6)
    for _ in range(400):
        text = _python_text(rng)
        want_lines = lines_of(text)
        lines = _IndexedLines(LineIndex(text)) if text else None
        for _ in range(4):
            first = rng.randint(0, len(want_lines) + 2)
            end = rng.choice([None, rng.randint(0, len(want_lines) + 2)])
            want = reference_enclosing_scopes(want_lines, first, end)
            assert enclosing_scopes(want_lines, first, end) == want
            if lines is not None:
                assert enclosing_scopes(lines, first, end) == want


def test_a_ranker_answer_with_the_lines_is_the_former_one():
    """`predict_with` (shared with evaluation) with the shipped ranker: the edit and score with the index's lines
    are those without them, and those are the former candidates scored by the same trees."""
    ranker = load_ranker()
    rng = random.Random(8)
    answered = 0
    for case in range(1200):
        breaks = _breaks(rng)
        original = _random_text(rng, rng.randint(1, 30), breaks, 0.0)
        history, current = _random_history(rng, original, rng.randint(1, 6), breaks)
        if not current or not _plain(current):
            continue  # a request reads no such text through its index
        cursor = rng.randint(0, len(lines_of(current)))
        want = predict_with("ranker", None, history, current, cursor, ranker=ranker, ranker_threshold=0.0)
        got = predict_with("ranker", None, history, current, cursor, ranker=ranker, ranker_threshold=0.0,
                           lines=_IndexedLines(LineIndex(current)))
        assert (got is None) == (want is None), (case, current, history)
        if want is not None:
            assert (got.edit, got.confidence) == (want.edit, want.confidence), (case, current, history)
            answered += 1
            lf_history, lf_current = lf_view(without_undone(history), current)  # the edits not taken back
            refused = lf_view(taken_back(history), current)[0]
            former = reference_featurized(lf_history, lf_current, cursor, refused=refused)
            scores = ranker.trees.predict(np.array([c.features for c in former], dtype=np.float64))
            assert want.confidence == ranker_choice(former, scores, lines_of(lf_current))[1]
    assert answered > 550, answered


# The whole-text work is gone: every split and every text rebuilt is recorded.

def _big_edited_document(lines: int, near: int):
    """A ``lines``-line Python file in which ``alpha`` was renamed on three lines around line ``near`` and a line
    was inserted below them (an insertion: its neighbours are read from the text before it)."""
    inserted = ((near + 12, 0, "    log(renamed)\n"), (near + 14, 4, "renamed = 0\n    "))
    return big_edited_document(URI, lines, near, inserted=inserted), near + 14


def test_a_ranker_request_splits_and_rebuilds_no_whole_text(monkeypatch):
    """Near the end and near the start of a 50,000-line file, a ranker request splits only short texts (the edits'
    blocks) and rebuilds none: before, `generate` and `featurize` split the whole text and `_texts_before` rebuilt it
    once per history edit."""
    split_sizes = splits_recorded(monkeypatch)
    rebuilt_sizes: list[int] = []

    def recorded(apply):
        def applied(text, *args):
            rebuilt_sizes.append(len(text))
            return apply(text, *args)
        return applied

    monkeypatch.setattr(candidates_module, "apply_edit", recorded(apply_edit))
    monkeypatch.setattr(candidates_module, "apply_all", recorded(apply_all))
    service = _service()
    for near in (49_000, 50):
        doc, cursor = _big_edited_document(50_000, near)
        version, index = doc.indexed_snapshot()
        split_sizes.clear()
        rebuilt_sizes.clear()
        result = service.predict(index.text, doc.history.recent(8), Position(cursor, 0), URI, predictor="ranker",
                                 ranker_threshold=0.0, index=index)
        assert result is not None and result.answer.predictor == "ranker"
        assert split_sizes and max(split_sizes) < 200, max(split_sizes)  # the edits' blocks, not 2 MB of text
        assert not rebuilt_sizes, rebuilt_sizes
        assert len(index.text) > 2_000_000


def test_a_ranker_request_reads_the_rows_of_its_window_whatever_the_files_length(monkeypatch):
    """The rows a ranker request reads through the index lie in its search window (``SEARCH_LINES`` on each side
    of the cursor, and one more) but for the first line, and as many are read in a 20,000-line file as in a
    60,000-line one."""
    read_rows = rows_read(monkeypatch)
    service = _service()
    read = []
    for size in (20_000, 60_000):
        doc, cursor = _big_edited_document(size, size - 5_000)
        version, index = doc.indexed_snapshot()
        want = service.predict(index.text, doc.history.recent(8), Position(cursor, 0), URI, predictor="ranker",
                               ranker_threshold=0.0)
        read_rows.clear()
        got = service.predict(index.text, doc.history.recent(8), Position(cursor, 0), URI, predictor="ranker",
                              ranker_threshold=0.0, index=index)
        assert (got.start, got.end, got.new_text, got.answer.confidence) == \
            (want.start, want.end, want.new_text, want.answer.confidence)
        window = candidates_module.SEARCH_LINES + 2
        rows = set(read_rows) - {0}  # the first line: the document's line break, which an edit may take
        assert cursor - window <= min(rows) and max(rows) <= cursor + window, (size, cursor)
        read.append(len(rows))
    assert read[0] == read[1], read
