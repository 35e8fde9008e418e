"""Replay rebuilds a session's documents change by change on texts held as lines (``SplitText``), changed in place,
with the texts it changes to read as views (``EditedText``). Before, every edit found its place by scanning the whole
text (``line_starts``), diffed it character by character from its start and copied it: a long session on a large
file replayed in minutes. These tests hold the new code to the old per-edit code's results, and show the per-edit
whole-text work gone by counting it, not by timing it."""

from __future__ import annotations

import random
import sqlite3
import sys
from pathlib import Path

import pytest

from lsp_server.services.documents import DocumentStore
from lsp_server.services.positions import Range
from lsp_server.services.recorder import pending_edit_dict
from telemetry import (
    DocumentClosed,
    DocumentOpened,
    DocumentSnapshot,
    EditEvent,
    SessionStarted,
    SuggestionRequested,
    TelemetryStore,
)
from telemetry import reconstruct
from telemetry import text as text_module
from tests.telemetry_fakes import CountingBreaks
from telemetry.reader import open_readonly
from telemetry.text import (
    EditedText,
    SplitText,
    diff,
    line_starts,
    line_suffix,
    offset_at,
    position_at,
)

PIECES = ["a", "b", "ab", " ", "\n", "\r", "\r\n", "x\ry", "\n\n", "é", "😀", "z\r\n  w", "\ud800", "aaa", "(", ")"]


# -- the old per-edit code, kept as the reference -----------------------------------------------------------------

def _old_diff(old: str, new: str, hints: tuple[int, ...] = ()) -> tuple[int, int, str] | None:
    """``telemetry.text.diff`` as it was: character by character from the texts' starts and ends."""
    if old == new:
        return None
    n = min(len(old), len(new))
    p = 0
    while p < n and old[p] == new[p]:
        p += 1

    def at(start: int) -> tuple[int, int, str]:
        limit = min(len(old), len(new)) - start
        q = 0
        while q < limit and old[len(old) - 1 - q] == new[len(new) - 1 - q]:
            q += 1
        return start, len(old) - q, new[start : len(new) - q]

    best = at(p)
    size = (best[1] - best[0]) + len(best[2])
    for hint in hints:
        if 0 <= hint < p:
            cand = at(hint)
            if (cand[1] - cand[0]) + len(cand[2]) == size:
                return cand
    return best


def _old_representable(text: str, *offsets: int) -> bool:
    starts = line_starts(text)
    return all(offset_at(text, *position_at(text, o, starts), starts) == o for o in offsets)


def _old_pieces(text: str, start: int, end: int, inserted: str, tip: int | None,
                most: int) -> list[tuple[int, int, str]] | None:
    """``reconstruct._pieces`` as it was: each piece applied to a copy of the whole text, checked on all of it."""
    if tip is None or not start <= tip <= end:
        tip = end
    chars = reconstruct._characters
    ahead = [(tip, tip + len(ch), "") for ch in chars(text[tip:end])]
    behind, pos = [], tip
    for ch in reversed(chars(text[start:tip])):
        behind.append((pos - len(ch), pos, ""))
        pos -= len(ch)
    typed, pos = [], start
    for ch in chars(inserted):
        typed.append((pos, pos, ch))
        pos += len(ch)
    keys = ahead + behind + typed
    count = max(1, min(most, len(keys)))
    cuts = {k * len(keys) // count for k in range(count)} | ({len(ahead)} if ahead and behind else set())
    cuts = sorted(cuts | {len(keys)})
    pieces, cur = [], text
    for i, j in zip(cuts, cuts[1:]):
        group = keys[i:j]
        deleted = [g for g in group if g[1] > g[0]]
        a = min(g[0] for g in deleted) if deleted else group[0][0]
        b = a + sum(g[1] - g[0] for g in deleted)
        piece = "".join(g[2] for g in group)
        if not _old_representable(cur, a, b):
            return None
        pieces.append((a, b, piece))
        cur = cur[:a] + piece + cur[b:]
    return pieces


def _whole(text) -> str:
    return text if isinstance(text, str) else text[0:len(text)]


class _WholeText:
    """The old per-edit code as a text: a str copied at every change, every position found by scanning all of it."""

    def __init__(self, text: str = "") -> None:
        self.s = text

    def __len__(self) -> int:
        return len(self.s)

    def __getitem__(self, key: slice) -> str:
        return self.s[key]

    def offset_at(self, line: int, character: int) -> int:
        return offset_at(self.s, line, character)

    def position_at(self, offset: int) -> tuple[int, int]:
        return position_at(self.s, offset)

    def line_suffix(self, offset: int) -> str:
        return line_suffix(self.s, offset)

    def splice(self, start: int, end: int, inserted: str) -> None:
        self.s = self.s[:start] + inserted + self.s[end:]

    def text(self) -> str:
        return self.s


def _use_old_per_edit_code(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run ``reconstruct`` on the old primitives: whole-text positions and copies, the old diff and pieces, and no
    use of what the texts are known to share."""
    monkeypatch.setattr(reconstruct, "SplitText", _WholeText)
    monkeypatch.setattr(reconstruct, "diff", lambda old, new, hints=(), *known: _old_diff(_whole(old), _whole(new),
                                                                                           hints))
    monkeypatch.setattr(reconstruct, "same_text", lambda old, new, *known: _whole(old) == _whole(new))
    monkeypatch.setattr(reconstruct, "_pieces", lambda text, *rest: _old_pieces(_whole(text), *rest))


# -- the texts ------------------------------------------------------------------------------------------------------

def _random_text(rng: random.Random, pieces: int) -> str:
    return "".join(rng.choice(PIECES + ["def f():", "    return 1", "x = 2"]) for _ in range(pieces))


@pytest.mark.parametrize("block", [1, 3, SplitText.BLOCK])
@pytest.mark.parametrize("seed", range(8))
def test_split_text_answers_as_the_whole_text_does_through_a_random_edit_stream(
        monkeypatch: pytest.MonkeyPatch, seed: int, block: int) -> None:
    """CRLF, lone CR and LF mixed, a CR that comes to meet an LF, astral characters (two UTF-16 units) and lone
    surrogates, positions past a line's end, before the text and past its end, ends before starts, deletions across
    lines; small blocks put lines and changes across block boundaries. Offsets, positions, slices, line suffixes,
    views and diffs agree with the old whole-text functions after every change."""
    monkeypatch.setattr(SplitText, "BLOCK", block)
    rng = random.Random(seed)
    text = _random_text(rng, rng.randint(0, 50))
    split = SplitText(text)
    for _ in range(150):
        size, lines = len(text), len(line_starts(text))
        assert split.text() == text and len(split) == size and split.line_total == lines
        for _ in range(4):
            o = rng.randint(-2, size + 2)
            assert split.position_at(o) == position_at(text, o)
            if 0 <= o <= size:
                assert split.line_suffix(o) == line_suffix(text, o)
            line, character = rng.randint(-2, lines + 1), rng.randint(0, 12)
            assert split.offset_at(line, character) == offset_at(text, line, character)
            a, b = sorted((rng.randint(0, size), rng.randint(0, size)))
            assert split[a:b] == text[a:b] and split[b:a] == ""
            inserted = rng.choice(PIECES + [""])
            edited = text[:a] + inserted + text[b:]
            view = EditedText(split, a, b, inserted)
            x, y = rng.randint(0, len(edited) + 1), rng.randint(0, len(edited) + 1)
            assert len(view) == len(edited) and view[x:y] == edited[x:y] and view.text() == edited
            hints = (rng.randint(0, size), rng.randint(0, size))
            assert diff(split, view, hints, a, size - b) == _old_diff(text, edited, hints)
            assert diff(text, edited, hints) == _old_diff(text, edited, hints)
        if rng.random() < 0.5:  # by str offsets, as replay changes its texts
            a = rng.randint(0, size)
            b = min(size, a + rng.choice([0, 1, 2, 5, 40]))
            inserted = rng.choice(PIECES + [""])
            split.splice(a, b, inserted)
            text = text[:a] + inserted + text[b:]
        else:  # by LSP positions, clamped, an end before the start an empty range: as apply_range places them
            sl, sc = rng.randint(-1, lines + 1), rng.randint(0, 9)
            el, ec = (sl, sc + rng.randint(0, 4)) if rng.random() < 0.6 else (rng.randint(-1, lines + 1),
                                                                              rng.randint(0, 9))
            inserted = rng.choice(PIECES + [""])
            a, b = offset_at(text, sl, sc), offset_at(text, el, ec)
            split.replace(sl, sc, el, ec, inserted)
            text = text[:a] + inserted + text[max(a, b):]


@pytest.mark.parametrize("seed", range(30))
def test_a_diff_in_long_runs_of_one_character_is_the_old_one(seed: int) -> None:
    """The diff reads in doubling slices from where the texts are known to agree; where a change could sit anywhere
    in a long run, it still lands where the old character-by-character diff (and a hint) put it."""
    rng = random.Random(seed)
    text = "".join(rng.choice(["a" * rng.randint(1, 300), "b", "\n", "ab" * rng.randint(1, 200)])
                   for _ in range(rng.randint(1, 30)))
    a = rng.randint(0, len(text))
    b = min(len(text), a + rng.randint(0, 300))
    inserted = rng.choice(["", "a", "aa", "ab", "b" * rng.randint(1, 100)])
    edited = text[:a] + inserted + text[b:]
    hints = (rng.randint(0, len(text)), rng.randint(0, len(text)))
    split = SplitText(text)
    assert diff(split, EditedText(split, a, b, inserted), hints, a, len(text) - b) == _old_diff(text, edited, hints)


# -- whole sessions -------------------------------------------------------------------------------------------------

def _typed_session(db: Path, rng: random.Random, text: str, keystrokes: int, cursor_from: int = 0) -> None:
    """An editor's session as the server logs it: keystrokes (some at two cursors), coalesced edits (a few lost),
    requests with their pending edit, logged as now, without its version or, as in older recordings, without one;
    some next-edit requests; a snapshot at close."""
    uri = "file:///a.py"
    store, docs, t = TelemetryStore(db), DocumentStore(coalesce_s=1.0), 100.0
    store.record(SessionStarted("s", "c", "1", "0.1.0", {}, {}, ts=t))
    docs.open(uri, "python", 1, text)
    store.record(DocumentOpened("s", uri, 1, "python", text, ts=t))
    legacy = []

    def log(records) -> None:
        for r in records:
            if rng.random() < 0.03:
                continue  # lost: the snapshot is copied in
            store.record(EditEvent("s", r.uri, r.version, r.start.line, r.start.character, r.end.line,
                                   r.end.character, r.removed_text, r.inserted_text, r.ts_start, r.keystrokes,
                                   ts=r.ts_end))

    cursor = cursor_from
    for n in range(keystrokes):
        doc = docs.get(uri)
        if rng.random() < 0.2:
            cursor = rng.randint(cursor_from, len(doc.text))
        t += rng.choice([0.05, 0.1, 0.1, 0.3, 2.0])
        current, ranges = doc.text, []
        for _ in range(2 if rng.random() < 0.1 else 1):
            a = min(cursor, len(current))
            kind = rng.random()
            if kind < 0.6:
                b, inserted = a, rng.choice(PIECES)
            elif kind < 0.8:
                a, b, inserted = max(cursor_from, a - rng.randint(1, 3)), a, ""
            else:
                b, inserted = min(len(current), a + rng.randint(0, 8)), rng.choice(PIECES + [""])
            ranges.append((Range.of(*position_at(current, a), *position_at(current, b)), inserted))
            current = current[:a] + inserted + current[b:]
            cursor = a + len(inserted)
        log(docs.change(uri, doc.version + 1, ranges, t).finalized)
        doc = docs.get(uri)
        cursor = min(cursor, len(doc.text))
        if rng.random() < 0.4:
            t += 0.01
            pending = pending_edit_dict(doc.history.pending)
            how = rng.choice(["logged", "logged", "no version", "absent"])
            if pending is not None and how == "no version":
                del pending["version"]
            if how == "absent":
                legacy.append(f"r{n}")
            store.record(SuggestionRequested("s", f"r{n}", "next_edit" if rng.random() < 0.15 else "completion", uri,
                                             doc.version, *position_at(doc.text, cursor), pending_edit=pending, ts=t))
    doc = docs.get(uri)
    t += 0.1
    log(docs.close(uri))
    store.record(DocumentSnapshot("s", uri, *doc.snapshot(), ts=t))
    store.record(DocumentClosed("s", uri, ts=t))
    store.close()
    with sqlite3.connect(db) as conn:
        for sid in legacy:
            conn.execute("UPDATE suggestion_events SET payload = json_remove(payload, '$.pending_edit')"
                         " WHERE suggestion_id = ?", [sid])
    conn.close()


def _logged_anyhow(db: Path, rng: random.Random) -> None:
    """Edits and requests at any positions: past line ends and the text's end, ends before starts, pending edits
    that do not fit, requests past the last logged version, a snapshot the edits do not rebuild."""
    uri, t, version = "file:///b.py", 50.0, 1
    text = "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 30)))
    with TelemetryStore(db) as store:
        store.record(SessionStarted("s", "c", "1", "0.1.0", {}, {}, ts=t))
        store.record(DocumentOpened("s", uri, 1, "python", text, ts=t))
        for n in range(rng.randint(1, 60)):
            t += rng.choice([0.1, 0.5, 2.0])
            lines = len(line_starts(text))
            sl, sc = rng.randint(-1, lines + 1), rng.randint(0, 8)
            el, ec = (sl, sc + rng.randint(0, 3)) if rng.random() < 0.7 else (rng.randint(-1, lines + 1),
                                                                              rng.randint(0, 8))
            inserted = rng.choice(PIECES + [""])
            a, b = offset_at(text, sl, sc), offset_at(text, el, ec)
            version += rng.random() < 0.7  # a multi-cursor change logs several edits with one version
            store.record(EditEvent("s", uri, version, sl, sc, el, ec, text[a:b], inserted, t - 0.05,
                                   rng.randint(1, 4), ts=t))
            if b >= a:
                text = text[:a] + inserted + text[b:]
            if rng.random() < 0.5:
                t += 0.01
                lines = len(line_starts(text))
                pending = None
                if rng.random() < 0.6:
                    line, character = rng.randint(0, lines), rng.randint(0, 6)
                    pending = {"start_line": line, "start_character": character, "end_line": line,
                               "end_character": character + rng.randint(0, 2),
                               "removed_text": rng.choice(["", "a", "\n"]), "inserted_text": rng.choice(PIECES),
                               "ts_start": t - rng.choice([0.05, 0.5]), "ts": t - 0.01,
                               "keystrokes": rng.randint(1, 3), "version": version + rng.choice([0, 1])}
                store.record(SuggestionRequested("s", f"q{n}", rng.choice(["completion", "next_edit"]), uri,
                                                 version + rng.choice([0, 0, 1]), rng.randint(-1, lines + 1),
                                                 rng.randint(0, 9), pending_edit=pending, ts=t))
        t += 0.1
        store.record(DocumentSnapshot("s", uri, version, text if rng.random() < 0.8 else text + "x", ts=t))
        store.record(DocumentClosed("s", uri, ts=t))


def _script(db: Path) -> tuple:
    """Everything a replay takes from the script: steps, requests, final texts, verification, issues."""
    conn = open_readonly(db)
    try:
        script = reconstruct.build_script(conn, "s")
    finally:
        conn.close()
    steps = [(s.ts, s.kind, s.version, s.text, s.start, s.end, s.start_offset, s.end_offset, s.inserted, s.continued,
              None if s.request is None else s.request.suggestion_id) for s in script.steps]
    requests = [(r.suggestion_id, r.version, r.line, r.character, r.fidelity, r.offset, r.reference, r.kind,
                 r.next_text, r.ts) for r in script.requests]
    return steps, requests, script.final_texts, script.verified, script.issues


@pytest.mark.parametrize("seed", range(25))
def test_scripts_are_the_old_per_edit_code_s(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    """Seeded sessions, typed through the server's document store or logged at any positions: the same steps
    (positions, offsets, pieces, times, versions), requests (offsets, fidelity, references, next texts), final texts
    and issues as the old per-edit code gives."""
    for name, write in (("typed", lambda db, rng: _typed_session(db, rng, _random_text(rng, rng.randint(0, 40)),
                                                                 rng.randint(5, 100))),
                        ("logged", _logged_anyhow)):
        db = tmp_path / f"{name}.sqlite3"
        write(db, random.Random(seed))
        new = _script(db)
        with monkeypatch.context() as patched:
            _use_old_per_edit_code(patched)
            old = _script(db)
        assert new == old, name


# -- the work per edit ------------------------------------------------------------------------------------------------

def _work(db: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, int]:
    """(characters the line-break pattern scanned, lines of ``telemetry`` code run) to build the session's script."""
    counting = CountingBreaks(text_module._BREAK)
    lines = 0
    folder = str(Path(reconstruct.__file__).parent)

    def trace(frame, event, arg):
        nonlocal lines
        if not frame.f_code.co_filename.startswith(folder):
            return None
        if event == "line":
            lines += 1
        return trace

    with monkeypatch.context() as patched:
        patched.setattr(text_module, "_BREAK", counting)
        previous = sys.gettrace()
        sys.settrace(trace)
        try:
            _script(db)
        finally:
            sys.settrace(previous)
    return counting.scanned, lines


def test_a_change_costs_what_it_touches_not_the_document(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same typing (the same keystrokes, requests and pending edits) after 2,000 lines of a file and after 16,000:
    the work each further edit adds must not grow with the lines before it. Work is counted, not timed: characters
    the line-break pattern scans and lines of ``telemetry`` run. The old code found each change's place by scanning
    the whole text and diffed it from the text's start, so each edit cost about eight times as much in the larger
    file; the text is split into lines once, at open."""
    body = "".join(f"def f{i}(x):\r\n    return x + {i}\n" for i in range(40))

    def session(name: str, filler_lines: int, keystrokes: int) -> Path:
        filler = "".join(f"value_{i} = compute(value_{i - 1})  # é\n" for i in range(filler_lines))
        db = tmp_path / f"{name}.sqlite3"
        _typed_session(db, random.Random(7), filler + body, keystrokes, cursor_from=len(filler))
        return db

    def per_edit(filler_lines: int) -> tuple[float, float]:
        short = _work(session(f"short{filler_lines}", filler_lines, 60), monkeypatch)
        long = _work(session(f"long{filler_lines}", filler_lines, 180), monkeypatch)
        return (long[0] - short[0]) / 120, (long[1] - short[1]) / 120

    small, large = per_edit(2_000), per_edit(16_000)
    assert large[0] <= 1.5 * small[0] + 200, f"characters scanned per edit: {small[0]:.0f} -> {large[0]:.0f}"
    assert large[1] <= 1.5 * small[1] + 200, f"lines run per edit: {small[1]:.0f} -> {large[1]:.0f}"
