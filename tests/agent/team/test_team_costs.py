"""A team run's cost ledger is its one account of what it spent, and survives a checkpoint and resume
exactly: per role and node the cached and uncached input apart, and an explore sub-agent's calls under
`explore` in the node of the role that delegated (not folded into that role)."""

from __future__ import annotations

from pathlib import Path

from agent.costs import RoleCost
from agent.runner import load_resumable
from agent.team.checkpoint import load_checkpoint
from tests.agent.agent_harness import EDITOR, fast_settings
from tests.agent.team.team_harness import REVIEW_PASS, RoleScript, feature_script, run_team, shop_workspace
from tests.fakes.anthropic_server import FakeAnthropic, text, tool_use, turn

QUESTION = "Where is the cart total computed, and who calls it?"


def _by_key(entries: tuple[RoleCost, ...]) -> dict[tuple[str, str | None], RoleCost]:
    return {(entry.role, entry.node): entry for entry in entries}


def test_resume_keeps_each_roles_cached_tokens_and_explore_costs(tmp_path: Path) -> None:
    root = shop_workspace(tmp_path / "ws")
    runs = tmp_path / "runs"
    settings = fast_settings(verify=False)
    settings.team.confirm_spec = False
    turns = feature_script()
    turns["planner"] = [
        turn(text("Let me see the cart."), tool_use(EDITOR, {"command": "view", "path": "shop/cart.py"})),
        tool_use("delegate", {"task": QUESTION}),
        *turns["planner"][1:],
    ]
    turns["explore"] = [text("total() in shop/cart.py:4; nothing else calls it.")]
    turns["coder"] = turns["coder"][:4]  # W1 and W2
    turns["qa"] = []  # the QA node's first call fails: the run stops there, resumable
    roles = RoleScript(turns)
    with FakeAnthropic(responder=roles) as fake:
        failed = run_team(fake, root, runs, settings)
        assert failed.status == "failed", failed
        before = _by_key(failed.roles)
        explore = before[("explore", "plan")]  # its own role, in the planner's node
        assert explore.calls == 1 and explore.usage.output_tokens > 0
        planner = before[("planner", "plan")]
        assert planner.usage.cache_read_input_tokens > 0  # the planner's later calls read its prefix
        assert planner.calls == 3  # view, delegate, submit_spec
        checkpoint = load_checkpoint(runs, failed.run_id)
        assert checkpoint is not None  # the ledger itself, not a summary per agent run
        assert [(r["role"], r["node"], r["usage"], r["calls"]) for r in checkpoint.roles] == [
            (e.role, e.node, e.usage.as_dict(), e.calls) for e in failed.roles
        ]

        roles.turns["qa"].append(tool_use("submit_review", REVIEW_PASS))
        resumed = run_team(fake, root, runs, settings, resume=load_resumable(runs, failed.run_id))
    assert resumed.status == "proposed", resumed.summary
    after = _by_key(resumed.roles)
    # Every entry of the first part is there as it was: usage (cached apart), cost and calls.
    for key, entry in before.items():
        if key[0] != "qa":
            assert after[key] == entry, key
    assert after[("qa", "review")].calls >= 1
    total = sum((entry.usage for entry in resumed.roles), start=type(resumed.usage)())
    assert total == resumed.usage and abs(sum(e.cost for e in resumed.roles) - resumed.cost) < 1e-12
