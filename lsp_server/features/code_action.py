"""textDocument/codeAction: the predicted next edit as a code action, which every LSP editor can apply.

The prediction is `tact/nextEdit`'s (the same service call and rules) at the start of the request's range. The
action's command, `tact.acceptNextEdit`, runs after its edit and logs the acceptance. An answer to a request the
user made is logged shown; one to an automatic request (a lightbulb) only once the editor applies it."""

from __future__ import annotations

import logging

from lsprotocol import types

from lsp_server.features.feedback import record_shown
from lsp_server.features.next_edit import issued
from lsp_server.protocol import COMMAND_ACCEPT_NEXT_EDIT, NEXT_EDIT_ACTION_KIND
from lsp_server.services.next_edit_actions import UnshownActions, explicitly_invoked, kind_requested, next_edit_action
from lsp_server.services.positions import Position

log = logging.getLogger("tact.next_edit")


def client_support(ls) -> tuple[bool, bool]:
    """(the client takes CodeAction literals, the client applies versioned ``documentChanges``). A client without
    literal support takes only bare commands (LSP), which cannot carry the edit: it gets no action."""
    caps = ls.client_capabilities
    text_document = caps.text_document if caps is not None else None
    code_action = text_document.code_action if text_document is not None else None
    literals = code_action is not None and code_action.code_action_literal_support is not None
    workspace_edit = caps.workspace.workspace_edit if caps is not None and caps.workspace is not None else None
    return literals, bool(workspace_edit is not None and workspace_edit.document_changes)


def register(server) -> None:
    unshown = UnshownActions()

    def shown_when_applied(suggestion_id: str, outcome: str) -> None:
        """An automatic action's edit was applied (its accept command resolves it): logged shown, then accepted. Only
        an accept takes it from the unshown ones: one superseded (rejected) may still be listed by the editor, and
        applying it later shows it all the same."""
        if outcome in ("accepted", "partially_accepted") and unshown.take(suggestion_id):
            record_shown(server, {"id": suggestion_id}, COMMAND_ACCEPT_NEXT_EDIT, "next_edit", reported=False)

    server.ledger.listeners.append(shown_when_applied)

    @server.feature(types.TEXT_DOCUMENT_CODE_ACTION,
                    types.CodeActionOptions(code_action_kinds=[NEXT_EDIT_ACTION_KIND], resolve_provider=False))
    async def code_action(ls, params: types.CodeActionParams) -> list:
        settings, context = ls.settings, params.context
        only = None if context.only is None else [getattr(kind, "value", kind) for kind in context.only]
        if not (settings.enable and settings.next_edit and settings.next_edit_code_actions) or not kind_requested(only):
            return []
        literals, document_changes = client_support(ls)
        if not literals:
            log.info("%s from a client without code action literals: no next-edit action", types.TEXT_DOCUMENT_CODE_ACTION)
            return []
        uri = params.text_document.uri
        doc = ls.documents.get(uri)
        if doc is None:
            log.warning("%s for a document that is not open: %s", types.TEXT_DOCUMENT_CODE_ACTION, uri)
            return []
        start, end = params.range.start, params.range.end
        if (start.line, start.character) > (end.line, end.character) or start.line >= doc.line_count:
            log.warning("%s for %s: no such range in the document (%d lines): %s", types.TEXT_DOCUMENT_CODE_ACTION, uri,
                        doc.line_count, params.range)
            return []
        version = doc.version
        asked = explicitly_invoked(context.trigger_kind)
        pending = ls.next_edits.request(doc, version, Position(start.line, start.character), settings,
                                        "codeAction" if asked else "codeActionAutomatic")
        result = await issued(ls, pending, uri, version)
        if result is None:
            return []
        _, index = doc.indexed_snapshot()  # at `version`: issue just checked it, and nothing ran since
        old_text = index.text[index.offset_at(result.start):index.offset_at(result.end)]
        sid = pending.suggestion_id
        if asked:
            record_shown(ls, {"id": sid}, types.TEXT_DOCUMENT_CODE_ACTION, "next_edit", reported=False)
        else:
            unshown.add(sid)
            ls.ledger.list_only(sid)  # superseded or closed unapplied: cancelled, not rejected
        return [next_edit_action(sid, uri, version, result.start, result.end, old_text, result.new_text,
                                 document_changes)]
