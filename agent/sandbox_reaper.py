"""The process that ends a dead owner's sandboxes still being set up (bubblewrap issue #633).

bwrap's first process in the sandbox (pid 1 of its PID namespace) sets its own parent-death signal
(``--die-with-parent``) only after ``--new-session``, long after it exists: while it waits on
``--block-fd`` (`agent.sandbox` holds it there while it opens the sandbox's tmpfs) it has none. An owner
killed then (kill -9, the OOM killer) takes bwrap's outer process with it, but this one reads end of file
on ``--block-fd``, goes on with init as its parent and runs the command to its own end.

One of these per `agent.sandbox.Sandbox` (started on its first sandboxed command, ``python -I -S
agent/sandbox_reaper.py SOCKET_FD``, standard library only) closes that window at no cost per command:
the owner sends it, over a unix socket (``SOCK_SEQPACKET``, a descriptor with each message),

- ``block KEY`` with the writing end of a command's ``--block-fd`` pipe, before bwrap starts: held here,
  the pipe gives a waiting first process no end of file when the owner dies, so it waits on;
- ``init KEY`` with a pidfd of that first process (``init KEY PID START`` without pidfds: its pid and
  start time), before the owner lets it go on;
- ``done KEY`` once the command and its sandbox have ended: both are closed.

When the socket ends (the owner died, or closed it: `Sandbox.close`, or the sandbox was collected), it
sends SIGKILL to every first process it holds, and to every process that still has the reading end of
one of the held ``--block-fd`` pipes open (found in ``/proc/PID/fd``: bwrap waiting before it was named),
then exits.
A first process killed takes every process of its sandbox with it (the kernel ends a PID namespace with
its first process).

It runs in a session of its own, so no signal to the owner's terminal or process group reaches it, and
with no parent-death signal, which would follow the owner's thread that started it rather than the owner.

It is started per `Sandbox`, so it imports little: ``_socket`` and ``_signal``, not ``socket`` and ``signal``,
whose enums (and ``socket``'s ``selectors``, ``functools`` and ``collections``) took 10 ms of its 18 ms of CPU
(the interpreter alone takes 8). `agent.sandbox` and `agent.subreaper` read ``/proc/PID/stat`` with its
`proc_stat`.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # not imported when run (see the module's docstring)
    import signal
    import socket as _socket
else:
    import _signal as signal
    import _socket

_MESSAGE_BYTES = 256
_FD_BYTES = 4  # a descriptor in SCM_RIGHTS: a C int


def pipe_readers(inodes: set[int]) -> list[int]:
    """The pids of processes that have the reading end of one of the pipes `inodes` open (bwrap's; not
    a process that only holds a writing end, as a child the owner forked may)."""
    found: list[int] = []
    try:
        names = os.listdir("/proc")
    except OSError:
        return found
    for name in names:
        if not name.isdigit():
            continue
        try:
            fds = os.listdir(f"/proc/{name}/fd")
        except OSError:
            continue  # gone meanwhile, or not ours to see
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{name}/fd/{fd}")
                if not (target.startswith("pipe:[") and int(target[6:-1]) in inodes):
                    continue
                with open(f"/proc/{name}/fdinfo/{fd}", "rb") as handle:
                    flags = next(line for line in handle if line.startswith(b"flags:")).split()[1]
            except (OSError, ValueError, StopIteration):
                continue
            if int(flags, 8) & os.O_ACCMODE == os.O_RDONLY:
                found.append(int(name))
                break
    return found


def proc_stat(pid: int) -> tuple[int, str, str] | None:
    """(parent pid, start time, state) of process `pid` from ``/proc/PID/stat``; None when there is none.
    The start time (clock ticks since boot) with the pid names one process: a pid is reused, the pair is
    not."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces or parentheses itself.
    fields = stat[stat.rfind(b")") + 2 :].split()
    try:
        return int(fields[1]), fields[19].decode(), fields[0].decode()
    except (IndexError, ValueError):
        return None


def end_all(blocks: dict[str, int], inits: dict[str, int | tuple[int, str]]) -> None:
    """SIGKILL every held first process, and every process still waiting on a held ``--block-fd``."""
    for held in inits.values():
        try:
            if isinstance(held, int):
                signal.pidfd_send_signal(held, signal.SIGKILL)
            elif (stat := proc_stat(held[0])) is not None and stat[1] == held[1] and stat[2] != "Z":
                os.kill(held[0], signal.SIGKILL)
        except OSError:
            pass  # already gone
    if blocks:
        inodes = {os.fstat(fd).st_ino for fd in blocks.values()}
        for pid in pipe_readers(inodes):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def _receive(sock: _socket.socket) -> tuple[bytes, list[int]]:
    """One message and the descriptors that came with it (`socket.recv_fds` without `socket`)."""
    data, ancillary, _, _ = sock.recvmsg(_MESSAGE_BYTES, _socket.CMSG_SPACE(_FD_BYTES))
    fds: list[int] = []
    for level, kind, payload in ancillary:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            usable = len(payload) - len(payload) % _FD_BYTES
            fds += [
                int.from_bytes(payload[i : i + _FD_BYTES], sys.byteorder, signed=True)
                for i in range(0, usable, _FD_BYTES)
            ]
    return data, fds


def serve(sock: _socket.socket) -> tuple[dict[str, int], dict[str, int | tuple[int, str]]]:
    """Hold what the owner sends until the socket ends; what is held then."""
    blocks: dict[str, int] = {}
    inits: dict[str, int | tuple[int, str]] = {}
    while True:
        try:
            data, fds = _receive(sock)
        except InterruptedError:  # pragma: no cover - PEP 475 retries
            continue
        except OSError:
            return blocks, inits  # ECONNRESET: the owner is gone
        if not data:
            return blocks, inits
        kind, _, rest = data.decode("ascii", "replace").partition(" ")
        key, _, pid_start = rest.partition(" ")
        if kind == "block" and fds:
            blocks[key] = fds.pop()
        elif kind == "init" and fds:
            inits[key] = fds.pop()
        elif kind == "init" and pid_start:
            pid, _, start = pid_start.partition(" ")
            inits[key] = (int(pid), start)
        elif kind == "done":
            for held in (blocks.pop(key, None), inits.pop(key, None)):
                if isinstance(held, int):
                    os.close(held)
        for fd in fds:  # anything not understood
            os.close(fd)


def main(argv: list[str]) -> int:
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET, 0, int(argv[1]))
    blocks, inits = serve(sock)
    end_all(blocks, inits)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
