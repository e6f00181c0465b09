"""Hybrid ranking: fusion, code-aware boosts and de-duplication, on plain rows."""

from __future__ import annotations

from typing import Any

from indexing.ranking import RankingWeights, fuse, query_words, rank, to_hit


def row(
    id: str, path: str = "a.py", start: int = 1, end: int = 5, name: str = "", kind: str = "function"
) -> dict[str, Any]:
    return {
        "id": id,
        "path": path,
        "start_line": start,
        "end_line": end,
        "name": name,
        "symbol": name,
        "kind": kind,
        "language": "python",
        "signature": "",
        "text": f"text of {id}",
    }


def test_query_words_split_identifiers_and_drop_stop_words() -> None:
    assert query_words("how to parseJSON the HTTPServer") == [
        "parse",
        "json",
        "parsejson",
        "http",
        "server",
        "httpserver",
    ]
    assert query_words("get_user_name") == ["get", "user", "name"]


def test_rrf_rewards_agreement_between_retrievers() -> None:
    lexical = [row("a", "a.py"), row("b", "b.py"), row("c", "c.py")]
    vector = [row("c", "c.py"), row("d", "d.py")]
    scores = {k: v.score for k, v in fuse(lexical, vector).items()}
    # c is third lexically and first by vector: found by both, it beats a, found once at rank 1.
    assert scores["c"] > scores["a"] > scores["b"] > scores["d"] * 0.99
    assert set(fuse(lexical, vector)["c"].ranks) == {"lexical", "vector"}


def test_exact_symbol_name_match_wins_over_better_bm25_rank() -> None:
    lexical = [row("x", "x.py", name="helper"), row("y", "y.py", name="apply_discount")]
    ranked = rank("apply_discount", lexical, [], limit=2)
    assert [c.id for c in ranked] == ["y", "x"]


def test_definitions_outrank_windows_and_module_code_at_equal_rank() -> None:
    lexical = [row("w", "w.py", kind="window"), row("f", "f.py", kind="function")]
    vector = [row("f", "f.py", kind="function"), row("w", "w.py", kind="window")]
    ranked = rank("something", lexical, vector, limit=2)
    assert ranked[0].id == "f"


def test_overlapping_chunks_of_one_file_are_deduplicated() -> None:
    lexical = [
        row("skeleton", "m.py", 1, 200, name="Big", kind="class"),
        row("method", "m.py", 40, 60, name="run", kind="method"),
        row("other", "n.py", 40, 60, name="run", kind="method"),
        row("apart", "m.py", 300, 320, name="later", kind="function"),
    ]
    ranked = rank("run", lexical, [], limit=10)
    ids = [c.id for c in ranked]
    assert "skeleton" not in ids or "method" not in ids
    assert {"other", "apart"} <= set(ids)


def test_limit_and_hit_conversion() -> None:
    lexical = [row(str(i), f"f{i}.py", name=f"n{i}") for i in range(20)]
    ranked = rank("n3", lexical, [], limit=5)
    assert len(ranked) == 5 and ranked[0].id == "3"
    hit = to_hit(ranked[0])
    assert (hit.path, hit.start_line, hit.symbol, hit.sources) == ("f3.py", 1, "n3", ("lexical",))
    assert hit.score > to_hit(ranked[1]).score


def test_weights_change_the_order() -> None:
    lexical = [row("a", "a.py"), row("b", "b.py")]
    vector = [row("b", "b.py"), row("a", "a.py")]
    lex_heavy = rank("q", lexical, vector, 2, RankingWeights(lexical=2.0, vector=1.0))
    vec_heavy = rank("q", lexical, vector, 2, RankingWeights(lexical=1.0, vector=2.0))
    assert lex_heavy[0].id == "a" and vec_heavy[0].id == "b"
