"""`tact bench notebook`: whether reading the code cells above a notebook cell makes its suggestions better.

Files (--source DIR, else the held-out split of the corpus) are cut into notebook cells at their top-level parts
(``bench_serve.notebook_cells``), as `tact bench serve --layout notebook` types them. Samples are drawn as `tact bench
early-exit` draws them (``make_samples``: a line drawn alike among all lines, a cursor inside it, the rest of the line
to complete), but only among cells with code cells above. Each sample's context is built as serving builds it
(``CompletionService.context`` on the cell's text, ``with_earlier_cells`` of ``NotebookStore.earlier_cells``, default
settings) and completed twice by `full`, in alternating order: with the cells above and with the cell alone. Both
decode from an empty cache, so ms per suggestion holds the whole prompt's pass: what a completion costs before
typing in the cell lets the cache be reused. Stop is off for the quality figures, as in early-exit's policy table;
acceptance under the served Stop thresholds is replayed from the recorded P(stop) (``truncate_at_stop``).
"""

from __future__ import annotations

import builtins
import dataclasses
import keyword
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from lsp_server.bench_serve import describe_data, notebook_cells
from lsp_server.config import DEFAULTS, Settings
from lsp_server.services.completion import CompletionService
from lsp_server.services.context import CompletionContext
from lsp_server.services.notebooks import cells_above
from lsp_server.services.positions import LineIndex
from models.bench_early_exit import (NO_STOP, BenchInputError, Sample, _ci, _f, _mean, _median, _public, _r,
                                     _ratio, acceptance, bootstrap_interval, hardware, load_texts, make_samples,
                                     suggestion, suggestion_ms, texts_identity, truncate_at_stop)
from models.fim import to_lf
from models.healing import Prompt
from models.metrics import edit_similarity, exact_match, first_line, rouge_l
from models.model_dir import fingerprint
from models.runtime import DecodeOptions, DecodeResult, EarlyExitRuntime

ARMS = ("with_cells", "cell_alone")  # the prompt with the code of the cells above, and without it
LANGUAGE = "python"
_NAME = re.compile(r"[A-Za-z_]\w+")
# Names every cell knows without the cells above: keywords, builtins, the receiver's conventional names.
_KNOWN = frozenset(keyword.kwlist) | frozenset(dir(builtins)) | {"self", "cls"}


@dataclass
class NotebookSample:
    """A sample in cell ``cell`` of a file's ``cells``, with the context serving builds there, and without the
    cells above."""
    sample: Sample  # its path names the file and the cell; line and cursor are the cell's
    cells: list[str]
    cell: int  # 1 or more: a cell with code cells above
    contexts: dict[str, CompletionContext]  # by ARMS
    cells_above_chars: int  # of the cells above joined as NotebookStore joins them, uncut


def notebooks(texts: list[tuple[str, str]]) -> list[tuple[str, list[str]]]:
    """(path, cells) of the files that cut into two cells or more: a file of one cell has nothing above it."""
    cut = [(path, notebook_cells(text)) for path, text in texts]
    return [(path, cells) for path, cells in cut if len(cells) > 1]


def notebook_samples(files: list[tuple[str, list[str]]], limit: int, seed: int,
                     settings: Settings = DEFAULTS) -> list[NotebookSample]:
    """``limit`` seeded samples (``make_samples``) among the cells with code cells above, each with the context
    serving builds for it with the cells above and without them."""
    pool: dict[str, tuple[list[str], int]] = {}
    for path, cells in files:
        for n in range(1, len(cells)):
            if "".join(cells[:n]).strip():
                pool[f"{path} cell {n + 1}"] = (cells, n)
    if not pool:
        raise BenchInputError("no notebook cell has code cells above it")
    service = CompletionService()
    out = []
    for s in make_samples([(key, cells[n]) for key, (cells, n) in pool.items()], limit, seed):
        cells, n = pool[s.path]
        index = LineIndex(cells[n])
        alone = service.context(index, LANGUAGE, index.position_at(s.cursor), settings)
        code = [(LANGUAGE, c) for c in cells]
        above = cells_above(code, n, LANGUAGE, settings.context_prefix_chars)
        out.append(NotebookSample(s, cells, n, {"with_cells": alone.with_earlier_cells(above), "cell_alone": alone},
                                  len(cells_above(code, n, LANGUAGE, sum(map(len, cells)) + 2 * n))))
    return out


def names_from_above(ns: NotebookSample) -> bool:
    """Whether the rest of the line names something only the cells above show: a name in the target that the
    with-cells prompt's cells above hold and the cell's own prefix does not (no keyword or builtin). Where reading
    the cells above should matter most: a function or a variable defined in an earlier cell, used here."""
    ctx = ns.contexts["with_cells"]
    if not ctx.earlier_cells:
        return False
    above, own = set(_NAME.findall(ctx.earlier_cells)), set(_NAME.findall(ctx.prefix))
    return any(n in above and n not in own and n not in _KNOWN for n in _NAME.findall(ns.sample.target))


def prompt_cut(runtime: EarlyExitRuntime, ctx: CompletionContext, prompt: Prompt) -> bool:
    """Whether the prompt's token budget cut the start of the cells above off ``prompt`` (``build_prompt`` keeps
    the end of the text before the cursor; token healing leaves its last tokens out, to be written again)."""
    return len(runtime.prompt_prefix_text(prompt)) < len(to_lf(ctx.earlier_cells + ctx.prefix))


def _arm_summary(runs: list[DecodeResult], prompts: list[int], targets: list[str], opts: DecodeOptions,
                 runtime: EarlyExitRuntime) -> dict:
    """One arm's quality (early-exit's metrics on the first line), prompt size, speed and simulated acceptance,
    without Stop and with Stop at the served thresholds (replayed)."""
    texts = [suggestion(r) for r in runs]
    stopped = [first_line(runtime.suggestion_text(truncate_at_stop(r, opts.stop_threshold, opts.stop_inside,
                                                                   opts.stop_inside_threshold), r.heal)) for r in runs]
    ms = [suggestion_ms(r) for r in runs]
    return {
        "samples": len(runs),
        "exact_match": _r(_mean([float(exact_match(s, t)) for s, t in zip(texts, targets, strict=True)])),
        "edit_similarity": _r(_mean([edit_similarity(s, t) for s, t in zip(texts, targets, strict=True)])),
        "rouge_l": _r(_mean([rouge_l(s, t) for s, t in zip(texts, targets, strict=True)])),
        "prompt_tokens_mean": _r(_mean(prompts), 1),
        "ms_per_suggestion_mean": _r(_mean(ms), 2),
        "ms_per_suggestion_median": _r(_median(ms), 2),
        "acceptance": _public(acceptance(texts, targets)),
        "acceptance_with_stop": _public(acceptance(stopped, targets)),
        "_texts": texts, "_stopped": stopped, "_ms": ms,
    }


def _difference(with_cells: np.ndarray, alone: np.ndarray, seed: int) -> dict:
    """Mean of the paired differences (with the cells above less without) and its 95% bootstrap interval; outside
    noise where the interval leaves out 0."""
    ci = bootstrap_interval(lambda idx: float((with_cells[idx] - alone[idx]).mean()), len(alone), seed)
    return {"value": _r(float((with_cells - alone).mean())) if len(alone) else None, "ci": ci,
            "outside_noise": ci is not None and (ci[0] > 0 or ci[1] < 0)}


def _rate_difference(shown: dict[str, np.ndarray], accepted: dict[str, np.ndarray], seed: int) -> dict:
    """The change of the acceptance rate of shown suggestions, with its paired 95% bootstrap interval."""
    def rate(arm: str, idx) -> float | None:
        return _ratio(float(accepted[arm][idx].sum()), float(shown[arm][idx].sum()))

    def stat(idx) -> float | None:
        a, b = rate("with_cells", idx), rate("cell_alone", idx)
        return None if a is None or b is None else a - b

    everything = np.arange(len(shown["cell_alone"]))
    ci = bootstrap_interval(stat, len(everything), seed)
    return {"value": _r(stat(everything)), "ci": ci, "outside_noise": ci is not None and (ci[0] > 0 or ci[1] < 0)}


def run_bench(model_dir: Path, *, source: Path | None = None, corpus: Path | None = None, limit: int = 200,
              seed: int = 0, threads: int = 2, keep_samples: bool = False,
              log: Callable[[str], None] | None = None) -> dict:
    """Every figure as a JSON-ready dict (see ``format_report``). ``corpus``: its held-out split, where no
    ``source`` is given; with neither, BenchInputError. ``keep_samples``: each sample's prompts and suggestions too
    (``per_sample``), for tests."""
    started = time.perf_counter()
    log = log or (lambda msg: None)
    if source is None and corpus is None:
        raise BenchInputError("no held-out corpus (`tact train corpus` builds data/corpus): pass --source DIR")
    texts = load_texts(corpus, source)
    files = notebooks(texts)
    where = str(source) if source is not None else str(Path(corpus) / "heldout.jsonl")
    if not files:
        from models import syntax

        why = "" if syntax.available() else " (tree-sitter is not installed: every file stays one cell)"
        raise BenchInputError(f"{where}: no file cuts into two notebook cells or more (code before a def, a class or "
                              f"after the imports), so no cell has cells above to read{why}")
    settings = dataclasses.replace(DEFAULTS, decoding_policy="full")
    samples = notebook_samples(files, max(1, limit), seed, settings)
    runtime = EarlyExitRuntime(Path(model_dir), threads=threads)
    served = CompletionService().decode_options(settings)  # Stop at the served thresholds, replayed
    opts = dataclasses.replace(served, stop_threshold=NO_STOP)
    runs: dict[str, list[DecodeResult]] = {arm: [] for arm in ARMS}
    prompts: dict[str, list[int]] = {arm: [] for arm in ARMS}
    cut_by_tokens: list[bool] = []
    for n, ns in enumerate(samples):
        built = {arm: CompletionService.prompt(runtime, ns.contexts[arm], settings) for arm in ARMS}
        cut_by_tokens.append(bool(ns.contexts["with_cells"].earlier_cells)
                             and prompt_cut(runtime, ns.contexts["with_cells"], built["with_cells"]))
        for arm in (ARMS if n % 2 == 0 else ARMS[::-1]):  # alternating, so that neither always runs first
            runtime.reset()  # from an empty cache: the whole prompt's pass is in the time
            runs[arm].append(runtime.generate(built[arm].ids, opts, heal=built[arm].heal))
            prompts[arm].append(runs[arm][-1].prompt_tokens)
        if (n + 1) % 20 == 0:
            log(f"{n + 1}/{len(samples)} samples")
    runtime.reset()
    targets = [ns.sample.target for ns in samples]
    arms = {arm: _arm_summary(runs[arm], prompts[arm], targets, served, runtime) for arm in ARMS}

    # each sample's scores and acceptance, by arm: scored once, for all the samples and for those naming from above
    scores = {name: {arm: np.array([float(metric(s, t)) for s, t in zip(arms[arm]["_texts"], targets, strict=True)])
                     for arm in ARMS}
              for name, metric in (("exact_match", exact_match), ("edit_similarity", edit_similarity),
                                   ("rouge_l", rouge_l))}
    judged = {name: {arm: acceptance(arms[arm][key], targets) for arm in ARMS}
              for name, key in (("acceptance_rate", "_texts"), ("acceptance_rate_with_stop", "_stopped"))}

    def differences(idx: np.ndarray) -> tuple[dict, dict]:
        """The arms' figures over the samples ``idx``, and their paired differences."""
        figures: dict = {arm: {} for arm in ARMS}
        diff = {}
        for name, by_arm in scores.items():
            picked = {arm: v[idx] for arm, v in by_arm.items()}
            for arm in ARMS:
                figures[arm][name] = _r(float(picked[arm].mean())) if len(idx) else None
            diff[name] = _difference(picked["with_cells"], picked["cell_alone"], seed)
        for name, by_arm in judged.items():
            shown = {a: np.array(j["_shown"])[idx] for a, j in by_arm.items()}
            accepted = {a: np.array(j["_accepted"])[idx] for a, j in by_arm.items()}
            for arm in ARMS:
                figures[arm][name] = _r(_ratio(float(accepted[arm].sum()), float(shown[arm].sum())))
            diff[name] = _rate_difference(shown, accepted, seed)
        return figures, diff

    _, difference = differences(np.arange(len(samples)))
    named = np.array([i for i, ns in enumerate(samples) if names_from_above(ns)], dtype=int)
    named_figures, named_difference = differences(named)
    ms = {arm: arms[arm]["_ms"] for arm in ARMS}
    per_ratio = [w / a for w, a in zip(ms["with_cells"], ms["cell_alone"], strict=True) if w > 0 and a > 0]
    held = [bool(ns.contexts["with_cells"].earlier_cells) for ns in samples]
    by_chars = [h and len(ns.contexts["with_cells"].earlier_cells) < ns.cells_above_chars
                for h, ns in zip(held, samples, strict=True)]
    cut = [c or t for c, t in zip(by_chars, cut_by_tokens, strict=True)]
    identity = texts_identity(texts)
    result = {
        "model": {"dir": str(model_dir), "name": runtime.name, "fingerprint": fingerprint(Path(model_dir)),
                  "layers": runtime.n_layers, "context_tokens": runtime.context_tokens},
        "hardware": hardware(threads),
        "settings": {"source": str(source) if source is not None else None,
                     "corpus": None if source is not None else str(corpus), "split": None if source is not None
                     else "heldout", "limit": limit, "seed": seed, "policy": "full",
                     "max_new_tokens": opts.max_new_tokens, "context_prefix_chars": settings.context_prefix_chars,
                     "context_suffix_chars": settings.context_suffix_chars, "stop_threshold": served.stop_threshold,
                     "stop_inside": served.stop_inside, "stop_inside_threshold": served.stop_inside_threshold},
        "data": {"kind": "source" if source is not None else "held-out corpus", "path": where, **identity,
                 "notebooks": len(files), "cells": sum(len(c) for _, c in files),
                 "cells_with_code_above": sum(len(c) - 1 for _, c in files)},
        "samples": len(samples),
        "earlier_cells": {"in_prompt": sum(held), "in_prompt_share": _r(_ratio(sum(held), len(samples))),
                          "mean_chars": _r(_mean([len(ns.contexts["with_cells"].earlier_cells)
                                                  for ns, h in zip(samples, held, strict=True) if h]), 1),
                          "cut": sum(cut), "cut_share": _r(_ratio(sum(cut), len(samples))),
                          "cut_share_of_in_prompt": _r(_ratio(sum(cut), sum(held))),
                          "cut_by_chars": sum(by_chars), "cut_by_tokens": sum(cut_by_tokens)},
        "arms": {arm: _public(arms[arm]) for arm in ARMS},
        "difference": difference,
        # the samples whose rest of the line names something only the cells above show (``names_from_above``)
        "names_from_above": {"samples": len(named), "arms": named_figures, "difference": named_difference},
        "ms_ratio": {"total": _r(_ratio(sum(ms["with_cells"]), sum(ms["cell_alone"]))),
                     "median": _r(_median(per_ratio))},
        "seconds": round(time.perf_counter() - started, 2),
    }
    if keep_samples:
        result["per_sample"] = [{"path": ns.sample.path, "line": ns.sample.line, "target": ns.sample.target,
                                 "cell": ns.cell, "earlier_cells": ns.contexts["with_cells"].earlier_cells,
                                 "cell_text": {arm: ns.contexts[arm].document for arm in ARMS},
                                 "prompt_tokens": {arm: prompts[arm][i] for arm in ARMS},
                                 "suggestion": {arm: arms[arm]["_texts"][i] for arm in ARMS}}
                                for i, ns in enumerate(samples)]
    return result


def _diff_cell(d: dict, fmt: str) -> str:
    return f"{_f(d['value'], fmt)}{_ci(d['ci'], fmt)}{' *' if d['outside_noise'] else ''}"


def format_report(r: dict) -> str:
    m, st, d, e = r["model"], r["settings"], r["data"], r["earlier_cells"]
    w, a, diff = r["arms"]["with_cells"], r["arms"]["cell_alone"], r["difference"]
    lines = [
        f"tact bench notebook: {m['dir']} ({m['layers']} layers, {m['context_tokens']} context tokens), policy full, "
        f"Stop off, <= {st['max_new_tokens']} new tokens, single line",
        f"samples: {r['samples']} in cells with code cells above, seed {st['seed']}; context as served "
        f"(prefix {st['context_prefix_chars']} chars, suffix {st['context_suffix_chars']})",
        f"data: {describe_data(d)}, digest {d['digest']}; {d['notebooks']} cut into 2 cells or more "
        f"({d['cells_with_code_above']} cells with code above); model fingerprint {m['fingerprint']}",
        f"cells above in the with-cells prompt: {e['in_prompt']} of {r['samples']} samples "
        f"({_f(e['in_prompt_share'], '{:.1%}')}; elsewhere the prefix window does not reach the cell's start), "
        f"{_f(e['mean_chars'], '{:.0f}')} chars on average; cut to fit in {e['cut']} ({_f(e['cut_share'], '{:.1%}')} "
        f"of samples): {e['cut_by_chars']} by characters, {e['cut_by_tokens']} by the prompt's tokens",
        "",
        f"{'':<28} {'with cells':>10} {'cell alone':>10}  difference [95% interval]",
    ]
    rows = [("exact match", "exact_match", "{:.3f}", "{:+.3f}"),
            ("edit similarity", "edit_similarity", "{:.3f}", "{:+.3f}"),
            ("ROUGE-L", "rouge_l", "{:.3f}", "{:+.3f}")]
    for label, key, fmt, dfmt in rows:
        lines.append(f"{label:<28} {_f(w[key], fmt):>10} {_f(a[key], fmt):>10}  {_diff_cell(diff[key], dfmt)}")
    for label, key, dkey in (("acceptance (no Stop)", "acceptance", "acceptance_rate"),
                             ("acceptance (Stop, replayed)", "acceptance_with_stop", "acceptance_rate_with_stop")):
        lines.append(f"{label:<28} {_f(w[key]['acceptance_rate'], '{:.1%}'):>10} "
                     f"{_f(a[key]['acceptance_rate'], '{:.1%}'):>10}  {_diff_cell(diff[dkey], '{:+.3f}')}  "
                     f"(accepted/shown {w[key]['accepted']}/{w[key]['shown']} vs "
                     f"{a[key]['accepted']}/{a[key]['shown']})")
    lines += [f"{'prompt tokens (mean)':<28} {_f(w['prompt_tokens_mean'], '{:.1f}'):>10} "
              f"{_f(a['prompt_tokens_mean'], '{:.1f}'):>10}",
              f"{'ms per suggestion (mean)':<28} {_f(w['ms_per_suggestion_mean'], '{:.2f}'):>10} "
              f"{_f(a['ms_per_suggestion_mean'], '{:.2f}'):>10}  ratio {_f(r['ms_ratio']['total'], '{:.3f}x')} total, "
              f"{_f(r['ms_ratio']['median'], '{:.3f}x')} median sample",
              f"{'ms per suggestion (median)':<28} {_f(w['ms_per_suggestion_median'], '{:.2f}'):>10} "
              f"{_f(a['ms_per_suggestion_median'], '{:.2f}'):>10}",
              "",
              f"the {r['names_from_above']['samples']} samples whose rest of the line names something only the cells "
              f"above show:"]
    nf, nd = r["names_from_above"]["arms"], r["names_from_above"]["difference"]
    for label, key, fmt in (("exact match", "exact_match", "{:.3f}"), ("ROUGE-L", "rouge_l", "{:.3f}"),
                            ("acceptance (no Stop)", "acceptance_rate", "{:.1%}"),
                            ("acceptance (Stop, replayed)", "acceptance_rate_with_stop", "{:.1%}")):
        lines.append(f"{label:<28} {_f(nf['with_cells'][key], fmt):>10} {_f(nf['cell_alone'][key], fmt):>10}  "
                     f"{_diff_cell(nd[key], '{:+.3f}')}")
    lines += ["* outside noise: the 95% interval (paired bootstrap over the samples) leaves out 0; ms from an empty "
              "cache (the whole prompt's pass), the arms alternating",
              f"({r['seconds']:.1f} s)"]
    return "\n".join(lines)


def main_cli(args) -> int:
    """Entry point for `tact bench notebook`: argparse values, --corpus resolved by the caller."""
    result = run_bench(args.model, source=args.source, corpus=args.corpus, limit=args.limit, seed=args.seed,
                       threads=args.threads, log=lambda msg: print(msg, file=sys.stderr, flush=True))
    from telemetry.store import strict_json

    print(strict_json(result, indent=1) if args.json else format_report(result))
    return 0
