"""Applying a proposal to disk: every kind of change, and refusal (writing nothing) on any conflict."""

from __future__ import annotations

import os
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from agent.overlay import Overlay
from agent.proposal import ApplyRefused, Proposal, apply_proposal, check_proposal, new_proposal_id
from agent.usage import Usage
from tests.agent.test_overlay import disk_snapshot


def proposal_of(overlay: Overlay) -> Proposal:
    return Proposal(
        proposal_id=new_proposal_id(),
        run_id="run",
        summary="s",
        files=tuple(overlay.changes()),
        diff=overlay.proposal_diff(),
        usage=Usage(),
        cost=0.0,
        verified=True,
        verification_summary="Verification passed.",
    )


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "a.py").write_text("A = 1\n")
    (root / "pkg" / "old.py").write_text("OLD = 1\n")
    (root / "pkg" / "gone.py").write_text("GONE = 1\n")
    (root / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (root / "run.sh").chmod(0o755)
    return root


def test_applies_modified_created_deleted_and_renamed_files(ws: Path) -> None:
    overlay = Overlay(ws)
    overlay.write("pkg/a.py", "A = 2\n")
    overlay.create("pkg/sub/new.py", "NEW = 1\n")
    overlay.delete("pkg/gone.py")
    overlay.rename("pkg/old.py", "pkg/renamed.py")
    overlay.write("run.sh", "#!/bin/sh\necho hello\n")
    proposal = proposal_of(overlay)
    assert {f.kind for f in proposal.files} == {"modified", "created", "deleted", "renamed"}
    assert check_proposal(proposal, ws) == []

    written = apply_proposal(proposal, ws)

    assert set(written) == {
        "pkg/a.py",
        "pkg/sub/new.py",
        "pkg/gone.py",
        "pkg/renamed.py",
        "pkg/old.py",
        "run.sh",
    }
    assert (ws / "pkg" / "a.py").read_text() == "A = 2\n"
    assert (ws / "pkg" / "sub" / "new.py").read_text() == "NEW = 1\n"
    assert not (ws / "pkg" / "gone.py").exists()
    assert not (ws / "pkg" / "old.py").exists() and (ws / "pkg" / "renamed.py").read_text() == "OLD = 1\n"
    assert (ws / "run.sh").stat().st_mode & stat.S_IXUSR  # the mode survives
    assert not [p for p in os.listdir(ws / "pkg") if p.endswith(".agentls")]  # no temporary files left


def test_a_file_changed_on_disk_since_the_run_refuses_the_whole_proposal(ws: Path) -> None:
    overlay = Overlay(ws)
    overlay.write("pkg/a.py", "A = 2\n")
    overlay.create("pkg/new.py", "NEW = 1\n")
    overlay.read("pkg/old.py")
    overlay.rename("pkg/old.py", "pkg/moved.py")
    proposal = proposal_of(overlay)
    (ws / "pkg" / "a.py").write_text("A = 'edited by the user meanwhile'\n")
    (ws / "pkg" / "new.py").write_text("someone else's file\n")
    before = disk_snapshot(ws)

    with pytest.raises(ApplyRefused) as refused:
        apply_proposal(proposal, ws)

    assert disk_snapshot(ws) == before  # nothing written, not even the files that were fine
    message = str(refused.value)
    assert "pkg/a.py: it changed on disk since the run started" in message
    assert "pkg/new.py: a file was created there since the run started" in message
    assert "no file was written" in message and "Run the task again" in message
    assert {c.path for c in refused.value.conflicts} == {"pkg/a.py", "pkg/new.py"}


def test_a_deleted_file_and_unsafe_paths_are_conflicts(ws: Path) -> None:
    overlay = Overlay(ws)
    overlay.write("pkg/a.py", "A = 2\n")
    proposal = proposal_of(overlay)
    (ws / "pkg" / "a.py").unlink()
    assert [c.reason for c in check_proposal(proposal, ws)] == [
        "it was deleted on disk since the run started"
    ]

    secret = replace(proposal.files[0], path=".env", kind="created", base_text="")
    [conflict] = check_proposal(replace(proposal, files=(secret,)), ws)
    assert "secret file" in conflict.reason
