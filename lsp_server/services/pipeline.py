"""A completion request from start to finish, without pygls: the features only adapt LSP to this.

request() runs on the event loop and only queues work; everything slow runs on the inference
executor. Results computed for a document version that is no longer current are dropped.

With the acceptance gate on, stage 1 decides before the model is called whether to call it (and
how long to wait first, so a newer keystroke can supersede the request), and stage 2 decides
whether the suggestion is shown; both decisions are logged. With it off, a suggestion that goes out
logs stage 2's features all the same (``AcceptanceGate.ungated``): its outcome is a sample to train on.
"""

from __future__ import annotations

import logging
import reprlib
import weakref
from collections import Counter
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Callable, TypeVar

from lsp_server.config import Settings
from lsp_server.services.completion import CompletionService, Suggestion
from lsp_server.services.context import CompletionContext
from lsp_server.services.documents import Document, DocumentStore
from lsp_server.services.gate import AcceptanceGate, GateDecision
from lsp_server.services.ledger import TYPED_PART, TYPED_WHOLE, IssuedSuggestion, SuggestionLedger
from lsp_server.services.notebooks import NotebookStore
from lsp_server.services.positions import LineIndex, Position, Range, advance, utf16_len
from lsp_server.services.recorder import SessionRecorder
from lsp_server.services.scheduler import Cancelled, CancelToken, Deferred, InferenceScheduler
from models.fim import to_lf

log = logging.getLogger("tact.pipeline")
T = TypeVar("T")

MAX_SELECTED_CHARS = 1000  # a selected completion item longer than this is not one a suggestion continues


@dataclass(frozen=True)
class SelectedCompletion:
    """The entry selected in the editor's completion widget (LSP's selectedCompletionInfo): ``text`` replaces
    ``start``-``end`` on the cursor's line. The suggestion continues the document as if it were inserted, since an
    editor shows only ghost text that extends the entry (VS Code hid every suggestion while the widget was open)."""

    start: Position
    end: Position
    text: str

    def fits(self, index: LineIndex, position: Position) -> bool:
        """Whether the entry fits the request: one line around the cursor, inside the document, not too long."""
        start, end = self.start, self.end
        return (start.line == end.line == position.line and start.character <= position.character <= end.character
                and index.is_valid(start) and index.is_valid(end) and len(self.text) <= MAX_SELECTED_CHARS
                and "\n" not in self.text and "\r" not in self.text)

    def applied(self, index: LineIndex) -> tuple[LineIndex, Position]:
        """The document with the entry inserted (it ``fits``) and the cursor after it."""
        s = index.offset_at(self.start)
        virtual = index.replaced(s, index.offset_at(self.end), self.text)
        return virtual, virtual.position_at(s + len(self.text))

    def summary(self) -> dict:
        return {"start_line": self.start.line, "start_character": self.start.character,
                "end_line": self.end.line, "end_character": self.end.character, "text": self.text}


@dataclass
class PendingRequest:
    """A queued suggestion (a completion or a next edit): its id, the job's future and its cancel token."""

    suggestion_id: str
    future: Future  # -> the suggestion to show, or None
    token: CancelToken
    document: Document | None = None  # the document and version the suggestion was computed for, checked
    version: int = -1  # again as the answer goes out
    # "requested": when the job logged the request, by the gate's clock (a replay pins that clock to this time)
    times: dict[str, float] = field(default_factory=dict)
    selected: SelectedCompletion | None = None  # the completion entry the suggestion continues, where it fits
    # "shown": the gate's key of the text before the cursor (AcceptanceGate.shown_key), computed by the job
    keys: dict[str, int] = field(default_factory=dict)
    # with the gate off, "features": the details of stage 2's ungated row (features for training), computed by the
    # job and logged as the answer goes out (`CompletionPipeline.issue`): one that never reaches the user has no outcome
    ungated: dict[str, dict] = field(default_factory=dict)
    position: Position | None = None  # the cursor the request was made at

    def abandon(self, recorder: SessionRecorder, reason: str) -> None:
        """The editor will not get this suggestion (it cancelled the request): stop the job, and if the job
        still produces a suggestion, log it as cancelled, so it is not left generated and never resolved."""
        self.token.cancel(reason)

        def dropped(future: Future) -> None:
            if not future.cancelled() and future.exception() is None and future.result() is not None:
                recorder.cancelled(self.suggestion_id, reason)

        self.future.add_done_callback(dropped)


def written_suggestion(ledger: SuggestionLedger, documents: DocumentStore, uri: str,
                       changes: list[tuple[Range | None, str]]) -> str | None:
    """The id of the open classic completion of ``uri`` that the change just applied (``changes``, as the message
    gave them) wrote whole, if any: one message whose changes starting inside the item's edit inserted at least all
    it writes (the word before the cursor and the suggestion; typing by hand inserts a character at a time) and left
    that text at its range's start. Emacs's eglot never runs an item's command, so its accepts were taken for
    rejections (superseded by the next request) and taught the gate so. Changes elsewhere do not count: an item typed
    out by hand read as accepted at the next Enter with its indent, or a paste below it. A change of the whole text
    (no range) inserts it all, which cannot tell; an item that writes one character cannot be told from typing it:
    both are left to the command."""
    item = ledger.open_item("completion", uri)
    if item is None or item.item_edit is None or any(rng is None for rng, _ in changes):
        return None
    line, character, text = item.item_edit
    if len(text) < 2:
        return None
    start = Position(line, character)
    end = advance(start, text)
    inserted = sum(len(new) for rng, new in changes if start <= rng.start < end)
    if inserted < len(text):
        return None
    doc = documents.get(uri)
    if doc is None:
        return None
    offset = doc.offset_at(start)
    written = to_lf(doc.text[offset:offset + len(text) + text.count("\n")])  # a CRLF document's CRs are no text
    return item.id if written.startswith(text) else None


def typed_along(ledger: SuggestionLedger, doc: Document, uri: str, start: Position | None) -> str:
    """How much of the open completion of ``uri`` the user typed before the request whose text starts at ``start``:
    ``TYPED_PART`` where the document's text from where the open one starts to ``start`` is a start of it, and the
    document changed since (the cursor moved over text that was there reads no), ``TYPED_WHOLE`` where it is all of
    it, else '' (see ``SuggestionLedger.issue``). An edit before it moves its start, and then this reads no."""
    item = ledger.open_item("completion", uri)
    if item is None or item.start is None or start is None or doc.version <= item.version:
        return ""
    begin, end = doc.offset_at(Position(*item.start)), doc.offset_at(start)
    typed, text = to_lf(doc.text[begin:end]), to_lf(item.text)
    if end <= begin or not text.startswith(typed):
        return ""
    return TYPED_WHOLE if typed == text else TYPED_PART


class CompletionPipeline:
    def __init__(self, documents: DocumentStore, service: CompletionService, scheduler: InferenceScheduler,
                 ledger: SuggestionLedger, recorder: SessionRecorder, gate: AcceptanceGate | None = None,
                 notebooks: NotebookStore | None = None) -> None:
        self.documents = documents
        self.notebooks = notebooks if notebooks is not None else NotebookStore()
        self.service = service
        self.scheduler = scheduler
        self.ledger = ledger
        self.recorder = recorder
        self.gate = gate if gate is not None else AcceptanceGate()  # without a model: off
        self.counts: Counter[str] = Counter()  # this session: requested, skipped, generated, hidden, issued, gate_failed
        # per open document: the trigger of the classic completion request that opened the editor's list
        self._list_triggers: weakref.WeakKeyDictionary[Document, str] = weakref.WeakKeyDictionary()

    def _cells_above(self, uri: str, language_id: str, settings: Settings) -> str:
        """The code of the cells above a notebook cell as it is at the request (NotebookStore.earlier_cells); "" for
        any other document. Read here on the event loop, not by the worker when it gets to the job: a cell above
        changed or moved meanwhile reached a prompt that telemetry places before that change. Their edits still
        being typed are recorded first, or a replay would give the request the cells above without them."""
        above = self.notebooks.cells_around(uri)[0]
        if not above:
            return ""
        for cell in above:
            self.recorder.edits(self.documents.flush(cell))
        return self.notebooks.earlier_cells(uri, self._language_and_text, language_id, settings.context_prefix_chars)

    def _language_and_text(self, uri: str) -> tuple[str, str] | None:
        doc = self.documents.get(uri)
        return (doc.language_id, doc.text) if doc is not None else None

    def list_trigger(self, uri: str, invoked: bool, retrigger: bool) -> str:
        """The trigger of a classic completion request, "invoked" or "automatic" (on the event loop). A retrigger of
        the open list (LSP's TriggerForIncompleteCompletions: every answer is incomplete, so the editor asks again at
        each keystroke while its list is open) takes the trigger of the request that opened the list: after an
        explicit request the next keystrokes were gated as automatic, and the suggestion could leave the list the
        user had asked for. A reopened document starts afresh."""
        doc = self.documents.get(uri)
        if retrigger:
            return self._list_triggers.get(doc, "automatic") if doc is not None else "automatic"
        trigger = "invoked" if invoked else "automatic"
        if doc is not None:
            self._list_triggers[doc] = trigger
        return trigger

    def request(self, uri: str, position: Position, trigger: str, settings: Settings,
                selected: SelectedCompletion | None = None) -> PendingRequest | None:
        """Queue a completion for the document as it is now (with ``selected``, the completion entry selected in
        the editor, inserted: the suggestion continues it, where it fits); None when there is nothing to complete."""
        doc = self.documents.get(uri)
        if doc is None:
            log.warning("completion requested for a document that is not open: %s", uri)
            return None
        if not settings.enable:
            return None
        version, index = doc.indexed_snapshot()
        pending_edit = doc.history.pending  # read with the version, on the loop that applies changes: consistent
        suggestion_id = self.ledger.new_id()
        recorder = self.recorder
        times: dict[str, float] = {}
        keys: dict[str, int] = {}
        ungated: dict[str, dict] = {}
        if selected is not None and not selected.fits(index, position):  # this version's text, the job's too
            log.info("a selected completion entry that does not fit the request is left out: %s",
                     reprlib.repr(selected))
            selected = None
        entry = {"selected_completion": selected.summary()} if selected is not None else {}
        earlier = self._cells_above(uri, doc.language_id, settings)

        def outdated() -> bool:
            """The document changed, closed or was reopened since the request: its text is not the editor's."""
            return doc.version != version or self.documents.get(uri) is not doc

        def job(token: CancelToken) -> Suggestion | None:
            self.counts["requested"] += 1
            current, index = doc.indexed_snapshot()
            if token.cancelled or current != version or outdated():  # superseded or outdated while queued: no model
                recorder.requested(suggestion_id, "completion", uri, version, position.line, position.character,
                                   trigger, entry, pending_edit)
                raise Cancelled(token.reason if token.cancelled else "stale")
            if selected is not None:
                at = index.position_at(index.offset_at(position))  # the editor's cursor, clamped as a context is
                virtual, after_entry = selected.applied(index)
                ctx = self.service.context(virtual, doc.language_id, after_entry, settings).with_earlier_cells(earlier)
                summary = {**ctx.summary(), **entry}
            else:
                ctx = self.service.context(index, doc.language_id, position, settings).with_earlier_cells(earlier)
                at, summary = ctx.position, ctx.summary()
            # The gate's "now" for this suggestion, from stage 1 to shown: the logged request's time, which a replay
            # pins its clock to; wall time read later (after generation) made a replay's timing features differ.
            times["requested"] = now = self.gate.clock()
            recorder.requested(suggestion_id, "completion", uri, version, at.line, at.character, trigger, summary,
                               pending_edit)
            if doc.is_binary:
                recorder.cancelled(suggestion_id, "binary")
                return None
            if settings.acceptance_gate:
                # as for the code model: the session's first requests are gated too; one superseded meanwhile ends
                # there, with no decision to log
                token.wait(self.gate.wait_started, timeout=30)
            gate = self.gate if settings.acceptance_gate and self.gate.active else None
            # off by the settings or for want of a model, not for a failure (a failed stage goes on without features);
            # once started: features read before the user's prior was seeded would teach wrong counts
            off = gate is None and self.gate.started
            first = None
            if gate is not None:
                first = self._gate_decision(1, lambda: gate.before(ctx, settings, trigger, uri, now=now))
                gate = gate if first is not None else None
            if first is not None:
                recorder.gated(suggestion_id, 1, first.decision, first.score, first.threshold, first.model_version,
                               first.details())
                if not first.generate:
                    self.counts["skipped"] += 1
                    return None
                if first.debounce_ms:  # wait off the worker: other jobs (other documents, next edits) run meanwhile
                    def debounced(token: CancelToken) -> Suggestion | None:
                        token.check()  # a newer keystroke came: no model call
                        return generate(token, ctx, gate, first, now, off)

                    rest = recorder.logged_job(suggestion_id, debounced, "completion")
                    return Deferred(first.debounce_ms / 1000, rest)
            return generate(token, ctx, gate, first, now, off)

        def generate(token: CancelToken, ctx: CompletionContext, gate: AcceptanceGate | None,
                     first: GateDecision | None, now: float, off: bool) -> Suggestion | None:
            """The model call and stage 2, at the request's time ``now`` (after stage 1 and its debounce); ``off``:
            the gate is off, and stage 2's features are computed for the log alone."""
            if outdated():
                raise Cancelled("stale")
            if not token.wait(self.service.wait_loaded, timeout=30):
                recorder.failed(suggestion_id, "model still loading")
                return None
            if outdated():  # changed or closed during the debounce or the model's load: no model call
                raise Cancelled("stale")
            suggestion = self.service.complete(ctx, settings, token)
            if suggestion.result is None:
                recorder.cancelled(suggestion_id, suggestion.skipped_reason or "skipped")
                return None
            r = suggestion.result
            self.counts["generated"] += 1
            recorder.generated(suggestion_id, suggestion.text, suggestion.model or self.service.status.name,
                               suggestion.policy, suggestion.latency_ms, len(r.token_ids), r.layers_per_token,
                               r.stop_reason, suggestion.details)
            if outdated():
                raise Cancelled("stale")
            if token.cancelled:  # superseded: not hidden either
                raise Cancelled(token.reason)
            second = None
            if (gate is not None or off) and suggestion.text:
                logprobs, stop_probs, layers = suggestion.shown_scores()
                scores = dict(logprobs=logprobs, stop_probs=stop_probs,
                              layers=layers if suggestion.policy == "dynamic" else None,
                              n_layers=suggestion.n_layers or getattr(self.service.runtime, "n_layers", 0), uri=uri,
                              now=now)
                if gate is not None:
                    second = self._gate_decision(2, lambda: gate.after(ctx, suggestion.text, settings, stage1=first,
                                                                       trigger=trigger, **scores))
                elif (unscored := self._gate_decision(2, lambda: self.gate.ungated(ctx, suggestion.text,
                                                                                    **scores))) is not None:
                    ungated["features"] = unscored.details()
            if second is not None:
                recorder.gated(suggestion_id, 2, second.decision, second.score, second.threshold,
                               second.model_version, second.details())
                if not second.show:
                    self.counts["hidden"] += 1
                    return None
            if token.cancelled:
                raise Cancelled(token.reason)
            if suggestion.text:
                keys["shown"] = self.gate.shown_key(ctx)  # here on the worker, not as the answer goes out
            return suggestion

        future, token = self.scheduler.submit(uri, recorder.logged_job(suggestion_id, job, "completion"))
        return PendingRequest(suggestion_id, future, token, doc, version, times, selected, keys, ungated, position)

    def answered_nothing(self, pending: PendingRequest, uri: str) -> None:
        """On the event loop, as a request's answer goes out with nothing to show (empty, hidden, skipped): for a
        client that reports no shows, the open completion of ``uri`` ends: rejected where the user typed something
        else, ``UNDECIDED`` (rejected ``ignored``) where they typed along it (nothing newer carries their decision: the
        user typed on by hand). The editor's list is replaced all the same; Neovim's menu closes. Left open, a
        suggestion typed over or dismissed with nothing after it ended cancelled with the session, and was not counted
        shown, where the same one ended by a newer suggestion counted a rejection. Where the document changed since
        the request, its next request ends it."""
        doc = pending.document
        if (doc is None or self.documents.get(uri) is not doc or doc.version != pending.version
                or "completion" in self.ledger.reports_shows):
            return
        ended = self.ledger.supersede("completion", uri, typed_along(self.ledger, doc, uri, pending.position),
                                      carried=False)
        if ended:
            self.recorder.superseded(ended)

    def _gate_decision(self, stage: int, decide: Callable[[], T]) -> T | None:
        """A stage's decision, or None when deciding failed: the request then goes on ungated (generated and shown),
        as without a gate. A failure (a damaged prior read from telemetry, say) failed every request, invoked ones
        too; it is logged once a session, with its traceback."""
        try:
            return decide()
        except Exception:
            self.counts["gate_failed"] += 1
            if self.counts["gate_failed"] == 1:
                log.warning("acceptance gate: stage %d failed; this request and any other that fails so go on "
                            "ungated", stage, exc_info=True)
            return None

    def issue(self, pending: PendingRequest, suggestion: Suggestion, uri: str) -> bool:
        """On the event loop, as the answer goes out: register the suggestion (rejecting the unresolved one it
        replaces) and let the gate remember it as shown; or, when the document changed (or was reopened) after the
        job's last look, log it cancelled and return False: no answer for text the editor no longer has.

        The gate learns it here, not when generated: a suggestion cancelled or stale by now never reached the user
        (CUPS, which the gate learned from, counts only what was shown). Replays stay exact: an accelerated one waits
        for each answer before its next request, whose stage 1 therefore always sees this."""
        doc = pending.document
        if doc is None or self.documents.get(uri) is not doc or doc.version != pending.version:
            self.recorder.cancelled(pending.suggestion_id, "stale")
            return False
        self.counts["issued"] += 1
        if (details := pending.ungated.get("features")) is not None:
            self.recorder.gated(pending.suggestion_id, 2, "show", None, None, None, details)
        # after a selected entry the text starts where the document has none of it yet: no start to type along from
        start = suggestion.context.position if pending.selected is None else None
        superseded = self.ledger.issue(IssuedSuggestion(
            pending.suggestion_id, "completion", uri, pending.version, suggestion.text,
            selected_units=utf16_len(pending.selected.text) if pending.selected is not None else 0,
            start=(start.line, start.character) if start is not None else None),
            typed=typed_along(self.ledger, doc, uri, start))
        if superseded:
            self.recorder.superseded(superseded)
        if suggestion.text:
            self.gate.shown(uri, suggestion.context, suggestion.text, now=pending.times.get("requested"),
                            key=pending.keys.get("shown"))
        return True
