"""A didChange with no range (the whole text sent, as Vim's ALE does at every keystroke) is the span it changed.

Taken as the replacement of the whole document, such a change broke the edit being typed at each keystroke,
stored the file twice in the edit stream per keystroke, and left next edits no history: a rename sent so got no
next edit where the same rename sent as a range got one."""

from __future__ import annotations

import random

from lsp_server.services.documents import DocumentStore
from lsp_server.services.positions import Position, Range
from telemetry.lsp_client import LspClient, change_at
from telemetry.text import offset_at
from tests.lsp_support import model_under_test, server_command, wait_for_rows

URI = "file:///project/shapes.py"


def _spliced(text: str, applied) -> str:
    """``text`` with ``applied``'s range (by its LSP positions, as a client or a replay reads it) replaced."""
    s = offset_at(text, applied.start.line, applied.start.character)
    e = offset_at(text, applied.end.line, applied.end.character)
    return text[:s] + applied.inserted_text + text[e:]


def test_typing_sent_as_whole_texts_is_one_edit_as_typing_sent_as_ranges():
    text = "def area(width, height):\n    return width * height\n"
    ranged, whole = DocumentStore(), DocumentStore()
    ranged.open(URI, "python", 1, text)
    whole.open(URI, "python", 1, text)
    for k, ch in enumerate("scale, ", start=2):
        at = 9 + k - 2
        ranged.change(URI, k, [(Range.of(0, at, 0, at), ch)], now=10.0 + k / 10)
        text = text[:at] + ch + text[at:]
        result = whole.change(URI, k, [(None, text)], now=10.0 + k / 10)
        assert result.finalized == []  # each keystroke continues the edit being typed
    assert whole.get(URI).text == ranged.get(URI).text == text
    want, got = ranged.get(URI).history.pending, whole.get(URI).history.pending
    assert (got.start, got.removed_text, got.inserted_text, got.keystrokes) == (Position(0, 9), "", "scale, ", 7)
    assert (got.start, got.end, got.removed_text, got.inserted_text) == (want.start, want.end, want.removed_text,
                                                                          want.inserted_text)


def test_the_span_read_from_whole_texts_rebuilds_each_text_by_its_positions():
    """Random edits on texts with CRLF, lone CR, emoji and runs of one character: the span's positions, read as a
    client reads them, turn the text before into the text sent, and its removed text is what was there. A span
    end between a CR and its LF would have no LSP position."""
    rng = random.Random(7)
    pieces = ["a", "aa", "\r\n", "\n", "\r", "😀", "é", " ", "x = 1", "\r\n\r\n", "z"]
    for trial in range(300):
        text = "".join(rng.choice(pieces) for _ in range(rng.randrange(0, 12)))
        store = DocumentStore()
        store.open(URI, "python", 1, text)
        for version in range(2, 8):
            s = rng.randrange(0, len(text) + 1)
            e = rng.randrange(s, len(text) + 1)
            new = text[:s] + "".join(rng.choice(pieces) for _ in range(rng.randrange(0, 3))) + text[e:]
            (applied,) = store.change(URI, version, [(None, new)]).applied
            assert _spliced(text, applied) == new, (trial, text, new, applied)
            assert text[applied.start_offset:applied.end_offset] == applied.removed_text
            assert not (0 < applied.start_offset < len(text) and text[applied.start_offset - 1:applied.start_offset + 1]
                        == "\r\n"), (text, new, applied)
            assert not (0 < applied.end_offset < len(text) and text[applied.end_offset - 1:applied.end_offset + 1]
                        == "\r\n"), (text, new, applied)
            written = len(new) - len(text) + (e - s)  # what the random edit inserted
            # at most a CR or an LF more at each end
            assert len(applied.removed_text) <= e - s + 2 and len(applied.inserted_text) <= written + 2
            text = new
            assert store.get(URI).text == text


def test_a_rename_sent_as_the_whole_text_gets_the_next_edit_a_ranged_one_gets(tmp_path):
    text = "def area(width, height):\n    w = width\n    h = height\n    return width * height\n"
    renamed = text.replace("area(width", "area(wide", 1)
    db = tmp_path / "telemetry.sqlite3"
    client = LspClient(server_command(model_under_test(), db))
    client.initialize({"acceptanceGate": False, "nextEditPredictor": "heuristic"})
    with client:
        answers = {}
        for mode in ("ranged", "whole"):
            uri = f"file:///project/{mode}.py"
            client.did_open(uri, text)
            client.did_change(uri, 2, [change_at(0, 9, "wide", 0, 14)] if mode == "ranged" else [{"text": renamed}])
            answers[mode] = client.next_edit(uri, 2, 0, 13)
        assert answers["ranged"], "the heuristic offers the rename's next use"
        assert [(e["range"], e["newText"]) for e in answers["whole"]] == [(e["range"], e["newText"])
                                                                          for e in answers["ranged"]]
        # each keystroke sent as the whole of a large file stores what it typed, not the file twice
        big = "x = 1\n" * 10_000
        client.did_open("file:///project/big.py", big)
        for k, ch in enumerate("print(x)", start=2):
            big += ch
            client.did_change("file:///project/big.py", k, [{"text": big}])
        client.notify("textDocument/didClose", {"textDocument": {"uri": "file:///project/big.py"}})
        rows = wait_for_rows(db, "SELECT removed_text, inserted_text FROM edits WHERE uri = ?",
                             ("file:///project/big.py",))
    assert rows == [("", "print(x)")]
