"""`agent.max_minutes` reaches runs started from the editor: the language server reads it from the
workspace's `agentls.toml` like every other agent setting, and a run past it ends at the bound (not at the
fake model's 20 s stall, nor when the user comes back to answer its question) with its edit as an
UNFINISHED proposal saying why."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import wait_for
from tests.e2e.test_lsp_agent import (
    Editor,
    editors,
    fake,
    implement,
    plan_and_stub_edit,
    stub_edit,
    stubs_workspace,
)
from tests.fakes.anthropic_server import FakeAnthropic, stall, text, tool_use, turn

__all__ = ["editors", "fake", "stubs_workspace"]  # fixtures used below

pytestmark = pytest.mark.timeout(60)


async def test_an_editor_run_stops_at_the_workspaces_max_minutes(
    editors: Any, fake: FakeAnthropic, stubs_workspace: Path
) -> None:
    (stubs_workspace / "agentls.toml").write_text("[agent]\nmax_minutes = 0.05\n")
    fake.enqueue(
        plan_and_stub_edit(),
        stall(20, text("Implemented `apply_discount`.")),
    )
    ed: Editor = await editors(stubs_workspace, fake.env())
    uri = ed.open("shop/pricing.py")
    began = time.monotonic()
    run_id = await implement(ed, uri)
    method, params = await ed.ended(run_id)
    took = time.monotonic() - began

    assert method == "agentls/proposalReady", params
    assert params["status"] == "budget_exhausted" and params["summary"].startswith("UNFINISHED"), params
    assert "Time budget reached" in params["summary"] and "max_minutes = 0.05" in params["summary"]
    assert [f["path"] for f in params["files"]] == ["shop/pricing.py"]
    assert took < 15, f"the run took {took:.1f} s with a 3 s budget and a 20 s stall"


async def test_a_question_the_user_leaves_unanswered_is_withdrawn_at_the_bound(
    editors: Any, fake: FakeAnthropic, stubs_workspace: Path
) -> None:
    """The user walked away from the editor: the run stops at its bound with its edit, and the question
    still open in the editor is withdrawn ($/cancelRequest), not left to be answered for nothing."""
    (stubs_workspace / "agentls.toml").write_text("[agent]\nmax_minutes = 0.15\n")
    fake.enqueue(
        turn(
            text("Plan: edit the stub, then ask about rounding."),
            stub_edit(),
            tool_use("ask_user", {"question": "Round to cents?", "options": ["yes", "no"]}),
        ),
        text("Implemented `apply_discount`."),
    )
    ed: Editor = await editors(stubs_workspace, fake.env())
    ed.away = True
    uri = ed.open("shop/pricing.py")
    run_id = await implement(ed, uri)
    await wait_for(lambda: bool(ed.questions), 20)
    asked = time.monotonic()
    method, params = await ed.ended(run_id, timeout=25)
    waited = time.monotonic() - asked

    assert [q.message for q in ed.questions] == ["agentls asks: Round to cents?"]
    assert method == "agentls/proposalReady", params
    assert params["status"] == "budget_exhausted" and params["summary"].startswith("UNFINISHED"), params
    assert "Time budget reached" in params["summary"] and "max_minutes = 0.15" in params["summary"]
    assert [f["path"] for f in params["files"]] == ["shop/pricing.py"]
    assert waited < 12, f"the unanswered question held the run {waited:.1f} s with a 9 s budget"
    await wait_for(lambda: bool(ed.withdrawn), 5)
    assert [q.message for q in ed.withdrawn] == ["agentls asks: Round to cents?"]
    assert len(fake.message_requests) == 1
