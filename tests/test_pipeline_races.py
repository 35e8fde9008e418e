"""A completion's answer against what happened meanwhile: document changes and the editor's cancellation
(in-process, through the shared suggest() of inline and classic completion, with a fake code model)."""

from __future__ import annotations

import asyncio
import math
from types import SimpleNamespace

import pytest

from lsp_server.config import Settings
from lsp_server.features.suggest import suggest
from lsp_server.services.gate import AcceptanceGate
from lsp_server.services.positions import Position, Range
from models.acceptance import features
from tests.test_acceptance_gate import TEXT, URI, FakeService, _model, _pipeline, _run


def _server(gate: AcceptanceGate):
    pipe, store = _pipeline(gate, FakeService())
    ls = SimpleNamespace(completions=SimpleNamespace(degraded=False), pipeline=pipe, settings=Settings(),
                         recorder=pipe.recorder)
    return ls, pipe, store


def _answer_after(ls, pipe, meanwhile):
    """suggest() at 3:12, with ``meanwhile(task)`` run on the event loop after the job has finished but before
    suggest() resumes (as a didChange or $/cancelRequest handled first would be); what suggest() gives, and the id."""
    queued = []
    request = pipe.request
    pipe.request = lambda *args: queued.append(request(*args)) or queued[-1]

    async def main():
        task = asyncio.ensure_future(suggest(ls, URI, 3, 12, "automatic"))
        await asyncio.sleep(0)  # suggest() queues the job and awaits it
        queued[0].future.result(timeout=10)  # the job is done; the loop is held, so suggest() has not resumed
        meanwhile(task)
        return await task

    return asyncio.run(main()), queued[0].suggestion_id


def _changed(pipe):
    pipe.documents.change(URI, 2, [(Range.of(0, 0, 0, 0), "# a line above\n")])  # 3:12 is now another place


def _reopened(pipe):
    pipe.documents.close(URI)
    pipe.documents.open(URI, "python", 1, "print()\n" + TEXT)  # the same version number, other text


@pytest.mark.parametrize("edit", [_changed, _reopened])
def test_a_suggestion_whose_text_changed_before_the_answer_is_not_sent(edit):
    """The job checks the version before it returns; a didChange handled after that, before the answer went out,
    sent a suggestion for text the editor no longer had, registered under the new version."""
    gate = AcceptanceGate(_model(0.9, 0.95))
    ls, pipe, store = _server(gate)
    found, sid = _answer_after(ls, pipe, lambda task: edit(pipe))
    assert found is None
    assert pipe.ledger.get(sid) is None and pipe.counts["issued"] == 0
    assert [e.reason for e in store.events if type(e).__name__ == "SuggestionCancelled"] == ["stale"]
    assert gate.history.shown.times_shown("x + 1") == 0  # never shown: the gate does not remember it


def test_an_answer_for_the_current_text_is_registered_under_its_version_and_remembered_as_shown():
    gate = AcceptanceGate(_model(0.9, 0.95))
    ls, pipe, store = _server(gate)
    found, sid = _answer_after(ls, pipe, lambda task: None)
    assert found is not None and found[0].suggestion_id == sid and found[1].text == "x + 1"
    assert pipe.ledger.get(sid).version == 1
    assert gate.history.shown.times_shown("x + 1") == 1
    assert not [e for e in store.events if type(e).__name__ == "SuggestionCancelled"]


def test_a_suggestion_the_editor_cancelled_after_generation_is_not_remembered_as_shown():
    """$/cancelRequest after the job had finished: the suggestion never reached the user, yet the gate counted it as
    shown, so the next request at the same prompt looked like a repeat (same prefix, shown before)."""
    gate = AcceptanceGate(_model(0.9, 0.95))
    ls, pipe, store = _server(gate)
    with pytest.raises(asyncio.CancelledError):
        _answer_after(ls, pipe, lambda task: task.cancel())
    assert [e.reason for e in store.events if type(e).__name__ == "SuggestionCancelled"] == ["client"]
    assert _run(pipe).text == "x + 1"  # the same prompt again
    stage1 = [e.details["features"] for e in store.events if type(e).__name__ == "SuggestionGated" and e.stage == 1]
    stage2 = [e.details["features"] for e in store.events if type(e).__name__ == "SuggestionGated" and e.stage == 2]
    assert stage1[1][features.CONTEXT_FEATURES.index("same_prefix_as_shown")] == 0.0
    assert stage2[1][features.SUGGESTION_FEATURES.index("log_times_shown_before")] == 0.0



def test_the_gate_times_a_suggestion_by_its_request_as_a_replay_does():
    """Stage 1 read the clock as it ran, stage 2 and "shown" after generation; a replay pins the clock to the logged
    request's time, so the time since the last suggestion shown differed between a session and its replay (a
    stage-2 decision flipped). Now every reading is the request's: here, generation takes 5 s of the clock."""
    gate = AcceptanceGate(_model(0.9, 0.95))
    clock = [1000.0]
    gate.clock = lambda: clock[0]
    pipe, store = _pipeline(gate, FakeService())
    complete = pipe.service.complete

    def slow(*args):
        clock[0] += 5.0  # generating takes five seconds of the gate's clock
        return complete(*args)

    pipe.service.complete = slow
    for _ in range(2):
        pending = pipe.request(URI, Position(3, 12), "automatic", Settings())
        suggestion = pending.future.result(timeout=10)
        assert pipe.issue(pending, suggestion, URI)
        clock[0] += 10.0  # the user reads it, then types on
    since = [e.details["features"][features.CONTEXT_FEATURES.index("log_seconds_since_shown")]
             for e in store.events if type(e).__name__ == "SuggestionGated" and e.stage == 1]
    # the second request came 15 s of clock after the first: 5 generating, 10 reading; shown at the first's request
    assert since[1] == pytest.approx(math.log1p(15.0))
