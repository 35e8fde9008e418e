"""tact/didShowCompletion, tact/didPartiallyAcceptCompletion, tact/didRejectCompletion, tact/status."""

from __future__ import annotations

import logging
import reprlib

from lsprotocol.validators import UINTEGER_MAX_VALUE as UINTEGER_MAX

from lsp_server.protocol import (
    DID_PARTIALLY_ACCEPT_COMPLETION,
    DID_REJECT_COMPLETION,
    DID_SHOW_COMPLETION,
    STATUS,
    RejectReason,
)
from lsp_server.services.ledger import UNDECIDED
from lsp_server.services.undo_watch import watch_accept
from telemetry.text import utf16_len

log = logging.getLogger("tact.feedback")


def field(params, name: str):
    """Custom params arrive as namedtuple-like objects (or dicts from some clients)."""
    if isinstance(params, dict):
        return params.get(name)
    return getattr(params, name, None)


def suggestion_id_of(params, method: str) -> str | None:
    value = field(params, "id")
    if not isinstance(value, str) or not value:
        log.warning("%s without a suggestion id: %s", method, reprlib.repr(params))
        return None
    return value


def feedback_ignored(ls, suggestion_id: str, method: str, kind: str) -> bool:
    """Whether feedback for ``suggestion_id`` is dropped, with a warning: an id this server never issued (an earlier
    session's suggestion still on screen when the server restarted: its outcome rewrote that session's row and taught
    the gate an outcome of no suggestion of its own), or one it issued as another kind than the method's ``kind`` (a
    completion's id sent as a next edit's, or the reverse: it would resolve the other suggestion). An id the server
    issued and its ledger no longer holds is still logged (the ledger is bounded)."""
    if not ls.ledger.issued_here(suggestion_id):
        log.warning("%s for %s, an id this server did not issue (an earlier session's?): ignored", method,
                    reprlib.repr(suggestion_id))
        return True
    item = ls.ledger.get(suggestion_id)
    if item is None or item.kind == kind:
        return False
    log.warning("%s for %s, which is a %s, not a %s: ignored", method, suggestion_id, item.kind, kind)
    return True


def record_shown(ls, params, method: str, kind: str, reported: bool = True) -> None:
    """A suggestion of ``kind`` (completion or next edit) was shown: ``{id}``; ``reported`` by the client, else
    recorded by the server for it (a code action)."""
    if (sid := suggestion_id_of(params, method)) is not None and not feedback_ignored(ls, sid, method, kind):
        replaced = ls.ledger.mark_shown(sid, reported)
        ls.recorder.shown(sid)
        if replaced is not None:  # the shown one this one took the place of on screen
            ls.recorder.rejected(replaced, "superseded")


def record_rejected(ls, params, method: str, kind: str) -> None:
    """A suggestion of ``kind`` (completion or next edit) ended without being accepted: ``{id, reason}``."""
    if (sid := suggestion_id_of(params, method)) is None or feedback_ignored(ls, sid, method, kind):
        return
    raw = field(params, "reason")
    reason = RejectReason.parse(raw) if isinstance(raw, str) else None
    if reason is None:
        log.warning("%s: unknown reason %s, recorded as %r", method, reprlib.repr(raw), RejectReason.DISMISSED.value)
        reason = RejectReason.DISMISSED
    known = ls.ledger.get(sid)
    if known is not None and known.outcome is not None:
        # it ended already (superseded by a newer one, closed with its document, or accepted): a second outcome
        # overwrote the stored reason and time, and after an accept turned the ledger's entry to rejected
        log.debug("%s for %s, which ended %s already: not recorded again", method, sid, known.outcome)
        return
    # a suggestion that ended without a decision (`ignored`: focus moved away, the extension stopped, the user typed
    # it out by hand) is recorded with its reason, but is no rejection the acceptance gate counts
    ls.ledger.resolve(sid, UNDECIDED if reason is RejectReason.IGNORED else "rejected")
    ls.recorder.rejected(sid, reason.value)
    if kind == "next_edit" and raw == RejectReason.DISMISSED.value:  # Escape: not offered again as it is
        ls.next_edits.dismissed(sid)


def register(server) -> None:
    @server.feature(DID_SHOW_COMPLETION)
    def did_show(ls, params) -> None:
        record_shown(ls, params, DID_SHOW_COMPLETION, "completion")

    @server.feature(DID_PARTIALLY_ACCEPT_COMPLETION)
    def did_partially_accept(ls, params) -> None:
        sid = suggestion_id_of(params, DID_PARTIALLY_ACCEPT_COMPLETION)
        if sid is None:
            return
        length = field(params, "acceptedLength")
        if not isinstance(length, int) or isinstance(length, bool) or not 0 <= length <= UINTEGER_MAX:
            # past LSP's uinteger SQLite cannot store it: for an id the ledger lacks (nothing clamps) the write failed
            log.warning("%s: acceptedLength must be a uinteger, got %s", DID_PARTIALLY_ACCEPT_COMPLETION, reprlib.repr(length))
            return
        if feedback_ignored(ls, sid, DID_PARTIALLY_ACCEPT_COMPLETION, "completion"):
            return
        item = ls.ledger.get(sid)
        if item is not None and item.selected_units:
            # counted over the editor's item, which carries the selected completion entry before the suggestion
            length = max(0, length - item.selected_units)
        if length == 0:  # none of the suggestion: no acceptance (the gate had counted it as one)
            log.info("%s: suggestion %s accepted none of its text; not an acceptance", DID_PARTIALLY_ACCEPT_COMPLETION, sid)
            return
        item = ls.ledger.resolve(sid, "partially_accepted")
        if item is not None and length > (full := utf16_len(item.text)):
            # more than the suggestion has would count as characters saved that it never held
            log.warning("%s: acceptedLength %d is longer than suggestion %s (%d UTF-16 units), recorded as %d",
                        DID_PARTIALLY_ACCEPT_COMPLETION, length, sid, full, full)
            length = full
        ls.recorder.accepted(sid, length, partial=True)
        if item is not None:
            watch_accept(ls.undo_watch, ls.documents, item, length)

    @server.feature(DID_REJECT_COMPLETION)
    def did_reject(ls, params) -> None:
        record_rejected(ls, params, DID_REJECT_COMPLETION, "completion")

    @server.feature(STATUS)
    def status(ls, params=None) -> dict:
        s = ls.settings
        return {
            **ls.completions.status.as_dict(),
            "policy": s.decoding_policy,
            "enabled": s.enable,
            "settings": s.to_camel(),  # what the server runs with, after the client's settings and their checks
            "sessionId": ls.recorder.session_id,
            "session": {k: ls.pipeline.counts[k] for k in ("requested", "skipped", "generated", "hidden", "issued")},
            "database": ls.recorder.database,
            "telemetryReason": ls.recorder.telemetry_reason,  # why nothing is recorded, or what befell the database
            "telemetry": ls.recorder.stats,
            "version": ls.version,
            "acceptanceGate": {**ls.gate.status(), "enabled": s.acceptance_gate},
            "nextEdit": {"enabled": s.next_edit, "predictor": s.next_edit_predictor,
                         "model": ls.next_edits.version, "reason": ls.next_edits.reason,
                         "ranker": ls.next_edits.ranker.version if ls.next_edits.ranker is not None else None,
                         "rankerReason": ls.next_edits.ranker_reason,
                         "session": {k: ls.next_edits.counts[k] for k in ("requested", "generated", "hidden", "issued")}},
        }
