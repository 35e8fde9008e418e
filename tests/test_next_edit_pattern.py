"""The whole-occurrence matcher of the next-edit baseline (`_pattern`) and the line-count check of
`NextEditService.predict`: the same answers as the former regex and whole-text checks, at a cost that does not
follow the length of the replaced text (the matcher) or build a table of every line (the check)."""

from __future__ import annotations

import itertools
import random
import re
import time

import pytest

from lsp_server.services.ledger import SuggestionLedger
from lsp_server.services.next_edit import NextEditService, _lsp_lines
from lsp_server.services.positions import Position
from lsp_server.services.recorder import SessionRecorder
from lsp_server.services.scheduler import InferenceScheduler
from models.next_edit.baseline import _pattern
from telemetry.text import line_starts
from tests.lsp_support import best_time
from tests.telemetry_fakes import ListStore


def reference_pattern(old: str) -> re.Pattern:
    """The former `_pattern`, kept as the reference: ``old`` compiled into a regex with a word guard at each end
    that is a word character."""
    is_word = lambda ch: bool(re.match(r"\w", ch))  # noqa: E731
    head = r"(?<!\w)" if is_word(old[0]) else ""
    tail = r"(?!\w)" if is_word(old[-1]) else ""
    return re.compile(head + re.escape(old) + tail)


# Few distinct characters, so that occurrences are frequent, overlap and sit next to each other: ASCII letters and
# digits, the underscore, letters and digits of other scripts (one outside the BMP), characters that look like
# word characters and are not (a combining accent, a superscript that is, a fraction that is not), punctuation,
# regex metacharacters and whitespace.
_WORDY = ["a", "b", "Z", "1", "_", "é", "ß", "中", "٣", "²", "\U0001d400", "ǅ"]
_OTHER = [" ", ".", "(", ")", "-", "\u0301", "½", "\n", "\t", "*", "\\", "$", "\u2028", "\x0c"]
_ALL = _WORDY + _OTHER


def _random_text(rng: random.Random, size: int, alphabet: list[str]) -> str:
    return "".join(rng.choice(alphabet) for _ in range(size))


def _random_old(rng: random.Random, text: str) -> str:
    r = rng.random()
    if r < 0.5 and text:  # a piece of the text itself: it occurs at least once
        i = rng.randrange(len(text))
        return text[i:i + rng.randint(1, 5)]
    if r < 0.7:  # a repetition: overlapping occurrences
        return rng.choice(_ALL) * rng.randint(1, 4)
    if r < 0.85:  # starting with one kind of character and ending with the other
        return rng.choice(_WORDY) + _random_text(rng, rng.randint(0, 2), _ALL) + rng.choice(_OTHER)
    return rng.choice(_OTHER) + _random_text(rng, rng.randint(0, 2), _ALL) + rng.choice(_WORDY)


def _spans(found) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in found]


def _check_same(old: str, text: str) -> None:
    ref, new = reference_pattern(old), _pattern(old)
    # search: whether and where, from the start and from every position (a guard looks before the position)
    for pos in [0, *range(-2, len(text) + 3)]:
        a, b = ref.search(text, pos), new.search(text, pos)
        assert (a is None) == (b is None), (old, text, pos)
        if a is not None:
            assert (a.start(), a.end(), a.span(), a.group()) == (b.start(), b.end(), b.span(), b.group()), \
                (old, text, pos)
    assert bool(ref.search(text)) == bool(new.search(text))
    # finditer: leftmost, non-overlapping
    assert _spans(ref.finditer(text)) == _spans(new.finditer(text)), (old, text)
    # sub with a function: each match replaced (callers ignore the match; this one shows where it was)
    mark = lambda m: f"<{m.start()}:{m.end()}:{m.group()}>"  # noqa: E731
    assert ref.sub(mark, text) == new.sub(mark, text), (old, text)
    assert ref.sub(lambda _m: "NEW", text) == new.sub(lambda _m: "NEW", text), (old, text)


def test_matcher_matches_the_regex_on_random_strings():
    rng = random.Random(20240611)
    for size in [0, 1, 2, 3, 5, 8, 13, 40]:
        for _ in range(250):
            alphabet = rng.choice([_ALL, _WORDY + [" ", "."], ["a", "_", " ", "."], ["a", "b", "é", "-"]])
            text = _random_text(rng, size, alphabet)
            _check_same(_random_old(rng, text), text)


def test_matcher_matches_the_regex_on_identifiers_and_code():
    rng = random.Random(7)
    names = ["x", "xs", "x_1", "self", "foo", "foo_bar", "Foo", "__init__", "é1", "名前", "count", "counter"]
    for _ in range(1500):
        parts = []
        for _ in range(rng.randint(1, 12)):
            parts.append(rng.choice(names))
            parts.append(rng.choice([" ", ".", "(", ")", ", ", " = ", "_", "", "", "1", "\n", "f(", "[x]"]))
        text = "".join(parts)
        old = rng.choice([rng.choice(names), rng.choice(names) + rng.choice(["(", ".", " ", "_"]),
                          rng.choice(["(", ".", " ", ")"]) + rng.choice(names), "f(x)", ".x", "x.", "(", "_", " = "])
        _check_same(old, text)


def test_matcher_matches_the_regex_on_every_short_string():
    # every text of up to 5 characters over a tiny alphabet, against every ``old`` of up to 3: all the ways
    # occurrences can overlap, touch each other or the ends of the text
    alphabet = ["a", "_", ".", "é"]
    olds = ["".join(p) for n in (1, 2, 3) for p in itertools.product(alphabet, repeat=n)]
    texts = ["".join(p) for n in range(6) for p in itertools.product(alphabet, repeat=n)]
    for old in olds:
        ref, new = reference_pattern(old), _pattern(old)
        for text in texts:
            assert _spans(ref.finditer(text)) == _spans(new.finditer(text)), (old, text)
            assert ref.sub(lambda _m: "#", text) == new.sub(lambda _m: "#", text), (old, text)
            for pos in range(len(text) + 1):
                a, b = ref.search(text, pos), new.search(text, pos)
                assert (a and a.span()) == (b and b.span()), (old, text, pos)


def test_matcher_word_test_is_the_regex_one_over_unicode():
    # the guards use the regex's Unicode word test: one occurrence of "x" after/before each code point
    # (surrogates and the letters, digits, marks and numbers of every script included)
    chars = "".join(chr(c) for c in range(0x0, 0x3400)) + "\U0001d400\U0001f600\U00010900\U000e0100"
    text = "x".join(chars) + "x"
    for old in ["x", "(x", "x("]:
        assert _spans(reference_pattern(old).finditer(text)) == _spans(_pattern(old).finditer(text)), old
    assert reference_pattern("x").sub(lambda _m: "y", text) == _pattern("x").sub(lambda _m: "y", text)


def test_matcher_refuses_an_empty_old_as_before():
    with pytest.raises(IndexError):
        _pattern("")


_FILE = [f"    value_{i} = compute(value_{i - 1}, {i})\n" for i in range(2000)]


def _use_matcher(ident: str, line: str) -> None:
    """What a request does with the matcher for a replacement of ``ident`` (the identifier of ``line``): build it,
    look for it on every line of a file, then find and substitute it on the line that holds it."""
    pattern = _pattern(ident)
    for text in _FILE:
        assert not pattern.search(text)
    assert pattern.search(line).span() == (8, 8 + len(ident))
    assert len(list(pattern.finditer(line))) == 1
    assert len(pattern.sub(lambda _m: "other", line)) == 14


def test_matcher_cost_does_not_follow_the_length_of_old():
    # a new identifier each time (each request has its own): nothing built for an earlier one is reused
    def timed(size: int) -> float:
        idents = [f"h{size}_{k}_" + "0123456789abcdef" * size for k in range(4)]
        lines = [f"TABLE = {ident}\n" for ident in idents]
        _use_matcher(idents[3], lines[3])
        runs = iter(range(3))
        return best_time(lambda: (lambda k: _use_matcher(idents[k], lines[k]))(next(runs)))

    t_small = timed(640)  # about 10 kB
    t_large = timed(64000)  # about 1 MB
    assert t_large < 40 * t_small, (t_small, t_large)  # about 6 here; 166 when the pattern was compiled


def test_matcher_on_a_long_old_overlapping_itself_all_along_the_text():
    # each occurrence of a long periodic ``old`` fails a guard and the next overlaps it: `str.find` alone would
    # compare ``old`` again for each one (time in len(old) * len(text)); the result stays the regex's
    for old, text in [((".aa" * 3000)[:-1], ".aa" * 30000), (("ab." * 3000)[:-1], "ab." * 30000 + "ab"),
                      ("a" * 5000, "a" * 60000), ("a" * 5000 + ".", "a" * 60000 + ".")]:
        ref = reference_pattern(old)
        t0 = time.perf_counter()
        expected = (_spans(ref.finditer(text)), ref.sub(lambda _m: "#", text))
        t_ref = time.perf_counter() - t0
        t0 = time.perf_counter()
        new = _pattern(old)
        got = (_spans(new.finditer(text)), new.sub(lambda _m: "#", text))
        t_new = time.perf_counter() - t0
        assert got == expected, old[:10]
        assert t_new < 5 * t_ref + 0.05, (old[:10], t_ref, t_new)


# --- the line-count check of NextEditService.predict --------------------------------------------------------

_PY_ONLY = ["\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]
_LSP = ["\n", "\r", "\r\n"]


def reference_lines(text: str) -> int | None:
    """The former check, kept as the reference: the LSP line count when Python's ``splitlines`` counts the same
    lines, else None."""
    lines = len(line_starts(text))
    if len(text.splitlines(keepends=True)) != lines - (1 if text.endswith(("\n", "\r")) else 0):
        return None
    return lines


def test_line_check_matches_on_every_short_text():
    # every text of up to 4 characters over the breaks of both kinds (CR and LF joining, or not) and a letter
    alphabet = ["a", "\n", "\r", *_PY_ONLY]
    for n in range(5):
        for p in itertools.product(alphabet, repeat=n):
            text = "".join(p)
            assert _lsp_lines(text) == reference_lines(text), repr(text)


def test_line_check_differs_from_holding_a_python_only_break_at_the_ends():
    # Python and LSP disagree when the text holds a break only Python counts, except where that break is the only
    # one and the text's last character (Python ends the line there, LSP ends the text there); and they "disagree"
    # on the empty text (no line for Python, one for LSP)
    assert reference_lines("") is None and _lsp_lines("") is None
    for ch in _PY_ONLY:
        assert reference_lines("a" + ch) == _lsp_lines("a" + ch) == 1
        assert reference_lines("a\n" + ch) == _lsp_lines("a\n" + ch) == 2
        assert reference_lines("a" + ch + "b") is None and _lsp_lines("a" + ch + "b") is None
        assert reference_lines(ch + ch) is None and _lsp_lines(ch + ch) is None
        assert reference_lines("a" + ch + "\n") is None and _lsp_lines("a" + ch + "\n") is None
    for text in ["a", "\n", "\r", "\r\n", "\n\r", "a\r\nb\rc\nd", "a\r\r\n\n"]:
        assert reference_lines(text) == _lsp_lines(text) == len(line_starts(text))


def test_line_check_matches_on_random_texts():
    rng = random.Random(11)
    plain = ["a", "b", " ", "é", "\U0001f600", "\t"]
    for _ in range(3000):
        size = rng.choice([1, 2, 5, 20, 80])
        odd = rng.choice([0.0, 0.0, 0.01, 0.1])
        out = []
        for _ in range(size):
            r = rng.random()
            out.append(rng.choice(_LSP) if r < 0.2 else rng.choice(_PY_ONLY) if r < 0.2 + odd else rng.choice(plain))
        if rng.random() < 0.2:
            out.append(rng.choice(_PY_ONLY))
        text = "".join(out)
        assert _lsp_lines(text) == reference_lines(text), repr(text)


def test_predict_checks_lines_without_a_table_of_every_line():
    service = NextEditService(InferenceScheduler(), SuggestionLedger(), SessionRecorder(ListStore()))
    text = "".join(f"row_{i} = [{i}, {i * 7}, 'cell']\n" for i in range(330000))  # about 10 MB
    at = Position(10, 0)
    assert service.predict(text, [], at, predictor="heuristic") is None  # no history: nothing to continue
    t_reference = best_time(lambda: reference_lines(text))
    t_predict = best_time(lambda: service.predict(text, [], at, predictor="heuristic"))
    assert t_predict < t_reference / 2, (t_reference, t_predict)  # about 1/12 here; 1/1 before
