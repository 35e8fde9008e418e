"""Simulated programmers: type a file into a real server the way a person would, asking for suggestions.

Shared by `tact demo` (prints each suggestion), `tact bench serve` (times them) and simulation. The server is
driven over stdio by `telemetry.lsp_client.LspClient`, exactly as an editor drives it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from telemetry.lsp_client import LspClient, change_at


@dataclass
class SuggestionEvent:
    line: int
    character: int
    latency_ms: float
    text: str
    suggestion_id: str | None
    expected: str  # what the file really has after the cursor on this line
    outcome: str = ""  # accepted | rejected | none


@dataclass
class TypingResult:
    events: list[SuggestionEvent] = field(default_factory=list)
    keystrokes: int = 0


def type_file(client: LspClient, uri: str, text: str, *, start_line: int, lines: int | None = None,
              request_every: int = 1, accept: bool = True, on_event=None, limit: int | None = None,
              pause_s: float = 0.0) -> TypingResult:
    """Open the file with lines [start_line:] missing, then type them character by character.

    After every `request_every` keystrokes, ask for an inline completion. When the suggestion
    matches what comes next, accept it (command + skip ahead); otherwise report it typed over.
    """
    all_lines = text.split("\n")
    head = "\n".join(all_lines[:start_line]) + "\n"
    to_type = all_lines[start_line:start_line + lines] if lines else all_lines[start_line:]
    client.did_open(uri, head)
    version = 1
    result = TypingResult()
    line_no = start_line
    for target_line in to_type:
        col = 0
        while col <= len(target_line):
            if limit is not None and len(result.events) >= limit:
                return result
            if col < len(target_line):
                ch = target_line[col]
            else:
                ch = "\n"
            version += 1
            client.did_change(uri, version, [change_at(line_no, col, ch)])
            result.keystrokes += 1
            if ch == "\n":
                break
            col += 1
            if pause_s:
                time.sleep(pause_s)
            if result.keystrokes % request_every:
                continue
            t0 = time.perf_counter()
            items = client.inline_completion(uri, line_no, col)
            latency = (time.perf_counter() - t0) * 1000
            expected = target_line[col:]
            item = items[0] if items else None
            suggestion_text = item["insertText"] if item else ""
            sid = item["command"]["arguments"][0] if item and item.get("command") else None
            event = SuggestionEvent(line_no, col, latency, suggestion_text, sid, expected)
            if item and sid:
                if accept and suggestion_text and expected.startswith(suggestion_text):
                    # The editor inserts the suggestion, then runs the item's command.
                    version += 1
                    client.did_change(uri, version, [change_at(line_no, col, suggestion_text)])
                    client.request("workspace/executeCommand", {"command": "tact.acceptSuggestion", "arguments": [sid]})
                    col += len(suggestion_text)
                    event.outcome = "accepted"
                else:
                    client.notify("tact/didShowCompletion", {"id": sid})
                    client.notify("tact/didRejectCompletion", {"id": sid, "reason": "typedOver"})
                    event.outcome = "rejected"
            else:
                event.outcome = "none"
            result.events.append(event)
            if on_event:
                on_event(event)
        line_no += 1
    return result


def server_command(python: str, model: str | None, database: str | None) -> list[str]:
    cmd = [python, "-m", "lsp_server"]
    if model:
        cmd += ["--model", model]
    if database:
        cmd += ["--database", database]
    return cmd


def sample_file() -> Path:
    return Path(__file__).resolve().parent / "data" / "demo_sample.py.txt"
