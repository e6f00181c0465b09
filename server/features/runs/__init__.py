"""Agent runs in the language server, in four parts.

- `commands`: a run command's parsed arguments -> the `agent.task.Task` it asks for (pure).
- `proposals`: the proposal store (pending -> applying -> accepted, or rejected; empty for a run that
  changed nothing), `prepare_changes` (what to apply now, rebased onto the user's edits) and
  `proposal_hunks` (where a proposal's hunks start in an open buffer).
- `lenses`: the Accept / Reject / Show diff code lenses of pending proposals (pure).
- `manager`: `RunManager`, which starts runs, reports their progress, bridges clarifying questions and
  settles proposals, through the narrow `Editor` and `Workspace` ports (implemented by `server.lsp`).
"""

from server.features.runs.manager import (
    PROPOSAL,
    PROPOSAL_READY,
    RUN_FAILED,
    RUNS,
    Editor,
    RunManager,
    Workspace,
    request_failed,
)
from server.features.runs.proposals import (
    AcceptRefused,
    ProposalError,
    ProposalStore,
    prepare_changes,
    proposal_hunks,
)

__all__ = [
    "PROPOSAL",
    "PROPOSAL_READY",
    "RUNS",
    "RUN_FAILED",
    "AcceptRefused",
    "Editor",
    "ProposalError",
    "ProposalStore",
    "RunManager",
    "Workspace",
    "prepare_changes",
    "proposal_hunks",
    "request_failed",
]
