"""tact report and the readers under it, an eighth look: damaged rows the report took or choked on."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from telemetry.reader import DamagedRowError, open_readonly, session_timeline
from telemetry.report import report
from telemetry_fakes import write_synthetic_db

REQUESTS = 40


def _db(tmp_path: Path, name: str = "t.sqlite3", **kw) -> tuple[Path, str]:
    path = tmp_path / name
    return path, write_synthetic_db(path, seed=3, requests=REQUESTS, **kw)


def _sql(path: Path, *statements: str) -> None:
    with sqlite3.connect(path) as conn:
        for statement in statements:
            conn.execute(statement)


def _summary(path: Path, out: Path, **kw) -> dict:
    return report(path, out, **kw)["summaries"][0]


def _strict(figures: dict) -> dict:
    """The figures as JSON.parse reads them: NaN and Infinity are no JSON."""
    def refuse(name):
        raise ValueError(name)
    return json.loads(json.dumps(figures), parse_constant=refuse)


@pytest.mark.parametrize("statement", [
    "UPDATE suggestions SET requested_at = 9e999 WHERE rowid = 1",
    "UPDATE suggestions SET requested_at = -9e999 WHERE rowid = 1",
    "UPDATE sessions SET started_at = -9e999",
])
def test_an_infinite_time_is_damage_counted_not_a_crash(tmp_path, statement):
    """SQLite keeps an infinity (9e999 in SQL): a time of infinity passed the reader's number check and the plot
    raised converting it to an integer, so the report (and VS Code's Open Latest Report) gave nothing at all."""
    path, _ = _db(tmp_path)
    _sql(path, statement)
    s = _strict(_summary(path, tmp_path / "out"))
    assert (tmp_path / "out" / "index.html").is_file()
    assert s["partial"] and any("not a finite number" in reason for reason in s["partial_reasons"])
    if "sessions" in statement:  # the session itself is damaged: left out, and said
        assert s["sessions"] == 0
    else:
        assert s["requests"] == REQUESTS - 1


@pytest.mark.parametrize("statement", [
    "UPDATE suggestions SET latency_ms = -1.7e308 WHERE rowid = 1",
    "UPDATE suggestions SET latency_ms = 1.7e308 WHERE rowid = 1",
    "UPDATE suggestions SET requested_at = -1.7e308 WHERE rowid = 1",
    "UPDATE sessions SET started_at = 1.7e308",
])
def test_numbers_near_the_float_limit_draw_or_are_damage(tmp_path, statement):
    """A latency of -1.7e308 put the latency plot's range past the float limit: matplotlib failed (a singular
    matrix) and there was no report. A latency below zero is damage, counted; the other finite extremes draw."""
    path, _ = _db(tmp_path)
    _sql(path, statement)
    s = _strict(_summary(path, tmp_path / "out"))
    assert (tmp_path / "out" / "index.html").is_file() and (tmp_path / "out" / "latency.png").is_file()
    negative = "latency_ms = -" in statement
    assert negative == any("not a finite number of at least 0" in r for r in s["partial_reasons"])


def test_damaged_replay_tables_are_counted_and_the_json_stays_json(tmp_path):
    """The replay tables were read without the checks: text in chars_saved or source_ts raised a TypeError, an
    infinite chars_saved came out as `Infinity` under --json."""
    path, sid = _db(tmp_path)
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE replay_runs (session_id TEXT, source_session_id TEXT, complete INTEGER,"
                     " source_complete INTEGER, replayed INTEGER, requests INTEGER, source_started_at REAL)")
        conn.execute("CREATE TABLE replay_suggestions (suggestion_id TEXT, source_ts REAL, chars_saved INTEGER,"
                     " would_accept INTEGER)")
        conn.execute("INSERT INTO replay_runs VALUES (?, 'rec', 1, 1, 5, 5, 'noon')", [sid])
        ids = [r[0] for r in conn.execute("SELECT id FROM suggestions ORDER BY requested_at LIMIT 3")]
        conn.executemany("INSERT INTO replay_suggestions VALUES (?, ?, ?, 1)",
                         [(ids[0], "noon", 3), (ids[1], 1_700_000_000.0, "many"), (ids[2], 1_700_000_001.0, 9e999)])
    s = _strict(_summary(path, tmp_path / "out"))
    reasons = " | ".join(s["partial_reasons"])
    assert "replay run rows damaged, left out: 1" in reasons
    assert "replayed suggestion rows damaged, left out: 3" in reasons
    assert isinstance(s["chars_saved"], int)


def test_a_session_whose_id_is_no_text_is_left_out_and_counted(tmp_path):
    """sessions.id is a TEXT key, which SQLite lets hold NULL or a blob: the report raised slicing or escaping it."""
    path, _ = _db(tmp_path)
    write_synthetic_db(path, seed=4, requests=10, session_id="second")
    _sql(path, "UPDATE sessions SET id = NULL WHERE id = 'second'")
    s = _summary(path, tmp_path / "out")
    assert s["sessions"] == 1 and s["requests"] == REQUESTS
    assert any("session rows damaged, left out: 1" in r for r in s["partial_reasons"])
    assert any("session row is missing, left out: 10" in r for r in s["partial_reasons"])


def test_the_share_of_calls_saved_counts_the_skips_of_the_requests_reported(tmp_path):
    """Every stage-1 skip was divided by the requests kept: with damaged rows left out it went past 100%."""
    path, _ = _db(tmp_path)
    with sqlite3.connect(path) as conn:
        skipped = {r[0] for r in conn.execute("SELECT suggestion_id FROM decisions WHERE stage = 1 AND decision = 'skip'")}
        assert len(skipped) >= 3
        conn.execute("UPDATE suggestions SET requested_at = 'x' WHERE id NOT IN (%s)" % ",".join("?" * 3),
                     sorted(skipped)[:3])
    s = _summary(path, tmp_path / "out")
    assert s["requests"] == 3 and s["stage1_skipped"] == 3 and s["calls_saved_rate"] == 1.0


def test_rows_no_figure_can_take_are_said(tmp_path):
    """A suggestion of a damaged kind, and suggestions whose session row is gone, were dropped unsaid."""
    path, sid = _db(tmp_path)
    _sql(path, "UPDATE suggestions SET kind = 'completoin' WHERE rowid IN (1, 2)",
         "UPDATE suggestions SET session_id = 'gone' WHERE rowid IN (3, 4, 5)")
    s = _summary(path, tmp_path / "out")
    assert s["requests"] == REQUESTS - 5
    reasons = " | ".join(s["partial_reasons"])
    assert "of a kind neither completion nor next_edit, left out: 2" in reasons
    assert "session row is missing, left out: 3" in reasons


def test_a_damaged_column_only_one_figure_reads_costs_no_rows(tmp_path):
    """A session's settings (read by no figure) damaged dropped all its suggestions; a damaged context (read only
    for the notebook figure) dropped its suggestion from every figure."""
    path, _ = _db(tmp_path)
    _sql(path, "UPDATE sessions SET settings = '[\"x\"]', models = '{bad'",
         "UPDATE suggestions SET context = '[1]' WHERE rowid IN (1, 2)")
    s = _summary(path, tmp_path / "out")
    assert s["sessions"] == 1 and s["requests"] == REQUESTS
    assert any("whose context is damaged, read as unknown: 2" in r for r in s["partial_reasons"])


def test_a_timeline_row_that_is_damaged_raises_the_readers_error(tmp_path):
    """A null payload and an unknown document kind raised TypeError and KeyError, not the error readers catch."""
    path, sid = _db(tmp_path)
    _sql(path, "UPDATE suggestion_events SET payload = 'null' WHERE rowid = 1")
    with open_readonly(path) as conn, pytest.raises(DamagedRowError, match="payload"):
        session_timeline(conn, sid)
    other, sid2 = _db(tmp_path, "u.sqlite3")
    with sqlite3.connect(other) as conn:  # the kind's CHECK would refuse it: a file damaged past its constraints
        conn.execute("PRAGMA ignore_check_constraints = ON")
        conn.execute("UPDATE documents SET kind = 'shut'")
    with open_readonly(other) as conn, pytest.raises(DamagedRowError, match="shut"):
        session_timeline(conn, sid2)


def _tact(*args: str, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    return subprocess.run([*prefix, sys.executable, "-m", "lsp_server.cli", *args], capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize("flag,value", [("--oracle-similarity", "2"), ("--oracle-similarity", "nan"),
                                        ("--oracle-min-chars", "0"), ("--speed", "nan")])
def test_replay_refuses_an_oracle_or_pace_out_of_range_in_one_line(tmp_path, flag, value):
    path, _ = _db(tmp_path)
    r = _tact("replay", str(path), flag, value, "-o", str(tmp_path / "r.sqlite3"))
    assert r.returncode == 2 and "Traceback" not in r.stderr and flag in r.stderr
    assert not (tmp_path / "r.sqlite3").exists()


def test_report_refuses_an_output_that_is_a_file_and_an_empty_session_before_reading(tmp_path):
    path, _ = _db(tmp_path)
    taken = tmp_path / "taken"
    taken.write_text("mine")
    r = _tact("report", str(path), "-o", str(taken))
    assert r.returncode == 2 and "is a file, not a directory" in r.stderr and taken.read_text() == "mine"
    r = _tact("report", str(path), "-o", str(tmp_path / "out"), "--session", "")
    assert r.returncode == 2 and "name a session" in r.stderr and not (tmp_path / "out").exists()
    r = _tact("report", str(tmp_path), "-o", str(tmp_path / "out"))
    assert r.returncode == 2 and "is a directory, not a telemetry database" in r.stderr


def test_a_database_in_a_directory_this_user_cannot_write_is_reported(tmp_path):
    """A read-only connection to a WAL database creates its -shm beside it: in a directory the user cannot write (an
    archive, another user's) the report failed with "attempt to write a readonly database"."""
    folder = tmp_path / "archive"
    folder.mkdir()
    path, _ = _db(folder)
    for suffix in ("-wal", "-shm"):  # closed cleanly: no log, no shared memory left
        assert not Path(str(path) + suffix).exists()
    prefix: tuple[str, ...] = ()
    if os.geteuid() == 0:  # root writes anywhere: drop the capabilities that let it
        setpriv = shutil.which("setpriv")
        assert setpriv, "setpriv (util-linux) is needed to test as root without its override capabilities"
        prefix = (setpriv, "--bounding-set=-dac_override,-dac_read_search,-fowner", "--inh-caps=-all")
    folder.chmod(0o555)
    try:
        r = _tact("report", str(path), "-o", str(tmp_path / "out"), "--json", prefix=prefix)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["summaries"][0]["requests"] == REQUESTS
        assert sorted(p.name for p in folder.iterdir()) == ["t.sqlite3"]
    finally:
        folder.chmod(0o755)
