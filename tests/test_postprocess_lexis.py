"""The bracket scanners read comments as the document's language writes them: in a shell `#` starts a comment only at a
word's start (`$#`, `${#items[@]}`, `${path##*/}` are code). Before, `$#` hid the brackets after it and the
suggestion's closers were kept twice."""

from __future__ import annotations

import random

import pytest

from lsp_server.services import postprocess
from lsp_server.services.postprocess import _code_scan, _Lexis, _open_stack, _tokens, trim_suggestion
from tests.test_postprocess import ctx_at


def shaped(src: str, raw: str, language_id: str, *, multiline: bool = False) -> str:
    return trim_suggestion(raw, ctx_at(src, language_id), multiline=multiline)


@pytest.mark.parametrize("src, raw, expected", [
    ("if [ $# -gt 0 ]; then\n  shift $(( | ))\nfi\n", "$# - 1 ))", "$# - 1"),
    ('\tgit checkout "${bra|}"\n', 'nch#refs/heads/}"', "nch#refs/heads/"),  # the editor's `}"` was kept twice
    ("echo ${#arr[@]} $(( | ))\n", "1 + 2 ))", "1 + 2"),
    ('name=${path##*/}; echo "$(basename |)"\n', '$name)"', "$name"),
    # a `#` at a word's start still starts a comment: its bracket is prose
    ("x=1 # see (below\necho $(|)\n", "ls)", "ls"),
])
def test_a_shells_hash_inside_a_word_starts_no_comment(src, raw, expected):
    for multiline in (False, True):
        assert shaped(src, raw, "shellscript", multiline=multiline) == expected


@pytest.mark.parametrize("language_id, line, stack", [
    ("rust", "let c = '('; let d = b')'; let e = '\\''; h(", "("),
    ("shellscript", "for i in $(seq 1 ${#arr[@]}); do g $(", "("),
    ("shellscript", "echo ok # $(", ""),
    ("python", "x = f('a', (", "(("),
])
def test_the_open_brackets_are_read_as_the_language_writes_its_comments(language_id, line, stack):
    reading = postprocess._lexis.set(_Lexis.of(language_id))
    try:
        assert _open_stack(line) == stack
    finally:
        postprocess._lexis.reset(reading)


_PIECES = ["'", "'a", "'a'", "'\\n'", "'\\''", "b'('", "'(", "\"s'(\"", "#", "$#", "${#a[@]}", "a#b", " # c(", "//",
           "/*", "*/", "(", ")", "[", "]", "{", "}", "<", ">", " ", "x", "\\", "\n", "`", '"', "'''", '"""']


@pytest.mark.parametrize("language_id", ["rust", "haskell", "shellscript", "python", "javascript"])
def test_the_linear_scan_agrees_with_the_token_loop(language_id):
    """`_code_scan` (regex runs) and `_tokens` (one token at a time) read the same brackets and the same first comment,
    whatever the language."""
    rng = random.Random(20261207)
    reading = postprocess._lexis.set(_Lexis.of(language_id))
    try:
        for _ in range(3000):
            text = "".join(rng.choice(_PIECES) for _ in range(rng.randint(0, 14)))
            tokens = list(_tokens(text))
            comment = next((i for i, tok in tokens if tok.startswith(_Lexis.of(language_id).comments)
                            and tok[0] not in "\"'`"), len(text))
            brackets = "".join(tok for _, tok in tokens if len(tok) == 1 and tok in "()[]{}")
            assert _code_scan(text)[0] == brackets, repr(text)
            assert _code_scan(text, stop_at_comment=True)[1] == comment, repr(text)
    finally:
        postprocess._lexis.reset(reading)
