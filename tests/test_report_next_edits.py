"""`tact report`: next edits' own figures in every report (text, JSON, page), notebooks or not. Before, a database
without notebooks reported none of them: a session of next edits alone read "0 requests, 0 shown"."""

from __future__ import annotations

from pathlib import Path

from lsp_server.cli import main
from telemetry import (
    SessionEnded,
    SessionStarted,
    SuggestionAccepted,
    SuggestionCancelled,
    SuggestionGated,
    SuggestionGenerated,
    SuggestionRejected,
    SuggestionRequested,
    SuggestionShown,
    SuggestionUndone,
    TelemetryStore,
)
from telemetry.events import SuggestionKept
from telemetry_fakes import write_synthetic_db
from test_report_notebooks import FILE, _summaries

# (id, kind, text, what happened: accepted (accepted length, kept length or None) / rejected / undone / hidden /
#  no_edit (nothing predicted))
SUGGESTIONS = [
    ("k1", "completion", "abc", ("accepted", 3, None)),
    ("n1", "next_edit", "wide", ("accepted", 4, 3)),  # 3 of its 4 characters kept
    ("n2", "next_edit", "height", ("accepted", 6, None)),  # never followed to its end: all 6 saved
    ("n3", "next_edit", "wide", ("rejected",)),
    ("n4", "next_edit", "width", ("undone",)),  # accepted, then taken back: a rejection, nothing saved
    ("n5", "next_edit", "h", ("hidden",)),
    ("n6", "next_edit", None, ("no_edit",)),
]
NEXT_EDITS = {"requests": 6, "generated": 5, "shown": 4, "accepted": 2, "rejected": 2, "undone": 1, "hidden": 1,
              "acceptance_rate": 0.5, "latency_p50_ms": 10.0, "latency_p95_ms": 10.0, "chars_saved": 9,
              "kept_chars": 3, "accepted_chars_followed": 4, "kept_rate": 0.75}
NONE = {"requests": 0, "generated": 0, "shown": 0, "accepted": 0, "rejected": 0, "undone": 0, "hidden": 0,
        "acceptance_rate": None, "latency_p50_ms": None, "latency_p95_ms": None, "chars_saved": 0, "kept_chars": 0,
        "accepted_chars_followed": 0, "kept_rate": None}


def _next_edit_db(path: Path) -> Path:
    """One session in a file (no notebook) of a completion and next edits of each outcome (SUGGESTIONS)."""
    with TelemetryStore(path) as store:
        store.record(SessionStarted("s", "vscode", "1", "0.1.0", ts=0.0))
        for n, (sid, kind, text, (what, *lengths)) in enumerate(SUGGESTIONS):
            ts = 1.0 + n
            store.record(SuggestionRequested("s", sid, kind, FILE, 1, 0, 0, "nextEdit", ts=ts))
            if what == "no_edit":
                store.record(SuggestionCancelled("s", sid, "no_edit", ts=ts + 0.1))
                continue
            store.record(SuggestionGenerated("s", sid, text, "m", "ranker", 10.0, 0, ts=ts + 0.1))
            if what == "hidden":
                store.record(SuggestionGated("s", sid, 2, "hide", 0.1, 0.3, ts=ts + 0.1))
                continue
            store.record(SuggestionShown("s", sid, ts=ts + 0.2))
            if what == "rejected":
                store.record(SuggestionRejected("s", sid, "dismissed", ts=ts + 0.3))
                continue
            store.record(SuggestionAccepted("s", sid, lengths[0] if lengths else len(text), ts=ts + 0.3))
            if what == "undone":
                store.record(SuggestionUndone("s", sid, ts=ts + 0.5))
            elif lengths[1] is not None:
                store.record(SuggestionKept("s", sid, lengths[1], lengths[0], ts=ts + 0.6))
        store.record(SessionEnded("s", "shutdown", ts=60.0))
    return path


def test_a_database_without_notebooks_reports_its_next_edits(tmp_path, capsys):
    (summary,) = _summaries(capsys, _next_edit_db(tmp_path / "ne.sqlite3"), "-o", tmp_path / "r")
    assert summary["next_edits"] == NEXT_EDITS
    assert "files_vs_notebook_cells" not in summary  # no notebooks: no breakdown, as before
    assert (summary["requests"], summary["shown"], summary["accepted"], summary["chars_saved"]) == (1, 1, 1, 3)


def test_a_database_without_next_edits_reports_zeros_not_missing_keys(tmp_path, capsys):
    db = tmp_path / "completions.sqlite3"
    write_synthetic_db(db, seed=1, requests=20)
    (summary,) = _summaries(capsys, db, "-o", tmp_path / "r")
    assert summary["next_edits"] == NONE
    assert main(["report", str(db), "-o", str(tmp_path / "r")]) == 0
    assert ("  next edits: 0 requests, 0 predicted, 0 shown, 0 accepted, 0 rejected, n/a of shown accepted, "
            "0 characters saved\n") in capsys.readouterr().out


def test_the_text_names_the_next_edits_figures(tmp_path, capsys):
    assert main(["report", str(_next_edit_db(tmp_path / "ne.sqlite3")), "-o", str(tmp_path / "r")]) == 0
    assert ("  next edits: 6 requests, 5 predicted, 4 shown, 2 accepted, 2 rejected (1 accepted and taken back), "
            "50.0% of shown accepted, 9 characters saved; 75.0% of the accepted characters kept\n"
            ) in capsys.readouterr().out


def test_the_page_has_a_next_edits_section_with_its_rows(tmp_path, capsys):
    assert main(["report", str(_next_edit_db(tmp_path / "ne.sqlite3")), "-o", str(tmp_path / "r")]) == 0
    page = (tmp_path / "r" / "index.html").read_text(encoding="utf-8")
    assert "<tr><th>next edits</th><td></td></tr>" in page
    for row in ("<td>next-edit requests</td><td>6</td>", "<td>next edits predicted</td><td>5</td>",
                "<td>next edits shown</td><td>4</td>", "<td>next edits accepted</td><td>2</td>",
                "<td>next edits rejected</td><td>2</td>",
                "<td>next-edit accepts taken back (counted rejected)</td><td>1</td>",
                "<td>next-edit acceptance rate</td><td>50.0%</td>",
                "<td>characters saved by next edits</td><td>9</td>"):
        assert row in page, row


def test_a_comparison_reports_next_edits_on_both_sides(tmp_path, capsys):
    """Beside a database of next edits, one without any says zeros: a column of its own, not a blank."""
    files = tmp_path / "completions.sqlite3"
    write_synthetic_db(files, seed=1, requests=20)
    a, b = _summaries(capsys, _next_edit_db(tmp_path / "ne.sqlite3"), "--against", files, "-o", tmp_path / "r")
    assert (a["next_edits"], b["next_edits"]) == (NEXT_EDITS, NONE)
    page = (tmp_path / "r" / "index.html").read_text(encoding="utf-8")
    assert "<td>next-edit requests</td><td>6</td><td>0</td>" in page
    assert "<td>next-edit acceptance rate</td><td>50.0%</td><td>&ndash;</td>" in page
