"""The command line, a twelfth look: values that trained a broken model, quick runs that replaced shipped files, an
interrupted write that cut the data short, and errors that named no path, no fix or another status. Each test
failed on the code before."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lsp_server.cli import main

REPO = Path(__file__).resolve().parents[1]


def _refused(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("argv, says", [
    (["train", "lm", "--lr", "inf"], "must be a finite number, got inf"),
    (["train", "lm", "--minutes", "1e999"], "must be a finite number"),
    (["train", "next-edit", "--lr", "Infinity"], "must be a finite number"),
    (["train", "lm", "--seq-len", "100000"], "argument --seq-len: must lie in 16 to 8192, got 100000"),
    (["train", "lm", "--seq-len", "4"], "argument --seq-len: must lie in 16 to 8192, got 4"),
])
def test_values_no_training_can_use_are_refused_before_it_starts(argv, says, capsys):
    """`--lr inf` trained a model of NaNs and saved it (over the shipped one without --out), exit 0; `--seq-len
    100000` built the tokenizer and the model before running out of memory."""
    assert says in _refused(argv, capsys)


@pytest.mark.parametrize("target, replaced", [
    ("next-edit-ranker", REPO / "models" / "next_edit" / "ranker"),
    ("next-edit-data", REPO / "data" / "next_edit"),
])
def test_a_quick_run_must_name_where_it_writes(target, replaced, capsys):
    """`--limit 20` replaced the shipped ranker (threshold fitted on 40 examples) and the full next-edit data without a
    word; `tact train acceptance --limit` already refused so."""
    assert main(["train", target, "--limit", "20"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (f"tact train {target}: error: a run with --limit would replace "
                           f"{replaced}; name a directory with --out DIR")


def test_examples_written_through_a_temporary_file_leave_the_old_file_whole_when_interrupted(tmp_path):
    """Ctrl-C during `tact train next-edit-data` left the earlier, whole file cut at the lines written so far, read as
    whole by the ranker and the evaluation."""
    from models.next_edit.examples import Edit, Example, read_jsonl, write_jsonl

    example = Example("a.py", "demo", "x = 1\n", [Edit(0, 1, "x = 1\n", "x = 2\n")], "x = 2\n", Edit(0, 1, "x = 2\n", "x = 3\n"))
    path = tmp_path / "synthetic_train.jsonl"
    assert write_jsonl(path, [example] * 5) == 5

    def interrupted():
        yield example
        yield example
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_jsonl(path, interrupted())
    assert len(list(read_jsonl(path))) == 5 and not list(tmp_path.glob("*.tmp"))


def test_a_home_that_cannot_be_written_is_said_with_the_fix(tmp_path, capsys, monkeypatch):
    """`tact demo` and `tact simulate` said only "[Errno 30] Read-only file system: '/home/u/.local'"."""
    blocked = tmp_path / "file"
    blocked.write_text("")
    monkeypatch.setenv("TACT_DATA_DIR", str(blocked / "tact"))  # a folder under a file: it cannot be made
    assert main(["demo", "--lines", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"tact demo: error: cannot make {blocked / 'tact'} for the telemetry database (")
    assert err.endswith("pass --database FILE or set TACT_DATA_DIR to a directory you can write")
    source = tmp_path / "f.py"
    source.write_text("import os\n\n\ndef f(x):\n    return x\n")
    assert main(["simulate", str(source), "--minutes", "0.05"]) == 2
    assert "set TACT_DATA_DIR to a directory you can write" in capsys.readouterr().err


def test_eval_next_edit_reads_the_data_the_training_commands_write_and_says_what_it_did_not_run(tmp_path, capsys,
                                                                                                monkeypatch):
    """Without --data it failed ("give --data DIR"), though `train next-edit-data` writes data/next_edit; --no-model
    said the model was "no model yet" where one is shipped; an empty directory gave "no examples found" alone."""
    from lsp_server import cli

    data = tmp_path / "repo" / "data" / "next_edit"
    data.mkdir(parents=True)
    from models.next_edit.examples import Edit, Example, write_jsonl

    first = Edit(0, 1, "w = 1\n", "width = 1\n")
    write_jsonl(data / "synthetic_heldout.jsonl", [Example("a.py", "demo", "w = 1\nprint(w)\n", [first],
                                                           "width = 1\nprint(w)\n",
                                                           Edit(1, 2, "print(w)\n", "print(width)\n"))])
    monkeypatch.setattr(cli, "REPO_ROOT", tmp_path / "repo")
    assert main(["eval", "next-edit", "--no-model"]) == 0
    out = capsys.readouterr().out
    assert "synthetic_heldout" in out and "not run (--no-model)" in out and "no model yet" not in out
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["eval", "next-edit", "--data", str(empty), "--no-model"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"tact eval next-edit: error: no next-edit examples in {empty} (*_heldout.jsonl, or Python files "
                   "that differ for --pair): write them with `tact train next-edit-data --out DIR`")
    train_only = tmp_path / "train_only"  # a build that stopped before its held-out files: nothing judged on them
    train_only.mkdir()
    (train_only / "real_train.jsonl").write_text((data / "synthetic_heldout.jsonl").read_text())
    assert main(["eval", "next-edit", "--data", str(train_only), "--no-model"]) == 2
    err = capsys.readouterr().err
    assert "no next-edit examples in" in err and "holds training examples only (*_train.jsonl)" in err
    (train_only / "mine.jsonl").write_text((data / "synthetic_heldout.jsonl").read_text())  # a set of the user's own
    assert main(["eval", "next-edit", "--data", str(train_only), "--no-model", "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)["sets"]) == {"mine"}


def test_eval_acceptance_refuses_a_cache_that_is_a_file_before_scoring(tmp_path, capsys):
    cache = tmp_path / "scores"
    cache.write_text("")
    assert "is a file, not a directory" in _refused(["eval", "acceptance", "--cache", str(cache)], capsys)


def test_a_bench_with_the_gate_on_refuses_a_server_whose_gate_is_off(tmp_path):
    """`bench serve --set acceptanceModelPath=/nowhere` said "acceptance gate on" and judged latency with a gate the
    server did not have (its status: active false, no acceptance model)."""
    from lsp_server.bench_serve import run_bench
    from models.bench_early_exit import BenchInputError
    from tests.lsp_support import model_under_test

    source = tmp_path / "src"
    source.mkdir()
    (source / "m.py").write_text("".join(f"def f{i}(a, b):\n    return a + b * {i}\n" for i in range(20)))
    with pytest.raises(BenchInputError, match=r"the acceptance gate is off in the server \(no acceptance model at "
                                              r".*nowhere.*\); pass --no-gate"):
        run_bench(str(model_under_test()), "speculative", 2, source, None, gate=True, typing_cps=0,
                  settings={"acceptanceModelPath": str(tmp_path / "nowhere")})


def test_bench_early_exit_refuses_flags_it_would_ignore(tmp_path, capsys):
    """The sweep's flags beside --no-exit-sweep and --split beside --source ran, ignored, without a word; a token
    healing of 100 ran and was reported, though the server takes 0 to 16."""
    source = tmp_path / "src"
    source.mkdir()
    for argv, says in [
        (["--no-exit-sweep", "--exit-sweep-thresholds", "0.9"], "--exit-sweep-thresholds shapes the exit sweep"),
        (["--no-exit-sweep", "--exit-sweep-rules", "agreement", "--exit-pick-margin", "0.5"],
         "--exit-sweep-rules, --exit-pick-margin shape the exit sweep"),
        (["--source", str(source), "--split", "calib"], "--split chooses a split of --corpus"),
    ]:
        assert main(["bench", "early-exit", "--limit", "1", *argv]) == 2
        assert says in capsys.readouterr().err
    assert "argument --token-healing: must lie in 0 to 16, got 100" in _refused(
        ["bench", "early-exit", "--token-healing", "100"], capsys)


def test_a_lookup_veto_without_lookup_is_refused(capsys):
    """`--exit-lookup-veto` ran and changed nothing where prompt lookup is not consulted."""
    assert main(["bench", "early-exit", "--limit", "1", "--exit-lookup-veto"]) == 2
    assert "--exit-lookup-veto vetoes by prompt lookup's guess" in capsys.readouterr().err


@pytest.mark.parametrize("argv, says", [
    (["serve", "--host", "0.0.0.0"], "--host is the address of --tcp"),
    (["serve", "--stdio", "--tcp", "8765"], "--stdio and --tcp: choose one"),
])
def test_serve_refuses_transport_flags_it_would_ignore(argv, says, capsys):
    """`--host` without `--tcp` served on stdio, and `--stdio --tcp` listened on TCP while the editor spoke on stdio."""
    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == f"tact serve: error: {says}"
