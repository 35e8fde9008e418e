"""What a classic completion request counts as for the acceptance gate: "invoked" (always generated and shown) when its
context says so or it has none, and a retrigger of the open list as the request that opened the list."""

from __future__ import annotations

from pathlib import Path

import pytest

from telemetry.lsp_client import LspClient
from tests.lsp_support import model_under_test, server_command, wait_for_rows

URI = "file:///w/triggers.py"
CODE = "import os\n\n\ndef path_of(name):\n    return os.path.jo\n\n\nvalue = path_of(\n"
INVOKED, CHARACTER, INCOMPLETE = 1, 2, 3


@pytest.fixture
def served(tmp_path: Path):
    db = tmp_path / "telemetry.sqlite3"
    client = LspClient(server_command(model_under_test(), db))
    client.initialize({"acceptanceGate": False})
    client.did_open(URI, CODE)
    try:
        yield client, db
    finally:
        client.shutdown()


def _complete(client: LspClient, line: int, character: int, kind: int | None) -> None:
    params = {"textDocument": {"uri": URI}, "position": {"line": line, "character": character}}
    if kind is not None:
        params["context"] = {"triggerKind": kind, **({"triggerCharacter": "("} if kind == CHARACTER else {})}
    client.request("textDocument/completion", params, timeout=120)


def _triggers(db: Path, want: int) -> dict[tuple[int, int], str]:
    rows = wait_for_rows(db, "SELECT line, character, trigger FROM suggestions WHERE kind = 'completion'", want=want)
    return {(line, character): trigger for line, character, trigger in rows}


def test_a_request_without_a_context_is_taken_as_asked_for(served):
    """LSP sends a context only to clients that declare contextSupport. Neovim 0.7's omnifunc sends none and runs
    only when the user presses its keys: gated, the suggestion asked for could be skipped or hidden."""
    client, db = served
    _complete(client, 4, 10, None)
    _complete(client, 4, 11, CHARACTER)
    assert _triggers(db, 2) == {(4, 10): "invoked", (4, 11): "automatic"}


def test_a_retrigger_of_the_open_list_counts_as_the_request_that_opened_it(served):
    """Each answer is incomplete, so an editor asks again (TriggerForIncompleteCompletions) at every keystroke while
    its list is open: after an explicit request the next keystrokes were gated as automatic."""
    client, db = served
    _complete(client, 4, 17, INVOKED)  # the user asked: Ctrl+Space
    _complete(client, 4, 18, INCOMPLETE)  # ... and typed on with the list open
    _complete(client, 4, 19, INCOMPLETE)
    _complete(client, 7, 16, CHARACTER)  # a list the editor opened by itself at `(`
    _complete(client, 7, 15, INCOMPLETE)
    assert _triggers(db, 5) == {(4, 17): "invoked", (4, 18): "invoked", (4, 19): "invoked",
                                (7, 16): "automatic", (7, 15): "automatic"}


def test_a_reopened_document_does_not_inherit_the_list_of_the_closed_one(served):
    client, db = served
    _complete(client, 4, 17, INVOKED)
    client.notify("textDocument/didClose", {"textDocument": {"uri": URI}})
    client.did_open(URI, CODE, version=5)
    _complete(client, 4, 18, INCOMPLETE)  # no list of this document was opened: nothing says the user asked
    assert _triggers(db, 2) == {(4, 17): "invoked", (4, 18): "automatic"}
