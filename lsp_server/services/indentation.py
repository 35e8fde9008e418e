"""Tab-indented documents shown to the code model as space-indented ones, and its suggestions turned back.

The model learnt from code indented with spaces (the corpus has next to no tabs): in a tab-indented file it wrote
fewer suggestions and about half as many right ones (end-of-line cursors in held-out files made tab-indented, a
throwaway script: 16 of 200 exact against 29 for the same cursors indented with spaces). The prompt therefore
reads each leading tab as ``TAB_WIDTH`` spaces, and the suggestion's indentation goes back to tabs before it is
trimmed and shown. Only indentation changes: a tab after other text on its line is left as it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from lsp_server.services.context import CompletionContext

TAB_WIDTH = 4
_TAB_INDENT = re.compile(r"^\t+", re.M)
_SPACE_INDENT = re.compile(r"^ +(?=\S)", re.M)
_SPACE_GROUPS = re.compile(r"^(?: {%d})+" % TAB_WIDTH, re.M)


def tab_indented(text: str) -> bool:
    """Whether ``text``'s indented lines all start with a tab. Where some start with spaces the tab's width is not
    known (GNU-style C indents by 4 with 8-column tabs): read as 4, the levels collapsed, and the document's own
    4-space lines came back as tabs."""
    return _TAB_INDENT.search(text) is not None and _SPACE_INDENT.search(text) is None


def _spaces(text: str, at_line_start: bool) -> str:
    """``text`` with the tabs that start its lines as spaces; its first line's too when ``at_line_start``."""
    if at_line_start:
        return _TAB_INDENT.sub(lambda m: " " * (TAB_WIDTH * len(m.group())), text)
    first, sep, rest = text.partition("\n")
    return first + sep + _TAB_INDENT.sub(lambda m: " " * (TAB_WIDTH * len(m.group())), rest) if sep else text


@dataclass(frozen=True)
class TabView:
    """A tab-indented context as the model reads it (``context``), and the way back for what it writes."""

    context: CompletionContext  # the prefix, suffix and cells above with their leading tabs as spaces
    # whether the cursor stands in its line's indentation: the suggestion's first line then goes on with it
    in_indent: bool
    # whether the suggestion goes back to tabs: the document's (a notebook cell's) own indentation is tabs; a cell
    # indented with spaces below cells indented with tabs got tabs, and a TabError
    to_tabs: bool = True

    def back(self, written: str) -> str:
        """``written`` (the model's text after the cursor) with its indentation as tabs: every run of ``TAB_WIDTH``
        spaces that starts a line after the first, and the first line's own when the cursor is in the indentation."""
        if not self.to_tabs:
            return written
        if self.in_indent:
            return _SPACE_GROUPS.sub(lambda m: "\t" * (len(m.group()) // TAB_WIDTH), written)
        first, sep, rest = written.partition("\n")
        return first + sep + _SPACE_GROUPS.sub(lambda m: "\t" * (len(m.group()) // TAB_WIDTH), rest) if sep else written


def _indented(text: str) -> bool:
    return _TAB_INDENT.search(text) is not None or _SPACE_INDENT.search(text) is not None


def tab_view(ctx: CompletionContext) -> TabView | None:
    """The view of a ``ctx`` with tab-indented text, or None where none is (or nothing is indented). The document's
    own text (a notebook cell's) decides how the suggestion is indented, the cells above only where it has no
    indented line; cells above indented with tabs are read with spaces whatever the cell's own indentation."""
    own = ctx.prefix + ctx.suffix
    own_tabs = tab_indented(own) if _indented(own) else tab_indented(ctx.earlier_cells)
    earlier_tabs = bool(ctx.earlier_cells) and tab_indented(ctx.earlier_cells)
    if not own_tabs and not earlier_tabs:
        return None
    # The prefix window starts at a line's start; the cells above end with a line break; the suffix starts on the
    # cursor line, after the cursor.
    in_indent = not ctx.line_prefix.strip(" \t")
    seen = replace(ctx, earlier_cells=_spaces(ctx.earlier_cells, True) if earlier_tabs else ctx.earlier_cells)
    if own_tabs:  # the suffix's first line is indentation too where the cursor stands in it
        seen = replace(seen, prefix=_spaces(ctx.prefix, True), suffix=_spaces(ctx.suffix, in_indent))
    return TabView(seen, in_indent=in_indent, to_tabs=own_tabs)
