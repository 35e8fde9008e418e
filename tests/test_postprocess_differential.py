"""Suggestion shaping read by regex runs must give what the Python token loop gave, for every input.

The reference is the module with the functions that scanned the cursor line token by token put back as they were
(``FORMER_FUNCTIONS``); seeded random lines and suggestions (every quote kind, escapes, brackets, comments, tabs, CR
and CRLF, non-ASCII and surrogates) are shaped by both, single-line and multi-line. Which closers a suggestion keeps
is judged since by the document's brackets (`_bracket_errors`), so the former `_drop_duplicate_closers` is not among
them: both modules judge by the one rule, each with its own bracket reading."""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path

import pytest

import lsp_server.services.postprocess as current
from lsp_server.services.context import CompletionContext, build_context
from lsp_server.services.positions import Position, position_at
from models.syntax import CursorFacts

# The former definitions, as they were before the cursor line was read by regex runs.
FORMER_FUNCTIONS = r'''
def first_line(s: str) -> str:
    for i, ch in enumerate(s):
        if ch == "\n" or ch == "\r":
            return s[:i]
    return s


def _open_stack(text: str) -> list[str]:
    stack: list[str] = []
    pos = 0
    while (m := _BRACKET_TOKENS.search(text, pos)) is not None:
        tok, pos = m.group(), m.end()
        if tok in _OPEN:
            stack.append(tok)
        elif tok in _CLOSE and stack and stack[-1] == _MATCH[tok]:
            stack.pop()
        elif tok in _QUOTES:
            pos = text.find("\n", pos)
            if pos < 0:
                break
    return stack


def _is_header(line: str) -> bool:
    code = line
    for start, tok in _tokens(line):
        if tok.startswith("#"):
            code = line[:start]
            break
    return code.rstrip().endswith(":")


def _open_triple(prefix: str) -> str:
    start, tok = -1, ""
    for start, tok in _tokens(prefix):
        pass
    if not tok or start + len(tok) < len(prefix):
        return ""
    quotes = tok[:3]
    return quotes if quotes in ('"""', "\'\'\'") and (len(tok) < 6 or not tok.endswith(quotes)) else ""
'''


# The former token loop that judged a suggestion's closers by the cursor line alone (`test_postprocess_line_cost`
# shows its Python work grew with the line).
FORMER_CLOSER_LOOP = r'''
def _drop_duplicate_closers(s: str, ctx: CompletionContext) -> str:
    closers = "".join(_SUFFIX_CLOSERS.match(ctx.line_suffix).group().split())
    if not closers or closers[0] not in _CLOSE + _QUOTES:
        return s
    body = s.rstrip()
    if not body:
        return s
    marks = _outer_marks(body)
    outer_brackets = sum(1 for i, c in enumerate(body) if marks[i] and c in _CLOSE)
    suffix_marks = _outer_marks(ctx.line_suffix)
    suffix_brackets = sum(1 for i, c in enumerate(ctx.line_suffix) if suffix_marks[i] and c in _CLOSE)
    excess = outer_brackets + suffix_brackets - len(_open_stack(ctx.line_prefix))
    for k in range(min(len(closers), len(body)), 0, -1):
        tail = closers[:k]
        if not body.endswith(tail):
            continue
        if not all(marks[len(body) - k + i] for i, c in enumerate(tail) if c in _CLOSE + _QUOTES):
            continue
        if sum(1 for c in tail if c in _CLOSE) > excess:
            continue
        return body[:-k]
    return s
'''


def _former_module(functions: str, name: str):
    """A second copy of the module with ``functions`` in place of the new ones (its own globals, so the unchanged
    functions call the former helpers)."""
    spec = importlib.util.spec_from_file_location(f"lsp_server.services._postprocess_{name}", Path(current.__file__))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    exec(compile(functions, f"{name}_postprocess", "exec"), module.__dict__)
    return module


former = _former_module(FORMER_FUNCTIONS, "former")
former_token_loop = _former_module(FORMER_FUNCTIONS + FORMER_CLOSER_LOOP, "former_token_loop")

# Pieces of Python (and JavaScript) lines: every string kind, escapes, brackets, comments, headers' colons.
_PIECES = [
    '"', "'", "`", '"""', "'''", "\\", '\\"', "\\'", "\\`", "\\\\", '"a"', "'b'", '""', "''", "``", "`t`",
    'f"{x}"', "f'{y!r}'", 'r"\\d"', "rb'\\x'", 'b"\\x00"', "u'é'", '"""doc"""', "'''d'''", '""""', "''''",
    "(", ")", "[", "]", "{", "}", "()", "[]", "{}", "f(", "x[", ")]", "}]", "#", "# c(", ":", ",", ";", ".",
    " ", "  ", "\t", "a", "x", "if", "def", "return", "=", "+", "é", "\u00a0", "\U0001f600", "\ud83d", "\ude00",
    "\u2028", "\ufffd", "\x0c",
]
_BREAKS = ["\n", "\r\n", "\r"]
# A language without tree-sitter facts whose comments and strings are Python's, as the former scanners read every
# language (plaintext's apostrophes open no strings now).
_OTHER_LANGUAGE = "ruby"


def _line(rng: random.Random, pieces: int) -> str:
    return "".join(rng.choice(_PIECES) for _ in range(rng.randint(0, pieces)))


def _text(rng: random.Random, lines: int, pieces: int) -> str:
    out = []
    for _ in range(rng.randint(1, lines)):
        out.append(_line(rng, pieces))
        out.append(rng.choice(_BREAKS) if rng.random() < 0.2 else "\n")
    return "".join(out[:-1])


def _suggestion(rng: random.Random) -> str:
    lines = [_line(rng, 6) for _ in range(rng.randint(1, 4))]
    if rng.random() < 0.3:
        lines = ["    " * rng.randint(0, 2) + line for line in lines]
    s = rng.choice(["\n", "\r\n"]).join(lines)
    return (rng.choice(["", " ", "\n"]) if rng.random() < 0.2 else "") + s + rng.choice(["", "", " ", "\n", ")", '",'])


def _direct_context(rng: random.Random) -> CompletionContext:
    """A context made field by field (a line longer than the prefix window, one prefix with line breaks)."""
    prefix = _text(rng, 4, 10)
    line_prefix = prefix[max(prefix.rfind("\n"), prefix.rfind("\r")) + 1 :]
    if rng.random() < 0.2:
        line_prefix = _line(rng, 12) + line_prefix  # the cursor line starts before the prefix window
    line_suffix = _line(rng, 10) if rng.random() < 0.7 else rng.choice(["", " ", "\t"])
    if rng.random() < 0.3:  # the rest of the line starts with closers, a case `_drop_duplicate_closers` reads
        line_suffix = rng.choice([")", "]", "}", '"', "'", ")]", '")', " )", "),", '",']) + line_suffix
    suffix = line_suffix + (rng.choice(_BREAKS) + _text(rng, 3, 6) if rng.random() < 0.7 else "")
    facts = CursorFacts(in_string=rng.random() < 0.3)
    language = "python" if rng.random() < 0.1 else _OTHER_LANGUAGE
    return CompletionContext(prefix=prefix, suffix=suffix, line_prefix=line_prefix, line_suffix=line_suffix,
                             offset=len(prefix), position=Position(0, len(line_prefix)), facts=facts,
                             language_id=language)


def _document_context(rng: random.Random) -> CompletionContext:
    """A context as the server builds it from a document and a cursor."""
    text = _text(rng, 6, 10)
    offset = rng.randint(0, len(text))
    if text[offset - 1 : offset + 1] == "\r\n":
        offset -= 1
    return build_context(text, position_at(text, offset), language_id=rng.choice(["python", _OTHER_LANGUAGE]),
                         with_facts=rng.random() < 0.5)


@pytest.mark.parametrize("seed", range(8))
def test_suggestions_are_shaped_as_before(seed):
    rng = random.Random(20261206 + seed)
    for _ in range(2500):
        ctx = _document_context(rng) if rng.random() < 0.25 else _direct_context(rng)
        raw = _suggestion(rng)
        if rng.random() < 0.4:  # ending with what the rest of the line starts with: closers the shaping may drop
            raw = raw.rstrip() + ctx.line_suffix.lstrip()[: rng.randint(1, 4)]
        for multiline in (False, True):
            expected = former.trim_suggestion(raw, ctx, multiline=multiline)
            assert current.trim_suggestion(raw, ctx, multiline=multiline) == expected, (raw, ctx, multiline)


def _texts(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    return [_text(rng, 3, 14) for _ in range(count)]


def test_open_brackets_are_read_as_before():
    for text in _texts(1, 12000):
        assert current._open_stack(text) == "".join(former._open_stack(text)), repr(text)


def test_unmatched_closers_are_those_the_marks_give():
    for text in _texts(2, 12000):
        marks = former._outer_marks(text)
        expected = sum(1 for i, c in enumerate(text) if marks[i] and c in ")]}")
        assert current._unmatched_closers(text) == expected, repr(text)


def test_headers_and_open_triple_quotes_are_read_as_before():
    for text in _texts(3, 12000):
        line = text.replace("\n", " ")
        assert current._is_header(line) == former._is_header(line), repr(line)
        assert current._is_header(line + ":") == former._is_header(line + ":"), repr(line)
        assert current._open_triple(text) == former._open_triple(text), repr(text)


def test_first_line_is_read_as_before():
    for text in _texts(4, 5000):
        assert current.first_line(text) == former.first_line(text), repr(text)


@pytest.mark.parametrize("text", [
    "", '"', '"""', '""""', '"""""', '""""""', "'''a", '"""a\n"""', '\\"' * 9, '"\\"' + "(" * 3, "'\\'\n(",
    '"a\\\n("', '"a\\', "`a\\`b`(", "# (\n(", '(\'"\n"(', '\'\'\' ( \n \' \n\'\'\' (', '"x" \' "(" \n\'(',
    "(" * 40 + ")" * 39, "([{" * 30 + "}])" * 29, "(]" * 50, ")" * 9 + "(" * 9, "([)]" * 20, "({)}[(])" * 9,
])
def test_corner_cases_are_read_as_before(text):
    assert current._open_stack(text) == "".join(former._open_stack(text))
    marks = former._outer_marks(text)
    assert current._unmatched_closers(text) == sum(1 for i, c in enumerate(text) if marks[i] and c in ")]}")
    assert current._open_triple(text) == former._open_triple(text)
    line = text.replace("\n", " ") + ":"
    assert current._is_header(line) == former._is_header(line)


def test_deep_nesting_past_the_regex_passes_is_read_as_before():
    """More nesting levels than `_NEUTRAL_PASSES`: the rest is finished on a stack, with the same result."""
    rng = random.Random(5)
    for _ in range(300):
        depth = rng.randint(current._NEUTRAL_PASSES - 2, current._NEUTRAL_PASSES * 3)
        text = "".join(rng.choice("([{") for _ in range(depth))
        text += "".join(rng.choice(")]}") if rng.random() < 0.7 else rng.choice(["'a'", "# x\n", "x", "\n"])
                        for _ in range(rng.randint(0, depth + 3)))
        assert current._open_stack(text) == "".join(former._open_stack(text)), repr(text)
        marks = former._outer_marks(text)
        assert current._unmatched_closers(text) == sum(1 for i, c in enumerate(text) if marks[i] and c in ")]}")
