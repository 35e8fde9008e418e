"""The repeat-the-last-replacement baseline."""

from __future__ import annotations

import re

import pytest

from models.next_edit.baseline import BaselinePredictor, common_ends, replacement, widen_to_identifiers
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


def _common_ends_item_by_item(a, b):
    p = 0
    while p < min(len(a), len(b)) and a[p] == b[p]:
        p += 1
    s = 0
    while s < min(len(a), len(b)) - p and a[len(a) - 1 - s] == b[len(b) - 1 - s]:
        s += 1
    return p, s


def test_common_ends_of_strings_and_of_lists_of_lines():
    import random

    rng = random.Random(7)
    for i in range(3000):
        alphabet = "ab" if i % 2 else "abcdefg\n"
        a = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        b = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        if rng.random() < 0.4:
            b = a[:rng.randint(0, len(a))] + b + a[rng.randint(0, len(a)):]
        assert common_ends(a, b) == _common_ends_item_by_item(a, b), (a, b)
        assert common_ends(list(a), list(b)) == _common_ends_item_by_item(list(a), list(b))
    assert common_ends("aaa", "aaaa") == (3, 0)  # the suffix never overlaps the prefix
    assert common_ends("", "") == (0, 0)


class _CountingStr(str):
    """A string that counts how often it is indexed or sliced."""

    reads = 0

    def __getitem__(self, key):
        _CountingStr.reads += 1
        return str.__getitem__(self, key)


def test_common_ends_reads_a_long_line_in_slices_not_character_by_character():
    """Item by item, an edit in the middle of a 1 MB line (a data table) cost about a second of Python steps a
    request, several times over (the last edit's replacement, the ranker's contexts, the served range)."""
    line = "x = [" + ", ".join(["width"] * 150_000) + "]\n"
    middle = len(line) // 2
    a, b = _CountingStr(line), _CountingStr(line[:middle] + "w" + line[middle + 5:])
    _CountingStr.reads = 0
    assert common_ends(a, b) == _common_ends_item_by_item(line, str(b))
    assert _CountingStr.reads < 500  # a few slices per doubling, not one read per character


def _widen_character_by_character(a, b, p, s):
    def touches(i, j):
        return (len(a) - s > p and bool(re.match(r"\w", a[i]))) or (len(b) - s > p and bool(re.match(r"\w", b[j])))

    while p > 0 and re.match(r"\w", a[p - 1]) and touches(p, p):
        p -= 1
    while s > 0 and re.match(r"\w", a[len(a) - s]) and touches(len(a) - s - 1, len(b) - s - 1):
        s -= 1
    return p, s


def test_widening_to_identifiers_takes_whole_runs_of_word_characters():
    import random

    rng = random.Random(11)
    for _ in range(20000):
        a = "".join(rng.choice("ab_é1 .(\n😀") for _ in range(rng.randint(0, 14)))
        k = rng.randint(0, len(a))
        b = a[:k] + "".join(rng.choice("xy_ ,") for _ in range(rng.randint(0, 3))) + a[k + rng.randint(0, 3):]
        p, s = common_ends(a, b)
        assert widen_to_identifiers(a, b, p, s) == _widen_character_by_character(a, b, p, s), (a, b)
    run = "x" * 200
    for a, b in ((f"k = {run}1 + 2", f"k = {run}2 + 2"), (f"{run} = 1", f"{run}y = 1"), (f"f({run})", f"f({run}, y)")):
        assert widen_to_identifiers(a, b, *common_ends(a, b)) == _widen_character_by_character(a, b, *common_ends(a, b))
    assert widen_to_identifiers("width = 1", "w = 1", *common_ends("width = 1", "w = 1")) == (0, 4)


def test_widening_reads_a_long_identifier_in_slices_not_character_by_character():
    """A character at a time (and a regex match per character), a change inside a 300 kB hex string took a second
    a request for the served range alone, and as long again for each predictor's look at the last edit."""
    blob = "".join("0123456789abcdef"[(i * 7919) % 16] for i in range(300_000))
    middle = len(blob) // 2
    a = _CountingStr(f'KEY = "{blob}"\n')
    b = _CountingStr(f'KEY = "{blob[:middle]}Z{blob[middle + 1:]}"\n')
    p, s = common_ends(str(a), str(b))
    _CountingStr.reads = 0
    assert widen_to_identifiers(a, b, p, s) == (7, 2)  # the whole string between the quotes
    assert _CountingStr.reads < 500


@pytest.mark.parametrize("predictor", ["heuristic", "ranker"])
@pytest.mark.parametrize("eol", ["\n", "\r\n"])
def test_a_line_deleted_again_is_offered_on_a_last_line_without_a_line_break(predictor, eol):
    """The line was compared with its break: a `breakpoint()` deleted in one function was offered at its copy in
    another, but not where that copy was the file's last line and the file ended without a line break."""
    from models.next_edit.model import predict_with
    from models.next_edit.ranker import load_ranker

    for end in (eol, ""):
        text = eol.join(["def f(a):", "    breakpoint()", "    return a", "", "def g(b):", "    return b",
                         "    breakpoint()"]) + end
        lf = text.replace("\r\n", "\n")
        history = [make_edit(lf, 1, 2, "")]
        current = apply_all(lf, history)
        if eol != "\n":  # the document's own line breaks, as the server reads them
            current = current.replace("\n", eol)
            history = [Edit(1, 2, "    breakpoint()\n", "")]
        found = predict_with(predictor, None, history, current, 1, ranker=load_ranker())
        assert found is not None, (predictor, end)
        after = apply_edit(current, found.edit)
        assert "breakpoint" not in after and after.rstrip().endswith("return b"), (predictor, end, after)
