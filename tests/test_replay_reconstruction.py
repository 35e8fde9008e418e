"""Replay, a ninth look: the versions, the edits and the targets a replay rebuilds from a recording."""

from __future__ import annotations

import sqlite3

from lsp_server.services.documents import DocumentError, DocumentStore
from lsp_server.services.positions import Range
from tests.test_replay import _Editor, script_of

URI = "file:///project/a.py"


def _served(script) -> tuple[dict[str, str], list[str]]:
    """Drive a server's document store with ``script`` as the replay does, its clock pinned to the recording's: the
    text each request sees, and the edits the server logs. A change it drops as stale fails the test."""
    server, seen, edits = DocumentStore(coalesce_s=1.0), {}, []
    for step in script.steps:
        if step.kind == "open":
            server.open(step.uri, "python", step.version, step.text)
        elif step.kind == "change":
            try:
                finished = server.change(step.uri, step.version, [(Range.of(*step.start, *step.end), step.inserted)],
                                         step.ts).finalized
            except DocumentError as exc:
                raise AssertionError(f"the server drops the replayed change: {exc}") from None
            edits += [r.inserted_text for r in finished]
        elif step.kind == "request":
            request = step.request
            if request.version > server.get(request.uri).version:  # the replay's catch-up: an empty change
                server.change(request.uri, request.version, [], step.ts)
            seen[request.suggestion_id] = server.get(request.uri).text
        elif step.kind == "close":
            edits += [r.inserted_text for r in server.close(step.uri)]
    return seen, edits


def _logged_edits(db) -> list[str]:
    with sqlite3.connect(db) as conn:
        rows = [text for (text,) in conn.execute("SELECT inserted_text FROM edits ORDER BY ts")]
    conn.close()
    return rows


def test_a_change_after_a_request_is_numbered_above_the_version_the_request_brought_the_server_to(tmp_path):
    """The replay brings the server to a request's logged version first (an empty change). A later rebuilt change
    numbered at or below it was dropped by the server as stale, every later request saw the wrong text, and the
    replay still said all was exact. Here: `y` typed, `z` typed and deleted, `y` deleted (the edit still being typed
    then changes nothing), `w` typed, a request after each."""
    editor = _Editor(tmp_path / "s.sqlite3", "x = 1\n", URI)
    editor.change((6, 6, "y"))
    editor.request("r1", 7)
    editor.change((7, 7, "z"))
    editor.change((7, 8, ""))
    editor.request("r2", 7)
    editor.change((6, 7, ""))
    editor.request("r3", 6)
    editor.change((6, 6, "w"))
    editor.request("r4", 7)
    editor.close()
    seen, _ = _served(script_of(editor.db))
    assert seen == editor.seen


def test_a_hidden_suggestion_over_a_selected_entry_is_judged_as_a_shown_one(tmp_path):
    """A shown suggestion is judged with the untyped rest of the completion entry before it; one the server hid was
    judged alone, so the same text got opposite verdicts."""
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
    editor = _Editor(tmp_path / "s.sqlite3", text, URI)
    cursor = text.index("len(") + 4
    editor.request("ne1", cursor, kind="next_edit")
    for n, ch in enumerate("values"):
        editor.change((cursor, cursor, ch), pause=0.15)
        cursor += 1
        if n == 1:
            editor.request("c1", cursor)  # the editor asks at a pause in the typing
    editor.close()
    (next_edit,) = [r for r in script_of(editor.db).requests if r.kind == "next_edit"]
    assert next_edit.next_text == "def f(values):\n    return len(values)\n"


def test_keystrokes_that_cancelled_out_keep_the_replayed_edit_whole(tmp_path):
    """`x` typed and backspaced inside one coalesced edit (`abc`) left versions but no text to send: the replaying
    server saw a gap longer than the window and logged two edits (55 of 300 random sessions' edit streams differed,
    a throwaway script; 8 now)."""
    editor = _Editor(tmp_path / "s.sqlite3", "", URI)
    editor.change((0, 0, "a"))
    editor.change((1, 1, "b"))
    editor.request("r1", 2)
    editor.change((2, 2, "x"), pause=0.8)
    editor.change((2, 3, ""), pause=0.8)
    editor.request("r2", 2)  # typed and backspaced: the text as at r1
    editor.change((2, 2, "c"), pause=0.8)  # 2.4 s after `b`, each keystroke under a second apart
    editor.close()
    assert _logged_edits(editor.db) == ["abc"]
    _, edits = _served(script_of(editor.db))
    assert edits == ["abc"]


def test_a_change_that_changes_nothing_keeps_the_edit_open():
    store = DocumentStore(coalesce_s=1.0)
    store.open(URI, "python", 1, "")
    store.change(URI, 2, [(Range.of(0, 0, 0, 0), "a")], 100.0)
    store.change(URI, 3, [(Range.of(0, 1, 0, 1), "")], 100.8)  # a keystroke that changed nothing
    assert store.change(URI, 4, [(Range.of(0, 1, 0, 1), "b")], 101.6).finalized == []  # 1.6 s after `a`: one edit
    assert [r.inserted_text for r in store.close(URI)] == ["ab"]


def _clock_went_back(path, *, snapshot: str) -> None:
    """Three edits of one document; the wall clock went back 3 s between the second and the third version, so the
    timeline (ordered by time) holds v3 first. A snapshot at v4 says what the text was."""
    from telemetry import DocumentOpened, DocumentSnapshot, EditEvent, SessionStarted, SuggestionRequested, TelemetryStore

    uri = "file:///w/a.py"
    with TelemetryStore(path) as store:
        store.record(SessionStarted("s", "vscode", "1", "0.1.0", {}, {}, ts=1.0))
        store.record(DocumentOpened("s", uri, 1, "python", "abc\n", ts=2.0))
        store.record(EditEvent("s", uri, 2, 0, 3, 0, 3, "", "1", ts_start=10.0, ts=10.0))
        store.record(EditEvent("s", uri, 3, 0, 4, 0, 4, "", "2", ts_start=8.0, ts=8.0))  # after the clock went back
        store.record(SuggestionRequested("s", "r1", "completion", uri, 3, 0, 5, ts=8.5))
        store.record(EditEvent("s", uri, 4, 0, 5, 0, 5, "", "3", ts_start=9.0, ts=9.0))
        store.record(DocumentSnapshot("s", uri, 4, snapshot, ts=9.5))


def _script(path):
    from telemetry.reader import open_readonly
    from telemetry.reconstruct import build_script

    conn = open_readonly(path)
    try:
        return build_script(conn, "s")
    finally:
        conn.close()


def test_edits_logged_out_of_order_by_a_clock_set_back_are_applied_in_version_order(tmp_path):
    """Applied by time, v3 came before v2 and did not fit: the text rebuilt was another, still called exact."""
    db = tmp_path / "s.sqlite3"
    _clock_went_back(db, snapshot="abc123\n")
    script = _script(db)
    assert script.final_texts == {"file:///w/a.py": "abc123\n"} and script.verified["file:///w/a.py"]
    (request,) = script.requests
    assert request.fidelity == "exact" and request.offset == 5  # after "abc12"
    assert any("out of their versions' order" in issue for issue in script.issues)


def test_requests_before_a_snapshot_the_rebuilt_text_misses_are_counted_approximate(tmp_path):
    """The snapshot resyncs the text, but the requests since the last check were at a text gone wrong: they were
    counted exact, and the replay complete."""
    db = tmp_path / "s.sqlite3"
    _clock_went_back(db, snapshot="abc12 and more\n")
    script = _script(db)
    (request,) = script.requests
    assert request.fidelity == "approximate"
    assert any("differs from the snapshot at version 4" in issue and "1 requests before it counted approximate"
               in issue for issue in script.issues)
