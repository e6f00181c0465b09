"""Every accept and reject of a proposal in the language server is in its run's transcript.

`agentls serve` over stdio with a real pygls client and the fake Messages API: a run proposes a change
(shop/pricing.py edited, tests/test_discount.py created); the client accepts it whole (its
``workspace/applyEdit`` applied), accepts one hunk and rejects the rest, or accepts it and fails the edit
(``applied: false`` with a ``failureReason`` that carries a token and the API key). After the run's
``run_end`` its transcript has an ``approval`` of subject ``proposal`` per answer and a
``proposal_applied`` decision per accept, and ``agentls runs`` lists what came of it.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from lsprotocol import types
from pytest_lsp import LanguageClient

from server.cli import main
from tests.e2e.helpers import lsp_server, request, stubs_workspace
from tests.e2e.test_lsp_agent import implement_script
from tests.fakes.anthropic_server import FAKE_API_KEY, FakeAnthropic
from tests.server.test_lsp_refusals import propose

__all__ = ["lsp_server", "stubs_workspace"]  # fixtures used below

pytestmark = pytest.mark.timeout(120)

TOKEN = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
FILES = ["shop/pricing.py", "tests/test_discount.py"]


def after_the_end(cache: Path) -> list[dict[str, Any]]:
    """The records of the one run's transcript after its ``run_end``."""
    (path,) = (cache / "runs").glob("*.jsonl")
    records = [json.loads(line) for line in path.read_text().splitlines()]
    end = next(at for at, record in enumerate(records) if record["type"] == "run_end")
    assert all(float(r["t"]) >= float(records[end]["t"]) for r in records[end:]), records[end:]
    return records[end + 1 :]


def listed(cache: Path) -> str:
    """The STATUS column of `agentls runs` for the one run."""
    result = CliRunner().invoke(main, ["runs"], env={"AGENTLS_CACHE_DIR": str(cache)}, catch_exceptions=False)
    return result.stdout.splitlines()[1]


async def execute(client: LanguageClient, command: str, argument: dict[str, Any]) -> Any:
    return await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=command, arguments=[argument])
    )


@pytest.mark.parametrize("answer", ["accept", "hunk-then-reject", "fail"])
async def test_each_accept_and_reject_is_in_the_runs_transcript(
    lsp_server: Any, stubs_workspace: Path, tmp_path: Path, answer: str
) -> None:
    cache = tmp_path / "cache"  # `lsp_server`'s
    with FakeAnthropic() as fake:
        fake.enqueue(*implement_script())
        client: LanguageClient = await lsp_server(fake.env())
        edits: list[types.ApplyWorkspaceEditParams] = []

        @client.feature(types.WORKSPACE_APPLY_EDIT)
        def apply(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
            edits.append(params)
            if answer == "fail":
                why = f"the user discarded the preview ({TOKEN}, {FAKE_API_KEY})"
                return types.ApplyWorkspaceEditResult(applied=False, failure_reason=why)
            return types.ApplyWorkspaceEditResult(applied=True)

        _, _, proposal_id = await propose(client, stubs_workspace, plugin=True)
        assert after_the_end(cache) == []  # nothing answered yet
        if answer == "hunk-then-reject":
            shown = await request(client, "agentls/proposal", {"proposalId": proposal_id})
            hunk = next(f for f in shown["files"] if f["path"] == "shop/pricing.py")["hunks"][0]["id"]
            done = await execute(client, "agentls.accept", {"proposalId": proposal_id, "hunks": [hunk]})
            assert done["applied"] is True, done
            await execute(client, "agentls.reject", {"proposalId": proposal_id})
        else:
            done = await execute(client, "agentls.accept", {"proposalId": proposal_id})
            assert done["applied"] is (answer == "accept"), done
        await asyncio.sleep(0.2)
    assert len(edits) == 1

    records = after_the_end(cache)
    text = json.dumps(records)
    assert TOKEN not in text and FAKE_API_KEY not in text
    allowed, applied = records[0], records[1]
    assert (allowed["type"], allowed["subject"], allowed["detail"]) == ("approval", "proposal", proposal_id)
    assert (allowed["outcome"], allowed["approved"], allowed["answer"]) == ("allowed", True, "agentls.accept")
    assert allowed["asked_at"] and proposal_id in allowed["question"]
    assert (applied["type"], applied["kind"], applied["proposal_id"]) == (
        "decision",
        "proposal_applied",
        proposal_id,
    )
    if answer == "accept":
        assert len(records) == 2 and allowed["files"] == FILES and "hunks" not in allowed
        assert (applied["written"], applied["error"]) == (FILES, None)
        assert "proposed, applied" in listed(cache)
    elif answer == "fail":
        assert len(records) == 2 and allowed["files"] == FILES
        assert applied["written"] == [] and applied["error"].startswith("the user discarded the preview (")
        assert "<secret:" in applied["error"] and "[redacted]" in applied["error"], applied["error"]
        assert "proposed, allowed, not written" in listed(cache)
    else:
        rejected = records[2]
        assert len(records) == 3 and allowed["files"] == ["shop/pricing.py"] and allowed["hunks"] == [hunk]
        assert (applied["written"], applied["error"]) == (["shop/pricing.py"], None)
        assert (rejected["type"], rejected["subject"], rejected["detail"]) == (
            "approval",
            "proposal",
            proposal_id,
        )
        assert (rejected["outcome"], rejected["approved"], rejected["answer"]) == (
            "rejected",
            False,
            "agentls.reject",
        )
        assert rejected["files"] == ["tests/test_discount.py"]  # what was left
        assert "proposed, partly applied (1 of 2 files), rest rejected" in listed(cache)  # its one hunk
