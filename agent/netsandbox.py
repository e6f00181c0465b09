"""The sandbox's network (``agent.sandbox.network``): none, only the allowed registries, or the host's.

- ``"off"`` (the default): bubblewrap's ``--unshare-net``; the sandbox has a loopback of its own and
  nothing else, so nothing connects anywhere.
- ``"registries"``: the same empty network namespace, with one way out. `NetworkGateway` runs an
  `agent.netproxy.AllowlistProxy` on the host, listening on a unix socket in a private folder; the
  socket is bound into the sandbox at `INSIDE_SOCKET`, and each command is started through a small
  forwarder (`FORWARDER`, stdlib Python run with agentls' interpreter) that listens on
  ``127.0.0.1:3128`` inside the sandbox's own loopback and pipes every connection to that socket before
  it execs the command. ``HTTP(S)_PROXY`` (and npm's and Cargo's variables) point at it. A program that
  ignores them finds no route at all: the proxy is the only way out, and it lets through only
  `SandboxSettings.allowed_hosts` (PyPI, npm, crates.io and the Go proxy by default; a ``host:port``
  such as ``127.0.0.1:8080`` allows a local index).
- ``"on"``: the host's network (no ``--unshare-net``); nothing is filtered or recorded.

Every request through the gateway, allowed or refused, goes to `NetworkGateway.on_request`; with
``agent.approve = "ask"``, `NetworkGateway.approve` is asked once per allowlisted host and port before
its first request, except within `NetworkGateway.granting` (an approved install: its approval covers the
registries it reaches). `attach_network` points both at a run's transcript and its user
(`agent.approval`).

`SandboxExtension` is what the sandbox applies to every sandboxed command besides its own mounts:
bubblewrap arguments, environment variables, and a wrapper around the command. The gateway is one;
the per-run package layer of `agent.installs` is another.
"""

from __future__ import annotations

import logging
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from agent.netproxy import AllowlistProxy, ProxyRequest
from agent.scratch import remove_tree

if TYPE_CHECKING:
    from agent.recorder import Recorder
    from agent.sandbox import BoundedFolder
    from agent.tools.ask import AskCallback

__all__ = [
    "INSIDE_PORT",
    "INSIDE_SOCKET",
    "NetworkGateway",
    "SandboxExtension",
    "attach_network",
]

log = logging.getLogger(__name__)

INSIDE_SOCKET = "/run/agentls/proxy.sock"
"""Where the proxy's unix socket appears inside the sandbox."""
INSIDE_PORT = 3128
"""The forwarder's port on the sandbox's own loopback (its network namespace is private: no clash)."""

FORWARDER = r"""
import os, socket, sys
path, port, argv = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", port))
server.listen(128)
if os.fork() == 0:
    import threading  # only the forwarder needs these: the command starts without waiting for them
    try:
        import ctypes
        ctypes.CDLL(None).prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG, SIGKILL: go when the command goes
    except Exception:
        pass
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    def pipe(a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
    while True:
        client, _ = server.accept()
        upstream = socket.socket(socket.AF_UNIX)
        try:
            upstream.connect(path)
        except OSError:
            client.close()
            continue
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=pipe, args=(a, b), daemon=True).start()
server.close()
try:
    os.execvp(argv[0], argv)
except OSError as error:
    sys.stderr.write(f"{argv[0]}: {error.strerror}\n")
    sys.exit(127)
"""
"""Run inside the sandbox before each command: binds the proxy port, forks the forwarder, execs the
command (so its exit status and signals are the command's own)."""


class SandboxExtension(Protocol):
    """Something the sandbox adds to every sandboxed command."""

    def bwrap_args(self) -> list[str]:
        """bubblewrap arguments (mounts), placed after the workspace's own."""
        ...

    def environment(self) -> dict[str, str]:
        """Environment variables for the command (trusted: not filtered like the caller's)."""
        ...

    def wrap(self, argv: list[str]) -> list[str]:
        """The command line to run instead of `argv` (usually `argv` itself, or a wrapper around it)."""
        ...

    def bounded_folder(self) -> BoundedFolder | None:
        """A host folder it makes writable to the command, watched against its bound as the workspace copy
        is (`agent.sandbox`); None when it makes none."""
        ...


class NetworkGateway:
    """The allowlisting proxy of one sandbox, reachable from inside through a bound unix socket."""

    def __init__(self, allow: Iterable[str]) -> None:
        self.allow = list(allow)
        self.on_request: Callable[[ProxyRequest], None] | None = None
        """Called with every request through the gateway (the run records it)."""
        self.approve: Callable[[str, int], bool] | None = None
        """Asked once per allowed host and port before its first request; None allows them."""
        self._folder = Path(tempfile.mkdtemp(prefix="agentls-net-"))
        self.socket_path = self._folder / "proxy.sock"
        self.proxy = AllowlistProxy(
            self.allow, on_request=self._on_request, approve=self._approve, unix_path=str(self.socket_path)
        )
        self._started = False
        self._lock = threading.Lock()

    def _on_request(self, request: ProxyRequest) -> None:
        if self.on_request is not None:
            self.on_request(request)

    def _approve(self, host: str, port: int) -> bool:
        return True if self.approve is None else self.approve(host, port)

    def start(self) -> NetworkGateway:
        with self._lock:
            if not self._started:
                self.proxy.start()
                self._started = True
        return self

    def granting(self, reason: str) -> AbstractContextManager[None]:
        """Within: allowlisted hosts are reached without asking `approve` (the user approved what runs
        now), each request recorded with `reason` (`AllowlistProxy.granting`)."""
        return self.proxy.granting(reason)

    def waiting_seconds(self) -> float:
        """Seconds the gateway's requests have waited for the user's answers (`approve`) so far."""
        return self.proxy.waiting_seconds()

    @property
    def requests(self) -> list[ProxyRequest]:
        """Every request so far, in order."""
        return list(self.proxy.requests)

    def bwrap_args(self) -> list[str]:
        self.start()
        return ["--ro-bind", str(self.socket_path), INSIDE_SOCKET]

    def environment(self) -> dict[str, str]:
        url = f"http://127.0.0.1:{INSIDE_PORT}"
        names = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "CARGO_HTTP_PROXY")
        env = {name: url for name in names} | {name.lower(): url for name in names[:3]}
        env |= {"npm_config_proxy": url, "npm_config_https_proxy": url}
        return env

    def wrap(self, argv: list[str]) -> list[str]:
        return [sys.executable, "-I", "-S", "-c", FORWARDER, INSIDE_SOCKET, str(INSIDE_PORT), *argv]

    def bounded_folder(self) -> BoundedFolder | None:
        return None  # its socket is bound read-only

    def close(self) -> None:
        """Stop the proxy and remove its socket."""
        self.proxy.close()
        remove_tree(self._folder, "network gateway's socket folder")


def attach_network(
    gateway: NetworkGateway | None,
    recorder: Recorder,
    *,
    ask: AskCallback | None,
    policy: str,
) -> None:
    """Record the gateway's requests in `recorder`'s transcript; with `policy` ``"ask"``, ask the user
    (through `ask`; nobody to ask refuses) before the first request to each allowed host."""
    if gateway is None:
        return
    from agent.approval import ask_approval

    gateway.on_request = recorder.network
    if policy == "ask":

        def approve(host: str, port: int) -> bool:
            return ask_approval(
                ask,
                recorder,
                f"Allow the agent's sandbox to reach {host}:{port} (a package registry)?",
                subject="network",
                detail=f"{host}:{port}",
            )

        gateway.approve = approve
