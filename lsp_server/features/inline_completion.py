"""textDocument/inlineCompletion: ghost text from the model, with the accept command attached."""

from __future__ import annotations

from lsprotocol import types

from lsp_server.features.suggest import accept_command, suggest


def register(server) -> None:
    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(ls, params: types.InlineCompletionParams) -> types.InlineCompletionList:
        invoked = params.context is not None and params.context.trigger_kind == types.InlineCompletionTriggerKind.Invoked
        found = await suggest(ls, params.text_document.uri, params.position.line, params.position.character,
                              "invoked" if invoked else "automatic")
        if found is None:
            return types.InlineCompletionList(items=[])
        suggestion_id, suggestion = found
        pos = types.Position(line=suggestion.context.position.line, character=suggestion.context.position.character)
        item = types.InlineCompletionItem(insert_text=suggestion.text, range=types.Range(start=pos, end=pos),
                                          command=accept_command(types, suggestion_id))
        return types.InlineCompletionList(items=[item])
