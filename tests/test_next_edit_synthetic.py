"""Synthetic next-edit chains made with tree-sitter."""

from __future__ import annotations

import pytest

from models.next_edit.examples import apply_all, apply_edit

pytest.importorskip("tree_sitter_python")

CODE = '''\
import os


def load(path, mode):
    handle = open(path, mode)
    data = handle.read()
    print(path, len(data))
    return data, path


def main():
    load("a.txt", "r")
    x = load("b.txt", "rb")
    out.append(1)
    out.append(2)
    out.append(3)
    return x
'''


def _examples(kind, **kw):
    from models.next_edit.synthetic import examples_from_code

    return examples_from_code(CODE, path="m.py", package="demo", kinds=(kind,), **kw)


def _consistent(ex):
    assert apply_all(ex.original, ex.history) == ex.current
    apply_edit(ex.current, ex.target)
    assert ex.target.original != ex.target.updated


def test_rename_chain_starts_at_the_definition():
    exs = _examples("rename", per_chain=3)
    assert exs
    for ex in exs:
        _consistent(ex)
        assert ex.source == "synthetic:rename"
        first = ex.history[0]
        assert first.original.startswith("def ")  # the parameter is renamed at the def first
        old, new = first.original, first.updated
        assert old != new
    # a renamed parameter is renamed on every later line of the chain, never inside the attribute of x.attr
    full = max(exs, key=lambda e: len(e.history))
    assert all(e.start_line > full.history[0].start_line for e in full.history[1:])


def test_add_param_updates_call_sites():
    exs = _examples("add_param", per_chain=2)
    assert exs
    for ex in exs:
        _consistent(ex)
        assert ex.history[0].original.startswith("def load(")
        assert "load(" in ex.target.original
        new_param = ex.history[0].updated.split(", ")[-1].split(")")[0]
        assert new_param in ex.target.updated and new_param not in ex.target.original


def test_sibling_lines_get_the_same_change():
    exs = _examples("sibling", per_chain=2)
    assert exs
    for ex in exs:
        _consistent(ex)
        assert ex.target.original.strip().startswith("out.append(")
        assert not ex.target.updated.strip().startswith("out.append(")


def test_deterministic_with_a_seed_and_broken_code_is_skipped():
    from models.next_edit.synthetic import examples_from_code

    a = examples_from_code(CODE, path="m.py", seed=3)
    b = examples_from_code(CODE, path="m.py", seed=3)
    assert [e.to_json() for e in a] == [e.to_json() for e in b]
    assert {e.source for e in a} == {"synthetic:rename", "synthetic:add_param", "synthetic:sibling"}
    assert examples_from_code("def f(:\n  pass\n") == []


def test_train_next_edit_data_synthetic_cli(tmp_path, capsys):
    import json

    from lsp_server.cli import main
    from models.next_edit.examples import read_jsonl

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for split in ("train", "heldout"):
        rec = {"package": f"user:{split}", "path": f"{split}.py", "text": CODE}
        (corpus / f"{split}.jsonl").write_text(json.dumps(rec) + "\n")
    out = tmp_path / "out"
    assert main(["train", "next-edit-data", "--synthetic", "--corpus", str(corpus), "--out", str(out)]) == 0
    assert "synthetic:" in capsys.readouterr().out
    exs = list(read_jsonl(out / "synthetic_heldout.jsonl"))
    assert exs and all(e.split == "heldout" and e.package == "user:heldout" for e in exs)
