"""Requests whose answer never reached the recording's editor: it cancelled them (`$/cancelRequest`, logged cancelled
`client`), or the server dropped them as their document changed first (`stale`). A replay sends and answers them as
recorded but shows none of them (`basis` `unshown`), for every client: shown and judged, a same-settings replay of a
session whose editor cancels on typing showed twice the suggestions its recording did."""

from __future__ import annotations

import queue
import sqlite3
from pathlib import Path

import pytest

from telemetry import (
    DocumentOpened,
    EditEvent,
    SessionEnded,
    SessionStarted,
    SuggestionCancelled,
    SuggestionGenerated,
    SuggestionRejected,
    SuggestionRequested,
    SuggestionShown,
    TelemetryStore,
    open_readonly,
)
from telemetry.reconstruct import build_script
from telemetry.replay import ReplayOptions, _Driver, replay
from telemetry.simulate import ACCEPT_COMMAND, DID_REJECT, DID_REJECT_NEXT_EDIT, DID_SHOW, DID_SHOW_NEXT_EDIT, NEXT_EDIT
from telemetry_fakes import WireClient

_URI = "file:///w/a.py"
_OPENED = "import os\n\n\ndef main():\n    "
# The tiny model answers with text only when it is never stopped early.
_SETTINGS = {"acceptanceGate": False, "stopThreshold": 1.01, "maxNewTokens": 8}
# How the request after each keystroke of "print(" ended in the recording; each suggestion's id is its ending's name.
# `client_late` was cancelled by the editor after the server had generated its text (`PendingRequest.abandon`);
# `client`, with no text logged, is where the tiny model has an answer (it has none after "p").
_NEVER_ANSWERED = ("client", "stale", "client_late")
_ENDINGS = ("empty", "stale", "typedOver", "client", "client_late", "sessionEnded")


def _record(db: Path, client_name: str, reports_shows: bool, next_edit: bool = False) -> None:
    """A session typing "print(" after the indent of ``main``, a completion requested after each keystroke and ended
    as ``_ENDINGS`` says; ``reports_shows``: the client reported the one suggestion it showed, as VS Code does.
    ``next_edit``: then a next edit asked for at the cursor, cancelled by the editor."""
    events: list = [SessionStarted("s", client_name, "1", "0.1.0", settings=dict(_SETTINGS), ts=100.0),
                    DocumentOpened("s", _URI, 1, "python", _OPENED, ts=100.0)]
    for k, (ch, ending) in enumerate(zip("print(", _ENDINGS)):
        ts, version, col = 101.0 + k, 2 + k, 4 + k
        events += [EditEvent("s", _URI, version, 4, col, 4, col, "", ch, ts_start=ts, ts=ts),
                   SuggestionRequested("s", ending, "completion", _URI, version, 4, col + 1, ts=ts + 0.1)]
        text = {"stale": "int(x)", "typedOver": "nt(x)", "empty": "", "client_late": "(x)"}.get(ending)
        if text is not None:
            events.append(SuggestionGenerated("s", ending, text, "m", "p", 5.0, 3, ts=ts + 0.2))
        if ending == "typedOver":
            if reports_shows:
                events.append(SuggestionShown("s", ending, ts=ts + 0.3))
            events.append(SuggestionRejected("s", ending, "typedOver", ts=ts + 0.9))
        elif ending != "sessionEnded":
            events.append(SuggestionCancelled("s", ending, "client" if ending == "client_late" else ending,
                                              ts=ts + 0.3))
    if next_edit:
        events += [SuggestionRequested("s", "next_client", "next_edit", _URI, 7, 4, 10, trigger="nextEdit", ts=107.0),
                   SuggestionCancelled("s", "next_client", "client", ts=107.1)]
    events += [SuggestionCancelled("s", "sessionEnded", "sessionEnded", ts=108.0),
               SessionEnded("s", "shutdown", ts=108.0)]
    with TelemetryStore(db) as store:
        for event in events:
            store.record(event)


class _Answering(WireClient):
    """Answers every inline completion with a suggestion of its own (``new0``, ``new1``, ...) and next edits with
    ``edits``, keeping what it is sent."""

    def request_async(self, method, params=None):
        if method != "textDocument/inlineCompletion":
            return super().request_async(method, params)
        self._send({"method": method, "params": params})
        sid = f"new{sum(m == method for m, _ in self.sent) - 1}"
        answer: queue.Queue = queue.Queue()
        answer.put({"result": {"items": [{"insertText": "zz", "command": {"command": ACCEPT_COMMAND,
                                                                           "arguments": [sid]}}]}})
        return 0, answer


def _driven(db: Path, options: ReplayOptions | None = None, edits: list[dict] | None = None):
    """Replay the session of ``db`` against ``_Answering``: the outcomes by the recorded suggestion's id, and what
    was sent."""
    conn = open_readonly(db)
    try:
        script = build_script(conn, "s")
    finally:
        conn.close()
    client = _Answering(edits)
    driver = _Driver(client, script, options or ReplayOptions(), None, None)
    driver.run()
    return {o.request.suggestion_id: o for o in driver.outcomes}, client.sent


def _told(sent: list[tuple[str, dict]]) -> set[str]:
    """The new suggestions the replay told the server anything about (shown, accepted, rejected)."""
    told = set()
    for method, params in sent:
        if method in (DID_SHOW, DID_REJECT, DID_SHOW_NEXT_EDIT, DID_REJECT_NEXT_EDIT):
            told.add(params["id"])
        elif method == "workspace/executeCommand":
            told.update(params["arguments"])
    return told


@pytest.mark.parametrize("client_name, reports_shows", [("Neovim", False), ("vscode", True)])
@pytest.mark.parametrize("overrides", [{}, {"maxNewTokens": 4}], ids=["same", "other settings"])
def test_a_request_whose_answer_never_reached_the_editor_is_answered_but_not_shown(tmp_path, client_name,
                                                                                   reports_shows, overrides):
    """At other settings too: the programmer typed on before the answer, and the editor would have dropped it."""
    db = tmp_path / "rec.sqlite3"
    _record(db, client_name, reports_shows)
    outcomes, sent = _driven(db, ReplayOptions(overrides=overrides))
    assert [m for m, _ in sent].count("textDocument/inlineCompletion") == len(_ENDINGS)  # every one is asked for
    for ending in _NEVER_ANSWERED:
        o = outcomes[ending]
        assert (o.basis, o.outcome, o.chars_saved, o.text) == ("unshown", None, 0, "zz"), ending
    # the others are shown and judged, as before: one the programmer typed over, one with nothing to show, one the
    # session's end found still running
    for ending in ("typedOver", "empty", "sessionEnded"):
        assert outcomes[ending].basis == "oracle", ending
    shown = {outcomes[e].suggestion_id for e in ("typedOver", "empty", "sessionEnded")}
    assert _told(sent) == shown  # nothing said about the unshown ones


def test_a_next_edit_the_editor_cancelled_is_not_shown_either(tmp_path):
    db = tmp_path / "rec.sqlite3"
    _record(db, "Neovim", False, next_edit=True)
    edit = {"id": "e1", "range": {"start": {"line": 4, "character": 10}, "end": {"line": 4, "character": 10}},
            "newText": "x)"}
    outcomes, sent = _driven(db, edits=[edit])
    assert [m for m, _ in sent].count(NEXT_EDIT) == 1
    o = outcomes["next_client"]
    assert (o.kind, o.suggestion_id, o.basis, o.outcome, o.chars_saved) == ("next_edit", "e1", "unshown", None, 0)
    assert "e1" not in _told(sent)


@pytest.mark.parametrize("client_name, reports_shows", [("Neovim", False), ("vscode", True)])
def test_a_same_settings_replay_shows_no_answer_its_editor_never_got(tiny_lm_dir, tmp_path, client_name,
                                                                     reports_shows):
    """Against the real server: the cancelled requests are answered there (the accelerated replay waits for every
    answer), recorded as not shown and decided by no one, and the replay's figures count only the others."""
    db = tmp_path / "rec.sqlite3"
    _record(db, client_name, reports_shows)
    out = tmp_path / "replay.sqlite3"
    (res,) = replay(db, out, options=ReplayOptions(model=str(tiny_lm_dir)))
    assert res.complete
    by_source = {o.request.suggestion_id: o for o in res.outcomes}
    never = [by_source[e] for e in _NEVER_ANSWERED]
    assert all(o.basis in ("unshown", "none") for o in never)  # "none": the new server had nothing to say
    assert any(o.basis == "unshown" for o in never)  # the tiny model answers most of them
    others = [by_source[e] for e in _ENDINGS if e not in _NEVER_ANSWERED]
    assert res.suggestions == sum(o.basis in ("logged", "oracle") for o in others)
    conn = sqlite3.connect(out)
    try:
        rows = conn.execute("SELECT r.basis, r.outcome, r.chars_saved, s.shown_at FROM replay_suggestions r"
                            " JOIN suggestions s ON s.id = r.suggestion_id WHERE r.source_suggestion_id IN"
                            f" ({', '.join('?' * len(_NEVER_ANSWERED))})", _NEVER_ANSWERED).fetchall()
    finally:
        conn.close()
    assert rows and all(row == ("unshown", None, 0, None) for row in rows if row[0] != "none")
