"""The one settings tree of agentls (`Settings`), and where it is read from.

How the settings are read (their sources, the trust in a workspace's own file, the messages of the ones
ignored) is `server.settings_files`', re-exported here; this module adds the agent's sections (``agent``,
``mcp``) to the sections indexing and search read, and validates the whole tree (`validate_settings`,
`load_settings`). The commands that only index and search read their settings with
`server.settings_files.load_indexing_settings`, which imports this module, and the agent's classes with it,
only when a settings file sets an agent section.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from agent.config import AgentSettings
from agent.mcp.config import McpSettings
from agent.settings_error import SettingsError, setting_to_fix
from indexing.paths import cache_dir as cache_dir  # re-exported: its home is the light `indexing.paths`
from indexing.paths import user_settings_file
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
    (`server.settings_files.validated`), and a setting no run can use is said too (`unusable`)."""
    settings, messages = validated(Settings, raw, source, text, prefix)
    files = [(source, text, prefix)] if text is not None else []
    return settings, messages + unusable(settings, files, None if text is not None else source)


SettingsFile = tuple[str, str, tuple[str, ...]]
"""A settings file as read: its path, its text, and where the settings sit in it (``tool.agentls``)."""


def unusable(settings: Settings, files: Sequence[SettingsFile], otherwise: str | None) -> list[str]:
    """The valid settings that no run can use (`agent.config.AgentSettings.unusable`: a provider agentls
    has not, a role's model of another provider, a base URL that is no URL), each said with the file and
    line of the first of `files` that writes it (``agentls.toml:4: ...``). One that none of `files` writes
    is said as `otherwise`'s (None: not said, since another file's reading says it: the user's own file's).
    They are kept, not replaced by a default: a run refuses them with what to set, so that a typo never
    picks another model provider; the command line's runs refuse to start on them, before any index is
    built, and the language server's and ``agentls acp``'s runs too (`run_refusal`)."""
    said: list[str] = []
    for keys, problem in settings.agent.unusable():
        where = next(
            (
                f"{path}:{toml_line(text, (*prefix, 'agent', *key))}"
                for key in keys
                for path, text, prefix in files
                if _written(text, (*prefix, "agent", *key))
            ),
            otherwise,
        )
        if where is not None:
            said.append(f"{where}: {problem.rstrip('.')}. Agent runs refuse to start until then")
    return said


def _written(text: str, key: tuple[str, ...]) -> bool:
    """Whether the TOML `text` sets the setting at `key`."""
    try:
        node: Any = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return False
    for part in key:
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def run_refusal(root: Path, settings: Settings, *, env: Mapping[str, str] | None = None) -> str | None:
    """Why no run can start with `settings`, the settings of the workspace `root` as a front end holds
    them (the language server's, with the editor's over the files; ``agentls acp``'s): its settings that
    no run can use (`unusable`), each with the file and line that sets it (the workspace's file, else the
    user's own; else the editor's settings), and what to change. None: a run may start. Made before the
    run opens the index, which may take minutes to build. The settings files are read again (for the
    lines) only when something is unusable: every run a front end starts asks."""
    if not settings.agent.unusable():
        return None
    files: list[SettingsFile] = []
    _, _, sources = workspace_settings(root)
    user_file = user_settings_file(os.environ if env is None else env)
    pyproject = ("tool", "agentls")
    for path, prefix in (
        *((Path(source), pyproject if source.endswith("pyproject.toml") else ()) for source in sources),
        (user_file, ()),
    ):
        try:
            files.append((str(path), path.read_text(encoding="utf-8"), prefix))
        except (OSError, UnicodeDecodeError):
            continue
    said = unusable(settings, files, EDITOR_SETTINGS)
    if not said:
        return None
    written = [path for path, _, _ in files if any(line.startswith(f"{path}:") for line in said)]
    return setting_to_fix(SettingsError("\n".join(said)), written or [EDITOR_SETTINGS])


EDITOR_SETTINGS = "the editor's settings (section agentls)"
"""Where `run_refusal` says a setting came from when no settings file writes it."""


def load_settings(
    root: Path, overrides: Mapping[str, Any] | None = None, *, env: Mapping[str, str] | None = None
) -> LoadedSettings:
    """The settings of the workspace `root` (`server.settings_files.load`), `overrides` (the editor's)
    last, validated as the whole tree."""
    return load(root, validate_settings, overrides, env=env)
