"""The embedded LanceDB store behind the index: files, chunks, symbols and vectors tables.

Layout of an index folder (one per workspace):

- ``files``: one row per indexed file (path, content hash, mtime, size, language). It is the commit
  point: a file's row is written only after its chunks, symbols and vectors are stored.
- ``chunks``: chunk metadata and text, plus ``search_text`` (text with identifiers split, path and symbol
  names) that carries the native full-text (BM25) index.
- ``symbols``: definitions and references from the tags queries.
- ``vectors``: chunk id, path and embedding. Kept apart from ``chunks`` so an index built without a model
  (offline, lexical only) gains vectors later without rewriting anything, and so a model change only
  drops this table.
- ``meta.json``: schema version, embedder id and the workspace root; a mismatch or an unreadable table
  marks the index corrupt, and the caller rebuilds it.

Every write replaces whole files: rows of the batch's paths are deleted from every table before the new
rows are added, so a run interrupted at any point resumes without duplicates.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Container, Coroutine, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

# Lance runs its compute work (index builds, scans) on `cpu count - LANCE_IO_CORE_RESERVATION` threads, the
# reservation being 2 cores for I/O: on a 2-core laptop or CI machine that is one thread, and the
# full-text index build at the end of every first index ran single-threaded (0.54 s on Django; 0.39 s on
# two threads). A local index waits on the disk little, so its compute gets every core unless the user
# says otherwise. Read by Lance once, on first use: set before any table is opened.
os.environ.setdefault("LANCE_CPU_THREADS", str(os.cpu_count() or 1))

import numpy as np
import pyarrow as pa
import pyarrow.compute

from indexing.lancedb_import import FTS, BTree, HnswSq, lancedb  # LanceDB, imported 2.5x faster
from indexing.lock import IndexCorrupt as IndexCorrupt  # re-exported: callers catch them from here
from indexing.lock import IndexError_ as IndexError_
from indexing.lock import IndexLock as _Lock
from indexing.lock import IndexLocked as IndexLocked
from indexing.models import FileRecord, Symbol
from indexing.paths import tag_cache_dir
from indexing.rows import (  # the row builders live where parser processes can import them cheaply
    CHUNKS_SCHEMA,
    SYMBOLS_SCHEMA,
    GroupRows,
    chunk_text,
    joined_rows,
)
from indexing.secrets import private_dir

log = logging.getLogger(__name__)

_T = TypeVar("_T")
# Imported with LanceDB by `indexing.lancedb_import` (importing them first would import LanceDB slowly).
_LANCE_LOOP = lancedb.background_loop.LOOP
FullTextSearchQuery = lancedb.query.FullTextSearchQuery
AsyncTable = lancedb.table.AsyncTable
if TYPE_CHECKING:
    from lancedb.query import Query as LanceQuery
else:
    LanceQuery = lancedb.query.Query

FTS_CONFIG = FTS(with_position=False)

# 2: chunk text stored once, inside search_text; 3: secret values redacted; 4: values written encoded too
SCHEMA_VERSION = 4

_TABLE_STORAGE_OPTIONS: dict[str, dict[str, str]] = {}
"""Lance file format per table (``new_table_data_storage_version``): every table uses the default, 2.1 or
later (2.2 with the Lance agentls installs). The chunks table used 2.0 for a while (appending Django's
rows was 6x faster in isolation), but then the code in it was stored uncompressed, as large as the
source tree. With the default and zstd on the text columns (`indexing.rows.COMPRESSED`) Django's chunk
table takes 16 MB against 31 MB, a whole index run took the same time (11.3 s against 12.4 s, one
process) and search stayed as fast (p50 12.8-14.5 ms against 11.2-12.3 ms). Compressed 2.0 pages took
14 MB but tripled search time (48 ms): a random row read decompressed its whole page. The 2.1+ mini-block
layout compresses small blocks of values instead (`indexing.rows.COMPRESSED_TEXT`, for ``search_text``).
For the symbols table (short, repetitive strings) 2.1+ writes faster than 2.0 and takes a ninth of the
space (mixed corpus: 5 MB against 45 MB)."""

FILES_SCHEMA = pa.schema(
    [
        ("path", pa.string()),
        ("hash", pa.string()),
        ("mtime_ns", pa.int64()),
        ("size", pa.int64()),
        ("language", pa.string()),
    ]
)

# Columns a search hit needs; `search_text` and `doc` stay on disk.
HIT_COLUMNS = [
    "id",
    "path",
    "language",
    "kind",
    "name",
    "symbol",
    "start_line",
    "end_line",
    "signature",
    "text",
]
# What ranking reads of a candidate: a hit's columns, `search_text` (read anyway, for the text), whose
# split identifiers, path and qualified name the field matches use, and `doc` (the doc comment).
RANK_COLUMNS = [*HIT_COLUMNS, "search_text", "doc"]


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def in_list(column: str, values: Iterable[str]) -> str:
    return f"{column} IN ({', '.join(_sql_str(v) for v in values)})"


def path_filter(prefix: str | None) -> str | None:
    """A filter keeping paths under ``prefix`` (a folder or a file, workspace-relative)."""
    if not prefix:
        return None
    prefix = prefix.strip("/")
    if not prefix or prefix == ".":
        return None
    return f"(path = {_sql_str(prefix)} OR starts_with(path, {_sql_str(prefix + '/')}))"


def index_identity(location: Path) -> str | None:
    """Which index is at ``location`` now: the token its meta.json was made with ("" for an index made
    before agentls wrote one, or a meta.json that cannot be read), or None when there is none (never
    made, or deleted). An index deleted and made again has a new token, so a process that held the old
    one open knows its tables are gone."""
    try:
        meta = json.loads((location / "meta.json").read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return ""
    return str(meta.get("created", "")) if isinstance(meta, dict) else ""


@dataclass(frozen=True, slots=True)
class FileBatchItem:
    """Everything stored for one file; written together, committed by the file row."""

    record: FileRecord
    chunks: pa.Table  # rows of the chunks table (`indexing.rows.chunks_table`)
    symbols: pa.Table  # rows of the symbols table (`indexing.rows.symbols_table`)
    vectors: np.ndarray | None = None  # (chunks.num_rows, dim) or None when no embedder
    rows: GroupRows | None = None  # where ``chunks`` and ``symbols`` lie in their parsed group's tables


@dataclass(frozen=True, slots=True)
class StoreStats:
    files: int
    chunks: int
    symbols: int
    vectors: int
    fragments: int
    embedder_id: str


class IndexStore:
    """Reads and writes one workspace's index. Writers must hold :meth:`writer`'s lock."""

    def __init__(self, location: Path, *, root: str) -> None:
        self.location = location
        self.root = root
        self._lock = _Lock(location / ".lock")
        self._write_lock = threading.Lock()
        self._writer_mutex = threading.RLock()  # one writing thread per store; others wait
        self._holds = 0  # blocks of this process holding `_lock` (`held`)
        self._hold_mutex = threading.Lock()
        # Compaction, index builds and cleanup, one at a time: a cleanup deletes the files that no
        # version refers to yet, such as those of a compaction or an index build still running.
        self._maintenance_lock = threading.RLock()
        self._meta: dict[str, Any] = {}
        self._db: Any = None
        self._tables: dict[str, Any] = {}
        self._vector_dim: int | None = None

    # ----------------------------------------------------------------- opening
    @classmethod
    def open(cls, location: Path, *, root: str, rebuild_if_corrupt: bool = True) -> IndexStore:
        """Open (or create) the index at ``location``; a corrupt index is wiped and recreated."""
        store = cls(location, root=root)
        try:
            store._open()
        except IndexCorrupt as exc:
            if not rebuild_if_corrupt:
                raise
            log.warning("index at %s is unreadable (%s); rebuilding it", location, exc)
            store.wipe()
            store._open()
        return store

    @classmethod
    def reading(cls, tables: dict[str, Any]) -> IndexStore:
        """A store that only reads these open tables (a shared base's): its queries, without a local
        folder, lock or meta.json."""
        store = cls(Path(), root="")
        store._tables = dict(tables)
        return store

    def table(self, name: str) -> Any:
        """The open LanceDB table ``name`` (files, chunks, symbols, vectors), or None if absent."""
        return self._tables.get(name)

    def _open(self) -> None:
        private_dir(self.location)  # 0700: the index is a copy of the code
        tag_cache_dir(self.location)  # never indexed itself when it lies inside a workspace
        meta_path = self.location / "meta.json"
        if meta_path.exists():
            try:
                self._meta = json.loads(meta_path.read_text())
            except (OSError, ValueError) as exc:
                raise IndexCorrupt(f"meta.json: {exc}") from exc
            if self._meta.get("schema_version") != SCHEMA_VERSION:
                raise IndexCorrupt(
                    f"written in format {self._meta.get('schema_version')} by another agentls version; "
                    f"this one uses format {SCHEMA_VERSION}"
                )
        else:
            self._meta = {
                "schema_version": SCHEMA_VERSION,
                "root": self.root,
                "embedder": "",
                "pending_write": False,
                "created": uuid.uuid4().hex,  # `index_identity`
            }
            self._write_meta()
        try:
            self._db = lancedb.connect(str(self.location / "lance"))
            existing = set(self._db.list_tables().tables)
            for name, schema in (
                ("files", FILES_SCHEMA),
                ("chunks", CHUNKS_SCHEMA),
                ("symbols", SYMBOLS_SCHEMA),
            ):
                if name in existing:
                    table = self._db.open_table(name)
                    if not set(schema.names) <= set(table.schema.names):
                        raise IndexCorrupt(f"table {name} lacks columns")
                    table.count_rows()  # forces a read of the manifest
                    _check_data_files(name, table)
                else:
                    options = _TABLE_STORAGE_OPTIONS.get(name)
                    table = self._db.create_table(name, schema=schema, storage_options=options)
                self._tables[name] = table
            if "vectors" in existing:
                table = self._db.open_table("vectors")
                table.count_rows()
                _check_data_files("vectors", table)
                self._tables["vectors"] = table
                self._vector_dim = table.schema.field("vector").type.list_size
        except IndexCorrupt:
            raise
        except Exception as exc:  # lance raises OSError/RuntimeError/ValueError for damaged data
            raise IndexCorrupt(f"{type(exc).__name__}: {exc}") from exc

    def _write_meta(self) -> None:
        tmp = self.location / "meta.json.tmp"
        tmp.write_text(json.dumps(self._meta, indent=2))
        os.replace(tmp, self.location / "meta.json")

    def wipe(self) -> None:
        """Delete everything in the index folder but the lock."""
        self._tables.clear()
        self._db = None
        self._vector_dim = None
        if self.location.exists():
            for child in self.location.iterdir():
                if child.name == ".lock":
                    continue
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)

    @contextlib.contextmanager
    def writer(self) -> Iterator[IndexStore]:
        """Hold the index's write lock for the duration of the block.

        Re-entrant within a thread; other threads of this process wait for it (an update and a full run
        never interleave); another process gets :class:`IndexLocked` at once.
        """
        with self._writer_mutex, self.held():
            yield self

    @contextlib.contextmanager
    def held(self) -> Iterator[IndexStore]:
        """Keep other processes from writing this index for the duration of the block, without waiting
        for (or blocking) this process's other writers: background maintenance (`optimize`) runs under
        it, and takes the store's write lock only to commit. Another process gets :class:`IndexLocked`
        at once."""
        with self._hold_mutex:
            if self._holds == 0:
                private_dir(self.location)
                self._lock.acquire()
            self._holds += 1
        try:
            yield self
        finally:
            with self._hold_mutex:
                self._holds -= 1
                if self._holds == 0:
                    self._lock.release()

    def refresh(self) -> None:
        """See writes made by other processes since this store was opened."""
        for table in self._tables.values():
            with contextlib.suppress(Exception):
                table.checkout_latest()
        if "vectors" not in self._tables and self._db is not None:
            with contextlib.suppress(Exception):
                if "vectors" in set(self._db.list_tables().tables):
                    self._tables["vectors"] = self._db.open_table("vectors")
                    self._vector_dim = self._tables["vectors"].schema.field("vector").type.list_size

    # ------------------------------------------------------------- embeddings
    @property
    def embedder_id(self) -> str:
        return str(self._meta.get("embedder", ""))

    @property
    def has_vectors(self) -> bool:
        return "vectors" in self._tables

    def set_embedder(self, embedder_id: str, dim: int) -> bool:
        """Record the embedder; drops all vectors when it changed. Returns True if vectors were dropped."""
        dropped = False
        if self.embedder_id and self.embedder_id != embedder_id and "vectors" in self._tables:
            log.info(
                "embedding model changed (%s -> %s); dropping old vectors", self.embedder_id, embedder_id
            )
            self._db.drop_table("vectors")
            del self._tables["vectors"]
            self._vector_dim = None
            dropped = True
        if "vectors" not in self._tables:
            schema = pa.schema(
                [("id", pa.string()), ("path", pa.string()), ("vector", pa.list_(pa.float32(), dim))]
            )
            self._tables["vectors"] = self._db.create_table("vectors", schema=schema, exist_ok=True)
            self._vector_dim = dim
        if self.embedder_id != embedder_id:
            self._meta["embedder"] = embedder_id
            self._write_meta()
        return dropped

    # ------------------------------------------------------------------ reads
    def file_records(self, paths: Iterable[str] | None = None) -> dict[str, FileRecord]:
        """The stored file rows, all of them or those of ``paths`` (an update on save reads just those:
        building a record for each of 80,000 files cost about half a second per save)."""
        if paths is None:
            table = self._tables["files"].to_arrow()
        else:
            wanted = sorted(set(paths))
            if not wanted:
                return {}
            parts = [
                self._tables["files"]
                .search()
                .where(in_list("path", wanted[start : start + 500]))
                .limit(500)
                .to_arrow()
                for start in range(0, len(wanted), 500)
            ]
            table = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
        return _records(table)

    def file_records_under(self, folders: Iterable[str]) -> dict[str, FileRecord]:
        """The stored file rows inside these folders (workspace-relative, at any depth): a folder deleted
        or moved away, of which editors report only the folder."""
        wanted = sorted({folder.strip("/") for folder in folders} - {"", "."})
        records: dict[str, FileRecord] = {}
        for start in range(0, len(wanted), 100):
            where = " OR ".join(
                f"starts_with(path, {_sql_str(folder + '/')})" for folder in wanted[start : start + 100]
            )
            table = self._tables["files"].search().where(where).to_arrow()
            records.update(_records(table))
        return records

    def file_count(self) -> int:
        return int(self._tables["files"].count_rows())

    def chunk_ids_without_vectors(self) -> list[str]:
        """Ids of chunks that have no vector yet (index built offline, or a new model)."""
        chunk_ids = set(self._tables["chunks"].search().select(["id"]).to_arrow().column("id").to_pylist())
        return sorted(chunk_ids - self._vector_ids())

    def _vector_ids(self) -> set[str]:
        if "vectors" not in self._tables:
            return set()
        return set(self._tables["vectors"].search().select(["id"]).to_arrow().column("id").to_pylist())

    def chunks_without_vectors(
        self, columns: Sequence[str], batch_rows: int = 2048
    ) -> tuple[int, Iterator[list[dict[str, Any]]]]:
        """How many chunks have no vector yet, and those chunks in batches of at most ``batch_rows``,
        read in one scan of the chunks table (looking them up by id costs a scan per lookup on an
        index without an id index, such as a lexical kernel index). Memory: the vectors' ids, and
        one batch."""
        have = self._vector_ids()
        chunks = self._tables["chunks"]
        missing = max(0, int(chunks.count_rows()) - len(have))

        def batches() -> Iterator[list[dict[str, Any]]]:
            pending: list[dict[str, Any]] = []
            stored = _stored_columns([*columns, "id"] if "id" not in columns else columns)
            for batch in chunks.search().select(stored).to_batches(batch_rows):
                pending.extend(r for r in batch.to_pylist() if r["id"] not in have)
                if len(pending) >= batch_rows:
                    yield _with_text(pending, columns)
                    pending = []
            if pending:
                yield _with_text(pending, columns)

        return (missing, batches()) if missing else (0, iter(()))

    # ------------------------------------------------------------------ reads
    # Each read is a coroutine run on LanceDB's own event loop (`run`): LanceDB's synchronous API hands a
    # query to that loop five or six times (the query, each batch, schema look-ups, building the query),
    # and on a loaded 2-core machine each hand-over waits for a thread switch: a one-row query took about
    # 2.5 ms so and 1 ms in one hand-over. A search gathers its reads in one coroutine, so they also run
    # at once without a thread each. The synchronous methods below run one read each.

    def run(self, reads: Coroutine[Any, Any, _T]) -> _T:
        """Run a coroutine of this store's ``*_async`` reads on LanceDB's event loop and return its result.
        Never call it from that loop (from inside such a coroutine): it would wait on itself."""
        return _LANCE_LOOP.run(reads)

    async def _read(self, name: str, query: LanceQuery) -> list[dict[str, Any]]:
        """The rows of one query on table ``name``, read on LanceDB's loop."""
        table = self._tables[name]
        native = getattr(table, "_table", None)
        if isinstance(native, AsyncTable):  # a local or object-storage table: the loop reads it directly
            reader = await native._execute_query(query)
            return [row for batch in await reader.read_all() for row in batch.to_pylist()]
        # Another kind of table: its synchronous reader, in a thread (it hands over to the loop itself).
        return await asyncio.to_thread(lambda: table._execute_query(query).read_all().to_pylist())

    def chunks_by_id(self, ids: Sequence[str], columns: Sequence[str] = HIT_COLUMNS) -> list[dict[str, Any]]:
        return self.run(self.chunks_by_id_async(ids, columns))

    async def chunks_by_id_async(
        self, ids: Sequence[str], columns: Sequence[str] = HIT_COLUMNS
    ) -> list[dict[str, Any]]:
        if not ids:
            return []
        parts = [ids[start : start + 500] for start in range(0, len(ids), 500)]
        stored = _stored_columns(columns)
        found = await asyncio.gather(
            *(self._read("chunks", scan_query(stored, in_list("id", part), len(part))) for part in parts)
        )
        return _with_text([row for rows in found for row in rows], columns)

    def search_lexical(
        self, query: str, limit: int, where: str | None = None, columns: Sequence[str] = HIT_COLUMNS
    ) -> list[dict[str, Any]]:
        """BM25 over ``search_text``; rows carry ``_score`` (higher is better)."""
        return self.run(self.search_lexical_async(query, limit, where, columns))

    async def search_lexical_async(
        self, query: str, limit: int, where: str | None = None, columns: Sequence[str] = HIT_COLUMNS
    ) -> list[dict[str, Any]]:
        fts = fts_query(query, [*_stored_columns(columns), "_score"], where, limit)
        return _with_text(await self._read("chunks", fts), columns)

    def chunks_at(
        self, locations: Sequence[tuple[str, int]], columns: Sequence[str] = HIT_COLUMNS
    ) -> list[dict[str, Any]]:
        """For each (path, line), the smallest chunk other than module code that holds the line."""
        return self.run(self.chunks_at_async(locations, columns))

    async def chunks_at_async(
        self, locations: Sequence[tuple[str, int]], columns: Sequence[str] = HIT_COLUMNS
    ) -> list[dict[str, Any]]:
        if not locations:
            return []
        where = " OR ".join(
            f"(path = {_sql_str(p)} AND start_line <= {int(n)} AND end_line >= {int(n)})"
            for p, n in locations
        )
        query = scan_query(_stored_columns(columns), where, 64 * len(locations))
        rows = _with_text(await self._read("chunks", query), columns)
        out: list[dict[str, Any]] = []
        for p, n in locations:
            holding = [
                r
                for r in rows
                if r["path"] == p and r["start_line"] <= n <= r["end_line"] and r["kind"] != "module"
            ]
            if holding:
                best = min(holding, key=lambda r: (r["end_line"] - r["start_line"], r["start_line"]))
                if all(best["id"] != o["id"] for o in out):
                    out.append(best)
        return out

    def search_vector(self, vector: np.ndarray, limit: int, where: str | None = None) -> list[dict[str, Any]]:
        """Nearest chunks by cosine distance; rows carry ``id`` and ``_distance`` (lower is better)."""
        return self.run(self.search_vector_async(vector, limit, where))

    async def search_vector_async(
        self, vector: np.ndarray, limit: int, where: str | None = None
    ) -> list[dict[str, Any]]:
        if "vectors" not in self._tables:
            return []
        return await self._read("vectors", vector_query(vector, ["id", "_distance"], where, limit))

    def find_symbols(
        self,
        name: str | Sequence[str],
        *,
        prefix: bool = False,
        role: str | None = None,
        path: str | None = None,
        limit: int = 200,
    ) -> list[Symbol]:
        """Symbols named ``name`` (case-sensitive), or whose name starts with it (case-insensitive), in the
        file ``path`` or under the folder ``path`` when given. Several exact names are looked up in one
        query (one query costs several milliseconds)."""
        if prefix:
            assert isinstance(name, str), "a prefix lookup takes one name"
            clauses = [f"starts_with(name_lower, {_sql_str(name.lower())})"]
        elif isinstance(name, str):
            clauses = [f"name = {_sql_str(name)}"]
        else:
            clauses = [in_list("name", list(name))]
        if role:
            clauses.append(f"role = {_sql_str(role)}")
        under = path_filter(path)  # a file, or every file under a folder (`find_symbol`'s `path`)
        if under:
            clauses.append(under)
        return self._symbols_where(" AND ".join(clauses), limit)

    async def definition_sites_async(self, names: Sequence[str], limit: int) -> list[tuple[str, str, int]]:
        """(name, path, line) of the definitions of these exact names, as `find_symbols` (role
        "definition", same limit) orders them: only the columns a search needs are read (reading all of
        them took a second pass over the table, about 4 ms on Django)."""
        if not names:
            return []
        where = f"{in_list('name', names)} AND role = 'definition'"
        rows = await self._read("symbols", scan_query(["name", "path", "line", "column"], where, limit))
        rows.sort(key=lambda r: (r["path"], r["line"], r["column"]))
        return [(r["name"], r["path"], r["line"]) for r in rows]

    def secret_paths(self) -> list[str]:
        """The files whose indexed text holds a withheld secret value (a ``<secret:...>`` placeholder): an
        agent run learns their values before its commands print them (a scan of the chunks' text)."""
        rows = self.run(self._read("chunks", scan_query(["path"], "search_text LIKE '%<secret:%'", 1 << 30)))
        return sorted({row["path"] for row in rows})

    def symbols_in_file(self, path: str, *, role: str | None = None) -> list[Symbol]:
        where = f"path = {_sql_str(path)}"
        if role:
            where += f" AND role = {_sql_str(role)}"
        return self._symbols_where(where, 100_000)

    def _symbols_where(self, where: str, limit: int) -> list[Symbol]:
        rows = self.run(self._read("symbols", scan_query(None, where, limit)))
        symbols = [
            Symbol(
                name=r["name"],
                kind=r["kind"],
                role=r["role"],
                path=r["path"],
                line=r["line"],
                column=r["column"],
                end_line=r["end_line"],
                end_column=r["end_column"],
                container=r["container"],
            )
            for r in rows
        ]
        symbols.sort(key=lambda s: (s.role != "definition", s.path, s.line, s.column))
        return symbols

    def stats(self) -> StoreStats:
        fragments = 0
        for table in self._tables.values():
            with contextlib.suppress(Exception):
                fragments += int(table.stats()["fragment_stats"]["num_fragments"])
        return StoreStats(
            files=self._tables["files"].count_rows(),
            chunks=self._tables["chunks"].count_rows(),
            symbols=self._tables["symbols"].count_rows(),
            vectors=self._tables["vectors"].count_rows() if "vectors" in self._tables else 0,
            fragments=fragments,
            embedder_id=self.embedder_id,
        )

    # ----------------------------------------------------------------- writes
    def write_batch(
        self, items: Sequence[FileBatchItem], known: Container[str] | None = None, *, at_once: bool = False
    ) -> None:
        """Replace the rows of these files in every table; the files table is written last.

        ``known``: the paths that may have rows already (the file records read at the start of the run,
        after :meth:`delete_orphans`); rows of other paths are not looked for. ``None``: all of them.
        ``at_once``: write the tables each in a thread of its own whatever the batch's size, because the
        caller has the cores (the last batch of a run, written once its parse is over).
        """
        if not items:
            return
        paths = [item.record.path for item in items]
        old = paths if known is None else [p for p in paths if p in known]
        # One contiguous table per add: Lance writes each record batch it is given on its own, and a
        # thousand per-file slices cost it half again as much as one copy of the rows. The files of one
        # parsed group are cut from its tables as one slice (`joined_rows`).
        new: dict[str, pa.Table | None] = {
            "chunks": joined_rows((item.chunks, item.rows) for item in items),
            "symbols": joined_rows(((item.symbols, item.rows) for item in items), symbols=True),
        }
        embedded = [item for item in items if item.vectors is not None and item.chunks.num_rows]
        if "vectors" in self._tables:
            new["vectors"] = None
            if embedded:
                ids = [i for item in embedded for i in item.chunks.column("id").to_pylist()]
                vpaths = [p for item in embedded for p in item.chunks.column("path").to_pylist()]
                vectors = np.concatenate([item.vectors for item in embedded if item.vectors is not None])
                new["vectors"] = _vectors_table(ids, vpaths, vectors)
        with self._write_lock:
            self._set_pending(True)
            # The file rows go first (a run stopped from here on re-indexes these files) and come back
            # last (the commit point). Meanwhile each table's old rows go and its new rows come; for a few
            # files (a save), each table in a thread of its own (Lance does the work outside the GIL): a
            # save of kernel/sched/core.c, 627 chunks and 3,738 symbols, spent about 40 ms doing these one
            # after the other. A full run's large batches stay one after the other: the parser processes
            # have the cores, and the batches' write buffers would add up. Its last batch (`at_once`) is
            # written when they have stopped, and nothing else runs then.
            self._replace_rows("files", old, None)
            jobs = [
                partial(self._replace_rows, name, old, rows)
                for name, rows in new.items()
                if old or rows is not None
            ]
            if len(jobs) > 1 and (at_once or len(items) <= _CONCURRENT_WRITE_FILES):
                with ThreadPoolExecutor(len(jobs), thread_name_prefix="agentls-index-write") as pool:
                    for done in [pool.submit(job) for job in jobs]:
                        done.result()
            else:
                for job in jobs:
                    job()
            self._tables["files"].add(_files_table([item.record for item in items]))
            self._set_pending(False)

    def fold_new_rows(self) -> int:
        """Add the chunk rows that the full-text index does not cover yet (a save's) to a small second
        part of the index, without rewriting the main part; the number of rows added.

        Every full-text query also reads and tokenizes each chunk row outside the index: after a save of
        kernel/sched/core.c (627 chunks) a query for a word found nowhere took 25-40 ms instead of 1 ms,
        and "struct task_struct" 160 ms. Folding them in took 60-130 ms. The first fold makes the second
        part; the next ones merge into it, dropping deleted rows, so it stays the size of the saved files'
        live rows (the kernel's 1.39 M-row part untouched)."""
        chunks = self._tables["chunks"]
        try:
            stats = chunks.index_stats("search_text_idx")
        except Exception:  # no full-text index yet: the next run builds it over every row
            return 0
        new = int(stats.num_unindexed_rows or 0) if stats is not None else 0
        if not new or not self._maintenance_lock.acquire(blocking=False):
            return 0  # maintenance running (`optimize`) folds them, or the next save's fold does
        try:
            merge = 1 if int(stats.num_indices or 1) > 1 else 0  # never the main part
            with self._write_lock:
                dataset = chunks.to_lance()
                dataset.optimize.optimize_indices(num_indices_to_merge=merge, index_names=["search_text_idx"])
                chunks.checkout_latest()
        finally:
            self._maintenance_lock.release()
        return new

    def _replace_rows(self, name: str, paths: Sequence[str], rows: pa.Table | None) -> None:
        """Delete the rows of ``paths`` from table ``name``, then add ``rows``."""
        self._delete_in(name, "path", paths)
        if rows is not None:
            self._tables[name].add(rows)

    def _set_pending(self, pending: bool) -> None:
        """Note in meta.json that a batch is being written (rows without their file row may exist), so
        that only a run after an interrupted one pays for `delete_orphans`'s scan of every table."""
        if bool(self._meta.get("pending_write")) != pending:
            self._meta["pending_write"] = pending
            self._write_meta()

    def delete_orphans(self) -> int:
        """Delete rows of paths that have no file record (a run that stopped before its commit point).

        Scans every table's paths (12 million symbol rows on the kernel), so only when meta.json says a
        batch was being written and not finished; an index from before that note is scanned once."""
        if self._meta.get("pending_write") is False:
            return 0
        recorded = set(self._tables["files"].search().select(["path"]).to_arrow().column("path").to_pylist())
        orphans: set[str] = set()
        for name in ("chunks", "symbols", "vectors"):
            if name in self._tables:
                column = self._tables[name].search().select(["path"]).to_arrow().column("path")
                orphans.update(p for p in pa.compute.unique(column).to_pylist() if p not in recorded)
        with self._write_lock:
            if orphans:
                log.info("removing rows of %d files left by an interrupted run", len(orphans))
                self._delete_rows(sorted(orphans), include_files=False)
            self._set_pending(False)
        return len(orphans)

    def touch_files(self, records: Sequence[FileRecord]) -> None:
        """Update file rows whose content did not change (only their mtime did)."""
        if records:
            with self._write_lock:
                (
                    self._tables["files"]
                    .merge_insert("path")
                    .when_matched_update_all()
                    .when_not_matched_insert_all()
                    .execute(_files_table(records))
                )

    def replace_chunks(self, rows: pa.Table, vectors: np.ndarray | None) -> None:
        """Replace the stored chunk rows of the same ids by ``rows`` (one merge: a run stopped here keeps
        either), and their vectors by ``vectors`` (None: dropped, for the next run's backfill to embed)."""
        ids = rows.column("id").to_pylist()
        with self._write_lock:
            self._tables["chunks"].merge_insert("id").when_matched_update_all().execute(rows)
            if "vectors" in self._tables:
                self._delete_in("vectors", "id", ids)
                if vectors is not None:
                    self._tables["vectors"].add(_vectors_table(ids, rows.column("path").to_pylist(), vectors))

    def add_vectors(self, ids: Sequence[str], paths: Sequence[str], vectors: np.ndarray) -> None:
        if ids:
            with self._write_lock:
                self._tables["vectors"].add(_vectors_table(list(ids), list(paths), vectors))

    def delete_files(self, paths: Sequence[str]) -> None:
        """Remove every row of these files, the file rows last."""
        if paths:
            with self._write_lock:
                self._delete_rows(paths, include_files=True)

    def _delete_rows(self, paths: Sequence[str], *, include_files: bool) -> None:
        names = ["chunks", "symbols", "vectors"] + (["files"] if include_files else [])
        for name in names:
            if name in self._tables:
                self._delete_in(name, "path", paths)

    def _delete_in(self, name: str, column: str, values: Sequence[str]) -> None:
        """Delete the rows of table ``name`` whose ``column`` is one of ``values``, 500 values a statement."""
        table = self._tables[name]
        for start in range(0, len(values), 500):
            table.delete(in_list(column, values[start : start + 500]))

    # ----------------------------------------------------------- maintenance
    def ensure_indexes(self, *, vector_index_min_rows: int, step: StepCallback | None = None) -> list[str]:
        """Create the full-text, scalar and (when large enough) vector indexes that are missing.
        ``step(label)`` is called before each build; each build's time is logged.

        Each table's indexes are built in a thread of their own (the work runs in Lance, outside the
        GIL). The full-text index is most of the work, and Lance already builds it on every core (on
        `LANCE_CPU_THREADS` workers), so the BTrees beside it add their CPU time to the phase rather than
        fill an idle core. On Django's lexical index (24,729 chunks, 220,322 symbols; session 22 in
        BENCHMARKS.md) the builds took 1.36 s of CPU: the full-text index 1.16-1.22 s (0.35 s of it
        stemming; 0.8 s since the chunk text is stored in mini-blocks, `indexing.rows.COMPRESSED_TEXT`,
        session 24), each symbol BTree 0.04-0.07 s, the chunk and file path BTrees 0.01 s each. What each
        index serves is said where it is built. On large tables (more than `_PARALLEL_BUILD_ROWS` symbol
        rows) they are built one after the other: each build holds memory in proportion to its table, and
        together they made the peak of a first kernel index (2.3 GB, against 0.5 GB while indexing).
        """
        with self._maintenance_lock:
            return self._ensure_indexes(vector_index_min_rows, step)

    def _ensure_indexes(self, vector_index_min_rows: int, step: StepCallback | None) -> list[str]:
        jobs: list[Callable[[], list[str]]] = [
            partial(self._chunk_indexes, step),
            partial(self._symbol_indexes, step),
            partial(self._vector_index, vector_index_min_rows, step),
        ]
        if self._tables["symbols"].count_rows() > _PARALLEL_BUILD_ROWS:
            return [name for job in jobs for name in job()]
        with ThreadPoolExecutor(max_workers=len(jobs), thread_name_prefix="agentls-index-build") as pool:
            return [name for names in pool.map(lambda job: job(), jobs) for name in names]

    def _chunk_indexes(self, step: StepCallback | None) -> list[str]:
        created: list[str] = []
        chunks = self._tables["chunks"]
        existing = {idx.name for idx in chunks.list_indices()}
        if "search_text_idx" not in existing and chunks.count_rows() > 0:
            # Every full-text query. Stemmed (English): a third of the build, but "price" must find
            # `pricing` and "parse" `parser`.
            with _step(step, "full-text index"):
                chunks.create_index("search_text", config=FTS_CONFIG, name="search_text_idx")
            created.append("fts")
        if "id_idx" not in existing and "vectors" in self._tables and chunks.count_rows() > 0:
            # Chunks are read by id only for the nearest vectors' hits (and the vector backfill): a lexical
            # index has no use for it (60 MB on the kernel); vectors added later bring it.
            with _step(step, "chunk id index"):
                chunks.create_index("id", config=BTree(), name="id_idx")
            created.append("chunk id")
        if "path_idx" not in existing and chunks.count_rows() > 0:
            # Every write deletes its files' rows first: without this index a save on the kernel (1.2 M
            # chunk rows) scanned every path for 0.25-0.5 s; with it the delete takes a few ms. `chunks_at`
            # (a location's chunk) reads through it too.
            with _step(step, "chunk path index"):
                chunks.create_index("path", config=BTree(), name="path_idx")
            created.append("chunk path")
        files = self._tables["files"]
        # A run's and a save's look-up of their files' rows (`file_records`), their delete, and
        # `touch_files`' merge on path.
        if "path_idx" not in {idx.name for idx in files.list_indices()} and files.count_rows() > 0:
            with _step(step, "file path index"):
                files.create_index("path", config=BTree(), name="path_idx")
            created.append("file path")
        return created

    def _symbol_indexes(self, step: StepCallback | None) -> list[str]:
        """BTrees on the symbols' ``name`` (exact look-ups: each search's definition sites,
        `find_symbols`), ``name_lower`` (prefix look-ups: ``starts_with`` reads a range of it) and
        ``path`` (a write's delete of its files' rows, `symbols_in_file`, a folder filter).

        Each is cheap beside the full-text index and already pays on a table of Django's size, so they
        are built at any size (session 22, at load 10, hence the high milliseconds): without the path
        BTree a save's delete of one file's symbols took 7-21 ms against 2-7 ms and `symbols_in_file`
        11-32 ms against 3 ms, to save 0.03 s of CPU per first index (about 0.015 s of wall on two
        cores). On a kernel-size table (12 M rows) the delete took 253 ms against 3 ms, and the build
        3.2 s of CPU. A size threshold, the build left to a later `maintain`, would save less than the
        noise of a first index and cost every save."""
        created: list[str] = []
        symbols = self._tables["symbols"]
        existing = {idx.name for idx in symbols.list_indices()}
        if symbols.count_rows() > 0:
            for column in ("name", "name_lower", "path"):
                if f"{column}_idx" not in existing:
                    with _step(step, f"symbol {column} index"):
                        symbols.create_index(column, config=BTree(), name=f"{column}_idx")
                    created.append(f"symbol {column}")
        return created

    def _vector_index(self, min_rows: int, step: StepCallback | None) -> list[str]:
        vectors = self._tables.get("vectors")
        if vectors is None:
            return []
        rows = vectors.count_rows()
        if rows < min_rows or "vector_idx" in {idx.name for idx in vectors.list_indices()}:
            return []
        with _step(step, "vector index"):
            vectors.create_index("vector", config=_vector_index_config(rows), name="vector_idx")
        return ["vector"]

    def max_fragments(self) -> int:
        """The largest fragment count among the tables: what slows scans down."""
        counts = [0]
        for table in self._tables.values():
            with contextlib.suppress(Exception):
                counts.append(int(table.stats()["fragment_stats"]["num_fragments"]))
        return max(counts)

    def optimize(
        self, *, keep_versions: timedelta = timedelta(seconds=30), step: StepCallback | None = None
    ) -> None:
        """Compact fragments, fold new rows into the indexes, and drop versions older than ``keep_versions``.
        ``step(label)`` is called before each table's compaction; each one's time is logged.

        Writes go on meanwhile: the work is done beside them, and the store's write lock is held only to
        see each table's new version and to drop old versions. On the kernel's index the symbols table
        (12 M rows) took 15-20 s to compact and re-index, and a save that came meanwhile waited for all of
        it. A compaction task whose fragments a write changed meanwhile (a save of a file whose rows it
        merged) is left out of the commit, and that table is planned once more without those fragments;
        what is still left is compacted next time. The caller holds the index (`held` or `writer`), so
        no other process writes it.

        Old versions' files are deleted even when younger than a week (Lance keeps those by default, in
        case a write is in progress: writes in this process hold the write lock, which the cleanup takes,
        and other processes are kept out), and so are the files of a commit that lost to a write; with
        Lance's default, about 0.55 GB of the kernel's index stayed on disk after a full run. A search that
        began on a version that is dropped may fail once.

        Each optimize adds the vectors written since the last one to the vector index as a new delta,
        and Lance does not compact fragments held by different deltas: after 500 single-file updates of
        Django the vectors table had 38 fragments and 38 deltas, and hybrid search stayed 1.3-1.6x
        slower than on a fresh index however often it was optimized. Past `_MAX_VECTOR_INDEX_DELTAS` the
        vector index is rebuilt (about 2 s for 25,000 vectors), after which compaction merges the table
        back into one fragment.

        Fragments are merged by copying their encoded pages (Lance's "try_binary_copy") rather than
        decoding and re-encoding them: on a first kernel index, re-encoding the chunks' compressed text
        took 39 s of a 274 s run. Fragments that cannot be copied, such as ones with deleted rows, are
        re-encoded.
        """
        with self._maintenance_lock:
            vectors = self._tables.get("vectors")
            if vectors is not None and _index_deltas(vectors, "vector_idx") > _MAX_VECTOR_INDEX_DELTAS:
                # Through Lance, not LanceDB's table: LanceDB's build made a save's add and delete on the
                # table wait for it (6-18 s during a 25 s build of 60,000 vectors; 7-18 ms through Lance).
                config = _vector_index_config(vectors.count_rows())
                try:
                    vectors.to_lance().create_index(
                        "vector",
                        index_type="IVF_HNSW_SQ",
                        metric=config.distance_type,
                        num_partitions=config.num_partitions,
                        m=config.m,
                        ef_construction=config.ef_construction,
                        name="vector_idx",
                        replace=True,
                    )
                except OSError as exc:  # lost to a write in conflict: the next maintenance rebuilds it
                    log.info("rebuilding the vector index lost to a write (%s)", exc)
                with self._write_lock:
                    vectors.checkout_latest()
            for name, table in list(self._tables.items()):  # `set_embedder` may drop one meanwhile
                with _step(step, f"compacting {name}"):
                    self._compact(name, table)
                    try:  # commits beside appends and deletes
                        table.to_lance().optimize.optimize_indices()
                    except OSError as exc:  # lost to a write in conflict: the next maintenance does it
                        log.info("updating %s's indexes lost to a write (%s)", name, exc)
                    with self._write_lock:
                        table.checkout_latest()
            with self._write_lock, warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "removes every version but the latest"
                began = time.perf_counter()
                for table in list(self._tables.values()):
                    table.to_lance().cleanup_old_versions(older_than=keep_versions, delete_unverified=True)
                log.debug("old versions dropped in %.2f s", time.perf_counter() - began)

    def _compact(self, name: str, table: Any) -> None:
        """Merge ``table``'s small fragments beside the writes (see `optimize`): plan, rewrite and commit
        without the write lock the tasks whose fragments no write changed meanwhile. Twice
        at most: the second plan leaves out the fragments that changed and those written meanwhile, which
        a save is likely to change again (the file being edited deletes its previous rows)."""
        from lance.optimize import Compaction, CompactionOptions  # Lance: imported only to compact

        excluded: list[int] = []
        for _attempt in range(2):
            options = CompactionOptions(compaction_mode="try_binary_copy")
            if excluded:
                options["excluded_fragment_ids"] = excluded
            dataset = table.to_lance()
            try:
                plan = Compaction.plan(dataset, options)
                rewrites = [task.execute(dataset) for task in plan.tasks]
            except Exception as exc:  # the table stays as it is: slower to scan, never wrong
                log.warning("compacting %s failed: %s", name, exc)
                return
            if not rewrites:
                return
            # Committed without the write lock: a save's delete that Lance finds in a fragment rewritten
            # meanwhile is rebased onto the rewrite, and a compaction whose fragment a save changed first
            # is refused. Only the commit's index remap is long (4.2 s for the kernel's symbols table
            # once its fragments were indexed), and the saves do not wait for it.
            latest = table.to_lance()
            current, changed = _changed_fragments(latest, plan.tasks)
            planned = {fragment.fragment_id for fragment in dataset.get_fragments()}
            kept = [
                rewrite
                for task, rewrite in zip(plan.tasks, rewrites, strict=True)
                if not any(source.id in changed for source in task.fragments)
            ]
            committed = True
            if kept:
                began = time.perf_counter()
                try:
                    metrics = Compaction.commit(latest, kept, options)
                except OSError as exc:  # a write changed their fragments since the look above
                    log.info("compacting %s: the commit lost to a write (%s)", name, exc)
                    committed, kept = False, []
                    current, changed = _changed_fragments(table.to_lance(), plan.tasks)  # not planned again
                else:
                    log.debug("compacted %s (commit %.2f s): %s", name, time.perf_counter() - began, metrics)
                with self._write_lock:  # the table's view, which the saves write through
                    table.checkout_latest()
            if committed and not changed:
                return
            log.info(
                "compacting %s: %d of %d tasks left for later (a write changed their fragments meanwhile)",
                name,
                len(rewrites) - len(kept),
                len(rewrites),
            )
            excluded.extend(changed)
            excluded.extend(f for f in current if f not in planned)  # written meanwhile


def _changed_fragments(dataset: Any, tasks: Sequence[Any]) -> tuple[dict[int, Any], set[int]]:
    """The ``dataset``'s fragments by id, and the ids of the compaction ``tasks``' source fragments that
    a write changed or removed since they were planned."""
    current = {fragment.fragment_id: fragment.metadata for fragment in dataset.get_fragments()}
    changed = {source.id for task in tasks for source in task.fragments if current.get(source.id) != source}
    return current, changed


def _stored_columns(columns: Sequence[str]) -> list[str]:
    """The chunks-table columns to read for these: a chunk's ``text`` lives inside ``search_text``."""
    if "text" not in columns:
        return list(columns)
    return [c for c in columns if c not in ("text", "search_text")] + ["search_text", "text_chars"]


def _with_text(rows: list[dict[str, Any]], columns: Sequence[str]) -> list[dict[str, Any]]:
    """Rows read with `_stored_columns`, given their ``text`` back (and only the columns asked for)."""
    if "text" in columns:
        keep_search_text = "search_text" in columns
        for row in rows:
            row["text"] = chunk_text(row["search_text"], row.pop("text_chars"))
            if not keep_search_text:
                del row["search_text"]
    return rows


def scan_query(columns: Sequence[str] | None, where: str, limit: int) -> LanceQuery:
    """A filtered read, as ``table.search().where(where).select(columns).limit(limit)`` builds it (without
    the builder's hand-over to LanceDB's loop for the table's schema)."""
    return LanceQuery(columns=list(columns) if columns is not None else None, filter=where, limit=limit)


def fts_query(text: str, columns: Sequence[str], where: str | None, limit: int) -> LanceQuery:
    """BM25 over ``search_text``, as ``table.search(text, query_type="fts", fts_columns="search_text")``
    with ``.where(where, prefilter=True)``, ``.select(columns)`` and ``.limit(limit)`` builds it."""
    return LanceQuery(
        full_text_query=FullTextSearchQuery(columns=["search_text"], query=text),
        columns=list(columns),
        filter=where,
        postfilter=False if where else None,
        limit=limit,
    )


def vector_query(vector: np.ndarray, columns: Sequence[str], where: str | None, limit: int) -> LanceQuery:
    """Nearest rows by cosine distance, as ``table.search(vector).distance_type("cosine")`` with
    ``.where(where, prefilter=True)``, ``.select(columns)`` and ``.limit(limit)`` builds it."""
    return LanceQuery(
        vector_column="vector",
        vector=vector.astype(np.float32).tolist(),
        distance_type="cosine",
        columns=list(columns),
        filter=where,
        postfilter=False if where else None,
        limit=limit,
    )


_CONCURRENT_WRITE_FILES = 16
"""Batches of at most this many files write their tables at once (`IndexStore.write_batch`)."""
_MAX_VECTOR_INDEX_DELTAS = 8
_PARALLEL_BUILD_ROWS = 2_000_000

StepCallback = Callable[[str], None]
"""``step(label)``: a maintenance step ("full-text index", "compacting chunks") is about to run."""


@contextlib.contextmanager
def _step(step: StepCallback | None, label: str) -> Iterator[None]:
    """Announce a maintenance step to ``step`` and log its time (minutes each on a kernel-size index)."""
    if step is not None:
        step(label)
    started = time.perf_counter()
    yield
    log.info("index maintenance: %s took %.1f s", label, time.perf_counter() - started)


def _vector_index_config(rows: int) -> HnswSq:
    return HnswSq(distance_type="cosine", num_partitions=max(1, min(64, rows // 20_000)))


def _index_deltas(table: Any, name: str) -> int:
    """How many delta indexes make up index ``name`` (0 when it does not exist)."""
    try:
        stats = table.index_stats(name)
    except Exception:  # no such index, or stats unavailable: nothing to rebuild
        return 0
    return int(stats.num_indices or 0) if stats is not None else 0


def _records(table: pa.Table) -> dict[str, FileRecord]:
    """Rows of the files table as records, by path."""
    cols = {name: table.column(name).to_pylist() for name in FILES_SCHEMA.names}
    return {
        path: FileRecord(path, h, m, s, lang)
        for path, h, m, s, lang in zip(
            cols["path"], cols["hash"], cols["mtime_ns"], cols["size"], cols["language"], strict=True
        )
    }


def _files_table(records: Sequence[FileRecord]) -> pa.Table:
    return pa.table(
        {
            "path": [r.path for r in records],
            "hash": [r.hash for r in records],
            "mtime_ns": pa.array([r.mtime_ns for r in records], pa.int64()),
            "size": pa.array([r.size for r in records], pa.int64()),
            "language": [r.language for r in records],
        },
        schema=FILES_SCHEMA,
    )


def _vectors_table(ids: list[str], paths: list[str], vectors: np.ndarray) -> pa.Table:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    dim = vectors.shape[1]
    flat = pa.array(vectors.reshape(-1), type=pa.float32())
    return pa.table(
        {"id": ids, "path": paths, "vector": pa.FixedSizeListArray.from_arrays(flat, dim)},
        schema=pa.schema(
            [("id", pa.string()), ("path", pa.string()), ("vector", pa.list_(pa.float32(), dim))]
        ),
    )


def _check_data_files(name: str, table: Any) -> None:
    """Raise `IndexCorrupt` when a data file of ``table``'s latest version is missing or not the size its
    manifest says (deleted or truncated on disk): the manifest alone reads fine, and the damage would
    otherwise surface as a failed search. A stat per data file (a few hundred on the kernel). A version
    that another process's compaction replaced meanwhile (its old files deleted) is checked again at the
    newest version before the index is called damaged."""
    try:
        _check_version_files(name, table)
    except IndexCorrupt:
        table.checkout_latest()
        _check_version_files(name, table)


def _check_version_files(name: str, table: Any) -> None:
    dataset = table.to_lance()
    data = Path(dataset.uri) / "data"
    for fragment in dataset.get_fragments():
        for data_file in fragment.data_files():
            expected = data_file.file_size_bytes
            try:
                size = (data / data_file.path).stat().st_size
            except OSError as exc:
                raise IndexCorrupt(
                    f"table {name}: data file {data_file.path} is missing ({exc.strerror})"
                ) from exc
            if expected and size != expected:
                raise IndexCorrupt(
                    f"table {name}: data file {data_file.path} has {size} bytes, not {expected}"
                )
