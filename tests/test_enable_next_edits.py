"""tact.enable off turns next edits off too, as it turns completions off (README: "serve suggestions at all"; the VS
Code extension stops asking for them): tact/nextEdit and code actions offered an edit and logged it regardless."""

from __future__ import annotations

import sqlite3

from tests.lsp_support import wait_for_rows
from tests.test_next_edit_code_action import URI, code_actions, renamed, start
from tests.test_settings_changes import status_settings


def test_with_enable_off_no_next_edit_is_offered_or_logged_until_it_is_on_again(tmp_path):
    client, db, _ = start(tmp_path, {"enable": False})
    with client:
        renamed(client)
        assert client.next_edit(URI, 2, 0, 10) == []
        assert code_actions(client, triggerKind=1) == []  # asked for
        assert code_actions(client, triggerKind=2) == []  # a lightbulb's
        session = client.request("tact/status")["sessionId"]
        client.notify("workspace/didChangeConfiguration", {"settings": {"tact": {"enable": True}}})
        assert status_settings(client, {"enable": True})["enable"] is True
        # on again: the same request gets its edit (the heuristic's check(width) on line 2), so the test proves the
        # empty answers above came from the setting
        [edit] = client.next_edit(URI, 2, 0, 10)
        assert edit["range"]["start"]["line"] == 1
    wait_for_rows(db, "SELECT 1 FROM sessions WHERE ended_at IS NOT NULL")
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT id FROM suggestions WHERE session_id = ?", (session,)).fetchall()
    assert rows == [(edit["id"],)]  # only the request made once enable was on
