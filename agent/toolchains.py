"""The project's Cargo and Go, checked before tests run as its Python is (`agent.interpreter`).

`detect_toolchains(root, sandbox=..., which=...)` returns a `Toolchain` for each of Rust (``Cargo.toml``
at the workspace root) and Go (``go.mod``) the project is: the tool is looked up on agentls' PATH
(`which`, the path verification's commands name), then asked its version (``cargo --version``, ``go
version``) where the run's commands run: inside the sandbox, with the per-user toolchain folders a
project of that kind gets (`agent.sandbox`), or on the host when commands run unsandboxed. A tool that
is not installed, or that does not run there (installed in a folder the sandbox does not show), has a
`Toolchain.problem` saying so and what to do; verification reports it as an environment problem
(`agent.verify`) instead of running a command that can only fail with "command not found".
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from agent.scratch import scratch_folder

if TYPE_CHECKING:
    from agent.ports import Sandbox

__all__ = ["Toolchain", "cargo_env", "detect_toolchains", "go_env"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Kind:
    language: str
    tool: str
    manifest: str
    version_args: tuple[str, ...]
    install: str
    """What to do when the tool is not installed."""


_KINDS = (
    _Kind("Rust", "cargo", "Cargo.toml", ("--version",), "install Rust (rustup, https://rustup.rs)"),
    _Kind("Go", "go", "go.mod", ("version",), "install Go (https://go.dev/dl)"),
)


@dataclass(frozen=True)
class Toolchain:
    """One toolchain of the project and whether its commands can run."""

    language: str
    """"Rust" or "Go"."""
    tool: str
    """"cargo" or "go": the command the project's checks and tests use."""
    manifest: str
    """The file that makes the project one of that language (``Cargo.toml``, ``go.mod``)."""
    path: str | None
    """Where the tool was found on agentls' PATH; None when it was not."""
    version: str = ""
    """Its first line of ``--version`` ("cargo 1.95.0 (...)"); "" when it did not answer."""
    problem: str = ""
    """Why the project's commands cannot use it, and what to do; "" when they can."""
    probed: Literal["sandbox", "host"] = "host"
    """Where it was asked: in the sandbox the commands run in, or on the host when there is none."""

    def describe(self) -> str:
        """One line: ``/usr/bin/go (go version go1.22.2 linux/amd64)`` or what is wrong."""
        if self.problem:
            return f"{self.tool} NOT usable: {self.problem}"
        return f"{self.path} ({self.version})"


def cargo_env(cargo: str) -> dict[str, str]:
    """Variables for running `cargo` in the sandbox: rustup's proxies find their toolchains through
    CARGO_HOME and RUSTUP_HOME, and the sandbox's HOME is private, so point them at the real ones
    (read-only inside); the build goes to a writable target folder."""
    env: dict[str, str] = {}
    cargo_home = Path(cargo).resolve().parent.parent
    if (cargo_home / "bin").is_dir() and cargo_home.name == ".cargo":
        env["CARGO_HOME"] = str(cargo_home)
        rustup = cargo_home.parent / ".rustup"
        if rustup.is_dir():
            env["RUSTUP_HOME"] = str(rustup)
    env["CARGO_TARGET_DIR"] = "/tmp/agentls-cargo-target"
    return env


def go_env() -> dict[str, str]:
    """Variables for running `go` in the sandbox: no module downloads, caches in its /tmp."""
    return {"GOFLAGS": "-mod=mod", "GOCACHE": "/tmp/go-cache", "GOPROXY": "off"}


def _ask(kind: _Kind, tool: str, sandbox: Sandbox | None, timeout: float) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of `tool`'s version command, in `sandbox` or on the host."""
    argv = [tool, *kind.version_args]
    env = cargo_env(tool) if kind.tool == "cargo" else go_env()
    with scratch_folder("agentls-toolchain-") as scratch:
        # The manifest's name is what mounts the per-user toolchain folders of that kind (~/.cargo...).
        (scratch / kind.manifest).touch()
        if sandbox is not None:
            result = sandbox.run(argv, scratch, timeout=timeout, env=env)
            return result.exit_code, result.stdout, result.stderr
        try:
            proc = subprocess.run(
                argv,
                cwd=scratch,
                capture_output=True,
                text=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            return 127, "", str(error)
        return proc.returncode, proc.stdout, proc.stderr


def _check(
    kind: _Kind, which: Callable[[str], str | None], sandbox: Sandbox | None, timeout: float
) -> Toolchain:
    from agent.sandbox import SandboxUnavailable

    where: Literal["sandbox", "host"] = "sandbox" if sandbox is not None else "host"
    found = which(kind.tool)
    if found is None:
        problem = (
            f"this is a {kind.language} project ({kind.manifest}) but `{kind.tool}` is not installed (not on "
            f"agentls' PATH): {kind.install}, or set agent.test_command"
        )
        return Toolchain(kind.language, kind.tool, kind.manifest, None, problem=problem, probed=where)
    try:
        exit_code, stdout, stderr = _ask(kind, found, sandbox, timeout)
    except (OSError, SandboxUnavailable) as error:  # verification says "no sandbox" on its own
        log.info("could not ask %s for its version: %s", found, error)
        return Toolchain(kind.language, kind.tool, kind.manifest, found, probed=where)
    lines = stdout.strip().splitlines()
    if exit_code == 0 and lines:
        return Toolchain(kind.language, kind.tool, kind.manifest, found, lines[0], probed=where)
    said = (stderr.strip().splitlines() or lines or [f"exit status {exit_code}"])[-1]
    inside = " in the sandbox" if sandbox is not None else ""
    fix = "mount its folder with agent.sandbox.extra_ro_paths" if sandbox is not None else kind.install
    problem = (
        f"`{found}` ({kind.tool}, for {kind.manifest}) does not run{inside}: {said}; {fix}, or set "
        "agent.test_command"
    )
    return Toolchain(kind.language, kind.tool, kind.manifest, found, problem=problem, probed=where)


def detect_toolchains(
    root: Path,
    *,
    sandbox: Sandbox | None = None,
    which: Callable[[str], str | None] = shutil.which,
    timeout: float = 30.0,
) -> tuple[Toolchain, ...]:
    """The Rust and Go toolchains the project at `root` needs (its ``Cargo.toml``, ``go.mod``), each
    found with `which` and asked its version in `sandbox` when it isolates commands, else on the host."""
    kinds = [kind for kind in _KINDS if (root / kind.manifest).is_file()]
    if not kinds:
        return ()
    inside = _isolating(sandbox)
    return tuple(_check(kind, which, inside, timeout) for kind in kinds)


def _isolating(sandbox: Sandbox | None) -> Sandbox | None:
    """`sandbox` when its commands run isolated (then the tools are asked there), else None (the host)."""
    from agent.sandbox import SandboxUnavailable

    try:
        return sandbox if sandbox is not None and sandbox.isolated else None
    except SandboxUnavailable:  # commands will not run at all; verification says so
        return None
