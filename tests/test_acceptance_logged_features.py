"""The gate logged each feature rounded to 5 decimals while its model scored them unrounded: a model trained on the
logged rows learned values serving never scored, and a logged row scored again could fall on the other side of a
tree's split (1 of 794 logged stage-1 rows did)."""

from __future__ import annotations

import json
import math

import numpy as np

from lsp_server.config import Settings
from lsp_server.services.context import build_context
from lsp_server.services.gate import AcceptanceGate
from lsp_server.services.positions import position_at
from models.acceptance import features
from models.acceptance.model import AcceptanceModel, Calibration, StageModel

TEXT = "import os\n\ndef total(values):\n    return sum(values) + \n"


def _stage(names, weights: dict[str, float]) -> StageModel:
    """A logistic stage that weighs the named features (unknown ones read as 0)."""
    d = len(names)
    coef = np.array([weights.get(n, 0.0) for n in names])
    return StageModel("logistic", list(names), np.zeros(d), {"mean": np.zeros(d), "scale": np.ones(d), "coef": coef,
                                                             "intercept": -1.0})


def _logged(decision) -> np.ndarray:
    """The decision's features as telemetry stores them and training reads them back."""
    row = json.loads(json.dumps(decision.details()))["features"]
    return np.array([math.nan if v is None else v for v in row], dtype=float)


def test_a_logged_decision_scores_again_to_exactly_its_logged_score():
    c, s = features.CONTEXT_FEATURES, features.SUGGESTION_FEATURES
    s2 = np.array([0.1] * 30 + [0.9] * 30)
    model = AcceptanceModel("test-1", _stage(c, {"log_line_prefix_chars": 1.0}),
                            _stage(s, {"log_line_prefix_chars": 0.5, "mean_logprob": 1.0}),
                            Calibration(np.full(60, 0.9), s2, (s2 > 0.5).astype(int)))
    gate = AcceptanceGate(model)
    offset = TEXT.index("+ ") + 2
    ctx = build_context(TEXT, position_at(TEXT, offset))
    first = gate.before(ctx, Settings(), now=1000.0)
    second = gate.after(ctx, "len(values)", Settings(), logprobs=(-0.1234567891, -1.9876543219), stage1=first,
                        now=1000.5)
    for decision, stage, name in ((first, model.stage1, "log_line_prefix_chars"),
                                  (second, model.stage2, "mean_logprob")):
        value = decision.vector[stage.feature_names.index(name)]
        assert round(value, 5) != value  # a value that needs more than 5 decimals, weighed by the model
        x = _logged(decision)
        assert float(stage.predict(x)) == decision.score
        np.testing.assert_array_equal(x, decision.vector)  # what a model trained on the logged rows learns from
