"""A session with the acceptance gate off logged no feature vectors: the only outcomes no gate censored gave nothing
to train on."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from lsp_server.config import Settings
from lsp_server.services.gate import AcceptanceGate
from lsp_server.services.positions import Position, Range
from lsp_server.services.recorder import SessionRecorder
from models.acceptance import features
from telemetry import SessionStarted, TelemetryStore
from tests.test_acceptance_gate import TEXT, URI, FakeService, _model, _pipeline

OFF = dataclasses.replace(Settings(), acceptance_gate=False)


def _gated(store) -> list:
    return [e for e in store.events if type(e).__name__ == "SuggestionGated"]


def _issued(pipe, settings: Settings):
    pending = pipe.request(URI, Position(3, 12), "automatic", settings)
    suggestion = pending.future.result(timeout=10)
    assert pipe.issue(pending, suggestion, URI)
    return pending


@pytest.mark.parametrize("gate,settings", [(AcceptanceGate(_model(0.01, 0.01)), OFF), (AcceptanceGate(), Settings())],
                         ids=["setting off", "no model"])
def test_with_the_gate_off_a_suggestion_that_goes_out_logs_stage_2_s_features(gate, settings) -> None:
    pipe, store = _pipeline(gate, FakeService())
    _issued(pipe, settings)
    (row,) = _gated(store)
    assert (row.stage, row.decision, row.score, row.threshold, row.model_version) == (2, "show", None, None, None)
    assert row.details["forced"] == "gate off" and row.details["feature_version"] == features.FEATURE_VERSION
    assert len(row.details["features"]) == len(features.SUGGESTION_FEATURES)
    pipe.scheduler.shutdown()


def test_the_vector_logged_with_the_gate_off_is_the_one_stage_2_sees_with_it_on() -> None:
    """The features come from the document, the suggestion and the user's history, not from the model."""
    on, on_store = _pipeline(AcceptanceGate(_model(0.9, 0.95)), FakeService())
    off, off_store = _pipeline(AcceptanceGate(_model(0.9, 0.95)), FakeService())
    for pipe in (on, off):
        pipe.gate.clock = lambda: 1000.0
        pipe.gate.record_outcome("earlier", "accepted", ts=900.0)
    _issued(on, Settings())
    _issued(off, OFF)
    assert [g.details["features"] for g in _gated(off_store)] == [_gated(on_store)[-1].details["features"]]
    on.scheduler.shutdown()
    off.scheduler.shutdown()


def test_with_the_gate_off_only_suggestions_that_go_out_once_the_gate_has_started_log_features() -> None:
    """Before the gate has started, the user's prior is not seeded: its counts would teach wrong features. A suggestion
    stale before its answer went out never reached the user: it has no outcome to learn."""
    pipe, store = _pipeline(AcceptanceGate(will_start=True), FakeService())
    _issued(pipe, OFF)
    assert _gated(store) == []
    pipe.gate.start(OFF)
    pending = pipe.request(URI, Position(3, 12), "automatic", OFF)
    suggestion = pending.future.result(timeout=10)
    pipe.documents.change(URI, 2, [(Range.of(0, 0, 0, 0), "# a line above\n")])  # stale: never shown
    assert not pipe.issue(pending, suggestion, URI)
    assert _gated(store) == []
    shown = _issued(pipe, OFF)
    assert [(g.suggestion_id, g.details["forced"]) for g in _gated(store)] == [(shown.suggestion_id, "gate off")]
    pipe.scheduler.shutdown()


def test_a_gate_off_session_s_accepted_suggestion_is_a_training_sample(tmp_path: Path) -> None:
    from models.acceptance.dataset import from_telemetry

    db = tmp_path / "t.sqlite3"
    pipe, _ = _pipeline(AcceptanceGate(), FakeService())
    store = TelemetryStore(db)
    pipe.recorder = recorder = SessionRecorder(store)
    store.record(SessionStarted(recorder.session_id, "vscode", "1", "0.1.0"))
    recorder.document_opened(URI, 1, "python", TEXT)
    pending = _issued(pipe, OFF)
    recorder.accepted(pending.suggestion_id, 5, partial=False)
    store.close()
    data, refusals = from_telemetry([db])
    assert refusals == [] and len(data) == 1 and list(data.y) == [1]
    pipe.scheduler.shutdown()
