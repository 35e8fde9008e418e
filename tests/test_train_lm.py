"""Training helpers that run on a CPU and an accelerator alike: batch workers, autocast, model sizes."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from models.architecture import EarlyExitLM, ModelConfig
from models.tokenizer import TokenizerInfo, load_tokenizer
from models.train_lm import SIZES, ExampleSampler, autocast, batch_stream

TOKENIZER = Path(__file__).resolve().parents[1] / "models" / "default" / "tokenizer.json"
TEXTS = [f"def f{i}(x):\n    return x * {i} + {i * i}\n\n" * 20 for i in range(30)]


def _sampler(seed: int = 5) -> ExampleSampler:
    return ExampleSampler(TEXTS, TokenizerInfo(load_tokenizer(TOKENIZER)), 64, seed)


def test_batch_workers_each_draw_their_own_seeded_stream():
    """Every batch from the workers is one that worker's own seeded stream draws next, and the workers differ."""
    batches = batch_stream(_sampler(), 4, workers=2)
    got = [next(batches) for _ in range(6)]
    batches.close()
    expected = {}
    for worker in range(2):
        sampler = _sampler()
        sampler.rng = random.Random(f"{sampler.seed}/{worker}")
        expected[worker] = [torch.from_numpy(sampler.batch_array(4)) for _ in range(6)]
    assert not torch.equal(expected[0][0], expected[1][0])
    taken = {0: 0, 1: 0}
    for batch in got:
        assert batch.shape == (4, 64) and batch.dtype == torch.long
        worker = next(w for w in (0, 1) if torch.equal(batch, expected[w][taken[w]]))
        taken[worker] += 1
    assert sum(taken.values()) == 6


def test_batches_without_workers_are_the_samplers_own_in_order():
    batches = batch_stream(_sampler(), 3, workers=0)
    reference = _sampler()
    for _ in range(3):
        assert torch.equal(next(batches), reference.batch(3))


def test_autocast_leaves_cpu_arithmetic_in_fp32():
    a, b = torch.randn(4, 8), torch.randn(8, 3)
    with autocast("cpu"):
        out = a @ b
    assert out.dtype == torch.float32
    assert torch.allclose(out, a @ b)


def test_the_medium_size_ships_in_fp32_under_50_mb():
    hidden, layers, heads, inter = SIZES["medium"]
    cfg = ModelConfig(vocab_size=8192, hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers,
                      num_attention_heads=heads, num_key_value_heads=heads)
    model = EarlyExitLM(cfg)
    assert layers > SIZES["small"][1]  # deeper than small: more exits
    assert model.num_parameters() * 4 < 50e6


def test_training_records_name_the_command_without_machine_paths(monkeypatch, tmp_path):
    from models.model_dir import command_line

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    cli = str(Path(__file__).resolve().parents[1] / "lsp_server" / "cli.py")
    monkeypatch.setattr("sys.argv", [cli, "train", "lm", "--out", "/elsewhere/run/lm", f"--corpus={tmp_path / 'data'}",
                                     "--minutes", "4.6"])
    assert command_line() == "tact train lm --out lm --corpus=data --minutes 4.6"


def test_the_logged_losses_end_with_the_last_layers_and_stay_on_the_device():
    import torch.nn.functional as F

    from models.train_lm import early_exit_loss, mean_losses

    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=3,
                      num_attention_heads=2, num_key_value_heads=2)
    model = EarlyExitLM(cfg)
    ids = torch.randint(1, 64, (2, 10))
    hidden = model(ids)
    loss, per_layer = early_exit_loss(model, hidden, ids, pad_id=0, exit_sample=1.0, exit_weight=0.5)
    final = F.cross_entropy(model.exit_logits(2, hidden[-1][:, :-1]).reshape(-1, 64), ids[:, 1:].reshape(-1))
    first = F.cross_entropy(model.exit_logits(0, hidden[0][:, :-1]).reshape(-1, 64), ids[:, 1:].reshape(-1))
    assert per_layer.shape == (3,) and not per_layer.requires_grad
    assert torch.allclose(per_layer[-1], final, atol=1e-5) and torch.allclose(per_layer[0], first, atol=1e-5)
    assert mean_losses([per_layer, per_layer * 3], 2) == pytest.approx((per_layer * 2).tolist())


def test_vendored_copies_are_left_out_of_the_corpus(tmp_path):
    """pip/_vendor/pygments counted as package pip: near-copies of a held-out package landed in the train split."""
    from models.corpus import iter_sources

    for rel in ("pip/__init__.py", "pip/_vendor/pygments/lexer.py", "pip/_internal/cli.py", "pygments/lexer.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x = 1\n")
    found = {(s.package, s.path.relative_to(tmp_path).as_posix()) for s in iter_sources("site", tmp_path)}
    assert found == {("site:pip", "pip/__init__.py"), ("site:pip", "pip/_internal/cli.py"),
                     ("site:pygments", "pygments/lexer.py")}
