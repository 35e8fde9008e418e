"""Prompt lookup as a second opinion on the dynamic policy's exits (DecodeOptions.exit_lookup_threshold).

The decision is checked on the tiny random model, where the exit's token is known; decoding is checked on
the shipped default model, whose exits agree with prompt lookup on repetitive code often enough to see it.
"""

from __future__ import annotations

import numpy as np
import pytest

from models.runtime import DecodeOptions, EarlyExitRuntime
from tests.lsp_support import model_under_test

REPEATED = '''def area(shape):
    if shape.kind == "square":
        return shape.width * shape.width
    if shape.kind == "rect":
        return shape.width * shape.height
    if shape.kind == "circle":
        return 3.14159 * shape.radius * shape.radius
    if shape.kind == "'''


def lookup_guess(ids: list[int], ngram: int = 3) -> int | None:
    """Prompt lookup's guess for the token after ids, written out plainly: the token that followed the most
    recent earlier occurrence of the longest trailing n-gram (n <= ngram) that occurs earlier."""
    for n in range(ngram, 0, -1):
        for start in range(len(ids) - n - 1, -1, -1):
            if ids[start:start + n] == ids[-n:]:
                return ids[start + n]
    return None


def test_the_exit_decision_follows_the_guess(tiny_lm_dir):
    rt = EarlyExitRuntime(tiny_lm_dir, threads=1)
    ids = rt.tokenizer.encode("def wrap(text, width=70):\n    return text")
    rt.reset()
    rt.prefill(ids)
    layer = 1
    x = rt.forward([ids[-1]], len(ids) - 1, 0, layer)  # (1, D) after `layer`
    top = int(rt.exit_features(layer, x)[2][0].argmax())
    other = (top + 1) % rt.vocab_size
    lookup = DecodeOptions(policy="dynamic", exit_threshold=1.01, exit_lookup_threshold=0.0)
    assert rt._exits(layer, x, lookup, guess=top)[0]  # agrees: leaves at P(exit) >= 0
    assert not rt._exits(layer, x, lookup, guess=other)[0]  # disagrees: the plain threshold, 1.01
    assert not rt._exits(layer, x, lookup, guess=None)[0]
    veto = DecodeOptions(policy="dynamic", exit_threshold=0.0, exit_lookup_threshold=0.0, exit_lookup_veto=True)
    assert rt._exits(layer, x, veto, guess=top)[0]
    assert not rt._exits(layer, x, veto, guess=other)[0]  # vetoed
    assert rt._exits(layer, x, veto, guess=None)[0]  # no guess: the plain threshold, 0.0
    leaves, logp = rt._exits(layer, x, veto, guess=top)
    assert logp is not None and int(np.argmax(logp)) == top  # the exit's distribution comes back with the decision


@pytest.fixture(scope="module")
def default_rt():
    return EarlyExitRuntime(model_under_test(), threads=1)


def _decode(rt, ids, **kw):
    rt.reset()
    return rt.generate(ids, DecodeOptions(policy="dynamic", max_new_tokens=32, single_line=False, **kw))


def test_tokens_leave_early_only_as_the_guess(default_rt):
    """Plain exits closed (1.01), agreeing exits always open (0.0): a token that leaves early is lookup's guess."""
    rt = default_rt
    ids = rt.tokenizer.encode(REPEATED)
    res = _decode(rt, ids, exit_threshold=1.01, exit_lookup_threshold=0.0)
    early = [j for j in range(1, len(res.token_ids)) if res.layers[j] < rt.n_layers]
    assert early, res.layers
    for j in early:
        assert res.token_ids[j] == lookup_guess(ids + res.token_ids[:j])
    assert all(n == rt.n_layers for n in _decode(rt, ids, exit_threshold=1.01).layers)  # lookup off: none leave


def test_the_veto_holds_back_exits_that_disagree(default_rt):
    """Every exit open (0.0) but vetoed where its token is not the guess: a token that leaves early had no
    guess or was the guess; with a guess some tokens are held back."""
    rt = default_rt
    ids = rt.tokenizer.encode(REPEATED)
    free = _decode(rt, ids, exit_threshold=0.0)
    vetoed = _decode(rt, ids, exit_threshold=0.0, exit_lookup_threshold=0.0, exit_lookup_veto=True)
    agreeing_exits = 0
    for j in range(1, len(vetoed.token_ids)):
        if vetoed.layers[j] < rt.n_layers:
            guess = lookup_guess(ids + vetoed.token_ids[:j])
            assert guess is None or vetoed.token_ids[j] == guess
            agreeing_exits += guess is not None
    assert agreeing_exits >= 1  # the veto holds back only exits that disagree: one that agrees still leaves early
    assert np.mean(vetoed.layers[1:]) > np.mean(free.layers[1:])


def test_an_exit_is_held_back_only_where_stop_would_end_the_suggestion_there(tiny_lm_dir):
    """The exit rule held a token back wherever P(stop) reached the first token's Stop threshold, also inside a
    suggestion, where Stop cuts only at the inside threshold: the served dynamic skipped fewer layers than the bench
    (which runs without Stop) measured. It now reads the threshold in force at the token."""
    rt = EarlyExitRuntime(tiny_lm_dir, threads=1)
    ids = rt.tokenizer.encode("def wrap(text, width=70):\n    return text")
    rt.reset()
    rt.prefill(ids)
    layer = 1
    x = rt.forward([ids[-1]], len(ids) - 1, 0, layer)
    c = rt.controller
    p_stop = float(c.stop_probs(layer, x[0], rt.exit_features(layer, x)[0][0]) if c.exit_reads_head
                   else c.probs(layer, x[0])[2])  # as `Controller.leaves` reads it
    assert p_stop > 0
    below, above = p_stop / 2, 1.5  # a threshold P(stop) reaches, and one it does not
    served = DecodeOptions(policy="dynamic", exit_threshold=0.0, stop_threshold=below, stop_inside=True,
                           stop_inside_threshold=above)
    assert not rt._exits(layer, x, served, emitted=0)[0]  # Stop would hide the suggestion here: the deeper layers decide
    assert rt._exits(layer, x, served, emitted=3)[0]  # inside, Stop would not cut: it leaves
    no_cuts = DecodeOptions(policy="dynamic", exit_threshold=0.0, stop_threshold=below, stop_inside=False)
    assert rt._exits(layer, x, no_cuts, emitted=3)[0]
