"""The Anthropic provider: one streamed Messages API call through the `anthropic` SDK, made dependable.

`AnthropicModel.complete(system, tools, messages)` returns a canonical `ModelResponse`
(`agent.models.types`: content blocks as plain dicts the API accepts back, stop reason, `Usage`,
request id, latency, attempts); the canonical conversation is Anthropic's block format, so requests
need no conversion beyond the cache breakpoints. Around the SDK it adds:

- Retries of our own (the SDK's are off; the loop is `agent.models.calls`, shared with the
  OpenAI-compatible provider), with the statuses and `retry-after` parsing of
  `indexing.http_retry`: jittered exponential backoff that honours `retry-after-ms` / `retry-after` and
  `x-should-retry`, on 408, 409, 429, 5xx (529 included), connection errors, overloaded errors sent
  mid-stream, and streams that end before `message_stop`; all within one overall deadline.
  400/401/403/404 fail at once.
- Cancellation: `cancel` (a `threading.Event`) is honoured within about 0.1 s, even while the SDK is
  blocked waiting for bytes, because the stream is read on a worker thread and the calling thread only
  waits for its events.
- Prompt caching: `with_cache_breakpoints` marks the stable prefix and the newest turn.
- Billing of retried and cancelled attempts: a stream that breaks off after `message_start` was billed
  for the prompt it read (and wrote to the cache); the usage it reported goes into
  `ModelResponse.broken_usage`, or `ModelError.usage` when the call fails, for the loop to charge. So
  does a stream cut off by `cancel` mid-reply (the user's cancel, or the run's time bound): `Cancelled`
  carries what it reported so far.
- Images: a tool result's `image` blocks go to Claude as they are (`agent.images` checked them against
  the API's limits); with `vision = false` each becomes a note naming it.
- Errors a user can act on: `AuthenticationFailed`, `RetriesExhausted`, `Cancelled`, all `ModelError`s.

Credentials come in as parameters (the entry point reads `ANTHROPIC_API_KEY` / `ANTHROPIC_BASE_URL`);
they are passed to the SDK explicitly so it never falls back to the environment on its own.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import anthropic

# Defined in agent.config so that loading settings does not import the SDK; re-exported here.
from agent.config import DEFAULT_MODEL as DEFAULT_MODEL
from agent.config import ModelSettings as ModelSettings
from agent.images import NOT_SEEN, without_images
from agent.memory import CACHE_ANCHOR
from agent.models import ANTHROPIC_KEYS_URL, missing_anthropic_key_message
from agent.models.calls import StreamEvents, call_with_retries, relay
from agent.models.errors import AuthenticationFailed, Cancelled, ModelError, RetriesExhausted
from agent.models.types import ModelResponse
from agent.usage import Usage
from indexing.http_retry import is_retryable_status, parse_retry_after, transport_errors

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.anthropic.com"
KEYS_URL = ANTHROPIC_KEYS_URL

EPHEMERAL: Mapping[str, str] = {"type": "ephemeral"}
MAX_CACHE_BREAKPOINTS = 4
"""The Messages API accepts at most four `cache_control` blocks per request."""

# Error types that arrive as an `event: error` in a stream that started with HTTP 200.
RETRYABLE_ERROR_TYPES = frozenset({"overloaded_error", "api_error", "rate_limit_error", "timeout_error"})


# --------------------------------------------------------------------------------------------------
# Errors


def missing_key_message() -> str:
    """What to tell the user when no API key was configured."""
    return missing_anthropic_key_message()


# --------------------------------------------------------------------------------------------------
# Prompt caching


_OTHER_PROVIDERS_BLOCKS = frozenset({"reasoning"})
"""History blocks the Messages API refuses: an OpenAI-compatible model's reasoning, kept to be sent back to it
(DeepSeek), is left out when the conversation goes on with Claude (a resumed run, a role on another model)."""


def _as_blocks(content: str | Sequence[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return [
        {key: value for key, value in block.items() if key != "cache_control"}
        for block in content
        if block.get("type") not in _OTHER_PROVIDERS_BLOCKS
    ]


def _cacheable(block: Mapping[str, Any]) -> bool:
    # The API refuses cache_control on thinking blocks and on empty text blocks.
    kind = block.get("type")
    if kind in ("thinking", "redacted_thinking"):
        return False
    return not (kind == "text" and not block.get("text"))


def with_cache_breakpoints(
    system: str | Sequence[Mapping[str, Any]] | None,
    tools: Sequence[Mapping[str, Any]] | None,
    messages: Sequence[Mapping[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Copies of (system, tools, messages) with prompt-cache breakpoints placed for a growing conversation.

    Breakpoints (`cache_control: {"type": "ephemeral"}`) go on the last system block (the stable prefix:
    tools, system prompt and retrieved context), the last block of the newest user turn, the last block
    of the user turn before it, and the last block of the newest message marked `CACHE_ANCHOR` (where
    `agent.memory` says its next masking or condensation changes nothing before); with two anchors, on
    both and not on the turn before the newest; without an anchor or a system prompt, on the last tool
    definition (the API takes four). The newest turn's writes this request's prefix; the one before lands
    exactly where the previous request wrote, so the conversation so far is read back even when one step
    added more than the API's 20-block lookback; an anchor's is read back after the memory rewrote the
    history behind it, instead of everything after the system prompt being written again. Every other
    `cache_control` (stale ones from earlier requests) and the `CACHE_ANCHOR` keys are removed, and
    string contents become text blocks, so the serialized prefix stays identical from one request to the
    next. The inputs are not modified.
    """
    system_blocks = _as_blocks(system)
    tool_list = [
        {key: value for key, value in tool.items() if key != "cache_control"} for tool in tools or []
    ]
    message_list = [
        {**_wire_message(message), "content": _as_blocks(message.get("content"))} for message in messages
    ]
    anchors = [index for index, message in enumerate(messages) if message.get(CACHE_ANCHOR)][-2:]

    available = MAX_CACHE_BREAKPOINTS
    if tool_list and (not system_blocks or not anchors):
        tool_list[-1]["cache_control"] = dict(EPHEMERAL)
        available -= 1
    if system_blocks:
        system_blocks[-1]["cache_control"] = dict(EPHEMERAL)
        available -= 1
    turns = 2 if len(anchors) < 2 else 1
    marked: list[int] = []
    for index in range(len(message_list) - 1, -1, -1):
        if len(marked) >= min(turns, available):
            break
        if message_list[index].get("role") == "user" and _mark_last(message_list[index]):
            marked.append(index)
    for anchor in reversed(anchors):
        if anchor not in marked and len(marked) < available and _mark_last(message_list[anchor]):
            marked.append(anchor)
    return system_blocks, tool_list, message_list


def _mark_last(message: Mapping[str, Any]) -> bool:
    """Put a breakpoint on the last block of `message` the API caches; whether there was one."""
    for block in reversed(message["content"]):
        if _cacheable(block):
            block["cache_control"] = dict(EPHEMERAL)
            return True
    return False


def _wire_message(message: Mapping[str, Any]) -> dict[str, Any]:
    """A message as the API takes it: without agentls' own keys (`CACHE_ANCHOR`) and without blocks another
    provider's adapter kept in the history (`_OTHER_PROVIDERS_BLOCKS`)."""
    wire = {key: value for key, value in message.items() if key != CACHE_ANCHOR}
    content = wire.get("content")
    if isinstance(content, list):
        wire["content"] = [block for block in content if block.get("type") not in _OTHER_PROVIDERS_BLOCKS]
    return wire


# --------------------------------------------------------------------------------------------------
# Retry helpers


class _StreamDropped(Exception):
    """The stream ended before `message_stop`."""

    def __init__(self, request_id: str | None) -> None:
        super().__init__("the response stream ended before message_stop")
        self.request_id = request_id


@dataclass(frozen=True)
class _Retryable:
    """A failed attempt worth retrying."""

    description: str
    status_code: int | None = None
    retry_after: float | None = None
    request_id: str | None = None


_STREAM_ERROR_STATUS = {"overloaded_error": 529, "rate_limit_error": 429, "api_error": 500}
"""The HTTP status an error event inside a 200 stream stands for, so its retries and advice are those of
that status (an ``overloaded_error`` mid-stream is an overload, not a network problem)."""


def _status_description(error: anthropic.APIStatusError) -> str:
    kind = f" {error.type}" if error.type else ""
    detail = f": {error.api_message}" if error.api_message else ""
    if error.status_code < 400 and error.type:
        return f"{error.type} in the response stream{detail}"
    return f"HTTP {error.status_code}{kind}{detail}"


# --------------------------------------------------------------------------------------------------
# The model


def _unreachable_url(error: Exception) -> bool:
    """Whether the request failed because of its URL (no scheme, a scheme httpx cannot speak, an invalid
    URL), which no retry mends, unlike a refused or dropped connection. By the class's name: the SDK's
    transport is httpx or its fork httpx2, whose classes are not httpx's."""
    cause: BaseException | None = error
    while cause is not None:
        if {kind.__name__ for kind in type(cause).__mro__} & {"UnsupportedProtocol", "InvalidURL"}:
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def _cause(error: Exception) -> str:
    cause: BaseException = error
    while cause.__cause__ is not None:
        cause = cause.__cause__
    return str(cause) or type(cause).__name__


class AnthropicModel:
    """Claude through the `anthropic` SDK, streamed, with our own retries, cancellation and caching."""

    def __init__(
        self,
        settings: ModelSettings | None = None,
        *,
        api_key: str | None,
        base_url: str | None = None,
        auth_token: str | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """Credentials come from the entry point: `api_key` (ANTHROPIC_API_KEY), `base_url`
        (ANTHROPIC_BASE_URL) and, for proxies that want a Bearer token instead, `auth_token`
        (ANTHROPIC_AUTH_TOKEN); None means unset. Without either credential `complete` raises
        `AuthenticationFailed` before making any request. `rng` is the backoff jitter's source."""
        self.settings = settings or ModelSettings()
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self._rng = rng or random.Random()
        self._client: anthropic.Anthropic | None = None
        if api_key or auth_token:
            # The SDK takes exactly one credential; an API key wins, as it does in the SDK.
            credential = {"api_key": api_key} if api_key else {"auth_token": auth_token}
            self._client = anthropic.Anthropic(
                **credential,
                base_url=self.base_url,
                max_retries=0,  # we retry ourselves, within one deadline and honouring cancellation
                timeout=anthropic.Timeout(self.settings.timeout, connect=self.settings.connect_timeout),
            )

    @property
    def model_name(self) -> str:
        """The model id sent with each request."""
        return self.settings.model

    @property
    def provider(self) -> str:
        """`anthropic`: Claude prices, Anthropic's built-in tool types."""
        return "anthropic"

    def close(self) -> None:
        """Release the HTTP connection pool."""
        if self._client is not None:
            self._client.close()

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
        `max_tokens` overrides the setting for this call (the loop raises it once after a cut reply).
        Raises `AuthenticationFailed`, `RetriesExhausted`, `Cancelled` or `ModelError`.
        """
        if self._client is None:
            raise AuthenticationFailed(missing_key_message())
        settings = self.settings
        if settings.vision is False:
            messages = without_images(messages, NOT_SEEN)
        if settings.prompt_caching:
            system_blocks, tool_list, message_list = with_cache_breakpoints(system, tools, messages)
        else:
            system_blocks = _as_blocks(system)
            tool_list = [dict(tool) for tool in tools]
            message_list = [_wire_message(message) for message in messages]
        params: dict[str, Any] = {
            "model": settings.model,
            "max_tokens": max_tokens or settings.max_tokens,
            "messages": message_list,
        }
        if system_blocks:
            params["system"] = system_blocks
        if tool_list:
            params["tools"] = tool_list
        if settings.temperature is not None:
            params["temperature"] = settings.temperature

        started = time.monotonic()
        client = self._client
        broken: list[Usage] = []
        try:
            (message, request_id), attempts = call_with_retries(
                lambda: self._attempt(client, params, on_text, cancel, broken),
                self._classify,
                self._exhausted,
                settings=settings,
                rng=self._rng,
                cancel=cancel,
                label="Anthropic API",
                jitter=0.25,
            )
        except ModelError as failure:
            failure.usage = sum(broken, Usage())
            raise
        return ModelResponse(
            content=tuple(_block_dict(block) for block in message.content),
            stop_reason=message.stop_reason,
            usage=Usage.from_api(message.usage),
            model=str(message.model),
            request_id=request_id,
            latency_seconds=time.monotonic() - started,
            attempts=attempts,
            broken_usage=sum(broken, Usage()),
        )

    # -- one attempt

    def _attempt(
        self,
        client: anthropic.Anthropic,
        params: Mapping[str, Any],
        on_text: Callable[[str], None] | None,
        cancel: threading.Event | None,
        broken: list[Usage],
    ) -> tuple[Any, str | None]:
        """Run one streamed request on a worker thread; relay its text and wait for it or for `cancel`.
        A stream that breaks off after it began, or is cancelled, adds what it reported using to `broken`."""
        opened: list[list[Any]] = []

        def stream(events: StreamEvents, streams: list[Any], abandon: threading.Event) -> None:
            opened.append(streams)
            _stream_worker(client, params, events, streams, abandon, broken)

        try:
            message, request_id = relay(stream, on_text=on_text, cancel=cancel, name="anthropic-stream")
        except Cancelled:
            # Billed for what it read before the cancel; the worker, told to abandon it, counts nothing.
            for streams in opened:
                for cancelled in streams:
                    broken.extend(_reported_usage(cancelled))
            raise
        return message, request_id

    def _classify(self, error: Exception) -> _Retryable:
        """Turn an attempt's exception into a retry, or raise the error the caller should see."""
        if isinstance(error, ModelError):
            raise error
        if isinstance(error, anthropic.APIStatusError):
            status = error.status_code
            should_retry = error.response.headers.get("x-should-retry")
            if status == 401:
                raise AuthenticationFailed(
                    f"ANTHROPIC_API_KEY is invalid: {self.base_url} answered {_status_description(error)}. "
                    f"Set it to a valid key from {KEYS_URL}, or set ANTHROPIC_BASE_URL for a compatible "
                    "endpoint.",
                    status_code=status,
                    request_id=error.request_id,
                ) from error
            retryable = is_retryable_status(status) or (status < 400 and error.type in RETRYABLE_ERROR_TYPES)
            if should_retry == "true" or (retryable and should_retry != "false"):
                return _Retryable(
                    description=_status_description(error),
                    status_code=_STREAM_ERROR_STATUS.get(error.type or "", status)
                    if status < 400
                    else status,
                    retry_after=parse_retry_after(error.response.headers),
                    request_id=error.request_id,
                )
            raise ModelError(
                self._rejection_message(error), status_code=status, request_id=error.request_id
            ) from (error)
        if isinstance(error, _StreamDropped):
            return _Retryable(description=str(error), request_id=error.request_id)
        if isinstance(error, (anthropic.APIConnectionError, *transport_errors())):
            if _unreachable_url(error):  # no retry reaches it: `notaurl`, `localhost:8080` without http://
                raise ModelError(
                    f"ANTHROPIC_BASE_URL {self.base_url!r} is not a URL agentls can send requests to "
                    f"({_cause(error)}): it begins with http:// or https:// (https://api.anthropic.com by "
                    "default)."
                ) from error
            return _Retryable(description=f"connection error: {error}")
        raise error

    def _rejection_message(self, error: anthropic.APIStatusError) -> str:
        status = error.status_code
        what = _status_description(error)
        if status == 403:
            advice = "The API key is valid but not allowed to do this; check its workspace and model access."
        elif status == 404:
            advice = (
                f"Check the model setting ({self.settings.model!r}) and ANTHROPIC_BASE_URL ({self.base_url})."
            )
        elif status == 413:
            advice = "The request is too large; lower the retrieved context or the conversation length."
        elif 400 <= status < 500:
            advice = (
                "The request was rejected; this is a bug in agentls or a setting the model does not "
                f"accept (model {self.settings.model!r}). The transcript has the request."
            )
        else:
            advice = "The server said not to retry; try again later."
        return f"The Anthropic API refused the request ({what}). {advice}"

    def _exhausted(
        self, failure: _Retryable, attempts: int, elapsed: float, delay: float, remaining: float
    ) -> RetriesExhausted:
        status = failure.status_code
        if status == 429:
            advice = (
                "You are being rate-limited: wait a minute, run fewer agents at once, or raise your limits."
            )
        elif status == 529:
            advice = "The API is overloaded: try again in a few minutes."
        elif status is not None and status >= 500:
            advice = "The API had server errors: check https://status.anthropic.com and try again."
        else:
            advice = f"Check your network or proxy, and ANTHROPIC_BASE_URL ({self.base_url})."
        if attempts <= self.settings.max_retries and delay > remaining:
            stop = (
                f"the next wait ({delay:.1f} s) would pass the {self.settings.retry_deadline_seconds:g} s "
                "retry deadline"
            )
        else:
            stop = f"max_retries is {self.settings.max_retries}"
        return RetriesExhausted(
            f"The Anthropic API call failed after {attempts} attempt{'s' if attempts != 1 else ''} in "
            f"{elapsed:.1f} s ({stop}); the last error was {failure.description}. {advice} "
            "Raising max_retries or retry_deadline_seconds in the agentls settings allows more retries.",
            attempts=attempts,
            status_code=status,
            request_id=failure.request_id,
        )


def _stream_worker(
    client: anthropic.Anthropic,
    params: Mapping[str, Any],
    events: queue.Queue[tuple[str, Any]],
    streams: list[Any],
    abandon: threading.Event,
    broken: list[Usage],
) -> None:
    """Stream one request, putting ("text", delta), then ("done", (message, request_id)) or ("error", exc).

    When the stream fails after `message_start`, the usage it reported so far (the prompt read and
    written to the cache, the output up to the last `message_delta`) goes to `broken` before the error:
    the API bills a request it began answering, so the run must count it even though it is retried."""
    try:
        with client.messages.stream(**params) as stream:
            streams.append(stream)
            completed = False
            for event in stream:
                if abandon.is_set():
                    return
                if event.type == "text":
                    events.put(("text", event.text))
                elif event.type == "message_stop":
                    completed = True
            if not completed:
                raise _StreamDropped(stream.request_id)
            events.put(("done", (stream.get_final_message(), stream.request_id)))
    except Exception as error:
        if not abandon.is_set():  # an abandoned (cancelled) stream is counted by the caller
            for opened in streams:
                broken.extend(_reported_usage(opened))
        events.put(("error", error))


def _reported_usage(stream: Any) -> list[Usage]:
    """The usage a broken stream reported before it broke ([] when it broke before `message_start`)."""
    try:
        snapshot = stream.current_message_snapshot
    except AssertionError:  # the SDK's way of saying no message_start arrived
        return []
    return [Usage.from_api(snapshot.usage)]


def _block_dict(block: Any) -> dict[str, Any]:
    """An SDK content block as the wire-format dict the API accepts back in the history."""
    data = block.model_dump(mode="json")
    # Drop the SDK's own unset optional fields (`citations: None`, `caller: None`...) and its parse
    # helper field; the API rejects some of them when sent back. Nested values are kept as they are,
    # so a tool input with a null argument survives.
    return {key: value for key, value in data.items() if value is not None and key != "parsed_output"}
