"""Suggestions at a cursor right before a word glued their end onto it: a closing bracket or a string's closing quote
stayed in front of the word, and accepting broke the line (`uri = file.resolve().as_ur|i()` with `l()` read
`as_url()i()`; `params).|fetchone()` with `.fetchall()` read `.fetchall()fetchone()`; `x = 'h|ello` with `'`
read `x = 'h'ello`). Each was served with default settings."""

from __future__ import annotations

import pytest

from lsp_server.services.postprocess import trim_suggestion
from tests.test_postprocess import ctx_at, multi, single


@pytest.mark.parametrize("src, raw", [
    ("uri = file.resolve().as_ur|i()\n", "l()"),
    ("row = conn.execute(sql, params).|fetchone()\n", "fetchall()"),
    ("row = conn.execute(sql, params).|fetchone()\n", ".fetchall()"),
    ('conn.execu|te("BEGIN")\n', "les.append(conn)"),
    ("ok = not is|instance(value, bool)\n", "instance(value, str)"),
    ("x = os.p|a  # comment\n", "ath.join(os.path.dirname(__file__), 'xxx')"),
    ("x = 'h|ello\n", "'"),
    ("x = [1, 2|foo\n", "]"),
    ("x = |foo\n", "'bar'"),
    ("x = |foo\n", "items[0]"),
])
def test_an_end_glued_to_the_word_after_the_cursor_is_not_shown(src, raw):
    assert single(src, raw) == ""


@pytest.mark.parametrize("src, raw", [
    ("f(|x)\n", "*"),  # a sign before a word
    ("x = |foo\n", "1 + "),  # a space
    ("x = |foo\n", "self."),
    ("x = |name'\n", "'"),  # a string's opening quote: its text follows
    ('s = "don|t"\n', "'"),  # an apostrophe inside a string opens nothing it closes
    ('def f():\n    """We|re searching."""\n', "'"),  # nor inside a docstring
    ("# see the |docs\n", "(latest) "),
    ("print(|x)\n", "-"),
])
def test_an_end_that_reads_right_before_the_word_stays(src, raw):
    assert single(src, raw) == raw


def test_a_cast_before_a_word_stays_in_c_and_a_backtick_in_python_docs():
    assert trim_suggestion("(int)", ctx_at("y = |x;\n", "c"), multiline=False) == "(int)"
    assert trim_suggestion("(int)", ctx_at("y = |x\n"), multiline=False) == ""
    assert single('"""See `the site|_ for more."""\n', " docs`") == " docs`"


def test_a_multi_line_suggestion_glued_to_the_word_is_not_shown_either():
    assert multi("x = |foo\n", "compute(\n    1,\n)") == ""
