"""The one settings tree of agentls (`Settings`), and where it is read from.

How the settings are read (their sources, the trust in a workspace's own file, the messages of the ones
ignored) is `server.settings_files`', re-exported here; this module adds the agent's sections (``agent``,
``mcp``) to the sections indexing and search read, and validates the whole tree (`validate_settings`,
`load_settings`). The commands that only index and search read their settings with
`server.settings_files.load_indexing_settings`, which imports this module, and the agent's classes with it,
only when a settings file sets an agent section.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from agent.config import PROVIDERS, AgentSettings, unknown_provider_message
from agent.mcp.config import McpSettings
from indexing.paths import cache_dir as cache_dir  # re-exported: its home is the light `indexing.paths`
from server.settings_files import IndexingSettings, load, validated
from server.settings_files import LoadedSettings as Loaded
from server.settings_files import ServerSettings as ServerSettings  # re-exported, as the other names
from server.settings_files import merge as merge
from server.settings_files import toml_line as toml_line
from server.settings_files import user_settings as user_settings
from server.settings_files import workspace_settings as workspace_settings


class Settings(IndexingSettings):
    """Everything a user can set: the sections of `IndexingSettings` (``index``, ``server``) and the
    agent's. Each section documents its own fields."""

    agent: AgentSettings = Field(default_factory=AgentSettings)
    mcp: McpSettings = Field(default_factory=McpSettings)
    """``[mcp.servers.NAME]``: MCP servers whose tools the agent gets; merged into `agent.mcp`."""

    @model_validator(mode="after")
    def _mcp_for_the_agent(self) -> Settings:
        if self.mcp.servers:
            merged = self.mcp.model_copy(update={"servers": {**self.agent.mcp.servers, **self.mcp.servers}})
            self.agent = self.agent.model_copy(update={"mcp": merged})
        return self


LoadedSettings = Loaded[Settings]
"""The settings of a workspace, with the messages of those ignored and where they came from."""


def validate_settings(
    raw: Mapping[str, Any], source: str = "settings", text: str | None = None, prefix: tuple[str, ...] = ()
) -> tuple[Settings, list[str]]:
    """Validate ``raw``; invalid or unknown entries fall back to defaults, each with a message
    (`server.settings_files.validated`), and a model provider no run can use is said too."""
    settings, messages = validated(Settings, raw, source, text, prefix)
    return settings, messages + _unusable(settings, source)


def _unusable(settings: Settings, source: str) -> list[str]:
    """Valid settings that no run can use, said when the settings load. They are kept, not replaced by a
    default: a run refuses them with what to set, so that a typo never picks another model provider."""
    provider = settings.agent.model.provider
    if provider in PROVIDERS:
        return []
    return [f"{source}: {unknown_provider_message(provider)} Agent runs refuse to start until then"]


def load_settings(
    root: Path, overrides: Mapping[str, Any] | None = None, *, env: Mapping[str, str] | None = None
) -> LoadedSettings:
    """The settings of the workspace `root` (`server.settings_files.load`), `overrides` (the editor's)
    last, validated as the whole tree."""
    return load(root, validate_settings, overrides, env=env)
