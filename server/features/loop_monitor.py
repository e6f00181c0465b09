"""A heartbeat on the server's event loop that measures how long it stalls, and says where.

Every `interval` seconds a task wakes up and notes how late it woke: lateness is time the loop spent on
something else without yielding. The worst stall and a count of stalls over the threshold tell whether
any handler or callback blocks the loop (the server's promise is that none does for more than 50 ms).

A watcher thread looks every `interval` seconds whether the heartbeat is overdue by more than
`sample_after` (30 ms); if it is, it samples the stacks of the loop's thread and of every other thread
that runs Python code (`sys._current_frames`): the loop thread's stack says what blocks it, another
thread's says who may hold the GIL meanwhile. The most frequent samples come out in `LoopStats.stall_stacks`
("thread: innermost frames") and in the warning logged for each stall. Enabled by the
``server.loop_monitor`` setting; `agentls/serverStats` reports it.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field

__all__ = ["LoopMonitor", "LoopStats"]

log = logging.getLogger(__name__)

_FRAMES = 6
"""Innermost frames kept of a sampled stack."""
_IDLE = ("threading.py", "queue.py", "selectors.py", "concurrent/futures/thread.py")
"""Files whose innermost frame means a thread waits (for a lock, a queue, a selector): not worth listing."""


@dataclass(frozen=True, slots=True)
class LoopStats:
    beats: int
    max_stall_ms: float
    stalls_over_threshold: int
    threshold_ms: float
    stall_stacks: list[tuple[str, int]] = field(default_factory=list)
    """The most frequent stacks sampled while the loop was overdue, with their sample counts."""


def _describe(frame: object) -> str:
    summary = traceback.extract_stack(frame)[-_FRAMES:]  # type: ignore[arg-type]
    return " <- ".join(f"{_short(entry.filename)}:{entry.lineno} {entry.name}" for entry in reversed(summary))


def _short(filename: str) -> str:
    return filename.rsplit("/site-packages/", 1)[-1].rsplit("/main/", 1)[-1]


class LoopMonitor:
    def __init__(self, interval: float = 0.01, threshold: float = 0.05, sample_after: float = 0.03) -> None:
        self._interval = interval
        self._threshold = threshold
        self._sample_after = sample_after
        self._beats = 0
        self._max = 0.0
        self._over = 0
        self._due = 0.0  # perf_counter time the next beat is due; 0 = not running
        self._loop_thread = 0
        self._stacks: Counter[str] = Counter()
        self._pending: Counter[str] = Counter()  # samples of the stall in progress
        self._lock = threading.Lock()

    async def run(self) -> None:
        """Beat until cancelled; a watcher thread samples stacks while a beat is overdue."""
        loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        stop = threading.Event()
        watcher = threading.Thread(target=self._watch, args=(stop,), name="loop-monitor", daemon=True)
        expected = loop.time() + self._interval
        self._due = time.perf_counter() + self._interval
        watcher.start()
        try:
            while True:
                await asyncio.sleep(max(0.0, expected - loop.time()))
                late = loop.time() - expected
                self._beats += 1
                self._max = max(self._max, late)
                with self._lock:
                    where, self._pending = self._pending, Counter()
                if late > self._threshold:
                    self._over += 1
                    top = where.most_common(1)
                    log.warning(
                        "the event loop stalled for %.0f ms%s",
                        late * 1000,
                        f"; sampled in {top[0][0]}" if top else "",
                    )
                expected = loop.time() + self._interval
                self._due = time.perf_counter() + self._interval
        finally:
            stop.set()
            self._due = 0.0

    def _watch(self, stop: threading.Event) -> None:
        me = threading.get_ident()
        names: dict[int | None, str] = {}
        while not stop.wait(self._interval):
            due = self._due
            if not due or time.perf_counter() - due < self._sample_after:
                continue
            frames = sys._current_frames()
            if len(names) != len(frames):
                names = {t.ident: t.name for t in threading.enumerate()}
            samples = []
            for ident, frame in frames.items():
                if ident == me:
                    continue
                where = _describe(frame)
                if ident != self._loop_thread and where.split(":", 1)[0].endswith(_IDLE):
                    continue
                thread = "loop" if ident == self._loop_thread else names.get(ident, str(ident))
                samples.append(f"{thread}: {where}")
            with self._lock:
                self._stacks.update(samples)
                self._pending.update(samples)

    def reset(self) -> None:
        self._beats = 0
        self._max = 0.0
        self._over = 0
        with self._lock:
            self._stacks.clear()

    def stats(self) -> LoopStats:
        with self._lock:
            stacks = self._stacks.most_common(10)
        return LoopStats(self._beats, round(self._max * 1000, 2), self._over, self._threshold * 1000, stacks)
