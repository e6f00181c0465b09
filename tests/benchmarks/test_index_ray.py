"""`agentls index --engine ray` against the local engine on Django, on the same 2 CPUs: the wall time of a
full (first) index from the command line, the Ray run on a local Ray cluster (tests/ray_cluster.py, 2
CPUs, started before the timings) and the local run with its default process pool, alternated, each into
a fresh index, lexical. The two indexes must hold the same rows. Then 20 files are edited and each engine
runs again on its index: the Ray run is incremental, against its full run.

Run: ``python -m pytest tests/benchmarks/test_index_ray.py -m benchmark -s`` (needs ``agentls[ray]``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.benchmarks import corpora
from tests.benchmarks.harness import median
from tests.ray_cluster import RayCluster, ray_cluster  # noqa: F401  (the fixture)

pytestmark = pytest.mark.benchmark

ROUNDS = 2
MAX_RATIO = 1.5
"""Ray on the same two cores may cost its scheduling and object transfers, not more than half again."""
MAX_INCREMENTAL = 0.5
"""A Ray run after 20 edited files: at most half its full run (it parses only those 20)."""


def _index(root: Path, cache: Path, *args: str, fresh: bool = True) -> tuple[float, dict[str, Any]]:
    # One secret-redaction key for all runs: placeholders (and so a few symbols) derive from it.
    if fresh:
        cache.mkdir(parents=True)
        (cache / "secret-key").write_bytes(bytes(range(32)))
    env = {**os.environ, "AGENTLS_CACHE_DIR": str(cache), "HF_HOME": str(cache / "hf"), "RUST_LOG": "error"}
    env.pop("RAY_ADDRESS", None)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "server.cli", "index", str(root), "--json", "-q", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=1200,
    )
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-3000:]
    report: dict[str, Any] = json.loads(done.stdout)
    return seconds, report


def test_ray_index_against_local_on_django(
    django_corpus: corpora.Corpus,
    bench_tmp: Path,
    ray_cluster: RayCluster,  # noqa: F811
) -> None:
    root = corpora.copy_tree(django_corpus.root, bench_tmp / "django-ray")
    local: list[float] = []
    ray: list[float] = []
    reports: dict[str, dict[str, Any]] = {}
    for n in range(ROUNDS):
        seconds, reports["local"] = _index(root, bench_tmp / f"local-{n}")
        local.append(seconds)
        seconds, reports["ray"] = _index(
            root, bench_tmp / f"ray-{n}", "--engine", "ray", "--address", ray_cluster.address
        )
        ray.append(seconds)
    for key in ("files_indexed", "chunks", "symbols", "skipped"):
        assert reports["ray"][key] == reports["local"][key], key
    ratio = median(ray) / median(local)
    print(
        f"\nindex --engine ray vs local, Django ({reports['local']['files_indexed']:,} files, "
        f"{reports['local']['chunks']:,} chunks), 2 CPUs, load {os.getloadavg()[0]:.1f}:\n"
        f"  local: {', '.join(f'{s:.1f}' for s in local)} s; ray: {', '.join(f'{s:.1f}' for s in ray)} s; "
        f"ray / local (medians) = {ratio:.2f}x (target <= {MAX_RATIO}x)"
    )

    # Then 20 files edited: a second Ray run parses only those (incremental), against the full Ray run.
    for path in sorted(root.rglob("*.py"))[:: max(1, len(list(root.rglob("*.py"))) // 20)][:20]:
        path.write_text(path.read_text() + "\n# edited\n")
    again, changed = _index(
        root,
        bench_tmp / f"ray-{ROUNDS - 1}",
        "--engine",
        "ray",
        "--address",
        ray_cluster.address,
        fresh=False,
    )
    local_again, local_changed = _index(root, bench_tmp / f"local-{ROUNDS - 1}", fresh=False)
    assert changed["files_indexed"] == local_changed["files_indexed"] == 20
    assert changed["files_unchanged"] == reports["ray"]["files_indexed"] - 20
    print(
        f"  20 files edited: ray {again:.1f} s ({again / median(ray):.2f}x its full run), "
        f"local {local_again:.1f} s (target: ray incremental <= {MAX_INCREMENTAL}x its full run), "
        f"load {os.getloadavg()[0]:.1f}"
    )
    assert ratio <= MAX_RATIO
    assert again <= MAX_INCREMENTAL * median(ray)
