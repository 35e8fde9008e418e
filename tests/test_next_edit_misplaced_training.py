"""The ranker learns to rank among the candidates it may answer with: a ``misplaced`` one (an argument put into another
function's call than the history's) is scored when served but never answered, and training counted it as a rival
and, where it was the target, as a right edit no answer can be."""

from __future__ import annotations

import numpy as np

from models.next_edit.candidates import featurized
from models.next_edit.examples import Example, apply_edit, make_edit
from models.next_edit.train_ranker import candidate_rows

TEXT = 'def draw(points, color):\n    put(points, color)\n\n\ndef main():\n    draw(a, "red")\n    log(a)\n' \
       '    draw(b, "blue")\n    print(b)\n'


def _example(target_row: int, target_line: str) -> Example:
    history = [make_edit(TEXT, 0, 1, "def draw(points, color, width):\n")]
    current = apply_edit(TEXT, history[0])
    history.append(make_edit(current, 5, 6, '    draw(a, "red", width)\n'))
    current = apply_edit(current, history[1])
    return Example("draw.py", "drawing", TEXT, history, current, make_edit(current, target_row, target_row + 1,
                                                                           target_line))


def test_misplaced_candidates_are_no_training_rows():
    """`log(a, width)` is a candidate (misplaced) beside the right `draw(b, "blue", width)`: it is no row, and the
    others keep the features they are served with."""
    ex = _example(7, '    draw(b, "blue", width)\n')
    served = featurized(ex.history, ex.current, ex.cursor_line, ex.original)
    misplaced = [c for c in served if c.misplaced]
    assert any(c.edit.updated == "    log(a, width)\n" for c in misplaced)
    X, y, index = candidate_rows([ex])
    kept = [c for c in served if not c.misplaced]
    assert len(y) == len(kept) and int(y.sum()) == 1
    assert np.array_equal(X, np.array([c.features for c in kept], dtype=np.float64))


def test_a_misplaced_target_gives_no_right_row():
    """Where the next edit really was the misplaced one, serving can never answer it: training has no right row."""
    ex = _example(6, "    log(a, width)\n")
    X, y, index = candidate_rows([ex])
    assert len(y) > 0 and int(y.sum()) == 0
