"""Real changes: the diffs between consecutive releases of small pure-Python packages.

``pip download --no-deps --no-binary :all: NAME==VERSION`` fetches each sdist into
``data/next_edit/sdists/``; the two versions' ``.py`` files are paired by path, diffed with
``difflib`` into hunks, and the hunks of a file are ordered top to bottom. Each example's history
is the earlier hunks of the file applied in order and its target the next hunk. The same pairing
works on any two directories laid side by side (``pairs_from_dirs``).
"""

from __future__ import annotations

import difflib
import json
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Iterator

from models.corpus import package_bucket, read_text, strip_label
from models.next_edit.examples import Edit, Example, lines_of

# (package, older version, newer version): small pure-Python packages with frequent releases.
PACKAGE_PAIRS: list[tuple[str, str, str]] = [
    ("attrs", "23.1.0", "23.2.0"),
    ("six", "1.15.0", "1.16.0"),
    ("idna", "3.6", "3.7"),
    ("packaging", "23.2", "24.0"),
    ("packaging", "24.0", "24.1"),
    ("platformdirs", "4.2.0", "4.2.1"),
    ("tomli", "2.0.1", "2.0.2"),
    ("more-itertools", "10.2.0", "10.3.0"),
    ("click", "8.1.6", "8.1.7"),
    ("click", "8.1.7", "8.1.8"),
    ("requests", "2.31.0", "2.32.0"),
    ("jinja2", "3.1.3", "3.1.4"),
    ("pyparsing", "3.1.1", "3.1.2"),
    ("urllib3", "2.2.0", "2.2.1"),
    ("pluggy", "1.4.0", "1.5.0"),
    ("wheel", "0.42.0", "0.43.0"),
    ("python-dateutil", "2.8.2", "2.9.0"),
    ("typing-extensions", "4.10.0", "4.11.0"),
    ("sqlparse", "0.4.4", "0.5.0"),
    ("itsdangerous", "2.1.2", "2.2.0"),
    ("werkzeug", "3.0.1", "3.0.2"),
    ("toolz", "0.12.0", "0.12.1"),
    # Added later: more pairs, so the held-out real changes say more and training sees more of them.
    ("tqdm", "4.66.1", "4.66.2"),
    ("rich", "13.7.0", "13.7.1"),
    ("pygments", "2.17.1", "2.17.2"),
    ("decorator", "5.1.0", "5.1.1"),
    ("tabulate", "0.8.10", "0.9.0"),
    ("docutils", "0.20", "0.20.1"),
    ("markdown", "3.5.1", "3.5.2"),
    ("flask", "3.0.2", "3.0.3"),
    ("marshmallow", "3.20.1", "3.20.2"),
    ("boltons", "23.0.0", "23.1.0"),
    ("cachetools", "5.3.2", "5.3.3"),
    ("filelock", "3.13.3", "3.13.4"),
    ("jsonschema", "4.21.0", "4.21.1"),
    ("networkx", "3.2", "3.2.1"),
    ("sortedcontainers", "2.3.0", "2.4.0"),
    ("pathspec", "0.12.0", "0.12.1"),
    ("tenacity", "8.2.2", "8.2.3"),
    ("mako", "1.3.0", "1.3.1"),
    ("webob", "1.8.6", "1.8.7"),
    ("bleach", "6.0.0", "6.1.0"),
    ("astroid", "3.0.2", "3.0.3"),
    ("pycparser", "2.20", "2.21"),
    ("alembic", "1.13.0", "1.13.1"),
    ("kombu", "5.3.4", "5.3.5"),
    ("gunicorn", "21.2.0", "22.0.0"),
    ("paramiko", "3.4.0", "3.4.1"),
    ("humanize", "4.9.0", "4.10.0"),
    ("croniter", "2.0.1", "2.0.2"),
    ("traitlets", "5.14.0", "5.14.1"),
    ("jmespath", "1.0.0", "1.0.1"),
    ("flake8", "7.0.0", "7.1.0"),
    ("beautifulsoup4", "4.12.2", "4.12.3"),
    # added 2026-12-03: 1,749 more training changes and 166 more held-out ones (10 more held-out packages)
    ("colorama", "0.4.5", "0.4.6"),
    ("black", "24.1.0", "24.1.1"),
    ("isort", "5.12.0", "5.13.0"),
    ("pycodestyle", "2.11.0", "2.11.1"),
    ("autopep8", "2.0.3", "2.0.4"),
    ("pylint", "3.0.2", "3.0.3"),
    ("parso", "0.8.3", "0.8.4"),
    ("jedi", "0.19.0", "0.19.1"),
    ("prompt-toolkit", "3.0.42", "3.0.43"),
    ("pexpect", "4.8.0", "4.9.0"),
    ("wcwidth", "0.2.12", "0.2.13"),
    ("tomlkit", "0.12.3", "0.12.4"),
    ("httpx", "0.26.0", "0.27.0"),
    ("httpcore", "1.0.4", "1.0.5"),
    ("anyio", "4.2.0", "4.3.0"),
    ("starlette", "0.36.2", "0.36.3"),
    ("cattrs", "23.2.2", "23.2.3"),
    ("loguru", "0.7.1", "0.7.2"),
    ("responses", "0.24.1", "0.25.0"),
    ("freezegun", "1.4.0", "1.5.0"),
    ("mock", "5.0.2", "5.1.0"),
    ("lark", "1.1.8", "1.1.9"),
    ("peewee", "3.17.0", "3.17.1"),
    ("pymysql", "1.1.0", "1.1.1"),
    ("redis", "5.0.2", "5.0.3"),
    ("celery", "5.3.5", "5.3.6"),
    ("python-dotenv", "1.0.0", "1.0.1"),
    ("blinker", "1.7.0", "1.8.0"),
    ("waitress", "2.1.2", "3.0.0"),
    ("uvicorn", "0.27.0", "0.27.1"),
    ("distro", "1.8.0", "1.9.0"),
    ("setuptools-scm", "8.0.3", "8.0.4"),
    ("build", "1.0.3", "1.1.0"),
    ("virtualenv", "20.25.0", "20.25.1"),
    ("tox", "4.12.0", "4.12.1"),
    ("openpyxl", "3.1.1", "3.1.2"),
    ("schedule", "1.2.0", "1.2.1"),
    ("apscheduler", "3.10.3", "3.10.4"),
    ("prettytable", "3.9.0", "3.10.0"),
    ("gitpython", "3.1.41", "3.1.42"),
    ("oauthlib", "3.2.1", "3.2.2"),
    ("s3transfer", "0.10.0", "0.10.1"),
    ("pyasn1", "0.5.1", "0.6.0"),
    ("pyopenssl", "24.0.0", "24.1.0"),
    ("feedparser", "6.0.10", "6.0.11"),
    ("mkdocs", "1.5.2", "1.5.3"),
    ("soupsieve", "2.4.1", "2.5"),
    ("xmltodict", "0.12.0", "0.13.0"),
]

MAX_FILE_BYTES = 300_000
MAX_HUNK_LINES = 40      # targets bigger than this are rewrites, not next edits
MAX_HISTORY = 8          # earlier hunks kept in an example (older ones are folded into `original`)
MAX_EXAMPLES_PER_FILE = 40


# Names whose code is a distribution named otherwise, in normalised form: import names (``attr`` of attrs,
# ``dateutil`` of python-dateutil), several import names of one distribution, and copies of one package's code
# under another name. Each is split as its distribution, so that code lands on one side wherever it was found.
DISTRIBUTIONS = {
    "attr": "attrs", "cattr": "cattrs", "dateutil": "python-dateutil", "bs4": "beautifulsoup4", "git": "gitpython",
    "openssl": "pyopenssl", "dotenv": "python-dotenv", "blib2to3": "black", "blackd": "black", "tlz": "toolz",
    "yaml": "pyyaml", "pil": "pillow", "sklearn": "scikit-learn", "py": "pytest", "mpl-toolkits": "matplotlib",
    "functorch": "torch", "torchgen": "torch", "distutils-hack": "setuptools", "markdown-it": "markdown-it-py",
    "httpcore2": "httpcore", "httpx2": "httpx",  # forks that keep much of their original's code
    "distutils": "setuptools",  # the standard library's distutils lives on as setuptools._distutils
}


def normalised_package(package: str) -> str:
    """The name a package is split by: its distribution's, normalised as PyPI does (lower case, runs of ``-``,
    ``_`` and ``.`` as one ``-``), without the corpus's root label (``site:``, ``stdlib:``) or a leading
    underscore (``_pytest``), and with import names mapped (``DISTRIBUTIONS``). A release package and the corpus's
    copy of it (``attrs`` and ``site:attr``) get one name, so they land on the same side."""
    name = re.sub(r"[-_.]+", "-", strip_label(package).lower()).strip("-")
    return DISTRIBUTIONS.get(name, name)


def heldout_split(package: str, heldout_percent: int = 25) -> str:
    """The next-edit split of a package, real or synthetic: a SHA-1 bucket of its normalised name (one rule for
    both, so no package's code trains the ranker and judges it too)."""
    return "heldout" if package_bucket(normalised_package(package)) < heldout_percent else "train"


def download_sdist(name: str, version: str, dest: Path, timeout: float = 300) -> Path | None:
    """The sdist archive of name==version under dest (downloaded with pip if missing), or None."""
    d = dest / f"{name}-{version}"
    found = _archives(d)
    if found:
        return found[0]
    d.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
           f"{name}=={version}", "-d", str(d)]
    try:
        subprocess.run(cmd, check=True, timeout=timeout, capture_output=True)
    except (subprocess.SubprocessError, OSError):
        return None
    found = _archives(d)
    return found[0] if found else None


def _archives(d: Path) -> list[Path]:
    if not d.is_dir():
        return []
    return sorted(p for p in d.iterdir() if p.name.endswith((".tar.gz", ".tgz", ".zip", ".tar.bz2")))


def extract(archive: Path, dest: Path) -> Path:
    """Extract archive into dest (once) and return its single top directory (or dest)."""
    if not dest.is_dir() or not any(dest.iterdir()):
        dest.mkdir(parents=True, exist_ok=True)
        if archive.name.endswith(".zip"):
            with zipfile.ZipFile(archive) as z:
                z.extractall(dest)
        else:
            with tarfile.open(archive) as t:
                members = [m for m in t.getmembers() if (m.isfile() or m.isdir())
                           and not m.name.startswith("/") and ".." not in Path(m.name).parts]
                t.extractall(dest, members=members)
    return _top(dest)


def _read(path: Path) -> str | None:
    return read_text(path, MAX_FILE_BYTES)


# at any depth: caches, virtual environments and test environments (.tox/py311/lib/.../site-packages holds
# installed libraries, paired as if the project's own changes)
SKIPPED_DIRS = {"__pycache__", ".git", ".venv", "venv", "node_modules", ".tox", ".nox", ".eggs", "site-packages",
                "dist-packages"}
SKIPPED_TOP_DIRS = {"build", "dist"}  # a tree's build output; deeper down, a package's own code (the `build` package)


def _linked(root: Path, rel: Path) -> bool:
    """Whether ``root / rel`` or a directory on the way to it inside ``root`` is a symbolic link."""
    path = root
    for part in rel.parts:
        path = path / part
        if path.is_symlink():
            return True
    return False


def paired_files(before: Path, after: Path) -> Iterator[tuple[str, str, str]]:
    """(relative path, old text, new text) for .py files present in both trees whose text differs. Symbolic links
    are not followed (a link to a file pairs it twice; one out of the tree pairs code that is not the tree's)."""
    for old in sorted(before.rglob("*.py")):
        rel = old.relative_to(before)
        if any(part in SKIPPED_DIRS for part in rel.parts) or rel.parts[0] in SKIPPED_TOP_DIRS:
            continue
        new = after / rel
        if _linked(before, rel) or _linked(after, rel) or not new.is_file():
            continue
        a, b = _read(old), _read(new)
        if a is None or b is None or a == b:
            continue
        yield rel.as_posix(), a, b


def hunks(old: str, new: str, bottom_up: bool = False) -> list[Edit]:
    """The changes from old to new as edits in file order (``bottom_up``: from the end of the file), each in the
    coordinates of the text left by applying the earlier ones (so they apply one after another)."""
    a, b = lines_of(old), lines_of(new)
    sm = difflib.SequenceMatcher(None, a, b, autojunk=False)
    changes = [op for op in sm.get_opcodes() if op[0] != "equal"]
    if bottom_up:  # an edit below leaves the lines above where they were: no shift
        return [Edit(i1, i2, "".join(a[i1:i2]), "".join(b[j1:j2])) for _, i1, i2, j1, j2 in reversed(changes)]
    out: list[Edit] = []
    shift = 0
    for _, i1, i2, j1, j2 in changes:
        out.append(Edit(i1 + shift, i2 + shift, "".join(a[i1:i2]), "".join(b[j1:j2])))
        shift += (j2 - j1) - (i2 - i1)
    return out


def examples_from_texts(path: str, package: str, old: str, new: str, *, source: str = "real",
                        split: str = "train", meta: dict | None = None, bottom_up: bool = False) -> Iterator[Example]:
    """One example per hunk after the first: history = the earlier hunks, target = this one. Release diffs do not
    say in which order the changes were made: top to bottom (the data sets) puts every target below the edits
    before it; ``bottom_up`` replays the same hunks the other way, a check on what that order teaches."""
    from models.next_edit.examples import apply_edit

    edits = hunks(old, new, bottom_up)
    texts = [old]
    try:
        for e in edits:
            texts.append(apply_edit(texts[-1], e))
    except ValueError:
        return
    if texts[-1] != new:  # lines broken where an edit writes none (a form feed, U+2028): the hunks do not replay
        return
    n = 0
    for k in range(1, len(edits)):
        target = edits[k]
        if max(target.end_line - target.start_line, len(lines_of(target.updated))) > MAX_HUNK_LINES:
            continue
        lo = max(0, k - MAX_HISTORY)
        yield Example(path=path, package=package, original=texts[lo], history=edits[lo:k], current=texts[k],
                      target=target, source=source, split=split, meta=dict(meta or {}, hunk=k, hunks=len(edits)))
        n += 1
        if n >= MAX_EXAMPLES_PER_FILE:
            return


def pairs_from_dirs(before: Path, after: Path, *, package: str | None = None, source: str = "pair",
                    split: str = "heldout", meta: dict | None = None, bottom_up: bool = False) -> Iterator[Example]:
    package = package or Path(after).name
    for rel, a, b in paired_files(Path(before), Path(after)):
        yield from examples_from_texts(rel, package, a, b, source=source, split=split, meta=meta, bottom_up=bottom_up)


def _top(d: Path) -> Path:
    """An extracted release's directory: its single top directory, as `extract` returns it."""
    entries = list(d.iterdir())
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else d


def bottom_up_examples(data_dir: Path, split: str) -> Iterator[Example]:
    """The release pairs of PACKAGE_PAIRS in ``split``, rebuilt from ``data_dir/src`` (what `tact train
    next-edit-data` extracted) with their hunks replayed bottom to top. ValueError when the sources are absent."""
    src = Path(data_dir) / "src"
    if not src.is_dir():
        raise ValueError(f"{src} does not exist: the release sources come with `tact train next-edit-data`")
    for name, v1, v2 in PACKAGE_PAIRS:
        d1, d2 = src / f"{name}-{v1}", src / f"{name}-{v2}"
        if heldout_split(name) == split and d1.is_dir() and d2.is_dir():
            yield from pairs_from_dirs(_top(d1), _top(d2), package=name, source="real", split=split,
                                       meta={"before": v1, "after": v2, "order": "bottom_up"}, bottom_up=True)


FAILURES_BEFORE_GIVING_UP = 3  # the first pairs all failing: no index to download from, not a missing release


def _no_downloads(failed: int, total: int) -> Exception:
    from models.train_lm import TrainingInputError

    return TrainingInputError(f"no release could be downloaded ({failed} of {total} pairs tried, `pip download` failed "
                              "for each): check the network or pip's index; the real examples already written are kept")


def build_real(out_dir: Path, pairs: list[tuple[str, str, str]] | None = None, *,
               sdist_dir: Path | None = None, log=print) -> dict:
    """Download, extract and diff every pair; write ``real_{split}.jsonl`` and ``real_manifest.json``."""
    from models.next_edit.examples import write_jsonl

    pairs = pairs or PACKAGE_PAIRS
    out_dir = Path(out_dir)
    sdist_dir = Path(sdist_dir or out_dir / "sdists")
    by_split: dict[str, list[Example]] = {"train": [], "heldout": []}
    manifest: dict = {"pairs": [], "failed": []}
    for name, v1, v2 in pairs:
        a1, a2 = download_sdist(name, v1, sdist_dir), download_sdist(name, v2, sdist_dir)
        if a1 is None or a2 is None:
            manifest["failed"].append({"package": name, "before": v1, "after": v2})
            log(f"download failed: {name} {v1} -> {v2}")
            if not manifest["pairs"] and len(manifest["failed"]) >= FAILURES_BEFORE_GIVING_UP:
                raise _no_downloads(len(manifest["failed"]), len(pairs))
            continue
        d1 = extract(a1, out_dir / "src" / f"{name}-{v1}")
        d2 = extract(a2, out_dir / "src" / f"{name}-{v2}")
        split = heldout_split(name)
        exs = list(pairs_from_dirs(d1, d2, package=name, source="real", split=split,
                                   meta={"before": v1, "after": v2}))
        files = len({e.path for e in exs})
        by_split[split].extend(exs)
        manifest["pairs"].append({"package": name, "before": v1, "after": v2, "split": split,
                                  "files": files, "examples": len(exs)})
        log(f"{name} {v1} -> {v2} ({split}): {files} files, {len(exs)} examples")
    if not manifest["pairs"]:
        raise _no_downloads(len(manifest["failed"]), len(pairs))
    for split, exs in by_split.items():
        write_jsonl(out_dir / f"real_{split}.jsonl", exs)
    manifest["counts"] = {s: len(v) for s, v in by_split.items()}
    (out_dir / "real_manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


if __name__ == "__main__":
    build_real(Path("data/next_edit"))
