"""Feedback, commands and the replay clock given values no editor sends: the server answers, logs, and
telemetry keeps every event it is given."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from telemetry.lsp_client import LspClient, LspError, change_at
from tests.lsp_support import model_under_test, server_command, wait_for_rows

HUGE = 10 ** 400  # a JSON integer literal Python reads as an int no float or SQLite integer holds


@pytest.fixture
def server_log(tmp_path: Path) -> Path:
    """Where the `server` fixture's server logs (complete once the client has shut it down)."""
    return tmp_path / "server.log"


@pytest.fixture
def server(tmp_path: Path, server_log: Path):
    db = tmp_path / "telemetry.sqlite3"
    client = LspClient(server_command(model_under_test(), db) + ["--log-file", str(server_log)])
    client.initialize({"acceptanceGate": False})
    yield client, db
    client.shutdown()


def test_a_replay_clock_too_large_for_a_float_is_refused_not_raised(server):
    """math.isfinite(int) converts to float first: a huge ts raised OverflowError in the handler."""
    client, _ = server
    client.notify("tact/replayClock", {"ts": HUGE})
    assert client.request("tact/replayClock", {"ts": HUGE}, timeout=10) is None  # was an internal error
    assert client.request("tact/replayClock", {"ts": 1_700_000_000}, timeout=10) is None
    assert client.proc.poll() is None


def test_an_accepted_length_past_uinteger_is_refused_and_telemetry_keeps_writing(server):
    """For an id the ledger does not hold (evicted, never issued) nothing clamped the length: SQLite could not
    store it and the write failed. A sound length for such an id is still recorded."""
    client, db = server
    for length in (2 ** 70, HUGE):
        client.notify("tact/didPartiallyAcceptCompletion", {"id": "unheld-huge", "acceptedLength": length})
    client.notify("tact/didPartiallyAcceptCompletion", {"id": "unheld-ok", "acceptedLength": 7})
    rows = wait_for_rows(db, "SELECT accepted_length FROM suggestions WHERE id = 'unheld-ok' AND outcome IS NOT NULL")
    assert rows == [(7,)]
    assert client.request("tact/status", timeout=10)["telemetry"]["failed"] == 0
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT outcome FROM suggestions WHERE id = 'unheld-huge'").fetchall() in ([], [(None,)])


@pytest.mark.parametrize("command", ["tact.acceptSuggestion", "tact.acceptNextEdit"])
def test_an_accept_command_with_an_empty_id_is_refused(server, command):
    """feedback refuses an empty id; the commands recorded an acceptance of suggestion '' in telemetry."""
    client, db = server
    with pytest.raises(LspError) as refused:  # Invalid params: the client's mistake
        client.request("workspace/executeCommand", {"command": command, "arguments": [""]}, timeout=10)
    assert refused.value.error["code"] == -32602
    assert client.request("workspace/executeCommand", {"command": command, "arguments": ["unheld"]}, timeout=10) is True
    assert wait_for_rows(db, "SELECT outcome FROM suggestions WHERE id = 'unheld'") == [("accepted",)]
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM suggestions WHERE id = ''").fetchone() == (0,)


def test_a_second_initialized_notification_is_ignored(server, server_log):
    """It started a second edit-expiry timer and logged the session's start again."""
    client, db = server
    client.notify("initialized", {})
    client.did_open("file:///w/a.py", "x = 1\n")
    client.did_change("file:///w/a.py", 2, [change_at(0, 0, "#")])
    assert wait_for_rows(db, "SELECT 1 FROM edits")
    assert client.request("tact/status")["ready"]
    client.shutdown()
    assert server_log.read_text().count("a second `initialized` notification is ignored") == 1


def test_a_huge_malformed_message_is_logged_briefly(server, server_log):
    """The warnings for malformed feedback quoted the whole message: a megabyte sent was a megabyte logged, each time."""
    client, _ = server
    blob = "x" * 1_000_000
    client.notify("tact/didShowCompletion", {"junk": blob})
    client.notify("tact/didPartiallyAcceptCompletion", {"id": "s", "acceptedLength": blob})
    client.notify("tact/replayClock", {"ts": blob})
    with pytest.raises(LspError) as refused:  # Invalid params, its message brief too
        client.request("workspace/executeCommand", {"command": "tact.acceptSuggestion", "arguments": [[blob]]})
    assert refused.value.error["code"] == -32602 and len(refused.value.error["message"]) < 500
    client.request("tact/nextEdit", {"junk": blob})
    assert client.request("tact/status")["sessionId"]
    client.shutdown()
    text = server_log.read_text()
    assert "without a suggestion id" in text and "acceptedLength must be" in text and "needs a finite ts" in text
    assert len(text) < 20_000, len(text)


def test_a_suggestion_that_ended_keeps_its_first_outcome(server):
    """A rejection for a suggestion that had ended (superseded by a newer one, accepted) was recorded again: a second
    `suggestion_rejected` overwrote the stored reason and time, and after an accept the ledger's entry turned to
    rejected, so the next accept command logged a second acceptance."""
    client, db = server
    uri = "file:///project/outcomes.py"
    text = "import os\n\n\ndef read_lines(path):\n    with open(path) as f:\n        return f.\n"
    client.did_open(uri, text)

    def issued() -> str:
        items = client.inline_completion(uri, 5, len("        return f."), invoked=True, timeout=120)
        assert items, "the model suggested nothing here"
        return items[0]["command"]["arguments"][0]

    first = issued()
    second = issued()  # supersedes the first: the server rejects it
    client.notify("tact/didRejectCompletion", {"id": first, "reason": "typedOver"})
    assert client.request("workspace/executeCommand", {"command": "tact.acceptSuggestion", "arguments": [second]})
    client.notify("tact/didRejectCompletion", {"id": second, "reason": "dismissed"})  # a late, stray end
    assert client.request("workspace/executeCommand", {"command": "tact.acceptSuggestion", "arguments": [second]})
    client.shutdown()
    wait_for_rows(db, "SELECT 1 FROM sessions WHERE ended_at IS NOT NULL")
    with sqlite3.connect(db) as conn:
        events = conn.execute("SELECT suggestion_id, type, payload FROM suggestion_events WHERE type IN "
                              "('suggestion_rejected', 'suggestion_accepted') ORDER BY id").fetchall()
        outcomes = dict(conn.execute("SELECT id, outcome FROM suggestions WHERE id IN (?, ?)", (first, second)))
    assert [(sid, kind) for sid, kind, _ in events] == [(first, "suggestion_rejected"), (second, "suggestion_accepted")]
    assert '"superseded"' in events[0][2]
    assert outcomes == {first: "rejected", second: "accepted"}
