"""The server's progress for a full index never stands still: a phase that reports nothing for a while
(starting the indexing process, opening the index, writing a batch) is reported again with its elapsed
time (`server.features.indexing.heartbeat`), and scanning says how many files it found."""

from __future__ import annotations

import asyncio

from indexing.progress import describe as phase_message
from server.features.indexing import PhaseClock, heartbeat
from server.features.progress import WorkDone


class RecordedProgress(WorkDone):
    """A progress handle that keeps what would be sent to the editor (no client)."""

    def __init__(self) -> None:
        super().__init__(None, "token")
        self.sent: list[tuple[str, int | None]] = []

    def report(self, message: str, percentage: int | None = None, *, force: bool = False) -> None:
        self.sent.append((message, percentage))


async def test_a_silent_phase_is_reported_again_with_its_elapsed_time() -> None:
    progress, clock = RecordedProgress(), PhaseClock()
    beat = asyncio.ensure_future(heartbeat(progress, clock, every=0.05))
    await asyncio.sleep(0.17)  # the indexing process is still starting
    message, percentage = phase_message("scanning", 12_000, 0)
    clock.update("scanning", message, percentage)
    await asyncio.sleep(0.17)
    beat.cancel()

    starting = [m for m, _ in progress.sent if m.startswith("Starting the indexer ")]
    scanning = [m for m, _ in progress.sent if m.startswith("Scanning files (12,000 found) ")]
    assert len(starting) >= 2 and len(scanning) >= 2, progress.sent
    assert all(m.endswith(" s") for m, _ in progress.sent)
    assert {p for _, p in progress.sent} == {0}


async def test_no_repeat_while_the_phase_reports_by_itself() -> None:
    progress, clock = RecordedProgress(), PhaseClock()
    beat = asyncio.ensure_future(heartbeat(progress, clock, every=0.5))
    for done in range(10):
        clock.update("indexing", *phase_message("indexing", done, 10))
        await asyncio.sleep(0.03)
    beat.cancel()
    assert progress.sent == []


def test_phase_messages() -> None:
    assert phase_message("starting", 0, 0) == ("Starting the indexer", 0)
    assert phase_message("scanning", 0, 0) == ("Scanning files", 0)
    assert phase_message("scanning", 2_000, 0) == ("Scanning files (2,000 found)", 0)
    assert phase_message("indexing", 500, 1_000) == ("Indexing 500/1,000 files", 40)
    assert phase_message("finishing/full-text index", 2, 0) == (
        "Building search indexes: full-text index",
        99,
    )
