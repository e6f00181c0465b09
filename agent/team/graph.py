"""Team graphs as data: nodes of a few types run in order, with QA's loop back to a coder.

Node types:

- ``role``: one agent of a team role (`agent.roles`) runs once and submits its handoff (the planner a
  `Spec`, the architect a `Design`, a coder a `WorkResult`, QA a `Review`);
- ``work_items``: fan-out: one agent of the node's role (a coder) per work item of the design, one after
  another on the same overlay (without a design: one work item made from the spec);
- ``review``: QA (the node's role) reviews the change; when the review fails, a `fixer` (a coder) gets its
  findings and QA reviews again, at most `max_rounds` failed rounds of this node (each review node has
  its own; None: `agent.team.max_rounds`, else `agent.max_reflections`); after the last failed round,
  or a fix that changed no file (`agent.team.engine`), the run proposes what it has, flagged;
- ``solo``: today's single agent loop (`agent.loop.Agent` with the solo role); only as a graph's one node.

Edges are the node order; the one conditional edge is a review node's loop (fail -> fixer -> review).
A graph or node with a key it does not have (``edges``, ``next``) is refused, naming the key, rather than
run in the written order without it.
Shipped graphs (`BUILTIN`): `solo` (the default) and `team` (planner -> architect -> coders -> QA).
A workspace defines more in ``agentls.toml`` (`agent.team.config.TeamSettings.graphs`):

```toml
[[agent.team.graphs.quick.nodes]]
name = "plan"
role = "planner"
[[agent.team.graphs.quick.nodes]]
name = "code"
type = "work_items"
role = "coder"
```

`describe(graph)` and `mermaid(graph)` print a graph (`agentls graph show NAME`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agent.roles import ROLES

__all__ = ["BUILTIN", "SOLO_GRAPH", "TEAM_GRAPH", "Graph", "GraphNotFound", "Node", "describe", "mermaid"]

NodeType = Literal["role", "work_items", "review", "solo"]


_NO_EDGES = (
    "nodes run in the order they are written, and the only way back is a review node's loop to its fixer "
    '(type = "review"); `agentls graph show team` prints an example'
)


def _known_keys(model: type[BaseModel], data: Any, what: str) -> Any:
    """`data` for `model`, or an error naming its unknown keys: a graph written with edges (``next``,
    ``edges``, a cycle) must not run in another order than its author meant, edges left out."""
    if isinstance(data, Mapping):
        unknown = sorted(str(key) for key in set(data) - set(model.model_fields))
        if unknown:
            fields = ", ".join(model.model_fields)
            raise ValueError(f"{what} has no {', '.join(map(repr, unknown))} (only {fields}); {_NO_EDGES}")
    return data


class Node(BaseModel):
    """One node of a graph, with its own bounds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _keys(cls, data: Any) -> Any:
        return _known_keys(cls, data, "a node")

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]*$")
    """Unique in its graph; names the node in events, checkpoints and the transcript."""
    type: NodeType = "role"
    role: str
    """The role that runs (planner, architect, coder, qa; solo for a solo node)."""
    fixer: str = "coder"
    """Review nodes: the role that fixes what QA found."""
    max_rounds: int | None = Field(default=None, ge=0)
    """Review nodes: failed reviews of this node sent back to the fixer (each review node counts its own);
    None: `agent.team.max_rounds`, else `agent.max_reflections`."""
    max_steps: int | None = Field(default=None, ge=1)
    """Model turns of each agent this node runs; None: `agent.max_steps`."""
    max_cost_usd: float | None = Field(default=None, ge=0)
    """USD this node may spend in all (the run's own budget still applies); None: no node limit."""
    max_minutes: float | None = Field(default=None, ge=0)
    """Wall-clock minutes this node may take in all, resumed parts included (the run's own
    `agent.max_minutes` still applies); None: no node limit."""


class Graph(BaseModel):
    """A named flow of nodes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = ""
    description: str = ""
    nodes: tuple[Node, ...] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _keys(cls, data: Any) -> Any:
        return _known_keys(cls, data, "a graph")

    @model_validator(mode="after")
    def _check(self) -> Graph:
        names = [node.name for node in self.nodes]
        if len(set(names)) != len(names):
            raise ValueError(f"node names must be unique; got {', '.join(names)}")
        for node in self.nodes:
            if node.type == "solo":
                if len(self.nodes) != 1 or node.role != "solo":
                    raise ValueError("a solo node (role solo) can only be a graph's one node")
                continue
            for name in (node.role, node.fixer) if node.type == "review" else (node.role,):
                role = ROLES.get(name)
                if role is None or role.handoff is None:
                    team = ", ".join(r for r, v in ROLES.items() if v.handoff)
                    raise ValueError(f"node {node.name!r}: {name!r} is not a team role ({team})")
            handoff = ROLES[node.role].handoff
            if node.type == "work_items" and handoff != "WorkResult":
                raise ValueError(f"node {node.name!r}: work_items needs a coder role, not {node.role!r}")
            if node.type == "review" and handoff != "Review":
                raise ValueError(f"node {node.name!r}: review needs the qa role, not {node.role!r}")
            if node.type == "review" and ROLES[node.fixer].handoff != "WorkResult":
                raise ValueError(f"node {node.name!r}: the fixer must be a coder role, not {node.fixer!r}")
        return self

    @property
    def solo(self) -> bool:
        """True for a graph that is today's single loop."""
        return self.nodes[0].type == "solo"


SOLO_GRAPH = Graph(
    name="solo",
    description="one agent: spec, plan, edit, verify, reflect (today's loop)",
    nodes=(Node(name="agent", type="solo", role="solo"),),
)
TEAM_GRAPH = Graph(
    name="team",
    description="planner -> architect -> coders (one per work item) -> QA, QA failures back to a coder",
    nodes=(
        Node(name="plan", role="planner"),
        Node(name="design", role="architect"),
        Node(name="code", type="work_items", role="coder"),
        Node(name="review", type="review", role="qa"),
    ),
)
BUILTIN: Mapping[str, Graph] = {SOLO_GRAPH.name: SOLO_GRAPH, TEAM_GRAPH.name: TEAM_GRAPH}
"""The graphs agentls ships, by name."""


class GraphNotFound(LookupError):
    """No graph has that name; the message lists the ones there are."""


def _produces(node: Node) -> str:
    handoff = ROLES[node.role].handoff or "a proposal"
    if node.type == "work_items":
        return f"{handoff} per work item, one after another"
    if node.type == "review":
        if node.max_rounds is None:  # the precedence `agent.team.engine` applies
            rounds = "agent.team.max_rounds rounds, else agent.max_reflections"
        else:
            rounds = f"{node.max_rounds} round{'' if node.max_rounds == 1 else 's'}"
        return f"{handoff}; on fail {node.fixer} fixes and {node.role} reviews again (at most {rounds})"
    return handoff


def describe(graph: Graph) -> str:
    """The graph as text: one line per node, then where it ends."""
    lines = [f"graph {graph.name}: {graph.description}".rstrip(": ")]
    for number, node in enumerate(graph.nodes, 1):
        bounds = [f"max_steps {node.max_steps}"] if node.max_steps else []
        bounds += [f"max ${node.max_cost_usd:g}"] if node.max_cost_usd is not None else []
        bounds += [f"max {node.max_minutes:g} min"] if node.max_minutes is not None else []
        extra = f" [{', '.join(bounds)}]" if bounds else ""
        head = f"  {number}. {node.name:<10} {node.type:<10} {node.role:<9}"
        lines.append(f"{head} -> {_produces(node)}{extra}")
    lines.append("  then: the proposal")
    return "\n".join(lines)


def mermaid(graph: Graph) -> str:
    """The graph as a Mermaid flowchart."""
    lines = ["flowchart TD"]
    previous = None
    for node in graph.nodes:
        label = f"{node.name}: {node.role}" + (" per work item" if node.type == "work_items" else "")
        shape = f'{{{{"{label}"}}}}' if node.type == "review" else f'["{label}"]'
        lines.append(f"  {node.name}{shape}")
        if previous is not None:
            lines.append(f"  {previous} --> {node.name}")
        if node.type == "review":
            fix = f"{node.name}_fix"
            lines.append(f'  {fix}["{node.fixer}: fix"]')
            lines.append(f"  {node.name} -- fail --> {fix}")
            lines.append(f"  {fix} --> {node.name}")
        previous = node.name
    lines.append("  proposal((proposal))")
    edge = " -- pass --> " if graph.nodes[-1].type == "review" else " --> "
    lines.append(f"  {previous}{edge}proposal")
    return "\n".join(lines)
