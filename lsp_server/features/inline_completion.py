"""textDocument/inlineCompletion: ghost text from the model, with the accept command attached."""

from __future__ import annotations

from lsprotocol import types

from lsp_server.features.suggest import accept_command, suggest
from lsp_server.services.pipeline import SelectedCompletion
from lsp_server.services.positions import Position


def selected_completion(context: types.InlineCompletionContext | None) -> SelectedCompletion | None:
    """The entry selected in the editor's completion widget, if the request names one."""
    info = context.selected_completion_info if context is not None else None
    if info is None:
        return None
    start, end = info.range.start, info.range.end
    return SelectedCompletion(Position(start.line, start.character), Position(end.line, end.character), info.text)


def register(server) -> None:
    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(ls, params: types.InlineCompletionParams) -> types.InlineCompletionList:
        invoked = params.context is not None and params.context.trigger_kind == types.InlineCompletionTriggerKind.Invoked
        found = await suggest(ls, params.text_document.uri, params.position.line, params.position.character,
                              "invoked" if invoked else "automatic", selected_completion(params.context))
        if found is None:
            return types.InlineCompletionList(items=[])
        pending, suggestion = found
        # over a selected entry the item extends it: the entry's range gets the entry, then the suggestion (an editor
        # shows only such items while its completion widget is open)
        sel = pending.selected
        start, end = (sel.start, sel.end) if sel is not None else (suggestion.context.position,) * 2
        item = types.InlineCompletionItem(insert_text=(sel.text if sel is not None else "") + suggestion.text,
                                          range=types.Range(start=_lsp(start), end=_lsp(end)),
                                          command=accept_command(types, pending.suggestion_id))
        return types.InlineCompletionList(items=[item])


def _lsp(position: Position) -> types.Position:
    return types.Position(line=position.line, character=position.character)
