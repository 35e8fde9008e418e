"""Shared fixtures."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

# Every server, demo and simulation the tests start gets a data directory of its own unless a test names one: the
# user's real telemetry database (and, since the server removes old sessions when it opens one, its history) is no
# test's business. Set before any test starts a process, which inherits it.
if "TACT_DATA_DIR" not in os.environ:
    os.environ["TACT_DATA_DIR"] = tempfile.mkdtemp(prefix="tact-test-data-")


def pytest_sessionfinish(session, exitstatus):
    folder = os.environ.get("TACT_DATA_DIR", "")
    if Path(folder).name.startswith("tact-test-data-"):
        shutil.rmtree(folder, ignore_errors=True)

TINY_LM_MAX_LEN = 128


def _stdlib_texts() -> list[str]:
    import argparse
    import json as json_mod
    import string
    import textwrap

    return [Path(m.__file__).read_text(encoding="utf-8") for m in (textwrap, string, json_mod.encoder, argparse)]


def write_calib_corpus(corpus: Path) -> Path:
    """A corpus directory whose calibration split is a few standard-library modules (`tact train controller`)."""
    corpus.mkdir(parents=True, exist_ok=True)
    with open(corpus / "calib.jsonl", "w") as f:
        for i, text in enumerate(_stdlib_texts()[:20]):
            f.write(json.dumps({"path": f"m{i}.py", "package": f"p{i}", "text": text}) + "\n")
    return corpus


@pytest.fixture(scope="session")
def tiny_lm_dir(tmp_path_factory) -> Path:
    """A tiny random early-exit model (4 layers, GQA 4 query / 2 KV heads, random controller), saved in the
    Hugging Face layout and exported to ONNX. Built once per test session."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from models.architecture import EarlyExitLM, ModelConfig
    from models.export import export_model_dir
    from models.tokenizer import TokenizerInfo, train_tokenizer
    from models.train_lm import save_model_dir

    # Tiny matrices: one thread is far faster than two spinning threads on a busy 2-core machine.
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("tiny_lm")
    tok = train_tokenizer(_stdlib_texts(), vocab_size=512)
    info = TokenizerInfo(tok)
    cfg = ModelConfig(vocab_size=tok.get_vocab_size(), hidden_size=64, intermediate_size=128, num_hidden_layers=4,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=TINY_LM_MAX_LEN,
                      bos_token_id=info.eos_id, eos_token_id=info.eos_id)
    torch.manual_seed(1234)
    model = EarlyExitLM(cfg)
    gen = torch.Generator().manual_seed(4321)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith("controller."):  # deterministic, far from uniform: varied exit/stop decisions
                p.copy_(torch.randn(p.shape, generator=gen) * (0.6 if p.dim() > 1 else 0.5))
            elif p.dim() == 1:  # norms: not all ones, so a wrong norm weight shows up as a parity failure
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
            elif "embed_tokens" not in name:  # layers strong enough to change the prediction
                p.copy_(torch.randn(p.shape, generator=gen) * 0.15)
    save_model_dir(model, tok, out, {"name": "tiny-test", "size": "test"})
    export_model_dir(out)
    return out


@pytest.fixture(scope="session")
def tiny_lm_torch(tiny_lm_dir):
    from models.architecture import load_torch_model

    return load_torch_model(tiny_lm_dir, strict_exits=True)


@pytest.fixture(scope="session")
def tiny_corpus_dir(tmp_path_factory) -> Path:
    """A corpus directory whose heldout and calib splits each hold a few standard-library files."""
    out = tmp_path_factory.mktemp("tiny_corpus")
    texts = _stdlib_texts()
    for split, chosen in (("heldout", texts[:3]), ("calib", texts[3:5])):
        with open(out / f"{split}.jsonl", "w", encoding="utf-8") as f:
            for i, text in enumerate(chosen):
                f.write(json.dumps({"package": f"stdlib:{split}{i}", "path": f"{split}{i}.py", "text": text}) + "\n")
    return out


SIMULATED_SOURCE = '''import os


def read_lines(path):
    with open(path) as f:
        return f.readlines()


def count(text):
    return len(text.split())
'''


@pytest.fixture(scope="session")
def simulated_session(tiny_lm_dir, tmp_path_factory) -> dict:
    """One simulated programmer session (accelerated, fixed seed) typing SIMULATED_SOURCE into a real server with
    the tiny model, recorded in a fresh database. Built once per test session."""
    from telemetry.simulate import TypingStyle, run_simulation

    folder = tmp_path_factory.mktemp("simulated")
    source = folder / "sample.py"
    source.write_text(SIMULATED_SOURCE, encoding="utf-8")
    db = folder / "simulated.sqlite3"
    # Typos and revisits on a short file; requests only after longer pauses (about a third of the keys) to keep
    # it quick. The tiny model needs stopThreshold > 1 to produce text at all.
    style = TypingStyle(typo_p=0.08, revisit_p=0.5, debounce_s=0.25)
    figures = run_simulation([source], db, model=str(tiny_lm_dir), settings={"stopThreshold": 1.01, "maxNewTokens": 8},
                             seed=3, style=style, start_line=2)
    return {"database": db, "source": source, "text": SIMULATED_SOURCE, "figures": figures}


def refusing_to_write_beside(write):
    """``write(model_dir, out_dir=None)`` (a derived weight file's writer) failing as in a read-only model directory,
    unless it is told to write elsewhere."""
    def wrapped(model_dir, out_dir=None):
        if out_dir is None:
            raise PermissionError(13, "Permission denied", str(model_dir))
        return write(model_dir, out_dir)
    return wrapped


@pytest.fixture
def stalled_writer(monkeypatch: pytest.MonkeyPatch):
    """Makes the telemetry writer block inside its next batch write until ``release`` is set: (entered, release)."""
    import threading

    from telemetry.store import TelemetryStore as StoreClass

    entered, release = threading.Event(), threading.Event()
    original = StoreClass._write_batch

    def slow_write_batch(self, batch):
        entered.set()
        release.wait(10)
        return original(self, batch)

    monkeypatch.setattr(StoreClass, "_write_batch", slow_write_batch)
    yield entered, release
    release.set()
