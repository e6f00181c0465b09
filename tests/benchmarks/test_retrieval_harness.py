"""The retrieval benchmark's index builder (`tests.benchmarks.retrieval.evaluate.open_agentls`): a hybrid
system whose model does not load stops the run, instead of scoring a lexical index as hybrid."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.benchmarks.retrieval.evaluate import ModelNotLoaded, agentls_search, open_agentls


def _workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "rates.py").write_text("def throttle(calls, per_second):\n    return calls[:per_second]\n")
    return root


def test_a_model_folder_that_does_not_load_stops_the_hybrid_system(tmp_path: Path) -> None:
    # what a fresh machine has at the path the commands named before: nothing
    missing = tmp_path / "home" / ".cache" / "agentls-test" / "models" / "distilled-minilm"
    with pytest.raises(ModelNotLoaded, match="agentls model distill"):
        open_agentls(_workspace(tmp_path), tmp_path / "cache", model_dir=missing)


def test_a_model_that_loads_gives_a_hybrid_index(tmp_path: Path, distilled_model: Path) -> None:
    index = open_agentls(_workspace(tmp_path), tmp_path / "cache", model_dir=distilled_model)
    assert index.store.has_vectors
    assert agentls_search(index, vector_only=True)("limit calls per second")


def _resolved(
    tmp_path: Path, path: str, text: str, container: tuple[str, str, int, int], symbol: dict[str, Any]
) -> tuple[int, int, int, str]:
    """(start, line, end, kind) of the annotation of ``symbol`` in a file whose only chunk row is
    ``container`` (kind, name, first and last line)."""
    from tests.benchmarks.retrieval.annotate import _resolve

    root = tmp_path / "ws"
    root.mkdir()
    (root / path).write_text(text)
    kind, name, start, end = container
    chunks = [{"path": path, "kind": kind, "symbol": name, "start_line": start, "end_line": end}]
    target = _resolve(f"{path}::{symbol.pop('spec')}", chunks, [{"path": path, **symbol}], root)
    return target["start"], target["line"], target["end"], target["kind"]


def test_a_target_without_a_chunk_of_its_own_spans_its_definition(tmp_path: Path) -> None:
    # A method of a class small enough to be one chunk has no chunk row; the symbols table ends it at its
    # name, and a one-line target could only be matched by a chunk of at most 41 lines, never by the
    # class chunk that holds it (psr7's Query.parse was annotated 20-20 for lines 9-57).
    body = "".join(f"        $x{i} = {i};\n" for i in range(60))
    text = (
        "<?php\nfinal class Query\n{\n    /**\n     * Parse a query string.\n     */\n"
        "    public static function parse(string $str): array\n    {\n"
        f"{body}        return [];\n    }}\n}}\n"
    )
    symbol = {"spec": "Query.parse", "name": "parse", "line": 7, "end_line": 7, "kind": "method"}
    assert _resolved(tmp_path, "Query.php", text, ("class", "Query", 2, 72), symbol) == (4, 7, 70, "method")


def test_a_function_nested_in_a_long_function_spans_its_definition(tmp_path: Path) -> None:
    # No chunk splits out a function nested in a function (immer's generatePatches_ in enablePatches,
    # annotated 45-45 for lines 45-70): its lines come from the syntax node that its name names.
    filler = "".join(f"\tconst c{i} = {i}\n" for i in range(160))
    text = (
        "export function enablePatches() {\n"
        f"{filler}"
        "\tfunction applyPatches_(draft: any, patches: any[]): any {\n"
        "\t\tpatches.forEach(p => draft.push(p))\n"
        "\t\treturn draft\n"
        "\t}\n"
        "}\n"
    )
    symbol = {"spec": "applyPatches_", "name": "applyPatches_", "kind": "function"}
    symbol |= {"line": 162, "column": 10, "end_line": 162}
    container = ("function", "enablePatches", 1, 166)
    assert _resolved(tmp_path, "patches.ts", text, container, symbol) == (162, 162, 165, "function")


def test_two_fresh_indexes_redact_a_secret_with_the_same_placeholder(tmp_path: Path) -> None:
    # The placeholder is keyed by the cache dir's random key; it is embedded with its chunk, so each new
    # index gave that chunk another vector and the hybrid figures moved from run to run (rack-14).
    root = tmp_path / "ws"
    root.mkdir()
    (root / "session.py").write_text(
        'def sign(data):\n    secret = "s3cr3t-Xk9pQ7vL3mN"\n    return hmac(secret, data)\n'
    )
    texts = []
    for name in ("first", "second"):
        index = open_agentls(root, tmp_path / name)
        try:
            rows = index.store.table("chunks").search().select(["search_text"]).to_list()
        finally:
            index.close()
        texts.append(sorted(str(r["search_text"]) for r in rows))
    assert "<secret:" in " ".join(texts[0]), "the value was not withheld: the test shows nothing"
    assert texts[0] == texts[1]


def test_per_query_table_keeps_each_systems_metrics_with_the_query() -> None:
    from tests.benchmarks.retrieval.evaluate import Run, Table, per_query_table

    queries = [
        {"id": "q-1", "repo": "r", "language": "go", "kind": "natural", "split": "tuning", "query": "a b"},
        {"id": "q-2", "repo": "r", "language": "go", "kind": "symbol", "split": "tuning", "query": "Ab"},
    ]
    metrics = {"ndcg": 0.5, "mrr": 1.0, "recall": 1.0}
    run = Run(Table(), {}, {"agentls-hybrid": {"q-1": metrics}, "agentls-lexical": {"q-1": metrics}})
    table = per_query_table(run, queries)
    assert list(table) == ["q-1"]
    assert table["q-1"]["kind"] == "natural" and table["q-1"]["query"] == "a b"
    assert table["q-1"]["systems"] == {"agentls-hybrid": metrics, "agentls-lexical": metrics}
