"""A team run that fails at the QA node resumes there (`start_run(resume=...)`, as `agentls runs resume`
and `agentls.resume` do): the planner, architect and coders do not run again, their files are back."""

from __future__ import annotations

from pathlib import Path

from agent.models import Credentials
from agent.runner import load_resumable, start_run
from agent.task_builders import run_task
from agent.team.checkpoint import load_checkpoint
from tests.agent.agent_harness import fast_settings
from tests.agent.team.team_harness import INSTRUCTION, REVIEW_PASS, RoleScript, feature_script, shop_workspace
from tests.fakes.anthropic_server import FAKE_API_KEY, FakeAnthropic, tool_use


def test_a_run_failed_at_qa_resumes_at_the_qa_node(tmp_path: Path) -> None:
    root = shop_workspace(tmp_path / "ws")
    runs = tmp_path / "runs"
    settings = fast_settings(verify=False)
    turns = feature_script()
    turns["coder"] = turns["coder"][:4]  # W1 and W2
    turns["qa"] = []  # the QA node's first call fails (an error the SDK does not retry)
    roles = RoleScript(turns)
    with FakeAnthropic(responder=roles) as fake:
        credentials = Credentials(api_key=FAKE_API_KEY, base_url=fake.url)
        task = run_task(INSTRUCTION, root=root)
        first = start_run(
            task, root=root, settings=settings, credentials=credentials, runs_dir=runs, mode="team"
        )
        failed = first.wait(30)
        assert failed is not None and failed.status == "failed", failed
        assert failed.error is not None and "qa (node review)" in failed.error
        assert failed.proposal is not None and not failed.proposal.complete  # the work so far, flagged
        assert f"agentls runs resume {failed.run_id}` continues the run at node review" in failed.summary
        checkpoint = load_checkpoint(runs, failed.run_id)
        assert checkpoint is not None and checkpoint.next_node == 3 and checkpoint.spec is not None

        roles.calls.clear()
        roles.turns["qa"].append(tool_use("submit_review", REVIEW_PASS))
        state = load_resumable(runs, failed.run_id)
        events: list[str] = []
        second = start_run(
            state.task,
            root=root,
            settings=settings,
            credentials=credentials,
            runs_dir=runs,
            resume=state,
            on_event=lambda event: (
                events.append(str(event.data.get("role", ""))) if event.kind == "role" else None
            ),
        )
        resumed = second.wait(30)
    assert resumed is not None and resumed.status == "proposed", resumed and resumed.summary
    assert roles.calls == ["qa"], "only the failed node runs again"
    assert events == ["qa", "qa"]  # started, finished
    proposal = resumed.proposal
    assert proposal is not None and proposal.complete
    assert sorted(f.path for f in proposal.files) == ["shop/cart.py", "shop/discount.py"]
    assert proposal.team is not None and proposal.team["design"]["work_items"][1]["id"] == "W2"
    assert proposal.team["review"]["passed"] is True
    assert resumed.usage.total_tokens > failed.usage.total_tokens  # the first part's usage carries on
