"""A suggestion Stop ended says what held it back: the P(stop) before the token left out and the threshold it
reached (the largest P(stop) of the tokens written was all there was, and it lies under every threshold)."""

import pytest

pytest.importorskip("torch")

from models.fim import build_prompt  # noqa: E402
from models.runtime import POLICIES, DecodeOptions, EarlyExitRuntime  # noqa: E402


@pytest.fixture(scope="module")
def rt(tiny_lm_dir):
    return EarlyExitRuntime(tiny_lm_dir, threads=1)


def ids(rt):
    info = rt.tokenizer
    return build_prompt(info, info.encode("def wrap(text, width=70):\n    return "), info.encode("\n"),
                        max_tokens=rt.max_len, reserve=24)


@pytest.mark.parametrize("policy", POLICIES)
def test_stop_before_the_first_token_reports_its_probability_and_threshold(rt, policy):
    res = rt.generate(ids(rt), DecodeOptions(policy=policy, stop_threshold=0.0, max_new_tokens=8))
    assert res.stop_reason == "stop" and res.token_ids == []
    p_stop, threshold = res.stop_fired
    assert threshold == 0.0 and 0.0 <= p_stop <= 1.0


@pytest.fixture(scope="module")
def shipped():
    from tests.lsp_support import model_under_test

    return EarlyExitRuntime(model_under_test(), threads=1)


@pytest.mark.parametrize("policy", POLICIES)
def test_a_cut_inside_reports_the_inside_threshold(shipped, policy):
    """The shipped controller (the tiny model's random one says P(stop) 1.0 everywhere)."""
    rt = shipped
    opts = DecodeOptions(policy=policy, stop_threshold=1.0, stop_inside_threshold=0.0, max_new_tokens=8,
                         stop_repeats=0, single_line=False)
    res = rt.generate(ids(rt), opts)
    assert res.stop_reason == "stop" and len(res.token_ids) == 1
    assert res.stop_fired[1] == 0.0 and res.stop_probs[0] < 1.0


@pytest.mark.parametrize("policy", POLICIES)
def test_no_stop_reports_none(rt, policy):
    res = rt.generate(ids(rt), DecodeOptions(policy=policy, stop_threshold=2.0, max_new_tokens=6, stop_repeats=0,
                                             single_line=False))
    assert res.stop_reason != "stop" and res.stop_fired is None
