"""What the completion pipeline logs of a suggestion, from the real default model."""

from __future__ import annotations

from lsp_server.config import Settings
from lsp_server.services.completion import CompletionService
from lsp_server.services.documents import DocumentStore
from lsp_server.services.gate import AcceptanceGate
from lsp_server.services.ledger import SuggestionLedger
from lsp_server.services.pipeline import CompletionPipeline
from lsp_server.services.positions import Position
from lsp_server.services.recorder import SessionRecorder
from lsp_server.services.scheduler import InferenceScheduler
from tests.lsp_support import model_under_test
from tests.telemetry_fakes import ListStore

URI = "file:///w/a.py"
TEXT = "import os\n\ndef f(x):\n    return os.path.join(x, \n"


def _generated(settings: Settings):
    service = CompletionService()
    assert service.load(str(model_under_test())).ready
    docs, store = DocumentStore(), ListStore()
    docs.open(URI, "python", 1, TEXT)
    recorder = SessionRecorder(store)
    recorder.document_opened(URI, 1, "python", TEXT)
    pipe = CompletionPipeline(docs, service, InferenceScheduler(), SuggestionLedger(), recorder, AcceptanceGate())
    pipe.request(URI, Position(3, 27), "invoked", settings).future.result(timeout=60)
    (generated,) = [e for e in store.events if type(e).__name__ == "SuggestionGenerated"]
    return generated, service.runtime.n_layers


def test_a_suggestion_stopped_before_its_first_token_has_no_layers_per_token():
    """It was logged as 0.0 layers a token, and `tact report` averaged those zeros in (the demo's 136 suggestions:
    10.2 layers a token under `speculative`, which runs every layer of every token)."""
    stopped, _ = _generated(Settings(stop_threshold=0.0, acceptance_gate=False))
    assert (stopped.text, stopped.tokens, stopped.stop_reason) == ("", 0, "stop")
    assert stopped.layers_per_token is None
    full, layers = _generated(Settings(stop_threshold=1.01, acceptance_gate=False, decoding_policy="full"))
    assert full.tokens > 0 and full.layers_per_token == layers
