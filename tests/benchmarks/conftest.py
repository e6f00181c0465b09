"""Fixtures of the indexing benchmarks: cached corpora, a model cache, and one embedded Django index.

The benchmarks are deselected by default (pyproject's ``-m 'not benchmark'``); run them with
``python -m pytest tests/benchmarks -m benchmark -s``. Corpora are cached under
``$AGENTLS_BENCH_CACHE`` (default ``~/.cache/agentls-bench``); the first run downloads them from PyPI, npm
and Debian (about a minute).

``django_embedded`` indexes a copy of Django once per session in a child process, with the default
static embedder (the distilled model at ``cache_dir/models/distilled-minilm``), sampling the memory of
the child's whole process tree. Its timings serve the throughput and memory benchmarks; its index serves
the refresh, search and degradation benchmarks, each of which works on its own clone
(:func:`EmbeddedIndex.clone`) so none sees another's edits.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from indexing.config import IndexSettings
from indexing.embeddings import DISTILLED_MODEL_NAME
from indexing.service import WorkspaceIndex
from tests.benchmarks import corpora
from tests.benchmarks.harness import ChildRun, index_in_child


@pytest.fixture(scope="session", autouse=True)
def _quiet_lance() -> Iterator[None]:
    """LanceDB's Rust warnings (index statistics notices) would interleave with the figures printed."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RUST_LOG", "error")
        yield


@pytest.fixture(scope="session")
def bench_cache() -> Path:
    configured = os.environ.get("AGENTLS_BENCH_CACHE")
    path = Path(configured) if configured else Path.home() / ".cache" / "agentls-bench"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def django_corpus(bench_cache: Path) -> corpora.Corpus:
    return corpora.django(bench_cache)


@pytest.fixture(scope="session")
def mixed_corpus(bench_cache: Path) -> corpora.Corpus:
    return corpora.mixed(bench_cache)


@pytest.fixture(scope="session")
def bench_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bench")


def model_cache(folder: Path, distilled_model: Path) -> Path:
    """A cache dir whose models/ holds the distilled model, as ``agentls model distill`` leaves it."""
    target = folder / "models" / DISTILLED_MODEL_NAME
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        target.symlink_to(distilled_model, target_is_directory=True)
    return folder


def bench_env(cache_dir: Path) -> dict[str, str]:
    """An environment in which no Hugging Face cache holds the default model: the distilled one is used."""
    return {"HF_HUB_CACHE": str(cache_dir / "no-hub"), "HF_HUB_OFFLINE": "1"}


@dataclass(frozen=True, slots=True)
class EmbeddedIndex:
    """A workspace, its cache dir and the index built of it (by a child process)."""

    root: Path
    cache_dir: Path
    run: ChildRun

    def open(self, settings: IndexSettings | None = None) -> WorkspaceIndex:
        return WorkspaceIndex(
            self.root, settings or IndexSettings(), cache_dir=self.cache_dir, env=bench_env(self.cache_dir)
        )

    def clone(self, dest: Path) -> EmbeddedIndex:
        """A private copy of the workspace (mtimes kept) and of its index, to edit freely."""
        location = self.open().location
        root = corpora.copy_tree(self.root, dest / self.root.name)
        cache = dest / "cache"
        model_cache(cache, (self.cache_dir / "models" / DISTILLED_MODEL_NAME).resolve())
        clone = EmbeddedIndex(root, cache, self.run)
        shutil.copytree(location, clone.open().location, symlinks=True)
        return clone


@pytest.fixture(scope="session")
def django_embedded(
    django_corpus: corpora.Corpus, distilled_model: Path, bench_tmp: Path
) -> Iterator[EmbeddedIndex]:
    """Django indexed from scratch with the default static embedder, in a child process."""
    root = corpora.copy_tree(django_corpus.root, bench_tmp / "django-embedded" / django_corpus.name)
    cache = model_cache(bench_tmp / "django-embedded" / "cache", distilled_model)
    run = index_in_child(root, cache, lexical=False, workdir=bench_tmp, env=bench_env(cache))
    yield EmbeddedIndex(root, cache, run)
