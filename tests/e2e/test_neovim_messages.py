"""What the Neovim plugin says, end to end (tests/e2e/nvim_harness.py): a run's end, a refusal and a crash
are each shown once, and requests given while the server starts are sent once.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests.e2e.nvim_harness import (
    ANSWER,
    NO_CHANGE,
    SETTINGS,
    STATS,
    agent_script,
    nvim,
    run_nvim,
    shown,
    workspace,
)
from tests.fakes.anthropic_server import FakeAnthropic, fault_401, text

__all__ = ["nvim", "workspace"]  # the fixtures, imported for pytest


def test_the_preview_of_a_proposal_lost_in_a_server_crash_is_closed(
    workspace: Path, tmp_path: Path, nvim: str
) -> None:
    """The server is killed while its proposal's preview is open: the plugin says what was lost, and the
    preview closes (its keys could only say "no proposal is waiting")."""
    with FakeAnthropic() as fake:
        fake.enqueue(*agent_script())
        result = run_nvim(
            nvim, "agent_run.lua", workspace, tmp_path, env={**fake.env(), "AGENTLS_NVIM_MODE": "crash"}
        )

    assert result["proposal_status"] == "failed"
    said = [m for m in result["messages"] if "the server exited" in m]
    assert len(said) == 1 and f"proposal {result['proposal_id']}" in said[0], result["messages"]
    assert result["preview_open_after"] is False
    assert result["preview_windows_after"] == 0


def test_the_end_of_a_run_is_shown_once(workspace: Path, tmp_path: Path, nvim: str) -> None:
    # The server shows these ends with window/showMessage as well; the plugin handles them too.
    with FakeAnthropic() as fake:
        fake.enqueue(text(NO_CHANGE), text(ANSWER), fault_401())
        result = run_nvim(nvim, "messages.lua", workspace, tmp_path, env=fake.env())

    assert (result["edit_status"], result["ask_status"], result["failed_status"]) == (
        "done",
        "done",
        "failed",
    )
    everything = "\n".join(m["message"] for m in result["shown"])
    # The edit that changed nothing: its summary, once, saying so.
    said = shown(result, NO_CHANGE)
    assert len(said) == 1, everything
    assert "without changes" in said[0]
    # The answer opens in its window, and is not also a message.
    assert ANSWER in "\n".join(result["answer_lines"])
    assert shown(result, ANSWER) == [], everything
    # The failure: once, naming the run, with the API's reason.
    said = shown(result, "invalid x-api-key")
    assert len(said) == 1, everything
    assert "Tests for mathx/stats.py" in said[0] and "failed" in said[0]


def test_a_run_that_cannot_start_is_shown_once(workspace: Path, tmp_path: Path, nvim: str) -> None:
    env = {"ANTHROPIC_API_KEY": "", "ANTHROPIC_AUTH_TOKEN": "", "AGENTLS_NVIM_MODE": "missing_key"}
    result = run_nvim(nvim, "messages.lua", workspace, tmp_path, env=env)

    assert result["failed_status"] == "failed"
    said = shown(result, "ANTHROPIC_API_KEY")
    assert len(said) == 1, "\n".join(m["message"] for m in result["shown"])
    assert "Tests for mathx/stats.py" in said[0] and "failed" in said[0]


def test_a_refused_accept_is_shown_once(workspace: Path, tmp_path: Path, nvim: str) -> None:
    # The user rewrote the stub's line after the run: the proposal does not rebase, the server refuses
    # (an error answer only, to the plugin, which says the server's reason as it is).
    with FakeAnthropic() as fake:
        fake.enqueue(*agent_script())
        result = run_nvim(
            nvim, "agent_run.lua", workspace, tmp_path, env={**fake.env(), "AGENTLS_NVIM_MODE": "conflict"}
        )

    assert result["proposal_status"] == "pending"
    said = [m for m in result["messages"] if "did not apply" in m]
    assert len(said) == 1, result["messages"]
    assert said[0].startswith("agentls did not apply proposal "), said
    assert not any("agentls.accept failed" in m for m in result["messages"]), result["messages"]


def test_an_edit_the_editor_refused_is_shown_once(workspace: Path, tmp_path: Path, nvim: str) -> None:
    # The plugin's applyEdit refuses; the server says the proposal was not applied (and why) and answers so.
    with FakeAnthropic() as fake:
        fake.enqueue(*agent_script())
        result = run_nvim(
            nvim, "agent_run.lua", workspace, tmp_path, env={**fake.env(), "AGENTLS_NVIM_MODE": "refused"}
        )

    assert result["proposal_status"] == "pending"
    said = [m for m in result["messages"] if "refused by the test" in m]
    assert len(said) == 1, result["messages"]
    assert "was not applied" in said[0]


def test_requests_given_while_the_server_starts_are_sent_once_with_their_place(
    workspace: Path, tmp_path: Path, nvim: str
) -> None:
    serve = f"sleep 3; exec {sys.executable} -m server.cli serve --stdio"
    setup = {"cmd": ["sh", "-c", serve], "settings": SETTINGS}
    env = {"ANTHROPIC_API_KEY": "", "ANTHROPIC_AUTH_TOKEN": ""}  # the runs fail at once, offline
    result = run_nvim(nvim, "slow_start.lua", workspace, tmp_path, env=env, setup=setup)

    assert result["initialized_at_first_press"] is False
    assert result["questions"] == ["what does clamp do?", "what does mean do?"]
    # where the cursor was when :AgentlsTests was given, not where it is when the server is ready
    position = {"line": 2, "character": 4}
    assert result["tests"] == [{"uri": (workspace / STATS).as_uri(), "position": position}]
    # the edit's line is where the command was given, in its request and in its name, though the input
    # that asked for the instruction moved the cursor before it answered
    assert [(e["range"]["start"]["line"], e["instruction"]) for e in result["edits"]] == [(3, "say hi")]
    dropped = [m for m in result["messages"] if "already waiting for the server" in m]
    assert dropped == [
        "agentls: already waiting for the server: ask: what does clamp do?",
        "agentls: already waiting for the server: edit mathx/stats.py:4: say hi",
    ]
