"""Seeded fuzzing of the real server over stdio: random, malformed and hostile traffic on every method it
serves (wrong types, impossible positions and ranges, stale and absurd versions, binary and huge text,
unknown ids, unknown commands, junk settings). The server must stay up, answer every request (a result or
an error, never silence), keep its telemetry, and serve a well-formed request afterwards as usual."""

from __future__ import annotations

import json
import os
import queue
import random
import sqlite3
import time

import pytest

from telemetry.lsp_client import LspClient, LspError
from tests.lsp_support import SAMPLE, model_under_test, server_command

pytestmark = pytest.mark.slow

URIS = ["file:///p/a.py", "file:///p/b.py", "untitled:Untitled-1", "file:///p/%E2%9C%93.py", "file:///nope.py", "",
        "http://x", "file:///p/c.txt"]
SETTINGS = ["decodingPolicy", "maxNewTokens", "stopThreshold", "stopInsideThreshold", "stopRepeats", "exitThreshold", "enable",
            "acceptanceGate", "nextEditThreshold", "multiline", "debounceMs", "acceptanceLambda", "nextEditPredictor",
            "telemetryRetentionDays"]


class Traffic:
    """One random message at a time: (kind, method, params) with kind raw, notify or request."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.versions: dict[str, int] = {}

    def junk(self):
        return self.rng.choice([None, 0, -1, 2**31, 2**63, -2**40, 1.5, "", "x", "é", [], {}, [1, 2], {"a": 1}, True,
                                "\x00\x01", "a" * 5000])

    def position(self):
        """Mostly well-typed (so the request reaches the server's own code), often impossible."""
        r = self.rng
        if r.random() < 0.75:
            return {"line": r.choice([0, 3, 7, r.randint(-3, 400), 2**31 - 1]), "character": r.choice([0, 4, r.randint(-3, 300)])}
        return r.choice([{"line": 0}, self.junk(), {"line": "1", "character": "2"}])

    def document(self):
        r = self.rng
        uri = r.choice(URIS[:3]) if r.random() < 0.7 else r.choice(URIS)
        if r.random() < 0.75:
            return {"uri": uri, "version": r.choice([self.versions.get(uri, 1), self.versions.get(uri, 1) - 1, -5, 10**9])}
        return r.choice([{"uri": uri}, {"uri": uri, "version": r.choice([None, "v"])}, self.junk()])

    def text(self):
        r = self.rng
        return r.choice([SAMPLE, "", "\x00" * 100, "é😀中\n" * 50, "x" * 300_000, "def f(:\n\t\treturn )))\n",
                         SAMPLE[: r.randint(0, len(SAMPLE))], bytes(r.randrange(256) for _ in range(200)).decode("latin-1")])

    def message(self):
        r, j = self.rng, self.junk
        k = r.randrange(20)
        if k == 0:
            return "raw", None, r.choice([b"{", b"[]", b"null", b'{"jsonrpc":"2.0"}', b'{"jsonrpc":"2.0","id":1}', b"\xff\xfe",
                                          json.dumps({"jsonrpc": "2.0", "id": "s", "method": 5}).encode()])
        if k == 1:
            uri = r.choice(URIS[:3]) if r.random() < 0.7 else r.choice(URIS)
            self.versions[uri] = r.randint(-1, 5)
            return "notify", "textDocument/didOpen", r.choice([
                {"textDocument": {"uri": uri, "languageId": r.choice(["python", "rust", None]), "version": self.versions[uri],
                                  "text": self.text()}}, {"textDocument": j()}])
        if k in (2, 3):
            uri = r.choice(URIS[:3]) if r.random() < 0.7 else r.choice(URIS)
            version = self.versions[uri] = self.versions.get(uri, 0) + r.choice([1, 1, 1, 0, -1, 100])
            rng_ = r.choice([{"start": self.position(), "end": self.position()}, j(), {"start": self.position()}])
            changes = r.choice([[{"range": rng_, "text": self.text()[: r.randint(0, 50)]}], [{"text": self.text()}], [], j(),
                                [{"range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}}, "text": "x"}] * 30])
            return "notify", "textDocument/didChange", {"textDocument": {"uri": uri, "version": version}, "contentChanges": changes}
        if k == 4:
            return "notify", "textDocument/didClose", r.choice([{"textDocument": {"uri": r.choice(URIS)}}, j()])
        if k in (5, 6, 7):
            if r.random() < 0.15:
                return "request", "textDocument/inlineCompletion", j()
            return "request", "textDocument/inlineCompletion", {
                "textDocument": self.document(), "position": self.position(),
                "context": r.choice([{"triggerKind": 1}, {"triggerKind": 2}, {"triggerKind": 1}, {"triggerKind": 99}, j()])}
        if k == 8:
            return "request", "textDocument/completion", r.choice([{"textDocument": self.document(), "position": self.position()}, j()])
        if k == 9:
            return "request", "tact/nextEdit", r.choice([{"textDocument": self.document(), "position": self.position()}, j()])
        if k == 10:
            return "notify", r.choice(["tact/didShowCompletion", "tact/didShowNextEdit"]), r.choice([{"id": j()}, j()])
        if k == 11:
            return "notify", r.choice(["tact/didRejectCompletion", "tact/didRejectNextEdit"]), r.choice([
                {"id": j(), "reason": j()}, {"id": "x", "reason": "dismissed"}, j()])
        if k == 12:
            return "notify", "tact/didPartiallyAcceptCompletion", r.choice([{"id": j(), "acceptedLength": j()}, j()])
        if k == 13:
            return "request", "workspace/executeCommand", r.choice([
                {"command": r.choice(["tact.acceptSuggestion", "tact.acceptNextEdit", "tact.nope", j()]),
                 "arguments": r.choice([[j()], j(), [{"id": j()}], [None, None]])}, j()])
        if k == 14:
            return "notify", "workspace/didChangeConfiguration", r.choice([
                {"settings": {"tact": {r.choice(SETTINGS): j()}}}, {"settings": j()}, j()])
        if k == 15:
            return "notify", "$/cancelRequest", r.choice([{"id": r.randint(-5, 1000)}, {"id": j()}, j()])
        if k == 16:
            return "request", "tact/status", r.choice([None, j()])
        if k == 17:
            return "notify", "tact/replayClock", r.choice([{"ts": j()}, j()])
        if k == 18:
            return "request", r.choice(["textDocument/hover", "tact/unknown"]), j()
        return "notify", r.choice(["initialized", "$/setTrace", "$/progress"]), j()


NOTEBOOKS = ["file:///p/nb.ipynb", "file:///p/other.ipynb", "untitled:Untitled-2.ipynb"]
CELLS = [f"vscode-notebook-cell:/p/nb.ipynb#W{n}sZmlsZQ%3D%3D" for n in range(6)] + ["file:///p/a.py"]


class NotebookTraffic(Traffic):
    """Traffic with LSP notebook sync mixed in: notebooks opened, restructured and closed with cells listed twice,
    shared between notebooks, never opened or shaped wrong; completions and cross-cell next edits asked in cells."""

    def __init__(self, seed: int):
        super().__init__(seed)
        self.cell_versions: dict[str, int] = {}

    def cell(self):
        r = self.rng
        uri = r.choice(CELLS)
        self.cell_versions[uri] = self.cell_versions.get(uri, 0) + r.choice([1, 1, 0, -1])
        return uri

    def cell_document(self):
        r = self.rng
        if r.random() < 0.85:
            return {"uri": self.cell(), "languageId": r.choice(["python", "python", "markdown", "sql"]),
                    "version": r.choice([1, r.randint(-2, 9)]), "text": self.text()[: r.choice([40, 400, 10**6])]}
        return self.junk()

    def cells(self):
        r = self.rng
        if r.random() < 0.85:
            return [{"kind": r.choice([2, 2, 1, 7]), "document": self.cell(), **({"metadata": self.junk()} if r.random() < 0.2 else {})}
                    for _ in range(r.randint(0, 6))]
        return self.junk()

    def message(self):
        r, j = self.rng, self.junk
        if r.random() < 0.5:
            return super().message()
        notebook = {"uri": r.choice(NOTEBOOKS), "version": r.choice([1, 2, r.randint(-3, 50)])}
        k = r.randrange(7)
        if k == 0:
            return "notify", "notebookDocument/didOpen", r.choice([
                {"notebookDocument": {**notebook, "notebookType": r.choice(["jupyter-notebook", "interactive", ""]),
                                      "cells": self.cells()},
                 "cellTextDocuments": [self.cell_document() for _ in range(r.randint(0, 6))]},
                {"notebookDocument": j(), "cellTextDocuments": j()}, j()])
        if k in (1, 2):
            cells = {}
            if r.random() < 0.6:
                cells["structure"] = r.choice([
                    {"array": {"start": r.choice([0, 1, r.randint(-2, 9), 2**31]), "deleteCount": r.choice([0, 1, r.randint(-2, 9)]),
                               **({"cells": self.cells()} if r.random() < 0.8 else {})},
                     "didOpen": [self.cell_document() for _ in range(r.randint(0, 3))],
                     "didClose": [{"uri": self.cell()} for _ in range(r.randint(0, 2))]},
                    {"array": j()}, j()])
            if r.random() < 0.7:
                cells["textContent"] = r.choice([
                    [{"document": {"uri": self.cell(), "version": r.choice([self.cell_versions.get(CELLS[0], 1), r.randint(-2, 20)])},
                      "changes": r.choice([[{"text": self.text()[:200]}],
                                           [{"range": {"start": self.position(), "end": self.position()}, "text": "x"}], j()])}
                     for _ in range(r.randint(1, 3))], j()])
            if r.random() < 0.3:
                cells["data"] = r.choice([[{"kind": 2, "document": self.cell()}], j()])
            change = r.choice([{"cells": cells}, {"cells": cells, "metadata": j()}, {"metadata": {}}, j()])
            return "notify", "notebookDocument/didChange", r.choice([{"notebookDocument": notebook, "change": change},
                                                                     {"notebookDocument": j(), "change": change}])
        if k == 3:
            return "notify", "notebookDocument/didClose", r.choice([
                {"notebookDocument": {"uri": notebook["uri"]}, "cellTextDocuments": [{"uri": self.cell()} for _ in range(r.randint(0, 4))]},
                {"notebookDocument": j(), "cellTextDocuments": j()}])
        if k == 4:
            return "notify", "notebookDocument/didSave", r.choice([{"notebookDocument": {"uri": notebook["uri"]}}, j()])
        if k == 5:
            return "request", "textDocument/inlineCompletion", {
                "textDocument": {"uri": r.choice(CELLS), "version": r.choice([self.cell_versions.get(r.choice(CELLS), 1), 1])},
                "position": self.position(), "context": {"triggerKind": r.choice([1, 2])}}
        return "request", "tact/nextEdit", {
            "textDocument": {"uri": r.choice(CELLS), "version": r.choice([self.cell_versions.get(r.choice(CELLS), 1), 1, -1])},
            "position": self.position(), "otherCells": r.choice([True, True, False, j()])}


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_fuzzed_traffic_gets_answers_and_leaves_the_server_serving(tmp_path, seed):
    _fuzz(tmp_path, Traffic(seed))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_fuzzed_notebook_traffic_gets_answers_and_leaves_the_server_serving(tmp_path, seed):
    _fuzz(tmp_path, NotebookTraffic(seed))


def _fuzz(tmp_path, traffic: Traffic) -> None:
    db = tmp_path / "telemetry.sqlite3"
    log_file = tmp_path / "server.log"
    with open(log_file, "wb") as stderr:
        client = LspClient(server_command(model_under_test(), db), env=dict(os.environ), stderr=stderr)
    try:
        client.initialize({"stopThreshold": 0.9})
        pending = []
        for _ in range(150):
            for _ in range(traffic.rng.randint(1, 5)):
                kind, method, params = traffic.message()
                if kind == "raw":
                    client.send_raw(params)
                elif kind == "notify":
                    client.notify(method, params)
                else:
                    pending.append((method, params, client.request_async(method, params)[1]))
        unanswered = []
        deadline = time.monotonic() + 60  # all answers, together
        for method, params, q in pending:
            try:
                client.result(q, timeout=max(0.1, deadline - time.monotonic()))
            except LspError:
                pass  # an error is an answer
            except queue.Empty:
                unanswered.append((method, str(params)[:80]))
        assert pending
        assert not unanswered, f"{len(unanswered)} of {len(pending)} requests got no answer: {unanswered[:5]}"
        assert client.proc.poll() is None
        status = client.request("tact/status", timeout=30)
        assert not status["degraded"], status
        # Whatever the junk did to the settings and the documents, a fresh document is served as usual.
        client.notify("workspace/didChangeConfiguration", {"settings": {"tact": {"enable": True, "acceptanceGate": False,
                                                                                  "stopThreshold": 1.01, "decodingPolicy": "full"}}})
        uri = "file:///p/after_fuzz.py"
        client.did_open(uri, "import os\n\n\ndef main():\n    path = os.path.")
        items = client.inline_completion(uri, 4, len("    path = os.path."), invoked=True)
        assert items and items[0]["insertText"]
    finally:
        assert client.shutdown() == 0
    with sqlite3.connect(db) as con:  # telemetry kept the session and the requests through it all
        assert con.execute("select count(*) from sessions where ended_at is not null").fetchone()[0] == 1
        assert con.execute("select count(*) from suggestions").fetchone()[0] >= 1
    tracebacks = [block for block in log_file.read_text(errors="replace").split("Traceback (most recent call last):")[1:]]
    # Each bad message is one line of the log that says what was wrong, not a traceback (pygls wrote two of dozens
    # of lines for each); a traceback left is a failure of the server's own code.
    log_text = log_file.read_text(errors="replace")
    assert "Traceback" not in log_text, log_text[log_text.index("Traceback") - 300:][:3000]
    assert "dropped: " in log_text or "answered Invalid params: " in log_text
