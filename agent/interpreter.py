"""The project's Python: found by asking each candidate interpreter, not by guessing paths.

`detect_interpreter(root)` looks at the candidates in this order and takes the first whose interpreter
answers a probe (``python -I -c ...``: its executable, prefix, version and whether ``import pytest``
works, so a virtual environment with system site-packages counts as having pytest):

1. the workspace's own environment: ``.venv`` (made by venv, uv or pdm; uv's says so in its
   ``pyvenv.cfg``), ``venv``, ``env``;
2. ``VIRTUAL_ENV`` (an environment activated where agentls was started);
3. Poetry's environment (``poetry env info -p``), when the project uses Poetry and ``poetry`` is
   installed;
4. conda: ``CONDA_PREFIX`` (an activated environment other than ``base``), or the environment named in
   the workspace's ``environment.yml`` (``conda env list --json``);
5. otherwise a fallback: the system's ``python3`` or agentls' own Python, preferring one that has pytest
   when the project has Python tests. `Interpreter.warning` then says which one and why, and so does a
   candidate that exists but does not run.

The probe runs where the run's commands will: inside the sandbox (`agent.sandbox.Sandbox`, with the
workspace and the candidate's environment mounted read-only as the commands get them), so an
environment that only works on the host (its interpreter or packages in a folder the sandbox does not
show) is skipped with a warning instead of failing every test. Without a sandbox (none given, bubblewrap
missing under ``allow_unsandboxed``, or ``sandbox.enabled = false``) commands run on the host, and so
does the probe; `Interpreter.probed` says which.

An `Interpreter` tells the sandbox what to do with it: `env(path)` puts its ``bin`` first on PATH (and
sets ``VIRTUAL_ENV`` or ``CONDA_PREFIX``), `binds` are the host folders to mount read-only when the
environment lives outside the workspace (Poetry's cache, a conda installation in the home).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from agent.scratch import scratch_folder

if TYPE_CHECKING:
    from agent.ports import Sandbox

__all__ = ["Interpreter", "InterpreterSource", "detect_interpreter", "probe", "read_text"]

log = logging.getLogger(__name__)

InterpreterSource = str
"""Where an interpreter was found: ".venv", "venv", "env", "uv", "VIRTUAL_ENV", "poetry", "conda",
"system" or "agentls"."""

_PROBE = (
    "import sys, importlib.util; print(sys.executable); print(sys.prefix); "
    "print('.'.join(map(str, sys.version_info[:3]))); print(importlib.util.find_spec('pytest') is not None)"
)
_SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
_WORKSPACE_ENVS = (".venv", "venv", "env")


@dataclass(frozen=True)
class Interpreter:
    """The Python a run uses for commands, tests and docs."""

    python: str
    """Absolute path of the interpreter (as found, not resolved: a venv's ``bin/python`` stays)."""
    source: InterpreterSource
    reason: str
    """Why this one, for the user and the model ("the workspace's .venv")."""
    prefix: str | None = None
    """The environment's folder (None for the system's or agentls' own Python)."""
    version: str = ""
    has_pytest: bool = False
    warning: str = ""
    """Set when the choice is a fallback or a candidate was skipped: what happened and what to do."""
    probed: Literal["sandbox", "host"] = "host"
    """Where the probe ran: in the sandbox the commands run in, or on the host when there is none."""

    @property
    def bin_dir(self) -> str | None:
        """The environment's scripts folder (first on the sandbox's PATH), None without an environment."""
        return str(Path(self.prefix) / "bin") if self.prefix else None

    def env(self, path: str) -> dict[str, str]:
        """Variables for commands: `path` with the environment's ``bin`` first, and the environment."""
        if self.prefix is None:
            return {"PATH": path}
        variable = "CONDA_PREFIX" if self.source == "conda" else "VIRTUAL_ENV"
        return {"PATH": f"{self.bin_dir}:{path}", variable: self.prefix}

    def binds(self, root: Path) -> list[tuple[Path, Path]]:
        """(source, destination) read-only mounts the sandbox needs for an environment outside `root`."""
        if self.prefix is None:
            return []
        prefix = Path(self.prefix)
        if prefix == root or root in prefix.parents or not prefix.is_dir():
            return []
        return [(prefix, prefix)]

    def sandbox_binds(self, root: Path) -> list[tuple[Path, Path]]:
        """Read-only mounts for a command that uses this interpreter on the workspace in place (a probe,
        a docs lookup, an install): `root` and the environment, inside `root` too (the sandbox mounts
        the installation a virtual environment points to only for the folders it is given)."""
        return _binds(Path(os.path.abspath(root)), Path(self.prefix) if self.prefix else None)

    def describe(self) -> str:
        """One line: `/ws/.venv/bin/python (the workspace's .venv; Python 3.12.1; pytest installed)`."""
        version = f"; Python {self.version}" if self.version else ""
        pytest = "pytest installed" if self.has_pytest else "pytest NOT installed"
        return f"{self.python} ({self.reason}{version}; {pytest})"

    def record(self) -> dict[str, object]:
        """The transcript's fields."""
        return {
            "python": self.python,
            "source": self.source,
            "reason": self.reason,
            "prefix": self.prefix,
            "version": self.version,
            "has_pytest": self.has_pytest,
            "warning": self.warning,
            "probed": self.probed,
        }


@dataclass(frozen=True)
class _Answer:
    executable: str
    prefix: str
    version: str
    has_pytest: bool


def probe(
    python: str,
    *,
    timeout: float = 15.0,
    sandbox: Sandbox | None = None,
    binds: Sequence[tuple[Path, Path]] = (),
) -> _Answer | str:
    """Ask `python` about itself; its answer, or why it did not answer. With `sandbox`, inside it (with
    `binds` mounted read-only), else on the host."""
    argv = [python, "-I", "-c", _PROBE]
    if sandbox is not None:
        from agent.sandbox import SandboxUnavailable

        with scratch_folder("agentls-probe-") as scratch:
            try:
                result = sandbox.run(
                    argv,
                    scratch,
                    timeout=timeout,
                    env={"PYTHONDONTWRITEBYTECODE": "1"},
                    ro_binds=binds,
                )
            except (OSError, SandboxUnavailable) as error:
                return str(error)
        return _answer(result.exit_code, result.stdout, result.stderr)
    env = {"PATH": _SYSTEM_PATH, "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}
    try:
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return str(error)
    return _answer(proc.returncode, proc.stdout, proc.stderr)


def _answer(exit_code: int, stdout: str, stderr: str) -> _Answer | str:
    lines = stdout.splitlines()
    if exit_code != 0 or len(lines) < 4:
        return (stderr.strip().splitlines() or [f"exit status {exit_code}"])[-1]
    return _Answer(lines[0], lines[1], lines[2], lines[3] == "True")


def _binds(root: Path, prefix: Path | None) -> list[tuple[Path, Path]]:
    binds = [(root, root)]
    if prefix is not None and prefix != root and prefix.is_dir():
        binds.append((prefix, prefix))
    return binds


def _isolating(sandbox: Sandbox | None) -> Sandbox | None:
    """`sandbox` when its commands run isolated (then the probe runs there too), else None (the host)."""
    if sandbox is None:
        return None
    from agent.sandbox import SandboxUnavailable

    try:
        return sandbox if sandbox.isolated else None
    except SandboxUnavailable:  # commands will not run at all; the host is the best guess
        return None


def _run(argv: list[str], root: Path, timeout: float) -> str | None:
    try:
        proc = subprocess.run(
            argv, cwd=root, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        log.info("%s failed: %s", argv[0], error)
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def read_text(path: Path) -> str:
    """A text file's content, "" when it cannot be read."""
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _env_python(prefix: Path) -> Path:
    return prefix / "bin" / "python"


def _workspace_source(root: Path, name: str) -> tuple[InterpreterSource, str]:
    config = read_text(root / name / "pyvenv.cfg")
    if any(line.split("=")[0].strip() == "uv" for line in config.splitlines()):
        return "uv", f"the workspace's {name} (made by uv)"
    return name, f"the workspace's {name}"


def _conda_candidates(
    root: Path, environ: Mapping[str, str], which: Callable[[str], str | None], timeout: float
) -> list[tuple[InterpreterSource, Path, str]]:
    out: list[tuple[InterpreterSource, Path, str]] = []
    prefix = environ.get("CONDA_PREFIX")
    if prefix and environ.get("CONDA_DEFAULT_ENV", "") != "base":
        out.append(("conda", Path(prefix), f"the activated conda environment (CONDA_PREFIX={prefix})"))
    spec = read_text(root / "environment.yml") or read_text(root / "environment.yaml")
    name = next((line.split(":", 1)[1].strip() for line in spec.splitlines() if line.startswith("name:")), "")
    conda = which("conda") if name else None
    if conda:
        listing = _run([conda, "env", "list", "--json"], root, timeout)
        try:
            envs = json.loads(listing or "{}").get("envs", [])
        except ValueError:
            envs = []
        for env in envs:
            if Path(env).name == name:
                out.append(("conda", Path(env), f"the conda environment {name!r} of environment.yml"))
    return out


def detect_interpreter(
    root: Path,
    *,
    environ: Mapping[str, str] | None = None,
    which: Callable[[str], str | None] = shutil.which,
    python_tests: bool = True,
    timeout: float = 15.0,
    sandbox: Sandbox | None = None,
) -> Interpreter:
    """The project's interpreter (see the module docstring). `python_tests`: the project has Python tests
    (a fallback then prefers an interpreter with pytest). `sandbox`: where the run's commands run; the
    candidates are asked there when it isolates them."""
    environ = os.environ if environ is None else environ
    root = Path(os.path.abspath(root))
    inside = _isolating(sandbox)
    probed: Literal["sandbox", "host"] = "sandbox" if inside is not None else "host"

    def ask(python: str, prefix: Path | None) -> _Answer | str:
        if inside is None:
            return probe(python, timeout=timeout)
        return probe(python, timeout=timeout, sandbox=inside, binds=_binds(root, prefix))

    candidates: list[tuple[InterpreterSource, Path, str]] = []
    for name in _WORKSPACE_ENVS:
        python = root / name / "bin" / "python"
        if python.is_symlink() or python.exists() or (root / name / "pyvenv.cfg").is_file():
            source, reason = _workspace_source(root, name)
            candidates.append((source, root / name, reason))
    if environ.get("VIRTUAL_ENV"):
        prefix = Path(environ["VIRTUAL_ENV"])
        candidates.append(("VIRTUAL_ENV", prefix, f"the activated environment (VIRTUAL_ENV={prefix})"))
    if "[tool.poetry" in read_text(root / "pyproject.toml"):
        poetry = which("poetry")
        found = _run([poetry, "env", "info", "-p"], root, timeout) if poetry else None
        if found:
            candidates.append(("poetry", Path(found), "the project's Poetry environment"))
    candidates += _conda_candidates(root, environ, which, timeout)

    skipped: list[str] = []
    seen: set[Path] = set()
    for source, prefix, reason in candidates:
        if prefix in seen:
            continue
        seen.add(prefix)
        python = _env_python(prefix)
        answer = ask(str(python), prefix)
        if isinstance(answer, str):
            where = " in the sandbox" if inside is not None else ""
            skipped.append(f"{python} ({reason}) does not run{where}: {answer}")
            continue
        warning = ""
        if skipped:
            warning = "skipped " + "; ".join(skipped)
        return Interpreter(
            str(python), source, reason, str(prefix), answer.version, answer.has_pytest, warning, probed
        )

    fallbacks: list[tuple[InterpreterSource, str, str]] = []
    system = shutil.which("python3", path=_SYSTEM_PATH)
    if system:
        fallbacks.append(("system", system, "the system's python3"))
    fallbacks.append(("agentls", sys.executable, "agentls' own Python"))
    answers = [(f, ask(f[1], None)) for f in fallbacks]
    usable = [(f, a) for f, a in answers if not isinstance(a, str)]
    if not usable:  # agentls' own Python runs, whatever the probe said
        usable = [(fallbacks[-1], _Answer(sys.executable, sys.prefix, "", False))]
    chosen = next((fa for fa in usable if python_tests and fa[1].has_pytest), usable[0])
    (source, executable, reason), answer = chosen
    assert not isinstance(answer, str)
    why = "no project environment was found (.venv, venv, env, VIRTUAL_ENV, Poetry, conda)"
    if skipped:
        why = "; ".join(skipped)
    pytest = "it has pytest" if answer.has_pytest else "it has no pytest"
    warning = (
        f"Using {executable} ({reason}; {pytest}): {why}. Create the project's environment "
        "(`python -m venv .venv` and install the project and its test tools into it) or set "
        "agent.test_command."
    )
    return Interpreter(executable, source, reason, None, answer.version, answer.has_pytest, warning, probed)
