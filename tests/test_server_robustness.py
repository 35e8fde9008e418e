"""Bad input, cancellation, stale versions and bursts against the real server process over stdio."""

from __future__ import annotations

import json
import os
import queue
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from telemetry.lsp_client import LspClient, LspError, change_at
from telemetry.reader import list_sessions, open_readonly
from telemetry.reconstruct import build_script
from tests.lsp_support import SAMPLE, model_under_test, server_command, wait_for_rows

URI = "file:///project/robust.py"
# acceptanceGate off: these tests are about scheduling, not about what the acceptance model skips or hides.
LONG = {"stopThreshold": 1.01, "multiline": True, "maxNewTokens": 64, "decodingPolicy": "full", "acceptanceGate": False}


def start(tmp_path: Path, options: dict | None = None, model=None, delay_ms: int = 0, **kw) -> tuple[LspClient, Path]:
    db = tmp_path / "telemetry.sqlite3"
    env = dict(os.environ, TACT_DEBUG_TOKEN_DELAY_MS=str(delay_ms))
    client = LspClient(server_command(model or model_under_test(), db), env=env)
    client.initialize(options or {"stopThreshold": 1.01}, **kw)
    return client, db


def alive(client: LspClient) -> bool:
    status = client.request("tact/status", timeout=10)
    return client.proc.poll() is None and isinstance(status, dict)


@pytest.fixture
def server(tmp_path):
    client, db = start(tmp_path)
    client.did_open(URI, SAMPLE)
    yield client, db
    client.shutdown()


def test_malformed_json_rpc_keeps_server_up(server):
    client, _ = server
    client.send_raw(b"{this is not json")
    client.send_raw(json.dumps({"jsonrpc": "2.0", "id": 99, "method": "textDocument/inlineCompletion", "params": {"bogus": 1}}).encode())
    assert alive(client)


@pytest.mark.parametrize("method,params", [
    ("textDocument/inlineCompletion", {"bogus": 1}),
    ("textDocument/inlineCompletion", [1, 2]),
    ("textDocument/completion", {"textDocument": [1], "position": {"line": "1", "character": "2"}}),
    ("workspace/executeCommand", True),
    ("textDocument/hover", -1),  # a method the server does not offer, with params that do not fit it either
])
def test_a_request_whose_params_do_not_fit_gets_an_error_not_silence(server, method, params):
    """Found by fuzzing the server: such requests were logged and dropped, and the client waited forever."""
    client, _ = server
    with pytest.raises(LspError) as err:
        client.request(method, params, timeout=10)
    assert err.value.error["code"] == -32602
    items = client.inline_completion(URI, 3, 4, invoked=True)  # the next well-formed request is served as usual
    assert isinstance(items, list)
    assert alive(client)


def test_a_request_that_does_not_fit_is_told_which_field_in_one_log_line(tmp_path):
    """pygls logged two tracebacks of dozens of lines for each malformed message and answered with a bare "Invalid
    Params"; now the answer and one log line name the fields that did not fit, in the protocol's names."""
    log_file = tmp_path / "server.log"
    with open(log_file, "wb") as stderr:
        client = LspClient(server_command(model_under_test(), tmp_path / "t.sqlite3"), stderr=stderr)
    try:
        client.initialize({"stopThreshold": 1.01})
        with pytest.raises(LspError) as err:
            client.request("textDocument/inlineCompletion", {"textDocument": {"uri": URI}, "position": {"line": "one", "character": 2},
                                                             "context": {"triggerKind": 1}}, timeout=10)
        assert err.value.error["code"] == -32602
        assert "expected int @ $.params.position.line" in err.value.error["message"], err.value.error
        client.notify("textDocument/didOpen", {"textDocument": {"uri": URI, "languageId": "python", "version": "one", "text": ""}})
        client.notify("$/cancelRequest", {"id": {}})  # an id that is no number or string raised inside pygls
        client.send_raw(b"{this is not json")
        assert alive(client)
    finally:
        client.shutdown()
    log_text = log_file.read_text()
    assert "Traceback" not in log_text, log_text
    lines = log_text.splitlines()
    assert any("'textDocument/inlineCompletion'" in line and "$.params.position.line" in line for line in lines), log_text
    assert any("'textDocument/didOpen' dropped" in line and "$.params.textDocument.version" in line for line in lines), log_text
    assert any("'$/cancelRequest' dropped" in line and "$.params.id" in line for line in lines), log_text
    assert any("Expecting property name" in line for line in lines), log_text  # the body that is not JSON, in one line


def test_a_clients_text_in_a_log_line_cannot_start_another_line(tmp_path):
    """URIs were logged as sent: one holding a line break and a record's start forged a whole log line (its level and
    time included), which an editor's output channel shows as the server's own."""
    import re

    log_file = tmp_path / "server.log"
    with open(log_file, "wb") as stderr:
        client = LspClient(server_command(model_under_test(), tmp_path / "t.sqlite3"), stderr=stderr)
    forged = "file:///w/a.py\n2026-12-07 10:00:00,000 CRITICAL tact: forged\x1b[2J"
    try:
        client.initialize({"stopThreshold": 1.01})
        client.did_open(forged, "x = 1\n")
        client.did_open(forged, "x = 2\n")  # open already: logged with its URI
        client.notify("textDocument/didChange", {"textDocument": {"uri": forged + "\r\nCRITICAL", "version": 2},
                                                 "contentChanges": [{"text": "y"}]})
        assert alive(client)
    finally:
        client.shutdown()
    lines = log_file.read_text().splitlines()
    assert any("which is open already" in line and "\\n2026-12-07" in line for line in lines), lines
    record = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) ")
    assert all(record.match(line) for line in lines), lines  # every line a record's start: none forged
    assert not any("CRITICAL" in line.split(" ", 3)[2] for line in lines) and "\x1b" not in "".join(lines)


def raw_exchange(tmp_path: Path, bodies: list[bytes]) -> list[dict]:
    """Send ``bodies`` framed after initialize, then shutdown and exit; every message the server wrote back."""
    frame = lambda body: b"Content-Length: %d\r\n\r\n" % len(body) + body  # noqa: E731
    init = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"processId": None, "capabilities": {}}})
    tail = [json.dumps({"jsonrpc": "2.0", "id": 2, "method": "shutdown"}).encode(), b'{"jsonrpc": "2.0", "method": "exit"}']
    out = subprocess.run(server_command(None, tmp_path / "t.sqlite3"), capture_output=True, timeout=60,
                         input=b"".join(frame(b) for b in [init.encode(), *bodies, *tail]))
    messages, data = [], out.stdout
    while data:
        header, rest = data.split(b"\r\n\r\n", 1)
        n = int(header.split(b"\r\n")[0].split(b":")[1])
        messages.append(json.loads(rest[:n]))
        data = rest[n:]
    assert out.returncode == 0 and b"Traceback" not in out.stderr, out.stderr.decode()[-3000:]
    return messages


def test_json_that_is_no_json_rpc_message_or_has_a_bad_id_is_answered_invalid_request(tmp_path):
    """A batch, null, an object without jsonrpc, a request whose id is a list or whose method is a number raised inside
    pygls (a traceback in the log, no answer); JSON-RPC answers them Invalid Request, with a null id where the id
    cannot be read."""
    bodies = [b"[]", b"null", b"5", b'{"id": 7, "method": "tact/status"}',
              json.dumps({"jsonrpc": "2.0", "id": [1], "method": "tact/status"}).encode(),
              json.dumps({"jsonrpc": "2.0", "id": 4, "method": 5}).encode(),
              json.dumps({"jsonrpc": "2.0", "id": 77, "method": None}).encode(),  # was an internal error, a traceback
              json.dumps({"jsonrpc": "2.0", "method": None}).encode(),  # a notification: logged and dropped
              json.dumps({"jsonrpc": "2.0", "id": 3, "method": "tact/status"}).encode()]
    messages = raw_exchange(tmp_path, bodies)
    invalid = [m for m in messages if m.get("id") is None and "error" in m]
    assert len(invalid) == 5 and all(m["error"]["code"] == -32600 for m in invalid), messages
    assert [m["error"]["code"] for m in messages if m.get("id") == 4] == [-32600]  # the method 5
    assert [m["error"]["code"] for m in messages if m.get("id") == 77] == [-32600]  # the method null
    assert [m["id"] for m in messages if "result" in m] == [1, 3, 2]  # initialize, the good request, shutdown


class MalformedConfigurationClient(LspClient):
    """Answers workspace/configuration with a result that is no list: a response that does not fit its request."""

    def _answer_server_request(self, message: dict) -> None:
        self.server_requests.append(message)
        self._send({"jsonrpc": "2.0", "id": message["id"], "result": 5})


def test_a_response_that_does_not_fit_fails_the_request_waiting_for_it_at_once(tmp_path):
    """A client's answer to the server's own request (workspace/configuration) that did not fit its type was logged
    with a traceback and dropped: the server waited out its 5 s timeout before loading the model."""
    log_file = tmp_path / "server.log"
    client = MalformedConfigurationClient(server_command(model_under_test(), tmp_path / "t.sqlite3")
                                          + ["--log-file", str(log_file)])
    try:
        client.initialize({}, configuration=True)
        assert alive(client)
        deadline = time.time() + 60
        while "workspace/configuration failed" not in log_file.read_text() and time.time() < deadline:
            time.sleep(0.1)
    finally:
        client.shutdown()
    text = log_file.read_text()
    assert "that does not fit its request was dropped" in text and "Traceback" not in text, text
    assert "workspace/configuration failed: Invalid params" in text, text  # failed with the reason, not timed out


def test_unknown_method_gets_an_error_response(server):
    client, _ = server
    with pytest.raises(LspError) as err:
        client.request("tact/noSuchMethod", {})
    assert err.value.error["code"] == -32601
    assert alive(client)


def test_positions_past_the_end_are_clamped(server):
    client, _ = server
    for line, ch in [(3, 500), (5000, 0), (5000, 5000)]:
        items = client.inline_completion(URI, line, ch, invoked=True)
        assert isinstance(items, list)
    assert alive(client)


def test_utf16_offsets_around_emoji_and_cjk(tmp_path):
    client, db = start(tmp_path)
    try:
        text = 'greeting = "héllo 👋 世界"\nname = greeting.\n'
        client.did_open("file:///project/emoji.py", text)
        # Replace the emoji (2 UTF-16 units) with CJK text using LSP (UTF-16) columns.
        col = len('greeting = "héllo ')
        client.did_change("file:///project/emoji.py", 2, [change_at(0, col, "世", 0, col + 2)])
        rows = wait_for_rows(db, "select text from documents where uri = 'file:///project/emoji.py'")
        assert rows
        items = client.inline_completion("file:///project/emoji.py", 1, len("name = greeting."), invoked=True)
        assert isinstance(items, list)
        # The server's text must now be exactly the expected string: check via a ranged replace
        # that only lines up if the emoji was replaced as one character.
        client.did_change("file:///project/emoji.py", 3, [change_at(0, col + 1, "!", 0, col + 2)])
        client.shutdown()
        edits = wait_for_rows(db, "select removed_text, inserted_text from edits where uri = 'file:///project/emoji.py' order by seq")
        removed = "".join(r[0] for r in edits)
        assert "👋" in removed and edits[0][1].startswith("世")
    finally:
        client.shutdown()


def test_out_of_bounds_change_is_clamped_and_unknown_document_or_old_version_ignored(server):
    client, db = server
    client.did_change(URI, 2, [change_at(400, 0, "boom", 401, 0)])  # past the end: lands at the end
    client.did_change("file:///never/opened.py", 2, [change_at(0, 0, "x")])
    client.did_change(URI, 1, [change_at(0, 0, "stale")])  # version not newer than 2
    client.did_change(URI, 3, [change_at(0, 0, "# ok\n")])
    assert alive(client)
    client.shutdown()
    rows = wait_for_rows(db, "select inserted_text, version from edits where uri = ? order by seq", (URI,), want=2)
    assert rows == [("boom", 2), ("# ok\n", 3)]


def test_a_language_id_that_is_not_a_string_opens_the_document_without_a_language(server):
    """Found by fuzzing the server: a numeric languageId reached the document as a number, and every completion in
    it failed inside the syntax facts."""
    client, db = server
    text = "def area(width, height):\n    return wid"
    client.notify("textDocument/didOpen", {"textDocument": {"uri": "file:///project/n.py", "languageId": 3, "version": 1, "text": text}})
    client.notify("textDocument/didOpen", {"textDocument": {"uri": "file:///project/e.py", "languageId": "", "version": 1, "text": text}})
    numeric = client.inline_completion("file:///project/n.py", 1, 14, invoked=True)
    assert numeric, "the document with a numeric languageId got no suggestion"
    without_language = client.inline_completion("file:///project/e.py", 1, 14, invoked=True)
    assert [i["insertText"] for i in numeric] == [i["insertText"] for i in without_language]
    client.shutdown()
    assert wait_for_rows(db, "select language_id from documents where uri = 'file:///project/n.py' and kind = 'open'") == [("",)]
    rows = wait_for_rows(db, "select outcome from suggestions where uri = 'file:///project/n.py'")
    assert rows and all(outcome != "failed" for (outcome,) in rows)


def test_a_string_field_given_null_or_a_number_is_refused_and_changes_nothing(server):
    """The protocol's deserializer turned a null text into the text "None" and a numeric uri into the document "5"."""
    client, db = server
    client.notify("textDocument/didOpen", {"textDocument": {"uri": "file:///project/null.py", "languageId": "python",
                                                            "version": 1, "text": None}})
    client.notify("textDocument/didOpen", {"textDocument": {"uri": 5, "languageId": "python", "version": 1, "text": "x"}})
    client.notify("textDocument/didChange", {"textDocument": {"uri": URI, "version": 2},
                                             "contentChanges": [{"range": change_at(0, 0, "")["range"], "text": 7}]})
    with pytest.raises(LspError) as err:
        client.request("textDocument/inlineCompletion", {"textDocument": {"uri": 5}, "position": {"line": 0, "character": 0},
                                                         "context": {"triggerKind": 1}}, timeout=10)
    assert err.value.error["code"] == -32602
    client.did_change(URI, 2, [change_at(0, 0, "# kept\n")])  # the refused change took no version
    client.did_open("file:///project/null.py", "import os\n")  # the refused open left no document behind
    assert alive(client)
    client.shutdown()
    assert wait_for_rows(db, "select uri, text from documents where kind = 'open' order by rowid") == [
        (URI, SAMPLE), ("file:///project/null.py", "import os\n")]
    assert wait_for_rows(db, "select inserted_text, version from edits where uri = ? order by seq", (URI,)) == [("# kept\n", 2)]


def test_huge_file_nul_bytes_and_untitled_uri(tmp_path):
    client, _ = start(tmp_path)
    try:
        big = ("x = 1\n" * 900_000)[:5_000_000]
        client.did_open("file:///project/big.py", big)
        t0 = time.perf_counter()
        items = client.inline_completion("file:///project/big.py", 1000, 3, invoked=True, timeout=60)
        assert isinstance(items, list)
        assert time.perf_counter() - t0 < 20
        client.did_open("file:///project/blob.bin", "abc\x00\x01\x02" * 1000, language_id="plaintext")
        assert client.inline_completion("file:///project/blob.bin", 0, 3, invoked=True) == []
        client.did_open("untitled:Untitled-1", "import os\nos.")
        assert isinstance(client.inline_completion("untitled:Untitled-1", 1, 3, invoked=True), list)
        assert alive(client)
    finally:
        client.shutdown()


def test_cancel_request_stops_the_token_loop(tmp_path):
    client, db = start(tmp_path, LONG, delay_ms=50)
    try:
        client.did_open(URI, SAMPLE)
        msg_id, q = client.inline_completion_async(URI, 11, 4, invoked=True)
        time.sleep(0.6)  # generation is under way (50 ms a token)
        client.cancel(msg_id)
        with pytest.raises(LspError) as err:
            client.result(q, timeout=10)
        assert err.value.error["code"] == -32800  # RequestCancelled
        rows = wait_for_rows(db, "select payload from suggestion_events where type = 'suggestion_cancelled'")
        assert rows and json.loads(rows[0][0])["reason"] == "client"
        assert not wait_for_rows(db, "select 1 from suggestion_events where type = 'suggestion_generated'", timeout=1)
    finally:
        client.shutdown()


def test_result_for_an_outdated_version_is_dropped(tmp_path):
    client, db = start(tmp_path, LONG, delay_ms=20)
    try:
        client.did_open(URI, SAMPLE)
        _, q = client.inline_completion_async(URI, 11, 4, invoked=True)
        time.sleep(0.3)
        client.did_change(URI, 2, [change_at(0, 0, "#")])
        result = client.result(q, timeout=20)
        assert result["items"] == []
        rows = wait_for_rows(db, "select payload from suggestion_events where type = 'suggestion_cancelled'")
        assert [json.loads(r[0])["reason"] for r in rows] == ["stale"]
    finally:
        client.shutdown()


@pytest.mark.parametrize("edit", ["change", "close"])
def test_a_change_or_close_stops_the_generation_under_way(tmp_path, edit):
    """A generation for text that changed or closed ran to its last token on the one worker, other documents'
    requests waiting behind it, and was then dropped as stale."""
    client, db = start(tmp_path, LONG, delay_ms=50)
    try:
        client.did_open(URI, SAMPLE)
        client.did_open(URI + ".other.py", SAMPLE)
        _, q = client.inline_completion_async(URI, 11, 4, invoked=True)
        wait_for_rows(db, "select 1 from suggestion_events where type = 'suggestion_requested'")
        time.sleep(0.3)  # generation under way (50 ms a token, up to 64 tokens)
        if edit == "change":
            client.did_change(URI, 2, [change_at(0, 0, "#")])
        else:
            client.notify("textDocument/didClose", {"textDocument": {"uri": URI}})
        assert client.result(q, timeout=20)["items"] == []
        assert isinstance(client.inline_completion(URI + ".other.py", 11, 4, invoked=True), list)
        client.shutdown()
        rows = wait_for_rows(db, "select payload from suggestion_events where type = 'suggestion_cancelled'")
        assert json.loads(rows[0][0])["reason"] == "stale"
        generated = wait_for_rows(db, "select count(*) from suggestion_events where type = 'suggestion_generated'")
        assert generated[0][0] <= 1  # the other document's, not the stopped one's
    finally:
        client.shutdown()


def test_burst_of_keystrokes_answers_only_what_is_wanted(tmp_path):
    client, db = start(tmp_path, LONG, delay_ms=10)
    try:
        client.did_open(URI, SAMPLE + "\n")
        line = SAMPLE.count("\n")
        pending = []
        word = "result = count_words(line) + len(lines) * 2 + 1000"
        for i, ch in enumerate(word[:50]):
            client.did_change(URI, i + 2, [change_at(line, i, ch)])
            pending.append(client.inline_completion_async(URI, line, i + 1)[1])
        t0 = time.perf_counter()
        assert alive(client)  # other requests are answered while inference is busy
        assert time.perf_counter() - t0 < 2.0
        results = [client.result(q, timeout=30) for q in pending]
        answered = [r for r in results if r["items"]]
        assert len(answered) <= 2 and results[-1]["items"]
        client.shutdown()  # flushes telemetry
        generated = wait_for_rows(db, "select count(*) from suggestion_events where type = 'suggestion_generated'")[0][0]
        cancelled = wait_for_rows(db, "select count(*) from suggestion_events where type = 'suggestion_cancelled'")[0][0]
        assert generated <= 5 and cancelled >= 40
    finally:
        client.shutdown()


@pytest.mark.parametrize("breakage", ["missing", "corrupt"])
def test_missing_or_corrupt_model_gives_degraded_mode(tmp_path, breakage):
    model = tmp_path / "model"
    if breakage == "corrupt":
        shutil.copytree(model_under_test(), model)
        (model / "model.safetensors").write_bytes(b"\x00garbage" * 10)
    client, _ = start(tmp_path, model=model)
    try:
        message = client.wait_notification("window/showMessage", timeout=60)
        assert str(model) in message["params"]["message"]
        client.did_open(URI, SAMPLE)
        assert client.inline_completion(URI, 11, 4, invoked=True) == []
        status = client.request("tact/status")
        assert status["degraded"] and str(model) in status["reason"]
        with pytest.raises(queue.Empty):
            client.wait_notification("window/showMessage", timeout=1)  # said once
    finally:
        client.shutdown()


def settle(client: LspClient, settings: dict, until=lambda status: True) -> dict:
    """didChangeConfiguration, then tact/status once the load it starts is over (and ``until`` holds of it).

    The sent settings show in the status as soon as they are applied, but the load they start sets "loading" only
    once the loader thread runs: a status read in between is the previous load's, which ``until`` tells apart."""
    client.notify("workspace/didChangeConfiguration", {"settings": {"tact": settings}})
    time.sleep(0.5)  # for the load it starts to begin
    deadline = time.time() + 60
    # and until applied (the status runs with the sent settings) and loaded, however late the server is
    while (((status := client.request("tact/status", timeout=30))["loading"] or not until(status)
            or any(status["settings"].get(k) != v for k, v in settings.items())) and time.time() < deadline):
        time.sleep(0.2)
    return status


def test_a_model_path_that_failed_is_retried_and_every_new_failure_is_told(tmp_path):
    """A failed load of a path was cached for good: a model put there afterwards (as the reason advises) was never
    found until the path changed. And only the session's first failure was told: after a recovery, a model path
    that failed again left the editor and the log silent."""
    missing, other = tmp_path / "model", tmp_path / "other"
    log_file = tmp_path / "server.log"
    with open(log_file, "wb") as stderr:
        client = LspClient(server_command(None, tmp_path / "t.sqlite3"), stderr=stderr)
    try:
        client.initialize({"modelPath": str(missing)})
        assert str(missing) in client.wait_notification("window/showMessage", timeout=60)["params"]["message"]
        missing.symlink_to(model_under_test())
        status = settle(client, {"modelPath": str(missing)}, until=lambda s: not s["degraded"])  # degraded before
        assert status["ready"] and status["modelDir"] == str(missing)
        status = settle(client, {"modelPath": str(other)}, until=lambda s: s["modelDir"] == str(other))
        assert status["degraded"] and str(other) in status["reason"] and "tact.modelPath" in status["reason"]
        assert str(other) in client.wait_notification("window/showMessage", timeout=60)["params"]["message"]
        settle(client, {"modelPath": str(other), "maxNewTokens": 8})  # the same failure again: not told twice
        with pytest.raises(queue.Empty):
            client.wait_notification("window/showMessage", timeout=1)
    finally:
        client.shutdown()
    assert f"without a model: model directory {other}" in log_file.read_text()


SLOW_LOAD_SERVER = (  # the server, its model load held until the file named by TACT_TEST_LOAD_GATE exists (as a cold
    # disk or a busy machine makes a load last; 5 minutes at most)
    "import os, sys, time; from lsp_server.services.completion import CompletionService as C; load = C.load;"
    "gate = os.environ['TACT_TEST_LOAD_GATE']; until = time.monotonic() + 300;"
    "wait = lambda: [time.sleep(0.05) for _ in iter(lambda: os.path.exists(gate) or time.monotonic() > until, True)];"
    "C.load = lambda self, *a, **k: (wait(), load(self, *a, **k))[1];"
    "from lsp_server.cli import main; sys.exit(main(['serve', *sys.argv[1:]]))")


def test_edits_typed_while_the_model_loads_reach_telemetry_within_the_coalescing_window(tmp_path):
    """The timer that finalizes idle edits started only once the model and the gate had loaded: what the user
    typed meanwhile stayed pending, out of the database, for as long as the load took (a flaky test's cause)."""
    db, gate = tmp_path / "telemetry.sqlite3", tmp_path / "load-may-finish"
    client = LspClient([sys.executable, "-c", SLOW_LOAD_SERVER, "--model", str(model_under_test()), "--database", str(db)],
                       env=dict(os.environ, TACT_TEST_LOAD_GATE=str(gate)))
    client.initialize({})
    try:
        assert client.request("tact/status")["loading"]
        client.did_open("file:///project/early.py", "x = 1\n")
        client.did_change("file:///project/early.py", 2, [change_at(0, 0, "#")])
        assert wait_for_rows(db, "select 1 from edits where uri = 'file:///project/early.py'")  # the load is held
        assert client.request("tact/status")["loading"], "the model loaded first: the test proves nothing"
    finally:
        gate.touch()
        client.shutdown()


def test_a_session_shut_down_before_its_model_loaded_still_records_its_start(tmp_path):
    """The session's start (client, settings, models) was recorded only once the model and the gate had loaded: a
    session shut down sooner left its requests and edits under a session with no client (a flaky test's cause)."""
    db, gate = tmp_path / "telemetry.sqlite3", tmp_path / "load-may-finish"
    client = LspClient([sys.executable, "-c", SLOW_LOAD_SERVER, "--model", str(model_under_test()), "--database", str(db)],
                       env=dict(os.environ, TACT_TEST_LOAD_GATE=str(gate)))
    client.initialize({}, client_name="impatient-editor")
    try:
        client.did_open("file:///project/early.py", "x = 1\n")
        client.did_change("file:///project/early.py", 2, [change_at(0, 0, "#")])
        assert wait_for_rows(db, "select 1 from edits where uri = 'file:///project/early.py'")
        assert client.request("tact/status")["loading"], "the model loaded first: the test proves nothing"
        client.request("shutdown", None, 30)  # the store is closed: the session is as it will stay
    finally:
        gate.touch()  # (the process exits once the held load ends)
        client.shutdown()
    with sqlite3.connect(db) as conn:
        [(client_name, server_version, ended)] = conn.execute(
            "SELECT client_name, server_version, end_reason FROM sessions").fetchall()
    assert (client_name, ended) == ("impatient-editor", "shutdown") and server_version


def test_telemetry_turned_off_by_workspace_configuration_or_mid_session_records_nothing(tmp_path):
    """The store opened at initialize kept recording the user's code when workspace/configuration, or a later
    didChangeConfiguration, turned telemetry off. Turned on again, it records the documents open then from their
    text at that moment (their edits, suggestions and accepts had nothing to apply to there and were left out for
    the rest of the session); what is opened while it is off stays out."""
    db = tmp_path / "telemetry.sqlite3"
    log_file = tmp_path / "server.log"
    client = LspClient(server_command(model_under_test(), db) + ["--log-file", str(log_file)])
    client.configuration = {"tact": {"telemetry": False}}
    client.initialize({}, configuration=True)
    try:
        deadline = time.time() + 60  # `initialized` asks for the configuration: wait until its answer is applied
        while client.request("tact/status")["settings"]["telemetry"] and time.time() < deadline:
            time.sleep(0.1)
        client.did_open("file:///project/secret.py", "password = 'hunter2'\n")
        client.did_change("file:///project/secret.py", 2, [change_at(0, 0, "# ")])  # typed while off: not recorded
        assert client.request("tact/status")["database"] is None
        client.configuration = {"tact": {"telemetry": True}}
        settle(client, {"telemetry": True})
        assert client.request("tact/status")["database"] == str(db)
        client.did_open("file:///project/kept.py", "x = 1\n")
        # typed while telemetry is on, in a document opened while it was off: recorded on its text as it was then
        client.did_change("file:///project/secret.py", 3, [change_at(0, 0, "db_")])
        client.did_change("file:///project/kept.py", 2, [change_at(0, 0, "#")])
        # both edits expired; if not, the server's status and log say why (this once failed under load)
        assert wait_for_rows(db, "select 1 from edits where uri = 'file:///project/kept.py'"), \
            (client.request("tact/status"), log_file.read_text()[-4000:])
        assert wait_for_rows(db, "select 1 from edits where uri = 'file:///project/secret.py'")
        settle(client, {"telemetry": False})
        client.did_open("file:///project/later.py", "token = 'abc'\n")
        client.did_change("file:///project/kept.py", 3, [change_at(0, 0, "#")])  # typed while off again
        assert client.request("tact/status")["database"] is None
    finally:
        client.shutdown()
    rows = wait_for_rows(db, "select uri from documents where uri = 'file:///project/kept.py'")
    assert rows
    uris = {r[0] for r in wait_for_rows(db, "select uri from documents")}
    assert "file:///project/later.py" not in uris and "file:///project/secret.py" in uris
    with sqlite3.connect(db) as conn:
        opened = conn.execute("select text from documents where uri = 'file:///project/secret.py' and text is not null"
                              " order by id").fetchall()
        edits = conn.execute("select uri, inserted_text from edits order by id").fetchall()
    assert opened[0] == ("# password = 'hunter2'\n",)  # its text when telemetry came on: the edit before is not in
    assert sorted(edits) == [("file:///project/kept.py", "#"), ("file:///project/secret.py", "db_")]


def replayed(db: Path):
    """The database's one session and its replay script."""
    conn = open_readonly(db)
    try:
        (session,) = list_sessions(conn)
        return session, build_script(conn, session["id"])
    finally:
        conn.close()


class SlowConfigurationClient(LspClient):
    """An editor that answers workspace/configuration a second late, so documents open before its settings land."""

    def _answer_server_request(self, message: dict) -> None:
        if message["method"] == "workspace/configuration":
            time.sleep(1.0)
        super()._answer_server_request(message)


@pytest.mark.parametrize("configured", ["telemetry off", "another database"])
def test_documents_opened_before_the_configuration_answer_follow_its_telemetry_settings(tmp_path, configured):
    """Telemetry opened with the initialize settings, so a document opened before the workspace/configuration answer
    was recorded in the default database even where that answer turned telemetry off (Neovim sends its settings
    that way) or named another database."""
    first, second = tmp_path / "initialize.sqlite3", tmp_path / "configured.sqlite3"
    uri = "file:///project/early.py"
    client = SlowConfigurationClient(server_command(model_under_test(), None))
    client.configuration = {"tact": {"telemetry": False} if configured == "telemetry off"
                            else {"telemetryDatabase": str(second)}}
    client.initialize({"telemetryDatabase": str(first)}, configuration=True)
    try:
        client.did_open(uri, "password = 'hunter2'\n")
        client.did_change(uri, 2, [change_at(1, 0, "x = 1\n")])
        want = None if configured == "telemetry off" else str(second)
        deadline = time.time() + 60  # until the configuration's answer is applied
        while ((status := client.request("tact/status"))["database"] != want or status["loading"]
               or status["settings"]["telemetry"] != (want is not None)):
            assert time.time() < deadline, status
            time.sleep(0.1)
    finally:
        client.shutdown()
    assert not first.exists() or not wait_for_rows(first, "select uri from documents", timeout=1)
    if configured == "another database":
        _session, script = replayed(second)
        assert script.final_texts == {uri: "password = 'hunter2'\nx = 1\n"} and script.issues == []


def test_an_unusable_telemetry_database_is_told_and_named_in_the_status(tmp_path):
    """A telemetry database path the server cannot use (here a directory) left completion running without telemetry
    and said so only in the server's log, which an editor user rarely reads."""
    blocked = tmp_path / "a-directory.sqlite3"
    blocked.mkdir()
    client = LspClient(server_command(model_under_test(), None))
    client.initialize({"telemetryDatabase": str(blocked), "stopThreshold": 1.01})
    try:
        message = client.wait_notification("window/showMessage", timeout=60)["params"]
        assert message["type"] == 2 and str(blocked) in message["message"] and "tact.telemetryDatabase" in message["message"]
        status = client.request("tact/status")
        assert status["database"] is None and str(blocked) in status["telemetryReason"]
        client.did_open(URI, SAMPLE)
        # completion goes on without telemetry (at the end of the sample: at 11:4, before `return len(words)`, the
        # model's `for line in text:` is no longer shown)
        assert client.inline_completion(URI, SAMPLE.count("\n"), 0, invoked=True)
        good = tmp_path / "t.sqlite3"
        status = settle(client, {"telemetryDatabase": str(good), "stopThreshold": 1.01})
        assert status["database"] == str(good) and status["telemetryReason"] is None
        status = settle(client, {"telemetry": False})
        assert status["telemetryReason"] == "telemetry is off"
        with pytest.raises(queue.Empty):  # turning it off is the user's choice: nothing to tell
            client.wait_notification("window/showMessage", timeout=1)
    finally:
        client.shutdown()


def test_moving_the_telemetry_database_mid_session_leaves_both_replayable(tmp_path):
    """Moving tact.telemetryDatabase mid-session left the new database with edits to documents it never saw opened
    (nothing to replay them on), an edit still coalescing at the move landed in the new one on top of the text it
    had already changed, and the first database got a session end for a store the session had never written to."""
    first, second, unused = tmp_path / "first.sqlite3", tmp_path / "second.sqlite3", tmp_path / "unused.sqlite3"
    uri = "file:///project/moved.py"
    client = LspClient(server_command(model_under_test(), None))
    client.initialize({"telemetryDatabase": str(unused), "editCoalesceMs": 60_000, "stopThreshold": 1.01})
    try:
        settle(client, {"telemetryDatabase": str(first), "editCoalesceMs": 60_000})  # nothing was recorded in unused
        client.did_open(uri, "x = 1\n")
        client.did_change(uri, 2, [change_at(1, 0, "y")])  # still coalescing when the database moves
        settle(client, {"telemetryDatabase": str(second), "editCoalesceMs": 60_000})
        assert client.request("tact/status")["database"] == str(second)
        client.did_change(uri, 3, [change_at(1, 1, " = 2\n")])
    finally:
        client.shutdown()
    wait_for_rows(second, "select 1 from sessions where ended_at is not null")
    final = {}
    for db, want in ((first, "x = 1\ny"), (second, "x = 1\ny = 2\n")):
        session, script = replayed(db)
        assert script.final_texts == {uri: want} and script.verified == {uri: True} and script.issues == [], db
        final[db] = session
    assert final[first]["end_reason"] == "telemetry settings changed" and final[second]["end_reason"] == "shutdown"
    if unused.exists():  # the store opened at initialize: a session there started there (if `initialized` ended
        with sqlite3.connect(unused) as conn:  # before the move), never one made only of an end
            rows = conn.execute("select client_name, end_reason from sessions").fetchall()
        assert rows in ([], [("tact-client", "telemetry settings changed")]), rows


def test_telemetry_turned_off_and_on_again_leaves_the_database_replayable(tmp_path):
    """Turned off, recording left its documents open in the database: a document closed while it was off and opened
    again once it was back on read as opened twice without a close, and the session did not replay."""
    db = tmp_path / "t.sqlite3"
    uri = "file:///project/toggled.py"
    client = LspClient(server_command(model_under_test(), None))
    client.initialize({"telemetryDatabase": str(db), "stopThreshold": 1.01})
    try:
        settle(client, {"telemetryDatabase": str(db)})
        client.did_open(uri, "a = 1\n")
        client.did_change(uri, 2, [change_at(0, 0, "# one\n")])
        settle(client, {"telemetryDatabase": str(db), "telemetry": False})
        client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
        settle(client, {"telemetryDatabase": str(db), "telemetry": True})
        client.did_open(uri, "b = 2\n")
        client.did_change(uri, 2, [change_at(0, 0, "# two\n")])
    finally:
        client.shutdown()
    wait_for_rows(db, "select 1 from sessions where ended_at is not null")
    with sqlite3.connect(db) as conn:
        kinds = [k for (k,) in conn.execute("select kind from documents where uri = ? order by seq", (uri,))]
    assert kinds[:3] == ["open", "snapshot", "close"] and kinds[3] == "open", kinds
    _, script = replayed(db)
    assert script.issues == [] and script.verified == {uri: True} and script.final_texts == {uri: "# two\nb = 2\n"}


def test_a_request_after_shutdown_gets_an_error_not_silence(tmp_path):
    """pygls dropped requests between shutdown and exit; LSP says they should error, so the client never waits."""
    client, _ = start(tmp_path)
    client.request("shutdown", None, timeout=10)
    with pytest.raises(LspError) as err:
        client.request("tact/status", timeout=10)
    assert err.value.error["code"] == -32600
    client.notify("exit")
    assert client.proc.wait(timeout=10) == 0


def test_running_server_has_not_loaded_torch(tmp_path):
    """The real `tact serve` process, after answering a completion, has no torch library mapped."""
    client, _ = start(tmp_path)
    try:
        client.did_open(URI, SAMPLE)
        client.inline_completion(URI, 11, 4, invoked=True)
        maps = Path(f"/proc/{client.proc.pid}/maps").read_text()
        assert "onnxruntime" in maps  # the check can see what the server loaded
        assert "libtorch" not in maps and "/torch/" not in maps and "/transformers/" not in maps
    finally:
        client.shutdown()


def test_serving_imports_neither_torch_nor_transformers():
    code = ("import sys; from lsp_server.server import create_server; from lsp_server.services.completion import CompletionService;"
            f"s = CompletionService(); st = s.load({str(model_under_test())!r}); assert st.ready, st.reason;"
            "bad = [m for m in ('torch', 'transformers') if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def test_stdout_carries_only_the_protocol(tmp_path):
    """Everything the server writes to stdout must be LSP frames (logging goes to stderr)."""
    db = tmp_path / "t.sqlite3"
    msgs = []
    for i, (method, params) in enumerate([("initialize", {"processId": None, "capabilities": {}}), ("shutdown", None)]):
        body = json.dumps({"jsonrpc": "2.0", "id": i + 1, "method": method, "params": params}).encode()
        msgs.append(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    body = json.dumps({"jsonrpc": "2.0", "method": "exit"}).encode()
    msgs.append(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    out = subprocess.run(server_command(model_under_test(), db), input=b"".join(msgs), capture_output=True, timeout=60)
    data, frames = out.stdout, []
    while data:
        assert data.startswith(b"Content-Length: "), data[:80]
        header, rest = data.split(b"\r\n\r\n", 1)
        n = int(header.split(b"\r\n")[0].split(b":")[1])
        frames.append(json.loads(rest[:n]))
        data = rest[n:]
    assert out.returncode == 0, out.stderr.decode()[-2000:]
    assert [m["id"] for m in frames if "result" in m] == [1, 2]  # initialize and shutdown answered, nothing else


_DIES_MID_MESSAGE = r"""
import sys
inp = sys.stdin.buffer
length = None
while True:
    line = inp.readline().strip()
    if not line:
        break
    if line.lower().startswith(b"content-length:"):
        length = int(line.split(b":")[1])
inp.read(length)
sys.stdout.buffer.write(b'Content-Length: 200\r\n\r\n{"jsonrpc": "2.0", "id": 1, "res')
sys.stdout.buffer.flush()
sys.exit(3)
"""


def test_the_client_fails_pending_requests_when_the_server_dies_mid_message():
    """The client's reader died on the cut-off body without failing what was pending: callers waited out their
    timeout and saw no reason."""
    client = LspClient([sys.executable, "-c", _DIES_MID_MESSAGE])
    t0 = time.perf_counter()
    with pytest.raises(LspError, match="server exited"):
        client.request("tact/status", timeout=120)
    assert time.perf_counter() - t0 < 60  # at once (a Python start), not the request's timeout
    client.proc.wait(timeout=10)


def test_an_infinite_setting_is_written_as_null_and_the_answer_reaches_a_strict_client(tmp_path):
    """A ``stopThreshold`` of 1e400 (Python's JSON, and so a client sending ``Infinity``, reads it as infinity; the
    settings keep it) was written back as ``Infinity`` in ``tact/status``, which JSON.parse refuses: a strict client
    (as the test client is now) lost the whole answer and waited."""
    client, _ = start(tmp_path, {"stopThreshold": float("inf"), "acceptanceGate": False})
    try:
        status = client.request("tact/status", timeout=10)
        assert status["settings"]["stopThreshold"] is None
        assert status["settings"]["maxNewTokens"] > 0  # the rest of the answer as it was
        client.did_open(URI, SAMPLE)
        assert isinstance(client.inline_completion(URI, 3, 4, invoked=True), list)
    finally:
        client.shutdown()


def test_ctrl_c_ends_a_stdio_server_with_its_session_recorded(tmp_path):
    """Run by hand in a terminal, Ctrl-C was taken by pygls, whose shutdown then waited on the thread blocked reading
    stdin: the server ran on; a second Ctrl-C aborted the interpreter (a fatal error, holding stdin's lock)."""
    import signal

    db = tmp_path / "telemetry.sqlite3"
    log_file = tmp_path / "stderr.txt"
    with open(log_file, "wb") as stderr:
        client = LspClient(server_command(model_under_test(), db), stderr=stderr)
    client.initialize({"stopThreshold": 1.01, "acceptanceGate": False})
    client.did_open(URI, SAMPLE)
    assert isinstance(client.inline_completion(URI, 3, 4, invoked=True), list)
    client.proc.send_signal(signal.SIGINT)
    assert client.proc.wait(timeout=30) == 130
    said = log_file.read_text()
    assert "tact serve: interrupted" in said and "Traceback" not in said and "Fatal" not in said
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT end_reason FROM sessions").fetchall() == [("interrupted",)]


@pytest.mark.parametrize("how", ["exit", "close"])
def test_a_client_that_leaves_without_shutdown_ends_the_session_in_telemetry(tmp_path, how):
    """An editor that crashed or was killed (its pipe closed), or sent exit without shutdown: the session never ended
    in telemetry, its last edit and its documents' closing text lost; and exit without shutdown gave status 0, where
    LSP says 1."""
    db = tmp_path / "telemetry.sqlite3"
    client = LspClient(server_command(model_under_test(), db))
    client.initialize({"stopThreshold": 1.01, "acceptanceGate": False})
    client.did_open(URI, SAMPLE)
    client.did_change(URI, 2, [change_at(0, 0, "# typed\n")])
    assert alive(client)
    if how == "exit":
        client.notify("exit")
    else:
        client.proc.stdin.close()
    assert client.proc.wait(timeout=30) == (1 if how == "exit" else 0)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT end_reason FROM sessions").fetchall() == [("client left",)]
        assert conn.execute("SELECT COUNT(*) FROM edits").fetchone() == (1,)
        assert conn.execute("SELECT kind FROM documents ORDER BY ts, id").fetchall() == [("open",), ("snapshot",)]


def test_a_request_before_initialize_is_answered_server_not_initialized(tmp_path):
    """LSP: before initialize a request gets ServerNotInitialized (-32002). One waited 30 s for pygls's client
    capabilities, then failed with an AttributeError."""
    client = LspClient(server_command(model_under_test(), tmp_path / "t.sqlite3"))
    try:
        t0 = time.perf_counter()
        with pytest.raises(LspError) as err:
            client.request("textDocument/inlineCompletion", {"textDocument": {"uri": URI}, "position": {
                "line": 0, "character": 0}, "context": {"triggerKind": 1}}, timeout=20)
        assert err.value.error["code"] == -32002 and time.perf_counter() - t0 < 10
        client.initialize({"stopThreshold": 1.01})
        client.did_open(URI, SAMPLE)
        assert alive(client)
    finally:
        client.shutdown()


def test_a_second_initialize_is_refused_and_the_session_goes_on(tmp_path):
    client, _ = start(tmp_path)
    try:
        with pytest.raises(LspError) as err:
            client.request("initialize", {"processId": None, "capabilities": {}}, timeout=10)
        assert err.value.error["code"] == -32600
        assert alive(client)
    finally:
        client.shutdown()
