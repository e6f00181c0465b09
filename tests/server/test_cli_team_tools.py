"""`agentls run` and `agentls runs ID` with the team tools in a solo run, through click against the fake
Messages API: todo changes printed as they happen, the cost split by role (a cheaper explore model from
agentls.toml), the delegate step, the per-role table and the last todo list read back from the transcript.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.costs import RoleCost
from agent.usage import Usage
from server.messages import ProposalDetails, to_json
from tests.agent.agent_harness import GOOD_BODY, STUB_BODY, copy_workspace, replace
from tests.fakes.anthropic_server import FAKE_API_KEY, FakeAnthropic, text, tool_use, turn
from tests.server.test_cli_agent import AGENT_TOML, invoke

TOML = AGENT_TOML.replace("[agent]\n", "[agent]\nverify = false\n") + (
    '\n[agent.roles.explore.model]\nmodel = "claude-haiku-4-5"\n'
)


def env_for(fake: FakeAnthropic, tmp_path: Path) -> dict[str, str]:
    return {
        "ANTHROPIC_API_KEY": FAKE_API_KEY,
        "ANTHROPIC_BASE_URL": fake.url,
        "AGENTLS_CACHE_DIR": str(tmp_path / "cache"),
        "ANTHROPIC_AUTH_TOKEN": "",
    }


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Path]:
    root = copy_workspace(tmp_path / "ws")
    (root / "agentls.toml").write_text(TOML)
    yield root


def test_run_prints_todo_changes_and_cost_by_role_and_runs_shows_them(ws: Path, tmp_path: Path) -> None:
    with FakeAnthropic() as fake:
        fake.enqueue(
            turn(
                text("Plan: find the stub, implement it."),
                tool_use("todo", {"command": "add", "items": ["Find the stub", "Implement mean"]}),
            ),
            turn(
                tool_use("todo", {"command": "update", "id": "1", "status": "in_progress"}),
                tool_use("delegate", {"task": "Where is mean defined?"}),
            ),
            text("`mean` is a stub in mathx/stats.py:1."),  # the explore sub-agent
            tool_use("todo", {"command": "complete", "id": "1"}),
            replace(STUB_BODY, GOOD_BODY),
            tool_use("todo", {"command": "complete", "id": "2"}),
            text("Implemented `mean`."),
        )
        env = env_for(fake, tmp_path)
        result = invoke(["run", "Implement mean in mathx/stats.py", "--path", str(ws)], env)
        models = [r.body["model"] for r in fake.message_requests]

    assert result.exit_code == 3, result.output  # proposed, not verified (verify = false)
    out = result.output
    for line in (
        "todo [ ] 1 Find the stub",
        "todo [ ] 2 Implement mean",
        "todo [>] 1 Find the stub",
        "todo [x] 1 Find the stub",
        "todo [x] 2 Implement mean",
    ):
        assert line in out, line
    assert out.count("todo [ ] 1 Find the stub") == 1  # only changes are printed
    assert "by role: solo $" in out and "explore $" in out
    assert models.count("claude-haiku-4-5") == 1 and len(models) == 7

    run_id = next(p.stem for p in (tmp_path / "cache" / "runs").glob("*.jsonl"))
    shown = invoke(["runs", run_id], env)
    assert shown.exit_code == 0, shown.output
    text_ = shown.stdout
    assert "delegate -> explore: answered, 1 steps" in text_ and "(claude-haiku-4-5)" in text_
    roles = text_.split("By role:", 1)[1].split("Todo:", 1)[0]
    assert "solo" in roles and "6 calls" in roles and "explore" in roles and "1 call" in roles
    assert text_.rstrip().endswith("Todo:\n  [x] 1 Find the stub\n  [x] 2 Implement mean")
    listed = json.loads(invoke(["runs", "--json"], env).stdout)
    assert listed[0]["cost"] == pytest.approx(
        sum(float(line.split("$", 1)[1].split()[0]) for line in roles.strip().splitlines()), abs=2e-4
    )


def test_the_proposal_payload_lists_usage_and_cost_per_role() -> None:
    roles = [
        RoleCost("solo", None, Usage(input_tokens=10, cache_read_input_tokens=90, output_tokens=7), 0.02, 3),
        RoleCost("explore", None, Usage(input_tokens=50, output_tokens=5), 0.001, 2),
        RoleCost("coder", "build", Usage(cache_creation_input_tokens=40, output_tokens=1), 0.003, 1),
    ]
    details = ProposalDetails(
        "p1", "r1", "done", "D", [], {}, 0.024, False, "", True, "pending", roles=[r.payload() for r in roles]
    )
    assert to_json(details)["roles"] == [
        {"role": "solo", "inputTokens": 100, "outputTokens": 7, "cost": 0.02},
        {"role": "explore", "inputTokens": 50, "outputTokens": 5, "cost": 0.001},
        {"role": "coder", "inputTokens": 40, "outputTokens": 1, "cost": 0.003, "node": "build"},
    ]
    assert "roles" not in to_json(ProposalDetails("p1", "r1", "", "", [], {}, 0.0, False, "", True, "x"))
