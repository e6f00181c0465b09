"""Accepted proposals as commits and patches, on real git repositories made in the test: the commit on the
checked-out branch (the user's staged and unstaged work elsewhere untouched), on a new branch (working
tree and index untouched), the refusal on a touched file with uncommitted changes, ``--force``, and a
format-patch file that ``git am`` applies; the commit message written by the model or derived."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from agent.commit import CommitRefused, commit_message, commit_proposal, format_patch, patch_from_run
from agent.overlay import Overlay
from agent.proposal import Proposal, apply_proposal, new_proposal_id
from agent.usage import Usage

GIT_ID = {
    "GIT_AUTHOR_NAME": "Ada",
    "GIT_AUTHOR_EMAIL": "ada@example.com",
    "GIT_COMMITTER_NAME": "Ada",
    "GIT_COMMITTER_EMAIL": "ada@example.com",
}
MESSAGE = "fix(calc): add adds\n\nadd returned a - b; it returns a + b now.\n\nVerification passed: pytest.\n"


def git(root: Path, *args: str) -> str:
    env = {**os.environ, **GIT_ID, "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run(
        ["git", "-C", str(root), *args], check=True, capture_output=True, text=True, env=env
    ).stdout


@pytest.fixture(autouse=True)
def identity(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in GIT_ID.items():
        monkeypatch.setenv(key, value)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    (root / "other.py").write_text("X = 1\n")
    (root / "third.py").write_text("Y = 1\n")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "init")
    return root


def _proposal(root: Path) -> Proposal:
    overlay = Overlay(root)
    overlay.write("calc.py", "def add(a, b):\n    return a + b\n")
    overlay.create("notes/new.md", "# notes\n")
    files = tuple(overlay.changes())
    return Proposal(
        new_proposal_id(), "run-1", "Fixed add.", files, overlay.proposal_diff(), Usage(), 0.0, True, "passed"
    )


def _user_work(root: Path) -> None:
    """Staged work in other.py and unstaged work in third.py, which a commit must not touch."""
    (root / "other.py").write_text("X = 2  # staged\n")
    git(root, "add", "other.py")
    (root / "third.py").write_text("Y = 2  # unstaged\n")


def test_commit_on_the_current_branch_leaves_the_users_other_work_alone(repo: Path) -> None:
    _user_work(repo)
    proposal = _proposal(repo)
    head = git(repo, "rev-parse", "HEAD").strip()
    done = commit_proposal(
        proposal.files, repo, message=MESSAGE, apply=lambda: apply_proposal(proposal, repo)
    )
    assert done.branch == "main" and done.checked_out and not done.created_branch
    assert git(repo, "rev-parse", "HEAD").strip() == done.commit
    assert git(repo, "rev-parse", "HEAD~1").strip() == head
    assert git(repo, "log", "-1", "--format=%B").strip() == MESSAGE.strip()
    assert git(repo, "show", "--name-only", "--format=", "HEAD").split() == ["calc.py", "notes/new.md"]
    assert (repo / "calc.py").read_text().endswith("a + b\n") and (repo / "notes/new.md").exists()
    # The user's staged change is still staged (and only it), the unstaged one still unstaged.
    assert git(repo, "diff", "--cached", "--name-only").split() == ["other.py"]
    assert git(repo, "diff", "--name-only").split() == ["third.py"]
    assert git(repo, "show", ":other.py") == "X = 2  # staged\n"
    assert (repo / "third.py").read_text() == "Y = 2  # unstaged\n"
    assert "calc.py" not in git(repo, "status", "--porcelain")


def test_commit_on_a_new_branch_moves_only_that_branch(repo: Path) -> None:
    _user_work(repo)
    proposal = _proposal(repo)
    head = git(repo, "rev-parse", "HEAD").strip()
    status = git(repo, "status", "--porcelain")
    done = commit_proposal(proposal.files, repo, message=MESSAGE, branch="agent/fix-add")
    assert done.created_branch and not done.checked_out
    assert git(repo, "rev-parse", "HEAD").strip() == head
    assert git(repo, "rev-parse", "agent/fix-add~1").strip() == head
    assert git(repo, "show", "agent/fix-add:calc.py").endswith("a + b\n")
    assert git(repo, "status", "--porcelain") == status
    assert (repo / "calc.py").read_text().endswith("a - b\n")
    # Again on the same (existing) branch: its tip is the parent. calc.py there is no longer the text the
    # new run started from (the disk's), so that is refused; a new file is fine.
    with pytest.raises(CommitRefused, match=r"calc\.py on agent/fix-add is not the text"):
        commit_proposal(_proposal(repo).files, repo, message="chore: again\n", branch="agent/fix-add")
    overlay = Overlay(repo)
    overlay.create("more.md", "more\n")
    again = commit_proposal(overlay.changes(), repo, message="chore: again\n", branch="agent/fix-add")
    assert not again.created_branch
    assert git(repo, "rev-parse", "agent/fix-add~1").strip() == done.commit


def test_a_touched_file_with_uncommitted_changes_is_refused_unless_forced(repo: Path) -> None:
    (repo / "calc.py").write_text("def add(a, b):\n    return a - b  # mine\n")
    proposal = _proposal(repo)
    head = git(repo, "rev-parse", "HEAD").strip()
    with pytest.raises(CommitRefused, match=r"calc\.py has uncommitted changes.*--force"):
        commit_proposal(proposal.files, repo, message=MESSAGE, apply=lambda: apply_proposal(proposal, repo))
    assert git(repo, "rev-parse", "HEAD").strip() == head
    assert (repo / "calc.py").read_text().endswith("# mine\n")
    # A staged change counts too.
    git(repo, "add", "calc.py")
    with pytest.raises(CommitRefused, match="uncommitted"):
        commit_proposal(proposal.files, repo, message=MESSAGE)
    forced = commit_proposal(
        proposal.files, repo, message=MESSAGE, force=True, apply=lambda: apply_proposal(proposal, repo)
    )
    assert git(repo, "rev-parse", "HEAD").strip() == forced.commit
    assert git(repo, "status", "--porcelain") == ""


def test_the_patch_applies_with_git_am(repo: Path, tmp_path: Path) -> None:
    proposal = _proposal(repo)
    record = {
        "summary": f"Fixed add.\n\nCommit message:\n{MESSAGE}",
        "verification_summary": "passed",
        "diff": proposal.diff,
        "files": [{"path": f.path} for f in proposal.files],
    }
    patch = patch_from_run(record, repo)
    assert patch.startswith("From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n")
    assert "Subject: [PATCH] fix(calc): add adds\n" in patch and "From: Ada <ada@example.com>" in patch
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    (tmp_path / "change.patch").write_text(patch)
    git(clone, "am", "-q", str(tmp_path / "change.patch"))
    assert git(clone, "log", "-1", "--format=%B").strip() == MESSAGE.strip()
    assert (clone / "calc.py").read_text().endswith("a + b\n") and (clone / "notes/new.md").is_file()


def test_a_workspace_inside_a_repository_gets_repository_paths(repo: Path, tmp_path: Path) -> None:
    sub = repo / "pkg"
    sub.mkdir()
    (sub / "m.py").write_text("A = 1\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "pkg")
    overlay = Overlay(sub)
    overlay.write("m.py", "A = 2\n")
    files = tuple(overlay.changes())
    done = commit_proposal(files, sub, message="feat: two\n", branch="b")
    assert git(repo, "show", "--name-only", "--format=", done.commit).split() == ["pkg/m.py"]
    patch = patch_from_run({"summary": "Set A.", "diff": overlay.proposal_diff(), "files": []}, sub)
    assert "diff --git a/pkg/m.py b/pkg/m.py" in patch
    clone = tmp_path / "clone2"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    (tmp_path / "p.patch").write_text(patch)
    git(clone, "am", "-q", str(tmp_path / "p.patch"))
    assert (clone / "pkg/m.py").read_text() == "A = 2\n"


def test_commit_message_from_the_model_or_derived() -> None:
    written = commit_message(
        "I fixed it.\n\nCommit message:\n```\nfix(calc): add adds\n\nIt subtracted.\n```",
        "Verification passed.",
    )
    assert written == "fix(calc): add adds\n\nIt subtracted.\n\nVerification passed.\n"
    derived = commit_message(
        "Fixed the crash in `parse` when the input is empty. Added a test.", "passed: pytest"
    )
    assert derived.startswith("fix: fixed the crash in `parse` when the input is empty\n\n")
    assert derived.rstrip().endswith("passed: pytest")
    docs = commit_message("Documented the flags.", "", ["README.md"])
    assert docs.startswith("docs: documented the flags\n")
    # A run that stopped before it summarised: its warning is the body, not a garbled "fix: uNFINISHED".
    stopped = commit_message("UNFINISHED: The run failed: the API call failed after 2 attempts.", "")
    assert stopped.startswith("wip: unfinished change from an agentls run\n\nUNFINISHED: The run failed")
    acronym = commit_message("HTTP retries honour Retry-After.", "")
    assert acronym.startswith("feat: HTTP retries honour Retry-After\n")
    patch = format_patch("feat: x\n", "diff --git a/a b/a\n")
    assert "Subject: [PATCH] feat: x\n\n---\n\ndiff --git a/a b/a\n-- \nagentls\n" in patch
