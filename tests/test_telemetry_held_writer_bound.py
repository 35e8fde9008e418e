"""The anchors that carry text (documents' openings and snapshots, notebooks' cell lists) had no bound while the
writer was held up, so a database locked by another process grew the server's memory for as long as the user went
on opening files. Past a bound the session's recording now stops, and the status says so."""

from __future__ import annotations

from pathlib import Path

from telemetry import (
    DocumentClosed,
    DocumentOpened,
    DocumentSnapshot,
    EditEvent,
    SessionEnded,
    SessionStarted,
    SuggestionRequested,
    TelemetryStore,
    open_readonly,
)
from telemetry.reconstruct import build_script
from tests.test_telemetry_store import query as _rows

SID = "session-1"


def _uri(n: int) -> str:
    return f"file:///w/m{n}.py"


def test_past_the_bound_the_recording_stops_is_counted_and_said_and_the_session_still_ends(
        tmp_path: Path, stalled_writer) -> None:
    """500 openings while the writer was held: every one waited in memory. Now 50 wait; from the 51st on nothing
    but the session's end is recorded, and the status says so for good."""
    entered, release = stalled_writer
    db = tmp_path / "t.sqlite3"
    store = TelemetryStore(db, queue_size=10, text_anchor_limit=50, text_chars_limit=10**6)
    try:
        assert store.record(SessionStarted(SID, "vscode", "1", "0.1.0", ts=1.0))
        assert entered.wait(5)
        taken = [store.record(DocumentOpened(SID, _uri(n), 1, "python", "x = 1\n", ts=2.0)) for n in range(500)]
        assert taken == [True] * 50 + [False] * 450
        assert store._queue.qsize() == 50
        assert not store.record(DocumentClosed(SID, _uri(0), ts=5.0))  # an anchor too, after the stop
        assert store.record(SessionEnded(SID, "shutdown", ts=6.0))
        stats = store.stats
        assert (stats.not_recorded, stats.dropped) == (451, 451)
        assert store.reason is not None and "this session's recording stopped" in store.reason
        assert str(db) in store.reason and "451 events not recorded" in store.reason
        release.set()
        assert store.flush()
        assert store.reason is not None and "recording stopped" in store.reason  # the recording stays partial
    finally:
        release.set()
        store.close()
    assert _rows(db, "SELECT COUNT(*) FROM documents WHERE kind = 'open'") == [(50,)]
    assert _rows(db, "SELECT COUNT(*) FROM documents WHERE kind = 'close'") == [(0,)]
    assert _rows(db, "SELECT end_reason FROM sessions") == [("shutdown",)]


def test_the_characters_waiting_are_bounded_too_but_one_document_larger_than_that_still_opens(
        tmp_path: Path, stalled_writer) -> None:
    entered, release = stalled_writer
    db = tmp_path / "t.sqlite3"
    store = TelemetryStore(db, text_chars_limit=100)
    try:
        assert store.record(SessionStarted(SID, "vscode", "1", "0.1.0", ts=1.0))
        assert entered.wait(5)
        assert store.record(DocumentOpened(SID, _uri(0), 1, "python", "x" * 1000, ts=2.0))  # nothing else waits
        assert store.reason is None
        assert not store.record(DocumentSnapshot(SID, _uri(0), 1, "x" * 1000, ts=4.0))
        assert store.reason is not None
    finally:
        release.set()
        store.close()
    assert _rows(db, "SELECT uri, ts FROM documents ORDER BY ts") == [(_uri(0), 2.0)]


def test_what_was_recorded_before_the_stop_replays_whole(tmp_path: Path, stalled_writer) -> None:
    """Dropping an opening alone would leave its document's later edits applying to text the database lacks; after
    the stop nothing of the session follows, so the script rebuilds every document it has and leaves nothing out."""
    entered, release = stalled_writer
    db = tmp_path / "t.sqlite3"
    a, b = _uri(0), _uri(1)
    store = TelemetryStore(db, text_anchor_limit=1)
    try:
        assert store.record(SessionStarted(SID, "vscode", "1", "0.1.0", ts=1.0))
        assert entered.wait(5)
        assert store.record(DocumentOpened(SID, a, 1, "python", "a = 1\n", ts=2.0))
        assert store.record(EditEvent(SID, a, 2, 0, 0, 0, 0, "", "#", ts_start=3.0, ts=3.0))
        assert not store.record(DocumentOpened(SID, b, 1, "python", "b = 1\n", ts=4.0))  # one waits: the stop
        assert not store.record(EditEvent(SID, b, 2, 0, 0, 0, 0, "", "#", ts_start=5.0, ts=5.0))
        assert not store.record(SuggestionRequested(SID, "s1", "completion", b, 2, 0, 1, ts=5.5))
        assert not store.record(EditEvent(SID, a, 3, 0, 0, 0, 0, "", "!", ts_start=6.0, ts=6.0))
        assert store.record(SessionEnded(SID, "shutdown", ts=7.0))
        release.set()
        assert store.flush()
    finally:
        release.set()
        store.close()
    conn = open_readonly(db)
    try:
        script = build_script(conn, SID)
    finally:
        conn.close()
    assert script.issues == [] and script.requests_left_out == 0
    assert script.final_texts == {a: "#a = 1\n"}
