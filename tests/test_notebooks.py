"""Notebook cells: the store of their order, and a cell's completion context holding the code of the cells above."""

from __future__ import annotations

import pytest

from lsp_server.config import Settings
from lsp_server.services.context import build_context
from lsp_server.services.documents import DocumentStore
from lsp_server.services.notebooks import CELL_SEPARATOR, NotebookError, NotebookStore
from lsp_server.services.positions import Position
from lsp_server.services.recorder import SessionRecorder
from tests.telemetry_fakes import ListStore

NB = "file:///w/analysis.ipynb"


def cell(n: int, notebook: str = NB) -> str:
    return f"vscode-notebook-cell:{notebook[len('file://'):]}#C{n}"


def texts_of(held: dict[str, tuple[str, str]]):
    return held.get


def test_open_keeps_the_order_and_each_cell_once():
    store = NotebookStore()
    nb = store.open(NB, "jupyter-notebook", 1, [cell(0), cell(1), cell(0), cell(2)])
    assert nb.cells == (cell(0), cell(1), cell(2))
    assert store.notebook_of(cell(1)) is nb
    assert store.notebook_of("file:///w/other.py") is None


def test_change_cells_inserts_removes_and_reports_the_removed():
    store = NotebookStore()
    store.open(NB, "jupyter-notebook", 1, [cell(0), cell(1), cell(2)])
    nb, removed = store.change_cells(NB, 2, 1, 1, [cell(3), cell(4)])
    assert nb.cells == (cell(0), cell(3), cell(4), cell(2)) and nb.version == 2
    assert removed == (cell(1),)
    assert store.notebook_of(cell(1)) is None and store.notebook_of(cell(4)) is nb


def test_a_moved_cell_is_not_reported_removed():
    store = NotebookStore()
    store.open(NB, "jupyter-notebook", 1, [cell(0), cell(1), cell(2)])
    nb, removed = store.change_cells(NB, 2, 0, 3, [cell(2), cell(0), cell(1)])
    assert nb.cells == (cell(2), cell(0), cell(1)) and removed == ()
    assert store.notebook_of(cell(0)) is nb


@pytest.mark.parametrize("start,delete", [(-1, 0), (0, -1), (2, 2), (4, 0)])
def test_a_range_past_the_cells_changes_nothing(start, delete):
    store = NotebookStore()
    before = store.open(NB, "jupyter-notebook", 1, [cell(0), cell(1), cell(2)])
    with pytest.raises(NotebookError):
        store.change_cells(NB, 2, start, delete, [cell(9)])
    assert store.get(NB) is before and store.notebook_of(cell(9)) is None


def test_an_unknown_notebook_is_an_error():
    with pytest.raises(NotebookError, match="not open"):
        NotebookStore().change_cells(NB, 1, 0, 0, [cell(0)])


def test_a_cell_belongs_to_one_notebook():
    store = NotebookStore()
    other = "file:///w/other.ipynb"
    store.open(NB, "jupyter-notebook", 1, [cell(0), cell(1)])
    store.open(other, "jupyter-notebook", 1, [cell(1)])
    assert store.get(NB).cells == (cell(0),)
    assert store.notebook_of(cell(1)).uri == other
    store.close(NB)
    assert store.notebook_of(cell(1)).uri == other and store.notebook_of(cell(0)) is None


def test_close_forgets_the_cells():
    store = NotebookStore()
    store.open(NB, "jupyter-notebook", 1, [cell(0)])
    assert store.close(NB).cells == (cell(0),)
    assert store.notebook_of(cell(0)) is None and NB not in store and store.close(NB) is None


def _three_cells():
    store = NotebookStore()
    store.open(NB, "jupyter-notebook", 1, [cell(0), cell(1), cell(2), cell(3)])
    held = {
        cell(0): ("python", "import json\n\n\n"),
        cell(1): ("python", "def load(path):\n    return json.load(open(path))\n"),
        cell(2): ("python", "cfg = lo"),
        cell(3): ("python", "print(cfg)\n"),
    }
    return store, held


def test_earlier_cells_are_the_cells_above_joined_as_one_script():
    store, held = _three_cells()
    got = store.earlier_cells(cell(2), texts_of(held), "python", 10_000)
    assert got == "import json" + CELL_SEPARATOR + "def load(path):\n    return json.load(open(path))" + CELL_SEPARATOR
    assert "print(cfg)" not in got  # cells below are not before the cursor
    assert store.earlier_cells(cell(0), texts_of(held), "python", 10_000) == ""


def test_earlier_cells_leave_out_other_languages_blank_and_unopened_cells():
    store, held = _three_cells()
    held[cell(0)] = ("sql", "select 1")
    held[cell(1)] = ("python", "  \n\n")
    assert store.earlier_cells(cell(2), texts_of(held), "python", 10_000) == ""
    del held[cell(1)]
    held[cell(0)] = ("python", "x = 1")
    assert store.earlier_cells(cell(2), texts_of(held), "python", 10_000) == "x = 1" + CELL_SEPARATOR


def test_earlier_cells_outside_a_notebook_or_without_budget_are_empty():
    store, held = _three_cells()
    assert store.earlier_cells("file:///w/a.py", texts_of(held), "python", 10_000) == ""
    assert store.earlier_cells(cell(2), texts_of(held), "python", 0) == ""


@pytest.mark.parametrize("budget", [1, 5, 12, 13, 14, 30, 50, 63])
def test_earlier_cells_are_cut_at_a_line_start_within_the_budget(budget):
    store, held = _three_cells()
    whole = store.earlier_cells(cell(2), texts_of(held), "python", 10_000)
    got = store.earlier_cells(cell(2), texts_of(held), "python", budget)
    assert len(got) <= budget and whole.endswith(got)
    assert got == "" or whole[len(whole) - len(got) - 1] == "\n"  # a whole line begins it
    starts = [0] + [i + 1 for i, ch in enumerate(whole) if ch == "\n"]
    longest = max((len(whole) - s for s in starts if len(whole) - s <= budget), default=0)
    tail = whole[len(whole) - longest:]
    assert got == (tail if tail.strip() else "")  # as much as fits; blank lines alone are no code above


def _pipeline_with(store: NotebookStore, held: dict[str, tuple[str, str]]):
    from lsp_server.services.pipeline import CompletionPipeline

    docs = DocumentStore()
    for uri, (language, text) in held.items():
        docs.open(uri, language, 1, text)
    return CompletionPipeline(docs, None, None, None, SessionRecorder(ListStore()), notebooks=store), docs


def _in_notebook(pipe, uri: str, ctx, settings: Settings):
    """A context as a request in ``uri`` gets it: the cells above read at the request, joined in the job."""
    return ctx.with_earlier_cells(pipe._cells_above(uri, ctx.language_id, settings))


def test_a_cells_context_holds_the_cells_above_and_the_summary_says_how_much():
    store, held = _three_cells()
    pipe, docs = _pipeline_with(store, held)
    ctx = build_context(held[cell(2)][1], Position(0, 8))
    got = _in_notebook(pipe, cell(2), ctx, Settings())
    assert got.earlier_cells.startswith("import json") and got.prefix == "cfg = lo"
    assert got.summary()["earlier_cells_chars"] == len(got.earlier_cells)
    assert "earlier_cells_chars" not in ctx.summary()
    plain = build_context("x = 1\n", Position(0, 5))
    assert _in_notebook(pipe, "file:///w/a.py", plain, Settings()) is plain


def test_a_prefix_window_that_does_not_reach_the_cells_start_gets_no_earlier_cells():
    store, held = _three_cells()
    long_cell = "\n".join(f"value_{i} = {i}" for i in range(800)) + "\nprint("
    held[cell(2)] = ("python", long_cell)
    pipe, _ = _pipeline_with(store, held)
    ctx = build_context(long_cell, Position(800, 6))
    assert ctx.prefix_start > 0
    assert _in_notebook(pipe, cell(2), ctx, Settings()).earlier_cells == ""


def test_a_huge_cell_above_is_read_only_as_far_as_the_budget():
    store, held = _three_cells()
    held[cell(1)] = ("python", "".join(f"row_{i} = {i}\n" for i in range(200_000)) + "\n\n")
    got = store.earlier_cells(cell(2), texts_of(held), "python", 100)
    assert got.endswith("row_199999 = 199999" + CELL_SEPARATOR) and len(got) <= 100
    assert got.startswith("row_") and "import json" not in got
    held[cell(1)] = ("python", "x = 1" + " " * 500 + "\n")  # within the budget only a blank tail: no cut line
    got = store.earlier_cells(cell(2), texts_of(held), "python", 100)
    assert len(got) <= 100 and got.strip() == ""


def _cells_service():
    from lsp_server.services.ledger import SuggestionLedger
    from lsp_server.services.next_edit import NextEditService
    from lsp_server.services.recorder import SessionRecorder
    from lsp_server.services.scheduler import InferenceScheduler

    return NextEditService(InferenceScheduler(), SuggestionLedger(), SessionRecorder())


def _renamed_store():
    store, docs = NotebookStore(), DocumentStore()
    store.open(NB, "jupyter-notebook", 1, [cell(0), cell(1), cell(2)])
    docs.open(cell(0), "python", 1, "values = [1, 2]\n")
    docs.open(cell(1), "sql", 1, "select values from t\n")  # another language: not a cell to carry a rename to
    docs.open(cell(2), "python", 1, "total = sum(values) + len(values)\n")
    docs.change(cell(0), 2, [(None, "items = [1, 2]\n")], now=0.0)
    return store, docs


def test_a_rename_is_carried_to_the_first_use_in_a_cell_below():
    from lsp_server.services.documents import EditRecord
    from lsp_server.services.next_edit import cells_below, replacement_in_other_cells

    store, docs = _renamed_store()
    below = cells_below(store, docs, docs.get(cell(0)))
    assert [c.uri for c in below] == [cell(2)] and below[0].version == 1
    rename = EditRecord(cell(0), 2, Position(0, 0), Position(0, 6), "values", "items", 0.0, 0.0, 5)
    found = replacement_in_other_cells([rename], below, docs.get(cell(0)).index)
    assert found is not None and found[0].uri == cell(2) and found[1:] == (12, 18, "items")
    for removed, inserted in (("values", "values"), ("values = [", "items = ["), ("", "items"), ("values", "")):
        other = EditRecord(cell(0), 2, Position(0, 0), Position(0, 6), removed, inserted, 0.0, 0.0, 1)
        assert replacement_in_other_cells([other], below, docs.get(cell(0)).index) is None  # no identifier renamed
    assert replacement_in_other_cells([rename], [], docs.get(cell(0)).index) is None
    assert cells_below(store, docs, docs.get(cell(2))) == []  # the last cell has none below
    assert cells_below(NotebookStore(), docs, docs.get(cell(0))) == []  # not in a notebook


def test_an_edit_for_a_cell_that_changed_after_the_request_is_not_issued():
    """The cell below is read as the request is made; its range would be wrong once the cell changed."""
    from lsp_server.services.documents import EditRecord
    from lsp_server.services.next_edit import cells_below
    from lsp_server.services.pipeline import PendingRequest

    store, docs = _renamed_store()
    service = _cells_service()
    top = docs.get(cell(0))
    rename = EditRecord(cell(0), 2, Position(0, 0), Position(0, 6), "values", "items", 0.0, 0.0, 5)
    result = service._in_other_cells([rename], cells_below(store, docs, top), top.index)
    assert result.cell.uri == cell(2) and (result.start.character, result.end.character) == (12, 18)
    pending = PendingRequest("s1", None, None, top, 2)
    docs.change(cell(2), 2, [(None, "# moved\ntotal = sum(values)\n")], now=0.0)
    assert service.issue(pending, top, 2, result, docs) is False
    fresh = service._in_other_cells([rename], cells_below(store, docs, top), top.index)
    assert service.issue(PendingRequest("s2", None, None, top, 2), top, 2, fresh, docs) is True
    assert service.ledger.get("s2").uri == cell(2) and service.ledger.get("s2").version == 2


def test_cells_around_splits_the_notebook_at_a_cell():
    store = NotebookStore()
    store.open(NB, "jupyter-notebook", 1, [cell(0), cell(1), cell(2)])
    assert store.cells_around(cell(1)) == ((cell(0),), (cell(2),))
    assert store.cells_around(cell(0)) == ((), (cell(1), cell(2)))
    assert store.cells_around("file:///w/script.py") == ((), ())
