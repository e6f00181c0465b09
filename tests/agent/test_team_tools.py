"""The team tools in the solo loop, against the fake Messages API: `delegate` (a sub-agent's report
instead of its reads), `todo` (kept through a resume and a condensation), usage and cost per role
(sums equal to the run's; a cheaper model per role).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from agent.config import AgentSettings, RoleSettings
from agent.costs import CostLedger
from agent.loop import Agent, AgentEvent, RunResult
from agent.memory import MemorySettings
from agent.models.anthropic import AnthropicModel
from agent.models.roles import RoleModels
from agent.overlay import Overlay
from agent.resume import load_state
from agent.roles import SOLO
from agent.runner import Credentials, start_run
from agent.sandbox import Sandbox
from agent.task import Task
from agent.transcript import Transcript
from agent.usage import Usage
from tests.agent.agent_harness import (
    EDITOR,
    FAST_MODEL,
    GOOD_BODY,
    STUB_BODY,
    copy_workspace,
    fast_settings,
    mean_task,
    replace,
    result_text,
    view,
)
from tests.fakes.anthropic_server import (
    FAKE_API_KEY,
    FakeAnthropic,
    RecordedRequest,
    fault_529,
    text,
    tool_use,
    turn,
)

QUESTION = "Where is the retry policy defined, and who calls it?"
FILES = ("netkit/retry.py", "netkit/client.py", "netkit/transport.py")
ANSWER = (
    "The retry policy is `RetryPolicy` in netkit/retry.py:1-4 (`RetryPolicy.delay` doubles the wait). "
    "It is called by `Client.send` in netkit/client.py:3."
)
EXPLORE_MARK = "explore sub-agent"


def _padding(name: str) -> str:
    line = f"# {name}: notes on connection handling, timeouts, backoff and the wire format of requests.\n"
    return line * 130  # about 12,000 characters


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = copy_workspace(tmp_path / "ws")
    (root / "netkit").mkdir()
    (root / "netkit" / "__init__.py").write_text("")
    (root / FILES[0]).write_text(
        "class RetryPolicy:\n    def delay(self, attempt: int) -> float:\n"
        "        return 0.5 * 2**attempt\n\n" + _padding("retry")
    )
    (root / FILES[1]).write_text(
        "from netkit.retry import RetryPolicy\n\nclass Client:\n    def send(self):\n"
        "        return RetryPolicy().delay(1)\n\n" + _padding("client")
    )
    (root / FILES[2]).write_text("def open_connection(host):\n    return host\n\n" + _padding("transport"))
    return root


def _agent(
    fake: FakeAnthropic,
    root: Path,
    runs_dir: Path,
    settings: AgentSettings,
    events: list[AgentEvent],
    *,
    role_models: bool = False,
    node: str | None = None,
) -> tuple[Agent, RoleModels | None]:
    model = AnthropicModel(settings.model, api_key=FAKE_API_KEY, base_url=fake.url)
    models = None
    if role_models:
        models = RoleModels(
            settings, lambda wanted: AnthropicModel(wanted, api_key=FAKE_API_KEY, base_url=fake.url), model
        )
    agent = Agent(
        model,
        settings,
        root=root,
        overlay=Overlay(root),
        sandbox=Sandbox(settings.sandbox),
        on_event=events.append,
        transcript=Transcript(runs_dir, redact=[FAKE_API_KEY]),
        role=SOLO,
        models=models,
        node=node,
    )
    return agent, models


def _question() -> Task:
    return Task(kind="ask", instruction=QUESTION, edits_allowed=False)


def _is_explore(request: RecordedRequest) -> bool:
    return EXPLORE_MARK in json.dumps(request.body.get("system", ""))


def _size(request: RecordedRequest) -> int:
    return len(json.dumps(dict(request.body)).encode("utf-8"))


def _views() -> list[Any]:
    return [view(path) for path in FILES]


def _records(result: RunResult) -> list[dict[str, Any]]:
    assert result.transcript_path is not None
    return [json.loads(line) for line in result.transcript_path.read_text().splitlines()]


def _assert_roles_add_up(result: RunResult, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-role usage and cost (result, run_end) add up to the run's totals; returns run_end's roles."""
    assert sum((r.usage for r in result.roles), Usage()) == result.usage
    assert sum(r.cost for r in result.roles) == pytest.approx(result.cost, abs=1e-9)
    end = next(r for r in records if r["type"] == "run_end")
    roles = end["roles"]
    for key, value in end["usage"].items():
        assert sum(role["usage"][key] for role in roles) == value, key
    assert sum(role["cost"] for role in roles) == pytest.approx(end["cost"], abs=1e-5)
    return list(roles)


def test_delegate_returns_a_report_and_keeps_the_callers_context_small(
    fake_anthropic: FakeAnthropic, ws: Path, tmp_path: Path
) -> None:
    fake = fake_anthropic
    settings = fast_settings(verify=False)

    # The same exploration done inline: the caller reads the three files itself.
    fake.enqueue(*_views(), text(ANSWER))
    inline, _ = _agent(fake, ws, tmp_path / "runs", settings, [])
    inline_result = inline.run(_question())
    assert inline_result.status == "no_changes"
    inline_last = _size(fake.message_requests[-1])
    first = len(fake.message_requests)

    # Delegated: the caller asks, the sub-agent reads the same files and reports.
    events: list[AgentEvent] = []
    fake.enqueue(tool_use("delegate", {"task": QUESTION}), *_views(), text(ANSWER), text(ANSWER))
    agent, _ = _agent(fake, ws, tmp_path / "runs", settings, events)
    result = agent.run(_question())
    assert result.status == "no_changes", (result.status, result.error)

    requests = fake.message_requests[first:]
    caller = [r for r in requests if not _is_explore(r)]
    explore = [r for r in requests if _is_explore(r)]
    assert len(caller) == 2 and len(explore) == 4
    # The sub-agent works with read-only tools in its own context.
    names = {tool["name"] for tool in explore[0].body["tools"]}
    assert {"search_code", "find_symbol", EDITOR, "git_log"} <= names
    assert not names & {"bash", "run_tests", "delegate", "todo", "ask_user"}
    assert QUESTION in json.dumps(explore[0].body["messages"][0])
    assert len(explore[0].body["messages"]) == 1  # nothing of the caller's conversation

    # The caller gets a short structured report instead of the files.
    report = json.loads(result_text(caller[-1].body["messages"][-1]["content"][0]))
    assert report["status"] == "answered" and report["answer"] == ANSWER
    assert report["files"] == ["netkit/retry.py:1-4", "netkit/client.py:3"]
    assert report["read"] == ["netkit/transport.py"]
    assert {"RetryPolicy", "RetryPolicy.delay", "Client.send"} <= set(report["symbols"])
    delegated_last = _size(caller[-1])
    read_bytes = sum(len((ws / path).read_text()) for path in FILES)
    assert delegated_last < inline_last - 0.8 * read_bytes, (delegated_last, inline_last)
    # The sub-agent's tool calls show in the caller's progress, tagged with its role.
    assert [e.data.get("role") for e in events if e.kind == "tool_call"] == [None, *["explore"] * 3]

    # Its usage is the run's, under its own role; per-role sums add up to the run's total.
    records = _records(result)
    roles = _assert_roles_add_up(result, records)
    assert [(r["role"], r["calls"]) for r in roles] == [("solo", 2), ("explore", 4)]
    explore_usage = sum(
        (Usage.from_api(r.usage or {}) for r in explore), Usage()
    )  # what the fake reported for the sub-agent's calls
    assert result.roles[1].usage == explore_usage
    decision = next(r for r in records if r["type"] == "decision" and r.get("kind") == "delegate")
    assert decision["role"] == "explore" and decision["steps"] == 4
    sub_records = [json.loads(line) for line in Path(decision["transcript"]).read_text().splitlines()]
    assert {r["role"] for r in sub_records if r["type"] == "response"} == {"explore"}
    assert {r["role"] for r in records if r["type"] == "response"} == {"solo"}


def test_per_role_models_and_costs_add_up_in_the_proposal(
    fake_anthropic: FakeAnthropic, ws: Path, tmp_path: Path
) -> None:
    fake = fake_anthropic
    settings = fast_settings(
        verify=False, roles={"explore": RoleSettings(model={"model": "claude-haiku-4-5"})}
    )
    fake.enqueue(
        turn(
            text("Plan: ask where things are, then implement mean."), tool_use("delegate", {"task": QUESTION})
        ),
        view(FILES[0]),
        text(ANSWER),
        tool_use("delegate", {"task": "Who calls open_connection?", "hints": ["netkit/"]}),
        text("Nobody calls `open_connection`: it is only defined in netkit/transport.py:1."),
        replace(STUB_BODY, GOOD_BODY),
        text("Implemented mean."),
    )
    agent, models = _agent(fake, ws, tmp_path / "runs", settings, [], role_models=True)
    try:
        result = agent.run(mean_task(ws))
    finally:
        assert models is not None
        models.close()
    assert result.status == "proposed", (result.status, result.error)

    by_model = {r.body["model"] for r in fake.message_requests if _is_explore(r)}
    assert by_model == {"claude-haiku-4-5"}
    assert {r.body["model"] for r in fake.message_requests if not _is_explore(r)} == {FAST_MODEL.model}
    # Each call is priced with its own model: the run is cheaper than at the caller's price.
    solo, explore = result.roles
    assert (solo.role, explore.role, explore.calls) == ("solo", "explore", 3)
    assert explore.cost == pytest.approx(explore.usage.cost("claude-haiku-4-5"))
    assert result.cost < result.usage.cost(FAST_MODEL.model)
    # The second delegation reads the explore prefix (system prompt and tools) from the prompt cache.
    explore_requests = [r for r in fake.message_requests if _is_explore(r)]
    assert explore_requests[2].usage is not None
    assert explore_requests[2].usage["cache_read_input_tokens"] > 0

    assert result.proposal is not None
    assert result.proposal.roles == result.roles
    payload = [role.payload() for role in result.proposal.roles]
    assert [p["role"] for p in payload] == ["solo", "explore"]
    assert sum(p["inputTokens"] for p in payload) == result.usage.total_input_tokens
    assert sum(p["outputTokens"] for p in payload) == result.usage.output_tokens
    assert sum(p["cost"] for p in payload) == pytest.approx(result.proposal.cost, abs=1e-5)
    _assert_roles_add_up(result, _records(result))


def _todo_events(events: list[AgentEvent]) -> list[list[Mapping[str, str]]]:
    return [list(e.data["items"]) for e in events if e.kind == "todo"]


def test_the_todo_list_survives_a_resume(fake_anthropic: FakeAnthropic, ws: Path, tmp_path: Path) -> None:
    fake = fake_anthropic
    settings = fast_settings(verify=False)
    runs = tmp_path / "runs"
    events: list[AgentEvent] = []
    fake.enqueue(
        turn(
            text("Plan."), tool_use("todo", {"command": "add", "items": ["Read the stub", "Implement mean"]})
        ),
        tool_use("todo", {"command": "update", "id": "1", "status": "in_progress"}),
        *[fault_529() for _ in range(FAST_MODEL.max_retries + 1)],
    )
    agent, _ = _agent(fake, ws, runs, settings, events)
    first = agent.run(mean_task(ws))
    assert first.status == "failed"
    assert _todo_events(events)[-1] == [
        {"id": "1", "text": "Read the stub", "status": "in_progress"},
        {"id": "2", "text": "Implement mean", "status": "pending"},
    ]
    todo_records = [r for r in _records(first) if r["type"] == "todo"]
    assert len(todo_records) == 2 and todo_records[-1]["items"][0]["status"] == "in_progress"

    state = load_state(runs, first.run_id)
    assert [item["id"] for item in state.todos] == ["1", "2"]
    resumed_events: list[AgentEvent] = []
    fake.enqueue(
        tool_use("todo", {"command": "complete", "ids": ["1", "2"]}),
        replace(STUB_BODY, GOOD_BODY),
        text("Done."),
    )
    again, _ = _agent(fake, ws, runs, settings, resumed_events)
    resumed = again.resume(state)
    assert resumed.status == "proposed", (resumed.status, resumed.error)
    todos = _todo_events(resumed_events)
    assert todos[0][0] == {"id": "1", "text": "Read the stub", "status": "in_progress"}  # restored
    assert [item["status"] for item in todos[-1]] == ["done", "done"]
    first_result = fake.message_requests[-2].body["messages"][-1]["content"][0]
    assert "Completed 1, 2" in result_text(first_result) and not first_result.get("is_error")
    # The resumed run's usage per role covers both parts and still adds up.
    _assert_roles_add_up(resumed, _records(resumed))
    assert resumed.usage.total_tokens > first.usage.total_tokens


def test_the_condensed_context_keeps_the_todo_list(
    fake_anthropic: FakeAnthropic, ws: Path, tmp_path: Path
) -> None:
    fake = fake_anthropic
    (ws / "big.log").write_text("2026-12-04 06:00:00 INFO worker processed batch in 12.5 ms\n" * 700)
    settings = fast_settings(
        verify=False,
        context_token_budget=0,
        model=FAST_MODEL.model_copy(update={"context_window": 8_000}),
        memory=MemorySettings(keep_turns=0),
    )
    items = ["Find the slow batch", "Write the fix"]
    fake.enqueue(
        tool_use("todo", {"command": "add", "items": items}),
        view("big.log"),
        text("## Goal\nFind the slow batch.\n## Next step\nWrite the fix."),  # the condensation call
        tool_use("todo", {"command": "complete", "id": "1"}),
        text("The log shows no slow batch."),
    )
    agent, _ = _agent(fake, ws, tmp_path / "runs", settings, [], node="investigate")
    result = agent.run(Task(kind="ask", instruction="Which batch is slow in big.log?", edits_allowed=False))
    assert result.status == "no_changes", (result.status, result.error)
    assert agent.memory.condensations == 1
    after = fake.message_requests[3].body["messages"]
    assert len(after) == 3 and "Handoff summary" in json.dumps(after[1])
    note = json.dumps(after[2])
    assert "todo list" in note and all(item in note for item in items)
    assert "INFO worker" not in json.dumps(after)  # the 40k-character read is gone
    done = result_text(fake.message_requests[4].body["messages"][-1]["content"][0])
    assert "[x] 1 Find the slow batch" in done
    # The condensation call is charged too, to the agent's role and node.
    assert [(r.role, r.node, r.calls) for r in result.roles] == [("solo", "investigate", 5)]
    assert {r["node"] for r in _records(result) if r["type"] == "response"} == {"investigate"}
    _assert_roles_add_up(result, _records(result))


def test_a_run_without_role_settings_uses_its_own_model_for_every_role() -> None:
    settings = AgentSettings()
    calls: list[Any] = []
    default: Any = object()
    models = RoleModels(settings, lambda wanted: calls.append(wanted) or object(), default)  # type: ignore[func-returns-value]
    assert models("explore") is default and models("solo") is default and not calls
    other = AgentSettings(roles={"explore": RoleSettings(model={"model": "claude-haiku-4-5"})})
    loaded = RoleModels(other, lambda wanted: calls.append(wanted.model) or object(), default)  # type: ignore[func-returns-value]
    assert loaded("explore") is loaded("explore") is not default and calls == ["claude-haiku-4-5"]
    with pytest.raises(ValueError, match="not the provider"):
        AgentSettings(roles={"explore": RoleSettings(model={"provider": "openai"})}).model_for("explore")


def test_ledger_records_round_trip() -> None:
    ledger = CostLedger()
    ledger.add("solo", None, Usage(input_tokens=10, output_tokens=5), "claude-sonnet-5-5")
    ledger.add("coder", "code", Usage(cache_read_input_tokens=100, output_tokens=1), "claude-haiku-4-5")
    again = CostLedger.from_records(json.loads(json.dumps(ledger.records())))
    assert again.usage == ledger.usage and again.cost == pytest.approx(ledger.cost, abs=1e-6)
    assert again.payload()[1] == {
        "role": "coder",
        "inputTokens": 100,
        "outputTokens": 1,
        "cost": round(ledger.entries[1].cost, 6),
        "node": "code",
    }


def test_start_run_gives_a_role_its_own_model_from_the_settings(
    fake_anthropic: FakeAnthropic, ws: Path, tmp_path: Path
) -> None:
    fake = fake_anthropic
    settings = fast_settings(
        verify=False, roles={"explore": RoleSettings(model={"model": "claude-haiku-4-5"})}
    )
    fake.enqueue(tool_use("delegate", {"task": QUESTION}), text(ANSWER), text(ANSWER))
    handle = start_run(
        _question(),
        root=ws,
        settings=settings,
        credentials=Credentials(api_key=FAKE_API_KEY, base_url=fake.url),
        runs_dir=tmp_path / "runs",
    )
    result = handle.wait(60)
    assert result is not None and result.status == "no_changes", result
    models = [(_is_explore(r), r.body["model"]) for r in fake.message_requests]
    assert models == [(False, FAST_MODEL.model), (True, "claude-haiku-4-5"), (False, FAST_MODEL.model)]
    assert [(r.role, r.calls) for r in result.roles] == [("solo", 2), ("explore", 1)]


def test_a_team_engines_payload_entries_sum_by_role_and_node() -> None:
    entries = [
        {"role": "coder", "node": "code", "inputTokens": 100, "outputTokens": 10, "cost": 0.01},
        {"role": "qa", "node": "review", "inputTokens": 50, "outputTokens": 5, "cost": 0.002},
        {"role": "coder", "node": "code", "inputTokens": 30, "outputTokens": 3, "cost": 0.004},
    ]
    ledger = CostLedger.from_records(entries)
    assert ledger.payload() == [
        {"role": "coder", "inputTokens": 130, "outputTokens": 13, "cost": 0.014, "node": "code"},
        {"role": "qa", "inputTokens": 50, "outputTokens": 5, "cost": 0.002, "node": "review"},
    ]
    assert [entry.calls for entry in ledger.entries] == [2, 1]


def test_a_delegate_sub_agent_gets_only_what_is_left_of_the_runs_budget(
    fake_anthropic: FakeAnthropic, ws: Path, tmp_path: Path
) -> None:
    fake = fake_anthropic
    settings = fast_settings(verify=False, context_token_budget=0, max_cost_usd=0.05)
    fake.enqueue(tool_use("delegate", {"task": QUESTION}), *_views(), text(ANSWER), text(ANSWER))
    agent, _ = _agent(fake, ws, tmp_path / "runs", settings, [])
    result = agent.run(_question())
    assert result.cost <= 0.05
    explore = [r for r in fake.message_requests if _is_explore(r)]
    assert 0 < len(explore) < 4  # the sub-agent stopped before the budget ran out, with the run's left
    delegated = next(r for r in _records(result) if r["type"] == "tool_result" and r["name"] == "delegate")
    report = json.loads(delegated["content"])
    assert report["status"] == "budget_exhausted" and "Cost budget" in report["answer"]
    # The caller goes on with what is left, and stops too rather than pass the budget.
    assert result.status in ("no_changes", "budget_exhausted"), (result.status, result.error)
    _assert_roles_add_up(result, _records(result))
