"""`agentls batch` over 20 scripted tasks on a local Ray cluster (2 CPUs): 20 records, patches that apply,
the driver killed half-way and the batch resumed without redoing finished tasks (issue 16's check), and
the same 20 tasks on the local engine (``--jobs 2``) in the same run as the baseline of the wall times.

Run: ``python -m pytest tests/benchmarks/test_batch_ray.py -m benchmark -s`` (needs ``agentls[ray]``).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from tests.ray_cluster import RayCluster, ray_cluster  # noqa: F401  (the fixture)
from tests.server.batch_harness import (
    BODY,
    STUB,
    apply_patch,
    cli_env,
    fake_model,
    implement,
    make_repo,
    records,
    run_and_kill,
    run_batch_cli,
    task_module,
    write_tasks,
)

pytestmark = pytest.mark.benchmark

TASKS = 20
KILL_AFTER = 10


def test_twenty_tasks_on_ray_killed_halfway_and_resumed(
    ray_cluster: RayCluster,  # noqa: F811
    tmp_path: Path,
) -> None:
    repo = tmp_path / "repo"
    commit = make_repo(repo, TASKS)
    tasks = write_tasks(tmp_path / "tasks.jsonl", [implement(n, repo, commit) for n in range(TASKS)])
    with fake_model() as model:
        env = cli_env(model, tmp_path / "cache")
        ray_args = ("--engine", "ray", "--address", ray_cluster.address)

        out = tmp_path / "ray"
        started = time.monotonic()
        before, _ = run_and_kill(tasks, out, env, *ray_args, after=KILL_AFTER)
        killed_at = time.monotonic() - started
        requests_before = len(model.message_requests)
        started = time.monotonic()
        resumed = run_batch_cli(tasks, out, env, *ray_args, timeout=900)
        resume_seconds = time.monotonic() - started
        assert resumed.returncode == 0, resumed.stderr
        later = model.message_requests[requests_before:]
        redone = {n for r in later if (n := task_module(r.body)) is not None}

        local_out = tmp_path / "local"
        started = time.monotonic()
        local = run_batch_cli(tasks, local_out, env, "--jobs", "2", timeout=900)
        local_seconds = time.monotonic() - started
        assert local.returncode == 0, local.stderr

    found = records(out)
    assert len(found) == TASKS and all(r["status"] == "verified" for r in found.values())
    for name, data in before.items():
        assert (out / "records" / name).read_bytes() == data
    assert not redone & {int(name[1:3]) for name in before}
    for task_id, record in found.items():
        number = int(task_id[1:])
        clone = apply_patch(repo, commit, out / record["patch"], tmp_path / f"apply-{task_id}")
        text = (clone / "pkg" / f"m{number}.py").read_text()
        assert BODY in text and STUB not in text
    assert len(records(local_out)) == TASKS

    def per_task(values: Any) -> float:
        return sum(float(r["seconds"]) for r in values) / max(1, len(values))

    ray_total = killed_at + resume_seconds
    print(
        f"\nbatch, {TASKS} scripted implement tasks, 2 CPUs (load {os.getloadavg()[0]:.1f}):\n"
        f"  ray: killed after {len(before)} records at {killed_at:.1f} s; resume ran {TASKS - len(before)} "
        f"tasks in {resume_seconds:.1f} s (redid none); {ray_total:.1f} s in all, "
        f"{per_task(found.values()):.1f} s a task inside its worker\n"
        f"  local --jobs 2: {local_seconds:.1f} s, {per_task(records(local_out).values()):.1f} s a task; "
        f"ray / local wall = {ray_total / local_seconds:.2f}"
    )
