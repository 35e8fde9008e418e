"""Serving runtime: early-exit decoding on onnxruntime, without torch or transformers.

Each decoder layer is its own ONNX graph with its KV cache passed in and the new entries passed
out, so a token can leave the network after any layer and decoding resumes from there. Policies:

  full         every token through every layer (the reference output);
  dynamic      the Stop&Exit controller lets a token exit early; the KV entries of the layers it
               skipped are filled from the exiting hidden state (one `kv_fill` graph call);
  speculative  lossless: draft with prompt lookup (the tokens that followed the last match of the
               trailing n-gram) or, failing that, with the first k layers; verify all drafted
               tokens with the whole model in one pass; output identical to `full`.

A completion's prompt may leave its last tokens out for the suggestion to write again (token healing,
models.healing): while that text is left to write, every policy chooses only among the tokens that can write it.

Stop applies under every policy: before emitting a token, a controller that predicts the final
prediction to be wrong ends the suggestion. So does a loop: a suggestion that starts repeating itself ends
after the first copy of what repeats (a rule on the emitted tokens alone, so speculative stays identical). The KV cache is kept between calls and reused for
the longest common token prefix, so a keystroke costs only the new tokens.
"""

from __future__ import annotations

import functools
import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import onnxruntime as ort

from models.draft_head import DRAFT_HEAD, DraftHead
from models.exits import EXIT_RULES, KV_FILL_MAPS, Controller, exit_heads_problem, log_softmax, top_and_margin
from models.fim import SUFFIX_TOKENS, build_prompt, to_lf
from models.healing import Prompt, TokenBytes, healed_logp
from models.model_dir import (EXIT_HEAD_GRAPH, EXIT_HEADS, GRAPHS_INDEX, KV_CACHE_LAYOUT, RESTORE, ModelDirError,
                              changed_since_export, check_model_dir, graphs_dir, header_digest, is_bare_file_name,
                              kv_fill_graph_name, layer_graph_name, load_tensors, read_json_object, read_record,
                              rms_norm_eps, sliding_window, trained_context)
from models.ngram_drafts import NGRAM_DRAFTS, NgramDrafts
from models.quantize import MAX_INT8_ROWS
from models.tokenizer import load_model_tokenizer, without_surrogates

POLICIES = ("full", "dynamic", "speculative")
# The inputs of each kind of graph `tact export` writes (models.export). A graph of another kind listed in its place
# (a file copied over another, graphs.json edited) loaded fine and failed every decode that ran it.
GRAPH_INPUTS = {
    "decoder layer": ("hidden", "cos", "sin", "seqlens_k", "total_len", "past_k", "past_v"),
    "exit head": ("hidden", "norm_weight"),
    "kv_fill": ("hidden", "cos", "sin"),
}
# Tokens of a healing prompt's room set aside for the text token healing takes back (`completion_prompt`; at most a
# 16th of the prompt's budget): the bytes of two tokens taken back are at most this in nearly all code, so the
# prefix's cut does not follow them.
HEAL_ALLOWANCE = 24
# A loop is a unit of at most REPEAT_MAX_PERIOD tokens repeated DecodeOptions.stop_repeats times in a row over at
# least REPEAT_MIN_TOKENS tokens ("$name/$name/$name/...", "x, x, x, x, "): it ends the suggestion.
REPEAT_MIN_TOKENS = 8
REPEAT_MAX_PERIOD = 12
WEIGHTS = ("fp32", "int8")  # what decoding steps read: fp32, or the 8-bit graphs of models.quantize
WHOLE_REPLACEMENT = "\ufffd".encode()  # U+FFFD written whole: a character of the text, not a cut one


def repeat_start(ids: list[int], copies: int, min_tokens: int = REPEAT_MIN_TOKENS,
                 max_period: int = REPEAT_MAX_PERIOD) -> tuple[int, int] | None:
    """Whether ``ids`` now ends in a loop: ``copies`` or more copies in a row of a unit of p <= max_period tokens,
    at least ``min_tokens`` tokens in all. Returns (where the run of copies starts, p) for the smallest such p,
    else None. Checked after every token, so a loop is caught as soon as it is long enough."""
    n = len(ids)
    for p in range(1, max_period + 1):
        need = max(copies * p, min_tokens)
        if n < need:
            break
        if ids[-1] != ids[-1 - p] or any(ids[n - 1 - j] != ids[n - 1 - j - p] for j in range(1, need - p)):
            continue
        start = n - need
        while start > 0 and ids[start - 1] == ids[start - 1 + p]:
            start -= 1
        return start, p
    return None


@dataclass
class DecodeOptions:
    policy: str = "full"
    max_new_tokens: int = 48
    stop_threshold: float = 1.01  # P(stop) that ends a suggestion before a token; > 1 disables Stop
    # Stop may also cut a suggestion after its first token (False: Stop only ends one before its first token,
    # which hides it). A cut keeps the suggestion shown, shorter: judged by the first line's edit similarity it
    # loses accepted suggestions, judged by "the user goes on to type it" it gains some (docs/code-model.md).
    stop_inside: bool = True
    # P(stop) that cuts a suggestion after its first token; None: stop_threshold. A cut needs more certainty
    # than hiding: on held-out code cuts at 0.9 removed twice the would-be-accepted suggestions cuts at 0.98
    # did (docs/code-model.md).
    stop_inside_threshold: float | None = None
    # dynamic: the exit score (``exit_rule``) needed to leave early. Chosen on the calibration split by the bench's
    # rule (models.bench_early_exit.pick_exit_setting: the most layers skipped within 1% ROUGE-L loss less a margin of
    # half a point, since held-out code has lost more than calibration code at five of six earlier picks;
    # docs/code-model.md): under the harm rule with the fitted P(harm), on 2,000 samples drawn line by line
    # (2026-12-05), 0.97 (36.5% skipped at 0.0%; 0.96 40.0% at 0.52%, 0.95 43.1% at 1.31%). Held out (2,000, seed
    # 4): 0.97 36.9% at 0.80%, 0.96 40.6% at 1.04%, 0.95 43.6% at 2.11%: the 40% at 1% is missed. With token
    # healing (2026-12-05, evening; models.healing), on 2,000 calibration samples, 0.95: 40.7% skipped at 0.45%
    # (0.96 38.4% at 0.02%, 0.97 35.2% at 0.29%)
    exit_threshold: float = 0.95
    # dynamic: prompt lookup as a second opinion on an exit. Before a token's layers run, prompt lookup
    # guesses it (the token that followed the last earlier match of the trailing n-gram); an exit whose top
    # token is that guess may leave at this exit score (``exit_rule``). None: lookup is not consulted. Held out it saves about a
    # point of ROUGE-L loss at the same share of layers skipped; on the calibration split, where thresholds are
    # chosen, nothing, so the server leaves it off (docs/code-model.md).
    exit_lookup_threshold: float | None = None
    # dynamic, with exit_lookup_threshold: an exit whose top token differs from the guess never leaves early
    exit_lookup_veto: bool = False
    min_exit_layer: int = 1  # dynamic: the earliest layer a token may leave after (0-based)
    # dynamic: where the prompt's last token is the only one not cached (typing; the bench's shared prompt pass), it
    # runs alone like a decoded token and may leave early too, so the suggestion's first token may skip layers. Off
    # (the first token comes from the prompt's pass at full depth): with it the rule still picks 0.9, held out
    # 31.8% -> 36.5% of layers skipped (loss 1.23% -> 1.05%), but that token's pass is slower (the exit heads it
    # passes cost more than the layers it skips; docs/code-model.md).
    exit_last_prompt_token: bool = False
    # The weights an early exit's head reads for one decoding step (dynamic's exit decisions, the first layers'
    # drafts), one of WEIGHTS: "int8" reads the 8-bit head (2 MB against 8 MB), where the model directory has one.
    # The last layer's head stays as the decoding weights say, so a token that runs every layer is the one `full`
    # writes. Inside decoding the fp32 head cost about as much as a layer, so a token passing three exits paid for
    # the layers it skipped (held out, 2,000: dynamic 0.99x -> 1.08x against `full`, the same layers skipped and
    # ROUGE-L; docs/code-model.md)
    exit_head_weights: str = "int8"
    # dynamic: how P(exit) and P(stop) decide an exit (models.exits.EXIT_RULES, ``exit_score``). "harm" also lets a
    # token leave where the last layer is likely wrong anyway. Held out (2,000 drawn line by line, seed 4): with the
    # fitted P(harm) at 0.97 36.9% skipped at 0.80% loss, 1.17x faster than `full`. With the earlier sampler (a file
    # first, which over-weighted short files): at 0.95 43.0-43.6% at 0.05-0.98%; the product at 0.95 42.9% at 1.43%;
    # agreement at 0.9 34.2% at 0.56% (docs/code-model.md)
    exit_rule: str = "harm"
    # speculative: a cheap draft after the prompt (prompt lookup, the n-gram table) rides along with the prompt's
    # uncached tokens and is verified in their pass, so the suggestion's first tokens need no step of their own.
    # False: the first token comes from the prompt's pass alone and drafting starts after it
    draft_in_prompt_pass: bool = True
    # speculative: layers that draft where neither prompt lookup (a match of 2+ tokens) nor the n-gram table has a
    # draft; 0 (default): a plain one-token step there. With this trunk the first layers' drafts (an exit head for
    # every drafted token) cost more than they save, also when gated by the drafting exit's confidence or by the
    # controller (calibration 800: 1.217x -> 1.276x against `full`, held out 1,000: 1.265x -> 1.306x; docs/code-model.md)
    draft_layers: int = 0
    draft_tokens: int = 4
    # speculative: stop layer-drafting after a token the drafting exit gives less than 30% (-inf: never). Drafts
    # after an unsure token are mostly rejected (held-out: 1.37x -> 1.49x against `full` with 4 draft tokens).
    draft_min_logprob: float = math.log(0.3)
    lookup_ngram: int = 3
    # speculative: draft from the corpus's n-gram table (models.ngram_drafts) where prompt lookup matches only the
    # last token or nothing, when the model directory has one; up to ngram_tokens tokens
    ngram_drafts: bool = True
    ngram_tokens: int = 4
    # speculative: draft with the model directory's trained draft head (models.draft_head), when it has one, where
    # neither prompt lookup nor the n-gram table drafts; up to head_tokens tokens, chained. The default model ships
    # without one: trained on a CPU it drafted too poorly to pay (docs/code-model.md)
    draft_head: bool = True
    head_tokens: int = 2
    # speculative: draft first from the tokens the cache held past this prompt's shared start before the request: the
    # previous suggestion, which a user typing on through it gets again (decoding is deterministic), up to
    # previous_tokens at a time. Off by default: where one prompt is decoded again and again (the benchmarks decode
    # each sample by every policy in turn), it would draft from another policy's answer; the server turns it on
    # (`tact.previousDrafts`). Served p50 over the same 600 keystrokes, two runs each: 8 tokens 22.8 / 23.0 ms, 16
    # 21.4 / 21.5 ms, 32 20.9 / 19.9 ms (docs/code-model.md)
    previous_drafts: bool = False
    previous_tokens: int = 32
    lookup_tokens: int = 4  # completions: longer copies were mostly rejected and cost their verification (8: 1.46x, 4: 1.52x)
    single_line: bool = True  # end after the first token that contains a newline
    # speculative, single-line: a draft ends before its first token that holds a line break. That token would end the
    # suggestion, so the rows verifying it and the tokens after it could only be wasted; the whole model's own choice
    # after the last draft token writes it (False: drafts run on past the line end, for comparisons)
    drafts_end_at_line_break: bool = True
    # End a suggestion that starts repeating itself (see REPEAT_MIN_TOKENS) after the first copy of the repeated unit;
    # 0: never. Without it a loop runs to max_new_tokens: on 1,500 calibration samples 129 suggestions did, a
    # fifth of all tokens decoded, and cut after one copy ROUGE-L rose 0.3220 -> 0.3278 (docs/code-model.md).
    stop_repeats: int = 3
    # speculative: accept a prompt-lookup draft token whose log-probability is within this of the best
    # token's (0: only the best token, lossless). For rewrites, where copying the window is the prior.
    copy_margin: float = 0.0
    # prompt lookup copies only from cache.ids[lo:hi] (e.g. the window a rewrite follows); None: anywhere
    lookup_range: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.stop_repeats == 1 or self.stop_repeats < 0:  # one copy is not a repetition: every token would end it
            raise ValueError(f"stop_repeats must be 0 (never) or at least 2, not {self.stop_repeats}")
        if self.exit_head_weights not in WEIGHTS:
            raise ValueError(f"unknown exit head weights {self.exit_head_weights!r}; one of {WEIGHTS}")
        if self.exit_rule not in EXIT_RULES:
            raise ValueError(f"unknown exit rule {self.exit_rule!r}; one of {EXIT_RULES}")

    def exit_threshold_for(self, top: int, guess: int | None) -> float:
        """The exit score (``exit_rule``) an exit whose top token is ``top`` needs, given prompt lookup's guess for the token
        (None: lookup found none or is not consulted)."""
        if self.exit_lookup_threshold is None or guess is None:
            return self.exit_threshold
        if top == guess:
            return self.exit_lookup_threshold
        return math.inf if self.exit_lookup_veto else self.exit_threshold

    def stop_threshold_at(self, emitted: int) -> float:
        """The Stop threshold before the token at index ``emitted`` of the suggestion (> 1: no Stop there). A
        ``stop_threshold`` above 1 turns Stop off everywhere, as the setting says: the cuts inside a suggestion went
        on at ``stop_inside_threshold`` (24 of 100 held-out suggestions cut with Stop "off")."""
        if emitted == 0 or self.stop_threshold > 1:
            return self.stop_threshold
        if not self.stop_inside:
            return math.inf
        return self.stop_threshold if self.stop_inside_threshold is None else self.stop_inside_threshold


@dataclass
class DecodeResult:
    token_ids: list[int] = field(default_factory=list)
    text: str = ""  # what token_ids write after the cursor (``suggestion_text``): it may end before their last bytes
    layers: list[int] = field(default_factory=list)  # layers each emitted token went through
    logprobs: list[float] = field(default_factory=list)  # of each emitted token
    stop_probs: list[float] = field(default_factory=list)  # controller P(stop) before each emitted token
    stop_reason: str = "max_tokens"  # eos | newline | stop | repeat | max_tokens | cancelled | context
    # Stop: the controller's P(stop) before the token it held back and the threshold it reached there (the first
    # token's differs from later ones': ``DecodeOptions.stop_threshold_at``); None when Stop did not end it
    stop_fired: tuple[float, float] | None = None
    prompt_tokens: int = 0  # the prompt's tokens the model read (``generate`` cuts one too long: ``fit_prompt``)
    cached_tokens: int = 0
    layer_passes: int = 0  # token-layer evaluations while generating (verification included)
    drafted: int = 0
    draft_accepted: int = 0
    lookup_drafted: int = 0  # of `drafted`, the tokens drafted by prompt lookup
    lookup_accepted: int = 0
    ngram_drafted: int = 0  # of `drafted`, the tokens drafted by the corpus's n-gram table (models.ngram_drafts)
    ngram_accepted: int = 0
    head_drafted: int = 0  # of `drafted`, the tokens drafted by the trained draft head (models.draft_head)
    head_accepted: int = 0
    previous_drafted: int = 0  # of `drafted`, the tokens drafted from the previous suggestion (``previous_drafts``)
    previous_accepted: int = 0
    # speculative: passes of the whole model that chose tokens (the prompt's pass included), and those with nothing
    # drafted in them, where a better drafter would have to come from
    verify_steps: int = 0
    undrafted_steps: int = 0
    prefill_ms: float = 0.0  # the prompt's pass (speculative: with the draft verified in it, and its tokens emitted)
    decode_ms: float = 0.0  # the steps after it
    # token healing (models.healing): the text before the cursor the prompt left out, which the first tokens write
    # again (token_ids, logprobs and the rest count them; ``text`` leaves it out), and the bytes of it still to write
    heal: str = ""
    heal_left: bytes = field(default=b"", repr=False)
    heal_tokens: int = 0  # the first token_ids that wrote nothing past the text given back

    @property
    def suggestion_tokens(self) -> int:
        """Tokens of the suggestion so far: those that wrote text past what token healing gave back (Stop's first
        token, the token limit)."""
        return len(self.token_ids) - self.heal_tokens

    @property
    def layers_per_token(self) -> float | None:
        """Mean depth each emitted token went through (compute, drafts included, is layer_passes); None without
        tokens (Stop before the first one), which has no depth to average, not a depth of 0."""
        return sum(self.layers) / len(self.layers) if self.layers else None


class Pending(NamedTuple):
    """Speculative's last emitted token, not yet in the cache, and the final state (D,) that chose it (what the
    draft head drafts from)."""
    token: int
    state: np.ndarray


class SpeculativeStart(NamedTuple):
    """Where speculative decoding goes on after the prompt's pass (``EarlyExitRuntime._start_speculative``)."""
    hidden: np.ndarray | None  # (1, D) the last prompt token's final state, when the pass drafted nothing
    pending: Pending | None  # else the last token the pass emitted

    @property
    def ended(self) -> bool:
        """The prompt's pass already ended the suggestion (Stop, end of line, the token limit)."""
        return self.hidden is None and self.pending is None


class Positions(NamedTuple):
    """A decoder layer's position inputs for tokens at start..start+T-1: RoPE and the GroupQueryAttention
    lengths. Made once per forward pass, read by every layer in it."""

    cos: np.ndarray  # (T, hd) float32
    sin: np.ndarray  # (T, hd) float32
    seqlens_k: np.ndarray  # (1,) int32: start + T - 1
    total_len: np.ndarray  # () int32: start + T


class KVCache:
    """Keys and values of every layer, one buffer each in the layout attention reads, (1, Hkv, S, hd).
    The decoder graphs take a layer's buffers as both past and present (``ort_k``/``ort_v`` wrap the same
    memory): they attend to the first positions and write the new ones in place, so nothing is copied
    per token. Positions past ``length`` hold stale entries that no query reads."""

    def __init__(self, layers: int, max_len: int, n_kv: int, head_dim: int):
        self.k = [np.zeros((1, n_kv, max_len, head_dim), np.float32) for _ in range(layers)]
        self.v = [np.zeros((1, n_kv, max_len, head_dim), np.float32) for _ in range(layers)]
        self.ort_k = [ort.OrtValue.ortvalue_from_numpy(a) for a in self.k]
        self.ort_v = [ort.OrtValue.ortvalue_from_numpy(a) for a in self.v]
        self.ids: list[int] = []  # token at each cached position
        self.exact = 0  # leading positions whose KV came from the full network (reusable by any policy)

    @property
    def length(self) -> int:
        return len(self.ids)

    def truncate(self, n: int) -> None:
        del self.ids[n:]
        self.exact = min(self.exact, n)

    def write(self, layer: int, start: int, k: np.ndarray, v: np.ndarray) -> None:
        """Store k, v (T, Hkv, hd) of ``layer`` at positions start..start+T-1."""
        T = k.shape[0]
        self.k[layer][0, :, start:start + T] = k.transpose(1, 0, 2)
        self.v[layer][0, :, start:start + T] = v.transpose(1, 0, 2)


def rope_tables(positions: int, head_dim: int, theta: float) -> tuple[np.ndarray, np.ndarray]:
    """RoPE's cos and sin (positions, hd) float32 for positions 0..positions-1, made once per runtime: each pass
    slices its rows (``EarlyExitRuntime._positions``) rather than computing them again."""
    inv_freq = 1.0 / (theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim))  # (hd/2,)
    freqs = np.arange(positions, dtype=np.float64)[:, None] * inv_freq[None, :]  # (positions, hd/2)
    emb = np.concatenate([freqs, freqs], axis=-1)  # (positions, hd)
    return np.cos(emb).astype(np.float32), np.sin(emb).astype(np.float32)


def latest_match(arr: np.ndarray, tail: list[int], lo: int, hi: int) -> int | None:
    """The latest start s in [lo, hi) with arr[s:s + len(tail)] == tail, or None (prompt lookup's search)."""
    n = len(tail)
    if hi <= lo or n == 0:
        return None
    match = arr[lo:hi] == tail[0]  # (hi - lo,) starts whose n-gram equals the tail
    for k in range(1, n):
        match &= arr[lo + k:hi + k] == tail[k]
    found = np.flatnonzero(match)
    return lo + int(found[-1]) if found.size else None


_shared_pool: bool | None = None  # whether the process's one onnxruntime thread pool exists; None: not tried yet
_shared_pool_lock = threading.Lock()


def shared_thread_pool(threads: int) -> bool:
    """Run every session of the process on one onnxruntime thread pool, made by the first call with its
    ``threads`` (later runtimes share it, whatever they ask for). A decode is hundreds of small runs, one per
    layer: a pool per session (17 a model) must either sleep between runs, and pay a wake-up that costs more than
    a layer's arithmetic for one token, or spin, and fight the other pools for the cores. One pool's worker can
    spin (measured in docs/serving.md). False where this onnxruntime cannot make one: a pool per session."""
    global _shared_pool
    with _shared_pool_lock:
        if _shared_pool is None:
            try:
                from onnxruntime.capi import _pybind_state
                _pybind_state.set_global_thread_pool_sizes(threads, 1)
                _shared_pool = True
            except Exception:  # not in this build, or onnxruntime's own exception types: a pool per session
                _shared_pool = False
        return _shared_pool


class EarlyExitRuntime:
    """Loads a model directory exported by `tact export` and decodes with any policy."""

    def __init__(self, model_dir: Path, threads: int = 2, weights: str = "fp32"):  # threads: see shared_thread_pool
        if weights not in WEIGHTS:
            raise ValueError(f"unknown weights {weights!r}; one of {WEIGHTS}")
        self.model_dir = Path(model_dir)
        self.config = check_model_dir(self.model_dir, need_onnx=True)
        cfg = self.config
        self.n_layers = cfg["num_hidden_layers"]
        self.hidden_size = cfg["hidden_size"]
        self.n_heads = cfg["num_attention_heads"]
        self.n_kv = cfg.get("num_key_value_heads") or self.n_heads
        self.head_dim = cfg.get("head_dim") or self.hidden_size // self.n_heads
        self.eps = rms_norm_eps(cfg)  # check_model_dir refuses any non-number but null
        self.rope_theta = cfg.get("rope_theta") or (cfg.get("rope_parameters") or {}).get("rope_theta") or 10000.0
        self.max_len = int(cfg.get("max_position_embeddings") or 1024)
        self.tokenizer = load_model_tokenizer(self.model_dir)
        base = load_tensors(self.model_dir / "model.safetensors", ["model.embed_tokens.weight", "model.norm.weight"])
        self.embed = base["model.embed_tokens.weight"]  # (V, D)
        self.vocab_size = self.embed.shape[0]
        tokens = self.tokenizer.tok.get_vocab_size()
        if tokens > self.vocab_size:  # its last ids have no embedding: every text holding one failed to decode
            raise ModelDirError(f"{self.model_dir / 'tokenizer.json'} has {tokens} tokens, "
                                f"{self.model_dir / 'model.safetensors'} embeds {self.vocab_size} (a tokenizer of "
                                f"another model?); {RESTORE}")
        exit_path = self.model_dir / EXIT_HEADS
        # the learned KV fill maps stay on disk: the kv_fill graphs read them there (models.export)
        extra = load_tensors(exit_path, prefix_excluded=KV_FILL_MAPS + ".") if exit_path.exists() else {}
        self.has_exit_heads = all(f"exit_norms.{i}.weight" in extra for i in range(self.n_layers - 1))
        # Without trained exit norms every exit uses the final norm (plain Llama directories).
        self.exit_norms = [extra.get(f"exit_norms.{i}.weight", base["model.norm.weight"]) for i in range(self.n_layers - 1)]
        self.exit_norms.append(base["model.norm.weight"])
        self.controller = Controller(self.exit_norms, extra, self.eps)
        drafts = self.model_dir / NGRAM_DRAFTS  # optional: without it speculative drafts as before
        self.ngram_drafts = (NgramDrafts.load(drafts, self.model_dir / "tokenizer.json", self.vocab_size)
                             if drafts.is_file() else None)
        head = self.model_dir / DRAFT_HEAD  # optional, like the table
        self.draft_head = DraftHead.load(head, self.embed, self.eps) if head.is_file() else None
        self.record = read_record(self.model_dir)
        # Prompts are built to fit this (the KV cache holds max_len): past the trained length quality falls.
        self.context_tokens = trained_context(cfg, self.record)
        self._load_sessions(threads, int8=weights == "int8")
        # said after the graphs' checks: an edited config.json is named best by graphs.json's. Another model's file,
        # read as no controller, decoded silently; one of another width failed every decode that read it
        problem = exit_heads_problem(extra, self.n_layers, self.hidden_size)
        if problem:
            raise ModelDirError(f"{exit_path} {problem}, {self.model_dir / 'config.json'} has num_hidden_layers "
                                f"{self.n_layers} and hidden_size {self.hidden_size} (another model's file?); {RESTORE}, "
                                f"or refit the controller with `tact train controller --model {self.model_dir}`")
        self._newline = self._newline_table()
        try:
            self.cache = KVCache(self.n_layers, self.max_len, self.n_kv, self.head_dim)
            # layers x KV heads times smaller than the cache: made where its size is checked
            self._cos, self._sin = rope_tables(self.max_len, self.head_dim, self.rope_theta)
        except MemoryError:
            size = 2 * self.n_layers * self.n_kv * self.max_len * self.head_dim * 4 / 2 ** 30
            raise ModelDirError(f"{self.model_dir / 'config.json'} has max_position_embeddings {self.max_len}: its KV "
                                f"cache ({size:.1f} GiB) does not fit in memory; {RESTORE}") from None
        self._check_unchanged_since_export()
        self._bindings = [self._bind_cache(i, s) for i, s in enumerate(self.layer_sessions)]
        # one decode at a time per runtime (the cache is shared); reentrant: a caller that holds it to run forward()
        # itself (models.acceptance.scoring) resets the cache inside it
        self.lock = threading.RLock()
        self._previous: list[int] = []  # speculative: the cache's ids before this request (``_previous_draft``)
        self._previous_from = 0  # how many of them the request's prompt shares
        self.weights = "fp32"  # what decoding steps read (WEIGHTS): fp32 until use_weights loads the 8-bit graphs
        self.int8_layer_sessions: list[ort.InferenceSession] = []
        self._int8_bindings: list[ort.IOBinding] = []
        self.int8_head_session: ort.InferenceSession | None = None
        self._int8_exit_head: ort.InferenceSession | None | bool = None  # None: not loaded yet; False: none to load
        self.use_weights(weights)

    # -- loading -------------------------------------------------------------------------------
    def _load_sessions(self, threads: int, int8: bool) -> None:
        """The fp32 graphs (``int8``: the 8-bit weights made ready beside them too, so that ``use_weights`` finds
        them where the graphs are)."""
        index = self._read_index()
        self._index = index
        # derived weight files (an fp32 copy of fp16 weights, the 8-bit weights) are rebuilt if absent
        where = graphs_dir(self.model_dir, index, int8=int8)
        self._int8_graphs = where if int8 and index.get("int8") else None  # ready for use_weights("int8")
        opts = ort.SessionOptions()
        if shared_thread_pool(threads):
            opts.use_per_session_threads = False
        else:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        opts.enable_cpu_mem_arena = False  # 17 sessions each keeping an arena cost ~200 MB of RSS

        self._graphs, self._session_options = where, opts
        self.layer_sessions = [self._layer_session(n, layer=i) for i, n in enumerate(index["decoder_layers"])]
        # Only the dynamic policy fills KV from an exit: its graphs load on first use (~50 MB of RSS
        # that the default policy never needs).
        self._kv_fill_graphs = {int(k): n for k, n in index["kv_fill"].items()}
        maps = where / EXIT_HEADS  # learned KV fill maps, read by the kv_fill graphs in place (models.export)
        if index.get("kv_fill_maps") and not maps.is_file():
            raise ModelDirError(f"{self.model_dir / EXIT_HEADS} is missing (the kv_fill graphs read its KV fill maps "
                                f"in place); {RESTORE}, or "
                                f"refit them with `tact train controller --model {self.model_dir}`")
        if index.get("kv_fill_maps") and header_digest(maps) != index["kv_fill_maps"]:
            raise ModelDirError(f"{self.model_dir / EXIT_HEADS} is not the one the kv_fill graphs were exported with "
                                f"(they read its KV fill maps in place); re-run `tact export {self.model_dir}`")
        missing = [where / n for n in self._kv_fill_graphs.values() if not (where / n).is_file()]
        int8_graphs = index.get("int8") or {}  # loaded on first use (the 8-bit exit head by dynamic, fp32 weights too)
        missing += [self.model_dir / n for n in [*int8_graphs.get("decoder_layers", []), int8_graphs.get("exit_head")]
                    if n and not (self.model_dir / n).is_file()]
        if missing:
            raise ModelDirError(f"{missing[0]} is missing; re-run `tact export {self.model_dir}`")
        self.kv_fill_sessions: dict[int, ort.InferenceSession] = {}
        # With 8-bit steps the fp32 head only serves many rows at once (never while serving): loaded on first use.
        self._head_graph = index["exit_head"]
        self.head_session = None if int8 else self._session(self._head_graph, "exit head", graph=EXIT_HEAD_GRAPH)

    def _read_index(self) -> dict:
        """graphs.json, checked for what loading reads: graphs for this KV cache layout, a decoder graph per layer of
        config.json, a kv_fill graph per earlier exit at most, the exit head."""
        path = self.model_dir / GRAPHS_INDEX
        fix = f"re-run `tact export {self.model_dir}`"
        index = read_json_object(path, fix)
        if index.get("kv_cache") != KV_CACHE_LAYOUT:
            layout = index.get("kv_cache", "copied per layer")
            raise ModelDirError(f"{path}: the graphs were exported for another KV cache layout ({layout!r}, this Tact "
                                f"reads {KV_CACHE_LAYOUT!r}); {fix}")
        layers, fill, head = index.get("decoder_layers"), index.get("kv_fill"), index.get("exit_head")
        if not (isinstance(layers, list) and isinstance(fill, dict) and isinstance(head, str)
                and all(isinstance(n, str) for n in [*layers, *fill.values()])):
            raise ModelDirError(f"{path} lacks the decoder_layers, kv_fill and exit_head it lists the graphs in; {fix}")
        if len(layers) != self.n_layers:
            raise ModelDirError(f"{path} lists {len(layers)} decoder layer graphs, {self.model_dir / 'config.json'} "
                                f"has num_hidden_layers {self.n_layers}; {fix} (with the config.json the model was "
                                "trained with)")
        if not all(k.isdigit() and int(k) < self.n_layers - 1 for k in fill):
            raise ModelDirError(f"{path}: kv_fill lists exits {sorted(fill)}, past the {self.n_layers - 1} exits of "
                                f"{self.n_layers} layers; {fix}")
        windows = [sliding_window(self.config, i) for i in range(self.n_layers)]
        if any(windows) and index.get("sliding_windows") != windows:  # exported before windows were read: full attention
            raise ModelDirError(f"{path}: the graphs were exported without the sliding-window attention config.json "
                                f"gives ({windows}), and past the window their logits would be another model's; {fix}")
        int8 = index.get("int8")
        if int8 and not (isinstance(int8, dict) and isinstance(int8.get("exit_head"), str)
                         and isinstance(int8.get("decoder_layers"), list)
                         and all(isinstance(n, str) for n in int8["decoder_layers"])
                         and len(int8["decoder_layers"]) == self.n_layers):
            raise ModelDirError(f"{path}: its 8-bit graphs are not one per layer and a head; {fix}")
        listed = [*layers, *fill.values(), head, *((int8["decoder_layers"] + [int8["exit_head"]]) if int8 else [])]
        if "weights" in index:
            listed.append(index["weights"])
        if bad := [n for n in listed if not is_bare_file_name(n)]:  # read (and copied to the cache) as listed
            raise ModelDirError(f"{path} lists {bad[0]!r} among its files: not a file name in {self.model_dir}; {fix}")
        return index

    def _check_unchanged_since_export(self) -> None:
        """The files the graphs were built from, as `tact export` recorded them (checked last: a file of another
        shape is named best by the checks before). Flipped bytes in the weights decoded as another model, and an
        edited config.json decoded with values the graphs no longer agree with, both in silence."""
        path, fix = self.model_dir / GRAPHS_INDEX, f"re-run `tact export {self.model_dir}`"
        changed = changed_since_export(self.model_dir, self._index)
        if "config.json" in changed:
            raise ModelDirError(f"{self.model_dir / 'config.json'} has changed since `tact export` (the graphs and "
                                f"weights were made with the values it held then, and with its values now, rope_theta "
                                f"or a norm's epsilon, they would decode as another model); restore the config.json "
                                f"the model was trained with, or {fix}")
        if changed:
            names = " and ".join(str(self.model_dir / name) for name in changed)
            raise ModelDirError(f"{names} {'is' if len(changed) == 1 else 'are'} not what `tact export` built the "
                                f"graphs from (the content differs from the digest {path} recorded): damaged, or "
                                f"replaced since; {RESTORE}, or {fix} if it was replaced on purpose")

    def _layer_session(self, name: str, where: Path | None = None, *, layer: int,
                       int8: bool = False) -> ort.InferenceSession:
        """Decoder layer ``layer``'s graph, checked against config.json: a graph exported for other KV heads or head
        size (config.json edited, or another model's graphs) loaded fine and failed every decode."""
        session = self._session(name, "decoder layer", where, graph=layer_graph_name(layer, int8))
        inputs = {i.name: i.shape for i in session.get_inputs()}
        want = {"hidden": ["T", self.embed.shape[1]], "past_k": [1, self.n_kv, "S", self.head_dim]}
        path = (where or self._graphs) / name
        for key, shape in want.items():
            got = inputs[key]
            if len(got) != len(shape) or any(isinstance(g, int) and isinstance(w, int) and g != w
                                             for g, w in zip(got, shape)):
                raise ModelDirError(f"{path} takes {key} of shape {got}, this model's "
                                    f"config.json and weights give {shape} (num_key_value_heads {self.n_kv}, head_dim "
                                    f"{self.head_dim}, hidden size {self.embed.shape[1]}); re-run "
                                    f"`tact export {self.model_dir}`")
        return session

    def _fp32_head(self) -> ort.InferenceSession:
        if self.head_session is None:
            self.head_session = self._session(self._head_graph, "exit head", graph=EXIT_HEAD_GRAPH)
        return self.head_session

    def use_weights(self, weights: str) -> None:
        """Choose what decoding steps read (``WEIGHTS``), keeping the fp32 graphs that prompts read: the server loads
        the model at process start, before the editor's settings say which weights, and switches here instead of
        loading it all again. Decoding steps (up to MAX_INT8_ROWS tokens) read the 8-bit graphs; prompts stay fp32
        (compute-bound)."""
        if weights not in WEIGHTS:
            raise ValueError(f"unknown weights {weights!r}; one of {WEIGHTS}")
        with self.lock:  # not in the middle of a decode
            if weights == "int8" and not self.int8_layer_sessions:
                int8 = self._index.get("int8")
                if not int8:
                    raise ModelDirError(f"{self.model_dir / GRAPHS_INDEX} lists no 8-bit graphs (exported before they "
                                        f"existed); re-run `tact export {self.model_dir}`, or use fp32 weights")
                # made ready at load when asked for then; else derives the 8-bit weights now if absent
                where = self._int8_graphs or graphs_dir(self.model_dir, self._index, int8=True)
                layers = [self._layer_session(n, where, layer=i, int8=True)  # all or nothing: a failure
                          for i, n in enumerate(int8["decoder_layers"])]
                head = self._session(int8["exit_head"], "exit head", where, graph=EXIT_HEAD_GRAPH)  # leaves the runtime as it was
                self._int8_bindings = [self._bind_cache(i, s) for i, s in enumerate(layers)]
                self.int8_layer_sessions, self.int8_head_session = layers, head
            elif weights == "fp32":
                self.int8_layer_sessions, self._int8_bindings, self.int8_head_session = [], [], None
                self._int8_graphs = None  # a later switch checks the 8-bit weights again
                self._fp32_head()
            if weights != self.weights:  # the cached KV came from the other weights: reused, it changed the output
                self.cache.truncate(0)  # (an fp32 decode after int8 steps was no longer the fresh fp32 one)
            self.weights = weights

    def _session(self, name: str, kind: str, where: Path | None = None, graph: str | None = None
                 ) -> ort.InferenceSession:
        """The graph ``name`` (under ``where``, else where the graphs load from), checked to take the inputs of its
        ``kind`` (GRAPH_INPUTS) and to be the graph ``graph`` (the name `tact export` gives it: a file copied over
        another of its kind, one layer's over the next, passed the first check and decoded other text, or failed
        every dynamic request with a bare ValueError while the server said it was ready)."""
        where = where or self._graphs
        if not (where / name).is_file():  # missing, or a pipe or device, which onnxruntime would read without end
            raise ModelDirError(f"{where / name} is missing or not a file; re-run `tact export {self.model_dir}`")
        try:
            session = ort.InferenceSession(str(where / name), sess_options=self._session_options,
                                           providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelDirError(f"{where / name} cannot be loaded ({exc}); re-run `tact export {self.model_dir}`") from exc
        inputs = sorted(i.name for i in session.get_inputs())
        if inputs != sorted(GRAPH_INPUTS[kind]):
            missing = sorted(set(GRAPH_INPUTS[kind]) - set(inputs))
            what = f"no {missing[0]} input" if missing else f"inputs {', '.join(inputs)}"
            raise ModelDirError(f"{where / name} is not {'an' if kind[0] in 'aeiou' else 'a'} {kind} graph ({what}); "
                                f"re-run `tact export {self.model_dir}`")
        if graph is not None and (found := session.get_modelmeta().graph_name) != graph:
            raise ModelDirError(f"{where / name} holds the graph {found!r}, where {graph!r} belongs (a file copied over "
                                f"another?); re-run `tact export {self.model_dir}`")
        return session

    def load_dynamic_graphs(self) -> None:
        """Load now what the dynamic policy otherwise loads on first use (the kv_fill graphs, the 8-bit exit head),
        so that a timed decode does not pay for loading (the bench, before its timed loop)."""
        for exit_layer in self._kv_fill_graphs:
            self._kv_fill(exit_layer)
        self._early_exit_head()

    def _kv_fill(self, exit_layer: int) -> ort.InferenceSession:
        if exit_layer not in self.kv_fill_sessions:
            self.kv_fill_sessions[exit_layer] = self._session(self._kv_fill_graphs[exit_layer], "kv_fill",
                                                              graph=kv_fill_graph_name(exit_layer))
        return self.kv_fill_sessions[exit_layer]

    def _newline_table(self) -> np.ndarray:
        tok = self.tokenizer.tok
        return np.array(["\n" in tok.decode([i], skip_special_tokens=False) for i in range(self.vocab_size)])

    def _tail_bytes(self, ids: list[int], n: int) -> bytes | None:
        """The bytes the last tokens of ``ids`` decode to, at least ``n`` of them where the tokens hold as many
        (special tokens: none, ``decode`` skips them); None where the tokenizer is not byte-level."""
        table = self.token_bytes
        if table is None:
            return None
        out = b""
        for t in reversed(ids):
            if len(out) >= n:
                break
            out = table.pieces[t] + out
        return out

    def _ends_mid_character(self, ids: list[int], text: str) -> bool:
        """Whether ``text``, the decoded ``ids``, ends in a U+FFFD that stands for bytes of no whole character (a cut
        inside one). A U+FFFD whose three bytes the tokens wrote is a character of the text: a file read with
        replacement characters holds them, and a suggestion that copies them ends in one. Without the tokens' bytes
        (a tokenizer that is not byte-level) every final U+FFFD counts as a cut."""
        if not text.endswith("\ufffd"):
            return False
        tail = self._tail_bytes(ids, len(WHOLE_REPLACEMENT))
        return tail is None or not tail.endswith(WHOLE_REPLACEMENT)

    @property
    def name(self) -> str:
        return self.record.get("name") or self.model_dir.name

    # -- building blocks -----------------------------------------------------------------------
    def _positions(self, start: int, count: int) -> Positions:
        """The position inputs of tokens at start..start+count-1, shared by every layer they pass."""
        return Positions(self._cos[start:start + count], self._sin[start:start + count],
                         np.array([start + count - 1], np.int32), np.array(start + count, np.int32))

    def _reads_int8(self, rows: int) -> bool:
        """Whether a step of ``rows`` tokens reads the 8-bit graphs (a decoding step, with weights="int8")."""
        return self.weights == "int8" and rows <= MAX_INT8_ROWS

    def _bind_cache(self, i: int, session: ort.InferenceSession) -> ort.IOBinding:
        """Layer i's binding (``session``: its fp32 or 8-bit graph): its cache buffers as past and present, so the
        graph extends them in place."""
        io = session.io_binding()
        io.bind_output("hidden_out")  # first, so it is get_outputs()[0]
        io.bind_ortvalue_input("past_k", self.cache.ort_k[i])
        io.bind_ortvalue_input("past_v", self.cache.ort_v[i])
        io.bind_ortvalue_output("present_k", self.cache.ort_k[i])
        io.bind_ortvalue_output("present_v", self.cache.ort_v[i])
        return io

    def _layer(self, i: int, h: np.ndarray, at: Positions) -> np.ndarray:
        """Run decoder layer i on h (T, D) at the positions ``at``; writes its KV cache there."""
        # Bound arrays are read in place: this local (and the caller's ``at``) keep them alive through the run.
        hidden = np.ascontiguousarray(h, dtype=np.float32)
        int8 = self._reads_int8(hidden.shape[0])
        io = (self._int8_bindings if int8 else self._bindings)[i]
        session = (self.int8_layer_sessions if int8 else self.layer_sessions)[i]
        io.bind_cpu_input("hidden", hidden)
        io.bind_cpu_input("cos", at.cos)
        io.bind_cpu_input("sin", at.sin)
        io.bind_cpu_input("seqlens_k", at.seqlens_k)
        io.bind_cpu_input("total_len", at.total_len)
        session.run_with_iobinding(io)
        out = io.get_outputs()[0].numpy()  # (T, D), holding its own reference to the output
        io.bind_output("hidden_out")  # unbound: the binding keeps no (T, D) between runs, and T may change
        return out

    def _fill_kv(self, exit_layer: int, h: np.ndarray, start: int, at: Positions) -> None:
        """KV of layers after exit_layer from the exiting hidden state h (T, D) at positions start.. (``at``)."""
        outs = self._kv_fill(exit_layer).run(None, {"hidden": h, "cos": at.cos, "sin": at.sin})
        if outs[0].ndim == 4:  # keys, values (T, n, Hkv, hd) of the n later layers (models.export.kv_fill_graph)
            keys, values = outs[0].swapaxes(0, 1), outs[1].swapaxes(0, 1)
        else:  # graphs exported before: k_j, v_j (T, Hkv, hd) for each later layer j
            keys, values = outs[0::2], outs[1::2]
        for j, k, v in zip(range(exit_layer + 1, self.n_layers), keys, values, strict=True):
            self.cache.write(j, start, k, v)

    def head(self, layer: int, h: np.ndarray, exit_weights: str = "fp32") -> np.ndarray:
        """Logits (T, V) of exit `layer` for hidden states h (T, D). ``exit_weights`` "int8": an early exit (not the
        last layer) in a decoding step reads the 8-bit head (``DecodeOptions.exit_head_weights``)."""
        rows = h.shape[0]
        session = None
        if self._reads_int8(rows):
            session = self.int8_head_session
        elif exit_weights == "int8" and layer < self.n_layers - 1 and rows <= MAX_INT8_ROWS:
            session = self._early_exit_head()
        return (session or self._fp32_head()).run(None, {"hidden": h, "norm_weight": self.exit_norms[layer]})[0]

    def _early_exit_head(self) -> ort.InferenceSession | None:
        """The 8-bit head for early exits, loaded on first use (its weight file derived if absent); None where the
        directory's graphs have no 8-bit head (exported before they existed): the fp32 head serves instead."""
        if self._int8_exit_head is None:
            int8 = self._index.get("int8")
            if self.int8_head_session is not None:
                self._int8_exit_head = self.int8_head_session
            elif not int8:
                self._int8_exit_head = False
            else:
                where = self._int8_graphs or graphs_dir(self.model_dir, self._index, int8=True)
                self._int8_exit_head = self._session(int8["exit_head"], "exit head", where, graph=EXIT_HEAD_GRAPH)
        return self._int8_exit_head or None

    def exit_features(self, layer: int, h: np.ndarray, exit_weights: str = "fp32") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(top log-probability (T,), gap to the second best (T,), log-probabilities (T, V)) of exit `layer`
        for h (T, D): what the exit calibration reads, and what the token that leaves is chosen from.
        ``exit_weights``: as in ``head``."""
        logp = log_softmax(self.head(layer, h, exit_weights))
        return (*top_and_margin(logp), logp)

    def forward(self, ids: list[int], start: int, first: int = 0, last: int | None = None,
                hidden: np.ndarray | None = None) -> np.ndarray:
        """Run layers first..last on the tokens at positions start.. (or on `hidden`); returns the hidden state."""
        last = self.n_layers - 1 if last is None else last
        h = self.embed[ids] if hidden is None else hidden
        T = h.shape[0]
        at = self._positions(start, T)
        for i in range(first, last + 1):
            h = self._layer(i, h, at)
        return h

    def cached_prefix(self, prompt_ids: list[int]) -> int:
        """How many leading tokens of prompt_ids the cache holds exactly (at most all but the last)."""
        c = self.cache
        common = 0
        limit = min(c.exact, len(prompt_ids) - 1)
        while common < limit and c.ids[common] == prompt_ids[common]:
            common += 1
        return common

    def prefill(self, prompt_ids: list[int], common: int | None = None) -> tuple[np.ndarray, int]:
        """Bring the cache to prompt_ids[:-1] reusing the common prefix (``common``: ``cached_prefix``, when the
        caller has it), run the rest; returns the final hidden state of the last prompt token (1, D) and how many
        tokens came from the cache."""
        c = self.cache
        common = self.cached_prefix(prompt_ids) if common is None else common
        c.truncate(common)
        new = prompt_ids[common:]
        h = self.forward(new, common)
        c.ids.extend(new)
        c.exact = c.length
        return h[-1:], common

    def reset(self) -> None:
        with self.lock:  # not in the middle of a decode: it went on at position 0, without its prompt
            self.cache.truncate(0)

    def fim_prompt(self, prefix: str, suffix: str, reserve: int) -> list[int]:
        """Token ids of the fill-in-the-middle prompt for text ``prefix`` before the cursor and ``suffix`` after it,
        leaving ``reserve`` tokens for the suggestion within the trained context (``context_tokens``) and within what
        ``generate`` keeps of a prompt (``fit_prompt``)."""
        return self.completion_prompt(prefix, suffix, reserve).ids

    def completion_prompt(self, prefix: str, suffix: str, reserve: int, heal_tokens: int = 0) -> Prompt:
        """``fim_prompt`` with token healing: the prefix's last ``heal_tokens`` tokens are left out of it and given
        back as the text the suggestion's first tokens must write again (``generate(..., heal=)``; models.healing).
        Nothing is taken back for a tokenizer that is not byte-level or where it would cut a character."""
        info = self.tokenizer
        prefix, suffix = to_lf(prefix), to_lf(suffix)  # the text the model trained on has no CR
        whole, suffix_ids = info.encode(prefix), info.encode(suffix)[:SUFFIX_TOKENS]
        budget = min(self.context_tokens, self.max_len - 2)  # generate keeps max_len - 2
        if heal_tokens <= 0 or self.token_bytes is None:
            return Prompt(build_prompt(info, whole, suffix_ids, budget, reserve=reserve), "")
        # The suggestion also writes the text taken back (take_back may take fewer tokens than asked), in as many
        # tokens as it has bytes at most: healing lets any shorter start of it be written, and reserving only the
        # tokens taken back let a suggestion of a prompt at its budget run past the trained context. The prefix is
        # cut first against a fixed allowance for it: a reserve of the bytes taken back moved the room with every
        # keystroke, and with it the prompt's start across a grid step (`keep_prefix`), so the KV cache was lost and
        # the prompt lost 128 tokens on one keystroke and got them back on the next (63 of 2,153 keystrokes typing
        # standard-library lines, against 8 without healing).
        allowance = min(HEAL_ALLOWANCE, budget // 16)  # a small context's room is not given over to it
        first = build_prompt(info, whole, suffix_ids, budget, reserve=reserve + allowance)
        kept = self._prefix_ids(first)
        prefix_ids, heal = self.token_bytes.take_back(kept, heal_tokens)
        rewrite = max(len(kept) - len(prefix_ids), len(heal.encode("utf-8", "surrogatepass")))
        # cut again only where the text taken back needs more than the allowance (the room is then smaller)
        ids = build_prompt(info, prefix_ids, suffix_ids, budget, reserve=reserve + max(rewrite, allowance))
        return Prompt(ids, heal)

    def _prefix_ids(self, ids: list[int]) -> list[int]:
        """The prefix tokens of a prompt ``build_prompt`` made: after its ``<|fim_middle|>``, or all of a plain one."""
        info = self.tokenizer
        return ids[ids.index(info.fim_middle_id) + 1:] if info.has_fim and info.fim_middle_id in ids else ids

    def prompt_prefix_text(self, prompt: Prompt) -> str:
        """The text before the cursor ``prompt`` holds (after the budget's cut), with the text token healing took
        back from it: what of the prefix, a notebook's cells above included, the model reads."""
        return self.tokenizer.decode(self._prefix_ids(prompt.ids)) + prompt.heal

    @functools.cached_property
    def token_bytes(self) -> TokenBytes | None:
        """The bytes each token writes, for token healing (None: the tokenizer is not byte-level). Built on first
        use, not at load: the server's cold start does not wait for it."""
        return TokenBytes.of_tokenizer(self.tokenizer.tok, self.vocab_size)

    def suggestion_text(self, token_ids: list[int], heal: str = "") -> str:
        """The text ``token_ids`` add after the cursor: the UTF-8 of their bytes, ended before the first bytes that
        are none (``TokenBytes.readable_tokens``: a character cut, bytes the model got wrong), without the ``heal``
        text they first write again ("" while they have not written all of it). Decoded with replacement, a token
        limit inside a character showed U+FFFD, and stray bytes the characters they happen to spell and all after
        them (C2 B8 97 80 E2 96 81, the lead byte of E4 B8 96 got wrong, read U+00B8, two U+FFFD, U+2581)."""
        if self.token_bytes is not None:
            token_ids = token_ids[:self.token_bytes.readable_tokens(token_ids)]
        text = self.tokenizer.decode(token_ids)
        return text[len(heal):] if text.startswith(heal) else ""

    def fit_prompt(self, prompt_ids: list[int]) -> list[int]:
        """``prompt_ids`` cut to the max_len - 2 tokens ``generate`` keeps (the cache holds max_len; the suggestion
        needs room). A fill-in-the-middle prompt keeps its markers and suffix and loses the start of its prefix, as
        ``build_prompt`` cuts it: cut from the front it lost its markers. Any other loses its oldest tokens."""
        room = self.max_len - 2
        if len(prompt_ids) <= room:
            return prompt_ids
        info = self.tokenizer
        fim = info.has_fim and prompt_ids[0] in (info.fim_suffix_id, info.fim_middle_id)
        if fim and info.fim_middle_id in prompt_ids:
            middle = prompt_ids.index(info.fim_middle_id)  # <|fim_suffix|> suffix <|fim_middle|> prefix
            return build_prompt(info, prompt_ids[middle + 1:], prompt_ids[1:middle], room, reserve=0)
        return prompt_ids[-room:]

    # -- decoding --------------------------------------------------------------------------------
    def generate(self, prompt_ids: list[int], options: DecodeOptions | None = None,
                 should_cancel: Callable[[], bool] | None = None, heal: str = "") -> DecodeResult:
        """Decode after ``prompt_ids`` with ``options``. ``heal``: the text a healed prompt left out
        (``completion_prompt``), which the first tokens must write again before the suggestion starts."""
        opts = options or DecodeOptions()
        if opts.policy not in POLICIES:
            raise ValueError(f"unknown decoding policy {opts.policy!r}; one of {POLICIES}")
        # a negative id read the embedding's last rows as a prompt nobody wrote; one past them failed in numpy
        if prompt_ids and (min(prompt_ids) < 0 or max(prompt_ids) >= self.vocab_size):
            bad = next(t for t in prompt_ids if not 0 <= t < self.vocab_size)
            raise ValueError(f"token id {bad} is outside the vocabulary (0 to {self.vocab_size - 1})")
        if opts.max_new_tokens <= 0:  # nothing to write: neither the cache nor the result changes
            return DecodeResult(prompt_tokens=len(prompt_ids))
        prompt_ids = self.fit_prompt(prompt_ids or [self.tokenizer.eos_id])
        res = DecodeResult(prompt_tokens=len(prompt_ids))  # what the model read
        if heal and self.token_bytes is not None:
            heal = without_surrogates(heal)  # as the prompt's text is read: a lone surrogate has no UTF-8 bytes
            res.heal, res.heal_left = heal, heal.encode("utf-8")
        with self.lock:
            t0 = time.perf_counter()
            cancel = should_cancel or (lambda: False)
            if opts.policy == "dynamic":
                h, exit_layer, exit_logp = self._start_dynamic(prompt_ids, opts, res)
            elif opts.policy == "speculative":
                start = self._start_speculative(prompt_ids, opts, res)
            else:
                h, res.cached_tokens = self.prefill(prompt_ids)
            res.prefill_ms = (time.perf_counter() - t0) * 1000
            t1 = time.perf_counter()
            if opts.policy == "dynamic":
                self._decode_dynamic(h, opts, res, cancel, exit_layer, exit_logp)
            elif opts.policy == "speculative":
                if not start.ended:
                    self._decode_speculative(start.hidden, opts, res, cancel, start.pending)
            else:
                self._decode_full(h, opts, res, cancel)
            res.decode_ms = (time.perf_counter() - t1) * 1000
        res.text = self.tokenizer.decode(res.token_ids)
        # A suggestion cut mid-character (the token limit, Stop, the context, a cancel) ends in bytes that decode to
        # U+FFFD: its last tokens go until the text ends whole. After decoding, so every policy cuts alike. A U+FFFD
        # written whole stays in the text the bench, the scorer and next edits read (judged by the text alone, every
        # text that copied one lost it); inline completions still end before it (postprocess._UNWRITABLE).
        while res.token_ids and self._ends_mid_character(res.token_ids, res.text):
            del res.token_ids[-1], res.logprobs[-1], res.layers[-1], res.stop_probs[-1]
            res.text = self.tokenizer.decode(res.token_ids)
        # The text also ends before bytes that are no UTF-8 (the model's, not a cut): the tokens stay the decode's
        # record (what every policy chose, the same where they agreed), so the text may end before their last ones.
        res.text = self.suggestion_text(res.token_ids, res.heal)
        return res

    def _emit(self, res: DecodeResult, opts: DecodeOptions, token: int, logp: float, layers: int, p_stop: float) -> bool:
        """Record one generated token; returns True when decoding must end after it."""
        if token == self.tokenizer.eos_id:
            res.stop_reason = "eos"
            return True
        newline = bool(self._newline[token])
        if res.heal_left:  # only what the token writes past the text given back can end the line
            res.heal_left, past = self.token_bytes.written(res.heal_left, token)
            newline = b"\n" in past
            res.heal_tokens += not past
        res.token_ids.append(int(token))
        res.logprobs.append(float(logp))
        res.layers.append(layers)
        res.stop_probs.append(float(p_stop))
        # A loop is sought in the suggestion's own tokens: those that only write the text given back (token healing)
        # are what the user typed, usually the very unit that repeats, and counting them kept a first copy that lay
        # partly in that text (`x = [0, 0, 0` got nothing, a string of '-' + '-' a dangling ` +`).
        h = res.heal_tokens
        if opts.stop_repeats and (loop := repeat_start(res.token_ids[h:], opts.stop_repeats)) is not None:
            keep = h + loop[0] + loop[1]  # the text before the loop and one copy of its unit
            del res.token_ids[keep:], res.logprobs[keep:], res.layers[keep:], res.stop_probs[keep:]
            res.stop_reason = "repeat"
            return True
        if opts.single_line and newline:
            res.stop_reason = "newline"
            return True
        if res.suggestion_tokens >= opts.max_new_tokens:
            res.stop_reason = "max_tokens"
            return True
        if self.cache.length >= self.max_len - 1:
            res.stop_reason = "context"
            return True
        return False

    def _choose(self, layer: int, h: np.ndarray, opts: DecodeOptions, res: DecodeResult,
                logp: np.ndarray | None = None) -> tuple[int, float, float] | None:
        """Greedy token at exit `layer` for h (1, D), unless the controller says Stop (returns None).
        ``logp`` (V,): that exit's log-probabilities when already computed."""
        if logp is None:
            logp = log_softmax(self.head(layer, h, opts.exit_head_weights)[0])
        if res.heal_left:
            logp = healed_logp(logp, self.token_bytes.candidates(res.heal_left))
        token = int(logp.argmax())
        p_stop = float(self.controller.stop_probs(layer, h[0], logp[token]))
        if p_stop >= (threshold := opts.stop_threshold_at(res.suggestion_tokens)):
            res.stop_reason, res.stop_fired = "stop", (p_stop, threshold)
            return None
        return token, float(logp[token]), p_stop

    def _decode_full(self, h, opts, res, should_cancel) -> None:
        L = self.n_layers
        while True:
            choice = self._choose(L - 1, h, opts, res)
            if choice is None or self._emit(res, opts, choice[0], choice[1], L, choice[2]):
                return
            if should_cancel():
                res.stop_reason = "cancelled"
                return
            pos = self.cache.length
            h = self.forward([choice[0]], pos)[-1:]
            self.cache.ids.append(choice[0])
            self.cache.exact = self.cache.length
            res.layer_passes += L

    def _start_dynamic(self, prompt_ids: list[int], opts: DecodeOptions,
                       res: DecodeResult) -> tuple[np.ndarray, int, np.ndarray | None]:
        """Dynamic's prompt pass: (the last prompt token's hidden state (1, D), the layer it left after, that exit's
        log-probabilities (V,) when its decision computed them). With ``exit_last_prompt_token``, where that token is
        the only one not cached, it runs like a decoded token and may leave early; otherwise a plain prefill."""
        common = self.cached_prefix(prompt_ids)
        res.cached_tokens = common
        if not (opts.exit_last_prompt_token and common == len(prompt_ids) - 1) or res.heal_left:
            return self.prefill(prompt_ids, common)[0], self.n_layers - 1, None
        self.cache.truncate(common)
        h, exit_layer, exit_logp = self._dynamic_pass(prompt_ids[-1], opts)
        if exit_layer == self.n_layers - 1:  # through every layer: its KV is exact
            self.cache.exact = self.cache.length
        return h, exit_layer, exit_logp

    def _decode_dynamic(self, h, opts, res, should_cancel, exit_layer: int, exit_logp: np.ndarray | None) -> None:
        """h (1, D) left exit ``exit_layer``; ``exit_logp`` (V,): that exit's log-probabilities when the exit
        decision computed them."""
        while True:
            choice = self._choose(exit_layer, h, opts, res, exit_logp)
            if choice is None or self._emit(res, opts, choice[0], choice[1], exit_layer + 1, choice[2]):
                return
            if should_cancel():
                res.stop_reason = "cancelled"
                return
            h, exit_layer, exit_logp = self._dynamic_pass(choice[0], opts, res)

    def _dynamic_pass(self, token: int, opts: DecodeOptions,
                      res: DecodeResult | None = None) -> tuple[np.ndarray, int, np.ndarray | None]:
        """Run ``token`` at the next position through the layers until the controller lets it leave (the KV of the
        layers it skips filled from its exit state): (its hidden state (1, D), the exit layer, that exit's
        log-probabilities (V,) when the decision computed them). ``res`` counts the layer passes."""
        L = self.n_layers
        pos = self.cache.length
        self.cache.ids.append(token)  # not exact: skipped layers will hold approximate KV
        guess = self._lookup_guess(opts)
        x = self.embed[[token]]
        at = self._positions(pos, 1)
        for i in range(L):
            x = self._layer(i, x, at)
            if res is not None:
                res.layer_passes += 1
            if opts.min_exit_layer <= i < L - 1 and self.controller.trained:
                leaves, logp = self._exits(i, x, opts, guess, res.suggestion_tokens if res is not None else 0)
                if leaves and res is not None and res.heal_left:
                    # the next token must write text given back (token healing): the exit's token is the last layer's
                    # choice among the candidates only where it is one (the controller judged the unrestricted top)
                    leaves = logp is not None and self.token_bytes.may_write(res.heal_left, int(logp.argmax()))
                if leaves:
                    self._fill_kv(i, x, pos, at)
                    return x, i, logp
        return x, L - 1, None

    def _exits(self, layer: int, x: np.ndarray, opts: DecodeOptions, guess: int | None = None,
               emitted: int = 0) -> tuple[bool, np.ndarray | None]:
        """The dynamic policy's decision after `layer` for x (1, D) (``Controller.leaves``) given prompt
        lookup's guess for the token, the suggestion's token at index ``emitted``: (leave here, that exit's
        log-probabilities (V,) when the decision computed them)."""
        features, logp, threshold = None, None, opts.exit_threshold
        if self.controller.reads_head(layer) or (guess is not None and self.controller.may_exit(layer)):
            top, margin, logp = self.exit_features(layer, x, opts.exit_head_weights)
            features = (top[0], margin[0])
            threshold = opts.exit_threshold_for(int(logp[0].argmax()), guess)
        # the Stop threshold in force at this token: a token Stop would end after this exit is left to the deeper
        # layers (the first token's threshold held every token back, where Stop inside asks for more: the served
        # dynamic skipped fewer layers than the bench measured)
        leaves = bool(self.controller.leaves(layer, x[0], features, threshold, opts.stop_threshold_at(emitted),
                                             opts.exit_rule))
        return leaves, (logp[0] if logp is not None else None)

    def _lookup_guess(self, opts: DecodeOptions) -> int | None:
        """Prompt lookup's guess for the token after the cached ids (dynamic's second opinion on exits)."""
        if opts.exit_lookup_threshold is None:
            return None
        draft = self._lookup_draft(opts)
        return draft[0] if draft else None

    def _cheap_draft(self, opts: DecodeOptions, state: np.ndarray | None = None) -> tuple[list[int], str]:
        """Speculative's draft that runs no layer, and where it came from ("previous", "lookup", "ngram" or "head";
        empty: none). The previous suggestion's rest first (``_previous_draft``), then prompt lookup when at least
        the last two tokens matched earlier, else the corpus's n-gram table (``opts.ngram_drafts``), else the trained
        draft head from ``state`` (D,), the final state that chose the last token in the cache (``opts.draft_head``;
        None: no head draft). Lookup on the last token alone is not tried: accepted about 7% of the time on
        calibration code, its drafts cost their verification rows (a second row adds 15-20% to a step here)."""
        if opts.lookup_range is not None:  # a rewrite: copying its window is the prior, even on one token
            return self._lookup_draft(opts), "lookup"
        previous = self._previous_draft(opts)
        if previous:
            return previous, "previous"
        lookup = self._lookup_draft(opts, shortest=2)
        if lookup:
            return lookup, "lookup"
        if self.ngram_drafts is not None and opts.ngram_drafts:
            table = self.ngram_drafts.draft(self.cache.ids, opts.ngram_tokens)
            if table:
                return table, "ngram"
        if state is not None and self.draft_head is not None and opts.draft_head and opts.head_tokens > 0:
            return self.draft_head.draft(state, self.cache.ids[-1], opts.head_tokens), "head"
        return [], "none"

    def _previous_draft(self, opts: DecodeOptions) -> list[int]:
        """What followed the cache's trailing n-gram (3 or 2 tokens) in the ids the cache held before this request
        (``_previous``), where that continuation lies past the new prompt's shared start: the rest of the previous
        suggestion, when the user typed on through it. The most recent match wins, as in prompt lookup."""
        old, ids = self._previous, self.cache.ids
        if not old or not opts.previous_drafts:
            return []
        arr = np.asarray(old)
        for n in range(opts.lookup_ngram, 1, -1):
            # matches whose next token is at or past the shared start, and exists
            start = latest_match(arr, ids[-n:], max(0, self._previous_from - n), len(old) - n) if len(ids) >= n else None
            if start is not None:
                return old[start + n:start + n + opts.previous_tokens]
        return []

    def _within_line(self, draft: list[int], opts: DecodeOptions) -> list[int]:
        """``draft`` up to its first token that holds a line break, where that token ends the suggestion (single-line,
        the text token healing gave back written): verifying it and what follows could only waste rows, since the
        whole model's own token after the draft writes the line break. Held out, 13.5% fewer rows drafted for as many
        accepted, 1.27x -> 1.30x against `full` (800 samples, docs/code-model.md)."""
        if not (opts.single_line and opts.drafts_end_at_line_break):
            return draft
        for i, token in enumerate(draft):
            if self._newline[token]:
                return draft[:i]
        return draft

    def _lookup_draft(self, opts: DecodeOptions, shortest: int = 1) -> list[int]:
        """Prompt lookup: the tokens that followed the most recent earlier match of the trailing n-gram
        (the longest n from lookup_ngram down to ``shortest`` that matches), within
        ``lookup_range``."""
        ids = self.cache.ids
        lo, hi = opts.lookup_range or (0, len(ids))
        hi = min(hi, len(ids))
        arr = np.asarray(ids)
        for n in range(opts.lookup_ngram, shortest - 1, -1):  # lookup_ngram 0: no lookup
            # a match must be followed by a token before hi, and lie before the tail itself
            start = latest_match(arr, ids[-n:], lo, min(len(ids) - n, hi - n)) if len(ids) > n else None
            if start is not None:
                return ids[start + n:min(start + n + opts.lookup_tokens, hi)]
        return []

    def _start_speculative(self, prompt_ids: list[int], opts: DecodeOptions,
                           res: DecodeResult) -> SpeculativeStart:
        """Speculative's prompt pass: when a cheap draft (prompt lookup, the n-gram table) follows the prompt, it
        runs in the same pass as the prompt's uncached tokens and is verified there, so the suggestion's first
        tokens need no step of their own. Returns the last prompt token's hidden state after a plain prefill (no
        cheap draft), else the token to go on from, or neither when the pass already ended the suggestion.
        Drafting the first token with the first layers instead did not pay (1,000 samples, docs/code-model.md).
        Without ``draft_in_prompt_pass``: always the plain prefill."""
        c = self.cache
        common = self.cached_prefix(prompt_ids)
        res.cached_tokens = common
        # the ids past the shared start are about to go: kept as drafts (the previous suggestion, as a rule)
        self._previous, self._previous_from = (list(c.ids), common) if opts.previous_drafts and c.length > common else ([], 0)
        draft, source = [], "none"
        if opts.draft_in_prompt_pass:
            c.truncate(common)
            c.ids.extend(prompt_ids[common:])  # drafts are looked up after the whole prompt
            # the text token healing gave back, as its own tokens: the likeliest way to write it again, then what
            # is looked up after it
            healed = self.tokenizer.encode(res.heal) if res.heal_left else []
            c.ids.extend(healed)
            draft, source = self._cheap_draft(opts)
            draft = self._within_line(draft, opts)  # after the healed tokens, the text given back is written
            del c.ids[len(c.ids) - len(healed):]
            if healed:
                draft, source = [*healed, *draft], "lookup"
            draft = draft[:self.max_len - 1 - c.length]  # what still fits in the cache after the prompt
        res.verify_steps += 1
        if not draft:
            res.undrafted_steps += 1
            return SpeculativeStart(self.prefill(prompt_ids, common)[0], None)  # it truncates the ids to the prefix
        new = prompt_ids[common:]
        h = self.forward([*new, *draft], common)[len(new) - 1:]  # (1 + len(draft), D) from the last prompt token on
        res.layer_passes += self.n_layers * len(draft)
        return SpeculativeStart(None, self._verify(c.length - 1, h, draft, source, opts, res))

    def _decode_speculative(self, h, opts, res, should_cancel, pending: Pending | None = None) -> None:
        """``pending``: the last emitted token, not yet in the cache (when the prompt's pass emitted tokens); None:
        choose the first token from h (1, D), the final hidden state of the last token in the cache."""
        L = self.n_layers
        k = min(opts.draft_layers, L - 1)  # 0: no layer drafts
        if pending is None:
            choice = self._choose(L - 1, h, opts, res)
            if choice is None or self._emit(res, opts, choice[0], choice[1], L, choice[2]):
                return
            pending = Pending(choice[0], h[0])
        while not should_cancel():
            start = self.cache.length
            room = self.max_len - 1 - start  # drafts that still fit in the cache after `pending`
            self.cache.ids.append(pending.token)
            draft, source = self._cheap_draft(opts, pending.state)
            draft = draft[:room] if res.heal_left else self._within_line(draft[:room], opts)
            res.verify_steps += 1
            res.undrafted_steps += not draft and k <= 0
            if draft:
                h_all = self.forward([pending.token, *draft], start)
                res.layer_passes += L * (len(draft) + 1)
            elif k <= 0:  # nothing to draft from: a plain step
                h_all = self.forward([pending.token], start)
                res.layer_passes += L
            else:
                hk, source = [], "layers"
                x = self.embed[[pending.token]]
                n_draft = min(opts.draft_tokens, room)
                for j in range(n_draft + 1):
                    x = self.forward([], start + j, 0, k - 1, hidden=x)
                    hk.append(x)
                    res.layer_passes += k
                    if j == n_draft:
                        break
                    logp = log_softmax(self.head(k - 1, x, opts.exit_head_weights)[0])
                    d = int(logp.argmax())
                    if d == self.tokenizer.eos_id:
                        break
                    draft.append(d)
                    if logp[d] < opts.draft_min_logprob:
                        n_draft = j + 1  # an unsure draft is likely rejected: make it the last one, verify now
                    x = self.embed[[d]]
                h_all = self.forward([], start, k, L - 1, hidden=np.concatenate(hk))
                res.layer_passes += (L - k) * len(hk)
            pending = self._verify(start, h_all, draft, source, opts, res)
            if pending is None:
                return
        res.stop_reason = "cancelled"

    def _verify(self, base: int, h_all: np.ndarray, draft: list[int], source: str, opts: DecodeOptions,
                res: DecodeResult) -> Pending | None:
        """Emit the whole model's tokens while the drafts match them. The cache holds ids up to position ``base``;
        h_all (1 + len(draft), D): final states at base.., h_all[j] predicts the token after base + j. ``source``:
        where the draft came from ("lookup", "ngram", "head", "layers" or "none"); a lookup draft token within
        ``copy_margin`` of the best is kept. Leaves the cache exact through the accepted drafts; returns the last
        emitted token (not yet in the cache) with the state that chose it, or None when decoding ended."""
        L = self.n_layers
        lenient = source == "lookup" and opts.copy_margin > 0
        res.drafted += len(draft)
        logp_all = log_softmax(self.head(L - 1, h_all))
        p_stop_all = self.controller.stop_probs(L - 1, h_all, logp_all.max(axis=-1))
        accepted = 0
        for j in range(len(h_all)):
            logp, p_stop = logp_all[j], p_stop_all[j]
            if res.heal_left:  # text given back still to write (token healing): only its tokens, as _choose
                logp = healed_logp(logp, self.token_bytes.candidates(res.heal_left))
                p_stop = self.controller.stop_probs(L - 1, h_all[j], logp.max())
            if p_stop >= (threshold := opts.stop_threshold_at(res.suggestion_tokens)):
                res.stop_reason, res.stop_fired = "stop", (float(p_stop), threshold)
                self.cache.truncate(base + j + 1)
                self.cache.exact = self.cache.length
                return None
            token = int(logp.argmax())
            if lenient and j < len(draft) and logp[draft[j]] >= logp[token] - opts.copy_margin:
                token = draft[j]  # close enough to the best: keep the copy
            matches = j < len(draft) and draft[j] == token
            done = self._emit(res, opts, token, float(logp[token]), L, float(p_stop))
            if matches and not done:
                accepted += 1
                self.cache.ids.append(token)
                continue
            break
        res.draft_accepted += accepted
        if source == "lookup":
            res.lookup_drafted += len(draft)
            res.lookup_accepted += accepted
        elif source == "ngram":
            res.ngram_drafted += len(draft)
            res.ngram_accepted += accepted
        elif source == "head":
            res.head_drafted += len(draft)
            res.head_accepted += accepted
        elif source == "previous":
            res.previous_drafted += len(draft)
            res.previous_accepted += accepted
        self.cache.truncate(base + 1 + accepted)
        self.cache.exact = self.cache.length
        return None if done else Pending(token, h_all[j])
