"""What a parser process does with a group of files: read, hash, parse, chunk, and build the rows; and
how those processes start.

Kept apart from the service (and from LanceDB) so worker processes start fast: they import this module,
tree-sitter, pyarrow and detect-secrets' scanner (`PRELOAD`: imported once by the fork server, so each
parser process it forks has them), nothing else heavy. `warm_up_parsers` starts that fork server ahead
of a run (`agentls index` does before it loads LanceDB), `parser_context` is the pools' start method and
`parsers_warm` says whether the server has had the time to load `PRELOAD`.

`prepare_text` makes the same rows from an open document's text before it is saved, and `use_prepared`
takes them for the saved file when its content is that text (`WorkspaceIndex.prepare`).

A group's rows travel back as two Arrow tables (chunks, symbols) serialised as IPC streams, with one small
head per file; `ParsedGroup` hands them out again as per-file `Parsed` outcomes whose tables are zero-copy
slices, each with its place in the group's tables (`indexing.rows.GroupRows`), so that a batch writes the
files of one group as one slice of them (`indexing.rows.joined_rows`). The cyclic garbage collector is
paused while a group is parsed: the work allocates millions of short-lived acyclic objects (nodes,
tuples, strings), and its collections cost about a tenth of the chunker's time on Django.
"""

from __future__ import annotations

import contextlib
import gc
import importlib.abc
import importlib.machinery
import logging
import multiprocessing
import multiprocessing.context
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from indexing.lifeline import die_with_parent, forkserver_context
from indexing.models import (
    AUTO_WORKERS_MAX,
    Chunk,
    FileRecord,
    ParseLimits,
    ParseResult,
    SkippedFile,
    SkipReason,
    Symbol,
)
from indexing.rows import (
    CHUNKS_SCHEMA,
    SYMBOLS_SCHEMA,
    GroupRows,
    chunks_table,
    symbols_table,
    table_from_ipc,
    table_to_ipc,
)
from indexing.secrets import redact_source
from indexing.walker import FileEntry, SourceFile, decode_source, load_source

log = logging.getLogger(__name__)

PRELOAD = (
    "indexing.parsing",
    "indexing.chunker",
    # What `indexing.secrets` imports on first use (about 0.2 s, most of it `requests`): in the fork
    # server once rather than in each parser process at its first candidate line.
    "detect_secrets.core.plugins.util",
    "detect_secrets.filters.heuristic",
    "detect_secrets.filters.allowlist",
    "detect_secrets.util.code_snippet",
    "detect_secrets.plugins.keyword",
    "detect_secrets.util.filetype",
    "detect_secrets.plugins.base",
)
"""Modules the parser processes' fork server imports before it forks them (see `indexing.service`)."""

_UNKEYED = b"agentls"  # for callers that pass no key (the service always does)

_INLINE_MAX = 48
"""A run with at most this many files to (re)check parses them in-process: a pool costs more to start."""


def parser_processes(workers: int) -> int:
    """How many parser processes a run starts: ``workers`` (the ``index.workers`` setting), 0 meaning one
    per core, at most `AUTO_WORKERS_MAX`."""
    return workers or max(1, min(os.cpu_count() or 1, AUTO_WORKERS_MAX))


def parses_in_pool(files: int | None, workers: int) -> bool:
    """Whether a run with ``files`` files to (re)check parses them in a pool of parser processes (None:
    not known before the walk, as in a first index); ``workers`` as in `parser_processes`."""
    return parser_processes(workers) > 1 and (files is None or files > _INLINE_MAX)


def parser_context() -> multiprocessing.context.BaseContext:
    """Parser processes fork from a server that has the parsing modules loaded (and nothing heavier)."""
    ctx = forkserver_context()
    ctx.set_forkserver_preload(list(PRELOAD))
    return ctx


_PRELOAD_SECONDS = 0.5
"""Time the fork server takes to import `PRELOAD`, at most (0.2-0.4 s measured on 2 cores)."""
_warmed_at: float | None = None


def warm_up_parsers() -> None:
    """Start the parser processes' fork server now, so that its imports (`PRELOAD`: 0.4 s of CPU) run
    beside what the caller does next instead of delaying the first parser process. `agentls index` calls
    it before it loads LanceDB (about a second on one core); an index run calls it before it walks.
    Calling it again while the server runs costs nothing."""
    global _warmed_at
    parser_context()
    from multiprocessing import forkserver

    with main_module_hidden():
        forkserver.ensure_running()
    if _warmed_at is None:
        _warmed_at = time.monotonic()


def parsers_warm() -> bool:
    """Whether this process's fork server has had the time to import `PRELOAD`: a pool's processes then
    start in milliseconds."""
    return _warmed_at is not None and time.monotonic() - _warmed_at >= _PRELOAD_SECONDS


@contextlib.contextmanager
def main_module_hidden() -> Iterator[None]:
    """Keep new worker processes from re-importing the caller's ``__main__`` (multiprocessing does that
    so pickled functions defined there resolve). Ours live in this module; re-importing a main script
    (the CLI, pytest, an editor's launcher) would load LanceDB and more in every worker, which cost about
    a second before the first file was parsed."""
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    saved: dict[str, Any] = {k: main.__dict__[k] for k in ("__file__", "__spec__") if k in main.__dict__}
    main.__dict__.pop("__file__", None)
    main.__spec__ = None
    try:
        yield
    finally:
        main.__dict__.update(saved)


@dataclass(frozen=True, slots=True)
class Parsed:
    """A parsed file: its rows of the chunks table (``search_text`` included) and of the symbols table,
    and the chunks' vectors when they were made with the rows (`Prepared`)."""

    record: FileRecord
    chunks: pa.Table
    symbols: pa.Table
    vectors: Any = None  # a numpy array, one row per chunk (this module does not import numpy)
    nbytes: int = -1
    """The memory its rows hold, about (-1: not known; `Parsed.size` measures it)."""
    rows: GroupRows | None = None
    """Where ``chunks`` and ``symbols`` lie in the tables of the file's group (None: tables of its own)."""

    def size(self) -> int:
        """The memory the rows hold: `nbytes`, else measured (per slice, which costs 50 us a file)."""
        return self.nbytes if self.nbytes >= 0 else self.chunks.nbytes + self.symbols.nbytes


@dataclass(frozen=True, slots=True)
class Unchanged:
    record: FileRecord


Outcome = Parsed | Unchanged | SkippedFile


@dataclass(frozen=True, slots=True)
class _ParsedHead:
    """A parsed file's place in its group's tables: the next ``chunks`` and ``symbols`` rows."""

    record: FileRecord
    chunks: int
    symbols: int


_Head = _ParsedHead | Unchanged | SkippedFile


class ParsedGroup:
    """The outcomes of one group of files, in the order the files were given."""

    __slots__ = ("_chunks", "_heads", "_symbols")

    def __init__(self, heads: list[_Head], chunks: pa.Table, symbols: pa.Table) -> None:
        self._heads = heads
        self._chunks = chunks
        self._symbols = symbols

    def __iter__(self) -> Iterator[Outcome]:
        chunk_row = symbol_row = 0
        # Each file's share of the group's bytes, by its rows: measuring every slice cost the indexing
        # process 0.17 s of CPU over Django's 2,788 files.
        chunk_size = self._chunks.nbytes / max(1, self._chunks.num_rows)
        symbol_size = self._symbols.nbytes / max(1, self._symbols.num_rows)
        chunks, symbols = self._chunks, self._symbols
        for head in self._heads:
            if isinstance(head, _ParsedHead):
                yield Parsed(
                    head.record,
                    chunks.slice(chunk_row, head.chunks),
                    symbols.slice(symbol_row, head.symbols),
                    None,
                    int(head.chunks * chunk_size + head.symbols * symbol_size),
                    GroupRows(chunks, symbols, chunk_row, symbol_row),
                )
                chunk_row += head.chunks
                symbol_row += head.symbols
            else:
                yield head

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return (_unpack_group, (self._heads, table_to_ipc(self._chunks), table_to_ipc(self._symbols)))


def _unpack_group(heads: list[_Head], chunks: bytes, symbols: bytes) -> ParsedGroup:
    return ParsedGroup(heads, table_from_ipc(chunks), table_from_ipc(symbols))


class _NoPandas(importlib.abc.MetaPathFinder):
    """Makes ``import pandas`` fail. pyarrow imports pandas the first time it builds an array, to ask
    whether the input is a DataFrame; in a parser process that cost 150 ms before the first file came
    back, and a parser process never sees a DataFrame."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname.partition(".")[0] == "pandas":
            raise ModuleNotFoundError(f"{fullname} is not used in agentls parser processes", name=fullname)
        return None


def init_parser_process(owner: int | None = None) -> None:
    """Initializer of the parser processes (never of the caller's own process); `owner` is the pid of the
    process that started the pool: when it dies, so do they (`indexing.lifeline`)."""
    die_with_parent(owner)  # a killed indexer leaves no parser processes behind
    if "pandas" not in sys.modules:
        sys.meta_path.insert(0, _NoPandas())
    # No cyclic garbage collection at all in a parser process: what it allocates is acyclic, and a
    # collection deferred by `_gc_paused` still ran (about 1 ms) each time a group ended.
    gc.disable()


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    if enabled:
        gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _read_and_parse(
    entry: FileEntry, settings: ParseLimits, known_hash: str | None
) -> SkippedFile | Unchanged | tuple[FileRecord, ParseResult]:
    read = _read(entry, settings, known_hash)
    if not isinstance(read, tuple):
        return read
    record, source = read
    return record, _parse(source, settings)


def _read(
    entry: FileEntry, settings: ParseLimits, known_hash: str | None
) -> SkippedFile | Unchanged | tuple[FileRecord, SourceFile]:
    """The file read and checked, its record; `Unchanged` when its content hash is ``known_hash``."""
    source = load_source(entry, settings)
    if isinstance(source, SkippedFile):
        return source
    record = FileRecord(source.path, source.hash, source.mtime_ns, source.size, source.language or "")
    if known_hash is not None and known_hash == source.hash:
        return Unchanged(record)
    return record, source


def _parse(source: SourceFile, settings: ParseLimits) -> ParseResult:
    from indexing.chunker import parse_source  # imported on first use: the service needs none of it

    return parse_source(source.path, indexed_text(source, settings), source.language, settings)


def indexed_text(source: SourceFile, settings: ParseLimits) -> str:
    """The text the index holds of ``source``. Secret values never reach the index: chunks and symbols come
    from the text with placeholders (values written encoded too: `redact_source`)."""
    text, _ = redact_source(source.text, settings.secret_key or _UNKEYED, source.path)
    return text


@dataclass(frozen=True, slots=True)
class Prepared:
    """The rows of an open document, made from its text before it is saved (`prepare_text`). They stand
    for the file on disk only when its content hash and the parse limits (secret key included) are the
    ones they were made with (`use_prepared`)."""

    hash: str
    limits: ParseLimits
    chunks: pa.Table
    symbols: pa.Table
    vectors: Any = None
    """The chunks' vectors, one row per chunk, when the caller embedded them (`WorkspaceIndex.prepare`)."""
    embedder: str = ""
    """The id of the model that made `vectors`: they are used only while it is the index's model."""


def prepare_text(path: str, text: str, settings: ParseLimits) -> Prepared | SkippedFile:
    """The rows a save of ``text`` to ``path`` (workspace-relative) would give, made now: the same checks
    as reading the file (`decode_source`: size, binary, generated, secret path), secret values redacted,
    the same chunker. The text is hashed as UTF-8, which is what editors write: a file saved with a BOM
    or in another encoding hashes differently and is parsed at its save as usual."""
    source = decode_source(path, text.encode("utf-8"), 0, settings)
    if isinstance(source, SkippedFile):
        return source
    with _gc_paused():
        result = _parse(source, settings)
    return Prepared(source.hash, settings, chunks_table(result.chunks), symbols_table(result.symbols))


def use_prepared(
    entry: FileEntry, settings: ParseLimits, known_hash: str | None, prepared: Prepared
) -> Outcome | None:
    """What `process_many` would make of ``entry``, with ``prepared`` rows in place of a parse: the file is
    read and checked as usual, and the rows are used only when the file's content hash and ``settings``
    are the ones they were made from. None when they are not (the file must be parsed)."""
    if prepared.limits != settings:
        return None
    read = _read(entry, settings, known_hash)
    if not isinstance(read, tuple):
        return read
    record, source = read
    if source.hash != prepared.hash:
        return None
    return Parsed(record, prepared.chunks, prepared.symbols, prepared.vectors)


def process_many(entries: list[FileEntry], settings: ParseLimits, known: dict[str, str]) -> ParsedGroup:
    """Worker-process entry point: one task is a small group of files, to amortise the round trip.

    ``known``: the stored content hash of files indexed before; a file whose hash is unchanged comes back
    `Unchanged` without being parsed.
    """
    with _gc_paused():
        heads, parsed = _read_and_parse_all(entries, settings, known)
        try:
            group = _group(heads, parsed)
        except Exception:  # rows of one file did not convert: find it, keep the others
            log.exception("building rows for a group of %d files failed; retrying file by file", len(parsed))
            group = _group_file_by_file(heads, parsed)
        # Freed while the collector is still paused: its first run after `gc.enable` would otherwise walk
        # every chunk and symbol tuple of the group, all garbage by then (60-90 ms of CPU over Django's
        # groups parsed in one process; parser processes run without the collector).
        parsed.clear()
        return group


def _read_and_parse_all(
    entries: list[FileEntry], settings: ParseLimits, known: dict[str, str]
) -> tuple[list[_Head], list[tuple[FileRecord, ParseResult]]]:
    heads: list[_Head] = []
    parsed: list[tuple[FileRecord, ParseResult]] = []
    for entry in entries:
        try:
            outcome = _read_and_parse(entry, settings, known.get(entry.path))
        except Exception as exc:  # a bug on one file must not lose the group
            log.exception("failed to index %s", entry.path)
            heads.append(_internal_error(entry.path, exc))
            continue
        if isinstance(outcome, tuple):
            record, result = outcome
            heads.append(_ParsedHead(record, len(result.chunks), len(result.symbols)))
            parsed.append(outcome)
        else:
            heads.append(outcome)
    return heads, parsed


def _group(heads: list[_Head], parsed: list[tuple[FileRecord, ParseResult]]) -> ParsedGroup:
    chunks: list[Chunk] = [c for _, result in parsed for c in result.chunks]
    symbols: list[Symbol] = [s for _, result in parsed for s in result.symbols]
    return ParsedGroup(heads, chunks_table(chunks), symbols_table(symbols))


def _group_file_by_file(heads: list[_Head], parsed: list[tuple[FileRecord, ParseResult]]) -> ParsedGroup:
    results = {record.path: result for record, result in parsed}
    kept: list[_Head] = []
    chunk_tables: list[pa.Table] = [CHUNKS_SCHEMA.empty_table()]
    symbol_tables: list[pa.Table] = [SYMBOLS_SCHEMA.empty_table()]
    for head in heads:
        if not isinstance(head, _ParsedHead):
            kept.append(head)
            continue
        result = results[head.record.path]
        try:
            chunk_rows, symbol_rows = chunks_table(result.chunks), symbols_table(result.symbols)
        except Exception as exc:
            log.exception("failed to build the rows of %s", head.record.path)
            kept.append(_internal_error(head.record.path, exc))
            continue
        kept.append(head)
        chunk_tables.append(chunk_rows)
        symbol_tables.append(symbol_rows)
    chunks = pa.concat_tables(chunk_tables).combine_chunks()
    return ParsedGroup(kept, chunks, pa.concat_tables(symbol_tables).combine_chunks())


def _internal_error(path: str, exc: Exception) -> SkippedFile:
    return SkippedFile(path, SkipReason.UNREADABLE, f"internal error: {exc!r}")
