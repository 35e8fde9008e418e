"""Model directory errors: the server advises its settings, a command its flags; `tact export` refuses what it
cannot serve and says what it wrote."""

from __future__ import annotations

import json
import shutil

import pytest

from lsp_server.cli import main
from models.model_dir import FLAG_ADVICE, SETTING_ADVICE, ModelDirError, check_model_dir, read_safetensors_index


def test_the_advice_for_a_directory_that_is_none_is_the_callers():
    with pytest.raises(ModelDirError) as raised:
        check_model_dir("/nonexistent/model")
    exc = raised.value
    assert str(exc) == f"model directory /nonexistent/model does not exist; {SETTING_ADVICE}"  # the server's
    assert str(exc.advised(FLAG_ADVICE)) == f"model directory /nonexistent/model does not exist; {FLAG_ADVICE}"
    corrupt = ModelDirError("m/config.json is not valid JSON", "restore it")
    assert corrupt.advised(FLAG_ADVICE) is corrupt  # a fix that is not "name another directory" stays


def test_the_server_keeps_the_settings_advice():
    from lsp_server.services.completion import CompletionService

    status = CompletionService().load("/nonexistent/model")
    assert not status.ready and status.reason.endswith(SETTING_ADVICE)


def test_a_damaged_safetensors_file_is_named_with_its_fix(tmp_path):
    """A corrupt exit_heads.safetensors said only 'not a safetensors file (too short)'."""
    short = tmp_path / "exit_heads.safetensors"
    short.write_bytes(b"abc")
    with pytest.raises(ModelDirError, match=r"exit_heads.safetensors: not a safetensors file \(too short\); "
                                            "re-export or re-download the model"):
        read_safetensors_index(short)
    garbled = tmp_path / "garbled.safetensors"
    garbled.write_bytes((4).to_bytes(8, "little") + b"\xff\xfe{}" + bytes(8))
    with pytest.raises(ModelDirError, match=r"garbled.safetensors: corrupt safetensors header \(.*\); re-export or "):
        read_safetensors_index(garbled)


@pytest.mark.parametrize("name, says", [
    ("missing", "model directory {dir} does not exist"),
    ("f.py", "{dir} is a file, not a model directory"),
])
def test_export_of_no_model_directory_gets_export_advice(tmp_path, capsys, name, says):
    (tmp_path / "f.py").write_text("x = 1\n")
    target = tmp_path / name
    assert main(["export", str(target)]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line == (f"tact export: error: {says.format(dir=target)}; name a model directory to export, e.g. one "
                    "`tact train lm --no-export` wrote")


@pytest.fixture
def unexported(tiny_lm_dir, tmp_path):
    """A copy of the tiny model without its graphs, as `tact train lm --no-export` leaves one."""
    out = tmp_path / "model"
    shutil.copytree(tiny_lm_dir, out, ignore=shutil.ignore_patterns("*.onnx", "graphs.json", "*.bin"))
    return out


def test_export_refuses_a_tokenizer_that_cannot_load_and_writes_nothing(unexported, capsys):
    (unexported / "tokenizer.json").write_text("{not json")
    before = sorted(p.name for p in unexported.iterdir())
    assert main(["export", str(unexported)]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"tact export: error: {unexported / 'tokenizer.json'} cannot be loaded (")
    assert line.endswith("; restore it from where the model came from (re-download or re-train it)")
    assert sorted(p.name for p in unexported.iterdir()) == before


def test_export_says_what_it_wrote(unexported, capsys):
    assert main(["export", str(unexported)]) == 0
    out = capsys.readouterr().out
    index = json.loads((unexported / "graphs.json").read_text())
    graphs = len(index["decoder_layers"]) + len(index["kv_fill"]) + 1 + len(index["int8"]["decoder_layers"]) + 1
    assert out == (f"{unexported}: wrote {graphs} ONNX graphs, listed in {unexported / 'graphs.json'}; serve it with "
                   f"`tact serve --model {unexported}`\n")
    assert all((unexported / name).is_file() for name in index["decoder_layers"])


@pytest.mark.parametrize("args, flag", [
    (["demo", "--model", "{m}"], "--model"),
    (["bench", "serve", "--model", "{m}", "--limit", "2"], "--model"),
    (["bench", "replay", "--model", "{m}", "--limit", "2"], "--model"),
    (["bench", "early-exit", "--model", "{m}", "--limit", "2"], "--model"),
    (["simulate", "{f}", "--model", "{m}"], "--model"),
    (["train", "controller", "--model", "{m}"], "--model"),
    (["train", "lm", "--resume", "{m}", "--corpus", "{c}", "--minutes", "0.01"], "--resume"),
    (["train", "next-edit", "--init", "{m}", "--data", "{d}", "--minutes", "0.01"], "--init"),
])
def test_every_command_advises_its_own_flag_for_a_model_directory_that_is_none(tmp_path, capsys, args, flag):
    """They said "set tact.modelPath ...", the editor's setting, to a user who had passed a flag (the server's own
    message, or the shared handler's); the commands that start a server now check the directory before it starts."""
    from tests.test_train_inputs import write_corpus

    (tmp_path / "f.py").write_text("x = 1\n")
    (tmp_path / "ne").mkdir()
    (tmp_path / "ne" / "real_train.jsonl").write_text("")  # the inputs a command checks before its model
    missing = tmp_path / "no-model"
    argv = [a.format(m=missing, f=tmp_path / "f.py", c=write_corpus(tmp_path / "corpus"), d=tmp_path / "ne")
            for a in args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "tact.modelPath" not in err
    assert f"model directory {missing} does not exist; pass {flag} DIR with a model directory" in err


@pytest.mark.parametrize("file, change, says", [
    ("config.json", lambda c: c.update(rope_theta="10000"), "has rope_theta '10000', not a positive number"),
    ("tact.json", lambda r: r.update(hyperparameters=[1]), "has hyperparameters [1], not an object"),
])
def test_complete_with_a_damaged_model_says_which_file_and_the_fix_in_one_line(tiny_lm_dir, tmp_path, capsys, file,
                                                                               change, says):
    """They printed a traceback, then "model DIR could not be loaded: ufunc 'power' not supported for the input
    types" (or "'list' object has no attribute 'get'"): neither the file nor the fix."""
    model = tmp_path / "model"
    shutil.copytree(tiny_lm_dir, model)
    value = json.loads((model / file).read_text())
    change(value)
    (model / file).write_text(json.dumps(value))
    source = tmp_path / "f.py"
    source.write_text("x = 1\n")
    assert main(["complete", f"{source}:1:", "--model", str(model)]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [f"tact complete: error: no model: {model / file} {says}; restore it from where the model came "
                                "from (re-download or re-train it)"]
