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


def _only_summary(db, tmp_path, capsys) -> dict:
    """`tact report --json` of ``db``: the figures of its one database."""
    assert main(["report", str(db), "-o", str(tmp_path / "r"), "--json"]) == 0
    (summary,) = json.loads(capsys.readouterr().out)["summaries"]
    return summary


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


def _a_recording_and_a_replay_of_its_second(tmp_path):
    """A recording of sessions desk-1 (20 requests) and desk-2 (30), and a replay of desk-2 alone, replay-2."""
    recorded, one = tmp_path / "desk.sqlite3", tmp_path / "one.sqlite3"
    write_synthetic_db(recorded, seed=1, requests=20, session_id="desk-1")
    write_synthetic_db(recorded, seed=2, requests=30, session_id="desk-2")
    write_synthetic_db(one, seed=2, requests=30, session_id="replay-2")
    _as_replay_of(one, [("replay-2", "desk-2")])
    return recorded, one


def test_a_recording_is_compared_with_its_replay_session_for_session(tmp_path, capsys):
    """`tact replay --session` replays one session and advises `tact report DB --against OUT`: every session of DB
    was compared with the replay of one. And `--session` picked a session of DB only, against every replay."""
    recorded, one = _a_recording_and_a_replay_of_its_second(tmp_path)
    both = tmp_path / "both.sqlite3"
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


def test_the_tradeoff_curve_of_many_months_of_suggestions_is_drawn_in_moments():
    """Each threshold counted every suggestion again: 30,000 scored suggestions took half a minute, past the 120 s
    that `Tact: Open Latest Report` waits for a database a few times larger."""
    import random
    import time

    rng = random.Random(0)
    rows = [{"score": round(rng.random(), 6), "label": rng.random() < 0.3} for _ in range(30_000)]
    rows += [{"score": None, "label": True}, {"score": 0.5, "label": None}]  # neither counts
    started = time.perf_counter()
    thresholds, hidden, lost = tradeoff_curve(rows)
    assert time.perf_counter() - started < 5.0
    decided = [(r["score"], r["label"]) for r in rows if r["score"] is not None and r["label"] is not None]
    rejects, accepts = sum(not a for _, a in decided), sum(a for _, a in decided)
    assert len(thresholds) == len({s for s, _ in decided}) + 1
    for i in (0, 1, 777, len(thresholds) // 2, len(thresholds) - 2, len(thresholds) - 1):
        t = thresholds[i]
        assert hidden[i] == sum(not a and s < t for s, a in decided) / rejects
        assert lost[i] == sum(a and s < t for s, a in decided) / accepts


def _with_client(path, session_id, client):
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE sessions SET client_name = ? WHERE id = ?", [client, session_id])
    conn.close()


def test_the_demo_and_the_simulator_are_left_out_of_a_users_figures_as_the_gate_leaves_them_out(tmp_path, capsys):
    """`tact demo` recorded into the user's database until it got its own: its sessions (and any `tact simulate` run
    pointed there) counted in the user's acceptance rate and characters saved, though the gate's prior skips them."""
    from telemetry.reader import DEMO_CLIENT, SIMULATE_CLIENT

    mixed = tmp_path / "telemetry.sqlite3"
    write_synthetic_db(mixed, seed=1, requests=20, session_id="desk-1")
    write_synthetic_db(mixed, seed=2, requests=30, session_id="demo-1")
    write_synthetic_db(mixed, seed=3, requests=40, session_id="sim-1")
    _with_client(mixed, "demo-1", DEMO_CLIENT)
    _with_client(mixed, "sim-1", SIMULATE_CLIENT)
    assert main(["report", str(mixed), "-o", str(tmp_path / "r"), "--json"]) == 0
    (summary,) = json.loads(capsys.readouterr().out)["summaries"]
    assert [s["id"] for s in summary["session_list"]] == ["desk-1"] and summary["requests"] == 20
    assert any("tact demo" in n and "tact simulate" in n for n in summary["notes"])
    assert main(["report", str(mixed), "-o", str(tmp_path / "r"), "--session", "demo"]) == 0  # asked for by name
    assert "1 session, 30 requests" in capsys.readouterr().out
    only = tmp_path / "simulated.sqlite3"  # the simulator's own database: its sessions are what is reported
    write_synthetic_db(only, seed=3, requests=40, session_id="sim-1")
    _with_client(only, "sim-1", SIMULATE_CLIENT)
    assert main(["report", str(only), "-o", str(tmp_path / "r"), "--json"]) == 0
    (summary,) = json.loads(capsys.readouterr().out)["summaries"]
    assert summary["requests"] == 40 and not summary["notes"]


def _replays(tmp_path):
    """A recording of two sessions, a replay of its second, and a replay of both made second first."""
    recorded, one = _a_recording_and_a_replay_of_its_second(tmp_path)
    both = tmp_path / "both.sqlite3"
    write_synthetic_db(both, seed=2, requests=30, session_id="again-2")
    write_synthetic_db(both, seed=5, requests=20, session_id="again-1")  # started after again-2
    _as_replay_of(both, [("again-1", "desk-1"), ("again-2", "desk-2")])
    return recorded, one, both


def _compared(capsys, *argv):
    assert main(["report", *map(str, argv), "--json"]) == 0
    return [([s["id"] for s in side["session_list"]], side) for side in json.loads(capsys.readouterr().out)["summaries"]]


def test_two_replays_of_one_recording_are_compared_session_for_session(tmp_path, capsys):
    """Replays with other settings are compared with each other as with their recording: every session of one was
    drawn against the replays of a single session in the other."""
    recorded, one, both = _replays(tmp_path)
    (a, _), (b, _) = _compared(capsys, both, "--against", one, "-o", tmp_path / "r1")
    assert (a, b) == (["again-2"], ["replay-2"])
    (a, _), (b, _) = _compared(capsys, one, "--against", both, "-o", tmp_path / "r2")
    assert (a, b) == (["replay-2"], ["again-2"])
    (a, _), (b, _) = _compared(capsys, one, "--against", recorded, "-o", tmp_path / "r3")  # a replay first
    assert (a, b) == (["replay-2"], ["desk-2"])


def test_the_last_session_is_compared_with_its_own_replay_whatever_order_the_replays_ran_in(tmp_path, capsys):
    """--limit took the last replay run before pairing: desk-2 was drawn against the replay of desk-1."""
    recorded, _, both = _replays(tmp_path)
    (a, _), (b, _) = _compared(capsys, recorded, "--limit", 1, "--against", both, "-o", tmp_path / "r")
    assert (a, b) == (["desk-2"], ["again-2"])


def test_a_replay_of_another_session_is_said_to_be_one(tmp_path, capsys):
    """A recording's session drawn against the replay of another session gave two columns of figures and no word
    that they are of different sessions."""
    recorded, one, _ = _replays(tmp_path)
    (a, _), (b, side) = _compared(capsys, recorded, "--session", "desk-1", "--against", one, "-o", tmp_path / "r")
    assert (a, b) == (["desk-1"], ["replay-2"])
    assert any("replays none of the sessions" in n for n in side["notes"])
    assert main(["report", str(recorded), "--session", "desk-1", "--against", str(one), "-o", str(tmp_path / "r")]) == 0
    assert "replays none of the sessions" in capsys.readouterr().out
    (a, _), (b, side) = _compared(capsys, recorded, "--session", "desk-2", "--against", one, "-o", tmp_path / "r")
    assert (a, b) == (["desk-2"], ["replay-2"]) and not side["notes"]


def test_json_figures_stay_json_when_a_latency_is_infinite(tmp_path, capsys):
    """SQLite keeps an infinite REAL (NaN it stores as NULL): the figures printed `Infinity`, which JSON has not (the
    VS Code report command's JSON.parse refuses it), while the latency plot already left it out."""
    db = _direct_db(tmp_path / "inf.sqlite3", [("a", "completion", 0.5, "accepted"), ("b", "completion", 1.5, "rejected"),
                                               ("c", "completion", 2.5, "rejected")], [])
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE suggestions SET latency_ms = 1e999, layers_per_token = 1e999 WHERE id = 'c'")
    conn.close()

    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")

    assert main(["report", str(db), "-o", str(tmp_path / "r"), "--json"]) == 0
    (summary,) = json.loads(capsys.readouterr().out, parse_constant=refuse)["summaries"]
    assert summary["latency_p95_ms"] == 10.0 and summary["layers_per_token"] is None


def test_a_database_written_while_it_is_read_is_reported_as_of_one_moment(tmp_path, monkeypatch):
    """The report read the suggestions, then the gate decisions: a server writing meanwhile (`Tact: Open Latest
    Report` reads the live database) added stage-1 skips of requests the report had not read."""
    import telemetry.report as report_module
    from telemetry import SuggestionGated, SuggestionRequested, TelemetryStore

    db = tmp_path / "live.sqlite3"
    sid = write_synthetic_db(db, seed=1, requests=40)
    read_decisions = report_module._read_decisions
    wrote = []

    def server_writes_meanwhile(conn, data, sessions):
        wrote.append(True)
        with TelemetryStore(db) as store:
            for n in range(5):
                store.record(SuggestionRequested(sid, f"late-{n}", "completion", "file:///a.py", 1, 0, 0,
                                                 ts=1_700_010_000.0 + n))
                store.record(SuggestionGated(sid, f"late-{n}", 1, "skip", 0.01, 0.05, "gate-1", ts=1_700_010_000.0 + n))
        read_decisions(conn, data, sessions)

    monkeypatch.setattr(report_module, "_read_decisions", server_writes_meanwhile)
    data = report_module.load(db, "x")
    assert wrote == [True]  # the late requests were written while the report read
    assert len(data.rows) == 40
    assert data.stage1["skip"] == sum(r["outcome"] == "skipped" for r in data.rows)
    monkeypatch.undo()
    later = report_module.load(db, "x")  # a report read afterwards counts them
    assert len(later.rows) == 45 and later.stage1["skip"] == data.stage1["skip"] + 5


def test_a_suggestion_without_tokens_has_no_layers_per_token_even_as_older_servers_logged_it(tmp_path, capsys):
    """Servers before logged 0.0 layers a token for a suggestion Stop ended before its first token; the figure and
    the plot averaged those zeros in (the demo: 10.2 layers a token where every token ran all 12)."""
    db = _direct_db(tmp_path / "zeros.sqlite3", [("a", "completion", 0.5, "accepted"), ("b", "completion", 1.5, "rejected"),
                                                 ("c", "completion", None, None)], [])
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE suggestions SET tokens = 3, layers_per_token = 12 WHERE id IN ('a', 'b')")
        conn.execute("UPDATE suggestions SET text = '', tokens = 0, layers_per_token = 0.0 WHERE id = 'c'")
    conn.close()
    summary = _only_summary(db, tmp_path, capsys)
    assert summary["layers_per_token"] == 12.0


def test_a_replay_in_an_older_schema_is_paired_with_its_recording_as_the_report_reads_it(tmp_path, monkeypatch):
    """The sessions each side stands for were read from the original file, which a newer Tact refuses to read while
    the report reads an upgraded copy: a recording and its replay, both of the schema before, were compared whole."""
    from telemetry import reader, schema

    recorded, one = _a_recording_and_a_replay_of_its_second(tmp_path)
    # One schema version more, as far as these databases can tell: they are read from upgraded copies.
    older = schema.SCHEMA_VERSION
    monkeypatch.setattr(schema, "SCHEMA_VERSION", older + 1)
    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, lambda db: db.execute(
        "ALTER TABLE sessions ADD COLUMN note TEXT")])
    monkeypatch.setattr(reader, "SCHEMA_VERSION", older + 1)
    result = report(recorded, tmp_path / "r", against=one)
    a, b = result["summaries"]
    assert any(f"schema version {older}" in n for n in a["notes"]) and any(f"schema version {older}" in n for n in b["notes"])
    assert [s["id"] for s in a["session_list"]] == ["desk-2"] and a["requests"] == b["requests"] == 30


def test_layers_per_token_are_the_layers_of_every_token_over_the_tokens_as_the_bench_pools_them(tmp_path, capsys):
    """A mean over suggestions gave a one-token suggestion (its token from the prompt's pass, every layer) the weight
    of a long one: 10 and 1 tokens at 6 and 12 layers read 9.0 layers a token where the tokens ran 6.55."""
    rows = [("a", "completion", 0.5, "accepted"), ("b", "completion", 1.5, "rejected"), ("c", "completion", None, None)]
    db = _direct_db(tmp_path / "mixed.sqlite3", rows, [])
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE suggestions SET tokens = 10, layers_per_token = 6 WHERE id = 'a'")
        conn.execute("UPDATE suggestions SET tokens = 1, layers_per_token = 12 WHERE id = 'b'")
        conn.execute("UPDATE suggestions SET text = '', tokens = 0, layers_per_token = 0.0 WHERE id = 'c'")
    conn.close()
    summary = _only_summary(db, tmp_path, capsys)
    assert summary["layers_per_token"] == round((10 * 6 + 12) / 11, 3)


def test_a_damaged_token_count_is_read_as_unknown_and_keeps_its_suggestion(tmp_path, capsys):
    """Read for the layers a token weighs, a damaged `tokens` value (text, 2.5) left its whole suggestion out of every
    figure: 3 requests read 2, and the acceptance 0.667 read 0.5."""
    rows = [("a", "completion", 0.5, "accepted"), ("b", "completion", 1.5, "accepted"),
            ("c", "completion", 2.5, "rejected")]
    db = _direct_db(tmp_path / "tok.sqlite3", rows, [])
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE suggestions SET tokens = 4, layers_per_token = 6 WHERE id IN ('a', 'c')")
        conn.execute("UPDATE suggestions SET tokens = 'many', layers_per_token = 12 WHERE id = 'b'")
    conn.close()
    summary = _only_summary(db, tmp_path, capsys)
    assert (summary["requests"], summary["accepted"], summary["acceptance_rate"]) == (3, 2, round(2 / 3, 4))
    assert summary["layers_per_token"] == round((4 * 6 + 4 * 6 + 12) / 9, 3)  # the unknown count weighs one token
    assert any("whose tokens is damaged, read as unknown: 1" in reason for reason in summary["partial_reasons"])
