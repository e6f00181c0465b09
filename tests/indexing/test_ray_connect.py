"""indexing.ray_connect: an address nobody answers at fails at once, with what to do."""

from __future__ import annotations

import socket
import time

import pytest

from indexing.ray_connect import RayUnavailable, connect

pytest.importorskip("ray", reason="Ray is not installed: pip install 'agentls[ray]' runs these tests")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.timeout(60)
def test_an_address_nobody_answers_at_fails_at_once_with_what_to_do() -> None:
    address = f"127.0.0.1:{_closed_port()}"
    started = time.monotonic()
    with pytest.raises(RayUnavailable) as error:
        connect(address)
    assert time.monotonic() - started < 10  # ray.init alone retries such an address for minutes
    assert address in str(error.value)
    assert "ray start --head" in str(error.value) and "--engine local" in str(error.value)
