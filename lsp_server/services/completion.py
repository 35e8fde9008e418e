"""The completion pipeline without pygls: context -> prompt -> early-exit decoding -> trimmed suggestion.

Owns the model runtime. A missing or corrupt model leaves the service in a degraded state that
answers with no suggestion and says why, instead of taking the server down.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from lsp_server.config import Settings, expand_user
from lsp_server.services.context import CompletionContext, build_context
from lsp_server.services.indentation import tab_view
from lsp_server.services.positions import LineIndex, Position
from lsp_server.services.postprocess import trim_suggestion
from lsp_server.services.scheduler import Cancelled, CancelToken
from models.fim import to_lf
from models.healing import Prompt
from models.model_dir import SETTING_ADVICE, ModelDirError, default_model_dir, fingerprint
from models.runtime import DecodeOptions, DecodeResult, EarlyExitRuntime

# Stop reasons of a text cut by a budget, not by the model: its last line may stop anywhere (`self.real`). Stop ends
# the text before a token the model would likely get wrong, which is where the suggestion should end, and a loop cut
# ends it where the copies begin, most often a line's end.
_CUT_BY_A_BUDGET = frozenset({"max_tokens", "context"})

log = logging.getLogger("tact.completion")


@dataclass
class ModelStatus:
    ready: bool = False
    loading: bool = False
    model_dir: str = ""
    name: str = ""
    reason: str = ""  # why degraded
    load_ms: float = 0.0
    fingerprint: str = ""  # models.model_dir.fingerprint: tells checkpoints apart in telemetry
    context_tokens: int = 0  # prompt and suggestion fit this (the model's trained context)
    weights: str = "fp32"  # what decoding steps read (models.runtime.WEIGHTS)

    def as_dict(self) -> dict:
        return {"ready": self.ready, "loading": self.loading, "modelDir": self.model_dir, "model": self.name,
                "degraded": not self.ready and not self.loading, "reason": self.reason, "loadMs": round(self.load_ms, 1),
                "fingerprint": self.fingerprint, "contextTokens": self.context_tokens, "weights": self.weights}


@dataclass
class Suggestion:
    text: str  # what the editor inserts at the cursor ('' = nothing to show)
    raw: str  # what the model produced before trimming
    context: CompletionContext
    result: DecodeResult | None
    policy: str
    latency_ms: float
    skipped_reason: str = ""  # why no generation happened (binary file, degraded, ...)
    details: dict = field(default_factory=dict)
    shown_tokens: int | None = None  # of result.token_ids, the first ones whose text is ``text`` (None: all)
    # the model that generated it, and its layers: the service may hold another by the time it is logged and gated
    model: str = ""
    n_layers: int = 0

    def shown_scores(self) -> tuple[list[float], list[float], list[int]]:
        """(log-probabilities, P(stop), layers) of the shown text's tokens alone: the acceptance model learnt from
        scores of the shown text, and decoding also scored the line break that ended it and what trimming cut
        (23 of 34 suggestions on CUPS prompts carried such tokens; stage 2's P(accept) moved by up to 0.175)."""
        r, n = self.result, self.shown_tokens
        return (list(r.logprobs[:n]), list(r.stop_probs[:n]), list(r.layers[:n])) if r is not None else ([], [], [])


def shown_token_count(decode, token_ids: list[int], text: str) -> int:
    """How many of ``token_ids``, from the first, spell the start of ``text``: tokens that add nothing (the end of
    text) or reach past it (the line break that ended a single-line suggestion, what trimming cut) are not its."""
    count, spelled = 0, 0
    for k in range(1, len(token_ids) + 1):
        piece = decode(token_ids[:k])
        if len(piece) > len(text):
            break
        if len(piece) > spelled and text.startswith(piece):  # a token ending inside a character waits for the next
            count, spelled = k, len(piece)
            if spelled == len(text):  # later tokens add nothing to it or reach past it: none is counted
                break
    return count


class CompletionService:
    def __init__(self) -> None:
        self.runtime: EarlyExitRuntime | None = None
        self.status = ModelStatus(loading=True)  # until load() has run
        self._loaded = threading.Event()
        self._load_lock = threading.Lock()
        self._load_key: tuple[Path, str] | None = None
        # Every load runs on this one thread. When the model was loaded again on another thread (at process start,
        # then for the editor's settings), the first copy's freed memory stayed in its thread's malloc arena, out of
        # the second's reach: ~60 MB more at the peak, measured when the settings named int8 weights (which now
        # switch in place); another model directory still loads afresh.
        self._loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tact-model-load")
        self._queue_lock = threading.Lock()  # short: guards _queued and the status a queued load is given
        self._queued = 0  # loads start_loading submitted that have not finished
        self._result = self.status  # the last finished load's status (the status, unless a later one is queued)
        # How a degraded status says to name another model: the editor's setting, unless the command line named the
        # directory (`tact serve --model` wins over the setting, so advising the setting could not work).
        self.advice = SETTING_ADVICE

    @staticmethod
    def resolve(model_path: str) -> Path:
        return expand_user(model_path) if model_path else default_model_dir()

    def start_loading(self, model_path: str = "", threads: int = 2, weights: str = "fp32") -> Future:
        """Load in the background, on the loader thread (at process start, overlapping the server's own imports);
        the future gives the ModelStatus. A load that has work to do is in the status at once: the status read
        before the loader thread reached it was the previous load's, beside the settings that asked for another."""
        path = self.resolve(model_path)
        with self._queue_lock:
            self._queued += 1
            # the loaded model asked for again is work too while an earlier load waits: that one replaces it first
            if self._queued > 1 or self._load_key != (path, weights) or self.runtime is None:
                self._loaded.clear()
                self.status = ModelStatus(loading=True, model_dir=str(path), weights=weights)
        return self._loader.submit(self._queued_load, model_path, threads, weights)

    def _queued_load(self, model_path: str, threads: int, weights: str) -> ModelStatus:
        try:
            return self.load(model_path, threads, weights)
        finally:
            with self._queue_lock:
                self._queued -= 1

    def load(self, model_path: str = "", threads: int = 2, weights: str = "fp32") -> ModelStatus:
        """Load the model (blocking); never raises: failures become a degraded status.

        A load of the same directory and weights already done is reused, not repeated; one that failed is tried
        again, so that a model put where the settings point (as the degraded reason advises) is found.
        """
        path = self.resolve(model_path)
        with self._load_lock:
            if self._load_key == (path, weights) and self.runtime is not None:
                return self._finished(self._result)
            loaded = self.runtime if self._load_key is not None and self._load_key[0] == path else None
            self._load_key = (path, weights)
            self._loaded.clear()
            with self._queue_lock:
                if self._queued <= 1:  # else a later load's "loading" stands: that one is what the settings name
                    self.status = ModelStatus(loading=True, model_dir=str(path), weights=weights)
            if loaded is None:  # another model: let go of the one before first, so that its memory can be reused
                self.runtime = None
            t0 = time.perf_counter()
            status = ModelStatus(loading=True, model_dir=str(path), weights=weights)
            try:
                if loaded is not None:  # the same directory, other weights: keep the graphs prompts read (a decode
                    loaded.use_weights(weights)  # under way finishes first: the runtime's lock)
                self.runtime = loaded or EarlyExitRuntime(path, threads=threads, weights=weights)
                status = ModelStatus(ready=True, model_dir=str(path), name=self.runtime.name,
                                     load_ms=(time.perf_counter() - t0) * 1000, fingerprint=fingerprint(path),
                                     context_tokens=self.runtime.context_tokens, weights=weights)
            except ModelDirError as exc:
                self.runtime = None
                status = ModelStatus(model_dir=str(path), reason=str(exc.advised(self.advice)), weights=weights)
            except Exception as exc:  # a corrupt file can fail in any library; stay up regardless
                self.runtime = None
                status = ModelStatus(model_dir=str(path), reason=f"model {path} could not be loaded: {exc}", weights=weights)
                log.warning("model load failed", exc_info=True)
            finally:
                self._finished(status)
            return status

    def _finished(self, status: ModelStatus) -> ModelStatus:
        """A load's outcome, made the status unless a load queued after it has already said "loading"."""
        with self._queue_lock:
            self._result = status
            if self._queued <= 1:
                self.status = status
                self._loaded.set()
        return status

    def _failed(self, runtime: EarlyExitRuntime, exc: ModelDirError) -> None:
        """``runtime`` turned out damaged while serving: degraded from now on, saying why, as a load that failed is
        (the next ``load`` tries the directory again). Before, the status stayed ready while every request of the
        policy that reads the damaged graph failed, said only in the log."""
        with self._load_lock:
            if self.runtime is runtime:
                self.runtime = None
                self._finished(ModelStatus(model_dir=self._result.model_dir, reason=str(exc.advised(self.advice)),
                                           weights=self._result.weights))
        log.warning("model failed while serving: %s", exc)

    @property
    def degraded(self) -> bool:
        """Loading is over and there is no model: answer nothing without queueing work."""
        return self._loaded.is_set() and self.runtime is None

    def wait_loaded(self, timeout: float | None = None) -> bool:
        return self._loaded.wait(timeout)

    def decode_options(self, settings: Settings) -> DecodeOptions:
        return DecodeOptions(
            policy=settings.decoding_policy,
            max_new_tokens=max(1, min(settings.max_new_tokens, 256)),
            stop_threshold=settings.stop_threshold,
            stop_inside=settings.stop_inside,
            stop_inside_threshold=settings.stop_inside_threshold,
            stop_repeats=settings.stop_repeats,
            exit_threshold=settings.exit_threshold,
            exit_rule=settings.exit_rule,
            exit_lookup_threshold=settings.exit_lookup_threshold if settings.exit_lookup_threshold >= 0 else None,
            exit_lookup_veto=settings.exit_lookup_veto,
            draft_layers=settings.draft_layers,
            draft_tokens=settings.draft_tokens,
            ngram_drafts=settings.ngram_drafts,
            previous_drafts=settings.previous_drafts,
            single_line=not settings.multiline,
        )

    def context(self, index: LineIndex, language_id: str, position: Position, settings: Settings) -> CompletionContext:
        return build_context(index.text, position, prefix_chars=settings.context_prefix_chars,
                             suffix_chars=settings.context_suffix_chars, language_id=language_id, index=index)

    @staticmethod
    def prompt(runtime: EarlyExitRuntime, ctx: CompletionContext, settings: Settings) -> Prompt:
        """The prompt a completion decodes from: a notebook's cells above, the prefix window, the suffix, its last
        tokens taken back for the suggestion to write again (token healing). Its own method so that `tact bench
        notebook` measures the prompt serving builds, not a copy of it."""
        view = tab_view(ctx)
        return CompletionService._prompt_of(runtime, view.context if view is not None else ctx, settings)

    @staticmethod
    def _prompt_of(runtime: EarlyExitRuntime, seen: CompletionContext, settings: Settings) -> Prompt:
        """`prompt` of the context as the model reads it (a tab-indented document's with spaces)."""
        return runtime.completion_prompt(seen.earlier_cells + seen.prefix, seen.suffix,
                                         reserve=settings.max_new_tokens, heal_tokens=settings.token_healing)

    @staticmethod
    def _cancel_check(token: CancelToken):
        """Polled by the token loop after every token."""
        delay = float(os.environ.get("TACT_DEBUG_TOKEN_DELAY_MS", "0") or 0) / 1000.0
        if delay <= 0:
            return lambda: token.cancelled

        def slow() -> bool:  # debugging knob: a slow model, to watch cancellation
            time.sleep(delay)
            return token.cancelled

        return slow

    def complete(self, ctx: CompletionContext, settings: Settings, token: CancelToken) -> Suggestion:
        """Generate for a context built by `context()`. Raises Cancelled when the token is cancelled."""
        t0 = time.perf_counter()
        runtime = self.runtime
        policy = settings.decoding_policy
        if runtime is None and not self.degraded and self.wait_loaded(timeout=30):
            runtime = self.runtime  # a load began after the caller's wait (settings naming another model): its model
        if runtime is None:
            return Suggestion("", "", ctx, None, policy, 0.0, skipped_reason=f"degraded: {self.status.reason}")
        opts = self.decode_options(settings)
        view = tab_view(ctx)  # once a request: the prompt reads its context, the suggestion goes back through it
        seen = view.context if view is not None else ctx
        prompt = self._prompt_of(runtime, seen, settings)
        token.check()
        try:
            result = runtime.generate(prompt.ids, opts, should_cancel=self._cancel_check(token), heal=prompt.heal)
        except ModelDirError as exc:  # a graph loaded on first use (the dynamic policy's) is damaged
            self._failed(runtime, exc)
            raise
        if result.stop_reason == "cancelled":
            raise Cancelled(token.reason or "cancelled")
        written = view.back if view is not None else (lambda text: text)  # its indentation as the document's
        raw = written(result.text)
        text = trim_suggestion(raw, ctx, multiline=settings.multiline,
                               cut_short=result.stop_reason in _CUT_BY_A_BUDGET,
                               loop_cut=result.stop_reason == "repeat")
        latency = (time.perf_counter() - t0) * 1000
        details = {
            "prompt_tokens": result.prompt_tokens, "cached_tokens": result.cached_tokens,
            "prefill_ms": round(result.prefill_ms, 2), "decode_ms": round(result.decode_ms, 2),
            "drafted": result.drafted, "draft_accepted": result.draft_accepted,
            "mean_logprob": round(sum(result.logprobs) / len(result.logprobs), 4) if result.logprobs else None,
            "min_logprob": round(min(result.logprobs), 4) if result.logprobs else None,
            "max_stop_prob": round(max(result.stop_probs), 4) if result.stop_probs else None,
            "raw_chars": len(raw), "trimmed": text != raw, **({"tab_indented": True} if view is not None else {}),
        }
        if seen.earlier_cells:  # what of the cells above the prompt's budget kept (its start is cut first)
            kept = len(runtime.prompt_prefix_text(prompt)) - len(to_lf(seen.prefix))
            details["earlier_cells_kept_chars"] = max(0, min(len(to_lf(seen.earlier_cells)), kept))
        return Suggestion(text, raw, ctx, result, policy, latency, details=details, model=runtime.name,
                          n_layers=runtime.n_layers, shown_tokens=shown_token_count(lambda ids: written(runtime.suggestion_text(ids, result.heal)),
                                                       result.token_ids, text))
