"""An in-process scripted model for unit tests: enqueue the replies, run the loop, read the requests.

    model = ScriptedModel()
    model.enqueue(tool_call("bash", {"command": "ls"}), reply("Done."))
    agent = Agent(model, settings, ...)

Each `complete` call records a `ScriptedRequest` (copies of system, tools and messages) and returns the
next queued `ModelResponse` (or raises the next queued exception). When the script runs out it raises a
`ModelError` that says so, so a test fails loudly instead of hanging. No network, no SDK.
"""

from __future__ import annotations

import copy
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agent.models.errors import Cancelled, ModelError
from agent.models.types import ModelResponse
from agent.usage import Usage

__all__ = ["ScriptedModel", "ScriptedRequest", "reply", "tool_call"]

_calls = 0


def _next_id() -> str:
    global _calls
    _calls += 1
    return f"toolu_scripted_{_calls:04d}"


def reply(
    text: str = "",
    *tool_calls: Mapping[str, Any],
    stop_reason: str | None = None,
    usage: Usage | None = None,
) -> ModelResponse:
    """An assistant turn with `text` and the given `tool_call(...)` blocks; the stop reason follows them."""
    content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    content.extend(dict(call) for call in tool_calls)
    return ModelResponse(
        content=tuple(content),
        stop_reason=stop_reason or ("tool_use" if tool_calls else "end_turn"),
        usage=usage or Usage(input_tokens=10, output_tokens=5),
        model="scripted",
    )


def tool_call(name: str, input: Mapping[str, Any], id: str | None = None) -> dict[str, Any]:
    """A canonical `tool_use` block, for `reply` (or enqueue it alone: a turn with just that call)."""
    return {"type": "tool_use", "id": id or _next_id(), "name": name, "input": dict(input)}


@dataclass(frozen=True)
class ScriptedRequest:
    """What one `complete` call received."""

    system: str | list[dict[str, Any]]
    tools: list[dict[str, Any]]
    messages: list[dict[str, Any]]
    max_tokens: int | None = None


class ScriptedModel:
    """A `agent.ports.Model` that answers from a queue; `provider` is "scripted" (priced at 0)."""

    def __init__(
        self, *items: ModelResponse | Mapping[str, Any] | BaseException, name: str = "scripted"
    ) -> None:
        self._queue: deque[ModelResponse | BaseException] = deque()
        self._lock = threading.Lock()
        self._name = name
        self.requests: list[ScriptedRequest] = []
        self.enqueue(*items)

    @property
    def model_name(self) -> str:
        """The name given at construction ("scripted")."""
        return self._name

    @property
    def provider(self) -> str:
        """`scripted`."""
        return "scripted"

    @property
    def pending(self) -> int:
        """Replies not consumed yet."""
        return len(self._queue)

    def enqueue(self, *items: ModelResponse | Mapping[str, Any] | BaseException) -> ScriptedModel:
        """Queue replies in order: a `ModelResponse`, a bare `tool_call(...)` block, or an exception."""
        with self._lock:
            for item in items:
                if isinstance(item, ModelResponse | BaseException):
                    self._queue.append(item)
                else:
                    self._queue.append(reply("", item))
        return self

    def close(self) -> None:
        """Nothing to release."""

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
        """Record the request and return (or raise) the next queued item."""
        if cancel is not None and cancel.is_set():
            raise Cancelled("The model call was cancelled.")
        with self._lock:
            self.requests.append(
                ScriptedRequest(
                    system=system if isinstance(system, str) else [dict(block) for block in system],
                    tools=[dict(tool) for tool in tools],
                    messages=copy.deepcopy([dict(message) for message in messages]),
                    max_tokens=max_tokens,
                )
            )
            if not self._queue:
                raise ModelError(
                    f"The scripted model has no reply left for request {len(self.requests)}: enqueue more."
                )
            item = self._queue.popleft()
        if isinstance(item, BaseException):
            raise item
        if on_text is not None and item.text:
            on_text(item.text)
        return item
