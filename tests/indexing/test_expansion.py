"""Query expansion (`indexing.expansion`): prose words of a query reach code named in other words, always
below the user's own words. Off by default; ``RankingWeights(expansion=..., expansion_lexical=...)`` or
the ``query_expansion`` setting turn it on. The table used is the packaged one (learned by
``tests/benchmarks/retrieval/expansion_table.py``); the store and index are real."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexing.config import EmbeddingSettings, IndexSettings
from indexing.expansion import expand, lexical_query, load_table
from indexing.models import Chunk, FileRecord
from indexing.ranking import _STOP, RankingWeights, analyse, rank, stem
from indexing.rows import chunks_table, symbols_table
from indexing.service import WorkspaceIndex
from indexing.store import FileBatchItem, IndexStore


def a_table_entry() -> tuple[str, str]:
    """The packaged table's strongest (prose word, code word) entry whose prose word stems to itself and
    shares no letters run with the code word (so only the table links them)."""
    entries = [
        (-weight, word, term)
        for word, terms in load_table().items()
        for term, weight in terms
        if len(word) >= 4 and word.isalpha() and stem(word) == word and word not in _STOP
        if word not in term and stem(term) not in word
    ]
    assert entries, "the packaged expansion table is empty: rebuild it (expansion_table.py --write)"
    _, word, term = min(entries)
    return word, term


def test_a_prose_word_expands_to_code_words_strongest_first_without_the_query_s_own() -> None:
    table = {"limit": (("throttle", 0.6), ("rate", 0.4), ("cap", 0.02)), "often": (("throttle", 0.3),)}
    assert expand(["limit", "often"], table=table) == (("throttle", 0.6), ("rate", 0.4))  # cap: too weak
    assert expand(["limit", stem("rate")], table=table) == (("throttle", 0.6),)  # the query holds `rate`
    assert expand(["limit"], known=[stem("throttle")], table=table) == (("rate", 0.4),)
    assert expand(["limit"], table=table, limit=1) == (("throttle", 0.6),)


def test_the_packaged_table_expands_prose_queries_and_leaves_bare_symbols_alone() -> None:
    word, term = a_table_entry()
    analysis = analyse(f"the {word}")
    assert term in dict(analysis.expansions)
    assert analysis.expanded[list(dict(analysis.expansions)).index(term)] == stem(term)
    assert analyse("Session.send").expansions == ()


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


def test_original_words_outrank_expanded_ones_and_expanded_ones_outrank_nothing() -> None:
    word, term = a_table_entry()
    rows = [
        row("a", "other", "def other(): pass", 1.0),
        row("b", f"{term}_value", f"def {term}_value(): pass", 1.0),
        row("c", f"{word}_value", f"def {word}_value(): pass", 1.0),
    ]
    query = f"the {word}"
    on = RankingWeights(learned=0.0, expansion=0.3)
    assert [c.id for c in rank(query, rows, [], 3, on)] == ["c", "b", "a"]
    # off: the expanded match counts for nothing (a tie with the unrelated chunk, broken by id)
    off = RankingWeights(learned=0.0, expansion=0.0)
    assert [c.id for c in rank(query, rows, [], 3, off)] == ["c", "a", "b"]
    ordered = rank(query, rows, [], 3, RankingWeights(expansion=0.3))  # with the learned re-scoring
    assert ordered[0].id == "c" and ordered[0].parts.get("expanded_name", 0.0) == 0.0
    assert next(c for c in ordered if c.id == "b").parts["expanded_name"] > 0


def test_expanded_words_reach_bm25_below_the_query_s_own_words(tmp_path: Path) -> None:
    store = IndexStore.open(tmp_path / "idx", root="/ws")

    def item(path: str, name: str) -> FileBatchItem:
        text = f"def {name}(): pass"
        chunk = Chunk(path, "python", "function", name, (), 1, 1, text, f"def {name}()")
        record = FileRecord(path, path, 1, 10, "python")
        return FileBatchItem(record, chunks_table([chunk]), symbols_table([]), None)

    store.write_batch([item("a.py", "limit_calls"), item("b.py", "throttle_calls"), item("c.py", "other")])
    assert [r["path"] for r in store.search_lexical("the limit", 5)] == ["a.py"]
    text = lexical_query("the limit", (("throttle", 0.6),), 0.3)
    assert text == "the limit the limit the limit throttle"
    found = store.search_lexical(text, 5)
    assert [r["path"] for r in found] == ["a.py", "b.py"]
    assert found[1]["_score"] == pytest.approx(found[0]["_score"] / 3, rel=0.1)  # a third of a query word
    assert lexical_query("the limit", (("throttle", 0.6),), 0.0) == "the limit"  # off


@pytest.mark.parametrize("on", [True, False])
def test_a_prose_query_finds_code_named_otherwise_only_when_turned_on(tmp_path: Path, on: bool) -> None:
    word, term = a_table_entry()
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "target.py").write_text(f"def {term}_helper(x):\n    return x\n")
    (workspace / "other.py").write_text("def unrelated(y):\n    return y + 1\n")
    settings = IndexSettings(embedding=EmbeddingSettings(provider="none"))
    weights = RankingWeights(expansion=0.3, expansion_lexical=0.3) if on else RankingWeights()
    index = WorkspaceIndex(workspace, settings, cache_dir=tmp_path / "cache", env={}, weights=weights)
    try:
        index.index()
        paths = [h.path for h in index.search(f"the {word}")]
    finally:
        index.close()
    assert paths == (["target.py"] if on else [])


def test_the_setting_turns_the_ranking_part_on(tmp_path: Path) -> None:
    def weights(settings: IndexSettings) -> RankingWeights:
        return WorkspaceIndex(tmp_path, settings, cache_dir=tmp_path / "cache", env={}).weights

    assert (weights(IndexSettings()).expansion, weights(IndexSettings()).expansion_lexical) == (0.0, 0.0)
    assert weights(IndexSettings(query_expansion=0.3)).expansion == 0.3
