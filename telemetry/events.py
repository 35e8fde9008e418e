"""Telemetry events: immutable records the server hands to the store.

Events are plain frozen dataclasses so building one on the LSP hot path costs a few
microseconds and nothing is serialized until the writer thread picks it up. Dict
fields are serialized later on that thread, so callers must not mutate a dict after
passing it in an event.

Every event carries ``session_id`` and ``ts`` (unix seconds, ``time.time()`` when the
event was built unless given). Positions are LSP positions: zero-based lines and
UTF-16 code unit characters.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

SuggestionKind = Literal["completion", "next_edit"]


@dataclass(frozen=True, slots=True)
class Event:
    """Base of every event; not recorded on its own."""

    session_id: str
    ts: float = field(default_factory=time.time, kw_only=True)


@dataclass(frozen=True, slots=True)
class SessionStarted(Event):
    client_name: str | None
    client_version: str | None
    server_version: str
    settings: dict[str, Any] = field(default_factory=dict)
    models: dict[str, Any] = field(default_factory=dict)
    workspace: str | None = None


@dataclass(frozen=True, slots=True)
class SessionEnded(Event):
    reason: str


@dataclass(frozen=True, slots=True)
class SettingsChanged(Event):
    settings: dict[str, Any]


@dataclass(frozen=True, slots=True)
class DocumentOpened(Event):
    """Full text at didOpen: the starting point that edits are replayed onto."""

    uri: str
    version: int
    language_id: str
    text: str


@dataclass(frozen=True, slots=True)
class DocumentClosed(Event):
    uri: str


@dataclass(frozen=True, slots=True)
class DocumentSnapshot(Event):
    """Periodic full text, so replay can resync if an edit was dropped."""

    uri: str
    version: int
    text: str


@dataclass(frozen=True, slots=True)
class EditEvent(Event):
    """One coalesced edit; the range is in the document *before* the edit.

    ``ts_start`` is when the first coalesced change arrived and ``ts`` when the last
    one did; ``keystrokes`` counts the didChange notifications folded into it.
    """

    uri: str
    version: int
    start_line: int
    start_character: int
    end_line: int
    end_character: int
    removed_text: str
    inserted_text: str
    ts_start: float
    keystrokes: int = 1


@dataclass(frozen=True, slots=True)
class NotebookChanged(Event):
    """Which documents form a notebook, in notebook order: a completion in a cell sees the code of the cells above
    it, so a replay must rebuild the notebook around each cell, not only the cell's own text. ``cells`` are the
    synced cells' document URIs (each opened as a document of its own); ``()`` on close."""

    notebook_uri: str
    notebook_type: str
    version: int
    kind: str  # 'open' | 'change' | 'close'
    cells: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SuggestionEvent(Event):
    """Base of the lifecycle events of one suggestion; not recorded on its own."""

    suggestion_id: str


@dataclass(frozen=True, slots=True)
class SuggestionRequested(SuggestionEvent):
    kind: SuggestionKind
    uri: str
    version: int
    line: int
    character: int
    trigger: str = "automatic"  # 'automatic' | 'invoked' | ...
    # summary: char counts etc., no source text but the completion widget's selected entry (`selected_completion`),
    # which a replay sends again
    context: dict[str, Any] = field(default_factory=dict)
    # The coalesced edit still being typed when the request arrived (its range in the document before that
    # edit, its removed and inserted text, and ``ts_start``), or None. Edits are logged only once finished,
    # so without this a request in the middle of a typed word could not be replayed on the exact text.
    pending_edit: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class SuggestionGated(SuggestionEvent):
    """A gate decision: stage 1 before generation ('generate'|'skip'), stage 2 after ('show'|'hide')."""

    stage: int
    decision: str
    score: float | None = None
    threshold: float | None = None
    model_version: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SuggestionGenerated(SuggestionEvent):
    """Model output; for next edits ``text`` is the newText and ``details`` holds the range."""

    text: str
    model: str
    policy: str
    latency_ms: float
    tokens: int
    layers_per_token: float | None = None
    stop_reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SuggestionShown(SuggestionEvent):
    pass


@dataclass(frozen=True, slots=True)
class SuggestionAccepted(SuggestionEvent):
    """``accepted_length`` is how much of the text is accepted so far (UTF-16 units)."""

    accepted_length: int | None = None
    partial: bool = False


@dataclass(frozen=True, slots=True)
class SuggestionUndone(SuggestionEvent):
    """An accepted suggestion the user took back soon after (undid the accept, or deleted its text whole): it stays
    accepted in its history, and counts as no acceptance and no characters saved (``suggestions.undone_at``)."""


@dataclass(frozen=True, slots=True)
class SuggestionKept(SuggestionEvent):
    """What of an accepted suggestion was still in the document when the server stopped following it (a minute after
    the accept, its document closed, or the session's end), not taken back: ``kept_length`` of the
    ``accepted_length`` accepted (UTF-16 units). Characters saved count what was kept (``suggestions.kept_length``):
    an accept half deleted saved half."""

    kept_length: int
    accepted_length: int | None = None


@dataclass(frozen=True, slots=True)
class SuggestionRejected(SuggestionEvent):
    reason: str


@dataclass(frozen=True, slots=True)
class SuggestionCancelled(SuggestionEvent):
    """Superseded, cancelled by the client, or stale before any answer was given; or typed along (``TYPED_ALONG``)."""

    reason: str


# The cancel reason of a completion whose first characters the user typed before a newer one replaced it (a client
# that asks again at each keystroke, as Neovim does): no rejection, and no suggestion shown on its own.
TYPED_ALONG = "typedAlong"


@dataclass(frozen=True, slots=True)
class SuggestionFailed(SuggestionEvent):
    error: str


EVENT_TYPES: dict[type[Event], str] = {
    SessionStarted: "session_started",
    SessionEnded: "session_ended",
    SettingsChanged: "settings_changed",
    DocumentOpened: "document_opened",
    DocumentClosed: "document_closed",
    DocumentSnapshot: "document_snapshot",
    EditEvent: "edit",
    NotebookChanged: "notebook_changed",
    SuggestionRequested: "suggestion_requested",
    SuggestionGated: "suggestion_gated",
    SuggestionGenerated: "suggestion_generated",
    SuggestionShown: "suggestion_shown",
    SuggestionAccepted: "suggestion_accepted",
    SuggestionUndone: "suggestion_undone",
    SuggestionKept: "suggestion_kept",
    SuggestionRejected: "suggestion_rejected",
    SuggestionCancelled: "suggestion_cancelled",
    SuggestionFailed: "suggestion_failed",
}


# The events later rows need to make sense: a session, its settings, a document's text, a notebook's cells. One per
# document or notebook the editor opens or closes (or per settings change), never per keystroke, so a store keeps
# them when its queue is full: a notebook of more than a queue's worth of cells lost its own row and its last cells'
# openings at open, and the session's end at shutdown behind the cells' snapshots.
ANCHOR_EVENT_TYPES: frozenset[type[Event]] = frozenset({
    SessionStarted, SessionEnded, SettingsChanged, DocumentOpened, DocumentClosed, DocumentSnapshot, NotebookChanged,
})


def event_type(event: object) -> str:
    """The snake-case name stored in the database; ``TypeError`` for anything that is not a recordable event."""
    try:
        return EVENT_TYPES[type(event)]
    except KeyError:
        raise TypeError(f"not a telemetry event: {type(event).__name__}") from None
