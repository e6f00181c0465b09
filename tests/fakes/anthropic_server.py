"""A local fake of the Anthropic Messages API over real HTTP, so the real `anthropic` SDK can talk to it.

Tests script the assistant's turns, point the SDK (or `ANTHROPIC_BASE_URL`) at `FakeAnthropic.url`, and
inspect what arrived:

    with FakeAnthropic() as fake:
        fake.enqueue(turn(text("Let me look."), tool_use("bash", {"command": "ls"})), text("Done."))
        ...  # code under test calls fake.url
        assert fake.message_requests[0].body["tools"][-1]["cache_control"] == {"type": "ephemeral"}

What it speaks:
- `POST /v1/messages`: a JSON message, or server-sent events when the body has `"stream": true`
  (`message_start` with usage including the cache fields, `ping`, `content_block_start`,
  `content_block_delta` with `text_delta` / `input_json_delta` (tool input split into several partial
  JSON pieces) / `thinking_delta` / `signature_delta`, `content_block_stop`, `message_delta` with the
  stop reason and output usage, `message_stop`), sent with chunked transfer encoding.
- `POST /v1/messages/count_tokens`: an approximate count; it consumes no script item.
- Errors in Anthropic's format, `{"type": "error", "error": {"type": ..., "message": ...}}`, with a
  `request-id` header and `retry-after` / `retry-after-ms` where the API would send them. A message with
  empty content (other than a final assistant turn) gets the API's 400 "all messages must have non-empty
  content ..." without consuming a script item, and so does a content block of a type the API does not
  take ("Input tag 'reasoning' found using 'type' does not match any of the expected tags"), and so does an
  image the API refuses (a message, or a `tool_result`'s content, may hold `image` blocks): base64 data
  over 5 MB, a type other than JPEG, PNG, GIF and WebP or data that is not of its type, a side over 8,000
  pixels (2,000 in a request of more than 20 images), more than 100 images.

Script items, consumed one per `/v1/messages` request in order: replies (`text`, `tool_use`,
`thinking`, combined with `turn`; `cut_at_max_tokens` for a reply cut at the output limit), HTTP faults
(`fault_429`, `fault_529`, `fault_500`, `fault_401`, `fault`), stream faults (`cut_stream`,
`stream_error`), delays (`slow`, before the reply; `stall`, in the middle of its stream) and replies
computed from the request (`respond`, or a `responder` that answers once the script is empty). With
`context_window` set, a prompt larger than it gets the API's `400 prompt is too long`. When the script
runs out the server answers 500 with a body that says so and `x-should-retry: false`, so a test fails
loudly.

Usage is computed the way the API reports it, approximately: the prompt is the serialized blocks in the
order tools -> system -> messages, about 4 characters a token, and each image width x height / 750
tokens (at most about 1,600), as the API counts it, not by the length of its base64 data. Prompt caching
honours `cache_control` breakpoints: every breakpoint's prefix (hashed, `cache_control` itself excluded,
as the API ignores it when matching) is written to the cache; a later request reads the longest cached
prefix found at one of its breakpoints or up to `cache_lookback_blocks` block boundaries before one (the
API's lookback).
`cache_read_input_tokens` is that prefix, `cache_creation_input_tokens` what newly written breakpoint
prefixes add beyond it, and `input_tokens` the rest. `cache_friendliness(fake.requests)` gives the share
of each request's prompt read from the cache, which the prompt-caching benchmark measures.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import math
import struct
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

import pytest

from tests.fakes.scripted_http import FakeHandler, FakeServer, ScriptedFake

logger = logging.getLogger(__name__)

FAKE_API_KEY = "sk-ant-fake-key-for-tests"
"""A key the fake accepts (it accepts any key unless constructed with `api_key=`)."""


# --------------------------------------------------------------------------------------------------
# Script items


@dataclass(frozen=True)
class Reply:
    """One scripted assistant turn: content blocks as wire-format dicts, an optional stop reason and usage.

    `stop_reason` defaults to "tool_use" when the turn calls a tool and "end_turn" otherwise. `usage`
    overrides any of the computed counters (`input_tokens`, `output_tokens`,
    `cache_creation_input_tokens`, `cache_read_input_tokens`).
    """

    content: tuple[Mapping[str, Any], ...]
    stop_reason: str | None = None
    usage: Mapping[str, int] | None = None
    model: str | None = None
    cut_input_at: int | None = None
    """Stream only the first this many characters of each tool call's JSON input (see `cut_at_max_tokens`)."""

    def __add__(self, other: Reply) -> Reply:
        return turn(self, other)

    def effective_stop_reason(self) -> str:
        """The stop reason sent: the explicit one, else derived from the content."""
        if self.stop_reason is not None:
            return self.stop_reason
        return "tool_use" if any(block.get("type") == "tool_use" for block in self.content) else "end_turn"


@dataclass(frozen=True)
class HttpFault:
    """Answer with an HTTP error in Anthropic's error format."""

    status: int
    error_type: str
    message: str
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class CutStream:
    """Start streaming `reply`, then stop after `after_events` events.

    `clean=False` drops the TCP connection mid-body (the client sees an incomplete chunked body);
    `clean=True` ends the HTTP body properly but before `message_stop`, the other way a stream can end
    early. A non-streaming request gets its connection closed without any response.
    """

    after_events: int
    reply: Reply
    clean: bool = False


@dataclass(frozen=True)
class StreamError:
    """Stream `after_events` events of `reply`, then an `event: error` (as the API does when overloaded)."""

    after_events: int
    reply: Reply
    error_type: str = "overloaded_error"
    message: str = "Overloaded"


@dataclass(frozen=True)
class Slow:
    """Wait `seconds` before answering with `then` (any other script item)."""

    seconds: float
    then: ScriptItem


@dataclass(frozen=True)
class Stall:
    """Stream `after_events` events of `reply`, wait `seconds`, then stream the rest (a reply that stops
    in the middle, as a slow or stuck generation does; the client sees `message_start` and its usage)."""

    after_events: int
    seconds: float
    reply: Reply


@dataclass(frozen=True)
class Respond:
    """Answer with whatever `function(body)` returns (any other script item), for long scripted runs
    whose next turn depends on the request (say, a condensation request among tool-calling turns)."""

    function: Callable[[Mapping[str, Any]], ScriptItem]


ScriptItem = Reply | HttpFault | CutStream | StreamError | Slow | Stall | Respond


def text(value: str, *, stop_reason: str | None = None, usage: Mapping[str, int] | None = None) -> Reply:
    """A turn with one text block."""
    return Reply(content=({"type": "text", "text": value},), stop_reason=stop_reason, usage=usage)


def tool_use(name: str, input: Mapping[str, Any], id: str | None = None) -> Reply:
    """A turn with one `tool_use` block; `id` defaults to a fresh random `toolu_fake_...`."""
    if id is None:
        id = f"toolu_fake_{uuid.uuid4().hex[:16]}"
    return Reply(content=({"type": "tool_use", "id": id, "name": name, "input": dict(input)},))


def thinking(value: str, *, signature: str = "fake-signature") -> Reply:
    """A turn with one `thinking` block (streamed as `thinking_delta`s and a `signature_delta`)."""
    return Reply(content=({"type": "thinking", "thinking": value, "signature": signature},))


def turn(
    *parts: Reply | Mapping[str, Any],
    stop_reason: str | None = None,
    usage: Mapping[str, int] | None = None,
    model: str | None = None,
) -> Reply:
    """One assistant turn made of several parts (replies or raw blocks), e.g. text plus tool calls."""
    blocks: list[Mapping[str, Any]] = []
    for part in parts:
        if isinstance(part, Reply):
            blocks.extend(part.content)
        else:
            blocks.append(dict(part))
    return Reply(content=tuple(blocks), stop_reason=stop_reason, usage=usage, model=model)


def cut_at_max_tokens(reply: Reply, keep_chars: int) -> Reply:
    """`reply` cut at the output token limit, as the API sends it: each tool call's input JSON is streamed
    only up to `keep_chars` characters (so the last string field is unfinished), and the stop reason is
    "max_tokens". The SDK parses the partial JSON and drops the unfinished field."""
    return replace(reply, stop_reason="max_tokens", cut_input_at=keep_chars)


def respond(function: Callable[[Mapping[str, Any]], ScriptItem]) -> Respond:
    """A script item computed from the request body when the request arrives (see `Respond`)."""
    return Respond(function)


def fault(status: int, error_type: str, message: str, headers: Mapping[str, str] | None = None) -> HttpFault:
    """Any HTTP error in Anthropic's format."""
    return HttpFault(status, error_type, message, tuple((headers or {}).items()))


def fault_429(retry_after: float = 1.0, *, header: str = "both") -> HttpFault:
    """429 rate_limit_error asking the client to wait `retry_after` seconds.

    `header="both"` (default) sends `retry-after` as whole seconds (rounded up, as the API does) and the
    exact `retry-after-ms`; `"retry-after"` or `"retry-after-ms"` sends only that one, the seconds
    value written as given (e.g. "0.3").
    """
    headers: dict[str, str] = {}
    if header in ("both", "retry-after"):
        headers["retry-after"] = str(math.ceil(retry_after)) if header == "both" else f"{retry_after:g}"
    if header in ("both", "retry-after-ms"):
        headers["retry-after-ms"] = str(round(retry_after * 1000))
    if not headers:
        raise ValueError(f"header must be 'both', 'retry-after' or 'retry-after-ms', not {header!r}")
    return fault(
        429,
        "rate_limit_error",
        "Number of request tokens has exceeded your per-minute rate limit (fake).",
        headers,
    )


def fault_529() -> HttpFault:
    """529 overloaded_error."""
    return fault(529, "overloaded_error", "Overloaded")


def fault_500() -> HttpFault:
    """500 api_error."""
    return fault(500, "api_error", "Internal server error (fake).")


def fault_401() -> HttpFault:
    """401 authentication_error, as for an invalid API key."""
    return fault(401, "authentication_error", "invalid x-api-key")


def cut_stream(after_events: int = 3, *, reply: Reply | None = None, clean: bool = False) -> CutStream:
    """Drop the stream after `after_events` events (see `CutStream`)."""
    return CutStream(after_events, reply or text("This answer is cut off before it is complete."), clean)


def stream_error(after_events: int = 2, *, reply: Reply | None = None) -> StreamError:
    """Send an `overloaded_error` event mid-stream after `after_events` events."""
    return StreamError(after_events, reply or text("This answer is interrupted by an overloaded error."))


def slow(seconds: float, then: ScriptItem | None = None) -> Slow:
    """Wait `seconds` before answering with `then` (default: a short text reply)."""
    return Slow(seconds, then if then is not None else text("Sorry for the wait."))


def stall(seconds: float, reply: Reply | None = None, *, after_events: int = 3) -> Stall:
    """Stream `after_events` events of `reply` (default: a short text reply), stop `seconds`, then finish."""
    return Stall(after_events, seconds, reply if reply is not None else text("That took a while."))


# --------------------------------------------------------------------------------------------------
# Records


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received, and what it answered."""

    index: int
    """Position among all requests received (0-based)."""
    method: str
    path: str
    headers: Mapping[str, str]
    """Request headers, names lower-cased."""
    body: Mapping[str, Any]
    """The parsed JSON body (empty if it was not JSON)."""
    outcome: str
    """What the fake did: "reply", "http-429" (etc.), "cut", "stream-error", "script-exhausted",
    "count-tokens", "unauthorized", "bad-request" or "not-found"."""
    usage: Mapping[str, int] | None = None
    """The usage reported (for "reply", "cut" and "stream-error"), wire-format names."""

    @property
    def stream(self) -> bool:
        """Whether the client asked for server-sent events."""
        return bool(self.body.get("stream"))


def cache_friendliness(requests: Iterable[RecordedRequest]) -> list[float]:
    """For each answered `/v1/messages` request, the share of its prompt tokens read from the cache.

    0.0 means nothing was cached (every token paid at full or cache-write price), 1.0 that the whole
    prompt was a cache hit. Requests without reported usage (errors, count_tokens) are skipped.
    """
    ratios: list[float] = []
    for request in requests:
        if request.path != "/v1/messages" or request.usage is None:
            continue
        usage = request.usage
        total = (
            usage.get("input_tokens", 0)
            + usage.get("cache_creation_input_tokens", 0)
            + usage.get("cache_read_input_tokens", 0)
        )
        ratios.append(usage.get("cache_read_input_tokens", 0) / total if total else 0.0)
    return ratios


# --------------------------------------------------------------------------------------------------
# Token and cache accounting


def approx_tokens(chars: int) -> int:
    """About four characters a token, as a rough stand-in for the real tokenizer."""
    return math.ceil(chars / 4)


def _without_cache_control(block: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in block.items() if key != "cache_control"}


def _image_free(value: Any) -> tuple[Any, int]:
    """`value` with each image's base64 data replaced by its SHA-256 (the cache still tells images apart),
    and the tokens of those images as the API counts them (width x height / 750, at most about 1,600)."""
    if isinstance(value, Mapping):
        source = value.get("source")
        if value.get("type") == "image" and isinstance(source, Mapping) and "data" in source:
            data = str(source["data"])
            size = _image_size(base64.b64decode(data)) or (1, 1)
            scale = min(1.0, 1568 / max(size))
            tokens = min(1600, math.ceil(size[0] * scale * size[1] * scale / 750))
            digest = hashlib.sha256(data.encode()).hexdigest()
            return {**value, "source": {**source, "data": digest}}, tokens
        total = 0
        copy: dict[str, Any] = {}
        for key, item in value.items():
            copy[key], tokens = _image_free(item)
            total += tokens
        return copy, total
    if isinstance(value, list | tuple):
        items = [_image_free(item) for item in value]
        return [item for item, _ in items], sum(tokens for _, tokens in items)
    return value, 0


def _prompt_blocks(body: Mapping[str, Any]) -> list[tuple[str, bool, int]]:
    """The prompt as (serialized block, carries a breakpoint, its size in characters) in cache order:
    tools, system, messages. An image is serialized as its hash and sized as the API counts it."""
    blocks: list[tuple[str, bool, int]] = []

    def add(kind: str, block: Any) -> None:
        if not isinstance(block, Mapping):
            block = {"type": "text", "text": str(block)}
        payload, image_tokens = _image_free({"in": kind, **_without_cache_control(block)})
        serialized = json.dumps(payload, sort_keys=True, ensure_ascii=False)
        blocks.append((serialized, "cache_control" in block, len(serialized) + 4 * image_tokens))

    for tool in body.get("tools") or []:
        add("tools", tool)
    system = body.get("system")
    if isinstance(system, str):
        if system:
            add("system", {"type": "text", "text": system})
    else:
        for block in system or []:
            add("system", block)
    for message in body.get("messages") or []:
        content = message.get("content")
        role = str(message.get("role", "user"))
        if isinstance(content, str):
            add(role, {"type": "text", "text": content})
        else:
            for block in content or []:
                add(role, block)
    return blocks


def count_prompt_tokens(body: Mapping[str, Any]) -> int:
    """Approximate prompt tokens of a request body (what `count_tokens` answers)."""
    return max(1, approx_tokens(sum(chars for _, _, chars in _prompt_blocks(body))))


class PromptCache:
    """The fake's prompt cache: prefix hashes written at `cache_control` breakpoints."""

    def __init__(self, *, min_cache_tokens: int = 0, lookback_blocks: int = 20) -> None:
        self.min_cache_tokens = min_cache_tokens
        self.lookback_blocks = lookback_blocks
        self._entries: set[str] = set()
        self._lock = threading.Lock()

    def clear(self) -> None:
        """Forget every cached prefix (as if the cache had expired)."""
        with self._lock:
            self._entries.clear()

    def account(self, body: Mapping[str, Any]) -> dict[str, int]:
        """Usage (input, cache read, cache write) of a request, writing its breakpoint prefixes."""
        blocks = _prompt_blocks(body)
        # The cache is per model, as the API's is.
        digest = hashlib.sha256(str(body.get("model", "")).encode())
        prefix_digests: list[str] = []
        prefix_tokens: list[int] = []
        chars = 0
        for serialized, _, size in blocks:
            digest.update(b"\x00" + serialized.encode())
            prefix_digests.append(digest.copy().hexdigest())
            chars += size
            prefix_tokens.append(approx_tokens(chars))
        total = max(1, approx_tokens(chars))
        breakpoints = [index for index, (_, marked, _) in enumerate(blocks) if marked]

        with self._lock:
            read = 0
            for position in breakpoints:
                for candidate in range(position, max(-1, position - self.lookback_blocks - 1), -1):
                    if prefix_digests[candidate] in self._entries:
                        read = max(read, prefix_tokens[candidate])
                        break
            written = [
                position
                for position in breakpoints
                if prefix_digests[position] not in self._entries
                and prefix_tokens[position] >= self.min_cache_tokens
            ]
            created = max(0, max((prefix_tokens[position] for position in written), default=0) - read)
            self._entries.update(prefix_digests[position] for position in written)
        return {
            "input_tokens": max(0, total - read - created),
            "cache_creation_input_tokens": created,
            "cache_read_input_tokens": read,
        }


# --------------------------------------------------------------------------------------------------
# Wire format


def _error_body(error_type: str, message: str, request_id: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type, "message": message}, "request_id": request_id}


def _split(value: str, pieces: int) -> list[str]:
    """`value` in about `pieces` consecutive parts (at least one, never empty unless `value` is)."""
    if not value:
        return [""]
    size = max(1, math.ceil(len(value) / pieces))
    return [value[start : start + size] for start in range(0, len(value), size)]


def _message(message_id: str, model: str, reply: Reply, usage: Mapping[str, int]) -> dict[str, Any]:
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [dict(block) for block in reply.content],
        "stop_reason": reply.effective_stop_reason(),
        "stop_sequence": None,
        "usage": dict(usage),
    }


def _stream_events(
    message: Mapping[str, Any], cut_input_at: int | None = None
) -> Iterator[tuple[str, dict[str, Any]]]:
    """The SSE events that stream `message`, as the API sends them (tool inputs cut at `cut_input_at`
    characters of their JSON when given)."""
    usage = message["usage"]
    start_usage = {**usage, "output_tokens": 1}
    yield (
        "message_start",
        {
            "type": "message_start",
            "message": {**message, "content": [], "stop_reason": None, "usage": start_usage},
        },
    )
    yield "ping", {"type": "ping"}
    for index, block in enumerate(message["content"]):
        kind = block.get("type")
        if kind == "text":
            start: dict[str, Any] = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": part} for part in _split(block["text"], 3)]
        elif kind == "tool_use":
            start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            # The API streams tool input as partial JSON strings; split into several so clients
            # must join them before parsing.
            deltas = [
                {"type": "input_json_delta", "partial_json": part}
                for part in ["", *_split(json.dumps(block["input"])[:cut_input_at], 4)]
            ]
        elif kind == "thinking":
            start = {"type": "thinking", "thinking": "", "signature": ""}
            deltas = [{"type": "thinking_delta", "thinking": part} for part in _split(block["thinking"], 3)]
            deltas.append({"type": "signature_delta", "signature": block.get("signature", "")})
        else:
            start, deltas = dict(block), []
        yield "content_block_start", {"type": "content_block_start", "index": index, "content_block": start}
        for delta in deltas:
            yield "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
        yield "content_block_stop", {"type": "content_block_stop", "index": index}
    yield (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
            "usage": dict(usage),
        },
    )
    yield "message_stop", {"type": "message_stop"}


def _empty_message(body: Mapping[str, Any]) -> int | None:
    """The index of the first message the API refuses as empty (only a final assistant turn may be)."""
    messages = body.get("messages") or []
    for index, message in enumerate(messages):
        final_assistant = index == len(messages) - 1 and message.get("role") == "assistant"
        if not message.get("content") and not final_assistant:
            return index
    return None


_BLOCK_TYPES = frozenset(
    {
        "text",
        "image",
        "document",
        "search_result",
        "tool_use",
        "tool_result",
        "thinking",
        "redacted_thinking",
        "server_tool_use",
        "web_search_tool_result",
        "container_upload",
    }
)
"""The content block types the Messages API takes in a request; any other `type` is a 400."""


_IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
MAX_IMAGE_BASE64 = 5 * 1024 * 1024
"""The API refuses an image whose base64 data is longer than 5 MB."""


def _image_size(raw: bytes) -> tuple[int, int] | None:
    """(width, height) of a PNG, GIF, JPEG or WebP file, as the API reads it; None when it cannot."""
    if raw.startswith(b"\x89PNG\r\n\x1a\n") and raw[12:16] == b"IHDR":
        return struct.unpack(">II", raw[16:24])
    if raw[:6] in (b"GIF87a", b"GIF89a") and len(raw) >= 10:
        return struct.unpack("<HH", raw[6:10])
    if raw[:4] == b"RIFF" and raw[8:16] == b"WEBPVP8X" and len(raw) >= 30:
        return int.from_bytes(raw[24:27], "little") + 1, int.from_bytes(raw[27:30], "little") + 1
    if raw.startswith(b"\xff\xd8"):
        at = 2
        while at + 9 <= len(raw) and raw[at] == 0xFF:
            marker, length = raw[at + 1], struct.unpack(">H", raw[at + 2 : at + 4])[0]
            if marker in range(0xC0, 0xD0) and marker not in (0xC4, 0xC8, 0xCC):
                height, width = struct.unpack(">HH", raw[at + 5 : at + 9])
                return width, height
            at += 2 + length
    return None


def _image_kind(raw: bytes) -> str | None:
    for prefix, kind in ((b"\x89PNG", "image/png"), (b"GIF8", "image/gif"), (b"\xff\xd8", "image/jpeg")):
        if raw.startswith(prefix):
            return kind
    return "image/webp" if raw[:4] == b"RIFF" and raw[8:12] == b"WEBP" else None


def _images(body: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """Every image block of the request with its path as the API's errors name it."""
    found: list[tuple[str, Mapping[str, Any]]] = []
    for index, message in enumerate(body.get("messages") or []):
        content = message.get("content")
        for position, block in enumerate(content if isinstance(content, list) else []):
            if not isinstance(block, Mapping):
                continue
            where = f"messages.{index}.content.{position}"
            if block.get("type") == "image":
                found.append((where, block))
            inner = block.get("content") if block.get("type") == "tool_result" else None
            for number, item in enumerate(inner if isinstance(inner, list) else []):
                if isinstance(item, Mapping) and item.get("type") == "image":
                    found.append((f"{where}.content.{number}", item))
    return found


def _bad_image(body: Mapping[str, Any]) -> str | None:
    """The API's 400 message for the first image it refuses, if any: a type it does not take, base64 data
    over 5 MB, data that is not an image of the type given, a side over 8,000 pixels (2,000 when the
    request has more than 20 images), more than 100 images."""
    images = _images(body)
    if len(images) > 100:
        return f"Too many images and documents: {len(images)} > 100"
    for where, block in images:
        source = block.get("source")
        if not isinstance(source, Mapping) or source.get("type") != "base64":
            return f"{where}.image.source: Input tag {(source or {}).get('type')!r} does not match"
        if source.get("media_type") not in _IMAGE_TYPES:
            return f"{where}.image.source.base64.media_type: Input should be " + ", ".join(_IMAGE_TYPES)
        data = str(source.get("data", ""))
        if len(data) > MAX_IMAGE_BASE64:
            return (
                f"{where}.image.source.base64: image exceeds 5 MB maximum: {len(data)} bytes > "
                f"{MAX_IMAGE_BASE64} bytes"
            )
        try:
            raw = base64.b64decode(data, validate=True)
        except ValueError:
            return f"{where}.image.source.base64.data: invalid base64 data"
        size = _image_size(raw)
        if _image_kind(raw) != source["media_type"] or size is None:
            kind = source["media_type"]
            return f"{where}.image.source.base64.data: Image does not match the provided media type {kind}"
        limit, many = (2000, " for many-image requests") if len(images) > 20 else (8000, "")
        if max(size) > limit:
            return (
                f"{where}.image.source.base64.data: At least one of the image dimensions exceed max allowed "
                f"size{many}: {limit} pixels"
            )
    return None


def _unknown_block(body: Mapping[str, Any]) -> str | None:
    """The API's 400 message for the first content block whose type it does not know, if any."""
    for index, message in enumerate(body.get("messages") or []):
        content = message.get("content")
        if not isinstance(content, list):
            continue
        for position, block in enumerate(content):
            kind = block.get("type") if isinstance(block, Mapping) else None
            if kind not in _BLOCK_TYPES:
                return (
                    f"messages.{index}.content.{position}: Input tag '{kind}' found using 'type' does not "
                    "match any of the expected tags"
                )
    return None


class _Handler(FakeHandler):
    server: FakeServer

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("fake anthropic: " + format, *args)

    # -- plumbing

    def _send_error(
        self,
        status: int,
        error_type: str,
        message: str,
        request_id: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.send_json(
            status,
            _error_body(error_type, message, request_id),
            {"request-id": request_id, **(headers or {})},
        )

    def _event(self, name: str, data: Mapping[str, Any]) -> None:
        self.send_chunk(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())

    # -- requests

    def do_POST(self) -> None:
        fake = self.server.fake
        path, headers, raw = self.read_request()
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = None
        index, request_id = fake._next_request_id()

        def record(outcome: str, usage: Mapping[str, int] | None) -> None:
            fake._record(
                RecordedRequest(
                    index=index,
                    method="POST",
                    path=path,
                    headers=MappingProxyType(headers),
                    body=MappingProxyType(body if isinstance(body, dict) else {}),
                    outcome=outcome,
                    usage=MappingProxyType(dict(usage)) if usage is not None else None,
                )
            )

        if path not in ("/v1/messages", "/v1/messages/count_tokens"):
            record("not-found", None)
            self._send_error(404, "not_found_error", f"The fake has no route {path}.", request_id)
            return
        if not isinstance(body, dict):
            record("bad-request", None)
            self._send_error(
                400, "invalid_request_error", "The request body is not a JSON object.", request_id
            )
            return
        if fake.api_key is not None:
            given = headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ")
            if given != fake.api_key:
                record("unauthorized", None)
                self._send_error(401, "authentication_error", "invalid x-api-key", request_id)
                return
        if path == "/v1/messages/count_tokens":
            record("count-tokens", None)
            self.send_json(200, {"input_tokens": count_prompt_tokens(body)}, {"request-id": request_id})
            return

        empty = _empty_message(body)
        if empty is not None:
            record("http-400", None)
            self._send_error(
                400,
                "invalid_request_error",
                f"messages.{empty}: all messages must have non-empty content except for the optional final "
                "assistant message",
                request_id,
            )
            return
        unknown = _unknown_block(body) or _bad_image(body)
        if unknown is not None:
            record("http-400", None)
            self._send_error(400, "invalid_request_error", unknown, request_id)
            return
        if fake.context_window is not None:
            prompt = count_prompt_tokens(body)
            if prompt > fake.context_window:
                record("http-400", None)
                fake.too_long += 1
                self._send_error(
                    400,
                    "invalid_request_error",
                    f"prompt is too long: {prompt} tokens > {fake.context_window} maximum",
                    request_id,
                )
                return
        item = fake._pop()
        if item is None and fake.responder is not None:
            item = Respond(fake.responder)
        if item is None:
            record("script-exhausted", None)
            self._send_error(
                500,
                "api_error",
                f"FakeAnthropic script ran out: request #{index} to /v1/messages arrived but no reply "
                "was enqueued. Enqueue another reply with fake.enqueue(...), or find out why the code "
                "under test made an extra call.",
                request_id,
                {"x-should-retry": "false"},
            )
            return
        while isinstance(item, Slow | Respond):
            if isinstance(item, Respond):
                item = item.function(body)
                continue
            if fake._stopping.wait(item.seconds):
                self.close_connection = True
                return
            item = item.then
        try:
            self._answer(item, body, request_id, record)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (cancelled or timed out); nothing left to answer.
            self.close_connection = True

    def _answer(
        self,
        item: ScriptItem,
        body: dict[str, Any],
        request_id: str,
        record: Callable[[str, Mapping[str, int] | None], None],
    ) -> None:
        fake = self.server.fake
        if isinstance(item, HttpFault):
            record(f"http-{item.status}", None)
            self._send_error(item.status, item.error_type, item.message, request_id, dict(item.headers))
            return
        if isinstance(item, Slow | Respond):  # pragma: no cover - unwrapped by the caller
            raise AssertionError("slow and computed items are unwrapped before answering")
        reply = item.reply if isinstance(item, CutStream | StreamError | Stall) else item
        usage = fake.cache.account(body)
        usage["output_tokens"] = max(1, approx_tokens(len(json.dumps([dict(b) for b in reply.content]))))
        usage.update(reply.usage or {})
        outcome = (
            "cut"
            if isinstance(item, CutStream)
            else "stream-error"
            if isinstance(item, StreamError)
            else "stalled"
            if isinstance(item, Stall)
            else "reply"
        )
        record(outcome, usage)
        message = _message(f"msg_fake_{request_id[-8:]}", reply.model or str(body.get("model")), reply, usage)

        if not body.get("stream"):
            if isinstance(item, CutStream | StreamError):
                self.close_connection = True
                return
            if isinstance(item, Stall) and fake._stopping.wait(item.seconds):
                self.close_connection = True
                return
            self.send_json(200, message, {"request-id": request_id})
            return

        self.start_event_stream(
            {
                "content-type": "text/event-stream; charset=utf-8",
                "cache-control": "no-cache",
                "request-id": request_id,
            }
        )
        limit = item.after_events if isinstance(item, CutStream | StreamError) else None
        for sent, (name, data) in enumerate(_stream_events(message, reply.cut_input_at)):
            if limit is not None and sent >= limit:
                break
            if isinstance(item, Stall) and sent == item.after_events and fake._stopping.wait(item.seconds):
                self.close_connection = True
                return
            self._event(name, data)
        if isinstance(item, StreamError):
            self._event("error", _error_body(item.error_type, item.message, request_id))
        if isinstance(item, CutStream) and not item.clean:
            # No terminating chunk: the client sees the body end mid-message.
            self.close_connection = True
            return
        self.send_chunk(b"")


# --------------------------------------------------------------------------------------------------
# The fake


class FakeAnthropic(ScriptedFake[ScriptItem, RecordedRequest]):
    """A scripted Messages API on 127.0.0.1 (a free port); a context manager, or `start()` / `stop()`.

    `api_key`: when set, requests without that key (`x-api-key` or a Bearer token) get a 401.
    `min_cache_tokens`: prefixes shorter than this are not cached (the API's minimum is about 1-4k
    tokens depending on the model; 0 keeps small tests simple).
    `context_window`: when set, a request whose prompt (approximate tokens, as `count_prompt_tokens`
    counts) exceeds it is answered `400 invalid_request_error: prompt is too long` without consuming a
    script item, as the API does past a model's window; `too_long` counts them.
    `responder`: when set, a request that finds the script empty is answered by `responder(body)`.
    """

    handler = _Handler
    thread_name = "fake-anthropic"

    def __init__(
        self,
        *script: ScriptItem,
        api_key: str | None = None,
        min_cache_tokens: int = 0,
        cache_lookback_blocks: int = 20,
        context_window: int | None = None,
        responder: Callable[[Mapping[str, Any]], ScriptItem] | None = None,
    ) -> None:
        super().__init__(script)
        self.api_key = api_key
        self.context_window = context_window
        self.responder = responder
        self.too_long = 0
        self.cache = PromptCache(min_cache_tokens=min_cache_tokens, lookback_blocks=cache_lookback_blocks)
        self._stopping = threading.Event()

    # -- lifecycle

    def start(self) -> FakeAnthropic:
        """Listen on a free port and serve in a background thread."""
        self._stopping.clear()
        return super().start()

    def stop(self) -> None:
        """Stop serving; slow replies still waiting are abandoned."""
        self._stopping.set()
        super().stop()

    @property
    def url(self) -> str:
        """Base URL for the SDK's `base_url` or `ANTHROPIC_BASE_URL`."""
        return self._origin()

    def env(self, api_key: str = FAKE_API_KEY) -> dict[str, str]:
        """Environment variables pointing a child process (the CLI, the server) at this fake."""
        return {"ANTHROPIC_BASE_URL": self.url, "ANTHROPIC_API_KEY": self.api_key or api_key}

    # -- script

    def enqueue(self, *items: ScriptItem) -> FakeAnthropic:
        """Append script items; each `/v1/messages` request consumes the next one."""
        for item in items:
            if not isinstance(item, Reply | HttpFault | CutStream | StreamError | Slow | Stall | Respond):
                raise TypeError(f"not a script item: {item!r} (use text(), tool_use(), turn(), fault_*()...)")
        return super().enqueue(*items)

    # -- records

    def _next_request_id(self) -> tuple[int, str]:
        index = self._next_index()
        return index, f"req_fake_{index:08d}"

    @property
    def message_requests(self) -> list[RecordedRequest]:
        """The `/v1/messages` requests received so far."""
        return [request for request in self.requests if request.path == "/v1/messages"]


def with_usage(reply: Reply, **usage: int) -> Reply:
    """`reply` reporting the given usage counters instead of computed ones."""
    return replace(reply, usage={**(reply.usage or {}), **usage})


@pytest.fixture
def fake_anthropic() -> Iterator[FakeAnthropic]:
    """A running `FakeAnthropic`, stopped after the test. Register with
    `pytest_plugins = ["tests.fakes.anthropic_server"]` in the root conftest, or import it."""
    with FakeAnthropic() as fake:
        yield fake
