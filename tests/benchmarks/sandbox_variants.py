"""Per-command sandbox costs of one version of agentls, for comparing versions interleaved (session 20).

Run with a worktree of the version first on the path; prints one JSON line of milliseconds::

    git worktree add /tmp/h_base a0ea0a0
    PYTHONPATH=/tmp/h_base python -m tests.benchmarks.sandbox_variants start base 10
    PYTHONPATH=/tmp/h_base python -m tests.benchmarks.sandbox_variants empty base 20
    PYTHONPATH=/tmp/h_base python -m tests.benchmarks.sandbox_variants harness base
    PYTHONPATH=/tmp/h_base python -m tests.benchmarks.sandbox_variants bash base django 20
    PYTHONPATH=/tmp/h_base python -m tests.benchmarks.sandbox_variants bash base /path/to/large/tree 6

- ``start``: `test_sandbox_start`'s loop (materialize Django with one edit into a fresh folder, `true`);
- ``empty``: ``Sandbox.run("true")`` on an empty folder (bubblewrap and the space guard alone);
- ``harness``: one `scripted_run` of `test_agent_speed.py` (overhead and `Sandbox.run` time per step);
- ``bash``: ``BashTool.execute("true")`` on one session, split into the copy's update, `Sandbox.run` and
  the fold-back (`Overlay.sync_back_from`).

``ab`` compares versions in one process, interleaved: ``python -m tests.benchmarks.sandbox_variants ab 60
/tmp/h_base /tmp/h_new`` loads each tree's ``agent/sandbox.py`` and times its ``Sandbox.run("true")``.

The `tests.benchmarks` modules come from the worktree too: one older than the fix of `TimedSandbox` and
`TimedModel` (session 20) is patched here the same way.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.overlay import Overlay
from agent.sandbox import Sandbox, default_scratch_dir
from tests.benchmarks import corpora

DJANGO = Path(os.environ.get("AGENTLS_BENCH_CACHE", Path.home() / ".cache" / "agentls-bench")) / (
    f"corpora/django-{corpora.DJANGO_VERSION}"
)


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def start(n: int) -> dict[str, Any]:
    from tests.benchmarks.test_agent_speed import TARGET

    sandbox = Sandbox()
    out: dict[str, list[float]] = {"total": [], "materialize": [], "bwrap": []}
    for _ in range(n):
        overlay = Overlay(DJANGO)
        text = overlay.read(TARGET)
        overlay.write(TARGET, text.replace("def capfirst(x):", "def capfirst(x):  # edited", 1))
        dest = Path(tempfile.mkdtemp(prefix="agentls-bench-", dir=default_scratch_dir()))
        try:
            started = time.perf_counter()
            done = overlay.materialize(dest)
            middle = time.perf_counter()
            binds = [(DJANGO / rel, DJANGO / rel) for rel in done.bind_dirs]
            result = sandbox.run("true", dest, mount_at=DJANGO, ro_binds=binds)
            ended = time.perf_counter()
            assert result.exit_code == 0 and result.sandboxed
            out["total"].append((ended - started) * 1000)
            out["materialize"].append((middle - started) * 1000)
            out["bwrap"].append((ended - middle) * 1000)
        finally:
            overlay.forget(dest)
            shutil.rmtree(dest, ignore_errors=True)
    return out


def empty(n: int) -> dict[str, Any]:
    sandbox = Sandbox()
    folder = Path(tempfile.mkdtemp(prefix="agentls-bench-empty-", dir=default_scratch_dir()))
    times: list[float] = []
    try:
        sandbox.run("true", folder)
        for _ in range(n):
            started = time.perf_counter()
            assert sandbox.run("true", folder).exit_code == 0
            times.append(_ms(started))
    finally:
        sandbox.close()
        shutil.rmtree(folder, ignore_errors=True)
    return {"each": times}


def harness(tag: str) -> dict[str, Any]:
    import tests.benchmarks.test_agent_speed as speed
    from indexing.config import EmbeddingSettings, IndexSettings
    from indexing.service import WorkspaceIndex

    def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return Sandbox.run(self, *args, **kwargs)
        finally:
            if self.buckets:  # the interpreter's probe runs before the first step
                self.buckets[-1]["command"] += time.perf_counter() - started

    speed.TimedSandbox.run = run  # type: ignore[method-assign]
    if not hasattr(speed.TimedModel, "provider"):
        speed.TimedModel.provider = property(lambda self: self.inner.provider)  # type: ignore[attr-defined]
    index = WorkspaceIndex(
        DJANGO,
        IndexSettings(embedding=EmbeddingSettings(provider="none")),
        cache_dir=Path(tempfile.gettempdir()) / f"agentls-bench-variants-{tag}",
        env={},
    )
    index.index()
    runs = Path(tempfile.mkdtemp(prefix="agentls-bench-runs-"))
    try:
        result = speed.scripted_run(speed.DjangoWorkspace(DJANGO, index, 0), runs)
    finally:
        shutil.rmtree(runs, ignore_errors=True)
    return {"overhead": result.overhead_ms, "command": result.command_ms}


def bash(root: Path, n: int) -> dict[str, Any]:
    from agent.tools.bash import BashTool

    overlay = Overlay(root)
    sandbox = Sandbox()
    phases: dict[str, list[float]] = {"materialize": [], "run": [], "sync": []}

    def timed(name: str, call: Callable[..., Any]) -> Callable[..., Any]:
        def inner(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return call(*args, **kwargs)
            finally:
                phases[name].append(_ms(started))

        return inner

    overlay.materialize = timed("materialize", overlay.materialize)  # type: ignore[method-assign]
    sandbox.run = timed("run", sandbox.run)  # type: ignore[method-assign]
    overlay.sync_back_from = timed("sync", overlay.sync_back_from)  # type: ignore[method-assign]
    tool = BashTool(overlay, sandbox)
    times: list[float] = []
    try:
        started = time.perf_counter()
        assert not tool.execute("true").is_error
        first = _ms(started)
        for _ in range(n):
            started = time.perf_counter()
            assert not tool.execute("true").is_error
            times.append(_ms(started))
    finally:
        tool.close()
        sandbox.close()
    return {"first": first, "each": times, "phases": {k: v[1:] for k, v in phases.items()}}


def ab(n: int, trees: list[str]) -> dict[str, Any]:
    """Each tree's `Sandbox.run("true")` on one empty folder, interleaved in this process (medians)."""
    sandboxes: dict[str, Any] = {}
    for tree in trees:
        name = f"sandbox_variant_{len(sandboxes)}"
        spec = importlib.util.spec_from_file_location(name, Path(tree) / "agent" / "sandbox.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        sandboxes[tree] = module.Sandbox()
    folder = Path(tempfile.mkdtemp(prefix="agentls-bench-ab-", dir=default_scratch_dir()))
    times: dict[str, list[float]] = {tree: [] for tree in trees}
    try:
        for sandbox in sandboxes.values():
            sandbox.run("true", folder)
        for _ in range(n):
            for tree, sandbox in sandboxes.items():
                started = time.perf_counter()
                assert sandbox.run("true", folder).exit_code == 0
                times[tree].append(_ms(started))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {"median_ms": {tree: round(statistics.median(v), 1) for tree, v in times.items()}}


def main(argv: list[str]) -> None:
    mode = argv[0]
    if mode == "ab":
        result = ab(int(argv[1]), argv[2:])
    elif mode == "start":
        result = start(int(argv[2]))
    elif mode == "empty":
        result = empty(int(argv[2]))
    elif mode == "harness":
        result = harness(argv[1])
    elif mode == "bash":
        result = bash(DJANGO if argv[2] == "django" else Path(argv[2]), int(argv[3]))
    else:
        raise SystemExit(f"unknown mode {mode!r}: start, empty, harness, bash or ab")
    tag = argv[1] if mode != "ab" else "ab"
    print(json.dumps({"mode": mode, "tag": tag, "load": os.getloadavg()[0], **result}))


if __name__ == "__main__":
    main(sys.argv[1:])
