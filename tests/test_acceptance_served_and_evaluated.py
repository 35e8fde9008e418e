"""The acceptance model as served and evaluated, a tenth look: each test failed on the code before."""

from __future__ import annotations

import json
import shutil

import pytest

from lsp_server.cli import main
from lsp_server.config import Settings
from lsp_server.services.gate import AcceptanceGate
from models.acceptance.model import DEFAULT_DIR, load_model
from tests.test_acceptance_cli import _cups_file


def test_an_acceptance_model_path_under_home_is_expanded(tmp_path, monkeypatch):
    """Every path setting reads a leading ~ as the user's home; the gate's read it as a folder named ~ and stayed off."""
    monkeypatch.setenv("HOME", str(tmp_path))
    shutil.copytree(DEFAULT_DIR, tmp_path / "acc")
    settings, problems = Settings.from_camel({"acceptanceModelPath": "~/acc"})
    assert problems == []
    gate = AcceptanceGate()
    assert gate.load(settings.acceptance_model_path) is True, gate.reason
    assert gate.active and gate.model_path == "~/acc"


def test_a_skip_threshold_above_one_is_refused():
    """P(accept) is at most 1: a threshold of 50 (a share typed as a percentage) skipped every automatic request."""
    settings, problems = Settings.from_camel({"acceptanceSkipUncertainty": 50})
    assert any("acceptance_skip_uncertainty" in p or "acceptanceSkipUncertainty" in p for p in problems), problems
    assert settings.acceptance_skip_uncertainty == Settings().acceptance_skip_uncertainty
    assert Settings.from_camel({"acceptanceSkipUncertainty": 0.3})[1] == []


@pytest.mark.parametrize("field", ["documentLength", "meanLogProb"])
def test_a_measurement_of_hundreds_of_digits_reads_as_missing(tmp_path, capsys, field):
    """JSON's integers have no bound: one row's 400-digit length ended the whole evaluation with an OverflowError."""
    pytest.importorskip("sklearn")
    cups = _cups_file(tmp_path / "c.jsonl", users=3)
    rows = cups.read_text().splitlines()
    row = json.loads(rows[0])
    row["measurements"] = {field: 10 ** 400}
    rows[0] = json.dumps(row)
    cups.write_text("\n".join(rows) + "\n")
    assert main(["eval", "acceptance", "--cups", str(cups), "--no-score", "--kind", "logistic", "--json",
                 "--inner-folds", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["programmers"] == 3


def test_training_takes_no_threshold_rule(tmp_path, capsys):
    """A trained model holds no thresholds: training took --lambda and --precision-floor and changed nothing."""
    cups = _cups_file(tmp_path / "c.jsonl", users=3)
    with pytest.raises(SystemExit) as exit_:
        main(["train", "acceptance", "--cups", str(cups), "--no-score", "--out", str(tmp_path / "m"), "--lambda", "0"])
    assert exit_.value.code == 2
    assert "--lambda" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_a_missing_acceptance_model_is_said_before_the_data_is_read(tmp_path, capsys):
    """The data was read and scored first (27 s on the CUPS study), then the path was found wrong."""
    missing_data = tmp_path / "no-such.jsonl"
    assert main(["eval", "acceptance", "--cups", str(missing_data), "--no-score",
                 "--acceptance-model", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert "no acceptance model" in err and "no-such.jsonl" not in err


def test_a_model_whose_info_is_no_object_still_loads(tmp_path):
    shutil.copytree(DEFAULT_DIR, tmp_path / "m")
    path = tmp_path / "m" / "acceptance.json"
    d = json.loads(path.read_text())
    d["info"] = [1]
    path.write_text(json.dumps(d))
    assert load_model(tmp_path / "m").info == {}
