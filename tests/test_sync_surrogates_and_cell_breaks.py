"""Text and notebook sync, a seventh look (2026-12-06)."""

from __future__ import annotations

import sqlite3
from types import SimpleNamespace

from lsprotocol import types as T

from lsp_server.features import text_sync
from lsp_server.services.documents import DocumentStore
from lsp_server.services.ledger import SuggestionLedger
from lsp_server.services.scheduler import InferenceScheduler
from lsp_server.services.undo_watch import UndoWatch
from lsp_server.services.notebooks import NotebookStore, _end_before_breaks
from lsp_server.services.recorder import SessionRecorder
from telemetry import TelemetryStore
from telemetry.reconstruct import build_script


def test_halves_of_a_character_sent_apart_are_recorded_as_their_edits_replay(tmp_path):
    """A client may send the two halves of a surrogate pair in two messages (a lone half is valid JSON). Stored, each
    half became U+FFFD in the opened text and in the edit, but the snapshot at close joined them into the character:
    the logged edits no longer rebuilt the logged text, and replay marked the document unverified."""
    handlers = {}
    text_sync.register(SimpleNamespace(feature=lambda name, options=None: lambda fn: handlers.setdefault(name, fn)))
    path = tmp_path / "telemetry.sqlite3"
    store = TelemetryStore(path)
    recorder = SessionRecorder(store)
    recorder.session_started("client", "1", "0", {}, {}, None)
    server = SimpleNamespace(documents=DocumentStore(), recorder=recorder, ledger=SuggestionLedger(), scheduler=InferenceScheduler(),
                         undo_watch=UndoWatch())
    uri = "file:///a.py"
    handlers[T.TEXT_DOCUMENT_DID_OPEN](server, T.DidOpenTextDocumentParams(
        T.TextDocumentItem(uri=uri, language_id="python", version=1, text="x = '\ud83d'\n")))  # a lone high half
    handlers[T.TEXT_DOCUMENT_DID_CHANGE](server, T.DidChangeTextDocumentParams(
        text_document=T.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[T.TextDocumentContentChangePartial(range=T.Range(T.Position(0, 6), T.Position(0, 6)),
                                                            text="\ude00")]))  # its low half
    assert server.documents.get(uri).text == "x = '\ud83d\ude00'\n"  # as the editor holds it: two UTF-16 units
    handlers[T.TEXT_DOCUMENT_DID_CLOSE](server, T.DidCloseTextDocumentParams(T.TextDocumentIdentifier(uri)))
    recorder.session_ended("done")
    store.close()
    conn = sqlite3.connect(path)
    try:
        snapshot = conn.execute("SELECT text FROM documents WHERE kind = 'snapshot'").fetchone()[0]
        script = build_script(conn, conn.execute("SELECT id FROM sessions").fetchone()[0])
    finally:
        conn.close()
    assert snapshot == "x = '\ufffd\ufffd'\n"  # each half alone, as in the edit: positions hold
    assert script.verified == {uri: True} and not script.issues, script.issues


def test_the_text_before_a_cells_trailing_line_breaks():
    for text in ("", "a", "a\n", "a\r\n\n", "\n\n", "x" + "\n" * 10_000, "x\r" * 3 + "\r\n" * 5_000, "\r" * 9000):
        assert _end_before_breaks(text) == len(text.rstrip("\r\n")), repr(text[:8])
        assert _end_before_breaks(text, chunk=3) == len(text.rstrip("\r\n"))
    store = NotebookStore()
    store.open("nb", "jupyter-notebook", 1, ["c1", "c2"])
    texts = {"c1": ("python", "import os\n" + "\n" * 100_000), "c2": ("python", "x = ")}
    assert store.earlier_cells("c2", texts.get, "python", 4000).startswith("import os")
