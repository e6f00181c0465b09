"""The prompts the agent sends: the system prompt and a task rendered with its workspace context.

Templates live in ``agent/prompts/<kind>.md`` and ``agent/prompts/system.md`` and use `string.Template`
placeholders (``$instruction``), because code in the templates is full of braces. `render_task_prompt`
puts the `agent.context.Context` first (a stable, cacheable prefix), then the task.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from importlib import resources
from string import Template
from typing import TYPE_CHECKING

from agent.task import Diagnostic, Task

if TYPE_CHECKING:
    from agent.context import Context

__all__ = ["code_fence", "prompt_fields", "render_task_prompt", "system_prompt"]


@functools.cache
def _template(name: str) -> Template:
    text = (resources.files("agent") / "prompts" / f"{name}.md").read_text("utf-8")
    return Template(text)


def system_prompt() -> str:
    """The agent's system prompt (stable across runs, so it can be cached)."""
    return _template("system").template.strip() + "\n"


def code_fence(text: str, info: str = "") -> str:
    """`text` in a Markdown code fence longer than any backtick run inside it."""
    longest = max((len(m) for m in re.findall(r"`{3,}", text)), default=2)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{text.rstrip()}\n{fence}"


def _diagnostics_text(diagnostics: Iterable[Diagnostic]) -> str:
    lines = []
    for d in diagnostics:
        where = f"line {d.line}" if d.end_line <= d.line else f"lines {d.line}-{d.end_line}"
        origin = " ".join(part for part in (d.source, f"[{d.code}]" if d.code else "") if part)
        message = " ".join(d.message.split())
        lines.append(f"- {where}, {d.severity}{f' from {origin}' if origin else ''}: {message}")
    return "\n".join(lines) if lines else "(none)"


def _location(task: Task) -> str:
    if task.path is None:
        return "the workspace"
    if task.range is None:
        return task.path
    start, end = task.range
    return f"{task.path}:{start}" if start == end else f"{task.path}:{start}-{end}"


def prompt_fields(task: Task, context: Context | None) -> Mapping[str, str]:
    """The values the templates' placeholders take."""
    language = task.language or ""
    return {
        "kind": task.kind,
        "instruction": task.instruction,
        "path": task.path or "",
        "location": _location(task),
        "symbol": task.symbol or "",
        "name": task.name or "",
        "language": language,
        "signature": code_fence(task.signature, language) if task.signature else "(unknown)",
        "doc": code_fence(task.doc, "text") if task.doc else "(none)",
        "diagnostics": _diagnostics_text(task.diagnostics),
        "context": context.render() if context is not None else "(no workspace context was gathered)",
        "edits": "You may edit files." if task.edits_allowed else "Do not edit any file: answer only.",
    }


def render_task_prompt(task: Task, context: Context | None) -> str:
    """The user message that starts a run: the workspace context first (a stable, cacheable prefix),
    then the task rendered from ``agent/prompts/<kind>.md``."""
    return _template(task.kind).substitute(prompt_fields(task, context)).strip() + "\n"
