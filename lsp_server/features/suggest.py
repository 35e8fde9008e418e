"""The part inline and classic completion share: queue a request, await it, honour cancellation."""

from __future__ import annotations

import asyncio
import logging

from lsp_server.features.lifecycle import report_degraded
from lsp_server.protocol import COMMAND_ACCEPT_SUGGESTION
from lsp_server.services.completion import Suggestion
from lsp_server.services.pipeline import PendingRequest, SelectedCompletion
from lsp_server.services.positions import Position
from lsp_server.services.scheduler import Cancelled

log = logging.getLogger("tact.completion")


async def suggest(ls, uri: str, line: int, character: int, trigger: str,
                  selected: SelectedCompletion | None = None) -> tuple[PendingRequest, Suggestion] | None:
    """(the request, its suggestion) to show, or None (nothing, superseded, stale or degraded)."""
    if ls.completions.degraded:
        return None
    pending = ls.pipeline.request(uri, Position(line, character), trigger, ls.settings, selected)
    if pending is None:
        return None
    try:
        suggestion = await asyncio.wrap_future(pending.future)
    except asyncio.CancelledError:  # $/cancelRequest: stop the token loop too, not just this await
        pending.abandon(ls.recorder, "client")
        raise
    except Cancelled:
        return None
    if suggestion is None and ls.completions.degraded:  # the model failed while serving (a damaged graph): say why
        report_degraded(ls)
    if suggestion is not None and suggestion.result is not None and not suggestion.text:
        ls.recorder.cancelled(pending.suggestion_id, "empty")  # nothing to show: its life ends here
    if suggestion is None or not suggestion.text:
        ls.pipeline.answered_nothing(pending, uri)
        return None
    if not ls.pipeline.issue(pending, suggestion, uri):
        return None
    return pending, suggestion


def accept_command(types, suggestion_id: str):
    return types.Command(title="Accept Tact suggestion", command=COMMAND_ACCEPT_SUGGESTION, arguments=[suggestion_id])
