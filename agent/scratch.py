"""Scratch folders agentls makes for commands, and their removal even when a command locked them.

A command that runs in a folder agentls made (the bash session's copy of the workspace and its /tmp, the
verification's copy, the package folder and the folders pip, the interpreter and toolchain probes and the
docs lookup run in, a batch task's checkout) runs as the user, and can take the user's own permissions away
inside it: `chmod 000 sub`, or `chmod 555 .` on a folder holding files. `shutil.rmtree` then fails there,
and with its errors ignored the folder stayed on disk after every such run. `remove_tree` removes what it
can, gives the owner back read, write and search on each folder left in the tree (only folders inside it: a
symbolic link there is never followed, so what it points at keeps its mode), and tries again. What still
cannot be removed (a folder of another owner, a parent folder that is not writable: the parent is no part
of the tree) is logged as a warning with its path, never raised into the run. `scratch_folder` is a
`tempfile.TemporaryDirectory` that removes itself this way: the standard one gives permissions back by
following links (on Python 3.11.7 a link to a file outside, in a read-only folder, left that file at mode
700) and raises when it still cannot remove the folder. Every temporary folder `agent` and `server` make
and remove goes through one of the two (the network gateway's socket folder and the git index of
`agentls commit` too, though no command runs there); `indexing`'s own (a model's staging folder, the
export of `agentls index --to URI`) do not, since no command runs in them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["remove_tree", "reopen_folder", "scratch_folder"]

log = logging.getLogger(__name__)

_OWNER_RWX = stat.S_IRWXU
_OPEN_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def remove_tree(path: str | os.PathLike[str], what: str = "scratch folder") -> bool:
    """Remove the folder `path` (a file or link there is unlinked, never followed), giving its owner back
    the permissions a command took inside it when a first try fails. Whether nothing is left; what is left
    is logged as a warning naming `what` and the path."""
    path = os.path.abspath(path)
    try:
        if not stat.S_ISDIR(os.lstat(path).st_mode):
            os.unlink(path)
            return True
    except FileNotFoundError:
        return True
    except OSError as exc:
        log.warning("could not remove the %s %s: %s", what, path, exc)
        return False
    shutil.rmtree(path, ignore_errors=True)
    if not os.path.lexists(path):
        return True
    with contextlib.suppress(OSError):  # the last try says what stays
        _give_owner_rwx(path)
    try:
        shutil.rmtree(path)
    except OSError as exc:
        shutil.rmtree(path, ignore_errors=True)  # what else can go, past the first failure
        if os.path.lexists(path):
            log.warning("could not remove the %s %s (left on disk): %s", what, path, exc)
            return False
    log.info("removed the %s %s after giving its owner back the permissions a command took", what, path)
    return True


@contextlib.contextmanager
def scratch_folder(prefix: str, dir: str | os.PathLike[str] | None = None) -> Iterator[Path]:
    """A new empty folder (`tempfile.mkdtemp`) for the block, removed after it with `remove_tree`."""
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=dir))
    try:
        yield folder
    finally:
        remove_tree(folder)


def reopen_folder(root: str | os.PathLike[str], rel: str = "") -> int | None:
    """Give the owner back read, write and search on the folder `rel` (a POSIX path relative to `root`;
    "" for `root` itself) when it lacks any of them, reaching it from `root` folder by folder without
    following a symbolic link (a link on the way raises, one at `rel` is left alone). The mode it had
    when it was changed, None when nothing was (it had them, or it is no folder). Raises OSError when it
    cannot (not its owner, a folder on the way that cannot be searched)."""
    fd, name = _open_parent(os.fspath(root), rel)
    try:
        return _open_up(name, fd)
    finally:
        os.close(fd)


def _open_parent(root: str, rel: str) -> tuple[int, str]:
    """An open descriptor of the folder holding `rel` under `root` (`root`'s own parent for ""), opened
    below `root` without following links, and the name of `rel` in it."""
    if not rel:
        parent, name = os.path.split(os.path.abspath(root))
        return os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC), name
    *folders, name = rel.split("/")
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for folder in folders:
            child = os.open(folder, _OPEN_FOLDER, dir_fd=fd)
            os.close(fd)
            fd = child
    except OSError:
        os.close(fd)
        raise
    return fd, name


def _give_owner_rwx(root: str) -> None:
    """Give the owner read, write and search on `root` and every folder under it that lacks them, going
    through folders by descriptor and never through a symbolic link."""
    parent_fd, name = _open_parent(root, "")
    try:
        _open_up(name, parent_fd)
        top = os.open(name, _OPEN_FOLDER, dir_fd=parent_fd)
    finally:
        os.close(parent_fd)
    # Depth first, one open descriptor per level (as shutil.rmtree's own walk).
    try:
        stack = [(top, _folders_in(top))]
    except OSError:
        os.close(top)
        raise
    try:
        while stack:
            fd, folders = stack[-1]
            folder = next(folders, None)
            if folder is None:
                os.close(fd)
                stack.pop()
                continue
            try:
                _open_up(folder, fd)
                child = os.open(folder, _OPEN_FOLDER, dir_fd=fd)
            except OSError:
                continue  # the second rmtree names what stays
            try:
                stack.append((child, _folders_in(child)))
            except OSError:
                os.close(child)
    finally:
        for fd, _ in stack:
            os.close(fd)


def _folders_in(fd: int) -> Iterator[str]:
    """The names of the folders (not links to folders) in the open folder `fd`."""
    with os.scandir(fd) as entries:
        names = [entry.name for entry in entries if entry.is_dir(follow_symlinks=False)]
    return iter(names)


def _open_up(name: str, dir_fd: int) -> int | None:
    """Give the owner rwx on the folder `name` in `dir_fd` if it lacks them; a link is left alone. The
    mode it had when it was changed, else None."""
    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    if not stat.S_ISDIR(st.st_mode) or st.st_mode & _OWNER_RWX == _OWNER_RWX:
        return None
    mode = stat.S_IMODE(st.st_mode) | _OWNER_RWX
    try:
        # glibc 2.32+ changes the folder itself and refuses a link (no race with a swap for a link).
        os.chmod(name, mode, dir_fd=dir_fd, follow_symlinks=False)
    except (NotImplementedError, ValueError):
        # No AT_SYMLINK_NOFOLLOW here, or `name` became a link since the stat: only a folder is changed.
        if not stat.S_ISDIR(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
            return None
        os.chmod(name, mode, dir_fd=dir_fd)
    return stat.S_IMODE(st.st_mode)
