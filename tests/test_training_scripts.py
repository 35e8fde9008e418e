"""The training machine's two scripts check every argument before they start: a typo there costs lent minutes.

Each script runs from a copy in a temporary tree, so what it reads and writes is the test's own.
"""

import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "scripts").mkdir()
    for name in ("train-gpu", "pack-training-inputs"):
        shutil.copy(SCRIPTS / name, tmp_path / "scripts" / name)
    return tmp_path


def run(tree, script, *args):
    return subprocess.run(["bash", str(tree / "scripts" / script), *args], cwd=tree,
                          capture_output=True, text=True, timeout=60)


def write_rows(tree, *paths, rows=10):
    for path in paths:
        (tree / path).parent.mkdir(parents=True, exist_ok=True)
        (tree / path).write_text("".join(f'{{"row": {i}}}\n' for i in range(rows)))


@pytest.mark.parametrize("args, message", [
    (["out", "--head-minutes", "1,5"], "--head-minutes 1,5: give minutes as a number"),
    (["out", "--lm-minutes", "-1"], "--lm-minutes -1: give minutes as a number"),
    (["out", "--bogus", "1"], "unknown option --bogus"),
    (["out", "--lm-minutes", "--head-minutes", "1"], "--lm-minutes needs a value"),
    (["out", "--seq-len"], "--seq-len needs a value"),
    (["out", "--seq-len", "9000"], "--seq-len 9000: give a whole number of tokens from 16 to 8192"),
    (["out", "--batch-size", "0"], "--batch-size 0: give a whole number above 0"),
    (["out", "other"], "one output directory, not both out and other"),
    (["--lm-minutes", "1"], "name the output directory"),
])
def test_train_gpu_refuses_bad_arguments_before_anything_starts(tree, args, message):
    result = run(tree, "train-gpu", *args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "usage: scripts/train-gpu OUT_DIR" in result.stderr
    assert not (tree / "out").exists()


def test_train_gpu_help_is_not_taken_for_the_output_directory(tree):
    result = run(tree, "train-gpu", "--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage: scripts/train-gpu OUT_DIR")
    assert not (tree / "--help").exists()


def test_train_gpu_dry_run_prints_the_commands_with_options_on_either_side(tree):
    write_rows(tree, "data/next_edit/real_train.jsonl")
    result = run(tree, "train-gpu", "--lm-minutes", "0", "out", "--next-edit-minutes", "1.5", "--dry-run")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "input data/next_edit/real_train.jsonl: here" in lines
    assert "input data/next_edit/synthetic_train.jsonl: MISSING" in lines
    assert not any(line.startswith("input data/corpus") for line in lines)  # no code model, no corpus
    assert ("+ tact train next-edit --init models/default --device cuda --batch-tokens 32768 --minutes 1.5 "
            "--prompt-format next_block --out out/next_edit --no-export") in lines
    assert not any("train lm" in line or "draft-head" in line for line in lines)
    assert not (tree / "out").exists()


def test_train_gpu_missing_input_stops_before_the_output_is_made(tree):
    result = run(tree, "train-gpu", "out", "--next-edit-minutes", "0")
    assert result.returncode == 1
    assert "missing data/corpus/train.jsonl" in result.stderr
    assert not (tree / "out").exists()


@pytest.mark.parametrize("args, message", [
    (["--bogus"], "unknown option --bogus"),
    (["a.tar.xz", "b.tar.xz"], "one output file, not both a.tar.xz and b.tar.xz"),
    (["--corpus-only", "--synthetic-share", "0.5"], "--synthetic-share thins the next-edit rows"),
    (["--synthetic-share", "1,5"], "--synthetic-share 1,5: give a share above 0 and at most 1"),
    (["--synthetic-share"], "--synthetic-share needs a share"),
    (["--corpus-only", "--next-edit-only"], "leave nothing to pack together"),
])
def test_pack_training_inputs_refuses_bad_arguments(tree, args, message):
    result = run(tree, "pack-training-inputs", *args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert not list(tree.glob("*.tar.xz*")) and not list(tree.glob("--*"))


def test_pack_training_inputs_reads_options_after_the_output(tree):
    write_rows(tree, "data/corpus/manifest.json", "data/corpus/train.jsonl", "data/corpus/calib.jsonl")
    result = run(tree, "pack-training-inputs", "corpus.tar.xz", "--corpus-only")
    assert result.returncode == 0, result.stderr
    with tarfile.open(tree / "corpus.tar.xz") as packed:
        assert sorted(packed.getnames()) == [
            "data/corpus/calib.jsonl", "data/corpus/manifest.json", "data/corpus/train.jsonl"]


def test_pack_training_inputs_thins_synthetic_rows_under_their_own_name(tree):
    write_rows(tree, "data/next_edit/real_manifest.json", "data/next_edit/real_train.jsonl")
    write_rows(tree, "data/next_edit/synthetic_train.jsonl", rows=400)
    result = run(tree, "pack-training-inputs", "rows.tar.xz", "--next-edit-only", "--synthetic-share", "0.25")
    assert result.returncode == 0, result.stderr
    with tarfile.open(tree / "rows.tar.xz") as packed:
        assert sorted(packed.getnames()) == [
            "data/next_edit/real_manifest.json", "data/next_edit/real_train.jsonl",
            "data/next_edit/synthetic_train.jsonl"]
        synthetic = packed.extractfile("data/next_edit/synthetic_train.jsonl").read().decode().splitlines()
    assert 50 < len(synthetic) < 150  # a seeded quarter of 400
    assert not (tree / "data/next_edit/synthetic_train.sample.jsonl").exists()
