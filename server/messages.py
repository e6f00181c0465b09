"""The replies and notifications agentls sends to the editor, as types, and their one conversion to JSON.

Handlers and feature modules build these dataclasses; `to_json` turns one into the plain JSON the editor
receives: field names in camelCase (``run_id`` -> ``runId``), nested dataclasses, lists and mappings
converted alike, and a field marked `omit_none` left out when it is None (others are sent as ``null``).
The wire format is what the VS Code extension and the Neovim plugin read; tests/server/test_messages.py
pins each reply to its JSON.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "AcceptResult",
    "CancelResult",
    "DiffShown",
    "HunkInfo",
    "ProposalDetails",
    "ProposalFile",
    "ProposalFileDetails",
    "ProposalReady",
    "Reindexed",
    "RejectResult",
    "RunEvent",
    "RunFailed",
    "RunInfo",
    "RunStarted",
    "SearchResult",
    "ServerStats",
    "omit_none",
    "to_json",
]

_OMIT = "agentls_omit_none"


def omit_none() -> Any:
    """A dataclass field that defaults to None and is left out of the JSON while it is None."""
    return field(default=None, metadata={_OMIT: True})


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def to_json(value: Any) -> Any:
    """The JSON the editor gets for a reply (a dataclass from this module, or lists and dicts of them)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(value):
            item = getattr(value, f.name)
            if item is None and f.metadata.get(_OMIT):
                continue
            out[_camel(f.name)] = to_json(item)
        return out
    if isinstance(value, Mapping):
        return {key: to_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(item) for item in value]
    return value


# -- runs -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunStarted:
    """The answer to a command that starts a run."""

    run_id: str


@dataclass(frozen=True)
class CancelResult:
    """The answer to ``agentls.cancel``: ``cancelling``, or the status of a run that already ended."""

    run_id: str
    status: str


@dataclass(frozen=True)
class RunEvent:
    """``agentls/runEvent``: a team run's handoff, todo list or role change (`agent.team`), or a warning
    of any run (``message``)."""

    run_id: str
    kind: str
    """"handoff", "todo", "role" or "warning"."""
    role: str | None = omit_none()
    node: str | None = omit_none()
    handoff: str | None = omit_none()
    document: Mapping[str, Any] | None = omit_none()
    markdown: str | None = omit_none()
    items: list[Any] | None = omit_none()  # noqa: RUF009 (the default is None)
    state: str | None = omit_none()
    message: str | None = omit_none()
    """A warning's text (what happened and what to do)."""
    subject: str | None = omit_none()
    """What a warning is about ("interpreter", "mcp_server")."""


@dataclass(frozen=True)
class RunFailed:
    """``agentls/runFailed``: a run ended without a proposal (``failed`` or ``cancelled``)."""

    run_id: str
    message: str
    status: str


@dataclass(frozen=True)
class RunInfo:
    """One entry of ``agentls/runs``."""

    run_id: str
    task: str
    kind: str
    status: str
    usage: Mapping[str, int]
    cost: float
    proposal_id: str | None
    message: str


# -- proposals --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProposalFile:
    """A file of ``agentls/proposalReady``."""

    uri: str
    path: str
    kind: str


@dataclass(frozen=True)
class ProposalReady:
    """``agentls/proposalReady``: a run ended with a proposal (``files`` empty when it changed nothing)."""

    proposal_id: str
    run_id: str
    summary: str
    files: list[ProposalFile]
    status: str


@dataclass(frozen=True)
class HunkInfo:
    """A hunk of a file of ``agentls/proposal``: its id for ``agentls.accept {hunks}`` and its lines
    (1-based first line and count, in the file's text before and after the change)."""

    id: str
    old_start: int
    old_lines: int
    new_start: int
    new_lines: int


@dataclass(frozen=True)
class ProposalFileDetails:
    """A file of ``agentls/proposal``, with its diff (and where it came from, for a rename)."""

    uri: str
    path: str
    kind: str
    diff: str
    old_uri: str | None = omit_none()
    hunks: list[HunkInfo] = field(default_factory=list)
    editor_diff: str | None = omit_none()
    """The diff in the lines the editor shows, for a file whose lines end in a lone ``\\r`` (git's `diff`
    shows them as one line); left out for every other file."""


@dataclass(frozen=True)
class ProposalDetails:
    """The answer to ``agentls/proposal``."""

    proposal_id: str
    run_id: str
    summary: str
    diff: str
    files: list[ProposalFileDetails]
    usage: Mapping[str, int]
    cost: float
    verified: bool
    verification_summary: str
    complete: bool
    status: str
    team: Mapping[str, Any] | None = omit_none()
    """Team runs: ``{spec, design, review}`` (JSON objects or null); left out for solo runs."""
    commit_message: str = ""
    """The message ``agentls.acceptAndCommit`` uses unless the editor sends the user's edit of it."""
    roles: list[Mapping[str, Any]] | None = omit_none()  # noqa: RUF009 (the default is None)
    """Usage and cost per role: ``[{role, inputTokens, outputTokens, cost}]`` (``node`` in team runs),
    adding up to ``usage`` and ``cost`` (`agent.costs.RoleCost.payload`); left out when unknown."""


@dataclass(frozen=True)
class AcceptResult:
    """The answer to ``agentls.accept``: whether the editor applied the edit, and why not."""

    proposal_id: str
    applied: bool
    failure_reason: str | None = omit_none()
    pending_hunks: list[str] | None = omit_none()  # noqa: RUF009 (the default is None)
    """After a partial accept: the hunks still pending (the proposal stays pending with them)."""


@dataclass(frozen=True)
class CommitResultMessage:
    """The answer to ``agentls.acceptAndCommit``: the accept's outcome and the commit made."""

    proposal_id: str
    applied: bool
    commit: str | None = omit_none()
    branch: str | None = omit_none()
    message: str | None = omit_none()
    failure_reason: str | None = omit_none()


@dataclass(frozen=True)
class RejectResult:
    """The answer to ``agentls.reject``."""

    proposal_id: str
    rejected: bool = True


@dataclass(frozen=True)
class DiffShown:
    """The answer to ``agentls.showDiff``: where the diff was written, and the diff."""

    uri: str
    diff: str


# -- the server -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchResult:
    """One hit of ``agentls/search``; ``range`` is an LSP range in the negotiated position encoding."""

    path: str
    uri: str
    range: Mapping[str, Any]
    symbol: str | None
    kind: str | None
    language: str | None
    score: float
    text: str


@dataclass(frozen=True)
class ServerStats:
    """The answer to ``agentls/serverStats``."""

    version: str
    position_encoding: str
    folders: list[str]
    documents: int
    loop: Mapping[str, Any] | None
    indexing: Mapping[str, str]
    indexing_idle: bool
    settings: Mapping[str, Any]
    """The settings in force, credentials masked (`agent.credential_fields.mask_settings`)."""


@dataclass(frozen=True)
class Reindexed:
    """The answer to ``agentls.reindex``: the folders queued for a full index."""

    folders: list[str]
