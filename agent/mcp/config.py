"""Settings of the MCP servers a run's agent uses: ``[mcp.servers.NAME]`` in ``agentls.toml``.

A server is either a process speaking MCP on stdio (``command``, ``args``, ``env``, ``cwd``) or a
streamable HTTP endpoint (``url``, ``headers``). ``tools`` lists the tools to offer (all when empty),
``timeout`` bounds one call. The same table may be written ``[agent.mcp.servers.NAME]`` (and ``[mcp]``'s
bounds under ``[agent.mcp]``): the two places are one table, joined field by field, in a file and between
files (`server.settings_files.joined`), so a workspace's table of a server of the user's own file changes
only the fields it writes; but the user's ``env`` and ``headers`` (and the credentials in ``args``) are
not sent to a ``command``, ``args``, ``cwd``, ``env`` entry, ``url`` or header the workspace's file
chose (`server.settings_files.withheld_credentials`).

Servers run on the host, outside the sandbox, with the user's rights: they are configuration the user
trusts, like the editor's. `agentls.toml` in a repository you did not write can name any command, so
read it before running the agent there.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["McpServerSettings", "McpSettings"]


class McpServerSettings(BaseModel):
    """One MCP server (``[mcp.servers.NAME]``)."""

    model_config = ConfigDict(extra="forbid")

    command: str | None = None
    """The program of a stdio server (``npx``, ``uvx``, ``python``...)."""
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    """Added to a minimal environment (PATH, HOME...); the rest of ours is not passed on."""
    cwd: str | None = None
    """Working directory of a stdio server (default: the workspace root; a relative one is inside it)."""
    url: str | None = None
    """The endpoint of a streamable HTTP server (``http://127.0.0.1:8000/mcp``)."""
    headers: dict[str, str] = Field(default_factory=dict)
    tools: list[str] = Field(default_factory=list)
    """Only these tools of the server (all when empty)."""
    timeout: float = Field(default=60.0, gt=0)
    """Seconds one tool call may take."""
    enabled: bool = True

    @model_validator(mode="after")
    def _one_transport(self) -> McpServerSettings:
        if (self.command is None) == (self.url is None):
            raise ValueError("give either `command` (a stdio server) or `url` (streamable HTTP), not both")
        return self


class McpSettings(BaseModel):
    """MCP servers whose tools the agent gets (``[mcp.servers.NAME]``)."""

    model_config = ConfigDict(extra="forbid")

    servers: dict[str, McpServerSettings] = Field(default_factory=dict)
    max_result_chars: int = Field(default=20_000, ge=1_000)
    """A tool result longer than this is cut before the model reads it."""
    max_images: int = Field(default=5, ge=0, le=20)
    """Images of one tool result sent to the model (the later ones are named, not sent)."""
    start_timeout: float = Field(default=30.0, gt=0)
    """Seconds a server has to start and list its tools; one that does not is left out of the run."""
