"""tact/nextEdit, tact/didShowNextEdit, tact/didRejectNextEdit and the tact.acceptNextEdit command."""

from __future__ import annotations

import asyncio
import logging
import reprlib

from lsprotocol.validators import UINTEGER_MAX_VALUE as UINTEGER_MAX  # LSP's uinteger

from lsp_server.features.commands import record_accepted
from lsp_server.features.feedback import field, record_rejected, record_shown
from lsp_server.protocol import COMMAND_ACCEPT_NEXT_EDIT, DID_REJECT_NEXT_EDIT, DID_SHOW_NEXT_EDIT, NEXT_EDIT
from lsp_server.services.next_edit import cells_below
from lsp_server.services.next_edit_actions import lsp_range
from lsp_server.services.positions import Position
from lsp_server.services.scheduler import Cancelled

log = logging.getLogger("tact.next_edit")

NO_EDITS: dict = {"edits": []}


def _int(value) -> int | None:
    """An int within LSP's uinteger bound (a larger line overflowed SQLite's integer and the request went unlogged)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and abs(value) <= UINTEGER_MAX else None


def parse_params(params) -> tuple[str, int, Position] | None:
    """(uri, version, position) from ``{textDocument {uri, version}, position {line, character}}``."""
    doc, pos = field(params, "textDocument"), field(params, "position")
    uri = field(doc, "uri") if doc is not None else None
    version = _int(field(doc, "version")) if doc is not None else None
    line = _int(field(pos, "line")) if pos is not None else None
    character = _int(field(pos, "character")) if pos is not None else None
    if not isinstance(uri, str) or None in (version, line, character) or line < 0 or character < 0:
        return None
    return uri, version, Position(line, character)


async def issued(ls, pending, uri: str, version: int):
    """The prediction of ``pending`` (None for no request) once issued for ``version``; None when it was superseded, the
    document changed meanwhile, or there is none. The editor's $/cancelRequest stops the prediction too."""
    if pending is None:
        return None
    try:
        result = await asyncio.wrap_future(pending.future)
    except asyncio.CancelledError:  # $/cancelRequest (the editor moved on)
        pending.abandon(ls.recorder, "client")
        raise
    except Cancelled:  # superseded by a newer request, or the document changed
        return None
    if result is None or not ls.next_edits.issue(pending, ls.documents.get(uri), version, result, ls.documents):
        return None
    return result


def register(server) -> None:
    @server.feature(NEXT_EDIT)
    async def next_edit(ls, params) -> dict:
        parsed = parse_params(params)
        if parsed is None:
            log.warning("%s: expected {textDocument {uri, version}, position {line, character}}, got %s", NEXT_EDIT, reprlib.repr(params))
            return NO_EDITS
        uri, version, position = parsed
        doc = ls.documents.get(uri)
        if doc is None:
            log.warning("%s for a document that is not open: %s", NEXT_EDIT, uri)
            return NO_EDITS
        if not ls.settings.enable:  # tact.enable off: no suggestion of any kind, none generated or logged
            return NO_EDITS
        # otherCells: the client can show an edit in another notebook cell than the one asked about
        other = cells_below(ls.notebooks, ls.documents, doc) if field(params, "otherCells") is True else None
        pending = ls.next_edits.request(doc, version, position, ls.settings, other_cells=other)
        result = await issued(ls, pending, uri, version)
        if result is None:
            return NO_EDITS
        edit = {"id": pending.suggestion_id, "range": lsp_range(result.start, result.end), "newText": result.new_text}
        if result.cell is not None:  # in another cell: the range is that cell's
            edit["textDocument"] = {"uri": result.cell.uri, "version": result.cell.version}
        return {"edits": [edit]}

    @server.feature(DID_SHOW_NEXT_EDIT)
    def did_show(ls, params) -> None:
        record_shown(ls, params, DID_SHOW_NEXT_EDIT, "next_edit")

    @server.feature(DID_REJECT_NEXT_EDIT)
    def did_reject(ls, params) -> None:
        record_rejected(ls, params, DID_REJECT_NEXT_EDIT, "next_edit")

    @server.command(COMMAND_ACCEPT_NEXT_EDIT)
    def accept_next_edit(ls, *args) -> bool:
        return record_accepted(ls, args, COMMAND_ACCEPT_NEXT_EDIT, "next_edit")
