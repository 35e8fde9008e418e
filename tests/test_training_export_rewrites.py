"""`tact export` and the files it rewrites in a model directory: read-only graphs are replaced, a run that fails
partway leaves no graphs that read other weights, and a failed rewrite of the weights keeps the old ones."""

from __future__ import annotations

import json
import shutil
import stat

import pytest

from lsp_server.cli import main
from models.model_dir import GRAPHS_INDEX, ModelDirError, check_model_dir, read_safetensors_index, store_half

onnx = pytest.importorskip("onnx")


@pytest.fixture
def model(tiny_lm_dir, tmp_path):
    """A copy of the tiny model with its graphs (fp32 weights, which the graphs read in place)."""
    out = tmp_path / "model"
    shutil.copytree(tiny_lm_dir, out)
    assert json.loads((out / GRAPHS_INDEX).read_text())["weights"] == "model.safetensors"
    return out


def _honouring_read_only(save):
    """``onnx.save`` refusing to open a read-only file for writing, as it is refused to anyone but root."""
    def wrapped(proto, path, *args, **kwargs):
        from pathlib import Path

        p = Path(path)
        if p.exists() and not p.stat().st_mode & stat.S_IWUSR:
            raise PermissionError(13, "Permission denied", str(p))
        return save(proto, path, *args, **kwargs)
    return wrapped


def test_export_replaces_read_only_graphs(model, monkeypatch, capsys):
    """Graphs installed read-only (a packaged or copied model) stopped `tact export` at the first graph."""
    monkeypatch.setattr(onnx, "save", _honouring_read_only(onnx.save))
    for f in [*model.glob("*.onnx"), model / GRAPHS_INDEX]:
        f.chmod(0o444)
    assert main(["export", str(model)]) == 0, capsys.readouterr().err
    check_model_dir(model)


def test_an_export_that_fails_partway_leaves_no_graphs_for_the_old_weights(model, monkeypatch, capsys):
    """`tact export --half` stored fp16 weights, then failed writing a graph (a full disk): graphs.json still listed
    the graphs that read fp32 weights in place, so the directory passed as exported and failed at load with
    onnxruntime's words."""
    calls = []

    def failing(proto, path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(28, "No space left on device", str(path))
        return onnx_save(proto, path, *args, **kwargs)

    onnx_save = onnx.save
    monkeypatch.setattr(onnx, "save", failing)
    assert main(["export", "--half", str(model)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("tact export: error:") and "No space left" in err[0]
    with pytest.raises(ModelDirError, match="has no ONNX graphs; run `tact export"):
        check_model_dir(model)
    monkeypatch.setattr(onnx, "save", onnx_save)
    assert main(["export", str(model)]) == 0
    check_model_dir(model)


def test_half_without_graphs_leaves_no_graphs_that_read_the_fp32_weights(model, capsys):
    """`tact export --half --no-graphs` rewrote model.safetensors under graphs that read its fp32 bytes in place: the
    directory passed as exported, and loading failed on an out-of-bounds read in onnxruntime."""
    assert main(["export", "--half", "--no-graphs", str(model)]) == 0
    assert {e.dtype for e in read_safetensors_index(model / "model.safetensors").values()} == {"F16"}
    with pytest.raises(ModelDirError, match="has no ONNX graphs; run `tact export"):
        check_model_dir(model)


def _writing_half_then_failing(before: bytes):
    """A writer that leaves the first bytes of ``before`` in its file and fails (a full disk)."""
    def failing(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(before[:100])
        raise OSError(28, "No space left on device", filename)
    return failing


def test_a_failed_fp16_rewrite_keeps_the_weights(model, monkeypatch):
    """store_half wrote model.safetensors in place: a failure midway (a full disk, Ctrl-C) left the only copy of
    the weights truncated."""
    import safetensors.numpy

    before = (model / "model.safetensors").read_bytes()
    monkeypatch.setattr(safetensors.numpy, "save_file", _writing_half_then_failing(before))
    with pytest.raises(OSError, match="No space left on device"):
        store_half(model)
    assert (model / "model.safetensors").read_bytes() == before
    assert sorted(p.name for p in model.iterdir() if ".tmp" in p.name) == []


def test_a_failed_controller_save_keeps_the_exit_heads(model, tmp_path, monkeypatch):
    """`tact train controller` (by default on the shipped model) wrote exit_heads.safetensors in place: a failure
    midway left it truncated."""
    import safetensors.torch

    from tests.conftest import write_calib_corpus
    from models.train_lm import train_controller

    corpus = write_calib_corpus(tmp_path / "corpus")
    before = (model / "exit_heads.safetensors").read_bytes()
    monkeypatch.setattr(safetensors.torch, "save_file", _writing_half_then_failing(before))
    with pytest.raises(OSError, match="No space left on device"):
        train_controller(model, corpus, batches=1, batch_size=2, log=lambda m: None)
    assert (model / "exit_heads.safetensors").read_bytes() == before


def test_a_failed_record_write_keeps_the_record(model, monkeypatch):
    """tact.json was written in place: a failure midway left a record that is not JSON, and every load of the
    model refused it."""
    from pathlib import Path

    from models.model_dir import read_record, record_entry

    before = read_record(model)
    real = Path.write_text

    def failing(self, text, *args, **kwargs):
        real(self, text[:10], *args, **kwargs)
        raise OSError(28, "No space left on device", str(self))

    monkeypatch.setattr(Path, "write_text", failing)
    with pytest.raises(OSError, match="No space left on device"):
        record_entry(model, "note", "x")
    monkeypatch.undo()
    assert read_record(model) == before


def test_a_failed_ngram_table_save_keeps_the_table(model, monkeypatch):
    """`tact train ngram-drafts` wrote the table in place: a failure midway left a truncated file, which the runtime
    refuses at every load."""
    import safetensors.numpy

    from models.ngram_drafts import NGRAM_DRAFTS, NgramDrafts, build_tables

    path = model / NGRAM_DRAFTS
    table = NgramDrafts(build_tables([[3, 4, 5, 3, 4, 5]], max_context=1, min_count=2, min_share=0.5))
    table.save(path, model / "tokenizer.json")
    before = path.read_bytes()
    monkeypatch.setattr(safetensors.numpy, "save_file", _writing_half_then_failing(before))
    with pytest.raises(OSError, match="No space left on device"):
        table.save(path, model / "tokenizer.json")
    assert path.read_bytes() == before

