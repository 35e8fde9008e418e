"""`tact train acceptance` and `tact eval acceptance` (the argument parsing lives in lsp_server.cli)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from models.model_dir import ModelDirError


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def load_data(args):
    """(data, scoring model identity or None) from the --cups and --telemetry sources; exits 2 when unusable."""
    from models.acceptance.dataset import AcceptanceData, from_cups, from_telemetry

    scorer = None
    if args.cups and not args.no_score:
        from models.acceptance.scoring import SuggestionScorer

        if not Path(args.model).is_dir():
            _log(f"no code model at {args.model} to score suggestions with: pass --model DIR, or --no-score "
                 "to leave the model-based suggestion features out")
            raise SystemExit(2)
        try:
            scorer = SuggestionScorer(args.model, args.cache, threads=args.threads, exit_threshold=args.exit_threshold,
                                      stop_threshold=args.stop_threshold, policy=args.policy,
                                      exit_rule=args.exit_rule)
        except ModelDirError as exc:
            _log(f"cannot score suggestions: {exc}")
            raise SystemExit(2) from exc
        _log(f"scoring suggestions with {scorer.identity} as the {scorer.policy} policy serves them")
    parts = []
    for path in args.cups or []:
        if not Path(path).is_file():
            _log(f"no CUPS file at {path}")
            raise SystemExit(2)
        parts.append(from_cups(path, scorer, limit=args.limit, seed=args.seed, log=_log))
    if args.telemetry:
        data, refusals = from_telemetry(args.telemetry, limit=args.limit, seed=args.seed)
        for msg in refusals:
            _log(f"refused: {msg}")
        parts.append(data)
    data = AcceptanceData.concat(parts)
    if scorer is not None:
        _log(f"scores: {scorer.hits} cached, {scorer.misses} computed")
    for s in data.sources:
        _log(f"{s['kind']} {s['path']}: {s.get('used', s.get('samples'))} samples, skipped {s.get('skipped') or {}}")
    if len(data) == 0 or len(set(data.groups.tolist())) < 2 or len(set(data.y.tolist())) < 2:
        _log("not enough data: need accepted and rejected suggestions from at least two programmers")
        raise SystemExit(2)
    return data, f"{scorer.identity} ({scorer.policy})" if scorer is not None else None


def main_cli(args) -> int:
    if not args.cups and not args.telemetry:
        args.cups = [args.default_cups]
    if args.command == "train":
        from models.acceptance.train import train_acceptance

        data, scoring = load_data(args)
        model = train_acceptance(data, args.kind, args.kind, seed=args.seed, scoring_model=scoring, log=_log)
        path = model.save(args.out)
        out = {"model": str(path), "version": model.version, **{k: model.info[k] for k in
                                                                   ("samples", "accepted", "programmers", "kinds", "lopo_auc", "scoring_model")}}
        print(json.dumps(out) if args.json else "\n".join(f"{k}: {v}" for k, v in out.items()))
        return 0
    from models.acceptance.evaluate import evaluate, evaluate_model, format_report

    data, scoring = load_data(args)
    if args.acceptance_model:
        from models.acceptance.model import AcceptanceModelError, load_model

        try:
            model = load_model(args.acceptance_model)
        except AcceptanceModelError as exc:
            _log(str(exc))
            return 2
        report = evaluate_model(model, data, args.lam, args.precision_floor)
    else:
        report = evaluate(data, args.lam, args.precision_floor, args.kind, args.kind, inner_folds=args.inner_folds,
                          seed=args.seed, log=_log)
    report["scoring_model"] = scoring
    print(json.dumps(report) if args.json else format_report(report))
    return 0
