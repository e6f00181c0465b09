"""The long variants of the issue 17 suites (the default run has short ones in tests/security/):

- kill -9 of `agentls index` at 20 seeded points of the Django corpus, and at 20 points of a re-index
  after 100 changed files; every rerun must end with the same files, chunks and symbols as a clean run,
  without duplicates, with search working;
- the LSP fuzz with four seeds of 10,000 frames each.

Run: ``python -m pytest tests/benchmarks/test_security_long.py -m benchmark -s``.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from server.features.commands import ALL_COMMANDS
from tests.benchmarks import corpora
from tests.security.lsp_fuzz import fuzz, hostile_frames
from tests.security.test_crash_and_hostile import _counts
from tests.security.test_lsp_fuzz import LoggedServer, _probe
from tests.server.test_lsp_bad_input import STUB, initialize, open_stub

pytestmark = [pytest.mark.benchmark, pytest.mark.timeout(7200)]


def _index(ws: Path, cache: Path) -> list[str]:
    return [sys.executable, "-m", "server.cli", "index", str(ws), "--quiet"]


def _kill_points(ws: Path, cache: Path, points: int, seed: int, longest: float) -> list[float]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", AGENTLS_CACHE_DIR=str(cache))
    rng = random.Random(seed)
    delays = [rng.uniform(0.5, longest) for _ in range(points)]
    for delay in delays:
        proc = subprocess.Popen(
            _index(ws, cache), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(delay)
        proc.kill()
        proc.wait(60)
    subprocess.run(_index(ws, cache), env=env, check=True, capture_output=True)
    return delays


def test_kill_9_at_20_points_of_django_and_of_a_reindex(
    django_corpus: corpora.Corpus, tmp_path: Path
) -> None:
    ws = tmp_path / "django"
    shutil.copytree(django_corpus.root, ws)
    env = dict(os.environ, HF_HUB_OFFLINE="1", AGENTLS_CACHE_DIR=str(tmp_path / "clean"))
    started = time.monotonic()
    subprocess.run(_index(ws, tmp_path / "clean"), env=env, check=True, capture_output=True)
    full = time.monotonic() - started
    clean = _counts(ws, tmp_path / "clean")
    killed = tmp_path / "killed"
    delays = _kill_points(ws, killed, 20, 17, max(1.0, full))
    print(f"\nfull index {full:.1f} s; 20 kills at {sorted(round(d, 1) for d in delays)}; clean {clean}")
    assert _counts(ws, killed) == clean

    # A re-index after 100 changed files, killed at 20 points.
    files = sorted(p for p in ws.rglob("*.py"))[:100]
    for path in files:
        path.write_text(path.read_text() + "\n\ndef added_by_the_benchmark():\n    return 1\n")
    subprocess.run(_index(ws, tmp_path / "clean"), env=env, check=True, capture_output=True)
    clean = _counts(ws, tmp_path / "clean")
    delays = _kill_points(ws, killed, 20, 18, 3.0)
    print(f"re-index of 100 changed files: 20 kills; clean {clean}")
    assert _counts(ws, killed) == clean


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_lsp_fuzz_seeds(seed: int, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "pricing.py").write_text(STUB)
    server = LoggedServer(tmp_path)
    try:
        initialize(server, ws)
        uri = open_stub(server, ws)
        assert _probe(server, uri, 60) is not None
        frames = hostile_frames(
            random.Random(seed), 10_000, uris=[uri], commands=list(ALL_COMMANDS), big_string=True
        )
        deaths: list[int] = []
        report = fuzz(
            server.write,
            lambda timeout: _probe(server, uri, timeout),
            lambda: server.proc.poll() is None,
            lambda: deaths.append(1),
            frames,
        )
        final = _probe(server, uri, 5)
        print(
            f"\nseed {seed}: {report.frames} frames, deaths {report.deaths}, hangs {report.hangs}, "
            f"{report.seconds:.1f} s"
        )
        assert report.deaths == 0 and report.hangs == 0 and final is not None and final < 1.0
        assert "Traceback (most recent call last)" not in server.stderr()
    finally:
        server.close()
