from lsp_server.features.completion import snippet_escape


def test_snippet_escape_round_trips_special_characters():
    assert snippet_escape("f'{x}' $HOME \\n") == "f'{x\\}' \\$HOME \\\\n"
    assert snippet_escape("plain text") == "plain text"


def test_a_full_acceptance_logs_its_length_in_utf16_units_as_a_partial_one_does():
    """The editor counts a partial acceptance in UTF-16 units; a full one was counted in code points."""
    from types import SimpleNamespace

    from lsp_server.features.commands import record_accepted
    from lsp_server.services.ledger import IssuedSuggestion, SuggestionLedger
    from lsp_server.services.documents import DocumentStore
    from lsp_server.services.recorder import SessionRecorder
    from lsp_server.services.undo_watch import UndoWatch
    from tests.telemetry_fakes import ListStore

    store, ledger = ListStore(), SuggestionLedger()
    ledger.issue(IssuedSuggestion("s1", "completion", "file:///a.py", 1, "print('🎉 done')"))
    server = SimpleNamespace(ledger=ledger, recorder=SessionRecorder(store), undo_watch=UndoWatch(),
                             documents=DocumentStore())  # the document not open: no accept to watch
    assert record_accepted(server, ("s1",), "tact.acceptSuggestion", "completion")
    accepted = [e for e in store.events if type(e).__name__ == "SuggestionAccepted"]
    assert [(e.accepted_length, e.partial) for e in accepted] == [(16, False)]  # 15 code points, the emoji is 2 units


def test_a_partial_acceptance_longer_than_the_suggestion_counts_no_more_than_the_suggestion():
    """acceptedLength went to telemetry as sent: 500 for an 8-unit suggestion counted 500 characters saved."""
    from types import SimpleNamespace

    from lsp_server.features import feedback
    from lsp_server.protocol import DID_PARTIALLY_ACCEPT_COMPLETION
    from lsp_server.services.ledger import IssuedSuggestion, SuggestionLedger
    from lsp_server.services.documents import DocumentStore
    from lsp_server.services.recorder import SessionRecorder
    from lsp_server.services.undo_watch import UndoWatch
    from tests.telemetry_fakes import ListStore

    handlers = {}
    feedback.register(SimpleNamespace(feature=lambda name, options=None: lambda fn: handlers.setdefault(name, fn)))
    store, ledger = ListStore(), SuggestionLedger()
    ledger.issue(IssuedSuggestion("s1", "completion", "file:///a.py", 1, "x = '🎉'"))  # 8 UTF-16 units
    server = SimpleNamespace(ledger=ledger, recorder=SessionRecorder(store), undo_watch=UndoWatch(),
                             documents=DocumentStore())  # the document not open: no accept to watch
    partial = handlers[DID_PARTIALLY_ACCEPT_COMPLETION]
    evicted = ledger.new_id()  # issued, no longer held: its length is not checked
    for sid, length in (("s1", 3), ("s1", 500), (evicted, 500)):
        partial(server, {"id": sid, "acceptedLength": length})
    accepted = [e for e in store.events if type(e).__name__ == "SuggestionAccepted"]
    assert [(e.suggestion_id, e.accepted_length, e.partial) for e in accepted] == [
        ("s1", 3, True), ("s1", 8, True), (evicted, 500, True)]


def _classic_item(monkeypatch, text, suggestion, *, snippet=True, modes=None):
    """The classic completion item for ``suggestion`` at ``|`` in ``text``, for a client with these capabilities."""
    import asyncio
    from types import SimpleNamespace

    from lsprotocol import types

    import lsp_server.features.completion as completion
    from lsp_server.services.completion import Suggestion
    from lsp_server.services.context import build_context
    from lsp_server.services.positions import position_at

    i = text.index("|")
    text = text.replace("|", "", 1)
    ctx = build_context(text, position_at(text, i))

    async def fake_suggest(ls, uri, line, character, trigger):
        return SimpleNamespace(suggestion_id="s1", selected=None), Suggestion(suggestion, suggestion, ctx, None, "test", 0.0)

    monkeypatch.setattr(completion, "suggest", fake_suggest)
    handlers = {}
    completion.register(SimpleNamespace(feature=lambda name, options=None: lambda fn: handlers.setdefault(name, fn)))
    mode_support = types.ClientCompletionItemInsertTextModeOptions(value_set=modes) if modes else None
    item_caps = types.ClientCompletionItemOptions(snippet_support=snippet, insert_text_mode_support=mode_support)
    caps = types.ClientCapabilities(text_document=types.TextDocumentClientCapabilities(
        completion=types.CompletionClientCapabilities(completion_item=item_caps)))
    params = types.CompletionParams(text_document=types.TextDocumentIdentifier(uri="file:///a.py"),
                                    position=types.Position(ctx.position.line, ctx.position.character))
    pipeline = SimpleNamespace(list_trigger=lambda uri, invoked, retrigger: "automatic")
    from lsp_server.services.ledger import SuggestionLedger

    ls = SimpleNamespace(client_capabilities=caps, pipeline=pipeline, ledger=SuggestionLedger())
    result = asyncio.run(handlers[types.TEXT_DOCUMENT_COMPLETION](ls, params))
    return result.items[0]


_HEADER = "class A:\n    def f(self, x):\n        if x:|\n"
_BODY = "\n            return 1\n        return 2"


def test_a_multi_line_snippet_is_relative_to_the_cursor_line_for_clients_that_re_indent(monkeypatch):
    """Neovim's snippet expansion adds the cursor line's indentation to every later line and ignores asIs."""
    from lsprotocol import types

    item = _classic_item(monkeypatch, _HEADER, _BODY)
    assert item.insert_text_format == types.InsertTextFormat.Snippet
    assert item.insert_text_mode == types.InsertTextMode.AdjustIndentation
    assert item.text_edit.new_text == "\n    return 1\nreturn 2"
    first, *later = item.text_edit.new_text.split("\n")
    assert "\n".join([first] + ["        " + line for line in later]) == _BODY  # what Neovim inserts


def test_a_multi_line_item_keeps_its_indentation_when_inserted_as_is(monkeypatch):
    from lsprotocol import types

    # A client that honours asIs (VS Code), and one without snippets (inserts plain text as it is).
    for snippet, modes in ((True, [types.InsertTextMode.AsIs, types.InsertTextMode.AdjustIndentation]), (False, None)):
        item = _classic_item(monkeypatch, _HEADER, _BODY, snippet=snippet, modes=modes)
        assert item.insert_text_mode == types.InsertTextMode.AsIs
        assert item.text_edit.new_text == _BODY


def test_relative_indent_takes_off_only_the_indentation_a_line_has():
    from lsp_server.features.completion import relative_indent

    assert relative_indent("a(\n        b,\n\n    )\nc", "    ") == "a(\n    b,\n\n)\nc"
    assert relative_indent("x\n\ty", "\t") == "x\ny"
    assert relative_indent("single line", "    ") == "single line"


def test_the_item_replaces_the_word_before_the_cursor_counted_in_utf16_units(monkeypatch):
    item = _classic_item(monkeypatch, "x = obj.na|\n", "me")
    assert (item.text_edit.range.start.character, item.text_edit.range.end.character) == (8, 10)
    assert item.text_edit.new_text == "name"
    item = _classic_item(monkeypatch, "𝒳 = 1\n𝒳|\n", "_max")  # a letter outside the BMP: 2 units
    assert (item.text_edit.range.start.character, item.text_edit.range.end.character) == (0, 2)
    item = _classic_item(monkeypatch, "x = (|\n", "a)")  # no word: inserted at the cursor
    assert (item.text_edit.range.start.character, item.text_edit.range.end.character) == (5, 5)


def test_a_long_run_of_word_characters_on_the_cursor_line_does_not_stall_the_item(monkeypatch):
    """Finding the word before the cursor tried every start in the run (\\w*$): after a 60,000-character hex string
    and its closing quote, 20 s on the event loop, which blocked every other message; this one is 100,000."""
    import threading

    blob = "0123456789abcdef" * 6250
    done = {}
    worker = threading.Thread(target=lambda: done.setdefault("item", _classic_item(
        monkeypatch, f'data = bytes.fromhex("{blob}").|\n', "hex()")), daemon=True)
    worker.start()
    worker.join(timeout=60)  # about a millisecond of work; before, minutes
    assert "item" in done, "the classic item took over 60 s"
    cursor = len(f'data = bytes.fromhex("{blob}").')
    assert (done["item"].text_edit.range.start.character, done["item"].text_edit.range.end.character) == (cursor, cursor)


def test_the_shown_texts_tokens_are_the_ones_that_spell_it():
    """The gate's stage 2 learnt from scores of the shown text; the line break that ended a single-line suggestion,
    the end-of-text token and what trimming cut are not among its tokens."""
    from lsp_server.services.completion import shown_token_count

    pieces = {1: "x", 2: " = ", 3: "\xc3", 4: "\xa9", 5: "1", 6: "\n", 7: "", 8: ")"}

    def decode(ids):  # bytes as latin-1 stand-ins: 3 and 4 are the two bytes of "é"
        raw = "".join(pieces[i] for i in ids).encode("latin-1")
        return raw.decode("utf-8", errors="replace")

    assert shown_token_count(decode, [1, 2, 5, 6, 7], "x = 1") == 3  # not the line break, not the end of text
    assert shown_token_count(decode, [1, 2, 3, 4, 5], "x = é1") == 5  # a character split over two tokens
    assert shown_token_count(decode, [1, 2, 3, 4, 5], "x = é") == 4
    assert shown_token_count(decode, [1, 2, 5, 8], "x = 1") == 3  # a closer trimming dropped
    assert shown_token_count(decode, [1, 2, 5], "") == 0
    assert shown_token_count(decode, [7, 1], "x") == 2  # an empty first token belongs to what follows it


def test_stage_2_sees_the_scores_of_the_shown_tokens_only():
    """With the default model (single-line suggestions end at a line break it generated), the scores the gate is
    given are those of the shown text's tokens."""
    from lsp_server.config import Settings
    from lsp_server.services.completion import CompletionService
    from lsp_server.services.positions import LineIndex, Position
    from lsp_server.services.scheduler import CancelToken
    from tests.lsp_support import model_under_test

    service = CompletionService()
    assert service.load(str(model_under_test())).ready
    text = "import os\n\n\ndef read(path):\n    with open(path) as f:\n        return f.read()\n"
    seen = 0
    for line, character in [(4, 8), (4, 13), (5, 15), (3, 4)]:
        settings = Settings(stop_threshold=1.01, max_new_tokens=12)
        ctx = service.context(LineIndex(text), "python", Position(line, character), settings)
        s = service.complete(ctx, settings, CancelToken())
        logprobs, stop_probs, layers = s.shown_scores()
        # (the first tokens write again the text token healing took back; the suggestion starts after it)
        decoded = service.runtime.suggestion_text(s.result.token_ids[:len(logprobs)], s.result.heal)
        assert decoded == s.text[:len(decoded)] and len(logprobs) == len(stop_probs) == s.shown_tokens
        assert len(logprobs) <= len(s.result.logprobs)
        seen += len(s.result.logprobs) - len(logprobs)
    assert seen > 0  # some generated tokens were not shown (line breaks at least), so the slicing was exercised


def test_a_multi_line_items_label_is_text_it_writes_and_says_it_goes_on_apart(monkeypatch):
    """The label ended in " …": Neovim inserts a snippet item's label as the word when it completes without the menu
    (its default completeopt), and the "…" stayed in the buffer."""
    item = _classic_item(monkeypatch, "    for value in |\n", "values:\n        total += value")
    assert item.label == "values:" and "…" not in item.label
    assert item.label_details is not None and item.label_details.detail == " …"
    assert item.detail == "Tact …"  # for clients without label details
    single = _classic_item(monkeypatch, "x = |\n", "compute(1)")
    assert single.label == "compute(1)" and single.label_details is None


def test_a_suggestion_that_starts_with_a_line_break_gets_its_first_written_line_as_label(monkeypatch):
    """After `def main():` the first line is empty: the label was "", which VS Code drops as invalid and other clients
    show as a blank row."""
    item = _classic_item(monkeypatch, "def main():|\n", "\n    parser = make_parser()")
    assert item.label == "parser = make_parser()"
    assert item.label_details is not None and item.label_details.detail == " …"
    assert item.text_edit.new_text == "\n    parser = make_parser()"
