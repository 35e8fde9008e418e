"""Completion context windows and tree-sitter cursor facts."""

from __future__ import annotations

import pytest

from models import syntax
from lsp_server.services.context import MAX_SNAP, PREFIX_GRID, build_context, prefix_window_start
from lsp_server.services.positions import LineIndex, Position, position_at
from models.syntax import NEUTRAL_FACTS, CursorFacts, cursor_facts, error_count, has_error, node_at, parse
from tests.lsp_support import best_time

EMOJI = "\U0001f600"


def facts(src: str, language_id: str = "python") -> CursorFacts:
    """Cursor facts at the ``|`` marker."""
    i = src.index("|")
    return cursor_facts(src.replace("|", "", 1), i, language_id)


def ctx_at(src: str, **kw):
    i = src.index("|")
    text = src.replace("|", "", 1)
    return build_context(text, position_at(text, i), **kw)


# --- cursor facts --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "src",
    [
        'x = "abc|"\n',
        "x = 'a|'\n",
        's = """abc\nde|f\n"""\n',
        'x = "abc|\ny = 2\n',  # unterminated: the tree has an ERROR, the lexer decides
        's = """abc\nde|f\n',  # unterminated triple-quoted string
        'x = f"a|{b}"\n',
        'x = "|"\n',
        "x = 'abc\\|",  # a backslash last in the document: the scan failed, and the facts were neutral
        'x = "abc\\|',
    ],
)
def test_in_string(src):
    f = facts(src)
    assert f.in_string and not f.in_comment


@pytest.mark.parametrize(
    "src",
    [
        'x = "abc"|\n',
        'x = |"abc"\n',
        'x = f"a{b|}c"\n',  # code inside an f-string's braces
        "x = foo(|)\n",
        'x = "a" + (b|\n',  # error in the tree, but not in a string
        "x = 'it''s'|\n",
    ],
)
def test_not_in_string(src):
    assert not facts(src).in_string


@pytest.mark.parametrize(
    "src",
    ["x = 1  # note|\ny = 2\n", "# top|", "def f():\n    # inside|\n    pass\n", "x = (1,\n  # c|\n"],
)
def test_in_comment(src):
    f = facts(src)
    assert f.in_comment and not f.in_string


def test_hash_in_string_is_not_a_comment():
    assert not facts('x = "# not a comment|"\n').in_comment
    assert facts('x = "# not a comment|"\n').in_string
    assert not facts('x = "#" + y|\n').in_comment
    assert not facts('x = "#" + (y|\n').in_comment  # with a syntax error: lexical fallback


def test_block_depth_nested_def_if():
    nested = "def f(x):\n    if x:\n        return x|\n"
    assert facts(nested).block_depth == 2
    assert facts("x = 1|\n").block_depth == 0
    assert facts("class A:\n    def m(self):\n        for i in r:\n            if i:\n                go(i|)\n").block_depth == 4
    f = facts(nested)
    assert f.node_type == "identifier" and f.parent_type == "return_statement"


def test_block_depth_on_blank_lines_follows_indentation():
    body = "def f(x):\n    if x:\n        y = 1\n"
    assert facts(body + "        |\n").block_depth == 2
    assert facts(body + "    |\n").block_depth == 1
    assert facts(body + "|\n").block_depth == 0
    # Between statements, inside the block.
    assert facts(body + "        |\n        z = 2\n").block_depth == 2
    # After a header whose body is not written yet.
    assert facts("def f(x):\n    if x:\n        |").block_depth == 2
    assert facts("def f(x):\n    |").block_depth == 1
    assert facts("d = {\n    1:\n|").block_depth == 0  # a dict colon is not a header


def test_non_python_gives_neutral_facts():
    assert facts('x = "abc|"', language_id="javascript") == NEUTRAL_FACTS
    assert facts("x|", language_id="") == NEUTRAL_FACTS


def test_facts_survive_odd_input():
    assert isinstance(cursor_facts("a\x00b\ud800c", 3), CursorFacts)
    assert cursor_facts("", 0).block_depth == 0
    assert cursor_facts("x = 1", 999).node_type  # offset clamped
    f = cursor_facts(f"s = '{EMOJI}ab'\n", 7)  # non-ASCII before the cursor: byte offsets
    assert f.in_string and f.node_type == "string_content"


def test_facts_on_a_huge_file_use_a_window_and_stay_fast():
    filler = "def g{i}(a):\n    return a + {i}\n\n"
    head = "".join(filler.format(i=i) for i in range(60_000))  # ~2 MB
    text = head + "class K:\n    def m(self):\n        if self:\n            s = 'ab"
    f = cursor_facts(text, len(text))
    assert f.in_string and f.block_depth == 3
    # Measured against parsing the whole file on the same machine (~0.4 s; the windowed facts ~150 times less),
    # so that a slow or busy machine scales both; the fastest of three runs leaves out a preemption.
    windowed = best_time(lambda: cursor_facts(text, len(text)), repeats=3)
    whole = best_time(lambda: parse(text), repeats=1)
    assert windowed < whole / 10, (windowed, whole)


def test_parse_helpers():
    tree = parse("def f():\n    return 1\n")
    assert tree.root_node.type == "module" and not tree.root_node.has_error
    assert node_at(tree, 4).type == "identifier"
    assert not has_error("x = 1\n") and error_count("x = 1\n") == 0
    assert has_error("def f(:\n") and error_count("def f(:\n") >= 1
    assert error_count("x = (1,\ny = [") >= 1
    assert syntax.available()


# --- context windows -----------------------------------------------------------------------


def test_basic_context_fields():
    c = ctx_at(f"import os\ns = '{EMOJI}' + fo|o(1)\nprint(s)\n")
    assert c.line_prefix == f"s = '{EMOJI}' + fo"
    assert c.line_suffix == "o(1)"
    assert c.prefix == f"import os\ns = '{EMOJI}' + fo"
    assert c.suffix == "o(1)\nprint(s)\n"
    assert c.position == Position(1, 13)  # the emoji counts 2 UTF-16 units
    assert c.previous_line == "import os"
    assert c.mid_line and c.prefix_start == 0
    assert c.facts.node_type == "identifier"


def test_crlf_context():
    c = ctx_at("a = 1\r\nb = |2\r\nc = 3\r\n")
    assert c.line_prefix == "b = " and c.line_suffix == "2"
    assert c.previous_line == "a = 1"
    assert c.position == Position(1, 4)


def test_position_is_clamped():
    text = "ab\ncd"
    c = build_context(text, Position(9, 9))
    assert c.offset == len(text) and c.position == Position(1, 2) and c.suffix == ""
    c = build_context(text, Position(0, 9))
    assert c.offset == 2 and c.line_suffix == "" and c.suffix == "\ncd"


def test_suffix_is_cut_at_a_line_boundary():
    text = "x = |1\n" + "".join(f"line_{i} = {i}\n" for i in range(100))
    c = ctx_at(text, suffix_chars=40)
    assert c.suffix.endswith("\n") and len(c.suffix) <= 40
    assert c.suffix.startswith("1\nline_0 = 0\n")
    # A suffix window that ends inside one long line keeps the partial line.
    c = ctx_at("x = |" + "y" * 100, suffix_chars=10)
    assert c.suffix == "y" * 10


def _code(n_lines: int) -> str:
    return "".join(f"value_{i} = compute({i}, {i * 7})\n" for i in range(n_lines))


def test_prefix_start_is_a_line_start_and_window_big_enough():
    text = _code(2000)
    idx = LineIndex(text)
    for offset in range(5000, len(text), 997):
        start = prefix_window_start(text, offset, 4096)
        assert start == 0 or text[start - 1] == "\n"
        assert offset - start >= 4096 - 40  # at most one line lost to snapping
        assert offset - start <= 4096 + PREFIX_GRID
        assert start in idx.starts


def test_prefix_start_is_stable_while_typing():
    text = _code(500)
    cursor = len(text) // 2
    cursor = text.index("\n", cursor) + 1
    starts = []
    prev_prefix = None
    grows = 0
    typed = "result = model.forward(tokens, cache=kv)  # typed one char at a time\n"
    assert (cursor - 2048) % PREFIX_GRID + 1000 >= PREFIX_GRID  # this run crosses the grid once
    for ch in (typed * 15)[:1000]:
        text = text[:cursor] + ch + text[cursor:]
        cursor += 1
        c = build_context(text, position_at(text, cursor), prefix_chars=2048, with_facts=False)
        starts.append(c.prefix_start)
        if prev_prefix is not None and c.prefix_start == starts[-2]:
            assert c.prefix == prev_prefix + ch  # the prompt only grows at its end
            grows += 1
        prev_prefix = c.prefix
    # 1000 chars typed: the start moved exactly once (at the one grid crossing), forward.
    assert len(set(starts)) == 2 and starts == sorted(starts)
    assert grows == len(starts) - 2


def test_prefix_window_on_one_very_long_line():
    text = "x" * 10_000
    start = prefix_window_start(text, 9_000, 2048)
    assert start == ((9_000 - 2048) // PREFIX_GRID) * PREFIX_GRID
    assert prefix_window_start(text, 9_001, 2048) == start


def test_a_long_line_across_the_grid_point_keeps_the_window_full():
    """Snapping to the first line start after the grid point took a long line along: after a 3,400-char table the
    window held only the cursor line, and nothing at all right after Enter."""
    text = "import os\n\nTABLE = [" + ", ".join(str(i) for i in range(700)) + "]\n"
    assert len(text) > 3 * PREFIX_GRID and text.count("\n") == 3
    for typed in ("", "def lookup(i):\n    return TAB"):
        t = text + typed
        c = build_context(t, position_at(t, len(t)), prefix_chars=1024, with_facts=False)
        assert len(c.prefix) >= 1024 - MAX_SNAP
    # still stable while typing after it: the start depends on the text near the grid point only
    starts = {prefix_window_start(text + "x" * n, len(text) + n, 1024) for n in range(0, 200)}
    assert len(starts) == 1
    # a CRLF that straddles the bound is taken whole, not split
    crlf = "a" * (PREFIX_GRID + MAX_SNAP - 1) + "\r\n" + "b = 1\r\n" * 300
    start = prefix_window_start(crlf, len(crlf), 1024 + 300 * 7 - PREFIX_GRID - MAX_SNAP)
    assert crlf[start - 1 : start + 1] != "\r\n"


def test_context_with_document_index_matches_without():
    text = _code(300) + f"s = '{EMOJI}'\r\n  tail"
    idx = LineIndex(text)
    for pos in [Position(5, 3), Position(300, 6), Position(301, 2), Position(50, 999), Position(999, 0)]:
        a = build_context(text, pos, index=idx, prefix_chars=1500, suffix_chars=300)
        b = build_context(text, pos, prefix_chars=1500, suffix_chars=300)
        assert a == b


def test_summary_has_sizes_and_facts_but_no_source_text():
    c = ctx_at("secret_token = 'hunter2'\nif secret_token:\n    pri|nt(1)\n")
    s = c.summary()
    assert s["line"] == 2 and s["character"] == 7
    assert s["line_prefix_chars"] == 7 and s["line_suffix_chars"] == 5
    assert s["block_depth"] == 1 and s["in_string"] is False
    assert s["prefix_chars"] == len(c.prefix)
    flat = repr(s)
    assert "hunter2" not in flat and "secret_token" not in flat
    text_values = {k: v for k, v in s.items() if isinstance(v, str)}
    assert set(text_values) == {"language_id", "node_type", "parent_type"}


@pytest.mark.parametrize(
    "src",
    [
        "# c\ndef f(x):\n    if x:\n        return x|\n",
        "# c\nx = 1  # note|\ny = 2\n",
        "# c\nx = 1\ny = 'ab|'\n",
        "# c\ndef f(x):\n    if x:\n        y = 1\n    |\n",
    ],
)
def test_cursor_facts_in_a_document_broken_by_lone_carriage_returns_are_those_with_line_feeds(src):
    """Tree-sitter's grammar takes no lone CR for a line break (LSP and Python do): everything after the first comment
    of such a document read as that comment (in_comment, block depth 0)."""
    assert facts(src.replace("\n", "\r")) == facts(src) == facts(src.replace("\n", "\r\n"))


def test_cursor_facts_in_a_huge_document_broken_by_lone_carriage_returns_parse_from_a_line_start():
    """The window of a huge document started at a line found by LF alone: in a lone-CR document at no line start,
    here inside a docstring, whose closing quotes then opened a string running to the cursor."""
    unit = 'def g(a):\n    """' + "d" * 2000 + '"""\n    return a\n\n'
    tail = "class K:\n    def m(self):\n        if self:\n            return sel"
    text = unit * 30 + tail
    assert len(text) > syntax.WINDOW_BEFORE + syntax.WINDOW_AFTER
    assert text[len(text) - syntax.WINDOW_BEFORE - 1] == "d"  # the window's first guess lies inside a docstring
    assert cursor_facts(text.replace("\n", "\r"), len(text)) == cursor_facts(text, len(text))
    f = cursor_facts(text, len(text))
    assert not f.in_string and f.block_depth == 3


@pytest.mark.parametrize("prefix_chars", [0, 1, 100, 700])
def test_a_window_setting_under_the_grid_bounds_the_prefix(prefix_chars):
    """The window started on a grid of 1024 whatever the setting: 0 still gave the model up to 1023 characters."""
    text = "".join(f"value_{i} = compute({i})\n" for i in range(300))
    for offset in range(len(text) - 3000, len(text), 97):
        start = prefix_window_start(text, offset, prefix_chars)
        assert offset - start <= 2 * prefix_chars
        if prefix_chars == 0:
            assert start == offset
