"""The cursor facts' lexical scan starts where this thread's last scan stood outside strings and comments, in a
window the same so far: what they say must be what a scan from scratch says, keystroke by keystroke, as the user
types, deletes, pastes and jumps between files. (Reusing the last tree, edited, was tried: tree-sitter's error
recovery then gave another tree than a parse from scratch, so the facts, and the gate's decisions, would have
depended on how the keystrokes came, and a replay sends them otherwise.)"""

from __future__ import annotations

import argparse
import random
import textwrap
from pathlib import Path

import pytest

from models import syntax

pytestmark = pytest.mark.skipif(not syntax.available(), reason="the tree-sitter Python grammar is not installed")

SOURCES = [Path(m.__file__).read_text(encoding="utf-8") for m in (argparse, textwrap, random)]
ODD = ['"""', "'", '"', "#", "\\", "é", "😀", "\r\n", "\r", "\t", "(", ")", ":", "\n    ", "f'{", "}"]


def from_scratch(text: str, offset: int) -> syntax.CursorFacts:
    """The facts with nothing reused: this thread's last scan set aside, then put back."""
    saved = getattr(syntax._local, "lexed", None)
    syntax._local.lexed = ("", 0)
    try:
        return syntax._cursor_facts(text, offset)
    finally:
        syntax._local.lexed = saved if saved is not None else ("", 0)


@pytest.mark.parametrize("seed", range(3))
def test_facts_with_reuse_are_the_facts_from_scratch_while_typing(seed):
    rng = random.Random(seed)
    checked = reused_scans = 0
    for _ in range(6):
        source = rng.choice(SOURCES)
        if rng.random() < 0.5:  # a large file: the window is a slice of it, and moves as the cursor does
            source = source * 2
        lines = source.splitlines(keepends=True)
        at = rng.randrange(1, len(lines) - 8)
        typed = "".join(lines[at:at + rng.randint(1, 4)])
        text, cursor = "".join(lines[:at]) + "".join(lines[at + len(typed.splitlines()):]), len("".join(lines[:at]))
        for _ in range(120):
            roll = rng.random()
            if roll < 0.6 and typed:  # type the next character of the real line
                piece, typed = typed[0], typed[1:]
            elif roll < 0.75:  # something odd: a quote, a comment, a line break of another kind
                piece = rng.choice(ODD)
            elif roll < 0.85 and cursor > 0:  # delete back
                n = min(cursor, rng.randint(1, 6))
                text, cursor = text[:cursor - n] + text[cursor:], cursor - n
                piece = ""
            elif roll < 0.92:  # jump elsewhere in the file
                cursor = rng.randrange(0, len(text) + 1)
                piece = ""
            else:  # paste a few lines
                piece = "".join(rng.sample(lines, 3))
            text, cursor = text[:cursor] + piece + text[cursor:], cursor + len(piece)
            reused_scans += syntax._lexed_from(*window_at(text, cursor)) > 0  # the last scan's place serves
            reused = syntax._cursor_facts(text, cursor)
            assert reused == from_scratch(text, cursor), (seed, cursor, text[max(0, cursor - 60):cursor + 20])
            checked += 1
    assert checked == 6 * 120 and reused_scans > 20, reused_scans


def window_at(text: str, cursor: int) -> tuple[str, int]:
    window, off = syntax._window(text, cursor)
    return syntax._lone_cr_as_lf(window), off


def test_windows_of_other_documents_in_turn_give_each_its_own_facts():
    """Two documents asked about in turn, inside strings and out: each scan reads its own window."""
    a, b = SOURCES[0], SOURCES[1]
    for offset in (100, 5_000, 20_000, 40_000):
        for text in (a, b, a):
            off = min(offset, len(text))
            broken = text[:off] + "'" + text[off:]  # an unclosed quote: the tree has an error, the scan runs
            assert syntax._cursor_facts(broken, off + 1) == from_scratch(broken, off + 1)


@pytest.mark.parametrize("seed", range(4))
def test_a_scan_from_the_last_scans_place_says_what_a_scan_from_the_start_says(seed):
    """The scan alone, with no tree to decide first: texts dense in quotes, comments and line breaks, edited at
    random places (before, at and after the last scan's place) and asked about at random places."""
    rng = random.Random(seed)
    alphabet = ["'", '"', '"""', "'''", "#", "\\", "\n", "\r", "x", "y", " ", "=", "(", "é"]
    resumed = 0
    for _ in range(3000):
        old = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        (_, _), at = syntax._lex_scan(old, 0, rng.randint(0, len(old)))
        syntax._local.lexed = (old, at)
        cut = rng.randint(0, len(old))
        new = old[:cut] + "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 3))) + old[cut + rng.randint(0, 3):]
        end = rng.randint(0, len(new))
        start = syntax._lexed_from(new, end)
        resumed += start > 0
        assert syntax._lex_scan(new, start, end)[0] == syntax._lex_scan(new, 0, end)[0], (old, at, new, end)
    assert resumed > 300, resumed
