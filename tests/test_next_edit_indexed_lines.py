"""A next-edit request reads the lines near its edits through the document's line index instead of splitting the
whole text: on a 200,000-line file `undoes_last_edit`, `splice` and the baseline split it about 36 times a request.
The former whole-text functions are kept here as the reference: with or without the lines, every function gives
what they gave, so training examples, prompts and predictions are unchanged."""

from __future__ import annotations

import random

from lsp_server.services.documents import DocumentStore
from lsp_server.services.ledger import SuggestionLedger
from lsp_server.services.next_edit import _PY_ONLY_BREAKS, NextEditService, _IndexedLines
from lsp_server.services.positions import LineIndex, Position, Range
from lsp_server.services.recorder import SessionRecorder
from lsp_server.services.scheduler import InferenceScheduler
from models.next_edit.baseline import (BaselinePredictor, _pattern, _substitute, _undoes, done_there, last_on_each_line,
                                      punctuation_insertion, replacement, unterminated_end)
from models.next_edit.examples import Edit, apply_edit, lines_of, splice, written
from models.next_edit.model import predict_with
from models.next_edit.prompt import in_document, lf_view, undoes_last_edit
from tests.next_edit_support import answers_agree, big_edited_document, rows_read, splits_recorded
from tests.telemetry_fakes import ListStore

URI = "file:///project/big.py"


# The former implementations, as they were.

def reference_splice(text: str, edit: Edit) -> tuple[int, int, str]:
    lines = lines_of(text)
    if not (0 <= edit.start_line <= edit.end_line <= len(lines)):
        raise ValueError(f"edit range {edit.start_line}:{edit.end_line} outside {len(lines)} lines")
    if "".join(lines[edit.start_line:edit.end_line]) != edit.original:
        raise ValueError("edit original does not match the text")
    start = sum(map(len, lines[:edit.start_line]))
    return start, start + len(edit.original), written(lines, edit)


def reference_apply_edit(text: str, edit: Edit) -> str:
    start, end, new = reference_splice(text, edit)
    return text[:start] + new + text[end:]


def reference_undoes_last_edit(history: list[Edit], current: str, edit: Edit) -> bool:
    if not history:
        return False
    last = history[-1]
    if edit.original == last.updated and edit.updated == last.original:
        return True
    lines = lines_of(current)
    n_updated = len(lines_of(last.updated))
    before = "".join(lines[:last.start_line]) + last.original + "".join(lines[last.start_line + n_updated:])
    try:
        return reference_apply_edit(current, edit) == before
    except ValueError:
        return False


def reference_predict_next(history: list[Edit], current: str) -> Edit | None:
    if not history:
        return None
    last = history[-1]
    rep = replacement(last)
    if rep is None:
        return None
    old, new = rep
    lines = lines_of(current)
    edited_lo = last.start_line
    edited_hi = last.start_line + max(1, len(lines_of(last.updated)))
    order = list(range(edited_hi, len(lines))) + list(range(0, min(edited_lo, len(lines))))
    if "\n" in old:
        n = len(lines_of(old))
        at_end = unterminated_end(lines, old)  # since: the text's last lines without their final line break
        for row in order + ([len(lines) - n] if at_end is not None else []):
            if "".join(lines[row:row + n]) == old:
                cand = Edit(row, row + n, old, new)
            elif at_end is not None and row == len(lines) - n:
                cand = Edit(row, row + n, at_end, new[:-1] if new.endswith("\n") else new)
            else:
                continue
            if not _undoes(cand, last):
                return cand
        return None
    pattern = _pattern(old)
    multi = len(lines_of(last.original)) > 1
    within, once = new.find(old), punctuation_insertion(old, new)
    for row in order:
        line = lines[row]
        if not pattern.search(line):
            continue
        end = row + 1
        while multi and end < len(lines) and pattern.search(lines[end]) and not edited_lo <= end < edited_hi:
            end += 1
        block = "".join(lines[row:end])
        # since: an occurrence that has the change already is left; text beside punctuation alone goes in once a line
        found = [m for m in pattern.finditer(block) if not done_there(block, m.start(), new, within)]
        if not found:
            continue
        new_line = _substitute(block, last_on_each_line(block, found) if once else found, new)
        cand = Edit(row, end, block, new_line)
        if new_line != line and not _undoes(cand, last):
            return cand
    return None


# Random texts: a few identifiers repeated (so that replacements recur), every kind of line break, breaks only
# Python counts, characters of two UTF-16 units, sometimes no final line break.

_WORDS = ["width", "w", "height", "area", "x", "foo_bar", "é", "😀", "(", ")", ",", " ", "  ", "=", ":", "# c"]
_BREAKS = ["\n"] * 6 + ["\r\n"] * 3 + ["\r"] * 2
_ODD = ["\x0c", "\x0b", "\x85", "\u2028", "\u2029", "\x1c", "\x1e"]


def _random_text(rng: random.Random, lines: int, breaks: list[str], odd: float) -> str:
    out = []
    for _ in range(lines):
        line = "".join(rng.choice(_WORDS) for _ in range(rng.randint(0, 6)))
        if rng.random() < odd:
            k = rng.randint(0, len(line))
            line = line[:k] + rng.choice(_ODD) + line[k:]
        out.append(line + rng.choice(breaks))
    text = "".join(out)
    r = rng.random()
    if r < 0.25:
        text = text.rstrip("\r\n")  # no final line break
    elif r < 0.3:
        text += rng.choice(_ODD)  # a break only Python counts as the last character
    return text


def _breaks(rng: random.Random) -> list[str]:
    return rng.choice([["\n"], ["\n"], ["\r\n"], ["\r"], _BREAKS])


def _random_edit(rng: random.Random, text: str, breaks: list[str], renames: float = 0.6) -> Edit:
    """A line edit of ``text``: a rename of one word on a line (with probability ``renames`` where the word is
    there), lines replaced, inserted or deleted (their lines ending in one of ``breaks``, or in none)."""
    have = lines_of(text)
    word = rng.choice(["width", "x", "foo_bar", "(", "é"])
    rows = [i for i, line in enumerate(have) if word in line]
    if rows and rng.random() < renames:
        s = rng.choice(rows)
        return Edit(s, s + 1, have[s], have[s].replace(word, rng.choice(["w", "height2", "y", "[", "😀"]), 1))
    s = rng.randint(0, len(have))
    e = min(len(have), s + rng.choice([0, 1, 1, 2, 3]))
    eol = rng.choice(breaks + [""])
    updated = "".join("".join(rng.choice(_WORDS) for _ in range(rng.randint(0, 4))) + eol
                      for _ in range(rng.choice([0, 1, 1, 2])))
    return Edit(s, e, "".join(have[s:e]), updated)


def _random_history(rng: random.Random, text: str, size: int, breaks: list[str]) -> tuple[list[Edit], str]:
    history = []
    for k in range(size):
        edit = _random_edit(rng, text, breaks, 0.9 if k == size - 1 else 0.6)  # the last edit: mostly a rename to repeat
        text = reference_apply_edit(text, edit)
        history.append(edit)
    return history, text


def _plain(text: str) -> bool:
    """No break only Python counts before the last character: the texts a request reads through its index."""
    return not any(ch in text[:-1] for ch in _PY_ONLY_BREAKS)


def test_indexed_lines_are_the_lines_python_splits():
    rng = random.Random(31)
    checked = 0
    for _ in range(3000):
        text = _random_text(rng, rng.randint(0, 12), _breaks(rng), rng.choice([0.0, 0.2]))
        if not text or not _plain(text):
            continue
        lines = _IndexedLines(LineIndex(text))
        want = lines_of(text)
        assert_reads_as(rng, lines, want, text)
        assert [lines.start(i) for i in range(len(want) + 1)] == [sum(map(len, want[:i])) for i in range(len(want) + 1)]
        checked += 1
    assert checked > 1500


def assert_reads_as(rng: random.Random, lines, want: list[str], text: str) -> None:
    """``lines`` (a `TextLines` of ``text``) read as the list ``want``: its length, every line (negative indices
    too), a random slice; and `line_at` of each offset of ``text`` is a line whose `start` bounds it."""
    assert len(lines) == len(want) and list(lines[:]) == want, text
    assert [lines[i] for i in range(-len(want), len(want))] == want + want
    a, b = sorted(rng.randint(-2, len(want) + 2) for _ in range(2))
    assert lines[a:b] == want[a:b]
    for offset in range(len(text)):
        row = lines.line_at(offset)
        assert lines.start(row) <= offset < lines.start(row + 1)


def test_the_functions_give_what_the_whole_text_ones_gave_with_or_without_the_lines():
    """`splice`, `undoes_last_edit`, `predict_next` and `in_document` on random histories, CRLF, CR, mixed breaks,
    form feeds, emoji, no final break: without lines (training, evaluation) exactly the former results, with the
    index's lines (requests; texts without a break only Python counts) the same again."""
    rng = random.Random(20261206)
    counts = {"with_lines": 0, "predicted": 0, "predicted_through_lines": 0, "undo": 0, "raised": 0}
    for case in range(8000):
        breaks = _breaks(rng)
        original = _random_text(rng, rng.randint(0, 30), breaks, rng.choice([0.0, 0.0, 0.1]))
        history, current = _random_history(rng, original, rng.randint(1, 4), breaks)
        lines = _IndexedLines(LineIndex(current)) if current and _plain(current) else None
        counts["with_lines"] += lines is not None
        for table in (None, lines) if lines is not None else (None,):
            probe = _random_edit(rng, current, _BREAKS)
            wrong = Edit(probe.start_line, probe.end_line, probe.original + "z", probe.updated)
            for edit in (probe, wrong, Edit(len(lines_of(current)) + 1, len(lines_of(current)) + 1, "", "q\n")):
                try:
                    want = reference_splice(current, edit)
                except ValueError:
                    want = ValueError
                    counts["raised"] += 1
                try:
                    got = splice(current, edit, table)
                except ValueError:
                    got = ValueError
                assert got == want, (case, current, edit)
                if table is None and want is not ValueError:  # training rebuilds texts with it
                    assert apply_edit(current, edit) == reference_apply_edit(current, edit)
                undo = reference_undoes_last_edit(history, current, edit)
                counts["undo"] += undo
                assert undoes_last_edit(history, current, edit, table) == undo, (case, current, history, edit)
            last = history[-1]
            n = len(lines_of(last.updated))
            if last.start_line + n <= len(lines_of(current)):
                back = Edit(last.start_line, last.start_line + n, "".join(lines_of(current)[last.start_line:][:n]),
                            last.original)  # the last edit undone: an undo whatever its blocks
                undo = reference_undoes_last_edit(history, current, back)
                counts["undo"] += undo
                assert undoes_last_edit(history, current, back, table) == undo, (case, current, history, back)
            lf_history, lf_current = lf_view(history, current)
            lf_table = table if lf_current is current else None
            want_edit = reference_predict_next(lf_history, lf_current)
            assert BaselinePredictor().predict_next(lf_history, lf_current, lf_table) == want_edit, (case, current)
            counts["predicted"] += want_edit is not None
            counts["predicted_through_lines"] += want_edit is not None and lf_table is not None
            assert in_document(current, want_edit, table) == in_document(current, want_edit), (case, current)
    assert counts["with_lines"] > 5000 and counts["predicted"] > 2500 and counts["predicted_through_lines"] > 400, counts
    assert counts["undo"] > 10000, counts
    assert counts["raised"] > 20000, counts


def test_an_undo_far_from_the_last_edit_is_seen_through_the_lines():
    """In a run of equal lines, deleting one far below the line the last edit inserted gives back the text before
    it: an undo, though the two edits are 900 lines apart (compared in pieces); one more character is not."""
    current = "x = 1\n" * 1000
    lines = _IndexedLines(LineIndex(current))
    history = [Edit(10, 10, "", "x = 1\n")]
    for edit, undo in ((Edit(900, 901, "x = 1\n", ""), True), (Edit(900, 901, "x = 1\n", "x\n"), False),
                       (Edit(2, 3, "x = 1\n", ""), True), (Edit(999, 1000, "x = 1\n", "x = 2\n"), False)):
        assert reference_undoes_last_edit(history, current, edit) is undo
        assert undoes_last_edit(history, current, edit, lines) is undo
    far = "a\n" + "x = 1\n" * 999 + "b\n"  # the same length, different only at both ends
    last, edit = Edit(0, 1, "b\n", "a\n"), Edit(1000, 1001, "b\n", "a\n")
    assert not reference_undoes_last_edit([last], far, edit)
    assert not undoes_last_edit([last], far, edit, _IndexedLines(LineIndex(far)))


def _service() -> NextEditService:
    store = ListStore()
    recorder = SessionRecorder(store)
    recorder.document_opened(URI, 1, "python", "")
    return NextEditService(InferenceScheduler(), SuggestionLedger(), recorder)


def _edited_document(rng: random.Random, text: str, changes: int):
    """A document opened with ``text`` and changed by ``changes`` random renames or line edits, as an editor
    sends them (each far enough in time to be its own record)."""
    docs = DocumentStore()
    docs.open(URI, "python", 1, text)
    for version in range(2, changes + 2):
        doc = docs.get(URI)
        current = doc.text
        index = LineIndex(current)
        words = [(m, w) for w in ("width", "x", "foo_bar", "(", "é", "😀") for m in [current.find(w)] if m >= 0]
        if words and rng.random() < 0.6:
            at, word = rng.choice(words)
            at = current.find(word, rng.randint(0, at)) if rng.random() < 0.5 else at
            a, b, inserted = at, at + len(word), rng.choice(["w", "height2", "y", "[", "😀", ""])
        else:
            a = rng.randint(0, len(current))
            b = min(len(current), a + rng.choice([0, 1, 3, 10]))
            inserted = rng.choice(["x", "\n", "\r\n", "width = 1\n", "", "(w)"])
        rng_range = Range(index.position_at(a), index.position_at(b))
        docs.change(URI, version, [(rng_range, inserted)], now=10.0 * version)
    docs.flush(URI)
    return docs.get(URI)


def test_a_request_through_the_index_gives_the_edits_of_the_whole_text_path():
    """Thousands of seeded documents and histories: `predict` with the document's index (what a request does) gives
    the range, text and answer it gives without one (every line split from the whole text)."""
    rng = random.Random(7301)
    service = _service()
    compared = found = 0
    for case in range(2500):
        text = _random_text(rng, rng.randint(1, 30), _breaks(rng), rng.choice([0.0, 0.0, 0.05]))
        found += edited_answers_agree(rng, service, text, case)[1]
        compared += 2
    assert compared == 5000 and found > 1000, found


def edited_answers_agree(rng: random.Random, service: NextEditService, text: str, case) -> tuple[str, int]:
    """`answers_agree` for a request at a random position of a document opened with ``text`` and edited at random
    (`_edited_document`): the document's text then, and how many of the two predictors answered."""
    doc = _edited_document(rng, text, rng.randint(1, 5))
    version, index = doc.indexed_snapshot()
    position = Position(rng.randint(0, index.line_count), rng.randint(0, 5))
    return index.text, answers_agree(service, URI, index, doc.history.recent(8), position, case)


def test_predict_with_reads_the_lines_it_is_given():
    """`predict_with` (shared with evaluation) answers the same with the index's lines as without."""
    rng = random.Random(12)
    for _ in range(1500):
        breaks = _breaks(rng)
        original = _random_text(rng, rng.randint(1, 30), breaks, 0.0)
        history, current = _random_history(rng, original, rng.randint(1, 4), breaks)
        if not current:
            continue
        lines = _IndexedLines(LineIndex(current))
        want = predict_with("heuristic", None, history, current, 0)
        got = predict_with("heuristic", None, history, current, 0, lines=lines)
        assert (got is None and want is None) or (got.edit, got.confidence) == (want.edit, want.confidence)


# The whole-text work is gone: every split a request makes is recorded.

def _big_renamed_document(lines: int, near: int):
    """A ``lines``-line Python file in which ``alpha`` was renamed on three lines around line ``near``."""
    return big_edited_document(URI, lines, near), near + 8


def test_a_request_splits_no_whole_text(monkeypatch):
    """Near the end and near the start of a 50,000-line file, a heuristic request splits only short texts (the
    edits' blocks): before, `undoes_last_edit`, `text_before`, `splice` and the baseline split the whole text."""
    split_sizes = splits_recorded(monkeypatch)
    service = _service()
    for near in (49_000, 50):
        doc, cursor = _big_renamed_document(50_000, near)
        version, index = doc.indexed_snapshot()
        split_sizes.clear()
        result = service.predict(index.text, doc.history.recent(8), Position(cursor, 0), URI, predictor="heuristic",
                                 index=index)
        assert result is not None and result.new_text == "renamed"
        assert split_sizes and max(split_sizes) < 200, max(split_sizes)  # the edits' blocks, not 2 MB of text
        assert len(index.text) > 2_000_000


def test_a_request_reads_lines_near_its_edits_only(monkeypatch):
    """The lines a heuristic request reads through the index lie near its edits and the next occurrence it finds,
    whatever the file's length."""
    read_rows = rows_read(monkeypatch)
    service = _service()
    for size in (5_000, 50_000):
        doc, cursor = _big_renamed_document(size, size - 100)
        version, index = doc.indexed_snapshot()
        read_rows.clear()
        result = service.predict(index.text, doc.history.recent(8), Position(cursor, 0), URI, predictor="heuristic",
                                 index=index)
        assert result is not None
        assert read_rows and min(read_rows) >= size - 110 and len(read_rows) < 60, (size, sorted(set(read_rows)))
