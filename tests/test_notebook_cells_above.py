"""A notebook cell's completion against what happens to the cells above it between the request and the model call:
the cells above are read as they were at the request, and their edits are in the edit stream before it, so a replay
gives the model the notebook the recorded server gave it."""

from __future__ import annotations

from concurrent.futures import Future

from lsp_server.config import Settings
from lsp_server.services.documents import DocumentStore
from lsp_server.services.ledger import SuggestionLedger
from lsp_server.services.notebooks import NotebookStore
from lsp_server.services.pipeline import CompletionPipeline
from lsp_server.services.positions import Position, Range
from lsp_server.services.recorder import SessionRecorder
from lsp_server.services.scheduler import CancelToken
from tests.telemetry_fakes import ListStore
from tests.test_acceptance_gate import FakeService

NB = "file:///w/analysis.ipynb"
ABOVE, BELOW = "vscode-notebook-cell:/w/analysis.ipynb#C0", "vscode-notebook-cell:/w/analysis.ipynb#C1"
SETTINGS = Settings(acceptance_gate=False)


class HeldScheduler:
    """Queues jobs without running them: the test runs each when it chooses, as a busy worker would later."""

    def __init__(self) -> None:
        self.jobs = []

    def submit(self, key, job):
        self.jobs.append(job)
        return Future(), CancelToken()


class RecordingService(FakeService):
    def __init__(self) -> None:
        super().__init__()
        self.contexts = []

    def complete(self, ctx, settings, token):
        self.contexts.append(ctx)
        return super().complete(ctx, settings, token)


def _notebook(above: str = "import json\n", below: str = "cfg = "):
    docs, store, notebooks = DocumentStore(), ListStore(), NotebookStore()
    recorder = SessionRecorder(store)
    for uri, text in ((ABOVE, above), (BELOW, below)):
        docs.open(uri, "python", 1, text)
        recorder.document_opened(uri, 1, "python", text)
    notebooks.open(NB, "jupyter-notebook", 1, [ABOVE, BELOW])
    service, scheduler = RecordingService(), HeldScheduler()
    pipe = CompletionPipeline(docs, service, scheduler, SuggestionLedger(), recorder, notebooks=notebooks)
    return pipe, service, scheduler, store


def test_the_cells_above_are_read_as_they_were_when_the_completion_was_requested():
    """The worker read the cells above when it got to the job, not at the request: a change to them handled
    meanwhile (a cell above typed in, a cell moved) reached a prompt that telemetry places before that change, so
    a replay, which waits for each answer, gave the model other text."""
    pipe, service, scheduler, _ = _notebook()
    pipe.request(BELOW, Position(0, 6), "automatic", SETTINGS)
    pipe.documents.change(ABOVE, 2, [(Range.of(0, 0, 0, 0), "import os\n")])  # handled before the worker runs
    pipe.notebooks.change_cells(NB, 2, 0, 2, [BELOW, ABOVE])  # and the cell moved below the one typed in
    scheduler.jobs[0](CancelToken())
    [ctx] = service.contexts
    assert ctx.earlier_cells == "import json\n\n"


def test_a_cell_aboves_edit_still_being_typed_is_recorded_before_a_completion_in_a_cell_below():
    """A completion reads the cells above as they are, a keystroke still being grouped into an edit included; that
    edit was recorded only once it ended, stamped after the request when typing in the cell above went on within the
    edit window, so a replay gave the request the cell above without it."""
    pipe, _, _, store = _notebook()
    pipe.documents.change(ABOVE, 2, [(Range.of(1, 0, 1, 0), "import os")])
    pipe.request(BELOW, Position(0, 6), "automatic", SETTINGS)
    edits = [e for e in store.events if type(e).__name__ == "EditEvent"]
    assert [(e.uri, e.version, e.inserted_text) for e in edits] == [(ABOVE, 2, "import os")]
    assert pipe.documents.get(ABOVE).history.pending is None
