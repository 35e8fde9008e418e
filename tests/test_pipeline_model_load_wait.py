"""The completion request path, a ninth look: requests that wait on the model's load."""

from __future__ import annotations

import dataclasses
import threading

import pytest

from lsp_server.config import Settings
from lsp_server.services.gate import AcceptanceGate
from lsp_server.services.positions import Position
from lsp_server.services.scheduler import Cancelled, CancelToken
from tests.test_acceptance_gate import URI, FakeService, _pipeline


class LoadingService(FakeService):
    """A code model still loading until ``loaded`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.loaded = threading.Event()
        self.waiting = threading.Event()

    def wait_loaded(self, timeout=None) -> bool:
        self.waiting.set()
        return self.loaded.wait(timeout)


def _events(store, suggestion_id):
    return [type(e).__name__ for e in store.events if getattr(e, "suggestion_id", None) == suggestion_id]


def test_a_request_superseded_while_the_model_loads_ends_cancelled_at_once():
    """It waited out the load (up to 30 s) on the one worker, the newer request behind it, and was then logged
    failed ("model still loading") rather than superseded."""
    service = LoadingService()
    pipe, store = _pipeline(AcceptanceGate(), service)
    settings = dataclasses.replace(Settings(), acceptance_gate=False)
    first = pipe.request(URI, Position(3, 12), "automatic", settings)
    assert service.waiting.wait(10)
    second = pipe.request(URI, Position(3, 12), "invoked", settings)
    with pytest.raises(Cancelled):
        first.future.result(timeout=5)  # before the load ends
    service.loaded.set()
    assert second.future.result(timeout=10).text == "x + 1"
    assert "SuggestionFailed" not in _events(store, first.suggestion_id)
    assert _events(store, first.suggestion_id)[-1] == "SuggestionCancelled"
    pipe.scheduler.shutdown()


def test_a_token_wait_gives_what_it_waited_for_and_ends_on_cancel():
    token = CancelToken()
    ready = threading.Event()
    assert token.wait(ready.wait, timeout=0.2) is False
    ready.set()
    assert token.wait(ready.wait, timeout=0.2) is True
    token.cancel("superseded")
    with pytest.raises(Cancelled):
        token.wait(threading.Event().wait, timeout=5)
