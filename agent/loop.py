"""The agent loop: a task in, a proposal out, short enough to read at once.

```
run(task)                     gather context once; first user turn = context + task + "spec and plan first"
  while True: step()
    step()  = query() + execute()
    query() : fit the conversation into the window (agent.memory: old images out, mask old tool results,
              condense), check the budget against the call's worst case (and the time left), one model call on
              (system prompt, tool definitions, messages); usage, cost, budget check
    execute(): run the tool calls and append their results (calls cut at max_tokens are not run: each
               gets an error result and the next call may write more, once; cut three steps in a
               row, the run stops as stuck; calls cut when the reply filled the context window are not
               run either, and the conversation is condensed first; nor are calls whose arguments
               were not a JSON object, `ModelResponse.input_errors`)
               or, after an empty reply (no text, no tool call: not kept, since the APIs refuse an empty
               turn), ask the model to go on, twice in a row at most
               or, when the model ends its turn: verify the change; on failure, send the failures back
               as a user turn (at most max_reflections times); otherwise the run is done
```

What ends a run is an exception carrying its message, caught in one place in `run`, and the transcript
is finished in `finally`:

- `Submitted`: the model said it was done (and verification passed, or the reflections ran out): status
  "proposed" with a `Proposal`, or "no_changes" (nothing changed, or a question was answered);
- `LimitsExceeded`: max_steps, the token or cost budget (`agent.usage.Budget`, checked before every
  call against its worst case and after it), the time budget (`agent.max_minutes`: checked before each
  step, which is not started when too little time is left, and before each tool call; a model call in
  flight watches a `agent.timebound.DeadlineEvent` and every command's time limit is cut to what is left,
  `agent.timebound.TimeBoundSandbox`; a resumed run counts the time of its earlier parts, as it counts
  their cost), "stuck" (the same tool call failed the same way three
  times, the second time the model is nudged; or three steps in a row had their tool calls cut off at
  max_tokens), or a conversation that does not fit the window even
  condensed: status "budget_exhausted";
- cancellation (`cancel` set, or Ctrl-C when `run` is on the main thread): status "cancelled", within
  about a second wherever the run is (model calls, commands and checks all watch `cancel`), and never a
  proposal (what a stream cut off by the cancel was billed for is still counted, `broken_streams`;
  estimated for a stream that had reported no usage yet, as an OpenAI-compatible one reports it last);
- `ToolAbort` (say, no sandbox can be made), model errors (`AuthenticationFailed`, `RetriesExhausted`
  after a 429/529 storm ...) and crashes inside the loop: status "failed" with the error's actionable
  message.

No work is lost: every stop but cancellation proposes the overlay's changes when there are some, flagged
(`Proposal.complete` False, `verified` False, the summary starting with "UNFINISHED" and saying how to
resume); and every run saves its state (conversation, counters, changed files) next to its transcript
(`agent.resume`), so `Agent.resume(state)` (`agentls runs resume ID`, `agentls.resume`) continues a
stopped or cancelled run, also from another process.

Stages: *formalize* (the first turn states a spec with acceptance criteria and a plan, and may call
`ask_user`), *act* (tools), *verify* (`agent.verify.Verifier`, on "done" and on `run_tests`), *reflect*
(failures fed back), *finish* (the model's last text is the summary). Progress goes to `on_event` as
`AgentEvent`s.

Prompt caching: the system prompt, the tool definitions and the first user turn (the retrieved context
and the task) are built once and never change during the run, and between the rare rewrites of history
(a batch of masking, a condensation: `agent.memory`) messages are only appended, so each request's
prefix is byte-identical to the previous request's; the Anthropic provider's `with_cache_breakpoints`
puts the breakpoints.

The agent never writes the user's files: every edit lands in the overlay, commands run on materialized
copies, and the proposal is the overlay's difference from the base.

What the loop is *for* comes from its `agent.roles.Role` (default `SOLO`): the system prompt
(`Role.system_prompt`) and the tools (`agent.tools.toolset.toolset`, or a registry passed in as `tools`).
The loop builds nothing else: tools share the run's `ToolResources` (overlay, sandbox, verifier, index),
and every record goes through `agent.recorder.Recorder` to the transcript.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from agent.config import AgentSettings
from agent.context import Context, gather_context
from agent.costs import CostLedger, RoleCost
from agent.images import ToolImage, metadata_text, without_images
from agent.images import name as image_name
from agent.memory import (
    CONDENSE_PROMPT,
    Memory,
    condensed_history,
    context_window_for,
    is_prompt_too_long,
    max_output_tokens_for,
)
from agent.models import Cancelled, ModelError, ModelResponse
from agent.netsandbox import attach_network
from agent.overlay import FileChange, Overlay, OverlayError
from agent.paths import PathRefused
from agent.project import project_prompt
from agent.prompts import render_task_prompt
from agent.proposal import Proposal, new_proposal_id
from agent.recorder import Recorder
from agent.redaction import RedactionCache, guard_tool_call
from agent.resume import RunState, overlay_files, restore_overlay, save_state
from agent.roles import SOLO, Role
from agent.sandbox import SandboxUnavailable
from agent.settings_error import setting_to_fix
from agent.task import Task
from agent.timebound import DeadlineEvent, TimeBoundSandbox, bounded_ask
from agent.tools import ANTHROPIC, ToolAbort, ToolError, ToolRegistry, ToolResult, ToolTimeUp, one_line
from agent.tools.ask import AskCallback, QuestionWithdrawn
from agent.tools.todo import TodoItem, TodoList
from agent.tools.toolset import ToolResources, toolset
from agent.transcript import Transcript, new_run_id
from agent.usage import Budget, BudgetExceeded, Usage
from agent.verify import VerificationResult

if TYPE_CHECKING:
    from agent.interpreter import Interpreter
    from agent.mcp.trust import RunAnswers
    from agent.ports import CodeIndex, EventSink, Model, Sandbox
    from agent.toolchains import Toolchain
    from indexing.config import IndexSettings
    from indexing.secrets import Redactor

__all__ = [
    "Agent",
    "AgentEvent",
    "EventKind",
    "Limit",
    "LimitsExceeded",
    "RunCancelled",
    "RunResult",
    "RunStatus",
    "Submitted",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limit:
    """A budget an agent's calls count toward, with what was spent toward it before the agent began."""

    budget: Budget
    usage: Usage
    cost: float
    prefix: str = ""
    """Put before the message when the budget stops the agent (which budget it is)."""
    seconds: float = 0.0
    """Wall-clock seconds spent toward it before the agent began (its `max_minutes`)."""


RunStatus = Literal["proposed", "no_changes", "failed", "cancelled", "budget_exhausted"]
EventKind = Literal[
    "stage",
    "plan",
    "text",
    "step",
    "tool_call",
    "tool_result",
    "verification",
    "reflection",
    "cost",
    "stop",
    "handoff",
    "todo",
    "role",
    "warning",
]
"""Kinds of `AgentEvent`. Team runs (`agent.team`) add "handoff" (data: role, node, handoff, document,
markdown), "todo" (data: items, each id, text, status) and "role" (data: role, node, state: started,
finished or failed). "warning" is something the user should know and act on (data: subject, e.g.
"interpreter": no project environment was found and a fallback Python runs the tests; "toolchain": a Rust
or Go project's `cargo` or `go` is not installed or does not run in the sandbox; "mcp_server": an
MCP server could not start, or nobody answered whether to trust it, and its tools are left out)."""

_CUT_OFF = (
    "Your reply was cut off at the output token limit. Continue from where you stopped, in smaller steps."
)
_CUT_CALL = (
    "This {name} call was cut off at the output token limit (max_tokens = {limit:,}) before its input was "
    "complete, so it was NOT run and nothing changed. Send smaller edits: `create` a short file first, "
    "then add to it with `insert` or `str_replace` a few dozen lines per call, and keep each tool call's "
    "input short."
)
_WINDOW_FULL = "model_context_window_exceeded"
"""Claude's stop reason for a reply that filled the context window: cut off like one at max_tokens."""
_WINDOW_CUT_OFF = (
    "Your reply was cut off: the conversation filled the model's context window. It is condensed before "
    "your next turn; continue from where you stopped, in smaller steps."
)
_WINDOW_CUT_CALL = (
    "This {name} call was cut off when the conversation filled the model's context window, before its input "
    "was complete, so it was NOT run and nothing changed. The conversation is condensed before your next "
    "turn; then send the call again with a short input (a few dozen lines per edit)."
)
_EMPTY_REPLY = (
    "Your last reply was empty: no text and no tool call. Continue the task: call a tool for the next step, "
    "or, if the task is done, reply with a short summary of what you did."
)
_EMPTY_RETRIES = 2
"""Empty replies in a row the model is asked to continue after; the next one ends its turn as a finish."""
_UNREADABLE_CALL = (
    "This {name} call was NOT run and nothing changed: {problem}. A tool call's arguments must be one JSON "
    "object that matches the tool's input schema; send the call again."
)
_NUDGE = (
    "\n\nNOTE: you made this exact call before and it failed the same way. Repeating it will not help: "
    "read the error, check your assumptions (view the file, list the folder) and try something different."
)
_WRITES = frozenset({"create", "str_replace", "insert", "undo_edit", "write", "delete", "rename"})
"""Editor commands that change files."""
_STUCK_AFTER = 3
"""The same failing call (same tool, same input, same error) this many times ends the run as stuck."""


# --------------------------------------------------------------------------------------------------
# Results and events


@dataclass(frozen=True)
class AgentEvent:
    """Progress of a run, for whoever drives it (the CLI prints these, the server sends `$/progress`)."""

    kind: EventKind
    message: str
    """One line for people."""
    step: int = 0
    usage: Usage = field(default_factory=Usage)
    """Tokens of the run so far."""
    cost: float = 0.0
    """USD of the run so far."""
    data: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    """Details by kind: tool `name`, `input`, `is_error`; a `verification` result; the `stage`."""


@dataclass(frozen=True)
class RunResult:
    """How a run ended."""

    run_id: str
    task: Task
    status: RunStatus
    summary: str
    proposal: Proposal | None
    usage: Usage
    cost: float
    steps: int
    verifications: tuple[VerificationResult, ...]
    transcript_path: Path | None
    error: str | None = None
    """For "failed" (and budget stops): what happened and what to do."""
    plan: str = ""
    """The text of the model's first turn: its spec and plan."""
    reflections: int = 0
    seconds: float = 0.0
    step_seconds: tuple[float, ...] = ()
    """Wall time of each step (model call and tools, verification included)."""
    secrets_withheld: int = 0
    """Distinct secret values in the code that were replaced by placeholders before reaching the model."""
    roles: tuple[RoleCost, ...] = ()
    """Usage and cost per role and node (`agent.costs`); they add up to `usage` and `cost`."""


# --------------------------------------------------------------------------------------------------
# Control flow


class Submitted(Exception):
    """The model finished; `summary` is its last text."""

    def __init__(self, summary: str) -> None:
        super().__init__(summary)
        self.summary = summary


class LimitsExceeded(Exception):
    """A step limit or budget ended the run; the message says which and what to do."""

    def __init__(
        self, message: str, *, limit: str, allowed: float | None = None, used: float | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.limit = limit
        self.allowed = allowed
        """The bound, in its own unit (minutes for max_minutes), when a budget stopped the run."""
        self.used = used
        """What the run had used of it then."""


class RunCancelled(Exception):
    """The run was cancelled."""


class _ModelRefused(Exception):
    """The model declined the task (stop reason "refusal")."""


_IMAGE_NOT_SAVED = "not kept when the run was saved; call the tool again to see it"


def _image_record(image: ToolImage) -> dict[str, Any]:
    """What the transcript's tool_result record says of an image sent with it (never the image)."""
    raw = base64.b64decode(image.data)
    return {
        "media_type": image.media_type,
        "width": image.width,
        "height": image.height,
        "bytes": len(raw),
        "sha256": hashlib.sha256(raw).hexdigest(),
    }


def _clip(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, keeping its head and tail (errors are often at the end)."""
    if len(text) <= limit:
        return text
    head = limit * 2 // 5
    tail = limit - head
    cut = len(text) - head - tail
    return f"{text[:head]}\n[... {cut} characters cut ...]\n{text[-tail:]}"


def _diff_key(diff: str) -> str:
    return hashlib.sha256(diff.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------------------------------
# The agent


class Agent:
    """One run of the agent on one overlay. Create a new `Agent` for each run (or resumed run); each
    keeps its own memory (`agent.memory.Memory`) and saves its own state."""

    def __init__(
        self,
        model: Model,
        settings: AgentSettings,
        *,
        root: Path,
        overlay: Overlay,
        sandbox: Sandbox,
        index: CodeIndex | None = None,
        ask: AskCallback | None = None,
        on_event: EventSink | None = None,
        cancel: threading.Event | None = None,
        transcript: Transcript | None = None,
        scratch_dir: Path | None = None,
        role: Role = SOLO,
        tools: ToolRegistry | None = None,
        system: str | None = None,
        node: str | None = None,
        models: Callable[[str], Model] | None = None,
        todos: TodoList | None = None,
        interpreter: Interpreter | None = None,
        mcp_answers: RunAnswers | None = None,
        toolchains: tuple[Toolchain, ...] | None = None,
        index_settings: IndexSettings | None = None,
    ) -> None:
        """`root` is the workspace root (the overlay's); `index` may be None (tools fall back to scans);
        `index_settings`: the workspace's index settings, for the verifier (`Verifier(index_settings=...)`);
        `ask` answers `ask_user` (None: nobody can); `transcript` None writes no transcript. The system
        prompt and the tools come from `role` unless `system` and `tools` are given. `node`: the team
        graph's node (its calls are charged to role and node, `agent.costs`); `models`: role name -> that
        role's model client (`model_for`; None: `model` for every role); `todos`: a todo list to share
        (default: a new one for this run); `interpreter`: the project's Python when the caller found it
        already (the team's roles and delegated sub-agents share the run's; None: asked once here);
        `toolchains`: the project's Cargo and Go, likewise (`agent.toolchains`; None: asked here when needed);
        `mcp_answers`: the MCP trust questions the run asked already (a team run's, shared by its roles)."""
        self.model = model
        self.settings = settings
        self.root = Path(root)
        self.overlay = overlay
        self.index = index
        self.on_event = on_event
        self.cancel = cancel or threading.Event()
        self.role = role
        self.recorder = Recorder(transcript)
        self.run_id = transcript.run_id if transcript is not None else new_run_id()
        self.budget = settings.budget()
        self._seconds_before = 0.0
        """Wall-clock seconds of the run's earlier parts (a resumed run counts them, `elapsed`)."""
        self._started: float | None = None
        if any(limit.budget.max_minutes is not None for limit in self._limits()):
            # every command of the run (bash, tests, checks, installs) ends by the run's time bound, and
            # so does every wait for the user's answer (ask_user, approvals): that time counts too
            sandbox = TimeBoundSandbox(sandbox, self.seconds_left)
            if ask is not None:
                ask = bounded_ask(ask, self._deadline)
        self._tool_notes: list[str] = []
        """What the model is told with its task of the tools it will miss (an MCP server that failed)."""
        self.resources = ToolResources.create(
            settings,
            overlay,
            sandbox,
            index=index,
            ask=ask,
            cancel=self.cancel,
            scratch_dir=scratch_dir,
            on_verification=self._record_verification,
            recorder=self.recorder,
            state_dir=transcript.directory.parent if transcript is not None else None,
            interpreter=interpreter,
            toolchains=toolchains,
            on_warning=self._warn,
            mcp_answers=mcp_answers,
            index_settings=index_settings,
        )
        self.verifier = self.resources.verifier
        self._asked_interpreter = interpreter is None
        """This agent detected the interpreter (it was not handed the run's): it tells of a fallback."""
        self.node = node
        self.models = models
        self.todos = todos if todos is not None else TodoList()
        self.todos.on_change = self._todos_changed
        self.resources = replace(self.resources, todos=self.todos, host=self, seconds_left=self.seconds_left)
        self.ledger = CostLedger()
        """Every model call of the run and of its sub-agents, by role and node (`agent.costs`)."""
        gateway = getattr(sandbox, "network_gateway", None)
        if gateway is not None:  # network = "registries": requests and approvals go to the transcript
            attach_network(gateway(), self.recorder, ask=ask, policy=settings.approve)
        self._tools = tools
        # The run's `indexing.secrets.Redactor` when the model is an `agent.redaction.RedactingModel`.
        self.secrets: Redactor | None = getattr(model, "secrets", None)
        # Its `RedactionCache`: the model's requests, the events and the saved state redact each text once.
        redaction = getattr(model, "redaction", None)
        if not isinstance(redaction, RedactionCache):
            redaction = RedactionCache(self.secrets) if self.secrets is not None else None
        self.redaction: RedactionCache | None = redaction
        self._ran = False
        # Run state
        self.task: Task | None = None
        self.system = system if system is not None else role.system_prompt()
        self._own_system = system is None
        """The role's prompt gets the environment and project instructions at `run` (`agent.project`)."""
        self.instructions: list[dict[str, Any]] = []
        """The project instruction files in the system prompt (path, bytes, truncated, omitted)."""
        self.registry = ToolRegistry()
        self.tool_definitions: list[dict[str, Any]] = []
        self.messages: list[dict[str, Any]] = []
        self.usage = Usage()
        self.steps = 0
        self.reflections = 0
        self.plan = ""
        self.verifications: list[VerificationResult] = []
        self.step_seconds: list[float] = []
        self._verified: dict[str, VerificationResult] = {}
        """diff hash -> the finish-verification of that exact change."""
        self.memory = Memory(
            settings.memory, settings.model.context_window or context_window_for(model.model_name)
        )
        self.runs_dir: Path | None = transcript.directory if transcript is not None else None
        """Where the run's state is saved for `resume` (None: no transcript, nothing saved)."""
        self.resumed_from: str | None = None
        self._resume_state: RunState | None = None
        self._next_max_tokens: int | None = None
        """A raised output cap for the next call only (after a reply cut at max_tokens)."""
        self._max_tokens_in_use: int | None = None
        self._failures: dict[str, int] = {}
        """hash of (tool, input, error) -> how often that exact call failed that exact way."""
        self._stuck: str | None = None
        self._empty_replies = 0
        """Empty replies (no text, no tool call) in a row; each is not kept and the model is asked on."""
        self._cut_steps = 0
        """Steps in a row whose tool calls were cut off at max_tokens (none ran); `_STUCK_AFTER` stop."""
        self._window_full = False
        """The last reply filled the context window: condense before the next request."""
        self._changed_files = False
        """A tool that can change files ran in this step (the state is saved after it)."""

    # -- the run -----------------------------------------------------------------------------------

    @property
    def cost(self) -> float:
        """USD spent so far at list price, each call at its own model's price (sub-agents included)."""
        return self.ledger.cost

    @property
    def elapsed(self) -> float:
        """Wall-clock seconds of the run so far, its earlier parts included when it was resumed."""
        now = 0.0 if self._started is None else time.monotonic() - self._started
        return self._seconds_before + now

    def seconds_left(self) -> float | None:
        """Seconds left of the tightest time bound (`_limits`: the run's `max_minutes`, a team node's);
        None when none is set."""
        elapsed = self.elapsed
        left = [limit.budget.seconds_left(limit.seconds + elapsed) for limit in self._limits()]
        bounded = [value for value in left if value is not None]
        return min(bounded) if bounded else None

    def model_for(self, role: str) -> Model:
        """The model client of `role` (from `models`; this agent's own when none was given)."""
        return self.models(role) if self.models is not None else self.model

    def absorb(self, usage: Usage, ledger: CostLedger) -> None:
        """Count a sub-agent's calls as this run's: its usage, and its ledger under its own roles."""
        self.usage = self.usage + usage
        self.ledger.merge(ledger)

    def _charge(self, usage: Usage) -> None:
        """One model call of this agent: the run's usage, and the ledger under this agent's role."""
        self.usage = self.usage + usage
        self.ledger.add(self.role.name, self.node, usage, self.model.model_name, self.model.provider)

    def resume(self, state: RunState) -> RunResult:
        """Continue the stopped run `state` (see `agent.resume`): its files go onto this agent's overlay,
        its conversation and counters carry on, and the run gets this agent's run id."""
        if not state.resumable:
            raise ValueError(f"run {state.run_id} finished ({state.status}); there is nothing to resume")
        self._resume_state = state
        self.resumed_from = state.run_id
        return self.run(state.task)

    def run(self, task: Task) -> RunResult:
        """Run `task` to the end; never raises for a failed run (see `RunResult.status`)."""
        if self._ran:
            raise RuntimeError("an Agent runs once; create a new Agent (with a new Overlay) for each run")
        self._ran = True
        self.task = task
        started = self._started = time.monotonic()
        status: RunStatus = "failed"
        summary = ""
        error: str | None = None
        proposal: Proposal | None = None
        if self._own_system:
            self._project_prompt(task)
        self._record_start(task)
        try:
            self._prepare(task)
            while True:
                self.step()
        except Submitted as done:
            if not self.cancel.is_set():  # a cancelled run never proposes, even when it just finished
                status, summary, proposal = self._finish(done.summary)
            else:
                status, summary = "cancelled", "The run was cancelled; nothing was proposed."
        except LimitsExceeded as stop:
            if not self.cancel.is_set():
                status = "budget_exhausted"
                error = stop.message
                summary, proposal = self._stopped_early(stop)
            else:
                status, summary = "cancelled", "The run was cancelled; nothing was proposed."
        except (RunCancelled, Cancelled, KeyboardInterrupt):
            status, summary = "cancelled", "The run was cancelled; nothing was proposed."
        except (ToolAbort, SandboxUnavailable) as abort:
            error = str(abort)
            summary, proposal = self._keep_work(f"The run stopped: {error}", "tool_abort")
        except _ModelRefused as refused:
            error = str(refused)
            summary, proposal = self._keep_work(error, "refusal")
        except ModelError as failure:
            error = failure.message
            summary, proposal = self._keep_work(f"The run failed: {error}", "model_error")
        except Exception as failure:
            setting = setting_to_fix(failure)  # a role's model whose setting cannot be used: the user's
            if setting is None:
                log.exception("agent run %s failed", self.run_id)
            error = setting or (
                f"internal error: {failure!r}. This is a bug in agentls; the transcript has the details."
            )
            summary, proposal = self._keep_work(f"The run failed: {error}", "internal_error")
        finally:
            if self.cancel.is_set() and status != "failed":
                # Cancelled while finishing: a cancelled run never proposes.
                status, proposal = "cancelled", None
                summary = "The run was cancelled; nothing was proposed."
            self.registry.close()
            self._save_state(status, error)
            seconds = time.monotonic() - started
            self._emit("stop", f"run {status}" + (f": {error}" if error else ""), status=status)
            self.recorder.run_end(
                status=status,
                summary=summary,
                error=error,
                usage=self.usage,
                cost=self.cost,
                steps=self.steps,
                reflections=self.reflections,
                proposal_id=proposal.proposal_id if proposal is not None else None,
                seconds=seconds,
                step_seconds=self.step_seconds,
                roles=self.ledger.records(),
            )
        return RunResult(
            run_id=self.run_id,
            task=task,
            status=status,
            summary=summary,
            proposal=proposal,
            usage=self.usage,
            cost=self.cost,
            steps=self.steps,
            verifications=tuple(self.verifications),
            transcript_path=self.recorder.path,
            error=error,
            plan=self.plan,
            reflections=self.reflections,
            seconds=seconds,
            step_seconds=tuple(self.step_seconds),
            secrets_withheld=self.secrets.withheld if self.secrets is not None else 0,
            roles=tuple(self.ledger.entries),
        )

    def step(self) -> None:
        """One model turn and what it asks for."""
        self._check_cancel()
        if self.steps >= self.settings.max_steps:
            raise LimitsExceeded(
                f"The run reached max_steps = {self.settings.max_steps} before the model finished. "
                "Raise agent.max_steps in the agentls settings or give the agent a smaller task.",
                limit="max_steps",
            )
        self._check_time(step=True)
        self.steps += 1
        started = time.monotonic()
        try:
            self._emit("step", f"step {self.steps}")
            response = self.query()
            self.execute(response)
            if self._changed_files:
                # Saved as the run goes, so even a killed process leaves its edits resumable.
                self._changed_files = False
                self._save_state("running", None)
        finally:
            self.step_seconds.append(time.monotonic() - started)

    def query(self) -> ModelResponse:
        """One model call on the conversation so far: the context is fitted into the window first (masked
        or condensed, `agent.memory`), the budget checked against the call's worst case, then usage and
        cost are added and the budget checked again."""
        self._fit_context()
        max_tokens, self._next_max_tokens = self._next_max_tokens, None
        self._check_ahead(self.messages, max_tokens)
        self._record_request()
        try:
            response = self._complete(self.messages, max_tokens)
        except ModelError as failure:
            if not is_prompt_too_long(failure.message, failure.status_code):
                raise
            # The estimate was short of the API's count: condense now (old results masked) and retry once.
            self._decision("window", message=failure.message, tokens=self.memory.estimate(self.messages))
            self._condense(f"the API answered: {failure.message}", mask_all=True)
            self._check_ahead(self.messages, max_tokens)
            self._record_request()
            try:
                response = self._complete(self.messages, max_tokens)
            except ModelError as again:
                if not is_prompt_too_long(again.message, again.status_code):
                    raise
                raise LimitsExceeded(
                    "The conversation no longer fits the model's context window, even condensed "
                    f"({again.message}). Lower agent.context_token_budget or agent.max_tool_result_chars, "
                    "or use a model with a larger window (agent.model.context_window).",
                    limit="context_window",
                ) from again
        self._charge(response.usage)
        cost = self.cost
        self.recorder.response(
            step=self.steps,
            content=response.content,
            stop_reason=response.stop_reason,
            usage=response.usage,
            model_name=self.model.model_name,
            run_cost=cost,
            latency=response.latency_seconds,
            attempts=response.attempts,
            request_id=response.request_id,
            model=response.model,
            provider=self.model.provider,
            role=self.role.name,
            node=self.node,
        )
        if response.text.strip() or response.tool_uses:
            self.messages.append(response.as_message())
        # else an empty (or thinking-only) reply: the APIs refuse an empty assistant turn in the history, so
        # it stays in the transcript only, and `execute` asks the model to go on.
        self.memory.observe(response.usage, self.messages)
        self._emit("cost", f"{self.usage.total_tokens:,} tokens, ${cost:.4f}")
        try:
            self.budget.check(self.usage, self.model.model_name, self.model.provider, spent=self.cost)
        except BudgetExceeded as exceeded:
            raise LimitsExceeded(exceeded.message, limit=exceeded.limit) from exceeded
        return response

    def execute(self, response: ModelResponse) -> None:
        """Run the turn's tool calls, or handle the end of the model's work."""
        uses = response.tool_uses
        text = response.text.strip()
        if self.steps == 1 and text:
            self.plan = text
            self._emit("plan", text)
            self._decision("stage", stage="act")
        elif text and uses:
            self._emit("text", text)
        if response.stop_reason == "refusal":
            raise _ModelRefused(
                "The model declined this task" + (f": {text}" if text else ".") + " Rephrase the request."
            )
        if uses or text:
            self._empty_replies = 0
        if response.stop_reason == _WINDOW_FULL:  # cut off like max_tokens, but more output will not fit
            self._window_full = True
            self._decision("window_full", tool_calls=len(uses))
            if uses:
                self.messages.append({"role": "user", "content": [self._cut_call(use, True) for use in uses]})
            else:
                self._tell(_WINDOW_CUT_OFF)
            return
        if uses and response.stop_reason == "max_tokens":
            # The SDK drops a field cut mid-string: running such a call would run a different call.
            self.messages.append({"role": "user", "content": [self._cut_call(use) for use in uses]})
            self._cut_steps += 1
            if self._cut_steps >= _STUCK_AFTER:
                raise LimitsExceeded(self._cut_stuck(uses), limit="stuck")
            self._raise_output_cap()
            return
        self._cut_steps = 0
        if uses:
            results = []
            for use in uses:
                self._check_cancel()
                self._check_time()
                problem = response.input_errors.get(str(use.get("id", "")))
                began = time.monotonic()
                try:
                    result = self._call_tool(use) if problem is None else self._unreadable_call(use, problem)
                except ToolTimeUp as cut:
                    self._cut_by_time(use, cut, time.monotonic() - began)
                    raise
                results.append(result)
            self.messages.append({"role": "user", "content": results})
            self._check_cancel()
            if self._stuck is not None:
                raise LimitsExceeded(self._stuck, limit="stuck")
            return
        if response.stop_reason == "max_tokens":
            self._tell(_CUT_OFF)
            self._raise_output_cap()
            return
        if not text and self._empty_replies < _EMPTY_RETRIES:
            self._empty_replies += 1
            thinking = any(block.get("type") != "text" for block in response.content)
            self._decision("empty_reply", times=self._empty_replies, thinking=thinking)
            self._emit("stage", "the model's reply was empty; asking it to continue", stage="act")
            self._tell(_EMPTY_REPLY)
            return
        self._done(response.text)

    # -- stages ------------------------------------------------------------------------------------

    def _prepare(self, task: Task) -> None:
        self._emit("stage", "gathering context", stage="formalize")
        interpreter = self.verifier.interpreter
        self._decision("interpreter", **interpreter.record())
        # A fallback: the user should know which Python runs the tests, and why. Said once a run, by the
        # agent that asked (a team's later roles and delegated sub-agents share its interpreter).
        if interpreter.warning and self._asked_interpreter:
            log.info("run %s: %s", self.run_id, interpreter.warning)  # the event shows it (once)
            self._emit("warning", interpreter.warning, subject="interpreter")
        # So is a Rust or Go project's Cargo or Go that cannot run its checks (`agent.toolchains`).
        for toolchain in self.verifier.toolchains if self._asked_interpreter else ():
            if toolchain.problem:
                log.info("run %s: %s", self.run_id, toolchain.problem)  # the event shows it (once)
                self._emit("warning", toolchain.problem, subject="toolchain")
        if self._tools is not None:
            self.registry = self._tools
        else:
            self.registry = toolset(self.role, self.resources, edits_allowed=task.edits_allowed)
        # Anthropic's API takes the built-in editor and bash types; other providers get plain functions.
        self.tool_definitions = self.registry.definitions(getattr(self.model, "provider", ANTHROPIC))
        self.memory.set_prefix(self.system, self.tool_definitions)
        if self._resume_state is not None:
            self._restore(self._resume_state)
            return
        context: Context | None
        try:
            context = gather_context(
                task,
                root=self.overlay.root,
                read_file=self._read_for_context,
                index=self.index,
                token_budget=self.settings.context_token_budget,
                settings=self.verifier.index_settings,  # the user's exclude, merged, as the verifier has it
            )
        except Exception as error:  # context is a help, not a requirement
            log.warning("gathering context for %s failed: %s", task.title, error, exc_info=True)
            context = None
        if context is not None:
            self.recorder.decision(
                "context",
                tokens=context.tokens,
                sections=[section.header() for section in context.sections],
                dropped=context.dropped,
                notes=list(context.notes),
            )
        task_prompt = render_task_prompt(task, context) + self._notes_for_model()
        prompt = self.role.first_turn(task_prompt, edits_allowed=task.edits_allowed)
        self.messages = [{"role": "user", "content": prompt}]

    def _warn(self, subject: str, message: str, note: str) -> None:
        """`ToolResources.on_warning`: the user is told by the "warning" event (the tool set recorded it);
        the model by `note`, with its task."""
        log.info("run %s: %s", self.run_id, message)  # the event shows it (a WARNING log would repeat it)
        self._emit("warning", message, subject=subject)
        if note:
            self._tool_notes.append(note)

    def _notes_for_model(self) -> str:
        """The tool notes as lines of the first user turn (or of the note of a resumed run)."""
        return "".join(f"\nNote: {note}\n" for note in self._tool_notes)

    def _restore(self, state: RunState) -> None:
        """Carry on from a saved run: its files onto the overlay, its conversation, its counters."""
        restored = restore_overlay(self.overlay, state)
        self.steps, self.reflections, self.plan = state.steps, state.reflections, state.plan
        self.usage = state.usage
        self._seconds_before = state.seconds
        self.ledger = CostLedger.from_records(state.roles)
        if not state.roles and state.usage.total_tokens:  # saved before usage was kept per role
            self.ledger.add(
                self.role.name, self.node, state.usage, self.model.model_name, self.model.provider
            )
        if state.todos:
            self.todos.restore(state.todos)
        messages = [dict(message) for message in state.messages]
        # A last assistant turn whose tool calls never ran (the run stopped right after it) is dropped:
        # the model asks again. The conversation then ends with a user turn, told what happened.
        while messages and messages[-1].get("role") == "assistant":
            messages.pop()
        note = (
            f"(The run was interrupted here: {state.error or state.status}. It has been resumed; your "
            "changes so far are in place. Continue the task.)"
        )
        if restored.merged:
            note += (
                f"\n(The user edited {', '.join(restored.merged)} since; your changes were merged into "
                "their text: view a file before editing it again.)"
            )
        if restored.kept:
            note += (
                f"\n(The user edited {', '.join(restored.kept)} since, on the lines you had changed: these "
                "files hold the user's text now and your earlier changes to them are gone. View them and "
                "redo what the task still needs.)"
            )
        note += self._notes_for_model().rstrip("\n")
        if not messages:
            raise ToolAbort(f"run {state.run_id} has no conversation to resume; start a new run")
        last = messages[-1]
        content = last.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else list(content or [])
        messages[-1] = {**last, "content": [*blocks, {"type": "text", "text": note}]}
        self.messages = messages
        self._decision(
            "resumed",
            resumed_from=state.run_id,
            status=state.status,
            files=sorted(state.files),
            steps=state.steps,
            merged=restored.merged,
            kept_user_text=restored.kept,
        )

    def _read_for_context(self, path: str) -> str | None:
        try:
            return self.overlay.read(path)
        except (OverlayError, PathRefused):
            return None

    def _call_tool(self, use: Mapping[str, Any]) -> dict[str, Any]:
        name = str(use.get("name", ""))
        input = use.get("input", {})
        tool_id = str(use.get("id", ""))
        description = self.registry.describe(name, input if isinstance(input, Mapping) else {})
        self._emit("tool_call", description, name=name, input=input, id=tool_id)
        self.recorder.tool_call(step=self.steps, id=tool_id, name=name, input=input)
        started = time.monotonic()
        try:  # placeholders of secret values back to the values; an edit that would change one is refused
            input = guard_tool_call(self.secrets, name, input, self._read_for_context)
        except ToolError as refused:
            result = ToolResult(str(refused), is_error=True)
        else:
            result = self.registry.execute(name, input)  # ToolAbort propagates and ends the run
        seconds = time.monotonic() - started
        result = self._without_secret_images(result)
        content = _clip(result.content, self.settings.max_tool_result_chars) or "(no output)"
        if result.is_error:
            content = self._repeated_failure(name, input, content)
        elif name == "bash" or (isinstance(input, Mapping) and input.get("command") in _WRITES):
            self._changed_files = True
        self.recorder.tool_result(
            step=self.steps,
            id=tool_id,
            name=name,
            content=content,
            is_error=result.is_error,
            seconds=seconds,
            images=[_image_record(image) for image in result.images],
        )
        # the event carries the whole output (ACP's rawOutput) and a first line for progress; neither
        # shows a secret value
        output = self.redaction.current(content) if self.redaction is not None else content
        first = output.strip().split("\n", 1)[0] if output.strip() else ""
        self._emit(
            "tool_result",
            ("error: " if result.is_error else "") + one_line(first, 120),
            name=name,
            is_error=result.is_error,
            output=output,
            id=tool_id,
        )
        block: dict[str, Any] = {"type": "tool_result", "tool_use_id": tool_id, "content": content}
        if result.images:  # the images follow the text, in the result (`agent.images`)
            block["content"] = [
                {"type": "text", "text": content},
                *(image.block() for image in result.images),
            ]
        if result.is_error:
            block["is_error"] = True
        return block

    def _without_secret_images(self, result: ToolResult) -> ToolResult:
        """`result` without the images that hold a secret value, each named instead: the model never gets
        one. An image holds one when its base64 holds a value the run knows (in an encoding the `Redactor`
        reads), or when the text it carries besides its pixels (`agent.images.metadata_text`: PNG text
        chunks, compressed ones too, JPEG comments, EXIF, XMP) holds a value the run knows or one the
        detectors find (an API key in a screenshot's metadata that no file of the workspace holds)."""
        if self.secrets is None or not result.images:
            return result
        secrets = self.secrets
        kept = tuple(
            image
            for image in result.images
            if secrets.redact(image.data) == image.data
            and (text := metadata_text(image.data)) == secrets.redact(text)
        )
        if len(kept) == len(result.images):
            return result
        notes = [
            f"[image ({image_name(image.block())}) left out: its data holds a secret value]"
            for image in result.images
            if image not in kept
        ]
        return replace(result, content="\n".join([result.content, *notes]), images=kept)

    def _cut_by_time(self, use: Mapping[str, Any], cut: ToolTimeUp, seconds: float) -> None:
        """A tool call cut at the time bound (or by the cancel) while it waited: a question to the user
        withdrawn unanswered (`question_withdrawn`), an MCP call cancelled (`tool_cut`). Recorded, and the
        run stops as the bound (or the cancel) stops it. The turn's results are not kept, so a resumed
        run's model makes the call again (`_restore` drops the turn)."""
        name, tool_id = str(use.get("name", "")), str(use.get("id", ""))
        withdrawn = isinstance(cut, QuestionWithdrawn)
        content = f"The question was withdrawn: {cut}." if withdrawn else f"The call was cut: {cut}."
        self.recorder.tool_result(
            step=self.steps, id=tool_id, name=name, content=content, is_error=True, seconds=seconds
        )
        self._emit("tool_result", f"error: {one_line(content, 120)}", name=name, is_error=True, id=tool_id)
        self._decision("question_withdrawn" if withdrawn else "tool_cut", tool=name, reason=str(cut))
        self._check_cancel()
        self._check_time()

    def _repeated_failure(self, name: str, input: Any, content: str) -> str:
        """Count an identical failing call; the second time add a nudge, the third mark the run stuck."""
        key = hashlib.sha256(
            json.dumps([name, input, content], sort_keys=True, default=str).encode("utf-8")
        ).hexdigest()
        count = self._failures[key] = self._failures.get(key, 0) + 1
        if count >= _STUCK_AFTER and self._stuck is None:
            first = content.strip().split("\n", 1)[0] if content.strip() else ""
            self._stuck = (
                f"stuck: the model made the same failing {name} call {count} times ({one_line(first, 160)}). "
                "Give the agent more precise instructions, or resume the run with `agentls runs resume`."
            )
            self._decision("stuck", tool=name, times=count)
        elif count == _STUCK_AFTER - 1:
            self._decision("nudge", tool=name, times=count)
            return content + _NUDGE
        return content

    def _cut_call(self, use: Mapping[str, Any], window_full: bool = False) -> dict[str, Any]:
        """The error result of a tool call cut at max_tokens, or when the reply filled the context window
        (`window_full`): never run."""
        name = str(use.get("name", ""))
        if window_full:
            return self._not_run(use, _WINDOW_CUT_CALL.format(name=name), "cut off at the context window")
        limit = self._max_tokens_in_use or self.settings.model.max_tokens
        return self._not_run(use, _CUT_CALL.format(name=name, limit=limit), "cut off at max_tokens")

    def _cut_stuck(self, uses: tuple[dict[str, Any], ...]) -> str:
        """The stop message of a run whose tool calls were cut off `_STUCK_AFTER` steps in a row: each such
        step costs a whole `max_tokens` of output and changes nothing."""
        names = ", ".join(sorted({str(use.get("name", "")) for use in uses}))
        limit = self._max_tokens_in_use or self.settings.model.max_tokens
        self._decision("stuck", tool=names, times=self._cut_steps, reason="max_tokens")
        return (
            f"stuck: the model's tool calls ({names}) were cut off at the output token limit "
            f"(max_tokens = {limit:,}) {self._cut_steps} steps in a row, so none of them ran. Ask for the "
            "change in smaller steps, or raise agent.model.max_tokens, and resume the run with "
            "`agentls runs resume`."
        )

    def _unreadable_call(self, use: Mapping[str, Any], problem: str) -> dict[str, Any]:
        """The error result of a tool call whose arguments were not a JSON object (never run); it counts
        as a failing call, so a model that keeps sending the same broken call is nudged, then stopped."""
        name = str(use.get("name", ""))
        content = self._repeated_failure(name, problem, _UNREADABLE_CALL.format(name=name, problem=problem))
        return self._not_run(use, content, "its arguments are not a JSON object")

    def _not_run(self, use: Mapping[str, Any], content: str, why: str) -> dict[str, Any]:
        """Record a tool call that is not run and the error the model gets for it."""
        name = str(use.get("name", ""))
        tool_id = str(use.get("id", ""))
        self.recorder.tool_call(step=self.steps, id=tool_id, name=name, input=use.get("input", {}))
        self.recorder.tool_result(
            step=self.steps, id=tool_id, name=name, content=content, is_error=True, seconds=0.0
        )
        self._emit("tool_result", f"error: {name} call {why}; not run", name=name, is_error=True, id=tool_id)
        return {"type": "tool_result", "tool_use_id": tool_id, "content": content, "is_error": True}

    def _tell(self, note: str) -> None:
        """Say `note` to the model: added to the newest user turn when the conversation ends with one (the
        model's reply was empty, so it was not kept: turns must alternate), else as a new user turn."""
        last = self.messages[-1] if self.messages else None
        if last is None or last.get("role") != "user":
            self.messages.append({"role": "user", "content": note})
            return
        content = last.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else list(content or [])
        self.messages[-1] = {**last, "content": [*blocks, {"type": "text", "text": note}]}
        self.recorder.rewound(len(self.messages) - 1)  # the transcript writes that turn again

    def _raise_output_cap(self) -> None:
        """After a cut reply: the next call may write more, once, up to what the model allows."""
        current = self._max_tokens_in_use or self.settings.model.max_tokens
        if self._max_tokens_in_use is not None:
            return  # this reply already had the raised cap: once per cut step
        ceiling = max_output_tokens_for(self.model.model_name)
        if ceiling is None or current >= ceiling:
            return
        self._next_max_tokens = min(ceiling, current * 2)
        self._decision("max_tokens_raised", previous=current, next=self._next_max_tokens)

    # -- the context window ------------------------------------------------------------------------

    def _complete(self, messages: list[dict[str, Any]], max_tokens: int | None) -> ModelResponse:
        self._max_tokens_in_use = max_tokens
        system, tools = self.system, self.tool_definitions
        # The call ends at the time bound as at a cancel: its wait (a slow reply, a retry) cannot pass it.
        cancel = self._deadline()
        try:
            if max_tokens is None:
                response = self.model.complete(system, tools, messages, cancel=cancel)
            else:
                response = self.model.complete(system, tools, messages, cancel=cancel, max_tokens=max_tokens)
        except ModelError as failure:
            cut = isinstance(failure, Cancelled)
            self._charge_broken(failure.usage, failure.unmetered_streams, messages, cancelled=cut)
            if cut and not self.cancel.is_set():  # the time ran out, not the user's cancel
                self._check_time()
            raise
        self._charge_broken(response.broken_usage, response.unmetered_streams, messages)
        return response

    def _charge_broken(
        self,
        usage: Usage,
        unmetered: tuple[int, ...],
        messages: list[dict[str, Any]],
        *,
        cancelled: bool = False,
    ) -> None:
        """Charge what the call's attempts that broke off mid-stream used (billed, though retried or
        cancelled): the run's usage and cost count it, and a `broken_streams` decision of the transcript
        says how much (`cancelled`: the last one was cut off by a cancel or the time bound). Streams that
        reported no usage before they broke (`ModelResponse.unmetered_streams`) are estimated: each its
        prompt as the context logic estimates it (`agent.memory.Memory.estimate`) and the output it sent;
        the decision's `estimated` says how much of it was."""
        estimated = Usage()
        if unmetered:
            prompt = self.memory.estimate(messages)
            estimated = Usage(input_tokens=prompt * len(unmetered), output_tokens=sum(unmetered))
        usage = usage + estimated
        if not usage.total_tokens:
            return
        self._charge(usage)
        cost = usage.cost(self.model.model_name, self.model.provider)
        run_cost = round(self.cost, 6)
        extra: dict[str, Any] = {"cancelled": True} if cancelled else {}
        if unmetered:
            extra.update(estimated=estimated.as_dict(), unmetered_streams=len(unmetered))
        self._decision(
            "broken_streams", usage=usage.as_dict(), cost=round(cost, 6), run_cost=run_cost, **extra
        )

    def _deadline(self) -> threading.Event:
        """The run's cancel event, also set from the time bound on when there is one (`DeadlineEvent`)."""
        left = self.seconds_left()
        return self.cancel if left is None else DeadlineEvent(self.cancel, time.monotonic() + left)

    def _check_time(self, *, step: bool = False) -> None:
        """Stop the run when a time bound (`_limits`) is used up; with `step`, also when too little of it
        is left for another step (`agent.usage.Budget.step_seconds`)."""
        elapsed = self.elapsed
        for limit in self._limits():
            try:
                limit.budget.check_time(limit.seconds + elapsed, step=step)
            except BudgetExceeded as exceeded:
                raise LimitsExceeded(
                    limit.prefix + exceeded.message,
                    limit=exceeded.limit,
                    allowed=exceeded.allowed,
                    used=exceeded.used,
                ) from exceeded

    def _record_request(self) -> None:
        self.recorder.request(
            step=self.steps,
            system=self.system,
            tools=self.tool_definitions,
            messages=self.messages,
            model=self.model.model_name,
        )

    def _limits(self) -> tuple[Limit, ...]:
        """The budgets each call is checked against before it is made: the run's own."""
        return (Limit(self.budget, Usage(), 0.0),)

    def _check_ahead(self, messages: list[dict[str, Any]], max_tokens: int | None) -> None:
        """Stop before a call that could take the run past a budget (`_limits`; worst case of that call), or
        with too little time left for it."""
        self._check_time(step=True)
        prompt = self.memory.estimate(messages)
        for limit in self._limits():
            try:
                limit.budget.check_ahead(
                    limit.usage + self.usage,
                    prompt,
                    max_tokens or self.settings.model.max_tokens,
                    self.model.model_name,
                    self.model.provider,
                    spent=limit.cost + self.cost,
                )
            except BudgetExceeded as exceeded:
                raise LimitsExceeded(limit.prefix + exceeded.message, limit=exceeded.limit) from exceeded

    def _fit_context(self) -> None:
        """Mask old tool results, then condense, when the next request would fill too much of the window
        (at once when the last reply filled it)."""
        if self._window_full:
            self._window_full = False
            self._condense("the model's last reply filled its context window", mask_all=True)
            return
        if self.memory.images_due(self.messages):
            self._drop_images(None, "the conversation holds too many images, or old ones")
        plan = self.memory.plan(self.messages)
        if (plan.mask or plan.condense) and self._drop_images(0, "the context must shrink"):
            plan = self.memory.plan(self.messages)  # images go first: they cost the most, and were seen
        if plan.mask:
            first, count = self.memory.mask(self.messages)
            after = self.memory.estimate(self.messages)
            if count and first is not None:
                self.recorder.rewound(first)
                self._decision(
                    "masked",
                    blocks=count,
                    tokens_before=plan.tokens,
                    tokens_after=after,
                    window=self.memory.window,
                )
                plan = self.memory.plan(self.messages)
            if after > self.settings.memory.mask_target * self.memory.window:
                self._condense(
                    f"masking left about {after:,} of {self.memory.window:,} tokens, more than "
                    f"mask_target = {self.settings.memory.mask_target}"
                )
                return
        if plan.condense:
            self._condense(f"the conversation reached about {plan.tokens:,} of {self.memory.window:,} tokens")

    def _drop_images(self, keep: int | None, reason: str) -> int:
        """Replace old images by their names (`Memory.drop_images`); a decision says how many and why."""
        before = self.memory.estimate(self.messages)
        first, count = self.memory.drop_images(self.messages, keep)
        if count and first is not None:
            self.recorder.rewound(first)
            self._decision(
                "images_dropped",
                images=count,
                reason=reason,
                tokens_before=before,
                tokens_after=self.memory.estimate(self.messages),
            )
        return count

    def _condense(self, reason: str, *, mask_all: bool = False) -> None:
        """Replace the conversation by [first turn, a handoff summary, the newest turns] (`agent.memory`):
        images the model has seen go first."""
        self._check_cancel()
        before = self.memory.estimate(self.messages)
        self._drop_images(0, "the conversation is condensed")
        if mask_all:
            self.memory.mask(self.messages, keep=0)
        self._emit("stage", "condensing the conversation to stay within the context window", stage="condense")
        request = [dict(message) for message in self.messages]
        ask = {"type": "text", "text": CONDENSE_PROMPT}
        if request and request[-1].get("role") == "user":
            content = request[-1].get("content")
            blocks = [{"type": "text", "text": content}] if isinstance(content, str) else list(content or [])
            request[-1] = {**request[-1], "content": [*blocks, ask]}
        else:
            request.append({"role": "user", "content": [ask]})
        summary = ""
        usage = Usage()
        try:
            self._check_ahead(request, None)
            response = self._complete(request, None)
            usage = response.usage
            self._charge(usage)
            summary = response.text.strip()
        except (Cancelled, LimitsExceeded):
            raise
        except ModelError as failure:  # the handoff is written from what the loop knows instead
            log.warning("condensing run %s: the summary call failed: %s", self.run_id, failure.message)
        if not summary:
            summary = self._mechanical_handoff()
        # The todo list belongs to the run: the condensed context keeps it as it stands.
        facts = "\n\n".join(part for part in (self._changed_files_note(), self.todos.note()) if part)
        self.messages = condensed_history(
            self.messages, summary, keep_turns=self.settings.memory.keep_turns, facts=facts
        )
        self.recorder.rewound(1)
        self.memory.forget_measurement()
        self.memory.condensations += 1
        after = self.memory.estimate(self.messages)
        self._decision(
            "condensed",
            reason=reason,
            tokens_before=before,
            tokens_after=after,
            messages=len(self.messages),
            summary=summary,
            usage=usage.as_dict(),
            number=self.memory.condensations,
        )
        self._emit("cost", f"{self.usage.total_tokens:,} tokens, ${self.cost:.4f}")

    def _changed_files_note(self) -> str:
        try:
            changes = self.overlay.changes()
        except Exception:  # a note, never a reason to fail
            return ""
        if not changes:
            return "Files changed so far: none."
        listed = ", ".join(f"{change.path} ({change.kind})" for change in changes[:50])
        return f"Files changed so far (they are in place): {listed}."

    def _mechanical_handoff(self) -> str:
        """A handoff built without the model (its summary call failed): the plan and the latest calls."""
        calls: list[str] = []
        for message in self.messages[1:]:
            content = message.get("content")
            if message.get("role") != "assistant" or not isinstance(content, list):
                continue
            for block in content:
                if isinstance(block, Mapping) and block.get("type") == "tool_use":
                    calls.append(
                        f"- {block.get('name')}: {one_line(json.dumps(block.get('input'))[:200], 200)}"
                    )
        return (
            "## Goal\nSee the first message.\n## Plan\n"
            + (self.plan or "(not stated)")
            + "\n## Latest tool calls\n"
            + "\n".join(calls[-20:])
        )

    def _done(self, text: str) -> None:
        """The model ended its turn without tools: verify, then finish or reflect."""
        assert self.task is not None
        if not self.task.edits_allowed:
            raise Submitted(text)
        changes = self.overlay.changes()
        if not changes or not self.settings.verify:
            raise Submitted(text)
        self._emit("stage", "verifying", stage="verify")
        self._decision("stage", stage="verify")
        result = self.verifier.verify(changes, trigger="finish")
        self._check_cancel()
        if result.failed:
            self._check_time()  # checks cut off by the time bound are no failure to reflect on
        self._verified[_diff_key(self.overlay.proposal_diff())] = result
        self._record_verification(result)
        if not result.failed:  # passed, or no tests ran: nothing for the model to fix
            raise Submitted(text)
        if result.environment_problem:  # not the model's to fix: no reflection is spent on it
            self._decision("environment_problem", problem=result.environment_problem)
            problem = result.environment_problem
            self._emit("stage", f"verification could not run: {problem}", stage="environment")
            raise Submitted(text)
        if self.reflections >= self.settings.max_reflections:
            self._decision("give_up", reflections=self.reflections, reason="max_reflections reached")
            raise Submitted(text)
        self.reflections += 1
        self._decision("reflection", number=self.reflections, failed=[c.name for c in result.failed])
        self._emit(
            "reflection",
            f"verification failed; asking the model to fix it ({self.reflections} of "
            f"{self.settings.max_reflections})",
            stage="reflect",
        )
        feedback = result.feedback(self.settings.max_test_output_chars)
        self._tell(
            f"Your change was verified and it does not pass yet.\n\n{feedback}\n\n"
            "Read the failures, say in a sentence or two what went wrong, fix the cause, and when "
            "you are done reply again without calling a tool. "
            f"(Attempt {self.reflections} of {self.settings.max_reflections} to fix it.)"
        )

    def _finish(self, text: str) -> tuple[RunStatus, str, Proposal | None]:
        assert self.task is not None
        self._decision("stage", stage="finish")
        summary = text.strip()
        if not self.task.edits_allowed:
            return "no_changes", self._with_links(summary or "(the model gave no answer)"), None
        changes = self.overlay.changes()
        if not changes:
            return "no_changes", self._with_links(summary or "No changes were needed."), None
        diff = self.overlay.proposal_diff()
        verification = self._verified.get(_diff_key(diff))
        summary = self._with_links(summary or "(the model gave no summary)")
        if not self.settings.verify:
            verification_summary = "Not verified: verification is off (agent.verify = false)."
        elif verification is None:
            verification_summary = "Not verified."
        else:
            verification_summary = verification.summary()
            if verification.failed and not verification.environment_problem:
                summary = (
                    f"WARNING: this change still fails verification after {self.reflections} attempt"
                    f"{'s' if self.reflections != 1 else ''} to fix it; review the failures before applying "
                    f"it.\n{verification_summary}\n\n{summary}"
                )
        proposal = self._proposal(
            summary,
            changes,
            diff,
            verified=verification is not None and verification.passed,
            verification_summary=verification_summary,
        )
        return "proposed", summary, proposal

    def _with_links(self, summary: str) -> str:
        """`summary` and the symbolic links commands changed, which no proposal holds (`agent.overlay`);
        recorded as a `symlinks` decision too."""
        try:
            links = self.overlay.symlink_changes()
        except Exception:  # only the note is lost
            log.exception("run %s: the symlinks commands changed cannot be listed", self.run_id)
            return summary
        if not links:
            return summary
        self._decision("symlinks", links=[link.note for link in links])
        return summary + "\n\nNot in the proposal:\n" + "\n".join(f"- {link.note}" for link in links)

    def _stopped_early(self, stop: LimitsExceeded) -> tuple[str, Proposal | None]:
        spent = {"allowed": stop.allowed, "used": stop.used} if stop.used is not None else {}
        self._decision("budget_stop", limit=stop.limit, message=stop.message, **spent)
        self._emit("stage", stop.message, stage="stopped")
        return self._keep_work(stop.message, stop.limit, early=True)

    def _keep_work(self, message: str, reason: str, *, early: bool = False) -> tuple[str, Proposal | None]:
        """The work so far as an unfinished proposal (never verified, `complete` False), if there is some.

        Every way a run can stop before it finishes ends here except cancellation, so no edit is dropped.
        """
        resume = f"`agentls runs resume {self.run_id}` continues the run."
        try:
            changes = self.overlay.changes() if self.task is not None and self.task.edits_allowed else []
        except Exception:  # the overlay itself failed: nothing to propose
            log.exception("run %s: the overlay's changes cannot be read", self.run_id)
            changes = []
        if not changes:
            if early:
                return self._with_links(f"The run stopped early with no changes. {message} {resume}"), None
            return self._with_links(f"{message} {resume}"), None
        summary = self._with_links(
            f"UNFINISHED: {message} The proposal holds the work so far; it was not verified and may be "
            f"incomplete. {resume}"
        )
        if not early:
            self._decision("kept_work", reason=reason, files=[change.path for change in changes])
        try:
            proposal = self._proposal(
                summary,
                changes,
                self.overlay.proposal_diff(),
                verified=False,
                verification_summary="Not verified: the run stopped before it finished.",
                complete=False,
            )
        except Exception:
            log.exception("run %s: the unfinished proposal could not be built", self.run_id)
            return summary, None
        return summary, proposal

    def _save_state(self, status: str, error: str | None) -> None:
        """Write the run's state next to its transcript so `agentls runs resume` can continue it."""
        if self.runs_dir is None or self.task is None or not self.messages:
            return
        try:
            files, renames, bases = overlay_files(self.overlay.changes())
            save_state(
                self.runs_dir,
                RunState(
                    run_id=self.run_id,
                    root=str(self.root),
                    task=self.task,
                    status=status,
                    bases=bases,
                    # Secret values stay placeholders on disk too, each text redacted with every value
                    # known now; remembered, so a save redacts only the texts new since the last one.
                    messages=self._redacted_messages(),
                    steps=self.steps,
                    reflections=self.reflections,
                    plan=self.plan,
                    usage=self.usage,
                    files=files,
                    renames=renames,
                    error=error,
                    resumed_from=self.resumed_from,
                    todos=self.todos.snapshot(),
                    roles=self.ledger.records(),
                    seconds=self.elapsed,
                ),
            )
        except Exception:  # the result still reaches the user; only resuming is lost
            log.exception("run %s: its state could not be saved for resuming", self.run_id)

    def _redacted_messages(self) -> list[dict[str, Any]]:
        """The conversation as saved for a resume: secret values as placeholders, each image as its name
        (a resumed run's model calls the tool again if it still needs to see it)."""
        messages = without_images(self.messages, _IMAGE_NOT_SAVED)
        if self.redaction is None:
            return messages
        return [self.redaction.current_value(message) for message in messages]

    def _proposal(
        self,
        summary: str,
        changes: list[FileChange],
        diff: str,
        *,
        verified: bool,
        verification_summary: str,
        complete: bool = True,
    ) -> Proposal:
        proposal = Proposal(
            proposal_id=new_proposal_id(),
            run_id=self.run_id,
            summary=summary,
            files=tuple(changes),
            diff=diff,
            usage=self.usage,
            cost=self.cost,
            verified=verified,
            verification_summary=verification_summary,
            complete=complete,
            roles=tuple(self.ledger.entries),
        )
        self.recorder.proposal(proposal)
        return proposal

    # -- records and events ------------------------------------------------------------------------

    def _project_prompt(self, task: Task) -> None:
        """The role's system prompt with the environment and the project's instruction files."""
        try:
            context, files = project_prompt(
                self.overlay.root,
                task.path,
                test_command=self.verifier.test_command(),
                redact=self.secrets.redact if self.secrets is not None else None,
                interpreter=self.verifier.interpreter,
                toolchains=self.verifier.toolchains,
            )
        except Exception:  # the prompt without them still works
            log.exception("run %s: the environment and project instructions could not be read", self.run_id)
            return
        self.system = self.role.system_prompt(context)
        self.instructions = [file.record() for file in files]

    def _record_start(self, task: Task) -> None:
        self.recorder.run_start(
            run_id=self.run_id,
            root=self.root,
            model=self.model.model_name,
            task=task,
            settings=self.settings,
            role=self.role.name,
            instructions=self.instructions,
        )

    def _record_verification(self, result: VerificationResult) -> None:
        self.verifications.append(result)
        self.recorder.verification(step=self.steps, result=result)
        verdict = result.verdict()
        self._emit("verification", f"verification {verdict}", verification=result)

    def _decision(self, kind: str, **fields: Any) -> None:
        self.recorder.decision(kind, step=self.steps, **fields)

    def _emit(self, kind: EventKind, message: str, **data: Any) -> None:
        if self.on_event is None:
            return
        event = AgentEvent(
            kind=kind,
            message=message,
            step=self.steps,
            usage=self.usage,
            cost=self.cost,
            data=MappingProxyType(dict(data)),
        )
        try:
            self.on_event(event)
        except Exception:  # a broken progress display must not end the run
            log.exception("the on_event callback failed on %s", kind)

    def _todos_changed(self, items: list[TodoItem]) -> None:
        """The todo list changed: record it and tell whoever drives the run ("todo" event)."""
        data = [item.as_dict() for item in items]
        self.recorder.todo(step=self.steps, items=data)
        done = sum(1 for item in items if item.status == "done")
        active = next((item.text for item in items if item.status == "in_progress"), "")
        self._emit(
            "todo",
            f"todo: {done} of {len(items)} done" + (f"; now: {one_line(active, 80)}" if active else ""),
            items=data,
        )

    def _check_cancel(self) -> None:
        if self.cancel.is_set():
            raise RunCancelled("cancelled")
