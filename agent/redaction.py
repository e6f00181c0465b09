"""Keeping secret values from the model: the agent's side of `indexing.secrets`.

- `RedactingModel` wraps a model client: every request's messages (task prompt and retrieved context,
  file views, command and test output, search hits, diagnostics, reflections), its system prompt and its
  tools' descriptions (an MCP server's) go through the run's `indexing.secrets.Redactor` before they
  leave, whatever part of the agent produced them.
- `RedactionCache` is where the conversation's texts are redacted: it grows by appending, so each text
  is redacted once and remembered, for the model's requests (prompt caching still sees a byte-identical
  prefix), the loop's tool-result events and the run's state saved after each step that changed a file
  (`agent.loop.Agent._save_state`), which would otherwise redact the whole conversation each time.
- `guard_tool_call` maps placeholders in an editor call back to the text they replaced in the file (so
  an edit next to a key keeps the key, and a value written there only in base64, hex or percent-encoded
  comes back as that encoded text, not decoded: `indexing.secrets.Redactor.restore_edit`) and turns an
  edit that would change, remove or copy a value into a `ToolError` the model reads. The transcript
  records the call as the model made it, with its placeholders. Commands are left alone: a placeholder
  the model writes in a command stays text.
- `secret_redactor` builds the run's `Redactor` with the per-user placeholder key, the same key the
  index uses, so a placeholder in a search hit and in a file view is the same. It first learns the
  values of the files the index found secrets in, so command output that prints one bare is redacted
  too.

An image (an MCP tool's screenshot) is pixels: what it shows is not read. Its data is checked once, as it
comes: one whose base64 holds a known value in an encoding the `Redactor` knows, or whose text besides the
pixels (PNG text chunks, compressed or not, JPEG comments, EXIF, XMP: `agent.images.metadata_text`) holds
a known value or one the detectors find, is not sent (`agent.loop.Agent._call_tool`), so requests pass
image blocks as they are.

Commands run on the real files: a command that prints a value bare is redacted (its value is known), and
so is one that prints it in base64, hex, percent-encoded, reversed, or compressed then base64 or hex
(`indexing.secret_encodings`); one that encrypts it or encodes it otherwise is not. That is the limit
SECURITY.md states.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from agent.paths import PathRefused, resolve_in_workspace
from agent.ports import CodeIndex
from agent.tools import ToolError
from indexing.secrets import Redactor, SecretEditRefused, load_key

__all__ = ["RedactingModel", "RedactionCache", "guard_tool_call", "secret_redactor"]

log = logging.getLogger(__name__)

_CACHE_LIMIT = 4096
"""Texts a `RedactionCache` keeps (the least recently used is dropped first)."""
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


class RedactionCache:
    """One run's redactions, each text redacted by the `Redactor` once, at most `_CACHE_LIMIT` texts.

    A text has two redactions, usually the same string:

    - `sent`: what the model got the first time the text was in a request. It stays as it was for the
      rest of the run, even after the run learns a value the text holds bare (no detector saw it): that
      request already carried the value, sending the same bytes again tells the model nothing new, and
      prompt caching needs the prefix unchanged.
    - `current`: the text with every value the run knows *now* withheld, for what is written to disk (the
      saved state) and shown to the user. It is exactly what `Redactor.redact` would return now: a
      redaction made before the `Redactor` learnt another value (`Redactor.known` grew) is made again, so
      a value learnt late is a placeholder on disk even in the texts that came before it. That redoes the
      conversation once per value met for the first time, not once per save.
    """

    def __init__(self, secrets: Redactor) -> None:
        self.secrets = secrets
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def sent(self, text: str) -> str:
        """`text` as the model got it the first time (redacted now if it is new)."""
        entry = self._entry(text)
        if entry is not None and entry.sent is not None:
            return entry.sent
        redacted = self.current(text)
        with self._lock:
            entry = self._entries.get(text)
            if entry is not None and entry.sent is None:
                entry.sent = redacted
        return redacted

    def current(self, text: str) -> str:
        """`text` with every secret value the run knows now replaced (`Redactor.redact`, remembered)."""
        known = self.secrets.known  # read before: a value learnt during the redaction makes it stale
        entry = self._entry(text)
        if entry is not None and entry.known == known:
            return entry.redacted
        redacted = self.secrets.redact(text)
        if redacted == text:
            redacted = text  # one copy kept when nothing was withheld
        with self._lock:
            entry = self._entries.get(text)
            if entry is None:
                self._entries[text] = _Entry(known, redacted)
                while len(self._entries) > _CACHE_LIMIT:
                    self._entries.popitem(last=False)
            elif known >= entry.known:
                entry.known, entry.redacted = known, redacted
        return redacted

    def sent_value(self, value: Any) -> Any:
        """`sent` applied to every text inside a message (lists, tuples, dicts; identifiers left alone)."""
        return _each_text(value, self.sent)

    def current_value(self, value: Any) -> Any:
        """`current` applied to every text inside a message (lists, tuples, dicts; identifiers left alone)."""
        return _each_text(value, self.current)

    def _entry(self, text: str) -> _Entry | None:
        with self._lock:
            entry = self._entries.get(text)
            if entry is not None:
                self._entries.move_to_end(text)
            return entry


class _Entry:
    """One text's redactions: `redacted` is exact while the `Redactor` knows `known` values."""

    __slots__ = ("known", "redacted", "sent")

    def __init__(self, known: int, redacted: str) -> None:
        self.known = known
        self.redacted = redacted
        self.sent: str | None = None


def _each_text(value: Any, redact: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        if value.get("type") == "image":  # base64 data, checked once as it came (`Agent._call_tool`)
            return value
        return {k: v if k in _KEEP else _each_text(v, redact) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_each_text(v, redact) for v in value]
    return value


# Fields that are identifiers, not text: never rewritten (a tool_use id must match its tool_result).
_KEEP = frozenset({"type", "id", "tool_use_id", "name", "role", "cache_control", "signature"})


class RedactingModel:
    """A model client whose requests never carry a secret value (see the module docstring). Its
    `redaction` is the run's `RedactionCache`: the agent redacts what it saves through it too."""

    def __init__(self, model: Any, secrets: Redactor) -> None:
        self._model = model
        self.secrets = secrets
        self.redaction = RedactionCache(secrets)

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
        clean = [self.redaction.sent_value(message) for message in messages]
        # The system prompt (instruction files, the git branch) and the tools' descriptions (an MCP
        # server's own words) are text from outside too; redacted once each, so the prefix stays the same.
        system = self.redaction.sent(system) if isinstance(system, str) else self.redaction.sent_value(system)
        return self._model.complete(system, self.redaction.sent_value(tools), clean, **options)


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
