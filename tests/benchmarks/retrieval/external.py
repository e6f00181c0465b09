"""An outside check of the ranking: semble's own benchmark queries, scored the way semble scores them.

agentls' retrieval benchmark (:mod:`tests.benchmarks.retrieval.evaluate`) has queries written in this
project, and its ranking was tuned on part of them. This module scores agentls and semble on the queries
semble's authors wrote for semble (the ``benchmarks/annotations/*.json`` files of the MinishLab/semble
repository, with its ``repos.json``), on the repositories of that set that the package registries carry.
Nothing here was tuned on them.

The annotation files are not part of this repository. Put a copy of them (and ``repos.json``) in a folder
and pass it as ``--annotations`` (default ``<cache>/semble-annotations``). Each file is a list of
``{"query", "relevant": [path, ...], "secondary": [path, ...], "category"}``: file-level relevance,
``category`` one of ``semantic``, ``architecture``, ``symbol``.

The protocol is semble's (re-implemented here, not copied):

- each system indexes the repository's ``benchmark_root`` folder (from ``repos.json``) and answers with
  its top 10 chunks;
- a target (a relevant or secondary path, relevance 1 for both) is found at the rank of the first chunk
  from its file (a path matches when equal to the target or ending in ``/`` + the target);
- NDCG@10 with binary gains, the ideal list being ``min(10, n)`` ones, ``n`` the targets that exist in the
  indexed folder; a repository's figure is the mean over its queries and the headline is the mean over
  repositories (semble's "Avg"), the mean over queries is printed beside it.

The registries do not carry semble's pinned commits, so each repository is the release nearest to it
that a registry has (PyPI sdists, npm tarballs, Debian bookworm packages: older, sometimes by a major
version). A target whose file is missing from that release does not count (for every system alike), and
a query left without targets is dropped: the run prints how many. Target line spans, where an annotation
has them, are not used (the lines moved between versions): the check is file-level.

Run: ``python -m tests.benchmarks.retrieval.external [--model DIR] [--repos a,b] [--misses]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from indexing.ranking import RankingWeights
from tests.benchmarks.retrieval.evaluate import Hit, agentls_search, default_systems, open_agentls
from tests.benchmarks.retrieval.repos import Repo, fetch
from tests.benchmarks.retrieval.sweep import parse_setting

K = 10


@dataclass(frozen=True, slots=True)
class External:
    """One repository of semble's set, as a registry carries it.

    ``prefix`` is where the registry's tree sits in the project's repository: the Debian package of
    monolog installs the contents of ``src/Monolog``, npm's zod is ``packages/zod`` of its repository.
    """

    repo: Repo
    prefix: str = ""


def _pypi(name: str, version: str) -> External:
    return External(Repo(f"semble-{name}", "python", "pypi", name, version, (".py",)))


def _npm(name: str, package: str, version: str, language: str, under: str, prefix: str = "") -> External:
    suffix = (".ts",) if language == "typescript" else (".js",)
    return External(Repo(f"semble-{name}", language, "npm", package, version, suffix, under=under), prefix)


def _deb(name: str, language: str, package: str, version: str, prefix: str = "") -> External:
    suffix = {"go": (".go",), "php": (".php",), "ruby": (".rb",), "rust": (".rs",)}[language]
    return External(Repo(f"semble-{name}", language, "debian", package, version, suffix), prefix)


EXTERNAL: dict[str, External] = {
    "aiohttp": _pypi("aiohttp", "3.14.5"),
    "fastapi": _pypi("fastapi", "0.165.0"),
    "model2vec": _pypi("model2vec", "0.10.0"),
    "pydantic": _pypi("pydantic", "2.14.4"),
    "express": _npm("express", "express", "5.3.0", "javascript", "lib/"),
    "trpc": _npm("trpc", "@trpc/server", "11.25.2", "typescript", "src/", "packages/server/"),
    "zod": _npm("zod", "zod", "4.6.7", "typescript", "src/", "packages/zod/"),
    "chi": _deb("chi", "go", "golang-github-go-chi-chi-dev", "5.0.7-1"),
    "cobra": _deb("cobra", "go", "golang-github-spf13-cobra-dev", "1.6.1-1"),
    "gin": _deb("gin", "go", "golang-github-gin-gonic-gin-dev", "1.8.1-1"),
    "rack": _deb("rack", "ruby", "ruby-rack", "2.2.22-0+deb12u2"),
    "sinatra": _deb("sinatra", "ruby", "ruby-sinatra", "3.0.5-3+deb12u1", "lib/"),
    "serde": _deb("serde", "rust", "librust-serde-dev", "1.0.152-2", "serde/"),
    "tokio": _deb("tokio", "rust", "librust-tokio-dev", "1.24.2-1", "tokio/"),
}


# ------------------------------------------------------------------------------------------- the queries


@dataclass(frozen=True, slots=True)
class Task:
    repo: str
    language: str
    query: str
    category: str
    targets: tuple[str, ...]  # relevant and secondary paths, as the project's repository has them


def load_tasks(folder: Path, names: Sequence[str]) -> list[Task]:
    """The annotated queries of these repositories; raises `SystemExit` when the folder lacks them."""
    specs_file = folder / "repos.json"
    if not specs_file.exists():
        raise SystemExit(
            f"no semble annotations in {folder}: copy benchmarks/repos.json and benchmarks/annotations/"
            "*.json of the MinishLab/semble repository there, or pass --annotations DIR"
        )
    specs = {s["name"]: s for s in json.loads(specs_file.read_text(encoding="utf-8"))}
    tasks: list[Task] = []
    for name in names:
        path = folder / f"{name}.json"
        if name not in specs or not path.exists():
            print(f"{name}: no annotations in {folder}, left out", file=sys.stderr)
            continue
        for item in json.loads(path.read_text(encoding="utf-8")):
            paths = [t if isinstance(t, str) else t["path"] for t in item.get("relevant", [])]
            paths += [t if isinstance(t, str) else t["path"] for t in item.get("secondary", [])]
            bare = " " not in item["query"].strip()
            category = item.get("category") or ("symbol" if bare else "semantic")
            tasks.append(
                Task(name, specs[name]["language"], item["query"], category, tuple(dict.fromkeys(paths)))
            )
    return tasks


def benchmark_root(folder: Path, name: str) -> str:
    spec = next(
        s for s in json.loads((folder / "repos.json").read_text(encoding="utf-8")) if s["name"] == name
    )
    return (spec.get("benchmark_root") or "").strip("/")


def indexed_folder(external: External, root: str) -> tuple[str, str]:
    """(the folder of the registry's tree to index, that folder's path in the project's repository)."""
    prefix = external.prefix.rstrip("/")
    if not prefix or (root + "/").startswith(prefix + "/"):
        sub = root[len(prefix) :].strip("/") if prefix else root
        return sub, root
    if prefix.startswith(root + "/") or not root:
        return "", prefix  # the registry ships only part of the benchmark folder
    raise ValueError(f"{external.repo.name}: benchmark root {root!r} lies outside the package ({prefix!r})")


# ------------------------------------------------------------------------------------------- scoring


def half(name: str) -> str:
    """A repository's fixed half of the set, by a hash of its name: ``tuning`` or ``check``."""
    return "tuning" if hashlib.sha1(name.encode()).digest()[0] % 2 == 0 else "check"


def path_matches(path: str, target: str) -> bool:
    return path == target or path.endswith("/" + target)


def ndcg(hit_paths: Sequence[str], targets: Sequence[str]) -> float:
    """semble's NDCG@10: binary gains at each target's first matching rank, over ``min(10, targets)``."""
    gains = [0.0] * K
    for target in targets:
        rank = next((i for i, p in enumerate(hit_paths[:K]) if path_matches(p, target)), None)
        if rank is not None:
            gains[rank] = 1.0
    dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains))
    ideal = sum(1 / math.log2(i + 2) for i in range(min(K, len(targets))))
    return dcg / ideal if ideal else 0.0


@dataclass(slots=True)
class Result:
    scores: dict[str, dict[str, list[float]]]  # system -> repo -> per-query NDCG@10
    categories: dict[str, dict[str, list[float]]]  # system -> category -> per-query NDCG@10
    dropped: dict[str, tuple[int, int]]  # repo -> (queries dropped, targets missing)
    latency_ms: dict[str, list[float]]
    misses: list[tuple[str, str, float, Task, list[str]]]


Build = Callable[[Path, Path], Callable[[str], list[Hit]]]


def run(tasks: Sequence[Task], systems: dict[str, Build], folder: Path, cache: Path, workdir: Path) -> Result:
    result = Result(defaultdict(dict), defaultdict(lambda: defaultdict(list)), {}, defaultdict(list), [])
    for name in sorted({t.repo for t in tasks}):
        external = EXTERNAL[name]
        corpus = fetch(external.repo, cache)
        sub, repo_path = indexed_folder(external, benchmark_root(folder, name))
        tree = corpus.root / sub
        present = {
            f"{repo_path}/{p.relative_to(tree).as_posix()}".lstrip("/")
            for p in tree.rglob("*")
            if p.is_file()
        }
        kept: list[Task] = []
        missing = 0
        for task in (t for t in tasks if t.repo == name):
            found = tuple(t for t in task.targets if any(path_matches(p, t) for p in present))
            missing += len(task.targets) - len(found)
            if found:
                kept.append(Task(task.repo, task.language, task.query, task.category, found))
        result.dropped[name] = (sum(1 for t in tasks if t.repo == name) - len(kept), missing)
        print(
            f"{name}: {corpus.sources[0]}, indexing {repo_path or '.'}: {len(kept)} queries"
            f" ({result.dropped[name][0]} dropped, {missing} targets missing)",
            file=sys.stderr,
        )
        for system, build in systems.items():
            search = build(tree, workdir / system / name)
            values: list[float] = []
            for task in kept:
                t0 = time.perf_counter()
                hits = search(task.query)
                result.latency_ms[system].append((time.perf_counter() - t0) * 1000)
                paths = [f"{repo_path}/{h.path}".lstrip("/") for h in hits]
                value = ndcg(paths, task.targets)
                values.append(value)
                result.categories[system][task.category].append(value)
                if value < 1:
                    result.misses.append((system, name, value, task, paths))
            result.scores[system][name] = values
    return result


def systems_for(model_dir: Path | None, weights: RankingWeights | None = None) -> dict[str, Build]:
    """agentls and semble, lexical and (with a model) hybrid: the retrieval benchmark's systems, less the
    vector leg alone, plus agentls' files view."""
    systems: dict[str, Build] = default_systems(model_dir, weights)
    systems.pop("agentls-vector", None)
    # the files view (`agentls search --files`): each file once, what semble's queries ask for
    systems["agentls-lexical-files"] = lambda root, work: agentls_search(
        open_agentls(root, work, weights=weights), files=True
    )
    if model_dir is not None:
        systems["agentls-hybrid-files"] = lambda root, work: agentls_search(
            open_agentls(root, work, model_dir=model_dir, weights=weights), files=True
        )
    return systems


def mean_over_repositories(result: Result, system: str, repos: Sequence[str] | None = None) -> float:
    """semble's headline figure: the mean of the repositories' mean NDCG@10 (those with queries, of
    ``repos`` when given)."""
    scores = result.scores[system]
    return statistics.fmean(statistics.fmean(scores[r]) for r in (repos or scores) if scores[r])


def report(result: Result, tasks: Sequence[Task]) -> str:
    systems = list(result.scores)
    repos = sorted(next(iter(result.scores.values())))
    language = {t.repo: t.language for t in tasks}
    lines = [f"| repository (queries) | {' | '.join(systems)} |", f"|---|{'---|' * len(systems)}"]
    for repo in repos:
        n = len(result.scores[systems[0]][repo])
        if not n:
            continue
        cells = [f"{statistics.fmean(result.scores[s][repo]):.3f}" for s in systems]
        lines.append(f"| {repo} ({language[repo]}, {n}) | {' | '.join(cells)} |")
    scored = [r for r in repos if result.scores[systems[0]][r]]
    by_language: dict[str, list[str]] = defaultdict(list)
    for repo in scored:
        by_language[language[repo]].append(repo)
    for lang, members in sorted(by_language.items()):
        cells = [f"{mean_over_repositories(result, s, members):.3f}" for s in systems]
        lines.append(f"| language {lang} ({len(members)} repositories) | {' | '.join(cells)} |")
    for category in sorted(result.categories[systems[0]]):
        n = len(result.categories[systems[0]][category])
        cells = [f"{statistics.fmean(result.categories[s][category]):.3f}" for s in systems]
        lines.append(f"| category {category} ({n} queries) | {' | '.join(cells)} |")
    macro = [f"**{mean_over_repositories(result, s):.3f}**" for s in systems]
    micro = [f"{statistics.fmean(v for r in scored for v in result.scores[s][r]):.3f}" for s in systems]
    total = sum(len(result.scores[systems[0]][r]) for r in scored)
    lines.append(f"| mean over repositories ({len(scored)}) | {' | '.join(macro)} |")
    lines.append(f"| mean over queries ({total}) | {' | '.join(micro)} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "agentls-bench")
    parser.add_argument("--annotations", type=Path, help="semble's annotations and repos.json")
    parser.add_argument("--model", type=Path, help="a static model folder: also run the hybrid systems")
    parser.add_argument("--systems", help="comma-separated subset of the systems")
    parser.add_argument("--repos", help="comma-separated subset of the repositories")
    parser.add_argument(
        "--set", help="agentls ranking weights to use instead of the defaults (vector=0.5,...)"
    )
    parser.add_argument(
        "--half",
        choices=["tuning", "check"],
        help="only the repositories of one half (fixed by name): choose settings on one, check on the other",
    )
    parser.add_argument("--misses", action="store_true", help="print agentls' queries that score below 1")
    args = parser.parse_args(argv)
    folder = args.annotations or args.cache / "semble-annotations"
    names = args.repos.split(",") if args.repos else sorted(EXTERNAL)
    if args.half:
        names = [n for n in names if half(n) == args.half]
    unknown = [n for n in names if n not in EXTERNAL]
    if unknown:
        raise SystemExit(f"no registry source for {', '.join(unknown)}; known: {', '.join(sorted(EXTERNAL))}")
    tasks = load_tasks(folder, names)
    systems = systems_for(args.model, parse_setting(args.set) if args.set else None)
    if args.systems:
        systems = {k: v for k, v in systems.items() if k in args.systems.split(",")}
    with tempfile.TemporaryDirectory() as tmp:
        result = run(tasks, systems, folder, args.cache, Path(tmp))
    print(report(result, tasks))
    dropped = sum(d for d, _ in result.dropped.values())
    print(f"queries dropped (no target file in the registry's release): {dropped} of {len(tasks)}")
    print(
        "search latency p50 (ms): "
        + ", ".join(f"{s} {statistics.median(v):.1f}" for s, v in result.latency_ms.items())
    )
    if args.misses:
        for system, repo, value, task, paths in sorted(result.misses, key=lambda m: (m[0], m[1], m[2])):
            if system.startswith("agentls"):
                print(f"{system} {value:.2f} {repo} [{task.category}] {task.query!r}")
                print(f"    targets: {', '.join(task.targets)}")
                print(f"    top 5:   {', '.join(paths[:5])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
