"""Seeded random sessions against the real server over stdio: edits anywhere (emoji, CJK, CRLF and lone CR line
breaks, multi-line inserts and deletions), completions and next edits at random places, some cancelled, feedback
with the ids the server gave, setting changes. Whatever the order, every request is answered, every range returned
lies inside the text it was asked about, and the logged edit stream rebuilds exactly the text the editor has."""

from __future__ import annotations

import random
import sqlite3

import pytest
from lsprotocol import types

from telemetry.lsp_client import LspClient, LspError, change_at
from telemetry.reconstruct import apply_range
from telemetry.text import line_starts, offset_at, utf16_len
from tests.lsp_support import SAMPLE, model_under_test, server_command

URI = "file:///project/random.py"
INSERTS = ["x", "\n", "    ", "é", "👋", "世界", "def g(a, b):\n    return a\n", "", "(", ")", "'", '"""', "\t", "\r\n", "\r"]
SETTINGS = [{"decodingPolicy": "full"}, {"decodingPolicy": "dynamic"}, {"decodingPolicy": "speculative"},
            {"multiline": True}, {"multiline": False}, {"maxNewTokens": 1}, {"maxNewTokens": 24},
            {"nextEditPredictor": "heuristic"}, {"nextEditPredictor": "ranker"}, {"acceptanceGate": True},
            {"acceptanceGate": False}]


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


@pytest.mark.parametrize("seed", [1, 2])
def test_a_random_session_is_answered_in_full_and_its_edit_stream_rebuilds_the_text(tmp_path, seed):
    rng = random.Random(seed)
    db = tmp_path / "telemetry.sqlite3"
    client = LspClient(server_command(model_under_test(), db))
    editor = Editor(rng, SAMPLE)
    pending: list[tuple[str, int, object, str]] = []  # (kind, message id, answer queue, the text it was asked about)
    ids: list[tuple[str, str]] = []  # (suggestion id, "completion" or "next_edit")
    answered = 0
    try:
        client.initialize({"stopThreshold": 0.9})
        client.did_open(URI, editor.text)
        for _ in range(250):
            roll = rng.random()
            if roll < 0.45:
                change = editor.edit()
                client.did_change(URI, editor.version, [change])
            elif roll < 0.7:
                msg_id, q = client.inline_completion_async(URI, *editor.position(), invoked=rng.random() < 0.5)
                pending.append(("completion", msg_id, q, editor.text))
                if rng.random() < 0.2:
                    client.cancel(msg_id)
            elif roll < 0.8:
                line, character = editor.position()
                msg_id, q = client.request_async("tact/nextEdit", {"textDocument": {"uri": URI, "version": editor.version},
                                                                   "position": {"line": line, "character": character}})
                pending.append(("next_edit", msg_id, q, editor.text))
            elif roll < 0.9 and ids:
                sid, kind = rng.choice(ids)
                if kind == "completion":
                    method = rng.choice(["tact/didShowCompletion", "tact/didRejectCompletion", "tact/didPartiallyAcceptCompletion"])
                    client.notify(method, {"id": sid, "reason": "dismissed", "acceptedLength": rng.randint(0, 20)})
                else:
                    client.notify(rng.choice(["tact/didShowNextEdit", "tact/didRejectNextEdit"]), {"id": sid, "reason": "dismissed"})
                if rng.random() < 0.3:
                    command = "tact.acceptSuggestion" if kind == "completion" else "tact.acceptNextEdit"
                    pending.append(("command", *client.request_async("workspace/executeCommand",
                                                                     {"command": command, "arguments": [sid]}), editor.text))
            else:
                client.notify("workspace/didChangeConfiguration", {"settings": {"tact": rng.choice(SETTINGS)}})
            if len(pending) > 6 or rng.random() < 0.3:
                for kind, msg_id, q, text in pending:
                    try:
                        result = client.result(q, timeout=60)
                    except LspError as err:
                        assert err.error["code"] == types.LSPErrorCodes.RequestCancelled, (kind, err.error)
                        answered += 1
                        continue
                    answered += 1
                    if kind == "completion" and result:
                        for item in result["items"]:
                            assert inside(text, item["range"]), (item, text)
                            ids.append((item["command"]["arguments"][0], "completion"))
                    elif kind == "next_edit" and result:
                        for edit in result["edits"]:
                            assert inside(text, edit["range"]), (edit, text)
                            ids.append((edit["id"], "next_edit"))
                pending = []
        assert answered > 50
        assert isinstance(client.request("tact/status", timeout=10), dict)
    finally:
        client.shutdown()
    with sqlite3.connect(db) as conn:
        (opened,) = conn.execute("select text from documents where uri = ? and kind = 'open'", (URI,)).fetchone()
        edits = conn.execute("select start_line, start_character, end_line, end_character, inserted_text, removed_text "
                             "from edits where uri = ? order by seq", (URI,)).fetchall()
    text = opened
    for edit in edits:
        text = apply_range(text, *edit)
        assert text is not None, f"a logged edit does not fit the text the edits before it left: {edit}"
    assert text == editor.text
    assert len(edits) > 20
