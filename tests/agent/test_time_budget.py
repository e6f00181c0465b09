"""A run's wall-clock budget (`agent.max_minutes`) and the cost of streams cut off mid-reply.

The real loop, the real SDK against the fake Anthropic server, the real overlay and bubblewrap sandbox.
Bounds are a few seconds (0.05 minutes = 3 s) so the file runs in seconds: a model call or a command in
flight when the time runs out is cut at the bound (not at the fake's 20 s stall or the command's 15 s
limit), the run stops as a budget stop does (an UNFINISHED proposal with the edit, a `budget_stop`
decision with what was spent against the bound), and a resumed run counts the time its earlier part took.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from agent.approval import ALLOW, ask_approval
from agent.loop import RunResult
from agent.resume import load_state
from agent.timebound import DeadlineEvent, bounded_ask
from agent.tools.ask import AskCallback, QuestionWithdrawn
from agent.usage import Budget, BudgetExceeded, Usage
from tests.agent.agent_harness import (
    GOOD_BODY,
    STUB_BODY,
    Harness,
    bash,
    copy_workspace,
    done,
    fast_settings,
    replace,
)
from tests.fakes.anthropic_server import FakeAnthropic, stall, text, tool_use, turn

BOUND = 0.05
"""Minutes: 3 s, well under the fake's stall and the command's own limit."""
STALL = 20.0


@pytest.fixture
def harness(fake_anthropic: FakeAnthropic, tmp_path: Path) -> Harness:
    return Harness(fake_anthropic, copy_workspace(tmp_path / "ws"), tmp_path / "runs")


def decisions(h: Harness, result: RunResult, kind: str) -> list[dict[str, Any]]:
    return [r for r in h.transcript_records(result) if r.get("type") == "decision" and r.get("kind") == kind]


def prompt_side(h: Harness) -> Usage:
    """The prompt of every /v1/messages request the fake answered, as its usage reported it."""
    requests = h.fake.message_requests
    return Usage.total(Usage.from_api({**dict(r.usage), "output_tokens": 0}) for r in requests if r.usage)


def test_a_model_call_past_the_time_bound_stops_the_run_with_its_work(harness: Harness) -> None:
    h = harness
    h.fake.enqueue(turn(text("Plan: implement mean."), replace(STUB_BODY, GOOD_BODY)), stall(STALL, done()))
    began = time.monotonic()
    result = h.run(settings=fast_settings(max_minutes=BOUND))
    took = time.monotonic() - began

    assert result.status == "budget_exhausted", (result.status, result.error)
    assert took < 10, f"the run went on {took:.1f} s past a 3 s bound"
    assert result.error is not None and "Time budget reached" in result.error
    assert "max_minutes = 0.05" in result.error and "--max-minutes" in result.error
    assert result.summary.startswith("UNFINISHED")
    assert f"agentls runs resume {result.run_id}" in result.summary
    assert result.proposal is not None and not result.proposal.complete and not result.proposal.verified
    assert "+    return sum(values) / len(values)" in result.proposal.diff  # the work so far is kept
    [stop] = decisions(h, result, "budget_stop")
    assert stop["limit"] == "max_minutes" and stop["allowed"] == BOUND and stop["used"] >= BOUND
    # The stalled stream was billed for its prompt (message_start had come): the run counts it.
    assert [r.outcome for r in h.fake.message_requests] == ["reply", "stalled"]
    [cut] = decisions(h, result, "broken_streams")
    assert cut["cancelled"] is True and Usage.from_api(cut["usage"]).total_input_tokens > 0
    assert result.usage.total_input_tokens == prompt_side(h).total_input_tokens


def test_a_resumed_run_counts_the_time_its_first_part_took(harness: Harness) -> None:
    h = harness
    h.fake.enqueue(turn(text("Plan: implement mean."), replace(STUB_BODY, GOOD_BODY)), stall(STALL, done()))
    first = h.run(settings=fast_settings(max_minutes=BOUND))
    assert first.status == "budget_exhausted", (first.status, first.error)
    state = load_state(h.runs_dir, first.run_id)
    assert state.seconds >= BOUND * 60

    # The same bound again: the time is spent already, so no step starts and no request is made.
    again = h.agent(fast_settings(max_minutes=BOUND)).resume(state)
    assert again.status == "budget_exhausted" and again.error is not None, again
    assert "Time budget reached" in again.error and again.steps == first.steps
    assert len(h.fake.message_requests) == 2
    assert again.proposal is not None and "return sum(values)" in again.proposal.diff

    # A bigger bound goes on from there, and counts both parts.
    h.fake.enqueue(done())
    resumed = h.agent(fast_settings(max_minutes=2)).resume(load_state(h.runs_dir, again.run_id))
    assert resumed.status == "proposed", (resumed.status, resumed.error)
    before = load_state(h.runs_dir, again.run_id).seconds
    final = load_state(h.runs_dir, resumed.run_id).seconds
    assert final >= before + sum(resumed.step_seconds) > state.seconds


def test_a_command_in_flight_is_cut_at_the_time_bound(harness: Harness) -> None:
    """The command's own limit is 15 s; the run has 3 s: it is killed then, says why, and no model call
    follows (the time is up)."""
    h = harness
    h.fake.enqueue(turn(text("Plan: wait for the service."), bash("sleep 30; echo woke")))
    began = time.monotonic()
    result = h.run(settings=fast_settings(max_minutes=BOUND))
    took = time.monotonic() - began

    assert result.status == "budget_exhausted", (result.status, result.error)
    assert took < 10, f"the command ran {took:.1f} s under a 3 s bound"
    assert len(h.fake.message_requests) == 1
    [output] = [r["content"] for r in h.transcript_records(result) if r.get("type") == "tool_result"]
    assert "agent run's time (agent.max_minutes) ran out" in output and "woke" not in output


def test_a_question_nobody_answers_is_withdrawn_at_the_time_bound(harness: Harness) -> None:
    """The user walked away: the question waits for them (that time counts against the bound), and at
    the bound it is withdrawn and the run stops with its work. The turn that asked is not kept, so a
    resumed run asks again, and its answer is used."""
    h = harness
    asked: list[str] = []
    walked_away = threading.Event()

    def user_away(question: str, options: Sequence[str]) -> str:
        asked.append(question)
        walked_away.wait(30)
        return "too late"

    h.fake.enqueue(
        turn(text("Plan: implement mean."), replace(STUB_BODY, GOOD_BODY)),
        tool_use("ask_user", {"question": "Should an empty list raise?", "options": ["yes", "no"]}),
    )
    began = time.monotonic()
    try:
        result = h.run(settings=fast_settings(max_minutes=BOUND), ask=user_away)
    finally:
        walked_away.set()
    took = time.monotonic() - began

    assert asked == ["Should an empty list raise?"]
    assert result.status == "budget_exhausted", (result.status, result.error)
    assert took < 10, f"the question held the run {took:.1f} s past a 3 s bound"
    assert result.error is not None and "Time budget reached" in result.error
    assert result.summary.startswith("UNFINISHED")
    assert result.proposal is not None and "+    return sum(values) / len(values)" in result.proposal.diff
    [stop] = decisions(h, result, "budget_stop")
    assert stop["limit"] == "max_minutes" and stop["used"] >= BOUND
    [withdrawn] = decisions(h, result, "question_withdrawn")
    assert "ran out before the user answered" in withdrawn["reason"]
    assert len(h.fake.message_requests) == 2

    h.fake.enqueue(tool_use("ask_user", {"question": "Should an empty list raise?"}), done())
    resumed = h.agent(fast_settings(max_minutes=2), ask=lambda q, o: "yes").resume(
        load_state(h.runs_dir, result.run_id)
    )
    assert resumed.status == "proposed", (resumed.status, resumed.error)
    last = h.fake.message_requests[-1].body["messages"][-1]["content"]
    assert "The user answered: yes" in str(last)


def test_an_answer_just_after_the_time_bound_is_refused(caplog: pytest.LogCaptureFixture) -> None:
    """The bound alone decides whether an answer came in time: one that arrives after it is refused and
    logged, even when it arrives before the run's thread next looks for it (it polls every 0.1 s, and
    before, an answer within that poll was taken: an approval granted after the run's time was up)."""

    def answered_just_after(deadline: DeadlineEvent) -> AskCallback:
        def answer(question: str, options: Sequence[str]) -> str:
            while not deadline.expired:
                time.sleep(0.001)
            return ALLOW

        return bounded_ask(answer, lambda: deadline)

    for _ in range(3):  # the answer lands at different points of the poll
        bounded = answered_just_after(DeadlineEvent(threading.Event(), time.monotonic() + 0.25))
        with caplog.at_level(logging.WARNING, logger="agent.timebound"):
            assert not ask_approval(bounded, None, "Allow the install?", subject="install", detail="x")
            with pytest.raises(QuestionWithdrawn, match="ran out before the user answered"):
                bounded("Should an empty list raise?", ["yes", "no"])
        assert "after the run's time bound (or its cancel); refused" in caplog.text
        caplog.clear()
    in_time = DeadlineEvent(threading.Event(), time.monotonic() + 5)
    assert bounded_ask(lambda question, options: "no", lambda: in_time)("Should it raise?", []) == "no"


def test_no_step_starts_with_too_little_time_left() -> None:
    """A step needs 10 s, or a tenth of the bound when that is shorter; without a bound, no check."""
    assert Budget(max_minutes=10).step_seconds == 10.0 and Budget(max_minutes=0.5).step_seconds == 3.0
    budget = Budget(max_minutes=1)
    budget.check_time(55.0)  # 5 s left: the run is not over...
    with pytest.raises(BudgetExceeded, match="too little for another step") as stop:
        budget.check_time(55.0, step=True)  # ...but no step starts with them
    assert stop.value.limit == "max_minutes"
    with pytest.raises(BudgetExceeded, match=r"has taken 1 min 0 s against max_minutes = 1\."):
        budget.check_time(60.0)
    Budget().check_time(10_000.0, step=True)


# -- a stream the user cancels mid-reply -------------------------------------------------------------


def test_a_stream_cancelled_mid_reply_is_counted(harness: Harness) -> None:
    """The API bills the prompt a stream read before the user cancelled it (here: the whole prompt,
    written to the cache); the run's usage, cost and transcript said nothing of it."""
    h = harness
    h.fake.enqueue(stall(STALL, turn(text("Plan: implement mean."), replace(STUB_BODY, GOOD_BODY))))
    cancel = threading.Event()

    def cancel_once_streaming() -> None:
        deadline = time.monotonic() + 30
        while not h.fake.message_requests and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # message_start has reached the client
        cancel.set()

    threading.Thread(target=cancel_once_streaming, daemon=True).start()
    result = h.run(cancel=cancel)

    assert result.status == "cancelled" and result.proposal is None
    billed = prompt_side(h)
    assert billed.cache_creation_input_tokens > 0
    assert result.usage.total_input_tokens == billed.total_input_tokens
    assert result.usage.output_tokens == 1  # as far as the stream got (message_start says 1)
    assert result.cost == pytest.approx(result.usage.cost(fast_settings().model.model)) and result.cost > 0
    [cut] = decisions(h, result, "broken_streams")
    assert cut["cancelled"] is True
    [end] = [r for r in h.transcript_records(result) if r["type"] == "run_end"]
    assert end["status"] == "cancelled" and end["cost"] == pytest.approx(result.cost, abs=1e-6)
