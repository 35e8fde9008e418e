"""Byte-level BPE tokenizer with fill-in-the-middle special tokens.

Training uses the `tokenizers` library; loading needs only `tokenizers` (no transformers), so the
server can tokenize without heavy imports. Runs of spaces and newline+indent pieces become single
tokens, which keeps indentation cheap.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable

from tokenizers import Encoding, Tokenizer

EOS = "<|endoftext|>"
FIM_PREFIX = "<|fim_prefix|>"
FIM_MIDDLE = "<|fim_middle|>"
FIM_SUFFIX = "<|fim_suffix|>"
PAD = "<|pad|>"
SPECIAL_TOKENS = [EOS, FIM_PREFIX, FIM_MIDDLE, FIM_SUFFIX, PAD]
_SURROGATE = re.compile("[\ud800-\udfff]")


def without_surrogates(text: str) -> str:
    """``text`` with each lone surrogate (JSON-RPC delivers "\\ud800" as one) made U+FFFD, one character for one:
    what the tokenizer reads, as `tokenizers` refuses strings that are not valid Unicode, and what telemetry can store
    (a lone surrogate has no UTF-8 encoding). ``text`` itself where it holds none."""
    if not text.isascii() and _SURROGATE.search(text):
        return _SURROGATE.sub("\ufffd", text)
    return text


def byte_level_chars() -> dict[str, int]:
    """The byte each character of a byte-level BPE token stands for (the GPT-2 table `tokenizers`' ByteLevel
    uses): printable bytes as themselves, the others from U+0100 on."""
    shown = [*range(ord("!"), ord("~") + 1), *range(ord("\xa1"), ord("\xac") + 1), *range(ord("\xae"), 256)]
    others = [b for b in range(256) if b not in shown]
    return {**{chr(b): b for b in shown}, **{chr(256 + i): b for i, b in enumerate(others)}}


def train_tokenizer(texts: Iterable[str], vocab_size: int = 8192) -> Tokenizer:
    from tokenizers import decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    # GPT-2 style splitting keeps whitespace runs (indentation) together as one pre-token.
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def load_tokenizer(path: Path) -> Tokenizer:
    return Tokenizer.from_file(str(path))


def load_model_tokenizer(model_dir: Path) -> "TokenizerInfo":
    """A model directory's tokenizer, or ModelDirError naming the file and the fix (tokenizers raises its own types:
    a damaged file ended training commands with a traceback)."""
    from models.model_dir import RESTORE, ModelDirError

    path = Path(model_dir) / "tokenizer.json"
    try:
        return TokenizerInfo(load_tokenizer(path))
    except Exception as exc:
        raise ModelDirError(f"{path} cannot be loaded ({exc})", RESTORE) from None


class TokenizerInfo:
    """Special token ids of a loaded tokenizer; FIM is unavailable when the tokens are missing. Text is encoded
    here, in training and serving alike, so that both see the same ids."""

    def __init__(self, tok: Tokenizer):
        self.tok = tok
        # Text that spells a special token (a file holding "<|fim_middle|>") stays text: read as the control token it
        # ended or rearranged the prompt. Prompts put the real special ids in themselves (models.fim.build_prompt).
        tok.encode_special_tokens = True
        self.eos_id = tok.token_to_id(EOS)
        self.fim_prefix_id = tok.token_to_id(FIM_PREFIX)
        self.fim_middle_id = tok.token_to_id(FIM_MIDDLE)
        self.fim_suffix_id = tok.token_to_id(FIM_SUFFIX)
        self.pad_id = tok.token_to_id(PAD)

    @property
    def has_fim(self) -> bool:
        return None not in (self.fim_prefix_id, self.fim_middle_id, self.fim_suffix_id)

    def encode(self, text: str) -> list[int]:
        return self.encoding(text).ids

    def encoding(self, text: str) -> Encoding:
        """The tokenizer's encoding of ``text`` (ids, and character offsets into ``text``: ``without_surrogates``
        keeps its length)."""
        return self.tok.encode(without_surrogates(text), add_special_tokens=False)

    def decode(self, ids: list[int]) -> str:
        return self.tok.decode(ids, skip_special_tokens=True)
