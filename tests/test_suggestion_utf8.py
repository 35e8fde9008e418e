"""A suggestion's text is the UTF-8 of the bytes its tokens write, ended before the first bytes that are none.

A byte-level BPE writes a character of several bytes as several tokens, and a small model may write bytes that spell
no character: in `x = '世界'` twice, the shipped model began the third string with the lead byte C2 where 世 has E4,
went on with 世's B8 and 97, and the text, decoded with replacement, read U+00B8 (the character whose UTF-8 is C2 B8),
two U+FFFD and U+2581: the editor was offered `'¸`.
"""

from __future__ import annotations

import pytest

from models.runtime import POLICIES, DecodeOptions, EarlyExitRuntime
from models.tokenizer import byte_level_chars
from tests.lsp_support import model_under_test

REVIEWED = "x = '世界'\ny = '世界'\nz = "
# a byte's character in the byte-level alphabet, where it is not the byte itself (U+00A1 on, U+0100 on)
SURFACE = frozenset(c for c in byte_level_chars() if not c.isascii())
DOCUMENTS = [
    REVIEWED,
    "a = '日本語'\nb = '日本語'\nc = ",
    "greeting = 'こんにちは'\nfarewell = 'さようなら'\nother = '",
    "s = '🙂🙂'\nt = '🙂🙂'\nu = ",
    "e = '😀'\nf = '🚀'\ng = '",
    "name = 'José'\nother = 'José'\nthird = ",
    "city = 'Zürich'\ntown = 'Köln'\nplace = '",
    "k = '한국어'\nl = '한국어'\nm = ",
    "p = 'Ελληνικά'\nq = 'Ελληνικά'\nr = ",
    "v = 'Привет'\nw = 'Привет'\nx = ",
]


@pytest.fixture(scope="module")
def shipped():
    return EarlyExitRuntime(model_under_test(), threads=1)


def byte_tokens(rt, data: bytes) -> list[int]:
    """One token for each byte of ``data`` (the byte-level alphabet has them all)."""
    return [rt.token_bytes.pieces.index(bytes([b])) for b in data]


def written(rt, ids: list[int]) -> bytes:
    return b"".join(rt.token_bytes.pieces[t] for t in ids)


def scripted(rt, monkeypatch, script: list[int], **options):
    """What ``generate`` returns where the model writes ``script`` and then reaches the token limit (``options``: more
    of the ``DecodeOptions``)."""
    def decode(h, opts, res, should_cancel):
        for token in script:
            if rt._emit(res, opts, token, 0.0, rt.n_layers, 0.0):
                return

    monkeypatch.setattr(rt, "_decode_full", decode)
    rt.reset()
    return rt.generate(rt.tokenizer.encode("name = '"), DecodeOptions(max_new_tokens=len(script), stop_repeats=0,
                                                                      **options))


def readable(data: bytes) -> str:
    """The UTF-8 of ``data`` up to its first bytes that are no character."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return data[:exc.start].decode("utf-8")


# -- the decoder, driven with chosen tokens ------------------------------------------------------------------


@pytest.mark.parametrize("data, text", [
    ("世'".encode(), "世'"),  # one character over three tokens appears whole
    ("🙂🙂".encode(), "🙂🙂"),
    ("Zürich".encode(), "Zürich"),
    ("ab".encode() + "世".encode()[:2], "ab"),  # the token limit inside a character: before it
    (b"ab\xe4xy", "ab"),  # a lead byte whose character never comes
    (b"ab\x97cd", "ab"),  # a continuation byte with no lead byte
    (b"ab\xed\xa0\x80cd", "ab"),  # a surrogate's bytes: no UTF-8
    (b"\xc2\xb8\x97\x80\xe2\x96\x81'\n", ""),  # the review's bytes: C2 B8 went on as E4 B8 96 does, no U+00B8
    ("ok\ufffd!".encode(), "ok\ufffd!"),  # a U+FFFD written whole is a character (copied from a file)
])
def test_the_text_is_the_utf8_of_the_bytes_up_to_the_first_that_are_none(shipped, monkeypatch, data, text):
    res = scripted(shipped, monkeypatch, byte_tokens(shipped, data), single_line=False)
    assert res.text == text
    assert len(res.token_ids) == len(res.logprobs) == len(res.layers) == len(res.stop_probs)


def test_a_character_split_over_tokens_appears_once_its_bytes_are_all_there(shipped, monkeypatch):
    """Tokens that end inside a character (世界 as E4 B8 | 96 E7 | 95 8C where the vocabulary has those pieces, else
    a byte each): each start of them reads the whole characters written so far, nothing of the one still cut."""
    rt = shipped
    whole = "世界".encode()
    pieces = [whole[:2], whole[2:4], whole[4:]]
    if not all(p in rt.token_bytes.pieces for p in pieces):
        pieces = [whole[i:i + 1] for i in range(len(whole))]
    ids = [rt.token_bytes.pieces.index(p) for p in pieces]
    seen = [rt.suggestion_text(ids[:k]) for k in range(len(ids) + 1)]
    assert seen == [readable(written(rt, ids[:k])) for k in range(len(ids) + 1)]
    assert seen[-1] == "世界" and all(t in ("", "世", "世界") for t in seen)
    assert scripted(rt, monkeypatch, ids, single_line=False).text == "世界"
    assert scripted(rt, monkeypatch, ids[:-1], single_line=False).text == "世"


# -- the shipped model on documents of other scripts --------------------------------------------------------


@pytest.mark.parametrize("document", DOCUMENTS)
def test_a_suggestion_holds_only_characters_its_bytes_spell(shipped, document):
    """In every policy the text (with what token healing wrote again before it) is the UTF-8 of a start of the bytes
    the tokens wrote, holds no U+FFFD and no byte-alphabet character the document lacks that its bytes do not spell
    there; the lossless policies agree."""
    rt = shipped
    prompt = rt.completion_prompt(document, "", reserve=24, heal_tokens=2)
    out = {}
    for policy in POLICIES:
        rt.reset()
        res = out[policy] = rt.generate(prompt.ids, DecodeOptions(policy=policy, max_new_tokens=24), heal=prompt.heal)
        data = written(rt, res.token_ids)
        text = prompt.heal + res.text
        assert data.startswith(text.encode("utf-8")) and text == readable(data)[:len(text)]
        assert "\ufffd" not in res.text and "\u2581" not in res.text
    assert (out["full"].token_ids, out["full"].text) == (out["speculative"].token_ids, out["speculative"].text)


@pytest.mark.parametrize("policy", POLICIES)
def test_the_reviewed_document_gets_no_byte_alphabet_character(shipped, policy):
    """The review's file: no policy offers U+00B8, U+2581 or another character of the byte-level alphabet the
    document does not hold."""
    prompt = shipped.completion_prompt(REVIEWED, "", reserve=24, heal_tokens=2)
    shipped.reset()
    res = shipped.generate(prompt.ids, DecodeOptions(policy=policy, max_new_tokens=24), heal=prompt.heal)
    assert not {c for c in res.text if c in SURFACE and c not in REVIEWED}
    assert "\u2581" not in res.text and "\ufffd" not in res.text


def test_tact_complete_offers_no_character_the_bytes_do_not_spell(tmp_path, capsys):
    from lsp_server.cli import main

    src = tmp_path / "strings.py"
    src.write_text(REVIEWED, encoding="utf-8")
    assert main(["complete", f"{src}:3", "--model", str(model_under_test())]) == 0
    out = capsys.readouterr().out
    shown = next(line for line in out.splitlines() if line.startswith("suggestion:"))
    assert "\u00b8" not in shown and "\u2581" not in shown
