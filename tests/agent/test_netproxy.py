"""The allowlisting proxy: a local registry stub on 127.0.0.1 is reached through it (plain HTTP and a
CONNECT tunnel), another local port is refused with 403, approval is asked once per host, and every
request is recorded."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest

from agent.netproxy import AllowlistProxy, ProxyRequest
from tests.fakes.registry_stub import RegistryStub


@pytest.fixture
def stubs() -> Iterator[tuple[int, int]]:
    registry, other = RegistryStub(), RegistryStub()
    yield registry.port, other.port
    registry.close()
    other.close()


def test_the_proxy_allows_the_registry_stub_and_refuses_another_port(stubs: tuple[int, int]) -> None:
    allowed, refused = stubs
    seen: list[ProxyRequest] = []
    with (
        AllowlistProxy([f"127.0.0.1:{allowed}"], on_request=seen.append) as proxy,
        httpx.Client(proxy=proxy.url, trust_env=False, timeout=10) as client,
    ):
        ok = client.get(f"http://127.0.0.1:{allowed}/simple/requests/")
        assert ok.status_code == 200 and ok.text == "simple index at /simple/requests/"
        no = client.get(f"http://127.0.0.1:{refused}/simple/requests/")
        assert no.status_code == 403 and "not in the allowlist" in no.text

        # A CONNECT tunnel (what HTTPS uses) to each.
        for port, expected in ((allowed, b"200 Connection established"), (refused, b"403 Forbidden")):
            with socket.create_connection(
                ("127.0.0.1", int(proxy.url.rsplit(":", 1)[1])), timeout=10
            ) as sock:
                sock.sendall(f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
                answer = sock.recv(4096)
                assert expected in answer
                if port == allowed:
                    sock.sendall(b"GET /tunnel HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    data = b""
                    while chunk := sock.recv(4096):
                        data += chunk
                    assert data.endswith(b"simple index at /tunnel")
    assert [(r.method, r.port, r.allowed) for r in seen] == [
        ("GET", allowed, True),
        ("GET", refused, False),
        ("CONNECT", allowed, True),
        ("CONNECT", refused, False),
    ]
    assert seen == proxy.requests


def test_approval_is_asked_once_per_host_and_a_refusal_sticks(stubs: tuple[int, int]) -> None:
    allowed, _ = stubs
    asked: list[tuple[str, int]] = []

    def approve(host: str, port: int) -> bool:
        asked.append((host, port))
        return False

    with (
        AllowlistProxy([f"127.0.0.1:{allowed}"], approve=approve) as proxy,
        httpx.Client(proxy=proxy.url, trust_env=False, timeout=10) as client,
    ):
        for _ in range(2):
            answer = client.get(f"http://127.0.0.1:{allowed}/simple/")
            assert answer.status_code == 403 and "did not approve" in answer.text
    assert asked == [("127.0.0.1", allowed)]
    assert proxy.allowed("pypi.org", 443) == (False, "not in the allowlist")
    assert AllowlistProxy().allowed("PyPI.org", 443) == (True, "allowlisted")
    assert AllowlistProxy(["*.example.com"]).allowed("files.example.com", 443)[0]
    assert not AllowlistProxy(["pypi.org"]).allowed("pypi.org", 8080)[0]


def test_a_grant_lets_allowed_hosts_through_without_asking_and_is_not_remembered(
    stubs: tuple[int, int],
) -> None:
    """What runs within `granting` was approved as a whole (an install): allowed hosts are reached without
    a question, listed hosts only, and afterwards the host is asked about as before."""
    allowed, refused = stubs
    asked: list[tuple[str, int]] = []

    def approve(host: str, port: int) -> bool:
        asked.append((host, port))
        return True

    with (
        AllowlistProxy([f"127.0.0.1:{allowed}"], approve=approve) as proxy,
        httpx.Client(proxy=proxy.url, trust_env=False, timeout=10) as client,
    ):
        with proxy.granting("approved with the install of demo"):
            assert client.get(f"http://127.0.0.1:{allowed}/simple/").status_code == 200
            assert client.get(f"http://127.0.0.1:{refused}/simple/").status_code == 403
        assert asked == []
        assert client.get(f"http://127.0.0.1:{allowed}/simple/").status_code == 200
    assert asked == [("127.0.0.1", allowed)]
    assert [(r.port, r.reason) for r in proxy.requests] == [
        (allowed, "allowlisted; approved with the install of demo"),
        (refused, "not in the allowlist"),
        (allowed, "allowlisted and approved"),
    ]
