"""`tact report`: how suggestions fare in notebook cells against files, so a user can see whether notebooks get worse
suggestions; the section is there only where a database holds notebooks."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from lsp_server.cli import main
from telemetry import (
    NotebookChanged,
    SessionEnded,
    SessionStarted,
    SuggestionAccepted,
    SuggestionGated,
    SuggestionGenerated,
    SuggestionRejected,
    SuggestionRequested,
    SuggestionShown,
    TelemetryStore,
)
from telemetry.report import report
from telemetry_fakes import write_synthetic_db, write_version_1_db

FILE = "file:///w/a.py"
NOTEBOOK = "file:///w/nb.ipynb"
LISTED_CELL = "notebook-cell:///w/nb.ipynb#cell-1"  # a cell by the notebooks table alone: another editor's scheme
HOSTED_CELL = "vscode-notebook-cell://127.0.0.1:8080/w/other.ipynb#W1sZmlsZQ%3D%3D"  # by its scheme (code-server)

# (id, kind, uri, latency_ms or None, outcome: shown+accepted / shown+partial / shown+rejected / hidden / skipped,
#  earlier_cells_chars or None)
SUGGESTIONS = [
    ("f1", "completion", FILE, 10.0, "accepted", None),
    ("f2", "completion", FILE, 30.0, "rejected", None),
    ("f3", "completion", FILE, 20.0, "hidden", None),
    ("f4", "completion", FILE, None, "skipped", None),
    ("c1", "completion", LISTED_CELL, 100.0, "accepted", 40),
    ("c2", "completion", HOSTED_CELL, 200.0, "partial", None),
    ("c3", "completion", HOSTED_CELL, 300.0, "rejected", 12),
    ("n1", "next_edit", FILE, 5.0, "accepted", None),
    ("n2", "next_edit", LISTED_CELL, 7.0, "rejected", None),
    ("n3", "next_edit", HOSTED_CELL, 9.0, "hidden", None),
]


def _notebook_db(path: Path) -> Path:
    """One session of completions and next edits in a file and in two notebooks' cells (SUGGESTIONS)."""
    with TelemetryStore(path) as store:
        store.record(SessionStarted("s", "vscode", "1", "0.1.0", ts=0.0))
        store.record(NotebookChanged("s", NOTEBOOK, "jupyter-notebook", 1, "open", (LISTED_CELL,), ts=0.5))
        for n, (sid, kind, uri, latency, outcome, earlier) in enumerate(SUGGESTIONS):
            ts = 1.0 + n
            context = {"prefix_chars": 10, **({"earlier_cells_chars": earlier} if earlier else {})}
            store.record(SuggestionRequested("s", sid, kind, uri, 1, 0, 0, context=context, ts=ts))
            if outcome == "skipped":
                store.record(SuggestionGated("s", sid, 1, "skip", 0.01, 0.05, ts=ts))
                continue
            store.record(SuggestionGenerated("s", sid, "xyz", "m", "full", latency, 1, ts=ts + 0.1))
            if outcome == "hidden":
                store.record(SuggestionGated("s", sid, 2, "hide", 0.1, 0.3, ts=ts + 0.1))
                continue
            store.record(SuggestionShown("s", sid, ts=ts + 0.2))
            if outcome == "rejected":
                store.record(SuggestionRejected("s", sid, "typedOver", ts=ts + 0.3))
            else:
                store.record(SuggestionAccepted("s", sid, 1 if outcome == "partial" else 3, outcome == "partial",
                                                ts=ts + 0.3))
        store.record(SessionEnded("s", "shutdown", ts=60.0))
    return path


def _summaries(capsys, *argv) -> list[dict]:
    assert main(["report", *map(str, argv), "--json"]) == 0
    return json.loads(capsys.readouterr().out)["summaries"]


def test_the_figures_of_files_and_of_notebook_cells_are_each_their_own(tmp_path, capsys):
    db = _notebook_db(tmp_path / "nb.sqlite3")
    (summary,) = _summaries(capsys, db, "-o", tmp_path / "r")
    assert summary["requests"] == 7  # completions only, as before
    places = summary["files_vs_notebook_cells"]
    assert places["notebooks"] == 1
    assert places["completion"] == {
        "files": {"requests": 4, "shown": 2, "accepted": 1, "acceptance_rate": 0.5, "latency_p50_ms": 20.0},
        "notebook_cells": {"requests": 3, "shown": 3, "accepted": 2, "acceptance_rate": 0.6667,
                           "latency_p50_ms": 200.0, "earlier_cells": 2, "earlier_cells_rate": 0.6667},
    }
    assert places["next_edit"] == {
        "files": {"requests": 1, "shown": 1, "accepted": 1, "acceptance_rate": 1.0, "latency_p50_ms": 5.0},
        "notebook_cells": {"requests": 2, "shown": 1, "accepted": 0, "acceptance_rate": 0.0, "latency_p50_ms": 8.0,
                           "earlier_cells": 0, "earlier_cells_rate": 0.0},
    }


def test_the_page_and_the_text_say_how_notebook_cells_fare_against_files(tmp_path, capsys):
    db = _notebook_db(tmp_path / "nb.sqlite3")
    assert main(["report", str(db), "-o", str(tmp_path / "r")]) == 0
    text = capsys.readouterr().out
    assert ("  completions: files 4 requests, 2 shown, 50.0% accepted, p50 20.0 ms; notebook cells 3 requests, "
            "3 shown, 66.7% accepted, p50 200.0 ms, 66.7% with earlier cells in the prompt") in text
    assert "  next edits: files 1 requests, 1 shown, 100.0% accepted, p50 5.0 ms;" in text
    page = (tmp_path / "r" / "index.html").read_text(encoding="utf-8")
    assert "id='notebook-cells'" in page and "Files and notebook cells" in page
    assert "<td>66.7%</td>" in page and "<td>200.0</td>" in page


def test_without_notebooks_the_report_is_as_before(tmp_path, capsys):
    db = tmp_path / "files.sqlite3"
    write_synthetic_db(db, seed=1, requests=20)
    (summary,) = _summaries(capsys, db, "-o", tmp_path / "r")
    assert "files_vs_notebook_cells" not in summary
    assert main(["report", str(db), "-o", str(tmp_path / "r")]) == 0
    assert "notebook cells" not in capsys.readouterr().out
    page = (tmp_path / "r" / "index.html").read_text(encoding="utf-8")
    assert "notebook-cells" not in page and "notebook cells" not in page


def test_a_comparison_with_a_database_without_notebooks_breaks_both_down(tmp_path, capsys):
    """Beside a notebook database the other's figures are all files: drawn as such, not left blank."""
    notebooks, files = _notebook_db(tmp_path / "nb.sqlite3"), tmp_path / "files.sqlite3"
    write_synthetic_db(files, seed=1, requests=20)
    a, b = _summaries(capsys, notebooks, "--against", files, "-o", tmp_path / "r")
    assert a["files_vs_notebook_cells"]["completion"]["notebook_cells"]["requests"] == 3
    other = b["files_vs_notebook_cells"]
    assert other["notebooks"] == 0 and other["completion"]["files"]["requests"] == b["requests"] == 20
    assert other["completion"]["notebook_cells"] == {"requests": 0, "shown": 0, "accepted": 0, "acceptance_rate": None,
                                                     "latency_p50_ms": None, "earlier_cells": 0,
                                                     "earlier_cells_rate": None}
    page = (tmp_path / "r" / "index.html").read_text(encoding="utf-8")
    assert page.count("<th colspan='2'>") == 2


def test_an_open_notebook_without_suggestions_still_shows_the_section(tmp_path, capsys):
    db = tmp_path / "opened.sqlite3"
    write_synthetic_db(db, seed=1, requests=5, session_id="desk")
    with TelemetryStore(db) as store:
        store.record(NotebookChanged("desk", NOTEBOOK, "jupyter-notebook", 1, "open", (LISTED_CELL,),
                                     ts=1_700_010_001.0))
    (summary,) = _summaries(capsys, db, "-o", tmp_path / "r")
    places = summary["files_vs_notebook_cells"]
    assert places["notebooks"] == 1 and places["completion"]["files"]["requests"] == 5
    assert places["completion"]["notebook_cells"]["requests"] == 0


def _version_1_database(path: Path, uris: list[str]) -> Path:
    """A database as schema version 1 made it (no notebooks table): its session ended, one shown completion per uri."""
    write_version_1_db(path)
    conn = sqlite3.connect(path)
    try:
        conn.execute("UPDATE sessions SET ended_at = 9.0 WHERE id = 'old'")
        for n, uri in enumerate(uris):
            conn.execute("INSERT INTO suggestions (id, session_id, kind, uri, requested_at, text, shown_at, outcome,"
                         " latency_ms) VALUES (?, 'old', 'completion', ?, ?, 'xx', ?, 'accepted', 10)",
                         [f"old-{n}", uri, 2.0 + n, 2.5 + n])
        conn.commit()
    finally:
        conn.close()
    return path


@pytest.mark.parametrize("uris, cells", [([FILE, FILE], None), ([FILE, HOSTED_CELL], 1)])
def test_a_version_1_database_is_reported_its_cells_known_by_their_scheme(tmp_path, capsys, uris, cells):
    db = _version_1_database(tmp_path / "v1.sqlite3", uris)
    (summary,) = _summaries(capsys, db, "-o", tmp_path / "r")
    assert summary["requests"] == 2 and not summary["partial"]
    assert any("schema version 1" in note for note in summary["notes"])
    if cells is None:
        assert "files_vs_notebook_cells" not in summary
    else:
        places = summary["files_vs_notebook_cells"]
        assert places["notebooks"] == 0 and places["completion"]["notebook_cells"]["requests"] == cells
    with sqlite3.connect(db) as conn:  # the original is left as it was
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("1",)
    conn.close()


def test_the_breakdown_is_returned_by_report_itself(tmp_path):
    result = report(_notebook_db(tmp_path / "nb.sqlite3"), tmp_path / "r")
    assert result["summaries"][0]["files_vs_notebook_cells"]["next_edit"]["notebook_cells"]["requests"] == 2
