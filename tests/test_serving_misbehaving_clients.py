"""The server under clients that misbehave, a tenth look: each test failed on the code before."""

from __future__ import annotations

import json
import random
import subprocess
import threading
import time

from lsp_server.config import Settings
from lsp_server.services.documents import BATCH_CHANGES, DocumentStore
from lsp_server.services.gate import AcceptanceGate
from lsp_server.services.positions import LineIndex, Position, Range
from tests.lsp_support import server_command
from tests.test_acceptance_gate import URI, FakeService, _pipeline


def _frame(obj, length_delta: int = 0) -> bytes:
    body = json.dumps(obj, ensure_ascii=False).encode()
    return b"Content-Length: %d\r\n\r\n" % (len(body) + length_delta) + body


def _answers(data: bytes) -> list[dict]:
    messages = []
    while data:
        header, rest = data.split(b"\r\n\r\n", 1)
        n = int(header.split(b"\r\n")[0].split(b":")[1])
        messages.append(json.loads(rest[:n]))
        data = rest[n:]
    return messages


def test_a_message_framed_with_its_length_in_characters_leaves_the_session_answering(tmp_path):
    """pygls read every header after such a message glued to the body before it: nothing more was answered."""
    change = {"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {
        "textDocument": {"uri": "file:///a.py", "version": 2},
        "contentChanges": [{"range": {"start": {"line": 0, "character": 5}, "end": {"line": 0, "character": 5}},
                            "text": "é"}]}}
    body = json.dumps(change, ensure_ascii=False)
    by_characters = b"Content-Length: %d\r\n\r\n" % len(body) + body.encode()
    stream = b"".join([
        _frame({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"processId": None, "capabilities": {}}}),
        _frame({"jsonrpc": "2.0", "method": "initialized", "params": {}}),
        _frame({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {
            "uri": "file:///a.py", "languageId": "python", "version": 1, "text": "x = 1\n"}}}),
        by_characters,
        b"{not json at all}\r\n",  # no frame at all: dropped up to the next header
        _frame({"jsonrpc": "2.0", "id": 2, "method": "tact/status", "params": None}),
        b"content-length: 40\r\n\r\n" + b'{"jsonrpc": "2.0", "id": 3, "method": "x"',  # lower case, one byte short
        _frame({"jsonrpc": "2.0", "id": 4, "method": "shutdown"}),
        _frame({"jsonrpc": "2.0", "method": "exit"})])
    out = subprocess.run(server_command(None, tmp_path / "t.sqlite3"), input=stream, capture_output=True, timeout=120)
    answers = _answers(out.stdout)
    ids = [m.get("id") for m in answers if "result" in m or "error" in m]
    assert 2 in ids and 4 in ids, (answers, out.stderr.decode()[-2000:])
    assert any(m.get("id") is None and m.get("error", {}).get("code") == -32700 for m in answers), answers
    assert b"Traceback" not in out.stderr and out.returncode == 0, out.stderr.decode()[-2000:]


def test_requests_of_a_client_that_never_sends_initialized_do_not_wait_for_the_gate():
    """The server's gate starts at `initialized`: without it each request waited 30 s, one after another."""
    gate = AcceptanceGate(will_start=True, start_due=False)
    pipe, _ = _pipeline(gate, FakeService())
    t0 = time.monotonic()
    pending = pipe.request(URI, Position(3, 12), "automatic", Settings())
    assert pending.future.result(timeout=10) is not None and time.monotonic() - t0 < 5
    gate.start_due = True  # `initialized` came: from here requests wait for the start
    pending = pipe.request(URI, Position(3, 12), "automatic", Settings())
    time.sleep(0.3)
    assert not pending.future.done()
    threading.Thread(target=gate.start, args=(Settings(), None)).start()
    assert pending.future.result(timeout=10) is not None
    pipe.scheduler.shutdown()


def _sequential(text: str, changes) -> str:
    index = LineIndex(text)
    for rng, new in changes:
        s, e = index.offset_at(rng.start), index.offset_at(rng.end)
        text = text[:s] + new + text[e:]
        index = LineIndex(text)
    return text


def _one_by_one(text: str, changes) -> tuple[str, list]:
    """The text and AppliedEdits of ``changes`` sent one message each."""
    store = DocumentStore()
    store.open("file:///b.py", "python", 1, text)
    applied = []
    for change in changes:
        applied += store.change("file:///b.py", store.get("file:///b.py").version + 1, [change], now=0.0).applied
    return store.get("file:///b.py").text, applied


def test_many_changes_in_one_message_apply_as_one_by_one():
    """A replace-all in one didChange (VS Code sends the places bottom up) rebuilt the whole text once per place."""
    rng_ = random.Random(3)
    for trial in range(30):
        lines = [f"value_{i} = compute({i})  # é😀\n" for i in range(rng_.randint(5, 80))]
        text = "".join(lines)
        places = sorted({(rng_.randrange(len(lines)), rng_.randrange(0, 12)) for _ in range(BATCH_CHANGES + 10)},
                        reverse=True)
        changes = []
        for line, ch in places:  # bottom up, each in the text the ones before it left
            width = rng_.choice([0, 1, 3])
            end = Position(line, ch + width)
            changes.append((Range(Position(line, ch), end), rng_.choice(["", "v", "val\n", "x😀"])))
        store = DocumentStore()
        store.open("file:///a.py", "python", 1, text)
        result = store.change("file:///a.py", 2, changes, now=0.0)
        assert store.get("file:///a.py").text == _sequential(text, changes)
        assert result.applied == _one_by_one(text, changes)[1], trial


def test_a_server_whose_output_the_client_stopped_reading_ends(tmp_path):
    """It went on computing answers nobody read, each failing with tracebacks in the log."""
    log_file = tmp_path / "server.log"
    proc = subprocess.Popen(server_command(None, tmp_path / "t.sqlite3") + ["--log-file", str(log_file)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        proc.stdin.write(_frame({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                                 "params": {"processId": None, "capabilities": {}}}))
        proc.stdin.flush()
        proc.stdout.readline()  # the answer has begun: the server is up
        proc.stdout.close()
        for i in range(2, 6):  # the requests whose answers fail, then one more for the loop to end on
            time.sleep(0.3)
            try:
                proc.stdin.write(_frame({"jsonrpc": "2.0", "id": i, "method": "tact/status", "params": None}))
                proc.stdin.flush()
            except BrokenPipeError:
                break
        assert proc.wait(timeout=30) is not None
    finally:
        proc.kill()
    text = log_file.read_text()
    assert "stopped reading the server's output" in text and "Traceback" not in text, text[-2000:]


def test_moving_telemetry_does_not_hold_the_event_loop_while_the_old_store_closes(tmp_path, monkeypatch):
    """The old store closed on the event loop, waiting up to 5 s for a writer held by another's lock: every request
    waited with it."""
    import dataclasses

    from lsp_server.server import create_server
    from telemetry.store import TelemetryStore

    server = create_server(database=None)
    server.settings = dataclasses.replace(Settings(), telemetry_database=str(tmp_path / "a.sqlite3"))
    assert server.open_telemetry()
    closed = threading.Event()
    real_close = TelemetryStore.close

    def slow_close(self, *args, **kwargs):
        time.sleep(2)
        real_close(self, *args, **kwargs)
        closed.set()

    monkeypatch.setattr(TelemetryStore, "close", slow_close)
    server.settings = dataclasses.replace(server.settings, telemetry_database=str(tmp_path / "b.sqlite3"))
    t0 = time.monotonic()
    assert server.open_telemetry()
    assert time.monotonic() - t0 < 1.5
    assert closed.wait(10)  # and the old store is closed all the same
    server.recorder.close()


def _top_down(rng_: random.Random, text: str, count: int) -> list:
    """``count`` changes at places of ``text`` in document order, each given in the text the ones before it left
    (Helix's order for an edit at many cursors): insertions, deletions, replacements, some touching the one before,
    some writing line breaks, a few a CR (applied one by one)."""
    # (an offset inside a CRLF is no position)
    places = sorted({k for _ in range(2 * count) if text[(k := rng_.randrange(len(text) + 1)) - 1:k + 1] != "\r\n"})
    spans = []
    last = 0
    for a, b in zip(places[::2], places[1::2]):
        a = max(a, last)
        b = min(b, a + rng_.choice([0, 0, 1, 3, 12]))
        b -= text[b - 1:b + 1] == "\r\n"
        spans.append((a, b))
        last = b
    changes, current, shift = [], text, 0
    for a, b in spans:
        index = LineIndex(current)
        new = rng_.choice(["", "v", "name_2", "x😀", "é\n    ", "\n", "line\nline", "a\r\nb" if rng_.random() < 0.05 else "w"])
        lo, hi = a + shift, b + shift
        changes.append((Range(index.position_at(lo), index.position_at(hi)), new))
        current = current[:lo] + new + current[hi:]
        shift += len(new) - (b - a)
    return changes


def test_many_changes_in_document_order_apply_as_one_by_one(monkeypatch):
    """Helix sends an edit at many cursors as one didChange whose changes run top down, each in the text the ones
    before it left: each rebuilt the whole text (a change at thousands of places in a large file held the event loop
    for seconds). They are applied in one pass, with the same text and AppliedEdits as one by one."""
    from lsp_server.services import documents

    rng_ = random.Random(5)
    batched = 0
    for trial in range(120):
        pieces = [rng_.choice(["value = compute(x)", "é😀", " ", "\n", "\r\n", "\t", "# note", "\r"])
                  for _ in range(rng_.randint(20, 200))]
        text = "".join(pieces)
        changes = _top_down(rng_, text, BATCH_CHANGES + rng_.randint(0, 30))
        if len(changes) < BATCH_CHANGES:
            continue
        expected_text, expected = _one_by_one(text, changes)
        calls = []
        real_apply = documents._apply
        monkeypatch.setattr(documents, "_apply", lambda *a: calls.append(1) or real_apply(*a))
        store = DocumentStore()
        store.open("file:///a.py", "python", 1, text)
        result = store.change("file:///a.py", 2, changes, now=0.0)
        monkeypatch.setattr(documents, "_apply", real_apply)
        assert store.get("file:///a.py").text == expected_text, trial
        assert result.applied == expected, trial
        batched += not calls
    assert batched > 50, batched  # most in one pass (a CR written or met sends the others one by one)
