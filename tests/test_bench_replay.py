"""`tact bench replay`: a recorded session replayed twice against real servers, timed and compared."""

import io
import sqlite3

import pytest

from lsp_server.bench_replay import print_table, run_bench
from telemetry import SessionStarted, TelemetryStore


def test_bench_records_a_session_and_replays_it_twice_identically(tiny_lm_dir, tiny_corpus_dir):
    fig = run_bench(corpus=tiny_corpus_dir, model=str(tiny_lm_dir), limit=40, seed=1,
                    overrides={"stopThreshold": 1.01, "maxNewTokens": 8})
    rec = fig["recorded"]
    assert rec["keystrokes"] == 40 and rec["requests"] > 0
    assert len(fig["runs"]) == 2
    for run in fig["runs"]:
        assert run["complete"] and run["replayed"] == run["requests"] == rec["requests"]
        assert run["suggestions"] > 0  # the tiny model answered with text: the comparison covers real suggestions
        assert run["wall_s"] > 0
    assert fig["identical"] and fig["differing_requests"] == 0
    slowest = max(r["wall_s"] for r in fig["runs"])
    assert fig["target"]["seconds_per_10_minutes"] == pytest.approx(slowest * 600 / rec["simulated_s"], abs=0.01)
    assert rec["simulated_minutes"] == round(rec["simulated_s"] / 60, 2)  # as the report prints it
    assert rec["data"]["kind"] == "held-out corpus" and rec["data"]["path"] == str(tiny_corpus_dir / "heldout.jsonl")
    out = io.StringIO()
    print_table(fig, out)
    assert "replays identical: yes" in out.getvalue()
    assert f"a simulated programmer typed held-out files of {tiny_corpus_dir / 'heldout.jsonl'} (3 files, " in out.getvalue()


def test_without_a_corpus_the_demo_sample_is_typed_and_said(tiny_lm_dir):
    """No data/corpus (a fresh clone): the report said "typed held-out files" and the JSON did not say which."""
    fig = run_bench(corpus=None, model=str(tiny_lm_dir), limit=10, runs=1, overrides={"stopThreshold": 1.01})
    data = fig["recorded"]["data"]
    assert (data["kind"], data["files"]) == ("demo sample", 1) and data["path"].endswith("demo_sample.py.txt")
    out = io.StringIO()
    print_table(fig, out)
    assert "a simulated programmer typed the built-in demo sample (demo_sample.py.txt: no held-out corpus" in out.getvalue()


def test_bench_replays_a_given_database(simulated_session, tiny_lm_dir):
    fig = run_bench(database=simulated_session["database"], model=str(tiny_lm_dir),
                    overrides={"stopThreshold": 1.01, "maxNewTokens": 8})
    assert fig["recorded"]["database"] == str(simulated_session["database"])
    assert fig["runs"][0]["replayed"] == simulated_session["figures"]["requests"]
    assert fig["identical"]
    # scaled to 10 minutes by the span the database recorded (there is no simulated length to use)
    minutes = fig["runs"][0]["recorded_s"] / 60
    slowest = max(r["wall_s"] for r in fig["runs"])
    assert minutes > 0 and abs(fig["target"]["seconds_per_10_minutes"] - slowest * 10 / minutes) < 0.01 + 0.01 * slowest


def test_the_cli_refuses_an_unknown_setting_with_one_line(capsys):
    from lsp_server.cli import main

    assert main(["bench", "replay", "--set", "noSuchSetting=1", "--limit", "5"]) == 2
    err = capsys.readouterr().err
    assert "unknown setting 'noSuchSetting'" in err and "Traceback" not in err


def test_the_cli_prints_json(tiny_lm_dir, tiny_corpus_dir, capsys):
    import json

    from lsp_server.cli import main

    assert main(["bench", "replay", "--model", str(tiny_lm_dir), "--corpus", str(tiny_corpus_dir), "--limit", "15",
                 "--set", "stopThreshold=1.01", "--json"]) == 0
    fig = json.loads(capsys.readouterr().out)
    assert fig["identical"] and fig["recorded"]["keystrokes"] == 15 and fig["overrides"] == {"stopThreshold": 1.01}


@pytest.fixture
def unreplayable(tmp_path):
    """Databases `tact bench replay --database` cannot replay, each with the words its error line must hold."""
    empty = tmp_path / "empty.sqlite3"
    empty.touch()
    old = tmp_path / "old.sqlite3"
    with sqlite3.connect(old) as conn:
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute("INSERT INTO meta VALUES ('schema_version', '0')")
    conn.close()
    recorded = tmp_path / "recorded.sqlite3"
    with TelemetryStore(recorded) as store:
        store.record(SessionStarted("s1", "c", "1", "0.1.0", {}, {}, ts=100.0))
    return {"missing": (["--database", str(tmp_path / "missing.sqlite3")], "no telemetry database"),
            "empty": (["--database", str(empty)], "empty SQLite database"),
            # read from an upgraded copy (as `tact replay` and `tact report` read one), which holds no session
            "old schema": (["--database", str(old)], "holds no sessions"),
            "bad session": (["--database", str(recorded), "--session", "nosuch"], "no session 'nosuch'")}


@pytest.mark.parametrize("kind", ["missing", "empty", "old schema", "bad session"])
def test_the_cli_refuses_a_database_it_cannot_replay_with_one_line(unreplayable, kind, capsys):
    from lsp_server.cli import main

    args, message = unreplayable[kind]
    assert main(["bench", "replay", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tact bench replay: error: ") and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("simulated_s", [1.4, 0.2, 95.0, 120.0, 300.0, 601.0])
def test_a_simulated_session_is_scaled_by_its_own_length_and_judged_when_long_enough(monkeypatch, simulated_s):
    """The 10-minute figure was scaled by the simulated minutes rounded for the report: 1.4 s (0.02 minutes) came out
    17% off, and under 0.3 s (0.0 minutes) the recording's wall-clock span stood in, typed at machine speed. A short
    session's figure also scales its replays' server start: it is given, not judged. Canned recording and replays."""
    from types import SimpleNamespace

    from lsp_server import bench_replay

    monkeypatch.setattr(bench_replay, "record_session", lambda folder, **kw: {
        "database": str(folder / "recorded.sqlite3"), "session_id": "s1", "simulated_s": simulated_s, "keystrokes": 5,
        "requests": 3, "total_wall_s": 0.5, "data": {"kind": "demo sample", "path": "x.py", "files": 1, "chars": 9}})
    walls = iter([2.0, 3.0])
    monkeypatch.setattr(bench_replay, "replay", lambda *a, **k: [SimpleNamespace(
        wall_s=next(walls), replayed=3, requests=3, complete=True, suggestions=1, accepted=0, chars_saved=0,
        outcomes=[], recorded_s=0.5, sessions_not_replayed=0, decisions=lambda: ["shown", "skipped", "shown"])])
    fig = run_bench(limit=5)
    assert fig["target"]["seconds_per_10_minutes"] == pytest.approx(3.0 * 600 / simulated_s, abs=0.005)  # rounded to 0.01 s
    assert fig["target"]["pass"] == (3.0 * 600 / simulated_s < 60 if simulated_s >= 300 else None)
    out = io.StringIO()
    print_table(fig, out)
    assert ("PASS" in out.getvalue()) == (simulated_s >= 300) and ("not judged" in out.getvalue()) == (simulated_s < 300)


def test_replays_that_differ_miss_at_any_length(monkeypatch):
    """Not judging a short session's speed leaves its repeatability judged: two replays that decide differently
    are a MISS. Canned recording and replays."""
    from types import SimpleNamespace

    from lsp_server import bench_replay

    monkeypatch.setattr(bench_replay, "record_session", lambda folder, **kw: {
        "database": str(folder / "recorded.sqlite3"), "session_id": "s1", "simulated_s": 14.0, "keystrokes": 40,
        "requests": 3, "total_wall_s": 0.5, "data": {"kind": "demo sample", "path": "x.py", "files": 1, "chars": 9}})
    decided = iter([["shown", "skipped"], ["shown", "shown"]])
    monkeypatch.setattr(bench_replay, "replay", lambda *a, **k: [SimpleNamespace(
        wall_s=1.0, replayed=2, requests=2, complete=True, suggestions=1, accepted=0, chars_saved=0, outcomes=[],
        recorded_s=0.5, sessions_not_replayed=0, decisions=lambda d=next(decided): d)])
    fig = run_bench(limit=40)
    assert fig["differing_requests"] == 1 and fig["target"]["pass"] is False
    out = io.StringIO()
    print_table(fig, out)
    assert "replays identical: NO" in out.getvalue() and out.getvalue().rstrip().endswith("MISS")


def test_limit_cuts_the_replays_of_a_given_database_and_is_not_judged(simulated_session, tiny_lm_dir):
    """With --database, --limit was ignored: every request was replayed, however quick a run was asked for."""
    import io

    from lsp_server.bench_replay import print_table

    assert simulated_session["figures"]["requests"] > 2
    fig = run_bench(database=simulated_session["database"], model=str(tiny_lm_dir), limit=2,
                    overrides={"stopThreshold": 1.01, "maxNewTokens": 8})
    assert [r["replayed"] for r in fig["runs"]] == [2, 2] and fig["identical"]
    assert fig["target"]["cut_by_limit"] and fig["target"]["pass"] is None
    out = io.StringIO()
    print_table(fig, out)
    assert "not judged: --limit replayed part of the recording" in out.getvalue()
