"""A copy-on-write view of the workspace: every edit the agent makes lands here, never on disk.

The *base* is what the run started from: the files on disk plus the editor's unsaved buffers (path ->
(text, version)) captured when the overlay is created. A file's base text is snapshotted the first time it
is read, written or compared, so later changes on disk do not move the base under the agent's feet. The
proposal is the overlay's difference from that base (`changes()`, `proposal_diff()`).

The overlay holds text files only. Binary and non-UTF-8 files can be read by commands in the sandbox, but
the overlay refuses to edit them and ignores what commands do to them (`SyncReport.skipped` says so).

Commands run on a *materialized* copy (`materialize(dest)`), and what they change there is folded back
(`sync_back_from(dest)`), so edits made with `sed -i` or a code formatter count like editor edits.

Why the materialized copy holds copies, not hard links: a hard link shares the inode with the user's file, so
an in-place write inside the sandbox (`>>`, `open(path, "r+")`, `truncate`) would change the user's file, and
bubblewrap 0.8 has no overlay mounts (`--overlay` arrived in 0.9). Files are copied with `copy_file_range`,
which the kernel turns into a reflink on filesystems that have them (btrfs, XFS) and an in-kernel copy
elsewhere. Heavy directories (`.git`, `node_modules`, virtualenvs) are not copied at all: they are listed in
`MaterializedWorkspace.bind_dirs` for the sandbox to bind read-only from the real workspace. Caches
(`__pycache__`, `.mypy_cache`, ...) and secret files are left out. A folder of those names that a command
creates in the copy (`npm install` writing `node_modules`, `python -m venv .venv`, `git init`) stays in
the copy for later commands but is never folded back (`SyncReport.tool_dirs`): a proposal never adds one.
Nor is a file a command leaves larger than `MAX_FOLDED_BYTES` (a runaway test's log): it is not even read
(`SyncReport.too_large`).

Symbolic links are not files of the overlay, and a proposal (like an LSP `WorkspaceEdit`) has no way to
make one: the workspace's links are recreated as links in the copy, and a link a command creates,
retargets or deletes is reported (`SyncReport.symlinks`, and `Overlay.symlink_changes` for the whole
run), never proposed; the report says whether its target leaves the workspace, and only a link that stays
inside comes with the command that would make it.

Change detection after a command compares each copied file's (size, mtime, inode) with what was written;
copies keep their source's mtime (as `cp -p` does), so a write by a command always moves it, even on
filesystems with coarse timestamps, and only files whose stat changed are read. Files the overlay wrote
get the current time (so `.pyc` caches and `make` see them as new) and, because a command could rewrite
one within the same timestamp tick, are always read and compared; there are only as many as the agent
edited. Which files to compare: the first fold-back on a copy walks all of it and puts an inotify watch on
each folder it walks (`agent.fswatch`); later ones look only at the entries inotify saw created, written,
deleted or moved, and walk only the folders among them (a folder a command made was not watched yet) and
account for the files known under a folder deleted or moved away. On a tree of the kernel's size that is
a few milliseconds a command instead of a 0.7 s walk. When events may be lost (inotify's queue
overflowed) the fold-back walks the whole copy again, as when no watch can be had (no inotify instance
or watch left: `fs.inotify.max_user_instances`, `max_user_watches`) or `Overlay(watch_copies=False)`;
a log line says so. `forget` removes the watches.

A folder of the copy the fold-back cannot list or search (a command's `chmod 000 sub` or `chmod a-x sub`:
agentls runs as the user, so the permission bits apply to it) gets its owner's rwx back, then is read: the
copy is agentls' own, a folder's mode no part of the proposal, and left so the folder would hide what the
command wrote there and stop every later command and update in it. `SyncReport.reopened` names it (`./` for
the copy's top folder). The fold-back sees such a folder when a look into it fails, and, with a watch, from
inotify's IN_ATTRIB on folders (`Changes.modes`: a command that only locks a folder writes nothing);
`agent.scratch.reopen_folder` reaches it without following links. A read-only folder (`chmod 555 sub`) can
be read and is left so. A file it cannot read (`chmod 000 f.py`: a file's mode is the proposal's), or a
folder whose permissions it cannot give back (not the user's), is not taken as deleted: what was known under
it stays as it was, `SyncReport.unreadable` and a warning name it, and until it can be read every fold-back
walks the whole copy (a `chmod` of a file that makes it readable again is no event the watch keeps). The
next `materialize` gives the copy's top folder its owner's rwx back too, without which no command could
start in it.

The other way round, an update of the copy (`materialize` again) can fail to write or remove a file the
overlay changed (an earlier command's `chmod 555 sub`, or a full disk), and so can the first copy when it
writes the overlay's files (a full /dev/shm): each file is tried on its own, the rest are written, a warning
is logged and `MaterializedWorkspace.unwritten` names the file (`unwritten_note()` with the reason). The
command then sees the copy's older state of it, or none (a write that fails midway removes what it wrote, as
a failed copy of a workspace file does), so the next fold-back leaves that file as the overlay has it,
whatever the command did to it, and the next update tries again. Nothing is raised: the caller decides (the
bash tool names the files in its result, `agent.verify` checks nothing on such a copy and says why).

A workspace file agentls cannot read (mode 000 of another owner, an I/O error) is a base it cannot know: the
first copy leaves it out and names it (`MaterializedWorkspace.uncopied`, with the folders it cannot list, and
a copy that failed for lack of room), `read`, `write`, `create` and `delete` refuse it with an
`OverlayError` that says why (as `listdir` does for a folder it cannot list), and what a command writes at
its path is not kept (`SyncReport.not_proposed`): nothing is ever proposed for it. Until it can be read:
unlike a base, which is snapshotted once, an unreadable one is tried again whenever it is needed, and each
update of the copy (`materialize` again) tries once more to copy what the first copy could not read
(`_Manifest.retry`: one look at each such file or folder, no walk; `MaterializedWorkspace.recopied` names
what it copied), so a file the user makes readable is shown, edited, seen by commands and proposed from
then on; and what commands wrote in a folder it copies so (not kept while the folder could not be read) is
looked at by the next fold-back like a file a command just wrote (`_Manifest.recheck`). A readable
workspace file the first copy left out (no room, or a folder it could not make) has a base, but the copy
never had it: what a command writes there (an `>>` adds to nothing) or deletes is not the base's change, so
it is not kept either (`SyncReport.not_copied`), until the overlay writes its own version of the file into
the copy.

The overlay is not thread-safe: one agent run drives it from one thread.
"""

from __future__ import annotations

import bisect
import errno
import logging
import os
import posixpath
import shlex
import shutil
import stat
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar

import pathspec

from agent.fswatch import TreeWatch, WatchUnavailable
from agent.hunks import split_lines, unified_hunks
from agent.paths import is_secret_path, quote_path, resolve_in_workspace
from agent.scratch import reopen_folder
from indexing.policy import SANDBOX_BOUND_DIRS, SANDBOX_SKIPPED_DIRS

__all__ = [
    "DEFAULT_BIND_DIRS",
    "DEFAULT_SKIP_DIRS",
    "MAX_FOLDED_BYTES",
    "BinaryFileError",
    "ChangeKind",
    "FileChange",
    "MaterializedWorkspace",
    "Overlay",
    "OverlayError",
    "SymlinkChange",
    "SyncReport",
    "unified_diff",
]

log = logging.getLogger(__name__)

ChangeKind = Literal["modified", "created", "deleted", "renamed"]

DEFAULT_BIND_DIRS: frozenset[str] = SANDBOX_BOUND_DIRS
"""Directory names that are not copied into the sandbox but bound read-only from the real workspace."""

DEFAULT_SKIP_DIRS: frozenset[str] = SANDBOX_SKIPPED_DIRS
"""Directory names left out of the sandbox entirely (caches that tools rebuild)."""

MAX_FOLDED_BYTES = 10 * 1024 * 1024
"""Files a command leaves larger than this are not folded back: no source file is that large, and reading a
runaway log (up to `agent.sandbox.max_file_mb` each) would hold it in agentls' memory and the proposal."""

# Files that commands leave behind and that never belong in a proposal, on top of the root .gitignore.
_BUILTIN_IGNORES = (
    "*.pyc",
    "*.pyo",
    "*.egg-info/",
    ".coverage",
    ".coverage.*",
    "*.orig",
    "*.rej",
)


_NS = 1_000_000_000
_READ_SEARCH = stat.S_IRUSR | stat.S_IXUSR
_T = TypeVar("_T")


class OverlayError(Exception):
    """An operation the overlay refuses; the message is written for the model."""


class BinaryFileError(OverlayError):
    """The file is binary or not UTF-8, so the overlay will not edit it."""


@dataclass(frozen=True)
class FileChange:
    """One file's difference from the base."""

    path: str
    """Workspace-relative POSIX path (the new path for a rename)."""
    kind: ChangeKind
    old_path: str | None
    """The original path of a renamed file; None otherwise."""
    base_text: str
    """Text in the base ("" for a created file)."""
    new_text: str
    """Text in the overlay ("" for a deleted file)."""
    base_version: int | None
    """Editor buffer version the base text came from; None when it came from disk."""
    diff: str
    """Git-style unified diff of this file (a/ and b/ headers)."""


@dataclass(frozen=True)
class MaterializedWorkspace:
    """Where `Overlay.materialize` wrote the workspace view, and what it left for the sandbox to bind."""

    dest: Path
    bind_dirs: tuple[str, ...]
    """Workspace-relative directories not copied; bind them read-only from the real workspace."""
    copied: int
    """Files copied from disk (0 on an incremental update)."""
    written: int
    """Files written from the overlay or from unsaved buffers."""
    removed: int
    """Files removed because the overlay deleted them."""
    seconds: float
    allocated: int | None = None
    """Bytes the new copy takes (its files', links' and folders' allocated blocks, as `du` and the
    sandbox's space guard count them); None on an incremental update."""
    unwritten: tuple[str, ...] = ()
    """Paths the copy could not be brought to the overlay's state at: an update could not write or remove
    them (a command left their folder unwritable, `chmod 555 sub`), or the first copy could not write the
    overlay's version (a full disk). The copy holds their older state or none (a write that failed midway
    removes what it wrote), the next command sees that, and its fold-back
    leaves the overlay's version of them as it is. Tried again at the next update."""
    unwritten_errors: tuple[str, ...] = ()
    """Why each path of `unwritten` failed, in the same order: the error's text ("Permission denied",
    "No space left on device")."""

    uncopied: tuple[str, ...] = ()
    """Workspace files (and folders, `sub/`) the first copy could not copy from the workspace: agentls
    cannot read them (mode 000 of another owner, an I/O error: `Overlay.read` refuses them too), or the
    copy had no room. The copy lacks them (a folder is there, empty), so commands do not see them. Empty on
    an update, which copies nothing from the workspace."""
    uncopied_errors: tuple[str, ...] = ()
    """Why each path of `uncopied` failed, in the same order."""
    recopied: tuple[str, ...] = ()
    """Workspace files and folders (`sub/`) an earlier copy could not read that this update copied: agentls
    can read them now (the user changed their mode). Commands see them from now on."""

    def unwritten_note(self) -> str:
        """`sub/new.py (Permission denied), big.py (No space left on device)`, or "" when all was written."""
        return _with_reasons(self.unwritten, self.unwritten_errors)

    def uncopied_note(self, only: Collection[str] | None = None) -> str:
        """`data.py (Permission denied), closed/ (Permission denied)`, or "" when all was copied; `only`:
        of those paths of `uncopied` alone."""
        if only is None:
            return _with_reasons(self.uncopied, self.uncopied_errors)
        reasons = dict(zip(self.uncopied, self.uncopied_errors, strict=False))
        named = [rel for rel in self.uncopied if rel in only]
        return _with_reasons(named, (reasons[rel] for rel in named))


def _with_reasons(paths: Iterable[str], reasons: Iterable[str]) -> str:
    return ", ".join(f"{rel} ({why})" for rel, why in zip(paths, reasons, strict=False))


def _each_with_reason(reasons: Mapping[str, str]) -> tuple[str, ...]:
    """`("big.py (No space left on device)", ...)`, sorted by path."""
    return tuple(f"{rel} ({why})" for rel, why in sorted(reasons.items()))


@dataclass(frozen=True)
class SymlinkChange:
    """A symbolic link a command created, retargeted or deleted in the workspace copy: never proposed."""

    path: str
    """Workspace-relative POSIX path of the link."""
    target: str | None
    """What it points to now (as written, relative or absolute); None when deleted."""
    old_target: str | None
    """What it pointed to when the run began; None when created."""
    inside: bool
    """Its target (the old one for a deletion) stays inside the workspace, read without following links."""

    @property
    def note(self) -> str:
        """One line for the model, the transcript and the run's summary."""
        path = quote_path(self.path)
        if self.target is None:
            old = quote_path(self.old_target or "")
            return (
                f"a command deleted the symlink {path} (-> {old}); symlinks are not proposed, so the "
                f"proposal leaves it: delete it yourself{_suggest(['rm', self.path])}"
            )
        target = quote_path(self.target)
        what = f"created the symlink {path} -> {target}"
        if self.old_target is not None:
            what = f"changed the symlink {path} to -> {target} (was -> {quote_path(self.old_target)})"
        if not self.inside:
            return f"a command {what}; it points outside the workspace, and such a link is never proposed"
        return (
            f"a command {what}; symlinks are not proposed: "
            f"{'change' if self.old_target is not None else 'create'} it yourself"
            f"{_suggest(['ln', '-sfn', self.target, self.path])}"
        )


def _suggest(argv: list[str]) -> str:
    """`` (`ln -s a b`)`` to quote in a note, or nothing when a name has characters a line should not."""
    if any(quote_path(arg) != arg for arg in argv):
        return ""
    return f" (`{shlex.join(argv)}`)"


def _link_inside(rel: str, target: str, root: str) -> bool:
    """Whether a link at `rel` with `target` points inside the workspace (at `root` in the sandbox too)."""
    if posixpath.isabs(target):
        resolved = posixpath.normpath(target)
        return resolved == root or resolved.startswith(root.rstrip("/") + "/")
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(rel), target))
    return resolved != ".." and not resolved.startswith("../") and not posixpath.isabs(resolved)


@dataclass(frozen=True)
class SyncReport:
    """What `Overlay.sync_back_from` folded into the overlay."""

    changed: tuple[str, ...]
    """Paths whose new state (modified, created or deleted) now is the overlay's."""
    skipped: tuple[str, ...] = ()
    """Paths changed by the command but not kept: binary, non-UTF-8 or secret files."""
    ignored: tuple[str, ...] = ()
    """Paths changed by the command that match .gitignore or build-artefact patterns (not kept)."""
    tool_dirs: tuple[str, ...] = ()
    """Dependency and tool folders (`node_modules`, a virtualenv, `.git`) the command created: they stay in
    the materialized copy for later commands, their files are not kept."""
    too_large: tuple[str, ...] = ()
    """Paths the command left larger than `MAX_FOLDED_BYTES`: not read, not kept."""
    symlinks: tuple[SymlinkChange, ...] = ()
    """Symbolic links the command created, retargeted or deleted: reported, not kept."""
    unreadable: tuple[str, ...] = ()
    """Folders (`sub/`) and files the command left unreadable (`chmod 000 f.py`; a folder only when its
    owner's permissions cannot be given back, see `reopened`): what was known in them is left as it was,
    never read as deleted; looked at again after the next command."""
    reopened: tuple[str, ...] = ()
    """Folders (`sub/`, `./` for the copy's top folder) the command left without their owner's read or
    search permission (`chmod 000 sub`, `chmod a-x sub`): a folder's mode is no part of the proposal, and
    no later command or update could look into it, so the fold-back gave the owner rwx back on the copy's
    folder, then read it."""
    not_proposed: tuple[str, ...] = ()
    """Paths the command wrote whose workspace file agentls cannot read (`data.py (Permission denied)`,
    with why): with no base to compare with, their change is not kept, and nothing is proposed for them."""
    not_copied: tuple[str, ...] = ()
    """Paths the command wrote (or deleted) whose workspace file the first copy could not copy though
    agentls can read it (`big.py (No space left on device)`, with why): the command changed something else
    than the workspace's file (an `>>` would add to nothing), so its change is not kept either."""


@dataclass
class _Manifest:
    """What the overlay last left in one materialized directory."""

    files: dict[str, tuple[int, int, int]]
    """rel -> (size, mtime_ns, inode) as written."""
    bind_dirs: tuple[str, ...]
    dirty: set[str] = field(default_factory=set)
    """Paths the overlay changed since the directory was last brought up to date."""
    written: set[str] = field(default_factory=set)
    """Paths the overlay wrote itself (fresh mtimes): always compared by content after a command."""
    linked: set[str] = field(default_factory=set)
    """Files with more than one name in the copy (a command's `ln`): a write through one name is an event
    of that name only, so with a watch each of them is looked at after every command."""
    tool_dirs: set[str] = field(default_factory=set)
    """Bound-folder names (`node_modules`, ...) that commands created in the copy: never folded back."""
    links: dict[str, str] = field(default_factory=dict)
    """rel -> target of the symbolic links in the copy, as last seen."""
    watch: TreeWatch | None = None
    """inotify watches on the copy's folders, from its first fold-back on."""
    watch_failed: bool = False
    """The copy could not be watched (no inotify instance or watch left): every fold-back walks it."""
    unreadable: set[str] = field(default_factory=set)
    """Folders and files the last fold-back could not read: the next one walks the whole copy, since a
    `chmod` that makes them readable again is no inotify event."""
    unwritten: set[str] = field(default_factory=set)
    """Paths the last update of the copy could not write or remove (still in `dirty`): the copy's state of
    them is older than the overlay's, so the fold-back never takes it for the command's change."""
    uncopied: dict[str, str] = field(default_factory=dict)
    """Workspace files the first copy could not copy (rel -> why, `MaterializedWorkspace.uncopied`): what a
    command writes there is not compared with the workspace's file it never had (`not_copied`)."""
    uncopied_dirs: dict[str, str] = field(default_factory=dict)
    """Likewise the folders it could not list or make (rel, "" for the root -> why): their files too."""
    retry: set[str] = field(default_factory=set)
    """Those of them (`sub/` for a folder, `./` the root) that failed for another reason than a lack of room
    (agentls could not read them): each update of the copy tries them again (`Overlay._copy_again`)."""
    recheck: set[str] = field(default_factory=set)
    """Files a command left in a folder of `retry` that `_copy_again` has copied since: not kept while the
    folder could not be read, they are looked at by the next fold-back like a file a command just wrote."""

    ordered: list[str] | None = None
    """The paths of `files`, sorted, to find those under a folder (made when first needed)."""

    def put(self, rel: str, key: tuple[int, int, int]) -> None:
        """Record a file's stat as written or found."""
        if self.ordered is not None and rel not in self.files:
            bisect.insort(self.ordered, rel)
        self.files[rel] = key

    def drop(self, rel: str) -> None:
        """Forget a file gone from the copy."""
        if self.files.pop(rel, None) is not None and self.ordered is not None:
            index = bisect.bisect_left(self.ordered, rel)
            if index < len(self.ordered) and self.ordered[index] == rel:
                del self.ordered[index]

    def files_under(self, folder: str) -> list[str]:
        """The files known under `folder`, at any depth."""
        if self.ordered is None:
            self.ordered = sorted(self.files)
        # Paths under "a" sort from "a/" up to "a0" ('0' follows '/').
        start = bisect.bisect_left(self.ordered, folder + "/")
        return self.ordered[start : bisect.bisect_left(self.ordered, folder + "0", start)]

    def note_uncopied(self, uncopied: Mapping[str, str], retry: Collection[str]) -> None:
        """Record what a copy from the workspace could not take (`_Copying.uncopied`, `_Copying.retry`)."""
        for rel, why in uncopied.items():
            if rel.endswith("/"):
                self.uncopied_dirs["" if rel == "./" else rel[:-1]] = why
            else:
                self.uncopied[rel] = why
        self.retry |= set(retry)

    def not_copied(self, rel: str) -> str:
        """Why the first copy lacks the workspace's `rel` (`uncopied`, or a folder above it in
        `uncopied_dirs`), "" when it had it or the overlay has written its own version there since."""
        if rel in self.written:
            return ""
        why = self.uncopied.get(rel)
        if why is None and self.uncopied_dirs:
            folder = rel
            while why is None and folder:
                folder = posixpath.dirname(folder)
                why = self.uncopied_dirs.get(folder)
        return why or ""

    def stop_watching(self) -> None:
        """Remove the copy's watches (it is forgotten, or cannot be watched)."""
        if self.watch is not None:
            self.watch.close()
            self.watch = None


@dataclass
class _Copying:
    """One copy of workspace files and folders into a materialized directory, and what it did."""

    dest: str
    dest_dev: int
    overlaid: set[str]
    """Paths the overlay writes itself (its changes, the editor's unsaved buffers): not copied from disk."""
    files: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    bind_dirs: list[str] = field(default_factory=list)
    folders: set[str] = field(default_factory=set)
    uncopied: dict[str, str] = field(default_factory=dict)
    """rel (`sub/` for a folder, `./` the root) -> why, for what could not be copied from the workspace."""
    retry: set[str] = field(default_factory=set)
    """Those of `uncopied` that failed for another reason than a lack of room (agentls cannot read them)."""
    copied: int = 0
    allocated: int = 0

    def failed(self, rel: str, exc: OSError) -> None:
        self.uncopied[rel] = exc.strerror or str(exc)
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            self.retry.add(rel)


def _under(rel: str, roots: set[str]) -> bool:
    """Whether a folder in `roots` holds `rel` (at any depth)."""
    cut = rel.find("/")
    while cut != -1:
        if rel[:cut] in roots:
            return True
        cut = rel.find("/", cut + 1)
    return False


class _Scan:
    """What one fold-back finds in a materialized directory, in the part it looks at: all of it (`walk("")`)
    or the paths a watch saw change and the folders under those (`look_at`). A folder is looked into as
    the whole walk would: never through a link, never into a bound, cache or tool folder (whose creation it
    reports once)."""

    def __init__(
        self, dest: str, manifest: _Manifest, bind_names: frozenset[str], skip_names: frozenset[str]
    ) -> None:
        self._dest = dest
        self._manifest = manifest
        self._bind = set(manifest.bind_dirs)
        self._bind_names = bind_names
        self._skip_names = skip_names
        self.files: list[tuple[str, str, os.stat_result]] = []
        """(rel, host path, lstat) of the regular files found."""
        self.links: dict[str, str] = {}
        """rel -> target of the links found."""
        self.tool_dirs: list[str] = []
        """Tool folders (`node_modules`, ...) found that the copy did not have before."""
        self._whole = False
        self._paths: set[str] = set()
        self._roots: set[str] = set()
        """Folders looked into (or gone) from `look_at`: what was known under them is covered."""
        self._folders: dict[str, bool] = {"": True}
        self.unreadable: set[str] = set()
        """Folders that could not be listed or whose entries could not be stat'ed, even after `_reopen`
        (not the user's to change): what was known under them is kept, not read as deleted."""
        self.reopened: dict[str, int] = {}
        """Folders the owner could not list or search (a command's `chmod 000 sub`), given their owner's rwx
        back: rel -> the mode they had."""

    def covered(
        self, known: Collection[str], under: Callable[[str], Iterable[str]] | None = None
    ) -> set[str]:
        """The paths of `known` (the copy's files or links before the command) that this scan covered: those
        it did not find are gone. `under(folder)` lists the known paths under a folder (else `known` is
        searched)."""
        if "" in self.unreadable:
            return set()
        if self._whole:
            found = set(known)
        else:
            found = {rel for rel in self._paths if rel in known}
            for root in self._roots:
                prefix = root + "/"
                found.update(under(root) if under is not None else (p for p in known if p.startswith(prefix)))
        return {rel for rel in found if rel not in self.unreadable and not _under(rel, self.unreadable)}

    def _unreadable(self, rel_dir: str, exc: OSError) -> None:
        """The folder `rel_dir` could not be listed, or an entry in it not stat'ed: unless it is gone
        (deleted or replaced since it was listed), what was known under it stays."""
        if exc.errno not in (errno.ENOENT, errno.ENOTDIR):
            self.unreadable.add(rel_dir)

    def _reopen(self, rel: str) -> bool:
        """Give the owner back rwx on the copy's folder `rel`, which it could not list or search; whether
        that (or the same for a folder above it) was done. The copy is agentls' own and a folder's mode no
        part of the proposal, while a folder left so would hide what the command wrote there and stop every
        later command and update in it."""
        try:
            mode = reopen_folder(self._dest, rel)
        except OSError as exc:
            # A folder above it that cannot be searched (`chmod a-x sub` over sub/deep/, which the walk
            # listed but cannot reach) is the one to give back, then this one if need be.
            if isinstance(exc, PermissionError) and rel and self._reopen(rel.rpartition("/")[0]):
                self._reopen(rel)
                return True
            log.debug("cannot give the owner of %s/%s its permissions back: %s", self._dest, rel, exc)
            return False
        if mode is None:
            return False
        self.reopened[rel] = mode
        self._watch(rel)  # inotify could not watch it while it was locked
        return True

    def _searching(self, rel_dir: str, look: Callable[[], _T]) -> _T:
        """`look()` at the folder `rel_dir` or an entry in it; when the folder refuses it (the owner lost
        read or search), once more after `_reopen`."""
        try:
            return look()
        except PermissionError:
            if not self._reopen(rel_dir):
                raise
            return look()

    def check_modes(self, folders: Iterable[str]) -> None:
        """Folders whose mode changed (`Changes.modes`): give their owner rwx back where a command took its
        read or search (a `chmod 000 sub` that wrote nothing is no other event)."""
        for rel in sorted(folders):
            if rel and not self._in_walk(rel):
                continue
            try:
                mode = os.lstat(os.path.join(self._dest, rel) if rel else self._dest).st_mode
            except OSError:
                continue  # gone since, or under a folder that could not be searched
            if stat.S_ISDIR(mode) and mode & _READ_SEARCH != _READ_SEARCH:
                self._reopen(rel)

    def start_watching(self) -> None:
        """Watch the folders this scan walks, from now on."""
        try:
            self._manifest.watch = TreeWatch(self._dest)
        except WatchUnavailable as exc:
            self._watch_failed(exc)

    def _watch_failed(self, exc: OSError) -> None:
        self._manifest.stop_watching()
        self._manifest.watch_failed = True
        hint = " (raise fs.inotify.max_user_watches)" if exc.errno == errno.ENOSPC else ""
        hint = " (raise fs.inotify.max_user_instances)" if exc.errno == errno.EMFILE else hint
        log.warning(
            "cannot watch the workspace copy %s for changes (%s)%s; after each command the whole copy is "
            "walked to find what the command changed",
            self._dest,
            exc.strerror or exc,
            hint,
        )

    def _watch(self, rel: str) -> None:
        if self._manifest.watch is None:
            return
        try:
            self._manifest.watch.add(rel)
        except WatchUnavailable as exc:
            if exc.errno == errno.EACCES:
                # A folder a command made unreadable: the walk cannot list it either, and while it is
                # recorded as unreadable every fold-back walks the whole copy, watching it once it can.
                return
            self._watch_failed(exc)

    def _walked(self, rel: str, name: str) -> bool:
        """Whether the walk goes into the folder at `rel`; reports a tool folder the copy did not have."""
        if rel in self._bind or name in self._skip_names:
            return False
        if name in self._bind_names:  # made here: `npm install`, `python -m venv`
            if rel not in self._manifest.tool_dirs:
                self._manifest.tool_dirs.add(rel)
                self.tool_dirs.append(rel)
            return False
        return True

    def _left_out(self, rel: str, name: str) -> bool:
        """A folder the walk never goes into, so that no file of the copy's manifest is under it."""
        return rel in self._bind or name in self._skip_names or name in self._bind_names

    def _in_walk(self, rel: str) -> bool:
        """Whether the walk reaches into the folder at `rel`: a real folder (not a link) all the way down."""
        if rel in self._folders:
            return self._folders[rel]
        parent, _, name = rel.rpartition("/")
        inside = self._in_walk(parent) and not self._left_out(rel, name)
        if inside:
            path = os.path.join(self._dest, rel)
            try:
                inside = stat.S_ISDIR(self._searching(parent, lambda: os.lstat(path)).st_mode)
            except OSError as exc:
                self._unreadable(parent, exc)
                inside = False
        self._folders[rel] = inside
        return inside

    def walk(self, top: str) -> None:
        """Everything under the folder `top` ("" for the whole copy), watching each folder."""
        if not top:
            self._whole = True
        self._watch(top)
        stack = [(top, os.path.join(self._dest, top) if top else self._dest)]
        while stack:
            rel_dir, dir_path = stack.pop()
            try:
                entries = self._searching(rel_dir, lambda: list(os.scandir(dir_path)))  # noqa: B023
            except OSError as exc:
                self._unreadable(rel_dir, exc)
                continue
            for entry in entries:
                rel = entry.name if not rel_dir else f"{rel_dir}/{entry.name}"
                try:
                    self._entry(rel, entry, stack)
                except PermissionError as exc:  # listed but not searchable (`chmod a-x`)
                    if not self._reopen(rel_dir):
                        self._unreadable(rel_dir, exc)
                        continue
                    try:
                        self._entry(rel, entry, stack)
                    except OSError as again:
                        self._unreadable(rel_dir, again)
                except OSError as exc:
                    self._unreadable(rel_dir, exc)

    def _entry(self, rel: str, entry: os.DirEntry[str], stack: list[tuple[str, str]]) -> None:
        """One entry the walk listed: a link, a file, or a folder to walk (on `stack`)."""
        if entry.is_symlink():
            self.links[rel] = os.readlink(entry.path)
        elif entry.is_dir():
            if self._walked(rel, entry.name):
                self._watch(rel)
                stack.append((rel, entry.path))
        elif entry.is_file():
            self.files.append((rel, entry.path, entry.stat()))

    def look_at(self, paths: set[str], gone: set[str]) -> None:
        """The entries at `paths` (and everything under the folders among them), and what was known under
        the folders of `gone` (deleted or moved away). A folder a command made holds nothing known before:
        had the path held a folder before, its deletion or move is in `gone` too."""
        self._paths |= paths
        self._roots |= {rel for rel in gone if not self._left_out(rel, rel.rpartition("/")[2])}
        walked: set[str] = set()
        for rel in sorted(paths):
            if rel in walked or _under(rel, walked):
                continue
            parent, _, name = rel.rpartition("/")
            if not self._in_walk(parent):
                continue
            path = os.path.join(self._dest, rel)
            try:
                st = self._searching(parent, lambda: os.lstat(path))  # noqa: B023
                if stat.S_ISLNK(st.st_mode):
                    self.links[rel] = os.readlink(path)
                elif stat.S_ISDIR(st.st_mode):
                    if self._walked(rel, name):
                        walked.add(rel)
                        self.walk(rel)
                elif stat.S_ISREG(st.st_mode):
                    self.files.append((rel, path, st))
            except OSError as exc:
                self._unreadable(parent, exc)  # its folder cannot be searched
                continue


@dataclass(frozen=True)
class _Binary:
    """Marker for a base file that is not UTF-8 text."""


_BINARY = _Binary()


@dataclass(frozen=True)
class _Unreadable(_Binary):
    """Marker for a workspace file agentls cannot read (mode 000 of another owner, an I/O error): like a
    binary file, it is never edited nor proposed; `reason` is the error's text."""

    reason: str

    def refusal(self, path: str) -> str:
        """Why the overlay refuses `path`, for the model."""
        return (
            f"Cannot read {path} in the workspace ({self.reason}): agentls can neither show nor change a "
            "file it cannot read, and no change to it can be proposed. Its permissions are the user's to "
            "change."
        )


_BaseState = str | None | _Binary


def _decode(data: bytes) -> str | None:
    """UTF-8 text, or None when the bytes are binary or not UTF-8."""
    if b"\x00" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _diff_lines(lines: Iterable[str]) -> Iterator[str]:
    """Mark lines without a final newline the way `git diff` does."""
    for line in lines:
        if line.endswith("\n"):
            yield line
        else:
            yield line + "\n"
            yield "\\ No newline at end of file\n"


def unified_diff(
    old_path: str | None, new_path: str | None, old_text: str, new_text: str, *, context: int = 3
) -> str:
    """A git-style unified diff of one file. `old_path` None means created, `new_path` None deleted.

    Its hunks are `agent.hunks.unified_hunks` of the two texts' lines: the blocks of lines every other
    part of agentls calls hunks too (the server's per-hunk review, the LSP edits). Names with line breaks
    or other control characters are quoted and escaped as git does (`agent.paths.quote_path`), so a file
    name cannot fake a header line of the diff the user reviews."""
    a = old_path if old_path is not None else new_path
    b = new_path if new_path is not None else old_path
    header = [f"diff --git {quote_path(f'a/{a}')} {quote_path(f'b/{b}')}\n"]
    if old_path is None:
        header.append("new file mode 100644\n")
    elif new_path is None:
        header.append("deleted file mode 100644\n")
    elif old_path != new_path:
        header.append(f"rename from {quote_path(old_path)}\nrename to {quote_path(new_path)}\n")
    hunks = unified_hunks(split_lines(old_text), split_lines(new_text), context=context)
    if not hunks:
        return "".join(header)
    names = [
        f"--- {quote_path(f'a/{old_path}') if old_path is not None else '/dev/null'}\n",
        f"+++ {quote_path(f'b/{new_path}') if new_path is not None else '/dev/null'}\n",
    ]
    return "".join(header + names) + "".join(_diff_lines(hunks))


def _key(st: os.stat_result) -> tuple[int, int, int]:
    """What the manifest keeps of a file's stat: (size, mtime_ns, inode)."""
    return (st.st_size, st.st_mtime_ns, st.st_ino)


def _copy_file(src: str, dst: str, st: os.stat_result, same_device: bool) -> os.stat_result:
    """Copy one regular file, keeping its times; returns the copy's stat.

    On one filesystem `copy_file_range` lets the kernel reflink or copy in place; across filesystems (disk to
    tmpfs) `sendfile` is the cheapest in-kernel copy.
    """
    fd_in = os.open(src, os.O_RDONLY | os.O_CLOEXEC)
    try:
        mode = st.st_mode & 0o777 | 0o200
        fd_out = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
        try:
            copied = 0
            if same_device:
                try:
                    while copied < st.st_size:
                        n = os.copy_file_range(fd_in, fd_out, st.st_size - copied)
                        if n == 0:
                            break
                        copied += n
                except OSError as exc:
                    if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                        raise
            while True:
                n = os.sendfile(fd_out, fd_in, copied, 1 << 20)
                if n == 0:
                    break
                copied += n
            os.utime(fd_out, ns=(st.st_atime_ns, st.st_mtime_ns))
            out = os.fstat(fd_out)
        except OSError:
            _discard(dst)  # else the fold-back would take the part copied for a command's change
            raise
        finally:
            os.close(fd_out)
    finally:
        os.close(fd_in)
    return out


def _safe_target(dest: str, rel: str) -> str:
    """Host path to write `rel` at inside `dest`, never through a symlink that leads out of `dest`.

    A command in the sandbox may replace a directory with a symlink to the real workspace (which inside the
    sandbox shows the copy, but on the host is the user's tree); writing through it would change the user's
    files, so such links are replaced by real directories first.
    """
    dest_real = os.path.realpath(dest)
    parent_rel, name = posixpath.split(rel)
    parent = os.path.join(dest, parent_rel) if parent_rel else dest
    real = os.path.realpath(parent)
    if real != dest_real and not real.startswith(dest_real + os.sep):
        current = dest_real
        for part in parent_rel.split("/"):
            current = os.path.join(current, part)
            if os.path.islink(current) or (os.path.lexists(current) and not os.path.isdir(current)):
                os.unlink(current)
            if not os.path.lexists(current):
                os.mkdir(current)
        real = current
    else:
        os.makedirs(real, exist_ok=True)
    return os.path.join(real, name)


def _write_file(dest: str, rel: str, text: str, mode: int = 0o644) -> os.stat_result:
    """Write overlay text into the materialized directory; returns its stat."""
    target = _safe_target(dest, rel)
    previous_ns: int | None = None
    if os.path.lexists(target):
        if os.path.islink(target) or not os.path.isfile(target):
            _remove(target)
        else:
            previous_ns = os.lstat(target).st_mtime_ns
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    try:
        data = text.encode("utf-8")
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if previous_ns is not None:
            # Python's .pyc check (and make on some filesystems) compares whole seconds: a rewrite within
            # the same second as the previous version, with the same size, would look unchanged to them.
            now_ns = os.fstat(fd).st_mtime_ns
            if now_ns // _NS <= previous_ns // _NS:
                later = (previous_ns // _NS + 1) * _NS
                os.utime(fd, ns=(later, later))
        if mode & 0o111:
            os.fchmod(fd, mode & 0o777)
        out = os.fstat(fd)
    except OSError:
        _discard(target)
        raise
    finally:
        os.close(fd)
    return out


def _in_the_way(dst: str, folder: bool) -> bool:
    """Whether what is at `dst` in the copy (a command's) must go before the workspace's file or folder
    (`folder`) is copied there: anything but a real folder where the workspace has a folder."""
    if not os.path.lexists(dst):
        return False
    return os.path.islink(dst) or not os.path.isdir(dst) or not folder


def _discard(path: str) -> None:
    """Remove a file a failed write cut short (a full disk): a command would take it for the file."""
    try:
        os.unlink(path)
    except OSError as exc:
        log.warning("cannot remove %s, which a failed write cut short: %s", path, exc)


def _remove_in(dest: str, rel: str) -> bool:
    """Remove `rel` from `dest` without following links out of it; whether something was removed. Raises
    when it cannot tell (its folder cannot be searched), rather than take the file for gone."""
    target = _safe_target(dest, rel)
    try:
        os.lstat(target)
    except (FileNotFoundError, NotADirectoryError):
        return False
    _remove(target)
    return True


def _warn_unwritten(failed: Mapping[str, str], dest: Path) -> None:
    """Log the paths an update of the copy could not write or remove (path -> why)."""
    if failed:
        log.warning(
            "could not bring %s up to date in the workspace copy %s: the next command sees the copy's older "
            "state of them (or none), and the overlay keeps its own",
            ", ".join(f"{rel} ({reason})" for rel, reason in failed.items()),
            dest,
        )


def _reopen_root(dest: Path) -> None:
    """Give the owner back read, write and search on the copy's root folder, which a command's `chmod 000 .`
    took: no later command could start in it, nor the overlay write there. The folder is agentls' own
    (`tempfile.mkdtemp`), not the workspace's: its mode is no part of the proposal."""
    try:
        mode = reopen_folder(dest)
    except OSError as exc:
        log.warning("cannot give the workspace copy %s its permissions back: %s", dest, exc)
        return
    if mode is not None:
        log.info("the workspace copy %s had mode %o after a command; the owner's rwx is back", dest, mode)


def _remove(path: str) -> None:
    """Remove a file, link or directory tree if it is there."""
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    except FileNotFoundError:
        pass


class Overlay:
    """Copy-on-write view of a workspace: disk plus unsaved buffers, with the agent's edits on top."""

    def __init__(
        self,
        root: Path,
        buffers: Mapping[str, tuple[str, int]] | None = None,
        *,
        bind_dirs: Iterable[str] = DEFAULT_BIND_DIRS,
        skip_dirs: Iterable[str] = DEFAULT_SKIP_DIRS,
        watch_copies: bool = True,
    ) -> None:
        """`buffers` maps workspace-relative paths to (text, version) of the editor's unsaved documents.
        `watch_copies` False makes every `sync_back_from` walk the whole copy (as when inotify is missing)."""
        self._root = Path(os.path.abspath(root))
        self._buffers: dict[str, tuple[str, int]] = {}
        for path, (text, version) in (buffers or {}).items():
            try:
                rel = resolve_in_workspace(self._root, path)
            except ValueError:
                log.info("unsaved buffer %s is outside the workspace or refused; not in the overlay", path)
                continue
            self._buffers[rel] = (text, version)
        self._bind_dirs = frozenset(bind_dirs)
        self._skip_dirs = frozenset(skip_dirs)
        self._watch_copies = watch_copies
        self._base: dict[str, _BaseState] = {}
        self._current: dict[str, str | None] = {}
        self._renamed_from: dict[str, str] = {}
        """new path -> original path, for files the overlay renamed."""
        self._modes: dict[str, int] = {}
        self._manifests: dict[Path, _Manifest] = {}
        self._base_links: dict[str, str] = {}
        """rel -> target of the workspace's symbolic links, as the first copy found them."""
        self._links: dict[str, str | None] = {}
        """rel -> target (None: deleted) of the links commands changed: reported, never proposed."""
        self._ignore = self._load_ignore()

    @property
    def root(self) -> Path:
        """The workspace root (absolute)."""
        return self._root

    # -- reading -----------------------------------------------------------------------------------

    def resolve(self, path: str) -> str:
        """Workspace-relative path of `path`, or `PathRefused` (see `agent.paths`)."""
        return resolve_in_workspace(self._root, path)

    def _disk_path(self, rel: str) -> Path:
        return self._root / rel

    def _load_base(self, rel: str) -> _BaseState:
        """Snapshot of the base state of `rel`, taken on first use; a file agentls could not read is tried
        again each time it is needed (the user may have made it readable), until it is read."""
        if rel in self._base and not isinstance(self._base[rel], _Unreadable):
            return self._base[rel]
        state: _BaseState
        if rel in self._buffers:
            state = self._buffers[rel][0]
        else:
            disk = self._disk_path(rel)
            try:
                data = disk.read_bytes()
            except (FileNotFoundError, NotADirectoryError):
                state = None
            except IsADirectoryError:
                # Not snapshotted: directories are not files of the overlay.
                return None
            except OSError as exc:  # mode 000 of another owner, an I/O error: tried again when next needed
                if rel not in self._base:
                    log.info(
                        "cannot read %s in the workspace: %s; not editable until it can be read", disk, exc
                    )
                state = _Unreadable(exc.strerror or str(exc))
            else:
                text = _decode(data)
                state = _BINARY if text is None else text
        self._base[rel] = state
        return state

    def _state(self, rel: str) -> _BaseState:
        """The overlay's current view of `rel`: its text, None when absent, or binary."""
        if rel in self._current:
            return self._current[rel]
        return self._load_base(rel)

    def _dir_on_disk(self, rel: str) -> bool:
        # os.path.isdir, not Path.is_dir: under a folder agentls cannot search that raises PermissionError.
        return rel == "." or os.path.isdir(self._disk_path(rel))

    def _has_files_under(self, rel: str) -> bool:
        prefix = "" if rel == "." else rel + "/"
        return any(p.startswith(prefix) for p, t in self._current.items() if t is not None) or any(
            p.startswith(prefix) and self._current.get(p, "") is not None for p in self._buffers
        )

    def is_dir(self, path: str) -> bool:
        """Whether `path` is a directory in the overlay's view."""
        rel = self.resolve(path)
        return self._dir_on_disk(rel) or self._has_files_under(rel)

    def exists(self, path: str) -> bool:
        """Whether `path` is a file or directory in the overlay's view."""
        rel = self.resolve(path)
        if self.is_dir(rel):
            return True
        return self._state(rel) is not None

    def is_binary(self, path: str) -> bool:
        """Whether `path` is a file the overlay holds as binary (not editable)."""
        return self._state(self.resolve(path)) is _BINARY

    def read(self, path: str) -> str:
        """Text of a file in the overlay's view."""
        rel = self.resolve(path)
        state = self._state(rel)
        if state is None:
            if self.is_dir(rel):
                raise OverlayError(f"The path {path} is a directory, not a file.")
            raise OverlayError(f"The path {path} does not exist. Please provide a valid path.")
        if isinstance(state, _Unreadable):
            raise OverlayError(state.refusal(path))
        if isinstance(state, _Binary):
            raise BinaryFileError(
                f"The file {path} is binary or not UTF-8 text; the editor can only view and edit text files."
            )
        return state

    def base_text(self, path: str) -> str | None:
        """Text of a file as the run began (from disk or an unsaved buffer); None when it did not exist
        then or is binary."""
        state = self._load_base(self.resolve(path))
        return state if isinstance(state, str) else None

    def listdir(self, path: str = ".") -> list[str]:
        """Sorted names in a directory of the overlay's view; directory names end with '/'.

        Secret files are left out; hidden files are kept (callers filter what they show).
        """
        rel = self.resolve(path)
        if not self.is_dir(rel):
            if self._state(rel) is None:
                raise OverlayError(f"The path {path} does not exist. Please provide a valid path.")
            raise OverlayError(f"The path {path} is a file, not a directory.")
        prefix = "" if rel == "." else rel + "/"
        names: dict[str, bool] = {}
        disk = self._disk_path(rel)
        try:
            entries = list(os.scandir(disk)) if os.path.isdir(disk) else []
        except OSError as exc:
            raise OverlayError(
                f"Cannot list the folder {path} in the workspace ({exc.strerror or exc}): agentls cannot "
                "read it. Its permissions are the user's to change."
            ) from None
        for entry in entries:
            child = prefix + entry.name
            try:
                is_dir = entry.is_dir()
            except OSError:
                continue
            if is_dir:
                names[entry.name] = True
            elif self._current.get(child, "") is not None and not is_secret_path(child):
                names[entry.name] = False
        for p in list(self._current) + list(self._buffers):
            if not p.startswith(prefix) or self._state(p) is None:
                continue
            first, sep, _ = p[len(prefix) :].partition("/")
            names[first] = names.get(first, False) or bool(sep)
        return sorted(name + "/" if is_dir else name for name, is_dir in names.items())

    def walk_files(self, path: str = ".") -> list[str]:
        """All file paths under a directory in the overlay's view (sorted; bind and skip dirs left out)."""
        rel = self.resolve(path)
        prefix = "" if rel == "." else rel + "/"
        found: set[str] = set()
        base_dir = self._disk_path(rel)
        if os.path.isdir(base_dir):
            for dirpath, dirnames, filenames in os.walk(base_dir):
                dirnames[:] = [d for d in dirnames if d not in self._bind_dirs and d not in self._skip_dirs]
                rel_dir = os.path.relpath(dirpath, self._root).replace(os.sep, "/")
                for name in filenames:
                    child = name if rel_dir == "." else f"{rel_dir}/{name}"
                    if not is_secret_path(child):
                        found.add(child)
        for p in list(self._current) + list(self._buffers):
            if p.startswith(prefix):
                found.add(p)
        return sorted(p for p in found if p not in self._current or self._current[p] is not None)

    # -- writing -----------------------------------------------------------------------------------

    def _check_parent(self, rel: str, path: str) -> None:
        parent = os.path.dirname(rel)
        while parent:
            if isinstance(self._state(parent), str | _Binary) and not self._dir_on_disk(parent):
                raise OverlayError(f"Cannot write {path}: its parent {parent} is a file.")
            parent = os.path.dirname(parent)

    def _set(self, rel: str, text: str | None) -> None:
        """Record a new state for `rel`; a state equal to the base is no change."""
        base = self._load_base(rel)
        if text == base and rel not in self._renamed_from:
            self._current.pop(rel, None)
        else:
            self._current[rel] = text
        for manifest in self._manifests.values():
            manifest.dirty.add(rel)

    def write(self, path: str, text: str) -> None:
        """Set the text of a file, creating it when it does not exist."""
        rel = self.resolve(path)
        if rel == "." or self.is_dir(rel):
            raise OverlayError(f"The path {path} is a directory; only files can be written.")
        if not isinstance(text, str):
            raise TypeError(f"text must be str, got {type(text).__name__}")
        state = self._state(rel)
        if isinstance(state, _Unreadable):
            raise OverlayError(state.refusal(path))
        if state is _BINARY:
            raise BinaryFileError(f"The file {path} is binary or not UTF-8 text; the agent cannot edit it.")
        self._check_parent(rel, path)
        self._set(rel, text)

    def create(self, path: str, text: str) -> None:
        """Create a file that does not exist yet."""
        rel = self.resolve(path)
        if rel == "." or self.is_dir(rel):
            raise OverlayError(f"The path {path} is a directory; only files can be created.")
        state = self._state(rel)
        if isinstance(state, _Unreadable):
            raise OverlayError(state.refusal(path))
        if state is not None:
            raise OverlayError(
                f"File already exists at: {path}. Cannot overwrite files using command `create`."
            )
        self._check_parent(rel, path)
        self._set(rel, text)

    def delete(self, path: str) -> None:
        """Delete a file."""
        rel = self.resolve(path)
        state = self._state(rel)
        if state is None:
            if self.is_dir(rel):
                raise OverlayError(f"The path {path} is a directory; only files can be deleted.")
            raise OverlayError(f"The path {path} does not exist.")
        if isinstance(state, _Unreadable):
            raise OverlayError(state.refusal(path))
        if state is _BINARY:
            raise BinaryFileError(f"The file {path} is binary; the agent cannot delete it.")
        self._renamed_from.pop(rel, None)
        self._set(rel, None)

    def rename(self, old: str, new: str) -> None:
        """Move a file to a path that does not exist yet."""
        old_rel, new_rel = self.resolve(old), self.resolve(new)
        text = self.read(old_rel)
        if old_rel == new_rel:
            return
        if self.is_dir(new_rel) or self._state(new_rel) is not None:
            raise OverlayError(f"Cannot rename {old} to {new}: {new} already exists.")
        self._check_parent(new_rel, new)
        origin = self._renamed_from.pop(old_rel, old_rel)
        if origin != new_rel:
            self._renamed_from[new_rel] = origin
        self._set(new_rel, text)
        self._set(old_rel, None)

    # -- the proposal ------------------------------------------------------------------------------

    def _version(self, rel: str) -> int | None:
        buffer = self._buffers.get(rel)
        return buffer[1] if buffer is not None else None

    def changes(self) -> list[FileChange]:
        """Every file whose overlay state differs from its base, sorted by path."""
        result: list[FileChange] = []
        consumed: set[str] = set()
        for new_rel, origin in self._renamed_from.items():
            new_text = self._current.get(new_rel)
            origin_base = self._load_base(origin)
            if (
                isinstance(new_text, str)
                and isinstance(origin_base, str)
                and self._state(origin) is None
                and self._load_base(new_rel) is None
            ):
                consumed.update((new_rel, origin))
                result.append(
                    FileChange(
                        path=new_rel,
                        kind="renamed",
                        old_path=origin,
                        base_text=origin_base,
                        new_text=new_text,
                        base_version=self._version(origin),
                        diff=unified_diff(origin, new_rel, origin_base, new_text),
                    )
                )
        for rel, text in self._current.items():
            if rel in consumed:
                continue
            base = self._load_base(rel)
            if isinstance(base, _Binary) or text == base:
                continue
            if base is None:
                assert text is not None
                kind: ChangeKind = "created"
                diff = unified_diff(None, rel, "", text)
            elif text is None:
                kind = "deleted"
                diff = unified_diff(rel, None, base, "")
            else:
                kind = "modified"
                diff = unified_diff(rel, rel, base, text)
            result.append(
                FileChange(
                    path=rel,
                    kind=kind,
                    old_path=None,
                    base_text=base or "",
                    new_text=text or "",
                    base_version=self._version(rel),
                    diff=diff,
                )
            )
        return sorted(result, key=lambda c: c.path)

    def proposal_diff(self) -> str:
        """All changes as one git-style unified diff."""
        return "".join(change.diff for change in self.changes())

    # -- the sandbox's copy ------------------------------------------------------------------------

    def _load_ignore(self) -> pathspec.GitIgnoreSpec:
        lines = list(_BUILTIN_IGNORES)
        gitignore = self._root / ".gitignore"
        try:
            lines += gitignore.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            pass
        return pathspec.GitIgnoreSpec.from_lines(lines)

    def _ignored(self, rel: str) -> bool:
        return self._ignore.match_file(rel)

    def _desired(self, rel: str) -> str | None:
        """Text the materialized copy should hold for a path the overlay knows, None for absent."""
        state = self._state(rel)
        return state if isinstance(state, str) else None

    def materialize(self, dest: Path) -> MaterializedWorkspace:
        """Write the overlay's full view of the workspace into `dest` (an empty or missing directory).

        Called again with the same `dest`, only the files the overlay changed since are rewritten.
        """
        started = time.perf_counter()
        dest = Path(os.path.abspath(dest))
        manifest = self._manifests.get(dest)
        failed: dict[str, str] = {}
        """rel -> why, for the files the copy could not be brought to the overlay's state at."""
        if manifest is not None and dest.is_dir():
            _reopen_root(dest)
            recopied = self._copy_again(manifest, dest) if manifest.retry else ()
            written = removed = 0
            for rel in sorted(manifest.dirty):
                text = self._desired(rel)
                try:
                    if text is None:
                        removed += _remove_in(str(dest), rel)
                        manifest.drop(rel)
                    else:
                        manifest.put(rel, _key(_write_file(str(dest), rel, text, self._file_mode(rel))))
                        manifest.written.add(rel)
                        written += 1
                except OSError as exc:  # a command's `chmod 555 sub` (or 000): tried again next time
                    failed[rel] = exc.strerror or str(exc)
            manifest.dirty = set(failed)
            manifest.unwritten = set(failed)
            _warn_unwritten(failed, dest)
            return MaterializedWorkspace(
                dest,
                manifest.bind_dirs,
                0,
                written,
                removed,
                time.perf_counter() - started,
                unwritten=tuple(failed),
                unwritten_errors=tuple(failed.values()),
                recopied=recopied,
            )

        if manifest is not None:
            manifest.stop_watching()
        dest.mkdir(parents=True, exist_ok=True)
        if any(dest.iterdir()):
            raise OverlayError(f"Cannot materialize into {dest}: the directory is not empty.")
        copying = _Copying(str(dest), dest.stat().st_dev, set(self._current) | set(self._buffers))
        self._copy_folder(copying, "")
        files, links, folders, uncopied = copying.files, copying.links, copying.folders, copying.uncopied
        bind_dirs, copied, allocated = copying.bind_dirs, copying.copied, copying.allocated
        overlay_written: set[str] = set()
        overlaid = copying.overlaid
        written = removed = 0
        for rel in sorted(overlaid):
            if is_secret_path(rel):
                continue
            text = self._desired(rel)
            if text is None:
                continue
            try:
                out = _write_file(str(dest), rel, text, self._file_mode(rel))
            except OSError as exc:  # a full disk (/dev/shm): tried again at the next update
                failed[rel] = exc.strerror or str(exc)
                continue
            parent = posixpath.dirname(rel)
            while parent and parent not in folders:  # made by the write when the copy had no such folder
                folders.add(parent)
                parent = posixpath.dirname(parent)
            files[rel] = _key(out)
            allocated += out.st_blocks * 512
            overlay_written.add(rel)
            written += 1
        for rel in folders:  # now that they hold their entries (a folder on a disk grows with them)
            try:
                allocated += os.lstat(os.path.join(dest, rel)).st_blocks * 512
            except OSError:
                pass
        self._manifests[dest] = _Manifest(
            files=files,
            bind_dirs=tuple(sorted(bind_dirs)),
            dirty=set(failed),
            written=overlay_written,
            links=links,
            unwritten=set(failed),
        )
        self._manifests[dest].note_uncopied(uncopied, copying.retry)
        _warn_unwritten(failed, dest)
        if uncopied:
            log.warning(
                "could not copy %s from the workspace into its copy %s: commands there do not see them",
                _with_reasons(uncopied, uncopied.values()),
                dest,
            )
        return MaterializedWorkspace(
            dest,
            tuple(sorted(bind_dirs)),
            copied,
            written,
            removed,
            time.perf_counter() - started,
            allocated,
            unwritten=tuple(failed),
            unwritten_errors=tuple(failed.values()),
            uncopied=tuple(uncopied),
            uncopied_errors=tuple(uncopied.values()),
        )

    def _copy_folder(self, copying: _Copying, top: str, *, replace: bool = False) -> None:
        """Copy the workspace's folder `top` ("" for the root) and what it holds into `copying.dest` (links
        recreated as links, bound folders named for the sandbox to bind, skipped folders, secret files and
        the overlay's own files left out); what fails is named in `copying.uncopied`, the rest copied.
        `replace`: the copy's folder may hold entries already (a command's, in a folder the first copy could
        not list): what the workspace has at their place replaces them."""
        stack = [top]
        while stack:
            rel_dir = stack.pop()
            src_dir = os.path.join(self._root, rel_dir) if rel_dir else str(self._root)
            dst_dir = os.path.join(copying.dest, rel_dir) if rel_dir else copying.dest
            try:
                entries = list(os.scandir(src_dir))
            except OSError as exc:  # not agentls' to read: the copy's folder stays empty
                copying.failed(f"{rel_dir}/" if rel_dir else "./", exc)
                continue
            for entry in entries:
                rel = entry.name if not rel_dir else f"{rel_dir}/{entry.name}"
                dst = os.path.join(dst_dir, entry.name)
                folder = False
                try:
                    if replace and _in_the_way(dst, folder=entry.is_dir(follow_symlinks=False)):
                        _remove(dst)
                    if entry.is_symlink():
                        # Recreated as is: inside the sandbox it reaches the read-only system or the copy.
                        target = os.readlink(entry.path)
                        os.symlink(target, dst)
                        copying.allocated += os.lstat(dst).st_blocks * 512
                        copying.links[rel] = target
                        self._base_links.setdefault(rel, target)
                        continue
                    if entry.is_dir():
                        if entry.name in self._bind_dirs:
                            copying.bind_dirs.append(rel)
                        elif entry.name not in self._skip_dirs:
                            folder = True
                            if not (replace and os.path.isdir(dst)):
                                os.mkdir(dst)
                            copying.folders.add(rel)
                            stack.append(rel)
                        continue
                    if not entry.is_file() or rel in copying.overlaid or is_secret_path(rel):
                        continue
                    st = entry.stat()
                    self._modes.setdefault(rel, st.st_mode & 0o777)
                    out = _copy_file(entry.path, dst, st, st.st_dev == copying.dest_dev)
                    copying.files[rel] = _key(out)
                    copying.allocated += out.st_blocks * 512
                    copying.copied += 1
                except OSError as exc:  # mode 000 of another owner, an I/O error, a full disk
                    copying.failed(f"{rel}/" if folder else rel, exc)

    def _copy_again(self, manifest: _Manifest, dest: Path) -> tuple[str, ...]:
        """Copy into `dest` what its first copy could not read from the workspace and agentls can read now
        (the user gave it a readable mode): one look at each such path per update, no walk. What it copied
        (`sub/` for a folder). A path the overlay has written its own version of since needs no base."""
        copying = _Copying(str(dest), dest.stat().st_dev, set(self._current) | set(self._buffers))
        done: list[str] = []
        for key in sorted(manifest.retry):
            manifest.retry.discard(key)
            if key.endswith("/"):
                rel = "" if key == "./" else key[:-1]
                manifest.uncopied_dirs.pop(rel, None)
                try:
                    if rel:  # never through a command's link out of the copy
                        target = _safe_target(str(dest), rel)
                        if _in_the_way(target, folder=True):
                            _remove(target)
                        os.makedirs(target, exist_ok=True)
                except OSError as exc:
                    copying.failed(key, exc)
                    continue
                self._copy_folder(copying, rel, replace=True)
                if key not in copying.uncopied:  # what commands wrote there is kept from now on
                    known = manifest.files_under(rel) if rel else list(manifest.files)
                    manifest.recheck.update(p for p in known if p not in copying.files)
            elif key in manifest.written or key in copying.overlaid:
                manifest.uncopied.pop(key, None)
                continue
            else:
                manifest.uncopied.pop(key, None)
                try:
                    src = os.path.join(self._root, key)
                    st = os.stat(src)
                    os.close(os.open(src, os.O_RDONLY | os.O_CLOEXEC))  # still unreadable: nothing is touched
                    target = _safe_target(str(dest), key)
                    if os.path.lexists(target):
                        _remove(target)  # a command's file at that path (not kept: it had no base)
                    out = _copy_file(src, target, st, st.st_dev == copying.dest_dev)
                except OSError as exc:
                    copying.failed(key, exc)
                    continue
                self._modes.setdefault(key, st.st_mode & 0o777)
                copying.files[key] = _key(out)
            if key not in copying.uncopied:
                done.append(key)
        for rel, stat_key in copying.files.items():
            manifest.put(rel, stat_key)
        manifest.links.update(copying.links)
        if copying.bind_dirs:
            manifest.bind_dirs = tuple(sorted({*manifest.bind_dirs, *copying.bind_dirs}))
        manifest.note_uncopied(copying.uncopied, copying.retry)
        if done:
            log.info(
                "copied %s from the workspace into its copy %s: agentls can read them now",
                ", ".join(done),
                dest,
            )
        return tuple(done)

    def _file_mode(self, rel: str) -> int:
        if rel not in self._modes:
            try:
                self._modes[rel] = self._disk_path(rel).stat().st_mode & 0o777
            except OSError:
                self._modes[rel] = 0o644
        return self._modes[rel]

    def forget(self, dest: Path) -> None:
        """Stop tracking a materialized directory (call before deleting it)."""
        manifest = self._manifests.pop(Path(os.path.abspath(dest)), None)
        if manifest is not None:
            manifest.stop_watching()

    def sync_back_from(self, dest: Path) -> SyncReport:
        """Fold what a command changed in a materialized directory back into the overlay.

        The first call on a directory walks all of it and watches its folders (`agent.fswatch`); later calls
        look only at the paths inotify saw change since, and walk the whole directory again when the watch
        may have lost events or cannot be had (logged)."""
        dest = Path(os.path.abspath(dest))
        manifest = self._manifests.get(dest)
        if manifest is None:
            raise OverlayError(f"{dest} was not materialized by this overlay.")
        scan = _Scan(str(dest), manifest, self._bind_dirs, self._skip_dirs)
        noticed = manifest.watch.changes() if manifest.watch is not None else None
        if noticed is None or manifest.unreadable:
            if manifest.watch is None and self._watch_copies and not manifest.watch_failed:
                scan.start_watching()
            scan.walk("")
        else:
            scan.check_modes(noticed.modes)
            scan.look_at(noticed.paths | manifest.written | manifest.linked | manifest.recheck, noticed.gone)
        seen: set[str] = set()
        changed: list[str] = []
        skipped: list[str] = []
        ignored: list[str] = []
        too_large: list[str] = []
        created: dict[str, str] = {}
        # (path, its text before the command, the original path it was renamed from)
        deleted: list[tuple[str, str, str]] = []
        names_of: set[int] = set()
        """Inodes of files found with another name that is not yet in `manifest.linked`."""
        unreadable_files: list[str] = []
        not_proposed: dict[str, str] = {}
        """rel -> why, for the paths the command wrote whose workspace file agentls cannot read."""
        not_copied: dict[str, str] = {}
        """rel -> why, for the paths the command wrote whose workspace file the copy did not have."""
        for rel, path, st in scan.files:
            if rel in seen:
                continue
            seen.add(rel)
            if rel in manifest.unwritten:  # the command saw an older state: the overlay's stays
                continue
            if st.st_nlink > 1:
                if rel not in manifest.linked:
                    names_of.add(st.st_ino)
            else:
                manifest.linked.discard(rel)
            key = (st.st_size, st.st_mtime_ns, st.st_ino)
            known = manifest.files.get(rel)
            if known == key and rel not in manifest.written and rel not in manifest.recheck:
                continue
            manifest.put(rel, key)
            if is_secret_path(rel):
                skipped.append(rel)
                continue
            if st.st_size > MAX_FOLDED_BYTES:
                (ignored if rel not in self._current and self._ignored(rel) else too_large).append(rel)
                continue
            try:
                data = Path(path).read_bytes()
            except OSError as exc:
                if exc.errno != errno.ENOENT:  # `chmod 000 f`: as it was, and read again after next command
                    unreadable_files.append(rel)
                    if known is not None:
                        manifest.put(rel, known)
                    else:
                        manifest.drop(rel)
                continue
            text = _decode(data)
            if text is not None and text == self._state(rel):
                continue
            if rel not in self._current and self._ignored(rel):
                ignored.append(rel)
                continue
            base = self._state(rel)
            if isinstance(base, _Unreadable):  # no base to compare with: what the command wrote is not kept
                not_proposed[rel] = base.reason
                continue
            if base is not None and (why := manifest.not_copied(rel)):  # the copy had not the base
                not_copied[rel] = why
                continue
            if text is None or base is _BINARY:
                skipped.append(rel)
                continue
            before = self._state(rel)
            if before != text:
                if before is None:
                    created[rel] = text
                self._modes[rel] = st.st_mode & 0o777
                self._fold(rel, text, dest)
                changed.append(rel)
        manifest.recheck.clear()
        if names_of:
            manifest.linked |= {rel for rel, key in manifest.files.items() if key[2] in names_of}
        for rel in sorted(scan.covered(manifest.files, manifest.files_under) - seen - manifest.unwritten):
            manifest.drop(rel)
            manifest.written.discard(rel)
            manifest.linked.discard(rel)
            state = self._state(rel)
            if state is None:
                continue
            if isinstance(state, _Unreadable):
                not_proposed[rel] = state.reason
            elif why := manifest.not_copied(rel):
                not_copied[rel] = why
            elif isinstance(state, _Binary) or is_secret_path(rel):
                skipped.append(rel)
            elif rel not in self._current and self._ignored(rel):
                ignored.append(rel)
            else:
                deleted.append((rel, state, self._renamed_from.pop(rel, rel)))
                self._fold(rel, None, dest)
                changed.append(rel)
        # A command's `mv`/`git mv` shows up as a deletion and a creation with the same text: a rename.
        for new_rel, text in created.items():
            for index, (old_rel, old_text, origin) in enumerate(deleted):
                if old_text == text and old_rel != new_rel:
                    if origin != new_rel:
                        self._renamed_from[new_rel] = origin
                    del deleted[index]
                    break
        outside = set(manifest.links) - scan.covered(manifest.links)
        links = {rel: manifest.links[rel] for rel in outside} | scan.links
        symlinks = self._sync_links(manifest, links, ignored)
        manifest.unreadable = scan.unreadable | set(unreadable_files)
        # Named once each: not a folder under another (`chmod a-x sub` leaves sub/deep/ unlistable too).
        folders = {""} if "" in scan.unreadable else scan.unreadable
        top = [f"{rel}/" if rel else "./" for rel in folders if not _under(rel, folders)]
        unreadable = sorted(top + [rel for rel in unreadable_files if not _under(rel, folders)])
        if unreadable:
            log.warning(
                "could not read %s in the workspace copy %s after the command: the files there are left as "
                "they were",
                ", ".join(unreadable),
                dest,
            )
        reopened = {f"{rel}/" if rel else "./": mode for rel, mode in scan.reopened.items()}
        if reopened:
            log.info(
                "gave the owner rwx back on %s in the workspace copy %s: the command took its read or search",
                ", ".join(f"{rel} (mode {mode:o})" for rel, mode in sorted(reopened.items())),
                dest,
            )
        if not_proposed:
            log.warning(
                "not kept from the workspace copy %s: %s, which agentls cannot read in the workspace",
                dest,
                _with_reasons(not_proposed, not_proposed.values()),
            )
        if not_copied:
            log.warning(
                "not kept from the workspace copy %s: %s, which the copy did not have",
                dest,
                _with_reasons(not_copied, not_copied.values()),
            )
        return SyncReport(
            tuple(sorted(changed)),
            tuple(sorted(skipped)),
            tuple(sorted(ignored)),
            tuple(sorted(scan.tool_dirs)),
            tuple(sorted(too_large)),
            symlinks,
            tuple(unreadable),
            tuple(sorted(reopened)),
            _each_with_reason(not_proposed),
            _each_with_reason(not_copied),
        )

    def _sync_links(
        self, manifest: _Manifest, links: dict[str, str], ignored: list[str]
    ) -> tuple[SymlinkChange, ...]:
        """Record the links a command created, retargeted or deleted (`links`: all of them now); the ones
        that differ from the run's start, for the command's report. Ignored paths go to `ignored`."""
        reported: list[SymlinkChange] = []
        for rel in sorted(set(links) | set(manifest.links)):
            target = links.get(rel)
            if target == manifest.links.get(rel):
                continue
            if self._ignored(rel):
                ignored.append(rel)
                continue
            self._links[rel] = target
            change = self._link_change(rel)
            if change is not None:
                reported.append(change)
        manifest.links = links
        return tuple(reported)

    def _link_change(self, rel: str) -> SymlinkChange | None:
        target, base = self._links.get(rel), self._base_links.get(rel)
        if target == base:
            return None
        return SymlinkChange(rel, target, base, _link_inside(rel, target or base or "", str(self._root)))

    def symlink_changes(self) -> list[SymlinkChange]:
        """The symbolic links commands created, retargeted or deleted during the run (against its start),
        sorted by path: none of them is in the proposal."""
        changes = (self._link_change(rel) for rel in sorted(self._links))
        return [change for change in changes if change is not None]

    def _fold(self, rel: str, text: str | None, source: Path) -> None:
        """Take a state from a materialized directory without rewriting that directory."""
        self._set(rel, text)
        manifest = self._manifests.get(source)
        if manifest is not None:
            manifest.dirty.discard(rel)
