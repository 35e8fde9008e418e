"""The telemetry store, a second review: held edits of open documents, and what a database made again holds."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest

from telemetry import DocumentOpened, EditEvent, SessionEnded, SessionStarted, TelemetryStore, session_timeline
from telemetry import text as text_module
from tests.telemetry_fakes import CountingBreaks
from telemetry.store import MAX_HELD_EDITS, _OpenDocument
from telemetry.text import SplitText, line_starts, offset_at, position_at

SID = "session-1"
URI = "file:///project/main.py"
PIECES = ["a", "bc", "", "\n", "\r", "\r\n", "x\ry", "\n\n", "é", "😀", "z\r\n  w", "\ud800"]


def _one_by_one(text: str, change: tuple[int, int, int, int, str]) -> str:
    """A change applied as ``offset_at`` places it on the whole text (what the store did per edit)."""
    sl, sc, el, ec, inserted = change
    starts = line_starts(text)
    a, b = offset_at(text, sl, sc, starts), offset_at(text, el, ec, starts)
    return text[:a] + inserted + text[max(a, b):]


def _random_change(rng: random.Random, text: str) -> tuple[int, int, int, int, str]:
    lines = len(line_starts(text))
    if rng.random() < 0.15:  # positions past the text, before it, past a line's end, an end before the start
        return (rng.randint(-2, lines + 2), rng.randint(0, 90), rng.randint(-2, lines + 2), rng.randint(0, 90),
                rng.choice(PIECES))
    a = rng.randint(0, len(text))
    b = min(len(text), a + rng.choice([0, 0, 1, 2, 5]))
    return (*position_at(text, a), *position_at(text, b), rng.choice(PIECES))


@pytest.mark.parametrize("seed", range(6))
def test_split_text_applies_changes_as_offset_at_does_one_by_one(seed: int) -> None:
    """Mixed and lone breaks (a CR that comes to meet an LF, a CRLF split by an insert), astral characters, lone
    surrogates, clamped positions: a run of changes on the split text gives the text change by change gives."""
    rng = random.Random(seed)
    text = "".join(rng.choice(PIECES + ["def f():", "    return 1", "x = 2"]) for _ in range(60))
    split = SplitText(text)
    for _ in range(400):
        change = _random_change(rng, text)
        text = _one_by_one(text, change)
        split.replace(*change)
        assert split.text() == text, change


def test_a_cr_and_an_lf_brought_together_are_one_line_break_for_the_changes_after() -> None:
    split = SplitText("a\rb\nc")
    split.replace(1, 0, 1, 1, "")  # removes the b: "a\r\nc", where line 1 is c
    split.replace(1, 0, 1, 0, "X")
    assert split.text() == "a\r\nXc"
    split.replace(0, 1, 0, 1, "Y")  # the CRLF is split again by nothing: the line's end is before the CR
    assert split.text() == "aY\r\nXc"


def test_applying_held_edits_reads_the_text_about_once_not_once_per_edit(monkeypatch: pytest.MonkeyPatch) -> None:
    """The store applied each held edit after finding the line starts of the whole text again: 1,000 edits of a
    100 kB document cost the writer about a second. Counted in characters scanned, not in time."""
    rng = random.Random(1)
    text = "".join(f"    value_{i} = compute(value_{i - 1})\r\n" for i in range(600))
    expected = text
    edits = []
    for k in range(MAX_HELD_EDITS):
        sl, sc, el, ec, inserted = _random_change(rng, expected)
        edits.append(EditEvent(SID, URI, k + 2, sl, sc, el, ec, "", inserted, ts_start=k, ts=k))
        expected = _one_by_one(expected, (sl, sc, el, ec, inserted))
    counting = CountingBreaks(text_module._BREAK)
    monkeypatch.setattr(text_module, "_BREAK", counting)
    doc = _OpenDocument(1, "python", text, 0.0, edits)
    assert doc.current() == expected
    assert counting.scanned < 3 * len(text), f"{counting.scanned} characters scanned for a {len(text)}-character text"


def test_a_database_made_again_after_more_than_a_batch_of_held_edits_opens_the_document_as_it_is(
        tmp_path: Path) -> None:
    db_path = tmp_path / "telemetry.sqlite3"
    rng = random.Random(2)
    text = "first line\r\nsecond line\rthird\n"
    with TelemetryStore(db_path) as store:
        store.record(SessionStarted(SID, "vscode", "1.90", "0.1.0", {}, {}, ts=1.0))
        store.record(DocumentOpened(SID, URI, 1, "python", text, ts=1.5))
        for k in range(MAX_HELD_EDITS + 300):
            a = rng.randint(0, len(text))
            b = min(len(text), a + rng.choice([0, 1]))
            sl, sc = position_at(text, a)
            el, ec = position_at(text, b)
            inserted = rng.choice(["a", "\n", "\r", "😀", ""])
            store.record(EditEvent(SID, URI, k + 2, sl, sc, el, ec, "", inserted, ts_start=2.0 + k, ts=2.0 + k))
            text = _one_by_one(text, (sl, sc, el, ec, inserted))
        assert store.flush()
        db_path.unlink()
        store.record(EditEvent(SID, URI, MAX_HELD_EDITS + 400, 0, 0, 0, 0, "", "#", ts_start=9e3, ts=9e3))
        assert store.flush()
        assert store.stats.reopened == 1
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT kind, version, text FROM documents").fetchall() == [
            ("open", MAX_HELD_EDITS + 301, text)]


def test_an_edit_finished_after_the_database_was_made_again_comes_after_the_document_s_open(tmp_path: Path) -> None:
    """An edit is logged once finished, stamped with its last keystroke: a request made after that keystroke was
    already written. The document's open in a database made again was stamped with the latest event's time (the
    request's), so the edit sorted before its document was open, and replay left it out: the text lost it."""
    from telemetry import SuggestionRequested, open_readonly
    from telemetry.reconstruct import build_script

    db_path = tmp_path / "telemetry.sqlite3"
    with TelemetryStore(db_path) as store:
        store.record(SessionStarted(SID, "vscode", "1.90", "0.1.0", {}, {}, ts=1.0))
        store.record(DocumentOpened(SID, URI, 1, "python", "x = 1\n", ts=1.5))
        pending = {"start_line": 0, "start_character": 5, "end_line": 0, "end_character": 5, "removed_text": "",
                   "inserted_text": "0", "ts_start": 1.8, "ts": 1.9, "keystrokes": 1, "version": 2}
        store.record(SuggestionRequested(SID, "s1", "completion", URI, 2, 0, 6, pending_edit=pending, ts=2.0))
        assert store.flush()
        db_path.unlink()
        store.record(EditEvent(SID, URI, 2, 0, 5, 0, 5, "", "0", ts_start=1.8, ts=1.9))  # finished by a pause
        store.record(EditEvent(SID, URI, 3, 1, 0, 1, 0, "", "y\n", ts_start=3.0, ts=3.1))
        assert store.flush()
        assert store.stats.reopened == 1
    conn = open_readonly(db_path)
    try:
        assert [e["type"] for e in session_timeline(conn, SID)] == ["document_opened", "edit", "edit"]
        script = build_script(conn, SID)
    finally:
        conn.close()
    assert not script.issues
    assert script.final_texts[URI] == "x = 10\ny\n"


def test_a_whole_accept_with_no_length_after_a_partial_accept_counts_all_of_the_text(tmp_path: Path) -> None:
    """The server sends no length with a whole accept of an id its ledger no longer holds. After a partial accept the
    partial length stayed beside `accepted`, and the report counted only that much of the suggestion as saved."""
    from telemetry import SuggestionAccepted, SuggestionGenerated, SuggestionRequested, SuggestionShown
    from telemetry.report import load

    db_path = tmp_path / "telemetry.sqlite3"
    with TelemetryStore(db_path) as store:
        store.record(SessionStarted(SID, "vscode", "1.90", "0.1.0", {}, {}, ts=1.0))
        for sid, ts in (("whole", 2.0), ("unknown", 3.0)):
            store.record(SuggestionRequested(SID, sid, "completion", URI, 1, 0, 0, ts=ts))
            if sid == "whole":
                store.record(SuggestionGenerated(SID, sid, "hello 😀 world", "m", "full", 5.0, 3, ts=ts + 0.1))
            store.record(SuggestionShown(SID, sid, ts=ts + 0.2))
            store.record(SuggestionAccepted(SID, sid, 5, True, ts=ts + 0.3))
            store.record(SuggestionAccepted(SID, sid, None, False, ts=ts + 0.4))
        store.record(SessionEnded(SID, "shutdown", ts=9.0))
    with sqlite3.connect(db_path) as conn:
        rows = dict(conn.execute("SELECT id, accepted_length FROM suggestions WHERE outcome = 'accepted'"))
    assert rows == {"whole": 14, "unknown": 5}  # with no text to measure, the largest length reported stays
    assert load(db_path, "db").summary()["chars_saved"] == len("hello 😀 world") + 5
