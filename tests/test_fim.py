"""The FIM prompt: what fits the budget, and a start that stays put while the user types (KV-cache reuse)."""

from pathlib import Path

import pytest

from models.fim import PREFIX_TOKEN_GRID, build_prompt, keep_prefix
from models.tokenizer import TokenizerInfo, load_tokenizer

TOKENIZER = Path(__file__).resolve().parents[1] / "models" / "default" / "tokenizer.json"


@pytest.fixture(scope="module")
def info() -> TokenizerInfo:
    return TokenizerInfo(load_tokenizer(TOKENIZER))


def test_a_prefix_that_fits_is_kept_whole(info):
    prefix, suffix = list(range(100, 400)), list(range(500, 540))
    prompt = build_prompt(info, prefix, suffix, max_tokens=1024, reserve=48)
    assert prompt == [info.fim_suffix_id, *suffix, info.fim_middle_id, *prefix]


def test_a_long_prefix_keeps_its_end_and_fits_the_budget(info):
    suffix = list(range(500, 540))
    for n in (935, 1000, 1500, 5000):
        prefix = list(range(n))
        prompt = build_prompt(info, prefix, suffix, max_tokens=1024, reserve=48)
        assert len(prompt) <= 1024 - 48
        kept = prompt[len(suffix) + 2:]
        assert kept == prefix[-len(kept):]  # the end of the prefix, contiguous
        assert len(kept) > 1024 - 48 - len(suffix) - 2 - PREFIX_TOKEN_GRID  # at most one grid step lost


def test_typing_at_the_end_of_a_long_prefix_keeps_the_prompt_start(info):
    """One token more per keystroke: the previous prompt stays a prefix of the next one (its KV cache is
    reused whole) except once per grid step, where the oldest tokens go."""
    suffix = list(range(500, 540))
    prompts = [build_prompt(info, list(range(n)), suffix, max_tokens=1024, reserve=48)
               for n in range(1200, 1200 + 3 * PREFIX_TOKEN_GRID)]
    moves = sum(nxt[:len(prev)] != prev for prev, nxt in zip(prompts, prompts[1:]))
    assert moves <= 3
    assert all(len(p) <= 1024 - 48 for p in prompts)


def test_text_that_spells_a_special_token_is_encoded_as_text(info):
    """A file holding "<|fim_middle|>" must not put the control token into its prompt (it rearranged the FIM layout,
    and "<|endoftext|>" read as the end of the document)."""
    text = 'EOS = "<|endoftext|>"\nFIM_MIDDLE = "<|fim_middle|>"\nPAD = "<|pad|>"\n'
    ids = info.encode(text)
    assert not {info.eos_id, info.fim_prefix_id, info.fim_middle_id, info.fim_suffix_id, info.pad_id} & set(ids)
    assert info.decode(ids) == text
    prompt = build_prompt(info, ids, info.encode('"<|fim_suffix|>"'), max_tokens=1024, reserve=48)
    assert prompt.count(info.fim_suffix_id) == prompt.count(info.fim_middle_id) == 1  # the prompt's own markers


def test_a_lone_surrogate_is_encoded_as_one_replacement_character(info):
    """JSON-RPC delivers "\\ud800" as a lone surrogate, which `tokenizers` refused (TypeError); offsets still index
    the text (the next-edit model finds its window's tokens by them)."""
    text = "s = '\ud800'\nname = 'caf\udce9'\nok = 'é'\n"
    ids = info.encode(text)
    assert info.decode(ids) == text.replace("\ud800", "\ufffd").replace("\udce9", "\ufffd")
    enc = info.encoding(text)
    assert enc.ids == ids and max(b for _, b in enc.offsets) == len(text)
    before = [a for a, _ in enc.offsets].index(text.index("ok"))  # the first token of the last line
    assert info.decode(ids[:before]) == "s = '\ufffd'\nname = 'caf\ufffd'\n"
    assert info.encode("plain ascii, é") == info.tok.encode("plain ascii, é", add_special_tokens=False).ids


def test_keep_prefix_edges():
    assert keep_prefix([1, 2, 3], 5) == [1, 2, 3]
    assert keep_prefix(list(range(10)), 4, grid=3) == [6, 7, 8, 9]
    assert keep_prefix(list(range(10)), 8, grid=4) == [2, 3, 4, 5, 6, 7, 8, 9]  # the step capped at a third of 8
    assert keep_prefix(list(range(10)), 0) == []


def test_the_trained_context_comes_from_the_training_record():
    from models.model_dir import trained_context

    config = {"max_position_embeddings": 1024}
    assert trained_context(config, {"hyperparameters": {"seq_len": 512}}) == 512
    assert trained_context(config, {}) == 1024  # a plain model directory: its config says what it takes
    for bogus in ("512", 0, 4096, True, None):  # unusable or past the positions the config allows
        assert trained_context(config, {"hyperparameters": {"seq_len": bogus}}) == 1024


def test_a_long_document_gets_a_prompt_within_the_trained_context():
    """The default model was trained on 512-token windows; its config allows 1024 positions. A completion at the
    end of a long file must fit prompt and suggestion into the 512 (past them the model's quality falls)."""
    from lsp_server.config import Settings
    from lsp_server.services.completion import CompletionService
    from lsp_server.services.positions import LineIndex, Position
    from lsp_server.services.scheduler import CancelToken

    service = CompletionService()
    service.load("")
    runtime = service.runtime
    assert runtime is not None, service.status.reason
    assert runtime.context_tokens == runtime.record["hyperparameters"]["seq_len"] < runtime.max_len
    body = "".join(f"def handler_{i}(request, value={i}):\n    return request.reply(value + {i})\n\n" for i in range(200))
    text = body + "def handler_last(request, value):\n    return request."
    settings = Settings(context_prefix_chars=8192, decoding_policy="full")
    lines = text.split("\n")
    ctx = service.context(LineIndex(text), "python", Position(len(lines) - 1, len(lines[-1])), settings)
    assert len(runtime.tokenizer.encode(ctx.prefix)) > runtime.context_tokens  # the window alone would not fit
    suggestion = service.complete(ctx, settings, CancelToken())
    prompt_tokens = suggestion.details["prompt_tokens"]
    assert 0 < prompt_tokens <= runtime.context_tokens - settings.max_new_tokens
    assert prompt_tokens + len(suggestion.result.token_ids) <= runtime.context_tokens


CRLF_SAMPLE = ('import os\n\n\ndef read_config(path):\n    """Read the file at path."""\n    with open(path) as f:\n'
               '        return f.read()\n\n\nif __name__ == "__main__":\n    print(read_config(os.environ["CONFIG"]))\n')


@pytest.mark.parametrize("eol", ["\r\n", "\r"])
def test_a_document_with_crlf_or_cr_line_breaks_gets_the_suggestions_of_its_lf_twin(eol):
    """The model trained on LF text only (the corpus writes every break as LF), but the prompt kept the document's
    CRs: in a Windows file the same code got other suggestions (3 of 12 probes), often none."""
    from lsp_server.config import Settings
    from lsp_server.services.completion import CompletionService
    from lsp_server.services.positions import LineIndex, Position
    from lsp_server.services.scheduler import CancelToken
    from tests.lsp_support import model_under_test

    service = CompletionService()
    assert service.load(str(model_under_test())).ready
    settings = Settings(stop_threshold=1.01, acceptance_gate=False)
    lines = CRLF_SAMPLE.split("\n")
    twin = CRLF_SAMPLE.replace("\n", eol)
    probes = [(n, cut) for n, line in enumerate(lines) if line.strip() for cut in (len(line) // 2, len(line))]
    for n, cut in probes:
        lf_ctx = service.context(LineIndex(CRLF_SAMPLE), "python", Position(n, cut), settings)
        lf_prompt = service.runtime.fim_prompt(lf_ctx.prefix, lf_ctx.suffix, 16)
        lf_text = service.complete(lf_ctx, settings, CancelToken()).text
        twin_ctx = service.context(LineIndex(twin), "python", Position(n, cut), settings)
        assert service.runtime.fim_prompt(twin_ctx.prefix, twin_ctx.suffix, 16) == lf_prompt, (n, cut)
        assert service.complete(twin_ctx, settings, CancelToken()).text == lf_text, (n, cut)


def test_a_small_budget_keeps_most_of_its_room():
    """A model with a short context leaves little room for the prefix; one grid step of 128 tokens cut from a prefix
    just over a room of 130 kept 3 tokens. The step is at most a third of the room, so two thirds always stay."""
    for room in (130, 142, 200, 300):
        for over in (1, 5, 40, 127):
            kept = keep_prefix(list(range(room + over)), room)
            assert kept == list(range(room + over))[-len(kept):]
            assert len(kept) <= room
            assert len(kept) >= room - room // 3, (room, over, len(kept))


def test_a_small_budget_still_keeps_its_start_while_the_user_types():
    """The smaller step moves the prompt's start once per step of typing, not per keystroke."""
    room = 142
    starts = [keep_prefix(list(range(n)), room)[0] for n in range(room + 1, room + 1 + 3 * (room // 3))]
    assert len(set(starts)) <= 4
