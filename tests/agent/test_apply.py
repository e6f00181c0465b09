"""`agent.apply`: the journaled apply and its recovery, in one process (the kill -9 cases are in
tests/security/test_apply_journal.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from agent.apply import apply_changes, journal_dir, recover_applies, write_atomic
from agent.overlay import FileChange
from agent.recorder import after_the_run
from agent.transcript import Transcript, list_runs


def _change(path: str, kind: str, base: str, new: str, old_path: str | None = None) -> FileChange:
    return FileChange(
        path=path, kind=kind, old_path=old_path, base_text=base, new_text=new, base_version=None, diff=""
    )  # type: ignore[arg-type]


def _journal(journal: Path, root: Path, entries: list[dict[str, object]], **names: str) -> None:
    """The journal of an apply killed after its first file (`apply_changes` writes it so)."""
    journal.mkdir(parents=True)
    record = {
        "version": 1,
        "root": str(root),
        "label": "proposal p",
        "pid": 1,
        "started": 0,
        "files": entries,
    }
    (journal / "20261204-000000-1-abcd.json").write_text(json.dumps({**record, **names}))


def test_apply_writes_renames_deletes_keeps_modes_and_leaves_no_journal(tmp_path: Path) -> None:
    root, journal = tmp_path / "ws", tmp_path / "journal"
    root.mkdir()
    (root / "run.sh").write_text("echo 1\n")
    (root / "run.sh").chmod(0o755)
    (root / "old.py").write_text("X = 1\n")
    (root / "gone.py").write_text("G = 1\n")
    written = apply_changes(
        [
            _change("run.sh", "modified", "echo 1\n", "echo 2\n"),
            _change("pkg/new.py", "renamed", "X = 1\n", "X = 2\n", old_path="old.py"),
            _change("gone.py", "deleted", "G = 1\n", ""),
        ],
        root,
        journal=journal,
    )
    assert written == ["run.sh", "pkg/new.py", "old.py", "gone.py"]
    assert (root / "run.sh").read_text() == "echo 2\n" and (root / "run.sh").stat().st_mode & 0o777 == 0o755
    assert (root / "pkg" / "new.py").read_text() == "X = 2\n"
    assert not (root / "old.py").exists() and not (root / "gone.py").exists()
    assert list(journal.iterdir()) == [] and journal.stat().st_mode & 0o777 == 0o700
    assert recover_applies(journal) == []


def test_a_live_apply_is_never_taken_for_an_interrupted_one(tmp_path: Path) -> None:
    root, journal = tmp_path / "ws", tmp_path / "journal"
    root.mkdir()
    (root / "a.py").write_text("A = 1\n")
    (root / "b.py").write_text("B = 1\n")
    paused, go_on = threading.Event(), threading.Event()
    seen: list[list[str]] = []

    def pause(path: str) -> None:
        if path == "a.py":
            paused.set()
            go_on.wait(10)

    worker = threading.Thread(
        target=apply_changes,
        args=(
            [
                _change("a.py", "modified", "A = 1\n", "A = 2\n"),
                _change("b.py", "modified", "B = 1\n", "B = 2\n"),
            ],
        ),
        kwargs={"root": root, "journal": journal, "on_written": pause},
    )
    worker.start()
    assert paused.wait(10)
    seen.append(recover_applies(journal))  # the journal is locked by the apply in progress
    assert (root / "b.py").read_text() == "B = 1\n" and len(list(journal.glob("*.json"))) == 1
    go_on.set()
    worker.join(10)
    assert seen == [[]]
    assert (root / "b.py").read_text() == "B = 2\n" and list(journal.iterdir()) == []


def test_recovery_removes_temporary_files_of_a_killed_write(tmp_path: Path) -> None:
    root, journal = tmp_path / "ws", tmp_path / "journal"
    root.mkdir()
    write_atomic(root / "a.py", "A = 1\n", None)
    (root / ".a.py.x1y2.agentls").write_text("A = 2 (half")  # what a kill inside write_atomic leaves
    entry = {"path": "a.py", "before": "A = 1\n", "before_mode": 420, "after": "A = 2\n", "after_mode": 420}
    _journal(journal, root, [entry])
    (journal / ".journal.tmp123").write_text("{")  # killed before its journal was complete

    (message,) = recover_applies(journal)

    assert "finished the change now: a.py written" in message
    assert (root / "a.py").read_text() == "A = 2\n"
    assert sorted(p.name for p in root.iterdir()) == ["a.py"]
    assert list(journal.iterdir()) == []


def _allowed_run(runs: Path, run_id: str, proposal_id: str) -> Path:
    """The transcript of a run whose proposal the user allowed, as a process killed while writing leaves
    it: the run, its proposal, its end, the answer, no ``proposal_applied``."""
    transcript = Transcript(runs, run_id)
    transcript.write("run_start", run_id=run_id, task={"title": "T", "kind": "run"}, model="m")
    transcript.write("proposal", proposal_id=proposal_id, summary="s", verified=True, diff="", files=[])
    transcript.write("run_end", status="proposed", usage={}, cost=0.0, proposal_id=proposal_id)
    transcript.close()
    later = after_the_run(transcript.path, root=None)
    later.proposal_answered(
        proposal_id, question="Apply?", outcome="allowed", answer="yes", files=["a.py", "b.py"]
    )
    later.close()
    return transcript.path


@pytest.mark.parametrize("edited_since", [False, True])
def test_a_recovered_apply_is_added_to_its_runs_transcript(tmp_path: Path, edited_since: bool) -> None:
    """A kill -9 while writing an allowed proposal left the run "allowed"; the start that finishes the
    journal (any agentls command: here `agentls runs`) adds the ``proposal_applied`` decision, so the run
    is listed "applied" (or "partly applied (1 of 2 files), 1 not written" when a file changed since and
    nothing more was written)."""
    root, runs = tmp_path / "ws", tmp_path / "cache" / "runs"
    root.mkdir()
    (root / "a.py").write_text("A = 2\n")  # written before the kill
    (root / "b.py").write_text("B = 9\n" if edited_since else "B = 1\n")
    run_id = "20261204-000000-abcdef"
    transcript = _allowed_run(runs, run_id, "prop-k")
    entries: list[dict[str, object]] = [
        {"path": "a.py", "before": "A = 1\n", "before_mode": 420, "after": "A = 2\n", "after_mode": 420},
        {"path": "b.py", "before": "B = 1\n", "before_mode": 420, "after": "B = 2\n", "after_mode": 420},
    ]
    _journal(journal_dir(runs), root, entries, run_id=run_id, proposal_id="prop-k")
    [before] = list_runs(runs)
    assert before.proposal_answer == "allowed"

    env = {**os.environ, "AGENTLS_CACHE_DIR": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    listed = subprocess.run(
        [sys.executable, "-m", "server.cli", "runs"], env=env, capture_output=True, text=True, timeout=120
    )

    assert listed.returncode == 0, listed.stderr
    records = [json.loads(line) for line in transcript.read_text().splitlines()]
    applied = records[-1]
    assert (applied["type"], applied["kind"], applied["proposal_id"]) == (
        "decision",
        "proposal_applied",
        "prop-k",
    )
    assert applied["recovered"] is True
    assert [r["type"] for r in records] == ["run_start", "proposal", "run_end", "approval", "decision"]
    if edited_since:
        assert applied["written"] == ["a.py"] and "b.py changed since" in applied["error"]
        assert "proposed, partly applied (1 of 2 files), 1 not written" in listed.stdout
    else:
        assert applied["written"] == ["a.py", "b.py"] and applied["error"] is None
        assert (root / "b.py").read_text() == "B = 2\n"
        assert "proposed, applied" in listed.stdout
    assert float(applied["t"]) >= float(records[-2]["t"])


def test_a_journal_without_its_run_or_with_a_missing_transcript_is_finished_all_the_same(
    tmp_path: Path,
) -> None:
    root, runs = tmp_path / "ws", tmp_path / "runs"
    root.mkdir()
    (root / "a.py").write_text("A = 1\n")
    entry = {"path": "a.py", "before": "A = 1\n", "before_mode": 420, "after": "A = 2\n", "after_mode": 420}
    _journal(journal_dir(runs), root, [entry], run_id="20261204-000000-gone00", proposal_id="p")

    (message,) = recover_applies(journal_dir(runs))

    assert "a.py written" in message and (root / "a.py").read_text() == "A = 2\n"
    assert sorted(p.name for p in runs.iterdir()) == ["applying"]  # no transcript made up


def test_a_recovered_apply_whose_workspace_is_gone_is_on_record(tmp_path: Path) -> None:
    """The workspace folder was removed (or moved) after the kill: the start that finds the journal
    removes it and adds to the run's transcript that the writes were not finished, and why."""
    root, runs = tmp_path / "ws", tmp_path / "cache" / "runs"
    run_id = "20261204-000000-abcdef"
    transcript = _allowed_run(runs, run_id, "prop-g")
    entry = {"path": "a.py", "before": "A = 1\n", "before_mode": 420, "after": "A = 2\n", "after_mode": 420}
    _journal(journal_dir(runs), root, [entry], run_id=run_id, proposal_id="prop-g")  # root never made

    (message,) = recover_applies(journal_dir(runs))

    assert "no longer exists" in message and list(journal_dir(runs).iterdir()) == []
    records = [json.loads(line) for line in transcript.read_text().splitlines()]
    assert [r["type"] for r in records] == ["run_start", "proposal", "run_end", "approval", "decision"]
    applied = records[-1]
    assert (applied["kind"], applied["proposal_id"], applied["recovered"]) == (
        "proposal_applied",
        "prop-g",
        True,
    )
    assert (
        applied["written"] == [] and str(root) in applied["error"] and "no longer exists" in applied["error"]
    )
    [run] = list_runs(runs)
    assert run.proposal_answer == "allowed, not written"
    assert recover_applies(journal_dir(runs)) == []  # once only
    assert len(transcript.read_text().splitlines()) == len(records)
