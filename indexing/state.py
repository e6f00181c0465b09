"""What a finished index run left in the index, kept in a small file beside it (``files-state``), so that
an ``agentls index`` over an unchanged workspace is confirmed without opening the index at all.

Opening the index means importing LanceDB (about 3 s of CPU) and reading every file row (0.4 s on the
kernel's 83,000 files); walking the tree with the walk snapshot and comparing sizes and mtimes with this
file takes about a second there. `unchanged_report` does that walk and answers the run's report when
nothing changed, or None, and the caller runs the real index run.

The file is trusted only as long as nothing wrote to the index after it: every writer of the index
(`WorkspaceIndex.index`, `update_paths`) deletes it under the index's write lock before its first write,
and only a full run that finished (not cancelled, no errors) writes it again, last. It holds, per file,
the size and mtime of the indexed files and of the files skipped when read (binary, generated, too
large: the walk cannot tell those), the settings it was made with, and the embedding notice of a lexical
index: it is written only for indexes without vectors (with a model, the run also checks that every chunk
has its vector, which needs the index).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from indexing.config import IndexSettings
from indexing.lock import IndexLock, IndexLocked
from indexing.models import IndexReport, SkippedFile
from indexing.walker import FileEntry, WalkSnapshot, explain_ignored, resolve_root, walk

log = logging.getLogger(__name__)

__all__ = ["STATE_NAME", "FilesState", "discard", "state_of", "unchanged_report"]

STATE_NAME = "files-state"
_FORMAT = 1


class FilesState:
    """The files of the index as of the last finished full run (see the module docstring)."""

    def __init__(
        self,
        settings_json: str,
        files: dict[str, tuple[int, int]],
        skipped: dict[str, tuple[int, int, str]],
        notice: str,
    ) -> None:
        self.settings_json = settings_json
        self.files = files  # path -> (size, mtime_ns) of the indexed files
        self.skipped = skipped  # path -> (size, mtime_ns, reason) of files skipped when read
        self.notice = notice

    def save(self, location: Path) -> None:
        """Write it atomically, as columns (JSON lists of numbers load fast: 0.1 s for the kernel)."""
        skipped = sorted(self.skipped.items())
        data = {
            "format": _FORMAT,
            "settings": self.settings_json,
            "paths": list(self.files),
            "sizes": [size for size, _ in self.files.values()],
            "mtimes": [mtime for _, mtime in self.files.values()],
            "skipped": [[path, size, mtime, reason] for path, (size, mtime, reason) in skipped],
            "notice": self.notice,
        }
        tmp = location / f"{STATE_NAME}.tmp"
        tmp.write_text(json.dumps(data, separators=(",", ":")), encoding="utf-8")
        os.replace(tmp, location / STATE_NAME)

    @classmethod
    def load(cls, location: Path, settings_json: str) -> FilesState | None:
        """The state, or None when there is none, it is unreadable, or it was made with other settings."""
        try:
            data: Any = json.loads((location / STATE_NAME).read_bytes())
            if data.get("format") != _FORMAT or data.get("settings") != settings_json:
                return None
            files = dict(zip(data["paths"], zip(data["sizes"], data["mtimes"], strict=True), strict=True))
            skipped = {path: (size, mtime, str(reason)) for path, size, mtime, reason in data["skipped"]}
            return cls(settings_json, files, skipped, str(data["notice"]))
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            return None


def discard(location: Path) -> None:
    """Forget the state: called by every writer of the index before its first write."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(location / STATE_NAME)


def unchanged_report(
    root: Path,
    settings: IndexSettings,
    location: Path,
    lexical_notice: Callable[[], str | None],
    progress: Callable[[str, int, int], None] | None = None,
) -> IndexReport | None:
    """The report of an index run over ``root`` when no file changed since the last full run, found without
    opening the index; None when something changed, the state is missing or stale, or another process
    holds the index's write lock (the caller then runs the index run, which handles all of those).

    ``lexical_notice()``: the embedding notice when no embedding model can be loaded now, else None (a
    model appeared: vectors must be added, which needs the index)."""
    started = time.perf_counter()
    if not (location / STATE_NAME).exists():
        return None
    resolve_root(root)
    lock = IndexLock(location / ".lock")
    try:
        lock.acquire()
    except IndexLocked:
        return None
    try:
        state = FilesState.load(location, settings.model_dump_json())
        if state is None:
            return None
        notice = lexical_notice()
        if notice is None:
            return None
        notify = progress or (lambda phase, done, total: None)
        notify("scanning", 0, 0)
        report = IndexReport(root=str(root), lexical_only=True, notice=notice)
        snapshot_file = location / "walk-snapshot.json"
        snapshot = WalkSnapshot.load(snapshot_file, settings)
        seen = 0
        for item in walk(root, settings, snapshot=snapshot):
            if isinstance(item, SkippedFile):
                report.skipped[item.reason.value] = report.skipped.get(item.reason.value, 0) + 1
                report.files_seen += 1
                continue
            if not _unchanged(item, state, report):
                log.debug("%s changed since the last run", item.path)
                return None
            seen += 1
            if seen % 2000 == 0:
                notify("scanning", seen, 0)
        if report.files_unchanged != len(state.files):
            return None  # files were removed
        notify("scanning", seen, seen)
        with contextlib.suppress(OSError):
            snapshot.save(snapshot_file)
        ignored = explain_ignored(root, settings)
        if ignored:
            log.warning("%s", ignored)
            report.warnings.append(ignored)
    finally:
        lock.release()
    report.seconds = time.perf_counter() - started
    return report


def _unchanged(entry: FileEntry, state: FilesState, report: IndexReport) -> bool:
    report.files_seen += 1
    known = state.files.get(entry.path)
    if known is not None:
        if known != (entry.size, entry.mtime_ns):
            return False
        report.files_unchanged += 1
        return True
    skipped = state.skipped.get(entry.path)
    if skipped is None or skipped[:2] != (entry.size, entry.mtime_ns):
        return False
    report.skipped[skipped[2]] = report.skipped.get(skipped[2], 0) + 1
    return True


def state_of(
    settings: IndexSettings, entries: Sequence[FileEntry], skipped_when_read: Mapping[str, str], notice: str
) -> FilesState:
    """The state after a full run over the listed ``entries``, of which ``skipped_when_read`` (path ->
    reason) were left out when read; all the others are in the index."""
    files: dict[str, tuple[int, int]] = {}
    skipped: dict[str, tuple[int, int, str]] = {}
    for entry in entries:
        reason = skipped_when_read.get(entry.path)
        if reason is None:
            files[entry.path] = (entry.size, entry.mtime_ns)
        else:
            skipped[entry.path] = (entry.size, entry.mtime_ns, reason)
    return FilesState(settings.model_dump_json(), files, skipped, notice)
