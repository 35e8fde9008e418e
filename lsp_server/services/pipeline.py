"""A completion request from start to finish, without pygls: the features only adapt LSP to this.

request() runs on the event loop and only queues work; everything slow runs on the inference
executor. Results computed for a document version that is no longer current are dropped.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future
from dataclasses import dataclass

from lsp_server.config import Settings
from lsp_server.services.completion import CompletionService, Suggestion
from lsp_server.services.documents import DocumentStore
from lsp_server.services.ledger import IssuedSuggestion, SuggestionLedger
from lsp_server.services.positions import Position
from lsp_server.services.recorder import SessionRecorder
from lsp_server.services.scheduler import Cancelled, CancelToken, InferenceScheduler

log = logging.getLogger("tact.pipeline")


@dataclass
class PendingRequest:
    suggestion_id: str
    future: Future  # -> Suggestion | None
    token: CancelToken


class CompletionPipeline:
    def __init__(self, documents: DocumentStore, service: CompletionService, scheduler: InferenceScheduler,
                 ledger: SuggestionLedger, recorder: SessionRecorder) -> None:
        self.documents = documents
        self.service = service
        self.scheduler = scheduler
        self.ledger = ledger
        self.recorder = recorder

    def request(self, uri: str, position: Position, trigger: str, settings: Settings) -> PendingRequest | None:
        """Queue a completion for the document as it is now; None when there is nothing to complete."""
        doc = self.documents.get(uri)
        if doc is None:
            log.warning("completion requested for a document that is not open: %s", uri)
            return None
        if not settings.enable:
            return None
        version = doc.version
        suggestion_id = self.ledger.new_id()
        recorder = self.recorder

        def job(token: CancelToken) -> Suggestion | None:
            current, index = doc.indexed_snapshot()
            if token.cancelled or current != version:  # superseded or outdated while queued: no model call
                recorder.requested(suggestion_id, "completion", uri, version, position.line, position.character, trigger, {})
                raise Cancelled(token.reason if token.cancelled else "stale")
            ctx = self.service.context(index, doc.language_id, position, settings)
            recorder.requested(suggestion_id, "completion", uri, version, ctx.position.line, ctx.position.character,
                               trigger, ctx.summary())
            if doc.is_binary:
                recorder.cancelled(suggestion_id, "binary")
                return None
            if not self.service.wait_loaded(timeout=30):
                recorder.failed(suggestion_id, "model still loading")
                return None
            suggestion = self.service.complete(ctx, settings, token)
            if suggestion.result is None:
                recorder.cancelled(suggestion_id, suggestion.skipped_reason or "skipped")
                return None
            r = suggestion.result
            recorder.generated(suggestion_id, suggestion.text, self.service.status.name, suggestion.policy,
                               suggestion.latency_ms, len(r.token_ids), r.layers_per_token, r.stop_reason,
                               suggestion.details)
            if doc.version != version:
                raise Cancelled("stale")
            return suggestion

        def run(token: CancelToken) -> Suggestion | None:
            try:
                return job(token)
            except Cancelled as exc:
                recorder.cancelled(suggestion_id, exc.reason)
                raise
            except Exception as exc:
                log.warning("completion failed", exc_info=True)
                recorder.failed(suggestion_id, f"{type(exc).__name__}: {exc}")
                return None

        future, token = self.scheduler.submit(uri, run)
        return PendingRequest(suggestion_id, future, token)

    def issue(self, pending: PendingRequest, suggestion: Suggestion, uri: str) -> None:
        """The suggestion goes to the editor: register it, and reject the unresolved one it replaces."""
        superseded = self.ledger.issue(IssuedSuggestion(pending.suggestion_id, "completion", uri,
                                                        self.documents.get(uri).version if uri in self.documents else -1,
                                                        suggestion.text))
        if superseded:
            self.recorder.rejected(superseded, "superseded")
