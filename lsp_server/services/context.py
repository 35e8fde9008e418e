"""What the model sees: the prefix/suffix windows around the cursor, and cursor facts.

The prefix window's start is kept *stable* while the user types: it is snapped to a line
start at or after a point on a fixed grid (``PREFIX_GRID`` chars), so successive prompts
share their beginning and only grow at the end, which lets a KV cache be reused. It moves
only when the cursor crosses a grid boundary (every ``PREFIX_GRID`` typed chars at most).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from .positions import LineIndex, Position, offset_at, position_at
from models.syntax import NEUTRAL_FACTS, CursorFacts, cursor_facts, line_start

__all__ = ["CompletionContext", "build_context", "prefix_window_start", "PREFIX_GRID"]

PREFIX_GRID = 1024
# How far past the grid point the window start may snap to a line start. Unbounded, a long line across the grid
# point (a data table, a minified line) took the window with it: after one of 3,400 chars the prompt held only the
# cursor line, nothing at all right after Enter. Held-out and calibration code never has the first line start after
# the grid point this far on (20,300 cursors), so ordinary windows stay where they were.
MAX_SNAP = 256
DEFAULT_PREFIX_CHARS = 4096
DEFAULT_SUFFIX_CHARS = 1024

_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class CompletionContext:
    prefix: str  # text from the stable window start up to the cursor
    suffix: str  # text after the cursor, up to suffix_chars, cut at a line boundary
    line_prefix: str  # the cursor line up to the cursor
    line_suffix: str  # the cursor line after the cursor (line break excluded)
    offset: int  # str index of the cursor in the document
    position: Position  # the cursor, clamped into the document
    facts: CursorFacts = NEUTRAL_FACTS
    language_id: str = "python"
    prefix_start: int = 0  # str index in the document where ``prefix`` begins
    document_chars: int = -1  # length of the whole document (str chars); -1: unknown
    # The whole document the windows were cut from (the snapshot itself, not a copy); None: unknown. The acceptance
    # gate reads the text around the cursor from it as training does, whatever size the settings give the windows.
    document: str | None = field(default=None, repr=False, compare=False)
    # In a notebook cell whose prefix window reaches the cell's start: the code of the cells above it, read as the
    # script's earlier part (NotebookStore.earlier_cells). The prompt puts it before ``prefix``; everything that
    # reads the cursor's surroundings (post-processing, the gate's features) keeps to the cell.
    earlier_cells: str = field(default="", repr=False)

    @property
    def previous_line(self) -> str | None:
        """The line above the cursor line, when it is inside the prefix window."""
        if len(self.line_prefix) >= len(self.prefix):
            return None
        head = self.prefix[: len(self.prefix) - len(self.line_prefix)]
        body = head[:-2] if head.endswith("\r\n") else head[:-1]
        return body[_last_break_end(body) :]

    def with_earlier_cells(self, earlier: str) -> CompletionContext:
        """This context with the code of a notebook's cells above its cell (``earlier``); as it is without any.
        Only where the prefix window reaches the cell's start: otherwise the earlier cells would not join the
        window's text. They stay the same while the cell is typed in, so the prompts keep their beginning (and the
        KV cache); the prompt's token budget cuts the whole from the front."""
        return replace(self, earlier_cells=earlier) if earlier and self.prefix_start == 0 else self

    @property
    def mid_line(self) -> bool:
        """Whether there is non-whitespace text after the cursor on its line."""
        return bool(self.line_suffix.strip())

    def summary(self) -> dict[str, Any]:
        """Sizes, positions and facts for telemetry; never source text."""
        return {
            "language_id": self.language_id,
            "line": self.position.line,
            "character": self.position.character,
            "offset": self.offset,
            "prefix_start": self.prefix_start,
            "prefix_chars": len(self.prefix),
            "suffix_chars": len(self.suffix),
            "prefix_lines": self.prefix.count("\n") + 1,
            "suffix_lines": self.suffix.count("\n") + 1 if self.suffix else 0,
            "line_prefix_chars": len(self.line_prefix),
            "line_suffix_chars": len(self.line_suffix),
            "mid_line": self.mid_line,
            **({"earlier_cells_chars": len(self.earlier_cells)} if self.earlier_cells else {}),
            **self.facts.as_dict(),
        }


def _last_break_end(text: str) -> int:
    return max(text.rfind("\n"), text.rfind("\r")) + 1


def prefix_window_start(text: str, offset: int, prefix_chars: int, grid: int = PREFIX_GRID) -> int:
    """Where the prefix window starts: the first line start at or after the grid point
    ``floor((offset - prefix_chars) / grid) * grid``, within ``MAX_SNAP`` chars of it; that grid
    point itself when there is none (a long line, or one very long line the cursor is on).
    Depends only on text before the cursor and on the grid cell, so appending at the cursor
    leaves it unchanged until a grid crossing. The grid is at most ``prefix_chars`` wide, so the window spans
    ``prefix_chars`` to twice that (up to ``prefix_chars + grid``): with the grid fixed, a setting of 0 to 1023 gave up
    to 1023."""
    grid = max(1, min(grid, prefix_chars))
    lo = offset - prefix_chars
    if lo <= 0:
        return 0
    g = (lo // grid) * grid
    if g == 0:
        return 0
    if text[g - 1] == "\n" or (text[g - 1] == "\r" and text[g : g + 1] != "\n"):
        return g  # already a line start
    m = _BREAK.search(text, g, offset)
    return m.end() if m is not None and m.start() < g + MAX_SNAP else g


def build_context(
    document_text: str,
    position: Position,
    *,
    prefix_chars: int = DEFAULT_PREFIX_CHARS,
    suffix_chars: int = DEFAULT_SUFFIX_CHARS,
    language_id: str = "python",
    index: LineIndex | None = None,
    with_facts: bool = True,
) -> CompletionContext:
    """Context around ``position`` (clamped into the document).

    ``index`` (a document's cached :class:`LineIndex`) avoids rescanning big documents.
    """
    text = document_text
    offset = offset_at(text, position, clamp=True, index=index)
    pos = position_at(text, offset, index=index)
    start = prefix_window_start(text, offset, prefix_chars)
    prefix = text[start:offset]

    if index is not None:
        line_begin, line_end = index.line_bounds(pos.line)
    else:
        line_begin = line_start(text, offset)
        m = _BREAK.search(text, offset)
        line_end = m.start() if m else len(text)
    line_prefix = text[line_begin:offset]
    line_suffix = text[offset:line_end]

    end = min(len(text), offset + max(suffix_chars, 0))
    suffix = text[offset:end]
    if end < len(text):
        cut = _last_break_end(suffix)
        if cut > 0:  # keep whole lines; without a break in reach keep the partial line
            if suffix[cut - 1] == "\r" and text[offset + cut : offset + cut + 1] == "\n":
                cut += 1  # do not split a CRLF at the window edge
            suffix = text[offset : offset + cut]

    facts = cursor_facts(text, offset, language_id) if with_facts else NEUTRAL_FACTS
    return CompletionContext(
        prefix=prefix,
        suffix=suffix,
        line_prefix=line_prefix,
        line_suffix=line_suffix,
        offset=offset,
        position=pos,
        facts=facts,
        language_id=language_id,
        prefix_start=start,
        document_chars=len(text),
        document=text,
    )
