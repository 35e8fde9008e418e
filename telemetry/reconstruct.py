"""Rebuild what the editor did in a logged session, as a script of LSP-level steps a replay can send.

The database logs each document's text at open and *coalesced* edits (a typed word is one edit,
finished only when the typing moves elsewhere or pauses), while suggestions are requested in the
middle of them. The text a request saw is rebuilt from:

- ``exact``: the request's ``pending_edit`` (the unfinished edit at that moment, logged since the
  server records it) applied to the text after every finished edit, or a request at a version where
  no edit was in progress;
- ``inferred``: older recordings without ``pending_edit``: the part of the enclosing coalesced edit's
  inserted text that ends at the request's cursor (right for forward typing; wrong only when a
  keystroke inside the edit was later backspaced away);
- ``approximate``: the cursor is not inside the edit; the nearest finished state is used.

Replaying every edit in order reproduces each document's final text exactly (edits are applied at
their end time); a snapshot logged at close or shutdown, when present, verifies it.

A notebook's cells are documents of their own; its ``notebook`` steps say which of them form it, in order (a
completion in a cell sees the cells above it), each after the cell opens and closes logged before it.

For the oracle, each request also gets ``reference``: what the programmer really typed at the cursor
next (following the later changes while they continue at the cursor) followed by the rest of the line.
A next-edit request instead gets ``next_text``: the document once the programmer's next edit to it is
applied (None when no edit followed). An edit predicted in another cell of a notebook is judged the same way against
that cell: ``next_text_after`` gives any document's text after its next change from any step of the script.
"""

from __future__ import annotations

import heapq
import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any, Iterable

from .reader import session_timeline, suggestions
from .text import EditedText, SplitText, advance, diff, same_text

EXACT, INFERRED, APPROXIMATE = "exact", "inferred", "approximate"
MAX_REFERENCE_STEPS = 4000  # changes followed to find what was typed next


@dataclass
class Request:
    suggestion_id: str
    uri: str
    version: int
    line: int
    character: int
    trigger: str
    ts: float
    fidelity: str = EXACT
    offset: int = 0  # cursor, str index in the rebuilt text
    reference: str = ""  # what was typed next at the cursor, then the rest of the line
    logged: dict[str, Any] | None = None  # the logged suggestion (summary row), if any
    kind: str = "completion"  # completion | next_edit
    next_text: str | None = None  # next_edit: the document after the programmer's next edit to it
    # completion: the entry selected in the editor's completion widget that the suggestion continued (its range
    # and text, as logged in the request's context), or None
    selected: dict[str, Any] | None = None
    # next_edit: the request asked for edits in other cells of its notebook (its logged context's ``other_cells``)
    other_cells: bool = False


def _selected_completion(context: Any) -> dict[str, Any] | None:
    """The selected completion entry a request's logged context holds, if it is whole."""
    sel = context.get("selected_completion") if isinstance(context, dict) else None
    keys = ("start_line", "start_character", "end_line", "end_character")
    if not (isinstance(sel, dict) and isinstance(sel.get("text"), str)
            and all(isinstance(sel.get(k), int) and not isinstance(sel.get(k), bool) for k in keys)):
        return None
    return sel


def _asked_other_cells(context: Any) -> bool:
    """The request's logged context says it asked for next edits in other cells of its notebook."""
    return isinstance(context, dict) and context.get("other_cells") is True


@dataclass
class NotebookCells:
    """A notebook step: the cell documents that form the notebook after it, in notebook order (``()`` once closed).
    A completion in a cell sees the cells above it, so a replay opens cells as the notebook's, as the editor did."""

    notebook_uri: str
    notebook_type: str
    version: int
    kind: str  # open | change | close
    cells: tuple[str, ...]


@dataclass
class Step:
    ts: float
    kind: str  # open | change | request | close | settings | notebook
    uri: str | None = None
    version: int | None = None
    text: str | None = None  # open: the document text
    language_id: str | None = None
    start: tuple[int, int] | None = None  # change: LSP range in the text before it
    end: tuple[int, int] | None = None
    start_offset: int = 0
    end_offset: int = 0
    inserted: str = ""
    request: Request | None = None
    settings: dict[str, Any] | None = None
    continued: bool = False  # change: a piece of one rebuilt change whose next piece follows (see _pieces)
    edit_end: bool = False  # change: the last of a logged edit's changes (requests in its typing split it in several)
    notebook: NotebookCells | None = None  # notebook: its cells after it (``uri`` and ``version`` are the notebook's)

    def apply(self, text: str) -> str:
        """change: ``text`` (the document before it) with this change applied."""
        return text[: self.start_offset] + self.inserted + text[self.end_offset :]


@dataclass
class Script:
    session: dict[str, Any]
    steps: list[Step] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    final_texts: dict[str, str] = field(default_factory=dict)  # uri -> text once every logged edit is applied
    verified: dict[str, bool] = field(default_factory=dict)  # uri -> the edits rebuilt every close snapshot of it
    issues: list[str] = field(default_factory=list)
    requests_left_out: int = 0  # logged requests on documents with no logged open: not in ``requests``, not replayed
    # the kinds (completion, next_edit) whose suggestions the recording's client reported shown (VS Code does; a client
    # that does not leaves every shown_at empty): of those, a suggestion never shown was dropped before display
    reports_shows: frozenset[str] = frozenset()

    @property
    def complete(self) -> bool:
        """The session ended normally (a crash leaves ``ended_at`` empty)."""
        return self.session.get("ended_at") is not None

    @property
    def duration_s(self) -> float:
        if not self.steps:
            return 0.0
        return max(0.0, self.steps[-1].ts - self.steps[0].ts)

    def fidelity_counts(self) -> dict[str, int]:
        return fidelity_counts(self.requests)


def fidelity_counts(requests: Iterable[Request]) -> dict[str, int]:
    """How exactly the document text was rebuilt at each of ``requests``, counted."""
    counts = {EXACT: 0, INFERRED: 0, APPROXIMATE: 0}
    for r in requests:
        counts[r.fidelity] += 1
    return counts


class _Doc:
    """One open period of one document: the text as replay rebuilds it, and the steps that got there.

    Both texts are held split into lines (``SplitText``) and changed in place, and the texts they are changed to are
    ``EditedText`` views of ``after_edits``: a change costs about its size, not a copy and a scan of the document."""

    def __init__(self, uri: str, open_item: dict[str, Any]) -> None:
        self.uri = uri
        self.opened: str = open_item.get("text") or ""
        self.text = SplitText(self.opened)  # the text the steps so far send the server
        self.version: int = open_item.get("version") or 0
        self.tip: int = 0  # where typing last happened, for placing ambiguous changes
        # A document opened without a language (languageId "") stays without one: as Python its context differed.
        language = open_item.get("language_id")
        self.steps: list[Step] = [Step(open_item["ts"], "open", uri, self.version, self.opened,
                                       "python" if language is None else language)]
        self.edits: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self.snapshots: list[dict[str, Any]] = []
        self.close_item: dict[str, Any] | None = None
        self.after_edits = SplitText(self.opened)  # the text once every logged edit (so far) is applied
        # How many characters ``text`` is known to share with ``after_edits`` at its start and at its end: comparisons
        # and diffs of the two read only between them.
        self.shared: tuple[int, int] = (len(self.opened), len(self.opened))
        self.resynced = False  # the edits alone missed a snapshot: replay copied it in
        self.pending: dict[str, Any] | None = None  # the unfinished edit the text has on top of after_edits
        self.requested_at: float | None = None  # the last request's time: keystrokes after it come later
        self.sent_version: int = self.version  # the version the last step sends (as _fix_versions will make it)

    def unchanged(self) -> EditedText:
        """``after_edits`` as it is, as a text to change to."""
        return EditedText(self.after_edits, 0, 0, "")

    def _kept(self, target: EditedText | str) -> tuple[int, int]:
        """How many characters ``target`` (a text to change to) is known to share with ``after_edits`` at its start
        and its end: a view of ``after_edits`` shares its unchanged ends; a str (a logged snapshot) nothing known."""
        if not isinstance(target, EditedText) or target.base is not self.after_edits:
            return 0, 0
        size = len(self.after_edits)
        if target.start == target.end and not target.inserted:
            return size, size
        return target.start, size - target.end

    def _agreement(self, target: EditedText | str) -> tuple[int, int]:
        """How many characters ``target`` is known to share with ``text`` at its start and its end: what both share
        with ``after_edits`` there (``shared`` is never more than the size of ``after_edits``)."""
        kept = self._kept(target)
        return min(self.shared[0], kept[0]), min(self.shared[1], kept[1])

    def _reached(self, target: EditedText | str) -> None:
        """``text`` now equals ``target``."""
        self.shared = self._kept(target)

    def settle(self, new: EditedText) -> None:
        """The logged edit ``new`` (a view of ``after_edits``, which ``text`` already equals) is applied."""
        self.after_edits.splice(new.start, new.end, new.inserted)
        self.shared = (len(self.after_edits), len(self.after_edits))

    def resync(self, text: str) -> None:
        """``after_edits`` is copied from a snapshot that ``text`` already equals."""
        self.after_edits = SplitText(text)
        self.shared = (len(text), len(text))

    def change_to(self, new_text: EditedText | str, ts: float, version: int | None, hints: tuple[int, ...],
                  keystrokes: int = 1, since: float | None = None, change: tuple[int, int, str] | None = None,
                  tip: int | None = None) -> None:
        """Change the text to ``new_text`` at ``ts``: by ``change`` (start, end, inserted) when it does so, else by the
        smallest change (placed by ``hints``). A change that goes on with the unfinished edit whose typing ended at
        ``tip`` with a keystroke at ``since``, and stands for ``keystrokes`` keystrokes, is sent in as many pieces as
        its characters allow, spread evenly from ``since`` to ``ts``: its keystrokes came at most the coalescing window
        apart, so their mean gap does too, and the replaying server keeps them in the one edit its recording logged.
        As one change at ``ts``, a part typed over longer than the window was split from the edit."""
        pieces = None
        continuing = since is not None and since <= ts
        most = keystrokes if continuing else 1
        if version is not None:
            most = min(most, version - self.sent_version)  # each piece raises the version; the last one sends it
        same_start, same_end = self._agreement(new_text)
        if change is not None and same_text(EditedText(self.text, *change), new_text, min(same_start, change[0]),
                                            min(same_end, len(self.text) - change[1])):
            start, end, inserted = change
            pieces = _pieces(self.text, start, end, inserted, tip, most)
        if pieces is None:
            change = diff(self.text, new_text, hints, same_start, same_end)
            if change is None:
                self._reached(new_text)
                return
            start, end, inserted = change
            # No LSP position lies between the CR and the LF of a CRLF: a change that starts or ends there (mixed or
            # lone breaks) was sent as the line's end, and the server applied another change. It takes in the CR or
            # the LF.
            if start > 0 and self.text[start - 1:start + 1] == "\r\n":
                start, inserted = start - 1, "\r" + inserted
            if end > 0 and self.text[end - 1:end + 1] == "\r\n":
                end, inserted = end + 1, inserted + "\n"
            pieces = _pieces(self.text, start, end, inserted, self.tip if continuing else None, most) or [
                (start, end, inserted)]
            start, inserted = change[0], change[2]
        # Keystrokes that changed nothing overall (typed, then deleted) left versions but no text to send: as many
        # changes that change nothing go first, at their share of the time, so that the pieces keep the mean gap
        # (the replaying server keeps an edit open on them, as on the keystrokes they stand for).
        fillers = 0
        if continuing and version is not None:
            fillers = max(0, min(keystrokes, version - self.sent_version) - len(pieces))
        keys = fillers + len(pieces)
        for i in range(1, fillers + 1):
            at = min(ts, max(self.requested_at or since, since + i * (ts - since) / keys))
            self.add_change(self.tip, self.tip, "", at, None, continued=True)
        for i, (a, b, piece) in enumerate(pieces, fillers + 1):
            last = i == keys
            at = ts if last else min(ts, max(self.requested_at or since, since + i * (ts - since) / keys))
            self.add_change(a, b, piece, at, version if last else None, continued=not last)
        self._reached(new_text)  # the pieces make the change to it
        self.tip = start + len(inserted)

    def add_change(self, start: int, end: int, inserted: str, ts: float, version: int | None,
                   continued: bool = False) -> None:
        """Append the change of ``text`` between str offsets ``start`` and ``end``, and apply it."""
        self.steps.append(Step(ts, "change", self.uri, version, start=self.text.position_at(start),
                               end=self.text.position_at(end), start_offset=start, end_offset=end,
                               inserted=inserted, continued=continued))
        self.text.splice(start, end, inserted)
        self.sent_version = version if version is not None and version > self.sent_version else self.sent_version + 1

    def mark_edit_end(self) -> None:
        """The logged edit just typed ends with the last change sent (this one's, or a request's that typed it whole)."""
        last = next((step for step in reversed(self.steps) if step.kind == "change"), None)
        if last is not None:
            last.edit_end = True

    def undo_pending(self) -> bool:
        """Take the unfinished edit back out of the text, where it was typed, at the last request's time. It was never
        logged as it stood: the keystrokes after that request turned it into a change that changed nothing (a word
        deleted and typed again on a revisit), which the server drops. The change rebuilt from there to the next
        logged edit spanned both places, and the replaying server logged one edit from the revisit to the new
        typing. False (nothing done) when the text does not hold the edit where it says."""
        pe = self.pending
        self.pending = None
        text, base = self.text, self.after_edits
        if pe is None or same_text(text, base, *self.shared):
            return pe is None
        a = base.offset_at(pe["start_line"], pe["start_character"])
        b = a + len(pe["inserted_text"])
        if (text[a:b] != pe["inserted_text"]
                or not same_text(EditedText(text, a, b, pe["removed_text"]), base, min(self.shared[0], a),
                                 min(self.shared[1], len(text) - b))
                or not _representable(text, a, b)):
            return False
        self.add_change(a, b, pe["removed_text"], self.requested_at or self.steps[-1].ts, None)
        self.shared = (len(base), len(base))
        self.tip = a + len(pe["removed_text"])
        return True

    def type_to(self, new_text: EditedText, ts: float, version: int | None, hints: tuple[int, ...],
                edit: dict[str, Any] | None) -> None:
        """Change the text to ``new_text``: the logged text so far with ``edit`` (a request's unfinished edit, or the
        next logged edit) applied, or with none. An edit that goes on with the unfinished one the text has is sent as
        the keystrokes that joined it; any other first takes that one back out (``undo_pending``)."""
        old = self.pending
        if old is not None and edit is not None and _continues(edit, old):
            # From the start of the edit's text that the keystrokes left as it was to where its typing ended, and past
            # it as far as it deleted forward: where the keystrokes went, not a smallest change the hints placed.
            base = self.after_edits
            es, ee, ps, pe = (base.offset_at(e[f"{side}_line"], e[f"{side}_character"])
                              for e in (edit, old) for side in ("start", "end"))
            tip = ps + len(old["inserted_text"])
            typed, inserted = self.text[es:tip], edit["inserted_text"]
            k = 0
            while k < min(len(typed), len(inserted)) and typed[k] == inserted[k]:
                k += 1
            keystrokes = (edit.get("keystrokes") or 0) - (old.get("keystrokes") or 0)
            self.change_to(new_text, ts, version, hints, max(1, keystrokes), old.get("ts"),
                           (es + k, tip + max(0, ee - pe), inserted[k:]), tip)
            return
        self.undo_pending()
        # A new edit is sent over its own logged range, not the smallest change: `values` replaced by `items` is
        # that edit, where the smallest change (`value` by `item`) logs another, and the next-edit history (a rename
        # carried on) sees another. Only from the text the range is in (``after_edits``, which ``text`` is known to
        # equal), and ``change_to`` takes it only where it gives ``new_text``.
        change = None
        base = self.after_edits
        if edit is not None and self.shared == (len(base), len(base)) and len(self.text) == len(base):
            change = (base.offset_at(edit["start_line"], edit["start_character"]),
                      base.offset_at(edit["end_line"], edit["end_character"]), edit["inserted_text"])
        self.change_to(new_text, ts, version, hints, change=change)


def _continues(later: dict[str, Any], earlier: dict[str, Any]) -> bool:
    """``later`` (an unfinished or a logged edit) is ``earlier`` with more keystrokes: the same first keystroke, and
    a range, in the text before both began, that holds earlier's (backspacing and deleting forward only widen it)."""
    return (earlier.get("ts_start") is not None and later.get("ts_start") == earlier["ts_start"]
            and (later["start_line"], later["start_character"]) <= (earlier["start_line"], earlier["start_character"])
            and (later["end_line"], later["end_character"]) >= (earlier["end_line"], earlier["end_character"]))


def _characters(s: str) -> list[str]:
    """``s`` as the characters a keystroke types or deletes; a CRLF is one line break."""
    out, i = [], 0
    while i < len(s):
        k = 2 if s.startswith("\r\n", i) else 1
        out.append(s[i:i + k])
        i += k
    return out


def _representable(text: str | SplitText, *offsets: int) -> bool:
    """Every offset is an LSP position of ``text``: in it, and none between the CR and the LF of a CRLF (the two
    characters around it are all that is read)."""
    size = len(text)
    return all(0 <= o <= size and not (0 < o < size and text[o - 1:o + 1] == "\r\n") for o in offsets)


def _pieces(text: str | SplitText, start: int, end: int, inserted: str, tip: int | None,
            most: int) -> list[tuple[int, int, str]] | None:
    """The change of ``text`` replacing [start, end) by ``inserted`` as keystrokes make it, in about ``most`` changes
    (fewer where it has fewer characters): deleting forward from where the unfinished edit's typing ended (``tip``),
    then back to ``start`` (from ``end`` when there is no tip or it lies outside), then typing. Each piece is (start,
    end, inserted) in the text the pieces before it made, and goes on where the one before ended, so the server merges
    them as it merged the keystrokes; deleting forward and back are never one piece, which would not. None where some
    piece would start or end between a CR and its LF."""
    if tip is None or not start <= tip <= end:
        tip = end
    ahead = [(tip, tip + len(ch), "") for ch in _characters(text[tip:end])]
    behind, pos = [], tip
    for ch in reversed(_characters(text[start:tip])):
        behind.append((pos - len(ch), pos, ""))
        pos -= len(ch)
    typed, pos = [], start
    for ch in _characters(inserted):
        typed.append((pos, pos, ch))
        pos += len(ch)
    keys = ahead + behind + typed
    count = max(1, min(most, len(keys)))
    cuts = {k * len(keys) // count for k in range(count)} | ({len(ahead)} if ahead and behind else set())
    cuts = sorted(cuts | {len(keys)})
    # The pieces change only text[start:end], so the text they make is followed there, with a character either side
    # (from ``lo``), which is all ``_representable`` reads.
    lo = max(0, start - 1)
    pieces, cur = [], text[lo:end + 1]
    for i, j in zip(cuts, cuts[1:]):
        group = keys[i:j]
        deleted = [g for g in group if g[1] > g[0]]
        a = min(g[0] for g in deleted) if deleted else group[0][0]
        b = a + sum(g[1] - g[0] for g in deleted)
        piece = "".join(g[2] for g in group)
        if not _representable(cur, a - lo, b - lo):
            return None
        pieces.append((a, b, piece))
        cur = cur[:a - lo] + piece + cur[b - lo:]
    return pieces


def apply_range(text: str | SplitText, sl: int, sc: int, el: int, ec: int, inserted: str,
                removed: str | None = None) -> str | None:
    """``text`` with the LSP range replaced; None when the range does not hold ``removed`` (when given)."""
    view = _replaced(text if isinstance(text, SplitText) else SplitText(text), sl, sc, el, ec, inserted, removed)
    return None if view is None else view.text()


def _replaced(text: SplitText, sl: int, sc: int, el: int, ec: int, inserted: str,
              removed: str | None = None) -> EditedText | None:
    """``apply_range`` as a view of ``text`` (not a copy of it)."""
    a, b = text.offset_at(sl, sc), text.offset_at(el, ec)
    if b < a or (removed is not None and text[a:b] != removed):
        return None
    return EditedText(text, a, b, inserted)


def _inferred(before: SplitText, edit: dict[str, Any], line: int, character: int) -> tuple[EditedText, int] | None:
    """The text inside ``edit`` when the cursor was at (line, character): its inserted text up to there."""
    a = before.offset_at(edit["start_line"], edit["start_character"])
    b = before.offset_at(edit["end_line"], edit["end_character"])
    inserted = edit["inserted_text"]
    pos = (edit["start_line"], edit["start_character"])
    k = 0
    while pos < (line, character) and k < len(inserted):
        step = 2 if inserted.startswith("\r\n", k) else 1  # a CRLF is one line break: no cursor between its halves
        pos = advance(*pos, inserted[k : k + step])
        k += step
    if pos == (line, character):
        return EditedText(before, a, b, inserted[:k]), a + k
    return None


def _identity(edit: dict[str, Any]) -> tuple:
    """What tells one coalesced edit from another, its version aside: a request's pending edit that no keystroke
    joined after the request is logged later as a finished edit with these same fields."""
    return (edit.get("ts_start"), edit.get("ts"), edit["start_line"], edit["start_character"], edit["end_line"],
            edit["end_character"], edit.get("removed_text"), edit["inserted_text"])


def _by_version(edits: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Consecutive edits of one version, together: a didChange with several changes (multi-cursor typing) logs
    several edits with the version it reached; the text at that version has all of them."""
    groups: list[list[dict[str, Any]]] = []
    for e in edits:
        if groups and e.get("version") is not None and groups[-1][-1].get("version") == e["version"]:
            groups[-1].append(e)
        else:
            groups.append([e])
    return groups


def _in_version_order(edits: list[dict[str, Any]], uri: str, issues: list[str]) -> list[dict[str, Any]]:
    """A document's edits in the order of the versions they reached (within one version, as logged). They come in
    the timeline's order, by time: a wall clock set back while recording put later edits first, and applied so they
    rebuilt another text, still called exact. Edits logged without versions (older recordings) stay as they are."""
    if any(e.get("version") is None for e in edits):
        return edits
    ordered = sorted(edits, key=lambda e: e["version"])
    if ordered != edits:
        issues.append(f"{uri}: edits logged out of their versions' order (the clock went back while recording); "
                      "applied in version order")
    return ordered


def _process(doc: _Doc, requests_out: list[Request], logged: dict[str, dict[str, Any]], issues: list[str]) -> None:
    reqs = sorted(doc.requests, key=lambda r: (r["version"] if r.get("version") is not None else -1, r["ts"], r["seq"]))
    snaps = {s["version"]: s for s in doc.snapshots if s.get("version") is not None}
    applied: dict[tuple, int | None] = {}  # _identity of each logged edit applied so far -> its version
    ri = 0
    unchecked: list[Request] = []  # emitted since the last snapshot the rebuilt text was checked against

    def emit_request(r: dict[str, Any], fidelity: str) -> None:
        offset = doc.text.offset_at(r["line"], r["character"])
        req = Request(r["suggestion_id"], doc.uri, r["version"], r["line"], r["character"], r.get("trigger") or "automatic",
                      r["ts"], fidelity, offset, logged=logged.get(r["suggestion_id"]), kind=r.get("kind") or "completion",
                      selected=_selected_completion(r.get("context")), other_cells=_asked_other_cells(r.get("context")))
        doc.tip = offset
        doc.requested_at = r["ts"]
        doc.steps.append(Step(r["ts"], "request", doc.uri, doc.version, request=req))
        requests_out.append(req)
        unchecked.append(req)

    def unapplied_pending(r: dict[str, Any]) -> dict[str, Any] | None:
        """The request's pending edit, or None when the rebuilt text has it already: no keystroke joined it after
        the request (a change that changed nothing still raises the version), so it was logged as it is, and applied.
        A pending edit logged without its version (older recordings) is matched on its other fields."""
        pe = r.get("pending_edit")
        if pe is None:
            return None
        key = _identity(pe)
        if key in applied and pe.get("version", applied[key]) == applied[key]:
            return None
        return pe

    def with_pending(pe: dict[str, Any] | None) -> EditedText | None:
        """``after_edits`` with the pending edit ``pe`` (an ``unapplied_pending``) applied; None where it does not
        fit."""
        if pe is None:
            return doc.unchanged()
        return _replaced(doc.after_edits, pe["start_line"], pe["start_character"], pe["end_line"],
                         pe["end_character"], pe["inserted_text"], pe["removed_text"])

    def emit_at_applied_version(r: dict[str, Any]) -> None:
        """A request once every logged edit up to its version is applied. At a version some logged edit reached, its
        pending edit is among them, except where a multi-cursor change finished one edit and left another pending
        that later keystrokes joined; recordings that log the pending edit's version tell that apart. At a version
        past the last logged edit (its edit was never logged: undone, crash), only the pending edit gives the text,
        and a recording without one gives it approximately."""
        past = r.get("version") is not None and r["version"] > doc.version
        if past and "pending_edit" not in r:
            emit_request(r, APPROXIMATE)
            return
        text = doc.unchanged()
        pe = r.get("pending_edit")
        edit = None
        if past or (pe is not None and "version" in pe):
            edit = unapplied_pending(r)
            text = with_pending(edit)
            if text is None:
                emit_request(r, APPROXIMATE)
                return
        # Past the last logged edit the change stays at the request's time: an earlier one could reorder the steps.
        ts = r["ts"] if past else min(r["ts"], (pe or {}).get("ts") or r["ts"])
        doc.type_to(text, ts, r.get("version"), (doc.tip,), edit)
        doc.pending = edit
        emit_request(r, EXACT)

    def checkpoint() -> None:
        snap = snaps.get(doc.version)
        if snap is None or snap.get("text") is None:
            return
        if snap["text"] != doc.after_edits.text():
            # the requests since the last check were at a text that went wrong somewhere before here
            for req in unchecked:
                req.fidelity = APPROXIMATE
            issues.append(f"{doc.uri}: rebuilt text differs from the snapshot at version {doc.version}; resynced"
                          + (f", and the {len(unchecked)} requests before it counted approximate" if unchecked else ""))
            doc.change_to(snap["text"], snap["ts"], doc.version, (doc.tip,))
            doc.mark_edit_end()
            doc.resync(snap["text"])
            doc.pending = None
            doc.resynced = True
        unchecked.clear()

    checkpoint()
    for group in _by_version(_in_version_order(doc.edits, doc.uri, issues)):
        while ri < len(reqs) and (reqs[ri].get("version") or 0) <= doc.version:
            emit_at_applied_version(reqs[ri])
            ri += 1
        for e in group:
            before = doc.after_edits
            new = _replaced(before, e["start_line"], e["start_character"], e["end_line"], e["end_character"],
                            e["inserted_text"])
            if new is None:
                issues.append(f"{doc.uri}: edit at version {e['version']} does not fit the rebuilt text; skipped")
                continue
            a = new.start
            while ri < len(reqs) and (reqs[ri].get("version") or 0) < (e.get("version") or 0):
                r = reqs[ri]
                ri += 1
                text, fidelity, ts = None, EXACT, r["ts"]
                edit = unapplied_pending(r)
                if "pending_edit" in r:
                    text = with_pending(edit)
                    if r["pending_edit"] is not None:
                        ts = min(ts, r["pending_edit"].get("ts") or ts)
                if text is not None:
                    doc.type_to(text, ts, r["version"], (doc.tip, a), edit)
                    doc.pending = edit
                else:
                    found = _inferred(before, e, r["line"], r["character"])
                    if found is not None:
                        text, fidelity = found[0], INFERRED
                    else:
                        before_it = r["ts"] < (e.get("ts_start") or e["ts"])
                        text, fidelity = (doc.unchanged() if before_it else new), APPROXIMATE
                    doc.change_to(text, ts, r["version"], (doc.tip, a))
                    doc.pending = None
                emit_request(r, fidelity)
            doc.type_to(new, e["ts"], e.get("version") or doc.version + 1, (doc.tip, a), e)
            doc.mark_edit_end()
            doc.pending = None
            doc.settle(new)
            applied[_identity(e)] = e.get("version")
            if e.get("version") is not None:
                doc.version = e["version"]
        checkpoint()  # after the whole group: the text at a version has every change of it
    for r in reqs[ri:]:
        emit_at_applied_version(r)
    last_snap = doc.snapshots[-1] if doc.snapshots else None
    if last_snap is not None and last_snap.get("text") is not None and doc.text.text() != last_snap["text"]:
        version = last_snap.get("version") or doc.version + 1
        if doc.pending is not None and doc.requested_at is not None:
            # The last request's unfinished edit was never logged: the keystrokes after it (the versions between)
            # undid it within the coalescing window, so they go on with it, or the replaying server logged both.
            doc.change_to(last_snap["text"], last_snap["ts"], version, (doc.tip,), max(1, version - doc.sent_version),
                          doc.requested_at, tip=doc.tip)
        else:
            doc.change_to(last_snap["text"], last_snap["ts"], version, (doc.tip,))
        doc.mark_edit_end()
    if doc.close_item is not None:
        doc.steps.append(Step(doc.close_item["ts"], "close", doc.uri))


def _references(doc_steps: list[Step], opened_text: str) -> None:
    """Fill each request's ``reference``: the text typed at its cursor next, then the rest of its line."""
    text = SplitText(opened_text)
    for i, step in enumerate(doc_steps):
        if step.kind == "change":
            text.splice(step.start_offset, step.end_offset, step.inserted)
            continue
        if step.kind != "request":
            continue
        req = step.request
        if req.kind == "next_edit":
            req.next_text = next_text_after(doc_steps, i + 1, req.uri, text)
            continue
        s = e = req.offset
        typed = ""
        for later in doc_steps[i + 1 : i + 1 + MAX_REFERENCE_STEPS]:
            if later.kind == "close":
                break
            if later.kind != "change":
                continue
            a, b = later.start_offset, later.end_offset
            if not (s <= a <= e and b <= e):
                break  # the typing left the cursor (a revisit, or a deletion before it)
            typed = typed[: a - s] + later.inserted + typed[b - s :]
            e += len(later.inserted) - (b - a)
            if "\n" in typed or "\r" in typed:
                break
        req.reference = typed + text.line_suffix(req.offset)


def next_text_after(steps: list[Step], start: int, uri: str, text: str | SplitText) -> str | None:
    """``uri``'s text once the logged edit its first change from ``steps[start]`` on belongs to is applied (all its
    changes, also past requests made while it was typed: applied up to the first of those, a 6-keystroke edit was
    judged by what 2 had typed), ``text`` being its text before ``steps[start]``; None when it is closed or never
    changed again. One rule for the requested document and for another cell a next edit was predicted in."""
    j = next((j for j in range(start, len(steps))
              if steps[j].uri == uri and steps[j].kind in ("change", "close")), None)
    if j is None or steps[j].kind != "change":
        return None
    after = text if isinstance(text, str) else text.text()
    for later in steps[j:]:
        if later.uri != uri:
            continue
        if later.kind == "close":
            break
        if later.kind == "change":
            after = later.apply(after)
            if later.edit_end:
                break
    return after


def build_script(conn: sqlite3.Connection, session_id: str) -> Script:
    """The replay script of one session (see the module docstring)."""
    rows = conn.execute("SELECT * FROM sessions WHERE id = ?", [session_id])
    names = [d[0] for d in rows.description]
    row = rows.fetchone()
    if row is None:
        raise KeyError(session_id)
    session = dict(zip(names, row))
    for key in ("settings", "models"):
        if isinstance(session.get(key), str):
            try:
                session[key] = json.loads(session[key])
            except ValueError:
                session[key] = None
    script = Script(session)
    logged = {s["id"]: s for s in suggestions(conn, session_id)}
    script.reports_shows = frozenset(s.get("kind") or "completion" for s in logged.values() if s.get("shown_at") is not None)
    docs: list[_Doc] = []
    current: dict[str, _Doc] = {}
    orphans = 0
    settings_steps: list[Step] = []
    notebook_steps: list[Step] = []
    unopened_cells = 0
    for item in session_timeline(conn, session_id):
        kind = item["type"]
        uri = item.get("uri")
        if kind == "suggestion_generated":
            details = item.get("details") if isinstance(item.get("details"), dict) else {}
            row = logged.get(item.get("suggestion_id"))
            if row is not None and details.get("range") is not None:
                row["range"] = details["range"]  # a next edit's range: the summary row lacks it
            if row is not None and isinstance(details.get("uri"), str):
                # a next edit in another cell: the document it edits (the row's ``uri`` is the requested one)
                row["edit_uri"] = details["uri"]
            continue
        if kind == "suggestion_cancelled":
            row = logged.get(item.get("suggestion_id"))
            if row is not None and row.get("outcome") == "cancelled":
                # the reason of its last cancel, which the summary row lacks (see replay's ``_dropped_unshown``)
                row["cancel_reason"] = item.get("reason")
            continue
        if kind == "settings_changed":
            settings_steps.append(Step(item["ts"], "settings", settings=item.get("settings") or {}))
        elif kind == "notebook_changed":
            listed = [c for c in item.get("cells") or [] if isinstance(c, str)]
            cells = tuple(c for c in listed if c in current and current[c].close_item is None)
            unopened_cells += len(listed) - len(cells)
            notebook = NotebookCells(item["notebook_uri"], item.get("notebook_type") or "", item.get("version") or 0,
                                     item["kind"], cells)
            notebook_steps.append(Step(item["ts"], "notebook", notebook.notebook_uri, notebook.version,
                                       notebook=notebook))
        elif kind == "document_opened":
            if uri in current and current[uri].close_item is None:
                script.issues.append(f"{uri} opened again without a close")
            doc = _Doc(uri, item)
            current[uri] = doc
            docs.append(doc)
        elif kind in ("document_snapshot", "document_closed", "edit", "suggestion_requested"):
            doc = current.get(uri)
            if doc is None or doc.close_item is not None:
                orphans += 1
                script.requests_left_out += kind == "suggestion_requested"
                continue
            if kind == "document_snapshot":
                doc.snapshots.append(item)
            elif kind == "document_closed":
                doc.close_item = item
            elif kind == "edit":
                doc.edits.append(item)
            else:
                doc.requests.append(item)
    if orphans:
        script.issues.append(f"{orphans} edits or requests on documents with no logged open were left out")
    if unopened_cells:
        script.issues.append(f"{unopened_cells} notebook cells with no logged open were left out of their notebooks")
    for doc in docs:
        _process(doc, script.requests, logged, script.issues)
        _references(doc.steps, doc.opened)
        final = script.final_texts[doc.uri] = doc.after_edits.text()
        last_snap = doc.snapshots[-1] if doc.snapshots else None
        if last_snap is not None and last_snap.get("text") is not None:
            ok = not doc.resynced and last_snap["text"] == final
            script.verified[doc.uri] = script.verified.get(doc.uri, True) and ok  # every open period, not the last
            if not ok:
                script.issues.append(f"{doc.uri}: replayed edits do not reproduce the text logged at close")
    # Notebook steps merge last: at one time, after the cell opens and closes logged before them in the same message.
    script.steps = _merge([*[d.steps for d in docs], settings_steps, notebook_steps])
    _fix_versions(script.steps)
    return script


def _merge(sequences: list[list[Step]]) -> list[Step]:
    """One timeline; each sequence keeps its own order (its times are made non-decreasing)."""
    heap: list[tuple[float, int, int, Step]] = []
    for n, seq in enumerate(sequences):
        t = float("-inf")
        for i, step in enumerate(seq):
            t = max(t, step.ts)
            step.ts = t
            heap.append((t, n, i, step))
    heapq.heapify(heap)
    return [heapq.heappop(heap)[3] for _ in range(len(heap))]


def _fix_versions(steps: list[Step]) -> None:
    """Versions sent to the server must grow; logged ones do, except where edits were lost. A request's logged version
    counts too: the replay brings the server to it first (an empty change, `Replayer._catch_up`), so a later change
    numbered at or below it was dropped as stale, and every later request saw the wrong text (a keystroke typed and
    deleted between two requests, then an edit undone)."""
    last: dict[str, int] = {}
    for step in steps:
        if step.kind == "open":
            last[step.uri] = step.version or 0
        elif step.kind == "request" and step.request is not None and step.uri in last:
            last[step.uri] = max(last[step.uri], step.request.version)
        elif step.kind == "change":
            prev = last.get(step.uri, 0)
            if step.version is None or step.version <= prev:
                step.version = prev + 1
            last[step.uri] = step.version
