"""Seeded random sessions against the real server over stdio: edits anywhere (emoji, CJK, CRLF and lone CR line
breaks, multi-line inserts and deletions), completions and next edits at random places, some cancelled, feedback
with the ids the server gave, setting changes. Whatever the order, every request is answered, every range returned
lies inside the text it was asked about, and the logged edit stream rebuilds exactly the text the editor has."""

from __future__ import annotations

import random
import sqlite3

import pytest
from lsprotocol import types

from telemetry.lsp_client import LspClient, LspError
from telemetry.reconstruct import apply_range
from tests.lsp_support import SAMPLE, Editor, inside, model_under_test, server_command

URI = "file:///project/random.py"
SETTINGS = [{"decodingPolicy": "full"}, {"decodingPolicy": "dynamic"}, {"decodingPolicy": "speculative"},
            {"multiline": True}, {"multiline": False}, {"maxNewTokens": 1}, {"maxNewTokens": 24},
            {"nextEditPredictor": "heuristic"}, {"nextEditPredictor": "ranker"}, {"acceptanceGate": True},
            {"acceptanceGate": False}]


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
