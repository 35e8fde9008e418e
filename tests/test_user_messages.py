"""What a new user meets first: a misspelt setting, a database that is a directory, a server run by hand, a session
id that names none, a notebook given where a source file goes, one comparison value. Each said nothing, or said
the wrong fix, before."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from lsp_server.cli import main
from lsp_server.config import Settings

REPO = Path(__file__).resolve().parents[1]


def test_a_misspelt_setting_is_reported_with_the_name_it_resembles():
    settings, problems = Settings.from_camel({"maxNewToken": 7, "maxNewTokens": 9, "bogusKey": 1})
    assert settings.max_new_tokens == 9
    assert problems == ["tact.maxNewToken: no such setting, ignored (did you mean tact.maxNewTokens?)",
                        "tact.bogusKey: no such setting, ignored"]


def test_the_extension_s_own_keys_of_the_section_are_no_typo():
    """VS Code sends the whole `tact` section: its pythonPath and trace.server are the client's."""
    assert Settings.from_camel({"pythonPath": "/usr/bin/python3", "trace": {"server": "off"}})[1] == []


def _refused(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    return capsys.readouterr().err


def test_serve_refuses_a_database_that_is_a_directory_before_it_starts(tmp_path, capsys):
    """It served with telemetry off and told the user to set tact.telemetryDatabase, which --database overrides."""
    err = _refused(["serve", "--database", str(tmp_path)], capsys)
    assert f"argument --database: {tmp_path} is a directory: name a database file in it" in err


@pytest.mark.parametrize("command", [["demo", "--file"], ["simulate"]])
def test_a_notebook_is_refused_where_a_source_file_is_typed(tmp_path, capsys, command):
    notebook = tmp_path / "analysis.ipynb"
    notebook.write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    err = _refused([*command, str(notebook)], capsys)
    assert f"{notebook} is a notebook, and this types a source file: `tact complete {notebook}:CELL:LINE`" in err


def test_report_names_the_sessions_a_wrong_session_id_could_have_meant(tmp_path, capsys):
    from telemetry_fakes import write_synthetic_db

    db = tmp_path / "two.sqlite3"
    write_synthetic_db(db, seed=1, requests=5, session_id="desk-1")
    write_synthetic_db(db, seed=2, requests=5, session_id="desk-2")
    assert main(["report", str(db), "--session", "zz", "-o", str(tmp_path / "r")]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert f"no session 'zz' in {db}, which holds 2 sessions: desk-1, desk-2" in line  # as `tact replay` says it


def test_report_names_the_output_it_cannot_make_and_the_fix(tmp_path, capsys):
    """A directory the system refuses said only `[Errno 2] No such file or directory: '/proc/...'`."""
    from telemetry_fakes import write_synthetic_db

    db = tmp_path / "one.sqlite3"
    write_synthetic_db(db, seed=1, requests=5)
    assert main(["report", str(db), "-o", "/proc/tact-report"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert "cannot make /proc/tact-report for the report (" in line and line.endswith("choose another --output")


def test_one_compared_value_and_two_comparisons_are_said_apart():
    from lsp_server.bench_serve import serve_variants

    with pytest.raises(ValueError, match=r"--compare stopRepeats gives 1 value: compare two or more, e\.g\. "
                                         r"--compare stopRepeats=3,OTHER"):
        serve_variants("fp32", compare=("stopRepeats", [3]))
    with pytest.raises(ValueError, match="--compare stopRepeats and --weights fp32,int8 are two comparisons"):
        serve_variants(["fp32", "int8"], compare=("stopRepeats", [3, 0]))


def test_a_source_directory_without_python_says_so(tmp_path):
    from models.bench_early_exit import BenchInputError, load_texts

    (tmp_path / "main.ts").write_text("export const x = 1;\n")
    with pytest.raises(BenchInputError, match=r"holds no Python files \(\.py, UTF-8, not empty\)"):
        load_texts(source=tmp_path)


def test_serve_run_by_hand_in_a_terminal_says_it_waits_for_a_client(tmp_path):
    """On a terminal it printed nothing and looked hung; an editor's pipe gets no such line."""
    primary, secondary = os.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "lsp_server.cli", "serve", "--model", str(tmp_path / "none"),
                             "--database", str(tmp_path / "t.sqlite3")],
                            stdin=secondary, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO, text=True)
    try:
        line = proc.stderr.readline()
        assert line.startswith("tact serve: waiting for an LSP client on stdin"), line
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
        os.close(primary)
        os.close(secondary)


def test_a_flood_of_unknown_keys_is_said_in_a_few_lines():
    """Each key that names no setting was matched against every setting's name and logged, on the event loop:
    200,000 of them held the server 17.6 s and wrote as many log lines."""
    from lsp_server.config import MAX_UNKNOWN_SAID

    values = {f"noSuchKey{i}": i for i in range(50_000)} | {"maxNewToken": 12, "maxNewTokens": 9}
    settings, problems = Settings.from_camel(values)  # 0.005 s here; with every key matched, 3.3 s
    assert settings.max_new_tokens == 9
    assert len(problems) == MAX_UNKNOWN_SAID + 1
    assert problems[-1] == f"{50_001 - MAX_UNKNOWN_SAID} more keys that name no setting, ignored"
    assert "tact.noSuchKey0: no such setting, ignored" in problems[0]
