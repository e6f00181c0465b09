"""What a run tells the model about the project: its instruction files and its environment.

`project_prompt(root, task_path, ...)` returns a `agent.roles.PromptContext` with two sections for the
role's system prompt, and the instruction files it read (for the transcript's `run_start`):

- **Project instructions**: ``AGENTS.md`` and ``CLAUDE.md`` of the task's folder and of each folder above
  it up to the workspace root (nearest first: the task's file or folder, then its parents, the root last),
  then ``.agentls/rules/*.md`` of the root (by name). At most `MAX_INSTRUCTION_BYTES` in all: a file that
  does not fit is cut, with a note saying so, and later files are left out (listed as such).
- **Environment**: the absolute workspace root (commands run there, also in the sandbox), the OS, today's
  date (UTC), the git branch and a one-line status summary, the project's Python (`agent.interpreter`:
  where it was found, its version, whether it has pytest), its Cargo or Go when it is a Rust or Go
  project (`agent.toolchains`: where, which version, or why it cannot run) and the test command.

Both are computed once at the start of a run, so the system prompt stays byte-identical for the whole
run (it is the cached prefix). Secret values in instruction files go through the run's redactor when
there is one.
"""

from __future__ import annotations

import datetime as dt
import logging
import platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from agent.interpreter import Interpreter, detect_interpreter
from agent.roles import PromptContext
from agent.toolchains import Toolchain

__all__ = [
    "INSTRUCTION_NAMES",
    "MAX_INSTRUCTION_BYTES",
    "InstructionFile",
    "environment_section",
    "find_instructions",
    "instructions_section",
    "project_prompt",
]

log = logging.getLogger(__name__)

INSTRUCTION_NAMES = ("AGENTS.md", "CLAUDE.md")
"""Instruction files read in the task's folder and each folder above it."""
RULES_DIR = ".agentls/rules"
MAX_INSTRUCTION_BYTES = 16 * 1024
"""All instruction files together, in UTF-8 bytes."""


@dataclass(frozen=True)
class InstructionFile:
    """One instruction file and how much of it reached the prompt."""

    path: str
    """Workspace-relative, POSIX."""
    text: str
    """What the prompt holds (cut when `truncated`; "" when `omitted`)."""
    size: int
    """The file's size in bytes."""
    truncated: bool = False
    omitted: bool = False
    """Left out: the size cap was used up by nearer files."""

    def record(self) -> dict[str, object]:
        """The file as the transcript lists it."""
        return {"path": self.path, "bytes": self.size, "truncated": self.truncated, "omitted": self.omitted}


def _folders(root: Path, task_path: str | None) -> list[Path]:
    """The task's folder, its parents, up to and including the root (nearest first)."""
    folders = [root]
    if task_path:
        rel = PurePosixPath(task_path)
        start = rel if (root / rel).is_dir() else rel.parent
        chain: list[Path] = []
        for part in (start, *start.parents):
            if str(part) in (".", ""):
                break
            chain.append(root / part)
        folders = [*chain, root]
    return folders


def find_instructions(
    root: Path,
    task_path: str | None = None,
    *,
    max_bytes: int = MAX_INSTRUCTION_BYTES,
    redact: Callable[[str, str], str] | None = None,
) -> list[InstructionFile]:
    """The project's instruction files, nearest first, within `max_bytes` in all."""
    root = root.resolve()
    paths: list[Path] = []
    for folder in _folders(root, task_path):
        paths.extend(folder / name for name in INSTRUCTION_NAMES)
    rules = root / RULES_DIR
    if rules.is_dir():
        paths.extend(sorted(rules.glob("*.md")))
    found: list[InstructionFile] = []
    left = max_bytes
    for path in paths:
        try:
            if not path.is_file() or not path.resolve().is_relative_to(root):
                continue  # a symlink out of the workspace is not the project's
            data = path.read_bytes()
        except OSError as error:
            log.debug("cannot read %s: %s", path, error)
            continue
        rel = path.relative_to(root).as_posix()
        if left <= 0:
            found.append(InstructionFile(rel, "", len(data), omitted=True))
            continue
        cut = len(data) > left
        text = data[:left].decode("utf-8", "ignore") if cut else data.decode("utf-8", "replace")
        if redact is not None:
            text = redact(text, rel)
        left -= min(len(data), left)
        found.append(InstructionFile(rel, text, len(data), truncated=cut))
    return found


def instructions_section(files: list[InstructionFile], max_bytes: int = MAX_INSTRUCTION_BYTES) -> str:
    """The "Project instructions" section ("" without instruction files)."""
    if not files:
        return ""
    parts = [
        "# Project instructions\n\nThe project's own instructions for agents, nearest to the task first "
        "(when two disagree, the nearer one wins). Follow them unless the user's task says otherwise."
    ]
    for file in files:
        if file.omitted:
            parts.append(f"## {file.path}\n\n(left out: the instruction files exceed {max_bytes:,} bytes)")
            continue
        note = ""
        if file.truncated:
            note = (
                f"\n\n[... cut: the instruction files exceed {max_bytes:,} bytes; "
                f"read {file.path} for the rest]"
            )
        parts.append(f"## {file.path}\n\n{file.text.strip()}{note}")
    return "\n\n".join(parts)


def _git_summary(root: Path) -> tuple[str, str]:
    """(branch, one-line status) of the repository at `root`."""
    from agent.vcs import GitError, run_git

    try:
        head = run_git(root, ["rev-parse", "--abbrev-ref", "HEAD"], timeout=5)
        if head.returncode != 0:
            return "none (not a git repository)", ""
        status = run_git(root, ["status", "--porcelain", "--untracked-files=normal"], timeout=10)
    except GitError as error:
        return f"unknown ({error})", ""
    branch = head.stdout.strip() or "?"
    if branch == "HEAD":
        branch = "detached HEAD"
    lines = [line for line in status.stdout.splitlines() if line.strip()]
    untracked = sum(1 for line in lines if line.startswith("??"))
    changed = len(lines) - untracked
    summary = "clean" if not lines else f"{changed} changed, {untracked} untracked file(s)"
    return branch, summary


def environment_section(
    root: Path,
    *,
    python: str | None,
    test_command: str | None,
    interpreter: Interpreter | None = None,
    toolchains: Sequence[Toolchain] = (),
) -> str:
    """The "Environment" section: root, OS, date, git, interpreter, Cargo and Go, test command."""
    root = root.resolve()
    if interpreter is None and python is None:
        interpreter = detect_interpreter(root)
    if interpreter is not None:
        described = interpreter.describe()
        if interpreter.prefix is not None:
            described += "; its bin is first on PATH in bash"
    else:
        described = f"{python}"
    branch, status = _git_summary(root)
    git = f"branch {branch}" + (f"; {status}" if status else "")
    system = f"{platform.system()} {platform.release()} ({platform.machine()})"
    lines = [
        "# Environment",
        "",
        f"- Workspace root: {root} (commands run here, also in the sandbox)",
        f"- OS: {system}",
        f"- Date: {dt.datetime.now(dt.UTC).date().isoformat()} (UTC)",
        f"- Git: {git} (at the start of the run)",
        f"- Python: {described}",
        *(f"- {toolchain.language}: {toolchain.describe()}" for toolchain in toolchains),
        f"- Test command: {test_command or 'none found (set agent.test_command in agentls.toml)'}",
    ]
    return "\n".join(lines)


def project_prompt(
    root: Path,
    task_path: str | None = None,
    *,
    python: str | None = None,
    test_command: str | None = None,
    redact: Callable[[str, str], str] | None = None,
    max_bytes: int = MAX_INSTRUCTION_BYTES,
    interpreter: Interpreter | None = None,
    toolchains: Sequence[Toolchain] = (),
) -> tuple[PromptContext, list[InstructionFile]]:
    """The environment and project-instruction sections for a run on `task_path`, and the files read."""
    files = find_instructions(root, task_path, max_bytes=max_bytes, redact=redact)
    sections = (
        environment_section(
            root, python=python, test_command=test_command, interpreter=interpreter, toolchains=toolchains
        ),
        instructions_section(files, max_bytes),
    )
    return PromptContext(sections=tuple(s for s in sections if s)), files
