"""The bench's samples: every line of the code alike, whatever --limit asks for."""

from __future__ import annotations

from models.bench_early_exit import make_samples

SHORT = ("short.py", "import os\n")  # one line to sample
LONG = ("long.py", "".join(f"value_{i} = compute({i})\n" for i in range(99)))  # 99 lines


def test_every_line_is_as_likely_as_any_other():
    """One line of 100 is drawn about once in 100 samples of one, not once in two (as a file drawn first made it)."""
    hits = sum(make_samples([SHORT, LONG], 1, seed)[0].path == "short.py" for seed in range(400))
    assert hits < 20  # 4 expected


def test_the_mix_does_not_depend_on_the_limit():
    """Samples of a larger --limit come from the same lines in the same proportions: the short file's line is in
    about a tenth of the runs of 10 samples (the whole-file draw put it in nearly every one)."""
    runs = [make_samples([SHORT, LONG], 10, seed) for seed in range(200)]
    assert sum(any(s.path == "short.py" for s in run) for run in runs) < 40  # 20 expected
    # a larger limit starts with the smaller one's samples
    assert [(s.path, s.line, s.target) for s in make_samples([SHORT, LONG], 40, 3)[:10]] == [
        (s.path, s.line, s.target) for s in runs[3]]


def test_every_eligible_line_once_when_the_limit_asks_for_more():
    samples = make_samples([SHORT, LONG], 500, 0)
    assert len(samples) == 100 and len({(s.path, s.line) for s in samples}) == 100
