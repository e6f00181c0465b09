"""`agentls runs resume ID`: a run stopped by an overload storm after its edit keeps the edit, and the CLI
resumes it from the saved state (a new process would read the same files) to a verified proposal."""

from __future__ import annotations

import _thread
import re
import signal
import threading
import time
from pathlib import Path

import pytest
from click.testing import Result

from tests.agent.agent_harness import GOOD_BODY, STUB_BODY, done, replace, view
from tests.agent.team.team_harness import INSTRUCTION, RoleScript, feature_script, shop_workspace
from tests.fakes.anthropic_server import FAKE_API_KEY, FakeAnthropic, fault_529, text, turn
from tests.server.test_cli_agent import env, invoke, ws

__all__ = ["env", "ws"]


def _run_id(result: Result) -> str:
    match = re.search(r"\(agentls runs ([\w-]+)\)", result.stderr)
    assert match, result.stderr
    return match.group(1)


def _run_stopped_after_its_edit(fake: FakeAnthropic, ws: Path, env: dict[str, str]) -> Result:
    """`agentls run` that edits the stub, then stops on a 529 storm (max_retries = 1): exit 1."""
    fake.enqueue(
        turn(text("Plan: edit the stub."), view()), replace(STUB_BODY, GOOD_BODY), fault_529(), fault_529()
    )
    result = invoke(["run", "Implement mean in mathx/stats.py", "--path", str(ws)], env)
    assert result.exit_code == 1, result.output
    return result


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


def test_resume_keeps_what_the_user_edited_since_the_run_stopped(
    fake_anthropic: FakeAnthropic,
    ws: Path,
    env: dict[str, str],
) -> None:
    """The run's saved text of a file is merged into the user's newer text, not written over it; where
    both changed the same lines the user's text stays and the model is told."""
    fake_anthropic.enqueue(
        turn(text("Plan: edit the stub."), view()),
        replace(STUB_BODY, GOOD_BODY),
        replace('"""Limit `value` to the range [low, high]."""', '"""Limit `value` to [low, high]."""'),
        fault_529(),
        fault_529(),
    )
    first = invoke(["run", "Implement mean in mathx/stats.py", "--path", str(ws)], env)
    assert first.exit_code == 1, first.output
    stats = ws / "mathx" / "stats.py"
    user = stats.read_text().replace("def clamp(", "# USER EDIT AFTER THE STOP\ndef clamp(")
    stats.write_text(user)

    fake_anthropic.enqueue(done("Implemented `mean`."))
    resumed = invoke(["runs", "resume", _run_id(first)], env)
    assert resumed.exit_code == 0, resumed.output
    assert "-# USER EDIT AFTER THE STOP" not in resumed.stdout  # not undone by the proposal
    assert "+    return sum(values) / len(values)" in resumed.stdout  # the run's edit, merged
    assert "merged into their text" in str(fake_anthropic.message_requests[-1].body)

    # The user now changes the very line the run had changed: their text wins, and the model is told.
    second = _run_stopped_after_its_edit(fake_anthropic, ws, env)
    stats.write_text(stats.read_text().replace(STUB_BODY, "    return 0.0  # the user's own version\n"))
    fake_anthropic.enqueue(done("Left it to the user."))
    resumed = invoke(["runs", "resume", _run_id(second)], env)
    assert "-    return 0.0  # the user's own version" not in resumed.stdout
    assert "hold the user's text now" in str(fake_anthropic.message_requests[-1].body)


def test_runs_resume_applies_with_apply_and_says_how_to_continue_after_a_cancel(
    fake_anthropic: FakeAnthropic,
    ws: Path,
    env: dict[str, str],
) -> None:
    first = _run_stopped_after_its_edit(fake_anthropic, ws, env)
    assert "Run again with --apply" not in first.stderr  # a new paid run is not the way to its changes
    fake_anthropic.enqueue(done("Implemented `mean`."))
    resumed = invoke(["runs", "resume", _run_id(first), "--apply", "--yes"], env)
    assert resumed.exit_code == 0, resumed.output
    assert GOOD_BODY in (ws / "mathx" / "stats.py").read_text()  # written, as `run --apply --yes` does
    assert invoke(["runs", "--apply"], env).exit_code == 2  # only with resume


def test_ctrl_c_at_the_spec_question_cancels_the_team_run_and_resume_asks_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C while `agentls run --mode team` waits for the spec's confirmation stops the run at once
    (exit 130, resumable); `agentls runs resume` asks again, without paying for the planner again."""
    root = shop_workspace(tmp_path / "ws")
    (root / "agentls.toml").write_text("[agent]\nverify = false\n")
    prompts: list[str] = []

    def prompt(text: str, **kwargs: object) -> str:
        prompts.append(text)
        if len(prompts) == 2:
            return "1"  # Start
        threading.Timer(0.2, _thread.interrupt_main).start()  # Ctrl-C, delivered as the terminal would
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # a user reading the spec
            time.sleep(0.02)
        return "1"

    monkeypatch.setattr("server.cli.agent._stdin_is_terminal", lambda: True)
    monkeypatch.setattr("click.prompt", prompt)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    roles = RoleScript(feature_script())
    try:
        with FakeAnthropic(responder=roles) as fake:
            env = {
                "ANTHROPIC_API_KEY": FAKE_API_KEY,
                "ANTHROPIC_BASE_URL": fake.url,
                "AGENTLS_CACHE_DIR": str(tmp_path / "cache"),
            }
            started = time.monotonic()
            first = invoke(["run", "--mode", "team", INSTRUCTION, "--path", str(root)], env)
            assert first.exit_code == 130, first.output
            assert time.monotonic() - started < 8, "stopped at once, not after the 5 s grace"
            assert "cancelled" in first.stderr and "did not stop" not in first.stderr
            assert roles.calls == ["planner", "planner"]

            resumed = invoke(["runs", "resume", _run_id(first)], env)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert resumed.exit_code == 3, resumed.output  # proposed; verification is off
    assert len(prompts) == 2 and "Start coding from this spec?" in resumed.stderr
    assert roles.calls[2] == "architect" and roles.calls.count("planner") == 2  # not planned again
    assert "+def apply_discount(amount: float, percent: float) -> float:" in resumed.stdout
    shown = invoke(["runs", _run_id(resumed)], env)  # "By role": the first part's planner too
    assert "Summary: Percentage discounts (team run, graph team)." in shown.stdout
    assert "planner (plan)" in shown.stdout and "architect (design)" in shown.stdout
