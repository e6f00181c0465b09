"""The optional re-ranker stage (`indexing.rerank`) through `WorkspaceIndex.search` on a real index.

A local HTTP server (`tests.fakes.rerank_server`) stands in for a Cohere/Voyage-style ``/rerank``
endpoint. Loading a real cross-encoder imports torch (20 s on a loaded machine), so that test is in
``tests/benchmarks/test_rerank_latency.py`` with the latency figures.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from indexing.config import EmbeddingSettings, IndexSettings, RerankSettings
from indexing.rerank import RerankError, load_reranker
from indexing.service import WorkspaceIndex
from tests.fakes.rerank_server import RerankEndpoint, rerank_endpoint


@pytest.fixture
def endpoint() -> Iterator[RerankEndpoint]:
    with rerank_endpoint() as server:
        yield server


def _index(
    root: Path, cache: Path, rerank: RerankSettings, env: dict[str, str] | None = None
) -> WorkspaceIndex:
    settings = IndexSettings(embedding=EmbeddingSettings(provider="none"), rerank=rerank)
    index = WorkspaceIndex(root, settings, cache_dir=cache, env=env or {})
    index.index()
    return index


def test_api_reranker_reorders_the_best_hits_in_its_order(
    endpoint: RerankEndpoint, workspace: Path, cache_dir: Path
) -> None:
    plain = _index(workspace, cache_dir, RerankSettings()).search("price", limit=5)
    assert len(plain) >= 3 and endpoint.bodies == []  # off by default: the endpoint is never asked
    last = plain[-1]
    endpoint.favourite = f"{last.path} {last.symbol}".strip()
    rerank = RerankSettings(provider="api", url=endpoint.url(), model="rerank-2-lite", api_key_env="RR_KEY")
    index = _index(workspace, cache_dir / "r", rerank, env={"RR_KEY": "k-123"})
    hits = index.search("price", limit=5)
    assert (hits[0].path, hits[0].start_line) == (last.path, last.start_line)
    assert {(h.path, h.start_line) for h in hits} <= {
        (h.path, h.start_line) for h in index.search("price", limit=20)
    }
    body = endpoint.bodies[0]
    assert body["model"] == "rerank-2-lite" and body["query"] == "price"
    assert body["top_n"] == len(body["documents"]) >= 5
    assert endpoint.auth[0] == "Bearer k-123"

    endpoint.style = "data"  # Voyage's answer shape reads the same
    assert index.search("price", limit=5)[0].path == last.path


def test_a_failing_endpoint_keeps_the_first_stage_order(
    endpoint: RerankEndpoint, workspace: Path, cache_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    plain = [(h.path, h.start_line) for h in _index(workspace, cache_dir, RerankSettings()).search("price")]
    endpoint.status = 503
    index = _index(workspace, cache_dir / "r", RerankSettings(provider="api", url=endpoint.url()))
    with caplog.at_level(logging.WARNING, logger="indexing.rerank"):
        hits = index.search("price")
    assert [(h.path, h.start_line) for h in hits] == plain
    assert "HTTP 503" in caplog.text and "first-stage order kept" in caplog.text


def test_configuration_errors_say_what_to_do(workspace: Path, cache_dir: Path) -> None:
    index = _index(workspace, cache_dir, RerankSettings(provider="cross-encoder", model="acme/not-here"))
    with pytest.raises(
        RerankError, match=r"no cross-encoder 'acme/not-here' on this machine.*nothing is downloaded"
    ):
        index.search("price")
    with pytest.raises(RerankError, match="needs url"):
        load_reranker(RerankSettings(provider="api"), cache_dir, {})
    with pytest.raises(RerankError, match="export RR_KEY"):
        load_reranker(
            RerankSettings(provider="api", url="http://x/rerank", api_key_env="RR_KEY"), cache_dir, {}
        )
