"""The KV cache kept between requests: whatever came before, a request decodes what a fresh runtime decodes.

With fp32 weights the reuse is exact: outputs are compared token for token, log-probabilities within float
noise. (8-bit decoding steps are not history-free by design: a prompt pass of up to MAX_INT8_ROWS
new tokens reads the 8-bit graphs where a fresh prefill reads fp32.)
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from models.fim import build_prompt
from models.runtime import POLICIES, DecodeOptions, EarlyExitRuntime

CODE = '''import os


def wrap(text, width=70, **kwargs):
    """Wrap a single paragraph of text."""
    w = TextWrapper(width=width, **kwargs)
    return w.wrap(text)


def fill(text, width=70, **kwargs):
    w = TextWrapper(width=width, **kwargs)
    return w.fill(text)
'''


@pytest.fixture(scope="module")
def reused(tiny_lm_dir):
    return EarlyExitRuntime(tiny_lm_dir, threads=1)


@pytest.fixture(scope="module")
def fresh(tiny_lm_dir):
    return EarlyExitRuntime(tiny_lm_dir, threads=1)


def fresh_run(rt, ids, opts):
    rt.reset()
    return rt.generate(ids, opts)


def same(a, b) -> bool:
    """The same tokens and end; log-probabilities within float noise (a prompt run in two passes or in one adds
    up in another order)."""
    return ((a.token_ids, a.stop_reason) == (b.token_ids, b.stop_reason)
            and np.allclose(a.logprobs, b.logprobs, rtol=0, atol=1e-4))


def test_switching_weights_in_place_does_not_reuse_the_other_weights_kv(tiny_lm_dir, fresh):
    """8-bit decoding steps wrote the suggestion's KV; switched back to fp32, the next request reused it as exact."""
    rt = EarlyExitRuntime(tiny_lm_dir, threads=1, weights="int8")
    ids = rt.tokenizer.encode(CODE[:150])
    opts = DecodeOptions(policy="full", max_new_tokens=10, single_line=False, stop_threshold=1.01)
    first = rt.generate(ids, opts)
    assert len(first.token_ids) >= 4  # decoding steps (8-bit) wrote KV past the prompt
    rt.use_weights("fp32")
    follow = ids + first.token_ids[:3]  # the user took part of the suggestion
    again = rt.generate(follow, opts)
    assert same(again, fresh_run(fresh, follow, opts))
    rt.use_weights("int8")  # and back: the fp32 KV is not the 8-bit runtime's either
    assert rt.cache.length == 0
    rt.use_weights("int8")  # no switch, nothing dropped
    rt.generate(ids, opts)
    assert rt.generate(ids, opts).cached_tokens == len(ids) - 1


def _fim(rt, text: str, cursor: int) -> list[int]:
    info = rt.tokenizer
    return build_prompt(info, info.encode(text[:cursor]), info.encode(text[cursor:])[:16], rt.max_len - 2, reserve=12)


@pytest.mark.parametrize("seed", [0, 1])
def test_random_request_sequences_decode_as_a_fresh_runtime(reused, fresh, seed):
    """Typing, deleting, edits above the cursor, cursor jumps, policy switches and cancelled requests in a random
    order: every request's output equals a fresh runtime's for the same prompt."""
    rng = random.Random(seed)
    text, cursor = CODE, 120
    reused.reset()
    policy = "full"
    for step in range(30):
        op = rng.random()
        if op < 0.4:
            piece = "".join(rng.choice("ab_ (.)\n") for _ in range(rng.randint(1, 3)))
            text, cursor = text[:cursor] + piece + text[cursor:], cursor + len(piece)
        elif op < 0.5:
            text, cursor = text[:max(cursor - 2, 0)] + text[cursor:], max(cursor - 2, 0)
        elif op < 0.65:
            at = rng.randrange(max(cursor, 1))
            text, cursor = text[:at] + "z" + text[at:], cursor + 1
        elif op < 0.75:
            cursor = rng.randrange(len(text) + 1)
        else:
            policy = rng.choice(POLICIES)
        ids = _fim(reused, text, cursor)
        opts = DecodeOptions(policy=policy, max_new_tokens=12, single_line=rng.random() < 0.5,
                             stop_threshold=rng.choice([1.01, 0.9]), draft_layers=rng.choice([0, 2]))
        if rng.random() < 0.2:  # a request cancelled part way first
            left = [rng.randint(0, 3)]

            def cancel() -> bool:
                left[0] -= 1
                return left[0] < 0

            reused.generate(ids, opts, should_cancel=cancel)
        got = reused.generate(ids, opts)
        want = fresh_run(fresh, ids, opts)
        assert same(got, want), (step, policy, got.cached_tokens)
