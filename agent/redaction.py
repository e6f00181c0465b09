"""Keeping secret values from the model: the agent's side of `indexing.secrets`.

- `RedactingModel` wraps a model client: every request's messages (task prompt and retrieved context,
  file views, command and test output, search hits, diagnostics, reflections) go through the run's
  `indexing.secrets.Redactor` before they leave, whatever part of the agent produced them. The
  conversation grows by appending, so each text is redacted once and remembered (prompt caching still
  sees a byte-identical prefix).
- `guard_tool_call` maps placeholders in an editor call back to the values (so an edit next to a key
  keeps the key) and turns an edit that would change, remove or copy a value into a `ToolError` the
  model reads. Commands are left alone: a command sees placeholders as text, so it cannot print a value.
- `secret_redactor` builds the run's `Redactor` with the per-user placeholder key, the same key the
  index uses, so a placeholder in a search hit and in a file view is the same.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from agent.tools import ToolError
from indexing.secrets import Redactor, SecretEditRefused, load_key

__all__ = ["RedactingModel", "guard_tool_call", "secret_redactor"]

log = logging.getLogger(__name__)

_CACHE_LIMIT = 4096


def secret_redactor(cache_dir: Path, *, allow_values: bool = False) -> Redactor:
    """The `Redactor` for one run, keyed like the index in `cache_dir`."""
    return Redactor(load_key(cache_dir), allow_values=allow_values)


class RedactingModel:
    """A model client whose requests never carry a secret value (see the module docstring)."""

    def __init__(self, model: Any, secrets: Redactor) -> None:
        self._model = model
        self.secrets = secrets
        self._cache: dict[str, str] = {}
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    @property
    def model_name(self) -> str:
        return str(self._model.model_name)

    def complete(
        self,
        system: str | Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]],
        messages: Sequence[Mapping[str, Any]],
        **options: Any,
    ) -> Any:
        clean = [self._clean(message) for message in messages]
        return self._model.complete(system, tools, clean, **options)

    def _text(self, text: str) -> str:
        with self._lock:
            cached = self._cache.get(text)
        if cached is not None:
            return cached
        redacted = self.secrets.redact(text)
        with self._lock:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[text] = redacted
        return redacted

    def _clean(self, value: Any) -> Any:
        if isinstance(value, str):
            return self._text(value)
        if isinstance(value, Mapping):
            return {k: self._clean(v) if k not in _KEEP else v for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self._clean(v) for v in value]
        return value


# Fields that are identifiers, not text: never rewritten (a tool_use id must match its tool_result).
_KEEP = frozenset({"type", "id", "tool_use_id", "name", "role", "cache_control", "signature"})


def guard_tool_call(
    secrets: Redactor | None, name: str, input: Any, read: Callable[[str], str | None]
) -> Any:
    """`input` with placeholders mapped back for the editor; `ToolError` for a refused edit."""
    if secrets is None or not isinstance(input, Mapping):
        return input
    try:
        return secrets.restore_edit(name, input, read)
    except SecretEditRefused as refused:
        log.info("refused an edit of a secret value: %s", refused)
        raise ToolError(str(refused)) from refused
