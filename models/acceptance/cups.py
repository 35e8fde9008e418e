"""Read any file in the CUPS format (JSON lines of Copilot suggestion events) as labelled samples.

Each ``Shown`` event is paired with the ``Accepted``/``Rejected`` event that resolves it; the
running state of the programmer (previous outcome and when, typing speed, acceptance counts) is
taken from *earlier* events only. ``labeled_state`` describes the moment after the decision and
leaks the answer: it is never read. ``measurements`` (Copilot's own telemetry) are kept apart,
for reporting a variant; the shipped model never sees them.

Rows with missing or malformed fields are skipped and counted by reason, never fatal.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from models.acceptance.features import ContextInputs, ShownHistory, ShownRecall

OUTCOMES = {"Accepted": 1, "Rejected": 0}
KNOWN_EVENTS = frozenset({"Shown", "Accepted", "Rejected", "Replay", "Browsing"})
MEASUREMENT_KEYS = ("meanLogProb", "meanAlternativeLogProb", "confidence", "quantile", "numTokens", "compCharLen")

# Copilot prepends a header to the prompt ("#!/usr/bin/env python3", "# Path: f.py", "// Language: cpp").
_HEADER_LINE = re.compile(r"^(#!.*|(#|//) Path: .*|(#|//) Language: .*)$")
_EXTENSIONS = {".py": "python", ".js": "javascript", ".ts": "typescript", ".cpp": "cpp", ".cc": "cpp", ".c": "c",
               ".java": "java", ".go": "go", ".rs": "rust", ".rb": "ruby", ".cs": "csharp"}


@dataclass
class CupsSample:
    group: str  # the programmer: never on both sides of a split
    label: int  # 1 accepted, 0 rejected
    time: float  # unix seconds of the Shown event
    context: ContextInputs
    suggestion: str
    measurements: dict | None = None  # Copilot's own telemetry (for a reported variant only)
    times_shown_before: int = 0  # this programmer was shown the same suggestion this often before


@dataclass
class CupsLoad:
    samples: list[CupsSample] = field(default_factory=list)
    rows: int = 0
    skipped: Counter = field(default_factory=Counter)  # reason -> rows skipped

    def summary(self) -> dict:
        return {"rows": self.rows, "samples": len(self.samples),
                "accepted": sum(s.label for s in self.samples), "skipped": dict(self.skipped)}


def strip_header(prompt: str) -> tuple[str, str]:
    """(prompt without Copilot's header lines, language id guessed from them; python by default)."""
    language = "python"
    lines = prompt.split("\n")
    n = 0
    while n < min(3, len(lines) - 1) and _HEADER_LINE.match(lines[n]):
        line = lines[n]
        if "Language:" in line:
            language = line.split("Language:", 1)[1].strip().lower() or language
        elif "Path:" in line:
            ext = Path(line.split("Path:", 1)[1].strip().replace("\\", "/")).suffix.lower()
            language = _EXTENSIONS.get(ext, language)
        n += 1
    return "\n".join(lines[n:]), language


def _parse_time(value) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _row_problem(row) -> str | None:
    """Why a row cannot be used, or None."""
    if not isinstance(row, dict):
        return "not an object"
    user = row.get("user")
    if isinstance(user, bool) or not isinstance(user, (int, str)) or user == "":
        return "missing user"
    event = row.get("event")
    if not isinstance(event, str) or event not in KNOWN_EVENTS:
        return "unknown event"
    if _parse_time(row.get("time")) is None:
        return "bad time"
    if event in ("Shown", "Accepted", "Rejected"):
        if not isinstance(row.get("prompt"), str):
            return "missing prompt"
        if not isinstance(row.get("suggestion"), str):
            return "missing suggestion"
    return None


def _number(v) -> float:
    """A logged measurement as a float; NaN when it is missing or not a finite number (JSON's integers have no bound:
    one of 400 digits ended the whole run with an OverflowError)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return math.nan
    try:
        f = float(v)
    except OverflowError:
        return math.nan
    return f if math.isfinite(f) else math.nan


def _measurements(row: dict) -> dict | None:
    m = row.get("measurements")
    if not isinstance(m, dict):
        return None
    return {k: _number(m.get(k)) for k in MEASUREMENT_KEYS}


def _document_position(row: dict) -> tuple[int | None, int | None]:
    """(document length, cursor offset) from a Shown row's measurements (`documentLength`, `promptEndPos`), as
    serving knows them; (None, None) when missing or inconsistent, and the prompt's own length stands in. The
    prompt is only the text before the cursor, so without these the document length would be that text's and
    the cursor always at the end, which no served request looks like."""
    m = row.get("measurements")
    if not isinstance(m, dict):
        return None, None
    doc, end = _number(m.get("documentLength")), _number(m.get("promptEndPos"))
    if not 0 <= end <= doc:  # False for NaN too
        return None, None
    return int(doc), int(end)


class _Pending(NamedTuple):
    """A Shown event waiting for its outcome, with what the programmer's history said when it was shown."""

    time: float
    text: str  # the prompt without Copilot's header lines
    language: str
    recall: ShownRecall
    times_shown_before: int
    row: dict
    counts: tuple[int, int, int | None, float | None]  # accepted, rejected, last outcome and its time, when shown


@dataclass
class _UserState:
    pending: _Pending | None = None
    accepted: int = 0
    rejected: int = 0
    last_outcome: int | None = None
    last_outcome_time: float | None = None
    shown: ShownHistory = field(default_factory=ShownHistory)  # one document: the prompt is all CUPS logs

    def learn(self, label: int, t: float) -> None:
        """An outcome at time ``t`` (1 accepted): the running counts and the last outcome, as serving keeps them."""
        self.pending = None
        self.count(label, t)

    def count(self, label: int, t: float) -> None:
        self.accepted += label
        self.rejected += 1 - label
        self.last_outcome, self.last_outcome_time = label, t

    def counts(self) -> tuple[int, int, int | None, float | None]:
        return self.accepted, self.rejected, self.last_outcome, self.last_outcome_time


def load_cups(path: str | Path, group_prefix: str | None = None) -> CupsLoad:
    """Labelled samples from one CUPS-format file."""
    path = Path(path)
    out = CupsLoad()
    prefix = group_prefix if group_prefix is not None else path.name
    rows: list[tuple[float, int, dict]] = []
    with open(path, encoding="utf-8-sig", errors="replace") as f:  # a byte-order mark would spoil the first row
        for n, line in enumerate(f):
            if not line.strip():
                continue
            out.rows += 1
            try:
                row = json.loads(line)
            except (ValueError, RecursionError):  # RecursionError: nested past Python's limit (no ValueError)
                out.skipped["not JSON"] += 1
                continue
            problem = _row_problem(row)
            if problem:
                out.skipped[problem] += 1
                continue
            rows.append((_parse_time(row["time"]), n, row))
    by_user: dict[str, list[tuple[float, int, dict]]] = {}
    for item in rows:
        by_user.setdefault(str(item[2]["user"]), []).append(item)
    for user, items in by_user.items():
        items.sort(key=lambda t: (t[0], t[1]))  # time order; file order breaks ties
        st = _UserState()
        for t, _, row in items:
            event = row["event"]
            if event == "Shown":
                counts = st.counts()  # what the gate knows when this one is decided
                if st.pending is not None:
                    # No label, but serving counts a suggestion superseded while unresolved as rejected (the
                    # suggestion ledger, when the next one is issued: after that one's decisions), so the programmer's
                    # later samples count it too
                    out.skipped["shown without outcome"] += 1
                    st.count(0, t)
                text, language = strip_header(row["prompt"])
                # where the cursor is in the document, as serving gives the history (ctx.offset); the prompt's
                # length only when the row does not say (the prompt often stays while the cursor moves)
                offset = _document_position(row)[1]
                offset = len(text) if offset is None else offset
                st.pending = _Pending(t, text, language, st.shown.recall("", t, offset, text),
                                      st.shown.times_shown(row["suggestion"]), row, counts)
                st.shown.record("", t, offset, text, row["suggestion"])
            elif event in OUTCOMES:
                if st.pending is None:
                    out.skipped["outcome without a Shown"] += 1
                    continue
                # Features come from the Shown row: some of the outcome row's fields were updated after
                # the decision (e.g. measurements.compCharLen, confidence) and would leak it.
                p = st.pending
                label = OUTCOMES[event]
                if isinstance(row.get("suggestion"), str) and row["suggestion"] != p.row["suggestion"]:
                    # the programmer browsed to another alternative and this outcome is that one's: the running
                    # state learns it, but it is no label for the suggestion shown
                    out.skipped["outcome for another suggestion"] += 1
                    st.learn(label, t)
                    continue
                document_chars, cursor_offset = _document_position(p.row)
                accepted, rejected, last_outcome, last_outcome_time = p.counts
                ctx = ContextInputs(
                    prefix=p.text, suffix="", language_id=p.language, document_chars=document_chars,
                    cursor_offset=cursor_offset,
                    previous_outcome=last_outcome,
                    seconds_since_outcome=None if last_outcome_time is None else p.time - last_outcome_time,
                    typing_cps=p.recall.typing_cps, user_accepted=accepted, user_rejected=rejected,
                    seconds_since_shown=p.recall.seconds_since_shown, same_prefix_as_shown=p.recall.same_prefix_as_shown)
                out.samples.append(CupsSample(f"{prefix}:{user}", label, p.time, ctx, p.row["suggestion"],
                                              _measurements(p.row), p.times_shown_before))
                st.learn(label, t)
        if st.pending is not None:
            out.skipped["shown without outcome"] += 1
    return out
