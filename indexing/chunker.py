"""Turn one file's text into retrievable chunks and a symbol table.

`parse_source` is a pure function: text in, `ParseResult` out, never an exception.

Chunks (lines 1-based, inclusive):

- One chunk per top-level definition. Its text starts at the decorators, attributes and comment lines
  directly above it (no blank line between) and carries the definition's ``name``, ``kind``, enclosing
  names (``parents``), ``signature`` (the header up to the body, on one line) and ``doc`` (Python
  docstring; ``/** */`` for JavaScript, TypeScript, Java, C#, C, C++ and PHP, whose tags keep only
  their descriptions; ``///`` for Rust (without its fenced examples), Java, C#, C and C++; ``//`` for
  Go; ``#`` for Ruby, whose class and module comments may stand one blank line above them; Rust ``//!``
  at the start of a module body). The inherit markers, PHP's and Java's ``{@inheritDoc}`` and C#'s
  ``<inheritdoc/>``, are left out here (Java's inside prose: the prose stays): a method whose doc is only
  that has an empty doc (151 of monolog 2.9.1's 635 methods), since its parent is mostly another file and
  the chunker sees one; the index fills it in afterwards from the parent across files
  (`indexing.inherited_docs`, which reads docs with `comment_doc`).
- A container (class and the like) of at most ``chunk_max_lines`` lines is one chunk, members included.
  A larger one becomes a *skeleton* chunk (its text with each member's body elided as ``...`` or
  ``{ ... }``) and each member becomes its own chunk, recursively.
- A function longer than ``chunk_max_lines`` becomes windows of ``window_lines`` lines overlapping by
  ``window_overlap``, each keeping the function's name, kind, signature and doc.
- Lines outside top-level definitions (imports, constants, statements) become ``module`` chunks: runs of
  consecutive lines, split every ``window_lines``.
- Markdown is cut at headings into ``section`` chunks (name: heading text; parents: enclosing headings;
  ``#`` lines inside fenced code are not headings).
- Kconfig (tree-sitter grammar): one ``config`` chunk per ``config``/``menuconfig`` entry named by its
  symbol (a ``choice`` holds its entries; a ``menu`` is transparent, its title among the parents); each
  symbol ``FOO`` is also defined as ``CONFIG_FOO``.
- Assembly (``.S``, ``.s``) is cut at Linux linkage macros (``SYM_FUNC_START(name)``, ``ENTRY(name)``
  ...), ``.macro`` blocks and global labels, each chunk running to its end macro or ``.size``; device
  trees (``.dts``, ``.dtsi``) at nodes (``label: name@address {``, ``&label {``), a node larger than
  ``chunk_max_lines`` giving its children chunks of their own. Both by line, without a grammar; names
  and labels are definition symbols, call targets and ``&label`` uses references.
- Any other file becomes ``window`` chunks.

- Namespaces and modules (C++/C#/PHP namespaces, TypeScript namespaces, Rust ``mod``, Ruby ``module``)
  are transparent: they make no chunk of their own; their members are chunked as top-level definitions
  (with the namespace among their ``parents``) and their other lines go to ``module`` chunks.

Chunk kinds: ``function``; ``method`` (a function directly inside a class, struct, interface, trait,
impl, enum or record, a Go method, a C++ ``Class::member`` defined outside its class; constructors too);
containers ``class``, ``interface``, ``struct``, ``enum``, ``union``, ``trait``, ``impl``, ``record``;
``type`` (TypeScript type aliases); ``macro`` (Rust ``macro_rules!``); ``module``, ``section`` and
``window`` as above.

Symbols come from the language's tags query: each ``@name.definition.<kind>`` or
``@name.reference.<kind>`` capture is one `Symbol` (lines 1-based, columns 0-based in code points) whose
``container`` is the qualified name of the innermost enclosing definition. A function defined directly
in a class-like container is reported with kind ``method``.

Speed matters (the whole lexical pipeline should cost at most twice tree-sitter's parse): each file is
parsed once, one compiled query (chunks and tags together) runs once, node text is sliced from the
source, and chunk metadata is computed only for definitions that become chunks. Measured on Django's
source (2,823 files, 18 MB): running the query costs about 0.4x the parse (tree-sitter's query cursor
visits every node), building one `Symbol` per reference about 0.3x (230k symbols; Symbol is a NamedTuple
to keep that cheap), chunks about 0.25x; `parse_source` as a whole takes about 2x the parse alone.
"""

from __future__ import annotations

import bisect
import inspect
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from tree_sitter import Node, Parser, QueryCursor

from indexing.languages import CompiledQueries, LanguageTraits, get_parser, get_queries, get_traits
from indexing.models import Chunk, ParseLimits, ParseResult, Symbol, SymbolRole

logger = logging.getLogger(__name__)

CONTAINER_KINDS = frozenset(
    {
        "class",
        "interface",
        "struct",
        "enum",
        "union",
        "trait",
        "impl",
        "record",
        "namespace",
        "module",
        "object",
    }
)
"""Definition kinds that hold members and collapse to a skeleton when large."""

TRANSPARENT_KINDS = frozenset({"namespace", "module"})
"""Container kinds that never make a chunk of their own: their members are chunked as if top-level, and
their remaining lines go to ``module`` chunks (a C++ namespace often wraps a whole file)."""

_SIGNATURE_MAX_CHARS = 400
_SCOPE_SEPARATOR = re.compile(r"::|\\|\.")
_LEADING_ATTRIBUTE = re.compile(r"(?:@[\w.]+(?:\([^()]*\))?|#?\[[^\]]*\])\s*")
_XML_DOC_TAG = re.compile(r"</?(?:summary|remarks|returns|value)>")
# A line break inside a block comment with the spaces around it and the next line's leading "* ".
# (Anchored on "\n" rather than "^" with MULTILINE, which makes the regex engine try every position.)
_BLOCK_LINE_BREAK = re.compile(r"[ \t\r]*\n[ \t]*(?:\*(?!/) ?)?")
_DOC_MAX_LINES = 100  # a doc comment longer than this is cut (the chunk text keeps all of it)
_WORD = re.compile(r"\w")
_LONE_CR = re.compile(r"\r(?!\n)")


def parse_source(path: str, text: str, language: str | None, settings: ParseLimits) -> ParseResult:
    """Chunks and symbols of one file. Never raises: on any internal failure the file gets line windows.

    `text` is the decoded file (invalid bytes already replaced by U+FFFD). Lines are numbered as editors
    and LSP number them, ending at ``\\r\\n``, ``\\n`` or a lone ``\\r``: a lone ``\\r`` (classic Mac OS) is
    read as ``\\n`` (the chunks' text has ``\\n`` there; offsets do not move), since tree-sitter and the
    chunker count only ``\\n``. A ``\\r\\n`` stays in the text.
    """
    try:
        if "\r" in text and text.count("\r") != text.count("\r\n"):
            text = _LONE_CR.sub("\n", text)
        lines = text.split("\n")
        if language == "markdown":
            return ParseResult(chunks=tuple(_markdown_chunks(path, lines, settings)), symbols=())
        if language == "asm":
            return _asm_sections(path, lines, settings)
        if language == "devicetree":
            return _dts_sections(path, lines, settings)
        queries = get_queries(language) if language else None
        parser = get_parser(language) if language and queries is not None else None
        if language is None or queries is None or parser is None:
            return ParseResult(
                chunks=tuple(_window_chunks(path, language or "", lines, settings)), symbols=()
            )
        result = _FileParser(path, language, text, lines, settings, queries).run(parser)
        return _with_config_names(result) if language == "kconfig" else result
    except Exception:  # a bug here must not stop indexing the rest of the workspace
        logger.exception("chunking %s failed; falling back to line windows", path)
        try:
            return ParseResult(
                chunks=tuple(_window_chunks(path, language or "", text.split("\n"), settings)), symbols=()
            )
        except Exception:
            logger.exception("line windows for %s failed", path)
            return ParseResult(chunks=(), symbols=())


def _with_config_names(result: ParseResult) -> ParseResult:
    """Kconfig: each symbol defined as ``FOO`` is defined as ``CONFIG_FOO`` too, the name C code,
    Makefiles and ``.config`` use (so ``find_symbol CONFIG_FOO`` finds the Kconfig entry)."""
    aliases = [
        s._replace(name="CONFIG_" + s.name)
        for s in result.symbols
        if s.role == "definition" and not s.name.startswith("CONFIG_")
    ]
    if not aliases:
        return result
    symbols = sorted((*result.symbols, *aliases), key=lambda s: (s.line, s.column))
    return ParseResult(
        chunks=result.chunks, symbols=tuple(symbols), has_syntax_errors=result.has_syntax_errors
    )


_Match = tuple[int, dict[str, list[Node]]]


@dataclass(slots=True, eq=False)
class _Def:
    """One definition found by the chunks query."""

    kind: str
    name: str
    node: Node
    outer: Node
    body: Node | None
    body_known: bool  # False until `_FileParser._body` has looked for the ``body`` field
    scope: str  # qualifier written outside the definition (Go receiver, C++ ``Foo::``)
    start: int  # byte range of `node`
    end: int
    name_start: int
    parent: int = -1
    children: list[int] = field(default_factory=list)
    parents: tuple[str, ...] = ()
    qualified: str = ""


class _FileParser:
    """Everything that is computed once per file, shared by the chunk and symbol passes."""

    def __init__(
        self,
        path: str,
        language: str,
        text: str,
        lines: list[str],
        settings: ParseLimits,
        queries: CompiledQueries,
    ) -> None:
        self.path = path
        self.language = language
        self.text = text
        self.lines = lines
        self.settings = settings
        self.queries = queries
        self.traits: LanguageTraits = get_traits(language)
        self.ascii = text.isascii()
        # "replace" keeps one byte per unencodable code point (lone surrogates), so offsets stay aligned.
        self.src = text.encode("utf-8", "replace")

    # -- driver ---------------------------------------------------------------------------------------

    def run(self, parser: Parser) -> ParseResult:
        if not self.text or self.text.isspace():
            return ParseResult(chunks=(), symbols=())
        tree = parser.parse(self.src)
        root = tree.root_node
        matches = QueryCursor(self.queries.query).matches(root)
        defs = self._collect(matches)
        chunks = (
            self._chunks(defs)
            if self.queries.has_chunks
            else _window_chunks(self.path, self.language, self.lines, self.settings)
        )
        symbols = self._symbols(defs, matches) if self.queries.has_tags else []
        return ParseResult(chunks=tuple(chunks), symbols=tuple(symbols), has_syntax_errors=root.has_error)

    def _node_text(self, node: Node) -> str:
        start, end = node.start_byte, node.end_byte
        if self.ascii:
            return self.text[start:end]
        return self.src[start:end].decode("utf-8", "replace")

    def _collect(self, matches: list[_Match]) -> list[_Def]:
        """Definitions from the matches of chunk patterns, nested and named."""
        kinds = self.queries.definition_kinds
        definition_captures = self.queries.definition_captures
        by_range: dict[tuple[int, int], _Def] = {}
        # Most matches are tags; a comprehension skips them faster than a loop would.
        for index, captures in [match for match in matches if kinds[match[0]] is not None]:
            kind = kinds[index] or "function"
            nodes = captures.get(definition_captures[index])
            if not nodes:
                continue
            node = nodes[0]
            key = (node.start_byte, node.end_byte)
            outer = captures.get("outer")
            names = captures.get("name")
            body = captures.get("body")
            scope = captures.get("scope")
            previous = by_range.get(key)
            if previous is not None:
                # One node matched by a bare and a wrapped pattern (`export`, `template`): merge them.
                wrapped = bool(outer) and previous.outer is previous.node
                if outer and wrapped:
                    previous.outer = outer[0]
                if names and (wrapped or not previous.name):  # a typedef's name beats the struct tag
                    previous.name = self._node_text(names[0])
                    previous.name_start = names[0].start_byte
                if body and not previous.body_known:
                    previous.body, previous.body_known = body[0], True
                if scope and not previous.scope:
                    previous.scope = self._node_text(scope[0])
                continue
            name_node = names[0] if names else None
            by_range[key] = _Def(  # positional: keyword arguments cost twice as much here
                kind,
                self._node_text(name_node) if name_node is not None else "",
                node,
                outer[0] if outer else node,
                body[0] if body else None,
                body is not None,
                self._node_text(scope[0]) if scope else "",
                key[0],
                key[1],
                name_node.start_byte if name_node is not None else -1,
            )
        defs = sorted(by_range.values(), key=lambda d: (d.start, -d.end))
        self._link(defs)
        return defs

    def _body(self, d: _Def) -> Node | None:
        if not d.body_known:
            d.body = d.node.child_by_field_name("body")
            d.body_known = True
        return d.body

    def _link(self, defs: list[_Def]) -> None:
        """Nest definitions by byte range and give each its enclosing names."""
        stack: list[int] = []
        method_parents = self.traits.method_parents
        for index, d in enumerate(defs):
            while stack and defs[stack[-1]].end < d.end:
                stack.pop()
            parents: tuple[str, ...] = ()
            if stack:
                parent = defs[stack[-1]]
                d.parent = stack[-1]
                parent.children.append(index)
                parents = (*parent.parents, parent.name) if parent.name else parent.parents
                if d.kind == "function" and parent.kind in method_parents:
                    d.kind = "method"
            if "::" in d.name:  # C++ `a::b::f` captured whole
                *outer_names, d.name = d.name.split("::")
                d.scope = "::".join((d.scope, *outer_names)) if d.scope else "::".join(outer_names)
            if d.scope:
                # Written outside its class (Go receiver, C++ `Circle::area`): a method of that class.
                parents = (*parents, *(part for part in _SCOPE_SEPARATOR.split(d.scope) if part))
                if d.kind == "function":
                    d.kind = "method"
            if d.kind == "constructor":
                d.kind = "method"
            d.parents = parents
            d.qualified = ".".join((*parents, d.name)) if d.name else ".".join(parents)
            stack.append(index)

    # -- chunks ---------------------------------------------------------------------------------------

    def _chunks(self, defs: list[_Def]) -> list[Chunk]:
        chunks: list[Chunk] = []
        spans: list[tuple[int, int]] = []
        self._emit_members(defs, self._unwrapped(defs, [d for d in defs if d.parent == -1]), 0, chunks, spans)
        chunks.extend(self._module_chunks(spans))
        chunks.sort(key=lambda c: (c.start_line, c.end_line))
        return chunks

    def _unwrapped(self, defs: list[_Def], members: list[_Def]) -> Iterator[_Def]:
        """`members` in document order, namespaces and modules replaced by their own members."""
        for d in members:
            if d.kind in TRANSPARENT_KINDS and d.children:
                yield from self._unwrapped(defs, [defs[i] for i in d.children])
            else:
                yield d

    def _emit_members(
        self,
        defs: list[_Def],
        members: Iterable[_Def],
        floor: int,
        out: list[Chunk],
        spans: list[tuple[int, int]] | None = None,
    ) -> None:
        for d in members:
            first, last, doc = self._span(d)
            # Never reach back into the previous chunk (two definitions on one line, odd comments).
            first = max(first, floor)
            if first > last:
                continue
            floor = last + 1
            if spans is not None:
                spans.append((first, last))
            self._emit(defs, d, first, last, doc, out)

    def _emit(self, defs: list[_Def], d: _Def, first: int, last: int, doc: str, out: list[Chunk]) -> None:
        settings = self.settings
        signature = self._signature(d)
        if d.kind == "function" or d.kind == "method":
            doc = doc or self._docstring(d)
        elif self.traits.docstring or self.traits.inner_doc_prefix:
            doc = doc or self._docstring(d) or self._inner_doc(d)
        size = last - first + 1
        if size <= settings.chunk_max_lines:
            out.append(
                self._chunk(d.kind, d.name, d.parents, first, last, self._lines(first, last), signature, doc)
            )
            return
        if d.kind in CONTAINER_KINDS and d.children:
            out.append(
                self._chunk(
                    d.kind, d.name, d.parents, first, last, self._skeleton(defs, d, first), signature, doc
                )
            )
            self._emit_members(defs, self._unwrapped(defs, [defs[i] for i in d.children]), first, out)
            return
        for start, end in _windows(first, last, settings.window_lines, settings.window_overlap):
            out.append(
                self._chunk(d.kind, d.name, d.parents, start, end, self._lines(start, end), signature, doc)
            )

    def _chunk(
        self,
        kind: str,
        name: str,
        parents: tuple[str, ...],
        first: int,
        last: int,
        text: str,
        signature: str = "",
        doc: str = "",
    ) -> Chunk:
        return Chunk(
            path=self.path,
            language=self.language,
            kind=kind,
            name=name,
            parents=parents,
            start_line=first + 1,
            end_line=last + 1,
            text=text,
            signature=signature,
            doc=doc,
        )

    def _lines(self, first: int, last: int) -> str:
        return "\n".join(self.lines[first : last + 1])

    def _last_row(self, node: Node) -> int:
        row, column = node.end_point
        # Some grammars end a node at column 0 of the next line (its newline included).
        return row - 1 if column == 0 and row > node.start_point.row else row

    def _span(self, d: _Def) -> tuple[int, int, str]:
        """First and last row of a definition's chunk, and the doc comment found above it."""
        outer = d.outer
        start_row = outer.start_point.row
        last = self._last_row(outer)
        lines = self.lines
        while last > start_row and not lines[last].strip():
            last -= 1  # a node that ends with blank lines (Kconfig help text)
        traits = self.traits
        line = lines[start_row]
        limit = len(line) - len(line.lstrip()) + 1
        first = start_row
        doc = ""
        seen_comment = False
        row = start_row - 1
        gap = False  # a blank line skipped between the definition and its doc (`doc_gap_kinds`)
        while row >= 0:
            line = lines[row]
            stripped = line.strip()
            if not stripped and row == start_row - 1 and d.kind in traits.doc_gap_kinds:
                gap = True
                row -= 1
                continue
            if not stripped or len(line) - len(line.lstrip()) > limit:
                break
            if traits.attribute_prefixes and stripped.startswith(traits.attribute_prefixes):
                first = row
                row -= 1
                continue
            if traits.block_comments and stripped.endswith("*/"):
                top = row
                while top >= 0 and "/*" not in lines[top]:
                    top -= 1
                if top < 0 or not lines[top].lstrip().startswith("/*"):
                    break
                if (
                    not seen_comment
                    and (traits.doc_block or traits.doc_any_block)
                    and (traits.doc_any_block or lines[top].lstrip().startswith("/**"))
                ):
                    doc = _clean_block_comment(lines[top : row + 1])
                    if traits.doc_tags_described and "@" in doc:
                        doc = _described_tags(doc)
                seen_comment = True
                first = top
                row = top - 1
                continue
            if stripped.startswith(traits.line_comments):
                top = row
                while top > 0:
                    above_line = lines[top - 1]
                    above = above_line.lstrip()
                    if (
                        not above.startswith(traits.line_comments)
                        or len(above_line) - len(above) > limit  # a comment inside the code above
                        or (traits.attribute_prefixes and above.startswith(traits.attribute_prefixes))
                    ):
                        break
                    top -= 1
                if gap and not _standalone_comment(lines, top):
                    break
                group = [lines[r].strip() for r in range(top, row + 1)]
                if not seen_comment and traits.doc_line_prefixes:
                    doc = _clean_line_comments(group, traits.doc_line_prefixes)
                    if not traits.doc_code_blocks and "```" in doc:
                        doc = _without_code_blocks(doc)
                seen_comment = True
                first = top
                row = top - 1
                continue
            break
        if traits.doc_inherit_tag is not None and doc:
            doc = _without_inherit_tag(doc, traits.doc_inherit_tag)
        return first, last, doc

    def _signature(self, d: _Def) -> str:
        node = d.node
        start = d.outer.start_byte if self.traits.signature_from_outer else node.start_byte
        body = self._body(d)
        end = body.start_byte if body is not None and body.start_byte > start else node.end_byte
        if body is not None:
            # A comment between the header and the body (`def f():  # why`) is not signature.
            before = body.prev_sibling
            while before is not None and "comment" in before.type and before.start_byte > start:
                end = before.start_byte
                before = before.prev_sibling
        end = min(end, start + _SIGNATURE_MAX_CHARS * 4)
        header = self.src[start:end].decode("utf-8", "replace")
        header = " ".join(header.split()).rstrip("{:;").rstrip()
        while header[:1] in ("@", "[", "#") and self.traits.attribute_prefixes:
            attribute = _LEADING_ATTRIBUTE.match(header)
            if attribute is None or not attribute.end():
                break
            header = header[attribute.end() :]
        return header[:_SIGNATURE_MAX_CHARS]

    def _docstring(self, d: _Def) -> str:
        body = self._body(d) if self.traits.docstring else None
        first = body.named_child(0) if body is not None and body.named_child_count else None
        if first is not None and first.type == "expression_statement" and first.named_child_count:
            first = first.named_child(0)
        if first is None:
            return ""
        if first.type != "string":
            return ""
        return _clean_python_string(self._node_text(first))

    def _inner_doc(self, d: _Def) -> str:
        prefix = self.traits.inner_doc_prefix
        body = self._body(d) if prefix else None
        if body is None:
            return ""
        group = []
        for row in range(body.start_point.row, min(body.end_point.row, body.start_point.row + 200) + 1):
            stripped = self.lines[row].strip()
            if stripped.startswith(prefix):
                group.append(stripped)
            elif group or (stripped and stripped not in ("{",) and not stripped.endswith("{")):
                break
        return _clean_line_comments(group, (prefix,)) if group else ""

    def _skeleton(self, defs: list[_Def], d: _Def, first: int) -> str:
        """The container's text with each direct member's body replaced by a placeholder."""
        outer = d.outer
        src = self.src
        line_start = outer.start_byte - outer.start_point.column
        end_row, end_column = outer.end_point
        if end_column == 0 and end_row > outer.start_point.row:
            line_end = outer.end_byte - 1
        else:
            line_end = src.find(b"\n", outer.end_byte)
            if line_end < 0:
                line_end = len(src)
        pieces: list[bytes] = []
        cursor = line_start
        placeholder = self.traits.elided_body.encode()
        for child_index in d.children:
            body = self._body(defs[child_index])
            if body is None or body.start_byte < cursor or body.end_byte > line_end:
                continue
            pieces.append(src[cursor : body.start_byte])
            pieces.append(placeholder)
            cursor = body.end_byte
        pieces.append(src[cursor:line_end])
        head = self.lines[first : outer.start_point.row]
        text = b"".join(pieces).decode("utf-8", "replace")
        return "\n".join((*head, text)) if head else text

    def _module_chunks(self, spans: list[tuple[int, int]]) -> Iterable[Chunk]:
        """Chunks for the lines that no top-level definition covers."""
        spans.sort()
        row = 0
        window = self.settings.window_lines
        for first, last in [*spans, (len(self.lines), len(self.lines))]:
            for start, end in _runs(self.lines, row, first - 1, window):
                yield self._chunk("module", "", (), start, end, self._lines(start, end))
            row = max(row, last + 1)

    # -- symbols --------------------------------------------------------------------------------------

    def _symbols(self, defs: list[_Def], matches: list[_Match]) -> list[Symbol]:
        """One `Symbol` per tag capture.

        This loop runs for every reference in the file and dominates the cost after parsing: references
        take a short path, definitions (few) and non-ASCII lines a longer one.
        """
        starts = [d.start for d in defs]
        ends = [d.end for d in defs]
        parent = [d.parent for d in defs]
        # Index -1 (no enclosing definition) reads the trailing "".
        qualified = [d.qualified for d in defs]
        qualified.append("")
        single_tags = self.queries.single_tags
        tag_captures = self.queries.tag_captures
        path = self.path
        text = self.text
        ascii_text = self.ascii
        lines = self.lines
        # Text with non-ASCII characters (a third of Django's references): most of its lines are ASCII,
        # where the byte column is the code-point column and the name is sliced from the line.
        ascii_rows = [] if ascii_text else [line.isascii() for line in lines]
        out: list[Symbol] = []
        append = out.append
        bisect_right = bisect.bisect_right
        new_symbol = tuple.__new__
        for index, captures in matches:
            single = single_tags[index]
            if single is None:
                for capture, role, kind in tag_captures[index]:
                    for node in captures.get(capture, ()):
                        append(self._symbol(defs, node, role, kind, starts, ends, parent, qualified))
                continue
            capture, kind, reference = single
            for node in captures[capture]:
                start = node.start_byte
                row, column = node.start_point
                if ascii_text:
                    name = text[start : node.end_byte]
                elif ascii_rows[row]:
                    size = node.end_byte - start
                    name = lines[row][column : column + size]
                    if len(name) != size:  # runs past the line's end
                        name, column = self._name_and_column(node, row, column)
                else:
                    name, column = self._name_and_column(node, row, column)
                if not reference or "\n" in name:
                    append(
                        self._symbol(
                            defs,
                            node,
                            "definition" if not reference else "reference",
                            kind,
                            starts,
                            ends,
                            parent,
                            qualified,
                        )
                    )
                    continue
                i = bisect_right(starts, start) - 1
                while i >= 0 and ends[i] <= start:
                    i = parent[i]
                line = row + 1
                append(
                    new_symbol(  # tuple.__new__ directly: the NamedTuple's own __new__ is Python code
                        Symbol,
                        (name, kind, "reference", path, line, column, line, column + len(name), qualified[i]),
                    )
                )
        return out

    def _name_and_column(self, node: Node, row: int, byte_column: int) -> tuple[str, int]:
        """Name text and code-point column of a node on a line that may hold non-ASCII text."""
        line = self.lines[row]
        size = node.end_byte - node.start_byte
        if line.isascii():
            name = line[byte_column : byte_column + size]
            if len(name) == size:
                return name, byte_column
        start = node.start_byte
        src = self.src
        name = src[start : start + size].decode("utf-8", "replace")
        return name, len(src[start - byte_column : start].decode("utf-8", "replace"))

    def _in_header(self, d: _Def, position: int) -> bool:
        """Whether `position` lies in the part of `d` before its body (its name, a typedef's struct)."""
        body = self._body(d)
        return body is None or position < body.start_byte

    def _symbol(
        self,
        defs: list[_Def],
        node: Node,
        role: str,
        kind: str,
        starts: list[int],
        ends: list[int],
        parent: list[int],
        qualified: list[str],
    ) -> Symbol:
        """The general case of `_symbols`: definitions, and names that span lines (cut at the line end)."""
        start = node.start_byte
        row, column = node.start_point
        if self.ascii:
            name = self.text[start : node.end_byte]
        else:
            name, column = self._name_and_column(node, row, column)
        i = bisect.bisect_right(starts, start) - 1
        while i >= 0 and ends[i] <= start:
            i = parent[i]
        container = qualified[i]
        if name[:1] == ":" and role == "definition" and self.language == "ruby":  # `attr_reader :size`
            name = name[1:]
            column += 1
        if role == "definition" and i >= 0:
            own = defs[i]
            if own.name_start == start or self._in_header(own, start):
                # The name of a definition lies inside it: its container is its parent.
                container = ".".join(own.parents)
                if kind == "function" and own.kind == "method":
                    kind = "method"
            elif kind == "function" and own.kind in self.traits.method_parents:
                kind = "method"
        if "\n" in name:
            end_row, end_column = node.end_point
            end = node.end_byte
            end_column = len(self.src[end - end_column : end].decode("utf-8", "replace"))
            name = name.split("\n", 1)[0]
        else:
            end_row, end_column = row, column + len(name)
        return Symbol(name, kind, role, self.path, row + 1, column, end_row + 1, end_column, container)  # type: ignore[arg-type]


# -- helpers shared by all chunkers ---------------------------------------------------------------------


def _standalone_comment(lines: list[str], top: int) -> bool:
    """Whether the comment block starting at row `top` stands on its own: not the file's first lines (a
    license, a magic comment), and below a blank line or a line indented less (its block's opening line),
    not trailing the code above it."""
    if top == 0:
        return False
    above = lines[top - 1]
    return not above.strip() or len(above) - len(above.lstrip()) < len(lines[top]) - len(lines[top].lstrip())


def _windows(first: int, last: int, size: int, overlap: int) -> Iterable[tuple[int, int]]:
    """Row ranges of `size` rows covering first..last, consecutive ones sharing `overlap` rows."""
    step = max(1, size - min(overlap, size - 1))
    start = first
    while True:
        end = min(start + size - 1, last)
        yield start, end
        if end >= last:
            return
        start += step


def _runs(lines: list[str], first: int, last: int, size: int) -> Iterable[tuple[int, int]]:
    """Runs of rows in first..last without leading or trailing blank lines, at most `size` rows each,
    skipping runs with no word character (a lone closing brace is not worth a chunk)."""
    while first <= last and not lines[first].strip():
        first += 1
    while last >= first and not lines[last].strip():
        last -= 1
    start = first
    while start <= last:
        end = min(start + size - 1, last)
        while end > start and not lines[end].strip():
            end -= 1
        if any(_WORD.search(lines[r]) for r in range(start, end + 1)):
            yield start, end
        start = end + 1
        while start <= last and not lines[start].strip():
            start += 1


def _window_chunks(path: str, language: str, lines: list[str], settings: ParseLimits) -> Iterable[Chunk]:
    first, last = 0, len(lines) - 1
    while first <= last and not lines[first].strip():
        first += 1
    while last >= first and not lines[last].strip():
        last -= 1
    if first > last:
        return
    for start, end in _windows(first, last, settings.window_lines, settings.window_overlap):
        yield Chunk(
            path=path,
            language=language,
            kind="window",
            name="",
            parents=(),
            start_line=start + 1,
            end_line=end + 1,
            text="\n".join(lines[start : end + 1]),
        )


def comment_doc(comment: str, language: str) -> str:
    """The doc the chunker keeps of a doc comment written above a definition in ``language``: a
    ``/** ... */`` block, or lines with one of the language's doc prefixes (``///``), one a line
    (`indexing.inherited_docs` reads the docs of other files' methods with it)."""
    traits = get_traits(language)
    if comment.startswith("/*"):
        doc = _clean_block_comment(comment.split("\n"))
    else:
        doc = _clean_line_comments([line.strip() for line in comment.split("\n")], traits.doc_line_prefixes)
    if traits.doc_inherit_tag is not None:
        return _without_inherit_tag(doc, traits.doc_inherit_tag)
    return _described_tags(doc) if traits.doc_tags_described and "@" in doc else doc


def _without_inherit_tag(doc: str, tag: re.Pattern[str]) -> str:
    """`doc` without its inherit markers (`LanguageTraits.doc_inherit_tag`), the prose around them kept:
    ``Adds {@inheritDoc} here.`` -> ``Adds here.``; a line that was only markers goes."""
    if tag.search(doc) is None:
        return doc
    out: list[str] = []
    for line in doc.split("\n"):
        if tag.search(line) is not None:
            line = " ".join(tag.sub(" ", line).split())
            if not line:
                continue
        out.append(line)
    return "\n".join(out).strip()


def _clean_block_comment(lines: list[str]) -> str:
    """The text of a ``/** ... */`` comment without its markers and leading ``*``."""
    text = "\n".join(lines[:_DOC_MAX_LINES]).strip()
    text = text.removeprefix("/**").removeprefix("/*").removesuffix("*/")
    # One regex over the whole comment: long JSDoc blocks are common and a per-line loop shows up in
    # profiles.
    text = _BLOCK_LINE_BREAK.sub("\n", text)
    if "<" in text:
        text = _XML_DOC_TAG.sub("", text)
    return text.strip()


_DESCRIBED_TAGS = frozenset({"param", "return", "returns", "throws", "deprecated", "var"})
_TAG_LINE = re.compile(r"\{?@([\w-]+)\}?\s*(.*)")


def _described_tags(doc: str) -> str:
    """A PHPDoc comment's text with each tag line cut to its description
    (`LanguageTraits.doc_tags_described`): ``@param TYPE $name words`` -> ``words``, ``@return TYPE
    words`` -> ``words``; other tags dropped."""
    out: list[str] = []
    for line in doc.split("\n"):
        match = _TAG_LINE.match(line)
        if match is None:
            out.append(line)
            continue
        if match[1] not in _DESCRIBED_TAGS:
            continue
        rest = match[2]
        if match[1] != "deprecated":
            rest = _after_type(rest)
            if rest.startswith(("$", "&$", "...$")):
                rest = rest.split(None, 1)[1] if " " in rest else ""
        if rest:
            out.append(rest)
    return "\n".join(out).strip()


def _without_code_blocks(doc: str) -> str:
    """`doc` without its fenced (```` ``` ````) code blocks (`LanguageTraits.doc_code_blocks`)."""
    out: list[str] = []
    fenced = False
    for line in doc.split("\n"):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and (line.strip() or (out and out[-1].strip())):
            out.append(line)
    return "\n".join(out).strip()


def _after_type(text: str) -> str:
    """`text` without its leading type expression (``array<string, mixed>``, ``?int``, ``Foo|null``)."""
    depth = 0
    for i, char in enumerate(text):
        if char in "<({[":
            depth += 1
        elif char in ">)}]":
            depth -= 1
        elif char.isspace() and depth <= 0:
            return text[i:].lstrip()
    return ""


def _clean_line_comments(group: list[str], prefixes: tuple[str, ...]) -> str:
    """The text of a group of line comments, or "" unless every line has a doc prefix."""
    cleaned = []
    for line in group[:_DOC_MAX_LINES]:
        for prefix in prefixes:
            if line.startswith(prefix):
                rest = line[len(prefix) :]
                cleaned.append(rest[1:] if rest.startswith(" ") else rest)
                break
        else:
            return ""
    text = "\n".join(cleaned)
    if "<" in text:
        text = _XML_DOC_TAG.sub("", text)
    return text.strip()


_STRING_PREFIX = re.compile(r"^[rRuUbBfF]{0,2}('''|\"\"\"|'|\")")


def _clean_python_string(literal: str) -> str:
    match = _STRING_PREFIX.match(literal)
    if match is None:
        return ""
    quote = match.group(1)
    body = literal[match.end() :]
    body = body.removesuffix(quote)
    return inspect.cleandoc(body)


# -- Markdown -------------------------------------------------------------------------------------------

_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")


def _markdown_chunks(path: str, lines: list[str], settings: ParseLimits) -> Iterable[Chunk]:
    """Sections cut at ATX (``#``) and setext (underlined) headings, fenced code skipped."""
    headings: list[tuple[int, int, str]] = []  # (row, level, title)
    fence = ""
    for row, line in enumerate(lines):
        fence_match = _FENCE.match(line)
        if fence:
            # A closing fence: the same character, at least as long, nothing after it.
            closing = fence_match.group(1) if fence_match else ""
            if closing[:1] == fence[0] and len(closing) >= len(fence) and not line.strip().lstrip(fence[0]):
                fence = ""
            continue
        if fence_match:
            fence = fence_match.group(1)
            continue
        atx = _ATX.match(line)
        if atx:
            headings.append((row, len(atx.group(1)), (atx.group(2) or "").strip()))
            continue
        setext = _SETEXT.match(line)
        if (
            setext
            and row > 0
            and lines[row - 1].strip()
            and (row == 1 or not lines[row - 2].strip() or (headings and headings[-1][0] == row - 2))
            and not (headings and headings[-1][0] == row - 1)
            and not _FENCE.match(lines[row - 1])
        ):
            headings.append((row - 1, 1 if setext.group(1)[0] == "=" else 2, lines[row - 1].strip()))

    boundaries = [row for row, _, _ in headings]
    sections: list[tuple[int, int, str, tuple[str, ...]]] = []
    if not boundaries or boundaries[0] > 0:
        sections.append((0, (boundaries[0] if boundaries else len(lines)) - 1, "", ()))
    stack: list[tuple[int, str]] = []
    for index, (row, level, title) in enumerate(headings):
        while stack and stack[-1][0] >= level:
            stack.pop()
        end = boundaries[index + 1] - 1 if index + 1 < len(boundaries) else len(lines) - 1
        sections.append((row, end, title, tuple(name for _, name in stack)))
        stack.append((level, title))

    for first, last, title, parents in sections:
        while last >= first and not lines[last].strip():
            last -= 1
        while first <= last and not lines[first].strip():
            first += 1
        if first > last:
            continue
        if last - first + 1 <= settings.chunk_max_lines:
            ranges: Iterable[tuple[int, int]] = ((first, last),)
        else:
            ranges = _windows(first, last, settings.window_lines, settings.window_overlap)
        for start, end in ranges:
            yield Chunk(
                path=path,
                language="markdown",
                kind="section",
                name=title,
                parents=parents,
                start_line=start + 1,
                end_line=end + 1,
                text="\n".join(lines[start : end + 1]),
            )


# -- Assembly and device trees --------------------------------------------------------------------------
# No usable grammar (tree-sitter-language-pack's asm grammar stops at the C preprocessor and the kernel's
# linkage macros; it has no device-tree grammar), so both are cut at their own structure, line by line.


def _comment_top(lines: list[str], row: int, floor: int) -> int:
    """The first row of the ``/* */``, ``//`` or ``;`` comment lines directly above `row` (else `row`)."""
    first = row
    r = row - 1
    while r >= floor:
        stripped = lines[r].strip()
        if stripped.endswith("*/"):
            top = r
            while top >= floor and "/*" not in lines[top]:
                top -= 1
            if top < floor or not lines[top].lstrip().startswith("/*"):
                break
            first = r = top
        elif stripped.startswith(("//", ";")):
            first = r
        else:
            break
        r -= 1
    return first


def _section_chunks(
    path: str,
    language: str,
    lines: list[str],
    settings: ParseLimits,
    sections: list[tuple[int, int, str, str, tuple[str, ...], str]],
) -> list[Chunk]:
    """Chunks of (first row, last row, kind, name, parents, signature) sections, windows for long ones,
    and ``module`` runs for the rows no section covers."""
    chunks: list[Chunk] = []
    covered = bytearray(len(lines))
    for first, last, kind, name, parents, signature in sections:
        covered[first : last + 1] = b"\x01" * (last - first + 1)
        if last - first + 1 <= settings.chunk_max_lines:
            ranges: Iterable[tuple[int, int]] = ((first, last),)
        else:
            ranges = _windows(first, last, settings.window_lines, settings.window_overlap)
        for start, end in ranges:
            text = "\n".join(lines[start : end + 1])
            chunks.append(Chunk(path, language, kind, name, parents, start + 1, end + 1, text, signature))
    row = 0
    while row < len(lines):
        if covered[row]:
            row += 1
            continue
        end = row
        while end + 1 < len(lines) and not covered[end + 1]:
            end += 1
        for start, stop in _runs(lines, row, end, settings.window_lines):
            text = "\n".join(lines[start : stop + 1])
            chunks.append(Chunk(path, language, "module", "", (), start + 1, stop + 1, text))
        row = end + 1
    chunks.sort(key=lambda c: (c.start_line, c.end_line))
    return chunks


def _line_symbol(
    path: str, name: str, kind: str, role: SymbolRole, row: int, column: int, container: str = ""
) -> Symbol:
    """A symbol on one line (0-based `row`) of a file cut by a line chunker."""
    return Symbol(name, kind, role, path, row + 1, column, row + 1, column + len(name), container)


# Linux linkage macros (SYM_FUNC_START(name), ENTRY(name) ...), a `.macro`, or a label at the start of a
# line. The matching end: SYM_*_END(name), END(name), ENDPROC(name), `.size name`, `.endm`.
_ASM_START = re.compile(
    r"^(?:(?P<macro>SYM_(?:TYPED_)?(?:FUNC|CODE|DATA)_START\w*|SYM_DATA(?:_LOCAL)?|ENTRY|GLOBAL|WEAK|"
    r"ENTRY_CFI|NESTED|LEAF|FUNC|FUNCTION)\s*\(\s*(?P<name>[A-Za-z_.$][\w.$]*)\s*[,)]"
    r"|\s*\.macro\s+(?P<asm_macro>[A-Za-z_][\w.]*)"
    r"|(?P<label>[A-Za-z_$][\w.$]*):(?!:))"
)
_ASM_END = re.compile(
    r"^\s*(?:SYM_\w*_END\w*|END|ENDPROC|END_CFI|ENDFUNC)\s*\(\s*([\w.$]+)|^\s*\.size\s+([\w.$]+)|^\s*\.endm\b"
)
_ASM_GLOBAL = re.compile(r"^\s*\.(?:globl|global|weak)\s+([A-Za-z_.$][\w.$]*)", re.MULTILINE)
_ASM_CALL = re.compile(
    r"^\s*(?:call|callq|jmp|jmpq|bl|blx|b|j|jal|tail|bsr|brasl|jg)(?:\.\w+)?\s+\*?([A-Za-z_][\w.$]*)(?=\s|$|[;,@(+])"
)


def _asm_sections(path: str, lines: list[str], settings: ParseLimits) -> ParseResult:
    """Assembly cut at functions: a chunk from a Linux linkage macro (``SYM_FUNC_START(name)``,
    ``ENTRY(name)`` ...), a ``.macro`` or a global label (``.globl name`` ... ``name:``), with the comment
    above it, to its end macro or ``.size`` (else to the next one). The name is the chunk's and a
    definition symbol; ``call``/``bl``/``jmp`` targets are references."""
    globals_ = set(_ASM_GLOBAL.findall("\n".join(lines)))
    starts: list[tuple[int, str, str]] = []  # (row, kind, name)
    symbols: list[Symbol] = []
    for row, line in enumerate(lines):
        match = _ASM_START.match(line)
        if match is not None:
            if match.group("macro"):
                macro = match.group("macro")
                kind = "data" if "DATA" in macro else "function"
                starts.append((row, kind, match.group("name")))
            elif match.group("asm_macro"):
                starts.append((row, "macro", match.group("asm_macro")))
            else:
                label = match.group("label")
                if label in globals_:
                    starts.append((row, "function", label))
                elif not label.startswith(".L"):
                    symbols.append(_line_symbol(path, label, "label", "definition", row, 0))
            continue
        call = _ASM_CALL.match(line)
        if call is not None and not call.group(1).startswith(".L"):
            symbols.append(
                _line_symbol(path, call.group(1), "call", "reference", row, line.find(call.group(1)))
            )
    sections: list[tuple[int, int, str, str, tuple[str, ...], str]] = []
    floor = 0
    for index, (row, kind, name) in enumerate(starts):
        if row < floor:
            continue  # inside the previous section (a label within a macro-delimited function)
        limit = starts[index + 1][0] - 1 if index + 1 < len(starts) else len(lines) - 1
        last = limit
        for r in range(row + 1, limit + 1):
            end = _ASM_END.match(lines[r])
            ended = (end.group(1) or end.group(2)) if end is not None else None
            if end is not None and (ended == name if kind != "macro" else ended is None):
                last = r
                break
        else:
            while last > row and not lines[last].strip():
                last -= 1
        first = _comment_top(lines, row, floor)
        sections.append((first, last, kind, name, (), " ".join(lines[row].split())))
        symbols.append(_line_symbol(path, name, kind, "definition", row, max(lines[row].find(name), 0)))
        floor = last + 1
    symbols.sort(key=lambda s: (s.line, s.column))
    return ParseResult(
        chunks=tuple(_section_chunks(path, "asm", lines, settings, sections)), symbols=tuple(symbols)
    )


# `label: name@unit-address {`, `name {`, `/ {`, `&label {`; a line may hold several labels.
_DTS_NODE = re.compile(
    r"^\s*(?P<labels>(?:[A-Za-z_][\w]*\s*:\s*)*)(?P<name>/|&[A-Za-z_]\w*|&\{[^}]*\}|[A-Za-z0-9_][\w,.+\-]*(?:@[\w,.+\-]*)?)"
    r"\s*\{"
)
_DTS_REFERENCE = re.compile(r"&([A-Za-z_]\w*)")
_DTS_NOISE = re.compile(r'"(?:[^"\\]|\\.)*"|//.*|/\*.*?\*/')


def _dts_sections(path: str, lines: list[str], settings: ParseLimits) -> ParseResult:
    """A device tree cut at nodes: a node of at most ``chunk_max_lines`` lines (children included) is one
    chunk named by its ``name@address`` (parents: the enclosing nodes); a longer one gives its own lines
    (properties) as chunks of that name and its children their own chunks. Node names and labels are
    definition symbols, ``&label`` uses references."""
    symbols: list[Symbol] = []
    nodes: list[
        tuple[int, int, str, tuple[str, ...], str]
    ] = []  # (first row, last row, name, parents, header)
    stack: list[tuple[int, str, int]] = []  # (row, name, depth at which it closes)
    depth = 0
    in_comment = False
    for row, raw in enumerate(lines):
        line = raw
        if in_comment:
            end = line.find("*/")
            if end < 0:
                continue
            line, in_comment = line[end + 2 :], False
        if '"' in line or "/" in line:
            line = _DTS_NOISE.sub("", line)
        if "/*" in line:
            line, in_comment = line[: line.index("/*")], True
        match = _DTS_NODE.match(line) if "{" in line else None
        if match is not None:
            name = match.group("name")
            parents = tuple(n for _, n, _ in stack)
            container = ".".join(parents)
            if name.startswith("&"):
                target = name.strip("&{}")
                symbols.append(
                    _line_symbol(path, target, "label", "reference", row, raw.find(target), container)
                )
            else:
                symbols.append(
                    _line_symbol(path, name, "node", "definition", row, max(raw.find(name), 0), container)
                )
            for label in re.findall(r"([A-Za-z_]\w*)\s*:", match.group("labels")):
                symbols.append(
                    _line_symbol(path, label, "label", "definition", row, raw.find(label), container)
                )
            stack.append((row, name, depth))
            rest = line[match.end() :]
            depth += 1
        else:
            rest = line
            for reference in _DTS_REFERENCE.finditer(line) if "&" in line else ():
                column = raw.find("&" + reference.group(1)) + 1
                container = ".".join(n for _, n, _ in stack)
                symbols.append(
                    _line_symbol(path, reference.group(1), "label", "reference", row, column, container)
                )
        if "{" not in rest and "}" not in rest:
            continue
        for char in rest:
            if char == "{":
                depth += 1
            elif char == "}":
                depth -= 1
                while stack and depth <= stack[-1][2]:
                    start, name, _ = stack.pop()
                    nodes.append((start, row, name, tuple(n for _, n, _ in stack), lines[start].strip()))
    while stack:  # unbalanced braces: the node runs to the end of the file
        start, name, _ = stack.pop()
        nodes.append((start, len(lines) - 1, name, tuple(n for _, n, _ in stack), lines[start].strip()))
    nodes.sort(key=lambda n: (n[0], -n[1]))
    starts = [n[0] for n in nodes]
    sections: list[tuple[int, int, str, str, tuple[str, ...], str]] = []
    limit = settings.chunk_max_lines
    covered_until = -1
    for first, last, name, parents, header in nodes:
        if first <= covered_until:
            continue  # inside a node already emitted whole
        top = _comment_top(lines, first, max(covered_until + 1, 0))
        if last - top + 1 <= limit:
            sections.append((top, last, "node", name, parents, header))
            covered_until = last
        else:
            # A large node: its own lines up to the first child, the children on their own, the rest
            # (closing lines, properties after children) as module runs.
            following = bisect.bisect_right(starts, first)
            child = starts[following] if following < len(starts) and starts[following] <= last else last + 1
            child_top = _comment_top(lines, child, first + 1) if child <= last else child
            own_last = min(child_top - 1, first + limit - 1)
            sections.append((top, max(own_last, first), "node", name, parents, header))
    symbols.sort(key=lambda s: (s.line, s.column))
    chunks = _section_chunks(path, "devicetree", lines, settings, sections)
    return ParseResult(chunks=tuple(chunks), symbols=tuple(symbols))
