"""notebookDocument/didOpen / didChange / didClose (LSP 3.17 notebook sync) into the DocumentStore and the
NotebookStore. Each cell's text document goes through the same paths as a file's (text_sync), so its edits, its
suggestions and its telemetry are those of a document; the notebook's cell order is recorded after every open,
structure change and close, so a replay rebuilds what a cell's completion saw. A message for a notebook never opened,
or a cell range past its end, is logged and dropped; the cells' text changes in it still apply."""

from __future__ import annotations

import logging

from lsprotocol import types

from lsp_server.features.text_sync import change_document, close, open_document
from lsp_server.services.notebooks import NotebookError

log = logging.getLogger("tact.documents")

# Python code cells of any notebook type (Jupyter, VS Code's interactive window): the cells the model serves.
NOTEBOOK_SYNC = types.NotebookDocumentSyncOptions(notebook_selector=[
    types.NotebookDocumentFilterWithCells(notebook="*", cells=[types.NotebookCellLanguage(language="python")]),
])


def register(server) -> None:
    @server.feature(types.NOTEBOOK_DOCUMENT_DID_OPEN)
    def did_open(ls, params: types.DidOpenNotebookDocumentParams) -> None:
        notebook = params.notebook_document
        if notebook.uri in ls.notebooks:  # opened twice without a close: closed first, as a text document is
            log.warning("notebookDocument/didOpen for %s, which is open already: closed first", notebook.uri)
            close_notebook(ls, notebook.uri)
        for doc in params.cell_text_documents:
            open_document(ls, doc)
        held = ls.notebooks.open(notebook.uri, notebook.notebook_type, notebook.version,
                                 [cell.document for cell in notebook.cells])
        ls.recorder.notebook_changed(held.uri, held.notebook_type, held.version, "open", held.cells)

    @server.feature(types.NOTEBOOK_DOCUMENT_DID_CHANGE)
    def did_change(ls, params: types.DidChangeNotebookDocumentParams) -> None:
        uri, version = params.notebook_document.uri, params.notebook_document.version
        cells = params.change.cells
        structure = cells.structure if cells is not None else None
        if structure is not None:
            for doc in structure.did_close or ():
                close(ls, doc.uri)
            for doc in structure.did_open or ():
                open_document(ls, doc)
            array = structure.array
            try:
                held, _removed = ls.notebooks.change_cells(uri, version, array.start, array.delete_count,
                                                           [cell.document for cell in array.cells or ()])
            except NotebookError as exc:
                log.warning("notebookDocument/didChange: cells left as they were: %s", exc)
            else:
                ls.recorder.notebook_changed(held.uri, held.notebook_type, held.version, "change", held.cells)
        else:
            ls.notebooks.set_version(uri, version)
        for content in (cells.text_content if cells is not None else None) or ():
            change_document(ls, content.document.uri, content.document.version, content.changes)

    @server.feature(types.NOTEBOOK_DOCUMENT_DID_CLOSE)
    def did_close(ls, params: types.DidCloseNotebookDocumentParams) -> None:
        for doc in params.cell_text_documents:
            close(ls, doc.uri)
        if params.notebook_document.uri not in ls.notebooks:
            log.warning("notebookDocument/didClose for %s, which is not open", params.notebook_document.uri)
            return
        close_notebook(ls, params.notebook_document.uri)


def close_notebook(ls, uri: str) -> None:
    """Forget a notebook, closing the cells still open (a client closes them itself in the same message)."""
    notebook = ls.notebooks.close(uri)
    if notebook is None:
        return
    for cell in notebook.cells:
        if cell in ls.documents:
            close(ls, cell)
    ls.recorder.notebook_changed(uri, notebook.notebook_type, notebook.version, "close", ())
