"""The write side: a SQLite store fed through a bounded queue by one writer thread.

The bound is on the stream events (edits, suggestion events: many per keystroke); the anchors every later row needs
(``ANCHOR_EVENT_TYPES``: a session's start and end, a document's opening, snapshot and close, a notebook's cells)
are queued past it, as many as the editor opens and closes documents. Those that carry text (``TEXT_ANCHOR_TYPES``)
have a bound of their own, which only a writer held up for long reaches (another process holding the database's
lock): past it the session's recording stops (see ``record``), and ``reason`` says so.

``record()`` runs on LSP handlers, so it only does a non-blocking ``put_nowait`` and
never raises; everything that can be slow or fail (serialization, SQLite, the disk)
happens on the writer thread, which owns the connection. A bad event or a failed
transaction is logged (rate-limited) and counted, and the writer carries on:
telemetry must never take the server down.

The writer checks, before each batch, that the file at ``path`` is still the one it has open: a database the user
deleted or moved away was written on unseen, and everything after was lost. It is made again at ``path`` and given
what it needs to make sense on its own (see ``_reopen``); ``reason`` says it happened.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from types import TracebackType
from typing import Any

from sqlite_utils import Database

from models.tokenizer import without_surrogates

from .events import (
    ANCHOR_EVENT_TYPES,
    EVENT_TYPES,
    DocumentClosed,
    DocumentOpened,
    DocumentSnapshot,
    EditEvent,
    Event,
    NotebookChanged,
    SessionEnded,
    SessionStarted,
    SettingsChanged,
    SuggestionAccepted,
    SuggestionCancelled,
    SuggestionEvent,
    SuggestionFailed,
    SuggestionGated,
    SuggestionGenerated,
    SuggestionKept,
    SuggestionRejected,
    SuggestionRequested,
    SuggestionShown,
    SuggestionUndone,
    event_type,
)
from .schema import migrate
from .text import ChunkedText, utf16_len

log = logging.getLogger("tact.telemetry")

BATCH_SIZE = 256  # events per transaction: amortizes the commit without holding the write lock long
# After an event, how long the writer gathers more before writing them in one transaction: a request's events (asked,
# gated, generated, shown) come while the model runs, and each written at once was a commit of its own on the other
# core (`tact bench serve --limit 200`: 891 transactions for 1,130 events, 0.53 s of writing; with the wait 105 and
# 0.12 s; no latency change beyond noise in an interleaved A/B: `docs/serving.md`). `flush` and `close` cut it short.
WRITE_GATHER_S = 0.25
BUSY_TIMEOUT_S = 5.0  # SQLite's wait for a lock another writer holds, before the writer tries the batch again
WARNING_INTERVAL_S = 60.0
MAX_HELD_EDITS = 1000  # edits kept per open document before they are applied to its text (see _OpenDocument)
# Anchors that carry text (a document's, or a notebook's cell list) waiting to be written: past either bound the
# recording stops (``TelemetryStore.record``). Far above what an editor opens in a burst (a notebook of 30,000 cells
# is 30,001); reached when another process holds the database's lock while the user works on.
MAX_WAITING_TEXT_ANCHORS = 100_000
MAX_WAITING_TEXT_CHARS = 1 << 26  # 67M characters: 64 MiB of ASCII, up to 4 times that in other scripts
# The anchors that bound covers; the others (a session's start and end, a settings change, a document's close) are a
# few hundred bytes each, one per session or settings change, and a close follows an opening that was queued.
TEXT_ANCHOR_TYPES: frozenset[type[Event]] = frozenset({DocumentOpened, DocumentSnapshot, NotebookChanged})
_STOP = object()
_HURRY = object()  # `flush` wants what waits written now: the writer stops gathering

# A later outcome replaces the stored one only if it ranks at least as high, so a
# stale reject or cancel cannot erase an acceptance, while an accept after a partial
# accept upgrades it.
_OUTCOME_RANK: dict[str | None, int] = {
    None: 0,
    "skipped": 1,
    "hidden": 1,
    "rejected": 2,
    "cancelled": 2,
    "failed": 2,
    "partially_accepted": 3,
    "accepted": 4,
}
_GATE_OUTCOMES = {(1, "skip"): "skipped", (2, "hide"): "hidden"}
_WRITE_ORDER = itertools.count(1)  # `seq`, for every store of the process (next() on a count is atomic in CPython)
_PAYLOAD_EXCLUDED = frozenset({"session_id", "suggestion_id", "ts"})


@dataclass(frozen=True)
class TelemetryStats:
    """Counters since the store was opened; ``failed`` events reached the writer but not the disk."""

    written: int = 0
    dropped: int = 0
    failed: int = 0
    reopened: int = 0  # times the database was made again at its path after it was deleted or replaced
    not_recorded: int = 0  # of ``dropped``: the events after the recording stopped (text anchors past their bound)


@dataclass
class _OpenDocument:
    """An open document as the events so far left it, for a database made again mid-session. Its edits are held and
    applied MAX_HELD_EDITS at a time (or when the text is needed) to its text held in chunks (``ChunkedText``): a
    batch costs the chunks its edits reach. Split into lines whole at each batch, a 50 MB file of short lines took
    half a gigabyte and seconds of the writer, and a shutdown meanwhile lost the session's end."""

    version: int
    language_id: str
    text: str | ChunkedText
    ts: float  # its latest open, edit or snapshot: any later edit of it is stamped no earlier
    edits: list[EditEvent] = field(default_factory=list)

    def apply_held(self) -> None:
        if not self.edits:
            return
        if isinstance(self.text, str):
            self.text = ChunkedText(self.text)
        for e in self.edits:
            try:
                self.text.replace(e.start_line, e.start_character, e.end_line, e.end_character, e.inserted_text)
            except Exception:  # a malformed edit (its write failed too) leaves the text as it was
                continue
        self.text.settle()
        self.edits = []

    def current(self) -> str:
        self.apply_held()
        return self.text if isinstance(self.text, str) else self.text.text()


def _json(value: Any) -> str:
    """Serialize a dict field; odd values (paths, enums) become strings rather than losing the event, and a
    non-finite number becomes null: JSON has no NaN, and SQLite's json_extract refuses a payload holding one."""
    try:
        text = json.dumps(value, default=str, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError:
        text = json.dumps(json_finite(value), default=str, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return without_surrogates(text)


def make_database_folder(database: Path) -> None:
    """Make the folder of a telemetry database where there is none, the user's alone (telemetry holds code)."""
    database.parent.mkdir(parents=True, exist_ok=True, mode=0o700)


def _storable(event: Event) -> Event:
    """``event`` with every text field as SQLite can store it; the event itself when they all are. A lone surrogate
    (half of a UTF-16 pair: an editor's buffer, and the JSON it sends, can hold one) has no UTF-8 encoding, so binding
    it raised and lost the whole event; for an opened document, every later edit of it with it. Each becomes U+FFFD
    (``without_surrogates``), one UTF-16 unit as well, so positions and lengths still hold. Each half alone, even next
    to its other half: halves sent in two messages were two U+FFFD in the opened text and the edit but one character
    in the snapshot at close, and a replay of the edits missed the snapshot."""
    changes: dict[str, str] = {}
    for f in fields(event):
        value = getattr(event, f.name)
        if isinstance(value, str) and (fixed := without_surrogates(value)) is not value:
            changes[f.name] = fixed
    return replace(event, **changes) if changes else event


def strict_json(figures: Any, indent: int | None = None) -> str:
    """``figures`` as JSON that strict readers take (JSON.parse, jq): every `--json` of a command prints this. A NaN or
    infinity, which Python writes as ``NaN`` and ``Infinity``, is written as null."""
    return json.dumps(json_finite(figures), indent=indent, allow_nan=False)


def json_finite(value: Any) -> Any:
    """``value`` with every NaN or infinity inside dicts, lists and tuples replaced by None, as JavaScript's
    JSON.stringify writes them: Python writes ``NaN`` and ``Infinity``, which strict JSON parsers refuse."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_finite(v) for v in value]
    return value


def _locked(exc: BaseException) -> bool:
    """SQLite's busy or locked error: another connection holds the lock, nothing is wrong with the events."""
    return isinstance(exc, sqlite3.OperationalError) and ("database is locked" in str(exc)
                                                           or "database table is locked" in str(exc))


def _text_chars(event: Event) -> int:
    """The characters a text anchor holds (``TEXT_ANCHOR_TYPES``): the queue's own bound on them counts these."""
    if isinstance(event, NotebookChanged):
        return sum(len(cell) for cell in event.cells if isinstance(cell, str))
    text = getattr(event, "text", None)
    return len(text) if isinstance(text, str) else 0


class WaitingTextBound:
    """How many text anchors (``TEXT_ANCHOR_TYPES``) wait, and their characters, against the bound on both: the
    store's queue while its writer is held up, or the events held while the editor's settings come. Its owner's lock
    guards it."""

    def __init__(self, anchors: int = MAX_WAITING_TEXT_ANCHORS, chars: int = MAX_WAITING_TEXT_CHARS) -> None:
        if anchors < 1 or chars < 1:
            raise ValueError("the text anchors' limits must be at least 1 (what waits has to be bounded)")
        self.anchors_limit, self.chars_limit = anchors, chars
        self.waiting = 0
        self.chars = 0

    def admit(self, event: Event) -> bool:
        """Count ``event`` (a text anchor) in; False, counting nothing, past either bound. A document larger than the
        bound still goes when nothing waits."""
        size = _text_chars(event)
        if self.waiting and (self.waiting >= self.anchors_limit or self.chars + size > self.chars_limit):
            return False
        self.waiting += 1
        self.chars += size
        return True

    def release(self, events: Iterable[object]) -> None:
        """Count out the text anchors among ``events``, written (or failed) now."""
        texts = [_text_chars(e) for e in events if type(e) in TEXT_ANCHOR_TYPES]
        self.waiting -= len(texts)
        self.chars -= sum(texts)


def _payload(event: SuggestionEvent) -> str:
    return _json({f.name: getattr(event, f.name) for f in fields(event) if f.name not in _PAYLOAD_EXCLUDED})


class TelemetryStore:
    """Append-only telemetry database at ``path``; see the module docstring for the threading model."""

    def __init__(self, path: str | os.PathLike[str], *, queue_size: int = 10_000, retention_days: float = 0,
                 text_anchor_limit: int = MAX_WAITING_TEXT_ANCHORS,
                 text_chars_limit: int = MAX_WAITING_TEXT_CHARS) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1 (the queue has to be bounded)")
        # text anchors waiting past these are not queued (see ``record``); the caller side's, under ``_lock``
        self._text = WaitingTextBound(text_anchor_limit, text_chars_limit)
        self.path = Path(path)
        self.retention_days = retention_days  # > 0: the writer first removes sessions last active before that
        # Opened here so that schema errors reach the caller; from the moment the thread
        # starts, only the writer thread touches the connection.
        self._db: Database | None = None
        self._file: tuple[int, int] | None = None  # (st_dev, st_ino) of the file open
        self._connect()
        self._reason: str | None = None  # what went wrong with the file while recording, or None (see ``reason``)
        self._failing: str | None = None  # the reason failing writes gave (``_reason`` until a batch is written)
        self.queue_size = queue_size  # stream events waiting past this are dropped (see ``record``)
        self._queue: queue.Queue[object] = queue.Queue()
        self._lock = threading.Lock()
        self._progress = threading.Condition(self._lock)
        self._closed = False
        self._enqueued = 0
        self._processed = 0
        self._written = 0
        self._dropped = 0
        self._failed = 0
        self._reopened = 0
        # Once past the bound on text anchors, the events not recorded since (``stopped``: the recording stopped there)
        self._not_recorded = 0
        self._stopped = False
        # Writer-thread state.
        self._remade = False  # whether the file open was made again mid-session
        self._lost = ""  # with no file open: how the last one was lost
        # What a database made again mid-session is given first (see _reopen).
        self._started: dict[str, SessionStarted] = {}
        self._settings: dict[str, SettingsChanged] = {}
        self._open: dict[tuple[str, str], _OpenDocument] = {}
        self._notebooks: dict[tuple[str, str], NotebookChanged] = {}  # each open notebook's latest cells
        self._last_warning = -math.inf
        self._suppressed_warnings = 0
        self._writers: dict[type[Event], Callable[[Any], None]] = {
            SessionStarted: self._write_session_started,
            SessionEnded: self._write_session_ended,
            SettingsChanged: self._write_settings_changed,
            DocumentOpened: self._write_document_opened,
            DocumentClosed: self._write_document_closed,
            DocumentSnapshot: self._write_document_snapshot,
            EditEvent: self._write_edit,
            NotebookChanged: self._write_notebook_changed,
            SuggestionRequested: self._write_requested,
            SuggestionGated: self._write_gated,
            SuggestionGenerated: self._write_generated,
            SuggestionShown: self._write_shown,
            SuggestionAccepted: self._write_accepted,
            SuggestionRejected: self._write_rejected,
            SuggestionUndone: self._write_undone,
            SuggestionKept: self._write_kept,
            SuggestionCancelled: lambda e: self._set_outcome(e, "cancelled"),
            SuggestionFailed: lambda e: self._set_outcome(e, "failed"),
        }
        self._thread = threading.Thread(target=self._run, name="tact-telemetry-writer", daemon=True)
        self._thread.start()

    # -- caller side -------------------------------------------------------------------

    def record(self, event: object) -> bool:
        """Queue ``event`` without blocking; False (and a counted drop) if it cannot be taken: the store is closed, or
        ``queue_size`` events wait and it is a stream event. An anchor (``ANCHOR_EVENT_TYPES``) is taken all the same:
        dropped, it lost every later row of its document, and a notebook opens with one per cell.

        Text anchors (``TEXT_ANCHOR_TYPES``) have a bound of their own (``text_anchor_limit`` waiting, or
        ``text_chars_limit`` characters of their text), or a writer held by another process's lock grew without end
        as the user went on opening files. Past it the recording stops: every later event is dropped but the
        sessions' ends, so that what was written is a whole beginning of the session, which replays as recorded
        (an opening dropped alone would leave its document's later edits applying to text the database lacks);
        ``reason`` says so for as long as the store is open."""
        with self._lock:
            kind = type(event)
            if self._closed or kind not in EVENT_TYPES or (self._stopped and kind is not SessionEnded):
                self._dropped += 1
                if self._stopped:
                    self._not_recorded += 1
                return False
            if kind not in ANCHOR_EVENT_TYPES and self._queue.qsize() >= self.queue_size:
                self._dropped += 1
                return False
            if kind in TEXT_ANCHOR_TYPES and not self._text.admit(event):
                self._stopped = True
                self._dropped += 1
                self._not_recorded += 1
                log.warning("telemetry: %s is held up (another writer holding its lock): %d documents or %d "
                            "characters of text wait; this session's recording stops", self.path,
                            self._text.waiting, self._text.chars)
                return False
            self._queue.put_nowait(event)
            self._enqueued += 1
            return True

    @property
    def reason(self) -> str | None:
        """What went wrong with the file while recording, then whether the recording stopped (the session's recording
        is partial for good); None while all is well."""
        with self._lock:
            stopped, dropped = self._stopped, self._not_recorded
        lost = (f"{self.path} was held up (another writer holding its lock) while more than {self._text.anchors_limit} "
                f"documents or {self._text.chars_limit} characters of text waited: this session's recording stopped "
                f"there ({dropped} events not recorded); the server records again in its next session"
                ) if stopped else None
        return "; ".join(r for r in (self._reason, lost) if r) or None

    @reason.setter
    def reason(self, value: str | None) -> None:
        self._reason = value  # the file's part: the stop's part is said as long as the store is open

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every event recorded before this call is written (or failed); False on timeout."""
        with self._progress:
            target = self._enqueued
            if self._processed >= target:
                return True
        self._queue.put_nowait(_HURRY)
        with self._progress:
            return self._progress.wait_for(lambda: self._processed >= target, timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Flush, stop the writer and close the database; later calls do nothing."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if not self.flush(timeout):
            # The daemon writer is stuck (e.g. a lock held elsewhere); don't hang shutdown on it.
            log.warning("telemetry writer did not finish within %.1fs; unwritten events are lost", timeout)
            return
        self._queue.put_nowait(_STOP)  # the queue is drained and closed to record()
        self._thread.join(timeout)
        stats = self.stats
        if stats.dropped or stats.failed:
            log.warning("telemetry: %d events dropped and %d failed to write this run", stats.dropped, stats.failed)

    @property
    def stats(self) -> TelemetryStats:
        with self._lock:
            return TelemetryStats(written=self._written, dropped=self._dropped, failed=self._failed,
                                  reopened=self._reopened, not_recorded=self._not_recorded)

    def __enter__(self) -> TelemetryStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- writer thread -----------------------------------------------------------------

    def _run(self) -> None:
        try:
            if self.retention_days > 0:
                self._prune()
            while True:
                batch = self._gather()
                stopping = bool(batch) and batch[-1] is _STOP  # close() queues it last, after record() is shut
                if stopping:
                    batch.pop()
                written, skipped = self._write_batch(batch) if batch else (0, 0)
                with self._progress:
                    self._text.release(batch)
                    self._written += written
                    self._dropped += skipped
                    self._failed += len(batch) - written - skipped
                    self._processed += len(batch)
                    self._progress.notify_all()
                if stopping:
                    return
        finally:
            if self._db is not None:
                self._db.close()

    def _gather(self) -> list:
        """The next batch: the events waiting, and those that come within WRITE_GATHER_S of the first, up to
        BATCH_SIZE; at once when `flush` hurries it or `close` stops it (_STOP, then, last)."""
        first = self._queue.get()
        if first is _HURRY:  # nothing waits: what it asked for is written
            return []
        batch = [first]
        deadline = time.monotonic() + WRITE_GATHER_S
        while len(batch) < BATCH_SIZE and batch[-1] is not _STOP:
            try:
                event = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if event is _HURRY:
                break
            batch.append(event)
        return batch

    def _prune(self) -> None:
        """Remove the sessions older than ``retention_days`` (``prune_sessions``), before any event is written; a
        failure is logged and leaves them."""
        try:
            sessions, rows = prune_sessions(self._db.conn, self.retention_days * 86_400.0)
        except sqlite3.Error as exc:
            log.warning("telemetry: sessions older than %g days were not removed from %s: %s", self.retention_days,
                        self.path, exc)
            return
        if sessions:
            log.warning("telemetry: removed %d sessions (%d rows) last active more than %g days ago from %s "
                        "(tact.telemetryRetentionDays)", sessions, rows, self.retention_days, self.path)

    def _connect(self) -> None:
        """Open (creating if need be) the database at ``path`` and note which file it is. One made here is the user's
        alone, as its folder when made here (it holds the text of every document opened: made by SQLite, it and its
        -wal and -shm were readable by every user of the machine); SQLite gives those two the database's mode."""
        make_database_folder(self.path)
        try:
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except OSError:  # one there already (a database, or a file the checks below refuse), or no place for a file
            pass  # (a directory's name, a device): sqlite3 says why below
        conn = sqlite3.connect(self.path, check_same_thread=False, timeout=BUSY_TIMEOUT_S)
        try:
            db = Database(conn, execute_plugins=False)
            migrate(db)
            db.enable_wal()
            db.execute("PRAGMA synchronous=NORMAL")
            st = os.stat(self.path)
        except BaseException:
            conn.close()
            raise
        self._db, self._file = db, (st.st_dev, st.st_ino)

    def _moved(self) -> str | None:
        """How the file at ``path`` stopped being the one open (one stat a batch), or None while it is."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return "was deleted or moved away"
        except OSError:
            return None  # cannot tell (e.g. a folder made unreadable): keep writing where we were
        if (st.st_dev, st.st_ino) != self._file:
            return "was deleted and replaced"
        return None

    def _reopen(self, how: str) -> bool:
        """Make the database at ``path`` again, giving it each running session's start and latest settings, each
        open document as it is now and each open notebook's cells, as a server does when its database moves: later edits need their document's text
        to apply to. Whether the store writes there now; until it can, each batch is lost and tried again."""
        if self._db is not None:
            self._db.close()  # first: it checkpoints into the old file, not into the new one
            self._db = None
            if not self.path.exists():
                for suffix in ("-wal", "-shm"):  # the deleted database's, whose frames are not the new file's
                    Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        try:
            self._connect()
            assert self._db is not None
            # Each open stamped with its document's latest change, not the latest event: an edit is logged once
            # finished, stamped with its last keystroke, and a request after that keystroke may have been logged
            # first; stamped after it, the edit still to come sorted before its document was open.
            again: list[Event] = [*self._started.values(), *self._settings.values(), *(
                DocumentOpened(sid, uri, doc.version, doc.language_id, doc.current(), ts=doc.ts)
                for (sid, uri), doc in self._open.items()), *self._notebooks_again()]
            with self._db.atomic():
                for event in again:
                    try:
                        with self._db.atomic():  # as in a batch, one bad event (its first write failed too) alone
                            self._write_event(event)
                    except Exception as exc:
                        if not self._db.conn.in_transaction or _locked(exc):
                            raise
                        self._warn(f"dropped a {event_type(event)} event written again", exc)
        except Exception as exc:
            if self._db is not None:
                self._db.close()
                self._db = None
            self._lost = how
            self._reason = f"the database {self.path} {how} while recording and cannot be made again: {exc}"
            self._warn("the database cannot be made again", exc)
            return False
        self._remade = True
        self._reason = f"the database {self.path} {how} while recording; recording into a new one there"
        log.warning("telemetry: %s", self._reason)
        with self._lock:
            self._reopened += 1
        return True

    def _notebooks_again(self) -> list[NotebookChanged]:
        """Each open notebook's opening, for a database made again: its cells are opened there as documents, and
        without it a replay read them as files, each without the cells above it. Stamped no earlier than its cells'
        openings, which it follows."""
        again = []
        for (sid, uri), nb in self._notebooks.items():
            ts = max([nb.ts, *(doc.ts for cell in nb.cells if (doc := self._open.get((sid, cell))) is not None)])
            again.append(NotebookChanged(sid, uri, nb.notebook_type, nb.version, "open", nb.cells, ts=ts))
        return again

    def _track(self, event: Event) -> None:
        """Keep what ``_reopen`` needs: sessions running, their latest settings, open documents and notebooks."""
        sid = event.session_id
        if isinstance(event, SessionStarted):
            self._started.setdefault(sid, event)
        elif isinstance(event, SessionEnded):
            self._started.pop(sid, None)
            self._settings.pop(sid, None)
            for key in [k for k in self._open if k[0] == sid]:
                del self._open[key]
            for key in [k for k in self._notebooks if k[0] == sid]:
                del self._notebooks[key]
        elif isinstance(event, SettingsChanged):
            self._settings[sid] = event
        elif isinstance(event, DocumentOpened):
            self._open[(sid, event.uri)] = _OpenDocument(event.version, event.language_id, event.text, event.ts)
        elif isinstance(event, DocumentSnapshot):
            if (doc := self._open.get((sid, event.uri))) is not None:
                doc.version, doc.text, doc.edits = event.version, event.text, []
                doc.ts = max(doc.ts, event.ts)
        elif isinstance(event, DocumentClosed):
            self._open.pop((sid, event.uri), None)
        elif isinstance(event, NotebookChanged):
            if event.kind == "close":
                self._notebooks.pop((sid, event.notebook_uri), None)
            else:
                self._notebooks[(sid, event.notebook_uri)] = event
        elif isinstance(event, EditEvent):
            if (doc := self._open.get((sid, event.uri))) is not None:
                doc.version = event.version
                doc.ts = max(doc.ts, event.ts)
                doc.edits.append(event)
                if len(doc.edits) >= MAX_HELD_EDITS:
                    doc.apply_held()

    def _kept_out(self, event: Event) -> bool:
        """A suggestion's events where its row is another session's (feedback for an id an earlier session issued:
        they rewrote that session's outcome after its end); and in a database made again, a suggestion's later events
        when its request went into the old one: alone they made a suggestion with an outcome and nothing asked for."""
        if not isinstance(event, SuggestionEvent):
            return False
        assert self._db is not None
        row = self._db.execute("SELECT session_id FROM suggestions WHERE id = ?", [event.suggestion_id]).fetchone()
        if row is not None:
            return row[0] != event.session_id
        return self._remade and not isinstance(event, SuggestionRequested)

    def _write_batch(self, batch: list[Event]) -> tuple[int, int]:
        """Write ``batch`` in one transaction; returns how many events landed and how many were kept out on purpose
        (``_kept_out``). A database another writer keeps locked
        past SQLite's wait is waited for, the batch tried again (meanwhile the queue takes new events, and drops them
        when full): dropped as a bad event, each event that met the lock was lost from the middle of the stream."""
        try:
            how = self._moved() if self._db is not None else self._lost
            ready = how is None or self._reopen(how)
        except Exception as exc:  # never let a check of the file stop the writer
            self._warn("checking the database file failed", exc)
            ready = self._db is not None
        try:
            return self._write_batch_into(batch) if ready else (0, 0)
        finally:
            for event in batch:
                try:
                    self._track(event)
                except Exception as exc:
                    self._warn(f"could not follow a {event_type(event)} event", exc)

    def _write_batch_into(self, batch: list[Event]) -> tuple[int, int]:
        assert self._db is not None
        while True:
            written = skipped = failed = 0
            last_failure: BaseException | None = None
            try:
                with self._db.atomic():
                    for event in batch:
                        try:
                            if self._kept_out(event):
                                skipped += 1
                                continue
                            with self._db.atomic():  # a savepoint: one bad event doesn't sink the batch
                                self._write_event(event)
                            written += 1
                        except Exception as exc:
                            if not self._db.conn.in_transaction or _locked(exc):
                                raise  # SQLite rolled the whole transaction back (e.g. disk full), or a lock
                            self._warn(f"dropped a {event_type(event)} event", exc)
                            failed, last_failure = failed + 1, exc
            except Exception as exc:
                if _locked(exc):
                    self._warn("the database is locked by another writer, waiting for it", exc)
                    if self._reason is None or self._reason == self._failing:  # said in the status until it writes
                        self._reason = self._failing = (f"{self.path} is locked by another writer: waiting for it "
                                                        "(new events wait in the queue, and are lost when it is full)")
                    continue
                self._warn(f"lost a batch of {len(batch)} events", exc)
                self._writes_fail(exc)
                return 0, 0
            if failed and not written:  # every event of the batch failed alone (a read-only file)
                self._writes_fail(last_failure)
            elif written and self._failing is not None:  # writing again: the failure's reason goes, another one
                if self._reason == self._failing:           # stays (a database made again while recording)
                    self._reason = None
                self._failing = None
            return written, skipped

    def _writes_fail(self, exc: BaseException | None) -> None:
        """Say in the status (tact/status, the extension's tooltip) that events are being lost: a read-only file or
        a full disk lost every event while the status said all was well (a rate-limited log line alone said it)."""
        self._reason = self._failing = (f"writes to {self.path} fail ({type(exc).__name__}: {exc}); events are lost "
                                        "meanwhile")

    def _warn(self, what: str, exc: BaseException) -> None:
        """Log a write failure at most once per interval; never includes event contents."""
        now = time.monotonic()
        if now - self._last_warning < WARNING_INTERVAL_S:
            self._suppressed_warnings += 1
            return
        suppressed = f" ({self._suppressed_warnings} similar warnings suppressed)" if self._suppressed_warnings else ""
        log.warning("telemetry write failed, %s: %s: %s%s", what, type(exc).__name__, exc, suppressed)
        self._last_warning = now
        self._suppressed_warnings = 0

    def _next_seq(self) -> int:
        """Write order; breaks ``ts`` ties when a session's events are merged for replay. One count for the process:
        a session that recorded into a database, then another, then the first again, restarted it at 1 in each, and
        its rows in the first repeated the numbers they had (A, B, A: 1, 3, 1, 4, 5)."""
        return next(_WRITE_ORDER)

    def _write_event(self, event: Event) -> None:
        event = _storable(event)
        # Rows are created on first sight, so events whose start was dropped still land.
        self._db.execute(
            "INSERT OR IGNORE INTO sessions (id, started_at) VALUES (?, ?)", [event.session_id, event.ts]
        )
        if isinstance(event, SuggestionEvent):
            self._db.execute(
                "INSERT INTO suggestion_events (seq, session_id, suggestion_id, ts, type, payload)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [self._next_seq(), event.session_id, event.suggestion_id, event.ts, event_type(event), _payload(event)],
            )
            self._db.execute(
                "INSERT OR IGNORE INTO suggestions (id, session_id) VALUES (?, ?)",
                [event.suggestion_id, event.session_id],
            )
        self._writers[type(event)](event)

    def _write_session_started(self, e: SessionStarted) -> None:
        # A session whose recording comes back to this database (telemetry turned off and on, or its database moved
        # away and back) starts here again: it keeps its first start, and the end its move away logged no longer
        # holds (it said a session still running, or one that later died, had ended before its last events).
        self._db.execute(
            # the earliest of the start and the first event: the start is logged once the model has loaded, after the
            # documents opened and edited meanwhile, which then came before their session's start
            "UPDATE sessions SET started_at = MIN(COALESCE(started_at, ?), ?), client_name = ?, client_version = ?,"
            " server_version = ?, workspace = ?, settings = ?, models = ? WHERE id = ? AND server_version IS NULL",
            [e.ts, e.ts, e.client_name, e.client_version, e.server_version, e.workspace,
             _json(e.settings), _json(e.models), e.session_id],
        )
        self._db.execute("UPDATE sessions SET ended_at = NULL, end_reason = NULL WHERE id = ?", [e.session_id])

    def _write_session_ended(self, e: SessionEnded) -> None:
        self._db.execute(
            "UPDATE sessions SET ended_at = ?, end_reason = ? WHERE id = ?", [e.ts, e.reason, e.session_id]
        )

    def _write_settings_changed(self, e: SettingsChanged) -> None:
        self._db.execute(
            "INSERT INTO settings_changes (seq, session_id, ts, settings) VALUES (?, ?, ?, ?)",
            [self._next_seq(), e.session_id, e.ts, _json(e.settings)],
        )

    def _insert_document(
        self, e: Event, kind: str, uri: str, version: int | None, language_id: str | None, text: str | None
    ) -> None:
        self._db.execute(
            "INSERT INTO documents (seq, session_id, uri, version, language_id, ts, kind, text)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [self._next_seq(), e.session_id, uri, version, language_id, e.ts, kind, text],
        )

    def _write_document_opened(self, e: DocumentOpened) -> None:
        self._insert_document(e, "open", e.uri, e.version, e.language_id, e.text)

    def _write_document_snapshot(self, e: DocumentSnapshot) -> None:
        self._insert_document(e, "snapshot", e.uri, e.version, None, e.text)

    def _write_document_closed(self, e: DocumentClosed) -> None:
        self._insert_document(e, "close", e.uri, None, None, None)

    def _write_edit(self, e: EditEvent) -> None:
        self._db.execute(
            "INSERT INTO edits (seq, session_id, uri, version, ts_start, ts, start_line, start_character,"
            " end_line, end_character, removed_text, inserted_text, keystrokes)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [self._next_seq(), e.session_id, e.uri, e.version, e.ts_start, e.ts, e.start_line,
             e.start_character, e.end_line, e.end_character, e.removed_text, e.inserted_text, e.keystrokes],
        )

    def _write_notebook_changed(self, e: NotebookChanged) -> None:
        self._db.execute(
            "INSERT INTO notebooks (seq, session_id, ts, notebook_uri, notebook_type, version, kind, cells)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [self._next_seq(), e.session_id, e.ts, e.notebook_uri, e.notebook_type, e.version, e.kind,
             _json(list(e.cells))],
        )

    def _write_requested(self, e: SuggestionRequested) -> None:
        self._db.execute(
            "UPDATE suggestions SET kind = ?, uri = ?, version = ?, line = ?, character = ?, trigger = ?,"
            " requested_at = ?, context = ? WHERE id = ?",
            [e.kind, e.uri, e.version, e.line, e.character, e.trigger, e.ts, _json(e.context), e.suggestion_id],
        )

    def _write_gated(self, e: SuggestionGated) -> None:
        self._db.execute(
            "INSERT INTO decisions (session_id, suggestion_id, ts, stage, decision, score, threshold,"
            " model_version, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [e.session_id, e.suggestion_id, e.ts, e.stage, e.decision, e.score, e.threshold,
             e.model_version, _json(e.details)],
        )
        outcome = _GATE_OUTCOMES.get((e.stage, e.decision))
        if outcome is not None:
            self._set_outcome(e, outcome)

    def _write_generated(self, e: SuggestionGenerated) -> None:
        self._db.execute(
            "UPDATE suggestions SET text = ?, model = ?, policy = ?, latency_ms = ?, tokens = ?,"
            " layers_per_token = ?, stop_reason = ?, generated_at = ? WHERE id = ?",
            [e.text, e.model, e.policy, e.latency_ms, e.tokens, e.layers_per_token, e.stop_reason, e.ts,
             e.suggestion_id],
        )

    def _write_shown(self, e: SuggestionShown) -> None:
        self._db.execute(
            "UPDATE suggestions SET shown_at = COALESCE(shown_at, ?) WHERE id = ?", [e.ts, e.suggestion_id]
        )

    def _write_accepted(self, e: SuggestionAccepted) -> None:
        if self._set_outcome(e, "partially_accepted" if e.partial else "accepted"):  # a rejection before it is over
            self._db.execute("UPDATE suggestions SET reject_reason = NULL WHERE id = ?", [e.suggestion_id])
        # accepted again after it was taken back (the editor offered it again after the undo); what was kept of an
        # accept before is no figure of this one (its own comes when its watch ends)
        self._db.execute("UPDATE suggestions SET kept_length = NULL, undone_at = CASE WHEN undone_at <= ? THEN NULL"
                         " ELSE undone_at END WHERE id = ?", [e.ts, e.suggestion_id])
        length = e.accepted_length
        if length is None and not e.partial:
            # A whole accept with no length (an id the server's ledger no longer held) took all of the text: after a
            # partial accept, the partial length stayed, and the report counted that much saved.
            (text,) = self._db.execute("SELECT text FROM suggestions WHERE id = ?", [e.suggestion_id]).fetchone()
            length = utf16_len(text) if isinstance(text, str) else None
        if length is not None:
            # Accepted text only grows, whatever order partial accepts are reported in.
            self._db.execute(
                "UPDATE suggestions SET accepted_length = MAX(COALESCE(accepted_length, 0), ?) WHERE id = ?",
                [length, e.suggestion_id],
            )

    def _write_undone(self, e: SuggestionUndone) -> None:
        # taken back after an accept: the outcome stays (its history), the counts of acceptance read ``undone_at``
        self._db.execute("UPDATE suggestions SET undone_at = COALESCE(undone_at, ?) WHERE id = ?"
                         " AND outcome IN ('accepted', 'partially_accepted')", [e.ts, e.suggestion_id])

    def _write_kept(self, e: SuggestionKept) -> None:
        # what survived of an accept: characters saved count it; an accept taken back has none (it saved nothing)
        self._db.execute("UPDATE suggestions SET kept_length = ? WHERE id = ? AND undone_at IS NULL"
                         " AND outcome IN ('accepted', 'partially_accepted')", [e.kept_length, e.suggestion_id])

    def _write_rejected(self, e: SuggestionRejected) -> None:
        # How the suggestion, or the rest of a partially accepted one, was turned down; never on an accepted one (a
        # suggestion the server superseded and the user then accepted kept `superseded` beside `accepted`).
        self._set_outcome(e, "rejected")
        self._db.execute("UPDATE suggestions SET reject_reason = ? WHERE id = ? AND outcome IS NOT 'accepted'",
                         [e.reason, e.suggestion_id])

    def _set_outcome(self, e: SuggestionEvent, outcome: str) -> bool:
        """Set ``outcome`` unless the suggestion has one that ranks higher; whether it did."""
        (current,) = self._db.execute("SELECT outcome FROM suggestions WHERE id = ?", [e.suggestion_id]).fetchone()
        if _OUTCOME_RANK.get(current, 0) <= _OUTCOME_RANK[outcome]:
            self._db.execute(
                "UPDATE suggestions SET outcome = ?, outcome_at = ? WHERE id = ?", [outcome, e.ts, e.suggestion_id]
            )
            return True
        return False


def prune_sessions(conn: sqlite3.Connection, older_than_s: float, now: float | None = None) -> tuple[int, int]:
    """Delete every session last active (its end; else its start and its latest row) more than ``older_than_s``
    seconds before ``now``, with all its rows in every table that has a ``session_id``; (sessions, rows) removed.

    Whole sessions go, so each one kept still replays and trains as it was recorded. One transaction a session, so a
    long clean-up does not hold the write lock from another server writing the same file. Freed pages are reused by
    later rows; the file itself shrinks only with a VACUUM."""
    cutoff = (time.time() if now is None else now) - older_than_s
    old = conn.execute("SELECT id, ended_at IS NULL FROM sessions WHERE COALESCE(ended_at, started_at) < ?",
                       [cutoff]).fetchall()
    if not old:  # the usual start: nothing more to read
        return 0, 0
    columns = {name: {col[1] for col in conn.execute(f'PRAGMA table_info("{name}")')}
               for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name != "
                                           "'sessions' ORDER BY name")}
    tables = [name for name, cols in columns.items() if "session_id" in cols]

    def active_since_cutoff(sid: str) -> bool:
        """A session with no end may still be running (another editor window's) or have ended unrecorded a minute
        ago: its start said nothing of that, and a long one was deleted while its server went on writing."""
        return any(conn.execute(f'SELECT 1 FROM "{table}" WHERE session_id = ? AND ts >= ? LIMIT 1',
                                [sid, cutoff]).fetchone() is not None
                   for table in tables if "ts" in columns[table])

    old = [sid for sid, unended in old if not (unended and active_since_cutoff(sid))]
    if not old:
        return 0, 0
    rows = 0
    for sid in old:
        conn.execute("BEGIN IMMEDIATE")
        try:
            for table in tables:
                rows += conn.execute(f'DELETE FROM "{table}" WHERE session_id = ?', [sid]).rowcount
            rows += conn.execute("DELETE FROM sessions WHERE id = ?", [sid]).rowcount
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return len(old), rows


class NullStore:
    """Stands in for an unusable database: same interface, records nothing."""

    def __init__(self, reason: str = "") -> None:
        self.reason = reason
        self._lock = threading.Lock()
        self._dropped = 0

    def record(self, event: object) -> bool:
        with self._lock:
            self._dropped += 1
        return False

    def flush(self, timeout: float = 5.0) -> bool:
        return True

    def close(self, timeout: float = 5.0) -> None:
        pass

    @property
    def stats(self) -> TelemetryStats:
        with self._lock:
            return TelemetryStats(dropped=self._dropped)

    def __enter__(self) -> NullStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def open_store(path: str | os.PathLike[str], *, queue_size: int = 10_000,
               retention_days: float = 0) -> TelemetryStore | NullStore:
    """Open the store, or fall back to a ``NullStore`` (with a WARNING saying why) if the file is unusable.
    ``retention_days`` > 0: sessions last active longer ago are removed first (``prune_sessions``)."""
    try:
        return TelemetryStore(path, queue_size=queue_size, retention_days=retention_days)
    except Exception as exc:
        log.warning("telemetry disabled: cannot use database %s: %s", path, exc)
        return NullStore(reason=f"cannot use database {path}: {exc}")
