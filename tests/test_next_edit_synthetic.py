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


def _named(split: str, prefix: str = "user:code:pkg") -> str:
    """A package name the next-edit split puts on ``split``."""
    from models.next_edit.real_changes import heldout_split

    return next(name for name in (f"{prefix}{i}" for i in range(200)) if heldout_split(name) == split)


def _corpus(directory, files: dict[str, list[tuple[str, str]]]):
    """A corpus laid out as `tact train corpus` writes it: {corpus split: [(package, path), ...]}."""
    import json

    directory.mkdir()
    for split, recs in files.items():
        lines = [json.dumps({"package": package, "path": path, "text": CODE}) for package, path in recs]
        (directory / f"{split}.jsonl").write_text("".join(line + "\n" for line in lines))
    return directory


def test_train_next_edit_data_synthetic_cli(tmp_path, capsys):
    from lsp_server.cli import main
    from models.next_edit.examples import read_jsonl

    held, kept = _named("heldout"), _named("train")
    corpus = _corpus(tmp_path / "corpus", {"train": [(held, "a.py")], "heldout": [(kept, "b.py")]})
    out = tmp_path / "out"
    assert main(["train", "next-edit-data", "--synthetic", "--corpus", str(corpus), "--out", str(out)]) == 0
    assert "synthetic:" in capsys.readouterr().out
    exs = list(read_jsonl(out / "synthetic_heldout.jsonl"))
    assert exs and all(e.split == "heldout" and e.package == held for e in exs)
    assert {e.package for e in read_jsonl(out / "synthetic_train.jsonl")} == {kept}


def test_synthetic_chains_follow_the_release_split_not_the_corpus_split(tmp_path):
    """attrs's release changes are held out: the corpus's copy of its code (``site:attr``, in the corpus's train
    split) gives held-out chains only, from whichever corpus split, and so does a vendored copy of it."""
    from models.corpus import split_of
    from models.next_edit.examples import read_jsonl
    from models.next_edit.real_changes import heldout_split
    from models.next_edit.synthetic import build_synthetic

    assert heldout_split("attrs") == "heldout" and split_of("site:attr") == "train"
    host = _named("train", "site:host")  # a package of the train side that vendors attrs
    kept = _named("train", "stdlib:mod")
    calib_held = _named("heldout", "site:calib")
    corpus = _corpus(tmp_path / "corpus", {
        "train": [("site:attr", "site-packages/attr/_make.py"), (kept, "lib/mod.py"),
                  (host, "site-packages/host/_vendor/attr/_make2.py"), (host, "site-packages/host/main.py")],
        "calib": [(calib_held, "site-packages/calib/x.py")],
        "heldout": [("site:attrs", "site-packages/attrs/__init__.py")]})
    counts = build_synthetic(corpus, tmp_path / "out", log=lambda _: None)
    train = list(read_jsonl(tmp_path / "out" / "synthetic_train.jsonl"))
    heldout = list(read_jsonl(tmp_path / "out" / "synthetic_heldout.jsonl"))
    assert counts == {"train": len(train), "heldout": len(heldout)}
    assert {e.package for e in heldout} == {"site:attr", "site:attrs", calib_held}
    assert {e.path for e in heldout if e.package == "site:attr"} == {"site-packages/attr/_make.py",
                                                                    "site-packages/host/_vendor/attr/_make2.py"}
    assert {e.package for e in train} == {kept, host}
    assert all(e.split == "train" for e in train) and all(e.split == "heldout" for e in heldout)
