"""Telemetry turned on mid-session records the documents open then, as they are then: an accept, an edit or a next
edit in a document opened while it was off was left out of the database for the rest of the session."""

from __future__ import annotations

from telemetry.lsp_client import LspClient, change_at
from tests.lsp_support import model_under_test, server_command, wait_for_rows
from tests.test_server_robustness import replayed, settle

URI = "file:///project/shapes.py"
TEXT = "def area(width, height):\n    check(width)\n    return width * height\n"


def test_documents_open_when_telemetry_turns_on_are_recorded_from_then_on(tmp_path):
    db = tmp_path / "t.sqlite3"
    options = {"telemetryDatabase": str(db), "acceptanceGate": False, "nextEditPredictor": "heuristic"}
    client = LspClient(server_command(model_under_test(), None))
    client.initialize({**options, "telemetry": False})
    try:
        client.did_open(URI, TEXT)
        client.did_change(URI, 2, [change_at(0, 9, "w", 0, 14)])  # def area(w, height), while telemetry is off
        assert client.request("tact/status")["database"] is None
        status = settle(client, {**options, "telemetry": True})
        assert status["database"] == str(db)
        [edit] = client.next_edit(URI, 2, 0, 10)  # check(width) is next
        client.did_change(URI, 3, [change_at(1, 10, "w", 1, 15)])
        assert client.request("workspace/executeCommand",
                              {"command": "tact.acceptNextEdit", "arguments": [edit["id"]]}) is True
    finally:
        client.shutdown()
    assert wait_for_rows(db, "SELECT outcome FROM suggestions WHERE id = ?", (edit["id"],)) == [("accepted",)]
    _, script = replayed(db)
    final = TEXT.replace("width", "w", 2)
    assert script.issues == [] and script.final_texts == {URI: final} and script.verified == {URI: True}
