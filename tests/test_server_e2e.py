"""The real server process over stdio (pytest-lsp), serving a real model and writing real SQLite."""

from __future__ import annotations


import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.lsp_support import (
    NEW_LINE_CANDIDATES,
    SAMPLE,
    initialize_params,
    insert_line,
    model_under_test,
    pick_new_line,
    server_command,
    wait_for_rows,
)

URI = "file:///project/sample.py"
OPTIONS = {"decodingPolicy": "speculative", "stopThreshold": 1.01, "acceptanceGate": False}
DB_DIR = {}


def _config() -> ClientServerConfig:
    import tempfile

    db = DB_DIR.setdefault("path", tempfile.mkdtemp(prefix="tact-e2e-") + "/telemetry.sqlite3")
    return ClientServerConfig(server_command=server_command(model_under_test(), db))


@pytest_lsp.fixture(config=_config())
async def client(lsp_client: LanguageClient):
    result = await lsp_client.initialize_session(initialize_params(OPTIONS))
    lsp_client.init_result = result
    lsp_client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=URI, language_id="python", version=1, text=SAMPLE)))
    yield
    await lsp_client.shutdown_session()


def _db():
    from pathlib import Path

    return Path(DB_DIR["path"])


def _end_of_line(line: int) -> types.Position:
    return types.Position(line=line, character=len(SAMPLE.splitlines()[line]))


async def test_capabilities_advertised(client: LanguageClient):
    caps = client.init_result.capabilities
    assert caps.inline_completion_provider is not None
    assert caps.completion_provider is not None
    sync = caps.text_document_sync
    assert sync.change == types.TextDocumentSyncKind.Incremental


async def test_inline_completion_from_the_model(client: LanguageClient):
    typed = pick_new_line(SAMPLE, 11, NEW_LINE_CANDIDATES, OPTIONS)
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=2),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(start=types.Position(line=11, character=0), end=types.Position(line=11, character=0)),
            text=typed + "\n")]))
    result = await client.text_document_inline_completion_async(types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=URI), position=types.Position(line=11, character=len(typed)),
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked)))
    items = result.items if hasattr(result, "items") else result
    assert items, "the real model produced no suggestion"
    item = items[0]
    assert item.insert_text.strip()
    assert "\n" not in item.insert_text  # single-line by default
    assert item.command.command == "tact.acceptSuggestion"
    sid = item.command.arguments[0]
    rows = wait_for_rows(_db(), "select policy, tokens, latency_ms, text from suggestions where id = ? and generated_at is not null", (sid,))
    assert rows and rows[0][0] == "speculative" and rows[0][1] >= 1 and rows[0][2] > 0
    assert rows[0][3] == item.insert_text


async def _suggest(client: LanguageClient, version: int, line: int, document: str) -> tuple[str, str, str]:
    """Type a new line before `line` where the model has something to say and ask for a suggestion;
    returns (id, insert text, the document after typing)."""
    text = pick_new_line(document, line, NEW_LINE_CANDIDATES, OPTIONS)
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=version),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(start=types.Position(line=line, character=0), end=types.Position(line=line, character=0)),
            text=text + "\n")]))
    result = await client.text_document_inline_completion_async(types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=URI), position=types.Position(line=line, character=len(text)),
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked)))
    assert result.items, f"no suggestion after {text!r}"
    item = result.items[0]
    return item.command.arguments[0], item.insert_text, insert_line(document, line, text)


async def test_feedback_lands_as_rows_in_sqlite(client: LanguageClient):
    accepted_id, accepted_text, document = await _suggest(client, 2, 11, SAMPLE)
    client.protocol.notify("tact/didShowCompletion", {"id": accepted_id})
    client.protocol.notify("tact/didPartiallyAcceptCompletion", {"id": accepted_id, "acceptedLength": 1})
    ok = await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="tact.acceptSuggestion", arguments=[accepted_id]))
    assert ok is True
    rejected_id, _, _ = await _suggest(client, 3, 12, document)
    client.protocol.notify("tact/didShowCompletion", {"id": rejected_id})
    client.protocol.notify("tact/didRejectCompletion", {"id": rejected_id, "reason": "typedOver"})
    status = await client.protocol.send_request_async("tact/status", {})
    assert status.session.issued >= 2 and status.ready
    assert status.contextTokens == 512  # the default model's training windows, not its 1024 positions

    rows = wait_for_rows(_db(), "select outcome, accepted_length, shown_at is not null from suggestions where id = ?",
                         (accepted_id,))
    assert rows == [("accepted", len(accepted_text), 1)]
    events = wait_for_rows(_db(), "select type from suggestion_events where suggestion_id = ? and type != 'suggestion_gated' "
                                  "order by seq", (accepted_id,), want=5)
    assert [e[0] for e in events] == ["suggestion_requested", "suggestion_generated", "suggestion_shown",
                                      "suggestion_accepted", "suggestion_accepted"]
    partial = wait_for_rows(_db(), "select payload from suggestion_events where suggestion_id = ? and type = 'suggestion_accepted' "
                                   "order by seq limit 1", (accepted_id,))
    assert '"partial":true' in partial[0][0].replace(" ", "") and '"accepted_length":1' in partial[0][0].replace(" ", "")
    rows = wait_for_rows(_db(), "select outcome, reject_reason from suggestions where id = ? and outcome is not null", (rejected_id,))
    assert rows == [("rejected", "typedOver")]
    status = await client.protocol.send_request_async("tact/status", {})
    assert status.telemetry.written >= 10 and status.telemetry.dropped == 0 and status.telemetry.failed == 0


async def test_a_suggestion_open_when_its_document_closes_is_rejected_as_closed(client: LanguageClient):
    """Nothing ended it before: no client reports a suggestion whose document went away (VS Code's proposed API may
    send no end of lifetime), so it stayed shown without an outcome and the gate never counted it."""
    shown_id, _, _ = await _suggest(client, 2, 11, SAMPLE)
    client.protocol.notify("tact/didShowCompletion", {"id": shown_id})
    client.text_document_did_close(types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=URI)))
    rows = wait_for_rows(_db(), "select outcome, reject_reason from suggestions where id = ? and outcome is not null",
                         (shown_id,))
    assert rows == [("rejected", "documentClosed")]
