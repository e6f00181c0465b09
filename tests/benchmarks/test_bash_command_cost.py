"""What one bash tool command costs besides the command, on Django and on a tree of the kernel's size.

Each call of the bash tool (`agent.tools.bash`) brings the workspace copy up to date, runs the command under
bubblewrap (`Sandbox.run`, whose space guard watches the copy and the session's /tmp) and folds what the
command changed back into the overlay (`Overlay.sync_back_from`: since session 21 the paths inotify saw
change; before, a walk of the whole copy). `COMMAND` through the tool (an append to a file, a folder deleted
and made again with a file in it), on a Django copy and on a large tree (Django's files copied `COPIES` times:
about 75,000 files, the kernel's count), is timed against a bare ``Sandbox.run("true")`` on an empty folder
(bubblewrap's own start), interleaved, in the same run, and so is the same call on two more sessions whose
overlays walk the copy after every command (`Overlay(watch_copies=False)`: the fold-back as it was, and as it
is when inotify is not to be had). Targets:

- Django: the tool's `Sandbox.run` at most 1.5x the bare `true` (it adds the session's shell state and the
  space guard);
- the large tree: the tool's `Sandbox.run` at most 1.5x Django's: what the sandbox does per command must
  not grow with the tree (session 20);
- the large tree: the fold-back after a command at most 1.5x Django's (session 21). The walked sessions'
  fold-back is printed beside it, no target.

Run: ``python -m pytest tests/benchmarks/test_bash_command_cost.py -m benchmark -s -n 0``
(``AGENTLS_BENCH_BASH_COPIES`` sets the number of copies; the large tree takes about 0.7 GB on disk, kept in
the benchmarks' cache for the next run, and twice as much in the scratch folder, /dev/shm, for its two
sessions).
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

from agent.overlay import Overlay, SyncReport
from agent.sandbox import CommandResult, Sandbox, default_scratch_dir
from agent.tools.bash import BashTool
from tests.benchmarks import corpora
from tests.benchmarks.harness import Entry, record, rerun_command

pytestmark = [pytest.mark.benchmark, pytest.mark.timeout(1800)]

COPIES = int(os.environ.get("AGENTLS_BENCH_BASH_COPIES", "27"))
ROUNDS = 10
DJANGO_RATIO = 1.5
LARGE_RATIO = 1.5
FOLD_RATIO = 1.5


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


class _TimedOverlay(Overlay):
    """The real overlay, keeping the wall time of each fold-back."""

    def __init__(self, root: Path, *, watch_copies: bool) -> None:
        super().__init__(root, watch_copies=watch_copies)
        self.seconds: list[float] = []

    def sync_back_from(self, dest: Path) -> SyncReport:
        started = time.perf_counter()
        try:
            return super().sync_back_from(dest)
        finally:
            self.seconds.append(time.perf_counter() - started)


COMMAND = "echo . >> bench.txt && rm -rf bench && mkdir -p bench/a && echo . > bench/a/n"
"""What each call runs: changes for the fold-back to find, a file written and a folder deleted and made again
(the first call creates them)."""


class _Session:
    """A bash tool session on one tree: the wall time of each call, of its `Sandbox.run` and of its
    fold-back."""

    def __init__(self, root: Path, *, watch_copies: bool = True) -> None:
        self.sandbox = _TimedSandbox()
        self.overlay = _TimedOverlay(root, watch_copies=watch_copies)
        self.tool = BashTool(self.overlay, self.sandbox)
        self.total: list[float] = []
        self.first = self._call()
        self.sandbox.seconds.clear()
        self.overlay.seconds.clear()

    def _call(self) -> float:
        started = time.perf_counter()
        result = self.tool.execute(COMMAND)
        seconds = time.perf_counter() - started
        assert not result.is_error, result.content
        return seconds

    def step(self) -> None:
        self.total.append(self._call())

    def close(self) -> None:
        self.tool.close()


def _large_tree(corpus: corpora.Corpus, under: Path) -> tuple[Path, int]:
    root = under / f"{corpus.root.name}-x{COPIES}"
    if not root.exists():
        partial = Path(tempfile.mkdtemp(prefix="large-tree-", dir=under))
        for index in range(COPIES):
            shutil.copytree(corpus.root, partial / f"copy{index:02d}")
        partial.rename(root)
    return root, corpus.files * COPIES


def _ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def test_bash_command_cost_does_not_grow_with_the_tree(
    django_corpus: corpora.Corpus, bench_cache: Path, request: pytest.FixtureRequest
) -> None:
    large, large_files = _large_tree(django_corpus, bench_cache)
    bare_sandbox = Sandbox()
    assert bare_sandbox.isolated, "bubblewrap is needed for this benchmark"
    empty = Path(tempfile.mkdtemp(prefix="agentls-bench-empty-", dir=default_scratch_dir()))
    bare: list[float] = []

    def bare_true() -> None:
        started = time.perf_counter()
        assert bare_sandbox.run("true", empty).exit_code == 0
        bare.append(time.perf_counter() - started)

    sessions = {
        "django": _Session(django_corpus.root),
        "large": _Session(large),
        "django_walked": _Session(django_corpus.root, watch_copies=False),
        "large_walked": _Session(large, watch_copies=False),
    }
    steps: list[Callable[[], None]] = [bare_true, *(session.step for session in sessions.values())]
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
    fold_ms = {name: _ms(s.overlay.seconds) for name, s in sessions.items()}
    django_ratio = run_ms["django"] / bare_ms
    large_ratio = run_ms["large"] / run_ms["django"]
    fold_ratio = fold_ms["large"] / fold_ms["django"]
    passed = django_ratio <= DJANGO_RATIO and large_ratio <= LARGE_RATIO and fold_ratio <= FOLD_RATIO
    load = os.getloadavg()[0]
    record(
        Entry(
            key="agent.bash_command_cost",
            title="bash tool: what a small command costs besides itself (its Sandbox.run, the fold-back), "
            "Django and a kernel-sized tree",
            target=f"the tool's Sandbox.run on Django <= {DJANGO_RATIO}x a bare sandbox `true`; on "
            f"{large_files:,} files <= {LARGE_RATIO}x Django's, and its fold-back <= {FOLD_RATIO}x Django's "
            "(same run)",
            measured=f"Sandbox.run: Django {run_ms['django']:.1f} ms = {django_ratio:.2f}x bare "
            f"{bare_ms:.1f} ms; {large_files:,} files {run_ms['large']:.1f} ms = {large_ratio:.2f}x Django; "
            f"fold-back: Django {fold_ms['django']:.2f} ms, {large_files:,} files {fold_ms['large']:.2f} ms "
            f"= {fold_ratio:.2f}x (walked: {fold_ms['django_walked']:.1f} and {fold_ms['large_walked']:.1f} "
            "ms)",
            passed=passed,
            figures={
                "bare_true_median_ms": round(bare_ms, 2),
                "run_median_ms": {k: round(v, 2) for k, v in run_ms.items()},
                "call_median_ms": {k: round(v, 2) for k, v in total_ms.items()},
                "fold_back_median_ms": {k: round(v, 2) for k, v in fold_ms.items()},
                "first_call_ms": {name: round(s.first * 1000, 1) for name, s in sessions.items()},
                "files": {"django": django_corpus.files, "large": large_files},
                "rounds": ROUNDS,
                "load_1min": round(load, 2),
            },
            details=[
                f"whole call (copy update, Sandbox.run, fold-back): Django {total_ms['django']:.1f} ms, "
                f"{large_files:,} files {total_ms['large']:.1f} ms; with the fold-back walking the copy "
                f"{total_ms['django_walked']:.1f} and {total_ms['large_walked']:.1f} ms",
                f"first call (the copy made, its fold-back a walk): Django {django.first * 1000:.0f} ms, "
                f"{large_files:,} files {big.first * 1000:.0f} ms",
                f"{ROUNDS} rounds interleaved (bare, Django, large, Django walked, large walked); load "
                f"average {load:.1f} at the end",
            ],
            rerun=rerun_command(request.node.nodeid),
        )
    )
    assert django_ratio <= DJANGO_RATIO, f"Sandbox.run on Django {django_ratio:.2f}x a bare `true`"
    assert large_ratio <= LARGE_RATIO, f"Sandbox.run on {large_files:,} files {large_ratio:.2f}x Django's"
    assert fold_ratio <= FOLD_RATIO, f"the fold-back on {large_files:,} files {fold_ratio:.2f}x Django's"
