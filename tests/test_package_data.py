"""Every file the repository ships beside the code (models, the acceptance model, the edit ranker, telemetry data)
is in the wheel's package data, so an installed `tact` finds what a checkout finds."""

from __future__ import annotations

import ast
import fnmatch
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def package_data() -> dict[str, list[str]]:
    """The ``[tool.setuptools.package-data]`` table of pyproject.toml (read without tomllib: Python 3.10)."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    section = text.split("[tool.setuptools.package-data]", 1)[1].split("\n[", 1)[0]
    return {m.group(1): ast.literal_eval(m.group(2)) for m in re.finditer(r"^(\w+)\s*=\s*(\[.*?\])\s*$", section, re.M)}


def test_every_tracked_data_file_under_a_package_is_package_data():
    patterns = package_data()
    assert patterns.get("models")
    tracked = subprocess.run(["git", "ls-files", "models", "telemetry", "lsp_server"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.split()
    data = [p for p in tracked if not p.endswith(".py")]
    assert any(p.startswith("models/next_edit/ranker/") for p in data)  # what the check is for
    missing = []
    for path in data:
        package, rest = path.split("/", 1)
        if not any(fnmatch.fnmatch(rest, pattern) for pattern in patterns.get(package, [])):
            missing.append(path)
    assert not missing, f"tracked data files the wheel would leave out (add them to package-data): {missing}"


def test_the_modules_an_editor_checks_for_are_the_serving_dependencies():
    """An editor's check of an interpreter (lsp_server.missing_modules) looks for each dependency pyproject names
    and no other: one left out passed an interpreter the server then failed to start in."""
    import lsp_server

    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    listed = text.split("\ndependencies = [", 1)[1].split("]", 1)[0]
    names = [re.match(r"[A-Za-z0-9_.-]+", req).group(0) for req in re.findall(r'"([^"]+)"', listed)]
    assert "onnxruntime" in names
    assert sorted(lsp_server.SERVE_MODULES) == sorted(n.replace("-", "_").lower() for n in names)
    assert lsp_server.missing_modules() == []  # this environment serves
