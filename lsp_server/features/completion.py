"""textDocument/completion: the same suggestion as one classic item, for editors without inline completion.

The item replaces the identifier being typed, so the editor's own filtering keeps it visible.
"""

from __future__ import annotations

import os
import re

from lsprotocol import types

from lsp_server.features.suggest import accept_command, suggest
from lsp_server.services.positions import utf16_len
from lsp_server.services.postprocess import first_line

_WORD = re.compile(r"\w*")
_INDENT = re.compile(r"[ \t]*")


def word_before(line_prefix: str) -> str:
    """The word the cursor ends, which the item replaces. Matched on the reversed line: ``\\w*$`` tried every start
    in a run of word characters that a non-word one ends (a long hex string and its closing quote), on the event
    loop: 20 s for 60,000 characters."""
    return _WORD.match(line_prefix[::-1]).group(0)[::-1]


def snippet_escape(text: str) -> str:
    """Plain text as an LSP snippet that expands to exactly that text."""
    return text.replace("\\", "\\\\").replace("$", "\\$").replace("}", "\\}")


def _item_capabilities(ls):
    caps = ls.client_capabilities.text_document
    return caps.completion.completion_item if caps and caps.completion else None


def supports_snippets(ls) -> bool:
    item = _item_capabilities(ls)
    return bool(item and item.snippet_support)


def supports_as_is(ls) -> bool:
    """Whether the client says it honours insertTextMode asIs (VS Code does; Neovim does not)."""
    item = _item_capabilities(ls)
    modes = item.insert_text_mode_support if item else None
    return bool(modes and types.InsertTextMode.AsIs in modes.value_set)


def relative_indent(text: str, indent: str) -> str:
    """``text`` with the cursor line's ``indent`` taken off its later lines (as much of it as each
    line starts with), for clients that add that indentation back (adjustIndentation)."""
    first, *rest = text.split("\n")
    return "\n".join([first] + [line[len(os.path.commonprefix((indent, line))):] for line in rest])


def register(server) -> None:
    @server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=[".", "(", " "]))
    async def completion(ls, params: types.CompletionParams) -> types.CompletionList:
        # Without a context (LSP sends one only to clients that declare contextSupport) the request counts as asked
        # for: Neovim 0.7's omnifunc sends none and runs only on the user's keys, and gating a suggestion the user
        # asked for loses it, where an older Helix's unasked requests go ungated, as with the gate off.
        kind = params.context.trigger_kind if params.context is not None else types.CompletionTriggerKind.Invoked
        trigger = ls.pipeline.list_trigger(params.text_document.uri, kind == types.CompletionTriggerKind.Invoked,
                                           kind == types.CompletionTriggerKind.TriggerForIncompleteCompletions)
        found = await suggest(ls, params.text_document.uri, params.position.line, params.position.character, trigger)
        if found is None:
            return types.CompletionList(is_incomplete=True, items=[])
        pending, suggestion = found
        suggestion_id = pending.suggestion_id
        ctx = suggestion.context
        word = word_before(ctx.line_prefix)
        cursor = types.Position(line=ctx.position.line, character=ctx.position.character)
        start = types.Position(line=cursor.line, character=cursor.character - utf16_len(word))
        new_text = word + suggestion.text
        # The label is text the suggestion writes: a client may insert it as the word (Neovim does for a snippet item
        # completed without the menu), so a multi-line suggestion says it goes on in labelDetails, not with a "…".
        # One that starts with a line break (after `def main():`) would have an empty first line: an empty label,
        # which VS Code drops and other clients show as a blank row; its first written line stands in.
        label = first_line(new_text)
        if not label.strip():
            label = next((line.strip() for line in new_text.splitlines() if line.strip()), "…")
        more = types.CompletionItemLabelDetails(detail=" …") if "\n" in new_text else None
        # Clients that insert only the first word of a plain-text item (Neovim's native completion
        # does) expand a snippet whole; clients without snippet support get plain text.
        snippet = supports_snippets(ls)
        # The suggestion's later lines carry their full indentation. Inserted as is, unless the client
        # re-indents snippets and does not honour asIs: Neovim's snippet expansion adds the cursor
        # line's indentation to every later line, so that indentation comes off first.
        relative = snippet and not supports_as_is(ls)
        edit_text = relative_indent(new_text, _INDENT.match(ctx.line_prefix).group(0)) if relative else new_text
        item = types.CompletionItem(
            label=label,
            label_details=more,
            kind=types.CompletionItemKind.Text,
            detail="Tact …" if more else "Tact",  # for clients without labelDetails
            filter_text=new_text,
            sort_text="0",
            text_edit=types.TextEdit(range=types.Range(start=start, end=cursor),
                                     new_text=snippet_escape(edit_text) if snippet else edit_text),
            insert_text_format=types.InsertTextFormat.Snippet if snippet else types.InsertTextFormat.PlainText,
            insert_text_mode=types.InsertTextMode.AdjustIndentation if relative else types.InsertTextMode.AsIs,
            command=accept_command(types, suggestion_id),
            data={"id": suggestion_id},
        )
        issued = ls.ledger.get(suggestion_id)
        if issued is not None:  # an edit that writes this accepts it, for clients that never run the command
            issued.item_edit = (start.line, start.character, new_text)
        return types.CompletionList(is_incomplete=True, items=[item])
