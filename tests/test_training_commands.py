"""The training commands end to end at toy scale: `tact train corpus` -> `tact train lm` -> `--resume` ->
`tact export --half` -> served by the runtime, and `tact train next-edit` from a trained model. The budgets
are seconds: what is checked is that each step hands the next a model directory it can use, and that the
training record says what happened."""

from __future__ import annotations

import json

import pytest

from lsp_server.cli import main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    assert main(["train", "corpus", "--out", str(out), "--max-mb", "1.5"]) == 0
    return out


@pytest.fixture(scope="module")
def trained_lm(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("lm")
    assert main(["train", "lm", "--size", "tiny", "--minutes", "0.1", "--threads", "2", "--ngram-model-tokens", "20000",
                 "--corpus", str(corpus), "--out", str(out)]) == 0
    return out


def _record(model_dir) -> dict:
    return json.loads((model_dir / "tact.json").read_text())


def test_train_lm_writes_a_served_model_with_its_record(trained_lm):
    from models.model_dir import GRAPHS_INDEX
    from models.runtime import DecodeOptions, EarlyExitRuntime

    rec = _record(trained_lm)
    assert rec["size"] == "tiny" and rec["training"]["steps"] > 0 and rec["training"]["tokens"] > 0
    assert len(rec["training"]["final_cross_entropy_per_exit"]) == 4
    assert len(rec["controller"]["agrees_with_final"]) == 4 and rec["controller"]["agrees_with_final"][-1] == 1.0
    assert (trained_lm / GRAPHS_INDEX).exists()
    # the n-gram table that drafts for speculative decoding, from the corpus's training split: the trained model's
    # own continuations of it, and the text's
    assert rec["ngram_drafts"]["tokens"] > 0 and rec["ngram_drafts"]["split"] == "train"
    assert 0 < rec["ngram_drafts"]["model_continuations"]["tokens"] <= rec["ngram_drafts"]["tokens"]
    rt = EarlyExitRuntime(trained_lm, threads=1)
    assert rt.ngram_drafts is not None and rt.ngram_drafts.entries == sum(rec["ngram_drafts"]["entries"].values())
    res = rt.generate(rt.tokenizer.encode("def main():\n    "),
                      DecodeOptions(policy="full", max_new_tokens=4, single_line=False))
    assert len(res.token_ids) == 4 or res.stop_reason == "eos"
    assert len(res.layers) == len(res.token_ids) and set(res.layers) <= {4}


def test_resume_keeps_the_model_size_and_adds_up_the_record_without_export(trained_lm, corpus, tmp_path, capsys):
    from models.model_dir import GRAPHS_INDEX, read_safetensors_index

    first = _record(trained_lm)
    out = tmp_path / "resumed"
    # --size is ignored on resume: the resumed model's own size goes into the record
    assert main(["train", "lm", "--resume", str(trained_lm), "--size", "medium", "--minutes", "0.05", "--threads", "2",
                 "--ngram-model-tokens", "0", "--corpus", str(corpus), "--out", str(out), "--no-export"]) == 0
    rec = _record(out)
    assert rec["size"] == "tiny"
    assert rec["hyperparameters"]["seq_len"] == first["hyperparameters"]["seq_len"] == 512  # the resumed model's
    assert rec["training"]["steps"] > first["training"]["steps"]
    assert rec["training"]["earlier_runs"][0]["steps"] == first["training"]["steps"]
    # the earlier run keeps its own command; the continued run reads a stream of its own (seeded by --seed alone it
    # read the examples the first run had read); the minutes add up
    assert rec["training"]["earlier_runs"][0]["command"] == first["command"]
    assert rec["hyperparameters"]["stream_seed"] == first["training"]["steps"] != first["hyperparameters"]["stream_seed"]
    assert rec["training"]["train_minutes"] >= first["training"]["train_minutes"]
    assert not (out / GRAPHS_INDEX).exists()
    assert f"tact export {out}" in capsys.readouterr().err

    # A training machine without onnx brings weights back in fp16 and exports nothing...
    assert main(["export", str(out), "--half", "--no-graphs"]) == 0
    entries = read_safetensors_index(out / "model.safetensors")
    assert entries and {e.dtype for e in entries.values()} == {"F16"}
    assert not (out / GRAPHS_INDEX).exists()
    # ...and the export here makes it servable.
    assert main(["export", str(out)]) == 0
    from models.runtime import EarlyExitRuntime

    assert EarlyExitRuntime(out, threads=1).n_layers == 4


def test_train_next_edit_from_a_trained_model(trained_lm, corpus, tmp_path):
    from models.model_dir import GRAPHS_INDEX
    from models.next_edit.examples import read_jsonl

    data = tmp_path / "next_edit"
    assert main(["train", "next-edit-data", "--synthetic", "--corpus", str(corpus), "--out", str(data),
                 "--limit", "40"]) == 0
    assert list(read_jsonl(data / "synthetic_train.jsonl", 1))
    # a programmer's own edits from telemetry (`--telemetry`) are the only real changes here
    from models.next_edit.examples import Edit, write_jsonl
    from models.next_edit.telemetry_examples import examples_from_stream

    opened = "def area(width, height):\n    check(width)\n    return width * height\n"
    renames = [Edit(0, 1, "def area(width, height):\n", "def area(w, height):\n"),
               Edit(2, 3, "    return width * height\n", "    return w * height\n")]
    assert write_jsonl(data / "telemetry_train.jsonl", examples_from_stream("a.py", "s1", opened, renames)) == 1
    out = tmp_path / "next_edit_model"
    assert main(["train", "next-edit", "--init", str(trained_lm), "--data", str(data), "--out", str(out),
                 "--minutes", "0.05", "--threads", "2", "--prompt-format", "next_block", "--no-export"]) == 0
    rec = _record(out)
    assert rec["task"] == "next_edit" and rec["prompt_format"] == "next_block"
    assert rec["training"]["steps"] > 0 and rec["data"]["synthetic_examples"] > 0
    assert rec["data"]["real_examples"] > 0  # rows of the telemetry example
    assert rec["init"]["training"]["steps"] == _record(trained_lm)["training"]["steps"]
    assert not (out / GRAPHS_INDEX).exists()


def test_train_lm_seq_len_sets_the_serving_budget_and_is_refused_past_the_positions(trained_lm, corpus, tmp_path,
                                                                                     capsys):
    from models.runtime import EarlyExitRuntime

    positions = json.loads((trained_lm / "config.json").read_text())["max_position_embeddings"]
    assert main(["train", "lm", "--resume", str(trained_lm), "--seq-len", str(positions + 1), "--minutes", "0.05",
                 "--ngram-model-tokens", "0",
                 "--corpus", str(corpus), "--out", str(tmp_path / "too_long"), "--no-export"]) == 2
    err = capsys.readouterr().err
    assert f"--seq-len {positions + 1}" in err and str(positions) in err and "Traceback" not in err
    assert not (tmp_path / "too_long").exists()

    out = tmp_path / "short"
    assert main(["train", "lm", "--size", "tiny", "--seq-len", "128", "--minutes", "0.05", "--threads", "2",
                 "--ngram-model-tokens", "0",
                 "--corpus", str(corpus), "--out", str(out)]) == 0
    assert _record(out)["hyperparameters"]["seq_len"] == 128
    assert json.loads((out / "config.json").read_text())["max_position_embeddings"] == 256
    assert EarlyExitRuntime(out, threads=1).context_tokens == 128  # serving keeps prompts within the window
