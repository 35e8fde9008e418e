"""Suggestions before the editor's closing quotes and brackets, and above lines the document already has.

Each case was shown broken before: a docstring closed twice, an escaped quote taken for the closer, the spaces before a
dropped quote stripped from the string, a closer kept because the cursor line's count ignored the bracket's kind and the
lines below, and a multi-line suggestion that typed the next line again. Every shaped line is applied and parsed."""

from __future__ import annotations

import ast

import pytest

from tests.test_postprocess import ctx_at, multi, single


def applied(src: str, suggestion: str) -> str:
    i = src.index("|")
    text = src.replace("|", "", 1)
    return text[:i] + suggestion + text[i:]


def parses(src: str, suggestion: str) -> bool:
    try:
        ast.parse(applied(src, suggestion))
    except SyntaxError:
        return False
    return True


def assert_shaped(shape, src: str, raw: str, expected: str) -> None:
    """``raw`` shaped at ``src``'s cursor is ``expected``, and the file with it inserted parses."""
    out = shape(src, raw)
    assert out == expected
    assert parses(src, out)


@pytest.mark.parametrize("shape", [single, multi])
@pytest.mark.parametrize("src, raw, expected", [
    ('def f(x):\n    """|"""\n    return x\n', 'Return x plus one."""', "Return x plus one."),
    ("def f(x):\n    '''|'''\n    return x\n", "Return x plus one.'''", "Return x plus one."),
    ('def f(x):\n    """Return |"""\n    return x\n', 'x plus one."""', "x plus one."),
    ('def f(x):\n    """|"""\n    return x\n', 'Return x plus one."""\n    return x + 1', "Return x plus one."),
])
def test_a_docstring_is_not_closed_twice(shape, src, raw, expected):
    assert_shaped(shape, src, raw, expected)


@pytest.mark.parametrize("src, raw, expected", [
    ('label = "Name|"\n', ': "', ": "),
    ('sep = "|"\n', ', "', ", "),
    ('raise ValueError("value must be |"\n                 "positive")\n', 'an integer, not "', "an integer, not "),
])
def test_the_spaces_before_a_dropped_quote_stay_in_the_string(src, raw, expected):
    assert single(src, raw) == expected


@pytest.mark.parametrize("src, raw, expected", [
    ("s = '|'\n", "don\\'t'", "don\\'t"),
    ('msg = "|"\n', 'He said \\"hi\\""', 'He said \\"hi\\"'),
    ("s = '|'\n", "it\\'", "it\\'"),  # no closer: kept whole, its quote escaped, the editor's closes the string
    ("s = '|'\n", "it\\'s here' + x", "it\\'s here"),
])
def test_an_escaped_quote_is_not_the_closer(src, raw, expected):
    assert_shaped(single, src, raw, expected)


@pytest.mark.parametrize("src, raw, expected", [
    ('parser.add_argument("--mode", choices=["fast", |],\n                    help="how to run")\n', '"slow"],', '"slow"'),
    ('x = dict(items=[1, 2, |],\n         name="n")\n', "3],", "3"),
    ('feature = _Feature((3, 5, 0, "beta", |),\n                   (3, 7, 0, "alpha", 0))\n', "1),", "1"),
    ("result = compute(values[|],\n                 axis=0)\n", "i],", "i"),
    ("handlers = [make(|),\n            other()]\n", "a), make(b)", "a"),
    ('choices = ["fast", |]\n', '"slow"]', '"slow"'),  # the line's own closer, nothing open below
    ("def f():\n    x = foo(|\n    )\n", "x)", "x"),  # the line below closes the call
])
def test_closers_the_lines_below_have_are_dropped(src, raw, expected):
    assert_shaped(single, src, raw, expected)


@pytest.mark.parametrize("src, raw", [
    ("print(bar(|)\n", "x)"),  # the line needs one more `)`: nothing below closes it
    ("items = [\n    foo(|\n]\n", "x)"),  # the `]` below closes the list, not the call
    ("def f():\n    x = foo(|\n    y = 2\n", "x)"),  # nothing below closes the call
])
def test_closers_the_document_needs_are_kept(src, raw):
    assert_shaped(single, src, raw, raw)


def test_a_closer_inside_a_multi_line_call_is_judged_with_the_call_it_is_in():
    # `bar(` opened on the cursor line, `foo(` above it: the `)` below closes `foo(`, so `bar(x)` keeps its `)`
    src = "foo(a,\n    bar(|\n)\n"
    assert single(src, "x)") == "x)"
    assert parses(src, "x)")


@pytest.mark.parametrize("src, raw, expected", [
    ("class Point:\n    def __init__(self, x, y):\n        self.x = x|\n        self.y = y\n",
     "\n        self.y = y\n        self.y = y\n        self.z", ""),
    ("def f(x):\n    y = x * 2|\n    return y\n", "\n    z = y + 1\n    return y\n", "\n    z = y + 1"),
    ('def f(x):\n    """|\n    return x\n', 'Return x."""\n    return x\n', 'Return x."""'),
])
def test_a_multi_line_suggestion_ends_before_the_line_the_document_has_next(src, raw, expected):
    assert multi(src, raw) == expected


def test_a_multi_line_suggestion_that_types_other_lines_is_kept():
    src = "def f(x):\n    y = x * 2|\n    return y\n"
    assert multi(src, "\n    z = y + 1\n    w = z") == "\n    z = y + 1\n    w = z"


def test_the_closing_quote_the_rest_has_ends_a_one_line_string_only_on_its_line():
    ctx = ctx_at('s = "|"\n')
    assert ctx.facts.in_string
    # the suggestion's first line has no closing quote: nothing is cut from its next line's quote
    assert single('s = "|"\n', 'abc\n"x"') == "abc"


@pytest.mark.parametrize("src, raw, expected", [
    ("# vrtl[version, release, technology_l|]\nx = 1\n", "evel]", "evel"),  # prose in a comment: its own brackets
    ("#   ye >= len(str(93*p/|))\n", "/65))", "/65"),
    ('x = "see foo(bar|)"\n', ", baz)", ", baz"),  # and in a string
])
def test_closers_in_a_comment_or_a_string_are_matched_as_written(src, raw, expected):
    assert single(src, raw) == expected


# The prefix window starts inside the first docstring: read from there, every later string is read inside out.
_DOCSTRINGS = ('def a():\n    """Open (a file (or two.\n\n    More words here.\n    """\n\n\n'
               'def b():\n    """Close."""\n\n\n')


def _inside_the_first_docstring(src: str):
    """A context whose prefix window starts at the first docstring's last line of text."""
    from dataclasses import replace

    ctx = ctx_at(src)
    start = src.index("    More words")
    return replace(ctx, prefix=ctx.prefix[start:], prefix_start=start)


def test_a_window_starting_inside_a_docstring_does_not_turn_strings_inside_out():
    from lsp_server.services.postprocess import trim_suggestion

    ctx = _inside_the_first_docstring(_DOCSTRINGS + "def c():\n    \'\'\'Change to a direct|\'\'\'\n    pass\n")
    assert ctx.facts.in_string
    assert trim_suggestion("ory.\'\'\'", ctx, multiline=False) == "ory."
    ctx = _inside_the_first_docstring(_DOCSTRINGS + "def c():\n    x = glob_to_re(|)\n    return x\n")
    assert trim_suggestion("prefix)", ctx, multiline=False) == "prefix"
