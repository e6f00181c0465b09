"""Transcripts: flushed JSON lines, secrets scrubbed, request deltas that rebuild each conversation, and
the listing and loading `agentls runs` does (partial files included)."""

from __future__ import annotations

import dataclasses
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
    proposal_answers,
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


def _text(lines: int, changed: dict[int, str]) -> str:
    return "".join(changed.get(n, f"line {n}\n") for n in range(lines))


# a.py: 3 hunks, two of them in one @@ section (4 lines apart, they share their context); b.py: 2; c.py: new
_A = ("a.py", _text(40, {}), _text(40, {2: "two\n", 6: "six\n", 30: "thirty\n"}))
_B = ("b.py", _text(30, {}), _text(30, {5: "five\n", 25: "twenty-five\n"}))
_C = ("c.py", "", "C = 1\n")


def _proposed_run(directory: Path, run_id: str) -> tuple[Path, dict[str, list[str]]]:
    """A finished run whose proposal changes a.py (3 hunks), b.py (2) and creates c.py; the hunk ids of
    each file, as the language server's per-hunk review makes them."""
    from agent.overlay import FileChange, unified_diff
    from server.features.runs.proposals import file_hunks

    changes = [
        FileChange(path, "created" if not old else "modified", None, old, new, None, "")
        for path, old, new in (_A, _B, _C)
    ]
    changes = [
        dataclasses.replace(
            c, diff=unified_diff(None if not c.base_text else c.path, c.path, c.base_text, c.new_text)
        )
        for c in changes
    ]
    files = [{"path": c.path, "kind": c.kind, "old_path": None, "diff": c.diff} for c in changes]
    transcript = Transcript(directory, run_id)
    transcript.write("run_start", run_id=run_id, task={"title": "T", "kind": "run"}, model="m")
    transcript.write("proposal", proposal_id="p1", summary="s", verified=True, diff="", files=files)
    transcript.write("run_end", status="proposed", usage={}, cost=0.0)
    transcript.close()
    return transcript.path, {c.path: [h.id for h in file_hunks(c)] for c in changes}


def _answer(
    path: Path, outcome: str, files: list[str], hunks: list[str] | None = None, **applied: object
) -> None:
    later = Transcript.continued(path)
    more = {} if hunks is None else {"hunks": hunks}
    later.write("approval", subject="proposal", detail="p1", outcome=outcome, answer="x", files=files, **more)
    if applied:
        later.write("decision", kind="proposal_applied", proposal_id="p1", **applied)
    later.close()


ALL = ["a.py", "b.py", "c.py"]


@pytest.mark.parametrize(
    ("steps", "listed"),
    [
        # two of a.py's hunks accepted, then the rest rejected
        (
            [("hunks", "a.py", [0, 1], ["a.py"], None), ("rejected", ["a.py", "b.py", "c.py"])],
            "partly applied (2 of 6 hunks), rest rejected",
        ),
        # all of a.py's hunks: a whole file, and the two others wait
        ([("hunks", "a.py", [0, 1, 2], ["a.py"], None)], "partly applied (1 of 3 files), 2 pending"),
        ([("hunks", "b.py", [1], ["b.py"], None)], "partly applied (1 of 6 hunks), 5 pending"),
        # per hunk, then the rest whole: everything
        ([("hunks", "b.py", [0], ["b.py"], None), ("allowed", ALL, ALL, None)], "applied in 2 parts"),
        ([("allowed", ALL, ALL, None)], "applied"),
        ([("allowed", ALL, ["a.py"], "c.py: disk full")], "partly applied (1 of 3 files), 2 not written"),
        ([("allowed", ALL, [], "declined"), ("rejected", ALL)], "allowed, not written, then rejected"),
        ([("allowed", ALL, [], "declined"), ("allowed", ALL, ALL, None)], "applied"),
        (
            [("hunks", "a.py", [2], ["a.py"], None), ("hunks", "b.py", [0], None, None)],
            "partly applied (1 of 6 hunks), 1 allowed, 4 pending",
        ),  # the second: killed while writing
        ([("rejected", ALL)], "rejected"),
    ],
)
def test_every_answer_to_a_proposal_is_summed_up_in_the_listing(
    tmp_path: Path, steps: list[tuple[object, ...]], listed: str
) -> None:
    """Per-hunk accepts, rejects and failed writes of one proposal: the listing says what all of them came
    to (files when each file was taken or left whole, else hunks), not what the last one did; each answer
    is in `proposal_answers`, in order."""
    path, hunks = _proposed_run(tmp_path, "20260101-100000-aaaaaa")
    assert [len(ids) for ids in hunks.values()] == [3, 2, 1]  # as the diffs show them
    for step in steps:
        if step[0] == "hunks":
            _, file, picked, written, error = step
            chosen = [hunks[str(file)][i] for i in picked]  # type: ignore[call-overload]
            applied = {} if written is None else {"written": written, "error": error}
            _answer(path, "allowed", [str(file)], chosen, **applied)
        elif step[0] == "allowed":
            _, files, written, error = step
            _answer(path, "allowed", list(files), written=written, error=error)  # type: ignore[call-overload]
        else:
            _answer(path, "rejected", list(step[1]))  # type: ignore[call-overload]

    [run] = list_runs(tmp_path)
    assert run.proposal_answer == listed
    assert [a.outcome for a in run.proposal_answers] == [
        "rejected" if step[0] == "rejected" else "allowed" for step in steps
    ]
    assert load_run(tmp_path, run.run_id).summary.proposal_answers == run.proposal_answers


@pytest.mark.parametrize("ends", ["\n", "\r\n", "\r", "mixed"])
def test_the_listing_counts_hunks_as_the_per_hunk_review_makes_them_whatever_the_line_ends(
    tmp_path: Path, ends: str
) -> None:
    """Three lines changed, two of them close (one ``@@`` section of the diff for ``\\n`` ends): the
    language server offers three hunks whatever the lines end with, and the listing counts three. In
    git's diff a run of lone-``\\r`` lines is one line (all of the file, with ``\\r`` only), so it shows
    fewer; one hunk accepted and the rest rejected is still "1 of 3"."""
    from agent.overlay import FileChange, unified_diff
    from server.features.runs.proposals import file_hunks

    def text(changed: dict[int, str]) -> str:
        end = [ends] * 20 if ends != "mixed" else ["\r\n", "\r", "\n"] * 7
        return "".join(changed.get(n, f"line {n}") + end[n] for n in range(20))

    old, new = text({}), text({3: "three", 5: "five", 16: "sixteen"})
    change = FileChange("a.py", "modified", None, old, new, None, unified_diff("a.py", "a.py", old, new))
    hunks = [h.id for h in file_hunks(change)]
    assert len(hunks) == 3
    files = [{"path": "a.py", "kind": "modified", "old_path": None, "diff": change.diff}]
    transcript = Transcript(tmp_path, "20260101-100000-aaaaaa")
    transcript.write("run_start", run_id="r", task={"title": "T", "kind": "run"}, model="m")
    transcript.write("proposal", proposal_id="p1", summary="s", verified=True, diff="", files=files)
    transcript.write("run_end", status="proposed", usage={}, cost=0.0)
    transcript.close()
    _answer(transcript.path, "allowed", ["a.py"], hunks[1:2], written=["a.py"], error=None)
    assert list_runs(tmp_path)[0].proposal_answer == "partly applied (1 of 3 hunks), 2 pending"
    _answer(transcript.path, "rejected", ["a.py"])
    assert list_runs(tmp_path)[0].proposal_answer == "partly applied (1 of 3 hunks), rest rejected"


@pytest.mark.parametrize("order", [("p1", "p2"), ("p2", "p1")])
def test_without_an_answer_the_proposal_is_the_one_the_last_applied_decision_names(
    order: tuple[str, str],
) -> None:
    """No answer on record (lost), two ``proposal_applied`` decisions naming two proposals: the answers
    are the last decision's, whichever id it has (both orders: a pick from a set of the two ids, as
    before, got one of them wrong, as its order does not depend on which came last)."""
    from agent.transcript import TranscriptRecord

    def applied(proposal_id: str, path: str) -> TranscriptRecord:
        data = {"type": "decision", "kind": "proposal_applied", "proposal_id": proposal_id}
        return TranscriptRecord("decision", 1.0, {**data, "written": [path], "error": None, "at": path})

    first, last = order
    [answer] = proposal_answers([applied(first, "first.py"), applied(last, "last.py")])
    assert (answer.outcome, answer.written, answer.at) == ("allowed", ("last.py",), "last.py")


def test_a_recovered_write_is_what_came_of_the_answer_it_finished(tmp_path: Path) -> None:
    """The ``proposal_applied`` a later start adds (`recovered`) belongs to the allowed answer the kill
    left without one."""
    path, _ = _proposed_run(tmp_path, "20260101-100000-aaaaaa")
    _answer(path, "allowed", ALL)  # killed while writing
    assert list_runs(tmp_path)[0].proposal_answer == "allowed"
    later = Transcript.continued(path)
    later.write(
        "decision", kind="proposal_applied", proposal_id="p1", written=ALL, error=None, recovered=True
    )
    later.close()

    [run] = list_runs(tmp_path)
    assert run.proposal_answer == "applied"
    [answer] = run.proposal_answers
    assert (answer.result, answer.written, answer.recovered) == ("written", tuple(ALL), True)
