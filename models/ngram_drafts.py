"""Speculative drafts from the code corpus's frequent n-grams.

Prompt lookup drafts only what the prompt already holds, and the first layers' drafts are accepted about a quarter
of the time. Much of code continues the way it does in every other project (``for i in range(``, ``self.assertEqual(``),
so a table of the corpus's confident continuations drafts what neither knows (retrieval drafts, as in REST).
The whole model still verifies every draft, so speculative output does not change; only its speed does.

The table maps the hash of the last n tokens (n = MAX_CONTEXT..1, longest first) to the token that followed them
most often in the training corpus, kept only where that token followed at least MIN_COUNT times and at least
MIN_SHARE of the time. Keys are 64-bit hashes: a context that collides with another only drafts a token the model
then rejects. Serving-safe: numpy and the standard library only (writing needs safetensors).
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Iterable

import numpy as np

from models.model_dir import ModelDirError, command_line, load_tensors, portable_path, record_entry, safetensors_header

NGRAM_DRAFTS = "ngram_drafts.safetensors"
# Chosen by simulation on calibration code (docs/code-model.md): contexts of up to 6 or 8 tokens drafted no better
# than 4; at least 10 occurrences drafted better than 2, in a tenth of the entries; a share of 0.5 better than 0.3.
MAX_CONTEXT = 4  # longest context looked up
MIN_COUNT = 10  # times the continuation followed its context in the corpus
MIN_SHARE = 0.5  # of the context's occurrences
_HASH_MULT = 1000003
_MASK = (1 << 64) - 1


def context_hash(tokens: Iterable[int]) -> int:
    """The table key of a context (its token ids in order); equals ``_window_hashes`` at the same tokens."""
    h = 0
    for t in tokens:
        h = (h * _HASH_MULT + int(t) + 1) & _MASK
    return h


def _window_hashes(ids: np.ndarray, n: int) -> np.ndarray:
    """Hashes of every n-token window of ids (N,) uint64 -> (N - n + 1,) uint64 (arithmetic modulo 2**64)."""
    h = np.zeros(len(ids) - n + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(n):
            h = h * np.uint64(_HASH_MULT) + ids[j:len(ids) - n + 1 + j] + np.uint64(1)
    return h


def tokenizer_digest(tokenizer_path: Path) -> str:
    """Which tokenizer a table's token ids belong to."""
    return hashlib.sha256(Path(tokenizer_path).read_bytes()).hexdigest()[:16]


def build_tables(documents: Iterable[list[int] | np.ndarray], max_context: int = MAX_CONTEXT,
                 min_count: int = MIN_COUNT, min_share: float = MIN_SHARE) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per context length n: (sorted context hashes (K,) uint64, the continuation of each (K,) uint16). Contexts
    never span two documents."""
    docs = [np.asarray(d, dtype=np.uint64) for d in documents if len(d) > 1]
    if not docs:
        raise ValueError("no document of two or more tokens to count n-grams in")
    ids = np.concatenate(docs)  # (N,)
    if ids.max() > np.iinfo(np.uint16).max:
        raise ValueError("token ids past 65535: the table stores continuations as uint16")
    doc_of = np.repeat(np.arange(len(docs)), [len(d) for d in docs])  # (N,)
    tables: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for n in range(1, max_context + 1):
        keys = _window_hashes(ids, n)[:-1]  # (N - n,) the context ending just before position p = i + n
        nxt = ids[n:].astype(np.int64)  # (N - n,) the token at p
        inside = doc_of[:-n] == doc_of[n:]  # the context and its continuation lie in one document
        keys, nxt = keys[inside], nxt[inside]
        order = np.lexsort((nxt, keys))
        keys, nxt = keys[order], nxt[order]
        new_pair = np.ones(len(keys), bool)
        new_pair[1:] = (keys[1:] != keys[:-1]) | (nxt[1:] != nxt[:-1])
        starts = np.flatnonzero(new_pair)
        counts = np.diff(np.append(starts, len(keys)))  # occurrences of each (context, continuation)
        pair_key, pair_next = keys[starts], nxt[starts]
        order = np.lexsort((-counts, pair_key))  # per context, its most frequent continuation first
        pair_key, pair_next, counts = pair_key[order], pair_next[order], counts[order]
        first = np.ones(len(pair_key), bool)
        first[1:] = pair_key[1:] != pair_key[:-1]
        heads = np.flatnonzero(first)
        total = np.add.reduceat(counts, heads)  # occurrences of each context
        keep = (counts[heads] >= min_count) & (counts[heads] >= min_share * total)
        k, t = pair_key[heads][keep], pair_next[heads][keep].astype(np.uint16)
        tables[n] = (k, t)  # sorted by key (lexsort's primary key)
    return tables


class NgramDrafts:
    """A loaded table (``build_tables``): drafts the corpus's confident continuation of a context."""

    def __init__(self, tables: dict[int, tuple[np.ndarray, np.ndarray]]):
        self.tables = {n: (np.ascontiguousarray(k, np.uint64), np.ascontiguousarray(t, np.uint16))
                       for n, (k, t) in tables.items() if len(k)}
        self.max_context = max(self.tables, default=0)

    @property
    def entries(self) -> int:
        return sum(len(k) for k, _ in self.tables.values())

    def next_token(self, context: list[int]) -> int | None:
        """The continuation of the longest suffix of ``context`` in the table, or None."""
        for n in range(min(self.max_context, len(context)), 0, -1):
            table = self.tables.get(n)
            if table is None:
                continue
            keys, nxt = table
            h = np.uint64(context_hash(context[-n:]))
            i = int(np.searchsorted(keys, h))
            if i < len(keys) and keys[i] == h:
                return int(nxt[i])
        return None

    def draft(self, ids: list[int], k: int) -> list[int]:
        """Up to k tokens after ``ids``, each the table's continuation of the ones before it."""
        if not self.tables:
            return []
        context = list(ids[-self.max_context:])
        out: list[int] = []
        while len(out) < k:
            token = self.next_token(context)
            if token is None:
                break
            out.append(token)
            context = (context + [token])[-self.max_context:]
        return out

    def save(self, path: Path, tokenizer_path: Path) -> None:
        from safetensors.numpy import save_file

        tensors = {}
        for n, (k, t) in self.tables.items():
            tensors[f"keys.{n}"] = k.view(np.int64)  # safetensors' I64: the loader views it back as uint64
            tensors[f"next.{n}"] = t
        save_file(tensors, str(path), metadata={"tokenizer": tokenizer_digest(tokenizer_path)})

    @classmethod
    def load(cls, path: Path, tokenizer_path: Path) -> "NgramDrafts":
        """The table at ``path`` for the tokenizer at ``tokenizer_path``; ModelDirError naming the fix when it is
        corrupt or was built for another tokenizer."""
        fix = f"rebuild it with `tact train ngram-drafts --model {path.parent}` or delete it"
        try:
            meta = json.loads(safetensors_header(path)[8:]).get("__metadata__") or {}
            if meta.get("tokenizer") != tokenizer_digest(tokenizer_path):
                raise ModelDirError(f"{path} was built for another tokenizer than {tokenizer_path}; {fix}")
            arrays = load_tensors(path)
            tables = {}
            for name, keys in arrays.items():
                kind, _, n = name.partition(".")
                if kind == "keys":
                    tables[int(n)] = (keys.view(np.uint64), arrays[f"next.{n}"])
        except ModelDirError as exc:
            if fix in str(exc):
                raise
            raise ModelDirError(f"{exc}; {fix}") from exc
        except (KeyError, ValueError) as exc:
            raise ModelDirError(f"{path} is not an n-gram draft table ({exc}); {fix}") from exc
        for n, (k, t) in tables.items():
            if len(k) != len(t) or (len(k) > 1 and not bool(np.all(k[1:] > k[:-1]))):
                raise ModelDirError(f"{path}: the table of {n}-token contexts is corrupt; {fix}")
        return cls(tables)


def write_ngram_drafts(model_dir: Path, corpus_dir: Path, log=print) -> dict:
    """Build the table of a model directory from its corpus's training split (`tact train ngram-drafts`, also
    the last step of `tact train lm`); records what went in under ``ngram_drafts`` in tact.json."""
    from models.corpus import iter_split
    from models.progress import progress
    from models.tokenizer import load_tokenizer

    started = time.time()
    model_dir, corpus_dir = Path(model_dir), Path(corpus_dir)
    if not (corpus_dir / "train.jsonl").is_file():
        raise FileNotFoundError(f"{corpus_dir / 'train.jsonl'} does not exist; build the corpus with `tact train corpus`")
    tokenizer_path = model_dir / "tokenizer.json"
    tok = load_tokenizer(tokenizer_path)
    texts = [r["text"] for r in iter_split(corpus_dir, "train") if r.get("text")]
    documents: list[np.ndarray] = []
    batch = 1000
    for i in progress(range(0, len(texts), batch), "tokenizing", total=(len(texts) + batch - 1) // batch):
        documents += [np.asarray(e.ids, np.uint32) for e in tok.encode_batch(texts[i:i + batch], add_special_tokens=False)]
    tokens = sum(map(len, documents))
    log(f"n-gram drafts: {len(documents)} files, {tokens / 1e6:.1f}M tokens")
    drafts = NgramDrafts(build_tables(documents))
    path = model_dir / NGRAM_DRAFTS
    drafts.save(path, tokenizer_path)
    stats = {"command": command_line(), "corpus": portable_path(corpus_dir), "split": "train", "files": len(documents),
             "tokens": tokens, "max_context": MAX_CONTEXT, "min_count": MIN_COUNT, "min_share": MIN_SHARE,
             "entries": {str(n): len(k) for n, (k, _) in drafts.tables.items()}, "bytes": path.stat().st_size,
             "minutes": round((time.time() - started) / 60, 2)}
    record_entry(model_dir, "ngram_drafts", stats)
    log(f"n-gram drafts: {drafts.entries} entries, {stats['bytes'] / 1e6:.1f} MB in {path}")
    return stats
