"""Learn the query-expansion table (``indexing/data/expansion.json.gz``) from (doc comment, code) pairs.

    python -m tests.benchmarks.retrieval.expansion_table PAIRS.jsonl... FOLDER... [--write]

The pairs come from code outside the retrieval benchmark: JSON-lines files (one object a line with the
doc comment in ``doc`` and the code in ``code``, the defined name in ``name`` when known, the project in
``repo``), or source folders, which are indexed lexically (agentls' own chunker, in a temporary cache)
and give a pair for each chunk with a doc comment and a name (the project: the path's first two
folders under the given folder; ``--save-pairs`` keeps them as JSON lines for the next run).

For each pair, the *prose words* are the words of the doc comment's first paragraph, stemmed as the
query analysis stems them (`indexing.ranking.stem`, stop words dropped), and the *code words* are the
sub-words of the defined name (``format_eta`` -> ``format``, ``eta``; the first identifier of the code
when no name is given).
A prose word that is also one of the pair's code words is dropped from that pair: the query already
matches such words, and the table is for the ones it does not.

A pair whose doc comment and name were seen before counts once (generated and copied code repeats
both). The association of a prose word ``w`` and a code word ``t`` over ``N`` pairs is ``P(t|w)`` times
their pointwise mutual information ``log(N c(w,t) / (c(w) c(t)))``: how often the word's doc comments
name ``t``, times how much more often than chance (``minimum`` -> ``min`` 1.6, ``remove`` -> ``strip``
0.2 on Python's standard library). A pair is kept when ``c(w,t) >= --min-pair`` in at least
``--min-projects`` projects (one project's own vocabulary is no rule), ``c(w) >=
--min-word``, ``--min-code <= c(t) <= --max-code-share N`` (``get``, ``value``: in too many names to
say anything), the PMI is at least ``log 4`` and the association at least ``--min-score``; each prose
word keeps its ``--top`` strongest code words, weighted by the association capped at 1.

The benchmark's repositories never enter (the extractor excludes them; this script also drops pairs
whose ``repo`` or ``path`` names one of them).
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import re
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from indexing.code_pairs import doc_summary
from indexing.expansion import TABLE_FILE
from indexing.ranking import _STOP, _split, stem
from tests.benchmarks.retrieval.repos import REPOS

OPTIONS = ("min_pair", "min_projects", "min_word", "min_code", "max_code_share", "min_score", "top")
OUT = Path(__file__).resolve().parents[3] / "indexing" / "data" / TABLE_FILE
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_NAME = re.compile(
    r"\b(?:def|function|func|fn|class|struct|enum|trait|interface|module|sub|type|impl)\s+"
    r"(?:\([^)]*\)\s*)?([A-Za-z_$][A-Za-z0-9_$]*)"
)
# too general to say anything about a name when they are all a doc comment has in common with it
_PROSE_STOP = _STOP | frozenset(
    "return returns given if not else all any each new set get true false none null value values "
    "function method class object param params argument arguments type string int bool list "
    "see note example e g i e use used using also only may must should would could one two "
    # English function words: they say how, not what, and pair with whatever a project names often
    "about above across after again against along already although always among another anything "
    "around because before behind below beneath beside besides between beyond both but despite down "
    "during either else ever every except few following further hence however instead least less "
    "like many more most much near neither nor off once onto other otherwise our out over own per "
    "rather same several since some such than though through throughout thus together too toward "
    "towards under unless unlike until upon very via whether while within without yet you your".split()
)
_BENCHMARK = tuple(r.name.lower() for r in REPOS) + tuple(r.package.lower() for r in REPOS)


def code_words(name: str) -> list[str]:
    """The sub-words of a defined name worth expanding to: lower-case, three letters or more."""
    return sorted({p for p in _split(name) if len(p) >= 3 and p.isalpha()})


def prose_words(doc: str) -> set[str]:
    """The stemmed content words of a doc comment."""
    out = set()
    for token in _WORD.findall(doc):
        for part in _split(token) or [token.lower()]:
            if len(part) >= 3 and part.isalpha() and part not in _PROSE_STOP:
                out.add(stem(part))
    return out


def defined_name(pair: dict[str, Any]) -> str:
    name = str(pair.get("name") or pair.get("symbol") or "")
    if name:
        return re.split(r"::|\.|#|->|\\", name)[-1]
    match = _NAME.search(str(pair.get("code") or ""))
    return match.group(1) if match else ""


def _benchmark_pair(pair: dict[str, Any]) -> bool:
    where = f"{pair.get('repo') or ''} {pair.get('path') or ''}".lower()
    return any(re.search(rf"(?:^|[/\s@-]){re.escape(b)}(?:[/\s@-]|$)", where) for b in _BENCHMARK)


def source(pair: dict[str, Any]) -> str:
    """The project a pair comes from: its ``repo`` (or ``package``), else its path's first folder."""
    named = pair.get("repo") or pair.get("package") or pair.get("project")
    return str(named) if named else str(pair.get("path") or "").strip("/").split("/", 1)[0]


def folder_pairs(folder: Path) -> Iterator[dict[str, Any]]:
    """A pair for each chunk of ``folder`` with a doc comment and a name, from a lexical index of it."""
    from indexing.config import EmbeddingSettings, IndexSettings
    from indexing.service import WorkspaceIndex

    settings = IndexSettings(embedding=EmbeddingSettings(provider="none"))
    with tempfile.TemporaryDirectory() as cache:
        index = WorkspaceIndex(folder, settings, cache_dir=Path(cache), env={})
        try:
            report = index.index()
            print(f"{folder}: {report.files_indexed} files, {report.chunks} chunks", file=sys.stderr)
            columns = ["path", "name", "doc", "kind"]
            rows = index.store.table("chunks").search().select(columns).limit(report.chunks + 1).to_list()
        finally:
            index.close()
    for row in rows:
        if row["doc"] and row["name"] and row["kind"] not in ("module", "window"):
            repo = "/".join(str(row["path"]).split("/")[:2])
            yield {"doc": row["doc"], "name": row["name"], "path": row["path"], "repo": repo}


def _pairs(source: Path) -> Iterator[dict[str, Any]]:
    if source.is_dir():
        yield from folder_pairs(source)
        return
    opener: Any = gzip.open if source.suffix == ".gz" else open
    with opener(source, "rt", encoding="utf-8") as lines:
        yield from map(json.loads, lines)


def read_pairs(sources: Sequence[Path]) -> Iterator[tuple[str, set[str], list[str]]]:
    """(project, prose words, code words) of each usable pair, each distinct (doc comment, name) once."""
    seen: set[int] = set()
    for origin in sources:
        for pair in _pairs(origin):
            if _benchmark_pair(pair):
                continue
            name = defined_name(pair)
            words = code_words(name)
            doc = doc_summary(str(pair.get("doc") or ""))
            key = hash((doc, name))
            if not words or key in seen:
                continue
            seen.add(key)
            stems = {stem(w) for w in words}
            prose = {w for w in prose_words(doc) if w not in stems}
            if prose:
                yield source(pair), prose, words


def learn(
    pairs: Iterable[tuple[str, set[str], list[str]]],
    *,
    min_pair: int = 3,
    min_projects: int = 2,
    min_word: int = 10,
    min_code: int = 5,
    max_code_share: float = 0.01,
    min_score: float = 0.05,
    top: int = 6,
) -> tuple[dict[str, list[tuple[str, float]]], int]:
    """The table (prose word -> [(code word, weight)], strongest first) and the number of pairs read."""
    n = 0
    prose_count: Counter[str] = Counter()
    code_count: Counter[str] = Counter()
    joint: Counter[tuple[str, str]] = Counter()
    projects: dict[tuple[str, str], set[str]] = {}  # up to `min_projects` of the projects a pair is seen in
    for project, prose, code in pairs:
        n += 1
        prose_count.update(prose)
        code_count.update(code)
        for key in ((w, t) for w in prose for t in code):
            joint[key] += 1
            seen = projects.setdefault(key, set())
            if len(seen) < min_projects:
                seen.add(project)
    table: dict[str, list[tuple[str, float]]] = {}
    for (w, t), c in joint.items():
        if c < min_pair or prose_count[w] < min_word or not min_code <= code_count[t] <= max_code_share * n:
            continue
        if len(projects[w, t]) < min_projects:
            continue
        pmi = math.log(n * c / (prose_count[w] * code_count[t]))
        score = c / prose_count[w] * pmi
        if pmi >= math.log(4) and score >= min_score:
            table.setdefault(w, []).append((t, round(min(score, 1.0), 3)))
    for terms in table.values():
        terms.sort(key=lambda kv: (-kv[1], kv[0]))
        del terms[top:]
    return table, n


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "pairs", type=Path, nargs="+", help="JSON-lines files of pairs (.jsonl, .jsonl.gz) or source folders"
    )
    parser.add_argument("--min-pair", type=int, default=3)
    parser.add_argument("--min-projects", type=int, default=2)
    parser.add_argument("--min-word", type=int, default=10)
    parser.add_argument("--min-code", type=int, default=5)
    parser.add_argument("--max-code-share", type=float, default=0.01)
    parser.add_argument("--min-score", type=float, default=0.05)
    parser.add_argument("--top", type=int, default=6)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--write", action="store_true", help=f"write the table to --out (default {OUT})")
    parser.add_argument("--show", help="comma-separated prose words to print the expansions of")
    parser.add_argument("--save-pairs", type=Path, help="write the pairs of the source folders here")
    args = parser.parse_args(argv)
    if args.save_pairs:
        with args.save_pairs.open("w", encoding="utf-8") as out:
            for folder in (p for p in args.pairs if p.is_dir()):
                out.writelines(json.dumps(pair) + "\n" for pair in folder_pairs(folder))
        args.pairs = [p for p in args.pairs if not p.is_dir()] + [args.save_pairs]
    table, n = learn(read_pairs(args.pairs), **{k: getattr(args, k) for k in OPTIONS})
    entries = sum(len(v) for v in table.values())
    print(f"{n} pairs, {len(table)} prose words, {entries} entries", file=sys.stderr)
    for word in filter(None, (args.show or "").split(",")):
        print(f"{word} ({stem(word)}): {table.get(stem(word), [])}", file=sys.stderr)
    if args.write:
        data = {
            "version": 1,
            "source": f"{n} (doc comment, code) pairs; {' '.join(p.name for p in args.pairs)}",
            "options": {k: getattr(args, k) for k in OPTIONS},
            "table": dict(sorted(table.items())),
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_bytes(gzip.compress(json.dumps(data, separators=(",", ":")).encode(), mtime=0))
        print(f"wrote {args.out} ({args.out.stat().st_size} bytes)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
