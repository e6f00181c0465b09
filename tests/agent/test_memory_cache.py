"""Masking and condensing keep the prompt cache useful: the anchor they leave is a breakpoint the next
request reads back, so a batch of masking writes only the turns after it (the fake API's prompt cache)."""

from __future__ import annotations

import json
from typing import Any

from agent.memory import (
    CACHE_ANCHOR,
    MASKED_PREFIX,
    Memory,
    MemorySettings,
    condensed_history,
    estimate_tokens,
)
from agent.models.anthropic import with_cache_breakpoints
from agent.usage import Usage
from tests.fakes.anthropic_server import PromptCache

SYSTEM = "You are a careful engineer. " * 100
TOOLS: list[dict[str, Any]] = [
    {"name": "view", "description": "View a file.", "input_schema": {"type": "object"}}
]
RESULT = "2026-12-04 INFO worker processed batch in 12.5 ms\n" * 200  # ~10k characters
REASONING = "I keep reading the log to find the slow batches; nothing stands out yet. " * 40  # ~3k


def turn(number: int) -> list[dict[str, Any]]:
    use = {"type": "tool_use", "id": f"t{number}", "name": "view", "input": {"path": f"log{number}.txt"}}
    result = {"type": "tool_result", "tool_use_id": f"t{number}", "content": f"{number}\n{RESULT}"}
    return [
        {"role": "assistant", "content": [{"type": "text", "text": f"Step {number}. {REASONING}"}, use]},
        {"role": "user", "content": [result]},
    ]


def send(cache: PromptCache, messages: list[dict[str, Any]]) -> dict[str, int]:
    system, tools, wire = with_cache_breakpoints(SYSTEM, TOOLS, messages)
    assert all(CACHE_ANCHOR not in message for message in wire)  # never sent to the API
    assert (
        sum("cache_control" in b for part in (system, tools) for b in part)
        + sum("cache_control" in b for m in wire for b in m["content"])
        <= 4
    )
    return cache.account({"model": "m", "system": system, "tools": tools, "messages": wire})


def test_a_masking_batch_rewrites_only_the_turns_after_the_anchor() -> None:
    cache = PromptCache()
    memory = Memory(MemorySettings(keep_tool_results=3), 200_000)
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Find the slow batches."}]
    system_only = send(cache, messages)["cache_creation_input_tokens"]
    rewrites = []
    for number in range(1, 41):
        messages += turn(number)
        if number % 10 == 0:  # a batch of masking every ten steps
            first, count = memory.mask(messages)
            assert count > 0 and first is not None
            usage = send(cache, messages)
            rewrites.append(usage["cache_creation_input_tokens"])
            if len(rewrites) > 1:
                # Read back up to the previous batch's anchor, not just the system prompt and tools.
                assert usage["cache_read_input_tokens"] > system_only + (number - 20) * len(REASONING) // 4
        else:
            send(cache, messages)
    # Later batches write about the ten turns since the anchor (3 whole results, 7 stubs, the reasoning),
    # not the whole history: without the anchor each batch wrote everything after the system prompt.
    assert max(rewrites[1:]) - min(rewrites[1:]) < len(REASONING) // 4  # flat, not growing with the history
    anchors = [index for index, message in enumerate(messages) if message.get(CACHE_ANCHOR)]
    assert len(anchors) == 2  # the newest mark and the one before it, for the request right after a batch


def test_condensation_anchors_the_first_turn_and_the_note_after_the_handoff() -> None:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "task"}]
    for number in range(1, 8):
        messages += turn(number)
    messages[5] = {**messages[5], CACHE_ANCHOR: True}
    history = condensed_history(messages, "## Goal\nFind the slow batches.", keep_turns=2)
    assert [index for index, message in enumerate(history) if message.get(CACHE_ANCHOR)] == [0, 2]
    cache = PromptCache()
    send(cache, messages)
    after = send(cache, history)
    # The first turn's prefix is read back (it was not a breakpoint before the anchors existed).
    assert after["cache_read_input_tokens"] > 0
    _, _, wire = with_cache_breakpoints(SYSTEM, TOOLS, history)
    assert "cache_control" in wire[0]["content"][-1] and "cache_control" in wire[2]["content"][-1]


def test_a_batch_keeps_whole_only_the_newest_results_that_fit_keep_share() -> None:
    memory = Memory(MemorySettings(keep_tool_results=3, keep_share=0.05), 200_000)
    big = "x" * 40_000  # ~11k tokens each: three of them would be a sixth of the window
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Read the logs."}]
    for number in range(1, 6):
        messages += turn(number)
        messages[-1]["content"][0]["content"] = big
    memory.mask(messages)
    results = [b["content"] for m in messages[1:] for b in m["content"] if b.get("type") == "tool_result"]
    assert [r == big for r in results] == [False, False, False, False, True]
    # Small results: the newest three stay whole, as before.
    small = Memory(MemorySettings(keep_tool_results=3), 200_000)
    messages = [{"role": "user", "content": "Read the logs."}]
    for number in range(1, 6):
        messages += turn(number)
    small.mask(messages)
    results = [b["content"] for m in messages[1:] for b in m["content"] if b.get("type") == "tool_result"]
    assert [r.startswith(MASKED_PREFIX) for r in results] == [True, True, False, False, False]


def test_the_context_is_counted_at_the_rate_the_api_reports() -> None:
    memory = Memory(MemorySettings(mask_at=0.8), 50_000)
    memory.set_prefix(SYSTEM, TOOLS)
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Read the logs."}]
    for number in range(1, 9):
        messages += turn(number)
    chars = len(json.dumps(messages))
    # The API counted this conversation at about 4.6 characters a token, far fewer tokens than 3.5 a
    # token says: the next 40k characters still fit under mask_at (40k tokens).
    memory.observe(Usage(input_tokens=int(chars / 4.6)), messages)
    messages += turn(9)
    messages[-1]["content"][0]["content"] = "y" * 40_000
    plan = memory.plan(messages)
    assert plan.tokens < 40_000 and not plan.mask, plan
    assert estimate_tokens([SYSTEM, TOOLS, messages]) > 40_000  # what 3.5 a token says
    assert 4.0 < memory.chars_per_token <= 5.0
