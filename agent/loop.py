"""The agent loop: a task in, a proposal out, short enough to read at once.

```
run(task)                     gather context once; first user turn = context + task + "spec and plan first"
  while True: step()
    step()  = query() + execute()
    query() : one model call on (system prompt, tool definitions, messages); usage, cost, budget check
    execute(): run the tool calls and append their results
               or, when the model ends its turn: verify the change; on failure, send the failures back
               as a user turn (at most max_reflections times); otherwise the run is done
```

What ends a run is an exception carrying its message, caught in one place in `run`, and the transcript
is finished in `finally`:

- `Submitted`: the model said it was done (and verification passed, or the reflections ran out): status
  "proposed" with a `Proposal`, or "no_changes" (nothing changed, or a question was answered);
- `LimitsExceeded`: max_steps, or the token or cost budget (`agent.usage.Budget`, checked after every
  call): status "budget_exhausted". The work so far is still proposed when there is some, flagged
  (`Proposal.complete` False, `verified` False, the summary starting with "UNFINISHED"), because an
  expensive run's partial edit is often most of the answer; the user decides;
- cancellation (`cancel` set, or Ctrl-C when `run` is on the main thread): status "cancelled", within
  about a second wherever the run is (model calls, commands and checks all watch `cancel`), and never a
  proposal;
- `ToolAbort` (say, no sandbox can be made) and model errors (`AuthenticationFailed`,
  `RetriesExhausted` ...): status "failed" with the error's actionable message.

Stages: *formalize* (the first turn states a spec with acceptance criteria and a plan, and may call
`ask_user`), *act* (tools), *verify* (`agent.verify.Verifier`, on "done" and on `run_tests`), *reflect*
(failures fed back), *finish* (the model's last text is the summary). Progress goes to `on_event` as
`AgentEvent`s.

Prompt caching: the system prompt, the tool definitions and the first user turn (the retrieved context
and the task) are built once and never change during the run, and messages are only ever appended, so
each request's prefix is byte-identical to the previous request's; the Anthropic provider's
`with_cache_breakpoints` puts the breakpoints.

The agent never writes the user's files: every edit lands in the overlay, commands run on materialized
copies, and the proposal is the overlay's difference from the base.

What the loop is *for* comes from its `agent.roles.Role` (default `SOLO`): the system prompt
(`Role.system_prompt`) and the tools (`agent.tools.toolset.toolset`, or a registry passed in as `tools`).
The loop builds nothing else: tools share the run's `ToolResources` (overlay, sandbox, verifier, index),
and every record goes through `agent.recorder.Recorder` to the transcript.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from agent.config import AgentSettings
from agent.context import Context, gather_context
from agent.models import Cancelled, ModelError, ModelResponse
from agent.overlay import FileChange, Overlay, OverlayError
from agent.paths import PathRefused
from agent.prompts import render_task_prompt
from agent.proposal import Proposal, new_proposal_id
from agent.recorder import Recorder
from agent.redaction import guard_tool_call
from agent.roles import SOLO, Role
from agent.sandbox import SandboxUnavailable
from agent.task import Task
from agent.tools import ANTHROPIC, ToolAbort, ToolError, ToolRegistry, ToolResult, one_line
from agent.tools.ask import AskCallback
from agent.tools.toolset import ToolResources, toolset
from agent.transcript import Transcript, new_run_id
from agent.usage import BudgetExceeded, Usage
from agent.verify import VerificationResult

if TYPE_CHECKING:
    from agent.ports import CodeIndex, EventSink, Model, Sandbox
    from indexing.secrets import Redactor

__all__ = [
    "Agent",
    "AgentEvent",
    "EventKind",
    "LimitsExceeded",
    "RunCancelled",
    "RunResult",
    "RunStatus",
    "Submitted",
]

log = logging.getLogger(__name__)

RunStatus = Literal["proposed", "no_changes", "failed", "cancelled", "budget_exhausted"]
EventKind = Literal[
    "stage", "plan", "text", "step", "tool_call", "tool_result", "verification", "reflection", "cost", "stop"
]

_CUT_OFF = (
    "Your reply was cut off at the output token limit. Continue from where you stopped, in smaller steps."
)


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


# --------------------------------------------------------------------------------------------------
# Control flow


class Submitted(Exception):
    """The model finished; `summary` is its last text."""

    def __init__(self, summary: str) -> None:
        super().__init__(summary)
        self.summary = summary


class LimitsExceeded(Exception):
    """A step limit or budget ended the run; the message says which and what to do."""

    def __init__(self, message: str, *, limit: str) -> None:
        super().__init__(message)
        self.message = message
        self.limit = limit


class RunCancelled(Exception):
    """The run was cancelled."""


class _ModelRefused(Exception):
    """The model declined the task (stop reason "refusal")."""


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
    """One run of the agent on one overlay. Create a new `Agent` for each run."""

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
    ) -> None:
        """`root` is the workspace root (the overlay's); `index` may be None (tools fall back to scans);
        `ask` answers `ask_user` (None: nobody can); `transcript` None writes no transcript. The system
        prompt and the tools come from `role` unless `system` and `tools` are given."""
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
        self.resources = ToolResources.create(
            settings,
            overlay,
            sandbox,
            index=index,
            ask=ask,
            cancel=self.cancel,
            scratch_dir=scratch_dir,
            on_verification=self._record_verification,
        )
        self.verifier = self.resources.verifier
        self._tools = tools
        # The run's `indexing.secrets.Redactor` when the model is an `agent.redaction.RedactingModel`.
        self.secrets: Redactor | None = getattr(model, "secrets", None)
        self._ran = False
        # Run state
        self.task: Task | None = None
        self.system = system if system is not None else role.system_prompt()
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

    # -- the run -----------------------------------------------------------------------------------

    @property
    def cost(self) -> float:
        """USD spent so far at list price."""
        return self.usage.cost(self.model.model_name, self.model.provider)

    def run(self, task: Task) -> RunResult:
        """Run `task` to the end; never raises for a failed run (see `RunResult.status`)."""
        if self._ran:
            raise RuntimeError("an Agent runs once; create a new Agent (with a new Overlay) for each run")
        self._ran = True
        self.task = task
        started = time.monotonic()
        status: RunStatus = "failed"
        summary = ""
        error: str | None = None
        proposal: Proposal | None = None
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
            summary = f"The run stopped: {error}"
        except _ModelRefused as refused:
            error = str(refused)
            summary = error
        except ModelError as failure:
            error = failure.message
            summary = f"The run failed: {error}"
        except Exception as failure:
            log.exception("agent run %s failed", self.run_id)
            error = f"internal error: {failure!r}. This is a bug in agentls; the transcript has the details."
            summary = f"The run failed: {error}"
        finally:
            if self.cancel.is_set() and status != "failed":
                # Cancelled while finishing: a cancelled run never proposes.
                status, proposal = "cancelled", None
                summary = "The run was cancelled; nothing was proposed."
            self.registry.close()
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
        self.steps += 1
        started = time.monotonic()
        try:
            self._emit("step", f"step {self.steps}")
            response = self.query()
            self.execute(response)
        finally:
            self.step_seconds.append(time.monotonic() - started)

    def query(self) -> ModelResponse:
        """One model call on the conversation so far; usage and cost are added and the budget checked."""
        self.recorder.request(
            step=self.steps,
            system=self.system,
            tools=self.tool_definitions,
            messages=self.messages,
            model=self.model.model_name,
        )
        response = self.model.complete(self.system, self.tool_definitions, self.messages, cancel=self.cancel)
        self.usage = self.usage + response.usage
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
        )
        self.messages.append(response.as_message())
        self._emit("cost", f"{self.usage.total_tokens:,} tokens, ${cost:.4f}")
        try:
            self.budget.check(self.usage, self.model.model_name, self.model.provider)
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
        if uses:
            results = []
            for use in uses:
                self._check_cancel()
                results.append(self._call_tool(use))
            self.messages.append({"role": "user", "content": results})
            self._check_cancel()
            return
        if response.stop_reason == "max_tokens":
            self.messages.append({"role": "user", "content": _CUT_OFF})
            return
        self._done(response.text)

    # -- stages ------------------------------------------------------------------------------------

    def _prepare(self, task: Task) -> None:
        self._emit("stage", "gathering context", stage="formalize")
        if self._tools is not None:
            self.registry = self._tools
        else:
            self.registry = toolset(self.role, self.resources, edits_allowed=task.edits_allowed)
        # Anthropic's API takes the built-in editor and bash types; other providers get plain functions.
        self.tool_definitions = self.registry.definitions(getattr(self.model, "provider", ANTHROPIC))
        context: Context | None
        try:
            context = gather_context(
                task,
                root=self.overlay.root,
                read_file=self._read_for_context,
                index=self.index,
                token_budget=self.settings.context_token_budget,
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
        prompt = self.role.first_turn(render_task_prompt(task, context), edits_allowed=task.edits_allowed)
        self.messages = [{"role": "user", "content": prompt}]

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
        self._emit("tool_call", description, name=name, input=input)
        self.recorder.tool_call(step=self.steps, id=tool_id, name=name, input=input)
        started = time.monotonic()
        try:  # placeholders of secret values back to the values; an edit that would change one is refused
            input = guard_tool_call(self.secrets, name, input, self._read_for_context)
        except ToolError as refused:
            result = ToolResult(str(refused), is_error=True)
        else:
            result = self.registry.execute(name, input)  # ToolAbort propagates and ends the run
        seconds = time.monotonic() - started
        content = _clip(result.content, self.settings.max_tool_result_chars) or "(no output)"
        self.recorder.tool_result(
            step=self.steps, id=tool_id, name=name, content=content, is_error=result.is_error, seconds=seconds
        )
        first = content.strip().split("\n", 1)[0] if content.strip() else ""
        self._emit(
            "tool_result",
            ("error: " if result.is_error else "") + one_line(first, 120),
            name=name,
            is_error=result.is_error,
        )
        block: dict[str, Any] = {"type": "tool_result", "tool_use_id": tool_id, "content": content}
        if result.is_error:
            block["is_error"] = True
        return block

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
        self._verified[_diff_key(self.overlay.proposal_diff())] = result
        self._record_verification(result)
        if result.passed:
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
        self.messages.append(
            {
                "role": "user",
                "content": (
                    f"Your change was verified and it does not pass yet.\n\n{feedback}\n\n"
                    "Read the failures, say in a sentence or two what went wrong, fix the cause, and when "
                    "you are done reply again without calling a tool. "
                    f"(Attempt {self.reflections} of {self.settings.max_reflections} to fix it.)"
                ),
            }
        )

    def _finish(self, text: str) -> tuple[RunStatus, str, Proposal | None]:
        assert self.task is not None
        self._decision("stage", stage="finish")
        summary = text.strip()
        if not self.task.edits_allowed:
            return "no_changes", summary or "(the model gave no answer)", None
        changes = self.overlay.changes()
        if not changes:
            return "no_changes", summary or "No changes were needed.", None
        diff = self.overlay.proposal_diff()
        verification = self._verified.get(_diff_key(diff))
        summary = summary or "(the model gave no summary)"
        if not self.settings.verify:
            verification_summary = "Not verified: verification is off (agent.verify = false)."
        elif verification is None:
            verification_summary = "Not verified."
        else:
            verification_summary = verification.summary()
            if not verification.passed:
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

    def _stopped_early(self, stop: LimitsExceeded) -> tuple[str, Proposal | None]:
        self._decision("budget_stop", limit=stop.limit, message=stop.message)
        self._emit("stage", stop.message, stage="stopped")
        changes = self.overlay.changes()
        if not changes:
            return f"The run stopped early with no changes. {stop.message}", None
        summary = (
            f"UNFINISHED: {stop.message} The proposal holds the work so far; it was not verified and may "
            "be incomplete."
        )
        proposal = self._proposal(
            summary,
            changes,
            self.overlay.proposal_diff(),
            verified=False,
            verification_summary="Not verified: the run stopped before it finished.",
            complete=False,
        )
        return summary, proposal

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
        )
        self.recorder.proposal(proposal)
        return proposal

    # -- records and events ------------------------------------------------------------------------

    def _record_start(self, task: Task) -> None:
        self.recorder.run_start(
            run_id=self.run_id,
            root=self.root,
            model=self.model.model_name,
            task=task,
            settings=self.settings,
            role=self.role.name,
        )

    def _record_verification(self, result: VerificationResult) -> None:
        self.verifications.append(result)
        self.recorder.verification(step=self.steps, result=result)
        verdict = "passed" if result.passed else f"FAILED ({len(result.failed)} of {len(result.checks)})"
        if not result.checks:
            verdict = "nothing to check"
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

    def _check_cancel(self) -> None:
        if self.cancel.is_set():
            raise RunCancelled("cancelled")
