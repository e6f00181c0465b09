"""``agentls.acceptAndCommit`` through the language server over stdio, on a stubs workspace that is a
real git repository made in the test: the editor applies the edit, the change becomes one commit on the
current branch with the user's edited message, the user's staged work elsewhere stays staged; a touched
file with uncommitted changes refuses the command before anything is applied."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import request, stubs_workspace
from tests.e2e.test_lsp_agent import BODY, STUB, editors, execute, fake, implement, implement_script
from tests.fakes.anthropic_server import FakeAnthropic

__all__ = ["editors", "fake", "stubs_workspace"]  # fixtures used below

pytestmark = pytest.mark.timeout(60)

GIT_ID = {
    "GIT_AUTHOR_NAME": "Ada",
    "GIT_AUTHOR_EMAIL": "ada@example.com",
    "GIT_COMMITTER_NAME": "Ada",
    "GIT_COMMITTER_EMAIL": "ada@example.com",
}


def git(root: Path, *args: str) -> str:
    env = {**os.environ, **GIT_ID, "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run(
        ["git", "-C", str(root), *args], check=True, capture_output=True, text=True, env=env
    ).stdout


def _repo(root: Path) -> None:
    git(root, "init", "-q", "-b", "main")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "init")


async def test_accept_and_commit(editors: Any, fake: FakeAnthropic, stubs_workspace: Path) -> None:
    _repo(stubs_workspace)
    readme = next(p for p in stubs_workspace.iterdir() if p.is_file() and p.suffix in (".md", ".toml", ".py"))
    readme.write_text(readme.read_text() + "\n# staged by the user\n")
    git(stubs_workspace, "add", readme.name)
    fake.enqueue(*implement_script())
    ed = await editors(stubs_workspace, {**fake.env(), **GIT_ID})
    uri = ed.open("shop/pricing.py")
    before = ed.text_of(uri)
    run_id = await implement(ed, uri)
    _method, ready = await ed.ended(run_id)
    message = "feat(pricing): apply discounts\n\nEdited by the user before committing.\n"
    result = await execute(
        ed, "agentls.acceptAndCommit", {"proposalId": ready["proposalId"], "message": message}
    )
    assert result["applied"] is True and result["branch"] == "main", result
    assert git(stubs_workspace, "rev-parse", "HEAD").strip() == result["commit"]
    assert git(stubs_workspace, "log", "-1", "--format=%B").strip() == message.strip()
    files = git(stubs_workspace, "show", "--name-only", "--format=", "HEAD").split()
    assert files == ["shop/pricing.py", "tests/test_discount.py"]
    assert git(stubs_workspace, "show", "HEAD:shop/pricing.py") == before.replace(STUB, BODY)
    assert ed.text_of(uri) == before.replace(STUB, BODY)  # the editor applied it
    assert git(stubs_workspace, "diff", "--cached", "--name-only").split() == [readme.name]


async def test_accept_and_commit_refuses_a_dirty_file(
    editors: Any, fake: FakeAnthropic, stubs_workspace: Path
) -> None:
    _repo(stubs_workspace)
    pricing = stubs_workspace / "shop" / "pricing.py"
    pricing.write_text(pricing.read_text() + "\n# mine, not committed\n")
    fake.enqueue(*implement_script())
    ed = await editors(stubs_workspace, {**fake.env(), **GIT_ID})
    uri = ed.open("shop/pricing.py")
    run_id = await implement(ed, uri)
    _method, ready = await ed.ended(run_id)
    with pytest.raises(Exception, match=r"did not commit .*shop/pricing\.py has uncommitted changes"):
        await execute(ed, "agentls.acceptAndCommit", {"proposalId": ready["proposalId"]})
    assert ed.edits == []  # nothing was applied
    assert git(stubs_workspace, "log", "--format=%s").split("\n")[0] == "init"
    # The proposal is still pending: a plain accept works.
    accepted = await execute(ed, "agentls.accept", {"proposalId": ready["proposalId"]})
    assert accepted["applied"] is True


async def test_accept_and_commit_of_some_hunks_commits_only_those(
    editors: Any, fake: FakeAnthropic, stubs_workspace: Path
) -> None:
    _repo(stubs_workspace)
    fake.enqueue(*implement_script())
    ed = await editors(stubs_workspace, {**fake.env(), **GIT_ID})
    uri = ed.open("shop/pricing.py")
    before = ed.text_of(uri)
    run_id = await implement(ed, uri)
    _method, ready = await ed.ended(run_id)
    shown = await request(ed.client, "agentls/proposal", {"proposalId": ready["proposalId"]})
    # The message the editors offer for editing is the one the command would use.
    assert shown["commitMessage"].splitlines()[0].strip()
    pricing = next(f for f in shown["files"] if f["path"] == "shop/pricing.py")
    result = await execute(
        ed,
        "agentls.acceptAndCommit",
        {"proposalId": ready["proposalId"], "hunks": [h["id"] for h in pricing["hunks"]]},
    )
    assert result["applied"] is True and result["message"] == shown["commitMessage"], result
    assert git(stubs_workspace, "show", "--name-only", "--format=", "HEAD").split() == ["shop/pricing.py"]
    assert git(stubs_workspace, "show", "HEAD:shop/pricing.py") == before.replace(STUB, BODY)
    assert not (stubs_workspace / "tests" / "test_discount.py").exists()
    left = await request(ed.client, "agentls/proposal", {"proposalId": ready["proposalId"]})
    assert [f["path"] for f in left["files"]] == ["tests/test_discount.py"]
