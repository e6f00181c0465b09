"""The fake Anthropic server speaks the wire format the real SDK expects, and accounts usage like the API."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from tests.fakes.anthropic_server import (
    FAKE_API_KEY,
    FakeAnthropic,
    cache_friendliness,
    count_prompt_tokens,
    cut_stream,
    fault_429,
    fault_529,
    slow,
    stream_error,
    text,
    thinking,
    tool_use,
    turn,
    with_usage,
)

MODEL = "claude-sonnet-5-5"
EPHEMERAL = {"type": "ephemeral"}


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server


def sdk(fake: FakeAnthropic) -> Any:
    """The real SDK client, typed loosely: these tests pass raw dicts and probe events dynamically."""
    return anthropic.Anthropic(api_key=FAKE_API_KEY, base_url=fake.url, max_retries=0, timeout=5.0)


def post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
    """A raw POST, to check the wire format without the SDK in between."""
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


def test_non_streaming_reply_with_text_and_tools_parses_in_the_sdk(fake: FakeAnthropic) -> None:
    fake.enqueue(
        turn(text("Two calls."), tool_use("bash", {"command": "ls"}), tool_use("view", {"path": "a.py"}))
    )
    message = sdk(fake).messages.create(model=MODEL, max_tokens=100, messages=[user("hi")])
    assert [block.type for block in message.content] == ["text", "tool_use", "tool_use"]
    assert message.content[2].input == {"path": "a.py"}
    assert message.stop_reason == "tool_use"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    [request] = fake.requests
    assert request.body["messages"] == [user("hi")]
    # anthropic 2.x sends the key as a Bearer token; older SDKs as x-api-key.
    sent = request.headers.get("x-api-key") or request.headers["authorization"].removeprefix("Bearer ")
    assert sent == FAKE_API_KEY
    assert request.outcome == "reply" and not request.stream


def test_stream_has_every_event_type_and_splits_tool_input(fake: FakeAnthropic) -> None:
    arguments = {"command": "str_replace", "path": "src/app.py", "old_str": "x = 1\n" * 5, "new_str": "x = 2"}
    fake.enqueue(
        turn(thinking("Let me think."), text("Editing now."), tool_use("edit", arguments, id="toolu_1"))
    )
    events = list(sdk(fake).messages.create(model=MODEL, max_tokens=100, messages=[user("go")], stream=True))
    kinds = [event.type for event in events]
    # ping events are consumed by the SDK, so check them on the wire below.
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    assert kinds.count("content_block_start") == 3 == kinds.count("content_block_stop")
    deltas = [event.delta for event in events if event.type == "content_block_delta"]
    delta_types = {delta.type for delta in deltas}
    assert delta_types == {"thinking_delta", "signature_delta", "text_delta", "input_json_delta"}
    pieces = [delta.partial_json for delta in deltas if delta.type == "input_json_delta"]
    assert len([piece for piece in pieces if piece]) >= 3
    assert json.loads("".join(pieces)) == arguments
    start = events[0]
    assert start.type == "message_start"
    assert start.message.usage.cache_creation_input_tokens == 0
    assert start.message.usage.cache_read_input_tokens == 0

    # The SDK's own accumulator rebuilds the same message from the events.
    fake.enqueue(turn(text("Editing now."), tool_use("edit", arguments, id="toolu_2")))
    with sdk(fake).messages.stream(model=MODEL, max_tokens=100, messages=[user("go")]) as stream:
        final = stream.get_final_message()
    assert final.content[1].input == arguments
    assert final.stop_reason == "tool_use"


def test_stream_wire_format_includes_ping_and_cache_usage(fake: FakeAnthropic) -> None:
    fake.enqueue(text("hello"))
    request = urllib.request.Request(
        fake.url + "/v1/messages",
        data=json.dumps({"model": MODEL, "max_tokens": 10, "stream": True, "messages": [user("x")]}).encode(),
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["request-id"].startswith("req_fake_")
        raw = response.read().decode()
    names = [line.removeprefix("event: ") for line in raw.splitlines() if line.startswith("event: ")]
    assert names[:2] == ["message_start", "ping"]
    start = json.loads(raw.split("data: ", 1)[1].split("\n", 1)[0])
    assert set(start["message"]["usage"]) >= {"cache_creation_input_tokens", "cache_read_input_tokens"}


def test_errors_use_anthropics_format_and_headers(fake: FakeAnthropic) -> None:
    fake.enqueue(fault_429(retry_after=0.25), fault_529())
    status, headers, body = post(fake.url + "/v1/messages", {"model": MODEL, "messages": []})
    assert status == 429
    assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error"
    assert headers["retry-after"] == "1" and headers["retry-after-ms"] == "250"
    assert headers["request-id"].startswith("req_fake_")
    with pytest.raises(anthropic.APIStatusError) as raised:
        sdk(fake).messages.create(model=MODEL, max_tokens=10, messages=[user("x")])
    assert raised.value.status_code == 529 and raised.value.type == "overloaded_error"


def test_an_exhausted_script_fails_loudly(fake: FakeAnthropic) -> None:
    status, headers, body = post(fake.url + "/v1/messages", {"model": MODEL, "messages": [user("x")]})
    assert status == 500
    assert "script ran out" in body["error"]["message"]
    assert headers["x-should-retry"] == "false"
    assert fake.requests[0].outcome == "script-exhausted"


def test_count_tokens_is_about_a_quarter_of_the_characters(fake: FakeAnthropic) -> None:
    words = "word " * 400
    result = sdk(fake).messages.count_tokens(model=MODEL, messages=[user(words)])
    assert 450 <= result.input_tokens <= 560
    assert fake.pending == 0 and fake.requests[0].outcome == "count-tokens"


def test_cache_reads_the_longest_prefix_seen_at_a_breakpoint(fake: FakeAnthropic) -> None:
    tools = [{"name": "bash", "description": "run" * 200, "input_schema": {"type": "object"}}]
    system = [{"type": "text", "text": "You are careful. " * 200, "cache_control": EPHEMERAL}]
    first = [user([{"type": "text", "text": "task " * 50, "cache_control": EPHEMERAL}])]
    for _ in range(4):
        fake.enqueue(text("ok"))
    client = sdk(fake)

    one = client.messages.create(model=MODEL, max_tokens=9, tools=tools, system=system, messages=first).usage
    assert one.cache_read_input_tokens == 0
    assert one.cache_creation_input_tokens > 0 and one.input_tokens == 0

    # The breakpoint moved to the new last turn; the old one is found by lookback.
    second = [
        user([{"type": "text", "text": "task " * 50}]),
        {"role": "assistant", "content": [{"type": "text", "text": "ok"}]},
        user([{"type": "text", "text": "more " * 50, "cache_control": EPHEMERAL}]),
    ]
    two = client.messages.create(model=MODEL, max_tokens=9, tools=tools, system=system, messages=second).usage
    assert two.cache_read_input_tokens == one.cache_creation_input_tokens
    assert two.cache_creation_input_tokens > 0

    # A changed system prompt is a different prefix: nothing to read.
    other = [{"type": "text", "text": "You are hasty. " * 200, "cache_control": EPHEMERAL}]
    three = client.messages.create(model=MODEL, max_tokens=9, tools=tools, system=other, messages=first).usage
    assert three.cache_read_input_tokens == 0

    # Without cache_control nothing is read or written.
    plain = [{"type": "text", "text": "You are careful. " * 200}]
    four = client.messages.create(model=MODEL, max_tokens=9, system=plain, messages=[user("task")]).usage
    assert four.cache_read_input_tokens == 0 == four.cache_creation_input_tokens


def test_lookback_is_limited_to_twenty_blocks(fake: FakeAnthropic) -> None:
    client = sdk(fake)
    base: list[dict[str, Any]] = [{"type": "text", "text": f"block {i} " * 40} for i in range(3)]
    marked = [*base[:-1], {**base[-1], "cache_control": EPHEMERAL}]
    fake.enqueue(text("ok"), text("ok"), text("ok"))
    client.messages.create(model=MODEL, max_tokens=9, messages=[user(marked)])

    near = [*base, *[{"type": "text", "text": f"near {i}"} for i in range(19)]]
    near[-1] = {**near[-1], "cache_control": EPHEMERAL}
    hit = client.messages.create(model=MODEL, max_tokens=9, messages=[user(near)]).usage
    assert hit.cache_read_input_tokens > 0

    far = [*base, *[{"type": "text", "text": f"far {i}"} for i in range(25)]]
    far[-1] = {**far[-1], "cache_control": EPHEMERAL}
    miss = client.messages.create(model=MODEL, max_tokens=9, messages=[user(far)]).usage
    assert miss.cache_read_input_tokens == 0


def test_explicit_usage_overrides_the_computed_one(fake: FakeAnthropic) -> None:
    fake.enqueue(with_usage(text("hi"), input_tokens=7, cache_read_input_tokens=1234, output_tokens=3))
    with sdk(fake).messages.stream(model=MODEL, max_tokens=9, messages=[user("x")]) as stream:
        usage = stream.get_final_message().usage
    assert (usage.input_tokens, usage.cache_read_input_tokens, usage.output_tokens) == (7, 1234, 3)
    assert cache_friendliness(fake.requests) == [
        pytest.approx(1234 / (7 + 1234 + usage.cache_creation_input_tokens))
    ]


def test_cut_stream_breaks_the_sdk_stream(fake: FakeAnthropic) -> None:
    fake.enqueue(cut_stream(after_events=4), cut_stream(after_events=4, clean=True))
    with (
        pytest.raises(Exception) as raised,
        sdk(fake).messages.stream(model=MODEL, max_tokens=9, messages=[user("x")]) as stream,
    ):
        stream.until_done()
    assert not isinstance(raised.value, AssertionError)
    # A clean cut ends the body early: the SDK yields fewer events and no message_stop.
    with sdk(fake).messages.stream(model=MODEL, max_tokens=9, messages=[user("x")]) as stream:
        kinds = [event.type for event in stream]
    assert "message_stop" not in kinds and "message_start" in kinds
    assert [request.outcome for request in fake.requests] == ["cut", "cut"]


def test_stream_error_event_reaches_the_sdk(fake: FakeAnthropic) -> None:
    fake.enqueue(stream_error(after_events=3))
    with (
        pytest.raises(anthropic.APIStatusError) as raised,
        sdk(fake).messages.stream(model=MODEL, max_tokens=9, messages=[user("x")]) as stream,
    ):
        stream.until_done()
    assert raised.value.type == "overloaded_error"


def test_slow_reply_waits_and_stop_does_not(fake: FakeAnthropic) -> None:
    fake.enqueue(slow(0.3, then=text("late")))
    started = time.monotonic()
    message = sdk(fake).messages.create(model=MODEL, max_tokens=9, messages=[user("x")])
    assert time.monotonic() - started >= 0.3
    assert message.content[0].text == "late"

    waiting = FakeAnthropic(slow(30)).start()
    outcome: list[BaseException] = []

    def wait_for_reply() -> None:
        try:
            post(waiting.url + "/v1/messages", {"model": MODEL, "messages": []})
        except Exception as error:  # the server goes away without answering
            outcome.append(error)

    thread = threading.Thread(target=wait_for_reply, daemon=True)
    thread.start()
    time.sleep(0.2)
    started = time.monotonic()
    waiting.stop()
    # The reply is 30 s away: a stop that waited for it would take that long (it takes milliseconds; 10 s
    # leaves room for a loaded machine).
    assert time.monotonic() - started < 10
    thread.join(timeout=2)
    assert outcome, "the pending request should fail once the server stops"


def test_wrong_key_is_refused_when_a_key_is_required() -> None:
    with FakeAnthropic(text("never"), api_key="right") as fake:
        with pytest.raises(anthropic.AuthenticationError):
            anthropic.Anthropic(api_key="wrong", base_url=fake.url, max_retries=0).messages.create(
                model=MODEL, max_tokens=9, messages=[{"role": "user", "content": "x"}]
            )
        assert fake.pending == 1 and fake.requests[0].outcome == "unauthorized"


def test_concurrent_clients_each_get_one_reply(fake: FakeAnthropic) -> None:
    count = 12
    fake.enqueue(*[text(f"reply {i}") for i in range(count)])
    answers: list[str] = []
    lock = threading.Lock()

    def call(index: int) -> None:
        with sdk(fake).messages.stream(model=MODEL, max_tokens=9, messages=[user(f"q{index}")]) as stream:
            answer = stream.get_final_text()
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert sorted(answers) == sorted(f"reply {i}" for i in range(count))
    assert len(fake.message_requests) == count and fake.pending == 0


def test_count_prompt_tokens_ignores_cache_control() -> None:
    block = {"type": "text", "text": "same"}
    assert count_prompt_tokens({"messages": [user([block])]}) == count_prompt_tokens(
        {"messages": [user([{**block, "cache_control": EPHEMERAL}])]}
    )
    assert count_prompt_tokens({"messages": [user("same")]}) == count_prompt_tokens(
        {"messages": [user([block])]}
    )


def test_enqueue_rejects_things_that_are_not_script_items(fake: FakeAnthropic) -> None:
    with pytest.raises(TypeError, match="not a script item"):
        fake.enqueue("hello")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        fault_429(header="x-retry")
