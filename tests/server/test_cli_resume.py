"""`agentls runs resume ID`: a run stopped by an overload storm after its edit keeps the edit, and the CLI
resumes it from the saved state (a new process would read the same files) to a verified proposal."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import Result

from tests.agent.agent_harness import GOOD_BODY, STUB_BODY, done, replace, view
from tests.fakes.anthropic_server import FakeAnthropic, fault_529, text, turn
from tests.server.test_cli_agent import env, invoke, ws

__all__ = ["env", "ws"]


def _run_id(result: Result) -> str:
    match = re.search(r"\(agentls runs ([\w-]+)\)", result.stderr)
    assert match, result.stderr
    return match.group(1)


def test_runs_resume_continues_a_run_stopped_by_a_529_storm(
    fake_anthropic: FakeAnthropic,
    ws: Path,
    env: dict[str, str],
) -> None:
    fake_anthropic.enqueue(
        turn(text("Plan: edit the stub."), view()),
        replace(STUB_BODY, GOOD_BODY),
        fault_529(),
        fault_529(),  # max_retries = 1 in the workspace's settings: the call fails
    )
    first = invoke(["run", "Implement mean in mathx/stats.py", "--path", str(ws)], env)
    assert first.exit_code == 1, first.output
    assert "UNFINISHED" in first.stderr and "529" in first.stderr
    assert "+    return sum(values) / len(values)" in first.stdout  # the edit is shown, not dropped
    run_id = _run_id(first)
    assert f"agentls runs resume {run_id}" in first.stderr

    fake_anthropic.enqueue(done("Implemented `mean`."))
    resumed = invoke(["runs", "resume", run_id, "--max-cost", "5"], env)
    assert resumed.exit_code == 0, resumed.output
    assert f"resuming run {run_id}" in resumed.stderr
    assert "verification passed" in resumed.stderr
    assert "+    return sum(values) / len(values)" in resumed.stdout
    assert GOOD_BODY not in (ws / "mathx" / "stats.py").read_text()  # proposed, not written

    again = invoke(["runs", "resume", _run_id(resumed)], env)
    assert again.exit_code == 1 and "nothing to resume" in again.output
    missing = invoke(["runs", "resume", "20000101-000000-abcdef"], env)
    assert missing.exit_code == 1 and "no saved state" in missing.output
