"""Indexing on a Ray cluster: ``agentls index --engine ray [--address ADDR]``.

A Ray run indexes in two rounds of Ray tasks, then commits each table once. The first run (or one that
must add vectors to an index where some or all chunks have none) rebuilds the whole index; later runs
parse only the files that are new or changed since the index's records (size or modification time, as
the local engine), and drop the rows of changed and removed files in the commit:

1. walk: ``n`` tasks each list one part of the tree (`indexing.walker.walk` with ``part=(k, n)``: the
   same ignore rules, secret paths and size limits as a local walk) and return the files' entries;
2. parse and write: the files, in path order, are cut into groups of about equal size; each task reads,
   hashes, redacts, parses and chunks its group with the local engine's code
   (`indexing.parsing.process_many`), embeds the chunks when a model is present, and writes the rows
   as new Lance fragments of the chunks, symbols, vectors and files tables
   (`lance.fragment.write_fragments`). It commits nothing and returns the fragments' metadata. An
   embedding endpoint that is down or answers an error (after the provider's retries) costs the task its
   vectors only: its rows are written without them, and the run reports the failure once, with the
   endpoint's credentials masked, as a local run does (`IndexReport.embedding_failed`: `agentls index`
   exits 3), so the index is searchable lexically and the next run, seeing chunks without a vector,
   rebuilds it with them. An endpoint that cannot tell its model's size fails the run's first step
   (`WorkspaceIndex.prepare_embedder`) and the run is lexical, with the same report;
3. commit: the driver, which holds the index's write lock for the whole run, commits every table with
   one `LanceOperation.Overwrite` of all its new fragments (an incremental run: a delete of the changed
   and removed files' rows, then one `LanceOperation.Append`), the files table last (the commit point, as
   in `indexing.store`; meta.json marks the commits as a pending write, so a run killed between two of
   them leaves rows that the next run removes). Then it compacts (a full run; an incremental one when
   fragments piled up), drops the superseded versions, builds the full-text, scalar and vector indexes
   that are missing, and, after a full run, writes the file state (`indexing.state`) exactly as a local full
   run does, so the next local run finds the index up to date without opening it.

A run that fails, is cancelled or is killed before step 3 leaves every table at its previous version:
searches and the next run see the previous index. The fragments it wrote are data files no version
refers to; the next compaction deletes them (`IndexStore.optimize` deletes unverified files).

The workers need the workspace and the index folder at the same paths as the driver (one machine, or a
shared file system), and agentls with its ``ray`` extra (Ray and pylance) installed.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from indexing import state as files_state
from indexing.config import EmbeddingSettings, IndexSettings
from indexing.models import FileRecord, IndexReport, ParseLimits, SkippedFile
from indexing.progress import finishing_steps
from indexing.ray_connect import RayUnavailable, connect
from indexing.walker import FileEntry, changed_entries, explain_ignored, resolve_root, walk

if TYPE_CHECKING:
    from indexing.embeddings import Embedder
    from indexing.service import WorkspaceIndex
    from indexing.store import IndexStore

log = logging.getLogger(__name__)

__all__ = ["RayIndexFailed", "RayIndexer", "RayUnavailable"]

ProgressCallback = Callable[[str, int, int], None]

_TABLES = ("chunks", "symbols", "vectors", "files")  # the commit order: the files table last
_GROUP_BYTES = 8 << 20  # source bytes a parse task takes at most (rows of ~8 MB of code stay in memory)
_GROUPS_PER_CPU = 4  # parse tasks per CPU of the cluster at least: small groups even out the work
_MIN_GROUP_FILES = 32  # ...but not fewer files a task: each one loads the model (when there is one) anew
_WAIT_SECONDS = 0.5  # how often the driver looks at cancellation while tasks run


class RayIndexFailed(Exception):
    """A Ray task failed; nothing was committed, the previous index is unchanged."""


# ------------------------------------------------------------------------------------------ the tasks


@dataclass(frozen=True, slots=True)
class _Target:
    """Where and how a parse task writes each table's fragments (read from the tables by the driver)."""

    uris: dict[str, str]
    schemas: dict[str, pa.Schema]
    storage_versions: dict[str, str]


@dataclass(frozen=True, slots=True)
class _Embedding:
    """What a parse task needs to load the run's embedding model itself."""

    settings: EmbeddingSettings
    cache_dir: str
    env: dict[str, str]
    embedder_id: str


@dataclass(slots=True)
class _GroupResult:
    """What a parse task sends back: the new fragments of each table (as JSON) and what it saw."""

    fragments: dict[str, list[str]] = field(default_factory=dict)
    files: int = 0
    chunks: int = 0
    symbols: int = 0
    vectors: int = 0
    skipped: list[SkippedFile] = field(default_factory=list)
    embedding_failure: str | None = None
    """Why embedding this group's chunks failed (credentials masked); its rows are written without vectors."""


def _walk_part(
    root: str, settings: IndexSettings, part: tuple[int, int]
) -> tuple[list[FileEntry], list[SkippedFile]]:
    """Ray task: list one part of the tree."""
    entries: list[FileEntry] = []
    skipped: list[SkippedFile] = []
    for item in walk(Path(root), settings, part=part):
        if isinstance(item, SkippedFile):
            skipped.append(item)
        else:
            entries.append(item)
    return entries, skipped


def _index_group(
    entries: list[FileEntry], limits: ParseLimits, target: _Target, embedding: _Embedding | None
) -> _GroupResult:
    """Ray task: parse a group of files and write its rows as uncommitted fragments of every table."""
    from indexing.parsing import Parsed, process_many

    result = _GroupResult()
    records: list[FileRecord] = []
    chunk_parts: list[pa.Table] = []
    symbol_parts: list[pa.Table] = []
    for start in range(0, len(entries), 24):
        for outcome in process_many(entries[start : start + 24], limits, {}):
            if isinstance(outcome, Parsed):
                records.append(outcome.record)
                chunk_parts.append(outcome.chunks)
                symbol_parts.append(outcome.symbols)
            elif isinstance(outcome, SkippedFile):
                result.skipped.append(outcome)
    chunks = _concat(chunk_parts, target.schemas["chunks"])
    symbols = _concat(symbol_parts, target.schemas["symbols"])
    tables = {"chunks": chunks, "symbols": symbols, "files": _files_rows(records, target.schemas["files"])}
    if embedding is not None and chunks.num_rows:
        try:
            tables["vectors"] = _vector_rows(chunks, embedding, target.schemas["vectors"])
        except Exception as exc:  # like a local run: the rows stay, the vectors come on the next run
            from indexing.credentials import mask_urls

            result.embedding_failure = mask_urls(str(exc))
    for name, rows in tables.items():
        if rows.num_rows:
            result.fragments[name] = _write_fragments(rows, name, target)
    result.files, result.chunks, result.symbols = len(records), chunks.num_rows, symbols.num_rows
    result.vectors = tables["vectors"].num_rows if "vectors" in tables else 0
    return result


def _concat(parts: list[pa.Table], schema: pa.Schema) -> pa.Table:
    return pa.concat_tables([schema.empty_table(), *parts]).cast(schema).combine_chunks()


def _files_rows(records: Sequence[FileRecord], schema: pa.Schema) -> pa.Table:
    columns = {name: [getattr(record, name) for record in records] for name in schema.names}
    return pa.table(columns, schema=schema)


def _vector_rows(chunks: pa.Table, embedding: _Embedding, schema: pa.Schema) -> pa.Table:
    from indexing.embeddings import load_embedder
    from indexing.rows import chunk_text
    from indexing.service import embedding_text

    load = load_embedder(embedding.settings, cache_dir=Path(embedding.cache_dir), env=embedding.env)
    embedder = load.embedder
    if embedder is None or embedder.id != embedding.embedder_id:
        found = embedder.id if embedder is not None else load.notice
        raise RuntimeError(f"this worker has not the run's embedding model {embedding.embedder_id} ({found})")
    max_chars = embedding.settings.max_chars
    texts = [
        embedding_text(path, symbol, chunk_text(stored, size), max_chars)
        for path, symbol, stored, size in zip(
            chunks.column("path").to_pylist(),
            chunks.column("symbol").to_pylist(),
            chunks.column("search_text").to_pylist(),
            chunks.column("text_chars").to_pylist(),
            strict=True,
        )
    ]
    vectors = _embed(embedder, texts, embedding.settings.batch_size)
    flat = pa.array(vectors.reshape(-1), type=pa.float32())
    dim = vectors.shape[1]
    columns = [chunks.column("id"), chunks.column("path"), pa.FixedSizeListArray.from_arrays(flat, dim)]
    return pa.Table.from_arrays(columns, schema=schema)


def _embed(embedder: Embedder, texts: Sequence[str], size: int) -> np.ndarray:
    parts = [embedder.embed(texts[i : i + size]) for i in range(0, len(texts), size)]
    return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)


def _write_fragments(rows: pa.Table, name: str, target: _Target) -> list[str]:
    from lance.fragment import write_fragments

    fragments = write_fragments(
        rows,
        target.uris[name],
        schema=target.schemas[name],
        data_storage_version=target.storage_versions[name],
    )
    assert isinstance(fragments, list)
    return [json.dumps(fragment.to_json()) for fragment in fragments]


# ----------------------------------------------------------------------------------------- the driver


def _connect(address: str | None) -> Any:
    """Ray, initialised for this driver (`indexing.ray_connect.connect`), once pylance is known to be
    there: the tasks write with it, so a missing one fails here, not on the cluster."""
    try:
        import lance  # noqa: F401
    except ImportError as missing:
        raise RayUnavailable(
            "pylance is not installed: pip install 'agentls[ray]' (or use --engine local)"
        ) from missing
    return connect(address)


class RayIndexer:
    """Rebuilds one workspace's index on a Ray cluster (see the module docstring); `index` has the
    signature of `WorkspaceIndex.index`, so the CLI runs either the same way."""

    def __init__(self, workspace: WorkspaceIndex, address: str | None = None) -> None:
        self.workspace = workspace
        self.address = address

    def index(
        self, progress: ProgressCallback | None = None, cancel: threading.Event | None = None
    ) -> IndexReport:
        from indexing.service import IndexCancelled

        resolve_root(self.workspace.root)  # before the store: no index folder for a missing workspace
        with self.workspace.store.writer():  # a busy index is told before Ray is joined
            ray = _connect(self.address)
            try:
                return self._run(ray, progress or (lambda phase, done, total: None), cancel)
            except KeyboardInterrupt as exc:
                message = "interrupted before the commit; the previous index is unchanged"
                raise IndexCancelled(message) from exc
            finally:
                ray.shutdown()

    def _run(self, ray: Any, notify: ProgressCallback, cancel: threading.Event | None) -> IndexReport:
        started = time.perf_counter()
        ws = self.workspace
        settings, root = ws.settings, ws.root.resolve()
        report = IndexReport(root=str(ws.root))
        store = ws.store
        with store.writer():
            embedder = self.workspace.prepare_embedder(store, report)
            previous = store.file_records()
            target = _target(store, embedder is not None)
            cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))

            notify("scanning", 0, 0)
            walk_task = ray.remote(num_cpus=1, max_retries=2)(_walk_part)
            parts = 2 * cpus
            refs = [walk_task.remote(str(root), settings, (k, parts)) for k in range(parts)]
            entries: list[FileEntry] = []
            skipped: dict[str, SkippedFile] = {}  # a top-level folder that cannot be listed: once
            for n, (part_entries, part_skipped) in enumerate(_gather(ray, refs, cancel), 1):
                entries += part_entries
                skipped.update((item.path, item) for item in part_skipped)
                notify("scanning", len(entries), len(entries) if n == parts else 0)
            entries.sort(key=lambda e: e.path)
            report.files_seen = len(entries) + len(skipped)
            # An index is there (with every chunk's vector if the run embeds): only new and changed files
            # are parsed. Chunks without a vector (an endpoint that failed before) make a full run.
            incremental = bool(previous) and (embedder is None or not _vectors_missing(store))
            todo = changed_entries(entries, previous) if incremental else entries
            removed = sorted(set(previous) - {e.path for e in entries}) if incremental else []
            ignored = explain_ignored(root, settings)
            if ignored:
                log.warning("%s", ignored)
                report.warnings.append(ignored)

            from indexing.secrets import load_key

            limits = replace(settings.parse_limits(), secret_key=load_key(ws.cache_dir))
            embedding = self._embedding(embedder)
            groups = _groups(todo, _GROUPS_PER_CPU * cpus)
            parse_task = ray.remote(num_cpus=1, max_retries=2)(_index_group)
            limits_ref, target_ref = ray.put(limits), ray.put(target)
            refs = [parse_task.remote(group, limits_ref, target_ref, embedding) for group in groups]
            sizes = {ref: len(group) for ref, group in zip(refs, groups, strict=True)}
            fragments: dict[str, list[str]] = {name: [] for name in target.uris}
            skipped_when_read: dict[str, str] = {}
            done = 0
            notify("indexing", 0, len(todo))
            for ref, result in _gather(ray, refs, cancel, with_refs=True):
                done += sizes[ref]
                for name, metadata in result.fragments.items():
                    fragments[name] += metadata
                for item in result.skipped:
                    skipped[item.path] = item
                    skipped_when_read[item.path] = item.reason.value
                report.files_indexed += result.files
                report.chunks += result.chunks
                report.symbols += result.symbols
                report.vectors += result.vectors
                if result.embedding_failure is not None:  # said once per run, as locally
                    ws.record_embedding_failure(report, result.embedding_failure)
                notify("indexing", done, len(todo))
            if cancel is not None and cancel.is_set():
                raise _cancelled()

            notify("finishing", 0, 0)
            files_state.discard(ws.location)
            if incremental:
                _commit_changes(store, target, fragments, [e.path for e in todo] + removed)
                report.files_unchanged = len(entries) - len(todo)
                report.files_removed = len(removed) + len(set(skipped_when_read) & set(previous))
            else:
                _commit(store, target, fragments)
                report.files_removed = len(set(previous) - {e.path for e in entries} - set(skipped_when_read))
            for item in skipped.values():
                report.skipped[item.reason.value] = report.skipped.get(item.reason.value, 0) + 1
            store.refresh()
            ws.inherit_docs(store, [e.path for e in todo] + removed, embedder, report)  # as a local run does
            step = finishing_steps(notify)
            if (previous and not incremental) or store.max_fragments() >= settings.compact_after_fragments:
                store.optimize(keep_versions=timedelta(0), step=step)  # the previous index's data goes now
            store.ensure_indexes(vector_index_min_rows=settings.vector_index_min_rows, step=step)  # compacted
            if report.lexical_only and not report.errors and not incremental:  # as in a local full run
                state = files_state.state_of(settings, entries, skipped_when_read, report.notice)
                files_state.save_or_log(state, ws.location)
            notify("finishing", 1, 1)
        report.seconds = time.perf_counter() - started
        return report

    def _embedding(self, embedder: Embedder | None) -> _Embedding | None:
        """What the tasks need to load the model; of the environment only what locates it or its key."""
        if embedder is None:
            return None
        ws = self.workspace
        names = {"HOME", "XDG_CACHE_HOME", "HF_HOME", "HF_HUB_CACHE", ws.settings.embedding.api_key_env}
        env = {k: v for k, v in ws.env.items() if k in names}
        return _Embedding(ws.settings.embedding, str(ws.cache_dir), env, embedder.id)


def _vectors_missing(store: IndexStore) -> bool:
    """Whether some chunks have no vector (or there is no vectors table)."""
    return not store.has_vectors or store.chunks_without_vectors(["id"])[0] > 0


def _target(store: IndexStore, with_vectors: bool) -> _Target:
    """The tables' URIs, schemas and Lance file format versions, read from the tables themselves."""
    import lancedb

    db = lancedb.connect(str(store.location / "lance"))
    uris: dict[str, str] = {}
    schemas: dict[str, pa.Schema] = {}
    versions: dict[str, str] = {}
    existing = set(db.list_tables().tables)
    for name in _TABLES:
        if name not in existing or (name == "vectors" and not with_vectors and not store.has_vectors):
            continue
        dataset = db.open_table(name).to_lance()
        uris[name], schemas[name] = dataset.uri, dataset.schema
        versions[name] = str(dataset.data_storage_version)
    return _Target(uris, schemas, versions)


def _commit(store: IndexStore, target: _Target, fragments: Mapping[str, list[str]]) -> None:
    """One Overwrite commit per table, the files table last, marked as a pending write meanwhile."""
    import lance
    from lance.fragment import FragmentMetadata

    store._set_pending(True)  # a run killed between two commits: the next run removes the orphans
    for name in _TABLES:
        if name not in target.uris:
            continue
        metadata = [FragmentMetadata.from_json(item) for item in fragments.get(name, [])]
        dataset = lance.dataset(target.uris[name])
        operation = lance.LanceOperation.Overwrite(target.schemas[name], metadata)
        lance.LanceDataset.commit(target.uris[name], operation, read_version=dataset.version)
    store._set_pending(False)


def _commit_changes(
    store: IndexStore, target: _Target, fragments: Mapping[str, list[str]], replaced: Sequence[str]
) -> None:
    """An incremental run's commits: per table, the rows of the ``replaced`` paths (changed, removed)
    deleted, then the new fragments appended; the files table last, marked as a pending write
    meanwhile (a run killed in between leaves rows the next run removes, and files it re-indexes)."""
    import lance
    from lance.fragment import FragmentMetadata

    from indexing.store import in_list

    store._set_pending(True)
    for name in _TABLES:
        if name not in target.uris:
            continue
        dataset = lance.dataset(target.uris[name])
        for start in range(0, len(replaced), 500):
            dataset.delete(in_list("path", replaced[start : start + 500]))
        metadata = [FragmentMetadata.from_json(item) for item in fragments.get(name, [])]
        if metadata:
            operation = lance.LanceOperation.Append(metadata)
            lance.LanceDataset.commit(target.uris[name], operation, read_version=dataset.latest_version)
    store._set_pending(False)


def _groups(entries: Sequence[FileEntry], at_least: int) -> list[list[FileEntry]]:
    """Consecutive groups of about equal bytes: ``at_least`` of them, more when a group would pass
    `_GROUP_BYTES`, fewer when a group would hold fewer than `_MIN_GROUP_FILES` files."""
    if not entries:
        return []
    total = sum(max(e.size, 1) for e in entries)
    count = max(1, min(-(-len(entries) // _MIN_GROUP_FILES), max(at_least, -(-total // _GROUP_BYTES))))
    share = total / count
    groups: list[list[FileEntry]] = [[]]
    filled = 0
    for entry in entries:
        if filled >= share * len(groups) and len(groups) < count:
            groups.append([])
        groups[-1].append(entry)
        filled += max(entry.size, 1)
    return [g for g in groups if g]


def _gather(
    ray: Any, refs: list[Any], cancel: threading.Event | None, with_refs: bool = False
) -> Iterator[Any]:
    """The tasks' results as they finish; on cancellation or a failed task the others are cancelled."""
    pending = list(refs)
    try:
        while pending:
            if cancel is not None and cancel.is_set():
                raise _cancelled()
            ready, pending = ray.wait(
                pending, num_returns=len(pending), timeout=_WAIT_SECONDS, fetch_local=True
            )
            for ref in ready:
                try:
                    value = ray.get(ref)
                except Exception as exc:
                    raise RayIndexFailed(
                        f"a Ray task failed ({type(exc).__name__}: {str(exc).strip().splitlines()[-1]}); "
                        "nothing was committed and the previous index is unchanged. Run again, or with "
                        "--engine local"
                    ) from exc
                yield (ref, value) if with_refs else value
    finally:
        for ref in pending:
            try:
                ray.cancel(ref, force=True)
            except Exception:  # already finished or gone: nothing to stop
                log.debug("cannot cancel a Ray task", exc_info=True)


def _cancelled() -> Exception:
    from indexing.service import IndexCancelled

    return IndexCancelled("cancelled before the commit; the previous index is unchanged")
