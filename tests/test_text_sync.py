"""The text-sync adapter against the real document store and recorder (events kept in memory)."""

from __future__ import annotations

from types import SimpleNamespace

from lsprotocol import types

from lsp_server.features import text_sync
from lsp_server.services.documents import DocumentStore
from lsp_server.services.ledger import SuggestionLedger
from lsp_server.services.scheduler import InferenceScheduler
from lsp_server.services.undo_watch import UndoWatch
from lsp_server.services.recorder import SessionRecorder
from tests.telemetry_fakes import ListStore

URI = "file:///project/a.py"


def _handlers():
    handlers = {}
    text_sync.register(SimpleNamespace(feature=lambda name, options=None: lambda fn: handlers.setdefault(name, fn)))
    return handlers


def _open(version: int, text: str) -> types.DidOpenTextDocumentParams:
    return types.DidOpenTextDocumentParams(types.TextDocumentItem(uri=URI, language_id="python", version=version, text=text))


def test_a_second_did_open_keeps_what_was_typed_before_it():
    """The edit still being typed when a client opened the document again (without closing it) was dropped: the
    edit stream went from the first text to the second with the keystrokes between them missing."""
    handlers = _handlers()
    store = ListStore()
    ls = SimpleNamespace(documents=DocumentStore(), recorder=SessionRecorder(store), ledger=SuggestionLedger(), scheduler=InferenceScheduler(),
                         undo_watch=UndoWatch())
    handlers[types.TEXT_DOCUMENT_DID_OPEN](ls, _open(1, "x\n"))
    insert = types.TextDocumentContentChangePartial(range=types.Range(types.Position(0, 1), types.Position(0, 1)), text="yz")
    handlers[types.TEXT_DOCUMENT_DID_CHANGE](ls, types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=2), content_changes=[insert]))
    handlers[types.TEXT_DOCUMENT_DID_OPEN](ls, _open(3, "xyz = 1\n"))
    kinds = [type(e).__name__ for e in store.events]
    assert kinds == ["DocumentOpened", "EditEvent", "DocumentSnapshot", "DocumentClosed", "DocumentOpened"]
    edit, snapshot = store.events[1], store.events[2]
    assert (edit.version, edit.inserted_text, edit.removed_text) == (2, "yz", "")
    assert (snapshot.version, snapshot.text) == (2, "xyz\n")
    assert ls.documents.get(URI).snapshot() == (3, "xyz = 1\n")
