"""The server factory: a pygls LanguageServer holding Tact's services, with every feature registered.

Our DocumentStore is the one copy of each document (pygls' own workspace copy is bypassed), so a
malformed change or a change to a document never opened is rejected with a warning instead of
raising inside pygls.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import re
import signal
import sys
import threading
from typing import Union

from cattrs import transform_error

from lsprotocol import types
from pygls.exceptions import (JsonRpcException, JsonRpcInvalidParams, JsonRpcInvalidRequest, JsonRpcParseError,
                              JsonRpcServerNotInitialized)
from pygls.lsp.server import LanguageServer
from pygls.protocol import (JsonRPCNotification, JsonRPCRequestMessage, JsonRPCResponseMessage, LanguageServerProtocol,
                            default_converter)
from pygls.protocol.language_server import lsp_method

import lsp_server
from lsp_server.config import Settings
from lsp_server.features.lifecycle import end_session
from lsp_server.features.notebook_sync import NOTEBOOK_SYNC
from lsp_server.protocol import ACCEPTANCE_PRIOR, CLIENT_CLOCK
from lsp_server.services.completion import CompletionService
from lsp_server.services.documents import DocumentStore
from lsp_server.services.gate import AcceptanceGate, parse_prior
from lsp_server.services.ledger import SuggestionLedger
from lsp_server.services.undo_watch import UndoWatch
from lsp_server.services.memory import HeapTrimmer
from lsp_server.services.next_edit import NextEditService
from lsp_server.services.notebooks import NotebookStore
from lsp_server.services.pipeline import CompletionPipeline
from lsp_server.services.recorder import SessionRecorder
from lsp_server.services.scheduler import InferenceScheduler
from telemetry.store import json_finite

log = logging.getLogger("tact")


def strict_converter():
    """pygls' converter, except that a string field takes only a string.

    lsprotocol structures a string field with ``str(value)``, so a didOpen whose text is null or a number
    opened a document whose text was "None" or "5", and a uri of 5 named a document "5". Such a message
    now fails to structure like any other that does not fit its types: a request gets Invalid params, a
    notification is logged and dropped, and the documents stay as they were. So does a request id or progress token
    (a number or a string) that is neither: lsprotocol took any value, and a cancel for the id ``{}`` raised in
    pygls."""
    converter = default_converter()

    def structure_str(value, _type) -> str:
        if not isinstance(value, str):
            raise TypeError(f"expected a string, got {type(value).__name__}")
        return value

    def structure_int_or_str(value, _type) -> int | str:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise TypeError(f"expected a number or a string, got {type(value).__name__}")
        return value

    converter.register_structure_hook(str, structure_str)
    converter.register_structure_hook(Union[int, str], structure_int_or_str)  # ids and progress tokens
    return converter


def _to_feature(method: str):
    """A built-in handler of pygls' protocol that passes ``method`` straight to the feature registered for it."""

    @lsp_method(method)
    def handler(self, params):
        if (feature := self.fm.features.get(method)) is not None:
            yield feature, (params,), None

    return handler


# What structure_message gives for a message that did not fit its method's types: said in one line of the log (and,
# for a request, answered with Invalid params) already; handle_message drops it.
MALFORMED = object()
_CAMEL = re.compile(r"(?<=[a-z0-9])_([a-z])(?=[^@]*$)")  # snake_case attribute names after the " @ " of a path


def why_malformed(exc: Exception) -> str:
    """One line saying which fields of a message did not fit, in the protocol's names: ``expected int @
    $.params.position.line``, not the dozens of lines of cattrs' exception groups."""
    try:
        problems = transform_error(exc, path="$")
    except Exception:  # not a cattrs error: its own words
        problems = [f"{type(exc).__name__}: {exc}"]
    problems = [_CAMEL.sub(lambda m: m.group(1).upper(), p) if " @ $" in p else p for p in problems]
    return "; ".join(problems[:3]) + (f" (and {len(problems) - 3} more)" if len(problems) > 3 else "")


def _shape(value) -> str:
    if isinstance(value, dict):
        return "an object without jsonrpc" if "jsonrpc" not in value else "an object"
    return "null" if value is None else f"a {type(value).__name__}"



class TactProtocol(LanguageServerProtocol):
    """Text and notebook sync go straight to our handlers; pygls keeps no second copy of the text."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._notification_ids: list[str] = []  # notifications whose futures pygls keeps: see _execute_handler
        self._initialize_received = False
        self.output_lost = False  # the client's end of our output closed: nothing more is sent

    def structure_message(self, data):
        """A message whose params do not fit the method's types is dropped with one line in the log, and a request
        gets an error response with its id and that line (JSON-RPC: Invalid params, -32602); a response that does not
        fit fails the server's request that waits for it, with that line.

        pygls logged two tracebacks of dozens of lines for each such message (deserialising, then handling it) and
        dropped it unanswered, so a client waited forever. This is pygls' own dispatch otherwise; it runs as the
        JSON decoder's object hook, so nested objects (no ``jsonrpc``) pass through to be structured with their
        message."""
        if not isinstance(data, dict) or "jsonrpc" not in data:
            return data
        if "method" in data and "params" not in data:  # JSON-RPC lets params be left out; pygls' types need the key
            data["params"] = None
        try:
            if "id" in data:
                if "error" in data:
                    return self._converter.structure(data, types.ResponseErrorMessage)
                if "method" in data:
                    return self._converter.structure(data, self.get_message_type(data["method"]) or JsonRPCRequestMessage)
                return self._converter.structure(data, self._result_types.pop(data["id"], None) or JsonRPCResponseMessage)
            return self._converter.structure(data, self.get_message_type(data.get("method", "")) or JsonRPCNotification)
        except Exception as exc:
            reason = why_malformed(exc)
            method, msg_id = data.get("method"), data.get("id")
            if method is None:
                log.warning("a response (id %r) that does not fit its request was dropped: %s", msg_id, reason)
                if isinstance(msg_id, (int, str)) and not isinstance(msg_id, bool):  # what waits for it fails now
                    self._handle_response(msg_id, None, JsonRpcInvalidParams(f"Invalid params: {reason}").to_response_error())
            elif "id" in data:
                log.warning("request %r (id %r) answered Invalid params: %s", method, msg_id, reason)
                if isinstance(msg_id, (int, str)) and not isinstance(msg_id, bool):
                    self._send_response(msg_id, error=JsonRpcInvalidParams(f"Invalid params: {reason}").to_response_error())
            else:
                log.warning("notification %r dropped: %s", method, reason)
            return MALFORMED

    def _execute_handler(self, msg_id, handler, callback, args=None, kwargs=None):
        """pygls keeps the future of every notification handled by a generator, coroutine or thread handler (every
        didOpen, didChange and didClose among them) under a made-up id, and only a response ever takes one out: one
        per keystroke, about 1.4 kB each, for as long as the server runs. The finished ones are taken out here, on
        the event loop's thread, where pygls' shutdown also walks them (a future's own done-callback may run on a
        worker thread, or inside that walk, as shutdown cancels it)."""
        super()._execute_handler(msg_id, handler, callback, args, kwargs)
        if callback != self._check_handler_result:
            return
        if msg_id in self._request_futures:
            self._notification_ids.append(msg_id)
        futures, still = self._request_futures, []
        for key in self._notification_ids:
            if (future := futures.get(key)) is not None and not future.done():
                still.append(key)
            else:
                futures.pop(key, None)
        self._notification_ids = still

    def handle_message(self, message):
        """A request after shutdown gets Invalid Request (LSP: it should error), not silence; so do a request whose
        method is no string, and, with a null id as JSON-RPC says, a request whose id is neither a number nor a string
        and JSON that is no JSON-RPC message. A malformed message (``structure_message``) is dropped here.

        pygls logs and drops a request after shutdown, so a client that asks anything between shutdown and exit waits
        forever; an id of a list or an object raised inside pygls."""
        if message is MALFORMED:
            return
        if not hasattr(message, "jsonrpc"):  # JSON, but no JSON-RPC message: a batch, null, a number, {"id": 1}
            log.warning("a message that is no JSON-RPC 2.0 object (%s) answered Invalid Request", _shape(message))
            self._answer_with_null_id(JsonRpcInvalidRequest("not a JSON-RPC 2.0 message"))
            return
        msg_id, method = getattr(message, "id", None), getattr(message, "method", None)
        if msg_id is not None and (isinstance(msg_id, bool) or not isinstance(msg_id, (int, str))):
            log.warning("message %r with an id that is neither a number nor a string (%s) answered Invalid Request",
                        method, type(msg_id).__name__)
            self._answer_with_null_id(JsonRpcInvalidRequest("the id must be a number or a string"))
            return
        if (method is not None or hasattr(message, "method")) and not isinstance(method, str):  # a number, null
            log.warning("message (id %r) with a method that is no string (%s) answered Invalid Request", msg_id,
                        type(method).__name__)
            if msg_id is not None:
                self._send_response(msg_id, error=JsonRpcInvalidRequest("the method must be a string").to_response_error())
            return
        if self._shutdown and method is not None and method != types.EXIT and msg_id is not None:
            self._send_response(msg_id, error=JsonRpcInvalidRequest("the server is shutting down").to_response_error())
            return
        if method == types.INITIALIZE and self._initialize_received and msg_id is not None:
            # LSP: initialize is sent once; a second one re-ran the settings and the telemetry's choice of store
            log.warning("a second initialize (id %r) answered Invalid Request", msg_id)
            self._send_response(msg_id, error=JsonRpcInvalidRequest("initialize was sent already").to_response_error())
            return
        if not self._initialize_received and method not in (None, types.INITIALIZE, types.EXIT):
            # LSP: before initialize a request gets ServerNotInitialized and a notification is dropped; one waited
            # 30 s for pygls's client capabilities and failed with an AttributeError
            if msg_id is not None:
                log.warning("request %r before initialize answered ServerNotInitialized", method)
                self._send_response(msg_id, error=JsonRpcServerNotInitialized(
                    "the server is not initialized: send initialize first").to_response_error())
            return
        super().handle_message(message)

    def _send_data(self, data):
        """Strict JSON on the wire: a NaN or an infinity is written as null, as JavaScript's JSON.stringify writes it and
        telemetry stores it. Python writes ``Infinity``, which JSON.parse refuses, so a client lost the whole message
        (``tact/status`` with a ``stopThreshold`` of 1e400, a number the settings keep)."""
        if self.output_lost:
            return
        try:
            if hasattr(data, "__attrs_attrs__"):  # what pygls' own serializer does with it, done before the walk
                data = self._converter.unstructure(data)
            data = json_finite(data)
        except Exception:  # pygls' own serialization then fails on it, and says so as it always did
            log.warning("a message could not be prepared as strict JSON", exc_info=True)
        try:
            super()._send_data(data)
        except (BrokenPipeError, ConnectionResetError):
            # The client stopped reading (its end of our output closed) but may keep writing: every later answer
            # failed with tracebacks while the model went on computing them. Nothing more is sent, and the message
            # loop ends with the next message it reads (or when the client's end of our input closes).
            self.output_lost = True
            log.warning("the client stopped reading the server's output: the session ends")
            if (stop := getattr(self._server, "_stop_event", None)) is not None:
                stop.set()

    def answer_parse_error(self, reason: str) -> None:
        """A message body that is no JSON (``lsp_server.transport``): JSON-RPC's Parse error, id null, and one line in
        the log; pygls logged a traceback and answered nothing."""
        log.warning("a message that is no JSON was answered Parse error: %s", reason)
        self._answer_with_null_id(JsonRpcParseError(f"Parse error: {reason}"))

    def _answer_with_null_id(self, error: JsonRpcException) -> None:
        """JSON-RPC's answer where a request's id cannot be told: ``"id": null`` (pygls' response types leave a None id
        out, which no client can read as an answer)."""
        self._send_data({"jsonrpc": "2.0", "id": None, "error": {"code": error.code, "message": error.message}})

    @lsp_method(types.INITIALIZE)
    def lsp_initialize(self, params: types.InitializeParams):
        """Negotiate UTF-16 positions, whatever else the client offers.

        Tact counts `character` in UTF-16 code units everywhere (DocumentStore, completion ranges,
        telemetry). pygls would pick the client's first offered encoding and advertise it: Neovim
        0.10+ offers utf-8 first and then sends byte offsets. UTF-16 is the encoding every client
        must support, so offering only it makes pygls choose and advertise it.

        A replay also passes, beside the settings, the acceptance prior its recording started from
        (``acceptancePrior``): the gate starts from it instead of the replay's new database. A simulation passes
        ``clientClock``: the time it pins (tact/replayClock) is also the time recorded.
        """
        self._initialize_received = True
        general = params.capabilities.general
        if general is not None and general.position_encodings:
            general.position_encodings = [types.PositionEncodingKind.Utf16]
        server = self._server
        options = params.initialization_options
        if isinstance(options, dict) and ACCEPTANCE_PRIOR in options and getattr(server, "gate", None) is not None:
            server.gate.prior = parse_prior(options[ACCEPTANCE_PRIOR])
        if isinstance(options, dict) and options.get(CLIENT_CLOCK) is True and getattr(server, "gate", None) is not None:
            server.recorder.clock = lambda: server.gate.clock()  # what tact/replayClock pins, recorded too
            server.documents.records_by_clock = True
        result = yield from super().lsp_initialize(params)
        if getattr(server, "settings", None) is not None and server.settings.next_edit:
            # Custom capability: clients (the VS Code extension) offer next edits only when present.
            result.capabilities.experimental = {"tact": {"nextEdit": True}}
        return result

    # Text and notebook sync: pygls' own handlers would keep a second copy of the text in its workspace first.
    lsp_text_document__did_open = _to_feature(types.TEXT_DOCUMENT_DID_OPEN)
    lsp_text_document__did_change = _to_feature(types.TEXT_DOCUMENT_DID_CHANGE)
    lsp_text_document__did_close = _to_feature(types.TEXT_DOCUMENT_DID_CLOSE)
    lsp_notebook_document__did_open = _to_feature(types.NOTEBOOK_DOCUMENT_DID_OPEN)
    lsp_notebook_document__did_change = _to_feature(types.NOTEBOOK_DOCUMENT_DID_CHANGE)
    lsp_notebook_document__did_close = _to_feature(types.NOTEBOOK_DOCUMENT_DID_CLOSE)


class TactServer(LanguageServer):
    def __init__(self, *, model_path: str | None = None, database: str | None = None) -> None:
        super().__init__("tact", lsp_server.__version__, protocol_cls=TactProtocol, converter_factory=strict_converter,
                         text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
                         notebook_document_sync=NOTEBOOK_SYNC)
        self.settings = Settings()
        self.initial_settings = Settings()  # what initializationOptions gave: the base of later sections
        self.model_path_override = model_path  # CLI flags win over editor settings
        self.database_override = database
        self.documents = DocumentStore.from_settings(self.settings)
        self.notebooks = NotebookStore()  # which documents are a notebook's cells, in order
        self.completions = CompletionService()
        self.heap_trimmer = HeapTrimmer()  # freed native heap back to the system, every few seconds of requests
        self.scheduler = InferenceScheduler(after_job=self.heap_trimmer.after_request)
        self.ledger = SuggestionLedger()
        self.recorder = SessionRecorder()
        # loaded at `initialized` (due from then); learns from every accept and reject
        self.gate = AcceptanceGate(will_start=True, start_due=False)
        # One "now" for the server's decisions: the gate's clock, which a replay pins (tact/replayClock) to its
        # recording; keystrokes are grouped into edits by it too, so the next-edit history is the recorded one.
        self.documents.clock = lambda: self.gate.clock()
        self.undo_watch = UndoWatch(clock=lambda: self.gate.clock())  # accepts taken back soon after, by the same clock
        self.ledger.listeners.append(self._completion_outcome)
        self.pipeline = CompletionPipeline(self.documents, self.completions, self.scheduler, self.ledger, self.recorder,
                                           self.gate, self.notebooks)
        self.next_edits = NextEditService(self.scheduler, self.ledger, self.recorder)
        self.client_name = ""
        self.client_version = ""
        self.degraded_reported = ""  # the degraded reason last told the user; "" while there is a model
        self.telemetry_opened: tuple[bool, str] | None = None  # (enabled, database) the recorder's store is for
        self.shutting_down = False  # `shutdown` came: the session's end is recorded, its start no longer
        self.exit_received = False  # `exit` came (without shutdown first, the process's status is 1)
        self.gate_follows = asyncio.Lock()  # acceptance-model changes load one after another (lifecycle.follow_gate)

    def _completion_outcome(self, suggestion_id: str, outcome: str) -> None:
        """The acceptance gate learns from completions only (next edits are another kind of suggestion)."""
        item = self.ledger.get(suggestion_id)
        if item is None or item.kind == "completion":
            self.gate.record_outcome(suggestion_id, outcome)

    def shutdown(self) -> None:
        """pygls' shutdown, but its thread pool is not waited on: a read of stdin blocks one of its threads until the
        client writes or leaves, so after Ctrl-C the wait never ended."""
        if self._stop_event is not None:
            self._stop_event.set()
        if self._thread_pool:
            self._thread_pool.shutdown(wait=False, cancel_futures=True)
        if self._server:
            self._server.close()

    def report_server_error(self, error: Exception, source) -> None:
        """Log instead of pygls' default pop-up: a malformed message is not the user's problem."""
        log.warning("server error (%s): %s", getattr(source, "__name__", source), error)

    def apply_settings(self, values: dict | None, origin: str) -> list[str]:
        """Settings from ``origin``. initializationOptions go over the defaults; a section pushed
        (didChangeConfiguration) or pulled (workspace/configuration) later is the whole section, over what
        initialize gave: laid over the current settings, a key the user removed kept its old value. A value refused
        there keeps the one in use, as README says: over initialize's alone, a typo in one key undid the value the
        previous push had set."""
        initial = origin == "initializationOptions"
        settings, problems = Settings.from_camel(values, base=None if initial else self.initial_settings,
                                                 kept=None if initial else self.settings)
        if initial:
            self.initial_settings = dataclasses.replace(settings)
        if self.model_path_override:
            settings.model_path = self.model_path_override
        if self.database_override:
            settings.telemetry_database = self.database_override
        self.settings = settings
        # editCoalesceMs from wherever settings come (initialize, workspace/configuration, didChangeConfiguration),
        # for the documents open already too: once read only at initialize, later values were never applied
        self.documents.set_coalesce(settings.edit_coalesce_ms / 1000.0)
        logging.getLogger("tact").setLevel(settings.log_level)  # one of LOG_LEVELS: from_camel checks it
        for p in problems:
            log.warning("settings from %s: %s", origin, p)
        return problems

    def open_telemetry(self) -> bool:
        """Record into the database the settings name, or nowhere when telemetry is off; True when that changed.

        Called again whenever settings arrive (workspace/configuration, didChangeConfiguration): telemetry turned
        off there stops recording at once, instead of the store opened at initialize writing the user's code on."""
        wanted = (self.settings.telemetry, str(self.settings.database_path()) if self.settings.telemetry else "")
        if wanted == self.telemetry_opened:
            return False
        # every document open now, where recording starts or moves (the first store gets the openings themselves)
        carried = sorted(self.documents.uris()) if self.telemetry_opened is not None and self.settings.telemetry else []
        if self.telemetry_opened is not None:
            self.close_recorded_documents(close=True)
            if self.recorder.recorded and not self.recorder.started:
                # its start waits for the model and the gate: the database left before they loaded kept a session
                # row without client, settings or models (as a shutdown then would, `lifecycle.shutdown`)
                from lsp_server.features.lifecycle import session_started

                session_started(self, self.completions.status)
            self.recorder.session_ended("telemetry settings changed")
        old = self.recorder.switch(SessionRecorder.open(self.settings.database_path(), self.settings.telemetry,
                                                        self.settings.telemetry_retention_days).store)
        self.telemetry_opened = wanted
        # off the event loop: a close waits up to 5 s for a writer held by another's lock, and every request waited
        # with it; not a daemon, so the process's exit still lets it write the old store's last events
        threading.Thread(target=old.close, name="tact-telemetry-close").start()
        if self.settings.telemetry and (why := self.recorder.telemetry_reason):  # wanted, but the database is unusable
            self.window_show_message(types.ShowMessageParams(
                type=types.MessageType.Warning,
                message=f"Tact: telemetry is not recorded ({why}); "
                        + ("pass --database a file Tact can write" if self.database_override  # it wins over the setting
                           else "set tact.telemetryDatabase to a file Tact can write")))
        if carried:
            # The documents open now: the new database gets them as they are now, as a didOpen would record them, or
            # their later edits, suggestions and accepts would have nothing to apply to there and were left out of it
            # for the rest of the session. That holds for those opened while telemetry was off too: turning it on is
            # the user's consent to record what they edit from then on, and their pending edits were finalized into
            # the old store above, so their text here starts where the edits recorded next apply.
            for uri in carried:
                if (doc := self.documents.get(uri)) is not None:
                    version, text = doc.snapshot()
                    self.recorder.document_opened(uri, version, doc.language_id, text)
            held = set(carried)
            for notebook in self.notebooks.all():  # and which of them form notebooks
                if cells := [c for c in notebook.cells if c in held]:
                    self.recorder.notebook_changed(notebook.uri, notebook.notebook_type, notebook.version, "open",
                                                   cells)
        return True

    def close_recorded_documents(self, close: bool = False) -> None:
        """Finalize every pending edit and snapshot each open document, so a replay of the database recorded so
        far arrives at the text each document has now (before shutdown, or before recording moves elsewhere).
        ``close``: the recording leaves the store while the session goes on, so each document is closed there too;
        should the recording come back (telemetry off and on again), a document opened again read as opened twice.
        Their notebooks are closed after them, as a notebook's close does."""
        notebooks = [nb for nb in self.notebooks.all() if not self.recorder.documents.isdisjoint(nb.cells)] if close else []
        for uri in self.documents.uris():
            self.recorder.edits(self.documents.flush(uri))
            if (doc := self.documents.get(uri)) is not None:
                self.recorder.document_snapshot(uri, *doc.snapshot())  # only where the store holds its opening
                if close:
                    self.recorder.document_closed(uri)
        for nb in notebooks:
            self.recorder.notebook_changed(nb.uri, nb.notebook_type, nb.version, "close", ())


def create_server(*, model_path: str | None = None, database: str | None = None) -> TactServer:
    from lsp_server.features import (code_action, commands, completion, feedback, inline_completion, lifecycle, next_edit,
                                     notebook_sync, replay_session, text_sync)

    server = TactServer(model_path=model_path, database=database)
    for feature in (lifecycle, text_sync, notebook_sync, inline_completion, completion, commands, feedback, next_edit, code_action,
                    replay_session):
        feature.register(server)
    return server


def configure_logging(log_file: str | None) -> None:
    """stderr or a file, never stdout (stdout carries the protocol). pygls logs message bodies at INFO."""
    handler: logging.Handler = logging.FileHandler(log_file) if log_file else logging.StreamHandler(sys.stderr)
    handler.setFormatter(OneLineFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("pygls").setLevel(logging.WARNING)
    for name in ("pygls.server", "pygls.protocol.json_rpc"):
        logging.getLogger(name).addFilter(_said_in_one_line)
    logging.getLogger("pygls.protocol.json_rpc").addFilter(_not_a_late_cancel)
    logging.getLogger("tact").setLevel(logging.WARNING)


_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f\u2028\u2029]")


class OneLineFormatter(logging.Formatter):
    """Each record's message on its own line, its control characters escaped: a client's text in it (a document URI
    holding a line break) forged whole log lines, a level and a time included. A traceback keeps its lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = _CONTROL.sub(lambda m: repr(m.group())[1:-1], record.message)
        return super().formatMessage(record)


def _said_in_one_line(record: logging.LogRecord) -> bool:
    """Leave out pygls' tracebacks for what ``report_server_error`` already says in one line: a message body that is
    not JSON (or not UTF-8), and an error pygls raised to answer a request (an unknown command); and for a client that
    stopped reading, which ``TactProtocol._send_data`` says once. Any other failure keeps its traceback."""
    error = record.exc_info[1] if record.exc_info else None
    return not isinstance(error, (json.JSONDecodeError, UnicodeDecodeError, JsonRpcException, BrokenPipeError,
                                  ConnectionResetError))


def _not_a_late_cancel(record: logging.LogRecord) -> bool:
    """Leave out pygls' warning for a $/cancelRequest of a request already answered (or never sent): LSP expects it
    (the answer and the cancel cross on the wire; VS Code cancels each inline request a keystroke supersedes), and it
    was a log line a keystroke, 680 KB for 6,000 cancels."""
    return not (isinstance(record.msg, str) and record.msg.startswith("Cancel notification for unknown message id"))


def serve(args, completions: CompletionService | None = None) -> int:
    """Serve until the client leaves; a log file or an address that cannot be used is one line on stderr, exit 2."""
    try:
        configure_logging(args.log_file)
    except OSError as exc:
        print(f"tact serve: error: cannot write the log file {args.log_file}: {exc.strerror}", file=sys.stderr)
        return 2
    server = create_server(model_path=args.model, database=args.database and str(args.database))
    if completions is not None:
        server.completions = server.pipeline.service = completions
    interrupted, previous = _on_interrupt()
    if args.tcp:
        try:
            status = serve_tcp(server, args.host, args.tcp)
        except OSError as exc:  # an unknown host, an address not ours, a port in use or reserved
            print(f"tact serve: error: cannot listen on {args.host}:{args.tcp}: {exc.strerror or exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:  # Ctrl-C: the usual way to stop a server waiting for its client; or SIGTERM
            if not server.shutting_down:  # its session's end and the edit being typed, as on stdio
                end_session(server, interrupted.reason)
            return 130
        finally:
            _restore(previous)
        _end_if_left(server)
        return status
    if sys.stdin.isatty():  # run by hand: a server waiting for its client would look hung
        print("tact serve: waiting for an LSP client on stdin (an editor starts this command; by hand try "
              "`tact demo` or `tact complete FILE:LINE`); Ctrl-C ends it", file=sys.stderr, flush=True)
    serve_stdio(server)
    if not interrupted.is_set():
        _restore(previous)
        status = 1 if server.exit_received and not server.shutting_down else 0  # LSP: exit without shutdown is 1
        _end_if_left(server)
        return status
    # Ctrl-C on stdio: pygls took the interrupt and stopped reading, but a worker thread still waits in stdin's read,
    # which nothing can end and the interpreter's exit would join (a second Ctrl-C then aborted it, holding stdin's
    # lock). The session's end is recorded and the telemetry flushed; then the process ends without that join.
    if not server.shutting_down:
        end_session(server, interrupted.reason)
    print(f"tact serve: {interrupted.reason}", file=sys.stderr, flush=True)
    logging.shutdown()
    os._exit(130)


def serve_stdio(server: "TactServer") -> None:
    """pygls's ``start_io`` (asynchronous) with the messages read by ``lsp_server.transport``: one message framed
    wrong no longer leaves every later one unread."""
    from pygls.io_ import StdinAsyncReader, StdoutWriter

    from lsp_server.transport import run_messages

    server._stop_event = stop = threading.Event()
    reader = StdinAsyncReader(sys.stdin.buffer, server.thread_pool)
    server.protocol.set_writer(StdoutWriter(sys.stdout.buffer))

    async def messages() -> None:
        try:
            await run_messages(stop.is_set, reader, server.protocol, server.protocol.answer_parse_error,
                               server.report_server_error, JsonRpcException)
        finally:
            # The client is gone: handlers still running (initialized awaits the gate's start) are cancelled as
            # asyncio.run ends, and asyncio logged each CancelledError with a traceback.
            asyncio.get_running_loop().set_exception_handler(_quiet_when_cancelled)

    try:
        asyncio.run(messages())
    except BrokenPipeError:
        log.warning("the connection to the client is lost: the server stops")
    except (KeyboardInterrupt, SystemExit):  # Ctrl-C (serve() says so), the client's exit notification
        pass
    finally:
        server.shutdown()


def _end_if_left(server: "TactServer") -> None:
    """The session's end, where the client left without shutdown (its exit notification alone, or its end of the
    connection closed: an editor that crashed or was killed): else its end and its documents' last text were never
    recorded. The process ends all the same if recording fails."""
    if server.shutting_down:
        return
    try:
        end_session(server, "client left")
    except Exception:
        log.warning("recording the end of the session failed", exc_info=True)


# Signals that stop a server as Ctrl-C does, its session's end recorded: a process manager's or an editor's SIGTERM,
# a closed terminal's SIGHUP (left to their default, they ended it with no end recorded and the edit being typed lost).
_STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class _Interrupt(threading.Event):
    """Set by the first stop signal; ``reason`` is the session's end reason it gives: ``interrupted`` for Ctrl-C (a
    server run by hand), ``terminated`` for SIGTERM and SIGHUP (an editor or a process manager that stops its server
    so, as Emacs does as it exits: read as a Ctrl-C, such sessions said someone had interrupted them by hand)."""

    reason = "interrupted"


def _on_interrupt():
    """The handler of Ctrl-C and the other stop signals: the first sets the event returned and interrupts as Ctrl-C
    does, a second while the session ends ends the process at once. Returns the event and the handlers it replaced
    (none off the main thread, where none is installed)."""
    interrupted = _Interrupt()

    def handler(signum, frame) -> None:
        if interrupted.is_set():
            os._exit(130)
        interrupted.reason = "interrupted" if signum == signal.SIGINT else "terminated"
        interrupted.set()
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        return interrupted, {}
    return interrupted, {sig: signal.signal(sig, handler) for sig in _STOP_SIGNALS}


def _restore(previous: dict) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def _quiet_when_cancelled(loop, context: dict) -> None:
    """An asyncio exception handler that leaves out the cancellations of a server shutting down."""
    if not isinstance(context.get("exception"), asyncio.CancelledError):
        loop.default_exception_handler(context)


class YieldingReader:
    """A stream whose every read first lets the event loop run, as stdio's reads (in an executor) do. Over TCP pygls
    handles the messages of one read without yielding, so a didChange that came with a completion request was applied
    before the request's handler started, and the request was answered for text it was not made for."""

    def __init__(self, reader) -> None:
        self._reader = reader

    async def readline(self) -> bytes:
        await asyncio.sleep(0)
        try:
            return await self._reader.readline()
        except ValueError:  # a line past the stream's limit, which asyncio dropped: junk, read on past it
            return b"\x00"

    async def readexactly(self, n: int) -> bytes:
        return await self._reader.readexactly(n)


def serve_tcp(server: LanguageServer, host: str, port: int) -> int:
    """pygls's ``start_tcp`` but for two things: one line on stderr once the address is bound (nothing said the
    server was up), and the client's ``exit`` ends serving with its status (0 after shutdown, else 1) where pygls's
    ``sys.exit`` escaped the connection's task and asyncio logged it with a traceback on every normal exit. One client,
    as in pygls: when it disconnects the server stops listening and returns. A second connection while the client
    is served is closed at once: it took over the session's answers (set_writer), and its leaving ended the server
    under the first client. A connection the client drops (an editor killed) ends serving as its leaving does."""
    import threading

    from lsp_server.transport import MAX_BODY_BYTES, run_messages

    status = 0
    served = False
    server._stop_event = stop = threading.Event()  # what pygls's shutdown() sets to end the message loop

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal status, served
        if served:
            log.warning("tact serve: a second connection (from %s) closed: the server serves one client",
                        writer.get_extra_info("peername"))
            writer.close()
            return
        served = True
        server.protocol.set_writer(writer)
        try:
            await run_messages(stop.is_set, YieldingReader(reader), server.protocol,
                               server.protocol.answer_parse_error, server.report_server_error, JsonRpcException)
        except SystemExit as exc:  # the client's exit notification (pygls's lsp_exit)
            status = exc.code if isinstance(exc.code, int) else 1
        except asyncio.CancelledError:  # Ctrl-C with a client connected: asyncio logged a cancelled task's traceback
            pass
        except ConnectionError as exc:  # reset by the client (its process killed): it left, as at the end of input
            log.info("tact serve: the client's connection was lost (%s)", exc)
        finally:
            # The client is gone: handlers still running (initialized awaits the gate's start) are cancelled as
            # asyncio.run ends, and pygls's callbacks on them logged each CancelledError with a traceback.
            asyncio.get_running_loop().set_exception_handler(_quiet_when_cancelled)
            server.shutdown()  # closes the listener too: serve_forever below ends

    async def listen() -> None:
        # lines as long as a body may be: asyncio's 64 KB ended the session at a long line that is no header
        server._server = listener = await asyncio.start_server(connection, host, port, limit=MAX_BODY_BYTES)
        print(f"tact serve: listening on {host}:{port} (one client: the server exits when it disconnects)",
              file=sys.stderr, flush=True)
        async with listener:
            try:
                await listener.serve_forever()
            except asyncio.CancelledError:
                if not stop.is_set():  # Ctrl-C (KeyboardInterrupt once asyncio.run returns), not shutdown()
                    raise

    asyncio.run(listen())
    return status
