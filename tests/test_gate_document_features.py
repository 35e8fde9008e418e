"""The gate's features at serving against training's, for a document larger than the model's prompt windows.

Training (``models/acceptance/cups.py``, ``dataset.py``) gives the features the whole text before the cursor;
serving builds the model's prompt windows (``tact.contextPrefixChars`` on a grid, ``tact.contextSuffixChars``),
which the gate must not take for the document."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from lsp_server.config import Settings
from lsp_server.services.context import build_context
from lsp_server.services.gate import AcceptanceGate
from lsp_server.services.positions import LineIndex, position_at
from models.acceptance import features
from models.acceptance.model import load_model

URI = "file:///w/big.py"
SUGGESTION = "    handler_for_the_request(request, settings)\n]"


def _document(newline: str = "\n") -> tuple[str, int]:
    """(text, cursor): a module whose list opened 4,500 chars above the cursor is still open, with the line the
    suggestion repeats 990 chars above it, a run of blank lines just before it that a grid point of the prefix
    window falls in, and more code below."""
    head = "".join(f"def helper_{i}(value):{newline}    return value * {i}{newline}" for i in range(60))
    head += "HANDLERS = [" + newline + "".join(f"    handler_{i:03d},{newline}" for i in range(200))
    repeated = "    handler_for_the_request(request, settings)" + newline
    near = "".join(f"    handler_{i:03d},{newline}" for i in range(200, 253))
    blank = newline * 40
    pad = "#" * ((-(len(head) + len(repeated) + len(near) + 2 + len(blank) // 2)) % 1024) + newline
    before = head + "# " + pad + repeated + near + blank + "    "
    after = newline + "]" + newline + "".join(f"x_{i} = {i}{newline}" for i in range(200))
    return before + after, len(before)


def _settings(prefix_chars: int, suffix_chars: int) -> Settings:
    return dataclasses.replace(Settings(), context_prefix_chars=prefix_chars, context_suffix_chars=suffix_chars)


SETTINGS = [_settings(1024, 256), _settings(0, 0), _settings(16, 8), _settings(300, 40), _settings(2048, 1024)]


def _served(gate: AcceptanceGate, text: str, offset: int, settings: Settings, now: float):
    index = LineIndex(text)
    ctx = build_context(text, position_at(text, offset, index=index), prefix_chars=settings.context_prefix_chars,
                        suffix_chars=settings.context_suffix_chars, index=index)
    first = gate.before(ctx, settings, uri=URI, now=now)
    second = gate.after(ctx, SUGGESTION, settings, logprobs=[-0.5, -1.0], stop_probs=[0.1, 0.2], stage1=first,
                        uri=URI, now=now)
    return ctx, first.vector, second.vector


def _trained(text: str, offset: int, recall: features.ShownRecall, times_shown: int):
    """As the CUPS loader and the dataset builder make them: the whole text before the cursor is the prompt."""
    ctx = features.ContextInputs(prefix=text[:offset], suffix=text[offset:], document_chars=len(text),
                                 cursor_offset=offset, typing_cps=recall.typing_cps,
                                 seconds_since_shown=recall.seconds_since_shown,
                                 same_prefix_as_shown=recall.same_prefix_as_shown)
    x1 = features.context_features(ctx)
    sug = features.SuggestionInputs(SUGGESTION, [-0.5, -1.0], [0.1, 0.2], None, 0, times_shown)
    return x1, features.suggestion_features(ctx, sug, x1)


def _differences(served: np.ndarray, trained: np.ndarray, names) -> dict:
    return {n: (float(a), float(b)) for n, a, b in zip(names, served, trained)
            if not (a == b or (np.isnan(a) and np.isnan(b)))}


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: f"{s.context_prefix_chars}-{s.context_suffix_chars}")
def test_the_gate_sees_what_training_sees_whatever_the_prompt_windows(settings, newline):
    """The gate read the prompt windows as the text around the cursor. With the default settings closing a list
    opened 4,500 chars above the cursor counted as a new syntax error at 3 of 37 cursors (5 of 43 with CRLF); with
    small ``contextPrefixChars``/``contextSuffixChars`` also the last non-space character was "none", a line repeated
    990 chars above was not ``in_prefix``, and the text after the cursor was taken for blank (``next_char_space`` at
    25 of 37 cursors with empty windows)."""
    text, cursor = _document(newline)
    gate = AcceptanceGate(load_model())
    names1, names2 = features.CONTEXT_FEATURES, features.SUGGESTION_FEATURES
    for offset in (cursor, cursor - 4, *range(text.index("handler_030"), len(text), 181)):
        ctx, x1, x2 = _served(gate, text, offset, settings, now=1000.0)
        assert ctx.prefix_start > 0  # the window is not the whole text before the cursor
        t1, t2 = _trained(text, ctx.offset, features.ShownRecall(), 0)  # (an offset inside a CRLF moves before it)
        assert _differences(x1, t1, names1) == {}
        assert _differences(x2, t2, names2) == {}


@pytest.mark.parametrize("settings", SETTINGS[:2], ids=["default", "empty-windows"])
def test_the_same_text_before_the_cursor_means_the_whole_text_as_in_training(settings):
    """The gate remembered the prefix window of a shown suggestion, so an edit above the window (a renamed helper)
    followed by a request at the same offset counted as "nothing typed since" where training, which keeps the
    whole prompt, saw a change; with empty windows every request at the same offset did."""
    text, offset = _document()
    edited = text.replace("helper_1(", "helper_X(", 1)
    assert len(edited) == len(text) and edited[:offset] != text[:offset]
    gate = AcceptanceGate(load_model())
    history = features.ShownHistory()  # the loader's replay of what the user was shown
    for now, doc in ((1000.0, text), (1010.0, text), (1020.0, edited), (1030.0, edited)):
        recall = history.recall("", now, offset, doc[:offset])
        times = history.times_shown(SUGGESTION)
        ctx, x1, x2 = _served(gate, doc, offset, settings, now)
        t1, t2 = _trained(doc, offset, recall, times)
        assert _differences(x2, t2, features.SUGGESTION_FEATURES) == {}
        gate.shown(URI, ctx, SUGGESTION, now=now)
        history.record("", now, offset, doc[:offset], SUGGESTION)
    assert history.recall("", 1040.0, offset, edited[:offset]).same_prefix_as_shown


def test_the_gate_reads_a_bounded_stretch_of_a_large_document():
    """Reading the document instead of the windows must not copy it per request (the windows bounded what the gate
    read before): in a file of 1.5 MB the features are computed from a few thousand chars around the cursor."""
    text, cursor = _document()
    big = text[:cursor] * 200 + text[cursor:]  # the cursor near the end
    settings = Settings()
    gate = AcceptanceGate(load_model())
    index = LineIndex(big)
    offset = cursor * 200
    ctx = build_context(big, position_at(big, offset, index=index), index=index)
    gate.shown(URI, ctx, SUGGESTION, now=999.0)
    moved = build_context(big, position_at(big, offset - 40, index=index), index=index)
    first = gate.before(moved, settings, uri=URI, now=1000.0)
    assert len(first.inputs.prefix) + len(first.inputs.suffix) < 10_000
