"""Shared checks of the next-edit service's windowed path: answers with the document's line index against those
without it, and the rows a request reads through the index."""

from __future__ import annotations

import pytest

from lsp_server.services import next_edit as service_module
from lsp_server.services.documents import Document, DocumentStore
from lsp_server.services.next_edit import NextEditService
from lsp_server.services.positions import LineIndex, Position, Range
from models.next_edit import baseline, candidates, examples, prompt
from models.next_edit.ranker import SYNTAX_CHECKED


def answers_agree(service: NextEditService, uri: str, index: LineIndex, records: list, position: Position,
                  case) -> int:
    """Assert that both predictors answer alike with the index and without it (the whole-text path); how many of
    the two answered."""
    found = 0
    for predictor in ("heuristic", "ranker"):
        want = service.predict(index.text, records, position, uri, predictor=predictor, ranker_threshold=0.0)
        got = service.predict(index.text, records, position, uri, predictor=predictor, ranker_threshold=0.0,
                              index=index)
        assert (got is None) == (want is None), (case, index.text, records)
        if want is not None:
            assert (got.start, got.end, got.new_text, got.answer.edit, got.answer.confidence) == \
                (want.start, want.end, want.new_text, want.answer.edit, want.answer.confidence), (case, index.text)
            found += 1
    return found


def ranker_choice(found: list, scores, lines: list[str]) -> tuple | None:
    """(edit, score) the ranker answers with among candidates ``found`` scored ``scores`` on a Python text of
    ``lines`` (`EditRanker.rank`): of the ``SYNTAX_CHECKED`` best, the first that leaves the code around it parsing
    as before; None when each breaks it. A ``misplaced`` candidate is scored, never the answer."""
    ranked = [i for i in sorted(range(len(found)), key=lambda i: -scores[i]) if not found[i].misplaced]
    for k in ranked[:SYNTAX_CHECKED]:
        if not candidates.breaks_code(found[k].edit, lines):
            return found[k].edit, float(scores[k])
    return None


def rows_read(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The rows later requests read through the document's index (`_IndexedLines.start`), in order."""
    read: list[int] = []
    original_start = service_module._IndexedLines.start

    def recorded_start(self, line: int) -> int:
        read.append(line)
        return original_start(self, line)

    monkeypatch.setattr(service_module._IndexedLines, "start", recorded_start)
    return read


def splits_recorded(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The lengths of the texts later requests split into lines (`lines_of` in the next-edit modules), in order."""
    sizes: list[int] = []

    def recorded_lines_of(text: str) -> list[str]:
        sizes.append(len(text))
        return text.splitlines(keepends=True)

    for module in (examples, prompt, baseline, candidates):
        monkeypatch.setattr(module, "lines_of", recorded_lines_of)
    return sizes


def big_edited_document(uri: str, lines: int, near: int, eol: str = "\n",
                        inserted: tuple[tuple[int, int, str], ...] = ()) -> Document:
    """A ``lines``-line Python file with line breaks ``eol`` in which ``alpha`` was renamed on three lines around
    line ``near``, then each of ``inserted`` ((row, column, text)) typed in turn; the pending edit is flushed after
    them (when there are any)."""
    rows = [f"def f{i}(alpha, beta):{eol}" if i % 10 == 0 else f"    value_{i} = compute(alpha, beta)  # c{eol}"
            for i in range(lines)]
    docs = DocumentStore()
    docs.open(uri, "python", 1, "".join(rows))
    for k in range(3):
        row = near + 1 + 3 * k
        col = rows[row].index("alpha")
        docs.change(uri, k + 2, [(Range(Position(row, col), Position(row, col + 5)), "renamed")], now=10.0 * (k + 1))
    for k, (row, col, text) in enumerate(inserted):
        docs.change(uri, k + 5, [(Range(Position(row, col), Position(row, col)), text)], now=50.0 + 10.0 * k)
    if inserted:
        docs.flush(uri)
    return docs.get(uri)
