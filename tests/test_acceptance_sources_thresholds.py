"""The acceptance model's sources, files and thresholds, an eighth look: each test failed on the code before."""

from __future__ import annotations

import json
import shutil
import sqlite3

import numpy as np
import pytest

from lsp_server.cli import main
from models.acceptance.dataset import from_telemetry
from models.acceptance.model import AcceptanceModelError, load_model
from models.acceptance.policy import choose_thresholds, outcomes
from tests.test_acceptance_cli import _cups_file, _telemetry_db

pytest.importorskip("sklearn")


def test_one_database_given_twice_is_refused(tmp_path, capsys):
    """Given twice it was two programmers holding the same rows: leave-programmer-out scored noise near an AUC of 1."""
    db = _telemetry_db(tmp_path / "a.sqlite3", n=60)
    with pytest.raises(SystemExit) as exit_:
        main(["eval", "acceptance", "--telemetry", str(db), "--telemetry", str(tmp_path / "." / "a.sqlite3"),
              "--kind", "logistic", "--json", "--inner-folds", "2"])
    assert exit_.value.code == 2
    assert "given again" in capsys.readouterr().err


def test_a_copy_of_a_database_adds_no_rows_and_its_user_is_one_programmer(tmp_path):
    """A backup beside the live file shares its decisions: they are read once. With other sources, a database's
    sessions are one programmer (its user), not one programmer each."""
    db = _telemetry_db(tmp_path / "a.sqlite3", n=40)
    shutil.copy(db, tmp_path / "backup.sqlite3")
    other = _telemetry_db(tmp_path / "b.sqlite3", n=40, seed=1)
    with sqlite3.connect(other) as conn:  # another user's sessions and suggestions are their own
        conn.execute("UPDATE decisions SET session_id = 'b' || session_id, suggestion_id = 'b' || suggestion_id")
        conn.execute("UPDATE suggestions SET session_id = 'b' || session_id, id = 'b' || id")
    data, refusals = from_telemetry([db, tmp_path / "backup.sqlite3", other])
    assert not refusals
    assert len(data) == 80
    copied, _ = from_telemetry([db, tmp_path / "backup.sqlite3"])
    assert len(copied) == 40 and len(set(copied.groups.tolist())) == 1
    assert sorted(set(data.groups.tolist())) == ["0:a.sqlite3", "2:b.sqlite3"]
    alone, _ = from_telemetry([db], alone=True)
    assert len(set(alone.groups.tolist())) == 2  # nothing else to leave out: its sessions stand in


def test_a_damaged_database_is_refused_by_name_and_the_others_are_read(tmp_path):
    good = _telemetry_db(tmp_path / "a.sqlite3", n=40)
    bad = _telemetry_db(tmp_path / "bad.sqlite3", n=1500, seed=1)
    size = bad.stat().st_size
    with open(bad, "r+b") as f:  # pages past the schema overwritten: a copy taken mid-write, a bad disk
        f.seek(size // 2)
        f.write(b"\xa5" * (size // 4))
    data, refusals = from_telemetry([good, bad])
    assert len(data) == 40
    assert len(refusals) == 1 and "bad.sqlite3" in refusals[0]


def test_a_refused_database_is_listed_with_why_in_the_reports_sources(tmp_path, capsys):
    """The run went on without it, as it should, but its JSON listed only the databases read: the figures did not say
    that a source given was left out."""
    good = _cups_file(tmp_path / "c.jsonl")
    bad = tmp_path / "notdb.sqlite3"
    bad.write_bytes(b"not a database at all" * 100)
    assert main(["eval", "acceptance", "--cups", str(good), "--no-score", "--telemetry", str(bad), "--kind",
                 "logistic", "--json", "--inner-folds", "2"]) == 0
    captured = capsys.readouterr()
    sources = {s["path"]: s for s in json.loads(captured.out)["sources"]}
    assert set(sources) == {str(good), str(bad)} and sources[str(good)]["samples"] > 0
    assert sources[str(bad)]["samples"] == 0 and "notdb.sqlite3" in sources[str(bad)]["refused"]
    assert f"telemetry {bad}: refused (" in captured.err


def test_a_row_nested_past_pythons_limit_is_skipped_and_counted(tmp_path, capsys):
    cups = _cups_file(tmp_path / "c.jsonl")
    with open(cups, "a") as f:
        f.write("[" * 100_000 + "]" * 100_000 + "\n")
    assert main(["eval", "acceptance", "--cups", str(cups), "--no-score", "--kind", "logistic", "--json",
                 "--inner-folds", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["sources"][0]["skipped"] == {"not JSON": 2}


def test_two_cups_files_of_one_name_keep_their_programmers_apart(tmp_path, capsys):
    """Two studies both named cups.jsonl, users numbered from 1: their programmers were merged."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = _cups_file(tmp_path / "a" / "cups.jsonl", users=3, seed=0)
    b = _cups_file(tmp_path / "b" / "cups.jsonl", users=3, seed=1)
    assert main(["eval", "acceptance", "--cups", str(a), "--cups", str(b), "--no-score", "--kind", "logistic",
                 "--json", "--inner-folds", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["programmers"] == 6


def test_a_trained_model_is_evaluated_on_one_new_programmer(tmp_path, capsys):
    """Nothing is left out when a model is judged as it is: one programmer's data was refused as too little."""
    cups = _cups_file(tmp_path / "c.jsonl")
    out = tmp_path / "m"
    assert main(["train", "acceptance", "--cups", str(cups), "--no-score", "--kind", "logistic", "--out", str(out),
                 "--json"]) == 0
    one = _cups_file(tmp_path / "one.jsonl", users=1, seed=5)
    capsys.readouterr()
    assert main(["eval", "acceptance", "--cups", str(one), "--no-score", "--acceptance-model", str(out),
                 "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["programmers"] == 1
    assert "trained on suggestions scored by" not in captured.err  # both without scores: no mismatch to note


def test_a_quick_training_run_does_not_replace_the_shipped_model(tmp_path, capsys):
    cups = _cups_file(tmp_path / "c.jsonl")
    for flags in (["--limit", "40"], ["--no-score"]):
        with pytest.raises(SystemExit) as exit_:
            main(["train", "acceptance", "--cups", str(cups), "--kind", "logistic", *flags])
        assert exit_.value.code == 2
        assert "--out DIR" in capsys.readouterr().err


def _model_file(tmp_path, edit) -> str:
    d = json.loads(load_model_text())
    edit(d)
    (tmp_path / "acceptance.json").write_text(json.dumps(d) if not isinstance(d, str) else d)
    return str(tmp_path)


def load_model_text() -> str:
    from models.acceptance.model import DEFAULT_DIR, MODEL_FILE
    return (DEFAULT_DIR / MODEL_FILE).read_text()


def _trees(d) -> dict:
    return d["stage1"] if d["stage1"]["kind"] == "trees" else d["stage2"]


@pytest.mark.parametrize("name,edit", [
    ("an infinite max_depth", lambda d: _trees(d)["params"].__setitem__("max_depth", 1e999)),
    ("an integer no int64 holds", lambda d: _trees(d)["params"]["feature"].__setitem__(0, 10 ** 30)),
    ("a fill of two dimensions", lambda d: d["stage2"].__setitem__("fill", [[0.0] * 3])),
    ("numbers written as text", lambda d: d["stage2"].__setitem__("fill", [str(v) for v in d["stage2"]["fill"]])),
    ("a fractional node index", lambda d: _trees(d)["params"]["left"].__setitem__(0, 1.5)),
    ("format true", lambda d: d.__setitem__("format", True)),
    ("an empty calibration", lambda d: d.__setitem__("calibration", {"stage1": [], "stage2": [], "label": []})),
])
def test_a_damaged_model_file_is_the_models_error(tmp_path, name, edit):
    """Each escaped as OverflowError or TypeError (the gate logged a traceback), or was taken: text as numbers,
    node indices truncated, a gate said on with no threshold to choose."""
    if "trees" not in load_model_text() and "node" in name:
        pytest.fail("the shipped model holds no trees to damage")
    with pytest.raises(AcceptanceModelError):
        load_model(_model_file(tmp_path, edit))


def test_json_nested_past_pythons_limit_is_the_models_error(tmp_path):
    (tmp_path / "acceptance.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(AcceptanceModelError, match="RecursionError"):
        load_model(tmp_path)


def test_a_skip_threshold_set_by_hand_keeps_the_precision_floor_or_says_it_cannot(caplog):
    """The hide threshold chosen beside the rule's skip threshold was kept under another skip: on the shipped model's
    calibration, hiding precision fell to 0.846 (skip 0.2) against the floor of 0.9, and nothing said so."""
    import dataclasses

    from lsp_server.config import Settings
    from lsp_server.services.gate import AcceptanceGate

    model = load_model()
    c = model.calibration
    gate = AcceptanceGate(model)
    for skip in (0.08, 0.11):  # the floor can be kept beside these (on the shipped calibration)
        t = gate.thresholds(dataclasses.replace(Settings(), acceptance_skip_uncertainty=skip))
        assert t.skip == skip and np.isfinite(t.objective)
        assert outcomes(c.stage1, c.stage2, c.label, t)["hiding_precision"] >= 0.9
    with caplog.at_level("WARNING", logger="tact.gate"):
        t = gate.thresholds(dataclasses.replace(Settings(), acceptance_skip_uncertainty=0.2))
    assert t.skip == 0.2 and t.hide == float("-inf")  # no hide threshold keeps it: stage 2 hides nothing more
    assert "acceptanceSkipUncertainty 0.2: no hide threshold keeps the precision floor" in caplog.text


def test_a_fixed_skip_threshold_never_breaks_the_floor_where_another_hide_threshold_keeps_it():
    """On random calibrations: whatever the skip, the hide threshold chosen with it keeps the floor, or stage 2 hides
    nothing more."""
    rng = np.random.default_rng(0)
    kept = 0
    for _ in range(200):
        n = 300
        y = (rng.random(n) < 0.35).astype(int)
        s1 = np.clip(0.3 * y + rng.normal(0.3, 0.2, n), 0, 1)
        s2 = np.clip(0.4 * y + rng.normal(0.3, 0.2, n), 0, 1)
        skip = float(rng.uniform(0, 0.4))
        t = choose_thresholds(s1, s2, y, 0.5, 0.9, skip=skip)
        figures = outcomes(s1, s2, y, t)
        if np.isfinite(t.objective):
            kept += 1
            assert figures["hiding_precision"] is None or figures["hiding_precision"] >= 0.9
        else:  # no hide threshold keeps the floor beside this skip: nothing more is hidden
            assert t.hide == float("-inf")
    assert kept > 20
