"""Decide which workspace files go into the index, and read them.

`walk` lists the files of a workspace in a stable, sorted order (by workspace-relative POSIX path, code
point order) and says, for each file it leaves out for a reason the user may want to know, why
(`SkippedFile`). Paths the user asked to leave out are pruned silently (a folder is never entered):

- ignore files: `.gitignore` and `.agentlsignore` in every directory (gitignore syntax: negations,
  anchored patterns, directory patterns, `**`), each evaluated relative to the directory that holds it;
  deeper directories take precedence over shallower ones, as in git. `.gitignore` files are honoured
  even when the workspace is not a git repository (a copied tree keeps its intent). When the workspace
  root lies inside a git repository, the ignore files of its parent directories up to the repository
  root and the repository's `info/exclude` apply too, unless they would ignore the workspace root
  itself (the user opened that folder on purpose). The user's global git excludes file is not read: it
  belongs to one machine, and the index should not change with it.
- `.agentlsignore` files leave out more than git does: their `!pattern` re-includes what another
  `.agentlsignore` left out, never what git ignores (`.gitignore`, `info/exclude`). Such a file is
  usually committed, so it comes with the repository; git ignores the local files a checkout gains
  (a settings file with the user's keys), and a repository must not be able to put those in the index.
  A refused re-include is reported by every walk (`SkipReason.IGNORED`, saying which files and how to
  index it) and logged once per process.
- `settings.exclude`: gitignore-style patterns relative to the workspace root, with the highest
  precedence: its `!pattern` re-includes what git ignores. It comes from the user's own settings, or
  from a workspace's file only once the user trusted its re-includes (`server.settings_trust`).
- built-in ignores, which no pattern can re-include: version-control and tool folders
  (`BUILTIN_IGNORED_NAMES`), `*.egg-info` folders, `*.pyc` / `*.pyo`, and any directory holding
  `pyvenv.cfg` or `conda-meta` (a virtual environment, whatever its name). A folder named `venv` is
  *not* ignored by name: that would drop real source packages (CPython's `Lib/venv`); virtual
  environments are recognised by their marker file instead. Any directory holding a valid
  `CACHEDIR.TAG` (`indexing.paths`) is a cache: agentls' own index and cache folders when they lie
  inside the workspace, Cargo's `target`, tools' caches. `.vscode` is ignored: it is editor state, and
  some of its files (`sftp.json`) hold passwords.

Git's rule that a file inside an ignored directory cannot be re-included follows from pruning: an
ignored directory is never entered.

Symbolic links: a link to a file inside the workspace is followed (the entry keeps the link's path); a
link to a directory inside the workspace is followed unless it points back to a directory being walked
(a loop); a link resolving outside the workspace is reported as `SYMLINK_ESCAPE` and never read.

`load_source` reads one listed file once and decides whether its text is worth indexing (binary,
generated and minified files are skipped; `decode_source` decides the same for bytes already read).
`check_path` applies the walker's rules to a single path, for re-indexing one file on save without
walking the tree.
"""

from __future__ import annotations

import codecs
import importlib
import json
import logging
import os
import re
import stat as stat_module
import time
import zlib
from collections.abc import Collection, Container, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from pathspec import GitIgnoreSpec

from indexing.models import FileRecord, ParseLimits, SkippedFile, SkipReason, content_hash
from indexing.paths import CACHEDIR_TAG, is_tagged_cache
from indexing.policy import (
    BUILTIN_IGNORED_NAMES,
    BUILTIN_IGNORED_SUFFIXES,
    IGNORE_FILE_NAMES,
    is_secret_path,
)

if TYPE_CHECKING:  # parser processes import this module but never pydantic (see ParseLimits)
    from indexing.config import IndexSettings

__all__ = [
    "BUILTIN_IGNORED_NAMES",
    "GENERATED_FILE_NAMES",
    "IGNORE_FILE_NAMES",
    "FileEntry",
    "SourceFile",
    "WalkSnapshot",
    "WorkspaceError",
    "check_path",
    "decode_source",
    "explain_ignored",
    "is_secret_path",
    "load_source",
    "walk",
]

logger = logging.getLogger(__name__)

_VENV_MARKERS: tuple[str, ...] = ("pyvenv.cfg", "conda-meta")

GENERATED_FILE_NAMES: frozenset[str] = frozenset(
    {
        "package-lock.json",
        "npm-shrinkwrap.json",
        "yarn.lock",
        "pnpm-lock.yaml",
        "bun.lockb",
        "Cargo.lock",
        "poetry.lock",
        "uv.lock",
        "Pipfile.lock",
        "pdm.lock",
        "composer.lock",
        "Gemfile.lock",
        "go.sum",
        "flake.lock",
        "packages.lock.json",
        "Package.resolved",
        "pubspec.lock",
        "mix.lock",
    }
)
"""Lockfiles and other files written by tools, skipped as generated by name."""

_GENERATED_SUFFIXES: tuple[str, ...] = (".min.js", ".min.mjs", ".min.css", ".map")
# Looked for in the first lines only; a marker further down is usually a mention, not a header.
_GENERATED_MARKER = re.compile(
    r"@generated\b|\bDO NOT EDIT\b|\bauto-?generated\b|\bautomatically generated\b", re.IGNORECASE
)
_MARKER_LINES = 5
_BINARY_SNIFF_BYTES = 8192
_BINARY_CONTROL_SHARE = 0.30
# not UTF-8, and more than this many and this share of the first characters invalid: binary
_BINARY_MIN_INVALID = 4
_BINARY_INVALID_SHARE = 0.10
# Control bytes that ordinary text contains: backspace, tab, newline, form feed, carriage return, escape.
_TEXT_CONTROL_BYTES = b"\b\t\n\f\r\x1b"
_CONTROL_BYTES = bytes(b for b in [*range(32), 127] if b not in _TEXT_CONTROL_BYTES)


class WorkspaceError(Exception):
    """The workspace root cannot be walked; the message says what to do."""


@dataclass(frozen=True, slots=True)
class FileEntry:
    """A file the walker lists for indexing. `size` and `mtime_ns` come from `stat` at walk time."""

    path: str  # workspace-relative POSIX path
    abs_path: str  # a str, not a Path: building 80,000 Path objects was a third of a kernel walk
    size: int
    mtime_ns: int


def changed_entries(entries: Iterable[FileEntry], records: Mapping[str, FileRecord]) -> list[FileEntry]:
    """The entries that are new, or whose size or modification time differ from the index's record of
    them: what an incremental run reads again (the content hash then tells a touched file from an edit)."""
    return [
        e
        for e in entries
        if (rec := records.get(e.path)) is None or rec.size != e.size or rec.mtime_ns != e.mtime_ns
    ]


@dataclass(frozen=True, slots=True)
class SourceFile:
    """The text of one file, read once. `hash` is `content_hash` of the raw bytes on disk.

    `text` is decoded as UTF-8 with the BOM stripped; undecodable bytes become U+FFFD so line numbers
    still match the file (`data_had_invalid_utf8` says it happened).
    """

    path: str
    text: str
    hash: str
    size: int
    mtime_ns: int
    language: str | None
    data_had_invalid_utf8: bool


# --------------------------------------------------------------------------------------------------
# Ignore rules


_DIR_MARK_GROUP = "(?P<ps_d>"
_ANY_DIR = "^(?:.+/)?"  # how pathspec starts a pattern without a slash: "at any depth"


class _AnyPattern:
    """Whether any of an ignore file's patterns matches a path, in one or two regex calls.

    The walker asks every ignore layer above a path about it, and most paths match none of a layer's
    patterns; pathspec tries each pattern's expression in turn (on the kernel's 78,000 files, 9 million
    matches and most of the walk). Here the patterns are combined into two expressions: the anchored ones,
    and the "at any depth" ones (``*.o``, ``build/``) without their ``(?:.+/)?`` prefix, which are tried
    at the start of the path and after each slash (backtracking over that prefix for every pattern cost
    more than the patterns themselves). A path no pattern matches is answered here; otherwise pathspec
    decides (negations, directory patterns, order), so the verdict is exactly pathspec's.
    """

    __slots__ = ("_anchored", "_any_depth", "_anywhere")

    def __init__(
        self,
        anchored: re.Pattern[str] | None,
        any_depth: re.Pattern[str] | None,
        anywhere: re.Pattern[str] | None,
    ) -> None:
        self._anchored = anchored
        self._any_depth = any_depth
        self._anywhere = anywhere  # expressions without "^" (pathspec writes "**" as "."): searched

    @classmethod
    def of(cls, spec: GitIgnoreSpec) -> _AnyPattern | None:
        """None when the patterns cannot be combined (then every path goes to pathspec)."""
        anchored: list[str] = []
        any_depth: list[str] = []
        anywhere: list[str] = []
        for pattern in spec.patterns:
            if pattern.include is None:
                continue
            regex = getattr(pattern, "regex", None)
            if regex is None:
                return None
            text = regex.pattern.replace(_DIR_MARK_GROUP, "(?:")
            if not text.startswith("^"):
                anywhere.append(text)
            elif text.startswith(_ANY_DIR):
                any_depth.append(text[len(_ANY_DIR) :])
            else:
                anchored.append(text[1:])
        try:
            return cls(_combined(anchored), _combined(any_depth), _combined(anywhere))
        except re.error:
            return None

    def matches(self, path: str) -> bool:
        if self._anywhere is not None and self._anywhere.search(path) is not None:
            return True
        if self._anchored is not None and self._anchored.match(path) is not None:
            return True
        match = self._any_depth.match if self._any_depth is not None else None
        if match is None:
            return False
        at = 0
        while True:
            if match(path, at) is not None:
                return True
            at = path.find("/", at) + 1
            if at <= 0:
                return False


def _combined(parts: list[str]) -> re.Pattern[str] | None:
    return re.compile("(?:" + "|".join(f"(?:{part})" for part in parts) + ")") if parts else None


@dataclass(frozen=True, slots=True)
class _Layer:
    """One ignore file (or the exclude setting): patterns relative to the directory that holds it.

    A workspace-relative path `p` is tested as `prepend + p[len(strip):]`: `strip` is the holding
    directory's workspace-relative prefix (nested files); `prepend` is the workspace root's path below
    the holding directory (ignore files in parent directories of the root). `source` names the ignore
    file (or setting) the patterns come from, for messages.
    """

    spec: GitIgnoreSpec
    strip: str = ""
    prepend: str = ""
    source: str = ""
    any_match: _AnyPattern | None = None
    own_from: int | None = None
    """The index in ``spec.patterns`` where the patterns of a `.agentlsignore` start (after those of the
    `.gitignore` beside it); None: no `.agentlsignore` (`_Rules.ignored`)."""
    own_source: str = ""  # how messages name that `.agentlsignore`

    @classmethod
    def of(
        cls,
        lines: Sequence[str],
        *,
        strip: str = "",
        prepend: str = "",
        source: str = "",
        own: Sequence[str] = (),
        own_source: str = "",
    ) -> _Layer:
        """The layer of `lines` (git's: a `.gitignore`, `info/exclude`, the exclude setting; named `source`)
        then `own` (a `.agentlsignore`'s, named `own_source`), in one spec: the last pattern matching a path
        decides, as in one file."""
        spec = GitIgnoreSpec.from_lines(lines)
        own_from = None
        if own:
            own_from = len(spec.patterns)
            spec = GitIgnoreSpec([*spec.patterns, *GitIgnoreSpec.from_lines(own).patterns])
        return cls(spec, strip, prepend, source, _AnyPattern.of(spec), own_from, own_source)

    def source_of(self, rel: str) -> str:
        """The name of the ignore file whose pattern decides about ``rel``."""
        return self.own_source if self.decided_by_own(rel) else self.source

    def check(self, rel: str) -> bool | None:
        """True: ignored; False: re-included by a negation; None: no pattern matched."""
        path = self.prepend + rel[len(self.strip) :]
        if self.any_match is not None and not self.any_match.matches(path):
            return None
        return self.spec.check_file(path).include

    def deciding_pattern(self, rel: str, *, git: bool = False) -> str:
        """The pattern that decides about ``rel`` (as written in the file), or "" when none does. `git`: of
        git's patterns alone (those before `own_from`)."""
        spec = self.git_spec() if git else self.spec
        result = spec.check_file(self.prepend + rel[len(self.strip) :])
        if result.index is None:
            return ""
        pattern = spec.patterns[result.index]
        return str(getattr(pattern, "pattern", "") or "")

    def decided_by_own(self, rel: str) -> bool:
        """Whether a `.agentlsignore` pattern decides about ``rel`` (rather than one of git's)."""
        if self.own_from is None:
            return False
        index = self.spec.check_file(self.prepend + rel[len(self.strip) :]).index
        return index is not None and index >= self.own_from

    def git_spec(self) -> GitIgnoreSpec:
        """The layer's patterns without those of its `.agentlsignore`."""
        return self.spec if self.own_from is None else GitIgnoreSpec(self.spec.patterns[: self.own_from])

    def git_check(self, rel: str) -> bool | None:
        """`check` by git's patterns alone."""
        if self.own_from is None:
            return self.check(rel)
        return self.git_spec().check_file(self.prepend + rel[len(self.strip) :]).include


class _Rules:
    """Ignore layers in increasing precedence, plus the exclude setting which outranks them all.

    A `.agentlsignore`'s ``!pattern`` that decides to keep a path is checked against git's patterns alone
    (every layer without its `.agentlsignore`): when they ignore the path, it stays out, and `ignored` says
    why. A repository could otherwise ship one that re-includes the local files its `.gitignore` keeps out
    of git (a settings file with the user's keys). Only the exclude setting re-includes what git ignores,
    from the user's own settings or a workspace's file the user trusted (`server.settings_trust`). Only a
    path a `.agentlsignore` re-includes costs more than one pattern check per layer.

    A directory's own ignore files are read and compiled only when a path is first checked against them
    (a walk that reuses a directory's listing from a `WalkSnapshot` never checks one: compiling the
    kernel's 306 `.gitignore` files cost about 2 s). ``stamp`` identifies the ignore files in effect
    (paths, sizes, mtimes), which is how a snapshot knows a listing is still valid.
    """

    __slots__ = ("_layers", "_parent", "_pending", "exclude", "stamp")

    def __init__(
        self,
        layers: tuple[_Layer, ...],
        exclude: _Layer | None,
        stamp: str = "",
        parent: _Rules | None = None,
        pending: tuple[str, str, frozenset[str]] | None = None,
    ) -> None:
        self._layers = layers
        self.exclude = exclude
        self.stamp = stamp
        self._parent = parent
        self._pending = pending  # (dir_path, rel_prefix, ignore file names) not read yet

    @property
    def layers(self) -> tuple[_Layer, ...]:
        if self._pending is not None and self._parent is not None:
            dir_path, rel_prefix, names = self._pending
            base = self._parent.layers
            layer = _ignore_layer(dir_path, names, rel_prefix, strip=rel_prefix)
            self._layers = (*base, layer) if layer is not None else base
            self._pending = self._parent = None
        return self._layers

    def ignored(self, rel: str, is_dir: bool) -> bool | str:
        """True: left out; False: kept; a message (truthy): left out though a `.agentlsignore` re-includes
        it, because git ignores it (the message says which files and how to index it)."""
        candidate = rel + "/" if is_dir else rel
        if self.exclude is not None:
            verdict = self.exclude.check(candidate)
            if verdict is not None:
                return verdict
        layers = self.layers
        for layer in reversed(layers):
            verdict = layer.check(candidate)
            if verdict is None:
                continue
            if verdict is False and layer.own_from is not None and layer.decided_by_own(candidate):
                git = next((g for g in reversed(layers) if g.git_check(candidate) is not None), None)
                if git is not None and git.git_check(candidate):
                    return _refused_reinclude(candidate, git, layer)
            return verdict
        return False

    def entering(self, dir_path: str, rel_prefix: str, names: Container[str]) -> _Rules:
        """Rules inside a directory: its own ignore files, if it has any, become the top layer."""
        present = frozenset(name for name in IGNORE_FILE_NAMES if name in names)
        if not present:
            return self
        stamp = self.stamp + "|" + _file_stamps(os.path.join(dir_path, name) for name in sorted(present))
        return _Rules((), self.exclude, stamp, self, (dir_path, rel_prefix, present))


def _file_stamps(paths: Iterable[str]) -> str:
    """Size and mtime of each file ("-" when missing): what a snapshot compares to see a change."""
    stamps: list[str] = []
    for path in paths:
        try:
            info = os.stat(path)
            stamps.append(f"{path}:{info.st_size}:{info.st_mtime_ns}")
        except OSError:
            stamps.append(f"{path}:-")
    return ";".join(stamps)


def _refused_reinclude(candidate: str, git: _Layer, own: _Layer) -> str:
    """Why `candidate` stays out though the `.agentlsignore` of the layer `own` re-includes it: git's
    patterns of the layer `git` ignore it. Says how to index it anyway (the exclude setting, which the
    user's own settings hold or the user trusts in a workspace's file)."""
    return (
        f"{git.source} ignores it ({git.deciding_pattern(candidate, git=True)!r}) and the "
        f"{own.deciding_pattern(candidate)!r} of {own.own_source} does not re-include what git ignores; to "
        f'index it, add "!/{candidate}" to `exclude` in the [index] section of your own settings file or of '
        "the workspace's agentls.toml (applied once you trust it: `agentls settings --trust`)"
    )


def _ignore_layer(
    dir_path: str, names: Container[str] | None, where: str, *, strip: str = "", prepend: str = ""
) -> _Layer | None:
    """The layer of one directory's ignore files (`IGNORE_FILE_NAMES` among `names`; None: look for each):
    its `.gitignore`, then its `.agentlsignore` (`_Layer.own_from`); None when they hold no line. `where`
    goes before a file's name in messages (workspace-relative when inside the workspace)."""
    git_name, own_name = IGNORE_FILE_NAMES
    read = {
        name: _read_ignore_file(os.path.join(dir_path, name)) if names is None or name in names else []
        for name in IGNORE_FILE_NAMES
    }
    git, own = read[git_name], read[own_name]
    if not git and not own:
        return None
    source, own_source = where + git_name, where + own_name
    return _Layer.of(git, strip=strip, prepend=prepend, source=source, own=own, own_source=own_source)


def _read_ignore_file(path: str) -> list[str]:
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        return []
    except OSError as exc:  # a directory named .gitignore, permissions: the walk goes on without it
        logger.warning("cannot read %s: %s", path, exc)
        return []
    return data.decode("utf-8", errors="replace").splitlines()


def _git_common_dir(repo: Path) -> Path | None:
    """The directory holding `info/exclude` for the repository at `repo` (worktrees share it)."""
    dot_git = repo / ".git"
    if dot_git.is_dir():
        return dot_git
    try:
        content = dot_git.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    if not content.startswith("gitdir:"):
        return None
    git_dir = (repo / content.removeprefix("gitdir:").strip()).resolve()
    try:
        common = (git_dir / "commondir").read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return git_dir
    return (git_dir / common).resolve()


def _repository_layers(root: Path) -> list[_Layer]:
    """Layers from `.git/info/exclude` and from ignore files in the parent directories of `root`.

    `root` must be resolved. Returns [] when `root` is not inside a git repository.
    """
    repo: Path | None = None
    for candidate in (root, *root.parents):
        if os.path.lexists(candidate / ".git"):
            repo = candidate
            break
    if repo is None:
        return []
    layers: list[_Layer] = []
    common = _git_common_dir(repo)
    if common is not None:
        try:
            exclude_lines = (common / "info" / "exclude").read_text(encoding="utf-8", errors="replace")
        except OSError:
            exclude_lines = ""
        if exclude_lines.strip():
            root_below_repo = root.relative_to(repo).as_posix()
            prepend = "" if root_below_repo == "." else root_below_repo + "/"
            source = str(common / "info" / "exclude")
            layers.append(_Layer.of(exclude_lines.splitlines(), prepend=prepend, source=source))
    if repo == root:
        return layers
    parent_layers: list[_Layer] = []
    for directory in reversed(root.parents):
        if directory != repo and repo not in directory.parents:
            continue
        prepend = root.relative_to(directory).as_posix() + "/"
        layer = _ignore_layer(str(directory), None, str(directory).rstrip("/") + "/", prepend=prepend)
        if layer is not None:
            parent_layers.append(layer)
    if parent_layers and _ignores_root(layers + parent_layers):
        # A dotfiles repository in $HOME often ignores "*"; the user opened this folder on purpose.
        logger.info("ignore files above %s would ignore the workspace itself; not applying them", root)
        return []
    return layers + parent_layers


def _ignores_root(layers: Sequence[_Layer]) -> bool:
    """Whether the parent-directory layers ignore the workspace root or one of its ancestors."""
    for layer in layers:
        below = layer.prepend.rstrip("/").split("/") if layer.prepend else []
        for depth in range(1, len(below) + 1):
            if layer.spec.check_file("/".join(below[:depth]) + "/").include:
                return True
    return False


def _build_rules(root: Path, settings: IndexSettings) -> _Rules:
    exclude = _Layer.of(settings.exclude, source="the exclude setting") if settings.exclude else None
    layers = _repository_layers(root)
    # The files above the root that may hold rules; the snapshot compares them, present or not.
    above = [os.path.join(str(d), n) for d in (root, *root.parents) for n in IGNORE_FILE_NAMES]
    repo = next((d for d in (root, *root.parents) if os.path.lexists(d / ".git")), None)
    common = _git_common_dir(repo) if repo is not None else None
    if common is not None:
        above.append(str(common / "info" / "exclude"))
    stamp = json.dumps([list(settings.exclude), _file_stamps(above)])
    return _Rules(tuple(layers), exclude, stamp)


def _builtin_ignored(name: str) -> bool:
    return name in BUILTIN_IGNORED_NAMES or name.endswith(BUILTIN_IGNORED_SUFFIXES)


def _pruned(dir_path: str, names: set[str]) -> bool:
    """A folder never entered: a virtual environment (by its marker file), or a folder tagged as a cache
    (``CACHEDIR.TAG``: agentls' own index and cache folders, Cargo's ``target``, tools' caches)."""
    if any(marker in names for marker in _VENV_MARKERS):
        return True
    return CACHEDIR_TAG in names and is_tagged_cache(dir_path)


# --------------------------------------------------------------------------------------------------
# Snapshots of directory listings

_SNAPSHOT_VERSION = 2  # 2: a `.agentlsignore` no longer re-includes what git ignores
_SECRET_MARK = "\0"  # before a file name in a listing: a secret file (no file name holds a NUL)
_RACY_NS = 2_000_000_000  # a folder changed this recently may change again within its mtime's tick


@dataclass(frozen=True, slots=True)
class _Listing:
    mtime_ns: int
    stamp: str  # `_Rules.stamp` inside the folder
    ignore_files: tuple[str, ...]
    keys: tuple[str, ...]  # names that passed the rules, folders with a trailing "/", in walk order


class WalkSnapshot:
    """The listings of the folders of a walk, to make the next walk of an unchanged tree cheap.

    A folder's listing (the names that pass the ignore rules) can only change when an entry is added,
    removed or renamed (its mtime changes), or when an ignore file in effect changes (the rules' stamp
    changes). Reusing it skips listing the folder and evaluating rules; the files are still stat'ed, so
    an edited file is seen. Folders holding symbolic links or special files, and folders changed in the
    last 2 seconds (their mtime may not move again within the same tick), are always listed afresh.

    ``load`` returns an empty snapshot when the file is missing or written for other settings; ``save``
    writes what the last walk recorded. Used by full index runs and the change scan (`indexing.state`); an
    unchanged kernel tree (83,000 files) is walked in a quarter of the time (0.65 s against 2.7 s).
    """

    def __init__(self, key: str, listings: dict[str, _Listing] | None = None) -> None:
        self.key = key
        self._old = listings or {}
        self._new: dict[str, _Listing] = {}

    @staticmethod
    def key_for(settings: IndexSettings) -> str:
        return json.dumps([_SNAPSHOT_VERSION, sorted(BUILTIN_IGNORED_NAMES), list(settings.exclude)])

    @classmethod
    def load(cls, path: Path, settings: IndexSettings) -> WalkSnapshot:
        key = cls.key_for(settings)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("key") != key:
                return cls(key)
            listings = {
                rel: _Listing(int(m), str(st), tuple(ig), tuple(keys))
                for rel, (m, st, ig, keys) in data["folders"].items()
            }
        except (OSError, ValueError, KeyError, TypeError):
            return cls(key)
        return cls(key, listings)

    def save(self, path: Path) -> None:
        folders = {
            rel: [x.mtime_ns, x.stamp, list(x.ignore_files), list(x.keys)] for rel, x in self._new.items()
        }
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # a scan's caller saves outside the lock
        tmp.write_text(json.dumps({"key": self.key, "folders": folders}), encoding="utf-8")
        os.replace(tmp, path)

    def __len__(self) -> int:
        return len(self._new)

    def valid_listing(self, dir_path: str, rel_prefix: str, rules: _Rules) -> _Listing | None:
        listing = self._old.get(rel_prefix)
        if listing is None:
            return None
        try:
            mtime_ns = os.stat(dir_path).st_mtime_ns
        except OSError:
            return None
        if mtime_ns != listing.mtime_ns:
            return None
        if rules.entering(dir_path, rel_prefix, listing.ignore_files).stamp != listing.stamp:
            return None
        self._new[rel_prefix] = listing
        return listing

    def record(
        self,
        context: _Walk,
        dir_path: str,
        rel_prefix: str,
        stamp: str,
        ignore_files: tuple[str, ...],
        keys: list[str],
    ) -> None:
        try:
            mtime_ns = os.stat(dir_path).st_mtime_ns
        except OSError:
            return
        if context.started_ns - mtime_ns < _RACY_NS:
            return
        self._new[rel_prefix] = _Listing(mtime_ns, stamp, ignore_files, tuple(keys))


# --------------------------------------------------------------------------------------------------
# Walking


def resolve_root(root: Path) -> Path:
    """The workspace root, resolved; `WorkspaceError` saying what to do when it is missing or a file."""
    root = Path(root).expanduser()
    if not root.exists():
        raise WorkspaceError(
            f"workspace root {str(root)!r} does not exist; open an existing folder or pass its path"
        )
    if not root.is_dir():
        raise WorkspaceError(
            f"workspace root {str(root)!r} is a file, not a folder; open the folder that contains it"
        )
    return root.resolve()


@dataclass(frozen=True, slots=True)
class _Walk:
    """What stays fixed during one walk."""

    root_real: str
    settings: IndexSettings
    only_files: frozenset[str] | None = None  # restrict to these paths (and the folders leading there)
    only_dirs: frozenset[str] | None = None
    snapshot: WalkSnapshot | None = None
    started_ns: int = 0
    part: tuple[int, int] | None = None  # (k, n): only paths whose `part_of` is k
    only_trees: frozenset[str] = frozenset()  # "rel/" of the folders in `only` walked whole

    def wanted(self, rel: str, is_dir: bool) -> bool:
        if self.part is not None and not self._in_part(rel, is_dir):
            return False
        if self.only_files is None or self.only_dirs is None:
            return True
        if rel + "/" in self.only_dirs if is_dir else rel in self.only_files:
            return True
        return bool(self.only_trees) and self._in_tree(rel, is_dir)

    def _in_tree(self, rel: str, is_dir: bool) -> bool:
        """Whether `rel` is one of `only_trees` or lies inside one."""
        trees = self.only_trees
        if is_dir and rel + "/" in trees:
            return True
        return any(char == "/" and rel[: index + 1] in trees for index, char in enumerate(rel))

    def _in_part(self, rel: str, is_dir: bool) -> bool:
        assert self.part is not None
        k, n = self.part
        return (is_dir and "/" not in rel) or part_of(rel, n) == k  # top-level folders: every part


def walk(
    root: Path,
    settings: IndexSettings,
    *,
    only: Collection[str] | None = None,
    whole_folders: bool = False,
    snapshot: WalkSnapshot | None = None,
    part: tuple[int, int] | None = None,
) -> Iterator[FileEntry | SkippedFile]:
    """List the workspace's indexable files in sorted path order, and the files skipped with a reason.

    `only`: workspace-relative POSIX paths to restrict the walk to (for re-indexing a few files on save):
    only the folders leading to them are listed, and the same rules apply as in a full walk. A path
    that is ignored or missing yields nothing, and so does a folder unless `whole_folders`: then a
    folder of `only` is walked whole (a folder moved or copied in, of which editors report only the
    folder).

    `snapshot`: the directory listings of the previous walk (see `WalkSnapshot`); a directory whose
    mtime and ignore files are unchanged is not listed again and its ignore rules are not evaluated:
    only its files are stat'ed. The snapshot records this walk's listings as it goes.

    `part`: ``(k, n)`` walks only the k-th of n disjoint parts of the tree (see `part_of`), so n walkers
    (`indexing.distributed`) list the whole tree between them, each with the same rules as a full walk.

    Raises `WorkspaceError` at once (not on first iteration) when `root` is missing, not a folder, or
    cannot be listed.
    """
    real_root = resolve_root(root)
    try:
        with os.scandir(real_root) as scan:
            entries = list(scan)
    except OSError as exc:
        raise WorkspaceError(
            f"cannot list the workspace root {str(real_root)!r}: {exc.strerror or exc}; "
            "check the folder's permissions"
        ) from exc
    rules = _build_rules(real_root, settings)
    top = str(real_root)
    context = _Walk(top, settings, snapshot=snapshot, started_ns=time.time_ns(), part=part)
    if only is not None:
        files = frozenset(_normalise_rel(path) for path in only) - {""}
        dirs = frozenset(
            path[: index + 1] for path in files for index, char in enumerate(path) if char == "/"
        )
        trees = frozenset(path + "/" for path in files) if whole_folders else frozenset()
        context = _Walk(top, settings, files, dirs, only_trees=trees)
    return _walk_entries(context, top, top, entries, "", rules, frozenset({top}))


def part_of(rel: str, parts: int) -> int:
    """Which of ``parts`` parts of the tree a path belongs to, by its first two components (a top-level
    file by its name): every walker of a parted walk lists the top-level folders, and each descends
    only into its own second-level entries, so a tree with a few big top-level folders still splits."""
    key = "/".join(rel.split("/", 2)[:2])
    return zlib.crc32(key.encode("utf-8", "surrogateescape")) % parts


def _normalise_rel(path: str) -> str:
    parts = PurePosixPath(path.replace("\\", "/")).parts
    if not parts or parts[0] == "/" or ".." in parts:
        return ""
    return "/".join(part for part in parts if part != ".")


def _walk_dir(
    context: _Walk,
    dir_path: str,
    dir_real: str,
    rel_prefix: str,
    rules: _Rules,
    ancestors: frozenset[str],
) -> Iterator[FileEntry | SkippedFile]:
    listed = _listed(context, dir_path, rel_prefix, rules)
    if listed is None:
        yield from _walk_afresh(context, dir_path, dir_real, rel_prefix, rules, ancestors)
    else:
        inner, keys = listed
        yield from _walk_listing(context, dir_path, dir_real, rel_prefix, inner, ancestors, keys)


def _listed(
    context: _Walk, dir_path: str, rel_prefix: str, rules: _Rules
) -> tuple[_Rules, Sequence[str]] | None:
    """The rules inside a directory and its entries, from its listing in the snapshot when that is still
    valid; None when the directory must be listed afresh (`_walk_afresh`)."""
    snapshot = context.snapshot
    listing = snapshot.valid_listing(dir_path, rel_prefix, rules) if snapshot is not None else None
    if listing is None:
        return None
    return rules.entering(dir_path, rel_prefix, listing.ignore_files), listing.keys


def _walk_afresh(
    context: _Walk,
    dir_path: str,
    dir_real: str,
    rel_prefix: str,
    rules: _Rules,
    ancestors: frozenset[str],
) -> Iterator[FileEntry | SkippedFile]:
    """Walk a directory by listing it (no listing in the snapshot, or one no longer valid)."""
    try:
        with os.scandir(dir_path) as scan:
            entries = list(scan)
    except FileNotFoundError:
        yield SkippedFile(rel_prefix.rstrip("/"), SkipReason.VANISHED, "directory vanished during the walk")
        return
    except OSError as exc:
        yield SkippedFile(rel_prefix.rstrip("/"), SkipReason.UNREADABLE, f"cannot list directory: {exc}")
        return
    yield from _walk_entries(context, dir_path, dir_real, entries, rel_prefix, rules, ancestors)


_FILE, _DIR, _LINK, _OTHER = 0, 1, 2, 3

_REFUSALS_SAID: set[tuple[str, str]] = set()
"""The refused re-includes this process has logged (path, why): the language server walks again every
`server.refresh_seconds` for an editor without file watchers, and said once is enough for the log."""


def _log_refused(path: str, rel: str, why: str) -> None:
    """Log a path a `.agentlsignore` tried to re-include past git's ignores: INFO the first time this
    process meets it (with that reason), DEBUG after. The walk's `SkippedFile` says it every time."""
    key = (path, why)
    if key in _REFUSALS_SAID:
        logger.debug("%s stays out of the index: %s", rel, why)
        return
    _REFUSALS_SAID.add(key)
    logger.info("%s stays out of the index: %s", rel, why)


def _walk_entries(
    context: _Walk,
    dir_path: str,
    dir_real: str,
    entries: list[os.DirEntry[str]],
    rel_prefix: str,
    rules: _Rules,
    ancestors: frozenset[str],
) -> Iterator[FileEntry | SkippedFile]:
    names = {entry.name for entry in entries}
    ignore_files = tuple(name for name in IGNORE_FILE_NAMES if name in names)
    if rel_prefix and _pruned(dir_path, names):
        if context.snapshot is not None:
            context.snapshot.record(context, dir_path, rel_prefix, rules.stamp, ignore_files, [])
        return
    rules = rules.entering(dir_path, rel_prefix, names)
    listed: list[str] | None = [] if context.snapshot is not None and rel_prefix else None

    # Classify first: directories sort as "name/" so a depth-first walk yields paths in sorted order.
    keyed: list[tuple[str, int, os.DirEntry[str], str]] = []
    for entry in entries:
        name = entry.name
        if _builtin_ignored(name):
            continue
        target = ""
        try:
            if entry.is_symlink():
                target = os.path.realpath(entry.path)
                kind, is_dir_like = _LINK, os.path.isdir(target)
            elif entry.is_dir(follow_symlinks=False):
                kind, is_dir_like = _DIR, True
            elif entry.is_file(follow_symlinks=False):
                kind, is_dir_like = _FILE, False
            else:
                kind, is_dir_like = _OTHER, False
        except OSError:
            kind, is_dir_like = _OTHER, False
        keyed.append((name + "/" if is_dir_like else name, kind, entry, target))
    keyed.sort(key=lambda item: item[0])

    for key, kind, entry, target in keyed:
        is_dir_like = key.endswith("/")
        rel = rel_prefix + entry.name
        if not context.wanted(rel, is_dir_like):
            continue
        if not _valid_utf8(rel):
            listed = None
            if not rules.ignored(rel, is_dir_like):
                yield SkippedFile(_printable(rel), SkipReason.UNREADABLE, "file name is not valid UTF-8")
            continue
        ignored = rules.ignored(rel, is_dir_like)
        if ignored:
            if ignored is not True:  # a refused re-include: said on every walk, so never from a listing
                listed = None
                _log_refused(entry.path, rel, str(ignored))
                yield SkippedFile(rel, SkipReason.IGNORED, str(ignored))
            continue
        secret = kind == _FILE and is_secret_path(rel)
        if listed is not None:
            if kind in (_DIR, _FILE):
                listed.append(_SECRET_MARK + key if secret else key)
            else:
                listed = None  # links and special files are looked at again every walk
        if kind == _DIR:
            # dir_real is resolved and entry is not a link, so joining gives the real path without a syscall.
            real = os.path.join(dir_real, entry.name)
            yield from _walk_dir(context, entry.path, real, rel + "/", rules, ancestors | {real})
        elif kind == _FILE:
            yield _file_entry(entry.path, rel, context.settings, None, secret)
        elif kind == _LINK:
            yield from _walk_link(context, entry.path, rel, target, is_dir_like, rules, ancestors)
        else:
            yield SkippedFile(rel, SkipReason.UNREADABLE, "not a regular file")
    if listed is not None and context.snapshot is not None:
        context.snapshot.record(context, dir_path, rel_prefix, rules.stamp, ignore_files, listed)


def _walk_listing(
    context: _Walk,
    dir_path: str,
    dir_real: str,
    rel_prefix: str,
    rules: _Rules,
    ancestors: frozenset[str],
    keys: Sequence[str],
) -> Iterator[FileEntry | SkippedFile]:
    """Walk a directory from its listing in the snapshot: plain files and folders that passed the rules.

    Its folders that have a valid listing too are walked here, from a stack, rather than by nested
    generators (each of the kernel's 83,000 files passed up through every folder level, a third of an
    unchanged walk's time); a folder without one is listed afresh (`_walk_afresh`)."""
    settings = context.settings
    stack = [(_slashed(dir_path), _slashed(dir_real), rel_prefix, rules, ancestors, iter(keys))]
    while stack:
        path_prefix, real_prefix, rel_prefix, rules, ancestors, remaining = stack[-1]
        for key in remaining:
            if key.endswith("/"):
                name = key[:-1]
                real = real_prefix + name
                path = path_prefix + name
                rel = rel_prefix + key
                inner = ancestors | {real}
                listed = _listed(context, path, rel, rules)
                if listed is None:
                    yield from _walk_afresh(context, path, real, rel, rules, inner)
                    continue
                entered, inner_keys = listed
                stack.append((path + "/", real + "/", rel, entered, inner, iter(inner_keys)))
                break  # on with the folder just entered; this one's iterator resumes after it
            elif key.startswith(_SECRET_MARK):
                yield SkippedFile(rel_prefix + key[1:], SkipReason.SECRET)
            else:
                yield _file_entry(path_prefix + key, rel_prefix + key, settings, None, False)
        else:
            stack.pop()


def _slashed(path: str) -> str:
    """``path`` ready to have a name appended, as `os.path.join` would join it."""
    return path if path.endswith("/") else path + "/"


def _walk_link(
    context: _Walk,
    link_path: str,
    rel: str,
    target: str,
    is_dir: bool,
    rules: _Rules,
    ancestors: frozenset[str],
) -> Iterator[FileEntry | SkippedFile]:
    target_rel = _relative_inside(target, context.root_real)
    if target_rel is None:
        yield SkippedFile(rel, SkipReason.SYMLINK_ESCAPE, f"points to {target}")
        return
    if not os.path.exists(target):
        yield SkippedFile(rel, SkipReason.UNREADABLE, f"broken symbolic link to {target}")
        return
    if is_dir:
        if target in ancestors:
            yield SkippedFile(rel, SkipReason.UNREADABLE, "symbolic link loops back to a parent directory")
            return
        yield from _walk_dir(context, link_path, target, rel + "/", rules, ancestors | {target})
        return
    if not os.path.isfile(target):
        yield SkippedFile(rel, SkipReason.UNREADABLE, "not a regular file")
        return
    yield _file_entry(link_path, rel, context.settings, target_rel)


def _file_entry(
    abs_path: str, rel: str, settings: IndexSettings, target_rel: str | None, secret: bool | None = None
) -> FileEntry | SkippedFile:
    if secret is None:
        secret = is_secret_path(rel) or (target_rel is not None and is_secret_path(target_rel))
    if secret:
        return SkippedFile(rel, SkipReason.SECRET)
    try:
        info = os.stat(abs_path)
    except FileNotFoundError:
        return SkippedFile(rel, SkipReason.VANISHED, "removed before it could be read")
    except OSError as exc:
        return SkippedFile(rel, SkipReason.UNREADABLE, str(exc))
    if not stat_module.S_ISREG(info.st_mode):
        return SkippedFile(rel, SkipReason.UNREADABLE, "not a regular file")
    if info.st_size > settings.max_file_bytes:
        return SkippedFile(
            rel, SkipReason.TOO_LARGE, f"{info.st_size} bytes; the limit is {settings.max_file_bytes}"
        )
    return FileEntry(rel, abs_path, info.st_size, info.st_mtime_ns)


def _relative_inside(real_path: str, root_real: str) -> str | None:
    """`real_path` relative to the root as a POSIX path, or None when it lies outside."""
    if real_path == root_real:
        return ""
    prefix = root_real if root_real.endswith(os.sep) else root_real + os.sep
    if not real_path.startswith(prefix):
        return None
    return real_path[len(prefix) :].replace(os.sep, "/")


def _valid_utf8(rel: str) -> bool:
    if rel.isascii():
        return True
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes in the name, kept by os as lone surrogates
        return False
    return True


def _printable(rel: str) -> str:
    return rel.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="backslashreplace")


def explain_ignored(root: Path, settings: IndexSettings, *, share: float = 0.9) -> str:
    """A message when ignore rules leave out (nearly) everything at the top of the workspace, else "".

    Looks at the root's own entries only (cheap: no walk), hidden ones left out. When at least ``share``
    of them (and at least one) are ignored by an ignore file or the exclude setting, says which file and
    pattern ignored the most, and how to index them anyway. Debian's kernel source ships a `.gitignore`
    ending in ``/*`` (ignore everything at the top level): without this message its index was silently
    empty.
    """
    try:
        real_root = resolve_root(root)
        with os.scandir(real_root) as scan:
            listed = [(e.name, e.is_dir()) for e in scan]
    except (OSError, WorkspaceError):
        return ""
    # Hidden entries left out: `.gitignore` files re-include their dotfiles, which says nothing.
    entries = [(name, is_dir) for name, is_dir in listed if not name.startswith(".")]
    if not entries:
        return ""
    rules = _build_rules(real_root, settings).entering(str(real_root), "", {name for name, _ in listed})
    deciders: dict[tuple[str, str], int] = {}
    ignored = 0
    for name, is_dir in entries:
        candidate = name + "/" if is_dir else name
        for layer in ([rules.exclude] if rules.exclude is not None else []) + list(reversed(rules.layers)):
            verdict = layer.check(candidate)
            if verdict is None:
                continue
            if verdict:
                ignored += 1
                key = (layer.source_of(candidate) or "an ignore file", layer.deciding_pattern(candidate))
                deciders[key] = deciders.get(key, 0) + 1
            break
    if ignored < share * len(entries):
        return ""
    (source, pattern), count = max(deciders.items(), key=lambda item: item[1])
    how = (
        "remove it from the exclude setting"
        if source == "the exclude setting"
        else f"remove that line, or add {('!' + pattern)!r} to `exclude` in the [index] section of your "
        f"own settings file or of {real_root / 'agentls.toml'} (a workspace's re-include applies once you "
        "trust it: `agentls settings --trust`); a .agentlsignore does not re-include what git ignores"
    )
    return (
        f"{ignored} of the {len(entries)} entries at the top of {real_root} are ignored, {count} of them "
        f"by the pattern {pattern!r} in {source}; to index them, {how}"
    )


def check_path(root: Path, rel_path: str, settings: IndexSettings) -> FileEntry | SkippedFile | None:
    """What `walk(root, settings, only=[rel_path])` yields for one path, or None when it yields nothing.

    None means ignored, missing, a folder, or inside an ignored folder, a virtual environment or a cache. A
    `SkippedFile` may name a folder on the way that could not be listed.
    """
    return next(iter(walk(root, settings, only=[rel_path])), None)


# --------------------------------------------------------------------------------------------------
# Reading


def load_source(entry: FileEntry, settings: ParseLimits) -> SourceFile | SkippedFile:
    """Read a listed file once and return its text, or the reason it is not worth indexing.

    Skips: secret paths (checked again, since callers may build entries themselves), files that grew
    past `settings.max_file_bytes`, binary files (a NUL byte, or over 30% control bytes, in the first
    8 KiB), generated files (lockfiles and `*.min.js`/`*.min.css`/`*.map` by name; `@generated`,
    `DO NOT EDIT`, `autogenerated` in the first 5 lines; minified text whose average line is longer than
    `settings.max_line_chars` characters or with a line 20 times longer than that).
    """
    path = entry.path
    by_name = _skipped_by_name(path)
    if by_name is not None:
        return by_name
    try:
        with open(entry.abs_path, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat_module.S_ISREG(info.st_mode):
                return SkippedFile(path, SkipReason.UNREADABLE, "not a regular file")
            data = handle.read(settings.max_file_bytes + 1)
    except FileNotFoundError:
        return SkippedFile(path, SkipReason.VANISHED, "removed before it could be read")
    except PermissionError as exc:
        return SkippedFile(path, SkipReason.UNREADABLE, exc.strerror or str(exc))
    except OSError as exc:
        return SkippedFile(path, SkipReason.UNREADABLE, str(exc))
    return _decode(path, data, info.st_mtime_ns, settings)


def decode_source(path: str, data: bytes, mtime_ns: int, settings: ParseLimits) -> SourceFile | SkippedFile:
    """`load_source`'s decisions on bytes already read (from the file, or an open document's text, which
    `indexing.parsing.prepare_text` parses ahead of its save): the same skips, the same text and hash."""
    return _skipped_by_name(path) or _decode(path, data, mtime_ns, settings)


def _decode(path: str, data: bytes, mtime_ns: int, settings: ParseLimits) -> SourceFile | SkippedFile:
    """`decode_source` once the path's name was checked (`load_source` checks it before reading)."""
    if len(data) > settings.max_file_bytes:
        return SkippedFile(
            path, SkipReason.TOO_LARGE, f"grew past the limit of {settings.max_file_bytes} bytes"
        )

    binary = _binary_reason(data)
    if binary:
        return SkippedFile(path, SkipReason.BINARY, binary)

    body = data[len(codecs.BOM_UTF8) :] if data.startswith(codecs.BOM_UTF8) else data
    try:
        text = body.decode("utf-8")
        invalid = False
    except UnicodeDecodeError:
        text = body.decode("utf-8", errors="replace")
        invalid = True
        not_text = _not_text_reason(text)
        if not_text:
            return SkippedFile(path, SkipReason.BINARY, not_text)

    generated = _generated_reason(text, settings.max_line_chars)
    if generated:
        return SkippedFile(path, SkipReason.GENERATED, generated)

    return SourceFile(
        path=path,
        text=text,
        hash=content_hash(data),
        size=len(data),
        mtime_ns=mtime_ns,
        language=_detect_language(path),
        data_had_invalid_utf8=invalid,
    )


def _skipped_by_name(path: str) -> SkippedFile | None:
    """Secret paths (checked again, since callers may build entries themselves) and generated files
    known by name: never read."""
    if is_secret_path(path):
        return SkippedFile(path, SkipReason.SECRET)
    name = path.rsplit("/", 1)[-1]
    if name in GENERATED_FILE_NAMES or name.lower().endswith(_GENERATED_SUFFIXES):
        return SkippedFile(path, SkipReason.GENERATED, "lockfile, minified bundle or source map")
    return None


def _binary_reason(data: bytes) -> str:
    head = data[:_BINARY_SNIFF_BYTES]
    if not head:
        return ""
    if b"\0" in head:
        return "contains NUL bytes"
    control = len(head) - len(head.translate(None, _CONTROL_BYTES))
    if control / len(head) > _BINARY_CONTROL_SHARE:
        return f"{control} of the first {len(head)} bytes are control bytes"
    return ""


def _not_text_reason(text: str) -> str:
    """Why a file that is not valid UTF-8 is binary after all (random bytes, a key, compressed data
    hold no NUL byte often enough): many of its characters are invalid. A text in another encoding (a
    Latin-1 comment) has a few."""
    head = text[:_BINARY_SNIFF_BYTES]
    invalid = head.count("\ufffd")
    if invalid > _BINARY_MIN_INVALID and invalid / len(head) > _BINARY_INVALID_SHARE:
        return f"{invalid} of the first {len(head)} characters are not valid UTF-8"
    return ""


def _generated_reason(text: str, max_line_chars: int) -> str:
    head = text.split("\n", _MARKER_LINES)[:_MARKER_LINES]
    for line in head:
        match = _GENERATED_MARKER.search(line)
        if match:
            return f"marked {match.group(0)!r} near the top"
    if not text:
        return ""
    line_count = text.count("\n") + (0 if text.endswith("\n") else 1)
    average = len(text) / line_count
    if average > max_line_chars:
        return f"minified: lines average {average:.0f} characters"
    longest_allowed = 20 * max_line_chars
    if len(text) > longest_allowed and _may_have_line_over(text, longest_allowed):
        longest = max(len(line) for line in text.split("\n"))
        if longest > longest_allowed:
            return f"minified: a line of {longest} characters"
    return ""


def _may_have_line_over(text: str, limit: int) -> bool:
    """False when no line of `text` is longer than `limit` characters. Such a line holds `limit` + 1
    characters without a line break, so it covers a whole aligned block of half that many: a text in
    which every block holds a line break has none. One bounded `find` per block (about 20,000 characters)
    instead of splitting the text into lines, which cost a fifth of the parse on the kernel's C files."""
    block = (limit + 1) // 2
    return any(text.find("\n", start, start + block) < 0 for start in range(0, len(text) - block + 1, block))


def _detect_language(path: str) -> str | None:
    # Imported lazily: the language table is optional for walking, and importing it may load grammars.
    try:
        languages = importlib.import_module("indexing.languages")
    except ImportError:
        return None
    detect = getattr(languages, "detect_language", None)
    if detect is None:
        return None
    language = detect(path)
    return language if isinstance(language, str) else None
