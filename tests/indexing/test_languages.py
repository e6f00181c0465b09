"""Language detection, cached parsers and the query files shipped with the package."""

from __future__ import annotations

import re
from importlib import resources

import pytest
from tree_sitter import Parser

from indexing.languages import detect_language, get_parser, get_queries

QUERY_LANGUAGES = [
    "python",
    "javascript",
    "typescript",
    "tsx",
    "go",
    "rust",
    "java",
    "c",
    "cpp",
    "csharp",
    "ruby",
    "php",
]


@pytest.mark.parametrize(
    ("path", "language"),
    [
        ("pkg/mod.py", "python"),
        ("types.pyi", "python"),
        ("a/b.js", "javascript"),
        ("esm.mjs", "javascript"),
        ("common.cjs", "javascript"),
        ("View.jsx", "javascript"),
        ("x.ts", "typescript"),
        ("x.mts", "typescript"),
        ("x.cts", "typescript"),
        ("App.tsx", "tsx"),
        ("main.go", "go"),
        ("lib.rs", "rust"),
        ("Main.java", "java"),
        ("queue.c", "c"),
        ("queue.h", "c"),
        ("a.cc", "cpp"),
        ("a.cpp", "cpp"),
        ("a.cxx", "cpp"),
        ("a.hpp", "cpp"),
        ("a.hh", "cpp"),
        ("a.hxx", "cpp"),
        ("Program.cs", "csharp"),
        ("app.rb", "ruby"),
        ("Rakefile", "ruby"),
        ("index.php", "php"),
        ("README.md", "markdown"),
        ("notes.markdown", "markdown"),
        ("pyproject.toml", "toml"),
        ("ci.yml", "yaml"),
        ("ci.yaml", "yaml"),
        ("package.json", "json"),
        ("run.sh", "bash"),
        ("style.css", "css"),
        ("index.html", "html"),
        ("schema.sql", "sql"),
        ("Main.kt", "kotlin"),
        ("App.swift", "swift"),
        ("Main.scala", "scala"),
        ("init.lua", "lua"),
        ("Dockerfile", "dockerfile"),
        ("Makefile", "make"),
        ("C:\\src\\Win.CS", "csharp"),
        ("UPPER.PY", "python"),
        ("notes.unknownext", None),
        ("LICENSE", None),
        (".gitignore", None),
        ("archive.tar.gz", None),
    ],
)
def test_detect_language(path: str, language: str | None) -> None:
    assert detect_language(path) == language


def test_parsers_are_cached_per_language() -> None:
    parser = get_parser("python")
    assert isinstance(parser, Parser)
    assert get_parser("python") is parser
    assert get_parser("go") is not parser
    assert parser.parse(b"def f(): pass\n").root_node.type == "module"


@pytest.mark.parametrize("language", ["no-such-language", "text", ""])
def test_no_parser_for_unknown_languages(language: str) -> None:
    assert get_parser(language) is None
    assert get_queries(language) is None


@pytest.mark.parametrize("language", QUERY_LANGUAGES)
def test_every_language_has_compiling_chunk_and_tag_queries(language: str) -> None:
    queries = get_queries(language)
    assert queries is not None
    assert queries.has_chunks and queries.has_tags
    kinds = {kind for kind in queries.definition_kinds if kind}
    assert kinds & {"function", "method"}
    roles = {role for tags in queries.tag_captures for _, role, _ in tags}
    assert roles == {"definition", "reference"}
    assert get_queries(language) is queries  # compiled once


def test_query_files_follow_the_naming_scheme() -> None:
    names = {entry.name for entry in (resources.files("indexing") / "queries").iterdir()}
    expected = {f"{language}-{kind}.scm" for language in QUERY_LANGUAGES for kind in ("chunks", "tags")}
    assert expected <= names
    assert all(re.fullmatch(r"[a-z_]+-(chunks|tags)\.scm", name) for name in names), names


def test_tsx_inherits_the_typescript_queries() -> None:
    tsx, typescript = get_queries("tsx"), get_queries("typescript")
    assert tsx is not None and typescript is not None
    assert tsx.query.pattern_count == typescript.query.pattern_count
    assert tsx.definition_kinds == typescript.definition_kinds


def test_markdown_and_text_types_have_no_queries() -> None:
    for language in ("markdown", "toml", "yaml", "json"):
        assert get_queries(language) is None
