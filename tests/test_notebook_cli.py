"""A review of the notebook pieces of the command line (`tact complete` on a notebook cell, `bench serve --layout
notebook`'s cells, `tact demo`'s notebook): each defect it found, shown by a test first."""

from __future__ import annotations

import io
import json
import sqlite3

import pytest

from lsp_server.bench_serve import notebook_cells
from lsp_server.cli import main
from lsp_server.demo import print_decisions


def test_a_file_beginning_with_blank_lines_gets_no_cell_of_blank_lines():
    """The cut before the first definition left the blank lines above it a cell of their own."""
    text = "\n\n# reads it\ndef f():\n    pass\n\n\nx = f()\n"
    cells = notebook_cells(text)
    assert "".join(cells) == text and all(c.strip() for c in cells), cells
    assert notebook_cells("\n\nimport os\n\n\nx = os.sep\n") == ["\n\nimport os\n\n\n", "x = os.sep\n"]


def test_an_nbformat_3_notebook_is_named_as_one_not_as_no_notebook(tmp_path, capsys):
    """Its cells lie in worksheets: it is a notebook of an older format, which the message should say."""
    nb = tmp_path / "old.ipynb"
    nb.write_text(json.dumps({"nbformat": 3, "nbformat_minor": 0, "metadata": {}, "worksheets": [
        {"cells": [{"cell_type": "code", "input": ["x = 1\n"], "language": "python", "outputs": []}]}]}))
    assert main(["complete", f"{nb}:1:1", "--model", str(tmp_path / "no-model")]) == 2
    err = capsys.readouterr().err
    assert "nbformat 3" in err and "is not a notebook" not in err, err


def test_a_cells_column_out_of_range_names_the_notebook_form(tmp_path, capsys):
    """The advice named FILE:LINE, which in a notebook is refused; a cell's line end is NOTEBOOK.ipynb:CELL:LINE."""
    nb = tmp_path / "analysis.ipynb"
    nb.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "code", "metadata": {}, "source": ["x = 1\n"], "outputs": [], "execution_count": None}]}))
    assert main(["complete", f"{nb}:1:1:9", "--model", str(tmp_path / "no-model")]) == 2
    err = capsys.readouterr().err
    assert "COL lies in 1 to 6, not 9" in err and "NOTEBOOK.ipynb:CELL:LINE alone" in err, err
    assert "FILE:LINE alone" not in err, err


def test_the_decisions_table_does_not_place_a_notebook_cells_suggestion_in_the_file(tmp_path):
    """The demo's notebook cell suggestion was listed as `1:14`, which reads as line 1 of the typed file."""
    db = tmp_path / "demo.sqlite3"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE suggestions (session_id, uri, line, character, policy, tokens, layers_per_token, "
                     "stop_reason, latency_ms, outcome, text, requested_at)")
        conn.executemany("INSERT INTO suggestions VALUES (?, ?, ?, ?, 'full', 3, 12.0, 'newline', 20.0, 'accepted', "
                         "'x', ?)", [("s", "file:///demo/demo_sample.py", 12, 4, 1.0),
                                     ("s", "vscode-notebook-cell:/demo/notebook.ipynb#C5", 0, 14, 2.0)])
    out = io.StringIO()
    print_decisions(db, "s", out)
    file_row, cell_row = out.getvalue().strip().splitlines()[-2:]
    assert file_row.split()[0] == "13:4" and "notebook" not in file_row, file_row
    assert "notebook cell" in cell_row, cell_row


class _SilentServer:
    """A server whose model has nothing to add: records the notebook messages, answers every request with none."""

    def __init__(self):
        self.calls: list[str] = []

    def __getattr__(self, name):
        def record(*args, **kwargs):
            self.calls.append(name)
            return []
        return record


def test_the_demos_notebook_without_a_suggestion_says_so_and_closes_the_notebook(tmp_path):
    from lsp_server.demo import demo_notebook

    server, out = _SilentServer(), io.StringIO()
    demo_notebook(server, "import os\n\n\ndef load_config(path):\n    return path\n", tmp_path / "none.sqlite3", out)
    assert out.getvalue().endswith("notebook: 2 cells, then a new one: 'config = load_'\n  no suggestion\n")
    assert server.calls == ["did_open_notebook", "did_change_notebook_text", "inline_completion", "did_close_notebook"]
    server, out = _SilentServer(), io.StringIO()  # --file another file: no top-level function to call
    demo_notebook(server, "import os\n\n\nclass A:\n    def f(self):\n        pass\n", tmp_path / "none.sqlite3", out)
    assert server.calls == [] and out.getvalue() == ""


def test_an_upper_case_notebook_suffix_is_read_as_a_notebook(tmp_path):
    """`NB.IPYNB:1:1` fell through to the file path and completed inside the notebook's raw JSON."""
    from lsp_server.complete_once import read_location

    nb = tmp_path / "NB.IPYNB"
    nb.write_text(json.dumps({"nbformat": 4, "metadata": {}, "cells": [
        {"cell_type": "code", "source": "x = 1\n"}, {"cell_type": "code", "source": "y = "}]}))
    source = read_location(f"{nb}:2:1", 1024)
    assert source.text == "y = " and source.earlier_cells == "x = 1\n\n"
    with pytest.raises(ValueError, match="NOTEBOOK.ipynb:CELL:LINE"):
        read_location(f"{nb}:2", 1024)


def test_json_nested_too_deeply_is_refused_with_a_message(tmp_path):
    from lsp_server.complete_once import read_location

    nb = tmp_path / "deep.ipynb"
    nb.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match="nests too deeply"):
        read_location(f"{nb}:1:1", 1024)


def test_cells_in_another_language_are_left_out_of_the_cells_above(tmp_path):
    """VS Code keeps a cell switched to another language in `metadata.vscode.languageId`: every code cell was read
    as the notebook's language, so an SQL cell was Python above the next cell."""
    from lsp_server.complete_once import read_location

    nb = tmp_path / "mixed.ipynb"
    nb.write_text(json.dumps({"nbformat": 4, "metadata": {"kernelspec": {"language": "python"}}, "cells": [
        {"cell_type": "code", "metadata": {}, "source": "x = 1\n"},
        {"cell_type": "code", "metadata": {"vscode": {"languageId": "sql"}}, "source": "select 1\n"},
        {"cell_type": "code", "metadata": {}, "source": "y = "}]}))
    source = read_location(f"{nb}:3:1", 1024)
    assert source.language_id == "python" and source.earlier_cells == "x = 1\n\n"
    sql = read_location(f"{nb}:2:1", 1024)
    assert sql.language_id == "sql" and sql.earlier_cells == ""
