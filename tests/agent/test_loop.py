"""The loop's mechanics: a stable cached prefix, transcripts that rebuild every request, tool errors as
data, events, question tasks, the run_tests tool, and the search tools on a real index."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from agent.loop import AgentEvent
from agent.models.anthropic import with_cache_breakpoints
from agent.task_builders import ask_task, run_task
from agent.transcript import load_run, reconstruct_messages
from indexing.config import IndexSettings
from indexing.service import WorkspaceIndex
from tests.agent.agent_harness import (
    GOOD_BODY,
    STUB_BODY,
    Harness,
    bash,
    copy_workspace,
    done,
    fast_settings,
    replace,
    result_text,
    view,
)
from tests.agent.test_overlay import disk_snapshot
from tests.fakes.anthropic_server import FAKE_API_KEY, FakeAnthropic, cache_friendliness, text, tool_use, turn


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Path]:
    root = copy_workspace(tmp_path / "ws")
    before = disk_snapshot(root)
    yield root
    assert disk_snapshot(root) == before, "the agent changed the user's files on disk"


@pytest.fixture
def harness(fake_anthropic: FakeAnthropic, ws: Path, tmp_path: Path) -> Harness:
    return Harness(fake_anthropic, ws, tmp_path / "runs")


def _strip_cache_control(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _strip_cache_control(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list | tuple):
        return [_strip_cache_control(v) for v in value]
    return value


def test_the_prefix_is_byte_identical_across_steps_and_read_from_the_cache(harness: Harness) -> None:
    h = harness
    h.fake.enqueue(
        turn(text("Plan: look, then edit."), view()),
        view("tests/test_stats.py"),
        tool_use("find_symbol", {"name": "mean"}),
        replace(STUB_BODY, GOOD_BODY),
        done(),
    )
    result = h.run(settings=fast_settings(verify=False))
    assert result.status == "proposed"

    bodies = [_strip_cache_control(dict(r.body)) for r in h.fake.message_requests]
    assert len(bodies) == 5
    for before, after in itertools.pairwise(bodies):
        assert json.dumps(before["system"]) == json.dumps(after["system"])
        assert json.dumps(before["tools"]) == json.dumps(after["tools"])
        # Each conversation extends the previous one exactly: same bytes, more turns.
        prefix = after["messages"][: len(before["messages"])]
        assert json.dumps(prefix) == json.dumps(before["messages"])
    # Breakpoints on the tools, the system prompt and the newest turns; nearly all re-read from cache.
    last = h.fake.message_requests[-1].body
    assert last["tools"][-1]["cache_control"] == {"type": "ephemeral"}
    assert last["system"][-1]["cache_control"] == {"type": "ephemeral"}
    ratios = cache_friendliness(h.fake.requests)
    assert ratios[0] == 0.0 and min(ratios[1:]) >= 0.85, ratios


def test_the_transcript_rebuilds_every_request_without_the_key(harness: Harness) -> None:
    h = harness
    h.fake.enqueue(turn(text("Plan."), view()), bash("echo hello"), done("Nothing to change."))
    result = h.run()
    assert result.status == "no_changes" and result.transcript_path is not None

    run = load_run(h.runs_dir, result.run_id)
    rebuilt = reconstruct_messages(run)
    sent = [r.body for r in h.fake.message_requests]
    assert len(rebuilt) == len(sent) == 3
    for messages, body in zip(rebuilt, sent, strict=True):
        _, _, normalized = with_cache_breakpoints(None, None, messages)
        assert _strip_cache_control(normalized) == _strip_cache_control(body["messages"])
    requests = run.of_type("request")
    assert requests[0].get("system") == body["system"][0]["text"]
    assert "system" not in requests[1].data and "tools" not in requests[2].data
    responses = run.of_type("response")
    assert [r.get("request_id") for r in responses] == [f"req_fake_{i:08d}" for i in range(3)]
    assert all(r.get("usage")["input_tokens"] >= 0 and r.get("latency") > 0 for r in responses)
    assert run.of_type("run_end")[0].get("status") == "no_changes"
    # The key went to the server, never into the transcript.
    headers = h.fake.message_requests[0].headers
    assert FAKE_API_KEY in (headers.get("x-api-key") or headers.get("authorization", ""))
    assert FAKE_API_KEY not in result.transcript_path.read_text()


def test_tool_errors_are_data_the_model_sees(harness: Harness) -> None:
    h = harness
    h.fake.enqueue(
        turn(
            tool_use("launch_rockets", {"count": 3}),
            tool_use("str_replace_based_edit_tool", {"path": "mathx/stats.py"}),  # no command
            bash("seq 1 20000"),
        ),
        done("Could not."),
    )
    result = h.run(settings=fast_settings(max_tool_result_chars=1_000))
    unknown, invalid, long = h.tool_results(1)
    assert unknown["is_error"] and "Tool 'launch_rockets' not found" in result_text(unknown)
    assert invalid["is_error"] and "the required field `command` is missing" in result_text(invalid)
    assert "is_error" not in long
    clipped = result_text(long)
    assert len(clipped) < 1_100 and "characters cut" in clipped
    assert clipped.startswith("1\n2\n") and clipped.rstrip().endswith("20000")
    assert result.status == "no_changes"


def test_events_follow_the_run(harness: Harness) -> None:
    h = harness
    h.fake.enqueue(turn(text("Spec and plan."), replace(STUB_BODY, GOOD_BODY)), done())

    def broken(event: AgentEvent) -> None:
        raise RuntimeError("a broken progress display")

    result = h.run(on_event=broken)
    assert result.status == "proposed"
    kinds = [e.kind for e in h.events]
    # The stand-in workspace has no Python environment: the fallback's warning comes with the first stage.
    assert kinds[:4] == ["stage", "warning", "step", "cost"]
    for kind in ("plan", "tool_call", "tool_result", "verification", "stop"):
        assert kind in kinds
    assert kinds[-1] == "stop"
    plan = next(e for e in h.events if e.kind == "plan")
    assert plan.message == "Spec and plan." and plan.step == 1
    call = next(e for e in h.events if e.kind == "tool_call")
    assert call.message == "str_replace mathx/stats.py" and call.data["name"] == "str_replace_based_edit_tool"
    costs = [e.cost for e in h.events if e.kind == "cost"]
    assert costs == sorted(costs) and costs[-1] == pytest.approx(result.cost)
    verification = next(e for e in h.events if e.kind == "verification")
    assert verification.data["verification"].passed


def test_an_agent_runs_once(harness: Harness) -> None:
    h = harness
    h.fake.enqueue(done("Nothing to do."))
    agent = h.agent()
    task = run_task("Say hello", root=h.root)
    assert agent.run(task).status == "no_changes"
    with pytest.raises(RuntimeError, match="runs once"):
        agent.run(task)


def test_a_question_is_answered_without_edits(harness: Harness) -> None:
    h = harness
    task = ask_task("What does clamp do?", path="mathx/stats.py", root=h.root)
    h.fake.enqueue(
        turn(view(), replace("low", "lower")),
        bash("sed -i s/low/lower/ mathx/stats.py"),
        done("`clamp` limits a value to [low, high]."),
    )
    result = h.run(task)
    view_result, edit = h.tool_results(1)
    assert not view_result.get("is_error")
    assert edit["is_error"] and "This task is a question" in result_text(edit)
    assert result.status == "no_changes" and result.proposal is None
    assert result.summary == "`clamp` limits a value to [low, high]."
    assert result.verifications == ()


def test_a_reply_cut_at_max_tokens_is_continued(harness: Harness) -> None:
    h = harness
    h.fake.enqueue(text("I will start by", stop_reason="max_tokens"), done("Nothing to change."))
    result = h.run()
    continuation = h.fake.message_requests[1].body["messages"][-1]
    assert continuation["role"] == "user" and "cut off at the output token limit" in str(continuation)
    assert result.status == "no_changes" and result.steps == 2


def test_a_refusal_fails_the_run(harness: Harness) -> None:
    h = harness
    h.fake.enqueue(text("I can't help with that.", stop_reason="refusal"))
    result = h.run()
    assert result.status == "failed" and result.error is not None
    assert "declined" in result.error and "I can't help with that." in result.error


def test_run_tests_is_a_verification_the_model_reads(harness: Harness) -> None:
    h = harness
    h.fake.enqueue(
        tool_use("run_tests", {"symbol": "mean"}),
        replace(STUB_BODY, GOOD_BODY),
        tool_use("run_tests", {"path": "tests/test_stats.py"}),
        done(),
    )
    result = h.run(settings=fast_settings(verify=False))
    failing = result_text(h.tool_results(1)[0])
    assert "Verification FAILED" in failing and "NotImplementedError" in failing
    passing = result_text(h.tool_results(3)[0])
    assert passing.startswith("Verification passed.")
    assert [(v.trigger, v.passed) for v in result.verifications] == [
        ("run_tests", False),
        ("run_tests", True),
    ]
    proposal = result.proposal
    assert proposal is not None and not proposal.verified
    assert proposal.verification_summary.startswith("Not verified: verification is off")


def test_unsaved_buffers_are_the_base(harness: Harness) -> None:
    h = harness
    disk = (h.root / "mathx" / "stats.py").read_text()
    unsaved = disk.replace('"""Small statistics helpers."""', '"""Statistics (unsaved edit)."""')
    h.fake.enqueue(view(), replace(STUB_BODY, GOOD_BODY), done())
    result = h.run(settings=fast_settings(verify=False), buffers={"mathx/stats.py": (unsaved, 7)})
    assert "Statistics (unsaved edit)." in result_text(h.tool_results(1)[0])
    assert result.proposal is not None
    [change] = result.proposal.files
    assert change.base_version == 7 and change.base_text == unsaved
    assert "Small statistics helpers" not in result.proposal.diff  # the unsaved edit is base, not change


def test_search_tools_use_the_index_and_fall_back_without_it(harness: Harness, tmp_path: Path) -> None:
    h = harness
    script = (
        turn(
            tool_use("search_code", {"query": "arithmetic mean"}), tool_use("find_symbol", {"name": "clamp"})
        ),
        done("Found it."),
    )
    h.fake.enqueue(*script)
    h.run()
    search, symbol = (result_text(b) for b in h.tool_results(1))
    assert "no index is available" in search and "mathx/stats.py:" in search
    assert "no index is available" in symbol and "definition" in symbol

    index = WorkspaceIndex(h.root, IndexSettings(), cache_dir=tmp_path / "cache", env={})
    index.index()
    h.index = index
    h.fake.enqueue(*script)
    h.run()
    search, symbol = (result_text(b) for b in h.tool_results(3))
    assert search.startswith("1. mathx/stats.py:") and "mean (function)" in search
    assert "def mean(values: list[float]) -> float:" in search
    assert "mathx/stats.py:6:5  definition function clamp" in symbol
    assert "tests/test_stats.py" in symbol and "reference" in symbol
