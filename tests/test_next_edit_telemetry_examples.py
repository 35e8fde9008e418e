"""Examples from telemetry apply each logged edit's line edit once: the stream's texts were rebuilt a second time,
edit by edit, after the stream had already built and checked them."""

from __future__ import annotations

from models.next_edit import telemetry_examples
from models.next_edit.examples import Edit
from models.next_edit.telemetry_examples import examples_from_stream, from_telemetry, line_edit
from tests.test_next_edit_ranker import SHAPES, _log_shapes_session

URI = "file:///shapes.py"


def _session_edits() -> tuple[list[tuple], list[str]]:
    """Logged edits of SHAPES ((start line, char, end line, char, removed, inserted)) and the texts they leave,
    the text at open first: renames in any order, lines inserted and removed, typing on."""
    steps = [(0, "width", "w"), (2, "width", "w"), (1, "width", "w"), (0, "", "import math\n"), (3, "height", "h"),
             (1, "height", "h"), (2, "    check(w)\n", ""), (1, "area", "surface"), (1, "(w", "(w_"), (2, "h", "h_")]
    texts, logged = [SHAPES], []
    for line, old, new in steps:
        text = texts[-1]
        lines = text.splitlines(keepends=True)
        col = lines[line].index(old) if old else 0
        start = sum(map(len, lines[:line])) + col
        end_line, end_col = (line + 1, 0) if old.endswith("\n") else (line, col + len(old))
        logged.append((line, col, end_line, end_col, old, new))
        texts.append(text[:start] + new + text[start + len(old):])
    return logged, texts


def test_each_edit_is_applied_once_and_the_examples_are_the_ones_rebuilt_edit_by_edit(tmp_path, monkeypatch):
    logged, texts = _session_edits()
    db = tmp_path / "t.sqlite3"
    _log_shapes_session(db, logged)
    line_edits = [line_edit(a, b) for a, b in zip(texts, texts[1:])]
    # the former way: the stream's texts rebuilt from the text at open, one edit after another
    expected = [ex.to_json() for ex in examples_from_stream(URI, "s1", SHAPES, line_edits,
                                                            meta={"database": db.name})]
    assert len(expected) >= 4  # renames out of order, insertions and deletions gave targets

    applied = []
    counted = telemetry_examples.apply_edit

    def counting_apply_edit(text, edit):
        applied.append(edit)
        return counted(text, edit)

    monkeypatch.setattr(telemetry_examples, "apply_edit", counting_apply_edit)
    found = from_telemetry([db])
    assert [ex.to_json() for ex in found.examples] == expected
    assert sorted(map(repr, applied)) == sorted(map(repr, line_edits))  # each line edit applied once, no more


def test_a_stream_given_its_texts_gives_the_examples_it_gives_without_them():
    _logged, texts = _session_edits()
    line_edits = [line_edit(a, b) for a, b in zip(texts, texts[1:])]
    without = examples_from_stream(URI, "s1", SHAPES, line_edits)
    assert [ex.to_json() for ex in examples_from_stream(URI, "s1", SHAPES, line_edits, texts=texts)] == \
        [ex.to_json() for ex in without]
    assert [ex.current for ex in without] == [texts[ex.meta["edit_index"]] for ex in without]


# A rename typed in two steps: `width` selected and deleted, `size` typed in its place after a pause longer than the
# grouping window, then the other uses renamed (the last one first, so that each is a target of its own).
_RENAME_IN_TWO_STEPS = [(0, 9, 0, 14, "width", ""), (0, 9, 0, 9, "", "size"),
                        (2, 11, 2, 16, "width", "size"), (1, 10, 1, 15, "width", "size")]


def _log_edits(db, edits: list[tuple], pauses: list[float]) -> list:
    """Session s1 opens SHAPES and makes ``edits`` with ``pauses`` (seconds) before each; the `EditRecord`s the
    server kept for them."""
    from lsp_server.services.documents import EditRecord
    from lsp_server.services.positions import Position
    from telemetry import DocumentOpened, EditEvent, SessionStarted, TelemetryStore

    records, ts = [], 100.0
    with TelemetryStore(db) as store:
        store.record(SessionStarted("s1", "c", "1", "0.1.0", {}, {}, ts=ts))
        store.record(DocumentOpened("s1", URI, 1, "python", SHAPES, ts=ts))
        for k, ((sl, sc, el, ec, removed, inserted), pause) in enumerate(zip(edits, pauses), 2):
            ts += pause
            store.record(EditEvent("s1", URI, k, sl, sc, el, ec, removed, inserted, ts, 1, ts=ts + 0.2))
            records.append(EditRecord(URI, k, Position(sl, sc), Position(el, ec), removed, inserted, ts, ts + 0.2, 1))
            ts += 0.2
    return records


def test_a_name_deleted_and_retyped_after_a_pause_is_one_history_edit_as_serving_reads_it(tmp_path):
    """Serving reads a name deleted and the text typed in its place soon after as one replacement; the examples
    built from telemetry kept them apart, so a model trained on them learned a history serving never shows."""
    from lsp_server.services.next_edit import line_history, retyped_as_one
    from models.next_edit.examples import apply_all

    records = _log_edits(tmp_path / "t.sqlite3", _RENAME_IN_TWO_STEPS, [1.0, 3.0, 1.0, 1.0])
    found = from_telemetry([tmp_path / "t.sqlite3"]).examples
    renamed = Edit(0, 1, "def area(width, height):\n", "def area(size, height):\n")
    assert [ex.history[0] for ex in found] == [renamed, renamed]
    assert [len(ex.history) for ex in found] == [1, 2]
    assert [ex.target.updated for ex in found] == ["    return size * height\n", "    check(size)\n"]
    last = found[-1]
    assert apply_all(last.original, last.history) == last.current
    # the history serving builds from the same records, at the last target's request
    assert line_history(last.current, retyped_as_one(records[:3])) == last.history


def test_edits_that_only_look_like_a_retype_stay_apart(tmp_path):
    """A pause past the limit, text typed elsewhere, or a line deleted and another typed in its place: two edits."""
    deleted = Edit(0, 1, "def area(width, height):\n", "def area(, height):\n")
    cases = {"after 12 s": (_RENAME_IN_TWO_STEPS, [1.0, 12.0, 1.0, 1.0], deleted),
             "typed elsewhere": ([(0, 9, 0, 14, "width", ""), (0, 10, 0, 10, "", "size")] + _RENAME_IN_TWO_STEPS[2:],
                                 [1.0, 1.0, 1.0, 1.0], deleted),
             "a line": ([(1, 0, 2, 0, "    check(width)\n", ""), (1, 0, 1, 0, "", "    log(width)\n"),
                         (0, 9, 0, 14, "width", "size")], [1.0, 1.0, 1.0], Edit(1, 2, "    check(width)\n", ""))}
    for name, (edits, pauses, first) in cases.items():
        db = tmp_path / f"{name}.sqlite3"
        _log_edits(db, edits, pauses)
        found = from_telemetry([db]).examples
        assert found and all(ex.history[0] == first and len(ex.history) >= 2 for ex in found), (name, found)
