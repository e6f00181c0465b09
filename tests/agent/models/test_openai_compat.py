"""The OpenAI-compatible provider against a local fake Chat Completions server speaking the wire format:
streamed text and tool calls, usage, retries, errors, and whole agent runs through `start_run`."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.config import AgentSettings, ModelSettings
from agent.models import (
    AuthenticationFailed,
    Cancelled,
    Credentials,
    ModelError,
    RetriesExhausted,
    load_model,
)
from agent.models.openai_compat import OpenAICompatModel, to_chat_messages
from agent.runner import start_run
from agent.sandbox import SandboxSettings
from agent.tools.editor import EditorTool
from agent.usage import Usage
from tests.agent.agent_harness import (
    BAD_BODY,
    GOOD_BODY,
    STUB_BODY,
    copy_workspace,
    mean_task,
)
from tests.fakes.anthropic_server import (
    cut_stream,
    fault,
    fault_429,
    fault_500,
    slow,
    stall,
    text,
    tool_use,
    turn,
    with_usage,
)
from tests.fakes.openai_server import FAKE_MODEL, FAKE_OPENAI_KEY, FakeOpenAI

EDITOR = EditorTool.name
TOOLS = [
    {"name": "bash", "description": "Run a command.", "input_schema": {"type": "object", "properties": {}}},
]


def fast(**overrides: Any) -> ModelSettings:
    values: dict[str, Any] = {
        "provider": "openai",
        "model": FAKE_MODEL,
        "max_tokens": 1024,
        "timeout": 5.0,
        "max_retries": 3,
        "retry_deadline_seconds": 10.0,
        "retry_base_delay": 0.01,
        "retry_max_delay": 0.05,
    }
    values.update(overrides)
    return ModelSettings(**values)


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=FAKE_OPENAI_KEY) as server:
        yield server


def model_for(fake: FakeOpenAI, **overrides: Any) -> OpenAICompatModel:
    settings = fast(base_url=fake.url, **overrides)
    model = load_model(settings, Credentials.from_env({"OPENAI_API_KEY": FAKE_OPENAI_KEY}, settings))
    assert isinstance(model, OpenAICompatModel)
    return model


USER = [{"role": "user", "content": "hello"}]


def test_streamed_text_and_tool_calls_become_canonical_blocks(fake: FakeOpenAI) -> None:
    fake.enqueue(
        with_usage(
            turn(
                text("Let me look at the code first."),
                tool_use(EDITOR, {"command": "view", "path": "mathx/stats.py"}, id="call_a"),
                tool_use("bash", {"command": "pytest -q", "restart": False}, id="call_b"),
            ),
            prompt_tokens=120,
            completion_tokens=30,
            cached_tokens=100,
        )
    )
    model = model_for(fake)
    seen: list[str] = []
    response = model.complete("You are terse.", TOOLS, USER, on_text=seen.append)
    model.close()

    assert response.text == "Let me look at the code first."
    assert "".join(seen) == response.text and len(seen) > 1  # relayed as it streamed
    assert [(c.id, c.name, c.input) for c in response.tool_calls] == [
        ("call_a", EDITOR, {"command": "view", "path": "mathx/stats.py"}),
        ("call_b", "bash", {"command": "pytest -q", "restart": False}),
    ]
    assert response.stop_reason == "tool_use"
    assert response.usage == Usage(input_tokens=20, output_tokens=30, cache_read_input_tokens=100)
    assert response.model == FAKE_MODEL and response.attempts == 1
    assert response.request_id == "req_openai_fake_000000"

    body = fake.requests[0].body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["model"] == FAKE_MODEL and body["max_tokens"] == 1024
    assert body["messages"][0] == {"role": "system", "content": "You are terse."}
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "bash",
                "description": "Run a command.",
                "parameters": {"type": "object", "properties": {}},
            },
        }
    ]
    assert fake.requests[0].headers["authorization"] == f"Bearer {FAKE_OPENAI_KEY}"


def test_the_conversation_converts_to_chat_messages() -> None:
    messages = [
        {"role": "user", "content": "Fix it."},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "x"},
                {"type": "text", "text": "Looking."},
                {"type": "tool_use", "id": "call_1", "name": "bash", "input": {"command": "ls"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "no such file", "is_error": True},
                {"type": "text", "text": "Also check the tests."},
            ],
        },
    ]
    assert to_chat_messages([{"type": "text", "text": "System."}], messages) == [
        {"role": "system", "content": "System."},
        {"role": "user", "content": "Fix it."},
        {
            "role": "assistant",
            "content": "Looking.",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "bash", "arguments": '{"command": "ls"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "Error: no such file"},
        {"role": "user", "content": "Also check the tests."},
    ]


def test_a_429_is_retried_after_the_servers_retry_after(fake: FakeOpenAI) -> None:
    fake.enqueue(fault_429(0.3, header="retry-after"), text("Fine now."))
    model = model_for(fake, retry_base_delay=0.0, retry_max_delay=0.0)
    started = time.monotonic()
    response = model.complete("", [], USER)
    elapsed = time.monotonic() - started
    model.close()
    assert response.text == "Fine now." and response.attempts == 2
    assert elapsed >= 0.3  # waited as asked, though the computed backoff is 0
    assert [r.outcome for r in fake.requests] == ["http-429", "reply"]


def test_server_errors_and_dropped_streams_are_retried_until_the_limit(fake: FakeOpenAI) -> None:
    fake.enqueue(fault_500(), cut_stream(3), fault(409, "conflict", "busy"), text("Third time lucky."))
    model = model_for(fake)
    assert model.complete("", [], USER).attempts == 4
    fake.enqueue(fault_500(), fault_500(), fault_500(), fault_500())
    with pytest.raises(RetriesExhausted) as failure:
        model.complete("", [], USER)
    model.close()
    assert failure.value.attempts == 4 and failure.value.status_code == 500
    assert "max_retries" in failure.value.message


def test_a_rejected_key_and_a_missing_model_fail_at_once_with_advice(fake: FakeOpenAI) -> None:
    settings = fast(base_url=fake.url)
    model = load_model(settings, Credentials.from_env({"OPENAI_API_KEY": "wrong"}, settings))
    with pytest.raises(AuthenticationFailed, match="OPENAI_API_KEY"):
        model.complete("", [], USER)
    fake.enqueue(fault(404, "invalid_request_error", "model 'nope' not found"))
    model = model_for(fake, model="nope")
    with pytest.raises(ModelError, match=r"agent\.model\.model") as failure:
        model.complete("", [], USER)
    assert not isinstance(failure.value, RetriesExhausted)
    assert len(fake.requests) == 2  # neither was retried


def test_cancel_stops_a_call_waiting_for_the_server(fake: FakeOpenAI) -> None:
    fake.enqueue(slow(30, text("too late")))
    model = model_for(fake)
    cancel = threading.Event()
    threading.Timer(0.2, cancel.set).start()
    started = time.monotonic()
    with pytest.raises(Cancelled):
        model.complete("", [], USER, cancel=cancel)
    assert time.monotonic() - started < 10  # the reply is 30 s away: the cancel ended the call
    model.close()


def test_anthropic_built_in_tool_entries_are_refused_with_a_message(fake: FakeOpenAI) -> None:
    model = model_for(fake)
    with pytest.raises(ModelError, match="definition\\(provider='openai'\\)"):
        model.complete("", [{"type": "text_editor_20250728", "name": EDITOR}], USER)
    assert fake.requests == []


# -- whole runs through start_run --------------------------------------------------------------------


def _run(fake: FakeOpenAI, root: Path, runs: Path, **settings: Any) -> Any:
    agent_settings = AgentSettings(
        model=fast(base_url=fake.url),
        sandbox=SandboxSettings(timeout_seconds=15),
        verify_timeout=60,
        **settings,
    )
    credentials = Credentials.from_env({"OPENAI_API_KEY": FAKE_OPENAI_KEY}, agent_settings.model)
    handle = start_run(
        mean_task(root), root=root, settings=agent_settings, credentials=credentials, runs_dir=runs
    )
    result = handle.wait(120)
    assert result is not None, "the run did not end"
    return result


def test_an_agent_run_edits_with_the_editor_and_runs_bash_through_the_openai_provider(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    root = copy_workspace(tmp_path / "ws")
    before = (root / "mathx" / "stats.py").read_text()
    fake.enqueue(
        turn(
            text("Plan: view, replace the stub, run the doctest."),
            tool_use(EDITOR, {"command": "view", "path": "mathx/stats.py"}),
        ),
        tool_use(
            EDITOR,
            {"command": "str_replace", "path": "mathx/stats.py", "old_str": STUB_BODY, "new_str": GOOD_BODY},
        ),
        tool_use("bash", {"command": "python -c 'import mathx.stats as s; print(s.mean([1, 2, 3]))'"}),
        text("Implemented `mean`."),
    )
    result = _run(fake, root, tmp_path / "cache" / "runs")

    assert result.status == "proposed", result.summary
    assert result.proposal is not None and "sum(values) / len(values)" in result.proposal.diff
    assert (root / "mathx" / "stats.py").read_text() == before  # proposed, not written
    assert result.cost == 0.0 and result.usage.total_tokens > 0  # no price list for this provider

    bodies = [r.body for r in fake.requests]
    tools = {t["function"]["name"]: t["function"] for t in bodies[0]["tools"]}
    # The Anthropic-defined editor and bash tools go out as plain functions with their input schemas.
    assert tools[EDITOR]["parameters"]["required"] == ["command", "path"]
    assert "command" in tools["bash"]["parameters"]["properties"]
    assert all(t["type"] == "function" for t in bodies[0]["tools"])
    # Tool results come back as role "tool" messages answering each call id.
    edit_result = [m for m in bodies[2]["messages"] if m["role"] == "tool"][-1]
    assert edit_result["tool_call_id"] == bodies[2]["messages"][-2]["tool_calls"][0]["id"]
    bash_result = [m for m in bodies[3]["messages"] if m["role"] == "tool"][-1]
    assert "2.0" in bash_result["content"]
    assert fake.pending == 0


def test_a_failing_verification_goes_back_to_the_openai_model(fake: FakeOpenAI, tmp_path: Path) -> None:
    root = copy_workspace(tmp_path / "ws")
    fake.enqueue(
        tool_use(
            EDITOR,
            {"command": "str_replace", "path": "mathx/stats.py", "old_str": STUB_BODY, "new_str": BAD_BODY},
        ),
        text("Done."),
        tool_use(
            EDITOR,
            {"command": "str_replace", "path": "mathx/stats.py", "old_str": BAD_BODY, "new_str": GOOD_BODY},
        ),
        text("Fixed the empty case."),
    )
    result = _run(fake, root, tmp_path / "cache" / "runs")
    assert result.status == "proposed" and result.reflections == 1, result.summary
    assert result.proposal is not None and result.proposal.verified
    feedback = fake.requests[2].body["messages"][-1]
    assert feedback["role"] == "user" and "does not pass" in feedback["content"]
    assert json.dumps(fake.requests[2].body).count("ValueError") >= 1


# -- streams cut before their usage chunk ------------------------------------------------------------

LONG_REPLY = "Let me look at the stub and the tests around it before I change anything in the module. " * 3


def test_a_stream_cut_before_its_usage_chunk_reports_its_output_estimated(fake: FakeOpenAI) -> None:
    """The server streams usage only in its last chunk: a stream dropped mid-reply reported none, though
    it was billed. The attempt's output is estimated from what arrived; one cut after its finish_reason
    (the reply whole, the usage chunk lost) is too."""
    fake.enqueue(cut_stream(3, reply=text(LONG_REPLY)), text("Fine now."))
    model = model_for(fake)
    response = model.complete("", [], USER)
    assert response.text == "Fine now." and response.attempts == 2
    [sent] = response.unmetered_streams
    assert 5 < sent < len(LONG_REPLY) // 3  # the part that arrived (2 of 3 pieces), not the whole reply
    assert response.broken_usage == Usage() and response.usage.total_input_tokens > 0

    # Role, 3 text pieces and finish_reason, then the body ends: no usage chunk, no [DONE].
    fake.enqueue(cut_stream(5, reply=text("Short."), clean=True))
    whole = model.complete("", [], USER)
    model.close()
    assert whole.text == "Short." and whole.usage == Usage() and whole.unmetered_streams == (2,)


def test_dropped_openai_streams_count_against_the_token_budget(fake: FakeOpenAI, tmp_path: Path) -> None:
    """Each dropped stream was billed for its prompt: the run counts it, estimated as the context logic
    estimates a prompt, marks it so in the transcript, and a storm of them stops the run at its token
    budget (before, they counted 0 and the run went on past it)."""
    root = copy_workspace(tmp_path / "ws")
    fake.enqueue(text("Nothing to change."))
    calm = _run(fake, root, tmp_path / "cache" / "runs")
    prompt = calm.usage.total_input_tokens
    assert calm.status == "no_changes" and prompt > 0

    fake.enqueue(cut_stream(3, reply=text(LONG_REPLY)), cut_stream(3, reply=text(LONG_REPLY)), text("Done."))
    stormy = _run(fake, root, tmp_path / "cache" / "runs", max_input_tokens=2 * prompt)
    assert stormy.status == "budget_exhausted", (stormy.status, stormy.summary)
    assert stormy.error is not None and "max_input_tokens" in stormy.error
    assert stormy.usage.total_input_tokens > 2.5 * prompt  # one reported prompt and two estimated
    records = [json.loads(line) for line in stormy.transcript_path.read_text().splitlines()]
    [broken] = [r for r in records if r.get("type") == "decision" and r.get("kind") == "broken_streams"]
    assert broken["unmetered_streams"] == 2
    estimated = Usage.from_api(broken["estimated"])
    assert 0.7 * prompt < estimated.input_tokens / 2 < 1.3 * prompt and estimated.output_tokens > 0
    assert Usage.from_api(broken["usage"]) == estimated


def test_a_stream_cut_at_the_time_bound_counts_its_prompt_estimated(fake: FakeOpenAI, tmp_path: Path) -> None:
    """The generation hangs after its first chunks; the run's 3 s bound cancels it: billed for its prompt
    and what it sent, counted as estimated, and the run stops as its time bound stops it."""
    root = copy_workspace(tmp_path / "ws")
    fake.enqueue(stall(20, text(LONG_REPLY), after_events=3))
    began = time.monotonic()
    result = _run(fake, root, tmp_path / "cache" / "runs", max_minutes=0.05)
    assert result.status == "budget_exhausted" and time.monotonic() - began < 15, result.summary
    assert [r.outcome for r in fake.requests] == ["stalled"]
    records = [json.loads(line) for line in result.transcript_path.read_text().splitlines()]
    [broken] = [r for r in records if r.get("type") == "decision" and r.get("kind") == "broken_streams"]
    assert broken["cancelled"] is True and broken["unmetered_streams"] == 1
    assert result.usage == Usage.from_api(broken["estimated"]) and result.usage.input_tokens > 1000
    assert 0 < result.usage.output_tokens < len(LONG_REPLY) // 3
