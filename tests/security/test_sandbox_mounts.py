"""The sandbox mounts only what a toolchain needs (issue 17, red-team list): the host's secrets, home,
other projects and agentls' own stores are absent; the workspace's virtual environment still runs, even
when it and its base interpreter live under /tmp."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.sandbox import Sandbox

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def other_project() -> Iterator[Path]:
    # Outside /tmp (the sandbox has its own /tmp): another project with a secret on the same machine.
    root = Path(tempfile.mkdtemp(prefix="agentls-other-", dir="/var/tmp"))
    (root / ".env").write_text("OTHER_SECRET=hunter2\n")
    yield root
    shutil.rmtree(root)


def test_host_secrets_home_and_other_projects_are_absent(workdir: Path, other_project: Path) -> None:
    home = Path.home()
    probes = {
        "/etc/shadow": Path("/etc/shadow").exists(),
        str(other_project / ".env"): True,
        str(home / ".gitconfig"): (home / ".gitconfig").exists(),
        str(home / ".cache" / "agentls"): (home / ".cache" / "agentls").exists(),
    }
    command = "; ".join(
        f"ls -d {path} >/dev/null 2>&1 && cat {path} 2>/dev/null | head -c 200 && echo SEEN:{path}"
        for path in probes
    )
    result = Sandbox().run(command, workdir)
    seen = [line for line in result.stdout.splitlines() if line.startswith("SEEN:")]
    assert "hunter2" not in result.stdout
    assert seen in ([], ["SEEN:/etc/shadow"])  # /etc/shadow, when listed, is an empty stand-in
    assert "root:" not in result.stdout
    # Of the home only the way to agentls' own interpreter exists (when it is installed there).
    listing = Sandbox().run(f"ls -A {home}", workdir).stdout.split()
    # (agentls' own interpreter: its prefix and, when that is a virtual environment, its base installation)
    prefixes = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve()}
    allowed = {p.name for prefix in prefixes for p in (prefix, *prefix.parents)}
    assert set(listing) <= allowed, listing
    # The same probes outside the sandbox do see what exists (so the check above can fail).
    outside = subprocess.run(["bash", "-c", command], capture_output=True, text=True, check=False)
    assert "SEEN:" + str(other_project / ".env") in outside.stdout


def test_toolchain_folders_are_there(workdir: Path) -> None:
    result = Sandbox().run(
        "cat /etc/passwd | head -1; ls /usr/bin/env; git --version; python3 -c 'print(42)'", workdir
    )
    assert result.exit_code == 0, result.stderr
    assert "42" in result.stdout and "git version" in result.stdout


def test_a_virtual_environment_under_tmp_keeps_working(workdir: Path, tmp_path: Path) -> None:
    # A venv in the workspace (bound read-only, as the overlay does) whose base interpreter is a copy
    # of this one under /tmp: both must be visible inside, although the sandbox has its own /tmp.
    base = tmp_path / "pybase"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(base)], check=True)
    venv = tmp_path / "project-venv"
    subprocess.run([str(base / "bin" / "python"), "-m", "venv", "--without-pip", str(venv)], check=True)
    result = Sandbox().run(
        ".venv/bin/python -c 'import sys; print(sys.prefix)'", workdir, ro_binds=[(venv, workdir / ".venv")]
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == str(workdir / ".venv")


def test_agentls_python_works_inside(workdir: Path) -> None:
    result = Sandbox().run([sys.executable, "-c", "import json, sqlite3; print('ok')"], workdir)
    assert result.exit_code == 0 and result.stdout.strip() == "ok", result.stderr
    assert os.path.isdir(sys.prefix)
