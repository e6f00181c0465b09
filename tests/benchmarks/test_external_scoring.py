"""The outside check's scoring (`tests.benchmarks.retrieval.external`): semble's file-level NDCG@10, where a
registry's tree sits in its project's repository, and the annotation files it reads."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests.benchmarks.retrieval.external import EXTERNAL, External, indexed_folder, load_tasks, ndcg
from tests.benchmarks.retrieval.repos import Repo


def test_ndcg_counts_each_target_file_once_at_its_first_rank() -> None:
    assert ndcg(["lib/a.js", "lib/b.js"], ["lib/a.js"]) == 1.0
    # the second chunk of a.js adds nothing; b.js at rank 3 does
    got = ndcg(["lib/a.js", "lib/a.js", "lib/b.js"], ["lib/a.js", "lib/b.js"])
    assert got == pytest.approx((1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3)))
    assert ndcg(["lib/c.js"] * 10 + ["lib/a.js"], ["lib/a.js"]) == 0.0  # rank 11 is outside the top 10
    # a path matches a target it ends with, not one that merely ends with the same letters
    assert ndcg(["x/lib/a.js"], ["lib/a.js"]) == 1.0
    assert ndcg(["lib/aa.js"], ["a.js"]) == 0.0


def _external(prefix: str) -> External:
    return External(Repo("x", "ruby", "debian", "ruby-x", "1", (".rb",)), prefix)


def test_the_indexed_folder_follows_where_the_package_sits_in_its_repository() -> None:
    # the package is the repository's lib/: index its rack/ for a benchmark root of lib/rack
    assert indexed_folder(_external("lib/"), "lib/rack") == ("rack", "lib/rack")
    # the package is the benchmark root itself (Debian's tokio crate is tokio/ of the repository)
    assert indexed_folder(_external("tokio/"), "tokio/src") == ("src", "tokio/src")
    assert indexed_folder(_external(""), "aiohttp") == ("aiohttp", "aiohttp")
    # the package holds only part of the benchmark root: index all of it, under its own path
    assert indexed_folder(_external("src/Monolog/"), "src") == ("", "src/Monolog")
    with pytest.raises(ValueError, match="outside the package"):
        indexed_folder(_external("docs/"), "src")


def test_every_registry_source_is_pinned() -> None:
    assert all(e.repo.version and e.repo.name.startswith("semble-") for e in EXTERNAL.values())


def test_annotations_are_read_with_secondary_targets_and_inferred_categories(tmp_path: Path) -> None:
    (tmp_path / "repos.json").write_text(json.dumps([{"name": "express", "language": "javascript"}]))
    (tmp_path / "express.json").write_text(
        json.dumps(
            [
                {"query": "view rendering", "relevant": ["lib/view.js"], "secondary": ["lib/application.js"]},
                {"query": "Router", "relevant": [{"path": "lib/router.js", "start_line": 1, "end_line": 9}]},
            ]
        )
    )
    tasks = load_tasks(tmp_path, ["express", "zod"])  # zod has no file: left out
    assert [(t.query, t.category, t.targets) for t in tasks] == [
        ("view rendering", "semantic", ("lib/view.js", "lib/application.js")),
        ("Router", "symbol", ("lib/router.js",)),
    ]
    with pytest.raises(SystemExit, match="no semble annotations"):
        load_tasks(tmp_path / "missing", ["express"])
