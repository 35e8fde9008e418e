"""`tact serve --tcp PORT` as a user runs it: one line once listening, and a quiet exit with the LSP status."""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _TcpClient:
    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.stream = self.sock.makefile("rb")

    def send(self, message: dict) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        self.sock.sendall(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def answer(self, request_id: int) -> dict:
        while True:
            length = 0
            while (line := self.stream.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            assert length, "the server closed the connection"
            message = json.loads(self.stream.read(length))
            if message.get("id") == request_id and "method" not in message:
                return message


def _serve(tmp_path) -> tuple[subprocess.Popen, int]:
    """`tact serve --tcp` without a model (quick to start), once it says it listens."""
    port = _free_port()
    env = {**os.environ, "TACT_DATA_DIR": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "lsp_server.cli", "serve", "--tcp", str(port), "--model",
                             str(tmp_path / "no-model"), "--database", str(tmp_path / "t.sqlite3")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    said, _, _ = select.select([proc.stderr], [], [], 60)
    if not said:
        proc.kill()
    first = proc.stderr.readline() if said else "(nothing in 60 s)"
    assert first.strip() == (f"tact serve: listening on 127.0.0.1:{port} (one client: the server exits when it "
                             "disconnects)"), first
    return proc, port


def _initialized(port: int) -> _TcpClient:
    client = _TcpClient(port)
    client.send({"id": 1, "method": "initialize", "params": {"processId": None, "rootUri": None, "capabilities": {}}})
    assert client.answer(1)["result"]["serverInfo"]["name"] == "tact"
    client.send({"method": "initialized", "params": {}})
    return client


@pytest.mark.parametrize("shutdown, status", [(True, 0), (False, 1)])
def test_exit_ends_the_server_quietly_with_the_lsp_status(tmp_path, shutdown, status):
    """initialize, shutdown, exit: every normal exit logged `Unhandled exception in client_connected_cb ...
    SystemExit: 0` with a traceback (pygls's sys.exit inside the connection's task). Without shutdown: status 1."""
    proc, port = _serve(tmp_path)
    try:
        client = _initialized(port)
        if shutdown:
            client.send({"id": 2, "method": "shutdown"})
            assert client.answer(2)["result"] is None
        client.send({"method": "exit"})
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == status, err
    assert "Traceback" not in err and "SystemExit" not in err and "ERROR" not in err, err


def test_the_server_exits_when_its_client_disconnects(tmp_path):
    """pygls's one-client TCP model, as --help says."""
    proc, port = _serve(tmp_path)
    try:
        client = _TcpClient(port)
        client.stream.close()  # the socket stays open while a file made from it is
        client.sock.close()
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0 and "Traceback" not in err, err


def test_a_second_connection_is_closed_and_the_client_keeps_its_session(tmp_path):
    """A second connection took over the client's answers (its status request was answered on the other socket),
    and the second one's leaving stopped the server under the first."""
    proc, port = _serve(tmp_path)
    try:
        client = _initialized(port)
        other = socket.create_connection(("127.0.0.1", port), timeout=30)
        assert other.recv(1) == b""  # closed by the server, with nothing said
        other.close()
        client.send({"id": 2, "method": "tact/status", "params": None})
        assert "result" in client.answer(2)
        assert proc.poll() is None
        client.send({"id": 3, "method": "shutdown"})
        assert client.answer(3)["result"] is None
        client.send({"method": "exit"})
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "a second connection" in err and "Traceback" not in err, err


def test_a_connection_reset_by_the_client_ends_serving_quietly(tmp_path):
    """An editor killed resets its connection: asyncio logged an ERROR with ConnectionResetError's traceback."""
    import struct

    proc, port = _serve(tmp_path)
    try:
        client = _initialized(port)
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close sends RST
        client.send({"id": 2, "method": "tact/status", "params": None})  # unread: the reset comes mid-answer
        client.stream.close()
        client.sock.close()
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "ERROR" not in err, err
