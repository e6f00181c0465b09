"""Background indexing of the workspace folders, and search over their indexes.

`BackgroundIndexer` keeps, per workspace folder, its index settings and what is waiting to be done: a
full index (at start, after `agentls.reindex`, when ignore files or index settings change) or a set of
changed files (saves, watched-file events). One drain task runs the jobs one after another in the
indexing process (`server.features.index_worker`); changes that arrive meanwhile pile up and go in the next
job, so a burst of saves costs one update. While an open document is edited, its text is prepared for its
save once typing pauses (`prepare`: parsed and chunked in the indexing process, nothing written; a newer
text cancels the document's prepare still running), so the save's update only writes rows; after the
update, a quiet job puts the saved rows in the full-text index (`WorkspaceIndex.fold`), so later
searches do not read them one by one. Full runs report ``$/progress`` and can be cancelled from the
editor; what was committed before a cancel stays in the index. A phase that reports nothing for a
second (starting the indexing process, opening the index, writing a batch) is reported again with its
elapsed time (`heartbeat`), so the editor's progress never stands still.

Another process may hold the index's write lock (a second editor's server on the same workspace,
``agentls index``): a job it refuses is tried again with backoff (`LOCKED_RETRY_SECONDS`), a save's files
with the files changed meanwhile, so no change is dropped. An index whose folder was deleted while the
server runs (the cache cleared) is indexed again in full, at the next job or search.

Search reads the same indexes in a separate search process (`server.features.search_process`):
importing LanceDB and loading the embedding model take seconds of GIL-bound work, ranking is Python, and
none of it may stall the event loop. The search process keeps one read-only `WorkspaceIndex` per folder,
opened once the index exists on disk (opening one earlier would create tables while the indexing process
creates them too), and refreshed when the folder's *generation* moved (it grows after every finished job),
so new rows are seen, and at most every `READER_REFRESH_SECONDS` (in that module) otherwise, so are the
rows other processes write.

A hit whose file is gone from disk is not returned: an editor that does not watch files (Neovim on Linux,
0.7 to 0.12) says nothing when a folder is moved or deleted (``:!mv``, netrw, a shell), and until the next
quiet refresh search kept offering the old paths. The search that finds one has the outermost gone
folder (or the file) updated, which removes its rows, and a quiet refresh finds where it went
(`_gone_from_disk`).

A folder may hold another workspace folder (a monorepo and one of its packages opened beside it, one of
them maybe through a symbolic link: `server.documents.nesting`): both indexes hold the inner folder's
files, and a save or a watched change there updates both
(`server.workspace.Folders.route`), so the outer one is as fresh as the inner. A search over both returns
each such hit once, from the inner folder (the folder that owns the file everywhere else: code actions,
runs); a search of the outer folder alone (a run there) finds them in its own index.

The same folder may be opened twice (``/w/link`` -> ``/w/repo`` beside ``/w/repo``; equal real paths and
index locations): both share one state (`_Folder.roots`, reference-counted), so one job indexes it, under
the first one's path and settings, and a change named through either path goes in the same job. When the
second one's own index settings differ, a message (once per difference) names both folders, the settings
that differ and whose the index is built with, and says what to do. Removing one leaves the other with it
all (jobs go on under its path; built again with its settings, and a message, when they differ); removing
the last cancels its job, one not yet sent to the indexing process included, which then never starts
there (`IndexWorker.run`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from indexing.config import IndexSettings
from indexing.lifeline import die_with_parent, end_pool, forkserver_context
from indexing.models import IndexReport, SearchHit, Symbol
from indexing.progress import describe as describe_progress
from server.documents import nesting, real_path
from server.features.index_worker import IndexJob, IndexWorker, JobOutcome
from server.features.progress import WorkDone
from server.features.search_process import (
    ReaderSpec,
    read_in_process,
    search_in_process,
    tables_exist,
    warm_up,
)

__all__ = [
    "BackgroundIndexer",
    "PhaseClock",
    "SearchProcessIndex",
    "describe_report",
    "heartbeat",
]

_T = TypeVar("_T")

log = logging.getLogger(__name__)

ProgressStarter = Callable[[str, Callable[[], None]], Awaitable[WorkDone]]
Spawner = Callable[[Coroutine[Any, Any, Any], str], "asyncio.Task[Any]"]


HEARTBEAT_SECONDS = 1.0
"""A phase that reports nothing for this long (opening the index, a batch being written, the search
indexes being built) is reported again with its elapsed time, so the editor never shows a stale
progress."""


@dataclass(slots=True)
class PhaseClock:
    """The latest progress message of a full index, and when its phase began and it was last sent."""

    phase: str = "starting"
    message: str = "Starting the indexer"
    percentage: int | None = 0
    phase_started: float = field(default_factory=time.monotonic)
    reported: float = field(default_factory=time.monotonic)

    def update(self, phase: str, message: str, percentage: int | None) -> None:
        now = time.monotonic()
        if phase != self.phase:
            self.phase, self.phase_started = phase, now
        self.message, self.percentage, self.reported = message, percentage, now


async def heartbeat(progress: WorkDone, clock: PhaseClock, every: float = HEARTBEAT_SECONDS) -> None:
    """Until cancelled: when nothing was reported for `every` seconds, report the latest message again
    with the seconds its phase has run ("Scanning files (12,000 found) 14 s")."""
    while True:
        await asyncio.sleep(every / 4)
        now = time.monotonic()
        if now - clock.reported >= every:
            clock.reported = now
            progress.report(
                f"{clock.message} {now - clock.phase_started:.0f} s", clock.percentage, force=True
            )


def describe_report(report: IndexReport) -> str:
    """One line for the end of a progress and the log."""
    text = (
        f"{report.files_seen:,} files, {report.files_indexed:,} indexed, {report.files_removed:,} removed, "
        f"{report.chunks:,} chunks written in {report.seconds:.1f} s"
    )
    if report.lexical_only:
        text += " (lexical search only)"
    elif report.embedding_failed:
        text += " (some without vectors: the embedding endpoint failed)"
    return text


PREPARE_DELAY = 0.3
"""Seconds an open document must go unchanged before its text is prepared for the index: a pause in
typing, not every keystroke (a large file costs the indexing process about 0.1 s to parse)."""

_REFRESH_SHARE = 20
"""A quiet refresh that took t seconds is not repeated within 20 t: at most 5% of a core, however large
the workspace (walking 100,000 files takes seconds)."""

LOCKED_RETRY_SECONDS = 0.5
"""A job refused because another process was writing the index (another editor's server on the same
workspace, ``agentls index``) is tried again after this long, doubled each time it is refused again up to
`LOCKED_RETRY_MAX_SECONDS`: its changes are not lost, and this server's search then sees them."""
LOCKED_RETRY_MAX_SECONDS = 10.0


def _gone_from_disk(root: Path, rel: str) -> str | None:
    """None when the file `rel` of `root` is there, else the outermost of its folders that is gone (a
    folder moved or deleted), or itself."""
    if (root / rel).exists():
        return None
    parts = rel.split("/")
    for depth in range(1, len(parts)):
        if not root.joinpath(*parts[:depth]).exists():
            return "/".join(parts[:depth])
    return rel


@dataclass(eq=False)
class _Folder:
    """What one index needs done, shared by the workspace folders that are the same folder (`roots`)."""

    settings: IndexSettings
    roots: list[Path] = field(default_factory=list)
    """The workspace folders that are this folder, their links resolved, in the order they came: the
    first one's path and settings run the jobs. Its reference count: it is forgotten with the last."""
    outcome: JobOutcome | None = None  # of its last index or update job
    full: bool = False
    refresh: bool = False  # a quiet full run was asked for (no file watchers)
    next_refresh: float = 0.0  # time.monotonic() before which no refresh runs (see request_refresh)
    paths: set[str] = field(default_factory=set)
    prepare: dict[str, tuple[str, float]] = field(default_factory=dict)
    """Open documents to prepare (`BackgroundIndexer.prepare`): path -> (newest text, when it is due)."""
    fold: bool = False  # rows were written: put them in the full-text index (a quiet job, after the rest)
    ready: bool = False  # a job finished in this session, so the index tables exist
    generation: int = 0  # grows after every finished job: the search process refreshes its reader
    locked: int = 0  # jobs in a row refused because another process was writing the index
    retry_at: float = 0.0  # time.monotonic() before which a job refused so is not tried again


def _under(rel: str, prefixes: Iterable[str]) -> bool:
    return any(rel == prefix or rel.startswith(prefix + "/") for prefix in prefixes)


class BackgroundIndexer:
    """Schedules index jobs for the workspace folders and searches their indexes."""

    def __init__(
        self,
        worker: IndexWorker,
        *,
        cache_dir: Path,
        env: Mapping[str, str],
        start_progress: ProgressStarter,
        spawn: Spawner,
        notify: Callable[[str, bool], None],
    ) -> None:
        """`notify(message, is_error)` tells the user about a problem they can act on."""
        self._worker = worker
        self._cache_dir = cache_dir
        self._env = dict(env)
        self._start_progress = start_progress
        self._spawn = spawn
        self._notify = notify
        self._folders: dict[Path, _Folder] = {}  # each workspace folder -> its index's (maybe shared) state
        self._own: dict[Path, IndexSettings] = {}  # each workspace folder's own index settings
        self._drain: asyncio.Task[Any] | None = None
        self._running: IndexJob | None = None  # the job in the indexing process now
        self._running_for: _Folder | None = None  # the folder it runs for
        self._searcher: ProcessPoolExecutor | None = None
        self._told: set[str] = set()
        self._prepare_timer: asyncio.TimerHandle | None = None
        self._retry_timer: asyncio.TimerHandle | None = None
        self.idle = asyncio.Event()
        self.idle.set()

    @property
    def reports(self) -> dict[Path, JobOutcome]:
        """The outcome of each folder's last index or update job (for tests and `agentls/serverStats`);
        the same folder opened twice has one, under both paths."""
        return {root: folder.outcome for root, folder in self._folders.items() if folder.outcome is not None}

    @property
    def roots(self) -> list[Path]:
        return list(self._folders)

    def configure(self, root: Path, settings: IndexSettings) -> bool:
        """Add a folder or update its settings; True when its index must be rebuilt (new or changed).

        A folder that is one already configured (their paths with links resolved and their index
        locations are equal: ``/w/link`` -> ``/w/repo`` beside ``/w/repo``) shares its state: one job
        indexes them both, under the first one's path and settings (the second one's settings count once
        it is the first: `remove`). Adding it needs no index: False."""
        self._own[root] = settings
        folder = self._folders.get(root)
        if folder is not None:
            if folder.roots[0] != root:  # the same folder opened first under another path decides
                self._tell_unused(folder, root)
                return False
            if folder.settings.model_dump() == settings.model_dump():
                return False
            folder.settings = settings
            folder.ready = False
            for other in folder.roots[1:]:
                self._tell_unused(folder, other)
            return True
        same = self._same_folder(root, settings)
        if same is not None:
            same.roots.append(root)
            self._folders[root] = same
            log.info(
                "workspace folder %s is %s (links resolved): one index, indexed once", root, same.roots[0]
            )
            self._tell_unused(same, root)
            return False
        self._folders[root] = _Folder(settings, roots=[root])
        return True

    def _tell_unused(self, folder: _Folder, root: Path) -> None:
        """Tell the user, once per difference, when `root` shares `folder`'s index (the same folder opened
        under two paths) while its own index settings differ from the ones the index is built with, the
        first folder's: which folders, which settings, whose apply, and what to do."""
        first, own = folder.roots[0], self._own.get(root)
        if own is None or root == first:
            return
        mine, used = own.model_dump(), folder.settings.model_dump()
        differ = sorted(key for key in mine.keys() | used.keys() if mine.get(key) != used.get(key))
        if not differ:
            return
        self._tell(
            f"workspace folders {first} and {root} are the same folder ({real_path(root)}), so they share "
            f"one index, built with the index settings of {first} (opened first); those of {root} differ "
            f"({', '.join(f'index.{key}' for key in differ)}) and are not used while {first} is open. Give "
            "both folders the same index settings, or open the folder once.",
            False,
        )

    def _same_folder(self, root: Path, settings: IndexSettings) -> _Folder | None:
        """The state of a configured folder that `root` is: the same real path and index location."""
        key = (real_path(root), self._location_of(root, settings))
        for other, folder in self._folders.items():
            if (real_path(other), self._location_of(other, folder.settings)) == key:
                return folder
        return None

    def remove(self, root: Path) -> None:
        """Forget a folder (the editor closed it, or it may not be indexed): its running job is cancelled,
        also one not yet in the indexing process (it never starts there), and its queued jobs dropped;
        its index stays in the cache for next time. The same folder still open under another path
        (`configure`) keeps it all: its jobs go on under that path, with that folder's settings (a full
        run when they differ)."""
        folder = self._folders.pop(root, None)
        self._own.pop(root, None)
        if folder is None:
            return
        was_first = folder.roots[0] == root
        folder.roots.remove(root)
        if not folder.roots:
            if self._running is not None and self._running_for is folder:
                self._worker.cancel(self._running)
            return
        if was_first:
            first = folder.roots[0]
            settings = self._own.get(first, folder.settings)
            log.info("workspace folder %s removed; its index goes on under %s", root, first)
            if settings.model_dump() != folder.settings.model_dump():
                folder.settings, folder.ready, folder.full = settings, False, True
                self._tell(
                    f"workspace folder {root} was removed: the index it shared with {first} (the same "
                    f"folder) is built again with the index settings of {first}.",
                    False,
                )
                for other in folder.roots[1:]:
                    self._tell_unused(folder, other)
                self._kick()

    def retarget(self, root: Path) -> None:
        """The folder's symbolic link leads elsewhere now (`server.workspace.Folders.relinked`): what was
        running or waiting for it was for the old target (a running job under its path is cancelled,
        texts waiting to be prepared are dropped), and its index is the one where it leads (the location
        follows the real path; the indexing and search processes open it at their next call), not ready
        until a full run (`request_full`, which the server asks for once the folder's settings are read
        again). A folder that was the same as another leaves it (whose index stays as it was, a cancelled
        job run again), and one that leads to another now joins it."""
        folder = self._folders.pop(root, None)
        if folder is None:
            return
        folder.roots.remove(root)
        folder.prepare.clear()
        if self._running is not None and self._running.root == root:
            self._worker.cancel(self._running)
            if folder.roots:  # the job walked the old path: the folder still open there is indexed again
                folder.full = True
                self._kick()
        if self.configure(root, self._own.get(root, folder.settings)):
            moved = self._folders[root]
            moved.generation = folder.generation + 1

    def request_full(self, root: Path) -> None:
        folder = self._folders.get(root)
        if folder is None:
            return
        folder.full = True
        self._kick()

    def request_refresh(self, root: Path) -> None:
        """A quiet full run, for editors that cannot watch files: finds files changed outside the editor
        without showing progress. Skipped while the folder has never been indexed or a job is queued."""
        folder = self._folders.get(root)
        if folder is None or not folder.ready or folder.full or folder.paths:
            return
        if time.monotonic() < folder.next_refresh:
            return  # a large workspace: refreshes take at most 1/_REFRESH_SHARE of the time
        folder.refresh = True
        self._kick()

    def request_paths(self, root: Path, paths: Iterable[str]) -> None:
        folder = self._folders.get(root)
        if folder is None:
            return
        for path in paths:
            if path:
                folder.paths.add(path)
                folder.prepare.pop(path, None)  # the update reads what was saved: nothing left to prepare
        if folder.paths:
            self._kick()

    def prepare(self, root: Path, path: str, text: str) -> None:
        """An open document changed: once it has been left alone for `PREPARE_DELAY`, its text is parsed
        and chunked in the indexing process (`WorkspaceIndex.prepare`), so that when it is saved with
        that text, its update only writes rows. The newest text replaces one still waiting, and cancels
        the document's prepare already running (its rows, of an older text, are not kept); other jobs go
        first. Nothing is prepared in a folder not indexed yet in this session (its first full run
        is still to come or running)."""
        folder = self._folders.get(root)
        if folder is None or not folder.ready or not path:
            return
        loop = asyncio.get_running_loop()
        folder.prepare.pop(path, None)
        folder.prepare[path] = (text, loop.time() + PREPARE_DELAY)
        running = self._running
        if (
            running is not None
            and running.kind == "prepare"
            and self._running_for is folder
            and running.paths == (path,)
        ):
            self._worker.cancel(running)  # superseded: `WorkspaceIndex.prepare` stops and keeps nothing
        self.idle.clear()
        if self._prepare_timer is not None:
            self._prepare_timer.cancel()
        self._prepare_timer = loop.call_later(PREPARE_DELAY, self._kick)

    def cancel(self) -> None:
        """Cancel the running job, if any."""
        self._worker.cancel()

    def _kick(self) -> None:
        self.idle.clear()
        if self._drain is None or self._drain.done():
            self._drain = self._spawn(self._run_jobs(), "indexing")

    def _shared(self) -> list[_Folder]:
        """Each index's state once (the same folder opened twice shares one), in the folders' order."""
        return list({id(folder): folder for folder in self._folders.values()}.values())

    def _next_job(self) -> tuple[IndexJob, _Folder] | None:
        due = time.monotonic()
        folders = self._shared()
        for folder in folders:
            if folder.full and due >= folder.retry_at:
                folder.full = False
                folder.refresh = False
                folder.paths.clear()  # the full run covers them
                return IndexJob("index", folder.roots[0], folder.settings), folder
        for folder in folders:
            if folder.paths and due >= folder.retry_at:
                paths = tuple(sorted(folder.paths))
                folder.paths.clear()
                return IndexJob("update", folder.roots[0], folder.settings, paths), folder
        for folder in folders:
            if folder.refresh and due >= folder.retry_at:
                folder.refresh = False
                return IndexJob("index", folder.roots[0], folder.settings, quiet=True), folder
        now = asyncio.get_running_loop().time()
        for folder in folders:
            for path, (text, due) in folder.prepare.items():
                if due <= now + 0.01:  # a timer may fire a clock tick early
                    del folder.prepare[path]
                    return IndexJob("prepare", folder.roots[0], folder.settings, (path,), text=text), folder
        for folder in folders:
            if folder.fold:
                folder.fold = False
                return IndexJob("fold", folder.roots[0], folder.settings), folder
        return None

    def _preparing(self) -> bool:
        """Whether documents wait to be prepared (their timer starts the jobs)."""
        return any(folder.prepare for folder in self._folders.values())

    def _retry_in(self) -> float | None:
        """Seconds until the first job refused by another process's lock is due again; None when none
        waits."""
        waits = [
            folder.retry_at - time.monotonic()
            for folder in self._folders.values()
            if folder.locked and (folder.full or folder.paths or folder.refresh)
        ]
        return max(0.0, min(waits)) if waits else None

    async def _run_jobs(self) -> None:
        try:
            while (next_job := self._next_job()) is not None:
                job, folder = next_job
                self._running, self._running_for = job, folder
                try:
                    visible = job.kind == "index" and not job.quiet
                    outcome = await (self._run_full(job) if visible else self._run_update(job))
                finally:
                    self._running = self._running_for = None
                if job.kind == "prepare":  # nothing was written; the save's update reports
                    if outcome.status != "done":
                        log.info("preparing %s for its save: %s", job.paths[0], outcome.message)
                    continue
                if job.kind == "fold":  # searches see the folded index; a failure costs speed only
                    if outcome.status == "done":
                        folder.generation += 1
                    else:
                        log.info("folding new rows into the full-text index: %s", outcome.message)
                    continue
                if not folder.roots:  # removed, or its link retargeted, meanwhile: no news for the user
                    log.info(
                        "%s (workspace folder %s: removed, or it leads elsewhere now)",
                        outcome.message or outcome.status,
                        job.root,
                    )
                    continue
                folder.outcome = outcome
                await self._after(job, folder, outcome)
        finally:
            retry = self._retry_in()
            if retry is not None:  # a job another process's lock refused: it is tried again then
                if self._retry_timer is not None:
                    self._retry_timer.cancel()
                self._retry_timer = asyncio.get_running_loop().call_later(retry, self._kick)
            elif not self._preparing():
                self.idle.set()

    async def _run_full(self, job: IndexJob) -> JobOutcome:
        name = job.root.name or str(job.root)
        progress = await self._start_progress(f"agentls: indexing {name}", self._worker.cancel)
        clock = PhaseClock()
        progress.report(clock.message, clock.percentage, force=True)

        def on_progress(phase: str, done: int, total: int) -> None:
            message, pct = describe_progress(phase, done, total)
            clock.update(phase, message, pct)
            progress.report(message, pct)

        beat = asyncio.ensure_future(heartbeat(progress, clock))
        outcome = JobOutcome("error", None, "indexing did not finish")
        try:
            outcome = await self._worker.run(job, on_progress)
        finally:
            beat.cancel()
            if outcome.status == "done" and outcome.report is not None:
                progress.end(f"Indexed {name}: {describe_report(outcome.report)}")
            else:
                progress.end(outcome.message or f"Indexing {name} stopped")
        return outcome

    async def _run_update(self, job: IndexJob) -> JobOutcome:
        return await self._worker.run(job, lambda *_: None)

    async def _after(self, job: IndexJob, folder: _Folder, outcome: JobOutcome) -> None:
        if outcome.status == "done" and outcome.report is not None:
            report = outcome.report
            if job.quiet:
                changed = report.files_indexed or report.files_removed
                (log.info if changed else log.debug)("refreshed %s: %s", job.root, describe_report(report))
            elif job.kind == "index":
                log.info("indexed %s: %s", job.root, describe_report(report))
            else:
                prepared = (
                    f" ({report.files_prepared} prepared while editing)" if report.files_prepared else ""
                )
                log.info(
                    "re-indexed %d changed file(s) in %s in %.0f ms%s",
                    len(job.paths),
                    job.root,
                    report.seconds * 1000,
                    prepared,
                )
            for error in report.errors:  # the embedding endpoint failed: the index is written without vectors
                self._tell(f"{job.root}: {error}", False)
            if report.lexical_only and report.notice:
                self._tell(report.notice, False)
            unchanged = job.quiet and not (report.files_indexed or report.files_removed)
            if job.quiet:
                folder.next_refresh = time.monotonic() + _REFRESH_SHARE * report.seconds
            folder.ready, folder.locked = True, 0
            if not unchanged:  # the search process reopens its reader on a new generation
                folder.generation += 1
            if job.kind == "update" and report.files_indexed:
                folder.fold = True
        elif outcome.status == "cancelled":
            log.info("%s", outcome.message or "indexing cancelled")
        elif outcome.status == "locked":
            self._retry_locked(job, folder, outcome.message or "another process is writing the index")
        else:
            self._tell(f"agentls could not index {job.root}: {outcome.message}", True)

    def _retry_locked(self, job: IndexJob, folder: _Folder, message: str) -> None:
        """Another process was writing the index (another editor's server on this workspace, ``agentls
        index``): try the job again once it may be done, its files with any changed meanwhile, a full
        run without progress. Only a full run's refusal is told, once: an update's is no news to act on."""
        delay = min(LOCKED_RETRY_SECONDS * 2**folder.locked, LOCKED_RETRY_MAX_SECONDS)
        folder.locked += 1
        folder.retry_at = time.monotonic() + delay
        if job.kind == "update":
            folder.paths.update(job.paths)
        else:
            folder.refresh = True
        if job.kind == "index" and not job.quiet:
            self._tell(f"{message}; search uses the index as it is until agentls can index it", False)
        else:
            log.info("%s; trying again in %.1f s", message, delay)

    def _tell(self, message: str, is_error: bool) -> None:
        if message in self._told:
            log.info("%s", message)
            return
        self._told.add(message)
        (log.error if is_error else log.warning)("%s", message)
        self._notify(message, is_error)

    # ------------------------------------------------------------------ search
    def _search_pool(self) -> ProcessPoolExecutor:
        if self._searcher is None:
            context = forkserver_context()
            self._searcher = ProcessPoolExecutor(
                max_workers=1, mp_context=context, initializer=die_with_parent, initargs=(os.getpid(),)
            )
        return self._searcher

    async def search(
        self, query: str, limit: int, path: Path | None = None, files: bool = False, diverse: bool = True
    ) -> list[tuple[Path, SearchHit]]:
        """The best `limit` hits over every folder (or the folder holding `path`, restricted to it);
        ``files``: each file once (`WorkspaceIndex.search`'s files view); ``diverse``: as there."""
        loop = asyncio.get_running_loop()
        jobs = []
        searched: set[Path] = set()
        for root, folder in list(self._folders.items()):
            scope: str | None = None
            if path is not None:
                try:
                    rel = path.relative_to(root).as_posix()
                except ValueError:
                    continue
                scope = None if rel in ("", ".") else rel
            location = self._location(root, folder)
            if location in searched:  # the same folder named twice (once through a link): one index
                continue
            searched.add(location)
            self._notice_deleted(root, folder)
            spec = self._reader_spec(folder)
            job = loop.run_in_executor(
                self._search_pool(), search_in_process, spec, query, limit, scope, files, diverse
            )
            jobs.append((root, job))
        results: list[tuple[Path, SearchHit]] = []
        # A workspace folder inside another (``packages/billing`` beside its repository, either maybe opened
        # through a symbolic link) is indexed by both: its files' hits come from the inner one alone.
        nested = nesting(root for root, _ in jobs)
        for root, job in jobs:
            try:
                hits = await job
            except BrokenProcessPool:
                log.error("the search process died; it restarts with the next search")
                self._searcher = None
                continue
            except Exception:
                log.exception("search in %s failed", root)
                continue
            hits = [
                hit for hit in hits if not _under(hit.path, [prefix for _, prefix in nested.get(root, [])])
            ]
            results.extend((root, hit) for hit in self._still_there(root, hits))
        results.sort(key=lambda item: item[1].score, reverse=True)
        return results[:limit]

    def _still_there(self, root: Path, hits: list[SearchHit]) -> list[SearchHit]:
        """`hits` without those whose file is gone from disk; their rows are removed (see the module
        docstring), and a quiet refresh is asked for to find where they went."""
        gone: dict[str, str | None] = {}
        for hit in hits:
            if hit.path not in gone:
                gone[hit.path] = _gone_from_disk(root, hit.path)
        missing = {where for where in gone.values() if where is not None}
        if not missing:
            return hits
        log.info("search found %s gone from %s; updating the index", ", ".join(sorted(missing)), root)
        self.request_refresh(root)  # before the paths: a refresh waits while paths are queued
        self.request_paths(root, missing)
        return [hit for hit in hits if gone[hit.path] is None]

    async def find_symbols(self, root: Path, name: str, options: dict[str, Any]) -> list[Symbol]:
        """`WorkspaceIndex.find_symbols` on one folder's index, in the search process."""
        symbols: list[Symbol] = await self._read(root, "find_symbols", name, **options)
        return symbols

    async def secret_paths(self, root: Path) -> list[str]:
        """`WorkspaceIndex.secret_paths` of one folder's index, in the search process."""
        paths: list[str] = await self._read(root, "secret_paths")
        return paths

    async def _read(self, root: Path, method: str, *args: Any, **kwargs: Any) -> Any:
        """`WorkspaceIndex.<method>` on one folder's index, in the search process ([] for no such folder)."""
        folder = self._folders.get(root)
        if folder is None:
            return []
        loop = asyncio.get_running_loop()
        self._notice_deleted(root, folder)
        spec = self._reader_spec(folder)
        return await loop.run_in_executor(self._search_pool(), read_in_process, spec, method, args, kwargs)

    def _notice_deleted(self, root: Path, folder: _Folder) -> None:
        """A folder indexed in this session whose index has no tables any more (its folder was deleted, as
        when the cache is cleared while the server runs) is indexed again, in full."""
        if folder.ready and not folder.full and not tables_exist(self._location(root, folder)):
            log.warning("the index of %s was deleted; indexing it again", root)
            folder.ready = False
            self.request_full(root)

    def building(self) -> list[Path]:
        """The folders whose first index is still to be built (no tables yet): a search finds nothing there
        because nothing is indexed, not because nothing matches."""
        return [
            root
            for root, folder in self._folders.items()
            if not folder.ready and not tables_exist(self._location(root, folder))
        ]

    def _location(self, root: Path, folder: _Folder) -> Path:
        return self._location_of(root, folder.settings)

    def _location_of(self, root: Path, settings: IndexSettings) -> Path:
        from indexing.config import default_index_location

        return Path(settings.uri) if settings.uri else default_index_location(root, self._cache_dir)

    def _reader_spec(self, folder: _Folder) -> ReaderSpec:
        """The search process's reader of `folder`'s index: one per index, under its first folder's path."""
        settings_json = folder.settings.model_dump_json()
        cache = str(self._cache_dir)
        return ReaderSpec(str(folder.roots[0]), settings_json, cache, self._env, folder.generation)

    def code_index(self, root: Path, loop: asyncio.AbstractEventLoop) -> SearchProcessIndex | None:
        """The folder's index as a run reads it (`agent.ports.CodeIndex`), served by the search process;
        None while it has no tables yet (a run then scans files)."""
        folder = self._folders.get(root)
        if folder is None:
            return None
        if not folder.ready and not tables_exist(self._location(root, folder)):
            return None
        return SearchProcessIndex(self, root, folder.settings, loop)

    def warm(self) -> None:
        """Start the search process and import the index service there, before the first search."""
        self._search_pool().submit(warm_up)

    def request_stop(self) -> None:
        """Begin stopping the indexing process without waiting (the LSP shutdown request)."""
        self._worker.request_stop()

    def shutdown(self) -> None:
        for timer in (self._prepare_timer, self._retry_timer):
            if timer is not None:
                timer.cancel()
        self._worker.stop()
        if self._searcher is not None:
            # Ended now (a search or its warm-up may be running: `end_pool`) and waited for here, not left
            # to Python's exit hook, which on 3.11 can print "OSError: [Errno 9] Bad file descriptor"
            # (`server.features.analysis.OutlineCache.shutdown`).
            end_pool(self._searcher)
            self._searcher = None


_RUN_CALL_TIMEOUT = 120.0


class SearchProcessIndex:
    """One folder's index for a run's worker thread (`agent.ports.CodeIndex`): each call goes to the
    search process through the server's event loop. The server process never loads LanceDB for a run
    (importing it on the run's thread delayed the first model call by 3 s, 11 s on a loaded machine), and
    the search process, started with the server, usually has it loaded before the first run."""

    def __init__(
        self, indexer: BackgroundIndexer, root: Path, settings: IndexSettings, loop: asyncio.AbstractEventLoop
    ) -> None:
        self._indexer = indexer
        self._root = root
        self._settings = settings
        self._loop = loop

    @property
    def settings(self) -> IndexSettings:
        return self._settings

    def search(
        self,
        query: str,
        *,
        limit: int = 10,
        path: str | None = None,
        files: bool = False,
        diverse: bool = True,
    ) -> list[SearchHit]:
        target = None if path is None else self._root / path
        found = self._call(self._indexer.search(query, limit, target or self._root, files, diverse))
        return [hit for root, hit in found if root == self._root]  # not a nested folder's (other paths)

    def find_symbols(
        self,
        name: str,
        *,
        prefix: bool = False,
        role: str | None = None,
        path: str | None = None,
        limit: int = 200,
    ) -> list[Symbol]:
        options = {"prefix": prefix, "role": role, "path": path, "limit": limit}
        return self._call(self._indexer.find_symbols(self._root, name, options))

    def secret_paths(self) -> list[str]:
        return self._call(self._indexer.secret_paths(self._root))

    def _call(self, coro: Coroutine[Any, Any, _T]) -> _T:
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:  # no running loop: a worker thread, as it must be
            running = None
        if running is self._loop:
            coro.close()
            raise RuntimeError("SearchProcessIndex waits on the event loop: call it from a worker thread")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(_RUN_CALL_TIMEOUT)
