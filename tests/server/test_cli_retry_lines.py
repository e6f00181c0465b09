"""What ``agentls run`` says on stderr while the model API is overloaded: one line for people per wait,
the detailed log record with -v; the transcript keeps the attempts either way. Through the installed
console script (its logging is set up as a user gets it), against the fake Anthropic server."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.agent.agent_harness import copy_workspace
from tests.fakes.anthropic_server import FakeAnthropic, fault_529
from tests.server.test_cli_agent import env, invoke, script

__all__ = ["env"]

RETRYING_TOML = """\
[agent]
max_steps = 10

[agent.model]
max_retries = 3
retry_base_delay = 0.2
retry_max_delay = 0.4
timeout = 10

[agent.sandbox]
timeout_seconds = 20
"""


def _run(args: list[str], ws: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["agentls", *args, "run", "Implement mean in mathx/stats.py", "--path", str(ws)],
        env={**os.environ, **env, "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("verbose", [False, True])
def test_a_529_storm_is_one_line_per_wait_and_the_details_with_v(
    verbose: bool, fake_anthropic: FakeAnthropic, tmp_path: Path, env: dict[str, str]
) -> None:
    ws = copy_workspace(tmp_path / "ws")
    (ws / "agentls.toml").write_text(RETRYING_TOML)
    fake_anthropic.enqueue(fault_529(), fault_529())
    script(fake_anthropic)
    out = _run(["-v"] if verbose else [], ws, env)
    assert out.returncode == 0, out.stderr

    lines = out.stderr.splitlines()
    people = [line for line in lines if line.startswith("model busy")]
    details = [line for line in lines if "Anthropic API attempt" in line]
    if verbose:
        assert people == []
        assert len(details) == 2 and details[0].startswith("agentls: WARNING: Anthropic API attempt 1 failed")
        assert "HTTP 529 overloaded_error" in details[0]
    else:
        assert details == []
        assert len(people) == 2, out.stderr
        for number, line in enumerate(people, 2):
            pattern = rf"model busy \(529 overloaded\); retrying in 0\.\d s, attempt {number} of 4"
            assert re.fullmatch(pattern, line), line

    # The transcript still says the first call took three attempts.
    run_id = re.search(r"\(agentls runs ([\w-]+)\)", out.stderr)
    assert run_id, out.stderr
    shown = invoke(["runs", run_id.group(1)], env)
    assert "s, 3 attempt(s))" in shown.stdout, shown.stdout


def test_the_line_for_people_names_each_kind_of_failure() -> None:
    from agent.models.calls import RetryWait

    assert (
        RetryWait(1, 6, 529, 2.0).summary == "model busy (529 overloaded); retrying in 2.0 s, attempt 2 of 6"
    )
    assert RetryWait(2, 6, 429, 12.5).summary.startswith(
        "model rate-limited (429 too many requests); retrying"
    )
    assert (
        RetryWait(1, 3, 500, 0.05).summary == "model server error (500); retrying in 0.05 s, attempt 2 of 3"
    )
    assert RetryWait(1, 3, None, 1.0).summary.startswith("model connection failed; retrying in 1.0 s")
