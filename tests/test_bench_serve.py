"""`tact bench serve`: real servers over stdio, typing real files; several weights in one run type the same keystrokes."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import pytest

from lsp_server.bench_serve import print_report, run_bench
from telemetry.report import percentile

SOURCE = "\n".join(f"def f{i}(a, b):\n    total = a + b * {i}\n    return total\n" for i in range(20))


def test_one_run_compares_weights_on_the_same_keystrokes(tiny_lm_dir, tmp_path, monkeypatch):
    """Each variant's figures are its own servers' answers; the latency of the answers with a suggestion is theirs
    alone. With the tiny model's default settings no answer had a suggestion, so the shown-latency checks held of
    None whatever list they were computed from."""
    from lsp_server import bench_serve

    (tmp_path / "mod.py").write_text(SOURCE)
    (tmp_path / "other.py").write_text(SOURCE.replace("total", "acc"))  # the second half types the next file
    answers: dict[str, list] = {}  # each variant's answers, as the typing saw them
    variant_of = {}
    start, type_file = bench_serve._start, bench_serve.type_file

    def started(*args):
        run = start(*args)
        variant_of[id(run.client)] = run.variant
        return run

    def typed(client, *args, **kwargs):
        res = type_file(client, *args, **kwargs)
        # every third answer read as one without a suggestion, so that the answers with one are some and not all,
        # whatever the random model writes (the shown latencies are then a list of their own)
        res.events[::3] = [dataclasses.replace(e, text="") for e in res.events[::3]]
        answers.setdefault(variant_of[id(client)], []).extend(res.events)
        return res

    monkeypatch.setattr(bench_serve, "_start", started)
    monkeypatch.setattr(bench_serve, "type_file", typed)
    # Stop off: the random tiny model's P(stop) ends its suggestions before their first token (as in conftest's
    # simulated session)
    result = run_bench(str(tiny_lm_dir), "speculative", 6, tmp_path, None, gate=False, typing_cps=0,
                       weights=["fp32", "int8"], settings={"stopThreshold": 1.01, "maxNewTokens": 2})
    fp32, int8 = result["runs"]
    assert (fp32["weights"], int8["weights"]) == ("fp32", "int8")  # what each server says it runs
    assert fp32["requests"] == int8["requests"] == 6
    assert result["ratios_to"] == "fp32" and result["order"].startswith("A B")
    assert [{k: v for k, v in r.items() if not k.endswith("_interval")} for r in result["ratios"]] == [
        {"variant": "int8", **{k: round(int8[k] / fp32[k], 3) for k in
                               ("p50_ms", "p95_ms", "mean_ms", "cold_start_s", "peak_rss_mb")}}]
    (ratio,) = result["ratios"]
    for k in ("p50_ms", "p95_ms"):  # each latency ratio has its interval, around it
        lo, hi = ratio[f"{k}_interval"]
        assert 0 < lo <= hi
    assert all(f["peak_rss_mb"] and f["cold_start_s"] > 0 for f in (fp32, int8))
    for f in (fp32, int8):  # the answers with a suggestion, apart: some, and not all (else the lists are one)
        all_ms = [e.latency_ms for e in answers[f["variant"]]]
        shown_ms = [e.latency_ms for e in answers[f["variant"]] if e.text]
        assert len(all_ms) == f["requests"] and 0 < f["suggestions_shown"] == len(shown_ms) < len(all_ms)
        assert f["p50_ms"] == round(percentile(all_ms, 0.5), 2)
        assert f["shown_p50_ms"] == round(percentile(shown_ms, 0.5), 2)
        assert f["shown_p95_ms"] == round(percentile(shown_ms, 0.95), 2)
        assert round(min(all_ms), 2) <= f["shown_p50_ms"] <= f["shown_p95_ms"] <= round(max(all_ms), 2)  # as shown
    out = io.StringIO()
    print_report(result, out)
    assert "int8 against fp32" in out.getvalue() and out.getvalue().count("tact bench serve:") == 2
    assert out.getvalue().count("answers with a suggestion alone: p50") == 2


def test_the_shown_latencies_are_those_of_the_answers_with_a_suggestion(monkeypatch):
    """The shown count and percentiles come from the answers with a suggestion alone: taken from every answer they
    are the all-request figures again. Canned answers, so that the two lists' percentiles differ whatever the
    machine's timing (the slowest answer is an empty one)."""
    from types import SimpleNamespace

    from lsp_server import bench_serve
    from telemetry.simulate import SuggestionEvent, TypingResult

    canned = [(1.0, ""), (2.0, ""), (3.0, ""), (40.0, "x"), (50.0, "y"), (60.0, "")]  # (latency ms, suggestion)
    monkeypatch.setattr(bench_serve, "type_file", lambda *a, **k: TypingResult(
        [SuggestionEvent(0, i, ms, text, None, "") for i, (ms, text) in enumerate(canned)]))
    run = bench_serve.ServedRun("fp32", SimpleNamespace(proc=SimpleNamespace(pid=-1)))  # no such process: no RSS
    bench_serve._type(run, [(0, "a.py", "", 0)], len(canned), 4, 0.0)
    f = bench_serve._figures(run, "full", False, 5.0)
    assert f["requests"] == 6 and f["suggestions_shown"] == 2
    assert (f["p50_ms"], f["p95_ms"]) == (21.5, 57.5)  # between ranks, interpolated
    assert (f["shown_p50_ms"], f["shown_p95_ms"]) == (45.0, 49.5)


def test_one_weights_gives_one_table(tiny_lm_dir, tmp_path):
    (tmp_path / "mod.py").write_text(SOURCE)
    fig = run_bench(str(tiny_lm_dir), "full", 3, tmp_path, None, gate=False, typing_cps=0, weights="int8")
    assert fig["weights"] == "int8" and fig["requests"] == 3 and set(fig["targets"]) >= {"p50_ms", "peak_rss_mb"}
    out = io.StringIO()
    print_report(fig, out)
    assert "int8 weights" in out.getvalue() and "against" not in out.getvalue()


def test_one_run_compares_a_settings_values(tiny_lm_dir, tmp_path):
    """--compare: each server runs with its value (tact/status reports the settings it runs with)."""
    (tmp_path / "mod.py").write_text(SOURCE)
    (tmp_path / "other.py").write_text(SOURCE.replace("total", "acc"))
    result = run_bench(str(tiny_lm_dir), "full", 4, tmp_path, None, gate=False, typing_cps=0,
                       settings={"maxNewTokens": 8}, compare=("stopRepeats", [3, 0]))
    on, off = result["runs"]
    assert (on["variant"], off["variant"]) == ("stopRepeats=3", "stopRepeats=0")
    assert result["ratios_to"] == "stopRepeats=3" and result["ratios"][0]["variant"] == "stopRepeats=0"
    assert on["requests"] == off["requests"] == 4
    out = io.StringIO()
    print_report(result, out)
    assert "stopRepeats=0 against stopRepeats=3" in out.getvalue()
    assert "fp32 weights, stopRepeats=0, acceptance gate off" in out.getvalue()  # each table names its variant


def test_the_command_refuses_a_comparison_it_cannot_run(capsys):
    from lsp_server.cli import main

    assert main(["bench", "serve", "--compare", "stopRepeats=3"]) == 2  # one value compares nothing
    assert "--compare stopRepeats gives 1 value: compare two or more" in capsys.readouterr().err
    assert main(["bench", "serve", "--compare", "noSuchSetting=1,2"]) == 2
    assert "unknown setting" in capsys.readouterr().err


def test_a_value_the_server_refuses_fails_the_comparison(tiny_lm_dir, tmp_path):
    """The server keeps its default for a value it refuses (one copy is not a loop): the bench says so rather
    than compare two servers that run alike."""
    (tmp_path / "mod.py").write_text(SOURCE)
    with pytest.raises(RuntimeError, match="stopRepeats"):
        run_bench(str(tiny_lm_dir), "full", 2, tmp_path, None, gate=False, typing_cps=0, compare=("stopRepeats", [1, 0]))


def test_the_variants_a_run_starts():
    from lsp_server.bench_serve import serve_variants

    assert serve_variants("fp32", {"decodeWeights": "int8"}) == [("int8", {"decodeWeights": "int8"}, "file")]  # --set wins
    assert [label for label, _, _ in serve_variants(["fp32", "int8"])] == ["fp32", "int8"]
    assert serve_variants("fp32", {"maxNewTokens": 8}, ("stopRepeats", [3, 0]))[1] == (
        "stopRepeats=0", {"decodeWeights": "fp32", "maxNewTokens": 8, "stopRepeats": 0}, "file")
    for weights, compare, says in ((["fp32", "int8"], ("stopRepeats", [3, 0]), "are two comparisons"),
                                   ("fp32", ("stopRepeats", [3]), "gives 1 value")):
        with pytest.raises(ValueError, match=says):
            serve_variants(weights, None, compare)


@pytest.mark.parametrize("corpus", ["missing", "a-file", "no-split"])
@pytest.mark.parametrize("bench", ["serve", "replay"])
def test_a_corpus_with_nothing_to_type_is_one_error_line(tmp_path, capsys, tiny_lm_dir, bench, corpus):
    """--corpus /nonexistent, a plain file, a directory without heldout.jsonl: the benches typed the built-in demo
    sample instead and reported typing real files."""
    from lsp_server.cli import main

    (tmp_path / "a-file").write_text("x = 1\n")
    (tmp_path / "no-split").mkdir()
    code = main(["bench", bench, "--corpus", str(tmp_path / corpus), "--model", str(tiny_lm_dir),
                 "--limit", "2", "--json"])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"tact bench {bench}: error: corpus {tmp_path / corpus} ") and "tact train corpus" in err


def test_the_files_typed_are_said_and_recorded(tiny_corpus_dir, tmp_path):
    """No corpus at all (a fresh clone): the demo sample, said so; a corpus or a directory: named, with its size."""
    from lsp_server.bench_serve import describe_data, typed_files
    from telemetry.simulate import sample_file

    files, data = typed_files(None, None, 0)
    assert data == {"kind": "demo sample", "path": str(sample_file()), "files": 1, "chars": len(files[0][1])}
    assert "the built-in demo sample" in describe_data(data) and "tact train corpus" in describe_data(data)
    files, data = typed_files(None, tiny_corpus_dir, 0)
    assert (data["kind"], data["path"], data["files"]) == ("held-out corpus", str(tiny_corpus_dir / "heldout.jsonl"), 3)
    assert data["chars"] == sum(len(t) for _, t in files) > 0
    assert describe_data(data).startswith(f"held-out files of {tiny_corpus_dir / 'heldout.jsonl'} (3 files, ")
    (tmp_path / "mod.py").write_text(SOURCE)
    assert typed_files(tmp_path, tiny_corpus_dir, 0)[1] == {"kind": "source", "path": str(tmp_path), "files": 1,
                                                           "chars": len(SOURCE)}
    # a project's virtual environment, vendored copies and binary files are not the project's code (as for
    # `tact bench early-exit --source`): the packages installed there were typed as the project's files
    for where in [".venv/lib/python3.11/site-packages/dep", "venv/lib/dep", "pkg/_vendor/dep"]:
        (tmp_path / where).mkdir(parents=True)
        (tmp_path / where / "dep.py").write_text(SOURCE)
    (tmp_path / "blob.py").write_bytes(b"\x00\xff\n" * 100)
    files, data = typed_files(tmp_path, None, 0)
    assert [name for name, _ in files] == ["mod.py"] and data["chars"] == len(SOURCE)


def test_without_a_corpus_the_report_and_the_json_say_the_demo_sample(tiny_lm_dir, tmp_path, monkeypatch, capsys):
    """`tact bench serve` on a fresh clone (no data/corpus): it types the demo sample and says so."""
    import json

    from lsp_server import cli

    monkeypatch.setattr(cli, "DEFAULT_CORPUS", tmp_path / "no-corpus")
    assert cli.main(["bench", "serve", "--model", str(tiny_lm_dir), "--limit", "2", "--typing-cps", "0", "--no-gate",
                     "--json"]) == 0
    fig = json.loads(capsys.readouterr().out)
    assert fig["data"]["kind"] == "demo sample" and fig["data"]["files"] == 1
    out = io.StringIO()
    print_report(fig, out)
    assert "2 inline completions typing the built-in demo sample (demo_sample.py.txt: no held-out corpus" in out.getvalue()


def test_the_servers_databases_are_removed_unless_kept(tiny_lm_dir, tmp_path, monkeypatch):
    """One /tmp/tact-bench-*/ with a telemetry database per server start was left behind: hundreds piled up."""
    import tempfile

    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    (tmp_path / "mod.py").write_text(SOURCE)
    run_bench(str(tiny_lm_dir), "full", 2, tmp_path, None, gate=False, typing_cps=0)
    assert list(temp.iterdir()) == []
    with pytest.raises(RuntimeError, match="stopRepeats"):  # the server refuses the value: the run fails
        run_bench(str(tiny_lm_dir), "full", 2, tmp_path, None, gate=False, typing_cps=0, compare=("stopRepeats", [1, 0]))
    assert list(temp.iterdir()) == []
    fig = run_bench(str(tiny_lm_dir), "full", 2, tmp_path, None, gate=False, typing_cps=0, keep_telemetry=True)
    kept = Path(fig["telemetry_dir"])
    assert kept.parent == temp and (kept / "server-1.sqlite3").is_file()
    out = io.StringIO()
    print_report(fig, out)
    assert f"the servers' telemetry databases (kept): {kept}" in out.getvalue()


@pytest.mark.parametrize("rate", ["-1", "nan", "inf", "fast"])
def test_a_typing_rate_below_zero_is_refused(rate, tmp_path, capsys):
    """--typing-cps -1 ran and printed "-1 keystrokes/s"; 0 is "as fast as the server answers"."""
    from lsp_server.cli import main

    with pytest.raises(SystemExit) as done:
        main(["bench", "serve", "--typing-cps", rate, "--model", str(tmp_path / "no-model"), "--limit", "1"])
    err = capsys.readouterr().err
    assert done.value.code == 2 and "Traceback" not in err
    assert "argument --typing-cps: " in err and ("must be 0 (as fast as the server answers) or more" in err
                                                 or "not a number" in err)


def test_percentiles_interpolate_between_ranks():
    """The nearest rank, rounded half to even, made the p50 of 4 answers the upper middle one and of 6 the lower;
    between ranks the quantile is interpolated, as numpy's default does."""
    import numpy as np

    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5 and percentile([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 0.5) == 3.5
    rng = np.random.default_rng(0)
    for n in (1, 2, 3, 7, 40, 41, 300):
        values = list(rng.lognormal(3.0, 0.8, n))
        for q in (0.0, 0.5, 0.95, 1.0):
            assert percentile(values, q) == pytest.approx(np.percentile(values, 100 * q), rel=1e-12)


class _NoServer:
    """Stands in for a server's client in `_served`: no process (no RSS to read), nothing to shut down."""

    proc = type("Proc", (), {"pid": -1})()

    def request(self, method, params=None, timeout=None):
        return {}  # the status read at the run's end: nothing to say

    def shutdown(self):
        return 0


@pytest.mark.parametrize("files, per_file, limit", [(6, {"fp32": 2, "int8": 3}, 10), (6, {"fp32": 3, "int8": 2}, 10),
                                                     (1, {"fp32": 3, "int8": 3}, 6)])
def test_taking_turns_the_second_half_types_what_the_first_did_not(tmp_path, monkeypatch, files, per_file, limit):
    """A B then B A: the second half began after the files the last first-half server had begun, so a server whose
    answers were accepted less (more requests a file) typed a file's opening again in its second half, and with a
    plan the first half used up (the demo sample: one file) the second half typed nothing, and the figures were the
    A B order's alone. Canned typing: each variant's server asks ``per_file`` times in a file."""
    from lsp_server import bench_serve
    from telemetry.simulate import SuggestionEvent, TypingResult

    for n in range(files):
        (tmp_path / f"m{n}.py").write_text(SOURCE)
    starts: list[str] = []  # the variant of each server started, in order
    typed: list[tuple[int, str]] = []  # (server, file uri)
    monkeypatch.setattr(bench_serve, "_start", lambda model, policy, gate, variant, db: (
        starts.append(variant[0]) or bench_serve.ServedRun(variant[0], _NoServer())))

    def type_file(client, uri, text, *, limit, **kwargs):
        typed.append((len(starts) - 1, uri))
        asks = min(limit, per_file[starts[-1]])
        return TypingResult([SuggestionEvent(0, i, 1.0 + i, "", None, "") for i in range(asks)])

    monkeypatch.setattr(bench_serve, "type_file", type_file)
    result = run_bench("model", "full", limit, tmp_path, None, gate=False, typing_cps=0, weights=["fp32", "int8"])
    assert result["order"].startswith("A B") and len(starts) == 4  # A B B A
    assert all(f["requests"] == limit for f in result["runs"])
    by_server = [{uri for s, uri in typed if s == n} for n in range(4)]
    if files > 1:  # each server of a variant typed other files in its halves
        assert not by_server[0] & by_server[3] and not by_server[1] & by_server[2]
    else:
        assert by_server[0] == by_server[3] and by_server[1] == by_server[2]


def test_a_run_without_requests_has_no_latency_figures(monkeypatch):
    """Files whose typed lines were blank asked for nothing: the JSON said NaN (not JSON) for p50 and p95 and the
    table "mean latency 0.0 ms"."""
    import json
    from types import SimpleNamespace

    from lsp_server import bench_serve
    from telemetry.simulate import TypingResult

    monkeypatch.setattr(bench_serve, "type_file", lambda *a, **k: TypingResult([], keystrokes=40))
    run = bench_serve.ServedRun("fp32", SimpleNamespace(proc=SimpleNamespace(pid=-1)))
    bench_serve._type(run, [(0, "blank.py", "\n" * 40, 5)], 5, 4, 0.0)
    f = bench_serve._figures(run, "full", False, 5.0)

    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    assert json.loads(json.dumps(f), parse_constant=refuse)["requests"] == 0
    assert f["p50_ms"] is f["p95_ms"] is f["mean_ms"] is None and not f["targets"]["p50_ms"]["pass"]
    out = io.StringIO()
    print_report(f, out)
    assert "mean latency -;" in out.getvalue() and "nan" not in out.getvalue()
