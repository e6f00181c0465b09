"""Keeping secret values from the model: the agent's side of `indexing.secrets`.

- `RedactingModel` wraps a model client: every request's messages (task prompt and retrieved context,
  file views, command and test output, search hits, diagnostics, reflections) go through the run's
  `indexing.secrets.Redactor` before they leave, whatever part of the agent produced them. The
  conversation grows by appending, so each text is redacted once and remembered (prompt caching still
  sees a byte-identical prefix).
- `guard_tool_call` maps placeholders in an editor call back to the values (so an edit next to a key
  keeps the key) and turns an edit that would change, remove or copy a value into a `ToolError` the
  model reads. Commands are left alone: a placeholder the model writes in a command stays text.
- `secret_redactor` builds the run's `Redactor` with the per-user placeholder key, the same key the
  index uses, so a placeholder in a search hit and in a file view is the same. It first learns the
  values of the files the index found secrets in, so command output that prints one bare is redacted
  too.

Commands run on the real files: a command that prints a value bare is redacted (its value is known), and
so is one that prints it in base64, hex, percent-encoded, reversed, or compressed then base64 or hex
(`indexing.secret_encodings`); one that encrypts it or encodes it otherwise is not. That is the limit
SECURITY.md states.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from agent.paths import PathRefused, resolve_in_workspace
from agent.ports import CodeIndex
from agent.tools import ToolError
from indexing.secrets import Redactor, SecretEditRefused, load_key

__all__ = ["RedactingModel", "guard_tool_call", "secret_redactor"]

log = logging.getLogger(__name__)

_CACHE_LIMIT = 4096
_MAX_SECRET_FILE_BYTES = 4 << 20  # larger than the index takes by default


def secret_redactor(
    cache_dir: Path, *, allow_values: bool = False, root: Path | None = None, index: CodeIndex | None = None
) -> Redactor:
    """The `Redactor` for one run, keyed like the index in `cache_dir`. With the workspace's `index`, it
    learns (in a thread, before anything is redacted) the values of the files the index found secrets in,
    so that a command printing one bare, from a file the run never opened, shows its placeholder."""
    redactor = Redactor(load_key(cache_dir), allow_values=allow_values)
    if index is not None and root is not None and not allow_values:
        redactor.learn_in_background(lambda: _secret_files(root, index))
    return redactor


def _secret_files(root: Path, index: CodeIndex) -> Iterator[tuple[str, str]]:
    """(text, path) of the workspace files the index holds secret placeholders for, read from disk."""
    for rel in index.secret_paths():
        try:
            path = root / resolve_in_workspace(root, rel)  # a link leading out since: refused
            if not path.is_file() or path.stat().st_size > _MAX_SECRET_FILE_BYTES:
                continue
            yield path.read_text(encoding="utf-8", errors="replace"), rel
        except (PathRefused, OSError):  # refused, or gone since
            continue


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
