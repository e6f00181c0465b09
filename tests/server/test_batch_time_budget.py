"""A batch task's wall-clock budget: ``"budget": {"max_minutes": ...}`` in its line (or `--max-minutes`
for tasks that set none) bounds its run, which ends as an unfinished record with the edit so far."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pytest

from server.batch import BatchOptions, TaskFileError, _digest, load_tasks, run_task, task_digest
from tests.fakes.anthropic_server import FakeAnthropic, stall, text, tool_use, turn
from tests.server.batch_harness import BODY, EDITOR, STUB, cli_env, implement, make_repo, write_tasks


def test_a_tasks_max_minutes_stops_its_run_with_the_work_so_far(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    commit = make_repo(repo, 1)
    path = "pkg/m0.py"
    tasks = write_tasks(
        tmp_path / "tasks.jsonl", [implement(0, repo, commit, budget={"max_minutes": 0.05, "max_steps": 6})]
    )
    [task] = load_tasks(tasks)
    assert task.max_minutes == 0.05 and task.max_steps == 6
    with FakeAnthropic() as fake:
        fake.enqueue(
            turn(text("Plan: replace the stub's body."), tool_use(EDITOR, {"command": "view", "path": path})),
            tool_use(EDITOR, {"command": "str_replace", "path": path, "old_str": STUB, "new_str": BODY}),
            stall(20, text("Implemented it.")),
        )
        began = time.monotonic()
        outcome = run_task(
            task, str(tmp_path / "out"), cli_env(fake, tmp_path / "cache"), BatchOptions(index=False)
        )
        took = time.monotonic() - began
    record = outcome.record
    assert record["status"] == "unfinished" and record["run_status"] == "budget_exhausted", record
    assert took < 15, f"the task ran {took:.1f} s with a 3 s budget"
    assert "Time budget reached" in record["error"] and "max_minutes = 0.05" in record["error"]
    assert outcome.patch is not None and "+" + BODY.rstrip("\n") in outcome.patch


def test_max_minutes_in_a_tasks_file_is_checked_and_leaves_old_digests_alone(tmp_path: Path) -> None:
    path = tmp_path / "tasks.jsonl"
    line = {"id": "a", "kind": "run", "repo": "r", "instruction": "x"}
    path.write_text(json.dumps(line) + "\n")
    [plain] = load_tasks(path)
    # A record written before max_minutes existed still matches its task: the digest is the one of the
    # task's fields as they were then.
    before = {k: v for k, v in dataclasses.asdict(plain).items() if k not in ("id", "max_minutes")}
    assert plain.max_minutes is None and task_digest(plain) == _digest(before)[:16]
    path.write_text(json.dumps({**line, "budget": {"max_minutes": 15}}) + "\n")
    [bounded] = load_tasks(path)
    assert bounded.max_minutes == 15.0 and task_digest(bounded) != task_digest(plain)
    path.write_text(json.dumps({**line, "budget": {"max_minutes": "soon"}}) + "\n")
    with pytest.raises(TaskFileError, match='"max_minutes" must be a number of minutes, 0 or more'):
        load_tasks(path)
    assert BatchOptions(max_minutes=5).max_minutes == 5
