"""Team runs: orchestration overhead per node and tokens per role, on the scripted 3-file feature.

The feature of ``tests/agent/team`` (planner -> architect -> coders W1, W2 -> QA rejects once with a failing
test -> coder FIX1 -> QA passes) runs against the fake Messages API with zero latency, on a real overlay,
sandbox and transcript, with the final verification off (it is the sandbox's time, not orchestration).

- Overhead of a node: its wall time minus the time inside model calls (each response's latency) and inside
  tools (each tool result's seconds: sandboxed test runs, edits). What remains is ours: each role's loop
  (context gathering, prompt, tool dispatch, handoff validation, transcript) and the engine's own work
  (briefs, checkpoints, events). Baseline, in the same process: a solo run of a comparable script on the
  same workspace, whose overhead (building the agent and its run) is measured the same way. Target: a
  node's overhead divided by its agent runs within 1.5x the solo run's overhead.
- Tokens per role: input (cache included) and output tokens each role used, from the run's state.

Run: ``python -m pytest tests/benchmarks/test_team_overhead.py -m benchmark -s``.
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from agent.loop import Agent
from agent.models.anthropic import AnthropicModel
from agent.overlay import Overlay
from agent.sandbox import Sandbox
from agent.task_builders import run_task
from agent.transcript import Transcript, load_run
from tests.agent.agent_harness import fast_settings
from tests.agent.team.team_harness import (
    DISCOUNT,
    INSTRUCTION,
    RoleScript,
    TeamHarness,
    create,
    feature_script,
    shop_workspace,
)
from tests.benchmarks.harness import Entry, record, rerun_command
from tests.fakes.anthropic_server import FakeAnthropic, text, tool_use

pytestmark = pytest.mark.benchmark

RUNS = 3
RATIO = 1.5


def _agent_runs(records: list[Any]) -> list[dict[str, float]]:
    """Per agent run (run_start .. run_end of one role): wall, model and tool seconds."""
    runs: list[dict[str, float]] = []
    current: dict[str, float] | None = None
    for item in records[1:]:  # the first run_start is the team's own
        if item.type == "run_start":
            current = {"model": 0.0, "tools": 0.0}
        elif current is not None and item.type == "response":
            current["model"] += float(item.get("latency", 0.0) or 0.0)
        elif current is not None and item.type == "tool_result":
            current["tools"] += float(item.get("seconds", 0.0) or 0.0)
        elif current is not None and item.type == "run_end":
            current["wall"] = float(item.get("seconds", 0.0) or 0.0)
            current["overhead"] = current["wall"] - current["model"] - current["tools"]
            runs.append(current)
            current = None
    return runs


def _solo_overhead(tmp: Path) -> float:
    """A solo run's overhead: building the agent plus its run, minus model and tool time."""
    root = shop_workspace(tmp / "solo")
    settings = fast_settings(verify=False)
    with FakeAnthropic(
        tool_use("str_replace_based_edit_tool", {"command": "view", "path": "shop/cart.py"}),
        create("shop/discount.py", DISCOUNT),
        tool_use("run_tests", {"path": "tests/test_cart.py"}),
        text("Added shop/discount.py."),
    ) as fake:
        model = AnthropicModel(settings.model, api_key="sk-ant-fake", base_url=fake.url)
        started = time.monotonic()
        agent = Agent(
            model,
            settings,
            root=root,
            overlay=Overlay(root),
            sandbox=Sandbox(settings.sandbox),
            transcript=Transcript(tmp / "solo-runs"),
        )
        result = agent.run(run_task(INSTRUCTION, root=root))
        seconds = time.monotonic() - started
    assert result.status == "proposed", result.summary
    run = _agent_runs([None, *load_run(tmp / "solo-runs", result.run_id).records])[0]
    return seconds - run["model"] - run["tools"]


def test_team_orchestration_overhead_and_tokens_per_role(tmp_path: Path) -> None:
    solo = [_solo_overhead(tmp_path / f"s{i}") for i in range(RUNS)]
    per_agent: list[float] = []
    loop: list[float] = []
    engine: dict[str, list[float]] = defaultdict(list)
    nodes: dict[str, list[float]] = defaultdict(list)
    tokens: dict[str, dict[str, int]] = defaultdict(lambda: {"input": 0, "output": 0, "runs": 0})
    for i in range(RUNS):
        script = RoleScript(feature_script())
        with FakeAnthropic(responder=script) as fake:
            harness = TeamHarness(fake, shop_workspace(tmp_path / f"t{i}"), tmp_path / f"t{i}-runs")
            team = harness.team(fast_settings(verify=False))
            result = team.run(run_task(INSTRUCTION, root=harness.root))
        assert result.status == "proposed", result.summary
        agents = _agent_runs(list(load_run(harness.runs_dir, result.run_id).records))
        assert len(agents) == len(team.state.roles) == 7
        loop += [a["overhead"] for a in agents]
        by_node: dict[str, list[dict[str, float]]] = defaultdict(list)
        for entry, agent in zip(team.state.roles, agents, strict=True):
            by_node[entry["node"]].append(agent)
            if i == 0:
                tokens[entry["role"]]["input"] += entry["inputTokens"]
                tokens[entry["role"]]["output"] += entry["outputTokens"]
                tokens[entry["role"]]["runs"] += 1
        for node, seconds in team.node_seconds.items():
            overhead = seconds - sum(a["model"] + a["tools"] for a in by_node[node])
            nodes[node].append(overhead)
            engine[node].append(seconds - sum(a["wall"] for a in by_node[node]))
            per_agent += [overhead / len(by_node[node])] * len(by_node[node])

    solo_ms = statistics.median(solo) * 1000
    agent_ms = statistics.median(per_agent) * 1000
    loop_ms = statistics.median(loop) * 1000
    engine_ms = {node: statistics.median(values) * 1000 for node, values in engine.items()}
    node_ms = {node: statistics.median(values) * 1000 for node, values in nodes.items()}
    ratio = agent_ms / solo_ms
    passed = ratio <= RATIO
    role_line = ", ".join(
        f"{role} {t['input']:,} in / {t['output']:,} out ({t['runs']} run{'s' if t['runs'] > 1 else ''})"
        for role, t in tokens.items()
    )
    record(
        Entry(
            key="team.overhead",
            title="Team run orchestration overhead per node and tokens per role (scripted 3-file feature)",
            target=f"overhead per role agent run (node overhead / its agent runs) <= {RATIO:g}x a solo "
            "run's overhead (building the agent and running it, minus model and tool time)",
            measured=f"{agent_ms:.0f} ms per role agent run vs {solo_ms:.0f} ms per solo run = {ratio:.2f}x",
            passed=passed,
            figures={
                "role_run_overhead_ms": round(agent_ms, 1),
                "role_loop_overhead_ms": round(loop_ms, 1),
                "solo_run_overhead_ms": round(solo_ms, 1),
                "ratio": round(ratio, 3),
                "node_overhead_ms": {k: round(v, 1) for k, v in node_ms.items()},
                "engine_overhead_ms": {k: round(v, 1) for k, v in engine_ms.items()},
                "tokens_per_role": dict(tokens),
                "runs": RUNS,
            },
            details=[
                "overhead per node (non-model, non-tool time; median of "
                f"{RUNS} runs): " + ", ".join(f"{k} {v:.0f} ms" for k, v in node_ms.items()),
                f"inside each role's loop (its run, median): {loop_ms:.0f} ms; outside it (building each "
                "role's agent, briefs, checkpoints, events): "
                + ", ".join(f"{k} {v:.0f} ms" for k, v in engine_ms.items()),
                f"tokens per role (one run): {role_line}",
            ],
            rerun=rerun_command(
                "tests/benchmarks/test_team_overhead.py::test_team_orchestration_overhead_and_tokens_per_role"
            ),
        )
    )
    assert passed
