"""Telemetry as training data for the acceptance model: rows that are no programmer's own, labels read as CUPS reads
them, and the layers-used feature as the served policy gives it. Each test failed on the code before."""

from __future__ import annotations

import dataclasses
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


# -- exploring where the gate says no ---------------------------------------------------------------------------------

def test_a_share_of_what_the_gate_would_skip_or_hide_goes_through_logged_as_explored():
    """A model retrained on gated sessions saw no outcome where the gate said no: it found nothing worth hiding, and
    the next one retrained hid again. A share of those requests is generated and shown anyway (drawn from the text,
    so that a replay explores the same ones), stage 2 following stage 1's draw, each logged with its share."""
    from lsp_server.config import Settings
    from lsp_server.services.context import build_context
    from lsp_server.services.gate import AcceptanceGate, explored
    from lsp_server.services.positions import Position
    from tests.test_acceptance_gate import _model

    texts = [f"import os\n\ndef f{i}(x):\n    return x + {i}" for i in range(4000)]
    contexts = [build_context(t, Position(3, len(t.rsplit("\n", 1)[1])), with_facts=False) for t in texts]
    draws = [explored(c, 1, 0.05) for c in contexts]
    assert 0.04 < sum(draws) / len(draws) < 0.06
    assert draws == [explored(c, 1, 0.05) for c in contexts]  # the same requests again
    assert not any(explored(c, 1, 0.0) for c in contexts) and all(explored(c, 2, 1.0, "x") for c in contexts)

    gate = AcceptanceGate(_model(0.01, 0.01))  # P(accept) 0.01 at both stages: skip, and hide
    settings = dataclasses.replace(Settings(), acceptance_skip_uncertainty=0.2)
    let_through = next(c for c, d in zip(contexts, draws) if d)
    first = gate.before(let_through, settings)
    assert (first.decision, first.forced, first.details()["explore_share"]) == ("generate", "explore", 0.05)
    second = gate.after(let_through, "x + 1", settings, stage1=first)
    assert (second.decision, second.forced, second.details()["explore_share"]) == ("show", "explore", 0.05)
    kept_out = next(c for c, d in zip(contexts, draws) if not d)
    assert gate.before(kept_out, settings).decision == "skip"
    off = dataclasses.replace(settings, acceptance_explore_share=0.0)
    assert gate.before(let_through, off).decision == "skip" and gate.after(let_through, "x + 1", off).decision == "hide"


def test_an_explored_row_weighs_as_the_requests_it_stands_for(tmp_path, capsys):
    """An explored suggestion stands for 1/share of the requests the gate would have skipped or hidden: read once, the
    gate's no-region weighed a twentieth of what it is."""
    from lsp_server.cli import main

    db = _telemetry_db(tmp_path / "a.sqlite3", n=40)
    with sqlite3.connect(db) as conn:
        rowids = [r for (r,) in conn.execute("SELECT d.rowid FROM decisions d JOIN suggestions s ON s.id = "
                                             "d.suggestion_id WHERE d.stage = 2 AND s.outcome IS NOT NULL "
                                             "ORDER BY d.rowid LIMIT 3")]
        for rowid in rowids:
            (details,) = conn.execute("SELECT details FROM decisions WHERE rowid = ?", (rowid,)).fetchone()
            d = json.loads(details)
            d.update(forced="explore", explore_share=0.05)
            conn.execute("UPDATE decisions SET details = ? WHERE rowid = ?", (json.dumps(d), rowid))
    data, _ = from_telemetry([db])
    assert len(data) == 40 + 3 * 19
    assert data.sources[0]["explored"] == 3 and data.sources[0]["explored_extra"] == 57
    assert main(["eval", "acceptance", "--telemetry", str(db), "--kind", "logistic", "--json", "--inner-folds", "2"]) == 0
    err = capsys.readouterr().err
    assert "42 shown suggestions read, 97 usable samples" in err and "3 explored suggestions" in err


def test_an_accept_taken_back_is_labelled_rejected(tmp_path):
    """An accept the user undid at once (`undone_at`) is their no: it trained as an acceptance."""
    db = _telemetry_db(tmp_path / "a.sqlite3", n=60)
    before, _ = from_telemetry([db])
    with sqlite3.connect(db) as conn:
        undone = conn.execute("UPDATE suggestions SET undone_at = 1e9 WHERE outcome = 'accepted' "
                              "AND rowid % 2 = 0").rowcount
    assert undone > 0
    after, _ = from_telemetry([db])
    assert len(after) == len(before) and int(after.y.sum()) == int(before.y.sum()) - undone
