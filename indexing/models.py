"""Data that crosses the indexing package's boundary: frozen, typed, and free of storage details."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal, NamedTuple

SymbolRole = Literal["definition", "reference"]


def content_hash(data: bytes) -> str:
    """The content hash that decides whether a file must be re-indexed."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


@dataclass(frozen=True, slots=True)
class Chunk:
    """One retrievable unit of a file. Lines are 1-based and inclusive."""

    path: str  # workspace-relative POSIX path
    language: str
    kind: str  # function | method | class | module | section | window | ...
    name: str  # short name of the symbol the chunk defines ("" when none)
    parents: tuple[str, ...]  # enclosing names, outermost first
    start_line: int
    end_line: int
    text: str
    signature: str = ""
    doc: str = ""

    @property
    def symbol(self) -> str:
        """Qualified name, e.g. ``Outer.Inner.method``."""
        return ".".join((*self.parents, self.name)) if self.name else ".".join(self.parents)

    @property
    def id(self) -> str:
        key = f"{self.path}\0{self.start_line}\0{self.end_line}\0{self.kind}\0{self.symbol}\0{self.text}"
        return hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


class Symbol(NamedTuple):
    """A definition or reference found by a tags query. Lines 1-based, columns 0-based code points.

    A NamedTuple rather than a frozen dataclass: a large workspace has hundreds of thousands of
    references, and building, pickling and storing them is a measurable share of indexing time.
    """

    name: str
    kind: str  # function | method | class | interface | module | call | type | constant | ...
    role: SymbolRole
    path: str
    line: int
    column: int
    end_line: int
    end_column: int
    container: str = ""  # qualified name of the enclosing definition, "" at top level


AUTO_WORKERS_MAX = 8
"""The most parser processes ``index.workers = 0`` starts (one per core up to this; `indexing.parsing`)."""


@dataclass(frozen=True, slots=True)
class ParseLimits:
    """The settings that reading and chunking one file need (`IndexSettings.parse_limits`).

    A plain dataclass, so parser processes receive it without importing pydantic: that import was a
    third of their start-up.
    """

    max_file_bytes: int
    max_line_chars: int
    chunk_max_lines: int
    window_lines: int
    window_overlap: int
    secret_key: bytes = b""
    """Placeholder key of `indexing.secrets` (secret values are replaced in chunks and symbols)."""


@dataclass(frozen=True, slots=True)
class ParseResult:
    """What the chunker makes of one file."""

    chunks: tuple[Chunk, ...]
    symbols: tuple[Symbol, ...]
    has_syntax_errors: bool = False


class SkipReason(StrEnum):
    IGNORED = "ignored"  # .gitignore / .agentlsignore / exclude settings
    SECRET = "secret"
    BINARY = "binary"
    TOO_LARGE = "too large"
    GENERATED = "generated"
    SYMLINK_ESCAPE = "symlink outside workspace"
    UNREADABLE = "unreadable"
    VANISHED = "vanished"


@dataclass(frozen=True, slots=True)
class SkippedFile:
    path: str
    reason: SkipReason
    detail: str = ""


@dataclass(frozen=True, slots=True)
class FileRecord:
    path: str
    hash: str
    mtime_ns: int
    size: int
    language: str


@dataclass(frozen=True, slots=True)
class SearchHit:
    """A ranked search result. Lines are 1-based and inclusive."""

    path: str
    start_line: int
    end_line: int
    symbol: str
    kind: str
    language: str
    score: float
    text: str
    signature: str = ""
    sources: tuple[str, ...] = ()  # which retrievers found it: "lexical", "vector"


@dataclass(slots=True)
class IndexReport:
    """Closing summary of an index run."""

    root: str
    files_seen: int = 0
    files_indexed: int = 0
    files_unchanged: int = 0
    files_removed: int = 0
    files_prepared: int = 0  # of files_indexed: rows made before the save (`WorkspaceIndex.prepare`)
    chunks: int = 0
    symbols: int = 0
    vectors: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    lexical_only: bool = False
    notice: str = ""
    warnings: list[str] = field(default_factory=list)  # e.g. ignore files that leave out (nearly) everything
    # The embedding endpoint failed: this run wrote chunks without vectors (its line is in `errors`); the
    # next run adds them.
    embedding_failed: bool = False
