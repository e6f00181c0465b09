"""The OpenAI-compatible provider: streamed Chat Completions with tools, over plain `httpx`.

One client for every endpoint that speaks OpenAI's `POST {base_url}/chat/completions`: OpenAI itself,
Ollama (`http://localhost:11434/v1`), vLLM (`http://HOST:8000/v1`), LM Studio (`http://localhost:1234/v1`)
and OpenRouter (`https://openrouter.ai/api/v1`); a base URL given as the whole endpoint (ending in
`/chat/completions`) is taken for its base. `OpenAICompatModel.complete` converts the canonical
conversation of `agent.models.types` to that wire format and the streamed reply back:

- tools: each canonical definition `{"name", "description", "input_schema"}` becomes
  `{"type": "function", "function": {"name", "description", "parameters": input_schema}}`. Anthropic's
  built-in editor and bash tools reach this provider already rendered as such functions, with the same
  names, semantics and input schemas (`agent.tools`, `definition(provider)`); a built-in entry is refused
  with a message, since no other API knows those types.
- messages: assistant `tool_use` blocks become `tool_calls` (arguments as a JSON string), user
  `tool_result` blocks become `role: "tool"` messages (errors prefixed with "Error: ", since the format
  has no error flag; an image in one becomes a note naming it, or, with `vision = true`, an `image_url`
  data URL in a user message after the tool messages, since a tool message holds text only),
  provider-specific blocks (thinking) are dropped, except a tool-call turn's
  `reasoning` block, which goes back as the `reasoning_content` it came as (DeepSeek refuses the
  conversation without it).
- the reply: `stream: true` with `stream_options.include_usage`; `delta.content` is text (relayed to
  `on_text`), `delta.tool_calls` fragments are joined by `index` (id and name in the first, arguments
  spread over several, a string or, as Ollama's native API has them, an object; a fragment with a new
  `id` at an index already taken, or naming a function after that index's call has whole arguments,
  starts a call of its own, since Ollama (whole calls, some with no id) and other servers stream every
  call at index 0); a call with no id, or one another call of the turn has, gets an id of its own;
  arguments that are not a JSON object become `input` {} and an entry of `ModelResponse.input_errors`
  saying what arrived, so the loop tells the model instead of running the call; `finish_reason` maps to
  the canonical stop reasons (stop and TGI's eos -> end_turn, tool_calls -> tool_use, length ->
  max_tokens, content_filter -> refusal; a reply with tool calls that says stop, eos or nothing is
  tool_use), and the usage of the final chunk is normalised: `input_tokens` is the uncached prompt,
  `cache_read_input_tokens` OpenAI's `prompt_tokens_details.cached_tokens` (DeepSeek's
  `prompt_cache_hit_tokens`). A stream whole but with no usage (a server that ignores `stream_options`)
  has its usage estimated from the characters sent and received (logged once), so budgets count it.
- reasoning is not the answer: `delta.reasoning_content` (DeepSeek, vLLM) of a turn with tool calls is
  kept as a `reasoning` block to send back, other reasoning (`delta.reasoning`, or the text before
  `</think>` of a content that carries it, as Qwen and DeepSeek-R1 through Ollama do) is dropped.
- a reply with no tool call whose text is one (`<tool_call>{...}`, `[TOOL_CALLS]`, a fenced or bare
  JSON object naming a tool with its arguments: a server that parses no tool calls for this model)
  fails the call with a `ModelError` naming the model and what to do, rather than ending the run.
- a stream that breaks off (or is cancelled) after it began, before its final usage chunk, was billed
  for its prompt and for what it sent, but reported nothing: the output tokens it sent, estimated from
  its characters (`agent.memory.estimate_tokens`), go into `ModelResponse.unmetered_streams` (or the
  error's), and the loop adds the prompt's estimate and charges it as estimated (`broken_streams`).

Retries (the loop of `agent.models.calls`) follow `indexing.http_retry` (408, 409, 429, 5xx, dropped
connections, streams that end before `finish_reason`, an error in a `data:` line of a 200 unless its
`code` is another 4xx, which fails as that status would), honour `retry-after`, and stay within
`retry_deadline_seconds`; `cancel` is honoured within about 0.1 s because the stream is read on a worker
thread. Refusals say what to do: a model without tool support, a 404 of a base URL without `/v1`, a
401 with no key sent. A server that refuses `max_tokens` for `max_completion_tokens` (OpenAI's reasoning
models) is sent that from then on. A reply whose server counted less than half the prompt sent warns
once that it cut the prompt to its window (Ollama does, silently, past 4096 tokens). The key is
optional (local servers take none) and is sent as a Bearer token. Prices: agentls keeps no price list
for these endpoints, so cost is $0 (`agent.usage.price_for` with provider "openai"), logged when the
client is made; bound such runs with the token budgets.
"""

from __future__ import annotations

import json
import logging
import queue
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import httpx

from agent.config import ModelSettings
from agent.images import NOT_SEEN, is_image, without_images
from agent.memory import estimate_tokens, is_prompt_too_long
from agent.models.calls import StreamEvents, call_with_retries, relay
from agent.models.errors import AuthenticationFailed, ModelError, RetriesExhausted
from agent.models.types import ModelResponse
from agent.usage import Usage
from indexing.http_retry import is_retryable_status, parse_retry_after, transport_errors

__all__ = ["DEFAULT_BASE_URL", "OpenAICompatModel", "to_chat_messages", "to_chat_tools"]

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
_ENDPOINT = "/chat/completions"
_FINISH_REASONS = {
    "stop": "end_turn",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "length": "max_tokens",
    "content_filter": "refusal",
    "eos": "end_turn",  # Hugging Face TGI
}
_VERSIONED = re.compile(r"/v\d+[a-z]*\d*$")
"""A base URL ending in an API version (/v1, /v1beta)."""
_NO_TOOLS = re.compile(
    r"does not support tools|tool choice requires --enable-auto-tool-choice|tools? (?:is|are) not supported",
    re.IGNORECASE,
)
"""How servers refuse tools for a model: Ollama's "registry.ollama.ai/library/X does not support tools",
vLLM's '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set'."""
_TRUNCATED_SHARE = 0.5
"""A prompt the server counts as less than this share of the estimate (which errs high) was cut."""
_SENT_BACK_REASONING = "reasoning_content"
"""The reasoning field a reply's tool-call turn must carry back in the history: DeepSeek's thinking mode
refuses (400) a conversation whose earlier tool-call turns lack their `reasoning_content`; vLLM and
Qwen's chat templates read it too. Reasoning that came as `reasoning` (OpenRouter, newer vLLM, Groq,
Ollama) or as `<think>` in the content is not sent back: no server needs it and strict ones refuse it."""


# --------------------------------------------------------------------------------------------------
# Canonical -> Chat Completions


def _text_of(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(
        str(block.get("text", ""))
        for block in content
        if isinstance(block, Mapping) and block.get("type") == "text"
    )


def to_chat_tools(tools: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Canonical tool definitions as Chat Completions function tools."""
    rendered = []
    for tool in tools:
        if "input_schema" not in tool:
            raise ModelError(
                f"The tool {tool.get('name')!r} is an Anthropic built-in tool ({tool.get('type')!r}), which "
                "OpenAI-compatible APIs do not know. This is a bug in agentls: tool definitions for this "
                "provider must be rendered with definition(provider='openai')."
            )
        function: dict[str, Any] = {"name": tool["name"], "parameters": dict(tool["input_schema"])}
        if tool.get("description"):
            function["description"] = tool["description"]
        rendered.append({"type": "function", "function": function})
    return rendered


def _result_text(content: Any) -> str:
    """A `tool_result`'s content as the text of a `tool` message (its blocks one per line)."""
    if not isinstance(content, list):
        return _text_of(content)
    return "\n".join(_text_of([block]) for block in content if isinstance(block, Mapping) and "text" in block)


def _image_parts(results: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The images of a user turn's tool results as a user message's parts (a text naming each result's,
    then its images as `image_url` data URLs), for a model that sees: a `tool` message holds text only."""
    parts: list[dict[str, Any]] = []
    for result in results:
        content = result.get("content")
        images = [block for block in content if is_image(block)] if isinstance(content, list) else []
        if not images:
            continue
        call = result.get("tool_use_id", "")
        parts.append({"type": "text", "text": f"The image(s) of the result of the tool call {call}:"})
        for image in images:
            source = image.get("source") or {}
            url = f"data:{source.get('media_type', '')};base64,{source.get('data', '')}"
            parts.append({"type": "image_url", "image_url": {"url": url}})
    return parts


def to_chat_messages(
    system: str | Sequence[Mapping[str, Any]], messages: Sequence[Mapping[str, Any]], *, vision: bool = False
) -> list[dict[str, Any]]:
    """The canonical conversation as Chat Completions messages (system first). A tool result's images
    become notes naming them, or, for a model that sees (`vision`), a user message after the `tool`
    messages that holds them."""
    if not vision:
        messages = without_images(messages, NOT_SEEN)
    out: list[dict[str, Any]] = []
    system_text = _text_of(system)
    if system_text:
        out.append({"role": "system", "content": system_text})
    for message in messages:
        role = message.get("role")
        content = message.get("content")
        if isinstance(content, str):
            out.append({"role": role, "content": content})
            continue
        blocks = [block for block in content or [] if isinstance(block, Mapping)]
        if role == "assistant":
            calls = [
                {
                    "id": str(block.get("id", "")),
                    "type": "function",
                    "function": {
                        "name": str(block.get("name", "")),
                        "arguments": json.dumps(block.get("input") or {}),
                    },
                }
                for block in blocks
                if block.get("type") == "tool_use"
            ]
            assistant: dict[str, Any] = {"role": "assistant", "content": _text_of(blocks) or None}
            if calls:
                assistant["tool_calls"] = calls
                reasoning = "".join(
                    str(block.get("text", ""))
                    for block in blocks
                    if block.get("type") == "reasoning" and block.get("field") == _SENT_BACK_REASONING
                )
                if reasoning:
                    assistant[_SENT_BACK_REASONING] = reasoning
            out.append(assistant)
            continue
        # A user turn: tool results first (they must follow the assistant's tool calls), then any text.
        results = [block for block in blocks if block.get("type") == "tool_result"]
        for block in results:
            result = _result_text(block.get("content"))
            if block.get("is_error"):
                result = f"Error: {result}"
            out.append({"role": "tool", "tool_call_id": str(block.get("tool_use_id", "")), "content": result})
        text = _text_of(blocks)
        images = _image_parts(results)
        if images:  # one user message, so that roles still alternate for the servers that require it
            after = [{"type": "text", "text": text}] if text else []
            out.append({"role": "user", "content": [*images, *after]})
        elif text:
            out.append({"role": "user", "content": text})
    return out


# --------------------------------------------------------------------------------------------------
# Chat Completions stream -> canonical


@dataclass
class _ToolCallParts:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


@dataclass
class _Accumulator:
    """Joins the chunks of one streamed completion."""

    text: list[str] = field(default_factory=list)
    reasoning: dict[str, list[str]] = field(default_factory=dict)
    """The reasoning deltas by their field (`reasoning_content`, `reasoning`)."""
    calls: list[_ToolCallParts] = field(default_factory=list)
    """The tool calls in the order they began."""
    slots: dict[int, int] = field(default_factory=dict)
    """A fragment's `index` -> its call in `calls` (the newest call begun at that index)."""
    finish_reason: str | None = None
    usage: Mapping[str, Any] | None = None
    model: str = ""
    request_id: str | None = None
    cut: bool = False
    """The stream ended (was cut) after its finish_reason but before `[DONE]`."""

    def add(self, chunk: Mapping[str, Any]) -> str:
        """Take one `chat.completion.chunk`; returns its text delta ("" for none)."""
        self.model = str(chunk.get("model") or self.model)
        self.request_id = self.request_id or (str(chunk["id"]) if chunk.get("id") else None)
        if isinstance(chunk.get("usage"), Mapping):
            self.usage = chunk["usage"]
        delta_text = ""
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            if delta.get("content"):
                delta_text += str(delta["content"])
            for name in ("reasoning_content", "reasoning"):
                if isinstance(delta.get(name), str) and delta[name]:
                    self.reasoning.setdefault(name, []).append(delta[name])
            for fragment in delta.get("tool_calls") or []:
                parts = self._call_for(fragment)
                parts.id = parts.id or str(fragment.get("id") or "")
                function = fragment.get("function") or {}
                parts.name = parts.name or str(function.get("name") or "")
                arguments = function.get("arguments")
                if isinstance(arguments, Mapping | list):  # already parsed (Ollama's native style)
                    parts.arguments.append(json.dumps(arguments))
                elif arguments:
                    parts.arguments.append(str(arguments))
            if choice.get("finish_reason"):
                self.finish_reason = str(choice["finish_reason"])
        if delta_text:
            self.text.append(delta_text)
        return delta_text

    def _call_for(self, fragment: Mapping[str, Any]) -> _ToolCallParts:
        """The call a `delta.tool_calls` fragment belongs to, begun here when it is a new one: one with a
        new id, or one naming a function after the call at its index has whole arguments (Ollama sends
        each call whole, all at index 0, some servers with no id or the same one)."""
        wire_index = fragment.get("index")
        if wire_index is None:  # no index at all: a fragment with an id begins a call, others continue one
            if self.calls and not _begins_another(fragment, self.calls[-1]):
                return self.calls[-1]
        elif int(wire_index) in self.slots:
            parts = self.calls[self.slots[int(wire_index)]]
            if not _begins_another(fragment, parts):
                return parts
        # A new call (also one with a new id at an index already taken: every call at index 0).
        self.calls.append(_ToolCallParts())
        if wire_index is not None:
            self.slots[int(wire_index)] = len(self.calls) - 1
        return self.calls[-1]

    def output_estimate(self) -> int:
        """Output tokens of what arrived so far (text, tool names and arguments), estimated; 0 for none."""
        sent = "".join(self.text) + "".join(part.name + "".join(part.arguments) for part in self.calls)
        sent += "".join("".join(pieces) for pieces in self.reasoning.values())
        return estimate_tokens(sent) if sent else 0

    def response(self, *, fallback_model: str, latency: float, attempts: int) -> ModelResponse:
        content: list[dict[str, Any]] = []
        input_errors: dict[str, str] = {}
        # Only reasoning that goes back is kept: the history is what the context management measures.
        sent_back = "".join(self.reasoning.get(_SENT_BACK_REASONING, ()))
        if sent_back and self.calls:
            content.append({"type": "reasoning", "text": sent_back, "field": _SENT_BACK_REASONING})
        _, text = split_think("".join(self.text))
        if text:
            content.append({"type": "text", "text": text})
        ids: set[str] = set()
        for parts in self.calls:
            call_id = parts.id if parts.id and parts.id not in ids else f"call_{uuid.uuid4().hex[:12]}"
            ids.add(call_id)
            arguments, problem = _arguments(parts)
            if problem:
                logger.info("tool call %s (%s): %s", parts.name, call_id, problem)
                input_errors[call_id] = problem
            content.append({"type": "tool_use", "id": call_id, "name": parts.name, "input": arguments})
        stop = _FINISH_REASONS.get(self.finish_reason or "", self.finish_reason)
        if self.calls and stop in ("end_turn", None):
            stop = "tool_use"  # some servers (Ollama) say "stop" after tool calls, or nothing
        return ModelResponse(
            content=tuple(content),
            stop_reason=stop,
            usage=normalise_usage(self.usage),
            model=self.model or fallback_model,
            request_id=self.request_id,
            latency_seconds=latency,
            attempts=attempts,
            input_errors=input_errors,
        )


def _begins_another(fragment: Mapping[str, Any], parts: _ToolCallParts) -> bool:
    """Whether a fragment at the index (or position) of the call `parts` begins a call of its own."""
    new_id = str(fragment.get("id") or "")
    if new_id and parts.id and new_id != parts.id:
        return True
    function = fragment.get("function") or {}
    if not (function.get("name") and parts.name and parts.arguments):
        return False
    try:  # a name again after whole arguments: the next call (a name repeated mid-arguments is not)
        json.loads("".join(parts.arguments))
    except ValueError:
        return False
    return True


def split_think(text: str) -> tuple[str, str]:
    """(thinking, answer) of a reply whose content carries its reasoning in `<think>...</think>` (Qwen and
    DeepSeek-R1 through Ollama, vLLM without a reasoning parser), or only the closing tag when the chat
    template opened it; a reply cut inside the thinking is all thinking. Other text is all answer."""
    stripped = text.lstrip()
    if stripped.startswith(_THINK_OPEN):
        thought, closed, answer = stripped[len(_THINK_OPEN) :].partition(_THINK_CLOSE)
        return (thought.strip(), answer.strip()) if closed else (thought.strip(), "")
    if _THINK_CLOSE in text and _THINK_OPEN not in text:
        thought, _, answer = text.partition(_THINK_CLOSE)
        return thought.strip(), answer.strip()
    return "", text


_THINK_OPEN, _THINK_CLOSE = "<think>", "</think>"


_WRITTEN_CALL = re.compile(
    r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)|\[TOOL_CALLS\]\s*(.*)|```(?:json)?\s*\n(.*?)\n\s*```",
    re.DOTALL,
)
"""Tool calls a model wrote in its text when the server did not parse them: Hermes/Qwen's `<tool_call>`,
Mistral's `[TOOL_CALLS]`, or a fenced JSON block."""


def text_tool_call(response: ModelResponse, tools: Sequence[Mapping[str, Any]]) -> str:
    """The tool call a reply with no tool calls wrote as text (a JSON object naming one of `tools`, with
    `arguments` or `parameters`: in `<tool_call>` tags, after `[TOOL_CALLS]`, in a fenced block or as
    the whole reply), or ""."""
    if response.tool_uses or not tools:
        return ""
    names = {str(tool.get("name")) for tool in tools}
    text = response.text.strip()
    candidates = [
        next(group for group in found.groups() if group is not None) for found in _WRITTEN_CALL.finditer(text)
    ]
    for candidate in [*candidates, text]:
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        for call in value if isinstance(value, list) else [value]:
            if (
                isinstance(call, Mapping)
                and str(call.get("name")) in names
                and ("arguments" in call or "parameters" in call)
            ):
                return candidate
    return ""


_JSON_KINDS: Mapping[type, str] = {
    list: "array",
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
}


def _arguments(parts: _ToolCallParts) -> tuple[dict[str, Any], str]:
    """A call's arguments as an object, and "" or, when they are not one JSON object, what arrived."""
    raw = "".join(parts.arguments).strip()
    if not raw:
        return {}, ""
    try:
        arguments = json.loads(raw)
    except ValueError as error:
        return {}, f"its arguments are not valid JSON ({error}); they were: {raw[:300]!r}"
    if not isinstance(arguments, dict):
        kind = _JSON_KINDS.get(type(arguments), "value")
        return {}, f"its arguments are a JSON {kind}, not an object; they were: {raw[:300]!r}"
    return arguments, ""


def _prompt_estimate(body: Mapping[str, Any]) -> int:
    """The prompt tokens of a Chat Completions request (its messages and tools), estimated from characters."""
    return estimate_tokens(body.get("messages", [])) + estimate_tokens(body.get("tools", []))


def normalise_usage(usage: Mapping[str, Any] | None) -> Usage:
    """OpenAI's usage (`prompt_tokens` including cached ones) in the canonical `Usage` counters."""
    if not usage:
        return Usage()
    details = usage.get("prompt_tokens_details") or {}
    cached = int(details.get("cached_tokens") or 0) if isinstance(details, Mapping) else 0
    cached = cached or int(usage.get("prompt_cache_hit_tokens") or 0)  # DeepSeek's name for them
    prompt = int(usage.get("prompt_tokens") or 0)
    return Usage(
        input_tokens=max(0, prompt - cached),
        output_tokens=int(usage.get("completion_tokens") or 0),
        cache_read_input_tokens=cached,
    )


def _sse_data(lines: Iterator[str]) -> Iterator[str]:
    """The `data:` payloads of a server-sent event stream, one per event."""
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield "\n".join(data)
                data = []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        if name == "data":
            data.append(value[1:] if value.startswith(" ") else value)
    if data:
        yield "\n".join(data)


# --------------------------------------------------------------------------------------------------
# Attempts and retries


def _retryable(error: Exception) -> _Retry:
    """An attempt's `_Retry`; any other error is the caller's to see."""
    if isinstance(error, _Retry):
        return error
    raise error


class _Retry(Exception):
    """A failed attempt worth retrying."""

    def __init__(self, description: str, *, status: int | None = None, retry_after: float | None = None):
        super().__init__(description)
        self.description = description
        self.status_code = status
        self.retry_after = retry_after


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300].strip() or response.reason_phrase
    if isinstance(body, Mapping):
        error = body.get("error")
        if isinstance(error, Mapping) and error.get("message"):
            return str(error["message"])
        if isinstance(error, str):
            return error
        for key in ("message", "detail"):  # vLLM's {"object": "error", "message": ...}; FastAPI's detail
            if isinstance(body.get(key), str) and body[key]:
                return str(body[key])
    return str(body)[:300]


class OpenAICompatModel:
    """A model behind an OpenAI-compatible Chat Completions endpoint, streamed, retried, cancellable."""

    def __init__(
        self,
        settings: ModelSettings | None = None,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        rng: random.Random | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """`api_key` may be None (Ollama, LM Studio and vLLM take none by default)."""
        self.settings = settings or ModelSettings(provider="openai")
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        if self.base_url.endswith(_ENDPOINT):  # the whole endpoint given for the base URL
            self.base_url = self.base_url[: -len(_ENDPOINT)].rstrip("/")
        self.url = self.base_url + _ENDPOINT
        self._warned_no_usage = False
        self._warned_truncation = False
        self._tokens_field = "max_tokens"
        """`max_completion_tokens` once the server refused `max_tokens` (OpenAI's reasoning models do)."""
        self._rng = rng or random.Random()
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        timeout = httpx.Timeout(self.settings.timeout, connect=self.settings.connect_timeout)
        self._client = httpx.Client(timeout=timeout, headers=headers, transport=transport)
        logger.info(
            "no prices are known for model %r at %s: its cost counts as $0 (use the token budgets)",
            self.settings.model,
            self.base_url,
        )

    @property
    def model_name(self) -> str:
        """The model id sent with each request."""
        return self.settings.model

    @property
    def provider(self) -> str:
        """`openai`: prices unknown (0), tools as plain functions."""
        return "openai"

    def close(self) -> None:
        """Release the HTTP connection pool."""
        self._client.close()

    def request_body(
        self,
        system: str | Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]],
        messages: Sequence[Mapping[str, Any]],
    ) -> dict[str, Any]:
        """The JSON body of one streamed Chat Completions request."""
        body: dict[str, Any] = {
            "model": self.settings.model,
            "messages": to_chat_messages(system, messages, vision=bool(self.settings.vision)),
            self._tokens_field: self.settings.max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if tools:
            body["tools"] = to_chat_tools(tools)
        if self.settings.temperature is not None:
            body["temperature"] = self.settings.temperature
        return body

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
        """Stream one assistant turn; `on_text` receives text deltas on the calling thread.

        A retried attempt streams its text again from the start, so `on_text` may see a prefix twice.
        Raises `AuthenticationFailed`, `RetriesExhausted`, `Cancelled` or `ModelError`.
        """
        settings = self.settings
        body = self.request_body(system, tools, messages)
        if max_tokens is not None:
            body[self._tokens_field] = max_tokens
        started = time.monotonic()
        broken: list[Usage] = []
        unmetered: list[int] = []
        while True:
            try:
                accumulated, attempts = call_with_retries(
                    lambda: self._attempt(body, on_text, cancel, broken, unmetered),
                    _retryable,
                    self._exhausted,
                    settings=settings,
                    rng=self._rng,
                    cancel=cancel,
                    label="model API",
                )
                break
            except ModelError as failure:
                if self._takes_completion_tokens(failure, body):
                    continue
                failure.usage = sum(broken, Usage())
                failure.unmetered_streams = tuple(unmetered)
                raise
        response = accumulated.response(
            fallback_model=settings.model, latency=time.monotonic() - started, attempts=attempts
        )
        if accumulated.usage is None and not accumulated.cut:
            response = replace(response, usage=self._estimated_usage(body, accumulated))
        elif accumulated.usage is not None:
            self._check_truncation(body, response.usage)
        written = text_tool_call(response, tools)
        if written:
            refused = ModelError(
                f"The model {settings.model!r} at {self.base_url} wrote a tool call as text instead of "
                f"calling the tool ({written[:200]!r}): the server did not turn it into a tool call, so "
                "agentls cannot run it. Start vLLM with --enable-auto-tool-choice and the "
                "--tool-call-parser for this model (hermes for Qwen), or choose a model whose server "
                "supports its tool calls (Ollama: `ollama show MODEL` lists 'tools' among its "
                "capabilities); agent.model.model and agent.model.base_url name the model and server.",
                request_id=response.request_id,
            )
            refused.usage = response.usage + sum(broken, Usage())
            refused.unmetered_streams = tuple(unmetered)
            raise refused
        return replace(response, broken_usage=sum(broken, Usage()), unmetered_streams=tuple(unmetered))

    def _takes_completion_tokens(self, failure: ModelError, body: dict[str, Any]) -> bool:
        """Whether the server refused `max_tokens` for `max_completion_tokens` (OpenAI's o-series and
        gpt-5 models: "Unsupported parameter: 'max_tokens' ... Use 'max_completion_tokens' instead");
        then `body` and every later request send that instead."""
        if failure.status_code != 400 or "max_completion_tokens" not in failure.message:
            return False
        if "max_tokens" not in body:
            return False
        body["max_completion_tokens"] = body.pop("max_tokens")
        self._tokens_field = "max_completion_tokens"
        logger.info("%s takes max_completion_tokens, not max_tokens: sending that", self.base_url)
        return True

    def _check_truncation(self, body: Mapping[str, Any], usage: Usage) -> None:
        """Warn (once) when the server counted far fewer prompt tokens than were sent: it cut the prompt
        to its context without a word, as Ollama does past its default 4096 tokens (`num_ctx`)."""
        counted = usage.total_input_tokens
        if self._warned_truncation or not counted:
            return  # before the estimate, which walks the whole request
        sent = _prompt_estimate(body)
        if sent < 2048 or counted > sent * _TRUNCATED_SHARE:
            return
        self._warned_truncation = True
        logger.warning(
            "the model API at %s counted %d prompt tokens for a request of about %d: it cut the prompt to "
            "fit its context window, so the model does not see all of its instructions and tools. Give the "
            "server a larger window (Ollama: start it with OLLAMA_CONTEXT_LENGTH=32768 or more) and set "
            "agent.model.context_window to it",
            self.base_url,
            counted,
            sent,
        )

    def _estimated_usage(self, body: Mapping[str, Any], accumulated: _Accumulator) -> Usage:
        """The usage of a whole reply whose server reported none (no usage chunk: older Ollama and
        servers that ignore `stream_options`), estimated from the characters, so budgets still count."""
        if not self._warned_no_usage:
            self._warned_no_usage = True
            logger.warning(
                "the model API at %s reports no token usage; agentls estimates it from the characters sent "
                "and received, so the token budgets still bound the run",
                self.base_url,
            )
        return Usage(input_tokens=_prompt_estimate(body), output_tokens=accumulated.output_estimate())

    def _exhausted(
        self, failure: _Retry, attempts: int, elapsed: float, delay: float, remaining: float
    ) -> RetriesExhausted:
        settings = self.settings
        if attempts <= settings.max_retries and delay > remaining:
            wait = "the server asked to wait" if failure.retry_after is not None else "the next wait would be"
            stop = f"{wait} {delay:.1f} s, past the {settings.retry_deadline_seconds:g} s retry deadline"
        else:
            stop = f"max_retries is {settings.max_retries}"
        if failure.status_code == 429:
            advice = "You are being rate-limited: wait, run fewer agents at once, or raise your limits"
        else:
            advice = "Check that the server is up and not overloaded, then try again"
        return RetriesExhausted(
            f"The model API at {self.base_url} failed {attempts} time{'s' if attempts != 1 else ''} "
            f"in {elapsed:.1f} s ({stop}); the last error was {failure.description}. {advice}; raising "
            "max_retries or retry_deadline_seconds in the agentls settings allows more retries.",
            attempts=attempts,
            status_code=failure.status_code,
        )

    def _attempt(
        self,
        body: Mapping[str, Any],
        on_text: Callable[[str], None] | None,
        cancel: threading.Event | None,
        broken: list[Usage],
        unmetered: list[int],
    ) -> _Accumulator:
        """Run one streamed request on a worker thread; relay its text and wait for it or for `cancel`.
        A stream that breaks off after it began, or is cancelled, adds what it reported using to `broken`,
        or, having reported nothing (the usage chunk comes last), its estimated output to `unmetered`."""
        began: list[_Accumulator] = []

        def stream(events: StreamEvents, opened: list[Any], abandon: threading.Event) -> None:
            self._stream(body, events, opened, abandon, began)

        try:
            result: _Accumulator = relay(stream, on_text=on_text, cancel=cancel, name="openai-stream")
        except Exception:
            for accumulated in began:  # the server answered 200 and began: it was billed
                if accumulated.usage is not None:
                    broken.append(normalise_usage(accumulated.usage))
                else:
                    unmetered.append(accumulated.output_estimate())
            raise
        if result.cut and result.usage is None:  # the reply is whole; the usage chunk after it was cut
            unmetered.append(result.output_estimate())
        return result

    def _stream(
        self,
        body: Mapping[str, Any],
        events: queue.Queue[tuple[str, Any]],
        responses: list[httpx.Response],
        abandon: threading.Event,
        began: list[_Accumulator],
    ) -> None:
        """Worker: put ("text", delta)..., then ("done", accumulator) or ("error", exception); the
        accumulator goes into `began` once the server answered with a stream."""
        try:
            with self._client.stream("POST", self.url, json=body) as response:
                responses.append(response)
                if response.status_code >= 400:
                    response.read()
                    self._raise_for(response)
                accumulated = _Accumulator(request_id=response.headers.get("x-request-id"))
                began.append(accumulated)
                finished = False
                for data in _sse_data(response.iter_lines()):
                    if abandon.is_set():
                        return
                    if data.strip() == "[DONE]":
                        finished = True
                        break
                    try:
                        chunk = json.loads(data)
                    except ValueError as error:
                        raise _Retry(f"a stream event that is not JSON: {data[:200]!r}") from error
                    if isinstance(chunk, Mapping) and chunk.get("error"):
                        raise self._stream_failure(chunk["error"])
                    delta = accumulated.add(chunk)
                    if delta:
                        events.put(("text", delta))
                if not finished and accumulated.finish_reason is None:
                    raise _Retry("the response stream ended before its finish_reason")
                accumulated.cut = not finished
                events.put(("done", accumulated))
        except _Retry as failure:
            events.put(("error", failure))
        except transport_errors() as error:
            events.put(("error", _Retry(f"connection error: {error.__class__.__name__}: {error}")))
        except Exception as error:
            events.put(("error", error))

    def _stream_failure(self, problem: Any) -> Exception:
        """The error a 200 stream reported in a `data:` line (OpenRouter does): retried, unless its code
        is a status that is not worth retrying, which fails as that HTTP status would."""
        message = problem.get("message") if isinstance(problem, Mapping) else problem
        code = problem.get("code") if isinstance(problem, Mapping) else None
        status = int(code) if isinstance(code, int) or (isinstance(code, str) and code.isdigit()) else None
        if status is None or not 400 <= status < 500 or is_retryable_status(status):
            return _Retry(f"an error in the stream: {message}", status=status)
        return self._refusal(status, f"HTTP {status} in the stream: {message}", is_route=False)

    def _raise_for(self, response: httpx.Response) -> None:
        status = response.status_code
        what = f"HTTP {status}: {_error_text(response)}"
        if is_retryable_status(status):
            raise _Retry(what, status=status, retry_after=parse_retry_after(response.headers))
        # A 404 that names no model ("404 page not found", {"detail": "Not Found"}) is an unknown path.
        raise self._refusal(status, what, is_route=status == 404 and "model" not in what.lower())

    def _refusal(self, status: int, what: str, *, is_route: bool) -> ModelError:
        """The error for a request the server refused with `status` (`what` says how), with advice;
        `is_route`: a 404 for the path (the base URL), not for the model."""
        key_env = self.settings.api_key_env or "OPENAI_API_KEY"
        if status in (401, 403) and "authorization" not in self._client.headers:
            return AuthenticationFailed(
                f"{self.base_url} wants an API key ({what}), and none was sent: set {key_env} to your key "
                "for this endpoint (agent.model.api_key_env names another variable).",
                status_code=status,
            )
        if status in (401, 403):
            return AuthenticationFailed(
                f"{self.base_url} refused the API key ({what}). Set {key_env} to a key this endpoint "
                "accepts (local servers such as Ollama need none: leave it unset).",
                status_code=status,
            )
        model = self.settings.model
        if status == 404 and is_route and not _VERSIONED.search(self.base_url):
            advice = (
                f"The server has no {_ENDPOINT} under agent.model.base_url ({self.base_url}): OpenAI-"
                f'compatible servers serve it under /v1, so try base_url = "{self.base_url}/v1".'
            )
        elif status == 404:
            advice = (
                f"Check agent.model.model ({model!r}: a model this server has; for Ollama, `ollama pull "
                f"{model}`) and agent.model.base_url ({self.base_url}, usually ending in /v1)."
            )
        elif _NO_TOOLS.search(what):
            advice = (
                f"agentls needs a model that calls tools, and model {model!r} (agent.model.model) at this "
                "server cannot: choose a model with tool support (`ollama show MODEL` lists 'tools' among "
                "its capabilities), or start vLLM with --enable-auto-tool-choice and a --tool-call-parser "
                "for the model (hermes for Qwen)."
            )
        elif is_prompt_too_long(what, status):
            advice = (
                "The conversation is longer than the model's context window: set agent.model.context_window "
                "to the server's window (tokens) so that agentls condenses it in time."
            )
        elif status == 413:
            advice = "The request is too large; lower the retrieved context or the conversation length."
        else:
            advice = (
                f"The request was rejected; check that model {self.settings.model!r} supports tool calls "
                "and the settings sent (max_tokens, temperature). The transcript has the request."
            )
        return ModelError(
            f"The model API at {self.base_url} refused the request ({what}). {advice}", status_code=status
        )
