"""`tact eval next-edit`: the baseline (and the model, once there is one) on next-edit examples.

Metrics per predictor, over all examples (a missing prediction counts as a miss):

- exact: the prediction leaves the same text as the target (location and text);
- position: the predicted range overlaps the target's lines or starts on its start line;
- partial: the first non-blank line of the target's new text is a line of the predicted new text;
- predicted: how often a prediction was made;
- no_op and reversal: among predictions, the share that change nothing / undo the last history edit;
- p50_ms: median prediction time.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Iterable

from models.next_edit.examples import Edit, Example, apply_all, apply_edit, lines_of

NO_MODEL = "no model yet"
NOT_RUN = "not run (--no-model)"


def _span(e: Edit) -> tuple[int, int]:
    return (e.start_line, max(e.end_line, e.start_line + 1))


def score(example: Example, pred: Edit | None) -> dict:
    t = example.target
    if pred is None:
        return {"predicted": 0, "exact": 0, "position": 0, "partial": 0, "no_op": 0, "reversal": 0}
    try:
        after = apply_edit(example.current, pred)
    except ValueError:
        after = None
    exact = after is not None and after == apply_edit(example.current, t)
    no_op = pred.updated == pred.original or after == example.current
    (ps, pe), (ts, te) = _span(pred), _span(t)
    # a no-op changes nothing, so it is at no place and writes nothing: it took both for a blank target (a deletion)
    position = exact or (not no_op and (pred.start_line == t.start_line or (ps < te and ts < pe)))
    first = next((ln.strip() for ln in t.updated.splitlines() if ln.strip()), "")
    pred_lines = {ln.strip() for ln in pred.updated.splitlines()}
    # a blank target's part: the same kind of edit, as many lines taken out (a deletion is no blank line put in)
    same_kind = len(lines_of(pred.original)) == len(lines_of(t.original)) and \
        len(lines_of(pred.updated)) == len(lines_of(t.updated))
    partial = exact or (bool(first) and first in pred_lines) or \
        (not first and not pred.updated.strip() and position and same_kind)
    reversal = False
    if example.history:
        last = example.history[-1]
        reversal = (pred.original == last.updated and pred.updated == last.original
                    and (last.start_line < 0 or pred.start_line == last.start_line))
        if not reversal and after is not None:
            reversal = after == apply_all(example.original, example.history[:-1])
    return {"predicted": 1, "exact": int(exact), "position": int(position), "partial": int(partial),
            "no_op": int(no_op), "reversal": int(reversal)}


SWEEP = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def evaluate(examples: Iterable[Example], predictor) -> dict:
    """Metrics of ``predictor`` over ``examples``. A predictor with ``predict_scored(example) ->
    (Edit | None, confidence)`` also gets a sweep of exact / predicted over confidence thresholds."""
    totals = {"predicted": 0, "exact": 0, "position": 0, "partial": 0, "no_op": 0, "reversal": 0}
    times: list[float] = []
    scored: list[tuple[float, dict]] = []
    threshold = getattr(predictor, "threshold", 0.0)
    n = 0
    for ex in examples:
        t0 = time.perf_counter()
        if hasattr(predictor, "predict_scored"):
            pred, confidence = predictor.predict_scored(ex)
        else:
            pred, confidence = predictor.predict(ex), None
        times.append((time.perf_counter() - t0) * 1000.0)
        s = score(ex, pred)
        if confidence is not None:
            scored.append((confidence, s))
        if confidence is not None and confidence < threshold:
            s = score(ex, None)
        for k, v in s.items():
            totals[k] += v
        n += 1
    made = totals["predicted"]
    out = {"examples": n, "predicted": made / n if n else 0.0}
    for k in ("exact", "position", "partial"):
        out[k] = totals[k] / n if n else 0.0
    for k in ("no_op", "reversal"):
        out[k] = totals[k] / made if made else 0.0
    out["p50_ms"] = statistics.median(times) if times else 0.0
    if scored and n:
        out["sweep"] = {f"{t:.2f}": {"predicted": sum(s["predicted"] for c, s in scored if c >= t) / n,
                                      "exact": sum(s["exact"] for c, s in scored if c >= t) / n} for t in SWEEP}
    return out


def load_model_predictor(model_dir: Path | None = None, threshold: float = 0.0, copy_margin: float | None = None):
    """The trained next-edit model at ``model_dir`` (ModelDirError when it is none), else the shipped one (None while
    there is none), showing only predictions with confidence >= threshold, as the server does."""
    from models.model_dir import GRAPHS_INDEX, ModelDirError
    from models.next_edit.model import load_predictor

    if model_dir is not None and not (Path(model_dir) / GRAPHS_INDEX).is_file():
        raise ModelDirError(f"{model_dir} is not a next-edit model directory (no {GRAPHS_INDEX}): train one with "
                            "`tact train next-edit`, or leave --model out for the shipped one")
    model = load_predictor(model_dir, copy_margin=copy_margin)
    if model is not None:
        model.threshold = threshold
    return model


def _row_example(line: bytes) -> tuple[Example | None, str | None]:
    """(the example of one JSON-lines row, None) or (None, why it is none)."""
    try:
        row = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        return None, "not UTF-8 text"
    except ValueError:
        return None, "not JSON"
    if not isinstance(row, dict):
        return None, "not a JSON object"
    missing = [k for k in ("path", "package", "original", "history", "current", "target") if k not in row]
    if missing:
        return None, f"missing field {missing[0]!r}"
    try:
        ex = Example.from_json(row)
        edits = [*ex.history, ex.target]
        if not (all(isinstance(v, str) for v in (ex.path, ex.package, ex.original, ex.current))
                and all(isinstance(e.original, str) and isinstance(e.updated, str) for e in edits)):
            raise TypeError
    except (KeyError, TypeError, ValueError, IndexError, OverflowError):  # OverflowError: a line number of 1e400
        return None, "malformed fields"
    try:
        # its history must make its current text: reversal is judged against the text before the last edit
        if apply_all(ex.original, ex.history) != ex.current:
            return None, "history not making its current text"
        apply_edit(ex.current, ex.target)
    except ValueError:
        return None, "edits not matching its text"
    return ex, None


def read_examples(path: Path, limit: int | None = None) -> tuple[list[Example], int, Counter]:
    """(examples, rows read, rows skipped by reason) of a next-edit JSON-lines file: a row that is not an example
    (not JSON, fields missing or malformed, edits that do not apply) is skipped and counted, never fatal; at most
    ``limit`` examples."""
    examples: list[Example] = []
    rows, skipped = 0, Counter()
    with open(path, "rb") as f:
        for line in f:
            if limit is not None and len(examples) >= limit:
                break
            if not line.strip():
                continue
            rows += 1
            ex, problem = _row_example(line)
            if ex is None:
                skipped[problem] += 1
            else:
                examples.append(ex)
    return examples, rows, skipped


def datasets(data_dir: Path | None, pair: tuple[Path, Path] | None, limit: int | None,
             bottom_up: bool = False, sources: dict | None = None) -> dict[str, list[Example]]:
    """Held-out files of data_dir (``*_heldout.jsonl``, else every ``*.jsonl`` but the ``*_train.jsonl`` the ranker and
    the model learn from, which evaluated what they were trained on) and/or a --pair; ``bottom_up``: also
    the held-out release pairs (from data_dir/src) and the --pair with their hunks replayed bottom to top.
    ``sources``, when given, gets each file's rows and rows skipped (`read_examples`) by set name."""
    from itertools import islice

    from models.next_edit.real_changes import bottom_up_examples, pairs_from_dirs

    sets: dict[str, list[Example]] = {}
    if data_dir is not None:
        files = sorted(Path(data_dir).glob("*_heldout.jsonl")) or sorted(
            f for f in Path(data_dir).glob("*.jsonl") if not f.name.endswith("_train.jsonl"))
        for f in files:
            sets[f.stem], rows, skipped = read_examples(f, limit)
            if sources is not None:
                sources[f.stem] = {"path": str(f), "rows": rows, "examples": len(sets[f.stem]),
                                   "skipped": dict(skipped)}
        if bottom_up:
            sets["real_heldout_bottom_up"] = list(islice(bottom_up_examples(Path(data_dir), "heldout"), limit))
    if pair is not None:
        if "pair" in sets:  # a pair.jsonl in --data: a set of that name was replaced by --pair's, its count kept
            raise ValueError(f"{Path(data_dir) / 'pair.jsonl'} and --pair would both be the set \"pair\": move that "
                             "file or evaluate it on its own")
        sets["pair"] = list(islice(pairs_from_dirs(Path(pair[0]), Path(pair[1])), limit))
        if bottom_up:
            sets["pair_bottom_up"] = list(islice(pairs_from_dirs(Path(pair[0]), Path(pair[1]), bottom_up=True), limit))
    return sets


def _served(predictor: str, example: Example, ranker=None):
    """The answer of the baseline (``heuristic``) or the edit ranker (``ranker``) as the server asks it
    (`model.predict_with`): on the LF view of a document holding CRs (a CR is a line's end, not text), its edit
    written back with the document's line breaks, never one undoing the last edit."""
    from models.next_edit.model import predict_with

    return predict_with(predictor, None, example.history, example.current, example.cursor_line, example.path,
                        ranker=ranker)


class ServedBaseline:
    """The baseline as served (`_served`): its edits are all shown."""

    name = "baseline"

    def predict(self, example: Example) -> Edit | None:
        found = _served("heuristic", example)
        return found.edit if found is not None else None


class ServedRanker:
    """The edit ranker as served (`_served`), with its scores: `evaluate` applies its threshold and sweeps it."""

    name = "ranker"

    def __init__(self, ranker):
        self.ranker, self.threshold = ranker, ranker.threshold

    def predict_scored(self, example: Example) -> tuple[Edit | None, float]:
        found = _served("ranker", example, self.ranker)
        return (found.edit, found.confidence) if found is not None else (None, 0.0)


def load_ranker_predictor(ranker_dir: Path | None = None):
    """The edit ranker at ``ranker_dir`` (RankerError when it is missing or corrupt), else the shipped one
    (None while there is none)."""
    from models.next_edit.ranker import DEFAULT_RANKER_DIR, RANKER_FILE, load_ranker

    if ranker_dir is None and not (DEFAULT_RANKER_DIR / RANKER_FILE).exists():
        return None
    return load_ranker(ranker_dir)


def run_eval(data_dir: Path | None = None, pair: tuple[Path, Path] | None = None, limit: int | None = None,
             model_dir: Path | None = None, threshold: float = 0.0, copy_margin: float | None = None,
             ranker_dir: Path | None = None, with_model: bool = True, bottom_up: bool = False) -> dict:
    """``with_model`` False: the baseline and the ranker alone; ``bottom_up``: also the sets replayed bottom to top
    (`datasets`)."""
    from models.next_edit.model import AutoPredictor

    model = load_model_predictor(model_dir, threshold, copy_margin) if with_model else None
    ranker = load_ranker_predictor(ranker_dir)
    results: dict = {"model": model.version if model is not None else NO_MODEL if with_model else NOT_RUN,
                     "threshold": threshold,
                     "copy_margin": model.copy_margin if model is not None else None,
                     "ranker": ranker.version if ranker is not None else NO_MODEL,
                     "ranker_threshold": ranker.threshold if ranker is not None else None, "sets": {}, "files": {}}
    for name, exs in datasets(data_dir, pair, limit, bottom_up, results["files"]).items():
        # the baseline and the ranker as the server asks them: a document's CRs are line breaks, not text
        row = {"baseline": evaluate(exs, ServedBaseline())}
        row["ranker"] = evaluate(exs, ServedRanker(ranker)) if ranker is not None else None
        row["model"] = evaluate(exs, model) if model is not None else None
        if model is not None:
            row["auto"] = evaluate(exs, AutoPredictor(model, threshold, ranker))
        results["sets"][name] = row
    return results


def format_table(results: dict) -> str:
    cols = ("examples", "predicted", "exact", "position", "partial", "no_op", "reversal", "p50_ms")
    lines = []
    if results.get("copy_margin") is not None:
        lines.append(f"model {results['model']}, confidence threshold {results['threshold']}, "
                     f"copy margin {results['copy_margin']}")
    if results.get("ranker_threshold") is not None:
        lines.append(f"ranker {results['ranker']}, score threshold {results['ranker_threshold']}")
    width = max([20, *(len(name) for name in results["sets"])])
    lines.append(f"{'set':<{width}} {'predictor':<10} " + " ".join(f"{c:>9}" for c in cols))
    for name, row in results["sets"].items():
        for pred_name in ("baseline", "ranker", "model", "auto"):
            if pred_name not in row:  # auto: only with a model
                continue
            m = row[pred_name]
            if m is None:
                said = results["model"] if pred_name == "model" and results["model"] == NOT_RUN else NO_MODEL
                lines.append(f"{name:<{width}} {pred_name:<10} {said}")
                continue
            cells = [f"{m[c]:>9d}" if c == "examples" else (f"{m[c]:>9.2f}" if c == "p50_ms" else f"{m[c]:>9.3f}")
                     for c in cols]
            lines.append(f"{name:<{width}} {pred_name:<10} " + " ".join(cells))
    for name, row in results["sets"].items():
        for pred_name in ("ranker", "model"):
            sweep = (row.get(pred_name) or {}).get("sweep")
            if sweep:
                lines.append(f"{name}: {pred_name} exact / predicted by confidence threshold: "
                             + ", ".join(f"{t}: {v['exact']:.3f}/{v['predicted']:.3f}" for t, v in sweep.items()))
    lines.append("baseline: the `heuristic` predictor (tact.nextEditPredictor), which repeats the last replacement at "
                 "its next occurrence")
    return "\n".join(lines)


def main_cli(args) -> int:
    """`tact eval next-edit`. Errors go to stderr (--json keeps stdout one JSON object); a --model that is no
    next-edit model raises ModelDirError, which the CLI prints."""
    if args.data is None and args.pair is None:
        print("tact eval next-edit: error: give --data DIR and/or --pair BEFORE AFTER", file=sys.stderr)
        return 2
    missing = [str(d) for d in ([args.data] if args.data else []) + list(args.pair or []) if not Path(d).is_dir()]
    if missing:
        files = [d for d in missing if Path(d).exists()]
        what = f"not a directory: {', '.join(files)}" if files else f"no such directory: {', '.join(missing)}"
        if files and args.data is not None and str(args.data) in files:
            what += " (--data takes the directory that holds the *_heldout.jsonl files)"
        print(f"tact eval next-edit: error: {what}", file=sys.stderr)
        return 2
    if args.pair and Path(args.pair[0]).resolve() == Path(args.pair[1]).resolve():
        print(f"tact eval next-edit: error: --pair names the same directory twice ({args.pair[0]}): give the "
              "version before the changes and the one after", file=sys.stderr)
        return 2
    from models.next_edit.ranker import RankerError

    pair = tuple(args.pair) if args.pair else None
    try:
        results = run_eval(args.data, pair, args.limit, args.model, args.threshold, args.copy_margin, args.ranker,
                           with_model=not args.no_model, bottom_up=args.bottom_up)
    except RankerError as exc:
        print(f"tact eval next-edit: error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # --bottom-up without the release sources
        print(f"tact eval next-edit: error: {exc}", file=sys.stderr)
        return 2
    for f in results["files"].values():
        if f["skipped"]:
            reasons = ", ".join(f"{n} {why}" for why, n in sorted(f["skipped"].items(), key=lambda kv: -kv[1]))
            print(f"tact eval next-edit: {f['path']}: skipped {sum(f['skipped'].values())} of {f['rows']} rows, "
                  f"no next-edit examples: {reasons}", file=sys.stderr)
    if not results["sets"]:
        where = " and ".join(str(d) for d in ([args.data] if args.data else []) + list(args.pair or []))
        print(f"tact eval next-edit: error: no next-edit examples in {where} (*_heldout.jsonl, or Python files that "
              "differ for --pair): write them with `tact train next-edit-data --out DIR`", file=sys.stderr)
        if args.data and list(Path(args.data).glob("*_train.jsonl")):
            print(f"tact eval next-edit: {args.data} holds training examples only (*_train.jsonl), which are not "
                  "evaluated: what the ranker and the model learn from", file=sys.stderr)
        return 2
    bad = [f["path"] for f in results["files"].values() if f["skipped"]]
    if bad and not any(row["baseline"]["examples"] for row in results["sets"].values()):
        print(f"tact eval next-edit: error: no usable examples in {', '.join(bad)}: write next-edit examples with "
              "`tact train next-edit-data`", file=sys.stderr)
        return 2
    if not any(row["baseline"]["examples"] for row in results["sets"].values()):
        empty = [f"{f['path']} (no rows)" for f in results["files"].values()]
        if args.pair:
            empty.append(f"--pair {args.pair[0]} {args.pair[1]} (no .py file at one path in both that changed in two "
                         "places or more; unchanged, binary, non-UTF-8 and files over 300 kB are left out)")
        print(f"tact eval next-edit: error: no examples in {', '.join(empty)}", file=sys.stderr)
        return 2
    from telemetry.store import strict_json

    print(strict_json(results) if args.json else format_table(results))
    return 0
