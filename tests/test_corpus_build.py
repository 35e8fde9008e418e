"""`tact train corpus` on small directories of code: a package never lands on both sides of the split however it is
reached, files that cannot be read as code are skipped and counted rather than stopping the build, source is stored
as Python reads it, and a directory that adds nothing is refused."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from lsp_server.cli import main
from models.corpus import (SPLITS, build_corpus, iter_sources, iter_split, package_versions, read_text, split_of,
                           strip_label)

REPO = Path(__file__).resolve().parents[1]


def write_package(root: Path, name: str, version: str, modules: int = 8) -> None:
    """A package ``name`` under ``root``: an __init__ and ``modules`` modules whose text names ``version``."""
    (root / name).mkdir(parents=True)
    (root / name / "__init__.py").write_text(f'"""{name} {version}."""\n')
    for i in range(modules):
        (root / name / f"m{i}.py").write_text(f"def f{i}(x):\n    return x + {i}  # {version}\n")


def sides_by_name(corpus: Path) -> dict[str, set[str]]:
    """The splits that hold each package, by its name without the root's label."""
    sides = defaultdict(set)
    for split in SPLITS:
        for rec in iter_split(corpus, split):
            sides[strip_label(rec["package"])].add(split)
    return sides


def differently_split(first: str, second: str) -> str:
    """A package name that the split rule sends to different sides under the two labels."""
    return next(n for n in (f"pkg{i}" for i in range(500)) if split_of(f"{first}:{n}") != split_of(f"{second}:{n}"))


def test_an_installed_package_and_a_checkout_of_it_land_on_the_same_side(tmp_path, monkeypatch):
    """The split hashed the root's label with the name: ``site:pkg4`` went to calib and the user's checkout of it,
    ``user:checkout:pkg4`` (another version: no file deduplicated), to train."""
    site, checkout = tmp_path / "site", tmp_path / "checkout"
    name = differently_split("site", "user:checkout")
    write_package(site, name, "1.0")
    write_package(checkout, name, "2.0-dev")
    monkeypatch.setattr("models.corpus.default_roots", lambda: [("site", site)])
    manifest = build_corpus(tmp_path / "corpus", [checkout], max_mb=1)
    sides = sides_by_name(tmp_path / "corpus")
    assert sum(s["files"] for s in manifest["splits"].values()) == 18
    assert sides[name] == {split_of(f"site:{name}")}


def test_one_directory_named_twice_puts_each_package_on_one_side(tmp_path, monkeypatch):
    """A directory named by --dir and again through a symlink of another name gave each copy its own label, so
    deduplication kept some files of a package under one label and the rest under the other, on the other side."""
    code = tmp_path / "code"
    name = differently_split("user:code", "user:link")
    write_package(code, name, "1.0", modules=20)
    os.symlink(code, tmp_path / "link")
    monkeypatch.setattr("models.corpus.default_roots", lambda: [])
    manifest = build_corpus(tmp_path / "corpus", [code, tmp_path / "link"], max_mb=1)
    assert sum(s["files"] for s in manifest["splits"].values()) == 21 and manifest["skipped"]["duplicate"] == 21
    assert len(sides_by_name(tmp_path / "corpus")[name]) == 1


def test_a_directory_that_is_itself_a_package_is_one_package(tmp_path, monkeypatch):
    """--dir mypkg (a package: it holds __init__.py) made each of its modules and subpackages a package of its
    own (``user:mypkg:__init__``, ``user:mypkg:a``, ``user:mypkg:sub``), and they went to different sides."""
    pkg = tmp_path / "mypkg"
    (pkg / "sub").mkdir(parents=True)
    for rel in ("__init__.py", "a.py", "b.py", "sub/__init__.py", "sub/c.py"):
        (pkg / rel).write_text("x = 1\n")
    found = {(s.package, s.path.relative_to(pkg).as_posix()) for s in iter_sources("user:mypkg", pkg)}
    assert found == {("user:mypkg:mypkg", rel) for rel in ("__init__.py", "a.py", "b.py", "sub/__init__.py",
                                                            "sub/c.py")}
    # named from inside it, by a relative path: the same package
    monkeypatch.chdir(pkg / "sub")
    assert {s.package for s in iter_sources("user:sub", Path("."))} == {"user:sub:mypkg"}


def test_a_package_named_venv_is_kept_and_a_virtual_environment_left_out(tmp_path):
    """Directories named venv were skipped as virtual environments wherever they were: the standard library's own
    venv package never reached the corpus."""
    for rel in ("venv/__init__.py", "venv/__main__.py", "json/__init__.py", ".venv/bin/tool.py",
                "project/venv/lib/helper.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x = 1\n")
    found = {s.path.relative_to(tmp_path).as_posix() for s in iter_sources("stdlib", tmp_path)}
    assert found == {"venv/__init__.py", "venv/__main__.py", "json/__init__.py"}


BUILD = """
import json, resource, sys
from pathlib import Path
resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
import models.corpus as corpus
corpus.default_roots = lambda: []
manifest = corpus.build_corpus(Path(sys.argv[1]), [Path(sys.argv[2])], max_mb=1)
print(json.dumps(manifest))
"""


def test_a_pipe_a_device_or_a_broken_link_named_py_is_skipped_and_counted(tmp_path):
    """A FIFO named .py blocked the build for ever (opened to read, it waits for a writer), and a link to /dev/zero
    (a stat size of 0) was read without end until memory ran out."""
    code = tmp_path / "code"
    (code / "pkg").mkdir(parents=True)
    (code / "pkg" / "good.py").write_text("def good():\n    return 1\n")
    os.mkfifo(code / "pkg" / "pipe.py")
    os.symlink("/dev/zero", code / "pkg" / "zero.py")
    os.symlink(code / "missing.py", code / "pkg" / "broken.py")
    proc = subprocess.run([sys.executable, "-c", BUILD, str(tmp_path / "corpus"), str(code)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    manifest = json.loads(proc.stdout)
    assert manifest["skipped"]["unreadable_or_generated"] == 3
    assert sum(s["files"] for s in manifest["splits"].values()) == 1


@pytest.mark.parametrize("raw", [b"\xef\xbb\xbfdef f():\r\n    return 1\r\n", b"def f():\r    return 1\r",
                                 b"def f():\r\n    return 1\r"])
def test_source_is_stored_as_python_reads_it_and_deduplicated_so(tmp_path, monkeypatch, raw):
    """Only CRLF became LF: a byte order mark stayed at the start of the text and lone CR line ends (which Python
    reads as line ends) stayed CR, so the same source with other line ends was stored twice."""
    path = tmp_path / "code" / "pkg" / "a.py"
    path.parent.mkdir(parents=True)
    path.write_bytes(raw)
    (path.parent / "b.py").write_text("def f():\n    return 1\n")
    assert read_text(path) == "def f():\n    return 1\n"
    monkeypatch.setattr("models.corpus.default_roots", lambda: [])
    manifest = build_corpus(tmp_path / "corpus", [tmp_path / "code"], max_mb=1)
    assert manifest["skipped"]["duplicate"] == 1 and sum(s["files"] for s in manifest["splits"].values()) == 1


@pytest.mark.parametrize("contents", [(), ("README.md", "__pycache__/a.py", "_vendor/six.py")])
def test_a_named_directory_without_python_code_is_refused_before_anything_is_written(tmp_path, monkeypatch, capsys,
                                                                                     contents):
    """An empty --dir (or one with no .py file the corpus takes) added nothing, silently: the build ran and the
    manifest listed it among the roots as if it had."""
    monkeypatch.setattr("models.corpus.default_roots", lambda: [])
    code = tmp_path / "code"
    code.mkdir()
    for rel in contents:
        (code / rel).parent.mkdir(parents=True, exist_ok=True)
        (code / rel).write_text("x = 1\n")
    assert main(["train", "corpus", "--out", str(tmp_path / "corpus"), "--dir", str(code)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == f"tact train corpus: error: {code} holds no Python files to add (.py files outside " \
                                 "caches, virtual environments and vendored copies): name a directory of Python code\n"
    assert not (tmp_path / "corpus").exists()


def test_a_directory_named_by_a_relative_path_is_the_same_root_as_by_its_full_path(tmp_path, monkeypatch):
    """`--dir .` was labelled ``user:`` (the name of "." is empty) and recorded with paths relative to wherever
    the build ran: the same directory named by its full path gave other package names, so other sides."""
    code = tmp_path / "code"
    for i in range(20):
        write_package(code, f"pkg{i}", "1.0", modules=1)
    monkeypatch.setattr("models.corpus.default_roots", lambda: [])
    by_path = build_corpus(tmp_path / "by_path", [code], max_mb=1)
    monkeypatch.chdir(code)
    here = build_corpus(tmp_path / "here", [Path(".")], max_mb=1)
    assert here["roots"] == by_path["roots"] == [{"label": "user:code", "path": str(code)}]
    assert here["splits"] == by_path["splits"]
    assert [r["path"] for r in iter_split(tmp_path / "here", "train")] == \
        [r["path"] for r in iter_split(tmp_path / "by_path", "train")]


def test_the_manifest_names_each_packages_version(tmp_path, monkeypatch):
    """The split holds whichever versions were installed where it was built: the manifest says which, so that another
    machine can draw the same held-out samples."""
    site = tmp_path / "site"
    write_package(site, "pygments", "installed")
    write_package(site, "no_such_distribution_here", "1.0")
    monkeypatch.setattr("models.corpus.default_roots", lambda: [("stdlib", tmp_path / "nothing"), ("site", site)])
    manifest = build_corpus(tmp_path / "corpus", max_mb=1)
    import pygments
    assert manifest["versions"] == {"site:pygments": f"Pygments {pygments.__version__}",
                                    "site:no_such_distribution_here": "?"}
    assert package_versions(["stdlib:dbm", "user:mine"]) == {"stdlib:dbm": f"Python {platform.python_version()}",
                                                             "user:mine": "?"}


def test_the_held_out_split_keeps_its_files_whatever_else_is_installed(tmp_path, monkeypatch):
    """One budget over every file in the shuffle's order kept a share of the held-out files that depended on every
    other package installed (on one machine 149 of 381): the benchmarks' files followed the machine. The held-out and
    calibration splits are read first, whole, in a fixed order; the budget bounds the training split."""
    site = tmp_path / "site"
    monkeypatch.setattr("models.corpus.default_roots", lambda: [("site", site)])
    held = next(n for n in (f"pkg{i}" for i in range(500)) if split_of(f"site:{n}") == "heldout")
    write_package(site, held, held)
    training = [n for n in (f"lib{i}" for i in range(500)) if split_of(f"site:{n}") == "train"]
    for name in training[:20]:
        write_package(site, name, name)
    first = build_corpus(tmp_path / "first", max_mb=0.002)
    kept = [r["path"] for r in iter_split(tmp_path / "first", "heldout")]
    assert first["skipped"]["over_budget"] > 0 and first["splits"]["train"]["chars"] <= 2000
    assert len(kept) == 9 and kept == sorted(kept)  # the package's __init__ and its 8 modules
    for name in training[20:40]:  # more installed: another shuffle of the training files
        write_package(site, name, name)
    build_corpus(tmp_path / "second", max_mb=0.002)
    assert [r["path"] for r in iter_split(tmp_path / "second", "heldout")] == kept
