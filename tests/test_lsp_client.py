"""The small LSP client the demo, benches, replay and the simulated programmer drive a server with: what it says when
the server is gone or silent."""

from __future__ import annotations

import queue
import sys

import pytest

from telemetry.lsp_client import LspClient, LspError
from tests.lsp_support import server_command


def test_a_server_that_exited_is_named_with_its_exit_code_not_a_broken_pipe():
    """`tact simulate` against a server that died ended with "[Errno 32] Broken pipe" at its next keystroke."""
    client = LspClient([sys.executable, "-c", "import sys; sys.stdin.close(); sys.exit(3)"])
    client.proc.wait(timeout=30)
    with pytest.raises(LspError, match="the server exited with code 3"):
        for _ in range(100):  # the pipe's buffer takes a few writes before the first fails
            client.notify("textDocument/didChange", {"contentChanges": [{"text": "x" * 10000}]})
    with pytest.raises(LspError, match="the server exited with code 3"):
        client.request("tact/status", timeout=5)


def test_a_request_nobody_answers_names_the_method_and_still_reads_as_no_answer():
    """A server that hung on workspace/executeCommand stopped `tact simulate` with a bare queue.Empty."""
    client = LspClient([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with pytest.raises(LspError, match="no answer to workspace/executeCommand within 0.2 s") as raised:
            client.request("workspace/executeCommand", {"command": "tact.acceptSuggestion"}, timeout=0.2)
        assert isinstance(raised.value, queue.Empty)  # callers that wait for an answer or none see none
    finally:
        client.proc.kill()


def test_an_inline_completion_nobody_answers_is_an_lsp_error_too():
    """`inline_completion` (and every caller of `result`) let a bare queue.Empty through: a traceback in the benches."""
    client = LspClient([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with pytest.raises(LspError, match="no answer to textDocument/inlineCompletion within 0.2 s"):
            client.inline_completion("file:///a.py", 0, 0, timeout=0.2)
        _, q = client.request_async("tact/status")
        with pytest.raises(LspError, match="no answer to a request within 0.1 s") as raised:
            client.result(q, timeout=0.1)
        assert isinstance(raised.value, queue.Empty)  # the callers that cancel on no answer still see none
    finally:
        client.proc.kill()


def test_shutdown_sends_exit_even_where_the_server_refuses_a_second_shutdown():
    """A server shut down already answers `shutdown` with an error; the client then skipped `exit`, and the server
    waited for it until the client killed it (exit code -9 after the timeout)."""
    client = LspClient(server_command(None))
    client.initialize({})
    client.request("shutdown", None, 30)
    assert client.shutdown(timeout=30) == 0
