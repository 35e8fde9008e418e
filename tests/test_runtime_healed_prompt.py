"""The decoding runtime, a tenth look: the test failed on the code before."""

from __future__ import annotations

import argparse
from pathlib import Path

from models.runtime import HEAL_ALLOWANCE, EarlyExitRuntime

REPO = Path(__file__).resolve().parents[1]


def test_a_healed_prompt_keeps_room_for_its_text_written_again_in_single_bytes():
    """The prompt kept room for the tokens taken back, but healing lets the suggestion write their text again in more
    tokens (any shorter start of it is allowed, down to one byte a token): a suggestion of a prompt at its budget ran
    past the trained context (4 of 40 such prompts, 48 tokens each, a throwaway script)."""
    rt = EarlyExitRuntime(REPO / "models" / "default", threads=1)
    text = Path(argparse.__file__).read_text(encoding="utf-8")  # the standard library's: the same each run
    budget = min(rt.context_tokens, rt.max_len - 2)
    near = 0
    for cut in range(8_000, 8_000 + 7 * 1_000, 7):
        prompt = rt.completion_prompt(text[:cut], text[cut:], reserve=48, heal_tokens=2)
        room = budget - 48 - len(prompt.heal.encode("utf-8"))
        assert len(prompt.ids) <= room, (cut, len(prompt.ids), prompt.heal)
        near += len(prompt.ids) > room - HEAL_ALLOWANCE - 16
    assert near >= 3  # prompts near their room: the bound was met where it binds


def test_the_prefix_a_healed_prompt_keeps_does_not_follow_the_text_taken_back():
    """The room of a healed prompt's prefix was its budget less the bytes taken back, which change with every
    keystroke (an indentation token alone is a dozen): the prefix's cut (on a grid of 128 tokens) moved back and forth
    as a line was typed, the KV cache lost with it and the prompt 128 tokens shorter on one keystroke than on the next
    (63 of 2,153 keystrokes typing standard-library lines, 8 without healing). It is cut where a prompt without
    healing and a fixed allowance for the text taken back is: the text typed alone moves it."""
    rt = EarlyExitRuntime(REPO / "models" / "default", threads=1)
    info = rt.tokenizer
    text = Path(argparse.__file__).read_text(encoding="utf-8")
    cut_somewhere = 0
    for start in range(20_000, 20_000 + 40 * 211, 211):
        for typed in range(1, 30):
            prefix, suffix = text[start - 4_000:start + typed], text[start + typed:]
            healed = rt.completion_prompt(prefix, suffix, reserve=48, heal_tokens=2)
            plain = rt.completion_prompt(prefix, suffix, reserve=48 + HEAL_ALLOWANCE)
            kept, kept_plain = (p[p.index(info.fim_middle_id) + 1:] for p in (healed.ids, plain.ids))
            assert kept_plain[:len(kept)] == kept, (start, typed, healed.heal)  # the same start, less the text taken back
            cut_somewhere += len(kept_plain) < len(info.encode(prefix))
    assert cut_somewhere > 100  # prompts the budget cuts
