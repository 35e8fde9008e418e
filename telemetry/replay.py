"""Offline replay: drive a real `tact serve` through a logged session, as the editor did, with other settings.

The session is rebuilt as a script (``telemetry.reconstruct``) and sent over LSP stdio: documents opened,
changed and closed (a notebook's cells through its notebook's messages, as an editor sends them), settings
changed, and an inline completion requested wherever one was requested, on the text it was requested on. Each
suggestion the new server makes gets an outcome: the logged one where it equals the suggestion the programmer saw
and decided on, otherwise the oracle's (``telemetry.oracle``); the replay client then tells the server (shown,
accepted, rejected) so the new database records it like a live session. Next-edit requests are replayed too
(``tact/nextEdit``): a predicted edit equal to the logged one gets its logged outcome; any other counts as accepted
when applying it gives the document the programmer's next edit gave. A request that asked for edits in other cells
of its notebook asks again, and an edit predicted in another cell is judged against that cell.

Accelerated (``speed=0``, the default) waits for every answer and never sleeps, so two replays with the
same settings give the same suggestions and outcomes. ``speed=1`` keeps the recorded timing (a request
not answered before the next recorded step is cancelled, as an editor would), ``speed=10`` is ten times
faster than recorded. At any speed the server's clock is pinned to the recording (``tact/replayClock``)
before each change, request and outcome (each sent in its recorded order), so the acceptance gate's timing
features and the grouping of keystrokes into edits (the next-edit history) follow the recorded time, not the
replay's pace; and its gate starts
from the per-user prior the recorded session started from (``acceptance_prior``), not from the replay's
new, empty database.

Results go to a new database: the server's own session there, plus ``replay_runs`` (one row per replayed
session: source, overrides, timing, fidelity) and ``replay_suggestions`` (one row per request: the logged
suggestion it stands for, the new text, the outcome and its basis, characters saved).
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import json
import os
import queue
import sqlite3
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from .events import TYPED_ALONG
from .lsp_client import (LspClient, LspError, change_at, inline_completion_params, next_edit_params,
                         text_document_item)
from .oracle import Oracle, accepted_chars
from .reader import (SYNTHETIC_CLIENTS, decided_outcomes, list_sessions, open_readonly, open_upgraded,
                     outcome_counts, no_session_named, sessions_named)
from .reconstruct import (NotebookCells, Request, Script, Step, apply_range, build_script, fidelity_counts,
                          next_text_after)
from .report import ACCEPTED, saved_chars
from .schema import TelemetrySchemaError
from .simulate import (ACCELERATED_DEFAULTS, ACCEPT_COMMAND, ACCEPT_NEXT_EDIT_COMMAND, ACCEPTANCE_PRIOR,
                       DID_PARTIALLY_ACCEPT, DID_REJECT, DID_REJECT_NEXT_EDIT, DID_SHOW, DID_SHOW_NEXT_EDIT, NEXT_EDIT,
                       REPLAY_CLOCK, REPLAY_UNDONE, server_command, wait_ready)
from .text import SplitText, utf16_len

# Settings a replay never takes from the recording: the model comes from --model, the database is the output.
_NOT_REPLAYED = ("modelPath", "telemetryDatabase", "telemetry")
# Recorded settings naming a model a replay's server loads (the code model is `_model_for`'s).
_MODEL_SETTINGS = ("acceptanceModelPath", "nextEditModelPath", "nextEditRankerPath")
_DECISIVE_OUTCOMES = ("accepted", "partially_accepted", "rejected")
# rejected by the server (a newer suggestion, its document closed) or by time, not by the programmer
_UNDECIDED_REJECTS = ("superseded", "ignored", "documentClosed")
_SERVER_REJECTS = ("superseded", "documentClosed")  # rejections the server makes itself (the ledger)
# cancel reasons of a request whose answer never reached the editor: it cancelled the request ($/cancelRequest), or
# its document changed before the answer left
_NEVER_ANSWERED = ("client", "stale")

REPLAY_TABLES = """
CREATE TABLE IF NOT EXISTS replay_runs (
    session_id TEXT PRIMARY KEY,
    source_database TEXT,
    source_session_id TEXT,
    overrides TEXT,
    model TEXT,
    speed REAL,
    oracle TEXT,
    started_at REAL,
    wall_s REAL,
    recorded_s REAL,
    requests INTEGER,
    replayed INTEGER,
    source_complete INTEGER,
    complete INTEGER,
    fidelity TEXT,
    issues TEXT,
    source_started_at REAL
);
CREATE TABLE IF NOT EXISTS replay_suggestions (
    id INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    source_suggestion_id TEXT,
    source_ts REAL,
    suggestion_id TEXT,
    uri TEXT,
    line INTEGER,
    character INTEGER,
    fidelity TEXT,
    text TEXT,
    basis TEXT,
    outcome TEXT,
    accepted_length INTEGER,
    chars_saved INTEGER,
    reference TEXT,
    would_accept INTEGER,
    round_trip_ms REAL,
    kind TEXT,
    edit_uri TEXT
);
CREATE INDEX IF NOT EXISTS idx_replay_suggestions_session ON replay_suggestions (session_id, seq);
"""


class ReplayError(Exception):
    """A replay that cannot start (bad input, no such session, output exists); the message says why."""


@dataclass
class ReplayOptions:
    model: str | None = None  # model directory; default: the recorded one if it still exists, else the shipped one
    overrides: dict[str, Any] = field(default_factory=dict)  # camelCase settings that win over the recorded ones
    speed: float = 0.0  # 0: accelerated; 1: real time; k: k times faster than recorded
    limit: int | None = None  # replay at most this many requests (in all)
    oracle: Oracle = field(default_factory=Oracle)
    python: str = sys.executable
    answer_timeout_s: float = 60.0
    server_log: str | None = None  # where the server's stderr goes (default: nowhere)


@dataclass
class ReplayOutcome:
    request: Request
    suggestion_id: str | None
    text: str
    basis: str  # logged | oracle | unshown (the recording's editor dropped it unseen) | hidden | none (no suggestion)
    outcome: str | None
    accepted_length: int | None
    chars_saved: int
    round_trip_ms: float | None
    would_accept: bool | None = None  # the outcome's verdict, or the oracle's on a suggestion the server hid
    edit_uri: str | None = None  # a next edit in another document than the one asked about (a cell below): that one
    # what of the completion entry the request named (LSP's selectedCompletionInfo) was not typed yet: the oracle reads
    # it before the suggestion, shown or hidden alike
    entry_rest: str = ""

    @property
    def kind(self) -> str:
        return self.request.kind


@dataclass
class ReplayResult:
    source_session_id: str
    session_id: str | None
    requests: int
    replayed: int
    suggestions: int
    accepted: int
    rejected: int
    by_basis: dict[str, int]
    chars_saved: int
    wall_s: float
    recorded_s: float
    source_complete: bool
    complete: bool
    fidelity: dict[str, int]
    issues: list[str]
    model: str | None
    settings: dict[str, Any]
    # of ``accepted``, those accepted in part (a word or a line of them), as `tact simulate` and `tact report` say
    partially_accepted: int = 0
    next_edits: dict[str, int] = field(default_factory=dict)  # requests, predicted, accepted (completions are above)
    notes: list[str] = field(default_factory=list)
    outcomes: list[ReplayOutcome] = field(default_factory=list, repr=False)
    # on the last session replayed: the sessions after it that --limit left out (a replay cut at a session's end
    # looked whole)
    sessions_not_replayed: int = 0

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("outcomes")
        return out

    def decisions(self) -> list[tuple]:
        """What the replay decided, request by request: the part that must not change between identical runs."""
        return [(o.request.suggestion_id, o.text, o.basis, o.outcome, o.accepted_length, o.chars_saved)
                for o in self.outcomes]


def resolve_sessions(conn: sqlite3.Connection, wanted: str | None, source: Path | None = None) -> list[str]:
    """Every session, oldest first, or the one whose id is (or starts with) ``wanted``."""
    ids = [s["id"] for s in list_sessions(conn)]
    if wanted is None:
        if not ids:
            raise ReplayError("the database holds no sessions")
        return ids
    matches = sessions_named(ids, wanted)
    if not matches:
        raise ReplayError(no_session_named(ids, wanted, source))
    if len(matches) > 1:
        raise ReplayError(f"session {wanted!r} is ambiguous: it starts {len(matches)} session ids")
    return matches


def _named_model(options: ReplayOptions) -> str | None:
    """The model directory the user named (--model, else a modelPath override); None when neither names one."""
    if options.model:
        return options.model
    path = options.overrides.get("modelPath")
    return path if isinstance(path, str) and path else None


def _model_for(script: Script, options: ReplayOptions) -> str | None:
    named = _named_model(options)
    if named:
        return named
    recorded = ((script.session.get("models") or {}).get("completion") or {}).get("modelDir")
    if recorded and Path(recorded).is_dir():
        return recorded
    return None


def _settings(recorded: dict[str, Any] | None, overrides: dict[str, Any]) -> dict[str, Any]:
    values = {k: v for k, v in (recorded or {}).items() if k not in _NOT_REPLAYED}
    values.update({k: v for k, v in overrides.items() if k not in _NOT_REPLAYED})
    return values


def _missing_model_settings(settings: dict[str, Any], overrides: dict[str, Any]) -> list[str]:
    """Take out of ``settings`` the recorded model paths (`_MODEL_SETTINGS`) that are not on this machine, so that the
    replay's server loads its shipped one, and say so; refuse an override naming none. Passed on, a missing
    acceptance model turned the gate off for the whole replay, which said nothing of it."""
    notes = []
    for key in _MODEL_SETTINGS:
        value = settings.get(key)
        if not isinstance(value, str) or not value.strip():
            continue
        try:
            here = Path(value).expanduser().exists()
        except RuntimeError:  # an unknown user's ~
            here = False
        if here:
            continue
        if key in overrides:
            raise ReplayError(f"--set {key}={value}: no such file or directory")
        del settings[key]
        notes.append(f"the recorded {key} {value} is not here: the shipped one is used (--set {key}=PATH to choose)")
    return notes


def acceptance_prior(conn: sqlite3.Connection, started_at: float) -> dict[str, Any]:
    """The per-user prior the recorded session's gate started from: the decisions its server's database held when it
    started (earlier sessions, less the demo's and the simulator's, as serving counts them), as the server takes it."""
    seen = decided_outcomes(conn, SYNTHETIC_CLIENTS, before=started_at)
    return {"accepted": seen["accepted"], "rejected": seen["rejected"], "lastOutcome": seen["last_outcome"],
            "lastOutcomeAt": seen["last_outcome_at"]}


def effective_overrides(options: ReplayOptions) -> tuple[dict[str, Any], list[str]]:
    """The settings a replay imposes: the user's overrides, plus (accelerated) the ones that only cost time."""
    overrides = dict(options.overrides)
    notes = []
    if options.speed <= 0:
        for key, value in ACCELERATED_DEFAULTS.items():
            if key not in overrides:
                overrides[key] = value
                notes.append(f"accelerated: {key}={value} (a wait for keystrokes that come only after the answer; "
                             f"--set {key}=N or --real-time to keep it)")
    return overrides, notes


def _decide(req: Request, text: str, oracle: Oracle, lead: str = "") -> tuple[str, str, int | None, int]:
    """(basis, outcome, accepted_length, chars_saved) for a suggestion the new server made. ``lead``: the rest of
    a selected completion entry the suggestion continues, which the oracle reads before it (not saved by it)."""
    logged = req.logged or {}
    # A rejection the programmer did not decide counts too for the same text: shown and typed through, it was ended by
    # the server (a newer suggestion, its document's close) or typed to its end. The replay sends the same keystrokes,
    # which end it so again; an oracle's verdict sent before the next request gave that request's gate an outcome the
    # recorded one had not seen.
    if logged.get("text") == text and (programmer_decided(logged) or logged.get("outcome") == "rejected"):
        outcome = logged["outcome"]
        if outcome not in ACCEPTED:
            return "logged", outcome, None, 0
        whole = outcome == "accepted"
        length = logged.get("accepted_length") or (utf16_len(text) if whole else 0)
        # accepted, then taken back: the replay accepts it too, and says it was taken back (`_Driver._request`)
        saved = 0 if taken_back(logged) else len(text) if whole else accepted_chars(text, length)
        return "logged", outcome, length, saved
    if oracle.accepts(lead + text, req.reference):
        return "oracle", "accepted", utf16_len(text), max(0, oracle.chars_saved(lead + text, req.reference) - len(lead))
    return "oracle", "rejected", None, 0


def taken_back(logged: dict[str, Any]) -> bool:
    """The logged suggestion's accept was taken back (`undone_at`): no acceptance, nothing saved."""
    return logged.get("outcome") in ACCEPTED and isinstance(logged.get("undone_at"), (int, float))


def programmer_decided(logged: dict[str, Any]) -> bool:
    """The logged suggestion's outcome is the programmer's decision (not a rejection by the server or by time)."""
    return (logged.get("outcome") in _DECISIVE_OUTCOMES
            and not (logged.get("outcome") == "rejected" and logged.get("reject_reason") in _UNDECIDED_REJECTS))


def edit_range(edit: dict[str, Any]) -> list[int] | None:
    """[start line, start character, end line, end character] of an LSP edit, as next edits are logged."""
    try:
        rng = edit["range"]
        where = [rng["start"]["line"], rng["start"]["character"], rng["end"]["line"], rng["end"]["character"]]
    except (KeyError, TypeError):
        return None
    return where if all(isinstance(x, int) and not isinstance(x, bool) for x in where) else None


class _Driver:
    def __init__(self, client: LspClient, script: Script, options: ReplayOptions, budget: int | None,
                 progress: Callable[[str], None] | None) -> None:
        self.client = client
        self.script = script
        self.options = options
        self.budget = budget
        self.progress = progress
        self.outcomes: list[ReplayOutcome] = []
        self.limited = False
        # Requests answered with an error, or (accelerated) with no answer in time: their outcome reads "none", like
        # an answer with nothing, and a server failing every request made a complete, identical, fast replay.
        self.unanswered = 0
        self.versions: dict[str, int] = {}  # uri -> the version the server has
        self.texts: dict[str, SplitText] = {}  # uri -> the text the server has, changed in place change by change
        self.later: list[tuple[float, int, Callable[[], None]]] = []  # outcomes due after a later step (_decided)
        self._order = itertools.count()
        # Notebooks, sent as an editor sends them: a cell's document is opened, changed and closed through its
        # notebook's messages. Cells some notebook step lists are held from their open step until a notebook step
        # sends them (uri -> language).
        self.cells = {c for step in script.steps if step.notebook is not None for c in step.notebook.cells}
        self.held: dict[str, str] = {}
        self.notebooks: dict[str, tuple[list[str], int]] = {}  # notebook uri -> (its cells the server has, version)
        self.notebook_of: dict[str, str] = {}  # cell uri -> the uri of the open notebook it is in
        self.at = 0  # the index of the step being sent
        self._changes: dict[str, tuple[list[int], list[Step]]] | None = None  # see _next_text

    def run(self) -> None:
        steps = self.script.steps
        speed = self.options.speed
        t_first = steps[0].ts if steps else 0.0
        wall0 = time.perf_counter()
        overrides = effective_overrides(self.options)[0]
        settings0 = _settings(self.script.session.get("settings"), overrides)
        for i, step in enumerate(steps):
            if speed > 0:
                delay = (step.ts - t_first) / speed - (time.perf_counter() - wall0)
                if delay > 0:
                    time.sleep(delay)
            self._send_due(step.ts)
            self.at = i
            if step.kind == "open":
                language = "python" if step.language_id is None else step.language_id  # "" is no language, not Python
                if step.uri in self.cells:
                    self.held[step.uri] = language  # sent with its notebook's step
                else:
                    self.client.did_open(step.uri, step.text or "", step.version or 0, language)
                self.texts[step.uri], self.versions[step.uri] = SplitText(step.text or ""), step.version or 0
            elif step.kind == "change":
                doc = self.texts.setdefault(step.uri, SplitText())
                doc.splice(step.start_offset, step.end_offset, step.inserted)
                self.versions[step.uri] = step.version or 0
                self.client.notify(REPLAY_CLOCK, {"ts": step.ts})  # keystrokes are grouped into edits by this time
                changes = [change_at(*step.start, step.inserted, *step.end)]
                if (notebook := self.notebook_of.get(step.uri)) is not None:
                    self.client.did_change_notebook_text(notebook, self.notebooks[notebook][1], step.uri,
                                                         step.version, changes)
                elif step.uri not in self.held:  # a held cell's text goes with its notebook's step
                    self.client.did_change(step.uri, step.version, changes)
            elif step.kind == "close":
                # A notebook's cell is closed by the notebook step logged after its close (the change that drops it,
                # or the notebook's close); a held cell was never sent.
                if step.uri not in self.notebook_of and self.held.pop(step.uri, None) is None:
                    self.client.notify("textDocument/didClose", {"textDocument": {"uri": step.uri}})
            elif step.kind == "notebook":
                self._notebook(step.notebook)
            elif step.kind == "settings":
                values = dict(settings0)
                values.update(_settings(step.settings, overrides))
                # as at the start (`replay_session`): a recorded model path not here is the shipped model's, or a
                # settings change put it back and turned the replay's gate off
                _missing_model_settings(values, overrides)
                self.client.notify("workspace/didChangeConfiguration", {"settings": {"tact": values}})
            elif step.kind == "request":
                if self.budget is not None and len(self.outcomes) >= self.budget:
                    self.limited = True
                    break
                nxt = steps[i + 1].ts if i + 1 < len(steps) else step.ts + 5.0
                deadline = wall0 + (nxt - t_first) / speed if speed > 0 else None
                self._catch_up(step.request)
                if step.request.kind == "next_edit":
                    self._next_edit(step.request, deadline, nxt)
                else:
                    self._request(step.request, deadline, nxt)
                if self.progress and len(self.outcomes) % 200 == 0:
                    self.progress(f"{len(self.outcomes)} of {len(self.script.requests)} requests replayed")
        self._send_due(None)

    def _catch_up(self, req: Request) -> None:
        """Bring the server's document to the version its request was logged at. Changes that left the text as it
        was (a line break typed and deleted, a word pasted over itself) reach no edit in telemetry, so the replay's
        version fell behind the recording's and the request was logged at an older version. An empty change moves
        the version alone, as LSP allows; the text and the edits are untouched."""
        uri = req.uri
        if uri not in self.versions or uri in self.held or req.version <= self.versions[uri]:
            return
        self.versions[uri] = req.version
        if (notebook := self.notebook_of.get(uri)) is not None:
            self.client.did_change_notebook_text(notebook, self.notebooks[notebook][1], uri, req.version, [])
        else:
            self.client.did_change(uri, req.version, [])

    def _notebook(self, nb: NotebookCells) -> None:
        """Send a notebook step as an editor does: the cells it opens go with it (their held text as replayed so
        far), those it drops are closed by it, and one array change turns the old cell order into the new one."""
        sent = self.notebooks.get(nb.notebook_uri)
        if nb.kind == "close":
            if sent is not None:
                del self.notebooks[nb.notebook_uri]
                for cell in sent[0]:
                    self.notebook_of.pop(cell, None)
                self.client.did_close_notebook(nb.notebook_uri, sent[0])
            return
        old = sent[0] if sent is not None else []
        cells = [c for c in nb.cells if c in old or c in self.held]
        opened = [text_document_item(c, self.texts[c].text(), self.versions[c], self.held.pop(c))
                  for c in cells if c not in old]
        if sent is None:  # its open was not logged (or not as an open): the server gets it as one
            self.client.did_open_notebook(nb.notebook_uri, nb.notebook_type, nb.version, opened)
        else:
            start = next((n for n, (a, b) in enumerate(zip(old, cells)) if a != b), min(len(old), len(cells)))
            end = 0  # cells kept at the end
            while end < min(len(old), len(cells)) - start and old[-1 - end] == cells[-1 - end]:
                end += 1
            closed = [c for c in old if c not in cells]
            self.client.did_change_notebook_cells(nb.notebook_uri, nb.version, start, len(old) - start - end,
                                                  cells[start:len(cells) - end], opened, closed)
            for cell in closed:
                self.notebook_of.pop(cell, None)
        self.notebooks[nb.notebook_uri] = (cells, nb.version)
        for cell in cells:
            self.notebook_of[cell] = nb.notebook_uri

    def _decided(self, at: float, next_ts: float, send: Callable[[], None]) -> None:
        """Tell the server the programmer's decision (``send``), at ``at`` on the recorded clock: at once when it came
        before the next recorded step, else once the steps recorded before it are sent. Sent first, its clock pin ran
        ahead of the next change, pinned back in time after it, and the edit-expiry timer could close meanwhile an
        edit the recording kept open."""
        if at <= next_ts:
            self._send_due(at)  # one queued earlier still goes first: the clock pins only move forward
            self._send_at(at, send)
        else:
            heapq.heappush(self.later, (at, next(self._order), send))

    def _send_at(self, at: float, send: Callable[[], None]) -> None:
        self.client.notify(REPLAY_CLOCK, {"ts": at})
        send()

    def _send_due(self, ts: float | None) -> None:
        """Send the decisions due by ``ts`` on the recorded clock (None: all of them), in their recorded order."""
        while self.later and (ts is None or self.later[0][0] <= ts):
            at, _, send = heapq.heappop(self.later)
            self._send_at(at, send)

    def _request(self, req: Request, deadline: float | None, next_ts: float) -> None:
        # The gate's timing features (typing speed, time since the last outcome) see the recorded time.
        self.client.notify(REPLAY_CLOCK, {"ts": req.ts})
        sel = req.selected  # the completion widget's entry the recorded request named
        entry = None if sel is None else change_at(sel["start_line"], sel["start_character"], sel["text"],
                                                   sel["end_line"], sel["end_character"])
        result, rtt = self._answer("textDocument/inlineCompletion", inline_completion_params(
            req.uri, req.line, req.character, req.trigger == "invoked", entry), deadline)
        items = (result.get("items") if isinstance(result, dict) else result) or []
        item = items[0] if items else None
        sid = (((item or {}).get("command") or {}).get("arguments") or [None])[0]
        text = (item or {}).get("insertText") or ""
        if not (item and isinstance(sid, str) and isinstance(text, str) and text):
            self.outcomes.append(ReplayOutcome(req, None, "", "none", None, None, 0, rtt,
                                               entry_rest=self._entry_rest(req, sel) if sel is not None else ""))
            return
        lead, entry_units = "", 0
        if sel is not None and text.startswith(sel["text"]):  # the item carries the entry before the suggestion
            text, lead, entry_units = text[len(sel["text"]):], self._entry_rest(req, sel), utf16_len(sel["text"])
        if self._dropped_unshown(req, text):
            self.outcomes.append(ReplayOutcome(req, sid, text, "unshown", None, None, 0, rtt))
            return
        basis, outcome, length, saved = _decide(req, text, self.options.oracle, lead)
        self._shown(DID_SHOW, req.kind, sid)
        logged_at = (req.logged or {}).get("outcome_at") if basis == "logged" else None

        def send() -> None:
            if outcome == "accepted":
                try:
                    self.client.request("workspace/executeCommand", {"command": ACCEPT_COMMAND, "arguments": [sid]})
                except LspError:  # LspTimeout (no answer) too
                    pass
            else:
                if outcome == "partially_accepted":
                    # counted over the item, as an editor counts it: the entry, then the suggestion's part
                    self.client.notify(DID_PARTIALLY_ACCEPT, {"id": sid, "acceptedLength": entry_units + (length or 0)})
                if reason := turned_down(outcome, basis, req.logged):
                    self.client.notify(DID_REJECT, {"id": sid, "reason": reason})

        self._decided(max(req.ts, logged_at or next_ts), next_ts, send)  # when the programmer decided
        undone = basis == "logged" and taken_back(req.logged)
        if undone:  # and when they took it back: the server marks it, unless the replayed edits showed it so
            self._decided(max(req.ts, logged_at or next_ts, req.logged["undone_at"]), next_ts,
                          lambda: self.client.notify(REPLAY_UNDONE, {"id": sid}))
        self.outcomes.append(ReplayOutcome(req, sid, text, basis, outcome, length, saved, rtt,
                                           outcome in ACCEPTED and not undone))


    def _shown(self, method: str, kind: str, sid: str) -> None:
        """Report the answer shown where the recording's client reported shows of its ``kind`` (VS Code): a client
        that does not (Neovim, Emacs) has the server end a suggestion by its rules for such clients (one typed over
        before an answer with nothing to show is rejected `superseded`), and a replay that reported every answer shown
        left that suggestion open and on screen to the session's end."""
        if kind in self.script.reports_shows:
            self.client.notify(method, {"id": sid})

    def _dropped_unshown(self, req: Request, text: str | None = None) -> bool:
        """Whether the recording's editor dropped its answer to ``req`` before showing it (a client that reports what
        it shows reported others, not this one, and it ended unseen: the programmer typed on). The replay's
        answer is not shown there either, and no one decides on it: shown and judged, a same-settings replay of a VS
        Code session counted 16 suggestions shown where the recording had 6.

        So too, for every client, a request whose answer never reached the editor: logged cancelled `client` or
        `stale` (``_NEVER_ANSWERED``). Answered and judged, a same-settings replay of a Neovim session that cancels
        on typing showed 104 suggestions where the recording had 49. As above, at any settings and speed: the
        programmer typed on before the answer, so the editor would have dropped a faster one too.

        And a completion of the recorded ``text`` that the programmer typed along (cancelled ``TYPED_ALONG``): the
        next request's answer carries their decision. Judged on its own, typing two characters of a suggestion and
        accepting the rest replayed as three suggestions shown and accepted where the recording had one."""
        logged = req.logged or {}
        if logged.get("shown_at") is not None or logged.get("outcome") not in ("rejected", "cancelled"):
            return False
        return ((req.kind in self.script.reports_shows and bool(logged.get("text")))
                or logged.get("cancel_reason") in _NEVER_ANSWERED
                or (logged.get("cancel_reason") == TYPED_ALONG and text is not None and logged.get("text") == text))

    def _entry_rest(self, req: Request, sel: dict[str, Any]) -> str:
        """What of a selected completion entry is not typed yet at the cursor: all of it, unless the text typed
        since the entry's start is its beginning."""
        doc = self.texts.get(req.uri, SplitText())
        start = doc.offset_at(sel["start_line"], sel["start_character"])  # clamped: the fields are checked ints
        typed = doc[start:req.offset] if start <= req.offset else ""
        return sel["text"][len(typed):] if sel["text"].startswith(typed) else sel["text"]

    def _answer(self, method: str, params: dict[str, Any], deadline: float | None) -> tuple[Any, float]:
        """The result of one request (None when it failed or, past ``deadline``, was cancelled) and its round trip."""
        t0 = time.perf_counter()
        msg_id, q = self.client.request_async(method, params)
        timeout = self.options.answer_timeout_s if deadline is None else max(0.0, deadline - t0)
        result: Any = None
        try:
            result = LspClient.result(q, timeout)
        except queue.Empty:
            self.client.cancel(msg_id)
            if deadline is None:  # at its own pace a late answer is the editor's to drop; accelerated, none came
                self.unanswered += 1
        except LspError:
            result = None
            self.unanswered += 1
        return result, (time.perf_counter() - t0) * 1000

    def _next_edit(self, req: Request, deadline: float | None, next_ts: float) -> None:
        """Ask for a next edit where one was asked for (in other cells too where the recording did). Its outcome: the
        logged one when it is the edit the programmer decided on (same document, range and text), else accepted when
        it does what the programmer did next to the document it edits: the requested one, or another cell it names
        (``textDocument``), whose text it is applied to."""
        self.client.notify(REPLAY_CLOCK, {"ts": req.ts})
        result, rtt = self._answer(NEXT_EDIT, next_edit_params(req.uri, self.versions.get(req.uri, 0), req.line,
                                                               req.character, req.other_cells), deadline)
        edits = (result or {}).get("edits") if isinstance(result, dict) else None
        edit = edits[0] if isinstance(edits, list) and edits and isinstance(edits[0], dict) else None
        sid, new_text = (edit or {}).get("id"), (edit or {}).get("newText")
        target = (edit or {}).get("textDocument")
        uri = target["uri"] if isinstance(target, dict) and isinstance(target.get("uri"), str) else req.uri
        where = edit_range(edit) if edit else None
        text = self.texts.get(uri, SplitText() if uri == req.uri else None)  # a cell the replay never opened: none
        after = (apply_range(text, *where, new_text)
                 if where is not None and isinstance(new_text, str) and text is not None else None)
        if not (isinstance(sid, str) and after is not None):
            self.outcomes.append(ReplayOutcome(req, None, "", "none", None, None, 0, rtt))
            return
        if self._dropped_unshown(req):
            self.outcomes.append(ReplayOutcome(req, sid, new_text, "unshown", None, None, 0, rtt, None,
                                               uri if uri != req.uri else None))
            return
        logged = req.logged or {}
        next_text = req.next_text if uri == req.uri else self._next_text(uri)
        if (logged.get("text") == new_text and logged.get("range") == where
                and (logged.get("edit_uri") or req.uri) == uri and programmer_decided(logged)):
            basis, accepted = "logged", logged["outcome"] != "rejected"  # the edit the programmer decided on
        else:
            basis, accepted = "oracle", next_text is not None and after == next_text
        self._shown(DID_SHOW_NEXT_EDIT, req.kind, sid)
        logged_at = logged.get("outcome_at") if basis == "logged" else None

        def send() -> None:
            if accepted:
                try:
                    self.client.request("workspace/executeCommand",
                                        {"command": ACCEPT_NEXT_EDIT_COMMAND, "arguments": [sid]})
                except LspError:  # LspTimeout (no answer) too
                    pass
            else:
                reason = logged.get("reject_reason") if basis == "logged" else None
                self.client.notify(DID_REJECT_NEXT_EDIT,
                                   {"id": sid, "reason": reason or ("typedOver" if next_text else "ignored")})

        self._decided(max(req.ts, logged_at or next_ts), next_ts, send)
        self.outcomes.append(ReplayOutcome(req, sid, new_text, basis, "accepted" if accepted else "rejected",
                                           utf16_len(new_text) if accepted else None,
                                           len(new_text) if accepted else 0, rtt, accepted,
                                           uri if uri != req.uri else None))

    def _next_text(self, uri: str) -> str | None:
        """Another document's text once the programmer's next change to it after the step being sent is applied, as
        ``Request.next_text`` is for the requested one; None (the edit counts as rejected, ``ignored``) when it is
        closed or never changed again. Each document's changes and closes are indexed once, so a look-up costs a
        search and the one change, not a scan of the script."""
        if self._changes is None:
            self._changes = {}
            for n, step in enumerate(self.script.steps):
                if step.kind in ("change", "close") and step.uri is not None:
                    at, steps = self._changes.setdefault(step.uri, ([], []))
                    at.append(n)
                    steps.append(step)
        at, steps = self._changes.get(uri, ([], []))
        return next_text_after(steps, bisect.bisect_right(at, self.at), uri, self.texts[uri])


def turned_down(outcome: str, basis: str, logged: dict | None) -> str | None:
    """The reject reason a replay sends for a completion not accepted whole (None: no reject). A decision replayed
    from the log sends the logged reason: after a partial accept every replay said `typedOver`, though the programmer
    had dismissed the rest, or turned nothing down."""
    if basis == "logged":
        reason = (logged or {}).get("reject_reason")
        if reason in _SERVER_REJECTS:
            return None  # the server ends it again, as it did
        return reason if outcome == "partially_accepted" else reason or "typedOver"
    return "typedOver"


def replay_session(source: Path, conn: sqlite3.Connection, session_id: str, output: Path, options: ReplayOptions,
                   budget: int | None = None, progress: Callable[[str], None] | None = None) -> ReplayResult:
    """Replay one session into ``output`` (the server creates or appends to it); see the module docstring."""
    try:
        script = build_script(conn, session_id)
    except sqlite3.DatabaseError as exc:
        raise ReplayError(f"{source}: cannot read session {session_id}: {exc}") from exc
    except (ValueError, TypeError, KeyError, AttributeError, IndexError) as exc:
        # a row that is not what its event should be: a payload not an object, or lacking a field its event has
        raise ReplayError(f"{source}: session {session_id} is damaged ({type(exc).__name__}: {exc})") from None
    bad = [key for key in ("settings", "models") if not isinstance(script.session.get(key) or {}, dict)]
    if bad:  # read as a JSON object below; anything else would fail there with a traceback
        raise ReplayError(f"{source}: session {session_id} is damaged: its {' and '.join(bad)} are not JSON objects")
    model = _model_for(script, options)
    _check_model(model)
    overrides, notes = effective_overrides(options)
    settings = _settings(script.session.get("settings"), overrides)
    notes += _missing_model_settings(settings, overrides)
    recorded_model = ((script.session.get("models") or {}).get("completion") or {}).get("modelDir")
    if model is None and recorded_model and not _named_model(options):
        notes.append(f"the recorded model {recorded_model} is not here: the shipped one is used (--model DIR to choose)")
    try:
        started_at = script.session.get("started_at")
        if started_at is None:
            started_at = script.steps[0].ts if script.steps else 0.0
        prior = acceptance_prior(conn, started_at)
    except sqlite3.DatabaseError as exc:
        raise ReplayError(f"{source}: cannot read the decisions before session {session_id}: {exc}") from exc
    started = time.time()
    wall0 = time.perf_counter()
    with open(options.server_log, "ab") if options.server_log else open(os.devnull, "wb") as err:
        client = LspClient(server_command(options.python, model, str(output)), stderr=err)
        driver = _Driver(client, script, options, budget, progress)
        new_session = None
        try:
            workspace = script.session.get("workspace")
            client.initialize({"tact": settings, ACCEPTANCE_PRIOR: prior}, client_name="tact-replay",
                              root_uri=workspace)
            status = wait_ready(client)
            new_session = status.get("sessionId")
            if status.get("degraded"):
                raise ReplayError(f"the server has no model: {status.get('reason')}")
            if not status.get("database"):  # it would replay the whole session and then fail to save it
                raise ReplayError(f"cannot write the results to {output}: "
                                  f"{status.get('telemetryReason') or 'telemetry is off'} (choose another -o)")
            driver.run()
        except (BrokenPipeError, ConnectionError, LspError, queue.Empty) as exc:
            driver.script.issues.append(f"the server stopped answering ({type(exc).__name__}: {exc}); replay is partial")
            driver.limited = True
        finally:
            client.shutdown()
    wall = time.perf_counter() - wall0
    outcomes = driver.outcomes
    failed = 0
    if new_session:
        try:
            _label_unanswered(output, new_session, outcomes, options.oracle)
            _count_kept(output, new_session, outcomes)
            failed = _failed_requests(output, new_session)
        except sqlite3.Error as exc:
            driver.script.issues.append(f"could not read the new session back ({exc})")
    if failed or driver.unanswered:
        said = [f"{failed} failed in the server (its model raised)"] if failed else []
        said += [f"{driver.unanswered} answered with an error or not in time"] if driver.unanswered else []
        driver.script.issues.append(f"requests not answered as the server should: {', '.join(said)}; replay is "
                                    "partial")
    completions = [o for o in outcomes if o.kind == "completion"]
    shown = [o for o in completions if o.basis in ("logged", "oracle")]
    by_basis: dict[str, int] = {}
    for o in completions:
        by_basis[o.basis] = by_basis.get(o.basis, 0) + 1
    next_edits = [o for o in outcomes if o.kind == "next_edit"]
    next_edit_counts = {"requests": len(next_edits), "predicted": sum(o.suggestion_id is not None for o in next_edits),
                        "accepted": sum(o.outcome == "accepted" for o in next_edits),
                        "chars_saved": sum(o.chars_saved for o in next_edits)} if next_edits else {}
    if script.requests_left_out:
        script.issues.append(f"{script.requests_left_out} requests not replayed (their documents have no logged open: "
                             "a clock set back while recording orders them before it); replay is partial")
    result = ReplayResult(
        source_session_id=session_id, session_id=new_session, requests=len(script.requests) + script.requests_left_out,
        replayed=len(outcomes), suggestions=len(shown),
        # an accept taken back (its verdict no) counts rejected, as `tact report` reads it
        accepted=sum(o.outcome in ACCEPTED and o.would_accept for o in shown),
        partially_accepted=sum(o.outcome == "partially_accepted" and o.would_accept for o in shown),
        rejected=sum(o.outcome == "rejected" or (o.outcome in ACCEPTED and not o.would_accept) for o in shown),
        by_basis=by_basis,
        # completions' characters, as `tact report` counts them; a next edit's are in ``next_edits``
        chars_saved=sum(o.chars_saved for o in completions), wall_s=round(wall, 3),
        recorded_s=round(script.duration_s, 3), source_complete=script.complete,
        complete=(not driver.limited and len(outcomes) == len(script.requests) and not script.requests_left_out
                  and not failed and not driver.unanswered),
        # of the requests replayed (a --limit replays fewer than the script holds)
        fidelity=fidelity_counts(o.request for o in outcomes), issues=list(script.issues), model=model,
        settings=settings, next_edits=next_edit_counts, notes=notes, outcomes=outcomes)
    if new_session:
        _write_results(output, source, result, options, started, script.session.get("started_at"))
    return result


def _failed_requests(output: Path, session_id: str) -> int:
    """The new session's requests the server logged failed."""
    conn = open_readonly(output)
    try:
        return outcome_counts(conn, session_id).get("failed", 0)
    finally:
        conn.close()


def _label_unanswered(output: Path, session_id: str, outcomes: list[ReplayOutcome], oracle: Oracle) -> None:
    """Find the server's row for every request it answered with nothing; where it generated a suggestion
    and hid it (stage 2), record what the oracle says the programmer would have done with it."""
    conn = sqlite3.connect(output.resolve().as_uri() + "?mode=ro", uri=True, timeout=30)
    try:
        rows = conn.execute("SELECT id, uri, line, character, text, outcome FROM suggestions WHERE session_id = ?"
                            " AND COALESCE(kind, 'completion') = 'completion' ORDER BY requested_at, id",
                            [session_id]).fetchall()
    finally:
        conn.close()
    index = {row[0]: n for n, row in enumerate(rows)}
    j = 0
    for o in outcomes:
        if o.kind != "completion":
            continue
        if o.suggestion_id is not None:
            j = index.get(o.suggestion_id, j - 1) + 1
            continue
        key = (o.request.uri, o.request.line, o.request.character)
        for k in range(j, min(len(rows), j + 64)):
            if rows[k][1:4] == key:
                j = k + 1
                sid, _, _, _, text, outcome = rows[k]
                o.suggestion_id = sid
                if outcome == "hidden" and text:
                    o.text, o.basis, o.outcome = text, "hidden", "hidden"
                    # as a shown one is judged (`_decide`): the entry's untyped rest, then the suggestion
                    o.would_accept = oracle.accepts(o.entry_rest + text, o.request.reference)
                break


def _count_kept(output: Path, session_id: str, outcomes: list[ReplayOutcome]) -> None:
    """Characters saved by each accept as the replaying server measured them: where it followed the accept to its
    watch's end (``kept_length``), what the replayed edits left of it, as `tact report` counts a recording's."""
    conn = sqlite3.connect(output.resolve().as_uri() + "?mode=ro", uri=True, timeout=30)
    try:
        kept = dict(conn.execute("SELECT id, kept_length FROM suggestions WHERE session_id = ? AND kept_length IS NOT"
                                 " NULL AND undone_at IS NULL", [session_id]).fetchall())
    finally:
        conn.close()
    for o in outcomes:
        length = kept.get(o.suggestion_id)
        if o.kind == "completion" and o.outcome in ACCEPTED and o.would_accept and isinstance(length, int):
            o.chars_saved = min(o.chars_saved, saved_chars(o.text, o.outcome, o.accepted_length, length)[1])


def _write_results(output: Path, source: Path, result: ReplayResult, options: ReplayOptions, started: float,
                   source_started_at: float | None = None) -> None:
    """The replay tables; ``source_started_at`` (the recorded session's start) lets a report draw the replay on the
    recording's time axis, which starts there and not at the first request."""
    conn = sqlite3.connect(output, timeout=30)
    try:
        with conn:
            conn.executescript(REPLAY_TABLES)
            conn.execute(
                "INSERT OR REPLACE INTO replay_runs (session_id, source_database, source_session_id, overrides, model,"
                " speed, oracle, started_at, wall_s, recorded_s, requests, replayed, source_complete, complete, fidelity,"
                " issues, source_started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [result.session_id, str(source), result.source_session_id, json.dumps(options.overrides), result.model,
                 options.speed, json.dumps(asdict(options.oracle)), started, result.wall_s, result.recorded_s,
                 result.requests, result.replayed, int(result.source_complete), int(result.complete),
                 json.dumps(result.fidelity), json.dumps(result.issues + result.notes), source_started_at])
            conn.executemany(
                "INSERT INTO replay_suggestions (session_id, seq, source_suggestion_id, source_ts, suggestion_id, uri, line,"
                " character, fidelity, text, basis, outcome, accepted_length, chars_saved, reference, would_accept,"
                " round_trip_ms, kind, edit_uri) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(result.session_id, n, o.request.suggestion_id, o.request.ts, o.suggestion_id, o.request.uri, o.request.line,
                  o.request.character, o.request.fidelity, o.text, o.basis, o.outcome, o.accepted_length, o.chars_saved,
                  o.request.reference, None if o.would_accept is None else int(o.would_accept),
                  round(o.round_trip_ms, 3) if o.round_trip_ms is not None else None, o.kind, o.edit_uri)
                 for n, o in enumerate(result.outcomes)])
    finally:
        conn.close()


def replay(source: Path, output: Path, session: str | None = None, options: ReplayOptions | None = None,
           progress: Callable[[str], None] | None = None) -> list[ReplayResult]:
    """Replay the sessions of ``source`` (all, or ``session``) into the new database ``output``."""
    options = options or ReplayOptions()
    source, output = Path(source), Path(output)
    if output.exists():
        raise ReplayError(f"{output} already exists; replay results go to a new database (choose another -o)")
    if output.resolve() == source.resolve():
        raise ReplayError("the output must be a new database, not the one replayed")
    try:
        # an older schema is read from an upgraded copy, as `tact report` reads it: the advice to open it with a
        # server first also applied that server's retention, which removed the old sessions to replay
        conn, note = open_upgraded(source)
    except TelemetrySchemaError as exc:
        raise ReplayError(str(exc)) from None
    except sqlite3.Error as exc:
        raise ReplayError(f"{source}: cannot open ({exc})") from None
    if note and progress:
        progress(note)
    results = []
    try:
        try:
            ids = resolve_sessions(conn, session, source)
        except sqlite3.DatabaseError as exc:  # damaged JSON in a column too (reader.DamagedRowError)
            raise ReplayError(f"{source}: cannot read its sessions ({exc})") from None
        named = _named_model(options)
        if named:
            _check_model(named)
        created = [d for d in (output.parent, *output.parent.parents) if not d.exists()]
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ReplayError(f"cannot make {output.parent} for the results ({exc.strerror}); choose another -o") from None
        if not os.access(output.parent, os.W_OK | os.X_OK):  # said after a whole session was replayed
            raise ReplayError(f"cannot write the results in {output.parent}; choose another -o")
        try:
            left = options.limit
            for n, sid in enumerate(ids):
                if left is not None and left <= 0:
                    if results:
                        results[-1].sessions_not_replayed = len(ids) - n
                        results[-1].notes.append(f"--limit {options.limit} reached: {len(ids) - n} more session"
                                                 f"{'s' * (len(ids) - n != 1)} of the recording not replayed")
                    break
                res = replay_session(source, conn, sid, output, options, left, progress)
                results.append(res)
                if left is not None:
                    left -= res.replayed
        except BaseException:  # a failed or interrupted replay leaves nothing behind: the output is new, and only
            # this run wrote it (kept after Ctrl-C, it read as a finished recording and blocked the same -o)
            _remove_database(output)
            for d in created:
                try:
                    d.rmdir()
                except OSError:
                    break
            raise
    finally:
        conn.close()
    return results


def _check_model(model: str | None) -> None:
    """The model directory a replay's server will load (None: the shipped one), checked before the server starts
    (one the user named, before any output is written): a server without one could only say it has none, and
    advise the editor's settings."""
    from models.model_dir import ModelDirError, check_served_model

    try:
        check_served_model(model)
    except ModelDirError as exc:
        raise ReplayError(str(exc)) from None


def _remove_database(path: Path) -> None:
    for name in (path.name, f"{path.name}-wal", f"{path.name}-shm", f"{path.name}-journal"):
        (path.parent / name).unlink(missing_ok=True)
