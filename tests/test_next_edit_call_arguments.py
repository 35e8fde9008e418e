"""An argument added to a function's definition and calls goes on at that function's other calls: the ranker offered it
at the next call of any function (`log(a, width)`, `print(sum(total), scale)`, Go's `fmt.Println(a, 2)`)."""

from __future__ import annotations

import pytest

from models.next_edit.candidates import breaks_code, generate
from models.next_edit.examples import Edit, apply_edit, lines_of, make_edit
from models.next_edit.model import predict_with
from models.next_edit.ranker import load_ranker
from telemetry.lsp_client import LspClient, change_at
from tests.lsp_support import server_command

PY = 'def draw(points, color):\n    put(points, color)\n\n\ndef main():\n    draw(a, "red")\n    log(a)\n' \
     '    draw(b, "blue")\n    print(b)\n'
JS = 'function draw(points, color) {\n  put(points, color);\n}\n\nfunction main() {\n  draw(a, "red");\n  log(a);\n' \
     '  draw(b, "blue");\n  console.log(b);\n}\n'
GO = 'func draw(points []Point, color string) {\n\tput(points, color)\n}\n\nfunc main() {\n\tdraw(a, "red")\n' \
     '\tfmt.Println(a)\n\tdraw(b, "blue")\n\ttotal := size(b)\n}\n'
AREA = "def area(w, h):\n    return w * h\n\n\ndef report(shapes):\n    total = 0\n    for s in shapes:\n" \
       "        total += area(s.w, s.h)\n    print(total)\n    a = area(1, 2)\n    return a\n"


@pytest.fixture(scope="module")
def ranker():
    return load_ranker()


def _typed(text: str, lines: dict[int, str]) -> tuple[list[Edit], str]:
    """The user's edits, one line each, in order: the history and the text they leave."""
    history = []
    for row, line in lines.items():
        history.append(make_edit(text, row, row + 1, line + "\n"))
        text = apply_edit(text, history[-1])
    return history, text


def _accepted_in_turn(ranker, history: list[Edit], text: str, path: str, turns: int = 4) -> list[str]:
    """The lines each shown next edit wrote, accepted one after another (Tab, Tab, ...)."""
    written = []
    for _ in range(turns):
        found = predict_with("ranker", None, history, text, history[-1].start_line, path, ranker=ranker)
        if found is None or not found.shown:
            break
        written.append(found.edit.updated)
        history, text = history + [found.edit], apply_edit(text, found.edit)
    return written


@pytest.mark.parametrize("path, text, lines, right", [
    ("/p/draw.py", PY, {0: "def draw(points, color, width):", 5: '    draw(a, "red", width)'},
     '    draw(b, "blue", width)\n'),
    ("/p/draw.js", JS, {0: "function draw(points, color, width) {", 5: '  draw(a, "red", width);'},
     '  draw(b, "blue", width);\n'),
    ("/p/draw.go", GO, {0: "func draw(points []Point, color string, width int) {", 5: '\tdraw(a, "red", 2)'},
     '\tdraw(b, "blue", 2)\n'),
])
def test_an_argument_added_to_a_definition_and_a_call_goes_on_at_that_functions_calls_alone(ranker, path, text,
                                                                                             lines, right):
    """The parameter added to `draw` and to its first call: the ranker offered it at the next call of any function,
    `log(a, width)` (0.963; JavaScript 0.934), Go's `fmt.Println(a, 2)` (0.942), and accepted in turn it went on to
    `print(b, width)`, `put(...)`, `func main(, width int)`. The right edit, the other call of `draw`, comes first."""
    history, current = _typed(text, lines)
    written = _accepted_in_turn(ranker, history, current, path)
    assert written and written[0] == right, written
    assert all("draw(" in line for line in written), written


def test_an_argument_does_not_go_to_another_call_on_a_line_the_user_edited_otherwise(ranker):
    """`print(total)` edited into `print(sum(total))`, then `scale` added at `area(s.w, s.h)`: the ranker offered
    `print(sum(total), scale)` (0.773), which parses. The calls and the definition of `area` are what take it."""
    history, current = _typed(AREA, {8: "    print(sum(total))", 7: "        total += area(s.w, s.h, scale)"})
    written = _accepted_in_turn(ranker, history, current, "/p/area.py")
    assert "    a = area(1, 2, scale)\n" in written, written
    assert not any("print(" in line for line in written), written


def test_a_parameters_default_does_not_go_into_calls(ranker):
    """`, 2` put into the first call, then `width=1` into the definition: `put(points, color, width=1)` was offered
    (0.949), then `draw(b, "blue", width=1)` and `draw(a, "red", 2, width=1)`: a default is no argument."""
    history, current = _typed(PY, {5: '    draw(a, "red", 2)', 0: "def draw(points, color, width=1):"})
    written = _accepted_in_turn(ranker, history, current, "/p/draw.py")
    assert not any("width=1" in line for line in written), written
    assert '    draw(b, "blue", 2)\n' in _placed_in(history, current)[0]


def _placed_in(history: list[Edit], current: str) -> tuple[set[str], set[str]]:
    """(the lines the candidates the ranker may answer with write, those of the candidates marked misplaced)."""
    found = generate(history, current)
    misplaced = {c.edit.updated for c in found if getattr(c, "misplaced", False)}
    return {c.edit.updated for c in found} - misplaced, misplaced


def _placed(text: str, lines: dict[int, str]) -> tuple[set[str], set[str]]:
    return _placed_in(*_typed(text, lines))


def test_an_argument_goes_to_another_function_only_on_the_same_object_once_its_own_calls_have_it():
    """A keyword added at `requests.get`: `requests.post` takes it, `parse` and `check` do not (`parse(resp,
    timeout=5)` was offered first, 0.945); `foo(x[0], b)` still goes on at `bar(a)` (no other call of `foo`)."""
    text = ("def fetch(url):\n    resp = requests.get(url)\n    data = parse(resp)\n    return data\n\n\n"
            "def push(url, body):\n    resp = requests.post(url, json=body)\n    check(resp)\n")
    kept, misplaced = _placed(text, {1: "    resp = requests.get(url, timeout=5)"})
    assert "    resp = requests.post(url, json=body, timeout=5)\n" in kept
    assert {"    data = parse(resp, timeout=5)\n", "    check(resp, timeout=5)\n"} <= misplaced
    assert "def push(url, body, timeout=5):\n" in misplaced  # a value put into a call is no parameter
    kept, misplaced = _placed("foo(x[0])\nbar(a)\n", {0: "foo(x[0], b)"})
    assert "bar(a, b)\n" in kept and not misplaced


def test_an_argument_put_into_empty_parentheses_is_not_glued_to_a_name():
    """`()` -> `(ctx)` anchored on the `)`: `load(selfctx)` was a candidate."""
    kept, misplaced = _placed("def run():\n    pass\n\n\nrun()\nload(self)\nrun()\n", {4: "run(ctx)"})
    assert "run(ctx)\n" in kept
    assert "load(selfctx)\n" in misplaced and not any("selfctx" in line for line in kept)


def test_a_parameter_added_to_sibling_definitions_is_still_offered_at_the_next():
    """A parameter threaded through sibling functions (`def pairwise(src, end=_UNSET)` then `def pairwise_iter`)."""
    text = "def pairwise(src):\n    return pairwise_iter(src)\n\n\ndef pairwise_iter(src):\n    return iter(src)\n"
    kept, _ = _placed(text, {0: "def pairwise(src, end=_UNSET):"})
    assert "def pairwise_iter(src, end=_UNSET):\n" in kept


def test_an_empty_first_item_breaks_code_in_every_language():
    """Go's `func main(, width int)` was shown: the brackets balance, the list does not."""
    lines = lines_of("func main() {\n")
    assert breaks_code(Edit(0, 1, "func main() {\n", "func main(, width int) {\n"), lines, python=False)
    assert not breaks_code(Edit(0, 1, "func main() {\n", "func main(width int) {\n"), lines, python=False)
    assert not breaks_code(Edit(0, 1, 'f("(, x")\n', 'f("(, x", y)\n'), lines_of('f("(, x")\n'), python=False)


def test_the_server_offers_the_argument_at_the_same_functions_call(tmp_path):
    """The user adds `width` to `def draw` and to its first call, then asks: the next edit was `log(a, width)`."""
    uri = "file:///project/draw.py"
    client = LspClient(server_command(tmp_path / "no-model", tmp_path / "t.sqlite3"))
    try:
        client.initialize({"acceptanceGate": False, "editCoalesceMs": 50})
        client.did_open(uri, PY)
        client.did_change(uri, 2, [change_at(0, 22, ", width")])
        client.did_change(uri, 3, [change_at(5, 17, ", width")])
        [offered] = client.next_edit(uri, 3, 5, 24)
        start = offered["range"]["start"]
        assert (start["line"], offered["newText"]) == (7, ", width"), offered
    finally:
        client.shutdown()
