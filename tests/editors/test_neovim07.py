"""Neovim 0.7 (Debian's /usr/bin/nvim), headless: a raw textDocument/completion through vim.lsp."""

from __future__ import annotations

import json

import pytest

from tests.editors.support import (
    EDITOR_SAMPLE,
    SCRIPTS,
    assert_server_clean,
    nvim07,
    prepare,
    query,
    run_editor,
    word_before,
)
from tests.lsp_support import wait_for_rows

pytestmark = pytest.mark.editor


def test_neovim07_completion_from_the_model(tmp_path, record_property):
    editor = nvim07()
    record_property("editor", f"nvim {'.'.join(map(str, editor.version))} ({editor.binary})")
    run = prepare(tmp_path)
    result = run_editor(run, [editor.binary, "--headless", "--clean", "-i", "NONE",
                              "-u", str(SCRIPTS / "nvim07.lua"), str(run.file)], {}, record_property)
    why = run.describe()

    assert result["filetype"] == "python", why
    assert result["uri"] == run.file.as_uri(), why
    assert not result.get("response_error"), why
    assert result["line_text"] == EDITOR_SAMPLE.splitlines()[-1], why

    # a completion item carrying the model's suggestion and the accept command
    answer = result["result"]
    items = answer["items"] if isinstance(answer, dict) else answer
    assert items, f"the server answered with no completion item\n{why}"
    item = items[0]
    position = result["position"]
    word = word_before(result["line_text"])
    new_text = item["textEdit"]["newText"]
    assert item["label"].strip(), why
    assert new_text.startswith(word) and new_text[len(word):].strip(), f"no suggestion after {word!r}\n{why}"
    assert item["textEdit"]["range"] == {"start": {"line": position["line"], "character": position["character"] - len(word)},
                                         "end": position}, why
    assert item["command"]["command"] == "tact.acceptSuggestion", why
    suggestion_id = item["command"]["arguments"][0]
    assert isinstance(suggestion_id, str) and suggestion_id, why
    assert_server_clean(run, result)  # shutdown, exit, exit code 0, nothing on stderr

    # telemetry: the request, the generated text, the opened document, the session
    requested = wait_for_rows(run.db, "select payload from suggestion_events where suggestion_id = ? "
                                      "and type = 'suggestion_requested'", (suggestion_id,))
    assert requested, f"no suggestion_requested event for {suggestion_id}\n{why}"
    payload = json.loads(requested[0][0])
    assert (payload["kind"], payload["uri"], payload["line"], payload["character"], payload["trigger"]) == \
        ("completion", result["uri"], position["line"], position["character"], "invoked"), payload
    generated = wait_for_rows(run.db, "select text from suggestions where id = ? and generated_at is not null",
                              (suggestion_id,))
    assert generated and word + generated[0][0] == new_text, (generated, new_text)
    documents = wait_for_rows(run.db, "select kind, version, language_id, text from documents where uri = ?",
                              (result["uri"],))
    assert documents and documents[0][:3] == ("open", 0, "python"), documents
    assert documents[0][3] == run.file.read_text(), "the didOpen text is not the file's text"
    sessions = wait_for_rows(run.db, "select client_name, end_reason from sessions where end_reason is not null")
    assert sessions == [("Neovim", "shutdown")], sessions
    assert query(run.db, "select count(*) from suggestion_events where type = 'suggestion_failed'") == [(0,)]
