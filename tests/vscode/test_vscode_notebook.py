"""Real VS Code with a Jupyter notebook: code-server (its built-in ipynb support; no kernel is needed to edit
cells) with the packaged extension, driven by playwright-core in headless Chromium
(vscode-client/test/e2eNotebook.mjs), against the real server and the model under test.

Ghost text appears in a code cell, Tab inserts it, and the server records the suggestion under the cell's URI as
accepted, made with the cell above it, and the notebook as opened with all its cells; with the proposed API and
without it. With the proposed API (next edit does not depend on it: once is enough), a parameter renamed at its
definition in another cell brings the predicted next edit, its use renamed, which Tab applies and the server records
under that cell's URI as accepted; once that cell's uses are renamed, the rename is carried to its use in the cell
below: shown in that cell's editor, applied there by Tab (the cursor following it), and recorded as accepted with that
cell's URI in its generated details. A cell far below, out of view, has no editor: the hint for its edit is shown at
the cursor, naming the cell, and Tab scrolls to it and applies the edit there. Screenshots are copied to artifacts/vscode/ (prefix `notebook-`).

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
CELLS = ["import os\n\n\ndef load(path):\n    with open(path) as f:\n        return f.read()\n", "",
         "def scale(values, factor):\n    total = sum(values)\n    return [v * factor / total for v in values]\n",
         "print(scale(values=[1, 2], factor=3))\n"]
TYPED = "text = lo"  # typed into the second cell
# Next edit: in the third cell the parameter is renamed at its definition; the model should then rename its first use.
NEXT_EDIT_CELL, RENAMED, RENAMED_TO = 2, "values", "items"
EXPECTED_AFTER_NEXT_EDIT = ["def scale(items, factor):", "    total = sum(items)",
                            "    return [v * factor / total for v in values]"]
# ...and with the third cell's uses renamed, the fourth's keyword argument
OTHER_CELL, EXPECTED_IN_OTHER_CELL = 3, ["print(scale(items=[1, 2], factor=3))"]
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
            if proposed_api:
                config["nextEdit"] = {"cell": NEXT_EDIT_CELL, "line": 0, "word": RENAMED, "replacement": RENAMED_TO,
                                      "timeoutMs": 20000, "otherCell": OTHER_CELL}
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

            # the server synced the notebook: it opened with all its cells, the second the one typed in
            opened = wait_for_rows(db, "SELECT notebook_uri, cells FROM notebooks WHERE kind = 'open'")
            assert opened, f"no notebook opened: {query(db, 'SELECT notebook_uri, kind FROM notebooks')}\n{why}"
            notebook_uri, cells = opened[-1]
            assert notebook_uri.endswith("/" + NOTEBOOK) and len(json.loads(cells)) == len(CELLS), (opened, why)
            assert json.loads(cells)[1] == cell_uri, (opened, cell_uri, why)
            if proposed_api:
                check_next_edit(db, result, json.loads(cells)[NEXT_EDIT_CELL], why)
                check_next_edit_in_other_cell(db, result, json.loads(cells), why)
    finally:
        record_property("test_elapsed_s", round(time.monotonic() - t0, 2))


def check_next_edit(db: Path, result: dict, cell_uri: str, why: str) -> None:
    """The rename in the cell, then the predicted next edit: shown as a decoration, applied with Tab, recorded under
    the cell's URI as shown and accepted."""
    renamed = [ln.rstrip() for ln in result.get("linesAfterRename", []) if ln.strip()]
    assert renamed[:1] == [EXPECTED_AFTER_NEXT_EDIT[0]], f"the rename did not happen: {renamed!r}\n{why}"
    assert result.get("nextEditHint"), f"no next edit shown in the cell\n{why}"
    after = [ln.rstrip() for ln in result["linesAfterNextEdit"] if ln.strip()]
    assert after == EXPECTED_AFTER_NEXT_EDIT, (
        f"after Tab the cell reads {after!r}, expected {EXPECTED_AFTER_NEXT_EDIT!r}\n{why}")
    # (the hint shown after Tab, if any, is the edit that follows: the other use renamed)
    # an edit in the cell itself: no generated details naming another cell (the rename carried below is also
    # requested from this cell, with the same text, and would otherwise stand in for this one)
    applied = wait_for_rows(db, "SELECT s.uri, s.text, s.shown_at FROM suggestions s JOIN suggestion_events e "
                                "ON e.suggestion_id = s.id WHERE s.kind = 'next_edit' AND s.outcome = 'accepted' "
                                "AND e.type = 'suggestion_generated' AND json_extract(e.payload, '$.details.uri') "
                                "IS NULL ORDER BY s.requested_at")
    edits = query(db, "SELECT uri, outcome, reject_reason, text FROM suggestions WHERE kind = 'next_edit'")
    assert applied, f"no accepted next edit in telemetry: {edits}\n{why}"
    uri, text, shown_at = applied[-1]
    assert uri == cell_uri and text == RENAMED_TO and shown_at is not None, (applied, cell_uri, why)


def check_next_edit_in_other_cell(db: Path, result: dict, cell_uris: list[str], why: str) -> None:
    """After the renamed cell's own uses, the rename carried to the cell below: shown in its editor, applied there by
    Tab with the cursor moved into it, recorded as accepted (requested from the renamed cell, its generated details
    naming the cell below)."""
    assert result.get("otherCellHint"), f"no next edit shown in cell {OTHER_CELL}\n{why}"
    after = [ln.rstrip() for ln in result.get("otherCellLinesAfter", []) if ln.strip()]
    assert after == EXPECTED_IN_OTHER_CELL, (
        f"after Tab cell {OTHER_CELL} reads {after!r}, expected {EXPECTED_IN_OTHER_CELL!r}\n{why}")
    assert result.get("focusedCellAfterOtherCell") == OTHER_CELL, (
        f"after Tab the focus is in cell {result.get('focusedCellAfterOtherCell')}, not {OTHER_CELL}\n{why}")
    other_uri = cell_uris[OTHER_CELL]
    generated = ("SELECT s.uri, s.text, s.shown_at FROM suggestions s JOIN suggestion_events e ON e.suggestion_id = s.id "
                 "WHERE s.kind = 'next_edit' AND s.outcome = 'accepted' AND e.type = 'suggestion_generated' "
                 "AND json_extract(e.payload, '$.details.uri') = ?")
    applied = wait_for_rows(db, generated, (other_uri,))
    edits = query(db, "SELECT s.uri, s.outcome, s.reject_reason, s.text, json_extract(e.payload, '$.details') "
                      "FROM suggestions s JOIN suggestion_events e ON e.suggestion_id = s.id "
                      "WHERE s.kind = 'next_edit' AND e.type = 'suggestion_generated'")
    assert applied, f"no accepted next edit generated for {other_uri}: {edits}\n{why}"
    uri, text, shown_at = applied[-1]
    assert uri == cell_uris[NEXT_EDIT_CELL] and text == RENAMED_TO and shown_at is not None, (applied, why)


# A rename carried to a cell far below, out of view: 20 cells of 25 lines between them
FAR_FILLER = ["".join(f"row_{n}_{i} = {i}\n" for i in range(25)) for n in range(20)]
FAR_CELLS = ["def scale(values, factor):\n    return [v * factor for v in values]\n", *FAR_FILLER,
             "print(scale(values=[1, 2], factor=3))\n"]
EXPECTED_FAR = ["print(scale(items=[1, 2], factor=3))"]


@pytest.mark.editor
def test_a_next_edit_for_a_cell_out_of_view_is_hinted_at_the_cursor_and_applied_there_in_code_server(
        tmp_path: Path, record_property):
    """A cell out of view has no editor (the notebook renders the cells on screen), so its edit used to be dropped
    unseen: now its hint is shown at the cursor, naming the cell, and Tab scrolls to that cell, applies the edit there
    (the cursor following it) and records it as accepted with that cell's URI."""
    t0 = time.monotonic()
    workspace = tmp_path / "project"
    workspace.mkdir()
    (workspace / NOTEBOOK).write_text(notebook_json(FAR_CELLS))
    db = tmp_path / "telemetry.sqlite3"
    try:
        with code_server(tmp_path, workspace, db, proposed_api=True, artifact_prefix="notebook-out-of-view") as server:
            config = {"file": NOTEBOOK, "cell": 1, "typed": "total = row_",
                      "nextEdit": {"cell": 0, "line": 0, "word": RENAMED, "replacement": RENAMED_TO,
                                   "timeoutMs": 20000, "outOfView": True}}
            run, result, why = server.run_script(E2E_NOTEBOOK, config, E2E_TIMEOUT_S, record_property)
            assert run.returncode == 0 and "error" not in result, f"the browser script failed\n{why}"
            far = len(FAR_CELLS)  # 1-based, as the hint names it
            assert f"items in cell {far}" in result["outOfViewHint"], (result["outOfViewHint"], why)
            after = [ln.rstrip() for ln in result["outOfViewLinesAfter"] if ln.strip()]
            assert after == EXPECTED_FAR, f"after Tab the focused cell reads {after!r}, expected {EXPECTED_FAR!r}\n{why}"
            opened = wait_for_rows(db, "SELECT cells FROM notebooks WHERE kind = 'open'")
            far_uri = json.loads(opened[-1][0])[far - 1]
            applied = wait_for_rows(db, "SELECT s.text, s.shown_at FROM suggestions s JOIN suggestion_events e "
                                        "ON e.suggestion_id = s.id WHERE s.kind = 'next_edit' AND s.outcome = 'accepted' "
                                        "AND e.type = 'suggestion_generated' AND json_extract(e.payload, '$.details.uri') = ?",
                                    (far_uri,))
            assert applied and applied[-1][0] == RENAMED_TO and applied[-1][1] is not None, (
                query(db, "SELECT uri, outcome, reject_reason, text FROM suggestions WHERE kind = 'next_edit'"), why)
    finally:
        record_property("test_elapsed_s", round(time.monotonic() - t0, 2))

