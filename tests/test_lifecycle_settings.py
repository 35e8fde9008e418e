"""The server's lifecycle and settings, a seventh look (2026-12-06): each test failed on the code before its fix."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from lsp_server.config import Settings, expand_user
from telemetry.lsp_client import LspClient
from tests.lsp_support import model_under_test

NO_USER = "~tact-no-such-user-7f3a"  # a ~user no system has: Path.expanduser raises RuntimeError


def test_a_path_whose_tilde_names_no_user_is_refused_and_the_rest_is_taken():
    """`Path.expanduser` raised on it, before the model's load (which turns failures into a degraded status) and
    before telemetry opened: at initialize the client got an error and no server, later the handler stopped half done
    (the settings applied, no model loaded, no message, every later change failing the same way)."""
    base = Settings.from_camel({"telemetryDatabase": "kept.sqlite3"})[0]
    for key in ("modelPath", "telemetryDatabase", "acceptanceModelPath", "nextEditModelPath", "nextEditRankerPath"):
        settings, problems = Settings.from_camel({key: f"{NO_USER}/x", "maxNewTokens": 7}, base=base)
        assert getattr(settings, _snake(key)) == getattr(base, _snake(key))
        assert settings.max_new_tokens == 7 and len(problems) == 1 and key in problems[0] and NO_USER in problems[0]
    assert Settings.from_camel({"modelPath": "~/models/x"})[1] == []  # the user's own home is fine
    assert expand_user(f"{NO_USER}/x") == Path(f"{NO_USER}/x")  # as written where it cannot expand (--model)


def _snake(key: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in key)


def test_a_retention_longer_than_a_float_holds_in_seconds_is_refused():
    """Multiplied by 86,400 into seconds, it raised OverflowError in the telemetry writer's thread, which died: nothing
    was written, the status said all was well, and every close waited out its 5 s flush."""
    settings, problems = Settings.from_camel({"telemetryRetentionDays": 10 ** 304})
    assert settings.telemetry_retention_days == 90 and "telemetryRetentionDays" in problems[0]
    assert Settings.from_camel({"telemetryRetentionDays": 36_500})[0].telemetry_retention_days == 36_500


# A server whose acceptance gate starts (or loads a path holding "slow") only after a pause: a slow disk, a large
# telemetry database to seed from.
_HELD = ("import sys, time; import lsp_server.services.gate as g; start, load = g.AcceptanceGate.start, g.load_model;"
         "g.AcceptanceGate.start = lambda self, *a, **k: (time.sleep(float(sys.argv[1])), start(self, *a, **k))[1];"
         "g.load_model = lambda path=None: (time.sleep(2) if path and 'slow' in str(path) else None, load(path))[1];"
         "from lsp_server.cli import main; sys.exit(main(['serve', *sys.argv[2:]]))")


def _held_server(tmp_path: Path, start_s: float) -> LspClient:
    return LspClient([sys.executable, "-c", _HELD, str(start_s), "--model", str(model_under_test()),
                      "--database", str(tmp_path / "telemetry.sqlite3")],
                     env=dict(os.environ, TACT_DATA_DIR=str(tmp_path / "data")))


def _gate_when(client: LspClient, done, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout  # bounds how long a failure takes to show
    while True:
        gate = client.request("tact/status", timeout=30)["acceptanceGate"]
        if done(gate) or time.monotonic() > deadline:
            return gate
        time.sleep(0.2)


def test_an_acceptance_model_chosen_while_the_gate_starts_is_followed(tmp_path):
    """start() reads the settings it is handed at `initialized`, and a change before it finished was dropped: the
    gate kept the shipped model while the settings named another."""
    client = _held_server(tmp_path, 3.0)
    try:
        client.initialize({})
        client.notify("workspace/didChangeConfiguration",
                      {"settings": {"tact": {"acceptanceModelPath": str(tmp_path / "none")}}})
        gate = _gate_when(client, lambda g: g["started"] and not g["active"])
    finally:
        client.shutdown()
    assert gate["started"] and not gate["active"] and str(tmp_path / "none") in gate["reason"], gate


def test_two_quick_acceptance_model_changes_end_on_the_last(tmp_path):
    """Each change loaded on its own executor thread: the slow first one finished last, and the gate stayed off
    (the first path's failure) while the settings named the shipped model again."""
    client = _held_server(tmp_path, 0.0)
    try:
        client.initialize({})
        assert _gate_when(client, lambda g: g["started"])["active"]
        client.notify("workspace/didChangeConfiguration",
                      {"settings": {"tact": {"acceptanceModelPath": str(tmp_path / "slow")}}})
        time.sleep(0.5)
        client.notify("workspace/didChangeConfiguration", {"settings": {"tact": {"acceptanceModelPath": ""}}})
        time.sleep(3.0)  # past the slow load
        gate = _gate_when(client, lambda g: g["active"], timeout=10)
        settings = client.request("tact/status", timeout=30)["settings"]
    finally:
        client.shutdown()
    assert settings["acceptanceModelPath"] == "" and gate["active"] and not gate["reason"], gate
