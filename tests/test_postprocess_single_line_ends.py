"""Single-line suggestions at cursors in held-out files, shown wrong by the shaping rules.

Each case was shown before: a loop cut (the model began to repeat itself) ending inside a word was offered as it was
(`subprocess.che|` with `ck_output(vcvarsall, v`); at a line's end inside a string the line opened, the closers after
the suggestion's closing quote were read as the string's text and dropped (`UnicodeError("undef|` gave
`ined encoding"`); and the suggestion's own last closer doubled the one the editor had after the cursor (`lis|)` with
`t(value)` read `list(value))`)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from lsp_server.config import Settings
from lsp_server.services.completion import CompletionService
from lsp_server.services.postprocess import trim_suggestion
from lsp_server.services.scheduler import CancelToken
from models.healing import Prompt
from models.runtime import DecodeResult
from tests.test_postprocess import ctx_at, single


def loop_cut(src: str, raw: str, multiline: bool = False) -> str:
    return trim_suggestion(raw, ctx_at(src), multiline=multiline, loop_cut=True)


@pytest.mark.parametrize("src, raw", [
    ("out = subprocess.che|\n", "ck_output(vcvarsall, v"),
    ("        wait([self|])\n", "._pid, self"),
    ("from pygments.token import Token, Name, Operator, Keyword, Generic|\n", "hlet, Gene"),
    ("assert t.type == tokenize.ENCO|\n", "DING_TAY_STR"),
])
def test_a_loop_cut_line_that_ends_inside_a_word_is_not_shown(src, raw):
    assert loop_cut(src, raw) == ""
    # the same text ended by the model itself is shaped as before
    assert single(src, raw) != ""


@pytest.mark.parametrize("src, raw, expected", [
    ("x = [0, 0, 0|\n", ", 0", ", 0"),  # a whole number: the copy of `, 0` ends there
    ("KW = (\n    'goto', |\n)\n", "'inline',", "'inline',"),  # it ends between words
    ("out = subprocess.che|\n", "ck_output(\nvcvarsall, v", "ck_output("),  # not on its first line
])
def test_a_loop_cut_line_that_ends_between_words_is_shaped_as_any_other(src, raw, expected):
    assert loop_cut(src, raw) == expected


def test_the_service_tells_the_shaping_when_a_loop_cut_ended_the_text():
    def complete(reason: str) -> str:
        runtime = SimpleNamespace(
            name="stub", n_layers=1,
            completion_prompt=lambda *args, **kwargs: Prompt([1]),
            generate=lambda *args, **kwargs: DecodeResult(text="ck_output(vcvarsall, v", stop_reason=reason),
            suggestion_text=lambda ids, heal: "",
        )
        service = CompletionService()
        service.runtime = runtime
        settings = Settings(multiline=False)
        return service.complete(ctx_at("out = subprocess.che|\n"), settings, CancelToken()).text

    assert complete("repeat") == ""
    assert complete("stop") == "ck_output(vcvarsall, v"


@pytest.mark.parametrize("src, raw", [
    ('def f(path):\n    log.info("addin|\n    return 1\n', "g '%s'\", path)"),
    ('def f():\n    raise UnicodeError("undef|\n', 'ined encoding")'),
    ("x = f('a|\ny = 2\n", "b')"),
    ("tokens = [\n    (r'\\d+|\n    (r'x', Name),\n]\n", "', Number.Integer),"),
])
def test_closers_after_the_string_a_suggestion_closes_at_a_line_end_are_kept(src, raw):
    assert single(src, raw) == raw


def test_closers_after_the_string_are_still_dropped_where_the_lines_below_close_them():
    # read as code, the `)` of the line below closes the call: the suggestion's would close nothing
    assert single('x = compute("a|\n)\n', 'b")') == 'b"'
    # inside the string, a closer is its text
    assert single('x = compute("see (|\n', "b)") == "b)"


@pytest.mark.parametrize("src, raw, expected", [
    ("def f(value):\n    value = lis|)\n    return value\n", "t(value)", "t(value"),
    ("class A:\n    filenames |]\n", '= ["wowtoc"]', '= ["wowtoc"'),
    ("def f(self):\n    return self._getres|)\n", "ponse()", "ponse("),
    ("class N|):\n    pass\n", "ullOwl(NullOwl):", "ullOwl(NullOwl"),
])
def test_the_suggestions_own_last_closer_is_dropped_where_the_editor_has_it(src, raw, expected):
    assert single(src, raw) == expected


@pytest.mark.parametrize("src, raw", [
    ("print(|)\n", "foo()"),  # the editor's `)` closes `print(`
    ("x = [f(|)]\n", "g(1)"),
])
def test_the_suggestions_own_last_closer_stays_where_the_editors_closes_something_else(src, raw):
    assert single(src, raw) == raw
