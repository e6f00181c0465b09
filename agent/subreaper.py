"""The process that runs one unsandboxed command for `agent.sandbox` and ends all of it, setsid ones too.

Run as ``python -I -S agent/subreaper.py OWNER_PID CONTROL_FD -- COMMAND...`` (standard library only, so it
needs neither agentls nor the workspace on ``sys.path``). It makes itself a child subreaper
(``prctl(PR_SET_CHILD_SUBREAPER)``, Linux 3.4): a process of the command whose parent dies is reparented to
it rather than to init, so a process that left the command's process group or session (``setsid``, a
daemon that double-forks) is still its descendant. It starts the command (with the parent-death signal
SIGKILL, as `agent.sandbox` gives every command; the descriptors it was given besides `CONTROL_FD` are the
command's too) and, when

- the command ends (its background jobs must not outlive it),
- the owner writes to or closes `CONTROL_FD` (cancel, time-out, space stop; the owner's death closes it
  too), or
- the owner dies (the parent-death signal, SIGTERM here, set to catch it),

it sends SIGKILL to every descendant it finds in ``/proc`` (each process whose chain of parents leads to
it), reaps one, and starts again until it has no child left, so a process forked between two rounds is
found in the next. It then exits as the command did: its status, or the command's signal raised on
itself (core dumps off). A command that cannot be started gets status 127 and the reason on stderr, as
a shell would.

It starts for every command, so it imports little: not ``subprocess`` (it forks and execs the command
itself, restoring the signals Python ignores, as ``subprocess`` does), ``ctypes.util`` (``prctl`` is
found among the process's own symbols) or ``signal``'s enums (``_signal``). That halved its cost: a
command of nothing (``true``) took 42 ms of CPU under it, 21 ms now (the interpreter alone is about 8 ms).

It reads ``/proc/PID/stat`` with `agent.sandbox_reaper.proc_stat`, the one parser of it. Run as a script,
it has neither agentls nor its own folder on ``sys.path`` (``-I -S``), so it imports that module alone
(standard library only: ``_socket``, ``_signal``) from its own folder, which is on ``sys.path`` for that
import only (the folder's other modules would shadow nothing it imports later, but need not be reachable).
That costs well under a millisecond of its ~21 ms (``true`` under it, 20 starts a figure, 5 rounds
interleaved at load 13-14: 21.4 ms before, 21.7 ms with the import, within the noise).

The subreaper is this helper, not the agent's process: the agent's own orphaned grandchildren (other
tools' helpers) stay init's. What it cannot stop: a process of the command that kills this helper
first (SIGKILL from the same user) leaves its descendants to init, as before; unsandboxed commands are
not isolated from the agent's user anyway.
"""

from __future__ import annotations

import ctypes
import os
import resource
import select
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # not imported when run: `collections` alone costs a few milliseconds
    import signal
    from collections.abc import Callable
else:
    # signal's functions and numbers without its enums: `enum` costs more than the rest of the imports.
    import _signal as signal

if __name__ == "__main__":  # run as a script: the folder beside it, for this one module only
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    try:
        from sandbox_reaper import proc_stat
    finally:
        del sys.path[0]
else:  # imported as agent.subreaper (agent.sandbox takes `load_prctl`)
    from agent.sandbox_reaper import proc_stat

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


def load_prctl() -> Callable[..., int] | None:
    """libc's ``prctl`` (None where it cannot be loaded); `agent.sandbox` uses it too. Look it up in the
    parent, never between fork and exec."""
    try:
        # The process's own symbols hold libc's; ctypes.util.find_library (and what it imports) only
        # where they do not.
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
        return prctl
    except (OSError, AttributeError):
        pass
    try:
        from ctypes.util import find_library

        libc = ctypes.CDLL(find_library("c") or "libc.so.6", use_errno=True)
        prctl = libc.prctl
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
        stat = proc_stat(int(name))  # None: gone meanwhile
        if stat is None or stat[2] == "Z":
            continue  # a zombie is dead already: only its reaping is left
        children.setdefault(stat[0], []).append(int(name))
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
        try:
            pid, code = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                for each in descendants(me):
                    try:
                        os.kill(each, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass
                pid, code = os.waitpid(-1, 0)
        except ChildProcessError:
            # No child left, so no descendant either (an orphan of the command is this process's child):
            # a command that ended with nothing in the background costs no look at /proc.
            return status
        except InterruptedError:  # pragma: no cover - PEP 475 retries
            continue
        if pid == command:
            status = code


def start(command: list[str], prctl: Callable[..., int] | None) -> int:
    """Fork and exec `command`, with the parent-death signal SIGKILL; the child's pid. Where it cannot be
    started, the child says why on stderr and exits with 127."""
    parent = os.getpid()
    pid = os.fork()
    if pid:
        return pid
    try:
        # As subprocess does (restore_signals): what Python ignores is the command's to handle, a closed
        # pipe (SIGPIPE) and RLIMIT_FSIZE (SIGXFSZ) end it by default.
        for signum in (signal.SIGPIPE, signal.SIGXFSZ):
            signal.signal(signum, signal.SIG_DFL)
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() == parent:  # else this helper died before the signal was set: nothing to run
            os.execvp(command[0], command)
    except BaseException as error:
        name = command[0] if command else "(nothing)"
        reason = error.strerror if isinstance(error, OSError) and error.strerror else repr(error)
        os.write(2, f"agentls: cannot run {name}: {reason}\n".encode(errors="replace"))
    finally:
        os._exit(127)


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

    os.set_inheritable(control, False)  # the command gets the other descriptors it was given, not this one
    command_pid = start(command, prctl)
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
            if pid == command_pid:
                status = code
    status = end_all(os.getpid(), command_pid, status)
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
