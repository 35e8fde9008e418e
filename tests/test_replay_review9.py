"""Replay, a ninth look: versions of the rebuilt changes against the versions requests bring the server to."""

from __future__ import annotations

from lsp_server.services.documents import DocumentError, DocumentStore
from lsp_server.services.positions import Range
from lsp_server.services.recorder import pending_edit_dict
from telemetry import (DocumentClosed, DocumentOpened, DocumentSnapshot, EditEvent, SessionStarted,
                       SuggestionRequested, TelemetryStore)
from telemetry.reader import open_readonly
from telemetry.reconstruct import build_script
from telemetry.text import position_at

URI = "file:///project/a.py"


def _record(db) -> dict[str, str]:
    """A session: `y` typed (request), `z` typed and deleted (request), `y` deleted (request: the edit still being
    typed now changes nothing), `w` typed (request). Returns each request's text as the server had it."""
    store, docs, t = TelemetryStore(db), DocumentStore(coalesce_s=1.0), 100.0
    store.record(SessionStarted("s", "c", "1", "0.1.0", {}, {}, ts=t))
    docs.open(URI, "python", 1, "x = 1\n")
    store.record(DocumentOpened("s", URI, 1, "python", "x = 1\n", ts=t))
    seen = {}

    def log(finished):
        for r in finished:
            store.record(EditEvent("s", r.uri, r.version, r.start.line, r.start.character, r.end.line,
                                   r.end.character, r.removed_text, r.inserted_text, r.ts_start, r.keystrokes,
                                   ts=r.ts_end))

    def key(a, b, inserted):
        nonlocal t
        t += 0.1
        doc = docs.get(URI)
        log(docs.change(URI, doc.version + 1, [(Range.of(*position_at(doc.text, a), *position_at(doc.text, b)),
                                                 inserted)], t).finalized)

    def request(sid, cursor):
        nonlocal t
        t += 0.01
        doc = docs.get(URI)
        seen[sid] = doc.text
        store.record(SuggestionRequested("s", sid, "completion", URI, doc.version, *position_at(doc.text, cursor),
                                         pending_edit=pending_edit_dict(doc.history.pending), ts=t))

    key(6, 6, "y"); request("r1", 7)
    key(7, 7, "z"); key(7, 8, ""); request("r2", 7)
    key(6, 7, ""); request("r3", 6)
    key(6, 6, "w"); request("r4", 7)
    t += 0.1
    doc = docs.get(URI)
    log(docs.close(URI))
    store.record(DocumentSnapshot("s", URI, *doc.snapshot(), ts=t))
    store.record(DocumentClosed("s", URI, ts=t))
    store.close()
    return seen


def test_a_change_after_a_request_is_numbered_above_the_version_the_request_brought_the_server_to(tmp_path):
    """The replay brings the server to a request's logged version first (an empty change). A later rebuilt change
    numbered at or below it was dropped by the server as stale, every later request saw the wrong text, and the
    replay still said all was exact."""
    seen = _record(tmp_path / "s.sqlite3")
    conn = open_readonly(tmp_path / "s.sqlite3")
    script = build_script(conn, "s")
    conn.close()
    server = DocumentStore()
    got = {}
    for step in script.steps:  # as the replay drives a server
        if step.kind == "open":
            server.open(step.uri, "python", step.version, step.text)
        elif step.kind == "change":
            try:
                server.change(step.uri, step.version, [(Range.of(*step.start, *step.end), step.inserted)], step.ts)
            except DocumentError as exc:
                raise AssertionError(f"the server drops the replayed change: {exc}") from None
        elif step.kind == "request":
            request = step.request
            if request.version > server.get(request.uri).version:
                server.change(request.uri, request.version, [], step.ts)
            got[request.suggestion_id] = server.get(request.uri).text
    assert got == seen
