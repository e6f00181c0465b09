"""``agentls graph show [NAME]``: print a run graph (the shipped `solo` and `team`, or the workspace's own
from ``[agent.team.graphs.NAME]``) as text and as a Mermaid flowchart; without NAME, every graph."""

from __future__ import annotations

import click

from server.cli.support import environment, stderr_console, workspace_of, workspace_settings

__all__ = ["graph_group"]


@click.group("graph")
def graph_group() -> None:
    """Run graphs: the flows of roles a run can follow (`agentls run --mode NAME`)."""


@graph_group.command("show")
@click.argument("name", required=False)
@click.option("--path", "path", default=".", help="The workspace whose agentls.toml may define graphs.")
@click.option("--mermaid/--no-mermaid", default=True, show_default=True, help="Also print Mermaid.")
def show_cmd(name: str | None, path: str, mermaid: bool) -> None:
    """Print graph NAME (default: all graphs) as text and Mermaid."""
    from agent.team.graph import GraphNotFound, describe
    from agent.team.graph import mermaid as to_mermaid

    err = stderr_console()
    root, _ = workspace_of(path, environment())
    team = workspace_settings(root, err).agent.team
    try:
        graphs = [team.graph(name)] if name else [team.graph(n) for n in team.graph_names]
    except GraphNotFound as missing:
        raise click.ClickException(str(missing)) from missing
    for number, graph in enumerate(graphs):
        if number:
            click.echo()
        click.echo(describe(graph))
        if mermaid:
            click.echo("\n```mermaid\n" + to_mermaid(graph) + "\n```")
