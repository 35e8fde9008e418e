"""Telemetry as training data for the acceptance model: rows that are no programmer's own, labels read as CUPS reads
them, and the layers-used feature as the served policy gives it. Each test failed on the code before."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest

from models.acceptance import features
from models.acceptance.dataset import from_telemetry
from tests.test_acceptance_cli import _telemetry_db

pytest.importorskip("sklearn")

LAYERS = features.SUGGESTION_FEATURES.index("layers_fraction")


def _sessions(db, clients: dict[str, str]) -> None:
    from telemetry import SessionStarted, open_store

    with open_store(db) as store:
        for session, client in clients.items():
            store.record(SessionStarted(session, client, "1", "0.1"))


def test_a_replays_and_a_benchs_sessions_are_no_programmers_rows(tmp_path):
    """A replay runs a session's keystrokes and outcomes again under new ids: read beside the session it replays (or
    from the same database), one programmer's rows stood on both sides of a leave-programmer-out split, as one more
    programmer (stage-2 AUC 0.55 -> 0.91 on simulated sessions with their replay added)."""
    db = _telemetry_db(tmp_path / "a.sqlite3", n=60)
    everything, _ = from_telemetry([db])
    _sessions(db, {"s0": "vscode", "s1": "tact-replay"})
    data, _ = from_telemetry([db])
    replayed = sum(1 for g in range(60) if g % 2 == 1)
    assert len(data) == len(everything) - replayed
    assert data.sources[0]["skipped"]["a replay's or a bench's session"] == replayed
    _sessions(db, {"s1": "tact-bench"})
    assert len(from_telemetry([db])[0]) == len(data)


def test_a_suggestion_superseded_before_any_outcome_is_no_label(tmp_path):
    """The CUPS loader skips a suggestion shown and then replaced by the next before any outcome; telemetry labelled
    the same event a rejection (the store ends it `rejected`, reason `superseded`): one model trained on both read
    one situation two ways, and fast typing as rejection."""
    db = _telemetry_db(tmp_path / "a.sqlite3", n=60)
    before, _ = from_telemetry([db])
    with sqlite3.connect(db) as conn:
        superseded = conn.execute("UPDATE suggestions SET reject_reason = 'superseded' WHERE outcome = 'rejected' "
                                  "AND rowid % 3 = 0").rowcount
    assert superseded > 0
    after, _ = from_telemetry([db])
    assert len(after) == len(before) - superseded and int(after.y.sum()) == int(before.y.sum())
    assert after.sources[0]["skipped"]["superseded before any outcome"] == superseded


def test_the_layers_used_are_unknown_unless_the_model_is_served_dynamic(tmp_path):
    """`--policy` was read for CUPS rows alone: a dynamic session's layers taught a model served `speculative` a feature
    serving never gives it (unknown there), standing for which database a row came from."""
    db = _telemetry_db(tmp_path / "a.sqlite3", n=40)
    with sqlite3.connect(db) as conn:
        for rowid, details in conn.execute("SELECT rowid, details FROM decisions").fetchall():
            d = json.loads(details)
            if isinstance(d.get("features"), list) and len(d["features"]) == len(features.SUGGESTION_FEATURES):
                d["features"][LAYERS] = 0.6
                conn.execute("UPDATE decisions SET details = ? WHERE rowid = ?", (json.dumps(d), rowid))
    for policy, known in ((None, True), ("dynamic", True), ("speculative", False), ("full", False)):
        data, _ = from_telemetry([db], policy=policy)
        assert len(data) == 40
        column = data.X2[:, LAYERS]
        assert (column == 0.6).all() if known else np.isnan(column).all(), policy
