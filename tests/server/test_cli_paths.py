"""Which workspace a command's ``--path`` (or ``implement``'s FILE) names, and what is refused: a path
that does not exist, one that leaves the workspace holding it through a symbolic link (also followed by
``..``), a home folder without an index. A path outside the current project that names another folder is
that folder's workspace, as before; a link that stays inside, or one in a folder no workspace holds,
is followed."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from indexing.config import IndexSettings
from indexing.search_daemon import socket_path
from server.cli import main

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def places(tmp_path: Path) -> dict[str, Path]:
    """A project (git) with links out of it, to a plain folder and to another project."""
    project, other, outside = tmp_path / "project", tmp_path / "other", tmp_path / "outside"
    for folder in (project / "src" / "pkg", other, outside):
        folder.mkdir(parents=True)
    (project / ".git").mkdir()
    (other / ".git").mkdir()
    (project / "src" / "pkg" / "alpha.py").write_text("def alpha_inside():\n    return 1\n")
    (other / "beta.py").write_text("def beta_other():\n    return 2\n")
    (outside / "gamma.py").write_text("def gamma_outside():\n    return 3\n")
    (project / "to_outside").symlink_to(outside, target_is_directory=True)
    (project / "src" / "to_other").symlink_to(Path("../../other"), target_is_directory=True)
    (project / "src" / "alias").symlink_to(Path("pkg"), target_is_directory=True)  # stays inside
    return {"project": project, "other": other, "outside": outside, "tmp": tmp_path}


def _search(query: str, path: str, cwd: Path, cache: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AGENTLS_CACHE_DIR": str(cache), "HF_HUB_OFFLINE": "1", **extra}
    return subprocess.run(
        ["agentls", "search", query, "--path", path, "-k", "3"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _invoke(args: list[str], cache: Path, **extra: str) -> Result:
    env = {"AGENTLS_CACHE_DIR": str(cache), "ANTHROPIC_API_KEY": "", "ANTHROPIC_AUTH_TOKEN": "", **extra}
    return CliRunner().invoke(main, args, env=env)


@pytest.mark.parametrize("path", ["to_outside", "src/to_other", "to_outside/..", "src/to_other/../outside"])
def test_search_refuses_a_path_that_leaves_the_project_through_a_link(
    path: str, places: dict[str, Path], cache_dir: Path
) -> None:
    out = _search("gamma_outside beta_other", path, places["project"], cache_dir)
    assert out.returncode == 1, out.stdout + out.stderr
    assert f"--path {path} leaves the workspace {places['project']} through the symbolic link" in out.stderr
    assert "follows no link out of a workspace" in out.stderr and "Traceback" not in out.stderr
    assert out.stdout == ""
    assert not (cache_dir / "index").exists()  # nothing outside was indexed (nor anything else)


@pytest.mark.parametrize(
    "args",
    [
        ["run", "Read it", "--path", "{project}/to_outside"],
        ["mcp", "--path", "{project}/src/to_other"],
        ["graph", "show", "--path", "{project}/to_outside"],
        ["implement", "{project}/to_outside/gamma.py:1"],
    ],
)
def test_the_agent_commands_refuse_a_link_out_of_the_workspace(
    args: list[str], places: dict[str, Path], cache_dir: Path
) -> None:
    result = _invoke([arg.format(project=places["project"]) for arg in args], cache_dir)
    assert result.exit_code == 1, result.output
    assert f"leaves the workspace {places['project']} through the symbolic link" in result.output


def test_a_link_that_stays_inside_or_leaves_no_workspace_is_followed(
    places: dict[str, Path], cache_dir: Path
) -> None:
    project = places["project"]
    inside = _search("alpha_inside", "src/alias", project, cache_dir)
    assert inside.returncode == 0, inside.stderr
    assert "src/pkg/alpha.py:1  alpha_inside" in inside.stdout  # the project's index
    # A link in a folder no workspace holds, to the project: the project is the workspace.
    loose = places["tmp"] / "loose"
    loose.mkdir()
    (loose / "project").symlink_to(project, target_is_directory=True)
    through = _search("alpha_inside", str(loose / "project" / "src"), places["tmp"], cache_dir)
    assert through.returncode == 0, through.stderr
    assert "src/pkg/alpha.py:1  alpha_inside" in through.stdout
    # Another folder named outright (`..` too) is that folder's workspace, as it always was.
    other = _search("beta_other", "../other", project, cache_dir)
    assert other.returncode == 0 and other.stdout.startswith("beta.py:1  beta_other"), other.stderr


def test_a_path_that_does_not_exist_is_an_error_everywhere(places: dict[str, Path], cache_dir: Path) -> None:
    missing = str(places["project"] / "nope")
    for args in (
        ["graph", "show", "--path", missing],
        ["run", "x", "--path", missing],
        ["mcp", "--path", missing],
    ):
        result = _invoke(args, cache_dir)
        assert result.exit_code == 2, args  # a bad option value, as every other one
        assert f"--path {missing} does not exist" in result.output, result.output


def test_run_and_mcp_refuse_a_home_folder_without_an_index(tmp_path: Path, cache_dir: Path) -> None:
    home = tmp_path / "home"
    (home / "notes").mkdir(parents=True)
    for args in (["run", "Tidy up", "--path", str(home)], ["mcp", "--path", str(home)]):
        result = _invoke(args, cache_dir, HOME=str(home))
        assert result.exit_code == 1, result.output
        assert f"agentls does not index {home}: it is your home folder" in result.output
    assert not (cache_dir / "index").exists()


def test_the_temporary_folder_is_refused_but_a_project_inside_it_is_searched(
    tmp_path: Path, cache_dir: Path
) -> None:
    """A loose file in the temporary folder (an editor opening ``/tmp/scratch.py``) has the folder as its
    workspace: agentls must not index every other program's files there."""
    temporary = tmp_path / "tmp"
    (temporary / "project" / ".git").mkdir(parents=True)
    (temporary / "scratch.py").write_text("def throwaway_helper():\n    return 1\n")
    (temporary / "project" / "keep.py").write_text("def keep_the_receipts():\n    return 2\n")
    refused = _invoke(
        ["search", "throwaway helper", "--path", str(temporary)], cache_dir, TMPDIR=str(temporary)
    )
    assert refused.exit_code == 1, refused.output
    assert f"agentls does not index {temporary}: it is the temporary folder" in refused.output
    assert not (cache_dir / "index").exists()
    inside = _invoke(
        ["search", "keep the receipts", "--path", str(temporary / "project")],
        cache_dir,
        TMPDIR=str(temporary),
    )
    assert inside.exit_code == 0, inside.output
    assert "keep.py" in inside.output


def test_a_home_folder_is_searched_when_its_settings_allow_it_as_the_language_server_does(
    tmp_path: Path, cache_dir: Path
) -> None:
    home = tmp_path / "home"
    (home / "notes").mkdir(parents=True)
    (home / "notes" / "todo.py").write_text("def water_the_plants():\n    return 1\n")
    (home / "agentls.toml").write_text("[server]\nindex_home_or_root = true\n")
    result = _invoke(["search", "water the plants", "--path", str(home)], cache_dir, HOME=str(home))
    assert result.exit_code == 0, result.output
    assert "notes/todo.py" in result.output


def test_the_quick_search_path_refuses_the_link_too(
    places: dict[str, Path], cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a warm search process and a search card for the folder the link leads to, the quick path
    (which answers from the card without the group) must not answer for the link either."""
    monkeypatch.setenv("AGENTLS_SEARCH_PROCESS", "1")
    outside = places["outside"]
    (outside / "agentls.toml").write_text("[index]\nsearch_process_idle = 30\n")
    extra = {"AGENTLS_SEARCH_PROCESS": "1", "PYTHONPATH": str(REPO)}
    first = _search("gamma_outside", str(outside), outside, cache_dir, **extra)
    assert first.returncode == 0 and "gamma.py" in first.stdout, first.stderr
    location = IndexSettings().location(outside, cache_dir)
    deadline = time.monotonic() + 60
    while not socket_path(location).exists():
        assert time.monotonic() < deadline, (location / "search.log").read_text()
        time.sleep(0.1)
    pid = int((location / "search.lock").read_text())
    try:
        again = _search("gamma_outside", str(outside), outside, cache_dir, **extra)
        assert again.stdout == first.stdout  # answered (by the quick path: the card is there)
        linked = _search("gamma_outside", "to_outside", places["project"], cache_dir, **extra)
        assert linked.returncode == 1 and "leaves the workspace" in linked.stderr, linked.stdout
    finally:
        os.kill(pid, signal.SIGTERM)
