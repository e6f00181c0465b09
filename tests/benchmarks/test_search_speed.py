"""Search latency on the Django index, fresh and after 500 single-file updates.

Target 4 (issue "Foundation and the indexing engine", Speed and memory): hybrid top-10 search on the
Django index with p50 < 20 ms and p99 < 60 ms over a few hundred realistic queries (identifiers and
docstring phrases); after 500 single-file updates (``update_paths``, then ``maintain()`` as the server
does when idle) no more than 1.5x slower than after the fresh index. Both "after" states are measured
(without and with ``maintain()``); the target applies to the one with it, the other is reported.

Each query's latency is the median of ``REPS`` timings, taken in interleaved passes over the query set,
so a burst of load from other processes on this shared machine hits one pass, not one query's figure.
Before ``maintain()`` searches are much slower, so that state is timed on a subset of the queries, once,
and compared with the same queries' figures on the fresh index.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from indexing.service import WorkspaceIndex
from tests.benchmarks.conftest import EmbeddedIndex
from tests.benchmarks.harness import (
    Entry,
    Query,
    corpus_functions,
    median,
    percentile,
    record,
    rerun_command,
    search_queries,
)

pytestmark = pytest.mark.benchmark

QUERIES = 300
REPS = 3
UPDATES = 500
SUBSET = 100
P50_MS = 20.0
P99_MS = 60.0
MAX_SLOWDOWN = 1.5


@dataclass(frozen=True, slots=True)
class Latency:
    per_query_ms: list[float]
    empty: int  # queries that returned no hit (a search that finds nothing is suspiciously fast)

    @property
    def p50(self) -> float:
        return percentile(self.per_query_ms, 50)

    @property
    def p99(self) -> float:
        return percentile(self.per_query_ms, 99)

    @property
    def mean(self) -> float:
        return sum(self.per_query_ms) / len(self.per_query_ms)

    def line(self) -> str:
        return f"p50 {self.p50:.1f} ms, p99 {self.p99:.1f} ms, mean {self.mean:.1f} ms"


def measure(index: WorkspaceIndex, queries: Sequence[Query], reps: int = REPS) -> Latency:
    for query in queries[:20]:  # warm caches (model, table handles) before timing
        index.search(query.text, limit=10)
    timings: list[list[float]] = [[] for _ in queries]
    empty = 0
    for rep in range(reps):
        for n, query in enumerate(queries):
            start = time.perf_counter()
            hits = index.search(query.text, limit=10)
            timings[n].append((time.perf_counter() - start) * 1000)
            if rep == 0 and not hits:
                empty += 1
    return Latency([median(t) for t in timings], empty)


def _edit(path: Path, n: int) -> None:
    """A small real edit: a comment line appended, so the file's hash changes and it is re-indexed."""
    with path.open("a") as fh:
        fh.write(f"\n# edited by the search benchmark, update {n}\n")


@pytest.mark.timeout(1200)
def test_hybrid_search_latency_and_degradation(
    django_embedded: EmbeddedIndex, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    clone = django_embedded.clone(tmp_path)
    queries = search_queries(corpus_functions(clone.root), QUERIES)
    kinds = {k: sum(q.kind == k for q in queries) for k in ("identifier", "phrase")}
    index = clone.open()
    stats_fresh = index.store.stats()
    fresh = measure(index, queries)

    files = sorted(clone.root.rglob("*.py"))
    picked = random.Random(5).sample(files, UPDATES)
    update_ms: list[float] = []
    for n, path in enumerate(picked):
        _edit(path, n)
        start = time.perf_counter()
        index.update_paths([path])
        update_ms.append((time.perf_counter() - start) * 1000)
    stats_updated = index.store.stats()
    # Searches are an order of magnitude slower here: a subset, timed once, keeps the run short.
    subset = queries[:SUBSET]
    updated = measure(index, subset, reps=1)
    fresh_subset = Latency(fresh.per_query_ms[:SUBSET], 0)

    start = time.perf_counter()
    index.maintain()
    maintain_s = time.perf_counter() - start
    stats_maintained = index.store.stats()
    maintained = measure(index, queries)

    slow_raw = updated.p50 / fresh_subset.p50
    slow = maintained.p50 / fresh.p50
    query_mix = (
        f"{len(queries)} queries ({kinds['identifier']} identifiers, {kinds['phrase']} docstring phrases)"
    )
    examples = "; ".join(q.text for q in queries[:6])
    record(
        Entry(
            key="search.hybrid.django",
            title="Hybrid top-10 search latency on the fresh Django index",
            target=f"p50 < {P50_MS:g} ms, p99 < {P99_MS:g} ms",
            measured=fresh.line(),
            passed=fresh.p50 < P50_MS and fresh.p99 < P99_MS,
            figures={
                "p50_ms": round(fresh.p50, 2),
                "p99_ms": round(fresh.p99, 2),
                "mean_ms": round(fresh.mean, 2),
            },
            details=[
                f"{query_mix}, each timed {REPS}x (median per query); {fresh.empty} returned no hit",
                f"examples: {examples}",
                f"index: {stats_fresh.chunks} chunks, {stats_fresh.vectors} vectors, "
                f"{stats_fresh.fragments} fragments",
            ],
            rerun=rerun_command(request.node.nodeid),
        )
    )
    record(
        Entry(
            key="search.after_updates.django",
            title=f"Search after {UPDATES} single-file updates, then maintain()",
            target=f"p50 no more than {MAX_SLOWDOWN:g}x the fresh index's (measured in the same run)",
            measured=f"with maintain(): {maintained.line()} = {slow:.2f}x; "
            f"without: {updated.line()} = {slow_raw:.2f}x",
            passed=slow <= MAX_SLOWDOWN,
            figures={
                "fresh_p50_ms": round(fresh.p50, 2),
                "fresh_p99_ms": round(fresh.p99, 2),
                "updated_p50_ms": round(updated.p50, 2),
                "updated_p99_ms": round(updated.p99, 2),
                "maintained_p50_ms": round(maintained.p50, 2),
                "maintained_p99_ms": round(maintained.p99, 2),
                "slowdown_without_maintain": round(slow_raw, 3),
                "slowdown_with_maintain": round(slow, 3),
                "update_ms_median": round(median(update_ms), 1),
                "update_ms_p90": round(percentile(update_ms, 90), 1),
                "maintain_seconds": round(maintain_s, 2),
            },
            details=[
                f"{UPDATES} files edited (a comment appended) and re-indexed one update_paths call each: "
                f"median {median(update_ms):.0f} ms, p90 {percentile(update_ms, 90):.0f} ms per call",
                f"fragments: fresh {stats_fresh.fragments}, after updates {stats_updated.fragments}, "
                f"after maintain() {stats_maintained.fragments} (maintain took {maintain_s:.1f} s)",
                f"fresh: {fresh.line()}",
                f"after updates, before maintain() (first {SUBSET} queries, timed once): {updated.line()} "
                f"({slow_raw:.2f}x p50 and {updated.p99 / fresh_subset.p99:.2f}x p99 of the same queries "
                "on the fresh index)",
                f"after maintain(): {maintained.line()} ({slow:.2f}x p50, "
                f"{maintained.p99 / fresh.p99:.2f}x p99)",
            ],
            rerun=rerun_command(request.node.nodeid),
        )
    )
    assert fresh.empty < len(queries) // 10, f"{fresh.empty} queries found nothing: the index looks broken"
    assert fresh.p50 < P50_MS and fresh.p99 < P99_MS, f"fresh index: {fresh.line()}"
    assert slow <= MAX_SLOWDOWN, f"after {UPDATES} updates and maintain(): p50 {slow:.2f}x the fresh index's"


MAX_OVER_BM25 = 2.5


@pytest.mark.timeout(900)
def test_hybrid_search_over_a_bare_bm25_query(
    django_embedded: EmbeddedIndex, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Issue 13: the whole hybrid search (BM25, symbol and vector retrievers, the reads of their rows,
    the ranking) against the one LanceDB full-text query it starts from, timed in the same passes. A
    ratio, because on this shared machine the absolute figures move with the load (before the parallel
    search path: 3.2-3.6x; after: 2.1-2.3x, in A/B runs on a Django index under load 12-16)."""
    from indexing.service import _pool
    from indexing.store import RANK_COLUMNS

    clone = django_embedded.clone(tmp_path)
    queries = search_queries(corpus_functions(clone.root), QUERIES)
    index = clone.open()
    store = index.store
    for query in queries[:20]:
        index.search(query.text, limit=10)
        store.search_lexical(query.text, _pool(10), None, RANK_COLUMNS)
    hybrid: list[list[float]] = [[] for _ in queries]
    bm25: list[list[float]] = [[] for _ in queries]
    for _ in range(REPS):
        for n, query in enumerate(queries):
            start = time.perf_counter()
            index.search(query.text, limit=10)
            middle = time.perf_counter()
            store.search_lexical(query.text, _pool(10), None, RANK_COLUMNS)
            hybrid[n].append((middle - start) * 1000)
            bm25[n].append((time.perf_counter() - middle) * 1000)
    hybrid_p50 = median([median(t) for t in hybrid])
    bm25_p50 = median([median(t) for t in bm25])
    ratio = hybrid_p50 / bm25_p50
    record(
        Entry(
            key="search.hybrid_over_bm25.django",
            title="Hybrid search over a bare BM25 query (Django, same passes)",
            target=f"hybrid p50 <= {MAX_OVER_BM25:g}x the p50 of the LanceDB full-text query alone",
            measured=f"hybrid p50 {hybrid_p50:.1f} ms vs BM25 alone {bm25_p50:.1f} ms = {ratio:.2f}x",
            passed=ratio <= MAX_OVER_BM25,
            figures={
                "hybrid_p50_ms": round(hybrid_p50, 2),
                "bm25_p50_ms": round(bm25_p50, 2),
                "ratio": ratio,
            },
            details=[
                f"{len(queries)} queries (identifiers and docstring phrases), {REPS} interleaved passes"
            ],
            rerun=rerun_command(request.node.nodeid),
        )
    )
    assert ratio <= MAX_OVER_BM25, f"hybrid p50 {hybrid_p50:.1f} ms is {ratio:.2f}x BM25's {bm25_p50:.1f} ms"
