"""`agentls batch`: many scripted agent tasks, each in its own checkout, on a process pool and on a local
Ray cluster; records and patches written, a driver killed half-way resumed without redoing finished tasks.

Real parts throughout: the CLI in a subprocess, git clones, the runner, the bubblewrap sandbox, the
anthropic SDK against the fake server (one responder answers every run), a real Ray head on 127.0.0.1.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from agent.transcript import load_run
from server.batch import (
    BatchOptions,
    BatchSummary,
    BatchTask,
    TaskFileError,
    batch_exit_code,
    load_tasks,
    run_batch,
    run_task,
)
from server.cli import main
from tests.agent.team.team_harness import (
    INSTRUCTION,
    TWO_REVIEWS_TOML,
    RoleScript,
    shop_workspace,
    two_reviews_script,
)
from tests.fakes.anthropic_server import FakeAnthropic
from tests.ray_cluster import RayCluster, ray_cluster  # noqa: F401  (the fixture)
from tests.server.batch_harness import (
    AGENT_TOML,
    BODY,
    STUB,
    apply_patch,
    cli_env,
    commit_all,
    fake_model,
    implement,
    make_repo,
    records,
    run_and_kill,
    run_batch_cli,
    running,
    task_module,
    write_tasks,
)


@pytest.fixture
def model() -> Any:
    with fake_model() as fake:
        yield fake


def _mixed_tasks(repo: Path, commit: str) -> list[dict[str, Any]]:
    """One task of each kind, and one more implement: 4 tasks over modules 0-3."""
    return [
        implement(0, repo, commit),
        {"id": "t01", "kind": "run", "repo": str(repo), "commit": commit,
         "instruction": "Implement double_1 in pkg/m1.py", "target": "pkg/m1.py"},
        {"id": "t02", "kind": "fix", "repo": str(repo), "commit": commit, "target": "pkg/m2.py:1",
         "message": "double_2 raises NotImplementedError", "budget": {"max_cost_usd": 0.5, "max_steps": 6}},
        implement(3, repo, commit),
    ]  # fmt: skip


def _modules_requested(fake: FakeAnthropic, since: int = 0) -> list[int]:
    return [n for r in fake.message_requests[since:] if (n := task_module(r.body)) is not None]


def _check_done(out: Path, repo: Path, commit: str, ids: list[str], tmp: Path, engine: str) -> None:
    """Every task verified, with a record holding what the issue asks for and a patch `git apply` takes."""
    found = records(out)
    assert sorted(found) == ids
    results = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [r["id"] for r in results] == ids  # task order, one line each
    for task_id, record in found.items():
        assert record["status"] == "verified", record
        assert record["engine"] == engine and record["commit"] == commit
        assert record["tests_run"] >= 1 and record["tests_passed"] == record["tests_run"]
        assert record["steps"] == 3 and record["tokens"]["total"] > 0 and record["cost"] > 0
        assert Path(record["transcript"]).is_file()
        index = record["index"]
        assert index.get("files", 0) >= 5 and index.get("chunks", 0) >= 4, index
        number = int(task_id[1:])
        assert record["files"] == [f"pkg/m{number}.py"]
        clone = apply_patch(repo, commit, out / record["patch"], tmp / f"apply-{engine}-{task_id}")
        text = (clone / "pkg" / f"m{number}.py").read_text()
        assert BODY in text and STUB not in text
    assert not any((out / "work").iterdir())  # checkouts removed once their patch is saved


def test_local_batch_killed_halfway_resumes_without_redoing_finished_tasks(
    model: FakeAnthropic, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    commit = make_repo(repo, 4)
    tasks = write_tasks(tmp_path / "tasks.jsonl", _mixed_tasks(repo, commit))
    out = tmp_path / "out"
    env = cli_env(model, tmp_path / "cache")

    before, workers = run_and_kill(tasks, out, env, "--jobs", "1", after=2)
    assert len(before) >= 2 and workers
    deadline = time.monotonic() + 10
    while any(running(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in workers if running(pid)]  # the pool went down with its driver
    requests_before = len(model.message_requests)

    done = run_batch_cli(tasks, out, env, "--jobs", "2")
    assert done.returncode == 0, done.stderr
    assert f"skipped {len(before)} finished earlier" in done.stderr
    for name, data in before.items():  # finished tasks untouched, and no model call made for them
        assert (out / "records" / name).read_bytes() == data
    finished = {int(name[1:3]) for name in before}
    assert not finished & set(_modules_requested(model, requests_before))
    _check_done(out, repo, commit, ["t00", "t01", "t02", "t03"], tmp_path, "local")

    # Everything done: nothing runs (in this process: no worker is started), the same exit status.
    again = CliRunner().invoke(main, ["batch", str(tasks), "--out", str(out)], env=env)
    assert again.exit_code == 0 and "ran 0, skipped 4" in again.stderr


def test_ray_batch_killed_halfway_resumes(
    model: FakeAnthropic,
    ray_cluster: RayCluster,  # noqa: F811
    tmp_path: Path,
) -> None:
    repo = tmp_path / "repo"
    commit = make_repo(repo, 4)
    tasks = write_tasks(tmp_path / "tasks.jsonl", [implement(n, repo, commit) for n in range(4)])
    out = tmp_path / "out"
    env = cli_env(model, tmp_path / "cache")
    ray_args = ("--engine", "ray", "--address", ray_cluster.address)

    before, _ = run_and_kill(tasks, out, env, *ray_args, after=2)
    requests_before = len(model.message_requests)
    done = run_batch_cli(tasks, out, env, *ray_args)
    assert done.returncode == 0, done.stderr
    for name, data in before.items():
        assert (out / "records" / name).read_bytes() == data
    assert not {int(n[1:3]) for n in before} & set(_modules_requested(model, requests_before))
    _check_done(out, repo, commit, ["t00", "t01", "t02", "t03"], tmp_path, "ray")


def test_a_task_that_cannot_start_is_a_failed_record(model: FakeAnthropic, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    make_repo(repo, 1)
    outcome = run_task(
        BatchTask(id="bad", kind="implement", repo=str(repo), commit="no-such-commit", target="pkg/m0.py:1"),
        str(tmp_path / "out"),
        cli_env(model, tmp_path / "cache"),
        BatchOptions(),
    )
    assert outcome.patch is None
    assert outcome.record["status"] == "failed"
    assert "'no-such-commit' is not a commit of" in outcome.record["error"]
    assert not (tmp_path / "out" / "work" / "bad").exists()
    assert not model.message_requests


def test_a_setting_no_run_can_use_fails_the_task_before_its_index_naming_the_file_and_line(
    model: FakeAnthropic, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A provider for a role that is not the run's, in the user's own file (a checkout's sensitive settings
    are never trusted): every task would index its checkout and then fail; it fails at once, saying where."""
    config = tmp_path / "config"
    (config / "agentls").mkdir(parents=True)
    user_file = config / "agentls" / "agentls.toml"
    user_file.write_text(
        '[agent.model]\nprovider = "anthropic"\n\n[agent.roles.solo.model]\nprovider = "openai"\n'
    )
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    repo = tmp_path / "repo"
    commit = make_repo(repo, 1)
    task = BatchTask(**implement(0, repo, commit))
    outcome = run_task(task, str(tmp_path / "out"), cli_env(model, tmp_path / "cache"), BatchOptions())
    record = outcome.record
    assert record["status"] == "failed" and outcome.patch is None
    assert f"{user_file}:5" in record["error"] and "not a bug" in record["error"], record["error"]
    assert not record.get("index"), record  # no index was built
    assert not model.message_requests


def test_two_attempts_of_a_task_at_once_do_not_share_a_checkout(model: FakeAnthropic, tmp_path: Path) -> None:
    """A driver killed on a Ray cluster can leave its worker running for a moment while the resumed
    driver starts the same task: each attempt has its own checkout and index, and the next run of the
    batch removes what the dead one left."""
    from concurrent.futures import ThreadPoolExecutor

    repo = tmp_path / "repo"
    commit = make_repo(repo, 1)
    (task,) = load_tasks(write_tasks(tmp_path / "tasks.jsonl", [implement(0, repo, commit)]))
    out, env = tmp_path / "out", cli_env(model, tmp_path / "cache")
    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(lambda _: run_task(task, str(out), env, BatchOptions()), range(2)))
    for outcome in outcomes:
        assert outcome.record["status"] == "verified", outcome.record
        assert outcome.record["index"].get("files", 0) >= 2, outcome.record["index"]
    assert not any((out / "work").iterdir())

    left = out / "work" / "t00" / "0dead0"  # a killed attempt's checkout
    (left / "pkg").mkdir(parents=True)
    summary = run_batch([task], out, env, jobs=1)
    assert summary.ran == ["t00"] and batch_exit_code(summary) == 0
    assert not any((out / "work").iterdir())


def test_a_ray_task_brings_its_transcript_back_to_the_driver(model: FakeAnthropic, tmp_path: Path) -> None:
    from server.batch import save_outcome

    repo = tmp_path / "repo"
    commit = make_repo(repo, 1)
    (task,) = load_tasks(write_tasks(tmp_path / "tasks.jsonl", [implement(0, repo, commit)]))
    node_out, driver_out = tmp_path / "node", tmp_path / "driver"  # the node's disk, the driver's
    outcome = run_task(task, str(node_out), cli_env(model, tmp_path / "cache"), BatchOptions(), "ray")
    on_node = Path(outcome.record["transcript"])
    assert outcome.transcript == on_node.read_text() and '"kind"' in outcome.transcript

    record = save_outcome(driver_out, outcome)
    assert Path(record["transcript"]) == driver_out / "runs" / on_node.name
    assert Path(record["transcript"]).read_text() == on_node.read_text()
    local = run_task(task, str(tmp_path / "local"), cli_env(model, tmp_path / "cache"), BatchOptions())
    assert local.transcript is None  # a process pool shares the driver's disk: nothing to carry


def test_failed_tasks_are_skipped_on_a_rerun_unless_retry_failed(
    model: FakeAnthropic, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    make_repo(repo, 1)
    tasks = load_tasks(write_tasks(tmp_path / "tasks.jsonl", [implement(0, repo, "no-such-commit")]))
    out, env = tmp_path / "out", cli_env(model, tmp_path / "cache")
    failed = run_task(tasks[0], str(out), env, BatchOptions())  # what an earlier run left
    (out / "records").mkdir(parents=True)
    (out / "records" / "t00.json").write_text(json.dumps(failed.record))

    again = run_batch(tasks, out, env, jobs=1)
    assert again.ran == [] and again.skipped == ["t00"] and batch_exit_code(again) == 1
    assert json.loads((out / "results.jsonl").read_text())["status"] == "failed"
    retried = run_batch(tasks, out, env, jobs=1, retry_failed=True)
    assert retried.ran == ["t00"] and batch_exit_code(retried) == 1
    assert json.loads((out / "records" / "t00.json").read_text())["pid"] != failed.record["pid"]  # ran again


def test_a_task_whose_line_changed_since_its_record_runs_again(model: FakeAnthropic, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    make_repo(repo, 1)
    out, env = tmp_path / "out", cli_env(model, tmp_path / "cache")
    first = load_tasks(write_tasks(tmp_path / "tasks.jsonl", [implement(0, repo, "no-such-commit")]))
    assert run_batch(first, out, env, jobs=1).ran == ["t00"]
    # The user fixes the line (same id): its old record is for another task, so it runs again.
    fixed = load_tasks(write_tasks(tmp_path / "tasks.jsonl", [implement(0, repo, "still-no-commit")]))
    again = run_batch(fixed, out, env, jobs=1)
    assert again.changed == ["t00"] and again.ran == ["t00"] and again.skipped == []
    record = json.loads((out / "records" / "t00.json").read_text())
    assert "'still-no-commit' is not a commit" in record["error"]
    assert run_batch(fixed, out, env, jobs=1).ran == []  # unchanged since: finished
    # A record from before digests were kept counts as finished, as it did.
    del record["task_digest"]
    (out / "records" / "t00.json").write_text(json.dumps(record))
    assert run_batch(first, out, env, jobs=1).skipped == ["t00"]


@pytest.mark.parametrize(
    ("statuses", "interrupted", "code"),
    [
        (["verified", "no_change"], False, 0),
        (["verified", "unverified"], False, 3),
        (["verified", "unfinished"], False, 3),
        (["unverified", "failed"], False, 1),
        (["verified"], True, 130),
    ],
)
def test_exit_status(statuses: list[str], interrupted: bool, code: int) -> None:
    summary = BatchSummary(
        total=len(statuses),
        records={f"t{i}": {"status": s} for i, s in enumerate(statuses)},
        interrupted=interrupted,
    )
    assert batch_exit_code(summary) == code


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"kind": "implement", "repo": "r", "target": "a.py"}', 'needs "target": "FILE:LINE"'),
        ('{"kind": "deploy", "repo": "r"}', '"kind" must be one of implement, fix, run'),
        ('{"kind": "run", "repo": "r"}', 'a run task needs "instruction"'),
        ('{"kind": "fix", "repo": "r", "target": "a.py"}', '"diagnostics" (or "message")'),
        ('{"kind": "run", "instruction": "x"}', '"repo" is missing'),
        ('{"kind": "run", "repo": "r", "instruction": "x", "budget": {"max_steps": 0}}', '"max_steps"'),
        ("not json", "not JSON"),
    ],
)
def test_tasks_file_errors_name_the_line_and_the_fix(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "tasks.jsonl"
    path.write_text('# a comment\n{"kind": "run", "repo": "r", "instruction": "ok"}\n' + line + "\n")
    with pytest.raises(TaskFileError, match="line 3") as error:
        load_tasks(path)
    assert message in str(error.value)


def test_tasks_file_ids_are_stable_and_unique(tmp_path: Path) -> None:
    path = tmp_path / "tasks.jsonl"
    run = '{"kind": "run", "repo": "r", "instruction": "x"}\n'
    path.write_text(run + '{"kind": "run", "repo": "r", "instruction": "y", "max_cost_usd": 0.1}\n')
    first, second = load_tasks(path)
    assert first.id.startswith("task-") and first.id != second.id
    assert first.repo == str(tmp_path / "r") and second.max_cost_usd == 0.1
    path.write_text('{"kind": "run", "repo": "r", "instruction": "y", "max_cost_usd": 0.1}\n' + run)
    assert [t.id for t in load_tasks(path)] == [second.id, first.id]  # ids follow content, not order
    path.write_text(run + run)
    with pytest.raises(TaskFileError, match="already used on line 1"):
        load_tasks(path)


def test_every_bad_line_of_a_tasks_file_is_named_at_once(tmp_path: Path) -> None:
    """A tasks file with several bad lines runs nothing and names each of them, so one edit fixes all."""
    path = tmp_path / "tasks.jsonl"
    ok = '{"id": "a", "kind": "run", "repo": "r", "instruction": "ok"}'
    path.write_text(
        "\n".join([ok, '{"kind": "implemnt", "repo": "r"}', ok, "{oops", '{"kind": "run", "repo": "r"}'])
        + "\n"
    )
    with pytest.raises(TaskFileError) as error:
        load_tasks(path)
    message = str(error.value)
    assert message.startswith(f"4 lines of {path} are not valid tasks; no task ran:")
    assert f"{path} line 2: \"kind\" must be one of implement, fix, run (got 'implemnt')" in message
    assert f"{path} line 3: the id 'a' is already used on line 1" in message
    assert f"{path} line 4: not JSON" in message
    assert f'{path} line 5: a run task needs "instruction"' in message


def test_each_task_and_each_review_node_of_a_team_batch_has_its_own_rounds(tmp_path: Path) -> None:
    """Two team tasks, one after the other in one worker, on a graph with two review nodes of one round
    each: every review node of every task gets its round (none is used up by another's)."""
    repo = shop_workspace(tmp_path / "repo")
    toml = AGENT_TOML + "\n[agent.team]\nconfirm_spec = false\n" + TWO_REVIEWS_TOML
    (repo / "agentls.toml").write_text(toml)
    commit = commit_all(repo)
    line = {"kind": "run", "repo": str(repo), "commit": commit, "instruction": INSTRUCTION, "mode": "twice"}
    lines = [{"id": name, **line} for name in ("a", "b")]
    tasks = load_tasks(write_tasks(tmp_path / "tasks.jsonl", lines))
    one_task = two_reviews_script()
    script = RoleScript({role: turns * 2 for role, turns in one_task.items()})
    out = tmp_path / "out"
    with FakeAnthropic(responder=script) as fake:
        env = cli_env(fake, tmp_path / "cache")
        outcomes = [run_task(task, str(out), env, BatchOptions(index=False)) for task in tasks]

    for outcome in outcomes:
        record = outcome.record
        assert not record["summary"].startswith("WARNING"), record["summary"]
        assert record["status"] == "verified", record
        run = load_run(out / "runs", record["run_id"])
        fixed = [(r.get("node"), r.get("number")) for r in run.records if r.get("kind") == "reflection"]
        assert fixed == [("check", 1), ("recheck", 1)], record["id"]
    assert script.left() == {}, "each review node of each task used its one round"
