"""A replay's server groups the rebuilt changes into the edits its recording logged: same places, same text, as many.

The edit stream logs coalesced edits, not keystrokes, so replay sends fewer, larger changes than were typed. The
replaying server groups them with the clock the replay pins to the recording (``tact/replayClock``), so each change
must come where, and when, its keystrokes would have kept the recorded grouping.
"""

from __future__ import annotations

import queue

import pytest

from lsp_server.services.documents import DocumentStore
from lsp_server.services.positions import Range
from telemetry import SuggestionAccepted, SuggestionGenerated, SuggestionShown
from telemetry.replay import ReplayOptions, _Driver, replay
from telemetry.simulate import ACCEPT_COMMAND, DID_SHOW, REPLAY_CLOCK
from test_replay import _edit_rows, _Editor


class _PinnedServer:
    """The replaying server's side of edit grouping: its document store, grouping keystrokes by the clock the replay
    pins; the edit-expiry timer is taken to fire at every pin (it runs every half second, so any pin may meet it).
    Completions are answered with ``answers`` (request position -> (suggestion id, text))."""

    def __init__(self, answers: dict[tuple[int, int], tuple[str, str]] | None = None) -> None:
        self.now = 0.0
        self.store = DocumentStore(coalesce_s=1.0)
        self.store.clock = lambda: self.now
        self.edits: list[tuple] = []
        self.answers = answers or {}
        self.sent: list[tuple[str, float]] = []  # (what, the pinned clock when it came)

    def _log(self, records) -> None:
        self.edits.extend((r.start.line, r.start.character, r.end.line, r.end.character, r.removed_text,
                           r.inserted_text) for r in records)

    def did_open(self, uri, text, version, language_id):
        self.store.open(uri, language_id, version, text)

    def did_change(self, uri, version, changes):
        self.sent.append(("change", self.now))
        ranges = [(Range.of(c["range"]["start"]["line"], c["range"]["start"]["character"], c["range"]["end"]["line"],
                            c["range"]["end"]["character"]), c["text"]) for c in changes]
        self._log(self.store.change(uri, version, ranges).finalized)

    def notify(self, method, params):
        if method == REPLAY_CLOCK:
            self.now = params["ts"]
            self._log(self.store.expire())
        elif method == "textDocument/didClose":
            self._log(self.store.close(params["textDocument"]["uri"]))
        else:
            self.sent.append((method, self.now))

    def request_async(self, method, params):
        q: queue.Queue = queue.Queue()
        position = params.get("position") or {}
        answer = self.answers.get((position.get("line"), position.get("character")))
        items = [{"insertText": answer[1], "command": {"arguments": [answer[0]]}}] if answer else []
        q.put({"result": {"items": items}})
        return 0, q

    def request(self, method, params):
        self.sent.append((params.get("command", method), self.now))

    def cancel(self, msg_id):
        pass


def _replayed_edits(editor: _Editor, answers=None) -> tuple[list[tuple], _PinnedServer]:
    """The edits a replaying server logs for the editor's recording, and that server."""
    script, _ = editor.rebuild()
    server = _PinnedServer(answers)
    _Driver(server, script, ReplayOptions(), None, None).run()
    return server.edits, server


def _recorded_edits(editor: _Editor) -> list[tuple]:
    return [row[1:] for row in _edit_rows(editor.db, "c")]


def _closed_and_replayed_as_recorded(editor: _Editor, requests: int) -> list[tuple]:
    """Closes the editor, checks its ``requests`` requests are rebuilt exactly and that the replaying server logs the
    edits the recording logged; returns those edits."""
    editor.close()
    editor.assert_replayed_exactly(requests)
    recorded = _recorded_edits(editor)
    replayed, _ = _replayed_edits(editor)
    assert replayed == recorded
    return recorded


def test_a_word_retyped_on_a_revisit_is_not_joined_to_the_next_edit(tmp_path):
    """Going back to delete a word's last letter and typing it again changes nothing, so no edit is logged; a request
    made in between saw the letter deleted. The change rebuilt from there to the next logged edit, typed elsewhere,
    spanned both places, and the replaying server logged one edit from the revisit to the new typing."""
    editor = _Editor(tmp_path / "t.sqlite3", "abc = 1\nx\n")
    editor.change((9, 9, "y"))  # at the end of the last line
    editor.change((2, 3, ""), pause=2.0)  # back on the first line: "abc" -> "ab"
    editor.request("r1", 2)
    editor.change((2, 2, "c"))  # and the "c" again: the word is as it was
    editor.change((10, 10, "z"), pause=2.0)  # back at the end
    editor.request("r2", 11)
    recorded = _closed_and_replayed_as_recorded(editor, 2)
    assert [(r[0], r[1], r[-1]) for r in recorded] == [(1, 1, "y"), (1, 2, "z")]


def test_a_revisit_that_deletes_back_past_where_the_request_saw_it_is_undone_where_it_was(tmp_path):
    """The revisit goes on deleting after the request (its edit's start moves back) and then retypes the whole word."""
    editor = _Editor(tmp_path / "t.sqlite3", "abc = 1\nx\n")
    editor.change((9, 9, "y"))
    editor.change((2, 3, ""), pause=2.0)
    editor.request("r1", 2)
    editor.change((1, 2, ""))
    editor.change((0, 1, ""))
    editor.change((0, 0, "abc"))
    editor.request("r2", 3)  # the word is back: no edit pending
    editor.change((10, 10, "z"), pause=2.0)
    recorded = _closed_and_replayed_as_recorded(editor, 2)
    assert len(recorded) == 2


@pytest.mark.parametrize("tail", ["typed", "backspaced and retyped", "deleted forward"])
def test_an_edit_typed_on_after_a_request_stays_one_edit(tmp_path, tail):
    """Keystrokes 0.6 s apart are one edit (the window is 1 s). The part typed after the request reached the replay as
    one change at the edit's last keystroke, 1.8 s after the one before the request, and the pinned server split it."""
    editor = _Editor(tmp_path / "t.sqlite3", "x = ZZ\n")
    editor.change((4, 4, "a"))
    editor.request("r1", 5)
    if tail == "typed":
        keys = [(5, 5, "b"), (6, 6, "c"), (7, 7, "d")]
    elif tail == "backspaced and retyped":
        keys = [(4, 5, ""), (4, 4, "b"), (5, 5, "c")]
    else:
        keys = [(5, 6, ""), (5, 6, ""), (5, 5, "b")]
    for key in keys:
        editor.change(key, pause=0.6)
    recorded = _closed_and_replayed_as_recorded(editor, 1)
    assert len(recorded) == 1


def test_typing_the_letter_before_the_cursor_again_goes_on_at_the_cursor(tmp_path):
    """"r", a request, then "er": the smallest change from "r" to "rer" can insert "re" before the "r" as well as "er"
    after it, and the edit's start was taken: not where the typing ended, so the replaying server began a new edit."""
    editor = _Editor(tmp_path / "t.sqlite3", "x = \n")
    editor.change((4, 4, "r"))
    editor.request("r1", 5)
    editor.change((5, 5, "e"))
    editor.change((6, 6, "r"))
    recorded = _closed_and_replayed_as_recorded(editor, 1)
    assert [r[-1] for r in recorded] == ["rer"]


def test_an_edit_with_several_requests_in_it_stays_one_edit(tmp_path):
    """Two requests inside one slowly typed word: each part between them came as one change."""
    editor = _Editor(tmp_path / "t.sqlite3", "x = \n")
    editor.change((4, 4, "a"))
    editor.request("r1", 5)
    for offset, ch in ((5, "b"), (6, "c")):
        editor.change((offset, offset, ch), pause=0.7)
    editor.request("r2", 7)
    for offset, ch in ((7, "d"), (8, "e")):
        editor.change((offset, offset, ch), pause=0.7)
    recorded = _closed_and_replayed_as_recorded(editor, 2)
    assert [r[-1] for r in recorded] == ["abcde"]


def test_an_outcome_logged_after_the_next_keystroke_is_sent_after_it(tmp_path):
    """The editor reported an accept after the keystroke that followed it. Replay sent the outcome first, pinning the
    clock to the accept's time: the clock ran past the edit's window, the expiry timer closed the edit, and the next
    keystroke, pinned back in time, began another one."""
    editor = _Editor(tmp_path / "t.sqlite3", "x = \n")
    editor.change((4, 4, "a"))
    editor.request("r1", 5)
    generated_at = editor.t + 0.01
    editor.change((5, 5, "bc"), pause=0.5)  # the editor inserts the suggestion ...
    accepted_at = editor.t + 0.9  # ... and reports the accept late, after the next keystroke
    editor.change((7, 7, "d"), pause=0.3)
    editor.store.record(SuggestionGenerated("s", "r1", "bc", "m", "dynamic", 5.0, 2, ts=generated_at))
    editor.store.record(SuggestionShown("s", "r1", ts=generated_at))
    editor.store.record(SuggestionAccepted("s", "r1", 2, ts=accepted_at))
    editor.close()
    recorded = _recorded_edits(editor)
    assert [r[-1] for r in recorded] == ["abcd"]
    replayed, server = _replayed_edits(editor, answers={(0, 5): ("new-1", "bc")})
    pins = [at for _, at in server.sent]
    assert pins == sorted(pins)  # the clock never went back
    assert [what for what, _ in server.sent] == ["change", DID_SHOW, "change", "change", ACCEPT_COMMAND]
    assert server.sent[-1][1] == pytest.approx(accepted_at)
    assert replayed == recorded


def test_the_simulated_session_replays_to_its_recorded_edits(replays_of_the_simulation):
    """The shared simulated session revisits a word and retypes it; its replay logs the recorded edits."""
    recorded, replayed = replays_of_the_simulation
    assert len(recorded) >= 2
    assert replayed == recorded


@pytest.fixture(scope="module")
def replays_of_the_simulation(simulated_session, tiny_lm_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("replay-edits") / "out.sqlite3"
    (res,) = replay(simulated_session["database"], out, options=ReplayOptions(model=str(tiny_lm_dir)))
    assert res.complete
    client = _client_of(simulated_session["database"])
    return _edit_rows(simulated_session["database"], client), _edit_rows(out, "tact-replay")


def _client_of(db) -> str:
    from telemetry.reader import list_sessions, open_readonly

    conn = open_readonly(db)
    try:
        (session,) = list_sessions(conn)
    finally:
        conn.close()
    return session["client_name"]


def test_an_edit_typed_on_after_a_request_stays_one_edit_on_the_real_server(tiny_lm_dir, tmp_path):
    editor = _Editor(tmp_path / "t.sqlite3", "x = \n")
    editor.change((4, 4, "a"))
    editor.request("r1", 5)
    for offset, ch in ((5, "b"), (6, "c"), (7, "d")):
        editor.change((offset, offset, ch), pause=0.6)
    editor.close()
    recorded = _edit_rows(editor.db, "c")
    assert [r[-1] for r in recorded] == ["abcd"]
    out = tmp_path / "out.sqlite3"
    (res,) = replay(editor.db, out, options=ReplayOptions(model=str(tiny_lm_dir)))
    assert res.complete
    assert _edit_rows(out, "tact-replay") == recorded


def test_a_decision_sent_at_once_waits_for_one_queued_before_it():
    """A decision queued for after its own step, and a later step's decision due before that step's next one: the
    second was sent first, and the clock pin went back in time when the queued one followed."""
    import itertools
    from types import MethodType, SimpleNamespace

    from telemetry.replay import _Driver

    pins: list[float] = []
    driver = SimpleNamespace(later=[], _order=itertools.count(),
                             client=SimpleNamespace(notify=lambda method, params: pins.append(params["ts"])))
    for name in ("_decided", "_send_at", "_send_due"):
        setattr(driver, name, MethodType(getattr(_Driver, name), driver))
    driver._decided(10.5, 10.0, lambda: None)  # after its step's next one (10.0): queued
    driver._decided(10.8, 11.0, lambda: None)  # due before the next step (11.0): sent now
    assert pins == [10.5, 10.8] and driver.later == []
