"""`sample_jsonl` reads its file once: it read the whole file to count the lines, then the whole file again for the
lines drawn (the synthetic training file is 870 MB). The same lines are drawn for a seed as before."""

from __future__ import annotations

import builtins
import json
import random

import pytest

from models.next_edit import train_ranker
from models.next_edit.examples import Edit, Example, write_jsonl
from models.next_edit.train_ranker import sample_jsonl


def former_sample_jsonl(path, n, seed=0):
    """The former two-pass draw, kept as the reference."""
    with open(path, encoding="utf-8") as f:
        total = sum(1 for _ in f)
    chosen = set(range(total)) if n is None or n >= total else set(random.Random(seed).sample(range(total), n))
    out = []
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i in chosen and line.strip():
                out.append(Example.from_json(json.loads(line)))
    return out


def _write(path, count: int) -> None:
    examples = [Example(path=f"m{i}.py", package=f"p{i % 3}", original=f"x = {i}\n\u00e9\u2028\n",
                        history=[Edit(0, 1, f"x = {i}\n", f"y = {i}\n")], current=f"y = {i}\n\u00e9\u2028\n",
                        target=Edit(0, 1, f"y = {i}\n", f"z = {i}\n")) for i in range(count)]
    write_jsonl(path, examples)
    with open(path, "a", encoding="utf-8") as f:
        f.write("\n")  # a blank line: counted in the draw, never parsed


class _CountingFile:
    """A file object that counts the lines read from it (iterated or read one at a time)."""

    def __init__(self, f, reads: list[int]) -> None:
        self._f, self._reads = f, reads

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()

    def __iter__(self):
        for line in self._f:
            self._reads[0] += 1
            yield line

    def readline(self, *args):
        self._reads[0] += 1
        return self._f.readline(*args)

    def __getattr__(self, name):
        return getattr(self._f, name)


@pytest.mark.parametrize("n, seed", [(None, 0), (0, 0), (1, 3), (7, 0), (7, 5), (40, 1), (41, 0), (500, 2)])
def test_the_draw_is_the_former_one_and_each_line_is_read_once(tmp_path, monkeypatch, n, seed):
    path = tmp_path / "synthetic_train.jsonl"
    _write(path, 40)
    total = 41  # the 40 rows and the blank line
    expected = [ex.to_json() for ex in former_sample_jsonl(path, n, seed)]
    reads = [0]
    real_open = builtins.open

    def counting_open(*args, **kwargs):
        return _CountingFile(real_open(*args, **kwargs), reads)

    monkeypatch.setattr(train_ranker, "open", counting_open, raising=False)
    got = sample_jsonl(path, n, seed)
    assert [ex.to_json() for ex in got] == expected
    drawn_again = 0 if n is None or n >= total else n  # a draw of every line keeps them from the one pass
    assert reads[0] <= total + drawn_again  # the whole file once, then at most the lines drawn
