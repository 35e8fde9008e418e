"""A small synchronous LSP client over a server process's stdio.

Used to drive a real `tact serve` as an editor would: by the demo, the serving benchmark, replay
and simulated programmers, and by tests that must send bytes no well-behaved client would.
"""

from __future__ import annotations

import itertools
import json
import queue
import subprocess
import threading
import time
from typing import Any


SERVER_EXITED = -32099  # the code of the error a request gets when the server is gone (a JSON-RPC server error code)
NOTEBOOK_DID_OPEN = "notebookDocument/didOpen"
NOTEBOOK_DID_CHANGE = "notebookDocument/didChange"
NOTEBOOK_DID_CLOSE = "notebookDocument/didClose"
CODE_CELL = 2  # LSP's NotebookCellKind.Code: only code cells are synced to the server


class LspError(Exception):
    def __init__(self, error: dict):
        code, message = error.get("code"), error.get("message")
        # the server's own error codes say something; this client's (no answer, the server gone) do not
        super().__init__(message if code in (None, SERVER_EXITED) else f"{code}: {message}")
        self.error = error


class LspTimeout(LspError, queue.Empty):
    """No answer in time: an LspError that says which request, and the queue.Empty of a wait that got nothing."""


def _put_once(q: queue.Queue, message: dict) -> None:
    """The answer, unless the request has one already (the server's end can fail it twice)."""
    try:
        q.put_nowait(message)
    except queue.Full:
        pass


def _refuse_constant(name: str):
    """What JSON.parse does with ``NaN`` or ``Infinity``, which Python's reader takes: refuse the message."""
    raise ValueError(f"{name} is not JSON")


class LspClient:
    def __init__(self, command: list[str], env: dict | None = None, stderr=None):
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=stderr if stderr is not None else subprocess.DEVNULL, env=env)
        self._ids = itertools.count(1)
        self._pending: dict[int, queue.Queue] = {}
        self._lock = threading.Lock()
        self.notifications: queue.Queue = queue.Queue()
        self.server_requests: list[dict] = []
        self.configuration: dict = {}
        self._gone = False  # the server's stdout has ended
        self._waited_exit = False  # _exited has waited for the process once
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()

    # -- wire ------------------------------------------------------------------------------------
    def send_raw(self, body: bytes) -> None:
        try:
            self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError):  # a closed pipe, or a stdin closed once the pipe broke
            raise LspError(self._exited()) from None

    def _exited(self) -> dict:
        """The error for a server that is gone, with its exit code (a bare "Broken pipe" said nothing of it). Waited
        for once (5 s at most); after that its exit is only looked at, so that each later request fails at once."""
        if self._waited_exit:
            code = self.proc.poll()
        else:
            self._waited_exit = True
            try:
                code = self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                code = None
        if code is None:
            return {"code": SERVER_EXITED, "message": "the server closed its input"}
        return {"code": SERVER_EXITED, "message": f"the server exited with code {code}"}

    def _send(self, message: dict) -> None:
        self.send_raw(json.dumps(message).encode("utf-8"))

    def _read_loop(self) -> None:
        out = self.proc.stdout
        while True:
            length = None
            while True:
                line = out.readline()
                if not line:
                    self._fail_pending()
                    return
                line = line.strip()
                if not line:
                    break
                if line.lower().startswith(b"content-length:"):
                    try:
                        length = int(line.split(b":", 1)[1])
                    except ValueError:
                        length = None  # a header that names no length: the body cannot be framed
            if length is None:
                continue
            body = out.read(length)
            if len(body) < length:  # the server died in the middle of a message
                self._fail_pending()
                return
            try:
                message = json.loads(body, parse_constant=_refuse_constant)
            except ValueError:
                continue  # not JSON (NaN and Infinity are not, as a strict editor reads it): skipped
            if not isinstance(message, dict):
                continue
            if "id" in message and "method" not in message:
                q = self._pending.pop(message["id"], None)
                if q is not None:
                    q.put(message)
            elif "id" in message:
                self._answer_server_request(message)
            else:
                self.notifications.put(message)

    def _fail_pending(self) -> None:
        self._gone = True
        pending = list(self._pending.values())
        if pending:
            error = self._exited()
            for q in pending:
                _put_once(q, {"error": error})

    def _answer_server_request(self, message: dict) -> None:
        self.server_requests.append(message)
        result: Any = None
        if message["method"] == "workspace/configuration":
            items = message.get("params", {}).get("items", [])
            result = [self.configuration.get(i.get("section"), None) for i in items]
        self._send({"jsonrpc": "2.0", "id": message["id"], "result": result})

    # -- API -------------------------------------------------------------------------------------
    def request_async(self, method: str, params: Any = None) -> tuple[int, queue.Queue]:
        msg_id = next(self._ids)
        q: queue.Queue = queue.Queue(maxsize=1)
        with self._lock:
            self._pending[msg_id] = q
        self._send({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        if self._gone:  # its stdout closed before this request was pending: nothing will answer it
            _put_once(q, {"error": self._exited()})
        return msg_id, q

    def request(self, method: str, params: Any = None, timeout: float = 30.0) -> Any:
        _, q = self.request_async(method, params)
        return self.result(q, timeout, method)

    @staticmethod
    def result(q: queue.Queue, timeout: float = 30.0, method: str = "a request") -> Any:
        """The answer in ``q``; LspError for an error answer, LspTimeout (an LspError) for none in time (a bare
        queue.Empty had reached the commands that wait here, as a traceback)."""
        try:
            message = q.get(timeout=timeout)
        except queue.Empty:
            raise LspTimeout({"code": None, "message": f"no answer to {method} within {timeout:g} s"}) from None
        if "error" in message:
            raise LspError(message["error"])
        return message.get("result")

    def notify(self, method: str, params: Any = None) -> None:
        self._send({"jsonrpc": "2.0", "method": method, "params": params})

    def cancel(self, msg_id: int) -> None:
        self.notify("$/cancelRequest", {"id": msg_id})

    def wait_notification(self, method: str, timeout: float = 10.0) -> dict:
        deadline = time.time() + timeout
        skipped = []
        try:
            while True:
                message = self.notifications.get(timeout=max(0.0, deadline - time.time()))
                if message.get("method") == method:
                    return message
                skipped.append(message)
        finally:
            for m in skipped:
                self.notifications.put(m)

    def initialize(self, options: dict | None = None, client_name: str = "tact-client", inline: bool = True,
                   configuration: bool = False, root_uri: str | None = None, workspace: dict | None = None) -> dict:
        """``workspace``: more workspace client capabilities (``didChangeConfiguration``, ...)."""
        caps: dict = {"textDocument": {"completion": {}, "synchronization": {}}, "window": {"showMessage": {}},
                      "workspace": {"configuration": configuration, **(workspace or {})},
                      "notebookDocument": {"synchronization": {}}}
        if inline:
            caps["textDocument"]["inlineCompletion"] = {}
        result = self.request("initialize", {"processId": None, "rootUri": root_uri, "capabilities": caps,
                                             "clientInfo": {"name": client_name, "version": "1"},
                                             "initializationOptions": options or {}})
        self.notify("initialized", {})
        return result

    def did_open(self, uri: str, text: str, version: int = 1, language_id: str = "python") -> None:
        self.notify("textDocument/didOpen", {"textDocument": text_document_item(uri, text, version, language_id)})

    def did_change(self, uri: str, version: int, changes: list[dict]) -> None:
        self.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": version}, "contentChanges": changes})

    def did_open_notebook(self, uri: str, notebook_type: str, version: int, cells: list[dict]) -> None:
        """notebookDocument/didOpen of a notebook whose code cells are ``cells`` (``text_document_item``s), in
        order."""
        self.notify(NOTEBOOK_DID_OPEN, {
            "notebookDocument": {"uri": uri, "notebookType": notebook_type, "version": version,
                                 "cells": [_code_cell(c["uri"]) for c in cells]},
            "cellTextDocuments": cells})

    def did_change_notebook_cells(self, uri: str, version: int, start: int, delete_count: int, inserted: list[str],
                                  opened: list[dict], closed: list[str]) -> None:
        """notebookDocument/didChange of its structure: cells ``start`` to ``start + delete_count`` replaced by the
        cells ``inserted``; ``opened`` (``text_document_item``s) are new to the server, ``closed`` leave it."""
        self.notify(NOTEBOOK_DID_CHANGE, {"notebookDocument": {"uri": uri, "version": version}, "change": {"cells": {
            "structure": {"array": {"start": start, "deleteCount": delete_count,
                                    "cells": [_code_cell(c) for c in inserted]},
                          "didOpen": opened, "didClose": [{"uri": c} for c in closed]}}}})

    def did_change_notebook_text(self, uri: str, version: int, cell_uri: str, cell_version: int,
                                 changes: list[dict]) -> None:
        """notebookDocument/didChange of one cell's text: ``changes`` as textDocument/didChange's contentChanges."""
        self.notify(NOTEBOOK_DID_CHANGE, {"notebookDocument": {"uri": uri, "version": version}, "change": {"cells": {
            "textContent": [{"document": {"uri": cell_uri, "version": cell_version}, "changes": changes}]}}})

    def did_close_notebook(self, uri: str, cells: list[str]) -> None:
        self.notify(NOTEBOOK_DID_CLOSE, {"notebookDocument": {"uri": uri},
                                         "cellTextDocuments": [{"uri": c} for c in cells]})

    def inline_completion_async(self, uri: str, line: int, character: int, invoked: bool = False,
                                selected: dict | None = None) -> tuple[int, queue.Queue]:
        """Send textDocument/inlineCompletion without waiting: (message id, queue for `result`)."""
        return self.request_async("textDocument/inlineCompletion",
                                  inline_completion_params(uri, line, character, invoked, selected))

    def inline_completion(self, uri: str, line: int, character: int, invoked: bool = False, timeout: float = 30.0,
                          selected: dict | None = None) -> list[dict]:
        result = self.result(self.inline_completion_async(uri, line, character, invoked, selected)[1], timeout,
                             "textDocument/inlineCompletion")
        if result is None:
            return []
        return result["items"] if isinstance(result, dict) else result

    def next_edit(self, uri: str, version: int, line: int, character: int, timeout: float = 30.0,
                  other_cells: bool = False) -> list[dict]:
        """tact/nextEdit: the predicted edits (``[{id, range, newText}]``, empty when none). ``other_cells``: a notebook
        cell's request may be answered in another cell of its notebook (the edit then names it, ``textDocument``)."""
        result = self.request("tact/nextEdit", next_edit_params(uri, version, line, character, other_cells), timeout)
        return (result or {}).get("edits", [])

    def shutdown(self, timeout: float = 10.0) -> int:
        """shutdown, then exit, then the exit code. exit goes even where shutdown failed (a server shut down already
        answers it with an error): without it such a server waited for exit until it was killed."""
        for send in (lambda: self.request("shutdown", None, timeout), lambda: self.notify("exit")):
            try:
                send()
            except Exception:
                pass
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def __enter__(self) -> "LspClient":
        return self

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.shutdown()


def text_document_item(uri: str, text: str, version: int, language_id: str = "python") -> dict:
    """LSP's TextDocumentItem: a document as it is opened (alone, or as a notebook's cell)."""
    return {"uri": uri, "languageId": language_id, "version": version, "text": text}


def _code_cell(uri: str) -> dict:
    return {"kind": CODE_CELL, "document": uri}


def inline_completion_params(uri: str, line: int, character: int, invoked: bool = False,
                             selected: dict | None = None) -> dict:
    """textDocument/inlineCompletion's params. ``selected``: the completion widget's entry (LSP's
    selectedCompletionInfo, ``{range, text}``: ``change_at`` builds one)."""
    context: dict = {"triggerKind": 1 if invoked else 2}
    if selected is not None:
        context["selectedCompletionInfo"] = selected
    return {"textDocument": {"uri": uri}, "position": {"line": line, "character": character}, "context": context}


def next_edit_params(uri: str, version: int, line: int, character: int, other_cells: bool = False) -> dict:
    """tact/nextEdit's params. ``other_cells``: a notebook cell's request may be answered in another cell."""
    params: dict[str, Any] = {"textDocument": {"uri": uri, "version": version},
                              "position": {"line": line, "character": character}}
    if other_cells:
        params["otherCells"] = True
    return params


def change_at(line: int, character: int, text: str, end_line: int | None = None, end_character: int | None = None) -> dict:
    """A ranged content change inserting (or replacing up to end) text."""
    return {"range": {"start": {"line": line, "character": character},
                      "end": {"line": line if end_line is None else end_line,
                              "character": character if end_character is None else end_character}}, "text": text}
