"""Prompt layout shared by training and serving: suffix-prefix-middle (SPM) fill-in-the-middle.

    <|fim_suffix|> suffix <|fim_middle|> prefix -> middle ... <|endoftext|>

The prefix runs straight into the middle, so generation is a plain continuation, and as the user
types the prompt grows only at its end: the KV cache of everything before stays valid.
"""

from __future__ import annotations

from models.tokenizer import TokenizerInfo


def build_prompt(info: TokenizerInfo, prefix_ids: list[int], suffix_ids: list[int], max_tokens: int,
                 reserve: int) -> list[int]:
    """Token ids of the prompt; keeps the end of the prefix and the start of the suffix when
    longer than ``max_tokens - reserve`` (reserve = room for the generated middle)."""
    budget = max(8, max_tokens - reserve)
    if not info.has_fim:
        return prefix_ids[-budget:]
    suffix_ids = suffix_ids[: max(0, min(len(suffix_ids), budget // 4))]
    room = budget - len(suffix_ids) - 2
    return [info.fim_suffix_id, *suffix_ids, info.fim_middle_id, *prefix_ids[-room:]] if room > 0 else [info.fim_middle_id, *prefix_ids[-(budget - 1):]]
