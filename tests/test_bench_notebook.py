"""`tact bench notebook` on the tiny random model: the samples, the two arms' prompts, the JSON and bad sources."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lsp_server.bench_notebook import notebook_samples, notebooks, run_bench
from lsp_server.bench_serve import notebook_cells
from lsp_server.cli import main
from lsp_server.config import DEFAULTS
from lsp_server.services.completion import CompletionService
from models.bench_early_exit import load_texts
from models.runtime import DecodeOptions, EarlyExitRuntime

MODULE = "import os\nimport sys\n\n\n" + "\n\n".join(
    f"def f{i}(a, b):\n    total = a + b * {i}\n    return os.path.join(str(total), sys.argv[0])\n" for i in range(8))
SINGLE_CELL = "x = 1\ny = x + 2\nprint(x, y)\n"


@pytest.fixture()
def source(tmp_path) -> Path:
    (tmp_path / "module.py").write_text(MODULE, encoding="utf-8")
    (tmp_path / "single.py").write_text(SINGLE_CELL, encoding="utf-8")
    return tmp_path


def test_only_cells_with_code_above_are_sampled(source):
    assert len(notebook_cells(SINGLE_CELL)) == 1
    files = notebooks(load_texts(source=source))
    assert [Path(p).name for p, _ in files] == ["module.py"]  # the one-cell file has no cell with cells above
    samples = notebook_samples(files, 40, seed=0)
    assert len(samples) == 8 * 3  # every line of the eight functions' cells, none of the imports' cell above them
    for ns in samples:
        assert ns.cell >= 1 and "".join(ns.cells[:ns.cell]).strip()
        cell = ns.cells[ns.cell]
        ctx = ns.contexts["cell_alone"]
        assert ctx.document == cell and cell[ctx.offset:].split("\n", 1)[0] == ns.sample.target


def test_both_arms_complete_the_same_cell_and_only_one_reads_the_cells_above(source, tiny_lm_dir):
    runtime = EarlyExitRuntime(tiny_lm_dir, threads=1)
    samples = notebook_samples(notebooks(load_texts(source=source)), 12, seed=1)
    for ns in samples:
        with_cells, alone = ns.contexts["with_cells"], ns.contexts["cell_alone"]
        assert with_cells.document == alone.document and with_cells.offset == alone.offset
        assert (with_cells.prefix, with_cells.suffix) == (alone.prefix, alone.suffix) and not alone.earlier_cells
        # the cell is short: its prefix window reaches its start, and the code above it is read, ending in the cell
        # right above (one blank line between, as NotebookStore joins cells)
        assert with_cells.earlier_cells.endswith(ns.cells[ns.cell - 1].rstrip("\n") + "\n\n")
        # what the prompt holds before the cursor: the cell's prefix after the end of the cells above (the tiny
        # model's budget cuts them from the front); without them, the cell's prefix alone
        # (token healing leaves its last tokens out, for the suggestion to write again)
        before = {}
        for arm, ctx in ns.contexts.items():
            ids, heal = CompletionService.prompt(runtime, ctx, DEFAULTS)
            before[arm] = runtime.tokenizer.decode(ids[ids.index(runtime.tokenizer.fim_middle_id) + 1:]) + heal
        assert before["cell_alone"] == alone.prefix
        assert len(before["with_cells"]) > len(alone.prefix)
        assert (with_cells.earlier_cells + alone.prefix).endswith(before["with_cells"])


def test_the_bench_pairs_the_arms_on_the_same_samples(source, tiny_lm_dir):
    r = run_bench(tiny_lm_dir, source=source, limit=4, seed=0, threads=1, keep_samples=True)
    assert r["samples"] == 4 and all(r["arms"][arm]["samples"] == 4 for arm in ("with_cells", "cell_alone"))
    for row in r["per_sample"]:
        assert row["cell"] >= 1 and row["earlier_cells"]
        assert row["cell_text"]["with_cells"] == row["cell_text"]["cell_alone"]
        assert row["prompt_tokens"]["with_cells"] > row["prompt_tokens"]["cell_alone"]
    assert r["earlier_cells"]["in_prompt"] == 4
    assert r["arms"]["with_cells"]["prompt_tokens_mean"] > r["arms"]["cell_alone"]["prompt_tokens_mean"]


def test_cli_json_carries_the_figures_and_the_data_and_limit_bounds_the_samples(source, tiny_lm_dir, capsys):
    assert main(["bench", "notebook", "--model", str(tiny_lm_dir), "--source", str(source), "--limit", "3",
                 "--seed", "2", "--threads", "1", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["samples"] == 3 and r["settings"]["limit"] == 3 and r["settings"]["seed"] == 2
    assert r["data"]["files"] == 2 and r["data"]["notebooks"] == 1 and r["data"]["chars"] == len(MODULE + SINGLE_CELL)
    assert len(r["data"]["digest"]) == 16
    for arm in ("with_cells", "cell_alone"):
        figures = r["arms"][arm]
        for key in ("exact_match", "edit_similarity", "rouge_l", "prompt_tokens_mean", "ms_per_suggestion_mean"):
            assert figures[key] is not None
        assert figures["acceptance"]["shown"] <= 3 and "acceptance_rate" in figures["acceptance_with_stop"]
    for key in ("exact_match", "edit_similarity", "rouge_l", "acceptance_rate"):
        assert set(r["difference"][key]) == {"value", "ci", "outside_noise"}
    assert r["ms_ratio"]["total"] > 0 and 0 <= r["earlier_cells"]["cut_share"] <= 1
    assert "per_sample" not in r


def test_the_readable_report_names_both_arms_and_the_data(source, tiny_lm_dir, capsys):
    assert main(["bench", "notebook", "--model", str(tiny_lm_dir), "--source", str(source), "--limit", "2",
                 "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "with cells" in out and "cell alone" in out and "digest" in out and "ROUGE-L" in out


def test_a_source_without_a_file_of_several_cells_says_so(tmp_path, tiny_lm_dir, capsys):
    (tmp_path / "single.py").write_text(SINGLE_CELL, encoding="utf-8")
    assert main(["bench", "notebook", "--model", str(tiny_lm_dir), "--source", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no file cuts into two notebook cells or more" in err and "Traceback" not in err


def test_without_source_or_held_out_corpus_it_asks_for_a_source(tmp_path, tiny_lm_dir, capsys, monkeypatch):
    import lsp_server.cli as cli

    monkeypatch.setattr(cli, "DEFAULT_CORPUS", tmp_path / "no-corpus")
    assert main(["bench", "notebook", "--model", str(tiny_lm_dir)]) == 2
    assert "pass --source DIR" in capsys.readouterr().err


def test_a_sample_names_from_above_when_its_rest_of_line_names_what_only_the_cells_above_show():
    from lsp_server.bench_notebook import NotebookSample, names_from_above
    from lsp_server.services.context import build_context
    from lsp_server.services.positions import Position
    from models.bench_early_exit import Sample

    def sample(above: str, cell: str, target: str) -> NotebookSample:
        ctx = build_context(cell, Position(0, len(cell)))
        return NotebookSample(Sample(path="p", line=0, prefix=cell, suffix="", target=target, cursor=len(cell)),
                              [above, cell], 1, {"with_cells": ctx.with_earlier_cells(above), "cell_alone": ctx},
                              len(above))

    above = "def read_settings_file(path):\n    return path\n\n"
    assert names_from_above(sample(above, "cfg = read_", "settings_file(name)")) is False  # a name part, not the name
    assert names_from_above(sample(above, "cfg = ", "read_settings_file(name)")) is True
    assert names_from_above(sample(above, "read_settings_file(1)\ncfg = ", "read_settings_file(name)")) is False
    assert names_from_above(sample(above, "cfg = ", "len(path)")) is True  # `path` only above; `len` a builtin
    assert names_from_above(sample(above, "x = ", "self.value")) is False
    assert names_from_above(sample("", "cfg = ", "read_settings_file(name)")) is False  # no cells above held
