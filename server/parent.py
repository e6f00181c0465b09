"""Watching the editor's process (LSP ``initialize.processId``), so that the server ends when it is gone.

LSP: "If the parent process is not alive then the server should exit." An editor that crashes or is
killed cannot send ``exit``, and when something else still holds the server's stdin open (a wrapper, a
terminal multiplexer, a sibling of the editor) the server never sees the end of its input: it would keep
indexing and running agents for nobody. `ProcessWatch` calls its callback once when the process is gone:

- on Linux, through a pidfd (``os.pidfd_open``) that the event loop watches: it becomes readable when
  the process ends (a zombie has ended), costs nothing while waiting, and cannot be fooled by the pid
  being reused;
- elsewhere (or when the kernel has no pidfd), by a check every `POLL_SECONDS`: ``os.kill(pid, 0)``
  (``PermissionError`` means the process exists and is someone else's), and a zombie counts as gone.
  Not on Windows, where that call would kill the editor: there the server ends as before, on ``exit`` or
  at the end of its input.

A pid that names no live process when the watch starts is not watched: an editor on the host starting
the server in a container (another pid namespace) sends a pid that means nothing here, and such a server
must not exit at once. `server.lsp` starts the watch on ``initialize`` and `server.transport.Hangup` ends
the server when it fires.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable

__all__ = ["POLL_SECONDS", "ProcessWatch", "process_alive"]

log = logging.getLogger(__name__)

POLL_SECONDS = 2.0
"""How often the fallback without a pidfd checks the process."""


def process_alive(pid: int) -> bool:
    """Whether process `pid` exists here and has not ended (a zombie has ended). Always True on Windows,
    where ``os.kill(pid, 0)`` would terminate the process instead of checking it."""
    if os.name == "nt":
        return True
    try:
        os.kill(pid, 0)
    except PermissionError:  # it exists; it is another user's
        pass
    except OSError:  # ProcessLookupError, or a pid the kernel refuses
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:  # no /proc here (or it just went): os.kill said it was there
        return True
    fields = stat[stat.rfind(b")") + 2 :].split()
    return not fields or fields[0] not in (b"Z", b"X")


class ProcessWatch:
    """Calls `on_gone` once, on the event loop, when process `pid` has ended."""

    def __init__(self, pid: int, on_gone: Callable[[], None], *, interval: float = POLL_SECONDS) -> None:
        self.pid = pid
        self._on_gone = on_gone
        self._interval = interval
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pidfd: int | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._done = False

    def start(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Begin watching; False (and nothing watched) when there is no such live process here."""
        if self.pid <= 0 or self.pid == os.getpid() or not process_alive(self.pid):
            log.info(
                "the editor's process %d is not running here (another pid namespace?); the server ends "
                "when the editor sends exit or closes its input",
                self.pid,
            )
            return False
        self._loop = loop
        pidfd_open = getattr(os, "pidfd_open", None)
        if pidfd_open is not None:
            try:
                self._pidfd = pidfd_open(self.pid)
            except ProcessLookupError:  # it ended just now
                loop.call_soon(self._gone)
                return True
            except OSError as exc:  # an old kernel, a seccomp filter: poll instead
                log.debug(
                    "no pidfd for process %d (%s); checking it every %.0f s",
                    self.pid,
                    exc,
                    self._interval,
                )
        if self._pidfd is not None:
            loop.add_reader(self._pidfd, self._gone)
        else:
            self._timer = loop.call_later(self._interval, self._check)
        return True

    def stop(self) -> None:
        """Stop watching (idempotent)."""
        self._done = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        fd, self._pidfd = self._pidfd, None
        if fd is not None:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(fd)
            with contextlib.suppress(OSError):
                os.close(fd)

    def _check(self) -> None:
        self._timer = None
        if self._done:
            return
        if process_alive(self.pid):
            assert self._loop is not None
            self._timer = self._loop.call_later(self._interval, self._check)
        else:
            self._gone()

    def _gone(self) -> None:
        if self._done:
            return
        self.stop()
        self._on_gone()
