"""What runs in the language server's search process: one read-only `WorkspaceIndex` per folder, opened
once its tables exist and refreshed as they change (`ReaderSpec.open`), and the calls the server sends it
(`search_in_process`, `read_in_process`, `warm_up`).

`server.features.indexing.BackgroundIndexer` starts the process (a fork-server process pool of one) and
sends it these functions; the process imports the module that defines them to unpickle them, so this
module imports only what they need: LanceDB and the index service load on the first call, and the server's
LSP modules (lsprotocol, the documents, the overlay) never load there. Defined beside the indexer, they
cost the search process about a second of imports before its first search.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from indexing.config import IndexSettings

if TYPE_CHECKING:
    from indexing.models import SearchHit
    from indexing.service import WorkspaceIndex

__all__ = [
    "READER_REFRESH_SECONDS",
    "TABLES",
    "ReaderSpec",
    "read_in_process",
    "search_in_process",
    "tables_exist",
    "warm_up",
]

TABLES = ("files.lance", "chunks.lance", "symbols.lance")
"""The tables of an index, as folders under its ``lance`` folder."""

READER_REFRESH_SECONDS = 1.0
"""The search process's reader looks for writes of other processes (another editor's server on the same
workspace, ``agentls index``) at most this often; a refresh costs about a millisecond."""


@dataclass
class _Reader:
    """A reader of the search process: the folder's index, the generation it has seen, and when it last
    looked for new writes (`time.monotonic`)."""

    index: WorkspaceIndex
    generation: int
    refreshed: float


# State of the search process (never of the server process): one reader per (folder, its real path,
# settings): a folder whose link was retargeted reads the index where it leads now.
_READERS: dict[tuple[str, str, str], _Reader] = {}


@dataclass(frozen=True)
class ReaderSpec:
    """Which reader of the search process a call needs: the folder, its settings, and how fresh."""

    root: str
    settings_json: str
    cache_dir: str
    env: dict[str, str]
    generation: int

    def open(self) -> WorkspaceIndex | None:
        """The search process's reader of the folder's index, None while its tables do not exist (before
        the first index, or after its folder was deleted: the reader never makes tables, the indexing
        process does). Refreshed when the folder's generation moved (this server wrote) or
        `READER_REFRESH_SECONDS` passed (another process may have), and opened again when the index was
        deleted and made again meanwhile."""
        from indexing.service import WorkspaceIndex

        key = (self.root, os.path.realpath(self.root), self.settings_json)
        reader = _READERS.get(key)
        now = time.monotonic()
        if reader is None:
            settings = IndexSettings.model_validate_json(self.settings_json)
            index = WorkspaceIndex(Path(self.root), settings, cache_dir=Path(self.cache_dir), env=self.env)
            for old in [k for k in _READERS if k[0] == self.root]:
                _READERS.pop(old).index.close()
            reader = _READERS[key] = _Reader(index, self.generation, now)
        index = reader.index
        if not tables_exist(index.location):
            return None
        if reader.generation != self.generation or now - reader.refreshed >= READER_REFRESH_SECONDS:
            if not index.reopen_if_replaced():
                index.store.refresh()
            reader.generation, reader.refreshed = self.generation, now
        return index


def search_in_process(
    spec: ReaderSpec, query: str, limit: int, scope: str | None, files: bool = False, diverse: bool = True
) -> list[SearchHit]:
    """Runs in the search process: search one folder's index (opened or refreshed as needed)."""
    index = spec.open()
    if index is None:
        return []
    return index.search(query, limit=limit, path=scope, files=files, diverse=diverse)


def read_in_process(spec: ReaderSpec, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Runs in the search process: `WorkspaceIndex.<method>` on one folder's index ([] before it has
    tables)."""
    index = spec.open()
    return [] if index is None else getattr(index, method)(*args, **kwargs)


def tables_exist(location: Path) -> bool:
    return all((location / "lance" / table).is_dir() for table in TABLES)


def warm_up() -> bool:
    """Import the index service (LanceDB, the models) before the first search."""
    import indexing.service  # noqa: F401

    return True
