"""Speculative drafts from n-gram tables: the model's own continuations, then the code corpus's.

Prompt lookup drafts only what the prompt already holds, and the first layers' drafts are accepted about a quarter
of the time. Much of code continues the way it does in every other project (``for i in range(``, ``self.assertEqual(``),
so a table of confident continuations drafts what neither knows (retrieval drafts, as in REST).
The whole model still verifies every draft, so speculative output does not change; only its speed does.

The table maps the hash of the last n tokens (n = MAX_CONTEXT..1, longest first) to the token that followed them
most often, kept only where that token followed at least MIN_COUNT times and at least MIN_SHARE of the time. Two
sources fill it: the model's own greedy choice after each position of a sample of the training split (a draft is
right when the model would write it, so what the model writes after a context is the better guess than what the text
has there, docs/code-model.md), and, for contexts that sample leaves out, the text of the whole training split.
Keys are 64-bit hashes: a context that collides with another only drafts a token the model then rejects.
Serving-safe: numpy and the standard library only (writing needs safetensors, the model's continuations torch).
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from pathlib import Path
from typing import Iterable

import numpy as np

from models.model_dir import (ModelDirError, check_model_dir, command_line, load_tensors, portable_path, read_record,
                              record_entry, safetensors_header, write_atomically)

NGRAM_DRAFTS = "ngram_drafts.safetensors"
# Chosen by simulation on calibration code (docs/code-model.md): contexts of up to 6 or 8 tokens drafted no better
# than 4; at least 10 occurrences drafted better than 2, in a tenth of the entries; a share of 0.5 better than 0.3.
MAX_CONTEXT = 4  # longest context looked up
MIN_COUNT = 10  # times the continuation followed its context in the corpus
MIN_SHARE = 0.5  # of the context's occurrences
# The model's continuations are steadier than the text's: from 5 occurrences they drafted better than from 10 (right
# first drafts where prompt lookup has none, on calibration code: 19.2% of positions against 17.8%; docs/code-model.md).
MODEL_MIN_COUNT = 5
MODEL_WARMUP = 64  # tokens of context a window repeats from the one before, so no continuation is read cold
_HASH_MULT = 1000003
_MASK = (1 << 64) - 1


def window_warmup(window: int) -> int:
    """The context a window repeats from the one before: MODEL_WARMUP, half the window at most. At a trained
    context of 64 or less the whole warmup left windows that never moved on, and their list grew until memory ran
    out."""
    return min(MODEL_WARMUP, window // 2)


def window_starts(length: int, window: int) -> list[int]:
    """Where the windows of at most ``window`` tokens over a document of ``length`` start; each repeats
    ``window_warmup`` tokens of the one before, the last ends with the document."""
    starts, start, warm = [0], 0, window_warmup(window)
    while start + window < length:
        start = min(start + window - warm, length - window)
        starts.append(start)
    return starts


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
                 min_count: int = MIN_COUNT, min_share: float = MIN_SHARE,
                 continuations: Iterable[np.ndarray] | None = None) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per context length n: (sorted context hashes (K,) uint64, the continuation of each (K,) uint16). Contexts
    never span two documents. ``continuations``: per document, the token that follows each of its positions (-1:
    unknown), e.g. the model's own greedy choice; default: the document's next token."""
    docs = [np.asarray(d, dtype=np.uint64) for d in documents]
    if continuations is None:
        conts = [np.append(d[1:].astype(np.int64), -1)[:len(d)] for d in docs]
    else:
        conts = [np.asarray(c, dtype=np.int64) for c in continuations]
        if [len(c) for c in conts] != [len(d) for d in docs]:
            raise ValueError("continuations must give one token per position of each document")
    cont = np.concatenate(conts) if conts else np.zeros(0, np.int64)  # (N,) the token after each position; -1 unknown
    if not (cont >= 0).any():
        raise ValueError("no continuation to count n-grams with (documents of one token and none given)")
    ids = np.concatenate(docs)  # (N,)
    if max(int(ids.max()), int(cont.max())) > np.iinfo(np.uint16).max:
        raise ValueError("token ids past 65535: the table stores continuations as uint16")
    doc_of = np.repeat(np.arange(len(docs)), [len(d) for d in docs])  # (N,)
    tables: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for n in range(1, max_context + 1):
        keys = _window_hashes(ids, n)  # (N - n + 1,) the context ids[i:i + n]
        nxt = cont[n - 1:]  # (N - n + 1,) what follows it
        known = (nxt >= 0) & (doc_of[:len(doc_of) - n + 1] == doc_of[n - 1:])  # ... inside one document
        keys, nxt = keys[known], nxt[known]
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
        total = np.add.reduceat(counts, heads) if len(heads) else counts  # occurrences of each context
        keep = (counts[heads] >= min_count) & (counts[heads] >= min_share * total)
        k, t = pair_key[heads][keep], pair_next[heads][keep].astype(np.uint16)
        tables[n] = (k, t)  # sorted by key (lexsort's primary key)
    return tables


def merge_tables(first: dict[int, tuple[np.ndarray, np.ndarray]],
                 fallback: dict[int, tuple[np.ndarray, np.ndarray]]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """One table: ``first``'s entries, and ``fallback``'s for the contexts ``first`` lacks."""
    empty = (np.zeros(0, np.uint64), np.zeros(0, np.uint16))
    merged = {}
    for n in sorted(set(first) | set(fallback)):
        ka, ta = first.get(n, empty)
        kb, tb = fallback.get(n, empty)
        extra = ~np.isin(kb, ka)
        keys = np.concatenate([ka, kb[extra]])
        order = np.argsort(keys, kind="stable")
        merged[n] = (keys[order], np.concatenate([ta, tb[extra]]).astype(np.uint16)[order])
    return merged


def model_continuations(model_dir: Path, documents: list[np.ndarray], tokens: int, pad_id: int, *,
                        device: str = "cpu", threads: int | None = None, batch_size: int = 8,
                        log=print) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The model's greedy next token after every position of ``documents`` (in their order, whole documents, until
    ``tokens`` positions are read): (the documents read, their continuations (len,) int64 each). Long documents are
    read in windows of the model's trained context that repeat MODEL_WARMUP tokens of the one before; short ones are
    padded with ``pad_id`` after their end."""
    import torch

    from models.architecture import load_torch_model
    from models.model_dir import trained_context
    from models.progress import progress
    from models.train_lm import autocast

    if threads:
        torch.set_num_threads(threads)
    model = load_torch_model(model_dir).to(device).eval()
    window = trained_context(model.cfg.to_hf(), read_record(model_dir))
    last = model.cfg.num_hidden_layers - 1
    warm = window_warmup(window)
    read, conts, pending, read_tokens = [], [], [], 0
    for doc in documents:
        if read_tokens >= tokens:
            break
        if len(doc) < 2:
            continue
        read.append(doc)
        conts.append(np.full(len(doc), -1, np.int64))
        read_tokens += len(doc)
        pending += [(len(read) - 1, start) for start in window_starts(len(doc), window)]

    @torch.no_grad()
    def run(batch):
        rows = np.full((len(batch), window), pad_id, np.int64)  # (B, window), right-padded (causal: no effect before)
        for r, (d, s) in enumerate(batch):
            piece = read[d][s:s + window]
            rows[r, :len(piece)] = piece
        with autocast(device):
            h = model(torch.from_numpy(rows).to(device))[-1]  # (B, window, D)
            greedy = model.exit_logits(last, h).argmax(-1).cpu().numpy()  # (B, window)
        for r, (d, s) in enumerate(batch):
            lo = 0 if s == 0 else warm
            n = min(window, len(read[d]) - s)
            conts[d][s + lo:s + n] = greedy[r, lo:n]

    for i in progress(range(0, len(pending), batch_size), "model continuations",
                      total=(len(pending) + batch_size - 1) // batch_size):
        run(pending[i:i + batch_size])
    log(f"n-gram drafts: the model's continuations of {len(read)} files, {read_tokens / 1e6:.1f}M tokens")
    return read, conts


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
        meta = {"tokenizer": tokenizer_digest(tokenizer_path)}
        write_atomically(Path(path), lambda tmp: save_file(tensors, str(tmp), metadata=meta))

    @classmethod
    def load(cls, path: Path, tokenizer_path: Path, vocab_size: int | None = None) -> "NgramDrafts":
        """The table at ``path`` for the tokenizer at ``tokenizer_path``; ModelDirError naming the fix when it is
        corrupt, was built for another tokenizer or drafts token ids past ``vocab_size`` (the model's embedding
        rows, when given)."""
        fix = f"rebuild it with `tact train ngram-drafts --model {path.parent}` or delete it"
        try:
            header = json.loads(safetensors_header(path)[8:])
            meta = (header.get("__metadata__") if isinstance(header, dict) else None) or {}
            if not isinstance(meta, dict) or meta.get("tokenizer") != tokenizer_digest(tokenizer_path):
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
            if vocab_size is not None and len(t) and int(t.max()) >= vocab_size:  # damaged: it failed every decode
                raise ModelDirError(f"{path}: the table of {n}-token contexts drafts token id {int(t.max())}, "
                                    f"past the model's {vocab_size}; {fix}")
        return cls(tables)


def write_ngram_drafts(model_dir: Path, corpus_dir: Path, *, model_tokens: int = 0, device: str = "cpu",
                       threads: int | None = None, batch_size: int = 8, seed: int = 0, log=print) -> dict:
    """Build the table of a model directory from its corpus's training split (`tact train ngram-drafts`, also
    the last step of `tact train lm`): the model's own continuations over ``model_tokens`` tokens of it (files in a
    seeded random order; 0: none), then the text's continuations for the contexts those leave out. Records what went
    in under ``ngram_drafts`` in tact.json."""
    from models.progress import progress
    from models.tokenizer import load_model_tokenizer
    from models.train_lm import check_corpus, check_device, load_texts  # torch: for the model's continuations anyway

    started = time.time()
    model_dir, corpus_dir = Path(model_dir), Path(corpus_dir)
    check_model_dir(model_dir, need_onnx=False)
    check_corpus(corpus_dir, "train.jsonl")  # there, and not empty
    if model_tokens > 0:
        check_device(device)
    info = load_model_tokenizer(model_dir)  # encodes text as training and serving do (special-token spellings stay text)
    tok = info.tok
    texts = [t for t in load_texts(corpus_dir, "train") if t]  # what the model trained on (no vendored copies)
    documents: list[np.ndarray] = []
    batch = 1000
    for i in progress(range(0, len(texts), batch), "tokenizing", total=(len(texts) + batch - 1) // batch):
        documents += [np.asarray(e.ids, np.uint32) for e in tok.encode_batch(texts[i:i + batch], add_special_tokens=False)]
    tokens = sum(map(len, documents))
    log(f"n-gram drafts: {len(documents)} files, {tokens / 1e6:.1f}M tokens")
    tables = build_tables(documents)
    stats = {"command": command_line(), "corpus": portable_path(corpus_dir), "split": "train", "files": len(documents),
             "tokens": tokens, "max_context": MAX_CONTEXT, "min_count": MIN_COUNT, "min_share": MIN_SHARE,
             "text_entries": sum(len(k) for k, _ in tables.values())}
    if model_tokens > 0:
        order = list(range(len(documents)))
        random.Random(seed).shuffle(order)
        read, conts = model_continuations(model_dir, [documents[i] for i in order], model_tokens,
                                          info.pad_id, device=device, threads=threads,
                                          batch_size=batch_size, log=log)
        own = build_tables(read, min_count=MODEL_MIN_COUNT, continuations=conts)
        stats["model_continuations"] = {
            "files": len(read), "tokens": int(sum(map(len, read))), "seed": seed, "min_count": MODEL_MIN_COUNT,
            "min_share": MIN_SHARE, "entries": sum(len(k) for k, _ in own.values()), "device": device}
        tables = merge_tables(own, tables)
    drafts = NgramDrafts(tables)
    path = model_dir / NGRAM_DRAFTS
    drafts.save(path, model_dir / "tokenizer.json")
    stats.update({"entries": {str(n): len(k) for n, (k, _) in drafts.tables.items()}, "bytes": path.stat().st_size,
                  "minutes": round((time.time() - started) / 60, 2)})
    record_entry(model_dir, "ngram_drafts", stats)
    log(f"n-gram drafts: {drafts.entries} entries, {stats['bytes'] / 1e6:.1f} MB in {path}")
    return stats
