"""Real VS Code with a Jupyter notebook: code-server (its built-in ipynb support; no kernel is needed to edit
cells) with the packaged extension, driven by playwright-core in headless Chromium
(vscode-client/test/e2eNotebook.mjs), against the real server and the model under test.

Ghost text appears in a code cell, Tab inserts it, and the server records the suggestion under the cell's URI as
accepted, made with the cell above it, and the notebook as opened with both cells; with the proposed API and
without it. Screenshots are copied to artifacts/vscode/ (prefix `notebook-`).

Setup: scripts/install-vscode-test (scripts/test runs it).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.editors.support import query
from tests.lsp_support import wait_for_rows
from tests.vscode.code_server import CLIENT, code_server

E2E_NOTEBOOK = CLIENT / "test" / "e2eNotebook.mjs"
NOTEBOOK = "analysis.ipynb"
# the first cell defines what the second one uses: with notebook sync the model sees it before the cell's text
CELLS = ["import os\n\n\ndef load(path):\n    with open(path) as f:\n        return f.read()\n", ""]
TYPED = "text = lo"  # typed into the second cell
E2E_TIMEOUT_S = 90


def notebook_json(cells: list[str]) -> str:
    """An nbformat 4 notebook of code cells whose language is Python (what code-server's ipynb support reads)."""
    return json.dumps({
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {
            "kernelspec": {"language": "python", "name": "python3", "display_name": "Python 3"},
            "language_info": {"name": "python"},
        },
        "cells": [{"cell_type": "code", "id": f"cell{i}", "metadata": {}, "execution_count": None, "outputs": [],
                   "source": source.splitlines(keepends=True)} for i, source in enumerate(cells)],
    }, indent=1)


@pytest.mark.editor
@pytest.mark.parametrize("proposed_api", [True, False], ids=["proposed-api", "inferred"])
def test_ghost_text_accepted_in_a_notebook_cell_in_code_server(tmp_path: Path, record_property, proposed_api: bool):
    """Shown is reported by VS Code with the proposed API, else by the extension, which follows the cell's editor."""
    t0 = time.monotonic()
    workspace = tmp_path / "project"
    workspace.mkdir()
    (workspace / NOTEBOOK).write_text(notebook_json(CELLS))
    db = tmp_path / "telemetry.sqlite3"
    prefix = "notebook-proposed-api" if proposed_api else "notebook-inferred"
    try:
        with code_server(tmp_path, workspace, db, proposed_api=proposed_api, artifact_prefix=prefix) as server:
            config = {"file": NOTEBOOK, "cell": 1, "typed": TYPED}
            run, result, why = server.run_script(E2E_NOTEBOOK, config, E2E_TIMEOUT_S, record_property)
            assert run.returncode == 0 and "error" not in result, f"the browser script failed\n{why}"
            assert result["ghost"], f"no ghost text read from the cell\n{why}"

            # the suggestion was made for the cell (its own document, under its cell URI), seeing the cell above it,
            # and accepted
            accepted = wait_for_rows(db, "SELECT uri, text, shown_at, json_extract(context, '$.earlier_cells_chars') "
                                         "FROM suggestions WHERE kind = 'completion' AND outcome = 'accepted' "
                                         "AND uri LIKE 'vscode-notebook-cell:%'")
            assert accepted, (f"no accepted suggestion for a notebook cell: "
                              f"{query(db, 'SELECT uri, outcome FROM suggestions')}\n{why}")
            cell_uri, text, shown_at, earlier_chars = accepted[-1]
            assert NOTEBOOK in cell_uri and text and shown_at is not None, (accepted, why)
            assert earlier_chars, f"the suggestion's prompt had no earlier cell: {accepted[-1]}\n{why}"
            # ...and Tab put it into the cell, after what was typed
            assert [ln.rstrip() for ln in result["linesAfterAccept"] if ln.strip()] == [(TYPED + text).rstrip()], (
                f"the cell after Tab reads {result['linesAfterAccept']!r}, expected {TYPED!r} and the suggestion "
                f"{text!r}\n{why}")

            # the server synced the notebook: it opened with both cells, the second the one typed in
            opened = wait_for_rows(db, "SELECT notebook_uri, cells FROM notebooks WHERE kind = 'open'")
            assert opened, f"no notebook opened: {query(db, 'SELECT notebook_uri, kind FROM notebooks')}\n{why}"
            notebook_uri, cells = opened[-1]
            assert notebook_uri.endswith("/" + NOTEBOOK) and len(json.loads(cells)) == len(CELLS), (opened, why)
            assert json.loads(cells)[1] == cell_uri, (opened, cell_uri, why)
    finally:
        record_property("test_elapsed_s", round(time.monotonic() - t0, 2))

