"""What the acceptance scores allow at best: the most a threshold could skip or hide while losing at most 5% of the
accepted suggestions, the figures the issue's targets are about, apart from the thresholds the policy chose."""

from __future__ import annotations

import numpy as np

from models.acceptance.evaluate import format_report, lowest_below, score_limits


def test_the_lowest_scores_go_below_the_threshold_until_an_accepted_one_would():
    y = np.array([0, 0, 1, 0, 1, 1] + [1] * 14)  # 17 accepted: one lost is 5.9%, over the cap
    s = np.linspace(0.0, 1.0, len(y))
    assert lowest_below(s, y) == (2 / 20, 2 / 3)  # the two rejects below the first accepted one
    assert lowest_below(s, y, lost_cap=0.06) == (4 / 20, 3 / 3)  # one accepted may go: up to the next one


def test_tied_scores_fall_on_the_same_side():
    y = np.array([0, 0, 1, 0] + [1] * 10)  # 11 accepted: one lost is 9%
    s = np.array([0.1, 0.2, 0.2, 0.3] + [0.9] * 10)  # the reject at 0.2 ties with an accepted one
    assert lowest_below(s, y) == (1 / 14, 1 / 3)
    assert lowest_below(np.zeros(5), np.array([0, 0, 1, 0, 0])) == (0.0, 0.0)  # nothing to split: nothing below


def test_the_report_says_the_limits():
    y = np.array([0] * 10 + [1] * 10)
    limits = score_limits(np.arange(20.0), np.arange(20.0)[::-1], y)
    assert limits["stage1_most_skipped"] == 0.5 and limits["stage2_most_rejected_hidden"] == 0.0
    report = {"samples": 20, "accepted": 10, "programmers": 3, "auc": {"stage1": {}, "stage2": {}},
              "kinds": {"stage1": "trees", "stage2": "trees"}, "auc_within_programmer": {"stage1": 1.0, "stage2": 0.0},
              "lambda": 0.5, "precision_floor": 0.9, "at_thresholds": {}, "limits": limits, "targets": {}}
    assert "stage 1 skips at most 0.5 of model calls and stage 2 hides at most 0.0 of rejected" in format_report(report)
