"""`tact report`: an HTML page with plots of one telemetry database, or two side by side.

Plots (PNG, matplotlib, written next to ``index.html``): acceptance rate over time, generation latency,
layers used per token, the acceptance model's trade-off (share of rejects hidden against share of
accepts lost as its threshold moves, the threshold in force marked), model calls saved by stage 1,
and characters saved. Next edits have figures of their own beside completions' (every database: zeros where it holds
none). Where a database holds notebooks, a table sets the suggestions made in notebook cells beside those made in
files, completions and next edits each.

Whatever can be read is reported. A session that never ended (the server crashed or is still running),
a replay that stopped early, or a table that could not be read make the report *partial*: the page
says so at the top and lists why. A file that is not a Tact database, or is from a newer Tact, is an
error with a message; one from an older schema is read from an upgraded temporary copy.

Figures are the user's: where a database mixes the user's sessions with those `tact demo` or `tact simulate`
recorded, those are left out (and said to be), as the acceptance gate's prior leaves them out. Two databases where
either is a replay are compared session for session, through the recorded session each replays.
"""

from __future__ import annotations

import html
import json
import math
import sqlite3
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .oracle import accepted_chars
from .reader import (DEMO_CLIENT, SIMULATE_CLIENT, SYNTHETIC_CLIENTS, DamagedRowError, checked, open_upgraded,
                     no_session_named, sessions_named)
from .schema import TelemetrySchemaError

ACCEPTED = ("accepted", "partially_accepted")
DECIDED = ("accepted", "partially_accepted", "rejected")
NOTEBOOK_CELL_SCHEME = "vscode-notebook-cell"  # VS Code's (and code-server's) URIs of notebook cells
COLORS = ("#1f77b4", "#d62728")
PLOTS = (
    ("acceptance_over_time.png", "Acceptance rate over time",
     "Share of shown suggestions accepted (whole or in part), per time bin; dots sized by how many were shown."),
    ("latency.png", "Generation latency", "Server-side time to generate each suggestion (ms); p50 and p95 marked."),
    ("layers_per_token.png", "Layers used per token",
     "Mean transformer layers run per generated token (early exit); fewer is cheaper."),
    ("acceptance_tradeoff.png", "Acceptance model trade-off",
     "As the stage-2 threshold rises, more rejected suggestions are hidden, and more accepted ones are lost; "
     "the threshold in force is marked. In a live session only shown suggestions have an outcome, so the curve "
     "starts at the threshold in force; a replay also judges the suggestions the gate hid (with its oracle)."),
    ("stage1_calls.png", "Model calls saved by stage 1",
     "Requests by what happened to them: the model ran, the stage-1 gate skipped the call, or nothing ran."),
    ("chars_saved.png", "Characters saved", "Cumulative characters the accepted suggestions typed for the programmer "
     "and the programmer kept (of an accept edited afterwards, what survived it)."),
)


class ReportError(Exception):
    """The input cannot be reported on at all; the message says why."""


@dataclass
class Dataset:
    """What one database contributes to the report."""

    label: str
    path: str
    sessions: list[dict[str, Any]] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)  # one per suggestion
    stage1: dict[str, int] = field(default_factory=dict)
    threshold: float | None = None  # stage-2 threshold in force (the latest logged)
    score_source: str = ""  # where trade-off scores come from
    is_replay: bool = False
    partial: list[str] = field(default_factory=list)  # why the data is incomplete
    notes: list[str] = field(default_factory=list)
    session_requests: dict[str, int] = field(default_factory=dict)  # session id -> its rows
    source_starts: dict[str, float] = field(default_factory=dict)  # replay session id -> the recorded session's start
    next_edits: list[dict[str, Any]] = field(default_factory=list)  # one per next edit, its keys as in ``rows``
    notebook_cells: set[str] = field(default_factory=set)  # the cell URIs the notebooks table lists
    notebooks: int = 0  # notebooks the sessions opened

    # -- figures ---------------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        figures = _outcome_figures(self.rows)
        # layers over tokens, as `tact bench early-exit` pools them: a mean over suggestions gave a one-token
        # suggestion (all its layers, from the prompt's pass) the weight of a long one
        layers = [(v, t if t is not None and t > 0 else 1) for r in self.rows
                  if (v := r["layers"]) is not None and math.isfinite(v) for t in [r.get("tokens")]]
        tokens = sum(t for _, t in layers)
        requests = figures["requests"]
        figures.pop("rejected")  # completions' keys stay as they were: their rejections are shown less accepted
        return {
            "label": self.label,
            "database": self.path,
            "sessions": len(self.sessions),
            "replay": self.is_replay,
            **figures,
            "layers_per_token": round(sum(v * t for v, t in layers) / tokens, 3) if layers else None,
            "stage1_skipped": self.stage1.get("skip", 0),
            "calls_saved_rate": round(self.stage1.get("skip", 0) / requests, 4) if requests else None,
            "next_edits": _outcome_figures(self.next_edits),
            "partial": bool(self.partial),
            "partial_reasons": self.partial,
            "notes": self.notes,
            "session_list": self.session_list(),
        }

    def is_cell(self, uri: str | None) -> bool:
        """Whether a suggestion at ``uri`` was made in a notebook cell: one the notebooks table lists, or failing that
        (a database before it, a notebook opened before the sessions read) one of VS Code's cell URIs."""
        if not uri:
            return False
        return uri in self.notebook_cells or uri.partition(":")[0].lower() == NOTEBOOK_CELL_SCHEME

    def has_notebooks(self) -> bool:
        """Whether files against notebook cells says anything here: a database without notebooks reports as before."""
        return bool(self.notebooks) or any(self.is_cell(r["uri"]) for r in (*self.rows, *self.next_edits))

    def files_vs_notebook_cells(self) -> dict[str, Any]:
        """Completions and next edits in files and in notebook cells, each on its own: whether notebooks get worse
        suggestions. A cell's prompt holds the code of the cells above it unless the server left it out."""
        figures: dict[str, Any] = {"notebooks": self.notebooks}
        for kind, rows in (("completion", self.rows), ("next_edit", self.next_edits)):
            cells, files = [], []
            for r in rows:
                (cells if self.is_cell(r["uri"]) else files).append(r)
            earlier = sum(bool(r["earlier_cells_chars"]) for r in cells)
            figures[kind] = {"files": _place_figures(files), "notebook_cells": {
                **_place_figures(cells), "earlier_cells": earlier,
                "earlier_cells_rate": round(earlier / len(cells), 4) if cells else None}}
        return figures

    def session_list(self) -> list[dict[str, Any]]:
        """The sessions reported, oldest first: their ids (which --session takes, or their first characters), when
        they started (epoch seconds, and as local time), whether they ended, the client and the requests."""
        return [{"id": s["id"], "started_at": s["started_at"], "started": local_time(s["started_at"]),
                 "ended": s["ended_at"] is not None, "client": s["client_name"],
                 "requests": self.session_requests.get(s["id"], 0)} for s in self.sessions]


def _finite_latencies(rows: list[dict[str, Any]]) -> list[float]:
    """Finite latencies only, as the plots draw them: SQLite keeps an infinite REAL, and JSON has no Infinity."""
    return sorted(v for r in rows if (v := r["latency_ms"]) is not None and math.isfinite(v))


def _outcome_figures(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """What became of some suggestions (``Dataset.rows``, or ``Dataset.next_edits``) and what they saved: one function,
    so completions and next edits are counted by the same rules under the same names."""
    shown = [r for r in rows if r["shown"]]
    accepted = sum(r["outcome"] in ACCEPTED for r in shown)
    lat = _finite_latencies(rows)
    # what survived of the accepts the server followed to their watch's end (the others have no figure)
    followed = [r for r in rows if r["kept_chars"] is not None]
    accepted_followed = sum(r["accepted_chars"] for r in followed)
    kept = sum(r["kept_chars"] for r in followed)
    return {
        "requests": len(rows),
        "generated": sum(r["generated"] for r in rows),
        "shown": len(shown),
        "accepted": accepted,
        "rejected": sum(r["outcome"] == "rejected" for r in shown),  # the accepts taken back among them
        "undone": sum(r["undone"] for r in shown),  # accepts taken back soon after: counted rejected
        "hidden": sum(r["outcome"] == "hidden" for r in rows),
        "acceptance_rate": round(accepted / len(shown), 4) if shown else None,
        "latency_p50_ms": round(percentile(lat, 0.5), 1) if lat else None,
        "latency_p95_ms": round(percentile(lat, 0.95), 1) if lat else None,
        "chars_saved": sum(r["chars_saved"] for r in rows),
        "kept_chars": kept,
        "accepted_chars_followed": accepted_followed,
        "kept_rate": round(kept / accepted_followed, 4) if accepted_followed else None,
    }


def _place_figures(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Requests, shown, accepted, acceptance rate of shown and median latency of some suggestions."""
    shown = [r for r in rows if r["shown"]]
    accepted = sum(r["outcome"] in ACCEPTED for r in shown)
    lat = _finite_latencies(rows)
    return {"requests": len(rows), "shown": len(shown), "accepted": accepted,
            "acceptance_rate": round(accepted / len(shown), 4) if shown else None,
            "latency_p50_ms": round(percentile(lat, 0.5), 1) if lat else None}


def local_time(ts: float | None) -> str | None:
    """Epoch seconds as the local date and time to the second; None when unknown."""
    if ts is None:
        return None
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))
    except (OverflowError, OSError, ValueError, TypeError):
        return None


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile, interpolated between the two nearest ranks (numpy's default): the median of an even
    count is the mean of its middle pair. The nearest rank, rounded half to even, gave the upper middle answer of
    4 and the lower of 6."""
    s = sorted(values)
    if not s:
        return float("nan")
    at = q * (len(s) - 1)
    lo = min(len(s) - 1, int(at))
    hi = min(len(s) - 1, lo + 1)
    return s[lo] + (s[hi] - s[lo]) * (at - lo)


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


Opened = tuple[sqlite3.Connection, str | None]  # a database as ``open_upgraded`` opens it: (connection, note)


def _open(path: Path) -> Opened:
    """``path`` opened for reading (an older schema from an upgraded copy); ``ReportError`` when it cannot be."""
    try:
        return open_upgraded(path)
    except TelemetrySchemaError as exc:
        raise ReportError(str(exc)) from None
    except sqlite3.Error as exc:
        raise ReportError(f"{path}: cannot open ({exc})") from None


def load(path: Path, label: str, session: str | None = None, limit: int | None = None,
         paired: tuple[set[str], str] | None = None, opened: Opened | None = None) -> Dataset:
    """Read one database; raises ``ReportError`` only when nothing at all can be read. ``paired``: (session ids,
    what they are), the sessions the compared database pairs with these: where any is here, only they are read
    (before ``limit``: the last N of the sessions compared). ``opened``: the database already open (``_open``), which
    the caller closes: an older schema is then copied and upgraded once, not for each read."""
    conn, note = opened if opened is not None else _open(path)
    data = Dataset(label, str(path))
    if note:
        data.notes.append(note)
    try:
        # One read transaction: every query sees the database as of one moment, though a server writes it meanwhile
        # (the live database `Tact: Open Latest Report` reads); otherwise decisions could count requests not read.
        conn.execute("BEGIN")
        _read(conn, data, session, limit, paired)
    finally:
        if opened is None:
            conn.close()
        else:
            conn.rollback()
    return data


def recorded_sessions(conn: sqlite3.Connection | None) -> dict[str, str]:
    """{session id: the recorded session it stands for}: the session it replays for a replay, else itself. Empty for a
    database that cannot be read here (None: it could not be opened; its load says why). ``conn`` is the database as
    ``load`` reads it, an older schema from its upgraded copy: the original is one this code refuses to read."""
    if conn is None:
        return {}
    try:
        keys = {sid: sid for (sid,) in conn.execute("SELECT id FROM sessions")}
        if "replay_runs" in _tables(conn):
            keys.update((sid, source) for sid, source in conn.execute(
                "SELECT session_id, source_session_id FROM replay_runs WHERE source_session_id IS NOT NULL")
                if sid in keys)
        return keys
    except sqlite3.DatabaseError:
        return {}


def _partial_issues(conn: sqlite3.Connection) -> dict[str, list[str]]:
    """Per replayed session, the issues its replay said made it partial (``replay_runs.issues``, a JSON list)."""
    out: dict[str, list[str]] = {}
    try:
        rows = conn.execute("SELECT session_id, issues FROM replay_runs").fetchall()
    except sqlite3.Error:
        return out
    for sid, issues in rows:
        try:
            listed = json.loads(issues) if isinstance(issues, str) else []
        except ValueError:
            continue
        if isinstance(sid, str) and isinstance(listed, list):
            out[sid] = [i.removesuffix("; replay is partial") for i in listed
                        if isinstance(i, str) and i.endswith("replay is partial")]
    return out


def _read(conn: sqlite3.Connection, data: Dataset, session: str | None, limit: int | None,
          paired: tuple[set[str], str] | None = None) -> None:
    try:
        columns = ("id", "started_at", "ended_at", "end_reason", "client_name")
        rows = conn.execute(f"SELECT {', '.join(columns)} FROM sessions ORDER BY started_at, id").fetchall()
    except sqlite3.DatabaseError as exc:
        raise ReportError(f"{data.path}: its sessions cannot be read ({exc}); the file is damaged") from None
    # a session's id is checked as the text every other table names it by (SQLite's TEXT key takes NULL and blobs)
    sessions = [dict(zip(columns, row)) for row in _checked_rows(rows, ("session_id", *columns[1:]), data, "session")]
    if nameless := sum(s["id"] is None for s in sessions):
        data.partial.append(f"session rows damaged, left out: {nameless} (a row's id column holds null)")
        sessions = [s for s in sessions if s["id"] is not None]
    if session is not None:
        named = set(sessions_named([s["id"] for s in sessions], session))
        if not named:
            raise ReportError(no_session_named([s["id"] for s in sessions], session, data.path))
        if len(named) > 1:
            raise ReportError(f"{data.path}: session {session!r} is ambiguous: it starts {len(named)} session ids")
        sessions = [s for s in sessions if s["id"] in named]
    if paired is not None and any(s["id"] in paired[0] for s in sessions):
        kept = [s for s in sessions if s["id"] in paired[0]]
        if len(kept) < len(sessions):
            data.notes.append(f"only {paired[1]}: {len(kept)} of {len(sessions)} sessions")
        sessions = kept
    elif session is None:
        sessions = _without_synthetic(sessions, data)
    if limit is not None:
        sessions = sessions[-limit:] if limit > 0 else []
    data.sessions = sessions
    if not sessions:
        data.notes.append("the database holds no sessions")
    tables = _tables(conn)
    data.is_replay = "replay_runs" in tables
    for s in sessions:
        if s["ended_at"] is None:
            data.partial.append(f"session {s['id'][:12]} has no end: the server crashed or is still running, "
                                "so its last edits and outcomes may be missing")
    replay_rows: dict[str, dict[str, Any]] = {}
    if data.is_replay:
        try:
            run_columns = ("session_id", "complete", "source_complete", "replayed", "requests")
            try:
                runs = conn.execute(f"SELECT {', '.join(run_columns)}, source_started_at FROM replay_runs").fetchall()
            except sqlite3.OperationalError:  # a replay written before the recorded session's start was kept
                runs = [(*run, None) for run in conn.execute(f"SELECT {', '.join(run_columns)} FROM replay_runs")]
            runs = _checked_rows(runs, (*run_columns, "source_started_at"), data, "replay run")
            data.source_starts = {sid: started for sid, *_, started in runs if started is not None}
            said = _partial_issues(conn)
            for sid, complete, source_complete, replayed, requests, _ in runs:
                if sid not in {s["id"] for s in sessions}:
                    continue
                if not complete:
                    # why, as the replay said it (requests that failed in the server are no stop)
                    why = "; ".join(said.get(sid, ())) or f"stopped after {replayed} of {requests} requests"
                    data.partial.append(f"replay {sid[:12]}: {why}")
                if not source_complete:
                    data.partial.append(f"replay {sid[:12]} replays a session that never ended")
            columns = ("suggestion_id", "source_ts", "chars_saved", "would_accept")
            rows = conn.execute(f"SELECT {', '.join(columns)} FROM replay_suggestions WHERE suggestion_id IS NOT NULL")
            for sid, source_ts, chars_saved, would_accept in _checked_rows(rows.fetchall(), columns, data,
                                                                          "replayed suggestion"):
                replay_rows[sid] = {"source_ts": source_ts, "chars_saved": chars_saved, "would_accept": would_accept}
        except sqlite3.DatabaseError as exc:
            data.partial.append(f"the replay tables cannot be read ({exc})")
    _count_unreported(conn, data, sessions, whole=session is None)
    _read_suggestions(conn, data, sessions, replay_rows)
    _read_decisions(conn, data, sessions)
    _read_next_edits(conn, data, sessions, replay_rows)
    if "notebooks" in tables:  # an older schema's upgraded copy has it; a damaged file may not
        _read_notebooks(conn, data, sessions)


def _count_unreported(conn: sqlite3.Connection, data: Dataset, sessions: list[dict[str, Any]], whole: bool) -> None:
    """Say the suggestion rows no figure can take: those of the sessions reported whose kind is neither completion nor
    next edit, and (for the whole database) those whose session row is missing. Both were left out unsaid."""
    ids = [s["id"] for s in sessions]
    marks = ",".join("?" * len(ids))
    try:
        odd = conn.execute(f"SELECT COUNT(*) FROM suggestions WHERE session_id IN ({marks}) AND COALESCE(kind, "
                           "'completion') NOT IN ('completion', 'next_edit')", ids).fetchone()[0] if ids else 0
        orphans = conn.execute("SELECT COUNT(*) FROM suggestions WHERE session_id IS NULL OR session_id NOT IN "
                               "(SELECT id FROM sessions WHERE id IS NOT NULL)").fetchone()[0] if whole else 0
    except sqlite3.DatabaseError:
        return  # the suggestions' own read says what fails
    if odd:
        data.partial.append(f"suggestion rows of a kind neither completion nor next_edit, left out: {odd}")
    if orphans:
        data.partial.append(f"suggestion rows whose session row is missing, left out: {orphans}")


_SYNTHETIC_NAMES = {DEMO_CLIENT: "tact demo", SIMULATE_CLIENT: "tact simulate"}


def _without_synthetic(sessions: list[dict[str, Any]], data: Dataset) -> list[dict[str, Any]]:
    """The user's sessions, where the database mixes them with the demo's or the simulator's (the demo recorded into
    the user's database once): the acceptance gate's prior counts the user's alone, and so do the figures. A
    database of those alone (the simulator's own) is reported whole."""
    synthetic = _synthetic(sessions)
    if synthetic:
        data.notes.append(_left_out_note(synthetic))
    return [s for s in sessions if s not in synthetic]


def _synthetic(sessions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The demo's and the simulator's among ``sessions``; none where they are all there is."""
    synthetic = [s for s in sessions if s["client_name"] in SYNTHETIC_CLIENTS]
    return synthetic if len(synthetic) < len(sessions) else []


def _left_out_note(synthetic: list[dict[str, Any]]) -> str:
    by = " and ".join(sorted({_SYNTHETIC_NAMES[s["client_name"]] for s in synthetic}))
    return (f"left out {len(synthetic)} session{'s' * (len(synthetic) != 1)} recorded by {by}, as the acceptance "
            "gate's prior leaves them out (--session reports one)")


def _number(value: Any) -> float | None:
    """A finite number inside a decoded JSON column, else None (a damaged or missing field)."""
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) else None


def _earlier_cells_chars(context: dict[str, Any] | None) -> int:
    """The characters of the cells above a notebook cell its request's prompt held (0: none, or not a cell), from the
    request's decoded context."""
    chars = _number(context.get("earlier_cells_chars")) if isinstance(context, dict) else None
    return int(chars) if chars is not None and chars > 0 else 0


def _read_suggestions(conn: sqlite3.Connection, data: Dataset, sessions: list[dict[str, Any]],
                      replay_rows: dict[str, dict[str, Any]]) -> None:
    offset = 0.0  # sessions laid end to end, in minutes
    for s in sessions:
        try:
            rows = conn.execute(
                "SELECT id, requested_at, text, outcome, shown_at, latency_ms,"
                # no tokens, no depth: servers before logged 0.0 for a suggestion Stop ended before its first token
                " CASE WHEN tokens = 0 THEN NULL ELSE layers_per_token END, tokens, accepted_length,"
                " generated_at, outcome_at, uri, context, undone_at IS NOT NULL, kept_length FROM suggestions"
                " WHERE session_id = ? AND COALESCE(kind, 'completion') = 'completion' ORDER BY requested_at, id",
                [s["id"]]).fetchall()
            generated = conn.execute(
                "SELECT suggestion_id, payload FROM suggestion_events WHERE session_id = ? AND type = 'suggestion_generated'",
                [s["id"]]).fetchall()
        except sqlite3.DatabaseError as exc:
            data.partial.append(f"session {s['id'][:12]}: its suggestions cannot be read ({exc})")
            continue
        logprob = {sid: _number(details.get("mean_logprob"))
                   for sid, payload in _checked_rows(generated, ("suggestion_id", "payload"), data,
                                                     f"session {s['id'][:12]}: generated event")
                   if isinstance(details := (payload or {}).get("details"), dict)}
        rows = _checked_rows(rows, ("suggestion_id", "requested_at", "text", "outcome", "shown_at", "latency_ms",
                                    "layers_per_token", "tokens", "accepted_length", "generated_at", "outcome_at",
                                    "uri", "context", "undone", "kept_length"),
                             data, f"session {s['id'][:12]}: suggestion")
        start = None
        last = 0.0
        before = len(data.rows)
        unplaced = 0  # rows with no time to place them by (left out, and said)
        # A client that reports what it shows (VS Code) makes shown_at the record; one that does not leaves only the
        # outcome, and a suggestion the server superseded counts as shown and rejected.
        reports_shows = any(row[4] is not None for row in rows)
        for (sid, requested_at, text, outcome, shown_at, latency, layers, tokens, accepted_length, generated_at,
             outcome_at, uri, context, undone, kept_length) in rows:
            undone = bool(undone) and outcome in ACCEPTED  # nothing saved
            outcome = _decided_outcome(outcome, undone)
            replayed = replay_rows.get(sid)
            if replayed is not None and replayed.get("source_ts") is not None:
                ts = replayed["source_ts"]  # a replay is drawn on the recorded session's clock
            elif data.is_replay:
                ts = None  # its own clock ran at another pace: place it with the request before it
            else:
                ts = requested_at if requested_at is not None else (generated_at or outcome_at)
            if ts is None and (not data.is_replay or start is None):
                unplaced += 1
                continue
            if start is None:
                # From the session's start, a replay from its recording's: where the programmer began some time
                # before the first request, a replay drawn from its first request came that much early.
                start = ts
                origin = data.source_starts.get(s["id"]) if data.is_replay else s["started_at"]
                if origin is not None:
                    start = min(ts, origin)
            minute = offset + (ts - start) / 60.0 if ts is not None else last
            last = max(last, minute)
            shown = shown_at is not None or outcome in (ACCEPTED if reports_shows else DECIDED)
            saved, accepted, kept = _saved(text, outcome, accepted_length, kept_length, undone, replayed)
            if shown and outcome in DECIDED:
                label = outcome in ACCEPTED
            elif replayed is not None and replayed.get("would_accept") is not None:
                label = bool(replayed["would_accept"])  # hidden, judged by the replay's oracle
            else:
                label = None
            data.rows.append({
                "id": sid, "minute": minute, "outcome": outcome, "shown": shown, "label": label, "undone": undone,
                "generated": generated_at is not None,
                "latency_ms": latency, "layers": layers, "tokens": tokens, "chars_saved": saved,
                "accepted_chars": accepted, "kept_chars": kept,
                "logprob": logprob.get(sid), "score": None,
                "uri": uri, "earlier_cells_chars": _earlier_cells_chars(context),
            })
        data.session_requests[s["id"]] = len(data.rows) - before
        offset = max(offset, last)
        if unplaced:
            data.partial.append(f"session {s['id'][:12]}: {unplaced} suggestion(s) with no time to place them by, "
                                "left out")


def _saved(text: str | None, outcome: str | None, accepted_length: int | None, kept_length: int | None,
           undone: bool, replayed: dict[str, Any] | None) -> tuple[int, int, int | None]:
    """(characters saved, accepted, kept or None) of a completion or a next edit, ``outcome`` as decided
    (``_decided_outcome``): an accept taken back saved nothing; a replay's, what its server measured kept."""
    accepted, kept = saved_chars(text, outcome, accepted_length, None if undone else kept_length)
    if undone:
        return 0, accepted, kept
    if replayed is not None:  # the replay counted what its server measured kept (`telemetry.replay`)
        return replayed["chars_saved"] or 0, accepted, kept
    return (accepted if kept is None else kept), accepted, kept


def saved_chars(text: str | None, outcome: str | None, accepted_length: int | None,
                kept_length: int | None) -> tuple[int, int | None]:
    """(characters accepted, characters of them kept or None where unknown) of a suggestion: characters, as a replay
    counts them, from the UTF-16 lengths the database holds. What was kept (``kept_length``) is what an accept saved;
    an accept never followed to its end (an older database, its text moved before the accept was told) saved all it
    wrote. The kept units are read as the accepted text's first ones: exact but for characters beyond UTF-16's
    first plane, which the kept runs may hold fewer of."""
    if outcome not in ACCEPTED:
        return 0, None
    if not text:  # its generation not logged: the lengths as they are
        return accepted_length or 0, kept_length if kept_length is None else min(kept_length, accepted_length or 0)
    units = accepted_length if outcome == "accepted" else accepted_length or 0
    accepted = accepted_chars(text, units)
    return accepted, None if kept_length is None else min(accepted, accepted_chars(text, kept_length))


# Columns only one figure reads (a request's context: the notebook cells above it; its tokens: the layers a token
# weighs): damage there is read as unknown and said, not the row left out of every figure.
_UNKNOWN_IF_DAMAGED = frozenset({"context", "tokens"})


def _checked_rows(rows: list[tuple], columns: tuple[str, ...], data: Dataset, what: str) -> list[tuple]:
    """``rows`` of ``columns`` with every value as ``reader.checked`` reads it (JSON decoded); a damaged row is left
    out and the rows left out are said in ``data.partial``, where they failed deep in the plots before."""
    kept, damaged, why, unknown = [], 0, "", Counter()  # unknown: rows read with a column unknown, per column
    for row in rows:
        values, unread = [], []
        try:
            for name, value in zip(columns, row, strict=True):
                try:
                    values.append(checked(name, value))
                except DamagedRowError:
                    if name not in _UNKNOWN_IF_DAMAGED:
                        raise
                    values.append(None)
                    unread.append(name)
        except DamagedRowError as exc:
            damaged, why = damaged + 1, str(exc)
            continue
        unknown.update(unread)
        kept.append(tuple(values))
    if damaged:
        data.partial.append(f"{what} rows damaged, left out: {damaged} (e.g. {why})")
    for name in sorted(unknown):
        data.partial.append(f"{what} rows whose {name} is damaged, read as unknown: {unknown[name]}")
    return kept


def _read_decisions(conn: sqlite3.Connection, data: Dataset, sessions: list[dict[str, Any]]) -> None:
    ids = [s["id"] for s in sessions]
    if not ids:
        return
    marks = ",".join("?" * len(ids))
    try:
        stage1 = conn.execute(f"SELECT suggestion_id, decision FROM decisions WHERE stage = 1 AND session_id IN ({marks})",
                              ids).fetchall()
        stage2 = conn.execute(f"SELECT suggestion_id, score, threshold FROM decisions WHERE stage = 2 AND session_id"
                              f" IN ({marks}) ORDER BY ts", ids).fetchall()
    except sqlite3.DatabaseError as exc:
        data.partial.append(f"gate decisions cannot be read ({exc})")
        return
    # Decisions for the requests reported alone: a share of calls saved over the rows kept counted every skip too,
    # and went past 100% where damaged rows were left out. Next edits log stage-2 rows, with their own threshold.
    completions = {r["id"] for r in data.rows}
    data.stage1 = dict(Counter(d for sid, d in _checked_rows(stage1, ("suggestion_id", "decision"), data,
                                                             "stage-1 gate decision") if sid in completions))
    stage2 = _checked_rows(stage2, ("suggestion_id", "score", "threshold"), data, "stage-2 gate decision")
    scores = {sid: score for sid, score, _ in stage2 if score is not None}
    thresholds = [t for sid, _, t in stage2 if t is not None and sid in completions]
    data.threshold = thresholds[-1] if thresholds else None
    for r in data.rows:
        r["score"] = scores.get(r["id"])
    if any(r["score"] is not None and r["label"] is not None for r in data.rows):
        data.score_source = "acceptance model (stage-2 score)"
    else:
        for r in data.rows:
            r["score"] = r["logprob"]
        data.score_source = "proxy: mean token log-probability (no acceptance-model scores were logged)"


def _decided_outcome(outcome: str | None, undone) -> str | None:
    """``outcome`` as the report counts it: an accept taken back soon after (``undone``: its undo) is no acceptance,
    a rejection, as the gate and training read it."""
    return "rejected" if undone and outcome in ACCEPTED else outcome


def _read_next_edits(conn: sqlite3.Connection, data: Dataset, sessions: list[dict[str, Any]],
                     replay_rows: dict[str, dict[str, Any]]) -> None:
    """Next edits, for their own figures and files against notebook cells: shown, decided and characters saved as
    completions count them (see _read_suggestions), so the two read alike."""
    columns = ("suggestion_id", "uri", "text", "shown_at", "outcome", "latency_ms", "accepted_length", "kept_length",
               "generated_at", "context", "undone")
    for s in sessions:
        try:
            rows = conn.execute("SELECT id, uri, text, shown_at, outcome, latency_ms, accepted_length, kept_length,"
                                " generated_at, context, undone_at IS NOT NULL FROM suggestions"
                                " WHERE session_id = ? AND kind = 'next_edit' ORDER BY requested_at, id",
                                [s["id"]]).fetchall()
        except sqlite3.DatabaseError as exc:
            data.partial.append(f"session {s['id'][:12]}: its next edits cannot be read ({exc})")
            continue
        rows = _checked_rows(rows, columns, data, f"session {s['id'][:12]}: next edit")
        reports_shows = any(row[3] is not None for row in rows)
        for (sid, uri, text, shown_at, outcome, latency, accepted_length, kept_length, generated_at, context,
             undone) in rows:
            undone = bool(undone) and outcome in ACCEPTED
            outcome = _decided_outcome(outcome, undone)
            saved, accepted, kept = _saved(text, outcome, accepted_length, kept_length, undone, replay_rows.get(sid))
            data.next_edits.append({
                "uri": uri, "shown": shown_at is not None or outcome in (ACCEPTED if reports_shows else DECIDED),
                "outcome": outcome, "undone": undone, "generated": generated_at is not None,
                "latency_ms": latency, "chars_saved": saved, "accepted_chars": accepted, "kept_chars": kept,
                "earlier_cells_chars": _earlier_cells_chars(context),
            })


def _read_notebooks(conn: sqlite3.Connection, data: Dataset, sessions: list[dict[str, Any]]) -> None:
    """The notebooks the sessions opened and every cell they listed: a cell is known by them, whatever its URI."""
    ids = [s["id"] for s in sessions]
    if not ids:
        return
    marks = ",".join("?" * len(ids))
    try:
        rows = conn.execute(f"SELECT notebook_uri, cells FROM notebooks WHERE session_id IN ({marks})", ids).fetchall()
    except sqlite3.DatabaseError as exc:
        data.partial.append(f"the notebooks cannot be read ({exc}); notebook cells are known by their URI alone")
        return
    data.notebooks = len({uri for uri, _ in rows})
    for _, cells in _checked_rows(rows, ("notebook_uri", "cells"), data, "notebook"):
        data.notebook_cells.update(c for c in cells or () if isinstance(c, str))


# -- plots ---------------------------------------------------------------------------------------------

def tradeoff_curve(rows: list[dict[str, Any]]) -> tuple[list[float], list[float], list[float]]:
    """(thresholds, share of rejects hidden, share of accepts lost) over the scores of suggestions with a known
    verdict: the outcome of shown ones and, in a replay, the oracle's verdict on hidden ones."""
    decided = sorted(((r["score"], bool(r["label"])) for r in rows
                      if r["score"] is not None and r["label"] is not None and math.isfinite(r["score"])),
                     key=lambda d: d[0])
    acc = sum(1 for _, a in decided if a)
    rej = len(decided) - acc
    if not acc or not rej:
        return [], [], []
    thresholds = sorted({s for s, _ in decided})
    thresholds.append(thresholds[-1] + 1e-9)
    # One sweep up the sorted scores: counting below each threshold afresh took a minute for a year's suggestions.
    xs, ys = [], []
    below = hidden = lost = 0
    for t in thresholds:
        while below < len(decided) and decided[below][0] < t:
            lost += decided[below][1]
            hidden += not decided[below][1]
            below += 1
        xs.append(hidden / rej)
        ys.append(lost / acc)
    return thresholds, xs, ys


def _no_data(ax, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, fontsize=10, color="#666666",
            wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])


def _time_axis(sets: list[Dataset]) -> tuple[float, str]:
    """(scale from minutes, axis label): seconds for sessions under two minutes."""
    end = max((r["minute"] for d in sets for r in d.rows), default=0.0)
    return (60.0, "session time (seconds)") if end < 2.0 else (1.0, "session time (minutes)")


def _plot_acceptance(plt, sets: list[Dataset], out: Path) -> None:
    fig, ax = plt.subplots(figsize=(8, 4))
    drew = False
    scale, xlabel = _time_axis(sets)
    end = max((r["minute"] * scale for d in sets for r in d.rows), default=0.0)
    width = max(end / 20.0, 1e-6)
    for data, color in zip(sets, COLORS):
        shown = [r for r in data.rows if r["shown"]]
        if not shown:
            continue
        bins: dict[int, list[bool]] = {}
        for r in shown:
            bins.setdefault(min(19, int(r["minute"] * scale // width)), []).append(r["outcome"] in ACCEPTED)
        xs = [(k + 0.5) * width for k in sorted(bins)]
        ys = [100.0 * sum(bins[k]) / len(bins[k]) for k in sorted(bins)]
        sizes = [10 + 60 * len(bins[k]) / max(len(v) for v in bins.values()) for k in sorted(bins)]
        overall = 100.0 * sum(r["outcome"] in ACCEPTED for r in shown) / len(shown)
        ax.plot(xs, ys, color=color, linewidth=1.5, label=f"{data.label}: {overall:.1f}% of {len(shown)} shown")
        ax.scatter(xs, ys, s=sizes, color=color, zorder=3)
        ax.axhline(overall, color=color, linestyle="--", linewidth=0.8)
        drew = True
    if drew:
        ax.set_xlabel(xlabel)
        ax.set_ylabel("accepted (% of shown)")
        ax.set_xlim(0, max(end, width) * 1.02)
        ax.set_ylim(-2, 102)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper right", fontsize=8)
    else:
        _no_data(ax, "no suggestion was shown")
    ax.set_title("Acceptance rate over time")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def _plot_hist(plt, sets: list[Dataset], key: str, out: Path, title: str, xlabel: str, unit: str,
               empty: str, mark_percentiles: bool) -> None:
    fig, ax = plt.subplots(figsize=(8, 4))
    series = [(d, [r[key] for r in d.rows if r[key] is not None and math.isfinite(r[key])]) for d in sets]
    values = [v for _, vs in series for v in vs]
    if not values:
        _no_data(ax, empty)
    else:
        lo, hi = min(values), percentile(values, 0.995)
        if hi <= lo:  # all equal: centre them
            lo, hi = lo - 0.5, hi + 0.5
        bins = [lo + (hi - lo) * i / 40 for i in range(41)]
        for (data, vs), color in zip(series, COLORS):
            if not vs:
                continue
            clipped = [min(v, hi) for v in vs]
            p50, p95 = percentile(vs, 0.5), percentile(vs, 0.95)
            label = f"{data.label}: n={len(vs)}, p50 {p50:.1f}{unit}, p95 {p95:.1f}{unit}"
            ax.hist(clipped, bins=bins, color=color, alpha=0.45 if len(sets) > 1 else 0.7, label=label)
            if mark_percentiles:
                ax.axvline(p50, color=color, linestyle="-", linewidth=1)
                ax.axvline(p95, color=color, linestyle=":", linewidth=1)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("suggestions")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def _plot_tradeoff(plt, sets: list[Dataset], out: Path) -> None:
    fig, ax = plt.subplots(figsize=(8, 6))
    drew = False
    notes = []
    for data, color in zip(sets, COLORS):
        thresholds, xs, ys = tradeoff_curve(data.rows)
        if not xs:
            notes.append(f"{data.label}: needs scored suggestions that were both accepted and rejected")
            continue
        label = f"{data.label}: {data.score_source.split(' (')[0].split(':')[0]}"
        if data.threshold is not None and data.score_source.startswith("acceptance model"):
            i = next((k for k, t in enumerate(thresholds) if t >= data.threshold), len(thresholds) - 1)
            ax.scatter([100 * xs[i]], [100 * ys[i]], color=color, s=80, zorder=4, edgecolor="black")
            label += (f"; threshold {data.threshold:.2f} (dot) hides {100 * xs[i]:.0f}% of these rejects, "
                      f"loses {100 * ys[i]:.0f}% of these accepts")
        ax.plot([100 * x for x in xs], [100 * y for y in ys], color=color, linewidth=1.5, label=label)
        if data.threshold is None or not data.score_source.startswith("acceptance model"):
            notes.append(f"{data.label}: no stage-2 threshold logged, so none is marked; curve from the "
                         f"{data.score_source}")
        drew = True
    if drew:
        ax.plot([0, 100], [0, 100], color="#999999", linestyle=":", linewidth=1, label="a random score")
        ax.set_xlim(-2, 102)
        ax.set_ylim(-2, 102)
        ax.set_xlabel("rejected suggestions hidden (%)")
        ax.set_ylabel("accepted suggestions lost (%)")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize=7)
        if notes:
            ax.text(0.98, 0.02, "\n".join(notes), transform=ax.transAxes, ha="right", va="bottom", fontsize=7,
                    color="#555555", wrap=True)
    else:
        _no_data(ax, "no trade-off to draw:\n" + "\n".join(notes))
    ax.set_title("Acceptance model trade-off")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def _plot_stage1(plt, sets: list[Dataset], out: Path) -> None:
    fig, ax = plt.subplots(figsize=(8, 2.2 + 0.8 * len(sets)))
    labels = []
    for n, data in enumerate(sets):
        total = len(data.rows)
        generated = sum(r["generated"] for r in data.rows)
        skipped = data.stage1.get("skip", 0)
        other = max(0, total - generated - skipped)
        left = 0
        for value, color, name in ((generated, "#4c72b0", "model ran"), (skipped, "#55a868", "skipped by stage 1"),
                                   (other, "#c7c7c7", "no model call (cancelled, stale, failed)")):
            ax.barh(n, value, left=left, color=color, label=name if n == 0 else None)
            if value and total and value >= 0.06 * total:
                ax.text(left + value / 2, n, f"{value} ({100 * value / total:.0f}%)", ha="center", va="center",
                        fontsize=8, color="white" if color != "#c7c7c7" else "black")
            left += value
        saved = f"{100 * skipped / total:.1f}% of calls saved" if total else "no requests"
        if not data.stage1:
            saved = "no stage-1 decisions logged"
        labels.append(f"{data.label}\n{saved}")
    ax.set_yticks(range(len(sets)))
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("requests")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, fontsize=8, frameon=False)
    ax.set_title("Model calls saved by stage 1", pad=24)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def _plot_chars(plt, sets: list[Dataset], out: Path) -> None:
    fig, ax = plt.subplots(figsize=(8, 4))
    drew = False
    scale, xlabel = _time_axis(sets)
    for data, color in zip(sets, COLORS):
        rows = sorted((r for r in data.rows if r["chars_saved"]), key=lambda r: r["minute"])
        total = 0
        xs, ys = [0.0], [0]
        for r in rows:
            total += r["chars_saved"]
            xs.append(r["minute"] * scale)
            ys.append(total)
        if data.rows:
            xs.append(max(r["minute"] for r in data.rows) * scale)
            ys.append(total)
            ax.step(xs, ys, where="post", color=color, linewidth=1.5, label=f"{data.label}: {total} characters")
            drew = True
    if drew:
        ax.set_xlabel(xlabel)
        ax.set_ylabel("characters saved (cumulative)")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize=8)
    else:
        _no_data(ax, "no suggestions")
    ax.set_title("Characters saved")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def write_plots(sets: list[Dataset], out: Path) -> list[str]:
    try:
        import matplotlib
    except ImportError:
        raise ReportError("tact report draws with matplotlib, which the serving install leaves out: "
                          "pip install matplotlib (or the [train] or [test] extra)") from None

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    try:
        _plot_acceptance(plt, sets, out / PLOTS[0][0])
        _plot_hist(plt, sets, "latency_ms", out / PLOTS[1][0], "Generation latency", "latency (ms)", " ms",
                   "no suggestion was generated", True)
        _plot_hist(plt, sets, "layers", out / PLOTS[2][0], "Layers used per token", "layers per token (mean over a "
                   "suggestion)", "", "no layer counts logged (no suggestion generated)", True)
        _plot_tradeoff(plt, sets, out / PLOTS[3][0])
        _plot_stage1(plt, sets, out / PLOTS[4][0])
        _plot_chars(plt, sets, out / PLOTS[5][0])
    finally:
        plt.close("all")  # a plot that failed (a folder that cannot be written) leaves its figure open otherwise
    return [name for name, _, _ in PLOTS]


# -- page ----------------------------------------------------------------------------------------------

# a rate's cell names its counts (part, whole): said from the rounded rate it was rounded twice
_ROWS = (
    ("sessions", "sessions", "{}"), ("requests", "suggestion requests", "{}"), ("generated", "model calls", "{}"),
    ("shown", "suggestions shown", "{}"), ("accepted", "accepted (whole or part)", "{}"),
    ("undone", "accepts taken back (not counted accepted)", "{}"),
    ("acceptance_rate", "acceptance rate", ("accepted", "shown")), ("hidden", "hidden by stage 2", "{}"),
    ("stage1_skipped", "calls skipped by stage 1", "{}"),
    ("calls_saved_rate", "share of calls saved", ("stage1_skipped", "requests")),
    ("latency_p50_ms", "latency p50 (ms)", "{}"), ("latency_p95_ms", "latency p95 (ms)", "{}"),
    ("layers_per_token", "layers per token", "{}"), ("chars_saved", "characters saved", "{}"),
    ("kept_rate", "share of accepted characters kept", ("kept_chars", "accepted_chars_followed")),
)
# next edits' rows, from a summary's ``next_edits``: each names them, as the rows above are completions'
_NEXT_EDIT_ROWS = (
    ("requests", "next-edit requests", "{}"), ("generated", "next edits predicted", "{}"),
    ("shown", "next edits shown", "{}"), ("accepted", "next edits accepted", "{}"),
    ("rejected", "next edits rejected", "{}"), ("undone", "next-edit accepts taken back (counted rejected)", "{}"),
    ("acceptance_rate", "next-edit acceptance rate", ("accepted", "shown")), ("hidden", "next edits hidden", "{}"),
    ("latency_p50_ms", "next-edit latency p50 (ms)", "{}"), ("chars_saved", "characters saved by next edits", "{}"),
    ("kept_rate", "share of next edits' accepted characters kept", ("kept_chars", "accepted_chars_followed")),
)


def share(part: int, whole: int) -> str:
    """``part`` of ``whole`` as a percentage, from the counts: the report's rates are rounded to 4 decimals already,
    and rounding one again to a tenth of a percent could go the wrong way (16 of 49, 32.653%, said 32.6%)."""
    return f"{100 * part / whole:.1f}%" if whole else "n/a"


def _cell(figures: dict[str, Any], key: str, fmt: str | tuple[str, str]) -> str:
    """One figure of a table; a rate (``fmt`` its counts' keys) is said from its counts."""
    if key not in figures:
        return ""
    if figures[key] is None:
        return "&ndash;"
    if isinstance(fmt, tuple):
        return share(figures[fmt[0]], figures[fmt[1]])
    return html.escape(fmt.format(figures[key]))


PLACE_KINDS = (("completion", "completions"), ("next_edit", "next edits"))
_PLACE_ROWS = (
    ("requests", "requests", "{}"), ("shown", "shown", "{}"), ("accepted", "accepted (whole or part)", "{}"),
    ("acceptance_rate", "acceptance rate", ("accepted", "shown")), ("latency_p50_ms", "latency p50 (ms)", "{}"),
    ("earlier_cells_rate", "prompt held earlier cells", ("earlier_cells", "requests")),
)


def _places_html(sets: list[Dataset], summaries: list[dict[str, Any]]) -> list[str]:
    """Files against notebook cells, side by side for each database: empty where no database holds notebooks."""
    if not any("files_vs_notebook_cells" in s for s in summaries):
        return []
    places = [s["files_vs_notebook_cells"] for s in summaries]
    parts = ["<h2 id='notebook-cells'>Files and notebook cells</h2><p class='notes'>Suggestions made in notebook "
             "cells beside those made in files: a cell is one a notebook listed, or one with a "
             f"<code>{NOTEBOOK_CELL_SCHEME}:</code> URI. A cell's prompt holds the code of the cells above it unless "
             "the server left it out.</p><table>",
             "<tr><th></th>" + "".join(f"<th colspan='2'>{html.escape(d.label)}<br><small>{p['notebooks']} "
                                       f"notebook{'s' * (p['notebooks'] != 1)}</small></th>"
                                       for d, p in zip(sets, places)) + "</tr>",
             "<tr><th></th>" + "<th>files</th><th>notebook cells</th>" * len(sets) + "</tr>"]
    for kind, heading in PLACE_KINDS:
        parts.append(f"<tr><th>{heading}</th>" + "<td></td><td></td>" * len(sets) + "</tr>")
        for key, name, fmt in _PLACE_ROWS:
            parts.append(f"<tr><td>{html.escape(name)}</td>" + "".join(
                f"<td>{_cell(figures, key, fmt)}</td>"
                for p in places for figures in (p[kind]["files"], p[kind]["notebook_cells"])) + "</tr>")
    parts.append("</table>")
    return parts


SESSIONS_SHOWN = 50  # sessions listed per database (text and page); --json lists all


def _sessions_html(sets: list[Dataset]) -> list[str]:
    parts = []
    for d in sets:
        listed = d.session_list()
        if not listed:
            continue
        parts.append(f"<h2>Sessions: {html.escape(d.label)}</h2><table class='sessions'><tr><th>session id "
                     "(--session takes it, or its first characters)</th><th>started</th><th>client</th>"
                     "<th>requests</th></tr>")
        for s in listed[-SESSIONS_SHOWN:]:
            parts.append(f"<tr><td><code>{html.escape(s['id'])}</code></td><td>{_cell(s, 'started', '{}')}"
                         f"{'' if s['ended'] else ' (no end)'}</td><td>{_cell(s, 'client', '{}')}</td>"
                         f"<td>{s['requests']}</td></tr>")
        parts.append("</table>")
        if len(listed) > SESSIONS_SHOWN:
            parts.append(f"<p class='notes'>the last {SESSIONS_SHOWN} of {len(listed)} sessions (--json lists all)</p>")
    return parts


def write_html(sets: list[Dataset], summaries: list[dict[str, Any]], plots: list[str], out: Path) -> Path:
    partial = [f"{d.label}: {reason}" for d in sets for reason in d.partial]
    notes = [f"{d.label}: {note}" for d in sets for note in d.notes]
    title = "Tact telemetry report" + (" (comparison)" if len(sets) > 1 else "")
    parts = [
        "<!DOCTYPE html>", "<html lang='en'><head><meta charset='utf-8'>", f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse}td,th{padding:4px 12px;border-bottom:1px solid #ddd;text-align:right}"
        "th:first-child,td:first-child{text-align:left}.partial{background:#fff3cd;border:1px solid #e0b100;"
        "padding:0.8em 1em;margin:1em 0}.notes{color:#555;font-size:0.9em}figure{margin:2em 0}"
        "figcaption{color:#555;font-size:0.9em}img{max-width:100%}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    if partial:
        parts.append("<div class='partial' id='partial'><strong>Partial report.</strong> Some data is missing:<ul>"
                     + "".join(f"<li>{html.escape(p)}</li>" for p in partial) + "</ul></div>")
    parts.append("<table><tr><th></th>" + "".join(
        f"<th>{html.escape(d.label)}<br><small>{html.escape(Path(d.path).name)}</small></th>" for d in sets) + "</tr>")
    for key, name, fmt in _ROWS:
        parts.append(f"<tr><td>{html.escape(name)}</td>" + "".join(f"<td>{_cell(s, key, fmt)}</td>" for s in summaries)
                     + "</tr>")
    parts.append("<tr><th>next edits</th>" + "<td></td>" * len(summaries) + "</tr>")
    for key, name, fmt in _NEXT_EDIT_ROWS:
        parts.append(f"<tr><td>{html.escape(name)}</td>" + "".join(
            f"<td>{_cell(s['next_edits'], key, fmt)}</td>" for s in summaries) + "</tr>")
    parts.append("</table>")
    parts.extend(_places_html(sets, summaries))
    parts.extend(_sessions_html(sets))
    if notes:
        parts.append("<ul class='notes'>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>")
    captions = {name: (heading, text) for name, heading, text in PLOTS}
    for name in plots:
        heading, text = captions[name]
        parts.append(f"<figure><h2>{html.escape(heading)}</h2><img src='{name}' alt='{html.escape(heading)}'>"
                     f"<figcaption>{html.escape(text)}</figcaption></figure>")
    parts.append("</body></html>")
    page = out / "index.html"
    # a file name that is not UTF-8 reaches Python as lone surrogates, which UTF-8 cannot write: shown as "?"
    page.write_text("\n".join(parts), encoding="utf-8", errors="replace")
    return page


def _paired(database: Path, against: Path, labels: tuple[str, str], session: str | None,
            limit: int | None) -> list[Dataset]:
    """Two databases, where either is a replay, session for session: each side only the sessions whose recording
    the other holds or replays too (a recording and its replay, or two replays of it with other settings)."""
    opened: list[Opened | None] = []
    try:
        for path in (database, against):
            try:
                opened.append(open_upgraded(path))
            except (TelemetrySchemaError, sqlite3.Error, OSError):
                opened.append(None)  # its load says why
        keys = tuple(recorded_sessions(o[0] if o is not None else None) for o in opened)
        replays = tuple(any(sid != key for sid, key in k.items()) for k in keys)
        if not any(replays):  # two recordings: compared whole
            return [load(database, labels[0], session, limit, opened=opened[0]),
                    load(against, labels[1], None, limit, opened=opened[1])]
        what = tuple("the replays of the sessions compared" if r else "the sessions the other database replays"
                     for r in replays)
        # the recording's demo and simulator sessions are left out of both sides, as its report alone leaves them
        # out (a replay's sessions are all the replay's client, whatever they replay)
        synthetic = [] if session is not None else [
            s for o, r in zip(opened, replays) if o is not None and not r
            for s in _synthetic([{"id": sid, "client_name": client}
                                 for sid, client in o[0].execute("SELECT id, client_name FROM sessions")])]
        left_out = {s["id"] for s in synthetic}
        theirs = set(keys[1].values()) - left_out
        first = load(database, labels[0], session, limit,
                     ({sid for sid, key in keys[0].items() if key in theirs}, what[0]), opened[0])
        compared = {keys[0].get(s["id"], s["id"]) for s in first.sessions}
        pairs = {sid for sid, key in keys[1].items() if key in compared}
        second = load(against, labels[1], None, limit, (pairs, what[1]), opened[1])
        if synthetic:  # said of the recording, whose sessions they are
            (second if replays[0] else first).notes.append(_left_out_note(synthetic))
        if first.sessions and second.sessions and not pairs:
            verbs = tuple("replays" if r else "holds" for r in replays)
            second.notes.append(f"{verbs[1]} none of the sessions {labels[0]} {verbs[0]}: its figures are of other "
                                "sessions")
        return [first, second]
    finally:
        for o in opened:
            if o is not None:
                o[0].close()


def report(database: Path, out: Path, against: Path | None = None, session: str | None = None,
           limit: int | None = None) -> dict[str, Any]:
    """Write ``out/index.html`` and its plots; returns the figures (``summaries``) and what was written."""
    if against is None:
        sets = [load(Path(database), "this database", session, limit)]
    else:
        labels = (Path(database).stem, Path(against).stem)
        if labels[0] == labels[1]:
            labels = ("A", "B")
        sets = _paired(Path(database), Path(against), labels, session, limit)
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a bare `[Errno 1] Operation not permitted` named no fix
        raise ReportError(f"cannot make {out} for the report ({exc.strerror}); choose another --output") from None
    plots = write_plots(sets, out)
    summaries = [d.summary() for d in sets]
    if any(d.has_notebooks() for d in sets):  # beside a notebook database, the other's are all files: said so
        for d, s in zip(sets, summaries):
            s["files_vs_notebook_cells"] = d.files_vs_notebook_cells()
    page = write_html(sets, summaries, plots, out)
    return {"html": str(page), "plots": [str(out / p) for p in plots], "partial": any(d.partial for d in sets),
            "summaries": summaries}
