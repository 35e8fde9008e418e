"""Settings: the one source of defaults for the server, the CLI and the VS Code extension.

Settings arrive camelCase (``initializationOptions``, ``workspace/configuration`` section
``tact``, ``workspace/didChangeConfiguration``) and are held as a typed dataclass with
snake_case fields. Unknown keys are ignored; a value of the wrong type, out of range or not among
the choices keeps the value it would replace and is reported, so a bad settings file never takes
the server down.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import reprlib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

SECTION = "tact"
# Keys of the `tact` section that are the VS Code extension's own (package.json): a client sending the whole section
# sends them too, and they are no typo
CLIENT_ONLY_SETTINGS = ("pythonPath", "trace")
DECODING_POLICIES = ("full", "dynamic", "speculative")
DecodingPolicy = Literal["full", "dynamic", "speculative"]
NEXT_EDIT_PREDICTORS = ("auto", "model", "ranker", "heuristic")
DECODE_WEIGHTS = ("fp32", "int8")  # models.runtime.WEIGHTS
EXIT_RULES = ("agreement", "harm")  # models.exits.EXIT_RULES
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")  # the logLevel enum of vscode-client/package.json
# The settings that take one of a few names (logLevel in any case). A name not among them keeps the value it would
# replace and is reported, as a value of the wrong type or out of range does.
CHOICES: dict[str, tuple[str, ...]] = {
    "decoding_policy": DECODING_POLICIES,
    "decode_weights": DECODE_WEIGHTS,
    "exit_rule": EXIT_RULES,
    "next_edit_predictor": NEXT_EDIT_PREDICTORS,
    "log_level": LOG_LEVELS,
}

# The range of each number setting (None: open at that end); the VS Code extension declares the same minimum and
# maximum (tests/test_vscode_settings.py). A value outside keeps the value it would replace and is reported. The
# maxima of the windows and waits are far past any use (a 1 MB prefix took seconds to tokenize at every request).
BOUNDS: dict[str, tuple[float | None, float | None]] = {
    "max_new_tokens": (1, 256),
    "exit_threshold": (0, 1),
    "exit_lookup_threshold": (None, 1),
    "stop_threshold": (0, None),
    "stop_inside_threshold": (0, None),
    "stop_repeats": (0, None),
    "token_healing": (0, 16),
    "draft_layers": (0, None),
    "draft_tokens": (1, 256),
    "context_prefix_chars": (0, 65536),
    "context_suffix_chars": (0, 65536),
    "acceptance_lambda": (0, 1),
    "acceptance_precision_floor": (0, 1),
    "acceptance_skip_uncertainty": (None, 1),  # a P(accept): above 1 every automatic request was skipped
    "acceptance_debounce_max_ms": (0, 2000),
    "acceptance_explore_share": (0, 1),
    "next_edit_threshold": (0, 1),
    "next_edit_ranker_threshold": (None, 1),
    "edit_coalesce_ms": (0, 60000),
    "telemetry_retention_days": (0, 36_500),  # days a float holds (a huge count killed the writer)
}


# Keys that name no setting, each said in the log with the setting it resembles; those past this are counted in one
# line (each resemblance is a search over every setting's name, on the event loop, and each said is a log line)
MAX_UNKNOWN_SAID = 20


def database_dir_made(database: Path) -> str | None:
    """Make the folder of a telemetry database a command records into; why it cannot be made, with the fix, or None.
    A read-only home said only "[Errno 30] Read-only file system: '/home/u/.local'"."""
    from telemetry.store import make_database_folder  # sqlite_utils, which settings alone do not need

    try:
        make_database_folder(database)
        return None
    except OSError as exc:
        return (f"cannot make {database.parent} for the telemetry database ({exc.strerror or exc}): pass --database "
                "FILE or set TACT_DATA_DIR to a directory you can write")


def default_data_dir() -> Path:
    """Where the telemetry database lives unless a setting says otherwise."""
    override = os.environ.get("TACT_DATA_DIR")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_data_dir("tact", appauthor=False))


@dataclass
class Settings:
    """Every user-facing setting, with its default. Field order is the documentation order."""

    enable: bool = True
    model_path: str = ""  # empty: the default model shipped with the package
    decoding_policy: str = "speculative"
    decode_weights: str = "fp32"  # fp32 | int8: the weights decoding steps read (int8: 8-bit, faster)
    max_new_tokens: int = 48
    multiline: bool = False
    exit_threshold: float = 0.95  # dynamic policy: the exit score (exit_rule) needed to leave the network
    exit_rule: str = "harm"  # dynamic: agreement | harm, what the exit threshold is compared with
    exit_lookup_threshold: float = -1.0  # dynamic: the exit score enough when the exit's token is lookup's guess; < 0: off
    exit_lookup_veto: bool = False  # dynamic, with the above: an exit whose token is not the guess never leaves
    stop_threshold: float = 0.8  # controller P(stop) needed to end a suggestion before a token
    stop_inside: bool = True  # Stop may also cut a suggestion after its first token (off: it only hides one)
    stop_inside_threshold: float = 0.98  # P(stop) that cuts a suggestion after its first token
    stop_repeats: int = 3  # a suggestion repeating a unit this many times in a row ends after one copy; 0: never
    token_healing: int = 2  # tokens before the cursor the suggestion writes again (models.healing); 0: none
    draft_layers: int = 0  # speculative: layers that draft where lookup and the n-gram table have none; 0: none
    draft_tokens: int = 4  # speculative policy: tokens drafted per verification
    ngram_drafts: bool = True  # speculative: draft from the model's n-gram table where prompt lookup has little
    previous_drafts: bool = True  # speculative: draft from the previous suggestion, which typing on through it gets again
    # the window starts on a grid of min(this, 1024), kept while typing: it spans this to this plus that grid
    context_prefix_chars: int = 1024
    context_suffix_chars: int = 256
    acceptance_gate: bool = True  # CDHF: skip generation / hide suggestions predicted to be rejected
    acceptance_lambda: float = 0.5  # weight of saved model calls vs hidden suggestions when choosing thresholds
    acceptance_precision_floor: float = 0.9  # hidden suggestions that were really rejected, at least this share
    acceptance_skip_uncertainty: float = -1.0  # skip generation when stage-1 P(accept) is below this; < 0: by the rule
    acceptance_debounce_max_ms: int = 100  # wait before generating for a likely rejection (0: never wait)
    # share of the automatic requests the gate would skip or hide that it lets through, logged as explored: without
    # them a model retrained on gated sessions never sees an outcome where the gate said no
    acceptance_explore_share: float = 0.05
    acceptance_model_path: str = ""  # empty: the acceptance model shipped with the package
    next_edit: bool = True  # predict the next edit from the edit history (tact/nextEdit)
    next_edit_predictor: str = "ranker"  # ranker | heuristic | model | auto (the ranker, else the model when confident)
    next_edit_threshold: float = 0.5  # confidence (probability of the rewrite's least likely token) needed to show one
    next_edit_model_path: str = ""  # empty: the next-edit model shipped with the package
    next_edit_ranker_path: str = ""  # empty: the edit ranker shipped with the package
    next_edit_ranker_threshold: float = -1.0  # edit ranker score needed to show its edit; < 0: the one it was trained with
    next_edit_code_actions: bool = True  # offer the next edit as a code action too (textDocument/codeAction)
    telemetry: bool = True
    telemetry_database: str = ""  # empty: <user data dir>/telemetry.sqlite3
    # sessions last active longer ago are removed when the database is opened (0: kept for ever)
    telemetry_retention_days: int = 90
    edit_coalesce_ms: int = 1000
    log_level: str = "WARNING"

    @classmethod
    def from_camel(cls, values: dict[str, Any] | None, base: "Settings | None" = None,
                   kept: "Settings | None" = None) -> tuple["Settings", list[str]]:
        """Build settings from a camelCase dict over ``base``; returns (settings, problems). A refused value leaves
        ``kept``'s in place (default ``base``'s), and its problem says which: a push over initialize's settings keeps
        the value in use, where a typo in one key undid what the previous push had set."""
        settings = dataclasses.replace(base) if base is not None else cls()
        kept = kept if kept is not None else base if base is not None else cls()
        problems: list[str] = []
        if not values:
            return settings, problems
        if not isinstance(values, dict):
            return settings, [f"settings must be an object, got {type(values).__name__}"]
        by_camel = {to_camel(f.name): f for f in fields(cls)}
        unknown = 0
        for key, value in values.items():
            f = by_camel.get(key)
            if f is None:  # a misspelt key did nothing, and said nothing (editors other than VS Code take them by hand)
                if key not in CLIENT_ONLY_SETTINGS:
                    unknown += 1
                    if unknown > MAX_UNKNOWN_SAID:  # counted below: 200,000 of them held the server 17.6 s
                        continue
                    near = difflib.get_close_matches(str(key), by_camel, n=1)
                    name = str(key) if len(str(key)) <= 60 else f"{str(key)[:57]}..."  # a JSON key, of any length
                    problems.append(f"{SECTION}.{name}: no such setting, ignored"
                                    + (f" (did you mean {SECTION}.{near[0]}?)" if near else ""))
                continue
            default = getattr(cls(), f.name)
            coerced = _coerce(value, type(default))
            if coerced is None:
                setattr(settings, f.name, getattr(kept, f.name))
                problems.append(f"{SECTION}.{key}: expected {type(default).__name__}, got {reprlib.repr(value)}; "
                                f"{getattr(kept, f.name)!r} stays in effect")
                continue
            setattr(settings, f.name, coerced)
        if unknown > MAX_UNKNOWN_SAID:
            problems.append(f"{unknown - MAX_UNKNOWN_SAID} more keys that name no setting, ignored")

        def refuse(name: str, problem: str) -> None:
            problems.append(f"{SECTION}.{to_camel(name)}: {problem}; {getattr(kept, name)!r} stays in effect")
            setattr(settings, name, getattr(kept, name))

        for name, (low, high) in BOUNDS.items():
            value = getattr(settings, name)
            if (low is not None and value < low) or (high is not None and value > high):
                wanted = f"at least {low}" if high is None else f"at most {high}" if low is None else \
                    f"between {low} and {high}"
                refuse(name, f"{reprlib.repr(value)}, but it must be {wanted}")
        for name, choices in CHOICES.items():
            value = getattr(settings, name)
            if (value.upper() if name == "log_level" else value) not in choices:
                refuse(name, f"{reprlib.repr(value)} is not one of {choices}")
        for name in PATH_SETTINGS:
            if expanded(getattr(settings, name)) is None:
                refuse(name, f"{reprlib.repr(getattr(settings, name))}: its ~ names no user with a home directory")
        if settings.stop_repeats != 0 and settings.stop_repeats < 2:
            refuse("stop_repeats", f"{settings.stop_repeats} is neither 0 (never) nor at least 2")
        settings.log_level = settings.log_level.upper()  # Python's level names; "info" was always taken as INFO
        return settings, problems

    def to_camel(self) -> dict[str, Any]:
        return {to_camel(f.name): getattr(self, f.name) for f in fields(self)}

    def database_path(self) -> Path:
        if self.telemetry_database:
            return expand_user(self.telemetry_database)
        return default_data_dir() / "telemetry.sqlite3"


# Settings that name a file or directory; a leading ~ is the user's home (``expand_user``).
PATH_SETTINGS = ("model_path", "acceptance_model_path", "next_edit_model_path", "next_edit_ranker_path",
                 "telemetry_database")


def expanded(path: str) -> Path | None:
    """``path`` with a leading ``~`` or ``~user`` expanded; None where its ``~`` names no home directory (an unknown
    user): `Path.expanduser` raised there, and the handler reading the setting stopped half done (at initialize, the
    client got an error and no server)."""
    try:
        return Path(path).expanduser()
    except RuntimeError:
        return None


def expand_user(path: str) -> Path:
    """``expanded``, or the path as written where it cannot be (a `--model` given on the command line, which no
    settings check refuses): whatever opens it then says it is missing."""
    return expanded(path) or Path(path)


def to_camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


# Every setting's name as clients send it (camelCase, without the `tact.` section).
SETTING_NAMES = frozenset(Settings().to_camel())


def _number(value: Any) -> float | None:
    """A JSON number as a float, or None: not a number, a bool, or an integer too large for a float (JSON allows any
    length; float(), math.isnan() and math.isfinite() raise OverflowError on one)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return float(value)
    except OverflowError:
        return None


def finite_float(value: Any) -> float | None:
    """A JSON number as a finite float, or None: `_number`'s None, NaN or infinite."""
    number = _number(value)
    return number if number is not None and math.isfinite(number) else None


def _coerce(value: Any, kind: type) -> Any:
    if kind is bool:
        return value if isinstance(value, bool) else None
    if kind is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else None
    if kind is float:  # NaN (Python's JSON reads it) would pass every range check: refused as not a number
        number = _number(value)  # infinity stays a number (a stopThreshold above 1 turns Stop off)
        return None if number is None or math.isnan(number) else number
    if kind is str:
        return value if isinstance(value, str) else None
    return None


DEFAULTS = Settings()
