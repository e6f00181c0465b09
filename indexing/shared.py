"""A team's shared index on object storage, and a workspace that searches it beside a small local one.

``publish`` writes the index of a git commit (HEAD: the committed content, whatever the working tree
holds) to a LanceDB folder on object storage (``s3://``, ``gs://``, ``az://``, or a local folder): the
commit is exported with ``git archive``, indexed locally with the usual machinery, and its tables are
written to the URI through LanceDB itself, with their full-text and scalar indexes built there. A
``manifest`` table, written last (and dropped first), records the commit, the schema version and the
embedding model: a reader never takes a half-written base for a finished one.

A workspace whose ``index.shared`` names that URI keeps a local index of only the files that differ
from the base's commit (``git diff --name-only BASE`` plus untracked files) and searches through
`SharedStore`, which reads both: the base's rows of changed, deleted and locally indexed files are
filtered out in the query, the local rows are added. BM25 scores of two corpora are not comparable (the
local one is tiny), so each lexical list is normalised to its own best score before the lists meet;
cosine distances from one model are comparable as they are, and base vectors are used only when the
local model is the base's.

git runs through `indexing.git_safety` (the repository's hooks, fsmonitor and filters do not run).

Credentials come from the provider's usual places (``AWS_*``/``GOOGLE_*``/``AZURE_*`` environment,
``~/.aws``): LanceDB reads them itself. Settings carry the URI only (`indexing.config`).
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from indexing.git_safety import safe_git_command
from indexing.lancedb_import import BTree, lancedb
from indexing.models import IndexReport, Symbol
from indexing.store import (
    FTS_CONFIG,
    HIT_COLUMNS,
    SCHEMA_VERSION,
    IndexStore,
    in_list,
)

if TYPE_CHECKING:
    from indexing.service import ProgressCallback, WorkspaceIndex

log = logging.getLogger(__name__)

_TABLES = ("files", "chunks", "symbols", "vectors")
MANIFEST = "manifest"


class SharedIndexError(Exception):
    """The shared index cannot be written or read; the message says what to do."""


@dataclass(frozen=True, slots=True)
class Manifest:
    """What a shared index holds: the index of ``commit``."""

    commit: str
    schema_version: int
    embedder: str
    files: int
    chunks: int
    written_at: str


@dataclass(frozen=True, slots=True)
class PublishReport:
    uri: str
    commit: str
    dirty: bool
    """The working tree had uncommitted changes: they are not in the shared index."""
    files: int
    chunks: int
    seconds: float


# ------------------------------------------------------------------------------------------------- git
def _git(root: Path, *args: str) -> str:
    command, env = safe_git_command(root, args)
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=120, env=env)
    except FileNotFoundError as exc:
        raise SharedIndexError("git is not installed; a shared index is the index of a git commit") from exc
    except subprocess.CalledProcessError as exc:
        raise SharedIndexError(f"git {' '.join(args)} failed in {root}: {exc.stderr.strip()}") from exc
    return done.stdout


def head_commit(root: Path) -> str:
    """The commit HEAD names; a clear error outside a git repository or before the first commit."""
    return _git(root, "rev-parse", "--verify", "HEAD^{commit}").strip()


def is_dirty(root: Path) -> bool:
    """Whether tracked files differ from HEAD (untracked files do not count: they are not committed)."""
    return bool(_git(root, "status", "--porcelain", "--untracked-files=no").strip())


def changed_since(root: Path, commit: str) -> set[str]:
    """Workspace-relative paths that differ from ``commit``: modified, added, deleted (renames as a
    deletion and an addition), and untracked files that are not ignored."""
    try:
        diff = _git(root, "diff", "--name-only", "--no-renames", "-z", commit, "--")
    except SharedIndexError as exc:
        raise SharedIndexError(
            f"the shared index is of commit {commit[:12]}, which this clone does not have; "
            f"run `git fetch` (or re-publish the shared index): {exc}"
        ) from exc
    untracked = _git(root, "ls-files", "--others", "--exclude-standard", "-z")
    return {p for p in (diff + untracked).split("\0") if p}


def has_commit(root: Path, commit: str) -> bool:
    """Whether the clone at ``root`` has ``commit``."""
    try:
        _git(root, "cat-file", "-e", f"{commit}^{{commit}}")
    except SharedIndexError:
        return False
    return True


def _export(root: Path, commit: str, into: Path) -> None:
    """The tree of ``commit`` written into ``into`` (``git archive``: only committed content)."""
    command, env = safe_git_command(root, ["archive", "--format=tar", commit])
    proc = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
        tar.extractall(into, filter="data")
    if proc.wait() != 0:
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        raise SharedIndexError(f"git archive {commit[:12]} failed: {err.strip()}")


# ------------------------------------------------------------------------------------------ publishing
def connect(uri: str) -> Any:
    """The LanceDB database at ``uri``; credentials and endpoints from the provider's environment."""
    try:
        return lancedb.connect(uri)
    except Exception as exc:
        raise SharedIndexError(f"cannot open the shared index at {uri}: {exc}") from exc


def publish(index: WorkspaceIndex, uri: str, progress: ProgressCallback | None = None) -> PublishReport:
    """Index HEAD's committed content of ``index.root`` and write it to ``uri``."""
    started = time.perf_counter()
    root = index.root
    commit = head_commit(root)
    dirty = is_dirty(root)
    if dirty:
        log.warning("the working tree has uncommitted changes; the shared index holds commit %s", commit[:12])
    from indexing.service import WorkspaceIndex

    with tempfile.TemporaryDirectory(prefix="agentls-publish-") as tmp:
        tree, folder = Path(tmp) / "tree", Path(tmp) / "index"
        tree.mkdir()
        _export(root, commit, tree)
        settings = index.settings.model_copy(update={"uri": str(folder), "shared": None})
        local = WorkspaceIndex(
            tree, settings, cache_dir=index.cache_dir, env=index.env, weights=index.weights
        )
        try:
            report = local.index(progress=progress)
            if report.errors:
                raise SharedIndexError("; ".join(report.errors))
            store = local.store
            db = connect(uri)
            with contextlib.suppress(Exception):  # readers see no manifest while the tables change
                db.drop_table(MANIFEST)
            counts: dict[str, int] = {}
            for name in _TABLES:
                table = store.table(name)
                if table is None:
                    with contextlib.suppress(Exception):
                        db.drop_table(name)
                    continue
                data = table.to_arrow()
                counts[name] = data.num_rows
                target = db.create_table(name, data=data, mode="overwrite")
                _build_indexes(name, target, data.num_rows)
            manifest = Manifest(
                commit=commit,
                schema_version=SCHEMA_VERSION,
                embedder=store.embedder_id if store.table("vectors") is not None else "",
                files=counts.get("files", 0),
                chunks=counts.get("chunks", 0),
                written_at=datetime.now(UTC).isoformat(timespec="seconds"),
            )
            db.create_table(MANIFEST, data=pa.Table.from_pylist([_as_row(manifest)]), mode="overwrite")
        finally:
            local.close()
    return PublishReport(uri, commit, dirty, manifest.files, manifest.chunks, time.perf_counter() - started)


def _as_row(manifest: Manifest) -> dict[str, Any]:
    return {f: getattr(manifest, f) for f in Manifest.__dataclass_fields__}


def _build_indexes(name: str, table: Any, rows: int) -> None:
    if rows == 0:
        return
    if name == "chunks":
        table.create_index("search_text", config=FTS_CONFIG, name="search_text_idx")
        table.create_index("path", config=BTree(), name="path_idx")
        table.create_index("id", config=BTree(), name="id_idx")
    elif name == "symbols":
        for column in ("name", "name_lower", "path"):
            table.create_index(column, config=BTree(), name=f"{column}_idx")
    elif name == "files":
        table.create_index("path", config=BTree(), name="path_idx")


# -------------------------------------------------------------------------------------------- reading
class SharedBase:
    """The tables of a published shared index, read-only."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        db = connect(uri)
        try:
            names = set(db.list_tables().tables)
        except Exception as exc:
            raise SharedIndexError(f"cannot list the shared index at {uri}: {exc}") from exc
        if MANIFEST not in names:
            raise SharedIndexError(
                f"no shared index at {uri} (or one being written): run `agentls index --to {uri}` in a "
                "clone of the repository, or wait for the run in progress"
            )
        self.manifest = read_manifest(db)
        if self.manifest.schema_version != SCHEMA_VERSION:
            raise SharedIndexError(
                f"the shared index at {uri} is in format {self.manifest.schema_version}; this agentls reads "
                f"{SCHEMA_VERSION}: re-publish it with this version (`agentls index --to {uri}`)"
            )
        self.tables = {n: db.open_table(n) for n in _TABLES if n in names}


def read_manifest(db: Any) -> Manifest:
    """The manifest row of an open shared-index database (written last by `publish`)."""
    row = db.open_table(MANIFEST).to_arrow().to_pylist()[0]
    return Manifest(**{f: row[f] for f in Manifest.__dataclass_fields__})


def _and(*clauses: str | None) -> str | None:
    parts = [c for c in clauses if c]
    return " AND ".join(f"({c})" for c in parts) if parts else None


class SharedStore:
    """The read side of `IndexStore` over a shared base and the workspace's local store of changed
    files; everything else (writes, the lock, maintenance) is the local store's."""

    def __init__(self, local: IndexStore, base: SharedBase, changed: Iterable[str]) -> None:
        self.local = local
        self.base = base
        self.changed = set(changed)
        self._base = IndexStore.reading(base.tables)
        self._local_paths: tuple[Any, set[str]] | None = None

    def __getattr__(self, name: str) -> Any:  # writes and maintenance: the local store
        return getattr(self.local, name)

    @property
    def commit(self) -> str:
        return self.base.manifest.commit

    def follow_base(self, root: Path) -> bool:
        """Switch to the base published at the same URI since it was opened (CI moved it to a newer
        commit), so a long-running server does not keep reading the old one. True if it moved. A
        base being re-published (no manifest yet) or unreachable, or of a commit the clone at ``root``
        does not have yet (no `git fetch`), keeps the current one."""
        try:
            latest = read_manifest(connect(self.base.uri))
        except Exception as exc:  # being written, or the network: keep reading what we have
            log.info(
                "shared index at %s not re-read (%s); keeping commit %s", self.base.uri, exc, self.commit[:12]
            )
            return False
        if (latest.commit, latest.written_at) == (self.commit, self.base.manifest.written_at):
            return False
        if not has_commit(root, latest.commit):
            log.warning(
                "the shared index at %s is now of commit %s, which this clone does not have: `git fetch` "
                "to use it; searching the base of commit %s meanwhile",
                self.base.uri,
                latest.commit[:12],
                self.commit[:12],
            )
            return False
        try:
            base = SharedBase(self.base.uri)
        except SharedIndexError as exc:
            log.warning("%s; keeping the shared index of commit %s", exc, self.commit[:12])
            return False
        log.info(
            "shared index at %s moved: commit %s -> %s", base.uri, self.commit[:12], base.manifest.commit[:12]
        )
        self.base = base
        self._base = IndexStore.reading(base.tables)
        return True

    def hidden(self) -> set[str]:
        """Paths whose base rows must not be seen: changed since the base's commit, or indexed here."""
        return self.changed | self._local_files()

    def _local_files(self) -> set[str]:
        """The paths of the local index (read again only after a write)."""
        version = self.local.table("files").version
        if self._local_paths is None or self._local_paths[0] != version:
            self._local_paths = (version, set(self.local.file_records()))
        return self._local_paths[1]

    def _base_where(self, where: str | None, hidden: set[str] | None = None) -> str | None:
        hidden = self.hidden() if hidden is None else hidden
        return _and(where, f"NOT ({in_list('path', sorted(hidden))})" if hidden else None)

    def _base_vectors(self) -> bool:
        return "vectors" in self.base.tables and self.base.manifest.embedder == self.local.embedder_id

    @property
    def has_vectors(self) -> bool:
        return self.local.has_vectors or self._base_vectors()

    def refresh(self) -> None:
        """See the local store's new writes, a re-published base, and the working tree's changes."""
        self.local.refresh()
        if not self.follow_base(Path(self.local.root)):
            for table in self.base.tables.values():
                with contextlib.suppress(Exception):
                    table.checkout_latest()
        self.changed = changed_since(Path(self.local.root), self.commit)

    def file_count(self) -> int:
        return int(self.base.manifest.files) + self.local.file_count()

    # ------------------------------------------------------------------ search
    def search_lexical(
        self, query: str, limit: int, where: str | None = None, columns: Sequence[str] = HIT_COLUMNS
    ) -> list[dict[str, Any]]:
        base = self._base.search_lexical(query, limit, self._base_where(where), columns)
        local = self.local.search_lexical(query, limit, where, columns) if self._local_files() else []
        return merge_lexical(base, local, limit)

    def search_vector(self, vector: np.ndarray, limit: int, where: str | None = None) -> list[dict[str, Any]]:
        rows = self.local.search_vector(vector, limit, where) if self.local.has_vectors else []
        if self._base_vectors():
            rows += self._base.search_vector(vector, limit, self._base_where(where))
        return sorted(rows, key=lambda r: r["_distance"])[:limit]

    def chunks_by_id(self, ids: Sequence[str], columns: Sequence[str] = HIT_COLUMNS) -> list[dict[str, Any]]:
        """Chunks by id, from either side (ids come from a search that hid the base's stale rows)."""
        rows = self.local.chunks_by_id(ids, columns)
        found = {r["id"] for r in rows}
        return rows + self._base.chunks_by_id([i for i in ids if i not in found], columns)

    def chunks_at(
        self, locations: Sequence[tuple[str, int]], columns: Sequence[str] = HIT_COLUMNS
    ) -> list[dict[str, Any]]:
        hidden = self.hidden()
        rows = self.local.chunks_at([loc for loc in locations if loc[0] in hidden], columns)
        return rows + self._base.chunks_at([loc for loc in locations if loc[0] not in hidden], columns)

    def find_symbols(
        self,
        name: str | Sequence[str],
        *,
        prefix: bool = False,
        role: str | None = None,
        path: str | None = None,
        limit: int = 200,
    ) -> list[Symbol]:
        local = self.local.find_symbols(name, prefix=prefix, role=role, path=path, limit=limit)
        hidden = self.hidden()
        base = self._base.find_symbols(name, prefix=prefix, role=role, path=path, limit=limit)
        merged = local + [s for s in base if s.path not in hidden]
        merged.sort(key=lambda s: (s.role != "definition", s.path, s.line, s.column))
        return merged[:limit]

    def secret_paths(self) -> list[str]:
        hidden = self.hidden()
        return sorted(
            set(self.local.secret_paths()) | {p for p in self._base.secret_paths() if p not in hidden}
        )

    def symbols_in_file(self, path: str, *, role: str | None = None) -> list[Symbol]:
        if path in self.hidden():
            return self.local.symbols_in_file(path, role=role)
        return self._base.symbols_in_file(path, role=role)


def merge_lexical(
    base: Sequence[dict[str, Any]], local: Sequence[dict[str, Any]], limit: int
) -> list[dict[str, Any]]:
    """The two BM25 lists as one: each list's scores divided by its own best (the local corpus is small,
    its raw scores are not comparable with the base's), best first."""

    def normalised(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        top = max((float(r["_score"]) for r in rows), default=0.0) or 1.0
        return [{**r, "_score": float(r["_score"]) / top} for r in rows]

    merged = normalised(base) + normalised(local)
    merged.sort(key=lambda r: -r["_score"])
    return merged[:limit]


# -------------------------------------------------------------------------------------- the workspace
def open_store(local: IndexStore, root: Path, uri: str) -> SharedStore:
    base = SharedBase(uri)
    return SharedStore(local, base, changed_since(root, base.manifest.commit))


def update_local(index: WorkspaceIndex, progress: ProgressCallback | None = None) -> IndexReport:
    """Bring the workspace's local index to the files that differ from the shared base's commit: index
    those, drop the ones that no longer differ."""
    store = index.store
    assert isinstance(store, SharedStore)
    store.follow_base(index.root)
    store.changed = changed_since(index.root, store.commit)
    with store.local.writer():  # one writer: the lock is held across both steps
        stale = sorted(set(store.local.file_records()) - store.changed)
        if stale:
            store.local.delete_files(stale)
        notify: Callable[[str, int, int], None] = progress or (lambda *_: None)
        notify("indexing", 0, len(store.changed))
        report = index.update_paths([index.root / p for p in sorted(store.changed)])
    report.files_removed += len(stale)
    report.warnings.append(
        f"shared index of commit {store.commit[:12]} ({store.base.manifest.files} files); "
        f"{len(store.changed)} changed here"
    )
    notify("indexing", len(store.changed), len(store.changed))
    return report
