"""Pseudo-queries for `learn`: training queries from outside the 13 benchmark repositories.

The CodeSearchNet protocol of ``tests/benchmarks/test_retrieval_quality.py``, reused: functions of
Django's ``django/`` (not one of the benchmark's repositories) whose docstring's first sentence has a few
words; the query is that sentence, the answer (grade 3) the function, and a copy of Django in which those
docstrings are removed is indexed with the given static model, so the answer cannot be found by its own
doc comment. Each query is searched once and the candidate lists `rank` was given are kept, as
``learn dump`` keeps the tuning split's (``CACHE/learn-pseudo-django.pkl``: the query dicts and the
captured candidates), for ``learn fit --pseudo N``::

    python -m tests.benchmarks.retrieval.pseudo --model ~/.cache/agentls-test/models/distilled-minilm

The queries' repository is ``django``, so a leave-one-repository-out fold on the tuning split always
trains on all of them and never on the held-out fold's repository.
"""

from __future__ import annotations

import argparse
import pickle
import random
import shutil
from pathlib import Path
from typing import Any

from indexing.config import IndexSettings
from tests.benchmarks import corpora
from tests.benchmarks.harness import corpus_functions
from tests.benchmarks.retrieval.evaluate import open_agentls
from tests.benchmarks.retrieval.learn import CACHE, PSEUDO, capture
from tests.benchmarks.test_retrieval_quality import SEED, _cases, _eligible, _strip_docstrings


def build(model: Path, sample: int) -> tuple[list[dict[str, Any]], dict[str, tuple[Any, ...]]]:
    """The pseudo-queries (in `evaluate`'s query format) and their captured candidates."""
    corpus = corpora.django(CACHE)
    pool = _eligible(corpus_functions(corpus.root))
    chosen = random.Random(SEED).sample(pool, min(sample, len(pool)))
    work = CACHE / "pseudo-django"
    root = work / "stripped"
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(corpus.root, root)
    _strip_docstrings(root, chosen)
    queries = [
        {
            "id": f"django-pseudo-{n}",
            "repo": "django",
            "language": "python",
            "kind": "pseudo",
            "query": case.query,
            "targets": [
                {
                    "path": case.function.path,
                    "symbol": case.function.qualname,
                    "line": case.function.line,
                    "start": case.target_start,
                    "end": case.target_end,
                    "kind": case.target_kind,
                    "grade": 3,
                }
            ],
        }
        for n, case in enumerate(_cases(root, chosen, IndexSettings()))
    ]
    index = open_agentls(root, work / "index", model_dir=model)
    try:
        return queries, capture(index, queries)
    finally:
        index.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="a static model folder")
    parser.add_argument("--sample", type=int, default=2000, help="queries drawn (seeded)")
    args = parser.parse_args(argv)
    queries, captured = build(args.model, args.sample)
    PSEUDO.write_bytes(pickle.dumps((queries, captured)))
    print(f"{len(queries)} pseudo-queries -> {PSEUDO}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
