"""Telemetry, a ninth look: a session's start time, and damaged payloads."""

from __future__ import annotations

import json
import sqlite3

from telemetry import DocumentOpened, EditEvent, SessionStarted, SuggestionRequested, TelemetryStore
from telemetry.reader import list_sessions, open_readonly, session_timeline


def test_a_session_starts_at_its_first_event_when_that_came_before_its_start(tmp_path):
    """The start is logged once the model has loaded; the documents opened and edited meanwhile came before their
    session's start (and a replay's acceptance prior, read before the start, counted outcomes of that gap)."""
    db = tmp_path / "t.sqlite3"
    with TelemetryStore(db) as store:
        store.record(DocumentOpened("s", "file:///a.py", 1, "python", "x = 1\n", ts=100.0))
        store.record(EditEvent("s", "file:///a.py", 2, 0, 5, 0, 5, "", "2", 101.0, ts=101.0))
        store.record(SessionStarted("s", "c", "1", "0.1.0", {}, {}, ts=130.0))
    conn = open_readonly(db)
    try:
        (session,) = list_sessions(conn)
        assert session["started_at"] == 100.0 and session["client_name"] == "c"
    finally:
        conn.close()


def test_a_payload_that_names_a_column_does_not_replace_it(tmp_path):
    """A damaged payload's "ts" (null, text) replaced the row's own, and sorting the timeline raised TypeError."""
    db = tmp_path / "t.sqlite3"
    with TelemetryStore(db) as store:
        store.record(SessionStarted("s", "c", "1", "0.1.0", {}, {}, ts=100.0))
        store.record(DocumentOpened("s", "file:///a.py", 1, "python", "x = 1\n", ts=101.0))
        store.record(SuggestionRequested("s", "r1", "completion", "file:///a.py", 1, 0, 5, ts=102.0))
    with sqlite3.connect(db) as conn:
        (payload,) = conn.execute("SELECT payload FROM suggestion_events").fetchone()
        damaged = {**json.loads(payload), "ts": None, "seq": "x"}
        conn.execute("UPDATE suggestion_events SET payload = ?", [json.dumps(damaged)])
    conn.close()
    conn = open_readonly(db)
    try:
        timeline = session_timeline(conn, "s")
    finally:
        conn.close()
    assert [item["ts"] for item in timeline] == [101.0, 102.0]


def test_a_database_that_stops_taking_writes_says_so_in_the_reason_until_it_takes_them_again(tmp_path):
    """Every event was lost (a read-only file, a full disk) while `reason` stayed None: the status said all was well."""
    from telemetry import open_store

    store = open_store(tmp_path / "t.sqlite3")
    try:
        store.flush()
        store._db.execute("PRAGMA query_only = ON")  # as a file made read-only under the server (root ignores modes)
        store.record(SessionStarted("s", "c", "1", "0.1.0", {}, {}, ts=100.0))
        store.record(DocumentOpened("s", "file:///a.py", 1, "python", "x = 1\n", ts=101.0))
        assert store.flush()
        assert store.reason is not None and "readonly" in store.reason
        store._db.execute("PRAGMA query_only = OFF")
        store.record(DocumentOpened("s", "file:///b.py", 1, "python", "y = 1\n", ts=102.0))
        assert store.flush()
        assert store.reason is None
    finally:
        store.close()


def test_writes_working_again_leave_another_reason_alone(tmp_path):
    """The failure's reason goes once writes succeed; the one saying the database was made again stays."""
    from telemetry import open_store

    store = open_store(tmp_path / "t.sqlite3")
    try:
        store.flush()
        store.reason = "the database was deleted or moved away while recording; recording into a new one there"
        store._db.execute("PRAGMA query_only = ON")
        store.record(DocumentOpened("s", "file:///a.py", 1, "python", "x = 1\n", ts=101.0))
        store.flush()
        assert store.reason.startswith("writes to")
        store._db.execute("PRAGMA query_only = OFF")
        store.reason = "the database was deleted or moved away while recording; recording into a new one there"
        store.record(DocumentOpened("s", "file:///b.py", 1, "python", "y = 1\n", ts=102.0))
        store.flush()
        assert store.reason is not None and store.reason.startswith("the database was deleted")
    finally:
        store.close()
