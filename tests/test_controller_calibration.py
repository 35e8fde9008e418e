"""The controller's calibrations, fitted on the calibration split and saved with the exit heads.

- P(stop): a per-layer logistic calibration on the exit's top-token log-probability, used by every policy.
- P(exit), for the dynamic policy: the controller's hidden-state logit calibrated per layer with the exit's
  own top-token log-probability and top-two margin."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from models.exits import EXIT_STRIDE, STOP, Controller, exit_score, log_softmax, top_and_margin

torch = pytest.importorskip("torch")

from models.train_lm import fit_head_calibration, fit_stop_calibration  # noqa: E402


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _controller_weights(L: int, D: int, seed: int = 1) -> dict:
    rng = np.random.default_rng(seed)
    weights = {}
    for i in range(L):
        weights.update({f"controller.{i}.0.weight": rng.normal(size=(4, D)).astype(np.float32),
                        f"controller.{i}.0.bias": np.zeros(4, np.float32),
                        f"controller.{i}.2.weight": rng.normal(size=(2, 4)).astype(np.float32),
                        f"controller.{i}.2.bias": np.zeros(2, np.float32)})
    return weights


def test_stop_fit_recovers_a_known_logistic_relation():
    rng = np.random.default_rng(0)
    lp = -rng.exponential(1.5, 40000)  # top-token log-probabilities
    hidden_logit = rng.normal(0, 1, len(lp))
    wrong = rng.random(len(lp)) < _sigmoid(-1.7 * lp - 1.2)
    a, b, c = fit_stop_calibration(hidden_logit, lp, wrong)
    assert a == 0.0  # the hidden-state estimate is left out by default
    assert abs(b + 1.7) < 0.1 and abs(c + 1.2) < 0.1
    a, b, c = fit_stop_calibration(hidden_logit, lp, wrong, use_hidden=True)
    assert abs(a) < 0.1 and abs(b + 1.7) < 0.1  # an uninformative feature gets no weight


def test_controller_stop_probs_follow_the_calibration():
    D, L = 8, 2
    rng = np.random.default_rng(1)
    norms = [np.ones(D, np.float32)] * L
    weights = _controller_weights(L, D)
    hidden = rng.normal(size=(5, D)).astype(np.float32)
    lp = np.array([-0.1, -0.5, -1.0, -2.5, -4.0], np.float32)
    plain = Controller(norms, weights, 1e-5)
    assert plain.stop_calibration is None
    # Without a calibration P(stop) is the hidden-state estimate, whatever the head's confidence.
    assert np.allclose(plain.stop_probs(1, hidden, lp), plain.probs(1, hidden)[:, STOP], atol=1e-6)
    cal = np.array([[0.0, -2.0, -1.5], [0.5, -1.0, 0.0]], np.float32)
    calibrated = Controller(norms, {**weights, "stop_calibration": cal}, 1e-5)
    assert np.allclose(calibrated.stop_probs(0, hidden, lp), _sigmoid(-2.0 * lp - 1.5), atol=1e-6)
    z = np.log(plain.probs(1, hidden)[:, STOP] / (1 - plain.probs(1, hidden)[:, STOP]))
    assert np.allclose(calibrated.stop_probs(1, hidden, lp), _sigmoid(0.5 * z - 1.0 * lp), atol=1e-5)
    # Less confident top tokens are likelier stops.
    assert np.all(np.diff(calibrated.stop_probs(0, hidden, lp)) > 0)
    # A calibration of the wrong shape (another model) is ignored, not misapplied.
    assert Controller(norms, {**weights, "stop_calibration": cal[:1]}, 1e-5).stop_calibration is None


@pytest.mark.parametrize("policy", ["full", "speculative", "dynamic"])
def test_every_policy_stops_on_the_calibrated_probability(tiny_lm_dir, policy):
    from models.runtime import DecodeOptions, EarlyExitRuntime

    rt = EarlyExitRuntime(tiny_lm_dir, threads=1)
    L = rt.n_layers
    rt.controller.stop_calibration = np.tile(np.array([0.0, -3.0, -2.0], np.float32), (L, 1))
    ids = rt.tokenizer.encode("def wrap(text, width=70):\n    return text")
    free = rt.generate(ids, DecodeOptions(policy=policy, stop_threshold=1.01, max_new_tokens=12, single_line=False))
    assert len(free.token_ids) >= 3
    # Each emitted token's reported P(stop) is the calibration applied to that token's own log-probability.
    assert np.allclose(free.stop_probs, _sigmoid(-3.0 * np.array(free.logprobs) - 2.0), atol=1e-4)
    # With a threshold between the reported values, decoding ends right before the first token at or above it.
    probs = free.stop_probs
    th = float(np.median(probs))
    first = next(i for i, p in enumerate(probs) if p >= th)
    rt.reset()
    stopped = rt.generate(ids, DecodeOptions(policy=policy, stop_threshold=th,
                                             max_new_tokens=12, single_line=False))
    if policy != "dynamic":  # dynamic's exits may differ once the KV cache differs; the rule is the same
        assert stopped.token_ids == free.token_ids[:first]
        assert stopped.stop_reason == "stop"
    assert all(p < th for p in stopped.stop_probs)
    # A cut threshold above every later P(stop) lets the suggestion run past `first` (it is not the first token).
    if first > 0:
        rt.reset()
        later = max(probs[1:]) + 1e-3
        uncut = rt.generate(ids, DecodeOptions(policy=policy, stop_threshold=th, stop_inside_threshold=later,
                                               max_new_tokens=12, single_line=False))
        assert uncut.stop_reason != "stop" and len(uncut.token_ids) > first
    # With stop_inside off, only the first token can be stopped.
    rt.reset()
    first_only = rt.generate(ids, DecodeOptions(policy=policy, stop_threshold=th, stop_inside=False,
                                                max_new_tokens=12, single_line=False))
    if probs[0] >= th:
        assert first_only.token_ids == [] and first_only.stop_reason == "stop"
    else:  # never cut after the first token, whatever P(stop) says later
        assert first_only.stop_reason != "stop" and len(first_only.token_ids) > first
        if policy != "dynamic":
            assert first_only.token_ids == free.token_ids


@pytest.mark.parametrize("name", ["stop_calibration", "exit_calibration"])
def test_the_calibration_is_saved_with_the_exit_heads(tiny_lm_dir, name):
    from safetensors.numpy import load_file

    from models.architecture import load_torch_model

    model = load_torch_model(tiny_lm_dir, strict_exits=True)
    assert name in model.exit_state_dict()
    assert name in load_file(str(tiny_lm_dir / "exit_heads.safetensors"))


@pytest.mark.parametrize("name", ["stop_calibration", "exit_calibration"])
def test_a_model_directory_without_a_calibration_still_loads(tmp_path, tiny_lm_dir, name):
    from safetensors.numpy import load_file, save_file

    from models.architecture import load_torch_model
    from models.exits import EXIT_CALIBRATION_IDENTITY
    from models.export import export_model_dir
    from models.runtime import EarlyExitRuntime

    old = tmp_path / "old"
    shutil.copytree(tiny_lm_dir, old)
    heads = load_file(str(old / "exit_heads.safetensors"))
    heads.pop(name)
    save_file(heads, str(old / "exit_heads.safetensors"))
    export_model_dir(old)  # as it was exported then
    model = load_torch_model(old, strict_exits=True)
    identity = [1.0, 0.0, 0.0] if name == "stop_calibration" else list(EXIT_CALIBRATION_IDENTITY)
    assert all(row == identity for row in getattr(model, name).tolist())  # the controller's own estimate
    rt = EarlyExitRuntime(old, threads=1)
    assert rt.controller.trained and getattr(rt.controller, name) is None
    assert not rt.controller.exit_reads_head


# -- exit calibration ----------------------------------------------------------------------------
def test_top_and_margin():
    logp = log_softmax(np.array([[2.0, 0.5, 1.0], [0.0, 3.0, 3.0]]))
    best, margin = top_and_margin(logp)
    assert np.allclose(best, logp.max(-1))
    assert np.allclose(margin, [1.0, 0.0])


def test_exit_fit_recovers_a_known_logistic_relation():
    rng = np.random.default_rng(0)
    n = 60000
    exit_logit = rng.normal(0, 1.5, n)
    top = -rng.exponential(1.0, n)
    margin = rng.exponential(2.0, n)
    agrees = rng.random(n) < _sigmoid(0.4 * exit_logit + 0.8 * top + 1.1 * margin - 0.5)
    a, b, c, d = fit_head_calibration(exit_logit, top, margin, agrees)
    assert abs(a - 0.4) < 0.08 and abs(b - 0.8) < 0.1 and abs(c - 1.1) < 0.08 and abs(d + 0.5) < 0.1
    # An uninformative feature gets no weight.
    noise = rng.normal(0, 1, n)
    a, b, c, d = fit_head_calibration(noise, top, margin, agrees)
    assert abs(a) < 0.05


def test_controller_exit_probs_follow_the_calibration():
    D, L, V = 8, 3, 6
    rng = np.random.default_rng(2)
    norms = [np.ones(D, np.float32)] * L
    weights = _controller_weights(L, D)
    hidden = rng.normal(size=(5, D)).astype(np.float32)
    logp = log_softmax(rng.normal(0, 2, size=(5, V))).astype(np.float32)
    plain = Controller(norms, weights, 1e-5)
    assert plain.exit_calibration is None and not plain.exit_reads_head
    p_plain = plain.probs(1, hidden)[:, 1]
    assert np.allclose(plain.exit_probs(1, hidden), p_plain, atol=1e-6)  # no head needed
    # The identity calibration is the hidden-state estimate: it reads no head.
    identity = np.tile(np.array([1.0, 0.0, 0.0, 0.0], np.float32), (L, 1))
    assert not Controller(norms, {**weights, "exit_calibration": identity}, 1e-5).exit_reads_head
    cal = np.array([[1.0, 0.0, 0.0, 0.0], [0.5, 0.7, 1.3, -0.4], [1.0, 0.0, 0.0, 0.0]], np.float32)
    calibrated = Controller(norms, {**weights, "exit_calibration": cal}, 1e-5)
    assert calibrated.exit_reads_head
    top, margin = top_and_margin(logp)
    z = np.log(p_plain / (1 - p_plain))
    assert np.allclose(calibrated.exit_probs(1, hidden, (top, margin)), _sigmoid(0.5 * z + 0.7 * top + 1.3 * margin - 0.4),
                       atol=1e-5)
    with pytest.raises(ValueError, match="top log-probability and margin"):
        calibrated.exit_probs(1, hidden)
    # A calibration of the wrong shape (another model) is ignored, not misapplied.
    assert Controller(norms, {**weights, "exit_calibration": cal[:2]}, 1e-5).exit_calibration is None
    # The exit rule: P(exit) at the threshold and P(stop) below its own.
    p_exit = calibrated.exit_probs(1, hidden, (top, margin))
    th = float(np.median(p_exit))
    assert calibrated.leaves(1, hidden, (top, margin), th, 1.01).tolist() == (p_exit >= th).tolist()
    assert not calibrated.leaves(1, hidden, (top, margin), th, 0.0).any()  # a certain Stop keeps every token in
    # The harm rule: 1 - (1 - P(exit)) (1 - P(stop)) against the threshold, so a likely Stop lets a token leave too.
    p_stop = calibrated.stop_probs(1, hidden, top)
    score = 1 - (1 - p_exit) * (1 - p_stop)
    assert np.allclose(exit_score(p_exit, p_stop, "harm"), score) and (score >= p_exit).all()
    th = float(np.median(score))
    harm = calibrated.leaves(1, hidden, (top, margin), th, 1.01, "harm")
    assert harm.tolist() == (score >= th).tolist() and harm.sum() >= (p_exit >= th).sum()
    assert not calibrated.leaves(1, hidden, (top, margin), th, 0.0, "harm").any()
    assert plain.leaves(1, hidden, None, th, 1.01, "harm").tolist() == (
        exit_score(plain.probs(1, hidden)[:, 1], plain.probs(1, hidden)[:, 2], "harm") >= th).tolist()
    with pytest.raises(ValueError, match="exit rule"):
        exit_score(p_exit, p_stop, "bold")


def test_the_harm_rule_leaves_early_where_the_last_layer_is_likely_wrong():
    """A token whose exit disagrees with the last layer (low P(exit)) while the last layer is likely wrong (high
    P(stop)) leaves under harm, not under agreement; where the last layer is likely right, both keep it in."""
    p_exit = np.array([0.3, 0.3, 0.95])
    p_stop = np.array([0.9, 0.05, 0.05])
    assert (exit_score(p_exit, p_stop, "agreement") >= 0.9).tolist() == [False, False, True]
    assert (exit_score(p_exit, p_stop, "harm") >= 0.9).tolist() == [True, False, True]


def _calibrated(rt, d: float) -> None:
    """Give rt an exit calibration that reads the head and always (d > 0) or never (d < 0) exits."""
    L = rt.n_layers
    rt.controller.exit_calibration = np.tile(np.array([0.0, 0.0, 0.0, d], np.float32), (L, 1))


def test_dynamic_with_an_exit_calibration(tiny_lm_dir):
    from models.runtime import DecodeOptions, EarlyExitRuntime

    rt = EarlyExitRuntime(tiny_lm_dir, threads=1)
    L = rt.n_layers
    ids = rt.tokenizer.encode("def wrap(text, width=70):\n    return text")
    opts = dict(max_new_tokens=12, single_line=False)
    full = rt.generate(ids, DecodeOptions(policy="full", **opts))
    _calibrated(rt, -30.0)  # never exits: the full model's output, every token through every layer
    rt.reset()
    never = rt.generate(ids, DecodeOptions(policy="dynamic", exit_threshold=0.5, exit_rule="agreement", **opts))
    assert never.token_ids == full.token_ids and never.layers == full.layers
    # Under harm the same P(exit) lets a token leave where the last layer is surely wrong (P(stop) 1, Stop off).
    saved = rt.controller.stop_calibration
    rt.controller.stop_calibration = np.tile(np.array([0.0, 0.0, 30.0], np.float32), (L, 1))
    rt.reset()
    harm = rt.generate(ids, DecodeOptions(policy="dynamic", exit_threshold=0.5, exit_rule="harm", **opts))
    rt.reset()
    agreement = rt.generate(ids, DecodeOptions(policy="dynamic", exit_threshold=0.5, exit_rule="agreement", **opts))
    rt.controller.stop_calibration = saved
    assert all(n == 2 for n in harm.layers[1:]) and len(harm.layers) > 1
    assert agreement.layers == [L] * len(agreement.layers)
    _calibrated(rt, 30.0)  # always exits, after the first layer it may leave from
    rt.reset()
    always = rt.generate(ids, DecodeOptions(policy="dynamic", exit_threshold=0.5, min_exit_layer=1, **opts))
    assert len(always.token_ids) > 1
    assert always.layers[0] == L and all(n == 2 for n in always.layers[1:])
    # An early-exited token is chosen by the exit it left from.
    rt.reset()
    h, _ = rt.prefill(ids)
    first = int(log_softmax(rt.head(L - 1, h)[0]).argmax())
    assert always.token_ids[0] == first


def test_refitting_the_harm_calibration_alone_keeps_the_rest_and_the_runtime_reads_it(tmp_path, tiny_lm_dir):
    """`--harm-only` refits P(harm) of the open exits and nothing else: every other tensor and the rest of the record
    stay as they were, the record holds the rows the weights hold, and the runtime reads them. The rows were only
    checked for being non-zero (so rows left as they were passed wherever they were already fitted), and the record
    not at all."""
    import json

    from safetensors.numpy import load_file

    from models.runtime import EarlyExitRuntime
    from models.train_lm import train_controller
    from tests.conftest import write_calib_corpus

    d = tmp_path / "model"
    shutil.copytree(tiny_lm_dir, d)
    before = load_file(str(d / "exit_heads.safetensors"))
    record_before = json.loads((d / "tact.json").read_text())
    harm_before = before.pop("harm_calibration")
    stats = train_controller(d, write_calib_corpus(tmp_path / "corpus"), batches=2, batch_size=2, only="harm",
                             log=lambda m: None)
    after = load_file(str(d / "exit_heads.safetensors"))
    assert sorted(after) == sorted([*before, "harm_calibration"])  # no tensor added or dropped
    for k, v in before.items():
        assert np.array_equal(v, after[k]), k  # classifiers, calibrations and KV fill as they were
    opened = [i for i in range(3) if np.isfinite(after["exit_calibration"][i, 3])]
    assert opened == [0, 1, 2]  # the tiny model's identity exit calibration opens every early exit
    assert sorted(stats["harm_calibration"]) == [str(i) for i in opened]
    # the open exits' rows refitted, to what the stats report; the last layer's (no early exit) as it was
    assert [i for i in range(4) if not np.array_equal(after["harm_calibration"][i], harm_before[i])] == opened
    for i in opened:
        assert np.allclose(stats["harm_calibration"][str(i)], after["harm_calibration"][i], atol=1e-4)
    record = json.loads((d / "tact.json").read_text())
    controller = record.setdefault("controller", {})
    assert controller.pop("harm_calibration") == stats["harm_calibration"]
    assert controller.pop("harm_calibration_command")
    assert record == {**record_before, "controller": record_before.get("controller", {})}  # the rest as it was
    rt = EarlyExitRuntime(d, threads=1)  # the graphs were exported again: they still load
    # the refitted rows (all-zero rows, as the tiny model had, read as no harm calibration)
    assert rt.controller.harm_calibration is not None
    assert np.allclose(rt.controller.harm_calibration, after["harm_calibration"])
    _calibrated(rt, 0.0)  # an exit calibration, so that the exits read their head (P(harm) needs its features)
    hidden = rt.embed[rt.tokenizer.encode("def wrap(text):")]
    top, margin, _ = rt.exit_features(opened[0], hidden)
    p_harm = rt.controller.harm_probs(opened[0], hidden, (top, margin))
    a, b_, c, e = after["harm_calibration"][opened[0]]
    z = rt.controller._logits(opened[0], hidden)[..., 0]
    assert np.allclose(p_harm, _sigmoid(a * z + b_ * top + c * margin + e), atol=1e-5)
    th = float(np.median(1 - p_harm))
    leaves = rt.controller.leaves(opened[0], hidden, (top, margin), th, 1.01, "harm")
    assert 0 < leaves.sum() < leaves.size  # some leave and some stay: a rule that lets all or none leave fails
    assert leaves.tolist() == ((1 - p_harm) >= th).tolist()  # the fitted P(harm), not the product


@pytest.mark.parametrize("exits", ["open", "closed"])
def test_refitting_the_exit_calibration_alone_keeps_the_rest(tmp_path, tiny_lm_dir, monkeypatch, exits):
    """`--exit-only` refits the exit calibration, and P(harm) and the KV fill of the exits it opens; the record's
    P(harm) is what the weights hold, or none. The random tiny model's exits agree too rarely to open, so the
    P(harm) and KV fill checks compared nothing with nothing; they now run with the exits let open, and closed over
    a P(harm) recorded before, which must go."""
    import json

    from safetensors.numpy import load_file

    import models.exits
    from models.train_lm import train_controller
    from tests.conftest import write_calib_corpus

    if exits == "open":
        monkeypatch.setattr(models.exits, "MIN_EXIT_AGREEMENT", 0.0)
    d = tmp_path / "model"
    shutil.copytree(tiny_lm_dir, d)
    corpus = write_calib_corpus(tmp_path / "corpus")
    before = load_file(str(d / "exit_heads.safetensors"))
    stale = {"harm_calibration": {"1": [9.0, 9.0, 9.0, 9.0]}, "harm_calibration_command": "an earlier refit"}
    (d / "tact.json").write_text(json.dumps({**json.loads((d / "tact.json").read_text()), "controller": stale}))
    stats = train_controller(d, corpus, batches=2, batch_size=2, only="exit", log=lambda m: None)
    after = load_file(str(d / "exit_heads.safetensors"))
    assert len(stats["exit_calibration"]) == 4
    for k, v in before.items():
        if k not in ("exit_calibration", "harm_calibration"):  # the harm calibration follows the exits it opens
            assert np.array_equal(v, after[k]), k  # classifiers and the stop calibration as they were
    assert not np.allclose(after["exit_calibration"][:-1], before["exit_calibration"][:-1])
    assert np.allclose(after["exit_calibration"][-1], [1, 0, 0, 0])  # the last layer never exits early
    record = json.loads((d / "tact.json").read_text())
    assert record["controller"]["exit_calibration"] == stats["exit_calibration"]
    assert record["controller"]["exit_stride"] == stats["exit_stride"] == EXIT_STRIDE
    assert "exit_calibration_command" in record["controller"]
    # the harm calibration refitted with the exits it opens is recorded as the weights hold it, in place of the one
    # recorded before; with no exit open there is none to record
    opened_now = [i for i in range(3) if np.isfinite(after["exit_calibration"][i, 3])]
    assert opened_now == (list(range(0, 3, EXIT_STRIDE)) if exits == "open" else [])
    assert sorted(stats.get("harm_calibration", {})) == [str(i) for i in opened_now]
    assert [i for i in range(4) if not np.array_equal(after["harm_calibration"][i], before["harm_calibration"][i])
            ] == opened_now  # refitted where opened, as it was elsewhere
    assert record["controller"].get("harm_calibration") == stats.get("harm_calibration")
    for layer, cal in stats.get("harm_calibration", {}).items():
        assert np.allclose(cal, after["harm_calibration"][int(layer)], atol=1e-4)
    assert ("harm_calibration_command" in record["controller"]) == bool(opened_now)
    # the learned KV fill, fitted for the exits the new calibration opens (exit 2 of 4 skips only layer 3: none)
    opened = [i for i in range(2) if np.isfinite(after["exit_calibration"][i, 3])]
    assert opened == (list(range(0, 2, EXIT_STRIDE)) if exits == "open" else [])
    assert sorted(k for k in after if k.startswith("kv_fill_maps.")) == sorted(
        f"kv_fill_maps.{i}.{p}" for i in opened for p in ("bias", "weight"))
    assert sorted(record["controller"]["kv_fill"]["explained"]) == [str(i) for i in opened]


def test_open_exits_keep_every_stride_th_of_the_exits_that_agree_often_enough():
    from models.exits import open_exits

    agreement = [0.2, 0.45, 0.6, 0.7, 0.75, 0.8, 0.9, 1.0]
    assert [i for i, o in enumerate(open_exits(agreement, 1)) if o] == [2, 3, 4, 5, 6]
    assert [i for i, o in enumerate(open_exits(agreement, 2)) if o] == [2, 4, 6]
    assert [i for i, o in enumerate(open_exits(agreement, 3)) if o] == [2, 5]
    assert [i for i, o in enumerate(open_exits([0.6, 0.4, 0.7, 1.0], 1)) if o] == [0, 2]  # a dip stays closed
    assert not any(open_exits([0.1, 0.3, 1.0], 1))  # the last layer is not an early exit


def test_a_closed_exit_lets_no_token_leave_and_runs_no_head(tiny_lm_dir):
    from models.exits import NEVER_EXITS
    from models.runtime import DecodeOptions, EarlyExitRuntime

    rt = EarlyExitRuntime(tiny_lm_dir, threads=1)
    L = rt.n_layers
    cal = np.tile(np.array([0.0, 0.0, 0.0, 30.0], np.float32), (L, 1))  # every open exit leaves
    cal[1] = NEVER_EXITS
    rt.controller.exit_calibration = cal
    assert not rt.controller.may_exit(1) and rt.controller.may_exit(2)
    hidden = np.ones((3, rt.hidden_size), np.float32)
    assert rt.controller.exit_probs(1, hidden, (np.zeros(3), np.zeros(3))).tolist() == [0.0, 0.0, 0.0]
    heads = []
    head, features = rt.head, rt.exit_features
    rt.head = lambda layer, h, *weights: heads.append(layer) or head(layer, h, *weights)
    rt.exit_features = lambda layer, h, *weights: heads.append(layer) or features(layer, h, *weights)
    ids = rt.tokenizer.encode("def wrap(text, width=70):\n    return text")
    res = rt.generate(ids, DecodeOptions(policy="dynamic", exit_threshold=0.5, min_exit_layer=1, max_new_tokens=8,
                                         single_line=False))
    assert len(res.token_ids) > 1 and all(n == 3 for n in res.layers[1:])  # past the closed exit, out at the next
    assert 1 not in heads  # the closed exit's head never ran


def test_exit_features_are_the_heads_top_log_probability_and_margin(tiny_lm_dir):
    from models.runtime import EarlyExitRuntime

    rt = EarlyExitRuntime(tiny_lm_dir, threads=1)
    h = np.random.default_rng(3).normal(0, 1, size=(16, rt.hidden_size)).astype(np.float32)
    top, margin, logp = rt.exit_features(2, h)
    assert np.allclose(logp, log_softmax(rt.head(2, h)))
    assert np.allclose(top, logp.max(-1)) and np.all(margin >= 0)
    assert np.allclose(margin, top - np.sort(logp, -1)[:, -2])


def test_a_harm_calibration_of_a_rare_label_fits_from_zero():
    """The harm label is rare (a few percent) and the hidden-state logit spans a wide range: from the exit
    calibration's start (logit weight 1) Newton steps ran off to weights in the hundreds; from zero they do not."""
    from models.train_lm import fit_head_calibration

    rng = np.random.default_rng(5)
    n = 60000
    z = rng.normal(0, 8, n)
    top = -np.abs(rng.normal(0, 1, n))
    margin = np.abs(rng.normal(0, 2, n))
    harm = (rng.random(n) < _sigmoid(-2.0 + 0.5 * top - 1.2 * margin)).astype(float)
    assert 0.005 < harm.mean() < 0.1
    a, b, c, d = fit_head_calibration(z, top, margin, harm, start=(0.0, 0.0, 0.0, 0.0))
    assert abs(a) < 0.1 and abs(b - 0.5) < 0.3 and abs(c + 1.2) < 0.3 and abs(d + 2.0) < 0.4


def test_an_exit_refit_records_the_harm_calibration_it_refits(tmp_path, tiny_lm_dir, monkeypatch):
    """The exit refit refits P(harm) for the exits it opens, but the record kept the old figures."""
    import json

    from safetensors.numpy import load_file

    import models.exits
    from models.train_lm import train_controller
    from tests.conftest import write_calib_corpus

    monkeypatch.setattr(models.exits, "MIN_EXIT_AGREEMENT", 0.0)  # the random tiny model's exits open
    d = tmp_path / "model"
    shutil.copytree(tiny_lm_dir, d)
    corpus = write_calib_corpus(tmp_path / "corpus")
    train_controller(d, corpus, batches=2, batch_size=2, log=lambda m: None)  # a full fit first
    stats = train_controller(d, corpus, batches=2, batch_size=2, only="exit", seed=7, log=lambda m: None)
    after = load_file(str(d / "exit_heads.safetensors"))
    record = json.loads((d / "tact.json").read_text())["controller"]
    assert stats["harm_calibration"] and record["harm_calibration"] == stats["harm_calibration"]
    for layer, cal in stats["harm_calibration"].items():
        assert np.allclose(cal, after["harm_calibration"][int(layer)], atol=1e-4)
    assert "harm_calibration_command" in record and "command" in record


def test_the_controller_fit_runs_the_model_without_gradients(tiny_lm_dir, tmp_path, monkeypatch):
    """The calibration pass keeps every layer's states of every batch: with gradients on, each kept the whole
    forward graph of its batch (only the classifiers train, inside enable_grad)."""
    import torch

    from models.architecture import EarlyExitLM
    from models.train_lm import train_controller
    from tests.conftest import write_calib_corpus

    d = tmp_path / "model"
    shutil.copytree(tiny_lm_dir, d)
    seen = []
    forward = EarlyExitLM.forward

    def recording(self, *args, **kwargs):
        seen.append(torch.is_grad_enabled())
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(EarlyExitLM, "forward", recording)
    train_controller(d, write_calib_corpus(tmp_path / "corpus"), batches=2, batch_size=2, log=lambda m: None)
    assert seen and not any(seen)
