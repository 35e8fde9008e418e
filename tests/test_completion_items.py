from lsp_server.features.completion import snippet_escape


def test_snippet_escape_round_trips_special_characters():
    assert snippet_escape("f'{x}' $HOME \\n") == "f'{x\\}' \\$HOME \\\\n"
    assert snippet_escape("plain text") == "plain text"
