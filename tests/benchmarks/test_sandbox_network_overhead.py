"""What ``agent.sandbox.network = "registries"`` costs per sandboxed command: the forwarder that starts
before each command (agentls' Python binds the proxy port inside, forks the forwarder, execs the
command), against ``"off"`` in the same run. Median of 20 ``true`` commands per policy, interleaved.

Run: ``python -m pytest tests/benchmarks/test_sandbox_network_overhead.py -m benchmark -s``.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import pytest

from agent.sandbox import Sandbox, SandboxSettings

pytestmark = pytest.mark.benchmark

ROUNDS = 20
MAX_EXTRA_SECONDS = 0.25
"""The forwarder may add at most this much to a command (Python's start-up dominates it)."""


def test_registries_adds_a_bounded_start_up_cost_per_command(tmp_path: Path) -> None:
    sandboxes = {
        policy: Sandbox(SandboxSettings(network=policy, allowed_hosts=["127.0.0.1:9"]))
        for policy in ("off", "registries")
    }
    seconds: dict[str, list[float]] = {policy: [] for policy in sandboxes}
    try:
        for sandbox in sandboxes.values():
            sandbox.run("true", tmp_path)  # probe bwrap, start the proxy
        for _ in range(ROUNDS):
            for policy, sandbox in sandboxes.items():
                started = time.perf_counter()
                assert sandbox.run("true", tmp_path).exit_code == 0
                seconds[policy].append(time.perf_counter() - started)
    finally:
        for sandbox in sandboxes.values():
            sandbox.close()
    off, registries = (statistics.median(seconds[p]) for p in ("off", "registries"))
    print(
        f"\nmedian per command: off {off * 1000:.0f} ms, registries {registries * 1000:.0f} ms "
        f"(+{(registries - off) * 1000:.0f} ms, {registries / off:.2f}x)"
    )
    assert registries - off < MAX_EXTRA_SECONDS
