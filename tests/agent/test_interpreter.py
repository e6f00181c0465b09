"""The project's interpreter is found by asking real interpreters (real venvs), and used in the sandbox."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agent.config import AgentSettings
from agent.interpreter import detect_interpreter
from agent.overlay import Overlay
from agent.sandbox import Sandbox, SandboxSettings
from agent.tools import ToolRegistry
from agent.tools.bash import BashTool
from agent.verify import Verifier, detect_test_command


def make_venv(path: Path, *, system_site_packages: bool = False) -> Path:
    args = [sys.executable, "-m", "venv", "--without-pip", str(path)]
    if system_site_packages:
        args.insert(3, "--system-site-packages")
    subprocess.run(args, check=True, timeout=60)
    return path


def project(root: Path) -> Path:
    (root / "tests").mkdir(parents=True)
    (root / "tests" / "test_a.py").write_text("def test_a():\n    assert True\n")
    return root


def test_a_venv_with_system_site_packages_has_pytest(tmp_path: Path) -> None:
    # agentls' own Python has pytest; a venv made from it with --system-site-packages sees it, one
    # without does not (a look into the venv's own site-packages sees neither).
    shared = project(tmp_path / "shared")
    make_venv(shared / ".venv", system_site_packages=True)
    found = detect_interpreter(shared, environ={})
    assert (found.python, found.source, found.has_pytest) == (str(shared / ".venv/bin/python"), ".venv", True)
    assert found.warning == "" and found.binds(shared) == []
    assert detect_test_command(shared) == f"{shared}/.venv/bin/python -m pytest -q -p no:cacheprovider"

    isolated = project(tmp_path / "isolated")
    make_venv(isolated / "venv")
    found = detect_interpreter(isolated, environ={})
    assert (found.source, found.has_pytest) == ("venv", False)
    assert detect_test_command(isolated) is None  # no pytest for the project's Python: not guessed


def test_virtual_env_poetry_uv_and_a_broken_venv(tmp_path: Path) -> None:
    outside = make_venv(tmp_path / "elsewhere" / "env", system_site_packages=True)
    root = project(tmp_path / "ws")
    found = detect_interpreter(root, environ={"VIRTUAL_ENV": str(outside)})
    assert (found.source, found.prefix) == ("VIRTUAL_ENV", str(outside))
    assert found.binds(root) == [(outside, outside)]  # mounted read-only in the sandbox
    assert found.env("/usr/bin") == {"PATH": f"{outside}/bin:/usr/bin", "VIRTUAL_ENV": str(outside)}
    # Outside the workspace (here under /tmp, which the sandbox replaces): mounted, first on PATH.
    with BashTool(Overlay(root), Sandbox(), interpreter=found, timeout=30) as bash:
        result = ToolRegistry([bash]).execute(
            "bash", {"command": "python -c 'import sys; print(sys.prefix)'"}
        )
    assert result.content == str(outside)

    # Poetry's environment, from `poetry env info -p` (a stand-in poetry that answers like the real one).
    (root / "pyproject.toml").write_text("[tool.poetry]\nname = 'x'\n")
    poetry = tmp_path / "poetry"
    poetry.write_text(f"#!/bin/sh\n[ \"$*\" = 'env info -p' ] && echo {outside}\n")
    poetry.chmod(0o755)
    found = detect_interpreter(root, environ={}, which=lambda name: str(poetry) if name == "poetry" else None)
    assert (found.source, found.python) == ("poetry", f"{outside}/bin/python")

    # A .venv whose interpreter is gone is skipped, and the run is told; a uv venv says it is uv's.
    (root / ".venv" / "bin").mkdir(parents=True)
    (root / ".venv" / "bin" / "python").symlink_to(tmp_path / "deleted-python")
    make_venv(root / "venv", system_site_packages=True)
    (root / "venv" / "pyvenv.cfg").write_text((root / "venv" / "pyvenv.cfg").read_text() + "uv = 0.5.1\n")
    found = detect_interpreter(root, environ={})
    assert (found.source, found.python) == ("uv", str(root / "venv" / "bin" / "python"))
    assert f"{root}/.venv/bin/python (the workspace's .venv) does not run" in found.warning


def test_no_environment_falls_back_and_says_why(tmp_path: Path) -> None:
    root = project(tmp_path / "ws")
    found = detect_interpreter(root, environ={})
    assert found.prefix is None and found.source in ("system", "agentls")
    assert found.has_pytest  # the project has tests: a fallback with pytest is preferred
    assert "no project environment was found" in found.warning and found.python in found.warning


@pytest.fixture
def venv_ws(tmp_path: Path) -> Path:
    root = project(tmp_path / "ws")
    venv = make_venv(root / ".venv", system_site_packages=True)
    # The console script pip writes when pytest is installed into the venv.
    script = venv / "bin" / "pytest"
    script.write_text(
        f"#!{venv}/bin/python\nimport sys\nfrom pytest import console_main\nsys.exit(console_main())\n"
    )
    script.chmod(0o755)
    return root


def test_the_bash_session_and_the_tests_use_the_projects_venv(venv_ws: Path) -> None:
    overlay = Overlay(venv_ws)
    settings = AgentSettings()
    sandbox = Sandbox(settings.sandbox)
    verifier = Verifier(overlay, sandbox, settings)
    assert verifier.interpreter.python == str(venv_ws / ".venv" / "bin" / "python")
    with BashTool(overlay, sandbox, interpreter=verifier.interpreter, timeout=30) as bash:
        probe = "command -v python pytest; python -c 'import sys; print(sys.prefix)'; echo $VIRTUAL_ENV"
        result = ToolRegistry([bash]).execute("bash", {"command": probe})
    venv = venv_ws / ".venv"
    assert result.content.splitlines() == [f"{venv}/bin/python", f"{venv}/bin/pytest", str(venv), str(venv)]
    # A configured test command that names plain `pytest` resolves to the venv's too.
    # (No plugin autoload: agentls' own plugins, seen through system site-packages, take seconds to load.)
    command = "command -v pytest && PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 pytest -q -p no:cacheprovider"
    settings = AgentSettings(test_command=command)
    checked = Verifier(overlay, sandbox, settings).run_tests()
    assert checked.passed, checked.checks[0].output
    assert checked.checks[0].output.splitlines()[0] == f"{venv}/bin/pytest"


def test_the_interpreter_is_asked_in_the_sandbox_the_commands_run_in(tmp_path: Path) -> None:
    # A .venv whose python is a wrapper in a host folder the sandbox does not show (its /tmp is fresh):
    # it answers on the host, but no command of the run could start it.
    root = project(tmp_path / "ws")
    host_only = tmp_path / "host-only"
    host_only.mkdir()
    wrapper = host_only / "python"
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    wrapper.chmod(0o755)
    (root / ".venv" / "bin").mkdir(parents=True)
    (root / ".venv" / "bin" / "python").symlink_to(wrapper)

    on_host = detect_interpreter(root, environ={}, sandbox=Sandbox(SandboxSettings(enabled=False)))
    assert (on_host.source, on_host.probed) == (".venv", "host")  # no sandbox: the host is the answer

    sandbox = Sandbox(SandboxSettings())
    inside = detect_interpreter(root, environ={}, sandbox=sandbox)
    assert inside.probed == "sandbox" and inside.source in ("system", "agentls")
    assert f"{root}/.venv/bin/python (the workspace's .venv) does not run in the sandbox" in inside.warning
    # The run's verifier asks in its sandbox, and a working venv is still found there.
    (root / ".venv").rename(root / "broken")
    make_venv(root / ".venv", system_site_packages=True)
    found = Verifier(Overlay(root), sandbox, AgentSettings()).interpreter
    assert (found.source, found.probed, found.has_pytest) == (".venv", "sandbox", True)
    assert found.record()["probed"] == "sandbox"


@pytest.fixture
def outside_venv(tmp_path: Path) -> Path:
    """A venv under /tmp outside the workspace (activated: VIRTUAL_ENV) holding a package of its own
    (`i10lib`, distribution i10-lib 2.5) and a stand-in pip that records how it was started."""
    venv = make_venv(tmp_path / "envs" / "proj", system_site_packages=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    (site / "i10lib").mkdir()
    (site / "i10lib" / "__init__.py").write_text(
        'def scale(values, factor=2):\n    """Multiply each value by factor."""\n    return values\n'
    )
    info = site / "i10_lib-2.5.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: i10-lib\nVersion: 2.5\n")
    (info / "top_level.txt").write_text("i10lib\n")
    (info / "RECORD").write_text("i10lib/__init__.py,,\n")
    (site / "pip").mkdir()
    (site / "pip" / "__init__.py").write_text("")
    (site / "pip" / "__main__.py").write_text(
        "import pathlib, sys\n"
        "args = sys.argv[1:]\n"
        "target = pathlib.Path(args[args.index('--target') + 1])\n"
        "(target / 'i10_extra-1.0.dist-info').mkdir(parents=True)\n"
        "print('installed by', sys.prefix)\n"
    )
    return venv


def test_docs_dependencies_and_installs_use_the_runs_interpreter(tmp_path: Path, outside_venv: Path) -> None:
    # No environment in the workspace: guessing paths there (.venv, venv, env, else python3) finds the
    # system's Python, which has no i10lib; the run's interpreter is the activated venv under /tmp, which
    # the sandbox shows only when it is mounted.
    from agent.depindex import DependencyIndexes
    from agent.installs import InstallPackageTool
    from agent.roles import SOLO
    from agent.tools.toolset import ToolResources, toolset

    root = project(tmp_path / "ws")
    (root / "pyproject.toml").write_text('[project]\nname = "demo"\nversion = "0.1"\ndependencies = []\n')
    settings = AgentSettings(sandbox=SandboxSettings(timeout_seconds=60))
    sandbox = Sandbox(settings.sandbox)
    found = detect_interpreter(root, environ={"VIRTUAL_ENV": str(outside_venv)}, sandbox=sandbox)
    assert (found.source, found.prefix) == ("VIRTUAL_ENV", str(outside_venv))
    overlay = Overlay(root)
    resources = ToolResources.create(settings, overlay, sandbox, interpreter=found)
    docs = toolset(SOLO, resources).execute("lookup_docs", {"name": "i10lib.scale", "language": "python"})
    assert not docs.is_error, docs.content
    assert "installed: i10-lib 2.5" in docs.content and "Multiply each value by factor." in docs.content

    dependency = DependencyIndexes(root, sandbox, tmp_path / "cache", interpreter=found).resolve("i10lib")
    assert (dependency.distribution, dependency.version) == ("i10-lib", "2.5")
    assert dependency.folder.is_relative_to(outside_venv)

    network = Sandbox(SandboxSettings(timeout_seconds=60, network="registries"))
    tool = InstallPackageTool(overlay, network, interpreter=found)
    try:
        result = ToolRegistry([tool]).execute("install_package", {"package": "i10-extra"})
    finally:
        tool.close()
        network.close()
    assert not result.is_error, result.content
    assert "i10-extra 1.0" in result.content  # the venv's pip ran, not the system's
