"""Simulated programmers: a real server records a session whose edits rebuild the typed file exactly."""

from __future__ import annotations

from telemetry.reader import list_sessions, open_readonly, session_timeline
from telemetry.reconstruct import EXACT, build_script
from telemetry.text import line_starts, offset_at


def _apply(text: str, edit: dict) -> str:
    starts = line_starts(text)
    a = offset_at(text, edit["start_line"], edit["start_character"], starts)
    b = offset_at(text, edit["end_line"], edit["end_character"], starts)
    assert text[a:b] == edit["removed_text"], "an edit's removed text must be what its range holds"
    return text[:a] + edit["inserted_text"] + text[b:]


def test_simulated_session_edits_reproduce_the_file(simulated_session):
    figures = simulated_session["figures"]
    assert figures["files_complete"] == 1
    assert figures["keystrokes"] > 50 and figures["requests"] > 20
    assert figures["typos"] > 0 and figures["revisits"] > 0  # deletions and revisits happened
    conn = open_readonly(simulated_session["database"])
    try:
        (session,) = list_sessions(conn)
        assert session["ended_at"] is not None and session["client_name"] == "tact-simulate"
        timeline = session_timeline(conn, session["id"])
        # Replaying the coalesced edits in order, each applied at its end time, rebuilds the file.
        text = None
        for item in timeline:
            if item["type"] == "document_opened":
                text = item["text"]
            elif item["type"] == "edit":
                text = _apply(text, item)
        assert text == simulated_session["text"]
        assert any(item["keystrokes"] > 1 for item in timeline if item["type"] == "edit")  # really coalesced
        # The server now logs the text at close, and the replay script arrives at it.
        snapshots = [i for i in timeline if i["type"] == "document_snapshot"]
        assert snapshots and snapshots[-1]["text"] == simulated_session["text"]
        script = build_script(conn, session["id"])
    finally:
        conn.close()
    (uri,) = script.final_texts
    assert script.final_texts[uri] == simulated_session["text"]
    assert script.verified == {uri: True}
    assert script.issues == []
    # Every request is replayed on the exact text it saw (the pending edit is logged with it).
    assert script.fidelity_counts()[EXACT] == len(script.requests) == figures["requests"]


def test_requests_in_the_middle_of_an_edit_carry_it(simulated_session):
    conn = open_readonly(simulated_session["database"])
    try:
        rows = conn.execute("SELECT json_extract(payload, '$.pending_edit') FROM suggestion_events"
                            " WHERE type = 'suggestion_requested'").fetchall()
    finally:
        conn.close()
    assert sum(1 for (pending,) in rows if pending) > len(rows) // 2
