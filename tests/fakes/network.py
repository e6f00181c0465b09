"""Refuse network traffic that leaves the machine, to prove code paths stay offline.

`no_network()` patches the socket layer for the duration of a `with` block (loopback and Unix sockets
still work, so local fake servers can be used) and records every refused attempt.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class NetworkBlocked(OSError):
    """Raised instead of connecting anywhere but this machine."""


def _is_local(address: Any) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX path
        return True
    host = address[0] if isinstance(address, tuple) and address else address
    if isinstance(host, bytes):
        host = host.decode()
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%", 1)[0]).is_loopback
    except ValueError:
        return False


@contextmanager
def no_network() -> Iterator[list[str]]:
    """Within the block, connecting or resolving a non-local address raises `NetworkBlocked`.

    Yields the list of refused attempts (as strings) so a test can assert it stayed empty.
    """
    attempts: list[str] = []
    original_connect = socket.socket.connect
    original_connect_ex = socket.socket.connect_ex
    original_getaddrinfo = socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> None:
        if not _is_local(address):
            attempts.append(f"connect {address!r}")
            raise NetworkBlocked(f"test forbids network access: connect to {address!r}")
        original_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        if not _is_local(address):
            attempts.append(f"connect_ex {address!r}")
            raise NetworkBlocked(f"test forbids network access: connect to {address!r}")
        return original_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and not _is_local((host,)):
            attempts.append(f"getaddrinfo {host!r}")
            raise NetworkBlocked(f"test forbids network access: resolve {host!r}")
        return original_getaddrinfo(host, *args, **kwargs)

    setattr(socket.socket, "connect", connect)  # noqa: B010 (setattr keeps mypy out of socket's stubs)
    setattr(socket.socket, "connect_ex", connect_ex)  # noqa: B010
    setattr(socket, "getaddrinfo", getaddrinfo)  # noqa: B010
    try:
        yield attempts
    finally:
        setattr(socket.socket, "connect", original_connect)  # noqa: B010
        setattr(socket.socket, "connect_ex", original_connect_ex)  # noqa: B010
        setattr(socket, "getaddrinfo", original_getaddrinfo)  # noqa: B010
