"""Next-edit prediction for a document, without pygls: history in, a ranged edit out.

The document's coalesced edit history (`DocumentStore`) is turned into the line-based edits the
model was trained on by undoing the records one by one from the current text (each record knows
what it removed and inserted); history that no longer fits the text ends the walk. The model's line
edit is trimmed to the characters that change, so the editor gets a small range. Nothing comes back
for an outdated version, a binary document, or an edit that would undo the last one (the model
checks that too).
"""

from __future__ import annotations

import importlib
import logging
import re
import threading
import time
from bisect import bisect_left
from collections import Counter, OrderedDict
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Callable

from lsp_server.config import Settings, expand_user
from lsp_server.services.documents import Document, EditRecord
from lsp_server.services.ledger import IssuedSuggestion, SuggestionLedger
from lsp_server.services.pipeline import PendingRequest
from lsp_server.services.recorder import SessionRecorder
from lsp_server.services.positions import LineIndex, Position, PositionError
from lsp_server.services.scheduler import Cancelled, CancelToken, InferenceScheduler
from models.next_edit.baseline import _pattern, common_ends, widen_to_identifiers
from models.next_edit.examples import retyped_in_place
from telemetry.text import line_breaks, line_starts

if TYPE_CHECKING:  # the model module loads onnxruntime: imported on the first prediction
    from models.next_edit.model import NextEditAnswer

log = logging.getLogger("tact.next_edit")

_BREAK = re.compile(r"\r\n|\r|\n")  # LSP's line breaks

HISTORY_RECORDS = 8  # records walked back; the prompt keeps the last few within its own budget
DISMISSED_KEPT = 256  # next edits the user dismissed (and issued ones that may be), remembered most recent first


@dataclass(frozen=True)
class OtherCell:
    """A notebook cell a next edit asked about in another cell may go to, as it was at the request."""

    uri: str
    document: Document
    version: int
    index: LineIndex


def cells_below(notebooks, documents, doc: Document) -> list[OtherCell]:
    """The cells below ``doc`` in its notebook (``NotebookStore``), in order, as they are now (read on the event loop,
    as the request is made); [] outside notebooks. Only cells of ``doc``'s language, open and not binary."""
    out = []
    for uri in notebooks.cells_around(doc.uri)[1]:
        cell = documents.get(uri)
        if cell is None or cell.language_id != doc.language_id or cell.is_binary:
            continue
        version, index = cell.indexed_snapshot()
        out.append(OtherCell(uri, cell, version, index))
    return out


def replacement_in_other_cells(records: list[EditRecord], cells: list[OtherCell],
                               index: LineIndex) -> tuple[OtherCell, int, int, str] | None:
    """The last edit's identifier replacement made again in the first cell below that still has the old name as a
    whole word: (cell, start offset, end offset, new name); None when the last edit is no such replacement or no
    cell below has the name. A rename in one cell is then carried to its uses in the cells below, one at a time.
    ``index``: the edited cell's text now. The names are the whole identifiers the edit changed, read around it there:
    `total_count` renamed by retyping `count` as `sum` renamed another variable `count` in the cell below."""
    last = records[-1] if records else None
    if last is None:
        return None
    old, new = last.removed_text, last.inserted_text
    if not (old.isidentifier() and new.isidentifier()) or old == new:
        return None
    text, at = index.text, index.offset_at(last.start)
    if text[at:at + len(new)] != new:
        return None  # typed on since: the text there is no longer the edit's
    # widened as the baseline widens a replacement, on the edit's line before and after it
    lo, hi = index.offset_at(Position(last.start.line, 0)), index.offset_at(Position(last.start.line + 1, 0))
    after = text[lo:hi]
    before = text[lo:at] + old + text[at + len(new):hi]
    p, s = widen_to_identifiers(before, after, at - lo, hi - at - len(new))
    old, new = before[p:len(before) - s], after[p:len(after) - s]
    name = _pattern(old)  # as a whole word, as the baseline finds its next occurrence in a document
    for cell in cells:
        if (m := name.search(cell.index.text)) is not None:
            return cell, m.start(), m.end(), new
    return None


@dataclass
class NextEditResult:
    """A predictor's answer (`models.next_edit.model.NextEditAnswer`: its line edit, confidence, threshold and
    who answered) placed in the document as one LSP range and its new text; ``cell``: in another notebook cell than
    the one asked about (its range is in that cell)."""

    start: Position
    end: Position
    new_text: str
    latency_ms: float
    answer: NextEditAnswer
    cell: OtherCell | None = None


def _remember(kept: OrderedDict, key, value) -> None:
    """``kept[key] = value`` as its newest entry, the oldest left out past ``DISMISSED_KEPT``."""
    kept[key] = value
    kept.move_to_end(key)
    while len(kept) > DISMISSED_KEPT:
        kept.popitem(last=False)


def retyped_as_one(records: list[EditRecord]) -> list[EditRecord]:
    """``records`` with a name deleted and the text typed where it was soon after, one after the other, as one
    replacement (`retyped_in_place`)."""
    out: list[EditRecord] = []
    for rec in records:
        prev = out[-1] if out else None
        if (prev is not None and not prev.inserted_text and not rec.removed_text and rec.start == prev.start
                and rec.uri == prev.uri
                and retyped_in_place(prev.removed_text, rec.inserted_text, rec.ts_start - prev.ts_end)):
            out[-1] = replace(prev, version=rec.version, inserted_text=rec.inserted_text, ts_end=rec.ts_end,
                              keystrokes=prev.keystrokes + rec.keystrokes)
        else:
            out.append(rec)
    return out


def line_history(text: str, records: list[EditRecord], index: LineIndex | None = None, plain: bool = False):
    """The history as line-based `Edit`s, oldest first: the records undone from ``text`` (``index``: the document's
    line index of it, where the text's lines are found without counting its line breaks; ``plain``: the caller
    found no break only Python counts in ``text``, which is then not searched for one again).

    Each record is undone on a window of the text's lines (the lines it edits, one line before and at least one
    after, so that a CR and an LF joining across its ends is seen) with the same steps as on the whole text: the
    window stands in for the text, a line before it for the document's first line (whose line break an edit may
    borrow) and an unterminated line after it for the rest. Lines are numbered as Python splits them: where a break
    only Python counts (a form feed, U+2028) is in the text, or comes back with a removed text, the rest is undone
    on the whole text (the server never asks then: `predict` refuses such texts)."""
    from models.next_edit.examples import Edit, apply_edit, line_ending

    pending = list(reversed(records))
    if not plain and any(ch in text for ch in _PY_ONLY_BREAKS):
        return _undo_whole(text, pending)[::-1]
    edits: list = []
    doc = _Lines(text, index)
    for done, rec in enumerate(pending):
        first, char = rec.start.line, rec.start.character
        if first < 0 or char < 0:
            break  # no such position
        low = max(first - 1, 0)  # the window's first line
        if not doc.plain_before(low):
            edits.extend(_undo_whole(doc.text(), pending[done:]))
            break
        inserted, removed = rec.inserted_text, rec.removed_text
        n_ins, n_rem = line_breaks(inserted), line_breaks(removed)  # CRLF, CR or LF, as LSP counts
        after_edit = 1  # lines of context after the lines the inserted text spans
        while True:
            high = first + n_ins + after_edit + 1  # the window is lines [low, high)
            got = doc.get(low, high + 1)
            at_end = len(got) <= high - low  # the window holds the text's last line
            got = got[:high - low]
            if len(got) <= first - low:
                edit = None  # the record's line is past the text's end
                break
            window = "".join(got)
            try:
                start = LineIndex(window).offset_at(Position(first - low, char), clamp=False)
            except PositionError:
                edit = None
                break
            if window[start:start + len(inserted)] != inserted:
                edit = None  # the history no longer matches the text
                break
            if not at_end and start + len(inserted) >= len(window):
                after_edit *= 2  # the last line break must lie past the inserted text
                continue
            undone = window[:start] + removed + window[start + len(inserted):]
            head = "p" + line_ending(doc.get(0, 1)[0]) + "q\n" if low else ""  # its first line's break
            tail = "" if at_end else "x"
            after, before = head + window + tail, head + undone + tail
            a_lines, b_lines = after.splitlines(keepends=True), before.splitlines(keepends=True)
            line = first - low + (2 if low else 0)
            if not at_end and (line + n_rem + 2 > len(b_lines) or line + n_ins + 2 > len(a_lines)):
                after_edit *= 2  # the edit's lines must end inside the window
                continue
            end_before = min(len(b_lines), line + n_rem + 1)
            end_after = min(len(a_lines), line + n_ins + 1)
            edit = Edit(line, end_before, "".join(b_lines[line:end_before]), "".join(a_lines[line:end_after]))
            if apply_edit(before, edit) != after:
                edit = None  # a CR and an LF joined into one break, or a break (form feed) only Python counts
                break
            edit = _without_unchanged_lines(Edit(first, first + end_before - line, edit.original, edit.updated))
            lines = _split_lsp(undone)
            if not at_end:
                lines.pop()  # the empty line after the window's last line break
            doc.replace(low, low + len(got), lines)
            break
        if edit is None:
            break
        edits.append(edit)
    edits.reverse()
    return edits


def _undo_whole(after: str, records: list) -> list:
    """The line edits of ``records`` (newest first) undone one by one from the whole text ``after``, newest first:
    `line_history`'s steps where the lines before an edit are numbered differently by Python and LSP."""
    from models.next_edit.examples import Edit, apply_edit

    edits = []
    for rec in records:
        try:
            start = LineIndex(after).offset_at(rec.start, clamp=False)
        except PositionError:
            break
        if after[start:start + len(rec.inserted_text)] != rec.inserted_text:
            break  # the history no longer matches the text
        before = after[:start] + rec.removed_text + after[start + len(rec.inserted_text):]
        a_lines, b_lines = after.splitlines(keepends=True), before.splitlines(keepends=True)
        first = rec.start.line
        end_before = min(len(b_lines), first + line_breaks(rec.removed_text) + 1)  # CRLF, CR or LF, as LSP counts
        end_after = min(len(a_lines), first + line_breaks(rec.inserted_text) + 1)
        edit = Edit(first, end_before, "".join(b_lines[first:end_before]), "".join(a_lines[first:end_after]))
        if apply_edit(before, edit) != after:
            break  # a CR and an LF joined into one break, or a break (form feed) only Python counts: lines disagree
        edits.append(_without_unchanged_lines(edit))
        after = before
    return edits


def _without_unchanged_lines(edit):
    """``edit`` without the whole lines it leaves as they were at either end, as the ranker and the model learned
    edits (release diffs, telemetry's `line_edit`): a line typed above another came as both lines, and the ranker
    offered to type it once more beside itself (`@cache` above a `def`, `import re` after Enter); a line deleted came
    as two lines turned into one, which no candidate repeats. An edit that changes no line is left as it is."""
    from models.next_edit.baseline import common_ends
    from models.next_edit.examples import Edit, lines_of

    original, updated = lines_of(edit.original), lines_of(edit.updated)
    head, tail = common_ends(original, updated)
    if head + tail == 0 or (head == len(original) and head == len(updated)):
        return edit
    return Edit(edit.start_line + head, edit.end_line - tail, "".join(original[head:len(original) - tail]),
                "".join(updated[head:len(updated) - tail]))


_PY_ONLY_BREAKS = "\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"  # lines Python's splitlines ends and LSP does not
_PY_ONLY_BREAKS_ASCII = "\x0b\x0c\x1c\x1d\x1e"  # those an ASCII text can hold


def _lsp_lines(text: str, index: LineIndex | None = None) -> int | None:
    """How many lines LSP counts in ``text``, when Python's ``splitlines`` counts the same ones (the last line
    left out when empty); None when they disagree. They disagree when the text holds a break only Python counts
    before its last character (one as the last character ends the last line for both), and on the empty text (no
    line for Python, one for LSP). Searched and counted at C speed (`str.find` and `str.count`, several times
    faster here than a regex's character class), without a table of every line; read from ``index`` (the text's
    own) when given."""
    last = len(text) - 1
    breaks = _PY_ONLY_BREAKS_ASCII if text.isascii() else _PY_ONLY_BREAKS  # (`isascii` reads a flag of the string)
    if last < 0 or any(text.find(ch, 0, last) >= 0 for ch in breaks):
        return None
    if index is not None:
        return index.line_count
    lines = 1 + text.count("\n")
    if "\r" in text:
        lines += text.count("\r") - text.count("\r\n")
    return lines


_SCAN = 16384  # characters counted per step when looking for a line of the original text


class _OriginalLines:
    """LSP lines of one text (holding no Python-only line break), found on demand: read from the document's line index
    when there is one; else line breaks are counted a chunk at a time (C-speed `str.count`), so finding line ``i``
    costs a scan of the text before it, not a table of every line (which would cost a scan of all of it)."""

    def __init__(self, text: str, index: LineIndex | None = None) -> None:
        self.text = text
        self.index = index
        self.cp_off = [0]  # checkpoints: offsets (never inside a CRLF) ...
        self.cp_brk = [0]  # ... and the LSP line breaks before each
        self.chunks: dict[int, list[int]] = {}  # checkpoint j -> the line starts up to checkpoint j + 1

    def start(self, i: int) -> int | None:
        """Offset where line ``i`` (>= 0) starts; None when the text has no such line."""
        if i == 0:
            return 0
        if self.index is not None:
            return self.index.line_bounds(i)[0] if i < self.index.line_count else None
        text, cp_off, cp_brk = self.text, self.cp_off, self.cp_brk
        n = len(text)
        while cp_brk[-1] < i and cp_off[-1] < n:
            a = cp_off[-1]
            b = min(a + _SCAN, n)
            if b < n and text[b - 1] == "\r" and text[b] == "\n":
                b += 1
            cp_off.append(b)
            cr = text.count("\r", a, b)
            cp_brk.append(cp_brk[-1] + text.count("\n", a, b) + (cr and cr - text.count("\r\n", a, b)))
        if cp_brk[-1] < i:
            return None
        j = bisect_left(cp_brk, i) - 1  # cp_brk[j] < i <= cp_brk[j + 1]
        starts = self.chunks.get(j)
        if starts is None:
            starts = self.chunks[j] = [m.end() for m in _BREAK.finditer(text, cp_off[j], cp_off[j + 1])]
        return starts[i - cp_brk[j] - 1]

    def line(self, i: int) -> str | None:
        a = self.start(i)
        if a is None:
            return None
        b = self.start(i + 1)
        return self.text[a:] if b is None else self.text[a:b]

    def lines(self, lo: int, hi: int) -> list[str]:
        """Lines ``lo``..``hi - 1`` (fewer where the text ends first)."""
        out = []
        for i in range(lo, hi):
            s = self.line(i)
            if s is None:
                break
            out.append(s)
        return out


class _Lines:
    """A text as its LSP lines (each with its line break; the last one without, possibly empty): the original text's
    lines, read on demand, with some runs of them replaced by lines held as strings."""

    def __init__(self, text: str, index: LineIndex | None = None) -> None:
        self.original = _OriginalLines(text, index)
        self.runs: list[list] = [[0, None, None]]  # [lo, hi, lines]: original lines lo..hi-1 (hi None: to the end),
        # or, where lines is a list, those strings

    def get(self, lo: int, hi: int) -> list[str]:
        """The current lines ``lo``..``hi - 1`` (fewer where the text ends first)."""
        out: list[str] = []
        at = 0  # the current number of the run's first line
        for r_lo, r_hi, held in self.runs:
            if at >= hi:
                break
            if held is not None:
                size = len(held)
                if at + size > lo:
                    out.extend(held[max(lo - at, 0):hi - at])
            else:
                a = r_lo + max(lo - at, 0)
                b = r_lo + (hi - at)
                if r_hi is not None:
                    b = min(b, r_hi)
                    size = r_hi - r_lo
                else:
                    size = None
                if a < b:
                    got = self.original.lines(a, b)
                    out.extend(got)
                if size is None:
                    break
            at += size
        return out

    def plain_before(self, hi: int) -> bool:
        """Whether the current lines before line ``hi`` hold no Python-only line break (the original text's hold none:
        only lines held as strings, which removed texts brought back, can)."""
        at = 0
        for r_lo, r_hi, held in self.runs:
            if at >= hi or (held is None and r_hi is None):
                return True
            if held is not None:
                if any(ch in line for line in held[:hi - at] for ch in _PY_ONLY_BREAKS):
                    return False
                at += len(held)
            else:
                at += r_hi - r_lo
        return True

    def replace(self, lo: int, hi: int, lines: list[str]) -> None:
        """Replace the current lines ``lo``..``hi - 1`` (all there) by ``lines``."""
        out: list[list] = []
        at = 0
        placed = False
        for r_lo, r_hi, held in self.runs:
            size = len(held) if held is not None else (None if r_hi is None else r_hi - r_lo)
            end = None if size is None else at + size
            # the part of this run before lo
            if at < lo:
                keep = lo - at if end is None else min(lo, end) - at
                if held is not None:
                    out.append([0, 0, held[:keep]])
                else:
                    out.append([r_lo, r_lo + keep, None])
            if not placed and (end is None or end >= lo):
                out.append([0, 0, lines])
                placed = True
            # the part of this run from hi on
            if end is None or end > hi:
                skip = max(hi - at, 0)
                if held is not None:
                    out.append([0, 0, held[skip:]])
                else:
                    out.append([r_lo + skip, r_hi, None])
            if end is None:
                break
            at = end
        if not placed:
            out.append([0, 0, lines])
        self.runs = [r for r in out if r[2] is None and (r[1] is None or r[1] > r[0]) or r[2]]

    def text(self) -> str:
        parts = []
        orig = self.original
        for r_lo, r_hi, held in self.runs:
            if held is not None:
                parts.extend(held)
                continue
            a = orig.start(r_lo)
            if a is None:
                continue
            b = None if r_hi is None else orig.start(r_hi)
            parts.append(orig.text[a:] if b is None else orig.text[a:b])
        return "".join(parts)


class _IndexedLines:
    """A text's lines as `models.next_edit.examples.lines_of` splits it (`TextLines`), read from the document's line
    index when asked for: a request reads the lines near its edits, not every line. Only for a text holding no break
    only Python counts before its last character (`_lsp_lines`): there Python and LSP split the same lines, but for
    LSP's empty line after a final line break, which Python does not count. ``text_has_cr``: whether the text holds
    a CR, when the caller knows (else the text is searched for one when asked)."""

    def __init__(self, index: LineIndex, text_has_cr: bool | None = None) -> None:
        self.index = index
        self.text = index.text
        last = index.line_count - 1
        self._count = last if index.line_bounds(last)[0] == len(self.text) else last + 1
        self._has_cr = text_has_cr

    @property
    def text_has_cr(self) -> bool:
        if self._has_cr is None:
            self._has_cr = "\r" in self.text
        return self._has_cr

    def joined(self) -> str:
        return self.text

    def __len__(self) -> int:
        return self._count

    def start(self, line: int) -> int:
        return self.index.line_bounds(line)[0] if line < self._count else len(self.text)

    def line_at(self, offset: int) -> int:
        return self.index.position_at(offset).line

    def __getitem__(self, key):
        if isinstance(key, slice):
            rows = range(self._count)[key]
            if rows.step != 1:
                return [self[i] for i in rows]
            if not rows:
                return []
            starts = [self.start(i) for i in range(rows.start, rows.stop + 1)]
            return [self.text[a:b] for a, b in zip(starts, starts[1:])]
        i = range(self._count)[key]  # an IndexError past the end, as a list's
        return self.text[self.start(i):self.start(i + 1)]


def _split_lsp(text: str) -> list[str]:
    """``text`` as LSP lines, each with its line break; the last one, possibly empty, without."""
    starts = line_starts(text)
    return [text[a:b] for a, b in zip(starts, starts[1:])] + [text[starts[-1]:]]


def trimmed_range(text: str, edit, index: LineIndex | None = None,
                  lines: _IndexedLines | None = None) -> tuple[Position, Position, str] | None:
    """The LSP range and new text of a line edit, with the unchanged characters at both ends left out
    (identifiers kept whole, as the baseline widens its replacements); None for an edit that changes nothing. Cut
    from `splice`, so the editor's text is exactly `apply_edit`'s (line breaks included); an end never falls inside
    a CRLF, which no position names. ``index``: the document's line index of ``text`` (else one is built, a scan of
    the whole text); ``lines``: ``text``'s lines read from it (else the text is split whole)."""
    from models.next_edit.examples import splice

    a, b, new = splice(text, edit, lines)
    old = text[a:b]
    if old == new:
        return None
    p, s = widen_to_identifiers(old, new, *common_ends(old, new))
    if p and text[a + p - 1:a + p + 1] == "\r\n":
        p -= 1
    if s and text[b - s - 1:b - s + 1] == "\r\n":
        s -= 1
    index = index if index is not None else LineIndex(text)
    return index.position_at(a + p), index.position_at(b - s), new[p:len(new) - s]


class _LoadedOnce:
    """One artefact (the next-edit model, the edit ranker) loaded once per configured path: the object, or
    the reason there is none. An unexpected failure becomes the reason, logged: a corrupt file must not take
    the server down."""

    def __init__(self, label: str, off_message: str) -> None:
        self.label = label
        self.off_message = off_message  # logged with the reason when loading gives nothing
        self.path: str | None = None  # the path last asked for ("" = the shipped one); None: never asked
        self.value = None
        self.reason: str | None = None

    def get(self, wanted: str, load: Callable[[str], tuple]):
        """The object for path ``wanted``; ``load(wanted)`` -> (object, None) or (None, why) runs only when the
        path changed (a failure is remembered too, and not retried for the same path)."""
        if self.path == wanted:
            return self.value
        self.path = wanted
        try:
            self.value, self.reason = load(wanted)
        except Exception as exc:
            log.warning("%s failed to load", self.label, exc_info=True)
            self.value, self.reason = None, f"{self.label} failed to load: {exc}"
        if self.reason:
            log.warning(self.off_message, self.reason)
        return self.value

    def put(self, path: str, value) -> None:
        """Serve ``value``, already loaded, for ``path``."""
        self.path, self.value, self.reason = path, value, None


def _load_ranker(wanted: str) -> tuple:
    from models.next_edit.ranker import RankerError, load_ranker

    try:
        return load_ranker(expand_user(wanted) if wanted else None), None
    except RankerError as exc:
        return None, str(exc)


def _load_model(wanted: str) -> tuple:
    from models.model_dir import ModelDirError
    from models.next_edit.model import DEFAULT_MODEL_DIR, NextEditModel

    path = expand_user(wanted) if wanted else DEFAULT_MODEL_DIR
    if not (path / "graphs.json").exists():
        return None, f"no next-edit model at {path} (train it with `tact train next-edit`)"
    try:
        return NextEditModel(path), None
    except ModelDirError as exc:
        return None, str(exc)


class NextEditService:
    """Loads the next-edit model and the edit ranker ahead (`preload`, else on first use) and predicts with them; each
    request is logged as a suggestion of kind ``next_edit`` (requested, generated, hidden below the
    confidence threshold, then shown / accepted / rejected through the ledger like completions)."""

    def __init__(self, scheduler: InferenceScheduler, ledger: SuggestionLedger, recorder: SessionRecorder) -> None:
        self.scheduler = scheduler
        self.ledger = ledger
        self.recorder = recorder
        self.counts: Counter[str] = Counter()  # this session: requested, generated, hidden, issued
        self._model = _LoadedOnce("next-edit model", "next-edit prediction is off: %s")
        self._ranker = _LoadedOnce("edit ranker", "the edit ranker is off, the baseline answers: %s")
        self._lock = threading.Lock()
        self._facts: tuple[str, int | None, bool] | None = None  # `_text_facts`: the text last predicted for
        # `_edit_key` of each issued edit by id, and of those the user dismissed: an edit dismissed with Escape came
        # back at the next keystroke elsewhere
        self._issued_edits: OrderedDict[str, tuple] = OrderedDict()
        self._dismissed: OrderedDict[tuple, None] = OrderedDict()

    def ensure_ranker(self, ranker_path: str = ""):
        """The edit ranker (loaded once per path); None, with ``ranker_reason`` saying why, when it is
        missing or corrupt: the repeat-the-last-replacement baseline answers in its place."""
        with self._lock:
            return self._ranker.get(ranker_path or "", _load_ranker)

    def preload(self, settings: Settings) -> None:
        """Load ahead what the first request would load for the settings' predictor: the prediction modules, the edit
        ranker they name and the Python grammar its syntax check reads (``ranker``, ``auto``), the next-edit model
        (``model``, ``auto``: its onnxruntime sessions; the first request of a session waited for them). Run off the
        event loop, once the server is initialized and after a settings change; a request meanwhile waits for the
        load (the service's lock). Never raises."""
        predictor = settings.next_edit_predictor
        ranker, model = predictor in ("ranker", "auto"), predictor in ("model", "auto")
        if not settings.next_edit or not (ranker or model):
            return
        try:
            from models import syntax

            importlib.import_module("models.next_edit.model")  # predict_with and the modules it reads
            if ranker:
                self.ensure_ranker(settings.next_edit_ranker_path)
                syntax.available()
            if model:
                self.ensure_model(settings.next_edit_model_path)
        except Exception:
            log.warning("the next-edit predictor failed to load ahead", exc_info=True)

    def ensure_model(self, model_path: str = ""):
        """The next-edit model (loaded once per path); None, with ``reason`` saying why."""
        with self._lock:
            return self._model.get(model_path or "", _load_model)

    def use_model(self, model, model_path: str = "") -> None:
        """Serve ``model``, already loaded, for ``model_path`` (a tool holding one, or a test's fake)."""
        with self._lock:
            self._model.put(model_path, model)

    @property
    def model(self):
        return self._model.value

    @property
    def reason(self) -> str | None:
        """Why there is no next-edit model, once loading was tried."""
        return self._model.reason

    @property
    def ranker(self):
        return self._ranker.value

    @property
    def ranker_reason(self) -> str | None:
        """Why there is no edit ranker (the baseline answers instead)."""
        return self._ranker.reason

    @property
    def version(self) -> str | None:
        return self.model.version if self.model is not None else None

    def answered_by(self, predictor: str) -> str:
        """The version telemetry records for a prediction: the model's or the ranker's, or ``heuristic``."""
        if predictor == "model":
            return self.version or ""
        if predictor == "ranker" and self.ranker is not None:
            return self.ranker.version
        return "heuristic"

    def _text_facts(self, text: str, index: LineIndex | None) -> tuple[int | None, bool]:
        """(`_lsp_lines` of ``text``, whether it holds a CR): whole-text scans, so the answers for the text last
        predicted for are kept with it (one text, the same object: an editor asking again about one version, as
        for code actions at each move of the cursor, costs no scan)."""
        kept = self._facts
        if kept is not None and kept[0] is text:
            return kept[1], kept[2]
        lsp_lines = _lsp_lines(text, index)
        has_cr = lsp_lines is not None and "\r" in text
        self._facts = (text, lsp_lines, has_cr)
        return lsp_lines, has_cr

    def predict(self, text: str, records: list[EditRecord], position: Position, uri: str = "",
                model_path: str = "", should_cancel: Callable[[], bool] | None = None,
                predictor: str = "auto", threshold: float = 0.0, ranker_path: str = "",
                ranker_threshold: float = -1.0, index: LineIndex | None = None,
                language_id: str = "") -> NextEditResult | None:
        """A prediction for ``text`` (one version of a document, its edit ``records`` read with it).

        ``predictor``: ``ranker`` (the edit ranker's best candidate), ``heuristic`` (the repeat-the-last-
        replacement baseline), ``model`` (the model's edit, if any) or ``auto`` (the ranker's edit when it is
        shown, else the model's); see `models.next_edit.model.predict_with`. The result may be one to hide
        (``shown`` false: below ``threshold`` for the model, ``ranker_threshold`` or the ranker's own for it).
        ``index``: the document's line index of ``text``, read instead of scanning the text for its lines (a request
        near the end of a 200,000-line file counted the line breaks before it and built a second index of it).
        ``language_id``: the document's (the ranker checks that its edit leaves Python parsing, other code's brackets
        balanced). The latency counts the prediction, not a load of the ranker or the model."""
        if index is not None and index.text != text:  # the same object as a rule: compared at no cost then
            raise ValueError("the line index given is not of the text predicted for")
        lsp_lines, has_cr = self._text_facts(text, index)
        if lsp_lines is None:
            return None  # line breaks other than \n / \r\n / \r (form feeds, U+2028): lines would disagree
        cursor_line = min(position.line, lsp_lines - 1)  # past the end: the last line (LSP clamps a column so too)
        history = line_history(text, retyped_as_one(records), index, plain=text[-1] not in _PY_ONLY_BREAKS)
        lines = _IndexedLines(index, has_cr) if index is not None else None
        if not history:
            return None  # nothing was edited yet: there is no chain to continue
        from models.next_edit.model import predict_with

        model = self.ensure_model(model_path) if predictor in ("model", "auto") else None
        ranker = self.ensure_ranker(ranker_path) if predictor in ("ranker", "auto") else None
        t0 = time.perf_counter()  # after the loads: the first request of a session logged the ranker's load as latency
        found = predict_with(predictor, model, history, text, cursor_line, uri, threshold, should_cancel, ranker,
                             ranker_threshold, lines, language_id)
        if found is None:
            return None
        trimmed = trimmed_range(text, found.edit, index, lines)
        if trimmed is None:
            return None  # an edit that changes nothing is never shown, whoever proposed it
        start, end, new_text = trimmed
        return NextEditResult(start, end, new_text, (time.perf_counter() - t0) * 1000, found)

    def _in_other_cells(self, records: list[EditRecord], cells: list[OtherCell],
                        index: LineIndex) -> NextEditResult | None:
        """The last identifier replacement made again in a cell below (``replacement_in_other_cells``; ``index``:
        the edited cell's text now), answered as the heuristic (repeat the last replacement at its next occurrence)
        answers in a document."""
        from models.next_edit.examples import Edit
        from models.next_edit.model import NextEditAnswer

        t0 = time.perf_counter()
        found = replacement_in_other_cells(records, cells, index)
        if found is None:
            return None
        cell, a, b, new = found
        start, end = cell.index.position_at(a), cell.index.position_at(b)
        # the line edit as every other is logged: the whole line with its break, cut at str offsets (the positions'
        # columns count UTF-16 units, which cut a line holding a character beyond the BMP in the wrong place)
        text = cell.index.text
        first, last = cell.index.offset_at(Position(start.line, 0)), cell.index.offset_at(Position(start.line + 1, 0))
        edit = Edit(start.line, start.line + 1, text[first:last], text[first:a] + new + text[b:last])
        return NextEditResult(start, end, new, (time.perf_counter() - t0) * 1000,
                              NextEditAnswer(edit, 1.0, "heuristic"), cell)

    def request(self, doc: Document, version: int, position: Position, settings: Settings,
                trigger: str = "nextEdit", other_cells: list[OtherCell] | None = None) -> PendingRequest | None:
        """Queue a prediction for ``doc`` at ``version`` (read on the event loop, with its history);
        the future gives a NextEditResult to show or None, or raises Cancelled (superseded, outdated).
        None at once when the version is outdated. A result goes to the editor only through `issue`. ``trigger`` is
        logged with the request: `nextEdit` (the custom request), `codeAction` (a code action the user asked for) or
        `codeActionAutomatic` (one the editor asked for by itself). ``other_cells``: the request asked for edits in
        other cells too (``cells_below``; None: it did not): where nothing more is predicted in this cell, the last
        identifier replacement is made again in the first cell below that has the old name."""
        current_version, index = doc.indexed_snapshot()
        text = index.text
        if current_version != version or not settings.next_edit or doc.is_binary:
            return None
        records = doc.history.recent(HISTORY_RECORDS)
        pending_edit = doc.history.pending  # logged with the request, so a replay rebuilds this exact text
        suggestion_id = self.ledger.new_id()
        recorder = self.recorder
        uri = doc.uri

        def job(token: CancelToken) -> NextEditResult | None:
            self.counts["requested"] += 1
            recorder.requested(suggestion_id, "next_edit", uri, version, position.line, position.character, trigger,
                               {"other_cells": True} if other_cells is not None else {}, pending_edit)
            if token.cancelled or doc.version != version:
                raise Cancelled(token.reason if token.cancelled else "stale")
            result = self.predict(text, records, position, uri, settings.next_edit_model_path, lambda: token.cancelled,
                                  settings.next_edit_predictor, settings.next_edit_threshold,
                                  settings.next_edit_ranker_path, settings.next_edit_ranker_threshold, index,
                                  doc.language_id)
            if token.cancelled:
                raise Cancelled(token.reason)
            hidden_here = None
            if other_cells and (result is None or not result.answer.shown):
                # nothing to show in this cell (a candidate the ranker found too unlikely included): the rename
                # goes on in the cells below; the hidden answer's confidence is logged with it
                below = self._in_other_cells(records, other_cells, index)
                if below is not None:
                    hidden_here = None if result is None else result.answer.confidence
                    result = below
            if result is None:
                no_model = self.model is None and settings.next_edit_predictor == "model"
                recorder.cancelled(suggestion_id, "no_model" if no_model else "no_edit")
                return None
            self.counts["generated"] += 1
            answer, e = result.answer, result.answer.edit
            by_model = answer.predictor == "model"  # only the model decodes: tokens, and the end of its rewrite
            recorder.generated(suggestion_id, result.new_text, self.answered_by(answer.predictor),
                               "speculative" if by_model else answer.predictor, result.latency_ms, answer.tokens, None,
                               "eos" if by_model else None, {"range": [result.start.line, result.start.character, result.end.line,
                                                 result.end.character],
                                       "line_edit": [e.start_line, e.end_line, e.original, e.updated],
                                       "confidence": round(answer.confidence, 4),
                                       **({"uri": result.cell.uri, "version": result.cell.version}
                                          if result.cell is not None else {}),
                                       **({"hidden_in_cell": round(hidden_here, 4)} if hidden_here is not None else {})})
            dismissed = self._edit_key(result, uri) in self._dismissed
            if not answer.shown or dismissed:
                self.counts["hidden"] += 1
                gate = "next_edit_dismissed" if dismissed else \
                    "next_edit_ranker" if answer.predictor == "ranker" else "next_edit_confidence"
                recorder.gated(suggestion_id, 2, "hide", answer.confidence, answer.threshold,
                               self.answered_by(answer.predictor), {"gate": gate})
                return None
            if doc.version != version:
                raise Cancelled("stale")
            return result

        future, token = self.scheduler.submit(self.job_key(uri),
                                              recorder.logged_job(suggestion_id, job, "next-edit prediction"))
        return PendingRequest(suggestion_id, future, token, doc, version)

    def dismissed(self, suggestion_id: str) -> None:
        """The user dismissed the edit ``suggestion_id`` (Escape): not offered again while its lines, at its place,
        read as they did (whichever request finds it again)."""
        key = self._issued_edits.pop(suggestion_id, None)
        if key is not None:
            _remember(self._dismissed, key, None)

    @staticmethod
    def _edit_key(result: NextEditResult, uri: str) -> tuple:
        """The edit's document, place and lines: the same change at another use is another edit."""
        edit = result.answer.edit
        return (result.cell.uri if result.cell is not None else uri, edit.start_line, edit.end_line, edit.original,
                edit.updated)

    @staticmethod
    def job_key(uri: str) -> str:
        """The scheduler's key of ``uri``'s next-edit jobs: a newer one supersedes the older, not a completion's."""
        return f"next_edit:{uri}"

    def issue(self, pending: PendingRequest, doc: Document | None, version: int, result: NextEditResult,
              documents=None) -> bool:
        """On the event loop, as the answer goes out: register the edit (rejecting the unresolved one it
        replaces); or, when ``doc`` (the document open under the URI now, None once closed) is not the one asked
        about at ``version`` (it changed, or was closed or reopened, since the job's last look), log it cancelled
        and return False: no range for text the editor no longer has. An edit in another cell is registered for
        that cell, and checked the same way (``documents``: the open documents by URI)."""
        cell = result.cell
        moved = cell is not None and (documents is None or documents.get(cell.uri) is not cell.document
                                      or cell.document.version != cell.version)
        if doc is None or doc is not pending.document or doc.version != version or moved:
            self.recorder.cancelled(pending.suggestion_id, "stale")
            return False
        self.counts["issued"] += 1
        _remember(self._issued_edits, pending.suggestion_id, self._edit_key(result, doc.uri))
        uri, at = (cell.uri, cell.version) if cell is not None else (doc.uri, version)
        index = cell.index if cell is not None else doc.indexed_snapshot()[1]
        replaced = index.text[index.offset_at(result.start):index.offset_at(result.end)]
        superseded = self.ledger.issue(IssuedSuggestion(
            pending.suggestion_id, "next_edit", uri, at, result.new_text,
            start=(result.start.line, result.start.character), replaced=replaced))
        if superseded:
            self.recorder.superseded(superseded)
        if uri != doc.uri and (asking := self.ledger.supersede("next_edit", doc.uri)) is not None:
            # answered in another cell: the edit still open in the asking cell is replaced too, as in a document
            # (it stayed open, and was ended "documentClosed" at the cell's close)
            self.recorder.superseded(asking)
        return True
