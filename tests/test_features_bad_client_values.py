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


def unheld_ids(client: LspClient) -> tuple[str, str]:
    """Two ids of this server that its ledger does not hold, as ones it evicted: the prefix of an id it issued, with
    counts it never reached."""
    uri = "file:///project/unheld.py"
    client.did_open(uri, "import os\n\n\ndef read(path):\n    return os.path.\n")
    items = client.inline_completion(uri, 4, len("    return os.path."), invoked=True, timeout=120)
    assert items, "the model suggested nothing here"
    issued = items[0]["command"]["arguments"][0]
    return issued[:8] + "fffffff0", issued[:8] + "fffffff1"


def test_an_accepted_length_past_uinteger_is_refused_and_telemetry_keeps_writing(server):
    """For an id the ledger does not hold (evicted) nothing clamped the length: SQLite could not store it and the
    write failed. A sound length for such an id is still recorded."""
    client, db = server
    huge, ok = unheld_ids(client)
    for length in (2 ** 70, HUGE):
        client.notify("tact/didPartiallyAcceptCompletion", {"id": huge, "acceptedLength": length})
    client.notify("tact/didPartiallyAcceptCompletion", {"id": ok, "acceptedLength": 7})
    rows = wait_for_rows(db, "SELECT accepted_length FROM suggestions WHERE id = ? AND outcome IS NOT NULL", (ok,))
    assert rows == [(7,)]
    assert client.request("tact/status", timeout=10)["telemetry"]["failed"] == 0
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT outcome FROM suggestions WHERE id = ?", (huge,)).fetchall() in ([], [(None,)])


def test_feedback_for_an_id_an_earlier_session_issued_changes_nothing(tmp_path):
    """A server restarted while its suggestion was still on screen (the editor reloads it; the user presses Tab):
    the accept rewrote the earlier session's rejected row as accepted after that session had ended, filed the event
    under the new session, and taught the gate an outcome of no suggestion of its own. An id never issued at all made
    a suggestion row with no request that never ended."""
    db = tmp_path / "telemetry.sqlite3"
    uri = "file:///project/restart.py"
    text = "import os\n\n\ndef read(path):\n    return os.path.\n"
    with LspClient(server_command(model_under_test(), db)) as first:
        first.initialize({"acceptanceGate": False})
        first.did_open(uri, text)
        items = first.inline_completion(uri, 4, len("    return os.path."), invoked=True, timeout=120)
        assert items, "the model suggested nothing here"
        earlier = items[0]["command"]["arguments"][0]
        first.notify("tact/didShowCompletion", {"id": earlier})
        first.notify("tact/didRejectCompletion", {"id": earlier, "reason": "dismissed"})
        first.shutdown()
    with LspClient(server_command(model_under_test(), db)) as second:
        second.initialize({"acceptanceGate": False})
        assert second.request("workspace/executeCommand",
                              {"command": "tact.acceptSuggestion", "arguments": [earlier]}, timeout=10) is False
        second.notify("tact/didShowCompletion", {"id": "made-up-id"})
        second.notify("tact/didPartiallyAcceptCompletion", {"id": earlier, "acceptedLength": 3})
        second.notify("tact/didRejectCompletion", {"id": earlier, "reason": "typedOver"})
        assert second.request("tact/status", timeout=10)["telemetry"]["failed"] == 0
        second.shutdown()
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT outcome, reject_reason, accepted_length FROM suggestions WHERE id = ?",
                            (earlier,)).fetchall() == [("rejected", "dismissed", None)]
        sessions = {sid for (sid,) in conn.execute("SELECT session_id FROM suggestion_events WHERE suggestion_id = ?",
                                                    (earlier,))}
        assert len(sessions) == 1
        assert conn.execute("SELECT COUNT(*) FROM suggestions WHERE id = 'made-up-id'").fetchone() == (0,)
        (owner,) = sessions
        assert conn.execute("SELECT end_reason FROM sessions WHERE id = ?", (owner,)).fetchone() == ("shutdown",)


@pytest.mark.parametrize("command", ["tact.acceptSuggestion", "tact.acceptNextEdit"])
def test_an_accept_command_with_an_empty_id_is_refused(server, command):
    """feedback refuses an empty id; the commands recorded an acceptance of suggestion '' in telemetry."""
    client, db = server
    with pytest.raises(LspError) as refused:  # Invalid params: the client's mistake
        client.request("workspace/executeCommand", {"command": command, "arguments": [""]}, timeout=10)
    assert refused.value.error["code"] == -32602
    # an id of no suggestion this server issued: answered, and nothing recorded
    assert client.request("workspace/executeCommand", {"command": command, "arguments": ["unheld"]}, timeout=10) is False
    assert client.request("tact/status", timeout=10)["telemetry"]["failed"] == 0
    client.shutdown()
    wait_for_rows(db, "SELECT 1 FROM sessions WHERE ended_at IS NOT NULL")
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM suggestions WHERE id IN ('', 'unheld')").fetchone() == (0,)


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


def test_cancels_of_requests_already_answered_are_not_logged(server, server_log):
    """The answer and the cancel cross on the wire (VS Code cancels every inline request a keystroke supersedes):
    pygls logged a warning for each, a line a keystroke in the user's log."""
    client, _ = server
    for msg_id in range(1000, 1200):
        client.notify("$/cancelRequest", {"id": msg_id})
    assert client.request("tact/status")["sessionId"]
    client.notify("$/cancelRequest", {"id": "a string id"})
    assert client.request("tact/status")["sessionId"]
    client.shutdown()
    assert "Cancel notification" not in server_log.read_text()


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
