"""The `delegate` tool's effect on the caller's context, and the solo role's prompt cache with the team tools.

Both runs are scripted against the fake Messages API (real SDK, real HTTP; its usage is about 4 characters
a token and its prompt cache honours the breakpoints), in the same session:

- exploration: the caller needs what 8 files of about 12,000 characters each say, then works 4 more steps.
  Inline, it views the 8 files itself; delegated, one `delegate` call has the explore sub-agent view them
  and the caller gets the report. Figures: the caller's last request in bytes (ratio delegated / inline;
  target <= 0.3), the caller's prompt tokens over the run, and the whole run's tokens (sub-agent included).
- prompt cache: a 10-step solo run with the solo role's tools as shipped (with `todo` and `delegate`) and
  without those two; the share of each request's prompt read from the cache after the first request
  (target: the median no more than 1 point lower with them).

Run: ``python -m pytest tests/benchmarks/test_delegate_context.py -m benchmark -s``.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
from pathlib import Path
from typing import Any

import pytest

from agent.loop import Agent, RunResult
from agent.models.anthropic import AnthropicModel
from agent.overlay import Overlay
from agent.roles import SOLO, Role
from agent.sandbox import Sandbox
from agent.task import Task
from agent.transcript import Transcript
from tests.agent.agent_harness import copy_workspace, fast_settings, view
from tests.benchmarks.harness import Entry, record, rerun_command
from tests.fakes.anthropic_server import FAKE_API_KEY, FakeAnthropic, cache_friendliness, text, tool_use

pytestmark = pytest.mark.benchmark

FILES = [f"pkg/module_{n}.py" for n in range(8)]
FOLLOW_UP = 4
RATIO = 0.3
CACHE_POINTS = 1.0


def _workspace(root: Path) -> Path:
    copy_workspace(root)
    (root / "pkg").mkdir()
    for number, path in enumerate(FILES):
        line = f"# module {number}: how requests are retried, logged and timed out in this part.\n"
        (root / path).write_text(f"def handler_{number}(request):\n    return request\n\n" + line * 150)
    return root


def _agent(fake: FakeAnthropic, root: Path, runs: Path, role: Role = SOLO) -> Agent:
    settings = fast_settings(verify=False, max_steps=60)
    return Agent(
        AnthropicModel(settings.model, api_key=FAKE_API_KEY, base_url=fake.url),
        settings,
        root=root,
        overlay=Overlay(root),
        sandbox=Sandbox(settings.sandbox),
        transcript=Transcript(runs, redact=[FAKE_API_KEY]),
        role=role,
    )


def _question() -> Task:
    return Task(kind="ask", instruction="Which handlers retry requests, and how?", edits_allowed=False)


def _follow_up() -> list[Any]:
    return [tool_use("find_symbol", {"name": f"handler_{n}"}) for n in range(FOLLOW_UP)]


ANSWER = (
    "Every handler returns the request unchanged: pkg/module_0.py:1-2 (`handler_0`) and the others alike."
)


def _caller(fake: FakeAnthropic, first: int) -> list[Any]:
    return [
        r for r in fake.message_requests[first:] if "explore sub-agent" not in json.dumps(r.body["system"])
    ]


def _prompt_tokens(requests: list[Any]) -> int:
    return sum(
        r.usage["input_tokens"] + r.usage["cache_creation_input_tokens"] + r.usage["cache_read_input_tokens"]
        for r in requests
        if r.usage is not None
    )


def test_delegate_keeps_the_callers_context_small_and_the_cache_warm(tmp_path: Path) -> None:
    root = _workspace(tmp_path / "ws")
    runs = tmp_path / "runs"
    with FakeAnthropic() as fake:
        fake.enqueue(*[view(path) for path in FILES], *_follow_up(), text(ANSWER))
        inline: RunResult = _agent(fake, root, runs).run(_question())
        inline_requests = _caller(fake, 0)
        start = len(fake.message_requests)
        fake.enqueue(
            tool_use("delegate", {"task": "Which handlers in pkg/ retry requests, and how?"}),
            *[view(path) for path in FILES],
            text(ANSWER),
            *_follow_up(),
            text(ANSWER),
        )
        delegated: RunResult = _agent(fake, root, runs).run(_question())
        delegated_requests = _caller(fake, start)

        # The prompt cache: the same 10-step run with and without the two team tools in the solo role.
        without = dataclasses.replace(
            SOLO, tools=tuple(t for t in SOLO.tools if t not in ("todo", "delegate"))
        )
        shares: dict[str, float] = {}
        for label, role in (("with", SOLO), ("without", without)):
            first = len(fake.message_requests)
            fake.enqueue(*[view(path) for path in FILES], *_follow_up()[:1], text(ANSWER))
            _agent(fake, root, runs, role).run(_question())
            ratios = cache_friendliness(fake.message_requests[first:])[1:]
            shares[label] = statistics.median(ratios) * 100

    assert inline.status == delegated.status == "no_changes"
    inline_last = len(json.dumps(dict(inline_requests[-1].body)).encode())
    delegated_last = len(json.dumps(dict(delegated_requests[-1].body)).encode())
    ratio = delegated_last / inline_last
    caller_inline, caller_delegated = _prompt_tokens(inline_requests), _prompt_tokens(delegated_requests)
    drop = shares["without"] - shares["with"]
    passed = ratio <= RATIO and drop <= CACHE_POINTS
    record(
        Entry(
            key="agent.delegate.context",
            title="delegate: the caller's context after an exploration of 8 files, and the solo prompt cache",
            target=f"caller's last request delegated / inline <= {RATIO:g}; median cache-read share with "
            f"todo and delegate in the solo tools no more than {CACHE_POINTS:g} point lower",
            measured=f"last request {delegated_last:,} vs {inline_last:,} bytes = {ratio:.2f}x; cache reads "
            f"median {shares['with']:.1f}% with vs {shares['without']:.1f}% without",
            passed=passed,
            figures={
                "last_request_bytes": {"inline": inline_last, "delegated": delegated_last},
                "ratio": round(ratio, 3),
                "caller_prompt_tokens": {"inline": caller_inline, "delegated": caller_delegated},
                "run_tokens": {
                    "inline": inline.usage.total_tokens,
                    "delegated": delegated.usage.total_tokens,
                },
                "run_cost_usd": {"inline": round(inline.cost, 5), "delegated": round(delegated.cost, 5)},
                "cache_read_median_pct": {k: round(v, 2) for k, v in shares.items()},
            },
            details=[
                f"caller's prompt tokens over the run: {caller_delegated:,} delegated vs "
                f"{caller_inline:,} inline",
                f"whole run (sub-agent included): {delegated.usage.total_tokens:,} vs "
                f"{inline.usage.total_tokens:,} tokens, ${delegated.cost:.4f} vs ${inline.cost:.4f}",
                "by role (delegated): "
                + ", ".join(
                    f"{r.role} {r.usage.total_tokens:,} tokens ${r.cost:.4f}" for r in delegated.roles
                ),
            ],
            rerun=rerun_command(
                "tests/benchmarks/test_delegate_context.py::"
                "test_delegate_keeps_the_callers_context_small_and_the_cache_warm"
            ),
        )
    )
    assert passed
