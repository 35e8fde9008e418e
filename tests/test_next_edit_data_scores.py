"""Next-edit data and its scores, a tenth look: each test failed on the code before."""

from __future__ import annotations

import ast
import json

import pytest

from lsp_server.cli import main
from models.next_edit.baseline import _undoes
from models.next_edit.evaluate import read_examples, score
from models.next_edit.examples import Edit, Example, apply_all, apply_edit
from models.next_edit.prompt import undoes_last_edit
from models.next_edit.real_changes import paired_files

pytest.importorskip("tree_sitter_python")


def _synthetic(code: str, kinds: tuple[str, ...]) -> list[Example]:
    from models.next_edit.synthetic import examples_from_code

    return examples_from_code(code, path="m.py", package="p", kinds=kinds, per_chain=3, max_chains_per_kind=10)


@pytest.mark.parametrize("breaker", ["\x0c", "\u2028", "\x0b", "\x85"])
def test_a_line_break_tree_sitter_does_not_count_leaves_no_garbled_chain(breaker):
    """A form feed ended a line for the splitting and not for tree-sitter: every row after it was one off, the
    renames written into the wrong lines (`def g(alphalpha2ta):`) or the build stopped. Such a file gives no chains;
    the same file without the break gives sound ones."""
    code = (f"def f(width, height):\n    return width * height\n{breaker}\n"
            "def g(alpha, beta):\n    total = alpha + beta\n    return total * alpha\n")
    assert _synthetic(code, ("rename", "add_param", "sibling")) == []
    plain = _synthetic(code.replace(breaker, ""), ("rename", "add_param", "sibling"))
    assert plain
    for ex in plain:
        assert apply_all(ex.original, ex.history) == ex.current
        apply_edit(ex.current, ex.target)


def test_a_new_parameter_is_not_put_after_keyword_arguments():
    code = ("def scale(value, factor):\n    return value * factor\n\n\n"
            "a = scale(value=1, factor=2)\nb = scale(3, 4)\nc = scale(5, 6)\n")
    examples = _synthetic(code, ("add_param",))
    assert examples
    for ex in examples:
        ast.parse(apply_edit(ex.current, ex.target))  # a SyntaxError: positional argument follows keyword argument
        assert "value=1" not in ex.target.original


DELETION = Example(path="m.py", package="p", original="import os\nimport sys\nx = 1\n",
                   history=[Edit(0, 1, "import os\n", "")], current="import sys\nx = 1\n",
                   target=Edit(0, 1, "import sys\n", ""))


def test_a_no_op_is_at_no_place_and_writes_no_part_of_a_deletion():
    s = score(DELETION, Edit(0, 0, "", ""))
    assert s["no_op"] == 1 and (s["position"], s["partial"]) == (0, 0)


def test_a_blank_line_put_in_is_no_part_of_a_deletion():
    s = score(DELETION, Edit(0, 0, "", "\n"))
    assert s["no_op"] == 0 and s["partial"] == 0
    assert score(DELETION, Edit(0, 1, "import sys\n", ""))["partial"] == 1  # the deletion itself


SWAP = Example(path="m.py", package="p",
               original="class A:\n    enabled = True\n\n\nclass B:\n    enabled = False\n",
               history=[Edit(1, 2, "    enabled = True\n", "    enabled = False\n")],
               current="class A:\n    enabled = False\n\n\nclass B:\n    enabled = False\n",
               target=Edit(5, 6, "    enabled = False\n", "    enabled = True\n"))


def test_the_same_swap_elsewhere_is_no_reversal():
    """The reversal check compared the texts only: the right next edit counted as taking the last one back, and the
    served predictors never offered it."""
    s = score(SWAP, SWAP.target)
    assert s["exact"] == 1 and s["reversal"] == 0
    assert not undoes_last_edit(SWAP.history, SWAP.current, SWAP.target)
    assert not _undoes(SWAP.target, SWAP.history[-1])
    back = Edit(1, 2, "    enabled = False\n", "    enabled = True\n")  # where it was made: an undo still
    assert score(SWAP, back)["reversal"] == 1 and undoes_last_edit(SWAP.history, SWAP.current, back)
    assert _undoes(back, SWAP.history[-1])


def _row(**changes) -> str:
    row = {"path": "m.py", "package": "p", "original": "a = 1\nb = 1\n", "history": [[0, 1, "a = 1\n", "a = 2\n"]],
           "current": "a = 2\nb = 1\n", "target": [1, 2, "b = 1\n", "b = 2\n"]}
    row.update(changes)
    return json.dumps(row)


def test_rows_that_are_no_example_are_skipped_and_counted(tmp_path):
    path = tmp_path / "x_heldout.jsonl"
    path.write_text("\n".join([
        _row(),
        _row(target={"start_line": "1", "end_line": "2", "original": "b = 1\n", "updated": "b = 2\n"}),
        _row(target={"start_line": 1.5, "end_line": 2, "original": "b = 1\n", "updated": "b = 2\n"}),
        _row(current="z = 9\nb = 1\n"),  # its history does not make it
    ]) + "\n")
    examples, rows, skipped = read_examples(path)
    assert rows == 4 and len(examples) == 2 and examples[1].target.start_line == 1
    assert skipped == {"malformed fields": 1, "history not making its current text": 1}


def test_a_pair_file_in_the_data_and_a_pair_of_trees_are_refused_together(tmp_path, capsys):
    """--pair's set replaced the file's, whose count was still said."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "pair.jsonl").write_text(_row() + "\n")
    before, after = tmp_path / "a", tmp_path / "b"
    for tree, value in ((before, 1), (after, 2)):
        tree.mkdir()
        (tree / "m.py").write_text(f"x = {value}\n\n\n\ny = {value}\n")
    assert main(["eval", "next-edit", "--data", str(data), "--pair", str(before), str(after), "--no-model"]) == 2
    assert "pair.jsonl" in capsys.readouterr().err


def test_a_test_environment_in_a_tree_is_not_paired(tmp_path):
    before, after = tmp_path / "a", tmp_path / "b"
    for tree, value in ((before, 1), (after, 2)):
        for folder in ("pkg", ".tox/py311/lib/python3.11/site-packages/lib", ".nox/x", ".eggs/y"):
            (tree / folder).mkdir(parents=True)
            (tree / folder / "m.py").write_text(f"x = {value}\n")
    assert [rel for rel, _, _ in paired_files(before, after)] == ["pkg/m.py"]
