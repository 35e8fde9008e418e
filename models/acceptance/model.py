"""The acceptance model at serving time: numpy only, one JSON file.

Each stage is either a standardised logistic regression or gradient-boosted trees exported to
flat arrays (sklearn's ``GradientBoostingClassifier``: ``x <= threshold`` goes left, inputs
compared as float32 as sklearn does). NaN features are filled with the training medians first.

The file also carries the out-of-fold scores of its training data (``calibration``), so the
serving gate can choose thresholds by the CDHF rule for whatever λ and precision floor the
settings say, without retraining.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models.acceptance.features import CONTEXT_FEATURES, FEATURE_VERSION, SUGGESTION_FEATURES
from models.model_dir import write_atomically

MODEL_FILE = "acceptance.json"
FORMAT = 1
DEFAULT_DIR = Path(__file__).resolve().parent / "default"


class AcceptanceModelError(Exception):
    """The acceptance model is missing, corrupt or was trained on other features; the message says which."""


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -500, 500)))


def _numbers(value: Any, name: str, integers: bool = False) -> np.ndarray:
    """A JSON list of numbers as a 1-D array (int64 for ``integers``); ValueError for anything else. A cast took
    numbers written as text, truncated fractional node indices, and raised OverflowError on integers no int64 holds."""
    array = np.asarray(value)
    wanted = "iu" if integers else "iuf"
    if array.ndim != 1 or (array.size and array.dtype.kind not in wanted):
        raise ValueError(f"{name} is not a list of {'integers' if integers else 'numbers'}")
    return array.astype(np.int64 if integers else np.float64)


def _number(value: Any, name: str, integer: bool = False) -> float:
    """A JSON number (an integer for ``integer``) as a float; ValueError for text, a bool or an infinity."""
    if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)) \
            or not math.isfinite(float(value)):
        raise ValueError(f"{name} is not a finite {'integer' if integer else 'number'}")
    return float(value)


@dataclass
class StageModel:
    kind: str  # "logistic" | "trees"
    feature_names: list[str]
    fill: np.ndarray  # per feature: the value that replaces NaN
    params: dict[str, Any] = field(default_factory=dict)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """P(accept) for rows of ``x`` ((n, d) or (d,) -> (n,) or scalar array)."""
        x = np.asarray(x, dtype=np.float64)
        single = x.ndim == 1
        X = np.atleast_2d(x)
        X = np.where(np.isnan(X), self.fill, X)
        p = self._logistic(X) if self.kind == "logistic" else self._trees(X)
        return p[0] if single else p

    def _logistic(self, X: np.ndarray) -> np.ndarray:
        P = self.params
        z = ((X - P["mean"]) / P["scale"]) @ P["coef"] + P["intercept"]
        return _sigmoid(z)

    def _trees(self, X: np.ndarray) -> np.ndarray:
        P = self.params
        feature, threshold, left, right, value = P["feature"], P["threshold"], P["left"], P["right"], P["value"]
        X32 = X.astype(np.float32).astype(np.float64)  # sklearn's trees see float32 inputs
        rows = np.arange(X.shape[0])[:, None]
        nodes = np.broadcast_to(P["roots"], (X.shape[0], len(P["roots"]))).copy()
        for _ in range(P["max_depth"]):
            leaf = left[nodes] < 0
            if leaf.all():
                break
            f = np.where(leaf, 0, feature[nodes])
            go_left = X32[rows, f] <= threshold[nodes]
            nodes = np.where(leaf, nodes, np.where(go_left, left[nodes], right[nodes]))
        raw = P["init"] + P["learning_rate"] * value[nodes].sum(axis=1)
        return _sigmoid(raw)

    # -- (de)serialisation -----------------------------------------------------------------
    def to_dict(self) -> dict:
        def enc(v):
            return v.tolist() if isinstance(v, np.ndarray) else v
        return {"kind": self.kind, "feature_names": list(self.feature_names), "fill": self.fill.tolist(),
                "params": {k: enc(v) for k, v in self.params.items()}}

    @classmethod
    def from_dict(cls, d: dict) -> "StageModel":
        kind = d["kind"]
        p = dict(d["params"])
        if kind == "logistic":
            for k in ("mean", "scale", "coef"):
                p[k] = _numbers(p[k], k)
            p["intercept"] = _number(p["intercept"], "intercept")
        elif kind == "trees":
            for k in ("feature", "left", "right", "roots"):
                p[k] = _numbers(p[k], k, integers=True)
            for k in ("threshold", "value"):
                p[k] = _numbers(p[k], k)
            p["init"], p["learning_rate"] = _number(p["init"], "init"), _number(p["learning_rate"], "learning_rate")
            p["max_depth"] = int(_number(p["max_depth"], "max_depth", integer=True))
        else:
            raise AcceptanceModelError(f"unknown stage model kind {kind!r}")
        stage = cls(kind, list(d["feature_names"]), _numbers(d["fill"], "fill"), p)
        stage._check()
        return stage

    def _check(self) -> None:
        """Raise ValueError when the parameters do not fit the features or each other: a damaged file must be
        refused at load (the gate then turns off), not fail on every request or score NaN (which shows all)."""
        P, d = self.params, len(self.feature_names)

        def vector(name: str, length: int | None = None) -> np.ndarray:
            v = P[name]
            if v.ndim != 1 or (length is not None and len(v) != length):
                raise ValueError(f"{self.kind} parameter {name!r} has shape {v.shape}, expected ({length or 'n'},)")
            return v

        if self.kind == "logistic":
            arrays = [vector(k, d) for k in ("mean", "scale", "coef")]
            if not all(np.isfinite(a).all() for a in arrays) or not math.isfinite(P["intercept"]):
                raise ValueError("non-finite logistic parameters")
            if not (P["scale"] > 0).all():
                raise ValueError("logistic scale must be positive")
            return
        feature = vector("feature")
        n = len(feature)
        left, right, threshold, value = (vector(k, n) for k in ("left", "right", "threshold", "value"))
        roots = vector("roots")
        if n == 0 or len(roots) == 0 or not ((roots >= 0) & (roots < n)).all():
            raise ValueError("trees roots point outside the nodes")
        inner = left >= 0
        if not ((right >= 0) == inner).all() or not ((left[inner] < n) & (right[inner] < n)).all():
            raise ValueError("trees children point outside the nodes")
        if not ((feature[inner] >= 0) & (feature[inner] < d)).all():
            raise ValueError(f"trees split on a feature outside the {d} features")
        if not (np.isfinite(threshold[inner]).all() and np.isfinite(value).all()
                and math.isfinite(P["init"]) and math.isfinite(P["learning_rate"])):
            raise ValueError("non-finite trees parameters")
        nodes = np.unique(roots)  # every path must reach a leaf within max_depth steps (predict walks no further)
        for _ in range(min(max(P["max_depth"], 0), n)):
            nodes = np.unique(np.concatenate([left[nodes[inner[nodes]]], right[nodes[inner[nodes]]]]))
        if inner[nodes].any():
            raise ValueError(f"trees deeper than their max_depth {P['max_depth']}")


@dataclass
class Calibration:
    """Out-of-fold scores of the training samples: what threshold selection runs on."""

    stage1: np.ndarray
    stage2: np.ndarray
    label: np.ndarray

    def to_dict(self) -> dict:
        return {"stage1": np.round(self.stage1, 6).tolist(), "stage2": np.round(self.stage2, 6).tolist(),
                "label": self.label.astype(int).tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "Calibration":
        label = np.asarray(d["label"])
        if label.dtype.kind not in "biuf" or not np.isin(label, (0, 1)).all():  # before the cast: int() made 0.5 a 0, "1" a 1
            raise ValueError("calibration labels must be 0 or 1")
        c = cls(_numbers(d["stage1"], "calibration stage1"), _numbers(d["stage2"], "calibration stage2"),
                label.astype(int))
        if not len(c.label):  # no threshold could be chosen: the gate said it was on, and never skipped nor hid
            raise ValueError("the calibration holds no samples")
        if not (c.stage1.ndim == c.stage2.ndim == c.label.ndim == 1 and len(c.stage1) == len(c.stage2) == len(c.label)):
            raise ValueError("calibration arrays are not three lists of one length")
        if not (np.isfinite(c.stage1).all() and np.isfinite(c.stage2).all()):
            raise ValueError("calibration scores must be finite")  # else no threshold hides
        return c


@dataclass
class AcceptanceModel:
    version: str
    stage1: StageModel
    stage2: StageModel
    calibration: Calibration
    info: dict = field(default_factory=dict)  # what it was trained on, with which code model, CV figures

    @property
    def base_rate(self) -> float:
        return float(self.calibration.label.mean()) if len(self.calibration.label) else 0.3

    def to_dict(self) -> dict:
        return {"format": FORMAT, "version": self.version, "feature_version": FEATURE_VERSION,
                "stage1": self.stage1.to_dict(), "stage2": self.stage2.to_dict(),
                "calibration": self.calibration.to_dict(), "info": self.info}

    def save(self, out_dir: str | Path) -> Path:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        path = out / MODEL_FILE
        text = json.dumps(self.to_dict(), separators=(",", ":"))
        # whole or not at all: a server starting meanwhile read half a file and turned its gate off
        write_atomically(path, lambda tmp: tmp.write_text(text))
        return path


def load_model(model_dir: str | Path | None = None) -> AcceptanceModel:
    """Load ``<model_dir>/acceptance.json`` (default: the shipped model); raises AcceptanceModelError."""
    path = Path(model_dir) if model_dir else DEFAULT_DIR
    if path.is_dir() or not path.suffix:
        path = path / MODEL_FILE
    if not path.is_file():
        raise AcceptanceModelError(f"no acceptance model at {path}; train one with `tact train acceptance`")
    try:
        d = json.loads(path.read_text())
        if not isinstance(d, dict):
            raise AcceptanceModelError(f"{path} is not a valid acceptance model (a JSON {type(d).__name__}, not an "
                                       "object); retrain it with `tact train acceptance`")
        if type(d.get("format")) is not int or d["format"] != FORMAT:  # true == 1 in Python
            raise AcceptanceModelError(f"{path}: format {d.get('format')!r}, expected {FORMAT}; retrain it")
        if d.get("feature_version") != FEATURE_VERSION:
            raise AcceptanceModelError(f"{path} was trained on feature version {d.get('feature_version')}, this "
                                       f"Tact computes version {FEATURE_VERSION}; retrain it with `tact train acceptance`")
        model = AcceptanceModel(str(d["version"]), StageModel.from_dict(d["stage1"]), StageModel.from_dict(d["stage2"]),
                                Calibration.from_dict(d["calibration"]), d["info"] if isinstance(d.get("info"), dict) else {})
        for stage, want in ((model.stage1, CONTEXT_FEATURES), (model.stage2, SUGGESTION_FEATURES)):
            if tuple(stage.feature_names) != tuple(want) or len(stage.fill) != len(want):
                raise AcceptanceModelError(f"{path}: its features differ from the ones this Tact computes; retrain it")
        if not all(np.isfinite(stage.fill).all() for stage in (model.stage1, model.stage2)):
            raise AcceptanceModelError(f"{path}: non-finite fill values")
    except AcceptanceModelError:
        raise
    except OSError as exc:
        raise AcceptanceModelError(f"cannot read the acceptance model {path}: {exc}") from exc
    # RecursionError: JSON nested past Python's limit; OverflowError: a number no float or int64 holds
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError, OverflowError) as exc:
        raise AcceptanceModelError(f"{path} is not a valid acceptance model ({type(exc).__name__}: {exc})") from exc
    return model
