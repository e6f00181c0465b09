"""Graphs as data: validation with messages, the shipped graphs' renderings, custom graphs in settings."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agent.team.config import TeamSettings
from agent.team.graph import SOLO_GRAPH, TEAM_GRAPH, Graph, GraphNotFound, Node, describe, mermaid
from server.settings import validate_settings


def test_team_graph_renders_as_text_and_mermaid_with_the_qa_loop() -> None:
    text = describe(TEAM_GRAPH)
    assert [line.split()[1] for line in text.splitlines()[1:5]] == ["plan", "design", "code", "review"]
    chart = mermaid(TEAM_GRAPH)
    assert chart.startswith("flowchart TD")
    assert "review -- fail --> review_fix" in chart and "review_fix --> review" in chart
    assert "review -- pass --> proposal" in chart


def test_a_review_node_without_max_rounds_names_the_settings_in_the_order_the_engine_applies_them() -> None:
    graph = Graph.model_validate(
        {
            "name": "check",
            "nodes": [
                {"name": "code", "type": "work_items", "role": "coder"},
                {"name": "review", "type": "review", "role": "qa"},
                {"name": "again", "type": "review", "role": "qa", "max_rounds": 1},
            ],
        }
    )
    review, again = describe(graph).splitlines()[2:4]
    rounds = "(at most agent.team.max_rounds rounds, else agent.max_reflections)"
    assert review.endswith(f"on fail coder fixes and qa reviews again {rounds}"), review
    assert again.endswith("(at most 1 round)"), again


@pytest.mark.parametrize(
    ("nodes", "message"),
    [
        ([{"name": "a", "role": "chef"}], "'chef' is not a team role"),
        ([{"name": "a", "type": "work_items", "role": "planner"}], "work_items needs a coder role"),
        ([{"name": "a", "type": "review", "role": "coder"}], "review needs the qa role"),
        ([{"name": "a", "role": "planner"}, {"name": "a", "role": "coder"}], "node names must be unique"),
        ([{"name": "a", "role": "planner"}, {"name": "b", "type": "solo", "role": "solo"}], "one node"),
        ([{"name": "a", "type": "review", "role": "qa", "fixer": "planner"}], "fixer must be a coder"),
        ([{"name": "a", "role": "planner", "next": "b"}], "a node has no 'next' .*order they are written"),
    ],
)
def test_invalid_graphs_say_what_is_wrong(nodes: list[dict[str, str]], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Graph.model_validate({"nodes": nodes})


def test_custom_graphs_are_named_by_their_key() -> None:
    team = TeamSettings.model_validate({"graphs": {"quick": {"nodes": [{"name": "p", "role": "planner"}]}}})
    assert team.graph("quick").name == "quick" and team.graph_names == ["solo", "team", "quick"]
    with pytest.raises(GraphNotFound, match="the graphs are: solo, team, quick"):
        team.graph("crew")


def test_a_custom_team_graph_replaces_the_shipped_one_and_a_solo_graph_is_refused_alone() -> None:
    """`[agent.team.graphs.team]` used to drop every custom graph of the file ("graph names team are taken
    by the shipped graphs"); now it replaces the shipped team graph, and a graph named `solo` (the single
    loop, every run's default mode) is refused alone, the file's other graphs kept."""
    planner = [{"name": "p", "role": "planner"}]
    graphs = {"team": {"nodes": planner}, "solo": {"nodes": planner}, "quick": {"nodes": planner}}
    settings, messages = validate_settings({"agent": {"team": {"graphs": graphs}}}, "agentls.toml")
    team = settings.agent.team
    assert team.graph("team").nodes == (Node(name="p", role="planner"),) and team.graph("team").name == "team"
    assert team.graph("quick").name == "quick" and team.graph("solo") is SOLO_GRAPH
    assert team.graph_names == ["solo", "team", "quick"]
    [message] = messages
    assert message.startswith("agentls.toml: ignoring `agent.team.graphs.solo`: "), message
    assert "single agent loop" in message and "--mode NAME" in message


def test_a_bad_custom_team_graph_leaves_the_shipped_one_and_the_other_graphs() -> None:
    graphs = {
        "team": {"nodes": [{"name": "x", "role": "chef"}]},
        "quick": {"nodes": [{"name": "p", "role": "planner"}]},
    }
    settings, messages = validate_settings({"agent": {"team": {"graphs": graphs}}}, "agentls.toml")
    assert settings.agent.team.graph("team") is TEAM_GRAPH and settings.agent.team.graph_names[-1] == "quick"
    [message] = messages
    assert message.startswith("agentls.toml: ignoring `agent.team.graphs.team`: ") and "'chef'" in message


def test_an_invalid_graph_in_agentls_toml_falls_back_with_a_message() -> None:
    raw = {"agent": {"team": {"graphs": {"bad": {"nodes": [{"name": "x", "role": "chef"}]}}}}}
    settings, messages = validate_settings(raw, "agentls.toml")
    assert "bad" not in settings.agent.team.graphs
    assert any("chef" in message for message in messages), messages


def test_a_graph_written_with_edges_is_refused_not_run_in_node_order() -> None:
    """A graph with edges (a loop back from QA to the planner, say) is refused with why, naming the key;
    the edges used to be dropped with 'Extra inputs are not permitted' and the graph kept, to run in the
    order of its nodes, which is not the flow its author wrote."""
    nodes = [{"name": "plan", "role": "planner"}, {"name": "code", "type": "work_items", "role": "coder"}]
    edges = [{"from": "plan", "to": "code"}, {"from": "code", "to": "plan"}]
    raw = {"agent": {"max_steps": 9, "team": {"graphs": {"loop": {"nodes": nodes, "edges": edges}}}}}
    settings, messages = validate_settings(raw, "agentls.toml")
    assert "loop" not in settings.agent.team.graphs and settings.agent.max_steps == 9
    [message] = messages
    assert message.startswith("agentls.toml: ignoring `agent.team.graphs.loop`: Value error, a graph has no ")
    assert "'edges' (only name, description, nodes); nodes run in the order they are written" in message
