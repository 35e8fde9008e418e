"""A trained model judged as it is (`tact eval acceptance --acceptance-model`) on data that holds some of its
training rows: a programmer with under half of their rows among the model's was judged whole, the model's own rows
included, and the report still said it never saw them."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from lsp_server.cli import main
from models.acceptance import features
from models.acceptance.dataset import AcceptanceData, from_cups
from models.acceptance.evaluate import evaluate_model, format_report, trained_on
from models.acceptance.model import load_model
from tests.test_acceptance_cli import _cups_file

pytest.importorskip("sklearn")


def _data(rows: dict[str, int]) -> AcceptanceData:
    """``rows`` per programmer, each row's context features its own."""
    n = sum(rows.values())
    X1 = np.arange(n * len(features.CONTEXT_FEATURES), dtype=float).reshape(n, -1)
    X2 = np.zeros((n, len(features.SUGGESTION_FEATURES)))
    groups = np.array([g for g, k in rows.items() for _ in range(k)], dtype=object)
    return AcceptanceData(X1, X2, np.arange(n) % 2, groups, np.full((n, 6), np.nan))


def test_a_few_rows_make_a_programmer_trained_on_and_a_chance_match_only_drops_the_row():
    """2 of 647 rows matching by chance leave the programmer in; 9 of 26, or both of 2, leave them out whole."""
    data = _data({"chance": 647, "part": 26, "small": 2, "never": 40})
    fp = np.array(data.context_fingerprints())
    g = data.groups
    matched = np.flatnonzero(g == "chance")[:2].tolist() + np.flatnonzero(g == "part")[:9].tolist() \
        + np.flatnonzero(g == "small").tolist()
    seen, hit = trained_on(SimpleNamespace(info={"context_fingerprints": fp[matched].tolist()}), data)
    assert set(g[seen]) == {"part", "small"} and seen.sum() == 28  # whole: all 26 rows, though 9 were trained on
    assert np.flatnonzero(hit).tolist() == sorted(matched)  # every matched row, the two chance matches included


def _user_lines(path, user: int, count: int, as_user: int) -> list[str]:
    """``user``'s lines in a CUPS file up to their ``count``-th sample, as ``as_user``'s."""
    out, resolved = [], 0
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if row["user"] != user or resolved == count:
            continue
        resolved += row["event"] != "Shown"
        out.append(json.dumps({**row, "user": as_user}))
    return out


def _trained(tmp_path, user: int, count: int):
    """(the file of three new programmers, a model trained on five others and on ``user``'s first ``count`` rows)."""
    other = _cups_file(tmp_path / "other.jsonl", users=3, seed=1)
    train = tmp_path / "train.jsonl"
    part = "\n".join(_user_lines(other, user, count, 9))
    train.write_text(_cups_file(tmp_path / "c.jsonl").read_text() + part + "\n")
    out = tmp_path / "acc"
    assert main(["train", "acceptance", "--cups", str(train), "--no-score", "--kind", "logistic", "--out",
                 str(out)]) == 0
    return other, out


def test_rows_a_model_was_trained_on_are_not_judged_nor_called_never_seen(tmp_path, capsys):
    """The model is trained on five programmers and on 8 of the 24 rows of a sixth; judged on that sixth and two
    others, it judged the sixth's 24 rows, its 8 training rows among them, as a programmer it never saw."""
    other, out = _trained(tmp_path, 1, 8)
    capsys.readouterr()
    model, data = load_model(out), from_cups(other)
    known = set(model.info["context_fingerprints"])
    own = np.array([f in known for f in data.context_fingerprints()])
    sixth = data.groups == "other.jsonl:1"
    assert own[sixth].sum() == 8 and own[sixth].mean() < 0.5  # as trained; under half of the sixth's rows
    report = evaluate_model(model, data, 0.5, 0.9)
    assert report["left_out_as_trained_on"] == {"programmers": 1, "samples": 24}
    kept = own & ~sixth  # context features of the others' that match the model's rows by chance
    assert report["left_out_trained_rows"] == {"programmers": len(set(data.groups[kept])), "samples": int(kept.sum())}
    assert report["samples"] == int((~sixth & ~own).sum()) and report["programmers"] == 2
    text = format_report(report)
    assert "none of these programmers trained the model" not in text
    assert ("never saw" in text) == (not kept.any()), text


def test_rows_among_the_models_of_a_programmer_kept_are_left_out_and_the_report_says_so(tmp_path, capsys):
    """Two rows of a programmer trained on (fewer than ``TRAINED_ON_ROWS``): the programmer is judged, those rows are
    not, and the report no longer says the model never saw them."""
    other, out = _trained(tmp_path, 2, 2)
    capsys.readouterr()
    judge = ["eval", "acceptance", "--cups", str(other), "--no-score", "--acceptance-model", str(out)]
    assert main([*judge, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    model, data = load_model(out), from_cups(other)
    known = set(model.info["context_fingerprints"])
    own = np.array([f in known for f in data.context_fingerprints()])
    second = own[data.groups == "other.jsonl:2"]
    assert second[:2].all() and second.sum() == 2  # the rows trained on
    assert report["programmers"] == 3 and report["samples"] == 72 - int(own.sum())
    assert report["left_out_as_trained_on"] == {"programmers": 0, "samples": 0}
    assert report["left_out_trained_rows"]["samples"] == int(own.sum()) >= 1
    assert main(judge) == 0
    text = capsys.readouterr().out
    assert f"left out too: {int(own.sum())} suggestions" in text and "partly trained" in text
    assert "never saw" not in text and "none of these" not in text, text
