"""`BackgroundIndexer` with the same folder opened twice (``/w/link`` -> ``/w/repo`` beside ``/w/repo``),
and with a folder removed before its job reaches the indexing process. Real indexing process, real
tree-sitter and LanceDB; the worker only records the jobs it is given (`RecordingWorker`)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from indexing.config import EmbeddingSettings, IndexSettings
from server.features.index_worker import IndexJob, IndexWorker, JobOutcome
from server.features.indexing import BackgroundIndexer
from server.features.progress import WorkDone

pytestmark = pytest.mark.timeout(90)


class RecordingWorker(IndexWorker):
    """The real indexing process's handle, keeping the (kind, root) of each job it runs."""

    def __init__(self, cache_dir: Path) -> None:
        super().__init__(cache_dir, {}, nice=0)
        self.jobs: list[tuple[str, Path]] = []
        self.phases: list[str] = []  # the progress phases the running job reported
        self.outcomes: list[JobOutcome] = []

    async def run(self, job: IndexJob, on_progress: Callable[[str, int, int], None]) -> JobOutcome:
        self.jobs.append((job.kind, job.root))

        def progress(phase: str, done: int, total: int) -> None:
            self.phases.append(phase)
            on_progress(phase, done, total)

        outcome = await super().run(job, progress)
        self.outcomes.append(outcome)
        return outcome


async def _until(check: Callable[[], bool], timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < end, "timed out"
        await asyncio.sleep(0.002)


@contextmanager
def background_indexer(
    cache: Path, notified: list[str] | None = None
) -> Iterator[tuple[BackgroundIndexer, RecordingWorker, list[str]]]:
    """An indexer over a recording worker, and the titles of the progresses it started; what it tells
    the user goes to `notified`."""
    tasks: set[asyncio.Task[Any]] = set()
    titles: list[str] = []

    def spawn(coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        tasks.add(task)
        return task

    async def start_progress(title: str, cancel: Callable[[], None]) -> WorkDone:
        titles.append(title)
        return WorkDone(None, "token")  # no client: a handle that sends nothing

    worker = RecordingWorker(cache)
    indexer = BackgroundIndexer(
        worker,
        cache_dir=cache,
        env={},
        start_progress=start_progress,
        spawn=spawn,
        notify=lambda message, error: None if notified is None else notified.append(message),
    )
    try:
        yield indexer, worker, titles
    finally:
        indexer.shutdown()
        worker.stop()
        for task in tasks:
            task.cancel()


SETTINGS = IndexSettings(embedding=EmbeddingSettings(provider="none"))


async def test_the_same_folder_under_two_paths_has_one_job_and_outlives_either_path(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "ledger.py").write_text("def alpha_ledger_total(items):\n    return sum(items)\n")
    link = tmp_path / "link"
    link.symlink_to(repo)
    with background_indexer(tmp_path / "cache") as (indexer, worker, titles):
        rebuild = [indexer.configure(repo, SETTINGS), indexer.configure(link, SETTINGS)]
        indexer.request_full(repo)
        indexer.request_full(link)
        await _until(lambda: bool(indexer.reports) and indexer.idle.is_set())
        assert worker.jobs == [("index", repo)]
        assert titles == ["agentls: indexing repo"]
        assert rebuild == [True, False]  # the same folder: nothing more to index
        assert {root: outcome.status for root, outcome in indexer.reports.items()} == {
            repo: "done",
            link: "done",
        }

        # A save seen under both paths (the editor names the file by one, a watcher by the other): one update.
        (repo / "ledger.py").write_text("def beta_ledger_total(items):\n    return sum(items)\n")
        indexer.request_paths(link, ["ledger.py"])
        indexer.request_paths(repo, ["ledger.py"])
        await _until(lambda: len(worker.jobs) >= 2 and indexer.idle.is_set())
        assert [kind for kind, _ in worker.jobs if kind != "fold"] == ["index", "update"]

        # The first path removed: the other keeps the index, fresh, with no new full run.
        indexer.remove(repo)
        assert indexer.configure(link, SETTINGS) is False
        (repo / "ledger.py").write_text("def gamma_ledger_total(items):\n    return sum(items)\n")
        indexer.request_paths(link, ["ledger.py"])
        await _until(lambda: ("update", link) in worker.jobs and indexer.idle.is_set())
        assert [kind for kind, _ in worker.jobs if kind != "fold"] == ["index", "update", "update"]
        hits = await indexer.search("gamma_ledger_total", 5)
        assert [(root, hit.path) for root, hit in hits if hit.symbol == "gamma_ledger_total"] == [
            (link, "ledger.py")
        ]
        assert set(indexer.reports) == {link}


async def test_the_same_folder_with_other_index_settings_says_whose_the_shared_index_uses(
    tmp_path: Path,
) -> None:
    """/w/link -> /w/repo opened beside /w/repo with other index settings: one index all the same, built
    with the first folder's; a message names both folders, the settings that differ and whose apply,
    once. Closing the first builds the index again with the other's settings, and says so."""
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "ledger.py").write_text("def alpha_ledger_total(items):\n    return sum(items)\n")
    link = tmp_path / "link"
    link.symlink_to(repo)
    other = SETTINGS.model_copy(update={"exclude": ["build/**"], "chunk_max_lines": 80})
    notified: list[str] = []
    with background_indexer(tmp_path / "cache", notified) as (indexer, worker, _):
        assert indexer.configure(repo, SETTINGS) is True
        assert indexer.configure(link, other) is False  # one index, as with equal settings
        (message,) = notified
        assert f"workspace folders {repo} and {link} are the same folder ({repo})" in message
        assert f"built with the index settings of {repo} (opened first)" in message
        assert f"those of {link} differ (index.chunk_max_lines, index.exclude)" in message
        assert "Give both folders the same index settings, or open the folder once." in message

        assert indexer.configure(link, other) is False  # the settings read again: said once
        assert indexer.configure(link, SETTINGS) is False  # made equal: nothing to say
        assert len(notified) == 1

        indexer.configure(link, other)
        indexer.remove(repo)
        assert notified[1:] == [
            f"workspace folder {repo} was removed: the index it shared with {link} (the same folder) is "
            f"built again with the index settings of {link}."
        ]
        await _until(lambda: bool(worker.jobs) and indexer.idle.is_set())
        assert worker.jobs == [("index", link)]


@pytest.mark.parametrize("when", ["before-it-reaches-the-process", "sent-not-yet-taken", "while-it-runs"])
async def test_a_folder_removed_during_its_job_is_cancelled_cleanly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, when: str
) -> None:
    # didChangeWorkspaceFolders removes a folder whose full index is running, or was picked and waits for
    # the indexing process to start (a folder added and removed at once). Before, in the second case: the
    # cancel was lost (the worker cleared it when it sent the job) and the folder was indexed in full.
    big = tmp_path / "big"
    big.mkdir()
    files = 600 if when == "while-it-runs" else 50
    for n in range(files):
        (big / f"m{n}.py").write_text("".join(f"def f{n}_{k}(x):\n    return x + {k}\n" for k in range(20)))
    settings = IndexSettings(embedding=EmbeddingSettings(provider="none"), uri=str(tmp_path / "index"))
    caplog.set_level(logging.INFO)
    with background_indexer(tmp_path / "cache") as (indexer, worker, _):
        indexer.configure(big, settings)
        indexer.request_full(big)
        if when == "while-it-runs":
            await _until(lambda: "indexing" in worker.phases)
        elif when == "sent-not-yet-taken":
            await _until(lambda: worker.pid is not None)
            await asyncio.sleep(0.05)  # the loop sends the job as soon as the process is started
        else:
            await _until(lambda: indexer._running is not None)
        indexer.remove(big)
        await _until(lambda: indexer.idle.is_set() and indexer._running is None)
        assert worker.jobs == [("index", big)]  # and no other job for it after
        assert [outcome.status for outcome in worker.outcomes] == ["cancelled"]
        if when != "while-it-runs":
            assert not (tmp_path / "index" / "lance").exists(), "the removed folder's job wrote its index"
        assert indexer.reports == {}
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text


async def test_the_search_process_loads_no_lsp_module(tmp_path: Path) -> None:
    # The search process unpickles the functions the server sends it, so it imports the module defining
    # them: beside the indexer (server.features.indexing) that was lsprotocol, the documents and the
    # overlay, about a second before a server's first search.
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "ledger.py").write_text("def alpha_ledger_total(items):\n    return sum(items)\n")
    with background_indexer(tmp_path / "cache") as (indexer, _, _):
        indexer.configure(repo, SETTINGS)
        indexer.request_full(repo)
        await _until(lambda: bool(indexer.reports) and indexer.idle.is_set())
        hits = await indexer.search("alpha_ledger_total", 5)
        assert [hit.symbol for _, hit in hits][:1] == ["alpha_ledger_total"]
        # `eval` is a builtin, so sending it imports nothing more there.
        loaded = indexer._search_pool().submit(eval, "sorted(__import__('sys').modules)").result(timeout=60)
        assert "indexing.service" in loaded
        assert [name for name in loaded if name.startswith(("lsprotocol", "pygls", "server.documents"))] == []
