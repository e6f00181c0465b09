"""The indexing process's priority is a setting (`server.index_nice`): 10 by default, so indexing yields
the CPU to the editor; 0 for test harnesses, whose other workers (the same session, so the same
autogroup, where niceness counts) left a first index of a tiny workspace waiting minutes."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from indexing.config import EmbeddingSettings, IndexSettings
from server.features.index_worker import IndexJob, IndexWorker
from server.settings import Settings, validate_settings


async def test_the_indexing_process_runs_at_the_niceness_the_setting_gives(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "a.py").write_text("def answer():\n    return 42\n")
    default = Settings().server.index_nice
    settings, messages = validate_settings({"server": {"index_nice": 0}})
    assert (default, settings.server.index_nice, messages) == (10, 0, [])
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    workers = {
        nice: IndexWorker(tmp_path / f"cache{nice}", {}, nice=nice)
        for nice in (default, settings.server.index_nice)
    }
    try:
        outcomes = await asyncio.gather(
            *(
                worker.run(
                    IndexJob(
                        "index",
                        root,
                        IndexSettings(
                            embedding=EmbeddingSettings(provider="none"), uri=str(tmp_path / f"index{nice}")
                        ),
                    ),
                    lambda phase, done, total: None,
                )
                for nice, worker in workers.items()
            )
        )
        assert [outcome.status for outcome in outcomes] == ["done", "done"], outcomes
        for nice, worker in workers.items():
            assert worker.pid is not None
            assert os.getpriority(os.PRIO_PROCESS, worker.pid) == min(ours + nice, 19), nice
    finally:
        for worker in workers.values():
            worker.stop()
