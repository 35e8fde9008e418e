"""Text put in beside punctuation, repeated on other lines: once where the edit put it, never beside itself."""

from __future__ import annotations

import pytest

from models.next_edit.baseline import BaselinePredictor, replacement
from models.next_edit.candidates import generate
from models.next_edit.examples import Edit, apply_all, apply_edit, make_edit
from models.next_edit.model import predict_with
from models.next_edit.ranker import load_ranker

# (text, the user's edit of line 0, line 1 as the repeated edit leaves it)
PREFIXES = [
    ('log("start")\nlog("middle")\n', 'log(f"start")\n', 'log(f"middle")\n'),
    ("re.compile('a+')\nre.compile('b+')\n", "re.compile(r'a+')\n", "re.compile(r'b+')\n"),
    ("sock.send('hello')\nsock.send('world')\n", "sock.send(b'hello')\n", "sock.send(b'world')\n"),
    ("requests.get(url(a))\nrequests.get(url(b))\n", "requests.get(url(a), timeout=5)\n",
     "requests.get(url(b), timeout=5)\n"),
    ('print("starting")\nprint(len(items))\n', 'print("starting", file=sys.stderr)\n',
     'print(len(items), file=sys.stderr)\n'),
    ('print("hi")\nprint(x)\n', 'print("hi", end="")\n', 'print(x, end="")\n'),
    ("foo(x[0])\nbar(a)\n", "foo(x[0], b)\n", "bar(a, b)\n"),
]


def _first_edit(text: str, line0: str) -> list[Edit]:
    return [make_edit(text, 0, 1, line0)]


@pytest.mark.parametrize("text, line0, line1", PREFIXES)
def test_a_prefix_or_an_argument_goes_in_once_not_before_every_quote_or_bracket(text, line0, line1):
    """`f` put before a quote was anchored on the quote alone and put before every quote of the next line:
    `log(f"middlef")`, `print(len(items, file=sys.stderr), file=sys.stderr)`."""
    history = _first_edit(text, line0)
    current = apply_all(text, history)
    for name, found in (("baseline", BaselinePredictor().predict_next(history, current)),
                        ("ranker", getattr(predict_with("ranker", None, history, current, 0, ranker=load_ranker()),
                                           "edit", None))):
        after = apply_edit(current, found).splitlines(keepends=True)[1] if found is not None else None
        assert after == line1, (name, after)  # a call's last argument goes to the line's outermost call
    # the substitutions offered on line 1 put the text in once each, the one the edit would make among them
    offered = {c.edit.updated for c in generate(history, current)
               if c.edit.start_line == 1 and c.generator.startswith("substitute")}
    if "stderr" not in line1:
        assert line1 in offered, offered
    added = len(line0) - len(text.splitlines(keepends=True)[0])  # characters the edit put in
    assert all(len(line) - len(text.splitlines(keepends=True)[1]) == added for line in offered), offered


def test_a_strings_prefix_is_anchored_on_the_punctuation_on_both_sides_of_it():
    """Only a prefix glued to a quote: an argument after a string (`, end=""`) keeps the closer alone as its anchor,
    or it would go only into calls whose last argument is a string too."""
    assert replacement(Edit(0, 1, 'log("start")\n', 'log(f"start")\n')) == ('("', '(f"')
    assert replacement(Edit(0, 1, 'print("hi")\n', 'print("hi", end="")\n')) == (")", ', end="")')
    assert replacement(Edit(0, 1, "f(x)\n", "f(x, y)\n")) == (")", ", y)")
    assert replacement(Edit(0, 1, "foo()\n", "foo(ctx)\n")) == (")", "ctx)")


@pytest.mark.parametrize("predictor", ["ranker", "heuristic"])
def test_an_argument_added_at_every_call_is_not_offered_again_at_the_calls_that_have_it(predictor):
    """Accepted in turn (Tab, Tab, ...), the chain went round to the calls that had the argument already and wrote
    `plot(x, y, color='r', color='r', color='r')`; a parameter came out as `def scale(point, factor, offset, offset)`."""
    for text, edits in (
            ("plot(x, y)\nplot(x, z)\nplot(y, z)\n",
             {0: "plot(x, y, color='r')\n", 1: "plot(x, z, color='r')\n", 2: "plot(y, z, color='r')\n"}),
            ("def scale(point, factor):\n    return point\n\n\na = scale(p1, 2)\nb = scale(p2, 3)\n",
             {0: "def scale(point, factor, offset):\n", 4: "a = scale(p1, 2, offset)\n",
              5: "b = scale(p2, 3, offset)\n"})):
        history, current = [], text
        for row, line in edits.items():
            edit = make_edit(current, row, row + 1, line)
            history.append(edit)
            current = apply_edit(current, edit)
        found = predict_with(predictor, None, history, current, row, ranker=load_ranker())
        if found is not None:
            after = apply_edit(current, found.edit)
            assert "color='r', color='r'" not in after and "offset, offset" not in after, after


def test_a_digit_put_beside_the_same_digit_is_still_an_edit():
    """Only text with a word and some punctuation stutters: `100` -> `1000` at the next use is offered."""
    text = "wait(100)\nwait(100)\n"
    history = [make_edit(text, 0, 1, "wait(1000)\n")]
    current = apply_all(text, history)
    assert any(c.edit.start_line == 1 and c.edit.updated == "wait(1000)\n" for c in generate(history, current))


def test_a_chain_lengthened_by_a_copy_of_its_last_link_is_still_offered():
    """Only a list item put beside itself stutters: `.parent` after `.parent` (`Path(__file__).parent.parent`) was
    offered before the stutter rule and is again."""
    text = "ROOT = Path(__file__).parent\nDATA = Path(__file__).parent / 'data'\n"
    history = [make_edit(text, 0, 1, "ROOT = Path(__file__).parent.parent\n")]
    current = apply_all(text, history)
    want = "DATA = Path(__file__).parent.parent / 'data'\n"
    assert any(c.edit.start_line == 1 and c.edit.updated == want for c in generate(history, current))
    found = predict_with("ranker", None, history, current, 0, ranker=load_ranker())
    assert found is not None and apply_edit(current, found.edit).splitlines(keepends=True)[1] == want
