"""Replay and report on damaged input: one clear error line, never a traceback, nothing left behind."""

from __future__ import annotations

import sqlite3

import pytest

from lsp_server.cli import main
from telemetry_fakes import write_synthetic_db


@pytest.mark.parametrize("column, value", [
    ("settings", "{not json"),  # read when the sessions are listed
    ("settings", "[1, 2]"),  # JSON, but not the object a session's settings are
    ("models", "[1, 2]"),
])
def test_a_session_with_a_damaged_json_column_is_a_clear_replay_error(tmp_path, capsys, column, value):
    db = tmp_path / "damaged.sqlite3"
    write_synthetic_db(db, requests=5)
    with sqlite3.connect(db) as conn:
        conn.execute(f"UPDATE sessions SET {column} = ?", [value])
    out = tmp_path / "out.sqlite3"
    assert main(["replay", str(db), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and "damaged" in err, err
    assert not out.exists()


def test_a_damaged_event_payload_is_a_clear_replay_error(tmp_path, capsys):
    db = tmp_path / "damaged.sqlite3"
    write_synthetic_db(db, requests=5)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE suggestion_events SET payload = '{not json' WHERE id = (SELECT MIN(id) FROM"
                     " suggestion_events)")
    out = tmp_path / "out.sqlite3"
    assert main(["replay", str(db), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and "damaged" in err, err
    assert not out.exists()


def test_a_replayed_partial_accept_sends_the_reject_its_recording_had():
    """After a partial accept a replay always sent a `typedOver` reject: the replay's database disagreed with its
    recording on how the rest was turned down, or that it was at all."""
    from telemetry.replay import turned_down

    partial = {"outcome": "partially_accepted", "accepted_length": 5}
    assert turned_down("partially_accepted", "logged", {**partial, "reject_reason": "dismissed"}) == "dismissed"
    assert turned_down("partially_accepted", "logged", {**partial, "reject_reason": None}) is None
    assert turned_down("partially_accepted", "oracle", None) == "typedOver"
    assert turned_down("rejected", "logged", {"outcome": "rejected", "reject_reason": "dismissed"}) == "dismissed"
    assert turned_down("rejected", "logged", {"outcome": "rejected"}) == "typedOver"
    assert turned_down("rejected", "oracle", None) == "typedOver"
