"""Shaping a suggestion does no Python step per character of the cursor line.

A minified file's one line holds hundreds of thousands of characters; shaping a suggestion there read it token by
token in Python (139 ms on a line of 200,000 escaped quotes). The module's Python lines run while shaping are counted
(a trace, not a clock, so a busy machine changes nothing) on a line ten times as long: the count stays put, where the
former token loop's grew with the line."""

from __future__ import annotations

import sys

import pytest

from lsp_server.services import postprocess
from lsp_server.services.context import build_context
from lsp_server.services.positions import position_at
from tests.test_postprocess_differential import former_token_loop

# Minified-looking lines: escaped quotes, brackets, strings of every kind, comments, tabs, non-ASCII.
_UNITS = {
    "escaped quotes": '\\"',
    "escaped single quotes": "\\'",
    "brackets": "f(a[1], {b: (c)})+",
    "strings": "f'{x}' + r\"\\d\" + b'\\x00' + \"\"\"t\"\"\" + '''u''' + `v` + u'é\U0001f600' + ",
    "lone quotes": "a\"b'c`d(",
    "comment": "x(1) # y(",
    "tabs and closers": "\t)]},",
}

# (line with the cursor as |, suggestion, multi-line): the cursor at the end, and in the middle before closers.
_PLACES = {
    "end, multi-line": ("x = {line}|", "a\nb = 1\n", True),
    "end, single-line": ("x = {line}|", "a)", False),
    "middle, single-line": ("x = f(|){line}", "a)", False),
    "middle, multi-line": ("x = {head}|{tail}", "a(\nb)\n", True),
    "middle before a quote": ('x = f("|"){line}', 'a")', False),
    "header": ("if {line}|", ":  # c(\n    pass\n", True),
}


def _python_lines(trim, unit: str, place: str, chars: int) -> int:
    """How many Python lines of ``trim``'s module run while it shapes the suggestion on a cursor line of about
    ``chars`` chars."""
    module_file = trim.__code__.co_filename
    template, raw, multiline = _PLACES[place]
    line = unit * (chars // len(unit))
    src = template.format(line=line, head=line[: len(line) // 2], tail=line[len(line) // 2 :]) + "\nz = 2\n"
    cursor = src.index("|")
    text = src[:cursor] + src[cursor + 1 :]
    ctx = build_context(text, position_at(text, cursor))
    trim(raw, ctx, multiline=multiline)  # patterns compiled on first use are not counted
    count = 0

    def tracer(frame, event, arg):
        nonlocal count
        if frame.f_code.co_filename != module_file:
            return None  # another module's work: tree-sitter's error count reads a bounded end of the prefix
        count += event == "line"
        return tracer

    sys.settrace(tracer)
    try:
        trim(raw, ctx, multiline=multiline)
    finally:
        sys.settrace(None)
    return count


@pytest.mark.parametrize("place", list(_PLACES))
@pytest.mark.parametrize("unit", list(_UNITS))
def test_python_work_does_not_grow_with_the_cursor_line(unit, place):
    short = _python_lines(postprocess.trim_suggestion, _UNITS[unit], place, 10_000)
    long = _python_lines(postprocess.trim_suggestion, _UNITS[unit], place, 100_000)
    # The prefix window (a few thousand chars before the cursor) cuts the line at another place: a few dozen lines.
    assert long <= short + 50, (short, long)


@pytest.mark.parametrize("unit", ["escaped quotes", "brackets"])
def test_the_former_token_loop_grew_with_the_line(unit):
    """What the test above tells apart: the former code's Python work grew about tenfold with the line."""
    short = _python_lines(former_token_loop.trim_suggestion, _UNITS[unit], "middle, single-line", 2_000)
    long = _python_lines(former_token_loop.trim_suggestion, _UNITS[unit], "middle, single-line", 20_000)
    assert long > 5 * short, (short, long)
