"""The command line, a tenth look: runs said done that were not, files changed that were only read, and failures
said as tracebacks. Each test failed on the code before."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import sys

import pytest

from lsp_server import cli
from lsp_server.cli import main
from tests.conftest import SIMULATED_SOURCE

OLD = 1_600_000_000.0  # 2020: past any retention


def _with_an_old_session(simulated_session, path):
    shutil.copy(simulated_session["database"], path)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE sessions SET started_at = ?, ended_at = ?", (OLD, OLD + 60))
        (old,) = conn.execute("SELECT id FROM sessions").fetchone()
    conn.close()
    return old


def _sessions(path) -> set[str]:
    with sqlite3.connect(path) as conn:
        ids = {row[0] for row in conn.execute("SELECT id FROM sessions")}
    conn.close()
    return ids


def _source(tmp_path):
    source = tmp_path / "typed.py"
    source.write_text(SIMULATED_SOURCE, encoding="utf-8")
    return source


def test_simulate_keeps_the_old_sessions_of_the_database_it_records_into(simulated_session, tiny_lm_dir, tmp_path,
                                                                          capsys):
    """Its server applied the 90-day retention to the file --database named: older sessions were deleted."""
    db = tmp_path / "kept.sqlite3"
    old = _with_an_old_session(simulated_session, db)
    assert main(["simulate", str(_source(tmp_path)), "--database", str(db), "--model", str(tiny_lm_dir),
                 "--limit", "3", "--set", "stopThreshold=1.01"]) == 0
    sessions = _sessions(db)
    assert old in sessions and len(sessions) == 2


def test_the_demo_keeps_the_old_sessions_of_the_database_it_records_into(simulated_session, tiny_lm_dir, tmp_path,
                                                                          capsys):
    db = tmp_path / "kept.sqlite3"
    old = _with_an_old_session(simulated_session, db)
    assert main(["demo", "--lines", "1", "--database", str(db), "--model", str(tiny_lm_dir)]) == 0
    sessions = _sessions(db)
    assert old in sessions and len(sessions) == 2


def test_simulate_into_a_database_it_cannot_record_into_fails(tiny_lm_dir, tmp_path, capsys):
    """The server went on without telemetry and the command said the session was recorded, exit 0."""
    db = tmp_path / "newer.sqlite3"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute("INSERT INTO meta VALUES ('schema_version', '999')")
    conn.close()
    assert main(["simulate", str(_source(tmp_path)), "--database", str(db), "--model", str(tiny_lm_dir),
                 "--limit", "3"]) == 2
    captured = capsys.readouterr()
    assert f"cannot record into {db}" in captured.err and "simulated session" not in captured.out


def test_a_replay_says_it_cannot_write_its_results_before_replaying(simulated_session, tiny_lm_dir, tmp_path,
                                                                      monkeypatch, capsys):
    """A whole session was replayed, then saving it failed with sqlite's words and no file named."""
    from telemetry import replay as replay_module

    folder = tmp_path / "archive"
    folder.mkdir()
    monkeypatch.setattr(replay_module.os, "access", lambda path, mode: os.fspath(path) != os.fspath(folder))
    started = []
    monkeypatch.setattr(replay_module, "replay_session", lambda *a, **k: started.append(1))
    assert main(["replay", str(simulated_session["database"]), "-o", str(folder / "out.sqlite3"),
                 "--model", str(tiny_lm_dir)]) == 2
    assert f"cannot write the results in {folder}" in capsys.readouterr().err and not started


def test_a_report_on_a_database_whose_name_is_not_utf8(simulated_session, tmp_path, capsys):
    """The page was written as UTF-8 with the name's undecodable byte in it: a UnicodeEncodeError traceback."""
    name = os.fsdecode(b"bad\xff.sqlite3")
    db = tmp_path / name
    shutil.copy(simulated_session["database"], db)
    assert main(["report", str(db), "-o", str(tmp_path / "out"), "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["summaries"][0]["sessions"] == 1
    assert "bad?.sqlite3" in (tmp_path / "out" / "index.html").read_text(encoding="utf-8")  # the byte replaced


def test_a_command_that_needs_the_train_extra_says_so(monkeypatch, capsys):
    def needs_torch(args):
        raise ModuleNotFoundError("No module named 'torch'", name="torch")

    monkeypatch.setattr(cli, "_run", needs_torch)
    assert main(["train", "controller", "--model", "m"]) == 2
    err = capsys.readouterr().err
    assert "needs torch" in err and "tact-lsp[train]" in err and "Traceback" not in err


def test_a_reader_that_leaves_ends_the_command_quietly(monkeypatch, capsys):
    """`tact report DB | head`: the broken pipe was said as an error of the input, exit 2."""
    def piped(args):
        print("x" * 100_000)
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(cli, "_run", piped)
    read, write = os.pipe()
    os.close(read)
    stdout = sys.stdout
    sys.stdout = os.fdopen(write, "w")
    try:
        assert main(["report", "db", "-o", "out"]) == 141
    finally:
        closing, sys.stdout = sys.stdout, stdout
        try:
            closing.close()
        except (BrokenPipeError, OSError):
            pass
    assert "Broken pipe" not in capsys.readouterr().err


def test_a_broken_pipe_of_the_commands_own_is_said(monkeypatch, capsys):
    def server_died(args):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(cli, "_run", server_died)
    assert main(["report", "db", "-o", "out"]) == 2
    assert "Broken pipe" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["eval", "acceptance", "--no-score"], ["train", "acceptance", "--no-score"],
                                     ["train", "next-edit-data", "--out", "x"]])
def test_a_misspelt_telemetry_database_is_refused(command, tmp_path, capsys):
    """It was refused on stderr and the run went on without it, exit 0."""
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--telemetry", str(tmp_path / "typo.sqlite3")])
    assert exit_.value.code == 2
    assert "no telemetry database at" in capsys.readouterr().err


@pytest.mark.parametrize("flag", [["--minutes", "3"], ["--source", "."], ["--corpus", "."], ["--seed", "4"]])
def test_bench_replay_refuses_recording_flags_with_a_database(flag, simulated_session, capsys):
    assert main(["bench", "replay", "--database", str(simulated_session["database"]), *flag]) == 2
    assert flag[0] in capsys.readouterr().err


def test_a_replay_cut_at_a_sessions_end_says_the_rest_was_not_replayed(tiny_lm_dir, tmp_path, capsys):
    """--limit reached at the end of the first session: the second was never started and the replay said complete."""
    from telemetry.replay import ReplayOptions, replay

    db = tmp_path / "two.sqlite3"
    source = _source(tmp_path)
    for seed in ("1", "2"):
        assert main(["simulate", str(source), "--database", str(db), "--model", str(tiny_lm_dir), "--limit", "40",
                     "--seed", seed, "--set", "stopThreshold=1.01", "--json"]) == 0
    first = json.loads(capsys.readouterr().out.splitlines()[0])
    assert len(_sessions(db)) == 2 and first["requests"] > 0
    results = replay(db, tmp_path / "out.sqlite3", options=ReplayOptions(model=str(tiny_lm_dir),
                                                                          limit=first["requests"]))
    assert len(results) == 1 and results[0].replayed == first["requests"]
    assert results[0].sessions_not_replayed == 1 and any("1 more session" in n for n in results[0].notes)
