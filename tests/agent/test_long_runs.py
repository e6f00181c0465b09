"""Long and interrupted runs (issue 10, items 1, 2, 3 and 6), end to end against the fake Messages API:
a 200-step run of large outputs past a 200k window, work kept through a 529 storm and resumed, tool calls
cut at max_tokens never run, identical failing calls stopped, no-op edits refused, budgets never passed.
"""

from __future__ import annotations

import json
import os
import stat
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from agent.config import AgentSettings
from agent.memory import CONDENSE_PROMPT, MASKED_PREFIX, MemorySettings
from agent.models.anthropic import with_cache_breakpoints
from agent.resume import load_state, state_path
from agent.transcript import load_run, reconstruct_messages
from tests.agent.agent_harness import (
    EDITOR,
    FAST_MODEL,
    GOOD_BODY,
    STUB_BODY,
    Harness,
    copy_workspace,
    done,
    fast_settings,
    replace,
    result_text,
    view,
)
from tests.agent.test_overlay import disk_snapshot
from tests.fakes.anthropic_server import (
    FakeAnthropic,
    Reply,
    count_prompt_tokens,
    cut_at_max_tokens,
    fault_529,
    text,
    tool_use,
    turn,
)

BIG = "big_log.txt"
BIG_LINE = "2026-12-04 06:00:00 INFO worker[3] processed batch 0042 in 12.5 ms, queue depth 17\n"


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Path]:
    root = copy_workspace(tmp_path / "ws")
    (root / BIG).write_text(BIG_LINE * 480)  # about 40k characters
    before = disk_snapshot(root)
    yield root
    assert disk_snapshot(root) == before, "the agent changed the user's files on disk"


@pytest.fixture
def harness(fake_anthropic: FakeAnthropic, ws: Path, tmp_path: Path) -> Harness:
    return Harness(fake_anthropic, ws, tmp_path / "runs")


def _last_user_text(body: Mapping[str, Any]) -> str:
    content = body["messages"][-1]["content"]
    if isinstance(content, str):
        return content
    return "".join(str(block.get("text", "")) for block in content if isinstance(block, Mapping))


def long_run_responder(steps: int, *, reasoning_chars: int = 4000) -> Any:
    """Answers a run of `steps` turns: an edit, then views of the 40k-character file (each turn with a
    paragraph of reasoning, as models write), then "done"; condensation requests get a handoff."""
    state = {"turns": 0, "condensations": 0}
    reasoning = ("I keep reading the log to find the slow batches; nothing stands out yet. " * 60)[
        :reasoning_chars
    ]

    def respond(body: Mapping[str, Any]) -> Reply:
        if CONDENSE_PROMPT in _last_user_text(body):
            state["condensations"] += 1
            return text(
                "## Goal\nImplement mean.\n## Spec\nmean raises ValueError on [].\n## Plan\n[done] edit\n"
                "[remaining] read the log\n## Files changed\nmathx/stats.py: mean implemented\n"
                "## Open failures\nnone\n## Decisions\nnone\n## Next step\nread the log"
            )
        state["turns"] += 1
        turn_number = state["turns"]
        if turn_number == 1:
            return turn(text("Plan: implement mean, then study the log."), replace(STUB_BODY, GOOD_BODY))
        if turn_number < steps:
            return turn(
                text(f"Step {turn_number}. {reasoning}"), tool_use(EDITOR, {"command": "view", "path": BIG})
            )
        return done()

    return respond, state


def test_a_200_step_run_of_large_outputs_stays_in_a_200k_window_and_proposes_its_edit(
    harness: Harness,
) -> None:
    h = harness
    h.fake.context_window = 200_000  # the API's answer past it: 400 prompt is too long
    respond, state = long_run_responder(200)
    h.fake.responder = respond
    result = h.run(settings=fast_settings(max_steps=220, max_cost_usd=None))

    assert result.status == "proposed", (result.status, result.error)
    assert result.proposal is not None and result.proposal.verified and result.proposal.complete
    assert "sum(values) / len(values)" in result.proposal.diff
    assert result.steps == 200
    assert h.fake.too_long == 0
    sizes = [count_prompt_tokens(r.body) for r in h.fake.message_requests]
    assert max(sizes) < 200_000
    # Old tool results were masked (the stub says how to see them again) and the run was condensed.
    records = h.transcript_records(result)
    decisions = [r for r in records if r["type"] == "decision"]
    masked = [d for d in decisions if d.get("kind") == "masked"]
    condensed = [d for d in decisions if d.get("kind") == "condensed"]
    assert masked and condensed, [d.get("kind") for d in decisions]
    assert state["condensations"] == len(condensed)
    assert "Files changed" in condensed[0]["summary"]
    last = h.fake.message_requests[-1].body
    assert any(MASKED_PREFIX in json.dumps(m) for m in last["messages"]) or len(condensed) > 0
    # After a condensation the prefix (tools, system, first turn) is unchanged and the handoff follows.
    first_turn = h.fake.message_requests[0].body["messages"][0]
    assert _strip(last["messages"][0]) == _strip(first_turn)
    assert "Handoff summary" in json.dumps(last["messages"][1])
    # The transcript still rebuilds every request as it was sent.
    run = load_run(h.runs_dir, result.run_id)
    rebuilt = reconstruct_messages(run)
    assert len(rebuilt) == result.steps
    assert _strip(with_cache_breakpoints(None, None, rebuilt[-1])[2]) == _strip(last["messages"])


def _strip(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _strip(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list | tuple):
        return [_strip(v) for v in value]
    return value


def _cut_reply(input: dict[str, Any], field: str, keep: int) -> Reply:
    """A tool call cut at max_tokens `keep` characters into the value of `field`."""
    encoded = json.dumps(input)
    position = encoded.index(f'"{field}": "') + len(f'"{field}": "') + keep
    return cut_at_max_tokens(tool_use(EDITOR, input), position)


def test_tool_calls_cut_at_max_tokens_are_not_run_and_the_cap_is_raised_once(harness: Harness) -> None:
    h = harness
    edit = {"command": "str_replace", "path": "mathx/stats.py", "old_str": STUB_BODY, "new_str": GOOD_BODY}
    create = {"command": "create", "path": "mathx/extra.py", "file_text": "def f():\n    return 1\n" * 40}
    h.fake.enqueue(
        _cut_reply(edit, "new_str", 12),
        _cut_reply(create, "file_text", 30),
        text("I could not finish the edit."),
    )
    result = h.run()

    # Nothing ran: the cut str_replace did not delete the stub, the cut create made no file.
    assert result.status == "no_changes", (result.status, result.summary)
    assert result.proposal is None
    for request in (1, 2):
        [block] = h.tool_results(request)
        assert block.get("is_error") is True
        assert "cut off at the output token limit" in result_text(block)
        assert "NOT run" in result_text(block) and "insert" in result_text(block)
    bodies = [r.body for r in h.fake.message_requests]
    assert bodies[0]["max_tokens"] == FAST_MODEL.max_tokens
    assert bodies[1]["max_tokens"] == FAST_MODEL.max_tokens * 2  # raised once for the cut step
    assert bodies[2]["max_tokens"] == FAST_MODEL.max_tokens  # not raised again after the raised call


def test_a_529_storm_after_an_edit_keeps_it_and_resume_finishes_it(harness: Harness) -> None:
    h = harness
    h.fake.enqueue(
        turn(text("Plan: implement mean."), view()),
        replace(STUB_BODY, GOOD_BODY),
        *[fault_529() for _ in range(FAST_MODEL.max_retries + 1)],
    )
    first = h.run()

    assert first.status == "failed"
    assert first.error is not None and "529" in first.error
    assert first.proposal is not None, "the edit was dropped"
    assert not first.proposal.complete and not first.proposal.verified
    assert first.summary.startswith("UNFINISHED")
    assert f"agentls runs resume {first.run_id}" in first.summary
    assert "sum(values) / len(values)" in first.proposal.diff
    saved = state_path(h.runs_dir, first.run_id)
    assert stat.S_IMODE(os.stat(saved).st_mode) == 0o600

    # A new process would do the same: read the state from disk, a fresh overlay over the same disk.
    state = load_state(h.runs_dir, first.run_id[:12])
    assert state.run_id == first.run_id and state.resumable
    assert "mathx/stats.py" in state.files
    h.fake.enqueue(done())
    agent = h.agent()
    resumed = agent.resume(state)

    assert resumed.status == "proposed", (resumed.status, resumed.error)
    assert resumed.proposal is not None and resumed.proposal.complete and resumed.proposal.verified
    assert resumed.proposal.diff == first.proposal.diff
    assert resumed.run_id != first.run_id
    body = h.fake.message_requests[-1].body
    assert _strip(body["messages"][0]) == _strip(h.fake.message_requests[0].body["messages"][0])
    assert "It has been resumed" in json.dumps(body["messages"][-1])
    assert resumed.usage.total_tokens > first.usage.total_tokens  # the budget covers the whole run
    kinds = [r.get("kind") for r in h.transcript_records(resumed) if r["type"] == "decision"]
    assert "resumed" in kinds
    with pytest.raises(ValueError, match="nothing to resume"):
        h.agent().resume(load_state(h.runs_dir, resumed.run_id))


def test_a_cancelled_run_proposes_nothing_but_can_be_resumed(harness: Harness) -> None:
    h = harness
    cancel = threading.Event()

    def on_event(event: Any) -> None:
        if (
            event.kind == "tool_result"
            and event.data.get("name") == EDITOR
            and not event.data.get("is_error")
        ):
            cancel.set()

    h.fake.enqueue(turn(text("Plan."), replace(STUB_BODY, GOOD_BODY)), done())
    result = h.run(cancel=cancel, on_event=on_event)
    assert result.status == "cancelled" and result.proposal is None
    state = load_state(h.runs_dir, result.run_id)
    assert state.resumable and "mathx/stats.py" in state.files


def test_the_same_failing_call_is_nudged_then_the_run_stops_stuck_with_its_work(harness: Harness) -> None:
    h = harness
    missing = replace("this text is not in the file\n", "x\n")
    h.fake.enqueue(
        turn(text("Plan."), replace(STUB_BODY, GOOD_BODY)),
        missing,
        missing,
        missing,
    )
    result = h.run()

    assert result.status == "budget_exhausted", (result.status, result.error)
    assert result.error is not None and result.error.startswith("stuck:")
    assert result.proposal is not None and not result.proposal.complete
    assert "sum(values) / len(values)" in result.proposal.diff
    first, second = (result_text(h.tool_results(i)[0]) for i in (2, 3))
    assert "NOTE: you made this exact call before" not in first
    assert "NOTE: you made this exact call before" in second
    assert result.steps == 4


def test_a_str_replace_that_changes_nothing_is_an_error(harness: Harness) -> None:
    h = harness
    h.fake.enqueue(turn(text("Plan."), replace(STUB_BODY, STUB_BODY)), done("Nothing to do."))
    result = h.run()
    [block] = h.tool_results(1)
    assert block.get("is_error") is True
    assert "same" in result_text(block)
    assert result.status == "no_changes"


def test_the_cost_budget_is_checked_before_each_call_and_never_passed(harness: Harness) -> None:
    h = harness
    big_view = tool_use(EDITOR, {"command": "view", "path": BIG})
    h.fake.enqueue(turn(text("Plan."), replace(STUB_BODY, GOOD_BODY)), *[big_view for _ in range(30)])
    limit = 0.06
    settings = fast_settings(max_cost_usd=limit, max_steps=40)
    result = h.run(settings=settings)

    assert result.status == "budget_exhausted", (result.status, result.error)
    assert result.cost <= limit, f"the run ended at ${result.cost:.4f}, above its ${limit} budget"
    assert result.error is not None and "next model call could cost" in result.error
    assert result.proposal is not None and not result.proposal.complete


def test_memory_settings_and_window_come_from_the_settings() -> None:
    settings = AgentSettings.model_validate(
        {"model": {"context_window": 50_000}, "memory": {"keep_tool_results": 2, "mask_at": 0.5}}
    )
    assert settings.model.context_window == 50_000
    assert settings.memory == MemorySettings(keep_tool_results=2, mask_at=0.5)


def test_prompt_too_long_from_the_api_condenses_and_retries_the_step(harness: Harness) -> None:
    """The window setting is larger than the API's real one: the 400 itself triggers a condensation."""
    h = harness
    h.fake.context_window = 60_000
    respond, state = long_run_responder(30, reasoning_chars=500)
    h.fake.responder = respond
    result = h.run(settings=fast_settings(max_steps=40, max_cost_usd=None))

    assert result.status == "proposed", (result.status, result.error)
    assert result.proposal is not None and "sum(values) / len(values)" in result.proposal.diff
    assert h.fake.too_long >= 1
    kinds = [r.get("kind") for r in h.transcript_records(result) if r["type"] == "decision"]
    assert "window" in kinds and "condensed" in kinds
    assert state["condensations"] >= 1


def test_the_state_is_saved_after_each_step_that_changed_files(harness: Harness) -> None:
    """A process killed mid-run (here: the state read while the run is still going) leaves its edit."""
    h = harness
    seen: list[Any] = []

    def on_event(event: Any) -> None:
        if event.kind == "step" and event.step == 3:
            runs = list(h.runs_dir.glob("*.state.json"))
            seen.extend(load_state(h.runs_dir, path.name.removesuffix(".state.json")) for path in runs)

    h.fake.enqueue(turn(text("Plan."), view()), replace(STUB_BODY, GOOD_BODY), done())
    result = h.run(on_event=on_event)
    assert result.status == "proposed"
    [state] = seen
    assert state.status == "running" and state.resumable and state.steps == 2
    assert "sum(values) / len(values)" in (state.files["mathx/stats.py"] or "")
