"""`SettingsError`: a setting the user wrote stops a run; the user fixes it, it is no bug of agentls.

Raised where a setting turns out unusable when a run is built: a role's model that changes the provider
(``[agent.roles.NAME.model]``), a provider agentls does not have, a missing API key, a base URL that is no
URL. Its message names the setting, says what is wrong and how to fix it. `agent.runner.start_run`, which
the command line, the language server and ``agentls acp`` all start runs with, and the loops of a run
(`agent.loop`, `agent.team.engine`) tell it apart from an unexpected exception with `setting_to_fix`: only
the latter is called a bug of agentls. The settings reader makes the same checks of the settings files
(`agent.config.AgentSettings.unusable`, `server.settings.unusable`), so that the front ends refuse such a
run before it opens the index, naming the file and line; the run's own check remains for what the
environment sets (``ANTHROPIC_BASE_URL``). This module imports nothing, so every layer can raise it.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["SETTINGS_FILES", "SettingsError", "setting_to_fix"]

SETTINGS_FILES = (
    "the workspace's agentls.toml (or [tool.agentls] in its pyproject.toml) or your own agentls.toml "
    "(in $XDG_CONFIG_HOME/agentls, by default ~/.config/agentls)"
)
"""Where a setting may have come from, for a message that does not know which file it was."""


class SettingsError(ValueError):
    """A setting cannot be used; the message names it, says what is wrong and how to fix it. `in_file`:
    the setting is one of a settings file (False: an environment variable, which the message names)."""

    def __init__(self, message: str, *, in_file: bool = True) -> None:
        super().__init__(message)
        self.in_file = in_file


def setting_to_fix(error: BaseException, files: Sequence[str] = ()) -> str | None:
    """What to tell the user about `error` when a setting of theirs caused it: its message and where to
    fix it (`files`, the settings files read, else `SETTINGS_FILES`). None: `error` is not a setting's,
    an unexpected exception (a bug)."""
    if not isinstance(error, SettingsError):
        return None
    said = str(error).rstrip()
    if not said.endswith("."):
        said += "."
    if not error.in_file:
        return said
    where = " or ".join(files) if files else SETTINGS_FILES
    return f"{said} This is a setting, not a bug in agentls: change it in {where}, then start again."
