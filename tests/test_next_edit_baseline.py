"""The repeat-the-last-replacement baseline."""

from __future__ import annotations

import pytest

from models.next_edit.baseline import BaselinePredictor, replacement
from models.next_edit.evaluate import score
from models.next_edit.examples import Edit, Example, apply_all, apply_edit, make_edit


def _chain(text: str, new_lines: dict[int, str]) -> list[Edit]:
    edits, cur = [], text
    for row, line in new_lines.items():
        e = make_edit(cur, row, row + 1, line)
        edits.append(e)
        cur = apply_edit(cur, e)
    return edits


def _example(text: str, edits: list[Edit], k: int) -> Example:
    return Example(path="m.py", package="demo", original=text, history=edits[:k],
                   current=apply_all(text, edits[:k]), target=edits[k])


RENAME = '''\
def area(width, height):
    check(width)
    total = width * height
    log(total)
    return total + width
'''


def test_replacement_widens_to_identifiers():
    assert replacement(Edit(0, 1, "x = count\n", "x = counter\n")) == ("count", "counter")
    assert replacement(Edit(0, 1, "a = foo(1)\n", "a = bar(1)\n")) == ("foo", "bar")
    assert replacement(Edit(0, 1, "def f(a, b):\n", "def f(a, b, c):\n")) == (")", ", c)")
    assert replacement(Edit(0, 1, "x = 1\n", "x = 1\n")) is None
    assert replacement(Edit(3, 3, "", "new_line()\n")) is None


def test_baseline_gets_a_simple_rename_chain_right():
    new = {0: "def area(w, height):\n", 1: "    check(w)\n", 2: "    total = w * height\n", 4: "    return total + w\n"}
    edits = _chain(RENAME, new)
    for k in range(1, len(edits)):
        ex = _example(RENAME, edits, k)
        pred = BaselinePredictor().predict(ex)
        assert pred == ex.target, k
        assert score(ex, pred)["exact"] == 1

def test_a_block_with_one_substitution_is_repeated_as_a_block():
    text = "def f(size):\n    return size\n\n\ndef g(size):\n    return size\n"
    e1 = make_edit(text, 0, 2, "def f(n):\n    return n\n")
    cur = apply_edit(text, e1)
    target = make_edit(cur, 4, 6, "def g(n):\n    return n\n")
    ex = Example("m.py", "d", text, [e1], cur, target)
    assert replacement(e1) == ("size", "n")
    assert BaselinePredictor().predict(ex) == target


def test_baseline_wraps_around_to_earlier_lines():
    text = "a = old\nb = 1\nc = old\n"
    edits = _chain(text, {2: "c = new\n", 0: "a = new\n"})
    ex = _example(text, edits, 1)
    assert BaselinePredictor().predict(ex) == ex.target


def test_baseline_returns_none_when_nothing_applies():
    text = "a = foo\nb = 2\n"
    edits = _chain(text, {0: "a = bar\n", 1: "b = 3\n"})
    assert BaselinePredictor().predict(_example(text, edits, 1)) is None
    no_history = Example("m.py", "d", text, [], text, edits[0])
    assert BaselinePredictor().predict(no_history) is None


@pytest.mark.parametrize("text,new_lines", [
    ("x = a\ny = b\nz = a\n", {0: "x = b\n", 1: "y = a\n", 2: "z = b\n"}),        # swaps
    ("v = 1\nv = 2\nv = 1\n", {0: "v = 2\n", 1: "v = 1\n", 2: "v = 2\n"}),         # toggles
    ("f(a)\nf(a, a)\ng(a)\n", {0: "f(a, a)\n", 1: "f(a)\n", 2: "g(a, a)\n"}),
])
def test_reversal_is_never_predicted(text, new_lines):
    edits = _chain(text, new_lines)
    for k in range(1, len(edits)):
        ex = _example(text, edits, k)
        pred = BaselinePredictor().predict(ex)
        s = score(ex, pred)
        assert s["reversal"] == 0 and s["no_op"] == 0


def test_reversal_is_never_predicted_on_synthetic_chains():
    pytest.importorskip("tree_sitter_python")
    from models.next_edit.synthetic import examples_from_code

    exs = examples_from_code(RENAME + "\n\ndef g():\n    area(1, 2)\n    area(3, 4)\n", per_chain=4)
    assert exs
    for ex in exs:
        s = score(ex, BaselinePredictor().predict(ex))
        assert s["reversal"] == 0 and s["no_op"] == 0


@pytest.mark.parametrize("eol", ["\n", "\r\n", "\r"])
def test_apply_edit_ends_a_block_with_the_documents_own_line_break(eol):
    """A bare LF was added in CRLF documents, and after a CR (already a line break) in CR documents."""
    text = f"a = 1{eol}b = 2{eol}c = 3{eol}"
    assert apply_edit(text, Edit(1, 2, f"b = 2{eol}", "b = 3")) == f"a = 1{eol}b = 3{eol}c = 3{eol}"
    assert apply_edit(text, Edit(1, 2, f"b = 2{eol}", f"b = 3{eol}")) == f"a = 1{eol}b = 3{eol}c = 3{eol}"
    assert apply_edit(text, Edit(1, 1, "", "z = 0")) == f"a = 1{eol}z = 0{eol}b = 2{eol}c = 3{eol}"
    assert apply_edit(text, Edit(3, 3, "", "d = 4")) == f"a = 1{eol}b = 2{eol}c = 3{eol}d = 4"  # no line follows


@pytest.mark.parametrize("eol", ["\n", "\r\n", "\r"])
def test_an_insertion_after_an_unterminated_last_line_is_not_glued_to_it(eol):
    text = f"def f():{eol}    a = 1{eol}    b = 2"
    assert apply_edit(text, Edit(3, 3, "", "    c = 3")) == f"def f():{eol}    a = 1{eol}    b = 2{eol}    c = 3"
    want = f"def f():{eol}    a = 1{eol}    b = 2{eol}    c = 3{eol}"
    assert apply_edit(text, Edit(3, 3, "", f"    c = 3{eol}")) == want
    assert apply_edit("x", Edit(1, 1, "", "y")) == "x\ny"  # one line, no break to copy: LF
