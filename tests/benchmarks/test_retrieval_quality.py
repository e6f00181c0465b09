"""Retrieval quality on Django, CodeSearchNet style: find a function from its docstring's first sentence.

Protocol:

1. Candidates: functions and methods of ``django/`` whose docstring stands on lines of its own and whose
   first sentence has at least ``MIN_WORDS`` words; as in CodeSearchNet, test functions, dunder methods
   and functions shorter than three lines are left out, and so are summaries shared by several functions
   (no single right answer). ``SAMPLE`` of them are drawn with a fixed seed.
2. The query is the docstring's first sentence. A copy of the corpus is made in which those docstrings
   are removed (the docstring statement becomes ``pass`` and blank lines, so line numbers stay put), and
   indexed with the default static embedder.
3. The right answer is the chunk of that function: the innermost chunk the chunker makes that holds the
   ``def`` line (for a method of a small class, the class). A hit is correct when it is in the same file,
   holds the ``def`` line and is no larger than that chunk (a window of a long function counts).
4. MRR@10 and recall@10 for lexical only (``search_lexical``), vector only (``search_vector``) and hybrid
   (``search``). Target: hybrid beats both.
5. Weights: the queries are split in two halves with a fixed seed; a small grid of ``RankingWeights`` is
   scored on the tuning half only, and the best is reported on the other half next to the defaults.
"""

from __future__ import annotations

import ast
import random
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from indexing.chunker import parse_source
from indexing.config import IndexSettings
from indexing.languages import detect_language
from indexing.models import SearchHit
from indexing.ranking import RankingWeights
from indexing.service import WorkspaceIndex
from tests.benchmarks.conftest import bench_env, model_cache
from tests.benchmarks.corpora import Corpus
from tests.benchmarks.harness import Entry, PyFunction, corpus_functions, doc_summary, record, rerun_command

pytestmark = pytest.mark.benchmark

MIN_WORDS = 5
SAMPLE = 400
SEED = 13
K = 10

_NO_BOOSTS = {"name": 0.0, "exact_name": 1.0, "text": 0.0, "doc": 0.0, "signature": 0.0, "path": 0.0}
GRID: tuple[tuple[str, RankingWeights], ...] = (
    *((f"vector={v:g}", RankingWeights(vector=v)) for v in (0.1, 0.2, 0.35, 0.5, 0.75, 1.0)),
    *(
        (f"vector={v:g}, no field matches", replace(RankingWeights(vector=v), **_NO_BOOSTS))
        for v in (0.5, 1.0)
    ),
)
"""Weights tried on the tuning half: the vector retriever's share of the fusion, with and without the
code-aware boosts (they mostly help identifier queries; these queries are prose)."""


@dataclass(frozen=True, slots=True)
class Case:
    """One query and where its answer is."""

    query: str
    function: PyFunction
    target_start: int  # the answer chunk's lines
    target_end: int
    target_kind: str


def _eligible(functions: Sequence[PyFunction]) -> list[PyFunction]:
    pool = [
        f
        for f in functions
        if f.path.startswith("django/")
        and f.doc_alone
        and len(doc_summary(f.doc).split()) >= MIN_WORDS
        and not f.name.startswith("test")
        and not (f.name.startswith("__") and f.name.endswith("__"))
        and f.end_line - f.line >= 2
    ]
    counts: dict[str, int] = {}
    for f in pool:
        counts[doc_summary(f.doc)] = counts.get(doc_summary(f.doc), 0) + 1
    return [f for f in pool if counts[doc_summary(f.doc)] == 1]


def _strip_docstrings(root: Path, functions: Sequence[PyFunction]) -> None:
    """Replace each function's docstring statement by ``pass`` and blank lines, in place."""
    by_path: dict[str, list[PyFunction]] = {}
    for f in functions:
        by_path.setdefault(f.path, []).append(f)
    for rel, funcs in by_path.items():
        path = root / rel
        lines = path.read_text("utf-8").split("\n")
        for f in funcs:
            first = lines[f.doc_first_line - 1]
            indent = first[: len(first) - len(first.lstrip())]
            lines[f.doc_first_line - 1] = f"{indent}pass"
            for n in range(f.doc_first_line, f.doc_last_line):
                lines[n] = ""
        text = "\n".join(lines)
        ast.parse(text)  # still valid Python
        path.write_text(text, "utf-8")


def _cases(root: Path, functions: Sequence[PyFunction], settings: IndexSettings) -> list[Case]:
    """Each function's answer chunk, from the chunker run on the stripped file."""
    cases: list[Case] = []
    by_path: dict[str, list[PyFunction]] = {}
    for f in functions:
        by_path.setdefault(f.path, []).append(f)
    for rel, funcs in sorted(by_path.items()):
        text = (root / rel).read_text("utf-8")
        result = parse_source(rel, text, detect_language(rel), settings.parse_limits())
        for f in funcs:
            holding = [
                c for c in result.chunks if c.start_line <= f.line <= c.end_line and c.kind != "module"
            ]
            assert holding, f"no chunk holds {rel}:{f.line} ({f.qualname})"
            best = min(holding, key=lambda c: c.end_line - c.start_line)
            cases.append(Case(doc_summary(f.doc), f, best.start_line, best.end_line, best.kind))
    return cases


def _rank(case: Case, hits: Sequence[SearchHit]) -> int:
    """1-based rank of the first correct hit, 0 when none of the hits is right."""
    size = case.target_end - case.target_start
    for n, hit in enumerate(hits, 1):
        if (
            hit.path == case.function.path
            and hit.start_line <= case.function.line <= hit.end_line
            and hit.end_line - hit.start_line <= size
        ):
            return n
    return 0


@dataclass(frozen=True, slots=True)
class Scores:
    mrr: float
    recall: float
    top1: float
    count: int

    def line(self) -> str:
        return f"MRR@{K} {self.mrr:.3f}, recall@{K} {self.recall:.3f}, top-1 {self.top1:.3f} (n={self.count})"


def _scores(ranks: Sequence[int]) -> Scores:
    n = len(ranks)
    return Scores(
        mrr=sum(1 / r for r in ranks if r) / n,
        recall=sum(1 for r in ranks if r) / n,
        top1=sum(1 for r in ranks if r == 1) / n,
        count=n,
    )


def _evaluate(cases: Sequence[Case], search: Callable[[str], list[SearchHit]]) -> list[int]:
    return [_rank(case, search(case.query)) for case in cases]


@pytest.mark.timeout(1200)
def test_retrieval_quality_codesearchnet_protocol(
    django_corpus: Corpus, distilled_model: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    settings = IndexSettings()
    pool = _eligible(corpus_functions(django_corpus.root))
    sample = random.Random(SEED).sample(pool, min(SAMPLE, len(pool)))
    root = tmp_path / "django-stripped"
    shutil.copytree(django_corpus.root, root)
    _strip_docstrings(root, sample)
    cases = _cases(root, sample, settings)
    order = list(range(len(cases)))
    random.Random(SEED + 1).shuffle(order)
    tune = [cases[i] for i in order[: len(cases) // 2]]
    held = [cases[i] for i in order[len(cases) // 2 :]]

    cache = model_cache(tmp_path / "cache", distilled_model)

    def open_index(weights: RankingWeights | None = None) -> WorkspaceIndex:
        return WorkspaceIndex(root, settings, cache_dir=cache, env=bench_env(cache), weights=weights)

    index = open_index()
    report = index.index()
    assert report.vectors == report.chunks > 0, "the retrieval benchmark needs every chunk embedded"

    modes: dict[str, Callable[[str], list[SearchHit]]] = {
        "lexical": lambda q: index.search_lexical(q, limit=K),
        "vector": lambda q: index.search_vector(q, limit=K),
        "hybrid": lambda q: index.search(q, limit=K),
    }
    ranks = {mode: _evaluate(cases, fn) for mode, fn in modes.items()}
    position = {id(c): n for n, c in enumerate(cases)}
    on_held = {mode: _scores([r[position[id(c)]] for c in held]) for mode, r in ranks.items()}
    on_all = {mode: _scores(r) for mode, r in ranks.items()}

    def hybrid_ranks(weights: RankingWeights, subset: Sequence[Case]) -> list[int]:
        trial = open_index(weights)
        try:
            return _evaluate(subset, lambda q: trial.search(q, limit=K))
        finally:
            trial.close()

    tuned = sorted(
        ((_scores(hybrid_ranks(weights, tune)).mrr, label, weights) for label, weights in GRID),
        key=lambda t: -t[0],
    )
    best_score, best_label, best_weights = tuned[0]
    default_tune = _scores([ranks["hybrid"][position[id(c)]] for c in tune]).mrr
    best_held = _scores(hybrid_ranks(best_weights, held))

    # The default weights were picked on the tuning half (an earlier run of this grid), so the verdict is
    # taken on the held-out half; figures over all queries are reported beside it.
    hybrid_wins = on_held["hybrid"].mrr > max(on_held["lexical"].mrr, on_held["vector"].mrr)
    kinds: dict[str, int] = {}
    for c in cases:
        kinds[c.target_kind] = kinds.get(c.target_kind, 0) + 1
    details = [
        f"{len(cases)} queries sampled (seed {SEED}) from {len(pool)} eligible functions of django/; "
        f"answer chunks by kind: {', '.join(f'{k} {v}' for k, v in sorted(kinds.items()))}",
        f"index of the stripped copy: {report.files_indexed} files, {report.chunks} chunks, "
        f"{report.seconds:.1f} s",
        *(f"all queries, {mode}: {s.line()}" for mode, s in on_all.items()),
        *(f"held-out half, {mode}: {s.line()}" for mode, s in on_held.items()),
        "weight grid, hybrid MRR@10 on the tuning half: "
        + ", ".join(f"{label} {score:.3f}" for score, label, _ in tuned),
        f"best on the tuning half: {best_label} ({best_score:.3f} vs defaults {default_tune:.3f}); "
        f"on the held-out half: {best_held.line()} vs defaults {on_held['hybrid'].line()}",
        f"examples: {'; '.join(repr(c.query) for c in cases[:3])}",
    ]
    record(
        Entry(
            key="retrieval.django",
            title="Retrieval quality on Django (CodeSearchNet protocol, docstrings removed)",
            target="hybrid MRR@10 above both lexical-only and vector-only (held-out queries)",
            measured="held-out: "
            + ", ".join(f"{mode} {s.mrr:.3f}" for mode, s in on_held.items())
            + f" MRR@10, recall@10 {', '.join(f'{m} {s.recall:.3f}' for m, s in on_held.items())}; "
            + "all: "
            + ", ".join(f"{mode} {s.mrr:.3f}" for mode, s in on_all.items())
            + " MRR@10",
            passed=hybrid_wins,
            figures={
                "all": {mode: vars_of(s) for mode, s in on_all.items()},
                "held_out": {mode: vars_of(s) for mode, s in on_held.items()},
                "grid_tuning_mrr": {label: round(score, 4) for score, label, _ in tuned},
                "best_weights": best_label,
                "best_weights_held_out": vars_of(best_held),
            },
            details=details,
            rerun=rerun_command(request.node.nodeid),
        )
    )
    assert hybrid_wins, (
        f"held-out: hybrid {on_held['hybrid'].mrr:.3f} does not beat lexical {on_held['lexical'].mrr:.3f} "
        f"and vector {on_held['vector'].mrr:.3f} (MRR@{K})"
    )


def vars_of(scores: Scores) -> dict[str, float]:
    return {
        "mrr": round(scores.mrr, 4),
        "recall": round(scores.recall, 4),
        "top1": round(scores.top1, 4),
        "count": scores.count,
    }


# ------------------------------------------------------------------------------ real repositories, vs semble


@pytest.mark.timeout(3600)
def test_retrieval_quality_real_repositories_vs_semble(
    bench_cache: Path, distilled_model: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """NDCG@10 on the annotated queries of ``tests/benchmarks/retrieval`` (13 repositories, 7 languages),
    agentls against semble 0.7.0 on the same sources in this run, lexical and hybrid (both with the
    distilled static model). Target (issue 13): agentls above semble's lexical ranking on the held-out
    split, and hybrid above 0.875."""
    from tests.benchmarks.corpora import CorpusError
    from tests.benchmarks.retrieval import evaluate as ev
    from tests.benchmarks.retrieval.repos import REPOS, fetch

    pytest.importorskip("semble", reason="the baseline needs semble: pip install semble==0.7.0")
    try:
        for repo in REPOS:
            fetch(repo, bench_cache)
    except CorpusError as exc:
        pytest.skip(f"the repositories could not be fetched from the package registries (offline?): {exc}")
    queries = ev.load_queries("all")
    run = ev.evaluate(queries, ev.default_systems(distilled_model), bench_cache, tmp_path)
    held, tune = run.table.summary("held_out"), run.table.summary("tuning")
    lexical_wins = held["agentls-lexical"]["ndcg"] > held["semble-lexical"]["ndcg"]
    hybrid_target = held["agentls-hybrid"]["ndcg"] > 0.875
    latency = {s: f"p50 {harness_median(v):.1f} ms" for s, v in run.latency_ms.items()}

    def line(split: str, figures: dict[str, dict[str, float]]) -> str:
        return f"{split}: " + "; ".join(
            f"{s} NDCG {m['ndcg']:.3f} MRR {m['mrr']:.3f} R@10 {m['recall']:.3f}" for s, m in figures.items()
        )

    details = [
        f"{len(queries)} queries ({sum(q['split'] == 'held_out' for q in queries)} held out) over "
        f"{len(REPOS)} repositories: " + ", ".join(f"{r.name} ({r.language})" for r in REPOS),
        line("held-out", held),
        line("tuning", tune),
        f"search latency per query: {', '.join(f'{s} {v}' for s, v in latency.items())}",
        "NDCG@10 per group, held-out:",
        *run.table.markdown("held_out").splitlines(),
        "NDCG@10 per group, tuning:",
        *run.table.markdown("tuning").splitlines(),
    ]
    record(
        Entry(
            key="retrieval.repos",
            title="Retrieval quality on 13 real repositories, agentls vs semble 0.7.0 (NDCG@10)",
            target="held-out NDCG@10: agentls lexical above semble lexical; agentls hybrid above 0.875",
            measured=(
                f"held-out NDCG@10: agentls lexical {held['agentls-lexical']['ndcg']:.3f} vs semble "
                f"{held['semble-lexical']['ndcg']:.3f}; hybrid agentls "
                f"{held['agentls-hybrid']['ndcg']:.3f} vs semble {held['semble-hybrid']['ndcg']:.3f}"
            ),
            passed=lexical_wins and hybrid_target,
            figures={"held_out": held, "tuning": tune},
            details=details,
            rerun=rerun_command(request.node.nodeid),
        )
    )
    assert lexical_wins, f"held-out: agentls {held['agentls-lexical']} vs semble {held['semble-lexical']}"
    assert hybrid_target, f"held-out: agentls hybrid {held['agentls-hybrid']} is not above NDCG 0.875"


@pytest.mark.timeout(1800)
def test_retrieval_on_sembles_own_queries(
    bench_cache: Path, distilled_model: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """An outside check: semble's own benchmark queries (file-level relevance, scored as semble scores them:
    mean over repositories of NDCG@10) on the repositories of that set the registries carry, agentls
    against semble 0.7.0 in this run, lexical and hybrid (the same distilled model). The queries ask for
    files, so agentls' search for files (`agentls search --files`) is the system compared; its default
    search (chunks, several per file) is reported beside it. Target (issue 13): agentls above semble,
    lexical and hybrid."""
    from tests.benchmarks.corpora import CorpusError
    from tests.benchmarks.retrieval import external

    pytest.importorskip("semble", reason="the baseline needs semble: pip install semble==0.7.0")
    folder = bench_cache / "semble-annotations"
    if not (folder / "repos.json").exists():
        pytest.skip(
            f"semble's annotation files are not in {folder} (see tests/benchmarks/retrieval/external.py)"
        )
    tasks = external.load_tasks(folder, sorted(external.EXTERNAL))
    try:
        result = external.run(tasks, external.systems_for(distilled_model), folder, bench_cache, tmp_path)
    except CorpusError as exc:
        pytest.skip(f"the repositories could not be fetched from the package registries (offline?): {exc}")
    means = {s: external.mean_over_repositories(result, s) for s in result.scores}
    lexical_wins = means["agentls-lexical-files"] > means["semble-lexical"]
    hybrid_wins = means["agentls-hybrid-files"] > means["semble-hybrid"]
    dropped = sum(d for d, _ in result.dropped.values())
    record(
        Entry(
            key="retrieval.semble_queries",
            title="Retrieval on semble's own benchmark queries (file-level NDCG@10, semble's protocol)",
            target="agentls' search for files above semble 0.7.0, lexical and hybrid (mean of repositories)",
            measured=(
                f"lexical: agentls files {means['agentls-lexical-files']:.3f} vs semble "
                f"{means['semble-lexical']:.3f} (agentls' default search {means['agentls-lexical']:.3f}); "
                f"hybrid: agentls files {means['agentls-hybrid-files']:.3f} vs semble "
                f"{means['semble-hybrid']:.3f} (default {means['agentls-hybrid']:.3f})"
            ),
            passed=lexical_wins and hybrid_wins,
            figures={"mean_over_repositories": {s: round(v, 4) for s, v in means.items()}},
            details=[
                f"{len(tasks) - dropped} of {len(tasks)} queries scored ({dropped} have no target file in "
                "the registry's release)",
                *external.report(result, tasks).splitlines(),
            ],
            rerun=rerun_command(request.node.nodeid),
        )
    )
    assert lexical_wins, f"lexical: {means}"
    assert hybrid_wins, f"hybrid: {means}"


def harness_median(values: Sequence[float]) -> float:
    from tests.benchmarks.harness import median

    return median(values) if values else 0.0


@pytest.mark.timeout(1800)
def test_agent_context_relevance_on_the_annotated_queries(bench_cache: Path, tmp_path: Path) -> None:
    """Issue 13, item 4: each annotated query as a free-form run (`agentls run QUERY`); does the context its
    first turn gets hold the defining chunks (recall), their files' imports, and little else (noise)?
    Scored by `tests.benchmarks.retrieval.context_relevance`, lexical index, both splits."""
    from tests.benchmarks.corpora import CorpusError
    from tests.benchmarks.retrieval import context_relevance as cr
    from tests.benchmarks.retrieval import evaluate as ev
    from tests.benchmarks.retrieval.repos import REPOS, fetch

    try:
        roots = {repo.name: fetch(repo, bench_cache).root for repo in REPOS}
    except CorpusError as exc:
        pytest.skip(f"the repositories could not be fetched from the package registries (offline?): {exc}")
    queries = ev.load_queries("all")
    indexes = {name: ev.open_agentls(root, tmp_path / name) for name, root in roots.items()}
    results = cr.evaluate_contexts(queries, indexes)
    figures = {
        split: cr.means({q["id"]: results[q["id"]] for q in queries if q["split"] == split})
        for split in ("held_out", "tuning")
    }
    print(f"\nrun context relevance: {figures}")
    assert figures["held_out"]["recall"] >= 0.85 and figures["held_out"]["imports"] >= 0.9, figures
