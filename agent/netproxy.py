"""An allowlisting HTTP(S) proxy for one run: the building block of governed network access.

`AllowlistProxy(allow, on_request=..., approve=...)` listens on ``127.0.0.1`` (an ephemeral port), or
with ``unix_path`` on a unix socket (what `agent.netsandbox` binds into the sandbox), and serves, one
thread per connection:

- ``CONNECT host:port`` (HTTPS and any TLS): when ``host:port`` is allowed, answers ``200 Connection
  established`` and relays bytes both ways (TLS stays end to end: the proxy sees the host, never the
  content); otherwise ``403``;
- absolute-form HTTP requests (``GET http://host:port/path HTTP/1.1``): forwarded to an allowed host as
  one request with ``Connection: close``, the answer streamed back; otherwise ``403``.

An allowlist entry is ``host`` (port 443 or 80) or ``host:port``; names compare case-insensitively and a
leading ``*.`` allows subdomains. `DEFAULT_REGISTRIES` is PyPI, npm, crates.io and the Go proxy.
`approve(host, port)`, when given, is asked once per allowed host before its first request (the
``agent.approve = "ask"`` policy); a refusal is remembered for the run. `waiting_seconds()` is the time
spent waiting for those answers (the sandbox does not count it against a command's time limit). Within
`granting(reason)` (what runs then was approved as a whole, such as an install) allowed hosts are let
through without asking, and nothing is remembered for later requests. Every request, allowed or not,
goes to `on_request` as a `ProxyRequest` (the run records them in its transcript) and stays in
`requests`.

``agent.sandbox.network = "registries"`` gives the sandbox only this proxy (`agent.netsandbox`): the
sandbox has its own empty network namespace (``--unshare-net``), the proxy's unix socket is bound into
it, and a small forwarder inside turns ``127.0.0.1:3128`` into that socket, so the proxy is the only way
out whatever a program does with ``HTTP(S)_PROXY``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import select
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["DEFAULT_REGISTRIES", "AllowlistProxy", "ProxyRequest"]

log = logging.getLogger(__name__)

DEFAULT_REGISTRIES: tuple[str, ...] = (
    "pypi.org",
    "files.pythonhosted.org",
    "registry.npmjs.org",
    "crates.io",
    "index.crates.io",
    "static.crates.io",
    "proxy.golang.org",
    "sum.golang.org",
)
_HEAD_LIMIT = 64 * 1024
_TIMEOUT = 30.0


@dataclass(frozen=True)
class ProxyRequest:
    """One request through the proxy."""

    method: str
    host: str
    port: int
    target: str
    allowed: bool
    reason: str
    at: str


def _parse_entry(entry: str) -> tuple[str, int | None]:
    host, sep, port = entry.strip().lower().rpartition(":")
    if sep and port.isdigit() and host:
        return host, int(port)
    return entry.strip().lower(), None


class AllowlistProxy:
    """A per-run HTTP(S) proxy that lets through only allowlisted hosts; see the module doc."""

    def __init__(
        self,
        allow: Iterable[str] = DEFAULT_REGISTRIES,
        *,
        on_request: Callable[[ProxyRequest], None] | None = None,
        approve: Callable[[str, int], bool] | None = None,
        unix_path: str | None = None,
    ) -> None:
        """`unix_path`: listen on a new unix socket at that path instead of a TCP port on 127.0.0.1."""
        self.allow = [_parse_entry(entry) for entry in allow]
        self.on_request = on_request
        self.approve = approve
        self.requests: list[ProxyRequest] = []
        self._decisions: dict[tuple[str, int], bool] = {}
        self._granted: str | None = None
        self._lock = threading.Lock()
        self._waited = 0.0
        self._waiting_since: float | None = None
        self._wait_lock = threading.Lock()
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                proxy._handle(self.request)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        class UnixServer(socketserver.ThreadingUnixStreamServer):
            daemon_threads = True

        self.unix_path = unix_path
        self._server: socketserver.BaseServer = (
            UnixServer(unix_path, Handler) if unix_path is not None else Server(("127.0.0.1", 0), Handler)
        )
        self._thread = threading.Thread(target=self._server.serve_forever, name="agentls-proxy", daemon=True)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: the value for ``HTTP_PROXY`` and ``HTTPS_PROXY`` (TCP only)."""
        if self.unix_path is not None:
            raise ValueError("this proxy listens on a unix socket, not a TCP port")
        port = int(self._server.server_address[1])  # type: ignore[index]
        return f"http://127.0.0.1:{port}"

    def start(self) -> AllowlistProxy:
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread.is_alive():  # shutdown() waits for serve_forever, which must have started
            self._server.shutdown()
        self._server.server_close()
        if self.unix_path is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.unix_path)

    def __enter__(self) -> AllowlistProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- policy ----------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def granting(self, reason: str) -> Iterator[None]:
        """Within: allowed hosts are let through without `approve`, each request recorded with `reason`
        (the user approved what runs now as a whole, e.g. ``approved with the install of requests``). The
        answers remembered for the run stay as they were."""
        self._granted = reason
        try:
            yield
        finally:
            self._granted = None

    def allowed(self, host: str, port: int) -> tuple[bool, str]:
        """Whether `host:port` may be reached, and why (approval asked once per host and port)."""
        host = host.lower().rstrip(".")
        listed = False
        for pattern, wanted in self.allow:
            port_ok = port in (443, 80) if wanted is None else port == wanted
            name_ok = host == pattern or (pattern.startswith("*.") and host.endswith(pattern[1:]))
            if port_ok and name_ok:
                listed = True
                break
        if not listed:
            return False, "not in the allowlist"
        if self.approve is None:
            return True, "allowlisted"
        granted = self._granted
        if granted is not None:
            return True, f"allowlisted; {granted}"
        with self._lock:
            decision = self._decisions.get((host, port))
            if decision is None:
                decision = self._ask(self.approve, host, port)
                self._decisions[(host, port)] = decision
        return (True, "allowlisted and approved") if decision else (False, "the user did not approve it")

    def _ask(self, approve: Callable[[str, int], bool], host: str, port: int) -> bool:
        with self._wait_lock:
            self._waiting_since = time.monotonic()
        try:
            return bool(approve(host, port))
        finally:
            with self._wait_lock:
                self._waited += time.monotonic() - self._waiting_since
                self._waiting_since = None

    def waiting_seconds(self) -> float:
        """Seconds spent waiting for `approve`'s answers so far, a question still waiting included."""
        with self._wait_lock:
            since = self._waiting_since
            return self._waited + (time.monotonic() - since if since is not None else 0.0)

    def _record(self, method: str, host: str, port: int, target: str, allowed: bool, reason: str) -> None:
        record = ProxyRequest(
            method, host, port, target, allowed, reason, dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        )
        self.requests.append(record)
        log.info("proxy %s %s:%s %s: %s", method, host, port, "allowed" if allowed else "REFUSED", reason)
        if self.on_request is not None:
            try:
                self.on_request(record)
            except Exception:
                log.exception("recording a proxied request failed")

    # -- serving ---------------------------------------------------------------------------------------

    def _handle(self, client: socket.socket) -> None:
        client.settimeout(_TIMEOUT)
        head = b""
        try:
            while b"\r\n\r\n" not in head and len(head) < _HEAD_LIMIT:
                chunk = client.recv(4096)
                if not chunk:
                    return
                head += chunk
            header, _, rest = head.partition(b"\r\n\r\n")
            lines = header.decode("latin-1").split("\r\n")
            method, target, version = [*lines[0].split(" "), "", "", ""][:3]
            if method == "CONNECT":
                host, _, port_text = target.rpartition(":")
                port = int(port_text) if port_text.isdigit() else 443
                self._connect(client, method, host.strip("[]"), port, target)
                return
            url = urlsplit(target)
            if url.scheme != "http" or not url.hostname:
                self._refuse(
                    client, method, url.hostname or "?", url.port or 80, target, "not a proxy request"
                )
                return
            self._forward(client, method, url.hostname, url.port or 80, target, version, lines[1:], rest)
        except (OSError, ValueError) as error:
            log.debug("proxy connection failed: %r", error)
        finally:
            client.close()

    def _refuse(
        self, client: socket.socket, method: str, host: str, port: int, target: str, why: str
    ) -> None:
        self._record(method, host, port, target, False, why)
        body = f"agentls refused {host}:{port}: {why}\n".encode()
        client.sendall(
            b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nConnection: close\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )

    def _connect(self, client: socket.socket, method: str, host: str, port: int, target: str) -> None:
        ok, why = self.allowed(host, port)
        if not ok:
            self._refuse(client, method, host, port, target, why)
            return
        try:
            upstream = socket.create_connection((host, port), timeout=_TIMEOUT)
        except OSError as error:
            self._record(method, host, port, target, True, f"{why}; the connection failed: {error}")
            client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
            return
        self._record(method, host, port, target, True, why)
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        self._relay(client, upstream)

    def _forward(
        self,
        client: socket.socket,
        method: str,
        host: str,
        port: int,
        target: str,
        version: str,
        headers: list[str],
        rest: bytes,
    ) -> None:
        ok, why = self.allowed(host, port)
        if not ok:
            self._refuse(client, method, host, port, target, why)
            return
        url = urlsplit(target)
        path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        kept = [
            h for h in headers if h and not h.lower().startswith(("proxy-", "connection:", "keep-alive:"))
        ]
        request = f"{method} {path} {version or 'HTTP/1.1'}\r\n" + "".join(f"{h}\r\n" for h in kept)
        request += "Connection: close\r\n\r\n"
        try:
            upstream = socket.create_connection((host, port), timeout=_TIMEOUT)
        except OSError as error:
            self._record(method, host, port, target, True, f"{why}; the connection failed: {error}")
            client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
            return
        self._record(method, host, port, target, True, why)
        upstream.sendall(request.encode("latin-1") + rest)
        self._relay(client, upstream)

    @staticmethod
    def _relay(client: socket.socket, upstream: socket.socket) -> None:
        sockets = [client, upstream]
        try:
            while True:
                readable, _, _ = select.select(sockets, [], [], _TIMEOUT)
                if not readable:
                    return
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (upstream if sock is client else client).sendall(data)
        finally:
            upstream.close()
