"""The read side: helpers for replay tools and reports.

Readers use a plain read-only ``sqlite3`` connection, so inspecting a database can
never modify or migrate it, and they can run while a server is writing (WAL mode).
JSON columns come back decoded.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .schema import SCHEMA_VERSION, TelemetrySchemaError, newer_schema_error, read_schema_version

_JSON_COLUMNS = frozenset({"settings", "models", "context", "payload", "cells"})
# What the other columns hold, by name (a name means the same in every table). SQLite keeps whatever a row was given,
# so a damaged file can hold text where a position belongs: refused by name, not failing later as a TypeError.
_INTEGER_COLUMNS = frozenset({"seq", "version", "line", "character", "start_line", "start_character", "end_line",
                              "end_character", "keystrokes", "tokens", "accepted_length", "kept_length", "stage",
                              "chars_saved", "would_accept", "requests", "replayed", "complete", "source_complete"})
# Numbers, finite: SQLite keeps an infinity (a NaN becomes NULL), and one time of infinity failed a report's plot.
_NUMBER_COLUMNS = frozenset({"ts", "ts_start", "started_at", "ended_at", "requested_at", "generated_at", "shown_at",
                             "outcome_at", "latency_ms", "layers_per_token", "score", "threshold", "source_ts",
                             "source_started_at"})
# Of those, the ones no row holds below zero: a latency of -1.7e308 passed, and the latency plot's bins (its range over
# the float limit) failed the whole report.
_NON_NEGATIVE_COLUMNS = frozenset({"latency_ms", "layers_per_token"})
_TEXT_COLUMNS = frozenset({"session_id", "suggestion_id", "uri", "text", "removed_text", "inserted_text", "kind",
                           "type", "outcome", "language_id", "notebook_uri", "notebook_type", "trigger", "end_reason",
                           "client_name", "client_version", "server_version", "workspace", "model", "policy",
                           "stop_reason", "reject_reason", "decision", "model_version"})
_DOCUMENT_EVENT_TYPES = {"open": "document_opened", "snapshot": "document_snapshot", "close": "document_closed"}


def open_readonly(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """Open a telemetry database for reading, after checking it is one this code understands."""
    file = Path(path)
    if file.is_dir():
        raise TelemetrySchemaError(f"{file} is a directory, not a telemetry database: name the database file in it")
    if not file.is_file():
        raise TelemetrySchemaError(f"no telemetry database at {file}")
    conn = connect_readonly(file)
    try:
        version = read_schema_version(conn, str(file))
        if version is None:
            raise TelemetrySchemaError(f"{file} is an empty SQLite database, not a Tact telemetry database")
        if version > SCHEMA_VERSION:
            raise newer_schema_error(str(file), version)
        if version < SCHEMA_VERSION:
            raise TelemetrySchemaError(
                f"{file} has telemetry schema version {version}, older than {SCHEMA_VERSION}; `tact report` and "
                "`tact replay` read it from an upgraded copy, and telemetry.open_store(path) migrates it in place "
                "(a server started with it would also remove sessions past its retention)"
            )
    except BaseException:
        conn.close()
        raise
    return conn


def connect_readonly(file: Path) -> sqlite3.Connection:
    """A read-only connection to ``file``. A WAL database needs a -shm file beside it, which a reader creates where it
    is missing: in a directory this user cannot write (an archive, another user's) that failed with "attempt to write a
    readonly database", though nothing would be written. Where no -shm exists, no server has the file open; with no
    write-ahead log to read either, the file is then opened immutable (no locks, no -shm). With a log, the error says
    what to do."""
    uri = file.resolve().as_uri()
    conn = sqlite3.connect(uri + "?mode=ro", uri=True)
    try:
        conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
        return conn
    except sqlite3.OperationalError as exc:
        conn.close()
        shm, wal = (file.with_name(file.name + suffix) for suffix in ("-shm", "-wal"))
        if shm.exists() or not ("readonly" in str(exc) or "unable to open" in str(exc)):
            raise
        if wal.exists() and wal.stat().st_size > 0:
            raise TelemetrySchemaError(
                f"{file}: cannot be read here ({exc}): its write-ahead log ({wal.name}) holds changes, and reading them "
                f"needs a {shm.name} file beside it that this user cannot create; copy the database with its "
                f"{wal.name} to a directory you can write, and read the copy") from None
    except sqlite3.DatabaseError:
        return conn  # not SQLite, or damaged: read_schema_version says which
    return sqlite3.connect(uri + "?mode=ro&immutable=1", uri=True)


def open_upgraded(path: str | os.PathLike[str]) -> tuple[sqlite3.Connection, str | None]:
    """Like ``open_readonly``, but a database of an older schema is copied to a temporary file and
    upgraded there (the original is never modified). Returns the connection and a note saying so, or None."""
    try:
        return open_readonly(path), None
    except TelemetrySchemaError:
        file = Path(path)
        try:
            probe = connect_readonly(file)
            try:
                version = read_schema_version(probe, str(file))
            finally:
                probe.close()
        except (TelemetrySchemaError, sqlite3.Error, OSError):
            version = None
        if version is None or version >= SCHEMA_VERSION:
            raise
    import atexit
    import shutil
    import tempfile

    from sqlite_utils import Database

    from .schema import migrate

    folder = tempfile.mkdtemp(prefix="tact-upgraded-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    copy = Path(folder) / file.name
    src = connect_readonly(file)
    dst = sqlite3.connect(copy)
    try:
        src.backup(dst)
        migrate(Database(dst))
    finally:
        dst.close()
        src.close()
    note = f"{file} has telemetry schema version {version}; read from a copy upgraded to version {SCHEMA_VERSION}"
    return open_readonly(copy), note


class DamagedRowError(sqlite3.DatabaseError):
    """A row whose column does not hold what it should (JSON that does not parse or is no object, text where a number
    belongs): the database is damaged there (a DatabaseError, as SQLite's own damage is, so that every reader refuses
    it clearly; json's ValueError and the TypeErrors of using such a value had surfaced as tracebacks)."""


def checked(column: str, value: Any) -> Any:
    """``value`` as read from ``column``: JSON columns decoded (an object; ``cells`` a list), the others as they are
    where they hold their kind (or NULL); DamagedRowError naming the column otherwise."""
    if value is None:
        return None
    if column in _JSON_COLUMNS:
        try:
            decoded = json.loads(value) if isinstance(value, str) else value
        except ValueError as exc:
            raise DamagedRowError(f"a row's {column} column holds damaged JSON ({exc})") from None
        except RecursionError:  # nested past Python's limit: no row Tact writes
            raise DamagedRowError(f"a row's {column} column holds JSON nested too deep to read") from None
        if decoded is not None and not isinstance(decoded, list if column == "cells" else dict):  # null: unknown
            raise DamagedRowError(f"a row's {column} column holds {_kind(decoded)}, not a JSON "
                                  f"{'list' if column == 'cells' else 'object'}")
        return decoded
    if column in _INTEGER_COLUMNS:
        wanted, fits = "an integer", isinstance(value, int) and not isinstance(value, bool)
    elif column in _NUMBER_COLUMNS:
        wanted = "a finite number" + (" of at least 0" if column in _NON_NEGATIVE_COLUMNS else "")
        fits = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and \
            (value >= 0 or column not in _NON_NEGATIVE_COLUMNS)
    elif column in _TEXT_COLUMNS:
        wanted, fits = "text", isinstance(value, str)
    else:
        return value
    if not fits:
        raise DamagedRowError(f"a row's {column} column holds {_kind(value)}, not {wanted}")
    return value


def _kind(value: Any) -> str:
    return {str: "text", bytes: "a blob", float: "a real number", int: "an integer", list: "a list",
            dict: "an object"}.get(type(value), type(value).__name__)


def _dicts(cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description]
    return [{name: checked(name, value) for name, value in zip(names, row)} for row in cursor]


@contextmanager
def _one_snapshot(conn: sqlite3.Connection) -> Iterator[None]:
    """Reads inside see the database as of one moment. Outside a transaction each statement reads the latest commit,
    so a timeline read while a server wrote could hold a batch's edit but not the open of its document."""
    if conn.in_transaction:
        yield
        return
    conn.execute("BEGIN")
    try:
        yield
    finally:
        conn.rollback()


def list_sessions(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every session row, oldest first."""
    return _dicts(conn.execute("SELECT * FROM sessions ORDER BY started_at, id"))


def sessions_named(ids: list[str], wanted: str) -> list[str]:
    """The session id equal to ``wanted``, else every id that starts with it (more than one: ambiguous)."""
    return [i for i in ids if i == wanted] or [i for i in ids if i.startswith(wanted)]


def no_session_named(ids: list[str], wanted: str, source=None) -> str:
    """Why ``--session wanted`` named none of ``ids``, with the ids to choose from (or where to see them)."""
    where = source or "the database"
    if not ids:
        return f"no session {wanted!r} in {where}: it holds no sessions"
    listed = f": {', '.join(ids)}" if len(ids) <= 5 else ""
    return (f"no session {wanted!r} in {where}, which holds {len(ids)} session{'s' * (len(ids) != 1)}{listed} "
            f"(`tact report {source or 'DATABASE'} -o DIR` lists them with their start times; --session takes an id or "
            "its first characters)")


def session_timeline(conn: sqlite3.Connection, session_id: str) -> list[dict[str, Any]]:
    """Settings changes, document events, edits, notebook changes and suggestion events of one session, in replay
    order.

    Each item is a flat dict with ``type`` (the event type name), ``ts`` and ``seq``; order
    is by ``ts`` with write order (``seq``) breaking ties. Suggestion event payloads are
    merged into the item.
    """
    items: list[dict[str, Any]] = []
    with _one_snapshot(conn):
        for row in _dicts(conn.execute("SELECT * FROM settings_changes WHERE session_id = ?", [session_id])):
            items.append({"type": "settings_changed", **row})
        for row in _dicts(conn.execute("SELECT * FROM documents WHERE session_id = ?", [session_id])):
            if row["kind"] not in _DOCUMENT_EVENT_TYPES:
                raise DamagedRowError(f"a documents row's kind column holds {row['kind']!r}, not one of "
                                      f"{', '.join(_DOCUMENT_EVENT_TYPES)}")
            items.append({"type": _DOCUMENT_EVENT_TYPES[row["kind"]], **row})
        for row in _dicts(conn.execute("SELECT * FROM edits WHERE session_id = ?", [session_id])):
            items.append({"type": "edit", **row})
        for row in _dicts(conn.execute("SELECT * FROM notebooks WHERE session_id = ?", [session_id])):
            items.append({"type": "notebook_changed", **row})
        for row in _dicts(conn.execute("SELECT * FROM suggestion_events WHERE session_id = ?", [session_id])):
            payload = row.pop("payload")
            if payload is None:  # every event is written with an object
                raise DamagedRowError("a suggestion_events row's payload column holds null, not a JSON object")
            # the row's own columns win: a damaged payload's "ts" or "seq" replaced them, and sorting raised TypeError
            items.append({"type": row.pop("type"), **payload, **row})
    items.sort(key=lambda item: (item["ts"], item["seq"]))
    for item in items:
        del item["id"]  # per-table row ids mean nothing once merged
    return items


def suggestions(conn: sqlite3.Connection, session_id: str | None = None) -> list[dict[str, Any]]:
    """Summary rows (one per suggestion), in request order."""
    where, params = ("WHERE session_id = ?", [session_id]) if session_id is not None else ("", [])
    return _dicts(conn.execute(f"SELECT * FROM suggestions {where} ORDER BY requested_at, id", params))


def outcome_counts(conn: sqlite3.Connection, session_id: str | None = None) -> dict[str, int]:
    """How many suggestions ended each way; ``'pending'`` counts those with no outcome yet."""
    where, params = ("WHERE session_id = ?", [session_id]) if session_id is not None else ("", [])
    rows = conn.execute(f"SELECT COALESCE(outcome, 'pending'), COUNT(*) FROM suggestions {where} GROUP BY 1", params)
    return dict(rows.fetchall())


# The client names `tact demo` and the simulated programmers (`tact simulate`) record their sessions under: their
# accepts and rejects are no one's, and seeded a user's prior where they shared a database.
DEMO_CLIENT = "tact-demo"
SIMULATE_CLIENT = "tact-simulate"
SYNTHETIC_CLIENTS = (DEMO_CLIENT, SIMULATE_CLIENT)


def decided_outcomes(conn: sqlite3.Connection, exclude_clients: tuple[str, ...] = (),
                     before: float | None = None) -> dict[str, Any]:
    """How many completions the user accepted (fully or partly) and rejected over every session (but those of
    ``exclude_clients``), and the latest such outcome: ``{accepted, rejected, last_outcome, last_outcome_at}`` (next
    edits not counted). With ``before``, what the database held then: sessions started before it, outcomes decided
    before it (a replay's acceptance prior is the one its recording started from)."""
    # a suggestion ended `ignored` (focus moved away, the user typed it out by hand) is no one's rejection
    decided = ("outcome IN ('accepted', 'partially_accepted', 'rejected') "
               "AND COALESCE(kind, 'completion') = 'completion' AND COALESCE(reject_reason, '') != 'ignored'")
    params: list[Any] = list(exclude_clients)
    if exclude_clients:
        decided += (" AND session_id NOT IN (SELECT id FROM sessions WHERE client_name IN "
                    f"({', '.join('?' * len(exclude_clients))}))")
    if before is not None:
        decided += " AND outcome_at < ? AND session_id IN (SELECT id FROM sessions WHERE started_at < ?)"
        params += [before, before]
    # an accept taken back soon after (`undone_at`) is no acceptance: the user said no to it, as the server's gate
    # counted it while it ran
    outcome = "CASE WHEN undone_at IS NOT NULL THEN 'rejected' ELSE outcome END"
    with _one_snapshot(conn):  # the latest outcome is one of those counted
        counts = dict(conn.execute(f"SELECT {outcome}, COUNT(*) FROM suggestions WHERE {decided} GROUP BY 1",
                                   params).fetchall())
        # a damaged row's time (text in the REAL column, which SQLite keeps and sorts above every number) is no time
        last = conn.execute(f"SELECT {outcome}, outcome_at FROM suggestions WHERE {decided} "
                            "AND typeof(outcome_at) IN ('real', 'integer') ORDER BY outcome_at DESC LIMIT 1",
                            params).fetchone()
    return {"accepted": counts.get("accepted", 0) + counts.get("partially_accepted", 0),
            "rejected": counts.get("rejected", 0),
            "last_outcome": last[0] if last else None, "last_outcome_at": last[1] if last else None}
