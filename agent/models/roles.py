"""Model clients by role for one run: ``[agent.roles.NAME.model]`` honoured when a role's model is loaded.

`RoleModels(settings, load, default)` is the `models` callable of `agent.loop.Agent` (role name -> model
client). A role without settings of its own gets `default`, the run's client (so its calls share the
run's HTTP connection and prompt cache); a role with ``[agent.roles.NAME.model]`` gets a client loaded
once with `AgentSettings.model_for(NAME)` (``[agent.model]`` with the role's fields over it) through
`load` (`agent.models.load_model` with the run's credentials, wrapped as the run wraps its own).
`close` closes the clients it loaded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent.config import AgentSettings, ModelSettings
    from agent.ports import Model

__all__ = ["RoleModels"]

log = logging.getLogger(__name__)


class RoleModels:
    """The model client of each role of one run."""

    def __init__(
        self, settings: AgentSettings, load: Callable[[ModelSettings], Model], default: Model
    ) -> None:
        self.settings = settings
        self.load = load
        self.default = default
        self._loaded: dict[str, Model] = {}

    def __call__(self, role: str) -> Model:
        """The client of `role`; raises `agent.settings_error.SettingsError` for a role setting that changes
        the provider."""
        wanted = self.settings.model_for(role)
        if wanted == self.settings.model:
            return self.default
        key = wanted.model_dump_json()
        model = self._loaded.get(key)
        if model is None:
            model = self._loaded[key] = self.load(wanted)
            log.info("role %s uses the model %s", role, wanted.model)
        return model

    def close(self) -> None:
        """Close the clients loaded for roles (not `default`, which belongs to the caller)."""
        for model in self._loaded.values():
            close = getattr(model, "close", None)
            if callable(close):
                try:
                    close()
                except Exception:
                    log.exception("closing a role's model client failed")
        self._loaded.clear()
