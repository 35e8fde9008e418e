"""What the code model trains on and what its record keeps: a fill-in-the-middle example is the prompt serving builds
for the same text and cursor, followed by the middle; vendored copies in a corpus built before they were left out do
not train it; a continued run keeps what each earlier run read and how long it trained."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from models.tokenizer import load_tokenizer
from models.train_lm import ExampleSampler, load_texts, train_lm

TOKENIZER = Path(__file__).resolve().parents[1] / "models" / "default" / "tokenizer.json"
SOURCE = '''import os


def read_lines(path):
    with open(path) as f:
        return f.readlines()


def count_words(text):
    total = 0
    for line in text.splitlines():
        total += len(line.split())
    return total
'''


def _training_row(sampler: ExampleSampler, prefix: str, middle: str, suffix: str) -> list[int]:
    """The FIM training row the sampler builds for a file ``prefix + middle + suffix`` cut at those places, without
    its padding."""
    sampler.texts = [prefix + middle + suffix]
    sampler.cum = [1.0]
    sampler.fim_rate = 1.0
    sampler._fim_pieces = lambda window: (prefix, middle, suffix)
    row = sampler.batch_array(1)[0].tolist()
    while row and row[-1] == sampler.info.pad_id:
        row.pop()
    return row


@pytest.mark.parametrize("repeat_prefix", [1, 12])  # 12: a prefix longer than the window, cut as serving cuts it
def test_a_fim_training_example_is_the_serving_prompt_then_the_middle(tiny_lm_dir, repeat_prefix):
    """Token for token: the training row for a cursor is the prompt the served runtime builds for that cursor
    (`EarlyExitRuntime.fim_prompt`, leaving room for the middle as the acceptance scorer does), then the middle
    and the end of the suggestion."""
    from models.runtime import EarlyExitRuntime

    rt = EarlyExitRuntime(tiny_lm_dir, threads=1)
    info = rt.tokenizer
    assert info.has_fim
    text = SOURCE * repeat_prefix
    cursor = text.rindex("total += ") + len("total +")  # mid-line, mid-token
    middle_end = text.index("\n", cursor)
    prefix, middle, suffix = text[:cursor], text[cursor:middle_end], text[middle_end:]
    window = min(rt.context_tokens, rt.max_len - 2)  # the budget fim_prompt builds to
    sampler = ExampleSampler(["x"], info, window, seed=0)
    row = _training_row(sampler, prefix, middle, suffix)
    target = info.encode(middle) + [info.eos_id]
    assert row == rt.fim_prompt(prefix, suffix, reserve=len(target)) + target
    assert row[0] == info.fim_suffix_id and row.count(info.fim_middle_id) == 1
    kept = row[row.index(info.fim_middle_id) + 1:len(row) - len(target)]
    whole = info.encode(prefix)
    assert (kept == whole) if repeat_prefix == 1 else (len(whole) > window and kept == whole[-len(kept):])


def test_vendored_copies_in_an_older_corpus_do_not_train_the_model(tmp_path):
    """A corpus built before `tact train corpus` left vendored copies out holds pip/_vendor/pygments (a held-out
    package) under pip: training, its controller and its draft head read the splits through load_texts."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    rows = [("site:pip", "site-packages/pip/_internal/cli.py", "own = 1\n"),
            ("site:pip", "site-packages/pip/_vendor/pygments/lexer.py", "copy = 2\n"),
            ("site:pip", "site-packages/pip/_vendor/__init__.py", "host = 3\n"),
            ("site:setuptools", "site-packages/setuptools/_vendor/six.py", "copy = 4\n")]
    with open(corpus / "train.jsonl", "w") as f:
        for package, path, text in rows:
            f.write(json.dumps({"package": package, "path": path, "text": text}) + "\n")
    assert load_texts(corpus, "train") == ["own = 1\n", "host = 3\n"]


def _shipped_like_model(model_dir: Path, out: Path) -> Path:
    """A copy of ``model_dir`` whose record is laid out as the shipped model's: two earlier runs, a note, this run's
    own minutes under train_minutes (records written before the minutes added up)."""
    shutil.copytree(model_dir, out)
    record = json.loads((out / "tact.json").read_text())
    record.update({
        "command": "tact train lm --resume lm --minutes 3.2 --out lm",
        "data": {"corpus": "data/corpus", "train_files": 4590, "train_chars": 76336287},
        "hyperparameters": {"seq_len": 32, "seed": 0},
        "training": {"steps": 30, "tokens": 3000, "train_minutes_this_run": 2.9, "train_minutes": 2.9,
                     "earlier_runs": [{"steps": 10, "tokens": 1000, "train_minutes_this_run": 6.7, "train_minutes": 6.7},
                                      {"steps": 20, "tokens": 2000, "train_minutes_this_run": 4.1, "train_minutes": 4.1}]},
        "note": "continued in two stages"})
    (out / "tact.json").write_text(json.dumps(record))
    return out


def test_a_continued_run_keeps_what_each_earlier_run_read_and_adds_up_all_their_minutes(tmp_path):
    from models.architecture import EarlyExitLM, ModelConfig
    from models.train_lm import save_model_dir
    from tests.test_train_inputs import write_corpus

    tok = load_tokenizer(TOKENIZER)
    cfg = ModelConfig(vocab_size=tok.get_vocab_size(), hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64)
    save_model_dir(EarlyExitLM(cfg), tok, tmp_path / "first", {"name": "test"})
    resumed = _shipped_like_model(tmp_path / "first", tmp_path / "resumed")
    corpus = write_corpus(tmp_path / "corpus")
    train_lm(corpus, tmp_path / "out", minutes=0.02, resume=resumed, controller_batches=1, ngram_model_tokens=0,
             threads=1, log=lambda *_: None)
    record = json.loads((tmp_path / "out" / "tact.json").read_text())
    training = record["training"]
    last = training["earlier_runs"][-1]
    assert [run["steps"] for run in training["earlier_runs"]] == [10, 20, 30]
    # the run it continued read another corpus (vendored copies in it): that stays said
    assert last["data"]["train_chars"] == 76336287 and record["data"]["train_chars"] != 76336287
    assert last["note"] == "continued in two stages" and last["command"].endswith("--minutes 3.2 --out lm")
    assert training["train_minutes"] == pytest.approx(6.7 + 4.1 + 2.9 + training["train_minutes_this_run"], abs=0.06)
