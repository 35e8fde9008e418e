"""A parameter added to one definition goes on at that function's calls, not into its siblings: `stacklevel=3` added to
`warn_if_markup_looks_like_xml(cls, markup)` was a candidate at every other method of the file, and the ranker showed
`def feed(self, markup, stacklevel=3)`. A sibling of the same parameters, a second definition of the same name, and
siblings once the history itself added the parameter to two functions still take it."""

from __future__ import annotations

import pytest

from models.next_edit.candidates import generate
from tests.test_next_edit_call_arguments import _typed
from models.next_edit.model import predict_with
from models.next_edit.ranker import load_ranker

FUNCTIONS = ("def area(w, h):\n    return w * h\n\n\n"
             "def volume(w, h, d):\n    return w * h * d\n\n\n"
             "def perimeter(w, h):\n    return 2 * (w + h)\n\n\n"
             "def scaled(factor, w, h):\n    return w * h * factor\n")
BUILDER = ('class Builder:\n'
           '    def warn(cls, markup):\n'
           '        """Warn when the markup looks like XML."""\n'
           '        if markup.startswith("<?xml"):\n'
           '            warnings.warn("XML", stacklevel=2)\n'
           '\n'
           '    def feed(self, markup):\n'
           '        self.warn(markup)\n'
           '        self.parser.feed(markup)\n'
           '\n'
           '    def close(self):\n'
           '        self.parser.close()\n'
           '\n'
           '    def reset(self, markup):\n'
           '        self.parser.reset()\n')


def _placed(text: str, lines: dict[int, str]) -> tuple[set[str], set[str]]:
    """The lines the candidates write, (kept, misplaced)."""
    history, current = _typed(text, lines)
    kept, misplaced = set(), set()
    for c in generate(history, current, cursor_line=history[-1].start_line):
        (misplaced if c.misplaced else kept).add(c.edit.updated)
    return kept, misplaced


def test_a_parameter_added_to_one_definition_is_misplaced_at_siblings_of_other_parameters():
    """`scale` added to `def area(w, h)`, which no line calls: `def volume(w, h, d, scale)` and
    `def scaled(factor, w, h, scale)` were candidates the ranker could answer."""
    kept, misplaced = _placed(FUNCTIONS, {0: "def area(w, h, scale):"})
    assert {"def volume(w, h, d, scale):\n", "def scaled(factor, w, h, scale):\n"} <= misplaced
    assert not any(line.startswith(("def volume", "def scaled")) for line in kept), kept


def test_a_sibling_of_the_same_parameters_still_takes_it():
    """`def perimeter(w, h)` has the parameters `def area(w, h)` had (`pairwise(src)` then `pairwise_iter(src)`)."""
    kept, misplaced = _placed(FUNCTIONS, {0: "def area(w, h, scale):"})
    assert "def perimeter(w, h, scale):\n" in kept
    assert "def perimeter(w, h, scale):\n" not in misplaced


def test_siblings_take_it_once_the_history_added_it_to_two_functions():
    """The parameter threaded through two functions by hand: the next definition is offered it whatever its
    parameters."""
    kept, misplaced = _placed(FUNCTIONS, {0: "def area(w, h, scale):", 4: "def volume(w, h, d, scale):"})
    assert "def scaled(factor, w, h, scale):\n" in kept
    assert "def scaled(factor, w, h, scale):\n" not in misplaced


def test_another_definition_of_the_same_name_still_takes_it():
    """An override in another class is the same function's definition, whatever its parameters (a guard: it took it
    before too, and then no other function's definition does)."""
    text = ("class Base:\n    def run(self, job):\n        raise NotImplementedError\n\n\n"
            "class Local(Base):\n    def run(self, job, retries=0):\n        job()\n\n\n"
            "class Other:\n    def stop(self, job):\n        pass\n")
    kept, misplaced = _placed(text, {1: "    def run(self, job, timeout=None):"})
    assert "    def run(self, job, retries=0, timeout=None):\n" in kept
    assert "    def stop(self, job, timeout=None):\n" in misplaced


@pytest.fixture(scope="module")
def ranker():
    return load_ranker()


def test_the_ranker_does_not_show_the_parameter_at_a_sibling_method(ranker):
    """`stacklevel=3` added to `warn(cls, markup)` and passed on inside it: the ranker showed
    `def feed(self, markup, stacklevel=3)`, a method that neither needs nor passes it."""
    history, current = _typed(BUILDER, {1: "    def warn(cls, markup, stacklevel=3):",
                                        4: '            warnings.warn("XML", stacklevel=stacklevel)'})
    found = predict_with("ranker", None, history, current, history[-1].start_line, "/p/builder.py", ranker=ranker)
    shown = found.edit.updated if found is not None and found.shown else ""
    assert "stacklevel=3" not in shown, shown
    kept, misplaced = _placed(BUILDER, {1: "    def warn(cls, markup, stacklevel=3):"})
    assert {"    def feed(self, markup, stacklevel=3):\n", "    def reset(self, markup, stacklevel=3):\n"} <= misplaced
