"""The overlay: base snapshots (disk and unsaved buffers), changes and diffs, materializing and syncing back.

Every test using the `ws` fixture checks at teardown that the workspace on disk is byte-for-byte what it
was: nothing the overlay does may touch the user's files.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.overlay import BinaryFileError, Overlay, OverlayError, unified_diff
from agent.paths import PathRefused, resolve_in_workspace


def disk_snapshot(root: Path) -> dict[str, bytes | str]:
    """Every file (bytes) and symlink (target) under root, by relative path."""
    found: dict[str, bytes | str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                found[rel] = "-> " + os.readlink(path)
            elif path.is_file():
                found[rel] = path.read_bytes()
    return found


def make_workspace(root: Path) -> Path:
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "a.py").write_text("def f():\n    return 1\n")
    (root / "pkg" / "b.py").write_text("x = 1\ny = 2\n")
    (root / "README.md").write_text("# Demo\n")
    (root / "run.sh").write_text("#!/bin/sh\necho run\n")
    (root / "run.sh").chmod(0o755)
    (root / ".env").write_text("API_KEY=sk-secret\n")
    (root / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00binary")
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (root / "node_modules" / "dep").mkdir(parents=True)
    (root / "node_modules" / "dep" / "index.js").write_text("module.exports = 1\n")
    (root / "pkg" / "__pycache__").mkdir()
    (root / "pkg" / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\x00cache")
    (root / ".gitignore").write_text("build/\n*.log\n")
    (root / "link.py").symlink_to("pkg/a.py")
    return root


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Path]:
    root = make_workspace(tmp_path / "ws")
    before = disk_snapshot(root)
    yield root
    assert disk_snapshot(root) == before, "the user's files changed on disk"


# -- paths ---------------------------------------------------------------------------------------


def test_resolve_accepts_relative_and_absolute_paths_inside(ws: Path) -> None:
    assert resolve_in_workspace(ws, "pkg/a.py") == "pkg/a.py"
    assert resolve_in_workspace(ws, "./pkg/../pkg/a.py") == "pkg/a.py"
    assert resolve_in_workspace(ws, str(ws / "pkg" / "a.py")) == "pkg/a.py"
    assert resolve_in_workspace(ws, str(ws)) == "."
    assert resolve_in_workspace(ws, "new/dir/file.py") == "new/dir/file.py"


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("../x", "outside the workspace"),
        ("pkg/../../x", "outside the workspace"),
        ("/etc/passwd", "outside the workspace"),
        (".env", "secret file"),
        ("config/.env.local", "secret file"),
        ("keys/server.pem", "secret file"),
        (".git/config", ".git"),
        ("pkg/a\x00.py", "NUL"),
        ("", "empty"),
    ],
)
def test_resolve_refuses(ws: Path, path: str, fragment: str) -> None:
    with pytest.raises(PathRefused, match=fragment):
        resolve_in_workspace(ws, path)


def test_resolve_refuses_symlinks_leading_outside(ws: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("outside\n")
    (ws / "escape").symlink_to(outside)
    (ws / "escape_file.txt").symlink_to(outside / "secret.txt")
    try:
        for path in ("escape/secret.txt", "escape_file.txt", "escape/new.txt"):
            with pytest.raises(PathRefused, match="symbolic link"):
                resolve_in_workspace(ws, path)
        # A link inside the workspace is fine.
        assert resolve_in_workspace(ws, "link.py") == "link.py"
    finally:
        (ws / "escape").unlink()
        (ws / "escape_file.txt").unlink()


# -- base and reads ------------------------------------------------------------------------------


def test_unsaved_buffers_are_the_base_with_their_versions(ws: Path) -> None:
    overlay = Overlay(ws, {"pkg/b.py": ("x = 10\ny = 2\n", 7), str(ws / "notes.txt"): ("draft\n", 2)})
    assert overlay.read("pkg/b.py") == "x = 10\ny = 2\n"
    assert overlay.read("notes.txt") == "draft\n"
    assert overlay.exists("notes.txt")
    assert overlay.changes() == []

    overlay.write("pkg/b.py", "x = 11\ny = 2\n")
    overlay.write("pkg/a.py", "def f():\n    return 2\n")
    changes = {c.path: c for c in overlay.changes()}
    assert changes["pkg/b.py"].base_text == "x = 10\ny = 2\n"
    assert changes["pkg/b.py"].base_version == 7
    assert changes["pkg/a.py"].base_version is None
    assert "-x = 10\n+x = 11\n" in changes["pkg/b.py"].diff


def test_base_is_snapshotted_at_first_read(tmp_path: Path) -> None:
    root = make_workspace(tmp_path / "ws")
    overlay = Overlay(root)
    assert overlay.read("pkg/b.py") == "x = 1\ny = 2\n"
    (root / "pkg" / "b.py").write_text("changed on disk\n")
    assert overlay.read("pkg/b.py") == "x = 1\ny = 2\n"
    overlay.write("pkg/b.py", "x = 1\ny = 3\n")
    (change,) = overlay.changes()
    assert change.base_text == "x = 1\ny = 2\n"
    # A file the overlay never looked at shows the disk as it is now.
    (root / "README.md").write_text("# New\n")
    assert overlay.read("README.md") == "# New\n"


def test_binary_files_are_readable_by_nobody_and_not_editable(ws: Path) -> None:
    overlay = Overlay(ws)
    assert overlay.is_binary("logo.png")
    with pytest.raises(BinaryFileError, match="binary"):
        overlay.read("logo.png")
    with pytest.raises(BinaryFileError):
        overlay.write("logo.png", "text")
    with pytest.raises(BinaryFileError):
        overlay.delete("logo.png")
    (ws / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    try:
        with pytest.raises(BinaryFileError, match="not UTF-8"):
            Overlay(ws).read("latin1.txt")
    finally:
        (ws / "latin1.txt").unlink()


# -- changes -------------------------------------------------------------------------------------


def test_modified_created_deleted_and_their_diffs(ws: Path) -> None:
    overlay = Overlay(ws)
    overlay.write("pkg/a.py", "def f():\n    return 2\n")
    overlay.create("pkg/sub/c.py", "z = 3\n")
    overlay.delete("README.md")
    changes = overlay.changes()
    assert [(c.path, c.kind) for c in changes] == [
        ("README.md", "deleted"),
        ("pkg/a.py", "modified"),
        ("pkg/sub/c.py", "created"),
    ]
    deleted, modified, created = changes
    assert deleted.diff == (
        "diff --git a/README.md b/README.md\n"
        "deleted file mode 100644\n"
        "--- a/README.md\n"
        "+++ /dev/null\n"
        "@@ -1 +0,0 @@\n"
        "-# Demo\n"
    )
    assert modified.diff == (
        "diff --git a/pkg/a.py b/pkg/a.py\n"
        "--- a/pkg/a.py\n"
        "+++ b/pkg/a.py\n"
        "@@ -1,2 +1,2 @@\n"
        " def f():\n"
        "-    return 1\n"
        "+    return 2\n"
    )
    assert created.diff == (
        "diff --git a/pkg/sub/c.py b/pkg/sub/c.py\n"
        "new file mode 100644\n"
        "--- /dev/null\n"
        "+++ b/pkg/sub/c.py\n"
        "@@ -0,0 +1 @@\n"
        "+z = 3\n"
    )
    assert (created.base_text, created.new_text) == ("", "z = 3\n")
    assert (deleted.base_text, deleted.new_text) == ("# Demo\n", "")
    assert overlay.proposal_diff() == deleted.diff + modified.diff + created.diff
    assert not overlay.exists("README.md")
    assert overlay.exists("pkg/sub/c.py") and overlay.is_dir("pkg/sub")


def test_rename_is_one_change_with_both_paths(ws: Path) -> None:
    overlay = Overlay(ws)
    overlay.rename("pkg/b.py", "pkg/renamed.py")
    overlay.write("pkg/renamed.py", "x = 1\ny = 20\n")
    (change,) = overlay.changes()
    assert (change.kind, change.path, change.old_path) == ("renamed", "pkg/renamed.py", "pkg/b.py")
    assert change.base_text == "x = 1\ny = 2\n"
    assert change.diff.startswith(
        "diff --git a/pkg/b.py b/pkg/renamed.py\nrename from pkg/b.py\nrename to pkg/renamed.py\n"
        "--- a/pkg/b.py\n+++ b/pkg/renamed.py\n"
    )
    assert "-y = 2\n+y = 20\n" in change.diff
    assert not overlay.exists("pkg/b.py")
    with pytest.raises(OverlayError, match="already exists"):
        overlay.rename("pkg/a.py", "pkg/renamed.py")


def test_rename_chain_and_rename_back(ws: Path) -> None:
    overlay = Overlay(ws)
    overlay.rename("pkg/b.py", "one.py")
    overlay.rename("one.py", "two.py")
    (change,) = overlay.changes()
    assert (change.kind, change.old_path, change.path) == ("renamed", "pkg/b.py", "two.py")
    overlay.rename("two.py", "pkg/b.py")
    assert overlay.changes() == []
    overlay.rename("pkg/b.py", "three.py")
    overlay.delete("three.py")
    (change,) = overlay.changes()
    assert (change.kind, change.path) == ("deleted", "pkg/b.py")


def test_edit_back_to_base_is_no_change(ws: Path) -> None:
    overlay = Overlay(ws, {"pkg/b.py": ("buffer\n", 3)})
    overlay.write("pkg/a.py", "something else\n")
    overlay.write("pkg/a.py", "def f():\n    return 1\n")
    overlay.write("pkg/b.py", "other\n")
    overlay.write("pkg/b.py", "buffer\n")
    overlay.create("tmp.py", "x\n")
    overlay.delete("tmp.py")
    assert overlay.changes() == []
    assert overlay.proposal_diff() == ""


def test_refusals_and_directories(ws: Path) -> None:
    overlay = Overlay(ws)
    with pytest.raises(OverlayError, match="already exists"):
        overlay.create("pkg/a.py", "x")
    with pytest.raises(OverlayError, match="does not exist"):
        overlay.delete("missing.py")
    with pytest.raises(OverlayError, match="directory"):
        overlay.write("pkg", "x")
    with pytest.raises(OverlayError, match=r"parent pkg/a\.py is a file"):
        overlay.create("pkg/a.py/inner.py", "x")
    with pytest.raises(PathRefused):
        overlay.read(".env")
    with pytest.raises(PathRefused):
        overlay.write("../outside.py", "x")
    overlay.create("newdir/deep/file.txt", "hi\n")
    overlay.delete("pkg/b.py")
    assert "newdir/" in overlay.listdir(".")
    assert ".env" not in overlay.listdir(".")
    assert overlay.listdir("pkg") == ["__init__.py", "__pycache__/", "a.py"]
    assert overlay.listdir("newdir") == ["deep/"]
    assert overlay.is_dir("newdir/deep") and not overlay.is_dir("newdir/deep/file.txt")


def test_missing_final_newline_is_marked_like_git() -> None:
    diff = unified_diff("f.txt", "f.txt", "a\nb", "a\nc")
    assert diff.endswith("-b\n\\ No newline at end of file\n+c\n\\ No newline at end of file\n")


@pytest.mark.parametrize("inside", ["\x0c", "\x0b", "\x1c", "\x85", "\u2028", "\r"])
def test_a_line_ends_only_at_a_newline_so_git_applies_the_diff(tmp_path: Path, inside: str) -> None:
    # A form feed (page breaks in C and Emacs Lisp sources), U+2028 in a string, a lone CR: `git diff`,
    # `git apply` and the editors' diff parsers end lines at "\n" only; a diff that split lines anywhere
    # else marked a "missing" newline in the middle of the file, and no tool applied it.
    old = f"a = 1\n# page{inside} two\nb = 2\nc = 3\n"
    new = old.replace("b = 2", "b = 20")
    diff = unified_diff("f.txt", "f.txt", old, new)
    assert "No newline" not in diff and diff.count("\n@@") == 1
    assert f" # page{inside} two\n-b = 2\n+b = 20\n" in diff
    (tmp_path / "f.txt").write_bytes(old.encode("utf-8"))
    (tmp_path / "change.diff").write_bytes(diff.encode("utf-8"))
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    done = subprocess.run(
        ["git", "apply", "change.diff"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "f.txt").read_bytes() == new.encode("utf-8")


def test_a_one_line_change_near_the_end_of_a_long_file_is_one_line_of_the_diff() -> None:
    # 270 lines, each handler ending in the same "return nil", "}" and blank line: difflib's default
    # (autojunk) never anchors on such lines in 200 or more, and showed the whole last handler replaced.
    handler = "func h{0}() error {{\n\tv, err := load{0}()\n\tif err != nil {{\n\t\treturn err\n\t}}\n"
    old = "".join(handler.format(i) + "\tuse(v)\n\treturn nil\n}\n\n" for i in range(30))
    new = old.replace("load29()", "fetch29()")
    body = unified_diff("h.go", "h.go", old, new).split("+++ b/h.go\n")[1]
    assert body == (
        "@@ -260,7 +260,7 @@\n"
        " }\n"
        " \n"
        " func h29() error {\n"
        "-\tv, err := load29()\n"
        "+\tv, err := fetch29()\n"
        " \tif err != nil {\n"
        " \t\treturn err\n"
        " \t}\n"
    )


# -- materialize and sync back -------------------------------------------------------------------


def test_materialize_writes_the_overlay_view_as_copies(ws: Path, tmp_path: Path) -> None:
    overlay = Overlay(ws, {"pkg/b.py": ("from buffer\n", 4)})
    overlay.write("pkg/a.py", "edited\n")
    overlay.create("new/c.py", "created\n")
    overlay.delete("README.md")
    dest = tmp_path / "dest"
    result = overlay.materialize(dest)

    assert (dest / "pkg" / "a.py").read_text() == "edited\n"
    assert (dest / "pkg" / "b.py").read_text() == "from buffer\n"
    assert (dest / "new" / "c.py").read_text() == "created\n"
    assert not (dest / "README.md").exists()
    assert (dest / "logo.png").read_bytes() == (ws / "logo.png").read_bytes()
    assert os.access(dest / "run.sh", os.X_OK)
    assert os.readlink(dest / "link.py") == "pkg/a.py"
    # Secrets and caches are left out; heavy folders are left for the sandbox to bind read-only.
    assert not (dest / ".env").exists()
    assert not (dest / "pkg" / "__pycache__").exists()
    assert not (dest / ".git").exists() and not (dest / "node_modules").exists()
    assert result.bind_dirs == (".git", "node_modules")
    assert result.written == 3
    # Copies, never hard links: writing the copy in place leaves the user's file alone.
    assert (dest / "pkg" / "__init__.py").stat().st_ino != (ws / "pkg" / "__init__.py").stat().st_ino
    with open(dest / "run.sh", "a") as f:
        f.write("echo appended\n")
    assert (ws / "run.sh").read_text() == "#!/bin/sh\necho run\n"


def test_materialize_refuses_a_non_empty_directory(ws: Path, tmp_path: Path) -> None:
    dest = tmp_path / "busy"
    dest.mkdir()
    (dest / "x").write_text("x")
    with pytest.raises(OverlayError, match="not empty"):
        Overlay(ws).materialize(dest)


def test_sync_back_folds_command_changes(ws: Path, tmp_path: Path) -> None:
    overlay = Overlay(ws)
    dest = tmp_path / "dest"
    overlay.materialize(dest)
    assert overlay.sync_back_from(dest).changed == ()

    # What a command would do: edit in place, replace a file, create, delete, and leave junk behind.
    (dest / "pkg" / "a.py").write_text("def f():\n    return 42\n")
    tmp = dest / "pkg" / "b.py.tmp"
    tmp.write_text("x = 1\ny = 99\n")
    tmp.replace(dest / "pkg" / "b.py")
    (dest / "pkg" / "new.py").write_text("new = True\n")
    (dest / "README.md").unlink()
    (dest / "pkg" / "mod.cpython-311.pyc").write_bytes(b"\x00\x01")
    (dest / "build").mkdir()
    (dest / "build" / "out.txt").write_text("artefact\n")
    (dest / "debug.log").write_text("log\n")
    (dest / "picture.bin").write_bytes(b"\x00\xff\x00")
    (dest / "logo.png").write_bytes(b"\x89PNG changed \x00")
    (dest / ".env.local").write_text("TOKEN=x\n")

    report = overlay.sync_back_from(dest)
    assert report.changed == ("README.md", "pkg/a.py", "pkg/b.py", "pkg/new.py")
    assert set(report.skipped) == {"logo.png", "picture.bin", ".env.local"}
    assert set(report.ignored) == {"pkg/mod.cpython-311.pyc", "build/out.txt", "debug.log"}
    kinds = {c.path: c.kind for c in overlay.changes()}
    assert kinds == {
        "README.md": "deleted",
        "pkg/a.py": "modified",
        "pkg/b.py": "modified",
        "pkg/new.py": "created",
    }
    assert overlay.read("pkg/a.py") == "def f():\n    return 42\n"
    # Nothing changed since: a second sync finds nothing.
    assert overlay.sync_back_from(dest).changed == ()


def test_moves_by_a_command_are_renames(ws: Path, tmp_path: Path) -> None:
    overlay = Overlay(ws)
    dest = tmp_path / "dest"
    overlay.materialize(dest)
    (dest / "pkg" / "b.py").rename(dest / "pkg" / "moved.py")
    overlay.sync_back_from(dest)
    (change,) = overlay.changes()
    assert (change.kind, change.old_path, change.path) == ("renamed", "pkg/b.py", "pkg/moved.py")
    # Moved again by a later command: still one rename from the original path.
    (dest / "pkg" / "moved.py").rename(dest / "final.py")
    overlay.sync_back_from(dest)
    (change,) = overlay.changes()
    assert (change.kind, change.old_path, change.path) == ("renamed", "pkg/b.py", "final.py")


def test_same_size_rewrite_is_detected(ws: Path, tmp_path: Path) -> None:
    overlay = Overlay(ws)
    dest = tmp_path / "dest"
    overlay.materialize(dest)
    # Same length, written right after materializing: only the mtime/inode can tell.
    (dest / "pkg" / "b.py").write_text("x = 7\ny = 2\n")
    assert overlay.sync_back_from(dest).changed == ("pkg/b.py",)


def test_rewrite_of_an_overlay_written_file_is_detected(ws: Path, tmp_path: Path) -> None:
    overlay = Overlay(ws)
    overlay.write("pkg/b.py", "x = 5\ny = 2\n")
    dest = tmp_path / "dest"
    overlay.materialize(dest)
    key = os.stat(dest / "pkg" / "b.py")
    # In place, same size, and the same timestamps as the overlay's own write: only the content differs.
    with open(dest / "pkg" / "b.py", "r+") as f:
        f.write("x = 6")
    os.utime(dest / "pkg" / "b.py", ns=(key.st_atime_ns, key.st_mtime_ns))
    assert overlay.sync_back_from(dest).changed == ("pkg/b.py",)
    assert overlay.read("pkg/b.py") == "x = 6\ny = 2\n"
    assert overlay.sync_back_from(dest).changed == ()


def test_incremental_materialize_rewrites_only_what_changed(ws: Path, tmp_path: Path) -> None:
    overlay = Overlay(ws)
    dest = tmp_path / "dest"
    first = overlay.materialize(dest)
    assert first.copied > 5
    overlay.write("pkg/a.py", "v2\n")
    overlay.delete("pkg/b.py")
    overlay.create("fresh.py", "fresh\n")
    second = overlay.materialize(dest)
    assert (second.copied, second.written, second.removed) == (0, 2, 1)
    assert (dest / "pkg" / "a.py").read_text() == "v2\n"
    assert (dest / "fresh.py").read_text() == "fresh\n"
    assert not (dest / "pkg" / "b.py").exists()
    # Editing back to base rewrites the base text.
    overlay.write("pkg/a.py", "def f():\n    return 1\n")
    overlay.materialize(dest)
    assert (dest / "pkg" / "a.py").read_text() == "def f():\n    return 1\n"
    assert overlay.sync_back_from(dest).changed == ()


def test_writes_never_follow_links_out_of_the_copy(ws: Path, tmp_path: Path) -> None:
    overlay = Overlay(ws)
    dest = tmp_path / "dest"
    overlay.materialize(dest)
    # A command replaced pkg/ with a link to the real workspace (inside the sandbox it shows the copy).
    shutil.rmtree(dest / "pkg")
    (dest / "pkg").symlink_to(ws / "pkg")
    overlay.write("pkg/a.py", "through the link?\n")
    overlay.delete("pkg/b.py")
    overlay.materialize(dest)
    assert not (dest / "pkg").is_symlink()
    assert (dest / "pkg" / "a.py").read_text() == "through the link?\n"
    # The fixture checks that ws/pkg/a.py and ws/pkg/b.py are untouched.
