"""Shared checks of the next-edit service's windowed path: answers with the document's line index against those
without it, and the rows a request reads through the index."""

from __future__ import annotations

import pytest

from lsp_server.services import next_edit as service_module
from lsp_server.services.next_edit import NextEditService
from lsp_server.services.positions import LineIndex, Position


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


def rows_read(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The rows later requests read through the document's index (`_IndexedLines.start`), in order."""
    read: list[int] = []
    original_start = service_module._IndexedLines.start

    def recorded_start(self, line: int) -> int:
        read.append(line)
        return original_start(self, line)

    monkeypatch.setattr(service_module._IndexedLines, "start", recorded_start)
    return read
