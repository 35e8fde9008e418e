"""A suggestion that ended `ignored` (focus moved to another editor, the extension stopped, the user typed it out to
its end by hand) is no rejection: the acceptance gate's running counts, the prior a later session starts from and the
training rows of the telemetry database counted each as one the user turned down."""

from __future__ import annotations

import time

from models.acceptance.dataset import from_telemetry
from telemetry.lsp_client import LspClient, change_at
from tests.lsp_support import DEFAULT_MODEL, server_command

URI = "file:///w/a.py"
TEXT = "import os\n\n\ndef read_lines(path):\n    with open(path) as f:\n        return f."


def _counts(client: LspClient) -> tuple[int, int]:
    gate = client.request("tact/status")["acceptanceGate"]
    return gate["userAccepted"], gate["userRejected"]


def _started(db, settings: dict | None = None) -> LspClient:
    client = LspClient(server_command(DEFAULT_MODEL, db))
    client.initialize({"acceptanceExploreShare": 0, **(settings or {})}, client_name="Visual Studio Code")
    for _ in range(300):
        if client.request("tact/status")["acceptanceGate"]["started"]:
            return client
        time.sleep(0.1)
    raise AssertionError("the acceptance gate did not start")


def test_a_suggestion_ended_ignored_is_not_counted_as_a_rejection(tmp_path):
    db = tmp_path / "t.sqlite3"
    client = _started(db)
    try:
        client.did_open(URI, TEXT)
        assert _counts(client) == (0, 0)
        for k, reason in enumerate(["ignored", "ignored", "dismissed"]):
            client.did_change(URI, 2 + k, [change_at(5, 17 + k, "r")])
            [item] = client.inline_completion(URI, 5, 18 + k)
            sid = item["command"]["arguments"][0]
            client.notify("tact/didShowCompletion", {"id": sid})
            client.notify("tact/didRejectCompletion", {"id": sid, "reason": reason})
            time.sleep(0.3)
        assert _counts(client) == (0, 1)  # the dismissal alone
    finally:
        client.shutdown()
    again = _started(db)  # the prior a later session starts from
    try:
        assert _counts(again) == (0, 1)
    finally:
        again.shutdown()
    data, _ = from_telemetry([db])
    assert data.y.tolist() == [0]  # one training row: the dismissal
    assert data.sources[0]["skipped"].get("ended without a decision (ignored)") == 2
