"""The acceptance model's loaders: CUPS rows counted as serving counts them, and logged vectors with non-finite
numbers read as unknown rather than breaking training."""

from __future__ import annotations

import json
import math
import sqlite3

import numpy as np
import pytest

from models.acceptance.cups import load_cups
from models.acceptance.dataset import from_telemetry
from tests.test_acceptance_cli import _telemetry_db
from tests.test_acceptance_model import _row, _write


def test_a_shown_suggestion_superseded_without_an_outcome_counts_as_rejected_for_later_samples(tmp_path):
    """Serving's ledger counts a suggestion left unresolved when the next one is issued as rejected, so the gate's
    running counts hold it from then on. The loader skipped it without counting it: 32 of the CUPS file's Shown
    rows, so training saw fewer rejections than serving for every later sample of those programmers."""
    from lsp_server.services.gate import AcceptanceGate
    from lsp_server.services.ledger import IssuedSuggestion, SuggestionLedger

    rows = [
        _row(1, "2022-08-08T22:11:40.000Z", "Shown", prompt="import os\n", suggestion="x = 1"),
        _row(1, "2022-08-08T22:11:45.000Z", "Shown", prompt="import os\nimport re\n", suggestion="y = 2"),
        _row(1, "2022-08-08T22:11:46.000Z", "Accepted", prompt="import os\nimport re\n", suggestion="y = 2"),
        _row(1, "2022-08-08T22:11:50.000Z", "Shown", prompt="import os\nimport re\ny = 2\n", suggestion="z = 3"),
        _row(1, "2022-08-08T22:11:52.000Z", "Rejected", prompt="import os\nimport re\ny = 2\n", suggestion="z = 3"),
    ]
    load = load_cups(_write(tmp_path / "c.jsonl", rows))
    second, third = load.samples
    assert load.skipped == {"shown without outcome": 1}  # still no label of its own
    # the second was decided before it was issued, so before it superseded the first
    assert (second.context.user_accepted, second.context.user_rejected) == (0, 0)
    assert second.context.previous_outcome is None
    # as serving: the ledger rejects the first when the second is issued, then the second is accepted
    gate, ledger = AcceptanceGate(), SuggestionLedger()
    ledger.listeners.append(gate.record_outcome)
    ledger.issue(IssuedSuggestion("first", "completion", "file:///a.py", 1, "x = 1"))
    ledger.issue(IssuedSuggestion("second", "completion", "file:///a.py", 2, "y = 2"))
    gate.record_outcome("second", "accepted")
    served = (gate.history.accepted, gate.history.rejected, gate.history.last_outcome)
    assert served == (1, 1, 1)
    assert (third.context.user_accepted, third.context.user_rejected, third.context.previous_outcome) == served
    assert third.context.seconds_since_outcome == pytest.approx(4.0)  # since the second's acceptance


@pytest.mark.parametrize("literal", ["Infinity", "-Infinity", "1e999", "NaN"])
def test_a_logged_vector_with_a_non_finite_number_is_read_as_unknown_and_trains(tmp_path, literal):
    """The gate logs a non-finite feature as null; a row holding one anyway (an edited or damaged database) made
    `tact train acceptance` fail in scikit-learn for the whole database."""
    from models.acceptance.train import train_acceptance

    db = _telemetry_db(tmp_path / "a.sqlite3", n=60)
    with sqlite3.connect(db) as conn:
        rid, details = conn.execute("SELECT id, details FROM decisions WHERE stage = 2 AND decision = 'show' "
                                    "ORDER BY id LIMIT 1").fetchone()
        value = json.loads(details)
        rest = ", ".join(json.dumps(v) for v in value["features"][1:])
        text = f'{{"feature_version": {value["feature_version"]}, "features": [{literal}, {rest}]}}'
        conn.execute("UPDATE decisions SET details = ? WHERE id = ?", (text, rid))
    data, _ = from_telemetry([db], alone=True)  # its two sessions stand in for two programmers
    assert len(data) == 60 and np.isfinite(data.X2[~np.isnan(data.X2)]).all()
    assert math.isnan(data.X2[0, 0])
    model = train_acceptance(data, "logistic", "logistic", log=lambda message: None)
    assert np.isfinite(model.stage2.predict(data.X2)).all()


@pytest.mark.parametrize("damage", ["a list", "an entry without its scores"])
def test_a_damaged_score_cache_is_scored_again_not_a_crash(tiny_lm_dir, tmp_path, damage):
    """A score cache that held a JSON list failed every score with AttributeError, and an entry without its fields
    failed the feature computation with KeyError; a cache that is not JSON already started empty."""
    from models.acceptance.scoring import SuggestionScorer

    prefix, suffix, text = "def add(a, b):\n    return ", "\n", "a + b"
    fresh = SuggestionScorer(tiny_lm_dir, None, threads=1).score(prefix, suffix, text)
    scorer = SuggestionScorer(tiny_lm_dir, tmp_path, threads=1)
    key = scorer._key(prefix, suffix, text)
    assert scorer.cache_path is not None
    scorer.cache_path.write_text(json.dumps([1, 2]) if damage == "a list" else json.dumps({key: {"logprobs": []}}))
    again = SuggestionScorer(tiny_lm_dir, tmp_path, threads=1)
    assert again.score(prefix, suffix, text) == fresh and again.misses == 1
