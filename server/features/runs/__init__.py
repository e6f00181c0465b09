"""Agent runs in the language server, in four parts.

- `commands`: a run command's parsed arguments -> the `agent.task.Task` it asks for (pure).
- `proposals`: the proposal store (pending -> applying -> accepted, or rejected; empty for a run that
  changed nothing), `prepare_changes` (what to apply now, rebased onto the user's edits) and
  `proposal_hunks` (where a proposal's hunks start in an open buffer).
- `lenses`: the Accept / Reject / Show diff code lenses of pending proposals (pure).
- `manager`: `RunManager`, which starts runs, reports their progress, bridges clarifying questions and
  settles proposals, through the narrow `Editor` and `Workspace` ports (implemented by `server.lsp`).

Per-hunk review (the contract with the editors): ``agentls/proposal`` lists, for each file, ``hunks:
[{id, oldStart, oldLines, newStart, newLines}]`` (1-based lines; one hunk per changed block of a modified
file, the blocks its ``diff`` shows, from the same line diff (`agent.hunks`): each ``-``/``+`` line of the
diff is in exactly one hunk, and each hunk in one ``@@`` section; one for the whole of a created, deleted
or renamed file; ids ``"<path>#<8 hex>"`` stay the same
while other hunks are accepted; lines are counted as editors count them, and a file whose lines end in a
lone ``\\r``, one line to git's ``diff``, also gets ``editorDiff``: its diff in those lines).
``agentls.accept {proposalId, hunks: [id, ...]}`` applies only those hunks (rebased like a whole accept)
and answers ``{proposalId, applied, pendingHunks}``: the rest stays pending as the proposal (its diff
and hunks in ``agentls/proposal``, ``verified: false``) until it is accepted (whole or by hunks) or
dropped with ``agentls.reject``; ``agentls.reverify {proposalId}`` verifies that rest on the current files
(sandboxed, as a run's verification) and answers the updated ``agentls/proposal`` details. An unknown
hunk id is an error answer; nothing is applied. Without ``hunks`` the whole proposal is accepted, as before.
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
