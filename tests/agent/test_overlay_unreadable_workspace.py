"""Workspace files agentls cannot read: a file (`locked.py`) and a folder (`closed/`) of another owner with
mode 000, as a container's or another user's files can be.

The first copy of the workspace leaves them out and names them: the bash tool's first result says so, and
the verification checks nothing on such a copy and says why. A command that writes at `locked.py` in the
copy is not folded back (the overlay has no base to compare with: nothing is proposed for it), and the
result says why; the editor tool refuses the file and the folder with the reason, never an exception's
repr. The overlay answered all three with a PermissionError before.

The tests run as root, which reads anyway: the steps run in a child process in a user namespace of its own
without a mapping (``unshare -U``, tests/agent/userns.py), where the files' owner (1234) is another user
and the permission bits apply.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from agent.overlay import Overlay
from agent.sandbox import Sandbox, SandboxSettings
from agent.tools import ToolRegistry
from agent.tools.bash import BashTool
from agent.tools.editor import EditorTool
from tests.agent.userns import in_child, print_verification, skip_unless_chmod_denies, warnings_of

_EDITS: list[dict[str, Any]] = [
    {"command": "view", "path": "locked.py"},
    {"command": "str_replace", "path": "locked.py", "old_str": "L = 1", "new_str": "L = 2"},
    {"command": "create", "path": "locked.py", "file_text": "L = 2\n"},
    {"command": "view", "path": "closed"},
    {"command": "view", "path": "closed/inner.py"},
    {"command": "view", "path": "."},
]


def _bash(ws: str, scratch: str) -> None:
    """The child process: the overlay edits a.py; a command writes locked.py and a.py, one deletes
    locked.py, then the editor's commands on the unreadable file and folder. Prints the results, the
    overlay's changes and the warnings as JSON. Unsandboxed: bubblewrap cannot make its namespaces here."""
    warnings = warnings_of("agent.overlay")
    overlay = Overlay(Path(ws))
    overlay.write("a.py", "A = 2\n")
    results = []
    with BashTool(overlay, Sandbox(SandboxSettings(enabled=False)), scratch_dir=Path(scratch)) as bash:
        tools = ToolRegistry([bash, EditorTool(overlay)])
        for command in ("ls; cat a.py; echo 'L = 2' > locked.py; echo 'A = 3' > a.py", "rm locked.py"):
            result = tools.execute("bash", {"command": command})
            results.append([result.content, result.is_error])
        edits = [tools.execute("str_replace_based_edit_tool", edit) for edit in _EDITS]
    print(
        json.dumps(
            {
                "results": results,
                "edits": [[edit.content, edit.is_error] for edit in edits],
                "kinds": {c.path: c.kind for c in overlay.changes()},
                "a": overlay.read("a.py"),
                "warnings": warnings,
            }
        )
    )


def _verify(ws: str, scratch: str) -> None:
    """The child process: the verification of an overlay that edits a.py."""
    overlay = Overlay(Path(ws))
    overlay.write("a.py", "A = 2\n")
    print_verification(overlay, scratch)


def _verify_ignored(ws: str, scratch: str, create: str) -> None:
    """The child process: the verification of an overlay that edits a.py, and creates build/gen.py when
    `create` is "1"."""
    overlay = Overlay(Path(ws))
    overlay.write("a.py", "A = 2\n")
    if create == "1":
        overlay.create("build/gen.py", "G = 1\n")
    print_verification(overlay, scratch)


def _ignored_workspace(tmp_path: Path) -> Path:
    """a.py, and of owner 1234: build/ (gitignored, mode 111: it can be searched, not listed) holding
    out.o, run.log (gitignored by `*.log`) and notes.txt (in .agentlsignore) with mode 000."""
    skip_unless_chmod_denies(tmp_path)
    ws = tmp_path / "ws"
    (ws / "build").mkdir(parents=True)
    for rel, text in {
        "a.py": "A = 1\n",
        ".gitignore": "build/\n*.log\n",
        ".agentlsignore": "notes.txt\n",
        "build/out.o": "o\n",
        "run.log": "log\n",
        "notes.txt": "n\n",
    }.items():
        (ws / rel).write_text(text)
    for rel, mode in {"build/out.o": 0, "build": 0o111, "run.log": 0, "notes.txt": 0}.items():
        os.chown(ws / rel, 1234, 1234)
        (ws / rel).chmod(mode)
    (tmp_path / "scratch").mkdir()
    return ws


def test_a_verification_runs_without_ignored_workspace_files_it_could_not_copy_and_names_them(
    tmp_path: Path,
) -> None:
    """build/, run.log and notes.txt cannot be copied, but .gitignore or .agentlsignore leaves them out
    (the walker's rules, as the index has them) and the change touches none: the checks run, and one
    note of the result names them and why. 4cc4a03 failed the verification as an environment problem."""
    ws = _ignored_workspace(tmp_path)
    seen = in_child(__name__, "_verify_ignored", str(ws), str(tmp_path / "scratch"), "0")
    assert seen["environment"] == "" and seen["outcome"] != "failed", seen
    assert seen["commands"] and all(seen["commands"]), seen
    notes = [line for line in seen["summary"].splitlines() if line.startswith("- note: the verification's")]
    assert len(notes) == 1, seen
    for name in (
        "build/ (Permission denied)",
        "run.log (Permission denied)",
        "notes.txt (Permission denied)",
    ):
        assert name in notes[0], seen
    assert "ignored (.gitignore, .agentlsignore or the exclude setting)" in notes[0], seen
    assert seen["left"] == [], seen


def test_a_verification_whose_change_is_in_an_ignored_folder_it_could_not_copy_checks_nothing(
    tmp_path: Path,
) -> None:
    """The change creates build/gen.py in the ignored build/ the copy could not list: the copy lacks what
    the change's file sits beside, so nothing is checked and the environment problem names build/ (and not
    the ignored files the change does not touch)."""
    ws = _ignored_workspace(tmp_path)
    seen = in_child(__name__, "_verify_ignored", str(ws), str(tmp_path / "scratch"), "1")
    assert seen["outcome"] == "failed" and seen["commands"] == [""], seen
    assert "the workspace's build/ (Permission denied)" in seen["environment"], seen
    assert "run.log" not in seen["environment"], seen
    assert "- note: " in seen["summary"] and "run.log (Permission denied)" in seen["summary"], seen
    assert seen["left"] == [], seen


def _workspace(tmp_path: Path) -> Path:
    """a.py, sub/f.py, and locked.py and closed/inner.py of owner 1234 with mode 000."""
    skip_unless_chmod_denies(tmp_path)
    ws = tmp_path / "ws"
    (ws / "sub").mkdir(parents=True)
    (ws / "closed").mkdir()
    for rel, text in {
        "a.py": "A = 1\n",
        "sub/f.py": "F = 1\n",
        "locked.py": "L = 1\n",
        "closed/inner.py": "I = 1\n",
    }.items():
        (ws / rel).write_text(text)
    for rel in ("locked.py", "closed/inner.py", "closed"):
        os.chown(ws / rel, 1234, 1234)
        (ws / rel).chmod(0)
    (tmp_path / "scratch").mkdir()
    return ws


def test_the_bash_tool_names_unreadable_workspace_files_and_keeps_nothing_of_them(tmp_path: Path) -> None:
    """The first result names locked.py and closed/ with the reason, the command still runs; what it writes
    at locked.py (and its deletion later) is not kept, and the result says why; its a.py is kept."""
    ws = _workspace(tmp_path)
    seen = in_child(__name__, "_bash", str(ws), str(tmp_path / "scratch"))
    (first, first_error), (second, second_error) = seen["results"]
    assert first.startswith("a.py\nclosed\nsub\nA = 2\n"), seen
    assert not first_error and not second_error, seen
    assert (
        "\n[not kept: the command's changes to locked.py (Permission denied), which agentls cannot read in "
        "the workspace: with nothing to compare them with, no change to them can be proposed]" in first
    ), seen
    note = first[first.index("[could not copy ") :]
    assert "locked.py (Permission denied)" in note and "closed/ (Permission denied)" in note, seen
    assert note.endswith(
        "from the workspace into the copy commands run on: commands do not see them (a "
        "folder is there, empty), so tests that need them fail for that reason]"
    ), seen
    assert "[could not copy" not in second and "locked.py (Permission denied)" in second, seen
    assert seen["kinds"] == {"a.py": "modified"} and seen["a"] == "A = 3\n", seen
    copy_warnings = [w for w in seen["warnings"] if w.startswith("could not copy")]
    assert len(copy_warnings) == 1 and "locked.py (Permission denied)" in copy_warnings[0], seen


def test_the_editor_refuses_unreadable_workspace_files_with_the_reason(tmp_path: Path) -> None:
    """view, str_replace and create of locked.py, view of closed/ and closed/inner.py: errors that say
    agentls cannot read them and why, not an exception's repr; a view of the root marks closed/."""
    ws = _workspace(tmp_path)
    seen = in_child(__name__, "_bash", str(ws), str(tmp_path / "scratch"))
    *refused, (root, root_error) = seen["edits"]
    for (text, is_error), path in zip(
        refused, ("locked.py", "locked.py", "locked.py", "closed", "closed/inner.py"), strict=True
    ):
        assert is_error, seen
        assert "PermissionError" not in text and "Permission denied" in text, text
        assert text.startswith((f"Cannot read {path} in the workspace", f"Cannot list the folder {path} ")), (
            text
        )
    assert not root_error and "/closed/ (agentls cannot list it)\n" in root and "/sub/f.py\n" in root, root


def test_a_verification_of_a_workspace_with_unreadable_files_checks_nothing_and_says_why(
    tmp_path: Path,
) -> None:
    """The verification's copy lacks locked.py and closed/: no check runs, the verification fails as an
    environment problem naming them and why, and its copy is removed."""
    ws = _workspace(tmp_path)
    seen = in_child(__name__, "_verify", str(ws), str(tmp_path / "scratch"))
    assert seen["outcome"] == "failed" and seen["commands"] == [""], seen
    assert "locked.py (Permission denied)" in seen["environment"], seen
    assert "closed/ (Permission denied)" in seen["environment"], seen
    assert "make them readable to agentls" in seen["environment"], seen
    assert seen["summary"].startswith("Not verified: an environment problem, not the change"), seen
    assert seen["left"] == [], seen
