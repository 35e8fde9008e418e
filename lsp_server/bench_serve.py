"""`tact bench serve`: the server as an editor sees it, over stdio, while typing through real files.

Cold start is process start to the first inline completion answered; latency is the client-side
round trip of each inline completion request (one per keystroke); RSS is the server's peak. Keystrokes
come at a person's pace (``--typing-cps``, the simulated programmer's 5 a second): the acceptance gate
reads typing speed, and when the bench typed as fast as the server answered, the gate saw an impossibly
fast typist and debounced every request.

``--layout notebook`` types the same files as Jupyter notebooks whose code cells are the files' top-level parts
(``notebook_cells``), over LSP notebook sync, so that completions in cells, whose prompt puts the cells above first,
are timed against the same keystrokes in plain files.
"""

from __future__ import annotations

import itertools
import json
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from models.corpus import iter_directory
from telemetry.report import percentile
from telemetry.simulate import TypingStyle, require_ready, server_command, type_file
from telemetry.lsp_client import LspClient, text_document_item
from telemetry.reader import open_readonly, outcome_counts
from telemetry.text import line_starts

TARGETS = {"cold_start_s": 1.5, "p50_ms": 50.0, "p95_ms": 150.0, "peak_rss_mb": 300.0}
# The fewest requests on which the latency and memory targets are judged: a p95 of two requests was said PASS, and a
# short run's peak RSS is below a long session's. The cold start is one measurement whatever the run's length.
MIN_JUDGED_REQUESTS = 100
RATIO_RESAMPLES = 1000  # bootstrap resamples of each server's latencies for a compared ratio's interval
LAYOUTS = ("file", "notebook")  # how the typed files are opened: as documents, or as notebooks of their cells
_DEFINITIONS = {"function_definition", "class_definition", "decorated_definition"}
_IMPORTS = {"import_statement", "import_from_statement", "future_import_statement"}


def peak_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def typed_files(source: Path | None, corpus: Path | None, seed: int) -> tuple[list[tuple[str, str]], dict]:
    """(name, text) of real Python files, and where they come from (``data``: its kind, path, files and characters,
    for the report and the JSON): --source DIR, else the held-out split of ``corpus``, else (no corpus at all) the
    demo sample. A directory or corpus that gives none to type is a BenchInputError: the bench typed the built-in
    sample instead and called it real files."""
    files: list[tuple[str, str]] = []
    if source is not None:
        if not source.is_dir():
            raise _bench_input_error(f"source directory {source} " + ("is a file: name a directory of code"
                                                                        if source.exists() else "does not exist"))
        # the files `tact bench early-exit --source` reads: virtual environments, vendored copies and build output
        # left out, binary and oversized files skipped
        files = [(Path(r["path"]).name, r["text"]) for r in iter_directory(source)]
        kind, path = "source", source
    elif corpus is not None:
        path, kind = corpus / "heldout.jsonl", "held-out corpus"
        if not path.is_file():
            why = ("does not exist" if not corpus.exists() else "is not a directory" if not corpus.is_dir() else
                   "holds no heldout.jsonl")
            raise _bench_input_error(f"corpus {corpus} {why}: name a directory built by `tact train corpus --out DIR`, "
                                     "or pass --source DIR")
        try:
            with open(path, encoding="utf-8") as f:
                files = [(Path(r["path"]).name, r["text"]) for r in map(json.loads, filter(str.strip, f))]
            if any(not isinstance(t, str) for _, t in files):  # null or a number: a traceback in the line filter
                raise TypeError("a row's text is not a string")
        except (ValueError, KeyError, TypeError) as exc:  # not JSON lines, not UTF-8, rows without path or text
            raise _bench_input_error(f"{path} is not a corpus split (JSON lines with path and text): {exc}") from None
    else:
        from telemetry.simulate import sample_file

        path, kind = sample_file(), "demo sample"
        files = [(path.name, path.read_text(encoding="utf-8"))]
    files = [(n, t) for n, t in files if 30 <= t.count("\n") <= 3000]
    if not files:
        raise _bench_input_error(f"{path} holds no Python files of 30 to 3000 lines")
    random.Random(seed).shuffle(files)
    return files, {"kind": kind, "path": str(path), "files": len(files), "chars": sum(len(t) for _, t in files)}


def describe_data(data: dict) -> str:
    """What a bench typed, for its report: the demo sample said plainly (the report said real files)."""
    if data["kind"] == "demo sample":
        return (f"the built-in demo sample ({Path(data['path']).name}: no held-out corpus; `tact train corpus` builds "
                "data/corpus, or pass --source DIR)")
    what = "held-out files of" if data["kind"] == "held-out corpus" else "the Python files of"
    return f"{what} {data['path']} ({data['files']} files, {data['chars']} characters)"


def _bench_input_error(message: str) -> Exception:
    """`tact bench early-exit`'s error for a --source that gives no samples (imported only on this path: it loads
    onnxruntime), so that every bench refuses such a directory alike instead of typing the built-in sample."""
    from models.bench_early_exit import BenchInputError

    return BenchInputError(message)


def cell_first_lines(text: str) -> list[int]:
    """The lines where ``text``'s notebook cells begin (0 first), cut as a person splits a script into cells: before
    each top-level def or class (with its decorators and the comments right above it), after the imports, and after
    a definition for the code that follows. tree-sitter, as the server's syntax facts: a held-out file that does not
    parse as this Python (Python 2) is split all the same."""
    from models import syntax

    if not syntax.available():
        return [0]
    nodes = syntax.parse(text).root_node.children
    firsts = [nodes[0].start_point[0] if nodes else 0]  # no cut before the first code: blank lines are no cell
    before = "other"  # the kind of the last top-level statement: "definition", "import" or "other"
    comments = None  # the first line of the comments right above the next statement
    last_end = -1  # the last line of the last statement or comment
    for node in nodes:
        row = node.start_point[0]
        if node.type == "comment":
            if row > last_end:  # not one at the end of a statement's line
                comments = comments if comments is not None and row == last_end + 1 else row
            last_end = node.end_point[0]
            continue
        kind = "definition" if node.type in _DEFINITIONS else "import" if node.type in _IMPORTS else "other"
        first = comments if comments is not None and last_end == row - 1 else row
        if (kind == "definition" or before == "definition" or (before == "import" and kind != "import")) \
                and first > firsts[-1]:
            firsts.append(first)
        before, comments, last_end = kind, None, node.end_point[0]
    return [0, *firsts[1:]]


def notebook_cells(text: str) -> list[str]:
    """``text`` as a notebook's code cells (``cell_first_lines``), none empty; joined they are ``text`` again."""
    return _cut(text, cell_first_lines(text))


def _cut(text: str, first_lines: list[int]) -> list[str]:
    """``text`` cut before each of ``first_lines`` that it reaches (0 first): a cell beginning at its very end is
    the last, empty, part."""
    starts = line_starts(text)
    bounds = [starts[n] for n in first_lines if n < len(starts)] + [len(text)]
    return [text[a:b] for a, b in zip(bounds, bounds[1:])]


class NotebookTyping:
    """The client `type_file` types through in the notebook layout: the file it opens is a notebook of the file's
    cells, and each keystroke and request goes to the cell that holds its line, as VS Code sends them
    (notebookDocument/didChange textContent). A cell that begins where the typing starts is not there yet: it is
    added (a structure change) at its first keystroke, as a person adds a cell."""

    def __init__(self, client: LspClient, text: str):
        self.client = client
        self.first_lines = cell_first_lines(text)
        self.uri = ""
        self.version = 1
        self.cell_versions: list[int] = []  # of the cells opened so far, in order

    def __getattr__(self, name: str):  # request, notify, proc: the client's own
        return getattr(self.client, name)

    def cell_uri(self, n: int) -> str:
        return f"{self.uri.replace('file://', 'vscode-notebook-cell:', 1)}#C{n}"

    def _cell(self, line: int) -> int:
        """The cell holding the file's ``line``, opened if it is not yet."""
        n = bisect_right(self.first_lines, line) - 1
        while len(self.cell_versions) <= n:
            new = len(self.cell_versions)
            self.version += 1
            self.client.did_change_notebook_cells(self.uri, self.version, new, 0, [self.cell_uri(new)],
                                                  [text_document_item(self.cell_uri(new), "", 1)], [])
            self.cell_versions.append(1)
        return n

    def did_open(self, uri: str, text: str, version: int = 1, language_id: str = "python") -> None:
        self.uri = f"{uri.removesuffix('.py')}.ipynb"
        texts = _cut(text, self.first_lines)  # the cells the opened text reaches
        if len(texts) > 1 and not texts[-1]:  # the typing starts a cell: added at its first keystroke
            texts.pop()
        self.cell_versions = [version] * len(texts)
        self.client.did_open_notebook(self.uri, "jupyter-notebook", self.version, [
            text_document_item(self.cell_uri(n), t, version, language_id) for n, t in enumerate(texts)])

    def did_change(self, uri: str, version: int, changes: list[dict]) -> None:
        for change in changes:
            n = self._cell(change["range"]["start"]["line"])
            shift = self.first_lines[n]
            moved = {"range": {end: {**at, "line": at["line"] - shift} for end, at in change["range"].items()},
                     "text": change["text"]}
            self.cell_versions[n] += 1
            self.client.did_change_notebook_text(self.uri, self.version, self.cell_uri(n), self.cell_versions[n],
                                                 [moved])

    def inline_completion(self, uri: str, line: int, character: int, invoked: bool = False, timeout: float = 30.0,
                          selected: dict | None = None) -> list[dict]:
        n = self._cell(line)
        return self.client.inline_completion(self.cell_uri(n), line - self.first_lines[n], character, invoked,
                                             timeout, selected)


def failed_requests(db: Path) -> int:
    """Requests the server logged failed (its model raised while serving them); 0 where it recorded nothing."""
    if not db.exists():
        return 0
    conn = open_readonly(db)
    try:
        return outcome_counts(conn).get("failed", 0)
    finally:
        conn.close()


def earlier_cells_chars(db: Path) -> list[int]:
    """Each completion generated in a notebook cell, as the server logged it: the characters of earlier cells its
    prompt held after the token budget's cut (0: none; the request's context logs what it was given)."""
    conn = open_readonly(db)
    try:
        rows = conn.execute(
            "SELECT json_extract(e.payload, '$.details.earlier_cells_kept_chars') FROM suggestions s JOIN"
            " suggestion_events e ON e.suggestion_id = s.id AND e.type = 'suggestion_generated' WHERE s.kind ="
            " 'completion' AND s.uri LIKE 'vscode-notebook-cell:%' ORDER BY s.requested_at").fetchall()
    finally:
        conn.close()
    return [chars or 0 for (chars,) in rows]


@dataclass
class ServedRun:
    """One server under the bench: its client and what it answered."""
    variant: str  # what sets it apart from the others in the run (its weights, the compared setting's value, layout)
    client: LspClient
    layout: str = "file"  # LAYOUTS
    cold_start_s: float = 0.0
    status: dict = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)  # every request, as the editor waits for it
    shown_latencies: list[float] = field(default_factory=list)  # the requests answered with a suggestion
    shown: int = 0
    accepted: int = 0
    peak_rss_mb: float | None = None
    earlier_cells_chars: list[int] = field(default_factory=list)  # in the notebook layout, as the server logged them
    # Requests the server logged failed (its model raised), answered at once with nothing: fast answers that are none
    failed: int = 0
    lost_model: str | None = None  # the server's reason where it had no model by the run's end (degraded meanwhile)


def _start(model: str | None, policy: str, gate: bool, variant: tuple[str, dict], db: Path) -> ServedRun:
    """A server started and answering, recording into ``db``: cold start is process start to its first inline
    completion. ``variant``: (label, the camelCase settings it runs with besides the bench's own, layout)."""
    t0 = time.perf_counter()
    run = ServedRun(variant[0], LspClient(server_command(sys.executable, model, str(db))), variant[2])
    client = run.client
    try:
        client.initialize({**variant[1], "decodingPolicy": policy, "multiline": False, "acceptanceGate": gate},
                          client_name="tact-bench")
        client.did_open("file:///bench/cold.py", "import os\n\n\ndef main():\n    path = os.")
        client.inline_completion("file:///bench/cold.py", 4, 14, invoked=True, timeout=120)
        run.cold_start_s = time.perf_counter() - t0
        run.status = require_ready(client.request("tact/status"))
        running = run.status.get("settings") or {}
        wrong = {k: running.get(k) for k, v in variant[1].items() if running.get(k) != v}
        if wrong:  # refused or unknown there: the comparison would not be one
            raise RuntimeError(f"the server runs with {wrong}, not the bench's {variant[1]}")
        gate_status = run.status.get("acceptanceGate") or {}
        if gate and not gate_status.get("active"):  # latency judged "with the gate" of a server that has none
            why = gate_status.get("reason") or "no reason given"
            raise _bench_input_error(f"the acceptance gate is off in the server ({why}); pass --no-gate, or a working "
                                     "acceptanceModelPath")
    except BaseException:
        client.shutdown()
        raise
    return run


def start_line(text: str, lines_per_file: int, rng: random.Random) -> int:
    """Where typing begins in ``text`` (its lines before are there when the file opens)."""
    return rng.randrange(5, max(6, len(text.split("\n")) - lines_per_file))


def _type(run: ServedRun, plan: list[tuple[int, str, str, int]], limit: int, lines_per_file: int,
          key_gap_s: float) -> int:
    """Type the planned places, file after file, until ``limit`` requests; returns how many files it began. When
    the plan runs out first (a few files: the demo sample's one gave 150 of `--limit 300`), its files are typed
    again, each round at other places (drawn from the plan's own) and as new documents, until a round asks nothing."""
    begun = 0
    for lap in itertools.count():
        before = len(run.latencies)
        for i, name, text, start in plan:
            left = limit - len(run.latencies)
            if left <= 0:
                break
            if lap:
                start = start_line(text, lines_per_file, random.Random(f"{start}/{lap}/{i}"))
            begun += 1
            client = NotebookTyping(run.client, text) if run.layout == "notebook" else run.client
            res = type_file(client, f"file:///bench/{i}{f'.{lap}' if lap else ''}/{name}", text, start_line=start,
                            lines=lines_per_file, limit=left, key_gap_s=key_gap_s)
            run.latencies += [e.latency_ms for e in res.events]
            run.shown_latencies += [e.latency_ms for e in res.events if e.text]
            run.shown += sum(1 for e in res.events if e.text)
            run.accepted += sum(1 for e in res.events if e.outcome == "accepted")
        if len(run.latencies) >= limit or len(run.latencies) == before:
            break
    run.peak_rss_mb = peak_rss_mb(run.client.proc.pid)
    return begun


def _served(model: str | None, policy: str, gate: bool, variant: tuple[str, dict], plan: list, limit: int,
            lines_per_file: int, key_gap_s: float, db: Path) -> tuple[ServedRun, int]:
    """One server, started on the telemetry database ``db``, typing ``limit`` requests of the plan, shut down."""
    run = _start(model, policy, gate, variant, db)  # shuts its server down itself if it fails
    try:
        begun = _type(run, plan, limit, lines_per_file, key_gap_s)
        end = run.client.request("tact/status")
        if isinstance(end, dict) and end.get("degraded"):  # it answered every later request at once, with nothing
            run.lost_model = end.get("reason") or "no model"
    finally:
        run.client.shutdown()
    run.failed = failed_requests(db)  # read once the server has written all and gone
    if run.layout == "notebook":
        run.earlier_cells_chars = earlier_cells_chars(db)
    return run, begun


# Settings each server of the bench runs with whatever --set says, and what to do instead.
BENCH_OWN_SETTINGS = {
    "decodingPolicy": "choose the policy with --policy",
    "multiline": "the bench times single-line suggestions",
    "acceptanceGate": "turn the gate off with --no-gate",
    "telemetryDatabase": "each server records into a database of its own (--keep-telemetry keeps them)",
}


def serve_variants(weights: str | Sequence[str], settings: dict | None = None,
                   compare: tuple[str, Sequence] | None = None,
                   layouts: str | Sequence[str] = "file") -> list[tuple[str, dict, str]]:
    """The servers a run starts, as (label, camelCase settings, layout): one per weights, one per value of the
    compared setting, or one per layout; ``settings`` go to all (a `decodeWeights` among them names the weights of a
    run of one weights). ValueError when the request compares nothing or two things at once."""
    choices = [weights] if isinstance(weights, str) else list(weights)
    layouts = [layouts] if isinstance(layouts, str) else list(layouts)
    if not layouts or any(layout not in LAYOUTS for layout in layouts):
        raise ValueError(f"layout is one of {', '.join(LAYOUTS)} or several, not {', '.join(layouts) or 'none'}")
    for key in {*(settings or {}), *([compare[0]] if compare else [])}:
        # the bench sets these itself (its servers were started with its own value, then refused as not the user's)
        advice = BENCH_OWN_SETTINGS.get(key) or ("the notebook layout reads what its servers record"
                                                 if key == "telemetry" and "notebook" in layouts else None)
        if advice:
            raise ValueError(f"{key} is not a setting --set or --compare can give here: {advice}")
    base = {"decodeWeights": choices[0], **(settings or {})}
    if len(layouts) > 1:
        if len(choices) > 1 or compare is not None:
            raise ValueError("several layouts take one weights and no compared setting: one comparison a run")
        return [(f"layout={layout}", base, layout) for layout in layouts]
    layout = layouts[0]
    if compare is None:
        return ([(w, {**base, "decodeWeights": w}, layout) for w in choices] if len(choices) > 1
                else [(base["decodeWeights"], base, layout)])
    key, values = compare
    if len(values) < 2:
        raise ValueError(f"--compare {key} gives {len(values)} value: compare two or more, e.g. "
                         f"--compare {key}={','.join(v if isinstance(v, str) else json.dumps(v) for v in values)},OTHER (--set {key}=V gives every "
                         "server one value)")
    if len(choices) > 1:
        raise ValueError(f"--compare {key} and --weights {','.join(choices)} are two comparisons: one a run (--set "
                         "decodeWeights=W runs the compared servers on other weights)")
    return [(f"{key}={json.dumps(v)}", {**base, key: v}, layout) for v in values]


def run_bench(model: str | None, policy: str, limit: int, source: Path | None, corpus: Path | None, seed: int = 0,
              lines_per_file: int = 4, gate: bool = True, typing_cps: float | None = None,
              weights: str | Sequence[str] = "fp32", settings: dict | None = None,
              compare: tuple[str, Sequence] | None = None, keep_telemetry: bool = False,
              layouts: str | Sequence[str] = "file") -> dict:
    """``typing_cps``: keystrokes per second (None: the simulated programmer's; 0: as fast as the server answers).
    ``settings``: camelCase settings every server runs with. ``weights``: the `tact.decodeWeights` the server
    runs with; ``compare``: (a setting, its values) instead, one server each; ``layouts``: the files typed as
    files, as notebooks of their cells (LAYOUTS), or both, one server each. Several: each types the same keystrokes, one
    server at a time (two servers alive at once slowed each other here, and unevenly: a run of three fp32
    servers taking turns gave p50 43, 49 and 38 ms against 30-32 alone; docs/serving.md), in the order A B ... then ... B A, half the
    requests each time, so that drift during the run weighs on all alike; the report gives each one's figures and
    their ratios to the first's. Each server records into its own database in a temporary directory, removed when
    the run ends (``keep_telemetry``: kept, and named in the figures as ``telemetry_dir``)."""
    variants = serve_variants(weights, settings, compare, layouts)
    typing_cps = TypingStyle.chars_per_s if typing_cps is None else typing_cps
    if not typing_cps >= 0:  # NaN too
        raise ValueError(f"typing_cps must be 0 (as fast as the server answers) or more, got {typing_cps}")
    key_gap_s = 1.0 / typing_cps if typing_cps > 0 else 0.0
    rng = random.Random(seed)
    plan = []
    files, data = typed_files(source, corpus, seed)
    for i, (name, text) in enumerate(files):
        plan.append((i, name, text, start_line(text, lines_per_file, rng)))
    folder = Path(tempfile.mkdtemp(prefix="tact-bench-"))  # one per run (one per server start piled up in /tmp)
    try:
        result = _run_variants(variants, folder, model, policy, gate, plan, limit, lines_per_file, key_gap_s, typing_cps)
    finally:
        if not keep_telemetry:
            shutil.rmtree(folder, ignore_errors=True)
    for fig in result.get("runs", [result]):
        fig["data"] = data
    if "runs" in result:
        result["data"] = data
    if keep_telemetry:
        result["telemetry_dir"] = str(folder)
    return result


def _run_variants(variants: list[tuple[str, dict, str]], folder: Path, model: str | None, policy: str, gate: bool,
                  plan: list, limit: int, lines_per_file: int, key_gap_s: float, typing_cps: float) -> dict:
    """The servers of a run, one at a time, each recording into its own database under ``folder``."""
    started = 0

    def served(variant: tuple[str, dict], part: list, requests: int) -> tuple[ServedRun, int]:
        nonlocal started
        started += 1
        return _served(model, policy, gate, variant, part, requests, lines_per_file, key_gap_s,
                       folder / f"server-{started}.sqlite3")

    if len(variants) == 1:
        run, _ = served(variants[0], plan, limit)
        return _figures(run, policy, gate, typing_cps)
    first_half = limit // 2
    halves: list[list[ServedRun]] = [[] for _ in variants]  # by position: the same variant may be named twice (A/A)
    begun = 0
    for n, v in enumerate(variants):
        run, files = served(v, plan, first_half)
        begun = max(begun, files)  # servers whose suggestions were accepted more often type further per request
        halves[n].append(run)
    # the second half begins after every file a first-half server began (it began after the last server's), and
    # goes back to the plan's top when that runs out (with the demo sample's one file it had typed nothing)
    rest = plan[begun:] + plan[:begun]
    for n in reversed(range(len(variants))):
        run, _ = served(variants[n], rest, limit - first_half)
        halves[n].append(run)
    merged = [_merged(parts) for parts in halves]
    figures = [_figures(run, policy, gate, typing_cps) for run in merged]
    first = figures[0]
    keys = ("p50_ms", "p95_ms", "mean_ms", "cold_start_s", "peak_rss_mb")
    # each latency ratio with its 95% interval (each server's requests resampled): two identical servers have
    # differed by a fifth and more on a short run, which a ratio to three decimals alone did not say
    ratios = [{"variant": f["variant"], **{k: _ratio(f[k], first[k]) for k in keys},
               **{f"{k}_interval": ratio_interval(run.latencies, merged[0].latencies, q)
                  for k, q in (("p50_ms", 0.5), ("p95_ms", 0.95))}}
              for f, run in zip(figures[1:], merged[1:])]
    return {"runs": figures, "ratios_to": first["variant"], "ratios": ratios, "order": "A B ... B A, half each"}


def ratio_interval(latencies: list[float], base: list[float], q: float, seed: int = 0) -> list[float] | None:
    """95% percentile interval of the ratio of the ``q`` quantiles of ``latencies`` and ``base``, each resampled with
    replacement on its own (the servers' requests are not paired: each types as far as its answers take it)."""
    import numpy as np

    if len(latencies) < 2 or len(base) < 2:
        return None
    rng = np.random.default_rng(seed)
    a, b = np.asarray(latencies), np.asarray(base)
    ratios = [np.quantile(rng.choice(a, len(a)), q) / bq for _ in range(RATIO_RESAMPLES)
              if (bq := np.quantile(rng.choice(b, len(b)), q)) > 0]
    if not ratios:
        return None
    lo, hi = np.percentile(ratios, [2.5, 97.5])
    return [round(float(lo), 3), round(float(hi), 3)]


def _merged(parts: list[ServedRun]) -> ServedRun:
    """One variant's halves as one run: latencies together, the mean cold start, the higher peak RSS."""
    a, b = parts
    rss = [r.peak_rss_mb for r in parts if r.peak_rss_mb]
    return ServedRun(a.variant, a.client, a.layout, cold_start_s=(a.cold_start_s + b.cold_start_s) / 2,
                     status=a.status, latencies=a.latencies + b.latencies,
                     shown_latencies=a.shown_latencies + b.shown_latencies, shown=a.shown + b.shown,
                     accepted=a.accepted + b.accepted, peak_rss_mb=max(rss) if rss else None,
                     earlier_cells_chars=a.earlier_cells_chars + b.earlier_cells_chars,
                     failed=a.failed + b.failed, lost_model=a.lost_model or b.lost_model)


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def _figures(run: ServedRun, policy: str, gate: bool, typing_cps: float) -> dict:
    lat = run.latencies
    figures = {
        "policy": policy,
        "weights": run.status.get("weights"),
        "variant": run.variant,
        "layout": run.layout,
        "acceptance_gate": gate,
        "typing_cps": typing_cps,
        "model": run.status.get("model"),
        "requests": len(lat),
        "cold_start_s": round(run.cold_start_s, 3),
        # none without requests (files whose typed lines were blank): NaN is not JSON, and the mean read 0.0 ms
        "p50_ms": round(percentile(lat, 0.5), 2) if lat else None,
        "p95_ms": round(percentile(lat, 0.95), 2) if lat else None,
        "mean_ms": round(sum(lat) / len(lat), 2) if lat else None,
        # the targets are on every request, as the editor waits for it; empty answers (the gate skipped, nothing
        # to suggest) are the fast ones, so the answers with a suggestion are given apart
        "shown_p50_ms": round(percentile(run.shown_latencies, 0.5), 2) if run.shown_latencies else None,
        "shown_p95_ms": round(percentile(run.shown_latencies, 0.95), 2) if run.shown_latencies else None,
        "peak_rss_mb": round(run.peak_rss_mb, 1) if run.peak_rss_mb else None,
        "suggestions_shown": run.shown,
        "suggestions_accepted": run.accepted,
        "hardware": {"cores": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version()},
    }
    figures["failed_requests"] = run.failed
    figures["lost_model"] = run.lost_model
    # What keeps the latency and memory targets from being judged: a run where requests failed (answered at once
    # with nothing) or the model was lost timed no real answer there, and a short one says too little
    unjudged = (f"{run.failed} requests failed" if run.failed else
                f"the server lost its model ({run.lost_model})" if run.lost_model else
                f"{len(lat)} requests, fewer than {MIN_JUDGED_REQUESTS}" if len(lat) < MIN_JUDGED_REQUESTS else None)
    figures["not_judged"] = unjudged
    figures["targets"] = {k: {"target": v, "pass": None if unjudged and k != "cold_start_s" else
                              figures[k] is not None and figures[k] <= v} for k, v in TARGETS.items()}
    if run.layout == "notebook":  # whether the prompts held cells above at all, and how much
        chars = run.earlier_cells_chars
        held = [c for c in chars if c]
        figures["earlier_cells"] = {"requests_logged": len(chars), "with_earlier_cells": len(held),
                                    "share": _ratio(len(held), len(chars)),
                                    "mean_chars": round(sum(held) / len(held), 1) if held else None}
    return figures


def print_table(fig: dict, out=None) -> None:
    out = out or sys.stdout  # the stdout of the call, not of the import (a test's capture)
    typing = describe_data(fig["data"]) if fig.get("data") else "real files"
    if fig.get("layout") == "notebook":
        typing += " as notebook cells"
    print(f"tact bench serve: {fig['requests']} inline completions typing {typing}, policy {fig['policy']}, "
          f"{fig['weights']} weights, " + (f"{fig['variant']}, " if fig.get("variant") not in (None, fig["weights"]) else "") +
          f"acceptance gate {'on' if fig['acceptance_gate'] else 'off'}, {fig['typing_cps']:g} keystrokes/s, model {fig['model']}, "
          f"{fig['hardware']['cores']} cores", file=out)

    def figure(key: str, form: str) -> str:
        return "-" if fig[key] is None else form.format(fig[key])

    # at the precision the verdicts judge (the JSON's): 50.04 ms printed "50.0 ms" beside a MISS of a 50 ms target
    rows = [("cold start", figure("cold_start_s", "{:.3f} s"), "cold_start_s"), ("p50 latency", figure("p50_ms", "{:.2f} ms"), "p50_ms"),
            ("p95 latency", figure("p95_ms", "{:.2f} ms"), "p95_ms"), ("peak RSS", figure("peak_rss_mb", "{:.1f} MB"), "peak_rss_mb")]
    print(f"{'metric':<13} {'value':>10} {'target':>9}  result", file=out)
    for label, value, key in rows:
        t = fig["targets"][key]
        verdict = "not judged" if t["pass"] is None else "PASS" if t["pass"] else "MISS"
        print(f"{label:<13} {value:>10} {t['target']:>9}  {verdict}", file=out)
    if fig.get("not_judged"):
        print(f"latency and memory not judged: {fig['not_judged']}", file=out)
    print(f"mean latency {figure('mean_ms', '{:.1f} ms')}; {fig['suggestions_shown']} suggestions shown, "
          f"{fig['suggestions_accepted']} accepted", file=out)
    if fig.get("shown_p50_ms") is not None:
        print(f"answers with a suggestion alone: p50 {fig['shown_p50_ms']:.1f} ms, p95 {fig['shown_p95_ms']:.1f} ms "
              "(the targets count every request, empty answers included)", file=out)
    if (cells := fig.get("earlier_cells")) and cells["share"] is not None:
        mean = "-" if cells["mean_chars"] is None else f"{cells['mean_chars']:.0f}"
        print(f"earlier cells in the prompt: {cells['with_earlier_cells']} of {cells['requests_logged']} requests "
              f"({cells['share']:.0%}), {mean} characters on average", file=out)


def print_report(result: dict, out=None) -> None:
    """One server's table, or each server's and then their ratios to the first."""
    out = out or sys.stdout  # the stdout of the call, not of the import (a test's capture)
    if "runs" not in result:
        print_table(result, out)
    else:
        for fig in result["runs"]:
            print_table(fig, out)
            print(file=out)
        base = result["ratios_to"]
        labels = {"p50_ms": "p50", "p95_ms": "p95", "mean_ms": "mean", "cold_start_s": "cold start", "peak_rss_mb": "peak RSS"}
        for r in result["ratios"]:
            def shown(k: str) -> str:
                if r[k] is None:
                    return f"{labels[k]} -"
                interval = r.get(f"{k}_interval")
                return f"{labels[k]} {r[k]:.3f}x" + (f" [{interval[0]:.2f}, {interval[1]:.2f}]" if interval else "")

            parts = [shown(k) for k in labels]
            print(f"{r['variant']} against {base} (the same keystrokes, one server at a time, A B ... B A): "
                  f"{', '.join(parts)} (latency ratios with their 95% intervals)", file=out)
    if result.get("telemetry_dir"):
        print(f"the servers' telemetry databases (kept): {result['telemetry_dir']}", file=out)
