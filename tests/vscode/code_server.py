"""What the real VS Code tests share: code-server with the packaged extension (.vsix) installed and its settings,
started on a workspace, and a playwright-core script (vscode-client/test/*.mjs) run against it in headless Chromium.

Setup: scripts/install-vscode-test (scripts/test runs it).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.editors.support import scratch_env, unavailable
from tests.lsp_support import REPO, model_under_test

CLIENT = REPO / "vscode-client"
TOOLS = CLIENT / ".test-tools"
VSIX = CLIENT / "tact.vsix"
ARTIFACTS = REPO / "artifacts" / "vscode"
EXTENSION_ID = "tact.tact"  # publisher.name in vscode-client/package.json
INSTALL_HINT = "run scripts/install-vscode-test"


def tools() -> dict[str, Path]:
    found = {
        "node": Path(shutil.which("node") or "node"),
        "code-server": TOOLS / "node_modules" / ".bin" / "code-server",
        "playwright-core": TOOLS / "node_modules" / "playwright-core" / "package.json",
        "chromium": Path(os.environ.get("TACT_CHROMIUM", "/usr/bin/chromium")),
        "vsix": VSIX,
    }
    missing = [name for name, path in found.items() if not path.exists()]
    if missing:
        unavailable(f"VS Code test tools missing: {', '.join(missing)}; {INSTALL_HINT}")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"code-server exited with {proc.returncode}\n{log.read_text(errors='replace')[-3000:]}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"code-server did not answer on {url} within {timeout} s\n{log.read_text(errors='replace')[-3000:]}")


def user_settings(db: Path) -> dict:
    return {
        # per the recipe: no start page, no trust prompt, nothing phoning home
        "workbench.startupEditor": "none",
        "security.workspace.trust.enabled": False,
        "extensions.autoUpdate": False,
        "extensions.autoCheckUpdates": False,
        "telemetry.telemetryLevel": "off",
        "update.mode": "none",
        "workbench.tips.enabled": False,
        "editor.inlineSuggest.enabled": True,
        # no word-based suggest widget: Tab and Escape must go to the ghost text
        "editor.quickSuggestions": {"other": False, "comments": False, "strings": False},
        "editor.suggestOnTriggerCharacters": False,
        # ...but the widget Ctrl+Space opens lists this file's words (ghost text over a selected entry)
        "editor.wordBasedSuggestions": "currentDocument",
        "tact.pythonPath": sys.executable,
        "tact.modelPath": str(model_under_test()),
        "tact.telemetryDatabase": str(db),
        # the tiny development model's Stop&Exit controller stops almost every suggestion before its first
        # token; the acceptance gate would hide some: this test is about the editor, not those decisions
        "tact.stopThreshold": 1.01,
        "tact.acceptanceGate": False,
        # any predicted edit is shown: this test is about the editor showing and applying it
        "tact.nextEditThreshold": 0.0,
        "tact.logLevel": "INFO",
    }


def extension_log(user_data: Path) -> str:
    logs = sorted(user_data.glob("logs/**/Tact.log"))
    return "\n".join(f"--- {p}\n{p.read_text(errors='replace')[-5000:]}" for p in logs)


@dataclass
class CodeServer:
    """A running code-server with the extension installed, its workspace opened at url."""

    root: Path  # the test's tmp_path
    url: str
    env: dict[str, str]
    user_data: Path
    log: Path
    screenshots: Path

    def run_script(self, script: Path, config: dict, timeout_s: float,
                   record_property) -> tuple[subprocess.CompletedProcess, dict, str]:
        """Runs a browser script on config plus what every script reads (url, tools, a fresh profile,
        screenshots, out, timeoutMs: ten seconds short of timeout_s). Gives its process, its result and a
        description of the run for failure messages."""
        t = tools()
        out = self.root / f"{script.stem}-result.json"
        config = {"url": self.url, "toolsDir": str(TOOLS), "chromium": str(t["chromium"]),
                  "profile": str(self.root / "chromium-profile"), "screenshots": str(self.screenshots),
                  "out": str(out), "timeoutMs": (timeout_s - 10) * 1000, **config}
        config_path = self.root / f"{script.stem}-config.json"
        config_path.write_text(json.dumps(config, indent=1))
        t_browser = time.monotonic()
        # Chromium puts its singleton socket in TMPDIR, and a socket path must stay short (~100 bytes)
        with tempfile.TemporaryDirectory(prefix="tact-vsc-") as short_tmp:
            run = subprocess.run([str(t["node"]), str(script), str(config_path)], env={**self.env, "TMPDIR": short_tmp},
                                 capture_output=True, text=True, timeout=timeout_s, stdin=subprocess.DEVNULL)
        record_property("editor_elapsed_s", round(time.monotonic() - t_browser, 2))
        result = json.loads(out.read_text()) if out.exists() else {}
        return run, result, self.describe(run, result)

    def describe(self, run: subprocess.CompletedProcess, result: dict) -> str:
        parts = [f"node exit code {run.returncode}", f"result: {json.dumps(result)[:6000]}",
                 f"node stdout: {run.stdout[-2000:]!r}", f"node stderr: {run.stderr[-3000:]!r}",
                 "code-server log:\n" + self.log.read_text(errors="replace")[-3000:],
                 "extension log:\n" + extension_log(self.user_data)]
        return "\n".join(parts)


@contextmanager
def code_server(tmp_path: Path, workspace: Path, db: Path, *, proposed_api: bool = True,
                artifact_prefix: str) -> Iterator[CodeServer]:
    """code-server on workspace with the .vsix installed and user_settings(db); the extension may use the proposed
    API or acts as without it. On exit it is stopped and the screenshots are copied to artifacts/vscode/ with
    artifact_prefix."""
    t = tools()
    assert model_under_test().is_dir(), f"no model at {model_under_test()} (TACT_TEST_MODEL or models/default)"
    env = scratch_env(tmp_path / "scratch")
    user_data, extensions = tmp_path / "user-data", tmp_path / "extensions"
    (user_data / "User").mkdir(parents=True)
    (user_data / "User" / "settings.json").write_text(json.dumps(user_settings(db), indent=1))

    base = [str(t["code-server"]), "--user-data-dir", str(user_data), "--extensions-dir", str(extensions)]
    install = subprocess.run([*base, "--install-extension", str(t["vsix"])], env=env, capture_output=True, text=True,
                             timeout=120, stdin=subprocess.DEVNULL)
    assert install.returncode == 0, f"installing the .vsix failed:\n{install.stdout}\n{install.stderr}"
    assert any(p.name.startswith(EXTENSION_ID + "-") for p in extensions.iterdir()), install.stdout
    if not proposed_api:
        # code-server grants every proposed API to every extension, with or without --enable-proposed-api;
        # VS Code from the Marketplace grants none. This makes the extension act as there.
        env["TACT_NO_PROPOSED_API"] = "1"

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server_log = tmp_path / "code-server.log"
    screenshots = tmp_path / "screenshots"
    with open(server_log, "w") as log_file:
        proc = subprocess.Popen(
            [*base, "--bind-addr", f"127.0.0.1:{port}", "--auth", "none", "--disable-telemetry",
             "--disable-update-check", "--disable-workspace-trust",
             *(["--enable-proposed-api", EXTENSION_ID] if proposed_api else []), str(workspace)],
            env=env, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_healthy(url, proc, server_log)
        yield CodeServer(root=tmp_path, url=f"{url}/?folder={workspace}", env=env, user_data=user_data,
                         log=server_log, screenshots=screenshots)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if screenshots.exists():
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            for png in screenshots.glob("*.png"):
                shutil.copy2(png, ARTIFACTS / f"{artifact_prefix}-{png.name}")
