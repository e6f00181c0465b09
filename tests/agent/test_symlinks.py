"""Symbolic links that commands create, retarget or delete: never proposed, never dropped silently.

A proposal holds files (an LSP `WorkspaceEdit` cannot make a link), so each such link is a line of the
command's result for the model, recorded in the transcript with it, and listed in the run's summary; one
that points outside the workspace is said to be so, with no command to make it. Real bubblewrap, real
files; the fixtures check that the user's files, links included, never change on disk.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.overlay import Overlay
from agent.sandbox import Sandbox
from agent.tools.bash import BashTool
from tests.agent.agent_harness import Harness, bash, copy_workspace, done, result_text, view
from tests.agent.test_overlay import disk_snapshot
from tests.fakes.anthropic_server import FakeAnthropic, text, turn


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Path]:
    """agent_py with two links of its own: `docs/latest.md -> v1.md` and `stats-link -> mathx/stats.py`."""
    root = copy_workspace(tmp_path / "ws")
    (root / "docs").mkdir()
    (root / "docs" / "v1.md").write_text("one\n")
    (root / "docs" / "v2.md").write_text("two\n")
    os.symlink("v1.md", root / "docs" / "latest.md")
    os.symlink("mathx/stats.py", root / "stats-link")
    before = disk_snapshot(root)
    yield root
    assert disk_snapshot(root) == before, "the user's files or links changed on disk"


def test_each_link_a_command_changes_is_a_line_of_its_result(ws: Path) -> None:
    overlay = Overlay(ws)
    with BashTool(overlay, Sandbox(), timeout=20) as tool:
        result = tool.execute(
            "ln -s v2.md docs/current.md; ln -sfn v2.md docs/latest.md; rm stats-link; "
            "ln -s /etc/passwd passwd; ln -s ../../../elsewhere mathx/up; echo note > notes.txt; echo done"
        )
        assert not result.is_error
        assert result.content.splitlines() == [
            "done",
            "[not in your proposal: a command created the symlink docs/current.md -> v2.md; symlinks are "
            "not proposed: create it yourself (`ln -sfn v2.md docs/current.md`)]",
            "[not in your proposal: a command changed the symlink docs/latest.md to -> v2.md (was -> "
            "v1.md); symlinks are not proposed: change it yourself (`ln -sfn v2.md docs/latest.md`)]",
            "[not in your proposal: a command created the symlink mathx/up -> ../../../elsewhere; it points "
            "outside the workspace, and such a link is never proposed]",
            "[not in your proposal: a command created the symlink passwd -> /etc/passwd; it points outside "
            "the workspace, and such a link is never proposed]",
            "[not in your proposal: a command deleted the symlink stats-link (-> mathx/stats.py); symlinks "
            "are not proposed, so the proposal leaves it: delete it yourself (`rm stats-link`)]",
        ]
        # The proposal has the file only; the links stay in the session's copy for later commands,
        # which do not report them again.
        assert [(c.path, c.kind) for c in overlay.changes()] == [("notes.txt", "created")]
        again = tool.execute("cat docs/current.md docs/latest.md")
        assert again.content == "two\ntwo"
        assert [c.path for c in overlay.symlink_changes()] == [
            "docs/current.md",
            "docs/latest.md",
            "mathx/up",
            "passwd",
            "stats-link",
        ]
        # A link put back as it was is no change of the run.
        tool.execute("ln -sfn v1.md docs/latest.md; rm docs/current.md")
        assert [c.path for c in overlay.symlink_changes()] == ["mathx/up", "passwd", "stats-link"]


def test_the_model_the_transcript_and_the_summary_are_told(fake_anthropic: FakeAnthropic, ws: Path) -> None:
    h = Harness(fake_anthropic, ws, ws.parent / "runs")
    h.fake.enqueue(
        turn(text("Plan."), view()),
        bash("ln -s v2.md docs/current.md && ln -s /etc/hostname host && rm stats-link && echo made"),
        done("Made the links."),
    )
    result = h.run()
    assert result.status == "no_changes"
    notes = [
        "a command created the symlink docs/current.md -> v2.md; symlinks are not proposed: create it "
        "yourself (`ln -sfn v2.md docs/current.md`)",
        "a command created the symlink host -> /etc/hostname; it points outside the workspace, and such a "
        "link is never proposed",
        "a command deleted the symlink stats-link (-> mathx/stats.py); symlinks are not proposed, so the "
        "proposal leaves it: delete it yourself (`rm stats-link`)",
    ]
    assert result.summary == "Made the links.\n\nNot in the proposal:\n" + "\n".join(f"- {n}" for n in notes)
    seen = result_text(h.tool_results(2)[0])
    assert seen.splitlines() == ["made", *(f"[not in your proposal: {note}]" for note in notes)]
    records = h.transcript_records(result)
    recorded = [r for r in records if r.get("type") == "tool_result" and r.get("name") == "bash"]
    assert recorded[0]["content"] == seen
    decisions = [r for r in records if r.get("type") == "decision" and r.get("kind") == "symlinks"]
    assert [d["links"] for d in decisions] == [notes]
