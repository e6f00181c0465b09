"""A local fake of an OpenAI-compatible Chat Completions API over real HTTP (OpenAI, Ollama, vLLM...).

It reuses the script items of `tests.fakes.anthropic_server`: replies are `Reply`s made with `text`,
`tool_use` and `turn` (canonical blocks, converted here to the Chat Completions wire format), faults
are `HttpFault`s (`fault_429(...)` etc., answered in OpenAI's error format with the same `retry-after`
headers), `CutStream` drops the connection mid-stream, and `Stall` stops mid-stream for a while (a
generation that hangs: the client has the first chunks and no usage yet).

What it speaks, at `POST /v1/chat/completions`:
- with `"stream": true`: server-sent events, each `data: {"object": "chat.completion.chunk", ...}`: a
  first chunk with `delta.role`, text in several `delta.content` pieces, each tool call as
  `delta.tool_calls` fragments (`index`, then `id`, `type` and `function.name` in the first fragment and
  `function.arguments` split over several), a chunk with `finish_reason` ("stop", "tool_calls",
  "length"), then, when the body asked for `stream_options.include_usage`, a chunk with empty
  `choices` and `usage` (`prompt_tokens`, `completion_tokens`, `total_tokens`,
  `prompt_tokens_details.cached_tokens`), then `data: [DONE]`;
- without: one `chat.completion` JSON object.

A reply made with `cut_at_max_tokens` streams each tool call's arguments only up to its `cut_input_at`
characters (JSON cut mid-string, as a server cut at the output limit sends it). Two options mimic servers
seen in the field: `calls_at_index_zero` streams every tool call of a turn at `index` 0, each with its own
`id` (Ollama through LiteLLM, and other servers, do so), and `context_window` answers a prompt larger
than it (approximate tokens) with OpenAI's 400 `context_length_exceeded` ("This model's maximum context
length is ... tokens"), consuming no script item.

Servers differ from OpenAI in their wire format (Ollama sends each tool call whole, some without an `id`,
reasoning models send `reasoning_content` deltas or `<think>` in the content, vLLM's errors have a top-level
`message`, OpenRouter reports an error in a `data:` line of a 200): `RawStream` sends chunks exactly as
given (`chunk` builds one), and `RawError` an error status with a body exactly as given.

Usage is approximate (about 4 characters a token of the serialized messages and tools). With `api_key`
set, a request without `Authorization: Bearer <api_key>` gets a 401. When the script runs out the
server answers 500 with a body that says so.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from tests.fakes.anthropic_server import (
    CutStream,
    HttpFault,
    Reply,
    Slow,
    Stall,
    approx_tokens,
)
from tests.fakes.scripted_http import FakeHandler, FakeServer, ScriptedFake

logger = logging.getLogger(__name__)

FAKE_OPENAI_KEY = "sk-openai-fake-key-for-tests"
FAKE_MODEL = "fake-coder-7b"


@dataclass(frozen=True)
class RawStream:
    """A 200 event stream of `events` exactly as given, each one `data:` line: a mapping as its JSON, a
    string as it is; then `data: [DONE]` unless `done` is False."""

    events: tuple[Mapping[str, Any] | str, ...]
    done: bool = True


@dataclass(frozen=True)
class RawError:
    """An HTTP error with `body` exactly as given (a mapping as JSON, a string as plain text)."""

    status: int
    body: Mapping[str, Any] | str
    headers: tuple[tuple[str, str], ...] = ()


def raw_stream(*events: Mapping[str, Any] | str, done: bool = True) -> RawStream:
    """Stream these chunks (see `RawStream`)."""
    return RawStream(tuple(events), done)


def raw_error(
    status: int, body: Mapping[str, Any] | str, headers: Mapping[str, str] | None = None
) -> RawError:
    """Answer with this status and body (see `RawError`)."""
    return RawError(status, body, tuple((headers or {}).items()))


def chunk(
    delta: Mapping[str, Any] | None = None,
    finish_reason: str | None = None,
    *,
    usage: Mapping[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One `chat.completion.chunk` with one choice (none when `delta` is None), `usage` when given (also
    `None`, sent as null) and `extra` top-level fields."""
    body: dict[str, Any] = {
        "id": "chatcmpl-raw",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": FAKE_MODEL,
        "choices": []
        if delta is None
        else [{"index": 0, "delta": dict(delta), "finish_reason": finish_reason}],
    }
    if usage is not None or "usage" in extra:
        body["usage"] = usage
    body.update(extra)
    return body


ScriptItem = Reply | HttpFault | CutStream | Slow | Stall | RawStream | RawError

_FINISH = {"end_turn": "stop", "tool_use": "tool_calls", "max_tokens": "length", "refusal": "content_filter"}


@dataclass(frozen=True)
class OpenAIRequest:
    """One request the fake received and what it did ("reply", "http-429", "cut", "unauthorized"...)."""

    index: int
    path: str
    headers: Mapping[str, str]
    body: Mapping[str, Any]
    outcome: str


def _split(value: str, pieces: int) -> list[str]:
    if not value:
        return []
    size = max(1, -(-len(value) // pieces))
    return [value[i : i + size] for i in range(0, len(value), size)]


def prompt_tokens(body: Mapping[str, Any]) -> int:
    """Approximate prompt tokens of a request body: its messages and tools, serialized."""
    return approx_tokens(len(json.dumps(body.get("messages", []))) + len(json.dumps(body.get("tools", []))))


def _usage(body: Mapping[str, Any], reply: Reply) -> dict[str, Any]:
    prompt = prompt_tokens(body)
    completion = approx_tokens(len(json.dumps([dict(block) for block in reply.content])))
    overrides = dict(reply.usage or {})
    prompt = int(overrides.get("prompt_tokens", prompt))
    completion = int(overrides.get("completion_tokens", completion))
    cached = int(overrides.get("cached_tokens", 0))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    }


def stream_chunks(
    reply: Reply, model: str, completion_id: str, *, calls_at_index_zero: bool = False
) -> Iterator[dict[str, Any]]:
    """The `chat.completion.chunk`s of `reply`, without the usage chunk (each tool call's arguments cut
    at `reply.cut_input_at` characters; every call at index 0 with `calls_at_index_zero`)."""
    created = int(time.time())

    def chunk(delta: Mapping[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": dict(delta), "finish_reason": finish}],
        }

    yield chunk({"role": "assistant", "content": ""})
    call_index = 0
    for block in reply.content:
        if block.get("type") == "text":
            for piece in _split(str(block.get("text", "")), 3):
                yield chunk({"content": piece})
        elif block.get("type") == "tool_use":
            arguments = json.dumps(block.get("input", {}))[: reply.cut_input_at]
            index = 0 if calls_at_index_zero else call_index
            yield chunk(
                {
                    "tool_calls": [
                        {
                            "index": index,
                            "id": block.get("id"),
                            "type": "function",
                            "function": {"name": block.get("name"), "arguments": ""},
                        }
                    ]
                }
            )
            for piece in _split(arguments, 4):
                yield chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
            call_index += 1
    yield chunk({}, _FINISH.get(reply.effective_stop_reason(), "stop"))


def completion(reply: Reply, model: str, completion_id: str, usage: Mapping[str, Any]) -> dict[str, Any]:
    """`reply` as one non-streamed `chat.completion`."""
    text = "".join(str(b.get("text", "")) for b in reply.content if b.get("type") == "text")
    calls = [
        {
            "id": b.get("id"),
            "type": "function",
            "function": {"name": b.get("name"), "arguments": json.dumps(b.get("input", {}))},
        }
        for b in reply.content
        if b.get("type") == "tool_use"
    ]
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = calls
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": message, "finish_reason": _FINISH.get(reply.effective_stop_reason())}
        ],
        "usage": dict(usage),
    }


class _Handler(FakeHandler):
    server: FakeServer

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("fake openai: " + format, *args)

    def _error(self, status: int, kind: str, message: str, headers: Mapping[str, str] = {}) -> None:
        self.send_json(status, {"error": {"message": message, "type": kind, "code": None}}, headers)

    def _raw_error(self, item: RawError) -> None:
        if isinstance(item.body, Mapping):
            self.send_json(item.status, item.body, dict(item.headers))
            return
        data = item.body.encode()
        self.send_response(item.status)
        self.send_header("content-type", "text/plain; charset=utf-8")
        self.send_header("content-length", str(len(data)))
        for name, value in item.headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        fake = self.server.fake
        path, headers, raw = self.read_request()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {}
        index = fake._next_index()

        def record(outcome: str) -> None:
            fake._record(OpenAIRequest(index, path, headers, body, outcome))

        if path != "/v1/chat/completions":
            record("not-found")
            self._error(404, "invalid_request_error", f"Unknown path {path}")
            return
        if fake.api_key is not None and headers.get("authorization") != f"Bearer {fake.api_key}":
            record("unauthorized")
            self._error(401, "invalid_request_error", "Incorrect API key provided (fake).")
            return
        if fake.context_window is not None and prompt_tokens(body) > fake.context_window:
            record("http-400")
            fake.too_long += 1
            self._error(
                400,
                "invalid_request_error",
                f"This model's maximum context length is {fake.context_window} tokens. However, your "
                f"messages resulted in {prompt_tokens(body)} tokens. Please reduce the length of the "
                "messages.",
            )
            return
        item = fake._pop()
        while isinstance(item, Slow):
            time.sleep(item.seconds)
            item = item.then
        if item is None:
            record("script-exhausted")
            self._error(500, "server_error", "the fake's script ran out: enqueue more replies")
            return
        if isinstance(item, HttpFault):
            record(f"http-{item.status}")
            self._error(item.status, item.error_type, item.message, dict(item.headers))
            return
        if isinstance(item, RawError):
            record(f"http-{item.status}")
            self._raw_error(item)
            return
        if isinstance(item, RawStream):
            record("raw")
            self.start_event_stream({"content-type": "text/event-stream"})
            for event in item.events:
                data = event if isinstance(event, str) else json.dumps(event)
                self.send_chunk(f"data: {data}\n\n".encode())
            if item.done:
                self.send_chunk(b"data: [DONE]\n\n")
            self.send_chunk(b"")
            return
        reply = item.reply if isinstance(item, CutStream | Stall) else item
        model = reply.model or str(body.get("model") or FAKE_MODEL)
        completion_id = f"chatcmpl-fake{index:06d}"
        usage = _usage(body, reply)
        if not body.get("stream"):
            record("reply")
            self.send_json(200, completion(reply, model, completion_id, usage))
            return
        self.start_event_stream(
            {"content-type": "text/event-stream", "x-request-id": f"req_openai_fake_{index:06d}"}
        )
        chunks = stream_chunks(reply, model, completion_id, calls_at_index_zero=fake.calls_at_index_zero)
        events = [f"data: {json.dumps(c)}\n\n" for c in chunks]
        options = body.get("stream_options") or {}
        if options.get("include_usage") and fake.usage_chunk:
            events.append(
                "data: "
                + json.dumps(
                    {
                        "id": completion_id,
                        "object": "chat.completion.chunk",
                        "created": int(time.time()),
                        "model": model,
                        "choices": [],
                        "usage": usage,
                    }
                )
                + "\n\n"
            )
        events.append("data: [DONE]\n\n")
        if isinstance(item, CutStream):
            record("cut")
            for event in events[: item.after_events]:
                self.send_chunk(event.encode())
            if item.clean:
                self.send_chunk(b"")
            self.close_connection = True
            return
        record("stalled" if isinstance(item, Stall) else "reply")
        for sent, event in enumerate(events):
            if isinstance(item, Stall) and sent == item.after_events and fake._stopping.wait(item.seconds):
                self.close_connection = True
                return
            self.send_chunk(event.encode())
        self.send_chunk(b"")


class FakeOpenAI(ScriptedFake[ScriptItem, OpenAIRequest]):
    """A scripted Chat Completions API on 127.0.0.1 (a free port); a context manager."""

    handler = _Handler
    thread_name = "fake-openai"

    def __init__(
        self,
        *script: ScriptItem,
        api_key: str | None = None,
        calls_at_index_zero: bool = False,
        context_window: int | None = None,
        usage_chunk: bool = True,
    ) -> None:
        """`calls_at_index_zero` and `context_window`: see the module docstring (`too_long` counts the
        requests refused for their length); `usage_chunk` False ignores `stream_options.include_usage`
        and streams no usage at all, as servers that do not know the option do."""
        super().__init__(script)
        self.api_key = api_key
        self.calls_at_index_zero = calls_at_index_zero
        self.context_window = context_window
        self.usage_chunk = usage_chunk
        self.too_long = 0
        self._stopping = threading.Event()

    def start(self) -> FakeOpenAI:
        """Listen on a free port and serve in a background thread."""
        self._stopping.clear()
        return super().start()

    def stop(self) -> None:
        """Stop serving; stalled replies still waiting are abandoned."""
        self._stopping.set()
        super().stop()

    @property
    def url(self) -> str:
        """The base URL, as `agent.model.base_url` takes it (ending in /v1)."""
        return f"{self._origin()}/v1"
