"""Finding functions and stub functions in source files: one module for the agent and the language server.

A file is parsed once with `indexing.chunker.parse_source`, with settings that split every container into
its members (`parse_definitions`), so every function and method (of small classes too) is one chunk with
its doc comment and signature. On top of that:

- `enclosing_function` / `Outline.function_at`: the innermost function holding a line;
- `is_stub` / `chunk_is_stub`: whether a function's body is a placeholder (``pass``, ``todo!()``,
  ``throw new Error("not implemented")`` ... in ten languages). It parses the function with tree-sitter
  rather than matching text, so a ``pass`` in a nested block or a ``todo!()`` in a string does not make a
  function a stub;
- `outline` / `stub_functions`: a file's functions and its stubs with a doc comment (what "Implement X"
  is offered on), from the one parse.

The agent's task builders (`agent.task_builders`) and the server's code actions
(`server.features.analysis`) both use it, so they agree on what a function and a stub are.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

from indexing.chunker import parse_source
from indexing.languages import detect_language, get_parser, get_queries
from indexing.models import Chunk, ParseLimits, ParseResult

if TYPE_CHECKING:
    from tree_sitter import Node, Tree

__all__ = [
    "FUNCTION_KINDS",
    "FunctionSpan",
    "Outline",
    "StubInfo",
    "chunk_is_stub",
    "definition_chunks",
    "enclosing_function",
    "functions_in",
    "innermost",
    "is_stub",
    "outline",
    "parse_definitions",
    "stub_functions",
]

FUNCTION_KINDS = frozenset({"function", "method"})
"""Chunk kinds that are functions (methods included)."""


class _Span(Protocol):
    @property
    def start_line(self) -> int: ...
    @property
    def end_line(self) -> int: ...


_S = TypeVar("_S", bound=_Span)


def innermost(spans: Iterable[_S], line: int) -> _S | None:
    """The shortest of `spans` whose 1-based inclusive lines hold `line` (the first of equals), or None."""
    best: _S | None = None
    for span in spans:
        if span.start_line <= line <= span.end_line and (
            best is None or span.end_line - span.start_line < best.end_line - best.start_line
        ):
            best = span
    return best


@dataclass(frozen=True, slots=True)
class FunctionSpan:
    """A function or method. Lines are 1-based and inclusive (doc comments and decorators included)."""

    name: str
    symbol: str  # the qualified name (``Cart.total``)
    start_line: int
    end_line: int


@dataclass(frozen=True, slots=True)
class StubInfo:
    """A function whose body is a stub and which has a doc comment: what "Implement X" code actions list.

    Lines are 1-based and inclusive; the range starts at the doc comment or decorators above the function.
    """

    name: str
    symbol: str  # the qualified name (``Cart.total``)
    start_line: int
    end_line: int
    doc: str = ""
    signature: str = ""


@dataclass(frozen=True, slots=True)
class Outline:
    """The functions of one file and which of them are stubs with a doc comment."""

    language: str | None
    functions: tuple[FunctionSpan, ...] = ()
    stubs: tuple[StubInfo, ...] = ()

    def function_at(self, line: int) -> FunctionSpan | None:
        """The innermost function holding 1-based `line`."""
        return innermost(self.functions, line)


# ---------------------------------------------------------------------------------------------------
# Finding functions


@functools.cache
def _definition_limits() -> ParseLimits:
    from indexing.config import IndexSettings  # pydantic: only when a file is parsed

    # A zero line limit makes the chunker split every container (even a three-line class) into its
    # members, and a huge window keeps each function in one chunk, so every function and method becomes
    # exactly one chunk with its doc and signature.
    return dataclasses.replace(IndexSettings().parse_limits(), chunk_max_lines=0, window_lines=1_000_000_000)


def parse_definitions(path: str, text: str, language: str | None) -> ParseResult:
    """Parse a file so that each function, method and class is its own chunk (one tree-sitter parse).

    The symbols are the same as `indexing.chunker.parse_source` reports for the index.
    """
    return parse_source(path, text, language, _definition_limits())


def definition_chunks(path: str, text: str, language: str | None) -> tuple[Chunk, ...]:
    """The chunks of `parse_definitions`: one per definition (containers as skeletons), plus module runs."""
    return parse_definitions(path, text, language).chunks


def enclosing_function(chunks: Iterable[Chunk], line: int) -> Chunk | None:
    """The innermost function or method chunk whose range holds the 1-based `line`, or None."""
    return innermost((c for c in chunks if c.kind in FUNCTION_KINDS), line)


def functions_in(chunks: Iterable[Chunk], start: int, end: int) -> list[Chunk]:
    """The function and method chunks that overlap lines [start, end] (1-based, inclusive)."""
    return [c for c in chunks if c.kind in FUNCTION_KINDS and c.start_line <= end and c.end_line >= start]


# ---------------------------------------------------------------------------------------------------
# Stub detection

_FUNCTION_NODES: dict[str, frozenset[str]] = {
    "python": frozenset({"function_definition"}),
    "javascript": frozenset(
        {
            "function_declaration",
            "function_expression",
            "function",
            "arrow_function",
            "method_definition",
            "generator_function_declaration",
            "generator_function",
        }
    ),
    "go": frozenset({"function_declaration", "method_declaration", "func_literal"}),
    "rust": frozenset({"function_item"}),
    "java": frozenset({"method_declaration", "constructor_declaration", "compact_constructor_declaration"}),
    "csharp": frozenset({"method_declaration", "constructor_declaration", "local_function_statement"}),
    "c": frozenset({"function_definition"}),
    "cpp": frozenset({"function_definition"}),
    "php": frozenset({"function_definition", "method_declaration"}),
    "ruby": frozenset({"method", "singleton_method"}),
}
_FUNCTION_NODES["typescript"] = _FUNCTION_NODES["tsx"] = _FUNCTION_NODES["javascript"]

# Languages where a method's text alone does not parse: it is parsed again inside a class.
_CLASS_WRAPPED = frozenset({"javascript", "typescript", "tsx", "java", "csharp", "php", "cpp"})

_NOT_IMPLEMENTED = re.compile(
    r"not[\s_-]*(?:yet[\s_-]*)?implemented|unimplemented|\btodo\b|implement[\s_-]*me|\bstub\b", re.IGNORECASE
)
_TODO_COMMENT = re.compile(
    r"\b(?:TODO|FIXME|XXX)\b|not\s+(?:yet\s+)?implemented|implement\s+me", re.IGNORECASE
)
_TRIVIAL_RETURN = re.compile(
    r"return(?:\s*\(?\s*(?:null|nil|None|undefined|nullptr|NULL|0|0\.0|0L|-1|false|False|true|True|\"\"|''"
    r"|default(?:\(\w+\))?|Ok\(\(\)\)|\{\}|\[\])\s*\)?)?\s*;?"
)
_EMPTY_IS_STUB = frozenset({"javascript", "typescript", "tsx", "go"})
_C_FAMILY = frozenset({"c", "cpp"})
# C and C++ placeholders: "not supported" errno returns, abort(), an assertion that always fails.
_C_PLACEHOLDER = re.compile(
    r"return\s*\(?\s*-\s*E(?:NOSYS|OPNOTSUPP|NOTSUP)\s*\)?\s*;|(?:std::)?abort\s*\(\s*\)\s*;"
    r"|assert\s*\(\s*(?:0|false)\s*(?:&&\s*\"[^\"]*\"\s*)?\)\s*;"
)


def _message_says_not_implemented(args: str) -> bool:
    return bool(_NOT_IMPLEMENTED.search(args))


def _stub_statement(language: str, text: str) -> bool:
    """Whether one statement (whitespace collapsed) is a language's way of saying "not written yet"."""
    if language == "python":
        return bool(
            re.fullmatch(r"pass|\.\.\.|raise\s+NotImplementedError(?:\s*\(.*\))?(?:\s+from\s+\w+)?", text)
        )
    if language in ("javascript", "typescript", "tsx"):
        match = re.fullmatch(r"throw\s+(?:new\s+)?Error\s*\((.*)\)\s*;?", text)
        return bool(match and _message_says_not_implemented(match.group(1)))
    if language == "go":
        match = re.fullmatch(r"panic\s*\((.*)\)", text)
        return bool(match and _message_says_not_implemented(match.group(1)))
    if language == "rust":
        return bool(re.fullmatch(r"(?:std::|core::)?(?:todo|unimplemented)!\s*[(\[{].*[)\]}]\s*;?", text))
    if language == "java":
        if re.fullmatch(r"throw\s+new\s+(?:java\.lang\.)?UnsupportedOperationException\s*\(.*\)\s*;", text):
            return True
        match = re.fullmatch(
            r"throw\s+new\s+(?:[\w.]+\.)?(?:RuntimeException|IllegalStateException|AssertionError|Error)"
            r"\s*\((.*)\)\s*;",
            text,
        )
        return bool(match and _message_says_not_implemented(match.group(1)))
    if language == "csharp":
        return bool(
            re.fullmatch(r"(?:=>\s*)?throw\s+new\s+(?:System\.)?NotImplementedException\s*\(.*\)\s*;?", text)
        )
    if language in ("c", "cpp") and _C_PLACEHOLDER.fullmatch(text):
        return True  # return -ENOSYS; abort(); assert(0 && "not implemented");
    if language in ("cpp", "php"):
        match = re.fullmatch(r"throw\s+(?:new\s+)?[\\\w:]+\s*\((.*)\)\s*;", text)
        return bool(match and _message_says_not_implemented(match.group(1)))
    if language == "ruby":
        return bool(re.fullmatch(r"raise\s+NotImplementedError\b.*", text))
    return False


_SPACES = re.compile(r"\s+")
_ABSTRACT_DECORATOR = re.compile(
    r"^\s*@(?:[\w.]+\.)?(?:abstractmethod|abstractproperty|overload)\b", re.MULTILINE
)


def _node_text(node: Node) -> str:
    return (node.text or b"").decode("utf-8", "replace")


def _first_function(tree: Tree, types: frozenset[str]) -> Node | None:
    """The outermost function node with a body, in document order."""
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.type in types:
            return node
        stack.extend(reversed(node.children))
    return None


def _parse_function(text: str, language: str) -> Node | None:
    """The function node of a chunk's text, parsing it inside a class when it is a bare method."""
    parser = get_parser(language)
    types = _FUNCTION_NODES.get(language)
    if parser is None or types is None:
        return None
    prefix = "<?php\n" if language == "php" and "<?php" not in text else ""
    tree = parser.parse((prefix + text).encode("utf-8", "replace"))
    node = _first_function(tree, types)
    if language in _CLASS_WRAPPED and (node is None or node.has_error):
        wrapped = parser.parse(f"{prefix}class AgentlsStub {{\n{text}\n}}\n".encode("utf-8", "replace"))
        other = _first_function(wrapped, types)
        if other is not None and (node is None or not other.has_error):
            node = other
    return node


def _statements(body: Node) -> list[Node]:
    out: list[Node] = []
    for child in body.named_children:
        if child.type == "statement_list":  # Go wraps a block's statements in one
            out.extend(child.named_children)
        else:
            out.append(child)
    return out


def _comments_inside(function: Node, after: int) -> list[str]:
    found: list[str] = []
    stack = [function]
    while stack:
        node = stack.pop()
        if "comment" in node.type and node.start_byte >= after:
            found.append(_node_text(node))
            continue
        stack.extend(node.children)
    return found


def _is_docstring(node: Node) -> bool:
    if node.type == "expression_statement" and node.named_child_count == 1:
        node = node.named_children[0]
    return node.type in ("string", "concatenated_string")


def _body_is_stub(function: Node, language: str) -> bool:
    body = function.child_by_field_name("body")
    if body is None and language != "ruby":
        return False  # a declaration without a body (interface method, abstract, overload signature)
    params = function.child_by_field_name("parameters")
    header_end = min(
        body.start_byte if body is not None else function.end_byte, params.end_byte if params else 10**12
    )
    statements = _statements(body) if body is not None else []
    if body is not None and body.type in ("arrow_expression_clause", "expression"):
        statements = [body]  # C# `=> throw ...;`
    elif (
        body is not None
        and language in ("javascript", "typescript", "tsx")
        and body.type != "statement_block"
    ):
        return False  # an arrow function returning an expression
    statements = [s for s in statements if "comment" not in s.type]
    if language == "python" and statements and _is_docstring(statements[0]):
        statements = statements[1:]
        if not statements:
            return True  # docstring only
    texts = [_SPACES.sub(" ", _node_text(s)).strip() for s in statements]
    if len(texts) == 1 and _stub_statement(language, texts[0]):
        return True
    if not texts and language in _EMPTY_IS_STUB:
        return True
    if (
        language in _C_FAMILY
        and (not texts or (len(texts) == 1 and _TRIVIAL_RETURN.fullmatch(texts[0])))
        and function.child_by_field_name("type") is not None
    ):
        # C and C++: an empty body or a lone `return 0;` / `return NULL;` under a doc comment is the
        # usual way to leave a function for later. Constructors and destructors (no return type) are
        # meant to be empty.
        return True
    if len(texts) <= 1 and (not texts or _TRIVIAL_RETURN.fullmatch(texts[0])):
        # `// TODO` with nothing, or with the placeholder return an IDE generates.
        return any(_TODO_COMMENT.search(c) for c in _comments_inside(function, header_end))
    return False


def is_stub(chunk_text: str, language: str) -> bool:
    """Whether the first function in `chunk_text` has a placeholder body rather than an implementation.

    Stubs, by language: Python ``pass``, ``...``, ``raise NotImplementedError[(...)]`` or a docstring alone
    (not ``@abstractmethod`` or ``@overload`` functions, whose bodies are meant to be empty); JavaScript
    and TypeScript an empty ``{}`` (comments allowed) or ``throw new Error("not implemented")`` (any
    message saying not implemented or TODO); Go empty or ``panic("not implemented")`` / ``panic("TODO")``;
    Rust ``todo!()`` or ``unimplemented!()``; Java ``throw new UnsupportedOperationException(...)``; C#
    ``throw new NotImplementedException()``; Ruby ``raise NotImplementedError``; C and C++ an empty body,
    a lone placeholder ``return 0;``/``return NULL;``/``return false;``, ``return -ENOSYS;``, ``abort()``
    or ``assert(0 && "...")`` (constructors and destructors excepted). In every language a body
    that holds a TODO/FIXME comment and nothing else, or only a placeholder ``return null``/``0``/``false``,
    is a stub too.
    """
    if language == "python" and _ABSTRACT_DECORATOR.search(chunk_text.split("def ", 1)[0]):
        return False
    function = _parse_function(chunk_text, language)
    return function is not None and _body_is_stub(function, language)


# A stub's body is short and sits at the end of its chunk: if none of these appear in the last lines,
# the chunk is not parsed again. Only a speed-up; `is_stub` decides.
_STUB_HINT = re.compile(
    r"pass\b|\.\.\.|notimplemented|not\s*(?:yet\s*)?implemented|\btodo\b|fixme|\bxxx\b|unimplemented|"
    r"unsupportedoperation|implement\s*me|\bstub\b|enosys|eopnotsupp|enotsup|"
    r"return\s*\(?\s*(?:0|null|nullptr|false|-1)?\s*\)?\s*;|"  # C: a lone placeholder return
    r"abort\s*\(|assert\s*\(\s*(?:0|false)|[\"']\s*$|\{\s*\}|\{\s*(?://|/\*|#)|\{\s*$|"
    r"^\s*(?://|#|/\*|\*)",  # a comment among the last lines: a long TODO note may hide the marker
    re.IGNORECASE | re.MULTILINE,
)
_STUB_TAIL_LINES = 4


def _may_be_stub(text: str) -> bool:
    """Whether the last non-blank lines of a function's text hold anything a stub body is made of."""
    tail: list[str] = []
    end = len(text)
    while end > 0 and len(tail) < _STUB_TAIL_LINES:
        start = text.rfind("\n", 0, end) + 1
        if text[start:end].strip():
            tail.append(text[start:end])
        end = start - 1
    return bool(_STUB_HINT.search("\n".join(reversed(tail))))


def chunk_is_stub(chunk: Chunk) -> bool:
    """Whether a function chunk's body is a stub (a quick look at its last lines first, then `is_stub`)."""
    return _may_be_stub(chunk.text) and is_stub(chunk.text, chunk.language)


_PREPROC_OPEN = re.compile(r"^\s*#\s*if")
_PREPROC_CLOSE = re.compile(r"^\s*#\s*endif\b")
_GUARD = re.compile(r"^\s*#\s*ifndef\s+(\w+)\s*$")


def _conditional_lines(text: str) -> list[bool]:
    """Per line of a C or C++ file: whether it lies in ``#if``/``#ifdef`` ... ``#endif`` (an include
    guard does not count)."""
    lines = text.split("\n")
    inside: list[bool] = []
    stack: list[bool] = []  # per open conditional: whether it counts (False for an include guard)
    for row, line in enumerate(lines):
        if _PREPROC_OPEN.match(line):
            guard = _GUARD.match(line)
            following = next((n for n in lines[row + 1 : row + 3] if n.strip()), "")
            stack.append(
                not (guard and re.match(rf"\s*#\s*define\s+{re.escape(guard.group(1))}\b", following))
            )
        elif _PREPROC_CLOSE.match(line) and stack:
            stack.pop()
        inside.append(any(stack))
    return inside


def _deliberately_empty(chunk: Chunk, names: dict[str, int], conditional: list[bool]) -> bool:
    """C and C++: an empty or ``return 0;`` body that is a configuration's fallback, not a stub: a
    ``__weak`` default, a function defined twice in the file (``#ifdef CONFIG_X`` ... ``#else``), or one
    inside a preprocessor conditional. A TODO or ``-ENOSYS`` still makes it a stub."""
    if _TODO_COMMENT.search(chunk.text) or _C_PLACEHOLDER.search(chunk.text):
        return False
    return (
        "__weak" in chunk.signature
        or names.get(chunk.symbol, 0) > 1
        or any(conditional[chunk.start_line - 1 : chunk.end_line])
    )


def _stubs_of(path: str, functions: Sequence[Chunk], text: str = "") -> tuple[StubInfo, ...]:
    # Python stub files (``.pyi``) have no stubs to implement: their bodies are ``...`` by design.
    if path.endswith(".pyi"):
        return ()
    stubs = [c for c in functions if c.doc.strip() and chunk_is_stub(c)]
    if stubs and stubs[0].language in _C_FAMILY:
        names: dict[str, int] = {}
        for c in functions:
            names[c.symbol] = names.get(c.symbol, 0) + 1
        conditional = _conditional_lines(text)
        stubs = [c for c in stubs if not _deliberately_empty(c, names, conditional)]
    return tuple(StubInfo(c.name, c.symbol, c.start_line, c.end_line, c.doc, c.signature) for c in stubs)


def stub_functions(path: str, text: str, language: str | None) -> list[StubInfo]:
    """The functions of a file that "Implement X" can be offered on: stubs with a doc comment.

    One parse of the file; only functions whose last lines look like a stub are parsed again (a few
    lines each). Python stub files (``.pyi``) have no stubs to implement.
    """
    if language is None or get_queries(language) is None:
        return []
    functions = [c for c in definition_chunks(path, text, language) if c.kind in FUNCTION_KINDS]
    return list(_stubs_of(path, functions, text))


def outline(path: str, text: str) -> Outline:
    """The functions and documented stubs of `text`, parsed once as the file at `path` (its name only)."""
    language = detect_language(path)
    if language is None or get_queries(language) is None:
        return Outline(language)
    functions = [c for c in definition_chunks(path, text, language) if c.kind in FUNCTION_KINDS]
    spans = tuple(FunctionSpan(c.name, c.symbol, c.start_line, c.end_line) for c in functions)
    return Outline(language, spans, _stubs_of(path, functions, text))
