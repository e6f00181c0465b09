"""The server's indexing process gives its free memory back after a full index (`release_memory`): a
kernel-size first index leaves hundreds of MiB of freed heap resident in that long-lived process; a
worker still over its limit after that is replaced by a fresh one."""

from __future__ import annotations

import re
from pathlib import Path

from indexing.config import EmbeddingSettings, IndexSettings
from server.features.index_worker import IndexJob, IndexWorker


async def test_a_full_index_job_releases_memory_and_says_so(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "a.py").write_text("def answer():\n    return 42\n")
    logs: list[str] = []
    worker = IndexWorker(tmp_path / "cache", {}, on_log=lambda level, name, message: logs.append(message))
    settings = IndexSettings(embedding=EmbeddingSettings(provider="none"), uri=str(tmp_path / "index"))
    try:
        outcome = await worker.run(IndexJob("index", root, settings), lambda phase, done, total: None)
        update = await worker.run(IndexJob("update", root, settings, paths=("a.py",)), lambda *_: None)
    finally:
        worker.stop()
    assert outcome.status == "done" and update.status == "done", (outcome, update)
    released = [m for m in logs if "once its free memory was returned" in m]
    assert len(released) == 1, logs  # after the full index, not after the update
    before, after = (float(x) for x in re.findall(r"(\d+) MiB", released[0]))
    assert 0 < after <= before, released


async def test_a_worker_over_its_memory_limit_after_a_full_index_is_replaced(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "a.py").write_text("def answer():\n    return 42\n")
    logs: list[str] = []
    worker = IndexWorker(
        tmp_path / "cache", {}, on_log=lambda level, name, message: logs.append(message), recycle_mib=0.0
    )
    settings = IndexSettings(embedding=EmbeddingSettings(provider="none"), uri=str(tmp_path / "index"))
    try:
        first = await worker.run(IndexJob("index", root, settings), lambda phase, done, total: None)
        old = worker._proc
        (root / "b.py").write_text("def question():\n    return 6 * 7\n")
        update = await worker.run(IndexJob("update", root, settings, paths=("b.py",)), lambda *_: None)
        new = worker._proc
    finally:
        worker.stop()
    assert first.status == "done" and first.recycled, first
    assert update.status == "done" and not update.recycled and update.report is not None, update
    assert update.report.files_indexed == 1  # the fresh worker opened the same index
    assert old is not None and new is not None and new.process.pid != old.process.pid
    assert old.process.exitcode == 0  # it ended by itself after answering
    assert any("a fresh one takes over" in m for m in logs), logs
