"""The serving acceptance gate and its place in the completion pipeline (protocol level, fake code model)."""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from types import SimpleNamespace

import numpy as np
import pytest

from lsp_server.config import Settings
from lsp_server.services.completion import Suggestion
from lsp_server.services.context import build_context
from lsp_server.services.documents import DocumentStore
from lsp_server.services.gate import AcceptanceGate
from lsp_server.services.ledger import IssuedSuggestion, SuggestionLedger
from lsp_server.services.pipeline import CompletionPipeline
from lsp_server.services.positions import Position
from lsp_server.services.recorder import SessionRecorder
from lsp_server.services.scheduler import Cancelled, InferenceScheduler
from models.acceptance import features
from models.acceptance.model import AcceptanceModel, Calibration, StageModel
from models.runtime import DecodeResult
from tests.telemetry_fakes import ListStore

URI = "file:///w/a.py"
TEXT = "import os\n\ndef f(x):\n    return x\n"


def _stage(names, p: float) -> StageModel:
    """A logistic stage that says P(accept) = p whatever it sees."""
    d = len(names)
    return StageModel("logistic", list(names), np.zeros(d), {"mean": np.zeros(d), "scale": np.ones(d), "coef": np.zeros(d),
                                                             "intercept": math.log(p / (1 - p))})


def _model(p1: float, p2: float) -> AcceptanceModel:
    # calibration where a stage-2 score of 0.1 always meant a rejection and 0.9 an acceptance
    s2 = np.array([0.1] * 30 + [0.9] * 30)
    cal = Calibration(np.full(60, 0.9), s2, (s2 > 0.5).astype(int))
    return AcceptanceModel("test-1", _stage(features.CONTEXT_FEATURES, p1), _stage(features.SUGGESTION_FEATURES, p2), cal)


class FakeService:
    """CompletionService's protocol, with a code model that only counts its calls."""

    def __init__(self, text: str = "x + 1") -> None:
        self.calls = 0
        self.text = text
        self.status = SimpleNamespace(name="fake")
        self.runtime = SimpleNamespace(n_layers=4)

    def context(self, index, language_id, position, settings):
        return build_context(index.text, position, language_id=language_id, index=index)

    def wait_loaded(self, timeout=None) -> bool:
        return True

    def complete(self, ctx, settings, token) -> Suggestion:
        self.calls += 1
        r = DecodeResult(token_ids=[1, 2, 3], text=self.text, layers=[4, 4, 4], logprobs=[-0.1, -0.2, -0.3],
                         stop_probs=[0.1, 0.1, 0.2])
        return Suggestion(self.text, self.text, ctx, r, settings.decoding_policy, 1.0)


def _pipeline(gate: AcceptanceGate, service: FakeService):
    docs = DocumentStore()
    docs.open(URI, "python", 1, TEXT)
    store = ListStore()
    recorder = SessionRecorder(store)
    recorder.document_opened(URI, 1, "python", TEXT)  # a suggestion's events go to a store that holds its document
    pipe = CompletionPipeline(docs, service, InferenceScheduler(), SuggestionLedger(), recorder, gate)
    return pipe, store


def _gated(store):
    return [(e.stage, e.decision, e.model_version) for e in store.events if type(e).__name__ == "SuggestionGated"]


def _run(pipe, trigger="automatic", settings=None):
    pending = pipe.request(URI, Position(3, 12), trigger, settings or Settings())
    return pending.future.result(timeout=10)


def test_an_acceptance_after_a_counted_rejection_replaces_it():
    """The telemetry store ranks accepted above rejected for one suggestion; the gate kept the first outcome."""
    gate = AcceptanceGate()
    gate.record_outcome("s1", "rejected", ts=1.0)  # superseded while unresolved
    gate.record_outcome("s1", "accepted", ts=2.0)  # then accepted
    gate.record_outcome("s1", "rejected", ts=3.0)  # a late rejection changes nothing
    gate.record_outcome("s2", "accepted", ts=4.0)
    gate.record_outcome("s2", "rejected", ts=5.0)
    h = gate.history
    assert (h.accepted, h.rejected, h.last_outcome, h.last_outcome_ts) == (2, 0, 1, 4.0)


def test_stage1_skip_means_the_code_model_is_not_called():
    service = FakeService()
    pipe, store = _pipeline(AcceptanceGate(_model(0.01, 0.9)), service)
    settings = dataclasses.replace(Settings(), acceptance_skip_uncertainty=0.2)  # P(accept) 0.01 < 0.2: confident
    assert _run(pipe, settings=settings) is None
    assert service.calls == 0
    assert _gated(store) == [(1, "skip", "test-1")]
    gated = [e for e in store.events if type(e).__name__ == "SuggestionGated"][0]
    assert gated.score == pytest.approx(0.01) and gated.threshold == 0.2
    assert len(gated.details["features"]) == len(features.CONTEXT_FEATURES)
    assert not [e for e in store.events if type(e).__name__ == "SuggestionCancelled"]  # the outcome is 'skipped'


def test_invoked_requests_are_generated_and_shown_whatever_the_scores():
    service = FakeService()
    pipe, store = _pipeline(AcceptanceGate(_model(0.01, 0.01)), service)
    settings = dataclasses.replace(Settings(), acceptance_skip_uncertainty=0.2)
    assert _run(pipe, "invoked", settings).text == "x + 1"
    assert service.calls == 1
    assert _gated(store) == [(1, "generate", "test-1"), (2, "show", "test-1")]
    assert all(e.details.get("forced") == "invoked" for e in store.events if type(e).__name__ == "SuggestionGated")


def test_stage2_hides_a_likely_rejection_and_logs_both_decisions():
    service = FakeService()
    pipe, store = _pipeline(AcceptanceGate(_model(0.9, 0.05)), service)
    assert _run(pipe) is None
    assert service.calls == 1
    assert _gated(store) == [(1, "generate", "test-1"), (2, "hide", "test-1")]
    second = [e for e in store.events if type(e).__name__ == "SuggestionGated"][1]
    assert len(second.details["features"]) == len(features.SUGGESTION_FEATURES)


def test_stage2_shows_a_likely_acceptance():
    pipe, store = _pipeline(AcceptanceGate(_model(0.9, 0.95)), FakeService())
    assert _run(pipe).text == "x + 1"
    assert _gated(store)[-1] == (2, "show", "test-1")


def test_a_suggestion_shown_again_at_the_same_prompt_is_seen_as_a_repeat():
    pipe, store = _pipeline(AcceptanceGate(_model(0.9, 0.95)), FakeService())
    first = pipe.request(URI, Position(3, 12), "automatic", Settings())
    assert pipe.issue(first, first.future.result(timeout=10), URI)  # sent: the gate remembers it as shown
    assert _run(pipe).text == "x + 1"  # nothing typed since: the same prompt, the same suggestion
    vectors = [e.details["features"] for e in store.events if type(e).__name__ == "SuggestionGated"]
    first1, first2, again1, again2 = vectors
    s1, s2 = features.CONTEXT_FEATURES, features.SUGGESTION_FEATURES
    assert first1[s1.index("same_prefix_as_shown")] == 0.0 and again1[s1.index("same_prefix_as_shown")] == 1.0
    assert again1[s1.index("log_seconds_since_shown")] < first1[s1.index("log_seconds_since_shown")]
    assert first2[s2.index("log_times_shown_before")] == 0.0
    assert again2[s2.index("log_times_shown_before")] == pytest.approx(math.log(2), abs=1e-5)


def test_gate_setting_off_means_no_gate():
    service = FakeService()
    pipe, store = _pipeline(AcceptanceGate(_model(0.01, 0.01)), service)
    settings = dataclasses.replace(Settings(), acceptance_gate=False, acceptance_skip_uncertainty=0.5)
    assert _run(pipe, settings=settings).text == "x + 1"
    assert _gated(store) == []


def test_debounce_lets_a_newer_keystroke_supersede_before_the_model_is_called():
    service = FakeService()
    model = _model(0.12, 0.95)  # below the base rate (0.5): a debounce, not a skip
    pipe, store = _pipeline(AcceptanceGate(model), service)
    settings = dataclasses.replace(Settings(), acceptance_debounce_max_ms=5000)
    first = pipe.request(URI, Position(3, 12), "automatic", settings)
    deadline = time.time() + 60
    while not _gated(store) and time.time() < deadline:  # the first job is now sleeping in its debounce
        time.sleep(0.01)
    second = pipe.request(URI, Position(3, 12), "invoked", settings)  # invoked: no debounce
    with pytest.raises(Cancelled):
        first.future.result(timeout=10)
    assert second.future.result(timeout=10).text == "x + 1"
    assert service.calls == 1
    debounce = [e.details.get("debounce_ms") for e in store.events if type(e).__name__ == "SuggestionGated" and e.stage == 1]
    assert debounce[0] > 1000 and debounce[1] == 0


def test_missing_model_shows_everything_and_warns_once(tmp_path, caplog):
    gate = AcceptanceGate()
    with caplog.at_level(logging.WARNING, logger="tact.gate"):
        assert gate.load(tmp_path / "nowhere") is False
        assert gate.load(tmp_path / "nowhere") is False
    assert len([r for r in caplog.records if "acceptance gate off" in r.getMessage()]) == 1
    assert not gate.active and "no acceptance model" in gate.reason
    service = FakeService()
    pipe, store = _pipeline(gate, service)
    assert _run(pipe).text == "x + 1" and service.calls == 1
    assert _gated(store) == []
    ctx = build_context(TEXT, Position(3, 12))
    assert gate.before(ctx, Settings()).generate and gate.after(ctx, "y", Settings()).show


def test_a_model_that_fails_to_load_in_an_unforeseen_way_turns_the_gate_off_instead_of_raising(tmp_path, monkeypatch):
    """The gate starts inside `initialized`: an exception escaping it used to abort the session's start (no
    session_started event, no edit timer)."""
    import lsp_server.services.gate as gate_module

    def broken(_path):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(gate_module, "load_model", broken)
    gate = AcceptanceGate()
    assert gate.start(Settings()) is False
    assert not gate.active and "RuntimeError: disk on fire" in gate.reason


def test_the_gate_calls_the_one_feature_function(monkeypatch):
    calls = []
    real_ctx, real_sug = features.context_features, features.suggestion_features
    monkeypatch.setattr(features, "context_features", lambda inp: calls.append("context") or real_ctx(inp))
    monkeypatch.setattr(features, "suggestion_features",
                        lambda c, s, v=None: calls.append("suggestion") or real_sug(c, s, v))
    gate = AcceptanceGate(_model(0.5, 0.5))
    ctx = build_context(TEXT, Position(3, 12))
    first = gate.before(ctx, Settings())
    gate.after(ctx, "y", Settings(), stage1=first)
    assert calls == ["context", "suggestion"]
    # the features the gate logs are exactly what the training-side function computes from the same inputs
    np.testing.assert_array_equal(first.vector, real_ctx(first.inputs))


def test_outcomes_update_the_running_prior_through_the_ledger():
    gate = AcceptanceGate(_model(0.5, 0.5))
    ledger = SuggestionLedger()
    ledger.listeners.append(gate.record_outcome)
    for sid in ("a", "b", "c"):
        ledger.issue(IssuedSuggestion(sid, "completion", URI, 1, "x"))  # each supersedes (rejects) the one before
    ledger.resolve("c", "partially_accepted")
    ledger.resolve("c", "accepted")  # the same suggestion counts once
    ledger.resolve("unknown", "accepted")
    h = gate.history
    assert (h.accepted, h.rejected, h.last_outcome) == (1, 2, 1)
    inputs = gate.before(build_context(TEXT, Position(3, 12)), Settings()).inputs
    assert (inputs.user_accepted, inputs.user_rejected, inputs.previous_outcome) == (1, 2, 1)
    assert inputs.seconds_since_outcome is not None and inputs.seconds_since_outcome < 60


def test_prior_is_seeded_from_the_telemetry_database(tmp_path):
    from telemetry import SuggestionAccepted, SuggestionRejected, open_store

    db = tmp_path / "t.sqlite3"
    with open_store(db) as store:
        for ev in (SuggestionAccepted("s", "a", 3, False), SuggestionRejected("s", "b", "typedOver"),
                   SuggestionRejected("s", "c", "dismissed")):
            store.record(ev)
    gate = AcceptanceGate(_model(0.5, 0.5))
    gate.seed_from_database(db)
    assert (gate.history.accepted, gate.history.rejected) == (1, 2)
    gate.seed_from_database(tmp_path / "missing.sqlite3")  # nothing there: nothing changes, nothing raised
    (tmp_path / "junk.sqlite3").write_text("not a database")
    gate.seed_from_database(tmp_path / "junk.sqlite3")
    assert (gate.history.accepted, gate.history.rejected) == (1, 2)



def test_a_given_prior_is_seeded_instead_of_the_database(tmp_path):
    """A replay's server is given the prior its recording started from (initializationOptions ``acceptancePrior``):
    its own database is the replay's new output, and seeding from it started every replay from no history."""
    from lsp_server.services.gate import parse_prior
    from telemetry import SuggestionAccepted, open_store

    db = tmp_path / "t.sqlite3"
    with open_store(db) as store:
        store.record(SuggestionAccepted("s", "a", 3, False))
    gate = AcceptanceGate()
    gate.prior = parse_prior({"accepted": 4, "rejected": 6, "lastOutcome": "rejected", "lastOutcomeAt": 1000})
    gate.start(Settings(), db)
    h = gate.history
    assert (h.accepted, h.rejected, h.last_outcome, h.last_outcome_ts) == (4, 6, 0, 1000.0)
    assert parse_prior({"accepted": 0, "rejected": 0, "lastOutcome": None, "lastOutcomeAt": None}) == {
        "accepted": 0, "rejected": 0, "last_outcome": None, "last_outcome_at": None}
    good = {"accepted": 1, "rejected": 0, "lastOutcome": "accepted", "lastOutcomeAt": 5.0}
    for bad in (None, [], {**good, "accepted": -1}, {**good, "rejected": True}, {**good, "lastOutcome": "hidden"},
                {**good, "lastOutcomeAt": None}, {**good, "lastOutcomeAt": float("nan")}, {**good, "accepted": "1"}):
        assert parse_prior(bad) is None, bad


def test_the_gate_decides_only_once_its_prior_is_seeded(tmp_path, monkeypatch):
    """Requests come as soon as the code model is ready, and the gate starts beside that load: a gate that loaded its
    model before seeding the user's history decided the first requests without it (a session and its replay
    differed there, each by how its race went)."""
    gate = AcceptanceGate(will_start=True)
    active_when_seeded = []
    monkeypatch.setattr(gate, "seed_from_database", lambda path: active_when_seeded.append(gate.active))
    assert not gate.status()["started"]
    gate.start(Settings(), tmp_path / "t.sqlite3")
    assert active_when_seeded == [False]
    assert gate.active and gate.status()["started"]


def test_serving_the_gate_imports_neither_torch_nor_sklearn():
    import subprocess
    import sys

    code = ("import sys; from lsp_server.services.gate import AcceptanceGate; g = AcceptanceGate(); g.load();"
            "import lsp_server.services.pipeline;"
            "print([m for m in ('torch', 'transformers', 'sklearn', 'pygls') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_real_server_logs_both_decisions_with_the_model_version(tmp_path):
    """The shipped acceptance model in the real server process: stage 1 and stage 2 reach the decisions table."""
    import os

    from telemetry.lsp_client import LspClient
    from tests.lsp_support import SAMPLE, model_under_test, server_command, wait_for_rows

    from models.acceptance.model import load_model

    db = tmp_path / "t.sqlite3"
    server_log = tmp_path / "server.log"
    with open(server_log, "wb") as err:
        client = LspClient(server_command(model_under_test(), db), env=dict(os.environ), stderr=err)
        try:
            # invoked: generated and shown whatever the scores, so both stages run and are logged
            client.initialize({"stopThreshold": 1.01})
            client.did_open("file:///w/s.py", SAMPLE)
            items = client.inline_completion("file:///w/s.py", 11, 4, invoked=True)
            want = [(1, "generate")] + ([(2, "show")] if items else [])  # no stage 2 for an empty suggestion
            # Written by the server's telemetry thread while it runs (shutdown's flush is tested elsewhere).
            rows = wait_for_rows(db, "select stage, decision, model_version from decisions order by stage", want=len(want))
            status = client.request("tact/status")
        finally:
            client.shutdown()
    assert status["acceptanceGate"]["active"] and status["acceptanceGate"]["version"] == load_model().version
    why = f"telemetry {status['telemetry']}; server log:\n{server_log.read_text(errors='replace')[-3000:]}"
    assert [r[:2] for r in rows] == want, why
    assert {r[2] for r in rows} == {load_model().version}
    assert status["telemetry"]["dropped"] == 0 and status["telemetry"]["failed"] == 0, why


def test_the_gate_follows_an_acceptance_model_path_changed_mid_session(tmp_path, caplog):
    """acceptanceModelPath changed by didChangeConfiguration (Neovim, Emacs: no restart) kept the model of the start;
    the gate now loads the one named, turns off with a reason when it cannot, and comes back."""
    from models.acceptance.model import load_model

    gate = AcceptanceGate()
    assert gate.follow(Settings()) is None  # not started: start() reads the settings it is given
    gate.start(Settings(), None)
    shipped = gate.version
    assert gate.active and shipped == load_model().version
    assert gate.follow(Settings()) is None  # the same path: nothing to load
    missing = tmp_path / "no-such-model"
    with caplog.at_level(logging.WARNING, logger="tact.gate"):
        assert gate.follow(Settings(acceptance_model_path=str(missing))) is False
    assert not gate.active and str(missing) in gate.reason
    assert any(str(missing) in r.getMessage() for r in caplog.records)  # told, though the start warned nothing
    assert gate.follow(Settings()) is True
    assert gate.active and gate.version == shipped and gate.reason == ""
    assert gate.thresholds(Settings()) == AcceptanceGate(load_model()).thresholds(Settings())


def test_a_request_made_while_the_gate_starts_waits_for_it(monkeypatch):
    """The gate starts beside the code model's load; a request the code model answered before the gate had loaded
    went ungated and logged no decision (the session's first requests; a test of the real server flaked on it)."""
    import threading

    import lsp_server.services.gate as gate_module

    monkeypatch.setattr(gate_module, "load_model", lambda path=None: _model(0.9, 0.9))
    gate = AcceptanceGate(will_start=True)
    assert not gate.started and not gate.active
    pipe, store = _pipeline(gate, FakeService())
    pending = pipe.request(URI, Position(3, 12), "automatic", Settings())
    time.sleep(0.2)  # the job is waiting for the gate by now
    threading.Thread(target=gate.start, args=(Settings(), None)).start()
    assert pending.future.result(timeout=10) is not None
    assert _gated(store) == [(1, "generate", "test-1"), (2, "show", "test-1")]
    # a gate no one starts is not waited for
    plain, plain_store = _pipeline(AcceptanceGate(), FakeService())
    assert _run(plain) is not None and _gated(plain_store) == []
