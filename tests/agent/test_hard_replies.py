"""Replies a daily user's model really sends, on both providers, end to end through the real clients and
the fake servers' wire formats: empty and thinking-only replies, parallel tool calls a server streams all
at index 0, tool arguments that are not a JSON object, a server refusing a request past its window, a
rate limit asking to wait longer than the retry deadline, the cost of streams that broke off, tool calls
cut off at max_tokens step after step, and a reply cut off because it filled the context window.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import replace as with_fields
from pathlib import Path
from typing import Any

import pytest

from agent.config import AgentSettings, ModelSettings
from agent.loop import RunResult
from agent.memory import CONDENSE_PROMPT, is_prompt_too_long
from agent.models import Credentials
from agent.runner import start_run
from agent.sandbox import SandboxSettings
from agent.usage import Usage
from tests.agent.agent_harness import (
    EDITOR,
    GOOD_BODY,
    STUB_BODY,
    Harness,
    copy_workspace,
    done,
    fast_settings,
    mean_task,
    replace,
    view,
)
from tests.fakes.anthropic_server import (
    FakeAnthropic,
    Reply,
    cut_at_max_tokens,
    cut_stream,
    fault_429,
    fault_529,
    stream_error,
    text,
    thinking,
    tool_use,
    turn,
)
from tests.fakes.openai_server import FAKE_MODEL, FAKE_OPENAI_KEY, FakeOpenAI

EMPTY = Reply(content=())
BIG = "big_log.txt"


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = copy_workspace(tmp_path / "ws")
    (root / BIG).write_text("2026-12-04 06:00:00 INFO worker processed batch 0042 in 12.5 ms\n" * 700)
    return root


@pytest.fixture
def harness(fake_anthropic: FakeAnthropic, ws: Path, tmp_path: Path) -> Harness:
    return Harness(fake_anthropic, ws, tmp_path / "runs")


@pytest.fixture
def openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=FAKE_OPENAI_KEY) as server:
        yield server


def openai_run(fake: FakeOpenAI, root: Path, runs: Path, **model: Any) -> RunResult:
    """A whole run through `start_run` with the OpenAI-compatible provider, as `agentls run` makes it."""
    settings = AgentSettings(
        model=ModelSettings(
            **{
                **fast_settings().model.model_dump(),
                "provider": "openai",
                "model": FAKE_MODEL,
                "base_url": fake.url,
                **model,
            }
        ),
        sandbox=SandboxSettings(timeout_seconds=15),
        verify_timeout=60,
    )
    credentials = Credentials.from_env({"OPENAI_API_KEY": FAKE_OPENAI_KEY}, settings.model)
    result = start_run(mean_task(root), root=root, settings=settings, credentials=credentials, runs_dir=runs)
    ended = result.wait(120)
    assert ended is not None, "the run did not end"
    return ended


def records(result: RunResult) -> list[dict[str, Any]]:
    assert result.transcript_path is not None
    return [json.loads(line) for line in result.transcript_path.read_text().splitlines()]


def last_user_text(messages: list[Mapping[str, Any]]) -> str:
    content = messages[-1]["content"]
    if isinstance(content, str):
        return content
    return "".join(str(block.get("text", "")) for block in content if isinstance(block, Mapping))


# -- empty replies -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "silent", [EMPTY, thinking("The edit is in; nothing more to say.")], ids=["empty", "thinking"]
)
def test_an_empty_reply_is_not_kept_and_the_model_is_asked_to_go_on(harness: Harness, silent: Reply) -> None:
    """Claude sometimes ends a turn with no content (or only thinking) after tool results. Ending the run
    there proposed the edit without a word, or said "No changes were needed" when the model had not begun;
    and an empty assistant turn in the history makes the API refuse every later request (the fake refuses
    it as the API does), also after a resume."""
    h = harness
    h.fake.enqueue(
        silent,
        turn(text("Plan: implement mean."), replace(STUB_BODY, GOOD_BODY)),
        silent,
        done(),
    )
    result = h.run()

    assert result.status == "proposed", (result.status, result.error)
    assert result.proposal is not None and result.proposal.verified
    assert result.summary.startswith("Implemented `mean`")
    bodies = [r.body for r in h.fake.message_requests]
    assert [r.outcome for r in h.fake.message_requests] == ["reply"] * 4  # no request refused
    for index in (1, 3):  # asked to go on, in the user turn the empty reply answered
        assert "Your last reply was empty" in last_user_text(bodies[index]["messages"])
        assert bodies[index]["messages"][-1]["role"] == "user"
    assert [m["role"] for m in bodies[3]["messages"]] == ["user", "assistant", "user"]
    decisions = [r for r in h.transcript_records(result) if r.get("kind") == "empty_reply"]
    assert [d["times"] for d in decisions] == [1, 1]


def test_a_model_that_keeps_replying_empty_ends_its_turn(harness: Harness) -> None:
    h = harness
    h.fake.enqueue(turn(text("Plan: implement mean."), replace(STUB_BODY, GOOD_BODY)), EMPTY, EMPTY, EMPTY)
    result = h.run()
    assert result.status == "proposed", (result.status, result.error)
    assert result.proposal is not None and result.proposal.verified
    assert len(h.fake.message_requests) == 4 and h.fake.pending == 0  # asked twice, then finished


def test_an_empty_reply_from_an_openai_compatible_server_is_not_the_end(
    openai: FakeOpenAI, ws: Path, tmp_path: Path
) -> None:
    openai.enqueue(EMPTY, turn(text("Plan."), replace(STUB_BODY, GOOD_BODY)), done())
    result = openai_run(openai, ws, tmp_path / "runs")
    assert result.status == "proposed", (result.status, result.error)
    assert result.proposal is not None and "sum(values) / len(values)" in result.proposal.diff
    messages = openai.requests[1].body["messages"]
    assert [m["role"] for m in messages] == ["system", "user"]  # no empty assistant message
    assert messages[-1]["content"].endswith(
        "Your last reply was empty: no text and no tool call. Continue the task: call a tool for the next "
        "step, or, if the task is done, reply with a short summary of what you did."
    )


# -- tool calls of OpenAI-compatible servers ---------------------------------------------------------


def test_parallel_tool_calls_streamed_at_one_index_stay_separate_calls(ws: Path, tmp_path: Path) -> None:
    """Ollama through LiteLLM (and other servers) stream every tool call of a turn at index 0, each with
    its own id: joined by index, two calls became one whose arguments were not JSON, run as `{}`."""
    with FakeOpenAI(api_key=FAKE_OPENAI_KEY, calls_at_index_zero=True) as fake:
        fake.enqueue(
            turn(text("Plan: look at both files."), view(), view("mathx/__init__.py")),
            turn(replace(STUB_BODY, GOOD_BODY), view("mathx/__init__.py")),
            done(),
        )
        result = openai_run(fake, ws, tmp_path / "runs")
        bodies = [r.body for r in fake.requests]

    assert result.status == "proposed", (result.status, result.error)
    assert result.proposal is not None and result.proposal.verified
    calls = [r for r in records(result) if r["type"] == "tool_call"]
    assert [(c["input"]["command"], c["input"]["path"]) for c in calls] == [
        ("view", "mathx/stats.py"),
        ("view", "mathx/__init__.py"),
        ("str_replace", "mathx/stats.py"),
        ("view", "mathx/__init__.py"),
    ]
    results = [r for r in records(result) if r["type"] == "tool_result"]
    assert not any(r["is_error"] for r in results)
    answered = [m["tool_call_id"] for m in bodies[1]["messages"] if m["role"] == "tool"]
    assert answered == [call["id"] for call in bodies[1]["messages"][-3]["tool_calls"]]
    assert len(set(answered)) == 2


def test_tool_arguments_that_are_not_json_are_not_run_and_the_model_is_told_why(
    openai: FakeOpenAI, ws: Path, tmp_path: Path
) -> None:
    """A local model's broken arguments ran as `{}` and the model read "`command` is missing", about a
    call that had a command: it could not see what was wrong."""
    broken = with_fields(replace(STUB_BODY, GOOD_BODY), cut_input_at=70)  # JSON cut mid-string...
    assert broken.effective_stop_reason() == "tool_use"  # ...with finish_reason "tool_calls"
    openai.enqueue(turn(text("Plan."), view()), broken, broken, broken)
    result = openai_run(openai, ws, tmp_path / "runs")

    assert result.status == "budget_exhausted", (result.status, result.error)
    assert result.error is not None and result.error.startswith("stuck:")
    told = [m["content"] for m in openai.requests[2].body["messages"] if m["role"] == "tool"][-1]
    assert "was NOT run" in told and "not valid JSON" in told
    assert '{"command": "str_replace", "path": "mathx/stats.py"' in told  # what arrived, for the model
    assert "is missing" not in told
    nudged = [m["content"] for m in openai.requests[3].body["messages"] if m["role"] == "tool"][-1]
    assert "NOTE: you made this exact call before" in nudged
    results = [r for r in records(result) if r["type"] == "tool_result" and r["is_error"]]
    assert len(results) == 3 and all("not valid JSON" in r["content"] for r in results)


def test_tool_arguments_that_are_json_but_not_an_object_are_refused_by_name(
    openai: FakeOpenAI, ws: Path, tmp_path: Path
) -> None:
    call = Reply(content=({"type": "tool_use", "id": "call_list", "name": EDITOR, "input": ["view"]},))
    openai.enqueue(call, done("Stopped."))
    result = openai_run(openai, ws, tmp_path / "runs")
    assert result.status == "no_changes", (result.status, result.error)
    told = [m["content"] for m in openai.requests[1].body["messages"] if m["role"] == "tool"]
    assert len(told) == 1 and "a JSON array, not an object" in told[0] and "NOT run" in told[0]


# -- the window and rate limits ----------------------------------------------------------------------


def test_a_request_past_an_openai_compatible_servers_window_is_condensed(ws: Path, tmp_path: Path) -> None:
    """vLLM, OpenAI and OpenRouter refuse a prompt past the window with "maximum context length is N
    tokens"; only Claude's "prompt is too long" was known, so the run failed instead of condensing."""
    with FakeOpenAI(api_key=FAKE_OPENAI_KEY, context_window=6_000) as fake:
        fake.enqueue(
            turn(text("Plan: read the log, then implement mean."), view(BIG)),
            text("## Goal\nImplement mean.\n## Files changed\nnone\n## Next step\nedit mathx/stats.py"),
            replace(STUB_BODY, GOOD_BODY),
            done(),
        )
        result = openai_run(fake, ws, tmp_path / "runs")
        outcomes = [r.outcome for r in fake.requests]
        too_long = fake.too_long

    assert result.status == "proposed", (result.status, result.error)
    assert result.proposal is not None and "sum(values) / len(values)" in result.proposal.diff
    assert too_long == 1 and outcomes == ["reply", "http-400", "reply", "reply", "reply"]
    kinds = [r.get("kind") for r in records(result) if r["type"] == "decision"]
    assert "window" in kinds and "condensed" in kinds


@pytest.mark.parametrize(
    "message",
    [
        "prompt is too long: 210000 tokens > 200000 maximum",
        "input length and `max_tokens` exceed context limit: 188240 + 21333 > 200000, decrease input length "
        "or `max_tokens` and try again",
        "This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 "
        "tokens. Please reduce the length of the messages.",
        "This endpoint's maximum context length is 32768 tokens. However, you requested about 40000 tokens.",
        "the request exceeds the available context size, try increasing it",
        "The number of tokens to keep from the initial prompt is greater than the context length.",
    ],
)
def test_every_providers_refusal_past_the_window_is_recognised(message: str) -> None:
    assert is_prompt_too_long(message, 400)
    assert not is_prompt_too_long(message, 500)
    assert not is_prompt_too_long("max_tokens: Field required", 400)


def test_a_rate_limit_longer_than_the_deadline_says_so(openai: FakeOpenAI, ws: Path, tmp_path: Path) -> None:
    openai.enqueue(turn(text("Plan."), replace(STUB_BODY, GOOD_BODY)), fault_429(3600, header="retry-after"))
    result = openai_run(openai, ws, tmp_path / "runs")
    assert result.status == "failed"
    assert result.error is not None
    assert "failed 1 time in" in result.error
    assert "the server asked to wait 3600.0 s, past the 10 s retry deadline" in result.error
    assert "rate-limited" in result.error
    assert result.proposal is not None and not result.proposal.complete  # the edit is kept
    assert [r.outcome for r in openai.requests] == ["reply", "http-429"]  # no pointless retries


# -- what broken streams cost ------------------------------------------------------------------------


def test_streams_that_broke_off_are_counted_in_the_runs_usage_and_cost(harness: Harness) -> None:
    """A stream that breaks off after `message_start` was billed for its prompt (here: the first one
    wrote the whole prompt to the cache); only the retry that succeeded was counted, so the transcript
    showed a fifth of the cost and the budget let the run spend more than it knew."""
    h = harness
    first = turn(text("Plan: implement mean."), replace(STUB_BODY, GOOD_BODY))
    h.fake.enqueue(cut_stream(5, reply=first), stream_error(4, reply=first), first, done())
    result = h.run()

    assert result.status == "proposed", (result.status, result.error)
    reported = [r.usage for r in h.fake.message_requests]
    assert [r.outcome for r in h.fake.message_requests] == ["cut", "stream-error", "reply", "reply"]
    assert all(usage is not None for usage in reported)
    # The prompt side of every request, broken ones included, as the fake reported it; the output of a
    # broken stream as far as it got (message_start says 1 token).
    prompt = sum((Usage.from_api({**dict(u or {}), "output_tokens": 0}) for u in reported), Usage())
    assert result.usage.total_input_tokens == prompt.total_input_tokens
    assert result.usage.cache_creation_input_tokens == prompt.cache_creation_input_tokens > 0
    full = [u for u, r in zip(reported, h.fake.message_requests, strict=True) if r.outcome == "reply"]
    assert result.usage.output_tokens == sum(int((u or {})["output_tokens"]) for u in full) + 2
    assert result.cost == pytest.approx(result.usage.cost(fast_settings().model.model))
    [broken] = [r for r in h.transcript_records(result) if r.get("kind") == "broken_streams"]
    assert broken["usage"]["cache_creation_input_tokens"] > 0
    [end] = [r for r in h.transcript_records(result) if r["type"] == "run_end"]
    assert end["cost"] == pytest.approx(result.cost, abs=1e-6)


def test_a_failed_call_still_counts_its_broken_streams(harness: Harness) -> None:
    h = harness
    retries = fast_settings().model.max_retries
    h.fake.enqueue(
        turn(text("Plan."), replace(STUB_BODY, GOOD_BODY)),
        *[stream_error(3) for _ in range(retries)],
        fault_529(),
    )
    result = h.run()
    assert result.status == "failed" and result.error is not None and "529" in result.error
    broken = [r.usage for r in h.fake.message_requests if r.outcome == "stream-error"]
    assert len(broken) == retries
    reported = [r.usage for r in h.fake.message_requests if r.usage is not None]  # the 529 has none
    prompt = sum((Usage.from_api({**dict(u), "output_tokens": 0}) for u in reported), Usage())
    assert result.usage.total_input_tokens == prompt.total_input_tokens
    assert result.usage.output_tokens == int(reported[0]["output_tokens"]) + retries  # 1 a broken stream
    assert result.proposal is not None and not result.proposal.complete


def test_tool_calls_cut_off_three_steps_in_a_row_stop_the_run_as_stuck(harness: Harness) -> None:
    """Each cut step costs a whole max_tokens of output and changes nothing; the run went on until the
    cost budget or max_steps stopped it, with advice to raise the budget."""
    h = harness
    big = {"command": "create", "path": "mathx/extra.py", "file_text": "def f():\n    return 1\n" * 200}
    cut = cut_at_max_tokens(turn(text("Writing the module."), tool_use(EDITOR, big)), 120)
    h.fake.enqueue(turn(text("Plan."), replace(STUB_BODY, GOOD_BODY)), cut, cut, cut, done())
    result = h.run()

    assert result.status == "budget_exhausted", (result.status, result.error)
    assert result.error is not None and result.error.startswith("stuck:")
    assert "cut off at the output token limit" in result.error and "3 steps in a row" in result.error
    assert "agent.model.max_tokens" in result.error
    assert result.proposal is not None and not result.proposal.complete  # the edit before is kept
    assert "extra.py" not in result.proposal.diff  # no cut call ran
    assert h.fake.pending == 1  # stopped before a fourth costly call
    [stuck] = [r for r in h.transcript_records(result) if r.get("kind") == "stuck"]
    assert stuck["reason"] == "max_tokens" and stuck["times"] == 3


def test_a_tool_call_cut_off_by_the_context_window_is_not_run_and_the_run_condenses(harness: Harness) -> None:
    """Claude stops with "model_context_window_exceeded" when its reply fills the window: truncated, as at
    max_tokens. The call ran with its cut field dropped, and a str_replace without `new_str` deleted
    the code it was replacing."""
    h = harness
    edit = {"command": "str_replace", "path": "mathx/stats.py", "old_str": STUB_BODY, "new_str": GOOD_BODY}
    encoded = json.dumps(edit)
    inside_new_str = encoded.index('"new_str": "') + len('"new_str": "') + 10
    cut = with_fields(
        cut_at_max_tokens(turn(text("Plan: implement mean."), tool_use(EDITOR, edit)), inside_new_str),
        stop_reason="model_context_window_exceeded",
    )
    handoff = "## Goal\nImplement mean.\n## Files changed\nnone\n## Next step\nreplace the stub"
    h.fake.enqueue(cut, text(handoff), replace(STUB_BODY, GOOD_BODY), done())
    result = h.run()

    assert result.status == "proposed", (result.status, result.error)
    assert result.proposal is not None and result.proposal.verified
    assert "+    return sum(values) / len(values)" in result.proposal.diff
    [call] = [r for r in h.transcript_records(result) if r["type"] == "tool_result"][:1]
    assert call["is_error"] and "NOT run" in call["content"] and "context window" in call["content"]
    condense = h.fake.message_requests[1].body
    assert CONDENSE_PROMPT in last_user_text(condense["messages"])  # condensed before the next turn
    kinds = [r.get("kind") for r in h.transcript_records(result) if r["type"] == "decision"]
    assert kinds.index("window_full") < kinds.index("condensed")
    assert h.fake.pending == 0
