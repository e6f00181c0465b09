"""Errors of model calls, shared by every provider; each message says what happened and what to do."""

from __future__ import annotations

from agent.settings_error import SettingsError
from agent.usage import Usage

__all__ = ["AuthenticationFailed", "Cancelled", "ModelError", "RetriesExhausted", "UnknownProvider"]


class ModelError(Exception):
    """A model call failed; the message says what happened and what to do."""

    def __init__(
        self, message: str, *, status_code: int | None = None, request_id: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.request_id = request_id
        self.usage = Usage()
        """Tokens the provider reported for the call's attempts before it failed (streams that broke off
        after they began): billed, so the caller counts them (`ModelResponse.broken_usage`)."""
        self.unmetered_streams: tuple[int, ...] = ()
        """Attempts that broke off (or were cancelled) before they reported usage: their estimated output
        tokens (`ModelResponse.unmetered_streams`)."""


class AuthenticationFailed(ModelError):
    """The API key is missing or was rejected."""


class RetriesExhausted(ModelError):
    """Every attempt failed with a retryable error, or the deadline came first."""

    def __init__(
        self,
        message: str,
        *,
        attempts: int,
        status_code: int | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, request_id=request_id)
        self.attempts = attempts


class Cancelled(ModelError):
    """The caller cancelled the call."""


class UnknownProvider(ModelError, SettingsError):
    """`agent.model.provider` names no provider agentls has: a setting to fix, not a failed call."""
