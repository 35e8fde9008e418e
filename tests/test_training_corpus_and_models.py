"""Building the corpus and the models, a tenth look: each test failed on the code before."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from lsp_server.cli import main
from models.corpus import CorpusError, build_corpus, iter_split, read_manifest, split_of
from models.model_dir import ModelDirError
from models.ngram_drafts import window_starts
from tests.test_corpus_build import sides_by_name, write_package


def test_windows_move_on_at_a_trained_context_of_64_or_less():
    """The windows repeated 64 tokens of the one before: at a context of 64 they never moved on, and the list of
    them grew until memory ran out."""
    for window in (16, 32, 64, 80, 512):
        starts = window_starts(1000, window)
        assert starts[0] == 0 and starts[-1] + window == 1000
        assert all(b > a for a, b in zip(starts, starts[1:]))
        assert all(b <= a + window for a, b in zip(starts, starts[1:]))  # no token left out between two windows
    assert len(window_starts(1000, 64)) <= 31  # 32 tokens on each time
    assert window_starts(10, 64) == [0]


def test_a_src_layout_and_its_build_copy_stay_on_one_side(tmp_path, monkeypatch):
    """src/pkg and build/lib/pkg were the packages "src" and "build": deduplication kept each file under whichever it
    met first, so one package's files went to both sides of the split."""
    name = next(n for n in (f"lib{i}" for i in range(500)) if split_of("user:proj:src") != split_of(f"user:proj:{n}"))
    project = tmp_path / "proj"
    write_package(project / "src", name, "1.0", modules=20)
    write_package(project / "build" / "lib", name, "1.0", modules=20)
    monkeypatch.setattr("models.corpus.default_roots", lambda: [])
    manifest = build_corpus(tmp_path / "corpus", [project], max_mb=1)
    assert sum(s["files"] for s in manifest["splits"].values()) == 21 and manifest["skipped"]["duplicate"] == 0
    sides = sides_by_name(tmp_path / "corpus")
    assert set(sides) == {name} and sides[name] == {split_of(f"user:proj:{name}")}


def test_a_package_named_build_is_still_read(tmp_path, monkeypatch):
    write_package(tmp_path / "site", "build", "1.0", modules=3)
    monkeypatch.setattr("models.corpus.default_roots", lambda: [("site", tmp_path / "site")])
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "a.py").write_text("x = 1\n")
    manifest = build_corpus(tmp_path / "corpus", [tmp_path / "code"], max_mb=1)
    assert sum(s["files"] for s in manifest["splits"].values()) == 5


def test_an_interrupted_build_leaves_no_manifest_of_an_older_one(tmp_path, monkeypatch):
    write_package(tmp_path / "code", "pkg", "1.0", modules=4)
    monkeypatch.setattr("models.corpus.default_roots", lambda: [])
    build_corpus(tmp_path / "corpus", [tmp_path / "code"], max_mb=1)
    assert read_manifest(tmp_path / "corpus")["splits"]

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("models.corpus.read_code", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build_corpus(tmp_path / "corpus", [tmp_path / "code"], max_mb=1)
    assert not (tmp_path / "corpus" / "manifest.json").exists()


def test_a_damaged_split_or_manifest_is_named_with_its_line(tmp_path, capsys):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "calib.jsonl").write_text(json.dumps({"text": "x = 1\n"}) + '\n{"text": "cut sh\n')
    with pytest.raises(CorpusError, match=r"calib\.jsonl:2 is not a corpus record.*tact train corpus"):
        list(iter_split(corpus, "calib"))
    (corpus / "manifest.json").write_text("{")
    with pytest.raises(CorpusError, match="not a corpus manifest"):
        read_manifest(corpus)
    (corpus / "manifest.json").write_text("{}")
    with pytest.raises(CorpusError, match="names no train, calib, heldout splits"):
        read_manifest(corpus)


def test_training_reads_the_calibration_split_before_the_steps(tmp_path, capsys):
    """The calibration split was first read after the whole training budget: a damaged line lost the run."""
    pytest.importorskip("torch")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    record = json.dumps({"package": "p", "path": "a.py", "text": "def f(x):\n    return x\n" * 50})
    (corpus / "train.jsonl").write_text(record + "\n")
    (corpus / "calib.jsonl").write_text(record + "\n" + record[:40] + "\n")
    (corpus / "manifest.json").write_text(json.dumps({"splits": {s: {"files": 1, "packages": ["p"]}
                                                                 for s in ("train", "calib", "heldout")}}))
    assert main(["train", "lm", "--corpus", str(corpus), "--out", str(tmp_path / "m"), "--size", "tiny",
                 "--minutes", "5", "--no-export"]) == 2
    captured = capsys.readouterr()
    assert "calib.jsonl:2 is not a corpus record" in captured.err and "step" not in captured.out


def test_export_reads_a_null_epsilon_as_the_default(tiny_lm_dir, tmp_path):
    """Export read null as NaN: graphs whose every state was NaN, a model that loaded and suggested nothing."""
    pytest.importorskip("onnx")
    from models.export import export_model_dir
    from models.runtime import DecodeOptions, EarlyExitRuntime

    for name, eps in (("given", 1e-6), ("null", None)):
        d = tmp_path / name
        shutil.copytree(tiny_lm_dir, d)
        cfg = json.loads((d / "config.json").read_text())
        cfg["rms_norm_eps"] = eps
        (d / "config.json").write_text(json.dumps(cfg))
        export_model_dir(d)
    texts = []
    for name in ("given", "null"):
        rt = EarlyExitRuntime(tmp_path / name, threads=1)
        res = rt.generate(rt.tokenizer.encode("def main():\n    "), DecodeOptions(max_new_tokens=6, stop_threshold=2.0))
        assert all(np.isfinite(res.logprobs)), name
        texts.append(res.token_ids)
    assert texts[0] == texts[1] and texts[0]


def test_a_config_without_epsilon_trains_with_the_serving_default():
    pytest.importorskip("torch")
    from models.architecture import ModelConfig

    assert ModelConfig.from_hf({"hidden_size": 64}).rms_norm_eps == 1e-6
    assert ModelConfig.from_hf({"hidden_size": 64, "rms_norm_eps": 1e-5}).rms_norm_eps == 1e-5


@pytest.mark.parametrize("damage", ["exit_heads", "tokenizer", "config"])
def test_training_commands_name_a_damaged_model_directory(tiny_lm_dir, tmp_path, capsys, damage):
    pytest.importorskip("torch")
    from tests.conftest import write_calib_corpus

    d = tmp_path / "m"
    shutil.copytree(tiny_lm_dir, d)
    if damage == "exit_heads":
        data = (d / "exit_heads.safetensors").read_bytes()
        (d / "exit_heads.safetensors").write_bytes(data[:len(data) // 2])
    elif damage == "tokenizer":
        (d / "tokenizer.json").write_text('{"version": 1}')
    else:
        cfg = json.loads((d / "config.json").read_text())
        cfg["intermediate_size"] += 8
        (d / "config.json").write_text(json.dumps(cfg))
    assert main(["train", "controller", "--model", str(d), "--corpus",
                 str(write_calib_corpus(tmp_path / "corpus")), "--batches", "1"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and str(d) in err and ("restore it" in err or "re-download" in err)


def test_the_controller_fit_is_the_same_for_one_seed(tiny_lm_dir, tmp_path):
    pytest.importorskip("torch")
    from models.model_dir import EXIT_HEADS, load_tensors
    from models.train_lm import train_controller
    from tests.conftest import write_calib_corpus

    corpus = write_calib_corpus(tmp_path / "corpus")
    fitted = []
    for run in (0, 1):
        d = tmp_path / f"m{run}"
        shutil.copytree(tiny_lm_dir, d)
        (d / "graphs.json").unlink()  # no export needed
        train_controller(d, corpus, batches=2, seed=1, log=lambda m: None)
        fitted.append(load_tensors(d / EXIT_HEADS))
    for name, tensor in fitted[0].items():
        np.testing.assert_array_equal(fitted[1][name], tensor, err_msg=name)


@pytest.mark.parametrize("only", ["--stop-only", "--harm-only", "--kv-fill-only"])
def test_an_exit_stride_for_a_refit_that_reads_no_exits_is_refused(tiny_lm_dir, tmp_path, capsys, only):
    pytest.importorskip("torch")
    from tests.conftest import write_calib_corpus

    d = tmp_path / "m"
    shutil.copytree(tiny_lm_dir, d)
    before = (d / "exit_heads.safetensors").read_bytes()
    assert main(["train", "controller", "--model", str(d), "--corpus", str(write_calib_corpus(tmp_path / "corpus")),
                 "--batches", "1", "--exit-stride", "1", only]) == 2
    assert "--exit-stride" in capsys.readouterr().err
    assert (d / "exit_heads.safetensors").read_bytes() == before


def test_a_resumed_model_without_a_record_is_recorded_by_its_shape():
    pytest.importorskip("torch")
    from models.architecture import ModelConfig
    from models.train_lm import SIZES, size_of

    hidden, layers, heads, inter = SIZES["tiny"]
    assert size_of(ModelConfig(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                               intermediate_size=inter)) == "tiny"
    assert size_of(ModelConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=4)) == "custom"


def test_a_tokenizer_without_a_pad_token_is_refused_before_training(tiny_lm_dir):
    pytest.importorskip("torch")
    from tokenizers import Tokenizer, models

    from models.tokenizer import TokenizerInfo
    from models.train_lm import ExampleSampler, TrainingInputError

    with pytest.raises(TrainingInputError, match="pad"):
        ExampleSampler(["x = 1\n"], TokenizerInfo(Tokenizer(models.BPE())), 64, 0)


def test_half_precision_kv_fill_maps_are_the_model_directorys_error(tiny_lm_dir, tmp_path):
    pytest.importorskip("onnx")
    from safetensors.numpy import load_file, save_file

    from models.export import export_model_dir

    d = tmp_path / "m"
    shutil.copytree(tiny_lm_dir, d)
    tensors = load_file(str(d / "exit_heads.safetensors"))
    tensors.update({"kv_fill_maps.0.weight": np.zeros((64, 64), np.float16),  # (D, D): a map of exit 0's state
                    "kv_fill_maps.0.bias": np.zeros(64, np.float16)})
    save_file(tensors, str(d / "exit_heads.safetensors"))
    with pytest.raises(ModelDirError, match="kv-fill-only"):
        export_model_dir(d)


@pytest.mark.parametrize("command", [
    ["train", "lm", "--corpus", "nodata", "--minutes", "0.01"],
    ["train", "next-edit", "--data", "nodata", "--init", "nomodel", "--minutes", "0.01"],
])
def test_a_run_that_would_export_without_onnx_is_refused_before_it_trains(command, tmp_path, monkeypatch, capsys):
    """On a training machine (no onnx) the run trained for its minutes, saved over its --out, and only then failed."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnx" else real(name, *a))
    out = tmp_path / "out"
    assert main([*command, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "needs onnx" in err and "nodata" not in err and not out.exists()
