"""A newer edit of an open document supersedes its prepare (`BackgroundIndexer.prepare`): one still
waiting is replaced, one already running in the indexing process is cancelled and its rows, of the older
text, are not kept. Real indexing process, real tree-sitter and LanceDB."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from indexing.config import EmbeddingSettings, IndexSettings
from server.features.index_worker import IndexWorker
from server.features.indexing import BackgroundIndexer
from server.features.progress import WorkDone

pytestmark = pytest.mark.timeout(60)


def _big_module(tag: str, functions: int = 4000) -> str:
    """A Python file whose parse takes long enough (~0.1 s and more) to be caught while it runs."""
    return "".join(f"def {tag}_{n}(x):\n    return x + {n}\n\n" for n in range(functions))


async def _until(check: Callable[[], bool], timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < end, "timed out"
        await asyncio.sleep(0.002)


async def test_a_newer_edit_cancels_the_running_prepare_and_its_rows_are_not_kept(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "big.py").write_text("def start():\n    return 0\n")
    tasks: set[asyncio.Task[Any]] = set()

    def spawn(coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        tasks.add(task)
        return task

    async def start_progress(title: str, cancel: Callable[[], None]) -> WorkDone:
        return WorkDone(None, "token")  # no client: a handle that sends nothing

    worker = IndexWorker(tmp_path / "cache", {})
    indexer = BackgroundIndexer(
        worker,
        cache_dir=tmp_path / "cache",
        env={},
        start_progress=start_progress,
        spawn=spawn,
        notify=lambda message, error: None,
    )
    settings = IndexSettings(embedding=EmbeddingSettings(provider="none"), uri=str(tmp_path / "index"))
    try:
        indexer.configure(root, settings)
        indexer.request_full(root)
        await _until(lambda: root in indexer.reports)
        await asyncio.wait_for(indexer.idle.wait(), 20)
        assert indexer.reports[root].status == "done", indexer.reports[root]

        older, newer = _big_module("older"), _big_module("newer")
        indexer.prepare(root, "big.py", older)
        await _until(lambda: (job := indexer._running) is not None and job.kind == "prepare")
        running = indexer._running
        indexer.prepare(root, "big.py", newer)  # typing goes on while the older text is parsed
        assert indexer._running is running, "the older text's prepare ended before the newer edit"
        # The older text is saved before the newer one is due: the save's update finds no prepared rows
        # of it (they were discarded), so it parses the file itself.
        (root / "big.py").write_text(older)
        indexer.request_paths(root, ["big.py"])
        await _until(lambda: indexer.reports[root].report is not None and indexer._running is None)
        await asyncio.wait_for(indexer.idle.wait(), 20)
        report = indexer.reports[root].report
        assert report is not None and report.files_indexed == 1, indexer.reports[root]
        assert report.files_prepared == 0, "the superseded prepare's rows were kept and used by the save"
    finally:
        indexer.shutdown()
        worker.stop()
        for task in tasks:
            task.cancel()
