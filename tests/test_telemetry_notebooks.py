"""Notebooks in telemetry: the NotebookChanged event, its table (schema version 2) and the v1 -> v2 migration."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from lsp_server.services.recorder import SessionRecorder
from telemetry import (
    EVENT_TYPES,
    SCHEMA_VERSION,
    DocumentOpened,
    NotebookChanged,
    SessionEnded,
    SessionStarted,
    TelemetryStore,
    event_type,
    open_readonly,
    session_timeline,
)
from telemetry_fakes import CELL1, CELL2, NOTEBOOK, write_version_1_db

SID = "s"


def _rows(path: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_the_event_is_recordable_under_its_name() -> None:
    event = NotebookChanged(SID, NOTEBOOK, "jupyter-notebook", 1, "open", (CELL1,))
    assert EVENT_TYPES[NotebookChanged] == "notebook_changed" == event_type(event)


def test_a_notebook_change_is_stored_and_read_back_in_the_timeline(tmp_path: Path) -> None:
    db = tmp_path / "t.sqlite3"
    with TelemetryStore(db) as store:
        store.record(DocumentOpened(SID, CELL1, 1, "python", "import os\n", ts=1.0))
        store.record(DocumentOpened(SID, CELL2, 1, "python", "os.", ts=1.0))
        store.record(NotebookChanged(SID, NOTEBOOK, "jupyter-notebook", 3, "open", (CELL1, CELL2), ts=1.0))
        store.record(NotebookChanged(SID, NOTEBOOK, "jupyter-notebook", 4, "close", (), ts=2.0))
    columns = "session_id, ts, notebook_uri, notebook_type, version, kind, cells"
    assert _rows(db, f"SELECT {columns} FROM notebooks") == [
        (SID, 1.0, NOTEBOOK, "jupyter-notebook", 3, "open", f'["{CELL1}","{CELL2}"]'),
        (SID, 2.0, NOTEBOOK, "jupyter-notebook", 4, "close", "[]")]
    # the write order, counted for the whole process: the third and fourth events written
    opened_seq = _rows(db, "SELECT MIN(seq) FROM documents")[0][0]
    assert [seq - opened_seq for (seq,) in _rows(db, "SELECT seq FROM notebooks ORDER BY id")] == [2, 3]
    conn = open_readonly(db)
    try:
        timeline = session_timeline(conn, SID)
    finally:
        conn.close()
    assert [item["type"] for item in timeline] == ["document_opened", "document_opened", "notebook_changed",
                                                   "notebook_changed"]
    opened = timeline[2]
    assert (opened["notebook_uri"], opened["kind"], opened["version"], opened["cells"]) == (
        NOTEBOOK, "open", 3, [CELL1, CELL2])
    assert timeline[3]["cells"] == []


def test_the_recorder_records_a_notebook_change_as_its_other_events(tmp_path: Path) -> None:
    db = tmp_path / "t.sqlite3"
    recorder = SessionRecorder(TelemetryStore(db))
    recorder.document_opened(CELL1, 1, "python", "x = 1\n")
    recorder.notebook_changed(NOTEBOOK, "jupyter-notebook", 2, "change", [CELL1])
    recorder.close()
    assert _rows(db, "SELECT session_id, notebook_uri, version, kind, cells FROM notebooks") == [
        (recorder.session_id, NOTEBOOK, 2, "change", f'["{CELL1}"]')]


def test_a_version_1_database_is_migrated_to_the_current_version_keeping_its_rows(tmp_path: Path) -> None:
    assert SCHEMA_VERSION >= 2
    db = tmp_path / "v1.sqlite3"
    write_version_1_db(db)
    with TelemetryStore(db) as store:
        store.record(SessionStarted("new", "vscode", "1", "0.1.0", ts=5.0))
        store.record(NotebookChanged("new", NOTEBOOK, "jupyter-notebook", 1, "open", (), ts=5.5))
        store.record(SessionEnded("new", "shutdown", ts=6.0))
    assert _rows(db, "SELECT value FROM meta WHERE key = 'schema_version'") == [(str(SCHEMA_VERSION),)]
    assert _rows(db, "SELECT id, client_name FROM sessions ORDER BY started_at") == [("old", "vscode"),
                                                                                     ("new", "vscode")]
    assert _rows(db, "SELECT session_id, uri, text FROM documents") == [("old", "file:///a.py", "x = 1\n")]
    assert _rows(db, "SELECT session_id, kind, cells FROM notebooks") == [("new", "open", "[]")]
    assert {name for (name,) in _rows(db, "SELECT name FROM sqlite_master WHERE type = 'index'"
                                          " AND tbl_name = 'notebooks'")} == {"idx_notebooks_session",
                                                                              "idx_notebooks_uri"}
    conn = open_readonly(db)  # readable now: the reader refuses an older schema
    conn.close()


def test_a_notebook_kind_outside_open_change_close_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "t.sqlite3"
    with TelemetryStore(db) as store:
        store.record(NotebookChanged(SID, NOTEBOOK, "jupyter-notebook", 1, "save", (), ts=1.0))
        assert store.flush() and store.stats.failed == 1
    assert _rows(db, "SELECT COUNT(*) FROM notebooks") == [(0,)]


def test_a_database_deleted_while_a_notebook_is_open_gets_the_notebook_again(tmp_path: Path) -> None:
    """A database made again mid-session is given the open documents; without their notebook, a replay read the
    cells as files, each without the cells above it."""
    db = tmp_path / "t.sqlite3"
    with TelemetryStore(db) as store:
        store.record(SessionStarted(SID, "vscode", "1", "0.1.0", ts=1.0))
        store.record(DocumentOpened(SID, CELL1, 1, "python", "import os\n", ts=1.5))
        store.record(DocumentOpened(SID, CELL2, 1, "python", "os.", ts=1.5))
        store.record(NotebookChanged(SID, NOTEBOOK, "jupyter-notebook", 2, "open", (CELL1, CELL2), ts=1.5))
        store.record(NotebookChanged(SID, NOTEBOOK, "jupyter-notebook", 3, "change", (CELL2, CELL1), ts=1.7))
        store.record(NotebookChanged(SID, "file:///w/gone.ipynb", "jupyter-notebook", 1, "open", (), ts=1.8))
        store.record(NotebookChanged(SID, "file:///w/gone.ipynb", "jupyter-notebook", 1, "close", (), ts=1.9))
        assert store.flush()
        db.unlink()
        store.record(SessionEnded(SID, "shutdown", ts=4.0))
        assert store.flush() and store.stats.reopened == 1
    conn = open_readonly(db)
    try:
        timeline = session_timeline(conn, SID)
    finally:
        conn.close()
    assert [(item["type"], item.get("uri") or item.get("notebook_uri")) for item in timeline] == [
        ("document_opened", CELL1), ("document_opened", CELL2), ("notebook_changed", NOTEBOOK)]
    assert (timeline[2]["kind"], timeline[2]["version"], timeline[2]["cells"], timeline[2]["ts"]) == (
        "open", 3, [CELL2, CELL1], 1.7)
