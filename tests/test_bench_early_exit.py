"""`tact bench early-exit` on the tiny random model and a tiny corpus (smoke test plus sample invariants)."""

from __future__ import annotations

import json
import math
import shutil

import pytest

from models.bench_early_exit import (EXIT_LOOKUP_SWEEP, EXIT_PICK_MARGIN, EXIT_SWEEP, BenchInputError, format_report,
                                     load_texts, pick_exit_setting, prompt_pass, sample_prompt,
                                     make_samples, run_bench, split_versions, texts_identity,
                                     truncate_at_stop)
from models.model_dir import fingerprint
from models.runtime import POLICIES, DecodeOptions, DecodeResult, EarlyExitRuntime

POLICY_KEYS = {"samples", "tokens", "layers_per_token", "layers_skipped_share", "layer_passes_per_token",
               "ms_per_token_median", "ms_per_token_mean", "last_prompt_token_ms_median", "suggestion_ms_total",
               "speedup_total", "speedup_median", "speedup_per_token", "exact_match", "edit_similarity", "rouge_l",
               "identical_to_full", "identical_count", "stop_reasons"}
STOP_KEYS = {"threshold", "without_stop", "with_stop", "relative_change", "would_be_accepted", "would_be_accepted_lost",
             "removed_share", "meets_target", "replay_mismatches", "sweep", "thresholds_meeting_target",
             "recommended_threshold", "by_typing", "by_exact_match"}
ACCEPT_KEYS = {"shown", "accepted", "acceptance_rate", "chars_saved"}


def test_samples_are_seeded_and_well_formed(tiny_corpus_dir):
    texts = load_texts(tiny_corpus_dir)
    a = make_samples(texts, 20, seed=3)
    assert [(s.path, s.line, s.target) for s in a] == [(s.path, s.line, s.target) for s in make_samples(texts, 20, seed=3)]
    assert [(s.path, s.line) for s in a] != [(s.path, s.line) for s in make_samples(texts, 20, seed=4)]
    by_path = dict(texts)
    for s in a:
        line = by_path[s.path].split("\n")[s.line]
        assert s.target.strip() and "\n" not in s.target
        assert line.endswith(s.target)  # the rest of the line after the cursor
        assert (s.prefix.split("\n")[-1] + s.target) == line  # the prefix ends at the cursor
        indent = len(line) - len(line.lstrip())
        assert len(s.prefix.split("\n")[-1]) >= indent
        assert len(s.prefix) <= 1500 and len(s.suffix) <= 300
        assert s.suffix == "" or s.suffix.startswith("\n")


def test_truncate_at_stop_replays_stop():
    res = DecodeResult(token_ids=[5, 6, 7], stop_probs=[0.1, 0.7, 0.95])
    assert truncate_at_stop(res, 0.5) == [5]
    assert truncate_at_stop(res, 0.9) == [5, 6]
    assert truncate_at_stop(res, 0.05) == []
    assert truncate_at_stop(res, 1.01) == [5, 6, 7]
    # Stop before the first token only.
    assert truncate_at_stop(res, 0.5, inside=False) == [5, 6, 7]
    assert truncate_at_stop(res, 0.05, inside=False) == []
    # Cuts after the first token at their own threshold.
    assert truncate_at_stop(res, 0.5, inside_threshold=0.9) == [5, 6]
    assert truncate_at_stop(res, 0.5, inside_threshold=0.99) == [5, 6, 7]
    assert truncate_at_stop(res, 0.05, inside_threshold=0.99) == []  # the first token still at 0.05


def test_stop_inside_off_stops_only_before_the_first_token():
    assert DecodeOptions(stop_threshold=0.5).stop_threshold_at(0) == 0.5
    assert DecodeOptions(stop_threshold=0.5).stop_threshold_at(3) == 0.5
    assert DecodeOptions(stop_threshold=0.5, stop_inside=False).stop_threshold_at(0) == 0.5
    assert DecodeOptions(stop_threshold=0.5, stop_inside=False).stop_threshold_at(3) > 1
    cut = DecodeOptions(stop_threshold=0.5, stop_inside_threshold=0.98)
    assert cut.stop_threshold_at(0) == 0.5 and cut.stop_threshold_at(1) == 0.98
    assert DecodeOptions(stop_threshold=0.5, stop_inside=False, stop_inside_threshold=0.98).stop_threshold_at(1) > 1


def test_bench_smoke(tiny_lm_dir, tiny_corpus_dir):
    r = run_bench(tiny_lm_dir, corpus=tiny_corpus_dir, limit=3, seed=0, threads=1, stop_threshold=0.9,
                  exit_threshold=0.5, draft_layers=2, draft_tokens=4, accuracy_windows=2)
    json.dumps(r)  # JSON-ready
    assert r["samples"] == 3
    assert set(r["policies"]) == set(POLICIES)
    for name, p in r["policies"].items():
        assert POLICY_KEYS <= set(p), name
        assert p["samples"] == 3
    assert {"drafted", "draft_accepted", "draft_acceptance"} <= set(r["policies"]["speculative"])
    spec = r["policies"]["speculative"]
    assert spec["verify_steps"] >= 3 and 0 <= spec["undrafted_share"] <= 1  # a pass for each sample at least
    assert "passes had nothing drafted" in format_report(r)
    full, spec = r["policies"]["full"], r["policies"]["speculative"]
    assert full["layers_per_token"] == 4.0 and full["identical_to_full"] == 1.0
    assert spec["identical_count"] == 3  # lossless
    assert STOP_KEYS <= set(r["stop"])
    assert ACCEPT_KEYS <= set(r["stop"]["without_stop"]) and ACCEPT_KEYS <= set(r["stop"]["with_stop"])
    assert r["stop"]["replay_mismatches"] == 0  # under `full`, Stop only truncates
    typed = r["stop"]["by_typing"]
    assert ACCEPT_KEYS <= set(typed["without_stop"]) and typed["without_stop"]["shown"] == r["stop"]["without_stop"]["shown"]
    assert typed["with_stop"]["shown"] == r["stop"]["with_stop"]["shown"]  # same suggestions, another judge
    exact = r["stop"]["by_exact_match"]
    assert exact["without_stop"]["shown"] == r["stop"]["without_stop"]["shown"]
    assert exact["without_stop"]["accepted"] <= r["stop"]["without_stop"]["accepted"]  # stricter than the bench's rule
    other = r["stop"]["other_inside"]
    assert other["inside"] is (not r["stop"]["inside"])
    assert other["bench_rule"]["shown"] <= r["stop"]["without_stop"]["shown"]
    assert {"relative_change", "removed_share"} <= set(other["by_typing"])
    assert all({"threshold", "shown", "accepted", "removed_share", "meets_target"} <= set(e) for e in r["stop"]["sweep"])
    acc = r["exit_accuracy"]
    assert acc["windows"] == 2 and acc["tokens"] > 0 and len(acc["top1"]) == 4 and acc["agrees_with_final"][-1] == 1.0
    assert set(r["targets"]) == {"speculative", "dynamic", "stop"}
    assert all(isinstance(t["pass"], bool) for t in r["targets"].values())
    assert isinstance(r["targets"]["dynamic"]["settled"], bool) and isinstance(r["targets"]["stop"]["settled"], bool)
    assert {"cpu_count", "onnxruntime", "threads"} <= set(r["hardware"])
    assert r["prompt"]["tokens_median"] > 1 and r["prompt"]["ms_median"] > 0  # the shared prompt pass
    assert "prompt pass" in format_report(r)
    text = format_report(r)
    assert "speculative" in text and ("PASS" in text or "MISS" in text)
    assert r["stop"]["cuts_at_first_token_threshold"] is None  # one threshold: nothing to compare
    rows = r["exit_sweep"]["thresholds"]
    assert [e["exit_threshold"] for e in rows if e["exit_lookup_threshold"] is None] == sorted(EXIT_SWEEP)
    assert sorted(e["exit_lookup_threshold"] for e in rows if e["exit_lookup_threshold"] is not None) == sorted(EXIT_LOOKUP_SWEEP)
    assert [e["exit_threshold"] for e in rows if e.get("configured")] == [0.5]  # the dynamic policy's own run
    assert "on agreement with prompt lookup" in text
    assert r["int8_policies"] is None  # asked for only with --int8


def test_bench_int8_compares_8bit_decoding_with_fp32_full(tiny_lm_dir, tiny_corpus_dir):
    r = run_bench(tiny_lm_dir, corpus=tiny_corpus_dir, limit=2, seed=0, threads=1, exit_threshold=0.5,
                  accuracy_windows=2, with_exit_sweep=False, int8=True)
    json.dumps(r)
    assert set(r["int8_policies"]) == set(POLICIES)
    full_rouge = r["policies"]["full"]["rouge_l"]  # int8's loss is read against fp32 `full`
    for name, p in r["int8_policies"].items():
        assert POLICY_KEYS <= set(p) and p["samples"] == 2, name
        assert 0.0 <= p["identical_to_full"] <= 1.0, name
        loss = p["rouge_l_relative_loss"]
        assert math.isfinite(loss), name
        # signed: a loss where int8 scores below full, a gain (< 0) where above; 0 where full scores 0
        if full_rouge:
            assert (loss > 0) == (p["rouge_l"] < full_rouge) and (loss == 0) == (p["rouge_l"] == full_rouge), (
                name, loss, p["rouge_l"], full_rouge)
        else:
            assert loss == 0, (name, loss)
    assert r["int8_policies"]["speculative"]["identical_to_int8_full"] == 1.0  # on these two samples (not bit-exact in general)
    assert r["policies"]["speculative"]["identical_count"] == 2  # the fp32 rows are as before
    assert "full int8" in format_report(r)


def test_bench_with_prompt_lookup_exits_on_the_calibration_split(tiny_lm_dir, tiny_corpus_dir):
    r = run_bench(tiny_lm_dir, corpus=tiny_corpus_dir, split="calib", limit=2, seed=0, threads=1,
                  exit_threshold=0.9, exit_lookup_threshold=0.6, exit_lookup_veto=True, accuracy_windows=1)
    assert r["settings"]["split"] == "calib" and r["settings"]["exit_lookup_threshold"] == 0.6
    rows = r["exit_sweep"]["thresholds"]
    configured = [e for e in rows if e.get("configured")]
    assert len(configured) == 1 and configured[0]["exit_lookup_veto"] is True
    assert configured[0]["layers_skipped_share"] == r["policies"]["dynamic"]["layers_skipped_share"]
    lookup = [e for e in rows if e["exit_lookup_threshold"] is not None]
    assert all(e["exit_threshold"] == 0.9 and e["exit_lookup_veto"] for e in lookup)
    assert len(lookup) == len(EXIT_LOOKUP_SWEEP)  # 0.6 is the configured run, not repeated
    assert "0.9, 0.6 on lookup, veto off it" in format_report(r)
    with pytest.raises(BenchInputError, match="unknown split"):
        run_bench(tiny_lm_dir, corpus=tiny_corpus_dir, split="train", limit=1)


def test_bench_sweeps_each_exit_rule_in_one_run(tiny_lm_dir, tiny_corpus_dir):
    r = run_bench(tiny_lm_dir, corpus=tiny_corpus_dir, split="calib", limit=2, seed=0, threads=1, exit_threshold=0.5,
                  exit_rule="harm", exit_sweep_thresholds=[0.5, 0.9], exit_sweep_rules=["agreement", "harm"],
                  accuracy_windows=1)
    assert r["settings"]["exit_rule"] == "harm"
    rows = r["exit_sweep"]["thresholds"]
    assert sorted((e["exit_rule"], e["exit_threshold"]) for e in rows) == [
        ("agreement", 0.5), ("agreement", 0.9), ("harm", 0.5), ("harm", 0.9)]  # harm at 0.5 is the configured run
    configured = [e for e in rows if e.get("configured")]
    assert len(configured) == 1 and configured[0]["exit_rule"] == "harm" and configured[0]["label"] == "0.5 (harm)"
    report = format_report(r)
    assert "exit threshold 0.5 (harm)" in report and "harm" in report.split("dynamic exit sweep")[1]


def test_bench_replays_cuts_at_the_first_token_threshold_beside_its_own(tiny_lm_dir, tiny_corpus_dir):
    r = run_bench(tiny_lm_dir, corpus=tiny_corpus_dir, limit=3, seed=0, threads=1, stop_threshold=0.5,
                  stop_inside_threshold=0.98, exit_threshold=0.5, accuracy_windows=2)
    assert r["stop"]["inside_threshold"] == 0.98 and r["stop"]["replay_mismatches"] == 0
    same = r["stop"]["cuts_at_first_token_threshold"]
    assert same["inside_threshold"] == 0.5 and same["bench_rule"]["shown"] <= r["stop"]["without_stop"]["shown"]
    assert "cuts inside a suggestion at P(stop) >= 0.5 (replayed)" in format_report(r)


def test_bench_on_source_directory(tiny_lm_dir, tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text("def add(a, b):\n    total = a + b\n    return total\n")
    r = run_bench(tiny_lm_dir, source=tmp_path, limit=2, threads=1, accuracy_windows=1)
    assert r["samples"] == 2 and r["settings"]["source"] == str(tmp_path)
    # what the samples were drawn from and which model decoded them, so that two runs can be compared
    assert r["data"]["files"] == 1 and r["data"]["chars"] == len((tmp_path / "pkg" / "mod.py").read_text())
    assert r["model"]["fingerprint"] == fingerprint(tiny_lm_dir) and r["data"]["digest"] in format_report(r)


def test_the_data_digest_tells_sample_pools_apart():
    pool = [("a.py", "x = 1\n"), ("b.py", "y = 2\n")]
    assert texts_identity(pool) == texts_identity(list(pool))
    assert texts_identity(pool)["digest"] != texts_identity([("a.py", "x = 1\n"), ("b.py", "y = 3\n")])["digest"]
    assert texts_identity(pool)["digest"] != texts_identity(pool[:1])["digest"]
    # the same files laid elsewhere (another checkout, another machine's site-packages) are the same samples
    moved = [(f"/elsewhere/{path}", text) for path, text in pool]
    assert texts_identity(moved) == texts_identity(pool)


def test_the_versions_of_the_sampled_packages_come_from_the_corpus_manifest(tiny_corpus_dir, tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(tiny_corpus_dir, corpus)
    (corpus / "train.jsonl").write_text("")
    splits = {s: {"files": 0, "chars": 0, "packages": []} for s in ("train", "calib", "heldout")}
    splits["heldout"]["packages"] = ["stdlib:heldout0", "site:pygments"]
    manifest = {"splits": splits, "versions": {"stdlib:heldout0": "Python 3.11.7", "site:pygments": "Pygments 2.21.0",
                                               "site:other": "other 1.0"}}
    (corpus / "manifest.json").write_text(json.dumps(manifest))
    assert split_versions(corpus, "heldout") == {"stdlib:heldout0": "Python 3.11.7", "site:pygments": "Pygments 2.21.0"}
    del manifest["versions"]  # a corpus built before they were recorded
    (corpus / "manifest.json").write_text(json.dumps(manifest))
    assert split_versions(corpus, "heldout") is None
    assert split_versions(tmp_path / "nowhere", "heldout") is None


def test_bad_inputs(tiny_lm_dir, tmp_path):
    with pytest.raises(BenchInputError, match="heldout.jsonl"):
        load_texts(tmp_path)
    with pytest.raises(BenchInputError, match="does not exist"):
        load_texts(source=tmp_path / "nope")


def test_cli_json_and_errors(tiny_lm_dir, tiny_corpus_dir, tmp_path, capsys):
    from lsp_server.cli import main
    from lsp_server.config import DEFAULTS

    assert main(["bench", "early-exit", "--model", str(tiny_lm_dir), "--corpus", str(tiny_corpus_dir), "--limit", "2",
                 "--threads", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["policies"]) == set(POLICIES)
    st = out["settings"]  # the settings defaults
    assert (st["stop_threshold"], st["stop_inside"], st["token_healing"]) == (DEFAULTS.stop_threshold, True,
                                                                              DEFAULTS.token_healing)
    assert DEFAULTS.token_healing > 0
    assert main(["bench", "early-exit", "--model", str(tiny_lm_dir), "--corpus", str(tiny_corpus_dir), "--limit", "1",
                 "--threads", "1", "--json", "--split", "calib", "--exit-lookup-threshold", "0.7", "--exit-lookup-veto"]) == 0
    st = json.loads(capsys.readouterr().out)["settings"]
    assert (st["split"], st["exit_lookup_threshold"], st["exit_lookup_veto"]) == ("calib", 0.7, True)
    assert main(["bench", "early-exit", "--model", str(tiny_lm_dir), "--corpus", str(tiny_corpus_dir), "--limit", "1",
                 "--threads", "1", "--json", "--exit-lookup-threshold", "-1", "--no-exit-sweep"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["settings"]["exit_lookup_threshold"] is None  # negative: off
    assert out["exit_sweep"] is None and "dynamic" in out["targets"]
    assert main(["bench", "early-exit", "--model", str(tiny_lm_dir), "--corpus", str(tiny_corpus_dir), "--limit", "1",
                 "--threads", "1", "--json", "--exit-threshold", "0.5", "--exit-sweep-thresholds", "0.9,0.5,0.7",
                 "--exit-pick-margin", "0.002"]) == 0
    swept = json.loads(capsys.readouterr().out)["exit_sweep"]
    rows = swept["thresholds"]
    assert swept["pick_margin"] == 0.002
    picked = pick_exit_setting(rows, 0.002)
    assert swept["pick"] == (picked["label"] if picked else None)
    assert [(e["exit_threshold"], e["exit_lookup_threshold"], bool(e.get("configured"))) for e in rows] == [
        (0.5, None, True), (0.7, None, False), (0.9, None, False)]  # only those, the configured one not repeated
    with pytest.raises(SystemExit):
        main(["bench", "early-exit", "--model", str(tiny_lm_dir), "--exit-sweep-thresholds", "0.9,high"])
    assert "not a comma-separated list" in capsys.readouterr().err
    assert main(["bench", "early-exit", "--model", str(tmp_path / "missing"), "--limit", "1"]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and str(tmp_path / "missing") in err and "Traceback" not in err
    assert main(["bench", "early-exit", "--model", str(tiny_lm_dir), "--corpus", str(tmp_path), "--limit", "1"]) == 2
    assert "heldout.jsonl" in capsys.readouterr().err


def test_the_sweep_picks_the_most_layers_skipped_within_the_target_less_the_margin():
    rows = [{"label": label, "layers_skipped_share": skipped, "rouge_l_relative_loss": loss}
            for label, skipped, loss in [("0.93", 0.47, 0.0136), ("0.94", 0.45, 0.0055), ("0.95", 0.43, 0.0032),
                                         ("0.96", 0.40, 0.0021)]]
    assert pick_exit_setting(rows, 0.0)["label"] == "0.94"  # within 1%
    assert pick_exit_setting(rows, EXIT_PICK_MARGIN)["label"] == "0.95"  # within 0.5%: 0.94's 0.55% is over it
    assert pick_exit_setting(rows, 0.009) is None  # nothing within 0.1%
    assert pick_exit_setting([], 0.0) is None


def test_the_pick_margin_the_cli_names_is_the_bench_default(capsys):
    from lsp_server.cli import main

    with pytest.raises(SystemExit):
        main(["bench", "early-exit", "--help"])
    assert f"default {EXIT_PICK_MARGIN:g}:" in " ".join(capsys.readouterr().out.split())


def test_bootstrap_intervals_are_paired_and_contain_the_estimate():
    import numpy as np

    from models.bench_early_exit import rouge_loss_interval, stop_intervals

    rng = np.random.default_rng(0)
    full = rng.uniform(0.1, 0.9, 400)
    # Every sample 10% worse: the pairing makes the interval exact, however noisy the scores themselves are.
    assert rouge_loss_interval(full, full * 0.9) == [0.1, 0.1]
    assert rouge_loss_interval(full, full) == [0.0, 0.0]
    noisy = np.clip(full * 0.95 + rng.normal(0, 0.1, 400), 0, 1)
    lo, hi = rouge_loss_interval(full, noisy)
    estimate = (full.mean() - noisy.mean()) / full.mean()
    assert lo < estimate < hi and hi - lo > 0.01
    shown = rng.random(400) < 0.9
    accepted = shown & (rng.random(400) < 0.1)
    same = stop_intervals(shown, accepted, shown, accepted)
    would = int(accepted.sum())
    assert same["relative_change_ci"] == [0.0, 0.0]
    # none of the accepted removed: the share's interval still admits some, the fewer accepted the more
    assert same["removed_share_ci"][0] == 0.0 and 0.0 < same["removed_share_ci"][1] < 4 / would
    # Stop hides half of the rejected suggestions and nothing accepted: the rate rises, nothing is removed.
    hide = shown & ~accepted & (rng.random(400) < 0.5)
    ci = stop_intervals(shown, accepted, shown & ~hide, accepted)
    assert ci["relative_change_ci"][0] > 0.3 and ci["removed_share_ci"] == same["removed_share_ci"]


def test_intervals_draw_whole_files_where_the_samples_name_them():
    """Lines of one file are alike: drawn one by one, they gave intervals narrower than the data allow."""
    import numpy as np

    from models.bench_early_exit import rouge_loss_interval, stop_intervals

    rng = np.random.default_rng(1)
    files = np.repeat(np.arange(12), 40)  # 12 files of 40 samples, each file's loss its own
    full = rng.uniform(0.3, 0.7, len(files))
    other = full * (1 - rng.normal(0.01, 0.03, 12)[files])
    lo, hi = rouge_loss_interval(full, other)
    clo, chi = rouge_loss_interval(full, other, clusters=files)
    estimate = (full.mean() - other.mean()) / full.mean()
    assert clo < estimate < chi and chi - clo > 2 * (hi - lo)
    assert rouge_loss_interval(full, full * 0.9, clusters=files) == [0.1, 0.1]  # still paired
    shown = np.ones(len(files), dtype=bool)
    accepted = rng.random(len(files)) < 0.5
    removed = accepted & np.isin(files, [0, 1])  # Stop removed the accepted ones of two files, nothing elsewhere
    drawn = stop_intervals(shown, accepted, shown & ~removed, accepted & ~removed, clusters=files)
    alone = stop_intervals(shown, accepted, shown & ~removed, accepted & ~removed)
    assert drawn["removed_share_ci"][1] > alone["removed_share_ci"][1]  # wider than Wilson's on draws by line


def test_wilson_interval_of_a_proportion():
    from models.bench_early_exit import wilson_interval

    assert wilson_interval(0, 8)[0] == 0.0 and wilson_interval(0, 8)[1] > 0.3  # nothing seen in 8: up to a third
    lo, hi = wilson_interval(5, 101)
    assert lo < 5 / 101 < hi and abs(lo - 0.0213) < 0.002 and abs(hi - 0.1107) < 0.002
    assert wilson_interval(3, 3)[1] == 1.0 and wilson_interval(50, 100) == [0.4038, 0.5962]


def test_a_verdict_is_settled_only_when_the_intervals_decide_it():
    from models.bench_early_exit import settled

    assert settled(([0.0, 0.008], "<=", 0.01))  # the whole interval within the loss target
    assert settled(([0.022, 0.049], "<=", 0.01))  # wholly past it: missed
    assert not settled(([-0.001, 0.048], "<=", 0.01))  # straddles it
    assert not settled((None, "<=", 0.01))  # no interval: nothing is settled
    # Stop: a gain of at least 10% and at most 10% of accepted suggestions removed
    assert settled(([0.31, 0.47], ">=", 0.1), ([0.011, 0.097], "<=", 0.1))
    assert not settled(([0.31, 0.47], ">=", 0.1), ([0.0, 0.25], "<=", 0.1))
    assert settled(([0.0, 0.08], ">=", 0.1), ([0.0, 0.25], "<=", 0.1))  # the gain is wholly short: missed


def test_every_decoder_of_a_sample_starts_from_the_same_prompt_pass(tiny_lm_dir, tiny_corpus_dir):
    """Decoders after the shared prompt pass see the cache as it was, whatever the decoder before them wrote
    past the prompt (dynamic's approximate KV, speculative's rejected drafts)."""
    rt = EarlyExitRuntime(tiny_lm_dir, threads=1)
    texts = load_texts(tiny_corpus_dir)
    left_early = []
    for s in make_samples(texts, 3, seed=1):
        prompt, heal = sample_prompt(rt, s)
        assert prompt_pass(rt, prompt) > 0 and rt.cache.length == len(prompt) - 1
        first = rt.generate(prompt, DecodeOptions(policy="full", max_new_tokens=12, single_line=False), heal=heal)
        assert first.cached_tokens == len(prompt) - 1  # only the last prompt token ran
        for policy in ("dynamic", "speculative", "full"):
            again = rt.generate(prompt, DecodeOptions(policy=policy, max_new_tokens=12, single_line=False,
                                                      exit_threshold=0.0), heal=heal)
            assert again.cached_tokens == len(prompt) - 1
            if policy == "dynamic":  # P(exit) >= 0: later tokens leave early, their skipped layers' KV filled
                left_early.append(min(again.layers[1:], default=rt.n_layers) < rt.n_layers)
            else:
                assert again.token_ids == first.token_ids, policy
        assert rt.cache.ids[:len(prompt)] == prompt
    assert any(left_early)  # so the decoders after dynamic did read past its approximate KV


def test_dynamic_may_exit_the_prompts_last_token_only_where_it_runs_alone(tiny_lm_dir, tiny_corpus_dir):
    """With exit_last_prompt_token, a suggestion's first token may leave early when the prompt's last token is the
    only one not cached; from a cold cache, or without the option, it comes from the prompt's pass at full depth."""
    rt = EarlyExitRuntime(tiny_lm_dir, threads=1)
    L = rt.n_layers
    base = dict(policy="dynamic", max_new_tokens=8, single_line=False, stop_threshold=1.01)
    firsts = []
    for s in make_samples(load_texts(tiny_corpus_dir), 4, seed=2):
        prompt = sample_prompt(rt, s, heal_tokens=0).ids  # a token writing text given back runs every layer
        prompt_pass(rt, prompt)
        shipped = rt.generate(prompt, DecodeOptions(**base, exit_threshold=0.0))
        assert shipped.layers[0] == L
        early = rt.generate(prompt, DecodeOptions(**base, exit_threshold=0.0, exit_last_prompt_token=True))
        assert early.cached_tokens == len(prompt) - 1
        firsts.append(early.layers[0])
        # never leaving early, the option changes nothing: the same tokens as full
        never = rt.generate(prompt, DecodeOptions(**base, exit_threshold=1.01, exit_last_prompt_token=True))
        assert never.layers[0] == L
        assert never.token_ids == rt.generate(prompt, DecodeOptions(policy="full", max_new_tokens=8, single_line=False,
                                                                      stop_threshold=1.01)).token_ids
        rt.reset()  # cold: the whole prompt runs in one pass
        cold = rt.generate(prompt, DecodeOptions(**base, exit_threshold=0.0, exit_last_prompt_token=True))
        assert cold.layers[0] == L and cold.cached_tokens == 0
    assert min(firsts) < L  # P(exit) >= 0 everywhere: the first token left at the first open exit
    r = run_bench(tiny_lm_dir, corpus=tiny_corpus_dir, limit=2, seed=0, threads=1, exit_threshold=0.0,
                  accuracy_windows=1, with_exit_sweep=False, exit_last_prompt_token=True)
    assert r["settings"]["exit_last_prompt_token"] is True
    assert r["policies"]["dynamic"]["layers_per_token"] < L
    assert "prompt's last token" in format_report(r)


def test_speed_figures_count_the_prompts_last_token_pass():
    """Speculative may emit tokens in the prompt's pass (prefill_ms): speed-ups and ms per token are taken over that
    pass and the decoding after it, never decoding alone."""
    from models.bench_early_exit import _policy_summary

    full = [DecodeResult(token_ids=[5, 6, 7], layers=[4] * 3, prefill_ms=4.0, decode_ms=6.0)]
    spec = [DecodeResult(token_ids=[5, 6, 7], layers=[4] * 3, prefill_ms=5.0, decode_ms=0.0)]
    p = _policy_summary("speculative", spec, full, ["x"], L=4)
    assert p["speedup_total"] == 2.0 and p["speedup_median"] == 2.0
    assert p["suggestion_ms_total"] == 5.0 and p["ms_per_token_mean"] == round(5.0 / 3, 4)
    assert p["last_prompt_token_ms_median"] == 5.0


def test_after_loading_the_dynamic_graphs_a_dynamic_decode_loads_nothing(tiny_lm_dir):
    """The bench loads them before its timed loop: loaded on first use, they were timed as dynamic's decoding."""
    rt = EarlyExitRuntime(tiny_lm_dir, threads=1)
    rt.load_dynamic_graphs()

    def no_loading(*args, **kwargs):
        raise AssertionError("a graph was loaded while decoding")

    rt._session = no_loading
    prompt = rt.tokenizer.encode("def area(width, height):\n    return width")
    r = rt.generate(prompt, DecodeOptions(policy="dynamic", exit_threshold=0.0, max_new_tokens=6))  # 8-bit exit heads
    assert r.token_ids and min(r.layers) < rt.n_layers  # tokens did leave early, through the kv_fill graphs


def test_the_draft_layers_reported_are_the_ones_decoding_takes(tiny_lm_dir, tiny_corpus_dir):
    """`--draft-layers 100` ran with the model's layers less one (decoding clamps it) and the report said 100."""
    r = run_bench(tiny_lm_dir, corpus=tiny_corpus_dir, limit=1, seed=0, threads=1, accuracy_windows=1,
                  with_exit_sweep=False, draft_layers=100)
    assert r["settings"]["draft_layers"] == EarlyExitRuntime(tiny_lm_dir, threads=1).n_layers - 1
    assert "draft 3 layers" in format_report(r)
