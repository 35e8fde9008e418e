"""The `tact train` commands refuse bad input as one line naming the problem and the fix, exit 2, no traceback, before
any training starts and before anything is written. Every run here is refused, or builds a toy corpus: seconds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_cli_commands import assert_one_error_line, run_main

TOKENIZER = Path(__file__).resolve().parents[1] / "models" / "default" / "tokenizer.json"
CODE = "def area(width, height):\n    return width * height\n\n\nclass Box:\n    size = area(2, 3)\n" * 20


def write_corpus(corpus: Path, *, empty: tuple[str, ...] = ()) -> Path:
    """A corpus directory as `tact train corpus` writes it, with the splits in ``empty`` left empty."""
    corpus.mkdir(parents=True, exist_ok=True)
    splits = {}
    for split in ("train", "calib", "heldout"):
        files = 0 if split in empty else 2
        with open(corpus / f"{split}.jsonl", "w", encoding="utf-8") as f:
            for i in range(files):
                f.write(json.dumps({"package": f"user:{split}{i}", "path": f"{split}{i}.py", "text": CODE}) + "\n")
        packages = [f"user:{split}{i}" for i in range(files)]
        splits[split] = {"files": files, "chars": files * len(CODE), "packages": packages}
    (corpus / "manifest.json").write_text(json.dumps({"split_rule": "test", "splits": splits}))
    return corpus


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    """The working directory: a file `a_file`, a corpus `corpus` and a missing corpus `nocorpus`."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a_file").write_text("not a directory\n")
    write_corpus(tmp_path / "corpus")
    return tmp_path


@pytest.fixture
def model_dir(tmp_path):
    """`model`, a model directory of a two-layer untrained model (nothing of it is read past its check)."""
    from models.architecture import EarlyExitLM, ModelConfig
    from models.tokenizer import load_tokenizer
    from models.train_lm import save_model_dir

    tok = load_tokenizer(TOKENIZER)
    cfg = ModelConfig(vocab_size=tok.get_vocab_size(), hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64)
    out = tmp_path / "model"
    save_model_dir(EarlyExitLM(cfg), tok, out, {"name": "test"})
    return out


# Refused by argparse. Each command also names a missing corpus, model or data, so that without the check it stops at
# once on that (a different message) rather than train or download anything.
LM = ["train", "lm", "--corpus", "nocorpus", "--out", "lm", "--size", "tiny", "--minutes", "0.01"]
NEXT_EDIT = ["train", "next-edit", "--data", "nodata", "--init", "nomodel", "--minutes", "0.01", "--no-export"]
CONTROLLER = ["train", "controller", "--model", "nomodel", "--corpus", "nocorpus"]
DRAFT_HEAD = ["train", "draft-head", "--model", "nomodel", "--corpus", "nocorpus"]
NGRAM_DRAFTS = ["train", "ngram-drafts", "--model", "nomodel", "--corpus", "nocorpus"]


def train_lm(corpus: str, minutes: str, *more: str) -> list[str]:
    """`tact train lm` of a tiny model on ``corpus`` for ``minutes``, on one thread, with no n-gram drafts or export."""
    return ["train", "lm", "--corpus", corpus, "--out", "lm", "--size", "tiny", "--minutes", minutes, "--threads", "1",
            "--ngram-model-tokens", "0", "--no-export", *more]


@pytest.mark.parametrize("args, says", [
    (LM + ["--batch-size", "0"], "argument --batch-size: must be 1 or more, got 0"),
    (LM + ["--batch-size", "-3"], "argument --batch-size: must be 1 or more, got -3"),
    (LM + ["--lr", "-1"], "argument --lr: must be more than 0, got -1"),
    (LM + ["--threads", "-2"], "argument --threads: must be 1 or more, got -2"),
    (LM + ["--loader-workers", "-1"], "argument --loader-workers: must be 0 or more, got -1"),
    (LM + ["--ngram-model-tokens", "-5"], "argument --ngram-model-tokens: must be 0 or more, got -5"),
    (LM + ["--device", "bogus"], "argument --device: unknown device 'bogus' (known: cpu, cuda, cuda:N, mps)"),
    (LM + ["--device", "cuda:x"], "argument --device: unknown device 'cuda:x'"),
    (LM + ["--out", "a_file"], "argument --out: a_file is a file, not a directory"),
    (LM + ["--out", "a_file/lm"], "argument --out: a_file is a file, not a directory"),
    (CONTROLLER + ["--batches", "0"], "argument --batches: must be 1 or more, got 0"),
    (CONTROLLER + ["--batches", "-1"], "argument --batches: must be 1 or more, got -1"),
    (DRAFT_HEAD + ["--batch-size", "0"], "argument --batch-size: must be 1 or more, got 0"),
    (DRAFT_HEAD + ["--threads", "0"], "argument --threads: must be 1 or more, got 0"),
    (DRAFT_HEAD + ["--device", "gpu"], "argument --device: unknown device 'gpu'"),
    (NGRAM_DRAFTS + ["--model-tokens", "-5"], "argument --model-tokens: must be 0 or more, got -5"),
    (NGRAM_DRAFTS + ["--batch-size", "0"], "argument --batch-size: must be 1 or more, got 0"),
    (NGRAM_DRAFTS + ["--threads", "-1"], "argument --threads: must be 1 or more, got -1"),
    (NEXT_EDIT + ["--real-share", "2"], "argument --real-share: must lie in 0 to 1, got 2"),
    (NEXT_EDIT + ["--edit-weight", "-1"], "argument --edit-weight: must be 0 or more, got -1"),
    (NEXT_EDIT + ["--batch-tokens", "0"], "argument --batch-tokens: must be 1 or more, got 0"),
    (NEXT_EDIT + ["--lr", "0"], "argument --lr: must be more than 0, got 0"),
    (NEXT_EDIT + ["--threads", "0"], "argument --threads: must be 1 or more, got 0"),
    (NEXT_EDIT + ["--device", "bogus"], "argument --device: unknown device 'bogus'"),
    (NEXT_EDIT + ["--out", "a_file"], "argument --out: a_file is a file, not a directory"),
    (["train", "next-edit-ranker", "--data", "nodata", "--synthetic-sample", "-1"],
     "argument --synthetic-sample: must be 0 or more, got -1"),
    (["train", "next-edit-ranker", "--data", "nodata", "--out", "a_file"], "argument --out: a_file is a file"),
    (["train", "acceptance", "--cups", "nocups.jsonl", "--no-score", "--out", "a_file"],
     "argument --out: a_file is a file"),
    (["train", "next-edit-data", "--synthetic", "--corpus", "nocorpus", "--out", "a_file"],
     "argument --out: a_file is a file"),
    (["train", "corpus", "--out", "a_file", "--max-mb", "0.01"], "argument --out: a_file is a file, not a directory"),
    (["train", "corpus", "--out", "built", "--dir", "nodir", "--max-mb", "0.01"],
     "argument --dir: nodir does not exist: name a directory of Python code"),
    (["train", "corpus", "--out", "built", "--dir", "a_file", "--max-mb", "0.01"],
     "argument --dir: a_file is not a directory of code"),
])
def test_bad_training_options_are_usage_errors(scratch, capsys, args, says):
    assert_one_error_line(*run_main(args, capsys), says)
    assert not (scratch / "lm").exists() and not (scratch / "built").exists()


def test_next_edit_data_refuses_a_missing_corpus_before_downloading_or_writing(scratch, capsys, monkeypatch):
    import models.next_edit.real_changes as real_changes

    def no_download(*args, **kwargs):
        raise AssertionError("downloaded before checking the corpus")

    monkeypatch.setattr(real_changes, "download_sdist", no_download)
    for args in (["--synthetic", "--limit", "2"], []):  # the README's plain command too: in a fresh clone, no corpus
        code, out, err = run_main(["train", "next-edit-data", "--corpus", "nocorpus", "--out", "data", *args], capsys)
        assert_one_error_line(code, out, err, "tact train next-edit-data: error: nocorpus is not a training corpus "
                                              "(no train.jsonl, heldout.jsonl): build one with `tact train corpus")
        assert not (scratch / "data").exists()


def test_next_edit_data_keeps_the_earlier_examples_when_no_telemetry_database_can_be_read(scratch, capsys):
    data = scratch / "data"
    data.mkdir()
    (data / "telemetry_train.jsonl").write_text('{"earlier": 1}\n')
    code, out, err = run_main(["train", "next-edit-data", "--telemetry", "missing.sqlite3", "--out", str(data)], capsys)
    assert_one_error_line(code, out, err, "no telemetry database at missing.sqlite3")  # refused before any work
    assert (data / "telemetry_train.jsonl").read_text() == '{"earlier": 1}\n'


def test_corpus_warns_of_an_empty_split_and_training_refuses_it_before_it_starts(scratch, capsys, monkeypatch):
    from models.corpus import split_of

    monkeypatch.setattr("models.corpus.default_roots", lambda: [])  # only the --dir below: a tiny corpus
    code_dir = scratch / "code"
    packages = [name for name in (f"pkg{i}" for i in range(40)) if split_of(f"user:code:{name}") == "train"][:3]
    for name in packages:
        (code_dir / name).mkdir(parents=True)
        (code_dir / name / "__init__.py").write_text(CODE.replace("area", f"area_{name}"))
    code, out, err = run_main(["train", "corpus", "--out", "small", "--dir", str(code_dir), "--max-mb", "1"], capsys)
    assert code == 0 and "calib: 0 files" in out
    warnings = [line for line in err.splitlines() if line.startswith("tact train corpus: warning:")]
    assert len(warnings) == 2 and "the calib split is empty" in warnings[0] and "--max-mb" in warnings[0], err
    assert "the heldout split is empty" in warnings[1]

    # `tact train lm` needs the calib split to fit the controller after training: refused before it starts
    code, out, err = run_main(train_lm("small", "0.05"), capsys)
    assert_one_error_line(code, out, err, "tact train lm: error: the calib split of small is empty (too small a "
                                          "corpus): rebuild it bigger, `tact train corpus --out small --max-mb N`")
    assert not (scratch / "lm").exists()
    write_corpus(scratch / "no_train", empty=("train",))
    code, out, err = run_main(train_lm("no_train", "0.05"), capsys)
    assert_one_error_line(code, out, err, "the train split of no_train is empty")


def test_the_splits_a_model_command_reads_and_its_model_are_checked_first(scratch, model_dir, capsys):
    write_corpus(scratch / "no_calib", empty=("calib",))
    write_corpus(scratch / "no_train", empty=("train",))
    record = (model_dir / "tact.json").read_text()
    for args, says in [
        (["controller", "--model", "model", "--corpus", "no_calib"], "the calib split of no_calib is empty"),
        (["draft-head", "--model", "model", "--corpus", "no_train", "--minutes", "0.01"],
         "the train split of no_train is empty"),
        (["ngram-drafts", "--model", "model", "--corpus", "no_train", "--model-tokens", "0"],
         "the train split of no_train is empty"),
        (["draft-head", "--model", "a_file", "--corpus", "corpus", "--minutes", "0.01"],
         "a_file is a file, not a model directory"),
        (["ngram-drafts", "--model", "a_file", "--corpus", "corpus", "--model-tokens", "0"],
         "a_file is a file, not a model directory"),
        (["ngram-drafts", "--model", "nomodel", "--corpus", "corpus", "--model-tokens", "0"],
         "model directory nomodel does not exist"),
    ]:
        code, out, err = run_main(["train", *args], capsys)
        assert_one_error_line(code, out, err, f"tact train {args[0]}: error: {says}")
    assert (model_dir / "tact.json").read_text() == record  # nothing was fitted into it


@pytest.mark.parametrize("device, cuda_devices, mps, says", [
    ("cuda", 0, False, "--device cuda: no CUDA device is available here"),
    ("cuda:1", 1, False, "--device cuda:1: this machine has 1 CUDA device (cuda:0 to cuda:0)"),
    ("mps", 0, False, "--device mps: MPS is not available here: use --device cpu"),
])
def test_a_device_this_machine_lacks_is_refused_before_training(scratch, capsys, monkeypatch, device, cuda_devices,
                                                               mps, says):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda_devices > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: cuda_devices)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    code, out, err = run_main(train_lm("corpus", "0.01", "--device", device), capsys)
    assert_one_error_line(code, out, err, f"tact train lm: error: {says}")
    assert not (scratch / "lm").exists()


def test_a_budget_too_short_for_one_step_is_refused_and_writes_nothing(scratch, capsys):
    code, out, err = run_main(train_lm("corpus", "1e-9"), capsys)
    assert code == 2 and "Traceback" not in err
    assert err.splitlines()[-1] == ("tact train lm: error: no training step fitted in --minutes 1e-09 (0.9 of it for "
                                    "the steps): give it more minutes")
    assert not (scratch / "lm").exists()


def test_a_next_edit_budget_too_short_for_one_step_is_refused_and_writes_nothing(tmp_path, tiny_lm_dir, capsys):
    """It "succeeded" with no step: the code model it started from, saved as a next-edit model."""
    from models.next_edit.examples import Example, make_edit, write_jsonl

    original = "def area(width, height):\n    return width * height\n"
    first = make_edit(original, 0, 1, "def area(w, height):\n")
    current = "def area(w, height):\n    return width * height\n"
    example = Example("a.py", "pkg", original, [first], current, make_edit(current, 1, 2, "    return w * height\n"))
    (tmp_path / "data").mkdir()
    write_jsonl(tmp_path / "data" / "real_train.jsonl", [example] * 4)
    code, out, err = run_main(["train", "next-edit", "--data", str(tmp_path / "data"), "--init", str(tiny_lm_dir),
                               "--out", str(tmp_path / "ne"), "--minutes", "1e-9", "--threads", "1", "--no-export"],
                              capsys)
    assert code == 2 and "Traceback" not in err, err
    assert err.splitlines()[-1].startswith("tact train next-edit: error: no training step fitted in --minutes 1e-09")
    assert not (tmp_path / "ne").exists()


def test_next_edit_data_gives_up_when_no_release_downloads_and_keeps_what_it_had(tmp_path, monkeypatch):
    """Without network it tried every pair (about a hundred `pip download`s), wrote empty real_*.jsonl files over the
    examples already there, and ended with success."""
    import models.next_edit.real_changes as real_changes
    from models.train_lm import TrainingInputError

    calls = []
    monkeypatch.setattr(real_changes, "download_sdist", lambda name, version, dest: calls.append(name))
    (tmp_path / "real_train.jsonl").write_text("kept\n")
    pairs = [(f"pkg{i}", "1.0", "1.1") for i in range(20)]
    with pytest.raises(TrainingInputError, match="no release could be downloaded .3 of 20 pairs tried"):
        real_changes.build_real(tmp_path, pairs, log=lambda msg: None)
    assert len(calls) == 2 * real_changes.FAILURES_BEFORE_GIVING_UP
    assert (tmp_path / "real_train.jsonl").read_text() == "kept\n" and not (tmp_path / "real_heldout.jsonl").exists()
