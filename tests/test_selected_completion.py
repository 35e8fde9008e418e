"""Ghost text while the editor's completion widget has an entry selected (LSP's selectedCompletionInfo): an editor
shows only items that extend the entry, so the suggestion continues the document as if the entry were inserted."""

from __future__ import annotations

import json

import pytest

from telemetry.lsp_client import LspClient
from tests.lsp_support import model_under_test, server_command, wait_for_rows

CODE = "import os\n\n\ndef data_file(name):\n    return os.path.jo"
TYPED = "import os\n\n\ndef data_file(name):\n    return os.path.join"
URI, TYPED_URI = "file:///w/sel.py", "file:///w/typed.py"
OPTIONS = {"acceptanceGate": False, "stopThreshold": 1.01}
LINE, START, CURSOR = 4, len("    return os.path."), len("    return os.path.jo")


def _selected(text: str = "join", line: int = LINE, start: int = START, end: int = CURSOR) -> dict:
    return {"range": {"start": {"line": line, "character": start}, "end": {"line": line, "character": end}},
            "text": text}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    db = tmp_path_factory.mktemp("sel") / "t.sqlite3"
    client = LspClient(server_command(model_under_test(), db))
    client.initialize(OPTIONS)
    client.did_open(URI, CODE)
    client.did_open(TYPED_URI, TYPED)
    try:
        yield client, db
    finally:
        client.shutdown()


def test_an_item_over_a_selected_entry_extends_it_with_what_the_model_writes_after_it(served):
    """Before, the entry was ignored: the item continued `jo` at the cursor, which VS Code hid while its widget
    showed `join`."""
    client, _ = served
    (item,) = client.inline_completion(URI, LINE, CURSOR, invoked=True, timeout=120, selected=_selected())
    typed = client.inline_completion(TYPED_URI, LINE, len("    return os.path.join"), invoked=True, timeout=120)
    assert typed and typed[0]["insertText"], "the model suggests nothing after `join`: the test proves nothing"
    assert item["range"] == _selected()["range"]
    assert item["insertText"] == "join" + typed[0]["insertText"]  # the same continuation as with `join` typed


def test_an_entry_that_does_not_fit_the_request_is_left_out(served):
    client, _ = served
    plain = client.inline_completion(URI, LINE, CURSOR, invoked=True, timeout=120)
    for wrong in (_selected(line=LINE - 1), _selected(start=CURSOR + 1, end=CURSOR + 2), _selected(text="a\nb")):
        items = client.inline_completion(URI, LINE, CURSOR, invoked=True, timeout=120, selected=wrong)
        assert [(i["range"], i["insertText"]) for i in items] == [(i["range"], i["insertText"]) for i in plain], wrong


def test_the_request_is_logged_at_the_cursor_with_the_entry_and_a_partial_accept_counts_the_suggestion_alone(served):
    client, db = served
    (item,) = client.inline_completion(URI, LINE, CURSOR, invoked=True, timeout=120, selected=_selected())
    sid = item["command"]["arguments"][0]
    client.notify("tact/didShowCompletion", {"id": sid})
    client.notify("tact/didPartiallyAcceptCompletion", {"id": sid, "acceptedLength": len("join") + 1})
    (row,) = wait_for_rows(db, "SELECT line, character, context, text, accepted_length FROM suggestions"
                               " WHERE id = ? AND accepted_length IS NOT NULL", (sid,))
    line, character, context, text, accepted = row
    assert (line, character) == (LINE, CURSOR)  # where the editor's cursor is, not after the entry
    assert json.loads(context)["selected_completion"] == {"start_line": LINE, "start_character": START,
                                                          "end_line": LINE, "end_character": CURSOR, "text": "join"}
    assert "join" + text == item["insertText"] and accepted == 1  # of the suggestion's own text


def _recorded_and_replayed(tmp_path, decide=None):
    """A session that asks for a suggestion over the entry `join` (``decide(client, sid)`` then tells what became of
    it), ended, then replayed: (the item, its id, the replay's result, the replay's database)."""
    from telemetry.replay import ReplayOptions, replay

    db = tmp_path / "recorded.sqlite3"
    client = LspClient(server_command(model_under_test(), db))
    try:
        client.initialize(OPTIONS)
        client.did_open(URI, CODE)
        (item,) = client.inline_completion(URI, LINE, CURSOR, invoked=True, timeout=120, selected=_selected())
        sid = item["command"]["arguments"][0]
        if decide is not None:
            decide(client, sid)
    finally:
        client.shutdown()  # the recording ends, so that it is replayed whole
    out = tmp_path / "replay.sqlite3"
    (result,) = replay(db, out, options=ReplayOptions(model=str(model_under_test())))
    return item, sid, result, out


def _partly_accepted(client: LspClient, sid: str, accepted_length: int) -> None:
    """Shown, ``accepted_length`` UTF-16 units of the item accepted, the rest dismissed."""
    client.notify("tact/didShowCompletion", {"id": sid})
    client.notify("tact/didPartiallyAcceptCompletion", {"id": sid, "acceptedLength": accepted_length})
    client.notify("tact/didRejectCompletion", {"id": sid, "reason": "dismissed"})


def test_a_replay_asks_with_the_entry_its_recording_had(tmp_path):
    item, sid, result, _ = _recorded_and_replayed(tmp_path)
    replayed = [o for o in result.outcomes if o.request.suggestion_id == sid]
    assert replayed and replayed[0].request.selected["text"] == "join"
    assert replayed[0].text == item["insertText"][len("join"):]  # the recorded suggestion, asked for alike


def test_a_partial_accept_of_none_of_the_suggestion_is_no_acceptance(served):
    """A length of 0, or of the selected entry alone, was logged as a partial acceptance, which the gate counts as
    accepted."""
    client, db = served
    for selected, length in ((_selected(), len("join")), (None, 0)):
        (item,) = client.inline_completion(URI, LINE, CURSOR, invoked=True, timeout=120, selected=selected)
        sid = item["command"]["arguments"][0]
        _partly_accepted(client, sid, length)
        (row,) = wait_for_rows(db, "SELECT outcome, accepted_length FROM suggestions"
                                   " WHERE id = ? AND outcome IS NOT NULL", (sid,))
        assert row == ("rejected", None), (selected, row)


def test_a_replayed_partial_accept_over_an_entry_keeps_its_length(tmp_path):
    """The replay sent the suggestion's own length, from which the server took the entry's units off again."""
    item, sid, result, out = _recorded_and_replayed(
        tmp_path, lambda client, sid: _partly_accepted(client, sid, len("join") + 1))
    (outcome,) = [o for o in result.outcomes if o.request.suggestion_id == sid]
    assert (outcome.basis, outcome.outcome, outcome.accepted_length) == ("logged", "partially_accepted", 1)
    rows = wait_for_rows(out, "SELECT outcome, accepted_length FROM suggestions WHERE text = ?",
                         (item["insertText"][len("join"):],))
    assert rows == [("partially_accepted", 1)]
