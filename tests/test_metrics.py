"""Text metrics of completion quality (shared/design/metrics.md)."""

from __future__ import annotations

import pytest

from models.metrics import (chars_saved, code_tokens, edit_similarity, exact_match, first_line, goes_on_to_type,
                            is_accepted, lcs_length, levenshtein, matches_exactly, rouge_l)


def test_levenshtein():
    assert levenshtein("kitten", "sitting") == 3
    assert levenshtein("", "abc") == 3
    assert levenshtein("abc", "") == 3
    assert levenshtein("abc", "abc") == 0
    assert levenshtein("flaw", "lawn") == 2


def test_exact_match_strips_whitespace():
    assert exact_match("  x = 1 ", "x = 1")
    assert exact_match("", "   ")
    assert not exact_match("x = 1", "x = 2")
    assert not exact_match("x=1", "x = 1")


def test_edit_similarity():
    assert edit_similarity("kitten", "sitting") == pytest.approx(1 - 3 / 7)
    assert edit_similarity("abc", "abc") == 1.0
    assert edit_similarity(" abc\n", "abc") == 1.0
    assert edit_similarity("", "") == 1.0
    assert edit_similarity("abc", "") == 0.0
    assert edit_similarity("", "abc") == 0.0
    assert edit_similarity("abcd", "wxyz") == 0.0
    assert edit_similarity("return x", "return y") == pytest.approx(7 / 8)


def test_code_tokens():
    assert code_tokens("self.x_1 += foo(3)") == ["self", ".", "x_1", "+", "=", "foo", "(", "3", ")"]
    assert code_tokens("  \t ") == []


def test_lcs_length():
    assert lcs_length(list("ABCBDAB"), list("BDCABA")) == 4
    assert lcs_length([], [1]) == 0


def test_rouge_l():
    assert rouge_l("foo(a, b)", "foo(a, b)") == 1.0
    # tokens foo ( a , b ) vs foo ( a , c ): LCS 5 of 6 each side
    assert rouge_l("foo(a, b)", "foo(a, c)") == pytest.approx(5 / 6)
    # precision 2/4, recall 2/2 -> F1 2/3
    assert rouge_l("a b c d", "a c") == pytest.approx(2 / 3)
    assert rouge_l("x", "y") == 0.0
    assert rouge_l("", "") == 1.0
    assert rouge_l("", "x") == 0.0
    assert rouge_l("x", "") == 0.0
    # whitespace does not matter, order does
    assert rouge_l("a+b", "a + b") == 1.0
    assert rouge_l("b a", "a b") == pytest.approx(0.5)


def test_first_line():
    assert first_line("abc\ndef") == "abc"
    assert first_line("abc\r\ndef") == "abc"
    assert first_line("abc") == "abc"
    assert first_line("") == ""


def test_simulated_acceptance():
    assert is_accepted("x = compute(a, b)", " x = compute(a, b) ")
    assert is_accepted("x = compute(a, b)\nmore", "x = compute(a, b)")  # first line only
    assert is_accepted("return value + 1", "return value + 2")  # ES 15/16 >= 0.8
    assert not is_accepted("return", "return value + 2")
    assert not is_accepted("", "")  # an empty suggestion is never shown, so never accepted
    assert not is_accepted("   ", "x")


def test_exact_match_of_the_first_line_takes_no_near_miss():
    assert matches_exactly("x = compute(a, b)\nmore", " x = compute(a, b) ")
    assert not matches_exactly("return value + 1", "return value + 2")  # is_accepted takes it
    assert not matches_exactly("Scdoc'", "scdoc'")
    assert not matches_exactly("return", "return value + 2")
    assert not matches_exactly("", "")


def test_goes_on_to_type_also_counts_a_correct_prefix():
    # The bench's rule rejects a correct but short suggestion; the replay oracle's accepts it.
    assert not is_accepted("return", "return value + 2")
    assert goes_on_to_type("return", "return value + 2")
    assert goes_on_to_type("return value + 1", "return value + 2")  # edit-similar, as in is_accepted
    assert not goes_on_to_type("return", "return value + 2", prefix=False)
    assert not goes_on_to_type(")", "):")  # too short to say anything
    assert goes_on_to_type(")", "):", min_chars=1)
    assert not goes_on_to_type("retrun x", "return value + 2")


def test_chars_saved():
    assert chars_saved("foo(bar)", "foo(bar)") == 8
    assert chars_saved("foo(baz)", "foo(bar)") == 7
    assert chars_saved("", "abc") == 0
    assert chars_saved("completely different", "x") == 0
