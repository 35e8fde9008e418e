"""Token healing (models.healing): the prompt leaves the last tokens before the cursor out, and the suggestion's first
tokens write them again before anything new."""

from __future__ import annotations

import numpy as np
import pytest

from models.healing import TokenBytes, healed_logp
from models.runtime import DecodeOptions, DecodeResult, EarlyExitRuntime

PREFIX = "import os\n\n\ndef read_config(path):\n    with open(path) as handle:\n        return han"
SUFFIX = "\n\n\ndef main():\n    print(read_config('x'))\n"


@pytest.fixture(scope="module")
def rt(tiny_lm_dir) -> EarlyExitRuntime:
    return EarlyExitRuntime(tiny_lm_dir, threads=1)


def test_candidates_are_the_tokens_that_start_with_the_text_or_start_it(rt):
    table = rt.token_bytes
    assert table is not None  # the tiny model's tokenizer is byte-level
    for left in (b" ", b"han", b"    return", b"\n    ", b"(", b"\xc3"):
        got = set(table.candidates(left).tolist())
        want = {i for i, p in enumerate(table.pieces) if p and (p.startswith(left) or left.startswith(p) and p != left)}
        assert got == want, left
        assert rt.tokenizer.eos_id not in got and rt.tokenizer.fim_middle_id not in got  # special tokens write nothing
        assert {i for i in range(len(table.pieces)) if table.may_write(left, i)} == got  # one rule, checked per token


def test_healed_log_probabilities_are_renormalised_over_the_candidates():
    logp = np.log(np.array([0.5, 0.2, 0.2, 0.1]))
    healed = healed_logp(logp, np.array([1, 3]))
    assert np.isneginf(healed[[0, 2]]).all()
    assert np.allclose(np.exp(healed[[1, 3]]), [2 / 3, 1 / 3])


def test_take_back_gives_the_text_of_the_last_tokens_and_never_cuts_a_character(rt):
    table, info = rt.token_bytes, rt.tokenizer
    ids = info.encode(PREFIX)
    kept, heal = table.take_back(ids, 2)
    assert kept == ids[:-2] and info.decode(kept) + heal == PREFIX and heal
    assert table.take_back(ids, 0) == (ids, "")
    # a character written by two tokens is given back whole or not at all
    accented = info.encode("x = 'caf\u00e9")
    tail = accented[-1:]
    if table.pieces[tail[0]].decode("utf-8", "replace").endswith("\ufffd"):  # the tiny tokenizer splits the é
        kept, heal = table.take_back(accented, 1)
        assert heal == "" and kept == accented
    for n in range(1, 5):
        kept, heal = table.take_back(accented, n)
        assert info.decode(kept) + heal == "x = 'caf\u00e9"
    # the same with a table made by hand, where the é is surely written by two tokens
    hand = TokenBytes([b"", b"caf", b"\xc3", b"\xa9", b"x"])
    assert hand.take_back([1, 2, 3], 1) == ([1, 2, 3], "")  # half a character alone: nothing taken back
    assert hand.take_back([1, 2, 3], 2) == ([1], "\u00e9") and hand.take_back([1, 2, 3], 3) == ([], "caf\u00e9")
    assert hand.take_back([4, 0, 4], 2) == ([4, 0], "x")  # a special token is not given back
    special = [info.fim_middle_id, *info.encode("ab")]
    assert table.take_back(special, 3)[1] == info.decode(special[1:])  # special tokens are not given back


def test_the_healed_prompt_leaves_the_text_out_and_the_suggestion_writes_it_first(rt):
    whole = rt.completion_prompt(PREFIX, SUFFIX, reserve=12)
    healed = rt.completion_prompt(PREFIX, SUFFIX, reserve=12, heal_tokens=2)
    assert whole.heal == "" and whole.ids == rt.fim_prompt(PREFIX, SUFFIX, reserve=12)
    assert healed.heal and PREFIX.endswith(healed.heal)
    # the prompt ends with the prefix's tokens but the two given back, and keeps room for their text written again
    # a byte a token at most (the budget cuts this prompt's prefix)
    assert healed.ids[-8:] == rt.tokenizer.encode(PREFIX)[:-2][-8:]
    assert len(healed.ids) <= min(rt.context_tokens, rt.max_len - 2) - 12 - len(healed.heal.encode())
    for policy in ("full", "speculative", "dynamic"):
        opts = DecodeOptions(policy=policy, max_new_tokens=10, single_line=False, exit_threshold=0.0)
        res = rt.generate(healed.ids, opts, heal=healed.heal)
        assert res.heal == healed.heal and res.heal_left == b""
        written = rt.suggestion_text(res.token_ids)
        assert written.startswith(healed.heal) and res.text == written[len(healed.heal):], policy
        first = rt.token_bytes.pieces[res.token_ids[0]]
        heal = healed.heal.encode()
        assert first.startswith(heal) or heal.startswith(first)  # the first token was one of the candidates
        if policy == "dynamic":  # a token that writes text given back runs every layer
            assert res.layers[0] == rt.n_layers


def test_text_given_back_with_a_lone_surrogate_is_written_as_the_tokenizer_reads_it(rt):
    """Every other text the runtime takes reads a lone surrogate as U+FFFD; the text to write again raised
    UnicodeEncodeError under every policy."""
    ids = rt.tokenizer.encode("import os\n\ndef main():\n    ")
    for policy in ("full", "speculative", "dynamic"):
        rt.reset()
        res = rt.generate(ids, DecodeOptions(policy=policy, max_new_tokens=6, single_line=False), heal="x\udcff")
        assert res.heal == "x\ufffd", policy
        written = rt.suggestion_text(res.token_ids)
        assert written.startswith(res.heal[:len(written)]), (policy, written)  # the text given back first


def test_speculative_stays_identical_to_full_with_healing(rt, tiny_corpus_dir):
    from models.bench_early_exit import load_texts, make_samples, sample_prompt

    for s in make_samples(load_texts(tiny_corpus_dir), 12, seed=3):
        ids, heal = sample_prompt(rt, s, heal_tokens=2)
        full = rt.generate(ids, DecodeOptions(policy="full", max_new_tokens=12), heal=heal)
        spec = rt.generate(ids, DecodeOptions(policy="speculative", max_new_tokens=12), heal=heal)
        assert spec.token_ids == full.token_ids and spec.text == full.text and spec.logprobs == pytest.approx(full.logprobs)


def test_only_text_past_the_healed_part_ends_a_single_line_suggestion(rt):
    """A cursor at the start of an indented line gives back a line break: the token that writes it again must not
    end the suggestion as a line break of its own would."""
    table = rt.token_bytes
    token = next(i for i, p in enumerate(table.pieces) if p.startswith(b"\n") and len(p) > 1 and p.strip() == b"")
    opts = DecodeOptions(max_new_tokens=8, single_line=True)
    healing = DecodeResult(heal=table.pieces[token].decode(), heal_left=table.pieces[token])
    assert rt._emit(healing, opts, token, -0.1, rt.n_layers, 0.0) is False and healing.heal_left == b""
    plain = DecodeResult()
    assert rt._emit(plain, opts, token, -0.1, rt.n_layers, 0.0) is True and plain.stop_reason == "newline"


def test_text_stops_short_of_the_healed_part_is_no_suggestion(rt):
    """Stopped before the tokens wrote all of the text given back (Stop, the token limit), nothing is suggested."""
    assert rt.suggestion_text([], "han") == ""
    ids = rt.tokenizer.encode("ha")
    assert rt.suggestion_text(ids, "han") == ""
    assert rt.suggestion_text(rt.tokenizer.encode("handle.read()"), "han") == "dle.read()"


def test_the_served_completion_heals_as_its_setting_says(tiny_lm_dir):
    from lsp_server.config import Settings
    from lsp_server.services.completion import CompletionService
    from lsp_server.services.positions import LineIndex, Position
    from lsp_server.services.scheduler import CancelToken

    service = CompletionService()
    assert service.load(str(tiny_lm_dir), threads=1).ready
    text = PREFIX + SUFFIX
    line = PREFIX.count("\n")
    position = Position(line, len(PREFIX.rsplit("\n", 1)[1]))
    heals = {}
    for count in (0, 2):
        settings = Settings(token_healing=count, stop_threshold=1.01, max_new_tokens=8, multiline=True)
        ctx = service.context(LineIndex(text), "python", position, settings)
        s = service.complete(ctx, settings, CancelToken())
        heals[count] = s.result.heal
        written = service.runtime.suggestion_text(s.result.token_ids)
        assert s.raw == s.result.text and written == s.result.heal + s.raw
    assert heals[0] == "" and heals[2] and PREFIX.endswith(heals[2])


def test_the_scorer_scores_the_healed_tokens_as_decoding_chooses_them(tiny_lm_dir, tmp_path):
    from models.acceptance.scoring import SuggestionScorer

    text = "dle.read()"
    plain = SuggestionScorer(tiny_lm_dir, tmp_path, threads=1, heal_tokens=0).score(PREFIX, SUFFIX, text)
    healed = SuggestionScorer(tiny_lm_dir, tmp_path, threads=1, heal_tokens=2).score(PREFIX, SUFFIX, text)
    rt = EarlyExitRuntime(tiny_lm_dir, threads=1)
    heal = rt.completion_prompt(PREFIX, SUFFIX, reserve=8, heal_tokens=2).heal
    # decoding's path writes the text in at least as many tokens as the tokenizer's (never fewer: it is the
    # tokenizer's, or one it splits otherwise)
    assert len(plain["logprobs"]) >= len(rt.tokenizer.encode(text))
    assert heal and len(healed["logprobs"]) >= len(rt.tokenizer.encode(heal + text))
    assert len(healed["logprobs"]) == len(healed["stop_probs"])
    assert all(p <= 0 for p in healed["logprobs"])
    assert plain != healed  # two settings, two cache entries


def test_the_scorer_reads_the_log_probabilities_decoding_logged_for_its_suggestion(tmp_path):
    """Scored along the tokenizer's tokens, a suggestion decoding had written along others (here `'.','S','in','g'`
    where the tokenizer reads `'.','Sing'`; token healing's `' b','l','o','ck'` for `' block'`, the model's own split
    of a word) read other log-probabilities than serving logged for it: the acceptance model learnt from scores
    serving never gives it (12 of 78 suggestions shown at random held-out cursors were written so)."""
    from models.acceptance.scoring import SuggestionScorer
    from tests.lsp_support import model_under_test

    model = model_under_test()
    rt = EarlyExitRuntime(model, threads=1)
    prefix = "tokens = {\n    'root': [\n        (r'\\s+', Text),\n        (r'#.*$', Comment.Sing"
    prompt = rt.completion_prompt(prefix, "", reserve=12, heal_tokens=2)
    res = rt.generate(prompt.ids, DecodeOptions(max_new_tokens=12, single_line=True), heal=prompt.heal)
    tokenizers = rt.tokenizer.encode(prompt.heal + res.text)
    assert res.text and res.token_ids != tokenizers, "decoding took the tokenizer's path: no case for this test"
    scored = SuggestionScorer(model, tmp_path, threads=1, reserve=12).score(prefix, "", res.text)
    assert scored["logprobs"] == pytest.approx(res.logprobs, abs=1e-3)


def test_stop_counts_a_suggestions_tokens_from_the_first_that_writes_past_the_healed_text():
    """Before the suggestion's first new token Stop hides (tact.stopThreshold); it cuts (tact.stopInsideThreshold)
    only after it. A token that only wrote text given back is not the suggestion's first: replayed as decoding."""
    from models.bench_early_exit import truncate_at_stop

    res = DecodeResult(token_ids=[5, 6, 7], stop_probs=[0.5, 0.95, 0.99], heal="ab", heal_tokens=1)
    assert res.suggestion_tokens == 2
    assert truncate_at_stop(res, 0.99, inside=True, inside_threshold=0.9) == [5, 6]
    plain = DecodeResult(token_ids=[5, 6, 7], stop_probs=[0.5, 0.95, 0.99])
    assert truncate_at_stop(plain, 0.99, inside=True, inside_threshold=0.9) == [5]


def test_a_stop_threshold_above_1_turns_every_stop_off():
    """The setting says so (`tact.stopThreshold` > 1: Stop off); the cuts inside a suggestion went on at
    `tact.stopInsideThreshold`."""
    from models.bench_early_exit import truncate_at_stop

    res = DecodeResult(token_ids=[5, 6, 7], stop_probs=[0.5, 0.95, 0.99])
    assert truncate_at_stop(res, 1.01, inside=True, inside_threshold=0.9) == [5, 6, 7]
    opts = DecodeOptions(stop_threshold=1.01, stop_inside=True, stop_inside_threshold=0.9)
    assert all(opts.stop_threshold_at(n) > 1 for n in range(4))
