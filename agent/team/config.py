"""The ``agent.team`` settings: spec confirmation, QA rounds, overall bounds and custom graphs.

`TeamSettings.graph(name)` finds a graph among the workspace's own (``[agent.team.graphs.NAME]`` in
``agentls.toml``) and the shipped ones (`agent.team.graph.BUILTIN`); `graph_names` lists them. A
workspace's `team` graph replaces the shipped one; `solo` cannot be redefined: it is the single agent
loop, not a graph of roles, and the mode of every run that names none (the editor's code actions,
`agentls implement`), so a graph under that name is refused alone (its key is invalid), the others kept.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from agent.team.graph import BUILTIN, SOLO_GRAPH, Graph, GraphNotFound

__all__ = ["TeamSettings"]


def _not_solo(name: str) -> str:
    """A custom graph's name, unless it is ``solo``: an error of that key alone, so the settings drop that
    graph and keep the others (`server.settings.validate_settings`)."""
    if name == SOLO_GRAPH.name:
        raise ValueError(
            "`solo` is the single agent loop, the mode of every run that names none, and cannot be "
            "redefined; name your graph otherwise and run it with `agentls run --mode NAME` "
            "(a graph named `team` replaces the shipped team graph)"
        )
    return name


GraphName = Annotated[str, AfterValidator(_not_solo)]


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
    graphs: dict[GraphName, Graph] = Field(default_factory=dict)
    """Custom graphs by name, from the same node types as the shipped ones (`agent.team.graph`); one
    named `team` replaces the shipped team graph, and none may be named `solo`."""

    @field_validator("graphs")
    @classmethod
    def _named(cls, graphs: dict[str, Graph]) -> dict[str, Graph]:
        return {name: graph.model_copy(update={"name": name}) for name, graph in graphs.items()}

    @property
    def graph_names(self) -> list[str]:
        """Every graph's name, the shipped ones first (a custom `team` in the shipped one's place)."""
        return [*BUILTIN, *(name for name in self.graphs if name not in BUILTIN)]

    def graph(self, name: str) -> Graph:
        """The graph called `name`, the workspace's before the shipped one; raises `GraphNotFound` listing
        the names."""
        found = self.graphs.get(name) or BUILTIN.get(name)
        if found is None:
            raise GraphNotFound(
                f"there is no graph {name!r}; the graphs are: {', '.join(self.graph_names)} "
                "(define more under [agent.team.graphs.NAME] in agentls.toml)"
            )
        return found
