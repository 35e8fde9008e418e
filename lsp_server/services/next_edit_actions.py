"""Next edits as LSP code actions, without pygls: which requests want one, and the action's JSON.

Every LSP editor (Neovim, Emacs, Helix) can list and apply code actions, so a predicted next edit offered as one
needs no client code: the action carries the edit and the command `tact.acceptNextEdit` with the suggestion's id,
which the editor runs after applying the edit (LSP's order), so the acceptance is logged as from any client.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict

from lsp_server.protocol import COMMAND_ACCEPT_NEXT_EDIT, NEXT_EDIT_ACTION_KIND
from lsp_server.services.positions import Position

TITLE_TEXT_CHARS = 30  # of the old and the new text each in an action's title: menus show one short line
TITLE_CONTEXT_CHARS = 6  # kept before the first difference of two texts shown from there
TRIGGER_AUTOMATIC = 2  # CodeActionTriggerKind: the editor asked on its own (a lightbulb), not the user

_ESCAPES = {"\n": "\\n", "\r": "\\n", "\t": "\\t", "`": "'"}  # what a one-line title writes for these


def kind_requested(only) -> bool:
    """Whether a request's ``context.only`` lets a next-edit action through. LSP: a kind matches an entry that is
    it or one of its parents (``refactor``, ``refactor.rewrite``); no ``only`` (None) asks for every kind. A
    request filtered to other kinds (``quickfix``, ``source.organizeImports`` on save) costs no prediction."""
    if only is None:
        return True
    return any(isinstance(k, str) and (k == "" or NEXT_EDIT_ACTION_KIND == k or NEXT_EDIT_ACTION_KIND.startswith(k + "."))
               for k in only)


def explicitly_invoked(trigger_kind) -> bool:
    """An answer to a request the user made is shown to them (a menu); an automatic one (a lightbulb) is not yet.
    A client that gives no trigger kind (LSP before 3.17) asks only when the user does."""
    return trigger_kind != TRIGGER_AUTOMATIC


def _shown(ch: str) -> str:
    """One character as a one-line title writes it: as is when a menu shows it, else as an escape."""
    if ch in _ESCAPES:
        return _ESCAPES[ch]
    if ch.isprintable():  # every character a menu draws, the ASCII space included
        return ch
    # control and format characters, and spaces other than the ASCII one: dropped, or drawn as a space, the title
    # would misstate the edit (a no-break space made a space read as inserting one); a bidirectional override
    # would reorder the title on screen
    return f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}"


def one_line(text: str, limit: int = TITLE_TEXT_CHARS) -> str:
    """``text`` for a one-line title: line breaks and tabs written as ``\\n`` and ``\\t``, backticks as quotes (the
    title quotes in backticks), other characters a menu cannot show as escapes (``\\u00a0``), and a long text cut
    in the middle with ``…``, between escapes, never inside one."""
    flat = text.replace("\r\n", "\n")
    head: list[str] = []  # read from each end only as far as the title shows: an edit may be long
    room = limit
    for ch in flat:
        piece = _shown(ch)
        room -= len(piece)
        if room < 0:
            break
        head.append(piece)
    else:
        return "".join(head)
    head_room = (limit - 1) // 2 + (limit - 1) % 2
    tail_room = limit - 1 - head_room
    taken = 0
    while taken < len(head) and len(head[taken]) <= head_room:
        head_room -= len(head[taken])
        taken += 1
    tail: list[str] = []
    for i in range(len(flat) - 1, taken - 1, -1):
        piece = _shown(flat[i])
        if len(piece) > tail_room:
            break
        tail.append(piece)
        tail_room -= len(piece)
    return "".join(head[:taken]) + "…" + "".join(reversed(tail))


def _title_texts(old_text: str, new_text: str) -> tuple[str, str]:
    """The old and the new text as the title shows them. Two that differ only past the head each keeps (a long
    name changed in its middle) would both cut to the same text, and the title would read as a change to nothing:
    those are shown from a little before their first difference."""
    old, new = one_line(old_text), one_line(new_text)
    if old != new or old_text == new_text:
        return old, new
    same = len(os.path.commonprefix([old_text, new_text]))
    for start in (max(0, same - TITLE_CONTEXT_CHARS), same):
        if start == 0:
            continue
        old, new = "…" + one_line(old_text[start:], TITLE_TEXT_CHARS - 1), "…" + one_line(new_text[start:], TITLE_TEXT_CHARS - 1)
        if old != new:
            break
    return old, new


def action_title(old_text: str, new_text: str, start_line: int, end_line: int) -> str:
    """``Tact: next edit — replace `old` with `new` (line N)``; lines 1-based, as editors number them."""
    old, new = _title_texts(old_text, new_text)
    if not old_text:
        what = f"insert `{new}`"
    elif not new_text:
        what = f"delete `{old}`"
    else:
        what = f"replace `{old}` with `{new}`"
    where = f"line {start_line + 1}" if end_line == start_line else f"lines {start_line + 1}-{end_line + 1}"
    return f"Tact: next edit — {what} ({where})"


def lsp_range(start: Position, end: Position) -> dict:
    """An LSP ``Range`` (JSON) from ``start`` to ``end``."""
    return {"start": {"line": start.line, "character": start.character},
            "end": {"line": end.line, "character": end.character}}


def next_edit_action(suggestion_id: str, uri: str, version: int, start: Position, end: Position, old_text: str,
                     new_text: str, document_changes: bool) -> dict:
    """The code action (LSP JSON) that applies a predicted edit and then reports it accepted.

    ``document_changes``: the client applies versioned edits (``workspace.workspaceEdit.documentChanges``), so the
    edit names the version it was predicted for and an editor whose buffer moved on refuses it; otherwise the plain
    ``changes`` map every client reads."""
    # a range that ends at a line's start (whole lines replaced) edits no character of that line
    last_line = end.line - 1 if end.character == 0 and end.line > start.line else end.line
    text_edit = {"range": lsp_range(start, end), "newText": new_text}
    if document_changes:
        edit = {"documentChanges": [{"textDocument": {"uri": uri, "version": version}, "edits": [text_edit]}]}
    else:
        edit = {"changes": {uri: [text_edit]}}
    return {
        "title": action_title(old_text, new_text, start.line, last_line),
        "kind": NEXT_EDIT_ACTION_KIND,
        "edit": edit,
        "command": {"title": "Accept Tact next edit", "command": COMMAND_ACCEPT_NEXT_EDIT, "arguments": [suggestion_id]},
    }


class UnshownActions:
    """Next edits answered to automatic code-action requests and not shown yet: one is shown once the editor applies
    it (its accept command arrives), so telemetry logs it shown before accepted, even after the document's next one
    superseded it (the editor may still list it). Bounded as the ledger is: the oldest of those never applied go."""

    def __init__(self, capacity: int = 2000) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def add(self, suggestion_id: str) -> None:
        with self._lock:
            self._ids[suggestion_id] = None
            while len(self._ids) > self._capacity:
                self._ids.popitem(last=False)

    def take(self, suggestion_id: str) -> bool:
        """Whether ``suggestion_id`` was waiting to be shown; it no longer is."""
        with self._lock:
            if suggestion_id not in self._ids:
                return False
            del self._ids[suggestion_id]
            return True
