"""Database schema and migrations.

``MIGRATIONS[v]`` upgrades a database from version ``v`` to ``v + 1``; the version lives
in ``meta.schema_version``. A fresh database is stamped version 0 and then migrated, so
the creation path and the upgrade path are the same code. Every migration runs in one
``BEGIN IMMEDIATE`` transaction, so two servers opening the same new file cannot both
create it, and a failed migration leaves the file untouched.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from sqlite_utils import Database

SCHEMA_VERSION = 4


class TelemetrySchemaError(Exception):
    """The file is not a Tact telemetry database this code can use."""


_V1 = """
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    started_at REAL,
    ended_at REAL,
    end_reason TEXT,
    client_name TEXT,
    client_version TEXT,
    server_version TEXT,
    workspace TEXT,
    settings TEXT,
    models TEXT
);
CREATE TABLE settings_changes (
    id INTEGER PRIMARY KEY,
    seq INTEGER NOT NULL,
    session_id TEXT NOT NULL,
    ts REAL NOT NULL,
    settings TEXT NOT NULL
);
CREATE TABLE documents (
    id INTEGER PRIMARY KEY,
    seq INTEGER NOT NULL,
    session_id TEXT NOT NULL,
    uri TEXT NOT NULL,
    version INTEGER,
    language_id TEXT,
    ts REAL NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('open', 'snapshot', 'close')),
    text TEXT
);
CREATE TABLE edits (
    id INTEGER PRIMARY KEY,
    seq INTEGER NOT NULL,
    session_id TEXT NOT NULL,
    uri TEXT NOT NULL,
    version INTEGER,
    ts_start REAL,
    ts REAL NOT NULL,
    start_line INTEGER NOT NULL,
    start_character INTEGER NOT NULL,
    end_line INTEGER NOT NULL,
    end_character INTEGER NOT NULL,
    removed_text TEXT NOT NULL,
    inserted_text TEXT NOT NULL,
    keystrokes INTEGER NOT NULL
);
CREATE TABLE suggestion_events (
    id INTEGER PRIMARY KEY,
    seq INTEGER NOT NULL,
    session_id TEXT NOT NULL,
    suggestion_id TEXT NOT NULL,
    ts REAL NOT NULL,
    type TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE TABLE suggestions (
    id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    kind TEXT,
    uri TEXT,
    version INTEGER,
    line INTEGER,
    character INTEGER,
    trigger TEXT,
    requested_at REAL,
    context TEXT,
    text TEXT,
    model TEXT,
    policy TEXT,
    latency_ms REAL,
    tokens INTEGER,
    layers_per_token REAL,
    stop_reason TEXT,
    generated_at REAL,
    shown_at REAL,
    outcome TEXT CHECK (outcome IN (
        'accepted', 'partially_accepted', 'rejected', 'cancelled', 'failed', 'hidden', 'skipped'
    )),
    outcome_at REAL,
    accepted_length INTEGER,
    reject_reason TEXT
);
CREATE TABLE decisions (
    id INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL,
    suggestion_id TEXT NOT NULL,
    ts REAL NOT NULL,
    stage INTEGER NOT NULL,
    decision TEXT NOT NULL,
    score REAL,
    threshold REAL,
    model_version TEXT,
    details TEXT
);
CREATE INDEX idx_settings_changes_session ON settings_changes (session_id, ts);
CREATE INDEX idx_documents_session ON documents (session_id, ts);
CREATE INDEX idx_documents_uri ON documents (uri, ts);
CREATE INDEX idx_edits_session ON edits (session_id, ts);
CREATE INDEX idx_edits_uri ON edits (uri, ts);
CREATE INDEX idx_suggestion_events_session ON suggestion_events (session_id, ts);
CREATE INDEX idx_suggestion_events_suggestion ON suggestion_events (suggestion_id);
CREATE INDEX idx_suggestions_session ON suggestions (session_id);
CREATE INDEX idx_suggestions_uri ON suggestions (uri, requested_at);
CREATE INDEX idx_decisions_session ON decisions (session_id);
CREATE INDEX idx_decisions_suggestion ON decisions (suggestion_id);
"""


# Version 2: notebooks (LSP notebook sync). Each cell is logged as a document of its own; this table says which
# documents form each notebook, in order, since a completion in a cell sees the cells above it.
_V2 = """
CREATE TABLE notebooks (
    id INTEGER PRIMARY KEY,
    seq INTEGER NOT NULL,
    session_id TEXT NOT NULL,
    ts REAL NOT NULL,
    notebook_uri TEXT NOT NULL,
    notebook_type TEXT,
    version INTEGER,
    kind TEXT NOT NULL CHECK (kind IN ('open', 'change', 'close')),
    cells TEXT NOT NULL
);
CREATE INDEX idx_notebooks_session ON notebooks (session_id, ts);
CREATE INDEX idx_notebooks_uri ON notebooks (notebook_uri, ts);
"""


# Version 3: accepts taken back. An accepted suggestion the user undid or deleted soon after keeps its outcome and its
# events, and ``undone_at`` says when it was taken back: counts of acceptance and characters saved leave it out.
_V3 = "ALTER TABLE suggestions ADD COLUMN undone_at REAL"


# Version 4: what accepts kept. ``kept_length`` is how much of an accepted suggestion was still in the document when the
# server stopped following it (UTF-16 units, as ``accepted_length``): characters saved count it where it is known.
_V4 = "ALTER TABLE suggestions ADD COLUMN kept_length INTEGER"


def _migrate_0_to_1(db: Database) -> None:
    db.executescript(_V1)


def _migrate_1_to_2(db: Database) -> None:
    db.executescript(_V2)


def _migrate_2_to_3(db: Database) -> None:
    db.execute(_V3)  # one statement, in the migration's transaction (executescript commits it first)


def _migrate_3_to_4(db: Database) -> None:
    db.execute(_V4)  # as ``_migrate_2_to_3``: one statement, in the migration's transaction


MIGRATIONS: list[Callable[[Database], None]] = [_migrate_0_to_1, _migrate_1_to_2, _migrate_2_to_3, _migrate_3_to_4]
assert len(MIGRATIONS) == SCHEMA_VERSION, "one migration per schema version"


def database_path(conn: sqlite3.Connection) -> str:
    """The file behind ``conn``, for error messages."""
    for _, name, file in conn.execute("PRAGMA database_list"):
        if name == "main":
            return file or ":memory:"
    return "?"


def read_schema_version(conn: sqlite3.Connection, path: str) -> int | None:
    """The stored schema version, or ``None`` for a database with no tables at all.

    Raises ``TelemetrySchemaError`` for a file that is not SQLite, or SQLite that is not a
    Tact telemetry database. Busy/locked errors propagate unchanged: they say nothing
    about what the file is.
    """
    try:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.OperationalError:
        raise
    except sqlite3.DatabaseError as exc:
        raise TelemetrySchemaError(f"{path} is not a readable SQLite database: {exc}") from exc
    if not tables:
        return None
    if "meta" not in tables:
        raise TelemetrySchemaError(f"{path} is an SQLite database but not a Tact telemetry database (no meta table)")
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.DatabaseError as exc:
        raise TelemetrySchemaError(f"{path} is not a Tact telemetry database (cannot read meta: {exc})") from exc
    try:
        version = int(row[0])
        if version < 0:  # no schema was ever numbered so: migrating it would name a copy, not the file
            raise ValueError(version)
        return version
    except (TypeError, ValueError):
        value = "missing" if row is None else repr(row[0])
        raise TelemetrySchemaError(
            f"{path} is not a Tact telemetry database (meta.schema_version is {value})"
        ) from None


def newer_schema_error(path: str, found: int) -> TelemetrySchemaError:
    """Shared by the store and the reader so both tell the user the same thing."""
    return TelemetrySchemaError(
        f"{path} has telemetry schema version {found}, newer than the {SCHEMA_VERSION} this "
        "version of Tact understands; upgrade Tact or point it at another database"
    )


def migrate(db: Database) -> int:
    """Create or upgrade the schema in place; returns the version now stored. A database already at this version
    is only read: another writer holding the lock (a second editor's server) does not make the open wait."""
    path = database_path(db.conn)
    try:
        found = read_schema_version(db.conn, path)
    except sqlite3.OperationalError:
        found = None  # busy: the locked path below decides
    if found == SCHEMA_VERSION:
        return SCHEMA_VERSION
    if found is not None and found > SCHEMA_VERSION:
        # Refused before the write lock: a newer server writing to the file made the open wait SQLite's busy
        # timeout, then give the lock as the reason instead of the version.
        raise newer_schema_error(path, found)
    try:
        db.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError:
        raise  # busy, locked, cannot open: not a statement about the file's contents
    except sqlite3.DatabaseError as exc:
        raise TelemetrySchemaError(f"{path} is not a readable SQLite database: {exc}") from exc
    try:
        version = read_schema_version(db.conn, path)
        if version is None:
            db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            db.execute("INSERT INTO meta (key, value) VALUES ('schema_version', '0')")
            version = 0
        if version > SCHEMA_VERSION:
            raise newer_schema_error(path, version)
        if version < 0:
            raise TelemetrySchemaError(f"{path} has an invalid telemetry schema version {version}")
        for step in range(version, SCHEMA_VERSION):
            MIGRATIONS[step](db)
            db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(step + 1)])
        db.commit()
    except BaseException:
        db.rollback()
        raise
    return SCHEMA_VERSION
