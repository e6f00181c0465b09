"""The workspace as the server sees it: its folders, their layered settings, and where changes go.

`Folders` holds the workspace folders (from ``initialize``, then ``didChangeWorkspaceFolders``), the
settings layers the editor sent (``initializationOptions`` and the pushed or pulled ``agentls`` section)
and each folder's resolved `Settings` (`server.features.configuration.resolve`: built-in defaults,
user file, workspace files, then the editor's layers). The first folder's settings are the server's
own (log level, loop monitor, file size limit).

A folder that is the home folder, ``/`` or the temporary folder (`indexing.paths.too_broad`) is *held
back* (`Folders.held`, decided by `hold_reason`, which ``agentls acp`` asks too) while it has no index and
``server.index_home_or_root`` is off, as the command line refuses it (`server.cli.support`): indexing it
would read every project and file there, and a run would work on all of them. A held folder keeps its
settings, but it is not indexed, searched, or offered agent actions (`Folders.active`, `Folders.locate`),
nor watched but for its settings files, whose change may allow it (`Folders.watchers`);
`Folders.held_back` says why and how to allow it.

`Folders.route` decides what a batch of changed files means, without doing it: files to re-index per
folder, folders to re-index in full (an ignore file changed), and whether settings must be read again
(``agentls.toml`` or ``pyproject.toml`` changed). Paths under skipped folders (`.git`, `node_modules`...)
and outside every folder are dropped. A file in a folder that lies inside another workspace folder (a
monorepo opened beside one of its packages) goes to both: the outer folder's index holds the inner one's
files too, and a run in the outer folder searches its own index alone, so it must not go stale. The
server acts on the `ChangeRoute`.

A folder is inside another also when one of them was opened through a symbolic link (the monorepo as
``~/mono``, a link to ``/src/mono``, and its package as ``/src/mono/packages/billing``): folders are
compared with their links resolved (`server.documents.nesting`, once per change of folders), and a file
belongs to the inner one whichever folder's path the client names it by (`Folders.locate`). Files keep
the paths the client gives: each folder gets the file's path in it as the client's path has it. A link
inside a monorepo to one of its packages (``repo/link-a`` -> ``pkgs/a``), opened beside it, is inside it
at both paths: ``repo/pkgs/a/x.py`` is the inner folder's ``x.py`` too, and a change there reaches both
of the outer index's copies.

A folder's link may be retargeted while the server runs (``ws`` -> ``a``, then ``b``: a ``current``
link of releases, a worktree switcher). `Folders.relinked` says which folders lead elsewhere now; the
server asks it at a document's open and save, searches, runs and refreshes, and at most once a second
while the user types, and then treats the folder as a server started now would: its settings files are
read again and it is indexed where it leads (the index location follows the real path), under the
link's path.

The same folder may be opened twice under two paths (``/w/link`` -> ``/w/repo`` beside ``/w/repo``):
both are folders here, each served under its own path; they share one index, which one job keeps up to
date while either is open (`server.features.indexing.BackgroundIndexer.configure`). A path named twice
as written (the same URI again, or added while open) is one folder: removing it removes it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsprotocol import types

from indexing.paths import cache_dir as default_cache_dir
from indexing.paths import default_index_location, too_broad
from indexing.policy import IGNORE_FILE_NAMES, SKIPPED_DIRS
from server.documents import Nesting, locate, nesting, real_path, uri_to_path
from server.features.configuration import client_layer, resolve
from server.settings import LoadedSettings, Settings
from server.settings_files import IndexingSettings

__all__ = [
    "SETTINGS_FILES",
    "ChangeRoute",
    "Folders",
    "glob_literal",
    "held_message",
    "hold_reason",
    "roots_of",
]

log = logging.getLogger(__name__)

SETTINGS_FILES = frozenset({"agentls.toml", "pyproject.toml"})


def roots_of(params: types.InitializeParams, unusable: list[str] | None = None) -> list[Path]:
    """The workspace folders ``initialize`` names (its folders, else its root URI, else its root path);
    the URIs that name no local folder are added to ``unusable``."""
    uris: list[str] = [f.uri for f in params.workspace_folders or []]
    if not uris and params.root_uri:
        uris = [params.root_uri]
    roots: list[Path] = []
    for uri in uris:
        path = uri_to_path(uri)
        if path is None:
            log.warning("workspace folder %s is not a file: URI; agentls cannot index it", uri)
            if unusable is not None:
                unusable.append(uri)
            continue
        if path not in roots:
            roots.append(path)
    if not roots and params.root_path:
        roots.append(Path(params.root_path))
    return roots


def held_message(
    root: Path, what: str, *, instead: str = "Open a project folder instead", settings_in: str = ""
) -> str:
    """What the user is told about a workspace folder held back because it is `what` ("your home
    folder"), and how to have it indexed anyway. ``instead``: what to do rather; ``settings_in``: where
    the setting goes (the editor's settings or the folder's ``agentls.toml``, by default)."""
    where = settings_in or f"the editor's agentls settings or {root / 'agentls.toml'}"
    return (
        f"agentls does not index {root}: it is {what}, and indexing it would read every project and file "
        f"in it. {instead}; or, to index it anyway, set `server.index_home_or_root = true` (in {where}) "
        f"or index it once with `agentls index {root}`. Until then, search and the agent's actions are off "
        "there."
    )


def hold_reason(root: Path, settings: IndexingSettings, env: Mapping[str, str], cache_dir: Path) -> str:
    """What `root` is ("your home folder") when agentls must hold it back: the home folder, ``/`` or the
    temporary folder (by its real path) with no index yet and ``server.index_home_or_root`` off in its
    `settings`; "" when agentls may work there. The language server (`Folders.held`) and ``agentls acp``
    ask this."""
    what = too_broad(real_path(root), env)
    if not what or settings.server.index_home_or_root:
        return ""
    index = settings.index
    location = Path(index.uri) if index.uri else default_index_location(root, cache_dir)
    return "" if location.exists() else what


_GLOB_CHARACTERS = frozenset("*?[]{}")
"""The characters an LSP glob pattern gives a meaning (3.17 ``GlobPattern``)."""


def glob_literal(path: Path) -> str:
    """`path` (without a trailing ``/``) as an absolute LSP glob pattern that matches it.

    LSP's glob syntax has no escape (and a backslash is no valid glob character), and clients read a
    one-character set such as ``[[]`` differently (Neovim's parser takes only ranges in a set). So each
    glob character (`_GLOB_CHARACTERS`) becomes ``?``, one character in a path segment for every client:
    the pattern of ``/tmp/a[1]`` is ``/tmp/a?1?``, which also matches ``/tmp/ab1c``. A change outside the
    workspace folders is dropped by `Folders.route`, and one in another folder goes to that folder.
    """
    return "".join("?" if char in _GLOB_CHARACTERS else char for char in path.as_posix().rstrip("/"))


@dataclass
class ChangeRoute:
    """What a batch of changed files asks for."""

    paths: dict[Path, list[str]] = field(default_factory=dict)
    """Folder -> relative paths to re-index."""
    full: list[Path] = field(default_factory=list)
    """Folders to re-index in full (an ignore file changed)."""
    reload_settings: bool = False
    """A settings file changed."""


class Folders:
    """The workspace folders, the editor's settings layers and each folder's resolved settings."""

    def __init__(self, env: Mapping[str, str] | None = None, cache_dir: Path | None = None) -> None:
        self._env = dict(os.environ if env is None else env)
        self._cache_dir = cache_dir if cache_dir is not None else default_cache_dir(self._env)
        self.roots: list[Path] = []
        """Every workspace folder the editor named (held ones too), in its order."""
        self.held: dict[Path, str] = {}
        """Folders held back (home or ``/`` without an index): folder -> what it is ("your home folder")."""
        self.unusable: list[str] = []  # workspace folders initialize named that are no local folder
        self.init_options: dict[str, Any] = {}
        self.pushed_settings: dict[str, Any] = {}
        self.settings: dict[Path, Settings] = {}
        self.global_settings = Settings()
        self._nesting: Nesting = {}
        self._nesting_key: tuple[Path, ...] = ()
        self._real: dict[Path, Path] = {}  # each folder's real path when last looked at (`relinked`)
        self.pending: dict[Path, LoadedSettings] = {}
        """Folder -> its settings as read, for those whose file's sensitive values are not trusted
        (`LoadedSettings.pending`: the language server asks whether to trust them)."""

    def initialize(self, params: types.InitializeParams) -> None:
        """Take the folders and ``initializationOptions`` of ``initialize``; invalid options are logged."""
        layer, messages = client_layer(params.initialization_options, "initializationOptions")
        self.init_options = layer
        for message in messages:
            log.warning("%s", message)
        self.unusable = []
        self.roots = roots_of(params, self.unusable)
        self._real = {root: real_path(root) for root in self.roots}

    def settings_for(self, root: Path) -> Settings:
        """The settings of a workspace folder (the server's own before they are read)."""
        return self.settings.get(root) or self.global_settings

    @property
    def active(self) -> list[Path]:
        """The folders agentls works in: every folder but the held ones."""
        return [root for root in self.roots if root not in self.held]

    def locate(self, path: Path) -> tuple[Path, str] | None:
        """The innermost active folder holding `path`, and the path relative to it."""
        return locate(path, self.active, self.nesting())

    def nesting(self) -> Nesting:
        """Each folder -> the folders inside it (`server.documents.nesting`), worked out again when the
        folders change or one of their links leads elsewhere (`relinked`)."""
        key = tuple(self.roots)
        if key != self._nesting_key:
            self._nesting, self._nesting_key = nesting(key), key
        return self._nesting

    def relinked(self) -> list[Path]:
        """The folders whose real path changed since they were last looked at: a folder that is a symbolic
        link (or lies under one) retargeted while the server runs (``ws`` -> ``a``, then ``b``). The nesting
        is worked out again when one did. One ``realpath`` per folder (17 us each, 55 us for three at load
        5): the server asks at a document's open or save, a watched-file change, a search, a run's start
        and a refresh, and at most once a second while the user types (``didChange``)."""
        real = {root: real_path(root) for root in self.roots}
        moved = [root for root in self.roots if self._real.get(root, real[root]) != real[root]]
        self._real = real
        if moved:
            self._nesting_key = ()
        return moved

    def held_back(self, path: Path | None = None) -> str:
        """Why agentls does not work at `path` when its innermost folder is held back; with no path, why
        it works nowhere when every folder is held. "" otherwise."""
        if path is None:
            held = [root for root in self.roots if root in self.held]
            return held_message(held[0], self.held[held[0]]) if held and not self.active else ""
        found = locate(path, self.roots, self.nesting())
        holder = path if path in self.roots else found[0] if found is not None else None
        if holder is None or holder not in self.held:
            return ""
        return held_message(holder, self.held[holder])

    def watchers(self, *, relative: bool) -> list[types.FileSystemWatcher]:
        """The file watchers the editor is asked for: all of each active folder, and of a held one only its
        settings files (`SETTINGS_FILES`, in the folder itself), so that a setting that allows it is noticed
        when the file changes outside the editor; all of a held folder is not watched (an editor may watch a
        folder by watching all of it, and a home folder holds every project).

        With `relative` (the client's ``relativePatternSupport``) each is a pattern relative to the folder's
        URI; else ``**/*`` when no folder is held (clients watch their workspace folders for such a
        pattern), or absolute patterns (`glob_literal`).
        """
        if not relative and not self.held:
            return [types.FileSystemWatcher(glob_pattern="**/*")] if self.roots else []
        watchers: list[types.FileSystemWatcher] = []
        for root in self.roots:
            for pattern in sorted(SETTINGS_FILES) if root in self.held else ["**/*"]:
                glob: types.GlobPattern = (
                    types.RelativePattern(base_uri=root.as_uri(), pattern=pattern)
                    if relative
                    else f"{glob_literal(root)}/{pattern}"
                )
                watchers.append(types.FileSystemWatcher(glob_pattern=glob))
        return watchers

    def scopes(self) -> list[Path | None]:
        """The scopes to ask the editor's settings for: each folder, or None with no folder."""
        return [*self.roots] if self.roots else [None]

    def apply(
        self, client: Mapping[Path | None, Mapping[str, Any]]
    ) -> tuple[dict[Path, Settings], list[str]]:
        """Resolve every folder's settings again with the editor's layer per scope (`client`).

        Returns the new settings per folder and the messages about invalid values.
        """
        messages: list[str] = []
        for root in self.roots:
            loaded = resolve(root, self.init_options, dict(client.get(root, {})), env=self._env)
            messages.extend((*loaded.untrusted, *loaded.messages))
            self.settings[root] = loaded.settings
            if loaded.pending:
                self.pending[root] = loaded
            else:
                self.pending.pop(root, None)
            if what := hold_reason(root, loaded.settings, self._env, self._cache_dir):
                self.held[root] = what
            else:
                self.held.pop(root, None)
        if self.roots:
            self.global_settings = self.settings[self.roots[0]]
        else:
            loaded = resolve(None, self.init_options, dict(client.get(None, {})), env=self._env)
            messages.extend(loaded.messages)
            self.global_settings = loaded.settings
        return {root: self.settings[root] for root in self.roots}, messages

    def remove(self, removed: Iterable[Path]) -> list[Path]:
        """Forget these folders; the ones that were folders."""
        gone: list[Path] = []
        for root in removed:
            if root in self.roots:
                self.roots.remove(root)
                self.settings.pop(root, None)
                self.pending.pop(root, None)
                self.held.pop(root, None)
                self._real.pop(root, None)
                gone.append(root)
        return gone

    def add(self, added: Iterable[Path]) -> list[Path]:
        """Add these folders; the ones that are new."""
        new = [root for root in dict.fromkeys(added) if root not in self.roots]
        self.roots.extend(new)
        self._real.update((root, real_path(root)) for root in new)
        return new

    def route(self, paths: Iterable[Path], *, indexing: bool) -> ChangeRoute:
        """What these changed files ask for; with `indexing` False (not started yet) only settings count."""
        route = ChangeRoute()
        outer = self._outer_folders()
        nested = self.nesting()
        for path in paths:
            found = locate(path, self.roots, nested)  # a held folder's settings file counts: it may allow it
            if found is None:
                continue
            if found[1] in SETTINGS_FILES:
                route.reload_settings = True
            inner, rel = found
            # The folders holding the innermost one index its files too: theirs must not go stale.
            for root, prefix in [(inner, ""), *outer.get(inner, [])]:
                self._route_one(route, root, prefix + rel, indexing=indexing)
        return route

    def _outer_folders(self) -> dict[Path, list[tuple[Path, str]]]:
        """Folder -> the other folders holding it (a monorepo opened beside one of its packages), each with
        the inner folder's path relative to it plus ``/``. On the folders' paths alone, their links
        resolved (`nesting`: one of them may be opened through a symbolic link); no file is read."""
        outer: dict[Path, list[tuple[Path, str]]] = {}
        for other, inside in self.nesting().items():
            for root, prefix in inside:
                outer.setdefault(root, []).append((other, prefix + "/"))
        return outer

    def _route_one(self, route: ChangeRoute, root: Path, rel: str, *, indexing: bool) -> None:
        parts = rel.split("/")
        if any(part in SKIPPED_DIRS for part in parts[:-1]):
            return
        settings = self.settings.get(root)
        if root in self.held or settings is None or not settings.server.reindex_on_save or not indexing:
            return
        if parts[-1] in IGNORE_FILE_NAMES:
            if root not in route.full:
                route.full.append(root)
        else:
            route.paths.setdefault(root, []).append(rel)
