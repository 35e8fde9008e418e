"""Comments read as the document's language writes them, a cursor line that closes a string opened above it, and the
spaces before a closer the editor already has.

Each case was shown broken before: `#` hid the code after it in languages where it starts no comment (a private
field, an attribute) while a `//` comment's bracket was left open; a line closing a triple-quoted string read its
closing quotes as opening one, which hid its brackets; and the spaces before a dropped closer went with it (from a
string's text too).
"""

from __future__ import annotations

import pytest

from lsp_server.services.postprocess import trim_suggestion
from tests.test_postprocess import ctx_at, multi, single
from tests.test_postprocess_closers import applied, assert_shaped


def shaped(src: str, raw: str, language_id: str, *, multiline: bool = False) -> str:
    return trim_suggestion(raw, ctx_at(src, language_id), multiline=multiline)


@pytest.mark.parametrize("language_id, src, raw, expected", [
    # `#` starts no comment: the private field's call and the attribute's brackets are code
    ("javascript", "class Stack {\n  #items = [];\n  push(item) {\n    this.#items.push(|)\n  }\n}\n", "item)", "item"),
    ("typescript", "class Stack {\n  #items: number[] = [];\n  push(n: number) {\n    this.#items.push(|);\n  }\n}\n",
     "n);", "n"),
    ("rust", "#[derive(Debug, |)]\nstruct Point {\n    x: i32,\n}\n", "Clone)]", "Clone"),
    ("css", ".badge { color: #fff; background: url(|) }\n", "badge.png)", "badge.png"),
    # `//` starts one: the bracket it leaves open closes nothing in the code below it
    ("c", "#include <stdio.h>\n\nint main(void) {\n    // the total (in cents\n    long cents = total(|);\n"
     "    return 0;\n}\n", "items);", "items"),
    ("javascript", "// legacy: render(items,\nconst html = render(|);\n", "rows);", "rows"),
])
def test_comments_are_read_as_the_language_writes_them(language_id, src, raw, expected):
    assert shaped(src, raw, language_id) == expected
    assert shaped(src, raw, language_id, multiline=True) == expected


def test_hash_comments_stay_where_the_language_writes_them():
    # Python, and a language id not known, read `#` as before: the call in the comment is prose
    src = "def push(self, item):\n    # this.#items.push(|)\n    pass\n"
    assert single(src, "item)") == "item"
    for language_id in ("python", "shellscript", "plaintext"):
        assert shaped("# see (below\nfoo(|)\n", "x)", language_id) == "x"
    # in JavaScript that line is code, and its `(` still open: the suggestion's `)` closes it
    assert shaped("# see (below\nfoo(|)\n", "x)", "javascript") == "x)"


@pytest.mark.parametrize("src, raw, expected", [
    ('def load(cur, user_id):\n    cur.execute("""\n        SELECT name FROM users\n        WHERE id = %s""", (|))\n'
     "    return cur.fetchone()\n", "user_id,))", "user_id,"),
    ('parser.add_argument("--mode", help="""How to run:\n    fast or slow.""", default=|)\n', '"fast")', '"fast"'),
    ('def usage():\n    print("""Usage:\n    tool [options]""".format(|))\n', "name=NAME))", "name=NAME"),
])
def test_a_cursor_line_that_closes_a_string_opened_above_reads_its_brackets(src, raw, expected):
    assert ctx_at(src).facts.in_string is False
    assert_shaped(single, src, raw, expected)
    assert_shaped(multi, src, raw, expected)


def test_a_cursor_line_that_closes_a_string_opened_above_keeps_its_bracket_rules():
    # before other code on its line, a suggestion that leaves a bracket open is not shown, as on any line
    assert single('words = """a\nb""".split(|sep)\n', "sorted(") == ""
    assert single('words = "a b".split(|sep)\n', "sorted(") == ""
    # without cursor facts (another language id) the closing quotes are read the same way
    assert shaped('x = """a\nb""".join(|)\n', "parts)", "plaintext") == "parts"


@pytest.mark.parametrize("language_id, src, raw, expected, line", [
    # the model's space before its copy of the closer is the file's: spaces inside the parentheses
    ("python", "result = compute( data, |)\n", "axis=0 )", "axis=0 ", "result = compute( data, axis=0 )"),
    ("c", 'int main(void) {\n    printf( "%d\\n", |);\n}\n', "count );", "count ", '    printf( "%d\\n", count );'),
    # and a string's text, where no cursor facts say the cursor is in a string
    ("javascript", 'const label = "|";\n', 'Total: ";', "Total: ", 'const label = "Total: ";'),
])
def test_the_spaces_before_a_dropped_closer_stay(language_id, src, raw, expected, line):
    for multiline in (False, True):
        out = shaped(src, raw, language_id, multiline=multiline)
        assert out == expected
        assert line in applied(src, out).split("\n")
    # where the rest of the line has its own space before the closer, the suggestion's would double it
    assert shaped(src.replace("|", "| "), raw, language_id) == expected.rstrip()
