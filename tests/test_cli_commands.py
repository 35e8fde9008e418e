"""`tact demo` and `tact complete` as a user runs them: the real default model, a real server process, real SQLite."""

from __future__ import annotations

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
        rows = conn.execute("SELECT kind, outcome, count(*) FROM suggestions WHERE session_id = ? GROUP BY 1, 2",
                            (session,)).fetchall()
    outcomes = {(kind, outcome): n for kind, outcome, n in rows}
    # the database says what the demo printed
    assert outcomes.get(("completion", "accepted"), 0) == int(m[4])
    assert outcomes.get(("completion", "accepted"), 0) + outcomes.get(("completion", "rejected"), 0) == len(shown)
    assert "next edit: renamed" in out
    applied = len(re.findall(r"\(applied\)$", out, re.M))
    assert applied >= 1 and outcomes.get(("next_edit", "accepted"), 0) == applied

def test_complete_prints_one_suggestion_and_refuses_bad_locations_clearly(tmp_path):
    src = tmp_path / "sample.py"
    src.write_text("import os\n\n\ndef list_python_files(root):\n    return [name for name in os.listdir(root) if name.endswith('.py')]\n")
    run = tact("complete", f"{src}:5:12", "--model", str(model_under_test()))
    assert run.returncode == 0, run.stderr
    assert re.search(r"^suggestion: '.*'$", run.stdout, re.M)
    assert re.search(r"^latency: +[\d.]+ ms \(prefill", run.stdout, re.M)
    assert "policy speculative" in run.stdout  # the settings' default policy

    binary = tmp_path / "blob.py"
    binary.write_bytes(b"\x93\xff\x00binary" * 100)
    for spec, message in [(f"{src}:9:1", "has 6 lines, not 9"), (f"{src}", "expected FILE:LINE:COL"),
                          (f"{tmp_path / 'missing.py'}:1:1", "missing.py"), (f"{binary}:1:1", "is not UTF-8 text")]:
        bad = tact("complete", spec, "--model", str(model_under_test()))
        assert bad.returncode == 2 and message in bad.stderr and "Traceback" not in bad.stderr, (spec, bad.stderr)

    broken = tmp_path / "no-model"
    broken.mkdir()
    none = tact("complete", f"{src}:5:12", "--model", str(broken))
    assert none.returncode == 1 and "no model" in none.stderr and str(broken) in none.stderr


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
