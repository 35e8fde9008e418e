"""Trim a raw model continuation to the suggestion shown to the user.

Single-line mode keeps the rest of the cursor line. Multi-line mode keeps whole lines and
ends the suggestion where the code block or bracketed construct it started ends, preferring
(via tree-sitter, when cheap) a cut that adds no syntax errors to the prefix. Both modes drop
closing brackets/quotes the editor already has after the cursor and return ``''`` for
suggestions that are empty or just repeat neighbouring text.
"""

from __future__ import annotations

import re

from .context import CompletionContext
from models.syntax import available, error_count, is_python

__all__ = ["trim_suggestion", "first_line"]

_OPEN = "([{"
_CLOSE = ")]}"
_MATCH = {")": "(", "]": "[", "}": "{"}
_QUOTES = "\"'`"

# Tokens that matter for bracket balance: comments and complete strings are skipped.
_BRACKET_TOKENS = re.compile(
    r"#[^\n]*"
    r'|"""[\s\S]*?"""' r"|'''[\s\S]*?'''"
    r'|"(?:[^"\\\n]|\\.)*"' r"|'(?:[^'\\\n]|\\.)*'"
    r"|[()\[\]{}]|[\"'`]"
)

# Tree-sitter check limits ("when cheap").
_TS_MAX_LINES = 12
_TS_MAX_CHARS = 4000
_TS_PREFIX_CHARS = 3000


def first_line(s: str) -> str:
    """``s`` up to (not including) its first line break."""
    for i, ch in enumerate(s):
        if ch == "\n" or ch == "\r":
            return s[:i]
    return s


def _indent_width(line: str) -> int:
    return len(line[: len(line) - len(line.lstrip(" \t"))].expandtabs(8))


def _open_stack(text: str) -> list[str]:
    """Brackets left open at the end of ``text`` (strings and comments skipped)."""
    stack: list[str] = []
    for m in _BRACKET_TOKENS.finditer(text):
        tok = m.group()
        if tok in _OPEN:
            stack.append(tok)
        elif tok in _CLOSE and stack and stack[-1] == _MATCH[tok]:
            stack.pop()
    return stack


def _outer_marks(s: str) -> list[bool]:
    """For each char of ``s``: is it a closer/quote that closes something opened *before*
    ``s`` (a bracket with no opener in ``s``, or an unpaired quote)?"""
    marks = [False] * len(s)
    stack: list[str] = []
    for m in _BRACKET_TOKENS.finditer(s):
        tok = m.group()
        if tok in _OPEN:
            stack.append(tok)
        elif tok in _CLOSE:
            if stack and stack[-1] == _MATCH[tok]:
                stack.pop()
            else:
                marks[m.start()] = True
        elif tok in _QUOTES:  # a quote not part of a complete string in ``s``
            marks[m.start()] = True
    return marks


def _drop_duplicate_closers(s: str, ctx: CompletionContext) -> str:
    """When the rest of the cursor line is only closing brackets/quotes, drop the end of
    ``s`` that would close the same things again (suffix ``)``, suggestion ``foo)`` ->
    ``foo``). Brackets are dropped only beyond what the prefix leaves open, so
    ``print(bar(`` + ``x)`` keeps its ``)`` when the suffix has one ``)``."""
    closers = "".join(ctx.line_suffix.split())
    if not closers or any(c not in _CLOSE + _QUOTES for c in closers):
        return s
    body = s.rstrip()
    if not body:
        return s
    marks = _outer_marks(body)
    outer_brackets = sum(1 for i, c in enumerate(body) if marks[i] and c in _CLOSE)
    suffix_brackets = sum(1 for c in closers if c in _CLOSE)
    open_in_prefix = len(_open_stack(ctx.prefix))
    excess = outer_brackets + suffix_brackets - open_in_prefix
    for k in range(min(len(closers), len(body)), 0, -1):
        tail = closers[:k]
        if not body.endswith(tail):
            continue
        if not all(marks[len(body) - k + i] for i in range(k)):
            continue
        if sum(1 for c in tail if c in _CLOSE) > excess:
            continue
        return body[:-k]
    return s


def _block_indent(lines: list[str], ctx: CompletionContext) -> int:
    """Indentation below which a following line ends the suggestion."""
    if ctx.line_prefix.strip():
        base = _indent_width(ctx.line_prefix)
        cursor_line = ctx.line_prefix + lines[0]
    else:
        base = _indent_width(ctx.line_prefix + lines[0]) if lines[0].strip() else _indent_width(ctx.line_prefix)
        cursor_line = ctx.line_prefix + lines[0]
    if cursor_line.rstrip().endswith(":"):  # a header: the block is its body
        for line in lines[1:]:
            if line.strip():
                body = _indent_width(line)
                return body if body > base else base + 1
        return base + 1
    return base


def _rule_cut(lines: list[str], ctx: CompletionContext) -> list[str]:
    """Whole lines up to the end of the block / bracketed construct the suggestion is in."""
    block = _block_indent(lines, ctx)
    outer = len(_open_stack(ctx.prefix))  # brackets the cursor is already inside
    depth = outer
    spanned = False
    kept: list[str] = []
    for i, line in enumerate(lines):
        stripped = line.strip()
        if i > 0 and stripped and depth <= outer and stripped[0] not in _CLOSE and _indent_width(line) < block:
            # A dedent ends the block. Exempt: lines inside brackets the suggestion opened
            # (continuation lines indent freely) and closing lines (the bracket rule decides).
            break
        kept.append(line)
        for m in _BRACKET_TOKENS.finditer(line):
            tok = m.group()
            if tok in _OPEN:
                depth += 1
            elif tok in _CLOSE:
                depth -= 1
        if depth > outer:
            spanned = True
        elif depth < outer or spanned:
            break  # the enclosing construct closed, or one the suggestion opened across lines
    while kept and not kept[-1].strip():
        kept.pop()
    return kept


def _syntax_tail(prefix: str) -> str:
    """The end of the prefix, from an unindented line if one is near, for cheap parsing."""
    if len(prefix) <= _TS_PREFIX_CHARS:
        return prefix
    tail = prefix[-_TS_PREFIX_CHARS:]
    m = re.search(r"\n(?=[^ \t\r\n#])", tail)
    if m is None:
        m = re.search(r"\n", tail)
    return tail[m.end() :] if m else tail


def _tree_cut(kept: list[str], ctx: CompletionContext) -> list[str]:
    """Longest prefix of ``kept`` lines whose addition brings no new syntax errors."""
    if len(kept) <= 1 or len(kept) > _TS_MAX_LINES or not is_python(ctx.language_id) or not available():
        return kept
    if sum(len(x) + 1 for x in kept) > _TS_MAX_CHARS:
        return kept
    head = _syntax_tail(ctx.prefix)
    base = error_count(head)
    for n in range(len(kept), 0, -1):
        if not kept[n - 1].strip():
            continue
        if error_count(head + "\n".join(kept[:n])) <= base:
            return kept[:n]
    return kept


def _repeats_neighbours(s: str, ctx: CompletionContext) -> bool:
    """The suggestion only re-types the rest of the line, the line above, or the line below."""
    stripped = s.strip()
    if ctx.line_suffix.strip() and stripped == ctx.line_suffix.strip():
        return True
    if "\n" in stripped:
        return False
    whole = (ctx.line_prefix + first_line(s)).strip()
    prev = ctx.previous_line
    if prev is not None and prev.strip() and whole == prev.strip():
        return True
    if not ctx.line_suffix.strip():
        following = ctx.suffix.split("\n")
        if len(following) > 1 and following[1].strip() and whole == following[1].strip():
            return True
    return False


def trim_suggestion(raw: str, ctx: CompletionContext, *, multiline: bool) -> str:
    """Trim ``raw`` (the model's continuation at ``ctx``'s cursor) to the suggestion to show."""
    if not raw or not raw.strip():
        return ""
    text = raw.replace("\r\n", "\n").replace("\r", "\n")
    if multiline:
        kept = _rule_cut(text.split("\n"), ctx)
        kept = _tree_cut(kept, ctx)
        s = "\n".join(line.rstrip() for line in kept)
    else:
        s = first_line(text)
    s = s.rstrip()
    if not s.strip():
        return ""
    s = _drop_duplicate_closers(s, ctx).rstrip()
    if not s.strip() or _repeats_neighbours(s, ctx):
        return ""
    return s
