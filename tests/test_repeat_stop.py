"""A suggestion that starts repeating itself ends after the first copy of what repeats (models.runtime.repeat_start),
under every policy alike, so that speculative decoding stays identical to `full`."""

from __future__ import annotations

import pytest

from models.runtime import POLICIES, REPEAT_MIN_TOKENS, DecodeOptions, EarlyExitRuntime, repeat_start


def test_a_loop_is_found_once_it_is_long_enough():
    assert repeat_start([1, 2, 3, 4, 5, 6, 7, 8, 9], 3) is None
    assert repeat_start([5] * (REPEAT_MIN_TOKENS - 1), 3) is None  # too short
    assert repeat_start([5] * REPEAT_MIN_TOKENS, 3) == (0, 1)
    assert repeat_start([9] + [1, 2] * 4, 3) == (1, 2)
    assert repeat_start([7, 8] + [4, 5, 6] * 3, 3) == (2, 3)
    assert repeat_start([1, 2, 3, 4] * 2, 3) is None  # two copies are not a loop
    assert repeat_start([1, 2, 3, 4] * 3, 3) == (0, 4)
    assert repeat_start([1, 2, 3, 4] * 3, 4) is None  # copies is a setting


def test_the_run_start_is_found_backwards_and_the_unit_is_the_smallest():
    # 'x b a b a b a b a b': the run of period 2 starts at the first 'b'
    assert repeat_start([0, 2, 1, 2, 1, 2, 1, 2, 1, 2], 3) == (1, 2)
    assert repeat_start([3] * 12, 3) == (0, 1)  # also periodic with 2, 3 and 4: the smallest wins
    # a unit longer than the longest period looked for is not a loop
    assert repeat_start(list(range(13)) * 3, 3) is None


def test_only_the_end_counts():
    """A loop that ended earlier is not one now: the rule is checked after every token, so it would have fired."""
    assert repeat_start([1] * 8 + [2, 3], 3) is None


def _cut_offline(ids: list[int], copies: int) -> tuple[list[int], bool]:
    """What the rule makes of a token stream decoded without it: the first point where it fires, cut."""
    for n in range(1, len(ids) + 1):
        loop = repeat_start(ids[:n], copies)
        if loop is not None:
            return ids[:loop[0] + loop[1]], True
    return ids, False


@pytest.fixture(scope="module")
def rt(tiny_lm_dir):
    return EarlyExitRuntime(tiny_lm_dir, threads=1)


PROMPTS = ["value = items[index] + 1\n" * 3 + "value = items[", "def f(a, b, c, d):\n    return f(", "x = [0, 0, 0, 0,",
           "import os\nimport sys\n", "'''\n", "class A:\n    pass\n", "x = x + 1\n" * 4]


def test_decoding_with_the_rule_equals_decoding_without_it_then_cutting(rt):
    """Every policy, deterministic, cuts where the rule fires on the tokens it would have emitted anyway."""
    fired = dict.fromkeys(POLICIES, 0)
    for policy in POLICIES:
        for text in PROMPTS:
            ids = rt.tokenizer.encode(text)
            rt.reset()
            free = rt.generate(ids, DecodeOptions(policy=policy, max_new_tokens=40, single_line=False, stop_repeats=0))
            rt.reset()
            ruled = rt.generate(ids, DecodeOptions(policy=policy, max_new_tokens=40, single_line=False))
            want, loops = _cut_offline(free.token_ids, DecodeOptions().stop_repeats)
            assert ruled.token_ids == want
            assert len(ruled.layers) == len(ruled.logprobs) == len(ruled.stop_probs) == len(want)
            assert (ruled.stop_reason == "repeat") == loops
            fired[policy] += loops
    assert fired["full"] > 0  # the random test model loops: the rule was exercised
    assert fired["speculative"] == fired["full"]


def test_speculative_stays_identical_to_full_when_loops_are_cut(rt):
    for text in PROMPTS:
        ids = rt.tokenizer.encode(text)
        rt.reset()
        full = rt.generate(ids, DecodeOptions(policy="full", max_new_tokens=40, single_line=False))
        rt.reset()
        spec = rt.generate(ids, DecodeOptions(policy="speculative", max_new_tokens=40, single_line=False))
        assert (spec.token_ids, spec.stop_reason) == (full.token_ids, full.stop_reason)


def test_one_copy_is_refused_by_the_decoder_and_the_bench_command():
    """With one copy every token would end a suggestion (any token equal to one 8 back): refused at the source."""
    from lsp_server.cli import main

    for bad in (1, -1):
        with pytest.raises(ValueError, match="stop_repeats"):
            DecodeOptions(stop_repeats=bad)
    assert DecodeOptions(stop_repeats=0).stop_repeats == 0 and DecodeOptions(stop_repeats=2).stop_repeats == 2
    with pytest.raises(SystemExit) as exit_:
        main(["bench", "early-exit", "--stop-repeats", "1"])
    assert exit_.value.code == 2


def test_with_token_healing_a_loop_is_sought_in_the_suggestions_own_tokens():
    """The tokens that write the text given back are what the user typed, usually the unit that repeats: counted, the
    copy kept lay partly in that text (`x = [0, 0, 0` got nothing, a dangling ` +` after a string of '-' + '-').
    The shipped model, which goes on with such loops as the random test model does not."""
    from tests.lsp_support import model_under_test

    rt = EarlyExitRuntime(model_under_test(), threads=1)
    copies = DecodeOptions().stop_repeats
    fired = changed = 0
    for policy in POLICIES:
        for text in ["s = '-' + '-' + '-' + '-'", "x = [0, 0, 0, 0, 0, 0", "d = {'k': 1, 'k': 1", "y = y + y + y + y"]:
            prompt = rt.completion_prompt(text, "", reserve=40, heal_tokens=2)
            assert prompt.heal  # the tokens taken back
            rt.reset()
            free = rt.generate(prompt.ids, DecodeOptions(policy=policy, max_new_tokens=40, single_line=False,
                                                         stop_repeats=0), heal=prompt.heal)
            rt.reset()
            ruled = rt.generate(prompt.ids, DecodeOptions(policy=policy, max_new_tokens=40, single_line=False),
                                heal=prompt.heal)
            h = free.heal_tokens
            own, loops = _cut_offline(free.token_ids[h:], copies)
            assert ruled.token_ids == free.token_ids[:h] + own
            assert (ruled.stop_reason == "repeat") == loops
            fired += loops
            changed += _cut_offline(free.token_ids, copies)[0] != ruled.token_ids  # where counting them cut elsewhere
    assert fired > 0 and changed > 0
