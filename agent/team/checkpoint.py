"""A team run's checkpoint: where in its graph it is and the handoffs so far, for resuming at a node.

After every node (and every work item, and every review round) the engine writes
`<runs_dir>/<run_id>.team.json` (0600) beside the run's transcript and its `agent.resume.RunState` (which
holds the task and the changed files). `agentls runs resume ID` (`agent.runner.start_run(resume=...)`)
finds the checkpoint and restarts the graph at `next_node`: a node that failed runs again, nodes that
finished do not; a work-items node skips the items that already have a result, and a review node stopped
in a fix round (`fixing`) goes on with that fix before QA reviews again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agent.apply import write_atomic
from agent.team.graph import Graph

__all__ = ["TeamState", "checkpoint_path", "load_checkpoint", "save_checkpoint"]


class TeamState(BaseModel):
    """The state object the graph's nodes read and write."""

    model_config = ConfigDict(extra="ignore")

    graph: Graph
    next_node: int = 0
    """Index of the node to run next (the failed one, after a failure)."""
    spec: dict[str, Any] | None = None
    spec_pending: bool = False
    """The spec waits for the user's confirmation (`agent.team.confirm_spec`), asked before the next node."""
    design: dict[str, Any] | None = None
    results: list[dict[str, Any]] = Field(default_factory=list)
    """`WorkResult`s in the order the coders submitted them."""
    reviews: list[dict[str, Any]] = Field(default_factory=list)
    rounds: int = 0
    """Failed reviews sent back to a fixer so far, all review nodes together (the run's reflections)."""
    review_rounds: dict[str, int] = Field(default_factory=dict)
    """Failed reviews sent back to a fixer so far, per review node: each node has its own `max_rounds`."""
    review_end: str | None = None
    """Why the last review loop ended with QA still rejecting (its rounds ran out, or its fixer changed
    nothing), for the proposal's warning; None when the last review passed."""
    fixing: dict[str, Any] | None = None
    """The fix round a review node is in: ``{node, round, item, digest}`` (the FIX `WorkItem` and the
    digest of the work QA rejected), None between rounds. A run stopped in it resumes with that fixer, not
    with QA judging the unfinished fix with the round already counted."""
    roles: list[dict[str, Any]] = Field(default_factory=list)
    """The run's cost ledger (`agent.costs.CostLedger.records`): per role and node its usage (cached and
    uncached input apart), cost and calls, the explore sub-agents' under their own role. It is the one
    account of what the run spent, restored as it was on resume. (Checkpoints written before it held
    one ``{role, node, inputTokens, outputTokens, cost}`` per agent run, which still load.)"""
    todos: list[dict[str, Any]] = Field(default_factory=list)
    """The run's todo list (`agent.tools.todo`) as it stood."""
    steps: int = 0
    node_seconds: dict[str, float] = Field(default_factory=dict)
    """Wall-clock seconds per node so far, resumed parts included: what a node's `max_minutes` counts."""

    @model_validator(mode="after")
    def _per_node_rounds(self) -> TeamState:
        """A checkpoint from before `review_rounds` counted one total: it is the stopped review node's."""
        if self.rounds and not self.review_rounds and self.graph.nodes:
            node = self.graph.nodes[min(self.next_node, len(self.graph.nodes) - 1)]
            if node.type == "review":
                self.review_rounds[node.name] = self.rounds
        return self


def checkpoint_path(runs_dir: Path, run_id: str) -> Path:
    """Where the checkpoint of team run `run_id` is kept."""
    return Path(runs_dir) / f"{run_id}.team.json"


def save_checkpoint(runs_dir: Path, run_id: str, state: TeamState) -> Path:
    """Write `state` atomically (0600)."""
    path = checkpoint_path(runs_dir, run_id)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_atomic(path, state.model_dump_json(indent=1), 0o600)
    return path


def load_checkpoint(runs_dir: Path, run_id: str) -> TeamState | None:
    """The checkpoint of `run_id`, or None when it was not a team run (or the file is unreadable)."""
    path = checkpoint_path(runs_dir, run_id)
    try:
        return TeamState.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None
