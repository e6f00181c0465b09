"""(doc comment, code) pairs from a folder of source code, for training a code-aware embedding model.

`folder_pairs(folder)` walks a folder, chunks each source file with agentls' own chunker
(`indexing.chunker.parse_source`, the chunks the index embeds) and yields a `CodePair` for each named
definition with a doc comment: the doc comment, the chunk's code with the doc comment taken out, the
defined name, the language, the project (`package`: the path's first folder under the given folder, or
the first two when the first is a language or scope folder such as ``python`` or ``@babel``) and the
path relative to the folder. The pair's code side is what the index would embed
(`indexing.service.embedding_text`: path, qualified name, code) minus the doc, so a model trained on
pairs learns the doc comment's words from the code alone.

The 13 retrieval benchmark repositories never enter: a path with a folder named like one of their
projects or packages (``requests``, ``express``, ``serde_json``, ``serde-json``...) is skipped, which also
drops vendored copies such as ``pip/_vendor/requests``. `write_pairs` writes JSON lines, one object per
pair with the keys ``doc``, ``code``, ``name``, ``language``, ``package``, ``path``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from indexing.chunker import parse_source
from indexing.languages import detect_language
from indexing.models import ParseLimits

__all__ = ["BENCHMARK_PROJECTS", "CodePair", "code_without_doc", "doc_summary", "folder_pairs", "write_pairs"]

BENCHMARK_PROJECTS = frozenset(
    "requests click express axios query-core @tanstack tanstack immer cobra spf13 gin gin-gonic "
    "serde_json serde-json rayon rayon-core rack monolog psr7 guzzlehttp".split()
)
"""Folder names of the retrieval benchmark's projects and packages (tests/benchmarks/retrieval/repos.py
names the repositories; kept here so the library does not import the tests). A path with any folder of
these names (case-insensitive) gives no pairs."""

LANGUAGES = frozenset({"python", "javascript", "typescript", "tsx", "go", "rust", "ruby", "php", "java"})
_GROUP_FOLDERS = frozenset({"python", "node", "go", "rust", "ruby", "php", "ts", "js", "java"})
_SKIP_DIRS = frozenset({".git", "__pycache__", "node_modules", "test", "tests", "testdata", "vendor", "dist"})
_LIMITS = ParseLimits(
    max_file_bytes=512_000, max_line_chars=2_000, chunk_max_lines=120, window_lines=60, window_overlap=10
)
_PY_DOCSTRING = re.compile(r'^(\s*)[rRbBuU]?("""|\'\'\')[\s\S]*?\2[ \t]*\n?', re.MULTILINE)
_COMMENT_LINE = re.compile(r"^\s*(?://|/\*|\*|#(?![!\[])|--)")
_DOC_MIN_CHARS = 12


@dataclass(frozen=True)
class CodePair:
    doc: str
    code: str
    name: str
    language: str
    package: str
    path: str


def _benchmark_path(parts: Iterable[str]) -> bool:
    return any(part.lower() in BENCHMARK_PROJECTS for part in parts)


def code_without_doc(text: str, language: str) -> str:
    """A chunk's text without its doc comment: Python's first docstring; otherwise the comment lines
    above the definition (the chunker puts them at the chunk's top). Other comments stay."""
    if language == "python":
        return _PY_DOCSTRING.sub("", text, count=1)
    lines = text.split("\n")
    first = 0
    while first < len(lines) and (_COMMENT_LINE.match(lines[first]) or not lines[first].strip()):
        first += 1
    return "\n".join(lines[first:])


def _package(relative: tuple[str, ...]) -> str:
    head = (
        relative[:2]
        if relative and (relative[0] in _GROUP_FOLDERS or relative[0].startswith("@"))
        else relative[:1]
    )
    if len(head) == 2 and head[1].startswith("@"):
        head = relative[:3]
    return "/".join(head)


def folder_pairs(folder: Path, *, max_file_bytes: int = 512_000) -> Iterator[CodePair]:
    """The pairs of every source file under `folder` (benchmark projects, tests and vendored folders
    skipped); files that cannot be read are skipped."""
    folder = Path(folder)
    for root, dirs, files in os.walk(folder):
        relative_root = Path(root).relative_to(folder).parts
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not _benchmark_path((d,)))
        if _benchmark_path(relative_root):
            continue
        for file in sorted(files):
            path = Path(root) / file
            language = detect_language(file)
            if language not in LANGUAGES or file.endswith((".min.js", ".d.ts")):
                continue
            try:
                if path.stat().st_size > max_file_bytes:
                    continue
                text = path.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            relative = (*relative_root, file)
            rel_path = "/".join(relative)
            package = _package(relative)
            for chunk in parse_source(rel_path, text, language, _LIMITS).chunks:
                doc = chunk.doc.strip()
                if (
                    not chunk.name
                    or len(doc) < _DOC_MIN_CHARS
                    or chunk.kind in ("module", "window", "section")
                ):
                    continue
                code = code_without_doc(chunk.text, chunk.language)
                if not code.strip():
                    continue
                yield CodePair(doc, code, chunk.symbol, chunk.language, package, rel_path)


def write_pairs(pairs: Iterable[CodePair], out: IO[str]) -> int:
    """Write pairs as JSON lines (each distinct doc comment and name once); returns how many."""
    seen: set[int] = set()
    n = 0
    for pair in pairs:
        key = hash((pair.doc, pair.name))
        if key in seen:
            continue
        seen.add(key)
        out.write(json.dumps(asdict(pair)) + "\n")
        n += 1
    return n


def main(argv: list[str] | None = None) -> int:
    """``python -m indexing.code_pairs OUT.jsonl FOLDER...``: write the pairs of the folders."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(
        description="Write (doc comment, code) pairs of source folders as JSON lines."
    )
    parser.add_argument("out", type=Path)
    parser.add_argument("folders", type=Path, nargs="+")
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as out:
        n = write_pairs((p for f in args.folders for p in folder_pairs(f)), out)
    os.replace(tmp, args.out)
    sys.stderr.write(f"{n} pairs -> {args.out}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


def doc_summary(doc: str) -> str:
    """A doc comment's first paragraph, at most 300 characters: what a query paraphrases (the rest lists
    parameters and cases, whose words would pair with every name)."""
    return re.split(r"\n\s*\n", doc.strip(), maxsplit=1)[0][:300]
