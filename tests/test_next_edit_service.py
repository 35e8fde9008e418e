"""The server's next-edit service without pygls: history from the document store, ranges, gating, logging."""

from __future__ import annotations

import random

import pytest

from lsp_server.config import Settings
from lsp_server.services.documents import DocumentStore
from lsp_server.services.ledger import SuggestionLedger
from lsp_server.services.next_edit import NextEditService, line_history, trimmed_range
from lsp_server.services.positions import LineIndex, Position, Range
from lsp_server.services.recorder import SessionRecorder
from lsp_server.services.scheduler import InferenceScheduler
from models.fim import to_lf
from models.next_edit.examples import Edit, apply_all, apply_edit, lines_of
from models.next_edit.model import NextEditPrediction
from models.next_edit.prompt import window_around
from tests.telemetry_fakes import ListStore

URI = "file:///project/shapes.py"
TEXT = "def area(width, height):\n    check(width)\n    return width * height\n"


class FakeModel:
    """Predicts a fixed line edit with a fixed confidence; remembers what it was asked."""

    version = "fake-next-edit"

    def __init__(self, edit: Edit | None, confidence: float = 0.9) -> None:
        self.edit, self.confidence = edit, confidence
        self.calls: list[tuple] = []

    def predict_edit(self, history, current, cursor_line, path="", should_cancel=None, lines=None):
        self.calls.append((history, current, cursor_line))
        if self.edit is None:
            return None
        return NextEditPrediction(self.edit, self.confidence, window_around(current, cursor_line), 10, 1.0, 0, 0)


def _rename_width(store: DocumentStore) -> None:
    """Rename the parameter `width` to `w` at the def, keystroke by keystroke (select + type, then backspaces)."""
    store.open(URI, "python", 1, TEXT)
    store.change(URI, 2, [(Range(Position(0, 9), Position(0, 14)), "w")], now=10.0)


def _service(model) -> tuple[NextEditService, ListStore, SuggestionLedger]:
    store = ListStore()
    ledger = SuggestionLedger()
    recorder = SessionRecorder(store)
    recorder.document_opened(URI, 1, "python", TEXT)  # a suggestion's events go to a store that holds its document
    service = NextEditService(InferenceScheduler(), ledger, recorder)
    service.use_model(model)
    return service, store, ledger


def test_line_history_undoes_records_back_to_the_opened_text():
    docs = DocumentStore()
    _rename_width(docs)
    docs.change(URI, 3, [(Range(Position(1, 10), Position(1, 15)), "w")], now=20.0)  # a separate edit
    doc = docs.get(URI)
    history = line_history(doc.text, doc.history.recent())
    assert [e.start_line for e in history] == [0, 1]
    assert history[0].original == "def area(width, height):\n" and history[0].updated == "def area(w, height):\n"
    assert apply_all(TEXT, history) == doc.text


@pytest.mark.parametrize("eol", ["\n", "\r\n", "\r"])
def test_line_history_replays_to_the_text_whatever_the_line_break(eol):
    """Lines were counted by "\\n" alone: in a document broken by lone CRs, Enter pressed mid-line lost the new line."""
    text = f"def f(a, b):{eol}    return a + b{eol}"
    docs = DocumentStore()
    docs.open(URI, "python", 1, text)
    docs.change(URI, 2, [(Range(Position(1, 12), Position(1, 12)), eol + "    ")], now=1.0)  # Enter, then indent
    docs.change(URI, 3, [(Range(Position(2, 4), Position(2, 4)), "c")], now=1.1)
    doc = docs.get(URI)
    history = line_history(doc.text, doc.history.recent())
    assert history and apply_all(text, history) == doc.text


def test_line_history_stops_where_the_records_no_longer_fit_the_text():
    docs = DocumentStore()
    _rename_width(docs)
    doc = docs.get(URI)
    records = doc.history.recent()
    assert line_history("something else entirely\n", records) == []


@pytest.mark.parametrize("text,change", [
    ("foo(1)\nbar = 2\nfoo(1)\nbaz = 3\n", (Range(Position(0, 6), Position(0, 6)), "x\r")),
    ("def f(width):\x0c    return width\nfoo(1)\nbar = 2\n", (Range(Position(0, 13), Position(0, 14)), "\n")),
])
def test_a_record_whose_line_edit_does_not_rebuild_the_text_ends_the_walk(text, change):
    """A CR typed before an LF makes one CRLF of them (no line is added): the line edit took the next line for
    inserted too, and the predictors served that line again elsewhere ("foo(1)x" plus a stray "bar = 2"). A form
    feed replaced by a line break: Python's lines and LSP's disagree in the text before, and the edit said a line
    was inserted there."""
    docs = DocumentStore()
    docs.open(URI, "python", 1, text)
    docs.change(URI, 2, [change], now=1.0)
    doc = docs.get(URI)
    history = line_history(doc.text, doc.history.recent())
    assert history == []  # the one record does not rebuild the text: the walk ends before it
    service, _, _ = _service(None)
    for predictor in ("ranker", "heuristic"):
        found = service.predict(doc.text, doc.history.recent(), Position(0, 0), URI, predictor=predictor,
                                ranker_threshold=0.0)
        assert found is None  # no history to go on: nothing served, least of all a stray "bar = 2"


def test_trimmed_range_keeps_only_the_changed_characters():
    text = "x = 1\n    check(width)\n"
    start, end, new_text = trimmed_range(text, Edit(1, 2, "    check(width)\n", "    check(w)\n"))
    assert (start, end, new_text) == (Position(1, 10), Position(1, 15), "w")
    start, end, new_text = trimmed_range(text, Edit(2, 2, "", "done()\n"))
    assert (start, end, new_text) == (Position(2, 0), Position(2, 0), "done()\n")


def _editor_applies(text: str, start: Position, end: Position, new_text: str) -> str:
    """What the editor does with a served range (a position outside the document raises)."""
    index = LineIndex(text)
    return text[:index.offset_at(start, clamp=False)] + new_text + text[index.offset_at(end, clamp=False):]


@pytest.mark.parametrize("eol", ["\n", "\r\n", "\r"])
@pytest.mark.parametrize("text,edit,want", [
    # the ranker's insert candidate repeating a line typed, without a line break, on the empty last line
    ("def a():|    pass|def b():|", Edit(2, 2, "", "    log()"), "def a():|    pass|    log()|def b():|"),
    # the model's line after an unterminated last line
    ("def f():|    a = 1|    b = 2", Edit(3, 3, "", "    c = 3"), "def f():|    a = 1|    b = 2|    c = 3"),
    ("x = 1||b = 2|", Edit(1, 2, "|", "y = 1"), "x = 1|y = 1|b = 2|"),  # the trim must not split a CRLF
    ("x = 1|y = 2|", Edit(0, 1, "x = 1|", "x = 1|z = 0"), "x = 1|z = 0|y = 2|"),
])
def test_the_served_range_gives_the_text_apply_edit_gives_whatever_the_line_break(eol, text, edit, want):
    """An updated block without a final line break was glued to the next line (mid-file, or after an unterminated
    last line, at a position past the end), and CRLF documents got a bare LF or a range inside a CRLF."""
    text, want = text.replace("|", eol), want.replace("|", eol)
    edit = Edit(edit.start_line, edit.end_line, edit.original.replace("|", eol), edit.updated.replace("|", eol))
    assert apply_edit(text, edit) == want
    assert _editor_applies(text, *trimmed_range(text, edit)) == want


@pytest.mark.parametrize("text,edit", [
    ("x = 1\r\ny = 2\r\n", Edit(0, 1, "x = 1\r\n", "x = 1\n")),  # a line given another break (mixed documents)
    ("x = 1\r\ny = 2\r\n", Edit(0, 1, "x = 1\r\n", "x = 1\ry = 9\r\n")),
])
def test_the_trimmed_range_never_ends_inside_a_crlf(text, edit):
    """No LSP position lies between a CR and its LF: a range cut there named the wrong character."""
    assert _editor_applies(text, *trimmed_range(text, edit)) == apply_edit(text, edit)


def test_the_served_range_agrees_with_apply_edit_on_random_edits():
    """A fixed-seed fuzz over line breaks, unterminated last lines and updated blocks with or without a final break."""
    words = ["width", "w", "x", "(", ")", " ", "\t", "é", "😀", "foo_bar", ",", "="]
    rng = random.Random(1234)
    checked = 0
    for _ in range(400):
        eol = rng.choice(["\n", "\r\n", "\r"])
        lines = ["".join(rng.choice(words) for _ in range(rng.randint(0, 4))) for _ in range(rng.randint(0, 5))]
        text = eol.join(lines) + (eol if rng.random() < 0.6 else "")
        have = lines_of(text)
        s = rng.randint(0, len(have))
        e = rng.randint(s, min(len(have), s + 2))
        new_lines = [(have[s + i].rstrip("\r\n") if s + i < e and rng.random() < 0.5 else rng.choice(words))
                     for i in range(rng.randint(0, 3))]
        updated = "".join(ln + eol for ln in new_lines)
        if updated and rng.random() < 0.3:
            updated = updated[:-len(eol)]  # a predictor's block without its final line break
        edit = Edit(s, e, "".join(have[s:e]), updated)
        served = trimmed_range(text, edit)
        if served is None:  # nothing to serve: only for an edit that changes nothing
            assert apply_edit(text, edit) == text, (text, edit)
        else:
            assert _editor_applies(text, *served) == apply_edit(text, edit), (text, edit)
        checked += 1
    assert checked == 400


@pytest.mark.parametrize("eol", ["\n", "\r\n", "\r"])
def test_a_re_insert_that_undoes_the_last_edit_is_never_served(eol):
    """In CR documents the re-insert of a line just deleted was not recognised as an undo (apply_edit wrote an LF
    after the CR) and the ranker served it."""
    text = eol.join(["def f(a):", "    bar = 1", "    baz = 2", "    return a", ""])
    docs = DocumentStore()
    docs.open(URI, "python", 1, text)
    docs.change(URI, 2, [(Range(Position(1, 11), Position(1, 11)), eol + "    foo = 0")], now=1.0)  # a new line
    docs.change(URI, 3, [(Range(Position(2, 0), Position(3, 0)), "")], now=10.0)  # then deleted again
    docs.flush(URI)
    doc = docs.get(URI)
    service, _store, _ledger = _service(None)
    before_delete = eol.join(["def f(a):", "    bar = 1", "    foo = 0", "    baz = 2", "    return a", ""])
    reinsert = Edit(1, 2, f"    bar = 1{eol}", f"    bar = 1{eol}    foo = 0{eol}")
    for predictor in ("ranker", "heuristic"):
        found = service.predict(doc.text, doc.history.recent(), Position(1, 0), URI, predictor=predictor,
                                ranker_threshold=0.0)
        assert found is None or (found.answer.edit != reinsert
                                 and _editor_applies(doc.text, found.start, found.end, found.new_text) != before_delete)


def _typed_in(lines: list[str], eols: list[str], change: tuple[Range, str]):
    """The document ``lines`` (each ended by its own break) after one change, with its history."""
    docs = DocumentStore()
    docs.open(URI, "python", 1, "".join(ln + eol for ln, eol in zip(lines, eols)))
    docs.change(URI, 2, [change], now=1.0)
    return docs.get(URI)


@pytest.mark.parametrize("predictor", ["ranker", "heuristic"])
@pytest.mark.parametrize("eols", ["CRLF " * 6, "CR " * 6, "LF LF CRLF LF CRLF CRLF", "CRLF CRLF LF CR LF LF"])
@pytest.mark.parametrize("lines,change,predicts", [
    # a comment typed at a line's end: nothing like it elsewhere
    (["import os", "x = compute(1)", "z = 3", "def f():", "    return 2", "y = 1"],
     (Range(Position(1, 14), Position(1, 14)), "  # done"), ()),
    # a line commented out: the same line again further down
    (["def f(a):", "    print(a)", "    return a", "def g(a):", "    print(a)", "    return a"],
     (Range(Position(1, 4), Position(1, 4)), "# "), ("ranker",)),
    # a parameter renamed: its uses below
    (["def f(width):", "    check(width)", "    return width * 2", "def g():", "    pass", "y = 1"],
     (Range(Position(0, 6), Position(0, 11)), "w"), ("ranker", "heuristic")),
])
def test_line_breaks_change_how_a_next_edit_is_written_not_which_it_is(predictor, eols, lines, change, predicts):
    """The ranker and the baseline read the document's CRs (the model reads LF): in CRLF and CR documents text
    typed at a line's end was suggested at the end of the next line, whatever it held (its CR was taken for
    punctuation to anchor on), and in documents mixing line breaks a line ending in another break than the edited
    one was passed over (its break is part of the context the ranker matches), so the edit went elsewhere."""
    eols = [{"LF": "\n", "CRLF": "\r\n", "CR": "\r"}[e] for e in eols.split()]
    service, _, _ = _service(None)
    lf = _typed_in(lines, ["\n"] * len(lines), change)
    doc = _typed_in(lines, eols, change)
    want, found = (service.predict(d.text, d.history.recent(), Position(1, 0), URI, predictor=predictor,
                                   ranker_threshold=0.0) for d in (lf, doc))
    assert (want is not None) == (predictor in predicts)  # what the LF document gives: the cases compare edits
    assert (found is None) == (want is None)
    if found is not None:
        assert (found.start, found.end, to_lf(found.new_text)) == (want.start, want.end, want.new_text)
        assert found.answer.confidence == want.answer.confidence  # the ranker saw the same features
        written = _editor_applies(doc.text, found.start, found.end, found.new_text)
        assert written == apply_edit(doc.text, found.answer.edit)
        assert lines_of(written)[found.start.line].endswith(eols[found.start.line])  # the line keeps its own break


def test_request_issues_a_confident_edit_and_logs_it():
    docs = DocumentStore()
    _rename_width(docs)
    model = FakeModel(Edit(1, 2, "    check(width)\n", "    check(w)\n"), confidence=0.8)
    service, store, ledger = _service(model)
    pending = service.request(docs.get(URI), 2, Position(0, 10),
                              Settings(next_edit_threshold=0.5, next_edit_predictor="model"))
    result = pending.future.result(timeout=10)
    assert result is not None and result.new_text == "w" and (result.start, result.end) == (Position(1, 10), Position(1, 15))
    history, current, cursor_line = model.calls[0]
    assert cursor_line == 0 and history[-1].updated == "def area(w, height):\n"
    assert ledger.get(pending.suggestion_id) is None  # not the editor's until it is sent
    assert service.issue(pending, docs.get(URI), 2, result)
    assert ledger.get(pending.suggestion_id).kind == "next_edit" and service.counts["issued"] == 1
    events = [e for e in store.events if type(e).__name__.startswith("Suggestion")]
    assert [type(e).__name__ for e in events] == ["SuggestionRequested", "SuggestionGenerated"]
    assert events[0].kind == "next_edit"
    # the model's own figures: it wrote 10 tokens (FakeModel) and ended its rewrite (once logged as 0 tokens)
    assert (events[1].tokens, events[1].stop_reason) == (10, "eos")


def test_an_edit_the_editor_never_gets_is_logged_cancelled_and_never_issued():
    """A prediction used to be issued inside its job: one the handler then dropped (the editor cancelled the
    request, or the document changed before the answer went out) stayed in the ledger, and the next edit issued
    logged it as rejected ("superseded") although the user never saw it."""
    docs = DocumentStore()
    _rename_width(docs)
    settings = Settings(next_edit_threshold=0.5, next_edit_predictor="model")
    service, store, ledger = _service(FakeModel(Edit(1, 2, "    check(width)\n", "    check(w)\n"), confidence=0.8))
    cancelled = service.request(docs.get(URI), 2, Position(0, 10), settings)
    assert cancelled.future.result(timeout=10) is not None
    cancelled.abandon(service.recorder, "client")  # $/cancelRequest after the job finished
    stale = service.request(docs.get(URI), 2, Position(0, 10), settings)
    result = stale.future.result(timeout=10)
    docs.change(URI, 3, [(Range(Position(2, 0), Position(2, 0)), "#")], now=11.0)  # before the answer goes out
    assert not service.issue(stale, docs.get(URI), 2, result)
    shown = service.request(docs.get(URI), 3, Position(0, 10), settings)
    assert service.issue(shown, docs.get(URI), 3, shown.future.result(timeout=10))
    ends = [(type(e).__name__, e.suggestion_id, getattr(e, "reason", None)) for e in store.events
            if type(e).__name__ in ("SuggestionCancelled", "SuggestionRejected")]
    assert ends == [("SuggestionCancelled", cancelled.suggestion_id, "client"),
                    ("SuggestionCancelled", stale.suggestion_id, "stale")]
    assert ledger.get(cancelled.suggestion_id) is None and ledger.get(stale.suggestion_id) is None
    assert service.counts["issued"] == 1


def test_request_below_the_threshold_is_hidden_and_logged():
    docs = DocumentStore()
    _rename_width(docs)
    service, store, ledger = _service(FakeModel(Edit(1, 2, "    check(width)\n", "    check(w)\n"), confidence=0.2))
    pending = service.request(docs.get(URI), 2, Position(0, 10),
                              Settings(next_edit_threshold=0.5, next_edit_predictor="model"))
    assert pending.future.result(timeout=10) is None
    gated = [e for e in store.events if type(e).__name__ == "SuggestionGated"]
    assert len(gated) == 1 and gated[0].decision == "hide" and gated[0].score == 0.2
    assert ledger.get(pending.suggestion_id) is None
    assert service.counts["hidden"] == 1


def test_outdated_version_binary_text_or_no_history_give_nothing():
    docs = DocumentStore()
    _rename_width(docs)
    model = FakeModel(Edit(1, 2, "    check(width)\n", "    check(w)\n"))
    service, store, _ = _service(model)
    assert service.request(docs.get(URI), 1, Position(0, 0), Settings()) is None  # version 2 is current
    assert service.request(docs.get(URI), 2, Position(0, 0), Settings(next_edit=False)) is None
    docs.open("file:///project/fresh.py", "python", 1, TEXT)
    pending = service.request(docs.get("file:///project/fresh.py"), 1, Position(0, 0), Settings())
    assert pending.future.result(timeout=10) is None and model.calls == []  # no history: the model is not asked
    docs.open("file:///project/blob.bin", "python", 1, "\x00\x01\x02" * 100)
    assert service.request(docs.get("file:///project/blob.bin"), 1, Position(0, 0), Settings()) is None


def test_without_a_ranker_the_heuristic_answers_and_status_says_why(tmp_path):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "ranker.json").write_text("{not json")
    docs = DocumentStore()
    _rename_width(docs)
    service, store, _ = _service(None)
    pending = service.request(docs.get(URI), 2, Position(0, 10),
                              Settings(next_edit_predictor="ranker", next_edit_ranker_path=str(tmp_path / "broken")))
    result = pending.future.result(timeout=10)
    assert result is not None and result.answer.predictor == "heuristic" and result.new_text == "w"
    assert service.ranker is None and "not a valid edit ranker" in service.ranker_reason
    generated = [e for e in store.events if type(e).__name__ == "SuggestionGenerated"]
    assert len(generated) == 1 and generated[0].model == "heuristic"
    # the shipped ranker, once the setting is cleared: its version is what telemetry records
    pending = service.request(docs.get(URI), 2, Position(0, 10), Settings(next_edit_predictor="ranker"))
    result = pending.future.result(timeout=10)
    assert result is not None and result.answer.predictor == "ranker" and service.ranker_reason is None
    generated = [e for e in store.events if type(e).__name__ == "SuggestionGenerated"]
    assert generated[-1].model == service.ranker.version and generated[-1].policy == "ranker"


def test_a_missing_model_is_reported_not_raised(tmp_path):
    service = NextEditService(InferenceScheduler(), SuggestionLedger(), SessionRecorder(ListStore()))
    assert service.ensure_model(str(tmp_path / "nowhere")) is None
    assert "no next-edit model" in service.reason
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "graphs.json").write_text("{not json")
    assert service.ensure_model(str(tmp_path / "broken")) is None
    assert service.reason
    docs = DocumentStore()
    _rename_width(docs)
    assert service.predict(docs.get(URI).text, docs.get(URI).history.recent(), Position(0, 0), URI,
                           str(tmp_path / "broken"), predictor="model") is None


def test_an_edit_that_changes_nothing_is_never_returned():
    """A predictor's no-op (found by fuzzing: the ranker in CR-only documents) became an empty insertion."""
    docs = DocumentStore()
    _rename_width(docs)
    doc = docs.get(URI)
    service, _, _ = _service(FakeModel(Edit(1, 2, "    check(width)\n", "    check(width)\n"), confidence=0.9))
    assert service.predict(doc.text, doc.history.recent(), Position(0, 10), URI, predictor="model", threshold=0.5) is None


def test_line_breaks_python_and_lsp_disagree_on_give_nothing():
    service, _, _ = _service(FakeModel(Edit(0, 1, "a\n", "b\n")))
    docs = DocumentStore()
    docs.open(URI, "python", 1, "a = 1\x0cb = 2\n")
    docs.change(URI, 2, [(Range(Position(0, 0), Position(0, 1)), "c")], now=1.0)
    doc = docs.get(URI)
    assert service.predict(doc.text, doc.history.recent(), Position(0, 0), URI) is None


def test_auto_asks_the_ranker_first_and_the_model_only_where_it_has_nothing(tmp_path):
    docs = DocumentStore()
    _rename_width(docs)
    doc = docs.get(URI)
    sure = FakeModel(Edit(2, 3, "    return width * height\n", "    return 0\n"), confidence=0.9)
    service, _, _ = _service(sure)
    result = service.predict(doc.text, doc.history.recent(), Position(0, 10), URI, predictor="auto", threshold=0.5)
    # the shipped ranker repeats the rename at the next use of `width`; the model is not asked
    assert result is not None and result.answer.predictor == "ranker" and result.new_text == "w"
    assert result.start == Position(1, 10) and sure.calls == []
    assert service.answered_by("ranker") == service.ranker.version
    # a line deleted that occurs nowhere else: nothing to do again, the ranker has no candidate, so the model
    # answers when sure enough
    docs.open("file:///project/shrink.py", "python", 1, TEXT)
    docs.change("file:///project/shrink.py", 2, [(Range(Position(1, 0), Position(2, 0)), "")], now=10.0)
    shrunk = docs.get("file:///project/shrink.py")
    sure_below, _, _ = _service(FakeModel(Edit(1, 2, "    return width * height\n", "    return 0\n"), confidence=0.9))
    result = sure_below.predict(shrunk.text, shrunk.history.recent(), Position(1, 0), URI, predictor="auto",
                                threshold=0.5)
    assert sure_below.ranker is not None
    assert result is not None and result.answer.predictor == "model" and result.new_text == "0"
    unsure, _, _ = _service(FakeModel(Edit(1, 2, "    return width * height\n", "    return 0\n"), confidence=0.1))
    hidden = unsure.predict(shrunk.text, shrunk.history.recent(), Position(1, 0), URI, predictor="auto", threshold=0.5)
    assert hidden is not None and hidden.answer.predictor == "model" and not hidden.answer.shown  # to log as hidden, not to show
    missing = NextEditService(InferenceScheduler(), SuggestionLedger(), SessionRecorder(ListStore()))
    result = missing.predict(doc.text, doc.history.recent(), Position(0, 10), URI, str(tmp_path / "none"),
                             predictor="heuristic")
    assert result is not None and result.answer.predictor == "heuristic" and missing.model is None  # never loaded


def test_the_ranker_threshold_setting_overrides_the_trained_one():
    docs = DocumentStore()
    _rename_width(docs)
    doc = docs.get(URI)
    service, _, _ = _service(None)
    trained = service.predict(doc.text, doc.history.recent(), Position(0, 10), URI, predictor="ranker")
    assert trained is not None and trained.answer.predictor == "ranker" and trained.answer.confidence >= service.ranker.threshold
    assert trained.answer.shown and trained.answer.threshold == service.ranker.threshold
    above = min(1.0, trained.answer.confidence + 0.01)
    hidden = service.predict(doc.text, doc.history.recent(), Position(0, 10), URI, predictor="ranker",
                             ranker_threshold=above)
    assert hidden is not None and not hidden.answer.shown and hidden.answer.threshold == above
    again = service.predict(doc.text, doc.history.recent(), Position(0, 10), URI, predictor="ranker",
                            ranker_threshold=trained.answer.confidence)
    assert again is not None and again.answer.shown and again.new_text == trained.new_text


def test_a_ranker_edit_below_its_threshold_is_logged_as_hidden_with_its_score():
    docs = DocumentStore()
    _rename_width(docs)
    service, store, ledger = _service(None)
    pending = service.request(docs.get(URI), 2, Position(0, 10),
                              Settings(next_edit_predictor="ranker", next_edit_ranker_threshold=0.999))
    assert pending.future.result(timeout=10) is None
    generated = [e for e in store.events if type(e).__name__ == "SuggestionGenerated"]
    gated = [e for e in store.events if type(e).__name__ == "SuggestionGated"]
    assert len(generated) == 1 and generated[0].text == "w" and generated[0].model == service.ranker.version
    # the ranker generates no tokens and so stops on none (it was logged as stopped at the end of text, "eos")
    assert (generated[0].tokens, generated[0].layers_per_token, generated[0].stop_reason) == (0, None, None)
    assert len(gated) == 1 and gated[0].decision == "hide" and gated[0].threshold == 0.999
    assert abs(gated[0].score - generated[0].details["confidence"]) < 1e-4 and gated[0].model_version == service.ranker.version
    assert gated[0].details == {"gate": "next_edit_ranker"} and ledger.get(pending.suggestion_id) is None
    assert service.counts["hidden"] == 1 and service.counts["issued"] == 0


@pytest.mark.parametrize("reopened", [True, False])
def test_an_edit_for_a_document_closed_or_reopened_meanwhile_is_never_issued(reopened):
    """Only the version was checked as the answer went out: a document closed and opened again while the edit was
    predicted (reverted from disk, even at the same version number) got a range cut from the text it no longer
    had, and one closed meanwhile had an edit issued in the ledger (completions check both)."""
    docs = DocumentStore()
    _rename_width(docs)
    service, store, ledger = _service(FakeModel(Edit(1, 2, "    check(width)\n", "    check(w)\n"), confidence=0.8))
    pending = service.request(docs.get(URI), 2, Position(0, 10),
                              Settings(next_edit_threshold=0.5, next_edit_predictor="model"))
    result = pending.future.result(timeout=10)
    assert result is not None
    docs.close(URI)
    if reopened:
        docs.open(URI, "python", 2, "x = 1\n")
    assert not service.issue(pending, docs.get(URI), 2, result)
    assert ledger.get(pending.suggestion_id) is None and service.counts["issued"] == 0
    ends = [(type(e).__name__, e.reason) for e in store.events if type(e).__name__ == "SuggestionCancelled"]
    assert ends == [("SuggestionCancelled", "stale")]


def test_a_cursor_past_the_end_of_the_document_is_read_as_its_last_line():
    """The ranker measured its candidates' distance from a cursor line the document does not have: in a 4-line
    file, line 1,000 gave one score and line 10,000 no edit at all (no candidate within its search window)."""
    docs = DocumentStore()
    _rename_width(docs)
    doc = docs.get(URI)
    service, _, _ = _service(None)
    last = service.predict(doc.text, doc.history.recent(), Position(3, 0), URI, predictor="ranker")
    assert last is not None
    for line in (4, 1_000, 10_000):
        past = service.predict(doc.text, doc.history.recent(), Position(line, 0), URI, predictor="ranker")
        assert past is not None and (past.start, past.new_text, past.answer.confidence) == (
            last.start, last.new_text, last.answer.confidence)
