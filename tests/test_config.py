import os
import tempfile
from pathlib import Path

from lsp_server.config import DEFAULTS, Settings, default_data_dir, to_camel


def test_camel_case_round_trip():
    camel = DEFAULTS.to_camel()
    assert camel["decodingPolicy"] == DEFAULTS.decoding_policy
    settings, problems = Settings.from_camel(camel)
    assert problems == [] and settings == DEFAULTS


def test_wrong_types_keep_defaults_and_are_reported():
    settings, problems = Settings.from_camel({"maxNewTokens": "lots", "multiline": 1, "stopThreshold": 0.5, "unknownKey": 3})
    assert settings.max_new_tokens == DEFAULTS.max_new_tokens
    assert settings.multiline == DEFAULTS.multiline
    assert settings.stop_threshold == 0.5
    assert len(problems) == 3 and any("maxNewTokens" in p for p in problems)
    assert "tact.unknownKey: no such setting, ignored" in problems  # said, not silently dropped


def test_numbers_out_of_range_keep_the_value_they_would_replace_and_are_reported():
    """A negative prefix window failed every completion; a negative draft length failed every speculative one."""
    base, _ = Settings.from_camel({"contextPrefixChars": 600})
    settings, problems = Settings.from_camel({"contextPrefixChars": -5, "draftTokens": 0, "editCoalesceMs": -1,
                                              "maxNewTokens": 1000, "acceptanceLambda": 2, "exitThreshold": 0.5}, base)
    assert (settings.context_prefix_chars, settings.draft_tokens, settings.edit_coalesce_ms, settings.max_new_tokens,
            settings.acceptance_lambda) == (600, DEFAULTS.draft_tokens, DEFAULTS.edit_coalesce_ms,
                                            DEFAULTS.max_new_tokens, DEFAULTS.acceptance_lambda)
    assert settings.exit_threshold == 0.5
    assert sorted(p.split(":")[0] for p in problems) == ["tact.acceptanceLambda", "tact.contextPrefixChars",
                                                         "tact.draftTokens", "tact.editCoalesceMs", "tact.maxNewTokens"]
    assert "tact.contextPrefixChars: -5, but it must be between 0 and 65536; 600 stays in effect" in problems
    assert f"tact.maxNewTokens: 1000, but it must be between 1 and 256; {DEFAULTS.max_new_tokens} stays in effect" \
        in problems


def test_a_refused_value_keeps_the_value_in_use_not_the_one_it_is_laid_over():
    """A pushed section is laid over initialize's settings; a value refused in it went back to initialize's, undoing
    what the previous push had set (`tact.decodingPolicy` "FULL" after a push of "dynamic" gave "speculative")."""
    initial, _ = Settings.from_camel({"maxNewTokens": 30})
    in_use, _ = Settings.from_camel({"decodingPolicy": "dynamic", "maxNewTokens": 20}, initial)
    settings, problems = Settings.from_camel({"decodingPolicy": "FULL", "maxNewTokens": -5, "contextPrefixChars": "x",
                                              "exitThreshold": 0.5}, initial, kept=in_use)
    assert (settings.decoding_policy, settings.max_new_tokens, settings.exit_threshold) == ("dynamic", 20, 0.5)
    assert settings.context_prefix_chars == in_use.context_prefix_chars
    assert "tact.maxNewTokens: -5, but it must be between 1 and 256; 20 stays in effect" in problems
    assert any(p.startswith("tact.decodingPolicy: 'FULL'") and p.endswith("'dynamic' stays in effect")
               for p in problems)
    assert any(p.startswith("tact.contextPrefixChars: expected int") for p in problems)


def test_unknown_policy_is_refused():
    settings, problems = Settings.from_camel({"decodingPolicy": "turbo"})
    assert settings.decoding_policy == DEFAULTS.decoding_policy and problems


def test_unknown_decode_weights_are_refused():
    settings, problems = Settings.from_camel({"decodeWeights": "int4"})
    assert settings.decode_weights == DEFAULTS.decode_weights == "fp32" and any("decodeWeights" in p for p in problems)
    assert Settings.from_camel({"decodeWeights": "int8"})[0].decode_weights == "int8"


def test_the_settings_choices_are_the_runtimes():
    """config.py keeps its own copies (it must not import onnxruntime): they must not drift."""
    from lsp_server.config import DECODE_WEIGHTS, DECODING_POLICIES, EXIT_RULES
    from models.exits import EXIT_RULES as RULES
    from models.runtime import POLICIES, WEIGHTS

    assert DECODE_WEIGHTS == WEIGHTS and DECODING_POLICIES == POLICIES and EXIT_RULES == RULES


def test_unknown_exit_rules_are_refused():
    settings, problems = Settings.from_camel({"exitRule": "bold"})
    assert settings.exit_rule == DEFAULTS.exit_rule == "harm" and any("exitRule" in p for p in problems)
    assert Settings.from_camel({"exitRule": "agreement"})[0].exit_rule == "agreement"


def test_non_object_settings():
    settings, problems = Settings.from_camel(["not", "a", "dict"])
    assert settings == DEFAULTS and problems


def test_updates_apply_over_a_base():
    base, _ = Settings.from_camel({"multiline": True})
    updated, _ = Settings.from_camel({"maxNewTokens": 12}, base=base)
    assert updated.multiline and updated.max_new_tokens == 12
    assert to_camel("context_prefix_chars") == "contextPrefixChars"


def test_database_path_default_and_override(tmp_path, monkeypatch):
    monkeypatch.setenv("TACT_DATA_DIR", str(tmp_path))
    assert Settings().database_path() == tmp_path / "telemetry.sqlite3"
    assert Settings(telemetry_database=str(tmp_path / "x.db")).database_path() == tmp_path / "x.db"


def test_the_cut_threshold_reaches_the_decoder():
    from lsp_server.services.completion import CompletionService

    s, problems = Settings.from_camel({"stopThreshold": 0.8, "stopInsideThreshold": 0.97})
    assert not problems
    opts = CompletionService().decode_options(s)
    assert opts.stop_threshold_at(0) == 0.8 and opts.stop_threshold_at(2) == 0.97
    assert CompletionService().decode_options(Settings()).stop_threshold_at(1) == Settings().stop_inside_threshold == 0.98


def test_prompt_lookup_exit_settings_reach_the_decoder():
    from lsp_server.services.completion import CompletionService

    off = CompletionService().decode_options(Settings(exit_lookup_threshold=-1.0, exit_threshold=0.9))
    assert off.exit_lookup_threshold is None and off.exit_threshold_for(5, guess=5) == 0.9
    s, problems = Settings.from_camel({"exitThreshold": 0.98, "exitLookupThreshold": 0.6, "exitLookupVeto": True})
    assert not problems
    opts = CompletionService().decode_options(s)
    assert opts.exit_threshold_for(5, guess=5) == 0.6  # the exit agrees with the guess
    assert opts.exit_threshold_for(5, guess=7) > 1  # vetoed: never leaves
    assert opts.exit_threshold_for(5, guess=None) == 0.98  # no guess: the plain threshold
    s.exit_lookup_veto = False
    assert CompletionService().decode_options(s).exit_threshold_for(5, guess=7) == 0.98


def test_the_exit_rule_setting_reaches_the_decoder():
    from lsp_server.services.completion import CompletionService

    assert DEFAULTS.exit_rule != "agreement"  # a value other than the default, so that dropping it would show
    s, problems = Settings.from_camel({"exitRule": "agreement"})
    assert not problems and CompletionService().decode_options(s).exit_rule == "agreement"


def test_the_exit_threshold_setting_and_the_runtime_default_are_one_value():
    """Settings (serving) and DecodeOptions (models/, which may not import the server) each state it; the bench
    and the acceptance scorer read DecodeOptions'. A change to one must reach the other."""
    from models.runtime import DecodeOptions

    assert DEFAULTS.exit_threshold == DecodeOptions.exit_threshold
    assert DEFAULTS.exit_rule == DecodeOptions.exit_rule
    assert DEFAULTS.stop_repeats == DecodeOptions.stop_repeats
    assert DEFAULTS.ngram_drafts == DecodeOptions.ngram_drafts
    assert DEFAULTS.draft_layers == DecodeOptions.draft_layers


def test_the_ngram_drafts_setting_reaches_the_decoder():
    from lsp_server.services.completion import CompletionService

    for value in (False, True):
        s, problems = Settings.from_camel({"ngramDrafts": value})
        assert not problems and CompletionService().decode_options(s).ngram_drafts is value


def test_the_previous_drafts_setting_reaches_the_decoder_on_by_default_for_serving_only():
    """On in the server; off where nothing sets it (a benchmark decodes one prompt by each policy in turn, and
    would draft from another policy's answer)."""
    from lsp_server.services.completion import CompletionService
    from models.runtime import DecodeOptions

    assert CompletionService().decode_options(Settings()).previous_drafts is True
    assert DecodeOptions().previous_drafts is False
    s, problems = Settings.from_camel({"previousDrafts": False})
    assert not problems and CompletionService().decode_options(s).previous_drafts is False


def test_the_loop_stop_setting_reaches_the_decoder_and_one_copy_is_refused():
    from lsp_server.services.completion import CompletionService

    s, problems = Settings.from_camel({"stopRepeats": 0})
    assert not problems and CompletionService().decode_options(s).stop_repeats == 0
    s, problems = Settings.from_camel({"stopRepeats": 5})
    assert not problems and CompletionService().decode_options(s).stop_repeats == 5
    for bad in (1, -2):  # one copy is not a repetition
        s, problems = Settings.from_camel({"stopRepeats": bad})
        assert s.stop_repeats == DEFAULTS.stop_repeats and "stopRepeats" in problems[0]


def test_an_unknown_log_level_is_refused_and_the_levels_are_the_extensions():
    """{"logLevel": "LOUD"} passed without a word, and tact/status reported 'LOUD' while the server logged at WARNING."""
    import json
    from pathlib import Path

    from lsp_server.config import LOG_LEVELS

    settings, problems = Settings.from_camel({"logLevel": "LOUD"})
    assert settings.log_level == DEFAULTS.log_level == "WARNING"
    assert problems == ["tact.logLevel: 'LOUD' is not one of ('DEBUG', 'INFO', 'WARNING', 'ERROR'); 'WARNING' stays in "
                        "effect"]
    assert Settings.from_camel({"logLevel": "info"}) == (Settings(log_level="INFO"), [])  # as the server always took it
    package = json.loads((Path(__file__).resolve().parent.parent / "vscode-client" / "package.json").read_text())
    assert tuple(package["contributes"]["configuration"]["properties"]["tact.logLevel"]["enum"]) == LOG_LEVELS


def test_a_value_not_among_the_choices_keeps_the_value_it_would_replace():
    """A mistyped choice (decodingPolicy "fulll", a stopRepeats of 1, an unknown logLevel) sent over settings that
    had "full", 5 and DEBUG switched them to the defaults instead of leaving them as they were, unlike a value of the
    wrong type or out of range."""
    base, problems = Settings.from_camel({"decodingPolicy": "full", "decodeWeights": "int8", "exitRule": "agreement",
                                          "stopRepeats": 5, "nextEditPredictor": "heuristic", "logLevel": "DEBUG"})
    assert problems == []
    settings, problems = Settings.from_camel({"decodingPolicy": "fulll", "decodeWeights": "int4", "exitRule": "odd",
                                              "stopRepeats": 1, "nextEditPredictor": "guess", "logLevel": "loud"}, base)
    assert settings == base
    assert sorted(p.split(":")[0] for p in problems) == ["tact.decodeWeights", "tact.decodingPolicy", "tact.exitRule",
                                                         "tact.logLevel", "tact.nextEditPredictor", "tact.stopRepeats"]


def test_a_number_that_is_not_a_number_is_refused():
    """JSON-RPC as Python reads it takes NaN: it passed every range check ("between 0 and 1") and reached the
    decoder's and the acceptance gate's thresholds. Infinity stays a number (a stopThreshold above 1 turns Stop off)."""
    base, _ = Settings.from_camel({"exitThreshold": 0.8})
    nan = float("nan")
    settings, problems = Settings.from_camel({"exitThreshold": nan, "acceptanceLambda": nan, "stopThreshold": nan,
                                              "acceptanceSkipUncertainty": nan}, base)
    assert settings == base
    assert sorted(p.split(":")[0] for p in problems) == ["tact.acceptanceLambda", "tact.acceptanceSkipUncertainty",
                                                         "tact.exitThreshold", "tact.stopThreshold"]
    assert Settings.from_camel({"stopThreshold": float("inf")}) == (Settings(stop_threshold=float("inf")), [])


def test_windows_and_waits_far_past_any_use_are_refused():
    """A 1 MB contextPrefixChars tokenized the whole document at every request (seconds each); an hour-long debounce
    or edit window is a typo. Each keeps the value it would replace and is reported."""
    huge = {"contextPrefixChars": 1_000_000, "contextSuffixChars": 1_000_000, "acceptanceDebounceMaxMs": 3_600_000,
            "editCoalesceMs": 3_600_000, "draftTokens": 10_000}
    settings, problems = Settings.from_camel(huge)
    assert settings == Settings()
    assert sorted(p.split(":")[0] for p in problems) == sorted(f"tact.{k}" for k in huge)
    at_most, problems = Settings.from_camel({"contextPrefixChars": 65536, "acceptanceDebounceMaxMs": 2000})
    assert not problems and (at_most.context_prefix_chars, at_most.acceptance_debounce_max_ms) == (65536, 2000)


def test_the_tests_never_reach_the_users_data_directory():
    """Servers started by tests without a database wrote to (and now would prune) the user's real telemetry
    database; conftest gives the whole run a data directory of its own."""
    assert Path(os.environ["TACT_DATA_DIR"]).is_relative_to(tempfile.gettempdir())
    assert default_data_dir() == Path(os.environ["TACT_DATA_DIR"])
