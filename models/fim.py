"""Prompt layout shared by training and serving: suffix-prefix-middle (SPM) fill-in-the-middle.

    <|fim_suffix|> suffix <|fim_middle|> prefix -> middle ... <|endoftext|>

The prefix runs straight into the middle, so generation is a plain continuation, and as the user
types the prompt grows only at its end: the KV cache of everything before stays valid. A prefix too
long for the budget loses its oldest tokens in steps of ``PREFIX_TOKEN_GRID``, not one per keystroke,
so the kept start (and the KV cache) survives the typing of that many tokens.
"""

from __future__ import annotations

from models.tokenizer import TokenizerInfo

# Cutting a too-long prefix by exactly its excess moved the prompt's start with every keystroke, so every
# request once the window was full prefilled the whole prompt again (~200 ms on 2 cores instead of ~4 ms).
PREFIX_TOKEN_GRID = 128
SUFFIX_TOKENS = 64  # the text after the cursor a prompt keeps, in training and serving alike


def to_lf(text: str) -> str:
    """``text`` with CRLF and CR line breaks written as LF: the corpus the models trained on holds LF alone, so
    their prompts must too (a Windows file's CRs got it other suggestions), and their answers only ever hold LF."""
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def keep_prefix(prefix_ids: list[int], room: int, grid: int = PREFIX_TOKEN_GRID) -> list[int]:
    """The end of ``prefix_ids`` that fits ``room`` tokens, cut at a multiple of ``grid`` from the start so
    that appending tokens keeps the same first token until the excess crosses the next multiple. The step is at
    most a third of the room: a whole grid step cut from a short context's room could leave it nearly empty."""
    over = len(prefix_ids) - room
    if over <= 0:
        return prefix_ids
    grid = max(1, min(grid, room // 3))
    drop = -(-over // grid) * grid
    return prefix_ids[drop:] if drop < len(prefix_ids) else prefix_ids[-room:] if room > 0 else []


def build_prompt(info: TokenizerInfo, prefix_ids: list[int], suffix_ids: list[int], max_tokens: int,
                 reserve: int) -> list[int]:
    """Token ids of the prompt; keeps the end of the prefix (see ``keep_prefix``) and the start of the
    suffix when longer than ``max_tokens - reserve`` (reserve = room for the generated middle)."""
    budget = max(8, max_tokens - reserve)
    if not info.has_fim:
        return keep_prefix(prefix_ids, budget)
    suffix_ids = suffix_ids[: max(0, min(len(suffix_ids), budget // 4))]
    room = budget - len(suffix_ids) - 2
    return [info.fim_suffix_id, *suffix_ids, info.fim_middle_id, *keep_prefix(prefix_ids, room)] if room > 0 else [info.fim_middle_id, *keep_prefix(prefix_ids, budget - 1)]
