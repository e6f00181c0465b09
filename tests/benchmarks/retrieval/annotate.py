"""Compile the hand-written query files (``queries/<repo>.txt``) into ``queries.json``, the frozen set the
benchmark scores.

A query file has one query a line: ``kind | query | target; target; ...`` where kind is ``sym``
(a symbol as a developer would type it), ``nl`` (natural language) or ``mixed`` (words and an identifier),
and a target is ``path::Qualified.name`` (the defining chunk, grade 3) or the same followed by ``~1``
(closely related, grade 1); ``@LINE`` after the name picks one of several definitions of that name.

Targets are resolved once, here, to the line range of the definition, from the index's chunk rows of
that name (a definition without a chunk of its own, such as a method of a small class, from the file
parsed with every definition split out, `indexing.definitions`), and written with their path, name, the
line that names the definition and its line range: the scorer matches hits by path and lines, so a change
of chunking does not invalidate the annotations, and the pinned package versions keep the lines where
they are. Each query gets a fixed split, from a hash
of its repository and text: 60% ``tuning`` (ranking work may look at it), 40% ``held_out`` (scored only to
report).

Run ``python -m tests.benchmarks.retrieval.annotate`` after editing a query file.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from indexing.config import EmbeddingSettings, IndexSettings
from indexing.definitions import definition_chunks
from indexing.languages import detect_language, get_parser
from indexing.service import WorkspaceIndex
from tests.benchmarks.retrieval.repos import BY_NAME, fetch

HERE = Path(__file__).resolve().parent
QUERY_DIR = HERE / "queries"
QUERIES_FILE = HERE / "queries.json"
KINDS = {"sym": "symbol", "nl": "natural", "mixed": "mixed"}
_TARGET = re.compile(r"^(?P<path>[^:]+)::(?P<name>[^@~]+)(?:@(?P<line>\d+))?(?:~(?P<grade>1))?$")


def split_of(repo: str, query: str) -> str:
    digest = hashlib.sha1(f"{repo}\n{query}".encode()).digest()
    return "tuning" if digest[0] % 10 < 6 else "held_out"


def _definitions(index: WorkspaceIndex) -> tuple[list[dict[str, Any]], list[Any]]:
    chunks = (
        index.store._tables["chunks"]
        .search()
        .select(["path", "kind", "symbol", "start_line", "end_line"])
        .limit(1_000_000)
        .to_arrow()
        .to_pylist()
    )
    symbols = index.store._tables["symbols"].search().where("role = 'definition'").limit(1_000_000)
    return chunks, symbols.to_arrow().to_pylist()


def _resolve(
    spec: str, chunks: list[dict[str, Any]], symbols: list[dict[str, Any]], root: Path
) -> dict[str, Any]:
    m = _TARGET.match(spec.strip())
    if not m:
        raise ValueError(f"bad target {spec!r}")
    path, name, line = m["path"], m["name"].strip(), m["line"]
    grade = 1 if m["grade"] else 3
    short = re.split(r"[.:#]", name)[-1]
    rows = [c for c in chunks if c["path"] == path and c["symbol"] == name and c["kind"] != "module"]
    if line:
        rows = [c for c in rows if c["start_line"] <= int(line) <= c["end_line"]] or rows
    if rows:
        start = min(c["start_line"] for c in rows)
        # windows of one long definition are consecutive; a second definition of the name is not
        first = min(rows, key=lambda c: c["start_line"])
        end = max(c["end_line"] for c in rows if c["kind"] == first["kind"] and _contiguous(rows, c))
        kind = first["kind"]
    else:
        found = [s for s in symbols if s["path"] == path and s["name"] == short]
        if line:
            found = [s for s in found if s["line"] <= int(line) <= s["end_line"]] or found
        if not found:
            raise ValueError(f"{spec}: no definition of {short!r} in {path}")
        best = min(found, key=lambda s: s["line"])
        start, end, kind = _extent(root, path, best)
    # the line that names the definition: what a hit must hold (a chunk may start at its doc comment)
    named = [
        s["line"] for s in symbols if s["path"] == path and s["name"] == short and start <= s["line"] <= end
    ]
    line_no = min(named) if named else start
    return {
        "path": path,
        "symbol": name,
        "line": line_no,
        "start": start,
        "end": end,
        "kind": kind,
        "grade": grade,
    }


def _extent(root: Path, path: str, symbol: dict[str, Any]) -> tuple[int, int, str]:
    """Lines and kind of a definition that has no chunk of its own (a method of a class small enough to be
    one chunk): its chunk when every definition is split out (`indexing.definitions`). The symbols table
    ends a definition at its name, and a one-line target can only be matched by a chunk of at most 41
    lines (``evaluate._matches``): the class chunk holding the method would never count."""
    text = (root / path).read_text(encoding="utf-8", errors="replace")
    chunks = definition_chunks(path, text, detect_language(path))
    line = symbol["line"]
    own = [
        c
        for c in chunks
        if c.kind != "module" and c.name == symbol["name"] and c.start_line <= line <= c.end_line
    ]
    if not own:
        return (*_named_node_lines(text, path, symbol), symbol["kind"])
    best = min(own, key=lambda c: c.end_line - c.start_line)
    return best.start_line, best.end_line, best.kind


def _named_node_lines(text: str, path: str, symbol: dict[str, Any]) -> tuple[int, int]:
    """Lines of the syntax node that the symbol's name names (the name node's parent), for a definition
    that no chunk splits out even with every container split (a function nested in a long function,
    such as immer's ``generatePatches_`` in ``enablePatches``); the symbol's own lines when there is no
    parse."""
    language = detect_language(path)
    parser = get_parser(language) if language else None
    if parser is None:
        return symbol["line"], symbol["end_line"]
    # the symbols' columns count code points; tree-sitter's count bytes
    row = symbol["line"] - 1
    prefix = text.split("\n")[row][: symbol["column"]]
    column = len(prefix.encode("utf-8"))
    node = parser.parse(text.encode("utf-8")).root_node.descendant_for_point_range(
        (row, column), (row, column)
    )
    if node is None or node.parent is None:
        return symbol["line"], symbol["end_line"]
    definition = node.parent
    return definition.start_point.row + 1, max(definition.end_point.row + 1, symbol["end_line"])


def _contiguous(rows: list[dict[str, Any]], row: dict[str, Any]) -> bool:
    """Whether ``row`` belongs to the run of overlapping windows that starts at the first row."""
    ordered = sorted(rows, key=lambda c: c["start_line"])
    end = ordered[0]["end_line"]
    for c in ordered[1:]:
        if c["start_line"] > end + 1:
            break
        end = max(end, c["end_line"])
    return row["start_line"] <= end


def compile_queries(cache: Path) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    errors: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for qfile in sorted(QUERY_DIR.glob("*.txt")):
            repo = BY_NAME[qfile.stem]
            corpus = fetch(repo, cache)
            settings = IndexSettings(embedding=EmbeddingSettings(provider="none"))
            index = WorkspaceIndex(corpus.root, settings, cache_dir=Path(tmp))
            index.index()
            chunks, symbols = _definitions(index)
            for n, line in enumerate(qfile.read_text().splitlines(), 1):
                if not line.strip() or line.startswith("#"):
                    continue
                kind, query, targets = (p.strip() for p in line.split("|"))
                try:
                    resolved = [_resolve(t, chunks, symbols, corpus.root) for t in targets.split(";")]
                except ValueError as exc:
                    errors.append(f"{qfile.name}:{n}: {exc}")
                    continue
                out.append(
                    {
                        "id": f"{repo.name}-{n}",
                        "repo": repo.name,
                        "language": repo.language,
                        "kind": KINDS[kind],
                        "split": split_of(repo.name, query),
                        "query": query,
                        "targets": resolved,
                    }
                )
            index.close()
    if errors:
        raise SystemExit("unresolved targets:\n" + "\n".join(errors))
    return out


def main(argv: list[str]) -> int:
    cache = Path(argv[0]) if argv else Path.home() / ".cache" / "agentls-bench"
    queries = compile_queries(cache)
    QUERIES_FILE.write_text("[\n" + ",\n".join(json.dumps(q) for q in queries) + "\n]\n")
    print(f"{len(queries)} queries -> {QUERIES_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
