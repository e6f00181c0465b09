"""A local Ray cluster for tests: `ray start --head` on 127.0.0.1 with 2 CPUs, once per test session.

Import the fixture into a test module (``from tests.ray_cluster import ray_cluster``) and take
`ray_cluster`: a `RayCluster` whose `address` (``127.0.0.1:PORT``) goes to ``ray.init(address=...)`` or
``--address``. The head runs with ``--block`` in its own process group and its own temporary folder, on
ports picked free here (never Ray's fixed defaults 6379, 8265, 10001, 52365), so it does not meet another
Ray cluster on the same machine, and it is stopped at the end of the session: SIGINT to ``ray start``
(which stops what it started), then SIGKILL to its process group and to any Ray process still naming its
temporary folder. Without Ray installed (``pip install 'agentls[ray]'``) the tests using it are skipped,
saying so. Modules that import the fixture share one head.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["RayCluster", "ray_cluster", "start_head"]

REPO_ROOT = Path(__file__).resolve().parents[1]
NUM_CPUS = 2
START_TIMEOUT = 90.0
"""Seconds for the head to come up (about 14 s on the loaded 2-core machine)."""


@dataclass(frozen=True)
class RayCluster:
    """A running head node: its address, its temporary folder and the ``ray start --block`` process."""

    address: str
    temp_dir: Path
    process: subprocess.Popen[bytes]
    log: Path

    def env(self) -> dict[str, str]:
        """Environment variables that make a Ray driver (``ray.init()`` with no address) join this cluster."""
        return {"RAY_ADDRESS": self.address, "RAY_USAGE_STATS_ENABLED": "0"}


def _free_ports(count: int) -> list[int]:
    """`count` distinct ports free on 127.0.0.1 right now (held together, so no two are the same)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def start_head(temp_dir: Path, *, num_cpus: int = NUM_CPUS, timeout: float = START_TIMEOUT) -> RayCluster:
    """Start a Ray head on 127.0.0.1 and wait until its GCS answers; `stop_head` stops it."""
    ray_bin = Path(sys.executable).with_name("ray")
    command = [str(ray_bin) if ray_bin.exists() else "ray"]
    (
        port,
        client_port,
        dashboard_port,
        agent_http,
        agent_grpc,
        metrics,
        runtime_env_agent,
        node_manager,
        object_manager,
    ) = _free_ports(9)
    command += [
        "start",
        "--head",
        "--block",
        "--disable-usage-stats",
        "--node-ip-address=127.0.0.1",
        f"--port={port}",
        f"--num-cpus={num_cpus}",
        f"--temp-dir={temp_dir}",
        "--include-dashboard=false",
        f"--dashboard-port={dashboard_port}",
        f"--ray-client-server-port={client_port}",
        f"--dashboard-agent-listen-port={agent_http}",
        f"--dashboard-agent-grpc-port={agent_grpc}",
        f"--metrics-export-port={metrics}",
        f"--runtime-env-agent-port={runtime_env_agent}",
        f"--node-manager-port={node_manager}",
        f"--object-manager-port={object_manager}",
        f"--object-store-memory={100 * 1024 * 1024}",
    ]
    temp_dir.mkdir(parents=True, exist_ok=True)
    log = temp_dir / "ray-start.log"
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    # Ray's workers import agentls (and the tests' helpers) from this checkout, installed or not.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    cluster = RayCluster(f"127.0.0.1:{port}", temp_dir, process, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stop_head(cluster)
            raise RuntimeError(
                f"`ray start --head` exited with status {process.returncode}; its output:\n"
                + log.read_text(errors="replace")[-4000:]
            )
        if (temp_dir / "ray_current_cluster").exists() and _listening(port) and _listening(node_manager):
            return cluster
        time.sleep(0.2)
    stop_head(cluster)
    raise RuntimeError(
        f"the Ray head did not come up within {timeout:.0f} s; its output:\n"
        + log.read_text(errors="replace")[-4000:]
    )


def _leftover_pids(temp_dir: Path) -> list[int]:
    """Processes whose command line names this cluster's temporary folder (Ray's daemons do)."""
    mine = str(temp_dir)
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if mine in cmdline:
            pids.append(int(entry.name))
    return pids


def stop_head(cluster: RayCluster, timeout: float = 20.0) -> None:
    """Stop the head started by `start_head` and every process of its cluster (never another cluster's)."""
    process = cluster.process
    if process.poll() is None:
        process.send_signal(signal.SIGINT)  # `ray start --block` stops the processes it started
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait(5)
    for pid in _leftover_pids(cluster.temp_dir):
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


_shared: list[RayCluster] = []
_users = 0


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[RayCluster]:
    """A Ray head on 127.0.0.1 with 2 CPUs for the whole session; skipped when Ray is not installed.

    Test modules that import this fixture each get their own session fixture from pytest; they share one
    head all the same (started by the first, stopped when the last is torn down)."""
    global _users
    pytest.importorskip("ray", reason="Ray is not installed: pip install 'agentls[ray]' runs these tests")
    if not _shared:
        # A short folder in /tmp, not pytest's: Ray's unix sockets live under it, and a socket's path may
        # not pass 107 bytes. Under pytest's folder (/tmp/pytest-of-root/pytest-1012/popen-gw0/ray1/...)
        # `.../session_<date>_<pid>/sockets/plasma_store` took 108 once the run counter had four digits.
        _shared.append(start_head(Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))))
    _users += 1
    try:
        yield _shared[0]
    finally:
        _users -= 1
        if _users == 0:
            cluster = _shared.pop()
            stop_head(cluster)
            shutil.rmtree(cluster.temp_dir, ignore_errors=True)
