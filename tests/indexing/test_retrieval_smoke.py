"""Retrieval smoke test: a small slice of the retrieval benchmark in the default run, so that a ranking
regression fails CI.

Two real source trees, vendored under ``tests/fixtures/retrieval`` with their licences: part of requests
2.32.3 (Python: auth, cookies, sessions, structures, utils, and three of its test files, which must not
outrank the code they test) and express 4.21.1's ``lib`` (JavaScript). The queries are the benchmark's
own (``tests/benchmarks/retrieval/queries.json``) whose targets lie in these files, scored with the
benchmark's NDCG@10. Lexical search (no model), as on a fresh install.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from indexing.config import EmbeddingSettings, IndexSettings
from indexing.service import WorkspaceIndex
from tests.benchmarks.retrieval.evaluate import Hit, load_queries, score

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "retrieval"

NDCG_FLOOR = 0.88
"""Mean NDCG@10 over the smoke queries must stay at or above this. Measured when it was set (session 7):
0.90 with the learned re-scoring (`indexing.ranking_model`), 0.86 without it (the hand-weighted ranking
of issue 13), 0.76 with the ranking before that (BM25 fused by rank, small boosts)."""


def _queries() -> list[dict[str, Any]]:
    return [
        q
        for q in load_queries("all")
        if q["repo"] in ("requests", "express")
        and all((FIXTURES / q["repo"] / t["path"]).is_file() for t in q["targets"])
    ]


@pytest.fixture(scope="module")
def indexes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, WorkspaceIndex]:
    cache = tmp_path_factory.mktemp("retrieval-cache")
    settings = IndexSettings(embedding=EmbeddingSettings(provider="none"))
    out = {}
    for repo in ("requests", "express"):
        index = WorkspaceIndex(FIXTURES / repo, settings, cache_dir=cache)
        index.index()
        out[repo] = index
    return out


def _hits(index: WorkspaceIndex, query: str) -> list[Hit]:
    return [Hit(h.path, h.start_line, h.end_line) for h in index.search(query, limit=10)]


def test_ranking_keeps_its_ndcg_on_the_smoke_queries(indexes: dict[str, WorkspaceIndex]) -> None:
    queries = _queries()
    assert len(queries) >= 40, "the smoke set lost its queries: were the fixtures or queries.json changed?"
    results = {q["id"]: score(q, _hits(indexes[q["repo"]], q["query"]))["ndcg"] for q in queries}
    mean = sum(results.values()) / len(results)
    worst = sorted(results.items(), key=lambda kv: kv[1])[:5]
    assert mean >= NDCG_FLOOR, (
        f"mean NDCG@10 {mean:.3f} < {NDCG_FLOOR} on {len(results)} queries; worst: {worst}"
    )


@pytest.mark.parametrize(
    ("repo", "query", "path", "line"),
    [
        ("requests", "Session.send", "src/requests/sessions.py", 673),
        ("requests", "class RequestsCookieJar", "src/requests/cookies.py", 176),
        ("requests", "RequestsCookieJar", "src/requests/cookies.py", 176),
        ("express", "function Layer", "lib/router/layer.js", 33),
        ("express", "sendStatus", "lib/response.js", 369),
    ],
)
def test_a_symbol_query_puts_the_definition_first(
    indexes: dict[str, WorkspaceIndex], repo: str, query: str, path: str, line: int
) -> None:
    top = indexes[repo].search(query, limit=10)[0]
    assert (top.path, top.start_line <= line <= top.end_line) == (path, True), top


def test_source_outranks_the_tests_that_mention_the_same_words(indexes: dict[str, WorkspaceIndex]) -> None:
    hits = indexes["requests"].search("digest authentication challenge response computation", limit=10)
    first_test = next((n for n, h in enumerate(hits) if h.path.startswith("tests/")), len(hits))
    first_source = next(n for n, h in enumerate(hits) if h.path.startswith("src/requests/auth.py"))
    assert first_source < first_test, [(h.path, h.symbol) for h in hits]
