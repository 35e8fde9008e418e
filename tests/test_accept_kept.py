"""An accept the user keeps but edits afterwards saves what survives of it: before, all its characters counted saved
in reports and replays however much of it was deleted or rewritten."""

from __future__ import annotations

import json
import sqlite3
import sys
from types import SimpleNamespace

from lsprotocol import types

from lsp_server.cli import main
from lsp_server.features import text_sync
from lsp_server.features.commands import record_accepted
from lsp_server.services.documents import DocumentStore
from lsp_server.services.ledger import IssuedSuggestion, SuggestionLedger
from lsp_server.services.recorder import SessionRecorder
from lsp_server.services.scheduler import InferenceScheduler
from lsp_server.services.undo_watch import Kept, UndoWatch
from telemetry import SessionEnded, SessionStarted, TelemetryStore
from telemetry.events import (DocumentOpened, SuggestionAccepted, SuggestionGenerated, SuggestionKept,
                              SuggestionRequested, SuggestionShown, SuggestionUndone)
from telemetry.lsp_client import LspClient
from telemetry.report import report
from telemetry.schema import SCHEMA_VERSION
from telemetry.simulate import ACCELERATED_DEFAULTS, DID_SHOW, require_ready, server_command, wait_ready
from tests.telemetry_fakes import ListStore
from tests.test_accept_undone import AT, BEFORE, URI, Clock, _accepted, _change

TEXT = "int(os.getcwd())"  # 16 characters, accepted at ``AT`` of ``BEFORE``
HALF = len("int(os.")


def _watch() -> tuple[UndoWatch, Clock, str]:
    clock = Clock()
    watch = UndoWatch(window_s=60, clock=clock)
    return watch, clock, _accepted(watch, AT, AT, TEXT, AT, TEXT)


def _window_passes(watch: UndoWatch, clock: Clock, text: str) -> list[Kept]:
    """A minute on, a keystroke at the document's start: the watch ends there."""
    clock.now += 61
    _change(watch, text, 0, 0, "#")
    assert watch.watched(URI) == []
    return watch.ended()


# -- the watch ---------------------------------------------------------------------------------------------------------

def test_an_accept_left_alone_is_kept_whole_when_its_window_passes():
    watch, clock, text = _watch()
    text, told = _change(watch, text, AT + len(TEXT), AT + len(TEXT), "  # here")  # typed on after it
    assert told == [] and watch.ended() == []  # still watched: nothing ended yet
    assert _window_passes(watch, clock, text) == [Kept("s1", 16, 16)]
    assert watch.ended() == []  # told once


def test_half_of_it_deleted_then_the_window_passes_keeps_half():
    watch, clock, text = _watch()
    text, told = _change(watch, text, AT + HALF, AT + len(TEXT), "")  # `getcwd())` selected and deleted
    assert told == []
    assert _window_passes(watch, clock, text) == [Kept("s1", HALF, 16)]


def test_text_typed_inside_it_is_not_kept_and_a_word_rewritten_in_it_is_lost():
    watch, clock, text = _watch()
    text, _ = _change(watch, text, AT + 4, AT + 4, "path.dirname(")  # typed inside: int(path.dirname(os.getcwd())
    text, _ = _change(watch, text, AT + len("int(path.dirname(os.getcwd())"), AT + len("int(path.dirname(os.getcwd())"),
                      ")")
    assert _window_passes(watch, clock, text) == [Kept("s1", 16, 16)]  # all it wrote is there; the typing is not its
    watch, clock, text = _watch()
    text, _ = _change(watch, text, AT + 7, AT + 13, "getcwdb")  # `getcwd` rewritten `getcwdb`: 6 characters lost
    assert _window_passes(watch, clock, text) == [Kept("s1", 16, 16)]  # same ends: only `b` was written
    watch, clock, text = _watch()
    text, _ = _change(watch, text, AT + 7, AT + 13, "listdir")  # a word written over: lost, what replaced it not kept
    assert _window_passes(watch, clock, text) == [Kept("s1", 10, 16)]


def test_a_line_sent_again_with_one_word_changed_loses_that_word_only():
    """An editor that sends the line up to the change with it: the ends it leaves as they were are kept."""
    line = BEFORE.index("    pr\n")
    for upto, new, kept in ((AT + 13, "    print(os.getcwdb", 16), (AT + 7, "    print(path.", 14)):
        watch, clock, text = _watch()
        text, told = _change(watch, text, line, upto, new)
        assert told == []
        assert _window_passes(watch, clock, text) == [Kept("s1", kept, 16)], new


def test_its_document_closed_or_the_servers_end_reports_it():
    watch, _, text = _watch()
    text, _ = _change(watch, text, AT + HALF, AT + len(TEXT), "")
    assert watch.forget(URI) == [Kept("s1", HALF, 16)]
    assert watch.forget(URI) == [] and watch.end() == []
    watch, _, text = _watch()
    assert watch.end() == [Kept("s1", 16, 16)]


def test_an_accept_taken_back_is_not_reported_kept():
    watch, clock, text = _watch()
    text, told = _change(watch, text, AT, AT + len(TEXT), "")  # Ctrl+Z
    assert told == [("s1", "undone")]
    assert _window_passes(watch, clock, text) == []
    for ended in (watch.forget, lambda _: watch.end()):
        watch, _, text = _watch()
        _change(watch, text, AT, AT + len(TEXT), "")
        assert ended(URI) == []


def test_a_redo_after_the_undo_then_the_window_keeps_it():
    watch, clock, text = _watch()
    text, told = _change(watch, text, AT, AT + len(TEXT), "")
    text, told = _change(watch, text, AT, AT, TEXT)  # Ctrl+Shift+Z
    assert told == [("s1", "acceptedAgain")]
    assert _window_passes(watch, clock, text) == [Kept("s1", 16, 16)]


def test_a_crlf_documents_line_breaks_count_as_the_suggestions():
    watch = UndoWatch()
    text = "a = 1\r\nb"
    assert watch.accepted(URI, "s1", text + " = 2\r\nc = 3\r\n", len(text), " = 2\r\nc = 3", crlf=True)
    assert watch.end() == [Kept("s1", 10, 10)]  # " = 2\nc = 3": 10 UTF-16 units, as accepted_length counts it


def test_a_watch_pushed_out_by_newer_accepts_reports_what_it_kept():
    watch = UndoWatch()
    text = "".join(f"x{n} = {n}\n" for n in range(6))
    for n in range(5):
        assert watch.accepted(URI, f"s{n}", text, text.index(f"x{n}"), f"x{n} = {n}")
    assert watch.ended() == [Kept("s0", 6, 6)]  # the oldest of five: four are watched at once


def test_random_edits_keep_what_a_character_by_character_account_keeps():
    """Each character of the document marked with where it came from, changed as each change says (its unchanged ends
    left as they were): the accepted characters still there are what the watch reports."""
    import random

    from lsp_server.services.documents import AppliedEdit
    from lsp_server.services.positions import Position

    rng = random.Random(11)
    checked = 0
    for _ in range(2000):
        accepted = "".join(rng.choice("abc(). ") for _ in range(rng.randint(2, 12)))
        before, after = "x" * rng.randint(0, 8), "\ny" * rng.randint(0, 4)
        watch = UndoWatch()
        assert watch.accepted(URI, "s1", before + accepted + after, len(before), accepted)
        marked = [(c, False) for c in before] + [(c, True) for c in accepted] + [(c, False) for c in after]
        for _ in range(rng.randint(1, 8)):
            text = "".join(c for c, _ in marked)
            start = rng.randint(0, len(text))
            end = rng.randint(start, min(len(text), start + 5))
            new = "".join(rng.choice("abcxy") for _ in range(rng.randint(0, 4)))
            if rng.random() < 0.3 and end > start:  # the ends sent again as they were
                new = text[start] + new + text[end - 1]
            if accepted in new or watch.changed(URI, [AppliedEdit(start, end, Position(0, 0), Position(0, 0),
                                                                  text[start:end], new)]):
                break  # written again whole, or taken back: not this test's
            removed = text[start:end]
            head = 0
            while head < min(len(removed), len(new)) and removed[head] == new[head]:
                head += 1
            tail = 0
            while tail < min(len(removed), len(new)) - head and removed[-1 - tail] == new[-1 - tail]:
                tail += 1
            marked[start + head:end - tail] = [(c, False) for c in new[head:len(new) - tail]]
        else:
            assert watch.end() == [Kept("s1", sum(m for _, m in marked), len(accepted))]
            checked += 1
    assert checked > 1500


# -- the server's path: text sync and the recorder ---------------------------------------------------------------------

def _server(clock: Clock):
    handlers: dict = {}
    text_sync.register(SimpleNamespace(feature=lambda name, options=None: lambda fn: handlers.setdefault(name, fn)))
    store = ListStore()
    ls = SimpleNamespace(documents=DocumentStore(), recorder=SessionRecorder(store), ledger=SuggestionLedger(),
                         scheduler=InferenceScheduler(), undo_watch=UndoWatch(window_s=60, clock=clock))
    handlers[types.TEXT_DOCUMENT_DID_OPEN](ls, types.DidOpenTextDocumentParams(
        types.TextDocumentItem(uri=URI, language_id="python", version=1, text=BEFORE)))
    line, character = 4, len("    pr")
    change(handlers, ls, 2, line, character, line, character, TEXT)
    ls.ledger.issue(IssuedSuggestion("s1", "completion", URI, 1, TEXT, start=(line, character)))
    assert record_accepted(ls, ("s1",), "tact.acceptSuggestion", "completion")
    return handlers, ls, store


def change(handlers, ls, version: int, l1: int, c1: int, l2: int, c2: int, new: str) -> None:
    rng = types.Range(types.Position(l1, c1), types.Position(l2, c2))
    handlers[types.TEXT_DOCUMENT_DID_CHANGE](ls, types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=version),
        content_changes=[types.TextDocumentContentChangePartial(range=rng, text=new)]))


def _kept(store: ListStore) -> list[tuple[str, int, int | None]]:
    return [(e.suggestion_id, e.kept_length, e.accepted_length) for e in store.events if isinstance(e, SuggestionKept)]


def test_the_server_logs_what_was_kept_at_the_next_change_after_the_window_or_at_the_close():
    clock = Clock()
    handlers, ls, store = _server(clock)
    start = len("    pr")
    change(handlers, ls, 3, 4, start + HALF, 4, start + len(TEXT), "")  # half of it deleted
    clock.now = 30
    change(handlers, ls, 4, 0, 0, 0, 0, "#")
    assert _kept(store) == []  # still in its window
    clock.now = 61
    change(handlers, ls, 5, 0, 0, 0, 0, "#")
    assert _kept(store) == [("s1", HALF, 16)]
    handlers, ls, store = _server(Clock())
    handlers[types.TEXT_DOCUMENT_DID_CLOSE](ls, types.DidCloseTextDocumentParams(
        types.TextDocumentIdentifier(uri=URI)))
    assert _kept(store) == [("s1", 16, 16)]


def test_the_server_logs_no_kept_figure_for_an_accept_taken_back():
    handlers, ls, store = _server(Clock())
    start = len("    pr")
    change(handlers, ls, 3, 4, start, 4, start + len(TEXT), "")
    handlers[types.TEXT_DOCUMENT_DID_CLOSE](ls, types.DidCloseTextDocumentParams(
        types.TextDocumentIdentifier(uri=URI)))
    assert [type(e) for e in store.events if isinstance(e, (SuggestionUndone, SuggestionKept))] == [SuggestionUndone]


# -- the store and the report ------------------------------------------------------------------------------------------

SUGGESTION = "x = compute(values)"  # 19 characters


def _record(path, *events) -> None:
    with TelemetryStore(path) as store:
        store.record(SessionStarted("s", "vscode", "1", "0"))
        store.record(DocumentOpened("s", URI, 1, "python", ""))
        for sid in ("a", "b", "c"):
            store.record(SuggestionRequested("s", sid, "completion", URI, 1, 0, 0))
            store.record(SuggestionGenerated("s", sid, SUGGESTION, "m", "full", 1.0, 3))
            store.record(SuggestionShown("s", sid))
            store.record(SuggestionAccepted("s", sid, len(SUGGESTION)))
        for event in events:
            store.record(event)
        store.record(SessionEnded("s", "shutdown"))


def _summary(path, tmp_path) -> dict:
    return report(path, tmp_path / "out")["summaries"][0]


def test_characters_saved_follow_the_kept_figure(tmp_path):
    """Three accepts of 19 characters: one kept whole, one of which 4 survived, one never followed (all saved)."""
    path = tmp_path / "t.sqlite3"
    _record(path, SuggestionKept("s", "a", 19, 19), SuggestionKept("s", "b", 4, 19))
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT id, kept_length FROM suggestions ORDER BY id").fetchall() == [
            ("a", 19), ("b", 4), ("c", None)]
    summary = _summary(path, tmp_path)
    assert summary["chars_saved"] == 19 + 4 + 19
    assert (summary["kept_chars"], summary["accepted_chars_followed"], summary["kept_rate"]) == (23, 38, 0.6053)
    page = (tmp_path / "out" / "index.html").read_text()
    assert "share of accepted characters kept" in page and "60.5%" in page


def test_a_kept_figure_for_an_accept_taken_back_or_accepted_again_since_is_not_counted(tmp_path):
    path = tmp_path / "t.sqlite3"
    _record(path, SuggestionUndone("s", "a"), SuggestionKept("s", "a", 19, 19),  # a replay's undo the watch missed
            SuggestionKept("s", "b", 4, 19), SuggestionAccepted("s", "b", len(SUGGESTION)))  # accepted again since
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT id, kept_length FROM suggestions ORDER BY id").fetchall() == [
            ("a", None), ("b", None), ("c", None)]
    summary = _summary(path, tmp_path)
    assert summary["chars_saved"] == 2 * 19 and summary["kept_rate"] is None


def test_a_version_3_database_migrates_to_4_and_keeps_its_rows(tmp_path):
    from sqlite_utils import Database

    from telemetry.schema import MIGRATIONS, migrate

    path = tmp_path / "v3.sqlite3"
    db = Database(sqlite3.connect(path))
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute("INSERT INTO meta (key, value) VALUES ('schema_version', '0')")
    for step in MIGRATIONS[:3]:
        step(db)
    db.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    db.execute("INSERT INTO sessions (id, started_at, ended_at) VALUES ('s', 1.0, 2.0)")
    db.execute("INSERT INTO suggestions (id, session_id, kind, requested_at, text, outcome, accepted_length, shown_at,"
               " undone_at) VALUES ('a', 's', 'completion', 1.5, 'abc', 'accepted', 3, 1.5, NULL)")
    db.conn.commit()
    summary = _summary(path, tmp_path)  # read from an upgraded copy: no kept figure, all of it saved
    assert (summary["chars_saved"], summary["kept_rate"]) == (3, None)
    assert migrate(db) == SCHEMA_VERSION == 4
    assert db.execute("SELECT id, outcome, accepted_length, undone_at, kept_length FROM suggestions").fetchall() == [
        ("a", "accepted", 3, None, None)]
    assert db.execute("SELECT value FROM meta").fetchall() == [("4",)]
    db.conn.close()


# -- a real session, and its replay ------------------------------------------------------------------------------------

def _edited_session(tiny_lm_dir, db) -> tuple[str, str, int]:
    """VS Code's flow on the real server: a suggestion shown and accepted (written, then its command), then its first
    half deleted (a change of its own, not one continuing the insertion), and the session ended; returns (its id, its
    text, the UTF-16 units deleted)."""
    with LspClient(server_command(sys.executable, str(tiny_lm_dir), str(db))) as client:
        client.initialize({**ACCELERATED_DEFAULTS, "acceptanceGate": False, "stopThreshold": 1.01, "maxNewTokens": 8},
                          client_name="vscode")
        require_ready(wait_ready(client))
        client.did_open(URI, BEFORE, 1, "python")
        items = client.inline_completion(URI, 4, 6)
        assert items and len(items[0]["insertText"]) >= 4, items
        item = items[0]
        sid = item["command"]["arguments"][0]
        client.notify(DID_SHOW, {"id": sid})
        rng = item["range"]
        client.did_change(URI, 2, [{"range": rng, "text": item["insertText"]}])
        client.request("workspace/executeCommand", {"command": "tact.acceptSuggestion", "arguments": [sid]})
        start = rng["start"]["character"]
        gone = len(item["insertText"]) // 2
        client.did_change(URI, 3, [{"range": {"start": {"line": 4, "character": start},
                                              "end": {"line": 4, "character": start + gone}}, "text": ""}])
        client.shutdown()
    return sid, item["insertText"], gone


def test_an_accept_half_deleted_saves_half_in_the_report_and_its_replay_measures_the_same(tiny_lm_dir, tmp_path,
                                                                                         capsys):
    db = tmp_path / "vs.sqlite3"
    sid, written, gone = _edited_session(tiny_lm_dir, db)
    with sqlite3.connect(db) as conn:
        text, accepted, kept, undone = conn.execute(
            "SELECT text, accepted_length, kept_length, undone_at FROM suggestions WHERE id = ?", [sid]).fetchone()
        events = [t for (t,) in conn.execute("SELECT type FROM suggestion_events WHERE suggestion_id = ? ORDER BY seq",
                                             [sid])]
    assert undone is None and events[-1] == "suggestion_kept"
    assert written.endswith(text) and kept == accepted - (gone - (len(written) - len(text))) < accepted
    assert main(["report", str(db), "--output", str(tmp_path / "r"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)["summaries"][0]
    assert (summary["accepted"], summary["chars_saved"], summary["kept_chars"]) == (1, kept, kept)
    assert main(["report", str(db), "--output", str(tmp_path / "r")]) == 0
    said = f"{kept} characters saved; {100 * kept / summary['accepted_chars_followed']:.1f}% of the accepted characters"
    assert said in capsys.readouterr().out

    out = tmp_path / "replay.sqlite3"
    assert main(["replay", str(db), "-o", str(out), "--model", str(tiny_lm_dir), "--json"]) == 0
    (session,) = json.loads(capsys.readouterr().out)["sessions"]
    assert (session["accepted"], session["chars_saved"]) == (1, kept)  # what the replayed server measured
    with sqlite3.connect(out) as conn:
        assert conn.execute("SELECT s.kept_length, r.chars_saved FROM suggestions s JOIN replay_suggestions r"
                            " ON r.suggestion_id = s.id WHERE r.source_suggestion_id = ?", [sid]).fetchall() == [
            (kept, kept)]
