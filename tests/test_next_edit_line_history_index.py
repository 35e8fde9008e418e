"""The line finder and the range of a request read the document's line index instead of scanning its text: near the
end of a 200,000-line file the line finder counted the breaks before the edit (12-23 ms) and the answer's range
rebuilt a line index of the whole text (about 65 ms) on every request."""

from __future__ import annotations

import random

import pytest

from lsp_server.config import Settings
from lsp_server.services import next_edit as service_module
from lsp_server.services.documents import AppliedEdit, Document
from lsp_server.services.ledger import SuggestionLedger
from lsp_server.services.next_edit import NextEditService, line_history
from lsp_server.services.positions import LineIndex, Position
from lsp_server.services.recorder import SessionRecorder
from lsp_server.services.scheduler import InferenceScheduler
from tests.telemetry_fakes import ListStore
from tests.test_next_edit_speed import _random_case as random_case

URI = "file:///project/shapes.py"
FILLER = "    value = compute(alpha, beta)  # filler\n"
TAIL = "def area(width, height):\n    check(width)\n    return width * height\n"


class CountingText(str):
    """A text that counts the `str.count` calls made on it (slices of it are plain strings)."""

    counts = 0

    def count(self, *args):
        type(self).counts += 1
        return super().count(*args)


def _renamed_document(text_type=str) -> tuple[Document, int]:
    """A document near whose end ``width`` was renamed to ``w`` at the ``def``; (it, the def's line)."""
    head = FILLER * 3000
    before = head + TAIL
    def_line = 3000
    start = len(head) + len("def area(")
    after = text_type(before[:start] + "w" + before[start + len("width"):])
    doc = Document(URI, "python", 2, after)
    doc.history.push(2, AppliedEdit(start, start + 5, Position(def_line, 9), Position(def_line, 14), "width", "w"),
                     now=10.0)
    return doc, def_line


def _service() -> NextEditService:
    store = ListStore()
    recorder = SessionRecorder(store)
    recorder.document_opened(URI, 1, "python", "")
    return NextEditService(InferenceScheduler(), SuggestionLedger(), recorder)


def test_line_history_with_the_document_index_gives_the_same_edits_on_random_histories():
    """The edits found through the index are the ones found by counting the text's line breaks."""
    rng = random.Random(20261205)
    compared = 0
    for case in range(1500):
        text, records = random_case(rng)
        expected = line_history(text, records)
        assert line_history(text, records, LineIndex(text)) == expected, (case, text, records)
        compared += bool(expected)
    assert compared > 500  # most cases gave edits to compare


def test_line_history_with_the_document_index_counts_no_line_breaks():
    doc, def_line = _renamed_document(CountingText)
    text = doc.text
    assert isinstance(text, CountingText)
    CountingText.counts = 0
    history = line_history(text, doc.history.recent(), doc.index)
    assert [(e.start_line, e.original, e.updated) for e in history] == [
        (def_line, "def area(width, height):\n", "def area(w, height):\n")]
    assert CountingText.counts == 0
    CountingText.counts = 0
    assert line_history(text, doc.history.recent()) == history  # without the index the text is scanned
    assert CountingText.counts > 0


def test_a_request_reads_the_documents_line_index(monkeypatch):
    """No line index of the whole text is built for a request, and the line finder counts no line breaks of it."""
    built: list[int] = []

    class RecordedIndex(LineIndex):
        def __init__(self, text: str) -> None:
            built.append(len(text))
            super().__init__(text)

    monkeypatch.setattr(service_module, "LineIndex", RecordedIndex)
    doc, def_line = _renamed_document(CountingText)
    service = _service()
    CountingText.counts = 0
    pending = service.request(doc, 2, Position(def_line, 10), Settings(next_edit_predictor="heuristic"))
    result = pending.future.result(timeout=30)
    assert result is not None
    assert (result.start, result.end, result.new_text) == (Position(def_line + 1, 10), Position(def_line + 1, 15), "w")
    assert len(doc.text) not in built
    assert CountingText.counts == 0  # the line count comes from the index too


def test_predict_refuses_an_index_of_another_text():
    doc, def_line = _renamed_document()
    service = _service()
    with pytest.raises(ValueError, match="not of the text"):
        service.predict(doc.text, doc.history.recent(), Position(def_line, 10), predictor="heuristic",
                        index=LineIndex(doc.text + "x = 1\n"))
