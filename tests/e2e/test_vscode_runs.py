"""The VS Code extension's runs and server inside VS Code (tests/e2e/vscode_harness.py): the status bar's
cancel, a crashed server, and a command given while the server starts.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import pytest

from tests.e2e.vscode_harness import (
    NEEDS_CODE_SERVER,
    SETTINGS,
    STATS,
    STUB_BODY,
    agent_script,
    clear_notifications,
    palette_command,
    server_pids,
    show_diff,
    start_run,
    vsix,
    wait_for_proposal,
    workbench,
    workspace,
)
from tests.fakes.anthropic_server import (
    FakeAnthropic,
    slow,
)

__all__ = ["vsix", "workspace"]  # the fixtures, imported for pytest

pytestmark = NEEDS_CODE_SERVER


def test_a_click_on_the_status_bar_asks_before_it_cancels_a_run(
    request: pytest.FixtureRequest, vsix: Path, workspace: Path, tmp_path: Path
) -> None:
    with FakeAnthropic() as fake:
        fake.enqueue(slow(120.0), slow(120.0))  # two runs whose model takes its time
        with workbench(request, vsix, workspace, tmp_path, fake.env()) as wb:
            start_run(wb)
            # The extension's item (VS Code's own progress item beside it shows the run's title too).
            item = wb.page.locator('.statusbar-item[id$="agentls.status"]', has_text="Implement `mean`")
            wb.wait("the run in the status bar", lambda: item.count(), timeout=60)
            widget = wb.page.locator(".quick-input-widget")
            rows = widget.locator(".monaco-list-row")
            # A stray click, then Enter: the list opens on "Keep running", and the run goes on.
            item.first.click()
            wb.wait("the list of runs", lambda: widget.first.is_visible() and rows.count() >= 3, timeout=10)
            offered = [str(t) for t in rows.all_inner_texts()]
            wb.shot("runs-list")
            wb.page.keyboard.press("Enter")
            wb.page.wait_for_timeout(2000)  # a cancelled run leaves the status bar within a second
            assert "Implement `mean`" in wb.status_bar()
            # Escape keeps it going too; picking "Cancel run" cancels it.
            item.first.click()
            wb.wait("the list of runs", lambda: widget.first.is_visible() and rows.count() >= 3, timeout=10)
            wb.page.keyboard.press("Escape")
            wb.page.wait_for_timeout(2000)
            assert "Implement `mean`" in wb.status_bar()
            item.first.click()
            wb.wait("the list of runs", lambda: widget.first.is_visible() and rows.count() >= 3, timeout=10)
            rows.filter(has_text="Cancel run").first.click()
            wb.wait(
                "the run gone from the status bar", lambda: "Implement" not in wb.status_bar(), timeout=30
            )
            wb.shot("cancelled-from-the-list")
            # The palette's Cancel Run is the explicit command: it cancels the one run without asking.
            start_run(wb)
            wb.wait("the second run in the status bar", lambda: item.count(), timeout=60)
            palette_command(wb, "agentls: Cancel Run")
            wb.wait(
                "the run gone from the status bar", lambda: "Implement" not in wb.status_bar(), timeout=30
            )
    assert "Keep running" in offered[0], offered
    assert [t for t in offered if "Cancel run" in t and "Implement `mean`" in t], offered


def test_a_crashed_server_is_said_with_the_run_and_proposal_it_lost(
    request: pytest.FixtureRequest, vsix: Path, workspace: Path, tmp_path: Path
) -> None:
    with FakeAnthropic() as fake:
        fake.enqueue(*agent_script(), *agent_script(first_delay=120.0))
        with workbench(request, vsix, workspace, tmp_path, fake.env()) as wb:
            start_run(wb)
            wait_for_proposal(wb)
            show_diff(wb)
            clear_notifications(wb)
            start_run(wb)  # a second run, whose model takes its time
            wb.wait(
                "the run and the proposal in the status bar",
                lambda: "Implement `mean`" in wb.status_bar() and "1 proposal" in wb.status_bar(),
            )
            before = wb.wait("the server process", lambda: server_pids(tmp_path / "cache"))
            for pid in before:
                os.kill(pid, signal.SIGKILL)
            lost = wb.page.locator(".notification-toast", has_text="stopped unexpectedly")
            wb.wait("the message that the server stopped", lambda: lost.count(), timeout=30)
            wb.shot("server-lost")
            message = lost.first.inner_text()
            tabs = wb.page.locator(".tabs-container .tab", has_text="agentls proposal")
            wb.wait("the lost proposal's diff tabs closed", lambda: tabs.count() == 0, timeout=30)
            wb.wait(
                "the status bar without the lost work",
                lambda: "proposal" not in wb.status_bar() and "Implement" not in wb.status_bar(),
            )
            wb.wait("a new server", lambda: server_pids(tmp_path / "cache") - before, timeout=60)
            wb.shot("restarted")
    assert "restarting" in message, message
    assert "Lost with it: the run “" in message and "1 proposal waiting for review" in message, message


def test_a_command_given_while_the_server_starts_waits_for_it_and_runs_once(
    request: pytest.FixtureRequest, vsix: Path, workspace: Path, tmp_path: Path
) -> None:
    # A server that takes its time to start, as a big virtual environment's first import does: it starts
    # once the test has given its commands (it used to sleep a fixed 12 s, a margin for a slow machine).
    slow_server = tmp_path / "slow-agentls"
    go = tmp_path / "server-may-start"
    slow_server.write_text(
        f'#!/bin/sh\nwhile [ ! -e "{go}" ]; do sleep 0.1; done\nexec "{sys.executable}" "$@"\n'
    )
    slow_server.chmod(0o755)
    settings = {**SETTINGS, "agentls.server.path": str(slow_server)}
    (workspace / ".vscode" / "settings.json").write_text(json.dumps(settings, indent=2))
    with FakeAnthropic() as fake:
        fake.enqueue(*agent_script())
        with workbench(request, vsix, workspace, tmp_path, fake.env()) as wb:
            wb.open_file(STATS)  # a Python file starts the extension, and the server
            lines = (wb.root / STATS).read_text().splitlines()
            wb.go_to_line(lines.index(STUB_BODY.rstrip("\n")) + 1)
            palette_command(wb, "agentls: Implement Function")
            palette_command(wb, "agentls: Implement Function")  # given again: not a second run
            again = wb.page.locator(".notification-toast", has_text="already waiting for the server")
            wb.wait("the second command dropped", lambda: again.count(), timeout=10)
            wb.shot("waiting-for-the-server")
            go.touch()
            wait_for_proposal(wb)
            wb.page.wait_for_timeout(2000)
            shown = wb.notifications()
            status = wb.status_bar()
            wb.shot("ran-once")
    assert "1 proposal" in status, status
    assert not [t for t in shown if "try again" in t or "failed" in t], shown
    outcomes = [r.outcome for r in fake.message_requests]
    assert outcomes == ["reply"] * len(agent_script()), outcomes
