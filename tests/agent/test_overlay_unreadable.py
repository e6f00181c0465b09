"""A folder (or file) a command makes unreadable in the workspace copy is not read as deleted.

The fold-back runs as the user, so a command's `chmod 000 sub` makes `os.scandir` fail there. As root it
would not (root reads anyway), so the steps run in a child process in a user namespace of its own without
a mapping (``unshare -U``): the child keeps its real owner ID but has no capability over files of this
namespace's parent, so the permission bits apply to it as to a user.

The same goes for the copy's own top folder (`chmod 000 .`), and for the files the overlay cannot write into
the copy before a command because an earlier one took the permission (`chmod 555 sub`).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from agent.overlay import Overlay
from agent.sandbox import Sandbox, SandboxSettings
from agent.tools import ToolRegistry
from agent.tools.bash import BashTool
from tests.agent.userns import in_child, skip_unless_chmod_denies, warnings_of

_FILES = {
    "a.py": "A = 1\n",
    "sub/f.py": "F = 1\n",
    "sub/deep/g.py": "G = 1\n",
    "keep/h.py": "H = 1\n",
}

STEPS = [
    "echo '# more' >> sub/f.py; echo '# more' >> sub/deep/g.py; echo 'A = 2' > a.py; chmod 000 sub",
    "echo '# more' >> keep/h.py",
    "chmod 755 sub",
    "echo '# again' >> sub/f.py; chmod a-x sub",
    "chmod 755 sub",
    "echo '# w' >> keep/h.py; chmod 000 keep/h.py",
    "chmod 644 keep/h.py",
    "rm -r sub",
]


ROOT_STEPS = [
    "echo 'A = 2' > a.py; echo '# more' >> sub/f.py; chmod 000 .",
    "echo '# more' >> keep/h.py",
]


def _first_fold_back(ws: str, tmp: str, watch: str) -> tuple[Overlay, Path, list[str]]:
    """An overlay of `ws` (its copies watched or walked), its copy in `tmp` after the first fold-back, and
    the list the overlay's warnings go to."""
    warnings = warnings_of("agent.overlay")
    overlay = Overlay(Path(ws), watch_copies=watch == "watched")
    dest = Path(tmp) / "copy"
    overlay.materialize(dest)
    overlay.sync_back_from(dest)
    return overlay, dest, warnings


def _steps(ws: str, tmp: str, watch: str, steps: str = "STEPS") -> None:
    """The child process: an overlay of `ws` (watched or walked) takes the shell steps of the list named
    `steps`; prints per step the report's changed and unreadable paths, the run's deleted paths, and the
    warnings, as JSON."""
    overlay, dest, warnings = _first_fold_back(ws, tmp, watch)
    seen = []
    for step in globals()[steps]:
        subprocess.run(["bash", "-ec", step], cwd=dest, check=True)
        report = overlay.sync_back_from(dest)
        overlay.materialize(dest)
        changes = overlay.changes()
        seen.append(
            {
                "changed": list(report.changed),
                "unreadable": list(report.unreadable),
                "deleted": sorted(c.path for c in changes if c.kind == "deleted"),
                "texts": {rel: overlay.read(rel) for rel in _FILES if overlay.exists(rel)},
                "warnings": warnings[:],
            }
        )
        warnings.clear()
    print(json.dumps(seen))


def _bash(ws: str, scratch: str) -> None:
    """The child process of the bash tool's test: one command that writes in sub/ and locks it, one that
    unlocks it; prints the results' texts and the deleted paths as JSON. Unsandboxed (`enabled = false`):
    bubblewrap cannot make its namespaces inside this one."""
    overlay = Overlay(Path(ws))
    texts, deleted = [], []
    with BashTool(overlay, Sandbox(SandboxSettings(enabled=False)), scratch_dir=Path(scratch)) as bash:
        for command in ("echo '# more' >> sub/f.py; chmod 000 sub", "chmod 755 sub"):
            texts.append(ToolRegistry([bash]).execute("bash", {"command": command}).content)
            deleted.append(sorted(c.path for c in overlay.changes() if c.kind == "deleted"))
    print(json.dumps({"texts": texts, "deleted": deleted, "f": overlay.read("sub/f.py")}))


COPY_FILES = ("sub/f.py", "sub/e.py", "sub/new.py", "a.py", "sub/deep/g.py", "sub/d.py")


def _stale(ws: str, tmp: str, watch: str) -> None:
    """The child process of the stale-copy test: a command writes in sub/ and locks it; the overlay then
    changes files there, which the update of the copy cannot write; a command unlocks sub/ and removes one
    of them. Prints what each step reported and what the overlay and the copy held, as JSON."""
    overlay, dest, warnings = _first_fold_back(ws, tmp, watch)
    sh = ["bash", "-ec"]
    subprocess.run([*sh, "echo '# cmd' >> sub/f.py; chmod 000 sub"], cwd=dest, check=True)
    locked = overlay.sync_back_from(dest).unreadable
    overlay.materialize(dest)
    overlay.write("sub/f.py", "F = 2\n")
    overlay.write("sub/e.py", "E = 2\n")
    overlay.create("sub/new.py", "N = 1\n")
    overlay.delete("sub/deep/g.py")
    overlay.delete("sub/d.py")
    overlay.write("a.py", "A = 2\n")
    warnings.clear()
    update = overlay.materialize(dest)
    update_warnings = warnings[:]
    subprocess.run([*sh, "chmod 755 sub; rm sub/e.py"], cwd=dest, check=True)
    unlocked = overlay.sync_back_from(dest)
    kinds = {c.path: c.kind for c in overlay.changes()}
    texts = {rel: overlay.read(rel) for rel in ("sub/f.py", "sub/e.py", "sub/new.py") if overlay.exists(rel)}
    again = overlay.materialize(dest)
    copy = {rel: (dest / rel).read_text() if (dest / rel).exists() else None for rel in COPY_FILES}
    print(
        json.dumps(
            {
                "locked": list(locked),
                "unwritten": list(update.unwritten),
                "written": update.written,
                "update_warnings": update_warnings,
                "changed": list(unlocked.changed),
                "kinds": kinds,
                "texts": texts,
                "unwritten_again": list(again.unwritten),
                "copy": copy,
                "after": list(overlay.sync_back_from(dest).changed),
            }
        )
    )


def _bash_locked_out(ws: str, scratch: str) -> None:
    """The child process of the bash tool's test of a locked copy: `chmod 000 .` on the copy, a command
    after it; `chmod 555 sub`, a file the overlay creates there, and commands until it is written. Prints
    the results' texts, their is_error, the deleted paths and a.py's text as JSON. Unsandboxed, as `_bash`."""
    overlay = Overlay(Path(ws))
    results = []
    with BashTool(overlay, Sandbox(SandboxSettings(enabled=False)), scratch_dir=Path(scratch)) as bash:
        tools = ToolRegistry([bash])
        for command in (
            "echo 'A = 2' > a.py; chmod 000 .",
            "cat a.py",
            "chmod 555 sub",
            "ls sub",
            "chmod 755 sub",
        ):
            if command == "ls sub":
                overlay.create("sub/new.py", "N = 1\n")
            result = tools.execute("bash", {"command": command})
            results.append([result.content, result.is_error])
        results.append([tools.execute("bash", {"command": "cat sub/new.py"}).content, False])
    deleted = sorted(c.path for c in overlay.changes() if c.kind == "deleted")
    print(json.dumps({"results": results, "deleted": deleted, "a": overlay.read("a.py")}))


def _write_ws(ws: Path) -> None:
    for rel, text in _FILES.items():
        (ws / rel).parent.mkdir(parents=True, exist_ok=True)
        (ws / rel).write_text(text)


def _in_child(function: str, *args: str) -> Any:
    return in_child(__name__, function, *args)


def test_the_bash_tool_says_what_it_could_not_read(tmp_path: Path) -> None:
    """The command's result tells the agent that sub/ could not be read and its files stay; nothing is
    proposed as deleted, and the write comes in once a later command makes sub/ readable."""
    skip_unless_chmod_denies(tmp_path)
    _write_ws(tmp_path / "ws")
    (tmp_path / "scratch").mkdir()
    seen = _in_child("_bash", str(tmp_path / "ws"), str(tmp_path / "scratch"))
    assert seen["texts"][0].endswith(
        "\n[could not read sub/ after the command: its files are left as they were]"
    ), seen
    assert "could not read" not in seen["texts"][1], seen
    assert seen["deleted"] == [[], []] and seen["f"] == "F = 1\n# more\n", seen


@pytest.mark.parametrize("watch", ["watched", "walked"])
def test_a_folder_a_command_made_unreadable_keeps_its_files(tmp_path: Path, watch: str) -> None:
    """`chmod 000 sub` after writing in it: nothing under sub/ is proposed as deleted (nor its writes
    taken), the report and a warning name sub/, and so on after every command while it stays unreadable;
    `chmod 755 sub` brings its writes in. The same for a folder that is listable but not searchable
    (`chmod a-x`) and a file made unreadable; a real `rm -r sub` is still a deletion. Both the first
    fold-back's whole walk (`walked`: every fold-back walks) and the inotify path (`watched`)."""
    skip_unless_chmod_denies(tmp_path)
    _write_ws(tmp_path / "ws")
    seen = _in_child("_steps", str(tmp_path / "ws"), str(tmp_path), watch)
    locked, still, unlocked, no_x, unlocked2, file_locked, file_unlocked, removed = seen
    original = {"sub/f.py": "F = 1\n", "sub/deep/g.py": "G = 1\n"}

    assert locked["changed"] == ["a.py"], locked
    assert locked["unreadable"] == ["sub/"], locked
    assert locked["deleted"] == [], locked
    assert {rel: locked["texts"][rel] for rel in original} == original
    assert len(locked["warnings"]) == 1, locked
    assert "could not read sub/ in the workspace copy" in locked["warnings"][0]
    assert "the files there are left as they were" in locked["warnings"][0]

    assert still["changed"] == ["keep/h.py"] and still["unreadable"] == ["sub/"], still
    assert still["deleted"] == [], still

    assert unlocked["changed"] == ["sub/deep/g.py", "sub/f.py"], unlocked
    assert unlocked["unreadable"] == [] and unlocked["warnings"] == [], unlocked
    assert unlocked["texts"]["sub/f.py"] == "F = 1\n# more\n"

    assert no_x["unreadable"] == ["sub/"] and no_x["deleted"] == [], no_x
    assert no_x["changed"] == [], no_x
    assert unlocked2["changed"] == ["sub/f.py"], unlocked2
    assert unlocked2["texts"]["sub/f.py"] == "F = 1\n# more\n# again\n"

    assert file_locked["unreadable"] == ["keep/h.py"] and file_locked["deleted"] == [], file_locked
    assert file_locked["texts"]["keep/h.py"] == "H = 1\n# more\n", file_locked
    assert file_unlocked["changed"] == ["keep/h.py"] and file_unlocked["unreadable"] == [], file_unlocked
    assert file_unlocked["texts"]["keep/h.py"] == "H = 1\n# more\n# w\n"

    assert removed["deleted"] == ["sub/deep/g.py", "sub/f.py"], removed
    assert removed["unreadable"] == [], removed


@pytest.mark.parametrize("watch", ["watched", "walked"])
def test_a_command_that_locks_the_whole_copy_deletes_nothing(tmp_path: Path, watch: str) -> None:
    """`chmod 000 .` on the copy's top folder after writing: the fold-back cannot read anything, and
    proposes no deletion (the report names `./`); the next update of the copy gives its owner rwx back, so the
    next command runs in it and its fold-back, a whole walk, brings in the writes made before the chmod."""
    skip_unless_chmod_denies(tmp_path)
    _write_ws(tmp_path / "ws")
    locked, next_command = _in_child("_steps", str(tmp_path / "ws"), str(tmp_path), watch, "ROOT_STEPS")

    assert locked["changed"] == [] and locked["deleted"] == [], locked
    assert locked["unreadable"] == ["./"], locked
    assert locked["texts"] == _FILES, locked
    assert len(locked["warnings"]) == 1 and "could not read ./ in the workspace copy" in locked["warnings"][0]

    assert next_command["changed"] == ["a.py", "keep/h.py", "sub/f.py"], next_command
    assert next_command["unreadable"] == [] and next_command["deleted"] == [], next_command
    assert next_command["texts"]["a.py"] == "A = 2\n"
    assert next_command["texts"]["sub/f.py"] == "F = 1\n# more\n"


@pytest.mark.parametrize("watch", ["watched", "walked"])
def test_files_the_copy_could_not_take_keep_the_overlays_version(tmp_path: Path, watch: str) -> None:
    """The overlay changes files in a folder a command locked (`chmod 000 sub`): the update of the copy
    cannot write or remove them, says so (its result, a warning) and writes the rest. The command that
    unlocks sub/ sees the older files; its fold-back does not take them (nor its `rm` of one) for the
    command's changes: the overlay keeps its edit, its new file and its deletion, and the next update writes
    them."""
    skip_unless_chmod_denies(tmp_path)
    _write_ws(tmp_path / "ws")
    (tmp_path / "ws" / "sub" / "e.py").write_text("E = 1\n")
    (tmp_path / "ws" / "sub" / "d.py").write_text("D = 1\n")
    seen = _in_child("_stale", str(tmp_path / "ws"), str(tmp_path), watch)

    assert seen["locked"] == ["sub/"], seen
    assert seen["unwritten"] == ["sub/d.py", "sub/deep/g.py", "sub/e.py", "sub/f.py", "sub/new.py"], seen
    assert seen["written"] == 1, seen  # a.py
    assert len(seen["update_warnings"]) == 1, seen
    assert "could not bring sub/d.py (Permission denied), sub/deep/g.py" in seen["update_warnings"][0]

    # Not sub/f.py's older '# cmd' version, nor sub/e.py's removal, nor sub/d.py as made again.
    assert seen["changed"] == [], seen
    assert seen["texts"] == {"sub/f.py": "F = 2\n", "sub/e.py": "E = 2\n", "sub/new.py": "N = 1\n"}, seen
    assert seen["kinds"] == {
        "a.py": "modified",
        "sub/d.py": "deleted",
        "sub/deep/g.py": "deleted",
        "sub/e.py": "modified",
        "sub/f.py": "modified",
        "sub/new.py": "created",
    }, seen

    assert seen["unwritten_again"] == [], seen
    assert seen["copy"] == {
        "sub/f.py": "F = 2\n",
        "sub/e.py": "E = 2\n",
        "sub/new.py": "N = 1\n",
        "a.py": "A = 2\n",
        "sub/deep/g.py": None,
        "sub/d.py": None,
    }, seen
    assert seen["after"] == [], seen


def test_the_bash_tool_says_what_it_could_not_read_or_write(tmp_path: Path) -> None:
    """`chmod 000 .`: the result says the workspace could not be read and nothing is deleted; the next
    command runs (in the copy, its rwx back) and sees the write. `chmod 555 sub` then a file the overlay
    creates there: the next commands run, each result names the file it could not write, until a command
    has made sub/ writable again."""
    skip_unless_chmod_denies(tmp_path)
    _write_ws(tmp_path / "ws")
    (tmp_path / "scratch").mkdir()
    seen = _in_child("_bash_locked_out", str(tmp_path / "ws"), str(tmp_path / "scratch"))
    locked, after, _, listed, unlocking, written = seen["results"]
    assert locked == [
        "(no output)\n[could not read the workspace after the command: its files are left as they were]",
        False,
    ], seen
    assert after == ["A = 2", False], seen
    assert seen["deleted"] == [] and seen["a"] == "A = 2\n", seen
    note = (
        "[could not write your latest version of sub/new.py (Permission denied) into the workspace before "
        "the command: the command saw an older state or none; your version is kept, and the command's "
        "changes to it are not]"
    )
    assert listed == ["deep\nf.py\n" + note, False], seen
    assert unlocking == ["(no output)\n" + note, False], seen
    assert written == ["N = 1", False], seen
