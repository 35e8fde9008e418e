"""`tact report`: an HTML page referencing every plot, comparisons, partial reports, old and bad input."""

from __future__ import annotations

import json
import sqlite3

import pytest

from lsp_server.cli import main
from telemetry.report import PLOTS, report, tradeoff_curve
from telemetry_fakes import write_synthetic_db


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synthetic")
    a, b, crashed = folder / "a.sqlite3", folder / "b.sqlite3", folder / "crashed.sqlite3"
    write_synthetic_db(a, seed=1, requests=200)
    write_synthetic_db(b, seed=2, requests=200, policy="full", threshold=0.5, skip_rate=0.3)
    write_synthetic_db(crashed, seed=3, requests=60, crashed=True)
    return {"a": a, "b": b, "crashed": crashed}


def _check_page(out, partial: bool) -> str:
    page = (out / "index.html").read_text(encoding="utf-8")
    for name, _, _ in PLOTS:
        png = out / name
        assert png.is_file() and png.stat().st_size > 2000, name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"src='{name}'" in page
    assert ("id='partial'" in page) is partial
    return page


def test_report_writes_every_plot_and_references_it(synthetic, tmp_path, capsys):
    out = tmp_path / "single"
    assert main(["report", str(synthetic["a"]), "-o", str(out)]) == 0
    assert "report:" in capsys.readouterr().out
    _check_page(out, partial=False)


def test_report_against_puts_both_side_by_side(synthetic, tmp_path, capsys):
    out = tmp_path / "both"
    assert main(["report", str(synthetic["a"]), "--against", str(synthetic["b"]), "-o", str(out), "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    a, b = figures["summaries"]
    assert (a["label"], b["label"]) == ("a", "b")
    assert a["requests"] == b["requests"] == 200
    assert a["stage1_skipped"] > 0 and b["calls_saved_rate"] > a["calls_saved_rate"]
    assert 0 < a["acceptance_rate"] < 1 and a["chars_saved"] > 0
    assert b["layers_per_token"] == 4.0 and a["layers_per_token"] < 4.0
    page = _check_page(out, partial=False)
    assert "<th>a<br>" in page and "<th>b<br>" in page


def test_crashed_session_gives_a_partial_report(synthetic, tmp_path, capsys):
    out = tmp_path / "crashed"
    assert main(["report", str(synthetic["crashed"]), "-o", str(out)]) == 0
    assert "PARTIAL" in capsys.readouterr().out
    page = _check_page(out, partial=True)
    assert "has no end" in page
    result = report(synthetic["crashed"], tmp_path / "again")
    assert result["partial"] and result["summaries"][0]["partial_reasons"]


def test_older_schema_is_read_from_an_upgraded_copy(tmp_path, capsys):
    old = tmp_path / "old.sqlite3"
    with sqlite3.connect(old) as conn:  # a database stamped before any table existed: schema version 0
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute("INSERT INTO meta VALUES ('schema_version', '0')")
    out = tmp_path / "old-report"
    assert main(["report", str(old), "-o", str(out), "--json"]) == 0
    (summary,) = json.loads(capsys.readouterr().out)["summaries"]
    assert summary["sessions"] == 0 and any("schema version 0" in n for n in summary["notes"])
    _check_page(out, partial=False)
    with sqlite3.connect(old) as conn:  # the original is left as it was
        assert conn.execute("SELECT value FROM meta").fetchone() == ("0",)
        assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")] == ["meta"]


def test_damaged_tables_give_a_partial_report(synthetic, tmp_path):
    damaged = tmp_path / "damaged.sqlite3"
    damaged.write_bytes(synthetic["a"].read_bytes())
    with sqlite3.connect(damaged) as conn:
        conn.execute("DROP TABLE decisions")
        conn.execute("CREATE TABLE decisions (junk TEXT)")
    result = report(damaged, tmp_path / "damaged")
    assert result["partial"]
    assert any("gate decisions cannot be read" in r for r in result["summaries"][0]["partial_reasons"])


def test_tradeoff_curve_counts_hidden_rejects_and_lost_accepts():
    rows = [{"score": s, "label": lab} for s, lab in [(0.1, False), (0.2, False), (0.3, True), (0.4, False), (0.9, True)]]
    thresholds, hidden, lost = tradeoff_curve(rows)
    assert thresholds[:4] == [0.1, 0.2, 0.3, 0.4]
    assert hidden == [0.0, 1 / 3, 2 / 3, 2 / 3, 1.0, 1.0]
    assert lost == [0.0, 0.0, 0.0, 0.5, 0.5, 1.0]
    assert tradeoff_curve([{"score": 0.5, "label": True}]) == ([], [], [])


def test_a_session_prefix_that_names_several_sessions_is_refused_as_replay_refuses_it(tmp_path, capsys):
    """The report used to merge every session the prefix started; `tact replay` refused it as ambiguous."""
    two = tmp_path / "two.sqlite3"
    write_synthetic_db(two, seed=1, requests=20, session_id="desk-1")
    write_synthetic_db(two, seed=2, requests=30, session_id="desk-2")
    assert main(["report", str(two), "--session", "desk", "-o", str(tmp_path / "r"), "--json"]) != 0
    assert "ambiguous" in capsys.readouterr().err
    assert main(["report", str(two), "--session", "desk-2", "-o", str(tmp_path / "r2"), "--json"]) == 0
    (summary,) = json.loads(capsys.readouterr().out)["summaries"]
    assert summary["sessions"] == 1 and summary["requests"] == 30


def _direct_db(path, suggestions, decisions):
    """A database written row by row: (id, kind, shown_at, outcome) suggestions and (id, score, threshold) stage-2
    decisions, for figures that depend on exactly which rows exist."""
    from sqlite_utils import Database

    from telemetry.schema import migrate

    migrate(Database(path))
    with sqlite3.connect(path) as c:
        c.execute("INSERT INTO sessions (id, started_at, ended_at) VALUES ('s', 0, 100)")
        for n, (sid, kind, shown_at, outcome) in enumerate(suggestions):
            c.execute("INSERT INTO suggestions (id, session_id, kind, requested_at, text, shown_at, outcome, latency_ms)"
                      " VALUES (?, 's', ?, ?, 'xx', ?, ?, 10)", (sid, kind, n, shown_at, outcome))
        for n, (sid, score, threshold) in enumerate(decisions):
            c.execute("INSERT INTO decisions (session_id, suggestion_id, ts, stage, decision, score, threshold)"
                      " VALUES ('s', ?, ?, 2, 'show', ?, ?)", (sid, n, score, threshold))
    return path


def test_a_suggestion_superseded_before_it_was_shown_is_not_counted_shown_when_the_client_reports_shows(tmp_path):
    """VS Code reports what it shows; the server supersedes answers it never displayed. Those counted as shown and
    rejected, lowering the acceptance rate. A client that reports no shows keeps the outcome rule."""
    from telemetry.report import load

    shows = _direct_db(tmp_path / "shows.sqlite3", [("a", "completion", 0.5, "accepted"),
                                                    ("b", "completion", None, "rejected"),
                                                    ("c", "completion", 2.5, "rejected")], [])
    rows = {r["id"]: r["shown"] for r in load(shows, "x").rows}
    assert rows == {"a": True, "b": False, "c": True}
    silent = _direct_db(tmp_path / "silent.sqlite3", [("a", "completion", None, "accepted"),
                                                      ("b", "completion", None, "rejected")], [])
    assert {r["id"]: r["shown"] for r in load(silent, "y").rows} == {"a": True, "b": True}


def test_the_gate_threshold_drawn_is_the_completion_gate_not_a_next_edit_confidence(tmp_path):
    from telemetry.report import load

    db = _direct_db(tmp_path / "t.sqlite3", [("a", "completion", 0.5, "accepted"), ("b", "completion", 1.5, "rejected"),
                                             ("ne", "next_edit", None, "hidden")],
                    [("a", 0.9, 0.3), ("b", 0.35, 0.3), ("ne", 0.2, 0.55)])
    assert load(db, "x").threshold == 0.3


def test_the_report_lists_the_sessions_that_session_takes(tmp_path, capsys):
    """`tact replay --session` said `tact report` lists the sessions; it listed them nowhere."""
    two = tmp_path / "two.sqlite3"
    write_synthetic_db(two, seed=1, requests=20, session_id="desk-1")
    write_synthetic_db(two, seed=2, requests=30, session_id="desk-2", crashed=True)
    assert main(["report", str(two), "-o", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    first, second = (ln for ln in out.splitlines() if ln.startswith("  session "))
    assert first.startswith("  session desk-1  started 2023-11-") and first.endswith("client synthetic, 20 requests")
    assert second.startswith("  session desk-2") and "no end" in second and second.endswith("30 requests")
    assert "--session takes a session id, or its first characters" in out
    page = (tmp_path / "r" / "index.html").read_text(encoding="utf-8")
    assert "<code>desk-1</code>" in page and "<code>desk-2</code>" in page
    assert main(["report", str(two), "-o", str(tmp_path / "r"), "--json"]) == 0
    (summary,) = json.loads(capsys.readouterr().out)["summaries"]
    listed = summary["session_list"]
    assert [(s["id"], s["ended"], s["client"], s["requests"]) for s in listed] == [
        ("desk-1", True, "synthetic", 20), ("desk-2", False, "synthetic", 30)]
    assert listed[0]["started_at"] == 1_700_010_000.0 and listed[0]["started"].startswith("2023-11-1")
    # the id a listing shows, or its first characters, is what --session takes
    assert main(["report", str(two), "--session", "desk-2", "-o", str(tmp_path / "r2"), "--json"]) == 0
    (summary,) = json.loads(capsys.readouterr().out)["summaries"]
    assert [s["id"] for s in summary["session_list"]] == ["desk-2"] and summary["requests"] == 30


def test_characters_saved_are_characters_in_a_recording_as_in_its_replay(tmp_path):
    """The accepted length is in UTF-16 units: a recording counted an emoji it accepted as two characters saved, its
    replay (which counts characters) as one, and a partial accept counted its units even in the replay."""
    from telemetry import SessionEnded, SessionStarted, SuggestionAccepted, SuggestionGenerated, SuggestionRequested
    from telemetry import TelemetryStore
    from telemetry.oracle import Oracle
    from telemetry.reader import open_readonly, suggestions
    from telemetry.reconstruct import Request
    from telemetry.replay import _decide
    from telemetry.report import load

    db = tmp_path / "emoji.sqlite3"
    with TelemetryStore(db) as store:
        store.record(SessionStarted("s", "vscode", "1", "0.1.0", ts=0.0))
        for n, (sid, text, length, partial) in enumerate([("whole", "\U0001f600ab", 4, False),
                                                           ("part", "\U0001f600\U0001f600 cd", 4, True)]):
            store.record(SuggestionRequested("s", sid, "completion", "file:///a.py", 1, 0, 0, ts=1.0 + n))
            store.record(SuggestionGenerated("s", sid, text, "m", "full", 5.0, 3, ts=1.1 + n))
            store.record(SuggestionAccepted("s", sid, length, partial, ts=1.2 + n))
        store.record(SessionEnded("s", "shutdown", ts=9.0))
    assert {r["id"]: r["chars_saved"] for r in load(db, "x").rows} == {"whole": 3, "part": 2}
    conn = open_readonly(db)
    try:
        logged = {s["id"]: s for s in suggestions(conn)}
    finally:
        conn.close()
    replayed = {sid: _decide(Request(sid, "file:///a.py", 1, 0, 0, "automatic", 1.0, logged=row), row["text"], Oracle())
                for sid, row in logged.items()}
    assert {sid: (basis, saved) for sid, (basis, _, _, saved) in replayed.items()} == {
        "whole": ("logged", 3), "part": ("logged", 2)}


def _as_replay_of(path, runs):
    """Make a database of synthetic sessions look as `tact replay` leaves it: each (session, source session) run."""
    from telemetry.replay import REPLAY_TABLES

    with sqlite3.connect(path) as conn:
        conn.executescript(REPLAY_TABLES)
        for sid, source in runs:
            n = conn.execute("SELECT COUNT(*) FROM suggestions WHERE session_id = ?", [sid]).fetchone()[0]
            conn.execute("INSERT INTO replay_runs (session_id, source_session_id, requests, replayed, complete,"
                         " source_complete) VALUES (?, ?, ?, ?, 1, 1)", [sid, source, n, n])
            conn.execute("INSERT INTO replay_suggestions (session_id, seq, suggestion_id, source_ts, chars_saved)"
                         " SELECT session_id, 0, id, requested_at, 0 FROM suggestions WHERE session_id = ?", [sid])
    conn.close()


def test_a_recording_is_compared_with_its_replay_session_for_session(tmp_path, capsys):
    """`tact replay --session` replays one session and advises `tact report DB --against OUT`: every session of DB
    was compared with the replay of one. And `--session` picked a session of DB only, against every replay."""
    recorded, one, both = tmp_path / "desk.sqlite3", tmp_path / "one.sqlite3", tmp_path / "both.sqlite3"
    write_synthetic_db(recorded, seed=1, requests=20, session_id="desk-1")
    write_synthetic_db(recorded, seed=2, requests=30, session_id="desk-2")
    write_synthetic_db(one, seed=2, requests=30, session_id="replay-2")
    _as_replay_of(one, [("replay-2", "desk-2")])
    write_synthetic_db(both, seed=1, requests=20, session_id="replay-1")
    write_synthetic_db(both, seed=2, requests=30, session_id="replay-2")
    _as_replay_of(both, [("replay-1", "desk-1"), ("replay-2", "desk-2")])

    assert main(["report", str(recorded), "--against", str(one), "-o", str(tmp_path / "r1"), "--json"]) == 0
    a, b = json.loads(capsys.readouterr().out)["summaries"]
    assert [s["id"] for s in a["session_list"]] == ["desk-2"] and a["requests"] == b["requests"] == 30
    assert any("replays" in note for note in a["notes"])
    assert main(["report", str(recorded), "--session", "desk-1", "--against", str(both), "-o", str(tmp_path / "r2"),
                 "--json"]) == 0
    a, b = json.loads(capsys.readouterr().out)["summaries"]
    assert [s["id"] for s in b["session_list"]] == ["replay-1"] and a["requests"] == b["requests"] == 20
    assert main(["report", str(recorded), "--against", str(both), "-o", str(tmp_path / "r3"), "--json"]) == 0
    a, b = json.loads(capsys.readouterr().out)["summaries"]
    assert a["requests"] == b["requests"] == 50 and not a["notes"] and not b["notes"]  # every session has its replay
