"""The retrieval benchmark's repositories (`tests.benchmarks.retrieval.repos.fetch`): two processes that
fetch the same repository into one cache at once both get the whole tree, and neither's tree is replaced
under it (helper B, session 26, indexed 3 of a corpus's 53 files while another run fetched it again)."""

from __future__ import annotations

import io
import multiprocessing
import os
import tarfile
from pathlib import Path
from typing import Any

from tests.benchmarks.retrieval.repos import Repo, fetch

_FILES = 1500
_REPO = Repo("demo", "python", "pypi", "demopkg", "1.0", (".py",))


def _archive(downloads: Path) -> None:
    """A local sdist where `fetch` looks before it would run ``pip download``: no network."""
    downloads.mkdir(parents=True)
    with tarfile.open(downloads / "demopkg-1.0.tar.gz", "w:gz") as tar:
        for i in range(_FILES):
            data = f"def f{i}(x):\n    return x + {i}\n".encode()
            info = tarfile.TarInfo(f"demopkg-1.0/demopkg/m{i // 100}/f{i}.py")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def _fetch_and_watch(cache: str, start: Any, fetched: Any, results: Any) -> None:
    """Fetch once both processes are ready; then, until the other one has fetched too, keep counting the
    tree this one got, as an index built from it would read it."""
    start.wait()
    try:
        corpus = fetch(_REPO, Path(cache))
        inode = os.stat(corpus.root).st_ino
    finally:
        with fetched.get_lock():
            fetched.value += 1
    fewest = corpus.files
    while True:
        last = fetched.value >= 2
        fewest = min(fewest, sum(1 for p in corpus.root.rglob("*.py") if p.is_file()))
        if last:
            break
    after = os.stat(corpus.root).st_ino if corpus.root.exists() else None
    results.put((corpus.files, len(corpus.paths()), fewest, inode, after))


def test_two_processes_fetching_one_repository_at_once_both_get_the_whole_tree(tmp_path: Path) -> None:
    """On the code before session 26's lock, both processes unpacked the archive, and the second one to
    finish deleted the first one's tree and renamed its own into place while the first was reading it:
    the first one's root was replaced (another inode) and counted fewer files than its manifest said."""
    cache = tmp_path / "cache"
    _archive(cache / "downloads")
    ctx = multiprocessing.get_context("spawn")
    start, fetched, results = ctx.Barrier(2), ctx.Value("i", 0), ctx.Queue()
    procs = [
        ctx.Process(target=_fetch_and_watch, args=(str(cache), start, fetched, results)) for _ in range(2)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=300)
        assert proc.exitcode == 0, "a fetch failed (its traceback is above)"
    got = [results.get(timeout=10) for _ in procs]
    for files, listed, fewest, inode, inode_after in got:
        assert (files, listed, fewest) == (_FILES, _FILES, _FILES)
        assert inode == inode_after, "the tree a process got was replaced while it read it"
    assert not [p.name for p in (cache / "corpora").iterdir() if p.name.startswith(".")]  # no staged left
