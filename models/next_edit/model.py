"""The next-edit model at serve time: onnxruntime, no torch.

The model answers about a window of lines (`models.next_edit.prompt`), in the format its directory
records: it rewrites the window (the edit is what the rewrite changed) or writes the next edit as an
original/updated block of window lines. Windows tried, best first: the one around the cursor, then the
one around the place the heuristic baseline would edit next (the model sees that window and decides what, if anything, to
change there). Decoding is the runtime's lossless speculative policy: most of an answer is a copy of
window lines, so prompt-lookup drafts are accepted many tokens at a time.

Confidence is the probability of the least likely token of the answer (exp of the minimum
log-probability): an answer is only as sure as its weakest token. An edit that would undo the last
one is never returned.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from models.next_edit.baseline import BaselinePredictor
from models.next_edit.candidates import is_python
from models.next_edit.examples import Edit, Example, TextLines, line_ending
from models.model_dir import ModelDirError
from models.next_edit.prompt import (HISTORY_EDITS, LINES_AFTER, LINES_BEFORE, MAX_LINE_CHARS, PROMPT_FORMATS, Window,
                                     in_document, lf_edits, lf_lines, lf_view, taken_back, undoes_last_edit,
                                     window_around, without_undone)
from models.runtime import DecodeOptions, EarlyExitRuntime

if TYPE_CHECKING:
    from models.next_edit.ranker import EditRanker

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "default"
MAX_PROMPT_TOKENS = 640
MAX_REWRITE_TOKENS = 384
WINDOW_TOKEN_ROOM = 32  # a window's answer may run this many tokens past the window's own


@dataclass
class NextEditPrediction:
    edit: Edit
    confidence: float
    window: Window
    tokens: int
    latency_ms: float
    drafted: int
    draft_accepted: int


class NextEditModel:
    """``predict(history, current, cursor_line) -> NextEditPrediction | None``."""

    name = "model"

    def __init__(self, model_dir: Path = DEFAULT_MODEL_DIR, threads: int = 2, max_windows: int = 2,
                 copy_margin: float | None = None):
        self.runtime = EarlyExitRuntime(Path(model_dir), threads=threads)
        self.info = self.runtime.tokenizer
        self.max_windows = max_windows
        # Decoding keeps a copied window token within this log-probability of the best (runtime
        # `copy_margin`); the training record may set it (chosen on held-out data), 0 is lossless greedy.
        record_margin = self.runtime.record.get("serving", {}).get("copy_margin", 0.0)
        self.copy_margin = record_margin if copy_margin is None else copy_margin
        fmt = self.runtime.record.get("prompt_format", "rewrite")
        if fmt not in PROMPT_FORMATS:
            raise ModelDirError(f"{model_dir}/tact.json: unknown prompt_format {fmt!r} (known: {', '.join(PROMPT_FORMATS)}); "
                                "retrain with `tact train next-edit` or fix the record")
        self.format = PROMPT_FORMATS[fmt]
        self.threshold = 0.0  # evaluation: predictions below this count as none (the server applies its setting)
        self.baseline = BaselinePredictor()
        self.lock = threading.Lock()

    @property
    def version(self) -> str:
        return self.runtime.name

    def _fitted(self, history: list[Edit], current: str, line: int, path: str, lines: TextLines | None = None):
        """(prompt, window, token ids, the window's token indices) of the prompt that fits the token budgets
        (``MAX_PROMPT_TOKENS`` in all, a window's answer within ``MAX_REWRITE_TOKENS``), or None when none does or
        the window holds a line over ``MAX_LINE_CHARS`` characters (minified or generated text: nothing sensible to
        rewrite). A prompt that fits is the one training builds; one that does not first gets a narrower window
        while the window alone is too long (lines below the cursor go first, then those above), then drops the
        oldest history edits (the newest is kept), then narrows the window further. The character budgets of the
        prompt (`models.next_edit.prompt`) are no token budget: a line of CJK text is several tokens a character."""
        history = history[-HISTORY_EDITS:]
        narrower = [(LINES_BEFORE, after) for after in range(LINES_AFTER, -1, -1)]
        narrower += [(before, 0) for before in range(LINES_BEFORE - 1, -1, -1)]
        w, drop = 0, 0
        while True:
            before, after = narrower[w]
            prompt, window, (window_at, window_end) = self.format.prompt(history[drop:], current, line, path,
                                                                         before=before, after=after, lines=lines)
            if (w, drop) == (0, 0) and any(len(ln) - len(line_ending(ln)) > MAX_LINE_CHARS for ln in window.lines):
                return None  # minified or generated text: nothing sensible to rewrite (line breaks not counted)
            enc = self.info.encoding(prompt)
            # the window's tokens: drafts are copied from there, never from the history or the output so far
            span = [i for i, (a, _b) in enumerate(enc.offsets) if window_at <= a < window_end]
            window_fits = len(span) + WINDOW_TOKEN_ROOM <= MAX_REWRITE_TOKENS
            if window_fits and len(enc.ids) <= MAX_PROMPT_TOKENS:
                return prompt, window, enc.ids, span
            if window_fits and drop < len(history) - 1:
                drop += 1
            elif w + 1 < len(narrower):
                w += 1
            else:
                return None

    def _ask(self, history: list[Edit], current: str, line: int, path: str,
             should_cancel: Callable[[], bool] | None, lines: TextLines | None = None) -> NextEditPrediction | None:
        fitted = self._fitted(history, current, line, path, lines)
        if fitted is None:
            return None
        _prompt, window, ids, span = fitted
        window_tokens = len(span)
        opts = DecodeOptions(policy="speculative", max_new_tokens=min(MAX_REWRITE_TOKENS, window_tokens + 64),
                             single_line=False, stop_threshold=1.01, lookup_ngram=2, lookup_tokens=24,
                             copy_margin=self.copy_margin, stop_repeats=0,  # a window may hold equal lines
                             lookup_range=(span[0], span[-1] + 1) if span else None)
        res = self.runtime.generate(ids, opts, should_cancel)
        if res.stop_reason != "eos" or not res.logprobs:
            return None  # cut short (cancelled, out of room): not a whole answer
        edit = self.format.edit(window, res.text, current, line, lines=lines)
        if edit is None:
            return None
        return NextEditPrediction(edit, math.exp(min(res.logprobs)), window, len(res.token_ids),
                                  res.prefill_ms + res.decode_ms, res.drafted, res.draft_accepted)

    def predict_edit(self, history: list[Edit], current: str, cursor_line: int, path: str = "",
                     should_cancel: Callable[[], bool] | None = None,
                     lines: TextLines | None = None) -> NextEditPrediction | None:
        """The most confident edit of the windows around the cursor and around the baseline's guess. ``lines``:
        ``current``'s lines (the document's, not an LF view), read instead of splitting it: the server reads them
        from its line index, so a request on a 200,000-line file reads the windows, not every line."""
        rows = [cursor_line]
        guess = self.baseline.predict_next(history, current, lines)
        if guess is not None and self.max_windows > 1:
            # a guess inside the cursor's window is asked about with it; the guess's own window decides nothing (it
            # was built for each request, as was the cursor's where no guess was made)
            cursor_window = window_around(current, cursor_line, lines=lines)
            if not cursor_window.start <= guess.start_line < cursor_window.end:
                rows.append(guess.start_line)
        best: NextEditPrediction | None = None
        with self.lock:
            for line in rows:
                pred = self._ask(history, current, line, path, should_cancel, lines)
                if should_cancel is not None and should_cancel():
                    return None
                if pred is None or undoes_last_edit(history, current, pred.edit, lines):
                    continue
                if best is None or pred.confidence > best.confidence:
                    best = pred
        return best

    def predict_scored(self, example: Example) -> tuple[Edit | None, float]:
        """The evaluation interface (`models.next_edit.evaluate`): the edit and its confidence."""
        pred = self.predict_edit(example.history, example.current, example.cursor_line, example.path)
        return (pred.edit, pred.confidence) if pred is not None else (None, 0.0)

    def predict(self, example: Example) -> Edit | None:
        edit, confidence = self.predict_scored(example)
        return edit if confidence >= self.threshold else None



@dataclass
class NextEditAnswer:
    """A predictor's edit, with the confidence it had and the confidence it needed to be shown."""

    edit: Edit
    confidence: float
    predictor: str  # heuristic | ranker | model: which one answered
    threshold: float = 0.0  # below it the answer is hidden (logged, not shown)
    tokens: int = 0  # the model's rewrite, in tokens; the heuristic and the ranker generate none

    @property
    def shown(self) -> bool:
        return self.confidence >= self.threshold


def predict_with(predictor: str, model: "NextEditModel | None", history: list[Edit], current: str, cursor_line: int,
                 path: str = "", threshold: float = 0.0,
                 should_cancel: Callable[[], bool] | None = None,
                 ranker: "EditRanker | None" = None, ranker_threshold: float | None = None,
                 lines: TextLines | None = None, language_id: str = "") -> NextEditAnswer | None:
    """The answer of ``heuristic`` (the baseline; always shown), ``ranker`` (the edit ranker's best candidate,
    shown when its score reaches ``ranker_threshold``, by default the ranker's own; the baseline answers when no
    ranker is loaded), ``model`` (the model's edit, shown when its confidence reaches ``threshold``) or ``auto``
    (the ranker's answer when it is shown, else the model's: on held-out changes the ranker's edits are right
    far more often than the model's, and it answers in milliseconds). An answer that is not shown is still
    returned (``shown`` false) so it can be logged as hidden; ``auto`` returns a hidden one only when neither is
    shown, the ranker's first. No edit that undoes the last one is returned. ``lines``: ``current``'s lines, read
    instead of splitting it (a request on a large file then reads the lines near the edits, not all of them; in a
    document with CRs the lines of its LF view are read through them, `prompt.LFLines`, not converted whole).
    ``language_id``: the document's (else ``path`` tells whether it is Python), for the ranker's syntax check."""
    ranked: NextEditAnswer | None = None
    kept = without_undone(history)  # what the predictors learn from; the undo check reads the edits as made
    if predictor in ("heuristic", "ranker", "auto"):
        # the LF view: a CR would be matched as text, not as a line's end
        if lines is None:
            lf_history, lf_current = lf_view(kept, current)
            lf_table = None
        else:  # its lines read through ``lines``, the text neither scanned nor converted whole: the predictors
            # read it through them only (for a document with CRs their `TextLines.text` is the document)
            lf_history, lf_current, lf_table = lf_edits(kept, lines.text_has_cr), current, lf_lines(lines)
        if ranker is not None and predictor != "heuristic":
            back = taken_back(history)
            refused = lf_edits(back, lines.text_has_cr if lines is not None else "\r" in current) if back else ()
            found = ranker.rank(lf_history, lf_current, cursor_line, lines=lf_table, refused=refused,
                                python=is_python(path, language_id))
            edit = in_document(current, found.edit, lines) if found is not None else None
            if edit is not None and not undoes_last_edit(history, current, edit, lines):
                ranked = NextEditAnswer(edit, found.score, "ranker", ranker.threshold_for(ranker_threshold))
        else:
            edit = in_document(current, BaselinePredictor().predict_next(lf_history, lf_current, lf_table), lines)
            if edit is not None and not undoes_last_edit(history, current, edit, lines):
                ranked = NextEditAnswer(edit, 1.0, "heuristic")
        if predictor != "auto" or (ranked is not None and ranked.shown):
            return ranked
    if model is None or (should_cancel is not None and should_cancel()):
        return ranked
    pred = model.predict_edit(kept, current, cursor_line, path, should_cancel, lines)
    if pred is not None and len(kept) < len(history) and undoes_last_edit(history, current, pred.edit, lines):
        pred = None  # it checked against the last edit kept; the last one made was an undo
    modelled = NextEditAnswer(pred.edit, pred.confidence, "model", threshold, pred.tokens) if pred is not None else None
    if modelled is not None and (modelled.shown or ranked is None):
        return modelled
    return ranked


class AutoPredictor:
    """`predict_with("auto", ...)` as an evaluation predictor (`models.next_edit.evaluate`)."""

    name = "auto"

    def __init__(self, model: "NextEditModel", threshold: float, ranker: "EditRanker | None" = None):
        self.model, self.threshold, self.ranker = model, threshold, ranker

    def predict(self, example: Example) -> Edit | None:
        found = predict_with("auto", self.model, example.history, example.current, example.cursor_line, example.path,
                             self.threshold, ranker=self.ranker)
        return found.edit if found is not None and found.shown else None


def load_predictor(model_dir: Path | None = None, copy_margin: float | None = None) -> NextEditModel | None:
    """The shipped next-edit model, or None when it has not been trained and exported."""
    path = Path(model_dir) if model_dir is not None else DEFAULT_MODEL_DIR
    if not (path / "graphs.json").exists():
        return None
    return NextEditModel(path, copy_margin=copy_margin)
