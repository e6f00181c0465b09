"""The workspace index as a service: full and incremental indexing, hybrid search, symbol lookup.

``WorkspaceIndex`` is what the CLI, the language server and the agent use. One instance per workspace
root; it opens the LanceDB store lazily, loads the embedding model once, and is safe to call from one
writer thread and several reader threads.

An index run:

1. walks the workspace (ignores, secrets, size limits) and compares each file's size and mtime with its
   stored record; only changed or new files are read, and of those only files whose content hash
   changed are parsed. The walk reuses the listings of unchanged folders from the previous run
   (`WalkSnapshot`, kept in the index folder), so a run over an unchanged tree mostly stats files; when
   a lexical index's file state (`indexing.state`) shows nothing changed since the last full run, the
   run ends there without opening the tables;
2. parses in worker processes (tree-sitter holds the GIL) and writes batches of whole files, each batch
   committed by its file rows, so an interrupted run resumes where it stopped, without duplicates;
3. removes files that disappeared (or became ignored), gives PHP ``{@inheritDoc}`` methods of the
   written files and of their subclasses' files their parents' docs (`indexing.inherited_docs`; a save
   too), embeds chunks that lack vectors (when a model is available), builds missing indexes and compacts
   the tables when fragments pile up.

An embedding endpoint that cannot be reached or answers an error loses no work: the run stops embedding
at its first failure (the provider has retried by then), writes its chunks, symbols and full-text index
without vectors, and says so once in `IndexReport.errors` (``embedding_failed`` set; the endpoint named
without its credentials); the next run embeds the chunks that have no vector. A search whose query cannot
be embedded is answered by the full-text and symbol retrievers, with a note saying so.

A save re-indexes just the saved files (`update_paths`). An editor's open document can be prepared
before it is saved (`prepare`: its rows, and vectors, made from its text and kept with the text's content
hash), so that the save only reads the file, checks the hash and writes; `fold` then puts the saved rows
in the full-text index, which every search would otherwise read one by one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import contextlib
import dataclasses
import logging
import os
import threading
import time
from collections.abc import Container, Coroutine, Iterable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
import pyarrow as pa

from indexing import inherited_docs
from indexing import state as files_state
from indexing.config import IndexSettings, default_index_location
from indexing.credentials import mask_urls
from indexing.embeddings import Embedder, EmbedderLoad, embed_query, load_embedder
from indexing.expansion import lexical_query
from indexing.inherited_docs import embedding_source
from indexing.memory import heap_frozen, release_memory, rss_mib
from indexing.models import (
    FileRecord,
    IndexReport,
    ParseLimits,
    SearchHit,
    SkippedFile,
    Symbol,
)
from indexing.parsing import (
    Outcome,
    Parsed,
    ParsedGroup,
    Prepared,
    Unchanged,
    init_parser_process,
    main_module_hidden,
    parser_context,
    parser_processes,
    parsers_warm,
    parses_in_pool,
    prepare_text,
    process_many,
    use_prepared,
    warm_up_parsers,
)
from indexing.progress import ProgressCallback as ProgressCallback
from indexing.progress import finishing_steps
from indexing.ranking import RankingWeights, analyse, files_view, rank, symbol_names, to_hit
from indexing.rerank import Reranker, load_reranker, rerank_hits
from indexing.rows import chunk_text
from indexing.secrets import PATH_PLACEHOLDER, PLACEHOLDER, load_key, redact_path
from indexing.store import (
    RANK_COLUMNS,
    FileBatchItem,
    IndexStore,
    index_identity,
    path_filter,
)
from indexing.walker import (
    FileEntry,
    SourceFile,
    WalkSnapshot,
    WorkspaceError,
    changed_entries,
    check_path,
    explain_ignored,
    resolve_root,
    walk,
)

log = logging.getLogger(__name__)
_T = TypeVar("_T")


_PREPARED_FILES = 8
"""Open documents whose prepared rows (`WorkspaceIndex.prepare`) are kept; the oldest go first."""
_BATCH_BYTES = 48 << 20
"""A batch of parsed files is written once its rows take this much memory, whatever `batch_files` says.
Counted in files alone, a batch of 1,000 kernel files held up to a gigabyte of rows (folders of generated
headers just under `max_file_bytes`), and `agentls index` peaked at 2.5 GB."""
_GROUP_FILES, _GROUP_BYTES = 24, 2 << 20
"""Files sent to a parser process at once: at most this many, and at most this much source (one larger
file goes alone), so the groups in flight hold a bounded amount of text however large the files are."""


class IndexCancelled(Exception):
    """The run was cancelled; everything committed before stays valid."""


class IndexUnwritable(WorkspaceError):
    """The index's folder cannot be created or opened (the cache folder is a file, or read-only, or
    ``index.uri`` names such a place); the message names the folder, why, and where it comes from."""


def _start_pool(pool: cf.ProcessPoolExecutor) -> None:
    """Start `pool`'s first process (a submit forks one) and wait until it answers."""
    with contextlib.suppress(Exception):  # a pool that cannot start fails the real submits, with its error
        pool.submit(os.getpid).result()


_NO_VECTORS = (
    "The chunks, symbols and full-text index are written and search works, lexically for what has no "
    "vector; the next index run adds the missing vectors once the endpoint answers"
)
_EMBEDDING_PAUSE = 30.0
"""Seconds after an embedding failure during which searches, open documents and saves do not ask again."""

MAX_QUERY_CHARS = 4000
"""A search uses this many characters of its query at most (a stack trace fits; a pasted file does not)."""


class WorkspaceIndex:
    """Index and search one workspace root."""

    def __init__(
        self,
        root: Path,
        settings: IndexSettings | None = None,
        *,
        cache_dir: Path,
        env: Mapping[str, str] | None = None,
        weights: RankingWeights | None = None,
    ) -> None:
        self.root = root
        self.settings = settings or IndexSettings()
        self.cache_dir = cache_dir
        self.env = dict(env or {})
        self.weights = weights or RankingWeights(expansion=self.settings.query_expansion)
        self.location = self.settings.location(root, cache_dir)
        self._store: IndexStore | None = None
        self._embedder_load: EmbedderLoad | None = None
        self._open_lock = threading.Lock()
        self._maintenance: threading.Thread | None = None
        self._notice_given = False
        self._reranker_loaded: tuple[Reranker | None] | None = None
        self._prepared: dict[str, Prepared] = {}  # `prepare`: open documents' rows, newest last
        self._prepared_lock = threading.Lock()
        self._embedding_failure: tuple[float, str] | None = None  # when and why embedding last failed
        self._identity: str | None = None  # `index_identity` of the index `_store` opened
        self._replaced = False  # the index was deleted while open here: only a full run makes it whole

    # ------------------------------------------------------------------ setup
    @property
    def store(self) -> IndexStore:
        with self._open_lock:
            if self._store is None:
                try:
                    store = IndexStore.open(self.location, root=str(self.root.resolve()))
                except OSError as exc:
                    raise IndexUnwritable(_unwritable(self.location, exc, self.settings.uri)) from exc
                self._identity = index_identity(self.location)
                if self.settings.shared:  # a team's base on object storage, this store for changed files
                    from indexing.shared import open_store

                    store = open_store(store, self.root, self.settings.shared)  # type: ignore[assignment]
                self._store = store
            return self._store

    @property
    def embedder_load(self) -> EmbedderLoad:
        if self._embedder_load is None:
            self._embedder_load = load_embedder(
                self.settings.embedding, cache_dir=self.cache_dir, env=self.env
            )
            if self._embedder_load.notice:
                log.info("%s", self._embedder_load.notice)  # the caller shows it to the user once
        return self._embedder_load

    @property
    def embedder(self) -> Embedder | None:
        return self.embedder_load.embedder

    def close(self) -> None:
        self._store = None

    def reopen_if_replaced(self) -> bool:
        """Whether the index folder was deleted (or deleted and made again by another process) since its
        store was opened here, as when the cache is cleared while the language server runs. Its open
        tables, whose files are gone, are then dropped: the next use opens the index on disk, or makes an
        empty one."""
        with self._open_lock:
            if self._store is None or index_identity(self.location) == self._identity:
                return False
            self._store, self._replaced = None, True
        log.warning("the index at %s was deleted since it was opened; opening it again", self.location)
        return True

    def is_indexed(self) -> bool:
        """Whether files were indexed here before (then a search needs no index run first)."""
        if not (self.location / "meta.json").exists():
            return False
        return self.store.file_count() > 0

    # --------------------------------------------------------------- indexing
    def index(
        self,
        progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
        scan: files_state.Scan | None = None,
    ) -> IndexReport:
        """Bring the index up to date with the workspace on disk. ``scan``: a `files_state.scan` of the
        workspace made just before (the CLI makes one without loading LanceDB), used instead of walking
        it again."""
        resolve_root(self.root)  # before the store: no index folder for a missing workspace
        self.reopen_if_replaced()
        if self.settings.shared:  # only the files that differ from the shared base's commit
            from indexing.shared import update_local

            return update_local(self, progress)
        if scan is None:
            scan = files_state.scan(self.root, self.settings, self.location, self._lexical_notice, progress)
        if scan is not None and scan.unchanged:  # nothing changed since the last full run: tables not opened
            return scan.unchanged_report()
        started = time.perf_counter()
        report = IndexReport(root=str(self.root))
        store = self.store
        notify = progress or (lambda phase, done, total: None)
        if scan is None and parses_in_pool(None, self.settings.workers):
            warm_up_parsers()
        with store.writer(), heap_frozen():
            if scan is not None and not scan.still_valid(self.location):
                scan = None  # the index was written since the scan: walk again
            files_state.discard(self.location)
            embedder = self.prepare_embedder(store, report)
            notify("scanning", 0, 0)
            store.delete_orphans()
            kept_skipped: dict[str, str] = {}
            if scan is not None:  # only the files that changed since the last full run are looked at
                entries, skipped = scan.entries, list(scan.skipped)
                to_check, removed, kept_skipped = scan.changed, sorted(scan.removed), scan.kept_skipped
                records = store.file_records([e.path for e in to_check] + removed)
                report.files_seen = len(entries) + len(skipped)
                report.warnings.extend(scan.report.warnings)
                report.files_unchanged = len(entries) - len(to_check) - len(kept_skipped)
            else:
                records = store.file_records()
                entries, skipped = self._walk(report, notify)
                seen = {e.path for e in entries}
                to_check = changed_entries(entries, records)
                report.files_unchanged = len(entries) - len(to_check)
                removed = sorted(set(records) - seen)
            if removed:
                store.delete_files(removed)
                report.files_removed = len(removed)
            skipped_by_walk = len(skipped)
            self._index_entries(
                store, to_check, records, embedder, report, skipped, notify, cancel, known_paths=records
            )
            self.inherit_docs(store, [e.path for e in to_check] + removed, embedder, report)
            skipped_when_read = {
                **kept_skipped,
                **{item.path: item.reason.value for item in skipped[skipped_by_walk:]},
            }
            for reason in kept_skipped.values():
                report.skipped[reason] = report.skipped.get(reason, 0) + 1
            for item in skipped:
                report.skipped[item.reason.value] = report.skipped.get(item.reason.value, 0) + 1
            if embedder is not None and not report.embedding_failed:
                self._backfill_vectors(store, embedder, report, notify, cancel)
            notify("finishing", 0, 0)
            # After a large run, compact and keep only the newest version (superseded files freed): a
            # vector pass over the kernel left 3.1 GB of superseded vectors and index files otherwise.
            large = (
                report.files_indexed + report.files_removed >= self.settings.batch_files
                or report.vectors >= _LARGE_VECTOR_PASS
            )
            # The batches' freed heap goes back before the index builds make the run's peak.
            if large and rss_mib() >= _RELEASE_ABOVE_MIB:
                before, after = release_memory()
                log.info("before building the search indexes: %.0f -> %.0f MiB resident", before, after)
            self._maintain(store, keep_versions=timedelta(0) if large else None, notify=notify)
            if report.lexical_only and not report.errors:  # the last write: see `indexing.state`
                state = files_state.state_of(self.settings, entries, skipped_when_read, report.notice)
                files_state.save_or_log(state, self.location)
            notify("finishing", 1, 1)
        self._replaced = False
        report.seconds = time.perf_counter() - started
        return report

    def _walk(
        self, report: IndexReport, notify: ProgressCallback
    ) -> tuple[list[FileEntry], list[SkippedFile]]:
        """The workspace's files and the files the walk leaves out (the walk snapshot saved after)."""
        entries: list[FileEntry] = []
        skipped: list[SkippedFile] = []
        snapshot_file = self.location / "walk-snapshot.json"
        snapshot = WalkSnapshot.load(snapshot_file, self.settings)
        for item in walk(self.root, self.settings, snapshot=snapshot):
            if isinstance(item, SkippedFile):
                skipped.append(item)
            else:
                entries.append(item)
                if len(entries) % 2000 == 0:
                    notify("scanning", len(entries), 0)
        report.files_seen = len(entries) + len(skipped)
        try:
            snapshot.save(snapshot_file)
        except OSError as exc:  # the next walk lists every folder again; nothing else is lost
            log.warning("cannot save the walk snapshot %s: %s", snapshot_file, exc)
        notify("scanning", len(entries), len(entries))
        ignored = explain_ignored(self.root, self.settings)
        if ignored:
            log.warning("%s", ignored)
            report.warnings.append(ignored)
        return entries, skipped

    def update_paths(self, paths: Iterable[str | Path]) -> IndexReport:
        """Re-index just these files (saved, created, deleted or renamed); cheap, for on-save updates.

        A folder among them is re-indexed whole: one created or moved in has its files indexed, and the
        rows of every file once inside one deleted or moved away are removed (editors report a folder
        deleted, renamed or moved as that folder alone, not its files). When there is no index yet, or its
        folder was deleted since it was opened here, it is built whole (`index`), not of these files alone."""
        resolve_root(self.root)  # before the store: no index folder for a missing workspace
        if self.reopen_if_replaced() or self._replaced or index_identity(self.location) is None:
            return self.index()
        started = time.perf_counter()
        report = IndexReport(root=str(self.root))
        store = self.store
        wanted = {self._relative(p) for p in paths}
        wanted.discard("")
        with store.writer():
            files_state.discard(self.location)
            embedder = self.prepare_embedder(store, report)
            if embedder is not None and (failure := self._recent_failure()) is not None:
                embedder = None  # a save is not held up by the retries of an endpoint that just failed
                self._report_failure(report, failure)
            records = store.file_records(wanted)
            folders = [p for p in wanted if p not in records and not (self.root / p).is_file()]
            if folders:  # a folder, or a path gone that may have been one
                records.update(store.file_records_under(folders))
            present: dict[str, FileEntry] = {}
            skipped: list[SkippedFile] = []
            for item in walk(self.root, self.settings, only=wanted, whole_folders=True):
                if isinstance(item, SkippedFile):
                    skipped.append(item)
                else:
                    present[item.path] = item
            gone = sorted(p for p in records if p not in present)
            if gone:
                store.delete_files(gone)
                report.files_removed = len(gone)
            named = [entry for path, entry in present.items() if path in wanted]
            # A folder's files are read again only when their size or mtime changed, as in a full run: an
            # editor may report a folder as changed when one file in it is saved.
            inside = [entry for path, entry in present.items() if path not in wanted]
            inside = changed_entries(inside, records)
            ready, to_parse = self._take_prepared(named + inside, records, embedder)
            report.files_prepared = sum(isinstance(outcome, Parsed) for outcome in ready)
            self._index_entries(
                store, to_parse, records, embedder, report, skipped, lambda *_: None, None, ready=ready
            )
            self.inherit_docs(store, [*present, *gone], embedder, report)
            for item in skipped:
                report.skipped[item.reason.value] = report.skipped.get(item.reason.value, 0) + 1
        report.files_seen = len(present)
        report.seconds = time.perf_counter() - started
        if store.max_fragments() >= self.settings.compact_after_fragments:
            self._maintain_in_background()
        return report

    def prepare(self, path: str | Path, text: str, cancel: threading.Event | None = None) -> bool:
        """Parse and chunk an open document's ``text`` before it is saved, so that `update_paths` of the
        saved file only writes: the rows are kept (in memory, for the last `_PREPARED_FILES` documents)
        with the text's content hash and the parse limits, and used only for a file whose content on disk
        has that hash, read at the save under the same limits. With an embedding model, the chunks are
        embedded too (used while that model is the index's). A file the walker leaves out (ignored,
        secret, too large...) gets nothing prepared. ``cancel`` set meanwhile (a newer text of the
        document arrived) stops it after the parse or the embedding, and nothing is kept: the document's
        older rows are dropped at the start either way. True when rows were prepared."""
        rel = self._relative(path)
        if not rel:
            return False
        with self._prepared_lock:
            self._prepared.pop(rel, None)  # an older text's rows are of no use any more
        if not isinstance(check_path(self.root, rel, self.settings), FileEntry):
            return False
        prepared = prepare_text(rel, text, self._parse_limits())
        if not isinstance(prepared, Prepared) or (cancel is not None and cancel.is_set()):
            return False
        embedder = self.embedder
        if embedder is not None and prepared.chunks.num_rows and self._recent_failure() is None:
            try:  # the save would embed them otherwise: 627 chunks of kernel/sched/core.c, per save
                vectors = self._embed_texts(embedder, self._embedding_texts(prepared.chunks))
                prepared = dataclasses.replace(prepared, vectors=vectors, embedder=embedder.id)
            except Exception as exc:  # the save embeds them, and reports a failure
                log.info("embedding %s ahead of its save failed: %s", rel, self._note_failure(exc))
        if cancel is not None and cancel.is_set():
            return False
        with self._prepared_lock:
            self._prepared[rel] = prepared
            while len(self._prepared) > _PREPARED_FILES:
                self._prepared.pop(next(iter(self._prepared)))
        return True

    def _take_prepared(
        self, entries: list[FileEntry], records: Mapping[str, FileRecord], embedder: Embedder | None
    ) -> tuple[list[Outcome], list[FileEntry]]:
        """The outcomes of the ``entries`` that have prepared rows matching their file (`use_prepared`),
        and the entries still to parse. Prepared rows are used at most once; their vectors only when they
        are ``embedder``'s, the run's model (None: the run has none)."""
        with self._prepared_lock:
            taken = {e.path: p for e in entries if (p := self._prepared.pop(e.path, None)) is not None}
        if not taken:
            return [], entries
        limits = self._parse_limits()
        ready: list[Outcome] = []
        to_parse: list[FileEntry] = []
        for entry in entries:
            record = records.get(entry.path)
            prepared = taken.get(entry.path)
            stale = prepared is not None and (embedder is None or prepared.embedder != embedder.id)
            if prepared is not None and prepared.vectors is not None and stale:  # another model since
                prepared = dataclasses.replace(prepared, vectors=None, embedder="")
            outcome = None
            if prepared is not None:
                outcome = use_prepared(entry, limits, record.hash if record else None, prepared)
            if outcome is None:
                to_parse.append(entry)
            else:
                ready.append(outcome)
        return ready, to_parse

    def _parse_limits(self) -> ParseLimits:
        return dataclasses.replace(self.settings.parse_limits(), secret_key=load_key(self.cache_dir))

    def _maintain_in_background(self) -> None:
        """Compact after many small updates without making the update that crossed the line wait."""
        if self._maintenance is not None and self._maintenance.is_alive():
            return

        def work() -> None:
            try:
                self.maintain()
            except Exception:  # logged, never raised: the next update tries again
                log.exception("background index maintenance failed")

        self._maintenance = threading.Thread(target=work, name="agentls-index-maintenance", daemon=True)
        self._maintenance.start()

    def wait_for_maintenance(self, timeout: float | None = None) -> None:
        """Block until background maintenance (if any) is done: for tests and orderly shutdown."""
        if self._maintenance is not None:
            self._maintenance.join(timeout)

    def maintain(self) -> None:
        """Compact and re-index the tables if writes have piled up. Updates go on meanwhile: the store
        takes its write lock only to commit (`IndexStore.optimize`)."""
        store = self.store
        with store.held():
            self._maintain(store)

    def _relative(self, path: str | Path) -> str:
        p = Path(path)
        if p.is_absolute():
            try:
                p = p.resolve().relative_to(self.root.resolve())
            except ValueError:
                try:
                    p = p.relative_to(self.root)
                except ValueError:
                    return ""
        rel = p.as_posix()
        return "" if rel in (".", "") or rel.startswith("../") else rel

    def _lexical_notice(self) -> str | None:
        """The embedding notice when no model loads (the index stays lexical), else None."""
        load = self.embedder_load
        return load.notice if load.embedder is None else None

    def prepare_embedder(self, store: IndexStore, report: IndexReport) -> Embedder | None:
        """The embedding model of a run, its id and size set on `store`; None (the run lexical, with
        the reason in `report`) when there is none, or when a remote model's size could not be learnt (its
        endpoint failed: `embedding_failed`; the next run embeds what this one wrote)."""
        load = self.embedder_load
        if load.embedder is None:
            report.lexical_only = True
            report.notice = load.notice
            return None
        try:  # a remote model whose size is not known asks its endpoint for it
            embedder_id, dim = load.embedder.id, load.embedder.dim
        except Exception as exc:
            self._embedding_failed(report, exc)
            return None
        store.set_embedder(embedder_id, dim)
        return load.embedder

    def _embedding_failed(self, report: IndexReport, exc: BaseException) -> None:
        """Record that the run's embedding failed: one warning and one line in ``report.errors`` per run,
        naming the endpoint without its credentials; the run goes on without vectors."""
        self._report_failure(report, self._note_failure(exc))

    def record_embedding_failure(self, report: IndexReport, why: str) -> None:
        """Record that a run's embedding failed where this object cannot see it (a Ray task: `why` is the
        error's text), as a failure here is recorded: one line in ``report.errors`` per run, credentials
        masked."""
        self._report_failure(report, self._note_failure(why))

    def _note_failure(self, exc: BaseException | str) -> str:
        """Remember that embedding failed just now (`_recent_failure`); why, without credentials."""
        why = mask_urls(str(exc))
        self._embedding_failure = (time.monotonic(), why)
        return why

    def _report_failure(self, report: IndexReport, failure: str) -> None:
        if report.embedding_failed:
            return
        report.embedding_failed = True
        message = f"embedding failed: {failure}. {_NO_VECTORS}"
        log.info("%s", message)  # the caller shows report.errors to the user
        report.errors.append(message)

    def _recent_failure(self) -> str | None:
        """Why embedding failed, when it did in the last `_EMBEDDING_PAUSE` seconds (then a search's
        query, an open document and a save's chunks are not embedded: the endpoint is not asked again at
        each query, keystroke or save); else None. Full index runs always ask."""
        failure = self._embedding_failure
        if failure is None or time.monotonic() - failure[0] > _EMBEDDING_PAUSE:
            return None
        return failure[1]

    def _index_entries(
        self,
        store: IndexStore,
        entries: list[FileEntry],
        records: dict[str, FileRecord],
        embedder: Embedder | None,
        report: IndexReport,
        skipped: list[SkippedFile],
        notify: ProgressCallback,
        cancel: threading.Event | None,
        known_paths: Container[str] | None = None,
        ready: Sequence[Outcome] = (),
    ) -> None:
        """Parse and store ``entries``, and store the outcomes already ``ready`` (prepared rows).
        ``known_paths``: paths that may have rows (None: any may)."""
        total = len(entries) + len(ready)
        notify("indexing", 0, total)
        if not total:
            return
        known = {e.path: records[e.path].hash for e in entries if e.path in records}
        batch: list[FileBatchItem] = []
        touched: list[FileRecord] = []
        done = 0
        batch_bytes = 0  # of the rows in `batch`

        def flush(*, last: bool = False) -> None:
            nonlocal batch, touched, batch_bytes, embedder
            if batch:
                if not self._embed_batch(batch, embedder, report):
                    embedder = None  # the endpoint failed: the rest of the run is written without vectors
                # The last batch is written after the parse, on cores nothing else uses: its tables at once.
                store.write_batch(batch, known=known_paths, at_once=last)
                batch, batch_bytes = [], 0
            if touched:
                store.touch_files(touched)
                touched = []

        def consume(outcomes: Iterable[Outcome]) -> None:
            nonlocal done, batch_bytes
            for outcome in outcomes:
                done += 1
                if isinstance(outcome, SkippedFile):
                    skipped.append(outcome)
                    if outcome.path in records:  # it was indexed before, now it must go
                        store.delete_files([outcome.path])
                        report.files_removed += 1
                elif isinstance(outcome, Unchanged):
                    touched.append(outcome.record)
                    report.files_unchanged += 1
                else:
                    batch.append(
                        FileBatchItem(
                            outcome.record, outcome.chunks, outcome.symbols, outcome.vectors, outcome.rows
                        )
                    )
                    batch_bytes += outcome.size()
                    report.files_indexed += 1
                    report.chunks += outcome.chunks.num_rows
                    report.symbols += outcome.symbols.num_rows
                if (
                    len(batch) >= self.settings.batch_files
                    or batch_bytes >= _BATCH_BYTES
                    or len(touched) >= 4096
                ):
                    flush()
            notify("indexing", done, total)
            if cancel is not None and cancel.is_set():
                flush()
                raise IndexCancelled(f"indexing cancelled after {done} of {total} files; progress is saved")

        consume(ready)
        limits = self._parse_limits()
        if not parses_in_pool(len(entries), self.settings.workers):
            for start in range(0, len(entries), 16):
                consume(process_many(entries[start : start + 16], limits, known))
        else:
            groups = file_groups(entries, _GROUP_FILES, _GROUP_BYTES)
            # Groups in flight at once: parsed results wait here until written, so without a bound they
            # piled up whenever writing lagged behind parsing (the kernel's run peaked at 4.2 GB).
            window = max(8, 4 * self._workers())
            ctx = parser_context()
            with cf.ProcessPoolExecutor(
                max_workers=self._workers(),
                mp_context=ctx,
                initializer=init_parser_process,
                initargs=(os.getpid(),),
            ) as pool:
                futures: dict[int, cf.Future[ParsedGroup]] = {}

                def submit_until(end: int) -> None:
                    with main_module_hidden():  # workers are started by the submits
                        for n in range(len(futures) + len(stolen) + consumed, min(end, len(groups))):
                            group_known = _known_in(groups[n], known)
                            futures[n] = pool.submit(process_many, groups[n], limits, group_known)

                stolen: dict[int, ParsedGroup] = {}
                consumed = 0
                try:
                    # The first submit forks the first parser process, and waits until the fork server
                    # has imported `PRELOAD` (0.2-0.4 s after `warm_up_parsers`): unless the server had
                    # that time already (`agentls index` starts it before loading LanceDB), a thread waits
                    # for it while this process parses groups from the front. A warm pool starts in
                    # milliseconds, and this process then parses nothing (its first group would pay for
                    # importing detect-secrets, 0.15 s).
                    warm = parsers_warm()
                    starter = threading.Thread(
                        target=_start_pool, args=(pool,), name="agentls-parser-start", daemon=True
                    )
                    with main_module_hidden():
                        starter.start()
                        # At most a window's worth: parsed results wait here until the pool runs.
                        while not warm and starter.is_alive() and len(stolen) < min(window, len(groups) - 1):
                            if cancel is not None and cancel.is_set():
                                break
                            n = len(stolen)
                            stolen[n] = process_many(groups[n], limits, _known_in(groups[n], known))
                        starter.join()
                    first = len(stolen)
                    submit_until(first + window)
                    # The other parser processes fork now, quickly: until the first group sent out is back,
                    # this process parses groups from the back of the window.
                    last = max(futures, default=first)
                    while (
                        not warm
                        and last > first
                        and not futures[first].done()
                        and not (cancel is not None and cancel.is_set())
                        and futures[last].cancel()
                    ):
                        del futures[last]
                        group_known = _known_in(groups[last], known)
                        stolen[last] = process_many(groups[last], limits, group_known)
                        last -= 1
                    log.debug(
                        "parsed %d groups in-process while the parser processes started (%d of them first)",
                        len(stolen),
                        first,
                    )
                    for n in range(len(groups)):  # in order: deterministic batches, bounded memory
                        result = stolen.pop(n) if n in stolen else futures.pop(n).result()
                        consumed += 1
                        submit_until(n + 1 + window)
                        consume(result)
                        del result
                except BaseException:
                    for fut in futures.values():
                        fut.cancel()
                    raise
        flush(last=True)

    def inherit_docs(
        self, store: IndexStore, paths: list[str], embedder: Embedder | None, report: IndexReport
    ) -> None:
        """``{@inheritDoc}`` methods (PHP, Java, C#) of these written or removed files, and of their
        subclasses' files, given their parents' docs (`indexing.inherited_docs`), after a run's writes (this
        one's, or a Ray run's: `indexing.distributed`). A failure costs those docs, not the run."""
        embed = None
        if embedder is not None and not report.embedding_failed:
            embed = lambda rows: self._embed_texts(embedder, self._embedding_texts(rows))  # noqa: E731
        try:
            inherited_docs.refresh(store, self.root, paths, self._parse_limits(), embed)
        except Exception:
            log.exception("resolving the {@inheritDoc} methods of %d files failed", len(paths))

    def _workers(self) -> int:
        return parser_processes(self.settings.workers)

    def _embed_texts(self, embedder: Embedder, texts: Sequence[str]) -> np.ndarray:
        size = self.settings.embedding.batch_size
        parts = [embedder.embed(texts[i : i + size]) for i in range(0, len(texts), size)]
        if parts:
            self._embedding_failure = None  # it answers again: searches embed their queries again
        return np.concatenate(parts) if parts else np.zeros((0, embedder.dim), np.float32)

    def _embed_batch(
        self, batch: list[FileBatchItem], embedder: Embedder | None, report: IndexReport
    ) -> bool:
        """Embed the chunks of ``batch`` that have no vectors yet; False when the embedding failed (the
        batch is then written without them, and the next run embeds them)."""
        if embedder is None:
            return True
        todo = [n for n, item in enumerate(batch) if item.vectors is None]  # not embedded when prepared
        if not todo:
            return True
        texts = self._embedding_texts(pa.concat_tables([batch[n].chunks for n in todo]))
        if not texts:
            return True
        try:
            vectors = self._embed_texts(embedder, texts)
        except Exception as exc:  # remote providers fail; vectors are backfilled on the next run
            self._embedding_failed(report, exc)
            return False
        offset = 0
        for n in todo:
            item = batch[n]
            count = item.chunks.num_rows
            batch[n] = FileBatchItem(
                item.record, item.chunks, item.symbols, vectors[offset : offset + count], item.rows
            )
            offset += count
        report.vectors += len(texts)
        return True

    def _embedding_texts(self, rows: pa.Table) -> list[str]:
        """What the embedding model sees of each of these chunk rows (`embedding_text`)."""
        max_chars = self.settings.embedding.max_chars
        stored, sizes = rows.column("search_text").to_pylist(), rows.column("text_chars").to_pylist()
        chunk_texts = map(chunk_text, stored, sizes)
        return [
            embedding_text(path, symbol, embedding_source(text, search), max_chars)
            for path, symbol, text, search in zip(
                rows.column("path").to_pylist(),
                rows.column("symbol").to_pylist(),
                chunk_texts,
                stored,
                strict=True,
            )
        ]

    def _backfill_vectors(
        self,
        store: IndexStore,
        embedder: Embedder,
        report: IndexReport,
        notify: ProgressCallback,
        cancel: threading.Event | None,
    ) -> None:
        rows_per_write = 8 * self.settings.embedding.batch_size  # 2,048 rows with the default batch
        columns = ["id", "path", "symbol", "text", "search_text"]
        missing, batches = store.chunks_without_vectors(columns, rows_per_write)
        if not missing:
            return
        log.info("embedding %d chunks that have no vector yet", missing)
        done = 0
        for rows in batches:  # each batch is written before the next: a killed run resumes from here
            if cancel is not None and cancel.is_set():
                raise IndexCancelled("cancelled while embedding; progress is saved")
            texts = [
                embedding_text(
                    r["path"],
                    r["symbol"],
                    embedding_source(r["text"], r["search_text"]),
                    self.settings.embedding.max_chars,
                )
                for r in rows
            ]
            try:
                vectors = self._embed_texts(embedder, texts)
            except Exception as exc:  # what was embedded so far is written; the next run goes on
                self._embedding_failed(report, exc)
                return
            store.add_vectors([r["id"] for r in rows], [r["path"] for r in rows], vectors)
            report.vectors += len(rows)
            done += len(rows)
            notify("embedding", min(done, missing), missing)

    def _maintain(
        self,
        store: IndexStore,
        keep_versions: timedelta | None = None,
        notify: ProgressCallback | None = None,
    ) -> None:
        """Compact when fragments piled up and drop versions older than ``keep_versions`` (default: the
        store's), then build missing indexes. Compacting a few fragments is not worth its time (3 s of a
        loaded Django run), so a run with few batches leaves its small superseded versions. Compacting
        first builds a new index once over the final fragments: compacting after it remaps the index
        (the kernel's new vector index, 1.2 M rows: over 17 minutes of remapping after a 10-minute build).
        Each step is reported to ``notify`` as ``finishing/<step>``."""
        step = finishing_steps(notify)
        if store.max_fragments() >= self.settings.compact_after_fragments:
            if keep_versions is not None:
                store.optimize(keep_versions=keep_versions, step=step)
            else:
                store.optimize(step=step)
        store.ensure_indexes(vector_index_min_rows=self.settings.vector_index_min_rows, step=step)
        store.fold_new_rows()  # rows a small run wrote, which neither step put in the full-text index

    def fold(self) -> int:
        """Put the chunk rows written since the last fold (a save's) in the full-text index, so that
        searches stop reading them one by one (`IndexStore.fold_new_rows`); the server runs it after a
        save's update, off the save's path. The number of rows folded in (none when the index was deleted
        meanwhile: the next run builds it)."""
        if self.reopen_if_replaced() or self._replaced:
            return 0
        store = self.store
        with store.writer():
            return store.fold_new_rows()

    # ------------------------------------------------------------------ search
    def search(
        self,
        query: str,
        *,
        limit: int = 10,
        path: str | None = None,
        files: bool = False,
        notes: list[str] | None = None,
        diverse: bool = True,
    ) -> list[SearchHit]:
        """Hybrid search: BM25, vector and symbol-definition candidates, fused and ranked by `rank`.
        With ``files``, each file once, at its best chunk (`indexing.ranking.files_view`), from a pool of
        candidates twice as large. With ``diverse`` False, a file's hits keep their scores past its
        fourth (`RankingWeights.same_file` off): the agent's context of a question reads consecutive
        windows of one long function, the head among them. A query that cannot be embedded (the endpoint
        is down, or was in the last `_EMBEDDING_PAUSE` seconds) is searched without the vector leg, and
        ``notes`` gets a line saying so.

        Each store query costs a few milliseconds whatever it returns, most of it waiting on Lance: the
        store reads run as one coroutine on LanceDB's event loop (`_retrieve`), the three retrievers at
        once, and what a retriever needs next (the nearest chunks' rows) as soon as it can start."""
        query = query.strip()
        if not query:
            return []
        if len(query) > MAX_QUERY_CHARS:
            # A pasted file as a query: its start says what it is about, and the full-text engine
            # allocates per query word (18 MB of words aborted the process in Lance's Rust code).
            log.info("search: the query's first %d of %d characters are used", MAX_QUERY_CHARS, len(query))
            query = query[:MAX_QUERY_CHARS]
        reads = self._reads()
        embedder = self.embedder if reads.has_vectors else None
        if embedder is not None and (failure := self._recent_failure()) is not None:
            embedder = None
            self._lexical_search(failure, notes)
        pool = limit * 2 if files else limit
        lexical, vector, symbol = reads.run(self._retrieve(reads, query, pool, path, embedder, notes))
        reranker, wanted = self._reranker(), limit
        if reranker is not None:  # the second stage re-scores the best `candidates` (indexing.rerank)
            wanted = max(limit, self.settings.rerank.candidates)
        weights = files_view(self.weights) if files else self.weights
        if not diverse and not files:
            weights = dataclasses.replace(weights, same_file=1.0)
        hits = [to_hit(c) for c in rank(query, lexical, vector, wanted, weights, symbol)]
        if reranker is not None:
            hits = rerank_hits(reranker, query, hits, self.settings.rerank.candidates)[:limit]
        return hits

    async def _retrieve(
        self,
        reads: _Reads,
        query: str,
        limit: int,
        path: str | None,
        embedder: Embedder | None,
        notes: list[str] | None = None,
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
        """The lexical, vector and symbol candidates' rows (what `rank` takes).

        BM25, the symbol look-up and the vector leg start at once; the vector leg reads its chunks' rows
        as soon as it has their ids (reading the 30 cost about what reading the ones BM25 did not bring
        did, and waiting for BM25 cost a whole query); the definitions BM25 did not bring are read last."""
        where = self._where(path)
        analysis = analyse(query)
        bare_symbol = bool(analysis.symbol)
        # the prose words' code words (`indexing.expansion`) join the BM25 query, below the query's own
        weight = self.weights.expansion_lexical if self.weights.expansion else 0.0
        text = lexical_query(query, analysis.expansions, weight)
        lexical_job = asyncio.ensure_future(
            reads.search_lexical_async(text, _pool(limit), where, RANK_COLUMNS)
        )
        nearest_job: asyncio.Future[tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]] | None = None
        if embedder is not None and not bare_symbol:
            nearest_job = asyncio.ensure_future(
                self._nearest_rows(reads, embedder, query, _vector_pool(limit), where, notes)
            )
        locations = await self._symbol_locations_async(reads, query, path)
        # A query that is nothing but the name of a defined symbol (`Session.send`) is answered by name;
        # the nearest vectors added nothing to such queries on the retrieval benchmark's tuning split.
        if embedder is not None and bare_symbol and not locations:
            nearest_job = asyncio.ensure_future(
                self._nearest_rows(reads, embedder, query, _vector_pool(limit), where, notes)
            )
        lexical = await lexical_job
        symbol, missing = _held_by(locations, lexical)
        at_job = asyncio.ensure_future(reads.chunks_at_async(missing, RANK_COLUMNS)) if missing else None
        nearest, fetched = await nearest_job if nearest_job is not None else ([], {})
        if at_job is not None:
            symbol += await at_job
        meta = {**fetched, **{r["id"]: r for r in lexical}}  # a lexical row keeps its BM25 score
        vector = [{**meta[r["id"]], "_distance": r["_distance"]} for r in nearest if r["id"] in meta]
        return lexical, vector, symbol

    async def _nearest_rows(
        self,
        reads: _Reads,
        embedder: Embedder,
        query: str,
        pool: int,
        where: str | None,
        notes: list[str] | None = None,
    ) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
        """The ids and distances of the chunks nearest to the query, and their rows by id; none when the
        query cannot be embedded (a note then says so). The query is embedded in a thread: a
        sentence-transformers model would hold LanceDB's loop for a while."""
        try:
            vector = await asyncio.to_thread(embed_query, embedder, query)
        except Exception as exc:  # a remote endpoint down or refusing: the other retrievers answer
            self._lexical_search(self._note_failure(exc), notes)
            return [], {}
        nearest = await reads.search_vector_async(vector, pool, where)
        rows = await reads.chunks_by_id_async([r["id"] for r in nearest], RANK_COLUMNS)
        return nearest, {r["id"]: r for r in rows}

    def _lexical_search(self, failure: str, notes: list[str] | None) -> None:
        """Say that a search goes without its vector leg because embedding failed (``failure``)."""
        note = f"vector search skipped, these results are full-text and symbol matches only: {failure}"
        log.info("%s", note)  # the caller shows the notes to the user
        if notes is not None and note not in notes:
            notes.append(note)

    def _reads(self) -> _Reads:
        """The store's reads as coroutines: the store's own, or a shared store's through threads."""
        store = self.store
        return store if isinstance(store, IndexStore) else _ThreadedReads(store)

    def _reranker(self) -> Reranker | None:
        """The configured re-ranker, loaded on first use; `RerankError` when it cannot be."""
        if self._reranker_loaded is None:
            self._reranker_loaded = (load_reranker(self.settings.rerank, self.cache_dir, self.env),)
        return self._reranker_loaded[0]

    def search_lexical(self, query: str, *, limit: int = 10, path: str | None = None) -> list[SearchHit]:
        reads = self._reads()
        rows, _, symbol = reads.run(self._retrieve(reads, query, limit, path, None))  # no vector leg
        return [to_hit(c) for c in rank(query, rows, [], limit, self.weights, symbol)]

    async def _symbol_locations_async(
        self, reads: _Reads, query: str, path: str | None
    ) -> list[tuple[str, int]]:
        """Where the identifiers the query names (``Session.send``, ``task_struct``) are defined: at most
        12 (path, line) pairs, longest name first."""
        names = symbol_names(query)[:2]
        if not names:
            return []
        prefix = (self._relative(path) if Path(path).is_absolute() else path) if path else ""
        prefix = "" if prefix.strip("/") in ("", ".") else prefix.strip("/")
        locations: list[tuple[str, int]] = []
        # One query for all names (each query costs several ms), then in the names' order.
        found = await reads.definition_sites_async(names, 16 * len(names))
        for _, site_path, line in sorted(found, key=lambda s: names.index(s[0])):
            # Under the folder or the file as `path_filter` keeps them: `api` is not `api_v2/...`.
            under = not prefix or site_path == prefix or site_path.startswith(prefix + "/")
            if under and (site_path, line) not in locations:
                locations.append((site_path, line))
        return locations[:12]

    def search_vector(self, query: str, *, limit: int = 10, path: str | None = None) -> list[SearchHit]:
        reads = self._reads()
        embedder = self.embedder if reads.has_vectors else None
        if embedder is None:
            return []
        nearest, fetched = reads.run(
            self._nearest_rows(reads, embedder, query, _pool(limit), self._where(path))
        )
        rows = [{**fetched[r["id"]], "_distance": r["_distance"]} for r in nearest if r["id"] in fetched]
        return [to_hit(c) for c in rank(query, [], rows, limit, self.weights)]

    def _where(self, path: str | None) -> str | None:
        """The store filter for a folder or file, given workspace-relative or absolute."""
        return path_filter(self._relative(path) if path and Path(path).is_absolute() else path)

    def find_symbols(
        self,
        name: str,
        *,
        prefix: bool = False,
        role: str | None = None,
        path: str | None = None,
        limit: int = 200,
    ) -> list[Symbol]:
        return self.store.find_symbols(name, prefix=prefix, role=role, path=path, limit=limit)

    def secret_paths(self) -> list[str]:
        """Workspace-relative paths of the indexed files holding secret values (`IndexStore.secret_paths`)."""
        return self.store.secret_paths()

    def symbols_in_file(self, path: str, *, role: str | None = None) -> list[Symbol]:
        return self.store.symbols_in_file(
            self._relative(path) if Path(path).is_absolute() else path, role=role
        )


class _Reads(Protocol):
    """The store reads a search makes, as coroutines run together by `run` (`IndexStore` has them)."""

    @property
    def has_vectors(self) -> bool: ...

    def run(self, reads: Coroutine[Any, Any, _T]) -> _T: ...

    async def search_lexical_async(
        self, query: str, limit: int, where: str | None, columns: Sequence[str]
    ) -> list[dict[str, Any]]: ...

    async def search_vector_async(
        self, vector: np.ndarray, limit: int, where: str | None
    ) -> list[dict[str, Any]]: ...

    async def chunks_by_id_async(
        self, ids: Sequence[str], columns: Sequence[str]
    ) -> list[dict[str, Any]]: ...

    async def chunks_at_async(
        self, locations: Sequence[tuple[str, int]], columns: Sequence[str]
    ) -> list[dict[str, Any]]: ...

    async def definition_sites_async(
        self, names: Sequence[str], limit: int
    ) -> list[tuple[str, str, int]]: ...


class _ThreadedReads:
    """`_Reads` over a store with synchronous reads only (`indexing.shared.SharedStore`, which merges a
    shared base with the local store): each read runs in a thread, so a search's reads still overlap."""

    def __init__(self, store: Any) -> None:
        self.store = store

    @property
    def has_vectors(self) -> bool:
        return bool(self.store.has_vectors)

    def run(self, reads: Coroutine[Any, Any, _T]) -> _T:
        return asyncio.run(reads)

    async def search_lexical_async(
        self, query: str, limit: int, where: str | None, columns: Sequence[str]
    ) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self.store.search_lexical, query, limit, where, columns)

    async def search_vector_async(
        self, vector: np.ndarray, limit: int, where: str | None
    ) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self.store.search_vector, vector, limit, where)

    async def chunks_by_id_async(self, ids: Sequence[str], columns: Sequence[str]) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self.store.chunks_by_id, ids, columns) if ids else []

    async def chunks_at_async(
        self, locations: Sequence[tuple[str, int]], columns: Sequence[str]
    ) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self.store.chunks_at, locations, columns) if locations else []

    async def definition_sites_async(self, names: Sequence[str], limit: int) -> list[tuple[str, str, int]]:
        found = await asyncio.to_thread(self.store.find_symbols, list(names), role="definition", limit=limit)
        return [(s.name, s.path, s.line) for s in found]


def _held_by(
    locations: Sequence[tuple[str, int]], rows: Sequence[Mapping[str, Any]]
) -> tuple[list[dict[str, Any]], list[tuple[str, int]]]:
    """For each definition location, the smallest of ``rows`` (other than module code) that holds it,
    without its retriever score; and the locations no row holds."""
    found: list[dict[str, Any]] = []
    missing: list[tuple[str, int]] = []
    for p, n in locations:
        holding = [
            r
            for r in rows
            if r["path"] == p and r["start_line"] <= n <= r["end_line"] and r["kind"] != "module"
        ]
        if holding:
            best = min(holding, key=lambda r: r["end_line"] - r["start_line"])
            found.append({k: v for k, v in best.items() if not k.startswith("_")})  # no BM25 score
        else:
            missing.append((p, n))
    return found, missing


def file_groups(entries: Sequence[FileEntry], files: int, max_bytes: int) -> list[list[FileEntry]]:
    """``entries`` in order, cut into groups of at most ``files`` files and ``max_bytes`` bytes (a file
    larger than that makes a group of its own)."""
    groups: list[list[FileEntry]] = []
    group: list[FileEntry] = []
    size = 0
    for entry in entries:
        if group and (len(group) >= files or size + entry.size > max_bytes):
            groups.append(group)
            group, size = [], 0
        group.append(entry)
        size += entry.size
    if group:
        groups.append(group)
    return groups


def _known_in(group: list[FileEntry], known: dict[str, str]) -> dict[str, str]:
    """The stored hashes of the files of one group (what a parser process needs to skip unchanged files)."""
    return {e.path: known[e.path] for e in group if e.path in known}


def _pool(limit: int) -> int:
    """Candidates taken from each retriever before fusion and de-duplication."""
    return max(50, limit * 5)


def _vector_pool(limit: int) -> int:
    """Nearest chunks taken for a hybrid search: fewer than the lexical pool, since each one the lexical
    leg did not find is read from the store (about 0.3 ms a row on Django), and those past 30 did not
    change the top 10 on the retrieval benchmark's tuning split."""
    return max(30, limit * 3)


_LARGE_VECTOR_PASS = 20_000
"""Vectors written by one run past which it counts as large (its superseded versions are dropped)."""

_RELEASE_ABOVE_MIB = 512
"""Resident MiB from which a large run gives its freed heap back before building the search indexes.
Below it there is little to give back (Django: 278 -> 238 MiB) for the collection's 60-80 ms."""


def _unwritable(location: Path, exc: OSError, uri: str | None) -> str:
    """Why the index at `location` cannot be opened, and what setting put it there."""
    why = f"{exc.strerror}: {exc.filename}" if exc.strerror and exc.filename else str(exc)
    where = (
        "index.uri names it"
        if uri
        else "it is in agentls' cache folder: AGENTLS_CACHE_DIR, else $XDG_CACHE_HOME/agentls or "
        "~/.cache/agentls"
    )
    return (
        f"cannot create or open the index at {location} ({why}); {where}: point that at a folder you can "
        "write"
    )


def embedding_text(path: str, symbol: str, text: str, max_chars: int) -> str:
    """What the embedding model sees for a chunk: where it lives (a secret value in the path withheld:
    `indexing.secrets.redact_path`), what it defines, then its code. A withheld value's keyed placeholder
    (``<secret:1a2b3c4d>``) is seen as ``<secret>``: its digits differ from one index's key to another's, and
    would move the chunk's vector (and its rank among close ones) with them."""
    text = PLACEHOLDER.sub(PATH_PLACEHOLDER, text) if "<secret:" in text else text
    return f"{redact_path(path)} {symbol}\n{text}"[:max_chars]


__all__ = [
    "IndexCancelled",
    "IndexUnwritable",
    "ProgressCallback",
    "SourceFile",
    "WorkspaceError",
    "WorkspaceIndex",
    "default_index_location",
    "embedding_text",
]
