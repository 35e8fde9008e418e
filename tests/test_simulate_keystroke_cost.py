"""The simulated programmer holds its document in blocks of lines: a keystroke costs about the edit, not the whole
document (its line starts were computed twice and the str copied per keystroke, so typing a large file took time
quadratic in its size), and it sends exactly what it sent before."""

from __future__ import annotations

import math
import queue
import random
import re
import time
from typing import Any, Callable

import pytest

import telemetry.text
from telemetry.lsp_client import LspClient, LspError, change_at
from telemetry.simulate import (
    ACCEPT_COMMAND,
    DID_PARTIALLY_ACCEPT,
    DID_SHOW,
    _NEIGHBOURS,
    _WORD_CHUNK,
    _ShownSuggestion,
    Programmer,
    SimulationStats,
    TypingStyle,
)
from telemetry.text import chars_in_units, line_starts, position_at, utf16_len
from tests.telemetry_fakes import CountingBreaks


_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # the scripted server's own: the counted one is telemetry.text's


class ScriptedServer:
    """Stands in for the LspClient: records every message in order and answers inline completions from the file
    being typed, in turn with the next word (accepted whole), the next word and a wrong one (accepted in part), a
    wrong word (rejected), nothing, an error, the rest of the line with the next one (accepted across a line break)
    and the next four characters (accepted, often ending mid-word). Answers depend on the request alone, and the
    file's line starts are found before any counting starts."""

    def __init__(self, target: str) -> None:
        self.expect(target)
        self.log: list[tuple] = []
        self.n = 0

    def expect(self, target: str) -> None:
        """Answer from ``target``, the file typed next."""
        self.target = target
        self._starts = line_starts(target)

    def did_open(self, uri, text, version=1, language_id="python"):
        self.log.append(("didOpen", uri, text, version, language_id))

    def did_change(self, uri, version, changes):
        self.log.append(("didChange", uri, version, changes))

    def notify(self, method, params=None):
        self.log.append(("notify", method, params))

    def request(self, method, params=None, timeout=30.0):
        self.log.append(("request", method, params))
        return None

    def cancel(self, msg_id):
        self.log.append(("cancel", msg_id))

    def _offset(self, line: int, character: int) -> int:
        """The file's offset at a position, which matches the document up to the cursor (typos aside)."""
        if line >= len(self._starts):
            return len(self.target)
        begin = self._starts[line]
        end = self._starts[line + 1] if line + 1 < len(self._starts) else len(self.target)
        return begin + chars_in_units(self.target[begin:end], character)

    def request_async(self, method, params):
        self.log.append(("request_async", method, params))
        self.n += 1
        cursor = self._offset(params["position"]["line"], params["position"]["character"])
        line_end = _LINE_BREAK.search(self.target, cursor)
        word = re.match(r"\W*\w*", self.target[cursor:line_end.start() if line_end else None]).group(0)
        next_end = _LINE_BREAK.search(self.target, line_end.end()) if line_end else None
        answers = [word, word + " wrong", "zzz", "", None, self.target[cursor:next_end.start() if next_end else None],
                   self.target[cursor:min(cursor + 4, line_end.start() if line_end else len(self.target))]]
        text = answers[self.n % len(answers)]
        q: queue.Queue = queue.Queue()
        if text is None:
            q.put({"error": {"code": -32603, "message": "scripted failure"}})
        else:
            q.put({"result": {"items": [{"insertText": text, "command": {"arguments": [f"s{self.n}"]}}]
                              if text.strip() else []}})
        return self.n, q


class FormerProgrammer:
    """``telemetry.simulate.Programmer`` as it was when it held the document as a str (copied verbatim below this
    docstring): the reference whose messages, events, figures and random draws the current one must repeat. Since
    then a rejection is sent at the keystroke that ends the suggestion, not when it is shown: the reference does so
    with the current one's ``_follow``."""

    _follow = Programmer._follow

    def __init__(self, client: LspClient, *, style: TypingStyle | None = None, seed: int = 0, speed: float = 0.0,
                 limit: int | None = None, max_seconds: float | None = None,
                 on_event: Callable[[dict], None] | None = None) -> None:
        self.client = client
        self.max_seconds = max_seconds
        self.style = style or TypingStyle()
        self.rng = random.Random(seed)
        self.speed = speed
        self.limit = limit
        self.on_event = on_event
        self.stats = SimulationStats()
        self._uri = ""
        self._doc = ""
        self._version = 0
        self._shown = None
        self._started = time.perf_counter()

    # -- the document, as the editor holds it -----------------------------------------------------
    def _position(self, offset: int) -> tuple[int, int]:
        return position_at(self._doc, offset, line_starts(self._doc))

    def _replace(self, start: int, end: int, text: str) -> None:
        (sl, sc), (el, ec) = self._position(start), self._position(end)
        self._doc = self._doc[:start] + text + self._doc[end:]
        self._version += 1
        self.client.did_change(self._uri, self._version, [change_at(sl, sc, text, el, ec)])
        self._follow(start, end, text)

    # -- time ------------------------------------------------------------------------------------
    def _lognormal(self, median: float, sigma: float = 0.5) -> float:
        return median * math.exp(self.rng.gauss(0.0, sigma))

    def _key_pause(self, ch: str) -> float:
        pause = self._lognormal(1.0 / self.style.chars_per_s, 0.45)
        if ch in " ([{,.:=":
            pause *= 1.4
        return pause

    def _line_pause(self) -> float:
        pause = self._lognormal(self.style.think_s, 0.7)
        if self.rng.random() < self.style.long_pause_p:
            pause += self._lognormal(self.style.long_pause_s, 0.5)
        return pause

    def _wait(self, simulated_s: float, since: float) -> None:
        """Let ``simulated_s`` pass on the simulated clock, counting the wall time already spent since ``since``."""
        self.stats.simulated_s += simulated_s
        if self.speed > 0:
            left = simulated_s / self.speed - (time.perf_counter() - since)
            if left > 0:
                time.sleep(left)

    @property
    def _keys_left(self) -> float:
        """Keystrokes the limit still allows (infinite without one)."""
        return math.inf if self.limit is None else self.limit - self.stats.keystrokes

    @property
    def _out_of_keys(self) -> bool:
        """The keystroke limit or the simulated time budget is used up."""
        return ((self.limit is not None and self.stats.keystrokes >= self.limit)
                or (self.max_seconds is not None and self.stats.simulated_s >= self.max_seconds))

    # -- one keystroke, and the suggestion that may follow it --------------------------------------
    def _key(self, start: int, end: int, text: str, remaining: str, pause: float) -> int:
        """Apply one keystroke at the cursor, then wait ``pause`` (asking for a suggestion if it is long enough).

        ``remaining`` is what the programmer means to type after this keystroke. Returns how many characters
        of it an accepted suggestion typed.
        """
        t0 = time.perf_counter()
        self._replace(start, end, text)
        self.stats.keystrokes += 1
        cursor = start + len(text)
        if pause < self.style.debounce_s:
            self._wait(pause, t0)
            return 0
        line, character = self._position(cursor)
        msg_id, q = self.client.request_async("textDocument/inlineCompletion", {
            "textDocument": {"uri": self._uri}, "position": {"line": line, "character": character},
            "context": {"triggerKind": 2}})
        self.stats.requests += 1
        timeout = 60.0 if self.speed <= 0 else max(0.0, pause / self.speed - (time.perf_counter() - t0))
        try:
            result = LspClient.result(q, timeout)
        except queue.Empty:
            self.client.cancel(msg_id)
            self.stats.late += 1
            self._wait(pause, t0)
            return 0
        except LspError:
            self._wait(pause, t0)
            return 0
        items = (result.get("items") if isinstance(result, dict) else result) or []
        item = items[0] if items else None
        command = (item or {}).get("command") or {}
        sid = (command.get("arguments") or [None])[0]
        suggestion = (item or {}).get("insertText") or ""
        if not (item and sid and isinstance(suggestion, str) and suggestion):
            self._wait(pause, t0)
            return 0
        self.stats.suggestions += 1
        self._shown = None
        self.client.notify(DID_SHOW, {"id": sid})
        event: dict[str, Any] = {"line": line, "character": character, "suggestion": suggestion, "id": sid,
                                 "expected": remaining.split("\n", 1)[0]}
        typed = 0
        if remaining.startswith(suggestion) and self.rng.random() < self.style.accept_p:
            self._wait(self.style.reaction_s, t0)
            self._replace(cursor, cursor, suggestion)  # the editor inserts it, then runs the item's command
            try:
                self.client.request("workspace/executeCommand", {"command": ACCEPT_COMMAND, "arguments": [sid]})
            except LspError:
                pass
            typed = len(suggestion)
            self.stats.accepted += 1
            event["outcome"] = "accepted"
        else:
            accepted = ""
            for chunk in _WORD_CHUNK.findall(suggestion):
                if not remaining.startswith(accepted + chunk) or accepted + chunk == suggestion:
                    break
                accepted += chunk
            if accepted.strip() and self.rng.random() < self.style.partial_p:
                self._wait(self.style.reaction_s, t0)
                self._replace(cursor, cursor, accepted)  # accept word by word
                self.client.notify(DID_PARTIALLY_ACCEPT, {"id": sid, "acceptedLength": utf16_len(accepted)})
                typed = len(accepted)
                self.stats.accepted += 1  # whole or in part, as the programmer now counts
                self.stats.partially_accepted += 1
                event["outcome"] = "partially_accepted"
            else:
                self.stats.rejected += 1
                event["outcome"] = "rejected"
            self._shown = _ShownSuggestion(sid, suggestion, cursor, len(accepted) if typed else 0)
        self.stats.chars_accepted += typed
        if self.on_event:
            self.on_event(event)
        if not typed:  # an accept already waited its reaction time, from the same start
            self._wait(pause, t0)
        return typed

    def _type(self, cursor: int, text: str, whole: bool = False) -> int:
        """Type ``text`` at ``cursor`` (the document ends or continues after it). Returns the cursor after it.

        ``whole``: type all of it, past the time budget (a revisit's word, whose keystrokes the limit was checked
        to hold before it was deleted); otherwise stop where the keystroke limit or the time budget is used up.
        """
        i = 0
        while i < len(text) and (whole or not self._out_of_keys):
            ch = text[i]
            if ch in "\r\n":
                # Enter: one keystroke writing the file's line break (\r\n in a CRLF file, never a lone \r that
                # the next keystroke completes), then the editor's indentation
                line_break = "\r\n" if text.startswith("\r\n", i) else ch
                rest = text[i + len(line_break):]
                indent = re.match(r"[ \t]*", rest).group(0) if self.style.auto_indent else ""
                key = line_break + indent
                pause = self._line_pause()
            else:
                key = ch
                pause = self._key_pause(ch)
                # a typo is three keystrokes (wrong key, backspace, the right one): made only where the keystroke
                # limit leaves room for all three, which it overran by up to two (for a whole text, room for
                # them and for the rest of it)
                room = 2 + (len(text) - i if whole else 1)
                if ch.isalpha() and self.rng.random() < self.style.typo_p and self._keys_left >= room:
                    wrong = self.rng.choice(_NEIGHBOURS.replace(ch.lower(), ""))
                    self._key(cursor, cursor, wrong, "", self._key_pause(wrong) * 2.5)  # notices the typo
                    self._key(cursor, cursor + 1, "", "", self._key_pause(ch))  # backspace
                    self.stats.typos += 1
            self.stats.chars_typed += len(key)
            typed = self._key(cursor, cursor, key, text[i + len(key):], pause)
            i += len(key) + typed
            cursor += len(key) + typed
            if typed and i < len(text) and (whole or not self._out_of_keys):
                # Accepting was a keystroke too: the next key comes a keystroke's pause after it (it came at the
                # same instant, a gap of zero no hand makes).
                self._wait(self._key_pause("\t"), time.perf_counter())
            if ch in "\r\n" and self.rng.random() < self.style.revisit_p:
                self._revisit(cursor)
        return cursor

    def _revisit(self, back_to: int) -> None:
        """Go back to an earlier line, delete its last word and type it again, then come back.

        Begun only where the keystroke limit leaves room to finish it, and then finished whatever the time budget:
        one cut short left the word half deleted in the final text (``imp os`` for ``import os``).
        """
        head = self._doc[:back_to]
        words = [m for m in re.finditer(r"\w{3,}", head)]
        if len(words) < 2:
            return
        word = self.rng.choice(words[len(words) // 2:] if len(words) > 8 else words)
        if self._out_of_keys or self._keys_left < 2 * len(word.group(0)):
            return
        self.stats.revisits += 1
        self._wait(self._lognormal(1.5, 0.5), time.perf_counter())  # finds the place
        end = word.end()
        for _ in range(len(word.group(0))):  # backspace over it
            self._key(end - 1, end, "", "", self._key_pause(" "))
            end -= 1
        self._type(word.start(), word.group(0), whole=True)
        self._wait(self._lognormal(1.0, 0.5), time.perf_counter())  # and goes back

    # -- files -------------------------------------------------------------------------------------
    def type_document(self, uri: str, text: str, *, start_line: int = 0, language_id: str = "python") -> str:
        """Open ``uri`` holding ``text``'s lines before ``start_line``, type the rest, close it.

        Returns the text the editor holds at the end (``text`` itself unless the keystroke limit cut it short).
        """
        t0 = time.perf_counter()
        starts = line_starts(text)
        start = starts[min(start_line, len(starts) - 1)] if start_line > 0 else 0
        self._uri, self._doc, self._version = uri, text[:start], 1
        self.client.did_open(uri, self._doc, 1, language_id)
        self.stats.files += 1
        self._type(start, text[start:])
        self.client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
        self._shown = None
        self.stats.wall_s += time.perf_counter() - t0
        return self._doc


_SOURCE = '''import os
from pathlib import Path


def greet(name: str) -> str:
    """Say hello: café, naïve, 😀 and 𝔘𝔫𝔦𝔠𝔬𝔡𝔢."""
    if not name:
        return "hello, world 🌍"
    return f"hello, {name} — ✓"


class Reader:
\tdef __init__(self, path):
\t\tself.path = Path(path)

\tdef lines(self):
\t\twith open(self.path, encoding="utf-8") as f:
\t\t\treturn [line.rstrip() for line in f]


def total(values):
    result = 0
    for value in values:
        result += value  # ∑ 😀😀
    return result
'''

_FILES = {
    "lf": _SOURCE,
    "crlf": _SOURCE.replace("\n", "\r\n"),
    "cr, no final break": _SOURCE.replace("\n", "\r").rstrip("\r"),
    "mixed breaks": "".join(line + ("\r\n" if n % 3 else "\n") if n % 5 else line + "\r"
                            for n, line in enumerate(_SOURCE.splitlines())),
}

_STYLES = {
    "default": TypingStyle(),
    "busy": TypingStyle(typo_p=0.1, revisit_p=0.3, accept_p=0.7, partial_p=0.7),
    "no auto-indent": TypingStyle(typo_p=0.05, revisit_p=0.2, accept_p=1.0, partial_p=1.0, auto_indent=False),
}


def _typed(programmer_class, texts: list[str], *, seed: int, style: TypingStyle, start_line: int = 0,
           **budget) -> dict:
    """Everything a run sends and reports: the messages, the suggestion events, the figures (wall time aside), the
    final texts and the random generator's state after it."""
    server = ScriptedServer(texts[0])
    events: list[dict] = []
    programmer = programmer_class(server, style=style, seed=seed, on_event=events.append, **budget)
    finals = []
    for n, text in enumerate(texts):
        server.expect(text)
        finals.append(programmer.type_document(f"file:///f{n}.py", text, start_line=start_line))
    figures = programmer.stats.as_dict()
    figures.pop("wall_s")
    return {"messages": server.log, "events": events, "figures": figures, "finals": finals,
            "draws": programmer.rng.getstate()}


@pytest.mark.parametrize("style", list(_STYLES))
@pytest.mark.parametrize("file", list(_FILES))
def test_the_programmer_sends_what_it_sent_when_it_held_a_str(file, style):
    """Recorded sessions and `tact bench replay` depend on the exact messages and random draws of a seed."""
    text = _FILES[file]
    totals: dict[str, float] = {}
    for seed, start_line in ((0, 0), (1, 3), (2, 0), (3, 1)):
        texts = [text, text.swapcase()] if seed == 2 else [text]  # two files in one run
        former = _typed(FormerProgrammer, texts, seed=seed, style=_STYLES[style], start_line=start_line)
        current = _typed(Programmer, texts, seed=seed, style=_STYLES[style], start_line=start_line)
        assert current["finals"] == texts  # typed to the end
        for key in former:
            assert current[key] == former[key], (seed, key)
        totals = {k: totals.get(k, 0) + v for k, v in current["figures"].items()}
    # the runs took every path after a keystroke
    assert totals["accepted"] and totals["partially_accepted"] and totals["rejected"], totals
    if style != "default":
        assert totals["typos"] and totals["revisits"], totals


@pytest.mark.parametrize("budget", [{"limit": 37}, {"limit": 80}, {"max_seconds": 30.0}])
def test_a_run_cut_short_sends_what_it_sent_when_it_held_a_str(budget):
    """The same where the keystroke limit or the time budget ends the run in the middle of the file."""
    for seed in range(3):
        former = _typed(FormerProgrammer, [_FILES["crlf"]], seed=seed, style=_STYLES["busy"], **budget)
        current = _typed(Programmer, [_FILES["crlf"]], seed=seed, style=_STYLES["busy"], **budget)
        assert current == former
        assert _FILES["crlf"].startswith(current["finals"][0]) and current["finals"][0] != _FILES["crlf"]


def test_a_keystroke_scans_the_lines_it_touches_not_the_whole_document(monkeypatch):
    """Each keystroke found the whole document's line starts (twice, and once more for its request): counted as the
    characters the line-break pattern reads, typing a file read the square of its size. Now the file is read at its
    opening (where typing starts, the lines opened), and each change reads the lines it touches and its text."""
    text = _FILES["crlf"] * 12
    start_line = 5
    server = ScriptedServer(text)
    counting = CountingBreaks(telemetry.text._BREAK)
    monkeypatch.setattr(telemetry.text, "_BREAK", counting)
    programmer = Programmer(server, style=_STYLES["busy"], seed=1)
    final = programmer.type_document("file:///t.py", text, start_line=start_line)
    monkeypatch.undo()
    assert final == text
    changes = [message[3][0]["text"] for message in server.log if message[0] == "didChange"]
    assert len(changes) > 1000 and programmer.stats.accepted > 0 and programmer.stats.revisits > 0
    longest = max(len(line) for line in text.splitlines(keepends=True))
    head = line_starts(text)[start_line]
    assert counting.scanned >= head  # the count sees the document's scans: the opened lines are split
    whole_file_reads = 2 * len(text)  # finding where to start, and splitting the opened lines
    per_change = 3 * longest  # the lines on either side of the change, and a neighbour a CR joins to an LF
    assert counting.scanned <= whole_file_reads + sum(map(len, changes)) + per_change * len(changes)
