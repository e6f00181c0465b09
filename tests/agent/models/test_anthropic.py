"""AnthropicModel against the fake server through the real SDK: streaming, retries, cancel, caching, cost."""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.config import DEFAULT_MODEL, ModelSettings
from agent.models import AuthenticationFailed, Cancelled, ModelError, RetriesExhausted
from agent.models.anthropic import AnthropicModel, with_cache_breakpoints
from agent.usage import Budget, BudgetExceeded, Usage, price_for
from indexing.http_retry import parse_retry_after
from tests.fakes.anthropic_server import (
    FAKE_API_KEY,
    FakeAnthropic,
    cache_friendliness,
    cut_stream,
    fault,
    fault_401,
    fault_429,
    fault_500,
    fault_529,
    slow,
    stream_error,
    text,
    thinking,
    tool_use,
    turn,
    with_usage,
)

ROOT = Path(__file__).resolve().parents[2]
EPHEMERAL = {"type": "ephemeral"}
FAST = ModelSettings(
    max_tokens=1024,
    timeout=5.0,
    max_retries=3,
    retry_deadline_seconds=10.0,
    retry_base_delay=0.01,
    retry_max_delay=0.05,
)
SYSTEM = [{"type": "text", "text": "You are a careful coding agent."}]
TOOLS = [
    {
        "name": "bash",
        "description": "Run a shell command in the sandbox.",
        "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}},
    }
]


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server


def make_model(fake: FakeAnthropic, settings: ModelSettings = FAST) -> AnthropicModel:
    return AnthropicModel(settings, api_key=FAKE_API_KEY, base_url=fake.url)


def ask(model: AnthropicModel, question: str = "List the files.", **kwargs: Any) -> Any:
    return model.complete(SYSTEM, TOOLS, [{"role": "user", "content": question}], **kwargs)


# -- streaming and content


def test_streams_text_and_tool_use_with_partial_json(fake: FakeAnthropic) -> None:
    arguments = {"command": "grep -rn 'def main' src/ | head -20", "timeout": 30, "env": None}
    fake.enqueue(
        turn(
            text("I will search for the entry point, then read it."),
            tool_use("bash", arguments, id="toolu_a"),
            tool_use("bash", {"command": "ls"}, id="toolu_b"),
        )
    )
    deltas: list[str] = []
    response = ask(make_model(fake), on_text=deltas.append)

    assert response.content == (
        {"type": "text", "text": "I will search for the entry point, then read it."},
        {"type": "tool_use", "id": "toolu_a", "name": "bash", "input": arguments},
        {"type": "tool_use", "id": "toolu_b", "name": "bash", "input": {"command": "ls"}},
    )
    assert len(deltas) > 1 and "".join(deltas) == response.text
    assert response.stop_reason == "tool_use"
    assert [block["id"] for block in response.tool_uses] == ["toolu_a", "toolu_b"]
    assert response.attempts == 1 and response.request_id == "req_fake_00000000"
    assert response.model == DEFAULT_MODEL
    [request] = fake.message_requests
    assert request.stream and request.body["model"] == DEFAULT_MODEL
    assert "temperature" not in request.body  # Sonnet 5 and later reject non-default temperatures


def test_thinking_blocks_are_kept_for_the_history_but_not_streamed_as_text(fake: FakeAnthropic) -> None:
    fake.enqueue(turn(thinking("The user wants files.", signature="sig-1"), text("Here.")))
    deltas: list[str] = []
    response = ask(make_model(fake), on_text=deltas.append)
    assert response.content[0] == {
        "type": "thinking",
        "thinking": "The user wants files.",
        "signature": "sig-1",
    }
    assert "".join(deltas) == "Here." == response.text
    assert response.as_message()["content"][0]["signature"] == "sig-1"


def test_usage_includes_cache_fields_and_cost(fake: FakeAnthropic) -> None:
    fake.enqueue(
        with_usage(
            text("ok"),
            input_tokens=1000,
            output_tokens=500,
            cache_creation_input_tokens=2000,
            cache_read_input_tokens=10000,
        )
    )
    response = ask(make_model(fake))
    assert response.usage == Usage(1000, 500, 2000, 10000)
    # claude-sonnet-5-5: $2 in, $10 out, $2.50 cache write, $0.10 cache read per million tokens.
    assert response.usage.cost("claude-sonnet-5-5") == pytest.approx(
        (1000 * 2.0 + 500 * 10.0 + 2000 * 2.5 + 10000 * 0.10) / 1e6
    )
    assert response.usage.total_input_tokens == 13000


# -- retries


def test_429_honours_retry_after_ms(fake: FakeAnthropic) -> None:
    fake.enqueue(fault_429(retry_after=0.3), text("ok"))
    started = time.monotonic()
    response = ask(make_model(fake))
    assert time.monotonic() - started >= 0.3
    assert response.text == "ok" and response.attempts == 2
    assert [request.outcome for request in fake.requests] == ["http-429", "reply"]


def test_429_honours_retry_after_seconds(fake: FakeAnthropic) -> None:
    fake.enqueue(fault_429(retry_after=1, header="retry-after"), text("ok"))
    started = time.monotonic()
    response = ask(make_model(fake))
    assert time.monotonic() - started >= 1.0
    assert response.attempts == 2


@pytest.mark.parametrize(
    "failure",
    [
        fault_529(),
        fault_500(),
        fault(502, "api_error", "Bad gateway"),
        cut_stream(after_events=5),
        cut_stream(after_events=5, clean=True),
        stream_error(after_events=3),
    ],
    ids=["529", "500", "502", "cut-stream", "stream-ends-early", "overloaded-mid-stream"],
)
def test_retryable_failure_then_success(fake: FakeAnthropic, failure: Any) -> None:
    fake.enqueue(failure, text("recovered"))
    deltas: list[str] = []
    response = ask(make_model(fake), on_text=deltas.append)
    assert response.text == "recovered" and response.attempts == 2
    assert len(fake.message_requests) == 2
    assert "".join(deltas).endswith("recovered")


def test_retries_exhausted_says_how_many_attempts_and_what_to_do(fake: FakeAnthropic) -> None:
    fake.enqueue(fault_529(), fault_529(), fault_529(), fault_529(), text("too late"))
    with pytest.raises(RetriesExhausted) as raised:
        ask(make_model(fake, FAST.model_copy(update={"max_retries": 3})))
    error = raised.value
    assert error.attempts == 4 and error.status_code == 529
    assert "4 attempts" in error.message and "529" in error.message and "overloaded" in error.message
    assert "max_retries" in error.message
    assert fake.pending == 1


def test_overloaded_errors_mid_stream_are_reported_as_an_overload(fake: FakeAnthropic) -> None:
    """An error event inside a 200 stream is that error's status: overload advice, not "HTTP 200" and a
    network check."""
    fake.enqueue(stream_error(after_events=2), stream_error(after_events=2), text("too late"))
    with pytest.raises(RetriesExhausted) as raised:
        ask(make_model(fake, FAST.model_copy(update={"max_retries": 1})))
    error = raised.value
    assert error.status_code == 529 and "HTTP 200" not in error.message
    assert "overloaded_error in the response stream" in error.message
    assert "The API is overloaded" in error.message and "network" not in error.message


def test_retry_after_beyond_the_deadline_gives_up_at_once(fake: FakeAnthropic) -> None:
    fake.enqueue(fault_429(retry_after=60), text("too late"))
    started = time.monotonic()
    with pytest.raises(RetriesExhausted) as raised:
        ask(make_model(fake, FAST.model_copy(update={"retry_deadline_seconds": 20.0})))
    # At once: one request, and not the 20 s a wait until the deadline would take (nor the 60 s asked).
    assert time.monotonic() - started < 10
    assert len(fake.message_requests) == 1 and fake.pending == 1
    assert "deadline" in raised.value.message and "rate-limited" in raised.value.message


def test_connection_refused_is_retried_then_exhausted() -> None:
    with FakeAnthropic() as gone:
        url = gone.url
    model = AnthropicModel(FAST.model_copy(update={"max_retries": 2}), api_key=FAKE_API_KEY, base_url=url)
    with pytest.raises(RetriesExhausted) as raised:
        ask(model)
    assert raised.value.attempts == 3
    assert "connection error" in raised.value.message and url in raised.value.message


@pytest.mark.parametrize("url", ["notaurl", "localhost:9", "ftp://127.0.0.1:9"])
def test_a_base_url_no_retry_can_reach_fails_at_once_saying_what_it_needs(url: str) -> None:
    """ANTHROPIC_BASE_URL without http:// was retried as a dropped connection: 7 attempts over 50 s, then
    "connection error: ... UnsupportedProtocol"."""
    model = AnthropicModel(FAST.model_copy(update={"max_retries": 3}), api_key=FAKE_API_KEY, base_url=url)
    started = time.monotonic()
    with pytest.raises(ModelError) as raised:
        ask(model)
    # Not retried (no RetriesExhausted); the bound is only against a hang (a send takes milliseconds).
    assert time.monotonic() - started < 30 and not isinstance(raised.value, RetriesExhausted)
    assert f"ANTHROPIC_BASE_URL {url!r} is not a URL agentls can send requests to" in raised.value.message
    assert "it begins with http:// or https://" in raised.value.message


def test_401_raises_authentication_failed_without_retry(fake: FakeAnthropic) -> None:
    fake.enqueue(fault_401(), text("never"))
    with pytest.raises(AuthenticationFailed) as raised:
        ask(make_model(fake))
    assert "ANTHROPIC_API_KEY is invalid" in raised.value.message
    assert "ANTHROPIC_BASE_URL" in raised.value.message
    assert FAKE_API_KEY not in raised.value.message
    assert len(fake.message_requests) == 1


@pytest.mark.parametrize("status", [400, 403, 404])
def test_client_errors_are_not_retried(fake: FakeAnthropic, status: int) -> None:
    fake.enqueue(fault(status, "invalid_request_error", "messages: bad"), text("never"))
    with pytest.raises(ModelError) as raised:
        ask(make_model(fake))
    assert not isinstance(raised.value, RetriesExhausted)
    assert raised.value.status_code == status and f"HTTP {status}" in raised.value.message
    assert len(fake.message_requests) == 1


def test_an_exhausted_script_fails_fast_with_its_message(fake: FakeAnthropic) -> None:
    with pytest.raises(ModelError, match="script ran out"):
        ask(make_model(fake))
    assert len(fake.message_requests) == 1  # x-should-retry: false is honoured


def test_missing_key_is_reported_before_any_request(
    fake: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The SDK would read the environment on its own; the model must not let it.
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-from-the-environment")
    fake.enqueue(text("never"))
    model = AnthropicModel(FAST, api_key=None, base_url=fake.url)
    with pytest.raises(AuthenticationFailed) as raised:
        ask(model)
    assert "ANTHROPIC_API_KEY is missing" in raised.value.message
    assert "ANTHROPIC_BASE_URL" in raised.value.message
    assert fake.requests == []


def test_a_bearer_token_is_enough_for_a_compatible_endpoint(fake: FakeAnthropic) -> None:
    fake.enqueue(text("ok"))
    model = AnthropicModel(FAST, api_key=None, auth_token="proxy-token", base_url=fake.url)
    assert ask(model).text == "ok"
    assert fake.requests[0].headers["authorization"] == "Bearer proxy-token"


def test_base_url_comes_only_from_the_parameter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9")
    model = AnthropicModel(FAST, api_key="k")
    assert model.base_url == "https://api.anthropic.com"


def test_parse_retry_after_variants() -> None:
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "3"}) == 0.25
    assert parse_retry_after({"Retry-After": "2"}) == 2.0
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None


# -- cancellation


def test_cancel_during_a_slow_reply_stops_before_the_reply(fake: FakeAnthropic) -> None:
    fake.enqueue(slow(10, then=text("too late")))
    cancel = threading.Event()
    model = make_model(fake)
    timer = threading.Timer(0.3, cancel.set)
    timer.start()
    started = time.monotonic()
    with pytest.raises(Cancelled):
        ask(model, cancel=cancel)
    elapsed = time.monotonic() - started
    assert 0.3 <= elapsed < 5  # the reply is 10 s away: the cancel, not the reply, ended the call


def test_cancel_during_backoff(fake: FakeAnthropic) -> None:
    fake.enqueue(fault_429(retry_after=30), text("too late"))
    cancel = threading.Event()
    cancelled_at: list[float] = []

    def cancel_once_waiting() -> None:
        # Cancel once the 429 has been answered (on a loaded machine that can take longer than 0.3 s).
        deadline = time.monotonic() + 20
        while not fake.message_requests and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)
        cancelled_at.append(time.monotonic())
        cancel.set()

    threading.Thread(target=cancel_once_waiting, daemon=True).start()
    with pytest.raises(Cancelled):
        ask(make_model(fake, FAST.model_copy(update={"retry_deadline_seconds": 60.0})), cancel=cancel)
    # Not the 30 s the server asked for (a second here; 10 s leaves room for a loaded machine).
    assert cancelled_at and time.monotonic() - cancelled_at[0] < 10
    assert len(fake.message_requests) == 1


def test_an_error_in_on_text_propagates_and_is_not_retried(fake: FakeAnthropic) -> None:
    fake.enqueue(text("a long enough answer to stream in parts"), text("never"))

    def broken(_: str) -> None:
        raise RuntimeError("display failed")

    with pytest.raises(RuntimeError, match="display failed"):
        ask(make_model(fake), on_text=broken)
    assert len(fake.message_requests) == 1


# -- budgets and prices


def test_budget_limits() -> None:
    used = Usage(input_tokens=1000, output_tokens=2000, cache_read_input_tokens=50_000)
    Budget().check(used, DEFAULT_MODEL)
    Budget(max_input_tokens=51_000, max_output_tokens=2000, max_total_tokens=53_000, max_cost_usd=1).check(
        used, DEFAULT_MODEL
    )
    with pytest.raises(BudgetExceeded, match="max_output_tokens") as raised:
        Budget(max_output_tokens=1999).check(used, DEFAULT_MODEL)
    assert raised.value.used == 2000 and raised.value.allowed == 1999
    with pytest.raises(BudgetExceeded, match="max_input_tokens"):
        Budget(max_input_tokens=50_999).check(used, DEFAULT_MODEL)
    with pytest.raises(BudgetExceeded, match="max_total_tokens"):
        Budget(max_total_tokens=52_999).check(used, DEFAULT_MODEL)
    with pytest.raises(BudgetExceeded, match=r"Cost budget exceeded: the run cost \$0\.0270"):
        Budget(max_cost_usd=0.02).check(used, DEFAULT_MODEL)
    with pytest.raises(BudgetExceeded, match="estimated"):
        Budget(max_cost_usd=0.02).check(used, "some-local-model")


def test_usage_adds_up() -> None:
    total = Usage.total([Usage(1, 2, 3, 4), Usage(10, 20, 30, 40)])
    assert total == Usage(11, 22, 33, 44) == Usage(1, 2, 3, 4) + Usage(10, 20, 30, 40)
    assert total.total_tokens == 11 + 22 + 33 + 44
    assert Usage().cache_read_fraction == 0.0


def test_price_table_matches_families_by_prefix() -> None:
    assert price_for("claude-sonnet-5-5").cache_read == pytest.approx(0.10)
    assert price_for("claude-sonnet-5").cache_read == pytest.approx(0.20)
    assert price_for("claude-haiku-4-5-20251001").input == 1.0
    assert price_for("claude-opus-4-20250514").input == 15.0
    assert price_for("claude-opus-4-5").input == 5.0
    assert price_for("claude-opus-4-5").cache_write == pytest.approx(6.25)
    assert price_for("claude-opus-4-5@20251101").input == 5.0
    assert price_for("us.anthropic.claude-sonnet-5-5-v1:0").output == 10.0
    assert price_for("claude-sonnet-4-6[1m]").input == 3.0
    unknown = price_for("claude-opus-4-10")
    assert unknown.known is False and unknown.input >= price_for("claude-opus-5").input
    assert price_for(DEFAULT_MODEL).known


def test_default_model_is_current_in_the_installed_sdk() -> None:
    from anthropic._data import DEPRECATED_MODELS

    assert DEFAULT_MODEL not in DEPRECATED_MODELS


# -- prompt caching


def test_breakpoints_go_on_tools_system_and_the_last_two_user_turns() -> None:
    system: list[dict[str, Any]] = [
        {"type": "text", "text": "prompt", "cache_control": EPHEMERAL},
        {"type": "text", "text": "retrieved context"},
    ]
    tools: list[dict[str, Any]] = [{"name": "a", "cache_control": EPHEMERAL}, {"name": "b"}]
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": [{"type": "text", "text": "task", "cache_control": EPHEMERAL}]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "1", "name": "a", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "1", "content": "r1"}]},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "t", "signature": "s"}]},
        {"role": "user", "content": "plain string turn"},
    ]
    before = copy.deepcopy((system, tools, messages))
    new_system, new_tools, new_messages = with_cache_breakpoints(system, tools, messages)

    assert (system, tools, messages) == before  # inputs untouched
    assert [("cache_control" in tool) for tool in new_tools] == [False, True]
    assert [("cache_control" in block) for block in new_system] == [False, True]
    marked = [
        (index, block_index)
        for index, message in enumerate(new_messages)
        for block_index, block in enumerate(message["content"])
        if "cache_control" in block
    ]
    assert marked == [(2, 0), (4, 0)]
    assert new_messages[4]["content"] == [
        {"type": "text", "text": "plain string turn", "cache_control": EPHEMERAL}
    ]
    total = sum("cache_control" in block for part in (new_system, new_tools) for block in part) + len(marked)
    assert total == 4


def test_breakpoints_skip_blocks_the_api_will_not_cache() -> None:
    messages = [
        {
            "role": "user",
            "content": [{"type": "text", "text": "question"}, {"type": "text", "text": ""}],
        }
    ]
    system, tools, marked = with_cache_breakpoints("system prompt", [], messages)
    assert system == [{"type": "text", "text": "system prompt", "cache_control": EPHEMERAL}]
    assert tools == []
    assert marked[0]["content"][0]["cache_control"] == EPHEMERAL
    assert "cache_control" not in marked[0]["content"][1]


def run_tool_conversation(model: AnthropicModel, fake: FakeAnthropic, steps: int = 10) -> list[float]:
    """A scripted agent run: `steps - 1` tool calls with file-sized results, then a final answer."""
    sources = sorted((ROOT / "agent").glob("*.py")) + sorted((ROOT / "indexing").glob("*.py"))
    corpus = "\n".join(path.read_text() for path in sources)
    system: list[dict[str, Any]] = [
        {"type": "text", "text": "You are agentls, a careful coding agent. " * 60},
        {"type": "text", "text": "Retrieved context:\n" + corpus[:24_000]},
    ]
    tools: list[dict[str, Any]] = [
        {
            "name": name,
            "description": f"The {name} tool. " * 30,
            "input_schema": {
                "type": "object",
                "properties": {"path": {"type": "string"}, "command": {"type": "string"}},
            },
        }
        for name in (
            "str_replace_based_edit_tool",
            "bash",
            "search_code",
            "find_symbol",
            "run_tests",
            "ask_user",
        )
    ]
    for step in range(steps - 1):
        fake.enqueue(
            turn(
                text(f"Step {step}: reading the next file."),
                tool_use("str_replace_based_edit_tool", {"command": "view", "path": f"file_{step}.py"}),
            )
        )
    fake.enqueue(text("All done: the change is in place and the tests pass."))

    messages: list[dict[str, Any]] = [{"role": "user", "content": "Implement the missing function."}]
    for step in range(steps):
        response = model.complete(system, tools, messages)
        messages.append(response.as_message())
        if not response.tool_uses:
            break
        result = corpus[step * 1500 : step * 1500 + 1500]
        messages.append(
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": call["id"], "content": result}
                    for call in response.tool_uses
                ],
            }
        )
    assert fake.pending == 0
    return cache_friendliness(fake.requests)


def test_cache_friendliness_of_a_ten_step_tool_conversation(fake: FakeAnthropic) -> None:
    ratios = run_tool_conversation(make_model(fake), fake)
    assert len(ratios) == 10
    assert ratios[0] == 0.0
    assert min(ratios[1:]) >= 0.9, ratios
    # Every request stays within the API's limit of four breakpoints.
    for request in fake.message_requests:
        body = request.body
        count = sum("cache_control" in block for block in [*body["tools"], *body["system"]])
        count += sum("cache_control" in block for message in body["messages"] for block in message["content"])
        assert count <= 4


def test_without_breakpoints_nothing_is_cached(fake: FakeAnthropic) -> None:
    ratios = run_tool_conversation(make_model(fake, FAST.model_copy(update={"prompt_caching": False})), fake)
    assert ratios == [0.0] * 10


def test_reasoning_kept_from_an_openai_compatible_model_is_not_sent_to_claude(fake: FakeAnthropic) -> None:
    # A run begun on an OpenAI-compatible model keeps DeepSeek's `reasoning_content` as a `reasoning` block of
    # its tool-call turns; resumed (or a role run) on Claude, the Messages API refuses that block type.
    fake.enqueue(turn(text("Done.")))
    history = [
        {"role": "user", "content": "List the files."},
        {
            "role": "assistant",
            "content": [
                {"type": "reasoning", "text": "I should list them.", "field": "reasoning_content"},
                {"type": "tool_use", "id": "call_1", "name": "bash", "input": {"command": "ls"}},
            ],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "a.py"}]},
    ]
    response = make_model(fake).complete(SYSTEM, TOOLS, history)
    assert response.text == "Done."
    sent = fake.message_requests[0].body["messages"][1]["content"]
    assert [block["type"] for block in sent] == ["tool_use"]
