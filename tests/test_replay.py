"""Offline replay: a recorded session re-run against a real server, deterministic, with overrides; bad input."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import pytest

from lsp_server.cli import main
from lsp_server.services.documents import DocumentStore
from lsp_server.services.positions import Range
from lsp_server.services.recorder import pending_edit_dict
from telemetry import (
    DocumentClosed,
    DocumentOpened,
    DocumentSnapshot,
    EditEvent,
    SessionStarted,
    SuggestionRequested,
    TelemetryStore,
)
from telemetry.oracle import Oracle
from telemetry.reader import list_sessions, open_readonly
from telemetry.reconstruct import APPROXIMATE, EXACT, INFERRED, Request, build_script
from telemetry.replay import ReplayOptions, _decide, replay, turned_down
from telemetry.text import position_at


# -- the oracle ---------------------------------------------------------------------------------------

def script_of(db, session: str = "s"):
    """The replay script of one session of the database."""
    conn = open_readonly(db)
    try:
        return build_script(conn, session)
    finally:
        conn.close()


def test_oracle_accepts_a_first_line_that_matches_what_was_typed():
    oracle = Oracle()
    assert oracle.accepts("open(path) as f:", "open(path) as f:\n        return")
    assert oracle.accepts("open(path)", "open(path) as f:")  # a correct start of the line
    assert oracle.accepts("open(path) as f:\n    junk", "open(path) as f:")  # only the first line counts
    assert oracle.accepts("open(pth) as f:", "open(path) as f:")  # edit similarity 0.94
    assert not oracle.accepts("close(x)", "open(path) as f:")
    assert not oracle.accepts("", "open(path)")
    assert not oracle.accepts("   \n", "open(path)")
    assert not oracle.accepts("open(path) as g", "open")  # longer than what was typed, not similar enough


def test_oracle_is_settable():
    assert not Oracle(similarity=0.99).accepts("open(pth) as f:", "open(path) as f:")
    exact = Oracle(match="exact")
    assert not exact.accepts("open(path)", "open(path) as f:")
    assert exact.accepts(" open(path) as f: ", "open(path) as f:")
    with pytest.raises(ValueError):
        Oracle(match="fuzzy")
    with pytest.raises(ValueError):
        Oracle(similarity=1.5)
    with pytest.raises(ValueError):
        Oracle(min_chars=0)
    assert not Oracle().accepts(")", "):")  # too short to count, though a prefix
    assert Oracle(min_chars=1).accepts(")", "):")
    assert Oracle.chars_saved("open(path)", "open(path) as f:") == len("open(path)")


def _request(logged: dict | None, reference: str = "open(path) as f:") -> Request:
    return Request("s1", "file:///a.py", 3, 0, 4, "automatic", 0.0, EXACT, 4, reference, logged)


def test_logged_outcome_is_reused_only_for_the_same_suggestion_decided_by_the_programmer():
    oracle = Oracle()
    rejected = {"text": "open(path) as f:", "outcome": "rejected", "reject_reason": "dismissed"}
    assert _decide(_request(rejected), "open(path) as f:", oracle)[:2] == ("logged", "rejected")
    assert _decide(_request(rejected), "open(path)", oracle)[:2] == ("oracle", "accepted")  # another text
    # Shown and typed through: the server ended it (a newer suggestion, its document's close) or the programmer typed
    # it to its end. The same keystrokes end it so again: the logged outcome, though the oracle would accept it, and
    # the server's own rejections are not sent (they came after the next request's gate decision).
    for reason in ("superseded", "documentClosed", "ignored"):
        ended = {**rejected, "reject_reason": reason}
        assert _decide(_request(ended), "open(path) as f:", oracle)[:2] == ("logged", "rejected"), reason
        assert _decide(_request(ended), "open(path)", oracle)[:2] == ("oracle", "accepted")  # another text
        assert turned_down("rejected", "logged", ended) == (None if reason != "ignored" else "ignored")
    assert turned_down("rejected", "logged", rejected) == "dismissed"
    accepted = {"text": "xyz", "outcome": "accepted", "accepted_length": 3}
    assert _decide(_request(accepted), "xyz", oracle) == ("logged", "accepted", 3, 3)
    partial = {"text": "open(path) junk", "outcome": "partially_accepted", "accepted_length": 5}
    assert _decide(_request(partial), "open(path) junk", oracle) == ("logged", "partially_accepted", 5, 5)
    assert _decide(_request(None), "nothing like it", oracle)[:2] == ("oracle", "rejected")


# -- rebuilding the text a request saw ------------------------------------------------------------------

def test_script_rebuilds_text_inside_coalesced_edits(tmp_path):
    """A word typed as one coalesced edit with requests after each key: exact with the logged pending edit,
    inferred from the cursor for recordings made before it was logged."""
    db = tmp_path / "t.sqlite3"
    uri = "file:///a.py"
    with TelemetryStore(db) as store:
        store.record(SessionStarted("s", "c", "1", "0.1.0", {}, {}, ts=100.0))
        store.record(DocumentOpened("s", uri, 1, "python", "x = \n", ts=100.0))
        for k in range(1, 4):  # typing "abc" at 0:4, a request after each key
            pending = {"start_line": 0, "start_character": 4, "end_line": 0, "end_character": 4, "removed_text": "",
                       "inserted_text": "abc"[:k], "ts_start": 101.0, "ts": 101.0 + k}
            store.record(SuggestionRequested("s", f"r{k}", "completion", uri, 1 + k, 0, 4 + k,
                                             pending_edit=pending if k != 2 else None, ts=101.2 + k))
        store.record(EditEvent("s", uri, 4, 0, 4, 0, 4, "", "abc", 101.0, 3, ts=103.0))
        store.record(SuggestionRequested("s", "r4", "completion", uri, 4, 0, 7, ts=104.0))
    conn = sqlite3.connect(db)
    with conn:  # r2 as an older server logged it: no pending_edit at all
        conn.execute("UPDATE suggestion_events SET payload = json_remove(payload, '$.pending_edit')"
                     " WHERE suggestion_id = 'r2'")
    conn.close()
    script = script_of(db)
    fidelity = {r.suggestion_id: r.fidelity for r in script.requests}
    assert fidelity == {"r1": EXACT, "r2": INFERRED, "r3": EXACT, "r4": EXACT}
    text = "x = \n"
    seen = {}
    for step in script.steps:
        if step.kind == "change":
            text = text[: step.start_offset] + step.inserted + text[step.end_offset:]
        elif step.kind == "request":
            seen[step.request.suggestion_id] = text
    assert seen == {"r1": "x = a\n", "r2": "x = ab\n", "r3": "x = abc\n", "r4": "x = abc\n"}
    assert script.final_texts == {uri: "x = abc\n"}
    # What the programmer typed next, for the oracle: the rest of the word, then the rest of the line.
    assert {r.suggestion_id: r.reference for r in script.requests} == {"r1": "bc", "r2": "c", "r3": "", "r4": ""}
    assert APPROXIMATE not in fidelity.values()


class _Editor:
    """Types into the server's own document store and logs what the server logs (finished edits, each request with
    its pending edit, the snapshot at close), keeping the text each request really saw."""

    def __init__(self, db, text: str, uri: str = "file:///a.py") -> None:
        self.db, self.uri, self.t = db, uri, 100.0
        self.store = TelemetryStore(db)
        self.docs = DocumentStore(coalesce_s=1.0)
        self.seen: dict[str, str] = {}  # request id -> the editor's text when it was made
        self.legacy: list[str] = []  # requests logged as before pending edits were: no pending_edit key
        self.store.record(SessionStarted("s", "c", "1", "0.1.0", {}, {}, ts=self.t))
        self.docs.open(uri, "python", 1, text)
        self.store.record(DocumentOpened("s", uri, 1, "python", text, ts=self.t))

    def change(self, *changes: tuple[int, int, str], pause: float = 0.1) -> None:
        """One didChange: each (start, end, text) in str offsets of the text as that change sees it."""
        doc = self.docs.get(self.uri)
        self.t += pause
        text, ranges = doc.text, []
        for a, b, new in changes:
            ranges.append((Range.of(*position_at(text, a), *position_at(text, b)), new))
            text = text[:a] + new + text[b:]
        self._log(self.docs.change(self.uri, doc.version + 1, ranges, self.t).finalized)

    def request(self, sid: str, offset: int, pending: str = "logged", kind: str = "completion") -> None:
        """``pending``: ``logged`` (as now), ``no version`` (before its version was logged) or ``absent``."""
        doc = self.docs.get(self.uri)
        self.t += 0.01
        pe = pending_edit_dict(doc.history.pending)
        if pe is not None and pending == "no version":
            del pe["version"]
        if pending == "absent":
            self.legacy.append(sid)
        self.seen[sid] = doc.text
        line, character = position_at(doc.text, offset)
        self.store.record(SuggestionRequested("s", sid, kind, self.uri, doc.version, line, character,
                                              pending_edit=pe, ts=self.t))

    def close(self) -> None:
        doc = self.docs.get(self.uri)
        self.t += 0.1
        self._log(self.docs.close(self.uri))
        self.store.record(DocumentSnapshot("s", self.uri, *doc.snapshot(), ts=self.t))
        self.store.record(DocumentClosed("s", self.uri, ts=self.t))
        self.store.close()
        conn = sqlite3.connect(self.db)
        with conn:
            for sid in self.legacy:
                conn.execute("UPDATE suggestion_events SET payload = json_remove(payload, '$.pending_edit')"
                             " WHERE suggestion_id = ?", [sid])
        conn.close()

    def _log(self, records) -> None:
        for r in records:
            self.store.record(EditEvent("s", r.uri, r.version, r.start.line, r.start.character, r.end.line,
                                        r.end.character, r.removed_text, r.inserted_text, r.ts_start, r.keystrokes,
                                        ts=r.ts_end))

    def rebuild(self):
        """The replay script, and the text each request sees when its steps are sent."""
        script = script_of(self.db)
        texts, seen = {}, {}
        for step in script.steps:
            if step.kind == "open":
                texts[step.uri] = step.text
            elif step.kind == "change":
                texts[step.uri] = step.apply(texts[step.uri])
            elif step.kind == "request":
                seen[step.request.suggestion_id] = texts[step.uri]
        return script, seen

    def assert_replayed_exactly(self, requests: int) -> None:
        """Every request sees the editor's text, all ``requests`` of them exact, nothing resynced or unverified."""
        script, seen = self.rebuild()
        assert seen == self.seen
        assert script.fidelity_counts()[EXACT] == requests
        assert script.issues == [] and all(script.verified.values())


@pytest.mark.parametrize("pending", ["logged", "no version"])
def test_a_change_that_changes_nothing_does_not_apply_the_pending_edit_twice(tmp_path, pending):
    """The version rises but the pending edit stays as it was (and older recordings lack its version): once it is
    finished and applied, the request's copy of it must not be applied again."""
    editor = _Editor(tmp_path / "t.sqlite3", "ab\n")
    editor.change((2, 2, "X"))
    editor.change((0, 2, "ab"))  # e.g. a formatter rewriting a line as it was
    editor.request("r1", 3, pending)
    editor.change((0, 0, "Y"), pause=3.0)  # elsewhere, later: finishes the "X" edit
    editor.close()
    editor.assert_replayed_exactly(1)


@pytest.mark.parametrize("pending", ["logged", "no version"])
def test_multi_cursor_typing_is_replayed_as_one_version(tmp_path, pending):
    """Each didChange types at two cursors: two edits with one version, the text at that version has both."""
    editor = _Editor(tmp_path / "t.sqlite3", "a = 1\nb = 2\n")
    editor.change((5, 5, "x"), (12, 12, "x"))
    editor.request("r1", 13, pending)
    editor.change((6, 6, "y"), (14, 14, "y"))
    editor.request("r2", 15, pending)
    editor.close()  # its snapshot is at the version of the last two edits
    editor.assert_replayed_exactly(2)


def test_typing_goes_on_at_one_of_several_cursors(tmp_path):
    """A multi-cursor change finishes one edit and leaves the other pending; typing then goes on there alone."""
    editor = _Editor(tmp_path / "t.sqlite3", "a = 1\nb = 2\n")
    editor.change((5, 5, "x"), (12, 12, "x"))
    editor.request("r1", 13)
    editor.change((13, 13, "y"))  # at the second cursor only: its edit goes on after r1
    editor.request("r2", 14)
    editor.close()
    editor.assert_replayed_exactly(2)


def test_a_lost_edit_is_not_verified(tmp_path):
    """Replay copies the close snapshot in where the edits miss it; the edits alone did not reproduce it."""
    editor = _Editor(tmp_path / "t.sqlite3", "abc\n")
    editor.change((3, 3, "X"))
    editor.change((0, 0, "Y"), pause=3.0)
    editor.close()
    conn = sqlite3.connect(editor.db)
    with conn:
        assert conn.execute("DELETE FROM edits WHERE inserted_text = 'X'").rowcount == 1
    conn.close()
    script, _ = editor.rebuild()
    assert script.verified == {editor.uri: False}
    assert any("do not reproduce" in issue for issue in script.issues)


def test_a_document_reopened_after_a_lost_edit_is_not_verified(tmp_path):
    """Each open period of a document is checked against its own close snapshot; the last one's verdict replaced
    the earlier ones', so a document whose first period lost an edit was called verified once reopened."""
    db, uri = tmp_path / "t.sqlite3", "file:///a.py"
    with TelemetryStore(db) as store:
        store.record(SessionStarted("s", "c", "1", "0.1.0", {}, {}, ts=100.0))
        store.record(DocumentOpened("s", uri, 1, "python", "abc\n", ts=100.0))
        store.record(EditEvent("s", uri, 2, 0, 3, 0, 3, "", "X", 101.0, ts=101.0))  # lost below
        store.record(DocumentSnapshot("s", uri, 2, "abcX\n", ts=102.0))
        store.record(DocumentClosed("s", uri, ts=102.0))
        store.record(DocumentOpened("s", uri, 1, "python", "abcX\n", ts=103.0))
        store.record(EditEvent("s", uri, 2, 0, 0, 0, 0, "", "Y", 104.0, ts=104.0))
        store.record(DocumentSnapshot("s", uri, 2, "YabcX\n", ts=105.0))
        store.record(DocumentClosed("s", uri, ts=105.0))
    conn = sqlite3.connect(db)
    with conn:
        assert conn.execute("DELETE FROM edits WHERE inserted_text = 'X'").rowcount == 1
    conn.close()
    script = script_of(db)
    assert script.verified == {uri: False}
    assert any("do not reproduce" in issue for issue in script.issues)


def test_inferred_text_counts_a_crlf_as_one_line_break(tmp_path):
    """Recordings without pending edits: the text at the cursor inside an edit that typed a CRLF."""
    editor = _Editor(tmp_path / "t.sqlite3", "A\r\n")
    editor.change((1, 1, "x"))
    editor.change((2, 2, "\r\n"))
    editor.request("r1", 4, "absent")  # at the start of the new line
    editor.change((4, 4, "y"))
    editor.request("r2", 5, "absent")
    editor.change((5, 5, "z"))  # the edit goes on: r1 and r2 fall inside it
    editor.close()
    script, seen = editor.rebuild()
    assert seen == editor.seen
    assert {r.suggestion_id: r.fidelity for r in script.requests} == {"r1": INFERRED, "r2": INFERRED}


def test_changes_are_sent_as_positions_the_server_applies_alike_with_mixed_line_breaks(tmp_path):
    """A change rebuilt between the CR and the LF of a CRLF has no LSP position: it was sent as the line's end, and
    the replaying server removed or kept a break the recording did not, so every later request saw other text."""
    editor = _Editor(tmp_path / "t.sqlite3", "a\r\nb = 1\n")
    editor.change((1, 3, "\r"))  # a formatter turning one CRLF into a lone CR
    editor.change((3, 3, "c"), pause=3.0)
    editor.request("r1", 4)
    editor.change((1, 1, "\n"), pause=3.0)  # and back: a CR joined by an LF typed after it
    editor.request("r2", 3)
    editor.close()
    script, seen = editor.rebuild()
    assert seen == editor.seen  # the script's own offsets were right all along
    server = DocumentStore()
    for step in script.steps:  # what the replaying server does with what it is sent
        if step.kind == "open":
            server.open(step.uri, "python", step.version, step.text)
        elif step.kind == "change":
            server.change(step.uri, step.version, [(Range.of(*step.start, *step.end), step.inserted)])
        elif step.kind == "request":
            assert server.get(step.uri).text == editor.seen[step.request.suggestion_id]


def test_a_document_opened_without_a_language_is_replayed_without_one(tmp_path):
    """A client may open a document with languageId "" (the server keeps it so); replay opened it as Python, whose
    context and gate features differ, and the replaying server hid a suggestion the recorded one showed."""
    from telemetry.replay import _Driver

    db = tmp_path / "t.sqlite3"
    with TelemetryStore(db) as store:
        store.record(SessionStarted("s", "c", "1", "0.1.0", {}, {}, ts=100.0))
        store.record(DocumentOpened("s", "file:///notes", 1, "", "def f(x):\n", ts=100.0))
        store.record(DocumentOpened("s", "file:///a.py", 1, "python", "x = 1\n", ts=101.0))
    script = script_of(db)
    assert [(s.uri, s.language_id) for s in script.steps] == [("file:///notes", ""), ("file:///a.py", "python")]

    class Client:
        opened: list = []

        def did_open(self, uri, text, version, language_id):
            self.opened.append((uri, language_id))

    client = Client()
    _Driver(client, script, ReplayOptions(), None, None).run()
    assert client.opened == [("file:///notes", ""), ("file:///a.py", "python")]


# -- replaying a simulated session against the real server ----------------------------------------------

def _edit_rows(db, client: str) -> list[tuple]:
    """The coalesced edits of the sessions ``client`` recorded: range and text, in order (times left out)."""
    conn = open_readonly(db)
    try:
        return conn.execute("SELECT e.uri, e.start_line, e.start_character, e.end_line, e.end_character,"
                            " e.removed_text, e.inserted_text FROM edits e JOIN sessions s ON s.id = e.session_id"
                            " WHERE s.client_name = ? ORDER BY e.ts, e.seq", [client]).fetchall()
    finally:
        conn.close()


def test_a_replay_groups_keystrokes_into_edits_by_the_recorded_clock(tiny_lm_dir, tmp_path):
    """Two keystrokes at one place three seconds apart are two edits, and the next-edit predictor sees them so;
    an accelerated replay sent them milliseconds apart and its server, grouping by its own clock, made one edit of
    them: the next-edit request saw another history than the recorded one."""
    editor = _Editor(tmp_path / "t.sqlite3", "x = 1\n")
    editor.change((5, 5, "a"))
    editor.change((6, 6, "b"), pause=3.0)  # at the end of the "a" edit, but after a pause: a new edit
    editor.request("n1", 7, kind="next_edit")
    editor.close()
    recorded = _edit_rows(editor.db, "c")
    assert [r[-1] for r in recorded] == ["a", "b"]
    out = tmp_path / "out.sqlite3"
    (res,) = replay(editor.db, out, options=ReplayOptions(model=str(tiny_lm_dir)))
    assert res.complete and [o.kind for o in res.outcomes] == ["next_edit"]
    assert _edit_rows(out, "tact-replay") == recorded
    conn = open_readonly(out)
    try:
        (payload,) = conn.execute("SELECT payload FROM suggestion_events"
                                  " WHERE type = 'suggestion_requested'").fetchone()
    finally:
        conn.close()
    assert json.loads(payload)["pending_edit"]["inserted_text"] == "b"  # the history's last edit, as recorded


def test_a_replay_starts_the_gate_from_the_prior_its_recording_had(tiny_lm_dir, tmp_path):
    """The gate seeds the user's accepts and rejects from the server's database at start. Recorded, that database held
    the user's earlier sessions; a replay's server has only its new output, so stage 1 saw another user. The replay
    gives its server the source database's prior as the recorded session found it: earlier sessions only, not the
    demo's or the simulator's."""
    import time

    from telemetry import SuggestionAccepted, SuggestionRejected, SuggestionShown
    from telemetry.reader import DEMO_CLIENT
    from telemetry.simulate import TypingStyle, run_simulation

    from models.acceptance.features import CONTEXT_FEATURES

    db = tmp_path / "desk.sqlite3"

    def session(store, sid: str, client: str, t: float, outcomes: str, start: bool = True) -> None:
        if start:
            store.record(SessionStarted(sid, client, "1", "0.1.0", {}, {}, ts=t))
        for n, outcome in enumerate(outcomes):  # a: accepted, r: rejected
            s = f"{sid}-{n}"
            store.record(SuggestionRequested(sid, s, "completion", "file:///w/a.py", 1, 0, 0, ts=t + n + 0.1))
            store.record(SuggestionShown(sid, s, ts=t + n + 0.2))
            store.record(SuggestionAccepted(sid, s, 3, ts=t + n + 0.5) if outcome == "a"
                         else SuggestionRejected(sid, s, "typedOver", ts=t + n + 0.5))

    now = time.time()
    with TelemetryStore(db) as store:
        session(store, "earlier", "vscode", now - 600, "aarar")
        session(store, "demo", DEMO_CLIENT, now - 300, "aaaa")
        session(store, "beside", "vscode", now - 100, "")  # another window, still open when the recording started
    source = tmp_path / "sample.py"
    source.write_text("def read_lines(path):\n    with open(path) as f:\n        return f.readlines()\n",
                      encoding="utf-8")
    figures = run_simulation([source], db, model=str(tiny_lm_dir), settings={"stopThreshold": 1.01, "maxNewTokens": 8},
                             seed=3, limit=40, style=TypingStyle(typo_p=0.0, revisit_p=0.0, debounce_s=0.25))
    assert figures["requests"] > 0
    with TelemetryStore(db) as store:  # what came after the recording's start is not in its prior
        session(store, "beside", "vscode", time.time() + 30, "aaa", start=False)
        session(store, "later", "vscode", time.time() + 60, "aaaaaaa")
    recorded = figures["session_id"]
    out = tmp_path / "out.sqlite3"
    (res,) = replay(db, out, session=recorded, options=ReplayOptions(model=str(tiny_lm_dir)))
    assert res.complete

    def prior_and_stage1(path, session_id, where: str, arg: str):
        """The session's gate prior, and the first stage-1 features of the requests ``where`` picks."""
        conn = open_readonly(path)
        try:
            (models,) = conn.execute("SELECT models FROM sessions WHERE id = ?", [session_id]).fetchone()
            (sid, details) = conn.execute("SELECT s.id, d.details FROM decisions d JOIN suggestions s ON s.id ="
                                          f" d.suggestion_id WHERE d.stage = 1 AND {where} ORDER BY s.requested_at"
                                          " LIMIT 1", [arg]).fetchone()
        finally:
            conn.close()
        gate = json.loads(models)["acceptance"]
        assert gate["active"]
        features = dict(zip(CONTEXT_FEATURES, json.loads(details)["features"]))
        return (gate["userAccepted"], gate["userRejected"]), sid, features

    prior, first_id, first = prior_and_stage1(db, recorded, "d.session_id = ?", recorded)
    replayed_prior, _, replayed_first = prior_and_stage1(  # the same request, replayed
        out, res.session_id, "s.id = (SELECT suggestion_id FROM replay_suggestions WHERE source_suggestion_id = ?)",
        first_id)
    assert prior == (3, 2)  # the earlier session's; the demo's never count
    assert replayed_prior == prior
    for name in ("prev_accepted", "prev_rejected", "user_acceptance_rate", "log_user_decisions"):
        assert replayed_first[name] == first[name], name
    assert replayed_first["log_seconds_since_outcome"] == pytest.approx(first["log_seconds_since_outcome"], abs=1e-3)
    assert first["prev_rejected"] == 1.0  # the earlier session ended on a rejection

@pytest.fixture(scope="module")
def replays(simulated_session, tiny_lm_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("replays")
    source = simulated_session["database"]
    same = ReplayOptions(model=str(tiny_lm_dir))
    first = replay(source, folder / "first.sqlite3", options=same)
    second = replay(source, folder / "second.sqlite3", options=same)
    override = replay(source, folder / "full.sqlite3",
                      options=ReplayOptions(model=str(tiny_lm_dir), overrides={"decodingPolicy": "full"}))
    return {"folder": folder, "first": first, "second": second, "override": override}


def test_replay_twice_gives_the_same_suggestions_and_outcomes(replays, simulated_session):
    (a,), (b,) = replays["first"], replays["second"]
    assert a.complete and b.complete and a.source_complete
    assert a.replayed == a.requests == simulated_session["figures"]["requests"]
    assert a.fidelity == {"exact": a.requests, "inferred": 0, "approximate": 0}
    assert a.suggestions > 0
    assert a.decisions() == b.decisions()
    rows, gates = [], []
    for name in ("first", "second"):
        conn = open_readonly(replays["folder"] / f"{name}.sqlite3")
        try:
            rows.append(conn.execute("SELECT line, character, text, outcome, accepted_length FROM suggestions"
                                     " ORDER BY requested_at").fetchall())
            # The acceptance gate (when a model is installed) decides alike too: its timing features see the
            # recorded clock (tact/replayClock), not how fast the replay ran.
            gates.append(conn.execute("SELECT s.line, s.character, d.stage, d.decision, d.score FROM decisions d"
                                      " JOIN suggestions s ON s.id = d.suggestion_id ORDER BY s.requested_at, d.stage"
                                      ).fetchall())
        finally:
            conn.close()
    assert rows[0] == rows[1] and len(rows[0]) == a.requests
    assert gates[0] == gates[1]
    # The recording and the replay agree on what was suggested where the settings are the same.
    logged = {s["id"]: s["text"] for s in _suggestions(simulated_session["database"])}
    same_text = sum(1 for o in a.outcomes if o.text and logged.get(o.request.suggestion_id) == o.text)
    assert same_text >= 0.9 * a.suggestions


def _suggestions(db):
    conn = open_readonly(db)
    try:
        from telemetry.reader import suggestions

        return suggestions(conn)
    finally:
        conn.close()


def test_replay_with_an_override_records_it(replays, simulated_session):
    (res,) = replays["override"]
    assert res.complete and res.settings["decodingPolicy"] == "full"
    conn = open_readonly(replays["folder"] / "full.sqlite3")
    try:
        (session,) = list_sessions(conn)
        assert session["settings"]["decodingPolicy"] == "full"
        assert session["client_name"] == "tact-replay"
        assert {p for (p,) in conn.execute("SELECT DISTINCT policy FROM suggestions WHERE policy IS NOT NULL")} == {"full"}
        run = conn.execute("SELECT source_session_id, overrides, complete FROM replay_runs").fetchone()
        assert json.loads(run[1]) == {"decodingPolicy": "full"} and run[2] == 1
        bases = dict(conn.execute("SELECT basis, COUNT(*) FROM replay_suggestions GROUP BY basis").fetchall())
        assert sum(bases.values()) == res.requests
    finally:
        conn.close()
    conn = open_readonly(simulated_session["database"])
    try:
        assert run[0] == list_sessions(conn)[0]["id"]
        recorded = list_sessions(conn)[0]["settings"]["decodingPolicy"]
    finally:
        conn.close()
    assert recorded != "full"


def test_replay_at_a_recorded_pace(simulated_session, tiny_lm_dir, tmp_path):
    (res,) = replay(simulated_session["database"], tmp_path / "paced.sqlite3",
                    options=ReplayOptions(model=str(tiny_lm_dir), speed=5.0, limit=12))
    assert res.replayed == 12 and not res.complete
    assert sum(res.fidelity.values()) == 12  # of the requests replayed, not of the whole recording
    assert not res.notes  # paced, the replay imposes nothing (the gate's debounce stays as recorded)
    assert res.wall_s >= (res.outcomes[-1].request.ts - res.outcomes[0].request.ts) / 5.0
    conn = open_readonly(tmp_path / "paced.sqlite3")
    try:
        assert conn.execute("SELECT speed, complete FROM replay_runs").fetchone() == (5.0, 0)
    finally:
        conn.close()


def test_replay_refuses_to_overwrite(replays, simulated_session, capsys):
    rc = main(["replay", str(simulated_session["database"]), "-o", str(replays["folder"] / "first.sqlite3")])
    assert rc == 2
    assert "already exists" in capsys.readouterr().err


# -- bad input: one clear line, no traceback -----------------------------------------------------------

@pytest.fixture
def bad_databases(tmp_path):
    corrupt = tmp_path / "corrupt.sqlite3"
    corrupt.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 40)
    foreign = tmp_path / "foreign.sqlite3"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE people (name TEXT)")
    newer = tmp_path / "newer.sqlite3"
    with sqlite3.connect(newer) as conn:
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute("INSERT INTO meta VALUES ('schema_version', '99')")
    return {"corrupt": (corrupt, "not a readable SQLite database"),
            "foreign": (foreign, "not a Tact telemetry database"),
            "newer": (newer, "newer than"),
            "missing": (tmp_path / "missing.sqlite3", "no telemetry database")}


@pytest.mark.parametrize("kind", ["corrupt", "foreign", "newer", "missing"])
@pytest.mark.parametrize("command", ["replay", "report"])
def test_bad_databases_give_a_clear_error(bad_databases, kind, command, tmp_path, capsys):
    path, message = bad_databases[kind]
    rc = main([command, str(path), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_a_database_of_the_older_schema_is_replayed_from_an_upgraded_copy(simulated_session, tiny_lm_dir, tmp_path):
    """`tact replay` refused it, and its advice (start a server with it) also applied that server's retention, which
    removed the old sessions. `tact report` read it from an upgraded copy; so does replay now, and the file is left
    as it was."""
    import shutil

    older = tmp_path / "older.sqlite3"
    shutil.copy(simulated_session["database"], older)
    with sqlite3.connect(older) as conn:  # schema 1 had no notebooks, no accepts taken back or kept
        conn.execute("DROP TABLE notebooks")
        conn.execute("ALTER TABLE suggestions DROP COLUMN undone_at")
        conn.execute("ALTER TABLE suggestions DROP COLUMN kept_length")
        conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    conn.close()
    notes = []
    (result,) = replay(older, tmp_path / "out.sqlite3", options=ReplayOptions(model=str(tiny_lm_dir)),
                       progress=notes.append)
    assert result.complete and result.replayed == simulated_session["figures"]["requests"]
    assert any("schema version 1" in note for note in notes)
    with sqlite3.connect(older) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("1",)
    conn.close()


def test_bad_database_from_the_real_command_line(bad_databases, tmp_path):
    path, message = bad_databases["corrupt"]
    proc = subprocess.run([sys.executable, "-m", "lsp_server.cli", "replay", str(path), "-o", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_bad_settings_give_a_clear_error(bad_databases, capsys):
    path, _ = bad_databases["foreign"]
    assert main(["replay", str(path), "--set", "decodingPolicy=fastest"]) == 2
    assert "decodingPolicy" in capsys.readouterr().err
    assert main(["replay", str(path), "--set", "noSuchSetting=1"]) == 2
    assert "unknown setting" in capsys.readouterr().err
    assert main(["replay", str(path), "--set", "maxNewTokens=many"]) == 2
    assert "needs a whole number" in capsys.readouterr().err


def test_report_compares_a_recording_with_its_replay(replays, simulated_session, tmp_path):
    from telemetry.report import PLOTS, report

    result = report(simulated_session["database"], tmp_path / "cmp", against=replays["folder"] / "full.sqlite3")
    recorded, replayed = result["summaries"]
    assert not result["partial"]
    assert replayed["replay"] and replayed["requests"] == recorded["requests"]
    page = (tmp_path / "cmp" / "index.html").read_text(encoding="utf-8")
    assert all(f"src='{name}'" in page and (tmp_path / "cmp" / name).is_file() for name, _, _ in PLOTS)


def test_a_replay_is_drawn_on_its_recording_s_time_axis(simulated_session, tiny_lm_dir, tmp_path):
    """A recording is drawn from its session's start, its replay was drawn from its first request: where the
    programmer worked five minutes before asking, every replayed point came five minutes early beside it."""
    import shutil

    from telemetry.report import load

    recorded = tmp_path / "late.sqlite3"
    shutil.copy(simulated_session["database"], recorded)
    with sqlite3.connect(recorded) as conn:
        conn.execute("UPDATE sessions SET started_at = started_at - 300")
    conn.close()
    replay(recorded, tmp_path / "late-replay.sqlite3", options=ReplayOptions(model=str(tiny_lm_dir), limit=6))
    replayed = sorted(r["minute"] for r in load(tmp_path / "late-replay.sqlite3", "B").rows)
    drawn = sorted(r["minute"] for r in load(recorded, "A").rows)[:len(replayed)]
    assert len(replayed) == 6 and drawn[0] > 4.5  # about five minutes in (a request can come just before the start is logged)
    assert replayed == pytest.approx(drawn)


# -- what a failed replay says, and leaves behind ----------------------------------------------------------------

def test_no_such_session_names_the_sessions_there(tmp_path, capsys):
    from telemetry_fakes import write_synthetic_db

    db = tmp_path / "two.sqlite3"
    write_synthetic_db(db, seed=1, requests=5, session_id="desk-1")
    write_synthetic_db(db, seed=2, requests=5, session_id="desk-2")
    assert main(["replay", str(db), "--session", "zzz", "-o", str(tmp_path / "out.sqlite3")]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert f"no session 'zzz' in {db}, which holds 2 sessions: desk-1, desk-2" in line
    assert f"`tact report {db} -o DIR` lists them" in line
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith("out.")]


def test_a_model_that_is_none_is_refused_before_anything_is_written(tmp_path, capsys):
    from telemetry_fakes import write_synthetic_db

    db = tmp_path / "s.sqlite3"
    write_synthetic_db(db, seed=1, requests=5)
    assert main(["replay", str(db), "--model", str(tmp_path / "nonexistent")]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line == (f"tact replay: error: model directory {tmp_path / 'nonexistent'} does not exist; pass --model DIR "
                    "with a model directory, or train one with `tact train lm`")
    assert not [p.name for p in tmp_path.iterdir() if ".replay-" in p.name]  # no empty s.replay-<time>.sqlite3


def test_a_replay_whose_server_has_no_model_leaves_nothing_behind(tiny_lm_dir, tmp_path, capsys):
    import shutil

    from telemetry_fakes import write_synthetic_db

    db = tmp_path / "s.sqlite3"
    write_synthetic_db(db, seed=1, requests=5)
    broken = tmp_path / "broken"
    shutil.copytree(tiny_lm_dir, broken)
    (broken / "exit_heads.safetensors").write_bytes(b"abc")  # a model directory, whose server still has no model
    out = tmp_path / "new" / "dir" / "out.sqlite3"
    assert main(["replay", str(db), "--model", str(broken), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "the server has no model" in err and "exit_heads.safetensors" in err
    assert not (tmp_path / "new").exists()
