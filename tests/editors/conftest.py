"""Real-editor tests: print how long each took (editor process and whole test) after the run."""

from __future__ import annotations


def pytest_terminal_summary(terminalreporter):
    rows = []
    for status in ("passed", "failed"):
        for report in terminalreporter.stats.get(status, []):
            if report.when != "call":
                continue
            props = dict(report.user_properties)
            if "editor_elapsed_s" in props:
                rows.append((report.nodeid, status, props["editor_elapsed_s"], report.duration))
    if rows:
        terminalreporter.section("real-editor timings")
        for nodeid, status, editor_s, total_s in rows:
            terminalreporter.write_line(f"{total_s:6.1f} s test, {editor_s:6.1f} s editor  {status:6}  {nodeid}")
