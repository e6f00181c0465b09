"""Benchmark corpora: real source trees fetched once from package registries and cached.

Nothing here is committed: each corpus is downloaded with the registry's ordinary client (pip, npm,
apt-get), reduced to its source files, and cached under the benchmark cache folder
(``~/.cache/agentls-bench`` unless the caller passes another). A corpus is complete when its manifest
(``corpora/<name>.json``, beside the tree, not inside it, so the indexer never sees it) exists; an
interrupted fetch is redone from scratch, and processes that fetch one corpus at once wait for the
first (`fetch_once`).

- ``django``: the source distribution of Django (the package and its test suite), its ``.py`` files only
  (about 2,800).
- ``mixed``: TypeScript sources from npm packages that ship ``.ts`` files, Go sources from Debian's
  ``golang-*-dev`` packages and Rust sources from Debian's ``librust-*-dev`` packages (about 2,400
  files). Versions are pinned; a Debian version that has left the archive falls back to the current one,
  and the manifest records what was used.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

log = logging.getLogger(__name__)

DJANGO_VERSION = "5.1.4"

NPM_PACKAGES: tuple[tuple[str, str], ...] = (
    ("effect", "3.10.15"),
    ("rxjs", "7.8.1"),
    ("@trpc/server", "10.45.2"),
    ("mobx", "6.13.5"),
    ("@tanstack/query-core", "5.62.0"),
    ("immer", "10.1.1"),
)
"""npm packages whose tarballs ship TypeScript sources (``src/**/*.ts``)."""

DEBIAN_GO_PACKAGES: tuple[tuple[str, str], ...] = (
    ("golang-github-go-git-go-git-dev", "5.4.2-3"),
    ("golang-github-hashicorp-hcl-v2-dev", "2.14.1-2"),
    ("golang-github-prometheus-client-golang-dev", "1.14.0-3"),
    ("golang-github-miekg-dns-dev", "1.1.50-2"),
    ("golang-github-gin-gonic-gin-dev", "1.8.1-1"),
    ("golang-github-stretchr-testify-dev", "1.8.1-1"),
    ("golang-github-google-go-cmp-dev", "0.5.9-1"),
    ("golang-github-spf13-cobra-dev", "1.6.1-1"),
)

DEBIAN_RUST_PACKAGES: tuple[tuple[str, str], ...] = (
    ("librust-tokio-dev", "1.24.2-1"),
    ("librust-syn-dev", "1.0.107-1"),
    ("librust-regex-syntax-dev", "0.6.27-1"),
    ("librust-regex-dev", "1.7.1-1"),
    ("librust-clap-dev", "4.0.32-1"),
    ("librust-rayon-dev", "1.6.1-1"),
    ("librust-serde-dev", "1.0.152-2"),
    ("librust-serde-json-dev", "1.0.87-1"),
    ("librust-hyper-dev", "0.14.19-1"),
)


class CorpusError(Exception):
    """A corpus could not be fetched; the message says which command failed and why."""


@dataclass(frozen=True, slots=True)
class Corpus:
    """A cached source tree ready to index."""

    name: str
    root: Path
    files: int
    languages: dict[str, int]  # file extension -> count
    sources: tuple[str, ...]  # what was fetched, with versions

    def paths(self) -> list[Path]:
        """Every file of the corpus, sorted."""
        return sorted(p for p in self.root.rglob("*") if p.is_file())

    def describe(self) -> str:
        langs = ", ".join(f"{n} {ext}" for ext, n in sorted(self.languages.items(), key=lambda kv: -kv[1]))
        return f"{self.name}: {self.files} files ({langs})"


def _run(cmd: list[str], cwd: Path) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise CorpusError(
            f"`{' '.join(cmd)}` failed with exit code {proc.returncode}: {proc.stderr.strip()[-800:]}\n"
            "The benchmark corpora come from package registries; check that pip, npm and apt-get reach them."
        )
    return proc.stdout


def _load(cache: Path, name: str) -> Corpus | None:
    manifest = cache / "corpora" / f"{name}.json"
    root = cache / "corpora" / name
    if not manifest.exists() or not root.is_dir():
        return None
    data = json.loads(manifest.read_text())
    return Corpus(name, root, data["files"], data["languages"], tuple(data["sources"]))


def _finish(cache: Path, name: str, staged: Path, sources: list[str]) -> Corpus:
    """Move a fully extracted tree into place and write its manifest last (the completion mark)."""
    root = cache / "corpora" / name
    if root.exists():
        shutil.rmtree(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    staged.rename(root)
    counts = Counter(p.suffix for p in root.rglob("*") if p.is_file())
    files = sum(counts.values())
    data = {"files": files, "languages": dict(counts), "sources": sources}
    manifest = cache / "corpora" / f"{name}.json"
    partial = manifest.with_name(f".{name}.json.{os.getpid()}")
    partial.write_text(json.dumps(data, indent=2))
    partial.replace(manifest)  # whole or not at all: `_load` never reads half of it
    return Corpus(name, root, files, dict(counts), tuple(sources))


def fetch_once(cache: Path, name: str, fill: Callable[[Path, Path], list[str]]) -> Corpus:
    """The corpus ``name`` from the cache, else fetched by ``fill(downloads, staged)`` (it fills the
    folder ``staged`` and returns what it used, with versions); raises `CorpusError`.

    Safe when several processes fetch the same corpus into one cache at once (parallel benchmark runs):
    one fetches, under a lock file beside the tree (``corpora/<name>.lock``, `fcntl.flock`), the others
    wait for it and then load what it left. The tree is unpacked into a hidden folder beside its place
    and renamed there whole, and the manifest, the completion mark, is written after it, so a
    half-unpacked tree never looks complete, and a complete one is never replaced under a process reading
    it (before session 26, a second fetch that had started meanwhile deleted the first one's tree, and
    replaced it with its own, while the first indexed it)."""
    found = _load(cache, name)
    if found is not None:
        return found
    folder = cache / "corpora"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or its process dies
        found = _load(cache, name)  # another process fetched it while this one waited
        if found is not None:
            return found
        downloads = cache / "downloads"
        downloads.mkdir(parents=True, exist_ok=True)
        staged = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=folder))
        try:
            sources = fill(downloads, staged)
        except BaseException:
            shutil.rmtree(staged, ignore_errors=True)
            raise
        return _finish(cache, name, staged, sources)


def _copy_members(tar: tarfile.TarFile, prefix: str, dest: Path, keep: Callable[[str], bool]) -> int:
    """Extract regular files under ``prefix`` whose path passes ``keep``, without the prefix."""
    count = 0
    for member in tar.getmembers():
        if not member.isfile() or not member.name.startswith(prefix):
            continue
        rel = PurePosixPath(member.name[len(prefix) :])
        if ".." in rel.parts or not keep(rel.as_posix()):
            continue
        source = tar.extractfile(member)
        if source is None:
            continue
        target = dest.joinpath(*rel.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source.read())
        count += 1
    return count


def django(cache: Path) -> Corpus:
    """Django's source distribution, ``.py`` files only (package and tests)."""

    def fill(downloads: Path, staged: Path) -> list[str]:
        sdist = downloads / f"Django-{DJANGO_VERSION}.tar.gz"
        if not sdist.exists():
            log.info("fetching Django %s from PyPI", DJANGO_VERSION)
            pip = ["pip", "download", f"django=={DJANGO_VERSION}", "--no-deps", "--no-binary", ":all:"]
            _run([*pip, "-d", "."], downloads)
        with tarfile.open(sdist) as tar:
            _copy_members(tar, f"Django-{DJANGO_VERSION}/", staged, lambda p: p.endswith(".py"))
        return [f"pypi:django=={DJANGO_VERSION} (sdist)"]

    return fetch_once(cache, f"django-{DJANGO_VERSION}", fill)


def _npm(downloads: Path, package: str, version: str, dest: Path) -> str:
    tarball = downloads / (package.lstrip("@").replace("/", "-") + f"-{version}.tgz")
    if not tarball.exists():
        out = _run(["npm", "pack", f"{package}@{version}", "--silent"], downloads).strip().splitlines()
        produced = downloads / out[-1]
        if produced != tarball:
            produced.rename(tarball)
    target = dest / package.lstrip("@").replace("/", "-")
    with tarfile.open(tarball) as tar:
        n = _copy_members(tar, "package/", target, lambda p: p.endswith(".ts") and not p.endswith(".d.ts"))
    if n == 0:
        raise CorpusError(f"npm package {package}@{version} shipped no .ts sources; pick another package")
    return f"npm:{package}@{version} ({n} .ts)"


def _apt(downloads: Path, package: str, version: str) -> tuple[Path, str]:
    """Download a .deb (pinned version, else the archive's current one); returns it and its version."""
    existing = sorted(downloads.glob(f"{package}_*.deb"))
    if existing:
        deb = existing[-1]
    else:
        try:
            _run(["apt-get", "download", f"{package}={version}"], downloads)
        except CorpusError:
            log.warning("%s=%s is not in the archive; using its current version", package, version)
            try:
                _run(["apt-get", "download", package], downloads)
            except CorpusError:
                _run(["apt-get", "update"], downloads)  # empty package lists on a fresh machine
                _run(["apt-get", "download", package], downloads)
        matches = sorted(downloads.glob(f"{package}_*.deb"))
        if not matches:
            raise CorpusError(f"apt-get download {package} left no .deb in {downloads}")
        deb = matches[-1]
    used = _run(["dpkg-deb", "-f", str(deb), "Version"], downloads).strip()
    return deb, used


def _debian(downloads: Path, package: str, version: str, under: str, suffix: str, dest: Path) -> str:
    deb, used = _apt(downloads, package, version)
    with tempfile.TemporaryDirectory(dir=downloads) as tmp:
        _run(["dpkg-deb", "-x", str(deb), tmp], downloads)
        base = Path(tmp) / under
        files = [p for p in base.rglob(f"*{suffix}") if p.is_file() and not p.is_symlink()]
        short = package.removeprefix("golang-").removeprefix("librust-").removesuffix("-dev")
        for path in files:
            target = dest / short / path.relative_to(base)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
    if not files:
        raise CorpusError(f"{package} {used} has no {suffix} files under /{under}; pick another package")
    return f"debian:{package}={used} ({len(files)} {suffix})"


def mixed(cache: Path) -> Corpus:
    """TypeScript (npm), Go (Debian golang-*-dev) and Rust (Debian librust-*-dev) sources."""

    def fill(downloads: Path, staged: Path) -> list[str]:
        sources: list[str] = []
        for package, version in NPM_PACKAGES:
            sources.append(_npm(downloads, package, version, staged / "ts"))
        for package, version in DEBIAN_GO_PACKAGES:
            sources.append(_debian(downloads, package, version, "usr/share/gocode/src", ".go", staged / "go"))
        for package, version in DEBIAN_RUST_PACKAGES:
            sources.append(
                _debian(downloads, package, version, "usr/share/cargo/registry", ".rs", staged / "rust")
            )
        return sources

    return fetch_once(cache, "mixed-v1", fill)


def copy_tree(source: Path, dest: Path) -> Path:
    """A writable copy of a corpus (mtimes kept, so an index of the copy sees unchanged files)."""
    shutil.copytree(source, dest, copy_function=shutil.copy2)
    return dest


def count_lines(paths: Iterable[Path]) -> int:
    return sum(p.read_bytes().count(b"\n") for p in paths)
