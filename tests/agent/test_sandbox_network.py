"""The sandbox's network policy (`agent.sandbox.network`, `agent.netsandbox`), on real bubblewrap.

Two HTTP servers on the host's 127.0.0.1 stand in for an allowed registry and for any other host. With
"registries" the sandbox reaches the first through agentls' proxy only, the second is refused with 403,
a direct connection finds no route, and the run's transcript records every request and approval; with
"off" nothing connects at all; with "on" the host's network is shared.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.loop import RunResult
from agent.sandbox import Sandbox, SandboxSettings
from agent.task_builders import run_task
from agent.tools.ask import NoAnswer
from agent.transcript import load_run
from server.cli.agent import _show_run
from tests.agent.agent_harness import (
    GOOD_BODY,
    STUB_BODY,
    Harness,
    bash,
    copy_workspace,
    done,
    fast_settings,
    mean_task,
    replace,
)
from tests.fakes.anthropic_server import FakeAnthropic, text, turn
from tests.fakes.registry_stub import RegistryStub


@pytest.fixture
def servers() -> Iterator[tuple[RegistryStub, RegistryStub]]:
    registry, other = RegistryStub(), RegistryStub()
    yield registry, other
    registry.close()
    other.close()


def _probe(*ports: int) -> str:
    """A Python command that fetches / from each port through the proxy variables, then tries each port
    directly, printing one line per attempt."""
    return (
        "python3 -c '\n"
        "import socket, urllib.request\n"
        f"for p in {ports!r}:\n"
        "    try:\n"
        '        url = f"http://127.0.0.1:{p}/simple/"\n'
        "        print(p, urllib.request.urlopen(url, timeout=5).read().decode())\n"
        "    except Exception as e:\n"
        '        print(p, "refused", e)\n'
        "    try:\n"
        '        socket.create_connection(("127.0.0.1", p), timeout=3).close()\n'
        '        print(p, "direct connected")\n'
        "    except OSError as e:\n"
        '        print(p, "direct failed", e.errno)\n'
        "'"
    )


def test_registries_reach_only_the_allowed_host_through_the_proxy(
    servers: tuple[RegistryStub, RegistryStub], tmp_path: Path
) -> None:
    registry, other = servers
    sandbox = Sandbox(SandboxSettings(network="registries", allowed_hosts=[f"127.0.0.1:{registry.port}"]))
    try:
        result = sandbox.run(_probe(registry.port, other.port), tmp_path)
        gateway = sandbox.network_gateway()
        assert gateway is not None
        requests = gateway.requests
    finally:
        sandbox.close()
    lines = result.stdout.splitlines()
    assert f"{registry.port} simple index at /simple/" in lines
    assert any(line.startswith(f"{other.port} refused") and "403" in line for line in lines)
    # No route but the proxy: the ports of the host's loopback are not even there.
    assert f"{registry.port} direct connected" not in lines and f"{other.port} direct connected" not in lines
    assert registry.hits == ["/simple/"] and other.hits == []
    assert [(r.port, r.allowed) for r in requests] == [(registry.port, True), (other.port, False)]
    assert requests[1].reason == "not in the allowlist"


def test_the_time_limit_does_not_run_while_the_user_is_asked(
    servers: tuple[RegistryStub, RegistryStub], tmp_path: Path
) -> None:
    """With `approve = "ask"` a command's first request to a registry waits for the user: that wait (4 s
    here, minutes at a desk) is not the command's time (3 s), which then fetches and ends. The limit
    still holds once the answer is in."""
    registry, _ = servers
    settings = SandboxSettings(
        network="registries", allowed_hosts=[f"127.0.0.1:{registry.port}"], timeout_seconds=3
    )
    sandbox = Sandbox(settings)
    gateway = sandbox.network_gateway()
    assert gateway is not None

    def slow_user(host: str, port: int) -> bool:
        time.sleep(4)
        return True

    gateway.approve = slow_user
    try:
        result = sandbox.run(_probe(registry.port), tmp_path)
        later = sandbox.run("sleep 60", tmp_path)
        requests = gateway.requests
    finally:
        sandbox.close()
    assert not result.timed_out, result.stdout + result.stderr
    assert f"{registry.port} simple index at /simple/" in result.stdout.splitlines()
    assert [(r.port, r.reason) for r in requests] == [(registry.port, "allowlisted and approved")]
    assert later.timed_out and later.duration < 30  # the 3 s limit, not the 60 s sleep


@pytest.mark.parametrize(
    "command",
    [
        "python3 -m pip list",
        pytest.param(
            "npm test",
            marks=pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed"),
        ),
    ],
)
def test_tools_do_not_ask_a_registry_for_their_own_updates(
    servers: tuple[RegistryStub, RegistryStub], tmp_path: Path, command: str
) -> None:
    """pip and npm look for a newer version of themselves on every run (npm even for `npm test`): under
    "registries" each look was a request to record and, with `approve = "ask"`, a question to the user
    about a registry the command never needed. They are switched off in the sandbox."""
    registry, _ = servers
    (tmp_path / "package.json").write_text('{"name": "p", "version": "1.0.0", "scripts": {"test": "true"}}')
    sandbox = Sandbox(SandboxSettings(network="registries", allowed_hosts=[f"127.0.0.1:{registry.port}"]))
    try:
        result = sandbox.run(command, tmp_path)
        gateway = sandbox.network_gateway()
        assert gateway is not None
        requests = gateway.requests
    finally:
        sandbox.close()
    assert result.exit_code == 0, result.stderr
    assert [(r.host, r.port) for r in requests] == []
    assert "notice" not in result.stdout + result.stderr


def test_off_connects_nowhere_and_on_shares_the_host_network(
    servers: tuple[RegistryStub, RegistryStub], tmp_path: Path
) -> None:
    registry, _ = servers
    off = Sandbox(SandboxSettings(network="off", allowed_hosts=[f"127.0.0.1:{registry.port}"]))
    assert off.network_gateway() is None
    result = off.run(_probe(registry.port), tmp_path, env={"HTTP_PROXY": "http://127.0.0.1:3128"})
    assert "simple index at /simple/" not in result.stdout and "direct connected" not in result.stdout
    assert registry.hits == []

    on = Sandbox(SandboxSettings(network="on"))
    result = on.run(_probe(registry.port), tmp_path)
    assert f"{registry.port} simple index at /simple/" in result.stdout.splitlines()
    assert f"{registry.port} direct connected" in result.stdout.splitlines()


def test_a_runs_requests_and_approvals_are_in_its_transcript(
    servers: tuple[RegistryStub, RegistryStub],
    fake_anthropic: FakeAnthropic,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    registry, other = servers
    root = copy_workspace(tmp_path / "ws")
    harness = Harness(fake_anthropic, root, tmp_path / "runs")
    questions: list[str] = []

    def ask(question: str, options: object) -> str:
        questions.append(question)
        return "Allow"

    settings = fast_settings(
        verify=False,
        approve="ask",
        sandbox=SandboxSettings(
            timeout_seconds=15,
            network="registries",
            allowed_hosts=[f"127.0.0.1:{registry.port}"],
        ),
    )
    probe = _probe(registry.port, other.port, registry.port)
    fake_anthropic.enqueue(bash(probe), done("Fetched the index."))
    agent = harness.agent(settings, ask=ask)
    try:
        result = agent.run(run_task("Fetch the registry's index", root=root))
    finally:
        agent.resources.sandbox.close()  # type: ignore[attr-defined]
    records = harness.transcript_records(result)
    network = [r for r in records if r["type"] == "network"]
    assert [(r["port"], r["allowed"], r["reason"]) for r in network] == [
        (registry.port, True, "allowlisted and approved"),
        (other.port, False, "not in the allowlist"),
        (registry.port, True, "allowlisted and approved"),
    ]
    approvals = [r for r in records if r["type"] == "approval"]
    # Asked once for the host, before its first request; the answer is recorded.
    assert len(questions) == 1 and f"127.0.0.1:{registry.port}" in questions[0]
    assert [(a["subject"], a["detail"], a["approved"]) for a in approvals] == [
        ("network", f"127.0.0.1:{registry.port}", True)
    ]
    assert registry.hits == ["/simple/", "/simple/"] and other.hits == []

    # `agentls runs ID` shows them among the steps.
    _show_run(load_run(tmp_path / "runs", result.run_id))
    shown = capsys.readouterr().out
    assert f"network GET http://127.0.0.1:{other.port}/simple/: REFUSED (not in the allowlist)" in shown
    assert f"approval (network) 127.0.0.1:{registry.port}: approved" in shown


def test_an_approval_nobody_answers_does_not_hold_a_command_past_the_runs_time(
    servers: tuple[RegistryStub, RegistryStub], fake_anthropic: FakeAnthropic, tmp_path: Path
) -> None:
    """A network approval does not eat the command's own limit (the test above), but the run's time bound
    (`agent.max_minutes`, 6 s) counts the wait: the question is withdrawn at the bound, the command waiting
    on it is stopped there too (before, the wait was added to its limit, so it ran on past the bound by as
    long as the question had waited), and the run stops as the bound stops it, the withdrawal in its
    transcript and the edit so far kept."""
    registry, _ = servers
    root = copy_workspace(tmp_path / "ws")
    harness = Harness(fake_anthropic, root, tmp_path / "runs")
    test_over = threading.Event()

    def walked_away(question: str, options: object) -> str:
        test_over.wait(60)  # nobody answers: the question is withdrawn (the helper thread ends with the test)
        raise NoAnswer("the test is over")

    settings = fast_settings(
        verify=False,
        approve="ask",
        max_minutes=0.1,
        sandbox=SandboxSettings(
            timeout_seconds=30, network="registries", allowed_hosts=[f"127.0.0.1:{registry.port}"]
        ),
    )
    fake_anthropic.enqueue(
        turn(
            text("Plan: implement mean, then fetch the index."),
            replace(STUB_BODY, GOOD_BODY),
            bash(f"{_probe(registry.port)}; sleep 30"),
        ),
        done(),
    )
    agent = harness.agent(settings, ask=walked_away)
    began = time.monotonic()
    try:
        result = agent.run(mean_task(root))
    finally:
        took = time.monotonic() - began
        agent.resources.sandbox.close()  # type: ignore[attr-defined]

    assert result.status == "budget_exhausted", (result.status, result.error)
    # Stopped at the 6 s bound, not the command's 30 s (its sleep, the sandbox's timeout): 20 s leaves room
    # for a loaded machine (9.5 s was the bound).
    assert took < 20, f"the command waiting for the approval held the run {took:.1f} s with a 6 s bound"
    assert result.proposal is not None and "+    return sum(values) / len(values)" in result.proposal.diff
    # The approval's records are written by the proxy's thread, which saw the bound as the run did.
    records = _records_with(harness, result, "question_withdrawn")
    test_over.set()
    [approval] = [r for r in records if r["type"] == "approval"]
    assert approval["subject"] == "network" and approval["approved"] is False and approval["answer"] is None
    [withdrawn] = [r for r in records if r.get("kind") == "question_withdrawn"]
    assert withdrawn["subject"] == "network" and withdrawn["detail"] == f"127.0.0.1:{registry.port}"
    assert "agent.max_minutes" in withdrawn["reason"]
    [bash_result] = [r for r in records if r["type"] == "tool_result" and r["name"] == "bash"]
    assert "the agent run's time (agent.max_minutes) ran out" in bash_result["content"]
    [stop] = [r for r in records if r.get("kind") == "budget_stop"]
    assert stop["limit"] == "max_minutes"
    assert registry.hits == []


def _records_with(harness: Harness, result: RunResult, kind: str) -> list[dict[str, Any]]:
    """The run's transcript records once a decision of `kind` is among them (at most 3 s)."""
    deadline = time.monotonic() + 3
    records = harness.transcript_records(result)
    while not any(r.get("kind") == kind for r in records) and time.monotonic() < deadline:
        time.sleep(0.05)
        records = harness.transcript_records(result)
    return records
