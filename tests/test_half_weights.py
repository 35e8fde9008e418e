"""fp16 weights on disk: `tact export --half`, and the fp32 copy the graphs read, rebuilt when missing or stale."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

import models.model_dir as model_dir_module
from models.model_dir import (WIDENED_WEIGHTS, ModelDirError, content_digest, graphs_dir, load_tensors,
                              read_safetensors_index)
from models.runtime import DecodeOptions, EarlyExitRuntime

PROMPT = "def wrap(text, width=70):\n    lines = []\n    for word in text.split():\n"


def _index(model_dir):
    return json.loads((model_dir / "graphs.json").read_text())


def _logits_and_tokens(model_dir):
    rt = EarlyExitRuntime(model_dir, threads=1)
    ids = rt.tokenizer.encode(PROMPT)
    h = rt.forward(ids, 0)
    logits = rt.head(rt.n_layers - 1, h[-1:])
    rt.reset()
    res = rt.generate(ids, DecodeOptions(policy="full", max_new_tokens=12, single_line=False))
    return logits, res.token_ids


@pytest.fixture()
def half_dir(tiny_lm_dir, tmp_path):
    """The tiny model with its weights first rounded to fp16 values (still fp32 on disk): the reference."""
    from safetensors.numpy import save_file

    from models.export import export_model_dir
    from models.model_dir import store_half

    ref = tmp_path / "ref"
    shutil.copytree(tiny_lm_dir, ref)
    rounded = {k: v.astype(np.float16).astype(np.float32) for k, v in load_tensors(ref / "model.safetensors").items()}
    save_file(rounded, str(ref / "model.safetensors"), metadata={"format": "pt"})
    export_model_dir(ref)
    half = tmp_path / "half"
    shutil.copytree(ref, half)
    assert store_half(half) == 0.0  # the weights were fp16 values already: nothing changes
    export_model_dir(half)
    return ref, half


def test_half_export_stores_fp16_and_serves_the_same_model(half_dir):
    ref, half = half_dir
    assert {e.dtype for e in read_safetensors_index(half / "model.safetensors").values()} == {"F16"}
    assert (half / "model.safetensors").stat().st_size < 0.6 * (ref / "model.safetensors").stat().st_size
    assert json.loads((half / "graphs.json").read_text())["weights"] == WIDENED_WEIGHTS
    ref_logits, ref_tokens = _logits_and_tokens(ref)
    half_logits, half_tokens = _logits_and_tokens(half)
    assert np.allclose(ref_logits, half_logits, atol=1e-5)
    assert half_tokens == ref_tokens


def test_the_fp32_copy_is_rebuilt_when_missing_or_stale(half_dir):
    ref, half = half_dir
    _, want = _logits_and_tokens(ref)
    copy = half / WIDENED_WEIGHTS
    copy.unlink()  # a fresh clone: the copy is not shipped
    _, got = _logits_and_tokens(half)
    assert copy.is_file() and got == want
    before = copy.stat().st_mtime_ns
    assert graphs_dir(half, _index(half)) == half and copy.stat().st_mtime_ns == before  # up to date: left alone
    copy.write_bytes(b"\0" * 16)  # truncated
    assert graphs_dir(half, _index(half)) == half and copy.stat().st_size > 16
    stat = copy.stat()
    os.utime(half / "model.safetensors", (stat.st_mtime + 10, stat.st_mtime + 10))  # weights replaced after it
    graphs_dir(half, _index(half))
    assert copy.stat().st_mtime_ns != stat.st_mtime_ns  # made again
    assert _logits_and_tokens(half)[1] == want


def test_weights_copied_in_with_their_older_dates_are_not_served_the_copy_of_the_ones_they_replaced(half_dir, tmp_path):
    """A model of the same shape copied over the weights with its dates kept (`cp -p`, `rsync -a`, `tar x`) is older
    than the fp32 copy of the weights it replaced: the copy was taken as current, and the graphs read the old model's
    layers beside the new model's embeddings (another suggestion, no error)."""
    from safetensors.numpy import save_file

    _, half = half_dir
    _logits_and_tokens(half)  # the fp32 copy of these weights, made
    other = tmp_path / "other.safetensors"  # another model of the same shape, fp16 as `tact export --half` stores it
    tensors = load_tensors(half / "model.safetensors")
    save_file({k: (v * 0.5).astype(v.dtype) if "layers." in k else v for k, v in tensors.items()}, str(other),
              metadata={"format": "pt"})
    old = (half / WIDENED_WEIGHTS).stat().st_mtime - 3600
    os.utime(other, (old, old))
    shutil.copy2(other, half / "model.safetensors")  # dates kept
    index = json.loads((half / "graphs.json").read_text())  # with the graphs.json its export wrote (same shape: same graphs)
    index["exported_from"]["model.safetensors"] = content_digest(other)
    (half / "graphs.json").write_text(json.dumps(index))
    assert (half / "model.safetensors").stat().st_mtime < (half / WIDENED_WEIGHTS).stat().st_mtime
    fresh = tmp_path / "fresh"  # the same model, its fp32 copy made from scratch
    shutil.copytree(half, fresh)
    (fresh / WIDENED_WEIGHTS).unlink()
    served, expected = _logits_and_tokens(half), _logits_and_tokens(fresh)
    assert np.allclose(served[0], expected[0], atol=1e-6) and served[1] == expected[1]


def test_a_read_only_model_directory_gets_its_copy_in_the_cache(half_dir, tmp_path, monkeypatch):
    ref, half = half_dir
    _, want = _logits_and_tokens(ref)
    (half / WIDENED_WEIGHTS).unlink()
    from tests.conftest import refusing_to_write_beside

    monkeypatch.setattr(model_dir_module, "write_widened_weights",
                        refusing_to_write_beside(model_dir_module.write_widened_weights))
    monkeypatch.setenv("TACT_CACHE_DIR", str(tmp_path / "cache"))
    where = graphs_dir(half, _index(half))
    assert where != half and str(where).startswith(str(tmp_path / "cache"))
    assert (where / WIDENED_WEIGHTS).is_file() and (where / "graphs.json").is_file()
    assert not (half / WIDENED_WEIGHTS).exists()
    assert _logits_and_tokens(half)[1] == want
    # Neither place writable: a clear error naming the file and the fix.
    monkeypatch.setenv("TACT_CACHE_DIR", str(tmp_path / "cache-file"))
    (tmp_path / "cache-file").write_text("not a directory")
    with pytest.raises(ModelDirError, match="TACT_CACHE_DIR"):
        graphs_dir(half, _index(half))


def test_fp32_checkpoints_need_no_copy(tiny_lm_dir):
    assert json.loads((tiny_lm_dir / "graphs.json").read_text())["weights"] == "model.safetensors"
    assert graphs_dir(tiny_lm_dir, _index(tiny_lm_dir)) == tiny_lm_dir
    assert not (tiny_lm_dir / WIDENED_WEIGHTS).exists()


def test_export_half_says_how_much_the_weights_moved(tiny_lm_dir, tmp_path, capsys):
    from lsp_server.cli import main

    d = tmp_path / "m"
    shutil.copytree(tiny_lm_dir, d)  # random fp32 weights: rounding them to fp16 moves them a little
    assert main(["export", str(d), "--half"]) == 0
    change = float(capsys.readouterr().out.strip().rsplit(" ", 1)[-1])
    assert 0 < change < 1e-2
    assert {e.dtype for e in read_safetensors_index(d / "model.safetensors").values()} == {"F16"}
