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
    ("missing.py:1:1", "tact complete: missing.py does not exist"),
    (".:1:1", "tact complete: . is a directory, not a file"),
    ("f.py:0:0", "tact complete: LINE is 1-based: the first line of f.py is 1, not 0"),
    ("f.py:0", "tact complete: LINE is 1-based: the first line of f.py is 1, not 0"),
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
    assert code == 1
    assert err.strip() == (f"tact complete: no model: model directory {tmp_path / 'no-model'} does not exist; pass "
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
