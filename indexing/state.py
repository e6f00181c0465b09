"""What a finished index run left in the index, kept in a small file beside it (``files-state``), so that
an ``agentls index`` over an unchanged workspace is confirmed without opening the index at all.

Opening the index means importing LanceDB (about 3 s of CPU) and reading every file row (0.4 s on the
kernel's 83,000 files); walking the tree with the walk snapshot and comparing sizes and mtimes with this
file takes about a second there. `unchanged_report` does that walk and answers the run's report when
nothing changed, or None, and the caller runs the real index run. A `Scan` with changes tells the run
which files to read again; the command line hands it to the warm search process as JSON (`Scan.to_json`)
so that the process, started at the same time, does not walk the tree again.

The file is trusted only as long as nothing wrote to the index after it: every writer of the index
(`WorkspaceIndex.index`, `update_paths`) deletes it under the index's write lock before its first write,
and only a full run that finished (not cancelled, no errors) writes it again, last. It holds, per file,
the size and mtime of the indexed files and of the files skipped when read (binary, generated, too
large: the walk cannot tell those), the settings it was made with (trusted while the current settings
shape the same rows: `same_rows`), and the embedding notice of a lexical index: it is written only for
indexes without vectors (with a model, the run also checks that every chunk has its vector, which needs
the index). An unchanged scan leaves the walk snapshot the last run saved as it is.

The settings are kept with their credentials masked (`indexing.credentials.mask_settings_json`: a password
or an ``api_key`` query in ``index.embedding.base_url`` or ``index.rerank.url``), and the current settings
are compared in that form: the file only compares them, and a new password for the same endpoint shapes
the same rows. A state written before (settings as written) still loads: without credentials in the
settings it is trusted as before; with them it is not, once, and that run, a full one through the index
(incremental, not a rebuild), writes it again masked.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, overload

from indexing.config import IndexSettings
from indexing.credentials import mask_settings_json
from indexing.lock import IndexLock, IndexLocked
from indexing.models import IndexReport, SkippedFile, SkipReason
from indexing.walker import FileEntry, WalkSnapshot, explain_ignored, resolve_root, walk

log = logging.getLogger(__name__)

__all__ = [
    "STATE_NAME",
    "FilesState",
    "Scan",
    "discard",
    "same_rows",
    "scan",
    "scan_here",
    "state_of",
    "unchanged_report",
]

STATE_NAME = "files-state"
_FORMAT = 1
_SCAN_FORMAT = 1  # of `Scan.to_json`


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
            "settings": mask_settings_json(self.settings_json),
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
        """The state, or None when there is none, it is unreadable, or it was made with settings that make
        other rows (`same_rows`, on the settings with their credentials masked, as `save` keeps them)."""
        try:
            data: Any = json.loads((location / STATE_NAME).read_bytes())
            stored, current = data.get("settings"), mask_settings_json(settings_json)
            if data.get("format") != _FORMAT or not same_rows(stored, current):
                return None
            files = dict(zip(data["paths"], zip(data["sizes"], data["mtimes"], strict=True), strict=True))
            skipped = {path: (size, mtime, str(reason)) for path, size, mtime, reason in data["skipped"]}
            return cls(settings_json, files, skipped, str(data["notice"]))
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            return None


# Settings that change how the index is written or searched, never which rows it holds.
_NOT_IN_ROWS = {
    "uri",
    "batch_files",
    "vector_index_min_rows",
    "compact_after_fragments",
    "workers",
    "search_process_idle",
    "rerank",
    "embedding.batch_size",
}


def same_rows(stored_json: object, settings_json: str) -> bool:
    """Whether an index made with the settings ``stored_json`` holds the rows one made with
    ``settings_json`` would: the settings are equal but for those that do not shape rows (`_NOT_IN_ROWS`),
    and a setting added to agentls since (absent from ``stored_json``) is at its default, which keeps
    the behaviour of before it existed. A setting removed since counts as a difference."""
    if stored_json == settings_json:
        return True
    try:
        stored, current = json.loads(str(stored_json)), json.loads(settings_json)
    except ValueError:
        return False
    return _same(stored, current, IndexSettings().model_dump(mode="json"), "")


def _same(stored: object, current: object, default: object, prefix: str) -> bool:
    if not isinstance(stored, dict) or not isinstance(current, dict):
        return stored == current
    defaults = default if isinstance(default, dict) else {}
    for key in stored.keys() | current.keys():
        name = f"{prefix}{key}"
        if name in _NOT_IN_ROWS:
            continue
        if key not in stored:
            if key not in defaults or current[key] != defaults[key]:
                return False
        elif key not in current or not _same(stored[key], current[key], defaults.get(key), f"{name}."):
            return False
    return True


def save_or_log(state: FilesState, location: Path) -> None:
    """Save the state at the end of a full run; a failure is only logged: the next unchanged run then
    opens the index, and nothing else is lost."""
    try:
        state.save(location)
    except OSError as exc:
        log.warning("cannot save the index's file state in %s: %s", location, exc)


def discard(location: Path) -> None:
    """Forget the state: called by every writer of the index before its first write."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(location / STATE_NAME)


class EntryColumns(Sequence[FileEntry]):
    """A scan's entries as the columns `Scan.to_json` sent (paths, sizes, mtimes; absolute paths as
    ``base`` + path but for ``other_abs``, by position): 83,000 entry objects cost the kernel's warm
    search process 0.1 s it spent before the edited file was indexed, and the run itself needs only the
    count and, for the files state, the columns (`state_of`). An entry is made when asked for."""

    def __init__(
        self, base: str, paths: list[str], sizes: list[int], mtimes: list[int], other_abs: dict[int, str]
    ) -> None:
        if not len(paths) == len(sizes) == len(mtimes):
            raise ValueError(f"columns of {len(paths)}, {len(sizes)} and {len(mtimes)} entries")
        self.base, self.paths, self.sizes, self.mtimes, self.other_abs = base, paths, sizes, mtimes, other_abs

    def __len__(self) -> int:
        return len(self.paths)

    @overload
    def __getitem__(self, index: int) -> FileEntry: ...
    @overload
    def __getitem__(self, index: slice) -> list[FileEntry]: ...
    def __getitem__(self, index: int | slice) -> FileEntry | list[FileEntry]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        path = self.paths[index]
        position = index % len(self) if index < 0 else index
        return FileEntry(
            path, self.other_abs.get(position) or self.base + path, self.sizes[index], self.mtimes[index]
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]


@dataclass
class Scan:
    """One walk of the workspace compared with the files state: what an index run has to do."""

    report: IndexReport  # the run's report if nothing changed
    entries: Sequence[FileEntry]  # every file the walk listed
    skipped: list[SkippedFile]  # files the walk left out
    changed: list[FileEntry]  # new files, and files whose size or mtime differ from the indexed ones
    removed: list[str]  # indexed files no longer listed
    kept_skipped: dict[str, str]  # path -> reason: files skipped when read before, unchanged since
    stamp: tuple[int, int]  # the state file's inode and mtime when it was read
    started: float = 0.0
    unsaved: tuple[WalkSnapshot, Path] | None = None  # this walk's snapshot, to save (`save_snapshot`)
    _encoded: str | None = field(default=None, repr=False, compare=False)

    @property
    def unchanged(self) -> bool:
        return not self.changed and not self.removed

    def save_snapshot(self) -> None:
        """Save the walk snapshot when `scan` was asked to leave that to the caller; a failure costs the
        next walk only time."""
        if self.unsaved is not None:
            snapshot, path = self.unsaved
            self.unsaved = None
            try:
                snapshot.save(path)
            except OSError as exc:
                log.info("cannot save the walk snapshot %s: %s", path, exc)

    def still_valid(self, location: Path) -> bool:
        """Whether the state this scan compared with is still the index's (nothing wrote since)."""
        return _stamp(location) == self.stamp

    def unchanged_report(self) -> IndexReport:
        self.report.seconds = time.perf_counter() - self.started
        return self.report

    def to_json(self) -> dict[str, Any]:
        """The scan as JSON values, for the warm search process to run the index with (`from_json`): the
        entries as columns, their absolute paths as the root's prefix plus the path (exceptions listed)."""
        base = ""
        if self.entries:
            first = self.entries[0]
            base = first.abs_path[: len(first.abs_path) - len(first.path)]
        other_abs = {i: e.abs_path for i, e in enumerate(self.entries) if e.abs_path != base + e.path}
        return {
            "format": _SCAN_FORMAT,
            "report": asdict(self.report),
            "base": base,
            "paths": [e.path for e in self.entries],
            "sizes": [e.size for e in self.entries],
            "mtimes": [e.mtime_ns for e in self.entries],
            "other_abs": other_abs,
            "skipped": [[s.path, s.reason.value, s.detail] for s in self.skipped],
            "changed": [[e.path, e.abs_path, e.size, e.mtime_ns] for e in self.changed],
            "removed": self.removed,
            "kept_skipped": self.kept_skipped,
            "stamp": list(self.stamp),
        }

    def encoded(self) -> str:
        """`to_json` as JSON text, made once (the command line makes it while the search process starts)."""
        if self._encoded is None:
            self._encoded = json.dumps(self.to_json(), separators=(",", ":"))
        return self._encoded

    @classmethod
    def from_json(cls, data: Any) -> Scan:
        """The scan `to_json` wrote; ValueError when ``data`` is not one."""
        try:
            if data["format"] != _SCAN_FORMAT:
                raise ValueError(f"a scan of format {data['format']!r}, not {_SCAN_FORMAT}")
            other = {int(i): str(a) for i, a in data["other_abs"].items()}
            entries = EntryColumns(str(data["base"]), data["paths"], data["sizes"], data["mtimes"], other)
            return cls(
                report=IndexReport(**data["report"]),
                entries=entries,
                skipped=[
                    SkippedFile(path, SkipReason(reason), detail) for path, reason, detail in data["skipped"]
                ],
                changed=[
                    FileEntry(path, abs_path, size, mtime) for path, abs_path, size, mtime in data["changed"]
                ],
                removed=[str(path) for path in data["removed"]],
                kept_skipped={str(path): str(reason) for path, reason in data["kept_skipped"].items()},
                stamp=(int(data["stamp"][0]), int(data["stamp"][1])),
                started=time.perf_counter(),
            )
        except (KeyError, TypeError, IndexError, AttributeError) as exc:
            raise ValueError(f"not a scan: {exc!r}") from exc


def _stamp(location: Path) -> tuple[int, int]:
    try:
        st = os.stat(location / STATE_NAME)
    except OSError:
        return (0, 0)
    return (st.st_ino, st.st_mtime_ns)


def scan(
    root: Path,
    settings: IndexSettings,
    location: Path,
    lexical_notice: Callable[[], str | None],
    progress: Callable[[str, int, int], None] | None = None,
    *,
    save_snapshot: bool = True,
) -> Scan | None:
    """Walk ``root`` once and compare it with the files state, without opening the index; None when the
    state is missing or stale, or another process holds the index's write lock (the caller then runs a
    full index run, which handles all of those).

    With a scan, an index run reads and rewrites only the `Scan.changed` and `Scan.removed` files instead
    of walking the tree again and reading every file row (on the kernel, one edited file cost a walk of
    the tree per check, three in all, and 83,000 file rows).

    ``lexical_notice()``: the embedding notice when no embedding model can be loaded now, else None (a
    model appeared: vectors must be added, which needs the index). Asked only when nothing changed (then
    the scan's report is the run's); a scan with changes leaves the model to the index run, which loads
    it anyway (and adds the missing vectors when one appeared), so the command line does not import the
    embedding code to hand a scan to the warm search process.

    When something changed, the walk snapshot is saved for the next walk (0.2 s on the kernel); with
    ``save_snapshot=False`` the caller does that (`Scan.save_snapshot`), while the index run goes on."""
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
        stamp = _stamp(location)
        state = FilesState.load(location, settings.model_dump_json())
        if state is None:
            return None
        notify = progress or (lambda phase, done, total: None)
        notify("scanning", 0, 0)
        report = IndexReport(root=str(root), lexical_only=True)
        snapshot_file = location / "walk-snapshot.json"
        snapshot = WalkSnapshot.load(snapshot_file, settings)
        entries: list[FileEntry] = []
        skipped: list[SkippedFile] = []
        changed: list[FileEntry] = []
        kept_skipped: dict[str, str] = {}
        for item in walk(root, settings, snapshot=snapshot):
            if isinstance(item, SkippedFile):
                report.skipped[item.reason.value] = report.skipped.get(item.reason.value, 0) + 1
                report.files_seen += 1
                skipped.append(item)
                continue
            entries.append(item)
            if not _unchanged(item, state, report):
                log.debug("%s changed since the last run", item.path)
                changed.append(item)
            elif item.path in state.skipped:
                kept_skipped[item.path] = state.skipped[item.path][2]
            if len(entries) % 2000 == 0:
                notify("scanning", len(entries), 0)
        listed = {e.path for e in entries}
        removed = [path for path in state.files if path not in listed]
        notify("scanning", len(entries), len(entries))
        if not changed and not removed:  # the report is the run's: still no model, the index lexical?
            notice = lexical_notice()
            if notice is None:
                return None
            report.notice = notice
        found = Scan(report, entries, skipped, changed, removed, kept_skipped, stamp, started)
        if changed or removed:  # else the last run's snapshot serves (writing it costs 0.2 s on the kernel)
            found.unsaved = (snapshot, snapshot_file)
            if save_snapshot:
                found.save_snapshot()
        ignored = explain_ignored(root, settings)
        if ignored:
            log.warning("%s", ignored)
            report.warnings.append(ignored)
    finally:
        lock.release()
    return found


def scan_here(
    root: Path,
    settings: IndexSettings,
    cache_dir: Path,
    env: Mapping[str, str],
    progress: Callable[[str, int, int], None] | None = None,
    *,
    save_snapshot: bool = True,
) -> Scan | None:
    """`scan` with the embedding model looked up in this process (`indexing.embeddings.load_embedder`
    with the cache folder and environment given), as the command line does before any index is opened."""

    def lexical_notice() -> str | None:
        from indexing.embeddings import load_embedder

        load = load_embedder(settings.embedding, cache_dir=cache_dir, env=env)
        return load.notice if load.embedder is None else None

    location = settings.location(root, cache_dir)
    return scan(root, settings, location, lexical_notice, progress, save_snapshot=save_snapshot)


def unchanged_report(
    root: Path,
    settings: IndexSettings,
    location: Path,
    lexical_notice: Callable[[], str | None],
    progress: Callable[[str, int, int], None] | None = None,
) -> IndexReport | None:
    """The report of an index run over ``root`` when no file changed since the last full run, found without
    opening the index (`scan`); None when something changed or there is no usable state."""
    found = scan(root, settings, location, lexical_notice, progress)
    return found.unchanged_report() if found is not None and found.unchanged else None


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
    files: dict[str, tuple[int, int]]
    if isinstance(entries, EntryColumns):  # a scan from another process: no entry objects made
        files = dict(zip(entries.paths, zip(entries.sizes, entries.mtimes, strict=True), strict=True))
    else:
        files = {entry.path: (entry.size, entry.mtime_ns) for entry in entries}
    skipped: dict[str, tuple[int, int, str]] = {}
    for path, why in skipped_when_read.items():
        if (known := files.pop(path, None)) is not None:
            skipped[path] = (*known, why)
    return FilesState(settings.model_dump_json(), files, skipped, notice)
