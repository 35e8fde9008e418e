"""Training helpers that run on a CPU and an accelerator alike: batch prefetching, autocast, model sizes."""

from __future__ import annotations

import itertools

import torch

from models.architecture import EarlyExitLM, ModelConfig
from models.train_lm import SIZES, autocast, prefetched


def test_prefetched_batches_come_in_the_order_they_are_made():
    counter = itertools.count()
    batches = prefetched(lambda: next(counter), depth=2)
    assert [next(batches) for _ in range(10)] == list(range(10))


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
