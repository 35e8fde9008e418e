"""TelemetryStore: lifecycle bookkeeping, the edit stream, and the never-block/never-raise contract."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from telemetry import (
    DocumentClosed,
    DocumentOpened,
    DocumentSnapshot,
    EditEvent,
    Event,
    NullStore,
    SessionEnded,
    SessionStarted,
    SettingsChanged,
    SuggestionAccepted,
    SuggestionCancelled,
    SuggestionFailed,
    SuggestionGated,
    SuggestionGenerated,
    SuggestionRejected,
    SuggestionRequested,
    SuggestionShown,
    TelemetryStore,
    list_sessions,
    open_readonly,
    open_store,
    outcome_counts,
    session_timeline,
    suggestions,
)
from telemetry.reader import decided_outcomes
from telemetry.schema import SCHEMA_VERSION
from telemetry.store import TelemetryStore as StoreClass
from telemetry.text import utf16_len

SID = "session-1"
URI = "file:///project/main.py"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "telemetry.sqlite3"


@pytest.fixture
def store(db_path: Path) -> Iterator[TelemetryStore]:
    with TelemetryStore(db_path) as s:
        yield s


def query(path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql, params).fetchall()


def suggestion_row(path: Path, suggestion_id: str) -> dict[str, Any]:
    conn = open_readonly(path)
    try:
        (row,) = [r for r in suggestions(conn) if r["id"] == suggestion_id]
        return row
    finally:
        conn.close()


def requested(suggestion_id: str, ts: float, kind: str = "completion") -> SuggestionRequested:
    return SuggestionRequested(
        SID, suggestion_id, kind, URI, 3, 10, 4, trigger="invoked", context={"prefix_chars": 120}, ts=ts
    )


def test_full_lifecycle_updates_summary_row_and_logs_events_in_order(store: TelemetryStore, db_path: Path) -> None:
    t = 1_700_000_000.0
    store.record(requested("s1", t))
    store.record(SuggestionGated(SID, "s1", 1, "generate", score=0.8, threshold=0.5, model_version="g1", ts=t + 0.001))
    store.record(
        SuggestionGenerated(
            SID, "s1", "return x + 1", "tiny-v1", "speculative", 42.5, 6,
            layers_per_token=3.5, stop_reason="newline", ts=t + 0.05,
        )
    )
    store.record(SuggestionGated(SID, "s1", 2, "show", score=0.7, threshold=0.6, ts=t + 0.051))
    store.record(SuggestionShown(SID, "s1", ts=t + 0.06))
    store.record(SuggestionAccepted(SID, "s1", accepted_length=6, partial=True, ts=t + 1.0))
    assert store.flush()
    assert suggestion_row(db_path, "s1")["outcome"] == "partially_accepted"

    store.record(SuggestionAccepted(SID, "s1", accepted_length=12, partial=False, ts=t + 2.0))
    assert store.flush()

    row = suggestion_row(db_path, "s1")
    assert row["kind"] == "completion" and row["uri"] == URI and (row["line"], row["character"]) == (10, 4)
    assert row["trigger"] == "invoked" and row["context"] == {"prefix_chars": 120}
    assert (row["text"], row["model"], row["policy"]) == ("return x + 1", "tiny-v1", "speculative")
    assert (row["latency_ms"], row["tokens"], row["layers_per_token"], row["stop_reason"]) == (42.5, 6, 3.5, "newline")
    assert (row["requested_at"], row["generated_at"], row["shown_at"]) == (t, t + 0.05, t + 0.06)
    assert (row["outcome"], row["outcome_at"], row["accepted_length"]) == ("accepted", t + 2.0, 12)

    types = [r[0] for r in query(db_path, "SELECT type FROM suggestion_events WHERE suggestion_id = 's1' ORDER BY id")]
    assert types == [
        "suggestion_requested", "suggestion_gated", "suggestion_generated", "suggestion_gated",
        "suggestion_shown", "suggestion_accepted", "suggestion_accepted",
    ]
    ((raw_payload,),) = query(db_path, "SELECT payload FROM suggestion_events WHERE type = 'suggestion_generated'")
    payload = json.loads(raw_payload)
    assert payload["text"] == "return x + 1" and payload["latency_ms"] == 42.5
    decisions = query(db_path, "SELECT stage, decision, score, threshold, model_version FROM decisions ORDER BY id")
    assert decisions == [(1, "generate", 0.8, 0.5, "g1"), (2, "show", 0.7, 0.6, None)]


def test_rejection_keeps_reason_but_never_erases_an_acceptance(store: TelemetryStore, db_path: Path) -> None:
    store.record(requested("r1", 1.0))
    store.record(SuggestionShown(SID, "r1", ts=1.1))
    store.record(SuggestionRejected(SID, "r1", "typed_over", ts=1.5))
    store.record(requested("r2", 2.0))
    store.record(SuggestionAccepted(SID, "r2", accepted_length=4, partial=True, ts=2.5))
    store.record(SuggestionRejected(SID, "r2", "escape", ts=3.0))
    assert store.flush()

    r1, r2 = suggestion_row(db_path, "r1"), suggestion_row(db_path, "r2")
    assert (r1["outcome"], r1["reject_reason"], r1["outcome_at"]) == ("rejected", "typed_over", 1.5)
    assert (r2["outcome"], r2["reject_reason"], r2["accepted_length"]) == ("partially_accepted", "escape", 4)



def test_an_accepted_suggestion_carries_no_reason_for_a_rejection(store: TelemetryStore, db_path: Path) -> None:
    """A suggestion the server superseded and the user then accepted (its ghost text was still on screen) kept
    `superseded` beside `accepted`, and a rejection arriving after a full accept was recorded on it too."""
    store.record(requested("s1", 1.0))
    store.record(SuggestionRejected(SID, "s1", "superseded", ts=1.2))
    store.record(SuggestionAccepted(SID, "s1", accepted_length=5, partial=False, ts=1.4))
    store.record(requested("s2", 2.0))
    store.record(SuggestionAccepted(SID, "s2", accepted_length=5, partial=False, ts=2.2))
    store.record(SuggestionRejected(SID, "s2", "typed_over", ts=2.4))
    store.record(requested("s3", 3.0))
    store.record(SuggestionRejected(SID, "s3", "superseded", ts=3.1))
    store.record(SuggestionAccepted(SID, "s3", accepted_length=2, partial=True, ts=3.2))
    assert store.flush()
    rows = [suggestion_row(db_path, sid) for sid in ("s1", "s2", "s3")]
    assert [(r["outcome"], r["reject_reason"]) for r in rows] == [
        ("accepted", None), ("accepted", None), ("partially_accepted", None)]

def test_gate_skip_hide_cancel_and_failure_outcomes(store: TelemetryStore, db_path: Path) -> None:
    store.record(requested("skip", 1.0))
    store.record(SuggestionGated(SID, "skip", 1, "skip", score=0.1, threshold=0.5))
    store.record(requested("hide", 2.0, kind="next_edit"))
    store.record(SuggestionGated(SID, "hide", 1, "generate"))
    store.record(SuggestionGated(SID, "hide", 2, "hide", score=0.2, threshold=0.6))
    store.record(requested("gen", 3.0))
    store.record(SuggestionGated(SID, "gen", 1, "generate"))
    store.record(requested("cancel", 4.0))
    store.record(SuggestionCancelled(SID, "cancel", "superseded"))
    store.record(requested("boom", 5.0))
    store.record(SuggestionFailed(SID, "boom", "RuntimeError: model"))
    assert store.flush()

    outcomes = {r[0]: r[1] for r in query(db_path, "SELECT id, outcome FROM suggestions")}
    assert outcomes == {"skip": "skipped", "hide": "hidden", "gen": None, "cancel": "cancelled", "boom": "failed"}
    conn = open_readonly(db_path)
    assert outcome_counts(conn) == {"skipped": 1, "hidden": 1, "pending": 1, "cancelled": 1, "failed": 1}
    assert outcome_counts(conn, session_id="someone-else") == {}
    conn.close()


def test_non_finite_numbers_are_stored_as_null_so_sqlite_json_can_read_the_payload(store: TelemetryStore,
                                                                                 db_path: Path) -> None:
    """json.dumps writes NaN and Infinity, which are not JSON: SQLite's json_extract refused such a payload."""
    store.record(requested("nan", 1.0))
    store.record(SuggestionGenerated(SID, "nan", "x", "m", "full", float("nan"), 1,
                                     details={"logprobs": [-0.5, float("-inf")], "score": float("inf"), "path": Path("a")}))
    assert store.flush()
    rows = query(db_path, "SELECT json_extract(payload, '$.details.logprobs'), json_extract(payload, '$.latency_ms'),"
                          " json_extract(payload, '$.details.path') FROM suggestion_events WHERE suggestion_id = 'nan'"
                          " AND type = 'suggestion_generated'")
    assert rows == [("[-0.5,null]", None, "a")]


def test_event_for_unknown_suggestion_and_session_still_lands(store: TelemetryStore, db_path: Path) -> None:
    assert store.record(SuggestionShown("orphan-session", "never-requested", ts=9.0))
    assert store.flush()
    events = query(db_path, "SELECT suggestion_id, type FROM suggestion_events")
    assert events == [("never-requested", "suggestion_shown")]
    assert query(db_path, "SELECT id, session_id, shown_at FROM suggestions") == [
        ("never-requested", "orphan-session", 9.0)
    ]
    assert query(db_path, "SELECT id, started_at FROM sessions") == [("orphan-session", 9.0)]


def test_session_rows_and_timeline_merge_edit_stream_in_time_order(store: TelemetryStore, db_path: Path) -> None:
    store.record(
        SessionStarted(SID, "vscode", "1.90", "0.1.0", {"telemetry": True}, {"completion": "tiny"}, "/w", ts=1.0)
    )
    store.record(DocumentOpened(SID, URI, 1, "python", "def f():\n    pass\n", ts=2.0))
    # Recorded out of ts order (an edit is only logged once coalescing ends): the timeline sorts it back.
    store.record(requested("s1", 4.0))
    store.record(EditEvent(SID, URI, 2, 1, 4, 1, 8, "pass", "return 1", ts_start=2.5, keystrokes=8, ts=3.0))
    store.record(SettingsChanged(SID, {"multiline": True}, ts=4.0))  # same ts as the request: write order decides
    store.record(DocumentSnapshot(SID, URI, 2, "def f():\n    return 1\n", ts=5.0))
    store.record(DocumentClosed(SID, URI, ts=6.0))
    store.record(SessionEnded(SID, "shutdown", ts=7.0))
    store.record(DocumentOpened("other-session", URI, 1, "python", "x = 1\n", ts=2.2))
    assert store.flush()

    conn = open_readonly(db_path)
    timeline = session_timeline(conn, SID)
    assert [(e["type"], e["ts"]) for e in timeline] == [
        ("document_opened", 2.0), ("edit", 3.0), ("suggestion_requested", 4.0), ("settings_changed", 4.0),
        ("document_snapshot", 5.0), ("document_closed", 6.0),
    ]
    edit = timeline[1]
    assert (edit["start_line"], edit["start_character"], edit["end_line"], edit["end_character"]) == (1, 4, 1, 8)
    assert (edit["removed_text"], edit["inserted_text"]) == ("pass", "return 1")
    assert (edit["ts_start"], edit["keystrokes"]) == (2.5, 8)
    assert timeline[0]["text"] == "def f():\n    pass\n" and timeline[4]["text"] == "def f():\n    return 1\n"
    assert timeline[2]["suggestion_id"] == "s1" and timeline[2]["context"] == {"prefix_chars": 120}
    assert timeline[3]["settings"] == {"multiline": True}

    sessions = {s["id"]: s for s in list_sessions(conn)}
    assert set(sessions) == {SID, "other-session"}
    mine = sessions[SID]
    assert (mine["started_at"], mine["ended_at"], mine["end_reason"]) == (1.0, 7.0, "shutdown")
    assert (mine["client_name"], mine["settings"], mine["models"], mine["workspace"]) == (
        "vscode", {"telemetry": True}, {"completion": "tiny"}, "/w"
    )
    conn.close()


def test_database_is_in_wal_mode(store: TelemetryStore, db_path: Path) -> None:
    assert query(db_path, "PRAGMA journal_mode") == [("wal",)]


def test_record_never_blocks_when_queue_is_full(
    db_path: Path, stalled_writer: tuple[threading.Event, threading.Event]
) -> None:
    entered, release = stalled_writer
    store = TelemetryStore(db_path, queue_size=2)
    try:
        assert store.record(SuggestionShown(SID, "first"))
        assert entered.wait(5), "writer never picked up the first event"
        started = time.perf_counter()
        results = [store.record(SuggestionShown(SID, f"s{i}")) for i in range(200)]
        elapsed = time.perf_counter() - started
        assert elapsed < 0.5
        assert results[:2] == [True, True] and not any(results[2:])
        assert store.stats.dropped == 198
        release.set()
        assert store.flush()
        assert store.stats.written == 3
        assert query(db_path, "SELECT COUNT(*) FROM suggestions") == [(3,)]
    finally:
        release.set()
        store.close()


@pytest.mark.parametrize("garbage", [None, "suggestion_shown", 42, object(), Event(SID), {"type": "edit"}])
def test_record_rejects_garbage_without_raising(store: TelemetryStore, garbage: object) -> None:
    assert store.record(garbage) is False
    assert store.stats.dropped == 1
    assert store.flush()
    assert store.stats.written == 0 and store.stats.failed == 0


def test_bad_event_fails_alone_and_writer_keeps_going(
    db_path: Path, stalled_writer: tuple[threading.Event, threading.Event], caplog: pytest.LogCaptureFixture
) -> None:
    entered, release = stalled_writer
    caplog.set_level(logging.DEBUG, logger="tact.telemetry")
    secret = "SECRET_SOURCE_TEXT"
    too_big = 2**70  # SQLite integers are 64-bit: this write raises OverflowError
    with TelemetryStore(db_path) as store:
        store.record(DocumentOpened(SID, URI, 1, "python", secret))
        assert entered.wait(5)
        # These three share the next batch: the bad ones must not roll back the good one.
        store.record(EditEvent(SID, URI, too_big, 0, 0, 0, 0, secret, secret, ts_start=0.0))
        store.record(EditEvent(SID, URI, 3, 0, 0, 0, 0, "", "ok", ts_start=0.0))
        store.record(SuggestionRequested(SID, "x", "completion", URI, too_big, 0, 0))
        release.set()
        assert store.flush()
        store.record(EditEvent(SID, URI, 4, 0, 0, 0, 0, "", "later", ts_start=0.0))
        assert store.flush()
        assert store.stats.written == 3 and store.stats.failed == 2

    assert [r[0] for r in query(db_path, "SELECT inserted_text FROM edits ORDER BY id")] == ["ok", "later"]
    assert query(db_path, "SELECT COUNT(*) FROM suggestion_events") == [(0,)]
    failures = [r for r in caplog.records if "write failed" in r.getMessage()]
    assert len(failures) == 1, "write failures are rate-limited"
    assert failures[0].levelno == logging.WARNING and "OverflowError" in failures[0].getMessage()
    assert all(secret not in r.getMessage() for r in caplog.records)


def test_flush_and_close_are_idempotent(db_path: Path) -> None:
    store = TelemetryStore(db_path)
    assert store.record(SessionEnded(SID, "exit"))
    store.close()
    store.close()
    assert store.flush() is True
    assert store.record(SessionEnded(SID, "late")) is False
    assert store.stats.written == 1 and store.stats.dropped == 1
    assert query(db_path, "SELECT end_reason FROM sessions") == [("exit",)]


def test_concurrent_record_from_many_threads_all_land(store: TelemetryStore, db_path: Path) -> None:
    threads_n, per_thread = 8, 250

    def worker(n: int) -> None:
        for i in range(per_thread):
            assert store.record(EditEvent(f"t{n}", URI, i, 0, i, 0, i, "", "a", ts_start=0.0))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.flush(timeout=20)
    assert store.stats.written == threads_n * per_thread
    assert query(db_path, "SELECT COUNT(*), COUNT(DISTINCT seq) FROM edits") == [(2000, 2000)]
    # Each thread's own events keep their order.
    versions = [r[0] for r in query(db_path, "SELECT version FROM edits WHERE session_id = 't3' ORDER BY seq")]
    assert versions == list(range(per_thread))


def test_open_store_falls_back_to_null_store_on_unwritable_path(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where a directory should be")
    caplog.set_level(logging.WARNING, logger="tact.telemetry")
    store = open_store(blocker / "telemetry.sqlite3")
    assert isinstance(store, NullStore)
    assert store.record(SessionEnded(SID, "x")) is False and store.stats.dropped == 1
    assert store.flush() is True
    store.close()
    assert any("telemetry disabled" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)


def test_open_store_returns_working_store(db_path: Path) -> None:
    with open_store(db_path) as store:
        assert isinstance(store, TelemetryStore)
        assert store.record(SessionEnded(SID, "x"))
    assert query(db_path, "SELECT end_reason FROM sessions") == [("x",)]


def test_queue_must_be_bounded(db_path: Path) -> None:
    with pytest.raises(ValueError, match="bounded"):
        TelemetryStore(db_path, queue_size=0)


def test_a_database_another_writer_holds_opens_at_once_and_its_events_land_after(db_path: Path) -> None:
    """Opening took the write lock to check the schema: with a second server writing, `initialize` waited SQLite's
    5 s and the session ran without telemetry."""
    TelemetryStore(db_path).close()
    holder = sqlite3.connect(db_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO meta (key, value) VALUES ('held', 'x')")
    t0 = time.perf_counter()
    store = open_store(db_path)
    assert isinstance(store, StoreClass) and time.perf_counter() - t0 < 2.0
    store.record(SessionStarted(SID, "test", "1", "0.1.0", {}, {}))
    holder.execute("COMMIT")
    holder.close()
    assert store.flush()
    store.close()
    assert query(db_path, "SELECT id FROM sessions") == [(SID,)]


def test_a_lock_held_past_sqlite_s_wait_delays_events_instead_of_dropping_them(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another writer (a second server, a shell) holding the database locked past SQLite's busy wait: each event
    that met the lock was dropped as if it were bad, one per wait, from the middle of the stream; an edit lost so
    leaves every later edit of its document unreplayable. They wait for the lock instead, in order."""
    import telemetry.store as store_module

    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_S", 0.2)
    with TelemetryStore(db_path) as store:
        store.record(SessionStarted(SID, "test", "1", "0.1.0", {}, {}))
        assert store.flush()
        holder = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
        holder.execute("BEGIN IMMEDIATE")
        holder.execute("INSERT INTO meta (key, value) VALUES ('held', 'x')")
        for version in (2, 3, 4):
            store.record(EditEvent(SID, URI, version, 0, 0, 0, 0, "", str(version), ts_start=0.0))
        assert not store.flush(timeout=1.0)  # waiting for the lock, several busy waits long
        holder.execute("ROLLBACK")
        holder.close()
        assert store.flush(timeout=10)
        assert store.stats.failed == 0 and store.stats.written == 4
    assert [r[0] for r in query(db_path, "SELECT version FROM edits ORDER BY seq")] == [2, 3, 4]


# -- text SQLite cannot encode, a newer schema behind another writer's lock, readers of a database being written --


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


def test_two_surrogate_halves_that_meet_are_stored_each_alone(db_path: Path) -> None:
    """Halves of one pair held as two code points (sent in two messages, or an edit typed between them) are each
    stored as U+FFFD, as each was in the edit that brought it: stored as their character, the text at close was not
    what the logged edits rebuild (tests/test_sync_surrogates_and_cell_breaks.py). Two UTF-16 units either way."""
    with TelemetryStore(db_path) as store:
        store.record(DocumentOpened(SID, URI, 1, "python", "a\ud83d\ude00b", ts=1.0))
        assert store.flush() and store.stats.written == 1
    assert query(db_path, "SELECT text FROM documents") == [("a\ufffd\ufffdb",)]


def test_a_newer_schema_held_by_another_writer_is_refused_at_once_for_its_version(db_path: Path) -> None:
    """Opening took the write lock before reading the version: with a newer server writing to the file, the open
    waited SQLite's busy timeout, then disabled telemetry saying the database was locked, not that it was newer."""
    TelemetryStore(db_path).close()
    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
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
    assert f"schema version {SCHEMA_VERSION + 1}, newer" in store.reason
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


@pytest.mark.parametrize("removed", [("",), ("", "-wal", "-shm")], ids=["file", "file-and-wal"])
def test_a_database_deleted_while_recording_is_made_again_at_its_path(db_path: Path, removed: tuple[str, ...]) -> None:
    """The user deletes the database while the server runs: the writer noticed nothing and wrote on into the deleted
    file, so the rest of the session was lost. The file is made again, holding the session's start, its latest
    settings and each open document as it is now, so later edits have their text to apply to."""
    with TelemetryStore(db_path) as store:
        store.record(SessionStarted(SID, "vscode", "1.90", "0.1.0", {"multiline": False}, {}, ts=1.0))
        store.record(SettingsChanged(SID, {"multiline": True}, ts=1.2))
        store.record(DocumentOpened(SID, URI, 1, "python", "x = 1\n", ts=1.5))
        store.record(DocumentOpened(SID, "file:///project/gone.py", 1, "python", "g\n", ts=1.6))
        store.record(DocumentClosed(SID, "file:///project/gone.py", ts=1.7))
        store.record(EditEvent(SID, URI, 2, 0, 5, 0, 5, "", "0", ts_start=1.8, ts=1.9))
        store.record(requested("before", 2.0))
        assert store.flush()
        assert store.reason is None
        for suffix in removed:
            Path(f"{db_path}{suffix}").unlink(missing_ok=True)

        store.record(SuggestionAccepted(SID, "before", 3, False, ts=2.5))  # its request went into the deleted file
        store.record(EditEvent(SID, URI, 3, 1, 0, 1, 0, "", "y = 2\n", ts_start=2.8, ts=3.0))
        store.record(requested("after", 3.5))
        assert store.flush()
        assert db_path.is_file()
        assert store.reason is not None and "deleted" in store.reason and str(db_path) in store.reason
        assert store.stats.reopened == 1
        store.record(SessionEnded(SID, "shutdown", ts=4.0))

    conn = open_readonly(db_path)
    [session] = list_sessions(conn)
    assert (session["id"], session["client_name"], session["started_at"], session["settings"]) == (
        SID, "vscode", 1.0, {"multiline": False})
    assert (session["ended_at"], session["end_reason"]) == (4.0, "shutdown")
    timeline = session_timeline(conn, SID)
    assert [(e["type"], e.get("uri"), e.get("text")) for e in timeline] == [
        ("settings_changed", None, None), ("document_opened", URI, "x = 10\n"), ("edit", URI, None),
        ("suggestion_requested", URI, None)]
    assert timeline[0]["settings"] == {"multiline": True}
    assert (timeline[1]["version"], timeline[1]["language_id"]) == (2, "python")
    assert [s["id"] for s in suggestions(conn)] == ["after"]
    conn.close()


def test_a_database_moved_away_while_recording_keeps_what_it_held_and_a_new_one_takes_the_rest(db_path: Path) -> None:
    with TelemetryStore(db_path) as store:
        store.record(SessionStarted(SID, "vscode", "1.90", "0.1.0", {}, {}, ts=1.0))
        store.record(DocumentOpened(SID, URI, 1, "python", "a\nb\n", ts=1.5))
        assert store.flush()
        moved = db_path.with_name("kept.sqlite3")
        db_path.rename(moved)
        store.record(EditEvent(SID, URI, 2, 1, 0, 1, 1, "b", "c", ts_start=2.0, ts=2.1))
        assert store.flush()
    assert query(moved, "SELECT COUNT(*) FROM edits") == [(0,)]
    assert query(db_path, "SELECT kind, text FROM documents") == [("open", "a\nb\n")]
    assert query(db_path, "SELECT inserted_text FROM edits") == [("c",)]


def test_an_unchanged_database_is_not_made_again(store: TelemetryStore, db_path: Path) -> None:
    store.record(SessionStarted(SID, "vscode", "1.90", "0.1.0", {}, {}, ts=1.0))
    store.record(DocumentOpened(SID, URI, 1, "python", "a\n", ts=1.5))
    assert store.flush()
    store.record(EditEvent(SID, URI, 2, 0, 1, 0, 1, "", "b", ts_start=2.0, ts=2.1))
    assert store.flush()
    assert store.reason is None and store.stats.reopened == 0
    assert query(db_path, "SELECT COUNT(*) FROM documents") == [(1,)]


def test_a_deleted_database_that_cannot_be_made_again_fails_its_events_until_it_can(db_path: Path) -> None:
    with TelemetryStore(db_path) as store:
        store.record(SessionStarted(SID, "vscode", "1.90", "0.1.0", {}, {}, ts=1.0))
        store.record(DocumentOpened(SID, URI, 1, "python", "a\n", ts=1.5))
        assert store.flush()
        db_path.unlink()
        db_path.mkdir()  # something SQLite cannot open stands where the file was
        store.record(EditEvent(SID, URI, 2, 0, 1, 0, 1, "", "b", ts_start=2.0, ts=2.1))
        assert store.flush()
        assert store.stats.failed == 1 and store.stats.reopened == 0
        assert store.reason is not None and "cannot be made again" in store.reason
        db_path.rmdir()
        store.record(EditEvent(SID, URI, 3, 0, 2, 0, 2, "", "c", ts_start=3.0, ts=3.1))
        assert store.flush()
        assert store.stats.reopened == 1 and "cannot" not in (store.reason or "cannot")
    assert query(db_path, "SELECT kind, version, text FROM documents") == [("open", 2, "ab\n")]
    assert query(db_path, "SELECT inserted_text FROM edits") == [("c",)]


def test_a_lock_waited_for_is_said_in_the_reason_until_the_writes_go_through(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While another writer held the database, `tact/status` said all was well: events queued, and were lost once
    the queue was full."""
    import telemetry.store as store_module

    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_S", 0.2)
    with TelemetryStore(db_path) as store:
        store.record(SessionStarted(SID, "test", "1", "0.1.0", {}, {}))
        assert store.flush() and store.reason is None
        holder = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
        holder.execute("BEGIN IMMEDIATE")
        holder.execute("INSERT INTO meta (key, value) VALUES ('held', 'x')")
        store.record(EditEvent(SID, URI, 2, 0, 0, 0, 0, "", "2", ts_start=0.0))
        assert not store.flush(timeout=1.0)
        assert store.reason is not None and "locked by another writer" in store.reason
        holder.execute("ROLLBACK")
        holder.close()
        assert store.flush(timeout=10)
        assert store.reason is None and store.stats.written == 2


def test_a_suggestions_events_from_another_session_leave_its_row_and_events_as_they_were(db_path: Path) -> None:
    """An outcome filed under a later session for an earlier session's suggestion rewrote that session's row after
    its end (the server drops such feedback; the store keeps out what still comes)."""
    with TelemetryStore(db_path) as store:
        store.record(SessionStarted(SID, "test", "1", "0.1.0", {}, {}, ts=0.0))
        store.record(SuggestionRequested(SID, "s1", "completion", URI, 1, 0, 0, ts=1.0))
        store.record(SuggestionRejected(SID, "s1", "dismissed", ts=2.0))
        store.record(SessionEnded(SID, "shutdown", ts=3.0))
        store.record(SuggestionShown("later", "s1", ts=4.0))
        store.record(SuggestionAccepted("later", "s1", accepted_length=2, ts=5.0))
        assert store.flush()
        assert store.stats.failed == 0
    assert query(db_path, "SELECT session_id, outcome, reject_reason, accepted_length, shown_at FROM suggestions") == [
        (SID, "rejected", "dismissed", None, None)]
    assert query(db_path, "SELECT DISTINCT session_id FROM suggestion_events") == [(SID,)]


def test_a_burst_of_events_is_one_transaction_and_a_flush_does_not_wait_for_the_gathering(db_path: Path, monkeypatch) -> None:
    """Each event written at once was a commit of its own while the model ran on the other core (917 for 200
    requests). The writer gathers what comes within WRITE_GATHER_S; `flush` and `close` do not wait it out."""
    import telemetry.store as store_module

    monkeypatch.setattr(store_module, "WRITE_GATHER_S", 5.0)  # far longer than any wait below
    batches: list[int] = []
    write_batch = StoreClass._write_batch

    def counted(self, batch):
        batches.append(len(batch))
        return write_batch(self, batch)

    monkeypatch.setattr(StoreClass, "_write_batch", counted)
    store = TelemetryStore(db_path)
    try:
        store.record(SessionStarted(SID, "test", "1", "0.1.0", {}, {}, ts=0.0))
        for n in range(20):  # a request's events, as they come while the model runs
            store.record(SuggestionRequested(SID, f"s{n}", "completion", URI, 1, 0, 0, ts=1.0 + n))
            time.sleep(0.005)
        started = time.monotonic()
        assert store.flush(timeout=4.0)
        assert time.monotonic() - started < 2.5  # not the 5 s the writer would have gathered for
        assert batches == [21]
        assert query(db_path, "SELECT COUNT(*) FROM suggestions") == [(20,)]
        store.record(SuggestionShown(SID, "s0", ts=30.0))
    finally:
        started = time.monotonic()
        store.close()
    assert time.monotonic() - started < 2.5 and batches == [21, 1]
    assert query(db_path, "SELECT shown_at FROM suggestions WHERE id = 's0'") == [(30.0,)]


def test_a_database_made_here_is_the_users_alone_whatever_the_umask(db_path: Path) -> None:
    """It holds the text of every document opened; made by SQLite under the usual umask 022, the database, its -wal
    and -shm and their folder were readable by every user of the machine."""
    import os
    import stat

    old = os.umask(0o022)
    try:
        with TelemetryStore(db_path) as s:
            s.record(DocumentOpened(SID, URI, "python", 1, "API_KEY = 'secret'\n"))
            s.flush()
            modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in db_path.parent.iterdir()}
            folder = stat.S_IMODE(db_path.parent.stat().st_mode)
    finally:
        os.umask(old)
    assert {"telemetry.sqlite3", "telemetry.sqlite3-wal", "telemetry.sqlite3-shm"} <= set(modes)
    assert all(mode & 0o077 == 0 for mode in modes.values()), modes
    assert folder == 0o700


def test_an_existing_database_keeps_its_mode(db_path: Path) -> None:
    """Only a database made here is made private: one the user made shared stays as they made it."""
    import os
    import stat

    db_path.parent.mkdir(parents=True)
    sqlite3.connect(db_path).close()
    os.chmod(db_path, 0o640)
    with TelemetryStore(db_path) as s:
        s.record(SessionStarted(SID, "test", "0", {}))
    assert stat.S_IMODE(db_path.stat().st_mode) == 0o640
