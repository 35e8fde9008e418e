"""Score a logged suggestion with our code model, as if our model had produced it.

Teacher forcing through :class:`models.runtime.EarlyExitRuntime`: the SPM prompt is built from the
text around the cursor exactly as serving builds it (`EarlyExitRuntime.completion_prompt`, its last
tokens taken back by token healing), the tokens of the text taken back and of the suggestion follow it,
and one pass through every layer gives, per token (those writing text taken back scored among the
tokens that could write it, as decoding chooses them; models.healing):

- its log-probability at the final layer (serving logs the same for the tokens it emits);
- the controller's P(stop) at the final layer, before the token (as the full and speculative
  policies compute it);
- the layers the dynamic policy would have used: the first token leaves the prefill at full
  depth; each later one after the first layer (from ``min_exit_layer``) whose controller says
  exit, as ``EarlyExitRuntime._decode_dynamic`` does. They are handed on only when the scorer's
  ``policy`` is `dynamic`: serving passes layers for that policy alone, so under the others the
  feature must be unknown in training too. (Trained with it and served without it, under the
  default `speculative`, stage-2 AUC fell from 0.711 to 0.702; docs/acceptance.md.)

Scores are cached in one JSON file per model identity (a hash of the model's files), so reruns
cost nothing and a retrained model never reuses another model's scores.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from models.exits import log_softmax
from models.healing import HEAL_TOKENS, healed_logp
from models.model_dir import read_record, write_atomically

# 2: stop_probs are the calibrated P(stop); 3: prompts fit the trained context (context_tokens); 4: token healing;
# 5: a healed prompt's prefix cut against a fixed allowance (models.runtime.HEAL_ALLOWANCE); 6: the token path
# greedy decoding takes to write the text, and serving's room for what it generates
SCORING_VERSION = 6
MAX_SUGGESTION_TOKENS = 128  # longer suggestions are scored on their first tokens
MAX_PATH_ROUNDS = 8  # passes that move the scored tokens onto decoding's path; past them the rest stays the tokenizer's
_MODEL_FILES = ("config.json", "tokenizer.json", "model.safetensors", "exit_heads.safetensors")
_SCORE_KEYS = frozenset({"logprobs", "stop_probs", "layers", "n_layers"})  # what a cached score holds


def model_identity(model_dir: str | Path) -> str:
    """'<name>-<sha256 of the model's files, 12 hex>': changes whenever the weights, the controller or
    the tokenizer change."""
    model_dir = Path(model_dir)
    h = hashlib.sha256()
    for name in _MODEL_FILES:
        path = model_dir / name
        if not path.exists():
            continue
        h.update(name.encode())
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    try:
        name = read_record(model_dir).get("name") or model_dir.name
    except ValueError:  # a corrupt record names nothing; the hash above still tells the models apart
        name = model_dir.name
    return f"{name}-{h.hexdigest()[:12]}"


class SuggestionScorer:
    """Teacher-forced scores of (prefix, suffix, suggestion) under one model, cached on disk."""

    def __init__(self, model_dir: str | Path, cache_dir: str | Path | None, *, threads: int = 2,
                 exit_threshold: float | None = None, stop_threshold: float = 0.8, min_exit_layer: int = 1,
                 policy: str = "speculative", exit_rule: str | None = None, heal_tokens: int = HEAL_TOKENS,
                 reserve: int | None = None) -> None:
        from models.runtime import DecodeOptions, EarlyExitRuntime

        self.model_dir = Path(model_dir)
        self.identity = model_identity(self.model_dir)
        self.runtime = EarlyExitRuntime(self.model_dir, threads=threads)
        self.exit_threshold = DecodeOptions.exit_threshold if exit_threshold is None else exit_threshold
        self.stop_threshold = stop_threshold
        self.exit_rule = DecodeOptions.exit_rule if exit_rule is None else exit_rule
        self.min_exit_layer = min_exit_layer
        self.policy = policy
        self.heal_tokens = heal_tokens
        # the room serving keeps for what it generates (tact.maxNewTokens), which places the prompt's window
        self.reserve = DecodeOptions.max_new_tokens if reserve is None else reserve
        self.cache_path = Path(cache_dir) / f"scores-{self.identity}.json" if cache_dir else None
        self.cache: dict[str, dict] = {}
        if self.cache_path and self.cache_path.exists():
            try:
                cached = json.loads(self.cache_path.read_text())
            except ValueError:
                cached = {}
            # a file of another shape is no cache either (it failed every score with AttributeError)
            self.cache = cached if isinstance(cached, dict) else {}
        self.hits = 0
        self.misses = 0
        self._dirty = False

    def _key(self, prefix: str, suffix: str, text: str) -> str:
        rule = "" if self.exit_rule == "agreement" else f"/{self.exit_rule}"  # the keys of earlier caches stay valid
        raw = "\0".join([str(SCORING_VERSION), f"{self.exit_threshold}/{self.stop_threshold}/{self.min_exit_layer}{rule}"
                         f"/{self.heal_tokens}/{self.reserve}", prefix, suffix, text])
        return hashlib.sha1(raw.encode("utf-8", "surrogatepass")).hexdigest()

    def score(self, prefix: str, suffix: str, text: str) -> dict:
        """{'logprobs', 'stop_probs', 'layers', 'n_layers'} for the suggestion's tokens; 'layers' is None unless
        the policy is `dynamic` (the others never exit early, and serving gives the gate no layers for them)."""
        key = self._key(prefix, suffix, text)
        out = self.cache.get(key)
        if not (isinstance(out, dict) and _SCORE_KEYS <= out.keys()):
            out = None  # absent, or damaged: scored again
        if out is not None:
            self.hits += 1
        else:
            self.misses += 1
            out = self.cache[key] = self._score(prefix, suffix, text)
            self._dirty = True
        return out if self.policy == "dynamic" else {**out, "layers": None}

    def _score(self, prefix: str, suffix: str, text: str) -> dict:
        rt = self.runtime
        info = rt.tokenizer
        L = rt.n_layers
        scored = len(info.encode(text)[:MAX_SUGGESTION_TOKENS])
        if not scored:
            return {"logprobs": [], "stop_probs": [], "layers": [], "n_layers": L}
        # as serving builds it, with room for what it may generate (a longer logged suggestion keeps room for itself:
        # a reserve of the suggestion's length started the window elsewhere than serving's for 51 of 100 requests);
        # the text taken back is written again before the suggestion
        prompt = rt.completion_prompt(prefix, suffix, reserve=max(scored, self.reserve),
                                      heal_tokens=self.heal_tokens)
        target = info.encode(prompt.heal + text)[:MAX_SUGGESTION_TOKENS]
        with rt.lock:
            rt.reset()
            try:
                # each round settles a later token on decoding's path (the ones before it and their scores stay,
                # and only the tokens from the changed one on run again, after the keys and values the cache holds)
                written = (prompt.heal + text).encode("utf-8", "surrogatepass")
                scored = self._pass(prompt.ids, target, prompt.heal)
                for _ in range(MAX_PATH_ROUNDS):
                    path = self._decoding_path(written, target, scored[1])[:MAX_SUGGESTION_TOKENS]
                    if path == target:
                        break
                    changed = next(t for t, (a, b) in enumerate(zip(path, target)) if a != b)
                    scored = self._pass(prompt.ids, path, prompt.heal, (changed, *scored))
                    target = path
                exit_layer, logp, stop = scored
            finally:
                rt.reset()
        return {
            "logprobs": [round(float(logp[t, tok]), 5) for t, tok in enumerate(target)],
            "stop_probs": [round(float(p), 5) for p in stop],
            "layers": [int(x) + 1 for x in exit_layer],
            "n_layers": L,
        }

    def _pass(self, prompt_ids: list[int], target: list[int], heal: str,
              settled: tuple[int, np.ndarray, np.ndarray, np.ndarray] | None = None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A teacher-forced pass of ``target`` after the prompt through every layer: per target token (n), the layer
        the dynamic policy would leave after (n,), the final layer's log-probabilities (n, V) (those writing text
        taken back among the tokens that could write it) and P(stop) before it (n,). ``settled``: (t, and those three
        of the pass just run) where that pass's target agrees with ``target`` before its token t: the cache holds its
        keys and values, so only ``target[t:]`` runs (the states that predict ``target[t + 1:]``), and the scores up
        to t stay. Each round of `_decoding_path` ran the whole prompt again: scoring took four times as long."""
        rt = self.runtime
        L = rt.n_layers
        heal_left = self._heal_left(heal, target)  # per target token: the text taken back still to write
        first = len(prompt_ids) - 1  # the state at position first + t predicts target[t]
        n = len(target)
        lo = 0 if settled is None else settled[0] + 1  # the first target token scored here
        if lo >= n:
            return tuple(kept[:n] for kept in settled[1:])
        # the positions run: the whole prompt and target, or target[lo - 1:n - 1] after the cache's settled ones
        start, ids = (0, prompt_ids + target) if settled is None else (first + lo, target[lo - 1:n - 1])
        rows = slice(first + lo - start, first + n - start)  # the states that predict target[lo:]
        h = rt.embed[ids]
        exit_layer = np.full(n - lo, L - 1)  # the first token comes from the prefill, at full depth
        decided = np.zeros(n - lo, dtype=bool)
        decided[0] = lo == 0
        for i in range(L):
            h = rt.forward([], start, i, i, hidden=h)
            if i < L - 1 and i >= self.min_exit_layer and rt.controller.trained:
                sel = h[rows]
                features, exit_logp = None, None
                if rt.controller.reads_head(i):
                    top, margin, exit_logp = rt.exit_features(i, sel)
                    features = (top, margin)
                ok = rt.controller.leaves(i, sel, features, self.exit_threshold, self.stop_threshold,
                                          self.exit_rule) & ~decided
                for t in np.flatnonzero(ok):  # a token writing text given back leaves only where the
                    if heal_left[lo + t]:      # exit's token may write it (EarlyExitRuntime._dynamic_pass)
                        ok[t] = exit_logp is not None and rt.token_bytes.may_write(
                            heal_left[lo + t], int(exit_logp[t].argmax()))
                exit_layer[ok] = i
                decided |= ok
        sel = h[rows]
        logp = log_softmax(rt.head(L - 1, sel))
        for t, left in enumerate(heal_left[lo:]):
            if left:
                logp[t] = healed_logp(logp[t], rt.token_bytes.candidates(left))
        stop = rt.controller.stop_probs(L - 1, sel, logp.max(axis=-1))
        if settled is None:
            return exit_layer, logp, stop
        return tuple(np.concatenate([kept[:lo], new]) for kept, new in zip(settled[1:], (exit_layer, logp, stop)))

    def _decoding_path(self, written: bytes, target: list[int], logp: np.ndarray) -> list[int]:
        """``target`` (tokens writing ``written``) with its first token that greedy decoding would not choose to
        write it replaced by the one it would (the likeliest token whose bytes start what is left to write; with the
        text taken back, among those that may write it), and the rest encoded after it; ``target`` itself where
        every token is that one. Decoding's path may be one the tokenizer never takes (`' b','l','o','ck'` for
        `' block'`, `'valid','ationError'` for `'validationError'`): at 150 held-out cursors 12 of 78 suggestions
        shown were written so, and scored along the tokenizer's each read other log-probabilities than serving
        logged."""
        pieces = self.runtime.token_bytes
        done = 0
        for t, token in enumerate(target):
            rest = written[done:]
            allowed = pieces.starts_of(rest)
            if not allowed:
                return target
            choice = max(allowed, key=lambda c: logp[t, c])
            if choice != token and logp[t, choice] > logp[t, token]:
                try:
                    tail = rest[len(pieces.pieces[choice]):].decode("utf-8", "surrogatepass")
                except UnicodeDecodeError:  # the choice ends inside a character: no text to encode after it
                    return target
                return target[:t] + [int(choice)] + (self.runtime.tokenizer.encode(tail) if tail else [])
            done += len(pieces.pieces[token])
        return target

    def _heal_left(self, heal: str, target: list[int]) -> list[bytes]:
        """For each of ``target``'s tokens, the bytes of ``heal`` not yet written before it."""
        left, out = heal.encode("utf-8"), []
        for token in target:
            out.append(left)
            left = self.runtime.token_bytes.written(left, token)[0] if left else left
        return out

    def save(self) -> None:
        if not (self.cache_path and self._dirty):
            return
        self.cache_path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.cache)
        write_atomically(self.cache_path, lambda tmp: tmp.write_text(text))
        self._dirty = False
