"""The next-edit example format and its JSON-lines files.

Edits are line based: ``Edit(start_line, end_line, original, updated)`` replaces the lines
``[start_line, end_line)`` (0-based, end exclusive) of the text it applies to, whose joined text
(with newlines) is ``original``, by ``updated``. An insertion has ``start_line == end_line`` and an
empty ``original``; a deletion has an empty ``updated``.

Each history edit applies to the text left by the previous one (the first to ``original``);
``current`` is the text after the whole history and ``target`` applies to ``current``.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Protocol


@dataclass(frozen=True)
class Edit:
    start_line: int
    end_line: int
    original: str
    updated: str

    def to_json(self) -> list:
        return [self.start_line, self.end_line, self.original, self.updated]

    @classmethod
    def from_json(cls, v) -> "Edit":
        if isinstance(v, dict):  # "1" as a line number failed deep in scoring
            return cls(_line_number(v["start_line"]), _line_number(v["end_line"]), v["original"], v["updated"])
        return cls(_line_number(v[0]), _line_number(v[1]), v[2], v[3])


def _line_number(v) -> int:
    """A logged line number: a whole number, or one written as text; TypeError for anything else (1.5 was line 1)."""
    if isinstance(v, bool) or not isinstance(v, (int, str)):
        raise TypeError(f"a line number, not {type(v).__name__}")
    return int(v)


@dataclass
class Example:
    path: str
    package: str
    original: str
    history: list[Edit]
    current: str
    target: Edit
    source: str = "real"  # "real", "pair" or "synthetic:<kind>"
    split: str = "train"
    meta: dict = field(default_factory=dict)

    @property
    def cursor_line(self) -> int:
        """Where the editor's cursor is: the last line the last history edit wrote."""
        if not self.history:
            return 0
        last = self.history[-1]
        return max(last.start_line, last.start_line + len(lines_of(last.updated)) - 1)

    def to_json(self) -> dict:
        d = asdict(self)
        d["history"] = [e.to_json() for e in self.history]
        d["target"] = self.target.to_json()
        return d

    @classmethod
    def from_json(cls, d: dict) -> "Example":
        return cls(path=d["path"], package=d["package"], original=d["original"],
                   history=[Edit.from_json(e) for e in d["history"]], current=d["current"],
                   target=Edit.from_json(d["target"]), source=d.get("source", "real"),
                   split=d.get("split", "train"), meta=d.get("meta", {}))


RETYPED_WITHIN_S = 10.0  # `retyped_in_place`: the longest pause between a name deleted and the text typed in its place
_NAME = re.compile(r"\w+")


def retyped_in_place(deleted: str, typed: str, pause_s: float) -> bool:
    """Whether an edit that deleted ``deleted`` (and inserted nothing) and the next one, which typed ``typed`` at the
    same place (removing nothing) after ``pause_s`` seconds, are one replacement for next-edit prediction: a name
    selected and deleted, then its new name typed after a pause longer than the grouping window, is a rename, though
    it arrives as two edits (the older, generalised alone, would delete the name at its other uses). A line deleted
    and another typed in its place stay two edits. Serving and the examples built from telemetry both ask this."""
    return (bool(_NAME.fullmatch(deleted)) and bool(typed) and "\n" not in typed and "\r" not in typed
            and pause_s <= RETYPED_WITHIN_S)


def lines_of(text: str) -> list[str]:
    return text.splitlines(keepends=True)


LINE_ENDINGS = ("\r\n", "\n", "\r")  # CRLF first: a line ending in CRLF also ends in LF


def line_ending(line: str) -> str:
    """The line break ``line`` ends with (CRLF, LF or CR), "" for none."""
    return next((e for e in LINE_ENDINGS if line.endswith(e)), "")


def text_ending(lines: list[str] | TextLines, near: int = 0) -> str:
    """The line break to write at line ``near``: that line's own, else the first line's (the document's), else LF."""
    own = line_ending(lines[near]) if 0 <= near < len(lines) else ""
    return own or (line_ending(lines[0]) if lines else "") or "\n"


class TextLines(Protocol):
    """A text's lines exactly as `lines_of` splits it, read on demand: given one, `splice`, `undoes_last_edit` and
    the baseline read it instead of splitting the whole text (the server reads the lines from its line index, so a
    request on a large file reads the lines near its edits, not every line).

    ``text`` is the text the lines are read from: their own text, or for an LF view (`prompt.LFLines`) the
    document, whose lines with their breaks written as LF are these. `start` and `line_at` are offsets in it; a
    text holding no line break lies at the same places in both, on the same lines, so the baseline searches it."""

    text: str
    text_has_cr: bool  # whether ``text`` holds a CR (a CRLF or CR line break)

    def __len__(self) -> int: ...

    def __getitem__(self, key):
        """A line (an int, negative ones from the end) or a list of lines (a slice, as a list's)."""

    def start(self, line: int) -> int:
        """Where ``line`` (0 to ``len(self)``, the latter: the text's end) starts in ``text``."""

    def line_at(self, offset: int) -> int:
        """The line holding ``text[offset]``."""

    def joined(self) -> str:
        """The lines end to end: ``text``, but for an LF view, whose LF text is then built whole."""


def splice(text: str, edit: Edit, lines: TextLines | None = None) -> tuple[int, int, str]:
    """(start, end, new): ``apply_edit`` replaces ``text[start:end]`` by ``new``. The one place that decides the
    line breaks an edit writes (the server's trimmed range is cut from it, so the editor gets the same text):
    an updated block that does not end in a line break gets the replaced line's (the line above an insertion's,
    else the document's) when a line follows it, and an insertion after an unterminated last line starts with
    one, so neither is glued to its neighbour. Raises ValueError when the edit's original does not match.
    ``lines``: ``text``'s lines, read instead of splitting it (the edit's lines and its neighbours only)."""
    table = lines_of(text) if lines is None else lines
    if not (0 <= edit.start_line <= edit.end_line <= len(table)):
        raise ValueError(f"edit range {edit.start_line}:{edit.end_line} outside {len(table)} lines")
    if "".join(table[edit.start_line:edit.end_line]) != edit.original:
        raise ValueError("edit original does not match the text")
    start = sum(map(len, table[:edit.start_line])) if lines is None else lines.start(edit.start_line)
    return start, start + len(edit.original), written(table, edit)


def runs_between(runs, lo: int, hi: int) -> Iterator[tuple]:
    """The non-empty parts ((sequence, start, end) each) of items ``lo`` to ``hi`` of the sequence the ``runs``
    ((sequence, start, end): a slice each) make end to end."""
    for seq, a, b in runs:
        size = b - a
        if lo < size and hi > 0:
            start, end = a + max(lo, 0), a + min(hi, size)
            if start < end:
                yield seq, start, end
        lo, hi = lo - size, hi - size


def written(lines: list[str] | TextLines, edit: Edit) -> str:
    """What ``edit`` writes in place of its original among ``lines``: its updated block with the line breaks
    `splice` adds (the range unchecked)."""
    updated = edit.updated
    if updated and not updated.endswith(LINE_ENDINGS) and edit.end_line < len(lines):
        updated += text_ending(lines, edit.end_line - 1 if edit.end_line > edit.start_line else edit.start_line - 1)
    if updated and edit.start_line == len(lines) and lines and not line_ending(lines[-1]):
        updated = text_ending(lines, len(lines) - 2) + updated
    return updated


def apply_edit(text: str, edit: Edit) -> str:
    """``text`` with ``edit`` applied (line breaks added as `splice` says). Raises ValueError when the edit's
    original does not match."""
    start, end, new = splice(text, edit)
    return text[:start] + new + text[end:]


def make_edit(text: str, start_line: int, end_line: int, updated: str) -> Edit:
    """An edit of ``text`` replacing lines [start_line, end_line) by ``updated``."""
    return Edit(start_line, end_line, "".join(lines_of(text)[start_line:end_line]), updated)


def apply_all(text: str, edits: Iterable[Edit]) -> str:
    for e in edits:
        text = apply_edit(text, e)
    return text


def write_jsonl(path: Path, examples: Iterable[Example]) -> int:
    """Write ``examples`` as JSON lines to ``path`` through a temporary file: Ctrl-C midway left the earlier, whole
    file cut short at the lines written so far, and the ranker and the evaluation read it as whole."""
    from models.model_dir import write_atomically

    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0

    def write(tmp: Path) -> None:
        nonlocal n
        with open(tmp, "w", encoding="utf-8") as f:
            for ex in examples:
                f.write(json.dumps(ex.to_json()) + "\n")
                n += 1

    write_atomically(path, write)
    return n


def read_jsonl(path: Path, limit: int | None = None) -> Iterator[Example]:
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f):
            if limit is not None and i >= limit:
                return
            if line.strip():
                yield Example.from_json(json.loads(line))
