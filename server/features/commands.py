"""The ``agentls.*`` commands: their names (a contract with the editor extensions) and their arguments.

Each command takes one JSON object as its only argument (``arguments: [{...}]``); the editor extensions
in ``editors/`` send them in that shape.
`parse_arguments` validates it into a frozen model and raises `CommandArgumentError` with a message
naming the command and the field, which the server returns as ``-32602 Invalid params``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = [
    "ACCEPT",
    "ACCEPT_AND_COMMIT",
    "AGENT_COMMANDS",
    "ALL_COMMANDS",
    "ASK",
    "CANCEL",
    "EDIT",
    "FIX",
    "IMPLEMENT",
    "REINDEX",
    "REJECT",
    "REVERIFY",
    "RUN",
    "RUN_COMMANDS",
    "SHOW_DIFF",
    "WRITE_TESTS",
    "AcceptArgs",
    "AskArgs",
    "CancelArgs",
    "CommandArgumentError",
    "EditArgs",
    "FixArgs",
    "ImplementArgs",
    "PositionArg",
    "ProposalArgs",
    "RangeArg",
    "ReindexArgs",
    "RunArgs",
    "ShowDiffArgs",
    "WriteTestsArgs",
    "parse_arguments",
]

IMPLEMENT = "agentls.implement"
FIX = "agentls.fix"
WRITE_TESTS = "agentls.writeTests"
EDIT = "agentls.edit"
ASK = "agentls.ask"
RUN = "agentls.run"
"""Start any run: ``{instruction, mode?: "solo" | "team" | <graph name>, uri?, range?}``."""
ACCEPT = "agentls.accept"
ACCEPT_AND_COMMIT = "agentls.acceptAndCommit"
"""Accept, then commit the change on the current branch (``{proposalId, message?, hunks?}``)."""
REJECT = "agentls.reject"
CANCEL = "agentls.cancel"
SHOW_DIFF = "agentls.showDiff"
"""What the "Show diff" code lens runs (``{proposalId, uri?}``)."""
REINDEX = "agentls.reindex"
REVERIFY = "agentls.reverify"
"""Verify what is left of a pending proposal (``{proposalId}``); answers its ``agentls/proposal`` details."""
RESUME = "agentls.resume"
"""Continue a stopped run from its saved state (``{runId}``); answers ``{runId}`` of the new run."""

RUN_COMMANDS: tuple[str, ...] = (IMPLEMENT, FIX, WRITE_TESTS, EDIT, ASK, RUN)
"""Commands that start an agent run (they answer ``{runId}`` at once)."""
AGENT_COMMANDS: tuple[str, ...] = (
    IMPLEMENT,
    FIX,
    WRITE_TESTS,
    EDIT,
    ASK,
    RUN,
    ACCEPT,
    ACCEPT_AND_COMMIT,
    REJECT,
    CANCEL,
    SHOW_DIFF,
)
"""Commands that start, steer or settle agent runs."""
ALL_COMMANDS: tuple[str, ...] = (*AGENT_COMMANDS, REINDEX, RESUME, REVERIFY)


class CommandArgumentError(ValueError):
    """A command's arguments do not fit; the message says which and how."""


class _Args(BaseModel):
    # Unknown keys are ignored: an editor may send more than we read. Strict: a line given as "0", 0.0 or
    # true is a wrong argument (-32602), not coerced into a run the client did not mean.
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True, strict=True)


class PositionArg(_Args):
    line: int = Field(ge=0)
    character: int = Field(ge=0)


class RangeArg(_Args):
    start: PositionArg
    end: PositionArg


class ImplementArgs(_Args):
    uri: str = Field(min_length=1)
    position: PositionArg


class WriteTestsArgs(ImplementArgs):
    pass


class FixArgs(_Args):
    uri: str = Field(min_length=1)
    range: RangeArg
    diagnostics: list[dict[str, Any]] = Field(default_factory=list)


class EditArgs(_Args):
    uri: str = Field(min_length=1)
    range: RangeArg
    instruction: str = Field(min_length=1)


class AskArgs(_Args):
    question: str = Field(min_length=1)
    uri: str | None = None
    range: RangeArg | None = None


class RunArgs(_Args):
    instruction: str = Field(min_length=1)
    mode: str = "solo"
    """"solo", "team" or a graph of the workspace's settings (``agentls graph show``)."""
    uri: str | None = None
    range: RangeArg | None = None


class ProposalArgs(_Args):
    proposal_id: str = Field(alias="proposalId", min_length=1)


class AcceptArgs(ProposalArgs):
    hunks: list[str] | None = None
    """Hunk ids of ``agentls/proposal`` to accept; None: the whole proposal."""


class AcceptAndCommitArgs(ProposalArgs):
    message: str | None = None
    """The commit message as the user edited it; None uses the proposal's."""
    hunks: list[str] | None = None
    """Hunk ids of ``agentls/proposal`` to accept and commit; None: the whole proposal."""


class CancelArgs(_Args):
    run_id: str = Field(alias="runId", min_length=1)


class ShowDiffArgs(ProposalArgs):
    uri: str | None = None


class ReindexArgs(_Args):
    pass


ARGUMENTS: dict[str, type[_Args]] = {
    IMPLEMENT: ImplementArgs,
    FIX: FixArgs,
    WRITE_TESTS: WriteTestsArgs,
    EDIT: EditArgs,
    ASK: AskArgs,
    RUN: RunArgs,
    ACCEPT: AcceptArgs,
    ACCEPT_AND_COMMIT: AcceptAndCommitArgs,
    REJECT: ProposalArgs,
    CANCEL: CancelArgs,
    SHOW_DIFF: ShowDiffArgs,
    REINDEX: ReindexArgs,
    RESUME: CancelArgs,
    REVERIFY: ProposalArgs,
}
"""The argument model of each command."""

M = TypeVar("M", bound=_Args)


def parse_arguments(command: str, model: type[M], arguments: Sequence[Any] | None) -> M:
    """The command's one object argument, validated. Commands without required fields accept none."""
    args = list(arguments or [])
    if len(args) > 1:
        raise CommandArgumentError(f"{command} takes one object argument, got {len(args)} arguments")
    value = args[0] if args else {}
    if not isinstance(value, dict):
        raise CommandArgumentError(
            f"{command} takes one object argument, got {type(value).__name__}: {str(value)[:80]}"
        )
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        problems = "; ".join(
            f"`{'.'.join(str(p) for p in err['loc']) or 'argument'}`: {err['msg']}" for err in exc.errors()
        )
        raise CommandArgumentError(f"invalid arguments for {command}: {problems}") from None
