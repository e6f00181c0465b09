"""`agentls run --apply --commit [--branch]` and `agentls runs export ID --patch` against the fake Messages
API, on a workspace that is a real git repository made in the test."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from server.cli import main
from tests.agent.agent_harness import GOOD_BODY, replace, view
from tests.fakes.anthropic_server import FakeAnthropic, text, turn
from tests.server.test_cli_agent import _after_the_end, env, invoke, ws

__all__ = ["env", "ws"]  # fixtures used by the tests below

GIT_ID = {
    "GIT_AUTHOR_NAME": "Ada",
    "GIT_AUTHOR_EMAIL": "ada@example.com",
    "GIT_COMMITTER_NAME": "Ada",
    "GIT_COMMITTER_EMAIL": "ada@example.com",
}
SUMMARY = (
    "Implemented `mean`; the tests pass.\n\nCommit message:\nfeat(stats): implement mean\n\n"
    "mean was a stub; it now averages the values and rejects an empty list.\nVerified: the tests pass.\n"
)


def git(root: Path, *args: str) -> str:
    environ = {**os.environ, **GIT_ID, "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run(
        ["git", "-C", str(root), *args], check=True, capture_output=True, text=True, env=environ
    ).stdout


@pytest.fixture
def repo(ws: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key, value in GIT_ID.items():
        monkeypatch.setenv(key, value)
    git(ws, "init", "-q", "-b", "main")
    git(ws, "add", ".")
    git(ws, "commit", "-q", "-m", "init")
    return ws


def script(fake: FakeAnthropic) -> None:
    from tests.agent.agent_harness import STUB_BODY

    fake.enqueue(turn(text("Spec and plan."), view()), replace(STUB_BODY, GOOD_BODY), text(SUMMARY))


def test_run_apply_commit_then_export_patch(
    fake_anthropic: FakeAnthropic, repo: Path, env: dict[str, str], tmp_path: Path
) -> None:
    (repo / "README.md").write_text("staged by the user\n")
    git(repo, "add", "README.md")
    script(fake_anthropic)
    result = invoke(["run", "Implement mean", "--path", str(repo), "--apply", "--commit", "--yes"], env)
    assert result.exit_code == 0, result.output
    assert "committed" in result.stderr and "on branch main: feat(stats): implement mean" in result.stderr
    assert git(repo, "log", "-1", "--format=%s").strip() == "feat(stats): implement mean"
    body = git(repo, "log", "-1", "--format=%b")
    assert "rejects an empty list" in body and "Verified: the tests pass." in body
    assert git(repo, "show", "--name-only", "--format=", "HEAD").split() == ["mathx/stats.py"]
    assert GOOD_BODY in (repo / "mathx" / "stats.py").read_text()
    assert git(repo, "diff", "--cached", "--name-only").split() == ["README.md"]  # still staged
    approval, applied = _after_the_end(env)
    assert (approval["outcome"], approval["answer"], approval["files"]) == (
        "allowed",
        "--yes",
        ["mathx/stats.py"],
    )
    assert (applied["written"], applied["committed"], applied["error"]) == (
        ["mathx/stats.py"],
        ["mathx/stats.py"],
        None,
    )
    assert (applied["commit"], applied["branch"]) == (git(repo, "rev-parse", "HEAD").strip(), "main")
    assert "proposed, committed  " in invoke(["runs"], env).stdout

    run_id = invoke(["runs"], env).stdout.strip().splitlines()[1].split()[0]
    out = tmp_path / "change.patch"
    exported = invoke(["runs", "export", run_id, "--patch", "-o", str(out)], env)
    assert exported.exit_code == 0, exported.output
    assert f"wrote {out}" in exported.stderr
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    git(clone, "checkout", "-q", "HEAD~1")
    git(clone, "am", "-q", str(out))
    assert git(clone, "log", "-1", "--format=%s").strip() == "feat(stats): implement mean"
    assert (clone / "mathx" / "stats.py").read_text() == (repo / "mathx" / "stats.py").read_text()


def test_run_commit_on_a_new_branch_and_refusal_on_a_dirty_file(
    fake_anthropic: FakeAnthropic, repo: Path, env: dict[str, str]
) -> None:
    script(fake_anthropic)
    args = ["run", "Implement mean", "--path", str(repo), "--commit", "--yes", "--branch", "agent/mean"]
    result = invoke(args, env)
    assert result.exit_code == 0, result.output
    assert "on new branch agent/mean" in result.stderr and "git switch agent/mean" in result.stderr
    assert GOOD_BODY in git(repo, "show", "agent/mean:mathx/stats.py")
    assert GOOD_BODY not in (repo / "mathx" / "stats.py").read_text()
    assert git(repo, "status", "--porcelain") == ""
    _, applied = _after_the_end(env)  # committed on the other branch only: nothing written to disk
    assert (applied["written"], applied["committed"]) == ([], ["mathx/stats.py"])
    assert (applied["commit"], applied["branch"]) == (
        git(repo, "rev-parse", "agent/mean").strip(),
        "agent/mean",
    )
    [run_id] = [p.stem for p in (Path(env["AGENTLS_CACHE_DIR"]) / "runs").glob("*.jsonl")]
    shown = invoke(["runs", run_id], env).stdout
    assert f"  Committed {applied['commit'][:12]} on agent/mean: mathx/stats.py" in shown
    assert "Written:" not in shown and "Result:  committed" in shown
    for transcript in (Path(env["AGENTLS_CACHE_DIR"]) / "runs").glob("*.jsonl"):
        transcript.rename(transcript.with_suffix(".first"))  # `_after_the_end` reads the one run's

    stats = repo / "mathx" / "stats.py"
    stats.write_text(stats.read_text() + "\n# my note\n")
    script(fake_anthropic)
    refused = CliRunner().invoke(
        main, ["run", "Implement mean", "--path", str(repo), "--apply", "--commit", "--yes"], env=env
    )
    assert refused.exit_code == 1
    assert "not committed: mathx/stats.py has uncommitted changes" in refused.stderr
    assert "--force" in refused.stderr
    assert git(repo, "log", "--format=%s").splitlines() == ["init"]
    assert stats.read_text().endswith("# my note\n") and GOOD_BODY not in stats.read_text()
    _, refusal = _after_the_end(env)
    assert refusal["written"] == [] and refusal["commit"] is None
    assert refusal["error"].startswith("not committed: mathx/stats.py has uncommitted changes")
    assert "proposed, allowed, not written  " in invoke(["runs"], env).stdout


def test_a_commit_that_fails_after_the_files_were_written_says_so(
    fake_anthropic: FakeAnthropic, repo: Path, env: dict[str, str]
) -> None:
    """The branch cannot move (another git holds its lock) once the files are written: the record says
    they were written and not committed, and so does the listing, not "not written"."""
    (repo / ".git" / "refs" / "heads" / "main.lock").write_text("")
    script(fake_anthropic)
    result = invoke(["run", "Implement mean", "--path", str(repo), "--commit", "--yes"], env)

    assert result.exit_code == 1 and "not committed" in result.stderr, result.output
    assert GOOD_BODY in (repo / "mathx" / "stats.py").read_text()
    assert git(repo, "log", "--format=%s").splitlines() == ["init"]
    _, applied = _after_the_end(env)
    assert applied["written"] == ["mathx/stats.py"] and applied["error"].startswith("not committed: ")
    assert "proposed, applied, not committed  " in invoke(["runs"], env).stdout
