"""`agentls run --mode NAME` and `agentls graph show` with a graph defined in the workspace's agentls.toml,
driven through click against the fake Messages API playing each role."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.transcript import load_run
from tests.agent.team.team_harness import RoleScript, create, shop_workspace
from tests.fakes.anthropic_server import FakeAnthropic, tool_use
from tests.server.test_cli_agent import AGENT_TOML, env, invoke

__all__ = ["env"]  # a fixture used below

QUICK_TOML = (
    AGENT_TOML.replace("[agent]\n", "[agent]\nverify = false\n")
    + """
[[agent.team.graphs.quick.nodes]]
name = "spec"
role = "planner"

[[agent.team.graphs.quick.nodes]]
name = "build"
type = "work_items"
role = "coder"
max_steps = 5
"""
)
SPEC = {
    "title": "Vouchers",
    "user_stories": ["As a shopper, I want vouchers."],
    "acceptance_criteria": [{"id": "AC1", "text": "shop/vouchers.py defines VOUCHER = 5"}],
}


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Path]:
    root = shop_workspace(tmp_path / "ws")
    (root / "agentls.toml").write_text(QUICK_TOML)
    yield root


def test_graph_show_prints_a_workspace_graph_as_text_and_mermaid(ws: Path, env: dict[str, str]) -> None:
    shown = invoke(["graph", "show", "quick", "--path", str(ws)], env)
    assert shown.exit_code == 0, shown.output
    assert "graph quick" in shown.stdout
    assert "2. build      work_items coder     -> WorkResult per work item" in shown.stdout
    assert "max_steps 5" in shown.stdout
    assert "flowchart TD" in shown.stdout and "spec --> build" in shown.stdout
    listed = invoke(["graph", "show", "--path", str(ws)], env)
    assert [line.split(":")[0] for line in listed.stdout.splitlines() if line.startswith("graph ")] == [
        "graph solo",
        "graph team",
        "graph quick",
    ]
    missing = invoke(["graph", "show", "nope", "--path", str(ws)], env)
    assert missing.exit_code == 1 and "the graphs are: solo, team, quick" in missing.output


def test_run_mode_runs_a_custom_graph_and_an_invalid_handoff_goes_back_to_the_role(
    ws: Path, env: dict[str, str], fake_anthropic: FakeAnthropic, tmp_path: Path
) -> None:
    invalid = {**SPEC, "acceptance_criteria": [{"id": "one", "text": "vouchers"}]}
    roles = RoleScript(
        {
            "planner": [tool_use("submit_spec", invalid), tool_use("submit_spec", SPEC)],
            "coder": [
                create("shop/vouchers.py", "VOUCHER = 5\n"),
                tool_use("submit_result", {"work_item": "W1", "files_changed": ["shop/vouchers.py"]}),
            ],
        }
    )
    fake_anthropic.responder = roles
    result = invoke(["run", "Add vouchers", "--path", str(ws), "--mode", "quick"], env)
    assert roles.calls == ["planner", "planner", "coder", "coder"], result.output
    assert result.exit_code == 3, result.output  # proposed, not verified (verify = false)
    assert "+VOUCHER = 5" in result.stdout
    assert "graph quick" in result.stderr and "Spec: Vouchers" in result.stderr
    assert not (ws / "shop" / "vouchers.py").exists()

    # the invalid spec came back as a tool error naming the field, and the role corrected it
    rejected = roles.bodies[1]["messages"][-1]["content"][0]
    assert rejected["is_error"] is True
    assert "acceptance_criteria.0.id" in rejected["content"] and "pattern" in rejected["content"]
    assert "call submit_spec again" in rejected["content"]
    # the coder got the one work item made from the spec (the graph has no architect)
    brief = json.dumps(roles.bodies[2]["messages"][0])
    assert "W1" in brief and "AC1" in brief

    runs = tmp_path / "cache" / "runs"
    run_id = next(runs.glob("*.jsonl")).stem
    records = load_run(runs, run_id).records
    assert [r.get("handoff") for r in records if r.type == "handoff"] == ["Spec", "WorkItem", "WorkResult"]
    assert [r.get("role") for r in records if r.type == "handoff"] == ["planner", "planner", "coder"]
    proposal = next(r for r in records if r.type == "proposal")
    assert proposal.get("verified") is False
    shown = invoke(["runs", run_id], env)
    assert f"Run {run_id}  [proposed]" in shown.stdout
    assert "handoff Spec (planner, node spec):" in shown.stdout and "AC1: shop/vouchers.py" in shown.stdout
    assert "== role coder" in shown.stdout and "Summary: Vouchers (team run, graph quick)." in shown.stdout
    # each call as the model sent it (not the transcript's read-only copy: mappingproxy, tuples)
    assert "-> submit_result: {'work_item': 'W1', 'files_changed': ['shop/vouchers.py']}" in shown.stdout
    assert "mappingproxy" not in shown.stdout


def test_run_with_an_unknown_mode_names_the_graphs(
    ws: Path, env: dict[str, str], fake_anthropic: FakeAnthropic
) -> None:
    result = invoke(["run", "Add vouchers", "--path", str(ws), "--mode", "crew"], env)
    assert result.exit_code == 1
    assert "there is no graph 'crew'; the graphs are: solo, team, quick" in result.output
    assert fake_anthropic.message_requests == []


def test_runs_shows_the_team_decisions_in_words(
    ws: Path, env: dict[str, str], fake_anthropic: FakeAnthropic, tmp_path: Path
) -> None:
    """agentls runs ID of a team run that ends with QA still rejecting after its one round: each decision
    of the team is a line that says what happened (the spec left unconfirmed with no terminal to ask on,
    the coder's files, the round, the end of the loop). The end of the loop read 'give_up: reflection
    None', and the spec's and the files' decisions were not shown."""
    (ws / "agentls.toml").write_text(
        QUICK_TOML + '\n[[agent.team.graphs.quick.nodes]]\nname = "check"\ntype = "review"\nrole = "qa"\n'
        "max_rounds = 1\n"
    )
    review = {
        "criteria": [{"id": "AC1", "verdict": "fail", "evidence": "VOUCHER is 4"}],
        "passed": False,
        "fix_instructions": "VOUCHER must be 5.",
    }
    roles = RoleScript(
        {
            "planner": [tool_use("submit_spec", SPEC)],
            "coder": [
                create("shop/vouchers.py", "VOUCHER = 4\n"),
                tool_use("submit_result", {"work_item": "W1"}),
                create("shop/more.py", "MORE = 1\n"),
                tool_use("submit_result", {"work_item": "FIX1", "files_changed": ["shop/more.py"]}),
            ],
            "qa": [tool_use("submit_review", review)] * 2,
        }
    )
    fake_anthropic.responder = roles
    result = invoke(["run", "Add vouchers", "--path", str(ws), "--mode", "quick"], env)
    assert result.exit_code == 3 and roles.left() == {}, result.output
    run_id = next((tmp_path / "cache" / "runs").glob("*.jsonl")).stem
    shown = invoke(["runs", run_id], env).stdout
    decisions = [line.strip() for line in shown.splitlines() if line.strip().startswith("decision:")]
    assert decisions == [
        "decision: spec_unconfirmed: the spec was not confirmed (there is no terminal to ask on); the run "
        "went on",
        "decision: files_changed: W1: the coder listed no files; it changed shop/vouchers.py",
        "decision: reflection: QA rejected; round 1 of node check",
        "decision: give_up: QA still rejects after 1 round of fixes (node check)",
    ], shown
