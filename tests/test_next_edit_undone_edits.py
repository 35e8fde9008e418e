"""Next edits, a ninth look: edits taken back are no pattern to carry on."""

from __future__ import annotations

from models.next_edit.examples import Edit, apply_all
from models.next_edit.model import predict_with
from models.next_edit.prompt import without_undone
from models.next_edit.ranker import load_ranker
from tests.test_next_edit_ranker import SHAPES

RENAME = Edit(0, 1, "def area(width, height):\n", "def area(w, height):\n")
UNDO = Edit(0, 1, "def area(w, height):\n", "def area(width, height):\n")


def test_an_edit_and_the_one_that_takes_it_back_both_leave_the_history():
    other = Edit(3, 4, "x = 1\n", "x = 2\n")
    assert without_undone([other, RENAME, UNDO]) == [other]
    assert without_undone([RENAME, other, UNDO]) == [RENAME, other, UNDO]  # not the edit just before: both stay
    assert without_undone([RENAME, UNDO, RENAME]) == [RENAME]  # redone
    assert without_undone([other, RENAME, UNDO, Edit(3, 4, "x = 2\n", "x = 1\n")]) == []


def test_a_rename_taken_back_is_not_offered_at_the_next_use():
    """`width` renamed `w`, then Ctrl+Z (a separate edit, more than a second later): the ranker offered `w` at
    `check(width)` (0.887, over its threshold), though only an edit restoring what the last one changed was refused."""
    history = [RENAME, UNDO]
    current = apply_all(SHAPES, history)
    assert current == SHAPES
    found = predict_with("ranker", None, history, current, 0, ranker=load_ranker())
    assert found is None or "w)" not in found.edit.updated


def test_an_answer_in_another_cell_supersedes_the_edit_open_in_the_asking_cell():
    """The ledger closes the earlier edit per document: an answer filed under the cell below left the asking cell's
    edit open, and its cell's close later ended it "documentClosed" instead of "superseded"."""
    from lsp_server.config import Settings
    from lsp_server.services.documents import DocumentStore
    from lsp_server.services.ledger import SuggestionLedger
    from lsp_server.services.next_edit import NextEditService, cells_below
    from lsp_server.services.notebooks import NotebookStore
    from lsp_server.services.positions import Position, Range
    from lsp_server.services.recorder import SessionRecorder
    from lsp_server.services.scheduler import InferenceScheduler
    from telemetry import SuggestionRejected
    from tests.telemetry_fakes import ListStore

    notebook = "file:///project/nb.ipynb"
    top, below = notebook + "#0", notebook + "#1"
    notebooks, documents = NotebookStore(), DocumentStore()
    notebooks.open(notebook, "jupyter", 1, [top, below])
    documents.open(top, "python", 1, "values = [1, 2]\nmean = sum(values)\n")
    documents.open(below, "python", 1, "print(values)\n")
    documents.change(top, 2, [(Range(Position(0, 0), Position(0, 6)), "items")], now=1.0)
    store = ListStore()
    recorder = SessionRecorder(store)
    for uri in (top, below):
        recorder.document_opened(uri, 1, "python", "")
    service = NextEditService(InferenceScheduler(), SuggestionLedger(), recorder)

    def ask():
        doc = documents.get(top)
        pending = service.request(doc, doc.version, Position(0, 5), Settings(),
                                  other_cells=cells_below(notebooks, documents, doc))
        result = pending.future.result(30)
        assert service.issue(pending, documents.get(top), doc.version, result, documents)
        return pending.suggestion_id, result

    try:
        first, answer = ask()
        assert answer.cell is None  # in the asking cell: `mean = sum(items)`
        documents.change(top, 3, [(Range(answer.start, answer.end), answer.new_text)], now=5.0)  # typed by hand
        _, answer = ask()
        assert answer.cell is not None and answer.cell.uri == below
        assert [(e.suggestion_id, e.reason) for e in store.events if isinstance(e, SuggestionRejected)] == [
            (first, "superseded")]
        assert service.ledger.get(first).outcome == "rejected"
    finally:
        service.scheduler.shutdown()
