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


def test_a_hidden_suggestion_over_a_selected_entry_is_judged_as_a_shown_one(tmp_path):
    """A shown suggestion is judged with the untyped rest of the completion entry before it; one the server hid was
    judged alone, so the same text got opposite verdicts."""
    import sqlite3

    from telemetry.oracle import Oracle
    from telemetry.reconstruct import Request
    from telemetry.replay import ReplayOutcome, _decide, _label_unanswered

    selected = {"start_line": 0, "start_character": 4, "end_line": 0, "end_character": 6, "text": "items"}
    request = Request("r1", URI, 3, 0, 6, "automatic", 100.0, offset=6, reference="ems()", selected=selected)
    oracle = Oracle()
    assert _decide(request, "()", oracle, lead="ems")[1] == "accepted"
    out = tmp_path / "out.sqlite3"
    with sqlite3.connect(out) as conn:
        conn.execute("CREATE TABLE suggestions (id TEXT, session_id TEXT, kind TEXT, uri TEXT, line INT, "
                     "character INT, text TEXT, outcome TEXT, requested_at REAL)")
        conn.execute("INSERT INTO suggestions VALUES ('n1', 'S', 'completion', ?, 0, 6, '()', 'hidden', 1.0)", [URI])
    conn.close()
    hidden = ReplayOutcome(request, None, "", "none", None, None, 0, 5.0, entry_rest="ems")
    _label_unanswered(out, "S", [hidden], oracle)
    assert (hidden.basis, hidden.would_accept) == ("hidden", True)


def test_a_next_edit_is_judged_against_the_whole_next_edit_also_when_a_completion_came_in_its_typing(tmp_path):
    """The next edit's target was the text after the first rebuilt change from the request on; an inline completion
    asked for while that edit was typed split it, and a prediction of the whole edit was judged wrong."""
    text = "def f(values):\n    return len()\n"
    db = tmp_path / "s.sqlite3"
    store, docs, t = TelemetryStore(db), DocumentStore(coalesce_s=1.0), 100.0
    store.record(SessionStarted("s", "c", "1", "0.1.0", {}, {}, ts=t))
    docs.open(URI, "python", 1, text)
    store.record(DocumentOpened("s", URI, 1, "python", text, ts=t))

    def log(finished):
        for r in finished:
            store.record(EditEvent("s", r.uri, r.version, r.start.line, r.start.character, r.end.line,
                                   r.end.character, r.removed_text, r.inserted_text, r.ts_start, r.keystrokes,
                                   ts=r.ts_end))

    def request(sid, kind, cursor):
        nonlocal t
        t += 0.01
        doc = docs.get(URI)
        store.record(SuggestionRequested("s", sid, kind, URI, doc.version, *position_at(doc.text, cursor),
                                         pending_edit=pending_edit_dict(doc.history.pending), ts=t))

    cursor = text.index("len(") + 4
    request("ne1", "next_edit", cursor)
    for n, ch in enumerate("values"):
        t += 0.15
        doc = docs.get(URI)
        at = position_at(doc.text, cursor)
        log(docs.change(URI, doc.version + 1, [(Range.of(*at, *at), ch)], t).finalized)
        cursor += 1
        if n == 1:
            request("c1", "completion", cursor)  # the editor asks at a pause in the typing
    t += 2
    doc = docs.get(URI)
    log(docs.close(URI))
    store.record(DocumentSnapshot("s", URI, *doc.snapshot(), ts=t))
    store.record(DocumentClosed("s", URI, ts=t))
    store.close()
    conn = open_readonly(db)
    script = build_script(conn, "s")
    conn.close()
    (next_edit,) = [r for r in script.requests if r.kind == "next_edit"]
    assert next_edit.next_text == "def f(values):\n    return len(values)\n"


def test_keystrokes_that_cancelled_out_keep_the_replayed_edit_whole(tmp_path):
    """`x` typed and backspaced inside one coalesced edit (`abc`) left versions but no text to send: the replaying
    server saw a gap longer than the window and logged two edits (55 of 300 random sessions' edit streams differed,
    a throwaway script; 8 now)."""
    db = tmp_path / "s.sqlite3"
    store, docs, t = TelemetryStore(db), DocumentStore(coalesce_s=1.0), 100.0
    store.record(SessionStarted("s", "c", "1", "0.1.0", {}, {}, ts=t))
    docs.open(URI, "python", 1, "")
    store.record(DocumentOpened("s", URI, 1, "python", "", ts=t))
    recorded = []

    def log(finished):
        for r in finished:
            recorded.append(r.inserted_text)
            store.record(EditEvent("s", r.uri, r.version, r.start.line, r.start.character, r.end.line,
                                   r.end.character, r.removed_text, r.inserted_text, r.ts_start, r.keystrokes,
                                   ts=r.ts_end))

    def key(dt, a, b, inserted):
        nonlocal t
        t += dt
        doc = docs.get(URI)
        log(docs.change(URI, doc.version + 1, [(Range.of(*position_at(doc.text, a), *position_at(doc.text, b)),
                                                 inserted)], t).finalized)

    def request(sid, cursor):
        nonlocal t
        t += 0.01
        doc = docs.get(URI)
        store.record(SuggestionRequested("s", sid, "completion", URI, doc.version, *position_at(doc.text, cursor),
                                         pending_edit=pending_edit_dict(doc.history.pending), ts=t))

    key(0.1, 0, 0, "a"); key(0.1, 1, 1, "b"); request("r1", 2)
    key(0.8, 2, 2, "x"); key(0.8, 2, 3, ""); request("r2", 2)  # typed and backspaced: the text as at r1
    key(0.8, 2, 2, "c")  # 2.4 s after `b`, each keystroke under a second apart
    t += 0.1
    doc = docs.get(URI)
    log(docs.close(URI))
    store.record(DocumentSnapshot("s", URI, *doc.snapshot(), ts=t))
    store.record(DocumentClosed("s", URI, ts=t))
    store.close()
    assert recorded == ["abc"]
    conn = open_readonly(db)
    script = build_script(conn, "s")
    conn.close()
    server, replayed = DocumentStore(coalesce_s=1.0), []
    for step in script.steps:  # as the replay drives a server, its clock pinned to the recording's
        if step.kind == "open":
            server.open(step.uri, "python", step.version, step.text)
        elif step.kind == "change":
            replayed += [r.inserted_text for r in server.change(
                step.uri, step.version, [(Range.of(*step.start, *step.end), step.inserted)], step.ts).finalized]
        elif step.kind == "request" and step.request.version > server.get(step.uri).version:
            server.change(step.uri, step.request.version, [], step.ts)
        elif step.kind == "close":
            replayed += [r.inserted_text for r in server.close(step.uri)]
    assert replayed == recorded


def test_a_change_that_changes_nothing_keeps_the_edit_open():
    store = DocumentStore(coalesce_s=1.0)
    store.open(URI, "python", 1, "")
    store.change(URI, 2, [(Range.of(0, 0, 0, 0), "a")], 100.0)
    store.change(URI, 3, [(Range.of(0, 1, 0, 1), "")], 100.8)  # a keystroke that changed nothing
    assert store.change(URI, 4, [(Range.of(0, 1, 0, 1), "b")], 101.6).finalized == []  # 1.6 s after `a`: one edit
    assert [r.inserted_text for r in store.close(URI)] == ["ab"]
