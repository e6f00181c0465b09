"""`--max-minutes` of `agentls run`, `agentls implement` and `agentls runs resume`: a run past its wall-clock
budget stops as a budget stop does (exit 4, the edit so far shown as UNFINISHED, resumable), and the
resumed run counts the time the first part took (the fake API stalls mid-reply; the rest is real). A
question left unanswered on the terminal does not hold the run past its budget."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
import time
from pathlib import Path

from click.testing import Result

from tests.agent.agent_harness import GOOD_BODY, STUB_BODY, done, replace, view
from tests.fakes.anthropic_server import FakeAnthropic, stall, text, tool_use, turn
from tests.server.test_cli_agent import env, invoke, ws

__all__ = ["env", "ws"]


def _run_id(result: Result) -> str:
    match = re.search(r"\(agentls runs ([\w-]+)\)", result.stderr)
    assert match, result.stderr
    return match.group(1)


def test_run_stops_at_its_max_minutes_and_resume_counts_the_time_spent(
    fake_anthropic: FakeAnthropic, ws: Path, env: dict[str, str]
) -> None:
    fake_anthropic.enqueue(
        turn(text("Plan: edit the stub."), view()), replace(STUB_BODY, GOOD_BODY), stall(20, done())
    )
    began = time.monotonic()
    instruction = "Implement mean in mathx/stats.py"
    first = invoke(["run", instruction, "--path", str(ws), "--max-minutes", "0.05"], env)
    took = time.monotonic() - began
    assert first.exit_code == 4, first.output
    assert took < 20, f"`agentls run` took {took:.1f} s with a 3 s budget and a 20 s stall"
    assert "Time budget reached" in first.stderr and "max_minutes = 0.05" in first.stderr
    assert "UNFINISHED" in first.stderr
    assert "+    return sum(values) / len(values)" in first.stdout  # the edit so far
    run_id = _run_id(first)
    assert f"agentls runs resume {run_id}" in first.stderr

    requests = len(fake_anthropic.message_requests)
    again = invoke(["runs", "resume", run_id, "--max-minutes", "0.05"], env)
    assert again.exit_code == 4, again.output
    assert "Time budget reached" in again.stderr
    assert len(fake_anthropic.message_requests) == requests  # the 3 s were spent: no call is made

    fake_anthropic.enqueue(done("Implemented `mean`."))
    resumed = invoke(["runs", "resume", _run_id(again), "--max-minutes", "5"], env)
    assert resumed.exit_code == 0, resumed.output
    assert "verification passed" in resumed.stderr


def test_implement_takes_max_minutes_and_bad_values_are_refused(
    fake_anthropic: FakeAnthropic, ws: Path, env: dict[str, str]
) -> None:
    stats = ws / "mathx" / "stats.py"
    line = stats.read_text().splitlines().index("def mean(values: list[float]) -> float:") + 1
    fake_anthropic.enqueue(stall(20, turn(text("Plan: edit the stub."), view())))
    stopped = invoke(["implement", f"{stats}:{line}", "--max-minutes", "0.05"], env)
    assert stopped.exit_code == 4, stopped.output
    assert "Time budget reached" in stopped.stderr

    bad = invoke(["run", "x", "--path", str(ws), "--max-minutes", "soon"], env)
    assert bad.exit_code == 2 and "--max-minutes" in bad.output and "a number of minutes" in bad.output
    alone = invoke(["runs", "--max-minutes", "5"], env)
    assert alone.exit_code == 2 and "go with `agentls runs resume ID`" in alone.output


def test_a_question_left_unanswered_on_the_terminal_is_withdrawn_at_max_minutes(
    fake_anthropic: FakeAnthropic, ws: Path, env: dict[str, str]
) -> None:
    """`agentls run` in a terminal whose user walked away: the prompt is given up at the bound (the
    terminal was left waiting for an answer nobody would read, and the run's result with it), the edit is
    shown as UNFINISHED, exit status 4."""
    fake_anthropic.enqueue(
        turn(
            text("Plan: edit the stub, then ask."),
            replace(STUB_BODY, GOOD_BODY),
            tool_use("ask_user", {"question": "Should [] raise?", "options": ["yes", "no"]}),
        ),
        done(),
    )
    keyboard, terminal = pty.openpty()  # stdin is a terminal on which nobody types
    command = [sys.executable, "-m", "server.cli", "run", "Implement mean", "--path", str(ws)]
    try:
        began = time.monotonic()
        ran = subprocess.run(
            [*command, "--max-minutes", "0.1"],
            stdin=terminal,
            capture_output=True,
            text=True,
            env={**os.environ, **env},
            timeout=45,  # the code before it waited for the answer until killed
        )
        took = time.monotonic() - began
    finally:
        os.close(keyboard)
        os.close(terminal)
    assert "The agent asks: Should [] raise?" in ran.stderr, ran.stderr
    assert ran.returncode == 4, ran.stderr
    assert "(The question was withdrawn: the run stopped before your answer.)" in ran.stderr
    assert "Time budget reached" in ran.stderr and "UNFINISHED" in ran.stderr
    assert "+    return sum(values) / len(values)" in ran.stdout
    assert took < 30, f"`agentls run` took {took:.1f} s with a 6 s budget"
