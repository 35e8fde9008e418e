"""The acceptance features: computed here, and only here, for training and for serving.

Stage 1 sees the context alone (:class:`ContextInputs`): the family of Copilot's contextual
filter (previous outcome and time since it, whitespace after the cursor, last character and last
non-space character, line and document lengths, relative cursor position, language), tree-sitter
facts at the cursor, typing speed and this user's running acceptance rate.

Stage 2 also sees the suggestion (:class:`SuggestionInputs`): its length in characters, lines and
tokens, token log-probabilities under our model, layers used, the Stop&Exit controller's P(stop),
whether it adds syntax errors when inserted, whether it repeats neighbouring text, and how often
this user was shown the same suggestion before. The stage-2 vector is the stage-1 vector followed by
the suggestion features.

What the user was shown lately (:class:`ShownHistory`) is kept in one place too, for the CUPS loader
and the serving gate alike: in CUPS a suggestion shown before is accepted less often,
and so is one asked for again with nothing typed since.

Every feature is a float; a value that cannot be known (e.g. layers under a policy that never
exits early) is NaN, and the model fills it with the training median. Plain Python and numpy
plus :mod:`models.syntax`: safe to import in the server.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from models import syntax
from models.syntax import CursorFacts, line_start

# Bump when a feature changes meaning or order: stored models and logged vectors carry it.
FEATURE_VERSION = 3  # 3: "the same text before the cursor as the last shown" needs the same cursor offset too

# The running acceptance rate of a user is smoothed towards this prior (pseudo-counts).
PRIOR_RATE = 0.3
PRIOR_STRENGTH = 5.0
LONG_AGO_S = 3600.0  # "time since the previous outcome" saturates here (also: no outcome yet)
MAX_TYPING_CPS = 30.0
TYPING_WINDOW_S = 120.0  # longer gaps say nothing about typing speed
SHOWN_MEMORY = 256  # shown suggestions (and documents) a ShownHistory remembers
PARSE_PREFIX_CHARS = 2000  # text around the cursor parsed to count the errors a suggestion adds
PARSE_SUFFIX_CHARS = 500

CHAR_CLASSES = ("none", "newline", "space", "letter", "digit", "open", "close", "dot", "comma", "colon",
                "equals", "quote", "operator", "other")
NODE_BUCKETS = ("none", "identifier", "string", "comment", "block", "keyword", "bracket", "operator", "error", "other")

_CHAR_CLASS = {"\n": "newline", "\r": "newline", " ": "space", "\t": "space", "(": "open", "[": "open", "{": "open",
               ")": "close", "]": "close", "}": "close", ".": "dot", ",": "comma", ":": "colon", "=": "equals",
               "'": "quote", '"': "quote", "`": "quote"}
_OPERATORS = set("+-*/%<>!&|^~@")
_STRING_NODES = frozenset({"string", "string_start", "string_content", "string_end", "escape_sequence",
                           "interpolation", "concatenated_string"})


@dataclass(frozen=True)
class ContextInputs:
    """What stage 1 sees. ``prefix``/``suffix``: the text before and after the cursor, or the stretch of it that
    :func:`reading_span` gives (the features read no further), which serving passes to not copy a large document."""

    prefix: str
    suffix: str = ""
    language_id: str = "python"
    document_chars: int | None = None  # whole document length when known (else prefix + suffix)
    cursor_offset: int | None = None  # cursor index in the document when known (else len(prefix))
    facts: CursorFacts | None = None  # tree-sitter facts at the cursor; computed here when None
    previous_outcome: int | None = None  # 1 accepted, 0 rejected, None: no decision yet
    seconds_since_outcome: float | None = None
    typing_cps: float | None = None  # see typing_speed()
    user_accepted: int = 0  # this user's decisions so far
    user_rejected: int = 0
    seconds_since_shown: float | None = None  # since the previous suggestion shown in this document
    same_prefix_as_shown: bool = False  # nothing before the cursor changed since that suggestion
    # The cursor line before and after the cursor (no line break), whole, when prefix/suffix are windows that may cut
    # it: a line longer than a window was measured as the window's part of it, which moved with the window's grid
    line_prefix: str | None = None
    line_suffix: str | None = None


@dataclass(frozen=True)
class SuggestionInputs:
    """What stage 2 adds: the suggestion and how our model produced (or scored) its tokens."""

    text: str
    logprobs: Sequence[float] = ()  # per token, under our model
    stop_probs: Sequence[float] = ()  # controller P(stop) before each token
    layers: Sequence[int] | None = None  # layers each token went through; None: no early exit happened
    n_layers: int = 0
    times_shown_before: int = 0  # this user was shown the same text (whitespace aside) this often before


def _char_class(ch: str) -> str:
    if not ch:
        return "none"
    if ch in _CHAR_CLASS:
        return _CHAR_CLASS[ch]
    if ch.isalpha() or ch == "_":
        return "letter"
    if ch.isdigit():
        return "digit"
    if ch in _OPERATORS:
        return "operator"
    return "other"


def _node_bucket(node_type: str) -> str:
    if not node_type:
        return "none"
    if node_type == "identifier":
        return "identifier"
    if node_type in _STRING_NODES:
        return "string"
    if node_type == "comment":
        return "comment"
    if node_type in ("module", "block"):
        return "block"
    if node_type == "ERROR":
        return "error"
    if node_type in ("(", ")", "[", "]", "{", "}"):
        return "bracket"
    if node_type.isalpha() and node_type.islower():
        return "keyword"
    if not any(c.isalnum() for c in node_type):
        return "operator"
    return "other"


def _one_hot(prefix: str, values: tuple[str, ...]) -> list[str]:
    return [f"{prefix}={v}" for v in values]


CONTEXT_FEATURES: tuple[str, ...] = (
    "prev_accepted", "prev_rejected", "log_seconds_since_outcome",
    "at_line_end", "next_char_space",
    *_one_hot("last_char", CHAR_CLASSES), *_one_hot("last_nonspace_char", CHAR_CLASSES),
    "log_line_chars", "log_line_prefix_chars", "log_document_chars", "relative_position", "language_python",
    *_one_hot("node", NODE_BUCKETS), "in_string", "in_comment", "block_depth", "parent_error",
    "log_typing_cps", "user_acceptance_rate", "log_user_decisions",
    "log_seconds_since_shown", "same_prefix_as_shown",
)

SUGGESTION_ONLY_FEATURES: tuple[str, ...] = (
    "log_chars", "log_lines", "log_tokens", "mean_logprob", "min_logprob", "first_logprob",
    "layers_fraction", "max_stop_prob", "mean_stop_prob", "new_syntax_errors", "parses",
    "repeats_suffix", "repeats_previous_line", "in_prefix", "blank", "starts_with_newline", "is_comment",
    "log_times_shown_before",
)

SUGGESTION_FEATURES: tuple[str, ...] = CONTEXT_FEATURES + SUGGESTION_ONLY_FEATURES


def user_acceptance_rate(accepted: int, rejected: int) -> float:
    """The running acceptance rate, smoothed towards PRIOR_RATE."""
    return (accepted + PRIOR_RATE * PRIOR_STRENGTH) / (accepted + rejected + PRIOR_STRENGTH)


def typing_speed(prev_ts: float | None, prev_offset: int | None, ts: float, offset: int) -> float | None:
    """Characters per second the cursor advanced since the previous suggestion was shown; None when
    unknown (no previous one, or too long ago)."""
    if prev_ts is None or prev_offset is None:
        return None
    dt = ts - prev_ts
    if not (0 < dt <= TYPING_WINDOW_S):
        return None
    return min(MAX_TYPING_CPS, max(0, offset - prev_offset) / dt)


def prefix_key(offset: int, prefix: str | Callable[[], str]) -> int:
    """What a ShownHistory compares: a hash of the offset and the text before it. The text may come as a function
    giving it: serving, which holds the document, copies the whole text before the cursor for a request only when it
    is at the offset of the previous suggestion shown there."""
    return hash((offset, prefix() if callable(prefix) else prefix))


@dataclass(frozen=True)
class ShownRecall:
    """What a ShownHistory says about a new request in a document."""

    seconds_since_shown: float | None = None
    typing_cps: float | None = None
    same_prefix_as_shown: bool = False


class ShownHistory:
    """The suggestions one user was shown lately: the previous one per document (when, where the cursor
    was, what was before it) and the texts of the last SHOWN_MEMORY. Not thread-safe: the owner locks."""

    def __init__(self, memory: int = SHOWN_MEMORY) -> None:
        self._memory = memory
        self._last: OrderedDict[str, tuple[float, int, int]] = OrderedDict()  # document -> (ts, offset, prefix hash)
        self._texts: deque[str] = deque(maxlen=memory)

    def recall(self, document: str, ts: float, offset: int, prefix: str | Callable[[], str]) -> ShownRecall:
        """The history's view of a request at ``offset`` in ``document`` (``prefix``: the text before it)."""
        last = self._last.get(document)
        if last is None:
            return ShownRecall()
        shown_ts, shown_offset, prefix_hash = last
        same = offset == shown_offset and prefix_key(offset, prefix) == prefix_hash
        return ShownRecall(ts - shown_ts, typing_speed(shown_ts, shown_offset, ts, offset), same)

    def times_shown(self, text: str) -> int:
        key = text.strip()
        return sum(1 for t in self._texts if t == key)

    def record(self, document: str, ts: float, offset: int, prefix: str | Callable[[], str] | int, text: str) -> None:
        """A suggestion was shown. ``prefix``: the text before the cursor, or its ``prefix_key`` computed already
        (serving hashes it on the worker, not on the event loop that sends the answer)."""
        # the same text before the same cursor, kept as a hash: a function giving the text is called here, once per
        # suggestion shown, rather than kept (it would hold a document's text for each of the documents remembered)
        self._last[document] = (ts, offset, prefix if isinstance(prefix, int) else prefix_key(offset, prefix))
        self._last.move_to_end(document)
        while len(self._last) > self._memory:
            self._last.popitem(last=False)
        self._texts.append(text.strip())


def _line_parts(prefix: str, suffix: str) -> tuple[str, str, str | None]:
    """(line before the cursor, line after the cursor, previous line or None)."""
    cut = max(prefix.rfind("\n"), prefix.rfind("\r")) + 1
    line_prefix = prefix[cut:]
    end = len(suffix)
    for br in ("\n", "\r"):
        i = suffix.find(br)
        if i >= 0:
            end = min(end, i)
    previous = None
    if cut > 0:
        head = prefix[: cut - 1]
        if head.endswith("\r") and prefix[cut - 1] == "\n":
            head = head[:-1]
        previous = head[max(head.rfind("\n"), head.rfind("\r")) + 1 :]
    return line_prefix, suffix[:end], previous


def _cursor_line(inp: ContextInputs) -> tuple[str, str, str | None]:
    """(line before the cursor, line after it, previous line or None): the whole line where the inputs give it."""
    line_prefix, line_suffix, previous = _line_parts(inp.prefix, inp.suffix)
    return (line_prefix if inp.line_prefix is None else inp.line_prefix,
            line_suffix if inp.line_suffix is None else inp.line_suffix, previous)


def reading_span(text: str, offset: int) -> tuple[int, int]:
    """``(start, end)``: the stretch of ``text`` around the cursor at ``offset`` from which the features compute what
    they compute from the whole text (given the whole cursor line as ``line_prefix``/``line_suffix`` and the cursor
    facts): the text parsed for new syntax errors and one char more (it is cut at a line start only when longer),
    the previous line, and the last non-space character before the cursor however far back."""
    end = min(len(text), offset + PARSE_SUFFIX_CHARS + 1)
    start = max(0, offset - PARSE_PREFIX_CHARS - 1)
    line = line_start(text, offset)
    if line > 0:  # the previous line starts after the break before it (as _line_parts reads it)
        head = line - 1 - (text[line - 1] == "\n" and line >= 2 and text[line - 2] == "\r")
        start = min(start, line_start(text, head))
    while start > 0 and not text[start:offset].strip():  # only blanks: the last non-space char is further back
        start = max(0, offset - 2 * (offset - start))
    return start, end


def context_features(inp: ContextInputs) -> np.ndarray:
    """The stage-1 vector, in the order of CONTEXT_FEATURES."""
    prefix, suffix = inp.prefix, inp.suffix
    line_prefix, line_suffix, _ = _cursor_line(inp)
    doc_chars = inp.document_chars if inp.document_chars is not None else len(prefix) + len(suffix)
    offset = inp.cursor_offset if inp.cursor_offset is not None else len(prefix)
    facts = inp.facts
    if facts is None:
        facts = syntax.cursor_facts(prefix + suffix, len(prefix), inp.language_id)
    last = prefix[-1:]
    stripped = prefix.rstrip()
    last_nonspace = stripped[-1:]
    since = LONG_AGO_S if inp.seconds_since_outcome is None else min(max(inp.seconds_since_outcome, 0.0), LONG_AGO_S)
    cps = 0.0 if inp.typing_cps is None else min(max(inp.typing_cps, 0.0), MAX_TYPING_CPS)
    since_shown = LONG_AGO_S if inp.seconds_since_shown is None else min(max(inp.seconds_since_shown, 0.0), LONG_AGO_S)
    last_cls, nonspace_cls = _char_class(last), _char_class(last_nonspace)
    bucket = _node_bucket(facts.node_type)
    values = [
        float(inp.previous_outcome == 1), float(inp.previous_outcome == 0), math.log1p(since),
        float(not line_suffix.strip()), float(not suffix[:1] or suffix[:1].isspace()),
        *(float(last_cls == c) for c in CHAR_CLASSES), *(float(nonspace_cls == c) for c in CHAR_CLASSES),
        math.log1p(len(line_prefix) + len(line_suffix)), math.log1p(len(line_prefix)), math.log1p(doc_chars),
        offset / doc_chars if doc_chars > 0 else 1.0, float(syntax.is_python(inp.language_id)),
        *(float(bucket == b) for b in NODE_BUCKETS), float(facts.in_string), float(facts.in_comment),
        float(min(facts.block_depth, 10)), float(facts.parent_type == "ERROR"),
        math.log1p(cps), user_acceptance_rate(inp.user_accepted, inp.user_rejected),
        math.log1p(inp.user_accepted + inp.user_rejected),
        math.log1p(since_shown), float(inp.same_prefix_as_shown),
    ]
    return np.asarray(values, dtype=np.float64)


def _parse_window(prefix: str, suffix: str) -> tuple[str, str]:
    """The text around the cursor that is parsed: whole lines when it has to be cut."""
    if len(prefix) > PARSE_PREFIX_CHARS:
        head = prefix[-PARSE_PREFIX_CHARS:]
        nl = head.find("\n")
        prefix = head[nl + 1 :] if nl >= 0 else head
    if len(suffix) > PARSE_SUFFIX_CHARS:
        tail = suffix[:PARSE_SUFFIX_CHARS]
        nl = tail.rfind("\n")
        suffix = tail[: nl + 1] if nl >= 0 else tail
    return prefix, suffix


def new_syntax_errors(prefix: str, suffix: str, text: str, language_id: str) -> float:
    """Tree-sitter ERROR/MISSING nodes that inserting ``text`` at the cursor adds; NaN when unknown."""
    if not syntax.is_python(language_id) or not syntax.available():
        return math.nan
    before_p, after_s = _parse_window(prefix, suffix)
    return float(max(0, syntax.error_count(before_p + text + after_s) - syntax.error_count(before_p + after_s)))


def _mean(xs: Sequence[float]) -> float:
    return float(sum(xs) / len(xs)) if len(xs) else math.nan


def suggestion_only_features(ctx: ContextInputs, sug: SuggestionInputs) -> np.ndarray:
    """The suggestion part of the stage-2 vector, in the order of SUGGESTION_ONLY_FEATURES."""
    text = sug.text
    _, line_suffix, previous = _cursor_line(ctx)
    first = text.strip("\r\n").split("\n", 1)[0].strip()
    lps = [float(x) for x in sug.logprobs]
    stops = [float(x) for x in sug.stop_probs]
    layers = math.nan
    if sug.layers is not None and len(sug.layers) and sug.n_layers > 0:
        layers = _mean([float(x) for x in sug.layers]) / sug.n_layers
    errors = new_syntax_errors(ctx.prefix, ctx.suffix, text, ctx.language_id)
    tail = ctx.suffix[:200].strip()
    values = [
        math.log1p(len(text)), math.log1p(text.count("\n")), math.log1p(len(lps)),
        _mean(lps), min(lps) if lps else math.nan, lps[0] if lps else math.nan,
        layers, max(stops) if stops else math.nan, _mean(stops),
        errors, math.nan if math.isnan(errors) else float(errors == 0),
        float(bool(first) and (line_suffix.strip().startswith(first) or (len(first) >= 4 and first in tail))),
        float(bool(first) and previous is not None and previous.strip() == first),
        float(len(first) >= 4 and first in ctx.prefix[-1000:]),
        float(not text.strip()), float(text[:1] in ("\n", "\r")),
        float(first.startswith("#") or first.startswith("//")),
        math.log1p(max(sug.times_shown_before, 0)),
    ]
    return np.asarray(values, dtype=np.float64)


def suggestion_features(ctx: ContextInputs, sug: SuggestionInputs, context_vector: np.ndarray | None = None) -> np.ndarray:
    """The stage-2 vector (SUGGESTION_FEATURES): the stage-1 vector, then the suggestion features.
    Pass the stage-1 vector already computed for this context to skip recomputing it."""
    head = context_features(ctx) if context_vector is None else context_vector
    return np.concatenate([head, suggestion_only_features(ctx, sug)])
