"""`tact bench serve`: the server as an editor sees it, over stdio, while typing through real files.

Cold start is process start to the first inline completion answered; latency is the client-side
round trip of each inline completion request (one per keystroke); RSS is the server's peak. Keystrokes
come at a person's pace (``--typing-cps``, the simulated programmer's 5 a second): the acceptance gate
reads typing speed, and when the bench typed as fast as the server answered, the gate saw an impossibly
fast typist and debounced every request.
"""

from __future__ import annotations

import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

from telemetry.simulate import TypingStyle, server_command, type_file
from telemetry.lsp_client import LspClient

TARGETS = {"cold_start_s": 1.5, "p50_ms": 50.0, "p95_ms": 150.0, "peak_rss_mb": 300.0}


def peak_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def source_files(source: Path | None, corpus: Path | None, seed: int) -> list[tuple[str, str]]:
    """(name, text) of real Python files: --source DIR, else the held-out corpus split, else the demo sample."""
    files: list[tuple[str, str]] = []
    if source is not None:
        for p in sorted(source.rglob("*.py")):
            try:
                files.append((p.name, p.read_text(encoding="utf-8")))
            except (OSError, UnicodeDecodeError):
                continue
    elif corpus is not None and (corpus / "heldout.jsonl").exists():
        with open(corpus / "heldout.jsonl", encoding="utf-8") as f:
            files = [(Path(r["path"]).name, r["text"]) for r in map(json.loads, f)]
    if not files:
        from telemetry.simulate import sample_file

        files = [(sample_file().name, sample_file().read_text())]
    files = [(n, t) for n, t in files if 30 <= t.count("\n") <= 3000]
    random.Random(seed).shuffle(files)
    return files


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))] if s else float("nan")


def run_bench(model: str | None, policy: str, limit: int, source: Path | None, corpus: Path | None, seed: int = 0,
              lines_per_file: int = 4, gate: bool = True, typing_cps: float | None = None, weights: str = "fp32") -> dict:
    """``typing_cps``: keystrokes per second (None: the simulated programmer's; 0: as fast as the server answers).
    ``weights``: the `tact.decodeWeights` the server runs with."""
    typing_cps = TypingStyle.chars_per_s if typing_cps is None else typing_cps
    rng = random.Random(seed)
    files = source_files(source, corpus, seed)
    db = Path(tempfile.mkdtemp(prefix="tact-bench-")) / "telemetry.sqlite3"
    t0 = time.perf_counter()
    client = LspClient(server_command(sys.executable, model, str(db)))
    latencies: list[float] = []
    shown = accepted = 0
    try:
        client.initialize({"decodingPolicy": policy, "multiline": False, "acceptanceGate": gate, "decodeWeights": weights},
                          client_name="tact-bench")
        # Cold start: the first inline completion answered, whatever it took the model to load.
        client.did_open("file:///bench/cold.py", "import os\n\n\ndef main():\n    path = os.")
        client.inline_completion("file:///bench/cold.py", 4, 14, invoked=True, timeout=120)
        cold_start = time.perf_counter() - t0
        status = client.request("tact/status")
        for i, (name, text) in enumerate(files):
            if len(latencies) >= limit:
                break
            lines = text.split("\n")
            start = rng.randrange(5, max(6, len(lines) - lines_per_file))
            res = type_file(client, f"file:///bench/{i}/{name}", text, start_line=start, lines=lines_per_file,
                            limit=limit - len(latencies), key_gap_s=1.0 / typing_cps if typing_cps > 0 else 0.0)
            latencies += [e.latency_ms for e in res.events]
            shown += sum(1 for e in res.events if e.text)
            accepted += sum(1 for e in res.events if e.outcome == "accepted")
        rss = peak_rss_mb(client.proc.pid)
    finally:
        client.shutdown()
    figures = {
        "policy": policy,
        "weights": status.get("weights"),
        "acceptance_gate": gate,
        "typing_cps": typing_cps,
        "model": status.get("model"),
        "requests": len(latencies),
        "cold_start_s": round(cold_start, 3),
        "p50_ms": round(percentile(latencies, 0.5), 2),
        "p95_ms": round(percentile(latencies, 0.95), 2),
        "mean_ms": round(sum(latencies) / max(1, len(latencies)), 2),
        "peak_rss_mb": round(rss, 1) if rss else None,
        "suggestions_shown": shown,
        "suggestions_accepted": accepted,
        "hardware": {"cores": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version()},
    }
    figures["targets"] = {k: {"target": v, "pass": figures[k] is not None and figures[k] <= v} for k, v in TARGETS.items()}
    return figures


def print_table(fig: dict, out=sys.stdout) -> None:
    print(f"tact bench serve: {fig['requests']} inline completions typing real files, policy {fig['policy']}, "
          f"{fig['weights']} weights, "
          f"acceptance gate {'on' if fig['acceptance_gate'] else 'off'}, {fig['typing_cps']:g} keystrokes/s, model {fig['model']}, "
          f"{fig['hardware']['cores']} cores", file=out)
    rows = [("cold start", f"{fig['cold_start_s']:.2f} s", "cold_start_s"), ("p50 latency", f"{fig['p50_ms']:.1f} ms", "p50_ms"),
            ("p95 latency", f"{fig['p95_ms']:.1f} ms", "p95_ms"), ("peak RSS", f"{fig['peak_rss_mb']} MB", "peak_rss_mb")]
    print(f"{'metric':<13} {'value':>10} {'target':>9}  result", file=out)
    for label, value, key in rows:
        t = fig["targets"][key]
        print(f"{label:<13} {value:>10} {t['target']:>9}  {'PASS' if t['pass'] else 'MISS'}", file=out)
    print(f"mean latency {fig['mean_ms']:.1f} ms; {fig['suggestions_shown']} suggestions shown, {fig['suggestions_accepted']} accepted", file=out)
