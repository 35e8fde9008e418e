"""LSP 3.17, InitializeParams.processId: a server whose client process is gone exits. An editor killed while
something else held the pipes open left the server running, its model loaded and its session never ended."""

from __future__ import annotations

import subprocess
import sys
import time

import lsp_server.features.lifecycle as lifecycle
from telemetry.lsp_client import LspClient
from tests.lsp_support import model_under_test, server_command, wait_for_rows


def _initialize(client: LspClient, pid: int | None) -> None:
    client.request("initialize", {"processId": pid, "rootUri": None, "capabilities": {}}, timeout=60)
    client.notify("initialized", {})


def test_the_server_exits_once_its_client_process_is_gone_and_records_the_end(tmp_path):
    parent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    db = tmp_path / "t.sqlite3"
    client = LspClient(server_command(model_under_test(), db))
    try:
        _initialize(client, parent.pid)
        client.request("tact/status", {}, timeout=60)
        assert client.proc.poll() is None
        parent.kill()
        parent.wait()
        assert client.proc.wait(timeout=30) == 1  # within a check or two (every 3 s)
    finally:
        parent.kill()
        client.proc.kill()
    assert wait_for_rows(db, "SELECT end_reason FROM sessions WHERE end_reason IS NOT NULL") == [("client left",)]


def test_a_process_not_visible_at_initialize_is_not_watched(tmp_path):
    """A server in a container gets its editor's process id from outside, which is no process here: watched, the
    server would stop at once."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    client = LspClient(server_command(model_under_test(), tmp_path / "t.sqlite3"))
    try:
        _initialize(client, gone.pid)
        time.sleep(2 * lifecycle.PARENT_CHECK_S + 1)
        assert client.proc.poll() is None
        assert client.request("tact/status", {}, timeout=60)["sessionId"]
    finally:
        client.proc.kill()


def test_the_check_tells_a_running_process_from_one_that_ended():
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert lifecycle.process_alive(gone.pid) is False
    import os

    assert lifecycle.process_alive(os.getpid()) is True
