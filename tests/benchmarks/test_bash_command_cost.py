"""What one bash tool command costs besides the command, on Django and on a tree of the kernel's size.

Each call of the bash tool (`agent.tools.bash`) brings the workspace copy up to date, runs the command
under bubblewrap (`Sandbox.run`, whose space guard watches the copy and the session's /tmp) and folds what
the command changed back into the overlay (a walk of the copy). `true` through the tool, on a Django copy
and on a large tree (Django's files copied `COPIES` times: about 75,000 files, the kernel's count), is timed
against a bare ``Sandbox.run("true")`` on an empty folder (bubblewrap's own start), interleaved, in the
same run. Targets (session 20, after the RAM caps):

- Django: the tool's `Sandbox.run` at most 1.5x the bare `true` (it adds the session's shell state and the
  space guard);
- the large tree: the tool's `Sandbox.run` at most 1.5x Django's: what the sandbox does per command must
  not grow with the tree. The fold-back's walk does (it reads every file's stat): printed, no target.

Run: ``python -m pytest tests/benchmarks/test_bash_command_cost.py -m benchmark -s``
(``AGENTLS_BENCH_BASH_COPIES`` sets the number of copies; the large tree takes about 0.7 GB on disk and as
much in the scratch folder, /dev/shm).
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agent.overlay import Overlay
from agent.sandbox import CommandResult, Sandbox, default_scratch_dir
from agent.tools.bash import BashTool
from tests.benchmarks import corpora
from tests.benchmarks.harness import Entry, record, rerun_command

pytestmark = pytest.mark.benchmark

COPIES = int(os.environ.get("AGENTLS_BENCH_BASH_COPIES", "27"))
ROUNDS = 10
DJANGO_RATIO = 1.5
LARGE_RATIO = 1.5


class _TimedSandbox(Sandbox):
    """The real sandbox, keeping the wall time of each `run`."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []

    def run(self, *args: Any, **kwargs: Any) -> CommandResult:
        started = time.perf_counter()
        try:
            return super().run(*args, **kwargs)
        finally:
            self.seconds.append(time.perf_counter() - started)


class _Session:
    """A bash tool session on one tree: the wall time of each call and of its `Sandbox.run`."""

    def __init__(self, root: Path) -> None:
        self.sandbox = _TimedSandbox()
        self.tool = BashTool(Overlay(root), self.sandbox)
        self.total: list[float] = []
        self.first = self._call()
        self.sandbox.seconds.clear()

    def _call(self) -> float:
        started = time.perf_counter()
        result = self.tool.execute("true")
        seconds = time.perf_counter() - started
        assert not result.is_error, result.content
        return seconds

    def step(self) -> None:
        self.total.append(self._call())

    def close(self) -> None:
        self.tool.close()


def _large_tree(corpus: corpora.Corpus, under: Path) -> tuple[Path, int]:
    root = under / "large-tree"
    if not root.exists():
        for index in range(COPIES):
            shutil.copytree(corpus.root, root / f"copy{index:02d}")
    return root, corpus.files * COPIES


def _ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def test_bash_command_cost_does_not_grow_with_the_tree(
    django_corpus: corpora.Corpus, bench_tmp: Path, request: pytest.FixtureRequest
) -> None:
    large, large_files = _large_tree(django_corpus, bench_tmp)
    bare_sandbox = Sandbox()
    assert bare_sandbox.isolated, "bubblewrap is needed for this benchmark"
    empty = Path(tempfile.mkdtemp(prefix="agentls-bench-empty-", dir=default_scratch_dir()))
    bare: list[float] = []

    def bare_true() -> None:
        started = time.perf_counter()
        assert bare_sandbox.run("true", empty).exit_code == 0
        bare.append(time.perf_counter() - started)

    sessions = {"django": _Session(django_corpus.root), "large": _Session(large)}
    steps: list[Callable[[], None]] = [bare_true, sessions["django"].step, sessions["large"].step]
    try:
        bare_true()
        bare.clear()
        for _ in range(ROUNDS):
            for step in steps:
                step()
    finally:
        for session in sessions.values():
            session.close()
        bare_sandbox.close()
        shutil.rmtree(empty, ignore_errors=True)
    django, big = sessions["django"], sessions["large"]
    bare_ms = _ms(bare)
    run_ms = {name: _ms(s.sandbox.seconds) for name, s in sessions.items()}
    total_ms = {name: _ms(s.total) for name, s in sessions.items()}
    django_ratio = run_ms["django"] / bare_ms
    large_ratio = run_ms["large"] / run_ms["django"]
    passed = django_ratio <= DJANGO_RATIO and large_ratio <= LARGE_RATIO
    load = os.getloadavg()[0]
    record(
        Entry(
            key="agent.bash_command_cost",
            title="bash tool: what one `true` costs besides the command, Django and a kernel-sized tree",
            target=f"the tool's Sandbox.run on Django <= {DJANGO_RATIO}x a bare sandbox `true`; on "
            f"{large_files:,} files <= {LARGE_RATIO}x Django's (same run)",
            measured=f"Sandbox.run: Django {run_ms['django']:.1f} ms = {django_ratio:.2f}x bare "
            f"{bare_ms:.1f} ms; {large_files:,} files {run_ms['large']:.1f} ms = {large_ratio:.2f}x Django",
            passed=passed,
            figures={
                "bare_true_median_ms": round(bare_ms, 2),
                "run_median_ms": {k: round(v, 2) for k, v in run_ms.items()},
                "call_median_ms": {k: round(v, 2) for k, v in total_ms.items()},
                "first_call_ms": {name: round(s.first * 1000, 1) for name, s in sessions.items()},
                "files": {"django": django_corpus.files, "large": large_files},
                "rounds": ROUNDS,
                "load_1min": round(load, 2),
            },
            details=[
                f"whole call (copy update, Sandbox.run, fold-back walk): Django {total_ms['django']:.1f} "
                f"ms, {large_files:,} files {total_ms['large']:.1f} ms (the fold-back's walk grows with "
                "the tree)",
                f"first call (the copy made): Django {django.first * 1000:.0f} ms, "
                f"{large_files:,} files {big.first * 1000:.0f} ms",
                f"{ROUNDS} rounds interleaved (bare, Django, large); load average {load:.1f} at the end",
            ],
            rerun=rerun_command(request.node.nodeid),
        )
    )
    assert django_ratio <= DJANGO_RATIO, f"Sandbox.run on Django {django_ratio:.2f}x a bare `true`"
    assert large_ratio <= LARGE_RATIO, f"Sandbox.run on {large_files:,} files {large_ratio:.2f}x Django's"
