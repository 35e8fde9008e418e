"""tact.telemetryRetentionDays: sessions last active longer ago are removed, whole, when the database is opened;
what is kept still replays."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from telemetry import (
    DocumentOpened,
    EditEvent,
    NotebookChanged,
    SessionEnded,
    SessionStarted,
    SettingsChanged,
    TelemetryStore,
    prune_sessions,
)
from telemetry.lsp_client import LspClient
from telemetry.reconstruct import build_script
from tests.lsp_support import model_under_test, server_command
from tests.telemetry_fakes import CELL1, JUPYTER, NOTEBOOK, write_synthetic_db

DAY = 86_400.0
TABLES = ("settings_changes", "documents", "edits", "suggestion_events", "suggestions", "decisions", "notebooks")


def write_session(store: TelemetryStore, sid: str, started: float, ended: float | None) -> None:
    """A session with a row in every table that has one per session: settings, a document and its edit, a notebook
    (the synthetic sessions add the suggestions, their events and decisions)."""
    store.record(SessionStarted(sid, "test", "1", "0.1.0", {}, {}, ts=started))
    store.record(SettingsChanged(sid, {"maxNewTokens": 8}, ts=started + 1))
    store.record(DocumentOpened(sid, CELL1, 1, "python", "x = 1\n", ts=started + 2))
    store.record(NotebookChanged(sid, NOTEBOOK, JUPYTER, 1, "open", (CELL1,), ts=started + 2))
    store.record(EditEvent(sid, CELL1, 2, 1, 0, 1, 0, "", "y = x\n", started + 3, ts=started + 3))
    if ended is not None:
        store.record(SessionEnded(sid, "exit", ts=ended))


def counts(db: Path, sid: str) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        found = {t: conn.execute(f"SELECT count(*) FROM {t} WHERE session_id = ?", [sid]).fetchone()[0] for t in TABLES}
        found["sessions"] = conn.execute("SELECT count(*) FROM sessions WHERE id = ?", [sid]).fetchone()[0]
    return found


def test_sessions_last_active_before_the_retention_are_removed_whole_and_the_rest_still_replays(tmp_path):
    db = tmp_path / "t.sqlite3"
    now = time.time()
    old = write_synthetic_db(db, seed=1, requests=40)  # November 2023: suggestions, their events, decisions
    with TelemetryStore(db) as store:
        write_session(store, "ended-long-ago", now - 200 * DAY, now - 100 * DAY)
        write_session(store, "crashed-long-ago", now - 120 * DAY, None)  # no end: its start is its last activity
        write_session(store, "started-long-ago-ended-lately", now - 100 * DAY, now - 10 * DAY)
        write_session(store, "lately", now - 5 * DAY, now - 5 * DAY + 60)
    assert all(counts(db, old)[t] > 0 for t in ("sessions", "documents", "edits", "suggestion_events", "suggestions",
                                                 "decisions")), counts(db, old)
    with sqlite3.connect(db) as conn:
        kept_script = build_script(conn, "lately")

    with TelemetryStore(db, retention_days=90):  # the writer removes them before anything else
        pass

    for sid in (old, "ended-long-ago", "crashed-long-ago"):
        assert set(counts(db, sid).values()) == {0}, (sid, counts(db, sid))
    for sid in ("started-long-ago-ended-lately", "lately"):
        assert all(n > 0 for t, n in counts(db, sid).items() if t not in ("suggestion_events", "suggestions",
                                                                         "decisions")), (sid, counts(db, sid))
    with sqlite3.connect(db) as conn:
        assert build_script(conn, "lately") == kept_script


def test_a_session_with_no_end_that_wrote_lately_is_kept(tmp_path):
    """A session with no end counted as last active at its start: a second editor window opening the database
    deleted a first window's long session while it was still recording (its later rows then had no document)."""
    db = tmp_path / "t.sqlite3"
    now = time.time()
    with TelemetryStore(db) as store:
        write_session(store, "running-for-days", now - 100 * DAY, None)
        store.record(EditEvent("running-for-days", CELL1, 3, 1, 0, 1, 0, "", "z\n", now - 60, ts=now - 60))
        write_session(store, "crashed-long-ago", now - 120 * DAY, None)
    with TelemetryStore(db, retention_days=90):
        pass
    assert all(n > 0 for t, n in counts(db, "running-for-days").items()
               if t not in ("suggestion_events", "suggestions", "decisions")), counts(db, "running-for-days")
    assert set(counts(db, "crashed-long-ago").values()) == {0}


def test_no_retention_keeps_every_session_and_the_count_is_returned(tmp_path):
    db = tmp_path / "t.sqlite3"
    old = write_synthetic_db(db, seed=2, requests=10)
    with TelemetryStore(db, retention_days=0):
        pass
    assert counts(db, old)["sessions"] == 1
    rows = sum(counts(db, old).values())
    with sqlite3.connect(db, isolation_level=None) as conn:
        assert prune_sessions(conn, 90 * DAY) == (1, rows)
        assert prune_sessions(conn, 90 * DAY) == (0, 0)


def test_the_server_removes_old_sessions_when_it_opens_the_database_and_says_so(tmp_path):
    db = tmp_path / "t.sqlite3"
    old = write_synthetic_db(db, seed=3, requests=10)
    log_file = tmp_path / "server.log"
    with open(log_file, "wb") as stderr:
        client = LspClient(server_command(model_under_test(), db), env=dict(os.environ), stderr=stderr)
    try:
        client.initialize({"telemetryRetentionDays": 30, "stopThreshold": 1.01})
        session = client.request("tact/status", timeout=60)["sessionId"]
        deadline = time.monotonic() + 60  # until this session is recorded (once the model is loaded)
        while not counts(db, session)["sessions"] and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        client.shutdown()
    assert set(counts(db, old).values()) == {0}
    assert counts(db, session)["sessions"] == 1  # recorded after the clean-up, and kept
    assert "removed 1 sessions" in log_file.read_text() and "tact.telemetryRetentionDays" in log_file.read_text()


def test_the_server_keeps_old_sessions_with_retention_zero(tmp_path):
    db = tmp_path / "t.sqlite3"
    old = write_synthetic_db(db, seed=4, requests=10)
    client = LspClient(server_command(model_under_test(), db), env=dict(os.environ))
    try:
        client.initialize({"telemetryRetentionDays": 0, "stopThreshold": 1.01})
        client.request("tact/status", timeout=60)
    finally:
        client.shutdown()
    assert counts(db, old)["sessions"] == 1 and counts(db, old)["edits"] == 10
