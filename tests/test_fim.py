"""The FIM prompt: what fits the budget, and a start that stays put while the user types (KV-cache reuse)."""

from pathlib import Path

import pytest

from models.fim import PREFIX_TOKEN_GRID, build_prompt, keep_prefix
from models.tokenizer import TokenizerInfo, load_tokenizer

TOKENIZER = Path(__file__).resolve().parents[1] / "models" / "default" / "tokenizer.json"


@pytest.fixture(scope="module")
def info() -> TokenizerInfo:
    return TokenizerInfo(load_tokenizer(TOKENIZER))


def test_a_prefix_that_fits_is_kept_whole(info):
    prefix, suffix = list(range(100, 400)), list(range(500, 540))
    prompt = build_prompt(info, prefix, suffix, max_tokens=1024, reserve=48)
    assert prompt == [info.fim_suffix_id, *suffix, info.fim_middle_id, *prefix]


def test_a_long_prefix_keeps_its_end_and_fits_the_budget(info):
    suffix = list(range(500, 540))
    for n in (935, 1000, 1500, 5000):
        prefix = list(range(n))
        prompt = build_prompt(info, prefix, suffix, max_tokens=1024, reserve=48)
        assert len(prompt) <= 1024 - 48
        kept = prompt[len(suffix) + 2:]
        assert kept == prefix[-len(kept):]  # the end of the prefix, contiguous
        assert len(kept) > 1024 - 48 - len(suffix) - 2 - PREFIX_TOKEN_GRID  # at most one grid step lost


def test_typing_at_the_end_of_a_long_prefix_keeps_the_prompt_start(info):
    """One token more per keystroke: the previous prompt stays a prefix of the next one (its KV cache is
    reused whole) except once per grid step, where the oldest tokens go."""
    suffix = list(range(500, 540))
    prompts = [build_prompt(info, list(range(n)), suffix, max_tokens=1024, reserve=48)
               for n in range(1200, 1200 + 3 * PREFIX_TOKEN_GRID)]
    moves = sum(nxt[:len(prev)] != prev for prev, nxt in zip(prompts, prompts[1:]))
    assert moves <= 3
    assert all(len(p) <= 1024 - 48 for p in prompts)


def test_keep_prefix_edges():
    assert keep_prefix([1, 2, 3], 5) == [1, 2, 3]
    assert keep_prefix(list(range(10)), 4, grid=3) == [6, 7, 8, 9]
    assert keep_prefix(list(range(10)), 8, grid=4) == [4, 5, 6, 7, 8, 9]
    assert keep_prefix(list(range(10)), 0) == []
