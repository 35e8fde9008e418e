"""Simulated programmers: type a file into a real server the way a person would, asking for suggestions.

``type_file`` is the plain driver shared by `tact demo` (prints each suggestion) and `tact bench serve`
(times them). ``Programmer`` (used by `tact simulate`) types like a person: character by character with
realistic pauses, the editor's auto-indent, typos fixed with backspace, revisits of earlier lines, and
suggestions accepted (whole or word by word) when they match what comes next. The server is driven over
stdio by `telemetry.lsp_client.LspClient`, exactly as an editor drives it, and records the session.
"""

from __future__ import annotations

import math
import queue
import random
import re
import time
from bisect import bisect_right
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from telemetry.lsp_client import LspClient, LspError, change_at
from telemetry.reader import SIMULATE_CLIENT
from telemetry.text import SplitText, line_starts, utf16_len

# Custom names of the Tact protocol (lsp_server/protocol.py; `telemetry` does not import the server).
ACCEPT_COMMAND = "tact.acceptSuggestion"
DID_SHOW = "tact/didShowCompletion"
DID_PARTIALLY_ACCEPT = "tact/didPartiallyAcceptCompletion"
DID_REJECT = "tact/didRejectCompletion"
STATUS = "tact/status"
REPLAY_CLOCK = "tact/replayClock"
REPLAY_UNDONE = "tact/replayUndone"
NEXT_EDIT = "tact/nextEdit"
DID_SHOW_NEXT_EDIT = "tact/didShowNextEdit"
DID_REJECT_NEXT_EDIT = "tact/didRejectNextEdit"
ACCEPT_NEXT_EDIT_COMMAND = "tact.acceptNextEdit"
# The initializationOptions key, beside the settings, of the prior a replay's acceptance gate starts from
# (lsp_server/protocol.py, as the names above).
ACCEPTANCE_PRIOR = "acceptancePrior"
# The initializationOptions key of a simulation: the time it pins (REPLAY_CLOCK) is the session's, recorded too.
CLIENT_CLOCK = "clientClock"


class NoModelError(RuntimeError):
    """The server under a simulation or a bench came up without a model; the message gives the server's reason."""


ACCELERATED_DEFAULTS = {
    # The gate's debounce waits for a keystroke that would supersede the request. Driven as fast as the server
    # answers (simulation or replay at speed 0), the next keystroke comes only after the answer, so the wait
    # changes nothing but the time the run takes.
    "acceptanceDebounceMaxMs": 0,
}


@dataclass
class SuggestionEvent:
    line: int
    character: int
    latency_ms: float
    text: str
    suggestion_id: str | None
    expected: str  # what the file really has after the cursor on this line
    outcome: str = ""  # accepted | rejected | none


@dataclass
class TypingResult:
    events: list[SuggestionEvent] = field(default_factory=list)
    keystrokes: int = 0


def type_file(client: LspClient, uri: str, text: str, *, start_line: int, lines: int | None = None,
              request_every: int = 1, accept: bool = True, on_event=None, limit: int | None = None,
              key_gap_s: float = 0.0) -> TypingResult:
    """Open the file with lines [start_line:] missing, then type them character by character.

    After every `request_every` keystrokes, ask for an inline completion. When the suggestion
    matches what comes next, accept it (command + skip ahead); otherwise report it typed over.
    ``key_gap_s``: keystrokes come at least this far apart (the time a request takes counts towards
    it), as a person types; 0 types as fast as the server answers.
    """
    # Lines with their breaks, split as LSP splits them (\n, \r\n, \r): a line split on \n alone kept a CRLF's
    # \r, typed as a character of its own that already broke the line, and the next keystrokes landed before it.
    starts = line_starts(text)
    all_lines = [text[a:b] for a, b in zip(starts, starts[1:] + [len(text)])]
    if all_lines[-1] == "":
        all_lines.pop()  # the file's last line break is typed after its last line, not as a line of its own
    head = "".join(all_lines[:start_line])
    to_type = all_lines[start_line:start_line + lines] if lines else all_lines[start_line:]
    client.did_open(uri, head)
    version = 1
    result = TypingResult()
    line_no = start_line
    last_key = -math.inf
    for with_break in to_type:
        target_line = with_break.rstrip("\r\n")
        line_break = with_break[len(target_line):]  # one keystroke, empty on a last line without one
        col = 0  # in characters, to index target_line
        position = 0  # the same place in UTF-16 code units, as LSP counts `character`
        while col <= len(target_line):
            if limit is not None and len(result.events) >= limit:
                return result
            if col < len(target_line):
                ch = target_line[col]
            elif not line_break:
                break  # the file's last line has no line break
            else:
                ch = line_break
            if key_gap_s > 0:
                time.sleep(max(0.0, last_key + key_gap_s - time.perf_counter()))
                last_key = time.perf_counter()
            version += 1
            client.did_change(uri, version, [change_at(line_no, position, ch)])
            result.keystrokes += 1
            if ch == line_break:
                break
            col += 1
            position += utf16_len(ch)
            if result.keystrokes % request_every:
                continue
            t0 = time.perf_counter()
            items = client.inline_completion(uri, line_no, position)
            latency = (time.perf_counter() - t0) * 1000
            expected = target_line[col:]
            item = items[0] if items else None
            suggestion_text = item["insertText"] if item else ""
            sid = item["command"]["arguments"][0] if item and item.get("command") else None
            event = SuggestionEvent(line_no, col, latency, suggestion_text, sid, expected)
            if item and sid:
                if accept and suggestion_text and expected.startswith(suggestion_text):
                    # The editor inserts the suggestion, then runs the item's command.
                    version += 1
                    client.did_change(uri, version, [change_at(line_no, position, suggestion_text)])
                    client.request("workspace/executeCommand", {"command": "tact.acceptSuggestion", "arguments": [sid]})
                    col += len(suggestion_text)
                    position += utf16_len(suggestion_text)
                    event.outcome = "accepted"
                else:
                    client.notify("tact/didShowCompletion", {"id": sid})
                    client.notify("tact/didRejectCompletion", {"id": sid, "reason": "typedOver"})
                    event.outcome = "rejected"
            else:
                event.outcome = "none"
            result.events.append(event)
            if on_event:
                on_event(event)
        line_no += 1
    return result


def server_command(python: str, model: str | None, database: str | None) -> list[str]:
    cmd = [python, "-m", "lsp_server"]
    if model:
        cmd += ["--model", model]
    if database:
        cmd += ["--database", database]
    return cmd


def sample_file() -> Path:
    return Path(__file__).resolve().parent / "data" / "demo_sample.py.txt"


def wait_ready(client: LspClient, timeout: float = 120.0) -> dict:
    """tact/status once the model has finished loading (or failed to) and the acceptance gate has started (its prior
    seeded, its model loaded): the server answers once the code model is ready, and a request sent before the gate
    had started went ungated, so a run's first decisions depended on a race."""
    deadline = time.time() + timeout
    status = client.request(STATUS)
    while (status.get("loading") or not (status.get("acceptanceGate") or {}).get("started", True)) \
            and time.time() < deadline:
        time.sleep(0.02)
        status = client.request(STATUS)
    return status


def require_ready(status: dict) -> dict:
    """``status`` (tact/status) of a server with a model; NoModelError with the server's reason otherwise: a run
    against a server without one would time or record its empty answers."""
    if not status.get("ready"):
        raise NoModelError(f"the server has no model: {status.get('reason')}")
    return status


@dataclass
class TypingStyle:
    """How the simulated programmer types. Times are seconds of the simulated clock."""

    chars_per_s: float = 5.0  # median typing speed inside a line
    think_s: float = 1.5  # median pause before starting a new line
    long_pause_p: float = 0.02  # chance, per line, of a long pause (reading, thinking)
    long_pause_s: float = 10.0
    typo_p: float = 0.015  # chance per letter of a wrong key, noticed and backspaced
    revisit_p: float = 0.06  # chance, after each line, of going back to retype a word of an earlier line
    accept_p: float = 0.9  # chance a suggestion that matches what comes next is noticed and accepted
    partial_p: float = 0.5  # chance of accepting word by word the part of a suggestion that matches
    reaction_s: float = 0.4  # time to read a suggestion before accepting it
    debounce_s: float = 0.075  # the editor asks for a suggestion once typing pauses this long
    auto_indent: bool = True  # the editor indents new lines (the programmer does not type the indentation)


@dataclass
class SimulationStats:
    files: int = 0
    keystrokes: int = 0
    requests: int = 0
    suggestions: int = 0  # requests answered with a suggestion in time
    accepted: int = 0  # whole or in part, as `tact replay` and `tact report` count them
    partially_accepted: int = 0  # of ``accepted``, those accepted in part (word by word)
    rejected: int = 0
    late: int = 0  # answered after the programmer had moved on (cancelled)
    chars_typed: int = 0
    chars_accepted: int = 0
    typos: int = 0
    revisits: int = 0
    simulated_s: float = 0.0
    wall_s: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


_WORD_CHUNK = re.compile(r"\W*\w+|\W+")
_INDENT = re.compile(r"[ \t]*")
_WORD_MIN = 3
_WORD = re.compile(r"\w{%d,}" % _WORD_MIN)  # a word worth revisiting
_NEIGHBOURS = "qwertyuiopasdfghjklzxcvbnm"


@dataclass
class _ShownSuggestion:
    """A suggestion on screen and not resolved: shown at offset ``anchor``, its first ``consumed`` characters typed."""

    id: str
    text: str
    anchor: int
    consumed: int = 0


class Programmer:
    """Types files into a server session. ``speed`` scales the simulated clock: 1 is real time, 10 ten times
    faster, 0 as fast as possible (no sleeping; every request is awaited).

    ``pin_clock``: before each keystroke the server is told the simulated time (tact/replayClock), so its acceptance
    gate reads the programmer's pace, not the run's, and a run at speed 0 is reproducible: the gate's timing features
    read the wall clock before, and two runs with one seed went apart at a gate decision. The server must be asked to
    record that time too (``clientClock``, as `run_simulation` does), or a replay of the session pins other times."""

    def __init__(self, client: LspClient, *, style: TypingStyle | None = None, seed: int = 0, speed: float = 0.0,
                 limit: int | None = None, max_seconds: float | None = None,
                 on_event: Callable[[dict], None] | None = None, pin_clock: bool = False) -> None:
        self.client = client
        self.pin_clock = pin_clock
        self._t0 = time.time()  # the simulated timeline starts at the wall clock's now
        self._pinned: float | None = None
        self.max_seconds = max_seconds
        self.style = style or TypingStyle()
        self.rng = random.Random(seed)
        self.speed = speed
        self.limit = limit
        self.on_event = on_event
        self.stats = SimulationStats()
        self._uri = ""
        # the document held in blocks of lines: a keystroke's position and splice cost its block, where a str's
        # line starts and copy cost the whole document, and typing a file cost the square of its size
        self._doc = SplitText()
        self._version = 0
        self._words: list[tuple[int, int]] = []  # the spans of the file's words (see ``_revisit``)
        self._word_ends: list[int] = []
        self._shown: _ShownSuggestion | None = None  # the suggestion on screen, left unresolved (see ``_follow``)
        self._started = time.perf_counter()

    # -- the document, as the editor holds it -----------------------------------------------------
    def _position(self, offset: int) -> tuple[int, int]:
        return self._doc.position_at(offset)

    def _replace(self, start: int, end: int, text: str) -> None:
        (sl, sc), (el, ec) = self._position(start), self._position(end)
        self._doc.splice(start, end, text)
        self._version += 1
        self._pin()
        self.client.did_change(self._uri, self._version, [change_at(sl, sc, text, el, ec)])
        self._follow(start, end, text)

    def _follow(self, start: int, end: int, text: str) -> None:
        """A keystroke reached the suggestion on screen: typed through it, or the end of it, as the editor tells.

        As the VS Code extension infers it: a keystroke that types the suggestion's next characters follows it (and
        one that types its last character leaves it ignored, typed by hand), one that disagrees at its cursor rejects
        it (typedOver), one elsewhere moves the cursor off it (cursorMoved). The rejection is sent at that keystroke's
        time: sent when the suggestion was shown, it gave the gate's "time since the last outcome" a reaction no
        editor reports."""
        shown = self._shown
        if shown is None:
            return
        cursor = shown.anchor + shown.consumed
        if start == end == cursor and text and shown.text.startswith(text, shown.consumed):
            shown.consumed += len(text)
            if shown.consumed < len(shown.text):
                return
            reason = "ignored"
        else:
            reason = "typedOver" if start <= cursor <= end else "cursorMoved"
        self._shown = None
        self.client.notify(DID_REJECT, {"id": shown.id, "reason": reason})

    def _pin(self) -> None:
        """Tell the server the simulated time, where it moved since last told (``pin_clock``). Every message after a
        keystroke (its request, the suggestion's outcome) comes at that keystroke's time or after a wait that ends in
        another keystroke, so pinning at each keystroke and at the document's opening and closing covers them."""
        if self.pin_clock:
            ts = self._t0 + self.stats.simulated_s
            if ts != self._pinned:
                self.client.notify(REPLAY_CLOCK, {"ts": ts})
                self._pinned = ts

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
    def _key(self, start: int, end: int, text: str, pause: float, plan: str = "", at: int = 0) -> int:
        """Apply one keystroke at the cursor, then wait ``pause`` (asking for a suggestion if it is long enough).

        ``plan[at:]`` is what the programmer means to type after this keystroke, read in place (a copy of it per
        keystroke cost the rest of the file). Returns how many characters of it an accepted suggestion typed.
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
        self._shown = None  # the server rejected the one on screen (superseded) when it issued this one
        self.client.notify(DID_SHOW, {"id": sid})
        line_end = plan.find("\n", at)
        event: dict[str, Any] = {"line": line, "character": character, "suggestion": suggestion, "id": sid,
                                 "expected": plan[at:line_end if line_end >= 0 else len(plan)]}
        typed = 0
        if plan.startswith(suggestion, at) and self.rng.random() < self.style.accept_p:
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
                if not plan.startswith(accepted + chunk, at) or accepted + chunk == suggestion:
                    break
                accepted += chunk
            if accepted.strip() and self.rng.random() < self.style.partial_p:
                self._wait(self.style.reaction_s, t0)
                self._replace(cursor, cursor, accepted)  # accept word by word
                self.client.notify(DID_PARTIALLY_ACCEPT, {"id": sid, "acceptedLength": utf16_len(accepted)})
                typed = len(accepted)
                self.stats.accepted += 1
                self.stats.partially_accepted += 1
                event["outcome"] = "partially_accepted"
            else:
                self.stats.rejected += 1
                event["outcome"] = "rejected"
            # the rest stays on screen until a keystroke types through it or ends it (``_follow``)
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
                indent = _INDENT.match(text, i + len(line_break)).group(0) if self.style.auto_indent else ""
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
                    self._key(cursor, cursor, wrong, self._key_pause(wrong) * 2.5)  # notices the typo
                    self._key(cursor, cursor + 1, "", self._key_pause(ch))  # backspace
                    self.stats.typos += 1
            self.stats.chars_typed += len(key)
            typed = self._key(cursor, cursor, key, pause, text, i + len(key))
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

        The words are those ``_WORD`` finds in the document before ``back_to``, read off the file's words, found
        once per file (searching the document on every revisit cost its size): that part of the document is the
        file's beginning, as typos are backspaced, revisits retype their word and suggestions are taken only where
        they match the file.
        """
        count = bisect_right(self._word_ends, back_to)  # the file's words that end at the cursor or before it
        if count < len(self._words) and self._words[count][0] + _WORD_MIN <= back_to:
            count += 1  # and the one the cursor is in (a suggestion accepted mid-word), cut at the cursor
        if count < 2:
            return
        start, end = self._words[self.rng.choice(range(count // 2, count) if count > 8 else range(count))]
        end = min(end, back_to)
        word = self._doc[start:end]
        if self._out_of_keys or self._keys_left < 2 * len(word):
            return
        self.stats.revisits += 1
        self._wait(self._lognormal(1.5, 0.5), time.perf_counter())  # finds the place
        for _ in range(len(word)):  # backspace over it
            self._key(end - 1, end, "", self._key_pause(" "))
            end -= 1
        self._type(start, word, whole=True)
        self._wait(self._lognormal(1.0, 0.5), time.perf_counter())  # and goes back

    # -- files -------------------------------------------------------------------------------------
    def type_document(self, uri: str, text: str, *, start_line: int = 0, language_id: str = "python") -> str:
        """Open ``uri`` holding ``text``'s lines before ``start_line``, type the rest, close it.

        Returns the text the editor holds at the end (``text`` itself unless the keystroke limit cut it short).
        """
        t0 = time.perf_counter()
        starts = line_starts(text)
        start = starts[min(start_line, len(starts) - 1)] if start_line > 0 else 0
        self._uri, self._doc, self._version = uri, SplitText(text[:start]), 1
        self._words = [m.span() for m in _WORD.finditer(text)]
        self._word_ends = [end for _, end in self._words]
        self._pin()
        self.client.did_open(uri, text[:start], 1, language_id)
        self.stats.files += 1
        self._type(start, text[start:])
        self._pin()
        self.client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})  # the server ends what is shown
        self._shown = None
        self.stats.wall_s += time.perf_counter() - t0
        return self._doc.text()


def run_simulation(files: list[Path], database: Path, *, model: str | None = None, settings: dict | None = None,
                   seed: int = 0, speed: float = 0.0, limit: int | None = None, max_seconds: float | None = None,
                   start_line: int = 0,
                   style: TypingStyle | None = None, python: str | None = None,
                   on_event: Callable[[dict], None] | None = None) -> dict:
    """Start `tact serve` on ``database``, type ``files`` into it one after another, shut it down.

    Returns the figures of the run with the recorded session's id. ``limit`` caps keystrokes and
    ``max_seconds`` the simulated time (all files together). At speed 0 the gate's debounce is off unless
    ``settings`` sets it (``ACCELERATED_DEFAULTS``); the recorded session's settings say so.
    """
    import sys

    t0 = time.perf_counter()
    settings = dict(settings or {})
    if speed <= 0:
        settings = {**ACCELERATED_DEFAULTS, **settings}
    # retention off unless set: the simulation's server removed old sessions from the database it was given
    settings.setdefault("telemetryRetentionDays", 0)
    with LspClient(server_command(python or sys.executable, model, str(database))) as client:
        client.initialize({"tact": settings, CLIENT_CLOCK: True}, client_name=SIMULATE_CLIENT)
        status = require_ready(wait_ready(client))
        if not status.get("database"):  # the server runs on without telemetry: the run would be said recorded
            raise NoModelError(f"cannot record into {database}: {status.get('telemetryReason') or 'telemetry is off'}")
        programmer = Programmer(client, style=style, seed=seed, speed=speed, limit=limit, max_seconds=max_seconds,
                                on_event=on_event, pin_clock=True)
        typed_ok = 0
        for n, path in enumerate(files):
            if programmer._out_of_keys:
                break
            # newline="": the file's own line breaks (universal newlines typed a CRLF file with \n, and called it
            # typed to the end)
            with open(path, encoding="utf-8", newline="") as f:
                text = f.read()
            final = programmer.type_document(f"file:///simulated/{n}/{Path(path).name}", text, start_line=start_line)
            typed_ok += final == text
        client.shutdown()
    return {"session_id": status.get("sessionId"), "database": str(database), "model": status.get("model"),
            "seed": seed, "speed": speed, "settings": settings, "files_complete": typed_ok, **programmer.stats.as_dict(),
            "total_wall_s": round(time.perf_counter() - t0, 3)}
