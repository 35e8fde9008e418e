"""Counts the telemetry commands say: next-edit targets left out are counted and flags the run would ignore refused,
an acceptance source's counts are of one set of samples, and a percentage is rounded once, from its counts."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from lsp_server.cli import main
from models.next_edit.telemetry_examples import examples_from_stream, from_telemetry, line_edit
from tests.test_next_edit_ranker import SHAPES, _log_shapes_session

# width renamed on the signature, then the two lines below it, each the line after the last: typing on, no target
TYPING_ON = [(0, 9, 0, 14, "width", "w"), (1, 10, 1, 15, "width", "w"), (2, 11, 2, 16, "width", "w")]
# the same renames from the last line up: each target is away from the edit before it
OUT_OF_ORDER = [(0, 9, 0, 14, "width", "w"), (2, 11, 2, 16, "width", "w"), (1, 10, 1, 15, "width", "w")]


def _continued(skipped: Counter) -> dict[str, int]:
    """The reasons that say a target only continued the edit before it, with their counts."""
    return {why: n for why, n in skipped.items() if "continues the one before" in why}


def _texts(edits: list[tuple]) -> list[str]:
    texts = [SHAPES]
    for sl, sc, _el, ec, removed, inserted in edits:
        lines = texts[-1].splitlines(keepends=True)
        assert lines[sl][sc:ec] == removed
        lines[sl] = lines[sl][:sc] + inserted + lines[sl][ec:]
        texts.append("".join(lines))
    return texts


def test_targets_that_only_continue_the_edit_before_are_counted_as_left_out(tmp_path):
    """Three edits in, no example out, and nothing said: the targets that continue the last edit were dropped
    uncounted, so `skipped: none` followed `0 examples`."""
    db = tmp_path / "t.sqlite3"
    _log_shapes_session(db, TYPING_ON)
    found = from_telemetry([db])
    assert found.examples == [] and list(_continued(found.skipped).values()) == [2]
    assert sum(found.skipped.values()) == 2  # nothing else left out
    other = tmp_path / "o.sqlite3"
    _log_shapes_session(other, OUT_OF_ORDER)
    found = from_telemetry([other])
    assert len(found.examples) == 2 and not _continued(found.skipped)


def test_a_stream_counts_its_left_out_targets_where_asked_and_gives_the_same_examples():
    texts = _texts(TYPING_ON)
    edits = [line_edit(a, b) for a, b in zip(texts, texts[1:])]
    skipped: Counter = Counter()
    assert examples_from_stream("file:///shapes.py", "s1", SHAPES, edits, skipped=skipped) == []
    assert list(_continued(skipped).values()) == [2] and len(skipped) == 1
    assert examples_from_stream("file:///shapes.py", "s1", SHAPES, edits) == []  # other callers: as before


def test_the_command_says_the_targets_it_left_out(tmp_path, capsys):
    db = tmp_path / "t.sqlite3"
    _log_shapes_session(db, TYPING_ON)
    assert main(["train", "next-edit-data", "--telemetry", str(db), "--out", str(tmp_path / "data")]) == 0
    out = capsys.readouterr().out
    (why,) = _continued(from_telemetry([db]).skipped)
    assert "telemetry: 0 examples" in out and f"{why}: 2" in out and "skipped: none" not in out


@pytest.mark.parametrize("flags, said", [(["--limit", "3"], "--limit shapes"), (["--seed", "4"], "--seed shapes"),
                                         (["--limit", "3", "--seed", "4"], "--limit and --seed shape")])
def test_limit_and_seed_without_synthetic_chains_are_refused(tmp_path, capsys, flags, said):
    """They shape the synthetic chains alone; with --telemetry only they were taken and ignored without a word."""
    db = tmp_path / "t.sqlite3"
    _log_shapes_session(db, OUT_OF_ORDER)
    out = tmp_path / "data"
    assert main(["train", "next-edit-data", "--telemetry", str(db), "--out", str(out), *flags]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and not out.exists()
    (line,) = captured.err.splitlines()
    assert line.startswith("tact train next-edit-data: error: ") and said in line and "--synthetic" in line


def test_limit_and_seed_still_shape_the_synthetic_chains_beside_telemetry(tmp_path, capsys, monkeypatch):
    from models.next_edit import synthetic

    asked = {}

    def build_synthetic(corpus, out, limit_files=None, seed=0, log=None):
        asked.update(limit_files=limit_files, seed=seed)
        return {}

    monkeypatch.setattr(synthetic, "build_synthetic", build_synthetic)
    monkeypatch.setattr("models.train_lm.check_corpus", lambda *a: None)
    db = tmp_path / "t.sqlite3"
    _log_shapes_session(db, OUT_OF_ORDER)
    assert main(["train", "next-edit-data", "--synthetic", "--telemetry", str(db), "--out", str(tmp_path / "d"),
                 "--limit", "3", "--seed", "4"]) == 0
    assert asked == {"limit_files": 3, "seed": 4} and "telemetry: 2 examples" in capsys.readouterr().out


def test_an_acceptance_sources_accepted_count_is_of_the_samples_it_used(tmp_path, capsys):
    """With --limit a source said `samples 60, accepted 24, synthetic 9, used 20`: accepted counted every usable
    sample, synthetic and used the ones kept. The sources' accepted now add up to the samples' accepted."""
    pytest.importorskip("sklearn")
    from models.acceptance.dataset import from_telemetry as acceptance_rows
    from telemetry import SessionStarted, open_store
    from telemetry.reader import SIMULATE_CLIENT
    from tests.test_acceptance_cli import _telemetry_db

    a, b = _telemetry_db(tmp_path / "a.sqlite3", n=60), _telemetry_db(tmp_path / "b.sqlite3", n=60, seed=1)
    with open_store(a) as store:
        store.record(SessionStarted("s1", SIMULATE_CLIENT, "0", "0"))
    whole, _ = acceptance_rows([a, b])
    part, _ = acceptance_rows([a, b], limit=20, seed=3)
    for source, full in zip(part.sources, whole.sources):
        assert source["samples"] == full["samples"] == 60 and source["used"] == 20
        assert source["accepted"] <= source["used"] and source["synthetic"] <= source["used"]
    assert sum(s["accepted"] for s in part.sources) == int(part.y.sum())
    first = part.subset(np.array([g.startswith("0:") for g in part.groups]))
    assert part.sources[0]["accepted"] == int(first.y.sum()) < whole.sources[0]["accepted"]
    assert main(["eval", "acceptance", "--telemetry", str(a), "--telemetry", str(b), "--kind", "logistic", "--json",
                 "--inner-folds", "2", "--limit", "20", "--seed", "3"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert sum(s["accepted"] for s in report["sources"]) == report["accepted"]
    assert all(s["accepted"] <= s["used"] == 20 for s in report["sources"])


def test_a_cups_sources_accepted_count_is_of_the_samples_it_used(tmp_path):
    from models.acceptance.dataset import from_cups
    from tests.test_acceptance_cli import _cups_file

    cups = _cups_file(tmp_path / "c.jsonl")
    whole = from_cups(cups)
    part = from_cups(cups, limit=25, seed=2)
    assert part.sources[0]["used"] == 25 and part.sources[0]["samples"] == whole.sources[0]["samples"]
    assert part.sources[0]["accepted"] == int(part.y.sum()) and whole.sources[0]["accepted"] == int(whole.y.sum())


def _shown_db(path, uri: str, accepted: int, rejected: int, earlier_cells: int = 0):
    """One session of completions at ``uri``, every one shown: ``accepted`` of them accepted, the rest rejected; the
    first ``earlier_cells`` prompts held earlier notebook cells."""
    from telemetry import (SessionEnded, SessionStarted, SuggestionAccepted, SuggestionGated, SuggestionGenerated,
                           SuggestionRejected, SuggestionRequested, SuggestionShown, TelemetryStore)

    with TelemetryStore(path) as store:
        store.record(SessionStarted("s", "vscode", "1", "0.1.0", ts=0.0))
        for n in range(accepted + rejected):
            sid, ts = f"x{n}", 1.0 + n
            context = {"prefix_chars": 10, "earlier_cells_chars": 40 if n < earlier_cells else 0}
            store.record(SuggestionRequested("s", sid, "completion", uri, 1, 0, 0, context=context, ts=ts))
            store.record(SuggestionGated("s", sid, 1, "generate", 0.5, 0.05, ts=ts))
            store.record(SuggestionGenerated("s", sid, "xyz", "m", "full", 10.0, 1, ts=ts + 0.1))
            store.record(SuggestionGated("s", sid, 2, "show", 0.5, 0.3, ts=ts + 0.1))
            store.record(SuggestionShown("s", sid, ts=ts + 0.2))
            if n < accepted:
                store.record(SuggestionAccepted("s", sid, 3, False, ts=ts + 0.3))
            else:
                store.record(SuggestionRejected("s", sid, "typedOver", ts=ts + 0.3))
        store.record(SessionEnded("s", "shutdown", ts=100.0))
    return path


@pytest.mark.parametrize("uri", ["file:///w/a.py", "vscode-notebook-cell:///w/nb.ipynb#cell-1"])
def test_the_acceptance_rate_is_rounded_once_from_the_counts(tmp_path, capsys, uri):
    """16 accepted of 49 shown is 32.653%: the report's rate, rounded to 0.3265 first, was printed as 32.6%."""
    db = _shown_db(tmp_path / "r.sqlite3", uri, accepted=16, rejected=33)
    assert main(["report", str(db), "-o", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if "49 shown" in line]
    assert lines and all("32.7% accepted" in line and "32.6%" not in line for line in lines), out
    if uri.startswith("vscode-notebook-cell"):  # the line of files against notebook cells too
        assert any("notebook cells 49 requests, 49 shown, 32.7% accepted" in line for line in lines), out


def test_the_pages_rates_are_rounded_once_from_the_counts(tmp_path):
    """The page said its rates from the rounded ones too: 16 of 49 accepted as 32.6%, and 16 of 49 prompts holding
    earlier cells as 32.6%."""
    db = _shown_db(tmp_path / "r.sqlite3", "vscode-notebook-cell:///w/nb.ipynb#cell-1", accepted=16, rejected=33,
                   earlier_cells=16)
    assert main(["report", str(db), "-o", str(tmp_path / "r")]) == 0
    page = (tmp_path / "r" / "index.html").read_text()
    assert "<td>acceptance rate</td><td>32.7%</td>" in page
    assert "<td>acceptance rate</td><td>&ndash;</td><td>32.7%</td>" in page  # files (none), then the cells
    assert "<td>prompt held earlier cells</td><td></td><td>32.7%</td>" in page  # files have no such row
    assert "32.6%" not in page
