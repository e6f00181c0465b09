"""Which paths of a folder tree changed since the last look, from Linux's inotify (through ctypes on libc).

`Overlay.sync_back_from` uses it on the workspace copy a command ran on, so that folding the command's
changes back reads only the paths it touched instead of walking the whole copy (on a tree of the Linux
kernel's size, 78,000 files, a walk costs about 0.7 s a command). bubblewrap 0.8 has no overlay mounts, so
there is no upper directory to read the changes from; but the sandbox binds the copy itself, and inotify
watches are on the folders' inodes, so a write from inside the sandbox's mount namespace is seen like any
other (checked by tests/agent/test_fswatch.py).

A `TreeWatch` holds one inotify instance and one watch per folder (`add`, by the folder's path relative to the
root). `changes()` reads what is queued, without waiting, and turns it into `Changes`: the entries created,
modified, deleted or moved in watched folders (`paths`), the folders among them (`trees`), whose whole
contents the caller must look at again (folders made by a command are not watched yet), and of those the ones
deleted or moved away (`gone`), which took the files the caller knew under them; and the folders whose
attributes changed (`modes`: a `chmod 000 sub` that writes nothing is no other event, yet no later look
into `sub` works; the files' own attribute changes, `touch`, are left out). A folder moved from one
watched place to another keeps its watch, which then reports under the new path.

inotify can lose events: its queue holds `/proc/sys/fs/inotify/max_queued_events` (16,384 here), and a folder
cannot be watched past `max_user_watches` or after `max_user_instances` instances. A lost event or the watched
tree itself gone (`IN_Q_OVERFLOW`, the root moved, deleted or unmounted, a malformed read) makes `changes()`
return None: the caller then walks the whole tree as it would without a watch, and watches what it finds
(`add` again returns the same watch for a folder already watched). A failure to add a watch raises
`WatchUnavailable`, which tells the caller to stop watching that tree.

What inotify does not report: writes through a shared memory mapping (no `IN_MODIFY`; the file's
`IN_CLOSE_WRITE` comes when its last descriptor and mapping go, at the latest when the sandbox's processes
end, which is before the fold-back: a process that writes through a mapping and exits without `munmap` or
`close` is folded back, tests/agent/test_fswatch.py checks it), and changes in folders that are not watched
(the caller does not fold those back: tool folders, caches). Linux only; elsewhere `TreeWatch` raises
`WatchUnavailable`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import logging
import os
import struct
import weakref
from dataclasses import dataclass, field

__all__ = ["Changes", "TreeWatch", "WatchUnavailable"]

log = logging.getLogger(__name__)

# <sys/inotify.h>
_IN_MODIFY = 0x00000002
_IN_ATTRIB = 0x00000004
_IN_CLOSE_WRITE = 0x00000008
_IN_MOVED_FROM = 0x00000040
_IN_MOVED_TO = 0x00000080
_IN_CREATE = 0x00000100
_IN_DELETE = 0x00000200
_IN_DELETE_SELF = 0x00000400
_IN_MOVE_SELF = 0x00000800
_IN_UNMOUNT = 0x00002000
_IN_Q_OVERFLOW = 0x00004000
_IN_IGNORED = 0x00008000
_IN_ONLYDIR = 0x01000000
_IN_DONT_FOLLOW = 0x02000000
_IN_ISDIR = 0x40000000

_MASK = (
    _IN_MODIFY
    | _IN_ATTRIB
    | _IN_CLOSE_WRITE
    | _IN_MOVED_FROM
    | _IN_MOVED_TO
    | _IN_CREATE
    | _IN_DELETE
    | _IN_DELETE_SELF
    | _IN_MOVE_SELF
    | _IN_ONLYDIR
    | _IN_DONT_FOLLOW
)
"""Content writes, entries appearing and going, and attribute changes (`chmod`, `touch`): those are only
kept for folders (`Changes.modes`); the kernel cannot be told to leave out the files' own."""

_ENTRY_CHANGES = _IN_MODIFY | _IN_CLOSE_WRITE | _IN_MOVED_FROM | _IN_MOVED_TO | _IN_CREATE | _IN_DELETE
_TREE_CHANGES = _IN_MOVED_FROM | _IN_MOVED_TO | _IN_CREATE | _IN_DELETE
_HEADER = struct.Struct("iIII")
_READ_SIZE = 1 << 16


class WatchUnavailable(OSError):
    """inotify cannot watch this tree (not Linux, no instance or watch left): walk it instead."""


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c") or "libc.so.6"
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        libc.inotify_init1.argtypes = [ctypes.c_int]
        libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        libc.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
    except (OSError, AttributeError):
        return None
    return libc


_LIBC: ctypes.CDLL | None = None
_LOADED = False


def _load() -> ctypes.CDLL | None:
    global _LIBC, _LOADED
    if not _LOADED:
        _LIBC, _LOADED = _libc(), True
    return _LIBC


@dataclass
class Changes:
    """What `TreeWatch.changes` read: paths relative to the root, POSIX style."""

    paths: set[str] = field(default_factory=set)
    """Entries created, written, deleted or moved away or in (files, links and folders)."""
    trees: set[str] = field(default_factory=set)
    """The folders among them: look at everything under each again."""
    gone: set[str] = field(default_factory=set)
    """The folders deleted or moved away among `trees`: what was known under them is gone from there."""
    modes: set[str] = field(default_factory=set)
    """Folders whose attributes changed (`chmod 000 sub`, `touch sub`; "" for the root): their contents did
    not, but the caller may have to check that it can still read them."""


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


class TreeWatch:
    """inotify watches on the folders of one tree, and what changed in them since the last `changes()`."""

    def __init__(self, root: str) -> None:
        """Raises `WatchUnavailable` when no inotify instance can be had."""
        libc = _load()
        if libc is None:
            raise WatchUnavailable(errno.ENOSYS, "inotify is not available")
        fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            code = ctypes.get_errno()
            raise WatchUnavailable(code, f"inotify_init1: {os.strerror(code)}")
        self._libc = libc
        self._fd = fd
        self._root = root
        self._paths: dict[int, str] = {}
        """watch descriptor -> folder path relative to the root ("" for the root)."""
        self._closer = weakref.finalize(self, _close, fd)

    @property
    def watches(self) -> int:
        """How many folders are watched."""
        return len(self._paths)

    def add(self, rel: str) -> None:
        """Watch the folder at `rel` ("" for the root); raises `WatchUnavailable` when it cannot be
        (`max_user_watches` reached, or the folder gone or not a folder: the caller's view is stale)."""
        path = os.path.join(self._root, rel) if rel else self._root
        wd = self._libc.inotify_add_watch(self._fd, os.fsencode(path), _MASK)
        if wd < 0:
            code = ctypes.get_errno()
            raise WatchUnavailable(code, f"inotify_add_watch {path}: {os.strerror(code)}")
        self._paths[wd] = rel

    def changes(self) -> Changes | None:
        """What changed since the last call (or since the watches were added); None when events may have
        been lost, and the tree must be walked."""
        data = bytearray()
        while True:
            try:
                chunk = os.read(self._fd, _READ_SIZE)
            except BlockingIOError:
                break
            except OSError as exc:
                log.warning("cannot read the inotify events of %s: %s", self._root, exc)
                return None
            if not chunk:
                break
            data += chunk
        found = Changes()
        moved_dirs: dict[int, str] = {}
        """cookie -> old path of a folder moved away, until its arrival (if in a watched folder) is read."""
        offset = 0
        while offset < len(data):
            if offset + _HEADER.size > len(data):
                log.warning("a truncated inotify event on %s", self._root)
                return None
            wd, mask, cookie, length = _HEADER.unpack_from(data, offset)
            raw = bytes(data[offset + _HEADER.size : offset + _HEADER.size + length]).rstrip(b"\0")
            offset += _HEADER.size + length
            if mask & _IN_Q_OVERFLOW:
                log.info("inotify's queue overflowed on %s: walking it", self._root)
                return None
            parent = self._paths.get(wd)
            if mask & _IN_IGNORED:
                self._paths.pop(wd, None)
                continue
            if parent is None:
                continue  # a watch removed since (its folder gone): its entries are under a tree below
            if mask & (_IN_DELETE_SELF | _IN_MOVE_SELF | _IN_UNMOUNT):
                if parent == "":
                    log.info("the watched tree %s was moved, deleted or unmounted: walking it", self._root)
                    return None
                continue  # seen as an entry of its parent folder
            if mask & _IN_ATTRIB:
                if mask & _IN_ISDIR and (raw or parent == ""):  # a folder's own: its parent's, the root's
                    found.modes.add(f"{parent}/{os.fsdecode(raw)}" if parent and raw else os.fsdecode(raw))
                continue
            if not raw or not mask & _ENTRY_CHANGES:
                continue
            name = os.fsdecode(raw)
            rel = f"{parent}/{name}" if parent else name
            found.paths.add(rel)
            if mask & _IN_ISDIR and mask & _TREE_CHANGES:
                found.trees.add(rel)
                if mask & (_IN_DELETE | _IN_MOVED_FROM):
                    found.gone.add(rel)
                if mask & _IN_MOVED_FROM:
                    moved_dirs[cookie] = rel
                elif mask & _IN_MOVED_TO and cookie in moved_dirs:
                    self._moved(moved_dirs.pop(cookie), rel)
        for old in moved_dirs.values():
            # Moved somewhere not watched (a tool folder, out of the tree): its watches would report under
            # its old path, which the caller looks at again, so nothing is lost, but they are of no use.
            self._forget(old)
        return found

    def _moved(self, old: str, new: str) -> None:
        """A folder moved from `old` to `new`: its watches (and its subfolders') now report under `new`."""
        prefix = old + "/"
        for wd, rel in list(self._paths.items()):
            if rel == old:
                self._paths[wd] = new
            elif rel.startswith(prefix):
                self._paths[wd] = new + rel[len(old) :]

    def _forget(self, old: str) -> None:
        prefix = old + "/"
        for wd, rel in list(self._paths.items()):
            if rel == old or rel.startswith(prefix):
                self._libc.inotify_rm_watch(self._fd, wd)
                del self._paths[wd]

    def close(self) -> None:
        """Remove every watch (closing the instance does); safe to call twice."""
        self._closer()
        self._paths.clear()
