"""The decoding runtime, a tenth look: the test failed on the code before."""

from __future__ import annotations

import argparse
from pathlib import Path

from models.runtime import EarlyExitRuntime

REPO = Path(__file__).resolve().parents[1]


def test_a_healed_prompt_keeps_room_for_its_text_written_again_in_single_bytes():
    """The prompt kept room for the tokens taken back, but healing lets the suggestion write their text again in more
    tokens (any shorter start of it is allowed, down to one byte a token): a suggestion of a prompt at its budget ran
    past the trained context (4 of 40 such prompts, 48 tokens each, a throwaway script)."""
    rt = EarlyExitRuntime(REPO / "models" / "default", threads=1)
    text = Path(argparse.__file__).read_text(encoding="utf-8")  # the standard library's: the same each run
    budget = min(rt.context_tokens, rt.max_len - 2)
    at_budget = 0
    for cut in range(8_000, 8_000 + 7 * 1_000, 7):
        prompt = rt.completion_prompt(text[:cut], text[cut:], reserve=48, heal_tokens=2)
        room = budget - 48 - len(prompt.heal.encode("utf-8"))
        assert len(prompt.ids) <= room, (cut, len(prompt.ids), prompt.heal)
        at_budget += len(prompt.ids) == room
    assert at_budget >= 3  # prompts filling their room: the bound was met where it binds
