"""Lines of blanks alone are never a next edit. Neovim's `o` sends the new line's indent as an edit of its own and the
typing after it as another, so the ranker had "a line of spaces inserted" as a history edit and offered it again (the
README's one key applied `    ` on a line of its own below the statement just typed)."""

from __future__ import annotations

from models.next_edit.candidates import generate
from models.next_edit.examples import Edit, apply_all
from models.next_edit.ranker import load_ranker

ORIGINAL = "def load(path):\n    data = read(path)\n    return data\n\n\ndef save(path, data):\n    write(path, data)\n"
# `o` below line 1 (its indent sent on its own), then the statement typed in that line
HISTORY = [Edit(2, 2, "", "    \n"), Edit(2, 3, "    \n", "    log(data)\n")]


def test_lines_of_blanks_are_scored_but_never_offered():
    current = apply_all(ORIGINAL, HISTORY)
    found = generate(HISTORY, current, ORIGINAL, 7)
    blank = [c for c in found if not c.edit.original and not c.edit.updated.strip()]
    assert blank, "the history's line of spaces is still a candidate, scored with the others as in training"
    assert all(c.misplaced for c in blank)
    assert all(not c.misplaced for c in found if c.edit.updated.strip())  # the others are offered as before
    answer = load_ranker().rank(HISTORY, current, 7, ORIGINAL)
    assert answer is None or answer.edit.updated.strip(), answer


def test_an_empty_line_is_no_line_of_blanks():
    """An empty line (a line break alone) inserted between definitions is a change like any other: offered after the
    next definition's same last line. The same insert with spaces on the line is scored, never offered."""
    original = "def a():\n    pass\ndef b():\n    pass\ndef c():\n    pass\n"
    for inserted, offered in (("\n", True), ("   \n", False)):
        history = [Edit(2, 2, "", inserted)]
        found = [c for c in generate(history, apply_all(original, history), original, 3) if c.edit.updated == inserted]
        assert found and all(c.misplaced != offered for c in found), (inserted, found)
