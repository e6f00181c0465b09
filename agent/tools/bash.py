"""Anthropic's bash tool (`bash_20250124`, name `bash`) running commands in the sandbox on the overlay.

Input: `command`, or `restart: true`. Anthropic describes a persistent bash session; here **each call is a
fresh `bash -c` process** (no state carries over: `cd`, `export` and shell variables are gone at the next
call, while files persist). That keeps every command inside its own sandbox, killable as one process
group, with no shell to hang between calls. Chain dependent steps in one command (`cd sub && make`).

Each call:

1. brings the materialized copy of the overlay up to date (the first call copies the workspace, later
   calls rewrite only what the editor changed since);
2. runs the command under bubblewrap with the copy shown at the real workspace path (so absolute paths,
   virtualenv scripts and editable installs see the agent's version), heavy folders (`.git`,
   `node_modules`, virtualenvs) bound read-only from the real workspace, no network;
3. folds the files the command changed back into the overlay, so `sed -i`, formatters and code generators
   count like editor edits; changes to binary files are not kept, and the output says so.

The result is stdout then stderr, with `[exit code: N]` when it is not 0. A command that runs past the
timeout, or is cancelled, is killed with everything it started; the result says so and is an error.
`restart: true` drops the materialized copy, so the next command starts from a fresh copy of the overlay.

For the `anthropic` provider the tool is Anthropic's built-in type; for other providers it is a plain
function with the same input and the behaviour above in its description. It is not read-only: files a
command changes become part of the overlay.

When no sandbox can be made and running unsandboxed is not allowed, `ToolAbort` ends the run with the
sandbox's message (installing bubblewrap is the user's job, not the model's).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.overlay import MaterializedWorkspace, Overlay
from agent.sandbox import CommandResult, SandboxUnavailable, default_scratch_dir
from agent.tools import ANTHROPIC, ToolAbort, ToolError, ToolResult, function_definition, one_line

if TYPE_CHECKING:
    from agent.ports import Sandbox

__all__ = ["BashTool", "format_command_result"]

log = logging.getLogger(__name__)


def format_command_result(result: CommandResult, timeout: float) -> str:
    """Text for the model: output, then notes on the exit code, timeout, truncation."""
    parts = [part.rstrip("\n") for part in (result.stdout, result.stderr) if part.strip()]
    notes: list[str] = []
    if result.timed_out:
        notes.append(
            f"[timed out after {timeout:g} seconds: the command and every process it started were killed]"
        )
    elif result.cancelled:
        notes.append("[cancelled: the command and every process it started were killed]")
    elif result.exit_code != 0:
        notes.append(f"[exit code: {result.exit_code}]")
    if not parts and not notes:
        return "(no output)"
    return "\n".join(parts + notes)


class BashTool:
    """`bash` on the overlay: one sandboxed `bash -c` per call, file changes folded back."""

    name = "bash"
    type = "bash_20250124"
    description = (
        "Run a shell command in a sandbox on a copy of the workspace (no network, time and memory limits) "
        "and get its output and exit code. Each call is a fresh `bash -c`: `cd` and `export` do not carry "
        "over, so chain dependent steps in one command. Files the command changes are kept. "
        "`restart: true` starts again from a fresh copy."
    )
    read_only = False
    input_schema: Mapping[str, Any] = {
        "type": "object",
        "properties": {
            "command": {"type": "string", "description": "The command to run."},
            "restart": {"type": "boolean", "description": "Start again from a fresh copy of the workspace."},
        },
    }

    def __init__(
        self,
        overlay: Overlay,
        sandbox: Sandbox,
        *,
        scratch_dir: Path | None = None,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        """`scratch_dir` holds the materialized copy (default: the sandbox setting, else tmpfs or temp)."""
        self.overlay = overlay
        self.sandbox = sandbox
        configured = sandbox.settings.scratch_dir
        self._scratch = scratch_dir or (Path(configured) if configured else None) or default_scratch_dir()
        self._timeout = timeout if timeout is not None else sandbox.settings.timeout_seconds
        self._env = dict(env or {})
        self._cancel = cancel
        self._dest: Path | None = None
        self.last_materialized: MaterializedWorkspace | None = None

    def definition(self, provider: str = ANTHROPIC) -> dict[str, Any]:
        """The `tools` entry: for Anthropic the built-in type and name; for others a plain function."""
        if provider != ANTHROPIC:
            return function_definition(self.name, self.description, self.input_schema)
        return {"type": self.type, "name": self.name}

    @staticmethod
    def describe(input: Mapping[str, Any]) -> str:
        """`bash: pytest -q` (or `bash: restart`)."""
        return "bash: " + one_line(input.get("command") or ("restart" if input.get("restart") else ""))

    def run(self, input: Mapping[str, Any]) -> ToolResult:
        """Run one command (or restart)."""
        restart = bool(input.get("restart", False))
        command = input.get("command")
        if restart:
            self.close()
            if not command:
                return ToolResult("The bash tool has been restarted.")
        if not command or not str(command).strip():
            raise ToolError("Parameter `command` is required unless `restart` is true.")
        return self.execute(str(command))

    def execute(self, command: str) -> ToolResult:
        """Run `command` in the sandbox on the current overlay and fold its file changes back."""
        dest = self._materialize()
        binds = [(self.overlay.root / rel, self.overlay.root / rel) for rel in self._bind_dirs()]
        try:
            result = self.sandbox.run(
                command,
                dest,
                timeout=self._timeout,
                env=self._env,
                cancel=self._cancel,
                mount_at=self.overlay.root,
                ro_binds=binds,
            )
        except SandboxUnavailable as exc:
            raise ToolAbort(str(exc)) from exc
        report = self.overlay.sync_back_from(dest)
        text = format_command_result(result, self._timeout)
        if report.skipped:
            text += "\n[not kept (binary, non-UTF-8 or secret files): " + ", ".join(report.skipped) + "]"
        return ToolResult(text, is_error=result.timed_out or result.cancelled)

    def _materialize(self) -> Path:
        if self._dest is None:
            self._scratch.mkdir(parents=True, exist_ok=True)
            self._dest = Path(tempfile.mkdtemp(prefix="agentls-ws-", dir=self._scratch))
        self.last_materialized = self.overlay.materialize(self._dest)
        return self._dest

    def _bind_dirs(self) -> tuple[str, ...]:
        return self.last_materialized.bind_dirs if self.last_materialized is not None else ()

    def close(self) -> None:
        """Remove the materialized copy (the overlay keeps every change)."""
        if self._dest is not None:
            self.overlay.forget(self._dest)
            shutil.rmtree(self._dest, ignore_errors=True)
            self._dest = None
            self.last_materialized = None

    def __enter__(self) -> BashTool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
