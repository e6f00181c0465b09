"""``agentls acp``: serve the agent over the Agent Client Protocol on stdio (`server.acp`).

Example for Zed's ``agent_servers``: ``{"command": "agentls", "args": ["acp"]}``. The workspace of each
session is the ``cwd`` the client passes to ``session/new``.
"""

from __future__ import annotations

import click

from server.cli.support import environment


@click.command("acp")
def acp_cmd() -> None:
    """Serve the agent over the Agent Client Protocol on stdio (Zed, JetBrains IDEs, ...)."""
    from server.acp import serve

    serve(environment())
