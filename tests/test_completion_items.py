from lsp_server.features.completion import snippet_escape


def test_snippet_escape_round_trips_special_characters():
    assert snippet_escape("f'{x}' $HOME \\n") == "f'{x\\}' \\$HOME \\\\n"
    assert snippet_escape("plain text") == "plain text"


def test_a_full_acceptance_logs_its_length_in_utf16_units_as_a_partial_one_does():
    """The editor counts a partial acceptance in UTF-16 units; a full one was counted in code points."""
    from types import SimpleNamespace

    from lsp_server.features.commands import record_accepted
    from lsp_server.services.ledger import IssuedSuggestion, SuggestionLedger
    from lsp_server.services.recorder import SessionRecorder
    from tests.telemetry_fakes import ListStore

    store, ledger = ListStore(), SuggestionLedger()
    ledger.issue(IssuedSuggestion("s1", "completion", "file:///a.py", 1, "print('🎉 done')"))
    assert record_accepted(SimpleNamespace(ledger=ledger, recorder=SessionRecorder(store)), ("s1",), "tact.acceptSuggestion")
    accepted = [e for e in store.events if type(e).__name__ == "SuggestionAccepted"]
    assert [(e.accepted_length, e.partial) for e in accepted] == [(16, False)]  # 15 code points, the emoji is 2 units
