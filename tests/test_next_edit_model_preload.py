"""The next-edit model loaded ahead when the settings' predictor reads it (`model`, `auto`), as the ranker is: it was
loaded by the first next-edit request of a session, which waited for its onnxruntime sessions."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest

from lsp_server.config import Settings
from lsp_server.services import next_edit as service_module
from lsp_server.services.documents import EditRecord
from lsp_server.services.ledger import SuggestionLedger
from lsp_server.services.next_edit import NextEditService
from lsp_server.services.positions import Position
from lsp_server.services.recorder import SessionRecorder
from lsp_server.services.scheduler import InferenceScheduler
from models.next_edit.examples import Edit
from telemetry.lsp_client import LspClient
from tests.lsp_support import server_command


class _FakeModel:
    """A next-edit model that answers at once: `check(width)` -> `check(w)`."""

    version = "fake-model"

    def predict_edit(self, history, current, cursor_line, path="", should_cancel=None, lines=None):
        return SimpleNamespace(edit=Edit(1, 2, "    check(width)\n", "    check(w)\n"), confidence=0.9, tokens=3)


@pytest.fixture
def loads(monkeypatch):
    """The model loads asked for (``calls``: path and thread name each); each takes ``delay`` seconds, or raises
    when ``fail``."""
    state = SimpleNamespace(calls=[], delay=0.0, fail=False)

    def load(wanted: str):
        state.calls.append((wanted, threading.current_thread().name))
        time.sleep(state.delay)
        if state.fail:
            raise RuntimeError("corrupt graph")
        return _FakeModel(), None

    monkeypatch.setattr(service_module, "_load_model", load)
    return state


def _service() -> NextEditService:
    return NextEditService(InferenceScheduler(), SuggestionLedger(), SessionRecorder())


@pytest.mark.parametrize("predictor, loaded", [("model", True), ("auto", True), ("ranker", False),
                                               ("heuristic", False)])
def test_the_model_is_loaded_ahead_for_a_predictor_that_reads_it(loads, predictor, loaded):
    service = _service()
    try:
        service.preload(Settings(next_edit_predictor=predictor, next_edit_model_path="/models/ne"))
        assert [path for path, _ in loads.calls] == (["/models/ne"] if loaded else [])
        assert (service.model is not None) == loaded
        assert (service.ranker is not None) == (predictor in ("ranker", "auto"))
        service.preload(Settings(next_edit_predictor=predictor, next_edit_model_path="/models/ne"))
        assert len(loads.calls) == (1 if loaded else 0)  # loaded once per path
        service.preload(Settings(next_edit=False, next_edit_predictor=predictor, next_edit_model_path="/other"))
        assert len(loads.calls) == (1 if loaded else 0)  # next edits off: nothing to load
    finally:
        service.scheduler.shutdown()


def test_a_request_made_while_the_model_loads_ahead_waits_for_that_load(loads):
    """The load runs once, on the preloading thread; the request gets its model and does not count the load."""
    loads.delay = 0.5
    service = _service()
    settings = Settings(next_edit_predictor="model")
    preloading = threading.Thread(target=service.preload, args=(settings,), name="preload")
    text = "def area(w, height):\n    check(width)\n"
    record = EditRecord(uri="file:///p/a.py", version=2, start=Position(0, 9), end=Position(0, 14),
                        removed_text="width", inserted_text="w", ts_start=1.0, ts_end=1.0, keystrokes=1)
    try:
        preloading.start()
        time.sleep(0.1)  # the load under way
        result = service.predict(text, [record], Position(0, 10), "file:///p/a.py", predictor="model")
        preloading.join()
        assert loads.calls == [("", "preload")]
        assert result is not None and result.new_text == "w" and result.latency_ms < 400
    finally:
        service.scheduler.shutdown()


def test_a_model_that_fails_to_load_ahead_raises_nothing(loads):
    loads.fail = True
    service = _service()
    try:
        service.preload(Settings(next_edit_predictor="model"))
        assert service.model is None and "corrupt graph" in (service.reason or "")
    finally:
        service.scheduler.shutdown()


def test_the_server_tries_the_model_once_initialized_before_any_next_edit(tmp_path):
    """Before, why there was no model was known only after the first next-edit request."""
    client = LspClient(server_command(tmp_path / "no-model", tmp_path / "t.sqlite3"))
    try:
        client.initialize({"acceptanceGate": False, "nextEditPredictor": "model",
                           "nextEditModelPath": str(tmp_path / "no-next-edit-model")})
        deadline = time.monotonic() + 60
        status = client.request("tact/status")
        while status["nextEdit"]["reason"] is None and time.monotonic() < deadline:
            time.sleep(0.2)
            status = client.request("tact/status")
        assert "no next-edit model at" in (status["nextEdit"]["reason"] or ""), status["nextEdit"]
        assert status["nextEdit"]["session"]["requested"] == 0
    finally:
        client.shutdown()
