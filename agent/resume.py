"""A run's saved state, so a stopped run can be resumed: `agentls runs resume ID`, `agentls.resume`.

When a run ends without finishing (an API error after its retries, a rate-limit or overload storm, a
budget or step limit, the window, a crash inside the loop, Ctrl-C or cancel) the loop writes
`<runs_dir>/<run_id>.state.json` next to its transcript (0600 in the 0700 runs folder): the task, the
conversation as the model last saw it, the step count, the usage and the wall-clock time so far (which
the resumed run counts against its budget and `agent.max_minutes`), and the overlay, that is the
text of every file the run changed (and which ones it deleted or renamed), the todo list and the usage
per role. Finished runs ("proposed",
"no_changes") write it too, marked as finished, and cannot be resumed. While a run goes, the state is
also written after every step that ran a tool able to change files (status "running"), so the edits of a
process that was killed (or of a server that was restarted) mid-run can be resumed too.

`load_state(runs_dir, run_id)` reads it back (a unique prefix of the id is enough); `restore_overlay`
puts the saved files onto a fresh `agent.overlay.Overlay`; `agent.loop.Agent.resume(state)` continues
the conversation with them, as a new run whose transcript names the run it resumed. The file holds the
code the run wrote, so it is private to the user like the transcript.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.overlay import FileChange, Overlay
from agent.task import Diagnostic, Task
from agent.usage import Usage

__all__ = [
    "FINISHED",
    "Restored",
    "RunState",
    "StateNotFound",
    "load_state",
    "process_alive",
    "restore_overlay",
    "save_state",
    "state_path",
]

STATE_SCHEMA = 1
FINISHED = frozenset({"proposed", "no_changes"})
"""Statuses of runs that ended as they should: nothing to resume."""


class StateNotFound(LookupError):
    """No saved state for that run; the message says why and what to do."""


@dataclass
class RunState:
    """What a resumed run needs: the task, the conversation, the counters and the changed files."""

    run_id: str
    root: str
    task: Task
    status: str
    messages: list[dict[str, Any]]
    steps: int = 0
    reflections: int = 0
    plan: str = ""
    usage: Usage = field(default_factory=Usage)
    files: dict[str, str | None] = field(default_factory=dict)
    """Workspace-relative path -> its text in the overlay, None for a deleted file."""
    renames: dict[str, str] = field(default_factory=dict)
    """New path -> original path of renamed files."""
    error: str | None = None
    resumed_from: str | None = None
    todos: list[dict[str, Any]] = field(default_factory=list)
    """The run's todo list (`agent.tools.todo`): id, text, status."""
    roles: list[dict[str, Any]] = field(default_factory=list)
    """Usage and cost per role and node so far (`agent.costs.CostLedger.records`)."""
    pid: int | None = None
    """The process that saved it: a "running" state whose process still lives is not resumable."""
    bases: dict[str, str | None] = field(default_factory=dict)
    """Path (as in `files`) -> the text the run started that file from, None for a created one: a file the
    user changed since is merged with the run's text on resume, not overwritten."""
    seconds: float = 0.0
    """Wall-clock seconds the run took so far, its earlier parts included (`agent.max_minutes`; 0 in a
    state saved before it was kept)."""

    @property
    def resumable(self) -> bool:
        """False for a run that finished (proposed or needed no change)."""
        return self.status not in FINISHED

    @property
    def still_running(self) -> bool:
        """Saved mid-run by a process that is still alive: the run goes on there."""
        return self.status == "running" and self.pid is not None and process_alive(self.pid)


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    except OSError:
        return False
    return True


def state_path(runs_dir: Path, run_id: str) -> Path:
    """Where the state of run `run_id` is kept."""
    return Path(runs_dir) / f"{run_id}.state.json"


def _task_dict(task: Task) -> dict[str, Any]:
    return {
        "kind": task.kind,
        "instruction": task.instruction,
        "path": task.path,
        "range": list(task.range) if task.range else None,
        "symbol": task.symbol,
        "language": task.language,
        "diagnostics": [
            {
                "message": d.message,
                "line": d.line,
                "end_line": d.end_line,
                "severity": d.severity,
                "source": d.source,
                "code": d.code,
            }
            for d in task.diagnostics
        ],
        "edits_allowed": task.edits_allowed,
        "signature": task.signature,
        "doc": task.doc,
    }


def _task_from(data: dict[str, Any]) -> Task:
    rng = data.get("range")
    return Task(
        kind=data["kind"],
        instruction=str(data.get("instruction", "")),
        path=data.get("path"),
        range=(int(rng[0]), int(rng[1])) if rng else None,
        symbol=data.get("symbol"),
        language=data.get("language"),
        diagnostics=tuple(Diagnostic(**d) for d in data.get("diagnostics") or ()),
        edits_allowed=bool(data.get("edits_allowed", True)),
        signature=str(data.get("signature", "")),
        doc=str(data.get("doc", "")),
    )


def overlay_files(
    changes: list[FileChange],
) -> tuple[dict[str, str | None], dict[str, str], dict[str, str | None]]:
    """The overlay's changes as (path -> text or None, new path -> original path, path -> base text or
    None for a created file)."""
    files: dict[str, str | None] = {}
    renames: dict[str, str] = {}
    bases: dict[str, str | None] = {}
    for change in changes:
        if change.kind == "deleted":
            files[change.path] = None
        else:
            files[change.path] = change.new_text
        bases[change.path] = None if change.kind == "created" else change.base_text
        if change.kind == "renamed" and change.old_path is not None:
            renames[change.path] = change.old_path
    return files, renames, bases


def save_state(runs_dir: Path, state: RunState) -> Path:
    """Write `state` (0600, atomically) and return its path."""
    path = state_path(runs_dir, state.run_id)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    data = {
        "schema": STATE_SCHEMA,
        "run_id": state.run_id,
        "root": state.root,
        "status": state.status,
        "error": state.error,
        "resumed_from": state.resumed_from,
        "task": _task_dict(state.task),
        "messages": state.messages,
        "steps": state.steps,
        "reflections": state.reflections,
        "plan": state.plan,
        "usage": state.usage.as_dict(),
        "files": state.files,
        "renames": state.renames,
        "todos": state.todos,
        "roles": state.roles,
        "bases": state.bases,
        "seconds": round(state.seconds, 3),
        "pid": state.pid if state.pid is not None else os.getpid(),
    }
    temporary = path.with_suffix(".json.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with open(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, ensure_ascii=False, default=str)
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    return path


def load_state(runs_dir: Path, run_id: str) -> RunState:
    """The saved state of `run_id` (a unique prefix is enough); `StateNotFound` says what is wrong."""
    directory = Path(runs_dir)
    if "/" in run_id or "\\" in run_id or not run_id.strip():
        # A run id names a file of the runs folder: `../../repo/x` would load a state file from anywhere.
        raise StateNotFound(f"{run_id!r} is not a run id; `agentls runs` lists them")
    exact = state_path(directory, run_id)
    if exact.is_file():
        path = exact
    else:
        matches = sorted(directory.glob(f"{run_id}*.state.json")) if directory.is_dir() else []
        if not matches:
            raise StateNotFound(
                f"run {run_id!r} has no saved state in {directory}: it is not a run id (see `agentls runs`), "
                "or the run started before agentls kept run state"
            )
        if len(matches) > 1:
            raise StateNotFound(f"{run_id!r} matches several runs; give more of the id")
        path = matches[0]
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise StateNotFound(f"the state of run {run_id!r} ({path}) cannot be read: {error}") from error
    return RunState(
        run_id=str(data["run_id"]),
        root=str(data["root"]),
        task=_task_from(data["task"]),
        status=str(data.get("status", "failed")),
        messages=list(data.get("messages") or []),
        steps=int(data.get("steps", 0)),
        reflections=int(data.get("reflections", 0)),
        plan=str(data.get("plan", "")),
        usage=Usage.from_api(data.get("usage") or {}),
        files=dict(data.get("files") or {}),
        renames=dict(data.get("renames") or {}),
        error=data.get("error"),
        resumed_from=data.get("resumed_from"),
        todos=list(data.get("todos") or []),
        roles=list(data.get("roles") or []),
        bases=dict(data.get("bases") or {}),
        pid=data.get("pid") if isinstance(data.get("pid"), int) else None,
        seconds=float(data["seconds"]) if isinstance(data.get("seconds"), int | float) else 0.0,
    )


@dataclass
class Restored:
    """What `restore_overlay` did with files the user changed since the run stopped."""

    merged: list[str] = field(default_factory=list)
    """Both changed them: the run's changes were merged into the user's text."""
    kept: list[str] = field(default_factory=list)
    """Both changed the same lines: the user's text was kept, the run's changes to it are not restored."""


def restore_overlay(overlay: Overlay, state: RunState) -> Restored:
    """Put the saved run's changes onto `overlay` (renames first, then texts and deletions).

    A file the user changed since the run saved it (its text is no longer the run's base) is not
    overwritten: the run's changes are merged into it (`agent.merge.rebase`), or, where both changed the
    same lines, the user's text stays and the file is listed in `Restored.kept`. States saved before bases
    were kept restore as before."""
    from agent.merge import rebase

    restored = Restored()
    for new, old in state.renames.items():
        if overlay.exists(old) and not overlay.exists(new):
            overlay.rename(old, new)
    for path, text in state.files.items():
        base = state.bases.get(path)
        current = overlay.read(path) if overlay.exists(path) else None
        if text is None:
            if overlay.exists(path):
                if base is not None and current != base:
                    restored.kept.append(path)  # the user edited a file the run deleted: keep it
                    continue
                overlay.delete(path)
            continue
        if path in state.bases and current is not None and current not in (base, text):
            if base is None:  # the run created it, and so did the user since
                restored.kept.append(path)
                continue
            merged = rebase(base, current, text)
            if not merged.ok or merged.text is None:
                restored.kept.append(path)
                continue
            restored.merged.append(path)
            text = merged.text
        overlay.write(path, text)
    return restored
