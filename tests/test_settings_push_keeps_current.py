"""A value refused in a pushed section keeps the value in use (README: "keeps the value it would replace"), not the
one initialize gave; a key left out of the push still goes back to initialize's value (the push is the whole
section)."""

from __future__ import annotations

from telemetry.lsp_client import LspClient
from tests.lsp_support import server_command
from tests.test_settings_changes import status_settings

KEYS = ("decodingPolicy", "maxNewTokens")


def pushed(client: LspClient, section: dict, wanted: dict) -> tuple:
    client.notify("workspace/didChangeConfiguration", {"settings": {"tact": section}})
    settings = status_settings(client, wanted)
    return tuple(settings[k] for k in KEYS)


def test_a_refused_value_in_a_push_keeps_the_value_in_use(tmp_path):
    log_file = tmp_path / "server.log"
    client = LspClient(server_command(tmp_path / "no-model", tmp_path / "t.sqlite3") + ["--log-file", str(log_file)])
    client.initialize({})
    try:
        assert pushed(client, {"decodingPolicy": "dynamic", "maxNewTokens": 20},
                      {"decodingPolicy": "dynamic", "maxNewTokens": 20}) == ("dynamic", 20)
        # each push also changes another key, which tells when it was applied
        assert pushed(client, {"decodingPolicy": "FULL", "maxNewTokens": 20, "multiline": True},
                      {"multiline": True}) == ("dynamic", 20)
        assert pushed(client, {"decodingPolicy": "dynamic", "maxNewTokens": -5},
                      {"multiline": False}) == ("dynamic", 20)
        assert pushed(client, {"decodingPolicy": "dynamic", "maxNewTokens": "many", "multiline": True},
                      {"multiline": True}) == ("dynamic", 20)  # of the wrong type
        # left out: back to initialize's values
        assert pushed(client, {}, {"multiline": False}) == ("speculative", 48)
    finally:
        client.shutdown()
    log = log_file.read_text()
    assert "tact.decodingPolicy: 'FULL' is not one of" in log and "'dynamic' stays in effect" in log, log
    assert "tact.maxNewTokens: -5, but it must be between 1 and 256; 20 stays in effect" in log, log
