"""A rename is not offered inside a longer name: its context search matched the characters around the change, so
after `width` -> `wide` at its own uses the ranker offered `bandwidth` -> `bandwide` (and `widths` -> `wides`).
Such a candidate is still generated, marked ``misplaced``, so that the others keep the features the ranker was
trained with (its group's size and ranks): dropped, a right rename elsewhere on the row lost half its score."""

from __future__ import annotations

from models.next_edit.candidates import generate
from models.next_edit.examples import Edit, apply_all, apply_edit
from models.next_edit.ranker import load_ranker


def _afters(original: str, history: list[Edit], cursor: int) -> set[str]:
    """The texts the candidates that may be offered leave."""
    current = apply_all(original, history)
    return {apply_edit(current, c.edit) for c in generate(history, current, original, cursor) if not c.misplaced}


def test_a_renamed_name_is_not_renamed_inside_longer_names():
    original = "def area(width):\n    bandwidth = width * 2\n    widths = [width]\n    return width\n"
    history = [Edit(1, 2, "    bandwidth = width * 2\n", "    bandwidth = wide * 2\n")]
    for after in _afters(original, history, 1):
        assert "bandwide" not in after and "wides" not in after, after
    assert any("widths = [wide]" in after for after in _afters(original, history, 1))  # its own uses still are
    ranker = load_ranker()
    current = apply_all(original, history)
    for _ in range(4):  # every use taken in turn, as accepting each does; then nothing inside the longer names
        found = ranker.rank(history, current, 1, original)
        if found is None:
            break
        history.append(found.edit)
        current = apply_edit(current, found.edit)
        assert "bandwide" not in current and "wides" not in current, current
    assert len(history) > 1 and "widths = [wide]" in current  # it did take the other uses
    assert "bandwidth = wide * 2" in current and "widths" in current


def test_a_change_inside_a_name_still_goes_to_other_names_with_the_same_context():
    """A change of part of a name (`get_x` -> `fetch_x`) is offered at another name it fits (`get_y`): that one is
    not a longer name holding the changed one."""
    original = "a = get_x()\nb = get_y()\n"
    history = [Edit(0, 1, "a = get_x()\n", "a = fetch_x()\n")]
    assert "a = fetch_x()\nb = fetch_y()\n" in _afters(original, history, 0)
