"""Fit the two stages with scikit-learn and export them to numpy arrays (training only).

`tact train acceptance` reads any mix of CUPS-format files and telemetry databases, computes the
features, fits stage 1 (context) and stage 2 (context + suggestion), and writes the model with
its leave-programmer-out scores (the calibration the serving gate picks thresholds from).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import sys
import warnings
from pathlib import Path

import numpy as np

from models.acceptance.dataset import AcceptanceData
from models.acceptance.features import CONTEXT_FEATURES, SUGGESTION_FEATURES
from models.acceptance.model import AcceptanceModel, Calibration, StageModel

KINDS = ("logistic", "trees")
LOGISTIC_C = 0.05  # strong L2: a few hundred samples, ~70 features
TREES = {"n_estimators": 150, "max_depth": 2, "learning_rate": 0.05, "subsample": 0.8, "min_samples_leaf": 10}


def _fill_values(X: np.ndarray) -> np.ndarray:
    """Per-column median, ignoring NaN (0 for a column that is all NaN)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        med = np.nanmedian(X, axis=0) if len(X) else np.zeros(X.shape[1])
    return np.where(np.isfinite(med), med, 0.0)


def fit_sklearn(X: np.ndarray, y: np.ndarray, kind: str, seed: int = 0, trees: dict | None = None):
    """(fill values, fitted estimator on filled (and for logistic, standardised) inputs, mean, scale);
    ``trees``: the boosting parameters, when not ``TREES``."""
    fill = _fill_values(X)
    Xf = np.where(np.isnan(X), fill, X)
    if kind == "logistic":
        from sklearn.linear_model import LogisticRegression

        mean = Xf.mean(0)
        scale = Xf.std(0)
        scale = np.where(scale > 1e-12, scale, 1.0)
        est = LogisticRegression(C=LOGISTIC_C, max_iter=5000)
        est.fit((Xf - mean) / scale, y)
        return fill, est, mean, scale
    if kind == "trees":
        from sklearn.ensemble import GradientBoostingClassifier

        est = GradientBoostingClassifier(random_state=seed, **(trees or TREES))
        est.fit(Xf, y)
        return fill, est, None, None
    raise ValueError(f"unknown model kind {kind!r}; one of {KINDS}")


def export_stage(kind: str, names, fill, est, mean=None, scale=None) -> StageModel:
    """A fitted sklearn estimator as a numpy StageModel."""
    if kind == "logistic":
        return StageModel("logistic", list(names), fill, {"mean": mean, "scale": scale, "coef": est.coef_[0].astype(float),
                                                          "intercept": float(est.intercept_[0])})
    trees = [t[0].tree_ for t in est.estimators_]
    offsets = np.cumsum([0] + [t.node_count for t in trees[:-1]])
    feature, threshold, left, right, value = [], [], [], [], []
    for off, t in zip(offsets, trees):
        feature.append(t.feature)
        threshold.append(t.threshold)
        left.append(np.where(t.children_left >= 0, t.children_left + off, -1))
        right.append(np.where(t.children_right >= 0, t.children_right + off, -1))
        value.append(t.value[:, 0, 0])
    prior = float(est.init_.class_prior_[1])
    params = {"feature": np.concatenate(feature).astype(np.int64), "threshold": np.concatenate(threshold),
              "left": np.concatenate(left).astype(np.int64), "right": np.concatenate(right).astype(np.int64),
              "value": np.concatenate(value), "roots": offsets.astype(np.int64),
              "init": math.log(prior / (1.0 - prior)), "learning_rate": float(est.learning_rate),
              "max_depth": int(max(t.max_depth for t in trees))}
    return StageModel("trees", list(names), fill, params)


def fit_stage(X: np.ndarray, y: np.ndarray, kind: str, names, seed: int = 0) -> StageModel:
    if len(np.unique(y)) < 2:
        raise ValueError("training data needs both accepted and rejected suggestions")
    fill, est, mean, scale = fit_sklearn(X, y, kind, seed)
    return export_stage(kind, names, fill, est, mean, scale)


def lopo_splits(groups: np.ndarray):
    """Leave-programmer-out: (train indices, test indices, programmer) for each programmer."""
    for g in sorted(set(groups.tolist()), key=str):
        test = np.flatnonzero(groups == g)
        train = np.flatnonzero(groups != g)
        yield train, test, g


def oof_scores(X: np.ndarray, y: np.ndarray, groups: np.ndarray, kind: str, names, seed: int = 0) -> np.ndarray:
    """Leave-programmer-out scores: each row predicted by a model that never saw its programmer.
    A fold whose training side has one class only predicts that side's rate."""
    out = np.full(len(y), np.nan)
    for train, test, _ in lopo_splits(groups):
        if len(np.unique(y[train])) < 2:
            out[test] = y[train].mean() if len(train) else 0.5
            continue
        out[test] = fit_stage(X[train], y[train], kind, names, seed).predict(X[test])
    return out


def auc(y: np.ndarray, s: np.ndarray) -> float | None:
    """ROC AUC (ties counted half); None with one class only."""
    y, s = np.asarray(y, int), np.asarray(s, float)
    pos, neg = s[y == 1], s[y == 0]
    if len(pos) == 0 or len(neg) == 0:
        return None
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    sorted_s = s[order]
    i = 0
    while i < len(s):  # average ranks over ties
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1
        i = j + 1
    return float((ranks[y == 1].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def choose_kind(X, y, groups, names, kind: str, seed: int = 0) -> tuple[str, np.ndarray, dict]:
    """The kind to ship ('auto': the better leave-programmer-out AUC) with its out-of-fold scores."""
    kinds = KINDS if kind == "auto" else (kind,)
    scores = {k: oof_scores(X, y, groups, k, names, seed) for k in kinds}
    aucs = {k: auc(y, s) for k, s in scores.items()}
    best = max(kinds, key=lambda k: -1.0 if aucs[k] is None else aucs[k])
    return best, scores[best], aucs


def train_acceptance(data: AcceptanceData, kind1: str = "auto", kind2: str = "auto", seed: int = 0,
                     scoring_model: str | None = None, log=None) -> AcceptanceModel:
    """Fit both stages on all of ``data``; the calibration is their leave-programmer-out scores."""
    log = log or (lambda m: print(m, file=sys.stderr, flush=True))
    if len(set(data.groups.tolist())) < 2:
        raise ValueError("leave-programmer-out needs samples from at least two programmers")
    k1, s1, auc1 = choose_kind(data.X1, data.y, data.groups, CONTEXT_FEATURES, kind1, seed)
    log(f"stage 1: leave-programmer-out AUC {_fmt(auc1)} -> {k1}")
    k2, s2, auc2 = choose_kind(data.X2, data.y, data.groups, SUGGESTION_FEATURES, kind2, seed)
    log(f"stage 2: leave-programmer-out AUC {_fmt(auc2)} -> {k2}")
    stage1 = fit_stage(data.X1, data.y, k1, CONTEXT_FEATURES, seed)
    stage2 = fit_stage(data.X2, data.y, k2, SUGGESTION_FEATURES, seed)
    info = {
        "trained_at": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "samples": int(len(data)), "accepted": int(data.y.sum()), "programmers": int(len(set(data.groups.tolist()))),
        "sources": [{k: v for k, v in s.items() if k != "path"} | {"file": Path(s["path"]).name} for s in data.sources],
        "scoring_model": scoring_model, "kinds": {"stage1": k1, "stage2": k2},
        "lopo_auc": {"stage1": auc1, "stage2": auc2}, "seed": seed,
        "context_fingerprints": sorted(set(data.context_fingerprints())),  # models.acceptance.evaluate.trained_on
    }
    body = json.dumps([stage1.to_dict(), stage2.to_dict()], sort_keys=True).encode()
    version = f"cdhf-{info['trained_at'][:10]}-{k1[0]}{k2[0]}-{hashlib.sha1(body).hexdigest()[:8]}"
    return AcceptanceModel(version, stage1, stage2, Calibration(s1, s2, data.y.copy()), info)


def _fmt(aucs: dict) -> str:
    return ", ".join(f"{k} {v:.3f}" if v is not None else f"{k} n/a" for k, v in aucs.items())
