"""Every suggestion's life ends in telemetry: one with nothing to show, one still generating or on screen when the
session ends or telemetry moves, a server stopped by a signal; the write order runs on across databases; the model
logged is the one that generated."""

from __future__ import annotations

import os
import signal
import sys
import time

import pytest

from telemetry import DocumentOpened, SessionStarted, TelemetryStore
from telemetry.lsp_client import LspClient, change_at
from telemetry.simulate import server_command, wait_ready
from tests.test_telemetry_store import query as _rows

URI = "file:///w/a.py"


def _cancel_reasons(db) -> dict[str, str]:
    return dict(_rows(db, "SELECT suggestion_id, json_extract(payload, '$.reason') FROM suggestion_events"
                          " WHERE type = 'suggestion_cancelled'"))


def test_a_generation_with_nothing_to_show_ends_cancelled_empty(tiny_lm_dir, tmp_path):
    db = tmp_path / "t.sqlite3"
    with LspClient(server_command(sys.executable, str(tiny_lm_dir), str(db))) as client:
        client.initialize({"acceptanceGate": False, "stopThreshold": 0.0})  # Stop before the first token: nothing
        wait_ready(client)
        client.did_open(URI, "import os\n", 1, "python")
        assert client.inline_completion(URI, 1, 0, invoked=True) == []
        client.shutdown()
    (sid, text, outcome), = _rows(db, "SELECT id, text, outcome FROM suggestions")
    assert (text, outcome) == ("", "cancelled") and _cancel_reasons(db)[sid] == "empty"


def test_a_request_still_generating_at_shutdown_ends_cancelled(tiny_lm_dir, tmp_path):
    db = tmp_path / "t.sqlite3"
    env = {**os.environ, "TACT_DEBUG_TOKEN_DELAY_MS": "300"}  # a slow model: the request runs past the shutdown
    with LspClient(server_command(sys.executable, str(tiny_lm_dir), str(db)), env=env) as client:
        client.initialize({"acceptanceGate": False, "stopThreshold": 1.01, "maxNewTokens": 16})
        wait_ready(client)
        client.did_open(URI, "import os\n", 1, "python")
        client.inline_completion_async(URI, 1, 0, invoked=True)
        time.sleep(1.0)
        client.shutdown()
    rows = _rows(db, "SELECT id, outcome FROM suggestions")
    assert len(rows) == 1 and rows[0][1] == "cancelled", rows
    assert _cancel_reasons(db)[rows[0][0]] in ("sessionEnded", "client")


def test_a_suggestion_left_open_when_telemetry_moves_ends_in_the_database_it_began_in(tiny_lm_dir, tmp_path):
    first, second = tmp_path / "a.sqlite3", tmp_path / "b.sqlite3"
    settings = {"acceptanceGate": False, "stopThreshold": 1.01, "maxNewTokens": 8, "telemetryRetentionDays": 0}
    with LspClient(server_command(sys.executable, str(tiny_lm_dir), None)) as client:  # no --database: settings decide
        client.initialize({**settings, "telemetryDatabase": str(first)})
        wait_ready(client)
        client.did_open(URI, "import os\n\n\ndef main():\n    ", 1, "python")
        items = client.inline_completion(URI, 4, 4)
        assert items  # open: neither accepted nor rejected yet
        client.notify("workspace/didChangeConfiguration", {"settings": {"tact": {
            **settings, "telemetryDatabase": str(second)}}})
        deadline = time.time() + 10
        while client.request("tact/status").get("database") != str(second) and time.time() < deadline:
            time.sleep(0.1)
        client.shutdown()
    (sid, outcome), = _rows(first, "SELECT id, outcome FROM suggestions")
    assert outcome == "cancelled" and _cancel_reasons(first)[sid] == "telemetryMoved"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_server_stopped_by_a_signal_records_its_end_and_the_edit_being_typed(tiny_lm_dir, tmp_path, signum):
    db = tmp_path / "t.sqlite3"
    with LspClient(server_command(sys.executable, str(tiny_lm_dir), str(db))) as client:
        client.initialize({"acceptanceGate": False})
        wait_ready(client)
        client.did_open(URI, "\n", 1, "python")
        client.did_change(URI, 2, [change_at(0, 0, "x = 1")])
        client.request("tact/status")
        client.proc.send_signal(signum)
        client.proc.wait(timeout=30)
    # not "interrupted", which says Ctrl-C on a server run by hand: an editor stops its server so (Emacs as it exits)
    assert _rows(db, "SELECT ended_at IS NOT NULL, end_reason FROM sessions") == [(1, "terminated")]
    assert _rows(db, "SELECT inserted_text FROM edits") == [("x = 1",)]


def test_the_write_order_runs_on_when_a_session_records_into_a_database_again(tmp_path):
    a, b = tmp_path / "a.sqlite3", tmp_path / "b.sqlite3"
    for path in (a, b, a):
        with TelemetryStore(path) as store:
            store.record(SessionStarted("s", "c", "1", "0.1.0", {}, {}))
            store.record(DocumentOpened("s", URI, 1, "python", "x\n"))
    seqs = [seq for (seq,) in _rows(a, "SELECT seq FROM documents ORDER BY id")]
    assert len(seqs) == 2 and seqs[0] < seqs[1]


def test_the_model_logged_is_the_one_that_generated(tiny_lm_dir):
    from lsp_server.config import Settings
    from lsp_server.services.completion import CompletionService
    from lsp_server.services.positions import LineIndex, Position
    from lsp_server.services.scheduler import CancelToken

    service = CompletionService()
    assert service.load(str(tiny_lm_dir)).ready
    settings = Settings(stop_threshold=1.01, max_new_tokens=4)
    ctx = service.context(LineIndex("import os\n"), "python", Position(1, 0), settings)
    suggestion = service.complete(ctx, settings, CancelToken())
    assert suggestion.model == service.runtime.name and suggestion.n_layers == service.runtime.n_layers == 4
