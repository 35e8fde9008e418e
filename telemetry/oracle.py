"""The replay oracle: would the programmer have accepted a suggestion they never saw?

A suggestion is accepted when its first line matches what the programmer really typed next at the
cursor (``match``: ``prefix``, the default: what they typed begins with it, trailing spaces aside;
``exact``: the first lines are equal, surrounding whitespace aside), or when the two first lines are
at least ``similarity`` edit-similar (``models.metrics.edit_similarity``; 0.8 by default). A first
line shorter than ``min_chars`` (spaces aside) never counts: a lone ``)`` matches what comes next too
often to say anything about the model.
"""

from __future__ import annotations

from dataclasses import dataclass

from models.metrics import ACCEPT_SIMILARITY, chars_saved, first_line, goes_on_to_type

from .text import chars_in_units

MATCH_MODES = ("prefix", "exact")


@dataclass(frozen=True)
class Oracle:
    similarity: float = ACCEPT_SIMILARITY
    match: str = "prefix"
    min_chars: int = 2

    def __post_init__(self) -> None:
        if self.match not in MATCH_MODES:
            raise ValueError(f"oracle match must be one of {', '.join(MATCH_MODES)}, not {self.match!r}")
        if not 0.0 <= self.similarity <= 1.0:
            raise ValueError(f"oracle similarity must be between 0 and 1, not {self.similarity}")
        if self.min_chars < 1:
            raise ValueError(f"oracle minimum length must be at least 1, not {self.min_chars}")

    def accepts(self, suggestion: str, reference: str) -> bool:
        return goes_on_to_type(suggestion, reference, self.similarity, self.match == "prefix", self.min_chars)

    @staticmethod
    def chars_saved(suggestion: str, reference: str) -> int:
        """Characters an accepted suggestion saved typing: ``models.metrics.chars_saved`` on the typed text's
        first line, never more than the suggestion's own first line."""
        s = first_line(suggestion)
        return min(len(s.strip()), chars_saved(s, reference))


def accepted_chars(text: str, units: int | None) -> int:
    """The characters (as the oracle counts them) in the first ``units`` UTF-16 code units of ``text``, all of it when
    None: an accepted length, which the protocol counts in UTF-16, as characters saved. Counted in UTF-16, a
    suggestion with an emoji saved more in its recording than in its replay, where characters are counted."""
    return len(text) if units is None else chars_in_units(text, units)
