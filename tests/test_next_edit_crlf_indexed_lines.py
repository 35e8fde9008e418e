"""A request on a document holding CRs (CRLF, CR, or mixed with LF) reads the lines near its edits too: the ranker and
the baseline read the lines of its LF view through the document's line index (`LFLines`: each line read with its
break written as LF), where the former code converted the whole text (`lf_view`) and split it again. The former
functions are kept here as the reference: through the lines or not, the answers (edit, score) are the ones they
gave, so requests, training and evaluation are unchanged."""

from __future__ import annotations

import random

import numpy as np

from lsp_server.services import next_edit as service_module
from lsp_server.services.next_edit import _IndexedLines
from lsp_server.services.positions import LineIndex, Position
from models.fim import to_lf
from models.next_edit import baseline as baseline_module, candidates as candidates_module
from models.next_edit import examples as examples_module, prompt as prompt_module
from models.next_edit.baseline import BaselinePredictor, replacement
from models.next_edit.examples import Edit, apply_all, apply_edit, lines_of
from models.next_edit.model import predict_with
from models.next_edit.prompt import LFLines, _block_edit, _with_newline, lf_lines, lf_view, taken_back, without_undone
from models.next_edit.ranker import load_ranker
from tests.next_edit_support import big_edited_document, ranker_choice, rows_read
from tests.test_next_edit_indexed_lines import (URI, _BREAKS, _breaks, _plain, _random_history, _random_text,
                                                _service, assert_reads_as, edited_answers_agree,
                                                reference_predict_next, reference_undoes_last_edit)
from tests.test_next_edit_ranker_indexed_lines import (_claimed_history, _repeating_text, reference_featurized)


# The former implementations, as they were.

def reference_lf_view(history: list[Edit], current: str) -> tuple[list[Edit], str]:
    if "\r" not in current and not any("\r" in e.original or "\r" in e.updated for e in history):
        return history, current
    lf = [Edit(e.start_line, e.end_line, to_lf(e.original), to_lf(e.updated)) for e in history]
    return [e for e in lf if e.original != e.updated], to_lf(current)


def reference_in_document(current: str, edit: Edit | None) -> Edit | None:
    if edit is None or "\r" not in current:
        return edit
    return _block_edit(current, edit.start_line, lines_of(_with_newline(edit.original)),
                       lines_of(_with_newline(edit.updated)))


def reference_answer(predictor: str, history: list[Edit], current: str, cursor_line: int, ranker=None):
    """`predict_with`'s (edit, score) for ``heuristic`` or ``ranker`` as the former code gave it: the whole text
    converted to LF, split and searched whole; from the edits not taken back (`without_undone`), as predictors read
    them since."""
    lf_history, lf_current = reference_lf_view(without_undone(history), current)
    if ranker is not None and predictor != "heuristic":
        if not lf_history:
            return None
        refused = reference_lf_view(taken_back(history), current)[0]
        found = reference_featurized(lf_history, lf_current, cursor_line, refused=refused)
        if not found:
            return None
        scores = ranker.trees.predict(np.array([c.features for c in found], dtype=np.float64))
        chosen = ranker_choice(found, scores, lines_of(lf_current))
        if chosen is None:
            return None
        edit, score = reference_in_document(current, chosen[0]), chosen[1]
    else:
        edit, score = reference_in_document(current, reference_predict_next(lf_history, lf_current)), 1.0
    if edit is None or reference_undoes_last_edit(history, current, edit):
        return None
    return edit, score


def _answer(found) -> tuple[Edit, float] | None:
    return None if found is None else (found.edit, found.confidence)


def _document_text(rng: random.Random) -> tuple[str, list[str]]:
    """A random text and the line breaks its edits write: LF, CRLF, CR or mixed (half the time as often as the
    rest together, since those are what changed), with form feeds, emoji and no final break now and then."""
    breaks = rng.choice([["\r\n"], ["\r"], _BREAKS, ["\r\n", "\n"], ["\n"]])
    if rng.random() < 0.4:
        return _repeating_text(rng, breaks), breaks
    return _random_text(rng, rng.randint(0, 30), breaks, rng.choice([0.0, 0.0, 0.1])), breaks


def _document_history(rng: random.Random, most: int, claimed: float | None = None) -> tuple[list[Edit], str]:
    """A `_document_text` edited by a random history of 1 to ``most`` edits: (history, current); with probability
    ``claimed`` the history is replaced by one whose edits each undo from ``current``, their originals random
    (`_claimed_history`)."""
    text, breaks = _document_text(rng)
    history, current = _random_history(rng, text, rng.randint(1, most), breaks)
    if claimed is not None and rng.random() < claimed:
        history = _claimed_history(rng, current, rng.randint(1, most))
    return history, current


def test_the_lf_view_read_through_the_lines_is_the_lf_text_split():
    """`LFLines` reads as the lines of the whole text converted to LF (one line per line, the same numbers); its
    offsets are the document's, where a text holding no line break lies as it lies in the LF text."""
    rng = random.Random(41)
    checked = 0
    for _ in range(3000):
        text = _random_text(rng, rng.randint(0, 14), _breaks(rng), rng.choice([0.0, 0.2]))
        if not text or not _plain(text):
            continue
        doc_lines = _IndexedLines(LineIndex(text))
        assert doc_lines.text_has_cr == ("\r" in text)
        assert _IndexedLines(LineIndex(text), False).text_has_cr is False  # a verdict given is taken as it is
        lines = lf_lines(doc_lines)
        assert (lines is doc_lines) == ("\r" not in text)
        lf = to_lf(text)
        want = lines_of(lf)
        assert_reads_as(rng, lines, want, text)
        assert lines.joined() == lf and lines.text == text
        for row in range(len(want)):  # a line's start in the document is where its text (less its break) lies
            body = want[row].rstrip("\n")
            assert text.startswith(body, lines.start(row))
        checked += 1
    assert checked > 1500


def test_the_baseline_through_the_lf_view_gives_the_former_edit():
    """`predict_next` through `LFLines` (the document's text searched: a one-line old text as it is, a block by its
    longest line) on CRLF, CR and mixed texts: the former edit, found by splitting the LF text whole."""
    rng = random.Random(20261208)
    counts = {"cr": 0, "predicted": 0, "blocks": 0, "blank_blocks": 0}
    for case in range(6000):
        history, current = _document_history(rng, 4, claimed=0.15)
        if not current or "\r" not in current or not _plain(current):
            continue
        if rng.random() < 0.4:  # a block of the text's lines replaced last on a line: the block is searched
            rows = lines_of(current)
            s, t = rng.randrange(len(rows)), rng.randrange(len(rows))
            history = history + [Edit(t, t + 1, "".join(rows[s:s + rng.randint(1, 3)]), rows[t])]
        counts["cr"] += 1
        lf_history, lf_current = reference_lf_view(history, current)
        want = reference_predict_next(lf_history, lf_current)
        got = BaselinePredictor().predict_next(lf_history, current, LFLines(_IndexedLines(LineIndex(current))))
        assert got == want, (case, current, history)
        counts["predicted"] += want is not None
        rep = replacement(lf_history[-1]) if lf_history else None
        if rep is not None and "\n" in rep[0]:
            counts["blocks"] += 1
            counts["blank_blocks"] += not any(line.strip() for line in lines_of(rep[0]))
    assert counts["cr"] > 3000 and counts["predicted"] > 800 and counts["blocks"] > 800, counts
    assert counts["blank_blocks"] > 10, counts


def test_requests_through_the_lines_give_the_former_answers():
    """`predict_with` with the document's lines (what a request does) and without them (evaluation) on thousands of
    seeded histories (LF, CRLF, CR, mixed, form feeds, emoji, no final break, histories that undo into lines a CR
    and an LF join), with the heuristic and the shipped ranker: the edit and score the former code gave."""
    ranker = load_ranker()
    rng = random.Random(20261209)
    counts = {"cr": 0, "lf": 0, "heuristic": 0, "ranker": 0}
    for case in range(3000):
        history, current = _document_history(rng, 6, claimed=0.1)
        if not current or not _plain(current):
            continue  # a request reads no such text through its index
        cursor = rng.randint(0, len(lines_of(current)))
        lines = _IndexedLines(LineIndex(current))
        counts["cr" if "\r" in current else "lf"] += 1
        for predictor in ("heuristic", "ranker"):
            want = reference_answer(predictor, history, current, cursor, ranker)
            got = _answer(predict_with(predictor, None, history, current, cursor, ranker=ranker, ranker_threshold=0.0,
                                       lines=lines))
            assert got == want, (case, predictor, current, history)
            evaluated = _answer(predict_with(predictor, None, history, current, cursor, ranker=ranker,
                                             ranker_threshold=0.0))
            assert evaluated == want, (case, predictor, current, history)
            counts[predictor] += want is not None
    assert counts["cr"] > 1200 and counts["lf"] > 300, counts
    assert counts["heuristic"] > 800 and counts["ranker"] > 1000, counts


def test_lf_view_without_the_lines_is_the_former_one():
    """Training and evaluation convert the whole text as before: the same history (the same object when nothing
    holds a CR) and text."""
    rng = random.Random(3)
    for _ in range(3000):
        history, current = _document_history(rng, 4)
        got, want = lf_view(history, current), reference_lf_view(history, current)
        assert got == want
        assert (got[0] is history) == (want[0] is history) and (got[1] is current) == (want[1] is current)


def test_a_request_on_a_document_through_the_store_gives_the_whole_text_answer():
    """Documents with CRLF, CR or mixed breaks edited through the server's store: `predict` with the document's index
    gives the range, text and answer it gives without one (the whole-text path)."""
    rng = random.Random(7311)
    service = _service()
    found = with_cr = 0
    for case in range(1500):
        text, _breaks_written = _document_text(rng)
        if not text:
            continue
        edited, answered = edited_answers_agree(rng, service, text, case)
        with_cr += "\r" in edited
        found += answered
    assert with_cr > 700 and found > 500, (with_cr, found)


def test_the_texts_verdicts_are_kept_for_that_text_only(monkeypatch):
    """The whole-text verdicts (LSP lines, a CR) are worked out once for a text asked about again, and again for any
    other text, even an equal one: another text's would give its line count or breaks."""
    scans: list[int] = []
    counted = service_module._lsp_lines

    def recorded(text, index=None):
        scans.append(len(text))
        return counted(text, index)

    monkeypatch.setattr(service_module, "_lsp_lines", recorded)
    service = _service()
    crlf, _ = _big_edited_document(200, 20, "\r\n")
    lf, _ = _big_edited_document(300, 20, "\n")
    for doc, times in ((crlf, 2), (lf, 1), (crlf, 1)):
        version, index = doc.indexed_snapshot()
        for _ in range(times):
            whole = service.predict(index.text, doc.history.recent(8), Position(30, 0), URI, predictor="ranker",
                                    ranker_threshold=0.0)
            read = service.predict(index.text, doc.history.recent(8), Position(30, 0), URI, predictor="ranker",
                                   ranker_threshold=0.0, index=index)
            assert whole is not None and (read.start, read.end, read.new_text) == (whole.start, whole.end, whole.new_text)
    assert len(scans) == 3, scans  # the CRLF text, the LF one, the CRLF one again (the verdicts of the LF one kept)
    equal = "".join(list(crlf.text))  # an equal text, another object
    assert equal == crlf.text and equal is not crlf.text
    service.predict(equal, crlf.history.recent(8), Position(30, 0), URI, predictor="heuristic")
    assert len(scans) == 4


# The whole-text work is gone: every conversion, split and text rebuilt is recorded.

def _big_edited_document(lines: int, near: int, eol: str):
    """A ``lines``-line Python file with line breaks ``eol`` in which ``alpha`` was renamed on three lines around
    line ``near`` and a line was inserted below them."""
    return big_edited_document(URI, lines, near, eol, inserted=((near + 12, 0, f"    log(renamed){eol}"),)), near + 12


def test_a_request_on_a_crlf_document_converts_splits_and_rebuilds_no_whole_text(monkeypatch):
    """Near the end and near the start of a 50,000-line CRLF file (and a CR one), heuristic and ranker requests
    convert, split and rebuild only short texts (lines, the edits' blocks): before, `lf_view` converted the whole
    text to LF and the predictors split it."""
    sizes: list[tuple[str, int]] = []

    def recorded(name, function):
        def call(text, *args):
            sizes.append((name, len(text)))
            return function(text, *args)
        return call

    for module in (examples_module, prompt_module, baseline_module, candidates_module):
        monkeypatch.setattr(module, "lines_of", recorded("lines_of", lines_of))
    monkeypatch.setattr(prompt_module, "to_lf", recorded("to_lf", to_lf))
    monkeypatch.setattr(candidates_module, "apply_edit", recorded("apply_edit", apply_edit))
    monkeypatch.setattr(candidates_module, "apply_all", recorded("apply_all", apply_all))
    service = _service()
    for eol, near in (("\r\n", 49_000), ("\r\n", 50), ("\r", 30_000)):
        doc, cursor = _big_edited_document(50_000, near, eol)
        version, index = doc.indexed_snapshot()
        assert len(index.text) > 2_000_000
        for predictor in ("heuristic", "ranker"):
            want = service.predict(index.text, doc.history.recent(8), Position(cursor, 0), URI, predictor=predictor,
                                   ranker_threshold=0.0)  # the whole-text path
            sizes.clear()
            got = service.predict(index.text, doc.history.recent(8), Position(cursor, 0), URI, predictor=predictor,
                                  ranker_threshold=0.0, index=index)
            assert sizes and max(size for _, size in sizes) < 200, (eol, predictor, max(sizes, key=lambda s: s[1]))
            if predictor == "heuristic":
                assert got is None and want is None  # the last edit inserted a line: no replacement to repeat
                continue
            assert got is not None and want is not None
            assert (got.start, got.end, got.new_text, got.answer.confidence) == \
                (want.start, want.end, want.new_text, want.answer.confidence)
            assert any(name == "to_lf" for name, _ in sizes)  # the lines read were converted, one by one


def test_a_request_on_a_crlf_document_reads_the_rows_near_its_edits(monkeypatch):
    """A ranker request on a CRLF document reads the rows of its search window through the index (before, it split
    the whole text converted to LF instead), none outside it but for the first line, and as many in a 20,000-line
    file as in a 60,000-line one."""
    read_rows = rows_read(monkeypatch)
    service = _service()
    read = []
    for size in (20_000, 60_000):
        doc, cursor = _big_edited_document(size, size - 5_000, "\r\n")
        version, index = doc.indexed_snapshot()
        read_rows.clear()
        got = service.predict(index.text, doc.history.recent(8), Position(cursor, 0), URI, predictor="ranker",
                              ranker_threshold=0.0, index=index)
        assert got is not None
        window = candidates_module.SEARCH_LINES + 2
        rows = set(read_rows) - {0}  # the first line: the document's line break, which an edit may take
        assert cursor - window <= min(rows) and max(rows) <= cursor + window, (size, cursor)
        read.append(len(rows))
    assert read[0] == read[1] and read[0] > candidates_module.SEARCH_LINES, read
