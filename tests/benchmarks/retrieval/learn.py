"""Learn the re-scoring of the fused top candidates (``indexing/ranking_model.py``) on the tuning split.

Three steps, each a sub-command:

    python -m tests.benchmarks.retrieval.learn dump --model ~/.cache/agentls-test/models/distilled-minilm
    python -m tests.benchmarks.retrieval.learn fit [--write]
    python -m tests.benchmarks.retrieval.learn score --split held_out

``dump`` runs every query of the split once through ``WorkspaceIndex.search`` on the sweep's indexes
(:mod:`tests.benchmarks.retrieval.sweep`, built once and kept) and keeps what the ranking received: the
lexical, vector and symbol candidates. ``fit`` computes :data:`indexing.ranking.FEATURES` for every
candidate, labels each with the grade of the target it matches (the harness's own rule), and fits a
linear model on them (numpy only): pairwise logistic regression over the top ``--top`` candidates, then
coordinate ascent on NDCG@10 itself from there. It reports leave-one-repository-out cross-validation
(train on 12 repositories, score the 13th) against the hand-weighted ranking, per repository and
language, for the hybrid candidates and for the lexical ones (the vector list dropped), so a gain that
only fits the training repositories shows. ``--write`` writes the model trained on every tuning query.
``score`` scores the shipped model on a split (the held-out split once, at the end).

The scores of ``fit`` are computed offline from the captured candidates with the same code as
``indexing.ranking.rank``; ``evaluate`` measures the real searches.
"""

from __future__ import annotations

import argparse
import math
import pickle
import statistics
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import indexing.service as service
from indexing.ranking import FEATURES, RankingWeights, features, score_candidates
from tests.benchmarks.retrieval.evaluate import K, _matches, load_queries, open_agentls
from tests.benchmarks.retrieval.repos import BY_NAME, fetch

CACHE = Path.home() / ".cache" / "agentls-bench"
MODEL_FILE = Path(__file__).resolve().parents[3] / "indexing" / "ranking_model.py"
# the hand-weighted ranking without the learned step: the baseline and the features' input
HAND = RankingWeights(learned=0.0)


# ----------------------------------------------------------------------------------------------- dump


def dump(split: str, model: Path | None, out: Path) -> None:
    """Run each query of ``split`` and keep the candidate lists `rank` was given."""
    queries = load_queries(split)
    captured: dict[str, tuple[Any, ...]] = {}
    real_rank = service.rank
    current: list[tuple[Any, ...]] = []

    def spy(query: str, lexical: Any, vector: Any, limit: int, weights: Any, symbol: Any = ()) -> Any:
        current.append((query, list(lexical), list(vector), list(symbol)))
        return real_rank(query, lexical, vector, limit, weights, symbol)

    service.rank = spy  # type: ignore[assignment]
    try:
        work = CACHE / "sweep" / ("hybrid" if model else "lexical")
        for name in sorted({q["repo"] for q in queries}):
            index = open_agentls(fetch(BY_NAME[name], CACHE).root, work / name, model_dir=model)
            try:
                for q in (q for q in queries if q["repo"] == name):
                    current.clear()
                    index.search(q["query"], limit=K)
                    captured[q["id"]] = current[-1]
            finally:
                index.close()
            print(f"{name}: {sum(1 for q in queries if q['repo'] == name)} queries", file=sys.stderr)
    finally:
        service.rank = real_rank  # type: ignore[assignment]
    out.write_bytes(pickle.dumps(captured))


# ----------------------------------------------------------------------------------------------- data


@dataclass(slots=True)
class QueryData:
    """One query's candidates in the hand-weighted order, as arrays."""

    query: dict[str, Any]
    x: np.ndarray  # candidates x FEATURES
    label: np.ndarray  # best grade of a target each candidate matches (0: none)
    matches: list[list[int]]  # per candidate, the targets it matches
    duplicate: np.ndarray  # candidates x candidates: i and j are duplicates (`deduplicate`'s rule)
    idcg: float


def build(query: dict[str, Any], args: tuple[Any, ...], weights: RankingWeights = HAND) -> QueryData:
    text, lexical, vector, symbol = args
    ordered, analysis = score_candidates(text, lexical, vector, weights, symbol)
    x = np.array(features(ordered, analysis), dtype=float).reshape(len(ordered), len(FEATURES))
    targets = query["targets"]
    matches: list[list[int]] = []
    label = np.zeros(len(ordered))
    for i, cand in enumerate(ordered):
        row = cand.row
        hit = _hit(row)
        found = [t for t, target in enumerate(targets) if _matches(hit, target)]
        matches.append(found)
        label[i] = max((targets[t]["grade"] for t in found), default=0)
    n = len(ordered)
    paths = np.array([hash(c.row.get("path")) for c in ordered])
    start = np.array([int(c.row["start_line"]) for c in ordered])
    end = np.array([int(c.row["end_line"]) for c in ordered])
    size = end - start + 1
    lo = np.maximum(start[:, None], start[None, :])
    hi = np.minimum(end[:, None], end[None, :])
    small = np.minimum(size[:, None], size[None, :])
    big = np.maximum(size[:, None], size[None, :])
    duplicate = (
        (paths[:, None] == paths[None, :])
        & (hi >= lo)
        & (big < weights.nested * small)
        & ((hi - lo + 1) >= weights.overlap * small)
    )
    np.fill_diagonal(duplicate, False)
    ideal = sorted((t["grade"] for t in targets), reverse=True)[:K]
    idcg = sum(g / math.log2(r + 1) for r, g in enumerate(ideal, 1))
    return QueryData(query, x, label, matches, duplicate if n else np.zeros((0, 0), bool), idcg)


def _hit(row: dict[str, Any]) -> Any:
    from tests.benchmarks.retrieval.evaluate import Hit

    return Hit(row["path"], int(row["start_line"]), int(row["end_line"]))


def metrics(data: QueryData, order: Sequence[int]) -> dict[str, float]:
    """NDCG, MRR and recall at K of the candidates in ``order``, de-duplicated as `rank` does (the
    harness's crediting rule: each target once, at its first matching hit)."""
    kept: list[int] = []
    for i in order:
        if kept and data.duplicate[i, kept].any():
            continue
        kept.append(i)
        if len(kept) >= K:
            break
    targets = data.query["targets"]
    credited: set[int] = set()
    dcg, first = 0.0, 0
    for r, i in enumerate(kept, 1):
        open_ = [t for t in data.matches[i] if t not in credited]
        if not open_:
            continue
        best = max(open_, key=lambda t: targets[t]["grade"])
        credited.add(best)
        dcg += targets[best]["grade"] / math.log2(r + 1)
        if targets[best]["grade"] == 3 and not first:
            first = r
    top = [t for t, target in enumerate(targets) if target["grade"] == 3]
    return {
        "ndcg": dcg / data.idcg if data.idcg else 0.0,
        "mrr": 1.0 / first if first else 0.0,
        "recall": sum(1 for t in top if t in credited) / len(top) if top else 0.0,
    }


def reorder(data: QueryData, w: np.ndarray | None, top: int) -> list[int]:
    """The candidates' order: the first ``top`` re-scored by ``w`` (None: the hand-weighted order)."""
    n = len(data.x)
    if w is None or not n:
        return list(range(n))
    m = min(top, n)
    s = data.x[:m] @ w
    head = sorted(range(m), key=lambda i: (-s[i], i))
    return head + list(range(m, n))


def mean_ndcg(dataset: Sequence[QueryData], w: np.ndarray | None, top: int) -> float:
    return statistics.fmean(metrics(d, reorder(d, w, top))["ndcg"] for d in dataset) if dataset else 0.0


# ----------------------------------------------------------------------------------------------- fitting


def base_weights() -> np.ndarray:
    """The model that keeps the hand-weighted order: the log of its score, nothing else."""
    w = np.zeros(len(FEATURES))
    w[FEATURES.index("base")] = 1.0
    return w


def pairwise(dataset: Sequence[QueryData], top: int, l2: float, steps: int = 300) -> np.ndarray:
    """Pairwise logistic regression (RankNet with a linear scorer) over the top candidates' pairs of
    different grades, full-batch gradient descent; started from and regularised towards `base_weights`."""
    diffs, gains = [], []
    for d in dataset:
        m = min(top, len(d.x))
        lab = d.label[:m]
        i, j = np.nonzero(lab[:, None] > lab[None, :])
        if not len(i):
            continue
        diffs.append(d.x[i] - d.x[j])
        # pairs count per query alike, so a query with many candidates does not dominate
        gains.append(np.full(len(i), (lab[i] - lab[j]) / len(i)))
    x = np.concatenate(diffs)
    g = np.concatenate(gains)
    scale = x.std(axis=0) + 1e-9
    xs = x / scale
    w0 = base_weights() * scale
    w = w0.copy()
    rate = 0.5
    for _ in range(steps):
        z = xs @ w
        p = 1.0 / (1.0 + np.exp(np.clip(z, -30, 30)))  # d/dz of log(1 + e^-z) is -p
        grad = -(xs * (g * p)[:, None]).sum(axis=0) / len(dataset) + l2 * (w - w0)
        w -= rate * grad
    return w / scale


def ascent(
    dataset: Sequence[QueryData], w: np.ndarray, top: int, rounds: int = 3, min_gain: float = 5e-4
) -> np.ndarray:
    """Coordinate ascent on mean NDCG@10: one weight at a time, a few multiplicative and additive steps,
    a change kept only when it gains more than ``min_gain``."""
    w = w.copy()
    best = mean_ndcg(dataset, w, top)
    scale = np.array([max(abs(v), 0.05) for v in w])
    for _ in range(rounds):
        improved = False
        for f in range(len(FEATURES)):
            for step in (-2.0, -1.0, -0.5, -0.25, 0.25, 0.5, 1.0, 2.0):
                trial = w.copy()
                trial[f] += step * scale[f]
                value = mean_ndcg(dataset, trial, top)
                if value > best + min_gain:
                    best, w, improved = value, trial, True
        if not improved:
            break
    return w


def fit(dataset: Sequence[QueryData], top: int, l2: float, method: str) -> np.ndarray:
    w = base_weights()
    if method in ("pairwise", "both"):
        w = pairwise(dataset, top, l2)
    if method in ("ascent", "both"):
        w = ascent(dataset, w, top)
    return w


# ----------------------------------------------------------------------------------------------- report


def load(path: Path, queries: Sequence[dict[str, Any]], lexical: bool) -> list[QueryData]:
    captured = pickle.loads(path.read_bytes())
    out = []
    for q in queries:
        text, lex, vec, sym = captured[q["id"]]
        out.append(build(q, (text, lex, [] if lexical else vec, sym)))
    return out


def table(dataset: Sequence[QueryData], models: dict[str, np.ndarray | None], top: int) -> str:
    groups: dict[str, list[QueryData]] = defaultdict(list)
    for d in dataset:
        for g in (
            "all",
            f"language:{d.query['language']}",
            f"kind:{d.query['kind']}",
            f"repo:{d.query['repo']}",
        ):
            groups[g].append(d)
    lines = [f"| group (n) | {' | '.join(models)} |", f"|---|{'---|' * len(models)}"]
    order = {"all": 0, "language": 1, "kind": 2, "repo": 3}
    for g in sorted(groups, key=lambda g: (order[g.split(":")[0]], g)):
        cells = [f"{mean_ndcg(groups[g], w, top):.3f}" for w in models.values()]
        lines.append(f"| {g} ({len(groups[g])}) | {' | '.join(cells)} |")
    return "\n".join(lines)


def cv_models(dataset: Sequence[QueryData], top: int, l2: float, method: str) -> tuple[float, float, str]:
    """Leave-one-repository-out NDCG@10 of the hand ranking and the learned one, and a per-repo table."""
    hand, learned, lines = [], [], []
    for repo in sorted({d.query["repo"] for d in dataset}):
        train = [d for d in dataset if d.query["repo"] != repo]
        test = [d for d in dataset if d.query["repo"] == repo]
        w = fit(train, top, l2, method)
        h = [metrics(d, reorder(d, None, top))["ndcg"] for d in test]
        r = [metrics(d, reorder(d, w, top))["ndcg"] for d in test]
        hand += h
        learned += r
        lines.append(f"| {repo} ({len(test)}) | {statistics.fmean(h):.3f} | {statistics.fmean(r):.3f} |")
    return statistics.fmean(hand), statistics.fmean(learned), "\n".join(lines)


def write_model(w: np.ndarray, top: int, note: str) -> None:
    coefficients = "\n".join(f"    {name!r}: {v:.6g}," for name, v in zip(FEATURES, w, strict=True) if v)
    MODEL_FILE.write_text(
        f'''"""The learned re-scoring of the fused top candidates (`indexing.ranking.rescore`).

A linear model over `indexing.ranking.FEATURES`: a candidate's new score is ``exp(sum(c * feature))``
over the features named here (the others weigh 0). Fitted on the tuning split of the retrieval benchmark
only, by ``python -m tests.benchmarks.retrieval.learn fit --write`` ({note}); see BENCHMARKS.md
"Learned ranking (issue 13, session 7)". Bump `VERSION` whenever the features or coefficients change.
"""

VERSION = {_next_version()}
TOP = {top}  # candidates re-scored, in the hand-weighted order
COEFFICIENTS: dict[str, float] = {{
{coefficients}
}}
'''
    )


def _next_version() -> int:
    try:
        from indexing import ranking_model

        return int(ranking_model.VERSION) + 1
    except ImportError:
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("dump")
    d.add_argument("--split", default="tuning", choices=["tuning", "held_out"])
    d.add_argument("--model", type=Path, help="a static model folder (hybrid candidates)")
    for name in ("fit", "score"):
        p = sub.add_parser(name)
        p.add_argument("--split", default="tuning", choices=["tuning", "held_out"])
        p.add_argument("--top", type=int, default=30)
        p.add_argument("--l2", type=float, default=0.01)
        p.add_argument("--method", default="both", choices=["pairwise", "ascent", "both"])
        p.add_argument("--write", action="store_true")
    args = parser.parse_args(argv)
    captured = CACHE / f"learn-{args.split}.pkl"
    if args.command == "dump":
        dump(args.split, args.model, captured)
        return 0
    queries = load_queries(args.split)
    for kind, lexical in (("hybrid", False), ("lexical", True)):
        dataset = load(captured, queries, lexical)
        if args.command == "fit":
            hand, learned, per_repo = cv_models(dataset, args.top, args.l2, args.method)
            print(f"{kind}: leave-one-repository-out NDCG@10 hand {hand:.4f} -> learned {learned:.4f}")
            print(f"| repo (n) | hand | learned |\n|---|---|---|\n{per_repo}")
            if kind == "hybrid":
                w = fit(dataset, args.top, args.l2, args.method)
                print(
                    f"hybrid, trained and scored on all {len(dataset)}: {mean_ndcg(dataset, w, args.top):.4f}"
                )
                print({n: round(v, 4) for n, v in zip(FEATURES, w, strict=True) if v})
                if args.write:
                    write_model(w, args.top, f"{args.method}, top {args.top}, l2 {args.l2}")
        else:
            from indexing import ranking_model

            w = np.array([ranking_model.COEFFICIENTS.get(n, 0.0) for n in FEATURES])
            print(table(dataset, {"hand": None, "learned": w}, ranking_model.TOP))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
