"""The first copy of the workspace (`Overlay.materialize` on a fresh folder) when it cannot write the
overlay's files: a full scratch folder (/dev/shm is often small in a container). Each file is tried; the
ones that fail are named, not raised, as an update of the copy does (tests/agent/test_overlay_unreadable.py);
the bash tool names them in its result and runs the command; the verification checks nothing and says why.

The full disk is a small tmpfs mounted in a child process with a user and mount namespace of its own
(``unshare -Urm``), so nothing is mounted on the machine.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from agent.overlay import Overlay
from agent.sandbox import Sandbox, SandboxSettings
from agent.tools import ToolRegistry
from agent.tools.bash import BashTool
from tests.agent.userns import in_child, print_verification, warnings_of

_BIG = "B = 1\n" + ("# " + "x" * 100 + "\n") * 4000
"""400 KB: past the small disk's size."""
_SIZE = "160k"


def _small_disk(folder: str) -> None:
    Path(folder).mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={_SIZE}", "tmpfs", folder], check=True)


def _overlay(ws: str) -> Overlay:
    """An overlay of `ws` that edits a.py and creates big.py, too large for the small disk."""
    overlay = Overlay(Path(ws))
    overlay.write("a.py", "A = 2\n")
    overlay.create("big.py", _BIG)
    return overlay


def _first_copy(ws: str, scratch: str) -> None:
    """The child process: the first copy of an overlay into the small disk, a command (unsandboxed: bubblewrap
    cannot make its namespaces inside this one) that writes a.py and big.py, then big.py made small by the
    overlay and a command that reads it. Prints the results, the warnings and the overlay's texts as JSON."""
    _small_disk(scratch)
    warnings = warnings_of("agent.overlay")
    overlay = _overlay(ws)
    results = []
    with BashTool(overlay, Sandbox(SandboxSettings(enabled=False)), scratch_dir=Path(scratch)) as bash:
        tools = ToolRegistry([bash])
        first = tools.execute("bash", {"command": "cat a.py; ls; echo 'A = 3' > a.py; echo junk > big.py"})
        results.append([first.content, first.is_error])
        assert bash.last_materialized is not None
        unwritten = list(bash.last_materialized.unwritten)
        big_after = overlay.read("big.py") == _BIG
        overlay.write("big.py", "B = 2\n")
        second = tools.execute("bash", {"command": "cat big.py"})
        results.append([second.content, second.is_error])
    print(
        json.dumps(
            {
                "results": results,
                "unwritten": unwritten,
                "big_kept": big_after,
                "a": overlay.read("a.py"),
                "warnings": warnings,
                "kinds": {c.path: c.kind for c in overlay.changes()},
            }
        )
    )


def _uncopied_base(ws: str, scratch: str) -> None:
    """The child process: the workspace's own big.py does not fit the small disk, so the first copy lacks
    it; commands append to it, delete it, then append again once the overlay has written its own version
    into the copy. Prints the results, the overlay's big.py after each and its changes as JSON."""
    _small_disk(scratch)
    overlay = Overlay(Path(ws))
    overlay.write("a.py", "A = 2\n")
    results = []
    with BashTool(overlay, Sandbox(SandboxSettings(enabled=False)), scratch_dir=Path(scratch)) as bash:
        tools = ToolRegistry([bash])
        for command in ("echo 'C = 3' >> big.py; echo 'A = 3' > a.py", "rm big.py", "echo 'C = 3' >> big.py"):
            if command == "echo 'C = 3' >> big.py":
                overlay.write("big.py", "B = 2\n")
            result = tools.execute("bash", {"command": command})
            big = overlay.read("big.py") if overlay.exists("big.py") else None
            results.append([result.content, result.is_error, big if big != _BIG else "the workspace's"])
    print(json.dumps({"results": results, "kinds": {c.path: c.kind for c in overlay.changes()}}))


def _verify(ws: str, scratch: str) -> None:
    """The child process: the verification of the same overlay with its copy on the small disk."""
    _small_disk(scratch)
    print_verification(_overlay(ws), scratch)


def _workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    (ws / "sub").mkdir(parents=True)
    (ws / "a.py").write_text("A = 1\n")
    (ws / "sub" / "f.py").write_text("F = 1\n")
    return ws


def _child(function: str, tmp_path: Path, *, big: bool = False) -> Any:
    """`function` in a child with a mount namespace; `big`: the workspace has its own 400 KB big.py."""
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        pytest.skip("needs unshare and mount")
    probe = subprocess.run(["unshare", "-Urm", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("no user and mount namespace can be had here")
    ws = _workspace(tmp_path)
    if big:
        (ws / "big.py").write_text(_BIG)
    return in_child(__name__, function, str(ws), str(tmp_path / "scratch"), launcher=("unshare", "-Urm"))


def test_the_bash_tool_runs_on_a_first_copy_that_could_not_take_a_file(tmp_path: Path) -> None:
    """The first copy cannot write big.py (no space): the command runs anyway, on a.py as the overlay has
    it; its result names big.py and why; its own big.py is not taken (the overlay's stays), its a.py is.
    Once the overlay's big.py fits, the next update writes it."""
    seen = _child("_first_copy", tmp_path)
    (first, first_error), (second, second_error) = seen["results"]
    assert first.startswith("A = 2\na.py\nsub\n"), seen
    assert first.endswith(
        "\n[could not write your latest version of big.py (No space left on device) into the workspace "
        "before the command: the command saw an older state or none; your version is kept, and the "
        "command's changes to it are not]"
    ), seen
    assert not first_error, seen
    assert seen["unwritten"] == ["big.py"], seen
    assert seen["big_kept"] and seen["a"] == "A = 3\n", seen
    assert (
        len(seen["warnings"]) == 1
        and "could not bring big.py (No space left on device)" in seen["warnings"][0]
    ), seen
    assert [second, second_error] == ["B = 2", False], seen
    assert seen["kinds"] == {"a.py": "modified", "big.py": "created"}, seen


def test_a_verification_whose_copy_could_not_take_the_change_checks_nothing_and_says_why(
    tmp_path: Path,
) -> None:
    """The verification's fresh copy cannot write big.py: no check runs, the verification fails as an
    environment problem naming big.py, the reason and the folder, and its copy is removed."""
    seen = _child("_verify", tmp_path)
    assert seen["outcome"] == "failed", seen
    assert seen["commands"] == [""], seen
    assert "big.py (No space left on device)" in seen["environment"], seen
    assert str(tmp_path / "scratch") in seen["environment"], seen
    assert seen["summary"].startswith("Not verified: an environment problem, not the change"), seen
    assert seen["left"] == [], seen


def test_what_a_command_does_to_a_workspace_file_the_first_copy_lacked_is_not_kept(tmp_path: Path) -> None:
    """The workspace's big.py does not fit the copy: a command's `>>` to it made a file of one line there,
    which 4cc4a03 proposed as big.py without its old content. Now neither the append nor a later `rm` is
    kept, and the result says why; once the overlay has written its own big.py into the copy, an append to
    it is kept."""
    seen = _child("_uncopied_base", tmp_path, big=True)
    (first, first_error, first_big), (second, second_error, second_big), (third, third_error, third_big) = (
        seen["results"]
    )
    assert not first_error and not second_error and not third_error, seen
    not_kept = (
        "\n[not kept: the command's changes to big.py (No space left on device): the copy did not have the "
        "workspace's version (its first copy could not copy it), so the command changed something else than "
        "the workspace's file and no change to it can be proposed]"
    )
    assert (
        not_kept in first and "[could not copy big.py (No space left on device) from the workspace" in first
    )
    assert first_big == "the workspace's", seen
    assert not_kept in second and second_big == "the workspace's", seen
    assert "not kept" not in third and third_big == "B = 2\nC = 3\n", seen
    assert seen["kinds"] == {"a.py": "modified", "big.py": "modified"}, seen
