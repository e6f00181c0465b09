"""`agent.apply`: the journaled apply and its recovery, in one process (the kill -9 cases are in
tests/security/test_apply_journal.py)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from agent.apply import apply_changes, recover_applies, write_atomic
from agent.overlay import FileChange


def _change(path: str, kind: str, base: str, new: str, old_path: str | None = None) -> FileChange:
    return FileChange(
        path=path, kind=kind, old_path=old_path, base_text=base, new_text=new, base_version=None, diff=""
    )  # type: ignore[arg-type]


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
    journal.mkdir()
    entry = {"path": "a.py", "before": "A = 1\n", "before_mode": 420, "after": "A = 2\n", "after_mode": 420}
    record = {
        "version": 1,
        "root": str(root),
        "label": "proposal p",
        "pid": 1,
        "started": 0,
        "files": [entry],
    }
    (journal / "20261204-000000-1-abcd.json").write_text(json.dumps(record))
    (journal / ".journal.tmp123").write_text("{")  # killed before its journal was complete

    (message,) = recover_applies(journal)

    assert "finished the change now: a.py written" in message
    assert (root / "a.py").read_text() == "A = 2\n"
    assert sorted(p.name for p in root.iterdir()) == ["a.py"]
    assert list(journal.iterdir()) == []
