"""Text metrics for completion quality (definitions: shared/design/metrics.md).

All comparisons are on whitespace-stripped strings: exact match, edit similarity
(1 - Levenshtein / max length), token-level ROUGE-L (LCS F-measure over identifier and
punctuation tokens) and simulated acceptance (exact, or edit similarity >= 0.8; the replay oracle's rule also
counts a correct prefix).
Standard library only, so benchmarks and the server may both use it.
"""

from __future__ import annotations

import re

TOKEN_RE = re.compile(r"\w+|[^\w\s]")
ACCEPT_SIMILARITY = 0.8


def first_line(text: str) -> str:
    """The text up to its first line break (\\n, \\r\\n or \\r)."""
    return re.split(r"\r\n|\r|\n", text, maxsplit=1)[0]


def code_tokens(text: str) -> list[str]:
    """Identifier/number runs and single punctuation characters; whitespace is dropped."""
    return TOKEN_RE.findall(text)


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions of one character each)."""
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return len(a)
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def exact_match(prediction: str, reference: str) -> bool:
    return prediction.strip() == reference.strip()


def edit_similarity(prediction: str, reference: str) -> float:
    """1 - Levenshtein / max length of the stripped strings; 1.0 when both are empty."""
    p, r = prediction.strip(), reference.strip()
    longest = max(len(p), len(r))
    if longest == 0:
        return 1.0
    return 1.0 - levenshtein(p, r) / longest


def lcs_length(a: list, b: list) -> int:
    if len(a) < len(b):
        a, b = b, a
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b, 1):
            cur.append(prev[j - 1] + 1 if x == y else max(prev[j], cur[j - 1]))
        prev = cur
    return prev[-1]


def rouge_l(prediction: str, reference: str) -> float:
    """Token-level ROUGE-L F1: LCS over `code_tokens`; 1.0 when both have no tokens, 0.0 when one has none."""
    p, r = code_tokens(prediction), code_tokens(reference)
    if not p and not r:
        return 1.0
    if not p or not r:
        return 0.0
    lcs = lcs_length(p, r)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(p), lcs / len(r)
    return 2 * precision * recall / (precision + recall)


def is_accepted(suggestion: str, target: str, similarity: float = ACCEPT_SIMILARITY) -> bool:
    """Simulated acceptance: the suggestion's first line equals the target's first line (stripped)
    or is at least `similarity` edit-similar to it. An empty suggestion is never accepted."""
    s, t = first_line(suggestion).strip(), first_line(target).strip()
    if not s:
        return False
    return s == t or edit_similarity(s, t) >= similarity


def matches_exactly(suggestion: str, target: str) -> bool:
    """The strictest simulated acceptance: the suggestion's first line is the target's first line (spaces around
    aside). :func:`is_accepted` also takes near misses ('Scdoc' for 'scdoc'), as a user who accepts and then
    fixes one character would."""
    return is_accepted(suggestion, target, similarity=1.0)


def goes_on_to_type(suggestion: str, typed: str, similarity: float = ACCEPT_SIMILARITY, prefix: bool = True,
                    min_chars: int = 2) -> bool:
    """The replay oracle's acceptance (telemetry.oracle): the suggestion's first line is what the user goes on
    to type: ``typed``'s first line begins with it (trailing spaces aside; with ``prefix``), equals it (spaces
    around aside), or is at least ``similarity`` edit-similar to it. Unlike :func:`is_accepted`, a correct but
    shorter suggestion counts; a first line shorter than ``min_chars`` (spaces aside) never does."""
    s, r = first_line(suggestion), first_line(typed)
    if len(s.strip()) < min_chars:
        return False
    if prefix and r.startswith(s.rstrip()):
        return True
    if s.strip() == r.strip():
        return True
    return edit_similarity(s, r) >= similarity


def chars_saved(suggestion: str, target: str) -> int:
    """Characters the user need not type when accepting: the target's first line minus the edits
    still needed to turn the suggestion's first line into it (never negative)."""
    s, t = first_line(suggestion).strip(), first_line(target).strip()
    return max(0, len(t) - levenshtein(s, t))
