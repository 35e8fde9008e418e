"""`tact demo` and `tact simulate` keep their sessions apart from the user's, and the acceptance gate's prior is the
user's own: the demo recorded into the real telemetry database, whose every session seeded each user's prior."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

from lsp_server.services.gate import AcceptanceGate
from telemetry.reader import SYNTHETIC_CLIENTS


def _client_names(db) -> set[str]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return {name for (name,) in conn.execute("SELECT client_name FROM sessions")}


def test_the_demo_records_apart_from_the_users_sessions(tiny_lm_dir, tmp_path):
    data = tmp_path / "data"  # the user data directory, where the user's telemetry.sqlite3 lives
    run = subprocess.run([sys.executable, "-m", "lsp_server.cli", "demo", "--model", str(tiny_lm_dir), "--lines", "1"],
                         capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
                         env={**os.environ, "TACT_DATA_DIR": str(data)})
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"telemetry: {data / 'demo.sqlite3'} (session " in run.stdout  # where, said as before
    assert not (data / "telemetry.sqlite3").exists()
    assert _client_names(data / "demo.sqlite3") == {"tact-demo"} <= set(SYNTHETIC_CLIENTS)


def test_the_simulators_sessions_are_known_as_synthetic(simulated_session):
    assert _client_names(simulated_session["database"]) == {"tact-simulate"} <= set(SYNTHETIC_CLIENTS)


def test_the_prior_is_seeded_from_the_users_sessions_alone(tmp_path):
    from telemetry import SessionStarted, SuggestionAccepted, SuggestionRejected, open_store

    db = tmp_path / "telemetry.sqlite3"
    with open_store(db) as store:
        for session, client, t in (("person", "vscode", 100.0), ("demo", "tact-demo", 200.0),
                                   ("sim", "tact-simulate", 300.0), ("unnamed", None, 50.0)):
            store.record(SessionStarted(session, client, "1", "0.1.0", {}, {}, ts=t))
        store.record(SuggestionAccepted("person", "p1", 3, False, ts=101.0))
        store.record(SuggestionRejected("person", "p2", "typedOver", ts=102.0))
        store.record(SuggestionRejected("unnamed", "u1", "typedOver", ts=51.0))
        for n in range(5):
            store.record(SuggestionAccepted("demo", f"d{n}", 3, False, ts=201.0 + n))
            store.record(SuggestionAccepted("sim", f"s{n}", 3, False, ts=301.0 + n))
    gate = AcceptanceGate(None)
    gate.seed_from_database(db)
    h = gate.history
    assert (h.accepted, h.rejected) == (1, 2)
    assert (h.last_outcome, h.last_outcome_ts) == (0, 102.0)  # the person's last, a rejection, not the simulator's


def test_the_demo_table_leaves_blank_what_a_next_edit_predictor_does_not_have(tmp_path):
    """A next edit answered by the ranker was printed as 0 tokens through 0.00 layers a token, stopped at "eos":
    figures it never had. A completion's are printed as logged."""
    import io

    from lsp_server.demo import print_decisions
    from telemetry import SessionStarted, SuggestionAccepted, SuggestionGenerated, SuggestionRequested, TelemetryStore

    db = tmp_path / "demo.sqlite3"
    with TelemetryStore(db) as store:
        store.record(SessionStarted("s", "tact-demo", "1", "0.1.0", ts=0.0))
        store.record(SuggestionRequested("s", "c", "completion", "file:///a.py", 1, 0, 4, ts=1.0))
        store.record(SuggestionGenerated("s", "c", "x)", "m", "dynamic", 12.5, 3, 7.25, "newline", ts=1.1))
        store.record(SuggestionRequested("s", "n", "next_edit", "file:///a.py", 2, 1, 0, ts=2.0))
        store.record(SuggestionGenerated("s", "n", "r_oot", "ranker-1", "ranker", 1.5, 0, ts=2.1))
        store.record(SuggestionAccepted("s", "n", None, False, ts=2.2))
    out = io.StringIO()
    print_decisions(db, "s", out)
    completion, next_edit = [line.split() for line in out.getvalue().splitlines()[2:]]
    assert completion == ["1:4", "dynamic", "3", "7.25", "newline", "12.5"]
    assert next_edit == ["2:0", "ranker", "-", "-", "-", "1.5", "accepted"]
