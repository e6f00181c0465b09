"""Transcripts: flushed JSON lines, secrets scrubbed, request deltas that rebuild each conversation, and
the listing and loading `agentls runs` does (partial files included)."""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from pathlib import Path

import pytest

from agent.transcript import (
    RunNotFound,
    Transcript,
    content_hash,
    list_runs,
    load_run,
    new_run_id,
    reconstruct_messages,
)

KEY = "sk-ant-api03-very-secret-key"


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_records_are_flushed_as_they_are_written(tmp_path: Path) -> None:
    transcript = Transcript(tmp_path / "runs", "20260101-000000-aaaaaa")
    transcript.write("run_start", run_id=transcript.run_id, task={"title": "Do it", "kind": "run"})
    transcript.write("decision", kind="stage", stage="act")
    # Not closed yet: a crash here would still leave both records on disk.
    records = lines(transcript.path)
    assert [r["type"] for r in records] == ["run_start", "decision"]
    assert all(isinstance(r["t"], float) and "at" in r for r in records)
    transcript.close()
    transcript.close()  # closing twice is harmless


def test_secrets_are_never_written(tmp_path: Path) -> None:
    quoted = 'key"with\\quotes'
    transcript = Transcript(tmp_path, redact=[KEY, quoted, ""])
    transcript.write("request", headers={"x-api-key": KEY}, note=f"the key is {KEY}", other=[quoted])
    transcript.close()
    raw = transcript.path.read_text()
    assert KEY not in raw and "with\\\\quotes" not in raw
    record = lines(transcript.path)[0]
    assert record["headers"] == {"x-api-key": "[redacted]"}
    assert record["note"] == "the key is [redacted]"
    assert record["other"] == ["[redacted]"]


def test_requests_write_the_prefix_once_and_messages_as_deltas(tmp_path: Path) -> None:
    transcript = Transcript(tmp_path)
    system = "You are careful."
    tools = [{"name": "bash", "type": "bash_20250124"}]
    conversation: list[dict[str, object]] = [{"role": "user", "content": "Fix the bug."}]
    transcript.request(step=1, system=system, tools=tools, messages=conversation, model="m")
    conversation += [
        {"role": "assistant", "content": [{"type": "text", "text": "Looking."}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "ok"}]},
    ]
    transcript.request(step=2, system=system, tools=tools, messages=conversation, model="m")
    transcript.close()

    first, second = lines(transcript.path)
    assert first["system"] == system and first["tools"] == tools
    assert "system" not in second and "tools" not in second
    assert first["system_sha256"] == second["system_sha256"] == content_hash(system)
    assert second["tools_sha256"] == content_hash(tools)
    assert second["messages_start"] == 1 and len(second["messages"]) == 2  # type: ignore[arg-type]
    rebuilt = reconstruct_messages(load_run(tmp_path, transcript.run_id))
    assert [len(m) for m in rebuilt] == [1, 3]
    assert json.loads(json.dumps(rebuilt[1])) == conversation


def _finished_run(directory: Path, run_id: str, status: str, title: str, cost: float) -> None:
    transcript = Transcript(directory, run_id)
    transcript.write("run_start", run_id=run_id, task={"title": title, "kind": "run"}, model="m")
    transcript.write("response", usage={"input_tokens": 10, "output_tokens": 5}, cost=cost)
    transcript.write(
        "run_end",
        status=status,
        usage={"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 85},
        cost=cost,
    )
    transcript.close()


def test_list_runs_newest_first_with_partial_files(tmp_path: Path) -> None:
    _finished_run(tmp_path, "20260101-100000-aaaaaa", "proposed", "Older task", 0.01)
    _finished_run(tmp_path, "20260102-100000-bbbbbb", "failed", "Newer task", 0.02)
    # A run that crashed: no run_end, last line cut mid-write, file not touched for a while.
    crashed = Transcript(tmp_path, "20260103-100000-cccccc")
    crashed.write("run_start", run_id=crashed.run_id, task={"title": "Crashed", "kind": "run"})
    crashed.write("response", usage={"input_tokens": 7, "output_tokens": 3}, cost=0.005)
    crashed.close()
    with open(crashed.path, "a") as handle:
        handle.write('{"type": "tool_call", "na')
    old = time.time() - 3600
    os.utime(crashed.path, (old, old))
    # One still being written.
    running = Transcript(tmp_path, "20260104-100000-dddddd")
    running.write("run_start", run_id=running.run_id, task={"title": "Running", "kind": "run"})

    runs = list_runs(tmp_path)
    assert [r.run_id for r in runs] == [
        "20260104-100000-dddddd",
        "20260103-100000-cccccc",
        "20260102-100000-bbbbbb",
        "20260101-100000-aaaaaa",
    ]
    assert [r.status for r in runs] == ["running", "incomplete", "failed", "proposed"]
    assert runs[3].task == "Older task" and runs[3].total_tokens == 100 and runs[3].cost == 0.01
    assert runs[1].total_tokens == 10 and runs[1].cost == pytest.approx(0.005)  # summed from responses
    loaded = load_run(tmp_path, "20260103")
    assert loaded.skipped_lines == 1 and [r.type for r in loaded.records] == ["run_start", "response"]
    running.close()
    assert list_runs(tmp_path / "missing") == []


@pytest.mark.parametrize(
    ("answer", "applied", "listed"),
    [
        (("allowed", "Apply the changes"), {"written": ["a.py"], "error": None}, "applied"),
        (("allowed", "Apply the changes"), {"written": [], "error": "disk full"}, "allowed, not written"),
        (("allowed", "Apply the changes"), None, "allowed"),  # killed while writing
        (("rejected", "Reject"), None, "rejected"),
        (("cancelled", None), None, "cancelled"),
        (None, None, ""),
    ],
)
def test_the_answer_to_a_runs_proposal_comes_after_its_end_and_is_listed(
    tmp_path: Path, answer: tuple[str, str | None] | None, applied: dict[str, object] | None, listed: str
) -> None:
    """``agentls acp`` appends the user's answer to a run's proposal after the run's end
    (`Transcript.continued`): its `t` goes on from the run's clock, the run stays ended, and `list_runs`
    says what came of the proposal."""
    run_id = "20260101-100000-aaaaaa"
    _finished_run(tmp_path, run_id, "proposed", "A", 0.0)
    path = tmp_path / f"{run_id}.jsonl"
    # the run began an hour ago (its clock 2 s before its first record) and ended a minute ago
    began = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    records = lines(path)
    records[0].update(at=began.isoformat(), t=2.0)
    records[-1].update(at=(began + dt.timedelta(minutes=59)).isoformat(), t=2.0 + 59 * 60)
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    later = Transcript.continued(path, redact=[KEY], durable=True)
    if answer is not None:
        outcome, chosen = answer
        later.write("approval", subject="proposal", detail="prop-1", outcome=outcome, answer=chosen, note=KEY)
    if applied is not None:
        later.write("decision", kind="proposal_applied", proposal_id="prop-1", **applied)
    later.close()

    [run] = list_runs(tmp_path)
    assert (run.status, run.proposal_answer) == ("proposed", listed)
    for record in lines(path)[3:]:  # an hour and 2 s since the run's clock started, not 0
        assert 3602 <= float(str(record["t"])) < 3602 + 60, record
    assert KEY not in path.read_text()


def test_load_run_by_prefix_and_clear_errors(tmp_path: Path) -> None:
    _finished_run(tmp_path, "20260101-100000-aaaaaa", "proposed", "A", 0.0)
    _finished_run(tmp_path, "20260101-110000-bbbbbb", "proposed", "B", 0.0)
    assert load_run(tmp_path, "20260101-11").summary.task == "B"
    assert load_run(tmp_path, "20260101-100000-aaaaaa").of_type("run_end")[0].get("status") == "proposed"
    with pytest.raises(RunNotFound, match="matches several runs"):
        load_run(tmp_path, "20260101")
    with pytest.raises(RunNotFound, match="agentls runs"):
        load_run(tmp_path, "2099")
    with pytest.raises(RunNotFound, match="not a run id"):
        load_run(tmp_path, "../20260101-100000-aaaaaa")


def test_a_transcript_that_cannot_be_written_does_not_raise(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    transcript = Transcript(blocker)
    transcript.write("run_start", run_id=transcript.run_id)  # logged, not raised
    assert transcript.records_written == 0


def test_run_ids_sort_by_time_and_are_unique() -> None:
    ids = {new_run_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(len(i) == len("20260101-000000-aaaaaa") for i in ids)


def _dead_pid() -> int:
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_run_whose_process_is_gone_is_incomplete_not_running(tmp_path: Path) -> None:
    """A killed run wrote no run_end; its recorded process decides, not how recent the file is."""
    killed = Transcript(tmp_path, "20260105-100000-eeeeee")
    killed.write("run_start", run_id=killed.run_id, task={"title": "Killed", "kind": "run"}, pid=_dead_pid())
    alive = Transcript(tmp_path, "20260105-110000-ffffff")
    alive.write("run_start", run_id=alive.run_id, task={"title": "Alive", "kind": "run"}, pid=os.getpid())
    old = time.time() - 3600
    os.utime(alive.path, (old, old))  # quiet for an hour (a long model call), still running
    assert {r.run_id: r.status for r in list_runs(tmp_path)} == {
        killed.run_id: "incomplete",
        alive.run_id: "running",
    }
    killed.close()
    alive.close()


def test_a_run_still_going_in_its_process_is_not_resumed_twice(tmp_path: Path) -> None:
    from agent.resume import RunState, save_state
    from agent.runner import NotResumable, load_resumable
    from agent.task import Task

    task = Task(kind="run", instruction="do it")
    save_state(
        tmp_path,
        RunState(
            "20260106-100000-aaaaaa",
            "/ws",
            task,
            "running",
            [{"role": "user", "content": "x"}],
            pid=os.getpid(),
        ),
    )
    with pytest.raises(NotResumable, match=r"still going \(process \d+\)"):
        load_resumable(tmp_path, "20260106-100000-aaaaaa")
    save_state(
        tmp_path,
        RunState(
            "20260106-100000-bbbbbb",
            "/ws",
            task,
            "running",
            [{"role": "user", "content": "x"}],
            pid=_dead_pid(),
        ),
    )
    assert load_resumable(tmp_path, "20260106-100000-bbbbbb").pid is not None  # killed: resumable
