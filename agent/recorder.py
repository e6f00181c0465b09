"""The recorder: a run's facts as typed transcript records.

The loop reports what happens (the run started with these settings, a request went out, a response came
back, a tool was called, a check ran, a decision was taken, a proposal was made, the run ended) by calling
the `Recorder`; the recorder builds the typed record (one frozen dataclass per record type, below) and
hands it to `agent.transcript.Transcript`, which stores it as one JSON line (and scrubs secrets). Settings
are written with pydantic's `model_dump`, so a new setting reaches the transcript without an edit here,
their credentials masked (`agent.credential_fields.mask_settings`: an MCP server's ``env`` and ``headers``
values, credentials in URLs, ``"<set, 40 chars>"`` in their place).
A recorder without a transcript records nothing.

The record types and their fields are listed in `agent.transcript`'s docstring; the names of the fields
are the ones readers (`agentls runs`, `reconstruct_messages`) look for.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from agent.credential_fields import mask_settings
from agent.transcript import SCHEMA, Transcript

if TYPE_CHECKING:
    from agent.approval import Asked
    from agent.config import AgentSettings
    from agent.netproxy import ProxyRequest
    from agent.proposal import Proposal
    from agent.task import Task
    from agent.usage import Usage
    from agent.verify import VerificationResult

__all__ = [
    "NOT_SETTLED",
    "ProposalRecord",
    "Record",
    "Recorder",
    "ResponseRecord",
    "RunEndRecord",
    "RunStartRecord",
    "ToolCallRecord",
    "ToolResultRecord",
    "after_the_run",
    "task_record",
]


NOT_SETTLED = "not settled: the attempt ended before its settings were known"
"""`RunStartRecord.settled` of a ``run_start`` written without settings."""


class Record:
    """Base of the typed records: `type` names the record, the dataclass fields are its fields."""

    type: ClassVar[str]

    def fields(self) -> dict[str, Any]:
        """The record's fields, shallow (large values such as content blocks are not copied)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}  # type: ignore[arg-type]


def task_record(task: Task) -> dict[str, Any]:
    """What a transcript keeps of a task."""
    return {
        "kind": task.kind,
        "title": task.title,
        "instruction": task.instruction,
        "path": task.path,
        "range": list(task.range) if task.range else None,
        "symbol": task.symbol,
        "language": task.language,
    }


@dataclass(frozen=True)
class RunStartRecord(Record):
    """The run began: what it is for and how it is set up."""

    type: ClassVar[str] = "run_start"
    run_id: str
    root: str
    model: str
    task: Mapping[str, Any]
    settings: Mapping[str, Any]
    """`AgentSettings.model_dump(mode="json")`: every setting of the run, credentials masked
    (`agent.credential_fields.mask_settings`)."""
    role: str = "solo"
    instructions: Sequence[Mapping[str, Any]] = ()
    """The project instruction files in the system prompt (`agent.project`): path, bytes, truncated,
    omitted."""
    pid: int | None = None
    """The process running it: a run without run_end whose process is gone is not "running"."""
    schema: int = SCHEMA
    settled: str | None = None
    """Written only when `settings` are not the run's settled ones, saying what they are instead."""

    def fields(self) -> dict[str, Any]:
        """The record's fields; `settled` only when the settings are not settled."""
        data = super().fields()
        if self.settled is None:
            del data["settled"]
        return data


@dataclass(frozen=True)
class ResponseRecord(Record):
    """One model reply."""

    type: ClassVar[str] = "response"
    step: int
    content: Sequence[Any]
    stop_reason: str | None
    usage: Mapping[str, int]
    cost: float
    run_cost: float
    latency: float
    attempts: int
    request_id: str | None
    model: str | None
    role: str = "solo"
    """The role the call is charged to (`agent.costs`)."""
    node: str | None = None
    """The team graph's node the call ran in, if any."""


@dataclass(frozen=True)
class ToolCallRecord(Record):
    """A tool call the model asked for."""

    type: ClassVar[str] = "tool_call"
    step: int
    id: str
    name: str
    input: Any


@dataclass(frozen=True)
class ToolResultRecord(Record):
    """What a tool call returned (as sent to the model)."""

    type: ClassVar[str] = "tool_result"
    step: int
    id: str
    name: str
    content: str
    is_error: bool
    seconds: float
    images: tuple[Mapping[str, Any], ...] = ()
    """The images sent beside `content`: type, pixels, bytes and SHA-256 each, never the image itself
    (the request record keeps it as a file beside the transcript, `agent.transcript`)."""

    def fields(self) -> dict[str, Any]:
        """The record's fields; `images` only when there are some."""
        data = super().fields()
        if not self.images:
            del data["images"]
        return data


@dataclass(frozen=True)
class ProposalRecord(Record):
    """The change proposed to the user."""

    type: ClassVar[str] = "proposal"
    proposal_id: str
    summary: str
    verified: bool
    complete: bool
    verification_summary: str
    diff: str
    files: Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class RunEndRecord(Record):
    """How the run ended."""

    type: ClassVar[str] = "run_end"
    status: str
    summary: str
    error: str | None
    usage: Mapping[str, int]
    cost: float
    steps: int
    reflections: int
    proposal_id: str | None
    seconds: float
    step_seconds: Sequence[float]
    roles: Sequence[Mapping[str, Any]] = ()
    """Usage, cost and calls per role and node (`agent.costs.CostLedger.records`); they add up to
    `usage` and `cost`."""


class Recorder:
    """Writes one run's records to its transcript (or nowhere when there is none)."""

    def __init__(self, transcript: Transcript | None) -> None:
        self.transcript = transcript

    @property
    def path(self) -> Path | None:
        """The transcript file, None when nothing is recorded."""
        return self.transcript.path if self.transcript is not None else None

    def close(self) -> None:
        """Close the transcript's file (records written so far stay; a later one opens it again)."""
        if self.transcript is not None:
            self.transcript.close()

    def write(self, record: Record) -> None:
        """Store one typed record."""
        if self.transcript is not None:
            self.transcript.write(record.type, **record.fields())

    def run_start(
        self,
        *,
        run_id: str,
        root: Path,
        model: str,
        task: Task,
        settings: AgentSettings | None,
        role: str,
        instructions: Sequence[Mapping[str, Any]] = (),
        settled: str | None = None,
    ) -> None:
        """The run began. `settings` None: an attempt that ended before its settings were known
        (`agent.runner.record_unstarted`), written as ``{}`` with `settled` saying so. `settled`: the
        settings written are not the run's settled ones, and what they are instead."""
        if settings is None and settled is None:
            settled = NOT_SETTLED
        self.write(
            RunStartRecord(
                run_id=run_id,
                root=str(root),
                model=model,
                task=task_record(task),
                settings=mask_settings(settings.model_dump(mode="json")) if settings is not None else {},
                role=role,
                instructions=list(instructions),
                pid=os.getpid(),
                settled=settled,
            )
        )

    def request(
        self,
        *,
        step: int,
        system: str | Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]],
        messages: Sequence[Mapping[str, Any]],
        model: str,
    ) -> None:
        """A model request (the transcript stores the repeating prefix once, by hash)."""
        if self.transcript is not None:
            self.transcript.request(step=step, system=system, tools=tools, messages=messages, model=model)

    def rewound(self, index: int) -> None:
        """The conversation was rewritten from message `index` on (see `Transcript.rewound`)."""
        if self.transcript is not None:
            self.transcript.rewound(index)

    def response(
        self,
        *,
        step: int,
        content: Sequence[Any],
        stop_reason: str | None,
        usage: Usage,
        model_name: str,
        run_cost: float,
        latency: float,
        attempts: int,
        request_id: str | None,
        model: str | None,
        provider: str = "anthropic",
        role: str = "solo",
        node: str | None = None,
    ) -> None:
        """One model reply with its usage and cost (`model_name` from `provider` prices it), charged to
        `role` (in `node`)."""
        self.write(
            ResponseRecord(
                step=step,
                content=list(content),
                stop_reason=stop_reason,
                usage=usage.as_dict(),
                cost=round(usage.cost(model_name, provider), 6),
                run_cost=round(run_cost, 6),
                latency=round(latency, 4),
                attempts=attempts,
                request_id=request_id,
                model=model,
                role=role,
                node=node,
            )
        )

    def tool_call(self, *, step: int, id: str, name: str, input: Any) -> None:
        """A tool call, before it runs."""
        self.write(ToolCallRecord(step=step, id=id, name=name, input=input))

    def tool_result(
        self,
        *,
        step: int,
        id: str,
        name: str,
        content: str,
        is_error: bool,
        seconds: float,
        images: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        """A tool call's result (`images`: what describes each image sent with it)."""
        self.write(
            ToolResultRecord(
                step=step,
                id=id,
                name=name,
                content=content,
                is_error=is_error,
                seconds=round(seconds, 4),
                images=tuple(images),
            )
        )

    def verification(self, *, step: int, result: VerificationResult) -> None:
        """Checks run on the change (on finish or through `run_tests`)."""
        if self.transcript is not None:
            self.transcript.write("verification", step=step, **result.as_record())

    def decision(self, kind: str, **details: Any) -> None:
        """A stage change, a reflection, a stop, the context gathered: `kind` and its details."""
        if self.transcript is not None:
            self.transcript.write("decision", kind=kind, **details)

    def todo(self, *, step: int, items: Sequence[Mapping[str, Any]]) -> None:
        """The run's todo list after a change (`agent.tools.todo`)."""
        if self.transcript is not None:
            self.transcript.write("todo", step=step, items=list(items))

    def proposal(self, proposal: Proposal) -> None:
        """The proposal of the run."""
        self.write(
            ProposalRecord(
                proposal_id=proposal.proposal_id,
                summary=proposal.summary,
                verified=proposal.verified,
                complete=proposal.complete,
                verification_summary=proposal.verification_summary,
                diff=proposal.diff,
                files=[
                    {"path": f.path, "kind": f.kind, "old_path": f.old_path, "diff": f.diff}
                    for f in proposal.files
                ],
            )
        )

    def network(self, request: ProxyRequest) -> None:
        """A request from the sandbox through the run's registry proxy, allowed or refused
        (`agent.netsandbox`): ``network`` record with method, host, port, target, allowed, reason."""
        if self.transcript is not None:
            self.transcript.write("network", **asdict(request))

    def answered(self, asked: Asked, **outcome: Any) -> None:
        """A question asked outside the run's loop and its answer (`agent.approval.Asked`: ``agentls acp``'s
        trust questions before the run, its proposal's permission after): an ``approval`` record with when
        the answer came and `outcome`'s fields (what was asked about, what came of it)."""
        if self.transcript is not None:
            kind, fields = asked.record()
            self.transcript.write(kind, **fields, **outcome)

    def proposal_answered(
        self,
        proposal_id: str,
        *,
        question: str,
        outcome: str,
        answer: str | None,
        files: Sequence[str],
        reason: str | None = None,
        **more: Any,
    ) -> None:
        """The user's answer to the run's proposal, after its ``run_end``: an ``approval`` of subject
        ``proposal`` (`outcome` "allowed", "rejected", "cancelled" or "unanswered"; `files`: the paths the
        answer covers; `more`: e.g. the ``hunks`` accepted), as ``agentls acp`` writes it."""
        from agent.approval import Asked

        asked = Asked("proposal", proposal_id, question, outcome == "allowed", answer, reason)
        self.answered(asked, outcome=outcome, files=list(files), **more)

    def proposal_applied(
        self, proposal_id: str, *, written: Sequence[str], error: str | None, **more: Any
    ) -> None:
        """What came of an allowed proposal: the paths `written`, or the `error` that stopped the writes."""
        self.decision("proposal_applied", proposal_id=proposal_id, written=list(written), error=error, **more)

    def approval(
        self, *, subject: str, detail: str, question: str, approved: bool, answer: str | None
    ) -> None:
        """The user's answer to an approval question (`agent.approval`)."""
        if self.transcript is not None:
            self.transcript.write(
                "approval",
                subject=subject,
                detail=detail,
                question=question,
                approved=approved,
                answer=answer,
            )

    def run_end(
        self,
        *,
        status: str,
        summary: str,
        error: str | None,
        usage: Usage,
        cost: float,
        steps: int,
        reflections: int,
        proposal_id: str | None,
        seconds: float,
        step_seconds: Sequence[float],
        roles: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        """How the run ended; closes the transcript."""
        self.write(
            RunEndRecord(
                status=status,
                summary=summary,
                error=error,
                usage=usage.as_dict(),
                cost=round(cost, 6),
                steps=steps,
                reflections=reflections,
                proposal_id=proposal_id,
                seconds=round(seconds, 3),
                step_seconds=[round(s, 4) for s in step_seconds],
                roles=list(roles),
            )
        )
        if self.transcript is not None:
            self.transcript.close()


def after_the_run(path: Path, *, root: Path | None, redact: Iterable[str] = ()) -> Recorder:
    """A recorder appending to the transcript `path` of a run that has ended (what the user did with its
    proposal: `Recorder.proposal_answered`, `Recorder.proposal_applied`): `t` goes on from the run's
    clock (`Transcript.continued`), each record fsync'd, its strings through the secret redactor of the
    runs folder's cache and `redact` (the run's credentials) withheld. Close it when done."""
    from agent.redaction import secret_redactor

    path = Path(path)
    secrets = secret_redactor(path.parent.parent, root=root)
    return Recorder(Transcript.continued(path, redact=redact, secrets=secrets, durable=True))
