"""Next-edit candidates, ranker and baseline: whole-token matches, undoes the blocks hide, big history edits, bad files."""

from __future__ import annotations

import json
import time

import pytest

from models.next_edit.baseline import BaselinePredictor
from models.next_edit.candidates import FEATURE_NAMES, generate
from models.next_edit.examples import Edit, apply_all, apply_edit
from models.next_edit.prompt import undoes_last_edit
from models.next_edit.ranker import RANKER_FILE, RankerError, load_ranker


def test_a_replacement_that_starts_with_an_identifier_is_not_repeated_inside_a_longer_one():
    """`f(x)` -> `g[x]` ends in punctuation, so it was matched without word boundaries at all: the candidates, the
    ranker and the baseline all turned `ff(x)` into `fg[x]`."""
    original = "a = f(x)\nb = ff(x)\nc = f(x)\n"
    history = [Edit(0, 1, "a = f(x)\n", "a = g[x]\n")]
    current = apply_all(original, history)
    afters = {apply_edit(current, c.edit) for c in generate(history, current, original, 0)}
    assert "a = g[x]\nb = fg[x]\nc = f(x)\n" not in afters
    assert "a = g[x]\nb = ff(x)\nc = g[x]\n" in afters
    assert BaselinePredictor().predict_next(history, current) == Edit(2, 3, "c = f(x)\n", "c = g[x]\n")
    found = load_ranker().rank(history, current, 0, original)
    assert found is not None and found.edit == Edit(2, 3, "c = f(x)\n", "c = g[x]\n")


def test_an_edit_that_undoes_the_last_one_is_no_candidate_when_the_last_edit_spanned_unchanged_lines():
    """The undo check compared blocks: the last edit rewrote `def f(width):` unchanged with the line it put back,
    so re-applying the rename it undid on that one line was a candidate, and the ranker chose it (the server then
    dropped it and showed nothing; the evaluation counted a reversal)."""
    original = "def f(width):\n    return width\n\nz = 1\n"
    renamed = Edit(1, 2, "    return width\n", "    return w\n")
    put_back = Edit(0, 2, "def f(width):\n    return w\n", "def f(width):\n    return width\n")
    history = [renamed, put_back]
    current = apply_all(original, history)
    for c in generate(history, current, original, 1):
        assert not undoes_last_edit(history, current, c.edit), c.edit
    found = load_ranker().rank(history, current, 1, original)
    assert found is None or not undoes_last_edit(history, current, found.edit)
    assert any(c.edit.start_line == 0 for c in generate(history, current, original, 1))  # the def is still offered


def test_a_history_edit_of_hundreds_of_lines_costs_milliseconds_not_seconds():
    """Every line a history edit changed searched every row again, most of them for the same change between the
    same characters, adding each match again: an argument added to 400 calls took about 5 s a request."""
    block = "".join(f"    x{i} = y{i}(a, b)\n" for i in range(400))
    history = [Edit(0, 400, block, block.replace("(a, b)", "(a, b, c)"))]
    current = apply_edit(block * 5, history[0])
    ranker = load_ranker()
    start = time.perf_counter()
    found = ranker.rank(history, current, 399)
    assert time.perf_counter() - start < 1.5  # about 0.05 s; 5 s before
    assert found is not None and found.edit == Edit(400, 401, "    x0 = y0(a, b)\n", "    x0 = y0(a, b, c)\n")
    same = {c.key: c.ways for c in generate(history, current, None, 399)}
    assert same[(400, 401, "    x0 = y0(a, b, c)\n")] > 400  # each changed line still counts as one more way


@pytest.mark.parametrize("content", ["[]", "1", "null", '"ranker"', "[" * 100_000,
                                     json.dumps({"format": 1, "feature_names": FEATURE_NAMES, "threshold": 0.1,
                                                 "trees": {"kind": "forest", "feature_names": FEATURE_NAMES,
                                                           "fill": [0.0] * len(FEATURE_NAMES), "params": {}}})])
def test_a_ranker_file_of_the_wrong_shape_is_refused_with_a_ranker_error(tmp_path, content):
    """JSON that is not an object raised AttributeError (`.get` of a list), an unknown tree kind the acceptance
    model's own error, a deeply nested file RecursionError: none of them the RankerError the server and the
    commands catch, so the caller crashed."""
    (tmp_path / RANKER_FILE).write_text(content)
    with pytest.raises(RankerError) as err:
        load_ranker(tmp_path)
    assert str(tmp_path) in str(err.value)
