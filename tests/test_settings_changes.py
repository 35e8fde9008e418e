"""Settings that arrive after initialize (workspace/configuration, didChangeConfiguration) against the real server."""

from __future__ import annotations

import time

import pytest

from telemetry.lsp_client import LspClient, change_at
from tests.lsp_support import server_command, wait_for_rows


def status_settings(client: LspClient, wanted: dict, timeout: float = 60.0) -> dict:
    """tact/status's settings once they hold ``wanted`` (the server applies what it was sent in its own time)."""
    deadline = time.time() + timeout
    while True:
        settings = client.request("tact/status", timeout=30)["settings"]
        if all(settings.get(k) == v for k, v in wanted.items()) or time.time() > deadline:
            return settings
        time.sleep(0.1)


def type_slowly(client: LspClient, uri: str, first_version: int, text: str) -> None:
    """One keystroke at a time at the end of line 0, each continuing the one before, 150 ms apart."""
    for i, ch in enumerate(text):
        client.did_change(uri, first_version + i, [change_at(0, i, ch)])
        time.sleep(0.15)


@pytest.mark.parametrize("source", ["workspace/configuration", "didChangeConfiguration"])
def test_the_edit_window_follows_settings_sent_after_initialize(tmp_path, source):
    """editCoalesceMs was read once, from initializationOptions: the value a client answers workspace/configuration
    with (Neovim's `settings`) or sends later was shown in tact/status but never grouped a keystroke, for documents
    already open and for those opened after it alike."""
    db = tmp_path / "telemetry.sqlite3"
    # no model there: the test is about edits, and the server keeps running without one
    client = LspClient(server_command(tmp_path / "no-model", db))
    client.configuration = {"tact": {"editCoalesceMs": 0 if source == "workspace/configuration" else 1000}}
    client.initialize({"editCoalesceMs": 1000}, configuration=True)
    try:
        open_before, open_after = "file:///project/before.py", "file:///project/after.py"
        client.did_open(open_before, "\n")
        if source == "didChangeConfiguration":
            assert status_settings(client, {"editCoalesceMs": 1000})["editCoalesceMs"] == 1000
            client.notify("workspace/didChangeConfiguration", {"settings": {"tact": {"editCoalesceMs": 0}}})
        assert status_settings(client, {"editCoalesceMs": 0})["editCoalesceMs"] == 0
        client.did_open(open_after, "\n")
        type_slowly(client, open_before, 2, "abc")
        type_slowly(client, open_after, 2, "xyz")
    finally:
        client.shutdown()
    rows = wait_for_rows(db, "select uri, inserted_text from edits order by seq", want=6)
    # keystrokes 150 ms apart, with a window of 0 ms: an edit each (with 1000 ms they were one edit a document)
    assert sorted(rows) == sorted([(open_before, c) for c in "abc"] + [(open_after, c) for c in "xyz"])


def test_an_acceptance_model_path_sent_by_did_change_configuration_is_loaded_or_told(tmp_path):
    """A client that changes acceptanceModelPath without restarting the server (everything but VS Code) kept the
    gate it started with: a path that does not load now turns the gate off and says why, and the shipped model comes
    back when the path is cleared."""
    db = tmp_path / "telemetry.sqlite3"
    client = LspClient(server_command(tmp_path / "no-model", db))
    client.initialize({})
    try:
        from telemetry.simulate import wait_ready

        gate = wait_ready(client)["acceptanceGate"]
        assert gate["active"], gate
        shipped = gate["version"]
        missing = tmp_path / "no-acceptance-model"
        client.notify("workspace/didChangeConfiguration", {"settings": {"tact": {"acceptanceModelPath": str(missing)}}})
        while True:  # the model's own warning (no code model here) may come first
            message = client.wait_notification("window/showMessage", timeout=30)["params"]["message"]
            if "acceptance gate" in message:
                break
        assert str(missing) in message
        gate = client.request("tact/status", timeout=30)["acceptanceGate"]
        assert not gate["active"] and str(missing) in gate["reason"]
        client.notify("workspace/didChangeConfiguration", {"settings": {"tact": {"acceptanceModelPath": ""}}})
        deadline = time.time() + 60
        while not gate["active"] and time.time() < deadline:
            time.sleep(0.1)
            gate = client.request("tact/status", timeout=30)["acceptanceGate"]
        assert gate["active"] and gate["version"] == shipped
    finally:
        client.shutdown()


def test_a_key_left_out_of_a_later_section_goes_back_to_what_initialize_gave(tmp_path):
    """A pushed section is the whole section: laid over the current settings, a key the user removed (back to its
    default) kept the value it had, for the rest of the session."""
    client = LspClient(server_command(tmp_path / "no-model", tmp_path / "t.sqlite3"))
    client.initialize({"maxNewTokens": 20})
    try:
        client.notify("workspace/didChangeConfiguration", {"settings": {"tact": {"maxNewTokens": 8, "multiline": True}}})
        assert status_settings(client, {"maxNewTokens": 8, "multiline": True})["multiline"] is True
        client.notify("workspace/didChangeConfiguration", {"settings": {"tact": {}}})
        settings = status_settings(client, {"maxNewTokens": 20, "multiline": False})
        assert (settings["maxNewTokens"], settings["multiline"]) == (20, False)
    finally:
        client.shutdown()


def test_a_client_that_registers_dynamically_is_asked_for_the_sections_changes(tmp_path):
    """vscode-languageclient pushes workspace/didChangeConfiguration only for sections a server registers: the
    server never registered, so such a client other than Tact's own extension kept the settings of the start. A
    client that cannot register is not asked."""
    for dynamic in (True, False):
        client = LspClient(server_command(tmp_path / "no-model", tmp_path / f"{dynamic}.sqlite3"))
        client.initialize({}, workspace={"didChangeConfiguration": {"dynamicRegistration": dynamic}})
        try:
            status_settings(client, {})  # `initialized` has run: a registration is sent before the model loads
        finally:
            client.shutdown()
        registrations = [r for m in client.server_requests if m["method"] == "client/registerCapability"
                         for r in m["params"]["registrations"]]
        expected = [{"id": "tact-configuration", "method": "workspace/didChangeConfiguration",
                     "registerOptions": {"section": "tact"}}] if dynamic else []
        assert registrations == expected


def test_a_push_that_changes_nothing_records_no_settings_change(tmp_path):
    """A registration starts with a push of the section as it is, and a client that also synchronizes the section
    itself pushes each change twice: only a push that changes a value is a settings change in telemetry."""
    db = tmp_path / "t.sqlite3"
    client = LspClient(server_command(tmp_path / "no-model", db))
    client.initialize({"maxNewTokens": 20})
    try:
        for pushed in ({"maxNewTokens": 20}, {"maxNewTokens": 8}, {"maxNewTokens": 8}, {"maxNewTokens": 8}):
            client.notify("workspace/didChangeConfiguration", {"settings": {"tact": pushed}})
        status_settings(client, {"maxNewTokens": 8})
    finally:
        client.shutdown()
    rows = wait_for_rows(db, "SELECT json_extract(settings, '$.maxNewTokens') FROM settings_changes")
    assert [r[0] for r in rows] == [8]
