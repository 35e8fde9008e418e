"""The edit ranker: a small learned model that picks the next edit among the history's generalisations.

`models.next_edit.candidates` proposes every place where something the programmer just did could be
done again; gradient-boosted trees, trained here on real release changes and synthetic chains
(`tact train next-edit-ranker`), score each candidate with P(it is exactly the next edit) and the best
one is returned when its score reaches the threshold recorded with the model (chosen on the training
data, out of fold by package). Serving is numpy only: the trees are flat arrays in one JSON file
(`models.acceptance.model.StageModel`, the acceptance model's format).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from models.acceptance.model import AcceptanceModelError, StageModel
from models.next_edit.candidates import FEATURE_NAMES, breaks_code, featurized, is_python
from models.next_edit.examples import Edit, Example, TextLines, lines_of

RANKER_FILE = "ranker.json"
SYNTAX_CHECKED = 3  # best candidates checked for breaking the code around them (`breaks_code`), best first
FORMAT = 1
DEFAULT_RANKER_DIR = Path(__file__).resolve().parent / "ranker"


class RankerError(Exception):
    """The edit ranker is missing, corrupt or was trained on other features; the message says which."""


@dataclass
class RankedEdit:
    edit: Edit
    score: float  # P(exactly the next edit), as the trees estimate it


@dataclass
class EditRanker:
    version: str
    trees: StageModel
    threshold: float  # scores below it are not shown
    info: dict = field(default_factory=dict)

    name = "ranker"

    def rank(self, history: list[Edit], current: str, cursor_line: int, original: str | None = None,
             lines: TextLines | None = None, refused: list[Edit] | tuple = (),
             python: bool = True) -> RankedEdit | None:
        """The best candidate and its score (whatever the score), or None when there is no candidate. ``lines``:
        ``current``'s lines, read instead of splitting it (`featurized`); ``refused``: edits taken back, whose change
        is offered nowhere (`prompt.taken_back`). Of the ``SYNTAX_CHECKED`` best that put no argument where the
        history's does not go (``misplaced``: generated with the others, as in training, so that the rest keep their
        features), the first that leaves the code around it parsing as it did (``python``: the text is Python, else
        its brackets are compared) is the answer; None when each of them breaks it."""
        if not history:
            return None
        candidates = featurized(history, current, cursor_line, original, lines, refused)
        if not candidates:
            return None
        scores = self.trees.predict(np.array([c.features for c in candidates], dtype=np.float64))
        table = lines_of(current) if lines is None else lines
        best = [k for k in np.argsort(-scores, kind="stable") if not candidates[k].misplaced]
        for k in best[:SYNTAX_CHECKED]:
            if not breaks_code(candidates[k].edit, table, python):
                return RankedEdit(candidates[k].edit, float(scores[k]))
        return None

    def threshold_for(self, override: float | None = None) -> float:
        """The score an edit needs to be shown: ``override`` (a setting) unless None or negative, else the
        threshold the ranker was trained with."""
        return self.threshold if override is None or override < 0 else override

    def predict_scored(self, example: Example) -> tuple[Edit | None, float]:
        """The evaluation interface (`models.next_edit.evaluate`, which applies ``threshold``)."""
        found = self.rank(example.history, example.current, example.cursor_line, example.original,
                          python=is_python(example.path))
        return (found.edit, found.score) if found is not None else (None, 0.0)

    def to_dict(self) -> dict:
        return {"format": FORMAT, "version": self.version, "feature_names": list(FEATURE_NAMES),
                "threshold": self.threshold, "trees": self.trees.to_dict(), "info": self.info}

    def save(self, out_dir: str | Path) -> Path:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        path = out / RANKER_FILE
        path.write_text(json.dumps(self.to_dict(), separators=(",", ":")))
        return path


def ranker_version(trees: dict) -> str:
    return "ranker-" + hashlib.sha256(json.dumps(trees, sort_keys=True).encode()).hexdigest()[:12]


def load_ranker(path: str | Path | None = None) -> EditRanker:
    """Load ``<dir>/ranker.json`` (default: the shipped one); raises RankerError saying what is wrong."""
    path = Path(path) if path else DEFAULT_RANKER_DIR
    if path.is_dir() or not path.suffix:
        path = path / RANKER_FILE
    if not path.is_file():
        raise RankerError(f"no edit ranker at {path}; train one with `tact train next-edit-ranker`")
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(d, dict):  # a list, number or null has no fields: read as one, it raised AttributeError
            raise RankerError(f"{path} is not a valid edit ranker (a JSON {type(d).__name__}, not an object)")
        if d.get("format") != FORMAT:
            raise RankerError(f"{path}: format {d.get('format')!r}, expected {FORMAT}; retrain it")
        if list(d["feature_names"]) != list(FEATURE_NAMES):
            raise RankerError(f"{path}: its features differ from the ones this Tact computes; "
                              "retrain it with `tact train next-edit-ranker`")
        trees = StageModel.from_dict(d["trees"])
        threshold = float(d["threshold"])
    except RankerError:
        raise
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, AttributeError, AcceptanceModelError, OSError,
            RecursionError) as exc:  # any damage (a field of the wrong type, an unknown tree kind, an unreadable or
        # absurdly nested file) is the caller's RankerError, never an exception it does not expect
        raise RankerError(f"{path} is not a valid edit ranker ({type(exc).__name__}: {exc})") from exc
    if trees.feature_names != list(FEATURE_NAMES) or not math.isfinite(threshold) \
            or not all(math.isfinite(v) for v in trees.fill):
        raise RankerError(f"{path}: inconsistent model (features or threshold); retrain it")
    return EditRanker(str(d["version"]), trees, threshold, d.get("info") or {})
