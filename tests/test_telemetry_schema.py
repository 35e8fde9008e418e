"""Schema creation, migration and the errors for files that are not (usable) Tact databases."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest
from sqlite_utils import Database

import telemetry.schema as schema
from telemetry import (
    SCHEMA_VERSION,
    NullStore,
    SessionEnded,
    TelemetrySchemaError,
    TelemetryStore,
    migrate,
    open_readonly,
    open_store,
)

TABLES = {"meta", "sessions", "settings_changes", "documents", "edits", "suggestion_events", "suggestions", "decisions",
          "notebooks"}


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def stored_version(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]


def make_version_0(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute("INSERT INTO meta VALUES ('schema_version', '0')")


def test_new_database_gets_every_table_and_index(tmp_path: Path) -> None:
    path = tmp_path / "t.sqlite3"
    TelemetryStore(path).close()
    assert tables(path) == TABLES
    assert stored_version(path) == str(SCHEMA_VERSION)
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
        indexes = {name: (table, sql) for name, table, sql in rows}
    assert "(uri, ts)" in indexes["idx_edits_uri"][1]
    assert indexes["idx_suggestion_events_suggestion"][0] == "suggestion_events"
    # Every table keyed by session has a session index (sessions itself is keyed by its primary key).
    assert {table for table, _ in indexes.values()} == TABLES - {"meta", "sessions"}


def test_migrate_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "t.sqlite3"
    with Database(path) as db:
        assert migrate(db) == SCHEMA_VERSION
        assert migrate(db) == SCHEMA_VERSION
    assert tables(path) == TABLES


def test_version_0_database_is_migrated_by_the_store(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    make_version_0(path)
    with pytest.raises(TelemetrySchemaError, match="older than .*migrate"):
        open_readonly(path)
    with TelemetryStore(path) as store:
        assert store.record(SessionEnded("s", "bye"))
    assert stored_version(path) == str(SCHEMA_VERSION)
    assert tables(path) == TABLES
    conn = open_readonly(path)
    assert conn.execute("SELECT end_reason FROM sessions").fetchall() == [("bye",)]
    conn.close()


def test_failed_migration_leaves_the_file_untouched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "old.sqlite3"
    make_version_0(path)

    def half_migration(db: Database) -> None:
        db.execute("CREATE TABLE sessions (id TEXT PRIMARY KEY)")
        raise RuntimeError("migration bug")

    monkeypatch.setattr(schema, "MIGRATIONS", [half_migration])
    with pytest.raises(RuntimeError, match="migration bug"):
        TelemetryStore(path)
    assert tables(path) == {"meta"}
    assert stored_version(path) == "0"


def test_newer_schema_is_refused_with_both_versions(tmp_path: Path) -> None:
    path = tmp_path / "future.sqlite3"
    TelemetryStore(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(SCHEMA_VERSION + 5)])
    for opener in (TelemetryStore, open_readonly):
        with pytest.raises(TelemetrySchemaError) as info:
            opener(path)
        message = str(info.value)
        assert str(path) in message and f"version {SCHEMA_VERSION + 5}" in message and f"{SCHEMA_VERSION}" in message
        assert "newer" in message
    assert stored_version(path) == str(SCHEMA_VERSION + 5)


def test_open_store_on_newer_schema_returns_null_store(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "future.sqlite3"
    make_version_0(path)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = '99'")
    caplog.set_level(logging.WARNING, logger="tact.telemetry")
    store = open_store(path)
    assert isinstance(store, NullStore) and "99" in store.reason
    assert any("99" in r.getMessage() for r in caplog.records)


def test_other_sqlite_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
    for opener in (TelemetryStore, open_readonly):
        with pytest.raises(TelemetrySchemaError, match="not a Tact telemetry database") as info:
            opener(path)
        assert str(path) in str(info.value)
    assert tables(path) == {"notes"}


def test_meta_without_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "meta.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        conn.execute("INSERT INTO meta VALUES ('owner', 'someone')")
    with pytest.raises(TelemetrySchemaError, match="schema_version is missing"):
        TelemetryStore(path)



def test_a_negative_schema_version_is_refused_naming_the_file(tmp_path: Path) -> None:
    """It was taken for an old schema: the store migrated it and the reader's error named its upgraded temporary copy
    and advised migrating the file."""
    from telemetry.reader import open_readonly

    path = tmp_path / "negative.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        conn.execute("INSERT INTO meta VALUES ('schema_version', '-1')")
    for open_it in (TelemetryStore, open_readonly):
        with pytest.raises(TelemetrySchemaError, match=f"^{path} is not a Tact telemetry database .*schema_version is '-1'"):
            open_it(path)

def test_non_sqlite_file_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    content = b"this is not a database\n" * 200
    path.write_bytes(content)
    for opener in (TelemetryStore, open_readonly):
        with pytest.raises(TelemetrySchemaError, match="not a readable SQLite database") as info:
            opener(path)
        assert str(path) in str(info.value)
    assert path.read_bytes() == content


def test_open_readonly_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(TelemetrySchemaError, match="no telemetry database"):
        open_readonly(tmp_path / "missing.sqlite3")
    empty = tmp_path / "empty.sqlite3"
    empty.touch()
    with pytest.raises(TelemetrySchemaError, match="empty SQLite database"):
        open_readonly(empty)


def test_readonly_connection_cannot_write_and_reads_while_store_is_open(tmp_path: Path) -> None:
    path = tmp_path / "t.sqlite3"
    with TelemetryStore(path) as store:
        store.record(SessionEnded("s", "bye"))
        assert store.flush()
        conn = open_readonly(path)
        assert conn.execute("SELECT COUNT(*) FROM sessions").fetchone() == (1,)
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            conn.execute("DELETE FROM sessions")
        conn.close()
