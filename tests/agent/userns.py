"""Test steps that need the permission bits to apply, as they do to a user: the tests run as root, which
reads and writes anyway, so the steps run in a child process in a user namespace of its own without a
mapping (``unshare -U``): the child keeps its real owner ID but has no capability over files of this
namespace's parent, so a `chmod 000 sub` stops it as it stops a user."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from agent.overlay import Overlay

__all__ = [
    "WITH_CHOWN_ONLY",
    "in_child",
    "print_verification",
    "skip_unless_chmod_denies",
    "skip_unless_chown_only",
    "warnings_of",
]

_REPO = Path(__file__).resolve().parents[2]


def _chmod_denies_in_a_user_namespace(tmp: Path) -> bool:
    probe = tmp / "probe"
    (probe / "sub").mkdir(parents=True)
    code = (
        "import os, sys; os.chmod(sys.argv[1], 0)\n"
        "try:\n    os.listdir(sys.argv[1]); print('read')\n"
        "except PermissionError:\n    print('denied')\n"
        "os.chmod(sys.argv[1], 0o755)"
    )
    done = subprocess.run(
        ["unshare", "-U", sys.executable, "-c", code, str(probe / "sub")], capture_output=True, text=True
    )
    shutil.rmtree(probe, ignore_errors=True)
    return done.returncode == 0 and done.stdout.strip() == "denied"


WITH_CHOWN_ONLY = ("setpriv", "--bounding-set", "-all,+chown", "--")
"""Root without its capabilities but CAP_CHOWN: the permission bits apply to it, it can give a folder to
another owner, and then neither read nor chmod it."""


def skip_unless_chown_only(tmp_path: Path) -> None:
    """Skip the test unless it runs as root and `WITH_CHOWN_ONLY` takes root's override away."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("the test runs as root and drops its capabilities with setpriv")
    probe = tmp_path / "probe"
    probe.mkdir()
    script = f"chmod 000 {probe}; chown 1234 {probe}; ls {probe} || chmod 700 {probe} || echo denied"
    done = subprocess.run([*WITH_CHOWN_ONLY, "sh", "-c", script], capture_output=True, text=True)
    os.chown(probe, 0, 0)
    probe.chmod(0o755)
    probe.rmdir()
    if done.stdout.strip() != "denied":
        pytest.skip("setpriv cannot take root's override away here")


def skip_unless_chmod_denies(tmp_path: Path) -> None:
    """Skip the test unless it runs as root and a user namespace takes root's override away."""
    if os.geteuid() != 0:
        pytest.skip("the test runs as root and drops the override in a user namespace")
    if shutil.which("unshare") is None or not _chmod_denies_in_a_user_namespace(tmp_path):
        pytest.skip("no user namespace in which chmod 000 stops reading")


def in_child(module: str, function: str, *args: str, launcher: tuple[str, ...] = ("unshare", "-U")) -> Any:
    """Call `module.function(*args)` in a child process in a user namespace of its own; what it printed
    last, read as JSON. `launcher` starts it otherwise: ``("unshare", "-Urm")`` maps root and gives it a
    mount namespace (to mount a small tmpfs), `WITH_CHOWN_ONLY` keeps root but of its capabilities only
    CAP_CHOWN (to make a folder of another owner, which it cannot read nor chmod)."""
    code = f"import sys; from {module} import {function} as f; f(*sys.argv[1:])"
    done = subprocess.run(
        [*launcher, sys.executable, "-c", code, *args],
        cwd=_REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.splitlines()[-1])


def warnings_of(logger: str) -> list[str]:
    """The list the warnings of `logger` (and of the loggers below it) go to from now on: the child
    process prints it for the test to check."""
    seen: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    logging.getLogger(logger).addHandler(Collect(logging.WARNING))
    return seen


def print_verification(overlay: Overlay, scratch: str) -> None:
    """In the child: verify the overlay's changes unsandboxed (bubblewrap cannot make its namespaces in
    this one) with its copy in `scratch`; print the result's outcome, summary, environment problem, check
    commands and what was left in `scratch`, as JSON."""
    from agent.sandbox import Sandbox, SandboxSettings
    from agent.verify import Verifier
    from tests.agent.agent_harness import fast_settings

    settings = fast_settings(sandbox=SandboxSettings(enabled=False, scratch_dir=scratch))
    result = Verifier(overlay, Sandbox(settings.sandbox), settings).verify(overlay.changes())
    print(
        json.dumps(
            {
                "outcome": result.outcome,
                "summary": result.summary(),
                "environment": result.environment_problem,
                "commands": [c.command for c in result.checks],
                "left": sorted(p.name for p in Path(scratch).iterdir()),
            }
        )
    )
