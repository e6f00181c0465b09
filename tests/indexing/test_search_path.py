"""The hybrid search path of `WorkspaceIndex.search`: which store queries it runs, and that they overlap.

Each LanceDB query costs several milliseconds whatever it returns (most of it waiting on Lance's own
threads), so the search runs its retrievers at once and skips the ones that cannot change the answer.
The store here is real; its methods are only wrapped to watch the calls.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from indexing.config import IndexSettings
from indexing.service import WorkspaceIndex


@pytest.fixture
def index(workspace: Path, model_cache_dir: Path) -> WorkspaceIndex:
    built = WorkspaceIndex(workspace, IndexSettings(), cache_dir=model_cache_dir, env={})
    report = built.index()
    assert report.vectors > 0
    return built


def watch(index: WorkspaceIndex, name: str, calls: list[str], before: Any = None) -> None:
    store = index.store
    original = getattr(store, name)

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        calls.append(name)
        if before is not None:
            before()
        return original(*args, **kwargs)

    setattr(store, name, wrapped)


def test_the_lexical_and_vector_queries_run_at_once(index: WorkspaceIndex) -> None:
    vector_started = threading.Event()
    overlapped: list[bool] = []
    calls: list[str] = []
    watch(index, "search_vector", calls, vector_started.set)
    # The BM25 query waits (up to 10 s) for the vector query to start: one after the other, it never does.
    watch(index, "search_lexical", calls, lambda: overlapped.append(vector_started.wait(10)))
    hits = index.search("money amount in cents with currency")
    assert hits[0].symbol == "Money" and "vector" in hits[0].sources
    assert overlapped == [True]


def test_a_bare_defined_symbol_needs_no_vectors_and_one_symbol_query(index: WorkspaceIndex) -> None:
    calls: list[str] = []
    for name in ("search_vector", "find_symbols", "search_lexical"):
        watch(index, name, calls)
    hits = index.search("parse_price")
    assert hits[0].symbol == "parse_price"
    assert sorted(calls) == ["find_symbols", "search_lexical"]
    calls.clear()
    # A word that names no definition may still be a concept: the vectors are asked.
    index.search("currency")
    assert "search_vector" in calls
    calls.clear()
    # Two identifiers: their definitions are looked up in one query.
    hits = index.search("apply_discount or add_vat")
    assert calls.count("find_symbols") == 1
    assert {"apply_discount", "add_vat"} <= {h.symbol for h in hits}
