"""Open documents, incremental changes, and the coalesced edit history."""

from __future__ import annotations

import random
import threading
import time

import pytest

from lsp_server.config import Settings
from lsp_server.services.documents import (
    Document,
    DocumentStore,
    EditHistory,
    EditRecord,
    StaleVersionError,
    UnknownDocumentError,
)
from lsp_server.services.positions import LineIndex, Position, Range, line_starts, offset_at, position_at

URI = "file:///project/example.py"
EMOJI = "\U0001f600"


def R(sl: int, sc: int, el: int, ec: int) -> Range:
    return Range(Position(sl, sc), Position(el, ec))


def at(line: int, ch: int) -> Range:
    return R(line, ch, line, ch)


class Typist:
    """Drives a store like an editor: one didChange per keystroke, with a fake clock."""

    def __init__(self, store: DocumentStore, uri: str = URI, text: str = "", t0: float = 100.0) -> None:
        self.store = store
        self.uri = uri
        self.version = 1
        self.now = t0
        self.finalized: list[EditRecord] = []
        store.open(uri, "python", self.version, text)

    def change(self, rng: Range | None, text: str, dt: float = 0.1):
        self.now += dt
        self.version += 1
        res = self.store.change(self.uri, self.version, [(rng, text)], now=self.now)
        self.finalized.extend(res.finalized)
        return res

    def type(self, line: int, ch: int, word: str, dt: float = 0.1) -> None:
        for i, c in enumerate(word):
            self.change(at(line, ch + i), c, dt)

    def backspace(self, line: int, ch: int, n: int, dt: float = 0.1) -> None:
        for i in range(n):
            self.change(R(line, ch - i - 1, line, ch - i), "", dt)

    @property
    def doc(self) -> Document:
        return self.store.get(self.uri)


# --- documents and changes -----------------------------------------------------------------


def test_open_get_close_and_untitled_uris():
    store = DocumentStore()
    d = store.open("untitled:Untitled-1", "python", 0, "x = 1\n")
    assert store.get("untitled:Untitled-1") is d
    assert d.text == "x = 1\n" and d.version == 0 and d.language_id == "python"
    res = store.change("untitled:Untitled-1", 1, [(at(1, 0), "y")], now=1.0)
    assert d.text == "x = 1\ny" and res.version == 1 and d.version == 1
    assert "untitled:Untitled-1" in store.uris()
    finalized = store.close("untitled:Untitled-1")
    assert [r.inserted_text for r in finalized] == ["y"]
    assert store.get("untitled:Untitled-1") is None
    assert store.close("untitled:Untitled-1") == []


def test_unknown_uri_raises():
    store = DocumentStore()
    with pytest.raises(UnknownDocumentError, match="not open"):
        store.change("file:///nope.py", 2, [(None, "x")])


def test_whole_text_change_is_the_span_it_changed():
    store = DocumentStore()
    d = store.open(URI, "python", 1, "old\ntext")
    res = store.change(URI, 2, [(None, "brand new")], now=5.0)
    assert d.text == "brand new"
    assert d.line_count == 1
    assert res.finalized == []  # an edit like any other: it stays open for the next keystroke
    rec = d.history.pending
    assert rec.removed_text == "old\ntext" and rec.inserted_text == "brand new"
    assert rec.start == Position(0, 0) and rec.end == Position(1, 4)


def test_stale_version_leaves_document_untouched():
    store = DocumentStore()
    d = store.open(URI, "python", 5, "abc")
    with pytest.raises(StaleVersionError, match="not newer"):
        store.change(URI, 5, [(at(0, 0), "X")])
    with pytest.raises(StaleVersionError):
        store.change(URI, 3, [(None, "replaced")])
    assert d.text == "abc" and d.version == 5
    assert d.history.recent() == []


def test_ranges_outside_the_document_are_clamped_into_it_as_vscode_languageserver_does():
    """The client applied these changes to its own text: dropping them would leave every later change applying
    to text it no longer has, so they land where vscode-languageserver's text documents put them."""
    store = DocumentStore()
    d = store.open(URI, "python", 1, "ab\ncd")
    result = store.change(URI, 2, [(at(0, 0), "X"), (at(9, 0), "Y")])  # line 9: the end of the document
    assert d.text == "Xab\ncdY" and d.version == 2
    assert result.adjusted == ["range 9:0-9:0 is outside the document: clamped to 1:2-1:2"]
    assert result.applied[1].start == Position(1, 2)  # the edit stream records where it really went
    store.change(URI, 3, [(at(0, 7), "Z")])  # past the end of line 0: its end
    assert d.text == "XabZ\ncdY"
    result = store.change(URI, 4, [(R(1, 2, 0, 4), "")])  # reversed: turned round
    assert d.text == "XabZY" and "turned round" in result.adjusted[0]
    result = store.change(URI, 5, [(R(-3, -1, 0, 1), "")])  # negative: the start
    assert d.text == "abZY" and result.adjusted
    assert store.change(URI, 6, [(at(0, 0), "#")]).adjusted == []
    from telemetry.reconstruct import apply_range

    rebuilt = "ab\ncd"  # the recorded edits rebuild the text from the one opened

    for rec in d.history.recent():
        rebuilt = apply_range(rebuilt, rec.start.line, rec.start.character, rec.end.line, rec.end.character,
                              rec.inserted_text, rec.removed_text)
    assert rebuilt == d.text


def test_batch_positions_refer_to_the_text_after_previous_changes():
    store = DocumentStore()
    d = store.open(URI, "python", 1, "line0\nline1\n")
    store.change(URI, 2, [(at(0, 0), "A\n"), (at(2, 0), "B")])
    assert d.text == "A\nline0\nBline1\n"


def test_incremental_changes_match_full_text_reference():
    rng = random.Random(20240607)
    alphabet = ["a", "b", "(", ")", " ", "\n", "\r\n", EMOJI, "\u00e9", "\t"]
    for trial in range(30):
        ref = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 30)))
        store = DocumentStore()
        doc = store.open(URI, "python", 0, ref)
        for v in range(1, 40):
            batch = []
            for _ in range(rng.choice([1, 1, 2, 3])):
                idx = LineIndex(ref)
                s = rng.randrange(len(ref) + 1)
                e = min(len(ref), s + rng.choice([0, 0, 1, 3]))
                new = "".join(rng.choice(alphabet) for _ in range(rng.choice([0, 1, 2])))
                rng_ = Range(idx.position_at(s), idx.position_at(e))
                s2, e2 = idx.offset_at(rng_.start), idx.offset_at(rng_.end)
                ref = ref[:s2] + new + ref[e2:]
                batch.append((rng_, new))
            store.change(URI, v, batch, now=float(v))
            assert doc.text == ref, (trial, v)
            assert doc.index.starts == line_starts(ref)


def test_document_snapshot_and_helpers():
    d = Document(URI, "python", 3, f"a{EMOJI}b\nsecond")
    assert d.snapshot() == (3, f"a{EMOJI}b\nsecond")
    assert d.offset_at(Position(0, 3)) == 2
    assert d.position_at(2) == Position(0, 3)
    assert d.line(1) == "second"
    applied = d.apply_change(R(0, 1, 0, 3), "")
    assert applied.removed_text == EMOJI and d.text == "ab\nsecond" and d.version == 3
    assert d.apply_change(at(5, 0), "x").adjusted and d.text == "ab\nsecondx"


def test_nul_bytes_and_binary_detection():
    store = DocumentStore()
    d = store.open(URI, "python", 1, "abc\x00def\n")
    assert d.is_binary
    store.change(URI, 2, [(at(0, 3), "\x00\x00")])
    assert d.text == "abc\x00\x00\x00def\n"
    store.change(URI, 3, [(R(0, 3, 0, 6), "")])
    assert d.text == "abcdef\n" and not d.is_binary
    garbage = "".join(chr(c) for c in range(1, 9)) * 200
    assert Document("untitled:b", "plaintext", 1, garbage).is_binary
    assert not Document("untitled:t", "python", 1, "def f():\n\treturn 1\n").is_binary
    assert not Document("untitled:e", "python", 1, "").is_binary


def test_five_megabyte_document_change_at_end_is_fast():
    line = "value = compute(alpha, beta, gamma)  # comment\n"
    text = line * (5_000_000 // len(line))
    store = DocumentStore()
    d = store.open(URI, "python", 1, text)
    last = d.line_count - 1
    t0 = time.perf_counter()
    store.change(URI, 2, [(at(last, 0), "x")], now=1.0)
    store.change(URI, 3, [(at(last, 1), "y")], now=1.1)
    store.change(URI, 4, [(R(last - 1, 0, last - 1, 5), "")], now=1.2)
    elapsed = (time.perf_counter() - t0) / 3
    assert elapsed < 0.05, elapsed
    assert d.text.endswith(line + line[5:] + "xy")
    assert d.line(last - 1) == " = compute(alpha, beta, gamma)  # comment" and d.line(last) == "xy"
    assert d.index.starts[-3:] == line_starts(d.text)[-3:]


def test_snapshot_is_consistent_under_concurrent_changes():
    store = DocumentStore()
    d = store.open(URI, "python", 0, "")
    stop = threading.Event()
    bad: list[tuple[int, str]] = []

    def reader() -> None:
        while not stop.is_set():
            version, text = d.snapshot()
            if len(text) != version:  # each version appends exactly one char
                bad.append((version, text))

    t = threading.Thread(target=reader)
    t.start()
    try:
        for v in range(1, 2000):
            store.change(URI, v, [(at(0, v - 1), "x")], now=float(v))
    finally:
        stop.set()
        t.join()
    assert not bad and d.text == "x" * 1999


def test_store_from_settings_uses_coalesce_window():
    settings, _ = Settings.from_camel({"editCoalesceMs": 250})
    store = DocumentStore.from_settings(settings)
    assert store.coalesce_s == 0.25
    assert store.open(URI, "python", 1, "").history.coalesce_s == 0.25


# --- coalescing ----------------------------------------------------------------------------


def test_typing_a_word_char_by_char_is_one_edit():
    t = Typist(DocumentStore(), text="x = \n")
    t.type(0, 4, "value")
    assert t.finalized == []  # still pending
    (pending,) = t.doc.history.recent()
    assert pending.inserted_text == "value" and pending.keystrokes == 5
    (rec,) = t.store.flush(URI)
    assert rec.inserted_text == "value" and rec.removed_text == ""
    assert rec.start == Position(0, 4) and rec.end == Position(0, 4)
    assert rec.inserted_end == Position(0, 9)
    assert rec.keystrokes == 5 and rec.version == 6
    assert rec.ts_end - rec.ts_start == pytest.approx(0.4)
    assert t.doc.text == "x = value\n"


def test_pause_splits_into_two_edits():
    t = Typist(DocumentStore(), text="")
    t.type(0, 0, "foo")
    t.type(0, 3, "bar", dt=0.1)  # contiguous and quick: same edit so far
    t.change(at(0, 6), "_", dt=1.5)  # a pause longer than the window
    assert [r.inserted_text for r in t.finalized] == ["foobar"]
    t.type(0, 7, "baz")
    assert [r.inserted_text for r in t.store.close(URI)] == ["_baz"]


def test_newline_within_window_continues_the_edit():
    t = Typist(DocumentStore(), text="")
    t.type(0, 0, "if x:")
    t.change(at(0, 5), "\n    ")
    t.type(1, 4, "pass")
    (rec,) = t.store.flush(URI)
    assert rec.inserted_text == "if x:\n    pass"
    assert rec.inserted_end == Position(1, 8)


def test_backspacing_contiguously_is_one_deletion():
    t = Typist(DocumentStore(), text="hello world\n")
    t.backspace(0, 11, 5)
    (rec,) = t.store.flush(URI)
    assert rec.removed_text == "world" and rec.inserted_text == ""
    assert rec.start == Position(0, 6) and rec.end == Position(0, 11)
    assert t.doc.text == "hello \n"


def test_typing_then_backspacing_inside_the_insertion():
    t = Typist(DocumentStore(), text="x = \n")
    t.type(0, 4, "valeu")
    t.backspace(0, 9, 2)
    t.type(0, 7, "ue")
    (rec,) = t.store.flush(URI)
    assert rec.inserted_text == "value" and rec.keystrokes == 9
    # Backspacing past the start of the insertion into older text.
    t.type(0, 9, "s")
    t.backspace(0, 10, 3)
    (rec2,) = t.store.flush(URI)
    assert rec2.removed_text == "ue" and rec2.inserted_text == ""
    assert rec2.start == Position(0, 7) and rec2.end == Position(0, 9)
    assert t.doc.text == "x = val\n"


def test_replacing_backspaced_text_is_one_replacement():
    t = Typist(DocumentStore(), text="a = old\n")
    t.backspace(0, 7, 3)
    t.type(0, 4, "new")
    (rec,) = t.store.flush(URI)
    assert (rec.removed_text, rec.inserted_text) == ("old", "new")
    assert rec.start == Position(0, 4) and rec.end == Position(0, 7)


def test_type_then_delete_everything_is_dropped():
    t = Typist(DocumentStore(), text="")
    t.type(0, 0, "ab")
    t.backspace(0, 2, 2)
    assert t.doc.history.recent() == []
    assert t.store.flush(URI) == []


def test_jumping_elsewhere_starts_a_new_edit():
    t = Typist(DocumentStore(), text="aaa\nbbb\n")
    t.type(0, 3, "xy")
    t.type(1, 0, "z")  # quick, but somewhere else
    assert [r.inserted_text for r in t.finalized] == ["xy"]
    assert t.finalized[0].start == Position(0, 3)
    t.change(at(0, 0), "q")  # and back to line 0
    assert [r.inserted_text for r in t.finalized] == ["xy", "z"]
    assert t.finalized[1].start == Position(1, 0)
    recent = t.doc.history.recent()
    assert [r.inserted_text for r in recent] == ["xy", "z", "q"]
    assert [r.inserted_text for r in t.doc.history.recent(2)] == ["z", "q"]


def test_expire_finalizes_only_idle_edits():
    t = Typist(DocumentStore(), text="")
    t.type(0, 0, "ab")
    assert t.store.expire(now=t.now + 0.5) == []
    (rec,) = t.store.expire(now=t.now + 1.5)
    assert rec.inserted_text == "ab"
    assert t.store.expire(now=t.now + 10) == []


def test_positions_in_records_are_pre_edit_utf16():
    t = Typist(DocumentStore(), text=f"s = '{EMOJI}'\n")
    t.type(0, 7, "!!")
    (rec,) = t.store.flush(URI)
    assert rec.start == Position(0, 7)
    doc_before = f"s = '{EMOJI}'\n"
    assert offset_at(doc_before, rec.start) == 6
    assert position_at(t.doc.text, 8) == rec.inserted_end


def test_summary_has_no_source_text():
    t = Typist(DocumentStore(), text="secret = 1\n")
    t.type(0, 10, "234")
    (rec,) = t.store.flush(URI)
    summary = rec.summary()
    assert summary["inserted_chars"] == 3 and summary["keystrokes"] == 3
    assert "234" not in repr(summary) and "secret" not in repr(summary)


def test_history_is_bounded_in_count():
    h = EditHistory(URI, max_edits=50)
    d = Document(URI, "python", 0, "")
    finalized = 0
    for i in range(10_000):
        applied = d.apply_change(at(0, 0), "x")  # always at the start: never contiguous
        finalized += len(h.push(i + 1, applied, now=float(i)))
    assert finalized == 9_999
    assert len(h) == 50 and len(h.recent()) == 51
    assert h.dropped == 9_999 - 50


def test_history_is_bounded_in_chars():
    h = EditHistory(URI, max_chars=1000, coalesce_s=0.0)
    d = Document(URI, "python", 0, "")
    for i in range(10_000):
        applied = d.apply_change(at(0, 0), "y" * 7)
        h.push(i + 1, applied, now=float(i) * 10)
    assert h.stored_chars <= 1000
    assert h.stored_chars == sum(r.size for r in h.recent()[:-1])
    assert len(h) == 1000 // 7


def test_an_edit_bigger_than_the_budget_is_returned_but_not_kept():
    h = EditHistory(URI, max_chars=100)
    d = Document(URI, "python", 0, "")
    h.push(1, d.apply_change(at(0, 0), "z" * 500), now=0.0)
    (rec,) = h.flush()
    assert len(rec.inserted_text) == 500
    assert len(h) == 0 and h.stored_chars == 0


def test_service_modules_import_no_protocol_or_torch():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import lsp_server.services.documents, lsp_server.services.positions, lsp_server.services.context\n"
        "import lsp_server.services.postprocess, models.syntax\n"
        "bad = [m for m in ('pygls', 'lsprotocol', 'torch') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == ""


def test_replaying_finalized_edits_reproduces_the_document():
    """Property: every finalized record, applied in order to the text it started from
    (removed_text checked at start..end), rebuilds the final text."""
    rng = random.Random(7)
    for trial in range(20):
        initial = "def f(x):\n    return x\n" + EMOJI + " tail\r\nend"
        t = Typist(DocumentStore(), text=initial)
        for _ in range(150):
            text = t.doc.text
            idx = t.doc.index
            tip = None
            pending = t.doc.history.pending
            if pending is not None and rng.random() < 0.7:
                tip = idx.offset_at(pending.inserted_end)
            where = tip if tip is not None else rng.randrange(len(text) + 1)
            kind = rng.random()
            dt = rng.choice([0.05, 0.2, 0.2, 0.9, 1.3])
            if kind < 0.55:  # type
                t.change(Range(idx.position_at(where), idx.position_at(where)), rng.choice(["a", "b", "\n", " ", EMOJI]), dt)
            elif kind < 0.85 and where > 0:  # backspace
                s = where - 1
                t.change(Range(idx.position_at(s), idx.position_at(where)), "", dt)
            elif where < len(text):  # forward delete
                t.change(Range(idx.position_at(where), idx.position_at(where + 1)), "", dt)
        records = t.finalized + t.store.flush(URI)
        replay = initial
        for rec in records:
            s = offset_at(replay, rec.start, clamp=False)
            e = offset_at(replay, rec.end, clamp=False)
            assert replay[s:e] == rec.removed_text, (trial, rec)
            replay = replay[:s] + rec.inserted_text + replay[e:]
        assert replay == t.doc.text, trial
        assert sum(r.keystrokes for r in records) <= 150
        assert len(records) < 150  # some coalescing happened


def test_empty_changes_do_not_break_the_pending_edit():
    t = Typist(DocumentStore(), text="aaa\nbbb\n")
    t.type(0, 3, "xy")
    t.change(at(1, 1), "")  # an editor's no-op change elsewhere
    t.type(0, 5, "z")
    (rec,) = t.store.flush(URI)
    assert rec.inserted_text == "xyz" and t.finalized == []


def test_keystrokes_are_grouped_by_the_store_clock_and_logged_at_the_wall_clock():
    """A replay pins the store's clock to when each change was recorded: changes sent milliseconds apart but typed
    three seconds apart are two edits, as they were; the finished edits still carry the time they arrived here."""
    store = DocumentStore(coalesce_s=1.0)
    store.open(URI, "python", 1, "x = 1\n")
    recorded = [200.0]
    store.clock = lambda: recorded[0]
    before = time.time()
    assert store.change(URI, 2, [(at(0, 5), "a")]).finalized == []
    recorded[0] = 203.0
    (first,) = store.change(URI, 3, [(at(0, 6), "b")]).finalized
    assert first.inserted_text == "a" and before <= first.ts_start <= first.ts_end <= time.time()
    recorded[0] = 203.5
    assert store.expire() == []  # idle half a second by the store's clock, however long it waited
    recorded[0] = 204.5
    (second,) = store.expire()
    assert second.inserted_text == "b"


def test_the_binary_check_counts_the_characters_it_always_counted():
    """One regex scan stands for a loop over the sample's characters (0.28 ms a request on large files): the same
    verdict on texts around the 30% line, of every kind of character."""
    import random

    from lsp_server.services.documents import _BINARY_SAMPLE, _TEXT_CONTROLS, _looks_binary

    def by_loop(text: str) -> bool:  # the check as it was written before
        if "\x00" in text:
            return True
        sample = text[:_BINARY_SAMPLE]
        bad = sum(1 for ch in sample if (ch < " " and ch not in _TEXT_CONTROLS) or ch == "\ufffd" or "\x7f" <= ch < "\xa0")
        return bool(sample) and bad > 0.3 * len(sample)

    rng = random.Random(7)
    alphabet = [chr(c) for c in range(1, 0x20)] + [chr(c) for c in range(0x7f, 0xa1)] + ["\ufffd", "é", "😀", "\u2028"]
    verdicts = []
    for _ in range(400):
        share = rng.random()
        n = rng.choice([1, 10, 500, 9000])
        text = "".join(rng.choice(alphabet) if rng.random() < share else rng.choice("abc \n\t") for _ in range(n))
        verdicts.append(_looks_binary(text))
        assert verdicts[-1] == by_loop(text), repr(text[:80])
    assert 50 < sum(verdicts) < 350  # both verdicts met, many times
