"""Worker processes that die with the process they work for, however it dies (kill -9 included).

agentls' helper processes are started through multiprocessing's fork server: parser pools, the language
server's index worker. Their parent is the fork server, not agentls, and a pool worker holds pipes (the
task queue, the fork server's "alive" pipe) that keep each other open. When agentls was killed, nothing
told them: the workers waited on their queue forever, the fork server waited for its workers, and the
resource tracker for both (24 orphans holding 1.36 GB after a few killed runs), keeping the dead parent's
stdout and stderr open so that whoever waited for those pipes to close waited forever.

`die_with_parent()`, called first thing in such a process:

- asks the kernel for SIGKILL when its parent dies (``prctl(PR_SET_PDEATHSIG)`` through ctypes, Linux);
- starts a daemon thread that checks twice a second that its owner (the process that started the pool:
  given, or the parent, or the parent's parent when the parent is a fork server) is still the process it
  was (same pid and start time, not a zombie); when it is gone the process exits at once with
  ``os._exit``, and so does a process whose owner died while it was starting. Once the workers are
  gone, the fork server and the resource tracker see their pipes close and exit by themselves.

`forkserver_context()` is the one way they are started. multiprocessing starts the fork server and its
resource tracker as ``python -c ...`` in agentls' current folder, which is the workspace as a rule, and
``-c`` puts that folder first on ``sys.path``: a repository with a ``multiprocessing/`` package at its top
ran its own code there (on ``agentls index`` or when an editor started the server), before agentls read a
single file. The context adds Python's ``-P`` to the command lines multiprocessing builds, so no such
process looks in the current folder.

`end_pool(pool)` is how their owner ends a pool of them when it stops: at once, the job in progress
dropped. `ProcessPoolExecutor.shutdown` waits for the job a worker is running, and the language server's
search process spends its first seconds importing LanceDB (up to 10 s on a loaded machine): an ``exit``
sent then took that long, and an editor that kills a server that has not ended 2 s after ``exit`` (VS Code)
killed it before its runs were saved.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import multiprocessing
import multiprocessing.context
import multiprocessing.util
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor

__all__ = ["die_with_parent", "end_pool", "forkserver_context", "set_parent_death_signal"]

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
_POLL_SECONDS = 0.5
_started = False
_lock = threading.Lock()


def forkserver_context() -> multiprocessing.context.ForkServerContext:
    """multiprocessing's fork server context, its processes started without the current folder on their
    ``sys.path`` (see the module docstring)."""
    names = vars(multiprocessing.util)  # the command lines' flags come from this module's private helper
    flags = names["_args_from_interpreter_flags"]
    if not getattr(flags, "agentls_safe_path", False):

        def safe_path_flags() -> list[str]:
            args: list[str] = flags()
            return args if "-P" in args else [*args, "-P"]

        safe_path_flags.agentls_safe_path = True  # type: ignore[attr-defined]
        names["_args_from_interpreter_flags"] = safe_path_flags
    context = multiprocessing.get_context("forkserver")
    assert isinstance(context, multiprocessing.context.ForkServerContext)
    return context


def set_parent_death_signal(sig: int = signal.SIGKILL) -> bool:
    """Have the kernel send `sig` to this process when its parent thread ends (Linux); False elsewhere.

    Safe to call between fork and exec (a `preexec_fn`): it only calls ``prctl``.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return int(libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _stat(pid: int) -> list[bytes] | None:
    """The fields of /proc/PID/stat after the command name (state first), None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces: the fields after the last ")" are fixed.
    return data[data.rfind(b")") + 2 :].split()


def _parent_of(pid: int) -> int | None:
    fields = _stat(pid)
    try:
        return int(fields[1]) if fields else None
    except (IndexError, ValueError):
        return None


def _identity(pid: int) -> bytes | None:
    """The start time of a live process (a reused pid has another), None when it is gone or a zombie."""
    fields = _stat(pid)
    if not fields or fields[0] in (b"Z", b"X") or len(fields) < 20:
        return None
    return fields[19]


def _is_fork_server(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return b"multiprocessing.forkserver" in handle.read()
    except OSError:
        return False


def die_with_parent(owner: int | None = None) -> None:
    """Exit as soon as `owner` is gone; idempotent.

    `owner` is the process this one works for: by default the parent, or the parent's parent when the
    parent is a fork server (whose own children are the pool). A process whose owner died before it got
    here (a kill during start-up) exits at once.
    """
    global _started
    with _lock:
        if _started:
            return
        _started = True
    set_parent_death_signal()
    if owner is None:
        parent = os.getppid()
        owner = _parent_of(parent) if _is_fork_server(parent) else parent
    identity = _identity(owner) if owner is not None and owner > 1 else None
    if owner is None or identity is None:
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(_POLL_SECONDS)
            if _identity(owner) != identity:
                with contextlib.suppress(Exception):
                    log.debug("the process this one works for is gone; exiting")
                os._exit(1)

    threading.Thread(target=watch, name="agentls-lifeline", daemon=True).start()


def end_pool(pool: ProcessPoolExecutor, *, wait: bool = True) -> None:
    """End `pool` now: its worker processes are terminated (a job in progress is dropped; its future gets
    `BrokenProcessPool`), queued jobs are cancelled, and with `wait` its threads are joined, which then
    takes milliseconds. Only for pools whose jobs may be dropped (reads, parses, imports)."""
    # 3.14 has ProcessPoolExecutor.terminate_workers; before it, the pool's processes are only in
    # `_processes` (pid -> Process), there from 3.2 to 3.14.
    processes = getattr(pool, "_processes", None) or {}
    for _ in range(3):  # the pool's own thread may change the dict while it is read
        try:
            workers = list(processes.values())
            break
        except RuntimeError:
            continue
    else:
        workers = []
    for process in workers:
        with contextlib.suppress(Exception):
            process.terminate()
    pool.shutdown(wait=wait, cancel_futures=True)
