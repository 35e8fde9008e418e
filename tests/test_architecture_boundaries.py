"""The house's layering, read from the source: `models/` and `telemetry/` never import `lsp_server`, and the
services are pygls-free (the features adapt LSP to them). Whether serving loads torch is checked by running it
(`tests/test_acceptance_gate.py`, `tests/test_documents.py`)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def imported(path: Path) -> set[str]:
    """Top-level package names a module imports anywhere in it (inside functions too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def modules(folder: str) -> list[Path]:
    found = sorted((REPO / folder).rglob("*.py"))
    assert found, folder
    return found


@pytest.mark.parametrize("folder", ["models", "telemetry"])
def test_models_and_telemetry_never_import_the_server(folder):
    offenders = [str(p.relative_to(REPO)) for p in modules(folder) if "lsp_server" in imported(p)]
    assert offenders == []


def test_the_services_are_pygls_free():
    offenders = {str(p.relative_to(REPO)): sorted(imported(p) & {"pygls", "lsprotocol"})
                 for p in modules("lsp_server/services")}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_check_sees_an_import_inside_a_function(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from lsp_server.config import Settings\n    import pygls.server\n")
    assert {"lsp_server", "pygls"} <= imported(module)
