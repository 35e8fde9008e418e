"""The n-gram table that drafts for speculative decoding (models.ngram_drafts): what it keeps, how it drafts, the
model's own continuations it is built from, how a bad table is refused, and that speculative output stays identical
to `full` with it."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from models.model_dir import ModelDirError, read_record
from models.ngram_drafts import (MIN_COUNT, MODEL_WARMUP, NGRAM_DRAFTS, NgramDrafts, _window_hashes, build_tables,
                                 context_hash, merge_tables, model_continuations, tokenizer_digest, write_ngram_drafts)
from models.runtime import POLICIES, DecodeOptions, EarlyExitRuntime


def test_the_query_hash_equals_the_table_hash():
    ids = np.array([5, 900, 3, 8191, 0, 42, 7], dtype=np.uint64)
    for n in (1, 2, 4):
        hashes = _window_hashes(ids, n)
        assert [context_hash(ids[i:i + n].tolist()) for i in range(len(ids) - n + 1)] == hashes.tolist()
    assert context_hash([1, 2]) != context_hash([2, 1])


def test_only_frequent_and_confident_continuations_are_kept():
    # after 5: 6 four times, 7 and 8 three times each (6 follows 40% of the time)
    doc = [5, 6] * 4 + [5, 7] * 3 + [5, 8] * 3 + [9]
    drafts = NgramDrafts(build_tables([doc], max_context=1, min_count=2, min_share=0.5))
    assert drafts.next_token([5]) is None  # 6 is the likeliest but not likely enough
    drafts = NgramDrafts(build_tables([doc], max_context=1, min_count=2, min_share=0.3))
    assert drafts.next_token([5]) == 6
    assert drafts.next_token([8]) == 5  # 8 -> 5 twice, 8 -> 9 once
    drafts = NgramDrafts(build_tables([doc], max_context=1, min_count=5, min_share=0.3))
    assert drafts.next_token([5]) is None  # 4 times is not enough


def test_the_longest_context_wins_and_contexts_never_span_two_documents():
    docs = [[1, 2, 3] * 3, [4, 2, 9] * 3, [7]]
    drafts = NgramDrafts(build_tables(docs, max_context=2, min_count=2, min_share=0.6))
    assert drafts.next_token([2]) is None  # 3 and 9 equally often after 2 alone
    assert drafts.next_token([1, 2]) == 3 and drafts.next_token([4, 2]) == 9  # two tokens tell them apart
    # the first document's last 3 is followed by the second document's 4 only across the boundary
    lone = NgramDrafts(build_tables([[3, 4], [3, 5], [3, 4]], max_context=1, min_count=2, min_share=0.5))
    assert lone.next_token([3]) == 4
    assert lone.next_token([4]) is None and lone.next_token([5]) is None  # nothing follows them in their document


def test_given_continuations_replace_the_text_and_unknown_ones_are_skipped():
    doc = [5, 6, 5, 7, 5, 6, 5, 7]
    text = NgramDrafts(build_tables([doc], max_context=1, min_count=2, min_share=0.5))
    assert text.next_token([5]) == 6  # 6 and 7 twice each after 5: the smaller id first among equals
    # the model would write 7 after every 5, and nothing is known after the 6s and 7s
    model = [7, -1, 7, -1, 7, -1, 7, -1]
    own = NgramDrafts(build_tables([doc], max_context=1, min_count=2, min_share=0.5, continuations=[model]))
    assert own.next_token([5]) == 7 and own.next_token([6]) is None and own.next_token([7]) is None
    # a one-token document still has a continuation when it is given
    lone = build_tables([[4]] * 2, max_context=1, min_count=2, continuations=[[9]] * 2)
    assert NgramDrafts(lone).next_token([4]) == 9
    with pytest.raises(ValueError, match="one token per position"):
        build_tables([doc], continuations=[model[:-1]])


def test_merged_tables_prefer_the_first_and_keep_the_fallbacks_other_contexts():
    first = build_tables([[1, 2] * 3], max_context=2, min_count=2, min_share=0.5)
    fallback = build_tables([[1, 3] * 3 + [8, 9] * 3], max_context=2, min_count=2, min_share=0.5)
    merged = NgramDrafts(merge_tables(first, fallback))
    assert merged.next_token([1]) == 2  # both have a continuation of 1: the first's
    assert merged.next_token([8]) == 9 and merged.next_token([9]) == 8  # only the fallback knows these
    for keys, _ in merged.tables.values():
        assert bool(np.all(keys[1:] > keys[:-1]))  # sorted and unique, as lookups need
    assert NgramDrafts(merge_tables(first, {})).entries == NgramDrafts(first).entries


def test_the_models_continuations_are_its_greedy_choice_at_every_position(tiny_lm_dir, tiny_lm_torch):
    """Each position's continuation is the token the whole model chooses after the text up to it: exactly so in the
    first window, and every position of a document longer than a window gets one."""
    import torch

    from tests.conftest import TINY_LM_MAX_LEN

    from models.tokenizer import TokenizerInfo, load_tokenizer

    tok = load_tokenizer(tiny_lm_dir / "tokenizer.json")
    long = np.asarray(tok.encode("import os\n" + "def f(a, b):\n    return a + b\n" * 60).ids, np.int64)
    short = np.asarray(tok.encode("x = 1\n").ids, np.int64)
    assert len(long) > 2 * TINY_LM_MAX_LEN
    read, conts = model_continuations(tiny_lm_dir, [short, long, short], len(short) + 1, TokenizerInfo(tok).pad_id,
                                      log=lambda m: None)
    assert len(read) == 2 and np.array_equal(read[1], long)  # whole documents, until the budget is read
    assert all((c >= 0).all() for c in conts)
    last = tiny_lm_torch.cfg.num_hidden_layers - 1
    with torch.no_grad():
        h = tiny_lm_torch(torch.from_numpy(long[None, :TINY_LM_MAX_LEN]))[-1]
        greedy = tiny_lm_torch.exit_logits(last, h).argmax(-1)[0].numpy()
    assert np.array_equal(conts[1][:TINY_LM_MAX_LEN], greedy)
    # a later window repeats MODEL_WARMUP tokens of context before the positions it answers for
    start = TINY_LM_MAX_LEN - MODEL_WARMUP
    with torch.no_grad():
        h = tiny_lm_torch(torch.from_numpy(long[None, start:start + TINY_LM_MAX_LEN]))[-1]
        later = tiny_lm_torch.exit_logits(last, h).argmax(-1)[0].numpy()
    assert np.array_equal(conts[1][TINY_LM_MAX_LEN:start + TINY_LM_MAX_LEN], later[MODEL_WARMUP:])


def test_the_table_is_built_from_the_models_continuations_and_the_text(tiny_lm_dir, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(tiny_lm_dir, model)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    text = "for i in range(10):\n    total += i\n" * 40
    with open(corpus / "train.jsonl", "w", encoding="utf-8") as f:
        for i in range(3):
            f.write(json.dumps({"package": f"p{i}", "path": f"m{i}.py", "text": text}) + "\n")
    plain = write_ngram_drafts(model, corpus, log=lambda m: None)
    assert "model_continuations" not in plain and read_record(model)["ngram_drafts"]["text_entries"] > 0
    text_only = NgramDrafts.load(model / NGRAM_DRAFTS, model / "tokenizer.json")
    stats = write_ngram_drafts(model, corpus, model_tokens=10**9, log=lambda m: None)
    own = stats["model_continuations"]
    assert own["files"] == 3 and own["entries"] > 0 and read_record(model)["ngram_drafts"] == stats
    merged = NgramDrafts.load(model / NGRAM_DRAFTS, model / "tokenizer.json")
    before, after = _entries(text_only), _entries(merged)
    assert set(before) <= set(after)  # every context of the text keeps a continuation
    # the random tiny model rarely writes what the text has: its own continuations replace some of the text's
    assert any(after[key] != token for key, token in before.items())



def test_the_table_leaves_vendored_copies_of_an_older_corpus_out(tiny_lm_dir, tmp_path):
    """A corpus built before `tact train corpus` left `_vendor` trees out holds pip's copy of pygments (a held-out
    package) as pip: the model no longer trains on it, so neither does the table it drafts from."""
    model = tmp_path / "model"
    shutil.copytree(tiny_lm_dir, model)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    text = "for i in range(10):\n    total += i\n" * 40
    rows = [{"package": "site:p", "path": "site-packages/p/m.py", "text": text},
            {"package": "site:pip", "path": "site-packages/pip/_vendor/pygments/lexer.py", "text": text}]
    (corpus / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert write_ngram_drafts(model, corpus, log=lambda m: None)["files"] == 1

def _entries(drafts: NgramDrafts) -> dict[tuple[int, int], int]:
    """{(context length, context hash): continuation} of a table."""
    return {(n, int(k)): int(t) for n, (keys, nxt) in drafts.tables.items() for k, t in zip(keys, nxt)}


def test_a_draft_follows_the_table_token_by_token():
    drafts = NgramDrafts(build_tables([[10, 11, 12, 13, 14] * 3], max_context=2, min_count=2, min_share=0.5))
    assert drafts.draft([99, 10], 3) == [11, 12, 13]
    assert drafts.draft([99, 10], 10) == [11, 12, 13, 14, 10, 11, 12, 13, 14, 10]
    assert drafts.draft([99], 3) == []  # 99 never occurred


def test_a_saved_table_loads_back_and_a_wrong_or_corrupt_one_is_refused(tiny_lm_dir, tmp_path):
    tables = build_tables([[10, 11, 12, 13, 14] * 3, [300, 301] * 3], max_context=3, min_count=2, min_share=0.5)
    path = tmp_path / NGRAM_DRAFTS
    NgramDrafts(tables).save(path, tiny_lm_dir / "tokenizer.json")
    loaded = NgramDrafts.load(path, tiny_lm_dir / "tokenizer.json")
    assert loaded.entries == NgramDrafts(tables).entries > 0
    assert loaded.draft([300], 3) == [301, 300, 301]
    other = tmp_path / "other-tokenizer.json"
    other.write_text((tiny_lm_dir / "tokenizer.json").read_text().replace('"vocab"', '"vocab" ', 1))
    assert tokenizer_digest(other) != tokenizer_digest(tiny_lm_dir / "tokenizer.json")
    with pytest.raises(ModelDirError, match="another tokenizer.*tact train ngram-drafts"):
        NgramDrafts.load(path, other)
    path.write_bytes(path.read_bytes()[:-7])  # truncated
    with pytest.raises(ModelDirError, match="tact train ngram-drafts"):
        NgramDrafts.load(path, tiny_lm_dir / "tokenizer.json")
    path.write_bytes(b"not a table at all")
    with pytest.raises(ModelDirError, match=str(path.name)):
        NgramDrafts.load(path, tiny_lm_dir / "tokenizer.json")


PROMPTS = ["def wrap(text, width", "import os\nimport sys\n\nclass ", "for i in range(len(items)):\n    ",
           "x = compute(a, b)\ny = ", "'''Docstring.\n\n", "    return self."]


@pytest.fixture(scope="module")
def with_table(tiny_lm_dir, tmp_path_factory):
    """The tiny model with a table of what it generates itself (so the table's drafts are often right) beside it
    in a copy of its directory, and the runtime without one."""
    plain = EarlyExitRuntime(tiny_lm_dir, threads=1)
    docs = []
    for text in PROMPTS:
        ids = plain.tokenizer.encode(text)
        plain.reset()
        out = plain.generate(ids, DecodeOptions(policy="full", max_new_tokens=24, single_line=False, stop_repeats=0))
        docs += [ids + out.token_ids] * MIN_COUNT
    copy = tmp_path_factory.mktemp("tiny_ngram") / "model"
    shutil.copytree(tiny_lm_dir, copy)
    NgramDrafts(build_tables(docs)).save(copy / NGRAM_DRAFTS, copy / "tokenizer.json")
    return EarlyExitRuntime(copy, threads=1), plain


def _run(rt, ids, **kw):
    rt.reset()
    return rt.generate(ids, DecodeOptions(max_new_tokens=24, single_line=False, **kw))


def test_speculative_with_the_table_stays_identical_to_full(with_table):
    rt, plain = with_table
    assert rt.ngram_drafts is not None and plain.ngram_drafts is None
    drafted = accepted = 0
    for text in PROMPTS + ["print(wrap(text, width", "class Wrapper:\n    def "]:
        ids = rt.tokenizer.encode(text)
        full = _run(rt, ids, policy="full")
        spec = _run(rt, ids, policy="speculative")
        assert (spec.token_ids, spec.stop_reason) == (full.token_ids, full.stop_reason)
        assert _run(plain, ids, policy="full").token_ids == full.token_ids  # the table changes nothing else
        off = _run(rt, ids, policy="speculative", ngram_drafts=False)
        assert off.token_ids == full.token_ids and off.ngram_drafted == 0
        drafted += spec.ngram_drafted
        accepted += spec.ngram_accepted
        assert spec.lookup_drafted + spec.ngram_drafted <= spec.drafted
    assert drafted > 0 and accepted > 0  # the table was used, and some of its drafts were right


def test_every_policy_decodes_with_a_table_present(with_table):
    rt, _ = with_table
    ids = rt.tokenizer.encode(PROMPTS[0])
    for policy in POLICIES:
        assert _run(rt, ids, policy=policy).token_ids


def test_a_corrupt_table_in_a_model_directory_names_the_fix(tiny_lm_dir, tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(tiny_lm_dir, copy)
    (copy / NGRAM_DRAFTS).write_bytes(b"\x00" * 40)
    with pytest.raises(ModelDirError, match=f"{NGRAM_DRAFTS}.*tact train ngram-drafts"):
        EarlyExitRuntime(copy, threads=1)


@pytest.mark.parametrize("header", [["x"], {"__metadata__": ["x"]}, {"__metadata__": "x"}])
def test_a_table_whose_header_is_json_of_another_shape_names_the_fix(tiny_lm_dir, tmp_path, header):
    """A header of valid JSON that is no object, or whose metadata is none, raised AttributeError ('list' object has
    no attribute 'get'): the degraded server's reason named neither the file nor the fix."""
    import json
    import struct

    copy = tmp_path / "model"
    shutil.copytree(tiny_lm_dir, copy)
    body = json.dumps(header).encode()
    body += b" " * (-len(body) % 8)
    (copy / NGRAM_DRAFTS).write_bytes(struct.pack("<Q", len(body)) + body)
    with pytest.raises(ModelDirError, match=f"{copy / NGRAM_DRAFTS}.*tact train ngram-drafts"):
        EarlyExitRuntime(copy, threads=1)
