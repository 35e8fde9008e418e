"""Notebook sync over LSP with the real server process and the real default model: a cell's completion reads the
cells above it, cells open, change, move and close with their notebook, and bad notebook messages lose nothing."""

from __future__ import annotations

import json
import sqlite3
import tempfile
import time
from pathlib import Path

import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.lsp_support import initialize_params, model_under_test, server_command, wait_for_rows

NB = "file:///project/analysis.ipynb"
OPTIONS = {"decodingPolicy": "full", "acceptanceGate": False}
DEFINES = "import json\n\n\ndef read_settings_file(path):\n    with open(path) as f:\n        return json.load(f)\n"
USES = "cfg = read_settings"
DB = {}


def cell_uri(n: int) -> str:
    return f"vscode-notebook-cell:/project/analysis.ipynb#W{n}sZmlsZQ%3D%3D"


def _config() -> ClientServerConfig:
    db = DB.setdefault("path", tempfile.mkdtemp(prefix="tact-notebook-") + "/telemetry.sqlite3")
    return ClientServerConfig(server_command=server_command(model_under_test(), db))


def _db() -> Path:
    return Path(DB["path"])


@pytest_lsp.fixture(config=_config())
async def client(lsp_client: LanguageClient):
    params = initialize_params(OPTIONS)
    params.capabilities.notebook_document = types.NotebookDocumentClientCapabilities(  # as VS Code declares it
        synchronization=types.NotebookDocumentSyncClientCapabilities(execution_summary_support=True))
    lsp_client.init_result = await lsp_client.initialize_session(params)
    yield
    await lsp_client.shutdown_session()


def _item(uri: str, text: str, version: int = 1) -> types.TextDocumentItem:
    return types.TextDocumentItem(uri=uri, language_id="python", version=version, text=text)


def _code(uri: str) -> types.NotebookCell:
    return types.NotebookCell(kind=types.NotebookCellKind.Code, document=uri)


def _open(client: LanguageClient, cells: list[tuple[str, str]], notebook: str = NB) -> None:
    client.notebook_document_did_open(types.DidOpenNotebookDocumentParams(
        notebook_document=types.NotebookDocument(uri=notebook, notebook_type="jupyter-notebook", version=1,
                                                 cells=[_code(uri) for uri, _ in cells]),
        cell_text_documents=[_item(uri, text) for uri, text in cells]))


def _structure(client: LanguageClient, version: int, start: int, delete: int, cells: list[str],
               opened: list[tuple[str, str]] = (), closed: list[str] = (), notebook: str = NB) -> None:
    client.notebook_document_did_change(types.DidChangeNotebookDocumentParams(
        notebook_document=types.VersionedNotebookDocumentIdentifier(uri=notebook, version=version),
        change=types.NotebookDocumentChangeEvent(cells=types.NotebookDocumentCellChanges(
            structure=types.NotebookDocumentCellChangeStructure(
                array=types.NotebookCellArrayChange(start=start, delete_count=delete, cells=[_code(c) for c in cells]),
                did_open=[_item(uri, text) for uri, text in opened],
                did_close=[types.TextDocumentIdentifier(uri=uri) for uri in closed])))))


def _type(client: LanguageClient, uri: str, version: int, line: int, character: int, text: str,
          notebook: str = NB, notebook_version: int = 1) -> None:
    at = types.Position(line=line, character=character)
    client.notebook_document_did_change(types.DidChangeNotebookDocumentParams(
        notebook_document=types.VersionedNotebookDocumentIdentifier(uri=notebook, version=notebook_version),
        change=types.NotebookDocumentChangeEvent(cells=types.NotebookDocumentCellChanges(text_content=[
            types.NotebookDocumentCellContentChanges(
                document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
                changes=[types.TextDocumentContentChangePartial(range=types.Range(start=at, end=at), text=text)])]))))


async def _suggest(client: LanguageClient, uri: str, line: int, character: int) -> list:
    result = await client.text_document_inline_completion_async(types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=line, character=character),
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked)))
    return list(result.items if hasattr(result, "items") else result or [])


async def test_notebook_sync_is_offered_for_python_cells(client: LanguageClient):
    sync = client.init_result.capabilities.notebook_document_sync
    assert sync is not None
    [selector] = sync.notebook_selector
    assert selector.notebook == "*" and [c.language for c in selector.cells] == ["python"]


async def test_a_cells_completion_reads_the_cells_above_it(client: LanguageClient):
    _open(client, [(cell_uri(0), DEFINES), (cell_uri(1), "")])
    _type(client, cell_uri(1), 2, 0, 0, USES)
    items = await _suggest(client, cell_uri(1), 0, len(USES))
    assert items and items[0].insert_text.startswith("_file"), items  # the function defined in the cell above
    sid = items[0].command.arguments[0]
    rows = wait_for_rows(_db(), "select uri, context from suggestions where id = ?", (sid,))
    assert rows and rows[0][0] == cell_uri(1) and json.loads(rows[0][1])["earlier_cells_chars"] == len(DEFINES) + 1
    # The same text as a file of its own has no such function to call.
    client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=_item("file:///project/alone.py", USES)))
    alone = await _suggest(client, "file:///project/alone.py", 0, len(USES))
    assert not alone or not alone[0].insert_text.startswith("_file")
    kinds = wait_for_rows(_db(), "select kind, cells from notebooks where notebook_uri = ? order by seq", (NB,))
    assert kinds and kinds[0][0] == "open" and json.loads(kinds[0][1]) == [cell_uri(0), cell_uri(1)]


async def test_cells_added_moved_and_removed_change_what_a_cell_reads(client: LanguageClient):
    nb = "file:///project/moves.ipynb"
    first, helper, user = (f"vscode-notebook-cell:/project/moves.ipynb#C{n}" for n in range(3))
    _open(client, [(first, "x = 1\n"), (user, "")], notebook=nb)
    # A new cell between them defines the function; the typing cell now sees it.
    _structure(client, 2, 1, 0, [helper], opened=[(helper, DEFINES)], notebook=nb)
    _type(client, user, 2, 0, 0, USES, notebook=nb, notebook_version=2)
    items = await _suggest(client, user, 0, len(USES))
    assert items and items[0].insert_text.startswith("_file"), items
    # Moved below the typing cell, then removed: the typing cell no longer reads it.
    _structure(client, 3, 1, 2, [user, helper], notebook=nb)
    moved = await _suggest(client, user, 0, len(USES))
    assert not moved or not moved[0].insert_text.startswith("_file")
    _structure(client, 4, 2, 1, [], closed=[helper], notebook=nb)
    rows = wait_for_rows(_db(), "select kind, cells from notebooks where notebook_uri = ? order by seq", (nb,), want=4)
    assert [r[0] for r in rows] == ["open", "change", "change", "change"]
    assert [json.loads(r[1]) for r in rows] == [[first, user], [first, helper, user], [first, user, helper], [first, user]]
    closed = wait_for_rows(_db(), "select uri from documents where kind = 'close' and uri = ?", (helper,))
    assert closed


async def test_closing_a_notebook_closes_its_cells(client: LanguageClient):
    nb = "file:///project/closing.ipynb"
    a, b = "vscode-notebook-cell:/project/closing.ipynb#A", "vscode-notebook-cell:/project/closing.ipynb#B"
    _open(client, [(a, DEFINES), (b, USES)], notebook=nb)
    client.notebook_document_did_close(types.DidCloseNotebookDocumentParams(
        notebook_document=types.NotebookDocumentIdentifier(uri=nb),
        cell_text_documents=[types.TextDocumentIdentifier(uri=a), types.TextDocumentIdentifier(uri=b)]))
    assert await _suggest(client, b, 0, len(USES)) == []  # no such document any more
    rows = wait_for_rows(_db(), "select kind, cells from notebooks where notebook_uri = ? order by seq", (nb,), want=2)
    assert [r[0] for r in rows] == ["open", "close"] and json.loads(rows[1][1]) == []
    closes = wait_for_rows(_db(), "select uri from documents where kind = 'close' and uri in (?, ?)", (a, b), want=2)
    assert len(closes) == 2


async def test_bad_notebook_messages_are_dropped_and_lose_nothing(client: LanguageClient):
    nb = "file:///project/bad.ipynb"
    a = "vscode-notebook-cell:/project/bad.ipynb#A"
    _open(client, [(a, "")], notebook=nb)
    # A cell range past the end: the structure is kept as it was, the text change in the same message applies.
    client.notebook_document_did_change(types.DidChangeNotebookDocumentParams(
        notebook_document=types.VersionedNotebookDocumentIdentifier(uri=nb, version=2),
        change=types.NotebookDocumentChangeEvent(cells=types.NotebookDocumentCellChanges(
            structure=types.NotebookDocumentCellChangeStructure(
                array=types.NotebookCellArrayChange(start=5, delete_count=3, cells=[])),
            text_content=[types.NotebookDocumentCellContentChanges(
                document=types.VersionedTextDocumentIdentifier(uri=a, version=2),
                changes=[types.TextDocumentContentChangePartial(
                    range=types.Range(start=types.Position(line=0, character=0),
                                      end=types.Position(line=0, character=0)), text="def f(")])]))))
    # Messages for a notebook never opened, and one listing a cell whose text it does not send.
    _structure(client, 2, 0, 0, [], notebook="file:///project/never.ipynb")
    client.notebook_document_did_close(types.DidCloseNotebookDocumentParams(
        notebook_document=types.NotebookDocumentIdentifier(uri="file:///project/never.ipynb"), cell_text_documents=[]))
    client.notebook_document_did_open(types.DidOpenNotebookDocumentParams(
        notebook_document=types.NotebookDocument(uri="file:///project/textless.ipynb", notebook_type="jupyter-notebook",
                                                 version=1, cells=[_code("vscode-notebook-cell:/x#1"), _code(a)]),
        cell_text_documents=[]))
    items = await _suggest(client, a, 0, len("def f("))
    assert items, "the server stopped answering, or lost the text change"
    status = await client.protocol.send_request_async("tact/status", {})
    assert status is not None
    rows = wait_for_rows(_db(), "select kind from notebooks where notebook_uri = ?", (nb,))
    assert [r[0] for r in rows] == ["open"]
    assert await _suggest(client, "vscode-notebook-cell:/x#1", 0, 0) == []


def test_a_notebook_is_carried_when_the_telemetry_database_moves(tmp_path):
    """Moving tact.telemetryDatabase carries the open documents into the new database; their notebook too, or a
    replay of it would serve the cells as files of their own."""
    from telemetry.lsp_client import LspClient, text_document_item

    nb = "file:///project/carried.ipynb"
    a, b = "vscode-notebook-cell:/project/carried.ipynb#A", "vscode-notebook-cell:/project/carried.ipynb#B"
    first, second = tmp_path / "first.sqlite3", tmp_path / "second.sqlite3"
    client = LspClient(server_command(model_under_test(), None))
    try:
        client.initialize({**OPTIONS, "telemetryDatabase": str(first)})
        client.did_open_notebook(nb, "jupyter-notebook", 1, [text_document_item(a, DEFINES, 1), text_document_item(b, "", 1)])
        client.notify("workspace/didChangeConfiguration",
                      {"settings": {"tact": {**OPTIONS, "telemetryDatabase": str(second)}}})
        for _ in range(600):
            if client.request("tact/status")["database"] == str(second):
                break
            time.sleep(0.1)
    finally:
        client.shutdown()
    for db in (first, second):
        rows = wait_for_rows(db, "select kind, cells from notebooks where notebook_uri = ? order by seq", (nb,))
        assert [(r[0], json.loads(r[1])) for r in rows][:1] == [("open", [a, b])], db
        opened = wait_for_rows(db, "select uri from documents where kind = 'open' and uri in (?, ?)", (a, b), want=2)
        assert len(opened) == 2, db
    # the first database, left while the session went on, has the notebook and its cells closed after their snapshots
    wait_for_rows(second, "select 1 from sessions where ended_at is not null")
    with sqlite3.connect(first) as conn:
        assert [k for (k,) in conn.execute("select kind from notebooks where notebook_uri = ? order by seq", (nb,))] == [
            "open", "close"]
        assert sorted(conn.execute("select uri from documents where kind = 'close'")) == [(a,), (b,)]
    from telemetry.reader import list_sessions, open_readonly
    from telemetry.reconstruct import build_script

    for db in (first, second):
        conn = open_readonly(db)
        try:
            (session,) = list_sessions(conn)
            assert build_script(conn, session["id"]).issues == [], db
        finally:
            conn.close()


async def _next_edit(client: LanguageClient, uri: str, version: int, line: int, character: int, **extra) -> list:
    result = await client.protocol.send_request_async("tact/nextEdit", {
        "textDocument": {"uri": uri, "version": version}, "position": {"line": line, "character": character}, **extra})
    return list(result.edits)


async def test_a_rename_in_a_cell_is_carried_to_a_cell_below_when_the_client_asks(client: LanguageClient):
    """With otherCells, an identifier replaced in one cell, with nothing more to change there, is replaced again at
    its first use in a cell below: the edit names that cell and its version. Without it, edits stay in the cell."""
    nb = "file:///project/rename.ipynb"
    top, middle, below = (f"vscode-notebook-cell:/project/rename.ipynb#R{n}" for n in range(3))
    _open(client, [(top, "values = [1, 2]\n"), (middle, "print('no use here')\n"), (below, "total = sum(values)\n")],
          notebook=nb)
    client.notebook_document_did_change(types.DidChangeNotebookDocumentParams(  # `values` renamed `items` at once
        notebook_document=types.VersionedNotebookDocumentIdentifier(uri=nb, version=1),
        change=types.NotebookDocumentChangeEvent(cells=types.NotebookDocumentCellChanges(text_content=[
            types.NotebookDocumentCellContentChanges(
                document=types.VersionedTextDocumentIdentifier(uri=top, version=2),
                changes=[types.TextDocumentContentChangePartial(
                    range=types.Range(start=types.Position(line=0, character=0),
                                      end=types.Position(line=0, character=6)), text="items")])]))))
    assert await _next_edit(client, top, 2, 0, 5) == []  # the cell holds no other `values`
    [edit] = await _next_edit(client, top, 2, 0, 5, otherCells=True)
    assert edit.newText == "items" and edit.textDocument.uri == below and edit.textDocument.version == 1
    assert (edit.range.start.line, edit.range.start.character, edit.range.end.character) == (0, 12, 18)
    await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="tact.acceptNextEdit", arguments=[edit.id]))
    rows = wait_for_rows(_db(), "select uri, outcome, json_extract(context, '$.other_cells') from suggestions "
                                "where id = ? and outcome is not null", (edit.id,))
    assert rows == [(top, "accepted", 1)]
    details = wait_for_rows(_db(), "select payload from suggestion_events where suggestion_id = ? "
                                   "and type = 'suggestion_generated'", (edit.id,))
    logged = json.loads(details[0][0])["details"]
    assert logged["uri"] == below and logged["version"] == 1 and logged["range"] == [0, 12, 0, 18]
