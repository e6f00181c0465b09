"""A team run that fails at the QA node resumes there (`start_run(resume=...)`, as `agentls runs resume`
and `agentls.resume` do): the planner, architect and coders do not run again, their files are back."""

from __future__ import annotations

import json
import shutil
from collections import deque
from collections.abc import Sequence
from pathlib import Path

import pytest

from agent.costs import CostLedger
from agent.models import Credentials
from agent.resume import RunState, load_state
from agent.runner import load_resumable, start_run
from agent.task_builders import run_task
from agent.team.checkpoint import TeamState, load_checkpoint
from agent.team.config import TeamSettings
from agent.team.engine import TeamRun
from agent.team.graph import TEAM_GRAPH
from agent.transcript import list_runs, load_run
from tests.agent.agent_harness import fast_settings
from tests.agent.team.team_harness import (
    INSTRUCTION,
    REVIEW_PASS,
    RoleScript,
    TeamHarness,
    feature_script,
    run_team,
    shop_workspace,
)
from tests.fakes.anthropic_server import (
    FAKE_API_KEY,
    FakeAnthropic,
    ScriptItem,
    fault_529,
    respond,
    slow,
    tool_use,
)


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


def test_a_team_run_killed_mid_role_resumes_the_users_task_at_that_node(tmp_path: Path) -> None:
    """The run's saved state is the team's (the user's task, the graph position, the files so far) at
    every moment a process may die: while the user reads the spec, after a coder's edit. Copies of it
    taken then resume as a killed process's would: the user's request once in each brief, W1 not redone."""
    root = shop_workspace(tmp_path / "ws")
    runs = tmp_path / "runs"
    saved = tmp_path / "saved"
    seen: dict[str, RunState] = {}

    def snapshot(name: str) -> None:
        [path] = runs.glob("*.state.json")
        run_id = path.name.removesuffix(".state.json")
        seen[name] = load_state(runs, run_id)
        (saved / name).mkdir(parents=True)
        for path in runs.glob(f"{run_id}.*json*"):
            shutil.copy(path, saved / name / path.name)

    def ask(question: str, options: Sequence[str]) -> str:
        snapshot("at the spec question")
        return "Start"

    turns = feature_script()
    w2_submit = turns["coder"][3]
    turns["coder"][3] = respond(lambda body: (snapshot("after the W2 edit"), w2_submit)[1])
    with FakeAnthropic(responder=RoleScript(turns)) as fake:
        harness = TeamHarness(fake, root, runs)
        first = harness.team(fast_settings(verify=False), ask=ask).run(run_task(INSTRUCTION, root=root))
    assert first.status == "proposed", first.summary

    at_question, mid_coder = seen["at the spec question"], seen["after the W2 edit"]
    for state in (at_question, mid_coder):
        assert state.resumable and state.status == "running", state.status
        assert state.task.instruction == INSTRUCTION, state.task.instruction[:200]
    assert sorted(mid_coder.files) == ["shop/cart.py", "shop/discount.py"]
    assert mid_coder.steps == 6 and mid_coder.usage.total_tokens > 0  # W2's own steps and calls count
    # its transcript then: the run had not ended (the coder W1's end is not the run's)
    [listed] = list_runs(saved / "after the W2 edit")
    assert listed.status == "running" and listed.cost > 0  # this process, which ran it, still lives
    assert load_run(saved / "after the W2 edit", listed.run_id).end is None

    # resume the copy taken after the W2 edit, as a process killed there would be
    turns = feature_script()
    roles = RoleScript({"coder": turns["coder"][3:], "qa": turns["qa"]})
    with FakeAnthropic(responder=roles) as fake:
        resumed = run_team(fake, root, saved / "after the W2 edit", fast_settings(verify=False), mid_coder)
    assert resumed.status == "proposed", resumed.summary
    assert resumed.task.instruction == INSTRUCTION
    assert roles.calls[0] == "coder" and "planner" not in roles.calls and "architect" not in roles.calls
    brief = json.dumps(roles.bodies[0]["messages"][0])
    assert brief.count("## The user's request") == 1 and '\\"W2\\"' in brief and '\\"W1\\"' not in brief
    assert resumed.usage.total_tokens > mid_coder.usage.total_tokens
    end = load_run(saved / "after the W2 edit", resumed.run_id).end
    assert end is not None and end.get("status") == "proposed"
    ledger = CostLedger.from_records(end.get("roles"))  # the whole run's, the part before the kill too
    assert ledger.cost == pytest.approx(resumed.cost) and ("planner", "plan") in {
        (entry.role, entry.node) for entry in ledger.entries
    }


def test_a_checkpoint_from_before_per_node_rounds_keeps_the_stopped_review_nodes_count() -> None:
    """Checkpoints used to count one total of fix rounds: resumed at a review node, that node has them all
    (so a resume cannot give it more rounds than it had); stopped elsewhere, no node is charged."""
    at_review = TeamState.model_validate({"graph": TEAM_GRAPH.model_dump(), "next_node": 3, "rounds": 2})
    assert at_review.review_rounds == {"review": 2} and at_review.rounds == 2
    at_code = TeamState.model_validate({"graph": TEAM_GRAPH.model_dump(), "next_node": 2, "rounds": 2})
    assert at_code.review_rounds == {}
    saved = TeamState(graph=TEAM_GRAPH, next_node=3, rounds=3, review_rounds={"review": 1})
    assert TeamState.model_validate_json(saved.model_dump_json()).review_rounds == {"review": 1}


def test_a_run_stopped_in_a_fix_round_resumes_with_the_fixer_not_with_qa(tmp_path: Path) -> None:
    """A 529 storm hits the coder fixing what QA found (the review node's one round). The resumed run goes
    on with that fix (FIX1, its brief with QA's findings) and then QA; it used to ask QA first, which
    judged the unfixed work and, its one round spent, ended the run 'after 1 round of fixes' no fix had
    made."""
    root = shop_workspace(tmp_path / "ws")
    runs = tmp_path / "runs"
    settings = fast_settings(verify=False, team=TeamSettings(confirm_spec=False, max_rounds=1))
    turns = feature_script()
    attempts = settings.model.max_retries + 1
    turns["coder"] = [*turns["coder"][:4], *[fault_529()] * attempts]  # W1, W2; then FIX1's call fails
    turns["qa"] = turns["qa"][:3]  # tests, run them, reject (AC2)
    roles = RoleScript(turns)
    with FakeAnthropic(responder=roles) as fake:
        failed = run_team(fake, root, runs, settings)
        assert failed.status == "failed" and failed.error is not None, failed.summary
        assert "the coder (node review) ended without a WorkResult" in failed.error
        assert "529 overloaded_error" in failed.error

        rest = feature_script()
        roles.calls.clear()
        roles.bodies.clear()
        roles.turns = {"coder": deque(rest["coder"][4:]), "qa": deque(rest["qa"][3:])}  # FIX1, then pass
        resumed = run_team(fake, root, runs, settings, load_resumable(runs, failed.run_id))
    assert roles.calls == ["coder", "coder", "qa", "qa"], roles.calls
    fixer_brief = json.dumps(roles.bodies[0]["messages"][0])
    assert '\\"FIX1\\"' in fixer_brief and "DID NOT RAISE ValueError" in fixer_brief
    assert resumed.status == "proposed", resumed.summary
    assert "WARNING" not in resumed.summary and resumed.proposal is not None
    assert resumed.proposal.team is not None and resumed.proposal.team["review"]["passed"] is True
    fixed = {change.path: change.new_text for change in resumed.proposal.files}["shop/discount.py"]
    assert "raise ValueError" in fixed
    checkpoint = load_checkpoint(runs, resumed.run_id)
    assert checkpoint is not None and checkpoint.fixing is None
    assert [result["work_item"] for result in checkpoint.results] == ["W1", "W2", "FIX1"]


def test_ctrl_c_in_a_coder_proposes_nothing_and_the_resume_goes_on_at_its_work_item(tmp_path: Path) -> None:
    """Cancel (Ctrl-C, or the editor's cancel) while the second coder waits for the model: the run stops
    at once as cancelled with no proposal, as README says; its state keeps W1's file and the checkpoint
    its result, so the resume runs W2 and QA only."""
    root = shop_workspace(tmp_path / "ws")
    runs = tmp_path / "runs"
    settings = fast_settings(verify=False, team=TeamSettings(confirm_spec=False))
    turns = feature_script()
    w2_edit = turns["coder"][2]
    team: list[TeamRun] = []

    def cancel_then_answer(body: object) -> ScriptItem:
        team[0].cancel.set()  # as the CLI's Ctrl-C handler does (RunHandle.cancel)
        return slow(60.0, w2_edit)

    turns["coder"][2] = respond(cancel_then_answer)
    roles = RoleScript(turns)
    with FakeAnthropic(responder=roles) as fake:
        team.append(TeamHarness(fake, root, runs).team(settings))
        cancelled = team[0].run(run_task(INSTRUCTION, root=root))
        assert cancelled.status == "cancelled" and cancelled.proposal is None, cancelled.summary
        assert cancelled.summary == "The run was cancelled; nothing was proposed."
        assert cancelled.seconds < 30  # not the model's 60 s
        saved = load_resumable(runs, cancelled.run_id)
        assert saved.status == "cancelled" and sorted(saved.files) == ["shop/discount.py"]
        checkpoint = load_checkpoint(runs, cancelled.run_id)
        assert checkpoint is not None and checkpoint.graph.nodes[checkpoint.next_node].name == "code"
        assert [result["work_item"] for result in checkpoint.results] == ["W1"]

        rest = feature_script()
        roles.calls.clear()
        review = tool_use("submit_review", REVIEW_PASS)
        roles.turns = {"coder": deque(rest["coder"][2:4]), "qa": deque([review])}
        resumed = run_team(fake, root, runs, settings, saved)
    assert roles.calls == ["coder", "coder", "qa"], roles.calls
    assert resumed.status == "proposed" and resumed.proposal is not None, resumed.summary
    assert sorted(change.path for change in resumed.proposal.files) == ["shop/cart.py", "shop/discount.py"]
