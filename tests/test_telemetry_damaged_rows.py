"""A damaged telemetry database: SQLite keeps whatever a row was given, so a file damaged by hand or by a tool can hold
text where a position belongs, a number where a JSON object does. Every reader refuses such a row by name (the
replay script, next-edit examples) or leaves it out and says so (the report); none fails on it with a TypeError."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest

from models.acceptance.dataset import from_telemetry as acceptance_samples
from models.next_edit.telemetry_examples import from_telemetry as next_edit_examples
from telemetry import report
from telemetry.reader import DamagedRowError, checked, list_sessions, open_readonly
from telemetry.reconstruct import build_script
from tests.telemetry_fakes import write_synthetic_db


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> tuple[Path, str]:
    db = tmp_path_factory.mktemp("damaged") / "t.sqlite3"
    return db, write_synthetic_db(db, seed=5, requests=60)


def damaged_copy(source: Path, to: Path, *updates: tuple[str, str, object]) -> Path:
    """A copy of ``source`` with each (table, column, value) written into the table's first row."""
    src, dst = sqlite3.connect(source), sqlite3.connect(to)
    src.backup(dst)
    src.close()
    for table, column, value in updates:
        dst.execute(f'UPDATE "{table}" SET "{column}" = ? WHERE rowid = (SELECT min(rowid) FROM "{table}")', [value])
    dst.commit()
    dst.close()
    return to


def script_of(db: Path, sid: str):
    conn = open_readonly(db)
    try:
        return build_script(conn, sid)
    finally:
        conn.close()


@pytest.mark.parametrize("table,column,value,said", [
    ("edits", "start_line", "x", "a row's start_line column holds text, not an integer"),
    ("edits", "inserted_text", b"\x01", "a row's inserted_text column holds a blob, not text"),  # (5 is stored '5')
    ("suggestion_events", "payload", "5", "a row's payload column holds an integer, not a JSON object"),
    ("documents", "ts", b"\x00", "a row's ts column holds a blob, not a finite number"),
])
def test_the_replay_script_refuses_a_damaged_row_by_its_column(source, tmp_path, table, column, value, said):
    db, sid = source
    damaged = damaged_copy(db, tmp_path / "d.sqlite3", (table, column, value))
    with pytest.raises(DamagedRowError, match=said):
        script_of(damaged, sid)
    assert script_of(db, sid).requests  # the undamaged file reads


@pytest.mark.parametrize("table,column,value", [("edits", "start_line", "x"), ("documents", "ts", b"\x00")])
def test_next_edit_examples_leave_out_a_session_with_a_damaged_edit_or_document(source, tmp_path, table, column, value):
    db, _ = source
    assert next_edit_examples([db]).skipped["session with a damaged row"] == 0
    damaged = damaged_copy(db, tmp_path / "d.sqlite3", (table, column, value))
    assert next_edit_examples([damaged]).skipped["session with a damaged row"] == 1


def test_the_report_leaves_damaged_rows_out_and_says_so(source, tmp_path):
    db, _ = source
    whole = report.load(db, "a")
    copy = damaged_copy(db, tmp_path / "d.sqlite3", ("suggestions", "latency_ms", "slow"))
    with sqlite3.connect(copy) as conn:  # a stage-2 score (the first decision row is a stage-1 one)
        conn.execute("UPDATE decisions SET score = 'high' WHERE rowid = (SELECT min(rowid) FROM decisions"
                     " WHERE stage = 2)")
    damaged = report.load(copy, "a")
    assert len(damaged.rows) == len(whole.rows) - 1
    said = " ".join(damaged.partial)
    assert "suggestion rows damaged, left out: 1" in said and "latency_ms column holds text" in said, said
    assert "stage-2 gate decision rows damaged, left out: 1" in said and "score column holds text" in said, said
    (tmp_path / "plots").mkdir()
    assert report.write_plots([damaged], tmp_path / "plots")


def test_a_session_row_with_a_damaged_start_is_left_out_of_the_report(source, tmp_path):
    db, _ = source
    damaged = report.load(damaged_copy(db, tmp_path / "d.sqlite3", ("sessions", "started_at", "Infinity")), "a")
    assert damaged.sessions == [] and "session rows damaged, left out: 1" in " ".join(damaged.partial)


def test_checked_reads_each_kind_of_column_and_null_as_unknown():
    assert checked("context", '{"a": 1}') == {"a": 1} and checked("cells", '["c"]') == ["c"]
    assert checked("context", "null") is None and checked("line", None) is None
    assert checked("ts", 3) == 3 and checked("latency_ms", 2.5) == 2.5 and checked("uri", "file:///a.py")
    assert checked("anything_else", b"\x01") == b"\x01"  # a column no reader interprets: as it is
    for column, value in (("cells", '{"a": 1}'), ("line", 1.0), ("line", True), ("ts", "1.0"), ("uri", 5),
                          ("settings", "{")):
        with pytest.raises(DamagedRowError, match=column):
            checked(column, value)


JUNK = [None, "", "x", -1, 10**18, 1.5, float("nan"), "{", "[]", '{"a": 1}', '"s"', "null", b"\xff\x00", "Infinity",
        '{"features": [1, "a"]}']


@pytest.mark.parametrize("seed", range(8))
def test_random_damage_is_refused_clearly_or_left_out_by_every_reader(source, tmp_path, seed):
    """Random values written over random cells of random rows: each reader either reads the file (the report leaving
    damaged rows out) or refuses it with DamagedRowError (a sqlite3.DatabaseError); no other exception."""
    db, _ = source
    rng = random.Random(seed)
    damaged = tmp_path / "d.sqlite3"
    src, dst = sqlite3.connect(db), sqlite3.connect(damaged)
    src.backup(dst)
    src.close()
    tables = [t for (t,) in dst.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name != 'meta'")]
    rows = {t: [r for (r,) in dst.execute(f'SELECT rowid FROM "{t}"')] for t in tables if t != "sqlite_sequence"}
    want, applied = rng.randint(2, 8), 0
    for _ in range(100):  # until that many cells took their damage (SQLite refuses some: NULL into NOT NULL, CHECK)
        table = rng.choice([t for t in rows if rows[t]])
        column = rng.choice([c[1] for c in dst.execute(f'PRAGMA table_info("{table}")')])
        try:
            applied += dst.execute(f'UPDATE "{table}" SET "{column}" = ? WHERE rowid = ?',
                                   [rng.choice(JUNK), rng.choice(rows[table])]).rowcount  # 0: a rowid damaged before
        except sqlite3.IntegrityError:
            continue
        if applied == want:
            break
    assert applied == want  # the readers below meet that much damage
    dst.commit()
    dst.close()

    data = report.load(damaged, "a")
    (tmp_path / "plots").mkdir()
    report.write_plots([data], tmp_path / "plots")
    conn = open_readonly(damaged)
    try:
        for session in list_sessions(conn):
            try:
                build_script(conn, session["id"])
            except DamagedRowError:
                pass
    except DamagedRowError:
        pass  # the sessions table itself is damaged
    finally:
        conn.close()
    next_edit_examples([damaged])
    acceptance_samples([damaged])


def test_plots_that_fail_to_save_leave_no_figure_open(source, tmp_path):
    """A folder that cannot be written failed the first plot and left its figure open in the process (a report
    built again and again, as a long-lived caller does, piled them up)."""
    import matplotlib.pyplot as plt

    db, _ = source
    data = report.load(db, "a")
    with pytest.raises(OSError):
        report.write_plots([data], tmp_path / "missing" / "plots")
    assert plt.get_fignums() == []


def test_json_nested_past_pythons_limit_is_a_damaged_row_not_a_crash():
    """A payload nested 200,000 deep ended `tact report` with a RecursionError traceback."""
    with pytest.raises(DamagedRowError, match="payload column holds JSON nested too deep"):
        checked("payload", "[" * 200_000 + "]" * 200_000)
