"""Tab-indented documents read by the code model as space-indented ones, and its suggestions turned back to tabs."""

from __future__ import annotations

import re

import pytest

from lsp_server.config import Settings
from lsp_server.services.completion import CompletionService
from lsp_server.services.context import build_context
from lsp_server.services.indentation import tab_indented, tab_view
from lsp_server.services.positions import LineIndex, position_at
from lsp_server.services.scheduler import CancelToken
from tests.lsp_support import model_under_test

SPACES = ("class Stack:\n    def __init__(self):\n        self.items = []\n\n    def push(self, item):\n"
          "        self.items.append(item)\n\n    def pop(self):\n        if not self.items:\n"
          "            raise IndexError('pop from an empty stack')\n        return self.")


def _tabs(text: str) -> str:
    return re.sub(r"^((?:    )+)", lambda m: "\t" * (len(m.group(1)) // 4), text, flags=re.M)


def _ctx(text: str):
    return build_context(text, position_at(text, len(text)), language_id="python")


def test_a_document_is_tab_indented_when_all_its_indented_lines_start_with_a_tab():
    assert tab_indented(_tabs(SPACES))
    assert not tab_indented(SPACES)
    assert not tab_indented("x = 1\ny = 2\n")
    assert not tab_indented("def f():\n\treturn 1\n\ndef g():\n    return 2\n\ndef h():\n    return 3\n")
    # GNU-style C: levels of 4, tabs worth 8; a tab read as 4 collapsed the levels
    assert not tab_indented("int f(void)\n{\n    if (x)\n\t{\n\t  y();\n\t}\n    return 0;\n}\n")
    assert tab_indented("def f():\n\tif x:\n\t\ty = (1,\n\t\t     2)\n")  # alignment after the tabs is no indent


def test_the_model_reads_a_tab_indented_context_as_the_same_one_indented_with_spaces():
    view = tab_view(_ctx(_tabs(SPACES)))
    assert view is not None and view.context.prefix == SPACES
    assert tab_view(_ctx(SPACES)) is None


def test_a_tab_after_text_and_the_suffix_first_line_are_left_alone():
    text = "def f():\n\tx = 1\t# one\n\treturn |\t1\n\tpass\n"
    cursor = text.index("|")
    text = text.replace("|", "")
    view = tab_view(build_context(text, position_at(text, cursor), language_id="python"))
    assert view.context.prefix == "def f():\n    x = 1\t# one\n    return "
    assert view.context.suffix == "\t1\n    pass\n"


@pytest.mark.parametrize("in_indent, written, back", [
    (False, "items.pop()", "items.pop()"),
    (False, "x:\n        return 1\n    y", "x:\n\t\treturn 1\n\ty"),
    (False, "a    b\n      c", "a    b\n\t  c"),  # spaces after text stay; what is left of a run stays spaces
    (True, "    return 1", "\treturn 1"),  # the cursor in the indentation: the first line goes on with it
])
def test_a_suggestion_goes_back_to_tabs(in_indent, written, back):
    text = "def f():\n\tif x:\n\t\t" + ("" if in_indent else "y = ")
    view = tab_view(build_context(text, position_at(text, len(text)), language_id="python"))
    assert view.in_indent is in_indent
    assert view.back(written) == back


HEADER_END = SPACES.index("    def push(self, item):") + len("    def push(self, item):")


@pytest.mark.parametrize("multiline, end", [(False, len(SPACES)), (True, len(SPACES)),
                                            (False, SPACES.index("        if not")),
                                            (True, SPACES.index("        if not")),
                                            (True, HEADER_END)])  # a body of two lines
def test_a_tab_indented_document_gets_the_suggestion_of_the_same_document_indented_with_spaces(multiline, end):
    """Before, the model read the tabs and wrote another suggestion, or none (about half as many right ones)."""
    service = CompletionService()
    assert service.load(str(model_under_test())).ready
    settings = Settings(multiline=multiline, stop_threshold=1.01)
    suggestions = []
    for text in (SPACES[:end], _tabs(SPACES[:end])):
        ctx = service.context(LineIndex(text), "python", position_at(text, len(text)), settings)
        suggestions.append(service.complete(ctx, settings, CancelToken()))
    with_spaces, with_tabs = suggestions
    assert with_spaces.text.strip()
    assert with_tabs.text == _tabs(with_spaces.text)
    assert with_tabs.shown_tokens == with_spaces.shown_tokens
    assert with_tabs.details.get("tab_indented") is True


@pytest.mark.parametrize("cell, to_tabs", [
    ("def f(x):\n    y = x * 2\n    ", False),  # spaces in a cell under tab-indented cells: spaces
    ("def f(x):\n\ty = x * 2\n\t", True),
    ("x = 1\n", True),  # nothing indented in the cell: the cells above decide
])
def test_a_notebook_cells_own_indentation_decides_how_its_suggestion_is_indented(cell, to_tabs):
    """The cells above were counted with the cell: a cell indented with spaces under cells indented with tabs got
    its suggestions with tabs, which Python refuses (TabError). Cells above indented with tabs are still read with
    spaces."""
    from lsp_server.services.notebooks import cells_above

    above = "def a():\n\tx = 1\n\ty = 2\n\treturn x + y\n"
    earlier = cells_above([("python", above), ("python", cell)], 1, "python", 4096)
    ctx = build_context(cell, position_at(cell, len(cell)), language_id="python").with_earlier_cells(earlier)
    view = tab_view(ctx)
    assert view is not None and view.to_tabs is to_tabs
    assert "\t" not in view.context.earlier_cells
    written = "z = 1\n    return z"
    assert view.back(written) == (_tabs(written) if to_tabs else written)


def test_with_the_cursor_in_the_indentation_the_rest_of_its_line_is_read_with_spaces_too():
    """The suffix's first line kept its tab: the model read `    \treturn 1`."""
    text = "def f():\n\tx = 1\n\t\treturn 1\n"
    cursor = text.index("\treturn")  # after the line's first tab
    view = tab_view(build_context(text, position_at(text, cursor), language_id="python"))
    assert view.in_indent
    assert view.context.prefix.endswith("\n    ") and view.context.suffix.startswith("    return 1\n")
