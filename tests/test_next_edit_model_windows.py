"""The model's `predict_edit` built a window for the baseline's guess that it never read, and one for the cursor's
row where no guess was made. Counted, not timed."""

from __future__ import annotations

import threading

import pytest

from models.next_edit import model as model_module
from models.next_edit.baseline import BaselinePredictor
from models.next_edit.examples import Edit
from models.next_edit.model import NextEditModel, NextEditPrediction
from models.next_edit.prompt import window_around


def _bare_model(max_windows: int = 2) -> tuple[NextEditModel, list[int]]:
    """A `NextEditModel` without a network: `_ask` records the rows it is asked about and answers nothing."""
    model = NextEditModel.__new__(NextEditModel)
    model.max_windows, model.baseline, model.lock = max_windows, BaselinePredictor(), threading.Lock()
    asked: list[int] = []

    def ask(history, current, line, path, should_cancel, lines=None) -> NextEditPrediction | None:
        asked.append(line)
        return None

    model._ask = ask
    return model, asked


@pytest.fixture
def built_windows(monkeypatch) -> list[int]:
    """The rows `predict_edit` builds a window around, in order."""
    built: list[int] = []

    def counted(text, line, *args, **kwargs):
        built.append(line)
        return window_around(text, line, *args, **kwargs)

    monkeypatch.setattr(model_module, "window_around", counted)
    return built


@pytest.mark.parametrize("gap,rows,built", [
    (40, [0, 41], 1),  # the guess far below: both asked; only the cursor's window decides (the guess's was built too)
    (2, [0], 1),  # the guess inside the cursor's window: asked with it
])
def test_the_model_builds_only_the_window_that_decides_which_rows_to_ask(built_windows, gap, rows, built):
    model, asked = _bare_model()
    current = "def area(w):\n" + "    pass\n" * gap + "print(width)\n"
    history = [Edit(0, 1, "def area(width):\n", "def area(w):\n")]
    model.predict_edit(history, current, 0)
    assert asked == rows and len(built_windows) == built, (asked, built_windows)


RENAMED = "def area(w):\n" + "    pass\n" * 40 + "print(width)\n"


@pytest.mark.parametrize("max_windows,history,current", [
    (2, [Edit(0, 1, "x = 1\n", "x = 2\n")], "x = 2\n" + RENAMED),  # nothing to repeat: the baseline guesses nothing
    (1, [Edit(0, 1, "def area(width):\n", "def area(w):\n")], RENAMED),  # one window: the guess is never asked about
])
def test_a_request_with_one_row_to_ask_builds_no_window_to_decide(built_windows, max_windows, history, current):
    model, asked = _bare_model(max_windows)
    model.predict_edit(history, current, 0)
    assert asked == [0] and not built_windows, built_windows
