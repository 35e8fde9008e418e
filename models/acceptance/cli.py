"""`tact train acceptance` and `tact eval acceptance` (the argument parsing lives in lsp_server.cli)."""

from __future__ import annotations

import sys
from pathlib import Path

from models.model_dir import FLAG_ADVICE, ModelDirError


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def describe_source(s: dict) -> str:
    """One source's rows: read, usable, used (with --limit) and skipped, by reason."""
    if s.get("refused"):
        return f"{s.get('kind')} {s.get('path')}: refused ({s['refused']})"
    if s.get("skipped") is None and not s.get("samples"):
        return f"{s.get('kind')} {s.get('path')}: no usable samples"
    skipped = s.get("skipped") or {}
    reasons = ", ".join(f"{n} {why}" for why, n in sorted(skipped.items(), key=lambda kv: -kv[1]))
    rows = s.get("rows", s.get("samples", 0) - s.get("explored_extra", 0) + sum(skipped.values()))
    unit = "rows" if s.get("kind") == "cups" else "shown suggestions"
    used = f", {s['used']} used (--limit)" if "used" in s else ""
    if s.get("synthetic"):
        used += f" ({s['synthetic']} of them from `tact simulate` or `tact demo` sessions)"
    if s.get("explored"):
        used += (f" ({s['explored']} explored suggestions the gate would have skipped or hidden, each read as the "
                 "requests it stands for)")
    return (f"{s.get('kind')} {s.get('path')}: {rows} {unit} read, {s.get('samples', 0)} usable samples{used}, "
            f"{sum(skipped.values())} skipped{f' ({reasons})' if reasons else ''}")


def _fail(args, msg: str) -> SystemExit:
    """The one line that ends a run on unusable input (exit status 2)."""
    _log(f"tact {args.command} acceptance: error: {msg}")
    return SystemExit(2)


def load_data(args):
    """(data, scoring model identity or None) from the --cups and --telemetry sources; exits 2 when unusable."""
    from models.acceptance.dataset import AcceptanceData, from_cups, from_telemetry

    given: dict[tuple[int, int], str] = {}
    for path in [*(args.cups or []), *(args.telemetry or [])]:  # one file twice is one programmer on both sides
        if Path(path).is_file():
            st = Path(path).stat()
            if (st.st_dev, st.st_ino) in given:
                raise _fail(args, f"{path} is {given[st.st_dev, st.st_ino]} given again: each source once (the same "
                                  "rows on both sides of a leave-programmer-out split score near-perfectly)")
            given[st.st_dev, st.st_ino] = str(path)
    for path in args.cups or []:  # before the code model loads for scoring
        if not Path(path).is_file():
            what = "is a directory, not a CUPS file" if Path(path).is_dir() else "does not exist"
            raise _fail(args, f"no CUPS file at {path}: it {what}; pass a CUPS-format JSON-lines file with --cups "
                              "FILE, or a Tact telemetry database with --telemetry DB")
    scorer = None
    if args.cups and not args.no_score:
        from models.acceptance.scoring import SuggestionScorer

        if not Path(args.model).is_dir():
            raise _fail(args, f"no code model at {args.model} to score suggestions with: pass --model DIR, or "
                              "--no-score to leave the model-based suggestion features out")
        try:
            scorer = SuggestionScorer(args.model, args.cache, threads=args.threads, exit_threshold=args.exit_threshold,
                                      stop_threshold=args.stop_threshold, policy=args.policy,
                                      exit_rule=args.exit_rule, heal_tokens=args.token_healing)
        except ModelDirError as exc:
            raise _fail(args, f"cannot score suggestions: {exc.advised(FLAG_ADVICE)}") from exc
        _log(f"scoring suggestions with {scorer.identity} as the {scorer.policy} policy serves them")
    parts = []
    cups = args.cups or []
    for number, path in enumerate(cups):  # several files: their user ids apart (two studies number users from 1)
        prefix = f"cups{number}:{Path(path).name}" if len(cups) > 1 else None
        parts.append(from_cups(path, scorer, limit=args.limit, seed=args.seed, log=_log, group_prefix=prefix))
    refusals: list[str] = []
    if args.telemetry:
        data, refusals = from_telemetry(args.telemetry, limit=args.limit, seed=args.seed,
                                        alone=not cups and len(args.telemetry) == 1, policy=args.policy)
        for msg in refusals:
            _log(f"refused: {msg}")
        parts.append(data)
    # every source, those that gave no samples too (concat keeps only the sources of parts with samples); a refused
    # one is in the figures' sources as well, with why (it was left out of them unsaid)
    sources = [s for p in parts for s in p.sources]
    read = {s["path"] for s in sources}
    unread = [{"kind": "telemetry", "path": str(t), "samples": 0} for t in args.telemetry or [] if str(t) not in read]
    refused = []
    for s in unread:
        if (why := next((m for m in refusals if m.startswith(s["path"])), None)) is not None:
            s.update(accepted=0, refused=why)
            refused.append(s)
    sources += unread
    data = AcceptanceData.concat(parts)
    data.sources += refused
    if scorer is not None:
        _log(f"scores: {scorer.hits} cached, {scorer.misses} computed")
    for s in sources:
        _log(describe_source(s))
    synthetic = sum(s.get("synthetic", 0) for s in sources)
    if synthetic:
        _log(f"note: {synthetic} samples come from simulated or demo sessions, whose programmer accepts only text the "
             "file goes on with; added to the CUPS programmers' rows they made both stages rank those programmers "
             "worse (docs/acceptance.md)")
    programmers = len(set(data.groups.tolist()))
    # a trained model evaluated as it is leaves no one out: one programmer's sessions are enough
    needed = 1 if getattr(args, "acceptance_model", None) else 2
    if len(data) == 0 or programmers < needed or len(set(data.y.tolist())) < 2:
        hint = ""
        if any(s.get("kind") == "cups" and not s.get("samples") for s in sources):
            hint = ("; a CUPS row is a JSON object with user, time, event (Shown, then Accepted or Rejected), prompt "
                    "and suggestion")
        raise _fail(args, f"not enough data: need accepted and rejected suggestions from at least {needed} "
                          f"programmer{'s' * (needed != 1)}, got {len(data)} samples ({int(data.y.sum())} accepted) "
                          f"from {programmers} programmer"
                          f"{'s' * (programmers != 1)}; " + "; ".join(describe_source(s) for s in sources) + hint)
    return data, f"{scorer.identity} ({scorer.policy})" if scorer is not None else None


def main_cli(args) -> int:
    from telemetry.store import strict_json

    if not args.cups and not args.telemetry:
        if args.command != "train" and getattr(args, "acceptance_model", None):
            raise _fail(args, f"name the data to judge {args.acceptance_model} on (--cups FILE or --telemetry DB): "
                              "the default CUPS file is what the shipped model was trained on")
        args.cups = [args.default_cups]
    if args.command == "train":
        from models.acceptance.model import DEFAULT_DIR
        from models.acceptance.train import train_acceptance

        if args.out is None:
            if args.limit is not None or args.no_score:
                raise _fail(args, f"a run with {'--limit' if args.limit is not None else '--no-score'} would replace "
                                  f"the shipped model in {DEFAULT_DIR}: name a directory with --out DIR")
            args.out = DEFAULT_DIR
        data, scoring = load_data(args)
        model = train_acceptance(data, args.kind, args.kind, seed=args.seed, scoring_model=scoring, log=_log)
        path = model.save(args.out)
        out = {"model": str(path), "version": model.version, **{k: model.info[k] for k in
                                                                   ("samples", "accepted", "programmers", "kinds", "lopo_auc", "scoring_model")}}
        print(strict_json(out) if args.json else "\n".join(f"{k}: {v}" for k, v in out.items()))
        return 0
    from models.acceptance.evaluate import TrainedOnAll, evaluate, evaluate_model, format_report

    model = None
    if args.acceptance_model:  # before the data: a wrong path said at once, not after minutes of scoring
        from models.acceptance.model import AcceptanceModelError, load_model

        try:
            model = load_model(args.acceptance_model)
        except AcceptanceModelError as exc:
            _log(f"tact eval acceptance: error: {exc}")
            return 2
    data, scoring = load_data(args)
    if model is not None:
        trained_on = model.info.get("scoring_model")
        if trained_on != scoring:  # its suggestion features would read as unknown, or as another model scores them
            _log(f"note: {args.acceptance_model} was trained on suggestions scored by {trained_on or 'no model'}, "
                 f"these are scored by {scoring or 'no model (--no-score)'}: stage 2 sees other features than it "
                 "learned")
        try:
            report = evaluate_model(model, data, args.lam, args.precision_floor)
        except TrainedOnAll as exc:
            raise _fail(args, f"{exc}: judge {args.acceptance_model} on programmers it never saw, or leave out "
                              "--acceptance-model for the leave-programmer-out evaluation") from exc
    else:
        report = evaluate(data, args.lam, args.precision_floor, args.kind, args.kind, inner_folds=args.inner_folds,
                          seed=args.seed, log=_log)
    report["scoring_model"] = scoring
    print(strict_json(report) if args.json else format_report(report))
    return 0
