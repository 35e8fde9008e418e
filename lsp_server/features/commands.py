"""workspace/executeCommand tact.acceptSuggestion(id): the editor inserted a suggestion."""

from __future__ import annotations

import logging
import reprlib

from pygls.exceptions import JsonRpcInvalidParams

from lsp_server.features.feedback import feedback_ignored
from lsp_server.protocol import COMMAND_ACCEPT_SUGGESTION
from lsp_server.services.ledger import UNDONE
from lsp_server.services.undo_watch import Kept, watch_accept
from telemetry.text import utf16_len

log = logging.getLogger("tact.feedback")


def record_accepted(ls, args: tuple, command: str, kind: str) -> bool:
    """The editor applied a suggestion of ``kind`` (completion or next edit); ``args`` is ``[id]``.

    Arguments without an id are the client's mistake: answered Invalid params (-32602), as LSP asks, so that the
    client's log says it, not ``false``, which reads like an id of another kind."""
    suggestion_id = args[0] if args and isinstance(args[0], str) and args[0] else None  # as feedback: '' is no id
    if suggestion_id is None:
        log.warning("%s needs a suggestion id, got %s", command, reprlib.repr(args))
        raise JsonRpcInvalidParams(f"{command} takes one argument, the suggestion's id (a non-empty string); "
                                   f"got {reprlib.repr(list(args))}")
    if feedback_ignored(ls, suggestion_id, command, kind):
        return False
    known = ls.ledger.get(suggestion_id)
    if known is not None and known.kind == "next_edit":
        # the edit it applied is an edit of its own: typed on (or undone with Ctrl+Z) within the grouping window, it
        # was one edit with what came after, and an undo left no edit at all, so the edit undone was offered again
        ls.recorder.edits(ls.documents.flush(known.uri))
    if known is not None and known.outcome == "accepted":  # the edit that wrote it said so already (and told the gate)
        return True
    item = ls.ledger.resolve(suggestion_id, "accepted")
    # UTF-16 units, as the editor counts a partial acceptance's length
    ls.recorder.accepted(suggestion_id, utf16_len(item.text) if item else None, partial=False)
    if item is not None:
        watch_accept(ls.undo_watch, ls.documents, item)
    return True


def record_undone(ls, suggestion_id: str) -> None:
    """An accepted suggestion was taken back (`UndoWatch`, or a replay saying its recording's was): logged, and the
    gate counts it a rejection (a completion's). Once: one taken back already is left as it is."""
    item = ls.ledger.get(suggestion_id)
    if item is not None and item.outcome == UNDONE:
        return
    log.info("suggestion %s: its accept was taken back", suggestion_id)
    ls.ledger.resolve(suggestion_id, UNDONE)
    ls.recorder.undone(suggestion_id)


def record_accepted_again(ls, suggestion_id: str, units: int | None) -> None:
    """An accept taken back was written again (`UndoWatch`: a redo, the cut text pasted): accepted as it was, all of
    it or ``units`` UTF-16 units of it; the store clears ``undone_at`` and the gate counts an acceptance again."""
    log.info("suggestion %s: its accept was written again", suggestion_id)
    item = ls.ledger.resolve(suggestion_id, "accepted" if units is None else "partially_accepted")
    length = units if units is not None else (utf16_len(item.text) if item is not None else None)
    ls.recorder.accepted(suggestion_id, length, partial=units is not None)


def record_kept(ls, ended: list[Kept]) -> None:
    """What survived of accepts whose watch ended (`UndoWatch.ended`): logged, so that characters saved count what the
    user kept of them, not all they wrote. None for one the ledger says was taken back since (a replay's
    `tact/replayUndone`, which the watch does not see): it saved nothing."""
    for kept in ended:
        item = ls.ledger.get(kept.suggestion_id)
        if item is not None and item.outcome == UNDONE:
            continue
        ls.recorder.kept(kept.suggestion_id, kept.kept, kept.accepted)


def register(server) -> None:
    @server.command(COMMAND_ACCEPT_SUGGESTION)
    def accept_suggestion(ls, *args) -> bool:
        return record_accepted(ls, args, COMMAND_ACCEPT_SUGGESTION, "completion")
