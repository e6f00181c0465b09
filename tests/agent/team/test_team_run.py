"""Team runs against the fake Messages API playing each role, on a real overlay, sandbox and transcript."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent import verify
from agent.interpreter import Interpreter, detect_interpreter
from agent.task_builders import run_task
from agent.team.handoffs import Review
from agent.transcript import load_run
from tests.agent.agent_harness import result_text
from tests.agent.team.team_harness import (
    INSTRUCTION,
    RoleScript,
    TeamHarness,
    feature_script,
    shop_workspace,
)
from tests.fakes.anthropic_server import FakeAnthropic


@pytest.fixture
def team(tmp_path: Path) -> Iterator[tuple[TeamHarness, RoleScript]]:
    script = RoleScript(feature_script())
    with FakeAnthropic(responder=script) as fake:
        yield TeamHarness(fake, shop_workspace(tmp_path / "ws"), tmp_path / "runs"), script


def test_three_file_feature_goes_through_the_team_with_one_qa_rejection(
    team: tuple[TeamHarness, RoleScript], monkeypatch: pytest.MonkeyPatch
) -> None:
    harness, script = team
    asked: list[Path] = []

    def detect(root: Path, **kwargs: Any) -> Interpreter:
        asked.append(root)
        return detect_interpreter(root, **kwargs)

    monkeypatch.setattr(verify, "detect_interpreter", detect)
    task = run_task(INSTRUCTION, root=harness.root)
    result = harness.team().run(task)

    assert result.status == "proposed", result.summary
    assert script.left() == {}
    # planner (view, submit), architect, coder W1 (2), W2 (2), qa (3), coder FIX1 (2), qa (2)
    expected = ["planner"] * 2 + ["architect"] + ["coder"] * 4 + ["qa"] * 3 + ["coder"] * 2 + ["qa"] * 2
    assert script.calls == expected
    # QA's first run of its tests failed for real, in the sandbox: the evidence it sent back
    qa_bodies = [body for role, body in zip(script.calls, script.bodies, strict=True) if role == "qa"]
    after_first_run = result_text(qa_bodies[2]["messages"][-1]["content"][0])
    assert "failed" in after_first_run.lower() and "test_ac2_out_of_range" in after_first_run
    # the fix went to a coder with QA's evidence
    coder_bodies = [body for role, body in zip(script.calls, script.bodies, strict=True) if role == "coder"]
    fix_brief = json.dumps(coder_bodies[4]["messages"][0])
    assert "FIX1" in fix_brief and "DID NOT RAISE" in fix_brief

    proposal = result.proposal
    assert proposal is not None and proposal.verified, proposal and proposal.verification_summary
    changed = sorted(f.path for f in proposal.files)
    assert changed == ["shop/cart.py", "shop/discount.py", "tests/test_discount.py"]
    assert proposal.team is not None
    assert proposal.team["spec"]["title"] == "Percentage discounts"
    assert [w["id"] for w in proposal.team["design"]["work_items"]] == ["W1", "W2"]
    assert Review.model_validate(proposal.team["review"]).passed
    # usage per role and node (agent.costs) adds up to the run's
    charged = [(entry.role, entry.node) for entry in proposal.roles]
    assert charged == [
        ("planner", "plan"),
        ("architect", "design"),
        ("coder", "code"),
        ("qa", "review"),
        ("coder", "review"),
    ]
    assert sum(entry.cost for entry in proposal.roles) == pytest.approx(result.cost)
    assert sum(entry.usage.total_tokens for entry in proposal.roles) == result.usage.total_tokens
    assert not (harness.root / "shop" / "discount.py").exists(), "the team never writes the user's files"
    # the project's Python is asked once for the whole run, not once per role agent (7) and verification
    assert len(asked) == 1, asked

    handoffs = [(e.data["role"], e.data["handoff"]) for e in harness.of_kind("handoff")]
    assert handoffs == [
        ("planner", "Spec"),
        ("architect", "Design"),
        ("architect", "WorkItem"),
        ("coder", "WorkResult"),
        ("architect", "WorkItem"),
        ("coder", "WorkResult"),
        ("qa", "Review"),
        ("qa", "WorkItem"),
        ("coder", "WorkResult"),
        ("qa", "Review"),
    ]
    first = harness.of_kind("handoff")[0].data
    assert first["node"] == "plan" and first["document"]["acceptance_criteria"][0]["id"] == "AC1"
    assert "AC1: apply_discount(100, 10) returns 90.0" in first["markdown"]
    roles = [(e.data["role"], e.data["state"]) for e in harness.of_kind("role")]
    assert roles[:2] == [("planner", "started"), ("planner", "finished")] and len(roles) == 14
    assert not [e for e in harness.events if e.kind == "stop"][:-1], "only the team's own stop event"
    steps = [e.step for e in harness.events if e.kind == "step"]
    assert steps == list(range(1, 15)), "steps count across the roles"
    costs = [e.cost for e in harness.events if e.kind == "cost"]
    assert costs == sorted(costs) and costs[-1] == pytest.approx(result.cost)

    # the spec was confirmed before any coder ran
    assert len(harness.asked) == 1 and harness.asked[0][1] == ["Start", "Stop"]
    assert "Percentage discounts" in harness.asked[0][0]

    run = load_run(harness.runs_dir, result.run_id)
    assert [r.get("handoff") for r in run.records if r.type == "handoff"][:2] == ["Spec", "Design"]
    starts = [r.get("role") for r in run.records if r.type == "run_start"]
    assert starts[0] == "team:team" and "qa" in starts
    assert [r for r in run.records if r.type == "run_end"][-1].get("status") == "proposed"
    assert result.usage.total_tokens > 0 and result.cost > 0


def test_a_declined_spec_ends_the_run_before_any_code(team: tuple[TeamHarness, RoleScript]) -> None:
    harness, script = team
    harness.answer = "Stop"
    result = harness.team().run(run_task(INSTRUCTION, root=harness.root))
    assert result.status == "no_changes" and result.proposal is None
    assert "The spec was not confirmed (answer: Stop)" in result.summary
    assert script.calls == ["planner", "planner"]
