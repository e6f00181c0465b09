"""The hybrid search path of `WorkspaceIndex.search`: which store queries it runs, and that they overlap.

Each LanceDB query costs several milliseconds whatever it returns (most of it waiting on Lance's own
threads), so the search runs its retrievers at once, as one coroutine handed to LanceDB's event loop
once, and skips the ones that cannot change the answer. The store here is real; its methods are only
wrapped to watch the calls.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from indexing import store as store_module
from indexing.config import IndexSettings
from indexing.service import WorkspaceIndex
from indexing.store import RANK_COLUMNS, fts_query, scan_query, vector_query


@pytest.fixture
def index(workspace: Path, model_cache_dir: Path) -> WorkspaceIndex:
    built = WorkspaceIndex(workspace, IndexSettings(), cache_dir=model_cache_dir, env={})
    report = built.index()
    assert report.vectors > 0
    return built


def watch(index: WorkspaceIndex, name: str, calls: list[str], before: Any = None) -> None:
    """Record each call of the store's coroutine ``name``; ``before`` (a coroutine function) runs first."""
    store = index.store
    original = getattr(store, name)

    async def wrapped(*args: Any, **kwargs: Any) -> Any:
        calls.append(name)
        if before is not None:
            await before()
        return await original(*args, **kwargs)

    setattr(store, name, wrapped)


def test_the_lexical_and_vector_queries_run_at_once(index: WorkspaceIndex) -> None:
    vector_started = threading.Event()
    overlapped: list[bool] = []
    calls: list[str] = []

    async def started() -> None:
        vector_started.set()

    async def wait_for_vector() -> None:
        # The BM25 read waits (up to 10 s) for the vector read to start: one after the other, it never does.
        deadline = time.monotonic() + 10
        while not vector_started.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        overlapped.append(vector_started.is_set())

    watch(index, "search_vector_async", calls, started)
    watch(index, "search_lexical_async", calls, wait_for_vector)
    hits = index.search("money amount in cents with currency")
    assert hits[0].symbol == "Money" and "vector" in hits[0].sources
    assert overlapped == [True]


def test_a_search_hands_its_reads_to_lancedb_once(index: WorkspaceIndex, monkeypatch: Any) -> None:
    """LanceDB's synchronous API hands each query to its event loop five or six times; a search's reads
    (BM25, symbols, vectors, the nearest chunks' rows, the definitions' rows) go over in one coroutine."""
    index.search("warm up: open the tables")
    loop = store_module._LANCE_LOOP
    handed: list[object] = []
    original = loop.run

    def run(coroutine: Any) -> Any:
        handed.append(coroutine)
        return original(coroutine)

    monkeypatch.setattr(loop, "run", run)
    calls: list[str] = []
    for name in (
        "search_lexical_async",
        "search_vector_async",
        "chunks_by_id_async",
        "definition_sites_async",
    ):
        watch(index, name, calls)
    hits = index.search("apply_discount to the money amount")
    assert {"apply_discount", "Money"} & {h.symbol for h in hits}
    assert sorted(set(calls)) == sorted(
        ["search_lexical_async", "search_vector_async", "chunks_by_id_async", "definition_sites_async"]
    )
    assert len(handed) == 1


def test_the_store_queries_are_the_ones_lancedbs_builders_make(index: WorkspaceIndex) -> None:
    """The store builds its LanceDB queries itself (a builder hands the table's schema over from LanceDB's
    loop first); they must stay the queries the builders make, filter and pre-filtering included."""
    tables = index.store
    chunks, vectors = tables.table("chunks"), tables.table("vectors")
    where = "starts_with(path, 'src/')"
    columns = ["id", "path", "search_text"]
    for filtered in (None, where):
        builder = chunks.search("money amount", query_type="fts", fts_columns="search_text")
        if filtered:
            builder = builder.where(filtered, prefilter=True)
        assert (
            fts_query("money amount", columns, filtered, 7)
            == builder.select(columns).limit(7).to_query_object()
        )
        vector = np.linspace(-1, 1, vectors.schema.field("vector").type.list_size, dtype=np.float64)
        builder = vectors.search(vector.astype(np.float32)).distance_type("cosine")
        if filtered:
            builder = builder.where(filtered, prefilter=True)
        made = builder.select(["id", "_distance"]).limit(9).to_query_object()
        assert vector_query(vector, ["id", "_distance"], filtered, 9) == made
    made = chunks.search().where(where).select(RANK_COLUMNS).limit(3).to_query_object()
    assert scan_query(RANK_COLUMNS, where, 3) == made
    assert scan_query(None, where, 3) == chunks.search().where(where).limit(3).to_query_object()


def test_a_bare_defined_symbol_needs_no_vectors_and_one_symbol_query(index: WorkspaceIndex) -> None:
    calls: list[str] = []
    for name in ("search_vector_async", "definition_sites_async", "search_lexical_async"):
        watch(index, name, calls)
    hits = index.search("parse_price")
    assert hits[0].symbol == "parse_price"
    assert sorted(calls) == ["definition_sites_async", "search_lexical_async"]
    calls.clear()
    # A word that names no definition may still be a concept: the vectors are asked.
    index.search("currency")
    assert "search_vector_async" in calls
    calls.clear()
    # Two identifiers: their definitions are looked up in one query.
    hits = index.search("apply_discount or add_vat")
    assert calls.count("definition_sites_async") == 1
    assert {"apply_discount", "add_vat"} <= {h.symbol for h in hits}
