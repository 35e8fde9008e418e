"""Where a multi-line suggestion ends: never on a line the token limit stopped, never on a copy of the lines below,
and never before a header's body because a line of that body reads like the document's next line at another depth.

Each case was shown before: the token limit left `self.real` as the suggestion's last line, and a loop cut a
half-written copy of the line below; a first line that made the cursor line a copy of the line below brought the
lines after it again; and `return None` in an `if` body cut the suggestion before it, where the document's own
`return None` followed one level up."""

from __future__ import annotations

import pytest

from lsp_server.services.postprocess import trim_suggestion
from tests.test_postprocess import ctx_at, multi, single


def cut_short(src: str, raw: str) -> str:
    return trim_suggestion(raw, ctx_at(src), multiline=True, cut_short=True)


@pytest.mark.parametrize("src, raw, expected", [
    ("class Cfg:\n    def finalize_options(self):|\n\n    def run(self):\n        pass\n",
     "\n        if self.repository is None:\n            self.repository = self.DEFAULT_REPOSITORY\n"
     "        if self.realm is None:\n            self.real",
     "\n        if self.repository is None:\n            self.repository = self.DEFAULT_REPOSITORY"),
    ("def f(self):\n    extracted_list = []|\n    return extracted_list\n",
     "\n    checked = set()\n    for f in task.get_stack(limit=limit):\n        lineno = f.f_lineno\n        name = co",
     "\n    checked = set()\n    for f in task.get_stack(limit=limit):\n        lineno = f.f_lineno"),
])
def test_a_line_the_model_stopped_writing_is_left_out(src, raw, expected):
    assert cut_short(src, raw) == expected
    # the same text ended by the model itself keeps its last line, and single-line mode its first
    if expected:
        assert multi(src, raw).endswith(raw.rsplit("\n", 1)[-1])
    assert trim_suggestion(raw, ctx_at(src), multiline=False, cut_short=True) == single(src, raw)


@pytest.mark.parametrize("src, raw", [
    # the last line closes the docstring the lines before it opened
    ("def read(path):|\n", '\n    """Read a file.\n\n    More text.\n    """'),
    # the last line is the only body of a header with no whole line before it
    ("def write(path, data):|\n", "\n    if not os.path.exists(path):\n        return None"),
])
def test_a_last_line_the_rest_cannot_end_without_stays(src, raw):
    assert cut_short(src, raw) == raw


def test_a_last_line_that_starts_writing_the_line_below_again_is_left_out():
    # the model began to copy the line below (a loop cut ended it), whatever ended the text
    src = ('    def dump_struct(self, value, write):\n        self.memo[i] = None|\n'
           '        write("<value><struct>\\n")\n')
    assert multi(src, '\n        write("<value><') == ""
    assert multi(src, '\n        del self.memo[i]\n        write("<value><') == "\n        del self.memo[i]"


def test_a_suggestion_cut_short_on_its_first_line_keeps_it():
    # no whole line to end on: the cursor line's completion is all there is, as single-line mode shows it
    assert cut_short("def f(x):\n    return x + |\n", "compute(x, y") == "compute(x, y"


@pytest.mark.parametrize("src, raw", [
    ("class P:\n    def __init__(self, a, b, c):\n        self.a = a\n        se|\n        self.b = b\n"
     "        self.c = c\n\n    def f(self):\n        pass\n", "lf.b = b\n        self.c = c\n\n    def f(self):"),
    ("def f(xs):\n    for x in xs:\n        total +|\n        total += x\n    return total\n",
     "= x\n    return total\n"),
])
def test_a_first_line_that_copies_the_line_below_is_not_offered_with_the_lines_after_it(src, raw):
    assert single(src, raw) == ""
    assert multi(src, raw) == ""


@pytest.mark.parametrize("src, raw, expected", [
    ("def get(d, k):\n    v = d.get(k)|\n    return None\n",
     "\n    if v is None:\n        return None\n    return v.value\n",
     "\n    if v is None:\n        return None\n    return v.value"),
    ("def f(a):\n    x = g(a)|\n    raise ValueError(a)\n",
     "\n    if not x:\n        raise ValueError(a)\n    return x\n",
     "\n    if not x:\n        raise ValueError(a)\n    return x"),
])
def test_a_body_line_like_the_next_line_at_another_depth_is_no_copy_of_it(src, raw, expected):
    out = multi(src, raw)
    assert out == expected
    text, i = src.replace("|", ""), src.index("|")
    compile(text[:i] + out + text[i:], "accepted", "exec")


def test_a_copy_of_the_next_line_at_its_depth_still_ends_the_suggestion():
    src = "class P:\n    def __init__(self, x, y):\n        self.x = x|\n        self.y = y\n"
    assert multi(src, "\n        self.z = 0\n        self.y = y\n        self.w = 1\n") == "\n        self.z = 0"


def test_the_default_model_cut_at_its_token_limit_ends_multi_line_suggestions_on_whole_lines():
    """The service tells the shaping when the model did not end its text: the line the token limit stopped is out."""
    from lsp_server.config import Settings
    from lsp_server.services.completion import CompletionService
    from lsp_server.services.positions import LineIndex, Position
    from lsp_server.services.scheduler import CancelToken
    from tests.lsp_support import model_under_test

    service = CompletionService()
    assert service.load(str(model_under_test())).ready
    text = ("import os\n\n\ndef read(path):\n    with open(path) as f:\n        return f.read()\n\n\n"
            "def write(path, data):\n    \n")
    settings = Settings(multiline=True, max_new_tokens=20, stop_threshold=1.01)
    cut = 0
    for line, character in [(4, 25), (9, 4), (3, 15), (8, 22)]:
        ctx = service.context(LineIndex(text), "python", Position(line, character), settings)
        s = service.complete(ctx, settings, CancelToken())
        if s.result.stop_reason == "max_tokens" and "\n" in s.raw.strip("\n") and "\n" in s.text:
            last = s.text.rsplit("\n", 1)[-1]
            assert last + "\n" in s.raw, (s.raw, s.text)  # a whole line of the raw text, not its cut end
            cut += 1
    assert cut > 0  # a multi-line suggestion cut at the token limit was shaped


@pytest.mark.parametrize("language_id, src, raw, expected", [
    # an empty first line, or one that makes the cursor line equal the line below at another depth, is no copy
    ("rust", "/// Summary.\n///|\n///\n/// More.\nfn f() {}\n", "\n/// Details that go here.\n/// And more.\n",
     "\n/// Details that go here.\n/// And more."),
    ("shellscript", "f() {\n\tcase $1 in\n\t\t-*)\n\t\t\tCOMPREPLY=(a)\n\t\t\treturn 0|\n\treturn 0\n}\n",
     "\n\t\t\t;;\n\tesac\n", "\n\t\t\t;;"),
    ("python", "def f(self, f):\n    try:\n        pass\n    except:\n        if|\n    if self._locked:\n        g()\n",
     " self._locked:\n            _unlock_file(f)\n        raise\n", " self._locked:\n            _unlock_file(f)"),
    # a finished last line (a line break after it) that the line below starts with is the model's line
    ("python", "class A:\n    def __gt__(self, other):\n        i|\n            return self._when > other._when or "
     "self.eq(other)\n        return NotImplemented\n",
     "f isinstance(other, TimerHandle):\n            return self._when > other._when\n        return NotImplemented\n",
     "f isinstance(other, TimerHandle):\n            return self._when > other._when"),
    ("rust", "/// Returns a pointer to the kernel dispatch |\n/// # Examples\nfn f() {}\n", "packet.\n///\n",
     "packet.\n///"),
])
def test_what_only_looks_like_a_copy_of_the_line_below_stays(language_id, src, raw, expected):
    assert trim_suggestion(raw, ctx_at(src, language_id), multiline=True) == expected


@pytest.mark.parametrize("language_id, src, raw, expected", [
    # a quote in prose or in a language where `'` opens no string may still close the quoted text the cursor is in
    ("markdown", "```js\nswitch (x) {\n  case 'test:pla|':\n    break;\n}\n```\n", "n':\n    break;", "n"),
    ("restructuredtext", ".. code:: python\n\n   x = f('|')\n", "abc')\n", "abc"),
    ("rust", "fn f() {\n    let c = '|';\n}\n", "x';\n", "x"),
    ("plaintext", "He said 'hel|'\n", "lo'\n", "lo"),
])
def test_a_quote_closing_the_quoted_text_the_cursor_is_in_is_dropped(language_id, src, raw, expected):
    assert trim_suggestion(raw, ctx_at(src, language_id), multiline=False) == expected
