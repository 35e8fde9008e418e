"""Which documents form a notebook, and in which order, so that a completion in a cell sees the code above it.

Over LSP notebook sync every cell is a text document of its own, kept in the DocumentStore under the cell's URI
like any file; this store holds only the notebooks' cell order. The model was trained on scripts, so the code cells
above the cursor's cell are read as the script's earlier part (``earlier_cells``). pygls-free.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Notebook", "NotebookError", "NotebookStore", "CELL_SEPARATOR", "cells_above"]

# Between two cells' texts: one blank line, as between two top-level statements of a script.
CELL_SEPARATOR = "\n\n"
_BREAK = re.compile(r"\r\n|\r|\n")
_CODE = re.compile(r"\S")  # what ``str.strip()`` keeps (both read Unicode whitespace alike)


class NotebookError(ValueError):
    """A notebook message that does not fit what the server holds (an unknown notebook, a cell range past its end)."""


@dataclass(frozen=True)
class Notebook:
    uri: str
    notebook_type: str
    version: int
    cells: tuple[str, ...]  # the synced cells' document URIs, in notebook order


class NotebookStore:
    """Notebooks by URI and the notebook of each cell. Changed and read on the event loop only: a completion reads
    the cells above its cell at the request (``CompletionPipeline``), not when the worker gets to it."""

    def __init__(self) -> None:
        self._notebooks: dict[str, Notebook] = {}
        self._notebook_of: dict[str, str] = {}  # cell document URI -> notebook URI

    def __contains__(self, uri: str) -> bool:
        return uri in self._notebooks

    def all(self) -> list[Notebook]:
        return list(self._notebooks.values())

    def get(self, uri: str) -> Notebook | None:
        return self._notebooks.get(uri)

    def notebook_of(self, cell_uri: str) -> Notebook | None:
        uri = self._notebook_of.get(cell_uri)
        return self._notebooks.get(uri) if uri is not None else None

    def cells_around(self, cell_uri: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(the cells above ``cell_uri``, the cells below it) in its notebook, in notebook order; both empty outside
        notebooks."""
        notebook = self.notebook_of(cell_uri)
        if notebook is None or cell_uri not in notebook.cells:
            return (), ()
        at = notebook.cells.index(cell_uri)
        return notebook.cells[:at], notebook.cells[at + 1:]

    def open(self, uri: str, notebook_type: str, version: int, cells: list[str] | tuple[str, ...]) -> Notebook:
        """Hold a notebook; a cell listed twice is kept once (where it is first listed), and a cell that another
        open notebook lists moves to this one: a cell document belongs to one notebook."""
        notebook = Notebook(uri, notebook_type, version, _unique(cells))
        self._set(notebook)
        return notebook

    def change_cells(self, uri: str, version: int, start: int, delete_count: int,
                     inserted: list[str] | tuple[str, ...]) -> tuple[Notebook, tuple[str, ...]]:
        """Apply one array change of LSP's ``NotebookCellArrayChange``; the new notebook and the cells it removed.

        NotebookError where the notebook is unknown or the range does not lie inside its cells; nothing changes then.
        """
        old = self._notebooks.get(uri)
        if old is None:
            raise NotebookError(f"notebook {uri} is not open")
        if start < 0 or delete_count < 0 or start + delete_count > len(old.cells):
            raise NotebookError(f"cells {start}..{start + delete_count} of notebook {uri} do not exist "
                                f"(it has {len(old.cells)})")
        removed = old.cells[start:start + delete_count]
        cells = _unique(old.cells[:start] + tuple(inserted) + old.cells[start + delete_count:])
        notebook = Notebook(uri, old.notebook_type, version, cells)
        self._set(notebook)
        kept = set(cells)
        return notebook, tuple(c for c in removed if c not in kept)

    def set_version(self, uri: str, version: int) -> None:
        if (old := self._notebooks.get(uri)) is not None:
            self._notebooks[uri] = Notebook(uri, old.notebook_type, version, old.cells)

    def close(self, uri: str) -> Notebook | None:
        notebook = self._notebooks.pop(uri, None)
        if notebook is not None:
            for cell in notebook.cells:
                if self._notebook_of.get(cell) == uri:
                    del self._notebook_of[cell]
        return notebook

    def earlier_cells(self, cell_uri: str, texts, language_id: str, max_chars: int) -> str:
        """The code of the cells above ``cell_uri`` in its notebook, as the earlier part of one script: each cell's
        text without its trailing line breaks, then ``CELL_SEPARATOR``; at most ``max_chars``, cut at a line start.

        ``texts(uri)`` gives a cell's (language_id, text), or None for a cell not open. Cells of another language
        than this one are left out (a notebook's SQL or shell cells are not Python). "" outside notebooks."""
        if max_chars <= 0:
            return ""
        parts: list[str] = []
        size = 0
        for uri in reversed(self.cells_around(cell_uri)[0]):
            held = texts(uri)
            if held is None or held[0] != language_id:
                continue
            text = held[1]
            end = _end_before_breaks(text)
            body = text[max(0, end - max_chars - 1):end]  # no more than can be kept: a cell may be huge
            if not body.strip() and _CODE.search(text, 0, end - len(body)) is None:  # no copy of a huge blank cell
                continue
            parts.append(body + CELL_SEPARATOR)
            size += len(parts[-1])
            if size >= max_chars:
                break
        joined = "".join(reversed(parts))
        if len(joined) <= max_chars:
            return joined
        cut = len(joined) - max_chars
        m = _BREAK.search(joined, max(cut - 1, 0))  # the first line start at or after the cut
        kept = joined[m.end():] if m is not None else ""
        return kept if kept.strip() else ""  # no blank lines alone: they are no code above

    def _set(self, notebook: Notebook) -> None:
        old = self._notebooks.get(notebook.uri)
        if old is not None:
            now = set(notebook.cells)  # a set: a tuple searched for each old cell cost 1.9 s a change at 20,000 cells
            for cell in old.cells:
                if cell not in now and self._notebook_of.get(cell) == notebook.uri:
                    del self._notebook_of[cell]
        for cell in notebook.cells:
            other = self._notebook_of.get(cell)
            if other is not None and other != notebook.uri and (held := self._notebooks.get(other)) is not None:
                self._notebooks[other] = Notebook(other, held.notebook_type, held.version,
                                                  tuple(c for c in held.cells if c != cell))
            self._notebook_of[cell] = notebook.uri
        self._notebooks[notebook.uri] = notebook


def _unique(cells) -> tuple[str, ...]:
    return tuple(dict.fromkeys(cells))


def cells_above(cells: list[tuple[str, str] | None], cell: int, language_id: str, max_chars: int) -> str:
    """What the server reads above cell ``cell`` (0-based) of a notebook held only as ``cells``, each (language,
    text), None for a cell that is no code cell (``NotebookStore.earlier_cells``): for a notebook read from a file
    (`tact complete`) or cut from one (`tact bench notebook`), not one a client opened."""
    store = NotebookStore()
    uris = [f"cell:{n}" for n in range(len(cells))]
    store.open("notebook", "jupyter-notebook", 0, uris)
    held = dict(zip(uris, cells))
    return store.earlier_cells(uris[cell], held.get, language_id, max_chars)


def _end_before_breaks(text: str, chunk: int = 4096) -> int:
    """Where ``text`` ends once its trailing line breaks are left out, read from the end a chunk at a time: a
    character at a time cost 68.6 ms a request below a cell of a million blank lines, and stripping the whole text
    copied every cell of every request."""
    end = len(text)
    while end:
        piece = text[max(0, end - chunk):end]
        kept = len(piece.rstrip("\r\n"))
        end -= len(piece) - kept
        if kept:
            break
    return end
