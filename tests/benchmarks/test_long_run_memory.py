"""Short-term memory on a long run: tokens sent, the largest request, cache reads and step overhead.

The run: 200 scripted steps (an edit, then views of a 40k-character file, each turn with a paragraph of
reasoning, then "done"), played twice in the same session by the same in-process model, once with the
memory on (`agent.memory` defaults, a 200k window) and once with it off and no window, so the ratio
compares the same conversation. The model is in-process (no HTTP) and accounts every request with the
fake Messages API's prompt cache (`tests.fakes.anthropic_server.PromptCache`, about 4 characters a
token) on the body the Anthropic provider would send (`with_cache_breakpoints`), and returns that usage,
as the API would; so the figures are the fake's token counts, not a real tokenizer's.

Figures:

- tokens sent: prompt tokens summed over the run's requests (condensation calls included), memory on
  vs off (ratio; target < 0.5);
- the largest request's prompt in tokens (target: under the 200k window with the memory on);
- cache-read share: cache reads / all prompt tokens over the run (target >= 0.90 with the defaults: with
  a 40k-character result every step about a tenth of each prompt is new and can only be written to the
  cache; each masking batch writes again the turns after the memory's cache anchor, the whole results
  it kept among them (as many as fit in `keep_share`, here one), and each condensation the new
  history). `AGENTLS_BENCH_MEMORY="0.85 1"` runs it with `mask_at = 0.85` and `keep_tool_results = 1`;
- step overhead: each step's wall time minus the time inside the model (the accounting), median (target
  < 100 ms with the memory on).

Run: ``python -m pytest tests/benchmarks/test_long_run_memory.py -m benchmark -s``.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from agent.config import AgentSettings, ModelSettings
from agent.loop import Agent, RunResult
from agent.memory import MemorySettings
from agent.models import ModelResponse
from agent.models.anthropic import with_cache_breakpoints
from agent.overlay import Overlay
from agent.sandbox import Sandbox, SandboxSettings
from agent.usage import Usage
from tests.agent.agent_harness import copy_workspace, mean_task
from tests.agent.test_long_runs import BIG, BIG_LINE, long_run_responder
from tests.fakes.anthropic_server import PromptCache, approx_tokens, count_prompt_tokens

pytestmark = pytest.mark.benchmark

STEPS = 200


@dataclass
class AccountingModel:
    """An in-process model answering from `respond(body)` with the usage the fake API would report."""

    respond: Callable[[Mapping[str, Any]], Any]
    cache: PromptCache = field(default_factory=PromptCache)
    prompts: list[int] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def model_name(self) -> str:
        return "claude-sonnet-5-5"

    @property
    def provider(self) -> str:
        return "anthropic"

    def close(self) -> None:
        pass

    def complete(
        self,
        system: str | Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]],
        messages: Sequence[Mapping[str, Any]],
        *,
        on_text: Callable[[str], None] | None = None,
        cancel: threading.Event | None = None,
        max_tokens: int | None = None,
    ) -> ModelResponse:
        started = time.perf_counter()
        system_blocks, tool_list, message_list = with_cache_breakpoints(system, tools, messages)
        body = {"model": self.model_name, "system": system_blocks, "tools": tool_list}
        body["messages"] = message_list
        usage = self.cache.account(body)
        self.prompts.append(count_prompt_tokens(body))
        reply = self.respond(body)
        content = tuple(dict(block) for block in reply.content)
        output = approx_tokens(sum(len(str(block)) for block in content))
        self.seconds += time.perf_counter() - started
        return ModelResponse(
            content=content,
            stop_reason=reply.effective_stop_reason(),
            usage=Usage(output_tokens=output, **usage),
            model=self.model_name,
        )


def _run(root: Path, runs: Path, memory: bool) -> tuple[RunResult, AccountingModel, list[float]]:
    respond, _ = long_run_responder(STEPS)
    model = AccountingModel(respond)
    tuned = os.environ.get("AGENTLS_BENCH_MEMORY", "").split()
    memory_settings = MemorySettings(enabled=memory)
    if memory and tuned:
        memory_settings = MemorySettings(mask_at=float(tuned[0]), keep_tool_results=int(tuned[1]))
    settings = AgentSettings(
        model=ModelSettings(max_tokens=4096, context_window=None if memory else 10_000_000),
        memory=memory_settings,
        max_steps=STEPS + 10,
        max_cost_usd=None,
        verify=False,
        sandbox=SandboxSettings(timeout_seconds=30),
    )
    inside: list[float] = []
    agent = Agent(
        model, settings, root=root, overlay=Overlay(root), sandbox=Sandbox(settings.sandbox), transcript=None
    )
    original = model.complete

    def timed(*args: Any, **kwargs: Any) -> ModelResponse:
        before = model.seconds
        try:
            return original(*args, **kwargs)
        finally:
            inside.append(model.seconds - before)

    model.complete = timed  # type: ignore[method-assign]
    result = agent.run(mean_task(root))
    return result, model, inside


def test_long_run_memory(tmp_path: Path) -> None:
    root = copy_workspace(tmp_path / "ws")
    (root / BIG).write_text(BIG_LINE * 480)
    on, on_model, on_inside = _run(root, tmp_path / "runs-on", memory=True)
    off, off_model, _ = _run(root, tmp_path / "runs-off", memory=False)
    assert on.status == "proposed" and off.status == "proposed", (on.error, off.error)

    sent_on, sent_off = on.usage.total_input_tokens, off.usage.total_input_tokens
    ratio = sent_on / sent_off
    share = on.usage.cache_read_input_tokens / sent_on
    share_off = off.usage.cache_read_input_tokens / sent_off
    # Step overhead: step wall time minus the model's own time (condensation calls fall inside steps).
    overhead = [
        (step - model) * 1000
        for step, model in zip(on.step_seconds, _per_step(on_inside, on.step_seconds), strict=True)
    ]
    median = statistics.median(overhead)
    print(
        f"\nlong run, {STEPS} steps of ~40k-character tool results:\n"
        f"  tokens sent: memory on {sent_on:,}, off {sent_off:,}: ratio {ratio:.3f}\n"
        f"  largest request: memory on {max(on_model.prompts):,} tokens, off {max(off_model.prompts):,}\n"
        f"  cache-read share: on {share:.3f}, off {share_off:.3f}\n"
        f"  requests: on {len(on_model.prompts)} (condensations included), off {len(off_model.prompts)}\n"
        f"  cost at list price: on ${on.cost:.2f}, off ${off.cost:.2f}\n"
        f"  step overhead (memory on): median {median:.1f} ms, max {max(overhead):.1f} ms"
    )
    assert max(on_model.prompts) < 200_000
    assert ratio < 0.5
    assert share >= 0.9
    assert median < 100


def _per_step(inside: list[float], steps: Sequence[float]) -> list[float]:
    """The model time of each step. A step with a condensation made two calls; the extra calls are
    folded into the steps whose wall time holds both (the first fit, in order)."""
    extra = len(inside) - len(steps)
    result: list[float] = []
    index = 0
    for step in steps:
        total = inside[index]
        index += 1
        if extra and index < len(inside) and total + inside[index] <= step:
            total += inside[index]
            index += 1
            extra -= 1
        result.append(total)
    return result
