"""The tool-set factory: which tools a role gets, built on one run's resources.

`toolset(role, resources)` returns a `ToolRegistry` with the tools `role.tools` names, in that order,
built from `CATALOG` (tool name -> builder). A read-only role, or a task that may not edit (a question),
gets the editor in view-only mode; a read-only role also gets no tool that can change the overlay (bash).
`ToolResources` holds what the tools share for one run: the overlay, the sandbox, the verifier (built by
`ToolResources.create`, also used by the loop to verify the change), the index, the `ask_user` callback,
and `on_warning`, through which the tool set tells the run what the user should know: an MCP server that
could not start is a ``decision`` record of the transcript (kind ``mcp_server_failed``: server, reason,
stderr, advice, message) and a warning (subject ``mcp_server``) that the loop shows the user and notes
for the model; so is one left out because nobody answered whether to trust it (kind
``mcp_server_untrusted``: server, reason, message; `agent.mcp.trust`), and one the user trusted whose
trust file could not keep the answer (kind ``mcp_trust_not_remembered``; nothing for the model).

`describe_call(name, input)` shows a call in one line by tool name alone, for transcripts read back
after the run (`agentls runs ID`).

A new tool is a class following `agent.tools.Tool` plus one `CATALOG` entry; a role lists its name.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.tools import Tool, ToolRegistry, one_line
from agent.tools.ask import AskCallback, AskUserTool
from agent.tools.bash import BashTool
from agent.tools.delegate import DelegateHost, DelegateTool
from agent.tools.docs import LookupDocsTool
from agent.tools.editor import EditorTool
from agent.tools.git import GIT_TOOLS
from agent.tools.run_tests import RunTestsTool
from agent.tools.search import FindSymbolTool, SearchCodeTool
from agent.tools.todo import TodoList, TodoTool
from agent.verify import VerificationResult, Verifier

if TYPE_CHECKING:
    from agent.config import AgentSettings
    from agent.interpreter import Interpreter
    from agent.mcp.client import StartFailure
    from agent.mcp.trust import NotRemembered, RunAnswers, Untrusted
    from agent.overlay import Overlay
    from agent.ports import CodeIndex, Sandbox
    from agent.recorder import Recorder
    from agent.roles import Role
    from agent.toolchains import Toolchain
    from indexing.config import IndexSettings

__all__ = ["CATALOG", "ToolResources", "describe_call", "toolset"]

log = logging.getLogger(__name__)


Warn = Callable[[str, str, str], None]
"""`ToolResources.on_warning`: (subject, message for the user, note for the model)."""


@dataclass(frozen=True)
class ToolResources:
    """What the tools of one run work on."""

    settings: AgentSettings
    overlay: Overlay
    sandbox: Sandbox
    verifier: Verifier
    index: CodeIndex | None = None
    ask: AskCallback | None = None
    cancel: threading.Event | None = None
    scratch_dir: Path | None = None
    on_verification: Callable[[VerificationResult], None] | None = None
    """Called with every `run_tests` result (the loop records it as a verification)."""
    recorder: Recorder | None = None
    """The run's transcript, for approvals and installs (`agent.approval`)."""
    state_dir: Path | None = None
    """agentls' cache folder (the transcripts' parent): state kept across runs, such as MCP trust."""
    todos: TodoList = field(default_factory=TodoList)
    """The run's todo list (`agent.tools.todo`); the loop saves it, shows it and condenses with it."""
    host: DelegateHost | None = None
    """The agent the `delegate` tool runs sub-agents for (`agent.tools.delegate`); None: no delegation."""
    on_warning: Warn | None = None
    """Something the user should know and act on, found while the tools start: `(subject, message,
    note)`, `note` being what the model is told of it ("" for nothing). The loop emits it as a "warning"
    event. None: it is logged."""
    seconds_left: Callable[[], float | None] | None = None
    """What is left of the run's time bound (`agent.max_minutes`; None from it: no bound). Commands get it
    through the sandbox (`agent.timebound.TimeBoundSandbox`); MCP calls are cut by it. None: no bound."""
    mcp_answers: RunAnswers | None = None
    """The MCP trust questions this run asked so far (`agent.mcp.trust.RunAnswers`): a team run shares one
    among its roles, so each server is asked about once per run. None: none kept (a solo run asks once)."""

    @classmethod
    def create(
        cls,
        settings: AgentSettings,
        overlay: Overlay,
        sandbox: Sandbox,
        *,
        index: CodeIndex | None = None,
        ask: AskCallback | None = None,
        cancel: threading.Event | None = None,
        scratch_dir: Path | None = None,
        on_verification: Callable[[VerificationResult], None] | None = None,
        recorder: Recorder | None = None,
        state_dir: Path | None = None,
        interpreter: Interpreter | None = None,
        on_warning: Warn | None = None,
        mcp_answers: RunAnswers | None = None,
        toolchains: tuple[Toolchain, ...] | None = None,
        index_settings: IndexSettings | None = None,
    ) -> ToolResources:
        """Resources with a new `Verifier` on `overlay` and `sandbox` (`interpreter`, `toolchains`: the
        project's Python, Cargo and Go when the caller knows them; None: the verifier asks;
        `index_settings`: the workspace's, for the verifier, `Verifier(index_settings=...)`)."""
        verifier = Verifier(
            overlay,
            sandbox,
            settings,
            index=index,
            cancel=cancel,
            scratch_dir=scratch_dir,
            interpreter=interpreter,
            toolchains=toolchains,
            index_settings=index_settings,
        )
        return cls(
            settings,
            overlay,
            sandbox,
            verifier,
            index,
            ask,
            cancel,
            scratch_dir,
            on_verification,
            recorder,
            state_dir,
            on_warning=on_warning,
            mcp_answers=mcp_answers,
        )


ToolBuilder = Callable[[ToolResources, bool], Tool]
"""Builds one tool from the run's resources; the flag says the tool may not change files."""


def _editor(r: ToolResources, view_only: bool) -> Tool:
    return EditorTool(r.overlay, view_only=view_only)


def _bash(r: ToolResources, view_only: bool) -> Tool:
    return BashTool(
        r.overlay, r.sandbox, scratch_dir=r.scratch_dir, cancel=r.cancel, interpreter=r.verifier.interpreter
    )


def _run_tests(r: ToolResources, view_only: bool) -> Tool:
    return RunTestsTool(
        r.verifier, max_output_chars=r.settings.max_test_output_chars, on_result=r.on_verification
    )


def _search_code(r: ToolResources, view_only: bool) -> Tool:
    from agent.depindex import DependencyIndexes

    dependencies = DependencyIndexes(
        r.overlay.root, r.sandbox, r.state_dir, interpreter=r.verifier.interpreter, cancel=r.cancel
    )
    return SearchCodeTool(r.overlay, r.index, dependencies)


def _git_tool(cls: Callable[[Path], Tool]) -> ToolBuilder:
    return lambda r, _: cls(r.overlay.root)


CATALOG: Mapping[str, ToolBuilder] = {
    EditorTool.name: _editor,
    BashTool.name: _bash,
    SearchCodeTool.name: _search_code,
    FindSymbolTool.name: lambda r, _: FindSymbolTool(r.overlay, r.index),
    RunTestsTool.name: _run_tests,
    AskUserTool.name: lambda r, _: AskUserTool(r.ask),
    LookupDocsTool.name: lambda r, _: LookupDocsTool(
        r.overlay.root, r.sandbox, interpreter=r.verifier.interpreter
    ),
    TodoTool.name: lambda r, _: TodoTool(r.todos),
    DelegateTool.name: lambda r, _: DelegateTool(r.host, r.sandbox),
    **{cls.name: _git_tool(cls) for cls in GIT_TOOLS},
}
"""Every tool a role can name, by tool name."""

_DESCRIBERS: Mapping[str, Callable[[Mapping[str, Any]], str]] = {
    cls.name: cls.describe
    for cls in (
        EditorTool,
        BashTool,
        SearchCodeTool,
        FindSymbolTool,
        RunTestsTool,
        AskUserTool,
        LookupDocsTool,
        TodoTool,
        DelegateTool,
    )
} | {cls.name: cls.describe for cls in GIT_TOOLS}


def toolset(role: Role, resources: ToolResources, *, edits_allowed: bool = True) -> ToolRegistry:
    """The registry of `role`'s tools on `resources`; `edits_allowed` False (a question) makes the editor
    view-only. Raises `KeyError` naming the tool when the role lists one that does not exist."""
    view_only = role.read_only or not edits_allowed
    registry = ToolRegistry()
    for name in role.tools:
        builder = CATALOG.get(name)
        if builder is None:
            raise KeyError(f"the role {role.name!r} lists the tool {name!r}, which does not exist")
        tool = builder(resources, view_only)
        if role.read_only and not tool.read_only:
            continue
        registry.add(tool)
    if not view_only and registry.get(BashTool.name) is not None and _may_install(resources):
        registry.add(_install_tool(resources))
    for tool in _mcp_tools(resources):
        if registry.get(tool.name) is None:  # MCP names are distinct among themselves (`distinct_names`)
            registry.add(tool)
        else:
            log.warning("the MCP tool %s is left out: the role has a tool of that name", tool.name)
    return registry


def _may_install(resources: ToolResources) -> bool:
    """`install_package` is offered when the sandbox may reach a registry (`agent.installs`)."""
    return resources.settings.sandbox.network != "off"


def _install_tool(resources: ToolResources) -> Tool:
    from agent.installs import InstallPackageTool

    return InstallPackageTool(
        resources.overlay,
        resources.sandbox,
        resources.settings.install,
        approve=resources.settings.approve,
        ask=resources.ask,
        recorder=resources.recorder,
        interpreter=resources.verifier.interpreter,
    )


def _mcp_tools(resources: ToolResources) -> list[Tool]:
    """The tools of the configured MCP servers (`agent.mcp.client`); started here, closed with the
    registry."""
    settings = resources.settings.mcp
    if not settings.servers:
        return []
    from agent.mcp.client import mcp_tools
    from agent.mcp.trust import TRUST_FILE, McpTrust, trusted_servers

    state = resources.state_dir
    trust = McpTrust(state / TRUST_FILE if state is not None else None)
    root = resources.overlay.root
    settings = trusted_servers(
        settings,
        root,
        trust=trust,
        ask=resources.ask,
        recorder=resources.recorder,
        on_untrusted=lambda u: _mcp_left_out(resources, "mcp_server_untrusted", u),
        answers=resources.mcp_answers,
        on_not_remembered=lambda n: _mcp_left_out(resources, "mcp_trust_not_remembered", n),
    )
    approve = _approver(resources) if resources.settings.approve == "ask" else None
    return list(
        mcp_tools(
            settings,
            root,
            approve=approve,
            on_failure=lambda f: _mcp_left_out(resources, "mcp_server_failed", f),
            seconds_left=resources.seconds_left,
            cancel=resources.cancel,
        )
    )


def _mcp_left_out(resources: ToolResources, kind: str, why: StartFailure | Untrusted | NotRemembered) -> None:
    """A server left out of the run (it did not start; nobody trusted it), or trusted for this run only
    (its trust file could not be written): in the transcript as a decision of `kind`, and a warning of
    the run (else a log line)."""
    if resources.recorder is not None:
        resources.recorder.decision(kind, **why.record(), message=why.message)
    if resources.on_warning is not None:
        resources.on_warning("mcp_server", why.message, why.note)
    else:
        log.warning("%s", why.message)


ALLOW, DENY = "Allow", "Deny"


def _approver(resources: ToolResources) -> Callable[[str, Mapping[str, Any]], bool]:
    """``agent.approve = "ask"``: ask the user before a call; no one to ask, or no answer, refuses. The
    answer is recorded (`agent.approval`)."""
    from agent.approval import ask_approval

    def approve(name: str, input: Mapping[str, Any]) -> bool:
        question = f"Allow the agent to call {name} with {one_line(dict(input), 200)}?"
        return ask_approval(
            resources.ask,
            resources.recorder,
            question,
            subject="mcp_call",
            detail=name,
            options=(ALLOW, DENY),
        )

    return approve


def describe_call(name: str, input: Mapping[str, Any]) -> str:
    """One line showing a call of the tool called `name` (`bash: pytest -q`), known tool or not. `input`
    may be a transcript's frozen copy: it is shown as the JSON the model sent (dicts and lists)."""
    plain: dict[str, Any] = _plain(input)
    describe = _DESCRIBERS.get(name)
    if describe is None:
        return f"{name}: {one_line(plain, 80)}"
    return describe(plain)


def _plain(value: Any) -> Any:
    """`value` with mappings as dicts and sequences as lists, as JSON decodes them (not a transcript
    record's read-only ``mappingproxy`` and tuples)."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    return value
