"""didOpen / didChange / didClose into the DocumentStore and the edit stream. A change for an unknown document
or an old version is logged and dropped; one whose range does not fit is clamped into the document and logged.
A didOpen for a document that is open already closes it first. A close rejects the suggestions still open in the
document ("documentClosed"): no client ends them then."""

from __future__ import annotations

import logging
import reprlib

from lsprotocol import types

from lsp_server.features.commands import record_accepted, record_accepted_again, record_kept, record_undone
from lsp_server.protocol import RejectReason
from lsp_server.services.documents import DocumentError
from lsp_server.services.ledger import UNDONE
from lsp_server.services.next_edit import NextEditService
from lsp_server.services.pipeline import written_suggestion
from lsp_server.services.positions import Range
from lsp_server.services.undo_watch import watch_accept

log = logging.getLogger("tact.documents")


def register(server) -> None:
    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls, params: types.DidOpenTextDocumentParams) -> None:
        open_document(ls, params.text_document)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls, params: types.DidChangeTextDocumentParams) -> None:
        change_document(ls, params.text_document.uri, params.text_document.version, params.content_changes)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls, params: types.DidCloseTextDocumentParams) -> None:
        close(ls, params.text_document.uri)


def open_document(ls, doc: types.TextDocumentItem) -> None:
    """A didOpen's document (a file's, or a notebook cell's) into the store and the edit stream."""
    language_id = doc.language_id
    if not isinstance(language_id, str):  # the protocol's deserializer lets a number or null through here
        if language_id is not None:
            log.warning("didOpen for %s: languageId %s is not a string, opened without a language", doc.uri, reprlib.repr(language_id))
        language_id = ""
    if doc.uri in ls.documents:  # opened twice without a close: what was typed in it is kept, as a close keeps it
        log.warning("didOpen for %s, which is open already: closed first", doc.uri)
        close(ls, doc.uri)
    ls.documents.open(doc.uri, language_id, doc.version, doc.text)
    ls.recorder.document_opened(doc.uri, doc.version, language_id, doc.text)


def change_document(ls, uri: str, version: int, content_changes) -> None:
    """A didChange's changes (a file's, or a notebook cell's) into the store; finished edits into the edit stream."""
    changes = []
    for change in content_changes:
        rng = getattr(change, "range", None)
        changes.append((Range.of(rng.start.line, rng.start.character, rng.end.line, rng.end.character) if rng else None,
                        change.text))
    try:
        result = ls.documents.change(uri, version, changes)
    except DocumentError as exc:
        log.warning("didChange ignored: %s", exc)
        return
    for adjusted in result.adjusted:
        log.warning("didChange for %s version %s: %s", uri, version, adjusted)
    ls.recorder.edits(result.finalized)
    stop_jobs(ls, uri)
    for suggestion_id, what, units in ls.undo_watch.changed(uri, result.applied, result.document.text):
        if what == UNDONE:
            record_undone(ls, suggestion_id)
        else:
            record_accepted_again(ls, suggestion_id, units)
    for item, units, until in ls.undo_watch.awaited(uri):  # next edits accepted before the change that applied them
        watch_accept(ls.undo_watch, ls.documents, item, units, until)
    record_kept(ls, ls.undo_watch.ended())  # the accepts whose window this change found passed
    written = written_suggestion(ls.ledger, ls.documents, uri, changes)
    if written is not None:
        record_accepted(ls, (written,), "an edit that wrote it", "completion")


def stop_jobs(ls, uri: str) -> None:
    """Cancel ``uri``'s completion and next-edit jobs: its text changed or closed, so their answers would be dropped
    as stale, and a running one held the one worker to its last token while other documents' requests waited."""
    ls.scheduler.cancel(uri, "stale")
    ls.scheduler.cancel(NextEditService.job_key(uri), "stale")


def close(ls, uri: str) -> None:
    """Forget ``uri``, its pending edit and its text recorded first (a reopen dropped the edit still being typed)."""
    doc = ls.documents.get(uri)
    ls.recorder.edits(ls.documents.close(uri))
    stop_jobs(ls, uri)
    record_kept(ls, ls.undo_watch.forget(uri))
    if doc is not None:  # the text replay must arrive at
        ls.recorder.document_snapshot(uri, *doc.snapshot())
    for ended in ls.ledger.close_document(uri, RejectReason.DOCUMENT_CLOSED.value):
        ls.recorder.superseded(ended)  # rejected, or cancelled where it was only listed
    ls.recorder.document_closed(uri)
