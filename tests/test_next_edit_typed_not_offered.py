"""The ranker offered to type again what the user just typed: a line added (its unchanged neighbour came with it in
the history), and text appended to a line (generalised, the line itself still held the text it was appended to)."""

from __future__ import annotations

import pytest

from lsp_server.services.documents import DocumentStore
from lsp_server.services.ledger import SuggestionLedger
from lsp_server.services.next_edit import NextEditService, line_history
from lsp_server.services.positions import LineIndex, Position, Range
from lsp_server.services.recorder import SessionRecorder
from lsp_server.services.scheduler import InferenceScheduler
from models.next_edit.candidates import generate
from models.next_edit.examples import Edit

URI = "file:///t/a.py"


class Typist:
    """Types into the server's document store, keystroke by keystroke, and asks the service for the next edit."""

    def __init__(self, text: str) -> None:
        self.docs = DocumentStore()
        self.docs.open(URI, "python", 1, text)
        self.version, self.t = 1, 100.0
        self.service = NextEditService(InferenceScheduler(), SuggestionLedger(), SessionRecorder())

    def change(self, line: int, character: int, text: str, gap: float = 0.1) -> None:
        self.version += 1
        self.t += gap
        self.docs.change(URI, self.version, [(Range.of(line, character, line, character), text)], now=self.t)

    def type(self, line: int, character: int, text: str, first_gap: float = 5.0) -> None:
        for k, ch in enumerate(text):
            self.change(line, character + k, ch, gap=0.1 if k else first_gap)
        self.docs.flush(URI)

    def history(self):
        _, index = self.docs.get(URI).indexed_snapshot()
        return line_history(index.text, self.docs.get(URI).history.recent(8), index)

    def predict(self, line: int, character: int):
        _, index = self.docs.get(URI).indexed_snapshot()
        return self.service.predict(index.text, self.docs.get(URI).history.recent(8), Position(line, character), URI,
                                    predictor="ranker", ranker_threshold=-1.0, index=index)


@pytest.mark.parametrize("src, line, typed", [
    ("import os\nimport sys\n\n\ndef main():\n    pass\n", 1, "import re"),
    ("class A:\n    @property\n    def x(self):\n        return 1\n\n    def y(self):\n        return 2\n", 1, "    @cache"),
    ("def main(argv):\n    name = argv[1]\n    value = argv[2]\n    return name\n", 1, "    print(name)"),
])
def test_a_line_typed_after_enter_is_a_pure_insertion_and_not_offered_again(src, line, typed):
    t = Typist(src)
    end = len(src.splitlines()[line])
    t.change(line, end, "\n", gap=5.0)
    t.type(line + 1, 0, typed, first_gap=0.1)  # End, Enter, the line typed: one edit
    assert t.history()[-1] == Edit(line + 1, line + 1, "", typed + "\n")
    found = t.predict(line + 1, len(typed))
    if found is not None:  # whatever it offers, it is not the line typed once more beside itself
        lines = LineIndex(t.docs.get(URI).text)
        text = lines.text
        a, b = lines.offset_at(found.start, clamp=False), lines.offset_at(found.end, clamp=False)
        assert (typed + "\n") * 2 not in text[:a] + found.new_text + text[b:]


def test_a_line_typed_above_another_is_a_pure_insertion():
    t = Typist("import functools\n\n\ndef load(path):\n    return open(path).read()\n")
    t.type(3, 0, "@functools.cache\n")
    assert t.history()[-1] == Edit(3, 3, "", "@functools.cache\n")
    found = t.predict(4, 0)
    assert found is None or found.new_text != "@functools.cache\n"


def test_a_deleted_line_is_a_pure_deletion_the_ranker_can_repeat():
    t = Typist("def f():\n    breakpoint()\n    x = 1\n    breakpoint()\n    return x\n")
    t.version += 1
    t.docs.change(URI, t.version, [(Range.of(1, 0, 2, 0), "")], now=t.t + 5)
    t.docs.flush(URI)
    assert t.history()[-1] == Edit(1, 2, "    breakpoint()\n", "")
    found = t.predict(1, 0)
    assert found is not None and found.new_text == "" and (found.start.line, found.end.line) == (2, 3)


@pytest.mark.parametrize("before, after", [
    ("from os import path\n", "from os import path, sep\n"),
    ("TIMEOUT = DEFAULT\n", "TIMEOUT = DEFAULT  # noqa\n"),
])
def test_text_appended_to_a_line_is_not_offered_again_on_that_line(before, after):
    current = after + "x = 1\n"
    candidates = generate([Edit(0, 1, before, after)], current)
    doubled = after.rstrip("\n") + after.rstrip("\n")[len(before.rstrip("\n")):]
    assert not [c for c in candidates if c.edit.start_line == 0 and doubled in c.edit.updated]


def test_the_same_change_elsewhere_on_the_line_is_still_offered():
    """A name renamed at its first use: its second use on the same line is the next edit."""
    candidates = generate([Edit(0, 1, "total = add(total, 1)\n", "amount = add(total, 1)\n")],
                          "amount = add(total, 1)\n")
    assert any(c.edit.updated == "amount = add(amount, 1)\n" for c in candidates)
