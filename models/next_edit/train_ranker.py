"""`tact train next-edit-ranker`: fit the edit ranker on next-edit examples (training only: scikit-learn).

Every training example gives its candidates (`models.next_edit.candidates`), labelled 1 when applying
the candidate leaves exactly the text the target leaves. Most candidates are wrong, so a share of the
negatives is kept (seeded) and the trees' prior is corrected for it afterwards, so scores stay
probabilities. The threshold is chosen out of fold (folds by package, as the splits are) on the real
changes: the lowest one at which the ranker shows no more wrong edits than the baseline shows on the
same examples (a wrong next edit costs the programmer a look and a dismissal), so it gets as many
right as it can without costing more attention than the heuristic it replaces.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import random
import sys
import time
from itertools import islice
from pathlib import Path

import numpy as np

from models.corpus import package_bucket
from models.next_edit.baseline import BaselinePredictor
from models.next_edit.candidates import FEATURE_NAMES, featurized
from models.next_edit.examples import Example, apply_edit
from models.next_edit.ranker import EditRanker, ranker_version
from models.next_edit.real_changes import bottom_up_examples, normalised_package

NEGATIVE_SHARE = 0.1  # of the wrong candidates kept for fitting
FOLDS = 4
TREES = {"n_estimators": 400, "max_depth": 5, "learning_rate": 0.05, "subsample": 0.8, "min_samples_leaf": 20}
THRESHOLDS = tuple(round(t, 2) for t in np.arange(0.0, 0.96, 0.01))


def sample_jsonl(path: Path, n: int | None, seed: int = 0) -> list[Example]:
    """``n`` examples drawn at random (seeded) from a JSON-lines file, all of them when n is None;
    only the chosen lines are parsed (the synthetic file is large). The file is read once: a pass notes where each
    line starts (keeping the lines while there may be no more than ``n``), then the lines drawn are read from there;
    the draw is over line numbers, blank lines included, as before. Rows hold no raw line break (JSON escapes
    them), so the file is split on LF alone."""
    def parsed(lines) -> list[Example]:
        return [Example.from_json(json.loads(line)) for line in lines if line.strip()]

    with open(path, "rb") as f:
        if n is None:
            return parsed(f)
        starts: list[int] = []
        kept: list[bytes] | None = []  # every line so far, while there are no more than n
        at = 0
        for line in f:
            starts.append(at)
            at += len(line)
            if kept is not None:
                kept.append(line)
                if len(kept) > n:
                    kept = None
        if kept is not None:
            return parsed(kept)
        out = []
        for i in sorted(random.Random(seed).sample(range(len(starts)), n)):
            f.seek(starts[i])
            out.extend(parsed([f.readline()]))
        return out


def fold_of(package: str) -> int:
    """A package's fold, by the name its split is decided by: a release package and the corpus's copy of it
    (``attrs``, ``site:attr``) share a fold, so no out-of-fold score comes from trees fitted on its own code."""
    return package_bucket(normalised_package(package), FOLDS)


def candidate_rows(examples: list[Example]):
    """(features (n, d), labels (n,), example index (n,)): every candidate of every example the ranker may answer
    with. A ``misplaced`` one (an argument put where the history's does not go) is left out: serving scores it with
    the others (its features count in theirs, so they are computed with it) but never answers it, so it is neither a
    right edit to learn nor a rival to rank below, and the out-of-fold threshold is chosen among what is served."""
    X, y, index = [], [], []
    for k, ex in enumerate(examples):
        if not ex.history:
            continue
        target = apply_edit(ex.current, ex.target)
        for c in featurized(ex.history, ex.current, ex.cursor_line, ex.original):
            if c.misplaced:
                continue
            X.append(c.features)
            y.append(int(apply_edit(ex.current, c.edit) == target))
            index.append(k)
    return (np.array(X, dtype=np.float64).reshape(-1, len(FEATURE_NAMES)), np.array(y, dtype=np.int64),
            np.array(index, dtype=np.int64))


def _fit(X: np.ndarray, y: np.ndarray, seed: int):
    """Trees fitted on all positives and a seeded share of the negatives, their prior corrected back."""
    from models.acceptance.train import export_stage, fit_sklearn

    rng = np.random.default_rng(seed)
    keep = (y == 1) | (rng.random(len(y)) < NEGATIVE_SHARE)
    fill, est, _, _ = fit_sklearn(X[keep], y[keep], "trees", seed, TREES)
    stage = export_stage("trees", FEATURE_NAMES, fill, est)
    stage.params["init"] += math.log(NEGATIVE_SHARE)  # odds were inflated by 1 / NEGATIVE_SHARE
    return stage


def best_per_example(scores: np.ndarray, y: np.ndarray, index: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(best score, whether that candidate is right) per example; -1 / False where it had none."""
    best = np.full(n, -1.0)
    right = np.zeros(n, dtype=bool)
    for s, label, k in zip(scores, y, index):
        if s > best[k]:
            best[k], right[k] = s, bool(label)
    return best, right


def curve(best: np.ndarray, right: np.ndarray) -> dict[str, dict]:
    n = max(1, len(best))
    out = {}
    for t in THRESHOLDS:
        shown = best >= t
        exact = float((shown & right).sum()) / n
        out[f"{t:.2f}"] = {"predicted": float(shown.sum()) / n, "exact": exact,
                          "wrong": float((shown & ~right).sum()) / n}
    return out


def baseline_figures(examples: list[Example]) -> dict:
    """The baseline's exact and wrong shares on ``examples`` (what the ranker's threshold is held to)."""
    from models.next_edit.evaluate import score

    baseline = BaselinePredictor()
    scores = [score(ex, baseline.predict(ex)) for ex in examples]
    n = max(1, len(examples))
    exact = sum(s["exact"] for s in scores)
    return {"exact": exact / n, "wrong": (sum(s["predicted"] for s in scores) - exact) / n}


def choose_threshold(ranker_curve: dict[str, dict], baseline_wrong: float) -> float:
    """The lowest threshold whose wrong share is at most the baseline's (the highest one if none is)."""
    fits = [float(t) for t, v in ranker_curve.items() if v["wrong"] <= baseline_wrong]
    return min(fits) if fits else max(float(t) for t in ranker_curve)


def train_ranker(data_dir: Path, out_dir: Path, synthetic_sample: int | None = 3000, limit: int | None = None,
                 seed: int = 0, log=None) -> EditRanker:
    log = log or (lambda m: print(m, file=sys.stderr, flush=True))
    t0 = time.time()
    real_path = Path(data_dir) / "real_train.jsonl"
    if not real_path.is_file():
        raise ValueError(f"no {real_path}; build the examples with `tact train next-edit-data` first")
    real = sample_jsonl(real_path, limit, seed)
    # The release changes again, replayed bottom to top: top to bottom alone, every target lay below the edits
    # before it, and the ranker learned the order (0.009 exact on the held-out changes replayed the other way)
    try:
        real += list(islice(bottom_up_examples(Path(data_dir), "train"), limit))
    except ValueError as exc:
        log(f"no bottom-up replays of the release changes: {exc}")
    telemetry_path = Path(data_dir) / "telemetry_train.jsonl"
    if telemetry_path.is_file():  # the programmers' own edits, in their order: real changes too
        real += sample_jsonl(telemetry_path, limit, seed)
    if not real:
        raise ValueError(f"no real training examples in {data_dir}; run `tact train next-edit-data` first")
    synthetic_path = Path(data_dir) / "synthetic_train.jsonl"
    wanted = synthetic_sample if limit is None else min(limit, synthetic_sample or limit)
    synthetic = sample_jsonl(synthetic_path, wanted, seed) if synthetic_path.exists() else []
    examples = real + synthetic
    X, y, index = candidate_rows(examples)
    log(f"{len(real)} real (release and telemetry) and {len(synthetic)} synthetic examples: {len(y)} candidates, "
        f"{int(y.sum())} right ({time.time() - t0:.0f} s)")
    if y.sum() == 0 or y.sum() == len(y):
        raise ValueError("the candidates need both right and wrong ones to learn from")
    folds = np.array([fold_of(ex.package) for ex in examples])[index]
    oof = np.full(len(y), np.nan)
    for f in range(FOLDS):
        test = folds == f
        train = ~test
        if not test.any():
            continue
        if y[train].sum() == 0:
            oof[test] = 0.0
            continue
        oof[test] = _fit(X[train], y[train], seed).predict(X[test])
        log(f"fold {f + 1}/{FOLDS} ({time.time() - t0:.0f} s)")
    best, right = best_per_example(oof, y, index, len(examples))
    is_real = np.arange(len(examples)) < len(real)
    real_curve = curve(best[is_real], right[is_real])
    baseline = baseline_figures(real)
    threshold = choose_threshold(real_curve, baseline["wrong"])
    trees = _fit(X, y, seed)
    info = {
        "command": "tact train next-edit-ranker",
        "trained_at": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "data": {"real_examples": len(real), "telemetry_examples": sum(ex.source == "telemetry" for ex in real),
                 "synthetic_examples": len(synthetic), "candidates": int(len(y)),
                 "right_candidates": int(y.sum()), "seed": seed},
        "trees": TREES, "negative_share": NEGATIVE_SHARE,
        "out_of_fold": {"real": real_curve[f"{threshold:.2f}"], "baseline_real": baseline,
                        "synthetic": curve(best[~is_real], right[~is_real])[f"{threshold:.2f}"] if synthetic else None,
                        "real_curve": real_curve},
        "train_seconds": round(time.time() - t0, 1),
    }
    ranker = EditRanker(ranker_version(trees.to_dict()), trees, threshold, info)
    path = ranker.save(out_dir)
    log(f"threshold {threshold}: out of fold on real changes {real_curve[f'{threshold:.2f}']}, the baseline "
        f"{baseline}; wrote {path}")
    return ranker
