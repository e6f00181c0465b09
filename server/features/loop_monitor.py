"""A heartbeat on the server's event loop that measures how long it stalls.

Every `interval` seconds a task wakes up and notes how late it woke: lateness is time the loop spent on
something else without yielding. The worst stall and a count of stalls over the threshold tell whether
any handler or callback blocks the loop (the server's promise is that none does for more than 50 ms).
Enabled by the ``server.loop_monitor`` setting; `agentls/serverStats` reports it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

__all__ = ["LoopMonitor", "LoopStats"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LoopStats:
    beats: int
    max_stall_ms: float
    stalls_over_threshold: int
    threshold_ms: float


class LoopMonitor:
    def __init__(self, interval: float = 0.01, threshold: float = 0.05) -> None:
        self._interval = interval
        self._threshold = threshold
        self._beats = 0
        self._max = 0.0
        self._over = 0

    async def run(self) -> None:
        """Beat until cancelled."""
        loop = asyncio.get_running_loop()
        expected = loop.time() + self._interval
        while True:
            await asyncio.sleep(max(0.0, expected - loop.time()))
            late = loop.time() - expected
            self._beats += 1
            self._max = max(self._max, late)
            if late > self._threshold:
                self._over += 1
                log.warning("the event loop stalled for %.0f ms", late * 1000)
            expected = loop.time() + self._interval

    def reset(self) -> None:
        self._beats = 0
        self._max = 0.0
        self._over = 0

    def stats(self) -> LoopStats:
        return LoopStats(self._beats, round(self._max * 1000, 2), self._over, self._threshold * 1000)
