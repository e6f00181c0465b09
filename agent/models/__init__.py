"""Model providers behind one port: `load_model(settings, credentials)` picks one by `settings.provider`.

- `anthropic` (default): Claude through the Messages API (`agent.models.anthropic`).
- `openai`: any OpenAI-compatible Chat Completions endpoint, OpenAI, Ollama, vLLM, LM Studio and
  OpenRouter included (`agent.models.openai_compat`).
- `scripted` is not a setting: `agent.models.scripted.ScriptedModel` is built directly by tests.

Every provider satisfies `agent.ports.Model`, takes and returns the canonical conversation of
`agent.models.types`, and raises the errors of `agent.models.errors`. Providers are imported when
loaded, so importing this package imports no SDK. `Credentials.from_env` is the one place that reads the
provider's key, token and base URL from an environment mapping the entry point hands in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agent.config import PROVIDERS, ModelSettings, base_url_problem, unknown_provider_message
from agent.models.errors import (
    AuthenticationFailed,
    Cancelled,
    ModelError,
    RetriesExhausted,
    UnknownProvider,
)
from agent.models.types import ModelResponse, ToolCall
from agent.settings_error import SettingsError

if TYPE_CHECKING:
    from agent.ports import Model

__all__ = [
    "PROVIDERS",
    "AuthenticationFailed",
    "Cancelled",
    "Credentials",
    "MissingCredentials",
    "ModelError",
    "ModelResponse",
    "RetriesExhausted",
    "ToolCall",
    "UnknownProvider",
    "load_model",
]

ANTHROPIC_KEYS_URL = "https://console.anthropic.com/settings/keys"


def missing_anthropic_key_message(key_env: str = "ANTHROPIC_API_KEY") -> str:
    """What to tell the user when no Anthropic API key was configured."""
    return (
        f"{key_env} is missing: set it to an API key from {ANTHROPIC_KEYS_URL}, or set ANTHROPIC_BASE_URL "
        f"to a compatible endpoint and {key_env} to the key it expects. For another provider set "
        "agent.model.provider (see README, 'Other model providers')."
    )


class MissingCredentials(SettingsError):
    """The configured model cannot be reached: no key, or no such provider. The message says what to do."""


@dataclass(frozen=True)
class Credentials:
    """How to reach the model's API: a key or token and a base URL, read from the environment."""

    api_key: str | None
    auth_token: str | None = None
    base_url: str | None = None
    provider: str = "anthropic"

    @classmethod
    def from_env(cls, env: Mapping[str, str], settings: ModelSettings | None = None) -> Credentials:
        """Read the credentials `settings.provider` needs from `env`.

        Anthropic: `api_key_env` (default ANTHROPIC_API_KEY) or ANTHROPIC_AUTH_TOKEN, required; base URL
        from the settings, else ANTHROPIC_BASE_URL. OpenAI-compatible: `api_key_env` (default
        OPENAI_API_KEY), optional (Ollama and LM Studio need none); base URL from the settings, else
        OPENAI_BASE_URL. Raises `MissingCredentials` when the Anthropic key is missing or the provider is
        unknown.
        """
        settings = settings or ModelSettings()
        provider = settings.provider
        if provider == "openai":
            return cls(
                api_key=env.get(settings.api_key_env or "OPENAI_API_KEY") or None,
                base_url=settings.base_url or env.get("OPENAI_BASE_URL") or None,
                provider=provider,
            )
        if provider != "anthropic":
            raise MissingCredentials(unknown_provider_message(provider))
        key_env = settings.api_key_env or "ANTHROPIC_API_KEY"
        creds = cls(
            api_key=env.get(key_env) or None,
            auth_token=env.get("ANTHROPIC_AUTH_TOKEN") or None,
            base_url=settings.base_url or env.get("ANTHROPIC_BASE_URL") or None,
            provider=provider,
        )
        if creds.api_key is None and creds.auth_token is None:
            raise MissingCredentials(missing_anthropic_key_message(key_env), in_file=False)
        return creds

    @property
    def secrets(self) -> list[str]:
        """Values a transcript must never contain."""
        return [s for s in (self.api_key, self.auth_token) if s]


def load_model(settings: ModelSettings, credentials: Credentials | None = None) -> Model:
    """The model client for `settings.provider`; raises `UnknownProvider` with the accepted values, and
    `SettingsError` for a base URL that is not an http(s) URL (`agent.model.base_url` or the environment's).

    `credentials` None means none (the Anthropic model then refuses to call with `AuthenticationFailed`).
    """
    credentials = credentials or Credentials(api_key=None, provider=settings.provider)
    _check_base_url(settings, credentials.base_url)
    if settings.provider == "anthropic":
        from agent.models.anthropic import AnthropicModel

        return AnthropicModel(
            settings,
            api_key=credentials.api_key,
            base_url=credentials.base_url,
            auth_token=credentials.auth_token,
        )
    if settings.provider == "openai":
        from agent.models.openai_compat import OpenAICompatModel

        return OpenAICompatModel(settings, api_key=credentials.api_key, base_url=credentials.base_url)
    raise UnknownProvider(unknown_provider_message(settings.provider))


def _check_base_url(settings: ModelSettings, url: str | None) -> None:
    """Raise `SettingsError` when `url`, the model API's base URL, is no http(s) URL with a host
    (`agent.config.base_url_problem`): the setting or environment variable it came from, and what to set
    instead. The settings reader makes the same check of ``agent.model.base_url`` (`AgentSettings.unusable`);
    this one also covers the environment's."""
    if url is None:
        return
    if settings.base_url:
        where, in_file = "agent.model.base_url", True
    else:
        where, in_file = ("ANTHROPIC" if settings.provider == "anthropic" else "OPENAI") + "_BASE_URL", False
    problem = base_url_problem(url, settings.provider, where)
    if problem is not None:
        raise SettingsError(problem, in_file=in_file)
