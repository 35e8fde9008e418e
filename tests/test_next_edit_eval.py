"""Next-edit metrics and `tact eval next-edit`."""

from __future__ import annotations

import json

import pytest

from lsp_server.cli import main
from models.next_edit.evaluate import NO_MODEL, NOT_RUN, evaluate, score
from models.next_edit.examples import Edit, Example, write_jsonl
from models.next_edit.real_changes import examples_from_texts

ORIGINAL = "a = old\nb = old\nc = old\nd = 1\n"
CURRENT = "a = new\nb = old\nc = old\nd = 1\n"
EX = Example(path="m.py", package="d", original=ORIGINAL, history=[Edit(0, 1, "a = old\n", "a = new\n")],
             current=CURRENT, target=Edit(1, 2, "b = old\n", "b = new\n"))


def test_exact_position_partial():
    assert score(EX, Edit(1, 2, "b = old\n", "b = new\n")) == {
        "predicted": 1, "exact": 1, "position": 1, "partial": 1, "no_op": 0, "reversal": 0}
    s = score(EX, Edit(1, 2, "b = old\n", "b = newer\n"))  # right place, wrong text
    assert (s["exact"], s["position"], s["partial"]) == (0, 1, 0)
    s = score(EX, Edit(1, 2, "b = old\n", "b = new\nextra()\n"))  # contains the target's first line
    assert (s["exact"], s["position"], s["partial"]) == (0, 1, 1)
    s = score(EX, Edit(2, 3, "c = old\n", "c = new\n"))  # wrong place
    assert (s["exact"], s["position"], s["partial"]) == (0, 0, 0)
    assert score(EX, None) == {"predicted": 0, "exact": 0, "position": 0, "partial": 0, "no_op": 0, "reversal": 0}


def test_no_op_and_reversal():
    assert score(EX, Edit(2, 3, "c = old\n", "c = old\n"))["no_op"] == 1
    assert score(EX, Edit(0, 1, "a = new\n", "a = old\n"))["reversal"] == 1
    assert score(EX, Edit(0, 1, "a = new\n", "a = old\n"))["no_op"] == 0


def test_evaluate_rates():
    class Fixed:
        def __init__(self, preds):
            self.preds = iter(preds)

        def predict(self, ex):
            return next(self.preds)

    exs = [EX, EX, EX, EX]
    m = evaluate(exs, Fixed([EX.target, None, Edit(0, 1, "a = new\n", "a = old\n"), Edit(3, 4, "d = 1\n", "d = 1\n")]))
    assert m["examples"] == 4 and m["predicted"] == 0.75 and m["exact"] == 0.25
    assert abs(m["reversal"] - 1 / 3) < 1e-9 and abs(m["no_op"] - 1 / 3) < 1e-9 and m["p50_ms"] >= 0


def _write(root, files):
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


def test_cli_pair_json_and_limit(tmp_path, capsys):
    before = "".join(f"def f{i}(size):\n    return size * {i}\n\n\n" for i in range(6))
    after = before.replace("size", "n")
    b = _write(tmp_path / "before", {"pkg/m.py": before, "pkg/same.py": "x = 1\n"})
    a = _write(tmp_path / "after", {"pkg/m.py": after, "pkg/same.py": "x = 1\n"})
    assert main(["eval", "next-edit", "--pair", str(b), str(a), "--json", "--no-model"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"] == NOT_RUN and out["sets"]["pair"]["model"] is None  # a model is shipped: not "no model yet"
    base = out["sets"]["pair"]["baseline"]
    assert base["examples"] == 5 and base["exact"] > 0.5 and base["reversal"] == 0
    assert main(["eval", "next-edit", "--pair", str(b), str(a), "--limit", "2", "--json"]) == 0  # the shipped model
    out = json.loads(capsys.readouterr().out)
    assert out["model"] != NO_MODEL
    assert [out["sets"]["pair"][p]["examples"] for p in ("baseline", "model", "auto")] == [2, 2, 2]
    assert "sweep" in out["sets"]["pair"]["model"]


def test_cli_bottom_up_replays_the_same_changes_the_other_way(tmp_path, capsys):
    """Release diffs say nothing of the order of their changes; the data sets replay them top to bottom."""
    before = "".join(f"def f{i}(size):\n    return size * {i}\n\n\n" for i in range(6))
    after = before.replace("size", "n")
    b = _write(tmp_path / "before", {"pkg/m.py": before})
    a = _write(tmp_path / "after", {"pkg/m.py": after})
    assert main(["eval", "next-edit", "--pair", str(b), str(a), "--bottom-up", "--json", "--no-model"]) == 0
    sets = json.loads(capsys.readouterr().out)["sets"]
    assert sets["pair"]["baseline"]["examples"] == sets["pair_bottom_up"]["baseline"]["examples"] == 5
    # the baseline looks below the last edit first: the renames above it are found less often
    assert sets["pair_bottom_up"]["baseline"]["exact"] < sets["pair"]["baseline"]["exact"]
    data = tmp_path / "data"
    data.mkdir()
    assert main(["eval", "next-edit", "--data", str(data), "--bottom-up", "--no-model"]) == 2  # no release sources
    assert "next-edit-data" in capsys.readouterr().err


def test_cli_data_dir_table(tmp_path, capsys):
    old = "a = x\nb = x\nc = x\n"
    exs = list(examples_from_texts("m.py", "d", old, "a = y\nb = x\nc = y\n", split="heldout"))
    write_jsonl(tmp_path / "real_heldout.jsonl", exs)
    write_jsonl(tmp_path / "real_train.jsonl", exs)
    assert main(["eval", "next-edit", "--data", str(tmp_path), "--limit", "5", "--no-model"]) == 0
    text = capsys.readouterr().out
    assert "real_heldout" in text and "real_train" not in text and NOT_RUN in text and NO_MODEL not in text


def test_cli_data_rows_that_are_no_examples_are_skipped_and_counted(tmp_path, capsys):
    """A row without the example fields was a KeyError traceback; a non-UTF-8 file a decode error naming no file."""
    good = list(examples_from_texts("m.py", "d", "a = x\nb = x\nc = x\n", "a = y\nb = x\nc = y\n", split="heldout"))
    write_jsonl(tmp_path / "real_heldout.jsonl", good)
    with open(tmp_path / "real_heldout.jsonl", "ab") as f:
        f.write(b'{"a": 1}\nnot json\n[1, 2]\n\x93\xff\x00binary\n'
                + json.dumps({**EX.to_json(), "history": 5}).encode() + b"\n"
                + json.dumps({**EX.to_json(), "target": [1, 2, "no such line\n", "x\n"]}).encode() + b"\n")
    assert main(["eval", "next-edit", "--data", str(tmp_path), "--no-model", "--json"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert out["sets"]["real_heldout"]["baseline"]["examples"] == len(good)
    assert out["files"]["real_heldout"]["skipped"] == {
        "missing field 'path'": 1, "not JSON": 1, "not a JSON object": 1, "not UTF-8 text": 1, "malformed fields": 1,
        "edits not matching its text": 1}
    (line,) = captured.err.splitlines()
    assert str(tmp_path / "real_heldout.jsonl") in line and f"skipped 6 of {len(good) + 6} rows" in line


@pytest.mark.parametrize("content, says", [(b'{"a": 1}\n', "1 missing field 'path'"),
                                           (bytes(range(256)) * 4, "not UTF-8 text")])
def test_cli_data_without_a_usable_example_is_one_error_naming_the_file(tmp_path, capsys, content, says):
    (tmp_path / "real_heldout.jsonl").write_bytes(content)
    assert main(["eval", "next-edit", "--data", str(tmp_path), "--no-model"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "Traceback" not in captured.err
    assert says in captured.err and str(tmp_path / "real_heldout.jsonl") in captured.err
    error = [ln for ln in captured.err.splitlines() if ": error: " in ln]
    assert len(error) == 1 and "no usable examples" in error[0] and "tact train next-edit-data" in error[0]


def test_cli_data_that_is_a_file_is_not_a_directory(tmp_path, capsys):
    f = tmp_path / "f.py"
    f.write_text("x = 1\n")
    assert main(["eval", "next-edit", "--data", str(f), "--no-model"]) == 2
    err = capsys.readouterr().err
    assert f"not a directory: {f}" in err and "does not exist" not in err and "no such" not in err


@pytest.mark.parametrize("flag, value, says", [("--threshold", "2", "must lie in 0 to 1, got 2"),
                                               ("--copy-margin", "-1", "must be 0 or more, got -1")])
def test_cli_out_of_range_numbers_are_usage_errors(tmp_path, capsys, flag, value, says):
    with pytest.raises(SystemExit) as done:
        main(["eval", "next-edit", "--data", str(tmp_path), "--no-model", flag, value])
    assert done.value.code == 2 and says in capsys.readouterr().err
