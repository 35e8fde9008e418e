"""textDocument/completion: the same suggestion as one classic item, for editors without inline completion.

The item replaces the identifier being typed, so the editor's own filtering keeps it visible.
"""

from __future__ import annotations

import re

from lsprotocol import types

from lsp_server.features.suggest import accept_command, suggest
from lsp_server.services.positions import utf16_len
from lsp_server.services.postprocess import first_line

_WORD_TAIL = re.compile(r"\w*$")


def snippet_escape(text: str) -> str:
    """Plain text as an LSP snippet that expands to exactly that text."""
    return text.replace("\\", "\\\\").replace("$", "\\$").replace("}", "\\}")


def supports_snippets(ls) -> bool:
    caps = ls.client_capabilities.text_document
    item = caps.completion.completion_item if caps and caps.completion else None
    return bool(item and item.snippet_support)


def register(server) -> None:
    @server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=[".", "(", " "]))
    async def completion(ls, params: types.CompletionParams) -> types.CompletionList:
        invoked = params.context is None or params.context.trigger_kind == types.CompletionTriggerKind.Invoked
        found = await suggest(ls, params.text_document.uri, params.position.line, params.position.character,
                              "invoked" if invoked else "automatic")
        if found is None:
            return types.CompletionList(is_incomplete=True, items=[])
        suggestion_id, suggestion = found
        ctx = suggestion.context
        word = _WORD_TAIL.search(ctx.line_prefix).group(0)
        cursor = types.Position(line=ctx.position.line, character=ctx.position.character)
        start = types.Position(line=cursor.line, character=cursor.character - utf16_len(word))
        new_text = word + suggestion.text
        label = first_line(new_text) + (" …" if "\n" in new_text else "")
        # Clients that insert only the first word of a plain-text item (Neovim's native completion
        # does) expand a snippet whole; clients without snippet support get plain text.
        snippet = supports_snippets(ls)
        item = types.CompletionItem(
            label=label,
            kind=types.CompletionItemKind.Text,
            detail="Tact",
            filter_text=new_text,
            sort_text="0",
            text_edit=types.TextEdit(range=types.Range(start=start, end=cursor),
                                     new_text=snippet_escape(new_text) if snippet else new_text),
            insert_text_format=types.InsertTextFormat.Snippet if snippet else types.InsertTextFormat.PlainText,
            command=accept_command(types, suggestion_id),
            data={"id": suggestion_id},
        )
        return types.CompletionList(is_incomplete=True, items=[item])
