"""The ``agent.team`` settings: spec confirmation, QA rounds, overall bounds and custom graphs.

`TeamSettings.graph(name)` finds a graph among the shipped ones (`agent.team.graph.BUILTIN`) and the
workspace's own (``[agent.team.graphs.NAME]`` in ``agentls.toml``); `graph_names` lists them.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agent.team.graph import BUILTIN, Graph, GraphNotFound

__all__ = ["TeamSettings"]


class TeamSettings(BaseModel):
    """How team runs go (``agentls run --mode team``, ``agentls.run {mode}``)."""

    model_config = ConfigDict(extra="forbid")

    confirm_spec: bool = True
    """Ask the user to confirm the planner's spec (through `ask_user`'s path) before any code is written."""
    max_rounds: int | None = Field(default=None, ge=0)
    """Failed QA reviews sent back to a coder, per review node, before the run proposes what it has,
    flagged; None: `agent.max_reflections` (a review node's own `max_rounds` wins)."""
    max_steps: int = Field(default=200, ge=1)
    """Model turns of a whole team run, all roles together (each agent also has `agent.max_steps`)."""
    graphs: dict[str, Graph] = Field(default_factory=dict)
    """Custom graphs by name, from the same node types as the shipped ones (`agent.team.graph`)."""

    @field_validator("graphs")
    @classmethod
    def _named(cls, graphs: dict[str, Graph]) -> dict[str, Graph]:
        taken = sorted(set(graphs) & set(BUILTIN))
        if taken:
            raise ValueError(f"graph names {', '.join(taken)} are taken by the shipped graphs; rename yours")
        return {name: graph.model_copy(update={"name": name}) for name, graph in graphs.items()}

    @property
    def graph_names(self) -> list[str]:
        """Every graph's name, the shipped ones first."""
        return [*BUILTIN, *self.graphs]

    def graph(self, name: str) -> Graph:
        """The graph called `name`; raises `GraphNotFound` listing the names."""
        found = BUILTIN.get(name) or self.graphs.get(name)
        if found is None:
            raise GraphNotFound(
                f"there is no graph {name!r}; the graphs are: {', '.join(self.graph_names)} "
                "(define more under [agent.team.graphs.NAME] in agentls.toml)"
            )
        return found
