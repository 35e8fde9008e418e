"""Next edits across notebook cells in replay: a request that asked for other cells asks for them again, and an
answer in another cell is judged against that cell, never against the one the request was made in."""

from __future__ import annotations

import json
import sqlite3
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
    SuggestionAccepted,
    SuggestionGenerated,
    SuggestionRequested,
    SuggestionShown,
    TelemetryStore,
    open_readonly,
)
from telemetry.lsp_client import LspClient, change_at, text_document_item
from telemetry.replay import ReplayOptions, _Driver, replay
from telemetry.simulate import (ACCELERATED_DEFAULTS, ACCEPT_NEXT_EDIT_COMMAND, DID_REJECT_NEXT_EDIT,
                                DID_SHOW_NEXT_EDIT, NEXT_EDIT, require_ready, server_command, wait_ready)
from telemetry_fakes import CELL1, CELL2, JUPYTER, NOTEBOOK, WireClient
from test_replay import script_of


def _record(db: Path, other_cells: bool = True, second_edit: bool = True) -> None:
    """A notebook of two cells: ``count`` renamed to ``total`` in cell 1, a next edit asked for there (with
    ``other_cells`` as given) that predicted the same rename in cell 2 and was accepted; the programmer's next edit to
    cell 2 is that rename (left out without ``second_edit``)."""
    with TelemetryStore(db) as store:
        events = [
            SessionStarted("s", "vscode", "1", "0.1.0", ts=100.0),
            DocumentOpened("s", CELL1, 1, "python", "count = 0\n", ts=100.0),
            DocumentOpened("s", CELL2, 1, "python", "print(count)\n", ts=100.0),
            NotebookChanged("s", NOTEBOOK, JUPYTER, 1, "open", (CELL1, CELL2), ts=100.0),
            EditEvent("s", CELL1, 2, 0, 0, 0, 5, "count", "total", ts_start=101.0, ts=101.0),
            SuggestionRequested("s", "n1", "next_edit", CELL1, 2, 0, 5, trigger="nextEdit",
                                context={"other_cells": True} if other_cells else {}, pending_edit=None, ts=102.0),
            SuggestionGenerated("s", "n1", "total", "m", "heuristic", 1.0, 0,
                                details={"range": [0, 6, 0, 11], "uri": CELL2, "version": 1}, ts=102.1),
            SuggestionShown("s", "n1", ts=102.2),
            SuggestionAccepted("s", "n1", ts=103.0),
        ]
        if second_edit:
            events.append(EditEvent("s", CELL2, 2, 0, 6, 0, 11, "count", "total", ts_start=103.0, ts=103.0))
        after = "print(total)\n" if second_edit else "print(count)\n"
        events += [
            DocumentSnapshot("s", CELL1, 2, "total = 0\n", ts=105.0),
            DocumentClosed("s", CELL1, ts=105.0),
            DocumentSnapshot("s", CELL2, 2 if second_edit else 1, after, ts=105.0),
            DocumentClosed("s", CELL2, ts=105.0),
            NotebookChanged("s", NOTEBOOK, JUPYTER, 1, "close", (), ts=105.0),
            SessionEnded("s", "shutdown", ts=106.0),
        ]
        for event in events:
            store.record(event)


def _edit(sid: str, where: tuple[int, int, int, int], text: str, uri: str | None = None, version: int = 1) -> dict:
    edit = {"id": sid, "range": {"start": {"line": where[0], "character": where[1]},
                                 "end": {"line": where[2], "character": where[3]}}, "newText": text}
    if uri is not None:
        edit["textDocument"] = {"uri": uri, "version": version}
    return edit


def _replayed(db: Path, edits: list[dict]):
    client = WireClient(edits)
    driver = _Driver(client, script_of(db), ReplayOptions(), None, None)
    driver.run()
    (outcome,) = driver.outcomes
    return outcome, client.sent


def _decisions(sent: list[tuple[str, dict]]) -> list[tuple]:
    out = []
    for method, params in sent:
        if method == "workspace/executeCommand" and params["command"] == ACCEPT_NEXT_EDIT_COMMAND:
            out.append(("accept", params["arguments"][0]))
        elif method == DID_REJECT_NEXT_EDIT:
            out.append(("reject", params["id"], params["reason"]))
    return out


def test_the_script_carries_whether_the_request_asked_for_other_cells(tmp_path):
    for asked in (True, False):
        db = tmp_path / f"{asked}.sqlite3"
        _record(db, other_cells=asked)
        (req,) = script_of(db).requests
        assert req.kind == "next_edit" and req.other_cells is asked
        assert req.logged["edit_uri"] == CELL2 and req.logged["range"] == [0, 6, 0, 11]


def test_a_replacement_is_sent_over_its_logged_range(tmp_path):
    """``count`` replaced by ``total`` is sent as that, not as the smallest change (``coun`` by ``tota``, ``t``
    kept): the replaying server logs the recorded edit, and its next-edit history sees the rename it carries on."""
    db = tmp_path / "t.sqlite3"
    _record(db)
    changes = [(s.uri, s.start, s.end, s.inserted) for s in script_of(db).steps if s.kind == "change"]
    assert changes == [(CELL1, (0, 0), (0, 5), "total"), (CELL2, (0, 6), (0, 11), "total")]


def test_a_request_that_asked_for_other_cells_is_replayed_asking_for_them(tmp_path):
    db = tmp_path / "t.sqlite3"
    _record(db)
    _, sent = _replayed(db, [])
    (params,) = [params for method, params in sent if method == NEXT_EDIT]
    assert params == {"textDocument": {"uri": CELL1, "version": 2}, "position": {"line": 0, "character": 5},
                      "otherCells": True}


def test_a_request_that_did_not_ask_for_other_cells_is_replayed_without_asking(tmp_path):
    db = tmp_path / "t.sqlite3"
    _record(db, other_cells=False)
    _, sent = _replayed(db, [])
    (params,) = [params for method, params in sent if method == NEXT_EDIT]
    assert "otherCells" not in params


def test_an_answer_in_another_cell_equal_to_the_logged_one_keeps_the_logged_outcome(tmp_path):
    db = tmp_path / "t.sqlite3"
    _record(db)
    outcome, sent = _replayed(db, [_edit("x1", (0, 6, 0, 11), "total", CELL2)])
    assert (outcome.basis, outcome.outcome, outcome.text, outcome.edit_uri) == ("logged", "accepted", "total", CELL2)
    assert _decisions(sent) == [("accept", "x1")]


def test_the_same_edit_in_the_requested_cell_is_not_the_logged_one(tmp_path):
    """The logged edit was in cell 2: the same range and text in cell 1 is another edit, judged against cell 1."""
    db = tmp_path / "t.sqlite3"
    _record(db)
    outcome, sent = _replayed(db, [_edit("x1", (0, 6, 0, 11), "total")])
    assert (outcome.basis, outcome.outcome, outcome.edit_uri) == ("oracle", "rejected", None)
    assert _decisions(sent) == [("reject", "x1", "ignored")]  # cell 1 is not edited again


def test_an_answer_in_another_cell_that_differs_is_judged_against_that_cell(tmp_path):
    """Not the logged edit (the whole line replaced), but it gives cell 2 the text the programmer's next edit to it
    gave: accepted. Applied to cell 1 it would give nonsense, so the check must use cell 2's text."""
    db = tmp_path / "t.sqlite3"
    _record(db)
    outcome, sent = _replayed(db, [_edit("x1", (0, 0, 0, 12), "print(total)", CELL2)])
    assert (outcome.basis, outcome.outcome, outcome.text) == ("oracle", "accepted", "print(total)")
    assert _decisions(sent) == [("accept", "x1")]
    outcome, sent = _replayed(db, [_edit("x2", (0, 0, 0, 12), "print(totals)", CELL2)])
    assert (outcome.basis, outcome.outcome) == ("oracle", "rejected")
    assert _decisions(sent) == [("reject", "x2", "typedOver")]


def test_an_answer_in_another_cell_the_programmer_did_not_edit_again_is_ignored(tmp_path):
    db = tmp_path / "t.sqlite3"
    _record(db, second_edit=False)
    outcome, sent = _replayed(db, [_edit("x1", (0, 0, 0, 12), "print(total)", CELL2)])
    assert (outcome.basis, outcome.outcome) == ("oracle", "rejected")
    assert _decisions(sent) == [("reject", "x1", "ignored")]


def test_an_answer_in_the_requested_cell_is_judged_as_before(tmp_path):
    """An edit without ``textDocument`` (or naming the requested cell) is in the requested cell: accepted when it
    gives cell 1 the text its next edit gave."""
    db = tmp_path / "t.sqlite3"
    with TelemetryStore(db) as store:
        for event in [
            SessionStarted("s", "vscode", "1", "0.1.0", ts=100.0),
            DocumentOpened("s", CELL1, 1, "python", "count = 0\ncount += 1\n", ts=100.0),
            DocumentOpened("s", CELL2, 1, "python", "", ts=100.0),
            NotebookChanged("s", NOTEBOOK, JUPYTER, 1, "open", (CELL1, CELL2), ts=100.0),
            EditEvent("s", CELL1, 2, 0, 0, 0, 5, "count", "total", ts_start=101.0, ts=101.0),
            SuggestionRequested("s", "n1", "next_edit", CELL1, 2, 0, 5, trigger="nextEdit",
                                context={"other_cells": True}, pending_edit=None, ts=102.0),
            EditEvent("s", CELL1, 3, 1, 0, 1, 5, "count", "total", ts_start=103.0, ts=103.0),
            SessionEnded("s", "shutdown", ts=106.0),
        ]:
            store.record(event)
    for target in (None, CELL1):
        outcome, sent = _replayed(db, [_edit("x1", (1, 0, 1, 5), "total", target, 2)])
        assert (outcome.basis, outcome.outcome) == ("oracle", "accepted")
        outcome, sent = _replayed(db, [_edit("x2", (1, 0, 1, 5), "totals", target, 2)])
        assert (outcome.basis, outcome.outcome) == ("oracle", "rejected")
        assert _decisions(sent) == [("reject", "x2", "typedOver")]


# -- recorded by the real server, replayed against it -------------------------------------------------------------

def _next_edit_rows(db: Path, client: str) -> list[tuple]:
    """Each next edit: the requested cell, its context, the outcome, and the generated edit's text and details."""
    conn = open_readonly(db)
    try:
        rows = conn.execute(
            "SELECT g.uri, g.context, g.outcome, g.text, e.payload FROM suggestions g"
            " JOIN sessions s ON s.id = g.session_id"
            " LEFT JOIN suggestion_events e ON e.suggestion_id = g.id AND e.type = 'suggestion_generated'"
            " WHERE s.client_name = ? AND g.kind = 'next_edit' ORDER BY g.requested_at, g.id", [client]).fetchall()
    finally:
        conn.close()
    out = []
    for uri, context, outcome, text, payload in rows:
        details = json.loads(payload)["details"] if payload else {}
        out.append((uri, json.loads(context), outcome, text,
                    {k: details.get(k) for k in ("range", "uri", "version")}))
    return out


def test_a_cross_cell_next_edit_replays_against_the_server_as_recorded(tiny_lm_dir, tmp_path):
    """Recorded live: ``values`` renamed in cell 1, a next edit asked for there with other cells, answered in cell 2
    and accepted, then made there. Replayed: the request asks for other cells again, the server answers the same edit
    in cell 2, and it keeps the programmer's decision."""
    db = tmp_path / "recorded.sqlite3"
    settings = {**ACCELERATED_DEFAULTS, "nextEditPredictor": "heuristic"}
    with LspClient(server_command(sys.executable, str(tiny_lm_dir), str(db))) as client:
        client.initialize(settings, client_name="notebook-editor")
        require_ready(wait_ready(client))
        client.did_open_notebook(NOTEBOOK, JUPYTER, 1, [text_document_item(CELL1, "values = [1, 2]\n", 1),
                                                         text_document_item(CELL2, "total = sum(values)\n", 1)])
        client.did_change_notebook_text(NOTEBOOK, 1, CELL1, 2, [change_at(0, 0, "items", 0, 6)])
        (edit,) = client.next_edit(CELL1, 2, 0, 5, other_cells=True)
        assert edit["textDocument"] == {"uri": CELL2, "version": 1} and edit["newText"] == "items"
        client.notify(DID_SHOW_NEXT_EDIT, {"id": edit["id"]})
        client.request("workspace/executeCommand", {"command": ACCEPT_NEXT_EDIT_COMMAND, "arguments": [edit["id"]]})
        client.did_change_notebook_text(NOTEBOOK, 1, CELL2, 2, [change_at(0, 12, "items", 0, 18)])
        client.did_close_notebook(NOTEBOOK, [CELL1, CELL2])
        client.shutdown()
    recorded = _next_edit_rows(db, "notebook-editor")
    assert recorded == [(CELL1, {"other_cells": True}, "accepted", "items",
                         {"range": [0, 12, 0, 18], "uri": CELL2, "version": 1})]

    out = tmp_path / "replayed.sqlite3"
    (result,) = replay(db, out, options=ReplayOptions(model=str(tiny_lm_dir)))
    assert result.complete and result.issues == []
    (outcome,) = result.outcomes
    assert (outcome.basis, outcome.outcome, outcome.text) == ("logged", "accepted", "items")
    assert _next_edit_rows(out, "tact-replay") == recorded
    with sqlite3.connect(out) as conn:  # the replay's own row names the cell the edit changed
        assert conn.execute("SELECT uri, edit_uri FROM replay_suggestions WHERE kind = 'next_edit'").fetchall() == [
            (CELL1, CELL2)]
