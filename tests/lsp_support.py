"""Shared pieces for end-to-end tests that drive the real server process over stdio."""

from __future__ import annotations

import os
import random
import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path

from lsprotocol import types

from telemetry.lsp_client import change_at
from telemetry.text import line_starts, offset_at, utf16_len

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = REPO / "models" / "default"


def model_under_test() -> Path:
    """The model the end-to-end tests serve: TACT_TEST_MODEL, else the shipped default model."""
    return Path(os.environ.get("TACT_TEST_MODEL", DEFAULT_MODEL))


def server_command(model: Path | str | None = None, database: Path | str | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "lsp_server"]
    if model is not None:
        cmd += ["--model", str(model)]
    if database is not None:
        cmd += ["--database", str(database)]
    return cmd


def client_capabilities(configuration: bool = False) -> types.ClientCapabilities:
    """An editor that supports inline completion (pytest-lsp's canned capabilities do not)."""
    return types.ClientCapabilities(
        text_document=types.TextDocumentClientCapabilities(
            inline_completion=types.InlineCompletionClientCapabilities(dynamic_registration=False),
            completion=types.CompletionClientCapabilities(),
            synchronization=types.TextDocumentSyncClientCapabilities(),
        ),
        workspace=types.WorkspaceClientCapabilities(configuration=configuration),
        window=types.WindowClientCapabilities(show_message=types.ShowMessageRequestClientCapabilities()),
    )


def initialize_params(options: dict | None = None, configuration: bool = False) -> types.InitializeParams:
    return types.InitializeParams(
        capabilities=client_capabilities(configuration),
        client_info=types.ClientInfo(name="pytest-lsp", version="1"),
        initialization_options=options or {},
    )


def wait_for_rows(db: Path, sql: str, args: tuple = (), want: int = 1, timeout: float = 60.0) -> list[tuple]:
    """Poll the telemetry database (written by the server's writer thread) until a query returns rows.

    The deadline only bounds how long a failure takes to show: a slow or busy machine writes late, not never."""
    deadline = time.time() + timeout
    rows: list[tuple] = []
    while time.time() < deadline:
        if db.exists():
            try:
                with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
                    rows = conn.execute(sql, args).fetchall()
            except sqlite3.OperationalError:
                rows = []
            if len(rows) >= want:
                return rows
        time.sleep(0.1)
    return rows


def best_time(fn: Callable[[], object], repeats: int = 3) -> float:
    """The shortest of ``repeats`` timed calls of ``fn``, in seconds: a preemption or a slow first call is left out."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


SAMPLE = '''import os


def read_lines(path):
    """Return the lines of a file."""
    with open(path) as f:
        return f.readlines()


def count_words(text):
    words = text.split()
    return len(words)


def main():
    lines = read_lines("data.txt")
    for line in lines:
        print(count_words(line))
'''


_PROBE = {}


def model_suggests(text: str, line: int, character: int, options: dict) -> str:
    """What the model under test suggests at (line, character) of text with these settings, in-process.

    A real model may legitimately have nothing to say at one spot; tests that need a suggestion pick
    a spot where it has one, so they stay about the protocol whatever model is shipped.
    """
    from lsp_server.config import Settings
    from lsp_server.services.completion import CompletionService
    from lsp_server.services.positions import LineIndex, Position
    from lsp_server.services.scheduler import CancelToken

    service = _PROBE.get("service")
    if service is None:
        service = _PROBE["service"] = CompletionService()
        service.load(str(model_under_test()))
    if service.runtime is None:
        return ""
    settings, _ = Settings.from_camel(options)
    ctx = service.context(LineIndex(text), "python", Position(line, character), settings)
    return service.complete(ctx, settings, CancelToken()).text


def insert_line(text: str, line: int, new_line: str) -> str:
    lines = text.split("\n")
    return "\n".join(lines[:line] + [new_line] + lines[line:])


def pick_new_line(text: str, line: int, candidates: list[str], options: dict) -> str:
    """The first candidate that, inserted as a new line before `line`, gets a suggestion at its end."""
    for candidate in candidates:
        if model_suggests(insert_line(text, line, candidate), line, len(candidate), options).strip():
            return candidate
    return candidates[0]


NEW_LINE_CANDIDATES = ["    total = len(", "    count = len(", "    result = ", "    return ", "    print(",
                       "    for word in ", "    if not ", "    words = "]


# -- random editing (the random-session tests) ---------------------------------------------------------------------

# What a random edit inserts: emoji, CJK, CRLF and lone CR line breaks, a multi-line paste, nothing (a deletion).
INSERTS = ["x", "\n", "    ", "é", "👋", "世界", "def g(a, b):\n    return a\n", "", "(", ")", "'", '"""', "\t", "\r\n", "\r"]


class Editor:
    """The editor's side: the text, and LSP positions in it."""

    def __init__(self, rng: random.Random, text: str) -> None:
        self.rng, self.text, self.version = rng, text, 1

    def position(self) -> tuple[int, int]:
        lines = lines_of(self.text)
        line = self.rng.randrange(len(lines))
        return line, utf16_len(lines[line][:self.rng.randint(0, len(lines[line]))])

    def edit(self) -> dict:
        start = self.position()
        end = start if self.rng.random() < 0.5 else self.position()
        start, end = min(start, end), max(start, end)
        inserted = self.rng.choice(INSERTS)
        a, b = offset_at(self.text, *start), offset_at(self.text, *end)
        self.text = self.text[:a] + inserted + self.text[b:]
        self.version += 1
        return change_at(*start, inserted, *end)


def lines_of(text: str) -> list[str]:
    """The text's lines without their breaks, split as LSP splits them by telemetry.text, not by the server's
    positions: the test checks those."""
    starts = line_starts(text)
    return [text[a:b].rstrip("\r\n") for a, b in zip(starts, [*starts[1:], len(text)])]


def inside(text: str, rng: dict) -> bool:
    """Both ends are real positions of ``text`` (no clamping needed), the start not after the end."""
    lines = lines_of(text)
    ends = [rng["start"], rng["end"]]
    for p in ends:
        if not (0 <= p["line"] < len(lines) and 0 <= p["character"] <= utf16_len(lines[p["line"]])):
            return False
    return (ends[0]["line"], ends[0]["character"]) <= (ends[1]["line"], ends[1]["character"])
