"""Team runs against the fake Messages API playing each role, on a real overlay, sandbox and transcript."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from agent import verify
from agent.interpreter import Interpreter, detect_interpreter
from agent.task_builders import run_task
from agent.team.config import TeamSettings
from agent.team.graph import Graph, Node
from agent.team.handoffs import Review
from agent.toolchains import Toolchain, detect_toolchains
from agent.transcript import load_run
from tests.agent.agent_harness import fast_settings, result_text
from tests.agent.team.team_harness import (
    CHECK,
    DESIGN,
    INSTRUCTION,
    REVIEW_FAIL,
    REVIEW_PASS,
    SPEC,
    TWO_REVIEWS,
    RoleScript,
    TeamHarness,
    feature_script,
    replace,
    shop_workspace,
    two_reviews_script,
)
from tests.fakes.anthropic_server import FakeAnthropic, cut_at_max_tokens, text, tool_use


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
    checked: list[Path] = []

    def toolchains(root: Path, **kwargs: Any) -> tuple[Toolchain, ...]:
        checked.append(root)
        return detect_toolchains(root, **kwargs)

    monkeypatch.setattr(verify, "detect_toolchains", toolchains)
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
    # and so are its Cargo and Go (each role's prompt names them; a Rust or Go project asks them in a sandbox)
    assert len(checked) == 1, checked

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


def test_a_handoff_written_as_json_text_is_validated_and_kept(tmp_path: Path) -> None:
    """A role that writes its handoff in its reply instead of calling the submit tool: a valid document
    is taken (the planner's fenced spec), an invalid one comes back with the validation message (the
    architect's design without work items) and the corrected one goes on; nothing is planned twice."""
    turns = feature_script()
    turns["planner"] = [text("Here is the spec:\n```json\n" + json.dumps(SPEC, indent=1) + "\n```")]
    no_items = {key: value for key, value in DESIGN.items() if key != "work_items"}
    turns["architect"] = [text("The design: " + json.dumps(no_items)), text(json.dumps(DESIGN))]
    script = RoleScript(turns)
    with FakeAnthropic(responder=script) as fake:
        harness = TeamHarness(fake, shop_workspace(tmp_path / "ws"), tmp_path / "runs")
        result = harness.team(fast_settings(verify=False)).run(run_task(INSTRUCTION, root=harness.root))

    assert result.status == "proposed", result.summary
    assert script.calls[:3] == ["planner", "architect", "architect"] and script.left() == {}
    architect = [body for role, body in zip(script.calls, script.bodies, strict=True) if role == "architect"]
    reminder = json.dumps(architect[1]["messages"][-1]["content"])
    assert "The Design in your reply was not submitted" in reminder and "work_items" in reminder
    assert result.proposal is not None and result.proposal.team is not None
    assert result.proposal.team["spec"] == SPEC and len(result.proposal.team["design"]["work_items"]) == 2
    run = load_run(harness.runs_dir, result.run_id)
    taken = [r.get("handoff") for r in run.records if r.get("kind") == "handoff_in_text"]
    assert taken == ["Spec", "Design"]


def test_a_handoff_that_is_not_json_or_is_cut_off_is_asked_for_again_saying_why(tmp_path: Path) -> None:
    """The planner writes its spec as JSON that does not parse (Python's True), then calls submit_spec but
    is cut off at max_tokens: it is told the parser's error (it used to get only 'You have not submitted
    your Spec yet'), then that a Spec is one call, to send shorter (it used to get the solo loop's advice
    to create a short file and add to it, which a handoff cannot do); its third try is taken."""
    not_json = json.dumps(SPEC).replace('"open_questions": []', '"open_questions": [], "final": True')
    cut = cut_at_max_tokens(tool_use("submit_spec", SPEC), 120)
    script = RoleScript({"planner": [text(f"```json\n{not_json}\n```"), cut, tool_use("submit_spec", SPEC)]})
    graph = Graph(name="plan", nodes=(Node(name="plan", role="planner"),))
    with FakeAnthropic(responder=script) as fake:
        harness = TeamHarness(fake, shop_workspace(tmp_path / "ws"), tmp_path / "runs")
        team = harness.team(fast_settings(verify=False), graph)
        result = team.run(run_task(INSTRUCTION, root=harness.root))

    assert script.calls == ["planner"] * 3 and script.left() == {}, result.summary
    reminder = json.dumps(script.bodies[1]["messages"][-1]["content"])
    assert "The Spec in your reply was not submitted: it is not valid JSON (Expecting value" in reminder
    [cut_off] = [
        result_text(block) for block in script.bodies[2]["messages"][-1]["content"] if block.get("is_error")
    ]
    assert "before your Spec was complete, so it was NOT submitted" in cut_off
    assert "A Spec is one call and cannot be sent in parts: call submit_spec again" in cut_off
    assert "`create` a short file" not in cut_off
    assert result.status == "no_changes" and result.plan.startswith("### Spec: Percentage discounts")


def _plan_design() -> tuple[Graph, RoleScript]:
    graph = Graph(
        name="plan_design",
        description="a spec and a design",
        nodes=(Node(name="plan", role="planner"), Node(name="design", role="architect")),
    )
    script = RoleScript(
        {"planner": [tool_use("submit_spec", SPEC)], "architect": [tool_use("submit_design", DESIGN)]}
    )
    return graph, script


def test_a_design_that_leaves_a_criterion_to_no_work_item_goes_back_to_the_architect(tmp_path: Path) -> None:
    """The architect's first design gives AC3 to no work item, so no coder would be told to meet it (QA
    would fail it and a fix round would pay for the gap): it goes back to the architect naming AC3, and
    the corrected design goes on. The first design used to be taken."""
    graph, script = _plan_design()
    items = DESIGN["work_items"]
    gap = {**DESIGN, "work_items": [items[0], {**items[1], "criteria": ["AC1"]}]}
    script.turns["architect"].appendleft(tool_use("submit_design", gap))
    with FakeAnthropic(responder=script) as fake:
        harness = TeamHarness(fake, shop_workspace(tmp_path / "ws"), tmp_path / "runs")
        team = harness.team(fast_settings(verify=False), graph)
        result = team.run(run_task(INSTRUCTION, root=harness.root))

    assert script.calls == ["planner", "architect", "architect"] and script.left() == {}, result.summary
    [told] = [
        result_text(block) for block in script.bodies[2]["messages"][-1]["content"] if block.get("is_error")
    ]
    assert "Work items serve the spec's acceptance criteria (AC1, AC2, AC3)" in told
    assert "AC3 is served by no work item" in told
    designs = [e.data["document"] for e in harness.of_kind("handoff") if e.data["handoff"] == "Design"]
    assert [item["criteria"] for item in designs[0]["work_items"]] == [["AC1", "AC2"], ["AC3"]]


def test_a_warning_every_role_gives_is_said_once_per_run(tmp_path: Path) -> None:
    """Each role starts the MCP servers again, so a server that cannot start fails for each: the run says
    it once (the event `agentls run`, `agentls acp` and the editor show), while the transcript keeps each
    role's record and each role's model is told with its brief."""
    from agent.mcp.config import McpServerSettings, McpSettings
    from agent.mcp.trust import TRUST_FILE, McpTrust

    graph, script = _plan_design()
    broken = McpServerSettings(command="/nonexistent/mcp-server")
    settings = fast_settings(verify=False, mcp=McpSettings(servers={"tracker": broken}))
    with FakeAnthropic(responder=script) as fake:
        harness = TeamHarness(fake, shop_workspace(tmp_path / "ws"), tmp_path / "runs")
        McpTrust(tmp_path / TRUST_FILE).remember(harness.root, "tracker", broken)  # the transcripts' parent
        result = harness.team(settings, graph).run(run_task(INSTRUCTION, root=harness.root))

    assert script.calls == ["planner", "architect"] and script.left() == {}, result.error
    said = [e.message for e in harness.of_kind("warning") if e.data.get("subject") == "mcp_server"]
    assert len(said) == 1 and said[0].startswith("The MCP server `tracker` could not start"), said
    run = load_run(harness.runs_dir, result.run_id)
    failed = [r.get("message") for r in run.records if r.get("kind") == "mcp_server_failed"]
    assert failed == said * 2  # one per role
    for body in script.bodies:
        assert "Note: The MCP server `tracker` could not start" in json.dumps(body["messages"][0])


@pytest.mark.parametrize("answer", ["Don't start", None], ids=["dont_start", "dismissed"])
def test_the_user_is_asked_once_per_run_whether_to_trust_a_server(tmp_path: Path, answer: str | None) -> None:
    """Each role starts the MCP servers again, but the user answers the trust question once per run: the
    planner's question and answer ("Don't start", or a question dismissed in the editor) hold for the
    architect, who is not asked. The transcript has the question and answer, and the architect's
    decision taken from it; neither role gets the server's tools."""
    from agent.mcp.config import McpServerSettings, McpSettings
    from agent.mcp.trust import DONT, TRUST, TRUST_FILE, McpTrust
    from agent.tools.ask import NoAnswer

    questions: list[tuple[str, list[str]]] = []

    def ask(question: str, options: Sequence[str]) -> str:
        questions.append((question, list(options)))
        if TRUST not in options:
            return "Start"
        if answer is None:
            raise NoAnswer("the user dismissed the question")
        return answer

    graph, script = _plan_design()
    tracker = McpServerSettings(command="/nonexistent/mcp-server")
    settings = fast_settings(verify=False, mcp=McpSettings(servers={"tracker": tracker}))
    with FakeAnthropic(responder=script) as fake:
        harness = TeamHarness(fake, shop_workspace(tmp_path / "ws"), tmp_path / "runs")
        result = harness.team(settings, graph, ask=ask).run(run_task(INSTRUCTION, root=harness.root))

    assert script.calls == ["planner", "architect"] and script.left() == {}, result.error
    asked = [question for question, options in questions if options == [TRUST, DONT]]
    assert len(asked) == 1 and "the MCP server `tracker`" in asked[0], asked
    run = load_run(harness.runs_dir, result.run_id)
    roles = [str(r.get("role")) for r in run.records if r.type == "run_start"]
    assert roles == ["team:plan_design", "planner", "architect"]
    approvals = [
        (r.get("detail"), r.get("approved"), r.get("answer")) for r in run.records if r.type == "approval"
    ]
    assert approvals == [("tracker", False, answer)]
    answered = [r for r in run.records if r.get("kind") == "mcp_server_answered"]
    assert [(r.get("server"), r.get("trusted"), r.get("answer")) for r in answered] == [
        ("tracker", False, answer)
    ]
    planner_end = next(i for i, r in enumerate(run.records) if r.type == "run_end")
    assert run.records.index(answered[0]) > planner_end  # the architect's, taken from the planner's answer
    for body in script.bodies:
        assert not [t for t in body["tools"] if t["name"].startswith("mcp__")]
    said = [e.message for e in harness.of_kind("warning") if e.data.get("subject") == "mcp_server"]
    untrusted = [r.get("message") for r in run.records if r.get("kind") == "mcp_server_untrusted"]
    if answer is None:  # no answer: said once, each role's record and model note as for a failed server
        assert len(said) == 1 and "got no answer (the user dismissed the question)" in said[0], said
        assert untrusted == said * 2
        for body in script.bodies:
            assert "Note: The MCP server `tracker` was not started" in json.dumps(body["messages"][0])
    else:  # the user's own answer: nothing to warn of
        assert said == [] and untrusted == []
    assert not McpTrust(tmp_path / TRUST_FILE).is_trusted(harness.root, tracker)  # asked again next run


def test_trust_given_once_in_a_team_run_is_remembered_for_its_later_roles(tmp_path: Path) -> None:
    """ "Trust and start" goes to the trust file at once, so the architect starts the server on it without
    a question (an `mcp_server_trusted` decision)."""
    from agent.mcp.config import McpServerSettings, McpSettings
    from agent.mcp.trust import DONT, TRUST

    questions: list[list[str]] = []

    def ask(question: str, options: Sequence[str]) -> str:
        questions.append(list(options))
        return TRUST if TRUST in options else "Start"

    graph, script = _plan_design()
    tracker = McpServerSettings(command="/nonexistent/mcp-server")  # trusted, then fails to start
    settings = fast_settings(verify=False, mcp=McpSettings(servers={"tracker": tracker}))
    with FakeAnthropic(responder=script) as fake:
        harness = TeamHarness(fake, shop_workspace(tmp_path / "ws"), tmp_path / "runs")
        result = harness.team(settings, graph, ask=ask).run(run_task(INSTRUCTION, root=harness.root))

    assert script.calls == ["planner", "architect"] and script.left() == {}, result.error
    assert questions.count([TRUST, DONT]) == 1
    run = load_run(harness.runs_dir, result.run_id)
    assert [(r.get("detail"), r.get("approved")) for r in run.records if r.type == "approval"] == [
        ("tracker", True)
    ]
    assert [r.get("server") for r in run.records if r.get("kind") == "mcp_server_trusted"] == ["tracker"]


def test_a_role_that_never_submits_fails_its_node_saying_so(tmp_path: Path) -> None:
    turns = feature_script()
    turns["planner"] = [text("I think the cart needs discounts.")] * 3
    script = RoleScript(turns)
    with FakeAnthropic(responder=script) as fake:
        harness = TeamHarness(fake, shop_workspace(tmp_path / "ws"), tmp_path / "runs")
        result = harness.team(fast_settings(verify=False)).run(run_task(INSTRUCTION, root=harness.root))
    assert result.status == "failed" and script.calls == ["planner"] * 3
    assert result.error is not None
    why = "the planner (node plan) ended without a Spec: it answered 3 times without calling `submit_spec`"
    assert why in result.error


def test_a_handoff_invalid_again_and_again_stops_the_run_saying_which_field_is_wrong(tmp_path: Path) -> None:
    """The planner submits the same spec with a bad criterion id three times: the run stops as stuck, and
    both the role's correction and the user's message name the field and the value. They used to quote
    only the correction's first line: 'stuck: ... (The Spec is not valid; fix these and call submit_spec
    again:)', which said nothing of what was wrong."""
    turns = feature_script()
    bad = {**SPEC, "acceptance_criteria": [{"id": "one", "text": "apply_discount(100, 10) returns 90.0"}]}
    turns["planner"] = [tool_use("submit_spec", bad)] * 3
    script = RoleScript(turns)
    with FakeAnthropic(responder=script) as fake:
        harness = TeamHarness(fake, shop_workspace(tmp_path / "ws"), tmp_path / "runs")
        result = harness.team(fast_settings(verify=False)).run(run_task(INSTRUCTION, root=harness.root))
    assert script.calls == ["planner"] * 3
    [correction, *_] = [
        result_text(block) for block in script.bodies[1]["messages"][-1]["content"] if block.get("is_error")
    ]
    problem = "acceptance_criteria.0.id: String should match pattern '^AC\\d+$' (got 'one')"
    assert correction.startswith(f"The Spec is not valid: {problem}. Fix it and call submit_spec again.")
    assert result.status == "budget_exhausted" and result.error is not None  # stuck, as a solo run
    assert result.error.startswith("the planner (node plan) ended without a Spec: stuck: the model made")
    assert problem in result.error and "agentls runs resume" in result.summary


def test_handoffs_must_agree_with_the_spec_and_the_work_item(tmp_path: Path) -> None:
    """A review that passes without a verdict on every acceptance criterion, a design serving a criterion
    the spec does not have, a result for another work item: each goes back to its role to correct, so a
    proposal is never "verified" by a QA that checked only part of the spec."""
    turns = feature_script()
    bad_design = {**DESIGN, "work_items": [{**DESIGN["work_items"][0], "criteria": ["AC1", "AC7"]}]}
    turns["architect"].insert(0, tool_use("submit_design", bad_design))
    turns["coder"] = turns["coder"][:4]
    wrong_item = {"work_item": "W1", "files_changed": ["shop/cart.py"]}
    turns["coder"].insert(3, tool_use("submit_result", wrong_item))
    ac1_only = {"criteria": [REVIEW_PASS["criteria"][0]], "passed": True}
    turns["qa"] = [tool_use("submit_review", ac1_only), tool_use("submit_review", REVIEW_PASS)]
    script = RoleScript(turns)
    with FakeAnthropic(responder=script) as fake:
        harness = TeamHarness(fake, shop_workspace(tmp_path / "ws"), tmp_path / "runs")
        result = harness.team(fast_settings(verify=False)).run(run_task(INSTRUCTION, root=harness.root))

    assert result.status == "proposed", result.summary
    assert script.left() == {}
    errors = [
        result_text(block)
        for body in script.bodies
        for block in body["messages"][-1]["content"]
        if isinstance(block, dict) and block.get("is_error")
    ]
    assert len(errors) == 3, errors
    assert "AC7 is not among them" in errors[0]
    assert "work_item must be 'W2', the work item you were given, not 'W1'" in errors[1]
    assert "one verdict on each acceptance criterion of the spec (AC1, AC2, AC3): none on AC2" in errors[2]
    assert result.proposal is not None and result.proposal.team is not None
    assert [c["id"] for c in result.proposal.team["review"]["criteria"]] == ["AC1", "AC2", "AC3"]
    assert [w["id"] for w in result.proposal.team["design"]["work_items"]] == ["W1", "W2"]


def test_a_budget_stop_in_a_role_speaks_of_the_whole_run(tmp_path: Path) -> None:
    """The coder stops on the run's cost budget: the message gives what the run spent against the budget
    the user set, not the coder's share of what was left."""
    script = RoleScript(feature_script())
    with FakeAnthropic(responder=script) as fake:
        harness = TeamHarness(fake, shop_workspace(tmp_path / "ws"), tmp_path / "runs")
        settings = fast_settings(verify=False, max_cost_usd=0.04)
        result = harness.team(settings).run(run_task(INSTRUCTION, root=harness.root))

    assert result.status == "budget_exhausted", result.summary
    assert "coder" in script.calls and result.cost <= 0.04
    assert result.error is not None and "the coder (node code) ended without a WorkResult" in result.error
    assert f"the run has cost ${result.cost:.4f} and the next model call" in result.error
    assert "would pass max_cost_usd = $0.04" in result.error


def test_qa_rejecting_every_round_ends_the_loop_with_an_unverified_flagged_proposal(tmp_path: Path) -> None:
    turns = feature_script()
    # FIX1 changes a file (a comment), so QA judges new work and rejects it again
    comment = replace("shop/discount.py", CHECK, CHECK + "    # percent is checked by the caller\n")
    turns["coder"] = [*turns["coder"][:4], comment, tool_use("submit_result", {"work_item": "FIX1"})]
    turns["qa"] = [tool_use("submit_review", REVIEW_FAIL)] * 2
    script = RoleScript(turns)
    with FakeAnthropic(responder=script) as fake:
        harness = TeamHarness(fake, shop_workspace(tmp_path / "ws"), tmp_path / "runs")
        settings = fast_settings(team=TeamSettings(confirm_spec=False, max_rounds=1))
        result = harness.team(settings).run(run_task(INSTRUCTION, root=harness.root))

    assert result.status == "proposed" and script.left() == {}
    assert script.calls[-4:] == ["qa", "coder", "coder", "qa"], "one round of fixes, then the run proposes"
    assert result.summary.startswith("WARNING: QA still rejects this change after 1 round of fixes")
    proposal = result.proposal
    assert proposal is not None and not proposal.verified
    # the checks pass (QA's own tests are not in the change): the summary still says QA's verdict first
    assert proposal.verification_summary.startswith(
        "Not verified: QA rejects the change (AC2 failing).\nVerification passed."
    ), proposal.verification_summary


def test_a_fixer_that_changes_nothing_is_told_once_then_qa_is_not_asked_again(tmp_path: Path) -> None:
    """QA rejects; the fixer submits FIX1 without an edit, is told its fix changed nothing, and submits
    again without one: the loop stops there (rounds were left), QA judged the work once, and the run
    proposes the work with QA's report, saying why."""
    turns = feature_script()
    turns["coder"] = [
        *turns["coder"][:4],  # W1, W2
        tool_use("submit_result", {"work_item": "FIX1", "files_changed": ["shop/discount.py"]}),
        tool_use("submit_result", {"work_item": "FIX1", "notes": "QA's test of AC2 asks too much."}),
    ]
    turns["qa"] = turns["qa"][:3]  # one review: tests, run, REVIEW_FAIL
    script = RoleScript(turns)
    with FakeAnthropic(responder=script) as fake:
        harness = TeamHarness(fake, shop_workspace(tmp_path / "ws"), tmp_path / "runs")
        settings = fast_settings(verify=False, team=TeamSettings(confirm_spec=False, max_rounds=3))
        result = harness.team(settings).run(run_task(INSTRUCTION, root=harness.root))

    assert result.status == "proposed", result.summary
    assert script.left() == {}
    assert Counter(script.calls) == {"planner": 2, "architect": 1, "coder": 6, "qa": 3}
    assert script.calls[-3:] == ["qa", "coder", "coder"], "QA is not asked to judge the same work again"
    coder = [body for role, body in zip(script.calls, script.bodies, strict=True) if role == "coder"]
    nudge = json.dumps(coder[-1]["messages"][-1]["content"])
    assert "Your FIX1 changed no file" in nudge and "QA would judge it the same way" in nudge
    assert result.summary.startswith(
        "WARNING: QA still rejects this change: the fixer made no change in round 1 of node review (told "
        "once that its fix changed nothing), so QA was not asked to judge the same work again"
    ), result.summary
    assert "FIX1: QA's test of AC2 asks too much." in result.summary
    proposal = result.proposal
    assert proposal is not None and not proposal.verified and proposal.team is not None
    assert Review.model_validate(proposal.team["review"]) == Review.model_validate(REVIEW_FAIL)  # kept
    changed = sorted(f.path for f in proposal.files)
    assert changed == ["shop/cart.py", "shop/discount.py", "tests/test_discount.py"]
    assert result.reflections == 1
    run = load_run(harness.runs_dir, result.run_id)
    decisions = [(r.get("kind"), r.get("reason")) for r in run.records if r.type == "decision"]
    assert ("fix_unchanged", None) in decisions and decisions[-1] == ("give_up", "fixer_unchanged")
    give_up = [r for r in run.records if r.type == "decision" and r.get("kind") == "give_up"][-1]
    assert give_up.get("message") == (
        "QA rejected; the fixer made no change in round 1 (QA's test of AC2 asks too much.)"
    )


def test_each_review_node_has_its_own_rounds(tmp_path: Path) -> None:
    """Two review nodes of one max_rounds each: the second gets its round although the first used its own."""
    graph, turns = TWO_REVIEWS, two_reviews_script()
    script = RoleScript(turns)
    with FakeAnthropic(responder=script) as fake:
        harness = TeamHarness(fake, shop_workspace(tmp_path / "ws"), tmp_path / "runs")
        settings = fast_settings(verify=False, team=TeamSettings(confirm_spec=False))
        result = harness.team(settings, graph).run(run_task(INSTRUCTION, root=harness.root))

    assert result.status == "proposed", result.summary
    assert script.left() == {}, "each review node used its one round"
    fix_round = ["qa", "coder", "coder", "qa"]
    assert script.calls == ["planner", "coder", "coder", *fix_round, *fix_round]
    rounds = [e.message for e in harness.of_kind("reflection")]
    assert rounds == ["QA rejected the change; a coder fixes it (1 of 1)"] * 2
    assert not result.summary.startswith("WARNING"), result.summary
    assert result.reflections == 2
    assert result.proposal is not None and result.proposal.team is not None
    assert Review.model_validate(result.proposal.team["review"]).passed
    run = load_run(harness.runs_dir, result.run_id)
    fixed = [(r.get("node"), r.get("number")) for r in run.records if r.get("kind") == "reflection"]
    assert fixed == [("check", 1), ("recheck", 1)]


def test_a_coders_result_names_the_files_it_really_changed(tmp_path: Path) -> None:
    """W1 creates shop/discount.py and submits without listing it; W2 edits shop/cart.py and lists a file
    it did not touch. Each handoff (event, transcript) names what the overlay says the coder changed, with
    what it reported in a files_changed decision: it used to read 'Result of W1: no files'."""
    turns = feature_script()
    coder = turns["coder"]
    coder[1] = tool_use("submit_result", {"work_item": "W1"})
    coder[3] = tool_use("submit_result", {"work_item": "W2", "files_changed": ["shop/discount.py"]})
    script = RoleScript({"planner": turns["planner"], "architect": turns["architect"], "coder": coder[:4]})
    graph = Graph(
        name="build",
        nodes=(
            Node(name="plan", role="planner"),
            Node(name="design", role="architect"),
            Node(name="code", type="work_items", role="coder"),
        ),
    )
    with FakeAnthropic(responder=script) as fake:
        harness = TeamHarness(fake, shop_workspace(tmp_path / "ws"), tmp_path / "runs")
        team = harness.team(fast_settings(verify=False), graph)
        result = team.run(run_task(INSTRUCTION, root=harness.root))

    assert result.status == "proposed" and script.left() == {}, result.summary
    shown = [e for e in harness.of_kind("handoff") if e.data["handoff"] == "WorkResult"]
    assert [e.data["document"]["files_changed"] for e in shown] == [["shop/discount.py"], ["shop/cart.py"]]
    assert [e.message.splitlines()[0] for e in shown] == [
        "### Result of W1: shop/discount.py",
        "### Result of W2: shop/cart.py",
    ]
    run = load_run(harness.runs_dir, result.run_id)
    recorded = [r.get("document")["files_changed"] for r in run.records if r.get("handoff") == "WorkResult"]
    assert recorded == [("shop/discount.py",), ("shop/cart.py",)]  # a transcript's read-only copy
    corrected = [
        (r.get("work_item"), list(r.get("reported")), list(r.get("actual")))
        for r in run.records
        if r.get("kind") == "files_changed"
    ]
    assert corrected == [("W1", [], ["shop/discount.py"]), ("W2", ["shop/discount.py"], ["shop/cart.py"])]
