"""The `delegate` tool: a sub-task handed to a fresh sub-agent, answered by a short structured report.

The caller (any role whose tools list ``delegate``) asks a question about the code ("where is the retry
policy defined and who calls it?"). A new `agent.loop.Agent` with the `explore` role
(`agent.roles.EXPLORE`: search_code, find_symbol, the view-only editor and the git read tools) answers it
with its own context on the caller's overlay (so it sees the caller's edits), and the caller gets back
only the report: a JSON object with ``status``, ``answer``, ``files`` (the places the answer cites, with
lines), ``read`` (other files the sub-agent viewed), ``symbols``, ``steps``, ``tokens`` and ``cost``.
The caller's context grows by the report alone, however much the sub-agent read.

Bounds (``[agent.delegate]``, `DelegateSettings`): the sub-agent's steps, tokens, cost and minutes, each
also capped by what is left of the run's own budget (its time: of every time bound the caller has, the
run's `agent.max_minutes` and a team node's). Its model is the run's, or ``[agent.roles.explore.model]``
(`agent.config.AgentSettings.model_for`). Its system prompt and tools are the same for every delegation,
so the prompt cache serves them from the second delegation on.

Accounting: the sub-agent's usage joins the caller's (`DelegateHost.absorb`), so it counts toward the
run's cost and budget and is listed under the role ``explore`` (`agent.costs`). The caller's transcript
gets a ``delegate`` record (task, status, report, usage, cost, steps, the sub-agent's model) and the
sub-agent writes its own transcript beside it (``<run_id>.d/explore-N.jsonl``); its tool calls reach
the caller's `on_event` as "tool_call" and "tool_result" events with ``role: "explore"``.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from agent.tools import CustomTool, ToolError, one_line

if TYPE_CHECKING:
    from agent.config import AgentSettings
    from agent.costs import CostLedger
    from agent.loop import Agent, AgentEvent
    from agent.overlay import Overlay
    from agent.ports import CodeIndex, EventSink, Model, Sandbox
    from agent.recorder import Recorder
    from agent.usage import Usage
    from agent.verify import Verifier

__all__ = ["DelegateHost", "DelegateSettings", "DelegateTool", "build_report"]

ROLE = "explore"
_EDITOR = "str_replace_based_edit_tool"
_PATH = re.compile(r"(?<![\w/.-])((?:[\w.-]+/)*[\w.-]+\.[A-Za-z0-9]+)(?::(\d+)(?:-(\d+))?)?")
_SYMBOL = re.compile(r"`([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)(?:\(\))?`")
_MAX_LISTED = 20


class DelegateSettings(BaseModel):
    """``[agent.delegate]``: the bounds of each `delegate` sub-agent (the run's budget still applies)."""

    model_config = ConfigDict(extra="forbid")

    max_steps: int = Field(default=12, ge=1)
    """Model turns of one sub-agent."""
    max_total_tokens: int | None = Field(default=400_000, ge=0)
    """Prompt plus output tokens of one sub-agent; None: only the run's budget."""
    max_cost_usd: float | None = Field(default=0.5, ge=0)
    """USD one sub-agent may spend; None: only the run's budget."""
    max_minutes: float | None = Field(default=None, ge=0)
    """Wall-clock minutes of one sub-agent; None: only what is left of the run's time."""
    max_report_chars: int = Field(default=6_000, ge=200)
    """The answer in the report is cut to this many characters."""
    context_token_budget: int = Field(default=0, ge=0)
    """Workspace context gathered for the sub-agent's first turn (0: it searches for what it needs)."""


class DelegateHost(Protocol):
    """What the tool needs from the agent that calls it (`agent.loop.Agent`)."""

    settings: AgentSettings
    overlay: Overlay
    index: CodeIndex | None
    cancel: threading.Event
    recorder: Recorder
    verifier: Verifier
    on_event: EventSink | None
    steps: int
    run_id: str
    node: str | None
    """The team graph node the caller runs in (None outside a team run)."""

    @property
    def usage(self) -> Usage:
        """Tokens of the run so far."""
        ...

    @property
    def cost(self) -> float:
        """USD of the run so far."""
        ...

    def model_for(self, role: str) -> Model:
        """The model client of `role`."""
        ...

    def absorb(self, usage: Usage, ledger: CostLedger) -> None:
        """Count a sub-agent's usage as the run's."""
        ...

    def seconds_left(self) -> float | None:
        """Seconds left of the caller's tightest time bound (None: none)."""
        ...


class DelegateTool(CustomTool):
    """Runs one `explore` sub-agent per call and returns its report."""

    name = "delegate"
    description = (
        "Hand a read-only question about the code to a sub-agent with its own fresh context (for example "
        "'where is the retry policy defined and who calls it?'). It searches and reads as much as it needs "
        "and you get back only a short report: the answer, the files and lines and the symbols it cites. "
        "Use it for questions that would take many searches or long reads, to keep your own context small; "
        "it cannot edit files or run commands. State the question completely: it sees nothing of your "
        "conversation."
    )
    input_schema: Mapping[str, Any] = {
        "type": "object",
        "properties": {
            "task": {"type": "string", "description": "The question or sub-task, complete on its own."},
            "hints": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Optional: files, folders or symbols to start from.",
            },
        },
        "required": ["task"],
        "additionalProperties": False,
    }
    read_only = True

    def __init__(self, host: DelegateHost | None, sandbox: Sandbox) -> None:
        self.host = host
        self.sandbox = sandbox
        self.count = 0
        self._system: str | None = None

    @classmethod
    def describe(cls, input: Mapping[str, Any]) -> str:
        """``delegate: where is the retry policy defined?``."""
        return f"delegate: {one_line(input.get('task', ''), 100)}"

    def run(self, input: Mapping[str, Any]) -> str:
        """Run the sub-agent on the task and return its report as JSON."""
        from agent.loop import Agent
        from agent.roles import EXPLORE
        from agent.task import Task

        host = self.host
        if host is None:
            raise ToolError("delegate is not available in this run (no agent to delegate from)")
        question = str(input["task"]).strip()
        if not question:
            raise ToolError("`task` is empty: state the question the sub-agent should answer")
        hints = [str(h) for h in input.get("hints") or () if str(h).strip()]
        if hints:
            question += "\n\nStart from: " + ", ".join(hints)
        self.count += 1
        settings = _sub_settings(host)
        model = host.model_for(ROLE)
        if self._system is None:  # one prompt for every delegation of the run: a stable cached prefix
            self._system = EXPLORE.system_prompt()
        transcript = None
        parent = host.recorder.transcript
        if parent is not None:
            transcript = parent.child(f"{ROLE}-{self.count}")
        sub = Agent(
            model,
            settings,
            root=host.overlay.root,
            overlay=host.overlay,
            sandbox=self.sandbox,
            index=host.index,
            on_event=_forward(host),
            cancel=host.cancel,
            transcript=transcript,
            role=EXPLORE,
            system=self._system,
            interpreter=host.verifier.interpreter,
            toolchains=host.verifier.toolchains,
            index_settings=host.verifier.index_settings,
            node=host.node,  # a team node's spending includes its roles' explorations
        )
        sub.runs_dir = None  # nothing to resume: the caller keeps the answer
        result = sub.run(Task(kind="ask", instruction=question, edits_allowed=False))
        host.absorb(result.usage, sub.ledger)
        report = build_report(
            sub.messages,
            status="answered" if result.status == "no_changes" else result.status,
            fallback=result.error or result.summary,
            exists=host.overlay.exists,
            root=str(host.overlay.root),
            max_chars=host.settings.delegate.max_report_chars,
        )
        report.update(steps=result.steps, tokens=result.usage.total_tokens, cost=round(result.cost, 6))
        host.recorder.decision(
            "delegate",
            step=host.steps,
            role=ROLE,
            task=question,
            status=report["status"],
            report=report,
            usage=result.usage.as_dict(),
            cost=round(result.cost, 6),
            steps=result.steps,
            model=model.model_name,
            transcript=str(transcript.path) if transcript is not None else None,
        )
        return json.dumps(report, ensure_ascii=False)


def _sub_settings(host: DelegateHost) -> AgentSettings:
    """The sub-agent's settings: the explore model, the delegate bounds within what the run has left."""
    from agent.mcp.config import McpSettings

    run = host.settings
    bounds = run.delegate
    spent = host.usage
    seconds = host.seconds_left()

    def left(limit: int | None, used: int) -> int | None:
        return None if limit is None else max(0, limit - used)

    def least(*values: Any) -> Any:
        present = [v for v in values if v is not None]
        return min(present) if present else None

    return run.model_copy(
        update={
            "model": run.model_for(ROLE),
            "max_steps": bounds.max_steps,
            "max_cost_usd": least(
                bounds.max_cost_usd,
                None if run.max_cost_usd is None else max(0.0, run.max_cost_usd - host.cost),
            ),
            "max_total_tokens": least(
                bounds.max_total_tokens, left(run.max_total_tokens, spent.total_tokens)
            ),
            "max_input_tokens": left(run.max_input_tokens, spent.total_input_tokens),
            "max_minutes": least(bounds.max_minutes, None if seconds is None else seconds / 60.0),
            "context_token_budget": bounds.context_token_budget,
            "verify": False,
            "mcp": McpSettings(),
        }
    )


def _forward(host: DelegateHost) -> EventSink:
    """The sub-agent's tool calls and results as the caller's events, tagged ``role: "explore"`` (each
    carries the model's tool-call ``id``, which pairs a result with its call)."""
    from agent.loop import AgentEvent

    def forward(event: AgentEvent) -> None:
        if host.on_event is None or event.kind not in ("tool_call", "tool_result"):
            return
        host.on_event(
            AgentEvent(
                kind=event.kind,
                message=f"[{ROLE}] {event.message}",
                step=host.steps,
                usage=host.usage + event.usage,
                cost=host.cost + event.cost,
                data=MappingProxyType({**event.data, "role": ROLE}),
            )
        )

    return forward


def build_report(
    messages: Sequence[Mapping[str, Any]],
    *,
    status: str,
    fallback: str,
    exists: Any,
    root: str = "",
    max_chars: int = 6_000,
) -> dict[str, Any]:
    """The report of a sub-agent's conversation: its last text is the answer; the files and lines it
    cites (those that exist), the other files it viewed, and the symbols it names or looked up."""
    answer = ""
    viewed: list[str] = []
    looked_up: list[str] = []
    for message in messages:
        content = message.get("content")
        if message.get("role") != "assistant" or not isinstance(content, list):
            continue
        words = "".join(
            str(b.get("text", "")) for b in content if isinstance(b, Mapping) and b.get("type") == "text"
        )
        if words.strip():
            answer = words.strip()
        for block in content:
            if not isinstance(block, Mapping) or block.get("type") != "tool_use":
                continue
            call = block.get("input") if isinstance(block.get("input"), Mapping) else {}
            assert isinstance(call, Mapping)
            if block.get("name") == _EDITOR and call.get("path"):
                viewed.append(_relative(str(call["path"]), root))
            elif block.get("name") == "find_symbol" and call.get("name"):
                looked_up.append(str(call["name"]))
    if not answer:
        answer = fallback.strip() or "(the sub-agent gave no answer)"
    if len(answer) > max_chars:
        answer = answer[: max_chars - 40].rstrip() + f" [... cut at {max_chars} characters]"
    files: list[str] = []
    for match in _PATH.finditer(answer):
        path, start, end = match.groups()
        if not _exists(exists, path):
            continue
        cited = path + (f":{start}" if start else "") + (f"-{end}" if end else "")
        if cited not in files:
            files.append(cited)
    cited_paths = {entry.split(":", 1)[0] for entry in files}
    read = [path for path in dict.fromkeys(viewed) if path not in cited_paths and _exists(exists, path)]
    symbols = list(dict.fromkeys([*(m.group(1) for m in _SYMBOL.finditer(answer)), *looked_up]))
    symbols = [name for name in symbols if not _exists(exists, name)]
    return {
        "role": ROLE,
        "status": status,
        "answer": answer,
        "files": files[:_MAX_LISTED],
        "read": read[:_MAX_LISTED],
        "symbols": symbols[:_MAX_LISTED],
    }


def _relative(path: str, root: str) -> str:
    if root and path.startswith(root.rstrip("/") + "/"):
        return path[len(root.rstrip("/")) + 1 :]
    return path[2:] if path.startswith("./") else path


def _exists(exists: Any, path: str) -> bool:
    try:
        return bool(exists(path))
    except Exception:  # a refused or odd path is simply not a file to cite
        return False


def _host_check(agent: Agent) -> DelegateHost:
    """`agent.loop.Agent` is a `DelegateHost` (mypy checks it here)."""
    return agent
