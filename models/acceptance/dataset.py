"""Feature matrices for training and evaluation, from any mix of sources.

- CUPS-format files: features computed from the logged prompt and suggestion by
  :mod:`models.acceptance.features`; the suggestion's log-probabilities, P(stop) and layers come
  from scoring it with our code model (:class:`models.acceptance.scoring.SuggestionScorer`).
- Tact telemetry databases (real or simulated sessions, e.g. from ``telemetry.simulate``): the
  serving gate logs the stage-2 feature vector with every stage-2 decision; a shown suggestion
  whose outcome is known becomes a sample. Hidden and skipped requests have no outcome and are
  not samples. A database with an older schema is refused with the reader's message (opening it
  once with the telemetry store migrates it).

Programmers: a CUPS ``user`` per file; for telemetry, one database is one programmer (its
sessions, when only one database is given).
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from models.acceptance import features
from models.acceptance.cups import MEASUREMENT_KEYS, load_cups

OUTCOME_LABELS = {"accepted": 1, "partially_accepted": 1, "rejected": 0}
_LAYERS_FRACTION = features.SUGGESTION_FEATURES.index("layers_fraction")
# An explored row (a suggestion the gate would have skipped or hidden, let through for a share of such requests:
# `lsp_server.services.gate.explored`) stands for 1/share of them: it is read that many times (at most this many),
# so that the few outcomes where the gate says no weigh what the requests they stand for would.
MAX_EXPLORED_COPIES = 100


@dataclass
class AcceptanceData:
    X1: np.ndarray  # (n, len(CONTEXT_FEATURES))
    X2: np.ndarray  # (n, len(SUGGESTION_FEATURES))
    y: np.ndarray  # 1 accepted
    groups: np.ndarray  # programmer of each row (str)
    measurements: np.ndarray  # (n, len(MEASUREMENT_KEYS)); NaN where the source has none
    # per source: path, kind, counts, skipped. `samples` (and `rows`, `skipped`, `explored`) count what was read;
    # `accepted` and `synthetic` count the samples kept, which with --limit are the `used` ones
    sources: list[dict] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.y)

    def context_fingerprints(self) -> list[str]:
        """A digest of each row's context features (12 hex): what a trained model records of its rows, so that an
        evaluation can tell programmers it was trained on (stage 1's features need no code model to score them)."""
        return [hashlib.sha1(np.ascontiguousarray(row, dtype=np.float64).tobytes()).hexdigest()[:12] for row in self.X1]

    def subset(self, idx) -> "AcceptanceData":
        return AcceptanceData(self.X1[idx], self.X2[idx], self.y[idx], self.groups[idx], self.measurements[idx], self.sources)

    @staticmethod
    def empty() -> "AcceptanceData":
        return AcceptanceData(np.zeros((0, len(features.CONTEXT_FEATURES))), np.zeros((0, len(features.SUGGESTION_FEATURES))),
                              np.zeros(0, int), np.zeros(0, dtype=object), np.zeros((0, len(MEASUREMENT_KEYS))))

    @staticmethod
    def concat(parts: list["AcceptanceData"]) -> "AcceptanceData":
        parts = [p for p in parts if len(p)] or [AcceptanceData.empty()]
        return AcceptanceData(np.concatenate([p.X1 for p in parts]), np.concatenate([p.X2 for p in parts]),
                              np.concatenate([p.y for p in parts]), np.concatenate([p.groups for p in parts]),
                              np.concatenate([p.measurements for p in parts]), [s for p in parts for s in p.sources])


def limit_indices(n: int, limit: int | None, seed: int = 0) -> np.ndarray:
    """A reproducible random subset of ``limit`` rows (all rows when no limit), in their original order."""
    if limit is None or limit >= n:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=max(0, limit), replace=False))


def from_cups(path: str | Path, scorer=None, limit: int | None = None, seed: int = 0, log=None,
              group_prefix: str | None = None) -> AcceptanceData:
    """Samples of one CUPS-format file. Without a scorer the model-based suggestion features are NaN.
    ``group_prefix``: what tells its programmers from another file's (default: the file's name)."""
    load = load_cups(path, group_prefix)
    keep = limit_indices(len(load.samples), limit, seed)
    samples = [load.samples[i] for i in keep]
    X1, X2 = [], []
    for k, s in enumerate(samples):
        ctx = s.context
        x1 = features.context_features(ctx)
        if scorer is not None:
            sc = scorer.score(ctx.prefix, ctx.suffix, s.suggestion)
            sug = features.SuggestionInputs(s.suggestion, sc["logprobs"], sc["stop_probs"], sc["layers"], sc["n_layers"],
                                            s.times_shown_before)
        else:
            sug = features.SuggestionInputs(s.suggestion, times_shown_before=s.times_shown_before)
        X1.append(x1)
        X2.append(features.suggestion_features(ctx, sug, x1))
        if log and (k + 1) % 100 == 0:
            log(f"{path}: {k + 1}/{len(samples)} samples")
    if scorer is not None:
        scorer.save()
    meas = np.array([[s.measurements.get(key, math.nan) if s.measurements else math.nan for key in MEASUREMENT_KEYS]
                     for s in samples], dtype=float).reshape(len(samples), len(MEASUREMENT_KEYS))
    summary = {"kind": "cups", "path": str(path), **load.summary()}
    if limit is not None:  # accepted of the samples used, as for telemetry
        summary["used"] = len(samples)
        summary["accepted"] = sum(s.label for s in samples)
    return AcceptanceData(
        np.array(X1).reshape(len(samples), len(features.CONTEXT_FEATURES)),
        np.array(X2).reshape(len(samples), len(features.SUGGESTION_FEATURES)),
        np.array([s.label for s in samples], dtype=int), np.array([s.group for s in samples], dtype=object), meas, [summary])


# an accept taken back soon after (``undone_at``) is the user's no: labelled rejected. An accept kept but edited
# afterwards (``kept_length`` below ``accepted_length``) stays accepted: the gate decides whether to show a suggestion,
# and the user took it; how much survived is a measure of what it saved, not a no.
_DECISIONS_SQL = """
SELECT d.session_id, d.suggestion_id, d.details,
       CASE WHEN s.undone_at IS NOT NULL THEN 'rejected' ELSE s.outcome END, s.reject_reason, ses.client_name
FROM decisions d LEFT JOIN suggestions s ON s.id = d.suggestion_id LEFT JOIN sessions ses ON ses.id = d.session_id
WHERE d.stage = 2 AND d.decision = 'show'
ORDER BY d.ts, d.id
"""


def _vector(raw, n: int) -> np.ndarray | None:
    """A logged feature vector of ``n`` numbers; None when it is not one. A non-finite number (JSON's ``Infinity``,
    ``NaN``, or ``1e999``, which parses to infinity) is unknown, as null is: the gate logs such values as null, and
    one infinity among the samples made training fail in scikit-learn ("Input X contains NaN")."""
    if not isinstance(raw, list) or len(raw) != n:
        return None
    out = np.empty(n)
    for i, v in enumerate(raw):
        if v is None:
            out[i] = math.nan
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            try:
                out[i] = float(v) if math.isfinite(v) else math.nan
            except OverflowError:  # an integer no float holds
                out[i] = math.nan
        else:
            return None
    return out


# Sessions that run another session's keystrokes and outcomes again (`tact replay`) or a bench's: their rows are
# not a programmer's of their own. Read beside the session they replay, under new ids, they put one programmer's
# rows on both sides of a leave-programmer-out split (stage-2 AUC 0.55 -> 0.91 with a replay of three simulated
# sessions added).
REPLAYED_CLIENTS = ("tact-replay", "tact-bench")


def explored_copies(details: dict) -> int:
    """How many times a logged decision's row is read: 1, or for an explored one (``forced`` "explore") the inverse of
    the share of such requests let through, at most MAX_EXPLORED_COPIES."""
    share = details.get("explore_share")
    if details.get("forced") != "explore" or not isinstance(share, (int, float)) or isinstance(share, bool) \
            or not 0 < share <= 1 or not math.isfinite(share):
        return 1
    return max(1, min(MAX_EXPLORED_COPIES, round(1 / share)))


def from_telemetry(paths: list[str | Path], limit: int | None = None, seed: int = 0,
                   alone: bool = False, policy: str | None = None) -> tuple[AcceptanceData, list[str]]:
    """Samples of Tact telemetry databases; returns (data, refusals: one message per unusable database).

    Programmers, for leaving one out: a database's user is one (every user's default file has the same name, so
    the position in the list tells them apart), and each simulated or demo session one of its own. ``alone`` (one
    database is all the data): its user's sessions stand in for programmers, as there is no one else to leave out.
    A decision read from an earlier database (a copy, a backup) is read once: as two programmers, the same rows on
    both sides of a split scored noise near an AUC of 1.

    Replays' and benches' sessions (``REPLAYED_CLIENTS``) are left out, and so is a suggestion ended by the next
    one before any outcome (`superseded`): the CUPS loader has no label for it either. ``policy``: the decoding
    policy the model will be served under; the layers-used feature is unknown unless it is `dynamic`, as the
    scorer leaves it for CUPS rows (rows of a dynamic session taught a speculative model a feature serving never
    gives it). ``limit``: at most that many samples of each database, drawn with ``seed``; its source says how many
    it kept (`used`), and its `accepted` and `synthetic` count those, beside the `samples` read."""
    from telemetry.reader import SYNTHETIC_CLIENTS, open_upgraded
    from telemetry.schema import TelemetrySchemaError

    d2 = len(features.SUGGESTION_FEATURES)
    d1 = len(features.CONTEXT_FEATURES)
    parts, refusals = [], []
    seen: set[tuple[str, str]] = set()  # (session, suggestion) of every decision read
    for number, path in enumerate(paths):
        path = Path(path)
        try:  # an older schema from an upgraded copy, as `tact report` and `tact replay` read it
            conn, _ = open_upgraded(path)
        except TelemetrySchemaError as exc:
            refusals.append(str(exc))
            continue
        skipped: Counter = Counter()
        rows, groups, labels, synthetic = [], [], [], []
        explored = extra = 0  # decisions read more than once (``explored_copies``), and the copies beyond one
        read: set[tuple[str, str]] = set()  # this database's, joined to ``seen`` once it is read whole
        try:
            for session_id, suggestion_id, details, outcome, reject_reason, client_name in conn.execute(_DECISIONS_SQL):
                if client_name in REPLAYED_CLIENTS:
                    skipped["a replay's or a bench's session"] += 1
                    continue
                if (session_id, suggestion_id) in seen or (session_id, suggestion_id) in read:
                    skipped["read already (a copy of a database, or a row twice)"] += 1
                    continue
                read.add((session_id, suggestion_id))
                try:
                    d = json.loads(details) if isinstance(details, str) else None
                except (ValueError, RecursionError):  # RecursionError: nested past Python's limit
                    d = None
                if not isinstance(d, dict):
                    skipped["malformed details"] += 1
                    continue
                if d.get("feature_version") != features.FEATURE_VERSION:
                    skipped["other feature version"] += 1
                    continue
                x = _vector(d.get("features"), d2)
                if x is None:
                    skipped["malformed features"] += 1
                    continue
                if outcome not in OUTCOME_LABELS:
                    skipped[f"outcome {outcome or 'unknown'}"] += 1
                    continue
                if outcome == "rejected" and reject_reason == "superseded":
                    skipped["superseded before any outcome"] += 1
                    continue
                if outcome == "rejected" and reject_reason == "ignored":  # focus moved, typed out by hand
                    skipped["ended without a decision (ignored)"] += 1
                    continue
                if policy is not None and policy != "dynamic":
                    x[_LAYERS_FRACTION] = math.nan
                copies = explored_copies(d)
                explored += copies > 1
                extra += copies - 1
                own = alone or client_name in SYNTHETIC_CLIENTS  # a session that is a programmer of its own
                for _ in range(copies):
                    rows.append(x)
                    labels.append(OUTCOME_LABELS[outcome])
                    synthetic.append(client_name in SYNTHETIC_CLIENTS)
                    groups.append(f"{number}:{path.name}:{session_id}" if own else f"{number}:{path.name}")
        except sqlite3.DatabaseError as exc:  # damaged past reading: this database refused, the others read
            refusals.append(f"{path}: its decisions cannot be read ({exc})")
            continue
        finally:
            conn.close()
        seen |= read
        n = len(rows)
        X2 = np.array(rows).reshape(n, d2)
        part = AcceptanceData(X2[:, :d1].copy(), X2, np.array(labels, dtype=int), np.array(groups, dtype=object),
                              np.full((n, len(MEASUREMENT_KEYS)), math.nan),
                              [{"kind": "telemetry", "path": str(path), "samples": n,
                                "accepted": int(sum(labels)), "synthetic": int(sum(synthetic)),
                                "skipped": dict(skipped), **({"explored": explored, "explored_extra": extra} if explored else {})}])
        if limit is not None:  # N samples per source, said as for CUPS files; accepted and synthetic of those
            idx = limit_indices(n, limit, seed)
            part = part.subset(idx)
            part.sources[0]["used"] = len(part)
            part.sources[0]["accepted"] = int(part.y.sum())
            part.sources[0]["synthetic"] = int(np.asarray(synthetic, dtype=bool)[idx].sum()) if n else 0
        parts.append(part)
    return AcceptanceData.concat(parts), refusals
