"""Anthropic's bash tool (`bash_20250124`, name `bash`): a persistent shell session in the sandbox.

Input: `command`, or `restart: true`. As Anthropic describes the tool, state carries over between calls
of one run: the working directory, shell and exported variables (an activated virtual environment
included), functions and aliases, and what commands leave in /tmp (and in HOME, /tmp/home). Shell options
(`set -e`) and background processes do not: every command still runs as its own sandboxed `bash`
process, killable as one process group, with no shell left to hang between calls. At its end (also after
`exit`) the process writes its state to a file in the session's /tmp; the next command restores it
first. A command killed by the timeout or by cancel saves nothing, so the session stays as it was before
that command (the result says so). `restart: true` starts a new session: fresh /tmp, the project's
environment, the workspace root, and a fresh copy of the overlay. The session's copy and /tmp are removed
at a restart and when the run ends, also when a command took its owner's permissions there (`chmod 000 sub`,
`chmod 555 .`: `agent.scratch.remove_tree`); one that cannot be removed is a warning in the log.

The session starts at the workspace root with the project's interpreter environment active when it has
one (`agent.interpreter`: its `bin` first on PATH, `VIRTUAL_ENV` or `CONDA_PREFIX` set), so `python` and
`pytest` are the project's.

Each call:

1. brings the materialized copy of the overlay up to date (the first call copies the workspace, later
   calls rewrite only what the editor changed since);
2. runs the command under bubblewrap with the copy shown at the real workspace path (so absolute paths,
   virtualenv scripts and editable installs see the agent's version), heavy folders (`.git`,
   `node_modules`, virtualenvs) bound read-only from the real workspace (the caches in `node_modules`
   start empty and writable, `agent.sandbox`), the session's folder as /tmp, no network;
3. folds the files the command changed back into the overlay, so `sed -i`, formatters and code generators
   count like editor edits (the paths inotify saw the command touch, after the first command's walk of the
   whole copy: `Overlay.sync_back_from`); changes to binary files and files over 10 MiB (`MAX_FOLDED_BYTES`)
   are not kept, and the output says so, as it does for a dependency or tool folder the command created
   (`node_modules`, `.venv`): it stays in the session's copy, but not in the proposal or the verification. A
   command that filled the copy past `agent.sandbox.workspace_mb` folds nothing back (what filled it would sit
   in agentls' memory): the next call remakes the copy from the overlay, which has every change made before
   it. One that filled the session's /tmp past `tmp_mb` has /tmp emptied. The result says so. Symbolic links a
   command creates, retargets or deletes are not proposed (`agent.overlay`): each is a line of the result, and
   the run's summary lists them. A folder a command left without its owner's read or search permission
   (`chmod 000 sub`, or the whole workspace: `chmod 000 .`) gets its owner's rwx back before its files are
   folded back (a folder's mode is no part of the proposal, and no later command could look into it), and
   the result says so. A file a command left unreadable (`chmod 000 f.py`; a folder whose permissions cannot
   be given back) keeps what the run had there (never proposed as deleted), and the result says so. A file
   the first step cannot write or remove (an earlier command's `chmod 555 sub`, a full disk, the first copy's
   included) is named in the result with the reason: the command sees the copy's older state of it or none,
   the overlay keeps its own version (what the command does to that file is not folded back), and the next
   call tries again. A workspace file (or folder) the first copy cannot copy (agentls cannot read it: mode
   000 of another owner, an I/O error; or the copy had no room) is named in the first result with the
   reason: commands do not see it. What a command writes at (or deletes from) such a file's path is not
   kept, and the result says so: with no base, nothing can be proposed for an unreadable file, and a
   readable one the copy lacked was not what the command changed (an `>>` would propose it without its
   old content). Once the overlay writes its own version of the file into the copy, that version is the
   base again. A file or folder the first copy could not read is tried again at each call's first step
   (one look at each, no walk): once the user makes it readable, it is copied, the result says so, and
   commands see and change it as any other.

The result is stdout then stderr as a terminal would leave them (a carriage return overwrites the line:
a progress bar is its last state, ``\\r\\n`` is a line break), with `[exit code: N]` when it is not 0. A
command that runs past the timeout, or is cancelled, is killed with everything it started; the result says
so and is an error.

For the `anthropic` provider the tool is Anthropic's built-in type; for other providers it is a plain
function with the same input and the behaviour above in its description. It is not read-only: files a
command changes become part of the overlay.

When no sandbox can be made and running unsandboxed is not allowed, `ToolAbort` ends the run with the
sandbox's message (installing bubblewrap is the user's job, not the model's).
"""

from __future__ import annotations

import logging
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.overlay import MAX_FOLDED_BYTES, MaterializedWorkspace, Overlay
from agent.sandbox import WORKSPACE_COPY, CommandResult, SandboxUnavailable, default_scratch_dir, sandbox_path
from agent.scratch import remove_tree
from agent.tools import ANTHROPIC, ToolAbort, ToolError, ToolResult, function_definition, one_line

if TYPE_CHECKING:
    from agent.interpreter import Interpreter
    from agent.ports import Sandbox

__all__ = ["SESSION_SCRIPT", "BashTool", "as_terminal_shows", "format_command_result"]

log = logging.getLogger(__name__)

_STATE_DIR = ".agentls-bash"
"""The session's state (the command and the saved shell state), in the session's /tmp."""

SESSION_SCRIPT = r"""__agentls_dir="${TMPDIR:-/tmp}/.agentls-bash"
shopt -s expand_aliases
if [ -f "$__agentls_dir/state" ]; then
  . "$__agentls_dir/state"
  builtin cd -- "$__agentls_cwd" 2>/dev/null || builtin printf '%s\n' \
    "[the working directory $__agentls_cwd of the previous command is gone; now in $PWD]" >&2
fi
__agentls_save() {
  __agentls_rc=$?
  set +euo pipefail
  {
    builtin printf '__agentls_cwd=%q\n' "$PWD"
    for __agentls_n in $(compgen -v); do
      case $__agentls_n in
        __agentls_*|BASH*|COMP*|DIRSTACK|EPOCH*|EUID|FUNCNAME|GROUPS|HISTCMD|HOSTNAME|HOSTTYPE|IFS|\
LINENO|MACHTYPE|OPTERR|OPTIND|OSTYPE|PIPESTATUS|PPID|PS4|PWD|RANDOM|SECONDS|SHELLOPTS|SHLVL|SRANDOM|UID|_)
          continue ;;
      esac
      case ${!__agentls_n@a} in *r*) continue ;; esac
      builtin declare -p "$__agentls_n" 2>/dev/null
    done
    builtin declare -f
    builtin alias -p
  } >"$__agentls_dir/state.new" 2>/dev/null && command mv -f "$__agentls_dir/state.new" "$__agentls_dir/state"
  return $__agentls_rc
}
trap __agentls_save EXIT
eval "$(<"$__agentls_dir/command")"
"""
"""Runs each command: restores the session's state, runs the command with `eval` (as `bash -c` would),
and saves the state when the shell exits (`exit` included; a killed command saves nothing)."""

_TIMEOUT_NOTE = "the shell's working directory and variables are as they were before this command"


def as_terminal_shows(output: str) -> str:
    """``output`` as a terminal leaves it on the screen: a carriage return goes back to the start of the
    line and what follows overwrites it, so a progress bar redrawn a thousand times is its last state and a
    ``\\r\\n`` line break is a ``\\n`` (a CRLF file's ``cat``, Windows tools' output). The model reads lines,
    and each discarded redraw costs tokens and can be taken for text."""
    if "\r" not in output:
        return output
    lines = []
    for line in output.split("\n"):
        screen, *redraws = line.split("\r")
        for redraw in redraws:
            screen = redraw + screen[len(redraw) :]
        lines.append(screen)
    return "\n".join(lines)


def format_command_result(result: CommandResult, timeout: float) -> str:
    """Text for the model: output (`as_terminal_shows`), then notes on the exit code, timeout, truncation
    (a command stopped for filling a limit has the sandbox's message instead: `CommandResult.space_limit`)."""
    parts = [as_terminal_shows(part).rstrip("\n") for part in (result.stdout, result.stderr) if part.strip()]
    notes: list[str] = []
    if result.timed_out:
        notes.append(
            f"[timed out after {timeout:g} seconds: the command and every process it started were killed; "
            f"{_TIMEOUT_NOTE}]"
        )
    elif result.cancelled:
        notes.append("[cancelled: the command and every process it started were killed]")
    elif result.space_limit is not None and result.space_limit.stopped:
        pass  # the sandbox's message, the last line of stderr, says why it was killed
    elif result.exit_code != 0:
        notes.append(f"[exit code: {result.exit_code}]")
    if not parts and not notes:
        return "(no output)"
    return "\n".join(parts + notes)


class BashTool:
    """`bash` on the overlay: a persistent shell session, one sandboxed process per call."""

    name = "bash"
    type = "bash_20250124"
    description = (
        "Run a shell command in a persistent bash session in a sandbox on a copy of the workspace (no "
        "network, time and memory limits) and get its output and exit code. The working directory, "
        "shell and exported variables, functions, aliases and files in /tmp carry over between calls; "
        "background processes and `set` options do not. The session starts at the workspace root with "
        "the project's Python environment first on PATH. Files the command changes in the workspace are "
        "kept. A command that runs past the time limit is killed and the session stays as it was before "
        "it. `restart: true` starts a new session from a fresh copy."
    )
    read_only = False
    input_schema: Mapping[str, Any] = {
        "type": "object",
        "properties": {
            "command": {"type": "string", "description": "The command to run."},
            "restart": {
                "type": "boolean",
                "description": "Start a new session (workspace root, fresh variables and /tmp).",
            },
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
        interpreter: Interpreter | None = None,
    ) -> None:
        """`scratch_dir` holds the materialized copy and the session's /tmp (default: the sandbox setting,
        else tmpfs or temp); `interpreter` is the project's Python, whose environment the session starts
        in."""
        self.overlay = overlay
        self.sandbox = sandbox
        configured = sandbox.settings.scratch_dir
        self._scratch = scratch_dir or (Path(configured) if configured else None) or default_scratch_dir()
        self._timeout = timeout if timeout is not None else sandbox.settings.timeout_seconds
        self._env = dict(interpreter.env(sandbox_path(sandbox.settings)) if interpreter else {})
        self._env.update(env or {})
        self._interpreter_binds = interpreter.binds(overlay.root) if interpreter else []
        self._cancel = cancel
        self._dest: Path | None = None
        self._session: Path | None = None
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
        """Run `command` in the session, in the sandbox on the current overlay, and fold its file changes
        back."""
        dest = self._materialize()
        session = self._session_dir()
        (session / _STATE_DIR / "command").write_text(command, encoding="utf-8")
        binds = [(self.overlay.root / rel, self.overlay.root / rel) for rel in self._bind_dirs()]
        binds += self._interpreter_binds
        try:
            result = self.sandbox.run(
                ["/bin/bash", "-c", SESSION_SCRIPT, "bash"],
                dest,
                timeout=self._timeout,
                env=self._env,
                cancel=self._cancel,
                mount_at=self.overlay.root,
                ro_binds=binds,
                tmp_dir=session,
                cwd_bytes=self.last_materialized.allocated if self.last_materialized is not None else None,
            )
        except SandboxUnavailable as exc:
            raise ToolAbort(str(exc)) from exc
        text = format_command_result(result, self._timeout)
        full = result.space_limit if result.space_limit is not None and result.space_limit.on_host else None
        if full is not None and full.place == WORKSPACE_COPY:
            # Folding back what filled the copy would hold it in agentls' memory; the copy is remade from
            # the overlay, which has every change up to this command.
            self._reset_copy()
            text += (
                "\n[the command's changes to the workspace were not kept: the copy it ran on was reset to "
                "your changes as they were before it]"
            )
            return ToolResult(text, is_error=True)
        if full is not None:
            self._empty_tmp(session)
            text += "\n[this session's /tmp was emptied]"
        report = self.overlay.sync_back_from(dest)
        if report.not_proposed:
            text += (
                "\n[not kept: the command's changes to " + ", ".join(report.not_proposed) + ", which agentls "
                "cannot read in the workspace: with nothing to compare them with, no change to them can be "
                "proposed]"
            )
        if report.not_copied:
            text += (
                "\n[not kept: the command's changes to " + ", ".join(report.not_copied) + ": the copy did "
                "not have the workspace's version (its first copy could not copy it), so the command "
                "changed something else than the workspace's file and no change to it can be proposed]"
            )
        if report.skipped:
            text += "\n[not kept (binary, non-UTF-8 or secret files): " + ", ".join(report.skipped) + "]"
        if report.too_large:
            text += f"\n[not kept (over {MAX_FOLDED_BYTES >> 20} MiB): " + ", ".join(report.too_large) + "]"
        if report.tool_dirs:
            folders = ", ".join(f"{rel}/" for rel in report.tool_dirs)
            text += (
                f"\n[not part of your proposal: {folders} (dependency and tool folders stay in this bash "
                "session's copy; the final checks and the user's project do not get them)]"
            )
        for link in report.symlinks:
            text += f"\n[not in your proposal: {link.note}]"
        if report.unreadable:
            names = ", ".join("the workspace" if rel == "./" else rel for rel in report.unreadable)
            text += f"\n[could not read {names} after the command: its files are left as they were]"
        if report.reopened:
            names = ", ".join("the workspace" if rel == "./" else rel for rel in report.reopened)
            text += (
                f"\n[the command took the owner's read or search permission on {names}; folder permissions "
                "are not part of your proposal, and later commands could not look into it, so it is rwx for "
                "the owner again]"
            )
        copy = self.last_materialized
        if copy is not None and copy.recopied:
            text += (
                f"\n[copied {', '.join(copy.recopied)} from the workspace into the copy before the command: "
                "agentls could not read them before and can now, so commands see them, and their changes to "
                "them are kept]"
            )
        uncopied = copy.uncopied_note() if copy is not None else ""
        if uncopied:
            text += (
                f"\n[could not copy {uncopied} from the workspace into the copy commands run on: commands do "
                "not see them (a folder is there, empty), so tests that need them fail for that reason]"
            )
        unwritten = copy.unwritten_note() if copy is not None else ""
        if unwritten:
            text += (
                f"\n[could not write your latest version of {unwritten} into the workspace before the "
                "command: the command saw an older state or none; your version is kept, and the command's "
                "changes to it are not]"
            )
        return ToolResult(text, is_error=result.timed_out or result.cancelled or full is not None)

    def _materialize(self) -> Path:
        if self._dest is None:
            self._scratch.mkdir(parents=True, exist_ok=True)
            self._dest = Path(tempfile.mkdtemp(prefix="agentls-ws-", dir=self._scratch))
        self.last_materialized = self.overlay.materialize(self._dest)
        return self._dest

    def _session_dir(self) -> Path:
        """The session's /tmp on the host (private to this run, removed by `close`)."""
        if self._session is None:
            self._scratch.mkdir(parents=True, exist_ok=True)
            self._session = Path(tempfile.mkdtemp(prefix="agentls-bash-", dir=self._scratch))
            (self._session / _STATE_DIR).mkdir()
        return self._session

    def _reset_copy(self) -> None:
        if self._dest is not None:
            self.overlay.forget(self._dest)
            remove_tree(self._dest, "bash session's workspace copy")
            self._dest = None

    @staticmethod
    def _empty_tmp(session: Path) -> None:
        """Remove what commands left in the session's /tmp but the session's own state."""
        for entry in session.iterdir():
            if entry.name == _STATE_DIR:
                continue
            remove_tree(entry, "file or folder in the bash session's /tmp")
        (session / "home").mkdir(exist_ok=True)

    def _bind_dirs(self) -> tuple[str, ...]:
        return self.last_materialized.bind_dirs if self.last_materialized is not None else ()

    def close(self) -> None:
        """End the session and remove the materialized copy (the overlay keeps every change)."""
        if self._dest is not None:
            self.overlay.forget(self._dest)
            remove_tree(self._dest, "bash session's workspace copy")
            self._dest = None
            self.last_materialized = None
        if self._session is not None:
            remove_tree(self._session, "bash session's /tmp")
            self._session = None

    def __enter__(self) -> BashTool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
