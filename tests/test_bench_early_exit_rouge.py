"""Review of what `tact bench early-exit` reports: the relative ROUGE-L loss keeps its sign (a gain is reported as
one, and the point estimate lies inside its own interval), and the exit sweep's pick reads the unrounded loss."""

from __future__ import annotations

import numpy as np

from models.bench_early_exit import (EXIT_PICK_MARGIN, ExitSetting, _policy_summary, _targets, exit_sweep,
                                     pick_exit_setting, rouge_loss, rouge_loss_interval)
from models.runtime import DecodeResult

STOP = {"threshold": 0.9, "relative_change": 0.2, "removed_share": 0.05, "relative_change_ci": None,
        "removed_share_ci": None, "meets_target": True, "thresholds_meeting_target": [0.9]}


def _runs(n: int, right: int, layers: int = 4) -> list[DecodeResult]:
    """n one-token suggestions of which the first ``right`` are the target 'x' (ROUGE-L 1) and the rest 'y' (0)."""
    return [DecodeResult(token_ids=[7], text="x" if i < right else "y", layers=[layers], prefill_ms=1.0)
            for i in range(n)]


def test_a_rouge_gain_is_a_negative_loss():
    assert rouge_loss(0.5, 0.6) < 0  # dynamic better than full: a gain of 20%, not a loss of 0
    assert abs(rouge_loss(0.5, 0.6) + 0.2) < 1e-12
    assert abs(rouge_loss(0.5, 0.4) - 0.2) < 1e-12
    assert rouge_loss(0.0, 0.0) == 0.0


def test_the_reported_loss_lies_inside_its_interval():
    """Every sample dynamic gets right that full gets wrong: the interval is all gain, and the point estimate with it."""
    n = 400
    full, dynamic = _runs(n, 100), _runs(n, 120, layers=2)
    targets = ["x"] * n
    policies = {name: _policy_summary(name, runs, full, targets, 4)
                for name, runs in (("full", full), ("dynamic", dynamic), ("speculative", full))}
    per_sample = {p: np.array([1.0 if r.text == "x" else 0.0 for r in runs]) for p, runs in
                  (("full", full), ("dynamic", dynamic))}
    ci = rouge_loss_interval(per_sample["full"], per_sample["dynamic"])
    policies["dynamic"]["rouge_l_relative_loss_ci"] = ci
    t = _targets(policies, STOP)["dynamic"]
    assert ci[1] < 0  # the whole interval is a gain
    assert ci[0] <= t["rouge_l_relative_loss"] <= ci[1]
    assert t["pass"] is True  # a gain passes the loss target as before
    setting = ExitSetting(0.9)
    row, = exit_sweep([setting], {setting: dynamic}, full, targets, L=4)
    assert row["rouge_l_relative_loss"] == -0.2 and row["meets_target"] is True


def test_the_sweep_pick_reads_the_loss_unrounded():
    """1 of 199 right answers lost is a 0.5025% loss, over the 0.5% the pick allows; rounded it reads 0.0050."""
    n = 1000
    full, dynamic = _runs(n, 199), _runs(n, 198, layers=2)
    setting = ExitSetting(0.9)
    row, = exit_sweep([setting], {setting: dynamic}, full, ["x"] * n, L=4)
    assert row["rouge_l_relative_loss"] == 0.005  # as printed
    assert pick_exit_setting([row], EXIT_PICK_MARGIN) is None
