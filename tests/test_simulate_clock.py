"""A simulated session runs on the simulated programmer's clock: the server is told the simulated time before each
keystroke (tact/replayClock) and records it (``clientClock``). Its acceptance gate then reads a person's pace, not the
run's, and one seed gives one session: the gate's timing features read the wall clock before, so two accelerated runs
scored every request a little differently and went apart where a decision flipped."""

from __future__ import annotations

from telemetry.reader import open_readonly
from telemetry.simulate import TypingStyle, run_simulation
from tests.conftest import SIMULATED_SOURCE

SETTINGS = {"stopThreshold": 1.01, "maxNewTokens": 8}  # the tiny model needs stopThreshold > 1 to write anything


def _simulate(tiny_lm_dir, folder, name: str) -> tuple[dict, list, list, tuple]:
    source = folder / "sample.py"
    source.write_text(SIMULATED_SOURCE, encoding="utf-8")
    db = folder / f"{name}.sqlite3"
    figures = run_simulation([source], db, model=str(tiny_lm_dir), settings=SETTINGS, seed=5,
                             style=TypingStyle(typo_p=0.08, revisit_p=0.3, debounce_s=0.25), start_line=2)
    conn = open_readonly(db)
    try:
        suggestions = conn.execute("SELECT line, character, text, outcome, accepted_length, requested_at"
                                   " FROM suggestions ORDER BY requested_at").fetchall()
        decisions = conn.execute("SELECT s.line, s.character, d.stage, d.decision, d.score FROM decisions d"
                                 " JOIN suggestions s ON s.id = d.suggestion_id ORDER BY s.requested_at, d.stage"
                                 ).fetchall()
        session = conn.execute("SELECT started_at, ended_at FROM sessions").fetchone()
    finally:
        conn.close()
    return figures, suggestions, decisions, session


def test_one_seed_gives_one_session_with_the_gate_on_and_it_is_recorded_on_the_simulated_timeline(tiny_lm_dir,
                                                                                                  tmp_path):
    figures, suggestions, decisions, session = _simulate(tiny_lm_dir, tmp_path, "first")
    again, suggestions_again, decisions_again, _ = _simulate(tiny_lm_dir, tmp_path, "second")
    assert figures["requests"] > 20 and decisions, figures  # the gate decided (a model is installed)
    assert {d[3] for d in decisions} >= {"generate"}
    # the same requests, suggestions, outcomes, decisions and scores (the scores read the timing features)
    assert [s[:5] for s in suggestions] == [s[:5] for s in suggestions_again]
    assert decisions == decisions_again
    assert {k: again[k] for k in ("keystrokes", "requests", "suggestions", "accepted", "rejected")} == \
        {k: figures[k] for k in ("keystrokes", "requests", "suggestions", "accepted", "rejected")}
    # recorded at the simulated programmer's pace: the requests span the simulated time, which the run took a
    # fraction of
    span = suggestions[-1][5] - suggestions[0][5]
    assert figures["simulated_s"] > 5 * figures["wall_s"], figures
    assert 0.5 * figures["simulated_s"] < span <= figures["simulated_s"] + 1e-6, (span, figures)
    started, ended = session
    assert ended - started >= span


def test_a_recorder_with_a_clock_records_its_time_and_an_edit_its_keystrokes_times():
    from lsp_server.services.documents import DocumentStore, Range
    from lsp_server.services.positions import Position
    from lsp_server.services.recorder import SessionRecorder
    from tests.telemetry_fakes import ListStore

    store = ListStore()
    recorder = SessionRecorder(store)
    pinned = [1000.0]
    recorder.clock = lambda: pinned[0]
    docs = DocumentStore(coalesce_s=1.0)
    docs.clock = lambda: pinned[0]
    docs.records_by_clock = True
    docs.open("file:///a.py", "python", 1, "x = 1\n")
    recorder.document_opened("file:///a.py", 1, "python", "x = 1\n")
    for version, at in ((2, 1000.0), (3, 1000.4)):  # two keystrokes 0.4 s apart by the pinned clock: one edit
        pinned[0] = at
        end = Position(0, 5 + version - 2)
        docs.change("file:///a.py", version, [(Range(end, end), "0")])
    pinned[0] = 1005.0
    recorder.edits(docs.expire())  # finalized 4.6 s later: the edit keeps its keystrokes' times
    recorder.settings_changed({"a": 1})
    opened, edit, settings = store.events
    assert opened.ts == 1000.0 and settings.ts == 1005.0
    assert (edit.ts_start, edit.ts, edit.inserted_text) == (1000.0, 1000.4, "00")

    wall = DocumentStore()  # without records_by_clock: grouped by the clock, recorded at the wall clock's times
    wall.clock = lambda: 5.0
    wall.open("file:///b.py", "python", 1, "")
    start = Position(0, 0)
    wall.change("file:///b.py", 2, [(Range(start, start), "y")])
    (record,) = wall.flush("file:///b.py")
    assert record.ts_end > 1e9  # the wall clock (unix seconds), not the pinned 5.0


def test_a_replay_of_a_simulated_session_reads_the_times_its_gate_read(tiny_lm_dir, tmp_path):
    """The simulation recorded the times its gate read, and the replay pins them again: every gate decision comes
    out with the same score."""
    from telemetry.replay import ReplayOptions, replay

    _simulate(tiny_lm_dir, tmp_path, "recorded")
    (result,) = replay(tmp_path / "recorded.sqlite3", tmp_path / "replayed.sqlite3",
                       options=ReplayOptions(model=str(tiny_lm_dir)))
    assert result.complete

    def scores(db, source: bool) -> dict:
        conn = open_readonly(db)
        try:
            query = ("SELECT r.source_suggestion_id, d.stage, d.decision, d.score FROM decisions d"
                     " JOIN replay_suggestions r ON r.suggestion_id = d.suggestion_id") if source else \
                "SELECT suggestion_id, stage, decision, score FROM decisions"
            return {(sid, stage): (decision, score) for sid, stage, decision, score in conn.execute(query)}
        finally:
            conn.close()

    recorded, replayed = scores(tmp_path / "recorded.sqlite3", False), scores(tmp_path / "replayed.sqlite3", True)
    assert len(recorded) > 20 and replayed == recorded


def test_a_simulated_rejection_comes_at_the_keystroke_that_ends_the_suggestion(tiny_lm_dir, tmp_path):
    """As the editor reports it: a suggestion stays on screen until a keystroke types over it (or types it to its end,
    or a newer one replaces it). The simulation sent every rejection at the moment the suggestion was shown, so the
    gate's "time since the last outcome" read a reaction of zero seconds that no editor reports."""
    figures, _, _, _ = _simulate(tiny_lm_dir, tmp_path, "outcomes")
    conn = open_readonly(tmp_path / "outcomes.sqlite3")
    try:
        rows = conn.execute("SELECT shown_at, outcome_at, reject_reason FROM suggestions"
                            " WHERE outcome = 'rejected' AND shown_at IS NOT NULL").fetchall()
    finally:
        conn.close()
    reasons = {reason for _, _, reason in rows}
    assert figures["rejected"] > 5 and "typedOver" in reasons, (figures, reasons)
    assert reasons <= {"typedOver", "cursorMoved", "ignored", "superseded", "documentClosed"}
    assert all(outcome_at > shown_at for shown_at, outcome_at, _ in rows), rows  # after a keystroke's pause


def test_a_client_clock_that_runs_back_is_not_recorded(tiny_lm_dir, tmp_path):
    """A clientClock session's pins are the recorded times: one before what was already recorded is refused (the
    clock stays), or a request came before its document's opening and replay dropped it."""
    import time

    from telemetry.lsp_client import LspClient, change_at
    from telemetry.reader import session_timeline
    from telemetry.simulate import CLIENT_CLOCK, REPLAY_CLOCK, wait_ready
    from tests.lsp_support import server_command

    db, uri, now = tmp_path / "clock.sqlite3", "file:///t/a.py", time.time()
    client = LspClient(server_command(tiny_lm_dir, db))
    try:
        client.initialize({"tact": SETTINGS, CLIENT_CLOCK: True})
        wait_ready(client)
        client.notify(REPLAY_CLOCK, {"ts": now + 100})
        client.did_open(uri, "x = 1\n")
        client.notify(REPLAY_CLOCK, {"ts": now + 101})
        client.did_change(uri, 2, [change_at(1, 0, "a")])
        client.notify(REPLAY_CLOCK, {"ts": now + 50})  # back by 51 s: refused
        client.did_change(uri, 3, [change_at(1, 1, "b")])
        client.request("textDocument/inlineCompletion", {"textDocument": {"uri": uri},
                       "position": {"line": 1, "character": 2}, "context": {"triggerKind": 2}})
        client.notify(REPLAY_CLOCK, {"ts": now + 160})
        client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
    finally:
        client.shutdown()
    conn = open_readonly(db)
    try:
        (session_id,) = conn.execute("SELECT id FROM sessions").fetchone()
        timeline = session_timeline(conn, session_id)
    finally:
        conn.close()
    kinds = [item["type"] for item in timeline]
    assert kinds.index("document_opened") < kinds.index("suggestion_requested"), kinds
    assert [item["seq"] for item in timeline] == sorted(item["seq"] for item in timeline)  # time order is write order
    requested = next(item for item in timeline if item["type"] == "suggestion_requested")
    assert requested["ts"] == now + 101  # the clock stayed at the last time it was given
    assert timeline[-1]["ts"] == now + 160
