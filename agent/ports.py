"""The ports of the agent: the Protocols it depends on instead of concrete classes.

- `Model`: one assistant turn for a conversation (`agent.models`: Anthropic, OpenAI-compatible, scripted).
- `CodeIndex`: the part of the workspace index the agent reads, hybrid `search` and `find_symbols`
  (plus the index's `settings`, which say what the walker skips when context gathering scans for
  tests). `indexing.service.WorkspaceIndex` satisfies it structurally; nothing in `indexing` imports the
  agent, and `import agent.loop` does not load LanceDB (a test checks it).
- `Sandbox`: runs a command isolated on a materialized copy of the overlay (`agent.sandbox.Sandbox`).
- `EventSink`: receives the run's progress events (`agent.loop.AgentEvent`).

These are typing contracts only: importing this module imports no SDK, no LanceDB and no agent module
with side effects.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from agent.loop import AgentEvent
    from agent.models.types import ModelResponse
    from agent.sandbox import CommandResult, SandboxSettings
    from indexing.config import IndexSettings
    from indexing.models import SearchHit, Symbol

__all__ = ["CodeIndex", "EventSink", "Model", "Sandbox"]


class Model(Protocol):
    """What the agent loop needs from a model provider.

    `system`, `tools` and `messages` are in the canonical form of `agent.models.types` (tool definitions
    as JSON-schema dicts, conversation turns as content blocks); each provider converts them to its wire
    format and its reply back to a canonical `ModelResponse`.
    """

    @property
    def model_name(self) -> str:
        """The model id, for pricing and transcripts."""
        ...

    @property
    def provider(self) -> str:
        """The provider key (`anthropic`, `openai`, `scripted`): prices and tool rendering depend on it."""
        ...

    def complete(
        self,
        system: str | Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]],
        messages: Sequence[Mapping[str, Any]],
        *,
        on_text: Callable[[str], None] | None = None,
        cancel: threading.Event | None = None,
        max_tokens: int | None = None,
    ) -> ModelResponse:
        """One assistant turn for the conversation so far (`max_tokens` None: the configured cap)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class CodeIndex(Protocol):
    """The workspace index as the agent reads it: `indexing.service.WorkspaceIndex` fits structurally."""

    @property
    def settings(self) -> IndexSettings:
        """What the index covers (the walker's exclusions are reused when scanning for tests)."""
        ...

    def search(
        self,
        query: str,
        *,
        limit: int = 10,
        path: str | None = None,
        files: bool = False,
        diverse: bool = True,
    ) -> list[SearchHit]:
        """Hybrid search over the chunks, best first; `path` limits it to a folder or file; `files`: each
        file once, at its best chunk; `diverse` False: a file's hits past its fourth are not demoted."""
        ...

    def find_symbols(
        self,
        name: str,
        *,
        prefix: bool = False,
        role: str | None = None,
        path: str | None = None,
        limit: int = 200,
    ) -> list[Symbol]:
        """Definitions and references by exact name (or prefix), optionally of one role or file."""
        ...

    def secret_paths(self) -> list[str]:
        """Workspace-relative paths of the indexed files that hold secret values (their values are learnt
        before a run's commands can print them)."""
        ...


class Sandbox(Protocol):
    """Runs commands isolated from the machine (`agent.sandbox.Sandbox`)."""

    @property
    def settings(self) -> SandboxSettings:
        """Limits and options (timeouts, scratch folder)."""
        ...

    @property
    def isolated(self) -> bool:
        """Whether commands run isolated (raises `agent.sandbox.SandboxUnavailable` when they may not run)."""
        ...

    def run(
        self,
        cmd: str | Sequence[str],
        cwd_dir: Path,
        *,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        cancel: threading.Event | None = None,
        mount_at: Path | None = None,
        ro_binds: Sequence[tuple[Path, Path]] = (),
        tmp_dir: Path | None = None,
        cwd_bytes: int | None = None,
    ) -> CommandResult:
        """Run `cmd` with `cwd_dir` as its writable working directory (`tmp_dir`: a persistent /tmp;
        `cwd_bytes`: what `cwd_dir` takes, when the caller just made it)."""
        ...


class EventSink(Protocol):
    """Receives the progress of a run (the CLI prints it, the server sends `$/progress`)."""

    def __call__(self, event: AgentEvent, /) -> None:
        """Handle one event; exceptions are logged by the loop and never end the run."""
        ...


def _conforms() -> None:  # pragma: no cover - checked by mypy, never called
    """Type-check that the concrete classes satisfy the ports."""
    from agent.sandbox import Sandbox as ConcreteSandbox
    from indexing.service import WorkspaceIndex

    def index(value: WorkspaceIndex) -> CodeIndex:
        return value

    def sandbox(value: ConcreteSandbox) -> Sandbox:
        return value

    del index, sandbox
