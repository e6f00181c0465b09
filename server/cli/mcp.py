"""``agentls mcp``: agentls's own retrieval as an MCP server on stdio, for other agents.

Tools: `search_code` (hybrid search over the workspace index), `find_symbol` (definitions and references
from the symbol table) and `lookup_docs` (the API of an installed library, `agent.tools.docs`), the same
tools the agent uses, with the same inputs, so results read the same. The workspace is indexed (or
refreshed) before serving; files are read from disk through a read-only `agent.overlay.Overlay` (nothing
is ever written). Results are redacted as the agent's model requests are (`agent.redaction`): secret
values come back as ``<secret:...>`` placeholders. stdout carries the MCP protocol only: progress and
errors go to stderr and the log.

A call's arguments are checked against the agent tool's own schema before the SDK sees them, so a bad
one is answered with one line naming it and what it takes (`argument_problem`), not pydantic's dump; an
argument the tool does not have is refused, not silently dropped. A line on stdin that is no JSON-RPC
message is answered (``-32700`` for text that is not JSON, ``-32600`` for JSON that is no JSON-RPC
message, with the request's id when it has a usable one, else ``null``; `stream_error`) and the server
goes on: the SDK's stdio transport turns such a line into an exception on its read stream, which its
server only logs (`serve_stdio` answers it). With mcp 1.x, whose error responses cannot carry a null id,
such lines stay unanswered.

Built with the `mcp` SDK's high-level server (`MCPServer` in 2.x, `FastMCP` in 1.x). Example for a client
configuration: ``{"command": "agentls", "args": ["mcp", "--path", "/path/to/project"]}``.

``agentls mcp --trust [--yes]`` serves nothing: it goes through the MCP servers the workspace's settings
configure for the agent (``[mcp.servers.NAME]``) and records the user's trust in each
(`agent.mcp.trust`), asked on the terminal (all at once with ``--yes``, which is needed without a terminal),
for runs that have no one to ask. A trust file that cannot be written ends it with an error naming the file
and why (exit status 1).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import click

from indexing.paths import cache_dir
from server.cli.support import (
    BadValue,
    environment,
    refuse_a_whole_home,
    stderr_console,
    workspace_of,
    workspace_settings,
)

if TYPE_CHECKING:
    from agent.tools import Tool

log = logging.getLogger("agentls")

_MESSAGE_CHARS = 300
"""The longest error message a bad call or a bad line gets (it quotes what the client sent)."""


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

    class AgentlsServer(Server):
        """The SDK's server, with each call's arguments checked against the agent tool's schema first."""

        async def call_tool(self, name: str, arguments: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
            tool = registry.get(name)
            problem = argument_problem(tool, arguments or {}) if tool is not None else None
            if problem is not None:
                raise McpToolError(problem)
            return await super().call_tool(name, arguments, *args, **kwargs)

    instructions = f"Code search and library docs for the workspace {root}."
    try:  # mcp 2.x puts the version in serverInfo; 1.x's FastMCP takes none
        server = AgentlsServer("agentls", instructions=instructions, version=version("agentls"))
    except TypeError:
        server = AgentlsServer("agentls", instructions=instructions)

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


def argument_problem(tool: Tool, arguments: Mapping[str, Any]) -> str | None:
    """What is wrong with a call's `arguments` for `tool`, as one line naming the argument and what it
    takes; None when nothing is. A null counts as leaving the argument out (the SDK's schemas allow it)."""
    from agent.tools import ToolInputError, one_line, validate_input

    properties: Mapping[str, Any] = tool.input_schema.get("properties", {})
    unknown = [key for key in arguments if key not in properties]
    if unknown:
        takes = ", ".join(f"`{key}`" for key in properties)
        message = f"Invalid input for tool {tool.name}: it has no argument `{unknown[0]}`; it takes {takes}"
        return one_line(message, _MESSAGE_CHARS)
    try:
        validate_input(tool.name, tool.input_schema, {k: v for k, v in arguments.items() if v is not None})
    except ToolInputError as error:
        return one_line(str(error), _MESSAGE_CHARS)
    return None


def stream_error(error: Exception) -> tuple[int, str, str | int | None] | None:
    """The JSON-RPC error (code, message, id) answering a line the SDK's stdio transport could not read as
    a JSON-RPC message; None: nothing to answer (a blank line). The transport hands over pydantic's
    `ValidationError`, not the line: the message is what the errors say it was."""
    from pydantic import ValidationError

    from agent.tools import one_line

    if not isinstance(error, ValidationError):
        return -32700, f"Parse error: {type(error).__name__}", None
    problems = error.errors()
    if any(problem["type"] == "json_invalid" for problem in problems):
        received = problems[0].get("input")
        if isinstance(received, str | bytes) and not received.strip():
            return None
        return -32700, "Parse error: the line is not JSON", None
    # The whole message: the input of an error about the value itself (one of the union's members
    # refusing it) or about a field it lacks.
    message: Any = next(
        (
            problem.get("input")
            for problem in problems
            if len(problem["loc"]) == 1 or (problem["type"] == "missing" and len(problem["loc"]) == 2)
        ),
        None,
    )
    if not isinstance(message, Mapping):
        what = "a message must be a JSON object" if message is not None else "not a JSON-RPC message"
        return -32600, f"Invalid Request: {what}", None
    ident = message.get("id")
    # The request's id, when a client can match it (a broken response answers no request of ours).
    request = "method" in message and isinstance(ident, str | int) and not isinstance(ident, bool)
    usable = ident if request else None
    if message.get("jsonrpc") != "2.0":
        return -32600, 'Invalid Request: the message lacks "jsonrpc": "2.0"', usable
    if "method" not in message:
        return -32600, "Invalid Request: a response needs an id and a result or an error", None
    member = "JSONRPCRequest" if "id" in message else "JSONRPCNotification"
    detail = next(
        (
            f"`{'.'.join(str(part) for part in problem['loc'][1:])}`: {problem['msg']}"
            for problem in problems
            if problem["loc"][:1] == (member,) and len(problem["loc"]) > 1
        ),
        "not a JSON-RPC request",
    )
    return -32600, one_line(f"Invalid Request: {detail}", _MESSAGE_CHARS), usable


class _AnsweringReadStream:
    """The stdio transport's read stream, with the exceptions it yields for unreadable lines answered on
    the write stream (`stream_error`) instead of passed to the server, which would only log them."""

    def __init__(self, inner: Any, write: Any) -> None:
        self.inner = inner
        self.write = write

    @property
    def last_context(self) -> Any:
        return getattr(self.inner, "last_context", None)

    async def receive(self) -> Any:
        from mcp.shared.message import SessionMessage
        from mcp_types import ErrorData, JSONRPCError

        while True:
            item = await self.inner.receive()
            if not isinstance(item, Exception):
                return item
            answer = stream_error(item)
            if answer is None:
                continue
            code, message, ident = answer
            log.info("agentls mcp: answered a malformed line with %d (%s)", code, message)
            error = JSONRPCError(jsonrpc="2.0", id=ident, error=ErrorData(code=code, message=message))
            await self.write.send(SessionMessage(error))

    async def aclose(self) -> None:
        await self.inner.aclose()

    def __aiter__(self) -> _AnsweringReadStream:
        return self

    async def __anext__(self) -> Any:
        import anyio

        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> _AnsweringReadStream:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.aclose()


def serve_stdio(server: Any) -> None:
    """Serve `server` (from `build_server`) on stdin/stdout until the client closes stdin, answering lines
    that are no JSON-RPC message. As `server.run("stdio")` does, through the same SDK transport."""
    lowlevel = getattr(server, "_lowlevel_server", None)  # mcp 2.x; no public accessor
    if lowlevel is None:
        server.run("stdio")  # mcp 1.x: malformed lines go unanswered, as its SDK does
        return
    import anyio
    from mcp.server.stdio import stdio_server

    async def serve() -> None:
        async with stdio_server() as (read_stream, write_stream):
            screened = _AnsweringReadStream(read_stream, write_stream)
            await lowlevel.run(screened, write_stream, lowlevel.create_initialization_options())

    anyio.run(serve)


@click.command("mcp")
@click.option("--path", "path", default=".", help="The workspace (or a folder inside it) to serve.")
@click.option(
    "--trust", is_flag=True, help="Trust the workspace's own MCP servers for agent runs, then exit."
)
@click.option("--yes", "-y", is_flag=True, help="With --trust: trust them all without asking.")
def mcp_cmd(path: str, trust: bool, yes: bool) -> None:
    """Serve this workspace's code search, symbols and library docs as an MCP server on stdio."""
    from server.cli.agent import _open_index

    if yes and not trust:  # not ignored: `agentls mcp --yes` would serve as if it had not been given
        raise BadValue("only goes with --trust", click.get_current_context(), param_hint="--yes")
    env = environment()
    err = stderr_console()
    root, _ = workspace_of(path, env)
    settings = workspace_settings(root, err)
    if trust:
        _trust_servers(root, settings, cache_dir(env), yes=yes)
        return
    refuse_a_whole_home(root, settings, env, "Serve a project instead (--path PROJECT)")
    index = _open_index(root, settings, env, err)
    log.info("agentls mcp: serving %s on stdio", root)
    serve_stdio(build_server(root, index, settings, cache_dir(env)))


def _trust_servers(root: Path, settings: Any, cache: Path, *, yes: bool) -> None:
    from agent.mcp.trust import TRUST_FILE, McpTrust, describe_server
    from server.cli.agent import _stdin_is_terminal

    store = McpTrust(cache / TRUST_FILE)
    servers = {name: c for name, c in settings.agent.mcp.servers.items() if c.enabled}
    if not servers:
        click.echo(f"{root} configures no MCP server ([mcp.servers.NAME] in agentls.toml).")
        return
    asked = [name for name, config in servers.items() if not store.is_trusted(root, config)]
    if asked and not yes and not _stdin_is_terminal():  # click.confirm would only say "Aborted!"
        raise click.ClickException(
            f"trusting {', '.join(asked)} needs your confirmation and there is no terminal to ask on; run "
            f"`agentls mcp --trust` in a terminal, or add --yes to trust all of {root}'s servers without "
            "asking"
        )
    for name, config in servers.items():
        if store.is_trusted(root, config):
            click.echo(f"{name}: trusted already")
            continue
        question = f"{name} {describe_server(config)}. Trust it for agent runs in {root}?"
        if yes or click.confirm(question, default=False):
            kept = store.remember(root, name, config)
            if not kept.kept:
                raise click.ClickException(
                    kept.message(f"{name}: not trusted, as", "Runs leave it out", "and run this again")
                )
            click.echo(f"{name}: trusted")
        else:
            click.echo(f"{name}: not trusted (runs leave it out unless someone answers the question)")
