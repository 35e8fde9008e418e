"""The CDHF acceptance gate at serving time, without pygls: generate or not, show or not.

Stage 1 (:meth:`AcceptanceGate.before`) runs before the code model, on the context alone: when it
is confident the suggestion would be rejected (its P(accept), which is also the chance that
skipping is a mistake, is below the skip threshold) the model is not called; otherwise it also
suggests a debounce delay (longer for a likely rejection). Stage 2 (:meth:`AcceptanceGate.after`)
sees the suggestion and hides it when it is predicted to be rejected. Explicitly invoked requests
are always generated and shown; their decisions are still logged.

Thresholds follow the CDHF rule (``models.acceptance.policy``) on the model's own
leave-programmer-out scores, for the λ and precision floor in the settings. Features come from the
one feature function (``models.acceptance.features``), the same that training calls.

Per user: the running acceptance rate (and the previous outcome and when) is seeded from the local
telemetry database at start (a replay gives the prior its recording started from instead: ``prior``)
and updated from every accept and reject of this session; what this
session showed (``features.ShownHistory``) gives typing speed, time since the previous suggestion,
an unchanged prompt, and repeats of the same suggestion.

A missing or unreadable acceptance model turns the gate off (everything generated and shown) with
one warning. numpy only: no torch, no scikit-learn.
"""

from __future__ import annotations

import hashlib
import logging
import math
import reprlib
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lsp_server.config import Settings, expand_user, finite_float
from lsp_server.protocol import ACCEPTANCE_PRIOR
from lsp_server.services.context import CompletionContext
from lsp_server.services.ledger import UNDONE
from models.acceptance import features
from models.acceptance.model import AcceptanceModel, AcceptanceModelError, load_model
from models.acceptance.policy import NEVER, Thresholds, choose_thresholds, debounce_ms

log = logging.getLogger("tact.gate")

ACCEPTED_OUTCOMES = frozenset({"accepted", "partially_accepted"})
_REMEMBERED_IDS = 4096


@dataclass(frozen=True)
class GateDecision:
    stage: int  # 1 before generation, 2 after
    decision: str  # generate | skip (stage 1); show | hide (stage 2)
    score: float | None = None  # predicted P(accept)
    threshold: float | None = None  # the score is compared with this
    uncertainty: float | None = None  # P(accept): the chance that skipping/hiding here loses an accepted suggestion
    debounce_ms: int = 0  # stage 1: wait this long before calling the model
    forced: str = ""  # why the score was not followed (e.g. 'invoked')
    vector: np.ndarray | None = field(default=None, repr=False)  # the features the model saw
    inputs: features.ContextInputs | None = field(default=None, repr=False)  # stage 1: for stage 2 to reuse
    compute_ms: float = 0.0
    model_version: str | None = None  # the model that decided: logged with it, though the settings switch it meanwhile
    explore_share: float = 0.0  # forced "explore": the share of such decisions let through (training weighs by it)

    @property
    def generate(self) -> bool:
        return self.decision != "skip"

    @property
    def show(self) -> bool:
        return self.decision != "hide"

    def details(self) -> dict:
        """For the telemetry decision row: numbers only, never source text."""
        out = {"uncertainty": _round(self.uncertainty), "compute_ms": round(self.compute_ms, 3),
               "feature_version": features.FEATURE_VERSION}
        if self.stage == 1:
            out["debounce_ms"] = self.debounce_ms
        if self.forced:
            out["forced"] = self.forced
        if self.forced == "explore":
            out["explore_share"] = self.explore_share
        if self.vector is not None:
            # unrounded, as scored: rounded to 5 decimals, a logged row scored again could fall on the other side of a
            # tree's split (1 of 794 logged stage-1 rows did), and training on telemetry learned values serving never
            # scored; rounding the served vector instead would part it from the unrounded features CUPS training
            # computes with the same function. JSON writes a float's shortest exact form (whole numbers stay short):
            # a replayed session's rows grew from 353 to 434 characters at stage 1, from 451 to 610 at stage 2
            out["features"] = [float(v) if math.isfinite(v) else None for v in self.vector]
        return out



def explored(ctx: CompletionContext, stage: int, share: float, text: str = "") -> bool:
    """Whether a request the gate would skip (stage 1) or a suggestion it would hide (stage 2) goes through anyway,
    for ``share`` of them: its outcome is what training on telemetry learns where the gate says no (a model retrained
    on gated sessions alone saw no outcome there, found nothing worth hiding, and the next one hid again). Drawn from
    a hash of the text before the cursor and the suggestion, not at random, so that a replay of the session explores
    the same requests."""
    if share <= 0:
        return False
    before = ctx.prefix[-256:]
    digest = hashlib.blake2b(f"{stage}\0{ctx.offset}\0{before}\0{text}".encode("utf-8", "surrogatepass"),
                             digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2 ** 64 < share


def _round(x: float | None, digits: int = 6) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), digits)


def _text_before(ctx: CompletionContext):
    """The text before the cursor as training compares it for "nothing typed since": the whole of it, given as a
    function so that a request copies it only when it is at the offset of the suggestion shown before (a suggestion
    shown hashes it once); the prefix window when the context has no document."""
    document, offset = ctx.document, ctx.offset
    return ctx.prefix if document is None else lambda: document[:offset]


MAX_PRIOR_COUNT = 2 ** 53  # a count of decisions past this is no real one (and the features' logarithms overflow)


def _count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_PRIOR_COUNT


def parse_prior(value) -> dict | None:
    """The ``acceptancePrior`` initialization option in `decided_outcomes`' form, or None (logged) when malformed:
    the gate then seeds from its database as usual."""
    if isinstance(value, dict):
        last, at = value.get("lastOutcome"), value.get("lastOutcomeAt")
        known_last = last is None or last in ACCEPTED_OUTCOMES or last == "rejected"
        known_at = at is None or finite_float(at) is not None  # math.isfinite raised on an int no float holds
        if _count(value.get("accepted")) and _count(value.get("rejected")) and known_last and known_at \
                and (last is None) == (at is None):
            return {"accepted": value["accepted"], "rejected": value["rejected"], "last_outcome": last,
                    "last_outcome_at": None if at is None else float(at)}
    log.warning("acceptance gate: %s must be {accepted, rejected, lastOutcome, lastOutcomeAt}, got %s; the prior "
                "comes from the telemetry database", ACCEPTANCE_PRIOR, reprlib.repr(value))
    return None


@dataclass
class UserHistory:
    """What the gate knows about this user: decisions so far and the latest one."""

    accepted: int = 0
    rejected: int = 0
    last_outcome: int | None = None  # 1 accepted, 0 rejected
    last_outcome_ts: float | None = None
    shown: features.ShownHistory = field(default_factory=features.ShownHistory)  # documents keyed by uri


class AcceptanceGate:
    def __init__(self, model: AcceptanceModel | None = None, *, will_start: bool = False,
                 start_due: bool | None = None) -> None:
        """``will_start``: start() will run (the server's gate, started at `initialized`); until it has, requests
        wait for it (``wait_started``) once it is due (``start_due``, by default from the outset)."""
        self.model = model
        self.reason = "" if model is not None else "not loaded"
        self.history = UserHistory()
        self._counted: OrderedDict[str, bool] = OrderedDict()  # suggestion id -> counted as accepted
        self._thresholds: dict[tuple, Thresholds] = {}
        self._lock = threading.Lock()
        self._warned = False
        self.clock = time.time  # what "now" is for timing features; a replay pins it to its recorded timeline
        self.prior: dict | None = None  # given at initialize (a replay's: its recording's), seeded, not the database's
        self._started = threading.Event()  # start() has run: the history seeded, the model loaded (or failed to)
        if not will_start:
            self._started.set()  # nothing to wait for
        # start() is on its way: the server's gate from `initialized`, which a client may never send (each request
        # then waited 30 s for a start that never came, one after another on the one worker)
        self.start_due = will_start if start_due is None else start_due
        self.model_path: str | None = None  # what load() was last asked for ("": the shipped model)

    def _now(self, at: float | None) -> float:
        """``at`` when the caller knows the time (a replay's event), else the gate's clock."""
        return self.clock() if at is None else at

    # -- lifecycle -------------------------------------------------------------------------
    def load(self, path: str | Path | None = None) -> bool:
        """Load the acceptance model (default: the shipped one); on failure the gate is off, said once."""
        self.model_path = str(path or "")
        try:  # a leading ~ is the user's home, as in every path setting: unexpanded, the gate stayed off
            self.model = load_model(expand_user(str(path)) if path else None)
            self.reason = ""
            self._thresholds.clear()
            return True
        except Exception as exc:  # AcceptanceModelError, or a defect the loader did not foresee: never fatal
            self.model = None
            self.reason = str(exc) if isinstance(exc, AcceptanceModelError) else \
                f"the acceptance model failed to load ({type(exc).__name__}: {exc})"
            if not self._warned:
                self._warned = True
                log.warning("acceptance gate off, every suggestion is shown: %s", self.reason,
                            exc_info=not isinstance(exc, AcceptanceModelError))
            return False

    def start(self, settings: Settings, database: str | Path | None = None) -> bool:
        """Seed the user's history from the telemetry database (or from ``prior`` when one was given), then load
        the model and choose its thresholds for these settings; blocking (run it off the event loop). The history
        comes first: requests can arrive once the code model is ready, and a gate that decides (is ``active``) must
        not decide without it (the first requests of a session, or of its replay, saw no history)."""
        try:
            if self.prior is not None:
                self.seed(self.prior)
            else:
                self.seed_from_database(database)
            loaded = self.load(settings.acceptance_model_path)
            if loaded:
                self.thresholds(settings)
            return loaded
        finally:
            self._started.set()  # also after a failure: requests and clients waiting for the gate go on without it

    @property
    def started(self) -> bool:
        """start() has run, or none was to run."""
        return self._started.is_set()

    def wait_started(self, timeout: float) -> bool:
        """Wait until start() has run (at most ``timeout`` seconds): the code model is often ready first, and a
        request it answered meanwhile went ungated, its decisions unlogged (the session's first requests). True at
        once where no start is due: there is nothing to wait for."""
        return not self.start_due or self._started.wait(timeout)

    def follow(self, settings: Settings) -> bool | None:
        """Load the model the settings name now, when it is not the one loaded: a client that changes
        acceptanceModelPath mid-session (VS Code restarts the server for it; Neovim and others send
        didChangeConfiguration) kept the old gate. Blocking; None when there was nothing to load, else whether it
        loaded. Before start() has run there is nothing to follow: start() reads the settings it is given."""
        if not self.started or self.model_path is None or settings.acceptance_model_path == self.model_path:
            return None
        self._warned = False  # a path chosen now that fails is told again
        loaded = self.load(settings.acceptance_model_path)
        if loaded:
            self.thresholds(settings)
        log.info("acceptance gate: %s", f"model {self.version} from the settings" if loaded else f"off: {self.reason}")
        return loaded

    def seed_from_database(self, path: str | Path | None) -> None:
        """Start the user's running acceptance rate from the local telemetry database: the user's own sessions,
        not those `tact demo` and `tact simulate` recorded there (SYNTHETIC_CLIENTS)."""
        if not path or not Path(path).is_file():
            return
        try:
            from telemetry.reader import SYNTHETIC_CLIENTS, decided_outcomes, open_readonly

            conn = open_readonly(path)
            try:
                seen = decided_outcomes(conn, exclude_clients=SYNTHETIC_CLIENTS)
            finally:
                conn.close()
        except Exception as exc:  # an old or odd database only costs the prior
            log.warning("acceptance gate: no history from %s: %s", path, exc)
            return
        self.seed(seen)

    def seed(self, seen: dict) -> None:
        """Add earlier decisions (``decided_outcomes``' form) to the user's history."""
        with self._lock:
            h = self.history
            h.accepted += seen["accepted"]
            h.rejected += seen["rejected"]
            at = finite_float(seen["last_outcome_at"])  # a time that is no number failed every later request
            if h.last_outcome_ts is None and seen["last_outcome"] is not None and at is not None:
                h.last_outcome = 1 if seen["last_outcome"] in ACCEPTED_OUTCOMES else 0
                h.last_outcome_ts = at

    @property
    def active(self) -> bool:
        return self.model is not None

    @property
    def version(self) -> str | None:
        return self.model.version if self.model is not None else None

    def status(self) -> dict:
        h = self.history
        return {"active": self.active, "version": self.version, "reason": self.reason,
                "userAccepted": h.accepted, "userRejected": h.rejected, "started": self.started}

    # -- thresholds --------------------------------------------------------------------------
    def thresholds(self, settings: Settings, model: AcceptanceModel | None = None) -> Thresholds:
        """The CDHF thresholds for these settings (cached); the skip-uncertainty setting, when set, wins for stage 1.
        ``model``: the one a decision scores with (default: the loaded one)."""
        model = model if model is not None else self.model  # one model throughout, though follow() may switch it
        key = (model.version, settings.acceptance_lambda, settings.acceptance_precision_floor,
               settings.acceptance_skip_uncertainty)
        t = self._thresholds.get(key)
        if t is None:
            c = model.calibration
            skip = settings.acceptance_skip_uncertainty if settings.acceptance_skip_uncertainty >= 0 else None
            t = choose_thresholds(c.stage1, c.stage2, c.label, settings.acceptance_lambda,
                                  settings.acceptance_precision_floor, skip=skip)
            if not math.isfinite(t.objective):  # the rule's own choice always has a feasible pair (hide nothing)
                log.warning("tact.acceptanceSkipUncertainty %s: no hide threshold keeps the precision floor %s beside "
                            "it on the acceptance model's calibration; stage 2 hides nothing more",
                            skip, settings.acceptance_precision_floor)
            self._thresholds[key] = t
        return t

    # -- stage 1 -----------------------------------------------------------------------------
    def context_inputs(self, ctx: CompletionContext, uri: str | None = None, now: float | None = None) -> features.ContextInputs:
        """The features' inputs for ``ctx``: read from its document as training reads the text before the cursor
        (the model's prompt windows, which the settings size, are not that text), else from the windows."""
        now = self._now(now)
        prefix, suffix = ctx.prefix, ctx.suffix
        if ctx.document is not None:
            start, end = features.reading_span(ctx.document, ctx.offset)
            prefix, suffix = ctx.document[start:ctx.offset], ctx.document[ctx.offset:end]
        with self._lock:
            h = self.history
            recall = features.ShownRecall() if uri is None else h.shown.recall(uri, now, ctx.offset, _text_before(ctx))
            return features.ContextInputs(
                prefix=prefix, suffix=suffix, language_id=ctx.language_id,
                document_chars=ctx.document_chars if ctx.document_chars >= 0 else None,
                cursor_offset=ctx.offset, facts=ctx.facts, line_prefix=ctx.line_prefix, line_suffix=ctx.line_suffix,
                previous_outcome=h.last_outcome,
                seconds_since_outcome=None if h.last_outcome_ts is None else now - h.last_outcome_ts,
                typing_cps=recall.typing_cps, user_accepted=h.accepted, user_rejected=h.rejected,
                seconds_since_shown=recall.seconds_since_shown, same_prefix_as_shown=recall.same_prefix_as_shown)

    def before(self, ctx: CompletionContext, settings: Settings, trigger: str = "automatic", uri: str | None = None,
               now: float | None = None) -> GateDecision:
        """Stage 1: generate or skip, and how long to wait before generating."""
        model = self.model  # read once: follow() on another thread may replace it (or turn the gate off) meanwhile
        if model is None:
            return GateDecision(1, "generate", forced="gate off")
        t0 = time.perf_counter()
        inputs = self.context_inputs(ctx, uri, now)
        x = features.context_features(inputs)
        p = float(model.stage1.predict(x))
        t = self.thresholds(settings, model)
        skip = p < t.skip
        forced = "invoked" if trigger == "invoked" and skip else \
            "explore" if skip and explored(ctx, 1, settings.acceptance_explore_share) else ""
        decision = "skip" if skip and not forced else "generate"
        delay = 0 if decision == "skip" or trigger == "invoked" else \
            debounce_ms(p, t.skip, model.base_rate, settings.acceptance_debounce_max_ms)
        return GateDecision(1, decision, p, None if t.skip == NEVER else t.skip, p, delay, forced, x, inputs,
                            (time.perf_counter() - t0) * 1000, model.version, settings.acceptance_explore_share)

    # -- stage 2 -----------------------------------------------------------------------------
    def after(self, ctx: CompletionContext, text: str, settings: Settings, *, logprobs=(), stop_probs=(),
              layers=None, n_layers: int = 0, stage1: GateDecision | None = None, trigger: str = "automatic",
              uri: str | None = None, now: float | None = None) -> GateDecision:
        """Stage 2: show or hide the generated ``text`` (``layers`` None unless tokens exited early)."""
        model = self.model  # read once, as in before()
        if model is None:
            return GateDecision(2, "show", forced="gate off")
        t0 = time.perf_counter()
        x = self._stage2_vector(ctx, text, logprobs, stop_probs, layers, n_layers, stage1, uri, now)
        p = float(model.stage2.predict(x))
        t = self.thresholds(settings, model)
        hide = p < t.hide
        if trigger == "invoked" and hide:
            forced = "invoked"
        elif stage1 is not None and stage1.forced == "explore":
            forced = "explore"  # explored as a whole: its outcome is what stage 1's exploring is for
        else:
            forced = "explore" if hide and explored(ctx, 2, settings.acceptance_explore_share, text) else ""
        decision = "hide" if hide and not forced else "show"
        return GateDecision(2, decision, p, None if t.hide == NEVER else t.hide, p, 0, forced, x, None,
                            (time.perf_counter() - t0) * 1000, model.version, settings.acceptance_explore_share)

    def _stage2_vector(self, ctx: CompletionContext, text: str, logprobs, stop_probs, layers, n_layers: int,
                       stage1: GateDecision | None, uri: str | None, now: float | None) -> np.ndarray:
        """Stage 2's features: the context's (stage 1's, where it computed them) then the suggestion's."""
        reuse = stage1 is not None and stage1.inputs is not None
        inputs = stage1.inputs if reuse else self.context_inputs(ctx, uri, now)
        with self._lock:
            times_shown = self.history.shown.times_shown(text)
        sug = features.SuggestionInputs(text, logprobs, stop_probs, layers, n_layers, times_shown)
        return features.suggestion_features(inputs, sug, stage1.vector if reuse else None)

    def ungated(self, ctx: CompletionContext, text: str, *, logprobs=(), stop_probs=(), layers=None,
                n_layers: int = 0, uri: str | None = None, now: float | None = None) -> GateDecision:
        """Stage 2's features for a suggestion shown with the gate off (the setting, or no model loaded), as a
        ``show`` decision forced "gate off" with no score: the features come from the document, the suggestion and
        the user's history, not from the model, and such a session's outcomes are the only ones no gate censored,
        which training (the logged stage-2 ``show`` rows) could otherwise not learn from."""
        t0 = time.perf_counter()
        x = self._stage2_vector(ctx, text, logprobs, stop_probs, layers, n_layers, None, uri, now)
        return GateDecision(2, "show", forced="gate off", vector=x, compute_ms=(time.perf_counter() - t0) * 1000)

    # -- learning from outcomes --------------------------------------------------------------
    @staticmethod
    def shown_key(ctx: CompletionContext) -> int:
        """What ``shown`` remembers of the text before the cursor: a hash of all of it, so computed on the worker
        (milliseconds for a file of megabytes), not on the event loop that sends the answer."""
        return features.prefix_key(ctx.offset, _text_before(ctx))

    def shown(self, uri: str, ctx: CompletionContext, text: str, now: float | None = None,
              key: int | None = None) -> None:
        """A suggestion goes to the editor (the pipeline calls this as the answer is sent): what the user was shown
        lately learns it (the gate on or off). One cancelled or stale before it is sent is not remembered. ``key``:
        ``shown_key(ctx)``, where the caller computed it already."""
        key = self.shown_key(ctx) if key is None else key
        with self._lock:
            self.history.shown.record(uri, self._now(now), ctx.offset, key, text)

    def record_outcome(self, suggestion_id: str, outcome: str, ts: float | None = None) -> None:
        """An issued suggestion was accepted (fully or partly) or rejected. Each id counts once, except that an
        acceptance replaces a rejection counted before (a superseded suggestion the user then accepted), as the
        telemetry store ranks them, so that the running rate and the database agree. An accept taken back
        (``UNDONE``) counts as a rejection instead, as the database's counts read it (``undone_at``)."""
        if outcome == UNDONE:
            self._count_undone(suggestion_id, ts)
            return
        if outcome not in ACCEPTED_OUTCOMES and outcome != "rejected":
            return
        accepted = outcome in ACCEPTED_OUTCOMES
        with self._lock:
            h = self.history
            if suggestion_id in self._counted:
                if not accepted or self._counted[suggestion_id]:
                    return
                h.rejected -= 1  # the rejection counted before is undone
            else:
                while len(self._counted) >= _REMEMBERED_IDS:
                    self._counted.popitem(last=False)
            self._counted[suggestion_id] = accepted
            h.accepted += accepted
            h.rejected += not accepted
            h.last_outcome = int(accepted)
            h.last_outcome_ts = self._now(ts)

    def _count_undone(self, suggestion_id: str, ts: float | None) -> None:
        """The acceptance counted for ``suggestion_id`` becomes a rejection (once; an id no longer remembered, or never
        counted accepted, is left as it is)."""
        with self._lock:
            if not self._counted.get(suggestion_id):
                return
            h = self.history
            self._counted[suggestion_id] = False
            h.accepted -= 1
            h.rejected += 1
            h.last_outcome = 0
            h.last_outcome_ts = self._now(ts)
