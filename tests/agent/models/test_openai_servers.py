"""The OpenAI-compatible provider against the wire formats real servers send, where they differ from
OpenAI's: Ollama's whole tool calls (no id, all at index 0, arguments already parsed), duplicate ids,
reasoning in `reasoning_content` (DeepSeek, which needs it back) or in `<think>` tags, tool calls written
as text by a server that parses none, no usage, errors in vLLM's and OpenRouter's shapes, base URLs as
people write them. Whole runs go through `start_run` on the fake server (`tests.fakes.openai_server`)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from agent.config import AgentSettings, ModelSettings
from agent.loop import RunResult
from agent.memory import is_prompt_too_long
from agent.models import AuthenticationFailed, Credentials, ModelError, RetriesExhausted, load_model
from agent.models.openai_compat import OpenAICompatModel
from agent.runner import start_run
from agent.sandbox import SandboxSettings
from agent.usage import Usage
from tests.agent.agent_harness import (
    EDITOR,
    GOOD_BODY,
    STUB_BODY,
    copy_workspace,
    done,
    mean_task,
    replace,
    view,
)
from tests.fakes.anthropic_server import text, turn, with_usage
from tests.fakes.openai_server import (
    FAKE_MODEL,
    FAKE_OPENAI_KEY,
    FakeOpenAI,
    chunk,
    raw_error,
    raw_stream,
)

TOOLS = [
    {"name": "bash", "description": "Run a command.", "input_schema": {"type": "object", "properties": {}}},
    {"name": "todo", "description": "The todo list.", "input_schema": {"type": "object", "properties": {}}},
]
USER = [{"role": "user", "content": "hello"}]
USAGE = {"prompt_tokens": 900, "completion_tokens": 40, "total_tokens": 940}
VIEW = {"command": "view", "path": "mathx/stats.py"}
EDIT = {"command": "str_replace", "path": "mathx/stats.py", "old_str": STUB_BODY, "new_str": GOOD_BODY}


def settings(url: str, **overrides: Any) -> ModelSettings:
    values: dict[str, Any] = {
        "provider": "openai",
        "model": FAKE_MODEL,
        "base_url": url,
        "max_tokens": 1024,
        "timeout": 5.0,
        "max_retries": 2,
        "retry_deadline_seconds": 10.0,
        "retry_base_delay": 0.01,
        "retry_max_delay": 0.02,
    }
    return ModelSettings(**{**values, **overrides})


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=FAKE_OPENAI_KEY) as server:
        yield server


def model_for(
    fake: FakeOpenAI, url: str | None = None, key: str | None = FAKE_OPENAI_KEY
) -> OpenAICompatModel:
    model_settings = settings(url or fake.url)
    env = {"OPENAI_API_KEY": key} if key else {}
    model = load_model(model_settings, Credentials.from_env(env, model_settings))
    assert isinstance(model, OpenAICompatModel)
    return model


def run(fake: FakeOpenAI, root: Path, runs: Path, **agent: Any) -> RunResult:
    agent_settings = AgentSettings(
        model=settings(fake.url), sandbox=SandboxSettings(timeout_seconds=15), verify_timeout=60, **agent
    )
    credentials = Credentials.from_env({"OPENAI_API_KEY": FAKE_OPENAI_KEY}, agent_settings.model)
    handle = start_run(
        mean_task(root), root=root, settings=agent_settings, credentials=credentials, runs_dir=runs
    )
    result = handle.wait(120)
    assert result is not None, "the run did not end"
    return result


def records(result: RunResult) -> list[dict[str, Any]]:
    assert result.transcript_path is not None
    return [json.loads(line) for line in result.transcript_path.read_text().splitlines()]


def whole_call(name: str, arguments: Any, *, id: str | None = None) -> dict[str, Any]:
    """A tool call as Ollama streams it: whole, at index 0, with an id or none."""
    call: dict[str, Any] = {
        "index": 0,
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }
    if id is not None:
        call["id"] = id
    return call


def ollama_turn(*calls: Mapping[str, Any], content: str = "") -> Any:
    """One reply as Ollama's OpenAI API streams it: the calls in one chunk, finish_reason "stop"."""
    return raw_stream(
        chunk({"role": "assistant", "content": content, "tool_calls": list(calls)}),
        chunk({"role": "assistant", "content": ""}, "stop"),
        chunk(None, usage=USAGE),
    )


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    return copy_workspace(tmp_path / "ws")


# -- tool calls ----------------------------------------------------------------------------------------


def test_ollamas_whole_calls_without_ids_at_index_zero_run_as_separate_calls(
    fake: FakeOpenAI, ws: Path, tmp_path: Path
) -> None:
    """Two calls in one chunk, both at index 0 without an id, arguments already parsed (Ollama's native
    style through a proxy), finish_reason "stop": they were joined into one call whose arguments were
    `{'command': ...}{...}` (a Python repr, then the next call's), and neither ran."""
    fake.enqueue(
        ollama_turn(
            whole_call(EDITOR, VIEW),
            whole_call(EDITOR, json.dumps({"command": "view", "path": "mathx/__init__.py"})),
            content="Plan: read both files, then implement mean.",
        ),
        ollama_turn(whole_call(EDITOR, EDIT)),
        done(),
    )
    result = run(fake, ws, tmp_path / "runs")

    assert result.status == "proposed", (result.status, result.error)
    assert result.proposal is not None and result.proposal.verified
    calls = [r for r in records(result) if r["type"] == "tool_call"]
    assert [(c["input"]["command"], c["input"]["path"]) for c in calls] == [
        ("view", "mathx/stats.py"),
        ("view", "mathx/__init__.py"),
        ("str_replace", "mathx/stats.py"),
    ]
    assert not any(r["is_error"] for r in records(result) if r["type"] == "tool_result")
    sent = fake.requests[1].body["messages"]
    ids = [call["id"] for call in sent[-3]["tool_calls"]]
    assert len(set(ids)) == 2 and all(ids)
    assert [m["tool_call_id"] for m in sent if m["role"] == "tool"] == ids


@pytest.mark.parametrize("index", [0, 1], ids=["same-index", "own-index"])
def test_calls_with_the_same_id_get_ids_of_their_own(fake: FakeOpenAI, index: int) -> None:
    """Some servers number every call "call_0": the results answered one id twice."""
    fake.enqueue(
        raw_stream(
            chunk({"tool_calls": [{**whole_call("bash", '{"command": "ls"}', id="call_0"), "index": 0}]}),
            chunk({"tool_calls": [{**whole_call("todo", "", id="call_0"), "index": index}]}),
            chunk({}, "tool_calls", usage=USAGE),
        )
    )
    response = model_for(fake).complete("", TOOLS, USER)
    assert [(c.name, c.input) for c in response.tool_calls] == [("bash", {"command": "ls"}), ("todo", {})]
    ids = [c.id for c in response.tool_calls]
    assert ids[0] == "call_0" and len(set(ids)) == 2
    assert not response.input_errors


def test_a_name_repeated_mid_arguments_does_not_split_the_call(fake: FakeOpenAI) -> None:
    pieces = ['{"comm', 'and": "l', 's"}']
    fake.enqueue(
        raw_stream(
            *[chunk({"tool_calls": [whole_call("bash", piece)]}) for piece in pieces],
            chunk({}, "eos", usage=USAGE),  # Hugging Face TGI's finish_reason
        )
    )
    response = model_for(fake).complete("", TOOLS, USER)
    assert [(c.name, c.input) for c in response.tool_calls] == [("bash", {"command": "ls"})]
    assert response.stop_reason == "tool_use" and not response.input_errors


def test_tool_calls_with_no_finish_reason_are_a_tool_use_turn(fake: FakeOpenAI) -> None:
    fake.enqueue(
        raw_stream(
            chunk({"tool_calls": [whole_call("bash", '{"command": "ls"}', id="")]}), chunk(None, usage=USAGE)
        )
    )
    response = model_for(fake).complete("", TOOLS, USER)
    assert response.stop_reason == "tool_use" and response.tool_calls[0].id.startswith("call_")


def test_a_tool_call_written_as_text_fails_the_run_naming_the_model(
    fake: FakeOpenAI, ws: Path, tmp_path: Path
) -> None:
    """vLLM without a tool-call parser sends Qwen's `<tool_call>` as text: the run ended there, "No
    changes were needed", with the call as its summary."""
    written = '<tool_call>\n{"name": "str_replace_based_edit_tool", "arguments": ' + json.dumps(VIEW) + "}\n"
    fake.enqueue(text(written + "</tool_call>"), done())
    result = run(fake, ws, tmp_path / "runs")
    assert result.status == "failed", (result.status, result.summary)
    assert result.error is not None and "wrote a tool call as text" in result.error
    assert repr(FAKE_MODEL) in result.error and "--tool-call-parser" in result.error
    assert fake.pending == 1  # not asked again


@pytest.mark.parametrize(
    "reply",
    [
        '```json\n{"name": "bash", "arguments": {"command": "ls"}}\n```',
        '[TOOL_CALLS][{"name": "bash", "arguments": {"command": "ls"}}]',
        '{"name": "todo", "parameters": {}}',
    ],
    ids=["fenced", "mistral", "bare"],
)
def test_other_tool_calls_written_as_text_are_recognised(fake: FakeOpenAI, reply: str) -> None:
    fake.enqueue(text(reply), text('The fix: `{"name": "bash"}` is the config now.'))
    model = model_for(fake)
    with pytest.raises(ModelError, match="wrote a tool call as text"):
        model.complete("", TOOLS, USER)
    assert model.complete("", TOOLS, USER).text.startswith("The fix")  # JSON that is no call is text


# -- reasoning -----------------------------------------------------------------------------------------


def test_think_tags_in_the_content_stay_out_of_the_summary_and_the_history(
    fake: FakeOpenAI, ws: Path, tmp_path: Path
) -> None:
    """Qwen3 and DeepSeek-R1 through Ollama put their reasoning in the content as <think>...</think>:
    it became the run's plan and summary, and went back in every request."""
    fake.enqueue(
        turn(
            text("<think>\nThe stub raises; I should replace it.\n</think>\n\nPlan: implement mean."), view()
        ),
        turn(text("I will replace the stub.\n</think>\n\n"), replace(STUB_BODY, GOOD_BODY)),
        done("<think>Verified with the doctest.</think>\n\nImplemented `mean`."),
    )
    result = run(fake, ws, tmp_path / "runs")
    assert result.status == "proposed", (result.status, result.error)
    assert result.summary.startswith("Implemented `mean`."), result.summary
    assert "think>" not in result.summary and "doctest" not in result.summary.split("\n")[0]
    history = json.dumps(fake.requests[2].body["messages"])
    assert "Plan: implement mean." in history
    assert "think>" not in history and "I should replace it" not in history


def test_deepseek_reasoning_goes_back_with_its_tool_calls_and_stays_out_of_the_summary(
    fake: FakeOpenAI, ws: Path, tmp_path: Path
) -> None:
    """DeepSeek's thinking mode refuses (400) a conversation whose tool-call turns lack their
    `reasoning_content`: it was dropped, so the second request of every run failed."""
    thought = "The stub raises NotImplementedError; replace it with the average."
    fake.enqueue(
        raw_stream(
            chunk({"role": "assistant", "content": None, "reasoning_content": thought[:20]}),
            chunk({"reasoning_content": thought[20:]}),
            chunk({"content": "Plan: implement mean."}),
            chunk({"tool_calls": [{**whole_call(EDITOR, json.dumps(EDIT), id="call_00_a1")}]}),
            chunk({}, "tool_calls", usage=USAGE),
        ),
        raw_stream(
            chunk({"reasoning": "OpenRouter's field: not needed back."}),
            chunk({"tool_calls": [{**whole_call(EDITOR, json.dumps(VIEW), id="call_01_b2")}]}),
            chunk({}, "tool_calls", usage=USAGE),
        ),
        raw_stream(
            chunk({"reasoning_content": "All done."}),
            chunk({"content": "Implemented `mean`."}),
            chunk({}, "stop", usage=USAGE),
        ),
    )
    result = run(fake, ws, tmp_path / "runs")
    assert result.status == "proposed", (result.status, result.error)
    assert result.summary.startswith("Implemented `mean`.") and "All done" not in result.summary
    first, second = [m for m in fake.requests[2].body["messages"] if m["role"] == "assistant"]
    assert first["reasoning_content"] == thought and first["content"] == "Plan: implement mean."
    assert "reasoning_content" not in second and "reasoning" not in second
    assert "OpenRouter" not in json.dumps(fake.requests[2].body)


# -- usage ---------------------------------------------------------------------------------------------


def test_a_server_that_reports_no_usage_is_estimated_so_the_token_budget_holds(
    ws: Path, tmp_path: Path
) -> None:
    """Servers that ignore `stream_options.include_usage` send no usage: the run counted 0 tokens, so
    `agent.max_total_tokens`, the bound the README gives for these endpoints, never stopped it."""
    with FakeOpenAI(api_key=FAKE_OPENAI_KEY, usage_chunk=False) as fake:
        fake.enqueue(turn(text("Plan: look first."), view()), view("mathx/__init__.py"), view(), done())
        result = run(fake, ws, tmp_path / "runs", max_total_tokens=9_000)
        assert result.status == "budget_exhausted", (result.status, result.usage)
        assert result.error is not None and "max_total_tokens" in result.error
        assert fake.pending >= 1 and result.usage.input_tokens > 1000 and result.usage.output_tokens > 0


def test_deepseeks_cache_hits_are_read_as_cached_tokens(fake: FakeOpenAI) -> None:
    usage = {"prompt_tokens": 100, "completion_tokens": 5, "prompt_cache_hit_tokens": 80}
    fake.enqueue(raw_stream(chunk({"content": "A"}), chunk({}, "stop"), chunk(None, usage=usage)))
    response = model_for(fake).complete("", [], USER)
    assert response.usage == Usage(input_tokens=20, output_tokens=5, cache_read_input_tokens=80)


# -- errors --------------------------------------------------------------------------------------------


VLLM_NO_TOOLS = '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set'


def test_a_model_without_tools_is_named_with_what_to_do(fake: FakeOpenAI) -> None:
    fake.enqueue(
        raw_error(
            400, {"error": {"message": "registry.ollama.ai/library/gemma2:latest does not support tools"}}
        ),
        raw_error(
            400,
            {
                "object": "error",
                "message": VLLM_NO_TOOLS,
                "type": "BadRequestError",
                "param": None,
                "code": 400,
            },
        ),
    )
    model = model_for(fake)
    for _ in range(2):
        with pytest.raises(ModelError) as failure:
            model.complete("", TOOLS, USER)
        message = failure.value.message
        assert "needs a model that calls tools" in message and repr(FAKE_MODEL) in message, message
        assert "'object': 'error'" not in message  # vLLM's message, not its body's repr
    assert len(fake.requests) == 2


def test_an_error_in_a_200_stream_that_is_not_worth_retrying_fails_at_once(fake: FakeOpenAI) -> None:
    """OpenRouter reports a provider's refusal in a `data:` line of a 200: it was retried max_retries
    times, and a prompt past the window was never recognised, so the run could not condense."""
    window = "This endpoint's maximum context length is 32768 tokens. However, you requested 40000."
    fake.enqueue(
        raw_stream(chunk({"content": ""}, "error", error={"code": 400, "message": window}), done=False),
        text("not reached"),
    )
    with pytest.raises(ModelError) as failure:
        model_for(fake).complete("", [], USER)
    assert not isinstance(failure.value, RetriesExhausted) and failure.value.status_code == 400
    assert is_prompt_too_long(failure.value.message, failure.value.status_code)
    assert len(fake.requests) == 1


def test_no_key_sent_is_said_as_such(fake: FakeOpenAI) -> None:
    with pytest.raises(AuthenticationFailed, match="none was sent: set OPENAI_API_KEY"):
        model_for(fake, key=None).complete("", [], USER)


# -- base URLs -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", "/", "/chat/completions", "/chat/completions/"])
def test_a_base_url_with_a_slash_or_the_whole_endpoint_works(fake: FakeOpenAI, suffix: str) -> None:
    fake.enqueue(text("Hi."))
    assert model_for(fake, fake.url + suffix).complete("", [], USER).text == "Hi."
    assert fake.requests[0].path == "/v1/chat/completions"


def test_a_base_url_without_v1_is_told_to_add_it(fake: FakeOpenAI) -> None:
    origin = fake.url.removesuffix("/v1")
    with pytest.raises(ModelError, match=f'try base_url = "{origin}/v1"'):
        model_for(fake, origin).complete("", [], USER)


def test_a_model_that_takes_max_completion_tokens_gets_it(fake: FakeOpenAI) -> None:
    """OpenAI's reasoning models (o3, o4-mini, gpt-5) refuse `max_tokens`: every request failed."""
    refusal = {
        "error": {
            "message": "Unsupported parameter: 'max_tokens' is not supported with this model. Use "
            "'max_completion_tokens' instead.",
            "type": "invalid_request_error",
            "param": "max_tokens",
            "code": "unsupported_parameter",
        }
    }
    fake.enqueue(raw_error(400, refusal), text("Hi."), text("Again."))
    model = model_for(fake)
    assert model.complete("", [], USER).text == "Hi."
    assert model.complete("", [], USER, max_tokens=2048).text == "Again."
    bodies = [r.body for r in fake.requests]
    assert [("max_tokens" in b, b.get("max_completion_tokens")) for b in bodies] == [
        (True, None),
        (False, 1024),
        (False, 2048),
    ]


def test_a_prompt_the_server_cut_to_its_window_is_warned_about(
    fake: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    """Ollama cuts a prompt past its context (4096 tokens by default) without an error: the model lost its
    instructions and tools and nobody said why it behaved so."""
    system = "Follow the repository's conventions. " * 1500  # about 16k tokens
    fake.enqueue(with_usage(text("Hi."), prompt_tokens=4096), text("Hi again."))
    model = model_for(fake)
    with caplog.at_level("WARNING", logger="agent.models.openai_compat"):
        model.complete(system, TOOLS, USER)
        model.complete(system[:4000], TOOLS, USER)  # counted as sent: no warning
    [warning] = [r.getMessage() for r in caplog.records if "cut the prompt" in r.getMessage()]
    assert "counted 4096 prompt tokens" in warning and "OLLAMA_CONTEXT_LENGTH" in warning
