"""The repositories of the retrieval evaluation: pinned packages from PyPI, npm and Debian, one source tree
each, fetched once into the benchmark cache (``<cache>/corpora/retrieval-<name>``) and never at import.

Each repository is what a developer would have checked out, reduced to the files of its language: the
PyPI source distributions keep their tests and examples (the ranking must put the source first), the npm
tarballs their sources (``dist/`` bundles left out), the Debian packages the source files they install
(``golang-*-dev`` under ``/usr/share/gocode``, ``librust-*-dev`` under ``/usr/share/cargo``, ``ruby-*`` under
``/usr/lib/ruby/vendor_ruby``, ``php-*`` under ``/usr/share/php``). Debian versions that have left the
archive fall back to the current one (recorded in the manifest), as in :mod:`tests.benchmarks.corpora`.

Run ``python -m tests.benchmarks.retrieval.repos [CACHE]`` to fetch them all ahead of a benchmark run.
"""

from __future__ import annotations

import shutil
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.benchmarks import corpora
from tests.benchmarks.corpora import Corpus, CorpusError


@dataclass(frozen=True, slots=True)
class Repo:
    """One repository of the evaluation: where it comes from and which files it keeps."""

    name: str
    language: str  # the language its queries are scored under
    registry: str  # pypi, npm, debian
    package: str
    version: str
    suffixes: tuple[str, ...]
    under: str = ""  # npm: keep only this folder of the tarball ("" = everything but dist/)


REPOS: tuple[Repo, ...] = (
    Repo("requests", "python", "pypi", "requests", "2.32.3", (".py",)),
    Repo("click", "python", "pypi", "click", "8.1.7", (".py",)),
    Repo("express", "javascript", "npm", "express", "4.21.1", (".js",)),
    Repo("axios", "javascript", "npm", "axios", "1.7.7", (".js",), under="lib/"),
    Repo("query-core", "typescript", "npm", "@tanstack/query-core", "5.62.0", (".ts",), under="src/"),
    Repo("immer", "typescript", "npm", "immer", "10.1.1", (".ts",), under="src/"),
    Repo("cobra", "go", "debian", "golang-github-spf13-cobra-dev", "1.6.1-1", (".go",)),
    Repo("gin", "go", "debian", "golang-github-gin-gonic-gin-dev", "1.8.1-1", (".go",)),
    Repo("serde-json", "rust", "debian", "librust-serde-json-dev", "1.0.87-1", (".rs",)),
    Repo("rayon", "rust", "debian", "librust-rayon-dev", "1.6.1-1", (".rs",)),
    Repo("rack", "ruby", "debian", "ruby-rack", "2.2.22-0+deb12u2", (".rb",)),
    Repo("monolog", "php", "debian", "php-monolog", "2.9.1-1", (".php",)),
    Repo("psr7", "php", "debian", "php-guzzlehttp-psr7", "2.4.5-1+deb12u1", (".php",)),
)
BY_NAME = {r.name: r for r in REPOS}


def _keep(repo: Repo, rel: str) -> bool:
    if not rel.endswith(repo.suffixes) or rel.endswith(".d.ts") or rel.endswith(".min.js"):
        return False
    if repo.registry == "npm" and not repo.under:
        return not rel.startswith(("dist/", "node_modules/"))
    return True


def _pypi(repo: Repo, downloads: Path, staged: Path) -> str:
    found = sorted(downloads.glob(f"{repo.package}-{repo.version}.tar.gz"))
    if not found:
        corpora._run(
            [
                "pip",
                "download",
                f"{repo.package}=={repo.version}",
                "--no-deps",
                "--no-binary",
                ":all:",
                "-d.",
            ],
            downloads,
        )
        found = sorted(downloads.glob(f"{repo.package}-{repo.version}.tar.gz"))
    if not found:
        raise CorpusError(f"pip download left no {repo.package}-{repo.version}.tar.gz in {downloads}")
    prefix = f"{repo.package}-{repo.version}/"
    with tarfile.open(found[0]) as tar:
        n = corpora._copy_members(tar, prefix, staged, lambda p: _keep(repo, p))
    return f"pypi:{repo.package}=={repo.version} (sdist, {n} files)"


def _npm(repo: Repo, downloads: Path, staged: Path) -> str:
    tarball = downloads / (repo.package.lstrip("@").replace("/", "-") + f"-{repo.version}.tgz")
    if not tarball.exists():
        out = corpora._run(["npm", "pack", f"{repo.package}@{repo.version}", "--silent"], downloads)
        produced = downloads / out.strip().splitlines()[-1]
        if produced != tarball:
            produced.rename(tarball)
    prefix = "package/" + repo.under
    with tarfile.open(tarball) as tar:
        n = corpora._copy_members(tar, prefix, staged / repo.under, lambda p: _keep(repo, repo.under + p))
    return f"npm:{repo.package}@{repo.version} ({n} files)"


def _debian(repo: Repo, downloads: Path, staged: Path) -> str:
    deb, used = corpora._apt(downloads, repo.package, repo.version)
    with tempfile.TemporaryDirectory(dir=downloads) as tmp:
        corpora._run(["dpkg-deb", "-x", str(deb), tmp], downloads)
        files = [p for p in Path(tmp).rglob("*") if p.is_file() and not p.is_symlink()]
        files = [p for p in files if _keep(repo, p.name) and "/usr/share/doc/" not in p.as_posix()]
        if not files:
            raise CorpusError(f"{repo.package} {used} installs no {'/'.join(repo.suffixes)} files")
        base = Path(tmp) / _common_root([p.relative_to(tmp) for p in files])
        for path in files:
            target = staged / path.relative_to(base)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
    return f"debian:{repo.package}={used} ({len(files)} files)"


def _common_root(paths: list[Path]) -> Path:
    """The deepest folder holding every path (``usr/share/gocode/src/github.com/spf13/cobra``)."""
    parts = list(paths[0].parent.parts)
    for p in paths[1:]:
        own = p.parent.parts
        n = 0
        while n < min(len(parts), len(own)) and parts[n] == own[n]:
            n += 1
        parts = parts[:n]
    return Path(*parts) if parts else Path()


_FETCH = {"pypi": _pypi, "npm": _npm, "debian": _debian}


def fetch(repo: Repo, cache: Path) -> Corpus:
    """The repository's source tree, downloaded and extracted on first use (`corpora.fetch_once`: one
    process fetches, others fetching it at once wait and get its tree); raises `CorpusError`."""
    return corpora.fetch_once(
        cache,
        f"retrieval-{repo.name}-{repo.version}",
        lambda downloads, staged: [_FETCH[repo.registry](repo, downloads, staged)],
    )


def main(argv: list[str]) -> int:
    cache = Path(argv[0]) if argv else Path.home() / ".cache" / "agentls-bench"
    for repo in REPOS:
        corpus = fetch(repo, cache)
        print(f"{repo.name}: {corpus.describe()} <- {', '.join(corpus.sources)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
