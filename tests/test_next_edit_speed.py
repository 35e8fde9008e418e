"""Cost of building the line-based history (`line_history`): the same results as the former whole-text
undo, at a cost that follows the edits rather than the file."""

from __future__ import annotations

import random

from lsp_server.services.documents import EditRecord
from lsp_server.services.next_edit import _PY_ONLY_BREAKS, _undo_whole, line_history
from lsp_server.services.positions import LineIndex, Position
from tests.lsp_support import best_time


def reference_line_history(text: str, records: list[EditRecord]):
    """The former implementation, kept as the reference: each record undone from the whole text (`_undo_whole`,
    which takes and gives the records newest first)."""
    return _undo_whole(text, records[::-1])[::-1]


# Characters weighted towards line breaks of every kind LSP and Python know, and UTF-16 pairs.
_PLAIN = "abcxyz_ ()=:.,"
_BREAKS = ["\n", "\r\n", "\r", "\n", "\r\n"]
_ODD = ["\x0c", "\x0b", "\x85", "\u2028", "\u2029", "\x1c", "\x1e", "\u00e9", "\U0001f600"]


def _random_text(rng: random.Random, size: int, odd: float) -> str:
    out = []
    for _ in range(size):
        r = rng.random()
        if r < 0.18:
            out.append(rng.choice(_BREAKS))
        elif r < 0.18 + odd:
            out.append(rng.choice(_ODD))
        else:
            out.append(rng.choice(_PLAIN))
    return "".join(out)


def _record(before: str, start: int, end: int, inserted: str) -> EditRecord:
    index = LineIndex(before)
    return EditRecord("file:///t.py", 1, index.position_at(start), index.position_at(end), before[start:end], inserted,
                      0.0, 0.0, 1)


def _random_case(rng: random.Random):
    """(current text, records): a random original text edited by random records, some then spoiled."""
    lines = rng.choice([1, 3, 8, 30, 120])
    text = _random_text(rng, rng.randint(0, lines * 12), rng.choice([0.0, 0.0, 0.01, 0.05]))
    if rng.random() < 0.3:
        text = text.rstrip("\r\n")  # no line break at the end
    records = []
    for _ in range(rng.randint(1, 9)):
        n = len(text)
        kind = rng.random()
        if kind < 0.25 and n:  # near an earlier edit, as typing goes
            a = rng.randint(max(0, n // 2 - 20), min(n, n // 2 + 20))
        else:
            a = rng.randint(0, n)
        b = min(n, a + rng.choice([0, 0, 1, 2, 5, 20, 60]))
        inserted = _random_text(rng, rng.choice([0, 1, 1, 3, 10, 40]), rng.choice([0.0, 0.03]))
        if rng.random() < 0.1:
            inserted = rng.choice(["\n", "\r", "\r\n", "\r\n\r\n", "x\r", "\ny"])
        if a == b and not inserted:
            inserted = "q"
        rec = _record(text, a, b, inserted)
        records.append(rec)
        text = text[:a] + inserted + text[b:]
    # Spoil some: inserted text that no longer matches, positions past the end, arbitrary positions.
    for i in range(len(records)):
        r = rng.random()
        rec = records[i]
        if r < 0.04:
            records[i] = EditRecord(rec.uri, 1, rec.start, rec.end, rec.removed_text, rec.inserted_text + "Z",
                                    0.0, 0.0, 1)
        elif r < 0.07:
            records[i] = EditRecord(rec.uri, 1, Position(rec.start.line + rng.randint(1, 500), 0), rec.end,
                                    rec.removed_text, "", 0.0, 0.0, 1)
        elif r < 0.10:
            records[i] = EditRecord(rec.uri, 1, Position(rec.start.line, rec.start.character + rng.randint(1, 50)),
                                    rec.end, rec.removed_text, "", 0.0, 0.0, 1)
        elif r < 0.12:
            records[i] = EditRecord(rec.uri, 1, Position(rng.randint(-1, 3), rng.randint(-1, 3)), rec.end,
                                    rng.choice(["", "\r", "\n", "a\r\nb"]), "", 0.0, 0.0, 1)
    return text, records


def test_line_history_matches_the_whole_text_undo_on_random_histories():
    rng = random.Random(20261205)
    kept = stopped = 0
    for case in range(6000):
        text, records = _random_case(rng)
        expected = reference_line_history(text, records)
        assert line_history(text, records) == expected, (case, text, records)
        if not any(ch in text for ch in _PY_ONLY_BREAKS):  # (a text holding one is undone whole: no comparison)
            kept += len(expected)
            stopped += len(expected) < len(records)
    assert kept > 5000 and stopped > 1000  # both full walks and early stops went through the windows


def test_line_history_matches_on_crlf_joins_and_form_feeds():
    cases = [
        ("a\r\nb", [_record("a\rb", 2, 2, "\n")]),  # an LF typed after a CR: one CRLF
        ("a\rb", [_record("a\r\nb", 2, 3, "")]),  # the LF of a CRLF removed
        ("a\r\r\nb", [_record("a\r\nb", 1, 1, "\r")]),
        ("x\x0cy\nz\n", [_record("x\ny\nz\n", 1, 2, "\x0c")]),
        ("\x0c\n" * 3 + "abc\n", [_record("\x0c\n" * 3 + "abd\n", 8, 9, "c")]),  # undone whole, as the reference
        ("a\nb\n", [_record("a\n", 2, 2, "b\n")]),
        ("", [_record("abc", 0, 3, "")]),
        ("abc", [_record("", 0, 0, "abc")]),
        ("a\r", [_record("a\r\n", 2, 3, "")]),
        ("a\nb", [_record("a\nb", 0, 3, "a\nb")]),
        # a plain text whose newest record removed a form feed: undone, it comes back above the older record's line
        ("a\nb\nc\ne\n", [_record("a\x0c\nb\nc\nd\n", 7, 8, "e"), _record("a\x0c\nb\nc\ne\n", 1, 2, "")]),
    ]
    for text, records in cases:
        assert line_history(text, records) == reference_line_history(text, records), (text, records)


def _scaling_case(lines: int):
    """9 records around line 1,000 of a ``lines``-line file (the same records whatever its length)."""
    row = "    value = compute(alpha, beta) + gamma  # comment\n"
    head = row * 2000
    tail = row * (lines - 2000)
    rng = random.Random(7)
    text = head
    records = []
    for i in range(9):
        index = LineIndex(text)
        line = 900 + rng.randint(0, 200)
        a = index.offset_at(Position(line, 4 + i))
        b = a + (6 if i % 3 else 60)  # some edits span two lines
        inserted = "renamed_%d" % i if i % 4 else "first\nsecond_%d\n    " % i
        records.append(_record(text, a, b, inserted))
        text = text[:a] + inserted + text[b:]
    return text + tail, records


def test_line_history_cost_follows_the_edits_not_the_file():
    small_text, records = _scaling_case(2_000)
    big_text, big_records = _scaling_case(200_000)
    assert records == big_records
    assert len(line_history(big_text, records)) == 9 == len(line_history(small_text, records))
    small = best_time(lambda: line_history(small_text, records))
    big = best_time(lambda: line_history(big_text, records))
    assert big / small < 20, f"200,000 lines: {big * 1000:.1f} ms, 2,000 lines: {small * 1000:.2f} ms"  # ~1 here; ~150 before
