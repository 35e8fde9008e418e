"""The corpus n-gram table that drafts for speculative decoding (models.ngram_drafts): what it keeps, how it
drafts, how a bad table is refused, and that speculative output stays identical to `full` with it."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from models.model_dir import ModelDirError
from models.ngram_drafts import (MIN_COUNT, NGRAM_DRAFTS, NgramDrafts, _window_hashes, build_tables, context_hash,
                                 tokenizer_digest)
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
