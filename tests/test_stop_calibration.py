"""Stop's P(stop): a per-layer logistic calibration on the exit's top-token log-probability, fitted on the
calibration split, used by every policy and saved with the exit heads."""

from __future__ import annotations

import numpy as np
import pytest

from models.exits import STOP, Controller

torch = pytest.importorskip("torch")

from models.train_lm import fit_stop_calibration  # noqa: E402


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def test_fit_recovers_a_known_logistic_relation():
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
    weights = {}
    for i in range(L):
        weights.update({f"controller.{i}.0.weight": rng.normal(size=(4, D)).astype(np.float32),
                        f"controller.{i}.0.bias": np.zeros(4, np.float32),
                        f"controller.{i}.2.weight": rng.normal(size=(2, 4)).astype(np.float32),
                        f"controller.{i}.2.bias": np.zeros(2, np.float32)})
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


def test_the_calibration_is_saved_with_the_exit_heads(tmp_path, tiny_lm_dir):
    from safetensors.numpy import load_file

    from models.architecture import load_torch_model

    model = load_torch_model(tiny_lm_dir, strict_exits=True)
    assert "stop_calibration" in model.exit_state_dict()
    assert "stop_calibration" in load_file(str(tiny_lm_dir / "exit_heads.safetensors"))


def test_a_model_directory_without_a_calibration_still_loads(tmp_path, tiny_lm_dir):
    import shutil

    from safetensors.numpy import load_file, save_file

    from models.architecture import load_torch_model
    from models.runtime import EarlyExitRuntime

    old = tmp_path / "old"
    shutil.copytree(tiny_lm_dir, old)
    heads = load_file(str(old / "exit_heads.safetensors"))
    heads.pop("stop_calibration")
    save_file(heads, str(old / "exit_heads.safetensors"))
    model = load_torch_model(old, strict_exits=True)
    assert model.stop_calibration[:, 0].eq(1).all()  # identity: the controller's own estimate
    rt = EarlyExitRuntime(old, threads=1)
    assert rt.controller.trained and rt.controller.stop_calibration is None
