"""The OpenAI-compatible provider: streamed Chat Completions with tools, over plain `httpx`.

One client for every endpoint that speaks OpenAI's `POST {base_url}/chat/completions`: OpenAI itself,
Ollama (`http://localhost:11434/v1`), vLLM (`http://HOST:8000/v1`), LM Studio (`http://localhost:1234/v1`)
and OpenRouter (`https://openrouter.ai/api/v1`). `OpenAICompatModel.complete` converts the canonical
conversation of `agent.models.types` to that wire format and the streamed reply back:

- tools: each canonical definition `{"name", "description", "input_schema"}` becomes
  `{"type": "function", "function": {"name", "description", "parameters": input_schema}}`. Anthropic's
  built-in editor and bash tools reach this provider already rendered as such functions, with the same
  names, semantics and input schemas (`agent.tools`, `definition(provider)`); a built-in entry is refused
  with a message, since no other API knows those types.
- messages: assistant `tool_use` blocks become `tool_calls` (arguments as a JSON string), user
  `tool_result` blocks become `role: "tool"` messages (errors prefixed with "Error: ", since the format
  has no error flag), provider-specific blocks (thinking) are dropped.
- the reply: `stream: true` with `stream_options.include_usage`; `delta.content` is text (relayed to
  `on_text`), `delta.tool_calls` fragments are joined by `index` (id and name in the first, arguments
  spread over several; a fragment with a new `id` at an index already taken starts a call of its own,
  since Ollama through LiteLLM and other servers stream every call at index 0); arguments that are not
  a JSON object become `input` {} and an entry of `ModelResponse.input_errors` saying what arrived, so
  the loop tells the model instead of running the call; `finish_reason` maps to the canonical stop
  reasons (stop -> end_turn,
  tool_calls -> tool_use, length -> max_tokens, content_filter -> refusal), and the usage of the final
  chunk is normalised: `input_tokens` is the uncached prompt, `cache_read_input_tokens` OpenAI's
  `prompt_tokens_details.cached_tokens`.
- a stream that breaks off (or is cancelled) after it began, before its final usage chunk, was billed
  for its prompt and for what it sent, but reported nothing: the output tokens it sent, estimated from
  its characters (`agent.memory.estimate_tokens`), go into `ModelResponse.unmetered_streams` (or the
  error's), and the loop adds the prompt's estimate and charges it as estimated (`broken_streams`).

Retries (the loop of `agent.models.calls`) follow `indexing.http_retry` (408, 409, 429, 5xx, dropped
connections, streams that end before `finish_reason`), honour `retry-after`, and stay within
`retry_deadline_seconds`; `cancel` is honoured within about 0.1 s because the stream is read on a worker
thread. The key is optional (local servers take none) and is sent as a Bearer token. Prices: agentls
keeps no price list for these endpoints, so cost is $0 (`agent.usage.price_for` with provider "openai"),
logged when the client is made; bound such runs with the token budgets.
"""

from __future__ import annotations

import json
import logging
import queue
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import httpx

from agent.config import ModelSettings
from agent.memory import estimate_tokens, is_prompt_too_long
from agent.models.calls import StreamEvents, call_with_retries, relay
from agent.models.errors import AuthenticationFailed, ModelError, RetriesExhausted
from agent.models.types import ModelResponse
from agent.usage import Usage
from indexing.http_retry import is_retryable_status, parse_retry_after, transport_errors

__all__ = ["DEFAULT_BASE_URL", "OpenAICompatModel", "to_chat_messages", "to_chat_tools"]

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
_FINISH_REASONS = {
    "stop": "end_turn",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "length": "max_tokens",
    "content_filter": "refusal",
}


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


def to_chat_messages(
    system: str | Sequence[Mapping[str, Any]], messages: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """The canonical conversation as Chat Completions messages (system first)."""
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
            out.append(assistant)
            continue
        # A user turn: tool results first (they must follow the assistant's tool calls), then any text.
        for block in blocks:
            if block.get("type") == "tool_result":
                result = _text_of(block.get("content"))
                if block.get("is_error"):
                    result = f"Error: {result}"
                out.append(
                    {"role": "tool", "tool_call_id": str(block.get("tool_use_id", "")), "content": result}
                )
        text = _text_of(blocks)
        if text:
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
            for fragment in delta.get("tool_calls") or []:
                parts = self._call_for(fragment)
                parts.id = parts.id or str(fragment.get("id") or "")
                function = fragment.get("function") or {}
                parts.name = parts.name or str(function.get("name") or "")
                if function.get("arguments"):
                    parts.arguments.append(str(function["arguments"]))
            if choice.get("finish_reason"):
                self.finish_reason = str(choice["finish_reason"])
        if delta_text:
            self.text.append(delta_text)
        return delta_text

    def _call_for(self, fragment: Mapping[str, Any]) -> _ToolCallParts:
        """The call a `delta.tool_calls` fragment belongs to, begun here when it is a new one."""
        wire_index = fragment.get("index")
        new_id = str(fragment.get("id") or "")
        if wire_index is None:  # no index at all: a fragment with an id begins a call, others continue one
            if self.calls and not (new_id and self.calls[-1].id and new_id != self.calls[-1].id):
                return self.calls[-1]
        elif int(wire_index) in self.slots:
            parts = self.calls[self.slots[int(wire_index)]]
            if not (new_id and parts.id and new_id != parts.id):
                return parts
        # A new call (also one with a new id at an index already taken: every call at index 0).
        self.calls.append(_ToolCallParts())
        if wire_index is not None:
            self.slots[int(wire_index)] = len(self.calls) - 1
        return self.calls[-1]

    def output_estimate(self) -> int:
        """Output tokens of what arrived so far (text, tool names and arguments), estimated; 0 for none."""
        sent = "".join(self.text) + "".join(part.name + "".join(part.arguments) for part in self.calls)
        return estimate_tokens(sent) if sent else 0

    def response(self, *, fallback_model: str, latency: float, attempts: int) -> ModelResponse:
        content: list[dict[str, Any]] = []
        input_errors: dict[str, str] = {}
        text = "".join(self.text)
        if text:
            content.append({"type": "text", "text": text})
        for parts in self.calls:
            call_id = parts.id or f"call_{uuid.uuid4().hex[:12]}"
            arguments, problem = _arguments(parts)
            if problem:
                logger.info("tool call %s (%s): %s", parts.name, call_id, problem)
                input_errors[call_id] = problem
            content.append({"type": "tool_use", "id": call_id, "name": parts.name, "input": arguments})
        stop = _FINISH_REASONS.get(self.finish_reason or "", self.finish_reason)
        if self.calls and stop == "end_turn":
            stop = "tool_use"  # some servers (Ollama) say "stop" after tool calls
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


def normalise_usage(usage: Mapping[str, Any] | None) -> Usage:
    """OpenAI's usage (`prompt_tokens` including cached ones) in the canonical `Usage` counters."""
    if not usage:
        return Usage()
    details = usage.get("prompt_tokens_details") or {}
    cached = int(details.get("cached_tokens") or 0) if isinstance(details, Mapping) else 0
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
        self.url = self.base_url + "/chat/completions"
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
            "messages": to_chat_messages(system, messages),
            "max_tokens": self.settings.max_tokens,
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
            body["max_tokens"] = max_tokens
        started = time.monotonic()
        broken: list[Usage] = []
        unmetered: list[int] = []
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
        except ModelError as failure:
            failure.usage = sum(broken, Usage())
            failure.unmetered_streams = tuple(unmetered)
            raise
        response = accumulated.response(
            fallback_model=settings.model, latency=time.monotonic() - started, attempts=attempts
        )
        return replace(response, broken_usage=sum(broken, Usage()), unmetered_streams=tuple(unmetered))

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
                        problem = chunk["error"]
                        message = problem.get("message") if isinstance(problem, Mapping) else problem
                        raise _Retry(f"an error in the stream: {message}")
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

    def _raise_for(self, response: httpx.Response) -> None:
        status = response.status_code
        what = f"HTTP {status}: {_error_text(response)}"
        if is_retryable_status(status):
            raise _Retry(what, status=status, retry_after=parse_retry_after(response.headers))
        key_env = self.settings.api_key_env or "OPENAI_API_KEY"
        if status in (401, 403):
            raise AuthenticationFailed(
                f"{self.base_url} refused the API key ({what}). Set {key_env} to a key this endpoint "
                "accepts (local servers such as Ollama need none: leave it unset).",
                status_code=status,
            )
        if status == 404:
            advice = (
                f"Check agent.model.model ({self.settings.model!r}: a model this server has) and "
                f"agent.model.base_url ({self.base_url}, usually ending in /v1)."
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
        raise ModelError(
            f"The model API at {self.base_url} refused the request ({what}). {advice}", status_code=status
        )
