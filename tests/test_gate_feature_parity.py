"""The serving acceptance gate against the training side of its features, a model switched mid-request, and the
model file's calibration."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from lsp_server.config import Settings
from lsp_server.services.context import build_context
from lsp_server.services.gate import AcceptanceGate
from lsp_server.services.positions import position_at
from models.acceptance import features
from models.acceptance.model import AcceptanceModel, AcceptanceModelError, Calibration, StageModel, load_model


def _stage(names, p: float, cls=StageModel) -> StageModel:
    """A logistic stage that says P(accept) = p whatever it sees."""
    d = len(names)
    return cls("logistic", list(names), np.zeros(d), {"mean": np.zeros(d), "scale": np.ones(d), "coef": np.zeros(d),
                                                      "intercept": math.log(p / (1 - p))})


def _calibration() -> Calibration:
    # a stage-2 score of 0.1 always meant a rejection and 0.9 an acceptance
    s2 = np.array([0.1] * 30 + [0.9] * 30)
    return Calibration(np.full(60, 0.9), s2, (s2 > 0.5).astype(int))


def test_a_line_longer_than_the_prompt_windows_is_measured_whole_as_training_measures_it():
    """The gate measured the cursor line inside the model's prefix and suffix windows (1024 and 256 chars by default):
    on a line of 4,400 chars it saw 1,336 before the cursor where the training side, given the text before the cursor
    as CUPS logs it, saw all of them; the figure also jumped whenever the cursor crossed the window's grid."""
    line = "data = [" + ", ".join(str(i) for i in range(900)) + "]"
    text = "import os\n\n" + line + "\nprint(data)\n"
    settings = Settings()
    gate = AcceptanceGate(load_model())
    names = features.CONTEXT_FEATURES
    for column in (len(line) - 1, 3000, 2100):
        offset = text.index(line) + column
        ctx = build_context(text, position_at(text, offset), prefix_chars=settings.context_prefix_chars,
                            suffix_chars=settings.context_suffix_chars)
        assert len(ctx.prefix) < column  # the prefix window starts inside the line
        served = gate.before(ctx, settings, now=1000.0).vector
        trained = features.context_features(features.ContextInputs(
            prefix=text[:offset], suffix=text[offset:], document_chars=len(text), cursor_offset=offset))
        assert served[names.index("log_line_prefix_chars")] == pytest.approx(math.log1p(column))
        assert served[names.index("log_line_chars")] == pytest.approx(math.log1p(len(line)))
        np.testing.assert_array_equal(served, trained)


def test_a_short_line_gives_the_same_vector_with_or_without_the_whole_line():
    """Passing the cursor line changes nothing where the windows hold it (CRLF and lone CR included)."""
    for text in ("def f(x):\r\n    return x +\r\n\r\nprint(f(1))\r\n", "a = 1\rb = a +\rc = 3\r", "x = [1,\n  2, 3]\n"):
        offset = text.index("+") + 1 if "+" in text else text.index("2")
        ctx = build_context(text, position_at(text, offset))
        inp = AcceptanceGate(load_model()).context_inputs(ctx, now=1.0)
        windowed = features.ContextInputs(prefix=ctx.prefix, suffix=ctx.suffix, document_chars=len(text),
                                          cursor_offset=offset, facts=ctx.facts)
        sug = features.SuggestionInputs(" 1")
        np.testing.assert_array_equal(features.suggestion_features(inp, sug), features.suggestion_features(windowed, sug))


class _SwitchingStage(StageModel):
    """Scores, and meanwhile (as follow() on another thread would) the gate turns to a model path that fails."""

    gate: AcceptanceGate | None = None

    def predict(self, x):
        p = super().predict(x)
        self.gate.load("/nonexistent/acceptance-model")
        return p


@pytest.mark.parametrize("stage", [1, 2])
def test_a_model_switched_while_a_request_is_scored_decides_that_request_with_the_model_it_began_with(stage):
    """before() and after() checked that a model was loaded, then read ``self.model`` again for the thresholds and the
    debounce: follow() (didChangeConfiguration, on an executor thread) turning the gate off in between raised
    AttributeError in the inference job, and the request got no completion."""
    settings = Settings()
    d1, d2 = features.CONTEXT_FEATURES, features.SUGGESTION_FEATURES
    model = AcceptanceModel("test-1", _stage(d1, 0.2, _SwitchingStage if stage == 1 else StageModel),
                            _stage(d2, 0.05, _SwitchingStage if stage == 2 else StageModel), _calibration())
    gate = AcceptanceGate(model)
    _SwitchingStage.gate = gate
    want = AcceptanceGate(model).thresholds(settings)
    ctx = build_context("x = 1\n", position_at("x = 1\n", 5))
    decision = gate.before(ctx, settings) if stage == 1 else gate.after(ctx, "y", settings)
    assert not gate.active  # the switch happened during the request
    assert decision.model_version == "test-1"  # and its row names that model (the pipeline logged the gate's version)
    if stage == 1:
        assert decision.generate and decision.score == pytest.approx(0.2)
        assert decision.debounce_ms == AcceptanceGate(model).before(ctx, settings).debounce_ms > 0
    else:
        assert decision.decision == "hide" and decision.score == pytest.approx(0.05)
        assert decision.threshold == want.hide


@pytest.mark.parametrize("labels", [[0.5, 1.0], [1.9, 0], ["1", "0"]])
def test_a_calibration_whose_labels_are_not_0_or_1_is_refused_at_load(tmp_path, labels):
    """Labels were read as ints before the check that they are 0 or 1: 0.5 and 1.9 (or the strings "1" and "0")
    loaded as 0 and 1, and the thresholds were chosen on labels the file never held."""
    model = AcceptanceModel("small", _stage(features.CONTEXT_FEATURES, 0.3), _stage(features.SUGGESTION_FEATURES, 0.3),
                            Calibration(np.array([0.2, 0.4]), np.array([0.1, 0.6]), np.array([0, 1])))
    model.save(tmp_path)
    assert load_model(tmp_path).calibration.label.tolist() == [0, 1]  # the undamaged file loads
    d = json.loads((tmp_path / "acceptance.json").read_text())
    d["calibration"]["label"] = labels
    (tmp_path / "acceptance.json").write_text(json.dumps(d))
    with pytest.raises(AcceptanceModelError, match="labels must be 0 or 1"):
        load_model(tmp_path)
    gate = AcceptanceGate()
    assert gate.load(tmp_path) is False and not gate.active
