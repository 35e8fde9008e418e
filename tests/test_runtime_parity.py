"""The onnxruntime early-exit runtime against the torch model it was exported from.

A tiny random model (tests/conftest.py: 4 layers, GQA) is exported once per session; the runtime
must reproduce torch's logits at every exit, its greedy decoding, and keep the lossless policies
lossless. Bad model directories must raise ModelDirError naming the path.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from models.fim import build_prompt  # noqa: E402
from models.model_dir import ModelDirError  # noqa: E402
from models.runtime import POLICIES, DecodeOptions, EarlyExitRuntime  # noqa: E402

TOL = 1e-4
CODE = '''def wrap(text, width=70, **kwargs):
    """Wrap a single paragraph of text."""
    w = TextWrapper(width=width, **kwargs)
    return w.wrap(text)
'''
REPEAT = "value = items[index] + 1\nvalue = items[index] + 1\nvalue = items[index] + 1\nvalue = items["


@pytest.fixture(scope="module")
def rt(tiny_lm_dir):
    return EarlyExitRuntime(tiny_lm_dir, threads=1)


@pytest.fixture(scope="module")
def shipped():
    from tests.lsp_support import model_under_test

    return EarlyExitRuntime(model_under_test(), threads=1)


@pytest.fixture(scope="module")
def model(tiny_lm_torch):
    return tiny_lm_torch


def prompts(rt) -> list[list[int]]:
    info = rt.tokenizer
    fim = build_prompt(info, info.encode(CODE[:60]), info.encode(CODE[90:]), max_tokens=rt.max_len, reserve=24)
    return [info.encode("def wrap(text, width"), info.encode("import os\nimport sys\n\nclass "), info.encode(CODE[:120]),
            info.encode(REPEAT), fim]


@torch.no_grad()
def torch_exit_logits(model, ids: list[int]) -> list[np.ndarray]:
    hidden = model(torch.tensor([ids]))
    return [model.exit_logits(i, h)[0].numpy() for i, h in enumerate(hidden)]


def ort_exit_logits(rt, ids: list[int], start: int = 0) -> list[np.ndarray]:
    """Per-layer logits of ids at positions start.., running one layer at a time through the runtime."""
    h = rt.embed[ids]
    out = []
    for layer in range(rt.n_layers):
        h = rt.forward(ids, start, layer, layer, hidden=h)
        out.append(rt.head(layer, h))
    return out


@torch.no_grad()
def torch_greedy(model, rt, ids: list[int], max_new: int, single_line: bool) -> list[int]:
    """Reference greedy decoding with the torch model: full recomputation every step."""
    L = model.cfg.num_hidden_layers
    eos = rt.tokenizer.eos_id
    seq, out = list(ids), []
    for _ in range(max_new):
        h = model(torch.tensor([seq]))[-1][0, -1]
        token = int(model.exit_logits(L - 1, h).argmax())
        if token == eos:
            break
        out.append(token)
        seq.append(token)
        if single_line and "\n" in rt.tokenizer.tok.decode([token], skip_special_tokens=False):
            break
    while out and rt.tokenizer.decode(out).endswith("\ufffd"):  # a suggestion never ends inside a character
        out.pop()
    return out


def generate(rt, ids, **kw):
    rt.reset()
    return rt.generate(ids, DecodeOptions(**kw))


# -- logits ------------------------------------------------------------------------------------
def test_model_uses_grouped_query_attention(rt):
    assert rt.n_kv == 2 and rt.n_heads == 4 and rt.n_layers == 4
    assert rt.controller.trained and rt.has_exit_heads


def test_logits_match_torch_at_every_exit(rt, model):
    ids = rt.tokenizer.encode(CODE)[:60]
    want = torch_exit_logits(model, ids)
    rt.reset()
    got = ort_exit_logits(rt, ids)
    rt.reset()
    for layer, (w, g) in enumerate(zip(want, got)):
        assert g.shape == w.shape
        assert np.abs(g - w).max() < TOL, f"exit {layer}: max diff {np.abs(g - w).max()}"
    # the exits differ from each other (exit norms are really used)
    assert np.abs(want[0] - want[-1]).max() > 1e-2


def test_logits_match_torch_with_incremental_kv_cache(rt, model):
    ids = rt.tokenizer.encode(CODE)[:40]
    want = torch_exit_logits(model, ids)
    rt.reset()
    got = [[g] for g in ort_exit_logits(rt, ids[:25])]  # prefill 25 tokens, then one at a time
    for pos in range(25, len(ids)):
        for layer, g in enumerate(ort_exit_logits(rt, [ids[pos]], start=pos)):
            got[layer].append(g)
    rt.reset()
    for layer in range(rt.n_layers):
        g = np.concatenate(got[layer])
        assert np.abs(g - want[layer]).max() < TOL, f"exit {layer}: max diff {np.abs(g - want[layer]).max()}"


def test_directory_loads_in_transformers_with_same_logits(tiny_lm_dir, model, rt):
    transformers = pytest.importorskip("transformers")
    hf = transformers.AutoModelForCausalLM.from_pretrained(str(tiny_lm_dir), dtype=torch.float32).eval()
    assert type(hf).__name__ == "LlamaForCausalLM"
    ids = rt.tokenizer.encode(CODE)[:50]
    with torch.no_grad():
        out = hf(torch.tensor([ids]), output_hidden_states=True)
        ours = model(torch.tensor([ids]))
        want = model.exit_logits(model.cfg.num_hidden_layers - 1, ours[-1])[0].numpy()
    assert np.abs(out.logits[0].numpy() - want).max() < TOL
    for layer in range(model.cfg.num_hidden_layers - 1):  # HF's last hidden state is after the final norm
        assert torch.allclose(out.hidden_states[layer + 1], ours[layer], atol=TOL)


# -- greedy decoding and policies --------------------------------------------------------------
@pytest.mark.parametrize("single_line", [False, True])
def test_full_policy_equals_torch_greedy(rt, model, single_line):
    for ids in prompts(rt):
        want = torch_greedy(model, rt, ids, 16, single_line)
        # torch's greedy loop has no loop stop (a random model repeats itself a lot)
        res = generate(rt, ids, policy="full", max_new_tokens=16, single_line=single_line, stop_repeats=0)
        assert res.token_ids == want
        assert res.layers == [rt.n_layers] * len(want)


def test_speculative_equals_full_with_prompt_lookup(rt):
    drafted = 0
    for ids in prompts(rt):
        full = generate(rt, ids, policy="full", max_new_tokens=32, single_line=False)
        spec = generate(rt, ids, policy="speculative", max_new_tokens=32, single_line=False)
        assert spec.token_ids == full.token_ids
        assert spec.stop_reason == full.stop_reason
        drafted += spec.drafted
    rep = generate(rt, rt.tokenizer.encode(REPEAT), policy="speculative", max_new_tokens=32, single_line=False)
    assert rep.drafted > 0 and drafted > 0


def _rows_per_pass(rt, monkeypatch) -> list[int]:
    """Record how many rows each full-depth pass (layer 0 to the last) of the runtime runs."""
    rows, forward = [], rt.forward

    def counting(ids, start, first=0, last=None, hidden=None):
        if first == 0 and (last is None or last == rt.n_layers - 1):
            rows.append(len(ids) if hidden is None else hidden.shape[0])
        return forward(ids, start, first, last, hidden)

    monkeypatch.setattr(rt, "forward", counting)
    return rows


@pytest.mark.parametrize("warm", [False, True])
def test_speculative_drafts_in_the_prompt_pass_and_stays_lossless(rt, monkeypatch, warm):
    """The prompt's own pass verifies a draft: a fresh prompt takes prompt lookup's draft along in its one pass;
    with all but the last prompt token cached, that token runs with its draft. Output stays `full`'s."""
    ids = rt.tokenizer.encode(REPEAT)
    full = generate(rt, ids, policy="full", max_new_tokens=16, single_line=False)
    rows = _rows_per_pass(rt, monkeypatch)
    results = {}
    for folded in (True, False):
        rt.reset()
        if warm:
            rt.prefill(ids[:-1])
        del rows[:]
        res = rt.generate(ids, DecodeOptions(policy="speculative", max_new_tokens=16, single_line=False,
                                             draft_in_prompt_pass=folded))
        assert res.token_ids == full.token_ids and res.stop_reason == full.stop_reason
        results[folded] = (list(rows), res)
    (rows_in, res_in), (rows_out, res_out) = results[True], results[False]
    new = 1 if warm else len(ids)
    assert rows_out[0] == new  # without: the prompt's pass runs the prompt alone
    assert rows_in[0] > new and res_in.lookup_drafted > res_out.lookup_drafted  # with: its draft rides along
    assert res_in.cached_tokens == res_out.cached_tokens == (len(ids) - 1 if warm else 0)


def test_without_layer_drafts_an_undraftable_step_runs_one_row(rt, monkeypatch):
    """draft_layers 0 (the default): where neither prompt lookup (2+ tokens) nor a table drafts, a step runs the
    one pending token through every layer, no exit head drafts, and the output stays `full`'s."""
    ids = rt.tokenizer.encode("import os\nimport sys\n\nclass ")
    full = generate(rt, ids, policy="full", max_new_tokens=12, single_line=False, lookup_ngram=0)
    heads = []
    head = rt.head
    monkeypatch.setattr(rt, "head", lambda layer, h, *weights: heads.append(layer) or head(layer, h, *weights))
    rows = _rows_per_pass(rt, monkeypatch)
    spec = generate(rt, ids, policy="speculative", max_new_tokens=12, single_line=False, lookup_ngram=0)
    assert DecodeOptions().draft_layers == 0
    assert spec.token_ids == full.token_ids and len(spec.token_ids) > 2
    assert spec.drafted == 0 and rows[0] == len(ids) and set(rows[1:]) == {1}
    assert set(heads) == {rt.n_layers - 1}  # only the last layer's head: no draft head ran
    layered = generate(rt, ids, policy="speculative", max_new_tokens=12, single_line=False, lookup_ngram=0,
                       draft_layers=2)
    assert layered.token_ids == full.token_ids and layered.drafted > 0


def test_copy_margin_keeps_lookup_drafts_and_zero_margin_is_lossless(rt):
    ids = rt.tokenizer.encode("value = compute(alpha, beta)\n" * 3 + "value = compute(")
    assert len(ids) + 24 < rt.max_len
    full = generate(rt, ids, policy="full", max_new_tokens=24, single_line=False)
    exact = generate(rt, ids, policy="speculative", max_new_tokens=24, single_line=False, copy_margin=0.0)
    assert exact.token_ids == full.token_ids
    copying = generate(rt, ids, policy="speculative", max_new_tokens=24, single_line=False, copy_margin=1e9)
    # an unbounded margin keeps every token prompt lookup drafts (but those past the token budget)
    assert copying.lookup_drafted > 0
    assert copying.lookup_accepted >= copying.lookup_drafted - DecodeOptions().lookup_tokens
    assert copying.lookup_accepted > exact.lookup_accepted or exact.lookup_accepted == exact.lookup_drafted


@pytest.mark.parametrize("draft_layers,draft_tokens,min_logprob", [(1, 4, None), (2, 3, None), (3, 1, None),
                                                                    (2, 4, float("-inf")), (2, 4, -0.7), (1, 3, 0.0)])
def test_speculative_equals_full_with_layer_drafting(rt, draft_layers, draft_tokens, min_logprob):
    """Lossless whatever the drafting: also when an unsure draft token ends the draft early (min_logprob 0: every
    draft is one token; -inf: never cut)."""
    extra = {} if min_logprob is None else {"draft_min_logprob": min_logprob}
    for ids in prompts(rt):
        full = generate(rt, ids, policy="full", max_new_tokens=24, single_line=False)
        # lookup_ngram=0 turns prompt lookup off: every draft comes from the first layers
        spec = generate(rt, ids, policy="speculative", max_new_tokens=24, single_line=False, lookup_ngram=0,
                        draft_layers=draft_layers, draft_tokens=draft_tokens, **extra)
        assert spec.token_ids == full.token_ids
        assert spec.drafted > 0 or len(full.token_ids) <= 1


@pytest.mark.parametrize("model", ["tiny", "shipped"])
def test_single_line_drafts_end_before_a_line_break_and_stay_lossless(rt, shipped, model, monkeypatch):
    """A single-line suggestion ends at its first line break, so a draft token holding one, and any after it, could
    only be rejected or cut: drafts stop before it and the whole model writes the break itself. Prompt lookup on
    repeated lines drafted past the line's end before."""
    runtime = rt if model == "tiny" else shipped
    verified, verify = [], runtime._verify

    def recording(base, h_all, draft, source, opts, res):
        verified.append((list(draft), res.heal_left != b""))
        return verify(base, h_all, draft, source, opts, res)

    monkeypatch.setattr(runtime, "_verify", recording)
    ids = runtime.tokenizer.encode(REPEAT.rsplit("\n", 1)[0] + "\nvalue = items[index] +")  # " 1" left on the line
    full = generate(runtime, ids, policy="full", max_new_tokens=24)
    drafted = {}
    for cut in (True, False):
        del verified[:]
        spec = generate(runtime, ids, policy="speculative", max_new_tokens=24, drafts_end_at_line_break=cut)
        assert (spec.token_ids, spec.stop_reason) == (full.token_ids, full.stop_reason)
        breaks = [t for draft, _ in verified for t in draft if "\n" in runtime.tokenizer.decode([t])]
        assert (not breaks) if cut else breaks  # the repeated lines' copies ran past the line end
        drafted[cut] = spec.drafted
    assert drafted[True] < drafted[False]
    lines = generate(runtime, ids, policy="speculative", max_new_tokens=24, single_line=False)
    assert lines.token_ids == generate(runtime, ids, policy="full", max_new_tokens=24, single_line=False).token_ids


def test_speculative_counts_its_passes_and_those_with_nothing_drafted(shipped):
    rt = shipped  # its drafts of the repeated line are accepted (the tiny model's are not)
    ids = rt.tokenizer.encode(REPEAT)
    plain = generate(rt, ids, policy="speculative", max_new_tokens=12, single_line=False, lookup_ngram=0,
                     ngram_drafts=False)
    assert plain.drafted == 0 and plain.undrafted_steps == plain.verify_steps == len(plain.token_ids)  # one a token
    copied = generate(rt, ids, policy="speculative", max_new_tokens=12, single_line=False)
    assert copied.token_ids == plain.token_ids and copied.draft_accepted > 0
    assert copied.undrafted_steps < copied.verify_steps < len(copied.token_ids)  # drafts let a pass emit several


def test_speculative_equals_full_with_stop_and_single_line(rt):
    for ids in prompts(rt):
        for stop, inside in ((0.5, True), (0.9, True), (0.5, False), (0.9, False)):
            kw = dict(stop_threshold=stop, stop_inside=inside, max_new_tokens=24)
            full = generate(rt, ids, policy="full", **kw)
            spec = generate(rt, ids, policy="speculative", **kw)
            assert (spec.token_ids, spec.stop_reason) == (full.token_ids, full.stop_reason)


def test_dynamic_without_exits_equals_full(rt):
    for ids in prompts(rt):
        full = generate(rt, ids, policy="full", max_new_tokens=24, single_line=False)
        dyn = generate(rt, ids, policy="dynamic", exit_threshold=1.01, max_new_tokens=24, single_line=False)
        assert dyn.token_ids == full.token_ids
        assert dyn.layers == full.layers


def test_dynamic_low_threshold_uses_fewer_layers(rt):
    L = rt.n_layers
    for ids in prompts(rt):
        dyn = generate(rt, ids, policy="dynamic", exit_threshold=0.0, max_new_tokens=16, single_line=False)
        assert len(dyn.token_ids) > 1
        assert dyn.layers[0] == L  # the first token comes from the prefill, through every layer
        assert all(n == 2 for n in dyn.layers[1:])  # then every token leaves after layer index 1 (min_exit_layer)
        assert np.mean(dyn.layers) < L
    # a middle threshold mixes exits (the kv_fill graphs run) and still decodes
    mixed = [n for ids in prompts(rt)
             for n in generate(rt, ids, policy="dynamic", exit_threshold=0.5, max_new_tokens=16, single_line=False).layers]
    assert min(mixed) < L


# -- KV cache reuse ------------------------------------------------------------------------------
@pytest.mark.parametrize("policy", POLICIES)
def test_prefix_cache_reuse_gives_fresh_output(tiny_lm_dir, rt, policy):
    a = rt.tokenizer.encode(CODE[:80])
    b = rt.tokenizer.encode(CODE[:110])
    assert b[:len(a) - 2] == a[:len(a) - 2]
    rt.reset()
    rt.generate(a, DecodeOptions(policy=policy, max_new_tokens=12))
    again = rt.generate(b, DecodeOptions(policy=policy, max_new_tokens=12))
    assert again.cached_tokens > 0
    fresh = EarlyExitRuntime(tiny_lm_dir, threads=1).generate(b, DecodeOptions(policy=policy, max_new_tokens=12))
    assert fresh.cached_tokens == 0
    assert again.token_ids == fresh.token_ids
    same = rt.generate(b, DecodeOptions(policy=policy, max_new_tokens=12))
    assert same.cached_tokens == len(b) - 1 and same.token_ids == fresh.token_ids


# -- Stop, cancellation, odd prompts -------------------------------------------------------------
@pytest.mark.parametrize("policy", POLICIES)
def test_stop_threshold_zero_emits_nothing(rt, policy):
    res = generate(rt, rt.tokenizer.encode(CODE[:100]), policy=policy, stop_threshold=0.0)
    assert res.token_ids == [] and res.text == ""
    assert res.stop_reason == "stop"


@pytest.mark.parametrize("policy", POLICIES)
def test_cancellation(rt, policy):
    res = generate(rt, rt.tokenizer.encode(CODE[:100]), policy=policy, single_line=False)
    assert len(res.token_ids) > 2
    rt.reset()
    cancelled = rt.generate(rt.tokenizer.encode(CODE[:100]), DecodeOptions(policy=policy, single_line=False),
                            should_cancel=lambda: True)
    assert cancelled.stop_reason == "cancelled"
    assert len(cancelled.token_ids) <= 1


@pytest.mark.parametrize("policy", POLICIES)
def test_odd_prompts_do_not_crash(rt, policy):
    info = rt.tokenizer
    long_text = (CODE + REPEAT) * 8
    long_ids = info.encode(long_text)
    assert len(long_ids) > rt.max_len
    for ids in ([], info.encode("   \n\t  \n"), long_ids):
        res = generate(rt, ids, policy=policy, max_new_tokens=16, single_line=False)
        assert res.stop_reason in ("eos", "newline", "repeat", "max_tokens", "context")
        assert len(res.token_ids) <= 16
        assert res.prompt_tokens == min(max(len(ids), 1), rt.max_len - 2)  # what it read: [] reads <|endoftext|>
    if policy != "dynamic":  # lossless at the context limit too (prompt lookup drafts a lot here)
        full = generate(rt, long_ids, policy="full", max_new_tokens=16, single_line=False)
        res = generate(rt, long_ids, policy=policy, max_new_tokens=16, single_line=False)
        assert res.token_ids == full.token_ids and res.stop_reason == full.stop_reason


def test_a_suggestion_cut_mid_character_ends_before_it_and_speculative_stays_full(shipped):
    """Byte-level tokens split a character; a cut (here the token limit) between them showed U+FFFD. The
    shipped model writes these characters (a tiny random model's bytes are anyone's guess)."""
    rt = shipped
    prefix = '# 日本語のコメント 🙂🙂🙂\nmsg = "こんにちは世界 🙂🙂🙂 日本語のコメント'
    cut = 0
    for limit in range(1, 9):
        ids = rt.fim_prompt(prefix, '"\n', limit)
        out = {}
        for policy in ("full", "speculative"):
            res = out[policy] = generate(rt, ids, policy=policy, max_new_tokens=limit)
            assert "\ufffd" not in res.text and res.text == rt.tokenizer.decode(res.token_ids)
            assert len(res.token_ids) == len(res.logprobs) == len(res.layers) == len(res.stop_probs) <= limit
        assert (out["full"].token_ids, out["full"].stop_reason) == (out["speculative"].token_ids,
                                                                    out["speculative"].stop_reason)
        cut += len(out["full"].token_ids) < limit
    assert cut  # some limits fell inside a character


@pytest.mark.parametrize("policy", POLICIES)
def test_zero_new_tokens_emits_nothing_and_leaves_the_cache(rt, policy):
    ids = rt.tokenizer.encode(CODE[:100])
    rt.reset()
    res = rt.generate(ids, DecodeOptions(policy=policy, max_new_tokens=0))
    assert (res.token_ids, res.text, res.logprobs, res.layers, res.stop_probs) == ([], "", [], [], [])
    assert res.stop_reason == "max_tokens" and rt.cache.length == 0


def test_a_fim_prompt_too_long_for_the_cache_loses_the_start_of_its_prefix_not_its_markers(rt):
    """generate keeps max_len - 2 prompt tokens: cut from the front, a FIM prompt lost <|fim_suffix|>, the suffix
    and <|fim_middle|>, and prompt_tokens still gave the length before the cut."""
    info = rt.tokenizer
    long_prefix, suffix = info.encode((CODE + REPEAT) * 4), info.encode("\n    return width\n")
    ids = build_prompt(info, long_prefix, suffix, max_tokens=4 * rt.max_len, reserve=0)
    assert len(ids) > rt.max_len
    for policy in POLICIES:
        res = generate(rt, ids, policy=policy, max_new_tokens=4)
        read = rt.cache.ids[:res.prompt_tokens]
        assert res.prompt_tokens <= rt.max_len - 2
        assert read[:len(suffix) + 2] == [info.fim_suffix_id, *suffix, info.fim_middle_id]
        assert long_prefix[-(len(read) - len(suffix) - 2):] == read[len(suffix) + 2:]  # the prefix's end
    # fim_prompt leaves what generate keeps, even where the trained context is the whole cache
    assert rt.context_tokens == rt.max_len
    text = (CODE + REPEAT) * 4
    sizes = []
    for end in range(200, len(text), 5):  # prefixes that fill the budget to the token, and that fall short of it
        built = rt.fim_prompt(text[:end], "\n    return width\n", reserve=0)
        assert built[0] == info.fim_suffix_id
        sizes.append(len(built))
    assert max(sizes) == rt.max_len - 2
    assert generate(rt, built, max_new_tokens=2).prompt_tokens == len(built)


# -- bad model directories -----------------------------------------------------------------------
def _copy(tiny_lm_dir, tmp_path):
    d = tmp_path / "model"
    shutil.copytree(tiny_lm_dir, d)
    return d


def test_missing_directory(tmp_path):
    with pytest.raises(ModelDirError, match=str(tmp_path / "nope")):
        EarlyExitRuntime(tmp_path / "nope")


def test_missing_safetensors(tiny_lm_dir, tmp_path):
    d = _copy(tiny_lm_dir, tmp_path)
    (d / "model.safetensors").unlink()
    with pytest.raises(ModelDirError, match="model.safetensors") as err:
        EarlyExitRuntime(d)
    assert str(d) in str(err.value)


def test_truncated_safetensors(tiny_lm_dir, tmp_path):
    d = _copy(tiny_lm_dir, tmp_path)
    path = d / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelDirError, match="truncated") as err:
        EarlyExitRuntime(d)
    assert str(path) in str(err.value)


def test_corrupt_onnx_graph(tiny_lm_dir, tmp_path):
    d = _copy(tiny_lm_dir, tmp_path)
    path = d / "decoder_layer_1.onnx"
    path.write_bytes(b"\x08\x07garbage, not a protobuf graph" * 3)
    with pytest.raises(ModelDirError) as err:
        EarlyExitRuntime(d)
    assert str(path) in str(err.value)


def test_kv_fill_graphs_load_when_dynamic_first_exits(tiny_lm_dir, tmp_path):
    rt = EarlyExitRuntime(tiny_lm_dir, threads=1)
    ids = rt.tokenizer.encode(CODE[:100])
    generate(rt, ids, policy="full", max_new_tokens=8)
    generate(rt, ids, policy="speculative", max_new_tokens=8)
    assert rt.kv_fill_sessions == {}  # the default policies never load them
    dyn = generate(rt, ids, policy="dynamic", exit_threshold=0.0, max_new_tokens=8, single_line=False)
    assert min(dyn.layers) < rt.n_layers and rt.kv_fill_sessions
    # A missing graph is still found at load; a corrupt one when it is first needed, naming the file.
    d = _copy(tiny_lm_dir, tmp_path)
    (d / "kv_fill_1.onnx").unlink()
    with pytest.raises(ModelDirError, match="kv_fill_1.onnx"):
        EarlyExitRuntime(d)
    (d / "kv_fill_1.onnx").write_bytes(b"\x08\x07garbage, not a protobuf graph" * 3)
    rt = EarlyExitRuntime(d, threads=1)
    with pytest.raises(ModelDirError, match="kv_fill_1.onnx"):
        generate(rt, ids, policy="dynamic", exit_threshold=0.0, max_new_tokens=8, single_line=False)


def _filled_and_layer_kv(rt, exit_layer: int, ids: list[int], layer_input=None):
    """KV that exit `exit_layer`'s kv_fill graph writes for the hidden state h of two tokens leaving there, and what
    each later layer j itself writes when run on h (or on ``layer_input(j, h)``): lists of (k, v) at those
    positions, (Hkv, 2, hd)."""
    rt.reset()
    rt.prefill(ids[:-2])
    pos = rt.cache.length
    at = rt._positions(pos, 2)
    h = rt.forward(ids[-2:], pos, 0, exit_layer)  # (2, D) leaving after exit_layer
    rt._fill_kv(exit_layer, h, pos, at)
    later = range(exit_layer + 1, rt.n_layers)
    filled = [(rt.cache.k[j][0, :, pos:pos + 2].copy(), rt.cache.v[j][0, :, pos:pos + 2].copy()) for j in later]
    for j in later:
        rt._layer(j, h if layer_input is None else layer_input(j, h), at)  # the layer's own K/V of its input, in place
    own = [(rt.cache.k[j][0, :, pos:pos + 2].copy(), rt.cache.v[j][0, :, pos:pos + 2].copy()) for j in later]
    rt.reset()
    return filled, own


def _stacked_fill(rt, exit_layer: int) -> bool:
    """Whether exit `exit_layer`'s loaded kv_fill graph gives every later layer in one (keys, values) pair."""
    return [o.name for o in rt.kv_fill_sessions[exit_layer].get_outputs()] == ["keys", "values"]


def test_kv_fill_writes_what_each_skipped_layer_would_from_the_exit_state(tiny_lm_dir):
    rt = EarlyExitRuntime(tiny_lm_dir, threads=1)
    ids = rt.tokenizer.encode(CODE[:100])
    for exit_layer in range(rt.n_layers - 1):
        filled, own = _filled_and_layer_kv(rt, exit_layer, ids)
        assert _stacked_fill(rt, exit_layer)  # tact export writes one stacked product per exit
        for (fk, fv), (ok, ov) in zip(filled, own):
            assert np.abs(fk).max() > 0 and np.abs(fv).max() > 0
            np.testing.assert_allclose(fk, ok, atol=1e-5)
            np.testing.assert_allclose(fv, ov, atol=1e-5)


def test_kv_fill_graphs_exported_per_layer_still_serve(tiny_lm_dir, tmp_path):
    """Directories exported before the stacked kv_fill graphs (k_j, v_j per later layer) decode the same."""
    import onnx
    from onnx import helper

    from models.export import FLOAT, GraphBuilder, WeightRefs, _kv

    d = _copy(tiny_lm_dir, tmp_path)
    cfg = json.loads((d / "config.json").read_text())
    D, H = cfg["hidden_size"], cfg["num_attention_heads"]
    Hkv, hd = cfg.get("num_key_value_heads") or H, cfg.get("head_dim") or D // H
    vi = helper.make_tensor_value_info
    for exit_layer in range(cfg["num_hidden_layers"] - 1):
        b, outputs = GraphBuilder(WeightRefs(d)), []
        for j in range(exit_layer + 1, cfg["num_hidden_layers"]):
            xn = b.rms_norm("hidden", b.weight(f"model.layers.{j}.input_layernorm.weight"), cfg.get("rms_norm_eps", 1e-6))
            k, v = _kv(b, xn, f"model.layers.{j}.self_attn", "cos", "sin", Hkv, hd)
            b.nodes += [helper.make_node("Identity", [k], [f"k_{j}"]), helper.make_node("Identity", [v], [f"v_{j}"])]
            outputs += [vi(f"k_{j}", FLOAT, ["T", Hkv, hd]), vi(f"v_{j}", FLOAT, ["T", Hkv, hd])]
        graph = b.model(f"kv_fill_{exit_layer}", [vi("hidden", FLOAT, ["T", D]), vi("cos", FLOAT, ["T", hd]),
                                                  vi("sin", FLOAT, ["T", hd])], outputs)
        onnx.save(graph, str(d / f"kv_fill_{exit_layer}.onnx"))
    old, new = EarlyExitRuntime(d, threads=1), EarlyExitRuntime(tiny_lm_dir, threads=1)
    ids = old.tokenizer.encode(CODE[:100])
    filled, own = _filled_and_layer_kv(old, 0, ids)
    assert 0 in old.kv_fill_sessions and not _stacked_fill(old, 0)
    for (fk, fv), (ok, ov) in zip(filled, own):
        np.testing.assert_allclose(fk, ok, atol=1e-5)
        np.testing.assert_allclose(fv, ov, atol=1e-5)
    for ids in prompts(new):
        a = generate(old, ids, policy="dynamic", exit_threshold=0.5, max_new_tokens=16, single_line=False)
        b = generate(new, ids, policy="dynamic", exit_threshold=0.5, max_new_tokens=16, single_line=False)
        assert (a.token_ids, a.layers) == (b.token_ids, b.layers)


# -- learned KV fill ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def learned_fill_dir(tiny_lm_dir, tmp_path_factory):
    """The tiny model with learned KV fill maps (`tact train controller --kv-fill-only`, which re-exports)."""
    from models.train_lm import train_controller
    from tests.conftest import write_calib_corpus

    root = tmp_path_factory.mktemp("learned_fill")
    d = root / "model"
    shutil.copytree(tiny_lm_dir, d)
    train_controller(d, write_calib_corpus(root / "corpus"), batches=8, batch_size=2, only="kv_fill", log=lambda m: None)
    return d


def _maps(d) -> dict:
    from models.model_dir import EXIT_HEADS, load_tensors

    return {k: v for k, v in load_tensors(d / EXIT_HEADS).items() if k.startswith("kv_fill_maps.")}


def test_fit_kv_fill_maps_recovers_a_linear_relation_between_layers():
    from models.train_lm import fit_kv_fill_maps

    gen = torch.Generator().manual_seed(0)
    N, D = 2000, 16
    h0 = torch.randn(N, D, generator=gen)
    a1, a2 = torch.randn(D, D, generator=gen) / 4, torch.randn(D, D, generator=gen) / 4
    b1, b2 = torch.randn(D, generator=gen), torch.randn(D, generator=gen)
    hidden = [h0, h0 @ a1 + b1, h0 @ a2 + b2, torch.randn(N, D, generator=gen)]  # outputs of layers 0..3
    maps, record = fit_kv_fill_maps(hidden, [0, 1, 2], ridge=1e-6)
    assert set(maps) == {f"kv_fill_maps.{e}.{p}" for e in (0, 1) for p in ("weight", "bias")}  # exit 2: layer 3 reads h
    assert maps["kv_fill_maps.0.weight"].shape == (2, D, D) and maps["kv_fill_maps.1.bias"].shape == (1, D)
    torch.testing.assert_close(maps["kv_fill_maps.0.weight"], torch.stack([a1, a2]), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(maps["kv_fill_maps.0.bias"], torch.stack([b1, b2]), atol=1e-4, rtol=1e-4)
    pred = hidden[1] @ maps["kv_fill_maps.1.weight"][0] + maps["kv_fill_maps.1.bias"][0]  # layer 3's input from layer 1's output
    torch.testing.assert_close(pred, hidden[2], atol=1e-3, rtol=1e-3)
    assert all(share > 0.999 for shares in record["explained"].values() for share in shares)
    assert record["test_tokens"] == 400 and record["fit_tokens"] == 1600


def test_learned_kv_fill_writes_what_each_skipped_layer_would_from_its_predicted_input(learned_fill_dir):
    maps = _maps(learned_fill_dir)
    assert set(maps) == {f"kv_fill_maps.{e}.{p}" for e in (0, 1) for p in ("weight", "bias")}  # open exits, L = 4
    assert json.loads((learned_fill_dir / "graphs.json").read_text())["kv_fill_maps"]
    learned = EarlyExitRuntime(learned_fill_dir, threads=1)
    ids = learned.tokenizer.encode(CODE[:100])
    for exit_layer in range(learned.n_layers - 1):
        def predicted(j, h, e=exit_layer):  # layer j's input as the maps predict it; layer e + 1 reads h itself
            if j == e + 1:
                return h
            return h @ maps[f"kv_fill_maps.{e}.weight"][j - e - 2] + maps[f"kv_fill_maps.{e}.bias"][j - e - 2]

        filled, own = _filled_and_layer_kv(learned, exit_layer, ids, predicted)
        assert _stacked_fill(learned, exit_layer)
        for (fk, fv), (ok, ov) in zip(filled, own):
            np.testing.assert_allclose(fk, ok, atol=1e-4)
            np.testing.assert_allclose(fv, ov, atol=1e-4)
        if exit_layer == 0:  # the maps change what layers 2 and 3 get: not the plain fill
            _, from_h = _filled_and_layer_kv(learned, exit_layer, ids)
            assert np.abs(filled[-1][0] - from_h[-1][0]).max() > 1e-2


def test_learned_kv_fill_is_closer_to_the_kv_the_skipped_layers_really_hold(learned_fill_dir, tiny_lm_dir):
    """On text the maps were not fitted on, the learned fill's KV is nearer the full network's than the plain fill's."""
    learned, plain = EarlyExitRuntime(learned_fill_dir, threads=1), EarlyExitRuntime(tiny_lm_dir, threads=1)
    ids = learned.tokenizer.encode(CODE + REPEAT)[:60]  # not in the calibration corpus
    T = len(ids)
    learned.reset()
    learned.prefill(ids + [0])  # the full network's KV for every position of ids
    true = [(learned.cache.k[j][0, :, :T].copy(), learned.cache.v[j][0, :, :T].copy()) for j in range(learned.n_layers)]
    for exit_layer in (0, 1):
        errors = {}
        for name, rt in (("learned", learned), ("plain", plain)):
            rt.reset()
            h = rt.forward(ids, 0, 0, exit_layer)  # (T, D) as if every token left after exit_layer
            rt._fill_kv(exit_layer, h, 0, rt._positions(0, T))
            errors[name] = sum(float(np.square(rt.cache.k[j][0, :, :T] - true[j][0]).sum() +
                                     np.square(rt.cache.v[j][0, :, :T] - true[j][1]).sum())
                               for j in range(exit_layer + 2, rt.n_layers))
        assert errors["learned"] < errors["plain"], (exit_layer, errors)


def test_kv_fill_graphs_whose_maps_moved_are_refused_until_exported_again(learned_fill_dir, tmp_path):
    from safetensors.numpy import load_file, save_file

    from models.export import export_model_dir

    d = _copy(learned_fill_dir, tmp_path)
    tensors = load_file(str(d / "exit_heads.safetensors"))
    del tensors["kv_fill_maps.1.weight"], tensors["kv_fill_maps.1.bias"]  # a refit that closed exit 1: offsets move
    save_file(tensors, str(d / "exit_heads.safetensors"))
    with pytest.raises(ModelDirError, match=r"exit_heads.safetensors.*tact export"):
        EarlyExitRuntime(d, threads=1)
    export_model_dir(d)
    rt = EarlyExitRuntime(d, threads=1)
    filled, own = _filled_and_layer_kv(rt, 1, rt.tokenizer.encode(CODE[:100]))  # exit 1 fills from h again
    for (fk, fv), (ok, ov) in zip(filled, own):
        np.testing.assert_allclose(fk, ok, atol=1e-5)
        np.testing.assert_allclose(fv, ov, atol=1e-5)
    for ids in prompts(rt):
        assert generate(rt, ids, policy="dynamic", exit_threshold=0.5, max_new_tokens=8, single_line=False).token_ids


def test_learned_kv_fill_maps_load_into_torch_and_save_again(learned_fill_dir):
    from models.architecture import load_torch_model

    model = load_torch_model(learned_fill_dir)
    maps = _maps(learned_fill_dir)
    assert set(model.kv_fill_maps) == set(maps)
    saved = model.exit_state_dict()
    for name, value in maps.items():
        np.testing.assert_array_equal(saved[name].numpy(), value)


def test_graphs_for_another_kv_cache_layout_are_refused(tiny_lm_dir, tmp_path):
    d = _copy(tiny_lm_dir, tmp_path)
    index = json.loads((d / "graphs.json").read_text())
    del index["kv_cache"]  # graphs written before the cache was one shared buffer per layer
    (d / "graphs.json").write_text(json.dumps(index))
    with pytest.raises(ModelDirError, match="re-run `tact export") as err:
        EarlyExitRuntime(d)
    assert str(d / "graphs.json") in str(err.value)


def test_layers_extend_the_cache_buffers_in_place(tiny_lm_dir):
    rt = EarlyExitRuntime(tiny_lm_dir, threads=1)
    ids = rt.tokenizer.encode(CODE[:80])
    rt.prefill(ids)  # Python never writes these buffers on this path: only the graphs, through the binding
    n = rt.cache.length
    for layer in range(rt.n_layers):
        k, v = rt.cache.k[layer][0], rt.cache.v[layer][0]  # (Hkv, S, hd)
        for buf in (k, v):  # every cached position written, nothing after it
            assert np.abs(buf[:, :n]).max(axis=-1).min() > 0 and not buf[:, n:].any()


def _edit_json(path, change):
    obj = json.loads(path.read_text())
    change(obj)
    path.write_text(json.dumps(obj))


FIX_EXPORT = "re-run `tact export {d}`"  # derived files: written again from the weights
FIX_RESTORE = "(re-download or re-train it)"  # files the weights came with: nothing here can write them again


@pytest.mark.parametrize("name, corrupt, says, fix, also_named", [
    ("graphs.json", lambda p: p.write_text('{"decoder_layers": ['), "not valid JSON", FIX_EXPORT, ()),
    ("graphs.json", lambda p: p.write_text("[]"), "not a JSON object", FIX_EXPORT, ()),
    ("graphs.json", lambda p: _edit_json(p, lambda g: g.pop("kv_fill")), "lacks the decoder_layers", FIX_EXPORT, ()),
    ("graphs.json", lambda p: _edit_json(p, lambda g: g["decoder_layers"].pop()), "lists 3 decoder layer graphs",
     FIX_EXPORT, ("config.json",)),
    ("config.json", lambda p: p.write_text("[1, 2]"), "not a JSON object", FIX_RESTORE, ()),
    ("config.json", lambda p: _edit_json(p, lambda c: c.pop("num_hidden_layers")), "integer num_hidden_layers",
     FIX_RESTORE, ()),
    ("config.json", lambda p: _edit_json(p, lambda c: c.update(num_hidden_layers=5)), "num_hidden_layers 5", FIX_EXPORT,
     ("graphs.json",)),
    ("config.json", lambda p: _edit_json(p, lambda c: c.update(num_hidden_layers=3)), "num_hidden_layers 3", FIX_EXPORT,
     ("graphs.json",)),
    ("tact.json", lambda p: p.write_text('{"name": "tiny'), "not valid JSON", FIX_RESTORE, ()),
])
def test_a_corrupt_index_config_or_record_is_refused_naming_the_file_and_the_fix(tiny_lm_dir, tmp_path, name,
                                                                                 corrupt, says, fix, also_named):
    """The message names the file at fault by its path, and the fix for that file. It once only had to name the
    directory (every message does, in its `tact export` command) and graphs.json or the file: a config.json or
    tact.json error that blamed graphs.json, or told to re-export a file no export writes, passed."""
    d = _copy(tiny_lm_dir, tmp_path)
    corrupt(d / name)
    with pytest.raises(ModelDirError, match=says) as err:
        EarlyExitRuntime(d, threads=1)
    message = str(err.value)
    assert str(d / name) in message
    # no other file of the directory is named in its place (a disagreement names the file it disagrees with too)
    assert sorted(p.name for p in d.iterdir() if str(p) in message) == sorted((name, *also_named))
    wrong_fix = FIX_RESTORE if fix == FIX_EXPORT else FIX_EXPORT
    assert fix.format(d=d) in message and wrong_fix.format(d=d) not in message


@pytest.mark.parametrize("change", [{"num_key_value_heads": 1}, {"head_dim": 8}, {"num_key_value_heads": 4}])
def test_a_config_that_disagrees_with_the_exported_graphs_is_refused_at_load(tiny_lm_dir, tmp_path, change):
    """The KV cache is shaped from config.json: graphs exported for other KV heads or head size loaded fine and then
    failed every decode inside onnxruntime."""
    d = _copy(tiny_lm_dir, tmp_path)
    _edit_json(d / "config.json", lambda c: c.update(change))
    with pytest.raises(ModelDirError, match=r"past_k.*re-run `tact export") as err:
        EarlyExitRuntime(d, threads=1)
    assert str(d / "decoder_layer_0.onnx") in str(err.value)


def test_a_graph_that_is_no_decoder_layer_is_refused_at_load(tiny_lm_dir, tmp_path):
    d = _copy(tiny_lm_dir, tmp_path)
    shutil.copy(d / "exit_head.onnx", d / "decoder_layer_2.onnx")
    with pytest.raises(ModelDirError, match=r"not a decoder layer graph.*tact export") as err:
        EarlyExitRuntime(d, threads=1)
    assert str(d / "decoder_layer_2.onnx") in str(err.value)


def test_missing_exit_heads_are_called_missing(learned_fill_dir, tmp_path):
    d = _copy(learned_fill_dir, tmp_path)
    (d / "exit_heads.safetensors").unlink()
    with pytest.raises(ModelDirError, match="is missing") as err:
        EarlyExitRuntime(d, threads=1)
    assert str(d / "exit_heads.safetensors") in str(err.value) and "not the one" not in str(err.value)


def _safetensors(header, data: bytes = b"") -> bytes:
    import struct

    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


@pytest.mark.parametrize("header", [
    [],
    {"a": {"dtype": "F32", "shape": [2]}},
    {"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}},
    {"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}},
    {"a": {"dtype": "F32", "shape": "x", "data_offsets": [0, 8]}},
    {"a": "F32"},
])
def test_a_corrupt_safetensors_header_is_refused_naming_the_file(tmp_path, header):
    from models.model_dir import load_tensors

    path = tmp_path / "bad.safetensors"
    path.write_bytes(_safetensors(header, b"\0" * 8))
    with pytest.raises(ModelDirError, match="corrupt safetensors header.*re-download") as err:
        load_tensors(path)
    assert str(path) in str(err.value)


def test_weights_without_a_tensor_the_runtime_reads_are_refused_naming_it(tiny_lm_dir, tmp_path):
    from safetensors.numpy import save_file

    d = _copy(tiny_lm_dir, tmp_path)
    save_file({"model.norm.weight": np.ones(64, np.float32)}, str(d / "model.safetensors"))
    with pytest.raises(ModelDirError, match="lacks tensor model.embed_tokens.weight") as err:
        EarlyExitRuntime(d, threads=1)
    assert str(d / "model.safetensors") in str(err.value)


def test_corrupt_tokenizer(tiny_lm_dir, tmp_path):
    d = _copy(tiny_lm_dir, tmp_path)
    (d / "tokenizer.json").write_text("{not json")
    with pytest.raises(ModelDirError, match="tokenizer.json"):
        EarlyExitRuntime(d)


def test_fingerprint_tells_checkpoints_apart(tiny_lm_dir, tmp_path):
    import shutil

    from models.model_dir import fingerprint

    copy = tmp_path / "copy"
    shutil.copytree(tiny_lm_dir, copy)
    assert fingerprint(copy) == fingerprint(tiny_lm_dir)
    (copy / "tact.json").write_text('{"training": {"steps": 1}}')
    assert fingerprint(copy) != fingerprint(tiny_lm_dir)


def test_runtimes_share_one_thread_pool(rt, tiny_lm_dir):
    """Every session of the process runs on one onnxruntime pool, sized by the first runtime: per-session pools
    either sleep between a decode's many small runs or, spinning, fight over the cores."""
    from onnxruntime.capi import _pybind_state

    from models.runtime import shared_thread_pool

    # onnxruntime >= 1.23 (the floor in pyproject.toml) can make the pool; a build that cannot falls back to
    # a pool per session, and decodes the same.
    can = hasattr(_pybind_state, "set_global_thread_pool_sizes")
    other = EarlyExitRuntime(tiny_lm_dir, threads=2)
    assert shared_thread_pool(2) is can  # made by whichever runtime of this process came first
    for runtime, threads in ((rt, 1), (other, 2)):
        opts = runtime._session_options
        assert opts.use_per_session_threads is False if can else opts.intra_op_num_threads == threads
    ids = prompts(rt)[0]
    a = rt.generate(ids, DecodeOptions(policy="full", max_new_tokens=8)).token_ids
    assert a
    assert other.generate(ids, DecodeOptions(policy="full", max_new_tokens=8)).token_ids == a


def test_tact_train_controller_kv_fill_only_refits_the_maps_and_nothing_else(tiny_lm_dir, tmp_path, capsys):
    from lsp_server.cli import main
    from models.model_dir import EXIT_HEADS, load_tensors
    from tests.conftest import write_calib_corpus

    d = _copy(tiny_lm_dir, tmp_path)
    before = load_tensors(d / EXIT_HEADS)
    assert main(["train", "controller", "--model", str(d), "--corpus", str(write_calib_corpus(tmp_path / "corpus")),
                 "--batches", "2", "--kv-fill-only"]) == 0
    out = capsys.readouterr().out
    assert "KV fill" in out and "top-1 accuracy" not in out  # no exit head ran, so no accuracy is claimed
    after = load_tensors(d / EXIT_HEADS)
    assert {k for k in after if k.startswith("kv_fill_maps.")} == set(_maps(d))
    assert set(_maps(d)) == {f"kv_fill_maps.{e}.{p}" for e in (0, 1) for p in ("weight", "bias")}
    for name, tensor in before.items():  # the classifiers and both calibrations as they were
        np.testing.assert_array_equal(after[name], tensor, err_msg=name)
    record = json.loads((d / "tact.json").read_text())["controller"]
    assert sorted(record["kv_fill"]["explained"]) == ["0", "1"] and "top1_accuracy" not in record


# -- what a suggestion keeps of the text it writes ------------------------------------------------------

REPLACEMENT = "\ufffd"  # what an editor shows for bytes of a file that are not UTF-8


def scripted_text(rt, monkeypatch, script: list[int]) -> str:
    """The text ``generate`` returns where the model writes ``script`` and then reaches the token limit."""
    from tests.test_suggestion_utf8 import scripted

    res = scripted(rt, monkeypatch, script)
    assert res.text == rt.tokenizer.decode(res.token_ids)
    assert len(res.token_ids) == len(res.logprobs) == len(res.layers) == len(res.stop_probs)
    return res.text


def test_a_suggestion_keeps_the_replacement_characters_it_writes_whole_and_drops_only_a_cut_one(rt, monkeypatch):
    """A cut mid-character was found by the text ending in U+FFFD, so a suggestion that wrote whole U+FFFD
    characters (copied from a file read with replacement characters) lost every one of them at its end."""
    info = rt.tokenizer
    whole = info.encode(REPLACEMENT)
    assert len(whole) >= 2  # its three bytes take more than one token: a limit can fall inside it
    word = info.encode("abc")
    assert scripted_text(rt, monkeypatch, [*word, *whole, *whole]) == "abc" + 2 * REPLACEMENT
    assert scripted_text(rt, monkeypatch, [*whole, *whole, *whole[:1]]) == 2 * REPLACEMENT  # the cut one goes
    assert scripted_text(rt, monkeypatch, [*word, *whole[:-1]]) == "abc"
    assert scripted_text(rt, monkeypatch, whole[:1]) == ""


@pytest.mark.parametrize("limit", [3, 8])
def test_a_suggestion_that_copies_a_replacement_character_shows_it_under_both_lossless_policies(shipped, limit):
    """Where the file holds U+FFFD (bytes that are not UTF-8, decoded with replacement), the shipped model copies it;
    a suggestion that ended right after it (here the token limit 3) came back empty."""
    raw = b'name = "Jos\xe9"\n' * 12 + b'name = "Jos'
    ids = shipped.fim_prompt(raw.decode("utf-8", "replace"), '"\n', limit)
    out = {}
    for policy in ("full", "speculative"):
        shipped.reset()
        res = out[policy] = shipped.generate(ids, DecodeOptions(policy=policy, max_new_tokens=limit))
        assert res.text.startswith(REPLACEMENT) and res.text == shipped.tokenizer.decode(res.token_ids)
    assert (out["full"].token_ids, out["full"].stop_reason) == (out["speculative"].token_ids,
                                                                out["speculative"].stop_reason)


def test_previous_drafts_make_typing_through_a_suggestion_cheaper_and_change_nothing(shipped):
    """The user types on through a suggestion: the next request drafts the rest of it from the cache's ids before
    the request, and its output is `full`'s; a request that typed something else is `full`'s too."""
    rt = shipped
    info = rt.tokenizer
    kw = dict(max_new_tokens=16, single_line=False)
    for code in (CODE[:120], "import os\nimport sys\n\n\ndef main(argv):\n    parser = argparse."):
        ids = info.encode(code)
        first = generate(rt, ids, policy="speculative", previous_drafts=True, **kw)
        assert len(first.token_ids) >= 6, first.text
        other = next(t for t in info.encode(" zebra") if t != first.token_ids[0])
        for typed in ([*first.token_ids[:1]], [*first.token_ids[:3]], [other]):
            prompt = [*ids, *typed]
            want = generate(rt, prompt, policy="full", **kw)
            steps = {}
            for on in (False, True):
                generate(rt, ids, policy="speculative", previous_drafts=True, **kw)  # the suggestion before, cached
                got = rt.generate(prompt, DecodeOptions(policy="speculative", previous_drafts=on, **kw))
                assert (got.token_ids, got.stop_reason) == (want.token_ids, want.stop_reason)
                steps[on] = got.verify_steps
                if not on:
                    assert got.previous_drafted == 0
                elif typed != [other]:
                    assert got.previous_accepted >= min(4, len(want.token_ids) - 1), (got.previous_drafted, got.previous_accepted)
            if typed != [other]:
                assert steps[True] < steps[False]
