"""`tact complete FILE:LINE[:COL]`: the locations it takes, the files it refuses, and what it shows the model."""

from __future__ import annotations

from pathlib import Path

import pytest

import lsp_server.complete_once as complete_once_module
from lsp_server.cli import main
from lsp_server.complete_once import parse_location


def run(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_a_trailing_colon_means_the_end_of_the_line():
    """The README documents `file.py:12:`; it was refused as no FILE:LINE:COL."""
    assert parse_location("f.py:11:") == (Path("f.py"), 11, None)
    assert parse_location("f.py:11") == (Path("f.py"), 11, None)
    assert parse_location("f.py:11:4") == (Path("f.py"), 11, 4)
    assert parse_location("C:/x/f.py:2:") == (Path("C:/x/f.py"), 2, None)


@pytest.mark.parametrize("spec, says", [
    ("missing.py:1:1", "tact complete: error: missing.py does not exist"),
    (".:1:1", "tact complete: error: . is a directory, not a file"),
    ("f.py:0:0", "tact complete: error: LINE is 1-based: the first line of f.py is 1, not 0"),
    ("f.py:0", "tact complete: error: LINE is 1-based: the first line of f.py is 1, not 0"),
])
def test_files_and_lines_that_are_not_there_are_said_plainly(tmp_path, monkeypatch, capsys, spec, says):
    monkeypatch.chdir(tmp_path)
    Path("f.py").write_text("x = 1\n")
    code, out, err = run(["complete", spec, "--model", str(tmp_path / "no-model")], capsys)
    assert (code, out, err.strip()) == (2, "", says)
    assert "Errno" not in err and "Traceback" not in err


def test_a_model_directory_that_is_none_gets_the_commands_advice(tmp_path, capsys):
    (tmp_path / "f.py").write_text("x = 1\n")
    code, _, err = run(["complete", f"{tmp_path / 'f.py'}:1:", "--model", str(tmp_path / "no-model")], capsys)
    assert code == 2  # as every other command's bad input (it was 1)
    assert err.strip() == (f"tact complete: error: no model: model directory {tmp_path / 'no-model'} does not exist; pass "
                           "--model DIR with a model directory, or train one with `tact train lm`")


class _Seen(Exception):
    pass


def test_a_byte_order_mark_is_no_character_of_the_document(tmp_path, monkeypatch, capsys):
    """Editors hide a UTF-8 BOM and LSP clients leave it out: columns do not count it, and the model is not shown
    it (it was both)."""
    src = tmp_path / "bom.py"
    src.write_bytes("\ufeffx = 1\ny = 2\n".encode("utf-8"))
    code, _, err = run(["complete", f"{src}:1:7"], capsys)  # `x = 1` has 5 characters: COL 1 to 6
    assert code == 2 and "line 1 of" in err and "has 5 characters, so COL lies in 1 to 6, not 7" in err

    seen = {}

    class Service(complete_once_module.CompletionService):
        def load(self, *args, **kwargs):
            return type("Status", (), {"ready": True})()

        def context(self, index, language_id, position, settings):
            seen["text"], seen["position"] = index.text, (position.line, position.character)
            raise _Seen

    monkeypatch.setattr(complete_once_module, "CompletionService", Service)
    monkeypatch.setattr(complete_once_module, "check_model_dir", lambda path: {})
    with pytest.raises(_Seen):
        main(["complete", f"{src}:1:6"])
    assert seen == {"text": "x = 1\ny = 2\n", "position": (0, 5)}


def test_a_crlf_line_break_is_no_column(tmp_path, capsys):
    src = tmp_path / "crlf.py"
    src.write_bytes(b"x = 1\r\ny = 2\r\n")
    code, _, err = run(["complete", f"{src}:1:7"], capsys)
    assert code == 2 and "has 5 characters, so COL lies in 1 to 6, not 7" in err


def _notebook(tmp_path, cells: list[tuple[str, str]], metadata: dict | None = None):
    import json

    path = tmp_path / "analysis.ipynb"
    path.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": metadata or {}, "cells": [
        {"cell_type": kind, "metadata": {}, "source": source.splitlines(keepends=True)} for kind, source in cells]}))
    return path


NOTEBOOK_CELLS = [("code", "import json\n\n\ndef read_settings_file(path):\n    return json.load(open(path))\n"),
                  ("markdown", "# Settings\n"), ("code", "cfg = read_settings\n"), ("code", "print(cfg)\n")]


def test_a_notebook_cell_is_completed_with_the_code_cells_above_it(tmp_path):
    """The real model: what a cell calls is defined in a cell above, as the server serves notebook cells."""
    import io

    def complete(spec: str) -> str:
        out = io.StringIO()
        assert complete_once_module.complete_once(spec, None, "full", False, out=out) == 0
        return out.getvalue()

    said = complete(f"{_notebook(tmp_path, NOTEBOOK_CELLS)}:3:1")
    assert said.startswith("suggestion: '_file") and "characters of the code cells above" in said, said
    alone = tmp_path / "alone.py"
    alone.write_text(NOTEBOOK_CELLS[2][1])
    said = complete(f"{alone}:1")
    assert not said.startswith("suggestion: '_file") and "cells above" not in said, said


def test_the_cells_above_are_the_code_cells_of_the_notebooks_language(tmp_path, monkeypatch):
    from lsp_server.complete_once import read_location

    path = _notebook(tmp_path, [("code", "x = 1\n"), ("markdown", "words\n"), ("raw", "raw\n"), ("code", "y = x\n"),
                                ("code", "")], {"kernelspec": {"language": "python"}})
    source = read_location(f"{path}:5:1", 1024)
    assert source.earlier_cells == "x = 1\n\ny = x\n\n" and source.text == "" and source.language_id == "python"
    assert source.name == f"cell 5 of {path}" and (source.line, source.col) == (1, None)
    assert read_location(f"{path}:1:1", 1024).earlier_cells == ""
    assert read_location(f"{path}:4:1", 3).earlier_cells == ""  # no whole line fits 3 characters


@pytest.mark.parametrize("cells,spec,message", [
    (NOTEBOOK_CELLS, "{nb}:2:1", "cell 2 of {nb} is a markdown cell, not a code cell"),
    (NOTEBOOK_CELLS, "{nb}:5:1", "{nb} has 4 cells (numbered from 1), not 5"),
    (NOTEBOOK_CELLS, "{nb}:0:1", "{nb} has 4 cells (numbered from 1), not 0"),
    (NOTEBOOK_CELLS, "{nb}:3:9", "{nb} has 2 lines, not 9"),
    (NOTEBOOK_CELLS, "{nb}:3", "a notebook's location is NOTEBOOK.ipynb:CELL:LINE[:COL] (1-based)"),
])
def test_a_notebook_location_that_does_not_fit_is_refused_naming_the_cell(tmp_path, capsys, cells, spec, message):
    nb = _notebook(tmp_path, cells)
    code, _, err = run(["complete", spec.format(nb=nb), "--model", str(tmp_path / "no-model")], capsys)
    assert code == 2 and message.format(nb=nb) in err, err


@pytest.mark.parametrize("content,message", [
    ("{not json", "is not a notebook: not JSON"),
    ('{"nbformat": 4}', "is not a notebook: it has no list of cells"),
    ("[1, 2]", "is not a notebook: it has no list of cells"),
])
def test_a_file_that_is_no_notebook_is_refused(tmp_path, capsys, content, message):
    nb = tmp_path / "broken.ipynb"
    nb.write_text(content)
    code, _, err = run(["complete", f"{nb}:1:1"], capsys)
    assert code == 2 and message in err and "Traceback" not in err, err


@pytest.mark.parametrize("name,language", [
    ("stack.js", "javascript"), ("stack.mjs", "javascript"), ("view.jsx", "javascriptreact"),
    ("stack.ts", "typescript"), ("view.tsx", "typescriptreact"), ("m.rs", "rust"), ("m.c", "c"), ("m.hpp", "cpp"),
    ("M.java", "java"), ("m.go", "go"), ("m.cs", "csharp"), ("m.hs", "haskell"), ("m.sh", "shellscript"),
    ("stub.pyi", "python"), ("gui.pyw", "python"), ("tool.PY", "python"), ("M.JS", "javascript"),
    ("Makefile", "makefile"), ("notes.weird", "weird"),
])
def test_a_files_language_is_its_lsp_language_identifier(tmp_path, name, language):
    from lsp_server.complete_once import read_location

    (tmp_path / name).write_text("x = 1\n")
    assert read_location(f"{tmp_path / name}:1:1", 1024).language_id == language
