"""tact report, a second review."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from telemetry import schema
from telemetry.report import report
from telemetry_fakes import write_synthetic_db


def _as_replay_of(path: Path, session_id: str, source_session_id: str) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE replay_runs (session_id TEXT, source_session_id TEXT, complete INTEGER,"
                     " source_complete INTEGER, replayed INTEGER, requests INTEGER, source_started_at REAL)")
        conn.execute("CREATE TABLE replay_suggestions (suggestion_id TEXT, source_ts REAL, chars_saved INTEGER,"
                     " would_accept INTEGER)")
        conn.execute("INSERT INTO replay_runs VALUES (?, ?, 1, 1, 5, 5, NULL)", [session_id, source_session_id])


def _stamped(path: Path, version: int) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(version)])


def test_databases_of_an_older_schema_compared_are_each_copied_and_upgraded_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Comparing a recording with its replay read each database twice, once for the sessions it pairs and once for
    its figures, and each read copied and upgraded a database of an older schema anew: a year's database twice."""
    recorded, replayed = tmp_path / "desk.sqlite3", tmp_path / "replayed.sqlite3"
    write_synthetic_db(recorded, seed=1, requests=5, session_id="desk-1")
    write_synthetic_db(replayed, seed=1, requests=5, session_id="replay-1")
    _as_replay_of(replayed, "replay-1", "desk-1")
    for path in (recorded, replayed):
        _stamped(path, 0)  # schema version 0 to this code: the tables are there, the migrations are made no-ops
    upgrades: list[str] = []
    monkeypatch.setattr(schema, "MIGRATIONS", [lambda db: upgrades.append(schema.database_path(db.conn)),
                                               *[lambda db: None] * (len(schema.MIGRATIONS) - 1)])
    result = report(recorded, tmp_path / "out", against=replayed)
    assert sorted(Path(p).name for p in upgrades) == ["desk.sqlite3", "replayed.sqlite3"]
    a, b = result["summaries"]
    assert [s["id"] for s in a["session_list"]] == ["desk-1"] and [s["id"] for s in b["session_list"]] == ["replay-1"]
    assert any("schema version 0" in note for note in a["notes"])
    for path in (recorded, replayed):  # the originals are left as they were
        with sqlite3.connect(path) as conn:
            assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("0",)
