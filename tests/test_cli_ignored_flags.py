"""The command line, a ninth look: flags that were taken and then ignored, or said what did not happen."""

from __future__ import annotations

import pytest

from lsp_server.cli import main


@pytest.mark.parametrize("command", [["replay", "x.sqlite3"], ["simulate", "x.py"]])
@pytest.mark.parametrize("speed", ["inf", "-inf"])
def test_an_infinite_speed_is_refused(command, speed, capsys):
    """Every request's deadline was already past: a replay said "complete, infx" with no suggestion."""
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--speed", speed])
    assert exit_.value.code == 2
    assert "--speed" in capsys.readouterr().err


@pytest.mark.parametrize("key", ["telemetry=false", "telemetryDatabase=/elsewhere.sqlite3"])
def test_simulate_refuses_settings_that_move_its_recording(key, tmp_path, capsys):
    """`--set telemetry=false` recorded nothing, and the command said the session was recorded in --database."""
    source = tmp_path / "typed.py"
    source.write_text("x = 1\n", encoding="utf-8")
    database = tmp_path / "sim.sqlite3"
    assert main(["simulate", str(source), "--database", str(database), "--set", key]) == 2
    err = capsys.readouterr().err
    assert key.split("=")[0] in err and "--database" in err
    assert not database.exists()


def test_bench_replay_refuses_a_session_without_a_database(capsys):
    """The session named was overwritten by the simulated one's id, and the run reported as if it were replayed."""
    assert main(["bench", "replay", "--session", "no-such-session", "--limit", "5"]) == 2
    assert "--database" in capsys.readouterr().err
