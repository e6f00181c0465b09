"""Turning a request into a `Task`: the builders check that it makes sense before the agent runs.

Each builder takes what the editor or the CLI knows (a file, a line or range, diagnostics, an instruction)
and returns a `agent.task.Task`, or raises `TaskError` with a message for the user when the request does
not make sense: there is no function at the cursor, it is not a stub, it has no doc comment to implement
from, the file is a secret or outside the workspace ... Functions and stubs are found with
`indexing.definitions`, the same module the server's code actions use.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from agent.paths import PathRefused, is_secret_path, resolve_in_workspace
from agent.task import Diagnostic, Task, TaskError, TaskKind
from indexing.definitions import chunk_is_stub, definition_chunks, enclosing_function, functions_in
from indexing.languages import detect_language, get_queries
from indexing.models import Chunk

__all__ = [
    "LineOutsideFile",
    "ask_task",
    "edit_task",
    "fix_task",
    "implement_task",
    "line_count",
    "run_task",
    "tests_task",
]


class LineOutsideFile(TaskError):
    """A line number that is not a line of the file (`line_count`): the command line refuses it as a bad
    ``FILE:LINE``, the editor shows the message."""

    def __init__(self, line: int, path: str, count: int) -> None:
        self.line, self.path, self.count = line, path, count
        self.lines = f"{count} line{'s' if count != 1 else ''}"
        super().__init__(f"line {line} is outside {path}, which has {self.lines}")


def line_count(text: str) -> int:
    """The lines of ``text`` as an editor shows them: each line break (``\\n``, ``\\r\\n`` or a lone ``\\r``)
    ends one, and text after the last one is one more. The empty "line" after a final line break is none
    (a file of 10 lines ending in a newline has 10), and an empty file has one, empty, line."""
    breaks = text.count("\n")
    if "\r" in text:
        breaks += text.count("\r") - text.count("\r\n")
    return breaks + (0 if text.endswith(("\n", "\r")) else 1)


def _normalize_path(path: str, root: Path | None) -> str:
    """A workspace-relative POSIX path; secret files and paths outside the workspace are refused."""
    if root is not None:
        try:
            rel = resolve_in_workspace(root, path)
        except PathRefused as error:
            raise TaskError(str(error)) from None
        if rel == ".":
            raise TaskError(f"{path} is the workspace folder; name a file inside it")
        return rel
    rel = path.replace("\\", "/")
    if not rel.strip():
        raise TaskError("the file path is empty; name a file in the workspace")
    if PurePosixPath(rel).is_absolute():
        raise TaskError(f"{path} is absolute; pass the workspace root too, or a workspace-relative path")
    rel = posixpath.normpath(rel)
    if rel == ".." or rel.startswith("../"):
        raise TaskError(f"{path} is outside the workspace; agentls only works on files inside it")
    if is_secret_path(rel):
        raise TaskError(
            f"{rel} looks like a secret file (keys, tokens, credentials); agentls never reads or edits those"
        )
    return rel


def _check_line(line: int, text: str, path: str) -> None:
    count = line_count(text)
    if line < 1 or line > count:
        raise LineOutsideFile(line, path, count)


_EDIT_INSTEAD = (
    "ask for an edit with an instruction instead (agentls.edit in the editor, `agentls run` on the command "
    "line)"
)


def _check_range(range_: tuple[int, int] | None) -> tuple[int, int] | None:
    if range_ is None:
        return None
    start, end = range_
    if start < 1 or end < start:
        raise TaskError(
            f"the range {start}-{end} is not valid; lines are 1-based and the end must not precede the start"
        )
    return (start, end)


def _function_at(path: str, text: str, line: int, what: str) -> Chunk:
    language = detect_language(path)
    if language is None or get_queries(language) is None:
        raise TaskError(
            f"agentls cannot find functions in {path}: it has no parser for this kind of file; "
            f"{_EDIT_INSTEAD}"
        )
    _check_line(line, text, path)
    function = enclosing_function(definition_chunks(path, text, language), line)
    if function is None:
        raise TaskError(
            f"there is no function or method at line {line} of {path}; "
            f"put the cursor inside the function to {what}"
        )
    return function


def implement_task(root: Path, text_of_file: str, path: str, line: int) -> Task:
    """The task of implementing the stub function at (or whose doc comment holds) 1-based `line`.

    Raises `TaskError` when there is no function there, when it already has a body, or when it has no
    doc comment saying what it should do.
    """
    rel = _normalize_path(path, root)
    if rel.endswith(".pyi"):
        raise TaskError(
            f"{rel} is a type stub file: its functions are declarations, there is nothing to implement"
        )
    function = _function_at(rel, text_of_file, line, "implement")
    name = function.symbol
    if not chunk_is_stub(function):
        raise TaskError(f"`{name}` already has a body; to change it, {_EDIT_INSTEAD}")
    if not function.doc.strip():
        raise TaskError(
            f"`{name}` has no doc comment to implement from; write a docstring or doc comment saying what it "
            f"should do, or {_EDIT_INSTEAD}"
        )
    instruction = f"Implement `{name}` so that it does what its doc comment says."
    return _lines_task("implement", instruction, rel, (function.start_line, function.end_line), function)


def tests_task(text: str, path: str, line: int, *, root: Path | None = None) -> Task:
    """The task of writing tests for the function at 1-based `line` (a stub too: tests first is fine)."""
    rel = _normalize_path(path, root)
    function = _function_at(rel, text, line, "write tests for")
    instruction = f"Write tests for `{function.symbol}`."
    return _lines_task("tests", instruction, rel, (function.start_line, function.end_line), function)


def _lines_task(
    kind: TaskKind,
    instruction: str,
    rel: str,
    lines: tuple[int, int],
    function: Chunk | None,
    diagnostics: tuple[Diagnostic, ...] = (),
) -> Task:
    """A task about `lines` of a file; the function they lie in (if any) gives its name, signature and doc."""
    return Task(
        kind=kind,
        instruction=instruction,
        path=rel,
        range=lines,
        symbol=function.symbol if function is not None else None,
        language=detect_language(rel),
        diagnostics=diagnostics,
        signature=function.signature if function is not None else "",
        doc=function.doc if function is not None else "",
    )


# pytest would collect `tests_task` from any test module that imports it, as a test named "tests_task".
tests_task.__test__ = False  # type: ignore[attr-defined]


def _target_in(path: str, text: str | None, start: int, end: int) -> Chunk | None:
    """The one function that a range lies in, when the file's text is known."""
    if text is None:
        return None
    language = detect_language(path)
    if language is None or get_queries(language) is None:
        return None
    functions = functions_in(definition_chunks(path, text, language), start, end)
    holding = [f for f in functions if f.start_line <= start and end <= f.end_line]
    if not holding:
        return None
    return min(holding, key=lambda c: c.end_line - c.start_line)


def fix_task(
    path: str,
    diagnostics: Iterable[Diagnostic],
    range: tuple[int, int] | None = None,
    *,
    text: str | None = None,
    root: Path | None = None,
    instruction: str = "",
) -> Task:
    """The task of fixing `diagnostics` in `path` (all of them, or those that touch `range`).

    With the file's `text`, the task also names the function the problems are in.
    """
    rel = _normalize_path(path, root)
    wanted = _check_range(range)
    chosen = tuple(
        d
        for d in diagnostics
        if wanted is None or (d.line <= wanted[1] and max(d.end_line, d.line) >= wanted[0])
    )
    if not chosen:
        raise TaskError(
            f"there are no diagnostics {'in the selected range of ' if wanted else 'in '}{rel}; "
            f"select a line with an error or warning, or {_EDIT_INSTEAD}"
        )
    start = min(d.line for d in chosen)
    end = max(max(d.end_line, d.line) for d in chosen)
    if wanted is not None:
        start, end = min(start, wanted[0]), max(end, wanted[1])
    function = _target_in(rel, text, start, end)
    listed = "; ".join(
        d.message.strip().splitlines()[0] if d.message.strip() else "(no message)" for d in chosen
    )
    instruction = instruction.strip() or f"Fix the reported problems: {listed}"
    return _lines_task("fix", instruction, rel, (start, end), function, chosen)


def edit_task(
    path: str, range: tuple[int, int], instruction: str, *, text: str | None = None, root: Path | None = None
) -> Task:
    """The task of changing lines `range` of `path` as `instruction` says."""
    if not instruction.strip():
        raise TaskError(
            "the edit instruction is empty; say what should change, e.g. 'use a dict instead of a list'"
        )
    rel = _normalize_path(path, root)
    wanted = _check_range(range)
    assert wanted is not None  # for mypy: `range` is required here
    return _lines_task("edit", instruction.strip(), rel, wanted, _target_in(rel, text, *wanted))


def ask_task(
    question: str,
    path: str | None = None,
    range: tuple[int, int] | None = None,
    *,
    text: str | None = None,
    root: Path | None = None,
) -> Task:
    """A question about the code (optionally about a file or a range of it). The agent does not edit."""
    if not question.strip():
        raise TaskError("the question is empty; ask something about the code")
    rel = _normalize_path(path, root) if path is not None else None
    wanted = _check_range(range)
    if wanted is not None and rel is None:
        raise TaskError("a range was given without a file; pass the file the range belongs to")
    function = _target_in(rel, text, *wanted) if rel is not None and wanted is not None else None
    return Task(
        kind="ask",
        instruction=question.strip(),
        path=rel,
        range=wanted,
        symbol=function.symbol if function is not None else None,
        language=detect_language(rel) if rel is not None else None,
        edits_allowed=False,
    )


def run_task(instruction: str, *, path: str | None = None, root: Path | None = None) -> Task:
    """A free-form instruction for the workspace, optionally focused on one file or folder (`path`)."""
    if not instruction.strip():
        raise TaskError("the instruction is empty; say what the agent should do")
    rel = _normalize_path(path, root) if path is not None else None
    return Task(
        kind="run",
        instruction=instruction.strip(),
        path=rel,
        language=detect_language(rel) if rel is not None else None,
    )
