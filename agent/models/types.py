"""The canonical conversation the agent loop speaks, whatever the provider.

A provider (`agent.models.anthropic`, `agent.models.openai_compat`, `agent.models.scripted`) takes
these and converts them to its wire format, and converts its reply back to a `ModelResponse`.

- Tool definitions: `{"name", "description", "input_schema"}` (a JSON schema). The Anthropic provider
  also accepts its built-in tool entries (`{"type": "text_editor_20250728", "name": ...}`); the tool
  registry renders those as plain function definitions for every other provider.
- Messages: `{"role": "user" | "assistant", "content": str | [block, ...]}` with blocks
  `{"type": "text", "text"}`, `{"type": "tool_use", "id", "name", "input"}` (assistant) and
  `{"type": "tool_result", "tool_use_id", "content": str | [block, ...], "is_error"?: bool}` (user; a
  list holds a text block and the `{"type": "image", "source": {"type": "base64", "media_type", "data"}}`
  blocks of an MCP tool's images, `agent.images`: a model that cannot see gets a note for each). Blocks
  of other types (Anthropic's `thinking`) are provider-specific: they go back to the provider that
  produced them and are dropped by the others.
- Stop reasons: "end_turn", "tool_use", "max_tokens", "refusal" (providers map theirs onto these).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from agent.usage import Usage

__all__ = ["STOP_REASONS", "ModelResponse", "StopReason", "ToolCall"]

StopReason = Literal["end_turn", "tool_use", "max_tokens", "refusal"]
STOP_REASONS: frozenset[str] = frozenset({"end_turn", "tool_use", "max_tokens", "refusal"})


@dataclass(frozen=True)
class ToolCall:
    """One tool call the model asked for."""

    id: str
    name: str
    input: dict[str, Any]

    def as_block(self) -> dict[str, Any]:
        """The canonical `tool_use` block."""
        return {"type": "tool_use", "id": self.id, "name": self.name, "input": dict(self.input)}


@dataclass(frozen=True)
class ModelResponse:
    """One assistant turn. `content` holds canonical blocks, ready to send back as history."""

    content: tuple[dict[str, Any], ...]
    stop_reason: str | None
    """One of `STOP_REASONS`, or a provider's own reason when it has no equivalent (None if unknown)."""
    usage: Usage
    model: str
    request_id: str | None = None
    latency_seconds: float = 0.0
    """Wall time of the whole call, retries and backoff included."""
    attempts: int = 1
    broken_usage: Usage = field(default_factory=Usage)
    """Tokens the provider reported for attempts of this call whose stream broke off (retried): they are
    billed, so the run counts them too, but they are not this reply's context, which `usage` measures."""
    unmetered_streams: tuple[int, ...] = ()
    """Attempts of this call whose stream broke off before it reported any usage (an OpenAI-compatible
    stream reports it only in its last chunk): the output tokens each had sent, estimated from its
    characters. Each was billed for its prompt too, which the caller estimates (`agent.loop`)."""
    input_errors: Mapping[str, str] = field(default_factory=dict)
    """Tool call id -> why that call's input could not be read (arguments that are not a JSON object),
    for providers whose tool inputs arrive as text; such a call's `input` is {} and the loop does not run
    it but tells the model this."""

    @property
    def text(self) -> str:
        """The text blocks joined (thinking excluded)."""
        return "".join(str(block.get("text", "")) for block in self.content if block.get("type") == "text")

    @property
    def tool_calls(self) -> tuple[ToolCall, ...]:
        """The tool calls, in order."""
        return tuple(
            ToolCall(id=str(block.get("id", "")), name=str(block.get("name", "")), input=dict(block["input"]))
            if isinstance(block.get("input"), dict)
            else ToolCall(id=str(block.get("id", "")), name=str(block.get("name", "")), input={})
            for block in self.tool_uses
        )

    @property
    def tool_uses(self) -> tuple[dict[str, Any], ...]:
        """The `tool_use` blocks, in order."""
        return tuple(block for block in self.content if block.get("type") == "tool_use")

    def as_message(self) -> dict[str, Any]:
        """The turn as a `{"role": "assistant", ...}` message for the next request's history."""
        return {"role": "assistant", "content": [dict(block) for block in self.content]}
