"""A damaged model directory, file by file: loading refuses it naming the file and the fix (the server stays up,
degraded, saying why), or it serves; never a model that loads and then fails, or decodes wrongly, in silence."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

import lsp_server.services.completion as completion
from lsp_server.config import Settings
from lsp_server.services.completion import CompletionService
from lsp_server.services.positions import LineIndex, Position
from lsp_server.services.scheduler import CancelToken
from models.export import export_model_dir
from models.model_dir import EXIT_HEADS, RESTORE, ModelDirError, header_digest, load_tensors
from models.runtime import DecodeOptions, EarlyExitRuntime

TEXT = "import os\n\n\ndef read(path):\n    with open(path) as f:\n        return f.read()\n"


@pytest.fixture
def model(tiny_lm_dir, tmp_path) -> Path:
    """A copy of the tiny model to damage."""
    out = tmp_path / "model"
    shutil.copytree(tiny_lm_dir, out)
    return out


def edit_json(path: Path, change) -> None:
    value = json.loads(path.read_text())
    change(value)
    path.write_text(json.dumps(value))


def complete(service: CompletionService, policy: str):
    settings = Settings(decoding_policy=policy, stop_threshold=1.01, max_new_tokens=8)
    ctx = service.context(LineIndex(TEXT), "python", Position(4, 8), settings)
    return service.complete(ctx, settings, CancelToken())


@pytest.mark.parametrize("key, value, says", [
    ("num_key_value_heads", "2", "num_key_value_heads '2', not a positive integer"),
    ("head_dim", "16", "head_dim '16', not a positive integer"),
    ("max_position_embeddings", "128", "max_position_embeddings '128', not a positive integer"),
    ("max_position_embeddings", -5, "max_position_embeddings -5, not a positive integer"),
    ("max_position_embeddings", 0, "max_position_embeddings 0, not a positive integer"),
    ("max_position_embeddings", 4, "max_position_embeddings 4, fewer than the 16 positions"),
    ("rms_norm_eps", "1e-5", "rms_norm_eps '1e-5', not a positive number"),
    ("rms_norm_eps", 0, "rms_norm_eps 0, not a positive number"),
    ("rope_theta", "10000", "rope_theta '10000', not a positive number"),
    ("rope_theta", 0, "rope_theta 0, not a positive number"),
])
def test_a_config_entry_of_the_wrong_type_or_range_is_refused_naming_the_file_and_the_fix(model, key, value, says):
    """Each loaded with numpy's words ("negative dimensions are not allowed"), or loaded and then failed every request
    (max_position_embeddings 0 or 4: attention; rms_norm_eps '1e-5': the controller, under the dynamic policy)."""
    edit_json(model / "config.json", lambda c: c.update({key: value}))
    status = CompletionService().load(str(model))
    assert not status.ready
    assert status.reason == f"{model / 'config.json'} has {says}" + status.reason.split(says, 1)[1]
    assert status.reason.endswith(f"; {RESTORE}")


def test_config_entries_left_null_take_their_defaults_and_every_policy_decodes(model):
    """A null rms_norm_eps loaded and failed every dynamic request; a null max_position_embeddings failed loading."""
    edit_json(model / "config.json", lambda c: c.update(rms_norm_eps=None, max_position_embeddings=None))
    export_model_dir(model)  # as the model would be exported with it (export read a null epsilon as NaN)
    service = CompletionService()
    assert service.load(str(model)).ready, service.status.reason
    for policy in ("full", "dynamic", "speculative"):
        assert complete(service, policy).result is not None


def test_a_kv_cache_too_large_for_memory_is_named_with_its_config_entry(model):
    edit_json(model / "config.json", lambda c: c.update(max_position_embeddings=10 ** 13))
    with pytest.raises(ModelDirError, match=r"config.json has max_position_embeddings 10000000000000: its KV cache "
                                            r"\(.* GiB\) does not fit in memory; restore it"):
        EarlyExitRuntime(model)


@pytest.mark.parametrize("change, says", [
    (lambda r: r.update(hyperparameters=[512]), "has hyperparameters [512], not an object"),
    (lambda r: r.update(hyperparameters={"seq_len": "64"}), "has hyperparameters.seq_len '64', not a positive integer"),
    (lambda r: r.update(name=5), "has name 5, not a string"),
])
def test_a_training_record_whose_served_entries_are_damaged_is_refused(model, change, says):
    """A list of hyperparameters failed loading with "'list' object has no attribute 'get'"; a seq_len in quotes was
    read as none, so prompts ran past the trained context in silence; a numeric name went out as the model's name."""
    edit_json(model / "tact.json", change)
    status = CompletionService().load(str(model))
    assert not status.ready
    assert status.reason == f"{model / 'tact.json'} {says}; {RESTORE}"


def test_a_tokenizer_with_more_tokens_than_the_model_embeds_is_refused(model):
    """Text holding one of its last tokens failed every request that read it (an index past the embeddings)."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model / "tokenizer.json"))
    tok.add_tokens(["zzqmarker"])
    tok.save(str(model / "tokenizer.json"))
    status = CompletionService().load(str(model))
    assert not status.ready
    assert status.reason.startswith(f"{model / 'tokenizer.json'} has {tok.get_vocab_size()} tokens, "
                                    f"{model / 'model.safetensors'} embeds {tok.get_vocab_size() - 1}")


def rewrite_exit_heads(model: Path, keep) -> None:
    from safetensors.numpy import save_file

    path = model / EXIT_HEADS
    tensors = {k: v for k, v in load_tensors(path).items() if keep(k)}
    path.unlink()
    save_file(tensors, str(path))
    edit_json(model / "graphs.json", lambda g: g.pop("kv_fill_maps", None))  # as exported from this file


@pytest.mark.parametrize("keep, says", [
    (lambda k: not k.startswith("controller.3."), "holds a controller for layers 0 to 2, not for 4"),
    (lambda k: not k.startswith("exit_norms.2."), "holds exit norms for layers 0 to 1, not for the first 3"),
    (lambda k: k != "controller.1.0.bias", "lacks controller.1.0.bias"),
])
def test_exit_heads_of_another_layer_count_are_refused(model, keep, says):
    """Read as no controller, another model's exit heads loaded and decoded without Stop or early exits, silently."""
    assert EarlyExitRuntime(model).controller.trained  # the tiny model's own file
    rewrite_exit_heads(model, keep)
    status = CompletionService().load(str(model))
    assert not status.ready
    assert status.reason.startswith(f"{model / EXIT_HEADS} {says}, {model / 'config.json'} has num_hidden_layers 4")


def test_a_calibration_with_a_row_per_layer_of_another_model_is_refused(model):
    from safetensors.numpy import save_file

    path = model / EXIT_HEADS
    tensors = load_tensors(path)
    tensors["stop_calibration"] = np.tile(np.array([0.0, 1.0, 0.0], np.float32), (8, 1))
    path.unlink()
    save_file(tensors, str(path))
    edit_json(model / "graphs.json", lambda g: g.update(kv_fill_maps=header_digest(path)))  # as re-exported
    with pytest.raises(ModelDirError, match=r"holds stop_calibration of shape \(8, 3\), not \(4, 3\)"):
        EarlyExitRuntime(model)


@pytest.mark.parametrize("target, source, kind", [
    ("exit_head.onnx", "decoder_layer_0.onnx", "an exit head graph (no norm_weight input)"),
    ("decoder_layer_2.onnx", "exit_head.onnx", "a decoder layer graph (no cos input)"),
])
def test_a_graph_of_another_kind_in_place_is_refused_at_load(model, target, source, kind):
    """An exit head replaced by a layer's graph loaded, then every request failed with onnxruntime's "Required inputs
    (['past_k', ...]) are missing"."""
    (model / target).write_bytes((model / source).read_bytes())
    status = CompletionService().load(str(model))
    assert not status.ready
    assert status.reason == f"{model / target} is not {kind}; re-run `tact export {model}`"


@pytest.mark.parametrize("target, source", [
    ("decoder_layer_2.onnx", "decoder_layer_1.onnx"),
    ("decoder_layer_1.int8.onnx", "decoder_layer_0.int8.onnx"),
])
def test_a_layers_graph_copied_over_anothers_is_refused_at_load(model, target, source):
    """A graph of the right kind in the wrong place passed the load checks: one layer's graph over the next decoded
    other text under every policy, without a word."""
    (model / target).write_bytes((model / source).read_bytes())
    status = CompletionService().load(str(model))
    if ".int8" in target:  # the 8-bit graphs load when a request asks for 8-bit weights
        assert status.ready
        with pytest.raises(ModelDirError) as raised:
            EarlyExitRuntime(model, weights="int8")
        reason = str(raised.value)
    else:
        assert not status.ready
        reason = status.reason
    assert reason == (f"{model / target} holds the graph {source.removesuffix('.onnx')!r}, where "
                      f"{target.removesuffix('.onnx')!r} belongs (a file copied over another?); re-run "
                      f"`tact export {model}`")


def test_a_kv_fill_graph_copied_over_another_degrades_the_server_saying_why(model):
    """The kv_fill graphs load on first use: one copied over another failed every dynamic request with a bare
    ValueError (`zip() argument 2 is longer than argument 1`) while the server stayed ready."""
    index = json.loads((model / "graphs.json").read_text())
    names = sorted(index["kv_fill"].items(), key=lambda kv: int(kv[0]))
    service = CompletionService()
    assert service.load(str(model)).ready
    originals = {name: (model / name).read_bytes() for _, name in names}
    for (_, name), (_, other) in zip(names, names[1:] + names[:1]):  # each exit's graph is another exit's
        (model / name).write_bytes(originals[other])
    with pytest.raises(ModelDirError, match=r"holds the graph 'kv_fill_\d+', where 'kv_fill_\d+' belongs"):
        for _ in range(4):  # until a token leaves early
            service.runtime.reset()
            complete(service, "dynamic")
    assert service.degraded and not service.status.ready


def test_a_missing_8_bit_exit_head_is_refused_at_load(model):
    """It is loaded on first use by the dynamic policy (fp32 weights too): the model loaded, then each dynamic
    request failed."""
    (model / "exit_head.int8.onnx").unlink()
    status = CompletionService().load(str(model))
    assert not status.ready
    assert status.reason == f"{model / 'exit_head.int8.onnx'} is missing; re-run `tact export {model}`"


@pytest.mark.parametrize("damage", ["garbage", "another kind"])
def test_a_graph_damaged_where_it_loads_on_first_use_degrades_the_server_saying_why(model, damage):
    """The kv_fill graphs load when the dynamic policy first needs them. A damaged one failed each dynamic request
    (said only in the log) while the status stayed ready; now the first failure makes the service degraded with the
    file and the fix, and the next load tries the directory again."""
    index = json.loads((model / "graphs.json").read_text())
    name = sorted(index["kv_fill"].values())[0]
    data = bytes(range(256)) * 8 if damage == "garbage" else (model / index["decoder_layers"][0]).read_bytes()
    service = CompletionService()
    assert service.load(str(model)).ready
    runtime = service.runtime
    for graph in index["kv_fill"].values():
        (model / graph).write_bytes(data)
    assert complete(service, "full").result is not None  # the graphs read at load serve
    with pytest.raises(ModelDirError) as raised:
        for _ in range(4):  # until a token leaves early (the tiny controller lets most leave at once)
            runtime.reset()
            complete(service, "dynamic")
    assert str(raised.value).startswith(str(model / name).rsplit("_", 1)[0])
    assert str(raised.value).endswith(f"re-run `tact export {model}`")
    assert service.degraded and not service.status.ready
    assert service.status.reason == str(raised.value) and service.status.model_dir == str(model)
    assert complete(service, "full").skipped_reason == f"degraded: {raised.value}"  # answered, not queued
    assert service.load(str(model)).ready  # tried again; the damage shows again only where dynamic reads it


def test_a_model_with_a_16_position_context_serves_every_policy(model):
    """The floor MIN_POSITIONS is enough: a prompt of 8 tokens and a suggestion fit."""
    edit_json(model / "config.json", lambda c: c.update(max_position_embeddings=16))
    export_model_dir(model)
    runtime = EarlyExitRuntime(model)
    prompt = runtime.fim_prompt(TEXT * 20, TEXT * 20, reserve=8)
    for policy in ("full", "dynamic", "speculative"):
        runtime.reset()
        result = runtime.generate(prompt, DecodeOptions(policy=policy, stop_threshold=1.01, max_new_tokens=8))
        assert runtime.cache.length <= 16 and result.prompt_tokens <= 14


def test_a_server_whose_model_fails_while_serving_tells_the_user_why(model, tmp_path):
    """The service goes degraded when a graph it loads on first use is damaged; the user was told only at the next
    settings change (the status said why, no message did). The request that found it now tells them."""
    from telemetry.lsp_client import LspClient
    from telemetry.simulate import wait_ready
    from tests.lsp_support import server_command

    index = json.loads((model / "graphs.json").read_text())
    client = LspClient(server_command(model, tmp_path / "t.sqlite3"))
    client.initialize({"decodingPolicy": "dynamic", "stopThreshold": 1.01, "maxNewTokens": 8})
    try:
        assert wait_ready(client)["ready"]
        for graph in index["kv_fill"].values():
            (model / graph).write_bytes(bytes(range(256)) * 8)
        client.did_open("file:///w/a.py", TEXT)
        for _ in range(4):  # until a token leaves early and reads a kv_fill graph
            client.inline_completion("file:///w/a.py", 4, 8, invoked=True)
            if client.request("tact/status")["degraded"]:
                break
        status = client.request("tact/status")
        assert status["degraded"], status
        message = client.wait_notification("window/showMessage", timeout=60)["params"]["message"]
        assert message == f"Tact: no completions ({status['reason']})" and str(model) in message
    finally:
        client.shutdown()


def test_a_queued_load_is_in_the_status_before_the_loader_thread_reaches_it(model, tmp_path):
    """The settings changed at once, but "loading" waited for the loader thread: a status read in between gave the
    previous model's state beside the new settings (ready, or degraded for a path no longer asked for)."""
    import threading

    service = CompletionService()
    assert service.load(str(model)).ready
    busy = threading.Event()
    service._loader.submit(busy.wait, 60)  # the loader thread is busy elsewhere
    missing = tmp_path / "missing"
    try:
        first = service.start_loading(str(missing))
        again = service.start_loading(str(missing))
        status = service.status
        assert status.loading and status.model_dir == str(missing) and not status.ready and not service.degraded
    finally:
        busy.set()
    assert not first.result(60).ready and again.result(60).reason == first.result().reason
    assert service.degraded and str(missing) in service.status.reason  # the last queued load's outcome, said
    assert service.start_loading(str(model)).result(60).ready and service.status.ready and not service.degraded


def test_a_request_during_a_model_swap_waits_for_the_new_model(tiny_lm_dir, tmp_path, monkeypatch):
    """Settings naming another model directory unload the first before the second loads (so that both never sit in
    memory): a request that found the model ready, then reached the model while the swap ran, got no suggestion and
    the reason "degraded: None"."""
    other = tmp_path / "other"
    shutil.copytree(tiny_lm_dir, other)
    service = CompletionService()
    assert service.load(str(tiny_lm_dir)).ready
    release = threading.Event()

    class SlowRuntime(EarlyExitRuntime):
        def __init__(self, *args, **kwargs):
            release.wait(10)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(completion, "EarlyExitRuntime", SlowRuntime)
    loading = service.start_loading(str(other))
    for _ in range(500):  # the loader has let go of the first model
        if service.runtime is None:
            break
        threading.Event().wait(0.01)
    assert service.runtime is None and not service.degraded
    threading.Timer(0.2, release.set).start()
    suggestion = complete(service, "full")
    assert suggestion.result is not None, suggestion.skipped_reason
    assert loading.result(10).ready and service.status.model_dir == str(other)


@pytest.mark.parametrize("name", ["../outside.onnx", "/etc/passwd", "sub/decoder_layer_0.onnx", ".."])
def test_a_graphs_index_naming_a_path_is_refused_before_anything_is_read_or_copied(model, name):
    """graphs.json's names were read as paths: where the model directory could not take its derived weights, every
    listed file was copied into the cache by its name, so "../../.bashrc" was read from outside the model directory
    and written outside the cache."""
    index_path = model / "graphs.json"
    index = json.loads(index_path.read_text())
    index["decoder_layers"][1] = name
    index_path.write_text(json.dumps(index))
    with pytest.raises(ModelDirError) as err:
        EarlyExitRuntime(model, threads=1)
    assert str(index_path) in str(err.value) and repr(name) in str(err.value) and "tact export" in str(err.value)


def test_a_derived_file_is_written_through_a_new_temporary_file_never_a_link_left_in_the_directory(tmp_path,
                                                                                                     monkeypatch):
    """The temporary file was `<name>.<pid>.tmp`, opened as it was found: a model directory shipped with a link of
    that name had the link's target overwritten with the derived weights."""
    import os

    import models.model_dir as model_dir

    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    monkeypatch.setattr(model_dir.secrets, "token_hex", lambda n: "guessed")
    out = tmp_path / "onnx_weights.bin"
    (tmp_path / f"onnx_weights.bin.{os.getpid()}.guessed.tmp").symlink_to(victim)
    with pytest.raises(OSError):
        model_dir.write_atomically(out, lambda tmp: tmp.write_bytes(b"weights"))
    assert victim.read_text() == "keep me" and not out.exists()
    monkeypatch.undo()
    model_dir.write_atomically(out, lambda tmp: tmp.write_bytes(b"weights"))  # a fresh name each time
    assert out.read_bytes() == b"weights" and victim.read_text() == "keep me"
    left = sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp"))
    assert left == [f"onnx_weights.bin.{os.getpid()}.guessed.tmp"]  # only the planted link


@pytest.mark.parametrize("where", ["absolute", "parent", "link"])
def test_the_onnxruntime_required_reads_no_weights_outside_a_graphs_directory(tmp_path, where):
    """A graph's external data may name any file. onnxruntime 1.23, which pyproject allowed, loaded a graph whose
    weights were /etc/passwd, ../secret or a link out of the model directory, and its output was that file's bytes;
    from 1.24.4 (now the minimum) it refuses them."""
    onnx = pytest.importorskip("onnx")
    import onnxruntime as ort
    from onnx import TensorProto, helper

    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"SECRET OUTSIDE THE MODEL")
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "link.bin").symlink_to(secret)
    location = {"absolute": str(secret), "parent": "../secret.bin", "link": "link.bin"}[where]
    weights = TensorProto(name="w", data_type=TensorProto.UINT8, dims=[8], data_location=TensorProto.EXTERNAL)
    for key, value in (("location", location), ("offset", "0"), ("length", "8")):
        entry = weights.external_data.add()
        entry.key, entry.value = key, value
    graph = helper.make_graph([helper.make_node("Identity", ["w"], ["y"])], "g", [],
                              [helper.make_tensor_value_info("y", TensorProto.UINT8, [8])], initializer=[weights])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = model_dir / "graph.onnx"
    path.write_bytes(model.SerializeToString())
    assert onnx.load(str(path), load_external_data=False).graph.initializer[0].external_data[0].value == location
    with pytest.raises(Exception) as refused:
        ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert "SECRET" not in str(refused.value)


@pytest.mark.parametrize("name", ["tact.json", EXIT_HEADS, "decoder_layer_0.onnx"])
def test_a_pipe_in_place_of_a_model_file_is_refused_not_read_without_end(model, name):
    """tact.json and the exit heads were read where they existed, and graphs wherever graphs.json listed them: a pipe
    there held the loader thread for good, every completion then waited out its timeout, and the process outlived
    its exit."""
    import os

    (model / name).unlink(missing_ok=True)
    os.mkfifo(model / name)
    outcome: list = []

    def load() -> None:
        try:
            EarlyExitRuntime(model, threads=1)
            outcome.append("loaded")
        except ModelDirError as exc:
            outcome.append(str(exc))

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    thread.join(timeout=60)
    if thread.is_alive():  # unblock the reader so that the test process can end
        with open(model / name, "wb"):
            pass
    assert outcome and str(model / name) in outcome[0] and "not a file" in outcome[0], outcome
