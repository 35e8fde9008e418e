"""Replay on damaged rows, a second review: a clear error, never a traceback, nothing left behind."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from telemetry.replay import ReplayError, replay
from telemetry_fakes import write_synthetic_db


@pytest.mark.parametrize("payload", [
    {"kind": "completion", "uri": "file:///synthetic/a.py", "version": 1},  # no cursor: a KeyError
    {"kind": "completion", "uri": "file:///synthetic/a.py", "version": 1, "line": 0, "character": 0,
     "pending_edit": [1, 2]},  # a pending edit that is no object: an AttributeError
], ids=["no-cursor", "pending-edit-a-list"])
def test_a_request_whose_payload_lacks_its_fields_is_a_clear_replay_error(tmp_path: Path, payload: dict) -> None:
    """A payload that is JSON but not the object its event should be escaped as a traceback when it lacked a field
    or held a list where an object belongs (only a wrong type was caught)."""
    db = tmp_path / "damaged.sqlite3"
    write_synthetic_db(db, requests=3)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE suggestion_events SET payload = ? WHERE id = (SELECT MIN(id) FROM suggestion_events"
                     " WHERE type = 'suggestion_requested')", [json.dumps(payload)])
    out = tmp_path / "out.sqlite3"
    with pytest.raises(ReplayError, match="damaged"):
        replay(db, out)
    assert not out.exists()
