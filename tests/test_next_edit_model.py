"""The next-edit model's training batches and its serving rules, on the tiny random model."""

from __future__ import annotations

import math

import pytest

from models.next_edit.examples import Edit, Example, make_edit, apply_edit
from models.next_edit.model import NextEditModel, NextEditPrediction
from models.next_edit.prompt import PROMPT_FORMATS, window_around

TEXT = "def area(width, height):\n    check(width)\n    return width * height\n"


def _example() -> Example:
    first = make_edit(TEXT, 0, 1, "def area(w, height):\n")
    current = apply_edit(TEXT, first)
    return Example("shapes.py", "demo", TEXT, [first], current, Edit(1, 2, "    check(width)\n", "    check(w)\n"))


def test_batches_teach_only_the_rewrite():
    torch = pytest.importorskip("torch")
    from models.next_edit.train import make_batch

    rows = [([5, 6, 7, 8, 9], 3, (4, 5)), ([5, 6, 7], 1, (0, 0))]
    ids, targets, weights = make_batch(rows, pad_id=0, edit_weight=4.0)
    assert ids.tolist() == [[5, 6, 7, 8, 9], [5, 6, 7, 0, 0]]
    # position t predicts token t+1: only the rewrite tokens (from index `start`) are targets
    assert targets.tolist() == [[0, 0, 8, 9], [6, 7, 0, 0]]
    assert targets.dtype == torch.long
    # the edit's token (index 4, predicted at position 3) weighs more; nothing outside the rewrite counts
    assert weights.tolist() == [[0, 0, 1, 4], [1, 1, 0, 0]]


def test_encoded_example_ends_with_the_rewrite_and_eos(tiny_lm_dir):
    from models.next_edit.train import encode_example
    from models.tokenizer import TokenizerInfo, load_tokenizer

    info = TokenizerInfo(load_tokenizer(tiny_lm_dir / "tokenizer.json"))
    ids, start, (lo, hi) = encode_example(_example(), info)
    assert ids[-1] == info.eos_id
    rewrite = info.decode(ids[start:])
    assert "    check(w)\n" in rewrite and "check(width)" not in rewrite
    assert info.decode(ids[:start]).endswith("<|rewrite|>\n")
    # the edit's tokens are those touching the changed line (newline + indent pieces span two lines)
    assert start <= lo < hi < len(ids)
    edit = info.decode(ids[lo:hi])
    assert "check(w)" in edit and "return" not in edit and "def area" not in edit


def test_next_block_example_ends_with_the_next_edit_as_a_block(tiny_lm_dir):
    from models.next_edit.train import encode_example
    from models.tokenizer import TokenizerInfo, load_tokenizer

    info = TokenizerInfo(load_tokenizer(tiny_lm_dir / "tokenizer.json"))
    ids, start, (lo, hi) = encode_example(_example(), info, prompt_format="next_block")
    assert ids[-1] == info.eos_id
    output = info.decode(ids[start:])
    assert output.startswith("<|original|>\n    check(width)\n<|updated|>\n    check(w)\n")
    assert "return" not in output  # only the lines that change, not the window
    assert info.decode(ids[:start]).endswith("<|edit|> shapes.py\n")
    assert "check(w)" in info.decode(ids[lo:hi]) and "check(width)" not in info.decode(ids[lo:hi])  # the updated block


def test_an_answer_that_spells_a_special_token_is_taught_as_text(tiny_lm_dir):
    """Training encodes text as serving does: "<|endoftext|>" written in code is not the end of the answer."""
    from models.next_edit.train import encode_example
    from models.tokenizer import TokenizerInfo, load_tokenizer

    info = TokenizerInfo(load_tokenizer(tiny_lm_dir / "tokenizer.json"))
    ex = _example()
    ex = Example(ex.path, ex.package, ex.original, ex.history, ex.current,
                 Edit(1, 2, "    check(width)\n", "    check(w, '<|endoftext|>')\n"))
    ids, start, _ = encode_example(ex, info)
    assert ids.count(info.eos_id) == 1 and ids[-1] == info.eos_id
    assert "check(w, '<|endoftext|>')" in info.decode(ids[start:])


def test_an_unknown_prompt_format_is_refused_with_the_path(tiny_lm_dir, tmp_path):
    import json
    import shutil

    from models.model_dir import ModelDirError

    copy = tmp_path / "ne"
    shutil.copytree(tiny_lm_dir, copy)
    record = json.loads((copy / "tact.json").read_text())
    (copy / "tact.json").write_text(json.dumps({**record, "prompt_format": "unified_diff"}))
    with pytest.raises(ModelDirError, match="prompt_format 'unified_diff'"):
        NextEditModel(copy, threads=1)


def test_a_next_block_model_is_asked_for_a_block_and_its_answer_placed_in_the_window(tiny_lm_dir, tmp_path):
    import json
    import shutil

    from models.runtime import DecodeResult

    copy = tmp_path / "ne"
    shutil.copytree(tiny_lm_dir, copy)
    record = json.loads((copy / "tact.json").read_text())
    (copy / "tact.json").write_text(json.dumps({**record, "prompt_format": "next_block"}))
    model = NextEditModel(copy, threads=1)
    assert model.format.name == "next_block"
    ex = _example()
    asked = []

    def generate(ids, opts, should_cancel=None):
        asked.append((model.info.decode(ids), opts.lookup_range))
        return DecodeResult(token_ids=[1, 2, 3], text=answer, logprobs=[-0.1, -0.7, -0.2], stop_reason="eos")

    model.runtime.generate = generate
    answer = "<|original|>\n    check(width)\n<|updated|>\n    check(w)\n"
    pred = model._ask(ex.history, ex.current, ex.cursor_line, ex.path, None)
    prompt, lookup = asked[-1]
    assert prompt.startswith("<|window|>\n") and prompt.endswith("<|edit|> shapes.py\n")
    assert lookup is not None and "check(width)" in model.info.decode(
        model.info.tok.encode(prompt, add_special_tokens=False).ids[lookup[0]:lookup[1]])  # drafts copy the window
    assert pred is not None and apply_edit(ex.current, pred.edit) == apply_edit(ex.current, ex.target)
    assert abs(pred.confidence - math.exp(-0.7)) < 1e-9  # the least likely token
    answer = ""  # nothing to do here
    assert model._ask(ex.history, ex.current, ex.cursor_line, ex.path, None) is None
    answer = "<|original|>\n    print(width)\n<|updated|>\n    print(w)\n"  # lines the window does not hold
    assert model._ask(ex.history, ex.current, ex.cursor_line, ex.path, None) is None


@pytest.fixture(scope="module")
def model(tiny_lm_dir):
    return NextEditModel(tiny_lm_dir, threads=1)


def test_the_model_runs_end_to_end_and_never_returns_an_undo(model):
    ex = _example()
    pred = model.predict_edit(ex.history, ex.current, ex.cursor_line, ex.path)
    assert pred is None or (0.0 <= pred.confidence <= 1.0 and pred.edit.updated != pred.edit.original)
    undo = Edit(0, 1, "def area(w, height):\n", "def area(width, height):\n")

    def ask_to_undo(history, current, line, path, should_cancel, lines=None):
        return NextEditPrediction(undo, 0.99, window_around(current, line), 5, 1.0, 0, 0)

    model._ask = ask_to_undo
    try:
        assert model.predict_edit(ex.history, ex.current, ex.cursor_line, ex.path) is None
    finally:
        del model._ask


def test_the_most_confident_window_wins_and_cancellation_returns_nothing(model):
    ex = _example()
    current = "def area(w, height):\n" + "".join(f"    x{i} = {i}\n" for i in range(40)) + "print(width)\n"
    low = Edit(1, 2, "    x0 = 0\n", "    x0 = 1\n")
    high = Edit(41, 42, "print(width)\n", "print(w)\n")
    asked: list[int] = []

    def rewrite(history, cur, line, path, should_cancel, lines=None):
        asked.append(line)
        edit, confidence = (low, 0.3) if line < 20 else (high, 0.8)
        return NextEditPrediction(edit, confidence, window_around(cur, line), 5, 1.0, 0, 0)

    model._ask = rewrite
    try:
        pred = model.predict_edit(ex.history, current, ex.cursor_line, ex.path)
        assert len(asked) == 2 and asked[0] == ex.cursor_line  # the cursor window first, then the baseline's spot
        assert pred is not None and pred.edit == high
        assert model.predict_edit(ex.history, current, ex.cursor_line, ex.path, should_cancel=lambda: True) is None
    finally:
        del model._ask


def test_a_lone_surrogate_in_the_document_is_read_as_a_replacement_character(model):
    """JSON-RPC can deliver a lone surrogate ("\\ud800"); `tokenizers` refused the prompt (TypeError). The window's
    tokens are still found by their offsets."""
    ex = _example()
    current = ex.current.replace("check(width)", "check('\ud800')")
    asked, real = [], model.runtime.generate

    def generate(ids, opts, should_cancel=None):
        asked.append((ids, opts.lookup_range))
        return real(ids, opts, should_cancel)

    model.runtime.generate = generate
    try:
        model.predict_edit(ex.history, current, 1, ex.path)  # an edit or none, not an exception
    finally:
        del model.runtime.generate
    ids, (lo, hi) = asked[0]
    assert "check('\ufffd')" in model.info.decode(ids[lo:hi])


@pytest.mark.parametrize("eol", ["\r\n", "\r"])
def test_in_a_crlf_document_the_model_reads_lf_and_its_answer_keeps_the_documents_line_break(model, eol):
    """The model got raw CRs, which no training example holds, and rewrote the whole window with LF endings."""
    from models.next_edit.prompt import target_text
    from models.runtime import DecodeResult

    ex = _example()
    current = ex.current.replace("\n", eol)
    history = [Edit(e.start_line, e.end_line, e.original.replace("\n", eol), e.updated.replace("\n", eol))
               for e in ex.history]
    asked = []

    def generate(ids, opts, should_cancel=None):
        asked.append(model.info.decode(ids))
        rewrite = target_text(window_around(ex.current, ex.cursor_line), ex.current, ex.target)  # LF, as trained
        return DecodeResult(token_ids=[1, 2], text=rewrite, logprobs=[-0.1, -0.2], stop_reason="eos")

    model.runtime.generate = generate
    try:
        pred = model._ask(history, current, ex.cursor_line, ex.path, None)
    finally:
        del model.runtime.generate
    assert "\r" not in asked[0]
    assert pred is not None and pred.edit.updated == "    check(w)" + eol
    assert apply_edit(current, pred.edit) == apply_edit(ex.current, ex.target).replace("\n", eol)


def _rewriting(model, target_of):
    """``model.runtime.generate`` answering the window's rewrite that ``target_of(window_text)`` gives (LF, as the
    model writes), so that what is tested is what the model's answer is turned into, not the random weights."""
    from models.next_edit.prompt import EDIT_MARK, REWRITE_MARK, WINDOW_MARK
    from models.runtime import DecodeResult

    def generate(ids, opts, should_cancel=None):
        prompt = model.info.decode(ids)
        window = prompt.split(WINDOW_MARK, 1)[1].split(REWRITE_MARK, 1)[0].split(EDIT_MARK, 1)[0]
        return DecodeResult(token_ids=[1, 2], text=target_of(window), logprobs=[-0.1, -0.2], stop_reason="eos")

    return generate


@pytest.mark.parametrize("eol", ["\n", "\r\n", "\r"])
@pytest.mark.parametrize("fmt", list(PROMPT_FORMATS))
def test_the_documents_lines_read_from_its_index_give_the_same_edit(model, eol, fmt):
    """The server gives the model the document's lines from its line index (``lines``) instead of the text being
    split at every step of a request; the edit found must be the one splitting the text gives, in every line
    break and prompt format, at the top, in the middle and at the end of the file."""
    from lsp_server.services.next_edit import _IndexedLines
    from lsp_server.services.positions import LineIndex

    body = "".join(f"    total_{i} = check(width) + {i}\n" for i in range(60))
    text = ("def area(width, height):\n" + body + "    return width\n").replace("\n", eol)
    first = make_edit(text, 0, 1, "def area(w, height):" + eol)
    current = apply_edit(text, first)

    def answer(window: str) -> str:
        window = window.replace("<|cursor|>", "")
        old = next(ln + "\n" for ln in window.split("\n") if "check(width)" in ln)
        new = old.replace("check(width)", "check(w)")
        return window.replace(old, new, 1) if fmt == "rewrite" else f"<|original|>\n{old}<|updated|>\n{new}"

    model.runtime.generate = _rewriting(model, answer)
    saved_format, model.format = model.format, PROMPT_FORMATS[fmt]
    try:
        found = []
        for cursor in (0, 1, 30, 61):
            split = model.predict_edit([first], current, cursor, "shapes.py")
            indexed = model.predict_edit([first], current, cursor, "shapes.py",
                                         lines=_IndexedLines(LineIndex(current)))
            assert split is not None and indexed is not None and split.edit == indexed.edit, (cursor, split, indexed)
            assert split.edit.updated.endswith("check(w) + %d%s" % (split.edit.start_line - 1, eol))
            found.append(split.edit.start_line)
        assert len(set(found)) > 1  # the windows moved with the cursor
    finally:
        del model.runtime.generate
        model.format = saved_format


def test_a_request_on_a_large_file_costs_its_windows_not_the_file(model):
    """The model and `auto` predictors split the whole text at every step of a request: on a 200,000-line file the
    steps around the model's decoding took 150 ms (the ranker's path 10 ms). Read through the line index, the
    file's length costs next to nothing."""
    from lsp_server.services.next_edit import _IndexedLines
    from lsp_server.services.positions import LineIndex
    from tests.lsp_support import best_time

    model.runtime.generate = _rewriting(model, lambda window: window.replace("beta", "b").replace("<|cursor|>", ""))
    try:
        row = "    value = compute(alpha, beta) + gamma\n"
        timings = []
        for n in (2_000, 200_000):
            text = "def f(alpha, beta, gamma):\n" + row * n
            first = make_edit(text, 0, 1, "def f(alpha, b, gamma):\n")
            current = apply_edit(text, first)
            lines = _IndexedLines(LineIndex(current))
            assert model.predict_edit([first], current, 1000, "big.py", lines=lines) is not None
            timings.append(best_time(lambda: model.predict_edit([first], current, 1000, "big.py", lines=lines)))
        small, big = timings
        assert big / small < 5, f"200,000 lines: {big * 1000:.1f} ms, 2,000 lines: {small * 1000:.1f} ms"
    finally:
        del model.runtime.generate
