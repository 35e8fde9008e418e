"""Next-edit examples from Tact telemetry: the programmer's own edits, in the order they were made.

Release diffs give changes in file order, never the order a person made them in. A telemetry database
logs each document's text at open and every coalesced edit after it, so each document's edit stream can
be replayed and cut into examples: history = the last edits (as line edits), current = the text after
them, target = the edit that came next. A target that only continues the last edit (on its lines or
the line just after them: typing on) is left out, since completion covers it; the rest are the edits
next-edit prediction is for. Each session is its own package, so splits never share one.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from models.next_edit.baseline import common_ends
from models.next_edit.examples import Edit, Example, lines_of

MAX_HISTORY = 8  # as many edits as a real-change example keeps (older ones are folded into `original`)


@dataclass
class TelemetryExamples:
    examples: list[Example] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)  # why edits or databases were left out
    refusals: list[str] = field(default_factory=list)  # databases that could not be read, and why


def line_edit(before: str, after: str) -> Edit | None:
    """The line edit that turns ``before`` into ``after`` (the unchanged lines at both ends left out)."""
    a, b = lines_of(before), lines_of(after)
    head, tail = common_ends(a, b)
    if head == len(a) == len(b):
        return None
    return Edit(head, len(a) - tail, "".join(a[head:len(a) - tail]), "".join(b[head:len(b) - tail]))


def continues(last: Edit, target: Edit) -> bool:
    """Whether ``target`` only goes on where ``last`` left off: on its lines or the line just after."""
    end = last.start_line + max(1, len(lines_of(last.updated)))
    return last.start_line <= target.start_line <= end


def examples_from_stream(path: str, package: str, opened: str, edits: list[Edit], split: str = "train",
                         meta: dict | None = None) -> list[Example]:
    """Examples from one document's line edits (each applying to the text the one before it left)."""
    texts = [opened]
    for e in edits:
        lines = lines_of(texts[-1])
        texts.append("".join(lines[:e.start_line]) + e.updated + "".join(lines[e.end_line:]))
    out = []
    for k in range(1, len(edits)):
        target = edits[k]
        if continues(edits[k - 1], target):
            continue
        first = max(0, k - MAX_HISTORY)
        out.append(Example(path=path, package=package, original=texts[first], history=edits[first:k],
                           current=texts[k], target=target, source="telemetry", split=split,
                           meta={**(meta or {}), "edit_index": k}))
    return out


def from_telemetry(paths: list[str | Path]) -> TelemetryExamples:
    """Examples from every session of every database (an unreadable database is refused, not fatal)."""
    from telemetry.reader import list_sessions, open_readonly, session_timeline
    from telemetry.reconstruct import apply_range
    from telemetry.schema import TelemetrySchemaError

    result = TelemetryExamples()
    for path in paths:
        try:
            conn = open_readonly(Path(path))
        except (TelemetrySchemaError, OSError, sqlite3.DatabaseError) as exc:
            result.refusals.append(f"{path}: {exc}")
            continue
        try:
            for session in list_sessions(conn):
                session_id = session["id"]
                open_docs: dict[str, tuple[str, str, list[Edit]]] = {}  # uri -> (opened text, text now, line edits)

                def flush(uri: str) -> None:
                    opened, _text, edits = open_docs.pop(uri)
                    result.examples += examples_from_stream(uri, session_id, opened, edits,
                                                            meta={"database": Path(path).name})

                for item in session_timeline(conn, session_id):
                    kind, uri = item["type"], item.get("uri")
                    if kind == "document_opened":
                        if uri in open_docs:
                            flush(uri)
                        text = item.get("text") or ""
                        open_docs[uri] = (text, text, [])
                    elif kind == "edit" and uri in open_docs:
                        opened, text, edits = open_docs[uri]
                        after = apply_range(text, item["start_line"], item["start_character"], item["end_line"],
                                            item["end_character"], item["inserted_text"], item["removed_text"])
                        if after is None:
                            result.skipped["edit that does not fit the rebuilt text: rest of document"] += 1
                            open_docs.pop(uri)
                            continue
                        edit = line_edit(text, after)
                        if edit is not None:
                            edits.append(edit)
                        open_docs[uri] = (opened, after, edits)
                    elif kind == "edit":
                        result.skipped["edit on a document with no logged open"] += 1
                    elif kind == "document_closed" and uri in open_docs:
                        flush(uri)
                for uri in list(open_docs):
                    flush(uri)
        finally:
            conn.close()
    return result
