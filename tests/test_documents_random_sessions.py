"""The document store against a plain-string model: random sessions with lone CRs, astral and combining
characters, ranges outside the document or reversed, batches and full replacements."""

from __future__ import annotations

import random
import re

from lsp_server.services.documents import DocumentStore
from lsp_server.services.positions import LineIndex, Position, Range, line_starts, offset_at

URI = "file:///project/example.py"
ALPHABET = ["a", "b", " ", "\t", "\n", "\r", "\r\n", "\U0001f600", "\U00020000", "e\u0301", "\u4e00"]
_BREAK = re.compile(r"\r\n|\r|\n")


def model_offset(text: str, position: Position) -> int:
    """Clamped str index of a (non-negative) LSP position, spelled out one character at a time."""
    bounds, begin = [], 0
    for m in _BREAK.finditer(text):
        bounds.append((begin, m.start()))
        begin = m.end()
    bounds.append((begin, len(text)))
    if position.line >= len(bounds):
        return len(text)
    i, end = bounds[position.line]
    units = 0
    while i < end and units + (2 if ord(text[i]) > 0xFFFF else 1) <= position.character:
        units += 2 if ord(text[i]) > 0xFFFF else 1
        i += 1
    return i


def model_apply(text: str, rng: Range | None, new_text: str) -> str:
    if rng is None:
        return new_text
    s, e = sorted((model_offset(text, rng.start), model_offset(text, rng.end)))
    return text[:s] + new_text + text[e:]


def random_text(rnd: random.Random, most: int) -> str:
    return "".join(rnd.choice(ALPHABET) for _ in range(rnd.randrange(most + 1)))


def test_random_sessions_with_lone_crs_and_out_of_range_ranges_match_a_plain_string_model():
    rnd = random.Random(20250611)
    for trial in range(150):
        ref = random_text(rnd, 20)
        store = DocumentStore()
        doc = store.open(URI, "python", 0, ref)
        for v in range(1, 25):
            batch = []
            for _ in range(rnd.choice([1, 1, 2, 3])):
                lines = len(line_starts(ref))

                def pos() -> Position:
                    return Position(rnd.randrange(lines + 2), rnd.randrange(8))

                rng = None if rnd.random() < 0.08 else Range(pos(), pos())
                new = random_text(rnd, 2)
                ref = model_apply(ref, rng, new)
                batch.append((rng, new))
            store.change(URI, v, batch, now=float(v))
            assert doc.text == ref, (trial, v, batch)
            assert doc.index.starts == line_starts(ref), (trial, v)


def test_recorded_edits_replayed_on_the_opened_text_give_the_current_text_after_every_change():
    rnd = random.Random(61)
    for trial in range(60):
        opened = random_text(rnd, 25)
        store = DocumentStore(max_edits=10_000, max_chars=10**9)
        doc = store.open(URI, "python", 1, opened)
        finalized = []
        now, version = 100.0, 1
        for step in range(100):
            text, idx = doc.text, doc.index
            pending = doc.history.pending
            tip = idx.offset_at(pending.inserted_end) if pending is not None and rnd.random() < 0.7 else None
            where = tip if tip is not None else rnd.randrange(len(text) + 1)
            kind = rnd.random()
            if kind < 0.4:  # typing
                batch = [(Range(idx.position_at(where), idx.position_at(where)), rnd.choice(ALPHABET))]
            elif kind < 0.6:  # backspace
                batch = [(Range(idx.position_at(max(where - 1, 0)), idx.position_at(where)), "")]
            elif kind < 0.7:  # delete forward
                batch = [(Range(idx.position_at(where), idx.position_at(where + 1)), "")]
            elif kind < 0.8:  # a selection replaced, or a paste
                a, b = sorted((rnd.randrange(len(text) + 1), rnd.randrange(len(text) + 1)))
                batch = [(Range(idx.position_at(a), idx.position_at(b)), random_text(rnd, 6))]
            elif kind < 0.85:
                batch = [(None, random_text(rnd, 10))]
            else:  # several changes in one didChange, each on the text the previous ones left
                batch = []
                for _ in range(rnd.randrange(1, 4)):
                    a = rnd.randrange(len(text) + 1)
                    b = min(len(text), a + rnd.choice([0, 0, 1]))
                    new = rnd.choice(ALPHABET + [""])
                    batch.append((Range(idx.position_at(a), idx.position_at(b)), new))
                    text = text[:a] + new + text[b:]
                    idx = LineIndex(text)
            now += rnd.choice([0.05, 0.2, 0.2, 0.9, 1.3])
            version += 1
            finalized.extend(store.change(URI, version, batch, now=now).finalized)
            records = finalized + ([doc.history.pending] if doc.history.pending is not None else [])
            assert doc.history.recent() == records
            replay = opened
            for rec in records:
                s = offset_at(replay, rec.start, clamp=False)
                e = offset_at(replay, rec.end, clamp=False)
                assert replay[s:e] == rec.removed_text, (trial, step, rec)
                replay = replay[:s] + rec.inserted_text + replay[e:]
            assert replay == doc.text, (trial, step)
