"""Reading telemetry databases with damaged rows: a clear refusal, and training data that keeps what is whole."""

from __future__ import annotations

import sqlite3

import pytest

from telemetry import DocumentClosed, DocumentOpened, EditEvent, SessionStarted, SuggestionShown, TelemetryStore
from telemetry.reader import list_sessions, open_readonly, session_timeline

URI = "file:///shapes.py"
SHAPES = "def area(width, height):\n    check(width)\n    return width * height\n"


def _session(store: TelemetryStore, sid: str, start: float) -> None:
    """Session ``sid`` renames width -> w at the def and at its two uses."""
    store.record(SessionStarted(sid, "c", "1", "0.1.0", {}, {}, ts=start))
    store.record(DocumentOpened(sid, URI, 1, "python", SHAPES, ts=start))
    renames = [(0, 9, 0, 14), (2, 11, 2, 16), (1, 10, 1, 15)]
    for k, (sl, sc, el, ec) in enumerate(renames, 1):
        store.record(EditEvent(sid, URI, k + 1, sl, sc, el, ec, "width", "w", start + k, 1, ts=start + k + 0.5))
    store.record(SuggestionShown(sid, f"{sid}-suggestion", ts=start + 5))
    store.record(DocumentClosed(sid, URI, ts=start + 6))


def _damage(db, sql: str, args: tuple = ()) -> None:
    conn = sqlite3.connect(db)
    try:
        conn.execute(sql, args)
        conn.commit()
    finally:
        conn.close()


@pytest.fixture
def two_sessions(tmp_path):
    db = tmp_path / "t.sqlite3"
    with TelemetryStore(db) as store:
        _session(store, "s1", 100.0)
        _session(store, "s2", 200.0)
    return db


def test_a_damaged_json_column_is_a_database_error_naming_the_column(two_sessions):
    """json's ValueError surfaced as a traceback in every reader but replay (which caught it itself)."""
    _damage(two_sessions, "UPDATE suggestion_events SET payload = '{broken' WHERE session_id = 's2'")
    conn = open_readonly(two_sessions)
    try:
        assert [s["id"] for s in list_sessions(conn)] == ["s1", "s2"]
        assert session_timeline(conn, "s1")
        with pytest.raises(sqlite3.DatabaseError, match="payload column holds damaged JSON"):
            session_timeline(conn, "s2")
    finally:
        conn.close()


def test_next_edit_examples_leave_out_a_session_with_a_damaged_row_and_keep_the_others(two_sessions):
    from models.next_edit.telemetry_examples import from_telemetry

    whole = from_telemetry([two_sessions])
    assert {ex.package for ex in whole.examples} == {"s1", "s2"}
    _damage(two_sessions, "UPDATE suggestion_events SET payload = '{broken' WHERE session_id = 's2'")
    found = from_telemetry([two_sessions])
    assert found.examples and {ex.package for ex in found.examples} == {"s1"}
    assert found.skipped["session with a damaged row"] == 1
    _damage(two_sessions, "UPDATE sessions SET settings = '{broken'")
    refused = from_telemetry([two_sessions])
    assert not refused.examples and len(refused.refusals) == 1 and "damaged JSON" in refused.refusals[0]


def test_the_report_says_it_left_out_suggestions_with_no_time(tmp_path):
    """An outcome logged for a suggestion whose request is not in the database (it went to another file) makes a row
    with no time; the report dropped it without a word."""
    from telemetry.report import load

    db = tmp_path / "t.sqlite3"
    with TelemetryStore(db) as store:
        _session(store, "s1", 100.0)  # its suggestion is shown, never requested
    data = load(db, "recorded")
    assert any("1 suggestion(s) with no time" in reason for reason in data.partial), data.partial
