"""`tact replay`, `tact simulate` and `tact report`: argument parsing and printing around `telemetry`.

The work is done in ``telemetry.replay``, ``telemetry.simulate`` and ``telemetry.report`` (imported only
when a command runs). Bad input (a damaged or foreign database, one from a newer Tact, a wrong setting)
ends with one clear line on stderr and exit status 2, never a traceback (`lsp_server.cli.main` prints it).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

COMMANDS = ("replay", "simulate", "report")


class CommandInputError(ValueError):
    """Bad input to one of COMMANDS (a setting, a file, a pace): main() prints it as one line."""


def add_parsers(sub) -> None:
    from lsp_server.cli import (bounded_float, database_path, non_negative_int, output_dir, positive_float,
                                positive_int, seed, text_file)

    r = sub.add_parser("replay", help="re-run logged sessions against a real server with other settings")
    r.add_argument("database", type=Path, help="telemetry database to replay")
    r.add_argument("--session", type=session_id, help="replay only this session (an id or its first characters; "
                   "default: all)")
    r.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting (camelCase name, e.g. decodingPolicy=dynamic); repeatable")
    r.add_argument("-o", "--output", type=Path, help="new database for the results (default: next to DATABASE)")
    r.add_argument("--model", help="model directory (default: the recorded one if it exists, else the shipped one)")
    pace = r.add_mutually_exclusive_group()
    pace.add_argument("--real-time", action="store_true", help="keep the recorded timing (default: accelerated)")
    pace.add_argument("--speed", type=bounded_float(0, None, finite=True), default=0.0,
                      help="N times faster than recorded (0: accelerated)")
    r.add_argument("--oracle-similarity", type=bounded_float(0, 1), default=None,
                   help="edit similarity of first lines at which the oracle accepts (default 0.8)")
    r.add_argument("--oracle-match", choices=("prefix", "exact"), default="prefix",
                   help="the oracle accepts a suggestion whose first line is a prefix of (or equals) what was typed")
    r.add_argument("--oracle-min-chars", type=positive_int, default=2,
                   help="shortest first line (spaces aside) the oracle can accept (default 2)")
    r.add_argument("--limit", type=positive_int, help="replay at most N suggestion requests")
    r.add_argument("--json", action="store_true", help="print the figures as one JSON object")

    s = sub.add_parser("simulate", help="type source files into a real server like a person, recording a session")
    s.add_argument("files", nargs="+", type=text_file, help="source files to type (UTF-8 text)")
    s.add_argument("--database", type=database_path, help="where the session is recorded (default: "
                   "simulated.sqlite3 in the user data directory, apart from real sessions)")
    s.add_argument("--model", help="model directory (default: the shipped model)")
    s.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                   help="a setting for the server (camelCase name); repeatable")
    s.add_argument("--seed", type=seed, default=0)
    pace = s.add_mutually_exclusive_group()
    pace.add_argument("--real-time", action="store_true", help="type at human speed in real time")
    pace.add_argument("--speed", type=bounded_float(0, None, finite=True), default=0.0,
                      help="N times faster than a person (default 0: as fast as the server answers)")
    s.add_argument("--start-line", type=non_negative_int, default=0,
                   help="open each file with its lines before this one (0-based) present; each file must be longer")
    s.add_argument("--minutes", type=positive_float, help="stop after this much simulated typing time")
    s.add_argument("--limit", type=positive_int, help="stop after N keystrokes")
    s.add_argument("--json", action="store_true", help="print the figures as one JSON object")

    p = sub.add_parser("report", help="an HTML page with plots of a telemetry database (or two, side by side)")
    p.add_argument("database", type=Path)
    p.add_argument("--against", type=Path, help="a second database (e.g. a replay) to compare with")
    p.add_argument("-o", "--output", type=output_dir, required=True, help="directory for index.html and the plots")
    p.add_argument("--session", type=session_id, help="only this session of DATABASE (an id or its first characters)")
    p.add_argument("--limit", type=positive_int, help="only the last N sessions of each database")
    p.add_argument("--json", action="store_true", help="print the figures as one JSON object")


def session_id(text: str) -> str:
    """An argparse type: a session id or its first characters; an empty one started every id, so took them all."""
    import argparse

    if not text.strip():
        raise argparse.ArgumentTypeError("name a session: its id or its first characters")
    return text


def parse_settings(pairs: list[str]) -> dict:
    """``KEY=VALUE`` pairs to camelCase settings, each value read as its setting's type and validated."""
    from lsp_server.config import Settings

    defaults = Settings().to_camel()
    values: dict = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise CommandInputError(f"--set expects KEY=VALUE, got {pair!r}")
        if key not in defaults:
            raise CommandInputError(f"unknown setting {key!r}; settings are: {', '.join(defaults)}")
        kind = type(defaults[key])
        try:
            if kind is bool:
                if raw.lower() not in ("true", "false"):
                    raise ValueError  # said below
                values[key] = raw.lower() == "true"
            elif kind is int:
                values[key] = int(raw)
            elif kind is float:
                values[key] = float(raw)
            else:
                values[key] = raw
        except ValueError:
            wanted = {bool: "true or false", int: "a whole number", float: "a number"}.get(kind, "text")
            raise CommandInputError(f"setting {key} needs {wanted}, got {raw!r}") from None
    _, problems = Settings.from_camel(values)
    if problems:
        raise CommandInputError("; ".join(problems))
    return values


def _pace(args) -> float:
    return 1.0 if args.real_time else args.speed


def _default_output(database: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(1000):
        suffix = f"-{n}" if n else ""
        out = database.with_name(f"{database.stem}.replay-{stamp}{suffix}.sqlite3")
        if not out.exists():
            return out
    raise CommandInputError(f"cannot find a free name next to {database}; pass -o")


def _replay(args) -> int:
    from telemetry.oracle import Oracle
    from telemetry.replay import ReplayOptions, replay
    from telemetry.store import strict_json

    oracle = Oracle(match=args.oracle_match, min_chars=args.oracle_min_chars, **({} if args.oracle_similarity is None else
                                                {"similarity": args.oracle_similarity}))
    options = ReplayOptions(model=args.model, overrides=parse_settings(args.settings), speed=_pace(args),
                            limit=args.limit, oracle=oracle)
    if args.database.is_dir():  # its default output's name is made from the file's: '.' has none
        raise CommandInputError(f"{args.database} is a directory, not a telemetry database")
    output = args.output or _default_output(args.database)

    def progress(msg: str) -> None:
        if not args.json:
            print(f"  {msg}", file=sys.stderr, flush=True)

    results = replay(args.database, output, args.session, options, progress=progress)
    figures = {"source": str(args.database), "output": str(output), "overrides": options.overrides,
               "sessions": [r.as_dict() for r in results]}
    if args.json:
        print(strict_json(figures))
        return 0
    for r in results:
        mode = "accelerated" if options.speed == 0 else f"{options.speed:g}x"
        state = "complete" if r.complete else "PARTIAL"
        basis = ", ".join(f"{n} {k}" for k, n in sorted(r.by_basis.items()))
        fid = ", ".join(f"{n} {k}" for k, n in r.fidelity.items() if n)
        print(f"session {r.source_session_id[:12]} -> {r.session_id[:12] if r.session_id else '?'} ({state}, {mode})")
        print(f"  replayed {r.replayed} of {r.requests} requests in {r.wall_s:.1f} s "
              f"(recorded session: {r.recorded_s / 60:.1f} min); text rebuilt: {fid or 'no requests'}")
        partly = f" ({r.partially_accepted} of them in part)" if r.partially_accepted else ""
        print(f"  {r.suggestions} suggestions, {r.accepted} accepted{partly}, {r.rejected} rejected "
              f"(outcome from: {basis or 'none'}); {r.chars_saved} characters saved")
        if r.next_edits:
            ne = r.next_edits
            print(f"  {ne['requests']} next-edit requests: {ne['predicted']} edits predicted, {ne['accepted']} accepted "
                  f"(logged decision, or the programmer's next edit matched); {ne['chars_saved']} characters saved")
        if not r.source_complete:
            print("  the recorded session never ended (crash?): replayed what was logged")
        for issue in r.issues:
            print(f"  issue: {issue}")
        for note in r.notes:
            print(f"  note: {note}")
    print(f"results: {output}  (compare: tact report {args.database} --against {output} -o DIR)")
    return 0


def _simulate(args) -> int:
    from lsp_server.config import database_dir_made, default_data_dir
    from telemetry.simulate import run_simulation
    from telemetry.store import strict_json
    from telemetry.text import line_count

    from models.model_dir import check_served_model

    missing = [str(f) for f in args.files if not f.is_file()]
    if missing:
        raise CommandInputError(f"no such file: {', '.join(missing)}")
    if args.start_line:  # a file with no line from there on was opened whole and typed nothing, and the run said 0
        short = [f"{f} has {n} lines" for f in args.files
                 if (n := line_count(f.read_text(encoding="utf-8"))) <= args.start_line]
        if short:
            raise CommandInputError(f"{'; '.join(short)}: --start-line (0-based) must be less")
    settings = parse_settings(args.settings)
    for key in ("telemetry", "telemetryDatabase"):  # the session went elsewhere, or nowhere, and was said recorded
        if key in settings:
            raise CommandInputError(f"--set {key} is not for simulate: the session is recorded in --database")
    check_served_model(args.model)
    database = args.database or default_data_dir() / "simulated.sqlite3"
    if why := database_dir_made(database):
        raise CommandInputError(why)
    figures = run_simulation(list(args.files), database, model=args.model, settings=settings,
                             seed=args.seed, speed=_pace(args), limit=args.limit, start_line=args.start_line,
                             max_seconds=args.minutes * 60 if args.minutes else None)
    if args.json:
        print(strict_json(figures))
        return 0
    f = figures
    print(f"simulated session {f['session_id']} in {database}")
    print(f"  {f['files']} files ({f['files_complete']} typed to the end), {f['keystrokes']} keystrokes, "
          f"{f['simulated_s'] / 60:.1f} simulated minutes in {f['total_wall_s']:.1f} s")
    print(f"  {f['requests']} requests, {f['suggestions']} suggestions: {f['accepted']} accepted "
          f"({f['partially_accepted']} of them in part), {f['rejected']} rejected, {f['late']} too late")
    print(f"  {f['chars_accepted']} of {f['chars_typed'] + f['chars_accepted']} characters came from suggestions; "
          f"{f['typos']} typos fixed, {f['revisits']} revisits")
    return 0


def _print_next_edits(ne: dict) -> None:
    """Next edits' own figures, for every database (zeros where it holds none): the completions' line is theirs alone,
    and a database of next edits alone read as empty."""
    from telemetry.report import share

    back = f" ({ne['undone']} accepted and taken back)" if ne["undone"] else ""
    kept = (f"; {share(ne['kept_chars'], ne['accepted_chars_followed'])} of the accepted characters kept"
            if ne["accepted_chars_followed"] else "")
    print(f"  next edits: {ne['requests']} requests, {ne['generated']} predicted, {ne['shown']} shown, "
          f"{ne['accepted']} accepted, {ne['rejected']} rejected{back}, {share(ne['accepted'], ne['shown'])} of shown "
          f"accepted, {ne['chars_saved']} characters saved{kept}")


def _print_places(places: dict) -> None:
    """Files against notebook cells, a line for completions and one for next edits: do notebooks fare worse?"""
    from telemetry.report import PLACE_KINDS, share

    for kind, name in PLACE_KINDS:
        said = []
        for place, where in (("files", "files"), ("notebook_cells", "notebook cells")):
            f = places[kind][place]
            latency = f"{f['latency_p50_ms']} ms" if f["latency_p50_ms"] is not None else "n/a"
            said.append(f"{where} {f['requests']} requests, {f['shown']} shown, {share(f['accepted'], f['shown'])} "
                        f"accepted, p50 {latency}")
        cells = places[kind]["notebook_cells"]
        held = (f", {share(cells['earlier_cells'], cells['requests'])} with earlier cells in the prompt"
                if cells["requests"] else "")
        print(f"  {name}: {'; '.join(said)}{held}")


def _report(args) -> int:
    from telemetry.report import SESSIONS_SHOWN, report, share
    from telemetry.store import strict_json

    result = report(args.database, args.output, args.against, args.session, args.limit)
    if args.json:
        print(strict_json(result))
        return 0
    for s in result["summaries"]:
        print(f"{s['label']}: {s['sessions']} session{'s' * (s['sessions'] != 1)}, {s['requests']} requests, "
              f"{s['shown']} shown, {share(s['accepted'], s['shown'])} accepted, {s['chars_saved']} characters saved"
              + (f" ({s['undone']} accepted and taken back, counted rejected)" if s.get("undone") else "")
              + (f"; {share(s['kept_chars'], s['accepted_chars_followed'])} of the accepted characters kept"
                 if s.get("accepted_chars_followed") else ""))
        _print_next_edits(s["next_edits"])
        if "files_vs_notebook_cells" in s:
            _print_places(s["files_vs_notebook_cells"])
        listed = s["session_list"]
        if len(listed) > SESSIONS_SHOWN:
            print(f"  the last {SESSIONS_SHOWN} sessions (--json lists all {len(listed)}):")
        for row in listed[-SESSIONS_SHOWN:]:
            ended = "" if row["ended"] else ", no end"
            print(f"  session {row['id']}  started {row['started'] or 'unknown'}{ended}, client "
                  f"{row['client'] or 'unknown'}, {row['requests']} requests")
        for note in s["notes"]:
            print(f"  note: {note}")
    if any(s["session_list"] for s in result["summaries"]):
        print("  (--session takes a session id, or its first characters, in `tact report` and `tact replay`)")
    if result["partial"]:
        print("PARTIAL report: " + "; ".join(r for s in result["summaries"] for r in s["partial_reasons"]))
    print(f"report: {result['html']}")
    return 0


def run(args) -> int:
    """Run one of ``COMMANDS``; bad input raises one of the CLI's INPUT_ERRORS, which main() prints as one line."""
    return {"replay": _replay, "simulate": _simulate, "report": _report}[args.command](args)
