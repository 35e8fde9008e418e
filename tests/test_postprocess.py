"""Trimming raw model continuations to suggestions."""

from __future__ import annotations

import pytest

from lsp_server.services.context import CompletionContext, build_context
from lsp_server.services.positions import position_at
from lsp_server.services.postprocess import first_line, trim_suggestion


def ctx_at(src: str, language_id: str = "python") -> CompletionContext:
    i = src.index("|")
    text = src.replace("|", "", 1)
    return build_context(text, position_at(text, i), language_id=language_id)


def single(src: str, raw: str) -> str:
    return trim_suggestion(raw, ctx_at(src), multiline=False)


def multi(src: str, raw: str) -> str:
    return trim_suggestion(raw, ctx_at(src), multiline=True)


def test_first_line():
    assert first_line("abc\ndef") == "abc"
    assert first_line("abc\r\ndef") == "abc"
    assert first_line("abc\rdef") == "abc"
    assert first_line("") == ""
    assert first_line("\nx") == ""


# --- single line ---------------------------------------------------------------------------


def test_single_line_cuts_at_first_newline_and_strips_trailing_space():
    assert single("x = |\n", "compute(1)   \ny = 2\n") == "compute(1)"
    assert single("x = |\n", "compute(1)\r\ny = 2") == "compute(1)"
    assert single("x = |\n", "\ny = 2") == ""


@pytest.mark.parametrize("raw", ["", "   ", "\n\n", " \t \n  "])
def test_empty_or_whitespace_gives_nothing(raw):
    assert single("x = |\n", raw) == ""
    assert multi("x = |\n", raw) == ""


def test_leading_space_is_kept():
    assert single("return|\n", " value") == " value"


@pytest.mark.parametrize(
    "src, raw, expected",
    [
        ("print(|)\n", "foo)", "foo"),
        ("print(|)\n", "foo", "foo"),
        ("x = [a(|)]\n", "1)]", "1"),
        ("x = [a(|)]\n", "1)", "1"),
        ('print("hel|")\n', 'lo")', "lo"),
        ("f(|)\n", "a, (b))", "a, (b)"),  # the inner pair is the suggestion's own
        ("f(|)  \n", "g(1))  ", "g(1)"),  # whitespace around the closers
    ],
)
def test_single_line_drops_closers_already_after_the_cursor(src, raw, expected):
    assert single(src, raw) == expected


def test_single_line_keeps_closers_the_prefix_still_needs():
    # print( and bar( are open; the suffix closes one, the suggestion must close the other.
    assert single("print(bar(|)\n", "x)") == "x)"
    # Not only closers after the cursor: nothing is dropped.
    assert single("print(|x)\n", "a)") == "a)"
    # Cursor at the end of the line: the suggestion's closer is needed.
    assert single("print(|\n", "x)") == "x)"


def test_repeating_the_rest_of_the_line_gives_nothing():
    assert single("x = |compute(1)\n", "compute(1)") == ""
    assert single("x = |compute(1)\n", "compute(2)") == "compute(2)"


def test_repeating_the_previous_line_gives_nothing():
    assert single("total += 1\n|\n", "total += 1") == ""
    assert single("    total += 1\n    |\n", "total += 1") == ""
    assert single("total += 1\ntotal |\n", "+= 1") == ""
    assert single("total += 1\n|\n", "total += 2") == "total += 2"


def test_repeating_the_next_line_gives_nothing():
    assert single("def f(x):\n    |\n    return x\n", "return x") == ""
    assert single("def f(x):\n    |\n    return x\n", "x += 1") == "x += 1"


# --- multi line ----------------------------------------------------------------------------


def test_multiline_stops_at_a_dedent_below_the_cursor_block():
    src = "def f():\n    x = 1\n    |"
    assert multi(src, "y = 2\n    z = 3\nprint(z)\n") == "y = 2\n    z = 3"


def test_multiline_header_keeps_its_body_and_stops_at_the_next_def():
    raw = "\n    return x + 1\n\n    \ndef g():\n    pass\n"
    assert multi("def f(x):|\n", raw) == "\n    return x + 1"


def test_multiline_keeps_blank_lines_inside_the_block():
    src = "def f(x):\n    |"
    raw = "a = x\n\n    b = a\n    return b\nf(1)\n"
    assert multi(src, raw) == "a = x\n\n    b = a\n    return b"


def test_multiline_stops_when_a_multiline_bracket_construct_closes():
    raw = "foo(\n    a,\n    b,\n)\nbar()\n"
    assert multi("x = |", raw) == "foo(\n    a,\n    b,\n)"


def test_multiline_stops_when_the_enclosing_bracket_closes():
    src = "result = call(\n    first,\n    |"
    assert multi(src, "second,\n)\nnext_statement()\n") == "second,\n)"


def test_multiline_drops_closer_the_editor_already_has():
    assert multi("foo(|)\n", "\n    a,\n    b,\n)") == "\n    a,\n    b,"


def test_multiline_prefers_a_cut_without_new_syntax_errors():
    # The model ran out of tokens inside a call: keep the complete statement.
    assert multi("x = 1\n|", "y = 2\nz = foo(1,") == "y = 2"
    # Complete code is kept whole.
    assert multi("x = 1\n|", "y = 2\nz = foo(1)") == "y = 2\nz = foo(1)"


def test_multiline_strips_trailing_whitespace_on_each_line():
    assert multi("def f():\n    |", "a = 1   \n    b = 2\t\n\n") == "a = 1\n    b = 2"


def test_multiline_non_python_uses_the_bracket_and_indent_rules():
    c = ctx_at("function f() {\n    |", language_id="javascript")
    raw = "let y = 2;\n    y += 1;\n}\nother();\n"
    # The closing brace ends the enclosing construct: kept, and nothing after it.
    assert trim_suggestion(raw, c, multiline=True) == "let y = 2;\n    y += 1;\n}"
    c = ctx_at("if (x) {\n    a();\n    |\n}\n", language_id="javascript")
    assert trim_suggestion("b();\n    c();\n}\n", c, multiline=True) == "b();\n    c();\n}"
    assert trim_suggestion("b();\nc();\n", c, multiline=True) == "b();"  # a dedent ends it


def test_multiline_repeating_the_line_after_the_cursor_gives_nothing():
    assert multi("x = |compute(1)\n", "compute(1)") == ""
