"""What the user asked the agent to do, as a typed `Task`.

The language server and the CLI turn a request (a code action, a command, a CLI verb) into a `Task` with
one of the builders in `agent.task_builders`; the agent loop renders it for the model with
`agent.prompts.render_task_prompt`.

Task kinds:

- ``implement``: give a stub function (``pass``, ``todo!()``, ``throw new Error("not implemented")`` ...)
  a body that does what its doc comment says;
- ``fix``: make diagnostics in a range go away;
- ``tests``: write tests for a function;
- ``edit``: change a range as the user's instruction says;
- ``ask``: answer a question about the code, with no edits;
- ``run``: a free-form instruction for the whole workspace (``agentls run``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["TASK_KINDS", "Diagnostic", "Severity", "Task", "TaskError", "TaskKind"]

TaskKind = Literal["implement", "fix", "tests", "edit", "ask", "run"]
TASK_KINDS: tuple[TaskKind, ...] = ("implement", "fix", "tests", "edit", "ask", "run")
Severity = Literal["error", "warning", "information", "hint"]


class TaskError(ValueError):
    """The request cannot become a task. The message says why and what the user can do instead."""


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """A problem reported by the editor (compiler, linter, type checker). Lines are 1-based, inclusive."""

    message: str
    line: int
    end_line: int
    severity: Severity = "error"
    source: str = ""  # "pyright", "eslint", "rustc" ...
    code: str = ""


@dataclass(frozen=True, slots=True)
class Task:
    """One request to the agent. Paths are workspace-relative POSIX; lines 1-based and inclusive."""

    kind: TaskKind
    instruction: str
    path: str | None = None
    range: tuple[int, int] | None = None
    symbol: str | None = None  # qualified name of the function the task is about
    language: str | None = None
    diagnostics: tuple[Diagnostic, ...] = ()
    edits_allowed: bool = True
    signature: str = ""  # the target function's header, on one line
    doc: str = ""  # the target function's doc comment, cleaned

    @property
    def name(self) -> str | None:
        """The short name of the target symbol (``total`` for ``Cart.total``)."""
        return self.symbol.rsplit(".", 1)[-1] if self.symbol else None

    @property
    def title(self) -> str:
        """A one-line description for progress reports and run lists."""
        where = self.path or "the workspace"
        if self.kind == "implement":
            return f"Implement `{self.symbol}` in {where}"
        if self.kind == "tests":
            return f"Write tests for `{self.symbol}` in {where}"
        if self.kind == "fix":
            count = len(self.diagnostics)
            return f"Fix {count} problem{'s' if count != 1 else ''} in {where}"
        first_line = self.instruction.strip().splitlines()[0] if self.instruction.strip() else ""
        if len(first_line) > 80:
            first_line = first_line[:77] + "..."
        return f"{self.kind.capitalize()}: {first_line}"
