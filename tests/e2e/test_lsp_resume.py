"""``agentls.resume {runId}`` through the language server: a run whose API calls fail after its edit
reports the edit as an UNFINISHED proposal, and a second server process (a restart: same cache folder,
nothing in memory) resumes it from the saved state to a finished proposal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_lsp_agent import (
    Editor,
    editors,
    execute,
    fake,
    implement,
    plan_and_stub_edit,
    stubs_workspace,
)
from tests.fakes.anthropic_server import FakeAnthropic, fault_529, text

__all__ = ["editors", "fake", "stubs_workspace"]  # fixtures used below

pytestmark = pytest.mark.timeout(90)


async def test_resume_after_a_529_storm_and_a_server_restart(
    editors: Any, fake: FakeAnthropic, stubs_workspace: Path
) -> None:
    fake.enqueue(
        plan_and_stub_edit(),
        fault_529(),
        fault_529(),  # max_retries = 1: the call fails
    )
    ed: Editor = await editors(stubs_workspace, fake.env())
    uri = ed.open("shop/pricing.py")
    run_id = await implement(ed, uri)
    method, params = await ed.ended(run_id)
    assert method == "agentls/proposalReady", params
    assert params["status"] == "failed" and params["summary"].startswith("UNFINISHED"), params
    assert [f["path"] for f in params["files"]] == ["shop/pricing.py"]

    fake.enqueue(text("Implemented `apply_discount`."))
    again: Editor = await editors(stubs_workspace, fake.env())  # a new server process, same cache
    answer = await execute(again, "agentls.resume", {"runId": run_id})
    new_id = str(answer["runId"])
    assert new_id != run_id
    method, params = await again.ended(new_id)
    assert method == "agentls/proposalReady" and params["status"] == "proposed", params
    assert not params["summary"].startswith("UNFINISHED")
    assert [f["path"] for f in params["files"]] == ["shop/pricing.py"]

    with pytest.raises(Exception, match="nothing to resume"):
        await execute(again, "agentls.resume", {"runId": new_id})
    with pytest.raises(Exception, match="no saved state"):
        await execute(again, "agentls.resume", {"runId": "nope"})
