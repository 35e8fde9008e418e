"""Next-edit examples: format, hunks in order, real-change examples from two directories."""

from __future__ import annotations

from pathlib import Path

from models.next_edit.examples import Edit, Example, apply_all, apply_edit, read_jsonl, write_jsonl
from models.next_edit.real_changes import examples_from_texts, heldout_split, hunks, paired_files, pairs_from_dirs

OLD = "".join(f"line{i} = {i}\n" for i in range(20))


def _new() -> str:
    lines = OLD.splitlines(keepends=True)
    lines[2] = "line2 = 'two'\n"
    lines[8:10] = []  # deletion
    lines.insert(14, "inserted = True\n")
    lines[17] = "line19 = 'nineteen'\n"
    return "".join(lines)


def test_hunks_are_in_file_order_and_apply_one_after_another():
    new = _new()
    hs = hunks(OLD, new)
    assert len(hs) == 4
    assert [h.start_line for h in hs] == sorted(h.start_line for h in hs)
    assert hs[0] == Edit(2, 3, "line2 = 2\n", "line2 = 'two'\n")
    assert hs[1].updated == "" and hs[1].original == "line8 = 8\nline9 = 9\n"
    assert hs[2].start_line == hs[2].end_line and hs[2].updated == "inserted = True\n"
    assert apply_all(OLD, hs) == new


def test_hunks_bottom_up_are_the_same_changes_from_the_end_and_apply_one_after_another():
    new = _new()
    top_down, bottom_up = hunks(OLD, new), hunks(OLD, new, bottom_up=True)
    assert [h.start_line for h in bottom_up] == sorted((h.start_line for h in bottom_up), reverse=True)
    assert [(h.original, h.updated) for h in bottom_up] == [(h.original, h.updated) for h in reversed(top_down)]
    assert apply_all(OLD, bottom_up) == new
    exs = list(examples_from_texts("m.py", "pkg", OLD, new, bottom_up=True))
    assert len(exs) == 3 and all(ex.target.start_line < ex.history[-1].start_line for ex in exs)  # above the last
    assert all(apply_all(ex.original, ex.history) == ex.current for ex in exs)


def test_examples_from_texts_history_and_target():
    new = _new()
    exs = list(examples_from_texts("m.py", "pkg", OLD, new))
    assert len(exs) == 3  # one per hunk after the first
    hs = hunks(OLD, new)
    for k, ex in enumerate(exs, start=1):
        assert ex.history == hs[:k] and ex.target == hs[k]
        assert apply_all(ex.original, ex.history) == ex.current
    assert apply_edit(exs[-1].current, exs[-1].target) == new


def test_jsonl_round_trip(tmp_path):
    exs = list(examples_from_texts("m.py", "pkg", OLD, _new(), split="heldout", meta={"before": "1"}))
    path = tmp_path / "x.jsonl"
    assert write_jsonl(path, exs) == len(exs)
    back = list(read_jsonl(path))
    assert back == exs
    assert list(read_jsonl(path, limit=1)) == exs[:1]
    assert isinstance(back[0], Example) and back[0].cursor_line >= back[0].history[-1].start_line


def test_apply_edit_rejects_a_stale_edit():
    import pytest

    with pytest.raises(ValueError):
        apply_edit("a\nb\n", Edit(0, 1, "x\n", "y\n"))


def _tree(root: Path, files: dict[str, str | bytes]) -> Path:
    for rel, content in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content if isinstance(content, bytes) else content.encode())
    return root


def test_pair_directories_skip_unchanged_binary_and_unpaired(tmp_path):
    before = _tree(tmp_path / "v1", {"pkg/a.py": OLD, "pkg/same.py": "x = 1\n", "pkg/gone.py": "y = 1\n",
                                     "pkg/bin.py": b"\xff\xfe\x00", "README": "old"})
    after = _tree(tmp_path / "v2", {"pkg/a.py": _new(), "pkg/same.py": "x = 1\n", "pkg/new.py": "z = 1\n",
                                    "pkg/bin.py": b"\xff\xfe\x01", "README": "new"})
    assert [rel for rel, _, _ in paired_files(before, after)] == ["pkg/a.py"]
    exs = list(pairs_from_dirs(before, after, package="demo"))
    assert len(exs) == 3 and all(e.path == "pkg/a.py" and e.package == "demo" for e in exs)


def test_split_is_deterministic_by_package():
    """The same sides on every machine and run (a SHA-1 of the name, not Python's salted hash): data built
    elsewhere, and the shipped ranker's held-out figures, depend on it."""
    assert {p: heldout_split(p) for p in ("attrs", "six", "idna", "packaging", "platformdirs", "click")} == {
        "attrs": "heldout", "six": "train", "idna": "train", "packaging": "train", "platformdirs": "heldout",
        "click": "train"}
    assert heldout_split("site:PlatformDirs") == heldout_split("platformdirs")  # one name, however it is spelt


# (a release package on PyPI, the name the code corpus gives its code): import names, several import names of one
# distribution, a leading underscore, case and separators, and a fork that keeps its original's code
SAME_CODE = [("attrs", "site:attr"), ("attrs", "site:attrs"), ("cattrs", "site:cattr"),
             ("python-dateutil", "site:dateutil"), ("httpcore", "site:httpcore2"), ("httpx", "site:httpx2"),
             ("typing-extensions", "site:typing_extensions"), ("prompt-toolkit", "user:code:prompt_toolkit"),
             ("beautifulsoup4", "site:bs4"), ("PyYAML", "site:_yaml"), ("pyyaml", "site:yaml"),
             ("pytest", "site:_pytest"), ("pytest", "site:py"), ("setuptools", "stdlib:distutils"),
             ("Pygments", "site:pygments")]


def test_a_release_package_and_the_corpus_copy_of_it_share_a_split():
    for real, corpus in SAME_CODE:
        assert heldout_split(real) == heldout_split(corpus), (real, corpus)
    assert {heldout_split(real) for real, _ in SAME_CODE} == {"train", "heldout"}  # both sides are exercised
    from models.next_edit.real_changes import normalised_package

    assert all(normalised_package(real) == normalised_package(corpus) for real, corpus in SAME_CODE)


def test_packages_sharing_code_under_unrelated_names_fall_on_one_side():
    # unittest.mock is released as mock, lib2to3 forked into black's blib2to3, tomli became tomllib: the hash puts
    # each pair on one side; if it ever did not, the pair would need an entry in DISTRIBUTIONS
    for real, corpus in [("mock", "stdlib:unittest"), ("black", "stdlib:lib2to3"), ("tomli", "stdlib:tomllib")]:
        assert heldout_split(real) == heldout_split(corpus), (real, corpus)


def test_normalising_moves_no_release_package():
    """The real split as built before the names were normalised: the raw name's bucket."""
    from models.corpus import package_bucket
    from models.next_edit.real_changes import PACKAGE_PAIRS

    for name, _, _ in PACKAGE_PAIRS:
        assert heldout_split(name) == ("heldout" if package_bucket(name) < 25 else "train"), name
