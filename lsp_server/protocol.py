"""Custom LSP method and command names, and the shapes of their parameters.

One name per concept; the VS Code extension uses the same strings.
"""

from __future__ import annotations

from enum import Enum

COMMAND_ACCEPT_SUGGESTION = "tact.acceptSuggestion"
COMMAND_ACCEPT_NEXT_EDIT = "tact.acceptNextEdit"

DID_SHOW_COMPLETION = "tact/didShowCompletion"  # {id}
DID_PARTIALLY_ACCEPT_COMPLETION = "tact/didPartiallyAcceptCompletion"  # {id, acceptedLength}
DID_REJECT_COMPLETION = "tact/didRejectCompletion"  # {id, reason}
NEXT_EDIT = "tact/nextEdit"  # {textDocument {uri, version}, position} -> {edits: [{id, range, newText}]}
DID_SHOW_NEXT_EDIT = "tact/didShowNextEdit"  # {id}
DID_REJECT_NEXT_EDIT = "tact/didRejectNextEdit"  # {id, reason}
# textDocument/codeAction: the kind of the action that applies a predicted next edit (a refactor.rewrite, so
# `only: ["refactor"]` or `["refactor.rewrite"]` lets it through, and this exact kind asks for it alone)
NEXT_EDIT_ACTION_KIND = "refactor.rewrite.tact.nextEdit"
STATUS = "tact/status"  # -> {model, policy, degraded, reason, ...}
# {ts}: replay and simulation only: "now" for the acceptance gate's timing features is ts (unix s)
REPLAY_CLOCK = "tact/replayClock"
# {id}: replay only: the recording's accept of this completion was taken back (its undo may be no edit the recording
# kept: undone within the grouping window, the accept's text and its removal were one edit that changed nothing)
REPLAY_UNDONE = "tact/replayUndone"
# initializationOptions key, beside the settings: replay only: the acceptance gate's per-user prior the recording
# started from, {accepted, rejected, lastOutcome, lastOutcomeAt} (what telemetry.reader.decided_outcomes counts)
ACCEPTANCE_PRIOR = "acceptancePrior"
# initializationOptions key, beside the settings: simulation only: true makes the time tact/replayClock pins the
# session's time, for the gate's features and for the times telemetry records, so a simulated session is recorded
# on the simulated programmer's timeline (a replay of it then pins the times the simulation's gate read)
CLIENT_CLOCK = "clientClock"


class RejectReason(str, Enum):
    """Why a shown suggestion ended without being accepted."""

    DISMISSED = "dismissed"  # Escape
    TYPED_OVER = "typedOver"  # the user kept typing something else
    SUPERSEDED = "superseded"  # a newer suggestion replaced it
    CURSOR_MOVED = "cursorMoved"
    IGNORED = "ignored"  # end of lifetime without a decision
    DOCUMENT_CLOSED = "documentClosed"  # its document closed while it was open (the server ends it)

    @classmethod
    def parse(cls, value: str) -> "RejectReason | None":
        try:
            return cls(value)
        except ValueError:
            return None
