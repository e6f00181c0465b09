"""The process that runs one unsandboxed command for `agent.sandbox` and ends all of it, setsid ones too.

Run as ``python -I -S agent/subreaper.py OWNER_PID CONTROL_FD -- COMMAND...`` (standard library only, so it
needs neither agentls nor the workspace on ``sys.path``). It makes itself a child subreaper
(``prctl(PR_SET_CHILD_SUBREAPER)``, Linux 3.4): a process of the command whose parent dies is reparented to
it rather than to init, so a process that left the command's process group or session (``setsid``, a
daemon that double-forks) is still its descendant. It starts the command (with the parent-death signal
SIGKILL, as `agent.sandbox` gives every command) and, when

- the command ends (its background jobs must not outlive it),
- the owner writes to or closes `CONTROL_FD` (cancel, time-out, space stop; the owner's death closes it
  too), or
- the owner dies (the parent-death signal, SIGTERM here, set to catch it),

it sends SIGKILL to every descendant it finds in ``/proc`` (each process whose chain of parents leads to
it), reaps one, and starts again until it has no child left, so a process forked between two rounds is
found in the next. It then exits as the command did: its status, or the command's signal raised on
itself (core dumps off). A command that cannot be started gets status 127 and the reason on stderr, as
a shell would.

The subreaper is this helper, not the agent's process: the agent's own orphaned grandchildren (other
tools' helpers) stay init's. What it cannot stop: a process of the command that kills this helper
first (SIGKILL from the same user) leaves its descendants to init, as before; unsandboxed commands are
not isolated from the agent's user anyway.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import resource
import select
import signal
import subprocess
import sys
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


def load_prctl() -> Callable[..., int] | None:
    """libc's ``prctl`` (None where it cannot be loaded); `agent.sandbox` uses it too. Look it up in the
    parent, never between fork and exec."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        prctl: Callable[..., int] = libc.prctl
        return prctl
    except (OSError, AttributeError):
        return None


def descendants(root: int) -> list[int]:
    """The pids of every living process whose chain of parents leads to `root`, read from ``/proc``."""
    children: dict[int, list[int]] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue  # gone meanwhile
        # The command name (field 2) is in parentheses and may hold spaces or parentheses itself.
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) < 2 or fields[0] == b"Z":
            continue  # a zombie is dead already: only its reaping is left
        children.setdefault(int(fields[1]), []).append(int(name))
    found: list[int] = []
    todo = [root]
    while todo:
        for pid in children.get(todo.pop(), []):
            found.append(pid)
            todo.append(pid)
    return found


def end_all(me: int, command: int, status: int | None) -> int | None:
    """SIGKILL every descendant of `me` and reap them all; the `command`'s wait status, when reaped."""
    while True:
        for pid in descendants(me):
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            pid, code = os.waitpid(-1, 0)
        except ChildProcessError:
            return status
        except InterruptedError:  # pragma: no cover - PEP 475 retries
            continue
        if pid == command:
            status = code


def main(argv: list[str]) -> int:
    owner, control = int(argv[1]), int(argv[2])
    command = argv[4:] if argv[3:4] == ["--"] else argv[3:]
    prctl = load_prctl()
    stop = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stop
        if signum == signal.SIGTERM:
            stop = True

    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    if prctl is not None:
        prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    if os.getppid() != owner:
        stop = True  # the owner died before the parent-death signal was set

    def child_setup() -> None:
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)

    try:
        proc = subprocess.Popen(command, close_fds=True, preexec_fn=child_setup)
    except OSError as error:
        sys.stderr.write(f"agentls: cannot run {command[0] if command else '(nothing)'}: {error}\n")
        return 127
    status: int | None = None
    while not stop and status is None:
        try:
            ready, _, _ = select.select([control, wake_r], [], [], 1.0)
        except OSError:
            ready = [control]
        if control in ready:
            try:
                os.read(control, 64)
            except OSError:
                pass
            stop = True  # a byte or end of file: the owner asks for the end
        if wake_r in ready:
            try:
                os.read(wake_r, 4096)
            except OSError:
                pass
        # Reap what ended: the command, or orphans of it adopted here.
        while True:
            try:
                pid, code = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            if pid == proc.pid:
                status = code
    status = end_all(os.getpid(), proc.pid, status)
    if status is None:
        return 127  # pragma: no cover - the command is always a child and so always reaped
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        signal.set_wakeup_fd(-1)
        if signum != signal.SIGKILL:
            signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return 128 + signum  # a signal that does not end a process (never from a reaped command)
    return os.WEXITSTATUS(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
