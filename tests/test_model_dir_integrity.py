"""A model directory whose weights or config.json changed after `tact export` (flipped bytes of the right size, an
edited rope_theta) decoded as another model without a word: graphs.json records what the graphs were built from,
and loading refuses anything else, naming the file and the fix."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from lsp_server.services.completion import CompletionService
from models.export import export_model_dir
from models.model_dir import (EXIT_HEADS, EXPORT_SOURCES, EXPORTED_FROM, RESTORE, ModelDirError, content_digest,
                              load_tensors, read_safetensors_index, store_half)
from models.runtime import DecodeOptions, EarlyExitRuntime

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def model(tiny_lm_dir, tmp_path) -> Path:
    out = tmp_path / "model"
    shutil.copytree(tiny_lm_dir, out)
    return out


def flip_a_byte_inside(path: Path, tensor: str) -> None:
    """One bit of one weight of ``tensor`` turned over in place: the file keeps its size and header."""
    entry = read_safetensors_index(path)[tensor]
    data = bytearray(path.read_bytes())
    data[entry.offset + entry.length // 2] ^= 0x40
    path.write_bytes(bytes(data))


def decode(model: Path) -> list[int]:
    runtime = EarlyExitRuntime(model)
    prompt = runtime.fim_prompt("def read(path):\n    with open(path) as f:\n        ", "", reserve=8)
    return runtime.generate(prompt, DecodeOptions(policy="full", stop_threshold=1.01, max_new_tokens=8)).token_ids


def test_the_export_records_a_digest_of_each_file_it_builds_the_graphs_from(model):
    index = json.loads((model / "graphs.json").read_text())
    assert index[EXPORTED_FROM] == {name: content_digest(model / name) for name in EXPORT_SOURCES}


@pytest.mark.parametrize("name, tensor", [
    ("model.safetensors", "model.layers.1.mlp.down_proj.weight"),
    ("model.safetensors", "model.embed_tokens.weight"),
    (EXIT_HEADS, "controller.1.0.weight"),
])
def test_flipped_bytes_inside_the_weights_are_refused_naming_the_file_and_the_fix(model, name, tensor):
    flip_a_byte_inside(model / name, tensor)
    with pytest.raises(ModelDirError) as refused:
        EarlyExitRuntime(model)
    message = str(refused.value)
    assert message.startswith(f"{model / name} is not what `tact export` built the graphs from")
    assert "damaged" in message and RESTORE in message and f"`tact export {model}`" in message


def test_the_server_with_damaged_weights_is_degraded_and_says_which_file(model):
    flip_a_byte_inside(model / "model.safetensors", "model.layers.0.self_attn.q_proj.weight")
    service = CompletionService()
    status = service.load(str(model))
    assert not status.ready and str(model / "model.safetensors") in status.reason


@pytest.mark.parametrize("change", [
    {"rope_theta": 500000.0},
    {"rms_norm_eps": 1e-3},
])
def test_a_config_json_edited_after_export_is_refused(model, change):
    config = json.loads((model / "config.json").read_text())
    config.update(change)
    (model / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelDirError, match=r"config\.json has changed since `tact export`.*restore the config\.json "
                                            r"the model was trained with, or re-run `tact export"):
        EarlyExitRuntime(model)


def test_a_config_json_written_again_with_other_spacing_and_line_endings_still_loads(model):
    """A checkout that converts line endings, or an editor that re-indents, changes no value: nothing to refuse."""
    before = decode(model)
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_bytes(json.dumps(config, indent=4, sort_keys=True).replace("\n", "\r\n").encode())
    assert decode(model) == before


def test_the_refusal_goes_once_the_model_is_exported_again(model):
    """Weights replaced on purpose (another model of the same shape) serve once exported, and serve themselves."""
    path = model / "model.safetensors"
    tensors = load_tensors(path)
    from safetensors.numpy import save_file

    save_file({k: (v * 0.5 if ".mlp." in k else v) for k, v in tensors.items()}, str(path), metadata={"format": "pt"})
    with pytest.raises(ModelDirError, match="replaced since"):
        EarlyExitRuntime(model)
    export_model_dir(model)
    runtime = EarlyExitRuntime(model)
    assert runtime is not None


def test_graphs_exported_before_digests_were_recorded_still_load(model):
    before = decode(model)
    index = json.loads((model / "graphs.json").read_text())
    del index[EXPORTED_FROM]
    (model / "graphs.json").write_text(json.dumps(index))
    assert decode(model) == before


def test_storing_fp16_weights_again_keeps_the_record_of_graphs_that_read_a_widened_copy(model):
    """`tact export --half` on a model already in fp16 (here written by another tool, without metadata) rewrites
    model.safetensors with the same values and other bytes."""
    from safetensors.numpy import save_file

    path = model / "model.safetensors"
    save_file({k: v.astype(np.float16) for k, v in load_tensors(path).items()}, str(path))
    export_model_dir(model)  # the graphs read the widened fp32 copy
    before, digest = decode(model), content_digest(path)
    assert store_half(model) == 0.0
    assert content_digest(path) != digest and decode(model) == before


@pytest.mark.parametrize("shipped", ["models/default", "models/next_edit/default"])
def test_the_shipped_models_record_what_their_graphs_were_built_from(shipped):
    index = json.loads((REPO / shipped / "graphs.json").read_text())
    recorded = index[EXPORTED_FROM]
    assert recorded == {name: content_digest(REPO / shipped / name) for name in EXPORT_SOURCES}
    assert np.unique(list(recorded.values())).size == len(EXPORT_SOURCES)
