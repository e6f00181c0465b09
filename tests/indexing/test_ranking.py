"""Hybrid ranking: fusion, code-aware boosts and de-duplication, on plain rows."""

from __future__ import annotations

import dataclasses
import random
from typing import Any

import pytest

from indexing import ranking, ranking_model
from indexing.ranking import (
    FEATURES,
    RankingWeights,
    analyse,
    features,
    fuse,
    query_words,
    rank,
    score_candidates,
    stem,
    symbol_names,
    to_hit,
)


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


def test_fusion_rewards_agreement_between_retrievers() -> None:
    lexical = [row("a", "a.py"), row("b", "b.py"), row("c", "c.py")]
    vector = [row("c", "c.py"), row("d", "d.py")]
    scores = {k: v.score for k, v in fuse(lexical, vector, RankingWeights(vector=1.0)).items()}
    # c is third lexically and first by vector: found by both, it beats a, found once at rank 1.
    assert scores["c"] > scores["a"] > scores["b"] > scores["d"] * 0.99
    assert set(fuse(lexical, vector)["c"].ranks) == {"lexical", "vector"}


def test_the_vector_list_is_normalised_by_distance_when_its_rows_carry_bm25_scores_too() -> None:
    # Every nearest chunk was a BM25 hit as well, so each row carries both scores, in opposite orders:
    # the vector leg's share must follow the distance (nearest first), not BM25's score.
    lexical = [{**row("a"), "_score": 9.0}, {**row("b"), "_score": 1.0}]
    vector = [{**row("b"), "_score": 1.0, "_distance": 0.1}, {**row("a"), "_score": 9.0, "_distance": 0.5}]
    fused = fuse(lexical, vector, RankingWeights(vector=1.0))
    assert fused["b"].parts["vector"] == 1.0
    assert fused["a"].parts["vector"] == pytest.approx(0.1)
    assert fused["a"].parts["lexical"] == 1.0


def test_exact_symbol_name_match_wins_over_better_bm25_rank() -> None:
    lexical = [row("x", "x.py", name="helper"), row("y", "y.py", name="apply_discount")]
    ranked = rank("apply_discount", lexical, [], limit=2)
    assert [c.id for c in ranked] == ["y", "x"]


def test_a_bare_name_finds_the_definition_of_that_name_before_a_member_named_so() -> None:
    method = {
        **row("m", "binding/validator.go", name="Engine", kind="method"),
        "symbol": "defaultValidator.Engine",
    }
    struct = row("s", "gin.go", name="Engine", kind="struct")
    assert [c.id for c in rank("Engine", [method, struct], [], limit=2)] == ["s", "m"]
    # a query that names the member still finds the member first
    assert rank("defaultValidator.Engine", [struct, method], [], limit=2)[0].id == "m"


def test_definitions_outrank_windows_and_module_code_at_equal_rank() -> None:
    lexical = [row("w", "w.py", kind="window"), row("f", "f.py", kind="function")]
    vector = [row("f", "f.py", kind="function"), row("w", "w.py", kind="window")]
    ranked = rank("something", lexical, vector, limit=2)
    assert ranked[0].id == "f"


def test_overlapping_chunks_of_one_file_are_deduplicated() -> None:
    lexical = [
        row("window1", "m.py", 1, 60, name="run", kind="window"),
        row("window2", "m.py", 11, 70, name="run", kind="window"),
        row("other", "n.py", 40, 60, name="run", kind="method"),
        row("apart", "m.py", 300, 320, name="later", kind="function"),
    ]
    ids = [c.id for c in rank("run", lexical, [], limit=10)]
    assert ("window1" in ids) != ("window2" in ids)
    assert {"other", "apart"} <= set(ids)


def test_a_skeleton_and_its_member_both_stay_and_the_member_ranks_first() -> None:
    lexical = [
        row("skeleton", "m.py", 1, 200, name="Big", kind="class"),
        row("method", "m.py", 40, 60, name="run", kind="method"),
    ]
    ids = [c.id for c in rank("run the big job", lexical, [], limit=10)]
    assert ids == ["method", "skeleton"]


def test_a_rust_impl_comes_right_after_the_definition_of_its_type() -> None:
    # the impl bears the type's name and holds its methods' words: it matches more of the query
    lexical = [
        row("impl", "ser.rs", 40, 120, name="PrettyFormatter", kind="impl"),
        row("struct", "ser.rs", 30, 38, name="PrettyFormatter", kind="struct"),
        row("apart", "de.rs", 1, 20, name="Deserializer", kind="struct"),
    ]
    ids = [c.id for c in rank("PrettyFormatter indent", lexical, [], limit=10)]
    assert ids[:2] == ["struct", "impl"]
    # an impl of a type of that name in another file is left where it is
    lexical[1] = row("struct", "other.rs", 30, 38, name="PrettyFormatter", kind="struct")
    assert rank("PrettyFormatter indent", lexical, [], limit=10)[0].id == "impl"


def test_stemming_matches_word_forms() -> None:
    assert stem("parsing") == stem("parser") == stem("parse") == stem("parsed")
    assert stem("cookies") == stem("cookie") and stem("proxies") == stem("proxy")
    assert stem("redirects") == stem("redirected") == stem("redirect")


def test_source_outranks_tests_and_vendored_code_at_equal_scores() -> None:
    lexical = [
        row("test", "tests/test_cart.py", name="test_total"),
        row("vendored", "vendor/lib/cart.py", name="total"),
        row("source", "shop/cart.py", name="total"),
    ]
    lexical = [{**r, "_score": 5.0} for r in lexical]
    assert rank("cart total", lexical, [], limit=3)[0].id == "source"


def test_a_symbol_query_puts_the_definition_first() -> None:
    # "struct task_struct": many chunks mention it, one defines it (found through the symbols table)
    lexical = [
        {**row(f"use{i}", f"kernel/f{i}.c", name=f"f{i}", kind="function"), "_score": 9.0 - i}
        for i in range(5)
    ]
    definition = row("def", "include/linux/sched.h", 700, 760, name="task_struct", kind="struct")
    ranked = rank("struct task_struct", lexical, [], limit=5, symbol=[definition])
    assert ranked[0].id == "def"
    assert analyse("struct task_struct").symbol == "task_struct"
    assert symbol_names("where does Session.send retry") == ["send"]


def test_words_in_the_name_and_doc_comment_count_more_than_in_the_body() -> None:
    lexical = [
        {**row("body", "a.py", name="helper"), "text": "retry backoff", "_score": 5.0},
        {**row("named", "b.py", name="compute_backoff"), "doc": "Retry delay.", "_score": 5.0},
    ]
    assert rank("retry backoff", lexical, [], limit=2)[0].id == "named"


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
    # the fusion weights alone: the learned re-scoring off
    lex_heavy = rank("q", lexical, vector, 2, RankingWeights(lexical=2.0, vector=1.0, learned=0.0))
    vec_heavy = rank("q", lexical, vector, 2, RankingWeights(lexical=1.0, vector=2.0, learned=0.0))
    assert lex_heavy[0].id == "a" and vec_heavy[0].id == "b"


def test_features_describe_each_candidate_and_weigh_rare_words_more() -> None:
    lexical = [
        {
            **row("rare", "a.py", name="compute"),
            "search_text": "compute the backoff of a request",
            "_score": 5.0,
        },
        *(
            {**row(f"common{i}", f"c{i}.py", name="send"), "search_text": "send a request", "_score": 5.0}
            for i in range(5)
        ),
    ]
    ordered, analysis = score_candidates("request backoff", lexical, [])
    rows = features(ordered, analysis)
    assert len(rows) == len(ordered) and {len(r) for r in rows} == {len(FEATURES)}
    by_id = {c.id: r for c, r in zip(ordered, rows, strict=True)}
    text_idf = FEATURES.index("text_idf")
    # both words in "rare"; only the common one in the others, which counts for less than half
    assert by_id["rare"][text_idf] == 1.0
    assert 0 < by_id["common0"][text_idf] < 0.5
    assert features(ordered, analysis, 2) == rows[:2]


def test_the_learned_model_re_scores_the_top_candidates_and_weight_zero_turns_it_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a linear part and a one-split tree, both against test files
    monkeypatch.setattr(ranking_model, "COEFFICIENTS", {"lexical": {"base": 1.0, "test": -2.0}})
    monkeypatch.setattr(ranking_model, "TREES", {"lexical": (("test", 0.5, 0.0, -10.0),)})
    ranking._model.cache_clear()
    try:
        lexical = [
            {**row("test", "tests/test_cart.py", name="total"), "_score": 9.0},
            {**row("source", "shop/cart.py", name="total"), "_score": 5.0},
        ]
        no_prior = RankingWeights(test=1.0)
        assert [c.id for c in rank("cart total", lexical, [], 2, no_prior)] == ["source", "test"]
        off = dataclasses.replace(no_prior, learned=0.0)
        assert [c.id for c in rank("cart total", lexical, [], 2, off)] == ["test", "source"]
    finally:
        ranking._model.cache_clear()


def test_the_shipped_models_name_known_features_only() -> None:
    for kind in ("hybrid", "lexical"):
        model = ranking._model(kind)  # raises on a feature FEATURES lost
        assert not model.identity and model.trees
    assert ranking_model.TOP >= 10


def test_a_qualified_symbol_query_prefers_the_chunk_qualified_alike() -> None:
    # `AxiosHeaders.set`: a bare `set` elsewhere in the file (an object literal's method) used to match
    # as fully as the class's own method, and won on its BM25 score
    lexical = [
        {**row("bare", "lib/AxiosHeaders.js", 294, 296, name="set"), "_score": 9.0},
        {
            **row("method", "lib/AxiosHeaders.js", 79, 112, name="set"),
            "symbol": "AxiosHeaders.set",
            "_score": 8.0,
        },
        {**row("other", "lib/utils.js", name="merge"), "_score": 1.0},
    ]
    lexical = [{**r, "search_text": "axios headers set"} for r in lexical]
    assert [c.id for c in rank("AxiosHeaders.set", lexical, [], limit=3)] == ["method", "bare", "other"]


def test_the_compiled_model_scores_as_a_walk_of_its_trees() -> None:
    rng = random.Random(3)
    for kind in ("hybrid", "lexical"):
        model = ranking._model(kind)
        for _ in range(200):
            row_ = [rng.choice((0.0, 1.0, rng.uniform(-3, 5))) for _ in FEATURES]
            expected = sum(c * row_[i] for i, c in model.coefficients)
            for node in model.trees:
                while not isinstance(node, float):
                    node = node[2] if row_[node[0]] <= node[1] else node[3]
                expected += model.rate * node
            assert model(row_) == expected


def _candidates(*scored: tuple[str, str, float]) -> list[ranking.Candidate]:
    return [
        ranking.Candidate(id, row(id, path, 10 * i + 1, 10 * i + 5), score=score)
        for i, (id, path, score) in enumerate(scored)
    ]


def test_by_default_one_file_does_not_fill_the_list() -> None:
    """Past a file's fourth hit, each further one scores half the one before (`RankingWeights.same_file`):
    a question about a module ("zsh shell completion generation") no longer gets ten chunks of one file."""
    scored = [(f"a{i}", "a.go", 20.0 - i) for i in range(1, 9)]
    scored += [("b1", "b.go", 11.0), ("c1", "c.go", 10.5), ("d1", "d.go", 10.0)]
    ranked = [c.id for c in ranking.deduplicate(_candidates(*scored), 8, RankingWeights())]
    # a5 (15 -> 7.5) and the later ones fall below the other files' best chunks
    assert ranked == ["a1", "a2", "a3", "a4", "b1", "c1", "d1", "a5"]


def test_a_file_with_many_good_chunks_leaves_room_for_another_file() -> None:
    scored = [("a1", "a.py", 10.0), ("a2", "a.py", 9.0), ("a3", "a.py", 8.0), ("a4", "a.py", 7.0)]
    scored.append(("b1", "b.py", 6.0))
    # the third chunk of a.py counts half (4.0), the fourth a quarter (1.75): b.py's best chunk enters
    diverse = RankingWeights(same_file=0.5, same_file_kept=2)
    ranked = ranking.deduplicate(_candidates(*scored), 3, diverse)
    assert [c.id for c in ranked] == ["a1", "a2", "b1"]
    assert [c.id for c in ranking.deduplicate(_candidates(*scored), 5, diverse)] == [
        "a1",
        "a2",
        "b1",
        "a3",
        "a4",
    ]
    # the default keeps a file's first four hits at their scores: the score order here
    in_order = ranking.deduplicate(_candidates(*scored), 3, RankingWeights())
    assert [c.id for c in in_order] == ["a1", "a2", "a3"]
    # a files view: each file once, at its best chunk, however many places are asked for
    files = ranking.deduplicate(_candidates(*scored), 10, ranking.files_view(RankingWeights()))
    assert [c.id for c in files] == ["a1", "b1"]
