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
from models.next_edit.examples import Edit, Example, apply_edit, lines_of, retyped_in_place
from models.next_edit.real_changes import MAX_HISTORY  # as many edits as a release-change example keeps


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


CONTINUED = "edit that only continues the one before it: typing on, which completion covers"


def examples_from_stream(path: str, package: str, opened: str, edits: list[Edit], split: str = "train",
                         meta: dict | None = None, texts: list[str] | None = None,
                         skipped: Counter | None = None) -> list[Example]:
    """Examples from one document's line edits (each applying to the text the one before it left). ``texts``: the
    text before each edit and after the last (``opened`` first) where the caller already built them, so the edits
    are not applied a second time; else they are rebuilt here. ``skipped``: where the targets left out (``CONTINUED``)
    are counted."""
    if texts is None:
        texts = [opened]
        for e in edits:
            texts.append(apply_edit(texts[-1], e))
    elif len(texts) != len(edits) + 1 or texts[0] != opened:
        raise ValueError("texts must be the text at open and the text after each edit")
    out = []
    for k in range(1, len(edits)):
        target = edits[k]
        if continues(edits[k - 1], target):
            if skipped is not None:
                skipped[CONTINUED] += 1
            continue
        first = max(0, k - MAX_HISTORY)
        out.append(Example(path=path, package=package, original=texts[first], history=edits[first:k],
                           current=texts[k], target=target, source="telemetry", split=split,
                           meta={**(meta or {}), "edit_index": k}))
    return out


def _document_streams(conn, session_id: str, skipped: Counter):
    """(uri, line edits, texts) for each open period of each document of a session, its logged edits applied in
    order; ``texts`` holds the text at open and the text after each line edit (each checked against the line edit as
    it is made, so nobody applies the edits again). An edit that does not fit the rebuilt text ends its document's
    stream there: the edits before it still give examples, the rest of that open period none."""
    from telemetry.reader import session_timeline
    from telemetry.reconstruct import apply_range

    open_docs: dict[str, tuple[list[Edit], list[str]]] = {}  # uri -> (line edits, texts: at open, after each edit)
    lost: set[str] = set()  # documents whose text is unknown until they are opened again
    last_edit: dict[str, dict] = {}  # uri -> the logged edit whose line edit ends that document's edits so far
    for item in session_timeline(conn, session_id):
        kind, uri = item["type"], item.get("uri")
        if kind in ("document_opened", "document_closed", "edit"):
            prev = last_edit.pop(uri, None)  # what a retype may join: the document's edit just before it
        if kind in ("document_opened", "document_closed") and uri in open_docs:
            edits, texts = open_docs.pop(uri)
            yield uri, edits, texts
        if kind in ("document_opened", "document_closed"):
            lost.discard(uri)
        if kind == "document_opened":
            open_docs[uri] = ([], [item.get("text") or ""])
        elif kind == "edit" and uri in lost:
            skipped["edit after one that did not fit the rebuilt text"] += 1
        elif kind == "edit" and uri not in open_docs:
            skipped["edit on a document with no logged open"] += 1
        elif kind == "edit":
            edits, texts = open_docs[uri]
            text = texts[-1]
            after = apply_range(text, item["start_line"], item["start_character"], item["end_line"],
                                item["end_character"], item["inserted_text"], item["removed_text"])
            if after is None:
                skipped["edit that does not fit the rebuilt text: its document's stream ends there"] += 1
                del open_docs[uri]
                lost.add(uri)
                yield uri, edits, texts
                continue
            edit = line_edit(text, after)
            if edit is not None and apply_edit(text, edit) != after:  # a form feed or U+2028 breaks the lines
                skipped["edit whose lines Python and LSP count differently: its document's stream ends there"] += 1
                del open_docs[uri]
                lost.add(uri)
                yield uri, edits, texts
                continue
            if prev is not None and _retyped(prev, item):
                edits.pop()  # the name's deletion and the text typed in its place: one replacement, as served
                texts.pop()
                edit = line_edit(texts[-1], after)
                if edit is not None:
                    edits.append(edit)
                    texts.append(after)
                continue
            if edit is not None:
                edits.append(edit)
                texts.append(after)
                last_edit[uri] = item
    for uri, (edits, texts) in open_docs.items():
        yield uri, edits, texts


def _retyped(deleted: dict, typed: dict) -> bool:
    """Whether two logged edits, one after the other, are a name deleted and text typed in its place
    (`retyped_in_place`: serving reads them as one replacement)."""
    same_place = (typed["start_line"], typed["start_character"]) == (deleted["start_line"], deleted["start_character"])
    pause = (typed["ts_start"] if typed.get("ts_start") is not None else typed["ts"]) - deleted["ts"]
    return (same_place and not deleted["inserted_text"] and not typed["removed_text"]
            and retyped_in_place(deleted["removed_text"], typed["inserted_text"], pause))


def from_telemetry(paths: list[str | Path]) -> TelemetryExamples:
    """Examples from every session of every database (an unreadable database is refused, not fatal)."""
    from telemetry.reader import list_sessions, open_upgraded
    from telemetry.schema import TelemetrySchemaError

    result = TelemetryExamples()
    for path in paths:
        try:
            conn, _ = open_upgraded(Path(path))  # an older schema from an upgraded copy
        except (TelemetrySchemaError, OSError, sqlite3.DatabaseError) as exc:
            result.refusals.append(f"{path}: {exc}")
            continue
        try:
            try:
                sessions = list_sessions(conn)
            except sqlite3.DatabaseError as exc:  # its sessions table is damaged
                result.refusals.append(f"{path}: {exc}")
                continue
            for session in sessions:
                found, skipped = [], Counter()  # counted only for a session that is kept
                try:
                    for uri, edits, texts in _document_streams(conn, session["id"], skipped):
                        found += examples_from_stream(uri, session["id"], texts[0], edits,
                                                      meta={"database": Path(path).name}, texts=texts,
                                                      skipped=skipped)
                except sqlite3.DatabaseError:  # a damaged row: the session is left out, the others kept
                    result.skipped["session with a damaged row"] += 1
                    continue
                result.examples += found
                result.skipped.update(skipped)
        finally:
            conn.close()
    return result
