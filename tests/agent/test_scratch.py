"""Scratch folders a command locked (`chmod 000 sub`, `chmod 555 .`) are removed all the same, without
changing the mode of anything outside them: `agent.scratch`, through the bash session that owns them.

The steps run in a child process in a user namespace (`tests.agent.userns`), where the permission bits
apply as they do to a user.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from agent.overlay import Overlay
from agent.sandbox import Sandbox, SandboxSettings
from agent.scratch import remove_tree, reopen_folder, scratch_folder
from agent.tools import ToolRegistry
from agent.tools.bash import BashTool
from tests.agent.userns import in_child, skip_unless_chmod_denies, warnings_of

LOCK = "mkdir -p sub/deep && touch sub/deep/f && chmod 000 sub && chmod 555 ."
"""The brief's command: a folder the owner cannot enter, in a folder the owner cannot write."""

_LINKS = 'ln -s "$OUTSIDE/file" sub/deep/file-link && ln -s "$OUTSIDE/folder" sub/deep/folder-link'
"""Links from inside the tree to a file and a folder outside it, made before the lock."""


def _in_child(function: str, *args: str) -> Any:
    return in_child(__name__, function, *args)


def _outside(tmp: Path) -> Path:
    """A file (mode 640) and a read-only folder holding a file (mode 500), outside every scratch folder."""
    outside = tmp / "outside"
    (outside / "folder").mkdir(parents=True)
    (outside / "file").write_text("kept\n")
    (outside / "folder" / "inner").write_text("kept\n")
    os.chmod(outside / "file", 0o640)
    os.chmod(outside / "folder", 0o500)
    return outside


def _state_outside(outside: Path) -> dict[str, Any]:
    return {
        "file": oct(stat.S_IMODE(os.stat(outside / "file").st_mode)),
        "folder": oct(stat.S_IMODE(os.stat(outside / "folder").st_mode)),
        "texts": [(outside / "file").read_text(), (outside / "folder" / "inner").read_text()],
    }


def _bash_session(ws: str, scratch: str, outside: str, end: str) -> None:
    """The child of the bash test: a session whose command locks its copy (`LOCK`, after links out of it)
    and a folder in its /tmp, then ended by `end` (`close` or `restart`). Prints what stays in `scratch`
    after it, the warnings, and the mode of what the links point at. Unsandboxed, as the other tests of
    the bash tool in a user namespace (the session's folders are the same)."""
    warnings = warnings_of("agent.scratch")
    tools_in_tmp = 'mkdir -p "$TMPDIR/t/deep" && touch "$TMPDIR/t/deep/f" && chmod 000 "$TMPDIR/t"'
    with BashTool(
        Overlay(Path(ws)), Sandbox(SandboxSettings(enabled=False)), scratch_dir=Path(scratch)
    ) as bash:
        tools = ToolRegistry([bash])
        command = f"export OUTSIDE={outside}; mkdir -p sub/deep && {_LINKS} && {tools_in_tmp} && {LOCK}"
        result = tools.execute("bash", {"command": command})
        before = sorted(name.split("-")[1] for name in os.listdir(scratch))
        if end == "restart":
            restarted = tools.execute("bash", {"restart": True}).content
            after_end = sorted(os.listdir(scratch))
            again = tools.execute("bash", {"command": "ls"}).content
        else:
            bash.close()
            after_end, restarted, again = sorted(os.listdir(scratch)), "", ""
    seen = {
        "result": [result.content, result.is_error],
        "before": before,
        "after_end": after_end,
        "restarted": restarted,
        "again": again,
        "left": sorted(os.listdir(scratch)),
        "warnings": warnings,
        "outside": _state_outside(Path(outside)),
    }
    print(json.dumps(seen))


@pytest.mark.parametrize("end", ["close", "restart"])
def test_a_session_whose_command_locked_its_copy_leaves_no_folder(tmp_path: Path, end: str) -> None:
    """`mkdir -p sub/deep && touch sub/deep/f && chmod 000 sub && chmod 555 .` in the copy (and a folder
    at mode 000 in the session's /tmp): closing or restarting the session removes its copy and its /tmp
    all the same, warning about nothing; the files links in there point at keep their modes. Before,
    `shutil.rmtree(ignore_errors=True)` left the whole copy in the scratch folder on every such run."""
    skip_unless_chmod_denies(tmp_path)
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "a.py").write_text("A = 1\n")
    (tmp_path / "scratch").mkdir()
    outside = _outside(tmp_path)
    seen = _in_child("_bash_session", str(tmp_path / "ws"), str(tmp_path / "scratch"), str(outside), end)

    assert seen["result"][1] is False, seen
    # The fold-back gave sub/ back (agent.overlay), not the 555 of the copy's top folder, nor /tmp's 000.
    assert "the command took the owner's read or search permission on sub/;" in seen["result"][0], seen
    assert seen["before"] == ["bash", "ws"], seen  # the session's /tmp and its copy, made by the command
    assert seen["after_end"] == [], seen
    assert seen["warnings"] == [], seen
    if end == "restart":
        assert seen["restarted"] == "The bash tool has been restarted."
        assert seen["again"] == "a.py\nsub", seen  # a fresh copy, with the command's sub/deep/f
    assert seen["left"] == [], seen
    assert seen["outside"] == {"file": "0o640", "folder": "0o500", "texts": ["kept\n", "kept\n"]}, seen


def _remove_locked(tmp: str) -> None:
    """The child of the helper's test: a tree locked as `LOCK` leaves it, with links out of it (in the
    locked folder, and in a read-only folder, where Python 3.11's TemporaryDirectory gave a link's target
    mode 700), removed by `remove_tree` and by `scratch_folder`; then a tree whose parent folder is not
    writable, which stays. Prints the results, the warnings and the modes of what is outside the trees."""
    warnings = warnings_of("agent.scratch")
    outside = Path(tmp) / "outside"
    lock = f"export OUTSIDE={outside}; mkdir -p sub/deep ro && {_LINKS} && ln -s $OUTSIDE/file ro/link"
    lock += f" && chmod 555 ro && {LOCK}"
    tree = Path(tmp) / "tree"
    tree.mkdir()
    subprocess.run(["bash", "-ec", lock], cwd=tree, check=True)
    removed = remove_tree(tree)
    with scratch_folder("agentls-test-", dir=tmp) as folder:
        subprocess.run(["bash", "-ec", lock], cwd=folder, check=True)
    in_block = folder.exists()

    parent = Path(tmp) / "parent"
    (parent / "stays" / "sub").mkdir(parents=True)
    subprocess.run(["bash", "-ec", "chmod 000 stays/sub && chmod 555 ."], cwd=parent, check=True)
    warnings_before = len(warnings)
    stays = remove_tree(parent / "stays", "test folder")
    seen = {
        "removed": removed,
        "tree": tree.exists(),
        "scratch_folder": in_block,
        "stays": stays,
        "stays_exists": (parent / "stays").is_dir(),
        "parent_mode": oct(stat.S_IMODE(os.stat(parent).st_mode)),
        "warnings": warnings[:warnings_before],
        "stay_warnings": warnings[warnings_before:],
        "outside": _state_outside(outside),
    }
    os.chmod(parent, 0o755)
    print(json.dumps(seen))


def test_remove_tree_opens_only_folders_inside_the_tree(tmp_path: Path) -> None:
    """`remove_tree` and `scratch_folder` remove a tree a command locked; the file and the read-only
    folder that links in the tree point at keep their modes and contents. A tree that cannot go (its
    parent is not writable, and the parent is no part of the tree) stays: False, a warning naming it, the
    parent's mode untouched, no exception."""
    skip_unless_chmod_denies(tmp_path)
    _outside(tmp_path)
    seen = _in_child("_remove_locked", str(tmp_path))

    assert seen["removed"] is True and seen["tree"] is False, seen
    assert seen["scratch_folder"] is False, seen
    assert seen["warnings"] == [], seen
    assert seen["outside"] == {"file": "0o640", "folder": "0o500", "texts": ["kept\n", "kept\n"]}, seen

    assert seen["stays"] is False and seen["stays_exists"] is True, seen
    assert seen["parent_mode"] == "0o555", seen
    assert len(seen["stay_warnings"]) == 1, seen
    warning = seen["stay_warnings"][0]
    assert warning.startswith(
        f"could not remove the test folder {tmp_path / 'parent' / 'stays'} (left on disk)"
    )
    assert "Permission denied" in warning, warning


def test_reopen_folder_goes_through_no_link(tmp_path: Path) -> None:
    """`reopen_folder(root, rel)` gives the owner rwx back on a folder inside `root` and says what mode it
    had; a link at `rel` is left alone (None, its target's mode kept), one on the way raises. The modes are
    set and read as root: no permission is needed to see them."""
    outside = tmp_path / "outside"
    (outside / "deep").mkdir(parents=True)
    outside.chmod(0o500)
    root = tmp_path / "root"
    (root / "sub" / "locked").mkdir(parents=True)
    (root / "sub" / "locked").chmod(0o000)
    (root / "sub" / "link").symlink_to(outside)
    try:
        assert reopen_folder(root, "sub/locked") == 0o000
        assert (root / "sub" / "locked").stat().st_mode & 0o777 == 0o700
        assert reopen_folder(root, "sub/locked") is None  # it has them now
        assert reopen_folder(root, "sub/link") is None
        with pytest.raises(OSError):
            reopen_folder(root, "sub/link/deep")
        root.chmod(0o055)
        assert reopen_folder(root) == 0o055
        assert root.stat().st_mode & 0o777 == 0o755
        assert outside.stat().st_mode & 0o777 == 0o500
    finally:
        outside.chmod(0o755)
