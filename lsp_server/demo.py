"""`tact demo`: start `tact serve`, type a sample file into it as an editor would, print every suggestion."""

from __future__ import annotations

import sqlite3
import sys
import time
from pathlib import Path

from lsp_server.config import Settings
from telemetry.simulate import sample_file, server_command, type_file
from telemetry.lsp_client import LspClient


def run_demo(model: str | None, database: str | None, policy: str, file: Path | None, start_line: int | None,
             lines: int, out=sys.stdout) -> int:
    db = Path(database) if database else Settings().database_path()
    path = file or sample_file()
    text = path.read_text(encoding="utf-8")
    total_lines = text.count("\n")
    first = start_line if start_line is not None else max(1, total_lines // 3)
    print(f"Tact demo: typing {lines} lines of {path.name} from line {first + 1}, policy {policy}", file=out)
    t0 = time.perf_counter()
    with LspClient(server_command(sys.executable, model, str(db))) as client:
        client.initialize({"decodingPolicy": policy}, client_name="tact-demo")
        status = wait_ready(client)
        if not status.get("ready"):
            print(f"The server has no model: {status.get('reason')}", file=out)
            return 1
        print(f"server up, model {status['model']} ({status['modelDir']}), loaded in {status['loadMs']:.0f} ms", file=out)
        print(f"{'where':>8}  {'ms':>6}  outcome   suggestion", file=out)

        def show(e) -> None:
            if e.text:
                print(f"{e.line + 1:>4}:{e.character:<3}  {e.latency_ms:6.1f}  {e.outcome:<8}  {e.text!r}", file=out, flush=True)

        result = type_file(client, "file:///demo/" + path.name.replace(".txt", ""), text, start_line=first, lines=lines,
                           request_every=1, on_event=show)
        session = status["sessionId"]
    elapsed = time.perf_counter() - t0
    events = result.events
    shown = [e for e in events if e.text]
    accepted = [e for e in shown if e.outcome == "accepted"]
    lat = sorted(e.latency_ms for e in events)
    print(f"\n{result.keystrokes} keystrokes, {len(events)} requests, {len(shown)} suggestions, {len(accepted)} accepted, "
          f"{sum(len(e.text) for e in accepted)} characters saved, in {elapsed:.1f} s", file=out)
    if lat:
        print(f"latency p50 {lat[len(lat) // 2]:.1f} ms, p95 {lat[min(len(lat) - 1, int(len(lat) * 0.95))]:.1f} ms", file=out)
    print_decisions(db, session, out)
    print(f"\ntelemetry: {db} (session {session}); open it with any SQLite tool, e.g.\n"
          f"  sqlite3 {db} \"select outcome, count(*) from suggestions group by outcome\"", file=out)
    return 0


def wait_ready(client: LspClient, timeout: float = 60.0) -> dict:
    """tact/status once the model has finished loading (or failed to)."""
    deadline = time.time() + timeout
    status = client.request("tact/status")
    while status.get("loading") and time.time() < deadline:
        time.sleep(0.05)
        status = client.request("tact/status")
    return status


def print_decisions(db: Path, session: str, out) -> None:
    """What the server decided for each shown suggestion, read back from the telemetry database."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            rows = conn.execute(
                "select line, character, policy, tokens, layers_per_token, stop_reason, latency_ms, outcome "
                "from suggestions where session_id = ? and text != '' order by requested_at", (session,)).fetchall()
    except sqlite3.Error as exc:
        print(f"(telemetry unreadable: {exc})", file=out)
        return
    if not rows:
        return
    print(f"\n{'where':>8}  {'policy':<11} {'tokens':>6} {'layers/tok':>10}  {'stop':<9} {'model ms':>8}  outcome", file=out)
    for line, ch, policy, tokens, lpt, stop, ms, outcome in rows:
        print(f"{line + 1:>4}:{ch:<3}  {policy:<11} {tokens:>6} {lpt or 0:>10.2f}  {stop or '':<9} {ms or 0:>8.1f}  {outcome or ''}", file=out)
