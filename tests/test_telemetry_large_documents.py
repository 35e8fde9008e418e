"""The telemetry writer, a twelfth review: a notebook of more cells than the queue holds, held edits on a very large
file, and a session whose recording moved before its start was recorded."""

from __future__ import annotations

import random
import sys
import time
import tracemalloc
from pathlib import Path

import pytest

from lsp_server.services.recorder import HeldStore, SessionRecorder
from telemetry import (
    DocumentOpened,
    EditEvent,
    NotebookChanged,
    SessionEnded,
    SessionStarted,
    SuggestionShown,
    TelemetryStore,
)
from telemetry.lsp_client import LspClient, text_document_item
from telemetry.simulate import server_command, wait_ready
from telemetry.store import MAX_HELD_EDITS, _OpenDocument
from telemetry.text import SplitText, line_starts, offset_at, position_at
from tests.telemetry_fakes import JUPYTER, NOTEBOOK
from tests.test_telemetry_store_held_edits import _one_by_one
from tests.test_telemetry_store import query as _rows

SID = "session-1"
URI = "file:///w/a.py"


def _cell(n: int) -> str:
    return f"vscode-notebook-cell:/w/nb.ipynb#C{n}"


# -- a notebook of more cells than the queue holds -----------------------------------------------------------------

def test_a_notebook_of_more_cells_than_the_queue_holds_opens_whole_and_stream_events_are_still_bounded(
        tmp_path: Path, stalled_writer) -> None:
    """Each cell's opening is a queued event, and the notebook's row comes after them: past the queue's bound the last
    cells and the notebook itself were dropped. Edits and suggestion events are still dropped past it."""
    entered, release = stalled_writer
    db = tmp_path / "t.sqlite3"
    store = TelemetryStore(db, queue_size=10)
    try:
        store.record(SessionStarted(SID, "vscode", "1", "0.1.0", ts=1.0))
        assert entered.wait(5)
        cells = tuple(_cell(n) for n in range(25))
        assert all(store.record(DocumentOpened(SID, cell, 1, "python", f"x{n} = {n}\n", ts=2.0))
                   for n, cell in enumerate(cells))
        assert store.record(NotebookChanged(SID, NOTEBOOK, JUPYTER, 1, "open", cells, ts=2.0))
        assert not store.record(SuggestionShown(SID, "s1", ts=3.0))  # a stream event past the bound: dropped
        assert store.record(SessionEnded(SID, "shutdown", ts=4.0))
        release.set()
        assert store.flush()
        assert store.stats.dropped == 1
    finally:
        release.set()
        store.close()
    assert _rows(db, "SELECT COUNT(*) FROM documents WHERE kind = 'open'") == [(25,)]
    assert _rows(db, "SELECT kind, json_array_length(cells) FROM notebooks") == [("open", 25)]
    assert _rows(db, "SELECT end_reason FROM sessions") == [("shutdown",)]


def test_events_held_for_the_settings_keep_a_large_notebook_whole() -> None:
    held = HeldStore(limit=3)
    recorder = SessionRecorder(held)
    cells = [_cell(n) for n in range(5)]
    for cell in cells:
        recorder.document_opened(cell, 1, "python", "x = 1\n")
    recorder.notebook_changed(NOTEBOOK, JUPYTER, 1, "open", cells)
    recorder.shown("s1")  # past the limit, and no anchor: dropped
    assert [type(e).__name__ for e in held.events] == ["DocumentOpened"] * 5 + ["NotebookChanged"]
    assert recorder.stats["dropped"] == 1


def test_a_server_opening_a_notebook_of_12000_cells_records_every_cell_the_notebook_and_the_session_end(
        tmp_path: Path) -> None:
    """The notebook's cells came in one message: 10,256 of 12,000 openings were written, the notebook's row and the
    session's end (behind the cells' snapshots at shutdown) were lost."""
    db = tmp_path / "t.sqlite3"
    cells = [text_document_item(_cell(n), f"x{n} = {n}\n", 1, "python") for n in range(12_000)]
    with LspClient(server_command(sys.executable, str(tmp_path / "no-model"), None)) as client:
        client.initialize({"acceptanceGate": False, "telemetryDatabase": str(db)})
        client.did_open_notebook(NOTEBOOK, JUPYTER, 1, cells)
        telemetry = client.request("tact/status")["telemetry"]
        client.shutdown()
    assert telemetry["dropped"] == 0, telemetry
    assert _rows(db, "SELECT COUNT(*) FROM documents WHERE kind = 'open'") == [(12_000,)]
    assert _rows(db, "SELECT kind, json_array_length(cells) FROM notebooks") == [("open", 12_000)]
    assert _rows(db, "SELECT end_reason FROM sessions") == [("shutdown",)]


# -- held edits on a very large file --------------------------------------------------------------------------------

PIECES = ["a", "bc", "", "\n", "\r", "\r\n", "x\ry", "\n\n", "é", "😀", "z\r\n  w", "\ud800", "\r\r", "\n\r"]


def _random_change(rng: random.Random, text: str) -> tuple[int, int, int, int, str]:
    """As `test_telemetry_store_held_edits`'s, with wider spans and inserts of many pieces (chunks are crossed)."""
    lines = len(line_starts(text))
    if rng.random() < 0.15:  # positions past the text, before it, past a line's end, an end before the start
        return (rng.randint(-2, lines + 2), rng.randint(-1, 90), rng.randint(-2, lines + 2), rng.randint(0, 90),
                rng.choice(PIECES))
    a = rng.randint(0, len(text))
    b = min(len(text), a + rng.choice([0, 0, 1, 2, 5, 30]))
    inserted = "".join(rng.choice(PIECES) for _ in range(rng.choice([1, 1, 1, 20])))
    return (*position_at(text, a), *position_at(text, b), inserted)


@pytest.mark.parametrize("seed", range(12))
def test_chunked_text_applies_changes_as_offset_at_does_one_by_one(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of a few characters, so that changes cross them, empty them and bring a CR to an LF across them."""
    from telemetry.text import ChunkedText

    rng = random.Random(seed)
    monkeypatch.setattr(ChunkedText, "CHUNK", rng.choice([1, 2, 3, 5, 8]))
    monkeypatch.setattr(ChunkedText, "SPLIT_CHUNKS", rng.choice([1, 2, 16]))
    text = "".join(rng.choice(PIECES + ["def f():", "    return 1"]) for _ in range(rng.randint(0, 60)))
    chunked = ChunkedText(text)
    for _ in range(300):
        line, character = rng.randint(-1, len(line_starts(text)) + 1), rng.randint(-1, 12)
        assert chunked.offset_at(line, character) == offset_at(text, line, character)
        change = _random_change(rng, text)
        text = _one_by_one(text, change)
        chunked.replace(*change)
        assert chunked.text() == text and len(chunked) == len(text), change
        assert chunked.line_total == len(line_starts(text))
        if rng.random() < 0.1:
            chunked.settle()


def test_held_edits_on_a_large_file_of_short_lines_take_about_its_size_not_an_object_per_line(tmp_path: Path) -> None:
    """At MAX_HELD_EDITS edits the writer split the whole text into lines to apply them: a 50 MB file of short lines
    took 0.5 GB more and seconds. Measured in bytes allocated while the edits are written, on a 4 MB file."""
    text = "".join(f"x{n:04d} = {n % 7}\n" for n in range(1000)) * 400  # 400,000 lines of 10 characters
    lines = [50_000 * (k % 8) + k // 8 for k in range(MAX_HELD_EDITS)]  # lines typed in eight places of the file
    edits = [EditEvent(SID, URI, k + 2, line, 0, line, 0, "", "ab\n", ts_start=k, ts=k) for k, line in enumerate(lines)]
    expected = SplitText(text)
    for line in lines:
        expected.replace(line, 0, line, 0, "ab\n")
    with TelemetryStore(tmp_path / "t.sqlite3") as store:
        store.record(DocumentOpened(SID, URI, 1, "python", text, ts=1.0))
        assert store.flush()
        tracemalloc.start()
        try:
            for edit in edits:
                store.record(edit)
            assert store.flush()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 3 * len(text), f"{peak / 1e6:.1f} MB allocated for a {len(text) / 1e6:.1f} MB text"
        assert store._open[(SID, URI)].current() == expected.text()


def test_held_edits_typed_in_one_place_of_a_large_file_read_about_that_place() -> None:
    """Counted in characters read through the line-break pattern: the whole text was split at each batch."""
    from telemetry import text as text_module
    from tests.telemetry_fakes import CountingBreaks

    text = "".join(f"x{n:04d} = {n % 7}\n" for n in range(1000)) * 200  # 2 MB
    edits = [EditEvent(SID, URI, k + 2, 100_000 + k, 0, 100_000 + k, 0, "", "ab\n", ts_start=k, ts=k)
             for k in range(MAX_HELD_EDITS)]  # a line typed below the one before
    counting = CountingBreaks(text_module._BREAK)
    original = text_module._BREAK
    text_module._BREAK = counting
    try:
        doc = _OpenDocument(1, "python", text, 0.0, edits)
        current = doc.current()
    finally:
        text_module._BREAK = original
    starts = line_starts(text)
    at = starts[100_000]
    assert current == text[:at] + "ab\n" * MAX_HELD_EDITS + text[at:]
    assert counting.scanned < len(text) / 10, f"{counting.scanned} characters read for a {len(text)}-character text"


# -- a session whose recording moved before its start was recorded --------------------------------------------------

def test_a_server_moving_its_database_before_the_session_start_leaves_a_complete_session_row(tmp_path: Path) -> None:
    a, b = tmp_path / "a.sqlite3", tmp_path / "b.sqlite3"
    settings = {"acceptanceGate": False, "telemetryRetentionDays": 0}
    with LspClient(server_command(sys.executable, str(tmp_path / "no-model"), None)) as client:
        client.initialize({**settings, "telemetryDatabase": str(a)})
        client.did_open(URI, "x = 1\n", 1, "python")  # before the model has loaded: the start is not recorded yet
        client.notify("workspace/didChangeConfiguration", {"settings": {"tact": {
            **settings, "telemetryDatabase": str(b)}}})
        wait_ready(client)
        client.shutdown()
    deadline = time.time() + 10
    while not _rows(a, "SELECT client_name FROM sessions")[0][0] and time.time() < deadline:
        time.sleep(0.05)  # the store left is closed off the server's thread
    (client_name, server_version, settings_json, models_json, end_reason), = _rows(
        a, "SELECT client_name, server_version, settings, models, end_reason FROM sessions")
    assert client_name == "tact-client" and server_version and settings_json and models_json
    assert end_reason == "telemetry settings changed"
    assert _rows(a, "SELECT COUNT(*) FROM documents WHERE kind = 'open'") == [(1,)]
