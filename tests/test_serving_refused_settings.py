"""Settings values no editor means to send: refused and reported, briefly, with the server answering as before."""

from __future__ import annotations

from pathlib import Path

from lsp_server.config import Settings
from telemetry.lsp_client import LspClient
from tests.lsp_support import server_command

HUGE = 10 ** 400  # a JSON integer literal Python reads as an int that no float holds


def test_a_number_setting_given_an_integer_too_large_for_a_float_is_refused():
    """math.isnan(int) converts to float first: from_camel raised OverflowError."""
    settings, problems = Settings.from_camel({"exitThreshold": HUGE, "stopThreshold": 0.5})
    assert settings.exit_threshold == Settings().exit_threshold and settings.stop_threshold == 0.5
    assert len(problems) == 1 and "exitThreshold" in problems[0]


def test_a_refused_value_is_quoted_briefly():
    """A megabyte sent for a setting was a megabyte in each problem, and in the log."""
    _, problems = Settings.from_camel({"enable": "x" * 1_000_000, "maxNewTokens": 10 ** 4000})
    assert len(problems) == 2 and all(len(p) < 300 for p in problems), [len(p) for p in problems]


def test_the_server_starts_and_follows_changes_with_such_a_value(tmp_path: Path):
    """initialize raised with it (the editor got an internal error and no server), and so did
    didChangeConfiguration (the other values sent with it were lost)."""
    client = LspClient(server_command(tmp_path / "no-model", tmp_path / "t.sqlite3"))
    try:
        client.initialize({"exitThreshold": HUGE, "maxNewTokens": 20})
        assert client.request("tact/status", timeout=30)["settings"]["maxNewTokens"] == 20
        client.notify("workspace/didChangeConfiguration", {"settings": {"tact": {"stopThreshold": HUGE,
                                                                                  "maxNewTokens": 30}}})
        settings = client.request("tact/status", timeout=30)["settings"]
        assert (settings["maxNewTokens"], settings["stopThreshold"], settings["exitThreshold"]) == \
            (30, Settings().stop_threshold, Settings().exit_threshold)
    finally:
        client.shutdown()


def test_an_acceptance_prior_with_numbers_no_float_holds_is_refused(tmp_path: Path):
    """A replay's acceptancePrior with such a time raised out of initialize (no server); with such a count it was
    taken, and every gated request then failed computing the gate's features."""
    from lsp_server.services.gate import parse_prior

    good = {"accepted": 3, "rejected": 4, "lastOutcome": "rejected", "lastOutcomeAt": 1_700_000_000}
    assert parse_prior(good) is not None
    assert parse_prior({**good, "lastOutcomeAt": HUGE}) is None
    assert parse_prior({**good, "accepted": HUGE}) is None

    from tests.lsp_support import model_under_test

    uri = "file:///w/prior.py"
    client = LspClient(server_command(model_under_test(), tmp_path / "t.sqlite3"))
    try:
        client.initialize({"acceptancePrior": {**good, "accepted": HUGE, "lastOutcomeAt": HUGE}})
        client.did_open(uri, "import os\n\n\ndef path_of(name):\n    return os.path.jo")
        client.inline_completion(uri, 4, 21, timeout=120)  # gated: an internal error before
        assert client.request("tact/status", timeout=30)["acceptanceGate"]["enabled"]
    finally:
        client.shutdown()
