"""Notebooks in replay: the script's notebook steps, and the notebook messages a replay sends for them, as VS Code
sends them (a cell's document opened, changed and closed through its notebook's messages)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from telemetry import (
    DocumentClosed,
    DocumentOpened,
    DocumentSnapshot,
    EditEvent,
    NotebookChanged,
    SessionEnded,
    SessionStarted,
    SuggestionRequested,
    TelemetryStore,
    open_readonly,
)
from telemetry.lsp_client import LspClient, change_at, text_document_item
from telemetry.replay import ReplayOptions, _Driver, replay
from telemetry.simulate import ACCELERATED_DEFAULTS, REPLAY_CLOCK, require_ready, server_command, wait_ready
from telemetry_fakes import CELL1, CELL2, CELL3, JUPYTER, NOTEBOOK, WireClient
from test_replay import script_of

FILE = "file:///w/a.py"


def _record_notebook_session(db: Path) -> None:
    """What the server records for: a notebook opened with two cells (and a file beside it), typing in cell 2 and a
    completion there, a cell 3 added and typed in, cell 1 deleted, the notebook closed."""
    with TelemetryStore(db) as store:
        for event in [
            SessionStarted("s", "vscode", "1", "0.1.0", ts=100.0),
            DocumentOpened("s", CELL1, 1, "python", "import os\n", ts=100.0),
            DocumentOpened("s", CELL2, 1, "python", "", ts=100.0),
            NotebookChanged("s", NOTEBOOK, JUPYTER, 1, "open", (CELL1, CELL2), ts=100.0),
            DocumentOpened("s", FILE, 1, "python", "x = 1\n", ts=100.5),
            EditEvent("s", CELL2, 2, 0, 0, 0, 0, "", "os.p", ts_start=101.0, ts=101.3, keystrokes=4),
            SuggestionRequested("s", "r1", "completion", CELL2, 2, 0, 4, pending_edit=None, ts=101.5),
            DocumentOpened("s", CELL3, 1, "python", "print(1)\n", ts=102.0),
            NotebookChanged("s", NOTEBOOK, JUPYTER, 2, "change", (CELL1, CELL2, CELL3), ts=102.0),
            EditEvent("s", CELL3, 2, 1, 0, 1, 0, "", "x", ts_start=103.0, ts=103.0),
            DocumentSnapshot("s", CELL1, 1, "import os\n", ts=104.0),
            DocumentClosed("s", CELL1, ts=104.0),
            NotebookChanged("s", NOTEBOOK, JUPYTER, 3, "change", (CELL2, CELL3), ts=104.0),
            DocumentSnapshot("s", CELL2, 2, "os.p", ts=105.0),
            DocumentClosed("s", CELL2, ts=105.0),
            DocumentSnapshot("s", CELL3, 2, "print(1)\nx", ts=105.0),
            DocumentClosed("s", CELL3, ts=105.0),
            NotebookChanged("s", NOTEBOOK, JUPYTER, 3, "close", (), ts=105.0),
            DocumentClosed("s", FILE, ts=105.5),
            SessionEnded("s", "shutdown", ts=106.0),
        ]:
            store.record(event)


def _described(step) -> tuple:
    if step.kind == "notebook":
        nb = step.notebook
        return ("notebook", nb.notebook_uri, nb.notebook_type, nb.version, nb.kind, nb.cells)
    return (step.kind, step.uri)


def test_the_script_has_notebook_steps_after_their_cells_opens_and_before_what_follows(tmp_path):
    db = tmp_path / "t.sqlite3"
    _record_notebook_session(db)
    script = script_of(db)
    assert [_described(step) for step in script.steps] == [
        ("open", CELL1), ("open", CELL2), ("notebook", NOTEBOOK, JUPYTER, 1, "open", (CELL1, CELL2)),
        ("open", FILE),
        ("change", CELL2), ("request", CELL2),
        ("open", CELL3), ("notebook", NOTEBOOK, JUPYTER, 2, "change", (CELL1, CELL2, CELL3)),
        ("change", CELL3),
        ("close", CELL1), ("notebook", NOTEBOOK, JUPYTER, 3, "change", (CELL2, CELL3)),
        ("close", CELL2), ("close", CELL3), ("notebook", NOTEBOOK, JUPYTER, 3, "close", ()),
        ("close", FILE)]
    assert script.issues == [] and all(script.verified.values())
    assert script.final_texts == {CELL1: "import os\n", CELL2: "os.p", CELL3: "print(1)\nx", FILE: "x = 1\n"}


def test_a_notebook_cell_with_no_logged_open_is_left_out_of_its_notebook(tmp_path):
    """A recording that starts mid-notebook (telemetry turned on then) lists cells it never opened: a replay has no
    text to send for them."""
    db = tmp_path / "t.sqlite3"
    with TelemetryStore(db) as store:
        store.record(SessionStarted("s", "vscode", "1", "0.1.0", ts=100.0))
        store.record(DocumentOpened("s", CELL2, 1, "python", "", ts=101.0))
        store.record(NotebookChanged("s", NOTEBOOK, JUPYTER, 2, "change", (CELL1, CELL2, CELL3), ts=101.0))
    script = script_of(db)
    assert [_described(step) for step in script.steps] == [
        ("open", CELL2), ("notebook", NOTEBOOK, JUPYTER, 2, "change", (CELL2,))]
    assert script.issues == ["2 notebook cells with no logged open were left out of their notebooks"]


def _item(uri: str, text: str, version: int = 1) -> dict:
    return {"uri": uri, "languageId": "python", "version": version, "text": text}


def _cell(uri: str) -> dict:
    return {"kind": 2, "document": uri}


def _typed(line: int, character: int, text: str) -> list[dict]:
    return [{"range": {"start": {"line": line, "character": character}, "end": {"line": line, "character": character}},
             "text": text}]


def test_a_replay_sends_a_notebook_as_vs_code_does(tmp_path):
    db = tmp_path / "t.sqlite3"
    _record_notebook_session(db)
    wire = WireClient()
    _Driver(wire, script_of(db), ReplayOptions(), None, None).run()
    sent = [(method, params) for method, params in wire.sent if method != REPLAY_CLOCK]
    assert sent == [
        ("notebookDocument/didOpen", {
            "notebookDocument": {"uri": NOTEBOOK, "notebookType": JUPYTER, "version": 1,
                                 "cells": [_cell(CELL1), _cell(CELL2)]},
            "cellTextDocuments": [_item(CELL1, "import os\n"), _item(CELL2, "")]}),
        ("textDocument/didOpen", {"textDocument": _item(FILE, "x = 1\n")}),
        ("notebookDocument/didChange", {"notebookDocument": {"uri": NOTEBOOK, "version": 1}, "change": {"cells": {
            "textContent": [{"document": {"uri": CELL2, "version": 2}, "changes": _typed(0, 0, "os.p")}]}}}),
        ("textDocument/inlineCompletion", {"textDocument": {"uri": CELL2}, "position": {"line": 0, "character": 4},
                                           "context": {"triggerKind": 2}}),
        ("notebookDocument/didChange", {"notebookDocument": {"uri": NOTEBOOK, "version": 2}, "change": {"cells": {
            "structure": {"array": {"start": 2, "deleteCount": 0, "cells": [_cell(CELL3)]},
                          "didOpen": [_item(CELL3, "print(1)\n")], "didClose": []}}}}),
        ("notebookDocument/didChange", {"notebookDocument": {"uri": NOTEBOOK, "version": 2}, "change": {"cells": {
            "textContent": [{"document": {"uri": CELL3, "version": 2}, "changes": _typed(1, 0, "x")}]}}}),
        ("notebookDocument/didChange", {"notebookDocument": {"uri": NOTEBOOK, "version": 3}, "change": {"cells": {
            "structure": {"array": {"start": 0, "deleteCount": 1, "cells": []},
                          "didOpen": [], "didClose": [{"uri": CELL1}]}}}}),
        ("notebookDocument/didClose", {"notebookDocument": {"uri": NOTEBOOK},
                                       "cellTextDocuments": [{"uri": CELL2}, {"uri": CELL3}]}),
        ("textDocument/didClose", {"textDocument": {"uri": FILE}}),
    ]
    # The changes are pinned to the recorded clock as a file's are.
    assert [params["ts"] for method, params in wire.sent if method == REPLAY_CLOCK][:1] == [101.3]


def test_a_cell_opened_while_its_notebook_reorders_is_sent_with_the_change(tmp_path):
    """A change that moves cells and adds one: one array change from the old order to the new, the new cell opened
    with it, the moved cells neither opened nor closed (the server keeps their text)."""
    db = tmp_path / "t.sqlite3"
    with TelemetryStore(db) as store:
        store.record(SessionStarted("s", "vscode", "1", "0.1.0", ts=100.0))
        store.record(DocumentOpened("s", CELL1, 1, "python", "a = 1\n", ts=100.0))
        store.record(DocumentOpened("s", CELL2, 1, "python", "b = 2\n", ts=100.0))
        store.record(NotebookChanged("s", NOTEBOOK, JUPYTER, 1, "open", (CELL1, CELL2), ts=100.0))
        store.record(DocumentOpened("s", CELL3, 1, "python", "c = 3\n", ts=101.0))
        store.record(NotebookChanged("s", NOTEBOOK, JUPYTER, 2, "change", (CELL2, CELL3, CELL1), ts=101.0))
    wire = WireClient()
    _Driver(wire, script_of(db), ReplayOptions(), None, None).run()
    (method, params), = [(m, p) for m, p in wire.sent if m == "notebookDocument/didChange"]
    assert params["change"]["cells"]["structure"] == {
        "array": {"start": 0, "deleteCount": 2, "cells": [_cell(CELL2), _cell(CELL3), _cell(CELL1)]},
        "didOpen": [_item(CELL3, "c = 3\n")], "didClose": []}


# -- a notebook session recorded by the real server, replayed against it ------------------------------------------

def _notebook_rows(db: Path, client: str) -> list[tuple]:
    conn = open_readonly(db)
    try:
        return conn.execute("SELECT n.notebook_uri, n.notebook_type, n.version, n.kind, n.cells FROM notebooks n"
                            " JOIN sessions s ON s.id = n.session_id WHERE s.client_name = ? ORDER BY n.ts, n.seq",
                            [client]).fetchall()
    finally:
        conn.close()


def _requests(db: Path, client: str) -> list[tuple]:
    """Each completion request: where, at which version, and how much of the notebook its context held."""
    conn = open_readonly(db)
    try:
        rows = conn.execute("SELECT g.uri, g.version, g.line, g.character, g.context FROM suggestions g"
                            " JOIN sessions s ON s.id = g.session_id WHERE s.client_name = ?"
                            " ORDER BY g.requested_at, g.id", [client]).fetchall()
    finally:
        conn.close()
    return [(uri, version, line, character, json.loads(context)) for uri, version, line, character, context in rows]


def test_a_notebook_session_replays_against_the_server_as_recorded(tiny_lm_dir, tmp_path):
    """Recorded live (a notebook opened, typed in, a cell added and one deleted, closed) and replayed: the replaying
    server holds the same notebooks at each step, and each completion sees the same cells above it."""
    db = tmp_path / "recorded.sqlite3"
    settings = {**ACCELERATED_DEFAULTS, "stopThreshold": 1.01, "maxNewTokens": 8}
    with LspClient(server_command(sys.executable, str(tiny_lm_dir), str(db))) as client:
        client.initialize(settings, client_name="notebook-editor")
        require_ready(wait_ready(client))
        client.did_open_notebook(NOTEBOOK, JUPYTER, 1, [text_document_item(CELL1, "import os\n", 1),
                                                         text_document_item(CELL2, "", 1)])
        client.did_change_notebook_text(NOTEBOOK, 1, CELL2, 2, [change_at(0, 0, "os.p")])
        client.inline_completion(CELL2, 0, 4)
        client.did_change_notebook_cells(NOTEBOOK, 2, 2, 0, [CELL3], [text_document_item(CELL3, "def f():\n", 1)],
                                         [])
        client.did_change_notebook_text(NOTEBOOK, 2, CELL3, 2, [change_at(1, 0, "    return os.")])
        client.inline_completion(CELL3, 1, 14)
        client.did_change_notebook_cells(NOTEBOOK, 3, 0, 1, [], [], [CELL1])
        client.inline_completion(CELL3, 1, 14)
        client.did_close_notebook(NOTEBOOK, [CELL2, CELL3])
        client.shutdown()
    recorded_notebooks = _notebook_rows(db, "notebook-editor")
    assert [row[3] for row in recorded_notebooks] == ["open", "change", "change", "close"]
    recorded = _requests(db, "notebook-editor")
    # "import os" above cell 2; then both cells above cell 3; then only cell 2, cell 1 deleted
    assert [context.get("earlier_cells_chars") for *_, context in recorded] == [11, 17, 6]

    out = tmp_path / "replayed.sqlite3"
    (result,) = replay(db, out, options=ReplayOptions(model=str(tiny_lm_dir)))
    assert result.complete and result.issues == []
    assert _notebook_rows(out, "tact-replay") == recorded_notebooks
    replayed = _requests(out, "tact-replay")
    assert replayed == recorded
