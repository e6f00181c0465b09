"""From a run command's parsed arguments to the `agent.task.Task` it asks for; pure apart from parsing.

`build_task` takes the arguments `server.features.commands` parsed, the workspace folders and a way to
read a file's current text (the open buffer, else disk), and returns the task with the folder it runs
in. Everything it cannot do (a URI outside the folders, through a link out of one or with ``..``, in
``.git`` or a secret file: refused by `agent.paths` before the file is read; an unreadable file, no stub
at the line, an empty instruction) raises `CommandError` with the message for the user. It parses the
file with tree-sitter, so the server calls it on a worker thread.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.paths import PathRefused, resolve_in_workspace
from server.documents import locate, uri_to_path
from server.features import commands

if TYPE_CHECKING:
    from agent.task import Diagnostic, Task

__all__ = ["CommandError", "build_task", "diagnostic", "lines_of"]

_SEVERITIES = {1: "error", 2: "warning", 3: "information", 4: "hint"}


class CommandError(Exception):
    """The command's task cannot be built; the message says why and what to do."""


def _locate(uri: str, roots: Sequence[Path]) -> tuple[Path, str, Path]:
    path = uri_to_path(uri)
    if path is None:
        raise CommandError(
            f"{uri} names no file on this machine: agentls works on files inside a workspace folder"
        )
    found = locate(path, roots)
    if found is None:
        raise CommandError(
            f"{path} is not inside a workspace folder of this editor; open its folder (or project) first"
        )
    try:
        # Before its text is read: a link out of the folder, `..`, .git or a secret file is refused here.
        resolve_in_workspace(found[0], found[1])
    except PathRefused as refused:
        raise CommandError(str(refused)) from None
    return found[0], found[1], path


def build_task(
    command: str, args: Any, roots: Sequence[Path], text_of: Callable[[Path], str | None]
) -> tuple[Task, Path]:
    """The task `command` asks for and the workspace folder it runs in."""
    from agent.task import Diagnostic, TaskError
    from agent.task_builders import ask_task, edit_task, fix_task, implement_task, run_task, tests_task

    try:
        if isinstance(args, commands.AskArgs):
            if args.uri is None:
                if not roots:
                    raise CommandError("agentls.ask needs a workspace folder; open a folder first")
                root = roots[0]
                return ask_task(args.question, root=root), root
            root, rel, path = _locate(args.uri, roots)
            lines = lines_of(args.range) if args.range is not None else None
            return ask_task(args.question, rel, lines, text=text_of(path), root=root), root
        if isinstance(args, commands.RunArgs):
            if args.uri is None:
                if not roots:
                    raise CommandError("agentls.run needs a workspace folder; open a folder first")
                return run_task(args.instruction, root=roots[0]), roots[0]
            root, rel, path = _locate(args.uri, roots)
            task = run_task(args.instruction, path=rel, root=root)
            if args.range is not None:
                task = dataclasses.replace(task, range=lines_of(args.range))
            return task, root
        root, rel, path = _locate(args.uri, roots)
        text = text_of(path)
        if text is None:
            raise CommandError(f"cannot read {path}: it does not exist or is not UTF-8 text")
        if isinstance(args, commands.WriteTestsArgs):
            return tests_task(text, rel, args.position.line + 1, root=root), root
        if isinstance(args, commands.ImplementArgs):
            return implement_task(root, text, rel, args.position.line + 1), root
        if isinstance(args, commands.FixArgs):
            diagnostics = [diagnostic(d, Diagnostic) for d in args.diagnostics]
            return fix_task(rel, diagnostics, lines_of(args.range), text=text, root=root), root
        if isinstance(args, commands.EditArgs):
            return edit_task(rel, lines_of(args.range), args.instruction, text=text, root=root), root
    except TaskError as error:
        raise CommandError(str(error)) from None
    raise CommandError(f"{command} does not start a run")


def lines_of(range_: commands.RangeArg) -> tuple[int, int]:
    """1-based inclusive lines of an LSP range (an end at column 0 of a later line excludes that line)."""
    start = range_.start.line + 1
    end = range_.end.line + 1
    if range_.end.character == 0 and range_.end.line > range_.start.line:
        end -= 1
    return start, max(start, end)


def diagnostic(raw: Mapping[str, Any], cls: Any) -> Diagnostic:
    """An LSP diagnostic (plain JSON) as an `agent.task.Diagnostic`."""
    rng = raw.get("range") if isinstance(raw.get("range"), Mapping) else {}
    start = (rng.get("start") or {}).get("line", 0) if isinstance(rng, Mapping) else 0
    end = (rng.get("end") or {}).get("line", start) if isinstance(rng, Mapping) else start
    severity = _SEVERITIES.get(raw.get("severity") or 1, "error")
    code = raw.get("code")
    return cls(
        message=str(raw.get("message", "")),
        line=int(start) + 1,
        end_line=max(int(start), int(end)) + 1,
        severity=severity,
        source=str(raw.get("source") or ""),
        code="" if code is None else str(code),
    )
