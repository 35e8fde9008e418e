"""Next edits as code actions (textDocument/codeAction) over stdio against the real server process: the action,
its edit and command, kind filtering, what telemetry logs for invoked and automatic requests, and bad input.

The heuristic predictor answers (repeat the last replacement at its next occurrence), as in tests/test_next_edit_lsp.py:
these tests are about the protocol, not about which edit the ranker picks."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from lsp_server.protocol import NEXT_EDIT_ACTION_KIND
from lsp_server.services.next_edit_actions import action_title, kind_requested, next_edit_action, one_line
from lsp_server.services.positions import Position
from telemetry.lsp_client import LspClient, LspError, change_at
from tests.editors.support import replay_edits
from tests.lsp_support import model_under_test, server_command, wait_for_rows

URI = "file:///project/shapes.py"
TEXT = "def area(width, height):\n    check(width)\n    return width * height\n"
RENAMED = TEXT.replace("width", "w", 1)  # def area(w, height): the rename the server saw
OPTIONS = {"acceptanceGate": False, "nextEditPredictor": "heuristic"}


def capabilities(code_actions: bool = True, document_changes: bool = True) -> dict:
    """What Neovim, Emacs and Helix declare for code actions: literals (of any kind), versioned edits or not."""
    caps: dict = {"textDocument": {"synchronization": {}},
                  "workspace": {"workspaceEdit": {"documentChanges": document_changes}}}
    if code_actions:
        caps["textDocument"]["codeAction"] = {
            "codeActionLiteralSupport": {"codeActionKind": {"valueSet": ["", "quickfix", "refactor", "source"]}}}
    return caps


def start(tmp_path: Path, options: dict | None = None, env: dict | None = None, **caps) -> tuple[LspClient, Path, dict]:
    db = tmp_path / "telemetry.sqlite3"
    client = LspClient(server_command(model_under_test(), db), env=env)
    init = client.request("initialize", {"processId": None, "rootUri": None, "capabilities": capabilities(**caps),
                                         "clientInfo": {"name": "code-action-client", "version": "1"},
                                         "initializationOptions": {**OPTIONS, **(options or {})}})
    client.notify("initialized", {})
    return client, db, init


def renamed(client: LspClient) -> None:
    """Open TEXT and rename the parameter `width` to `w` (version 2): the next edit is check(width) on line 2."""
    client.did_open(URI, TEXT)
    client.did_change(URI, 2, [change_at(0, 9, "w", 0, 14)])


def code_actions(client: LspClient, line: int = 0, character: int = 10, end: tuple[int, int] | None = None,
                 uri: str = URI, **context) -> list[dict]:
    """textDocument/codeAction for the range (line, character)-end (empty: the cursor)."""
    end_line, end_character = end if end is not None else (line, character)
    result = client.request("textDocument/codeAction", {
        "textDocument": {"uri": uri},
        "range": {"start": {"line": line, "character": character}, "end": {"line": end_line, "character": end_character}},
        "context": {"diagnostics": [], **context}})
    assert isinstance(result, list), result
    return result


def apply(client: LspClient, text: str, version: int, action: dict) -> str:
    """Apply the action as an editor does: its edit (sent as didChange), then its command. The new text."""
    edit = action["edit"]
    edits = edit["documentChanges"][0]["edits"] if "documentChanges" in edit else edit["changes"][URI]
    [one] = edits
    rng = one["range"]
    client.did_change(URI, version, [change_at(rng["start"]["line"], rng["start"]["character"], one["newText"],
                                               rng["end"]["line"], rng["end"]["character"])])
    assert client.request("workspace/executeCommand", action["command"]) is True
    return replay_edits(text, [(rng["start"]["line"], rng["start"]["character"], rng["end"]["line"],
                                rng["end"]["character"], one["newText"])])


def next_edit_rows(db: Path, want: int, where: str = "outcome IS NOT NULL") -> list[tuple]:
    return wait_for_rows(db, "SELECT id, outcome, reject_reason, shown_at IS NOT NULL FROM suggestions "
                             f"WHERE kind = 'next_edit' AND {where} ORDER BY requested_at", want=want)


def events(db: Path, suggestion_id: str) -> list[str]:
    rows = wait_for_rows(db, "SELECT type FROM suggestion_events WHERE suggestion_id = ? ORDER BY ts, seq",
                         (suggestion_id,))
    return [t for (t,) in rows]


def test_a_rename_then_a_code_action_at_the_next_use_applies_it_and_logs_it_shown_and_accepted(tmp_path):
    client, db, init = start(tmp_path)
    with client:
        assert init["capabilities"]["codeActionProvider"]["codeActionKinds"] == [NEXT_EDIT_ACTION_KIND]
        renamed(client)
        [action] = code_actions(client, 1, 4, triggerKind=1)  # the user asks, on the line of the next use
        assert action["title"] == "Tact: next edit — replace `width` with `w` (line 2)"
        assert action["kind"] == NEXT_EDIT_ACTION_KIND
        [change] = action["edit"]["documentChanges"]
        assert change["textDocument"] == {"uri": URI, "version": 2}
        assert change["edits"] == [{"range": {"start": {"line": 1, "character": 10}, "end": {"line": 1, "character": 15}},
                                    "newText": "w"}]
        sid = action["command"]["arguments"][0]
        assert action["command"]["command"] == "tact.acceptNextEdit" and action["command"]["arguments"] == [sid]
        assert apply(client, RENAMED, 3, action) == RENAMED.replace("check(width)", "check(w)")
        [row] = next_edit_rows(db, 1, "outcome = 'accepted'")
        assert row == (sid, "accepted", None, 1)
        assert events(db, sid)[-2:] == ["suggestion_shown", "suggestion_accepted"]
        assert triggers(db) == {sid: "codeAction"}  # told apart from the custom request's `nextEdit`


def test_a_client_without_versioned_edits_gets_a_plain_changes_map(tmp_path):
    client, db, _ = start(tmp_path, document_changes=False)
    with client:
        renamed(client)
        [action] = code_actions(client)  # no trigger kind (LSP before 3.17): asked by the user
        assert action["edit"] == {"changes": {URI: [{"range": {"start": {"line": 1, "character": 10},
                                                              "end": {"line": 1, "character": 15}}, "newText": "w"}]}}
        apply(client, RENAMED, 3, action)
        assert next_edit_rows(db, 1, "outcome = 'accepted'")[0][1:] == ("accepted", None, 1)


def test_context_only_lets_the_action_through_for_its_kind_and_its_parents_only(tmp_path):
    client, db, _ = start(tmp_path)
    with client:
        renamed(client)
        for only in (["quickfix"], ["source.organizeImports"], ["refactor.extract"], ["refactor.rewrite.other"],
                     [NEXT_EDIT_ACTION_KIND + ".more"]):
            assert code_actions(client, only=only) == [], only
        for only in (["refactor"], ["refactor.rewrite"], [NEXT_EDIT_ACTION_KIND], ["quickfix", "refactor"]):
            [action] = code_actions(client, only=only)
            assert action["kind"] == NEXT_EDIT_ACTION_KIND, only
        # filtered-out requests cost no prediction: only the four that passed were requested
        requested = wait_for_rows(db, "SELECT id FROM suggestions WHERE kind = 'next_edit'", want=4)
        assert len(requested) == 4


def test_an_automatic_request_is_not_logged_shown_until_the_editor_applies_it(tmp_path):
    client, db, _ = start(tmp_path)
    with client:
        renamed(client)
        [first] = code_actions(client, triggerKind=2)  # a lightbulb: nobody looked
        [second] = code_actions(client, 0, 12, triggerKind=2)  # the cursor moved: the editor asks again
        first_id, second_id = first["command"]["arguments"][0], second["command"]["arguments"][0]
        # the first was never applied: superseded unseen, it is cancelled, no one's rejection (it was logged rejected,
        # and the next edits' acceptance rate counted every lightbulb the cursor passed)
        assert next_edit_rows(db, 1, "outcome = 'cancelled'") == [(first_id, "cancelled", None, 0)]
        assert "suggestion_shown" not in events(db, first_id)
        assert events(db, first_id)[-1] == "suggestion_cancelled"
        apply(client, RENAMED, 3, second)  # the user opened the lightbulb and picked it
        assert next_edit_rows(db, 1, "outcome = 'accepted'") == [(second_id, "accepted", None, 1)]
        assert events(db, second_id)[-2:] == ["suggestion_shown", "suggestion_accepted"]
        assert triggers(db) == {first_id: "codeActionAutomatic", second_id: "codeActionAutomatic"}


def test_an_automatic_action_applied_after_it_was_superseded_is_logged_shown_before_accepted(tmp_path):
    """An editor may still list an action after the server superseded it (a lightbulb opened before the next
    request). Applying it showed it; it was logged accepted without ever being shown."""
    client, db, _ = start(tmp_path)
    with client:
        renamed(client)
        [first] = code_actions(client, triggerKind=2)
        code_actions(client, 0, 12, triggerKind=2)  # supersedes the first
        first_id = first["command"]["arguments"][0]
        assert next_edit_rows(db, 1, "outcome = 'cancelled'") == [(first_id, "cancelled", None, 0)]
        apply(client, RENAMED, 3, first)  # the user picks the one still listed
        assert next_edit_rows(db, 1, "outcome = 'accepted'") == [(first_id, "accepted", None, 1)]
        assert events(db, first_id)[-2:] == ["suggestion_shown", "suggestion_accepted"]


def triggers(db) -> dict[str, str]:
    """Each next edit's logged trigger: how its request came."""
    return dict(wait_for_rows(db, "SELECT id, trigger FROM suggestions WHERE kind = 'next_edit'", want=1))


def test_an_outdated_request_gets_no_action_and_is_logged_stale(tmp_path):
    """The document changes while the prediction waits for the inference worker (busy with a slow completion): the
    edit would be for text the editor no longer has."""
    slow = {"stopThreshold": 1.01, "multiline": True, "maxNewTokens": 64, "decodingPolicy": "full"}
    client, db, _ = start(tmp_path, slow, env=dict(os.environ, TACT_DEBUG_TOKEN_DELAY_MS="300"))
    with client:
        renamed(client)
        client.inline_completion_async(URI, 2, 25, invoked=True)  # holds the worker for seconds
        msg_id, answer = client.request_async("textDocument/codeAction", {
            "textDocument": {"uri": URI}, "range": {"start": {"line": 1, "character": 4}, "end": {"line": 1, "character": 4}},
            "context": {"diagnostics": [], "triggerKind": 1}})
        client.did_change(URI, 3, [change_at(2, 4, "# ")])
        assert client.result(answer, 60) == []
        rows = wait_for_rows(db, "SELECT outcome FROM suggestions WHERE kind = 'next_edit' AND outcome IS NOT NULL")
        assert rows == [("cancelled",)]
        [(reason,)] = wait_for_rows(db, "SELECT json_extract(payload, '$.reason') FROM suggestion_events s JOIN "
                                        "suggestions g ON g.id = s.suggestion_id WHERE g.kind = 'next_edit' "
                                        "AND s.type = 'suggestion_cancelled'")
        assert reason == "stale"


@pytest.mark.parametrize("case", ["unknown document", "start after end", "line past the end", "nothing edited",
                                  "setting off", "next edits off"])
def test_bad_or_unanswerable_requests_get_no_action_and_the_server_stays_up(tmp_path, case):
    options = {"setting off": {"nextEditCodeActions": False}, "next edits off": {"nextEdit": False}}.get(case, {})
    client, db, _ = start(tmp_path, options)
    with client:
        if case == "nothing edited":
            client.did_open(URI, TEXT)
        else:
            renamed(client)
        request = {"unknown document": dict(uri="file:///project/never-opened.py"),
                   "start after end": dict(line=1, character=8, end=(1, 2)),
                   "line past the end": dict(line=10_000, character=0)}.get(case, {})
        assert code_actions(client, **request) == []
        assert isinstance(client.request("tact/status"), dict)
        if case == "setting off":  # settings change at run time: turned on again, the action comes
            client.notify("workspace/didChangeConfiguration", {"settings": {"tact": {"nextEditCodeActions": True}}})
            assert len(code_actions(client)) == 1


def test_params_that_do_not_fit_codeactionparams_get_invalid_params_and_the_server_stays_up(tmp_path):
    """A negative line is no LSP position at all: the server answers such requests with Invalid params, as it does
    for every method (tests/test_server_robustness.py), and goes on serving."""
    client, _, _ = start(tmp_path)
    with client:
        renamed(client)
        for params in ({"textDocument": {"uri": URI}, "range": {"start": {"line": -1, "character": 0},
                                                                  "end": {"line": 0, "character": 0}},
                        "context": {"diagnostics": []}},
                       {"textDocument": {"uri": URI}}, None):
            with pytest.raises(LspError) as err:
                client.request("textDocument/codeAction", params)
            assert err.value.error["code"] == -32602
        assert len(code_actions(client)) == 1


def test_a_client_without_code_action_support_gets_no_action(tmp_path):
    """Without code action literals LSP allows only bare commands, which cannot carry the edit."""
    client, _, _ = start(tmp_path, code_actions=False)
    with client:
        renamed(client)
        assert code_actions(client) == []
        assert client.next_edit(URI, 2, 0, 10)  # tact/nextEdit still answers such a client


def test_titles_are_one_short_line():
    assert action_title("width", "w", 4, 4) == "Tact: next edit — replace `width` with `w` (line 5)"
    assert action_title("", "x = 1\n", 2, 2) == "Tact: next edit — insert `x = 1\\n` (line 3)"
    assert action_title("old()\n", "", 0, 1) == "Tact: next edit — delete `old()\\n` (lines 1-2)"
    assert one_line("a\r\nb\tc`d`\x07") == "a\\nb\\tc'd'\\u0007"  # a control character written out
    long = one_line("x" * 20 + "MIDDLE" + "y" * 20, 21)
    assert len(long) == 21 and long == "x" * 10 + "…" + "y" * 10


def test_an_action_for_whole_lines_names_the_lines_it_edits():
    deleted = next_edit_action("s1", URI, 4, Position(2, 0), Position(3, 0), "    check(width)\n", "", False)
    assert deleted["title"] == "Tact: next edit — delete `    check(width)\\n` (line 3)"
    assert deleted["edit"]["changes"][URI][0]["range"]["end"] == {"line": 3, "character": 0}


def test_kind_filter_follows_lsp_prefix_rules():
    assert kind_requested(None) and kind_requested([""]) and kind_requested(["refactor"])
    assert kind_requested(["refactor.rewrite"]) and kind_requested([NEXT_EDIT_ACTION_KIND])
    assert not kind_requested([]) and not kind_requested(["refactor.re"]) and not kind_requested(["quickfix"])


def test_an_automatic_action_never_applied_is_cancelled_when_its_document_closes(tmp_path):
    client, db, _ = start(tmp_path)
    with client:
        renamed(client)
        [action] = code_actions(client, triggerKind=2)
        sid = action["command"]["arguments"][0]
        client.notify("textDocument/didClose", {"textDocument": {"uri": URI}})
        assert next_edit_rows(db, 1, "outcome IS NOT NULL") == [(sid, "cancelled", None, 0)]
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT json_extract(payload, '$.reason') FROM suggestion_events"
                                " WHERE suggestion_id = ? AND type = 'suggestion_cancelled'",
                                [sid]).fetchall() == [("documentClosed",)]
