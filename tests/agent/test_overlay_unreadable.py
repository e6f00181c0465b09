"""A folder (or file) a command makes unreadable in the workspace copy is not read as deleted.

The fold-back runs as the user, so a command's `chmod 000 sub` makes `os.scandir` fail there. As root it
would not (root reads anyway), so the steps run in a child process in a user namespace of its own without
a mapping (``unshare -U``): the child keeps its real owner ID but has no capability over files of this
namespace's parent, so the permission bits apply to it as to a user.

A folder of the copy the owner cannot list or search gets its owner's rwx back at the fold-back (the copy is
agentls' own, a folder's mode no part of the proposal), the copy's top folder (`chmod 000 .`) too, also after
a command that only did the chmod (inotify's IN_ATTRIB of a folder). What is left unreadable is a file
(`chmod 000 f.py`: its mode is the proposal's) or a folder the fold-back cannot chmod: one of another owner,
made by a child that is root without any capability but CAP_CHOWN (`setpriv`).

The other way round, the files the overlay cannot write into the copy before a command because an earlier
one took the permission (`chmod 555 sub`).
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
from tests.agent.userns import (
    WITH_CHOWN_ONLY,
    in_child,
    skip_unless_chmod_denies,
    skip_unless_chown_only,
    warnings_of,
)

_FILES = {
    "a.py": "A = 1\n",
    "sub/f.py": "F = 1\n",
    "sub/deep/g.py": "G = 1\n",
    "keep/h.py": "H = 1\n",
    "nest/inner/i.py": "I = 1\n",
}

STEPS = [
    "echo '# more' >> sub/f.py; echo '# more' >> sub/deep/g.py; echo 'A = 2' > a.py; chmod 000 sub",
    "echo '# more' >> keep/h.py; chmod 000 sub",
    "ls sub > /dev/null; echo '# again' >> sub/f.py; chmod a-x sub",
    "chmod a-x sub/deep; chmod a-x nest",
    "cat sub/deep/g.py nest/inner/i.py > /dev/null; echo '# w' >> keep/h.py; chmod 000 keep/h.py",
    "chmod 644 keep/h.py; chmod 555 sub; touch sub",
    "chmod 755 sub; rm -r sub",
]
"""Each step must run (`bash -e`): `ls sub` and `cat sub/deep/g.py` only do once the fold-back of the
command before gave the folders back."""


ROOT_STEPS = [
    "echo 'A = 2' > a.py; echo '# more' >> sub/f.py; chmod 000 .",
    "chmod 000 .",
    "echo '# more' >> keep/h.py",
]

OTHER_OWNER_STEPS = [
    "echo '# more' >> sub/f.py; echo 'A = 2' > a.py; chmod 000 sub; chown 1234 sub",
    "echo '# more' >> keep/h.py",
]
"""sub/ given to another owner: the fold-back can neither read it nor give it back."""


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
    `steps`; prints per step the report's changed, unreadable and reopened paths, the run's deleted paths,
    the texts and the warnings, as JSON."""
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
                "reopened": list(report.reopened),
                "deleted": sorted(c.path for c in changes if c.kind == "deleted"),
                "texts": {rel: overlay.read(rel) for rel in _FILES if overlay.exists(rel)},
                "warnings": warnings[:],
            }
        )
        warnings.clear()
    print(json.dumps(seen))


def _bash(ws: str, scratch: str) -> None:
    """The child process of the bash tool's test: a command that writes in sub/ and locks it, one that
    only locks sub/deep/, one that lists it; prints the results' texts and the deleted paths as JSON.
    Unsandboxed (`enabled = false`): bubblewrap cannot make its namespaces inside this one."""
    overlay = Overlay(Path(ws))
    texts, deleted = [], []
    with BashTool(overlay, Sandbox(SandboxSettings(enabled=False)), scratch_dir=Path(scratch)) as bash:
        for command in ("echo '# more' >> sub/f.py; chmod 000 sub", "chmod a-x sub/deep", "ls sub/deep"):
            texts.append(ToolRegistry([bash]).execute("bash", {"command": command}).content)
            deleted.append(sorted(c.path for c in overlay.changes() if c.kind == "deleted"))
    print(json.dumps({"texts": texts, "deleted": deleted, "f": overlay.read("sub/f.py")}))


COPY_FILES = ("sub/f.py", "sub/e.py", "sub/new.py", "a.py", "sub/deep/g.py", "sub/d.py")


def _stale(ws: str, tmp: str, watch: str) -> None:
    """The child process of the stale-copy test: a command makes sub/ read-only; the overlay then changes
    files there, of which the update of the copy cannot create or remove some; a command makes sub/ writable
    and writes those. Prints what each step reported and what the overlay and the copy held, as JSON."""
    overlay, dest, warnings = _first_fold_back(ws, tmp, watch)
    sh = ["bash", "-ec"]
    subprocess.run([*sh, "echo '# cmd' >> sub/f.py; chmod 555 sub"], cwd=dest, check=True)
    locked = overlay.sync_back_from(dest)
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
    command = "chmod 755 sub; echo '# cmd' >> sub/d.py; echo '# cmd' > sub/new.py"
    subprocess.run([*sh, command], cwd=dest, check=True)
    unlocked = overlay.sync_back_from(dest)
    kinds = {c.path: c.kind for c in overlay.changes()}
    texts = {rel: overlay.read(rel) for rel in ("sub/f.py", "sub/e.py", "sub/new.py") if overlay.exists(rel)}
    again = overlay.materialize(dest)
    copy = {rel: (dest / rel).read_text() if (dest / rel).exists() else None for rel in COPY_FILES}
    print(
        json.dumps(
            {
                "locked": [list(locked.changed), list(locked.unreadable), list(locked.reopened)],
                "unwritten": list(update.unwritten),
                "written": [update.written, update.removed],
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


def _reopened_note(names: str) -> str:
    return (
        f"\n[the command took the owner's read or search permission on {names}; folder permissions are not "
        "part of your proposal, and later commands could not look into it, so it is rwx for the owner again]"
    )


def test_the_bash_tool_says_which_folders_it_gave_back(tmp_path: Path) -> None:
    """The command's result tells the agent that sub/ (written, then locked) and sub/deep/ (only locked:
    no event but IN_ATTRIB) were given back to their owner; the write comes in, nothing is deleted, and
    the next command lists sub/deep/."""
    skip_unless_chmod_denies(tmp_path)
    _write_ws(tmp_path / "ws")
    (tmp_path / "scratch").mkdir()
    seen = _in_child("_bash", str(tmp_path / "ws"), str(tmp_path / "scratch"))
    assert seen["texts"] == [
        "(no output)" + _reopened_note("sub/"),
        "(no output)" + _reopened_note("sub/deep/"),
        "g.py",
    ], seen
    assert seen["deleted"] == [[], [], []] and seen["f"] == "F = 1\n# more\n", seen


@pytest.mark.parametrize("watch", ["watched", "walked"])
def test_a_folder_a_command_locked_is_given_back_and_read(tmp_path: Path, watch: str) -> None:
    """`chmod 000 sub` after writing in it: the fold-back gives sub/ its owner's rwx back, reads it and
    takes its writes; the report names it. The same after a command that only locks it (no write: with
    a watch, IN_ATTRIB is the only event), for a folder listable but not searchable (`chmod a-x`), one
    under another, and one holding only a folder; each next command reads it. A file made unreadable is
    not the fold-back's to change: it stays as it was until readable. A read-only folder (`chmod 555`) is
    left so. A real `rm -r sub` is still a deletion. Both the whole walk (`walked`: every fold-back walks)
    and the inotify path (`watched`)."""
    skip_unless_chmod_denies(tmp_path)
    _write_ws(tmp_path / "ws")
    seen = _in_child("_steps", str(tmp_path / "ws"), str(tmp_path), watch)
    written_locked, only_locked, no_x, deep_no_x, file_locked, file_unlocked, removed = seen

    assert written_locked["changed"] == ["a.py", "sub/deep/g.py", "sub/f.py"], written_locked
    assert written_locked["reopened"] == ["sub/"] and written_locked["unreadable"] == [], written_locked
    assert written_locked["deleted"] == [] and written_locked["warnings"] == [], written_locked
    assert written_locked["texts"]["sub/f.py"] == "F = 1\n# more\n"

    assert only_locked["changed"] == ["keep/h.py"], only_locked
    assert only_locked["reopened"] == ["sub/"] and only_locked["unreadable"] == [], only_locked

    assert no_x["changed"] == ["sub/f.py"] and no_x["reopened"] == ["sub/"], no_x
    assert no_x["texts"]["sub/f.py"] == "F = 1\n# more\n# again\n", no_x
    # nest/ holds only a folder: the walk lists it, and only reaching nest/inner/ fails.
    assert deep_no_x["changed"] == [] and deep_no_x["reopened"] == ["nest/", "sub/deep/"], deep_no_x
    assert deep_no_x["deleted"] == [] and deep_no_x["unreadable"] == [], deep_no_x

    assert file_locked["unreadable"] == ["keep/h.py"] and file_locked["deleted"] == [], file_locked
    assert file_locked["reopened"] == [], file_locked
    assert file_locked["texts"]["keep/h.py"] == "H = 1\n# more\n", file_locked
    assert len(file_locked["warnings"]) == 1, file_locked
    assert "could not read keep/h.py in the workspace copy" in file_locked["warnings"][0]
    assert file_unlocked["changed"] == ["keep/h.py"] and file_unlocked["unreadable"] == [], file_unlocked
    assert file_unlocked["reopened"] == [], file_unlocked  # sub/ at 555: readable, left read-only
    assert file_unlocked["texts"]["keep/h.py"] == "H = 1\n# more\n# w\n"

    assert removed["deleted"] == ["sub/deep/g.py", "sub/f.py"], removed
    assert removed["unreadable"] == [] and removed["reopened"] == [], removed


@pytest.mark.parametrize("watch", ["watched", "walked"])
def test_a_folder_the_fold_back_cannot_give_back_keeps_its_files(tmp_path: Path, watch: str) -> None:
    """`chmod 000 sub` and sub/ given to another owner: the fold-back can neither read it nor give it back,
    so nothing under it is proposed as deleted (nor its writes taken), the report and a warning name sub/,
    and so on after the next command."""
    skip_unless_chown_only(tmp_path)
    _write_ws(tmp_path / "ws")
    seen = in_child(
        __name__,
        "_steps",
        str(tmp_path / "ws"),
        str(tmp_path),
        watch,
        "OTHER_OWNER_STEPS",
        launcher=WITH_CHOWN_ONLY,
    )
    locked, still = seen
    assert locked["changed"] == ["a.py"] and locked["deleted"] == [], locked
    assert locked["unreadable"] == ["sub/"] and locked["reopened"] == [], locked
    assert locked["texts"]["sub/f.py"] == "F = 1\n", locked
    assert len(locked["warnings"]) == 1, locked
    assert "could not read sub/ in the workspace copy" in locked["warnings"][0]
    assert "the files there are left as they were" in locked["warnings"][0]
    assert still["changed"] == ["keep/h.py"] and still["unreadable"] == ["sub/"], still
    assert still["deleted"] == [], still


@pytest.mark.parametrize("watch", ["watched", "walked"])
def test_a_command_that_locks_the_whole_copy_deletes_nothing(tmp_path: Path, watch: str) -> None:
    """`chmod 000 .` on the copy's top folder after writing: the fold-back gives it its owner's rwx back
    (the report names `./`), then reads the writes made before the chmod, and proposes no deletion; the
    same after a command that only locks it; the next command runs in it."""
    skip_unless_chmod_denies(tmp_path)
    _write_ws(tmp_path / "ws")
    locked, only_locked, next_command = _in_child(
        "_steps", str(tmp_path / "ws"), str(tmp_path), watch, "ROOT_STEPS"
    )

    assert locked["changed"] == ["a.py", "sub/f.py"] and locked["deleted"] == [], locked
    assert locked["reopened"] == ["./"] and locked["unreadable"] == [], locked
    assert locked["texts"]["a.py"] == "A = 2\n" and locked["texts"]["sub/f.py"] == "F = 1\n# more\n"
    assert locked["warnings"] == [], locked

    assert only_locked["reopened"] == ["./"] and only_locked["changed"] == [], only_locked
    assert next_command["changed"] == ["keep/h.py"], next_command
    assert next_command["unreadable"] == [] and next_command["deleted"] == [], next_command


@pytest.mark.parametrize("watch", ["watched", "walked"])
def test_files_the_copy_could_not_take_keep_the_overlays_version(tmp_path: Path, watch: str) -> None:
    """The overlay changes files in a folder a command made read-only (`chmod 555 sub`, which the fold-back
    leaves: it reads it): the update of the copy cannot create or remove files there, says so (its result,
    a warning) and writes the rest. The command that makes sub/ writable sees the older files; its
    fold-back does not take them for the command's changes (its append to sub/d.py, its sub/new.py): the
    overlay keeps its new file and its deletion, and the next update writes them."""
    skip_unless_chmod_denies(tmp_path)
    _write_ws(tmp_path / "ws")
    (tmp_path / "ws" / "sub" / "e.py").write_text("E = 1\n")
    (tmp_path / "ws" / "sub" / "d.py").write_text("D = 1\n")
    seen = _in_child("_stale", str(tmp_path / "ws"), str(tmp_path), watch)

    assert seen["locked"] == [["sub/f.py"], [], []], seen
    assert seen["unwritten"] == ["sub/d.py", "sub/new.py"], seen
    assert seen["written"] == [3, 1], seen  # a.py, sub/e.py, sub/f.py (their files are writable); deep/g.py
    assert len(seen["update_warnings"]) == 1, seen
    assert (
        "could not bring sub/d.py (Permission denied), sub/new.py (Permission denied)"
        in seen["update_warnings"][0]
    ), seen

    # Not sub/d.py as the command appended to it, nor the command's sub/new.py.
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
    """`chmod 000 .`: the result says the workspace was given back to its owner and nothing is deleted;
    the next command runs (in the copy, its rwx back) and sees the write. `chmod 555 sub` then a file the
    overlay creates there: the next commands run, each result names the file it could not write, until a
    command has made sub/ writable again."""
    skip_unless_chmod_denies(tmp_path)
    _write_ws(tmp_path / "ws")
    (tmp_path / "scratch").mkdir()
    seen = _in_child("_bash_locked_out", str(tmp_path / "ws"), str(tmp_path / "scratch"))
    locked, after, _, listed, unlocking, written = seen["results"]
    assert locked == ["(no output)" + _reopened_note("the workspace"), False], seen
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
