"""The CDHF decision rule: which thresholds, and what they do. numpy only (training and serving).

A request is *skipped* by stage 1 when its stage-1 score (predicted P(accept) from the context
alone, which is also the probability that skipping is a mistake: the stage's uncertainty) is
below ``skip``; otherwise the code model runs and stage 2 *hides* the suggestion when its
stage-2 score is below ``hide``. Thresholds minimise

    λ · (share of requests needing generation) + (1 − λ) · (1 − share hidden)

(skipped requests count as hidden) subject to the precision of hiding (hidden suggestions that
were really rejected) ≥ the floor, measured on at least ``MIN_HIDDEN`` hidden samples (a precision
over one or two is noise). Nothing hidden is always feasible.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

NEVER = float("-inf")  # a threshold no score is below
N_CANDIDATES = 60  # per stage: quantiles of the scores
MIN_HIDDEN = 10  # hidden samples a precision must be measured on before it can admit thresholds


@dataclass(frozen=True)
class Thresholds:
    skip: float  # stage 1: skip generation when P(accept) < skip
    hide: float  # stage 2: hide when P(accept) < hide
    objective: float = float("nan")

    def as_dict(self) -> dict:
        return {k: (None if v == NEVER else round(v, 6)) for k, v in asdict(self).items()}


def _candidates(scores: np.ndarray, max_quantile: float) -> np.ndarray:
    if len(scores) == 0:
        return np.array([NEVER])
    qs = np.quantile(scores, np.linspace(0.0, max_quantile, N_CANDIDATES))
    # a threshold just above each quantile, so "score < t" includes the quantile itself
    return np.concatenate([[NEVER], np.unique(np.nextafter(qs, np.inf))])


def choose_thresholds(s1: np.ndarray | None, s2: np.ndarray, y: np.ndarray, lam: float, precision_floor: float,
                      max_quantile: float = 0.9, min_hidden: int = MIN_HIDDEN, skip: float | None = None) -> Thresholds:
    """The (skip, hide) pair the CDHF rule picks on labelled scores (y = 1 accepted); ``s1`` None: stage 2 alone
    (stage 1 never skips; constant scores would still offer "skip everything", which wins at a low floor). ``skip``
    given: stage 1's threshold is that, and the hide threshold is chosen under the floor with it (one chosen beside
    another skip threshold broke the floor). Where no hide threshold keeps the floor beside that skip (measured on at
    least ``min_hidden`` hidden samples), the objective is infinite and nothing more is hidden."""
    s2, y = np.asarray(s2, float), np.asarray(y, int)
    n = len(y)
    if n == 0:
        return Thresholds(NEVER if skip is None else skip, NEVER, 1.0)
    if s1 is None:
        s1, c1 = np.zeros(n), np.array([NEVER])
    else:
        s1 = np.asarray(s1, float)
        c1 = _candidates(s1, max_quantile) if skip is None else np.array([skip])
    c2 = _candidates(s2, max_quantile)
    hide2 = s2[None, :] < c2[:, None]  # (K2, n)
    rejected = y == 0
    objective = np.full((len(c1), len(c2)), np.inf)
    for i, t1 in enumerate(c1):  # one row at a time: memory stays O(K2 * n)
        skip = s1 < t1
        hidden = skip[None, :] | hide2
        n_hidden = hidden.sum(-1)
        feasible = (n_hidden == 0) | ((n_hidden >= min_hidden)
                                      & ((hidden & rejected).sum(-1) >= precision_floor * n_hidden))
        row = lam * (1.0 - skip.mean()) + (1.0 - lam) * (1.0 - n_hidden / n)
        objective[i] = np.where(feasible, row, np.inf)
    i, j = np.unravel_index(int(np.argmin(objective)), objective.shape)  # ties: the lowest thresholds
    return Thresholds(float(c1[i]), float(c2[j]), float(objective[i, j]))


def decide(s1: np.ndarray, s2: np.ndarray, t: Thresholds) -> tuple[np.ndarray, np.ndarray]:
    """(skipped by stage 1, hidden by either stage) for each request."""
    skip = np.asarray(s1, float) < t.skip
    return skip, skip | (np.asarray(s2, float) < t.hide)


def summarize(skip: np.ndarray, hidden: np.ndarray, y: np.ndarray) -> dict:
    """The figures the CDHF evaluation reports, for decisions on labelled requests (y = 1 accepted)."""
    y = np.asarray(y, int)
    acc, rej = y == 1, y == 0
    n = len(y)

    def share(mask, of):
        return round(float((mask & of).sum() / of.sum()), 4) if of.sum() else None

    return {
        "requests": int(n), "accepted": int(acc.sum()),
        "share_calls_skipped": round(float(skip.mean()), 4) if n else None,
        "share_accepted_lost_by_skip": share(skip, acc),
        "share_hidden": round(float(hidden.mean()), 4) if n else None,
        "share_rejected_hidden": share(hidden, rej),
        "share_accepted_lost": share(hidden, acc),
        "hiding_precision": round(float((hidden & rej).sum() / hidden.sum()), 4) if hidden.sum() else None,
        "acceptance_rate_before": round(float(acc.mean()), 4) if n else None,
        "acceptance_rate_after": round(float((acc & ~hidden).sum() / max(1, (~hidden).sum())), 4) if n else None,
    }


def outcomes(s1: np.ndarray, s2: np.ndarray, y: np.ndarray, t: Thresholds) -> dict:
    """What thresholds ``t`` do to labelled requests."""
    return summarize(*decide(s1, s2, t), y)


def debounce_ms(score: float, skip_threshold: float, base_rate: float, max_ms: float) -> int:
    """The wait before calling the model: the full ``max_ms`` at the skip threshold, nothing at or
    above the base acceptance rate, linear in between (a likely rejection waits to see whether the
    user keeps typing). A skip threshold at or above the base rate leaves no between: a score at or below it (an
    explored request, one the threshold would skip) waits the full time, any other none."""
    if max_ms <= 0:
        return 0
    low = skip_threshold if skip_threshold != NEVER else 0.0
    if base_rate <= low:
        return int(round(max_ms)) if score <= low else 0
    frac = (base_rate - score) / (base_rate - low)
    return int(round(max_ms * min(1.0, max(0.0, frac))))
