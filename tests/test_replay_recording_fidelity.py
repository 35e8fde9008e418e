"""Replays that say what their recording did: suggestions its editor never showed, requests left out, models not on
this machine, an interrupted run, and the figures the replay, the report and the schema's query give alike."""

from __future__ import annotations

import json
import re
import sqlite3
import sys
from pathlib import Path

import pytest

from lsp_server.cli import main
from telemetry import DocumentOpened, SessionStarted, SettingsChanged, SuggestionRequested, TelemetryStore
from telemetry.lsp_client import LspClient, change_at
from telemetry.reader import open_readonly
from telemetry.reconstruct import build_script
from telemetry.replay import ReplayError, ReplayOptions, replay
from telemetry.report import report
from telemetry.simulate import ACCELERATED_DEFAULTS, DID_REJECT, DID_SHOW, require_ready, server_command, wait_ready

_URI = "file:///w/a.py"


@pytest.fixture(scope="module")
def shown_some(tiny_lm_dir, tmp_path_factory) -> dict:
    """A session recorded by a client that reports what it shows (as VS Code does) and showed every third
    suggestion: the others it dropped before display, and the server superseded them."""
    db = tmp_path_factory.mktemp("shown_some") / "vs.sqlite3"
    with LspClient(server_command(sys.executable, str(tiny_lm_dir), str(db))) as client:
        client.initialize({**ACCELERATED_DEFAULTS, "acceptanceGate": False, "stopThreshold": 1.01, "maxNewTokens": 8},
                          client_name="vscode")
        require_ready(wait_ready(client))
        client.did_open(_URI, "import os\n\n\ndef main():\n    ", 1, "python")
        col, version, answered, shown = 4, 1, 0, 0
        for k, ch in enumerate("print(os.getcwd())"):
            version += 1
            client.did_change(_URI, version, [change_at(4, col, ch)])
            col += 1
            items = client.inline_completion(_URI, 4, col)
            answered += bool(items)
            if items and k % 3 == 0:
                client.notify(DID_SHOW, {"id": items[0]["command"]["arguments"][0]})
                client.notify(DID_REJECT, {"id": items[0]["command"]["arguments"][0], "reason": "typedOver"})
                shown += 1
        client.notify("textDocument/didClose", {"textDocument": {"uri": _URI}})
        client.shutdown()
    assert shown >= 3 and answered > shown  # some suggestions were never shown
    return {"database": db, "shown": shown, "answered": answered}


def _summaries(database: Path, against: Path, out: Path) -> dict[str, dict]:
    figures = report(database, out, against=against)
    return {s["label"]: s for s in figures["summaries"]}


def test_a_suggestion_its_recording_never_showed_is_not_shown_in_the_replay(shown_some, tiny_lm_dir, tmp_path):
    out = tmp_path / "replay.sqlite3"
    (res,) = replay(shown_some["database"], out, options=ReplayOptions(model=str(tiny_lm_dir)))
    assert res.complete
    assert res.by_basis.get("unshown", 0) == shown_some["answered"] - shown_some["shown"]
    assert res.suggestions == shown_some["shown"]
    recorded, replayed = _summaries(shown_some["database"], out, tmp_path / "report").values()
    assert recorded["shown"] == shown_some["shown"]
    assert replayed["shown"] == recorded["shown"]
    assert replayed["acceptance_rate"] == recorded["acceptance_rate"]
    conn = open_readonly(out)
    try:
        rows = conn.execute("SELECT COUNT(*) FROM replay_suggestions WHERE basis = 'unshown' AND outcome IS NULL")
        assert rows.fetchone()[0] == res.by_basis["unshown"]
    finally:
        conn.close()


def _schema_query(title: str) -> str:
    doc = (Path(__file__).resolve().parents[1] / "docs" / "telemetry-schema.md").read_text(encoding="utf-8")
    start = doc.index(title)
    return re.search(r"```sql\n(.*?)```", doc[start:], re.S).group(1)


def test_the_schema_s_acceptance_query_counts_as_the_report(shown_some, tmp_path):
    query = _schema_query("Acceptance rate of shown suggestions")
    conn = open_readonly(shown_some["database"])
    try:
        rows = {kind: (shown, accepted) for kind, shown, accepted, _ in conn.execute(query)}
    finally:
        conn.close()
    (summary,) = report(shown_some["database"], tmp_path / "report")["summaries"]
    assert rows["completion"] == (summary["shown"], summary["accepted"]) == (shown_some["shown"], 0)


def _clock_set_back(db: Path) -> None:
    """A request logged (by ``ts``) before its document's open: the wall clock went back 30 s in between."""
    with TelemetryStore(db) as store:
        store.record(SessionStarted("s", "vscode", "1", "0.1.0", {}, {}, ts=100.0))
        store.record(DocumentOpened("s", _URI, 1, "python", "x = 1\n", ts=130.0))
        store.record(SuggestionRequested("s", "r1", "completion", _URI, 1, 0, 5, ts=131.0))
        store.record(SuggestionRequested("s", "r2", "completion", _URI, 1, 0, 5, ts=101.0))


def test_requests_left_out_of_the_script_are_counted_and_make_the_replay_partial(tiny_lm_dir, tmp_path):
    db = tmp_path / "clock.sqlite3"
    _clock_set_back(db)
    conn = open_readonly(db)
    try:
        script = build_script(conn, "s")
    finally:
        conn.close()
    assert len(script.requests) == 1 and script.requests_left_out == 1
    (res,) = replay(db, tmp_path / "out.sqlite3", options=ReplayOptions(model=str(tiny_lm_dir)))
    assert (res.requests, res.replayed, res.complete) == (2, 1, False)
    assert any("1 requests not replayed" in issue for issue in res.issues)
    (summary,) = report(tmp_path / "out.sqlite3", tmp_path / "report")["summaries"]
    assert any("1 requests not replayed" in why for why in summary["partial_reasons"])


def test_a_recorded_acceptance_model_not_here_is_said_and_the_shipped_one_used(tiny_lm_dir, tmp_path):
    db = tmp_path / "s.sqlite3"
    _clock_set_back(db)
    gone = {"acceptanceModelPath": str(tmp_path / "gone")}
    with TelemetryStore(db) as store:  # a settings change sends the whole section again, the path with it
        store.record(SettingsChanged("s", {**gone, "editCoalesceMs": 900}, ts=130.5))
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE sessions SET settings = ?", [json.dumps(gone)])
    conn.close()
    (res,) = replay(db, tmp_path / "out.sqlite3", options=ReplayOptions(model=str(tiny_lm_dir)))
    assert "acceptanceModelPath" not in res.settings
    assert any("acceptanceModelPath" in note and "shipped one is used" in note for note in res.notes)
    conn = open_readonly(tmp_path / "out.sqlite3")
    try:
        (models,) = conn.execute("SELECT models FROM sessions WHERE id = ?", [res.session_id]).fetchone()
        changes = [json.loads(row[0]) for row in conn.execute("SELECT settings FROM settings_changes")]
    finally:
        conn.close()
    assert json.loads(models)["acceptance"]["active"]
    # the change was replayed without the path (it turned the replay's gate off from there on)
    assert [c["editCoalesceMs"] for c in changes] == [900] and changes[0]["acceptanceModelPath"] == "", changes
    with pytest.raises(ReplayError, match="no such file"):
        replay(db, tmp_path / "out2.sqlite3", options=ReplayOptions(
            model=str(tiny_lm_dir), overrides={"acceptanceModelPath": str(tmp_path / "gone")}))
    assert not (tmp_path / "out2.sqlite3").exists()


def test_an_interrupted_replay_leaves_nothing_behind(tiny_lm_dir, tmp_path, monkeypatch):
    import telemetry.replay as replay_module

    db = tmp_path / "s.sqlite3"
    _clock_set_back(db)
    out = tmp_path / "new" / "out.sqlite3"
    real = replay_module.replay_session

    def interrupted(*args, **kwargs):
        real(*args, **kwargs)  # the output is written
        assert out.exists()
        raise KeyboardInterrupt

    monkeypatch.setattr(replay_module, "replay_session", interrupted)
    with pytest.raises(KeyboardInterrupt):
        replay(db, out, options=ReplayOptions(model=str(tiny_lm_dir)))
    assert not out.exists() and not out.parent.exists()


def test_a_directory_to_replay_is_one_clear_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["replay", "."]) == 2
    err = capsys.readouterr().err
    assert "is a directory" in err and "Traceback" not in err


@pytest.mark.parametrize("recording_first", [True, False])
def test_a_paired_report_leaves_the_recording_s_simulated_sessions_out_of_both_sides(tiny_lm_dir, tmp_path,
                                                                                   recording_first):
    """`tact report DB` leaves the simulator's sessions out; beside its replay they were counted on both sides, so
    the same recording had two acceptance rates."""
    from telemetry_fakes import write_synthetic_db

    db = tmp_path / "mixed.sqlite3"
    write_synthetic_db(db, seed=1, requests=4, session_id="user-1")
    write_synthetic_db(db, seed=2, requests=4, session_id="sim-1")
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE sessions SET client_name = 'tact-simulate' WHERE id = 'sim-1'")
    conn.close()
    replayed = tmp_path / "mixed.replay.sqlite3"
    assert len(replay(db, replayed, options=ReplayOptions(model=str(tiny_lm_dir)))) == 2
    pair = (db, replayed) if recording_first else (replayed, db)
    summaries = report(pair[0], tmp_path / "report", against=pair[1])["summaries"]
    alone = report(db, tmp_path / "alone")["summaries"][0]
    assert [s["sessions"] for s in summaries] == [1, 1]
    recorded = summaries[0 if recording_first else 1]
    assert (recorded["requests"], recorded["shown"]) == (alone["requests"], alone["shown"])
