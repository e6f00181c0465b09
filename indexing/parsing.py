"""What a parser process does with a group of files: read, hash, parse, chunk, and build the rows.

Kept apart from the service (and from LanceDB) so worker processes start fast: they import this module,
tree-sitter and pyarrow, nothing else heavy.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pyarrow as pa

from indexing.config import IndexSettings
from indexing.models import Chunk, FileRecord, SkippedFile, SkipReason
from indexing.rows import search_text, symbols_table
from indexing.walker import FileEntry, load_source

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Parsed:
    """A parsed file as the worker sends it back: symbols already as Arrow columns (cheap to pickle
    and to store; converting 200k symbols to Arrow in the main process would serialise that work)."""

    record: FileRecord
    chunks: tuple[Chunk, ...]
    symbols: pa.Table
    search_texts: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Unchanged:
    record: FileRecord


Outcome = Parsed | Unchanged | SkippedFile


def process_entry(entry: FileEntry, settings: IndexSettings, known_hash: str | None) -> Outcome:
    from indexing.chunker import parse_source  # imported on first use: the service needs none of it

    source = load_source(entry, settings)
    if isinstance(source, SkippedFile):
        return source
    record = FileRecord(source.path, source.hash, source.mtime_ns, source.size, source.language or "")
    if known_hash is not None and known_hash == source.hash:
        return Unchanged(record)
    result = parse_source(source.path, source.text, source.language, settings)
    return Parsed(
        record, result.chunks, symbols_table(result.symbols), tuple(search_text(c) for c in result.chunks)
    )


def process_many(entries: list[FileEntry], settings: IndexSettings, known: dict[str, str]) -> list[Outcome]:
    """Worker-process entry point: one task is a small group of files, to amortise pickling."""
    out: list[Outcome] = []
    for entry in entries:
        try:
            out.append(process_entry(entry, settings, known.get(entry.path)))
        except Exception as exc:  # a bug on one file must not lose the batch
            log.exception("failed to index %s", entry.path)
            out.append(SkippedFile(entry.path, SkipReason.UNREADABLE, f"internal error: {exc!r}"))
    return out
