"""Query expansion (`indexing.expansion`): prose words of a query reach code named in other words, always
below the user's own words, and ``RankingWeights(expansion=0)`` turns it off. The table used is the
packaged one (learned by ``tests/benchmarks/retrieval/expansion_table.py``); the store and index are real."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexing.expansion import expand, lexical_query, load_table
from indexing.models import Chunk, FileRecord
from indexing.ranking import _STOP, stem
from indexing.rows import chunks_table, symbols_table
from indexing.store import FileBatchItem, IndexStore


def a_table_entry() -> tuple[str, str]:
    """A prose word of the packaged table that stems to itself, and the code word it expands to first."""
    for word, terms in sorted(load_table().items()):
        if len(word) >= 4 and word.isalpha() and stem(word) == word and word not in _STOP:
            term = terms[0][0]
            if word not in term and stem(term) not in word:
                return word, term
    raise AssertionError("the packaged expansion table is empty: rebuild it (expansion_table.py --write)")


def test_a_prose_word_expands_to_code_words_strongest_first_without_the_query_s_own() -> None:
    table = {"limit": (("throttle", 0.6), ("rate", 0.4), ("cap", 0.02)), "often": (("throttle", 0.3),)}
    assert expand(["limit", "often"], table=table) == (("throttle", 0.6), ("rate", 0.4))  # cap: too weak
    assert expand(["limit", stem("rate")], table=table) == (("throttle", 0.6),)  # the query holds `rate`
    assert expand(["limit"], known=[stem("throttle")], table=table) == (("rate", 0.4),)
    assert expand(["limit"], table=table, limit=1) == (("throttle", 0.6),)


def row(id_: str, name: str, text: str, score: float) -> dict[str, object]:
    return {
        "id": id_,
        "path": f"src/{id_}.py",
        "start_line": 1,
        "end_line": 3,
        "kind": "function",
        "name": name,
        "symbol": name,
        "text": text,
        "_score": score,
    }


def test_expanded_words_reach_bm25_below_the_query_s_own_words(tmp_path: Path) -> None:
    store = IndexStore.open(tmp_path / "idx", root="/ws")

    def item(path: str, name: str) -> FileBatchItem:
        text = f"def {name}(): pass"
        chunk = Chunk(path, "python", "function", name, (), 1, 1, text, f"def {name}()")
        record = FileRecord(path, path, 1, 10, "python")
        return FileBatchItem(record, chunks_table([chunk]), symbols_table([]), None)

    store.write_batch(
        [item("a.py", "limit_calls"), item("b.py", "throttle_calls"), item("c.py", "unrelated")]
    )
    assert [r["path"] for r in store.search_lexical("the limit", 5)] == ["a.py"]
    text = lexical_query("the limit", (("throttle", 0.6),), 0.3)
    assert text == "the limit the limit the limit throttle"
    found = store.search_lexical(text, 5)
    assert [r["path"] for r in found] == ["a.py", "b.py"]
    assert found[1]["_score"] == pytest.approx(found[0]["_score"] / 3, rel=0.1)  # a third of a query word
    assert lexical_query("the limit", (("throttle", 0.6),), 0.0) == "the limit"  # off
