"""The fold-back after a command reads only what inotify saw change (`agent.fswatch`), and misses nothing.

Real files, real inotify, real bubblewrap for the commands of the bash tool. The differential test runs the
same shell steps on two copies, one watched and one walked whole after every step (as before the watch),
and wants the same proposal and the same reports from both.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.fswatch import Changes, TreeWatch
from agent.overlay import Overlay, SyncReport
from agent.sandbox import Sandbox
from agent.tools.bash import BashTool
from tests.agent.test_overlay import disk_snapshot
from tests.agent.userns import warnings_of

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")


def _tree(root: Path) -> Path:
    files = {
        "pkg/__init__.py": "",
        "pkg/a.py": "def f():\n    return 1\n",
        "pkg/b.py": "x = 1\n",
        "pkg/sub/c.py": "c = 3\n",
        "pkg/sub/deep/d.py": "d = 4\n",
        "docs/guide.md": "# Guide\n",
        "docs/old.md": "# Old\n",
        "README.md": "# Demo\n",
        ".gitignore": "build/\n*.log\n",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    for i in range(30):  # folders a walk would list
        (root / "many" / f"m{i:02d}").mkdir(parents=True)
        (root / "many" / f"m{i:02d}" / "x.py").write_text(f"x = {i}\n")
    os.symlink("pkg/a.py", root / "alias.py")
    os.symlink("guide.md", root / "docs" / "latest.md")
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    return root


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Path]:
    root = _tree(tmp_path / "ws")
    before = disk_snapshot(root)
    yield root
    assert disk_snapshot(root) == before, "the user's files changed on disk"


def _sh(dest: Path, script: str) -> None:
    subprocess.run(["bash", "-ec", script], cwd=dest, check=True)


@pytest.fixture
def scandirs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The folders agent.overlay lists (os.scandir calls made from that module)."""
    listed: list[str] = []
    real = os.scandir

    def counting(path: Any = ".") -> Any:
        if sys._getframe(1).f_globals.get("__name__") == "agent.overlay":
            listed.append(os.fspath(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", counting)
    return listed


def _kinds(overlay: Overlay) -> dict[str, tuple[str, str | None]]:
    return {c.path: (c.kind, c.old_path) for c in overlay.changes()}


def test_a_command_that_edits_one_file_lists_no_folder(ws: Path, tmp_path: Path, scandirs: list[str]) -> None:
    """The whole copy was walked after every command before the watch (here 40 folders, on the kernel's
    tree 5,000): now only the paths a command touched are looked at."""
    overlay = Overlay(ws)
    dest = tmp_path / "copy"
    overlay.materialize(dest)
    assert overlay.sync_back_from(dest).changed == ()  # the first fold-back walks, and watches
    assert len(scandirs) > 35
    scandirs.clear()

    _sh(dest, "echo 'y = 2' >> pkg/b.py; sed -i 's/return 1/return 2/' pkg/a.py")
    report = overlay.sync_back_from(dest)
    assert report.changed == ("pkg/a.py", "pkg/b.py")
    assert scandirs == []
    # A new folder is listed (its files were made before it could be watched), and only it.
    _sh(dest, "mkdir -p new/inner && echo 'n = 1' > new/inner/n.py")
    assert overlay.sync_back_from(dest).changed == ("new/inner/n.py",)
    assert sorted(os.path.relpath(p, dest) for p in scandirs) == ["new", "new/inner"]


_MAP_AND_EXIT = """
import mmap, os
for name, close_first in (("pkg/a.py", False), ("pkg/b.py", True)):
    fd = os.open(name, os.O_RDWR)
    mapping = mmap.mmap(fd, 0)
    if close_first:
        os.close(fd)  # the mapping alone keeps the file open
    mapping[:5] = b"def g" if name == "pkg/a.py" else b"x = 9"
os._exit(0)  # no munmap, no close, no msync
"""


def test_a_write_through_a_mapping_left_at_exit_folds_back(
    ws: Path, tmp_path: Path, scandirs: list[str]
) -> None:
    """A write through a shared mapping is no inotify event; the file's close, when the process's exit
    drops its last descriptor and mapping, is: the fold-back finds both files (same sizes) without a walk."""
    overlay = Overlay(ws)
    dest = tmp_path / "copy"
    overlay.materialize(dest)
    overlay.sync_back_from(dest)
    scandirs.clear()
    subprocess.run([sys.executable, "-c", _MAP_AND_EXIT], cwd=dest, check=True)
    assert overlay.sync_back_from(dest).changed == ("pkg/a.py", "pkg/b.py")
    assert overlay.read("pkg/a.py") == "def g():\n    return 1\n"
    assert overlay.read("pkg/b.py") == "x = 9\n"
    assert scandirs == []


def test_every_kind_of_change_folds_back_from_the_watch(ws: Path, tmp_path: Path) -> None:
    overlay = Overlay(ws)
    dest = tmp_path / "copy"
    overlay.materialize(dest)
    overlay.sync_back_from(dest)
    _sh(
        dest,
        "echo 'z = 3' >> pkg/b.py\n"  # modified in place
        "mkdir -p new/deep/er && echo 'n = 1' > new/deep/er/n.py\n"  # created in new nested folders
        "rm docs/old.md\n"  # deleted
        "mv README.md README.rst\n"  # renamed
        "mv pkg/sub lib\n"  # a folder moved: its files are renamed
        "rm -r many/m03 many/m04\n"  # folders deleted
        "ln -s lib/c.py c-link.py; ln -sfn README.rst docs/latest.md; rm alias.py\n"  # links
        "mkdir build && echo out > build/x.txt && echo log > run.log\n",  # ignored
    )
    report = overlay.sync_back_from(dest)
    assert _kinds(overlay) == {
        "pkg/b.py": ("modified", None),
        "new/deep/er/n.py": ("created", None),
        "docs/old.md": ("deleted", None),
        "README.rst": ("renamed", "README.md"),
        "lib/c.py": ("renamed", "pkg/sub/c.py"),
        "lib/deep/d.py": ("renamed", "pkg/sub/deep/d.py"),
        "many/m03/x.py": ("deleted", None),
        "many/m04/x.py": ("deleted", None),
    }
    assert [(s.path, s.target, s.old_target) for s in report.symlinks] == [
        ("alias.py", None, "pkg/a.py"),
        ("c-link.py", "lib/c.py", None),
        ("docs/latest.md", "README.rst", "guide.md"),
    ]
    assert set(report.ignored) == {"build/x.txt", "run.log"}

    # The moved folder and the new ones are watched under their new paths.
    _sh(dest, "echo 'c = 30' > lib/c.py; echo 'd = 40' > lib/deep/d.py; echo 'n = 2' > new/deep/er/n.py")
    assert overlay.sync_back_from(dest).changed == ("lib/c.py", "lib/deep/d.py", "new/deep/er/n.py")
    assert overlay.read("lib/deep/d.py") == "d = 40\n"
    # A folder replaced by a link (here to the real workspace): its files are gone from the copy's view.
    _sh(dest, f"rm -r new && ln -s {ws}/pkg new")
    report = overlay.sync_back_from(dest)
    assert report.changed == ("new/deep/er/n.py",)
    assert "new/deep/er/n.py" not in _kinds(overlay)
    assert [(s.path, s.inside) for s in report.symlinks] == [("new", True)]


def test_a_lost_event_queue_walks_the_copy_and_keeps_every_change(
    ws: Path, tmp_path: Path, scandirs: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    """More events than inotify's queue holds (16,384 by default): the fold-back walks the whole copy,
    says so in the log, and watches again for the next command."""
    limit = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    assert limit <= 100_000, "the test writes more events than the queue holds"
    overlay = Overlay(ws)
    dest = tmp_path / "copy"
    overlay.materialize(dest)
    overlay.sync_back_from(dest)
    _sh(dest, "mkdir -p fresh/dir && echo 'f = 1' > fresh/dir/f.py && rm docs/guide.md")
    # Two files written in turn: inotify merges only repeats of the same event, so each write queues one.
    with open(dest / "pkg" / "a.py", "a") as first, open(dest / "pkg" / "b.py", "a") as second:
        for _ in range(limit // 2 + 100):
            first.write("#")
            first.flush()
            second.write("#")
            second.flush()
    scandirs.clear()
    with caplog.at_level(logging.INFO, logger="agent.fswatch"):
        report = overlay.sync_back_from(dest)
    assert "overflowed" in caplog.text
    assert len(scandirs) > 35  # walked
    assert report.changed == ("docs/guide.md", "fresh/dir/f.py", "pkg/a.py", "pkg/b.py")
    assert overlay.read("pkg/a.py").endswith("return 1\n" + "#" * (limit // 2 + 100))

    scandirs.clear()
    _sh(dest, "echo 'g = 2' > fresh/dir/f.py")
    assert overlay.sync_back_from(dest).changed == ("fresh/dir/f.py",)
    assert scandirs == []


STEPS = [
    "echo 'z = 3' >> pkg/b.py; sed -i 's/1/10/' pkg/a.py",
    "mkdir -p new/a/b && echo one > new/a/b/one.md && echo two > new/two.md && touch docs/guide.md",
    "mv new/a moved && mv docs/guide.md moved/guide.md && echo three >> moved/b/one.md",
    "rm -r moved/b && mkdir moved/b && echo again > moved/b/one.md",
    "mv pkg pkg2 && mkdir pkg && mv pkg2 pkg/inner && echo 'e = 5' > pkg/inner/sub/e.py",
    "mkdir -p node_modules/dep && echo x > node_modules/dep/i.js && mv many/m01 node_modules/m01",
    "mv node_modules/m01 back && echo 'y = 1' >> back/x.py && rm -rf many/m0*",
    "ln -s back linked && rm docs/latest.md && ln -s ../back docs/latest.md && echo bin > x.bin",
    "printf '\\x00\\x01' > pkg/inner/b.py; mkdir __pycache__ && echo c > __pycache__/c.pyc",
    "rm -r back && ln -s pkg back && echo w > pkg/w.py",
    "ln README.md hard.md && ln pkg/inner/a.py pkg/a-too.py",
    "echo 'more' >> hard.md && echo '# more' >> pkg/inner/a.py",  # each a write to the other name too
    "rm hard.md && echo 'last' >> README.md",
    "mkdir dd dd0 dd.x && echo 1 > dd/f && echo 2 > dd0/f && echo 3 > dd.x/f && echo 4 > dd.txt",
    "rm -r dd",  # its neighbours' names start alike
    "head -c 11000000 /dev/zero | tr '\\0' b > big.txt && echo 'print()' > small.py",  # over 10 MiB
    "git init -q sub && echo s > sub/s.txt && python3 -m venv --without-pip .venv && echo 'v' > v.py",
]


def _report(report: SyncReport) -> tuple[Any, ...]:
    links = tuple((s.path, s.target, s.old_target, s.inside) for s in report.symlinks)
    return (report.changed, report.skipped, report.ignored, report.tool_dirs, report.too_large, links)


def test_the_watched_fold_back_finds_what_a_whole_walk_finds(ws: Path, tmp_path: Path) -> None:
    watched, walked = Overlay(ws), Overlay(ws, watch_copies=False)
    copies = {tmp_path / "watched": watched, tmp_path / "walked": walked}
    for dest, overlay in copies.items():
        overlay.materialize(dest)
        overlay.sync_back_from(dest)
    for step in STEPS:
        reports = []
        for dest, overlay in copies.items():
            _sh(dest, step)
            reports.append(_report(overlay.sync_back_from(dest)))
            overlay.materialize(dest)
        assert reports[0] == reports[1], step
        assert watched.changes() == walked.changes(), step
        assert watched.symlink_changes() == walked.symlink_changes(), step
    assert {c.path for c in watched.changes()} >= {"moved/b/one.md", "pkg/inner/sub/e.py", "v.py"}
    assert watched.read("README.md") == "# Demo\nmore\nlast\n"
    assert {"dd0/f", "dd.x/f", "dd.txt"} <= {c.path for c in watched.changes()}
    assert not watched.exists("dd/f")
    assert not watched.exists("big.txt") and watched.exists("small.py")
    assert watched.read("pkg/a-too.py") == watched.read("pkg/inner/a.py")


def _inotify_fds() -> dict[str, int]:
    """This process's inotify instances: descriptor -> watches it holds (from /proc/self/fdinfo)."""
    found: dict[str, int] = {}
    for fd in os.listdir("/proc/self/fd"):
        if _readlink(f"/proc/self/fd/{fd}") == "anon_inode:inotify":
            try:
                info = Path(f"/proc/self/fdinfo/{fd}").read_text()
            except OSError:
                continue
            found[fd] = sum(line.startswith("inotify wd:") for line in info.splitlines())
    return found


def _past_the_watch_limit(ws: str, tmp: str, when: str) -> None:
    """The child process of `test_past_max_user_watches_every_fold_back_walks_and_misses_nothing`, in a
    user namespace of its own whose root may set the namespace's ``max_inotify_watches``. A watched and a
    walked overlay of `ws` take the same steps; the watch count is lowered before the first fold-back or,
    once it has watched every folder, to two more than that (the next command makes three folders).
    Prints what the parent checks as JSON."""
    warnings = warnings_of("agent.overlay")
    limit = Path("/proc/sys/user/max_inotify_watches")
    watched, walked = Overlay(Path(ws)), Overlay(Path(ws), watch_copies=False)
    copies = {Path(tmp) / "watched": watched, Path(tmp) / "walked": walked}
    for dest, overlay in copies.items():
        overlay.materialize(dest)
    if when == "first walk":
        limit.write_text("10")
    for dest, overlay in copies.items():
        overlay.sync_back_from(dest)
    watches = sum(_inotify_fds().values())
    if when == "a later command":
        limit.write_text(str(watches + 2))
    failed_at: list[int] = []
    for n, step in enumerate(STEPS):
        reports = []
        for dest, overlay in copies.items():
            _sh(dest, step)
            reports.append(_report(overlay.sync_back_from(dest)))
            overlay.materialize(dest)
        if warnings and not failed_at:
            failed_at.append(n)
        assert reports[0] == reports[1], step
        assert watched.changes() == walked.changes(), step
        assert watched.symlink_changes() == walked.symlink_changes(), step
    changed = sorted(c.path for c in watched.changes())
    print(
        json.dumps(
            {
                "watches": watches,
                "warnings": warnings,
                "failed_at": failed_at,
                "changed": changed,
                "inotify": _inotify_fds(),
            }
        )
    )


def _in_own_user_namespace() -> bool:
    done = subprocess.run(
        ["unshare", "-U", "-r", "sh", "-c", "echo 100 > /proc/sys/user/max_inotify_watches"],
        capture_output=True,
    )
    return done.returncode == 0


@pytest.mark.parametrize("when", ["first walk", "a later command"])
def test_past_max_user_watches_every_fold_back_walks_and_misses_nothing(
    ws: Path, tmp_path: Path, when: str
) -> None:
    """A folder that cannot be watched (``fs.inotify.max_user_watches`` reached: inotify_add_watch says
    ENOSPC) ends the copy's watch: the warning says so and which setting to raise, the watches go, and
    every later fold-back walks the whole copy, so it finds what a copy walked from the start finds, step
    after step. A real limit, not a stand-in: the steps run in a child process in a user namespace of its
    own (``unshare -U -r``), whose root sets that namespace's ``max_inotify_watches``; the limit is reached
    in the first walk, or later in the walk of the folders a command made."""
    if shutil.which("unshare") is None or not _in_own_user_namespace():
        pytest.skip("no user namespace to lower max_inotify_watches in")
    code = "import sys; from tests.agent.test_fswatch import _past_the_watch_limit as f; f(*sys.argv[1:])"
    done = subprocess.run(
        ["unshare", "-U", "-r", sys.executable, "-c", code, str(ws), str(tmp_path), when],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    seen = json.loads(done.stdout.splitlines()[-1])
    assert len(seen["warnings"]) == 1, seen["warnings"]
    assert "cannot watch the workspace copy" in seen["warnings"][0]
    assert "No space left on device) (raise fs.inotify.max_user_watches)" in seen["warnings"][0]
    assert "the whole copy is walked" in seen["warnings"][0]
    # Where it failed: in the first walk (no step saw a watch), or at the step making new/a/b.
    assert seen["failed_at"] == ([0] if when == "first walk" else [1]), seen
    assert (seen["watches"] == 0) == (when == "first walk"), seen
    assert seen["inotify"] == {}, "the watch was not closed"
    assert {"moved/b/one.md", "pkg/inner/sub/e.py", "v.py", "dd0/f"} <= set(seen["changed"])


def test_commands_in_the_sandbox_are_seen_and_a_forgotten_copy_stops_watching(ws: Path) -> None:
    """inotify sees what a command writes from inside bubblewrap's mount namespace (the same inodes)."""
    overlay = Overlay(ws)

    def instances() -> int:
        fds = os.listdir("/proc/self/fd")
        return sum(1 for fd in fds if _readlink(f"/proc/self/fd/{fd}") == "anon_inode:inotify")

    before = instances()
    with BashTool(overlay, Sandbox(), timeout=20) as tool:
        assert tool.sandbox.isolated, "bubblewrap is needed here"
        assert not tool.execute("true").is_error
        assert instances() == before + 1
        result = tool.execute(
            "sed -i 's/x = 1/x = 2/' pkg/b.py && mkdir -p n/m && echo 'k = 1' > n/m/k.py && "
            "mv pkg/sub/deep lib && rm docs/old.md && ln -sfn old.md docs/latest.md && echo ok"
        )
        assert result.content.splitlines()[0] == "ok"
        assert _kinds(overlay) == {
            "pkg/b.py": ("modified", None),
            "n/m/k.py": ("created", None),
            "lib/d.py": ("renamed", "pkg/sub/deep/d.py"),
            "docs/old.md": ("deleted", None),
        }
        assert "changed the symlink docs/latest.md to -> old.md" in result.content
        tool.execute("echo 'd = 5' > lib/d.py && echo 'k = 2' > n/m/k.py")
        assert overlay.read("lib/d.py") == "d = 5\n" and overlay.read("n/m/k.py") == "k = 2\n"
    assert instances() == before


def _readlink(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return ""


def test_tree_watch_follows_a_moved_folder(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "a" / "b").mkdir(parents=True)
    watch = TreeWatch(str(root))
    for rel in ("", "a", "a/b"):
        watch.add(rel)
    assert watch.watches == 3
    (root / "a").rename(root / "z")
    (root / "z" / "b" / "f.txt").write_text("f")
    changes = watch.changes()
    assert changes is not None
    assert changes.trees == {"a", "z"}
    assert changes.gone == {"a"}
    assert changes.paths == {"a", "z", "z/b/f.txt"}
    watch.close()
    watch.close()


def test_tree_watch_reports_a_folders_mode_change_not_a_files(tmp_path: Path) -> None:
    """A `chmod` of a folder, the root included, is in `modes` (the fold-back checks it can still read
    it: a command may lock a folder and write nothing); a file's `chmod` or `touch` is no change at all."""
    root = tmp_path / "root"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "f.txt").write_text("f")
    watch = TreeWatch(str(root))
    for rel in ("", "a", "a/b"):
        watch.add(rel)
    (root / "a" / "f.txt").chmod(0o600)
    os.utime(root / "a" / "f.txt", ns=(1, 1))
    assert watch.changes() == Changes()
    (root / "a" / "b").chmod(0o500)
    root.chmod(0o700)
    changes = watch.changes()
    assert changes == Changes(modes={"a/b", ""}), changes
    watch.close()
