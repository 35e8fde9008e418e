"""`tact eval next-edit` and the next-edit data on odd input: one clear error, never a traceback or a table of
nothing."""

from __future__ import annotations

import json

from lsp_server.cli import main
from models.next_edit.examples import apply_all, apply_edit
from models.next_edit.real_changes import examples_from_texts
from tests.test_next_edit_eval import _write

RENAMES = "".join(f"def f{i}(size):\n    return size * {i}\n\n\n" for i in range(6))


def test_a_pair_of_one_directory_is_a_usage_error(tmp_path, capsys):
    """It compared the directory with itself and printed a table of zeros over 0 examples, exit 0."""
    d = _write(tmp_path / "proj", {"pkg/m.py": RENAMES})
    assert main(["eval", "next-edit", "--pair", str(d), str(tmp_path / "proj" / "." / "pkg" / ".."),
                 "--no-model", "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "same directory" in captured.err and "Traceback" not in captured.err


def test_a_pair_without_a_changed_file_in_both_is_an_error_not_a_table_of_zeros(tmp_path, capsys):
    """Files only renamed (or nothing changed): no example at all, which was reported as 0.000 everywhere, exit 0."""
    b = _write(tmp_path / "before", {"pkg/old_name.py": RENAMES, "pkg/same.py": "x = 1\n"})
    a = _write(tmp_path / "after", {"pkg/new_name.py": RENAMES.replace("size", "n"), "pkg/same.py": "x = 1\n"})
    assert main(["eval", "next-edit", "--pair", str(b), str(a), "--no-model", "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "no examples" in captured.err and ".py file" in captured.err


def test_an_empty_heldout_file_is_an_error_not_a_table_of_zeros(tmp_path, capsys):
    (tmp_path / "real_heldout.jsonl").write_text("")
    assert main(["eval", "next-edit", "--data", str(tmp_path), "--no-model", "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "no examples" in captured.err


FORM_FEED_OLD = "a = 1\x0c\nb = 1\nc = 1\nd = 1\n"
FORM_FEED_NEW = "a = 2\x0c\nb = 1\nc = 2\nd = 1\n"


def test_a_changed_file_holding_a_form_feed_gives_no_examples_instead_of_stopping_the_run(tmp_path, capsys):
    """Python's splitlines breaks lines at a form feed (and U+2028, ...) where an edit's line break does not: the
    hunks did not apply one after another, and the ValueError ended the whole run as `error: edit original does not
    match the text`, exit 2."""
    assert list(examples_from_texts("m.py", "p", FORM_FEED_OLD, FORM_FEED_NEW)) == []
    b = _write(tmp_path / "before", {"pkg/m.py": RENAMES, "pkg/ff.py": FORM_FEED_OLD})
    a = _write(tmp_path / "after", {"pkg/m.py": RENAMES.replace("size", "n"), "pkg/ff.py": FORM_FEED_NEW})
    assert main(["eval", "next-edit", "--pair", str(b), str(a), "--no-model", "--json", "--bottom-up"]) == 0
    sets = json.loads(capsys.readouterr().out)["sets"]
    assert sets["pair"]["baseline"]["examples"] == sets["pair_bottom_up"]["baseline"]["examples"] == 5


def test_examples_from_texts_replay_to_the_new_text():
    for ex in examples_from_texts("m.py", "p", RENAMES, RENAMES.replace("size", "n")):
        assert apply_all(ex.original, ex.history) == ex.current
        assert apply_edit(ex.current, ex.target)


def test_a_row_with_a_line_number_too_big_for_an_int_is_skipped_not_a_traceback(tmp_path, capsys):
    """JSON reads 1e400 as inf, and int(inf) raised OverflowError, which nothing caught."""
    good = list(examples_from_texts("m.py", "d", "a = x\nb = x\nc = x\n", "a = y\nb = x\nc = y\n", split="heldout"))
    row = good[0].to_json()
    line = json.dumps(row)
    bad = line.replace(json.dumps(row["target"]), '[1e400, 2, "b = x\\n", "b = y\\n"]')
    assert bad != line
    (tmp_path / "real_heldout.jsonl").write_text(line + "\n" + bad + "\n")
    assert main(["eval", "next-edit", "--data", str(tmp_path), "--no-model", "--json"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert out["sets"]["real_heldout"]["baseline"]["examples"] == 1
    assert out["files"]["real_heldout"]["skipped"] == {"malformed fields": 1}


def test_a_telemetry_document_holding_a_form_feed_is_no_traceback(tmp_path):
    """Its line edits were cut at the form feed and wrote a line break there: the next edit did not apply and
    from_telemetry raised ValueError (a traceback from `tact train next-edit-data --telemetry`)."""
    from telemetry import DocumentClosed, DocumentOpened, EditEvent, SessionStarted, TelemetryStore

    from models.next_edit.telemetry_examples import from_telemetry

    db = tmp_path / "t.sqlite3"
    plain = "w = 1\nx = 1\ny = 1\nz = 1\n"
    edits = [(0, 4, 0, 5, "1", "2"), (3, 4, 3, 5, "1", "2"), (1, 4, 1, 5, "1", "2")]
    with TelemetryStore(db) as store:
        store.record(SessionStarted("s1", "c", "1", "0.1.0", {}, {}, ts=100))
        for k, (uri, text) in enumerate((("file:///ff.py", FORM_FEED_OLD), ("file:///plain.py", plain))):
            t0 = 100 + 10 * k
            store.record(DocumentOpened("s1", uri, 1, "python", text, ts=t0))
            for n, (sl, sc, el, ec, removed, inserted) in enumerate(edits, 1):
                store.record(EditEvent("s1", uri, n + 1, sl, sc, el, ec, removed, inserted, t0 + n, 1,
                                       ts=t0 + n + 0.5))
            store.record(DocumentClosed("s1", uri, ts=t0 + 5))
    found = from_telemetry([db])
    assert {ex.path for ex in found.examples} == {"file:///plain.py"}
    assert len(found.examples) == 2 and found.skipped
    for ex in found.examples:
        assert apply_all(ex.original, ex.history) == ex.current
