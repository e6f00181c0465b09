"""Which language a file is written in, and the tree-sitter machinery for it.

- `detect_language` maps a path to a language name by file name or extension. Names are those of
  tree-sitter-language-pack where a grammar exists (``python``, ``tsx``, ``csharp``, ``bash`` ...), so
  the name doubles as the grammar key. Text types without a chunk query (toml, yaml, json ...) still get
  a name so the store can record it; the chunker gives them line windows.
- `get_parser` and `get_queries` build their objects once per process and per language (grammars ship
  inside tree-sitter-language-pack 0.13, nothing is downloaded). Parsers are not thread-safe: use them
  from one thread, or one process per worker as the indexer does.
- `LanguageTraits` holds the few conventions the chunker cannot read from a query: how doc comments look,
  which lines above a definition are attributes or decorators, and how an elided body is written.

Queries live in ``indexing/queries/<language>-chunks.scm`` and ``<language>-tags.scm``. The chunks query
marks definitions (``@definition.<kind>`` on the node, ``@name`` on its name; optional ``@outer`` for a
wrapper that belongs to the chunk such as a decorator list or ``export``, ``@body`` when the body is not
the node's ``body`` field, ``@scope`` for a qualifying name written outside, e.g. a Go receiver). The tags
query marks names with ``@name.definition.<kind>`` or ``@name.reference.<kind>``. Both are compiled into
one query so that each file is traversed once.
"""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass
from importlib import resources

from tree_sitter import Language, Parser, Query

logger = logging.getLogger(__name__)

_EXTENSIONS: dict[str, str] = {
    # Languages with chunk and tags queries.
    ".py": "python",
    ".pyi": "python",
    ".pyw": "python",
    ".js": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".jsx": "javascript",
    ".ts": "typescript",
    ".mts": "typescript",
    ".cts": "typescript",
    ".tsx": "tsx",
    ".go": "go",
    ".rs": "rust",
    ".java": "java",
    ".c": "c",
    ".h": "c",
    ".cc": "cpp",
    ".cpp": "cpp",
    ".cxx": "cpp",
    ".c++": "cpp",
    ".hpp": "cpp",
    ".hh": "cpp",
    ".hxx": "cpp",
    ".h++": "cpp",
    ".ipp": "cpp",
    ".cs": "csharp",
    ".rb": "ruby",
    ".rake": "ruby",
    ".gemspec": "ruby",
    ".php": "php",
    ".md": "markdown",
    ".markdown": "markdown",
    ".mdx": "markdown",
    # Named so the store can tell them apart; chunked by line windows.
    ".toml": "toml",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".json": "json",
    ".jsonc": "json",
    ".json5": "json",
    ".sh": "bash",
    ".bash": "bash",
    ".zsh": "bash",
    ".fish": "fish",
    ".ps1": "powershell",
    ".css": "css",
    ".scss": "scss",
    ".sass": "scss",
    ".less": "css",
    ".html": "html",
    ".htm": "html",
    ".xml": "xml",
    ".svg": "xml",
    ".vue": "vue",
    ".svelte": "svelte",
    ".sql": "sql",
    ".kt": "kotlin",
    ".kts": "kotlin",
    ".swift": "swift",
    ".scala": "scala",
    ".sc": "scala",
    ".lua": "lua",
    ".pl": "perl",
    ".pm": "perl",
    ".r": "r",
    ".dart": "dart",
    ".ex": "elixir",
    ".exs": "elixir",
    ".erl": "erlang",
    ".hrl": "erlang",
    ".hs": "haskell",
    ".ml": "ocaml",
    ".mli": "ocaml_interface",
    ".clj": "clojure",
    ".cljs": "clojure",
    ".el": "elisp",
    ".jl": "julia",
    ".zig": "zig",
    ".nim": "nim",
    ".groovy": "groovy",
    ".gradle": "groovy",
    ".m": "objc",
    ".mm": "objc",
    ".proto": "proto",
    ".graphql": "graphql",
    ".gql": "graphql",
    ".tf": "hcl",
    ".hcl": "hcl",
    ".nix": "nix",
    ".vim": "vim",
    ".ini": "ini",
    ".cfg": "ini",
    ".rst": "rst",
    ".tex": "latex",
    ".txt": "text",
    ".cmake": "cmake",
    ".mk": "make",
    ".dockerfile": "dockerfile",
    # Cut at their own structure by the chunker (indexing.chunker): labels, device-tree nodes.
    ".s": "asm",
    ".asm": "asm",
    ".dts": "devicetree",
    ".dtsi": "devicetree",
    ".dtso": "devicetree",
}

_FILE_NAMES: dict[str, str] = {
    "dockerfile": "dockerfile",
    "containerfile": "dockerfile",
    "makefile": "make",
    "gnumakefile": "make",
    "cmakelists.txt": "cmake",
    "rakefile": "ruby",
    "gemfile": "ruby",
    "vagrantfile": "ruby",
    "podfile": "ruby",
    "brewfile": "ruby",
    "go.mod": "gomod",
    "go.sum": "gosum",
    "pipfile": "toml",
    ".bashrc": "bash",
    ".bash_profile": "bash",
    ".profile": "bash",
    ".zshrc": "bash",
    "readme": "markdown",
}


def detect_language(path: str) -> str | None:
    """The language of `path` judged by its file name or extension, or None when unknown.

    >>> detect_language("src/app/main.tsx")
    'tsx'
    >>> detect_language("Makefile")
    'make'
    >>> detect_language("arch/arm64/Kconfig.platforms"), detect_language("arch/x86/lib/memcpy_64.S")
    ('kconfig', 'asm')
    >>> detect_language("notes.unknownext") is None
    True
    """
    name = path.replace("\\", "/").rsplit("/", 1)[-1].lower()  # PurePosixPath costs 10 us a file
    by_name = _FILE_NAMES.get(name)
    if by_name is not None:
        return by_name
    if name.startswith("kconfig"):  # Kconfig, Kconfig.debug, Kconfig.platforms ...
        return "kconfig"
    dot = name.rfind(".")
    if dot <= 0:  # no extension, or a dotfile such as ".gitignore"
        return None
    return _EXTENSIONS.get(name[dot:])


@functools.cache
def get_language(language: str) -> Language | None:
    """The tree-sitter grammar for `language`, or None when tree-sitter-language-pack has none."""
    from tree_sitter_language_pack import get_language as _pack_language

    try:
        return _pack_language(language)  # type: ignore[arg-type]
    except (LookupError, ValueError, OSError):
        return None


@functools.cache
def get_parser(language: str) -> Parser | None:
    """A parser for `language`, built once per process; None when there is no grammar."""
    grammar = get_language(language)
    return Parser(grammar) if grammar is not None else None


_INHERITS = re.compile(r"^;\s*inherits:\s*([\w,\s]+?)\s*$", re.MULTILINE)


def _query_source(language: str, kind: str, depth: int = 0) -> str | None:
    """The text of a query file, with the files it names in ``; inherits: a, b`` lines prepended."""
    try:
        text = (resources.files("indexing") / "queries" / f"{language}-{kind}.scm").read_text("utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return None
    match = _INHERITS.search(text)
    if match is None or depth > 3:
        return text
    inherited = [_query_source(name.strip(), kind, depth + 1) or "" for name in match.group(1).split(",")]
    return "\n".join((*inherited, text))


_CAPTURE = re.compile(r"@([A-Za-z_][\w.]*)")


@dataclass(frozen=True, slots=True)
class PatternInfo:
    """What one pattern of the compiled query yields."""

    definition_kind: str | None  # set for chunk patterns: the ``<kind>`` of ``@definition.<kind>``
    definition_capture: str  # ``definition.<kind>``, "" for tag patterns
    tags: tuple[tuple[str, str, str], ...]  # (capture name, role, kind) of each ``@name.<role>.<kind>``


@dataclass(frozen=True, slots=True)
class CompiledQueries:
    """The chunks and tags queries of a language, compiled together into one query.

    The per-pattern tuples are indexed by the pattern index that `QueryCursor.matches` reports, so the
    chunker dispatches each match with two tuple lookups.
    """

    query: Query
    patterns: tuple[PatternInfo, ...]
    definition_kinds: tuple[str | None, ...]  # ``<kind>`` of a chunk pattern's ``@definition.<kind>``
    definition_captures: tuple[str, ...]  # ``definition.<kind>``, "" for tag patterns
    tag_captures: tuple[tuple[tuple[str, str, str], ...], ...]  # (capture, role, kind) of tag patterns
    single_tags: tuple[tuple[str, str, bool] | None, ...]
    """For tag patterns with one capture name (nearly all): (capture, kind, is_reference); else None."""
    has_chunks: bool
    has_tags: bool


def _pattern_info(text: str) -> PatternInfo:
    definition_kind: str | None = None
    definition_capture = ""
    tags: list[tuple[str, str, str]] = []
    for capture in dict.fromkeys(_CAPTURE.findall(text)):
        parts = capture.split(".")
        if len(parts) == 2 and parts[0] == "definition":
            definition_kind, definition_capture = parts[1], capture
        elif len(parts) == 3 and parts[0] == "name" and parts[1] in ("definition", "reference"):
            tags.append((capture, parts[1], parts[2]))
    return PatternInfo(definition_kind, definition_capture, tuple(tags))


@functools.cache
def get_queries(language: str) -> CompiledQueries | None:
    """The compiled chunks + tags query for `language`, or None when it has neither query file.

    A query that fails to compile against the installed grammar is logged and treated as absent, so a
    grammar upgrade degrades to line windows instead of breaking indexing.
    """
    grammar = get_language(language)
    if grammar is None:
        return None
    chunks = _query_source(language, "chunks") or ""
    tags = _query_source(language, "tags") or ""
    if not chunks and not tags:
        return None
    source = chunks + "\n" + tags
    try:
        query = Query(grammar, source)
    except Exception as error:  # tree_sitter.QueryError, or a grammar/ABI mismatch
        logger.error("query for %s does not compile (%s); files fall back to line windows", language, error)
        return None
    patterns = tuple(
        _pattern_info(source[query.start_byte_for_pattern(i) : query.end_byte_for_pattern(i)])
        for i in range(query.pattern_count)
    )
    return CompiledQueries(
        query=query,
        patterns=patterns,
        definition_kinds=tuple(p.definition_kind for p in patterns),
        definition_captures=tuple(p.definition_capture for p in patterns),
        tag_captures=tuple(p.tags for p in patterns),
        single_tags=tuple(
            (p.tags[0][0], p.tags[0][2], p.tags[0][1] == "reference") if len(p.tags) == 1 else None
            for p in patterns
        ),
        has_chunks=any(p.definition_kind for p in patterns),
        has_tags=any(p.tags for p in patterns),
    )


@dataclass(frozen=True, slots=True)
class LanguageTraits:
    """Conventions of a language that the chunker reads from text lines rather than from the tree."""

    line_comments: tuple[str, ...] = ("//",)
    """Prefixes of line comments."""
    block_comments: bool = True
    """Whether ``/* ... */`` comments exist."""
    doc_line_prefixes: tuple[str, ...] = ()
    """Line-comment prefixes that make a doc comment (``///``, ``//`` for Go, ``#`` for Ruby)."""
    doc_block: bool = True
    """Whether ``/** ... */`` above a definition is its doc comment."""
    doc_any_block: bool = False
    """Whether a plain ``/* ... */`` above a definition is its doc comment too (C: kernel style)."""
    docstring: bool = False
    """Python: the doc is the first string of the body."""
    attribute_prefixes: tuple[str, ...] = ()
    """Line starts of decorators and attributes kept with the definition below them."""
    inner_doc_prefix: str = ""
    """Rust ``//!``: doc lines written first inside the body of the item they document."""
    elided_body: str = "{ ... }"
    """What replaces a member's body in a class skeleton."""
    signature_from_outer: bool = True
    """Whether a signature starts at the wrapper (``export``, ``template <...>``, ``type``) rather than at
    the definition node (Python: not at the decorators)."""
    method_parents: frozenset[str] = frozenset(
        {"class", "interface", "struct", "enum", "trait", "impl", "record", "object", "union"}
    )
    """Kinds of definition whose function members are methods."""
    doc_tags_described: bool = False
    """PHPDoc: a doc comment's tag lines keep only their descriptions (``@param string $str Query string
    to parse`` -> ``Query string to parse``); tags without one (``@author``, ``@phpstan-*``, ``@see``,
    ``{@inheritDoc}``) are left out, so that the doc field holds prose, not types and variable names (a
    method whose doc was only ``{@inheritDoc}`` gets its parent's from the index afterwards:
    `indexing.inherited_docs`)."""
    doc_inherit_tag: re.Pattern[str] | None = None
    """The marker by which a doc comment says "my parent's doc here" (Javadoc's ``{@inheritDoc}``, C#'s
    ``<inheritdoc/>`` and ``<inheritdoc cref="..."/>``): left out of the doc field, the prose around it
    kept, so that a doc that is only the marker is empty (the index then gives the method its parent's doc
    across files: `indexing.inherited_docs`). PHP's ``{@inheritDoc}`` goes with its other tags
    (`doc_tags_described`)."""
    doc_code_blocks: bool = True
    """Whether a doc comment's fenced code blocks stay in the doc field. Rust's doc comments are half
    examples (```` ``` ```` blocks of calls such as ``.zip(..).sum()``), whose identifiers would count as
    the doc's words; the chunk text keeps them."""
    doc_gap_kinds: frozenset[str] = frozenset()
    """Kinds of definition whose doc comment may stand one blank line above them (Ruby classes and
    modules: Rack writes ``# Rack::Foo does ...``, a blank line, then ``class Foo``). The comment must be
    a block of its own (a blank line or its enclosing block's opening line above it), not the file's
    first lines (a license or ``# frozen_string_literal: true``)."""


_C_STYLE = LanguageTraits(doc_line_prefixes=("///",))
# C and C++ document functions with `/** */`, `///`, and just as often a plain `/* */` or `//` block.
_C_DOCS = LanguageTraits(doc_line_prefixes=("///", "//"), doc_any_block=True)
_TRAITS: dict[str, LanguageTraits] = {
    "python": LanguageTraits(
        line_comments=("#",),
        block_comments=False,
        doc_block=False,
        docstring=True,
        attribute_prefixes=("@",),
        elided_body="...",
        signature_from_outer=False,
    ),
    "javascript": LanguageTraits(attribute_prefixes=("@",)),
    "typescript": LanguageTraits(attribute_prefixes=("@",)),
    "tsx": LanguageTraits(attribute_prefixes=("@",)),
    "go": LanguageTraits(doc_line_prefixes=("//",), doc_block=False),
    "rust": LanguageTraits(
        doc_line_prefixes=("///",), inner_doc_prefix="//!", attribute_prefixes=("#[",), doc_code_blocks=False
    ),
    "java": LanguageTraits(
        doc_line_prefixes=("///",), attribute_prefixes=("@",), doc_inherit_tag=re.compile(r"\{@inheritDoc\}")
    ),
    "c": _C_DOCS,
    "cpp": LanguageTraits(doc_line_prefixes=("///", "//"), doc_any_block=True, attribute_prefixes=("[[",)),
    "csharp": LanguageTraits(
        doc_line_prefixes=("///",),
        attribute_prefixes=("[",),
        doc_inherit_tag=re.compile(r"</?inheritdoc\b[^>]*>", re.IGNORECASE),
    ),
    "ruby": LanguageTraits(
        line_comments=("#",),
        block_comments=False,
        doc_line_prefixes=("#",),
        doc_block=False,
        elided_body="...",
        method_parents=frozenset({"class", "module"}),
        doc_gap_kinds=frozenset({"class", "module"}),
    ),
    "php": LanguageTraits(line_comments=("//", "#"), attribute_prefixes=("#[",), doc_tags_described=True),
    "kconfig": LanguageTraits(
        line_comments=("#",), block_comments=False, doc_line_prefixes=("#",), doc_block=False
    ),
}


def get_traits(language: str) -> LanguageTraits:
    """The conventions of `language` (C-like defaults for languages not listed)."""
    return _TRAITS.get(language, _C_STYLE)
