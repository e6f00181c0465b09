"""Score code search on the annotated queries: agentls and semble on the same repositories, one run.

Metrics, per query, over the top ``K`` hits (targets are definitions given by path and line range, see
:mod:`tests.benchmarks.retrieval.annotate`):

- a hit *matches* a target when it is in the target's file and either holds the line that names the
  target without being much larger than the target (at most three times its lines, or 40 more), or, for a
  function-like target, lies mostly (half its lines or more) inside it: a window of a long function, or
  a fixed-size chunk that runs into the next definition. Each target is credited once, at
  its first matching hit; a hit credits at most one target.
- NDCG@K with the grades as gains (defining chunk 3, closely related 1), MRR@K of the first hit matching
  a grade-3 target, Recall@K of the grade-3 targets.

Systems:

- ``agentls``: ``WorkspaceIndex.search`` (what ``agentls search`` runs), lexical when no model is
  configured (``agentls-lexical``) or hybrid with the distilled static model (``agentls-hybrid``);
  ``agentls-vector`` is the vector leg alone (``WorkspaceIndex.search_vector``: the nearest chunks,
  ranked with the same field matches and priors), to show what the model contributes by itself.
- ``semble``: semble's own index (its chunker, BM25 and code re-ranking) built with
  ``create_index_from_path``; ``semble-lexical`` searches with ``alpha=0`` (BM25 plus its ranking; the
  embedding model is a constant stand-in that the zero weight removes), ``semble-hybrid`` with the same
  distilled static model as agentls and semble's own automatic alpha.

Every index it builds redacts withheld values with one fixed placeholder key (`fixed_secret_key`), so
that two runs at one commit give the same figures.

Run ``python -m tests.benchmarks.retrieval.evaluate --split tuning`` while working on the ranking (it
never scores the held-out split unless asked), or the benchmark test for the full table;
``--per-query FILE`` keeps each query's metrics per system, to compare runs query by query.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from indexing.config import EmbeddingSettings, IndexSettings
from indexing.ranking import RankingWeights
from indexing.secrets import KEY_FILE, private_dir
from indexing.service import WorkspaceIndex
from tests.benchmarks.retrieval.annotate import QUERIES_FILE
from tests.benchmarks.retrieval.repos import BY_NAME, fetch

K = 10
_FUNCTION_KINDS = frozenset({"function", "method", "window", "constructor", "arrow_function"})


@dataclass(frozen=True, slots=True)
class Hit:
    path: str
    start: int
    end: int


Search = Callable[[str], list[Hit]]


def load_queries(split: str | None = None) -> list[dict[str, Any]]:
    queries: list[dict[str, Any]] = json.loads(QUERIES_FILE.read_text())
    return [q for q in queries if split in (None, "all", q["split"])]


def _matches(hit: Hit, target: dict[str, Any]) -> bool:
    if hit.path != target["path"]:
        return False
    size = target["end"] - target["start"] + 1
    if hit.start <= target["line"] <= hit.end:
        return hit.end - hit.start + 1 <= max(3 * size, size + 40)
    # mostly inside a function-like target: a window of a long function, or a fixed-size chunk that
    # crosses into the next definition
    overlap = min(hit.end, target["end"]) - max(hit.start, target["start"]) + 1
    return overlap * 2 >= hit.end - hit.start + 1 and target["kind"] in _FUNCTION_KINDS


def score(query: dict[str, Any], hits: Sequence[Hit]) -> dict[str, float]:
    """NDCG, MRR and recall at K of one query's hits."""
    targets = query["targets"]
    credited: set[int] = set()
    dcg = 0.0
    first = 0
    for rank, hit in enumerate(hits[:K], 1):
        open_ = [i for i, t in enumerate(targets) if i not in credited and _matches(hit, t)]
        if not open_:
            continue
        best = max(open_, key=lambda i: targets[i]["grade"])
        credited.add(best)
        dcg += targets[best]["grade"] / math.log2(rank + 1)
        if targets[best]["grade"] == 3 and not first:
            first = rank
    ideal = sorted((t["grade"] for t in targets), reverse=True)[:K]
    idcg = sum(g / math.log2(r + 1) for r, g in enumerate(ideal, 1))
    top = [i for i, t in enumerate(targets) if t["grade"] == 3]
    return {
        "ndcg": dcg / idcg if idcg else 0.0,
        "mrr": 1.0 / first if first else 0.0,
        "recall": sum(1 for i in top if i in credited) / len(top) if top else 0.0,
    }


@dataclass(slots=True)
class Table:
    """Mean metrics of one system per group (all, repo:x, language:x, kind:x) and split."""

    rows: dict[tuple[str, str, str], list[dict[str, float]]] = field(
        default_factory=lambda: defaultdict(list)
    )

    def add(self, system: str, query: dict[str, Any], metrics: dict[str, float]) -> None:
        groups = ("all", f"repo:{query['repo']}", f"language:{query['language']}", f"kind:{query['kind']}")
        for group in groups:
            for split in (query["split"], "all"):
                self.rows[(system, split, group)].append(metrics)

    def mean(self, system: str, split: str, group: str, metric: str = "ndcg") -> float | None:
        values = self.rows.get((system, split, group))
        return sum(v[metric] for v in values) / len(values) if values else None

    def count(self, system: str, split: str, group: str) -> int:
        return len(self.rows.get((system, split, group), []))

    def systems(self) -> list[str]:
        return sorted({s for s, _, _ in self.rows})

    def groups(self) -> list[str]:
        order = {"all": 0, "language": 1, "kind": 2, "repo": 3}
        return sorted({g for _, _, g in self.rows}, key=lambda g: (order[g.split(":")[0]], g))

    def markdown(self, split: str, metric: str = "ndcg") -> str:
        systems = self.systems()
        head = f"| group (n) | {' | '.join(systems)} |\n|---|{'---|' * len(systems)}\n"
        lines = []
        for group in self.groups():
            n = self.count(systems[0], split, group)
            if not n:
                continue
            cells = []
            for s in systems:
                v = self.mean(s, split, group, metric)
                cells.append("" if v is None else f"{v:.3f}")
            lines.append(f"| {group} ({n}) | {' | '.join(cells)} |")
        return head + "\n".join(lines)

    def summary(self, split: str) -> dict[str, dict[str, float]]:
        return {
            s: {m: round(self.mean(s, split, "all", m) or 0.0, 4) for m in ("ndcg", "mrr", "recall")}
            for s in self.systems()
        }


# ----------------------------------------------------------------------------------------------- systems


def agentls_search(
    index: WorkspaceIndex, *, vector_only: bool = False, lexical: bool = False, files: bool = False
) -> Search:
    """``WorkspaceIndex.search`` (``files``: its files view), or its lexical or vector leg alone."""
    run = index.search_vector if vector_only else index.search_lexical if lexical else index.search

    def search(query: str) -> list[Hit]:
        hits = index.search(query, limit=K, files=True) if files else run(query, limit=K)
        return [Hit(h.path, h.start_line, h.end_line) for h in hits]

    return search


def open_agentls(
    root: Path, cache_dir: Path, *, model_dir: Path | None = None, weights: RankingWeights | None = None
) -> WorkspaceIndex:
    """An index of ``root``: lexical, or with the static model at ``model_dir``. Raises `ModelNotLoaded`
    when that model cannot be loaded: the index would silently be lexical, and "hybrid" figures lexical
    ones (a fresh machine has no ``~/.cache/agentls-test`` until the test suite has run)."""
    if model_dir is None:
        settings = IndexSettings(embedding=EmbeddingSettings(provider="none"))
    else:
        settings = IndexSettings(embedding=EmbeddingSettings(provider="model2vec", model=str(model_dir)))
    env = {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache_dir / "no-hub")}
    fixed_secret_key(cache_dir)
    index = WorkspaceIndex(root, settings, cache_dir=cache_dir, env=env, weights=weights)
    if model_dir is not None and index.embedder is None:
        raise ModelNotLoaded(
            f"--model {model_dir}: no model loads from there, so the hybrid figures would be lexical ones"
            " (`agentls model distill` writes ~/.cache/agentls/models/distilled-minilm, `agentls model"
            f" import` ~/.cache/agentls/models/code-words). {index.embedder_load.notice or ''}".strip()
        )
    index.index()
    return index


BENCHMARK_SECRET_KEY = hashlib.sha256(b"agentls retrieval benchmark placeholder key").digest()
"""The placeholder key of every index the benchmark builds (`fixed_secret_key`)."""


def fixed_secret_key(cache_dir: Path) -> None:
    """Give an index's cache dir the benchmark's fixed placeholder key, unless it has a key already (an
    index kept between runs keeps the key its text was redacted with).

    A withheld value is written into the chunk text as ``<secret:xxxxxxxx>``, keyed by the cache dir's
    ``secret-key`` (`indexing.secrets.load_key`), which is random per new cache dir. The token is embedded
    with the rest of its chunk, so each fresh index gave such a chunk another vector: rack's
    ``Rack::Session::Cookie`` class (two placeholders) moved by about 0.005 in cosine distance from run
    to run, enough to swap it with the target of rack-14 (held out) and move held-out Ruby hybrid between
    0.627 and 0.650 at one commit (BENCHMARKS.md, "Retrieval: natural-language queries (issue 13,
    session 27)"). With one key the figures repeat."""
    path = cache_dir / KEY_FILE
    if path.exists():
        return
    private_dir(cache_dir)
    with contextlib.suppress(FileExistsError):  # another process wrote it first: the same key
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(BENCHMARK_SECRET_KEY)


class ModelNotLoaded(RuntimeError):
    """The static model given for a hybrid system could not be loaded."""


class _ConstantModel:
    """Stands in for semble's embedding model when only its lexical side is measured (alpha=0)."""

    dim = 8

    def encode(self, texts: Sequence[str], **_: Any) -> np.ndarray:
        return np.ones((len(texts), self.dim), dtype=np.float32)


def semble_search(root: Path, *, model_dir: Path | None = None) -> Search:
    import semble.index.index as semble_index
    from semble.index.create import create_index_from_path

    semble_index.save_search_stats = lambda *a, **k: None  # it writes usage stats to the home folder
    if model_dir is None:
        model: Any = _ConstantModel()
    else:
        from model2vec import StaticModel

        model = StaticModel.from_pretrained(str(model_dir))
    resolved = root.resolve()
    bm25, dense, chunks, manifest = create_index_from_path(resolved, model=model, display_root=resolved)
    index = semble_index.SembleIndex(
        model, bm25, dense, chunks, str(model_dir), root=resolved, manifest=manifest
    )
    alpha = 0.0 if model_dir is None else None

    def search(query: str) -> list[Hit]:
        results = index.search(query, top_k=K, alpha=alpha)
        return [Hit(r.chunk.file_path, r.chunk.start_line, r.chunk.end_line) for r in results]

    return search


# ----------------------------------------------------------------------------------------------- running


@dataclass(slots=True)
class Run:
    table: Table
    latency_ms: dict[str, list[float]]
    per_query: dict[str, dict[str, dict[str, float]]]  # system -> query id -> metrics


def evaluate(
    queries: Sequence[dict[str, Any]],
    systems: dict[str, Callable[[Path, Path], Search]],
    cache: Path,
    workdir: Path,
    repos: Iterable[str] | None = None,
) -> Run:
    """Build each system over each repository once and score its queries."""
    table = Table()
    latency: dict[str, list[float]] = defaultdict(list)
    per_query: dict[str, dict[str, dict[str, float]]] = defaultdict(dict)
    wanted = set(repos) if repos else {q["repo"] for q in queries}
    for name in sorted(wanted):
        corpus = fetch(BY_NAME[name], cache)
        repo_queries = [q for q in queries if q["repo"] == name]
        for system, build in systems.items():
            search = build(corpus.root, workdir / system / name)
            for q in repo_queries:
                t0 = time.perf_counter()
                hits = search(q["query"])
                latency[system].append((time.perf_counter() - t0) * 1000)
                metrics = score(q, hits)
                table.add(system, q, metrics)
                per_query[system][q["id"]] = metrics
    return Run(table, dict(latency), dict(per_query))


def per_query_table(run: Run, queries: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Query id -> its repo, language, kind, split and text, and each system's metrics on it: what
    ``--per-query`` writes, to compare two runs or two systems query by query."""
    table: dict[str, dict[str, Any]] = {}
    for q in queries:
        scored = {s: results[q["id"]] for s, results in run.per_query.items() if q["id"] in results}
        if scored:
            keys = ("repo", "language", "kind", "split", "query")
            table[q["id"]] = {**{k: q[k] for k in keys}, "systems": scored}
    return table


def default_systems(model_dir: Path | None, weights: RankingWeights | None = None) -> dict[str, Any]:
    systems: dict[str, Any] = {
        "agentls-lexical": lambda root, work: agentls_search(open_agentls(root, work, weights=weights)),
        "semble-lexical": lambda root, work: semble_search(root),
    }
    if model_dir is not None:
        systems["agentls-hybrid"] = lambda root, work: agentls_search(
            open_agentls(root, work, model_dir=model_dir, weights=weights)
        )
        systems["semble-hybrid"] = lambda root, work: semble_search(root, model_dir=model_dir)
        # The vector leg alone (nearest chunks, then the same ranking): what the model adds by itself.
        systems["agentls-vector"] = lambda root, work: agentls_search(
            open_agentls(root, work, model_dir=model_dir, weights=weights), vector_only=True
        )
    return systems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="tuning", choices=["tuning", "held_out", "all"])
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "agentls-bench")
    parser.add_argument("--model", type=Path, help="a static model folder: also run the hybrid systems")
    parser.add_argument("--systems", help="comma-separated subset of the systems")
    parser.add_argument("--repos", help="comma-separated subset of the repositories")
    parser.add_argument("--misses", action="store_true", help="print agentls's queries that score below 1")
    parser.add_argument(
        "--per-query",
        type=Path,
        help="write each query's metrics per system (and its repo, language, kind, text) to this JSON file",
    )
    args = parser.parse_args(argv)
    queries = load_queries(args.split)
    systems = default_systems(args.model)
    if args.systems:
        systems = {k: v for k, v in systems.items() if k in args.systems.split(",")}
    repos = args.repos.split(",") if args.repos else None
    with tempfile.TemporaryDirectory() as tmp:
        try:
            run = evaluate(queries, systems, args.cache, Path(tmp), repos)
        except ModelNotLoaded as exc:
            raise SystemExit(str(exc)) from None
    for split in ("held_out", "tuning") if args.split == "all" else (args.split,):
        print(f"NDCG@10 per group, {split} split:")
        print(run.table.markdown(split))
        print(json.dumps(run.table.summary(split)))
    print(
        "search latency p50 (ms): "
        + ", ".join(f"{s} {sorted(v)[len(v) // 2]:.1f}" for s, v in run.latency_ms.items())
    )
    if args.per_query:
        args.per_query.write_text(json.dumps(per_query_table(run, queries), indent=1))
    if args.misses:
        by_id = {q["id"]: q for q in queries}
        for system, results in run.per_query.items():
            if not system.startswith("agentls"):
                continue
            for qid, m in sorted(results.items(), key=lambda kv: kv[1]["ndcg"]):
                if m["ndcg"] < 1:
                    print(f"{system} {m['ndcg']:.2f} {qid} {by_id[qid]['query']!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
