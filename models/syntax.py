"""The one wrapper around tree-sitter: parsing, cursor facts, error counts.

The Python grammar is loaded once, lazily; each thread gets its own ``Parser`` (parsers are
not thread-safe). Offsets given to this module are Python ``str`` indices; tree-sitter works
in UTF-8 bytes, converted here. Lone surrogates are encoded with ``surrogatepass`` so odd
text never raises.

Languages other than Python, or a missing tree-sitter, give neutral :class:`CursorFacts`
instead of failing.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CursorFacts",
    "NEUTRAL_FACTS",
    "PYTHON_LANGUAGE_IDS",
    "available",
    "cursor_facts",
    "error_count",
    "has_error",
    "is_python",
    "node_at",
    "parse",
    "tree_error_count",
]

PYTHON_LANGUAGE_IDS = frozenset({"python", "py", "python3"})

# Window parsed around the cursor for big files (chars).
WINDOW_BEFORE = 20_000
WINDOW_AFTER = 4_000
_ANCHOR_SEARCH = 20_000  # how far back to look for a top-level line to start the window on

_ENC = "utf-8"
_ERRORS = "surrogatepass"


@dataclass(frozen=True)
class CursorFacts:
    """Syntactic facts at the cursor (no source text: safe for telemetry)."""

    node_type: str = ""
    in_string: bool = False
    in_comment: bool = False
    block_depth: int = 0
    parent_type: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "node_type": self.node_type,
            "in_string": self.in_string,
            "in_comment": self.in_comment,
            "block_depth": self.block_depth,
            "parent_type": self.parent_type,
        }


NEUTRAL_FACTS = CursorFacts()

_load_lock = threading.Lock()
_language: Any = None
_load_failed = False
_local = threading.local()


def _get_language() -> Any:
    global _language, _load_failed
    if _language is not None or _load_failed:
        return _language
    with _load_lock:
        if _language is None and not _load_failed:
            try:
                import tree_sitter
                import tree_sitter_python

                _language = tree_sitter.Language(tree_sitter_python.language())
            except Exception:  # pragma: no cover - depends on the install
                _load_failed = True
    return _language


def available() -> bool:
    """Whether the Python grammar could be loaded."""
    return _get_language() is not None


def _parser() -> Any:
    p = getattr(_local, "parser", None)
    if p is None:
        lang = _get_language()
        if lang is None:
            raise RuntimeError("tree-sitter Python grammar is not available")
        import tree_sitter

        p = tree_sitter.Parser(lang)
        _local.parser = p
    return p


def is_python(language_id: str | None) -> bool:
    return (language_id or "").lower() in PYTHON_LANGUAGE_IDS


_LONE_CR = re.compile(r"\r(?!\n)")


def _lone_cr_as_lf(text: str) -> str:
    """``text`` with each lone CR written as LF. Python and LSP count a lone CR as a line break, tree-sitter's grammar
    does not: after the first comment of such a document everything read as that comment. The same length, so
    offsets stay valid."""
    return _LONE_CR.sub("\n", text) if "\r" in text else text


def parse(text: str) -> Any:
    """Parse ``text`` as Python; returns a ``tree_sitter.Tree``."""
    return _parser().parse(_lone_cr_as_lf(text).encode(_ENC, _ERRORS))


def node_at(tree: Any, byte_offset: int) -> Any:
    """Smallest node spanning ``byte_offset`` (a node starting there wins over one ending there)."""
    root = tree.root_node
    b = min(max(byte_offset, 0), root.end_byte)
    return root.descendant_for_byte_range(b, b)


def tree_error_count(tree: Any) -> int:
    """Number of ERROR and MISSING nodes; only descends into subtrees that have errors."""
    root = tree.root_node
    if not root.has_error:
        return 0
    count = 0
    stack = [root]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            count += 1
        for child in node.children:
            if child.has_error or child.is_missing:
                stack.append(child)
    return count


def has_error(text: str) -> bool:
    """Whether ``text`` parses with any ERROR or MISSING node."""
    if not available():
        return False
    return bool(parse(text).root_node.has_error)


def error_count(text: str) -> int:
    if not available():
        return 0
    return tree_error_count(parse(text))


# --- windowing --------------------------------------------------------------------------

_TOP_LEVEL_LINE = re.compile(r"[\r\n](?=[^ \t\r\n#])")
_LINE_BREAK = re.compile(r"\r\n?|\n")


def _window(text: str, offset: int) -> tuple[str, int]:
    """A slice of ``text`` around ``offset`` small enough to parse per keystroke, starting at
    a line start (preferably an unindented one, so blocks parse correctly)."""
    if len(text) <= WINDOW_BEFORE + WINDOW_AFTER:
        return text, offset
    lo = max(0, offset - WINDOW_BEFORE)
    if lo > 0:
        anchor = None
        for m in _TOP_LEVEL_LINE.finditer(text, max(0, lo - _ANCHOR_SEARCH), lo):
            anchor = m.end()
        if anchor is None:
            nl = _LINE_BREAK.search(text, lo, offset)
            anchor = nl.end() if nl is not None else lo
        lo = anchor
    hi = min(len(text), offset + WINDOW_AFTER)
    if hi < len(text):
        nl = _LINE_BREAK.search(text, hi, hi + 1000)
        hi = nl.end() if nl is not None else hi
    return text[lo:hi], offset - lo


# --- lexical scan (strings and comments), used when the tree has errors ----------------------

# String prefixes (r, b, f, ...) never change where a string ends (even in a raw string a
# backslash keeps the next quote), so the scanner ignores them.
_LEX = re.compile(r"""(?P<comment>\#[^\r\n]*)|(?P<string>\"\"\"|'\'\'|"|')|[^#"']+""")
_TRIPLE_END = {'"""': re.compile(r'(?:[^\\]|\\[\s\S])*?"""'), "'''": re.compile(r"(?:[^\\]|\\[\s\S])*?'''")}
# (a backslash that ends the text escapes nothing: the string runs to the end, unclosed)
_SINGLE_END = {'"': re.compile(r'(?:[^\\"\r\n]|\\[\s\S]|\\$)*("|(?=[\r\n])|$)'),
               "'": re.compile(r"(?:[^\\'\r\n]|\\[\s\S]|\\$)*('|(?=[\r\n])|$)")}


def _lex_scan(text: str, start: int, end: int) -> tuple[tuple[bool, bool], int]:
    """(in_string, in_comment) at ``end`` scanning ``text`` lexically from ``start``, which must be outside any string
    or comment; and the last place the scan stood outside any string or comment, a token's start (``start`` when
    none): a later scan of a text the same up to just past it may start there (``_lexed_from``)."""
    pos = last = start
    while pos < end:
        last = pos
        m = _LEX.match(text, pos)
        if m is None:  # pragma: no cover - the last alternative matches any char
            pos += 1
            continue
        if m.group("comment") is not None:
            if m.end() >= end:
                return (False, True), last
            pos = m.end()
            continue
        quote = m.group("string")
        if quote is not None:
            body = m.end()
            if len(quote) == 3:
                close = _TRIPLE_END[quote].match(text, body)
                stop = close.end() if close else len(text)
                if close is None or stop > end:
                    return (end >= body, False), last
            else:
                close = _SINGLE_END[quote].match(text, body)
                stop = close.end()
                closed = close.group(1) not in ("", None)
                if stop > end or (stop == end and not closed):
                    return (end >= body, False), last
            pos = stop
            continue
        pos = m.end()
    return (False, False), last


# --- cursor facts -------------------------------------------------------------------------

_NOT_BLOCK_COLON_PARENTS = frozenset({"pair", "slice", "lambda", "dictionary", "subscript", "type", "format_specifier"})


def _ancestors(node: Any):
    while node is not None:
        yield node
        node = node.parent


def _indent_width(s: str) -> int:
    return len(s.expandtabs(8))


def _block_column(src: bytes, block: Any) -> int:
    """Indentation column of a block's first statement; huge for an inline block."""
    start = block.start_byte
    line_start = src.rfind(b"\n", 0, start) + 1
    lead = src[line_start:start]
    if lead.strip():
        return 1 << 30
    return _indent_width(lead.decode(_ENC, "replace"))


def line_start(text: str, offset: int) -> int:
    """Where the line holding ``text[offset]`` starts: after the last line break (LF, CR or CRLF) before ``offset``,
    0 when none. The CR is looked for only after the last LF: a long text of LF lines is not scanned to its start."""
    nl = text.rfind("\n", 0, offset)
    return max(nl, text.rfind("\r", nl + 1, offset)) + 1


def _block_depth(root: Any, src: bytes, text: str, offset: int) -> int:
    j = offset - 1
    while j >= 0 and text[j].isspace():
        j -= 1
    if j < 0:
        return 0
    jb = len(text[:j].encode(_ENC, _ERRORS))
    tok = root.descendant_for_byte_range(jb, jb + 1)
    blocks = [a for a in _ancestors(tok) if a.type == "block"]
    start = line_start(text, offset)
    line_prefix = text[start:offset]
    if line_prefix.strip():  # code before the cursor on its line: the tree knows
        return len(blocks)
    # Cursor in indentation or on a blank line: the enclosing blocks are those whose
    # statements are indented no deeper than the cursor.
    col = _indent_width(line_prefix)
    depth = sum(1 for blk in blocks if _block_column(src, blk) <= col)
    if text[j] == ":" and tok.type == ":" and (tok.parent is None or tok.parent.type not in _NOT_BLOCK_COLON_PARENTS):
        header_start = line_start(text, j)
        header_line = text[header_start : j + 1]
        header_indent = _indent_width(header_line[: len(header_line) - len(header_line.lstrip())])
        if col > header_indent:
            depth = sum(1 for blk in blocks if _block_column(src, blk) <= header_indent) + 1
    return depth


def cursor_facts(text: str, offset: int, language_id: str = "python") -> CursorFacts:
    """Facts at str index ``offset`` of ``text``; neutral for non-Python or on any failure."""
    if not is_python(language_id) or not available():
        return NEUTRAL_FACTS
    try:
        return _cursor_facts(text, min(max(offset, 0), len(text)))
    except Exception:  # facts are advisory: never take completion down
        return NEUTRAL_FACTS


def _lexed_from(window: str, end: int) -> int:
    """Where a lexical scan of ``window`` up to ``end`` may start: the place outside any string or comment where
    this thread's last scan stood last (``_lex_scan``), if the window is the same up to two characters past it and
    it lies before ``end`` (a scan from the start would pass it, nothing ending on the way); else 0."""
    seen, at = getattr(_local, "lexed", ("", 0))
    if 0 < at < end and len(seen) >= at + 2 and window.startswith(seen[:at + 2]):
        return at
    return 0


def _cursor_facts(text: str, offset: int) -> CursorFacts:
    window, off = _window(text, offset)
    window = _lone_cr_as_lf(window)
    src = window.encode(_ENC, _ERRORS)
    b = len(window[:off].encode(_ENC, _ERRORS))
    tree = _parser().parse(src)
    root = tree.root_node
    node = root.descendant_for_byte_range(b - 1, b) if b > 0 else root.descendant_for_byte_range(0, 0)

    in_string = in_comment = False
    for anc in _ancestors(node):
        if anc.type == "comment" and anc.start_byte < b <= anc.end_byte:
            in_comment = True
            break
        if anc.type == "interpolation" and anc.start_byte < b < anc.end_byte:
            break  # code inside an f-string's braces
        if anc.type == "string" and anc.start_byte < b < anc.end_byte:
            in_string = True
            break
    if root.has_error and not in_string and not in_comment:
        # Unterminated strings show up as ERROR nodes: fall back to a lexical scan from the
        # window start (a line start outside strings, or a top-level line for big files), or from where this
        # thread's last scan stood outside strings and comments in a window the same so far.
        (in_string, in_comment), at = _lex_scan(window, _lexed_from(window, off), off)
        _local.lexed = (window, at)

    parent = node.parent
    return CursorFacts(
        node_type=node.type,
        in_string=in_string,
        in_comment=in_comment,
        block_depth=_block_depth(root, src, window, off),
        parent_type=parent.type if parent is not None else "",
    )
