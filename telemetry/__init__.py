"""Suggestion lifecycle and edit stream telemetry, stored in SQLite for offline replay.

The server builds events (``telemetry.events``) and hands them to ``record()`` of the
store returned by ``open_store()``; replay tools and reports read the file back with
``telemetry.reader``. This package must not import ``lsp_server``.
"""

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
    SuggestionKind,
    SuggestionRejected,
    SuggestionRequested,
    SuggestionShown,
    SuggestionUndone,
    event_type,
)
from .reader import list_sessions, open_readonly, outcome_counts, session_timeline, suggestions
from .schema import SCHEMA_VERSION, TelemetrySchemaError, migrate
from .store import NullStore, TelemetryStats, TelemetryStore, open_store, prune_sessions

__all__ = [
    "ANCHOR_EVENT_TYPES",
    "EVENT_TYPES",
    "SCHEMA_VERSION",
    "DocumentClosed",
    "DocumentOpened",
    "DocumentSnapshot",
    "EditEvent",
    "Event",
    "NotebookChanged",
    "NullStore",
    "SessionEnded",
    "SessionStarted",
    "SettingsChanged",
    "SuggestionAccepted",
    "SuggestionCancelled",
    "SuggestionEvent",
    "SuggestionFailed",
    "SuggestionGated",
    "SuggestionGenerated",
    "SuggestionKind",
    "SuggestionRejected",
    "SuggestionRequested",
    "SuggestionShown",
    "SuggestionUndone",
    "TelemetrySchemaError",
    "TelemetryStats",
    "TelemetryStore",
    "event_type",
    "list_sessions",
    "migrate",
    "open_readonly",
    "open_store",
    "prune_sessions",
    "outcome_counts",
    "session_timeline",
    "suggestions",
]
