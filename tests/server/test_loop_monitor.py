"""The event-loop heartbeat (`LoopMonitor`) measures a stall and says where the loop was stuck."""

from __future__ import annotations

import asyncio
import time

from server.features.loop_monitor import LoopMonitor


def _block_the_loop_for(seconds: float) -> None:
    time.sleep(seconds)  # what a handler doing blocking work on the loop looks like


async def test_a_stall_is_measured_and_its_stack_sampled() -> None:
    monitor = LoopMonitor(interval=0.01, threshold=0.05, sample_after=0.03)
    task = asyncio.ensure_future(monitor.run())
    try:
        await asyncio.sleep(0.05)
        _block_the_loop_for(0.15)
        await asyncio.sleep(0.05)
    finally:
        task.cancel()
    stats = monitor.stats()
    assert stats.max_stall_ms >= 100, stats
    assert stats.stalls_over_threshold >= 1, stats
    where = [stack for stack, _ in stats.stall_stacks if stack.startswith("loop: ")]
    assert where and "_block_the_loop_for" in where[0], stats.stall_stacks
    samples = dict(stats.stall_stacks)[where[0]]
    assert 2 <= samples <= 15, stats.stall_stacks  # every 10 ms once 30 ms late: 12 on an idle machine
