"""Score ranking weights on one split without rebuilding the indexes: each repository is indexed once (kept
under ``--work`` between runs), then every setting swaps ``WorkspaceIndex.weights`` and re-runs the queries.

    python -m tests.benchmarks.retrieval.sweep --model ~/.cache/agentls/models/distilled-minilm \\
        --set vector=0.5 --set vector=1.0,lexical=0.8

Each ``--set`` is one setting (``field=value`` pairs of :class:`indexing.ranking.RankingWeights`, comma-
separated); the defaults are always scored first as the baseline. ``--ensemble DIR:W,DIR:W`` indexes with
several static models joined into one vector leg (:mod:`tests.benchmarks.retrieval.ensemble`). Tune on the
tuning split (the default) and score the held-out split once, at the end, with
:mod:`tests.benchmarks.retrieval.evaluate`.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from indexing.ranking import RankingWeights
from tests.benchmarks.retrieval import ensemble
from tests.benchmarks.retrieval.evaluate import (
    ModelNotLoaded,
    agentls_search,
    load_queries,
    open_agentls,
    score,
)
from tests.benchmarks.retrieval.repos import BY_NAME, fetch


def parse_setting(text: str) -> RankingWeights:
    """``vector=0.5,lexical=0.8`` -> the default weights with those fields replaced."""
    fields = {f.name: f.type for f in dataclasses.fields(RankingWeights)}
    changes: dict[str, Any] = {}
    for pair in filter(None, text.split(",")):
        name, _, value = pair.partition("=")
        if name not in fields:
            raise SystemExit(f"unknown weight {name!r} in --set {text!r}; known: {', '.join(sorted(fields))}")
        changes[name] = int(value) if fields[name] in (int, "int") else float(value)
    return dataclasses.replace(RankingWeights(), **changes)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="tuning", choices=["tuning", "held_out", "all"])
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "agentls-bench")
    parser.add_argument("--work", type=Path, help="where the indexes are kept (default: CACHE/sweep)")
    parser.add_argument("--model", type=Path, help="a static model folder: hybrid indexes (default lexical)")
    parser.add_argument("--set", action="append", default=[], dest="settings", help="field=value[,...]")
    parser.add_argument("--repos", help="comma-separated subset of the repositories")
    parser.add_argument("--vector-only", action="store_true", help="score the vector leg alone too")
    parser.add_argument(
        "--lexical", action="store_true", help="score each setting's lexical search on the same indexes too"
    )
    parser.add_argument("--kinds", action="store_true", help="NDCG per query kind (natural, mixed, symbol)")
    parser.add_argument(
        "--ensemble",
        help="DIR:W,DIR:W: the models' vectors joined as one vector leg (see tests.benchmarks.retrieval."
        "ensemble); needs --model (any of them) and a --work of its own",
    )
    args = parser.parse_args(argv)
    if args.ensemble and not (args.model and args.work):
        raise SystemExit("--ensemble needs --model and a --work folder of its own")
    with ensemble.installed(args.ensemble) if args.ensemble else contextlib.nullcontext():
        return _sweep(args)


def _sweep(args: argparse.Namespace) -> int:
    work = args.work or args.cache / "sweep" / ("hybrid" if args.model else "lexical")
    settings = [("default", RankingWeights())] + [(s, parse_setting(s)) for s in args.settings]
    queries = load_queries(args.split)
    if args.repos:
        queries = [q for q in queries if q["repo"] in args.repos.split(",")]
    labels = [label for label, _ in settings] + (["vector only"] if args.vector_only else [])
    labels += [f"{label} (lexical)" for label, _ in settings] if args.lexical else []
    groups = sorted({q["split"] for q in queries}) + (
        sorted({q["kind"] for q in queries}) if args.kinds else []
    )
    ndcg: dict[tuple[str, str], list[float]] = {(label, g): [] for label in labels for g in groups}
    for name in sorted({q["repo"] for q in queries}):
        corpus = fetch(BY_NAME[name], args.cache)
        try:
            index = open_agentls(corpus.root, work / name, model_dir=args.model)
        except ModelNotLoaded as exc:
            raise SystemExit(str(exc)) from None
        repo_queries = [q for q in queries if q["repo"] == name]
        for label, weights in settings:
            index.weights = weights
            runs = [(label, agentls_search(index))]
            runs += [(f"{label} (lexical)", agentls_search(index, lexical=True))] if args.lexical else []
            for name_, search in runs:
                for q in repo_queries:
                    value = score(q, search(q["query"]))["ndcg"]
                    ndcg[name_, q["split"]].append(value)
                    if args.kinds:
                        ndcg[name_, q["kind"]].append(value)
        if args.vector_only:
            index.weights = RankingWeights()
            search = agentls_search(index, vector_only=True)
            for q in repo_queries:
                ndcg["vector only", q["split"]].append(score(q, search(q["query"]))["ndcg"])
    for (label, group), values in ndcg.items():
        if values:
            print(f"{label}: NDCG@10 {statistics.fmean(values):.4f} over {len(values)} queries ({group})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
