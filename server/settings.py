"""The one settings tree of agentls (`Settings`), and where it is read from.

How the settings are read (their sources, the trust in a workspace's own file, the messages of the ones
ignored) is `server.settings_files`', re-exported here; this module adds the agent's sections (``agent``,
``mcp``) to the sections indexing and search read, and validates the whole tree (`validate_settings`,
`load_settings`). The commands that only index and search read their settings with
`server.settings_files.load_indexing_settings`, which imports this module, and the agent's classes with it,
only when a settings file sets an agent section.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, model_validator

from agent.config import AgentSettings
from agent.mcp.config import McpServerSettings, McpSettings
from agent.settings_error import SettingsError, setting_to_fix
from indexing.paths import cache_dir as cache_dir  # re-exported: its home is the light `indexing.paths`
from server.settings_files import EDITOR_SETTINGS as EDITOR_SETTINGS
from server.settings_files import (
    IndexingSettings,
    SettingsFile,
    SettingsMessage,
    applied_files,
    joined,
    load,
    validated,
)
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
    """``[mcp]`` (``[mcp.servers.NAME]``: MCP servers whose tools the agent gets): the same table as
    ``[agent.mcp]``, joined into `agent.mcp` field by field, which the runs read."""

    @model_validator(mode="after")
    def _mcp_for_the_agent(self) -> Settings:
        """`mcp` joined into `agent.mcp`, which the runs read, by the one join of the two places
        (`server.settings_files.joined`: field by field, a server's too, its ``env`` and ``headers``
        entry by entry) of the fields each writes (pydantic's ``model_fields_set``). The settings files
        were joined so before validation already, each file's `agent.mcp` moved into its `mcp`: this
        hands that to the agent, and joins the two places of settings made in code as files' are. A
        server whose joined fields are invalid (a ``url`` over a ``command``) is `mcp`'s whole."""
        if not self.mcp.model_fields_set:
            return self
        written = {"agent": {"mcp": _written(self.agent.mcp)}, "mcp": _written(self.mcp)}
        both = joined(written)["mcp"]
        servers: dict[str, McpServerSettings] = {}
        for name, table in both.get("servers", {}).items():
            try:
                servers[name] = McpServerSettings.model_validate(table)
            except ValidationError:
                servers[name] = self.mcp.servers[name]
        mcp = McpSettings.model_validate({**both, "servers": servers})
        self.agent = self.agent.model_copy(update={"mcp": mcp})
        return self


def _written(settings: McpSettings) -> dict[str, Any]:
    """The fields `settings` was given (its servers' too), as raw settings."""
    return settings.model_dump(exclude_unset=True)


LoadedSettings = Loaded[Settings]
"""The settings of a workspace, with the messages of those ignored and where they came from."""


def validate_settings(
    raw: Mapping[str, Any],
    source: str = "settings",
    text: str | None = None,
    prefix: tuple[str, ...] = (),
    *,
    files: Sequence[SettingsFile] | None = None,
    otherwise: str | None = None,
    under: Mapping[str, Any] | None = None,
    editor: Mapping[str, Any] | None = None,
) -> tuple[Settings, list[str]]:
    """Validate ``raw``; invalid or unknown entries fall back to defaults, each with a message
    (`server.settings_files.validated`), and a setting no run can use is said too (`unusable`), with the
    file and line of the first of `files` that writes it, else as `otherwise`'s (None: not said). `files`
    None: ``raw`` is the one file `source`, whose `text` names the lines (`settings_files.Validate`).
    `under`: the user's own settings, which an invalid entry falls back to, and `editor`: the editor's
    settings merged over `text`'s, whose invalid entries are said as theirs (both
    `settings_files.validated`)."""
    settings, messages = validated(Settings, raw, source, text, prefix, under=under, editor=editor)
    if files is None:
        files, otherwise = ([SettingsFile(source, text, prefix)] if text is not None else []), source
    return settings, messages + unusable(settings, files, otherwise)


def unusable(settings: Settings, files: Sequence[SettingsFile], otherwise: str | None) -> list[str]:
    """The valid settings that no run can use (`agent.config.AgentSettings.unusable`: a provider agentls
    has not, a role's model of another provider, a base URL that is no URL), each said with the file and
    line that writes it: of its keys, the first (the one to change first) that one of `files` writes,
    in the first of `files` that writes it (the one whose value wins: `files` are highest precedence
    first). Another of its keys that another file writes is named too (a role's provider in the user's
    own file, the run's in the workspace's). One that none of `files` writes is said as `otherwise`'s
    (None: not said). They are kept, not replaced by a default: a run refuses them with what to set, so
    that a typo never picks another model provider; the command line's runs refuse to start on them,
    before any index is built, and the language server's and ``agentls acp``'s runs too (`run_refusal`).
    Checked on the settings a run gets, merged from every source, never on one file alone: a role's
    provider in the user's file is usable when the workspace's file sets the same one for the run."""
    said: list[str] = []
    for keys, problem in settings.agent.unusable():
        # each key's winning file: the first of `files` that writes it
        written = {key: file for key in keys for file in reversed(files) if file.writes(("agent", *key))}
        if not written and otherwise is None:
            continue
        first = next(iter(written.items()), None)
        where = first[1].where(("agent", *first[0])) if first is not None else otherwise
        more = "".join(
            f"; agent.{'.'.join(key)} is set at {file.where(('agent', *key))}"
            for key, file in written.items()
            if first is not None and file is not first[1]
        )
        text = f"{where}: {problem.rstrip('.')}{more}. Agent runs refuse to start until then"
        setting = f"agent.{'.'.join(first[0])}" if first is not None else f"agent.{'.'.join(keys[0])}"
        file = first[1].path if first is not None else str(otherwise)
        said.append(SettingsMessage(text, setting, file, "unusable"))
    return said


def run_refusal(
    root: Path, settings: Settings, *, env: Mapping[str, str] | None = None, trusted: Collection[str] = ()
) -> str | None:
    """Why no run can start with `settings`, the settings of the workspace `root` as a front end holds
    them (the language server's, with the editor's over the files; ``agentls acp``'s): its settings that
    no run can use (`unusable`), each with the file and line that sets it (the workspace's file as
    applied, without the sensitive values not trusted, else the user's own; else the editor's settings),
    and what to change. None: a run may start. Made before the run opens the index, which may take
    minutes to build. The settings files are read again (for the lines) only when something is unusable:
    every run a front end starts asks. `trusted`: `load_settings`' (the sensitive values trusted for
    `root` beyond the trust file, whose lines name them)."""
    if not settings.agent.unusable():
        return None
    files = applied_files(root, env, trusted=trusted)
    said = unusable(settings, files, EDITOR_SETTINGS)
    if not said:
        return None
    written = [
        file.path
        for file in files
        if any(line.startswith(f"{file.path}:") or f" is set at {file.path}:" in line for line in said)
    ]
    return setting_to_fix(SettingsError("\n".join(said)), written or [EDITOR_SETTINGS])


def load_settings(
    root: Path | None,
    overrides: Mapping[str, Any] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    trusted: Collection[str] = (),
) -> LoadedSettings:
    """The settings of the workspace `root` (`server.settings_files.load`; None: no workspace, the user's
    own file alone), `overrides` (the editor's) last, validated as the whole tree. `trusted`: fingerprints
    of the workspace's sensitive values trusted beyond the trust file (`server.settings_files.load`)."""
    return load(root, validate_settings, overrides, env=env, trusted=trusted)
