"""The next-edit prompt: windows, the output that teaches a target (a rewrite or the next block), and the edit read
back from it."""

from __future__ import annotations

import pytest

from models.next_edit.examples import Edit, apply_edit, make_edit
from models.next_edit.prompt import (
    CURSOR_MARK,
    EDIT_MARK,
    HISTORY_CHARS,
    LINES_AFTER,
    LINES_BEFORE,
    ORIGINAL_MARK,
    PROMPT_FORMATS,
    REWRITE_MARK,
    UPDATED_MARK,
    WINDOW_MARK,
    build_next_block_prompt,
    build_prompt,
    edit_from_next_block,
    edit_from_rewrite,
    history_text,
    next_block_target,
    target_text,
    undoes_last_edit,
    window_around,
    window_lines,
)

TEXT = "".join(f"line_{i} = {i}\n" for i in range(40))


def test_window_is_cursor_relative_and_clipped():
    w = window_around(TEXT, 20)
    assert (w.start, w.end) == (20 - LINES_BEFORE, 20 + LINES_AFTER + 1)
    assert w.lines[LINES_BEFORE] == "line_20 = 20\n"
    top = window_around(TEXT, 1)
    assert top.start == 0 and top.lines[1] == "line_1 = 1\n"
    bottom = window_around(TEXT, 39)
    assert bottom.end == 40
    assert window_around("", 5).lines == ()


def test_prompt_marks_the_cursor_line_and_ends_with_the_rewrite_marker():
    history = [make_edit(TEXT, 19, 20, "line_19 = 190\n")]
    prompt, window, _ = build_prompt(history, TEXT, 20, "pkg/mod.py")
    assert prompt.endswith(REWRITE_MARK)
    assert "line_19 = 19\n" in prompt and "line_19 = 190\n" not in prompt.split(WINDOW_MARK)[1]
    assert f"line_20 = 20{CURSOR_MARK}\n" in prompt
    assert "mod.py" in prompt and "pkg/" not in prompt
    assert prompt.count(CURSOR_MARK) == 1


@pytest.mark.parametrize("target", [
    Edit(22, 23, "line_22 = 22\n", "line_22 = 220\n"),  # a replacement
    Edit(24, 24, "", "inserted = True\n"),  # an insertion
    Edit(23, 25, "line_23 = 23\nline_24 = 24\n", ""),  # a deletion
    Edit(20 - LINES_BEFORE, 21 - LINES_BEFORE, f"line_{20 - LINES_BEFORE} = {20 - LINES_BEFORE}\n",
         "a = 1\nb = 2\n"),  # at the window's first line, growing
])
def test_target_rewrite_round_trips_to_the_same_edit(target):
    window = window_around(TEXT, 20)
    rewrite = target_text(window, TEXT, target)
    assert rewrite is not None and rewrite != window.text
    edit = edit_from_rewrite(window, rewrite, TEXT)
    assert edit is not None
    assert apply_edit(TEXT, edit) == apply_edit(TEXT, target)


def test_target_outside_the_window_teaches_no_change_and_straddling_is_refused():
    window = window_around(TEXT, 20)
    far = Edit(2, 3, "line_2 = 2\n", "line_2 = 3\n")
    assert target_text(window, TEXT, far) == window.text
    assert edit_from_rewrite(window, window.text, TEXT) is None
    straddle = Edit(15, 19, "".join(f"line_{i} = {i}\n" for i in range(15, 19)), "x = 0\n")
    assert target_text(window, TEXT, straddle) is None


def test_rewrite_keeps_a_missing_final_newline():
    text = "a = 1\nb = 2"
    window = window_around(text, 1)
    edit = edit_from_rewrite(window, "a = 1\nb = 3\n", text)
    assert edit is not None and apply_edit(text, edit) == "a = 1\nb = 3"


def test_history_is_cut_oldest_first():
    history = [Edit(i, i + 1, f"old_{i} = 0\n" * 3, f"new_{i} = 0\n" * 3) for i in range(10)]
    text = history_text(history, "m.py", budget=300)
    assert len(text) <= 300
    assert "new_9" in text and "new_0" not in text
    assert "new_9" in history_text(history, "m.py") and len(history_text(history, "m.py")) <= HISTORY_CHARS


def test_undo_of_the_last_edit_is_recognised():
    last = make_edit(TEXT, 5, 6, "renamed = 5\n")
    current = apply_edit(TEXT, last)
    undo = Edit(5, 6, "renamed = 5\n", "line_5 = 5\n")
    assert undoes_last_edit([last], current, undo)
    other = Edit(6, 7, "line_6 = 6\n", "renamed_6 = 6\n")
    assert not undoes_last_edit([last], current, other)
    assert not undoes_last_edit([], current, undo)


@pytest.mark.parametrize("eol", ["\n", "\r\n", "\r"])
def test_undo_of_a_deleted_line_is_recognised_whatever_the_line_break(eol):
    """In CR documents apply_edit wrote an LF after the re-inserted line's CR, so the undo went unnoticed."""
    before = f"def f(a):{eol}    bar = 1{eol}    foo = 0{eol}    baz = 2{eol}"
    last = Edit(2, 4, f"    foo = 0{eol}    baz = 2{eol}", f"    baz = 2{eol}")  # the line deleted
    current = apply_edit(before, last)
    reinsert = Edit(1, 2, f"    bar = 1{eol}", f"    bar = 1{eol}    foo = 0{eol}")
    assert apply_edit(current, reinsert) == before
    assert undoes_last_edit([last], current, reinsert)


CRLF_TEXT = "".join(f"line_{i} = {i}\n" for i in range(12)) + "last = 0"  # no final line break


@pytest.mark.parametrize("eol", ["\r\n", "\r"])
@pytest.mark.parametrize("name", list(PROMPT_FORMATS))
def test_the_model_reads_lf_and_its_edit_keeps_the_documents_line_break(eol, name):
    """No training example holds a CR: the prompt is the LF document's, and the answer's edit is written back with
    the document's line break (applied, it gives the LF answer in the document's line breaks)."""
    fmt = PROMPT_FORMATS[name]
    text = CRLF_TEXT.replace("\n", eol)
    last = make_edit(CRLF_TEXT, 4, 5, "renamed_4 = 4\n")
    history = [Edit(4, 5, last.original.replace("\n", eol), last.updated.replace("\n", eol))]
    prompt, window, span = fmt.prompt(history, text, 10)
    lf_prompt, _lf_window, lf_span = fmt.prompt([last], CRLF_TEXT, 10)
    assert "\r" not in prompt and (prompt, span) == (lf_prompt, lf_span)
    for target in (make_edit(CRLF_TEXT, 8, 10, "eight = 8\nnine = 9\nten = 10\n"),  # one more line
                   make_edit(CRLF_TEXT, 12, 13, "last = 1"),  # the unterminated last line
                   Edit(13, 13, "", "after = 0")):  # a line after it
        output = fmt.target(window_around(CRLF_TEXT, 10), CRLF_TEXT, target)
        assert output and "\r" not in output
        edit = fmt.edit(window, output, text, 10)
        assert edit is not None and apply_edit(text, edit) == apply_edit(CRLF_TEXT, target).replace("\n", eol)
    assert fmt.edit(window, fmt.target(window_around(CRLF_TEXT, 10), CRLF_TEXT, make_edit(CRLF_TEXT, 0, 1, "x\n")),
                    text, 10) is None  # outside the window: the LF window unchanged is no edit


MIXED_TEXT = "def f(width):\n    a = width\r\n    b = 2\n    c = width\r\n    return a"  # LF and CRLF lines


@pytest.mark.parametrize("name", list(PROMPT_FORMATS))
@pytest.mark.parametrize("lf_target,want", [
    # two lines renamed around one left as it was: each keeps its own line break
    (make_edit(MIXED_TEXT.replace("\r", ""), 1, 4, "    a = w\n    b = 2\n    c = w\n"),
     "def f(width):\n    a = w\r\n    b = 2\n    c = w\r\n    return a"),
    (make_edit(MIXED_TEXT.replace("\r", ""), 0, 2, "def f(w):\n    a = w\n"),
     "def f(w):\n    a = w\r\n    b = 2\n    c = width\r\n    return a"),
    # a line added: the line kept keeps its own, the new one takes the last replaced line's
    (make_edit(MIXED_TEXT.replace("\r", ""), 1, 3, "    a = w\n    x = 1\n    b = 2\n"),
     "def f(width):\n    a = w\r\n    x = 1\r\n    b = 2\n    c = width\r\n    return a"),
    (make_edit(MIXED_TEXT.replace("\r", ""), 3, 5, "    c = w\n    return c"),  # down to the unterminated last line
     "def f(width):\n    a = width\r\n    b = 2\n    c = w\r\n    return c"),
    (make_edit(MIXED_TEXT.replace("\r", ""), 3, 5, "    c = w\n    return a\n    done()"),  # a line after it
     "def f(width):\n    a = width\r\n    b = 2\n    c = w\r\n    return a\n    done()"),
])
def test_in_a_mixed_document_the_models_edit_keeps_each_lines_own_line_break(name, lf_target, want):
    """The model's edit was written back with one line break (the block's last line's): in a document mixing CRLF
    and LF lines it turned the LF lines it spanned, even ones the model left as they were, into CRLF ones."""
    fmt = PROMPT_FORMATS[name]
    lf_text = MIXED_TEXT.replace("\r", "")
    history = [make_edit(MIXED_TEXT, 0, 1, "def f(width):\n")]  # a stand-in: the prompt is not what is checked
    _prompt, window, _span = fmt.prompt(history, MIXED_TEXT, 2)
    output = fmt.target(window_around(lf_text, 2), lf_text, lf_target)
    edit = fmt.edit(window, output, MIXED_TEXT, 2)
    assert edit is not None and apply_edit(MIXED_TEXT, edit) == want


REPEATED = "".join(f"x = {i % 2}\n" for i in range(12))  # two lines, alternating: every line occurs six times


@pytest.mark.parametrize("text,cursor,target", [
    (TEXT, 20, Edit(22, 23, "line_22 = 22\n", "line_22 = 220\n")),  # a replacement
    (TEXT, 20, Edit(24, 24, "", "inserted = True\n")),  # an insertion: anchored on the line above
    (TEXT, 20, Edit(23, 25, "line_23 = 23\nline_24 = 24\n", "")),  # a deletion
    (TEXT, 20, Edit(17, 17, "", "top = 0\n")),  # an insertion at the window's first line: anchored below
    (REPEATED, 5, Edit(6, 7, "x = 0\n", "x = 9\n")),  # ambiguous lines: widened until unique
])
def test_next_block_round_trips_to_the_same_edit(text, cursor, target):
    prompt, window, _ = build_next_block_prompt([make_edit(text, 3, 4, "changed = 1\n")], text, cursor, "m.py")
    assert prompt.startswith(WINDOW_MARK) and prompt.endswith(f"{EDIT_MARK} m.py\n")
    output = next_block_target(window, text, target)
    assert output and output.startswith(ORIGINAL_MARK)
    original = output[len(ORIGINAL_MARK):].split(UPDATED_MARK)[0]
    lines = window_lines(window)
    n = len(original.splitlines())
    assert sum(lines[i:i + n] == original.splitlines(keepends=True) for i in range(len(lines))) == 1
    edit = edit_from_next_block(window, output, text, cursor)
    assert edit is not None and apply_edit(text, edit) == apply_edit(text, target)


def test_next_block_outside_the_window_is_empty_and_bad_outputs_name_no_edit():
    window = window_around(TEXT, 20)
    assert next_block_target(window, TEXT, Edit(2, 3, "line_2 = 2\n", "line_2 = 3\n")) == ""
    assert edit_from_next_block(window, "", TEXT) is None
    assert edit_from_next_block(window, f"{ORIGINAL_MARK}line_22 = 22\n", TEXT) is None  # no updated block
    assert edit_from_next_block(window, f"{ORIGINAL_MARK}line_2 = 2\n{UPDATED_MARK}x\n", TEXT) is None  # not here
    same = f"{ORIGINAL_MARK}line_22 = 22\n{UPDATED_MARK}line_22 = 22\n"
    assert edit_from_next_block(window, same, TEXT) is None  # changes nothing


@pytest.mark.parametrize("name", list(PROMPT_FORMATS))
def test_the_prompt_says_where_its_window_lies_even_when_the_code_holds_the_markers(name):
    # This module's own source holds the markers: the span must not be found by searching for them.
    text = TEXT.replace("line_21 = 21\n", f'DOC = "{EDIT_MARK} path.py"\n').replace("line_22 = 22\n", f'M = "{WINDOW_MARK}"\n')
    history = [make_edit(text, 19, 20, f'x = "{WINDOW_MARK}"\n')]
    prompt, window, (a, b) = PROMPT_FORMATS[name].prompt(history, text, 20, "m.py")
    assert prompt[a:b].replace(CURSOR_MARK, "") == window.text
    assert EDIT_MARK in window.text and WINDOW_MARK in window.text


@pytest.mark.parametrize("name", list(PROMPT_FORMATS) + ["ranker"])
def test_equal_lines_with_different_line_breaks_each_keep_their_own(name):
    """A line left as it was took the break of the last line equal to it: in a block holding `pass` twice, once
    ended by CRLF and once by LF, both came back with LF (the user's file had a line break changed under it)."""
    from models.next_edit.prompt import in_document

    text = "a = 1\r\n    pass\r\n    pass\nb = 2\n"
    lf_text = text.replace("\r", "")
    lf_target = make_edit(lf_text, 0, 4, "a = 0\n    pass\n    pass\nb = 3\n")  # first and last lines changed
    if name == "ranker":  # the ranker's and the baseline's edits of the LF view, written back
        edit = in_document(text, lf_target)
    else:
        fmt = PROMPT_FORMATS[name]
        _prompt, window, _span = fmt.prompt([make_edit(text, 0, 1, "a = 1\r\n")], text, 1)
        edit = fmt.edit(window, fmt.target(window_around(lf_text, 1), lf_text, lf_target), text, 1)
    assert edit is not None and apply_edit(text, edit) == "a = 0\r\n    pass\r\n    pass\nb = 3\n"
