"""CDHF acceptance model: CUPS loading, features, numpy inference, threshold rule, leave-programmer-out."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from models.acceptance import features
from models.acceptance.cups import load_cups, strip_header
from models.acceptance.model import AcceptanceModel, AcceptanceModelError, Calibration, load_model
from models.acceptance.policy import NEVER, Thresholds, choose_thresholds, debounce_ms, outcomes


def _row(user, time, event, prompt="import os\nx = ", suggestion="1", **extra):
    return {"user": user, "time": time, "event": event, "seconds_in_state": 0.1, "prompt": prompt,
            "suggestion": suggestion, "measurements": {"meanLogProb": -0.5}, "labeled_state": "LEAK", **extra}


def _write(path, rows):
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def test_cups_loader_pairs_shown_with_outcome_and_counts_bad_rows(tmp_path):
    rows = [
        _row(1, "2022-08-08T22:11:49.000Z", "Shown", prompt="#!/usr/bin/env python3\n# Path: a.py\nimport os\n"),
        _row(1, "2022-08-08T22:11:50.000Z", "Replay"),
        _row(1, "2022-08-08T22:11:51.000Z", "Accepted"),
        _row(1, "2022-08-08T22:11:55.000Z", "Shown", prompt="import os\nimport sys\n", suggestion="def f():"),
        _row(1, "2022-08-08T22:11:57.000Z", "Rejected", suggestion="def f():"),
        "{not json",
        json.dumps([1, 2]),
        json.dumps(_row(None, "2022-08-08T22:11:58.000Z", "Shown")),  # missing user
        json.dumps(_row(2, "yesterday", "Shown")),  # bad time
        json.dumps({**_row(2, "2022-08-08T22:12:00.000Z", "Shown"), "prompt": None}),  # missing prompt
        json.dumps(_row(2, "2022-08-08T22:12:01.000Z", "Exploded")),  # unknown event
        json.dumps(_row(3, "2022-08-08T22:12:02.000Z", "Accepted")),  # outcome without a Shown
        json.dumps(_row(3, "2022-08-08T22:12:03.000Z", "Shown")),  # shown without outcome
        "",
    ]
    load = load_cups(_write(tmp_path / "c.jsonl", rows))
    assert [s.label for s in load.samples] == [1, 0]
    assert load.rows == 13
    assert load.skipped == {"not JSON": 1, "not an object": 1, "missing user": 1, "bad time": 1, "missing prompt": 1,
                            "unknown event": 1, "outcome without a Shown": 1, "shown without outcome": 1}
    first, second = load.samples
    assert first.context.prefix == "import os\n"  # Copilot's header lines are not the user's text
    assert first.context.previous_outcome is None and first.context.user_accepted == 0
    # the second sees only what happened before it: the first was accepted 4 s earlier
    assert second.context.previous_outcome == 1 and second.context.user_accepted == 1
    assert second.context.seconds_since_outcome == pytest.approx(4.0)
    assert second.context.typing_cps == pytest.approx((len("import os\nimport sys\n") - len("import os\n")) / 6.0)
    assert first.group == second.group == "c.jsonl:1"
    assert first.measurements["meanLogProb"] == -0.5
    assert all("LEAK" not in repr(s.context) for s in load.samples)


def test_an_outcome_for_another_alternative_is_no_label_but_the_programmer_state_learns_it(tmp_path):
    """Browsing alternatives: the outcome resolved another suggestion than the one pending, and labelled it."""
    rows = [_row(4, "2022-08-08T22:11:49.000Z", "Shown", suggestion="a"),
            _row(4, "2022-08-08T22:11:50.000Z", "Accepted", suggestion="b"),
            _row(4, "2022-08-08T22:11:52.000Z", "Shown", prompt="import os\nx = b\n", suggestion="c"),
            _row(4, "2022-08-08T22:11:53.000Z", "Rejected", prompt="import os\nx = b\n", suggestion="c")]
    load = load_cups(_write(tmp_path / "c.jsonl", rows))
    assert load.skipped == {"outcome for another suggestion": 1}
    (only,) = load.samples
    assert (only.suggestion, only.label) == ("c", 0)
    assert only.context.previous_outcome == 1 and only.context.user_accepted == 1


def test_a_byte_order_mark_does_not_cost_the_first_row(tmp_path):
    """A CUPS file saved with a UTF-8 byte-order mark lost its first Shown ("not JSON") and so its outcome too."""
    rows = [_row(1, "2022-08-08T22:11:49.000Z", "Shown"), _row(1, "2022-08-08T22:11:51.000Z", "Accepted")]
    path = tmp_path / "bom.jsonl"
    path.write_text("\ufeff" + "\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    load = load_cups(path)
    assert [s.label for s in load.samples] == [1] and load.skipped == {}
    assert load.samples[0].context.prefix == "import os\nx = "


def test_cups_loader_takes_the_document_length_and_cursor_from_the_shown_row(tmp_path):
    def shown(time, **measurements):
        return _row(1, time, "Shown", prompt="import os\n", measurements={"meanLogProb": -0.5, **measurements})

    rows = [shown("2022-08-08T22:11:49.000Z", documentLength=400, promptEndPos=100),
            _row(1, "2022-08-08T22:11:50.000Z", "Accepted", measurements={"documentLength": 900, "promptEndPos": 900}),
            shown("2022-08-08T22:11:52.000Z", documentLength=50, promptEndPos=80),  # cursor past the end: not used
            _row(1, "2022-08-08T22:11:53.000Z", "Rejected"),
            shown("2022-08-08T22:11:55.000Z"),  # not logged: the prompt stands in, as before
            _row(1, "2022-08-08T22:11:56.000Z", "Rejected")]
    first, bad, missing = load_cups(_write(tmp_path / "c.jsonl", rows)).samples
    assert (first.context.document_chars, first.context.cursor_offset) == (400, 100)  # the Shown row's, not the outcome's
    names = list(features.CONTEXT_FEATURES)
    x = features.context_features(first.context)
    assert x[names.index("relative_position")] == pytest.approx(0.25)
    assert x[names.index("log_document_chars")] == pytest.approx(math.log1p(400))
    for s in (bad, missing):
        assert s.context.document_chars is None and s.context.cursor_offset is None
        assert features.context_features(s.context)[names.index("relative_position")] == 1.0


def test_cups_typing_speed_and_same_place_follow_the_cursor_not_the_prompt_length(tmp_path):
    """The prompt often stays while the cursor moves; serving measures both from the cursor's offset."""
    def shown(time, end):
        return _row(1, time, "Shown", prompt="import os\n", measurements={"documentLength": 400, "promptEndPos": end})

    rows = [shown("2022-08-08T22:11:49.000Z", 100), _row(1, "2022-08-08T22:11:50.000Z", "Rejected"),
            shown("2022-08-08T22:11:52.000Z", 130), _row(1, "2022-08-08T22:11:53.000Z", "Rejected")]
    _, moved = load_cups(_write(tmp_path / "c.jsonl", rows)).samples
    assert moved.context.typing_cps == pytest.approx(10.0)  # 30 characters in 3 s
    assert not moved.context.same_prefix_as_shown


def test_cups_loader_remembers_what_the_programmer_was_shown(tmp_path):
    rows = [
        _row(1, "2022-08-08T22:11:49.000Z", "Shown", prompt="import os\n", suggestion="x = 1"),
        _row(1, "2022-08-08T22:11:50.000Z", "Rejected", prompt="import os\n", suggestion="x = 1"),
        _row(1, "2022-08-08T22:11:52.000Z", "Shown", prompt="import os\n", suggestion=" x = 1\n"),  # same prompt and text
        _row(1, "2022-08-08T22:11:53.000Z", "Rejected", prompt="import os\n", suggestion=" x = 1\n"),
        _row(1, "2022-08-08T22:11:58.000Z", "Shown", prompt="import os\nimport re\n", suggestion="y = 2"),
        _row(1, "2022-08-08T22:11:59.000Z", "Accepted", prompt="import os\nimport re\n", suggestion="y = 2"),
    ]
    first, again, other = load_cups(_write(tmp_path / "c.jsonl", rows)).samples
    assert first.times_shown_before == 0 and first.context.seconds_since_shown is None
    assert not first.context.same_prefix_as_shown
    assert again.times_shown_before == 1  # whitespace aside, the same suggestion
    assert again.context.same_prefix_as_shown and again.context.seconds_since_shown == pytest.approx(3.0)
    assert other.times_shown_before == 0 and not other.context.same_prefix_as_shown
    assert other.context.seconds_since_shown == pytest.approx(6.0)
    names = features.SUGGESTION_FEATURES
    vec = features.suggestion_features(again.context, features.SuggestionInputs(again.suggestion,
                                                                                times_shown_before=again.times_shown_before))
    assert vec[names.index("log_times_shown_before")] == pytest.approx(math.log(2))
    assert vec[names.index("same_prefix_as_shown")] == 1.0


def test_shown_history_is_per_document_and_bounded():
    h = features.ShownHistory(memory=3)
    h.record("a", 10.0, 5, "hello", "x")
    assert h.recall("a", 12.0, 5, "hello") == features.ShownRecall(2.0, 0.0, True)
    assert h.recall("a", 12.0, 9, "hello") == features.ShownRecall(2.0, 2.0, False)  # the same text, another place
    assert h.recall("a", 12.0, 5, "hello!").same_prefix_as_shown is False
    assert h.recall("b", 12.0, 9, "hello") == features.ShownRecall()  # another document: nothing shown there
    for i, doc in enumerate("bcd"):
        h.record(doc, 13.0 + i, 0, "", "y")
    assert h.times_shown(" y ") == 3 and h.times_shown("x") == 0  # "x" fell out of the last 3
    assert h.recall("a", 20.0, 0, "hello") == features.ShownRecall()  # so did document "a"


def test_strip_header_guesses_the_language():
    assert strip_header("// Language: cpp\n// Path: copilot.cpp\nint x;") == ("int x;", "cpp")
    assert strip_header("# Path: study\\a.js\nlet x") == ("let x", "javascript")
    assert strip_header("x = 1\n") == ("x = 1\n", "python")


def test_feature_vectors_have_the_declared_shape_and_names():
    ctx = features.ContextInputs(prefix="def f(x):\n    return x +", suffix=" 1\n", previous_outcome=0,
                                 seconds_since_outcome=3.0, typing_cps=4.0, user_accepted=2, user_rejected=3)
    x1 = features.context_features(ctx)
    assert x1.shape == (len(features.CONTEXT_FEATURES),)
    named = dict(zip(features.CONTEXT_FEATURES, x1))
    assert named["prev_rejected"] == 1 and named["prev_accepted"] == 0
    assert named["last_char=operator"] == 1 and named["last_nonspace_char=operator"] == 1
    assert named["user_acceptance_rate"] == pytest.approx(features.user_acceptance_rate(2, 3))
    sug = features.SuggestionInputs(" y)", logprobs=[-0.5, -1.5], stop_probs=[0.1, 0.3], layers=None, n_layers=4)
    x2 = features.suggestion_features(ctx, sug, x1)
    assert x2.shape == (len(features.SUGGESTION_FEATURES),)
    named2 = dict(zip(features.SUGGESTION_FEATURES, x2))
    assert named2["mean_logprob"] == pytest.approx(-1.0) and named2["min_logprob"] == -1.5
    assert math.isnan(named2["layers_fraction"])  # no early exit: unknown, filled by the model
    assert named2["new_syntax_errors"] >= 1 and named2["parses"] == 0  # an unmatched ')' breaks the line
    end = features.ContextInputs(prefix="def f(x):\n    return x +", suffix="\n")
    ok = features.suggestion_features(end, features.SuggestionInputs(" y"))
    assert dict(zip(features.SUGGESTION_FEATURES, ok))["parses"] == 1
    np.testing.assert_array_equal(features.suggestion_features(ctx, sug), x2)  # stage-1 part recomputed identically


def test_training_data_uses_the_one_feature_function(tmp_path, monkeypatch):
    from models.acceptance import dataset

    calls = []
    real = features.context_features
    monkeypatch.setattr(features, "context_features", lambda inp: calls.append(inp) or real(inp))
    rows = [_row(1, "2022-08-08T22:11:49.000Z", "Shown"), _row(1, "2022-08-08T22:11:51.000Z", "Accepted")]
    data = dataset.from_cups(_write(tmp_path / "c.jsonl", rows))
    assert len(data) == 1 and len(calls) == 1


def _synthetic(n=600, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.35).astype(int)
    s1 = np.clip(0.35 + 0.15 * (y - 0.35) + 0.15 * rng.standard_normal(n), 0, 1)
    s2 = np.clip(0.35 + 0.4 * (y - 0.35) + 0.15 * rng.standard_normal(n), 0, 1)
    return s1, s2, y


@pytest.mark.parametrize("floor", [0.8, 0.9, 0.95])
def test_thresholds_respect_the_precision_floor(floor):
    s1, s2, y = _synthetic()
    t = choose_thresholds(s1, s2, y, lam=0.5, precision_floor=floor)
    o = outcomes(s1, s2, y, t)
    assert o["share_hidden"] > 0  # the synthetic scores separate well enough to hide something
    assert o["hiding_precision"] >= floor
    # and it is the best feasible pair among the candidates: hiding more breaks the floor
    looser = Thresholds(t.skip, t.hide + 0.05)
    assert outcomes(s1, s2, y, looser)["hiding_precision"] < floor or outcomes(s1, s2, y, looser)["share_hidden"] == o["share_hidden"]


def test_thresholds_hide_next_to_nothing_when_scores_are_noise():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    s1, s2 = rng.random(300), rng.random(300)
    t = choose_thresholds(s1, s2, y, lam=0.5, precision_floor=0.99)
    assert outcomes(s1, s2, y, t)["share_hidden"] == 0  # a lucky lowest score or two is too few to trust
    assert choose_thresholds(s1, s2, np.ones(300, int), lam=0.5, precision_floor=0.9) == Thresholds(NEVER, NEVER, 1.0)


@pytest.mark.parametrize("floor", [0.9, 0.65, 0.6])
def test_stage_two_alone_hides_at_any_floor(floor):
    """Constant stage-1 scores still offered "skip everything", which at a floor under the rejection rate won and
    left stage 2 alone hiding nothing."""
    _, s2, y = _synthetic()
    t = choose_thresholds(None, s2, y, lam=0.5, precision_floor=floor)
    o = outcomes(np.zeros(len(y)), s2, y, t)
    assert t.skip == NEVER and o["share_calls_skipped"] == 0
    assert o["share_hidden"] > 0 and o["hiding_precision"] >= floor


def test_a_precision_needs_enough_hidden_samples():
    # the three lowest stage-2 scores are rejects, the rest a coin toss: 100% precision on 3 samples
    y = np.array([0, 0, 0] + [0, 1] * 100)
    s2 = np.concatenate([[0.01, 0.02, 0.03], np.random.default_rng(2).uniform(0.5, 1.0, 200)])
    s1 = np.ones(len(y))
    assert choose_thresholds(s1, s2, y, lam=0.0, precision_floor=0.9, min_hidden=10).hide == NEVER
    assert choose_thresholds(s1, s2, y, lam=0.0, precision_floor=0.9, min_hidden=1).hide != NEVER


def test_lambda_trades_skipping_for_hiding():
    s1, s2, y = _synthetic()
    skip_heavy = outcomes(s1, s2, y, choose_thresholds(s1, s2, y, lam=0.95, precision_floor=0.8))
    skip_light = outcomes(s1, s2, y, choose_thresholds(s1, s2, y, lam=0.0, precision_floor=0.8))
    assert skip_heavy["share_calls_skipped"] >= skip_light["share_calls_skipped"]


def test_debounce_is_longest_for_a_likely_rejection():
    assert debounce_ms(0.05, 0.05, 0.35, 200) == 200
    assert debounce_ms(0.35, 0.05, 0.35, 200) == 0
    assert 0 < debounce_ms(0.2, 0.05, 0.35, 200) < 200
    assert debounce_ms(0.01, NEVER, 0.35, 0) == 0


def test_a_skip_threshold_above_the_base_rate_still_makes_a_likely_rejection_wait():
    """At or above the base rate the linear part has no width: every request waited nothing, an explored one (scored
    below the threshold) included, and the maximum wait setting did nothing."""
    assert debounce_ms(0.1, 0.5, 0.338, 1000) == 1000
    assert debounce_ms(0.5, 0.5, 0.338, 1000) == 1000
    assert debounce_ms(0.6, 0.5, 0.338, 1000) == 0


@pytest.mark.parametrize("kind", ["logistic", "trees"])
def test_numpy_inference_equals_sklearn(kind):
    pytest.importorskip("sklearn")
    from models.acceptance.train import fit_sklearn, export_stage

    rng = np.random.default_rng(3)
    X = rng.standard_normal((300, 6))
    X[rng.random((300, 6)) < 0.05] = np.nan
    y = ((np.nan_to_num(X[:, 0]) + 0.5 * np.nan_to_num(X[:, 1]) + 0.3 * rng.standard_normal(300)) > 0).astype(int)
    fill, est, mean, scale = fit_sklearn(X, y, kind)
    stage = export_stage(kind, [f"f{i}" for i in range(6)], fill, est, mean, scale)
    Xt = rng.standard_normal((200, 6))
    Xt[0, 2] = np.nan
    filled = np.where(np.isnan(Xt), fill, Xt)
    want = est.predict_proba((filled - mean) / scale if kind == "logistic" else filled)[:, 1]
    np.testing.assert_allclose(stage.predict(Xt), want, rtol=1e-9, atol=1e-12)
    assert stage.predict(Xt[5]) == pytest.approx(want[5])
    # and the same after a round trip through the file format
    again = type(stage).from_dict(json.loads(json.dumps(stage.to_dict())))
    np.testing.assert_allclose(again.predict(Xt), want, rtol=1e-9, atol=1e-12)


def test_lopo_never_puts_a_programmer_on_both_sides():
    from models.acceptance.train import lopo_splits

    groups = np.array(["a", "b", "a", "c", "b", "c", "c", "d"], dtype=object)
    seen = []
    for train, test, g in lopo_splits(groups):
        assert set(groups[test]) == {g}
        assert g not in set(groups[train])
        assert len(train) + len(test) == len(groups)
        seen.append(g)
    assert sorted(seen) == ["a", "b", "c", "d"]


def test_lopo_scores_come_from_models_that_never_saw_the_programmer(monkeypatch):
    pytest.importorskip("sklearn")
    from models.acceptance import train

    fitted_on = []
    real = train.fit_stage
    monkeypatch.setattr(train, "fit_stage", lambda X, y, kind, names, seed=0: fitted_on.append(len(y)) or real(X, y, kind, names, seed))
    rng = np.random.default_rng(0)
    groups = np.repeat(np.array(["p1", "p2", "p3"], dtype=object), 40)
    X = rng.standard_normal((120, 3))
    y = (X[:, 0] > 0).astype(int)
    s = train.oof_scores(X, y, groups, "logistic", ["a", "b", "c"])
    assert fitted_on == [80, 80, 80] and not np.isnan(s).any()


def test_load_model_errors_are_clear(tmp_path):
    with pytest.raises(AcceptanceModelError, match="no acceptance model"):
        load_model(tmp_path)
    (tmp_path / "acceptance.json").write_text("{broken")
    with pytest.raises(AcceptanceModelError, match="not a valid acceptance model"):
        load_model(tmp_path)
    (tmp_path / "acceptance.json").write_text(json.dumps({"format": 1, "feature_version": -1}))
    with pytest.raises(AcceptanceModelError, match="feature version"):
        load_model(tmp_path)
    for not_an_object in ("[]", '"x"', "3"):  # valid JSON of another shape used to escape as AttributeError
        (tmp_path / "acceptance.json").write_text(not_an_object)
        with pytest.raises(AcceptanceModelError, match="not a valid acceptance model"):
            load_model(tmp_path)


def _small_model() -> AcceptanceModel:
    """A logistic stage 1 and a one-split trees stage 2 over the real feature lists, built by hand."""
    from models.acceptance.model import StageModel

    d1, d2 = len(features.CONTEXT_FEATURES), len(features.SUGGESTION_FEATURES)
    stage1 = StageModel("logistic", list(features.CONTEXT_FEATURES), np.zeros(d1),
                        {"mean": np.zeros(d1), "scale": np.ones(d1), "coef": np.full(d1, 0.1), "intercept": -0.5})
    split = features.SUGGESTION_FEATURES.index("mean_logprob")
    stage2 = StageModel("trees", list(features.SUGGESTION_FEATURES), np.zeros(d2),
                        {"feature": np.array([split, -2, -2]), "threshold": np.array([-1.0, -2.0, -2.0]),
                         "left": np.array([1, -1, -1]), "right": np.array([2, -1, -1]), "value": np.array([0.0, -1.0, 1.0]),
                         "roots": np.array([0]), "init": -0.5, "learning_rate": 0.5, "max_depth": 1})
    rng = np.random.default_rng(0)
    return AcceptanceModel("small", stage1, stage2, Calibration(rng.random(40), rng.random(40), rng.integers(0, 2, 40)))


def _set(path, value):
    """A setter of the JSON field at ``path`` (keys and indices)."""
    def apply(d):
        for key in path[:-1]:
            d = d[key]
        d[path[-1]] = value(d[path[-1]]) if callable(value) else value
    return apply


@pytest.mark.parametrize("damage", [
    _set(("stage1", "params", "coef"), lambda v: v[:-1]),  # one coefficient short: failed on every request
    _set(("stage1", "params", "scale"), lambda v: [0.0] * len(v)),  # divides by zero: NaN scores, never hides
    _set(("stage1", "params", "intercept"), float("nan")),
    _set(("stage2", "params", "feature"), [10_000, -2, -2]),  # a split on a feature that is not there
    _set(("stage2", "params", "left"), [7, -1, -1]),  # a child outside the nodes
    _set(("stage2", "params", "value"), [0.0]),
    _set(("stage2", "params", "roots"), [3]),
    _set(("stage2", "params", "max_depth"), 0),  # predict would stop at the split and read its value
    _set(("calibration", "stage2"), lambda v: [float("nan")] * len(v)),  # no threshold would ever hide
    _set(("calibration", "stage1"), lambda v: [[x] for x in v]),
    _set(("calibration", "label"), lambda v: [2] * len(v)),
])
def test_a_damaged_model_is_refused_at_load_not_at_the_first_request(tmp_path, damage):
    """load_model checked the feature names and fills only: parameters that did not fit them loaded, then raised on
    every prediction (or scored NaN), where the gate turns off for a model it cannot load."""
    model = _small_model()
    model.save(tmp_path)
    x1, x2 = np.zeros(len(features.CONTEXT_FEATURES)), np.zeros(len(features.SUGGESTION_FEATURES))
    good = load_model(tmp_path)
    assert 0 < good.stage1.predict(x1) < 1 and 0 < good.stage2.predict(x2) < 1  # the undamaged file serves
    d = json.loads((tmp_path / "acceptance.json").read_text())
    damage(d)
    (tmp_path / "acceptance.json").write_text(json.dumps(d))
    with pytest.raises(AcceptanceModelError, match="not a valid acceptance model"):
        load_model(tmp_path)


def test_shipped_model_loads_and_scores_fast():
    import time

    model = load_model()
    assert isinstance(model, AcceptanceModel) and model.version
    x2 = np.zeros(len(features.SUGGESTION_FEATURES))
    model.stage2.predict(x2)
    t0 = time.perf_counter()
    for _ in range(50):
        p = model.stage2.predict(x2)
    assert 0.0 <= p <= 1.0
    assert (time.perf_counter() - t0) / 50 < 0.005  # well under 1 ms on an idle core; slack for a busy one
    assert isinstance(model.calibration, Calibration) and len(model.calibration.label) > 100


def test_models_and_telemetry_never_import_the_server():
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    for package in ("models", "telemetry"):
        for path in (root / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                assert not any(n == "lsp_server" or n.startswith("lsp_server.") for n in names), path


def test_scorer_hands_on_layers_only_for_the_dynamic_policy(tiny_lm_dir, tmp_path):
    """Serving gives the gate layers only under `dynamic`; training must not see them under the others."""
    from models.acceptance.scoring import SuggestionScorer

    prefix, suffix, text = "def add(a, b):\n    return ", "\n", "a + b"
    dynamic = SuggestionScorer(tiny_lm_dir, tmp_path, threads=1, policy="dynamic")
    d = dynamic.score(prefix, suffix, text)
    dynamic.save()
    assert d["layers"] is not None and len(d["layers"]) == len(d["logprobs"]) > 0
    assert all(1 <= x <= d["n_layers"] for x in d["layers"])
    speculative = SuggestionScorer(tiny_lm_dir, tmp_path, threads=1, policy="speculative")
    s = speculative.score(prefix, suffix, text)
    assert speculative.hits == 1 and speculative.misses == 0  # the same cached scores...
    assert s["layers"] is None and s["logprobs"] == d["logprobs"]  # ...without the layers
    assert dynamic.score(prefix, suffix, text)["layers"] == d["layers"]  # the cache itself keeps them
    ctx = features.ContextInputs(prefix=prefix, suffix=suffix)
    names = list(features.SUGGESTION_FEATURES)
    x1 = features.context_features(ctx)
    served = features.suggestion_features(ctx, features.SuggestionInputs(text, s["logprobs"], s["stop_probs"],
                                                                          s["layers"], s["n_layers"]), x1)
    assert math.isnan(served[names.index("layers_fraction")])
