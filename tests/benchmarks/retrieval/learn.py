"""Learn the re-scoring of the fused top candidates (``indexing/ranking_model.py``) on the tuning split.

Three steps, each a sub-command:

    python -m tests.benchmarks.retrieval.learn dump --model ~/.cache/agentls/models/distilled-minilm
    python -m tests.benchmarks.retrieval.learn fit --method trees [--tables] [--write]
    python -m tests.benchmarks.retrieval.learn score --method trees --split held_out   # once, at the end

``dump`` runs every query of the split once through ``WorkspaceIndex.search`` on the sweep's indexes
(:mod:`tests.benchmarks.retrieval.sweep`, built once and kept) and keeps what the ranking received: the
lexical, vector and symbol candidates (``CACHE/learn-SPLIT.pkl``). ``fit`` computes
:data:`indexing.ranking.FEATURES` for every candidate, labels each with the grade of the target it
matches (the harness's own rule), and fits a model on the top ``--top`` candidates, numpy only: boosted
regression trees on LambdaRank gradients (``trees``: LambdaMART in a few dozen lines), or a linear model
(``pairwise`` logistic regression; ``ascent``, coordinate ascent on NDCG@10 itself; ``both``). It
reports leave-one-repository-out cross-validation (fit on 12 repositories, score the 13th) against the
hand-weighted ranking, for the hybrid candidates and for the lexical ones (the vector list dropped), each
with its own model, so a gain that only fits the training repositories shows. ``--write`` writes both
models, fitted on every tuning query, to ``indexing/ranking_model.py``. ``fit`` also scores the model
``indexing/ranking_model.py`` holds now (``shipped``; on the tuning split that is not cross-validated: it
was fitted on those queries). ``--pseudo N`` adds N pseudo-queries from outside the benchmark's
repositories to every fold's training (:mod:`tests.benchmarks.retrieval.pseudo`: Django docstrings'
first sentences, the docstrings removed from the index; ``--pseudo-no-doc`` zeroes their doc features);
they are never scored. ``score`` fits the same
way and scores another split's dump (the held-out split: once, at the end).

The scores are computed offline from the captured candidates with the same code as
``indexing.ranking.rank`` (they equal those of ``evaluate`` on the same indexes).
"""

from __future__ import annotations

import argparse
import math
import os
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
from indexing.ranking import FEATURES, RankingWeights, _model, features, score_candidates
from indexing.service import WorkspaceIndex
from tests.benchmarks.retrieval.evaluate import Hit, K, _matches, load_queries, open_agentls, score
from tests.benchmarks.retrieval.repos import BY_NAME, fetch

# AGENTLS_BENCH_CACHE: another place for the sweep indexes and dumps (a second model beside the first)
CACHE = Path(os.environ.get("AGENTLS_BENCH_CACHE") or Path.home() / ".cache" / "agentls-bench")
PSEUDO = CACHE / "learn-pseudo-django.pkl"  # written by `tests.benchmarks.retrieval.pseudo`
MODEL_FILE = Path(__file__).resolve().parents[3] / "indexing" / "ranking_model.py"
# the hand-weighted ranking without the learned step: the baseline and the features' input
HAND = RankingWeights(learned=0.0)


# ----------------------------------------------------------------------------------------------- dump


def dump(split: str, model: Path | None, out: Path) -> None:
    """Run each query of ``split`` and keep the candidate lists `rank` was given."""
    queries = load_queries(split)
    captured: dict[str, tuple[Any, ...]] = {}
    work = CACHE / "sweep" / ("hybrid" if model else "lexical")
    for name in sorted({q["repo"] for q in queries}):
        own = [q for q in queries if q["repo"] == name]
        index = open_agentls(fetch(BY_NAME[name], CACHE).root, work / name, model_dir=model)
        try:
            captured.update(capture(index, own))
        finally:
            index.close()
        print(f"{name}: {len(own)} queries", file=sys.stderr)
    out.write_bytes(pickle.dumps(captured))


def capture(index: WorkspaceIndex, queries: Sequence[dict[str, Any]]) -> dict[str, tuple[Any, ...]]:
    """Search ``index`` for each query and keep, by query id, the candidate lists `rank` was given."""
    captured: dict[str, tuple[Any, ...]] = {}
    real_rank = service.rank
    current: list[tuple[Any, ...]] = []

    def spy(query: str, lexical: Any, vector: Any, limit: int, weights: Any, symbol: Any = ()) -> Any:
        current.append((query, list(lexical), list(vector), list(symbol)))
        return real_rank(query, lexical, vector, limit, weights, symbol)

    service.rank = spy  # type: ignore[assignment]
    try:
        for q in queries:
            current.clear()
            index.search(q["query"], limit=K)
            captured[q["id"]] = current[-1]
    finally:
        service.rank = real_rank
    return captured


# ----------------------------------------------------------------------------------------------- data


@dataclass(slots=True)
class QueryData:
    """One query's candidates in the hand-weighted order, as arrays."""

    query: dict[str, Any]
    x: np.ndarray  # candidates x FEATURES
    label: np.ndarray  # best grade of a target each candidate matches (0: none)
    hits: list[Hit]  # the candidates as the harness sees them
    duplicate: np.ndarray  # candidates x candidates: i and j are duplicates (`deduplicate`'s rule)
    idcg: float


def build(query: dict[str, Any], args: tuple[Any, ...], weights: RankingWeights = HAND) -> QueryData:
    text, lexical, vector, symbol = args
    ordered, analysis = score_candidates(text, lexical, vector, weights, symbol)
    x = np.array(features(ordered, analysis), dtype=float).reshape(len(ordered), len(FEATURES))
    targets = query["targets"]
    hits = [Hit(c.row["path"], int(c.row["start_line"]), int(c.row["end_line"])) for c in ordered]
    label = np.array([max((t["grade"] for t in targets if _matches(h, t)), default=0) for h in hits], float)
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
    return QueryData(query, x, label, hits, duplicate if n else np.zeros((0, 0), bool), idcg)


def metrics(data: QueryData, order: Sequence[int]) -> dict[str, float]:
    """The harness's NDCG, MRR and recall at K of the candidates in ``order``, de-duplicated as `rank`
    does."""
    kept: list[int] = []
    for i in order:
        if kept and data.duplicate[i, kept].any():
            continue
        kept.append(i)
        if len(kept) >= K:
            break
    return score(data.query, [data.hits[i] for i in kept])


@dataclass(slots=True)
class Trees:
    """A boosted ensemble of small regression trees over `FEATURES`, added to the hand-weighted log score:
    a node is ``(feature, threshold, left, right)`` (left when the value is at or below the threshold),
    a leaf ``("leaf", value)``."""

    trees: list[Any]
    rate: float

    def __call__(self, x: np.ndarray) -> np.ndarray:
        s = x[:, FEATURES.index("base")].copy()
        for tree in self.trees:
            s += self.rate * _predict(tree, x)
        return s


class Shipped:
    """The model ``indexing/ranking_model.py`` holds now for ``kind`` (hybrid, lexical)."""

    def __init__(self, kind: str) -> None:
        self.model = _model(kind)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.array([self.model(row) for row in x.tolist()])


Model = np.ndarray | Trees | Shipped | None  # linear weights, trees, or None: the hand-weighted order


def reorder(data: QueryData, model: Model, top: int) -> list[int]:
    """The candidates' order: the first ``top`` re-scored by ``model``, the rest after them."""
    n = len(data.x)
    if model is None or not n:
        return list(range(n))
    m = min(top, n)
    s = data.x[:m] @ model if isinstance(model, np.ndarray) else model(data.x[:m])
    head = sorted(range(m), key=lambda i: (-s[i], i))
    return head + list(range(m, n))


def mean_ndcg(dataset: Sequence[QueryData], model: Model, top: int) -> float:
    return statistics.fmean(metrics(d, reorder(d, model, top))["ndcg"] for d in dataset) if dataset else 0.0


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


def _lambdas(d: QueryData, s: np.ndarray, top: int) -> tuple[np.ndarray, np.ndarray]:
    """LambdaRank gradients and weights of one query's top candidates under the scores ``s``: each pair
    of different grades pulls by the NDCG change of swapping them."""
    m = min(top, len(d.x))
    lab, sc = d.label[:m], s[:m]
    rank = np.empty(m)
    rank[np.argsort(-sc, kind="stable")] = np.arange(1, m + 1)
    discount = 1.0 / np.log2(1.0 + rank)
    g, h = np.zeros(m), np.zeros(m)
    i, j = np.nonzero(lab[:, None] > lab[None, :])
    if not len(i) or not d.idcg:
        return g, h
    delta = np.abs((lab[i] - lab[j]) * (discount[i] - discount[j])) / d.idcg
    rho = 1.0 / (1.0 + np.exp(np.clip(sc[i] - sc[j], -30, 30)))
    np.add.at(g, i, rho * delta)
    np.add.at(g, j, -rho * delta)
    np.add.at(h, i, rho * (1 - rho) * delta)
    np.add.at(h, j, rho * (1 - rho) * delta)
    return g, h


def _tree(x: np.ndarray, g: np.ndarray, h: np.ndarray, depth: int, min_leaf: int, cuts: list[Any]) -> Any:
    """A regression tree fitted to the gradients ``g`` (Newton leaves ``sum g / (sum h + 1)``)."""

    def grow(idx: np.ndarray, level: int) -> Any:
        total_g, total_h = g[idx].sum(), h[idx].sum()
        leaf = ("leaf", float(total_g / (total_h + 1.0)))
        if level == 0 or len(idx) < 2 * min_leaf:
            return leaf
        parent = total_g**2 / (total_h + 1.0)
        best: tuple[float, int, float, np.ndarray] | None = None
        for f in range(x.shape[1]):
            values = x[idx, f]
            for t in cuts[f]:
                left = values <= t
                n_left = int(left.sum())
                if n_left < min_leaf or len(idx) - n_left < min_leaf:
                    continue
                gl, hl = g[idx][left].sum(), h[idx][left].sum()
                gain = gl**2 / (hl + 1.0) + (total_g - gl) ** 2 / (total_h - hl + 1.0) - parent
                if best is None or gain > best[0]:
                    best = (gain, f, float(t), left)
        if best is None or best[0] <= 1e-6:
            return leaf
        _, f, t, left = best
        return (f, t, grow(idx[left], level - 1), grow(idx[~left], level - 1))

    return grow(np.arange(len(g)), depth)


def _predict(tree: Any, x: np.ndarray) -> np.ndarray:
    out = np.zeros(len(x))
    for r in range(len(x)):
        node = tree
        while node[0] != "leaf":
            node = node[2] if x[r, node[0]] <= node[1] else node[3]
        out[r] = node[1]
    return out


def boosted(
    dataset: Sequence[QueryData], top: int, n_trees: int, depth: int, rate: float, min_leaf: int
) -> Trees:
    """LambdaMART in a few lines: trees fitted one after another to the LambdaRank gradients of the
    scores so far, starting from the hand-weighted log score."""
    x = np.concatenate([d.x[:top] for d in dataset])
    cuts = [np.unique(np.quantile(x[:, f], np.linspace(0.05, 0.95, 12))) for f in range(x.shape[1])]
    model = Trees([], rate)
    scores = [model(d.x[:top]) for d in dataset]
    for _ in range(n_trees):
        gs, hs = zip(*(_lambdas(d, s, top) for d, s in zip(dataset, scores, strict=True)), strict=True)
        tree = _tree(x, np.concatenate(gs), np.concatenate(hs), depth, min_leaf, cuts)
        model.trees.append(tree)
        for k, d in enumerate(dataset):
            scores[k] = scores[k] + rate * _predict(tree, d.x[:top])
    return model


@dataclass(frozen=True, slots=True)
class Recipe:
    """How to fit a model: the method and its settings."""

    method: str = "pairwise"  # pairwise, ascent (from the hand weights), both, trees
    top: int = 30
    l2: float = 1.0
    features: tuple[str, ...] = ()  # linear methods: only these (and base); () all
    trees: int = 20
    depth: int = 2
    rate: float = 0.3
    min_leaf: int = 40

    def flags(self) -> str:
        """The command-line options that give this recipe."""
        if self.method == "trees":
            return (
                f"--method trees --top {self.top} --trees {self.trees} --depth {self.depth} "
                f"--rate {self.rate} --min-leaf {self.min_leaf}"
            )
        subset = f" --features {','.join(self.features)}" if self.features else ""
        return f"--method {self.method} --top {self.top} --l2 {self.l2}{subset}"


def fit(dataset: Sequence[QueryData], recipe: Recipe) -> np.ndarray | Trees:
    if recipe.method == "trees":
        return boosted(dataset, recipe.top, recipe.trees, recipe.depth, recipe.rate, recipe.min_leaf)
    if recipe.features:
        keep = np.array([f == "base" or f in recipe.features for f in FEATURES])
        dataset = [QueryData(d.query, d.x * keep, d.label, d.hits, d.duplicate, d.idcg) for d in dataset]
    w = base_weights()
    if recipe.method in ("pairwise", "both"):
        w = pairwise(dataset, recipe.top, recipe.l2)
    if recipe.method in ("ascent", "both"):
        w = ascent(dataset, w, recipe.top)
    return w


# ----------------------------------------------------------------------------------------------- report


def load(
    path: Path, queries: Sequence[dict[str, Any]], lexical: bool, captured: dict[str, Any] | None = None
) -> list[QueryData]:
    captured = pickle.loads(path.read_bytes()) if captured is None else captured
    out = []
    for q in queries:
        text, lex, vec, sym = captured[q["id"]]
        out.append(build(q, (text, lex, [] if lexical else vec, sym)))
    return out


def _groups(query: dict[str, Any]) -> tuple[str, ...]:
    return ("all", f"language:{query['language']}", f"kind:{query['kind']}", f"repo:{query['repo']}")


def table(results: dict[str, dict[str, dict[str, float]]], queries: Sequence[dict[str, Any]]) -> str:
    """Mean NDCG@10 per group of ``results`` (system -> query id -> metrics), markdown."""
    systems = list(results)
    groups: dict[str, list[str]] = defaultdict(list)
    for q in queries:
        for g in _groups(q):
            groups[g].append(q["id"])
    order = {"all": 0, "language": 1, "kind": 2, "repo": 3}
    lines = [f"| group (n) | {' | '.join(systems)} |", f"|---|{'---|' * len(systems)}"]
    for g in sorted(groups, key=lambda g: (order[g.split(":")[0]], g)):
        cells = [f"{statistics.fmean(results[s][i]['ndcg'] for i in groups[g]):.3f}" for s in systems]
        lines.append(f"| {g} ({len(groups[g])}) | {' | '.join(cells)} |")
    return "\n".join(lines)


def summary(results: dict[str, dict[str, float]]) -> str:
    return " / ".join(
        f"{statistics.fmean(m[k] for m in results.values()):.4f}" for k in ("ndcg", "mrr", "recall")
    )


def cross_validate(
    dataset: Sequence[QueryData], recipe: Recipe, extra: Sequence[QueryData] = ()
) -> dict[str, dict[str, dict[str, float]]]:
    """Leave one repository out: each repository's queries ranked by a model fitted on the others' (and
    on ``extra``, queries of other repositories that are never scored)."""
    out: dict[str, dict[str, dict[str, float]]] = {"hand": {}, "learned": {}}
    for repo in sorted({d.query["repo"] for d in dataset}):
        assert all(d.query["repo"] != repo for d in extra), f"{repo} in the extra training queries"
        model = fit([d for d in dataset if d.query["repo"] != repo] + list(extra), recipe)
        for d in (d for d in dataset if d.query["repo"] == repo):
            out["hand"][d.query["id"]] = metrics(d, reorder(d, None, recipe.top))
            out["learned"][d.query["id"]] = metrics(d, reorder(d, model, recipe.top))
    return out


def _tree_source(node: Any, indent: str) -> str:
    """A tree as Python source with feature names: ``("name", threshold, left, right)``, leaves floats."""
    if node[0] == "leaf":
        return repr(node[1])
    inner = indent + "    "
    return (
        f"(\n{inner}{FEATURES[node[0]]!r},\n{inner}{node[1]!r},\n"
        f"{inner}{_tree_source(node[2], inner)},\n{inner}{_tree_source(node[3], inner)},\n{indent})"
    )


def write_model(models: dict[str, np.ndarray | Trees], recipe: Recipe) -> None:
    """Write ``indexing/ranking_model.py``: a model per kind of candidates (hybrid, lexical)."""
    coefficients, trees, rate = [], [], recipe.rate
    for kind, model in models.items():
        w = model if isinstance(model, np.ndarray) else base_weights()
        pairs = ", ".join(f"{n!r}: {v:.6g}" for n, v in zip(FEATURES, w, strict=True) if v)
        coefficients.append(f"    {kind!r}: {{{pairs}}},")
        body = (
            ""
            if isinstance(model, np.ndarray)
            else "".join(f"        {_tree_source(t, '        ')},\n" for t in model.trees)
        )
        trees.append(f"    {kind!r}: (\n{body}    ),")
    MODEL_FILE.write_text(
        f'''"""The learned re-scoring of the fused top candidates (`indexing.ranking.rescore`), generated.

Per kind of candidates (``hybrid``: the nearest vectors brought some; ``lexical``), a candidate's new
log score is a linear model over `indexing.ranking.FEATURES` (``COEFFICIENTS``; the hand-weighted log
score alone is ``{{"base": 1.0}}``) plus ``RATE`` times the sum of boosted regression ``TREES``: a node is
``(feature, threshold, left, right)``, left when the feature is at or below the threshold; a leaf is a
number. Fitted on the tuning split of the retrieval benchmark only (LambdaMART, leave-one-repository-out
checked) by ``python -m tests.benchmarks.retrieval.learn fit --write`` with the options
``{recipe.flags()}``;
see BENCHMARKS.md "Learned ranking (issue 13, session 7)". Bump `VERSION` when the features change.
"""

from typing import Any

VERSION = {_next_version()}
TOP = {recipe.top}  # candidates re-scored, in the hand-weighted order
RATE = {rate}  # each tree's weight
COEFFICIENTS: dict[str, dict[str, float]] = {{
{chr(10).join(coefficients)}
}}
TREES: dict[str, tuple[Any, ...]] = {{
{chr(10).join(trees)}
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
        p.add_argument("--method", default="pairwise", choices=["pairwise", "ascent", "both", "trees"])
        p.add_argument("--top", type=int, default=30)
        p.add_argument("--l2", type=float, default=1.0)
        p.add_argument("--features", default="", help="linear methods: comma-separated subset")
        p.add_argument("--trees", type=int, default=20)
        p.add_argument("--depth", type=int, default=2)
        p.add_argument("--rate", type=float, default=0.3)
        p.add_argument("--min-leaf", type=int, default=40)
        p.add_argument("--tables", action="store_true", help="per language, kind and repository")
        p.add_argument(
            "--pseudo", type=int, default=0, help="also train on this many of `pseudo`'s queries (Django)"
        )
        p.add_argument("--pseudo-no-doc", action="store_true", help="zero their doc features (doc, has_doc)")
    sub.choices["fit"].add_argument("--write", action="store_true", help="write indexing/ranking_model.py")
    sub.choices["score"].add_argument("--split", default="held_out", choices=["tuning", "held_out"])
    args = parser.parse_args(argv)
    if args.command == "dump":
        dump(args.split, args.model, CACHE / f"learn-{args.split}.pkl")
        return 0
    recipe = Recipe(
        args.method,
        args.top,
        args.l2,
        tuple(filter(None, args.features.split(","))),
        args.trees,
        args.depth,
        args.rate,
        args.min_leaf,
    )
    tuning = load_queries("tuning")
    fitted: dict[str, np.ndarray | Trees] = {}
    pseudo_queries, pseudo_captured = pickle.loads(PSEUDO.read_bytes()) if args.pseudo else ([], {})
    for kind, lexical in (("hybrid", False), ("lexical", True)):
        train = load(CACHE / "learn-tuning.pkl", tuning, lexical)
        extra = load(PSEUDO, pseudo_queries[: args.pseudo], lexical, pseudo_captured)
        if args.pseudo_no_doc:
            for d in extra:  # their targets' doc comments are gone from the index, the others' are not
                d.x[:, [FEATURES.index("doc"), FEATURES.index("has_doc")]] = 0.0
        if args.command == "fit":
            results = cross_validate(train, recipe, extra)
            shipped = Shipped(kind)
            results["shipped"] = {d.query["id"]: metrics(d, reorder(d, shipped, recipe.top)) for d in train}
            queries = tuning
            what = "tuning, leave one repository out"
        else:
            queries = load_queries(args.split)
            model = fit(train + extra, recipe)
            test = load(CACHE / f"learn-{args.split}.pkl", queries, lexical)
            results = {
                "hand": {d.query["id"]: metrics(d, reorder(d, None, recipe.top)) for d in test},
                "learned": {d.query["id"]: metrics(d, reorder(d, model, recipe.top)) for d in test},
            }
            what = f"{args.split}, fitted on all tuning queries"
        print(
            f"{kind} ({what}; {len(extra)} pseudo-queries) NDCG@10 / MRR@10 / Recall@10: "
            + ", ".join(f"{name} {summary(r)}" for name, r in results.items())
        )
        if args.tables:
            print(table(results, queries))
        if args.command == "fit":
            model = fitted[kind] = fit(train + extra, recipe)
            score = mean_ndcg(train, model, recipe.top)
            plus = f" (fitted with {len(extra)} pseudo-queries too)" if extra else ""
            print(f"{kind}, fitted and scored on all {len(train)} tuning queries{plus}: {score:.4f}")
            if isinstance(model, np.ndarray):
                print({n: round(float(v), 4) for n, v in zip(FEATURES, model, strict=True) if v})
    if args.command == "fit" and args.write:
        write_model(fitted, recipe)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
