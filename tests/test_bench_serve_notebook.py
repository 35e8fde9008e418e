"""`tact bench serve --layout`: the same files typed as plain documents and as notebooks of their cells."""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path

import pytest

from lsp_server.bench_serve import NotebookTyping, cell_first_lines, notebook_cells, print_report, run_bench
from telemetry.simulate import type_file
from telemetry.text import offset_at

SCRIPT = '''"""A script as a notebook's author would split it."""
import os
from pathlib import Path

ROOT = Path(os.getcwd())


# the files to read
@staticmethod
def read(name):
    return (ROOT / name).read_text()  # one file


class Reader:
    def __init__(self, root):
        self.root = root


if __name__ == "__main__":
    print(read("a.txt"))
'''
MODULE = "".join(f"import mod{i}\n" for i in range(3)) + "\n\n" + "\n\n".join(
    f"def f{i}(a, b):\n    total = a + b * {i}\n    return total\n" for i in range(12))


def test_the_cells_are_the_scripts_top_level_parts_and_join_to_it():
    cells = notebook_cells(SCRIPT)
    assert "".join(cells) == SCRIPT and all(cells)
    assert [c.split("\n", 1)[0] for c in cells] == ['"""A script as a notebook\'s author would split it."""',
                                                   "ROOT = Path(os.getcwd())", "# the files to read",
                                                   "class Reader:", 'if __name__ == "__main__":']


@pytest.mark.parametrize("text", [SCRIPT.replace("\n", "\r\n"), SCRIPT.replace("\n", "\r"),
                                  'print "Python 2"\ndef f():\n    pass\n', "x = 1", "", "def f():\n    pass\n\n\n"])
def test_any_file_splits_into_cells_that_join_to_it(text):
    """Line breaks of every kind (cells begin at LSP's lines), a file Python 3 cannot parse, no break at the end."""
    cells = notebook_cells(text)
    assert "".join(cells) == text and all(cells[1:]) and cell_first_lines(text)[0] == 0


class _Recorder:
    """A client that holds the documents it is sent, as the server would, and answers every request with nothing."""

    def __init__(self):
        self.texts: dict[str, str] = {}
        self.notebooks: dict[str, list[str]] = {}
        self.requests: list[tuple[str, int, int]] = []  # (uri, line, character)

    def did_open(self, uri, text, version=1, language_id="python"):
        self.texts[uri] = text

    def did_change(self, uri, version, changes):
        for c in changes:
            start, end = (offset_at(self.texts[uri], c["range"][k]["line"], c["range"][k]["character"])
                          for k in ("start", "end"))
            self.texts[uri] = self.texts[uri][:start] + c["text"] + self.texts[uri][end:]

    def did_open_notebook(self, uri, notebook_type, version, cells):
        self.notebooks[uri] = [c["uri"] for c in cells]
        for c in cells:
            self.texts[c["uri"]] = c["text"]

    def did_change_notebook_cells(self, uri, version, start, delete_count, inserted, opened, closed):
        self.notebooks[uri][start:start + delete_count] = inserted
        for c in opened:
            self.texts[c["uri"]] = c["text"]

    def did_change_notebook_text(self, uri, version, cell_uri, cell_version, changes):
        assert cell_uri in self.notebooks[uri]
        self.did_change(cell_uri, cell_version, changes)

    def inline_completion(self, uri, line, character, invoked=False, timeout=30.0, selected=None):
        self.requests.append((uri, line, character))
        return []


@pytest.mark.parametrize("start_line", [5, 6, 9])  # in the imports' cell, where a def's cell begins, inside a def
def test_typing_a_notebook_puts_each_keystroke_and_request_in_the_cell_holding_its_line(start_line):
    plain, cells = _Recorder(), _Recorder()
    type_file(plain, "file:///bench/0/mod.py", MODULE, start_line=start_line, lines=4)
    typing = NotebookTyping(cells, MODULE)
    type_file(typing, "file:///bench/0/mod.py", MODULE, start_line=start_line, lines=4)
    [(notebook, uris)] = cells.notebooks.items()
    assert notebook == "file:///bench/0/mod.ipynb" and all(u.startswith("vscode-notebook-cell:") for u in uris)
    assert "".join(cells.texts[u] for u in uris) == plain.texts["file:///bench/0/mod.py"]  # the same text, in cells
    firsts = dict(zip(uris, typing.first_lines))
    assert [(firsts[u] + line, ch) for u, line, ch in cells.requests] == [(line, ch) for _, line, ch in plain.requests]
    assert len(plain.requests) > 20 and len(uris) > 1


def test_a_run_compares_the_layouts_on_the_same_keystrokes(tiny_lm_dir, tmp_path):
    """file,notebook: one server each, A B B A; the notebook's servers got notebook messages and logged requests
    in cells whose prompts held the cells above; the JSON says each run's layout and the notebook's ratios."""
    (tmp_path / "mod.py").write_text(MODULE)
    result = run_bench(str(tiny_lm_dir), "full", 6, tmp_path, None, gate=False, typing_cps=0,
                       settings={"maxNewTokens": 8}, layouts=["file", "notebook"], keep_telemetry=True)
    result = json.loads(json.dumps(result))
    files, notebook = result["runs"]
    assert (files["layout"], notebook["layout"]) == ("file", "notebook")
    assert (files["variant"], notebook["variant"]) == ("layout=file", "layout=notebook")
    assert files["requests"] == notebook["requests"] == 6 and "earlier_cells" not in files
    assert result["ratios_to"] == "layout=file" and result["ratios"][0]["variant"] == "layout=notebook"
    assert result["ratios"][0]["p50_ms"] == round(notebook["p50_ms"] / files["p50_ms"], 3)
    cells = notebook["earlier_cells"]
    assert cells["requests_logged"] == 6 and 0 < cells["with_earlier_cells"] <= 6 and cells["mean_chars"] > 0
    assert cells["share"] == round(cells["with_earlier_cells"] / 6, 3)
    servers = [sqlite3.connect(Path(result["telemetry_dir"]) / f"server-{n}.sqlite3") for n in range(1, 5)]
    try:  # taking turns: file, notebook, notebook, file
        for n, db in enumerate(servers):
            in_notebook = n in (1, 2)
            assert bool(db.execute("SELECT count(*) FROM notebooks").fetchone()[0]) == in_notebook
            uris = [u for (u,) in db.execute("SELECT uri FROM suggestions WHERE uri NOT LIKE '%/cold.py'")]
            assert uris and all(u.startswith("vscode-notebook-cell:") == in_notebook for u in uris)
            chars = [json.loads(c).get("earlier_cells_chars") for (c,) in db.execute(
                "SELECT context FROM suggestions WHERE uri NOT LIKE '%/cold.py'")]
            assert any(chars) == in_notebook
    finally:
        for db in servers:
            db.close()
    out = io.StringIO()
    print_report(result, out)
    assert "layout=notebook against layout=file" in out.getvalue() and "as notebook cells" in out.getvalue()
    assert f"earlier cells in the prompt: {cells['with_earlier_cells']} of 6 requests" in out.getvalue()


def test_the_variants_of_a_layout_comparison():
    from lsp_server.bench_serve import serve_variants

    assert serve_variants("fp32", None, None, ["file", "notebook"]) == [
        ("layout=file", {"decodeWeights": "fp32"}, "file"), ("layout=notebook", {"decodeWeights": "fp32"}, "notebook")]
    assert serve_variants(["fp32", "int8"], None, None, "notebook")[1] == (
        "int8", {"decodeWeights": "int8"}, "notebook")
    for weights, compare in ((["fp32", "int8"], None), ("fp32", ("stopRepeats", [3, 0]))):
        with pytest.raises(ValueError, match="one comparison a run"):
            serve_variants(weights, None, compare, ["file", "notebook"])
    with pytest.raises(ValueError, match="layout is one of"):
        serve_variants("fp32", None, None, ["cells"])


def test_the_command_takes_the_layouts(capsys, tmp_path):
    from lsp_server.cli import main

    assert main(["bench", "serve", "--layout", "file,notebook", "--weights", "fp32,int8"]) == 2
    assert "one comparison a run" in capsys.readouterr().err
    with pytest.raises(SystemExit) as done:
        main(["bench", "serve", "--layout", "cells", "--model", str(tmp_path / "no-model")])
    assert done.value.code == 2 and "argument --layout: 'cells': choose from file, notebook" in capsys.readouterr().err
