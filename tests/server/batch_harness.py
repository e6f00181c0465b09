"""Shared pieces of the `agentls batch` tests: a git repository of stubs, a scripted model that serves many
runs at once, a tasks file, and a driver process that can be killed half-way.

The model is the fake Anthropic server with a `responder`: each request is answered from its own
conversation (the module the task is about, found in the first user turn, and how many assistant turns
came before), so any number of runs, in any order, on any engine, get the same three turns: look at the
module, replace the stub's body, say it is done.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tests.fakes.anthropic_server import FAKE_API_KEY, FakeAnthropic, Reply, text, tool_use, turn

REPO_ROOT = Path(__file__).resolve().parents[2]
EDITOR = "str_replace_based_edit_tool"
STUB = "    raise NotImplementedError\n"
BODY = "    return x * 2\n"

AGENT_TOML = """\
[agent]
max_steps = 8
max_reflections = 1

[agent.model]
max_retries = 1
retry_base_delay = 0.01
retry_max_delay = 0.05
timeout = 20

[agent.sandbox]
timeout_seconds = 30
"""

_MODULE = re.compile(r"pkg/m(\d+)\.py")


def module_text(number: int) -> str:
    return (
        f"def double_{number}(x: int) -> int:\n"
        f'    """Return twice `x`.\n\n    >>> double_{number}(2)\n    4\n    """\n' + STUB
    )


def make_repo(path: Path, count: int) -> str:
    """A git repository with `count` stub modules pkg/m0.py ... (one function each); its commit."""
    (path / "pkg").mkdir(parents=True)
    (path / "pkg" / "__init__.py").write_text("")
    for number in range(count):
        (path / "pkg" / f"m{number}.py").write_text(module_text(number))
    (path / "agentls.toml").write_text(AGENT_TOML)
    return commit_all(path)


def commit_all(path: Path) -> str:
    """Make `path` a git repository of one commit holding its files; the commit."""

    def git(*args: str) -> str:
        env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com"}
        env.update(GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.com")
        done = subprocess.run(["git", *args], cwd=path, env=env, capture_output=True, text=True, check=True)
        return done.stdout.strip()

    git("init", "-q", "-b", "main")
    git("add", "-A")
    git("commit", "-q", "-m", "stubs")
    return git("rev-parse", "HEAD")


def first_user_text(body: Mapping[str, Any]) -> str:
    messages = body.get("messages") or []
    return json.dumps(messages[0].get("content")) if messages else ""


def task_module(body: Mapping[str, Any]) -> int | None:
    """The number of the module a request's run is about (from its first user turn)."""
    found = _MODULE.search(first_user_text(body))
    return int(found.group(1)) if found else None


def respond(body: Mapping[str, Any]) -> Reply:
    """The scripted turn for this request: view, replace the stub, done (by assistant turns so far)."""
    number = task_module(body)
    if number is None:
        return text("I cannot tell which module this task is about.")
    path = f"pkg/m{number}.py"
    turns = sum(1 for m in body.get("messages") or [] if m.get("role") == "assistant")
    if turns == 0:
        return turn(
            text(f"Spec: double_{number} returns twice x.\nPlan: replace the stub's body."),
            tool_use(EDITOR, {"command": "view", "path": path}),
        )
    if turns == 1:
        return tool_use(EDITOR, {"command": "str_replace", "path": path, "old_str": STUB, "new_str": BODY})
    return text(f"Implemented `double_{number}`: it returns twice x.")


def fake_model() -> FakeAnthropic:
    return FakeAnthropic(responder=respond)


def implement(number: int, repo: Path, commit: str, **extra: Any) -> dict[str, Any]:
    """An implement task for module `number` (the stub's `def` is on line 1)."""
    return {
        "id": f"t{number:02d}",
        "kind": "implement",
        "repo": str(repo),
        "commit": commit,
        "target": f"pkg/m{number}.py:1",
        **extra,
    }


def write_tasks(path: Path, tasks: Sequence[Mapping[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(t) + "\n" for t in tasks))
    return path


def cli_env(fake: FakeAnthropic, cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "RAY_"))}
    env.update(
        ANTHROPIC_API_KEY=FAKE_API_KEY,
        ANTHROPIC_BASE_URL=fake.url,
        AGENTLS_CACHE_DIR=str(cache),
        PYTHONPATH=os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p),
    )
    return env


def batch_command(tasks: Path, out: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "server.cli", "batch", str(tasks), "--out", str(out), *args]


def run_batch_cli(
    tasks: Path, out: Path, env: Mapping[str, str], *args: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        batch_command(tasks, out, *args),
        env=dict(env),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def records(out: Path) -> dict[str, dict[str, Any]]:
    """The records on disk, by task id."""
    folder = out / "records"
    if not folder.is_dir():
        return {}
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


def descendants(pid: int) -> list[int]:
    """The processes below `pid` (children, their children...)."""
    found: list[int] = []
    for child in Path(f"/proc/{pid}/task").glob("*/children"):
        for number in child.read_text().split():
            found += [int(number), *descendants(int(number))]
    return found


def running(pid: int) -> bool:
    """Whether `pid` is a live process (not gone, not a zombie)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def run_and_kill(
    tasks: Path, out: Path, env: Mapping[str, str], *args: str, after: int, timeout: float = 240
) -> tuple[dict[str, bytes], list[int]]:
    """Start a batch, SIGKILL its driver once `after` records exist: the records' bytes at that point and
    the processes that were below the driver."""
    process = subprocess.Popen(
        batch_command(tasks, out, *args),
        env=dict(env),
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    deadline = time.monotonic() + timeout
    try:
        while len(records(out)) < after:
            if process.poll() is not None:
                stderr = process.stderr.read().decode() if process.stderr else ""
                raise AssertionError(
                    f"the batch ended (exit {process.returncode}) before {after} records:\n{stderr}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"fewer than {after} records after {timeout:.0f} s")
            time.sleep(0.05)
        below = descendants(process.pid)
        os.kill(process.pid, signal.SIGKILL)  # the driver only: its workers must go with it
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(30)
        if process.stderr:
            process.stderr.close()
    return {p.name: p.read_bytes() for p in (out / "records").glob("*.json")}, below


def apply_patch(repo: Path, commit: str, patch: Path, dest: Path) -> Path:
    """A fresh clone of `repo` at `commit` with `patch` applied by `git apply`."""
    subprocess.run(["git", "clone", "-q", str(repo), str(dest)], check=True, capture_output=True)
    subprocess.run(["git", "checkout", "-q", commit], cwd=dest, check=True, capture_output=True)
    subprocess.run(["git", "apply", str(patch)], cwd=dest, check=True, capture_output=True, text=True)
    return dest
