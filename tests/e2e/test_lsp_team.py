"""A team run through the language server (`agentls.run {mode: "team"}`), end to end over stdio.

The fake Messages API plays each role, reading it from the system prompt (`RoleScript`). The planner asks
a clarifying question, the spec is confirmed, one coder works, QA passes. The editor must see the
planner's question before any coder ran, the spec confirmation as a question too, the team's handoffs
and role changes as ``agentls/runEvent`` notifications, and the proposal's ``team`` in
``agentls/proposal``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types

from tests.agent.team.team_harness import RoleScript
from tests.e2e.helpers import request, stubs_workspace
from tests.e2e.test_lsp_agent import Editor, editors, execute
from tests.fakes.anthropic_server import FakeAnthropic, tool_use

__all__ = ["editors", "stubs_workspace"]  # fixtures used below

pytestmark = pytest.mark.timeout(60)

SPEC = {
    "title": "Fixed-amount discounts",
    "user_stories": ["As a shopper, I want a fixed discount, so that vouchers work."],
    "acceptance_criteria": [{"id": "AC1", "text": "shop/vouchers.py has VOUCHER = 5"}],
}
DESIGN = {
    "summary": "A vouchers module",
    "files_to_create": ["shop/vouchers.py"],
    "work_items": [
        {"id": "W1", "title": "vouchers", "description": "Create shop/vouchers.py.", "criteria": ["AC1"]}
    ],
}
REVIEW = {
    "criteria": [{"id": "AC1", "verdict": "pass", "evidence": "shop/vouchers.py defines VOUCHER = 5"}],
    "passed": True,
}
QUESTION = "Is the discount a percent or a fixed amount?"


def script() -> RoleScript:
    return RoleScript(
        {
            "planner": [
                tool_use("ask_user", {"question": QUESTION, "options": ["fixed amount", "percent"]}),
                tool_use("submit_spec", SPEC),
            ],
            "architect": [tool_use("submit_design", DESIGN)],
            "coder": [
                tool_use(
                    "str_replace_based_edit_tool",
                    {"command": "create", "path": "shop/vouchers.py", "file_text": "VOUCHER = 5\n"},
                ),
                tool_use("submit_result", {"work_item": "W1", "files_changed": ["shop/vouchers.py"]}),
            ],
            "qa": [tool_use("submit_review", REVIEW)],
        }
    )


async def test_team_run_questions_first_then_run_events_and_team_proposal(
    editors: Any, stubs_workspace: Path
) -> None:
    roles = script()
    with FakeAnthropic(responder=roles) as fake:
        ed: Editor = await editors(stubs_workspace, fake.env())
        events: list[dict[str, Any]] = []
        roles_when_asked: list[list[str]] = []
        ed.client.feature("agentls/runEvent")(lambda params: events.append(dict(params)))

        class Questions(list[types.ShowMessageRequestParams]):
            def append(self, params: types.ShowMessageRequestParams) -> None:
                roles_when_asked.append(list(roles.calls))  # which roles had run when the editor asked
                super().append(params)

        ed.questions = Questions()

        answer = await execute(ed, "agentls.run", {"instruction": "Add vouchers", "mode": "team"})
        run_id = answer["runId"]
        method, ready = await ed.ended(run_id)
        assert method == "agentls/proposalReady", ready
        assert ready["files"][0]["path"] == "shop/vouchers.py"

        # the planner's question, then the spec confirmation; no coder had run at either point
        assert ed.questions[0].message == f"agentls asks: {QUESTION}"
        assert "Start coding from this spec?" in ed.questions[1].message
        assert [a.title for a in ed.questions[1].actions or []] == ["Start", "Stop"]
        assert all("coder" not in calls for calls in roles_when_asked)
        assert "fixed amount" in str(roles.bodies[1]["messages"][-1]["content"])  # the answer reached it

        handoffs = [(e["role"], e["handoff"]) for e in events if e["kind"] == "handoff"]
        assert handoffs == [
            ("planner", "Spec"),
            ("architect", "Design"),
            ("architect", "WorkItem"),
            ("coder", "WorkResult"),
            ("qa", "Review"),
        ]
        spec_event = next(e for e in events if e.get("handoff") == "Spec")
        assert spec_event["runId"] == run_id and spec_event["node"] == "plan"
        assert spec_event["document"]["title"] == "Fixed-amount discounts"
        assert "AC1: shop/vouchers.py has VOUCHER = 5" in spec_event["markdown"]
        states = [(e["role"], e["state"]) for e in events if e["kind"] == "role"]
        assert states[0] == ("planner", "started") and states[-1] == ("qa", "finished")

        details = await request(ed.client, "agentls/proposal", {"proposalId": ready["proposalId"]})
        assert details["team"]["spec"]["title"] == "Fixed-amount discounts"
        assert details["team"]["design"]["work_items"][0]["id"] == "W1"
        assert details["team"]["review"]["passed"] is True
