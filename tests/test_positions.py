"""LSP positions (UTF-16 code units) <-> Python str indices."""

from __future__ import annotations

import random
import time

import pytest

from lsp_server.services.positions import (
    LineIndex,
    Position,
    PositionError,
    Range,
    advance,
    is_valid,
    line_starts,
    offset_at,
    position_at,
    utf16_len,
)
from tests.lsp_support import best_time

EMOJI = "\U0001f600"  # astral: 2 UTF-16 code units
CJK = "\u4e2d\u6587"  # BMP: 1 code unit each
CJK_EXT_B = "\U00020000"  # astral CJK ideograph


def both(text: str, pos: Position, **kw) -> int:
    """offset_at through the scanning function and through a LineIndex; they must agree."""
    a = offset_at(text, pos, **kw)
    b = LineIndex(text).offset_at(pos, **kw)
    assert a == b, (text, pos, a, b)
    return a


def test_utf16_len():
    assert utf16_len("") == 0
    assert utf16_len("abc") == 3
    assert utf16_len(CJK) == 2
    assert utf16_len(EMOJI) == 2
    assert utf16_len("a" + EMOJI + CJK_EXT_B) == 5
    assert utf16_len("\ud800") == 1  # a lone surrogate does not raise


def test_emoji_offsets_round_trip():
    text = f"x = '{EMOJI}{EMOJI}y'\nz"
    # "x = '" is 5 units; each emoji 2 units; y at unit 9.
    assert both(text, Position(0, 5)) == 5
    assert both(text, Position(0, 7)) == 6
    assert both(text, Position(0, 9)) == 7
    assert text[both(text, Position(0, 9))] == "y"
    assert position_at(text, 7) == Position(0, 9)
    assert position_at(text, text.index("z")) == Position(1, 0)


def test_middle_of_surrogate_pair_rounds_down():
    text = f"a{EMOJI}b"
    assert both(text, Position(0, 2)) == 1  # inside the pair -> start of the emoji
    assert both(text, Position(0, 2), clamp=False) == 1
    assert both(text, Position(0, 3)) == 2


def test_cjk_counts_one_unit_and_astral_cjk_two():
    text = f"{CJK}{CJK_EXT_B}!"
    assert both(text, Position(0, 2)) == 2
    assert both(text, Position(0, 4)) == 3
    assert text[both(text, Position(0, 4))] == "!"
    assert position_at(text, 3) == Position(0, 4)


def test_character_past_end_of_line_clamps_before_break():
    text = "ab\ncd\r\nef"
    assert both(text, Position(0, 99)) == 2
    assert both(text, Position(1, 99)) == 5  # before "\r\n", not between "\r" and "\n"
    assert both(text, Position(2, 99)) == len(text)


def test_line_past_end_clamps_to_document_end():
    text = "ab\ncd"
    assert both(text, Position(7, 0)) == len(text)
    assert both(text, Position(2, 0)) == len(text)


def test_strict_mode_raises_with_clear_message():
    text = "ab\ncd"
    with pytest.raises(PositionError, match="line 5 is past the end"):
        offset_at(text, Position(5, 0), clamp=False)
    with pytest.raises(PositionError, match="character 3 is past the end of line 1"):
        LineIndex(text).offset_at(Position(1, 3), clamp=False)
    with pytest.raises(PositionError, match="negative"):
        offset_at(text, Position(-1, 0), clamp=False)
    assert both(text, Position(1, 2), clamp=False) == 5  # end of the last line is valid
    assert both(text, Position(-3, -1)) == 0  # clamped


def test_is_valid():
    text = "ab\n" + EMOJI
    assert is_valid(text, Position(0, 2))
    assert not is_valid(text, Position(0, 3))
    assert is_valid(text, Position(1, 2))
    assert not is_valid(text, Position(1, 3))
    assert is_valid(text, Position(1, 0))
    assert not is_valid(text, Position(2, 0))
    assert is_valid("ab\n", Position(1, 0))  # the empty last line after a trailing break


def test_line_breaks_crlf_cr_lf():
    text = "a\r\nb\rc\nd"
    assert line_starts(text) == [0, 3, 5, 7]
    assert both(text, Position(1, 0)) == 3
    assert both(text, Position(2, 0)) == 5
    assert both(text, Position(3, 0)) == 7
    assert position_at(text, 6) == Position(2, 1)
    # Inside a CRLF pair: column is the end of the line's content.
    assert position_at(text, 2) == Position(0, 1) == LineIndex(text).position_at(2)
    assert LineIndex(text).line_text(0) == "a"
    assert LineIndex(text).line_count == 4


def test_position_at_clamps_offsets():
    text = "ab\nc"
    assert position_at(text, -5) == Position(0, 0)
    assert position_at(text, 100) == Position(1, 1)


def test_advance():
    assert advance(Position(2, 3), "ab") == Position(2, 5)
    assert advance(Position(2, 3), "ab\ncd" + EMOJI) == Position(3, 4)
    assert advance(Position(0, 0), "a\r\nb") == Position(1, 1)


def test_range_helpers():
    r = Range.of(1, 2, 3, 4)
    assert r.start == Position(1, 2) and r.end == Position(3, 4)
    assert not r.is_empty and Range.of(1, 1, 1, 1).is_empty


def _rand_text(rng: random.Random, n: int) -> str:
    alphabet = ["a", "b", " ", "\n", "\r\n", "\r", EMOJI, CJK[0], "\t"]
    return "".join(rng.choice(alphabet) for _ in range(n))


def test_random_round_trip_against_reference():
    rng = random.Random(1234)
    for _ in range(200):
        text = _rand_text(rng, rng.randrange(0, 40))
        idx = LineIndex(text)
        lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        assert idx.line_count == len(lines)
        for line_no, line in enumerate(lines):
            assert idx.line_text(line_no) == line
            for ch in range(0, utf16_len(line) + 1):
                off = idx.offset_at(Position(line_no, ch))
                back = idx.position_at(off)
                # Round trip is exact except inside a surrogate pair, which rounds down.
                assert back.line == line_no and back.character <= ch and ch - back.character <= 1
                assert off == offset_at(text, Position(line_no, ch))
        for off in range(len(text) + 1):
            assert position_at(text, off) == idx.position_at(off)


def test_big_document_conversions_are_fast():
    line = "x = compute(alpha, beta)  # " + CJK + "\n"
    text = line * (5_000_000 // len(line))
    idx = LineIndex(text)
    last = idx.line_count - 1
    t0 = time.perf_counter()
    for i in range(2000):
        off = idx.offset_at(Position(last - i, 5))
        idx.position_at(off)
    elapsed = time.perf_counter() - t0
    assert elapsed < 0.2, elapsed
    # Converting on one 5 MB line with astral characters is not quadratic.
    long_line = (EMOJI + "ab") * 1_000_000
    t0 = time.perf_counter()
    # Blocks are 4 units / 3 chars; unit 4k+1 is inside the emoji of block k: round down.
    assert offset_at(long_line, Position(0, 3_999_997)) == 2_999_997
    assert offset_at(long_line, Position(0, 3_999_999)) == 2_999_999
    assert time.perf_counter() - t0 < 0.5


def _check_against_fresh(idx: LineIndex, text: str, rng: random.Random, full: bool) -> None:
    """Everything an index answers equals what a fresh index of ``text`` answers."""
    fresh = LineIndex(text)
    assert idx.text == text
    assert idx.starts == fresh.starts == line_starts(text)
    assert idx.line_count == fresh.line_count
    lines = range(fresh.line_count) if full else [rng.randrange(fresh.line_count) for _ in range(6)]
    for line_no in [*lines, fresh.line_count - 1]:
        assert idx.line_bounds(line_no) == fresh.line_bounds(line_no)
        assert idx.line_text(line_no) == fresh.line_text(line_no)
        width = utf16_len(fresh.line_text(line_no))
        for ch in {0, width, width + 1, rng.randrange(width + 2)}:
            pos = Position(line_no, ch)
            assert idx.offset_at(pos) == fresh.offset_at(pos)
            assert idx.is_valid(pos) == fresh.is_valid(pos)
    for pos in (Position(fresh.line_count, 0), Position(fresh.line_count + 3, 2), Position(-1, 4)):
        assert idx.offset_at(pos) == fresh.offset_at(pos)
        assert idx.is_valid(pos) == fresh.is_valid(pos)
    offsets = range(-1, len(text) + 2) if full else [rng.randrange(-1, len(text) + 2) for _ in range(12)]
    for off in [*offsets, 0, len(text)]:
        assert idx.position_at(off) == fresh.position_at(off)


@pytest.mark.parametrize("chunk", [None, 1, 2, 3, 8])
def test_random_incremental_edits_answer_as_a_fresh_index(monkeypatch, chunk):
    """Many edits (breaks split and joined, multi-line pastes and deletions) agree with a rebuild.

    ``chunk`` shrinks the index's internal blocks so that splitting and merging them is exercised
    on small texts; ``None`` keeps the default."""
    import lsp_server.services.positions as positions

    if chunk is not None:
        monkeypatch.setattr(positions, "_CHUNK", chunk)
    rng = random.Random(7 + (chunk or 0))
    pieces = ["a", "b", " ", "\n", "\r\n", "\r", "\r", EMOJI, CJK[0], CJK_EXT_B, "\t", "\ud83d"]
    text = "".join(rng.choice(pieces) for _ in range(300))
    idx = LineIndex(text)
    for step in range(600):
        s = rng.randrange(len(text) + 1)
        kind = rng.random()
        if kind < 0.5:  # a keystroke or a backspace
            e = min(len(text), s + rng.choice([0, 0, 1]))
            ins = rng.choice(pieces + [""])
        elif kind < 0.75:  # a selection replaced: several lines out, several in
            e = min(len(text), s + rng.randrange(0, 80))
            ins = "".join(rng.choice(pieces) for _ in range(rng.randrange(0, 60)))
        elif kind < 0.85:  # a big paste
            e = s
            ins = "".join(rng.choice(["x", "\n", "\r\n", "\r", EMOJI]) for _ in range(rng.randrange(50, 400)))
        elif kind < 0.95:  # a big deletion
            e = min(len(text), s + rng.randrange(50, 500))
            ins = ""
        else:  # at either end, sometimes everything
            s, e = rng.choice([(0, 0), (len(text), len(text)), (0, len(text)), (0, min(3, len(text)))])
            ins = rng.choice(["", "\n", "\r", "q\r\n", EMOJI + "\n"])
        new_text = text[:s] + ins + text[e:]
        idx = idx.replaced(s, e, ins, new_text if rng.random() < 0.5 else None)
        text = new_text
        _check_against_fresh(idx, text, rng, full=step % 50 == 0 or len(text) < 40)


def test_replaced_leaves_the_old_index_as_it_was():
    """Snapshots are read from other threads while changes arrive: an index never changes."""
    rng = random.Random(3)
    text = "".join(rng.choice(["ab", "\n", "\r\n", EMOJI]) for _ in range(5000))
    idx = LineIndex(text)
    history = [(text, idx)]
    for _ in range(200):
        s = rng.randrange(len(text) + 1)
        e = min(len(text), s + rng.randrange(0, 30))
        ins = rng.choice(["", "x", "\n", "\r\n\r\n", "a\nb\nc\n" * 20])
        text = text[:s] + ins + text[e:]
        idx = idx.replaced(s, e, ins, text)
        history.append((text, idx))
    for old_text, old_idx in history[::20]:
        assert old_idx.text == old_text and old_idx.starts == line_starts(old_text)


def test_a_keystroke_costs_the_same_in_a_million_line_file_as_in_ten_thousand():
    """The index's work for one keystroke must not grow with the lines below it."""

    def cost(lines: int, repeats: int) -> float:
        text = "x = 1\n" * lines
        idx = LineIndex(text)
        new_text = text[:10] + "y" + text[10:]  # line 1: every line start after it moves
        best = best_time(lambda: idx.replaced(10, 10, "y", new_text), repeats)
        out = idx.replaced(10, 10, "y", new_text)  # an index never changes: the same answer as each timed call
        assert out.line_count == lines + 1 and out.offset_at(Position(lines - 1, 0)) == 6 * (lines - 1) + 1
        return best

    small = cost(10_000, 200)
    big = cost(1_000_000, 20)
    assert big / small < 30, (big, small)  # about 3 here; 248 when every later start moved
