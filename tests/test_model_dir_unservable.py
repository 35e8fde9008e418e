"""A damaged or unservable model directory is refused with a message that names the file and the fix, and exit
heads that cannot serve this model's width are refused at load, not at the first decode."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from models.model_dir import (EXIT_HEADS, FLAG_ADVICE, SETTING_ADVICE, ModelDirError, check_model_dir,
                              check_served_model, header_digest, load_tensors)
from models.runtime import DecodeOptions, EarlyExitRuntime


@pytest.fixture
def model(tiny_lm_dir, tmp_path) -> Path:
    """A copy of the tiny model to damage."""
    out = tmp_path / "model"
    shutil.copytree(tiny_lm_dir, out)
    return out


def save_exit_heads(model: Path, tensors: dict) -> None:
    """Write exit_heads.safetensors as a re-export would see it (graphs.json's digest of its maps follows it)."""
    from safetensors.numpy import save_file

    path = model / EXIT_HEADS
    path.unlink()
    save_file(tensors, str(path))
    index = json.loads((model / "graphs.json").read_text())
    if index.get("kv_fill_maps"):
        index["kv_fill_maps"] = header_digest(path)
    (model / "graphs.json").write_text(json.dumps(index))


def test_an_unsupported_architecture_is_refused_with_the_advice_to_name_another_model(model):
    """The message named the directory and the architectures but no fix."""
    config = json.loads((model / "config.json").read_text())
    config["model_type"] = "gpt2"
    (model / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelDirError) as raised:
        check_model_dir(model)
    assert str(raised.value).startswith(f"{model}: model_type 'gpt2' is not supported")
    assert str(raised.value).endswith(SETTING_ADVICE)
    with pytest.raises(ModelDirError) as raised:
        check_served_model(model)  # a command names its own flag
    assert str(raised.value).endswith(FLAG_ADVICE)


def test_an_unreadable_safetensors_file_names_the_file_and_the_fix(model):
    """A directory where exit_heads.safetensors belongs failed with 'cannot read safetensors (Is a directory)' and
    nothing to do about it."""
    (model / EXIT_HEADS).unlink()
    (model / EXIT_HEADS).mkdir()
    with pytest.raises(ModelDirError) as raised:
        EarlyExitRuntime(model)
    message = str(raised.value)
    assert message.startswith(f"{model / EXIT_HEADS}: cannot read safetensors")
    assert "re-export or re-download the model" in message


def test_a_tensor_of_an_unsupported_dtype_names_the_file_and_the_fix(tmp_path):
    """The message named the tensor and its dtype but no fix."""
    header = json.dumps({"t": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]}}).encode()
    path = tmp_path / "odd.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + bytes(4))
    with pytest.raises(ModelDirError) as raised:
        load_tensors(path)
    assert str(raised.value).startswith(f"{path}: tensor t has unsupported dtype U8")
    assert str(raised.value).endswith("re-export or re-download the model")


@pytest.mark.parametrize("name", ["controller.1.0.weight", "exit_norms.2.weight"])
def test_exit_heads_of_another_width_are_refused_at_load(model, name):
    """Exit heads of a model with the same layer count but another hidden size loaded, then every decode that read
    them (P(stop) on each token, the early exit heads) failed with numpy's or onnxruntime's words."""
    tensors = load_tensors(model / EXIT_HEADS)
    width = EarlyExitRuntime(model).hidden_size
    wrong = tensors[name]
    tensors[name] = np.zeros(wrong.shape[:-1] + (width * 2,), np.float32) if wrong.ndim > 1 else \
        np.ones(width * 2, np.float32)
    save_exit_heads(model, tensors)
    with pytest.raises(ModelDirError) as raised:
        EarlyExitRuntime(model)
    message = str(raised.value)
    assert message.startswith(f"{model / EXIT_HEADS} holds {name} of shape")
    assert f"hidden size {width}" in message and "tact train controller" in message


def test_the_models_own_exit_heads_still_load_and_decode(model):
    runtime = EarlyExitRuntime(model)
    ids = runtime.tokenizer.encode("def read(path):\n    return ")
    tokens = {}
    for policy in ("full", "dynamic", "speculative"):
        runtime.reset()
        tokens[policy] = runtime.generate(ids, DecodeOptions(policy=policy, max_new_tokens=4, stop_threshold=1.01)).token_ids
        assert 1 <= len(tokens[policy]) <= 4, policy
    assert tokens["speculative"] == tokens["full"]  # lossless with the heads read from the file


def test_a_tensor_shape_whose_size_overflows_64_bits_is_a_corrupt_header(tmp_path):
    """The size check multiplied the shape in numpy's int64, which wrapped [2**62, 4] to 0 bytes: the header passed
    and loading failed later with a bare ValueError."""
    header = json.dumps({"w": {"dtype": "F32", "shape": [2**62, 4], "data_offsets": [0, 0]}}).encode()
    path = tmp_path / "big.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header)
    with pytest.raises(ModelDirError, match="corrupt safetensors header"):
        load_tensors(path)
