"""A team run's wall-clock budget: `agent.max_minutes` over all roles, a node's own `max_minutes`, and a
resumed team run that counts the time of its first part (the real engine and roles, the fake API)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

from agent.models import Credentials
from agent.resume import load_state
from agent.runner import load_resumable, start_run
from agent.task_builders import run_task
from agent.team.checkpoint import load_checkpoint
from agent.team.graph import TEAM_GRAPH
from tests.agent.agent_harness import fast_settings
from tests.agent.team.team_harness import (
    INSTRUCTION,
    RoleScript,
    TeamHarness,
    feature_script,
    run_team,
    shop_workspace,
)
from tests.fakes.anthropic_server import FAKE_API_KEY, FakeAnthropic, stall

BOUND = 0.05
"""Minutes: 3 s, far under the fake's 20 s stall."""


def test_a_team_run_stops_at_its_minutes_and_a_resume_counts_them(tmp_path: Path) -> None:
    root = shop_workspace(tmp_path / "ws")
    runs = tmp_path / "runs"
    settings = fast_settings(verify=False, max_minutes=BOUND)
    settings.team.confirm_spec = False
    turns = feature_script()
    view, submit_spec = turns["planner"]
    turns["planner"] = [view, stall(20, submit_spec)]
    roles = RoleScript(turns)
    with FakeAnthropic(responder=roles) as fake:
        began = time.monotonic()
        stopped = run_team(fake, root, runs, settings)
        took = time.monotonic() - began
        assert stopped.status == "budget_exhausted", (stopped.status, stopped.error)
        assert took < 12, f"the team run went on {took:.1f} s past a 3 s bound"
        assert stopped.error is not None and "planner (node plan)" in stopped.error
        assert "Time budget reached" in stopped.error and "max_minutes = 0.05" in stopped.error
        assert f"agentls runs resume {stopped.run_id}` continues the run at node plan" in stopped.summary
        state = load_resumable(runs, stopped.run_id)
        assert state.seconds >= BOUND * 60
        checkpoint = load_checkpoint(runs, stopped.run_id)
        assert checkpoint is not None and checkpoint.node_seconds["plan"] >= BOUND * 60

        # The same bound: the time is spent, so the planner makes no call.
        calls = len(roles.calls)
        again = run_team(fake, root, runs, settings, resume=state)
        assert again.status == "budget_exhausted" and again.error is not None, again
        assert "Time budget reached" in again.error and len(roles.calls) == calls

        # A bigger bound goes on from the planner's node to the end.
        roles.turns["planner"].extend([view, submit_spec])
        bigger = settings.model_copy(update={"max_minutes": 5.0})
        resumed = run_team(fake, root, runs, bigger, resume=load_resumable(runs, again.run_id))
    assert resumed.status == "proposed", (resumed.status, resumed.error)
    assert load_state(runs, resumed.run_id).seconds >= state.seconds + resumed.seconds / 2


def test_a_nodes_own_minutes_stop_it_and_say_whose_bound_it_was(tmp_path: Path) -> None:
    root = shop_workspace(tmp_path / "ws")
    runs = tmp_path / "runs"
    settings = fast_settings(verify=False)  # no bound on the run: the design node's own
    settings.team.confirm_spec = False
    design = TEAM_GRAPH.nodes[1].model_copy(update={"max_minutes": BOUND})
    settings.team.graphs["timed"] = TEAM_GRAPH.model_copy(
        update={"nodes": (TEAM_GRAPH.nodes[0], design, *TEAM_GRAPH.nodes[2:])}
    )
    settings = settings.model_validate(settings.model_dump())  # the graph named as agentls.toml does
    turns = feature_script()
    turns["architect"] = [stall(20, turns["architect"][0])]
    with FakeAnthropic(responder=RoleScript(turns)) as fake:
        credentials = Credentials(api_key=FAKE_API_KEY, base_url=fake.url)
        began = time.monotonic()
        handle = start_run(
            run_task(INSTRUCTION, root=root),
            root=root,
            settings=settings,
            credentials=credentials,
            runs_dir=runs,
            mode="timed",
        )
        result = handle.wait(30)
        took = time.monotonic() - began
    assert result is not None and result.status == "budget_exhausted", result
    assert took < 12, f"the node went on {took:.1f} s past its 3 s bound"
    assert result.error is not None and "architect (node design)" in result.error
    assert "The budget of node design (its max_minutes in graph timed)" in result.error
    assert "Time budget reached" in result.error


def test_a_spec_confirmation_nobody_answers_is_withdrawn_at_the_bound(tmp_path: Path) -> None:
    """The user walked away while the spec waited for confirmation: at the run's bound the question is
    withdrawn and the run stops there, the spec still pending so that a resumed run asks again."""
    root = shop_workspace(tmp_path / "ws")
    runs = tmp_path / "runs"
    settings = fast_settings(verify=False, max_minutes=0.1)
    asked: list[str] = []
    walked_away = threading.Event()

    def user_away(question: str, options: Sequence[str]) -> str:
        asked.append(question)
        walked_away.wait(30)
        return "Start"

    with FakeAnthropic(responder=RoleScript(feature_script())) as fake:
        began = time.monotonic()
        try:
            stopped = (
                TeamHarness(fake, root, runs)
                .team(settings, ask=user_away)
                .run(run_task(INSTRUCTION, root=root))
            )
        finally:
            walked_away.set()
        took = time.monotonic() - began
    assert [q.split("\n")[0] for q in asked] == ["Start coding from this spec?"]
    assert stopped.status == "budget_exhausted", (stopped.status, stopped.error)
    assert took < 15, f"the question held the team run {took:.1f} s past a 6 s bound"
    assert stopped.error is not None and "Time budget reached" in stopped.error
    checkpoint = load_checkpoint(runs, stopped.run_id)
    assert checkpoint is not None and checkpoint.spec_pending and checkpoint.spec is not None
