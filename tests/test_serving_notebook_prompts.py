"""Settings sent flat as Helix sends them, the gate's startup failure told to the user, what a notebook prompt held,
and a notebook cell's lines counted as the server counts them."""

from __future__ import annotations

import json
import re
import sqlite3
import sys
import time

import subprocess
from telemetry.lsp_client import LspClient
from telemetry.simulate import STATUS, server_command, wait_ready
from tests.lsp_support import model_under_test


def _messages(client: LspClient, wait: float = 1.0) -> list[str]:
    time.sleep(wait)
    out = []
    while not client.notifications.empty():
        message = client.notifications.get()
        if message.get("method") == "window/showMessage":
            out.append(message["params"]["message"])
    return out


def test_a_flat_settings_change_is_applied_as_a_flat_initialize_is(tiny_lm_dir, tmp_path):
    """Helix sends its `config` as it is, at initialize and in didChangeConfiguration: the change was dropped."""
    with LspClient(server_command(sys.executable, str(tiny_lm_dir), str(tmp_path / "t.sqlite3"))) as client:
        client.initialize({"decodingPolicy": "full", "acceptanceGate": False})
        assert wait_ready(client)["acceptanceGate"]["enabled"] is False
        client.notify("workspace/didChangeConfiguration", {"settings": {"decodingPolicy": "full", "acceptanceGate": True}})
        deadline = time.time() + 10
        while not client.request(STATUS)["acceptanceGate"]["enabled"] and time.time() < deadline:
            time.sleep(0.1)
        assert client.request(STATUS)["acceptanceGate"]["enabled"] is True
        # another section's change (a client's other settings) is no Tact setting: nothing changes
        client.notify("workspace/didChangeConfiguration", {"settings": {"python": {"acceptanceGate": False}}})
        time.sleep(0.5)
        assert client.request(STATUS)["acceptanceGate"]["enabled"] is True
        client.shutdown()


def test_an_acceptance_model_that_fails_at_startup_is_told_to_the_user(tiny_lm_dir, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "acceptance.json").write_text("{}", encoding="utf-8")
    with open(tmp_path / "err.txt", "w") as err, LspClient(
            server_command(sys.executable, str(tiny_lm_dir), str(tmp_path / "t.sqlite3")), stderr=err) as client:
        client.initialize({"acceptanceModelPath": str(bad)})
        assert wait_ready(client)["acceptanceGate"]["active"] is False
        said = _messages(client)
        client.shutdown()
    assert len(said) == 1 and "acceptance gate off" in said[0]
    with open(tmp_path / "err2.txt", "w") as err, LspClient(
            server_command(sys.executable, str(tiny_lm_dir), str(tmp_path / "t2.sqlite3")), stderr=err) as client:
        client.initialize({"acceptanceModelPath": str(bad), "acceptanceGate": False})  # turned off: nothing to say
        wait_ready(client)
        assert not any("acceptance gate" in m for m in _messages(client))
        client.shutdown()


def _complete(location: str) -> str:
    run = subprocess.run([sys.executable, "-m", "lsp_server.cli", "complete", location, "--model",
                          str(model_under_test())], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return run.stdout


def _notebook(path, cells: list[str]) -> None:
    path.write_text(json.dumps({"nbformat": 4, "metadata": {}, "cells": [
        {"cell_type": "code", "source": c, "metadata": {}, "outputs": []} for c in cells]}), encoding="utf-8")


def test_complete_says_what_of_the_cells_above_the_prompt_held(tmp_path):
    above = "".join(f"def helper_number_{i}(value):\n    return value * {i}\n\n" for i in range(20))[:1000]
    own = "".join(f"result_{i} = helper_number_{i % 20}(value_{i})\n" for i in range(28)) + "final = helper_num"
    nb = tmp_path / "held.ipynb"
    _notebook(nb, [above, own])
    out = _complete(f"{nb}:2:{own.count(chr(10)) + 1}")
    # the cell's own 1,000 characters fill the prompt's budget: little or none of the cell above is left
    held = re.findall(r"^notebook: +the prompt held (\d+) of the (\d+) characters of the code cells above( \(its "
                      r"token budget cut the rest\))?$", out, re.M)
    assert len(held) == 1 and int(held[0][0]) < int(held[0][1]) and int(held[0][1]) >= len(above) and held[0][2], out
    small = tmp_path / "small.ipynb"
    _notebook(small, ["import os\n", "os.pa"])
    held = re.findall(r"^notebook: +the prompt held (\d+) of the (\d+) characters of the code cells above$",
                      _complete(f"{small}:2:1"), re.M)
    assert len(held) == 1 and held[0][0] == held[0][1] and int(held[0][0]) >= len("import os")


def test_a_served_notebook_completion_logs_what_its_prompt_held(tmp_path):
    from lsp_server.bench_serve import earlier_cells_chars
    from telemetry.lsp_client import change_at, text_document_item

    db = tmp_path / "t.sqlite3"
    above = "".join(f"def helper_number_{i}(value):\n    return value * {i}\n\n" for i in range(20))[:1000]
    own = "".join(f"result_{i} = helper_number_{i % 20}(value_{i})\n" for i in range(28)) + "final = helper_num"
    uri = "file:///w/n.ipynb"
    cells = [f"vscode-notebook-cell:/w/n.ipynb#c{n}" for n in range(3)]
    with LspClient(server_command(sys.executable, str(model_under_test()), str(db))) as client:
        client.initialize({"acceptanceGate": False}, client_name="vscode")
        wait_ready(client)
        client.did_open_notebook(uri, "jupyter-notebook", 1, [text_document_item(cells[0], above, 1),
                                                               text_document_item(cells[1], "import os\n", 1),
                                                               text_document_item(cells[2], "", 1)])
        client.did_change_notebook_text(uri, 1, cells[2], 2, [change_at(0, 0, own)])
        client.inline_completion(cells[2], 28, len("final = helper_num"), invoked=True)
        client.did_change_notebook_text(uri, 1, cells[2], 3, [change_at(0, 0, "x = os.pa")])
        client.inline_completion(cells[2], 0, len("x = os.pa"), invoked=True)
        client.shutdown()
    given = [json.loads(c)["earlier_cells_chars"] for (c,) in sqlite3.connect(db).execute(
        "SELECT context FROM suggestions ORDER BY requested_at")]
    held = earlier_cells_chars(db)
    assert len(given) == len(held) == 2 and given[0] == given[1] > len(above)
    assert held[0] < given[0]  # the budget cut the cells above of the long cell's prompt
    assert held[1] == given[1]  # and kept them whole beside a short one


def test_a_cell_broken_by_lone_crs_counts_lines_as_the_server_does(tmp_path):
    nb = tmp_path / "cr.ipynb"
    _notebook(nb, ["import os\rimport sys\rprint(os.pa"])
    assert "suggestion:" in _complete(f"{nb}:1:3")
