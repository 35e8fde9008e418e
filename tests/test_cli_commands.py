"""`tact demo` and `tact complete` as a user runs them: the real default model, a real server process, real SQLite."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sqlite3
import subprocess
import sys

import pytest

import lsp_server
from lsp_server.cli import main
from telemetry.lsp_client import LspClient
from tests.lsp_support import model_under_test, server_command


def tact(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lsp_server.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_demo_types_into_a_real_server_and_logs_the_session(tmp_path):
    db = tmp_path / "telemetry.sqlite3"
    run = tact("demo", "--model", str(model_under_test()), "--database", str(db), "--lines", "2")
    assert run.returncode == 0, run.stdout + run.stderr
    out = run.stdout
    assert "server up, model" in out
    shown = re.findall(r"^\s+\d+:\d+\s+[\d.]+\s+(accepted|rejected)\s+'", out, re.M)
    assert shown, out  # suggestions were printed with their outcome
    m = re.search(r"(\d+) keystrokes, (\d+) requests, (\d+) suggestions, (\d+) accepted", out)
    assert m and int(m[1]) > 0 and int(m[3]) == len(shown), out
    session = re.search(r"\(session ([0-9a-f]+)\)", out)[1]
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT kind, outcome, count(*) FROM suggestions WHERE session_id = ? "
                            "AND uri NOT LIKE 'vscode-notebook-cell:%' GROUP BY 1, 2", (session,)).fetchall()
        cells = conn.execute("SELECT outcome, text, json_extract(context, '$.earlier_cells_chars') FROM suggestions "
                             "WHERE session_id = ? AND uri LIKE 'vscode-notebook-cell:%'", (session,)).fetchall()
    outcomes = {(kind, outcome): n for kind, outcome, n in rows}
    # the database says what the demo printed
    assert outcomes.get(("completion", "accepted"), 0) == int(m[4])
    assert outcomes.get(("completion", "accepted"), 0) + outcomes.get(("completion", "rejected"), 0) == len(shown)
    assert "next edit: renamed" in out
    applied = len(re.findall(r"\(applied\)$", out, re.M))
    assert applied >= 1 and outcomes.get(("next_edit", "accepted"), 0) == applied
    # a cell added below the file's parts, typed into: its request read the cells above, whether or not the model
    # had something to add there (one request's output is no thing to depend on)
    nb = re.search(r"^notebook: (\d+) cells, then a new one: '(.*)'\n  (?:-> '(.*)'   \(the prompt held (\d+) "
                   r"characters|no suggestion$)", out, re.M)
    assert nb and int(nb[1]) >= 2, out
    if nb[3] is None:
        assert len(cells) == 1 and not cells[0][1] and cells[0][2] > 0, cells
    else:
        assert int(nb[4]) > 0 and cells == [("accepted", nb[3], int(nb[4]))], cells

def test_complete_prints_one_suggestion_and_refuses_bad_locations_clearly(tmp_path):
    src = tmp_path / "sample.py"
    src.write_text("import os\n\n\ndef list_python_files(root):\n    return [name for name in os.listdir(root) if name.endswith('.py')]\n")
    run = tact("complete", f"{src}:5:12", "--model", str(model_under_test()))
    assert run.returncode == 0, run.stderr
    assert re.search(r"^suggestion: (['\"]).*\1$", run.stdout, re.M)  # Python's repr: quoted either way
    assert re.search(r"^latency: +[\d.]+ ms \(prefill", run.stdout, re.M)
    assert "policy speculative" in run.stdout  # the settings' default policy
    healed = re.search(r"^healing: +the prompt left out ('.*'|\".*\"), which", run.stdout, re.M)  # token healing
    text = src.read_text()
    assert healed and ast.literal_eval(healed.group(1)) and text[:text.index("return ") + 7].endswith(
        ast.literal_eval(healed.group(1)))

    binary = tmp_path / "blob.py"
    binary.write_bytes(b"\x93\xff\x00binary" * 100)
    for spec, message in [(f"{src}:9:1", "has 6 lines, not 9"), (f"{src}", "expected FILE:LINE:COL"),
                          (f"{tmp_path / 'missing.py'}:1:1", "missing.py"), (f"{binary}:1:1", "is not UTF-8 text")]:
        bad = tact("complete", spec, "--model", str(model_under_test()))
        assert bad.returncode == 2 and message in bad.stderr and "Traceback" not in bad.stderr, (spec, bad.stderr)

    broken = tmp_path / "no-model"
    broken.mkdir()
    none = tact("complete", f"{src}:5:12", "--model", str(broken))
    assert none.returncode == 2 and "error: no model" in none.stderr and str(broken) in none.stderr


def test_version_is_the_one_the_package_and_the_server_report(capsys, tmp_path):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"tact-lsp {lsp_server.__version__}"
    assert importlib.metadata.version("tact-lsp") == lsp_server.__version__
    client = LspClient(server_command(model_under_test(), tmp_path / "telemetry.sqlite3"))
    try:
        assert client.initialize({})["serverInfo"] == {"name": "tact", "version": lsp_server.__version__}
    finally:
        client.shutdown()


@pytest.fixture
def bad_inputs(tmp_path, monkeypatch):
    """Scratch inputs under tmp_path, which is also the working directory: a short Python file, a directory holding
    only a text file (no model), an empty directory, random bytes named .py."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.py").write_text("def f(x):\n    return x\n")
    (tmp_path / "notmodel").mkdir()
    (tmp_path / "notmodel" / "x").write_text("not a model\n")
    (tmp_path / "d").mkdir()
    (tmp_path / "bin.py").write_bytes(bytes(range(256)) * 4)
    return tmp_path


def run_main(args: list[str], capsys) -> tuple[int, str, str]:
    """main(args) as the console script ends: its exit code (argparse's too), stdout and stderr."""
    try:
        code = main(args)
    except SystemExit as done:
        code = done.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_error_line(code, out, err, says: str, *, exit_code: int = 2) -> None:
    assert code == exit_code and out == "" and "Traceback" not in err, (code, out, err)
    errors = [line for line in err.splitlines() if line.startswith("tact")]
    assert len(errors) == 1 and says in errors[0], err


# refused by argparse, before any work: one usage error line, exit 2
@pytest.mark.parametrize("args, says", [
    (["complete", "a.py:2:5", "--policy", "bogus"], "invalid choice: 'bogus'"),
    (["demo", "--policy", "bogus"], "invalid choice: 'bogus'"),
    (["bench", "serve", "--policy", "bogus"], "invalid choice: 'bogus'"),
    (["demo", "--file", "nofile.py"], "cannot read nofile.py: No such file"),
    (["demo", "--file", "d"], "cannot read d: Is a directory"),
    (["demo", "--file", "bin.py"], "bin.py is not UTF-8 text"),
    (["demo", "--start-line", "-5"], "must be 0 or more, got -5"),
    (["demo", "--lines", "0"], "must be 1 or more, got 0"),
    (["demo", "--lines", "-2"], "must be 1 or more, got -2"),
    (["demo", "--database", "d"], "d is a directory"),
    (["simulate", "a.py", "--database", "a.py", "--limit", "3"], "a.py is not an SQLite database"),
    (["simulate", "a.py", "--database", "d"], "d is a directory"),
    (["simulate", "a.py", "--minutes", "0"], "must be more than 0"),
    (["serve", "--tcp", "-1"], "must lie in 1 to 65535, got -1"),
    (["serve", "--tcp", "99999"], "must lie in 1 to 65535, got 99999"),
    (["eval", "acceptance", "--no-score", "--limit", "60", "--inner-folds", "1"], "must be 2 or more, got 1"),
    (["eval", "acceptance", "--no-score", "--limit", "60", "--inner-folds", "0"], "must be 2 or more, got 0"),
    (["eval", "acceptance", "--no-score", "--seed", "-1"], "must lie in 0 to 4294967295, got -1"),
    (["train", "acceptance", "--no-score", "--seed", "99999999999"], "must lie in 0 to 4294967295"),
    (["train", "corpus", "--max-mb", "0"], "must be more than 0"),
    (["train", "lm", "--size", "bogus"], "unknown size 'bogus' (known: tiny, small"),
    (["replay", "x.sqlite3", "--limit", "0"], "must be 1 or more, got 0"),
    (["report", "x.sqlite3", "-o", "out", "--limit", "0"], "must be 1 or more, got 0"),
    (["simulate", "a.py", "--limit", "-3"], "must be 1 or more, got -3"),
    (["bench", "serve", "--limit", "0"], "must be 1 or more, got 0"),
    (["bench", "replay", "--limit", "0"], "must be 1 or more, got 0"),
    (["bench", "replay", "--minutes", "0"], "must be more than 0"),
    (["bench", "early-exit", "--limit", "0"], "must be 1 or more, got 0"),
    (["eval", "next-edit", "--data", "d", "--limit", "0"], "must be 1 or more, got 0"),
])
def test_bad_values_are_usage_errors(bad_inputs, capsys, args, says):
    assert_one_error_line(*run_main(args, capsys), says)


# refused once the command reads its input, before any model, server or training starts
@pytest.mark.parametrize("args, says", [
    (["complete", "a.py:1:999"], "line 1 of a.py has 9 characters, so COL lies in 1 to 10, not 999"),
    (["complete", "a.py:1:0"], "COL lies in 1 to 10, not 0"),
    (["demo", "--file", "a.py", "--start-line", "2"], "a.py has 2 lines: --start-line (0-based) must be less"),
    (["export", "missing"], "tact export: error: model directory missing does not exist"),
    (["export", "notmodel"], "tact export: error: model directory notmodel lacks config.json"),
    (["export", "notmodel", "--half"], "tact export: error: notmodel/model.safetensors: cannot read"),
    (["export", "a.py", "--half"], "tact export: error: a.py/model.safetensors: cannot read"),
    (["train", "lm", "--corpus", "nodir"], "tact train lm: error: nodir is not a training corpus"),
    (["train", "lm", "--corpus", "d", "--resume", "notmodel"], "tact train lm: error: d is not a training corpus"),
    (["train", "controller", "--model", "notmodel"], "tact train controller: error: model directory notmodel lacks"),
    (["train", "next-edit", "--data", "nodir", "--init", "notmodel"], "tact train next-edit: error: next-edit data"),
    (["train", "next-edit", "--data", "d", "--init", "notmodel"], "tact train next-edit: error: model directory"),
    (["eval", "next-edit", "--data", "d", "--model", "notmodel", "--limit", "1", "--json"],
     "tact eval next-edit: error: notmodel is not a next-edit model directory"),
    (["eval", "next-edit", "--pair", "nodir", "nodir2", "--limit", "1", "--json"],
     "tact eval next-edit: error: no such directory: nodir, nodir2"),
    (["bench", "serve", "--source", "nodir", "--limit", "2"], "tact bench serve: error: source directory nodir"),
    (["bench", "serve", "--source", "a.py", "--limit", "2"], "tact bench serve: error: source directory a.py is a file"),
    (["bench", "serve", "--source", "d", "--limit", "2"], "tact bench serve: error: d holds no Python files"),
    (["bench", "replay", "--source", "nodir", "--limit", "2"], "tact bench replay: error: source directory nodir"),
])
def test_bad_inputs_are_one_error_line(bad_inputs, capsys, args, says):
    assert_one_error_line(*run_main(args, capsys), says)


# no model: refused before a server starts (with the flag's advice), not a run over empty answers
@pytest.mark.parametrize("command", [["bench", "serve"], ["bench", "replay"]])
def test_a_bench_server_without_a_model_is_an_error(bad_inputs, capsys, command):
    code, out, err = run_main([*command, "--model", "notmodel", "--limit", "2", "--json"], capsys)
    assert_one_error_line(code, out, err, f"tact {' '.join(command)}: error: model directory notmodel lacks")
    assert err.rstrip().endswith("pass --model DIR with a model directory, or train one with `tact train lm`")


# in a process of their own: `serve` sets up logging, and the demo prints to the stdout it was imported with
@pytest.mark.parametrize("args, says", [
    (["serve", "--tcp", "8765", "--host", "999.1.1.1"], "tact serve: error: cannot listen on 999.1.1.1:8765"),
    (["serve", "--log-file", "nodir/y.log"], "tact serve: error: cannot write the log file nodir/y.log: No such file"),
    (["serve", "--log-file", "d"], "tact serve: error: cannot write the log file d: Is a directory"),
    (["demo", "--database", "t.sqlite3", "--lines", "1"], "tact demo: error: model directory notmodel lacks"),
])
def test_serve_and_demo_refuse_what_they_cannot_use(bad_inputs, args, says):
    run = subprocess.run([sys.executable, "-m", "lsp_server.cli", *args, "--model", "notmodel"], capture_output=True,
                         text=True, timeout=60, cwd=bad_inputs, stdin=subprocess.DEVNULL)
    out = "" if args[0] == "demo" else run.stdout  # the demo says what it will type before its server is up
    assert_one_error_line(run.returncode, out, run.stderr, says)
