"""The `tact` command line: serve, complete, demo, train, export, bench, eval.

Subcommands import what they need when they run, so `tact serve` never loads training code.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

import lsp_server
from lsp_server.config import DECODE_WEIGHTS, DECODING_POLICIES, DEFAULTS, EXIT_RULES

REPO_ROOT = Path(__file__).resolve().parent.parent

# The project's own errors for bad input, as (module, class): main() prints their message as one line. Named, not
# imported: their modules load torch or onnxruntime, and a module that was never imported raised none of them.
INPUT_ERRORS = (("models.model_dir", "ModelDirError"), ("models.train_lm", "TrainingInputError"),
                ("models.bench_early_exit", "BenchInputError"), ("models.next_edit.ranker", "RankerError"),
                ("telemetry.replay", "ReplayError"), ("telemetry.schema", "TelemetrySchemaError"),
                ("telemetry.simulate", "NoModelError"), ("sqlite3", "Error"),
                ("lsp_server.telemetry_cli", "CommandInputError"), ("telemetry.report", "ReportError"),
                ("telemetry.lsp_client", "LspError"), ("models.corpus", "CorpusError"),
                ("builtins", "OSError"))  # a file or folder named that fails


def is_input_error(exc: BaseException) -> bool:
    """Whether ``exc`` is one of INPUT_ERRORS."""
    return any(isinstance(exc, getattr(sys.modules.get(module), name, ())) for module, name in INPUT_ERRORS)


def int_range(low: int, high: int | None = None):
    """An argparse type: a whole number from ``low`` (up to ``high``), refused with the bounds named at parse time
    rather than failing, or silently doing nothing, deep in the run."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if high is None and value < low:
            raise argparse.ArgumentTypeError(f"must be {low} or more, got {value}")
        if high is not None and not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must lie in {low} to {high}, got {value}")
        return value
    return parse


positive_int = int_range(1)  # counts such as --limit: 0 or less would run nothing, or everything, silently
non_negative_int = int_range(0)  # 0-based line numbers
seed = int_range(0, 2**32 - 1)  # --seed: numpy and scikit-learn take seeds in [0, 2**32) only
_port = int_range(1, 65535)  # --tcp


def positive_float(text: str) -> float:
    """An argparse type for budgets such as --minutes and --max-mb, which must leave something to do."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:  # NaN too
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    if not math.isfinite(value):  # `--lr inf` trained a model of NaNs and saved it, exit 0
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def text_file(text: str) -> Path:
    """An argparse type for a source file to type: refused before a server starts, not halfway through."""
    path = Path(text)
    if path.exists() and not path.is_dir() and not path.is_file():  # a FIFO blocks, a device reads without end
        raise argparse.ArgumentTypeError(f"{path} is no regular file (a device or a pipe): name a source file")
    if path.suffix.lower() == ".ipynb":  # its JSON was typed as Python, and the session recorded
        raise argparse.ArgumentTypeError(f"{path} is a notebook, and this types a source file: `tact complete "
                                         f"{path}:CELL:LINE` completes a cell, `tact bench serve --layout notebook` "
                                         "types files as cells")
    try:
        path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise argparse.ArgumentTypeError(f"{path} is not UTF-8 text (a binary file?)") from None
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"cannot read {path}: {exc.strerror}") from None
    return path


def existing_database(text: str) -> Path:
    """An argparse type for a telemetry database to read: a file that exists. A misspelt one was refused on stderr
    and the run went on without it, its figures said as if from every source."""
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"no telemetry database at {path}: it "
                                         f"{'is a directory' if path.is_dir() else 'does not exist'}")
    return path


def database_path(text: str) -> Path:
    """An argparse type for a telemetry database to record into: a new file or an SQLite one. The server opens any
    other path without telemetry, so a run would record nothing and still succeed."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{path} is a directory: name a database file in it, e.g. "
                                         f"{path / 'telemetry.sqlite3'}")
    for parent in path.parents:  # the first that exists must be a directory the folders and file can be made in
        if parent.exists():
            if not parent.is_dir():
                raise argparse.ArgumentTypeError(f"{parent} is a file, so no database can be made under it: name a "
                                                 "database file in a directory")
            break
    if path.is_file() and path.stat().st_size:
        try:
            with open(path, "rb") as f:
                header = f.read(16)
        except OSError as exc:
            raise argparse.ArgumentTypeError(f"cannot read {path}: {exc.strerror}") from None
        if header != b"SQLite format 3\x00":
            raise argparse.ArgumentTypeError(f"{path} is not an SQLite database: name a new file or a Tact database")
    return path


def _add_serve(sub) -> None:
    p = sub.add_parser("serve", help="run the language server (stdio by default)")
    p.add_argument("--tcp", type=_port, metavar="PORT",
                   help="listen on TCP instead of stdio; one client: the server exits when it disconnects")
    p.add_argument("--host", default=None, help="address to bind with --tcp (default 127.0.0.1)")
    p.add_argument("--log-file", help="log to this file instead of stderr")
    p.add_argument("--model", help="model directory (default: the shipped model)")
    p.add_argument("--database", type=database_path,
                   help="telemetry database, over the tact.telemetryDatabase setting (default: that setting, else "
                        "telemetry.sqlite3 in the user data directory)")
    p.add_argument("--stdio", action="store_true", help="accepted for editors that pass it; stdio is the default")


def _prompt_format(name: str) -> str:
    """--prompt-format: a name of models.next_edit.prompt.PROMPT_FORMATS (imported only when the flag is read)."""
    from models.next_edit.prompt import PROMPT_FORMATS

    if name not in PROMPT_FORMATS:
        raise argparse.ArgumentTypeError(f"unknown prompt format {name!r} (known: {', '.join(PROMPT_FORMATS)})")
    return name


# What the train extra brings (pyproject.toml): a command that needs one of them says so where it is not installed.
TRAIN_EXTRA_MODULES = ("torch", "transformers", "onnx", "sklearn", "matplotlib", "tqdm")
TRAIN_EXTRA_ADVICE = "install the train extra: pip install 'tact-lsp[train]' (scripts/setup does)"


def _missing_extra(exc: BaseException) -> str | None:
    """The train extra's module whose absence ``exc`` is, if it is one."""
    name = (getattr(exc, "name", None) or "").partition(".")[0]
    return name if isinstance(exc, ModuleNotFoundError) and name in TRAIN_EXTRA_MODULES else None


def _model_size(name: str) -> str:
    """--size: a name of models.train_lm.SIZES (imported, with torch, only when the flag is read)."""
    try:
        from models.train_lm import SIZES
    except ModuleNotFoundError as exc:
        if _missing_extra(exc) is None:
            raise
        raise argparse.ArgumentTypeError(f"training needs {exc.name}: {TRAIN_EXTRA_ADVICE}") from None

    if name not in SIZES:
        raise argparse.ArgumentTypeError(f"unknown size {name!r} (known: {', '.join(SIZES)})")
    return name


LOADER_WORKERS_HELP = ("processes that build training batches beside the loop (default: none on a CPU, else up to 8; "
                       "their order is not deterministic)")
DEVICE_HELP = "cpu, cuda, cuda:N or mps (checked before training)"


def _device(name: str) -> str:
    """--device of the training commands: cpu, cuda, cuda:N or mps. Whether this machine has it is checked before
    training (models.train_lm.check_device), which needs torch."""
    kind, colon, index = name.partition(":")
    if not (name in ("cpu", "cuda", "mps") or (kind == "cuda" and colon and index.isdigit())):
        raise argparse.ArgumentTypeError(f"unknown device {name!r} (known: cpu, cuda, cuda:N, mps)")
    return name


def output_dir(text: str) -> Path:
    """An argparse type for a directory a command writes into: refused at parse time when it, or a folder above it,
    is a file, or cannot be written in, rather than when the results are saved after the work."""
    import os

    path = Path(text)
    for existing in (path, *path.parents):
        if existing.exists():
            if not existing.is_dir():
                raise argparse.ArgumentTypeError(f"{existing} is a file, not a directory: name a directory to write "
                                                  "the results into")
            if not os.access(existing, os.W_OK | os.X_OK):
                raise argparse.ArgumentTypeError(f"cannot write in {existing}: name a directory you can write in")
            break
    return path


def _code_dir(text: str) -> Path:
    """`tact train corpus --dir`: an existing directory (one that is not would add nothing, silently)."""
    path = Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{path} is not a directory of code" if path.exists() else
                                         f"{path} does not exist: name a directory of Python code")
    return path


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="build corpora and train models (needs the [train] extra)")
    tsub = p.add_subparsers(dest="target", required=True)
    c = tsub.add_parser("corpus", help="build the training corpus from local code")
    c.add_argument("--out", type=output_dir, default=REPO_ROOT / "data" / "corpus")
    c.add_argument("--dir", type=_code_dir, action="append", default=[], help="extra directories of code")
    c.add_argument("--max-mb", type=positive_float, default=80.0,
                   help="millions of characters the training split keeps (the held-out and calibration splits are "
                        "kept whole, up to 16 each)")
    c.add_argument("--seed", type=seed, default=0)
    lm = tsub.add_parser("lm", help="train the early-exit code model and export it for serving")
    lm.add_argument("--corpus", type=Path, default=REPO_ROOT / "data" / "corpus")
    lm.add_argument("--out", type=output_dir, default=REPO_ROOT / "models" / "default")
    lm.add_argument("--size", type=_model_size, default="small",
                    help="tiny, small (CPU default), medium, base or large (accelerator)")
    lm.add_argument("--minutes", type=positive_float, default=60.0,
                    help="wall-clock budget for the training steps, the controller fit and the save; the n-gram "
                         "table (--ngram-model-tokens) is built after it")
    lm.add_argument("--batch-size", type=positive_int, default=8)
    lm.add_argument("--lr", type=positive_float, default=3e-3)
    lm.add_argument("--seed", type=seed, default=0)
    lm.add_argument("--threads", type=positive_int, default=None)
    lm.add_argument("--device", type=_device, default="cpu", help=DEVICE_HELP)
    lm.add_argument("--loader-workers", type=non_negative_int, default=None, metavar="N",
                    help=LOADER_WORKERS_HELP)
    lm.add_argument("--resume", type=Path, help="continue training the model in this directory (its size and tokenizer)")
    lm.add_argument("--seq-len", type=int_range(16, 8192), default=None,
                    help="training window in tokens, which is also the prompt budget when serving (default: the "
                         "resumed model's, else 512; a new model gets room for twice this many positions)")
    lm.add_argument("--ngram-model-tokens", type=non_negative_int, default=1_000_000,
                    help="tokens the trained model reads for the n-gram draft table's own continuations (`tact train "
                         "ngram-drafts --model-tokens`, whose 8M took 45 minutes on a 2-core CPU; 0: the text's alone)")
    lm.add_argument("--no-export", dest="export", action="store_false",
                    help="skip the ONNX export (a training machine without onnx): run `tact export DIR` later")
    ng = tsub.add_parser("ngram-drafts", help="build the n-gram table that drafts for speculative decoding "
                                             "(also the last step of `tact train lm`)")
    ng.add_argument("--model", type=Path, default=REPO_ROOT / "models" / "default")
    ng.add_argument("--corpus", type=Path, default=REPO_ROOT / "data" / "corpus")
    ng.add_argument("--model-tokens", type=non_negative_int, default=8_000_000,
                    help="tokens of the training split the model reads to draft its own continuations (the default "
                         "took 45 minutes on a 2-core CPU; 0: the text's continuations alone)")
    ng.add_argument("--device", type=_device, default="cpu", help=DEVICE_HELP)
    ng.add_argument("--batch-size", type=positive_int, default=8, help="windows the model reads at once")
    ng.add_argument("--threads", type=positive_int, default=None)
    ng.add_argument("--seed", type=seed, default=0)
    dh = tsub.add_parser("draft-head", help="train the draft head that drafts for speculative decoding where prompt "
                                           "lookup and the n-gram table do not (models/draft_head.py)")
    dh.add_argument("--model", type=Path, default=REPO_ROOT / "models" / "default")
    dh.add_argument("--corpus", type=Path, default=REPO_ROOT / "data" / "corpus")
    dh.add_argument("--minutes", type=positive_float, default=10.0,
                    help="wall-clock budget, the model's passes included")
    dh.add_argument("--batch-size", type=positive_int, default=8)
    dh.add_argument("--device", type=_device, default="cpu", help=DEVICE_HELP)
    dh.add_argument("--loader-workers", type=non_negative_int, default=None, metavar="N",
                    help=LOADER_WORKERS_HELP)
    dh.add_argument("--threads", type=positive_int, default=None)
    dh.add_argument("--seed", type=seed, default=0)
    ct = tsub.add_parser("controller", help="refit the Stop&Exit controller of a model directory")
    ct.add_argument("--model", type=Path, default=REPO_ROOT / "models" / "default")
    ct.add_argument("--corpus", type=Path, default=REPO_ROOT / "data" / "corpus")
    ct.add_argument("--batches", type=positive_int, default=24, help="calibration batches of 8 sequences")
    ct.add_argument("--exit-stride", type=int, choices=range(1, 13), default=None, metavar="N",
                    help="of the exits that agree with the final layer often enough, keep every N-th open (default 2)")
    only = ct.add_mutually_exclusive_group()
    only.add_argument("--stop-only", dest="only", action="store_const", const="stop",
                      help="keep the Stop&Exit classifiers; fit only the stop calibration (models/exits.py)")
    only.add_argument("--exit-only", dest="only", action="store_const", const="exit",
                      help="keep the Stop&Exit classifiers; fit only the exit calibration (models/exits.py)")
    only.add_argument("--harm-only", dest="only", action="store_const", const="harm",
                      help="keep the controller, both calibrations and the KV fill; fit only the harm calibration of "
                           "the open exits (P(harm), read by the harm exit rule; models/exits.py)")
    only.add_argument("--kv-fill-only", dest="only", action="store_const", const="kv_fill",
                      help="keep the controller and both calibrations; fit only the learned KV fill of the open exits")
    ac = tsub.add_parser("acceptance", help="train the CDHF acceptance model (stage 1 and stage 2)")
    _acceptance_args(ac)
    ac.add_argument("--out", type=output_dir, default=None,
                    help="directory for the model (default: the shipped one; a run with --limit or --no-score must "
                         "name another)")
    ne = tsub.add_parser("next-edit-data", help="next-edit examples: real changes between releases, synthetic chains")
    ne.add_argument("--real", action="store_true", help="only the real changes (pip downloads of sdists)")
    ne.add_argument("--synthetic", action="store_true", help="only the synthetic chains from the corpus")
    ne.add_argument("--out", type=output_dir, default=None,
                    help="directory for the examples (default: data/next_edit; a run with --limit must name another)")
    ne.add_argument("--corpus", type=Path, default=REPO_ROOT / "data" / "corpus")
    ne.add_argument("--limit", type=positive_int, help="synthetic: at most N corpus files per split")
    ne.add_argument("--telemetry", action="append", metavar="DB", type=existing_database,
                    help="only: the edits of a Tact telemetry database as examples, in the order they were made "
                         "(telemetry_train.jsonl; repeatable)")
    ne.add_argument("--seed", type=seed, default=0)
    nr = tsub.add_parser("next-edit-ranker", help="fit the edit ranker (picks the next edit among the history's "
                         "generalisations) on real and synthetic next-edit examples")
    nr.add_argument("--data", type=Path, default=REPO_ROOT / "data" / "next_edit")
    nr.add_argument("--out", type=output_dir, default=None,
                    help="directory for the ranker (default: the shipped one; a run with --limit must name another)")
    nr.add_argument("--synthetic-sample", type=non_negative_int, default=3000,
                    help="synthetic chains drawn at random (seeded)")
    nr.add_argument("--limit", type=positive_int, help="a quick run on N real (and at most N synthetic) examples")
    nr.add_argument("--seed", type=seed, default=0)
    nm = tsub.add_parser("next-edit", help="fine-tune the code model into the next-edit model and export it")
    nm.add_argument("--data", type=Path, default=REPO_ROOT / "data" / "next_edit")
    nm.add_argument("--init", type=Path, default=REPO_ROOT / "models" / "default", help="code model to start from")
    nm.add_argument("--out", type=output_dir, default=REPO_ROOT / "models" / "next_edit" / "default")
    nm.add_argument("--minutes", type=positive_float, default=25.0, help="wall-clock budget for the whole job")
    nm.add_argument("--lr", type=positive_float, default=1e-3)
    nm.add_argument("--batch-tokens", type=positive_int, default=4096, help="tokens per step (more on an accelerator)")
    nm.add_argument("--edit-weight", type=bounded_float(0, None), default=1.0,
                    help="loss weight of the rewrite tokens on the lines that change (the copied ones weigh 1)")
    nm.add_argument("--real-share", type=bounded_float(0, 1), default=0.35,
                    help="share of real release changes in each batch, 0 to 1")
    nm.add_argument("--prompt-format", type=_prompt_format, default="rewrite",
                    help="rewrite the window around the cursor, or write only the next edit as one more history block")
    nm.add_argument("--seed", type=seed, default=0)
    nm.add_argument("--threads", type=positive_int, default=None)
    nm.add_argument("--device", type=_device, default="cpu", help=DEVICE_HELP)
    nm.add_argument("--no-export", dest="export", action="store_false",
                    help="skip the ONNX export (a training machine without onnx): run `tact export DIR` later")


def _can_export(args) -> None:
    """Before a training run that ends by exporting: onnx must be importable, or the run trained for its minutes,
    saved over its --out, and only then failed (a training machine has no onnx: pass --no-export there)."""
    import importlib.util

    if args.export and importlib.util.find_spec("onnx") is None:
        raise ModuleNotFoundError("onnx is needed to export the model after training (or pass --no-export and run "
                                  "`tact export DIR` where onnx is installed)", name="onnx")


def _export_trained(args) -> None:
    """The ONNX graphs for serving, after `tact train lm` or `tact train next-edit` (unless --no-export)."""
    if args.export:
        from models.export import export_model_dir

        export_model_dir(args.out)
    else:
        print(f"not exported (--no-export): run `tact export {args.out}` where onnx is installed", file=sys.stderr)


def bounded_float(low: float | None, high: float | None, finite: bool = False):
    """An argparse type: a number in [low, high] (None: open at that end); with ``finite``, not an infinity."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if finite and value in (math.inf, -math.inf):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
        if value != value or (low is not None and value < low) or (high is not None and value > high):
            bounds = f"lie in {low:g} to {high:g}" if low is not None and high is not None else \
                (f"be {low:g} or more" if low is not None else f"be {high:g} or less")
            raise argparse.ArgumentTypeError(f"must {bounds}, got {text}")
        return value
    return parse


def _setting_range(name: str):
    """An argparse type for a flag that stands for the setting ``name``: its range (lsp_server.config.BOUNDS)."""
    from lsp_server.config import BOUNDS

    return bounded_float(*BOUNDS[name])


def _acceptance_args(p) -> None:
    """Shared by `tact train acceptance` and `tact eval acceptance`."""
    p.add_argument("--cups", action="append", help="a CUPS-format JSON-lines file (repeatable; default: the CUPS "
                   "study data next to the repository, unless --telemetry is given)")
    p.add_argument("--telemetry", action="append", type=existing_database,
                   help="a Tact telemetry database, real or simulated (repeatable)")
    p.add_argument("--model", type=Path, default=REPO_ROOT / "models" / "default",
                   help="code model that scores the CUPS suggestions (default models/default)")
    p.add_argument("--no-score", action="store_true", help="do not score suggestions (model-based features left out)")
    p.add_argument("--policy", choices=DECODING_POLICIES, default=None,
                   help="decoding policy the served suggestions will come from: only `dynamic` gives the layers-used "
                        "feature, so only then is it scored (default: settings)")
    p.add_argument("--cache", type=output_dir, default=REPO_ROOT / "data" / "acceptance",
                   help="where suggestion scores are cached")
    p.add_argument("--kind", default="auto", choices=("auto", "logistic", "trees"), help="classifier of both stages")
    p.add_argument("--limit", type=positive_int, help="a quick run on N samples per source")
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--threads", type=positive_int, default=2, help="onnxruntime threads for scoring (default 2)")
    p.add_argument("--json", action="store_true", help="print the figures as one JSON object")


def _add_eval(sub) -> None:
    p = sub.add_parser("eval", help="evaluations (leave-programmer-out)")
    esub = p.add_subparsers(dest="target", required=True)
    ac = esub.add_parser("acceptance", help="the CDHF acceptance model: AUC, hidden, lost, precision, calls skipped")
    _acceptance_args(ac)
    # the thresholds' rule: only eval chooses thresholds (the server chooses its own from the settings)
    ac.add_argument("--lambda", dest="lam", type=_setting_range("acceptance_lambda"), default=None,
                    help="weight of saved model calls against hidden suggestions, 0 to 1 (default: settings)")
    ac.add_argument("--precision-floor", type=_setting_range("acceptance_precision_floor"), default=None,
                    help="least share of hidden suggestions that were really rejected, 0 to 1 (default: settings)")
    ac.add_argument("--acceptance-model", type=Path, help="evaluate this trained model as it is (its thresholds from "
                    "its own calibration) instead of leave-programmer-out retraining")
    ac.add_argument("--inner-folds", type=int_range(2), default=5,
                    help="group folds that choose each programmer's thresholds (2 or more)")
    ne = esub.add_parser("next-edit", help="next-edit prediction: exact, position, partial, no-op, reversal, p50")
    ne.add_argument("--data", type=Path, help="a directory of next-edit examples (its *_heldout.jsonl files; default: "
                                              "data/next_edit, as `tact train next-edit-data` writes it, unless "
                                              "--pair is given)")
    ne.add_argument("--pair", nargs=2, type=Path, metavar=("BEFORE", "AFTER"),
                    help="the changes between two versions of a project laid side by side")
    ne.add_argument("--limit", type=positive_int, help="a quick run on N examples per set")
    ne.add_argument("--bottom-up", action="store_true",
                    help="also the real held-out changes (rebuilt from DIR/src) and --pair's with their hunks "
                         "replayed bottom to top: the data sets replay them top to bottom")
    ne.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    model = ne.add_mutually_exclusive_group()
    model.add_argument("--model", type=Path, help="next-edit model directory (default: the shipped one)")
    model.add_argument("--no-model", action="store_true", help="the baseline and the edit ranker alone (a quick run)")
    ne.add_argument("--threshold", type=_setting_range("next_edit_threshold"), default=DEFAULTS.next_edit_threshold,
                    help="confidence below which the model's prediction counts as none, 0 to 1 (default: the "
                         "server's)")
    ne.add_argument("--ranker", type=Path, help="edit ranker directory (default: the shipped one)")
    ne.add_argument("--copy-margin", type=bounded_float(0, None), default=None,
                    help="decoding: keep a copied window token within this log-probability of the best "
                         "(default: the model's recorded choice; 0 is greedy)")


def _acceptance(args) -> int:
    from lsp_server.config import DEFAULTS
    from models.acceptance.cli import main_cli

    if args.command == "eval":
        args.lam = DEFAULTS.acceptance_lambda if args.lam is None else args.lam
        args.precision_floor = DEFAULTS.acceptance_precision_floor if args.precision_floor is None else \
            args.precision_floor
    args.exit_threshold, args.stop_threshold = DEFAULTS.exit_threshold, DEFAULTS.stop_threshold
    args.exit_rule = DEFAULTS.exit_rule
    args.token_healing = DEFAULTS.token_healing
    args.policy = args.policy or DEFAULTS.decoding_policy
    args.default_cups = REPO_ROOT.parent / "shared" / "datasets" / "cups" / "cups.jsonl"
    return main_cli(args)


def _add_bench(sub) -> None:
    p = sub.add_parser("bench", help="benchmarks (speed and quality, on held-out code)")
    bsub = p.add_subparsers(dest="target", required=True)
    _add_bench_serve(bsub)
    _add_bench_replay(bsub)
    _add_bench_notebook(bsub)
    ee = bsub.add_parser("early-exit", help="decoding policies (full, dynamic, speculative), exits and Stop")
    ee.add_argument("--model", type=Path, default=REPO_ROOT / "models" / "default", help="model directory")
    ee.add_argument("--corpus", type=Path, default=REPO_ROOT / "data" / "corpus", help="corpus (its heldout split)")
    ee.add_argument("--source", type=Path, help="any directory of code instead of the held-out split")
    ee.add_argument("--split", choices=("heldout", "calib"), default=None,
                    help="corpus split to sample (default heldout; calib: where thresholds are chosen; not with "
                         "--source)")
    ee.add_argument("--limit", type=positive_int, default=200, help="number of samples (default 200)")
    ee.add_argument("--seed", type=seed, default=0)
    ee.add_argument("--threads", type=positive_int, default=2, help="onnxruntime intra-op threads (default 2)")
    ee.add_argument("--json", action="store_true", help="print every figure as one JSON object")
    ee.add_argument("--stop-threshold", type=_setting_range("stop_threshold"),
                    help="controller P(stop) that ends a suggestion before a token (default: settings)")
    ee.add_argument("--stop-inside", action=argparse.BooleanOptionalAction, default=None,
                    help="Stop may also cut a suggestion after its first token (default: settings)")
    ee.add_argument("--stop-inside-threshold", type=_setting_range("stop_inside_threshold"),
                    help="controller P(stop) that cuts a suggestion after its first token (default: settings)")
    ee.add_argument("--exit-threshold", type=_setting_range("exit_threshold"),
                    help="controller P(exit) for the dynamic policy (default: settings)")
    ee.add_argument("--exit-lookup-threshold", type=_setting_range("exit_lookup_threshold"),
                    help="dynamic: the exit score (--exit-rule) enough where the exit's token is prompt lookup's guess; negative: lookup "
                         "not consulted (default: settings)")
    ee.add_argument("--exit-lookup-veto", action=argparse.BooleanOptionalAction, default=None,
                    help="dynamic: an exit whose token differs from the guess never leaves early (with "
                         "--exit-lookup-threshold; default: settings)")
    ee.add_argument("--exit-last-prompt-token", action="store_true",
                    help="dynamic: the prompt's last token, run alone after the shared prompt pass, may leave early "
                         "too (off in serving: docs/code-model.md)")
    ee.add_argument("--draft-in-prompt-pass", action=argparse.BooleanOptionalAction,
                    help="speculative: verify a draft that follows the prompt (prompt lookup, the n-gram table) in the "
                         "prompt's own pass (default on; --no-draft-in-prompt-pass: drafting starts after the first "
                         "token)")
    ee.add_argument("--exit-sweep", action=argparse.BooleanOptionalAction, default=True,
                    help="the dynamic policy over a sweep of exit settings (default on; it is about two thirds of the "
                         "run, so off suits a large --limit that judges Stop)")
    ee.add_argument("--exit-sweep-thresholds", type=_thresholds, metavar="T,T,...",
                    help="sweep only these plain exit thresholds (e.g. 0.9,0.95), so that a large --limit can "
                         "compare a few (default: the whole sweep)")
    ee.add_argument("--exit-rule", choices=EXIT_RULES,
                    help="dynamic: how P(exit) and P(stop) decide an exit: agreement (P(exit) reaches the threshold) or "
                         "harm (1 - (1 - P(exit)) (1 - P(stop)) does: a token the last layer likely gets wrong leaves "
                         "too) (default: settings)")
    ee.add_argument("--exit-sweep-rules", type=_choice_list(EXIT_RULES), metavar="R,R",
                    help="sweep the plain thresholds under each of these exit rules (e.g. agreement,harm), so one run "
                         "compares them (default: the configured rule)")
    ee.add_argument("--exit-pick-margin", type=bounded_float(0, 1), metavar="M",
                    help="the exit sweep's pick: the most layers skipped within the 1%% ROUGE-L loss target less M "
                         "(default 0.005: held-out code has lost more than calibration code at earlier picks)")
    ee.add_argument("--int8", action="store_true",
                    help="also decode every policy with 8-bit weights, interleaved, and compare them with fp32 `full`")
    ee.add_argument("--draft-layers", type=non_negative_int,
                    help="layers that draft for the speculative policy (default: settings)")
    ee.add_argument("--draft-tokens", type=int_range(1, 256),
                    help="tokens drafted per verification (default: settings)")
    ee.add_argument("--ngram-drafts", action=argparse.BooleanOptionalAction,
                    help="speculative drafts from the model's n-gram table where prompt lookup has little, when the "
                         "model directory has one (default: settings)")
    ee.add_argument("--draft-head", action=argparse.BooleanOptionalAction,
                    help="speculative drafts from the model directory's trained draft head where prompt lookup and the "
                         "n-gram table have none, when it has one (default on)")
    ee.add_argument("--head-tokens", type=positive_int, help="tokens the draft head drafts, chained (default 2)")
    ee.add_argument("--exit-head-weights", choices=DECODE_WEIGHTS,
                    help="the weights an early exit's head reads in a decoding step (dynamic's exit decisions, layer "
                         "drafts; the last layer's head stays fp32; default int8)")
    ee.add_argument("--stop-repeats", type=_stop_repeats,
                    help="a suggestion repeating a unit this many times in a row ends after one copy; 0: loops run to "
                         "the token limit, as before this rule (default: settings)")
    ee.add_argument("--token-healing", type=_setting_range("token_healing"), metavar="N",
                    help="tokens before the cursor the suggestion writes again (token healing); 0: none, as before it "
                         "(default: settings)")


def _stop_repeats(text: str) -> int:
    """--stop-repeats for argparse: what DecodeOptions takes (0, or 2 copies and more)."""
    from models.runtime import DecodeOptions

    try:
        return DecodeOptions(stop_repeats=int(text)).stop_repeats
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _thresholds(text: str) -> list[float]:
    """A comma-separated list of probabilities, for argparse."""
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of numbers: {text!r}") from None
    if not values or not all(0 <= v <= 1 for v in values):
        raise argparse.ArgumentTypeError(f"thresholds must lie in [0, 1]: {text!r}")
    return values


def _bench(args) -> int:
    if args.target == "early-exit":
        from lsp_server.config import DEFAULTS
        from models.bench_early_exit import EXIT_PICK_MARGIN, main_cli
        from models.runtime import DecodeOptions

        ignored = [flag for flag, given in (("--exit-sweep-thresholds", args.exit_sweep_thresholds),
                                            ("--exit-sweep-rules", args.exit_sweep_rules),
                                            ("--exit-pick-margin", args.exit_pick_margin)) if given is not None]
        if ignored and not args.exit_sweep:  # taken and ignored: the run said nothing of them
            print(f"tact bench early-exit: error: {', '.join(ignored)} shape{'s' * (len(ignored) == 1)} the exit "
                  "sweep, which --no-exit-sweep leaves out", file=sys.stderr)
            return 2
        if args.source is not None and args.split is not None:
            print("tact bench early-exit: error: --split chooses a split of --corpus; --source samples the whole "
                  "directory instead", file=sys.stderr)
            return 2
        args.split = args.split or "heldout"
        veto_asked = args.exit_lookup_veto is True

        for name in ("stop_threshold", "stop_inside", "stop_inside_threshold", "exit_threshold", "exit_rule",
                     "exit_lookup_threshold", "exit_lookup_veto", "draft_layers", "draft_tokens", "stop_repeats", "ngram_drafts",
                     "token_healing"):
            if getattr(args, name) is None:
                setattr(args, name, getattr(DEFAULTS, name))
        for name in ("draft_in_prompt_pass", "draft_head", "head_tokens", "exit_head_weights"):  # decoder options, not settings
            if getattr(args, name) is None:
                setattr(args, name, getattr(DecodeOptions, name))
        if args.exit_pick_margin is None:
            args.exit_pick_margin = EXIT_PICK_MARGIN
        if args.exit_lookup_threshold < 0:
            args.exit_lookup_threshold = None
        if veto_asked and args.exit_lookup_threshold is None:  # it ran, changing nothing
            print("tact bench early-exit: error: --exit-lookup-veto vetoes by prompt lookup's guess, which only "
                  "--exit-lookup-threshold (0 or more) consults", file=sys.stderr)
            return 2
        return main_cli(args)
    if args.target == "notebook":
        from lsp_server.bench_notebook import main_cli as notebook_cli

        if args.source is None and args.corpus is None:
            args.corpus = _default_corpus()
        return notebook_cli(args)
    raise SystemExit(f"tact bench: unknown target {args.target}")


def _choice_list(choices: tuple[str, ...]):
    """An argparse type: one of ``choices``, or several separated by commas (--weights, --exit-sweep-rules)."""
    def parse(text: str) -> list[str]:
        picked = [c.strip() for c in text.split(",") if c.strip()]
        if not picked or any(c not in choices for c in picked):
            raise argparse.ArgumentTypeError(f"{text!r}: choose from {', '.join(choices)} (comma-separated)")
        return picked
    return parse


DEFAULT_CORPUS = REPO_ROOT / "data" / "corpus"  # where `tact train corpus` writes by default
CORPUS_HELP = ("a corpus directory (`tact train corpus --out DIR`) whose held-out files are typed (default: data/corpus "
               "where it was built, else the built-in demo sample, as the report says)")


def _default_corpus() -> Path | None:
    """--corpus left out: data/corpus where `tact train corpus` built it, else none (the benches type the demo
    sample and say so). A --corpus given that holds no held-out split is an error (lsp_server.bench_serve)."""
    return DEFAULT_CORPUS if (DEFAULT_CORPUS / "heldout.jsonl").is_file() else None


def _keystrokes_per_s(text: str) -> float:
    """--typing-cps: 0 (as fast as the server answers) or more; a negative rate ran and reported itself."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value < float("inf"):  # NaN too
        raise argparse.ArgumentTypeError(f"must be 0 (as fast as the server answers) or more, got {text}")
    return value


def _add_bench_serve(bsub) -> None:
    p = bsub.add_parser("serve", help="cold start, inline-completion latency and RSS over real LSP stdio")
    p.add_argument("--model", help="model directory (default: the shipped model)")
    p.add_argument("--policy", choices=DECODING_POLICIES, default=None,
                   help="decoding policy (default: the server default)")
    p.add_argument("--limit", type=positive_int, default=300, help="number of inline completion requests")
    p.add_argument("--source", type=Path, help="type files from this directory instead of the held-out corpus")
    p.add_argument("--corpus", type=Path, help=CORPUS_HELP)
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--no-gate", action="store_true", help="turn the acceptance gate off (model latency alone)")
    p.add_argument("--weights", type=_choice_list(DECODE_WEIGHTS), default=[DEFAULTS.decode_weights], metavar="|".join(DECODE_WEIGHTS),
                   help="tact.decodeWeights for the server; a comma-separated list (e.g. fp32,int8) runs one server "
                        "each on the same keystrokes, one at a time (A B then B A, half each), and reports their "
                        "ratios to the first")
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                   help="a setting every server runs with (camelCase name); repeatable")
    p.add_argument("--compare", metavar="KEY=V1,V2,...",
                   help="one setting's values instead of several weights: one server each on the same keystrokes, "
                        "taking turns as with --weights, and ratios to the first (e.g. stopRepeats=3,0)")
    # the choices are bench_serve.LAYOUTS (not imported here: subcommands import what they need when they run)
    p.add_argument("--layout", dest="layouts", type=_choice_list(("file", "notebook")), default=["file"],
                   metavar="file|notebook",
                   help="type the files as files, or as Jupyter notebooks of their top-level parts (each cell's "
                        "prompt puts the cells above first); file,notebook runs one server each on the same "
                        "keystrokes, taking turns as with --weights, and reports the notebook's ratios to the files'")
    p.add_argument("--typing-cps", type=_keystrokes_per_s, default=None,
                   help="keystrokes per second, as a person types (the gate reads typing speed); 0: as fast as the "
                        "server answers (default: the simulated programmer's, 5)")
    p.add_argument("--keep-telemetry", action="store_true",
                   help="keep the servers' telemetry databases and say where (default: a temporary directory, "
                        "removed when the run ends)")
    p.add_argument("--json", action="store_true", help="print the figures as one JSON object")


def _add_bench_notebook(bsub) -> None:
    p = bsub.add_parser("notebook", help="suggestions in notebook cells with the cells above in the prompt and "
                                         "without them (quality, prompt size, speed)")
    p.add_argument("--model", type=Path, default=REPO_ROOT / "models" / "default", help="model directory")
    p.add_argument("--source", type=Path, help="cut the Python files of this directory into cells (required where "
                                               "there is no held-out corpus)")
    p.add_argument("--corpus", type=Path, help="a corpus directory whose held-out files are cut into cells "
                                               "(default: data/corpus where `tact train corpus` built it)")
    p.add_argument("--limit", type=positive_int, default=200, help="number of samples (default 200)")
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--threads", type=positive_int, default=2, help="onnxruntime intra-op threads (default 2)")
    p.add_argument("--json", action="store_true", help="print every figure as one JSON object")


def _add_bench_replay(bsub) -> None:
    p = bsub.add_parser("replay", help="accelerated replay time of a recorded session, and whether two replays agree")
    p.add_argument("--database", type=Path, help="replay this recording (default: simulate one on held-out files)")
    p.add_argument("--session", help="with --database: only this session")
    # the recording's flags default to None: with --database, which records nothing, they are refused
    p.add_argument("--minutes", type=positive_float, default=None,
                   help="simulated typing time to record (default 10)")
    p.add_argument("--model", help="model directory (default: the shipped model)")
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                   help="a setting the replays override (camelCase name); repeatable")
    p.add_argument("--source", type=Path, help="type files from this directory instead of the held-out corpus")
    p.add_argument("--corpus", type=Path, help=CORPUS_HELP)
    p.add_argument("--seed", type=seed, default=None, help="the simulated programmer's (default 0)")
    p.add_argument("--limit", type=positive_int,
                   help="a quick run: record at most N keystrokes; with --database, replay at most N requests")
    p.add_argument("--json", action="store_true", help="print the figures as one JSON object")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tact", description="Tact: IDE assistant language server")
    parser.add_argument("--version", action="version", version=f"tact-lsp {lsp_server.__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_serve(sub)
    _add_train(sub)
    _add_bench(sub)
    _add_eval(sub)
    one = sub.add_parser("complete", help="one suggestion at FILE:LINE[:COL] (1-based), with latency and decisions")
    one.add_argument("location", metavar="FILE:LINE[:COL]",
                     help="1-based line and column; without the column (FILE:LINE or FILE:LINE:), the end of the line; "
                          "in a Jupyter notebook NOTEBOOK.ipynb:CELL:LINE[:COL], every cell counted from 1 at the top, "
                          "markdown cells too (not the In [N] execution count)")
    one.add_argument("--model", help="model directory (default: the shipped model)")
    one.add_argument("--policy", choices=DECODING_POLICIES, help="decoding policy (default: the server default)")
    one.add_argument("--multiline", action="store_true",
                     help="a suggestion of several lines where the code allows (tact.multiline; default: one line)")
    demo = sub.add_parser("demo", help="type a sample file into a real server and print each suggestion")
    demo.add_argument("--model", help="model directory (default: the shipped model)")
    demo.add_argument("--database", type=database_path, help="telemetry database (default: demo.sqlite3 in the user "
                      "data directory, apart from real sessions)")
    demo.add_argument("--policy", choices=DECODING_POLICIES, default=None,
                      help="decoding policy (default: the server default)")
    demo.add_argument("--file", type=text_file, help="a Python file to type instead of the built-in sample")
    demo.add_argument("--start-line", type=non_negative_int,
                      help="first line to type (0-based; default a third into the file)")
    demo.add_argument("--lines", type=positive_int, default=6, help="how many lines to type")
    ex = sub.add_parser("export", help="export a model directory to ONNX graphs for serving")
    ex.add_argument("model_dir", type=Path)
    ex.add_argument("--half", action="store_true",
                    help="first store the weights in fp16 (half the size; the fp32 copy the graphs read is rebuilt "
                         "at load and not shipped)")
    ex.add_argument("--no-graphs", dest="graphs", action="store_false",
                    help="write no ONNX graphs (with --half: only store the weights, where onnx is not installed)")
    from lsp_server import telemetry_cli  # replay, simulate, report (argparse only; the work is imported when run)

    telemetry_cli.add_parsers(sub)
    args = parser.parse_args(argv)
    command = " ".join(filter(None, (args.command, getattr(args, "target", None))))
    try:
        return _run(args)
    except KeyboardInterrupt:  # Ctrl-C in a long run: its own line, not a traceback
        print(f"tact {command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError as exc:
        if not _stdout_gone():  # a pipe of the command's own (a server that died): said as any failure is
            print(f"tact {command}: error: {exc}", file=sys.stderr)
            return 2
        # the reader of our output left (`| head`): nothing more to say, to it or anyone
        sys.stdout = open(os.devnull, "w")  # the interpreter's own flush at exit would fail again
        return 141
    except Exception as exc:
        if (module := _missing_extra(exc)) is not None:  # a serving-only install: one line, not a traceback
            print(f"tact {command}: error: needs {module}: {TRAIN_EXTRA_ADVICE}", file=sys.stderr)
            return 2
        if not is_input_error(exc):
            raise
        if getattr(exc, "chosen", False):  # a ModelDirError about the directory named: the command's flag names another
            exc = exc.advised(_model_advice(args))
        print(f"tact {command}: error: {exc}", file=sys.stderr)
        return 2


def _stdout_gone() -> bool:
    """Whether standard output is a pipe whose reader has closed it (poll says POLLERR on its write end)."""
    import select

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll here, or no file descriptor (a test's capture)
        return False


def _model_advice(args) -> str:
    """How to name another model directory on this command line (the server's advice names its setting)."""
    from models.model_dir import FLAG_ADVICE

    for flag in ("resume", "init"):
        if getattr(args, flag, None) is not None and getattr(args, "model", None) is None:
            return f"pass --{flag} DIR with a model directory, or train one with `tact train lm`"
    return FLAG_ADVICE


def _run(args) -> int:
    """Run the parsed command; bad input raises one of INPUT_ERRORS, which main() prints."""
    from lsp_server import telemetry_cli

    if args.command in telemetry_cli.COMMANDS:
        return telemetry_cli.run(args)
    if args.command == "serve":
        if args.tcp is None and args.host is not None or args.tcp is not None and args.stdio:
            # taken and ignored: the server listened on stdio, or on TCP though the editor spoke on stdio
            print("tact serve: error: " + ("--host is the address of --tcp" if args.tcp is None else
                                           "--stdio and --tcp: choose one"), file=sys.stderr)
            return 2
        args.host = args.host or "127.0.0.1"
        # Start loading the model before importing pygls and lsprotocol: the two overlap.
        from lsp_server.services.completion import CompletionService

        completions = CompletionService()
        if args.model:
            from models.model_dir import SERVE_FLAG_ADVICE

            completions.advice = SERVE_FLAG_ADVICE
        completions.start_loading(args.model or "")
        from lsp_server.server import serve

        return serve(args, completions)
    if args.command == "complete":
        from lsp_server.complete_once import complete_once

        return complete_once(args.location, args.model, args.policy, args.multiline)
    if args.command == "demo":
        from lsp_server.config import DEFAULTS
        from lsp_server.demo import run_demo
        from models.model_dir import check_served_model

        check_served_model(args.model)

        return run_demo(args.model, args.database, args.policy or DEFAULTS.decoding_policy, args.file, args.start_line,
                        args.lines)
    if args.command == "bench" and args.target == "serve":
        from lsp_server.bench_serve import print_report, run_bench, serve_variants
        from lsp_server.config import DEFAULTS
        from lsp_server.telemetry_cli import parse_settings
        from telemetry.store import strict_json

        try:
            settings = parse_settings(args.settings)
            compare = None
            if args.compare:
                key, _, raw = args.compare.partition("=")
                key = key.strip()
                compare = (key, [parse_settings([f"{key}={v}"])[key] for v in raw.split(",")])
            serve_variants(args.weights, settings, compare, args.layouts)  # refused before any server starts
        except ValueError as exc:
            print(f"tact bench serve: error: {exc}", file=sys.stderr)
            return 2
        from models.model_dir import check_served_model

        check_served_model(args.model)  # a --source or --corpus with nothing to type, no model: one line (main)
        fig = run_bench(args.model, args.policy or DEFAULTS.decoding_policy, args.limit, args.source,
                        args.corpus or _default_corpus(), args.seed, gate=not args.no_gate, typing_cps=args.typing_cps,
                        weights=args.weights, settings=settings, compare=compare, keep_telemetry=args.keep_telemetry,
                        layouts=args.layouts)
        print(strict_json(fig)) if args.json else print_report(fig)
        return 0
    if args.command == "bench" and args.target == "replay":
        from lsp_server.bench_replay import TARGET_MINUTES, print_table, run_bench
        from lsp_server.telemetry_cli import parse_settings
        from telemetry.store import strict_json

        if args.session is not None and args.database is None:  # it was run on the simulated session instead
            print("tact bench replay: error: --session names a session of --database; without it the bench records "
                  "and replays one session of its own", file=sys.stderr)
            return 2
        recording = [f"--{name}" for name in ("minutes", "source", "corpus", "seed") if getattr(args, name) is not None]
        if args.database is not None and recording:  # they shape a recording, and --database gives one
            print(f"tact bench replay: error: {', '.join(recording)} shape{'s' * (len(recording) == 1)} the session "
                  "the bench records; with --database it replays that recording instead", file=sys.stderr)
            return 2
        try:
            overrides = parse_settings(args.settings)
        except ValueError as exc:
            print(f"tact bench replay: error: {exc}", file=sys.stderr)
            return 2
        from models.model_dir import check_served_model

        check_served_model(args.model)  # a missing, empty, foreign or outdated database, no such session: main
        fig = run_bench(database=args.database, session=args.session, minutes=args.minutes or TARGET_MINUTES,
                        source=args.source, corpus=args.corpus or _default_corpus(), seed=args.seed or 0,
                        limit=args.limit, model=args.model, overrides=overrides)
        print(strict_json(fig)) if args.json else print_table(fig)
        return 0
    if args.command == "train" and args.target == "corpus":
        from models.corpus import build_corpus

        manifest = build_corpus(args.out, args.dir, max_mb=args.max_mb, seed=args.seed)
        for split, s in manifest["splits"].items():
            print(f"{split}: {s['files']} files, {s['chars'] / 1e6:.1f}M chars, {len(s['packages'])} packages")
        print(f"manifest: {args.out / 'manifest.json'}")
        readers = {"train": "`tact train lm` trains on it", "heldout": "the benchmarks and evaluations read it",
                   "calib": "`tact train lm` and `tact train controller` fit the controller on it"}
        for split, s in manifest["splits"].items():
            if not s["files"]:  # the split goes by package: a small corpus can leave one without any
                print(f"tact train corpus: warning: the {split} split is empty, and {readers.get(split, 'training')}:"
                      f" build a bigger corpus (a larger --max-mb than {args.max_mb:g}, or more --dir)",
                      file=sys.stderr)
        return 0
    if args.command == "train" and args.target == "lm":
        from models.train_lm import train_lm

        _can_export(args)
        train_lm(args.corpus, args.out, size=args.size, minutes=args.minutes, batch_size=args.batch_size,
                 lr=args.lr, seed=args.seed, threads=args.threads, device=args.device, resume=args.resume,
                 seq_len=args.seq_len, ngram_model_tokens=args.ngram_model_tokens,
                 workers=args.loader_workers, log=lambda m: print(m, file=sys.stderr, flush=True))
        _export_trained(args)
        print(f"model: {args.out}")
        return 0
    if args.command == "train" and args.target == "ngram-drafts":
        from models.ngram_drafts import write_ngram_drafts

        try:
            write_ngram_drafts(args.model, args.corpus, model_tokens=args.model_tokens, device=args.device,
                               threads=args.threads, batch_size=args.batch_size, seed=args.seed,
                               log=lambda m: print(m, file=sys.stderr, flush=True))
        except (FileNotFoundError, ValueError) as exc:
            print(f"tact train ngram-drafts: error: {exc}", file=sys.stderr)
            return 2
        return 0
    if args.command == "train" and args.target == "draft-head":
        from models.draft_head import train_draft_head

        try:
            stats = train_draft_head(args.model, args.corpus, minutes=args.minutes, batch_size=args.batch_size,
                                     device=args.device, seed=args.seed, threads=args.threads,
                                     workers=args.loader_workers, log=lambda m: print(m, file=sys.stderr, flush=True))
        except (FileNotFoundError, ValueError) as exc:
            print(f"tact train draft-head: error: {exc}", file=sys.stderr)
            return 2
        print(f"draft head: first drafts agree {stats['first_draft_agreement_recent']:.1%} over the last training "
              f"steps; {args.model}")
        return 0
    if args.command == "train" and args.target == "controller":
        from models.train_lm import train_controller

        stats = train_controller(args.model, args.corpus, batches=args.batches, only=args.only,
                                 exit_stride=args.exit_stride, log=lambda m: print(m, file=sys.stderr, flush=True))
        if "top1_accuracy" in stats:
            print(f"top-1 accuracy per exit: {stats['top1_accuracy']}")
        if "kv_fill" in stats:
            print(f"KV fill, share explained on unseen tokens: {stats['kv_fill']['explained']}")
        return 0
    if args.command == "train" and args.target in ("next-edit-data", "next-edit-ranker"):
        shipped = REPO_ROOT / ("data" if args.target == "next-edit-data" else "models") / "next_edit"
        if args.out is None and args.limit is not None:  # a quick run replaced the full data or the shipped ranker
            print(f"tact train {args.target}: error: a run with --limit would replace "
                  f"{shipped if args.target == 'next-edit-data' else shipped / 'ranker'}; name a directory with "
                  "--out DIR", file=sys.stderr)
            return 2
        if args.out is None:
            args.out = shipped if args.target == "next-edit-data" else shipped / "ranker"
    if args.command == "train" and args.target == "next-edit-data":
        from models.next_edit.data import main_cli as next_edit_data

        return next_edit_data(args)
    if args.command == "train" and args.target == "next-edit-ranker":
        from models.next_edit.train_ranker import train_ranker

        try:
            ranker = train_ranker(args.data, args.out, synthetic_sample=args.synthetic_sample, limit=args.limit,
                                  seed=args.seed)
        except ValueError as exc:
            print(f"tact train next-edit-ranker: error: {exc}", file=sys.stderr)
            return 2
        print(f"edit ranker {ranker.version}: {args.out} (threshold {ranker.threshold})")
        return 0
    if args.command == "train" and args.target == "next-edit":
        from models.next_edit.train import train_next_edit
        from models.train_lm import check_device

        check_device(args.device)
        _can_export(args)
        train_next_edit(args.data, args.init, args.out, minutes=args.minutes, lr=args.lr, real_share=args.real_share,
                        batch_tokens=args.batch_tokens, edit_weight=args.edit_weight,
                        prompt_format=args.prompt_format, seed=args.seed, threads=args.threads, device=args.device,
                        log=lambda m: print(m, file=sys.stderr, flush=True))
        _export_trained(args)
        print(f"next-edit model: {args.out}")
        return 0
    if args.command == "eval" and args.target == "next-edit":
        from models.next_edit.evaluate import main_cli as next_edit_eval

        if args.data is None and args.pair is None:  # where the training commands read and write it
            args.data = REPO_ROOT / "data" / "next_edit"

        return next_edit_eval(args)
    if args.command in ("train", "eval") and args.target == "acceptance":
        return _acceptance(args)
    if args.command == "bench":
        return _bench(args)
    if args.command == "export":
        return _export(args)
    raise SystemExit(f"tact: unknown command {args.command}")


EXPORT_ADVICE = "name a model directory to export, e.g. one `tact train lm --no-export` wrote"


def _export(args) -> int:
    """`tact export`: everything it needs is checked before anything is written (a ModelDirError, which main()
    prints), and what it wrote is said."""
    from models.model_dir import (GRAPHS_INDEX, ModelDirError, check_model_dir, read_safetensors_index,
                                  store_half)

    model_dir = args.model_dir
    try:
        if args.half:  # all that --half reads
            read_safetensors_index(model_dir / "model.safetensors")
        if args.graphs:
            check_model_dir(model_dir, need_onnx=False)
            from models.tokenizer import load_model_tokenizer

            load_model_tokenizer(model_dir)  # the graphs do not read it, but a model that cannot load it serves nothing
    except ModelDirError as exc:
        raise exc.advised(EXPORT_ADVICE) from None
    change = store_half(model_dir) if args.half else None
    try:
        if args.graphs:
            from models.export import export_model_dir

            index = export_model_dir(model_dir)
            graphs = (len(index["decoder_layers"]) + len(index["kv_fill"]) + 1
                      + len(index.get("int8", {}).get("decoder_layers", [])) + ("int8" in index))
            print(f"{model_dir}: wrote {graphs} ONNX graphs, listed in {model_dir / GRAPHS_INDEX}; serve it with "
                  f"`tact serve --model {model_dir}`")
        elif not args.half:
            print(f"{model_dir}: nothing written (--no-graphs without --half)")
    finally:  # last, the graphs or not: its figure ends the output
        if change is not None:
            print(f"{model_dir / 'model.safetensors'}: stored in fp16, largest change to a weight {change:g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
