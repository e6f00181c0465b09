"""git runs on the host, outside the sandbox: a repository's own config must not make it run a program.

Each case builds a real repository whose ``.git/config`` names a marker program (a clean or smudge filter
assigned in ``.git/info/attributes``, a textconv, ``log.showSignature`` with ``gpg.program`` on a signed
commit, an fsmonitor, a filter in a submodule's config, one in a file ``include.path`` pulls in), runs the
git tool or the shared index's git call that would start it, and checks that the marker never ran while the
tool still answered. The user's global config is kept (a filter there still runs)."""

from __future__ import annotations

import os
import stat
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.tools.git import GitBlameTool, GitDiffTool, GitLogTool, GitShowTool, GitStatusTool
from indexing import shared
from tests.agent.test_git_tools import git as repository_git

pytestmark = pytest.mark.timeout(60)


def git(root: Path, *args: str) -> str:
    return repository_git(root, "-c", "protocol.file.allow=always", *args)  # submodules from a local path


@pytest.fixture
def marker(tmp_path: Path) -> tuple[Path, Path]:
    """A program that notes each run in a file and passes its input through, and that file."""
    ran = tmp_path / "ran.txt"
    program = tmp_path / "evil.sh"
    program.write_text(f'#!/bin/sh\necho "$*" >> {ran}\ncat\n')
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    return program, ran


def _repo(root: Path) -> Path:
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "app.py").write_text("x = 1\n")
    git(root, "add", "app.py")
    git(root, "commit", "-q", "-m", "first")
    (root / "app.py").write_text("x = 2\n")
    return root


def _touch(path: Path) -> None:
    """New stat data, so git re-reads the file (through its clean filter) instead of trusting the index."""
    later = time.time() + 100
    os.utime(path, (later, later))


def _signed_commit(root: Path) -> str:
    """A commit of the change to app.py carrying a (bogus) PGP signature, which git checks by running
    gpg.program when log.showSignature is on."""
    git(root, "commit", "-q", "-am", "signed")
    body = git(root, "cat-file", "commit", "HEAD")
    head, _, message = body.partition("\n\n")
    signature = "gpgsig -----BEGIN PGP SIGNATURE-----\n \n AAAA\n -----END PGP SIGNATURE-----"
    done = subprocess.run(
        ["git", "-C", str(root), "hash-object", "-t", "commit", "-w", "--stdin"],
        input=f"{head}\n{signature}\n\n{message}",
        capture_output=True,
        text=True,
        check=True,
    )
    commit = done.stdout.strip()
    git(root, "update-ref", "refs/heads/main", commit)
    return commit


def _filter_everything(root: Path, program: Path, driver: str = "ev") -> None:
    git(root, "config", f"filter.{driver}.clean", f"{program} clean")
    git(root, "config", f"filter.{driver}.smudge", f"{program} smudge")
    git(root, "config", f"filter.{driver}.required", "true")
    git(root, "config", f"diff.{driver}.textconv", f"{program} textconv")
    (root / ".git" / "info").mkdir(exist_ok=True)
    (root / ".git" / "info" / "attributes").write_text(f"* filter={driver} diff={driver}\n")


CASES: dict[str, Callable[[Path, Path], str]] = {
    "status, clean filter": lambda root, _: GitStatusTool(root).run({}),
    "diff, clean filter": lambda root, _: GitDiffTool(root).run({}),
    "blame, textconv and clean filter": lambda root, _: GitBlameTool(root).run({"path": "app.py"}),
    "blame at HEAD, smudge and textconv": lambda root, _: GitBlameTool(root).run(
        {"path": "app.py", "rev": "HEAD"}
    ),
    "shared index, dirty check": lambda root, _: str(shared.is_dirty(root)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_filter_or_textconv_in_the_repositorys_config_does_not_run(
    case: str, tmp_path: Path, marker: tuple[Path, Path]
) -> None:
    program, ran = marker
    root = _repo(tmp_path / "repo")
    _filter_everything(root, program)
    _touch(root / "app.py")
    answer = CASES[case](root, program)
    assert not ran.exists(), f"{case}: the repository's program ran: {ran.read_text()}"
    assert answer


def test_a_driver_named_with_dots_and_an_equals_sign_in_an_included_file_does_not_run(
    tmp_path: Path, marker: tuple[Path, Path]
) -> None:
    program, ran = marker
    root = _repo(tmp_path / "repo")
    included = root / "team.gitconfig"
    included.write_text(f'[filter "a=b.c"]\n\tclean = {program} clean\n\tprocess = {program} process\n')
    git(root, "config", "include.path", "../team.gitconfig")
    (root / ".git" / "info" / "attributes").write_text("*.py filter=a=b.c\n")
    _touch(root / "app.py")
    assert "app.py" in GitStatusTool(root).run({})
    assert "x = 2" in GitDiffTool(root).run({})
    assert not ran.exists(), ran.read_text()


def test_a_signature_check_does_not_run_the_repositorys_gpg_program(
    tmp_path: Path, marker: tuple[Path, Path]
) -> None:
    program, ran = marker
    root = _repo(tmp_path / "repo")
    commit = _signed_commit(root)
    git(root, "config", "log.showSignature", "true")
    git(root, "config", "gpg.program", str(program))
    assert "signed" in GitLogTool(root).run({})
    assert "signed" in GitShowTool(root).run({"rev": commit})
    assert not ran.exists(), ran.read_text()


def test_the_shared_index_does_not_run_the_repositorys_fsmonitor(
    tmp_path: Path, marker: tuple[Path, Path]
) -> None:
    program, ran = marker
    root = _repo(tmp_path / "repo")
    git(root, "config", "core.fsmonitor", str(program))
    assert shared.is_dirty(root)
    assert shared.head_commit(root)
    assert not ran.exists(), ran.read_text()


def test_a_submodules_own_filter_does_not_run(tmp_path: Path, marker: tuple[Path, Path]) -> None:
    program, ran = marker
    inner = _repo(tmp_path / "inner")
    git(inner, "commit", "-q", "-am", "second")
    root = _repo(tmp_path / "repo")
    git(root, "submodule", "-q", "add", str(inner), "sm")
    git(root, "commit", "-q", "-m", "add sm")
    module = root / ".git" / "modules" / "sm"
    git(module, "config", "filter.ev.clean", f"{program} clean")
    (module / "info").mkdir(exist_ok=True)
    (module / "info" / "attributes").write_text("* filter=ev\n")
    # Even when .gitmodules asks git to look at the submodule's work tree.
    git(root, "config", "-f", ".gitmodules", "submodule.sm.ignore", "none")
    _touch(root / "sm" / "app.py")
    assert "## main" in GitStatusTool(root).run({})
    GitDiffTool(root).run({})
    assert not ran.exists(), ran.read_text()


def test_a_filter_in_the_users_global_config_still_runs(
    tmp_path: Path, marker: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The user's own config is trusted (git-lfs installed with `git lfs install` lives there)."""
    program, ran = marker
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text(f'[filter "lfs"]\n\tclean = {program} clean\n')
    monkeypatch.setenv("HOME", str(home))
    root = _repo(tmp_path / "repo")
    (root / ".git" / "info" / "attributes").write_text("* filter=lfs\n")
    _touch(root / "app.py")
    GitStatusTool(root).run({})
    assert ran.exists()


def test_a_workspace_folder_of_a_larger_repository_sees_no_file_outside_it(tmp_path: Path) -> None:
    """The workspace is `pkg/` of a monorepo: pathspec magic in `path` (`:(top)`, `:(glob)../**`, `:!x`)
    and a git_show without `path` do not show `other/`, which is outside it."""
    top = tmp_path / "mono"
    (top / "pkg").mkdir(parents=True)
    (top / "other").mkdir()
    git(top, "init", "-q", "-b", "main")
    (top / "pkg" / "app.py").write_text("x = 1\n")
    (top / "other" / "private.py").write_text("OUTSIDE = 1\n")
    git(top, "add", ".")
    git(top, "commit", "-q", "-m", "both")
    (top / "pkg" / "app.py").write_text("x = 2\n")
    (top / "other" / "private.py").write_text("OUTSIDE = 2\n")
    root = top / "pkg"
    answers = [GitShowTool(root).run({"rev": "HEAD"})]
    for path in (":(top)", ":(top)other", ":(glob)../**", ":!x", ":/"):
        answers += [
            GitDiffTool(root).run({"path": path}),
            GitLogTool(root).run({"path": path, "patch": True}),
            GitStatusTool(root).run({}),
        ]
    assert not [a for a in answers if "OUTSIDE" in a or "private.py" in a], answers
    assert "x = 2" in GitDiffTool(root).run({}) and "x = 1" in answers[0]


def test_a_batch_tasks_checkout_runs_no_hook_and_ignores_gits_variables_of_the_driver(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`agentls batch` cloned and checked out each task's repository with plain git: the hooks of the
    user's template folder ran on the host at every checkout (post-checkout), and git's variables of the
    driver's environment (``GIT_DIR``, set for a git hook that starts a batch) sent its commands to another
    repository. Now git_safety's options and environment apply (`server.batch._git`)."""
    from server.batch import BatchTask, _checkout

    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "app.py").write_text("x = 1\n")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    sha = git(repo, "rev-parse", "HEAD").strip()
    other = tmp_path / "other"
    other.mkdir()
    git(other, "init", "-q")

    marker = tmp_path / "hook-ran"
    hooks = tmp_path / "template" / "hooks"
    hooks.mkdir(parents=True)
    hook = hooks / "post-checkout"
    hook.write_text(f"#!/bin/sh\ntouch {marker}\n")
    hook.chmod(0o755)
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text(f"[init]\n\ttemplateDir = {tmp_path / 'template'}\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))

    dest = tmp_path / "work" / "t1"
    task = BatchTask(id="t1", kind="run", repo=str(repo), commit=sha, instruction="look")
    assert _checkout(task, dest) == sha
    assert (dest / "app.py").read_text() == "x = 1\n"
    assert not marker.exists(), "a hook ran on the host during the checkout"
