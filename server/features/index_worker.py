"""Indexing in a child process, so that parsing and writing the index never stall the server's event loop.

tree-sitter holds the GIL while it parses (a large file takes 100-200 ms), and the index service parses
small updates in-process; run in a thread of the server, that would freeze every request for as long.
So one long-lived worker process owns all index writes: the server sends it jobs (`IndexJob`) over a
pipe, one at a time, and it answers with progress messages, log records and one final `JobOutcome`. A crash
in the worker (a grammar or LanceDB fault) costs the job, not the server: the next job starts a new
worker.

The worker runs at a lower priority (``server.index_nice``, 10 by default: its niceness goes up by that
much at its start, and its parser processes inherit it) so that indexing yields the CPU to the editor
and the server. Under Linux's autogroups niceness counts only against the processes of the same session,
which is where a test run's other workers are: a test harness sets it to 0 (the first index of a small
workspace took 44-119 s at 10 beside two busy processes of the same session, 18-36 s at 0).

The worker is not a daemon process because the index service starts its own pool of parser processes,
which daemons may not have; `IndexWorker.stop` ends it explicitly, and it exits by itself when the server
goes away (its end of the pipe closes).

The worker lives as long as the server, but a full index run's peak (batches of rows, the index builds)
is freed memory that glibc keeps resident: after each full ``index`` job the worker collects garbage and
gives the free heap back with ``malloc_trim`` (`indexing.memory.release_memory`; on 5,700 kernel files
665 -> 314 MiB), and logs what it held before and after. What stays is mostly native memory (LanceDB's
caches and allocator arenas) that only the process's end returns: when a full index leaves the worker
`RECYCLE_MIB` above its size at start, it exits after answering (``JobOutcome.recycled``) and the
server starts a fresh one at once, which opens the index again for the next job (the whole kernel: 948
MiB after its first index, 686 MiB after the trim; on drivers/net the server's process tree went from
685 to 398 MiB).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Literal

from indexing.config import IndexSettings
from indexing.lifeline import die_with_parent, forkserver_context
from indexing.memory import release_memory, rss_mib
from indexing.models import IndexReport

__all__ = ["IndexJob", "IndexWorker", "JobOutcome"]

log = logging.getLogger(__name__)

JobKind = Literal["index", "update", "prepare", "fold"]
OutcomeStatus = Literal["done", "cancelled", "locked", "error"]
RECYCLE_MIB = 192.0
"""A worker that, after a full index and `release_memory`, still holds this much more than once it had
started (its imports) is replaced by a fresh one. Growth, not size: an embedding model that a fresh
worker would load again is no reason to replace it (a sentence-transformers model and its torch are)."""
NICE = 10
"""What the worker adds to its niceness (``server.index_nice``): indexing yields the CPU to the editor and
the server."""


@dataclass(frozen=True, slots=True)
class IndexJob:
    """Index a whole workspace folder, or just some of its files (relative POSIX paths), or prepare the
    rows of one open document's `text` before it is saved (``prepare``: nothing is written), or put the
    rows written since the last fold in the full-text index (``fold``)."""

    kind: JobKind
    root: Path
    settings: IndexSettings
    paths: tuple[str, ...] = ()
    quiet: bool = False  # a periodic refresh: no progress in the editor
    text: str = ""  # of a ``prepare`` job: the document's text, for paths[0]


@dataclass(frozen=True, slots=True)
class JobOutcome:
    """How a job ended; `message` says why when it did not finish."""

    status: OutcomeStatus
    report: IndexReport | None = None
    message: str = ""
    recycled: bool = False
    """The worker exits after this job (its memory with it); the next job runs in a fresh one."""


class _CancelFlag(threading.Event):
    """A `threading.Event` view of the cross-process cancel flag, for `WorkspaceIndex.index(cancel=)`."""

    def __init__(self, flag: Any) -> None:
        super().__init__()
        self._flag = flag

    def is_set(self) -> bool:
        return bool(self._flag.is_set())


class _PipeLogHandler(logging.Handler):
    """Sends the worker's log records to the server, which shows them in the editor's log."""

    def __init__(self, send: Callable[[Any], None]) -> None:
        super().__init__(logging.INFO)
        self._send = send

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._send(("log", record.levelno, record.name, record.getMessage()))
        except Exception:  # the server is gone; nothing to tell
            pass


def _worker_main(
    conn: Connection,
    cancel: Any,
    cache_dir: str,
    env: dict[str, str],
    recycle_mib: float = RECYCLE_MIB,
    nice: int = NICE,
) -> None:
    """The worker process: run jobs until the server says stop or goes away."""
    die_with_parent()  # even in the middle of a job, when the server is killed
    # Background work yields the CPU to the editor's requests (the parser processes inherit this).
    if nice:
        with contextlib.suppress(OSError, AttributeError):
            os.nice(nice)
    from indexing.service import IndexCancelled, WorkspaceIndex
    from indexing.store import IndexLocked
    from indexing.walker import WorkspaceError

    started = rss_mib()
    lock = threading.Lock()

    def send(message: Any) -> None:
        with lock:
            conn.send(message)

    for name in ("indexing", "agent"):
        logger = logging.getLogger(name)
        logger.addHandler(_PipeLogHandler(send))
        logger.setLevel(logging.INFO)
    indexes: dict[tuple[str, str, str], WorkspaceIndex] = {}
    parent = os.getppid()
    while True:
        try:
            if not conn.poll(5.0):
                if os.getppid() != parent:  # the server died without closing the pipe
                    return
                continue
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        assert isinstance(job, IndexJob)
        if cancel.is_set():  # cancelled after the server sent it (it clears the flag first): write nothing
            try:
                send(("outcome", JobOutcome("cancelled", None, "cancelled before it started")))
            except (OSError, ValueError):
                return
            continue
        # By the folder's real path too: a folder whose link was retargeted (ws -> a, then b) has b's index
        # (its location follows the real path), not the one opened for a.
        key = (str(job.root), os.path.realpath(job.root), job.settings.model_dump_json())
        index = indexes.get(key)
        if index is None:
            for old in [k for k in indexes if k[0] == key[0]]:
                indexes.pop(old).close()
            index = indexes[key] = WorkspaceIndex(job.root, job.settings, cache_dir=Path(cache_dir), env=env)
        try:
            if job.kind == "index":
                report = index.index(
                    progress=lambda phase, done, total: send(("progress", phase, done, total)),
                    cancel=_CancelFlag(cancel),
                )
            elif job.kind == "prepare":
                index.prepare(job.paths[0], job.text, cancel=_CancelFlag(cancel))
                report = None
            elif job.kind == "fold":
                index.fold()
                report = None
            else:
                report = index.update_paths(job.paths)
            outcome = JobOutcome("done", report)
        except IndexCancelled as exc:
            outcome = JobOutcome("cancelled", None, str(exc))
        except IndexLocked as exc:
            outcome = JobOutcome("locked", None, str(exc))
        except WorkspaceError as exc:
            outcome = JobOutcome("error", None, str(exc))
        except Exception as exc:
            logging.getLogger("indexing").exception("indexing %s failed", job.root)
            outcome = JobOutcome("error", None, f"indexing {job.root} failed: {type(exc).__name__}: {exc}")
        recycle = False
        if job.kind == "index":
            before, after = release_memory()
            recycle = not job.quiet and after - started > recycle_mib
            logging.getLogger("indexing").log(
                logging.DEBUG if job.quiet else logging.INFO,  # a periodic refresh: not in the editor's log
                "indexing process: %.0f MiB resident after indexing %s, %.0f MiB once its free memory was "
                "returned",
                before,
                job.root,
                after,
            )
            if recycle:
                logging.getLogger("indexing").info(
                    "indexing process: %.0f MiB more than at its start (%.0f MiB) after the index; a fresh "
                    "one takes over",
                    after - started,
                    started,
                )
                outcome = dataclasses.replace(outcome, recycled=True)
        try:
            send(("outcome", outcome))
        except (OSError, ValueError):
            return
        if recycle:
            return


@dataclass
class _Process:
    process: Any
    conn: Connection
    cancel: Any
    jobs: int = 0
    exit_codes: list[int] = field(default_factory=list)


class IndexWorker:
    """The server's handle on the worker process: run one job at a time, cancel it, stop the worker."""

    def __init__(
        self,
        cache_dir: Path,
        env: Mapping[str, str],
        on_log: Callable[[int, str, str], None] | None = None,
        recycle_mib: float = RECYCLE_MIB,
        nice: int = NICE,
    ) -> None:
        """`nice`: what the worker adds to its niceness at its start (``server.index_nice``)."""
        self._cache_dir = cache_dir
        self._env = dict(env)
        self._on_log = on_log
        self._recycle_mib = recycle_mib
        self._nice = nice
        self._ctx = forkserver_context()
        self._proc: _Process | None = None
        self._lock = asyncio.Lock()
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="agentls-index-pipe")
        self._stopped = False
        self._cancelled: IndexJob | None = None  # `cancel(job)` before the job reached the worker
        # Held while a process starts or stops, so that a stop never misses a process being started.
        self._process_lock = threading.Lock()

    def _ensure_started(self) -> _Process | None:
        """The running worker, started if needed (in a thread: starting takes a while); None once stopped."""
        with self._process_lock:
            if self._stopped:
                return None
            if self._proc is None or not self._proc.process.is_alive():
                self._proc = self._start()
            return self._proc

    def _start(self) -> _Process:
        parent_end, child_end = self._ctx.Pipe(duplex=True)
        cancel = self._ctx.Event()
        process = self._ctx.Process(
            target=_worker_main,
            args=(child_end, cancel, str(self._cache_dir), self._env, self._recycle_mib, self._nice),
            name="agentls-indexer",
            daemon=False,
        )
        process.start()
        child_end.close()
        log.info("started the indexing process (pid %s)", process.pid)
        return _Process(process, parent_end, cancel)

    @property
    def busy(self) -> bool:
        return self._lock.locked()

    @property
    def pid(self) -> int | None:
        """The worker process's id while it runs."""
        proc = self._proc
        return proc.process.pid if proc is not None and proc.process.is_alive() else None

    async def run(self, job: IndexJob, on_progress: Callable[[str, int, int], None]) -> JobOutcome:
        """Run `job` in the worker (starting it if needed); progress arrives on the event loop."""
        async with self._lock:
            if self._stopped:
                return JobOutcome("cancelled", None, "the server is shutting down")
            if self._cancelled is job:  # cancelled before it could start: it writes nothing
                return JobOutcome("cancelled", None, "cancelled before it started")
            loop = asyncio.get_running_loop()
            proc = await loop.run_in_executor(self._reader, self._ensure_started)
            if proc is None:
                return JobOutcome("cancelled", None, "the server is shutting down")
            if self._cancelled is job:  # cancelled while the worker was being started
                return JobOutcome("cancelled", None, "cancelled before it started")
            proc.cancel.clear()
            try:
                proc.conn.send(job)
                while True:
                    message = await loop.run_in_executor(self._reader, proc.conn.recv)
                    kind = message[0]
                    if kind == "progress":
                        on_progress(message[1], message[2], message[3])
                    elif kind == "log":
                        if self._on_log is not None:
                            self._on_log(message[1], message[2], message[3])
                    elif kind == "outcome":
                        outcome: JobOutcome = message[1]
                        if outcome.recycled:
                            self._reader.submit(self._replace, proc)
                        return outcome
            except (EOFError, OSError, BrokenPipeError) as exc:
                code = await loop.run_in_executor(self._reader, self._reap, proc)
                with self._process_lock:
                    if self._proc is proc:
                        self._proc = None
                return JobOutcome(
                    "error",
                    None,
                    f"the indexing process stopped unexpectedly (exit code {code}, {type(exc).__name__}); "
                    f"it restarts with the next change",
                )

    def _replace(self, proc: _Process) -> None:
        """`proc` exits after its job: reap it and start the next worker now, so that the next job does
        not wait for a process start."""
        self._reap(proc)
        with self._process_lock:
            if self._proc is proc:
                self._proc = None
        self._ensure_started()

    @staticmethod
    def _reap(proc: _Process) -> int | None:
        proc.process.join(timeout=2)
        with contextlib.suppress(Exception):
            proc.conn.close()
        code: int | None = proc.process.exitcode
        return code

    def cancel(self, job: IndexJob | None = None) -> None:
        """Ask the running job (if any) to stop; what it committed stays in the index. With ``job``: that
        job, which `run` may not have sent to the worker yet (it then never reaches the worker, so it
        writes nothing)."""
        self._cancelled = job
        if self._proc is not None:
            self._proc.cancel.set()

    def request_stop(self) -> None:
        """Ask the worker to cancel its job and exit, without waiting (`stop` waits and enforces it)."""
        proc = self._proc
        if proc is not None:
            proc.cancel.set()
            with contextlib.suppress(Exception):
                proc.conn.send(None)

    def stop(self, timeout: float = 1.0) -> None:
        """End the worker: cancel its job and tell it to exit; terminate it if it has not within `timeout`.

        Terminating is safe for the index: every batch is committed by its file rows, so an interrupted
        run leaves a consistent index that the next run completes.
        """
        with self._process_lock:
            self._stopped = True
            proc, self._proc = self._proc, None
        if proc is not None:
            proc.cancel.set()
            with contextlib.suppress(Exception):
                proc.conn.send(None)
            proc.process.join(timeout)
            if proc.process.is_alive():
                log.info("the indexing process is busy; stopping it")
                proc.process.terminate()
                proc.process.join(2)
            if proc.process.is_alive():
                proc.process.kill()
                proc.process.join(2)
            with contextlib.suppress(Exception):
                proc.conn.close()
        self._reader.shutdown(wait=False, cancel_futures=True)
