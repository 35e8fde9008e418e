"""Single-line suggestions that broke the line they were inserted in, at the line's text after the cursor.

Each case was shown before: a comment written before the editor's closer took that closer in (`print(x|)` with
`  # show it` read `print(x  # show it)`); a suggestion that ends by opening a string left it open over the closers
(`print(|)` with `"hello", "` read `print("hello", ")`); and a suggestion whose end types the start of the rest of the
line again read that start twice (`foo(a|, b, c)` with `, z, b` read `foo(a, z, b, b, c)`)."""

from __future__ import annotations

import pytest

from tests.test_postprocess import single


@pytest.mark.parametrize("src, raw, expected", [
    ("print(x|)\n", "  # show it", ""),
    ("print(x|)\n", ")  # show it", ""),
    ("foo(x, |)\n", "y  # why", "y"),
    ("def_op(|)\n", "'UNPACK_SEQUENCE', 92)   # Number of tuple items", "'UNPACK_SEQUENCE', 92"),
    ("OUTMRK = bytes(|)\n", "[27]) # output marking", "[27]"),
    ("    tokens = [\n        (r'\\s+', T|),\n    ]\n", "ext),  # blank lines", "ext"),
])
def test_a_comment_before_the_editors_closer_is_cut_off(src, raw, expected):
    assert single(src, raw) == expected


@pytest.mark.parametrize("src, raw", [
    ("x = |\n", "1  # one"),  # at the line's end the comment takes in nothing
    ("x = f(|)  # note\n", "1"),  # no comment in the suggestion
    ("print(|)\n", '"#fff"'),  # a `#` in a string
    ("foo(a,|)\n    b,\n)\n", "  # why"),  # the call goes on below: the lines below close it
])
def test_a_comment_that_takes_in_no_code_is_kept(src, raw):
    assert single(src, raw) == raw


@pytest.mark.parametrize("src, raw, expected", [
    ("print(|\n", '"hello", "', '"hello",'),
    ("print(|)\n", '"hello", "', '"hello",'),
    ("x = |\n", '"a" + f"', '"a" +'),
    ("__all__ = [|]\n", "'x', '", "'x',"),
    ("_|\n", '_all__ = ["', "_all__ = ["),
])
def test_a_quote_the_suggestion_ends_by_opening_is_cut_off(src, raw, expected):
    assert single(src, raw) == expected


@pytest.mark.parametrize("src, raw", [
    ("x = |\n", '"'),  # only a quote: as often the start of the line's string as not
    ('def f():\n    |\n', '"""'),  # a docstring's quotes
    ('x = "abc|\n', 'd"'),  # the quote closes the cursor's string
    ('x = ""|\n', '"'),  # it makes a triple quote
    ("print(|)\n", '"a", "b"'),  # closed strings
])
def test_a_quote_that_opens_no_string_left_open_is_kept(src, raw):
    assert single(src, raw) == raw


@pytest.mark.parametrize("src, raw, expected", [
    ("foo(a|, b, c)\n", ", z, b", ", z"),
    ("foo(a|, b)\n", ", b", ""),
    ("x = |self.y\n", "self.x + self.", "self.x + "),
    ("class C:\n    def f(self):\n        se|lf.lastcmd = None\n", "lf.", ""),
    ("def f(self):\n    for va|lue in self.structure:\n        pass\n", "lue in self.", ""),
])
def test_an_end_that_types_the_start_of_the_line_again_is_cut_off(src, raw, expected):
    assert single(src, raw) == expected


@pytest.mark.parametrize("src, raw", [
    ("x = [f(|)]\n", "g(1)"),  # closers: the closers rules judge them
    ("a[|:2]\n", "1:"),  # one character
    ("x = |y\n", "1 + "),  # no overlap
])
def test_an_end_that_does_not_type_the_line_again_is_kept(src, raw):
    assert single(src, raw) == raw


def test_the_whole_rest_typed_again_is_still_the_repeat_rules():
    assert single("foo(a|, b)\n", ", b)") == ""
    assert single("x = compute(|) + 1\n", "y) + 1") == "y"
