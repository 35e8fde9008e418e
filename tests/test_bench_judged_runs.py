"""What the serving benches judge, a tenth look: each test failed on the code before."""

from __future__ import annotations

import io

from lsp_server import bench_serve
from lsp_server.services.recorder import SessionRecorder
from tests.test_bench_serve_runs_and_verdicts import _NoServer


def _run(**kw) -> bench_serve.ServedRun:
    return bench_serve.ServedRun("fp32", _NoServer(), cold_start_s=0.5, peak_rss_mb=200.0, **kw)


def test_a_run_whose_requests_failed_is_not_judged():
    """A server whose model raised answered every request at once with nothing: p50 1.9 ms, PASS."""
    fig = bench_serve._figures(_run(latencies=[2.0] * 300, failed=30), "full", False, 5.0)
    assert fig["failed_requests"] == 30 and "30 requests failed" in fig["not_judged"]
    assert fig["targets"]["p50_ms"]["pass"] is None and fig["targets"]["p95_ms"]["pass"] is None
    assert fig["targets"]["peak_rss_mb"]["pass"] is None
    assert fig["targets"]["cold_start_s"]["pass"] is True  # its one measurement stands
    out = io.StringIO()
    bench_serve.print_table(fig, out)
    assert "not judged" in out.getvalue() and "PASS" in out.getvalue()  # the cold start's


def test_a_run_whose_server_lost_its_model_is_not_judged():
    fig = bench_serve._figures(_run(latencies=[2.0] * 300, lost_model="a damaged graph"), "full", False, 5.0)
    assert "lost its model" in fig["not_judged"] and fig["targets"]["p95_ms"]["pass"] is None


def test_a_short_run_is_not_judged():
    """`--limit 2` printed "p95 latency 30.82 ms 150.0 PASS": a p95 of two requests."""
    fig = bench_serve._figures(_run(latencies=[30.0, 31.0]), "full", False, 5.0)
    assert "2 requests" in fig["not_judged"] and fig["targets"]["p95_ms"]["pass"] is None
    full = bench_serve._figures(_run(latencies=[30.0] * bench_serve.MIN_JUDGED_REQUESTS), "full", False, 5.0)
    assert full["not_judged"] is None and full["targets"]["p95_ms"]["pass"] is True


def test_failed_requests_are_read_from_the_servers_database(tmp_path):
    db = tmp_path / "t.sqlite3"
    recorder = SessionRecorder.open(db)
    recorder.session_started("bench", "1", "0", {}, {}, None)
    recorder.document_opened("file:///a.py", 1, "python", "x = 1\n")
    for n, fails in enumerate([True, False, True]):
        recorder.requested(f"s{n}", "completion", "file:///a.py", 1, 0, 5, "automatic", {}, None)
        if fails:
            recorder.failed(f"s{n}", "RuntimeError: the graph")
        else:
            recorder.cancelled(f"s{n}", "superseded")
    recorder.close()
    assert bench_serve.failed_requests(db) == 2
    assert bench_serve.failed_requests(tmp_path / "none.sqlite3") == 0


def test_a_compared_ratio_comes_with_an_interval_that_holds_the_noise():
    """Two identical servers' p50s differed 0.48x to 1.06x at 40 requests, printed to three decimals alone."""
    import random

    rng = random.Random(1)
    a = [rng.lognormvariate(3.0, 0.5) for _ in range(20)]
    b = [rng.lognormvariate(3.0, 0.5) for _ in range(20)]  # the same distribution
    lo, hi = bench_serve.ratio_interval(a, b, 0.5)
    assert lo < 1.0 < hi and hi / lo > 1.3  # wide at 20 requests, and it holds 1
    many_a = [rng.lognormvariate(3.0, 0.5) for _ in range(2000)]
    many_b = [rng.lognormvariate(3.0, 0.5) for _ in range(2000)]
    lo, hi = bench_serve.ratio_interval(many_a, many_b, 0.5)
    assert lo < 1.0 < hi and hi / lo < 1.15


FAILING_SERVER = """
import sys
from lsp_server.services import completion

def complete(self, ctx, settings, token):
    raise RuntimeError("the graph failed")

completion.CompletionService.complete = complete
from lsp_server.cli import main
raise SystemExit(main(["serve", *sys.argv[1:]]))
"""


def test_a_replay_whose_requests_failed_is_not_complete(simulated_session, tiny_lm_dir, tmp_path, monkeypatch):
    """Every request failed in the server and was answered with nothing: the replay said complete (and `bench
    replay` judged two such replays identical, and fast)."""
    import sys

    from telemetry import replay as replay_module
    from telemetry.replay import ReplayOptions, replay

    monkeypatch.setattr(replay_module, "server_command", lambda python, model, database: [
        sys.executable, "-c", FAILING_SERVER, "--model", model or "", "--database", database])
    (result,) = replay(simulated_session["database"], tmp_path / "out.sqlite3",
                       options=ReplayOptions(model=str(tiny_lm_dir)))
    assert result.replayed == simulated_session["figures"]["requests"] > 0
    assert not result.complete and any("failed in the server" in issue for issue in result.issues), result.issues
