"""tact/nextEdit over stdio against the real server process: the protocol, bad input, and the real model."""

from __future__ import annotations

from pathlib import Path

import pytest


from telemetry.lsp_client import LspClient, LspError, change_at
from telemetry.reader import open_readonly
from telemetry.reconstruct import build_script
from tests.lsp_support import model_under_test, server_command, wait_for_rows

URI = "file:///project/shapes.py"
TEXT = "def area(width, height):\n    check(width)\n    return width * height\n"


def start(tmp_path: Path, options: dict) -> tuple[LspClient, Path, dict]:
    db = tmp_path / "telemetry.sqlite3"
    client = LspClient(server_command(model_under_test(), db))
    init = client.initialize({"acceptanceGate": False, **options})
    return client, db, init


def test_without_a_next_edit_model_requests_answer_empty_and_status_says_why(tmp_path):
    client, db, init = start(tmp_path, {"nextEditModelPath": str(tmp_path / "no-model"), "nextEditPredictor": "model"})
    with client:
        assert init["capabilities"]["experimental"]["tact"]["nextEdit"] is True
        client.did_open(URI, TEXT)
        client.did_change(URI, 2, [change_at(0, 9, "w", 0, 14)])
        assert client.next_edit(URI, 2, 0, 10) == []
        status = client.request("tact/status")
        assert "no next-edit model" in status["nextEdit"]["reason"]
        rows = wait_for_rows(db, "SELECT kind, outcome FROM suggestions WHERE kind = 'next_edit' AND outcome IS NOT NULL")
        assert rows == [("next_edit", "cancelled")]
    # a replay of this session asks for the next edit on the text it was asked on; no edit followed it
    with open_readonly(db) as conn:
        script = build_script(conn, status["sessionId"])
    assert [(r.kind, r.fidelity, r.next_text) for r in script.requests] == [("next_edit", "exact", None)]
    assert not script.issues
    assert [s.kind for s in script.steps].count("change") == 1


def test_a_replay_asks_for_next_edits_and_judges_them_by_the_programmers_next_edit(tmp_path):
    """Recorded: rename a parameter, ask for the next edit, then really make it (the heuristic's edit); later
    ask again at a place where nothing follows. The replay asks both again: the first matches what the
    programmer did next (accepted, and the new server records it so), the second has nothing to match."""
    from telemetry.replay import ReplayOptions, replay

    client, db, _ = start(tmp_path, {"nextEditPredictor": "heuristic"})
    with client:
        client.did_open(URI, TEXT)
        client.did_change(URI, 2, [change_at(0, 9, "w", 0, 14)])  # def area(w, height)
        predicted = client.next_edit(URI, 2, 0, 10)
        assert predicted and predicted[0]["range"]["start"]["line"] == 1  # check(width) is next
        client.did_change(URI, 3, [change_at(1, 10, "w", 1, 15)])  # the programmer makes it: check(w)
        client.next_edit(URI, 3, 1, 11)
        session = client.request("tact/status")["sessionId"]
        wait_for_rows(db, "SELECT id FROM suggestions WHERE kind = 'next_edit' AND outcome IS NOT NULL", want=2)
    out = tmp_path / "replay.sqlite3"
    [result] = replay(db, out, session, ReplayOptions(model=str(model_under_test())))
    assert result.complete and result.replayed == 2 and not result.issues
    first, second = result.outcomes
    assert (first.request.kind, first.outcome, first.basis) == ("next_edit", "accepted", "oracle")
    assert first.request.next_text == TEXT.replace("width", "w", 2)
    assert second.request.next_text is None and second.outcome != "accepted"
    assert result.next_edits["requests"] == 2 and result.next_edits["accepted"] == 1
    assert result.suggestions == 0  # completion counts stay completions only
    with open_readonly(out) as conn:
        rows = conn.execute("SELECT kind, outcome FROM replay_suggestions ORDER BY seq").fetchall()
        logged = conn.execute("SELECT outcome FROM suggestions WHERE kind = 'next_edit' AND id = ?",
                              [first.suggestion_id]).fetchall()
    assert rows[0] == ("next_edit", "accepted") and rows[1][0] == "next_edit"
    assert logged == [("accepted",)]


def test_a_replayed_next_edit_equal_to_the_logged_one_keeps_the_programmers_decision(tmp_path):
    """The programmer rejected a right edit and accepted one that did not match what they typed next: a replay
    making the same predictions reports those decisions (basis logged), not the oracle's."""
    from telemetry.replay import ReplayOptions, replay

    client, db, _ = start(tmp_path, {"nextEditPredictor": "heuristic"})
    with client:
        client.did_open(URI, TEXT)
        client.did_change(URI, 2, [change_at(0, 9, "w", 0, 14)])
        [first] = client.next_edit(URI, 2, 0, 10)
        client.notify("tact/didShowNextEdit", {"id": first["id"]})
        client.notify("tact/didRejectNextEdit", {"id": first["id"], "reason": "dismissed"})
        client.did_change(URI, 3, [change_at(1, 10, "w", 1, 15)])
        [second] = client.next_edit(URI, 3, 1, 11)
        client.notify("tact/didShowNextEdit", {"id": second["id"]})
        client.request("workspace/executeCommand", {"command": "tact.acceptNextEdit", "arguments": [second["id"]]})
        session = client.request("tact/status")["sessionId"]
        wait_for_rows(db, "SELECT id FROM suggestions WHERE kind = 'next_edit' AND outcome IN ('accepted', 'rejected')",
                      want=2)
    [result] = replay(db, tmp_path / "replay.sqlite3", session, ReplayOptions(model=str(model_under_test())))
    a, b = result.outcomes
    assert (a.basis, a.outcome) == ("logged", "rejected")  # the oracle alone would have accepted it
    assert a.request.next_text is not None
    assert (b.basis, b.outcome) == ("logged", "accepted")  # nothing followed it: the oracle would have rejected it
    assert b.request.next_text is None


def test_bad_next_edit_requests_get_empty_answers_and_the_server_stays_up(tmp_path):
    client, _, _ = start(tmp_path, {"nextEditModelPath": str(tmp_path / "no-model")})
    with client:
        client.did_open(URI, TEXT)
        for params in [None, {}, {"textDocument": {"uri": URI}}, {"textDocument": {"uri": URI, "version": "2"},
                       "position": {"line": 0, "character": 0}},
                       {"textDocument": {"uri": URI, "version": 1}, "position": {"line": -1, "character": 0}}]:
            assert client.request("tact/nextEdit", params) == {"edits": []}
        assert client.next_edit("file:///project/never-opened.py", 1, 0, 0) == []
        assert client.next_edit(URI, 7, 0, 0) == []  # a version the server never saw
        assert client.next_edit(URI, 1, 10_000, 10_000) == []  # past the end, and nothing edited yet
        client.notify("tact/didRejectNextEdit", {"id": 5, "reason": "nonsense"})
        client.notify("tact/didShowNextEdit", {})
        with pytest.raises(LspError) as refused:
            client.request("workspace/executeCommand", {"command": "tact.acceptNextEdit", "arguments": []})
        assert refused.value.error["code"] == -32602 and "suggestion's id" in refused.value.error["message"]
        assert isinstance(client.request("tact/status"), dict)


def test_next_edit_can_be_turned_off(tmp_path):
    client, _, init = start(tmp_path, {"nextEdit": False})
    with client:
        assert "tact" not in (init["capabilities"].get("experimental") or {})
        client.did_open(URI, TEXT)
        client.did_change(URI, 2, [change_at(0, 9, "w", 0, 14)])
        assert client.next_edit(URI, 2, 0, 10) == []


def test_positions_past_lsps_integer_range_are_refused():
    """A line above 2**63 overflowed SQLite's integer: the request went unlogged. LSP's positions are uintegers."""
    from lsp_server.features.next_edit import UINTEGER_MAX, parse_params

    doc = {"uri": "file:///w/a.py", "version": 3}
    assert parse_params({"textDocument": doc, "position": {"line": UINTEGER_MAX, "character": 0}}) is not None
    for line, character in [(2**63, 0), (0, 2**31), (-1, 0)]:
        assert parse_params({"textDocument": doc, "position": {"line": line, "character": character}}) is None
    assert parse_params({"textDocument": {**doc, "version": 2**40}, "position": {"line": 0, "character": 0}}) is None
