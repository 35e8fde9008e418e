"""SessionRecorder: what goes to which telemetry store when recording moves or a document was never recorded."""

from __future__ import annotations

from lsp_server.services.recorder import SessionRecorder
from tests.telemetry_fakes import ListStore

URI = "file:///project/a.py"


def _kinds(store: ListStore) -> list[tuple[str, str | None]]:
    return [(type(e).__name__, getattr(e, "suggestion_id", None)) for e in store.events]


def test_a_suggestion_in_a_document_the_store_never_saw_opened_stays_out_of_it():
    """A document opened while telemetry was off: its suggestions' requests (the pending edit's text), answers and
    outcomes were recorded once telemetry was on, though the document itself rightly was not."""
    store = ListStore()
    recorder = SessionRecorder(store)
    recorder.document_opened(URI, 1, "python", "x = 1\n")
    for sid, uri in (("kept", URI), ("secret", "file:///project/secret.py")):
        recorder.requested(sid, "completion", uri, 1, 0, 5, "invoked", {})
        recorder.generated(sid, "2", "m", "full", 1.0, 1, None, None, {})
        recorder.shown(sid)
        recorder.accepted(sid, 1, partial=False)
    assert {sid for _, sid in _kinds(store) if sid} == {"kept"}
    assert len([k for k in _kinds(store) if k[1] == "kept"]) == 4


def test_a_suggestion_requested_before_recording_moved_keeps_its_later_events_out_of_the_new_store():
    """Its shown and accepted events landed in the new database with no request there to belong to."""
    old, new = ListStore(), ListStore()
    recorder = SessionRecorder(old)
    recorder.document_opened(URI, 1, "python", "x = 1\n")
    recorder.requested("before", "completion", URI, 1, 0, 5, "invoked", {})
    assert recorder.switch(new) is old
    recorder.document_opened(URI, 1, "python", "x = 1\n")
    recorder.shown("before")
    recorder.requested("after", "completion", URI, 1, 0, 5, "invoked", {})
    recorder.shown("after")
    recorder.accepted("feedback-only", 3, partial=False)  # an id it never saw requested: logged, as before
    assert _kinds(new) == [("DocumentOpened", None), ("SuggestionRequested", "after"), ("SuggestionShown", "after"),
                           ("SuggestionAccepted", "feedback-only")]
    # ended there as it was left: its row would say for good that no outcome was known yet
    assert [k for k in _kinds(old) if k[1]] == [("SuggestionRequested", "before"), ("SuggestionCancelled", "before")]
    assert old.events[-1].reason == "telemetryMoved"


def test_a_session_end_goes_only_where_the_session_wrote():
    unused, used = ListStore(), ListStore()
    recorder = SessionRecorder(unused)
    recorder.session_ended("telemetry settings changed")
    assert unused.events == []
    recorder.switch(used)
    recorder.settings_changed({})
    recorder.session_ended("shutdown")
    assert [type(e).__name__ for e in used.events] == ["SettingsChanged", "SessionEnded"]


def test_events_held_for_the_settings_go_to_the_store_they_name_or_nowhere():
    from lsp_server.services.recorder import HeldStore
    from telemetry import NullStore

    for target in (ListStore(), NullStore("telemetry is off")):
        recorder = SessionRecorder(HeldStore(limit=3))
        recorder.document_opened(URI, 1, "python", "x = 1\n")
        recorder.requested("s1", "completion", URI, 1, 0, 5, "invoked", {})
        recorder.shown("s1")
        recorder.accepted("s1", 1, partial=False)  # past the limit: dropped and counted
        assert recorder.stats["dropped"] == 1
        recorder.switch(target)
        recorder.rejected("s1", "superseded")
        if isinstance(target, ListStore):  # held in order, then live, as one session's events
            assert _kinds(target) == [("DocumentOpened", None), ("SuggestionRequested", "s1"), ("SuggestionShown", "s1"),
                                      ("SuggestionRejected", "s1")]
        else:
            # nothing reached it: neither the held events nor the later one of a suggestion they requested
            assert recorder.documents == set() and target.stats.dropped == 0


def test_a_job_raising_a_base_exception_is_logged_failed_and_answered_and_an_interrupt_still_ends_the_process():
    """logged_job caught Exception alone: a job (a completion, a next edit) raising another BaseException left its
    suggestion without an end in telemetry, and the error escaped the handler, which never answered the editor."""
    import pytest

    from lsp_server.services.scheduler import CancelToken

    class TornDown(BaseException):
        pass

    def torn(token):
        raise TornDown("decoder torn down")

    def interrupted(token):
        raise KeyboardInterrupt

    store = ListStore()
    recorder = SessionRecorder(store)
    assert recorder.logged_job("s1", torn, "next-edit prediction")(CancelToken()) is None
    assert [(type(e).__name__, e.error) for e in store.events] == [("SuggestionFailed", "TornDown: decoder torn down")]
    with pytest.raises(KeyboardInterrupt):
        recorder.logged_job("s2", interrupted, "completion")(CancelToken())


def test_a_database_deleted_while_recording_is_told_in_the_status_reason(tmp_path):
    """The store makes a deleted database again at its path; the server's `telemetryReason` said nothing of it, so
    the user never learnt that what was recorded before was gone."""
    from telemetry.store import TelemetryStore

    path = tmp_path / "t.sqlite3"
    recorder = SessionRecorder(TelemetryStore(path))
    try:
        recorder.document_opened(URI, 1, "python", "x = 1\n")
        assert recorder.store.flush() and recorder.telemetry_reason is None
        path.unlink()
        recorder.document_opened("file:///project/b.py", 1, "python", "y = 2\n")
        assert recorder.store.flush()
        assert path.exists() and "deleted" in (recorder.telemetry_reason or ""), recorder.telemetry_reason
    finally:
        recorder.close()


def test_what_is_kept_out_of_the_store_stays_bounded():
    """Each request in a document the store never saw opened was remembered for good: after telemetry moved (off, or
    to another database) with a document open, the set grew by one id a request for the rest of the session. The
    newest stay out still."""
    from lsp_server.services.recorder import MAX_TRACKED_SUGGESTIONS

    store = ListStore()
    recorder = SessionRecorder(store)
    for n in range(3 * MAX_TRACKED_SUGGESTIONS):
        recorder.requested(f"s{n}", "completion", URI, 1, 0, 5, "automatic", {})
    assert len(recorder.kept_out) <= 2 * MAX_TRACKED_SUGGESTIONS
    newest = f"s{3 * MAX_TRACKED_SUGGESTIONS - 1}"
    recorder.shown(newest)
    assert not store.events


def test_openings_held_for_the_settings_are_bounded_and_past_the_bound_the_recording_stops():
    """An editor that never says `initialized` while documents open: the held openings, with their whole text, grew
    without a bound. Past it nothing more is held but the session's end, the status says why, and should the settings
    come after all, no document held or dropped gets later events (the held ones missed edits since the stop)."""
    from lsp_server.services.recorder import HeldStore
    from telemetry.store import WaitingTextBound

    held = HeldStore(text=WaitingTextBound(anchors=3, chars=10**6))
    recorder = SessionRecorder(held)
    for n in range(5):
        recorder.document_opened(f"file:///project/m{n}.py", 1, "python", "x = 1\n")
    assert [type(e).__name__ for e in held.events] == ["DocumentOpened"] * 3
    recorder.requested("s1", "completion", "file:///project/m0.py", 1, 0, 5, "invoked", {})  # after the stop
    assert len(held.events) == 3 and recorder.stats["not_recorded"] == 3
    assert held.reason is not None and "more than 3 documents" in held.reason and "3 events not recorded" in held.reason
    assert recorder.telemetry_reason == held.reason
    target = ListStore()
    recorder.switch(target)
    recorder.requested("s2", "completion", "file:///project/m0.py", 1, 0, 5, "invoked", {})
    recorder.document_opened("file:///project/later.py", 1, "python", "y = 2\n")  # opened after: recorded whole
    recorder.requested("s3", "completion", "file:///project/later.py", 1, 0, 5, "invoked", {})
    assert _kinds(target) == [("DocumentOpened", None)] * 4 + [("SuggestionRequested", "s3")]


def test_the_characters_held_for_the_settings_are_bounded_too():
    from lsp_server.services.recorder import HeldStore
    from telemetry.store import WaitingTextBound

    held = HeldStore(text=WaitingTextBound(anchors=100, chars=50))
    recorder = SessionRecorder(held)
    recorder.document_opened("file:///project/big.py", 1, "python", "x" * 200)  # alone, larger than the bound: held
    recorder.document_opened("file:///project/small.py", 1, "python", "y = 1\n")
    assert [e.uri for e in held.events] == ["file:///project/big.py"] and held.stopped
    recorder.session_ended("shutdown")
    assert type(held.events[-1]).__name__ == "SessionEnded"


def test_moving_the_recording_while_the_worker_records_leaves_every_suggestion_whole_in_one_database(tmp_path):
    """The inference worker records a suggestion's events while the event loop moves the recording (a settings
    change): an event judged by the old store's ids went into the new database (a row with no request), and a request
    that came as the old store's open suggestions were ended stayed open there for good (without the lock this test
    saw 1-7 such rows and 1-6 open ones in each of five runs)."""
    import sqlite3
    import sys
    import threading
    import time

    from telemetry.store import TelemetryStore

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    recorder = SessionRecorder(TelemetryStore(tmp_path / "s0.sqlite3"))
    recorder.document_opened(URI, 1, "python", "x = 1\n")
    stop, made = threading.Event(), []

    def worker() -> None:
        while not stop.is_set():
            sid = f"s{len(made):07d}"
            made.append(sid)
            recorder.requested(sid, "completion", URI, 1, 0, 0, "automatic", {})
            recorder.generated(sid, "abc", "m", "full", 1.0, 3, None, "eos", {})
            recorder.gated(sid, 2, "show", None, None, None, {})
            recorder.cancelled(sid, "stale")
            if len(made) % 20 == 0:  # a worker's pace, not a flood: a full queue drops events of its own accord
                time.sleep(0.001)

    thread = threading.Thread(target=worker)
    thread.start()
    old_stores = []
    try:
        for n in range(1, 41):
            time.sleep(0.01)
            old_stores.append(recorder.switch(TelemetryStore(tmp_path / f"s{n}.sqlite3")))
            recorder.document_opened(URI, 1, "python", "x = 1\n")  # carried into the new database, as the server does
    finally:
        stop.set()
        thread.join()
        sys.setswitchinterval(interval)
        for store in old_stores:
            store.close()
        recorder.close()
    assert sum(store.stats.dropped for store in [*old_stores, recorder.store]) == 0
    orphans = open_ones = rows = 0
    for n in range(41):
        with sqlite3.connect(tmp_path / f"s{n}.sqlite3") as conn:
            rows += conn.execute("SELECT COUNT(*) FROM suggestions").fetchone()[0]
            orphans += conn.execute("SELECT COUNT(*) FROM suggestions WHERE requested_at IS NULL").fetchone()[0]
            open_ones += conn.execute("SELECT COUNT(*) FROM suggestions WHERE outcome IS NULL").fetchone()[0]
    assert len(made) > 1000 and rows > 1000  # the worker recorded throughout
    assert (orphans, open_ones) == (0, 0)
