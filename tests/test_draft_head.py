"""The trained draft head for speculative decoding (models.draft_head): what it drafts, that speculative output
stays the whole model's with it, and clear errors for a broken file."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from models.draft_head import DRAFT_HEAD, DraftHead, train_draft_head
from models.model_dir import ModelDirError, read_record
from models.runtime import POLICIES, DecodeOptions, EarlyExitRuntime

PROMPTS = ["def add(a, b):\n    return a", "import os\n\nfor name in os.listdir(path):\n    ", "x = [i * i for i in "]


def _head_tensors(D: int, V: int, K: int = 6, F: int = 5, favourite: int = 2) -> dict[str, np.ndarray]:
    """A head whose predicted state is dominated by one direction c, which output row ``favourite`` equals: it
    drafts vocab[favourite] from any state."""
    c = np.linspace(1.0, 2.0, D).astype(np.float32) * 1e4
    out = np.random.default_rng(0).normal(size=(K, D)).astype(np.float32)
    out[favourite] = c / 1e3
    return {"norm_in": np.ones(D, np.float32), "fc1.weight": np.zeros((F, 2 * D), np.float32),
            "fc1.bias": np.zeros(F, np.float32), "fc2.weight": np.zeros((D, F), np.float32), "fc2.bias": c,
            "norm_out": np.ones(D, np.float32), "out": out, "vocab": np.arange(V - K, V, dtype=np.int64)}


def test_the_head_drafts_the_token_its_predicted_state_points_to_and_chains():
    D, V = 8, 20
    embed = np.random.default_rng(1).normal(size=(V, D)).astype(np.float32)
    head = DraftHead(_head_tensors(D, V), embed, 1e-5)
    state = np.random.default_rng(2).normal(size=D).astype(np.float32)
    token, nxt = head.step(state, 3)
    assert token == V - 6 + 2 and nxt.shape == (D,)
    assert not np.allclose(nxt, state)  # the state moves on: the next draft reads the predicted one
    assert head.draft(state, 3, 3) == [V - 4] * 3
    assert head.draft(state, 3, 0) == []


def test_the_served_head_computes_what_training_trained():
    """DraftHead (numpy, serving) against the torch module train_draft_head trains, on the tensors it saves."""
    torch = pytest.importorskip("torch")
    from models.draft_head import torch_draft_head

    torch.manual_seed(0)
    V, D, eps = 40, 16, 1e-5
    embed = torch.randn(V, D)
    head = torch_draft_head(embed, 1.0 + 0.1 * torch.randn(D), torch.tensor([3, 7, 11, 19, 23, 31]), 8, eps)
    with torch.no_grad():
        for p in head.parameters():
            p.add_(0.3 * torch.randn(p.shape))  # away from the zero init, so every weight counts
    state, token = 2.0 * torch.randn(5, D), torch.tensor([1, 4, 9, 16, 25])
    with torch.no_grad():
        logits, nxt = head(state, token)
    served = DraftHead({k: v.float().numpy() if k != "vocab" else v.numpy() for k, v in head.tensors().items()},
                       embed.numpy(), eps)
    for i in range(5):
        drafted, predicted = served.step(state[i].numpy(), int(token[i]))
        assert drafted == int(head.vocab[logits[i].argmax()])
        np.testing.assert_allclose(predicted, nxt[i].numpy(), rtol=0, atol=1e-2)  # fp16 weights in the file


def _run(rt, ids, **kw):
    rt.reset()
    return rt.generate(ids, DecodeOptions(**{"max_new_tokens": 24, "single_line": False, "stop_repeats": 0, **kw}))


@pytest.fixture(scope="module")
def trained_head(tiny_lm_dir, tiny_corpus_dir, tmp_path_factory):
    """A copy of the tiny model with a draft head trained for a few seconds by `train_draft_head`, on text the tiny
    model wrote itself (the head learns only where the text follows the model's own choice; the random tiny model
    rarely agrees with real code)."""
    base = tmp_path_factory.mktemp("tiny_head")
    model, corpus = base / "model", base / "corpus"
    shutil.copytree(tiny_lm_dir, model)
    shutil.copytree(tiny_corpus_dir, corpus)
    rt = EarlyExitRuntime(tiny_lm_dir, threads=1)
    with open(corpus / "train.jsonl", "w", encoding="utf-8") as f:
        for i, text in enumerate(PROMPTS * 3):
            out = _run(rt, rt.tokenizer.encode(text[:8 + i]), policy="full", max_new_tokens=120)
            f.write(json.dumps({"package": f"own{i}", "path": f"own{i}.py", "text": text[:8 + i] + out.text}) + "\n")
    stats = train_draft_head(model, corpus, minutes=0.05, batch_size=2, vocab=64, width=16, log=lambda m: None)
    return model, stats


def test_training_writes_a_head_the_runtime_loads_and_records_the_run(trained_head):
    model, stats = trained_head
    assert (model / DRAFT_HEAD).is_file()
    assert stats["steps"] >= 1 and stats["vocab"] == 64 and 0 < stats["vocab_coverage"] <= 1
    assert read_record(model)["draft_head"]["steps"] == stats["steps"]
    rt = EarlyExitRuntime(model, threads=1)
    assert rt.draft_head is not None and rt.draft_head.out.shape == (64, rt.embed.shape[1])


def test_speculative_with_the_head_stays_identical_to_full(trained_head):
    model, _ = trained_head
    rt = EarlyExitRuntime(model, threads=1)
    drafted = 0
    for text in PROMPTS:
        ids = rt.tokenizer.encode(text)
        full = _run(rt, ids, policy="full")
        for tokens in (1, 2, 3):
            spec = _run(rt, ids, policy="speculative", ngram_drafts=False, lookup_ngram=0, head_tokens=tokens)
            assert (spec.token_ids, spec.stop_reason) == (full.token_ids, full.stop_reason)
            assert spec.head_drafted <= spec.drafted and spec.head_accepted <= spec.head_drafted
            drafted += spec.head_drafted
        off = _run(rt, ids, policy="speculative", ngram_drafts=False, lookup_ngram=0, draft_head=False)
        assert off.token_ids == full.token_ids and off.head_drafted == 0
        for policy in POLICIES:  # the head changes nothing for the others
            assert _run(rt, ids, policy=policy).token_ids
    assert drafted > 0  # the head drafted where nothing else did


def test_a_corrupt_or_foreign_head_names_the_fix(tiny_lm_dir, tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(tiny_lm_dir, copy)
    (copy / DRAFT_HEAD).write_bytes(b"\x00" * 40)
    with pytest.raises(ModelDirError, match=f"{DRAFT_HEAD}.*tact train draft-head"):
        EarlyExitRuntime(copy, threads=1)
    from safetensors.numpy import save_file

    rt = EarlyExitRuntime(tiny_lm_dir, threads=1)
    V, D = rt.embed.shape
    save_file(_head_tensors(D + 1, V), str(copy / DRAFT_HEAD))  # another model's width
    with pytest.raises(ModelDirError, match="does not fit this model.*tact train draft-head"):
        EarlyExitRuntime(copy, threads=1)


def test_the_command_without_a_training_split_says_how_to_build_one(tiny_lm_dir, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "lsp_server.cli", "train", "draft-head", "--model", str(tiny_lm_dir),
                           "--corpus", str(tmp_path), "--minutes", "0.01"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "tact train corpus" in proc.stderr
    assert not (tiny_lm_dir / DRAFT_HEAD).exists()


def test_no_head_is_written_when_no_training_step_fits(tiny_lm_dir, tiny_corpus_dir, tmp_path):
    model, corpus = tmp_path / "model", tmp_path / "corpus"
    shutil.copytree(tiny_lm_dir, model)
    shutil.copytree(tiny_corpus_dir, corpus)
    shutil.copy(corpus / "calib.jsonl", corpus / "train.jsonl")
    with pytest.raises(ValueError, match="more minutes"):
        train_draft_head(model, corpus, minutes=0.0, batch_size=2, vocab=64, width=16, log=lambda m: None)
    assert not (model / DRAFT_HEAD).exists() and "draft_head" not in read_record(model)


def test_retraining_the_trunk_removes_the_head_it_made_stale(trained_head, tmp_path):
    from models.architecture import load_torch_model
    from models.tokenizer import load_tokenizer
    from models.train_lm import save_model_dir

    model = tmp_path / "model"
    shutil.copytree(trained_head[0], model)
    record = read_record(model)
    assert "draft_head" in record
    save_model_dir(load_torch_model(model), load_tokenizer(model / "tokenizer.json"), model, record)
    assert not (model / DRAFT_HEAD).exists() and "draft_head" not in read_record(model)
    assert EarlyExitRuntime(model, threads=1).draft_head is None
