"""Runtime edge cases found in review: the lock around the shared KV cache, token ids outside the vocabulary."""

from __future__ import annotations

import threading

import pytest

pytest.importorskip("torch")  # the tiny model fixture builds with torch

from models.runtime import POLICIES, DecodeOptions, EarlyExitRuntime  # noqa: E402

CODE = '''def wrap(text, width=70, **kwargs):
    """Wrap a single paragraph of text."""
    w = TextWrapper(width=width, **kwargs)
    return w.wrap(text)
'''


@pytest.fixture(scope="module")
def rt(tiny_lm_dir):
    return EarlyExitRuntime(tiny_lm_dir, threads=1)


def _opts(policy: str = "full", **kw) -> DecodeOptions:
    return DecodeOptions(**{"policy": policy, "max_new_tokens": 12, "single_line": False, "stop_threshold": 1.01,
                            "stop_repeats": 0, **kw})


@pytest.mark.parametrize("policy", POLICIES)
def test_reset_waits_for_the_decode_in_progress(rt, policy):
    """reset() emptied the shared cache without the runtime's lock: called while another thread decoded, the decode
    went on at position 0 without its prompt and wrote a suggestion no fresh decode gives."""
    ids = rt.tokenizer.encode(CODE)
    rt.reset()
    want = rt.generate(ids, _opts(policy))
    assert len(want.token_ids) >= 4
    inside, release = threading.Event(), threading.Event()
    calls = [0]

    def cancel() -> bool:
        calls[0] += 1
        if calls[0] == 2:  # part way through the suggestion
            inside.set()
            release.wait(5)
        return False

    got = {}
    rt.reset()
    decode = threading.Thread(target=lambda: got.setdefault("res", rt.generate(ids, _opts(policy), cancel)))
    decode.start()
    assert inside.wait(5)
    resetting = threading.Thread(target=rt.reset)
    resetting.start()
    resetting.join(0.3)
    blocked = resetting.is_alive()
    release.set()
    decode.join(10)
    resetting.join(10)
    assert (got["res"].token_ids, got["res"].stop_reason) == (want.token_ids, want.stop_reason)
    assert blocked, "reset() ran in the middle of a decode"
    assert rt.cache.length == 0  # the reset still happened, after the decode


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("bad", [-1, -512, "vocab", 10 ** 6])
def test_token_ids_outside_the_vocabulary_are_refused_and_leave_the_cache(rt, policy, bad):
    """A negative id read the embedding's last rows (numpy counts from the end) and decoded a suggestion for a
    prompt nobody wrote; one past the vocabulary failed with numpy's IndexError."""
    bad = rt.vocab_size if bad == "vocab" else bad
    ids = rt.tokenizer.encode(CODE)
    rt.reset()
    before = rt.generate(ids, _opts(policy))
    with pytest.raises(ValueError, match="vocabulary"):
        rt.generate([*ids, bad], _opts(policy))
    with pytest.raises(ValueError, match="vocabulary"):
        rt.generate([bad, *ids], _opts(policy))
    again = rt.generate(ids, _opts(policy))  # the cache kept what it held
    assert again.cached_tokens == len(ids) - 1
    assert (again.token_ids, again.stop_reason) == (before.token_ids, before.stop_reason)


def test_the_last_id_of_the_vocabulary_and_numpy_ints_still_decode(rt):
    import numpy as np

    ids = [*rt.tokenizer.encode(CODE), rt.vocab_size - 1]
    res = rt.generate([np.int64(i) for i in ids], _opts())
    assert res.prompt_tokens == len(ids)


def test_an_ngram_table_that_drafts_ids_past_the_vocabulary_is_refused_at_load(rt, tiny_lm_dir, tmp_path):
    """The table's continuations were never checked against the model: a damaged table loaded fine and every
    speculative decode it drafted for failed with numpy's IndexError."""
    import shutil

    import numpy as np

    from models.model_dir import ModelDirError
    from models.ngram_drafts import NGRAM_DRAFTS, NgramDrafts, context_hash

    model = tmp_path / "model"
    shutil.copytree(tiny_lm_dir, model)
    vocab = rt.vocab_size
    keys = np.sort(np.array([context_hash([t]) for t in range(vocab)], np.uint64))
    NgramDrafts({1: (keys, np.full(vocab, vocab + 7, np.uint16))}).save(model / NGRAM_DRAFTS, model / "tokenizer.json")
    with pytest.raises(ModelDirError, match=f"{NGRAM_DRAFTS}.*tact train ngram-drafts"):
        EarlyExitRuntime(model, threads=1).generate(rt.tokenizer.encode(CODE), _opts("speculative"))


def test_reset_inside_the_lock_a_caller_holds_does_not_deadlock(rt):
    """The acceptance scorer holds the runtime's lock to run forward() itself and resets the cache inside it."""
    done = threading.Event()

    def scorer() -> None:
        with rt.lock:
            rt.reset()
        done.set()

    threading.Thread(target=scorer, daemon=True).start()
    assert done.wait(5)
