"""The command line, an eighth look: locations, files, flags and messages that were wrong or tracebacks."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import pytest

import lsp_server.complete_once as complete_once_module
from lsp_server.cli import main
from telemetry.lsp_client import LspClient
from tests.lsp_support import server_command


class _Seen(Exception):
    pass


def _position_given(monkeypatch, spec: str) -> tuple[int, int]:
    """The position `tact complete SPEC` hands the model, without loading one."""
    seen = {}

    class Service(complete_once_module.CompletionService):
        def load(self, *args, **kwargs):
            return type("Status", (), {"ready": True})()

        def context(self, index, language_id, position, settings):
            seen["position"] = (position.line, position.character)
            raise _Seen

    monkeypatch.setattr(complete_once_module, "CompletionService", Service)
    monkeypatch.setattr(complete_once_module, "check_model_dir", lambda path: {})
    with pytest.raises(_Seen):
        main(["complete", spec])
    return seen["position"]


def test_a_column_past_an_emoji_is_given_in_utf16_units(tmp_path, monkeypatch):
    """COL counts characters, a position UTF-16 units: the cursor landed one unit early per emoji before it."""
    src = tmp_path / "emoji.py"
    src.write_text("label = '👋👋' + total\n")
    assert _position_given(monkeypatch, f"{src}:1:14") == (0, 15)  # after `'👋👋' `: 13 characters, 15 units
    assert _position_given(monkeypatch, f"{src}:1") == (0, 22)  # the line's end: 20 characters, 22 units


@pytest.mark.parametrize("rest", ["-1:1", "abc:1", "1:1:1", "1.5", "+1:2"])
def test_a_location_whose_line_is_no_number_says_so_not_that_the_file_is_missing(tmp_path, capsys, rest):
    src = tmp_path / "s.py"
    src.write_text("x = 1\n")
    assert main(["complete", f"{src}:{rest}"]) == 2
    err = capsys.readouterr().err
    assert "LINE and COL are whole numbers from 1" in err and "does not exist" not in err


def test_a_device_or_a_pipe_is_refused_before_it_is_read(tmp_path, capsys):
    """/dev/zero read without end (a MemoryError), a FIFO blocked for good."""
    fifo = tmp_path / "pipe.py"
    os.mkfifo(fifo)
    for path in ("/dev/zero", str(fifo)):
        assert main(["complete", f"{path}:1:1"]) == 2
        assert "no regular file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["demo", "--file", str(fifo)])
    assert exit_.value.code == 2 and "no regular file" in capsys.readouterr().err


@pytest.mark.parametrize("content", ['{"path": "a.py", "text": "x = 1\\n', '{"path": "a.py", "text": 5}\n',
                                     b'{"path": "a.py", "text": "\xff"}\n'])
def test_a_damaged_corpus_split_is_one_line_for_the_benches_that_read_it(tmp_path, capsys, content):
    """Cut short (an interrupted `tact train corpus`), not UTF-8, or a text that is no string: a traceback from
    `bench early-exit` and `bench notebook`, where `bench serve` said one line."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    path = corpus / "heldout.jsonl"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    for bench in ("early-exit", "notebook"):
        assert main(["bench", bench, "--corpus", str(corpus), "--limit", "1"]) == 2
        err = capsys.readouterr().err
        assert "is not a corpus split" in err and "Traceback" not in err


@pytest.mark.parametrize("setting,advice", [("decodingPolicy=full", "--policy"), ("acceptanceGate=false", "--no-gate"),
                                            ("multiline=true", "single-line"),
                                            ("telemetryDatabase=x.sqlite3", "--keep-telemetry")])
def test_bench_serve_refuses_a_setting_it_sets_itself_before_starting_a_server(capsys, setting, advice):
    """The bench's own value went to the server, which was then refused as not the user's: a RuntimeError."""
    assert main(["bench", "serve", "--set", setting, "--limit", "1"]) == 2
    err = capsys.readouterr().err
    assert advice in err and "Traceback" not in err
    key, _, value = setting.partition("=")
    assert main(["bench", "serve", "--compare", f"{key}={value},{value}", "--limit", "1"]) == 2
    assert advice in capsys.readouterr().err


@pytest.mark.parametrize("flag,value", [("--stop-threshold", "nan"), ("--exit-threshold", "nan"),
                                        ("--exit-lookup-threshold", "nan"), ("--exit-pick-margin", "inf"),
                                        ("--draft-tokens", "0"), ("--head-tokens", "-1"), ("--threads", "0"),
                                        ("--draft-layers", "-1")])
def test_bench_early_exit_refuses_numbers_out_of_their_range(capsys, flag, value):
    """Taken as they came: NaN and infinity then printed as NaN and Infinity under --json, which is no JSON."""
    with pytest.raises(SystemExit) as exit_:
        main(["bench", "early-exit", flag, value, "--limit", "1"])
    assert exit_.value.code == 2 and flag in capsys.readouterr().err


def test_demo_says_what_a_one_line_file_lacks(tmp_path, capsys):
    src = tmp_path / "one.py"
    src.write_text("x = 1\n")
    assert main(["demo", "--file", str(src)]) == 2
    err = capsys.readouterr().err
    assert "needs at least 2" in err and "--start-line" not in err


def test_a_database_under_a_file_is_refused_before_anything_starts(tmp_path, capsys):
    (tmp_path / "s.py").write_text("x = 1\n")
    with pytest.raises(SystemExit) as exit_:
        main(["demo", "--database", str(tmp_path / "s.py" / "t.sqlite3")])
    assert exit_.value.code == 2 and "is a file, so no database can be made under it" in capsys.readouterr().err


def test_demo_with_a_database_it_cannot_record_into_says_telemetry_is_off(tmp_path):
    """It waited 10 s for rows that never came, printed `?` and pointed to the database as if it held the session."""
    db = tmp_path / "newer.sqlite3"
    with sqlite3.connect(db) as conn:  # a database of a newer Tact: the server records nothing into it
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute("INSERT INTO meta VALUES ('schema_version', '999')")
    r = subprocess.run([sys.executable, "-m", "lsp_server.cli", "demo", "--database", str(db), "--lines", "1"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "telemetry off:" in r.stdout and "telemetry: not recorded" in r.stdout
    assert "open it with any SQLite tool" not in r.stdout and "characters of the cells above" not in r.stdout


def test_serve_with_a_bad_model_flag_advises_the_flag_and_the_setting_the_editor_passes_as_it(tmp_path):
    """`--model` wins over tact.modelPath, so the setting alone, as the degraded reason advised, could not fix it; but
    the VS Code extension passes tact.modelPath as --model, and its users fix the setting (the flag's advice alone
    told them to restart `tact serve`, which they never ran)."""
    client = LspClient(server_command(tmp_path / "nomodel", tmp_path / "t.sqlite3"))
    try:
        client.initialize({})
        for _ in range(100):
            status = client.request("tact/status", timeout=10)
            if not status.get("loading"):
                break
        assert status["degraded"] and "restart `tact serve` with --model" in status["reason"]
        assert "set tact.modelPath to a model directory where the editor passes it as --model" in status["reason"]
    finally:
        client.shutdown()


def test_every_json_of_the_benches_is_strict_json(capsys, tmp_path):
    """An infinite setting (a stop threshold of inf turns Stop off) printed as Infinity under --json."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.py").write_text("".join(f"value_{i} = compute_something({i}, factor={i * 2})\n" for i in range(40)))
    assert main(["bench", "early-exit", "--source", str(src), "--limit", "2", "--no-exit-sweep", "--json",
                 "--stop-threshold", "inf"]) == 0

    def refuse(name):
        raise ValueError(name)
    figures = json.loads(capsys.readouterr().out, parse_constant=refuse)
    assert isinstance(figures, dict)
