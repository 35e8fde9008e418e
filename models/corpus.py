"""Training corpus from local code: the standard library, installed site-packages and user directories.

Files are deduplicated by content, split by *package* (never files of one package on both sides)
into train / calibration (controller training, never seen by the LM) / heldout (benchmarks), and
written as JSON lines with a manifest of what went in.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import random
import stat
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from models.fim import to_lf
from models.model_dir import write_atomically

from models.progress import progress

SPLITS = ("train", "calib", "heldout")
MANIFEST = "manifest.json"
MAX_FILE_BYTES = 200_000
MAX_LINE_CHARS = 400  # files with longer lines are mostly generated data, not code
VENDOR_DIR = "_vendor"  # where packages keep copies of other packages (pip/_vendor/rich)
VENV_DIRS = {".venv", "venv"}  # virtual environments, unless a package of that name (the standard library's venv)
# Build outputs and test environments: copies of a project's own packages (build/lib/pkg beside src/pkg) under
# another first directory, so on both sides of the split by package; left out unless a package of that name (build).
BUILD_DIRS = {"build", "dist", ".tox", ".nox", ".eggs"}
SRC_DIR = "src"  # the src layout: src/pkg is pkg
# Characters (in millions) the held-out and the calibration split each keep, in their fixed order: the whole of them
# as a rule (about 5% of the packages each; on one machine 4.7M and 7.3M), bounded for a machine where a very large
# package falls to one of them.
MEASURED_SPLIT_MAX_MB = 16.0


class NoCodeError(FileNotFoundError):
    """A directory named for the corpus adds no Python file to it (an OSError: the CLI prints it as one line)."""


class CorpusError(ValueError):
    """A corpus file that `tact train corpus` did not write so (damaged, cut short); the CLI prints it as one line."""


@dataclass(frozen=True)
class SourceFile:
    package: str
    path: Path


def package_bucket(package: str, buckets: int = 100) -> int:
    """A package's bucket, from its name alone: stable across machines and runs, so a package never
    changes sides between splits (or folds) built anywhere."""
    return int(hashlib.sha1(package.encode()).hexdigest(), 16) % buckets


def split_of(package: str, heldout_percent: int = 5, calib_percent: int = 5) -> str:
    """Deterministic split by package name, stable across machines and runs."""
    bucket = package_bucket(package)
    if bucket < heldout_percent:
        return "heldout"
    if bucket < heldout_percent + calib_percent:
        return "calib"
    return "train"


def default_roots() -> list[tuple[str, Path]]:
    """(label, directory) pairs: the standard library and the running interpreter's site-packages."""
    paths = sysconfig.get_paths()
    roots = [("stdlib", Path(paths["stdlib"]))]
    for key in ("purelib", "platlib"):
        p = Path(paths[key])
        if all(p != r for _, r in roots):
            roots.append(("site", p))
    return roots


def strip_label(package: str) -> str:
    """A corpus package's name without the label of the root it was found under (``site:attr`` -> ``attr``), for
    matching it with the same package named elsewhere (a release on PyPI)."""
    return package.rsplit(":", 1)[-1]


def vendored_package(path: str | Path) -> str | None:
    """The package a vendored copy is of (``.../pip/_vendor/rich/console.py`` -> ``rich``), None for a file outside
    a ``_vendor`` folder. Corpora built before vendored copies were left out hold them under their host's name."""
    parts = Path(path).parts
    if VENDOR_DIR not in parts[:-1]:
        return None
    top = parts[parts.index(VENDOR_DIR) + 1]
    if top == "__init__.py":  # the host's own file
        return None
    return top[:-3] if top.endswith(".py") else top


def own_package(root: Path) -> str | None:
    """The top-level package that ``root`` is part of, None when it is no package (holds no ``__init__.py``): a
    directory named for the corpus may be one package (``--dir mypkg``) rather than a directory of packages."""
    if not (root / "__init__.py").is_file():
        return None
    top = Path(os.path.abspath(root))
    while (top.parent / "__init__.py").is_file() and top.parent != top:
        top = top.parent
    return top.name


def iter_sources(label: str, root: Path) -> Iterator[SourceFile]:
    """Every .py file under root with its package: the first path component below root, or root's own package for
    a root that is one (its modules are not packages of their own, on both sides of the split). Vendored copies
    (``pip/_vendor/pygments``) are left out: under their host's name they would put a package's code on both
    sides of the split by package."""
    skip_dirs = {"site-packages", "dist-packages", "__pycache__", ".git", "node_modules", VENDOR_DIR}
    whole = own_package(root)

    def kept(dirpath: str, d: str) -> bool:
        if d in VENV_DIRS or d in BUILD_DIRS:
            return os.path.isfile(os.path.join(dirpath, d, "__init__.py"))
        return d not in skip_dirs and not d.endswith(".dist-info")

    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if kept(dirpath, d))
        for name in sorted(filenames):
            if not name.endswith(".py"):
                continue
            path = Path(dirpath) / name
            rel = path.relative_to(root)
            top = rel.parts[0]
            if top == SRC_DIR and len(rel.parts) > 2 and not (root / top / "__init__.py").is_file():
                top = rel.parts[1]  # src layout: the package is the one under src, as it is once installed
            package = whole or (top[:-3] if top.endswith(".py") else top)
            yield SourceFile(f"{label}:{package}", path)


def read_text(path: Path, max_bytes: int = MAX_FILE_BYTES) -> str | None:
    """A UTF-8 text file's content as Python reads source: LF line ends (CRLF and lone CR alike) and no byte order
    mark, so the same source saved either way is one text. None if too big, unreadable, binary or no regular file:
    a FIFO blocks when opened and a device (a link to /dev/zero) reads without end, its size saying 0."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode) or info.st_size > max_bytes:
            return None
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)  # at most this much, even where the file grew since
        if len(data) > max_bytes:
            return None
        text = data.decode("utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return None
    return None if "\x00" in text else to_lf(text)


def read_code(path: Path) -> str | None:
    """The file's text if it looks like hand-written UTF-8 code, else None."""
    text = read_text(path)
    if text is None or not text.strip():
        return None
    if max((len(line) for line in text.splitlines()), default=0) > MAX_LINE_CHARS:
        return None
    return text


def build_corpus(out_dir: Path, extra_dirs: list[Path] | None = None, *, max_mb: float = 80.0, seed: int = 0,
                 heldout_percent: int = 5, calib_percent: int = 5) -> dict:
    """Write ``{split}.jsonl`` and ``manifest.json`` under out_dir; returns the manifest."""
    started = time.time()
    # absolute: `--dir .` is labelled and recorded as the directory it is, not as "user:" and relative paths
    named = [(f"user:{root.name}", root) for root in (Path(os.path.abspath(d)) for d in (extra_dirs or []))]
    defaults = default_roots()
    roots = defaults + named
    # the named directories first, each walked once: one that adds nothing is refused before anything else is read
    # or written (it would add nothing silently)
    named_files = []
    for label, root in named:
        found = list(iter_sources(label, root)) if root.is_dir() else []
        if not found:
            raise NoCodeError(f"{root} holds no Python files to add (.py files outside caches, virtual environments "
                              "and vendored copies): name a directory of Python code")
        named_files += found
    files = [f for label, root in defaults if root.is_dir() for f in iter_sources(label, root)] + named_files
    # A package's side goes by its name where it is found first (standard library, site-packages, then the
    # directories named, in order): an installed package and a checkout of it, or one directory named twice, would
    # otherwise be split by their labels onto both sides. Without such a repeat each package keeps its own side.
    first_found: dict[str, str] = {}
    for f in files:
        first_found.setdefault(strip_label(f.package), f.package)
    sides = [(f, split_of(first_found[strip_label(f.package)], heldout_percent, calib_percent)) for f in files]
    # The held-out and calibration splits first, each in a fixed order (by package and path) and whole up to its own
    # budget; then the training split, shuffled by the seed, up to max_mb. With one budget over every file in the
    # shuffle's order, which held-out files stayed depended on every package installed: on one machine 149 of 381
    # held-out files (5 of 14 packages) and 287 of 911 calibration files were kept, so the benchmarks' files followed
    # what else was installed. Read first, a file that is also in the training split stays on the held-out side.
    measured = sorted(((f, side) for f, side in sides if side != "train"), key=lambda p: (p[0].package, str(p[0].path)))
    train = [(f, side) for f, side in sides if side == "train"]
    random.Random(seed).shuffle(train)
    out_dir.mkdir(parents=True, exist_ok=True)
    # the manifest goes first and comes back last: an interrupted build over an older corpus left that build's
    # manifest beside the splits' fragments, and training read them as a whole corpus
    (out_dir / MANIFEST).unlink(missing_ok=True)
    seen: set[str] = set()
    budgets = {s: int((max_mb if s == "train" else MEASURED_SPLIT_MAX_MB) * 1_000_000) for s in SPLITS}
    counts = {s: {"files": 0, "chars": 0, "packages": set()} for s in SPLITS}
    skipped = {"unreadable_or_generated": 0, "duplicate": 0, "over_budget": 0}
    handles = {s: open(out_dir / f"{s}.jsonl", "w", encoding="utf-8") for s in SPLITS}
    try:
        for src, side in progress(measured + train, "corpus", total=len(files)):
            text = read_code(src.path)
            if text is None:
                skipped["unreadable_or_generated"] += 1
                continue
            digest = hashlib.sha1(text.encode()).hexdigest()
            if digest in seen:
                skipped["duplicate"] += 1
                continue
            c = counts[side]
            if c["chars"] + len(text) > budgets[side]:
                skipped["over_budget"] += 1
                continue
            seen.add(digest)
            handles[side].write(json.dumps({"package": src.package, "path": str(src.path), "text": text}) + "\n")
            c["files"] += 1
            c["chars"] += len(text)
            c["packages"].add(src.package)
    finally:
        for h in handles.values():
            h.close()
    manifest = {
        "seed": seed,
        "max_mb": max_mb,  # the training split's; the held-out and calibration splits each MEASURED_SPLIT_MAX_MB
        "measured_split_max_mb": MEASURED_SPLIT_MAX_MB,
        "roots": [{"label": label, "path": str(root)} for label, root in roots],
        "split_rule": f"sha1(package) % 100: <{heldout_percent} heldout, <{heldout_percent + calib_percent} calib, "
                      "else train (a package name under several roots: the first root's package)",
        "skipped": skipped,
        "seconds": round(time.time() - started, 1),
        "splits": {s: {"files": c["files"], "chars": c["chars"], "packages": sorted(c["packages"])} for s, c in counts.items()},
        "versions": package_versions(set().union(*(c["packages"] for c in counts.values()))),
    }
    write_atomically(out_dir / MANIFEST, lambda tmp: tmp.write_text(json.dumps(manifest, indent=1)))
    return manifest


def package_versions(packages: Iterable[str]) -> dict[str, str]:
    """What each corpus package is, by its label: the standard library's ``Python 3.11.2``, an installed package's
    distribution and version (``site:attr`` -> ``attrs 25.3.0``), ``?`` where no installed distribution names it
    (a named directory). A split by package holds whichever versions were installed where it was built: with these,
    another machine can install the same ones and draw the same held-out samples."""
    owners = importlib.metadata.packages_distributions()  # top-level import name -> distributions that install it
    python = f"Python {platform.python_version()}"
    versions = {}
    for package in sorted(set(packages)):
        label = package.split(":", 1)[0]
        if label == "stdlib":
            versions[package] = python
            continue
        found = []
        for dist in owners.get(strip_label(package), []) if label == "site" else []:
            try:
                found.append(f"{dist} {importlib.metadata.version(dist)}")
            except importlib.metadata.PackageNotFoundError:
                continue
        versions[package] = ", ".join(sorted(set(found))) or "?"
    return versions


def read_manifest(corpus_dir: Path) -> dict:
    """A corpus's manifest.json, or CorpusError naming the fix when it is not one `tact train corpus` writes."""
    path = Path(corpus_dir) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise CorpusError(f"{path} is not a corpus manifest ({exc}): {_rebuild(corpus_dir)}") from None
    splits = manifest.get("splits") if isinstance(manifest, dict) else None
    if not isinstance(splits, dict) or not all(isinstance(splits.get(s), dict) for s in SPLITS):
        raise CorpusError(f"{path} names no {', '.join(SPLITS)} splits: {_rebuild(corpus_dir)}")
    return manifest


def iter_split(corpus_dir: Path, split: str) -> Iterator[dict]:
    """The records of a split; CorpusError at a line that is none (a file cut short), naming the line."""
    path = Path(corpus_dir) / f"{split}.jsonl"
    with open(path, "rb") as f:
        for number, line in enumerate(f, 1):
            try:
                record = json.loads(line.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
                raise CorpusError(f"{path}:{number} is not a corpus record ({exc}): {_rebuild(corpus_dir)}") from None
            if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                raise CorpusError(f"{path}:{number} is not a corpus record (no text): {_rebuild(corpus_dir)}")
            yield record


def _rebuild(corpus_dir: Path) -> str:
    return f"rebuild it with `tact train corpus --out {corpus_dir}`"


def iter_directory(source: Path) -> Iterator[dict]:
    """Records like ``iter_split`` for any directory of code (benchmarks' ``--source DIR``)."""
    for src in iter_sources("source", source):
        text = read_code(src.path)
        if text is not None:
            yield {"package": src.package, "path": str(src.path), "text": text}
