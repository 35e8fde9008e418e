"""Real VS Code: code-server with the packaged extension (.vsix) installed, driven by playwright-core in
headless Chromium (vscode-client/test/e2e.mjs), against the real server and the model under test.

Ghost text appears, Tab inserts it and the suggestion is recorded as accepted; Escape on the next one is
recorded as rejected (`dismissed`): with the proposed API enabled, from VS Code's end-of-lifetime event;
without it, from the extension's inference. Screenshots are kept in tmp_path and copied to artifacts/vscode/.

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
from pathlib import Path

import pytest

from tests.editors.support import EDITOR_SAMPLE, query, scratch_env, unavailable
from tests.lsp_support import REPO, model_under_test, wait_for_rows

CLIENT = REPO / "vscode-client"
TOOLS = CLIENT / ".test-tools"
VSIX = CLIENT / "tact.vsix"
E2E = CLIENT / "test" / "e2e.mjs"
ARTIFACTS = REPO / "artifacts" / "vscode"
EXTENSION_ID = "tact.tact"  # publisher.name in vscode-client/package.json
INSTALL_HINT = "run scripts/install-vscode-test"

TYPED = "values"  # typed at the end of the sample's last line
SECOND = "return tot"  # typed on a new line after the accepted suggestion
WIDGET_TYPED = "for value in val"  # typed on a new line before Ctrl+Space opens the widget (the file's words)
# Next edit: the first word of this line of the sample is renamed; the model should then rename its use.
RENAMED_LINE, RENAMED_TO, EXPECTED_NEXT = "    words = text.split()", "tokens", "    return len(tokens)"
E2E_TIMEOUT_S = 150


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


@pytest.mark.editor
@pytest.mark.parametrize("proposed_api", [True, False], ids=["proposed-api", "inferred"])
def test_ghost_text_accept_and_escape_in_code_server(tmp_path: Path, record_property, proposed_api: bool):
    """With the proposed API, VS Code's end-of-lifetime event gives the reject reason; without it (as in
    VS Code from the Marketplace), the extension's own Escape keybinding does."""
    t = tools()
    assert model_under_test().is_dir(), f"no model at {model_under_test()} (TACT_TEST_MODEL or models/default)"
    t0 = time.monotonic()
    env = scratch_env(tmp_path / "scratch")
    user_data, extensions = tmp_path / "user-data", tmp_path / "extensions"
    workspace = tmp_path / "project"
    workspace.mkdir()
    (workspace / "sample.py").write_text(EDITOR_SAMPLE)
    db = tmp_path / "telemetry.sqlite3"
    screenshots = tmp_path / "screenshots"
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
    with open(server_log, "w") as log_file:
        proc = subprocess.Popen(
            [*base, "--bind-addr", f"127.0.0.1:{port}", "--auth", "none", "--disable-telemetry",
             "--disable-update-check", "--disable-workspace-trust",
             *(["--enable-proposed-api", EXTENSION_ID] if proposed_api else []), str(workspace)],
            env=env, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_healthy(url, proc, server_log)
        out = tmp_path / "e2e-result.json"
        config = {
            "url": f"{url}/?folder={workspace}", "file": "sample.py", "line": EDITOR_SAMPLE.count("\n"),
            "typed": TYPED, "second": SECOND, "toolsDir": str(TOOLS), "chromium": str(t["chromium"]),
            "profile": str(tmp_path / "chromium-profile"), "screenshots": str(screenshots), "out": str(out),
            "timeoutMs": (E2E_TIMEOUT_S - 10) * 1000,
        }
        # ghost text over the completion widget is shown in both modes: reported by VS Code, or by the extension
        config["widget"] = {"typed": WIDGET_TYPED, "timeoutMs": 15000}
        if proposed_api:  # next edit does not depend on the proposed API: once is enough
            config["nextEdit"] = {"line": EDITOR_SAMPLE.split("\n").index(RENAMED_LINE) + 1, "replacement": RENAMED_TO,
                                  "timeoutMs": 20000}
        config_path = tmp_path / "e2e-config.json"
        config_path.write_text(json.dumps(config, indent=1))
        t_browser = time.monotonic()
        # Chromium puts its singleton socket in TMPDIR, and a socket path must stay short (~100 bytes)
        with tempfile.TemporaryDirectory(prefix="tact-vsc-") as short_tmp:
            run = subprocess.run([str(t["node"]), str(E2E), str(config_path)], env={**env, "TMPDIR": short_tmp},
                                 capture_output=True, text=True, timeout=E2E_TIMEOUT_S, stdin=subprocess.DEVNULL)
        record_property("editor_elapsed_s", round(time.monotonic() - t_browser, 2))
        result = json.loads(out.read_text()) if out.exists() else {}
        why = describe(run, result, server_log, user_data)
        assert run.returncode == 0 and "error" not in result, f"the browser script failed\n{why}"

        # ghost text appeared, and Tab put the accepted suggestion into the editor
        accepted = wait_for_rows(db, "SELECT id, text, shown_at FROM suggestions WHERE outcome = 'accepted' "
                                     "AND kind = 'completion'")
        assert accepted, f"no accepted suggestion in the telemetry database\n{why}"
        _, text, shown_at = accepted[-1]
        assert text and shown_at is not None, f"accepted suggestion {accepted[-1]} was never shown\n{why}"
        last_line = EDITOR_SAMPLE.splitlines()[-1]
        line_after = next((ln for ln in result["linesAfterAccept"] if ln.startswith(last_line)), "")
        assert line_after.rstrip() == (last_line + TYPED + text).rstrip(), (
            f"the editor line after Tab is {line_after!r}, expected the typed text and the suggestion {text!r}\n{why}")
        assert result["ghost1"], f"no ghost text read from the editor\n{why}"

        # Escape on the second suggestion: rejected as dismissed
        rejected = wait_for_rows(db, "SELECT id, reject_reason FROM suggestions WHERE outcome = 'rejected' "
                                     "AND reject_reason = 'dismissed' AND kind = 'completion'")
        reasons = query(db, "SELECT outcome, reject_reason, count(*) FROM suggestions GROUP BY 1, 2")
        assert rejected, f"no suggestion rejected as dismissed (outcomes: {reasons})\n{why}"
        assert not result.get("ghostAfterEscape"), f"ghost text still shown after Escape\n{why}"
        assert not any(SECOND + result["ghost2"] in ln for ln in result["linesAfterEscape"]), why
        log_text = extension_log(user_data)
        mode = ("events from the proposed API inlineCompletionsAdditions" if proposed_api
                else "proposed API inlineCompletionsAdditions not enabled; rejections are inferred")
        assert mode in log_text, f"the extension did not say: {mode}\n{why}"
        assert "shown" in result.get("statusAfter", ""), why

        # the completion widget's selected entry, extended by ghost text, which VS Code showed and the extension
        # followed as shown (without the proposed API it infers that from the item extending the entry)
        assert result.get("widgetGhost"), f"no ghost text over the completion widget\n{why}"
        assert result.get("widgetVisible") and not result.get("widgetAfterEscape"), why
        over = wait_for_rows(db, "SELECT json_extract(context, '$.selected_completion.text') FROM suggestions"
                                 " WHERE json_extract(context, '$.selected_completion') IS NOT NULL"
                                 " AND shown_at IS NOT NULL")
        assert over, (f"no suggestion over the widget's entry shown: "
                      f"{query(db, 'SELECT context, shown_at FROM suggestions')}\n{why}")
        assert over[-1][0] and result["widgetEntry"].startswith(over[-1][0]), (over, result["widgetEntry"], why)
        if proposed_api:
            # the rename, then the predicted next edit: shown as a decoration, applied with Tab, recorded
            assert any(ln.startswith(f"    {RENAMED_TO} = text.split()") for ln in result["linesAfterRename"]), why
            assert result.get("nextEditHint"), f"no next edit shown\n{why}"
            assert any(ln.rstrip() == EXPECTED_NEXT for ln in result["linesAfterNextEdit"]), (
                f"after Tab the file does not read {EXPECTED_NEXT!r}\n{why}")
            applied = wait_for_rows(db, "SELECT text, shown_at FROM suggestions WHERE kind = 'next_edit' "
                                        "AND outcome = 'accepted'")
            assert applied and applied[-1][1] is not None, (
                f"no shown and accepted next edit in telemetry: {query(db, 'SELECT kind, outcome, text FROM suggestions')}\n{why}")
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
                shutil.copy2(png, ARTIFACTS / f"{'proposed-api' if proposed_api else 'inferred'}-{png.name}")
        record_property("test_elapsed_s", round(time.monotonic() - t0, 2))


def describe(run: subprocess.CompletedProcess, result: dict, server_log: Path, user_data: Path) -> str:
    parts = [f"node exit code {run.returncode}", f"result: {json.dumps(result)[:6000]}",
             f"node stdout: {run.stdout[-2000:]!r}", f"node stderr: {run.stderr[-3000:]!r}",
             "code-server log:\n" + server_log.read_text(errors="replace")[-3000:],
             "extension log:\n" + extension_log(user_data)]
    return "\n".join(parts)


def test_extension_unit_tests():
    """The extension's own unit tests (node --test: the suggestion lifecycle inference)."""
    if not (CLIENT / "node_modules" / ".bin" / "esbuild").exists():
        unavailable(f"vscode-client/node_modules missing; {INSTALL_HINT}")
    run = subprocess.run(["npm", "test", "--silent"], cwd=CLIENT, capture_output=True, text=True, timeout=120,
                         stdin=subprocess.DEVNULL)
    assert run.returncode == 0, f"npm test failed\n{run.stdout[-4000:]}\n{run.stderr[-2000:]}"
