"""``agentls mcp``: agentls's own retrieval as an MCP server on stdio, for other agents.

Tools: `search_code` (hybrid search over the workspace index), `find_symbol` (definitions and references
from the symbol table) and `lookup_docs` (the API of an installed library, `agent.tools.docs`), the same
tools the agent uses, with the same inputs, so results read the same. The workspace is indexed (or
refreshed) before serving; files are read from disk through a read-only `agent.overlay.Overlay` (nothing
is ever written). Results are redacted as the agent's model requests are (`agent.redaction`): secret
values come back as ``<secret:...>`` placeholders. stdout carries the MCP protocol only: progress and
errors go to stderr and the log.

Built with the `mcp` SDK's high-level server (`MCPServer` in 2.x, `FastMCP` in 1.x). Example for a client
configuration: ``{"command": "agentls", "args": ["mcp", "--path", "/path/to/project"]}``.

``agentls mcp --trust [--yes]`` serves nothing: it goes through the MCP servers the workspace's settings
configure for the agent (``[mcp.servers.NAME]``) and records the user's trust in each
(`agent.mcp.trust`), asked on the terminal (all at once with ``--yes``), for runs that have no one to ask.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from server.cli.support import environment, find_root, workspace_settings
from server.settings import cache_dir

log = logging.getLogger("agentls")


def build_server(root: Path, index: Any, settings: Any, cache: Path | None = None) -> Any:
    """The MCP server exposing `search_code`, `find_symbol` and `lookup_docs` on `root`; `cache` (agentls'
    cache folder) enables `search_code`'s `dependency`."""
    try:  # mcp 2.x
        from mcp.server.mcpserver import MCPServer as Server
        from mcp.server.mcpserver.exceptions import ToolError as McpToolError
    except ImportError:  # mcp 1.x
        from mcp.server.fastmcp import FastMCP as Server  # type: ignore[no-redef,attr-defined]
        from mcp.server.fastmcp.exceptions import ToolError as McpToolError  # type: ignore[no-redef]

    from agent.depindex import DependencyIndexes
    from agent.overlay import Overlay
    from agent.redaction import secret_redactor
    from agent.sandbox import Sandbox
    from agent.tools import ToolRegistry
    from agent.tools.docs import LookupDocsTool
    from agent.tools.search import FindSymbolTool, SearchCodeTool
    from indexing.paths import cache_dir as default_cache_dir

    overlay = Overlay(root)
    sandbox = Sandbox(settings.agent.sandbox)
    # What the tools return leaves the machine as much as a model request does: the same redaction (the
    # tools read files from disk, and search hits and symbol lines hold the code as written).
    secrets = secret_redactor(
        cache or default_cache_dir({}),
        allow_values=settings.agent.allow_secret_values,
        root=root,
        index=index,
    )
    registry = ToolRegistry(
        [
            SearchCodeTool(overlay, index, DependencyIndexes(root, sandbox, cache)),
            FindSymbolTool(overlay, index),
            LookupDocsTool(root, sandbox),
        ]
    )

    def call(name: str, arguments: dict[str, Any]) -> str:
        result = registry.execute(name, {k: v for k, v in arguments.items() if v is not None})
        content = secrets.redact(result.content)
        if result.is_error:
            raise McpToolError(content)
        return content

    from importlib.metadata import version

    instructions = f"Code search and library docs for the workspace {root}."
    try:  # mcp 2.x puts the version in serverInfo; 1.x's FastMCP takes none
        server = Server("agentls", instructions=instructions, version=version("agentls"))
    except TypeError:
        server = Server("agentls", instructions=instructions)

    @server.tool(description=SearchCodeTool.description)
    def search_code(
        query: str,
        limit: int | None = None,
        path: str | None = None,
        dependency: str | None = None,
        files: bool | None = None,
    ) -> str:
        arguments = {"query": query, "limit": limit, "path": path, "dependency": dependency, "files": files}
        return call("search_code", arguments)

    @server.tool(description=FindSymbolTool.description)
    def find_symbol(
        name: str, role: str | None = None, prefix: bool | None = None, path: str | None = None
    ) -> str:
        return call("find_symbol", {"name": name, "role": role, "prefix": prefix, "path": path})

    @server.tool(description=LookupDocsTool.description)
    def lookup_docs(name: str, language: str | None = None, query: str | None = None) -> str:
        return call("lookup_docs", {"name": name, "language": language, "query": query})

    return server


@click.command("mcp")
@click.option("--path", "path", default=".", help="The workspace (or a folder inside it) to serve.")
@click.option(
    "--trust", is_flag=True, help="Trust the workspace's own MCP servers for agent runs, then exit."
)
@click.option("--yes", "-y", is_flag=True, help="With --trust: trust them all without asking.")
def mcp_cmd(path: str, trust: bool, yes: bool) -> None:
    """Serve this workspace's code search, symbols and library docs as an MCP server on stdio."""
    from server.cli.agent import _open_index

    env = environment()
    err = Console(stderr=True, soft_wrap=True)
    target = Path(path).expanduser()
    if not target.exists():
        raise click.ClickException(f"{path} does not exist; pass the workspace or a folder inside it")
    root = find_root(target.resolve(), cache_dir(env))
    settings = workspace_settings(root, err)
    if trust:
        _trust_servers(root, settings, cache_dir(env), yes=yes)
        return
    index = _open_index(root, settings, env, err)
    log.info("agentls mcp: serving %s on stdio", root)
    build_server(root, index, settings, cache_dir(env)).run("stdio")


def _trust_servers(root: Path, settings: Any, cache: Path, *, yes: bool) -> None:
    from agent.mcp.trust import TRUST_FILE, McpTrust, describe_server

    store = McpTrust(cache / TRUST_FILE)
    servers = {name: c for name, c in settings.agent.mcp.servers.items() if c.enabled}
    if not servers:
        click.echo(f"{root} configures no MCP server ([mcp.servers.NAME] in agentls.toml).")
        return
    for name, config in servers.items():
        if store.is_trusted(root, config):
            click.echo(f"{name}: trusted already")
            continue
        question = f"{name} {describe_server(config)}. Trust it for agent runs in {root}?"
        if yes or click.confirm(question, default=False):
            store.remember(root, name, config)
            click.echo(f"{name}: trusted")
        else:
            click.echo(f"{name}: not trusted (runs leave it out unless someone answers the question)")
