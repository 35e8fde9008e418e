"""Simulated programmers: a real server records a session whose edits rebuild the typed file exactly."""

from __future__ import annotations

import pytest

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


class _FakeServer:
    """Stands in for the LspClient: holds the document the changes build, and suggests from the target text
    (right, half right or wrong, in turn)."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.doc = ""
        self.version = 0
        self.n = 0
        self.commands: list = []
        self.notes: list = []

    def did_open(self, uri, text, version=1, language_id="python"):
        self.doc, self.version = text, version

    def did_change(self, uri, version, changes):
        assert version > self.version
        self.version = version
        for c in changes:
            starts = line_starts(self.doc)
            a = offset_at(self.doc, c["range"]["start"]["line"], c["range"]["start"]["character"], starts)
            b = offset_at(self.doc, c["range"]["end"]["line"], c["range"]["end"]["character"], starts)
            self.doc = self.doc[:a] + c["text"] + self.doc[b:]

    def request_async(self, method, params):
        import queue
        import re

        pos = params["position"]
        cursor = offset_at(self.doc, pos["line"], pos["character"])  # (a typo may sit before it)
        self.n += 1
        rest = self.target[cursor:].split("\n", 1)[0]
        word = re.match(r"\W*\w*", rest).group(0)
        text = [word, word + " wrong", "zzz"][self.n % 3] if word.strip() else ""
        q: queue.Queue = queue.Queue()
        items = [{"insertText": text, "command": {"arguments": [f"s{self.n}"]}}] if text else []
        q.put({"result": {"items": items}})
        return self.n, q

    def notify(self, method, params):
        self.notes.append((method, params))

    def request(self, method, params=None, timeout=30.0):
        self.commands.append(params)
        return True

    def cancel(self, msg_id):
        pass


def test_programmer_accepts_whole_and_in_part_and_types_the_rest():
    from telemetry.simulate import DID_PARTIALLY_ACCEPT, Programmer, TypingStyle

    target = "import os\n\n\ndef read_lines(path):\n    with open(path) as f:\n        return f.readlines()\n"
    fake = _FakeServer(target)
    style = TypingStyle(accept_p=1.0, partial_p=1.0, typo_p=0.05, revisit_p=0.3)
    programmer = Programmer(fake, style=style, seed=5)
    final = programmer.type_document("file:///t.py", target, start_line=1)
    s = programmer.stats
    assert final == fake.doc == target
    assert s.accepted > 0 and s.partially_accepted > 0 and s.rejected > 0
    assert len(fake.commands) == s.accepted - s.partially_accepted  # the accept command: whole ones alone
    assert sum(1 for m, _ in fake.notes if m == DID_PARTIALLY_ACCEPT) == s.partially_accepted
    assert s.chars_accepted > 0 and s.chars_typed + s.chars_accepted >= len(target) - len("import os\n")
    assert s.simulated_s > 0 and s.wall_s < 5


class _TimedClient:
    """What ``type_file`` calls on an LSP client: records when each keystroke arrives, suggests nothing."""

    def __init__(self):
        self.key_times: list[float] = []

    def did_open(self, uri, text):
        pass

    def did_change(self, uri, version, changes):
        import time

        self.key_times.append(time.perf_counter())

    def inline_completion(self, uri, line, character):
        import time

        time.sleep(0.03)  # the server's answer takes part of the gap
        return []


def test_type_file_types_at_the_given_pace():
    import numpy as np

    from telemetry.simulate import type_file

    text = "a = 1\nb = 2\nc = 3\n"
    fast, paced = _TimedClient(), _TimedClient()
    res = type_file(fast, "file:///t.py", text, start_line=1, lines=1)
    type_file(paced, "file:///t.py", text, start_line=1, lines=1, key_gap_s=0.04)
    assert res.keystrokes == len("b = 2\n") == len(paced.key_times)
    gaps = np.diff(paced.key_times)
    assert gaps.min() >= 0.039  # never faster than the pace, the answer's time included in it
    assert np.median(gaps) < 0.06  # and not the pace on top of the answer's time (0.07)
    assert np.diff(fast.key_times).min() < 0.039


class _TypeFileServer(_FakeServer):
    """_FakeServer for ``type_file``: answers `inline_completion` and `request` as the LspClient does."""

    def inline_completion(self, uri, line, character, invoked=False, timeout=30.0):
        _, q = self.request_async("textDocument/inlineCompletion", {"position": {"line": line, "character": character}})
        return q.get()["result"]["items"]

    def request(self, method, params=None, timeout=30.0):
        self.commands.append(params)


@pytest.mark.parametrize("text", ['x = 1\ns = "😀 ok 😀"\nprint(s)\n', "a = 1\nb = 'é 😀'", 'only = "😀"\n'])
def test_type_file_sends_utf16_positions_and_types_exactly_the_file(text):
    """Columns were counted in characters: after an emoji on a line every later keystroke landed one unit short, and
    the server's document drifted from the file (the demo's and `bench serve`'s documents)."""
    from telemetry.simulate import type_file

    for start_line in (0, 1):
        server = _TypeFileServer(text)
        type_file(server, "file:///t.py", text, start_line=start_line)
        assert server.doc == text
        if start_line == 0:
            assert server.commands  # suggestions were accepted on the way: their text moved the cursor too


def test_an_accepted_suggestion_costs_its_reaction_time_once():
    """The simulated clock counted an accept's reaction time twice (the wall clock slept it once)."""
    import queue

    from telemetry.simulate import Programmer, TypingStyle

    class Suggests:
        def did_open(self, *a, **k): pass
        def did_change(self, *a, **k): pass
        def notify(self, *a, **k): pass
        def request(self, *a, **k): return None
        def cancel(self, *a): pass

        def request_async(self, method, params):
            q = queue.Queue()
            q.put({"result": {"items": [{"insertText": "bc", "command": {"arguments": ["s1"]}}]}})
            return 1, q

    style = TypingStyle(typo_p=0, revisit_p=0, accept_p=1.0)
    p = Programmer(Suggests(), style=style, seed=1, limit=1)
    p._key_pause = lambda ch: 0.2  # above the debounce: the one keystroke asks for a suggestion
    p.type_document("file:///t.py", "abc")
    assert (p.stats.keystrokes, p.stats.accepted) == (1, 1)
    assert p.stats.simulated_s == pytest.approx(style.reaction_s)


@pytest.mark.parametrize("args, says", [
    (["f.py", "--start-line", "9999"], "f.py has 4 lines: --start-line (0-based) must be less"),
    (["f.py", "--start-line", "4"], "f.py has 4 lines: --start-line (0-based) must be less"),
    (["f.py", "--start-line", "-4"], "argument --start-line: must be 0 or more, got -4"),
    # a form feed breaks no line in an editor: this file has two, the second typed from --start-line 1
    (["ff.py", "--start-line", "2"], "ff.py has 2 lines: --start-line (0-based) must be less"),
    (["f.py", "bin.py"], "argument files: bin.py is not UTF-8 text (a binary file?)"),
    (["latin1.py"], "argument files: latin1.py is not UTF-8 text (a binary file?)"),
])
def test_the_cli_refuses_what_it_cannot_type_in_one_line(tmp_path, monkeypatch, capsys, args, says):
    """--start-line past the end typed nothing and exited 0, a negative one was taken; a binary or Latin-1 file said
    only "'utf-8' codec can't decode byte ..." without its name. Refused before any server starts (none has a model
    here: had one started, the error would be its reason)."""
    from lsp_server.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "f.py").write_text("import os\n\ndef f(x):\n    return x\n")
    (tmp_path / "ff.py").write_text("a = 1\x0cb = 2\nc = 3\n")
    (tmp_path / "bin.py").write_bytes(b"\x93\xff\x00binary\x86" * 10)
    (tmp_path / "latin1.py").write_bytes("s = 'café'\n".encode("latin-1"))
    try:
        code = main(["simulate", *args, "--database", "sim.sqlite3", "--model", "no-model", "--limit", "3"])
    except SystemExit as exc:  # argparse
        code = exc.code
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and "Traceback" not in err and "codec" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("tact")]
    assert errors == [f"tact simulate: error: {says}"], err
    assert not (tmp_path / "sim.sqlite3").exists()


class _StatusSequence:
    """A client whose tact/status answers run through ``answers`` (the last one repeats)."""

    def __init__(self, answers: list[dict]) -> None:
        self.answers = answers
        self.calls = 0

    def request(self, method: str, params=None) -> dict:
        self.calls += 1
        return self.answers[min(self.calls, len(self.answers)) - 1]


def test_wait_ready_also_waits_for_the_acceptance_gate_to_start():
    """The server is ready once its code model is; a request sent before the gate had seeded its prior and loaded
    its model went ungated, so a simulation's or replay's first decisions depended on a race."""
    from telemetry.simulate import wait_ready

    model_ready = {"loading": False, "ready": True, "acceptanceGate": {"started": False}}
    started = {"loading": False, "ready": True, "acceptanceGate": {"started": True}}
    client = _StatusSequence([{"loading": True}, model_ready, model_ready, started])
    assert wait_ready(client, timeout=10) == started
    assert client.calls == 4
    # a server without the flag (older) is ready as before
    old = _StatusSequence([{"loading": False, "ready": True, "acceptanceGate": {"active": True}}])
    assert wait_ready(old, timeout=10)["ready"] and old.calls == 1


@pytest.mark.parametrize("limit", [5, 10, 20, 40])
def test_the_keystroke_limit_is_never_overrun_by_a_typo(limit):
    """A typo is three keystrokes (the wrong key, backspace, the right one); one begun a key or two before the limit
    went past it (`tact bench replay --limit 40` could record 41 or 42)."""
    from telemetry.simulate import Programmer, TypingStyle

    target = "import os\n\n\ndef read_lines(path):\n    with open(path) as f:\n        return f.readlines()\n" * 3
    counts, typos = set(), 0
    for seed in range(30):
        programmer = Programmer(_FakeServer(target), style=TypingStyle(typo_p=0.3, revisit_p=0.1), seed=seed,
                                limit=limit)
        programmer.type_document("file:///t.py", target)
        counts.add(programmer.stats.keystrokes)
        typos += programmer.stats.typos
    assert counts == {limit} and typos > 0


_REVISITED = "import os\n\n\ndef read_lines(path):\n    with open(path) as f:\n        return f.readlines()\n" * 3


@pytest.mark.parametrize("budget", [{"limit": n} for n in range(14, 130, 9)]
                         + [{"max_seconds": s} for s in range(9, 64, 5)])
def test_a_run_cut_short_by_its_budget_leaves_a_beginning_of_the_file(budget):
    """A revisit (delete a word of an earlier line, type it again) checked the keystroke limit and the time budget
    before every key, so a run that ran out in the middle of one ended with the word half deleted: ``imp os`` for
    ``import os`` in the final text, which the recording then kept."""
    from telemetry.simulate import Programmer, TypingStyle

    revisits = 0
    for seed in range(10):
        programmer = Programmer(_FakeServer(_REVISITED), style=TypingStyle(typo_p=0.1, revisit_p=0.5), seed=seed,
                                **budget)
        final = programmer.type_document("file:///t.py", _REVISITED)
        assert _REVISITED.startswith(final), (seed, final[-40:])
        if "limit" in budget:
            assert programmer.stats.keystrokes == budget["limit"]  # and the limit stays exact
        revisits += programmer.stats.revisits
    assert revisits > 0


def test_no_keystroke_comes_at_the_same_instant_as_the_one_before():
    """An accepted suggestion's insertion (the Tab) and the next keystroke were sent at the same simulated instant:
    the wait after a key was spent before accepting, and none was left for the key after it."""
    from telemetry.simulate import Programmer, TypingStyle

    class Timed(_FakeServer):
        def did_change(self, uri, version, changes):
            super().did_change(uri, version, changes)
            times.append(programmer.stats.simulated_s)

    for seed in range(5):
        times: list[float] = []
        fake = Timed(_REVISITED)
        programmer = Programmer(fake, style=TypingStyle(accept_p=1.0, partial_p=1.0, typo_p=0.05, revisit_p=0.3),
                                seed=seed)
        assert programmer.type_document("file:///t.py", _REVISITED) == _REVISITED
        assert programmer.stats.accepted + programmer.stats.partially_accepted > 0
        gaps = [b - a for a, b in zip(times, times[1:])]
        assert min(gaps) > 0, seed


_CRLF = "import os\r\n\r\n\r\ndef read_lines(path):\r\n    with open(path) as f:\r\n        return f.readlines()\r\n"


def test_enter_in_a_crlf_file_is_one_keystroke_writing_its_line_break():
    """In a CRLF file the \\r and the \\n were two keystrokes: the \\r alone already broke the line, so requests
    between them saw a line break the file never has, and each Enter counted twice."""
    from telemetry.simulate import Programmer, TypingStyle

    for seed in range(5):
        fake = _FakeServer(_CRLF)
        changes: list[str] = []
        did_change = fake.did_change
        fake.did_change = lambda uri, version, c: (changes.append(c[0]["text"]), did_change(uri, version, c))
        style = TypingStyle(typo_p=0.05, revisit_p=0.3, accept_p=0.0, partial_p=0.0)  # every change a keystroke
        programmer = Programmer(fake, style=style, seed=seed)
        assert programmer.type_document("file:///t.py", _CRLF) == fake.doc == _CRLF
        breaks = [t for t in changes if "\r" in t or "\n" in t]
        assert breaks and all(t.count("\r") == t.count("\n") == t.count("\r\n") for t in breaks), breaks


@pytest.mark.parametrize("text", ["a = 1\r\nb = 'é 😀'\r\nc = 3\r\n", "a = 1\rb = 2\rc = 3", "a = 1\r\nb = 2\nc = 3\r"])
def test_type_file_types_a_file_with_crlf_or_cr_line_breaks_exactly(text):
    """Lines were split on \\n alone: a CRLF line's \\r was typed as a character (already a line break to the
    server), the \\n after it landed before it, and the server's document drifted from the file (``a = 1\\r\\nb = 2\\n
    c = 3\\n\\r\\r`` on a real server)."""
    from telemetry.simulate import type_file

    for start_line in (0, 1):
        server = _TypeFileServer(text)
        result = type_file(server, "file:///t.py", text, start_line=start_line, accept=False)
        assert server.doc == text
        typed = text[line_starts(text)[start_line]:]
        assert result.keystrokes == len(typed) - typed.count("\r\n")  # each line break one keystroke


def test_a_simulated_crlf_file_is_recorded_with_its_own_line_breaks(tmp_path):
    """The file was read with universal newlines: a CRLF file was typed with \\n line breaks, the recorded session's
    text was not the file, and the run still said it was typed to the end."""
    from telemetry.reader import list_sessions, open_readonly, session_timeline
    from telemetry.simulate import TypingStyle, run_simulation
    from tests.lsp_support import model_under_test

    source = tmp_path / "crlf.py"
    source.write_bytes(_CRLF.encode("utf-8"))
    db = tmp_path / "simulated.sqlite3"
    figures = run_simulation([source], db, model=str(model_under_test()), seed=1,
                             style=TypingStyle(typo_p=0.05, revisit_p=0.3, debounce_s=0.25))
    assert figures["files_complete"] == 1
    conn = open_readonly(db)
    try:
        (session,) = list_sessions(conn)
        snapshots = [i for i in session_timeline(conn, session["id"]) if i["type"] == "document_snapshot"]
        script = build_script(conn, session["id"])
    finally:
        conn.close()
    assert snapshots and snapshots[-1]["text"] == _CRLF
    # and its replay rebuilds the CRLF text, every request on the exact text it saw
    assert list(script.final_texts.values()) == [_CRLF] and all(script.verified.values()) and script.issues == []
    assert script.fidelity_counts()[EXACT] == len(script.requests) == figures["requests"] > 0
