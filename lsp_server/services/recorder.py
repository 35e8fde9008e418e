"""This server session's telemetry: turns what the server sees into `telemetry` events.

Every call is fire-and-forget: the store's queue never blocks, and a failure here is logged and
swallowed so telemetry can never break completion.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import uuid
from collections import OrderedDict
from typing import Any, Callable, Sequence, TypeVar

from lsp_server.services.documents import EditRecord
from lsp_server.services.ledger import Ended
from lsp_server.services.scheduler import Cancelled, CancelToken
from telemetry import (
    ANCHOR_EVENT_TYPES,
    DocumentClosed,
    DocumentOpened,
    DocumentSnapshot,
    EditEvent,
    NotebookChanged,
    NullStore,
    SessionEnded,
    SessionStarted,
    SettingsChanged,
    SuggestionAccepted,
    SuggestionCancelled,
    SuggestionEvent,
    SuggestionFailed,
    SuggestionGated,
    SuggestionGenerated,
    SuggestionRejected,
    SuggestionRequested,
    SuggestionShown,
    SuggestionUndone,
    TelemetryStats,
    open_store,
)
from telemetry.events import SuggestionKept
from telemetry.store import TEXT_ANCHOR_TYPES, WaitingTextBound

log = logging.getLogger("tact.telemetry")
T = TypeVar("T")
MAX_TRACKED_SUGGESTIONS = 2000  # as many as the ledger keeps: feedback comes back for those


class HeldStore:
    """Holds a session's first events while the editor's settings are still on their way (workspace/configuration):
    they go to the database those settings name, or nowhere if they turn telemetry off. Recording them under the
    initialize settings wrote the code of documents opened meanwhile where the user had said no."""

    def __init__(self, limit: int = 10_000, text: WaitingTextBound | None = None) -> None:
        self.events: list = []
        self.limit = limit
        self._text = text or WaitingTextBound()
        self._dropped = 0
        self._not_recorded = 0  # once past the text anchors' bound: every event since (the recording stopped there)

    def record(self, event) -> bool:
        """As the store's queue: past ``limit`` only the anchors are held (a notebook opens with one per cell), and
        past the text anchors' bound (an editor that never says `initialized` while documents open) the recording
        stops, so that what is held stays a whole beginning of the session (`TelemetryStore.record`)."""
        kind = type(event)
        if ((self.stopped and kind is not SessionEnded)
                or (not self.stopped and kind in TEXT_ANCHOR_TYPES and not self._text.admit(event))):
            self._dropped += 1
            self._not_recorded += 1
            return False
        if len(self.events) >= self.limit and kind not in ANCHOR_EVENT_TYPES:
            self._dropped += 1
            return False
        self.events.append(event)
        return True

    @property
    def stopped(self) -> bool:
        return self._not_recorded > 0

    @property
    def reason(self) -> str | None:
        if not self.stopped:
            return None
        return (f"more than {self._text.anchors_limit} documents or {self._text.chars_limit} characters of text were "
                f"opened before the editor's settings came: this session's recording stopped there "
                f"({self._not_recorded} events not recorded); the server records again in its next session")

    def flush(self, timeout: float = 5.0) -> bool:
        return True

    def close(self, timeout: float = 5.0) -> None:
        self.events = []

    @property
    def stats(self) -> TelemetryStats:
        return TelemetryStats(dropped=self._dropped, not_recorded=self._not_recorded)


class SessionRecorder:
    def __init__(self, store=None) -> None:
        self.session_id = uuid.uuid4().hex
        self.store = store if store is not None else NullStore("telemetry is off")
        self.recorded = False  # whether this session has sent the store any event
        self.started = False  # whether it has sent the store its start
        # Documents whose opening the store holds: the others' edits, snapshots and closes have no text to apply
        # to there, and stay out of it (the server gives a new store every document open at that moment).
        self.documents: set[str] = set()
        # A suggestion's events go where its request went: ids requested in this store (the newest), and ids whose
        # events stay out of it (requested in a document it does not hold, or in the store recorded into before).
        self.requested_here: OrderedDict[str, None] = OrderedDict()
        self.kept_out: OrderedDict[str, None] = OrderedDict()  # the newest, as many as a ledger holds and more
        # Suggestions requested in this store whose life has not ended there (no outcome but a partial accept yet, nor
        # a generation with nothing to show): `end_unended` ends them before the store closes or is left.
        self.unended: OrderedDict[str, None] = OrderedDict()
        # The time events are recorded at: None, the wall clock (each event's own); a simulation's pinned clock
        # (``clientClock``), so its session is recorded on the simulated programmer's timeline.
        self.clock: Callable[[], float] | None = None
        self.latest_ts = -math.inf  # with ``clock``: the latest time recorded or pinned (``accepts_pin``)
        self.refused_pins = 0
        # The inference worker records while the event loop moves the recording (`switch`): a suggestion's event
        # judged by the old store's ids went into the new one (a row with no request), and a request that came as the
        # old store's open suggestions were ended stayed open there for good. Reentrant: `switch` ends them by
        # recording.
        self._lock = threading.RLock()

    def accepts_pin(self, ts: float) -> bool:
        """Whether the time a client pins may be recorded: with ``clock``, the recorded timeline only goes on (a pin
        before what was already recorded put a request before its document's opening, and replay dropped it)."""
        if self.clock is None:
            return True
        if ts < self.latest_ts:
            self.refused_pins += 1
            return False
        self.latest_ts = ts
        return True

    def switch(self, store):
        """Record into ``store`` from now on; returns the store recorded into before (the caller closes it). Events
        held while the settings were coming go into ``store`` first, unless it records nothing."""
        with self._lock:
            old = self.store
            if isinstance(old, HeldStore) and not isinstance(store, NullStore):
                self.store = store
                for event in old.events:
                    self.store.record(event)
                if old.stopped:  # each document missed edits since the stop, or its opening: all stay out
                    self.documents = set()
                return old
            self.end_unended("telemetryMoved")  # the rest of their events stay out of the new store
            self.store, self.recorded, self.started = store, False, False
            self.documents = set()
            self._keep_out(*self.requested_here)
            self.requested_here = OrderedDict()
            return old

    def end_unended(self, reason: str) -> None:
        """Log cancelled (``reason``) every suggestion of this store still without an outcome: the store closes (the
        session ends: ``sessionEnded``), or is left for another (``telemetryMoved``). A request still generating, or a
        suggestion on screen, ended without one there, and its row said for good that none was known yet."""
        with self._lock:
            for suggestion_id in list(self.unended):
                self.cancelled(suggestion_id, reason)
            self.unended.clear()

    def _belongs(self, event) -> bool:
        """Whether a suggestion event goes to this store (see ``requested_here``)."""
        if isinstance(event, SuggestionRequested):
            if event.uri not in self.documents:
                self._keep_out(event.suggestion_id)
                return False
            self.requested_here[event.suggestion_id] = None
            while len(self.requested_here) > MAX_TRACKED_SUGGESTIONS:
                self.requested_here.popitem(last=False)
            return True
        return event.suggestion_id not in self.kept_out

    def _follow(self, event) -> None:
        """Keep ``unended`` up to date with a suggestion event this store gets."""
        sid = event.suggestion_id
        if isinstance(event, SuggestionRequested):
            self.unended[sid] = None
            while len(self.unended) > MAX_TRACKED_SUGGESTIONS:
                self.unended.popitem(last=False)
        elif (isinstance(event, (SuggestionRejected, SuggestionCancelled, SuggestionFailed))
              or (isinstance(event, SuggestionAccepted) and not event.partial)
              or (isinstance(event, SuggestionGated) and event.decision in ("skip", "hide"))
              or (isinstance(event, SuggestionGenerated) and not event.text)):
            self.unended.pop(sid, None)

    def _keep_out(self, *suggestion_ids: str) -> None:
        """Keep these suggestions' events out of the store, forgetting the oldest kept out beyond twice what the ledger
        holds: a set grew by a request for the rest of a session once telemetry had moved (off, or another database)
        while a document stayed open."""
        for suggestion_id in suggestion_ids:
            self.kept_out[suggestion_id] = None
            self.kept_out.move_to_end(suggestion_id)
        while len(self.kept_out) > 2 * MAX_TRACKED_SUGGESTIONS:
            self.kept_out.popitem(last=False)

    @classmethod
    def open(cls, path, enabled: bool = True, retention_days: float = 0) -> "SessionRecorder":
        return cls(open_store(path, retention_days=retention_days) if enabled else NullStore("telemetry is off"))

    @property
    def database(self) -> str | None:
        path = getattr(self.store, "path", None)
        return str(path) if path else None

    @property
    def telemetry_reason(self) -> str | None:
        """Why nothing is recorded (telemetry off, or its database unusable), or what happened to the database while
        recording (deleted, and made again or not); None while all is well."""
        return getattr(self.store, "reason", None)

    @property
    def stats(self) -> dict:
        """Telemetry events written, dropped and failed since the store opened."""
        return dataclasses.asdict(self.store.stats)

    def _record(self, event) -> None:
        with self._lock:
            if isinstance(event, SuggestionEvent):
                if not self._belongs(event):
                    return
                self._follow(event)
            if self.clock is not None:
                if not isinstance(event, EditEvent):  # an edit carries its keystrokes' times
                    event = dataclasses.replace(event, ts=self.clock())
                self.latest_ts = max(self.latest_ts, event.ts)
            self.recorded = True
            try:
                self.store.record(event)
            except Exception:  # the store promises not to raise; be sure anyway
                log.warning("telemetry event dropped", exc_info=True)

    def session_started(self, client_name: str, client_version: str, server_version: str, settings: dict,
                        models: dict, workspace: str | None) -> None:
        self._record(SessionStarted(self.session_id, client_name, client_version, server_version, settings, models, workspace))
        self.started = True

    def session_ended(self, reason: str) -> None:
        """Nothing for a store this session never wrote to: its end alone would make an empty session there."""
        if self.recorded:
            self._record(SessionEnded(self.session_id, reason))

    def settings_changed(self, settings: dict) -> None:
        self._record(SettingsChanged(self.session_id, settings))

    def document_opened(self, uri: str, version: int, language_id: str, text: str) -> None:
        with self._lock:
            self.documents.add(uri)
            self._record(DocumentOpened(self.session_id, uri, version, language_id, text))

    def document_closed(self, uri: str) -> None:
        with self._lock:
            if uri in self.documents:
                self.documents.discard(uri)
                self._record(DocumentClosed(self.session_id, uri))

    def notebook_changed(self, notebook_uri: str, notebook_type: str, version: int, kind: str,
                         cells: Sequence[str]) -> None:
        """Which cell documents form the notebook now, in order (``kind``: open, change or close)."""
        self._record(NotebookChanged(self.session_id, notebook_uri, notebook_type, version, kind, tuple(cells)))

    def edits(self, records: list[EditRecord]) -> None:
        with self._lock:
            for r in records:
                if r.uri not in self.documents:
                    continue
                self._record(EditEvent(self.session_id, r.uri, r.version, r.start.line, r.start.character,
                                       r.end.line, r.end.character, r.removed_text, r.inserted_text, r.ts_start,
                                       r.keystrokes, ts=r.ts_end))

    def requested(self, suggestion_id: str, kind: str, uri: str, version: int, line: int, character: int,
                  trigger: str, context: dict[str, Any], pending_edit: EditRecord | None = None) -> None:
        self._record(SuggestionRequested(self.session_id, suggestion_id, kind, uri, version, line, character, trigger, context,
                                         pending_edit_dict(pending_edit)))

    def document_snapshot(self, uri: str, version: int, text: str) -> None:
        with self._lock:
            if uri in self.documents:
                self._record(DocumentSnapshot(self.session_id, uri, version, text))

    def gated(self, suggestion_id: str, stage: int, decision: str, score: float | None, threshold: float | None,
              model_version: str | None, details: dict | None = None) -> None:
        self._record(SuggestionGated(self.session_id, suggestion_id, stage, decision, score, threshold, model_version, details or {}))

    def generated(self, suggestion_id: str, text: str, model: str, policy: str, latency_ms: float, tokens: int,
                  layers_per_token: float | None, stop_reason: str | None, details: dict) -> None:
        self._record(SuggestionGenerated(self.session_id, suggestion_id, text, model, policy, latency_ms, tokens,
                                         layers_per_token, stop_reason, details))

    def shown(self, suggestion_id: str) -> None:
        self._record(SuggestionShown(self.session_id, suggestion_id))

    def accepted(self, suggestion_id: str, accepted_length: int | None, partial: bool) -> None:
        self._record(SuggestionAccepted(self.session_id, suggestion_id, accepted_length, partial))

    def undone(self, suggestion_id: str) -> None:
        self._record(SuggestionUndone(self.session_id, suggestion_id))

    def kept(self, suggestion_id: str, kept_length: int, accepted_length: int | None) -> None:
        self._record(SuggestionKept(self.session_id, suggestion_id, kept_length, accepted_length))

    def rejected(self, suggestion_id: str, reason: str) -> None:
        self._record(SuggestionRejected(self.session_id, suggestion_id, reason))

    def superseded(self, ended: Ended) -> None:
        """A newer suggestion ended ``ended`` (`SuggestionLedger.issue`): rejected (``ignored`` where no one decided),
        or cancelled (unseen, typed along)."""
        if ended.outcome == "cancelled":
            self.cancelled(ended.id, ended.reason)
        else:
            self.rejected(ended.id, ended.reason)

    def cancelled(self, suggestion_id: str, reason: str) -> None:
        self._record(SuggestionCancelled(self.session_id, suggestion_id, reason))

    def failed(self, suggestion_id: str, error: str) -> None:
        self._record(SuggestionFailed(self.session_id, suggestion_id, error))

    def logged_job(self, suggestion_id: str, job: Callable[[CancelToken], T], what: str) -> Callable[[CancelToken], T | None]:
        """``job`` for the inference scheduler, its end logged: a cancellation (re-raised, so the caller
        sees it) or a failure (logged as ``failed`` with the error, returning None). A failure is also a
        BaseException that is no Exception (asyncio.CancelledError, a library's own), KeyboardInterrupt and SystemExit
        aside: let through, it left the suggestion without an end in telemetry and escaped the request's handler,
        which then never answered the editor."""

        def run(token: CancelToken) -> T | None:
            try:
                return job(token)
            except Cancelled as exc:
                self.cancelled(suggestion_id, exc.reason)
                raise
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:
                log.warning("%s failed", what, exc_info=True)
                self.failed(suggestion_id, f"{type(exc).__name__}: {exc}")
                return None

        return run

    def close(self) -> None:
        try:
            self.store.close()
        except Exception:
            log.warning("closing the telemetry store failed", exc_info=True)


def pending_edit_dict(record: EditRecord | None) -> dict | None:
    """The in-progress edit a request saw, for exact replay (see ``SuggestionRequested.pending_edit``). Its
    version tells replay whether the finished edit logged later is this one as it was (no keystroke joined it)."""
    if record is None:
        return None
    return {"start_line": record.start.line, "start_character": record.start.character, "end_line": record.end.line,
            "end_character": record.end.character, "removed_text": record.removed_text,
            "inserted_text": record.inserted_text, "ts_start": record.ts_start, "ts": record.ts_end,
            "keystrokes": record.keystrokes, "version": record.version}
