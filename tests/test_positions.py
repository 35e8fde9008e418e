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


def test_incremental_index_matches_rebuild():
    rng = random.Random(99)
    text = _rand_text(rng, 50)
    idx = LineIndex(text)
    for _ in range(1500):
        s = rng.randrange(0, len(text) + 1)
        e = min(len(text), s + rng.choice([0, 0, 1, 2, 5]))
        ins = _rand_text(rng, rng.choice([0, 1, 1, 2, 4]))
        idx = idx.replaced(s, e, ins)
        text = text[:s] + ins + text[e:]
        assert idx.text == text
        assert idx.starts == line_starts(text), (repr(text), s, e, repr(ins))


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
