"""The index folder's write lock and the store's errors: light (no LanceDB), so that code which only
needs the lock (the unchanged-workspace check of `indexing.state`) does not load the store."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from pathlib import Path

__all__ = ["IndexCorrupt", "IndexError_", "IndexLock", "IndexLocked"]


class IndexError_(Exception):
    """Base of the store's errors (named so as not to shadow the builtin)."""


class IndexCorrupt(IndexError_):
    """The index folder exists but cannot be read; the caller rebuilds it."""


class IndexLocked(IndexError_):
    """Another process is writing this index."""


class IndexLock:
    """An exclusive advisory lock on the index folder, held for the life of a writer."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = ""
            with contextlib.suppress(OSError):
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip()
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise IndexLocked(
                    f"another agentls indexer{f' (pid {holder})' if holder else ''} is writing "
                    f"{self._path.parent}; wait for it to finish, or stop it"
                ) from exc
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
