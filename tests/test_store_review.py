"""TelemetryStore and readers, a review: text SQLite cannot encode, a newer schema behind another writer's lock, and
readers of a database a server is writing."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from telemetry import (
    DocumentOpened,
    EditEvent,
    NullStore,
    SessionEnded,
    SessionStarted,
    SuggestionAccepted,
    SuggestionGenerated,
    SuggestionRequested,
    TelemetryStore,
    open_readonly,
    open_store,
    session_timeline,
)
from telemetry.reader import decided_outcomes
from telemetry.text import utf16_len

SID = "session-1"
URI = "file:///project/main.py"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "telemetry.sqlite3"


def query(path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql, params).fetchall()


def test_text_holding_a_lone_surrogate_is_stored_with_its_utf16_positions_intact(db_path: Path) -> None:
    """A lone surrogate (half an emoji, as an editor's buffer and its JSON can hold) has no UTF-8 encoding: binding it
    raised, so the opened document, the edit, the request and the suggestion holding one were all lost."""
    opened = "x = '\ud83d'\n"
    with TelemetryStore(db_path) as store:
        store.record(DocumentOpened(SID, URI, 1, "python", opened, ts=1.0))
        store.record(EditEvent(SID, URI, 2, 0, 6, 0, 6, "", "\ude00", ts_start=1.5, ts=2.0))
        store.record(SuggestionRequested(SID, "s1", "completion", URI, 2, 0, 7, ts=3.0,
                                         context={"line": "x = '\ud83d"},
                                         pending_edit={"inserted_text": "\udfff"}))
        store.record(SuggestionGenerated(SID, "s1", "a\udc80b", "m", "full", 1.0, 1, ts=4.0))
        assert store.flush()
        assert store.stats.failed == 0 and store.stats.written == 4

    ((text,),) = query(db_path, "SELECT text FROM documents")
    assert text == "x = '\ufffd'\n" and utf16_len(text) == utf16_len(opened)
    assert query(db_path, "SELECT inserted_text FROM edits") == [("\ufffd",)]
    assert query(db_path, "SELECT text FROM suggestions") == [("a\ufffdb",)]
    ((context,),) = query(db_path, "SELECT context FROM suggestions")
    assert json.loads(context) == {"line": "x = '\ufffd"}
    assert query(db_path, "SELECT json_extract(payload, '$.pending_edit.inserted_text') FROM suggestion_events"
                          " WHERE type = 'suggestion_requested'") == [("\ufffd",)]


def test_two_surrogate_halves_that_meet_are_stored_as_their_character(db_path: Path) -> None:
    """Halves of one pair held as two code points (an edit typed between them) are one character to the editor."""
    with TelemetryStore(db_path) as store:
        store.record(DocumentOpened(SID, URI, 1, "python", "a\ud83d\ude00b", ts=1.0))
        assert store.flush() and store.stats.written == 1
    assert query(db_path, "SELECT text FROM documents") == [("a\U0001f600b",)]


def test_a_newer_schema_held_by_another_writer_is_refused_at_once_for_its_version(db_path: Path) -> None:
    """Opening took the write lock before reading the version: with a newer server writing to the file, the open
    waited SQLite's busy timeout, then disabled telemetry saying the database was locked, not that it was newer."""
    TelemetryStore(db_path).close()
    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    conn.close()
    holder = sqlite3.connect(db_path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        holder.execute("INSERT INTO meta (key, value) VALUES ('held', 'x')")
        t0 = time.perf_counter()
        store = open_store(db_path)
        elapsed = time.perf_counter() - t0
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert isinstance(store, NullStore)
    assert "schema version 2, newer" in store.reason
    assert elapsed < 2.0


def test_a_timeline_read_while_a_batch_lands_holds_all_of_it_or_none_of_it(db_path: Path) -> None:
    """Each table was read in its own statement, each seeing the latest commit: a batch landing between the read
    of the documents and that of the edits gave a timeline with an edit of a document it never opened."""
    with TelemetryStore(db_path) as store:
        store.record(SessionStarted(SID, "test", "1", "0.1.0", {}, {}, ts=0.0))
        assert store.flush()
        conn = open_readonly(db_path)
        landed: list[bool] = []

        def land_a_batch_before_the_edits_are_read(sql: str) -> None:
            if "FROM edits" in sql and not landed:
                store.record(DocumentOpened(SID, URI, 1, "python", "x\n", ts=1.0))
                store.record(EditEvent(SID, URI, 2, 0, 1, 0, 1, "", "y", ts_start=1.5, ts=2.0))
                landed.append(store.flush())

        conn.set_trace_callback(land_a_batch_before_the_edits_are_read)
        try:
            first = [item["type"] for item in session_timeline(conn, SID)]
            conn.set_trace_callback(None)
            second = [item["type"] for item in session_timeline(conn, SID)]
        finally:
            conn.close()
    assert landed == [True]
    assert first == []
    assert second == ["document_opened", "edit"]


def test_the_latest_decided_outcome_is_one_of_those_counted(db_path: Path) -> None:
    """The counts and the latest outcome were read in two statements: an accept landing between them was the latest
    outcome of a prior that counted no accept."""
    with TelemetryStore(db_path) as store:
        store.record(SessionStarted(SID, "test", "1", "0.1.0", {}, {}, ts=0.0))
        store.record(SuggestionRequested(SID, "s1", "completion", URI, 1, 0, 0, ts=1.0))
        assert store.flush()
        conn = open_readonly(db_path)
        landed: list[bool] = []

        def accept_before_the_latest_is_read(sql: str) -> None:
            if "ORDER BY outcome_at DESC" in sql and not landed:
                store.record(SuggestionAccepted(SID, "s1", accepted_length=3, ts=2.0))
                landed.append(store.flush())

        conn.set_trace_callback(accept_before_the_latest_is_read)
        try:
            seen = decided_outcomes(conn)
        finally:
            conn.close()
    assert landed == [True]
    assert seen == {"accepted": 0, "rejected": 0, "last_outcome": None, "last_outcome_at": None}


def test_a_session_recording_again_into_its_database_keeps_its_start_and_is_no_longer_ended(db_path: Path) -> None:
    """Telemetry turned off and on again (or its database moved away and back) starts the same session in the same
    file again: its start moved to the restart, with the settings of then, and the end the move away logged stayed,
    so a session still running, or one that died later, read as ended normally before its last events."""
    with TelemetryStore(db_path) as store:
        store.record(SessionStarted(SID, "vscode", "1.90", "0.1.0", {"multiline": False}, {}, ts=1.0))
        store.record(DocumentOpened(SID, URI, 1, "python", "x\n", ts=1.5))
        store.record(SessionEnded(SID, "telemetry settings changed", ts=2.0))
    with TelemetryStore(db_path) as store:
        store.record(SessionStarted(SID, "vscode", "1.90", "0.1.0", {"multiline": True}, {}, ts=3.0))
        store.record(DocumentOpened(SID, URI, 4, "python", "xy\n", ts=3.5))
    assert query(db_path, "SELECT started_at, ended_at, end_reason, settings FROM sessions") == [
        (1.0, None, None, '{"multiline":false}')]
    with TelemetryStore(db_path) as store:
        store.record(SessionEnded(SID, "shutdown", ts=5.0))
    assert query(db_path, "SELECT started_at, ended_at, end_reason FROM sessions") == [(1.0, 5.0, "shutdown")]
