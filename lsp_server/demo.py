"""`tact demo`: start `tact serve`, type a sample file into it as an editor would, print every suggestion."""

from __future__ import annotations

import re
import sqlite3
import sys
import time
from contextlib import closing
from pathlib import Path

from lsp_server.config import database_dir_made, default_data_dir
from telemetry.simulate import require_ready, sample_file, server_command, type_file, wait_ready
from telemetry.lsp_client import LspClient, change_at, text_document_item
from telemetry.reader import DEMO_CLIENT, checked
from telemetry.text import advance, line_count, offset_at


def run_demo(model: str | None, database: str | None, policy: str, file: Path | None, start_line: int | None,
             lines: int, out=None) -> int:
    out = out or sys.stdout  # the stdout of the call, not of the import (a test's capture)
    # Apart from the user's real sessions, as `tact simulate` keeps its own: the acceptance gate seeds each user's
    # prior from the telemetry database, and the demo's suggestions are no one's decisions.
    db = Path(database) if database else default_data_dir() / "demo.sqlite3"
    path = file or sample_file()
    with open(path, encoding="utf-8", newline="") as f:  # its own line breaks: type_file types them as they are
        text = f.read()
    total_lines = line_count(text)
    first = start_line if start_line is not None else max(1, total_lines // 3)
    if first >= total_lines:  # nothing left to type
        said = "--start-line (0-based) must be less" if start_line is not None else \
            "the demo types from its second line on, so it needs at least 2"
        print(f"tact demo: error: {path} has {total_lines} line{'s' * (total_lines != 1)}: {said}", file=sys.stderr)
        return 2
    print(f"Tact demo: typing {lines} lines of {path.name} from line {first + 1}, policy {policy}", file=out)
    t0 = time.perf_counter()
    if why := database_dir_made(db):
        print(f"tact demo: error: {why}", file=sys.stderr)
        return 2
    with LspClient(server_command(sys.executable, model, str(db))) as client:
        # retention off: the demo's server removed old sessions from a database `--database` named
        client.initialize({"decodingPolicy": policy, "telemetryRetentionDays": 0}, client_name=DEMO_CLIENT)
        status = require_ready(wait_ready(client, timeout=60.0))
        print(f"server up, model {status['model']} ({status['modelDir']}), loaded in {status['loadMs']:.0f} ms", file=out)
        off = status.get("telemetryReason") if not status.get("database") else None
        if off:  # the server records nothing (the database cannot be opened): nothing to read back or point to
            print(f"telemetry off: {off}", file=out)
        print(f"{'where':>8}  {'ms':>6}  outcome   suggestion", file=out)

        def show(e) -> None:
            if e.text:
                print(f"{e.line + 1:>4}:{e.character:<3}  {e.latency_ms:6.1f}  {e.outcome:<8}  {e.text!r}", file=out, flush=True)

        result = type_file(client, "file:///demo/" + path.name.replace(".txt", ""), text, start_line=first, lines=lines,
                           request_every=1, on_event=show)
        session = status["sessionId"]
        demo_next_edit(client, text, out)
        demo_notebook(client, text, None if off else db, out)
    elapsed = time.perf_counter() - t0
    events = result.events
    shown = [e for e in events if e.text]
    accepted = [e for e in shown if e.outcome == "accepted"]
    lat = sorted(e.latency_ms for e in events)
    print(f"\n{result.keystrokes} keystrokes, {len(events)} requests, {len(shown)} suggestions, {len(accepted)} accepted, "
          f"{sum(len(e.text) for e in accepted)} characters saved, in {elapsed:.1f} s", file=out)
    if lat:
        print(f"latency p50 {lat[len(lat) // 2]:.1f} ms, p95 {lat[min(len(lat) - 1, int(len(lat) * 0.95))]:.1f} ms", file=out)
    if off:
        print(f"\ntelemetry: not recorded ({off})", file=out)
        return 0
    print_decisions(db, session, out)
    print(f"\ntelemetry: {db} (session {session}); open it with any SQLite tool, e.g.\n"
          f"  sqlite3 {db} \"select outcome, count(*) from suggestions group by outcome\"", file=out)
    return 0


_DEF = re.compile(r"^(\s*)def \w+\((\w+)[,)]")


def rename_site(text: str) -> tuple[int, int, str] | None:
    """(line, column, name) of a function's first parameter (not self/cls) used at least twice below it."""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        m = _DEF.match(line)
        if not m or m.group(2) in ("self", "cls"):
            continue
        indent, name = len(m.group(1)), m.group(2)
        body = []
        for nxt in lines[i + 1:]:
            if nxt.strip() and len(nxt) - len(nxt.lstrip()) <= indent:
                break
            body.append(nxt)
        if sum(len(re.findall(rf"\b{name}\b", b)) for b in body) >= 2:
            return i, m.start(2), name
    return None


def demo_next_edit(client: LspClient, text: str, out, steps: int = 4) -> None:
    """Rename a parameter at its `def` and follow the predicted next edits, applying each."""
    site = rename_site(text)
    if site is None:
        return
    line, col, name = site
    new_name = name[:1] + "_" + name[1:] if len(name) > 1 else name + "_"
    uri = "file:///demo/next_edit.py"
    client.did_open(uri, text, 1)
    print(f"\nnext edit: renamed {name!r} to {new_name!r} on line {line + 1}", file=out)
    version, change = 1, change_at(line, col, new_name, line, col + len(name))
    ms, edit_id = 0.0, ""  # of the predicted edit being applied (none for the rename)
    for step in range(steps + 1):
        # apply the change (the rename, then each predicted edit) to our copy and to the server's
        rng = change["range"]
        a = offset_at(text, rng["start"]["line"], rng["start"]["character"])
        b = offset_at(text, rng["end"]["line"], rng["end"]["character"])
        old, text = text[a:b], text[:a] + change["text"] + text[b:]
        version += 1
        client.did_change(uri, version, [change])
        if step:
            print(f"  {ms:6.0f} ms  line {rng['start']['line'] + 1}: {old!r} -> {change['text']!r}   (applied)", file=out)
            client.request("workspace/executeCommand", {"command": "tact.acceptNextEdit", "arguments": [edit_id]})
        pos = advance(rng["start"]["line"], rng["start"]["character"], change["text"])
        if step == steps:
            break
        t0 = time.perf_counter()
        edits = client.next_edit(uri, version, *pos, timeout=30)
        ms = (time.perf_counter() - t0) * 1000
        if not edits:
            print(f"  no confident next edit ({ms:.0f} ms)", file=out)
            break
        edit_id = edits[0]["id"]
        change = {"range": edits[0]["range"], "text": edits[0]["newText"]}
    client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})


_CALLABLE = re.compile(r"^def (\w+)\(", re.MULTILINE)


def demo_notebook(client: LspClient, text: str, db: Path | None, out) -> None:
    """Open the file as a notebook of its top-level parts, add a cell below them and type the start of a call of
    a function a cell above defines: the suggestion reads the cells above (in a file of its own it could not).
    ``db``: the telemetry database that says how much of them the prompt held (None: nothing is recorded)."""
    from lsp_server.bench_serve import notebook_cells

    cells = notebook_cells(text)
    m = _CALLABLE.search(text)
    if m is None or len(cells) < 2:
        return
    name = m.group(1)
    words = name.split("_")  # load_config: `config = load_`, as one would name what it returns
    typed = f"{words[-1]} = {words[0]}_" if len(words) > 1 and all(words) else f"result = {name[:max(1, len(name) // 2)]}"
    uri = "file:///demo/notebook.ipynb"
    cell_uris = [f"vscode-notebook-cell:/demo/notebook.ipynb#C{n}" for n in range(len(cells) + 1)]
    client.did_open_notebook(uri, "jupyter-notebook", 1, [text_document_item(u, c, 1) for u, c in zip(cell_uris, cells)]
                             + [text_document_item(cell_uris[-1], "", 1)])
    client.did_change_notebook_text(uri, 1, cell_uris[-1], 2, [change_at(0, 0, typed)])
    items = client.inline_completion(cell_uris[-1], 0, len(typed), invoked=True)
    print(f"\nnotebook: {len(cells)} cells, then a new one: {typed!r}", file=out)
    if not items:
        print("  no suggestion", file=out)
    else:
        sid = items[0]["command"]["arguments"][0]
        client.request("workspace/executeCommand", {"command": "tact.acceptSuggestion", "arguments": [sid]})
        held = f"   (the prompt held {_logged_earlier_cells_chars(db, sid)} characters of the cells above)" if db else ""
        print(f"  -> {items[0]['insertText']!r}{held}", file=out)
    client.did_close_notebook(uri, cell_uris)


def _logged_earlier_cells_chars(db: Path, suggestion_id: str, timeout: float = 10.0) -> int | str:
    """How much of the cells above a suggestion's prompt held, as its generation was logged ("?" if not yet): the
    request's context logs what it was given, of which the prompt's token budget may keep less."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:  # closed each pass
                row = conn.execute("select payload from suggestion_events where suggestion_id = ? and type ="
                                   " 'suggestion_generated'", (suggestion_id,)).fetchone()
            payload = checked("payload", row[0]) if row else None  # decoded as every telemetry reader decodes it
        except sqlite3.Error:  # not written yet, or damaged (reader.DamagedRowError)
            payload = None
        if isinstance(payload, dict):
            details = payload.get("details")
            return details.get("earlier_cells_kept_chars", 0) if isinstance(details, dict) else 0
        time.sleep(0.05)
    return "?"


def print_decisions(db: Path, session: str, out) -> None:
    """What the server decided for each shown suggestion, read back from the telemetry database."""
    try:
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            rows = conn.execute(
                "select line, character, policy, tokens, layers_per_token, stop_reason, latency_ms, outcome, uri "
                "from suggestions where session_id = ? and text != '' order by requested_at", (session,)).fetchall()
    except sqlite3.Error as exc:
        print(f"(telemetry unreadable: {exc})", file=out)
        return
    if not rows:
        return
    print(f"\n{'where':>8}  {'policy':<11} {'tokens':>6} {'layers/tok':>10}  {'stop':<9} {'model ms':>8}  outcome", file=out)
    for line, ch, policy, tokens, lpt, stop, ms, outcome, uri in rows:
        decoded = stop is not None  # a next edit's ranker (or heuristic) decodes nothing: no tokens, layers or stop
        tokens = tokens if decoded and tokens is not None else "-"
        lpt = f"{lpt:.2f}" if lpt is not None else "-"
        print(f"{line + 1:>4}:{ch:<3}  {policy:<11} {tokens:>6} {lpt:>10}  {stop or '-':<9} {ms or 0:>8.1f}  {outcome or ''}"
              # a cell counts its lines from its own top, not the typed file's
              + ("  (notebook cell)" if (uri or "").startswith("vscode-notebook-cell:") else ""), file=out)
