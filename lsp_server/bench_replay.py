"""`tact bench replay`: how long an accelerated replay of a recorded session takes, and whether it repeats.

Unless ``--database`` names a recording, one is made first: a simulated programmer (``tact simulate``) types
held-out files, each opened with its first ``START_LINE`` lines present, for ``--minutes`` of simulated
time. The session is then replayed twice, accelerated, each time against a fresh ``tact serve``; the two
replays must decide every request the same way. Target: a 10-minute session replays in under 60 s (judged on
recordings of JUDGED_MINUTES or more; a shorter one's figure is given).
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

from lsp_server.bench_serve import describe_data, typed_files
from telemetry.replay import ReplayOptions, replay
from telemetry.simulate import run_simulation

TARGET_S = 60.0  # for a session of TARGET_MINUTES
TARGET_MINUTES = 10.0
# Shorter recordings are scaled to TARGET_MINUTES but not judged: each replay's time includes starting its server
# and loading the model, and scaling multiplies that too (`tact bench replay --limit 1`: 1.7 and 2.7 s for one
# request; `--limit 40`, 0.23 minutes, scaled to 189 s: a MISS whatever the server's speed).
JUDGED_MINUTES = TARGET_MINUTES / 2
START_LINE = 25  # the file's head is there when typing starts (held-out files have at least 30 lines)
FILES = 8  # held-out files handed to the programmer (more than 10 minutes of typing)


def record_session(folder: Path, *, minutes: float, source: Path | None, corpus: Path | None, seed: int,
                   limit: int | None, model: str | None) -> dict:
    """Simulate a programmer typing held-out files into a real server; returns the simulation's figures, with
    ``data``: where the files handed to the programmer come from, how many and their characters."""
    available, data = typed_files(source, corpus, seed)
    files = []
    for n, (name, text) in enumerate(available[:FILES]):
        path = folder / "files" / str(n) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        files.append(path)
    data = {**data, "files": len(files), "chars": sum(len(t) for _, t in available[:FILES])}
    sim = run_simulation(files, folder / "recorded.sqlite3", model=model, seed=seed, limit=limit,
                         max_seconds=minutes * 60, start_line=START_LINE)
    return {**sim, "data": data}


def run_bench(*, database: Path | None = None, session: str | None = None, minutes: float = TARGET_MINUTES,
              source: Path | None = None, corpus: Path | None = None, seed: int = 0, limit: int | None = None,
              model: str | None = None, overrides: dict[str, Any] | None = None, runs: int = 2) -> dict:
    with tempfile.TemporaryDirectory(prefix="tact-bench-replay-") as tmp:
        return _run(Path(tmp), database=database, session=session, minutes=minutes, source=source, corpus=corpus,
                    seed=seed, limit=limit, model=model, overrides=overrides, runs=runs)


def _run(folder: Path, *, database: Path | None, session: str | None, minutes: float, source: Path | None,
         corpus: Path | None, seed: int, limit: int | None, model: str | None, overrides: dict[str, Any] | None,
         runs: int) -> dict:
    """The bench, with its recording and replays written under ``folder``."""
    recorded: dict[str, Any] = {"database": str(database) if database else None}
    if database is None:
        sim = record_session(folder, minutes=minutes, source=source, corpus=corpus, seed=seed, limit=limit, model=model)
        database, session = Path(sim["database"]), sim["session_id"]
        recorded.update({"session_id": session, "simulated_minutes": round(sim["simulated_s"] / 60, 2),
                         "simulated_s": round(sim["simulated_s"], 3),
                         "keystrokes": sim["keystrokes"], "requests": sim["requests"],
                         "record_wall_s": sim["total_wall_s"], "data": sim["data"]})
    given = recorded["database"] is not None  # --limit cuts the recording it makes, else the replays of the one given
    options = ReplayOptions(model=model, overrides=dict(overrides or {}), limit=limit if given else None)
    results = [replay(database, folder / f"replay-{n}.sqlite3", session, options) for n in range(runs)]
    per_run = []
    for res_list in results:
        wall = sum(r.wall_s for r in res_list)
        requests = sum(r.replayed for r in res_list)
        rtts = [o.round_trip_ms for r in res_list for o in r.outcomes if o.round_trip_ms is not None]
        per_run.append({
            "wall_s": round(wall, 2), "replayed": requests, "requests": sum(r.requests for r in res_list),
            "complete": all(r.complete for r in res_list) and not any(r.sessions_not_replayed for r in res_list),
            "sessions_not_replayed": sum(r.sessions_not_replayed for r in res_list),
            "suggestions": sum(r.suggestions for r in res_list), "accepted": sum(r.accepted for r in res_list),
            "chars_saved": sum(r.chars_saved for r in res_list),
            "mean_round_trip_ms": round(sum(rtts) / len(rtts), 2) if rtts else None,
            "recorded_s": round(sum(r.recorded_s for r in res_list), 2),
        })
    decisions = [[d for r in res_list for d in r.decisions()] for res_list in results]
    differing = max((sum(a != b for a, b in zip(decisions[0], other)) + abs(len(decisions[0]) - len(other))
                     for other in decisions[1:]), default=0)  # every run against the first
    # a simulated session's length, else the logged sessions' span (replay reads it from their timestamps); not
    # the minutes rounded for the report: a short run's 1.4 s rounded to 0.02 minutes scaled 17% off, and under
    # 0.3 s to none, when the recording's wall-clock span (typed at machine speed) stood in
    recorded_s = recorded["simulated_s"] if "simulated_s" in recorded else per_run[0]["recorded_s"] if per_run else None
    minutes_recorded = recorded_s / 60 if recorded_s else None
    slowest = max(r["wall_s"] for r in per_run)
    figures = {
        "recorded": recorded,
        "runs": per_run,
        "identical": differing == 0,
        "differing_requests": differing,
        "overrides": options.overrides,
        "target": {"seconds": TARGET_S, "minutes": TARGET_MINUTES,
                   # the target is stated for a 10-minute session; shorter or longer recordings are scaled to it
                   "seconds_per_10_minutes": round(slowest * TARGET_MINUTES / minutes_recorded, 2)
                   if minutes_recorded else None},
        "hardware": {"cores": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version()},
    }
    scaled = figures["target"]["seconds_per_10_minutes"]
    repeated = figures["identical"] and all(r["complete"] for r in per_run)  # a MISS at any length
    judged = minutes_recorded is not None and minutes_recorded >= JUDGED_MINUTES  # then scaled is not None
    figures["target"]["judged_from_minutes"] = JUDGED_MINUTES
    # replays of a given recording cut by --limit: a quick run on part of it, which the 10-minute target cannot judge
    cut = given and limit is not None and any(r["replayed"] < r["requests"] or r["sessions_not_replayed"]
                                              for r in per_run)
    figures["target"]["cut_by_limit"] = cut
    figures["target"]["pass"] = (None if cut else False if not repeated else None if not judged
                                 else scaled < TARGET_S)
    return figures


def print_table(fig: dict, out=None) -> None:
    out = out or sys.stdout  # the stdout of the call, not of the import (a test's capture)
    rec = fig["recorded"]
    if rec.get("session_id"):
        typed = describe_data(rec["data"]) if rec.get("data") else "held-out files"
        print(f"tact bench replay: a simulated programmer typed {typed} for {rec['simulated_minutes']} minutes "
              f"({rec['keystrokes']} keystrokes, {rec['requests']} requests; recorded in {rec['record_wall_s']:.1f} s)",
              file=out)
    else:
        print(f"tact bench replay: {rec['database']}", file=out)
    print(f"{'run':<5} {'wall s':>8} {'requests':>9} {'shown':>6} {'accepted':>9} {'mean rtt ms':>12}", file=out)
    for n, r in enumerate(fig["runs"], 1):
        rtt = f"{r['mean_round_trip_ms']:.1f}" if r["mean_round_trip_ms"] is not None else "-"
        state = "" if r["complete"] else "  PARTIAL"
        print(f"{n:<5} {r['wall_s']:>8.1f} {r['replayed']:>9} {r['suggestions']:>6} {r['accepted']:>9} {rtt:>12}{state}",
              file=out)
    print(f"replays identical: {'yes' if fig['identical'] else 'NO'} ({fig['differing_requests']} requests differ)",
          file=out)
    t = fig["target"]
    if t["seconds_per_10_minutes"] is not None:
        verdict = ("PASS" if t["pass"] else "MISS") if t["pass"] is not None else (
            "not judged: --limit replayed part of the recording" if t.get("cut_by_limit") else
            f"not judged: a session under {t['judged_from_minutes']:g} minutes (each replay's time includes starting "
            "its server, scaled with it)")
        # at the precision judged: 59.96 s passed as "60.0 s (target < 60 s)"
        print(f"slowest replay per {t['minutes']:g} recorded minutes: {t['seconds_per_10_minutes']:.2f} s "
              f"(target < {t['seconds']:g} s, identical): {verdict}", file=out)
