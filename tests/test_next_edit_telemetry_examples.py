"""Examples from telemetry apply each logged edit's line edit once: the stream's texts were rebuilt a second time,
edit by edit, after the stream had already built and checked them."""

from __future__ import annotations

from models.next_edit import telemetry_examples
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
