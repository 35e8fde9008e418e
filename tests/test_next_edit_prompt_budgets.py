"""The next-edit model's path, an eighth look: the prompt within the token budgets, a history edit over the character
budget, the cursor marker on the last line, a marker the document holds, the evaluation of CRLF documents, and the
directories `--pair` reads. Each test failed on the code before its fix."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from models.next_edit.examples import Edit, Example, apply_edit, write_jsonl
from models.next_edit.prompt import (CURSOR_MARK, EDIT_MARK, HISTORY_CHARS, LINES_AFTER, LINES_BEFORE,
                                     MAX_BLOCK_LINES, MAX_LINE_CHARS, ORIGINAL_MARK, PROMPT_FORMATS, UPDATED_MARK,
                                     WINDOW_MARK, build_prompt, edit_from_next_block, edit_from_rewrite,
                                     history_text, window_around, window_text)
from models.next_edit.real_changes import paired_files
from tests.test_next_edit_data import OLD, _new, _tree
from tests.test_next_edit_eval import EX
from tests.test_next_edit_model import _example

# --- the cursor marker on the last line ------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(PROMPT_FORMATS))
@pytest.mark.parametrize("line", [3, 10])
def test_a_cursor_past_the_last_line_is_marked_at_the_end_of_the_last_line(name, line):
    """The server's cursor on the empty line after a final line break reaches the model as the line after the last:
    the window was clamped to the text, the marker was not, and the prompt had none."""
    text = "a = 1\nb = 2\nc = 3\n"
    prompt, window, (a, b) = PROMPT_FORMATS[name].prompt([Edit(2, 2, "", "c = 3\n")], text, line)
    assert (window.start, window.end) == (0, 3)
    assert prompt.count(CURSOR_MARK) == 1 and prompt[a:b] == f"a = 1\nb = 2\nc = 3{CURSOR_MARK}\n"


def test_a_cursor_on_the_last_line_is_marked_as_before():
    text = "a = 1\nb = 2\nc = 3"
    prompt, _window, _span = build_prompt([Edit(0, 1, "a = 0\n", "a = 1\n")], text, 2)
    assert prompt.endswith(f"{WINDOW_MARK}a = 1\nb = 2\nc = 3{CURSOR_MARK}\n<|rewrite|>\n")


# --- a history edit over the character budget --------------------------------------------------------------------

WIDE = "".join(f"    value_{i} = compute_something_long(argument_{i}, other_argument_{i}, third_argument_{i}, "
               f"fourth_one_{i})\n" for i in range(8))


def _sides(history: str) -> tuple[list[str], list[str]]:
    """The original and updated lines of the one block of ``history``."""
    head, rest = history.split(ORIGINAL_MARK)
    assert head.startswith(EDIT_MARK)
    original, updated = rest.split(UPDATED_MARK)
    return original.splitlines(keepends=True), updated.splitlines(keepends=True)


def test_a_history_edit_over_the_budget_keeps_both_sides_in_whole_lines():
    """It was cut at the budget's last character: the updated side was lost, and the cut line ran into the window
    marker (`...third_argumen<|window|>`)."""
    updated = WIDE.replace("compute_something_long", "compute_renamed")
    edit = Edit(0, 8, WIDE, updated)
    text = history_text([edit], "m.py")
    assert len(text) <= HISTORY_CHARS and text.endswith("\n")
    from models.next_edit.prompt import ELISION

    original_lines, updated_lines = _sides(text)
    assert ELISION in original_lines and ELISION in updated_lines
    wide_lines = WIDE.splitlines(keepends=True)
    assert original_lines[0] == wide_lines[0] and original_lines[-1] == wide_lines[-1]
    assert updated_lines[0] == updated.splitlines(keepends=True)[0]
    assert all(ln == ELISION or ln in updated for ln in updated_lines)
    prompt, _window, _span = build_prompt([edit], updated + "x = 1\n", 8, "m.py")
    assert prompt.split(WINDOW_MARK)[0] == text


def test_a_history_edit_that_cannot_fit_in_whole_lines_is_left_out():
    edit = Edit(0, 8, WIDE, WIDE.replace("compute_something_long", "compute_renamed"))
    assert history_text([edit], "m.py", budget=200) == ""
    older = Edit(20, 21, "a = 0\n", "a = 1\n")
    assert history_text([older, edit], "m.py", budget=200) == ""  # the newest over, the older ones not shown after it


def test_a_history_within_the_budget_is_written_as_before():
    """Training built its prompts with these blocks: one that fits is unchanged (a side over 8 lines shows its first
    and last 4 around an elision line)."""
    lines = [f"x_{i} = {i}\n" for i in range(12)]
    edit = Edit(0, 12, "".join(lines), "".join(ln.replace("x_", "y_") for ln in lines))
    half = MAX_BLOCK_LINES // 2
    side = lambda ls: "".join(ls[:half]) + "...\n" + "".join(ls[-half:])  # noqa: E731
    assert history_text([edit], "pkg/m.py") == (
        f"{EDIT_MARK} m.py\n{ORIGINAL_MARK}{side(lines)}{UPDATED_MARK}{side([ln.replace('x_', 'y_') for ln in lines])}")


# --- a marker the document holds ---------------------------------------------------------------------------------

MARKED = 'x = 1\nCURSOR_MARK = "<|cursor|>"\ny = 2\n'


def test_a_rewrite_keeps_a_marker_the_document_holds():
    """Every marker was taken out of the rewrite: a faithful copy of a window holding the marker's text became an
    edit deleting it."""
    window = window_around(MARKED, 0)
    copy = window_text(window, 0).replace(CURSOR_MARK, "", 1)  # the model's own marker left out
    assert PROMPT_FORMATS["rewrite"].edit(window, copy, MARKED, 0) is None
    assert edit_from_rewrite(window, copy, MARKED, 0) is None
    # the prompt's marker copied on the cursor line, a change below: only the change
    rewrite = window_text(window, 0).replace("y = 2", "y = 3")
    edit = edit_from_rewrite(window, rewrite, MARKED, 0)
    assert edit is not None and apply_edit(MARKED, edit) == MARKED.replace("y = 2", "y = 3")


def test_a_next_block_keeps_a_marker_the_document_holds():
    window = window_around(MARKED, 1)
    line = 'CURSOR_MARK = "<|cursor|>"\n'
    output = f"{ORIGINAL_MARK}{line}{UPDATED_MARK}{line[:-1]}  # the marker\n"
    edit = edit_from_next_block(window, output, MARKED, 1)
    assert edit is not None and apply_edit(MARKED, edit) == MARKED.replace(line, line[:-1] + "  # the marker\n")
    # the original block as the prompt showed it, the cursor marker copied: still found, the marker not written
    copied = f"{ORIGINAL_MARK}{line[:-1]}{CURSOR_MARK}\n{UPDATED_MARK}{line[:-1]}{CURSOR_MARK}\n"
    assert edit_from_next_block(window, copied, MARKED, 1) is None


# --- the prompt within the token budgets (the model, its decoding stubbed) ----------------------------------------

CJK = [f"    total_{i} = price_{i} * count  # 计算第{i}个商品的总价，包括税费和运费\n" for i in range(24)]


@pytest.fixture(scope="module")
def model_dirs(tiny_lm_dir, tmp_path_factory):
    """A tiny model directory of each prompt format."""
    out = {"rewrite": tiny_lm_dir}
    copy = tmp_path_factory.mktemp("review8") / "next_block"
    shutil.copytree(tiny_lm_dir, copy)
    record = json.loads((copy / "tact.json").read_text())
    (copy / "tact.json").write_text(json.dumps({**record, "prompt_format": "next_block"}))
    out["next_block"] = copy
    return out


def _asking(model_dir):
    """(the model, the prompts it was asked, as (ids, lookup range)); each answer is empty."""
    from models.next_edit.model import NextEditModel
    from models.runtime import DecodeResult

    model = NextEditModel(model_dir, threads=1)
    asked: list[tuple[list[int], tuple[int, int] | None]] = []

    def generate(ids, opts, should_cancel=None):
        asked.append((list(ids), opts.lookup_range))
        return DecodeResult(token_ids=[1], text="", logprobs=[-0.1], stop_reason="eos")

    model.runtime.generate = generate
    return model, asked


def _tokens(model, text: str) -> int:
    return len(model.info.encoding(text).ids)


def _window_tokens(model, prompt: str, span: tuple[int, int]) -> int:
    return sum(span[0] <= a < span[1] for a, _b in model.info.encoding(prompt).offsets)


@pytest.mark.parametrize("name", list(PROMPT_FORMATS))
def test_a_prompt_over_the_token_budget_drops_the_oldest_history_edits(model_dirs, name):
    """Edits to lines with CJK comments fit the history's 800 characters but not the prompt's 640 tokens: the model
    was never asked. The oldest edits now go, as few as needed, the window kept whole."""
    from models.next_edit.model import MAX_PROMPT_TOKENS

    model, asked = _asking(model_dirs[name])
    fmt = model.format
    renamed = [ln.replace("count", "qty") for ln in CJK[:4]]
    current = "def f(qty):\n" + "".join(renamed + CJK[4:8]) + "".join(f"v_{i} = {i}\n" for i in range(30))
    history = [Edit(1 + k, 2 + k, CJK[k], renamed[k]) for k in range(4)]  # count renamed qty, line by line
    line = 25
    full, window, _span = fmt.prompt(history, current, line, "shop.py")
    assert _tokens(model, full) > MAX_PROMPT_TOKENS  # the case: over the budget as training would build it
    model._ask(history, current, line, "shop.py", None)
    assert len(asked) == 1
    ids, _lookup = asked[0]
    assert len(ids) <= MAX_PROMPT_TOKENS
    prompts = [fmt.prompt(history[k:], current, line, "shop.py")[0] for k in range(len(history))]
    kept = next(k for k, text in enumerate(prompts) if model.info.encoding(text).ids == ids)
    assert 0 < kept < len(history)  # some dropped, the newest kept
    assert _tokens(model, prompts[kept - 1]) > MAX_PROMPT_TOKENS  # no more than needed
    prompt = fmt.prompt(history[kept:], current, line, "shop.py")
    assert prompt[1] == window and renamed[3] in prompt[0]


@pytest.mark.parametrize("name", list(PROMPT_FORMATS))
def test_a_window_over_the_token_budget_loses_lines_below_the_cursor_first(model_dirs, name):
    """A window of CJK lines is more tokens than an answer may be: the model was never asked. The window now loses
    lines, those below the cursor first, until its answer fits."""
    from models.next_edit.model import MAX_PROMPT_TOKENS, MAX_REWRITE_TOKENS

    model, asked = _asking(model_dirs[name])
    fmt = model.format
    current = "".join(CJK)
    line = 10
    history = [Edit(line, line + 1, CJK[line].replace("count", "n"), CJK[line])]
    model._ask(history, current, line, "shop.py", None)
    assert len(asked) == 1
    from models.next_edit.model import WINDOW_TOKEN_ROOM

    full, _window, span = fmt.prompt(history, current, line, "shop.py")
    assert _window_tokens(model, full, span) + WINDOW_TOKEN_ROOM > MAX_REWRITE_TOKENS  # the case
    ids, (lo, hi) = asked[0]
    assert len(ids) <= MAX_PROMPT_TOKENS and hi - lo + WINDOW_TOKEN_ROOM <= MAX_REWRITE_TOKENS
    after = next(a for a in range(LINES_AFTER, -1, -1)
                 if model.info.encoding(fmt.prompt(history, current, line, "shop.py", after=a)[0]).ids == ids)
    prompt, window, span = fmt.prompt(history, current, line, "shop.py", after=after)
    assert (window.start, window.end) == (line - LINES_BEFORE, line + after + 1)  # the lines above all kept
    assert after < LINES_AFTER and CURSOR_MARK in prompt[span[0]:span[1]]
    wider, _w, wider_span = fmt.prompt(history, current, line, "shop.py", after=after + 1)
    assert _window_tokens(model, wider, wider_span) + WINDOW_TOKEN_ROOM > MAX_REWRITE_TOKENS  # no narrower than needed


def test_a_prompt_that_fits_is_the_one_training_builds(model_dirs):
    model, asked = _asking(model_dirs["rewrite"])
    ex = _example()
    model._ask(ex.history, ex.current, ex.cursor_line, ex.path, None)
    prompt, _window, _span = build_prompt(ex.history, ex.current, ex.cursor_line, ex.path)
    assert asked[0][0] == model.info.encode(prompt)


@pytest.mark.parametrize("width,asked_too", [(MAX_LINE_CHARS, True), (MAX_LINE_CHARS + 1, False)])
def test_a_window_line_of_exactly_the_limit_is_rewritten(model_dirs, width, asked_too):
    """The limit counted the line break: a window holding a line of exactly 240 characters was never asked about,
    where the documentation says lines over 240 characters stop it."""
    model, asked = _asking(model_dirs["rewrite"])
    long = "x = '" + "a" * (width - 6) + "'"
    assert len(long) == width
    for eol in ("\n", "\r\n"):
        asked.clear()
        current = f"a = 1{eol}b = 2{eol}{long}{eol}"
        model._ask([Edit(0, 1, f"a = 0{eol}", f"a = 1{eol}")], current, 0, "x.py", None)
        assert bool(asked) == asked_too


# --- the evaluation of documents with CRLF line breaks -----------------------------------------------------------


def _crlf(ex: Example) -> Example:
    cr = lambda s: s.replace("\n", "\r\n")  # noqa: E731
    edit = lambda e: Edit(e.start_line, e.end_line, cr(e.original), cr(e.updated))  # noqa: E731
    return Example(ex.path, ex.package, cr(ex.original), [edit(e) for e in ex.history], cr(ex.current),
                   edit(ex.target))


NOQA = Example("m.py", "demo", "a = f(x)  # noqa\nb = 1\nc = g(x)  # noqa\n",
               [Edit(0, 1, "a = f(x)  # noqa\n", "a = f(x)  # noqa: F821\n")],
               "a = f(x)  # noqa: F821\nb = 1\nc = g(x)  # noqa\n",
               Edit(2, 3, "c = g(x)  # noqa\n", "c = g(x)  # noqa: F821\n"))


def test_the_baseline_and_the_ranker_are_evaluated_on_crlf_documents_as_served(tmp_path):
    """`tact eval next-edit` asked them on the raw text, where a CR is text; the server asks them on the LF view. On
    the CRLF copy the baseline changed `b = 1` and the ranker scored its edit otherwise."""
    from models.next_edit.evaluate import run_eval

    rows = {}
    for name, exs in (("lf", [NOQA, EX]), ("crlf", [_crlf(NOQA), _crlf(EX)])):
        (tmp_path / name).mkdir()
        write_jsonl(tmp_path / name / "demo_heldout.jsonl", exs)
        rows[name] = run_eval(tmp_path / name, with_model=False)["sets"]["demo_heldout"]
    for predictor in ("baseline", "ranker"):
        lf, crlf = ({k: v for k, v in rows[n][predictor].items() if k != "p50_ms"} for n in ("lf", "crlf"))
        assert crlf == lf, predictor
    assert rows["lf"]["baseline"]["exact"] == 1.0


# --- the directories `--pair` reads ------------------------------------------------------------------------------


def test_build_and_dist_are_skipped_only_at_the_top(tmp_path):
    """Every directory named `build` or `dist` was skipped: the `build` package's own code (`src/build/`) too."""
    files = {"src/build/core.py": OLD, "pkg/dist/util.py": OLD, "build/lib/pkg/a.py": OLD, "dist/x.py": OLD,
             "pkg/__pycache__/c.py": OLD}
    before = _tree(tmp_path / "v1", files)
    after = _tree(tmp_path / "v2", {rel: _new() for rel in files})
    assert [rel for rel, _, _ in paired_files(before, after)] == ["pkg/dist/util.py", "src/build/core.py"]


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symbolic links")
def test_symbolic_links_are_not_followed(tmp_path):
    """A link to a file paired it twice, a link out of the tree paired code that is not the tree's."""
    outside = _tree(tmp_path / "outside", {"o.py": OLD, "n.py": _new()})
    before = _tree(tmp_path / "v1", {"pkg/a.py": OLD, "pkg/b.py": OLD})
    after = _tree(tmp_path / "v2", {"pkg/a.py": _new()})
    for root in (before, after):
        (root / "pkg" / "link.py").symlink_to("a.py")
        (root / "linked").symlink_to(root / "pkg", target_is_directory=True)
    (after / "pkg" / "b.py").symlink_to(outside / "n.py")
    (before / "pkg" / "c.py").symlink_to(outside / "o.py")
    (after / "pkg" / "c.py").symlink_to(outside / "n.py")
    assert [rel for rel, _, _ in paired_files(before, after)] == ["pkg/a.py"]


def test_a_marker_the_model_copied_inside_a_line_is_dropped_too():
    """Only markers ending a line were dropped: `foo(<|cursor|>x)` was offered as an edit writing the marker."""
    from models.next_edit.prompt import CURSOR_MARK, _copied_marks_dropped

    assert _copied_marks_dropped(f"a\nfoo({CURSOR_MARK}x)\n", 0, 1) == "a\nfoo(x)\n"
    # the document's own marker (one) stays; the copied one goes, nearest the cursor line first
    assert _copied_marks_dropped(f'M = "{CURSOR_MARK}"\nfoo({CURSOR_MARK}x)\n', 1, 1) == f'M = "{CURSOR_MARK}"\nfoo(x)\n'
