"""The next-edit model's prompt, shared by training and serving (no torch, no `lsp_server`).

The model sees the last few edits as original/updated blocks and a window of the current file
around the cursor, with a cursor marker, and rewrites the window:

    <|edit|> path.py
    <|original|>
    ...lines before the edit...
    <|updated|>
    ...the same lines after it...
    (one block per edit, oldest first)
    <|window|>
    ...window lines, the cursor marker at the end of the cursor line...
    <|rewrite|>
    ...the window as it will be after the next edit...<|endoftext|>

Markers are plain text (the byte-level tokenizer needs no new tokens, so a fine-tune of the
completion model reads them). The predicted edit is the block of window lines the rewrite
changed; an unchanged rewrite is "no edit". Most of a rewrite is copied from the window, which is
why prompt-lookup drafting makes decoding fast.

A second format, ``next_block``, writes only the next edit, as one more original/updated block after
the history (the window comes first):

    <|window|>
    ...window lines, the cursor marker at the end of the cursor line...
    <|edit|> path.py
    <|original|>
    ...                 (the history, oldest first)
    <|edit|> path.py
    <|original|>
    ...window lines the next edit changes...
    <|updated|>
    ...what they become...<|endoftext|>

Nothing to do in this window is an ``<|endoftext|>`` straight after the last ``<|edit|>`` line. The
original block is widened by neighbouring window lines until it occurs once in the window (and an
insertion gets the line above it), so the block says where the edit goes. Every token written is part
of the edit, and the next edit reads as the history's next entry. A model directory names its format
in ``tact.json`` (``prompt_format``; absent means ``rewrite``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from models.next_edit.baseline import common_ends
from models.fim import to_lf
from models.next_edit.examples import (Edit, TextLines, apply_edit, line_ending, lines_of, runs_between, splice,
                                      text_ending)

EDIT_MARK = "<|edit|>"
ORIGINAL_MARK = "<|original|>\n"
UPDATED_MARK = "<|updated|>\n"
WINDOW_MARK = "<|window|>\n"
REWRITE_MARK = "<|rewrite|>\n"
CURSOR_MARK = "<|cursor|>"

LINES_BEFORE = 3  # window: the cursor line, 3 lines above it and 7 below (next edits mostly follow);
LINES_AFTER = 7  # small, because every line of it is written back token by token
MAX_LINE_CHARS = 240  # longer lines are cut in the prompt; a window holding one is not rewritten
MAX_BLOCK_LINES = 8  # of each side of a history edit shown
HISTORY_EDITS = 4
HISTORY_CHARS = 800  # the history budget, cut oldest first


@dataclass(frozen=True)
class Window:
    """Lines [start, end) of the current text, rewritten by the model."""

    start: int
    end: int
    lines: tuple[str, ...]  # with their line endings

    @property
    def text(self) -> str:
        return "".join(self.lines)


def clamped_line(lines: list[str], cursor_line: int) -> int:
    """``cursor_line`` as a line of ``lines``: the cursor on the empty line after a final line break (or past the
    end) stands on the last line, where the window shows its marker."""
    return max(0, min(cursor_line, max(0, len(lines) - 1)))


def window_around(text: str, cursor_line: int, before: int = LINES_BEFORE, after: int = LINES_AFTER,
                  lines: TextLines | None = None) -> Window:
    return _window_at(text, cursor_line, before, after, lines)[0]


ELISION = "...\n"  # stands for the lines of a history edit's side left out of the prompt


def _block(text: str, keep: int = MAX_BLOCK_LINES) -> str:
    """One side of a history edit as the prompt shows it: LF lines, each cut at ``MAX_LINE_CHARS``; a side of more
    than ``keep`` lines shows its first and last lines around an `ELISION` line."""
    lines = lines_of(to_lf(text))
    if len(lines) > keep:
        head, tail = (keep + 1) // 2, keep // 2
        lines = lines[:head] + [ELISION] + (lines[len(lines) - tail:] if tail else [])
    out = "".join(ln[:MAX_LINE_CHARS] + ("\n" if ln.endswith("\n") and len(ln) > MAX_LINE_CHARS else "") for ln in lines)
    return out if not out or out.endswith("\n") else out + "\n"


def _history_block(e: Edit, name: str, budget: int) -> str | None:
    """The original/updated block of edit ``e`` within ``budget`` characters: each side shows fewer lines (its
    first and last ones around an `ELISION` line) until it fits, never cut mid-line; None when one line of each
    side does not fit."""
    for keep in range(MAX_BLOCK_LINES - 1, 0, -1):
        block = f"{EDIT_MARK} {name}\n{ORIGINAL_MARK}{_block(e.original, keep)}{UPDATED_MARK}{_block(e.updated, keep)}"
        if len(block) <= budget:
            return block
    return None


def history_text(history: list[Edit], path: str = "", budget: int = HISTORY_CHARS) -> str:
    """The last edits as original/updated blocks, oldest first, within ``budget`` characters
    (older edits are dropped first; the newest, when over the budget alone, shows fewer lines of each side)."""
    name = path.rsplit("/", 1)[-1]
    blocks: list[str] = []
    used = 0
    for e in reversed(history[-HISTORY_EDITS:]):
        block = f"{EDIT_MARK} {name}\n{ORIGINAL_MARK}{_block(e.original)}{UPDATED_MARK}{_block(e.updated)}"
        if used + len(block) > budget:
            if blocks:
                break
            block = _history_block(e, name, budget)
            if block is None:
                break
        blocks.append(block)
        used += len(block)
    return "".join(reversed(blocks))


def window_text(window: Window, cursor_line: int) -> str:
    """The window's lines as the model reads them: each ending in LF whatever the document's line breaks (no
    training example holds a CR, so the model would rewrite every line to LF)."""
    out = []
    for i, ln in enumerate(window.lines):
        body = ln[:len(ln) - len(line_ending(ln))]
        if window.start + i == cursor_line:
            body += CURSOR_MARK
        out.append(body + "\n")
    return "".join(out)


Span = tuple[int, int]  # [start, end) characters of the window's text in a prompt (drafts copy from there)


def _window_at(current: str, cursor_line: int, before: int = LINES_BEFORE,
               after: int = LINES_AFTER, lines: TextLines | None = None) -> tuple[Window, str]:
    """(the window around the cursor, its text with the cursor marker), the cursor clamped to the text's lines once
    for both (past the last line, the marker ends the last line). ``lines``: ``current``'s lines, read instead of
    splitting it."""
    lines = lines_of(current) if lines is None else lines
    line = clamped_line(lines, cursor_line)
    start, end = max(0, line - before), min(len(lines), line + after + 1)
    window = Window(start, end, tuple(lines[start:end]))
    return window, window_text(window, line)


def build_prompt(history: list[Edit], current: str, cursor_line: int, path: str = "", *,
                 before: int = LINES_BEFORE, after: int = LINES_AFTER,
                 lines: TextLines | None = None) -> tuple[str, Window, Span]:
    """(prompt text, the window it asks to rewrite, where the window's text lies in the prompt). ``before`` and
    ``after``: the window's lines above and below the cursor line (serving narrows a window too long in tokens);
    ``lines``: ``current``'s lines, read instead of splitting it."""
    window, body = _window_at(current, cursor_line, before, after, lines)
    head = history_text(history, path) + WINDOW_MARK
    return head + body + REWRITE_MARK, window, (len(head), len(head) + len(body))


def target_text(window: Window, current: str, target: Edit) -> str | None:
    """The rewrite that teaches ``target`` (the window with the edit applied), or the unchanged window
    when the edit lies outside it; None when the edit straddles the window's edge."""
    n = len(lines_of(current))
    s, e = target.start_line, target.end_line
    insertion = s == e
    before = e < window.start or (e == window.start and not insertion)
    after_ = s > window.end or (s == window.end and not (insertion and window.end == n))
    if before or after_:
        return _with_newline(to_lf(window.text))
    if s < window.start or e > window.end:
        return None
    after = lines_of(apply_edit(current, target))
    delta = len(after) - n
    return _with_newline(to_lf("".join(after[window.start:window.end + delta])))


def _with_newline(text: str) -> str:
    return text if not text or text.endswith("\n") else text + "\n"


def window_lines(window: Window) -> list[str]:
    """The window's lines, each ending in LF (as a rewrite's lines do, whatever the document's line breaks)."""
    return [ln[:len(ln) - len(line_ending(ln))] + "\n" for ln in window.lines]


def _copied_marks_dropped(text: str, own: int, near: int = 0) -> str:
    """``text`` (an answer, or one side of a ``next_block`` answer, LF) without the cursor markers the model copied
    from its prompt, which writes one at the end of the cursor line: of the markers past the ``own`` ones (those
    of the document's lines the text stands for, which stay), the ones ending a line, nearest line ``near`` first.
    A marker the document holds is text like any other."""
    extra = text.count(CURSOR_MARK) - own
    if extra <= 0:
        return text
    lines = lines_of(text)
    ends = [i for i, ln in enumerate(lines) if ln[:len(ln) - len(line_ending(ln))].endswith(CURSOR_MARK)]
    for i in sorted(ends, key=lambda k: (abs(k - near), k))[:extra]:
        eol = line_ending(lines[i])
        lines[i] = lines[i][:len(lines[i]) - len(eol) - len(CURSOR_MARK)] + eol
        extra -= 1
    # markers still past the own ones stand inside a line (`foo(<|cursor|>x)`): the model's too, nearest line first
    for i in sorted(range(len(lines)), key=lambda k: (abs(k - near), k)):
        while extra > 0 and CURSOR_MARK in lines[i]:
            lines[i] = lines[i].replace(CURSOR_MARK, "", 1)
            extra -= 1
    return "".join(lines)


def edit_from_rewrite(window: Window, rewrite: str, current: str, cursor_line: int | None = None,
                      lines: TextLines | None = None) -> Edit | None:
    """The edit a rewrite makes: the changed block of window lines (common leading and trailing lines
    kept). None when the rewrite changes nothing. A cursor marker the model copied (at a line's end, nearest
    ``cursor_line``) is dropped; the window's own stay. ``lines``: ``current``'s lines, read instead of splitting
    it."""
    near = (cursor_line if cursor_line is not None else window.start) - window.start
    rewrite = _copied_marks_dropped(to_lf(rewrite), window.text.count(CURSOR_MARK), near)
    new = lines_of(_with_newline(rewrite))
    return _block_edit(current, window.start, window_lines(window), new, lines)


def _block_edit(current: str, row: int, old: list[str], new: list[str], lines: TextLines | None = None) -> Edit | None:
    """The edit that turns lines ``old`` (those of ``current`` from ``row`` on, each ending in LF) into
    ``new`` (LF too), trimmed to the lines that change, written with the document's line breaks: a line left as
    it was keeps its own, a changed one takes the one of the line it replaces (past those, the last one's; for
    an insertion the line above's), so a document mixing CRLF and LF lines keeps them; None when nothing
    changes. ``lines``: ``current``'s lines, read instead of splitting it."""
    p, s = common_ends(old, new)
    start, end = row + p, row + len(old) - s
    cur_lines = lines_of(current) if lines is None else lines
    replaced = cur_lines[start:end]
    original = "".join(replaced)
    eol = text_ending(cur_lines, end - 1 if end > start else start - 1)
    # a line as the model writes it -> as it is; equal lines may end in different breaks, so each occurrence
    # written takes the next one's (the last one's once they run out)
    kept: dict[str, list[str]] = {}
    for ln in replaced:
        if line_ending(ln):
            kept.setdefault(to_lf(ln), []).append(ln)
    written = []
    for i, ln in enumerate(new[p:len(new) - s]):
        if ln in kept:
            same = kept[ln]
            written.append(same.pop(0) if len(same) > 1 else same[0])
        elif ln.endswith("\n"):
            written.append(ln[:-1] + ((line_ending(replaced[i]) if i < len(replaced) else "") or eol))
        else:
            written.append(ln)
    updated = "".join(written)
    if end == len(cur_lines) and cur_lines and not line_ending(cur_lines[-1]):
        updated = updated[:len(updated) - len(line_ending(updated))]  # the file's last line has no break: keep it so
    if updated == original:
        return None
    return Edit(start, end, original, updated)


def lf_view(history: list[Edit], current: str) -> tuple[list[Edit], str]:
    """(history, current) as in the LF document (edits that only changed line breaks left out): what the ranker
    and the baseline read, which, like the model, learned from LF files only. Lines keep their numbers."""
    has_cr = "\r" in current
    return lf_edits(history, has_cr), to_lf(current) if has_cr else current


def lf_edits(history: list[Edit], current_has_cr: bool) -> list[Edit]:
    """`lf_view`'s history, the current text holding a CR or not (``current_has_cr``): the history itself when
    neither it nor the text holds one."""
    if not current_has_cr and not any("\r" in e.original or "\r" in e.updated for e in history):
        return history
    lf = [Edit(e.start_line, e.end_line, to_lf(e.original), to_lf(e.updated)) for e in history]
    return [e for e in lf if e.original != e.updated]


def lf_lines(lines: TextLines) -> TextLines:
    """The lines of the LF view of ``lines``' text (`lf_view`): ``lines`` themselves when the text holds no CR,
    else an `LFLines` reading them (the text is not converted whole)."""
    return LFLines(lines) if lines.text_has_cr else lines


class LFLines:
    """The LF view's lines (`lf_view`) of a document holding CRs, read through the document's lines (`TextLines`),
    each with its line break written as LF when it is read: the ranker and the baseline read these instead of the
    whole text converted and split. Each line break is one in both texts, so lines keep their numbers. ``text``,
    `start` and `line_at` are the document's, where a text holding no line break (what the baseline searches for)
    lies as in the LF view; so these lines are searched and read, never spliced (`splice` and `undoes_last_edit`
    take the document's own lines)."""

    def __init__(self, lines: TextLines) -> None:
        self.lines = lines
        self.text = lines.text
        self.text_has_cr = lines.text_has_cr
        self._joined: str | None = None

    def __len__(self) -> int:
        return len(self.lines)

    def __getitem__(self, key):
        if isinstance(key, slice):
            return [to_lf(line) for line in self.lines[key]]
        return to_lf(self.lines[key])

    def start(self, line: int) -> int:
        return self.lines.start(line)

    def line_at(self, offset: int) -> int:
        return self.lines.line_at(offset)

    def joined(self) -> str:
        if self._joined is None:
            self._joined = to_lf(self.lines.joined())
        return self._joined


def in_document(current: str, edit: Edit | None, lines: TextLines | None = None) -> Edit | None:
    """An edit of the LF view of ``current`` (`lf_view`) as the edit of ``current`` it stands for, written with
    the document's own line breaks (`_block_edit`); None for none, or for one that changes nothing there.
    ``lines``: ``current``'s lines, read instead of splitting it (and asked whether it holds a CR)."""
    if edit is None or not (lines.text_has_cr if lines is not None else "\r" in current):
        return edit
    return _block_edit(current, edit.start_line, lines_of(_with_newline(edit.original)),
                       lines_of(_with_newline(edit.updated)), lines)


def rewrite_edit_chars(window: Window, rewrite: str) -> tuple[int, int]:
    """[lo, hi) characters of a rewrite on the lines it changes (training weighs their tokens)."""
    new = lines_of(rewrite)
    lead, trail = common_ends(window_lines(window), new)
    return sum(map(len, new[:lead])), sum(map(len, new[:len(new) - trail]))


def text_before(current: str, last: Edit) -> str:
    """``current`` with ``last`` (its most recent edit) undone."""
    lines = lines_of(current)
    n_updated = len(lines_of(last.updated))
    return "".join(lines[:last.start_line]) + last.original + "".join(lines[last.start_line + n_updated:])


def without_undone(history: list[Edit]) -> list[Edit]:
    """``history`` without the edits taken back (an edit, then one that restores the same lines as they were: an
    undo, or the change typed back by hand), both of the pair: what the programmer meant to keep. An undone rename
    was otherwise carried on as a pattern (`width` to `w` undone, the ranker offered `w` on the next use, 0.887)."""
    return _undone_split(history)[0]


def taken_back(history: list[Edit]) -> list[Edit]:
    """The edits of ``history`` taken back (the first of each pair `without_undone` leaves out) and not made again
    since: a "no" to their change. An accepted next edit undone with Ctrl+Z left the edit it repeated in the history,
    and the same change was offered at once at the next use."""
    return _undone_split(history)[1]


def _undone_split(history: list[Edit]) -> tuple[list[Edit], list[Edit]]:
    kept: list[Edit] = []
    back: list[Edit] = []
    for edit in history:
        before = kept[-1] if kept else None
        if (before is not None and edit.start_line == before.start_line and edit.original == before.updated
                and edit.updated == before.original):
            back.append(kept.pop())
        else:
            kept.append(edit)
            if edit in back:  # made again: redone
                back.remove(edit)
    return kept, back


def undoes_last_edit(history: list[Edit], current: str, edit: Edit, lines: TextLines | None = None) -> bool:
    """Whether ``edit`` (applied to ``current``) takes the text back to before the last history edit. ``lines``:
    ``current``'s lines; with them the two texts are compared where they can differ, between the first and the
    last character either edit replaces, instead of being built whole."""
    if not history:
        return False
    last = history[-1]
    if edit.original == last.updated and edit.updated == last.original and \
            (last.start_line < 0 or edit.start_line == last.start_line):  # the same swap elsewhere is none
        return True
    if lines is None or last.start_line < 0:
        try:
            return apply_edit(current, edit) == text_before(current, last)
        except ValueError:
            return False
    try:
        start, end, new = splice(current, edit, lines)
    except ValueError:
        return False
    n = len(lines)  # `text_before`: the lines before the last edit's, its original, the lines after its updated block
    undo_start = lines.start(min(last.start_line, n))
    undo_end = lines.start(min(last.start_line + len(lines_of(last.updated)), n))
    return _same_splices(current, (start, end, new), (undo_start, undo_end, last.original))


def _same_splices(text: str, one: tuple[int, int, str], other: tuple[int, int, str]) -> bool:
    """Whether ``text`` with ``text[a:b]`` replaced by ``new`` (``one``: (a, b, new)) equals ``text`` with
    ``text[c:d]`` replaced by ``alt`` (``other``: (c, d, alt)). Both are ``text`` outside the span from the first
    character either replaces to the last, so only that span is compared, in pieces of doubling size: texts that
    differ are told apart near where they first differ, without copying the text between two edits far apart."""
    (a, b, new), (c, d, alt) = one, other
    if len(new) - (b - a) != len(alt) - (d - c):
        return False
    lo, hi = min(a, c), max(b, d)
    x = ((text, lo, a), (new, 0, len(new)), (text, b, hi))
    y = ((text, lo, c), (alt, 0, len(alt)), (text, d, hi))
    size = hi - lo + len(new) - (b - a)
    at, step = 0, 256
    while at < size:
        stop = min(size, at + step)
        if _cut(x, at, stop) != _cut(y, at, stop):
            return False
        at, step = stop, step * 2
    return True


def _cut(parts: tuple[tuple[str, int, int], ...], i: int, j: int) -> str:
    """Characters ``i`` to ``j`` of the text the ``parts`` ((string, start, end): a slice each) make end to end."""
    return "".join(s[a:b] for s, a, b in runs_between(parts, i, j))


def build_next_block_prompt(history: list[Edit], current: str, cursor_line: int, path: str = "", *,
                            before: int = LINES_BEFORE, after: int = LINES_AFTER,
                            lines: TextLines | None = None) -> tuple[str, Window, Span]:
    """(prompt text, its window, where the window's text lies in it) of the ``next_block`` format: the window,
    the history, then the header of the next edit's block (``before``, ``after``, ``lines``: as `build_prompt`'s)."""
    window, body = _window_at(current, cursor_line, before, after, lines)
    name = path.rsplit("/", 1)[-1]
    text = WINDOW_MARK + body + history_text(history, path) + f"{EDIT_MARK} {name}\n"
    return text, window, (len(WINDOW_MARK), len(WINDOW_MARK) + len(body))


def _occurrences(lines: list[str], block: list[str]) -> list[int]:
    n = len(block)
    return [i for i in range(len(lines) - n + 1) if lines[i:i + n] == block] if n else []


def next_block_target(window: Window, current: str, target: Edit) -> str | None:
    """The ``next_block`` output that teaches ``target``: "" (nothing to do here) when it lies outside the
    window, None when it straddles the window's edge or cannot be placed unambiguously."""
    rewrite = target_text(window, current, target)
    if rewrite is None:
        return None
    old, new = window_lines(window), lines_of(rewrite)
    if old == new:
        return ""
    lead, trail = common_ends(old, new)
    lo, hi = lead, len(old) - trail  # old[lo:hi] becomes new[lo:len(new) - trail]
    while hi == lo or len(_occurrences(old, old[lo:hi])) > 1:
        if lo > 0:
            lo -= 1
        elif hi < len(old):
            hi += 1
        else:
            return None
    updated = new[lo:len(new) - (len(old) - hi)]
    return f"{ORIGINAL_MARK}{''.join(old[lo:hi])}{UPDATED_MARK}{''.join(updated)}"


def edit_from_next_block(window: Window, output: str, current: str, cursor_line: int | None = None,
                         lines: TextLines | None = None) -> Edit | None:
    """The edit a ``next_block`` output names: its original block found among the window's lines (the
    occurrence nearest the cursor), trimmed to the lines that change. None for an empty output, one that
    is not an original/updated block, names lines the window does not hold, or changes nothing."""
    output = to_lf(output)
    if not output.startswith(ORIGINAL_MARK) or UPDATED_MARK not in output:
        return None
    original, updated = output[len(ORIGINAL_MARK):].split(UPDATED_MARK, 1)
    shown = window_lines(window)
    at = _occurrences(shown, lines_of(original))
    if not at:  # the original block as the prompt showed it, with the cursor marker copied: without the marker
        original = _copied_marks_dropped(original, 0)
        at = _occurrences(shown, lines_of(original))
        if not at:
            return None
    updated = _copied_marks_dropped(updated, original.count(CURSOR_MARK))  # the document's own markers stay
    old_block, new_block = lines_of(original), lines_of(_with_newline(updated))
    near = (cursor_line if cursor_line is not None else window.start) - window.start
    i = min(at, key=lambda k: abs(k - near))
    return _block_edit(current, window.start + i, old_block, new_block, lines)


def next_block_edit_chars(_window: Window, output: str) -> tuple[int, int]:
    """[lo, hi) characters of a ``next_block`` output in its updated block (training weighs their tokens)."""
    return (output.find(UPDATED_MARK) + len(UPDATED_MARK) if output else 0), len(output)


@dataclass(frozen=True)
class PromptFormat:
    """How a next-edit model is asked and answered: ``prompt(history, current, line, path) -> (text,
    window, the window's character span in text)``, ``target(window, current, edit) -> output text | None`` and
    ``edit_chars(window, output) ->
    (lo, hi)``, the characters of the output that make the edit (training), ``edit(window, output, current,
    cursor_line) -> Edit | None`` (serving). ``prompt`` and ``edit`` take ``lines=``: ``current``'s lines, which
    serving reads from the document's line index instead of splitting a large file at every request."""

    name: str
    prompt: Callable[..., tuple[str, Window, Span]]
    target: Callable[[Window, str, Edit], str | None]
    edit_chars: Callable[[Window, str], tuple[int, int]]
    edit: Callable[..., Edit | None]


PROMPT_FORMATS = {
    "rewrite": PromptFormat("rewrite", build_prompt, target_text, rewrite_edit_chars, edit_from_rewrite),
    "next_block": PromptFormat("next_block", build_next_block_prompt, next_block_target, next_block_edit_chars,
                               edit_from_next_block),
}
