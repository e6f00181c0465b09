"""The shared index on object storage (`indexing.shared`) against a local index of the same commit.

Corpus: a clone of this repository at HEAD (a git repository is what a shared index is of). One run
starts moto's S3 server on 127.0.0.1, publishes the clone's index there (``publish``), indexes the same
clone locally, then, in a second clone with a few files edited, searches the shared base plus its local
index. Figures: publish time over a local full index, the local index of the edited clone (files
indexed), and the median search latency shared/local over the same queries in interleaved passes.
Lexical only (no model), so the figures do not depend on a model being on the machine.
"""

from __future__ import annotations

import logging
import os
import statistics
import subprocess
import time
from pathlib import Path

import pytest

from indexing.config import EmbeddingSettings, IndexSettings
from indexing.service import WorkspaceIndex
from indexing.shared import publish

pytestmark = pytest.mark.benchmark

QUERIES = [
    "hybrid search ranking fusion",
    "WorkspaceIndex",
    "reciprocal rank",
    "parse tree-sitter chunks",
    "bubblewrap sandbox network",
    "proposal WorkspaceEdit",
    "embedding model pull",
    "secret detection redaction",
    "index lock corrupt rebuild",
    "agent loop tool result",
]
PASSES = 5
EDITED = ["indexing/ranking.py", "agent/loop.py", "server/cli/main.py"]


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


def test_shared_index_speed(tmp_path: Path) -> None:
    moto_server = pytest.importorskip("moto.server", reason="moto[server] is in the test extra")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_REGION="us-east-1",
        AWS_ENDPOINT_URL=endpoint,
        AWS_ALLOW_HTTP="true",
    )
    import boto3

    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket="bench")
    repo = Path(__file__).resolve().parents[2]
    base, mine = tmp_path / "base", tmp_path / "mine"
    _git(tmp_path, "clone", "-q", "--shared", str(repo), str(base))
    _git(tmp_path, "clone", "-q", "--shared", str(repo), str(mine))
    for path in EDITED:
        with (mine / path).open("a") as f:
            f.write("\n# edited in this workspace\n")

    def settings(**extra: object) -> IndexSettings:
        return IndexSettings(embedding=EmbeddingSettings(provider="none"), **extra)  # type: ignore[arg-type]

    cache = tmp_path / "cache"
    started = time.perf_counter()
    report = publish(WorkspaceIndex(base, settings(uri=str(tmp_path / "p")), cache_dir=cache), "s3://bench/x")
    publish_s = time.perf_counter() - started
    local = WorkspaceIndex(mine, settings(uri=str(tmp_path / "local")), cache_dir=cache)
    started = time.perf_counter()
    local.index()
    local_s = time.perf_counter() - started
    shared = WorkspaceIndex(
        mine, settings(uri=str(tmp_path / "overlay"), shared="s3://bench/x"), cache_dir=cache
    )
    started = time.perf_counter()
    overlay = shared.index()
    overlay_s = time.perf_counter() - started
    for index in (local, shared):  # warm: tables opened, first reads done
        for q in QUERIES:
            index.search(q)
    times: dict[str, list[float]] = {"local": [], "shared": []}
    for _ in range(PASSES):
        for name, index in (("local", local), ("shared", shared)):
            for q in QUERIES:
                t = time.perf_counter()
                index.search(q)
                times[name].append(time.perf_counter() - t)
    server.stop()
    p50 = {k: statistics.median(v) * 1000 for k, v in times.items()}
    load = os.getloadavg()[0]
    print(
        f"\nshared index: {report.files} files, {report.chunks} chunks; publish {publish_s:.1f} s, "
        f"local full index {local_s:.1f} s ({publish_s / local_s:.2f}x); edited clone's local index "
        f"{overlay.files_indexed} files in {overlay_s:.2f} s; search p50 local {p50['local']:.1f} ms, "
        f"shared {p50['shared']:.1f} ms ({p50['shared'] / p50['local']:.2f}x); load {load:.1f}"
    )
    assert overlay.files_indexed == len(EDITED)
