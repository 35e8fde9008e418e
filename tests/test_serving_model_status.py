"""The model status while loads the settings asked for wait their turn: it names the last one asked for."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import lsp_server.services.completion as completion
from lsp_server.services.completion import CompletionService
from models.model_dir import ModelDirError


def test_the_status_names_the_last_load_asked_for_while_an_earlier_one_runs(monkeypatch, tmp_path):
    """Settings A -> B -> A before the loader thread reached B: the status said "loading B" (A being the model loaded
    when B was asked for), and B's load, once begun, said it again, while A was what the settings named."""
    first, other = tmp_path / "a", tmp_path / "b"
    entered, release = threading.Event(), threading.Event()

    def runtime(path, threads=2, weights="fp32"):
        if path == other:
            entered.set()
            release.wait(60)
            raise ModelDirError(f"{path}: not a model")
        return SimpleNamespace(name=path.name, context_tokens=512)

    monkeypatch.setattr(completion, "EarlyExitRuntime", runtime)
    monkeypatch.setattr(completion, "fingerprint", lambda path: path.name)
    service = CompletionService()
    assert service.load(str(first)).ready
    busy = threading.Event()
    service._loader.submit(busy.wait, 60)  # the loader thread is busy elsewhere
    try:
        service.start_loading(str(other))
        assert service.status.loading and service.status.model_dir == str(other)
        back = service.start_loading(str(first))
        assert service.status.loading and service.status.model_dir == str(first), service.status
        busy.set()
        assert entered.wait(60)  # B's load has begun: A is still what comes last
        assert service.status.loading and service.status.model_dir == str(first), service.status
        assert not service.degraded
    finally:
        busy.set()
        release.set()
    assert back.result(60).ready and service.status.ready and service.status.model_dir == str(first)
