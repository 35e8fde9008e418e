"""`tact export` and the runtime on the other architectures models.model_dir.SUPPORTED_ARCHITECTURES names.

tests/test_runtime_parity.py checks the project's own Llama-layout model. Here tiny random Qwen2 and Mistral models
are built with transformers, saved as a plain Hugging Face directory (config.json, model.safetensors, tokenizer.json:
no exit heads, no controller, no training record), exported and served; transformers is the reference:

- Qwen2 with q/k/v biases (randomised: fresh ones are zero), tied embeddings (as the small Qwen2.5 models), RoPE base
  1e6, and a config.json that names a sliding window but does not use it (as Qwen2.5's on the Hub do);
- Qwen2 using its sliding window on the layers from ``max_window_layers`` on (the first layers attend to everything);
- Mistral, with an untied LM head and a sliding window shorter than the prompts, so it decides the logits.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("onnx")

from models.export import export_model_dir  # noqa: E402
from models.runtime import DecodeOptions, EarlyExitRuntime  # noqa: E402
from models.tokenizer import TokenizerInfo, train_tokenizer  # noqa: E402
from tests.conftest import TINY_LM_MAX_LEN, _stdlib_texts  # noqa: E402
from tests.test_runtime_parity import _filled_and_layer_kv  # noqa: E402

TOL = 1e-4
WINDOW = 16  # the sliding models' window: shorter than every prompt below
MAX_NEW = 24
CODE = '''def wrap(text, width=70, **kwargs):
    """Wrap a single paragraph of text."""
    w = TextWrapper(width=width, **kwargs)
    return w.wrap(text)
'''
REPEAT = "value = items[index] + 1\nvalue = items[index] + 1\nvalue = items[index] + 1\nvalue = items["
PROMPTS = ["import os\nimport sys\n\nclass TextWrapper:\n    def __init__(self, width", CODE[:110], REPEAT]
# name -> (transformers classes, config beyond the shared one, config.json entries written over what it saves)
MODELS = {
    "qwen2": ("Qwen2", {"rope_theta": 1e6, "tie_word_embeddings": True}, {"sliding_window": 8, "use_sliding_window": False}),
    "qwen2-sliding": ("Qwen2", {"use_sliding_window": True, "sliding_window": WINDOW, "max_window_layers": 2}, {}),
    "mistral": ("Mistral", {"sliding_window": WINDOW, "tie_word_embeddings": False}, {}),
}


def build(out: Path, tok, name: str) -> None:
    """A tiny random model of MODELS[name], saved with the tokenizer as a plain Hugging Face directory and exported."""
    family, config, written = MODELS[name]
    info = TokenizerInfo(tok)
    cfg = getattr(transformers, f"{family}Config")(
        vocab_size=tok.get_vocab_size(), hidden_size=64, intermediate_size=128, num_hidden_layers=4,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=TINY_LM_MAX_LEN, rms_norm_eps=1e-5,
        bos_token_id=info.eos_id, eos_token_id=info.eos_id, pad_token_id=info.eos_id, **config)
    torch.manual_seed(1234)
    model = getattr(transformers, f"{family}ForCausalLM")(cfg)
    gen = torch.Generator().manual_seed(4321)
    with torch.no_grad():
        for param_name, p in model.named_parameters():
            if param_name.endswith(".bias"):  # q/k/v biases: fresh ones are zero, and a dropped bias would not show
                p.copy_(0.5 * torch.randn(p.shape, generator=gen))
            elif p.dim() == 1:  # norms: not all ones, so a wrong norm weight shows up
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
            elif "embed_tokens" not in param_name:  # layers strong enough to change the prediction
                p.copy_(torch.randn(p.shape, generator=gen) * 0.15)
    model.save_pretrained(out)
    tok.save(str(out / "tokenizer.json"))  # all of the tokenizer the model directory needs
    if written:
        path = out / "config.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), **written}, indent=1))
    export_model_dir(out)  # what `tact export DIR` runs


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict:
    """name -> (runtime, the transformers model loaded from the same directory), built once per module."""
    torch.set_num_threads(1)
    tok = train_tokenizer(_stdlib_texts(), vocab_size=512)
    built = {}
    for name in MODELS:
        out = tmp_path_factory.mktemp(name)
        build(out, tok, name)
        hf = transformers.AutoModelForCausalLM.from_pretrained(str(out), dtype=torch.float32).eval()
        built[name] = (EarlyExitRuntime(out, threads=1), hf)
    return built


def prompt_ids(rt) -> list[list[int]]:
    return [rt.tokenizer.encode(text) for text in PROMPTS]


@torch.no_grad()
def hf_logits(hf, ids: list[int]) -> np.ndarray:
    return hf(torch.tensor([ids])).logits[0].numpy()


def ort_logits(rt, ids: list[int], start: int = 0) -> np.ndarray:
    """The runtime's last-layer logits (T, V) for ids at positions start.., through its decoder graphs and exit head."""
    return rt.head(rt.n_layers - 1, rt.forward(ids, start))


@torch.no_grad()
def hf_greedy(hf, rt, ids: list[int], max_new: int) -> list[int]:
    """transformers' greedy generate after ids, cut before its end of text and, as the runtime does, before a last
    character it cut in half."""
    eos = rt.tokenizer.eos_id
    out = hf.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long), do_sample=False,
                      max_new_tokens=max_new, eos_token_id=eos, pad_token_id=eos)[0, len(ids):].tolist()
    if eos in out:
        out = out[:out.index(eos)]
    while out and rt.tokenizer.decode(out).endswith("\ufffd"):
        out.pop()
    return out


def generate(rt, ids: list[int], policy: str):
    rt.reset()
    # the loop stop off: transformers has none, and a random model repeats itself a lot
    return rt.generate(ids, DecodeOptions(policy=policy, max_new_tokens=MAX_NEW, single_line=False, stop_repeats=0))


@pytest.mark.parametrize("name", list(MODELS))
def test_the_directory_is_what_the_test_means(models, name):
    rt, hf = models[name]
    family = MODELS[name][0]
    assert type(hf).__name__ == f"{family}ForCausalLM"
    assert (rt.n_layers, rt.n_heads, rt.n_kv) == (4, 4, 2)
    assert not rt.has_exit_heads and not rt.controller.trained  # a plain directory: no exit heads, no controller
    biases = {n: p for n, p in hf.named_parameters() if n.endswith(".bias")}
    if family == "Qwen2":
        assert {n.split(".")[-2] for n in biases} == {"q_proj", "k_proj", "v_proj"}
        assert all(p.abs().min() > 0 for p in biases.values())
    else:
        assert not biases
    assert (hf.config.tie_word_embeddings, rt.rope_theta) == ((True, 1e6) if name == "qwen2" else (False, 1e4))
    # the window each layer of transformers' model attends in (Mistral's attention reads the config's, every layer)
    windows = [getattr(layer.self_attn, "sliding_window", hf.config.sliding_window) for layer in hf.model.layers]
    assert windows == {"qwen2": [None] * 4, "qwen2-sliding": [None, None, WINDOW, WINDOW], "mistral": [WINDOW] * 4}[name]
    assert all(len(ids) > 2 * WINDOW for ids in prompt_ids(rt))  # the window decides these prompts' logits


@pytest.mark.parametrize("name", list(MODELS))
def test_last_layer_logits_match_transformers_at_every_position(models, name):
    rt, hf = models[name]
    for ids in prompt_ids(rt):
        want = hf_logits(hf, ids)
        rt.reset()
        got = ort_logits(rt, ids)
        assert got.shape == want.shape
        assert np.abs(got - want).max() < TOL, f"{name}: max diff {np.abs(got - want).max()}"
        # the same through the KV cache: the first tokens in one pass, the rest one at a time
        rt.reset()
        cut = WINDOW + 4
        got = np.concatenate([ort_logits(rt, ids[:cut])] + [ort_logits(rt, [t], pos) for pos, t in enumerate(ids) if pos >= cut])
        rt.reset()
        assert np.abs(got - want).max() < TOL, f"{name}, incremental: max diff {np.abs(got - want).max()}"
    assert np.abs(want[0] - want[-1]).max() > 1e-2  # positions differ: the logits say something


@pytest.mark.parametrize("name", list(MODELS))
def test_greedy_decoding_equals_transformers_generate(models, name):
    """`full` (and `dynamic`, which without a controller never exits early) is transformers' greedy generate; so is
    `speculative`, whose drafts are verified several tokens at a time through the cache."""
    rt, hf = models[name]
    drafted, emitted = 0, 0
    for ids in prompt_ids(rt):
        want = hf_greedy(hf, rt, ids, MAX_NEW)
        for policy in ("full", "speculative", "dynamic"):
            res = generate(rt, ids, policy)
            assert res.token_ids == want, f"{name}, {policy}"
            assert res.layers == [rt.n_layers] * len(want)
            drafted += res.drafted if policy == "speculative" else 0
        emitted += len(want)
    assert drafted > 0 and emitted >= 2 * MAX_NEW  # speculative really verified drafts; the models write something


def test_qwen2_kv_fill_writes_the_biased_keys_and_values_each_skipped_layer_would(models):
    """An early exit's KV fill (exported for every directory) adds the K/V biases as the layers themselves do."""
    rt, _ = models["qwen2"]
    ids = prompt_ids(rt)[1]
    for exit_layer in range(rt.n_layers - 1):
        filled, own = _filled_and_layer_kv(rt, exit_layer, ids)
        for (fk, fv), (k, v) in zip(filled, own):
            np.testing.assert_allclose(fk, k, atol=1e-5)
            np.testing.assert_allclose(fv, v, atol=1e-5)


def test_graphs_exported_without_the_window_are_refused_with_the_fix(models, tmp_path):
    """Graphs of a sliding-window model exported before windows were read attend to every key: past the window their
    logits are another model's, without a word. graphs.json records the windows; graphs without them are refused."""
    import json
    import shutil

    from models.model_dir import GRAPHS_INDEX, ModelDirError

    d = tmp_path / "mistral"
    shutil.copytree(models["mistral"][0].model_dir, d)
    index = json.loads((d / GRAPHS_INDEX).read_text())
    assert index["sliding_windows"] == [WINDOW] * 4
    del index["sliding_windows"]
    (d / GRAPHS_INDEX).write_text(json.dumps(index))
    with pytest.raises(ModelDirError, match=r"exported without the sliding-window attention .* re-run `tact export"):
        EarlyExitRuntime(d, threads=1)
